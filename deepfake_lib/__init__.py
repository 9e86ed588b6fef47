"""deepfake_lib: an open workbench for audio deepfake detection.

Modules, one job each:

- settings and runs: ``config``, ``runs``, ``series`` (the notebook series), ``cli``;
- data: ``audio``, ``synthetic`` (the embedded corpus), ``spoof_methods`` and ``real_speech``
  (the real-speech benchmark), ``data``, ``augment``;
- models and training: ``models``, ``train``, ``baselines``, ``rehearsal`` (offline stand-ins
  for the Colab run);
- scoring and metrics: ``scoring``, ``backends``, ``cpu_runtime``, ``metrics``, ``scorefile``;
- analysis (notebook 04): ``analysis`` (opens a run and calls the others), ``attacks``,
  ``robustness``, ``calibration``, ``explain``, ``cross_source``, ``study_protocol``,
  ``summaries``, ``report`` (prose from the measured figures), ``plots``;
- deployment: ``infer``, ``export``, ``serve``.

Importing the package has no side effects; import the module you need.
"""

__version__ = "0.1.0"

LABEL_NAMES: tuple[str, str] = ("Fake", "Real")
"""Class names in label order, as in ``Hemg/Deepfake-Audio-Dataset`` (0 = Fake, 1 = Real)."""

TARGET_SAMPLE_RATE: int = 16_000
"""Sample rate (Hz) that every model in the project sees."""
