"""Errors of audio input: every one names the source and the problem."""

from __future__ import annotations

import math

__all__ = [
    "AudioError",
    "AudioTooLongError",
]


class AudioError(ValueError):
    """Bad audio: undecodable, truncated, empty, silent, non-finite or at an impossible rate.

    Attributes: ``source`` (where the audio came from: a file path, ``'bytes'``,
    ``'row 12 of train'``...) and ``problem`` (what is wrong with it).
    """

    def __init__(self, source: str, problem: str):
        self.source = str(source)
        self.problem = str(problem)
        super().__init__(f"{self.source}: {self.problem}")

    def __reduce__(self):  # keep pickling (DataLoader workers) working with two arguments
        return (type(self), (self.source, self.problem))


class AudioTooLongError(AudioError):
    """Audio longer than the duration limit, by its header or while it was being decoded.

    ``duration_s`` is the declared or decoded length (seconds; a lower bound when decoding
    stopped at the limit) and ``limit_s`` the limit in force.
    """

    def __init__(self, source: str, problem: str, duration_s: float = math.nan, limit_s: float = math.nan):
        super().__init__(source, problem)
        self.duration_s = float(duration_s)
        self.limit_s = float(limit_s)

    def __reduce__(self):
        return (type(self), (self.source, self.problem, self.duration_s, self.limit_s))
