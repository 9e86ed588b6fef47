"""Every figure function runs on small inputs (Agg runtime) and returns a labelled Figure."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from deepfake_lib.notebook import plots, plots_data, plots_scores, plots_studies  # noqa: E402

SR = 16_000
RNG = np.random.default_rng(0)


def tone(seconds: float = 0.5, sr: int = SR, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * RNG.standard_normal(t.size)).astype(np.float32)


def check_labelled(fig: Figure) -> None:
    """Every visible data axes has a title (or the figure a suptitle) and x/y labels, its own
    or a shared sibling's; colour bars carry a label."""
    import matplotlib.pyplot as plt

    assert isinstance(fig, Figure)
    assert not plt.get_fignums(), "figures must be detached from pyplot"
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    data_axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    assert data_axes
    for ax in data_axes:
        assert ax.get_title() or suptitle, "axes without a title"
        xs = [ax, *ax.get_shared_x_axes().get_siblings(ax)]
        ys = [ax, *ax.get_shared_y_axes().get_siblings(ax)]
        assert any(a.get_xlabel() for a in xs), f"no x label on {ax.get_title()!r}"
        assert any(a.get_ylabel() for a in ys), f"no y label on {ax.get_title()!r}"
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            assert ax.get_ylabel() or ax.get_xlabel(), "colour bar without a label"
    fig.canvas.draw()  # layout and text rendering must not fail


def per_clip_table(n: int = 40) -> pd.DataFrame:
    labels = np.array([1, 0] * (n // 2))
    attacks = np.where(labels == 1, "bonafide", np.array(["A01", "A02"] * (n // 2))[:n])
    score = np.where(labels == 1, 1.0, -1.0) + RNG.normal(0, 1.0, n)
    return pd.DataFrame(
        {
            "clip_id": [f"c{i}" for i in range(n)],
            "utterance_id": [f"u{i // 2}" for i in range(n)],
            "label": labels,
            "attack": attacks,
            "score": score,
            "logit_fake": -score / 2,
            "logit_real": score / 2,
            "duration": RNG.uniform(1.5, 6, n),
            "sample_rate": RNG.choice([16000, 22050, 44100], n),
            "rms_dbfs": RNG.normal(-25, 4, n),
            "split": np.array(["train", "validation", "test", "train"] * n)[:n],
        }
    )


def test_colours_are_fixed():
    colors = plots.attack_colors(["A02", "bonafide", "A01", "pooled"])
    assert colors["bonafide"] == plots.REAL_COLOR and colors["pooled"] == plots.FAKE_COLOR
    assert colors["A01"] == plots.ATTACK_PALETTE[0] and colors["A02"] == plots.ATTACK_PALETTE[1]
    assert plots.attack_colors(["A01"])["A01"] == colors["A01"]


def test_class_balance_from_each_table_kind():
    # the format of deepfake_lib.corpora.sources.summarize_splits
    summary = pd.DataFrame(
        {
            "split": ["train", "train", "train", "test", "test"],
            "class": ["Fake", "Fake", "Real", "Fake", "Real"],
            "attack": ["A01", "A02", "bonafide", "A01", "bonafide"],
            "clips": [10, 12, 22, 3, 3],
        }
    )
    check_labelled(plots_data.plot_class_balance(summary))
    counts = pd.DataFrame({"Fake": [22, 3], "Real": [22, 3], "total": [44, 6]}, index=["train", "test"])
    check_labelled(plots_data.plot_class_balance(counts))
    check_labelled(plots_data.plot_class_balance(per_clip_table()))
    with pytest.raises(ValueError, match="plot_class_balance"):
        plots_data.plot_class_balance(pd.DataFrame({"x": [1]}))


def test_distributions_and_shortcut_features():
    df = per_clip_table()
    check_labelled(plots_data.plot_distributions(df))
    feats = pd.DataFrame(
        {"duration_s": df["duration"], "rms_dbfs": df["rms_dbfs"], "sample_rate": df["sample_rate"]}
    )
    fig = plots_data.plot_shortcut_features(feats, df["label"])
    check_labelled(fig)
    assert "EER" in fig.axes[0].get_title()


def test_waveform_and_spectrogram_share_scales():
    fig = plots_data.plot_waveform_and_spectrogram(
        [("bona fide", tone(0.5, 22050), 22050), ("spoof", tone(0.4, SR, 330), SR)]
    )
    check_labelled(fig)
    images = [ax.collections[0] for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.collections]
    assert len({im.get_clim() for im in images}) == 1


def test_split_groups_counts_leaks():
    table = per_clip_table(12)
    table["split"] = ["train"] * 6 + ["test"] * 6
    fig = plots_data.plot_split_groups(table)
    check_labelled(fig)
    assert "0 group(s)" in fig.axes[0].get_title()
    table.loc[6, "utterance_id"] = "u0"  # u0 now straddles train and test
    assert "1 group(s)" in plots_data.plot_split_groups(table).axes[0].get_title()


def test_preprocessing_figures():
    check_labelled(plots_data.plot_resampling(tone(0.5, 44100), 44100, tone(0.5, SR), SR))
    items = [
        ("clean", tone()),
        ("noise 10 dB", tone() + 0.1 * RNG.standard_normal(SR // 2).astype(np.float32)),
        ("gain -6 dB", tone() * 0.5),
        ("shift", np.roll(tone(), 800)),
    ]
    fig = plots_data.plot_augmentation_grid(items)
    check_labelled(fig)
    assert fig.axes[0].get_title().startswith("before")


def test_training_history_and_live_plot():
    history = pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "train_loss": [0.7, 0.6, 0.5],
            "eval_loss": [0.69, 0.62, 0.64],
            "eval_eer": [0.4, 0.3, 0.35],
            "eval_auc": [0.6, 0.7, 0.68],
            "eval_accuracy": [0.6, 0.7, 0.66],
        }
    )
    fig = plots_scores.plot_training_history(history)
    check_labelled(fig)
    assert any("best epoch (2)" in t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts())
    live = plots_scores.LiveHistoryPlot()
    for k in range(1, 4):
        live(history.iloc[:k])  # outside Jupyter: no display, no pile-up
    assert live.calls == 3 and isinstance(live.figure, Figure)
    check_labelled(live.figure)
    check_labelled(plots_scores.plot_training_history(history.iloc[:0]))


def test_live_plot_updates_one_display(monkeypatch):
    calls = []

    class Handle:
        def update(self, fig):
            calls.append(("update", fig))

    def fake_display(fig, display_id=False):
        calls.append(("display", fig, display_id))
        return Handle()

    import IPython.display

    monkeypatch.setattr(plots_scores, "_in_jupyter", lambda: True)
    monkeypatch.setattr(IPython.display, "display", fake_display)
    live = plots_scores.LiveHistoryPlot()
    history = pd.DataFrame(
        {"epoch": [1, 2], "train_loss": [0.7, 0.6], "eval_loss": [0.7, 0.6], "eval_eer": [0.4, 0.3]}
    )
    live(history.iloc[:1])
    live(history)
    assert [c[0] for c in calls] == ["display", "update"] and calls[0][2] is True
    assert calls[1][1] is live.figure


def test_detection_figures():
    df = per_clip_table()
    fig = plots_scores.plot_roc_det(df["label"], df["score"], name="tiny")
    check_labelled(fig)
    assert "%" in fig.axes[1].get_xlabel()
    check_labelled(
        plots_scores.plot_roc_det(df["label"], {"model": df["score"], "baseline": -df["score"] + 0.1})
    )
    check_labelled(plots_scores.plot_score_histograms(df, threshold=0.1))
    check_labelled(plots_scores.plot_confusion_matrix([[15, 5], [3, 17]]))
    with pytest.raises(ValueError, match="cm"):
        plots_scores.plot_confusion_matrix([[1, 2, 3]])


def test_analysis_figures():
    rob = pd.DataFrame(
        {
            "condition": ["clean", "white noise 10 dB", "white noise 0 dB", "mp3", "gain +12 dB"],
            "family": ["clean", "noise (white)", "noise (white)", "codec", "gain"],
            "eer": [0.1, 0.2, 0.35, 0.12, 0.1],
            "eer_low": [0.05, 0.1, 0.25, 0.06, 0.05],
            "eer_high": [0.15, 0.3, 0.45, 0.2, 0.16],
        }
    )
    check_labelled(plots_studies.plot_robustness(rob))
    from deepfake_lib.studies.analysis import calibrate_scores

    df = per_clip_table(60)
    cal = calibrate_scores(df.iloc[:30], df.iloc[30:])
    check_labelled(plots_studies.plot_reliability(cal))
    matrix = RNG.normal(0, 0.1, (8, 4))
    bands = np.array([0, 500, 1000, 2000, 3000, 4000, 5000, 6000, 8000])
    segs = np.linspace(0, 1, 5)
    check_labelled(plots_studies.plot_occlusion(matrix, bands, segs))
    check_labelled(plots_studies.plot_occlusion(matrix, bands, segs, wave=tone(1.0)))
    with pytest.raises(ValueError, match="bands"):
        plots_studies.plot_occlusion(matrix[:3], bands, segs)
    windows = pd.DataFrame({"start_s": np.arange(9) * 0.25, "end_s": np.arange(9) * 0.25 + 1})
    windows["center_s"] = windows["start_s"] + 0.5
    windows["score"] = np.linspace(2, -2, 9)
    check_labelled(
        plots_studies.plot_window_timeline(
            windows, 0.0, boundaries=[1.5], segment_labels=["bona fide", "spoof"]
        )
    )


def test_protocol_and_attack_figures():
    from deepfake_lib.studies.analysis import compare_protocols, per_attack_eer

    report = {
        "eer": 0.2,
        "auc": 0.85,
        "accuracy": 0.8,
        "n": 90,
        "ci": {"eer": (0.1, 0.3), "auc": (0.8, 0.9), "accuracy": (0.7, 0.9)},
    }
    study = {
        "reported_accuracy": 0.9,
        "reported_accuracy_ci": [0.55, 0.99],
        "val_labels": [1, 0] * 5,
        "clean_test": {**report, "eer": 0.4, "accuracy": 0.55},
    }
    picking = {
        "n_val": 10,
        "n_draws": 100,
        "selected_epoch": 3,
        "honest_accuracy": 0.7,
        "inflation": 0.12,
        "n_test_clips": 90,
        "picked": {"mean": 0.82, "p05": 0.7, "p95": 0.9, "draws": list(RNG.uniform(0.6, 1.0, 100))},
        "honest_subsets": {"mean": 0.7, "draws": list(RNG.uniform(0.4, 1.0, 100))},
    }
    check_labelled(
        plots_studies.plot_protocol_comparison(compare_protocols(study, {"test": report}, picking))
    )
    check_labelled(plots_studies.plot_epoch_picking(picking))
    pa = per_attack_eer(per_clip_table(), n_bootstrap=50)
    check_labelled(plots_scores.plot_per_attack(pa))
    loao = pd.DataFrame(
        {
            "attack": ["A01", "A02"],
            "unseen_eer": [0.3, 0.4],
            "unseen_eer_low": [0.2, 0.3],
            "unseen_eer_high": [0.4, 0.5],
            "seen_eer": [0.1, 0.15],
            "seen_eer_low": [0.05, 0.1],
            "seen_eer_high": [0.2, 0.2],
            "epochs": [4, 4],
        }
    )
    fig = plots_scores.plot_per_attack(pa, loao)
    check_labelled(fig)
    assert "4-epoch" in fig.axes[1].get_title()


def test_save_figure_writes_a_png_and_returns_nothing(tmp_path, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append((obj, raw)))
    fig = plots_scores.plot_confusion_matrix([[1, 2], [3, 4]])
    path = tmp_path / "sub" / "cm.png"
    assert plots.save_figure(fig, path) is None  # a cell ending with the call shows no path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shown == [], "outside Jupyter nothing is displayed"
    monkeypatch.setattr(plots, "_in_jupyter", lambda: True)
    plots.save_figure(fig, path)
    assert len(shown) == 1, "in Jupyter the figure is shown exactly once"
    bundle, raw = shown[0]
    import base64

    from PIL import Image

    shown_png = base64.b64decode(bundle["image/png"])
    assert raw and shown_png[:8] == b"\x89PNG\r\n\x1a\n"
    same = np.asarray(Image.open(io.BytesIO(shown_png)).convert("RGB"))
    assert same.shape == np.asarray(Image.open(path).convert("RGB")).shape, (
        "the file's pixels, not a resized copy"
    )
    assert bundle["text/plain"] == "<figure cm.png>", "the text form names the file, never the machine's path"
    plots.save_figure(fig, path, show=False)
    assert len(shown) == 1


def test_compact_png_is_lossless_for_few_colours_and_smaller_for_many():
    from PIL import Image

    def png_of(array: np.ndarray) -> bytes:
        out = io.BytesIO()
        Image.fromarray(array.astype(np.uint8)).save(out, format="PNG")
        return out.getvalue()

    few = np.zeros((60, 80, 3))
    few[:, 40:] = (213, 94, 0)  # two colours
    compact = plots.compact_png(png_of(few))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(compact)).convert("RGB")), few)
    noisy = RNG.integers(0, 256, (200, 300, 3))
    compact = plots.compact_png(png_of(noisy))
    assert len(compact) < len(png_of(noisy)) / 2
    assert len(Image.open(io.BytesIO(compact)).getcolors(maxcolors=10_000)) <= 256


def test_far_frr_curves_cross_at_the_eer():
    from deepfake_lib.evaluation.error_rates import compute_eer

    df = per_clip_table(40)
    fig = plots_scores.plot_far_frr(df["label"], df["score"], threshold=0.1)
    check_labelled(fig)
    ax = fig.axes[0]
    far_line, frr_line, dot = ax.lines[:3]
    assert far_line.get_ydata()[0] == 100 and far_line.get_ydata()[-1] == 0, "FAR falls from 100% to 0%"
    assert frr_line.get_ydata()[0] == 0 and frr_line.get_ydata()[-1] == 100, "FRR rises from 0% to 100%"
    eer = compute_eer(df["label"], df["score"])
    assert dot.get_xdata()[0] == eer.threshold and dot.get_ydata()[0] == 100 * eer.eer
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    y, s = df["label"].to_numpy(), df["score"].to_numpy()
    far = 100 * np.mean(s[y == 0] >= 0.1)
    assert any(f"FAR {far:.1f}%" in t for t in texts), texts
    assert "FAR" in plots_scores.plot_far_frr.__doc__ and "FRR" in plots_scores.plot_far_frr.__doc__


def test_compact_png_scales_down_only_what_exceeds_the_budget():
    from PIL import Image

    def png_of(array: np.ndarray) -> bytes:
        out = io.BytesIO()
        Image.fromarray(array.astype(np.uint8)).save(out, format="PNG")
        return out.getvalue()

    noisy = png_of(RNG.integers(0, 256, (300, 600, 3)))
    unlimited = plots.compact_png(noisy)
    budget = len(unlimited) // 4
    small = plots.compact_png(noisy, max_bytes=budget)
    assert len(small) <= budget
    assert len(Image.open(io.BytesIO(small)).getcolors(maxcolors=10_000)) <= 32, "fewer colours first"
    width, height = Image.open(io.BytesIO(small)).size
    assert width < 600 and abs(width / height - 2.0) < 0.05, "scaled down, aspect ratio kept"
    assert plots.compact_png(noisy, max_bytes=len(unlimited)) == unlimited, "what fits keeps its pixels"


def test_per_attack_without_intervals_says_so_and_shows_every_bar():
    # One bona fide test speaker: NaN bounds. No zero-length bars, a title that does not claim
    # intervals, and an axis that holds an EER above 55% (it was cut at 55%).
    nan = float("nan")
    pa = pd.DataFrame(
        {
            "attack": ["flite", "world"],
            "n_spoof": [40, 80],
            "eer": [0.025, 0.75],
            "eer_low": nan,
            "eer_high": nan,
        }
    )
    loao = pd.DataFrame(
        {
            "attack": ["flite", "world"],
            "epochs": [4, 4],
            **{f"{p}eer": [0.1, 0.825] for p in ("seen_", "unseen_")},
            **{f"{p}eer_{b}": nan for p in ("seen_", "unseen_") for b in ("low", "high")},
        }
    )
    fig = plots_scores.plot_per_attack(pa, loao)
    left, right = fig.axes[:2]
    assert "no intervals" in left.get_title()
    assert left.get_ylim()[1] > 75 and right.get_ylim()[1] > 82.5
    assert not left.collections  # no error bars drawn


# --------------------------------------------------------------------------------------
# figures a reader would keep (issue 23)
# --------------------------------------------------------------------------------------
def test_inline_png_keeps_every_colour_of_a_spectrogram_and_compacts_only_losslessly():
    from PIL import Image

    def png_of(array: np.ndarray) -> bytes:
        out = io.BytesIO()
        Image.fromarray(array.astype(np.uint8)).save(out, format="PNG")
        return out.getvalue()

    smooth = np.stack(np.meshgrid(np.arange(256), np.arange(40)), -1)[..., [0, 1, 0]] % 256  # > 256 colours
    full = png_of(smooth)
    assert plots.inline_png(full) == full, "a many-colour image must be shown as saved"
    few = np.zeros((60, 80, 3))
    few[:, 40:] = (213, 94, 0)
    shown = plots.inline_png(png_of(few))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(shown)).convert("RGB")), few)


def test_spectrogram_pairs_share_one_colour_scale_and_hide_a_missing_original():
    t = np.arange(32_000) / 16_000
    real = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    fake = (real + 0.05 * RNG.standard_normal(t.size)).astype(np.float32)
    fig = plots_data.plot_spectrogram_pairs(
        [("A01 · u1", fake, real), ("A02 · u2", fake, None)], excerpt_s=1.0
    )
    check_labelled(fig)
    from matplotlib.collections import QuadMesh

    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    meshes = [c for ax in axes for c in ax.collections if isinstance(c, QuadMesh)]
    assert len(meshes) == 3 and len({m.get_clim() for m in meshes}) == 1
    with pytest.raises(ValueError):
        plots_data.plot_spectrogram_pairs([])


def test_score_plot_shows_every_clip_of_every_attack():
    df = pd.DataFrame(
        {
            "label": [1] * 6 + [0] * 6,
            "attack": ["bonafide"] * 6 + ["A01"] * 3 + ["A02"] * 3,
            "score": [2, 2, 2, 1, 1, 3, -2, -2, -2, -2, -2, -2],
        }  # A01 and A02 identical: a histogram hides one
    )
    fig = plots_scores.plot_score_histograms(df, threshold=0.0)
    strip = fig.axes[1]
    assert [len(c.get_offsets()) for c in strip.collections] == [6, 3, 3]
    assert [t.get_text().split(" ")[0] for t in strip.get_yticklabels()] == ["bonafide", "A01", "A02"]


def test_live_history_plot_saves_its_last_frame(tmp_path):
    history = pd.DataFrame(
        {
            "epoch": [1, 2],
            "train_loss": [0.7, 0.6],
            "eval_loss": [0.7, 0.5],
            "eval_eer": [0.4, 0.2],
            "eval_auc": [0.6, 0.8],
            "eval_accuracy": [0.6, 0.8],
        }
    )
    live = plots_scores.LiveHistoryPlot(path=tmp_path / "h.png")
    live(history.iloc[:1])
    first = (tmp_path / "h.png").read_bytes()
    live(history)
    assert (tmp_path / "h.png").read_bytes() != first and live.calls == 2


def test_reliability_draws_small_bins_hollow_and_protocol_spread_apart():
    curve = {
        "bin_center": [0.05, 0.45, 0.95],
        "mean_predicted": [0.03, 0.4, 0.97],
        "observed_frequency": [0.0, 0.5, 1.0],
        "count": [40, 2, 48],
    }
    calibration = {
        "temperature": 1.0,
        "n_bins": 10,
        "ece_before": 0.05,
        "ece_after": 0.04,
        "reliability_before": curve,
        "reliability_after": curve,
    }
    fig = plots_studies.plot_reliability(calibration)
    hollow = [c for c in fig.axes[0].collections if len(c.get_offsets()) and c.get_facecolor()[0][0] == 1.0]
    assert hollow and all(len(c.get_offsets()) == 1 for c in hollow)
    table = pd.DataFrame(
        [
            {
                "protocol": "ours",
                "n_clips": 90,
                "accuracy": 0.9,
                "accuracy_low": 0.85,
                "accuracy_high": 0.95,
                "interval": "95% bootstrap over utterances",
            },
            {
                "protocol": "picked",
                "n_clips": 10,
                "accuracy": 0.95,
                "accuracy_low": 0.8,
                "accuracy_high": 1.0,
                "interval": "5-95% over 1000 random subsets",
            },
        ]
    )
    fig = plots_studies.plot_protocol_comparison(table)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["5-95% of random draws (not a 95% interval)"]
