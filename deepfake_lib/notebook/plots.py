"""Figures for the notebook series (matplotlib). Every function takes data, not paths, and
returns a :class:`matplotlib.figure.Figure` with titles, axis labels with units and legends.

Colours are fixed across the series: bona fide (Real) is always :data:`REAL_COLOR`, spoofed
(Fake) :data:`FAKE_COLOR`, and each attack id gets the same colour from :data:`ATTACK_PALETTE`
in every figure (:func:`attack_colors`).

How a figure reaches the reader, exactly once: figures are detached from pyplot's figure manager
as soon as they are made, so the inline backend never shows them on its own (no double display,
no pile-up in scripts and tests). In a notebook, either end a cell with the figure (IPython shows
a cell's value once), or call :func:`save_figure`, which writes the PNG and, in a Jupyter kernel
(JupyterLab, Colab, papermill), shows that same PNG once where it is called and returns nothing,
so a cell never displays a path.
"""

from __future__ import annotations

import base64
import functools
import io
import logging
import math
import os
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from deepfake_lib import LABEL_NAMES

log = logging.getLogger(__name__)

REAL_COLOR = "#0072B2"
"""Bona fide (Real, label 1): blue (Okabe-Ito)."""
FAKE_COLOR = "#D55E00"
"""Spoofed (Fake, label 0): vermillion (Okabe-Ito)."""
CLASS_COLORS: dict[str, str] = {"Real": REAL_COLOR, "Fake": FAKE_COLOR}
"""Colour of each class name."""
ATTACK_PALETTE: tuple[str, ...] = (
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#9467BD",
    "#8C564B",
    "#BCBD22",
    "#7F7F7F",
    "#17BECF",
)
"""Colours of attack ids, assigned in sorted order of the ids (see :func:`attack_colors`)."""
FAMILY_PALETTE: tuple[str, ...] = (
    "#4D4D4D",
    "#0072B2",
    "#56B4E9",
    "#009E73",
    "#E69F00",
    "#CC79A7",
    "#D55E00",
    "#9467BD",
    "#8C564B",
)
"""Colours of robustness condition families, in order of appearance."""
SYSTEM_PALETTE: tuple[str, ...] = (
    "#000000",
    "#009E73",
    "#9467BD",
    "#E69F00",
    "#8C564B",
    "#CC79A7",
    "#7F7F7F",
)
"""Colours of compared systems (never the class colours, which mean Real and Fake)."""
RATE_GREYS: tuple[str, ...] = ("#D9D9D9", "#969696", "#525252", "#252525")
"""Neutral shades for sample rates (class and attack colours stay reserved)."""

STYLE: dict[str, Any] = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "figure.titlesize": 12,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.cmap": "magma",
}
"""Matplotlib rc settings applied while each figure is built."""

_F = TypeVar("_F", bound=Callable[..., Any])


def _styled(fn: _F) -> _F:
    """Build the figure under :data:`STYLE` (fonts are fixed when text is created)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib.pyplot as plt

        with plt.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _new_figure(figsize: tuple[float, float]) -> Any:
    """A constrained-layout figure, already closed in pyplot (no pile-up, no double display)."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=figsize, layout="constrained")
    plt.close(fig)
    return fig


def _in_jupyter() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Colab, papermill), False in scripts, tests and a terminal IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


INLINE_MAX_BYTES = 150_000
"""Largest PNG (bytes) that :func:`save_figure` embeds in a notebook; larger ones get a smaller
palette, then are scaled down, for display only (the saved file keeps every pixel). Spectrogram
grids need it to keep a notebook under 1 MB."""


def _palette_png(image: Any, colors: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(out, format="PNG", optimize=True)
    return out.getvalue()


def compact_png(png: bytes, colors: int = 256, *, max_bytes: int | None = None) -> bytes:
    """``png`` re-encoded with a palette of at most ``colors`` colours (median cut, no dithering):
    lossless for line plots, which use few colours, and about 2.5 times smaller for spectrograms,
    whose smooth colour bars may show faint bands. Keeps notebooks small (under 1 MB each).

    ``max_bytes``: when the result is larger, the palette shrinks to 64 and then 32 colours, and
    then the image is scaled down (box filter, aspect ratio kept) until it fits, in at most six
    steps; images that fit keep their pixels and palette.
    """
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    ladder = [colors] + [c for c in (64, 32) if c < colors]
    for palette in ladder:
        data = _palette_png(image, palette)
        if max_bytes is None or len(data) <= max_bytes:
            return data
    shown = image
    for _ in range(6):
        scale = 0.95 * math.sqrt(max_bytes / len(data)) * shown.width / image.width
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        shown = image.resize(size, Image.Resampling.BOX)
        data = _palette_png(shown, ladder[-1])
        if len(data) <= max_bytes:
            break
    return data


def save_figure(fig: Any, path: str | os.PathLike[str], *, show: bool | None = None) -> None:
    """Write ``fig`` as a PNG (110 dpi, tight bounding box) to ``path``, creating the folder, and
    show it once in the notebook.

    ``show``: display the figure in the cell's output, as :func:`compact_png` of the file (same
    pixels, a 256-colour palette; fewer colours, then fewer pixels, only when larger than
    :data:`INLINE_MAX_BYTES`);
    ``None`` (default) does so only in a Jupyter kernel, never in
    scripts or tests. Returns ``None``, so a cell that ends with this call shows the figure and
    nothing else (no path of the machine that ran it).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110, bbox_inches="tight", format="png")
    if show if show is not None else _in_jupyter():
        from IPython.display import display

        png = base64.b64encode(compact_png(p.read_bytes(), max_bytes=INLINE_MAX_BYTES)).decode("ascii")
        # the text form names the file, never the machine's path
        display({"image/png": png, "text/plain": f"<figure {p.name}>"}, raw=True)


def attack_colors(attacks: Iterable[str]) -> dict[str, str]:
    """Colour of every attack id: ``"bonafide"`` -> :data:`REAL_COLOR`, ``"pooled"`` ->
    :data:`FAKE_COLOR`, the others from :data:`ATTACK_PALETTE` in sorted order."""
    names = sorted({str(a) for a in attacks})
    spoof = [a for a in names if a not in ("bonafide", "pooled")]
    colors = {a: ATTACK_PALETTE[i % len(ATTACK_PALETTE)] for i, a in enumerate(spoof)}
    if "bonafide" in names:
        colors["bonafide"] = REAL_COLOR
    if "pooled" in names:
        colors["pooled"] = FAKE_COLOR
    return colors


def _class_name(label: Any) -> str:
    if isinstance(label, str):
        return label
    return LABEL_NAMES[int(label)]


def _class_hist(ax: Any, values: np.ndarray, name: str, edges: np.ndarray, label: str | None = None) -> None:
    """One class's histogram as a thick outline (Real solid, Fake dashed) over a faint fill, so
    identical distributions stay readable."""
    color = CLASS_COLORS[name]
    ax.hist(values, bins=edges, histtype="stepfilled", color=color, alpha=0.12)
    ax.hist(
        values,
        bins=edges,
        histtype="step",
        color=color,
        linewidth=2,
        linestyle="-" if name == "Real" else "--",
        label=label or name,
    )


def _wrap(text: str, width: int = 28) -> str:
    return "\n".join(textwrap.wrap(str(text), width)) or str(text)


def _pct(values: Any) -> np.ndarray:
    return 100.0 * np.asarray(values, dtype=float)


def _known_bounds(low: Any, high: Any) -> np.ndarray:
    """[n] bool: where both interval bounds are known (NaN when the bootstrap gave none)."""
    return np.isfinite(np.asarray(low, dtype=float)) & np.isfinite(np.asarray(high, dtype=float))


def _errorbars(ax: Any, x: Any, center: Any, low: Any, high: Any, *, capsize: float) -> bool:
    """Interval bars (in %) where both bounds are known; returns whether any was drawn."""
    c, lo, hi = (np.asarray(v, dtype=float) for v in (center, low, high))
    known = _known_bounds(lo, hi)
    if known.any():
        x = np.asarray(x, dtype=float)[known]
        yerr = 100 * _error(c[known], lo[known], hi[known])
        ax.errorbar(x, 100 * c[known], yerr=yerr, fmt="none", ecolor="black", capsize=capsize)
    return bool(known.any())


def _eer_axis_top(*values: Any) -> float:
    """Upper y limit (%) for EER bars: at least 55, above every value and bound shown."""
    finite = np.concatenate([np.asarray(v, dtype=float).ravel() for v in values])
    finite = finite[np.isfinite(finite)]
    return min(105.0, max(55.0, float(100 * finite.max()) + 5 if finite.size else 55.0))


def _error(center: Any, low: Any, high: Any) -> np.ndarray:
    """Asymmetric error bars [2, n] from interval bounds (NaN bounds -> no bar)."""
    c, lo, hi = (np.asarray(v, dtype=float) for v in (center, low, high))
    return np.nan_to_num(np.vstack([c - lo, hi - c]), nan=0.0).clip(min=0.0)


# --------------------------------------------------------------------------------------
# data (notebook 01)
# --------------------------------------------------------------------------------------
def _class_counts(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series | None]:
    """(clips per split x class, clips per attack or None) from any of the accepted tables."""
    if {"split", "class", "clips"} <= set(table.columns):
        by_class = table.pivot_table(
            index="split", columns="class", values="clips", aggfunc="sum", sort=False
        ).fillna(0)
        by_attack = table.groupby("attack", sort=True)["clips"].sum() if "attack" in table else None
    elif {"Fake", "Real"} <= set(table.columns):
        by_class = table[["Fake", "Real"]]
        by_attack = None
    elif "label" in table.columns:
        df = table.assign(
            _class=[_class_name(v) for v in table["label"]],
            _split=table["split"] if "split" in table else "all",
        )
        by_class = df.pivot_table(
            index="_split", columns="_class", values="label", aggfunc="size", sort=False
        ).fillna(0)
        by_attack = df.groupby("attack").size() if "attack" in df else None
    else:
        raise ValueError(
            "plot_class_balance: expected summarize_splits / count_split_labels output or a per-clip table "
            f"with a 'label' column; got columns {list(table.columns)}"
        )
    by_class = by_class.reindex(columns=[c for c in ("Fake", "Real") if c in by_class.columns])
    return by_class.astype(int), by_attack


@_styled
def plot_class_balance(table: pd.DataFrame) -> Any:
    """Clips per split and class, and clips per attack.

    ``table``: :func:`deepfake_lib.corpora.sources.summarize_splits` (split, class, attack, clips),
    :func:`deepfake_lib.corpora.sources.count_split_labels` (splits x Fake/Real), or a per-clip table
    with ``label`` (and optionally ``split``, ``attack``).
    """
    by_class, by_attack = _class_counts(table)
    fig = _new_figure((11, 4) if by_attack is not None else (6.5, 4))
    axes = fig.subplots(1, 2 if by_attack is not None else 1, squeeze=False)[0]
    ax = axes[0]
    x = np.arange(len(by_class))
    width = 0.38
    for j, name in enumerate(by_class.columns):
        bars = ax.bar(
            x + (j - (len(by_class.columns) - 1) / 2) * width,
            by_class[name],
            width,
            color=CLASS_COLORS[name],
            label=f"{name} ({'spoof' if name == 'Fake' else 'bona fide'})",
        )
        ax.bar_label(bars, fontsize=8, padding=2)
    ax.set_xticks(x, [str(s) for s in by_class.index])
    ax.set_xlabel("split")
    ax.set_ylabel("clips")
    ax.set_title("Clips per split and class")
    ax.legend(loc="upper right")
    ax.margins(y=0.15)
    if by_attack is not None:
        ax = axes[1]
        colors = attack_colors(by_attack.index)
        bars = ax.bar(range(len(by_attack)), by_attack.to_numpy(), color=[colors[a] for a in by_attack.index])
        ax.bar_label(bars, fontsize=8, padding=2)
        ax.set_xticks(range(len(by_attack)), [str(a) for a in by_attack.index], rotation=30, ha="right")
        ax.set_xlabel("attack id (bonafide = real)")
        ax.set_ylabel("clips (all splits)")
        ax.set_title("Clips per attack")
        ax.margins(y=0.15)
    fig.suptitle("Class balance")
    return fig


@_styled
def plot_distributions(df: pd.DataFrame, *, bins: int = 30) -> Any:
    """Duration (s), native sample rate (Hz) and loudness (RMS, dBFS) per class (top row) and
    per attack (bottom row). ``df``: one row per clip with ``duration``, ``sample_rate``,
    ``rms_dbfs``, ``label`` and ``attack``. Overlapping distributions mean these trivial
    properties cannot give the classes away."""
    need = {"duration", "sample_rate", "rms_dbfs", "label", "attack"}
    if not need <= set(df.columns):
        raise ValueError(f"plot_distributions: df lacks {sorted(need - set(df.columns))}")
    fig = _new_figure((13, 7.5))
    axes = fig.subplots(2, 3)
    classes = [c for c in ("Real", "Fake") if c in {_class_name(v) for v in df["label"]}]
    cls = df["label"].map(_class_name)
    rates = sorted(df["sample_rate"].unique())
    panels = (("duration", "duration (s)", "Duration"), ("rms_dbfs", "RMS level (dBFS)", "RMS level"))
    for col, (column, unit, what) in zip((0, 2), panels):
        ax = axes[0, col]
        edges = np.histogram_bin_edges(df[column].to_numpy(float), bins=bins)
        for name in classes:
            _class_hist(ax, df.loc[cls == name, column].to_numpy(float), name, edges)
        ax.set_xlabel(unit)
        ax.set_ylabel("clips")
        ax.set_title(f"{what} per class")
        ax.legend()
    ax = axes[0, 1]
    width = 0.8 / max(len(classes), 1)
    for j, name in enumerate(classes):
        counts = [int(((cls == name) & (df["sample_rate"] == r)).sum()) for r in rates]
        ax.bar(
            np.arange(len(rates)) + (j - (len(classes) - 1) / 2) * width,
            counts,
            width,
            color=CLASS_COLORS[name],
            label=name,
        )
    ax.set_xticks(range(len(rates)), [f"{r / 1000:g}" for r in rates])
    ax.set_xlabel("native sample rate (kHz)")
    ax.set_ylabel("clips")
    ax.set_title("Sample rate per class")
    ax.legend()

    attacks = sorted(df["attack"].astype(str).unique(), key=lambda a: (a != "bonafide", a))
    colors = attack_colors(attacks)
    for col, (column, unit, what) in zip((0, 2), panels):
        ax = axes[1, col]
        data = [df.loc[df["attack"].astype(str) == a, column].to_numpy(float) for a in attacks]
        parts = ax.boxplot(data, patch_artist=True, widths=0.6, medianprops={"color": "black"})
        for patch, a in zip(parts["boxes"], attacks):
            patch.set_facecolor(colors[a])
            patch.set_alpha(0.7)
        ax.set_xticks(range(1, len(attacks) + 1), attacks, rotation=30, ha="right")
        ax.set_xlabel("attack id")
        ax.set_ylabel(unit)
        ax.set_title(f"{what} per attack")
    ax = axes[1, 1]
    bottom = np.zeros(len(attacks))
    for k, r in enumerate(rates):
        share = np.array(
            [float((df.loc[df["attack"].astype(str) == a, "sample_rate"] == r).mean()) for a in attacks]
        )
        ax.bar(
            range(len(attacks)),
            share * 100,
            bottom=bottom,
            color=RATE_GREYS[k % len(RATE_GREYS)],
            edgecolor="white",
            label=f"{r / 1000:g} kHz",
        )
        bottom += share * 100
    ax.set_xticks(range(len(attacks)), attacks, rotation=30, ha="right")
    ax.set_xlabel("attack id")
    ax.set_ylabel("share of clips (%)")
    ax.set_title("Sample rate per attack")
    ax.legend(title="native rate", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle("Trivial properties per class and attack (overlap = no shortcut)")
    return fig


def _hz_to_mel(f: Any) -> Any:
    return 2595.0 * np.log10(1.0 + np.maximum(f, 0.0) / 700.0)


def _mel_to_hz(m: Any) -> Any:
    return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)


def _log_mel_db(wave: np.ndarray, sr: int, n_mels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-mel power (HTK mel scale) of ``wave``: ``(times_s [frames+1], band_edges_hz [n_mels+1],
    power_db [n_mels, frames])`` in dB re. full scale (STFT with scipy, 32 ms Hann, 8 ms hop;
    triangular filters from torchaudio)."""
    import torch
    import torchaudio
    from scipy.signal import stft

    n_fft = int(2 ** round(math.log2(0.032 * sr)))
    hop = n_fft // 4
    x = np.asarray(wave, dtype=np.float64)
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    _, t, z = stft(
        x, fs=sr, window="hann", nperseg=n_fft, noverlap=n_fft - hop, boundary="zeros", scaling="spectrum"
    )
    fb = torchaudio.functional.melscale_fbanks(
        n_fft // 2 + 1, 0.0, sr / 2, n_mels, sr, norm=None, mel_scale="htk"
    )
    mel = np.asarray(fb.to(torch.float64)).T @ (np.abs(z) ** 2)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), n_mels + 1))
    times = np.append(t - hop / (2 * sr), t[-1] + hop / (2 * sr)).clip(min=0)
    return times, edges, 10 * np.log10(np.maximum(mel, 1e-12))


def _mel_axis(ax: Any, fmax: float) -> None:
    """Mel-scaled frequency axis with ticks in Hz."""
    ax.set_yscale("function", functions=(_hz_to_mel, _mel_to_hz))
    ticks = [f for f in (0, 250, 500, 1000, 2000, 4000, 8000, 16000) if f <= fmax]
    ax.set_yticks(ticks, [f"{f:g}" for f in ticks])
    ax.set_ylim(0, fmax)


@_styled
def plot_waveform_and_spectrogram(
    pairs: Sequence[tuple[str, np.ndarray, int]], *, n_mels: int = 64, dynamic_range_db: float = 80.0
) -> Any:
    """Waveform and log-mel spectrogram of each ``(title, wave [samples], sample_rate Hz)``,
    one row per clip, on a shared amplitude axis and a shared colour scale (dB re. full scale);
    the spectrogram's frequency axis is mel-scaled with ticks in Hz."""
    if not pairs:
        raise ValueError("plot_waveform_and_spectrogram: no clips given")
    specs = [_log_mel_db(w, int(sr), n_mels) for _, w, sr in pairs]
    vmax = max(float(db.max()) for _, _, db in specs)
    vmin = vmax - dynamic_range_db
    amp = max(float(np.max(np.abs(w))) for _, w, _ in pairs) * 1.05 or 1.0
    fig = _new_figure((12, 2.5 * len(pairs) + 0.6))
    axes = fig.subplots(len(pairs), 2, squeeze=False, width_ratios=[1, 1.25])
    mesh = None
    for row, ((title, wave, sr), (times, edges, db)) in enumerate(zip(pairs, specs)):
        t = np.arange(len(wave)) / sr
        ax = axes[row, 0]
        ax.plot(t, wave, color="#333333", linewidth=0.5)
        ax.set_ylim(-amp, amp)
        ax.set_xlim(0, t[-1] if len(t) else 1)
        ax.set_title(f"{title}: waveform ({sr / 1000:g} kHz)")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("amplitude (full scale = 1)")
        ax = axes[row, 1]
        mesh = ax.pcolormesh(
            times, edges, db, vmin=vmin, vmax=vmax, cmap="magma", shading="flat", rasterized=True
        )
        _mel_axis(ax, sr / 2)
        ax.set_xlim(0, len(wave) / sr)
        ax.grid(False)
        ax.set_title(f"{title}: log-mel spectrogram")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("frequency (Hz, mel scale)")
    fig.colorbar(mesh, ax=axes[:, 1].tolist(), label="power (dB re. full scale)", shrink=0.9)
    fig.suptitle("Waveforms and log-mel spectrograms (shared scales)")
    return fig


@_styled
def plot_shortcut_features(
    features: pd.DataFrame, labels: Sequence[int] | np.ndarray, *, bins: int = 25
) -> Any:
    """Per-feature class histograms of the shortcut-control features (one panel per column of
    ``features`` [clips, features]; ``labels`` [clips] 1 = Real, 0 = Fake). Each title gives the
    feature's own AUC for Real: near 0.5 means the feature alone cannot tell the classes apart."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(labels, dtype=int)
    if len(y) != len(features):
        raise ValueError(f"plot_shortcut_features: {len(features)} feature rows but {len(y)} labels")
    cols = list(features.columns)
    ncols = min(3, len(cols))
    nrows = math.ceil(len(cols) / ncols)
    fig = _new_figure((4.2 * ncols, 3.2 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, col in zip(axes, cols):
        v = features[col].to_numpy(float)
        auc = roc_auc_score(y, v) if 0 < y.sum() < y.size else float("nan")
        uniq = np.unique(v)
        if uniq.size <= 6:
            width = 0.4
            for j, (name, cls) in enumerate((("Real", 1), ("Fake", 0))):
                counts = [int(np.sum((v == u) & (y == cls))) for u in uniq]
                ax.bar(
                    np.arange(uniq.size) + (j - 0.5) * width,
                    counts,
                    width,
                    color=CLASS_COLORS[name],
                    label=name,
                )
            ax.set_xticks(range(uniq.size), [f"{u:g}" for u in uniq])
        else:
            edges = np.histogram_bin_edges(v, bins=bins)
            for name, cls in (("Real", 1), ("Fake", 0)):
                _class_hist(ax, v[y == cls], name, edges)
        ax.set_title(f"{col}  (AUC {auc:.2f})")
        ax.set_xlabel(_feature_unit(col))
        ax.set_ylabel("clips")
        ax.legend()
    for ax in axes[len(cols) :]:
        ax.set_visible(False)
    fig.suptitle("Shortcut-control features per class (AUC near 0.5 = no shortcut)")
    return fig


def _feature_unit(name: str) -> str:
    units = {
        "duration_s": "duration (s)",
        "rms_dbfs": "RMS level (dBFS)",
        "peak_dbfs": "peak level (dBFS)",
        "sample_rate": "sample rate (Hz)",
        "zero_crossing_rate": "zero crossings per sample",
        "duration": "duration (s)",
    }
    return units.get(name, name)


@_styled
def plot_split_groups(split_table: pd.DataFrame, *, group_column: str = "utterance_id") -> Any:
    """Clips per split and class, and which split every utterance group lands in.

    ``split_table``: :func:`deepfake_lib.corpora.sources.split_table` (split, ``group_column``, label).
    The right panel has one column per group and one row per split; a group in more than one
    split (a leak) is drawn in red and counted in the title.
    """
    need = {"split", group_column, "label"}
    if not need <= set(split_table.columns):
        raise ValueError(f"plot_split_groups: split_table lacks {sorted(need - set(split_table.columns))}")
    order = [s for s in ("train", "validation", "test") if s in set(split_table["split"])]
    order += sorted(set(split_table["split"]) - set(order))
    fig = _new_figure((12, 4))
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 2.2])
    cls = split_table["label"].map(_class_name)
    bottom = np.zeros(len(order))
    for name in ("Real", "Fake"):
        counts = np.array([int(((split_table["split"] == s) & (cls == name)).sum()) for s in order])
        bars = ax1.bar(order, counts, bottom=bottom, color=CLASS_COLORS[name], label=name)
        ax1.bar_label(bars, label_type="center", fontsize=8, color="white")
        bottom += counts
    ax1.set_xlabel("split")
    ax1.set_ylabel("clips")
    ax1.set_title("Clips per split and class")
    ax1.legend()
    membership = split_table.groupby(group_column)["split"].agg(lambda s: set(s))
    first = {g: min(order.index(s) for s in splits) for g, splits in membership.items()}
    groups = sorted(membership.index, key=lambda g: (first[g], str(g)))
    grid = np.zeros((len(order), len(groups)))
    for j, g in enumerate(groups):
        value = 2.0 if len(membership[g]) > 1 else 1.0
        for s in membership[g]:
            grid[order.index(s), j] = value
    from matplotlib.colors import ListedColormap

    ax2.imshow(
        grid,
        aspect="auto",
        interpolation="nearest",
        cmap=ListedColormap(["#F2F2F2", "#4D4D4D", "#D62728"]),
        vmin=0,
        vmax=2,
    )
    ax2.set_yticks(range(len(order)), order)
    ax2.set_xlabel(f"{group_column} groups ({len(groups)}, sorted by split)")
    ax2.set_ylabel("split")
    ax2.grid(False)
    from matplotlib.patches import Patch

    ax2.legend(
        handles=[
            Patch(color="#4D4D4D", label="group's clips are in this split"),
            Patch(color="#D62728", label="group in several splits (leak)"),
        ],
        loc="upper left",
        bbox_to_anchor=(0.0, -0.18),
        ncol=2,
        frameon=False,
    )
    n_leak = int(sum(len(v) > 1 for v in membership))
    ax2.set_title(
        f"Split of every group: {n_leak} group(s) in more than one split" + (" (red)" if n_leak else "")
    )
    fig.suptitle("Group-disjoint splits")
    return fig


# --------------------------------------------------------------------------------------
# preprocessing (notebook 02)
# --------------------------------------------------------------------------------------
def _psd_db(wave: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy.signal import welch

    nper = min(len(wave), int(2 ** round(math.log2(0.064 * sr))))
    f, p = welch(np.asarray(wave, dtype=np.float64), fs=sr, nperseg=max(nper, 16))
    return f, 10 * np.log10(np.maximum(p, 1e-20))


@_styled
def plot_resampling(wave_before: np.ndarray, sr_before: int, wave_after: np.ndarray, sr_after: int) -> Any:
    """Power spectra (Welch, dB) of a clip before and after resampling, with both Nyquist
    frequencies; the right panel zooms on the band around the new Nyquist (anti-aliasing roll-off)."""
    fb, pb = _psd_db(wave_before, int(sr_before))
    fa, pa = _psd_db(wave_after, int(sr_after))
    fig = _new_figure((12, 4))
    axes = fig.subplots(1, 2)
    ny_b, ny_a = sr_before / 2, sr_after / 2
    for ax, zoom in zip(axes, (False, True)):
        ax.plot(fb, pb, color="#7F7F7F", linewidth=1.2, label=f"before ({sr_before / 1000:g} kHz)")
        ax.plot(fa, pa, color=REAL_COLOR, linewidth=1.2, label=f"after ({sr_after / 1000:g} kHz)")
        ax.axvline(ny_b, color="#7F7F7F", linestyle="--", linewidth=1, label=f"Nyquist {ny_b / 1000:g} kHz")
        ax.axvline(ny_a, color=REAL_COLOR, linestyle="--", linewidth=1, label=f"Nyquist {ny_a / 1000:g} kHz")
        ax.set_xlabel("frequency (Hz)")
        ax.set_ylabel("power spectral density (dB/Hz)")
        if zoom:
            lo, hi = 0.7 * min(ny_a, ny_b), min(1.15 * min(ny_a, ny_b), max(ny_a, ny_b))
            ax.set_xlim(lo, hi)
            ax.set_title("Around the lower Nyquist frequency")
        else:
            ax.set_xlim(0, max(ny_a, ny_b))
            ax.set_title("Full band")
    top = max(pb.max(), pa.max())
    for ax in axes:
        ax.set_ylim(top - 120, top + 5)
    axes[0].legend(loc="upper right")
    fig.suptitle("Spectrum before and after resampling")
    return fig


def _stft_db(wave: np.ndarray, sr: int, n_fft: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from scipy.signal import stft

    n = min(n_fft, len(wave))
    f, t, z = stft(np.asarray(wave, dtype=np.float64), fs=sr, nperseg=n, noverlap=n // 2)
    return f, t, 20 * np.log10(np.maximum(np.abs(z), 1e-8))


@_styled
def plot_augmentation_grid(
    items: Sequence[tuple[str, np.ndarray]],
    *,
    sample_rate: int = 16_000,
    dynamic_range_db: float = 80.0,
    ncols: int = 3,
) -> Any:
    """Spectrograms (STFT, dB) of a clip before and after each augmentation on one colour scale.

    ``items``: ``(name, wave [samples])`` at ``sample_rate`` Hz; the first item is the clip
    before augmentation, the others are its augmented versions.
    """
    if not items:
        raise ValueError("plot_augmentation_grid: no items given")
    specs = [_stft_db(w, sample_rate) for _, w in items]
    vmax = max(float(s[2].max()) for s in specs)
    ncols = min(ncols, len(items))
    nrows = math.ceil(len(items) / ncols)
    fig = _new_figure((3.9 * ncols + 0.8, 2.7 * nrows + 0.5))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)).ravel()
    mesh = None
    for k, (ax, (name, _), (f, t, db)) in enumerate(zip(axes, items, specs)):
        mesh = ax.pcolormesh(
            t, f, db, vmin=vmax - dynamic_range_db, vmax=vmax, shading="auto", cmap="magma", rasterized=True
        )
        ax.set_title(("before: " if k == 0 else "after: ") + str(name))
        ax.set_xlabel("time (s)" if k + ncols >= len(items) else "")
        if k + ncols >= len(items):  # the bottom panel of its column: shared x ticks shown here
            ax.tick_params(labelbottom=True)
        ax.set_ylabel("frequency (Hz)" if k % ncols == 0 else "")
        ax.grid(False)
    for ax in axes[len(items) :]:
        ax.set_visible(False)
    fig.colorbar(mesh, ax=axes[: len(items)].tolist(), label="magnitude (dB re. full scale)", shrink=0.9)
    fig.suptitle("Spectrograms before and after each augmentation")
    return fig


# --------------------------------------------------------------------------------------
# training (notebook 03)
# --------------------------------------------------------------------------------------
@_styled
def plot_training_history(history: pd.DataFrame, *, best_epoch: int | None = None) -> Any:
    """Train and validation loss, and validation EER and accuracy, per epoch.

    ``history``: :func:`deepfake_lib.modeling.training.history_table` (epoch, train_loss, eval_loss,
    eval_eer, eval_auc, eval_accuracy). The best epoch (``best_epoch``, default the lowest
    validation EER, ties broken by AUC) is marked.
    """
    from matplotlib.ticker import MaxNLocator

    fig = _new_figure((12, 4))
    ax1, ax2 = fig.subplots(1, 2)
    h = history.sort_values("epoch") if len(history) else history
    for col, label, color in (
        ("train_loss", "train loss", "#4D4D4D"),
        ("eval_loss", "validation loss", REAL_COLOR),
    ):
        if col in h and h[col].notna().any():
            d = h[["epoch", col]].dropna()
            ax1.plot(d["epoch"], d[col], marker="o", color=color, label=label)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("cross-entropy loss (nats)")
    ax1.set_title("Loss")
    for col, label, color in (
        ("eval_eer", "validation EER", FAKE_COLOR),
        ("eval_accuracy", "validation accuracy", "#009E73"),
    ):
        if col in h and h[col].notna().any():
            d = h[["epoch", col]].dropna()
            ax2.plot(d["epoch"], 100 * d[col], marker="o", color=color, label=label)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("rate (%)")
    ax2.set_ylim(0, 100)
    for ax in (ax1, ax2):  # whole epochs only, also for a one-epoch run
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.set_title("Validation EER and accuracy")
    if best_epoch is None and "eval_eer" in h and h["eval_eer"].notna().any():
        from deepfake_lib.evaluation.metrics import selection_score

        ranked = h.dropna(subset=["eval_eer"])
        aucs = ranked["eval_auc"].fillna(0.0) if "eval_auc" in ranked else [0.0] * len(ranked)
        picks = [selection_score(e, a) for e, a in zip(ranked["eval_eer"], aucs)]
        best_epoch = int(ranked["epoch"].iloc[int(np.argmin(picks))])
    if best_epoch is not None:
        for ax in (ax1, ax2):
            ax.axvline(
                best_epoch, color="#7F7F7F", linestyle="--", linewidth=1, label=f"best epoch ({best_epoch})"
            )
        if "eval_eer" in h:
            sel = h[h["epoch"] == best_epoch]["eval_eer"].dropna()
            if len(sel):
                ax2.plot(
                    [best_epoch],
                    [100 * float(sel.iloc[0])],
                    marker="*",
                    markersize=16,
                    color=FAKE_COLOR,
                    linestyle="none",
                    label=f"best EER {100 * float(sel.iloc[0]):.1f}%",
                )
    for ax in (ax1, ax2):
        if len(h):
            ax.xaxis.get_major_locator().set_params(integer=True)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.suptitle("Training history")
    return fig


class LiveHistoryPlot:
    """Live training plot for ``fine_tune(..., on_epoch=LiveHistoryPlot())``.

    Each call redraws :func:`plot_training_history` in one output area of the notebook
    (``IPython.display.display(fig, display_id=True)`` the first time, ``handle.update(fig)``
    afterwards). Figures are closed, so they do not pile up. Outside Jupyter (scripts, tests,
    papermill without a display) it only keeps the latest figure in :attr:`figure`.
    """

    def __init__(self, *, best_epoch: int | None = None) -> None:
        self.best_epoch = best_epoch
        self.figure: Any = None
        self.calls = 0
        self._handle: Any = None

    def __call__(self, history: pd.DataFrame) -> None:
        """Redraw with the history so far (the table of :func:`deepfake_lib.modeling.training.history_table`)."""
        self.figure = plot_training_history(history, best_epoch=self.best_epoch)
        self.calls += 1
        if not _in_jupyter():
            return
        from IPython.display import display

        if self._handle is None:
            self._handle = display(self.figure, display_id=True)
        else:
            self._handle.update(self.figure)


# --------------------------------------------------------------------------------------
# analysis (notebook 04)
# --------------------------------------------------------------------------------------
_DET_TICKS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95)


def _as_systems(labels: Any, scores: Any, name: str | None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    if isinstance(scores, Mapping):
        out = []
        for key, s in scores.items():
            lab = labels[key] if isinstance(labels, Mapping) else labels
            out.append((str(key), np.asarray(lab, dtype=int), np.asarray(s, dtype=float)))
        return out
    return [(name or "model", np.asarray(labels, dtype=int), np.asarray(scores, dtype=float))]


@_styled
def plot_roc_det(labels: Any, scores: Any, *, name: str | None = None) -> Any:
    """ROC and DET curves side by side, with the EER point marked.

    ``labels`` [n] (1 = Real) and ``scores`` [n] (higher = more bona fide); or ``scores`` a
    mapping ``{system name: scores}`` (``labels`` shared or a mapping too) to compare systems.
    The DET plot has normal-deviate axes (``scipy.stats.norm.ppf``) with ticks in percent.
    """
    from scipy.stats import norm
    from sklearn.metrics import roc_auc_score

    from deepfake_lib.evaluation.metrics import compute_det_curve, compute_eer

    systems = _as_systems(labels, scores, name)
    fig = _new_figure((11.5, 5.4 + 0.25 * math.ceil(len(systems) / 3)))
    ax_roc, ax_det = fig.subplots(1, 2)
    lo_p, hi_p = _DET_TICKS[0] / 2, 0.97
    clip = lambda v: norm.ppf(np.clip(v, lo_p, hi_p))  # noqa: E731
    for k, (sys_name, y, s) in enumerate(systems):
        color = SYSTEM_PALETTE[k % len(SYSTEM_PALETTE)]
        far, frr, _ = compute_det_curve(y, s)
        eer = compute_eer(y, s).eer
        auc = roc_auc_score(y, s)
        label = f"{sys_name} (EER {100 * eer:.1f}%, AUC {auc:.3f})"
        ax_roc.plot(far, 1 - frr, color=color, linewidth=1.8, drawstyle="steps-post", label=label)
        ax_roc.plot([eer], [1 - eer], marker="o", markersize=7, color=color, markeredgecolor="black")
        ax_det.plot(clip(far), clip(frr), color=color, linewidth=1.8, label=label)
        ax_det.plot([clip(eer)], [clip(eer)], marker="o", markersize=7, color=color, markeredgecolor="black")
    ax_roc.plot([0, 1], [0, 1], color="#999999", linestyle=":", linewidth=1, label="chance")
    ax_roc.set_xlim(0, 1)
    ax_roc.set_ylim(0, 1.01)
    ax_roc.set_xlabel("false acceptance rate (spoofs accepted)")
    ax_roc.set_ylabel("true acceptance rate (bona fide accepted)")
    ax_roc.set_title("ROC (dot = EER point)")
    ticks = norm.ppf(_DET_TICKS)
    tick_labels = [f"{100 * t:g}" for t in _DET_TICKS]
    ax_det.plot(
        [norm.ppf(lo_p), norm.ppf(hi_p)],
        [norm.ppf(lo_p), norm.ppf(hi_p)],
        color="#999999",
        linestyle=":",
        linewidth=1,
        label="FAR = FRR",
    )
    ax_det.set_xticks(ticks, tick_labels)
    ax_det.set_yticks(ticks, tick_labels)
    ax_det.set_xlim(norm.ppf(lo_p), norm.ppf(hi_p))
    ax_det.set_ylim(norm.ppf(lo_p), norm.ppf(hi_p))
    ax_det.tick_params(axis="x", labelrotation=45)
    ax_det.set_xlabel("false acceptance rate (%)")
    ax_det.set_ylabel("false rejection rate (%)")
    ax_det.set_title("DET (normal-deviate axes; dot = EER)")
    handles, labels_ = ax_roc.get_legend_handles_labels()
    fig.legend(handles, labels_, loc="outside lower center", ncol=min(3, len(handles)), frameon=False)
    fig.suptitle("Detection performance on the test split")
    return fig


@_styled
def plot_far_frr(labels: Any, scores: Any, *, threshold: float | None = None, name: str = "model") -> Any:
    """FAR and FRR against the decision threshold, crossing at the EER.

    A clip is accepted as bona fide when its score is at least the threshold. At threshold
    ``t``: FAR (false acceptance rate) = share of spoofs accepted (score >= t); FRR (false
    rejection rate) = share of bona fide clips rejected (score < t). Raising the threshold
    trades FAR for FRR; the EER is the rate where the two are equal (the dot, computed as in
    :func:`deepfake_lib.evaluation.metrics.compute_eer`). ``labels`` [n] (1 = Real), ``scores`` [n] (higher
    = more bona fide); ``threshold`` (a score, e.g. the validation EER threshold) is drawn with
    the FAR and FRR it gives on these clips.
    """
    from deepfake_lib.evaluation.metrics import compute_det_curve, compute_eer

    y = np.asarray(labels, dtype=int)
    s = np.asarray(scores, dtype=float)
    far, frr, thresholds = compute_det_curve(y, s)
    eer = compute_eer(y, s)
    finite = thresholds[np.isfinite(thresholds)]
    margin = 0.05 * max(float(finite.max() - finite.min()), 1e-6)
    # thresholds below every score accept everything; the +inf point (accept nothing) is drawn at the right edge
    x = np.concatenate([[finite.min() - margin], finite, [finite.max() + margin]])
    far_x = np.concatenate([[1.0], far])
    frr_x = np.concatenate([[0.0], frr])
    fig = _new_figure((8, 4.6))
    ax = fig.subplots()
    n_spoof, n_bona = int((y == 0).sum()), int((y == 1).sum())
    ax.plot(
        x,
        _pct(far_x),
        drawstyle="steps-pre",
        color=FAKE_COLOR,
        linewidth=2,
        label=f"FAR: spoofs accepted (of {n_spoof})",
    )
    ax.plot(
        x,
        _pct(frr_x),
        drawstyle="steps-pre",
        color=REAL_COLOR,
        linewidth=2,
        linestyle="--",
        label=f"FRR: bona fide rejected (of {n_bona})",
    )
    ax.plot(
        [eer.threshold],
        [100 * eer.eer],
        marker="o",
        markersize=8,
        color="black",
        linestyle="none",
        label=f"EER {100 * eer.eer:.1f}% (FAR = FRR) at score {eer.threshold:.3g}",
    )
    ax.axhline(100 * eer.eer, color="#999999", linestyle=":", linewidth=1)
    if threshold is not None:
        t = float(threshold)
        far_t, frr_t = float(np.mean(s[y == 0] >= t)), float(np.mean(s[y == 1] < t))
        ax.axvline(
            t,
            color="#4D4D4D",
            linestyle="-.",
            linewidth=1.2,
            label=f"threshold {t:.3g}: FAR {100 * far_t:.1f}%, FRR {100 * frr_t:.1f}%",
        )
    ax.set_xlim(x[0], x[-1])
    ax.set_ylim(-2, 102)
    ax.set_xlabel("threshold (score, log-odds of Real; accept as bona fide when score >= threshold)")
    ax.set_ylabel("error rate (%)")
    ax.set_title(f"{name}: FAR and FRR against the threshold")
    ax.legend(loc="upper center", fontsize=8)
    return fig


@_styled
def plot_score_histograms(scores: pd.DataFrame, *, threshold: float | None = None, bins: int = 30) -> Any:
    """Score distributions per class (left) and per attack (right), with the threshold.

    ``scores``: per-clip table with ``label``, ``score`` (log-odds of Real) and ``attack``
    (e.g. ``test_scores.csv``); ``threshold`` a score (e.g. the validation EER threshold).
    """
    if not {"label", "score"} <= set(scores.columns):
        raise ValueError(f"plot_score_histograms: scores lacks label/score; has {list(scores.columns)}")
    has_attack = "attack" in scores.columns
    fig = _new_figure((12, 4.2) if has_attack else (6.5, 4.2))
    axes = fig.subplots(1, 2 if has_attack else 1, squeeze=False, sharex=True)[0]
    s = scores["score"].to_numpy(float)
    edges = np.histogram_bin_edges(s, bins=bins)
    cls = scores["label"].map(_class_name)
    for name in ("Real", "Fake"):
        _class_hist(
            axes[0], s[(cls == name).to_numpy()], name, edges, label=f"{name} (n={int((cls == name).sum())})"
        )
    axes[0].set_title("Scores per class")
    if has_attack:
        attacks = sorted(scores["attack"].astype(str).unique(), key=lambda a: (a != "bonafide", a))
        colors = attack_colors(attacks)
        for a in attacks:
            v = s[(scores["attack"].astype(str) == a).to_numpy()]
            axes[1].hist(
                v, bins=edges, histtype="step", linewidth=2, color=colors[a], label=f"{a} (n={v.size})"
            )
        axes[1].set_title("Scores per attack")
    for ax in axes:
        if threshold is not None:
            ax.axvline(
                threshold, color="black", linestyle="--", linewidth=1.2, label=f"threshold {threshold:.3g}"
            )
        ax.set_xlabel("score (log-odds of Real; higher = more bona fide)")
        ax.set_ylabel("clips")
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle("Score distributions")
    return fig


@_styled
def plot_confusion_matrix(
    cm: Any, labels: Sequence[str] = LABEL_NAMES, *, title: str = "Confusion matrix"
) -> Any:
    """Counts and row percentages of a confusion matrix ``cm`` [true, predicted] (rows = true
    class in the order of ``labels``; e.g. ``metrics["test"]["confusion_matrix"]``)."""
    m = np.asarray(cm, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] != len(labels):
        raise ValueError(
            f"plot_confusion_matrix: cm must be [{len(labels)}, {len(labels)}], got shape {m.shape}"
        )
    rows = m.sum(axis=1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    fig = _new_figure((5.2, 4.4))
    ax = fig.subplots()
    image = ax.imshow(100 * share, cmap="Blues", vmin=0, vmax=100)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j,
                i,
                f"{int(m[i, j])}\n({100 * share[i, j]:.0f}%)",
                ha="center",
                va="center",
                fontsize=11,
                color="white" if share[i, j] > 0.6 else "black",
            )
    ax.set_xticks(range(len(labels)), [f"predicted {lab}" for lab in labels])
    ax.set_yticks(range(len(labels)), [f"true {lab}" for lab in labels])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.grid(False)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="share of the true class (%)", shrink=0.8)
    return fig


def _condition_tick(row: Mapping[str, Any]) -> str:
    """Short tick label of a robustness condition: its parameter with a unit (family shown below)."""
    family, unit, value = str(row.get("family", "")), str(row.get("unit", "") or ""), row.get("parameter")
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not np.isfinite(number):
        text = str(value) if value not in (None, "") and str(value) != "nan" else str(row["condition"])
        return text.removeprefix("ogg-")
    if unit == "Hz":
        return f"{number / 1000:g} kHz"
    if unit == "fraction of peak":
        return f"{number:g} x peak"
    if unit.startswith("dB"):
        return f"{number:+g} dB" if family == "gain" else f"{number:g} dB"
    if unit.startswith("s"):
        return f"{number:g} s"
    return f"{number:g} {unit}".strip()


@_styled
def plot_robustness(robustness: pd.DataFrame) -> Any:
    """EER (with 95% interval) under each degradation, grouped and coloured by family, with
    the clean EER and its interval as a reference band. ``robustness``:
    :func:`deepfake_lib.studies.robustness.evaluate_robustness`."""
    from matplotlib.transforms import blended_transform_factory

    need = {"condition", "family", "eer"}
    if not need <= set(robustness.columns):
        raise ValueError(f"plot_robustness: robustness lacks {sorted(need - set(robustness.columns))}")
    df = robustness.reset_index(drop=True)
    families = list(dict.fromkeys(df["family"]))
    colors = {f: FAMILY_PALETTE[i % len(FAMILY_PALETTE)] for i, f in enumerate(families)}
    x, pos, last = [], 0.0, None
    for fam in df["family"]:
        if last is not None and fam != last:
            pos += 0.8
        x.append(pos)
        pos += 1.0
        last = fam
    x = np.asarray(x)
    fig = _new_figure((max(8.0, 0.62 * len(df) + 3.2), 5.2))
    ax = fig.subplots()
    low = df["eer_low"] if "eer_low" in df else df["eer"]
    high = df["eer_high"] if "eer_high" in df else df["eer"]
    clean = df[df["family"] == "clean"]
    if len(clean):
        c = clean.iloc[0]
        ax.axhline(
            100 * c["eer"],
            color="#4D4D4D",
            linestyle="--",
            linewidth=1,
            label=f"clean EER {100 * c['eer']:.1f}%",
        )
        if "eer_low" in df and np.isfinite(c.get("eer_low", np.nan)):
            ax.axhspan(
                100 * c["eer_low"],
                100 * c["eer_high"],
                color="#4D4D4D",
                alpha=0.1,
                label="clean 95% interval",
            )
    for fam in families:
        sel = (df["family"] == fam).to_numpy()
        ax.errorbar(
            x[sel],
            _pct(df["eer"][sel]),
            yerr=100 * _error(df["eer"][sel], low[sel], high[sel]),
            fmt="o",
            color=colors[fam],
            ecolor=colors[fam],
            capsize=3,
            markersize=6,
        )
    ax.axhline(50, color="#999999", linestyle=":", linewidth=1, label="chance (50%)")
    ax.set_xticks(x, [_condition_tick(r) for _, r in df.iterrows()], fontsize=8)
    ax.set_xlim(x.min() - 0.7, x.max() + 0.7)
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    for fam in families:
        xs = x[(df["family"] == fam).to_numpy()]
        ax.text(
            xs.mean(),
            -0.09,
            _wrap(fam, max(11, 9 * xs.size)),
            transform=trans,
            ha="center",
            va="top",
            fontsize=9,
            color=colors[fam],
            fontweight="bold",
        )
    ax.set_xlabel("condition, grouped by family", labelpad=34)
    ax.set_ylabel("EER (%)")
    ax.set_ylim(0, _eer_axis_top(df["eer"], high))
    known = "eer_low" in df and bool(_known_bounds(low, high).any())  # no columns: no intervals
    ax.set_title(
        "Robustness: test EER under degradations "
        + ("(95% intervals)" if known else "(no intervals: too few groups)")
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


@_styled
def plot_reliability(calibration: Mapping[str, Any]) -> Any:
    """Reliability diagram of P(Real) on test before and after temperature scaling, and how
    many clips fall in each probability bin. ``calibration``:
    :func:`deepfake_lib.evaluation.calibration.calibrate_scores`."""
    fig = _new_figure((11.5, 4.6))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot([0, 1], [0, 1], color="#999999", linestyle=":", label="perfect calibration")
    t = calibration["temperature"]
    n_bins = int(calibration.get("n_bins", 10))
    width = 1.0 / n_bins
    for k, (key, ece_key, label, color) in enumerate(
        (
            ("reliability_before", "ece_before", "before", "#7F7F7F"),
            ("reliability_after", "ece_after", f"after (T = {t:.2f})", "#009E73"),
        )
    ):
        curve = calibration[key]
        counts = np.asarray(curve["count"], dtype=float)
        sizes = 20 + 180 * counts / max(counts.max(), 1)
        ax1.plot(curve["mean_predicted"], curve["observed_frequency"], color=color, linewidth=1.5)
        ax1.scatter(
            curve["mean_predicted"],
            curve["observed_frequency"],
            s=sizes,
            color=color,
            edgecolor="black",
            zorder=3,
            label=f"{label}: ECE {calibration[ece_key]:.3f}",
        )
        ax2.bar(
            np.asarray(curve["bin_center"]) + (k - 0.5) * width * 0.45,
            counts,
            width * 0.45,
            color=color,
            label=label,
        )
    ax1.set_xlim(0, 1)
    ax1.set_ylim(0, 1)
    ax1.set_xlabel("mean predicted P(Real) in bin")
    ax1.set_ylabel("observed share of Real in bin")
    ax1.set_title("Reliability on test (marker area ~ clips)")
    ax1.legend(loc="upper left")
    ax2.set_xlim(0, 1)
    ax2.set_xlabel("predicted P(Real) (bin centre)")
    ax2.set_ylabel("clips")
    ax2.set_title("Clips per probability bin")
    ax2.legend()
    fig.suptitle(f"Calibration: temperature fitted on validation only (T = {t:.2f})")
    return fig


@_styled
def plot_occlusion(
    matrix: np.ndarray,
    band_edges: Sequence[float],
    segment_edges: Sequence[float],
    *,
    wave: np.ndarray | None = None,
    sample_rate: int = 16_000,
) -> Any:
    """Occlusion map from :func:`deepfake_lib.studies.explain.occlusion_map`: score change (log-odds)
    when each frequency band (rows, Hz) in each time segment (columns, s) is removed; blue =
    removing it lowers the score (the model took it as bona fide evidence), red = raises it.
    With ``wave``, the clip's waveform is drawn above on the same time axis."""
    from matplotlib.colors import TwoSlopeNorm

    m = np.asarray(matrix, dtype=float)
    be = np.asarray(band_edges, dtype=float)
    se = np.asarray(segment_edges, dtype=float)
    if m.shape != (be.size - 1, se.size - 1):
        raise ValueError(
            f"plot_occlusion: matrix {m.shape} does not match {be.size - 1} bands x {se.size - 1} segments"
        )
    fig = _new_figure((10, 6.2 if wave is not None else 4.8))
    if wave is not None:
        ax_w, ax = fig.subplots(2, 1, sharex=True, height_ratios=[1, 3])
        t = np.arange(len(wave)) / sample_rate
        ax_w.plot(t, wave, color="#333333", linewidth=0.5)
        ax_w.set_ylabel("amplitude")
        ax_w.set_title("Clip (waveform, 16 kHz)")
    else:
        ax = fig.subplots()
    lim = float(np.nanmax(np.abs(m))) or 1e-6
    rows = np.arange(be.size)  # one equal-height row per band, whatever its width in Hz
    mesh = ax.pcolormesh(
        se,
        rows,
        m,
        cmap="RdBu_r",
        norm=TwoSlopeNorm(vcenter=0.0, vmin=-lim, vmax=lim),
        shading="flat",
        edgecolors="white",
        linewidth=0.3,
    )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency band (Hz; one row per band)")
    ax.set_yticks(rows, [f"{f:g}" for f in be])
    ax.grid(False)
    ax.set_title("Occlusion: score change when a band is removed")
    fig.colorbar(
        mesh,
        ax=ax,
        label="score change (log-odds of Real)\nblue: it looked bona fide, red: it looked spoofed",
    )
    return fig


@_styled
def plot_window_timeline(
    windows: pd.DataFrame,
    threshold: float = 0.0,
    *,
    boundaries: Sequence[float] = (),
    segment_labels: Sequence[str] = (),
) -> Any:
    """Score of every window along a long clip (:func:`deepfake_lib.studies.explain.score_windows`),
    with the decision threshold; windows above it count as Real (blue), below as Fake. Optional
    ``boundaries`` (s) mark where spliced segments meet, and ``segment_labels`` name the
    segments between them (e.g. ``["bona fide", "spoof (A01)"]``)."""
    need = {"center_s", "score"}
    if not need <= set(windows.columns):
        raise ValueError(f"plot_window_timeline: windows lacks {sorted(need - set(windows.columns))}")
    fig = _new_figure((11, 4))
    ax = fig.subplots()
    t = windows["center_s"].to_numpy(float)
    s = windows["score"].to_numpy(float)
    ax.plot(t, s, color="#333333", linewidth=1.2, zorder=2, label="window score")
    ax.scatter(
        t, s, c=[REAL_COLOR if v >= threshold else FAKE_COLOR for v in s], s=28, zorder=3, edgecolor="white"
    )
    ax.fill_between(
        t,
        s,
        threshold,
        where=s >= threshold,
        color=REAL_COLOR,
        alpha=0.2,
        interpolate=True,
        label="above: Real",
    )
    ax.fill_between(
        t,
        s,
        threshold,
        where=s < threshold,
        color=FAKE_COLOR,
        alpha=0.2,
        interpolate=True,
        label="below: Fake",
    )
    ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:.3g}")
    end = float(windows["end_s"].max()) if "end_s" in windows else float(t.max())
    edges = [0.0, *[float(b) for b in boundaries], end]
    for k, b in enumerate(boundaries):
        ax.axvline(
            b, color="#7F7F7F", linewidth=1.5, linestyle="-.", label="splice point" if k == 0 else None
        )
    if segment_labels:
        ymax = ax.get_ylim()[1]
        for k, lab in enumerate(segment_labels[: len(edges) - 1]):
            ax.text((edges[k] + edges[k + 1]) / 2, ymax, lab, ha="center", va="bottom", fontsize=10)
    ax.set_xlim(0, end)
    ax.set_xlabel("time (s, window centre)")
    ax.set_ylabel("score (log-odds of Real)")
    width = (
        float((windows["end_s"] - windows["start_s"]).iloc[0])
        if {"start_s", "end_s"} <= set(windows.columns)
        else None
    )
    ax.set_title(
        "Score along the clip" + (f" ({width:g} s windows)" if width else ""), pad=18 if segment_labels else 6
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


@_styled
def plot_protocol_comparison(table: pd.DataFrame) -> Any:
    """Accuracy and EER of each protocol row of :func:`deepfake_lib.studies.study_protocol.compare_protocols`,
    with their intervals (the table's ``interval`` column says which kind; a row without a
    figure says "not measured")."""
    need = {"protocol", "accuracy"}
    if not need <= set(table.columns):
        raise ValueError(f"plot_protocol_comparison: table lacks {sorted(need - set(table.columns))}")
    df = table.reset_index(drop=True)
    y = np.arange(len(df))[::-1]
    fig = _new_figure((12, 1.0 * len(df) + 2))
    ax1, ax2 = fig.subplots(1, 2, sharey=True)
    colors = np.asarray([SYSTEM_PALETTE[(i + 1) % len(SYSTEM_PALETTE)] for i in range(len(df))])
    for ax, key, title in ((ax1, "accuracy", "Accuracy (%)"), (ax2, "eer", "EER (%)")):
        if key not in df:
            continue
        v = df[key].to_numpy(float)
        lo = df.get(f"{key}_low", df[key]).to_numpy(float)
        hi = df.get(f"{key}_high", df[key]).to_numpy(float)
        ok = np.isfinite(v)
        ax.barh(y[ok], 100 * v[ok], color=colors[ok], alpha=0.85, height=0.6)
        ax.errorbar(
            100 * v[ok],
            y[ok],
            xerr=100 * _error(v[ok], lo[ok], hi[ok]),
            fmt="none",
            ecolor="black",
            capsize=4,
        )
        for yy, vv, hh, ok_ in zip(y, v, hi, ok):
            if ok_:
                ax.text(
                    100 * np.nanmax([vv, hh]) + 1.5,
                    yy,
                    f"{100 * vv:.1f}%",
                    va="center",
                    ha="left",
                    fontsize=9,
                    fontweight="bold",
                )
            else:
                ax.text(1, yy, "not measured", va="center", ha="left", fontsize=9, color="#7F7F7F")
        ax.set_xlim(0, 100)
        ax.set_xlabel(title)
        ax.set_title(title.split(" (")[0] + " with its interval")
    names = [
        f"{p} (n={int(n)})" if "n_clips" in df else str(p)
        for p, n in zip(df["protocol"], df.get("n_clips", df["protocol"]))
    ]
    ax1.set_yticks(y, [_wrap(p, 34) for p in names])
    ax1.set_ylabel("protocol (clips the figure is measured on)")
    ax2.tick_params(axis="y", labelleft=False)
    fig.suptitle("The study's protocol against ours (same data)")
    return fig


@_styled
def plot_epoch_picking(summary: Mapping[str, Any]) -> Any:
    """Accuracy on random test subsets when the epoch is picked on them (the study's protocol)
    against the validation-selected epoch on the same subsets and on the whole test split.
    ``summary``: :func:`deepfake_lib.studies.study_protocol.summarize_epoch_picking`."""
    fig = _new_figure((9, 4.2))
    ax = fig.subplots()
    n = summary["n_val"]
    edges = np.linspace(-0.5 / n, 1 + 0.5 / n, n + 2)
    centers = (edges[:-1] + edges[1:]) / 2
    width = 0.4 / n
    honest_color, picked_color = "#4D4D4D", "#E69F00"
    for k, (key, color, label) in enumerate(
        (
            (
                "honest_subsets",
                honest_color,
                f"selected epoch {summary['selected_epoch']} on {n}-clip subsets",
            ),
            ("picked", picked_color, f"best epoch picked on the same {n} clips"),
        )
    ):
        counts, _ = np.histogram(summary[key]["draws"], bins=edges)
        ax.bar(centers + (k - 0.5) * width, counts, width, color=color, label=label)
    ax.axvline(
        summary["honest_accuracy"],
        color=honest_color,
        linestyle="--",
        label=f"honest accuracy on all {summary['n_test_clips']} test clips ({100 * summary['honest_accuracy']:.1f}%)",
    )
    ax.axvline(
        summary["picked"]["mean"],
        color=picked_color,
        linestyle="-",
        linewidth=2,
        label=f"mean when picked ({100 * summary['picked']['mean']:.1f}%)",
    )
    ax.set_xlim(edges[0], edges[-1])
    ax.xaxis.set_major_formatter(_percent_formatter())
    ax.set_xlabel(f"accuracy on {n} test clips (at P(Real) = 0.5)")
    ax.set_ylabel(f"draws (of {summary['n_draws']})")
    ax.set_title("Picking the epoch on the clips you report flatters accuracy")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def _percent_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{100 * v:.0f}%")


@_styled
def plot_per_attack(per_attack: pd.DataFrame, loao: pd.DataFrame | None = None) -> Any:
    """EER per attack with 95% intervals (:func:`deepfake_lib.studies.attacks.per_attack_eer`), and,
    with ``loao`` (:func:`deepfake_lib.studies.attacks.leave_one_attack_out`), each attack's EER when
    it was held out of training (unseen) next to the other attacks' (seen)."""
    need = {"attack", "eer"}
    if not need <= set(per_attack.columns):
        raise ValueError(f"plot_per_attack: per_attack lacks {sorted(need - set(per_attack.columns))}")
    fig = _new_figure((12, 4.5) if loao is not None else (6.5, 4.5))
    axes = fig.subplots(1, 2 if loao is not None else 1, squeeze=False)[0]
    ax = axes[0]
    colors = attack_colors(per_attack["attack"])
    x = np.arange(len(per_attack))
    v = per_attack["eer"].to_numpy(float)
    lo = per_attack.get("eer_low", per_attack["eer"]).to_numpy(float)
    hi = per_attack.get("eer_high", per_attack["eer"]).to_numpy(float)
    ax.bar(x, 100 * v, color=[colors[a] for a in per_attack["attack"]], alpha=0.9)
    has_intervals = _errorbars(ax, x, v, lo, hi, capsize=4)
    labels = [
        f"{a}\n(n={int(n)})" if "n_spoof" in per_attack else str(a)
        for a, n in zip(per_attack["attack"], per_attack.get("n_spoof", per_attack["eer"]))
    ]
    ax.set_xticks(x, labels)
    ax.set_xlabel("attack (spoofs of it vs all bona fide clips)")
    ax.set_ylabel("EER (%)")
    ax.set_ylim(0, _eer_axis_top(v, hi))
    ax.axhline(50, color="#999999", linestyle=":", linewidth=1)
    ax.set_title(
        "EER per attack " + ("(95% intervals)" if has_intervals else "(no intervals: too few groups)")
    )
    if loao is not None:
        ax = axes[1]
        from matplotlib.patches import Patch

        xs = np.arange(len(loao))
        width = 0.38
        held_colors = attack_colors(loao["attack"])
        tops: list[np.ndarray] = []
        for k, prefix in enumerate(("seen_", "unseen_")):
            v = loao[prefix + "eer"].to_numpy(float)
            lo = loao.get(prefix + "eer_low", loao[prefix + "eer"]).to_numpy(float)
            hi = loao.get(prefix + "eer_high", loao[prefix + "eer"]).to_numpy(float)
            pos = xs + (k - 0.5) * width
            if prefix == "seen_":
                ax.bar(pos, 100 * v, width, color="#BDBDBD", edgecolor="#4D4D4D")
            else:
                ax.bar(
                    pos,
                    100 * v,
                    width,
                    color=[held_colors[str(a)] for a in loao["attack"]],
                    edgecolor="#4D4D4D",
                    hatch="//",
                )
            _errorbars(ax, pos, v, lo, hi, capsize=3)
            tops += [v, hi]
        ax.set_xticks(xs, [str(a) for a in loao["attack"]])
        ax.set_xlabel("attack scored (each pair: same training-set size and epochs)")
        ax.set_ylabel("EER (%)")
        ax.set_ylim(0, 1.25 * _eer_axis_top(*tops))  # headroom: the legend sits above the bars
        ax.axhline(50, color="#999999", linestyle=":", linewidth=1)
        epochs = sorted(set(int(e) for e in loao["epochs"])) if "epochs" in loao else []
        ax.set_title(
            "Leave one attack out" + (f" ({', '.join(map(str, epochs))}-epoch runs)" if epochs else "")
        )
        ax.legend(
            handles=[
                Patch(
                    facecolor="#BDBDBD",
                    edgecolor="#4D4D4D",
                    label="same-budget control (attack seen in training)",
                ),
                Patch(
                    facecolor="white",
                    edgecolor="#4D4D4D",
                    hatch="//",
                    label="attack held out of training (unseen)",
                ),
            ],
            loc="upper right",
        )
    fig.suptitle("Per-attack detection")
    return fig
