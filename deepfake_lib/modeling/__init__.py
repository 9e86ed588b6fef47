"""Modeling: detectors (front-end + back-end), training, classical baselines."""
