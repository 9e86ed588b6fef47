"""One generated sentence per figure of the series: what the figure shows in this run.

Each ``caption_*`` function takes the data the figure was drawn from and returns a Markdown
sentence (or two) whose every number is computed here. Comparisons follow the one rule of
:mod:`deepfake_lib.notebook.claims`. A notebook shows the caption right below its figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from deepfake_lib import LABEL_NAMES
from deepfake_lib.evaluation.shortcuts import rank_single_cues
from deepfake_lib.notebook.claims import pct

__all__ = [
    "caption_augmentations",
    "caption_class_balance",
    "caption_confusion",
    "caption_distributions",
    "caption_examples",
    "caption_far_frr",
    "caption_history",
    "caption_occlusion",
    "caption_reliability",
    "caption_resampling",
    "caption_roc",
    "caption_scores",
    "caption_shortcut_features",
    "caption_timeline",
    "SHORTCUT_FEATURES_SHOWN",
]

FEW_CLIPS = 5
"""A reliability bin with fewer clips than this is too small to read (drawn hollow)."""

SHORTCUT_FEATURES_SHOWN = 6
"""How many shortcut-control features notebook 01's figure and caption show (the most separating)."""


# --------------------------------------------------------------------------------------
# notebook 01
# --------------------------------------------------------------------------------------
def caption_class_balance(counts: pd.DataFrame, summary: pd.DataFrame | None = None) -> str:
    """``counts``: ``count_split_labels`` (Fake, Real per split); ``summary``: ``summarize_splits``."""
    rows = [s for s in counts.index if s != "total"]
    balanced = all(int(counts.loc[s, "Fake"]) == int(counts.loc[s, "Real"]) for s in rows)
    text = (
        (
            "Every split holds as many bona fide as spoofed clips"
            if balanced
            else "The classes are not balanced in every split"
        )
        + " ("
        + ", ".join(f"{s} {int(counts.loc[s, 'Real'])} / {int(counts.loc[s, 'Fake'])}" for s in rows)
        + ")."
    )
    if summary is not None and {"split", "attack", "clips", "class"} <= set(summary.columns):
        test = summary[(summary["split"] == "test") & (summary["class"] == "Fake")]
        if len(test):
            text += (
                f" The test split has {int(test['clips'].min())} to {int(test['clips'].max())} spoofs per "
                "attack, so any per-attack figure rests on that few clips."
            )
    return text


def caption_distributions(clips: pd.DataFrame, features: Sequence[str] = ("duration", "rms_dbfs")) -> str:
    """The largest gap between an attack's mean and bona fide's, in bona fide standard deviations.

    ``clips``: ``describe_clips`` (class, attack and the ``features`` columns).
    """
    bona = clips[clips["attack"] == "bonafide"]
    best = ("", "", 0.0, 0.0, 0.0)
    for f in features:
        sd = float(bona[f].std()) or 1.0
        for attack, group in clips[clips["attack"] != "bonafide"].groupby("attack"):
            d = (float(group[f].mean()) - float(bona[f].mean())) / sd
            if abs(d) > abs(best[2]):
                best = (f, str(attack), d, float(group[f].mean()), float(bona[f].mean()))
    f, attack, d, mean_a, mean_b = best
    return (
        f"Across {', '.join(features)}, the attack whose mean lies farthest from bona fide is {attack} on "
        f"{f} ({mean_a:.3g} against {mean_b:.3g}, {abs(d):.2f} bona fide standard deviations): these "
        "properties overlap between the classes."
    )


def _mel_db(wave: np.ndarray, sr: int, n_mels: int = 48) -> tuple[np.ndarray, np.ndarray]:
    import librosa

    mel = librosa.feature.melspectrogram(
        y=np.asarray(wave, dtype=np.float32), sr=sr, n_fft=512, n_mels=n_mels
    )
    return librosa.mel_frequencies(n_mels=n_mels, fmax=sr / 2), librosa.power_to_db(mel, ref=1.0)


def caption_examples(pairs: Sequence[tuple[str, np.ndarray, np.ndarray]], sample_rate: int = 16_000) -> str:
    """For each ``(attack, spoof wave, bona fide wave)`` of one utterance: the mel band where the
    spoof's mean level differs most from its bona fide original (dB)."""
    parts = []
    for attack, fake, real in pairs:
        freqs, fake_db = _mel_db(fake, sample_rate)
        _, real_db = _mel_db(real, sample_rate)
        diff = fake_db.mean(axis=1) - real_db.mean(axis=1)
        k = int(np.argmax(np.abs(diff)))
        parts.append(f"{attack} near {freqs[k] / 1000:.1f} kHz ({diff[k]:+.0f} dB)")
    return (
        "Averaged over the excerpt, each spoof's level differs most from its bona fide original at: "
        + "; ".join(parts)
        + "."
    )


def caption_shortcut_features(
    features: pd.DataFrame, labels: Any, attacks: Any, *, shown: int = SHORTCUT_FEATURES_SHOWN
) -> str:
    """How many features the shortcut control uses, the ``shown`` most separating ones alone
    (lowest two-sided single-feature EER, as :func:`~deepfake_lib.notebook.plots_data.plot_shortcut_features`
    draws them), the pooled range, and the feature that best gives one attack away.

    ``features`` [clips, features] (the control's columns), ``labels`` [clips] (1 Real, 0 Fake),
    ``attacks`` [clips].
    """
    y = np.asarray(labels, dtype=int)
    a = np.asarray(attacks, dtype=str)
    ranking = rank_single_cues(features, y)
    top = ranking.iloc[: max(1, int(shown))]
    best = ("", "", 0.5)
    for attack in sorted(set(a[y == 0])):
        keep = (y == 1) | (a == attack)
        per_attack = rank_single_cues(features[keep], y[keep])
        if per_attack.iloc[0] < best[2]:
            best = (str(per_attack.index[0]), attack, float(per_attack.iloc[0]))
    listed = ", ".join(f"{name} ({pct(eer)})" for name, eer in top.items())
    text = (
        f"The shortcut control's logistic regression uses {features.shape[1]} features. The figure shows "
        f"the {len(top)} that separate the classes best one at a time, i.e. with the lowest single-feature "
        f"EER (each feature used in whichever direction separates better; 50% = no information): {listed}. "
        f"Pooled over attacks, single features reach EERs from {pct(ranking.min())} to {pct(ranking.max())}."
    )
    if best[0]:
        text += (
            f" Attack by attack it can be otherwise: {best[0]} alone separates {best[1]} from bona fide "
            f"with an EER of {pct(best[2])}, so a feature can give one attack away while saying little pooled."
        )
    return text


# --------------------------------------------------------------------------------------
# notebook 02
# --------------------------------------------------------------------------------------
def _psd(wave: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy.signal import welch

    f, p = welch(np.asarray(wave, dtype=np.float64), fs=sr, nperseg=2048)
    return f, 10 * np.log10(np.maximum(p, 1e-20))


def caption_resampling(before: np.ndarray, sr_before: int, after: np.ndarray, sr_after: int) -> str:
    """Where the resampled spectrum first falls 3 dB below the original, and how far it is down
    just below the new Nyquist frequency."""
    fb, pb = _psd(before, sr_before)
    fa, pa = _psd(after, sr_after)
    ref = np.interp(fa, fb, pb)
    drop = ref - pa
    nyq = sr_after / 2
    inside = fa < 0.99 * nyq
    below = np.flatnonzero(inside & (drop <= 3.0))  # the filter's transition starts after the last of these
    edge = float(drop[inside][-1])
    start = f"{fa[below[-1]] / 1000:.2f} kHz" if below.size else "the new Nyquist frequency"
    return (
        f"The two spectra agree up to {start}, where the resampled one starts to fall (3 dB down); just "
        f"below {nyq / 1000:g} kHz it is {edge:.0f} dB down, and above it nothing remains."
    )


def caption_augmentations(variants: Sequence[tuple[str, np.ndarray]], sample_rate: int = 16_000) -> str:
    """Mean absolute change of the log-mel spectrogram (dB) of each augmented clip against the
    first (clean) one, largest first; a uniform shift (gain) is named as such."""
    _, clean = _mel_db(variants[0][1], sample_rate)
    changes = []
    for name, wave in variants[1:]:
        _, db = _mel_db(wave, sample_rate)
        n = min(db.shape[1], clean.shape[1])
        d = db[:, :n] - clean[:, :n]
        changes.append((name, float(np.mean(np.abs(d))), float(np.std(d))))
    changes.sort(key=lambda c: -c[1])
    text = (
        "Mean change of the log-mel level against the clean clip: "
        + "; ".join(f"*{n}* {m:.1f} dB" for n, m, _ in changes)
        + "."
    )
    uniform = [(n, m) for n, m, s in changes if s < 0.1 * max(m, 1e-9)]
    if uniform:
        text += (
            f" *{uniform[0][0]}* shifts every cell by the same {uniform[0][1]:.1f} dB: on the shared colour scale "
            "that panel is only slightly darker, and the spectrogram's shape is unchanged."
        )
    return text


# --------------------------------------------------------------------------------------
# notebook 03
# --------------------------------------------------------------------------------------
def caption_history(history: pd.DataFrame, best_epoch: int) -> str:
    """Validation EER at the first and the kept epoch, and the training loss."""
    h = history.sort_values("epoch").dropna(subset=["eval_eer"])
    first, kept = h.iloc[0], h[h["epoch"] == best_epoch].iloc[0]
    loss = history.dropna(subset=["train_loss"]).sort_values("epoch")["train_loss"]
    return (
        f"Validation EER went from {pct(first['eval_eer'])} at epoch {int(first['epoch'])} to "
        f"{pct(kept['eval_eer'])} at epoch {best_epoch}, the epoch kept (of {int(h['epoch'].max())} run); "
        f"the training loss fell from {loss.iloc[0]:.3f} to {loss.iloc[-1]:.3f} nats."
    )


def _rates(labels: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[float, float]:
    far = float(np.mean(scores[labels == 0] >= threshold))
    frr = float(np.mean(scores[labels == 1] < threshold))
    return far, frr


def caption_far_frr(labels: Any, scores: Any, threshold: float) -> str:
    """Where FAR and FRR cross on these scores, and what the validation threshold gives on them."""
    from deepfake_lib.evaluation.error_rates import compute_eer

    y, s = np.asarray(labels, dtype=int), np.asarray(scores, dtype=float)
    eer = compute_eer(y, s)
    far, frr = _rates(y, s, threshold)
    n_fake, n_real = int((y == 0).sum()), int((y == 1).sum())
    return (
        f"FAR and FRR cross at {pct(eer.eer)} (score {eer.threshold:.3f}); at the threshold chosen on "
        f"validation ({threshold:.3f}) the test FAR is {pct(far)} ({round(far * n_fake)} of {n_fake} spoofs) and "
        f"the FRR {pct(frr)} ({round(frr * n_real)} of {n_real} bona fide clips). One clip of a class moves its "
        f"rate by {100 / n_fake:.1f} points (spoofs) or {100 / n_real:.1f} (bona fide)."
    )


# --------------------------------------------------------------------------------------
# notebook 04
# --------------------------------------------------------------------------------------
def caption_roc(labels: Any, scores: Any, far_target: float = 0.05) -> str:
    """The share of bona fide clips accepted when at most ``far_target`` of spoofs are."""
    from sklearn.metrics import roc_auc_score, roc_curve

    y, s = np.asarray(labels, dtype=int), np.asarray(scores, dtype=float)
    fpr, tpr, _ = roc_curve(y, s)
    ok = fpr <= far_target
    tar = float(tpr[ok].max()) if ok.any() else 0.0
    return (
        f"AUC {roc_auc_score(y, s):.3f}. To accept at most {pct(far_target, 0)} of spoofs, this model must "
        f"reject {pct(1 - tar)} of bona fide clips; the DET curve shows the same trade-off on normal-deviate "
        "axes, where its steps are single clips."
    )


def caption_scores(scores: pd.DataFrame, threshold: float) -> str:
    """Spoofs accepted per attack and bona fide rejected, at ``threshold``."""
    s = scores["score"].to_numpy(float)
    y = scores["label"].to_numpy(int)
    fake = scores[y == 0]
    per = [
        f"{a} {int((g['score'] >= threshold).sum())} of {len(g)}"
        for a, g in fake.groupby(fake["attack"].astype(str))
    ]
    return (
        f"At the validation threshold ({threshold:.3f}) {int((s[y == 0] >= threshold).sum())} of {int((y == 0).sum())} "
        f"spoofs score as bona fide ({', '.join(per)}) and {int((s[y == 1] < threshold).sum())} of "
        f"{int((y == 1).sum())} bona fide clips score as spoofs."
    )


def caption_confusion(cm: Sequence[Sequence[int]], labels: Sequence[str] = LABEL_NAMES) -> str:
    """Rows = true class in ``labels`` order (0 = Fake, 1 = Real)."""
    m = np.asarray(cm, dtype=int)
    right = [int(m[i, i]) for i in range(len(labels))]
    total = [int(m[i].sum()) for i in range(len(labels))]
    acc = sum(right) / max(1, int(m.sum()))
    return (
        ", ".join(f"{r} of {t} {name} clips classified as {name}" for r, t, name in zip(right, total, labels))
        + f" (accuracy {pct(acc)})."
    )


def caption_reliability(calibration: Mapping[str, Any]) -> str:
    """How the test clips spread over probability bins, and which bins are too small to read."""
    curve = calibration["reliability_after"]
    counts = np.asarray(curve["count"], dtype=int)
    centers = np.asarray(curve["bin_center"], dtype=float)
    outer = int(counts[(centers < 0.1) | (centers > 0.9)].sum())
    small = counts[counts < FEW_CLIPS]
    text = f"After scaling, {outer} of {int(counts.sum())} test clips sit in the two outer bins (P(Real) below 0.1 or above 0.9)"
    if small.size:
        text += (
            f"; {small.size} of the {counts.size} filled bins hold fewer than {FEW_CLIPS} clips "
            f"({int(small.min())} to {int(small.max())}), drawn hollow: their observed share moves by a "
            "whole clip's worth and says little"
        )
    return text + "."


def caption_timeline(timeline: pd.DataFrame, boundary_s: float, threshold: float) -> str:
    """Windows wholly inside each part of the spliced clip, and how many the threshold reads wrongly."""
    before = timeline[timeline["end_s"] <= boundary_s]
    after = timeline[timeline["start_s"] >= boundary_s]
    wrong_fake = after[after["score"] >= threshold]
    wrong_real = before[before["score"] < threshold]
    text = (
        f"Of the {len(after)} windows wholly inside the spoof, {len(wrong_fake)} still score above the threshold "
        f"(read as bona fide); of the {len(before)} wholly inside the bona fide part, {len(wrong_real)} score below."
    )
    caught = after[after["score"] < threshold]
    if len(caught):
        text += f" The first window read as spoof starts {float(caught['start_s'].min()) - boundary_s:.2f} s after the splice."
    return text


def caption_occlusion(
    matrix: np.ndarray, bands: Sequence[float], segments: Sequence[float], big: float = 0.25
) -> str:
    """The cell whose removal moves the score most, and how many cells move it by more than ``big``."""
    m = np.asarray(matrix, dtype=float)
    i, j = np.unravel_index(int(np.argmax(np.abs(m))), m.shape)
    d = float(m[i, j])
    way = "towards bona fide (it looked spoofed)" if d > 0 else "towards spoof (it looked bona fide)"
    return (
        f"Removing {bands[i]:.0f}-{bands[i + 1]:.0f} Hz at {segments[j]:.1f}-{segments[j + 1]:.1f} s moves the score "
        f"most, by {d:+.2f} log-odds, {way}; {int((np.abs(m) > big).sum())} of {m.size} cells move it by more than "
        f"{big:g}."
    )
