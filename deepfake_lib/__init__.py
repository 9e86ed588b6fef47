"""deepfake_lib: an open workbench for audio deepfake detection.

Layout, by stage (each subpackage imports only the ones listed before it):

- core modules: ``config``, ``labels``, ``runs`` (run folders), ``torch_settings`` (seed,
  device, precision, threads), ``classifier``, ``scoring``;
- ``audio``: decoding, resampling, framing, augmentation;
- ``evaluation``: error rates, costs, intervals, calibration, score files;
- ``corpora``: data sources and splits, the embedded and the real-speech corpora;
- ``modeling``: models, training, classical baselines;
- ``deploy``: the detector, CPU runtimes, export, the service;
- ``studies``: what notebook 04 runs on a trained run;
- ``notebook``: figures, generated prose, the papermill series;
- ``cli``: the command lines.

Importing the package has no side effects; import the module you need.
"""

__all__ = [
    "LABEL_NAMES",
    "TARGET_SAMPLE_RATE",
]

__version__ = "0.1.0"

LABEL_NAMES: tuple[str, str] = ("Fake", "Real")
"""Class names in label order, as in ``Hemg/Deepfake-Audio-Dataset`` (0 = Fake, 1 = Real)."""

TARGET_SAMPLE_RATE: int = 16_000
"""Sample rate (Hz) that every model in the project sees."""
