"""Score any detector's score file against a protocol: ``deepfake-lib score``."""

from __future__ import annotations

import argparse


def add_score_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``deepfake-lib score``."""
    parser.add_argument("--protocol", help="protocol / key file (ASVspoof 2019 LA, 2021, ASVspoof 5 or CSV); "
                        "optional when the score file carries labels (a run's test_scores.csv)")
    parser.add_argument("--scores", required=True, help="score file, or a run folder (its test_scores.csv)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")


def run_score(args: argparse.Namespace) -> int:
    """``deepfake-lib score``: not implemented yet."""
    raise NotImplementedError("deepfake-lib score is being written")
