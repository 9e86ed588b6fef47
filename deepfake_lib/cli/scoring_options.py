"""The scoring options that ``deepfake-detect`` and ``deepfake-lib serve`` share.

Window and hop default to ``None``: :meth:`~deepfake_lib.deploy.detector.Detector.from_source`
then uses the run's own evaluation window and hop (so a run evaluated on 2 s windows is deployed
on 2 s windows), and 4 s for sources that are not run folders.
"""

from __future__ import annotations

import argparse

from deepfake_lib.deploy.detector import BACKENDS

__all__ = ["add_scoring_arguments", "scoring_kwargs"]


def add_scoring_arguments(parser: argparse.ArgumentParser) -> None:
    """``--threshold``, ``--window-s``, ``--hop-s``, ``--batch-size``, ``--backend``, ``--device``, ``--log``."""
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
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="inference backend (default auto: the fastest CPU path whose parity gate passes)",
    )
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="device (default auto)"
    )
    parser.add_argument("--log", dest="log_path", help="append one JSON line per prediction to this file")


def scoring_kwargs(args: argparse.Namespace) -> dict[str, object]:
    """The :meth:`Detector.from_source` keyword arguments of parsed scoring options."""
    return {
        "threshold": args.threshold,
        "device": args.device,
        "backend": args.backend,
        "window_s": args.window_s,
        "hop_s": args.hop_s,
        "batch_size": args.batch_size,
        "log_path": args.log_path,
    }
