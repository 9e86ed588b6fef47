"""Shared fixtures: a small, easily learnable paired corpus written in the Hemg schema."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def make_toy_corpus(path: Path, *, n_utterances: int = 24, seed: int = 0) -> Path:
    """Paired clips: bona fide = two harmonics and breath noise; spoof = the same plus a buzzy
    2.4 kHz square wave (an artefact a tiny model learns in a few epochs). 16 kHz, 1-2.5 s."""
    import datasets

    rng = np.random.default_rng(seed)
    rows, labels, utts, attacks = [], [], [], []
    for u in range(n_utterances):
        n = int(16_000 * rng.uniform(1.0, 2.5))
        t = np.arange(n) / 16_000
        f0 = rng.uniform(100, 220)
        base = (
            0.3 * np.sin(2 * np.pi * f0 * t)
            + 0.1 * np.sin(2 * np.pi * 2 * f0 * t)
            + 0.01 * rng.standard_normal(n)
        )
        for label in (1, 0):
            wave = base if label == 1 else base + 0.08 * np.sign(np.sin(2 * np.pi * 2400 * t))
            buf = io.BytesIO()
            sf.write(buf, wave.astype(np.float32), 16_000, format="WAV")
            rows.append({"bytes": buf.getvalue(), "path": f"utt{u:03d}_{label}.wav"})
            labels.append(label)
            utts.append(f"utt{u:03d}")
            attacks.append("bonafide" if label == 1 else ("A01", "A02")[u % 2])
    struct = datasets.Features(
        {
            "audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
            "label": datasets.ClassLabel(names=["Fake", "Real"]),
            "utterance_id": datasets.Value("string"),
            "attack": datasets.Value("string"),
        }
    )
    ds = datasets.Dataset.from_dict(
        {"audio": rows, "label": labels, "utterance_id": utts, "attack": attacks}, features=struct
    ).cast_column("audio", datasets.Audio())
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(path))
    return path


@pytest.fixture(scope="session")
def toy_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a 48-clip paired toy corpus (parquet, Hemg schema plus utterance_id and attack)."""
    return make_toy_corpus(tmp_path_factory.mktemp("toy") / "toy.parquet")
