"""Deployment: the Detector, CPU runtimes, export formats and the HTTP service."""
