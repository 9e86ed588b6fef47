"""deepfake_lib: an open workbench for audio deepfake detection.

Modules, one stage each: ``config``, ``audio``, ``synthetic``, ``data``, ``baselines``,
``augment``, ``models``, ``train``, ``metrics``, ``analysis``, ``plots``, ``infer``,
``serve``, ``export``, ``series`` and ``cli``. Importing the package has no side effects;
import the module you need.
"""

__version__ = "0.1.0"

LABEL_NAMES: tuple[str, str] = ("Fake", "Real")
"""Class names in label order, as in ``Hemg/Deepfake-Audio-Dataset`` (0 = Fake, 1 = Real)."""

TARGET_SAMPLE_RATE: int = 16_000
"""Sample rate (Hz) that every model in the project sees."""
