"""Deployment: the Detector, CPU runtimes, export formats, and the service (HTTP and WebSocket
streaming, the web page in ``web/``, token auth and Prometheus metrics) with its streaming client."""
