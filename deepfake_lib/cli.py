"""Command line: ``deepfake-detect`` (score files) and ``deepfake-lib`` (every stage).

``deepfake-detect MODEL PATH... [--out results.csv|results.jsonl]`` scores audio files and
folders (searched recursively for :data:`deepfake_lib.data.AUDIO_EXTENSIONS`) with a run
folder, export folder, model folder or Hub id, and writes one row per file: ``path``,
``label``, ``prob_real``, ``score``, ``threshold``, ``duration_s``, ``n_windows``,
``max_fake_prob``, ``suspicious_segments`` and ``error``. Rows are flushed as they are
produced; when ``--out`` already exists the files listed in it are skipped and new rows are
appended, so an interrupted run is resumed by running the same command again. A file that
cannot be scored gets a row with its error and never stops the run.

Exit codes: 0 every file scored (or already done), 1 some files failed (the others were
scored), 2 usage error, model that cannot be loaded, or no input files. 130 on Ctrl-C.

``deepfake-lib`` subcommands: ``detect`` (the same as ``deepfake-detect``), ``serve``,
``export``, ``corpus``, ``train``, ``series``, ``refresh-notebooks`` and ``score``; run
``deepfake-lib SUBCOMMAND --help`` for each.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

log = logging.getLogger(__name__)

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

RESULT_COLUMNS: tuple[str, ...] = ("path", "label", "prob_real", "score", "threshold", "duration_s", "n_windows",
                                   "max_fake_prob", "suspicious_segments", "error")
"""Columns of a ``deepfake-detect`` results file (CSV header, JSON-lines keys)."""

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


class UsageError(Exception):
    """A command-line problem reported with exit code 2."""


# --------------------------------------------------------------------------------------
# inputs and results files
# --------------------------------------------------------------------------------------
def collect_audio_files(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[Path], list[Path]]:
    """Audio files named by ``paths``: files as given, folders searched recursively for
    :data:`deepfake_lib.data.AUDIO_EXTENSIONS` (case-insensitive), sorted, without duplicates.
    Returns ``(files, missing)``, all as absolute paths; ``missing`` lists paths that do not exist."""
    from deepfake_lib.data import AUDIO_EXTENSIONS

    files: list[Path] = []
    missing: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw).expanduser().resolve()
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
        elif p.exists():
            found = [p]
        else:
            missing.append(p)
            continue
        for f in found:
            if f not in seen:
                seen.add(f)
                files.append(f)
    return files, missing


def results_format(out: str | os.PathLike[str] | None, fmt: str | None) -> str:
    """``"csv"`` or ``"jsonl"``: ``fmt`` when given, else from ``out``'s suffix (CSV by default)."""
    if fmt:
        return fmt
    if out is not None and Path(out).suffix.lower() in JSONL_SUFFIXES:
        return "jsonl"
    return "csv"


def read_done_paths(out: str | os.PathLike[str], fmt: str) -> set[str]:
    """Paths already present in an existing results file (for resuming).

    A last line cut short by an interrupted run is removed from the file first, so appended
    rows start on a fresh line. Raises :class:`UsageError` when the file is not a results
    file of this command (wrong header or unreadable lines), rather than appending to it.
    """
    p = Path(out)
    if not p.is_file() or p.stat().st_size == 0:
        return set()
    text = p.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        cut = text.rfind("\n") + 1
        log.warning("%s: removing an incomplete last line left by an interrupted run", p)
        with open(p, "r+", encoding="utf-8") as fh:
            fh.truncate(len(text[:cut].encode("utf-8")))
        text = text[:cut]
    done: set[str] = set()
    if fmt == "csv":
        rows = list(csv.reader(text.splitlines()))
        if not rows:
            return done
        if tuple(rows[0]) != RESULT_COLUMNS:
            raise UsageError(f"{p}: exists but its header is not {','.join(RESULT_COLUMNS)}; "
                             "choose another --out (it would be appended to)")
        done.update(r[0] for r in rows[1:] if r)
    else:
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                done.add(json.loads(line)["path"])
            except (json.JSONDecodeError, KeyError, TypeError):
                raise UsageError(f"{p}: line {n} is not a deepfake-detect JSON result; choose another --out") from None
    return done


def format_segments(segments: Sequence[dict[str, Any]]) -> str:
    """``"start-end;start-end"`` in seconds with 2 decimals (the CSV form of suspicious segments)."""
    return ";".join(f"{s['start_s']:.2f}-{s['end_s']:.2f}" for s in segments)


def result_row(path: str, result: Any) -> dict[str, Any]:
    """One results row for a :class:`~deepfake_lib.infer.Prediction` or
    :class:`~deepfake_lib.infer.PredictionError` of the file ``path``."""
    row: dict[str, Any] = {c: None for c in RESULT_COLUMNS}
    row["path"] = path
    if getattr(result, "ok", False):
        row.update(label=result.label, prob_real=round(result.prob_real, 6), score=round(result.score, 6),
                   threshold=round(result.threshold, 6), duration_s=round(result.duration_s, 3),
                   n_windows=result.n_windows, max_fake_prob=round(result.max_fake_prob, 6),
                   suspicious_segments=[{"start_s": s["start_s"], "end_s": s["end_s"]} for s in result.suspicious_segments],
                   error="")
    else:
        row["error"] = getattr(result, "error", str(result))
    return row


class ResultsWriter:
    """Writes result rows as CSV or JSON lines, flushing after every row."""

    def __init__(self, stream: TextIO, fmt: str, *, write_header: bool) -> None:
        self.stream = stream
        self.fmt = fmt
        self._csv = csv.writer(stream, lineterminator="\n") if fmt == "csv" else None
        if self._csv is not None and write_header:
            self._csv.writerow(RESULT_COLUMNS)
            stream.flush()

    def write(self, row: dict[str, Any]) -> None:
        """Append one row and flush it to the operating system."""
        if self._csv is not None:
            values = dict(row)
            segs = values.get("suspicious_segments")
            values["suspicious_segments"] = format_segments(segs) if segs else ""
            self._csv.writerow(["" if values[c] is None else values[c] for c in RESULT_COLUMNS])
        else:
            self.stream.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.stream.flush()


# --------------------------------------------------------------------------------------
# detect
# --------------------------------------------------------------------------------------
def add_detect_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``deepfake-detect`` / ``deepfake-lib detect``."""
    from deepfake_lib.infer import BACKENDS

    parser.add_argument("model", metavar="MODEL", help="run folder, export folder, model folder or Hub id")
    parser.add_argument("paths", metavar="PATH", nargs="+", help="audio files or folders (searched recursively)")
    parser.add_argument("--out", help="results file (.csv or .jsonl); resumed when it exists. Default: CSV on stdout")
    parser.add_argument("--format", choices=("csv", "jsonl"), help="results format (default: from --out's suffix)")
    parser.add_argument("--threshold", type=float, help="decision threshold on the log-odds score (default: the model's)")
    parser.add_argument("--window-s", type=float, default=4.0, help="window length, seconds (default 4)")
    parser.add_argument("--hop-s", type=float, default=None, help="window hop, seconds (default: half a window)")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per model call (default 8)")
    parser.add_argument("--backend", choices=BACKENDS, default="torch", help="inference backend (default torch)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="device (default auto)")
    parser.add_argument("--log", dest="log_path", help="append one JSON line per prediction to this file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_detect(args: argparse.Namespace) -> int:
    """Score the files of ``args`` (see :func:`add_detect_arguments`); returns the exit code."""
    fmt = results_format(args.out, args.format)
    files, missing = collect_audio_files(args.paths)
    for m in missing:
        print(f"deepfake-detect: {m}: no such file or folder", file=sys.stderr)
    if not files and not missing:
        print("deepfake-detect: no input files (looked for " + ", ".join(_audio_extensions()) + ")", file=sys.stderr)
        return EXIT_USAGE
    if not files:
        print("deepfake-detect: no input files", file=sys.stderr)
        return EXIT_USAGE
    try:
        done = read_done_paths(args.out, fmt) if args.out else set()
    except UsageError as exc:
        print(f"deepfake-detect: {exc}", file=sys.stderr)
        return EXIT_USAGE
    todo = [f for f in files if str(f) not in done]
    todo_missing = [m for m in missing if str(m) not in done]
    n_skipped = len(files) - len(todo)
    counts = {"scored": 0, "Fake": 0, "Real": 0, "errors": 0, "skipped": n_skipped}

    detector = None
    if todo:
        if args.no_progress or not sys.stderr.isatty():
            _quiet_transformers()
        try:
            from deepfake_lib.infer import Detector

            detector = Detector.from_source(args.model, threshold=args.threshold, device=args.device,
                                            backend=args.backend, window_s=args.window_s, hop_s=args.hop_s,
                                            batch_size=args.batch_size, log_path=args.log_path)
        except Exception as exc:  # any loading failure is reported, not a traceback
            print(f"deepfake-detect: cannot load model {args.model!r}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return EXIT_USAGE

    out_stream: TextIO
    if args.out:
        out_path = Path(args.out)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        new_file = not out_path.is_file() or out_path.stat().st_size == 0
        out_stream = open(out_path, "a", encoding="utf-8", newline="")
    else:
        new_file = True
        out_stream = sys.stdout
    interrupted = False
    try:
        writer = ResultsWriter(out_stream, fmt, write_header=new_file)
        for m in todo_missing:
            writer.write(result_row(str(m), _Missing(f"{m}: no such file or folder")))
            counts["errors"] += 1
        if detector is not None:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), unit="file", file=sys.stderr, disable=args.no_progress or not sys.stderr.isatty())
            try:
                for path, result in zip(todo, detector.predict_many(todo)):
                    writer.write(result_row(str(path), result))
                    if result.ok:
                        counts["scored"] += 1
                        counts[result.label] += 1
                    else:
                        counts["errors"] += 1
                    bar.update(1)
            finally:
                bar.close()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if out_stream is not sys.stdout:
            out_stream.close()
    skipped = f", {counts['skipped']} skipped (already in {args.out})" if args.out else ""
    print(f"deepfake-detect: {counts['scored']} scored ({counts['Fake']} Fake, {counts['Real']} Real), "
          f"{counts['errors']} errors{skipped}"
          + (" -- interrupted; run again to resume" if interrupted else ""), file=sys.stderr)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_SOME_FAILED if counts["errors"] else EXIT_OK


class _Missing:
    ok = False

    def __init__(self, error: str) -> None:
        self.error = error


def _audio_extensions() -> list[str]:
    from deepfake_lib.data import AUDIO_EXTENSIONS

    return list(AUDIO_EXTENSIONS)


def _quiet_transformers() -> None:
    """No weight-loading progress bars from transformers on non-interactive runs."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def main_detect(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``deepfake-detect``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="deepfake-detect", description="Score audio files for deepfakes.",
                                     epilog="Exit codes: 0 all scored, 1 some files failed, 2 usage/model/no input.")
    add_detect_arguments(parser)
    args = parser.parse_args(argv)
    _setup_logging()
    return run_detect(args)


# --------------------------------------------------------------------------------------
# deepfake-lib subcommands
# --------------------------------------------------------------------------------------
_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def parse_set_options(items: Sequence[str]) -> dict[str, Any]:
    """``["key=value", ...]`` to a dict, each value read as YAML (``3`` int, ``0.5`` float,
    ``true`` bool, ``null`` None, else string). Numbers in exponent form without a dot
    (``1e-3``), which YAML 1.1 reads as strings, are read as floats. Raises
    :class:`UsageError` for an item without ``=``."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: expected key=value")
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError as exc:
            raise UsageError(f"--set {item!r}: value is not valid YAML ({exc})") from None
        if isinstance(parsed, str) and _FLOAT_TEXT.fullmatch(parsed.strip()):
            parsed = float(parsed)
        out[key.strip()] = parsed
    return out


def run_serve(args: argparse.Namespace) -> int:
    """``deepfake-lib serve``: run the web service with uvicorn until stopped."""
    import uvicorn

    from deepfake_lib.serve import create_app

    app = create_app(args.model, max_upload_mb=args.max_upload_mb, log_path=args.log_path, backend=args.backend,
                     threshold=args.threshold, device=args.device)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    """``deepfake-lib export``: write an export folder and print the parity figures."""
    from deepfake_lib.export import export_model, load_run_test_waves

    chosen = {"int8": args.int8, "onnx": args.onnx, "onnx_int8": args.onnx_int8}
    if not any(chosen.values()):
        chosen = dict.fromkeys(chosen, True)
    waves = None
    if args.parity_data:
        try:
            waves = load_run_test_waves(args.parity_data, max_clips=args.parity_clips)
        except (OSError, ValueError) as exc:
            print(f"deepfake-lib export: --parity-data: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        manifest = export_model(args.model, args.out, parity_waves=waves, **chosen)
    except (OSError, ValueError) as exc:
        print(f"deepfake-lib export: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"export folder: {Path(args.out).resolve()}")
    print(f"{'variant':<10} {'n':>4} {'max |dlogit|':>13} {'labels agree':>13}")
    for name, p in manifest["parity"].items():
        print(f"{name:<10} {p['n']:>4} {p['max_abs_logit_diff']:>13.2e} {p['label_agreement']:>13.1%}")
    return EXIT_OK


def run_corpus(args: argparse.Namespace) -> int:
    """``deepfake-lib corpus``: write the embedded corpus as parquet."""
    from deepfake_lib.synthetic import CorpusConfig, write_corpus

    given = {k: getattr(args, k) for k in ("n_utterances", "spoofs_per_utterance", "difficulty", "seed")
             if getattr(args, k) is not None}
    try:
        config = CorpusConfig(**given)
    except (TypeError, ValueError) as exc:
        print(f"deepfake-lib corpus: {exc}", file=sys.stderr)
        return EXIT_USAGE
    path = write_corpus(args.out, config)
    print(f"corpus written: {path}")
    return EXIT_OK


def run_train(args: argparse.Namespace) -> int:
    """``deepfake-lib train``: fine-tune with parameters from a YAML file and ``--set`` options.

    Runs unchanged under ``torchrun --nproc_per_node N`` (DDP through the Trainer); every rank
    prints one closing line, and only rank 0 writes the run folder.
    """
    from deepfake_lib.config import ConfigError, ExperimentConfig

    try:
        base = ExperimentConfig.from_yaml(args.params) if args.params else ExperimentConfig()
        cfg = ExperimentConfig.from_params({**base.to_dict(), **parse_set_options(args.set or [])}, strict=True)
    except (ConfigError, UsageError) as exc:
        print(f"deepfake-lib train: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from deepfake_lib.train import fine_tune

    result = fine_tune(cfg)
    rank, world = os.environ.get("RANK", "0"), os.environ.get("WORLD_SIZE", "1")
    test = (result.metrics or {}).get("test") or {}
    if "eer" in test:
        print(f"run folder: {result.run_dir}")
        print(f"test EER {test['eer']:.3f}, AUC {test.get('auc', float('nan')):.3f} (n={test.get('n')})")
    print(f"rank {rank} of {world} finished", flush=True)
    return EXIT_OK


def run_series(args: argparse.Namespace) -> int:
    """``deepfake-lib series``: run the notebook series into a run folder."""
    from deepfake_lib.series import run_series as _run_series

    _run_series(run_dir=args.run_dir, params_file=args.params)
    return EXIT_OK


def run_refresh_notebooks(args: argparse.Namespace) -> int:
    """``deepfake-lib refresh-notebooks``: re-execute the committed notebooks in place."""
    from deepfake_lib.series import refresh_notebooks

    refresh_notebooks()
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The ``deepfake-lib`` parser with all subcommands."""
    from deepfake_lib.infer import BACKENDS
    from deepfake_lib.scorefile import add_score_arguments, run_score

    parser = argparse.ArgumentParser(prog="deepfake-lib", description="Audio deepfake detection workbench.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("detect", help="score audio files (same as deepfake-detect)")
    add_detect_arguments(p)
    p.set_defaults(handler=run_detect)

    p = sub.add_parser("serve", help="serve a model over HTTP (FastAPI + uvicorn)")
    p.add_argument("--model", default=os.environ.get("DEEPFAKE_MODEL", "runs/demo"),
                   help="run/export/model folder or Hub id (default $DEEPFAKE_MODEL or runs/demo)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--backend", choices=BACKENDS, default="torch")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threshold", type=float, default=None)
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest accepted upload, MB (default 20)")
    p.add_argument("--log", dest="log_path", help="append one JSON line per prediction to this file")
    p.set_defaults(handler=run_serve)

    p = sub.add_parser("export", help="export int8 / ONNX / int8 ONNX variants with parity checks")
    p.add_argument("--model", required=True, help="run folder, model folder or Hub id")
    p.add_argument("--out", required=True, help="export folder to write")
    p.add_argument("--int8", action="store_true", help="int8 PyTorch recipe")
    p.add_argument("--onnx", action="store_true", help="ONNX fp32")
    p.add_argument("--onnx-int8", action="store_true", help="ONNX int8 (MatMul/Gemm)")
    p.add_argument("--parity-data", help="run folder whose test split is used for parity (default: synthetic clips)")
    p.add_argument("--parity-clips", type=int, default=64, help="at most this many parity clips (default 64)")
    p.set_defaults(handler=run_export)

    p = sub.add_parser("corpus", help="write the embedded synthetic corpus (parquet, Hemg schema)")
    p.add_argument("--out", required=True, help="parquet file to write")
    p.add_argument("--n-utterances", type=int)
    p.add_argument("--spoofs-per-utterance", type=int)
    p.add_argument("--difficulty", type=float)
    p.add_argument("--seed", type=int)
    p.set_defaults(handler=run_corpus)

    p = sub.add_parser("train", help="fine-tune a detector and write a run folder")
    p.add_argument("--params", help="YAML file of parameters (see params/)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a parameter (repeatable)")
    p.set_defaults(handler=run_train)

    p = sub.add_parser("series", help="run the notebook series end to end")
    p.add_argument("--run-dir", required=True, help="run folder (relative to the project root)")
    p.add_argument("--params", help="YAML file of notebook parameters")
    p.set_defaults(handler=run_series)

    p = sub.add_parser("refresh-notebooks", help="re-execute the committed notebooks on the defaults")
    p.set_defaults(handler=run_refresh_notebooks)

    p = sub.add_parser("score", help="score a detector's score file against a protocol (EER, minDCF, Cllr)")
    add_score_arguments(p)
    p.set_defaults(handler=run_score)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``deepfake-lib``; returns the exit code."""
    args = build_parser().parse_args(argv)
    _setup_logging()
    try:
        return int(args.handler(args))
    except UsageError as exc:
        print(f"deepfake-lib {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _setup_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


if __name__ == "__main__":
    sys.exit(main())
