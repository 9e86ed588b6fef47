"""Figures of the studies in notebook 04: robustness, reliability, occlusion, window timeline, protocol comparison, epoch picking."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from deepfake_lib.notebook.captions import FEW_CLIPS
from deepfake_lib.notebook.plots import (
    FAKE_COLOR,
    FAMILY_PALETTE,
    REAL_COLOR,
    SYSTEM_PALETTE,
    _eer_axis_top,
    _error,
    _known_bounds,
    _new_figure,
    _pct,
    _styled,
)

__all__ = [
    "plot_epoch_picking",
    "plot_occlusion",
    "plot_protocol_comparison",
    "plot_reliability",
    "plot_robustness",
    "plot_window_timeline",
]


def _wrap(text: str, width: int = 28) -> str:
    return "\n".join(textwrap.wrap(str(text), width)) or str(text)


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
        pred = np.asarray(curve["mean_predicted"], dtype=float)
        seen = np.asarray(curve["observed_frequency"], dtype=float)
        few = counts < FEW_CLIPS  # too few clips to read their observed share: hollow
        ax1.plot(pred, seen, color=color, linewidth=1.5)
        ax1.scatter(
            pred[~few],
            seen[~few],
            s=sizes[~few],
            color=color,
            edgecolor="black",
            zorder=3,
            label=f"{label}: ECE {calibration[ece_key]:.3f}",
        )
        ax1.scatter(
            pred[few], seen[few], s=sizes[few], facecolor="white", edgecolor=color, linewidth=1.5, zorder=3
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
    ax1.set_title(f"Reliability on test (marker area ~ clips; hollow: < {FEW_CLIPS} clips)")
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
    with their 95% intervals as black bars; a row whose ``interval`` is a 5-95% spread of random
    draws gets a dotted grey range instead (it is no confidence interval); a row without a figure
    says "not measured"."""
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
        spread = df.get("interval", pd.Series([""] * len(df))).astype(str).str.contains("5-95%").to_numpy()
        ax.barh(y[ok], 100 * v[ok], color=colors[ok], alpha=0.85, height=0.6)
        ci = ok & ~spread
        ax.errorbar(
            100 * v[ci],
            y[ci],
            xerr=100 * _error(v[ci], lo[ci], hi[ci]),
            fmt="none",
            ecolor="black",
            capsize=4,
        )
        if (ok & spread).any():  # a spread of random draws, not a confidence interval: drawn apart
            sp = ok & spread
            ax.errorbar(
                100 * v[sp],
                y[sp],
                xerr=100 * _error(v[sp], lo[sp], hi[sp]),
                fmt="none",
                ecolor="#7F7F7F",
                capsize=0,
                linestyle=":",
                linewidth=2,
                label="5-95% of random draws (not a 95% interval)",
            )
            ax.legend(loc="lower right", fontsize=8)
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
    cut = summary.get("threshold", 0.0)
    where = (
        "each epoch's validation-EER threshold"
        if cut == "validation_eer"
        else ("P(Real) = 0.5" if float(cut) == 0.0 else f"score {float(cut):.3g}")
    )
    ax.set_xlabel(f"accuracy on {n} test clips (at {where})")
    ax.set_ylabel(f"draws (of {summary['n_draws']})")
    ax.set_title("Picking the epoch on the clips you report flatters accuracy")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def _percent_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{100 * v:.0f}%")
