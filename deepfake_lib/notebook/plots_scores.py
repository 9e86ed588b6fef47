"""Figures of training and scores (notebooks 03 and 04): training history, ROC/DET, FAR/FRR, score histograms, confusion matrix, per-attack EERs."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepfake_lib import LABEL_NAMES
from deepfake_lib.notebook.plots import (
    FAKE_COLOR,
    REAL_COLOR,
    SYSTEM_PALETTE,
    _class_hist,
    _class_name,
    _eer_axis_top,
    _error,
    _in_jupyter,
    _known_bounds,
    _new_figure,
    _pct,
    _styled,
    attack_colors,
    save_figure,
)

__all__ = [
    "LiveHistoryPlot",
    "plot_confusion_matrix",
    "plot_far_frr",
    "plot_per_attack",
    "plot_roc_det",
    "plot_score_histograms",
    "plot_training_history",
]


def _errorbars(ax: Any, x: Any, center: Any, low: Any, high: Any, *, capsize: float) -> bool:
    """Interval bars (in %) where both bounds are known; returns whether any was drawn."""
    c, lo, hi = (np.asarray(v, dtype=float) for v in (center, low, high))
    known = _known_bounds(lo, hi)
    if known.any():
        x = np.asarray(x, dtype=float)[known]
        yerr = 100 * _error(c[known], lo[known], hi[known])
        ax.errorbar(x, 100 * c[known], yerr=yerr, fmt="none", ecolor="black", capsize=capsize)
    return bool(known.any())


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
        from deepfake_lib.evaluation.error_rates import selection_score

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
    papermill without a display) it only keeps the latest figure in :attr:`figure`. With ``path``
    each frame is also written there as a PNG (the last frame is the run's history figure, so the
    notebook need not draw it twice).
    """

    def __init__(self, *, best_epoch: int | None = None, path: str | os.PathLike[str] | None = None) -> None:
        self.best_epoch = best_epoch
        self.path = Path(path) if path is not None else None
        self.figure: Any = None
        self.calls = 0
        self._handle: Any = None

    def __call__(self, history: pd.DataFrame) -> None:
        """Redraw with the history so far (the table of :func:`deepfake_lib.modeling.training.history_table`)."""
        self.figure = plot_training_history(history, best_epoch=self.best_epoch)
        self.calls += 1
        if self.path is not None:
            save_figure(self.figure, self.path, show=False)
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

    from deepfake_lib.evaluation.error_rates import compute_det_curve, compute_eer

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
    from deepfake_lib.evaluation.error_rates import compute_det_curve, compute_eer

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
    """Score distributions per class (left, histograms) and every clip per attack (right, a strip
    plot: one row per attack, one dot per clip, so no attack hides behind another), with the threshold.

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
    axes[0].set_ylabel("clips")
    axes[0].yaxis.get_major_locator().set_params(integer=True)
    if has_attack:
        attacks = sorted(scores["attack"].astype(str).unique(), key=lambda a: (a != "bonafide", a))
        colors = attack_colors(attacks)
        rng = np.random.default_rng(0)  # vertical jitter only, to separate equal scores
        for k, a in enumerate(attacks):
            v = s[(scores["attack"].astype(str) == a).to_numpy()]
            y = k + rng.uniform(-0.25, 0.25, v.size)
            axes[1].scatter(v, y, s=30, color=colors[a], edgecolor="black", linewidth=0.3)
        axes[1].set_yticks(
            range(len(attacks)),
            [f"{a} (n={int((scores['attack'].astype(str) == a).sum())})" for a in attacks],
        )
        axes[1].set_ylim(len(attacks) - 0.5, -0.5)
        axes[1].set_title("Every clip, per attack")
        axes[1].set_ylabel("attack")
    for ax in axes:
        if threshold is not None:
            ax.axvline(
                threshold, color="black", linestyle="--", linewidth=1.2, label=f"threshold {threshold:.3g}"
            )
        ax.set_xlabel("score (log-odds of Real; higher = more bona fide)")
    axes[0].legend(loc="upper left", fontsize=8)  # the threshold line of both panels is named here
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
