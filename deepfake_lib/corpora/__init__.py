"""Corpora: one loader for every data source, splits, the embedded and the real-speech builders."""
