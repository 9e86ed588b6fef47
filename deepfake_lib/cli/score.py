"""``deepfake-lib score``: score any detector's score file against a protocol and print or save the report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from deepfake_lib.evaluation.costs import ASVSPOOF5_COSTS, DetectionCosts
from deepfake_lib.evaluation.inputs import MetricsError
from deepfake_lib.evaluation.score_files import (
    ScoreFileError,
    match_scores,
    read_protocol,
    read_scores,
)
from deepfake_lib.evaluation.score_report import EXIT_OK, EXIT_USAGE, format_report, score_report

__all__ = [
    "add_score_arguments",
    "run_score",
    "score_files",
]


def add_score_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``deepfake-lib score``."""
    parser.add_argument(
        "--protocol",
        help="protocol / key file (ASVspoof 2019 LA, 2021, ASVspoof 5 or a CSV with "
        "id and label columns); optional when the score file carries labels (a run's test_scores.csv)",
    )
    parser.add_argument(
        "--scores",
        required=True,
        help="score file (ASVspoof layouts, CSV, deepfake-detect CSV/JSONL) "
        "or a run folder (its test_scores.csv)",
    )
    parser.add_argument(
        "--split", help="keep only this split of a protocol with a 'split' column (e.g. test)"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        help="the system's decision threshold (default: the run's or "
        "detector's when the score file names one, else the Bayes threshold for LLR scores)",
    )
    parser.add_argument(
        "--n-bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000; 0: none)"
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument(
        "--p-spoof", type=float, default=ASVSPOOF5_COSTS.p_spoof, help="DCF spoof prior (default 0.05)"
    )
    parser.add_argument(
        "--c-miss", type=float, default=ASVSPOOF5_COSTS.c_miss, help="DCF cost of a miss (default 1)"
    )
    parser.add_argument(
        "--c-fa", type=float, default=ASVSPOOF5_COSTS.c_fa, help="DCF cost of a false alarm (default 10)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")


def score_files(
    scores_path: str | Path,
    protocol_path: str | Path | None = None,
    *,
    split: str | None = None,
    threshold: float | None = None,
    costs: DetectionCosts = ASVSPOOF5_COSTS,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Read, match and report in one call: :func:`score_report` plus the file names, their
    layouts and where the threshold came from."""
    protocol = None if protocol_path is None else read_protocol(protocol_path, split=split)
    scores = read_scores(scores_path, known_ids=None if protocol is None else set(protocol.ids))
    matched = match_scores(protocol, scores)
    if threshold is not None:
        system, source = float(threshold), "--threshold"
    else:
        system, source = scores.threshold, scores.threshold_source
    report = score_report(matched, threshold=system, costs=costs, n_bootstrap=n_bootstrap, seed=seed)
    return {
        "scores": str(scores.path),
        "scores_layout": scores.layout,
        "protocol": None if protocol is None else str(protocol.path),
        "protocol_layout": None if protocol is None else protocol.layout,
        "threshold_source": source or None,
        **report,
    }


def run_score(args: argparse.Namespace) -> int:
    """``deepfake-lib score``: print the table (or JSON with ``--json``); exit code 2 on bad input."""
    try:
        costs = DetectionCosts(p_spoof=args.p_spoof, c_miss=args.c_miss, c_fa=args.c_fa)
        report = score_files(
            args.scores,
            args.protocol,
            split=args.split,
            threshold=args.threshold,
            costs=costs,
            n_bootstrap=args.n_bootstrap,
            seed=args.seed,
        )
    except (ScoreFileError, MetricsError, OSError) as error:
        print(f"deepfake-lib score: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        against = f" against {report['protocol']} ({report['protocol_layout']})" if report["protocol"] else ""
        title = f"{report['scores']} ({report['scores_layout']}){against}"
        if report["threshold_source"]:
            title += f"\nsystem threshold from {report['threshold_source']}"
        print(format_report(report, title=title))
    return EXIT_OK
