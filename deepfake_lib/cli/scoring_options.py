"""The scoring options that ``deepfake-detect`` and ``deepfake-lib serve`` share.

Window and hop default to ``None``: :meth:`~deepfake_lib.deploy.detector.Detector.from_source`
then uses the run's own evaluation window and hop (so a run evaluated on 2 s windows is deployed
on 2 s windows), and 4 s for sources that are not run folders.
"""

from __future__ import annotations

import argparse

from deepfake_lib.deploy.detector import RUNTIMES

__all__ = ["add_scoring_arguments", "scoring_kwargs"]


def add_scoring_arguments(parser: argparse.ArgumentParser) -> None:
    """``--threshold``, ``--window-s``, ``--hop-s``, ``--batch-size``, ``--runtime``, ``--device``, ``--log``."""
    parser.add_argument(
        "--threshold", type=float, help="decision threshold on the log-odds score (default: the model's)"
    )
    parser.add_argument(
        "--window-s",
        type=float,
        default=None,
        help="window length, seconds (default: the run's evaluation window; 4 for other sources)",
    )
    parser.add_argument(
        "--hop-s", type=float, default=None, help="window hop, seconds (default: half a window, as the run's)"
    )
    parser.add_argument("--batch-size", type=int, default=8, help="windows per model call (default 8)")
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="auto",
        help="inference runtime (default auto: the fastest CPU path whose parity gate passes)",
    )
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="device (default auto)"
    )
    parser.add_argument(
        "--prediction-log",
        dest="log_path",
        help="append one JSON line per prediction to this file (monitoring)",
    )


def scoring_kwargs(args: argparse.Namespace) -> dict[str, object]:
    """The :meth:`Detector.from_source` keyword arguments of parsed scoring options."""
    return {
        "threshold": args.threshold,
        "device": args.device,
        "runtime": args.runtime,
        "window_s": args.window_s,
        "hop_s": args.hop_s,
        "batch_size": args.batch_size,
        "log_path": args.log_path,
    }
