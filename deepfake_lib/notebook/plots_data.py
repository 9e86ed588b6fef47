"""Figures of the data and its preprocessing (notebooks 01 and 02): class balance, distributions, spectrograms, shortcut features, split groups, resampling and augmentation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from deepfake_lib.evaluation.shortcuts import rank_single_cues
from deepfake_lib.notebook.captions import SHORTCUT_FEATURES_SHOWN
from deepfake_lib.notebook.plots import (
    CLASS_COLORS,
    RATE_GREYS,
    REAL_COLOR,
    _class_hist,
    _class_name,
    _new_figure,
    _styled,
    attack_colors,
)

__all__ = [
    "plot_augmentation_grid",
    "plot_class_balance",
    "plot_distributions",
    "plot_resampling",
    "plot_shortcut_features",
    "plot_spectrogram_pairs",
    "plot_split_groups",
    "plot_waveform_and_spectrogram",
]


def _mel_image(ax: Any, db: np.ndarray, sample_rate: int, hop: int, vmin: float, vmax: float) -> Any:
    """A log-mel image ``db`` [n_mels, frames] (dB) on ``ax``: time and mel axes up to Nyquist,
    one colour scale (``vmin``..``vmax`` dB) shared by every panel of a figure."""
    import librosa.display

    return librosa.display.specshow(
        db,
        sr=sample_rate,
        hop_length=hop,
        x_axis="time",
        y_axis="mel",
        fmax=sample_rate / 2,
        ax=ax,
        cmap="magma",
        vmin=vmin,
        vmax=vmax,
    )


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
    ``rms_dbfs``, ``label`` and ``attack``. Overlapping distributions mean these recording
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
    fig.suptitle("Recording properties per class and attack (overlap = no shortcut)")
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
    features: pd.DataFrame,
    labels: Sequence[int] | np.ndarray,
    *,
    shown: int = SHORTCUT_FEATURES_SHOWN,
    bins: int = 25,
) -> Any:
    """Class histograms of the ``shown`` shortcut-control features that separate the classes best
    alone: the columns of ``features`` [clips, features] with the lowest two-sided single-feature
    EER (:func:`deepfake_lib.evaluation.shortcuts.rank_single_cues`) against ``labels`` [clips]
    (1 = Real, 0 = Fake), one panel each, titled with that EER (50% = no information)."""
    y = np.asarray(labels, dtype=int)
    if len(y) != len(features):
        raise ValueError(f"plot_shortcut_features: {len(features)} feature rows but {len(y)} labels")
    ranking = rank_single_cues(features, y).iloc[: max(1, int(shown))]
    cols = list(ranking.index)
    ncols = min(3, len(cols))
    nrows = math.ceil(len(cols) / ncols)
    fig = _new_figure((4.2 * ncols, 3.2 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, col in zip(axes, cols):
        v = features[col].to_numpy(float)
        keep = np.isfinite(v)
        v, yk = v[keep], y[keep]
        uniq = np.unique(v)
        if uniq.size <= 6:
            width = 0.4
            for j, (name, cls) in enumerate((("Real", 1), ("Fake", 0))):
                counts = [int(np.sum((v == u) & (yk == cls))) for u in uniq]
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
                _class_hist(ax, v[yk == cls], name, edges)
        ax.set_title(f"{col}  (EER {100 * ranking[col]:.0f}%)")
        ax.set_xlabel(_feature_unit(col))
        ax.set_ylabel("clips")
        ax.legend()
    for ax in axes[len(cols) :]:
        ax.set_visible(False)
    fig.suptitle(
        f"The {len(cols)} of {features.shape[1]} shortcut-control features that separate the classes "
        "best alone (single-feature EER; 50% = no shortcut)"
    )
    return fig


def _feature_unit(name: str) -> str:
    """Axis label of a shortcut-control feature (a cheap cue's unit from its name's suffix)."""
    units = {
        "duration_s": "duration (s)",
        "rms_dbfs": "RMS level (dBFS)",
        "peak_dbfs": "peak level (dBFS)",
        "sample_rate": "sample rate (Hz)",
        "zero_crossing_rate": "zero crossings per sample",
        "duration": "duration (s)",
        "crest_db": "crest factor (dB)",
        "f0_spread_st": "pitch spread (semitones)",
        "spectral_flatness": "spectral flatness (0..1)",
    }
    if name in units:
        return units[name]
    if name.startswith("band_") and name.endswith("_db"):
        lo, hi = name.split("_")[1:3]
        return f"energy {lo}-{hi} Hz (dB re. clip)"
    suffixes = {"_hz": "Hz", "_s": "s", "_fraction": "share of the clip"}
    for suffix, unit in suffixes.items():
        if name.endswith(suffix):
            return f"{name} ({unit})"
    return name


@_styled
def plot_split_groups(split_table: pd.DataFrame, *, group_column: str = "utterance_id") -> Any:
    """Which split every utterance group lands in (clip counts per split are
    :func:`plot_class_balance`'s).

    ``split_table``: :func:`deepfake_lib.corpora.sources.split_table` (split, ``group_column``, label).
    One column per group and one row per split; a group in more than one split (a leak) is drawn
    in red and counted in the title.
    """
    need = {"split", group_column, "label"}
    if not need <= set(split_table.columns):
        raise ValueError(f"plot_split_groups: split_table lacks {sorted(need - set(split_table.columns))}")
    order = [s for s in ("train", "validation", "test") if s in set(split_table["split"])]
    order += sorted(set(split_table["split"]) - set(order))
    fig = _new_figure((10, 3.4))
    ax = fig.subplots()
    membership = split_table.groupby(group_column)["split"].agg(lambda s: set(s))
    first = {g: min(order.index(s) for s in splits) for g, splits in membership.items()}
    groups = sorted(membership.index, key=lambda g: (first[g], str(g)))
    grid = np.zeros((len(order), len(groups)))
    for j, g in enumerate(groups):
        value = 2.0 if len(membership[g]) > 1 else 1.0
        for s in membership[g]:
            grid[order.index(s), j] = value
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    ax.imshow(
        grid,
        aspect="auto",
        interpolation="nearest",
        cmap=ListedColormap(["#F2F2F2", "#4D4D4D", "#D62728"]),
        vmin=0,
        vmax=2,
    )
    ax.set_yticks(range(len(order)), order)
    ax.set_xlabel(f"{group_column} groups ({len(groups)}, sorted by split)")
    ax.set_ylabel("split")
    ax.grid(False)
    ax.legend(
        handles=[
            Patch(color="#4D4D4D", label="group's clips are in this split"),
            Patch(color="#D62728", label="group in several splits (leak)"),
        ],
        loc="upper left",
        bbox_to_anchor=(0.0, -0.25),
        ncol=2,
        frameon=False,
    )
    n_leak = int(sum(len(v) > 1 for v in membership))
    ax.set_title(
        f"Split of every group: {n_leak} group(s) in more than one split" + (" (red)" if n_leak else "")
    )
    return fig


@_styled
def plot_spectrogram_pairs(
    pairs: Sequence[tuple[str, np.ndarray, np.ndarray | None]],
    *,
    sample_rate: int = 16_000,
    excerpt_s: float = 2.0,
    n_mels: int = 48,
    hop_s: float = 0.02,
    dynamic_range_db: float = 80.0,
) -> Any:
    """Log-mel spectrograms of a spoof and the bona fide clip of the same utterance, side by side.

    ``pairs``: ``(title, spoof wave [samples], bona fide wave [samples] or None)`` at
    ``sample_rate`` Hz; the first ``excerpt_s`` seconds of each are drawn with
    ``librosa.display.specshow`` (mel axis in Hz, ``hop_s`` s frames), all on one colour scale
    (power in dB, the loudest cell at the top of the scale, ``dynamic_range_db`` below it).
    """
    import librosa
    import librosa.display

    if not pairs:
        raise ValueError("plot_spectrogram_pairs: no clips given")
    hop = int(round(hop_s * sample_rate))
    n = int(round(excerpt_s * sample_rate))
    specs = [
        [
            None
            if w is None
            else librosa.power_to_db(
                librosa.feature.melspectrogram(
                    y=np.asarray(w[:n], dtype=np.float32),
                    sr=sample_rate,
                    n_fft=512,
                    hop_length=hop,
                    n_mels=n_mels,
                ),
                ref=1.0,
            )
            for w in (fake, real)
        ]
        for _, fake, real in pairs
    ]
    vmax = max(float(db.max()) for row in specs for db in row if db is not None)
    fig = _new_figure((12, 2.4 * len(pairs) + 0.9))
    axes = fig.subplots(len(pairs), 2, squeeze=False, sharex=True, sharey=True)
    mesh = None
    for r, ((title, _, _), row) in enumerate(zip(pairs, specs)):
        for c, (db, kind) in enumerate(zip(row, ("spoof", "bona fide original"))):
            ax = axes[r, c]
            if db is None:
                ax.set_visible(False)
                continue
            mesh = _mel_image(ax, db, sample_rate, hop, vmax - dynamic_range_db, vmax)
            ax.set_title(f"{title}: {kind}")
            ax.grid(False)
            ax.set_xlabel("time (s)" if r == len(pairs) - 1 else "")
            ax.set_ylabel("frequency (Hz, mel scale)" if c == 0 else "")
    fig.colorbar(mesh, ax=axes.ravel().tolist(), label="power (dB)", shrink=0.8)
    fig.suptitle(f"Spoof and bona fide original of one utterance per attack: log-mel, first {excerpt_s:g} s")
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


def _log_mel(wave: np.ndarray, sr: int, *, hop: int, n_mels: int) -> np.ndarray:
    """Log-mel power ``[n_mels, frames]`` in dB (librosa, 512-point FFT, ``hop`` samples)."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=np.asarray(wave, dtype=np.float32), sr=sr, n_fft=512, hop_length=hop, n_mels=n_mels
    )
    return librosa.power_to_db(mel, ref=1.0)


@_styled
def plot_augmentation_grid(
    items: Sequence[tuple[str, np.ndarray]],
    *,
    sample_rate: int = 16_000,
    dynamic_range_db: float = 80.0,
    ncols: int = 3,
    n_mels: int = 48,
    hop_s: float = 0.02,
) -> Any:
    """Log-mel spectrograms (dB, ``hop_s`` s frames) of a clip before and after each augmentation,
    on one colour scale.

    ``items``: ``(name, wave [samples])`` at ``sample_rate`` Hz; the first item is the clip
    before augmentation, the others are its augmented versions.
    """

    if not items:
        raise ValueError("plot_augmentation_grid: no items given")
    hop = int(round(hop_s * sample_rate))
    specs = [_log_mel(w, sample_rate, hop=hop, n_mels=n_mels) for _, w in items]
    vmax = max(float(db.max()) for db in specs)
    ncols = min(ncols, len(items))
    nrows = math.ceil(len(items) / ncols)
    fig = _new_figure((3.9 * ncols + 0.8, 2.7 * nrows + 0.5))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)).ravel()
    mesh = None
    for k, (ax, (name, _), db) in enumerate(zip(axes, items, specs)):
        mesh = _mel_image(ax, db, sample_rate, hop, vmax - dynamic_range_db, vmax)
        ax.set_title(("before: " if k == 0 else "after: ") + str(name))
        ax.set_xlabel("time (s)" if k + ncols >= len(items) else "")
        if k + ncols >= len(items):  # the bottom panel of its column: shared x ticks shown here
            ax.tick_params(labelbottom=True)
        ax.set_ylabel("frequency (Hz, mel scale)" if k % ncols == 0 else "")
        ax.grid(False)
    for ax in axes[len(items) :]:
        ax.set_visible(False)
    fig.colorbar(mesh, ax=axes[: len(items)].tolist(), label="power (dB)", shrink=0.9)
    fig.suptitle("Spectrograms before and after each augmentation")
    return fig
