"""Studies of a trained run (what notebook 04 runs): attacks, robustness, calibration, protocols."""
