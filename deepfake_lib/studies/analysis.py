"""Analysis of a trained run (notebook 04): one entry, :func:`analyze_run`, over the job modules.

Each job lives in a module of its own:

========================================  ==========================================================
:mod:`deepfake_lib.modeling.baselines`             classical baselines and the shortcut control
:mod:`deepfake_lib.studies.attacks`               EER per attack, leave-one-attack-out retraining
:mod:`deepfake_lib.studies.robustness`            the test clips under noise, codecs, reverb, clipping, gain
:mod:`deepfake_lib.evaluation.calibration`           temperature scaling and the operating threshold
:mod:`deepfake_lib.studies.explain`               score timeline and occlusion map (where the model listens)
:mod:`deepfake_lib.studies.cross_source`          another data source at the run's threshold
:mod:`deepfake_lib.studies.study_protocol`        the study's protocol against ours
========================================  ==========================================================

:class:`RunAnalysis` opens a finished run (its config, split, model and test clips) and runs
each part as the config asks (``robustness``, ``leave_one_attack_out``, ``loao_epochs``,
``cross_source``, ``n_bootstrap``, ``seed``); :func:`analyze_run` runs them all. Everything
is written under ``<run_dir>/analysis`` (:data:`deepfake_lib.runs.RUN_FILES`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepfake_lib import TARGET_SAMPLE_RATE
from deepfake_lib.config import ExperimentConfig
from deepfake_lib.corpora.embedded import CorpusConfig
from deepfake_lib.corpora.experiment_data import prepare_data
from deepfake_lib.deploy.detector import Detector
from deepfake_lib.evaluation.calibration import calibrate_scores
from deepfake_lib.modeling.baselines import (
    SYSTEM_CONTROL_LR,
    SYSTEM_LFCC_GMM,
    SYSTEM_LFCC_LR,
    evaluate_classical_baselines,
    evaluate_shortcut_control,
    summarize_system,
)
from deepfake_lib.modeling.frontends import model_name
from deepfake_lib.modeling.loaded_model import LoadedModel
from deepfake_lib.modeling.models import load_model
from deepfake_lib.runs import RUN_FILES, RunResult, load_run, load_run_config
from deepfake_lib.scoring import EvalClips
from deepfake_lib.studies.attacks import leave_one_attack_out, per_attack_eer
from deepfake_lib.studies.cross_source import evaluate_cross_source
from deepfake_lib.studies.explain import occlusion_map, score_windows
from deepfake_lib.studies.robustness import (
    Condition,
    degrade_waves,
    evaluate_robustness,
    robustness_conditions,
)
from deepfake_lib.studies.study_protocol import (
    build_study_protocol_data,
    compare_protocols,
    run_original_protocol,
    summarize_epoch_picking,
    waves_to_dataset,
)

__all__ = [
    "SYSTEM_LFCC_GMM",
    "SYSTEM_LFCC_LR",
    "SYSTEM_CONTROL_LR",
    "Condition",
    "RunAnalysis",
    "analyze_run",
    "build_study_protocol_data",
    "calibrate_scores",
    "compare_protocols",
    "cross_source_corpus",
    "degrade_waves",
    "evaluate_classical_baselines",
    "evaluate_cross_source",
    "evaluate_robustness",
    "evaluate_shortcut_control",
    "leave_one_attack_out",
    "occlusion_map",
    "per_attack_eer",
    "robustness_conditions",
    "run_original_protocol",
    "score_windows",
    "summarize_epoch_picking",
    "summarize_system",
    "waves_to_dataset",
]

CROSS_SOURCE_UTTERANCES = 60
"""Utterances of the shifted embedded corpus used as the second source when none is named."""
CROSS_SOURCE_DIFFICULTY_STEP = 0.25
"""How much fainter (difficulty added) the shifted embedded corpus's artefacts are."""
CROSS_SOURCE_SEED_OFFSET = 1000
"""Seed offset of the shifted embedded corpus (other voices, other sentences)."""
STUDY_N_VAL = 10
"""Clips the study reported its accuracy on (and picked its epoch on)."""


def cross_source_corpus(cfg: ExperimentConfig) -> CorpusConfig:
    """The shifted embedded corpus used when ``cfg.cross_source`` is ``"embedded"``: another seed and
    fainter artefacts (difficulty + :data:`CROSS_SOURCE_DIFFICULTY_STEP`, at most 1)."""
    return CorpusConfig(
        n_utterances=CROSS_SOURCE_UTTERANCES,
        difficulty=min(1.0, cfg.difficulty + CROSS_SOURCE_DIFFICULTY_STEP),
        seed=cfg.seed + CROSS_SOURCE_SEED_OFFSET,
    )


@dataclasses.dataclass
class RunAnalysis:
    """A finished run opened for analysis.

    ``cfg`` is the run's config (with the caller's analysis fields); ``run`` its record;
    ``splits`` the split it was trained on (re-made from the config: deterministic);
    ``loaded`` its model; ``test_clips`` the test split as :class:`~deepfake_lib.scoring.EvalClips`;
    ``threshold`` the run's validation-EER threshold (log-odds); ``out_dir`` where parts write.
    """

    cfg: ExperimentConfig
    run: RunResult
    splits: Any
    loaded: LoadedModel
    test_clips: EvalClips
    threshold: float
    out_dir: Path

    @classmethod
    def open(cls, cfg: ExperimentConfig) -> RunAnalysis:
        """Open the run at ``cfg.run_path``."""
        run = load_run(cfg.run_path)
        splits, _ = prepare_data(cfg)
        loaded = load_model(str(run.model_dir))
        return cls(
            cfg,
            run,
            splits,
            loaded,
            EvalClips.from_split(splits["test"]),
            float(run.metrics["threshold"]["value"]),
            run.run_dir / RUN_FILES["analysis"],
        )

    @property
    def model(self) -> Any:
        """The run's selected model."""
        return self.loaded.model

    @property
    def feature_extractor(self) -> Any:
        """The run's feature extractor."""
        return self.loaded.feature_extractor

    # parts -------------------------------------------------------------------------------
    def compare_baselines(self) -> pd.DataFrame:
        """The fine-tuned model's test row next to the classical baselines and the shortcut control."""
        ours = summarize_system(
            f"{model_name(str(self.cfg.model_source))} (this run)",
            self.run.test_scores,
            threshold=self.threshold,
            n_bootstrap=self.cfg.n_bootstrap,
            seed=self.cfg.seed,
        )
        others = evaluate_classical_baselines(
            self.splits, n_bootstrap=self.cfg.n_bootstrap, seed=self.cfg.seed, out_dir=self.out_dir
        )
        table = pd.concat([pd.DataFrame([ours]), others], ignore_index=True)
        table.to_csv(self.out_dir / "systems.csv", index=False)  # what the README quotes of this run
        return table

    def analyze_attacks(self) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """``(per-attack EER, leave-one-attack-out table or None)``; LOAO runs when
        ``cfg.run_leave_one_attack_out`` and the train split has two attacks or more, for
        ``cfg.loao_epochs`` epochs each."""
        per_attack = per_attack_eer(
            self.run.test_scores,
            threshold=self.threshold,
            n_bootstrap=self.cfg.n_bootstrap,
            seed=self.cfg.seed,
            out_dir=self.out_dir,
        )
        attacks = {
            a for a, y in zip(self.splits["train"]["attack"], self.splits["train"]["label"]) if int(y) == 0
        }
        loao = None
        if self.cfg.run_leave_one_attack_out and len(attacks) >= 2:
            loao = leave_one_attack_out(
                self.cfg, self.splits, epochs=self.cfg.loao_epochs, out_dir=self.out_dir
            )
        return per_attack, loao

    def analyze_robustness(self) -> pd.DataFrame | None:
        """The robustness sweep on the test clips at the run's threshold (``None`` unless
        ``cfg.run_robustness``)."""
        if not self.cfg.run_robustness:
            return None
        return evaluate_robustness(
            self.model,
            self.feature_extractor,
            self.test_clips,
            seed=self.cfg.seed,
            n_bootstrap=self.cfg.n_bootstrap,
            threshold=self.threshold,
            batch_size=self.cfg.batch_size,
            window_s=self.cfg.eval_window_s,  # score degraded clips as the run scored clean ones
            out_dir=self.out_dir,
        )

    def calibrate(self) -> dict[str, Any]:
        """Temperature scaling and the threshold recommendation (:func:`calibrate_scores`)."""
        return calibrate_scores(self.run.validation_scores, self.run.test_scores, out_dir=self.out_dir)

    def explain(self) -> dict[str, Any]:
        """Score timeline over the first bona fide test clip followed by the first spoofed one,
        and the occlusion map of that spoofed clip. Returns ``timeline``, ``boundary_s`` (where
        the spoof starts, s), ``occlusion`` ``(matrix, bands, segments)`` and ``fake_wave``."""
        labels = self.test_clips.labels
        real_wave = self.test_clips.load(int(np.flatnonzero(labels == 1)[0]))
        fake_wave = self.test_clips.load(int(np.flatnonzero(labels == 0)[0]))
        timeline = score_windows(self.model, self.feature_extractor, np.concatenate([real_wave, fake_wave]))
        return {
            "timeline": timeline,
            "boundary_s": len(real_wave) / TARGET_SAMPLE_RATE,
            "occlusion": occlusion_map(self.model, self.feature_extractor, fake_wave),
            "fake_wave": fake_wave,
        }

    def analyze_cross_source(self) -> dict[str, Any] | None:
        """The run's model on ``cfg.cross_source`` (``"embedded"``: :func:`cross_source_corpus`);
        ``None`` when it is empty."""
        if not self.cfg.cross_source:
            return None
        return evaluate_cross_source(
            self.run.run_dir,
            self.cfg.cross_source,
            corpus_config=cross_source_corpus(self.cfg),
            n_bootstrap=self.cfg.n_bootstrap,
            seed=self.cfg.seed,
            batch_size=self.cfg.batch_size,
            window_s=self.cfg.eval_window_s,
            out_dir=self.out_dir,
        )

    def compare_protocols(self) -> dict[str, Any]:
        """The study's protocol (``cfg.epochs``), epoch picking on :data:`STUDY_N_VAL` test clips,
        and the side-by-side table. Returns ``study``, ``picking``, ``protocols``."""
        study = run_original_protocol(self.cfg, self.splits, epochs=self.cfg.epochs, out_dir=self.out_dir)
        epoch_scores = pd.read_csv(self.run.run_dir / RUN_FILES["epoch_scores"])
        n_val = min(STUDY_N_VAL, epoch_scores.loc[epoch_scores["split"] == "test", "clip_id"].nunique())
        picking = summarize_epoch_picking(
            epoch_scores,
            selected_epoch=self.run.metrics["best_epoch"],
            threshold="validation_eer",  # every accuracy of the run is taken there, except the study's own
            n_val=n_val,
            seed=self.cfg.seed,
            out_dir=self.out_dir,
        )
        return {
            "study": study,
            "picking": picking,
            "protocols": compare_protocols(study, self.run.metrics, picking, out_dir=self.out_dir),
        }

    def measure_latency(self, n_clips: int = 20) -> dict[str, float]:
        """Mean wall time (ms) of :meth:`Detector.predict` on the first ``n_clips`` test clips
        with the run's deployed detector, and their mean length (s)."""
        detector = Detector.from_source(self.run.run_dir)
        n = min(int(n_clips), len(self.test_clips))
        started = time.perf_counter()
        for i in range(n):
            detector.predict(self.test_clips.load(i), sample_rate=TARGET_SAMPLE_RATE)
        latency_ms = (time.perf_counter() - started) / n * 1000.0
        mean_s = float(np.mean([len(self.test_clips.load(i)) for i in range(n)])) / TARGET_SAMPLE_RATE
        return {"latency_ms": latency_ms, "mean_clip_s": mean_s, "n_clips": n, "runtime": detector.runtime}


def analyze_run(cfg: ExperimentConfig | str | os.PathLike[str], **changes: Any) -> dict[str, Any]:
    """Run every analysis part on a finished run and return the results by part.

    ``cfg``: the run's config, or its run folder (its ``config.json`` with ``changes``
    applied, e.g. ``run_robustness=False``). Keys: ``baselines``, ``per_attack``, ``loao``,
    ``robustness``, ``calibration``, ``explain``, ``cross_source``, ``study``, ``picking``,
    ``protocols``, ``latency``; parts the config switches off are ``None``.
    """
    if not isinstance(cfg, ExperimentConfig):
        cfg = load_run_config(cfg, run_dir=os.fspath(cfg), **changes)
    elif changes:
        cfg = cfg.replace(**changes)
    analysis = RunAnalysis.open(cfg)
    per_attack, loao = analysis.analyze_attacks()
    return {
        "baselines": analysis.compare_baselines(),
        "per_attack": per_attack,
        "loao": loao,
        "robustness": analysis.analyze_robustness(),
        "calibration": analysis.calibrate(),
        "explain": analysis.explain(),
        "cross_source": analysis.analyze_cross_source(),
        **analysis.compare_protocols(),
        "latency": analysis.measure_latency(),
    }
