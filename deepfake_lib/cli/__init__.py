"""Command lines: ``deepfake-detect`` and ``deepfake-lib``."""
