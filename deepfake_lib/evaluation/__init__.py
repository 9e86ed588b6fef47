"""Evaluation: metrics and their intervals, calibration, score files, metric rows."""
