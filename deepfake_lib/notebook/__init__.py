"""Notebook support: figures, generated prose, and running the series with papermill."""
