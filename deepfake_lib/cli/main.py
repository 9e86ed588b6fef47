"""Command line: ``deepfake-detect`` (score files) and ``deepfake-lib`` (every stage).

``deepfake-detect MODEL PATH... [--out results.csv|results.jsonl]`` scores audio files and
folders (searched recursively for :data:`deepfake_lib.corpora.sources.AUDIO_EXTENSIONS`) with a run
folder, export folder, model folder or Hub id, and writes one row per file: ``path``,
``label``, ``prob_real``, ``score``, ``threshold``, ``duration_s``, ``n_windows``,
``max_fake_prob``, ``suspicious_segments`` and ``error``. Rows are flushed as they are
produced; when ``--out`` already exists the files listed in it are skipped and new rows are
appended, so an interrupted run is resumed by running the same command again (exact for any
file name). A file that cannot be scored gets a row with its error and never stops the run;
so does every input that cannot be read (missing, a broken or looping link) and every file
longer than ``--max-duration-s`` (default 1 hour; checked against its header and while decoding).

Exit codes: 0 every file scored (or already done), 1 some files failed (the others were
scored), 2 usage error, model that cannot be loaded, or no input files. 130 on Ctrl-C.

A source that is an unfinished run or export folder (no completion marker: killed, or still
being written) is refused with exit code 2 and a message naming the folder.

``deepfake-lib`` subcommands: ``detect`` (the same as ``deepfake-detect``), ``serve``,
``export``, ``corpus`` (the embedded corpus), ``build-corpus real-speech`` (the real-speech
corpus: :func:`deepfake_lib.corpora.real_speech.main`), ``train``, ``series``, ``refresh-notebooks`` and
``score``; run ``deepfake-lib SUBCOMMAND --help`` for each.
"""

from __future__ import annotations

import argparse
import csv
import errno
import io
import json
import logging
import os
import re
import stat
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import yaml
from tqdm.auto import tqdm
from transformers.utils import logging as hf_logging

from deepfake_lib.audio.io import AUDIO_EXTENSIONS, CLI_MAX_DURATION_S, SERVICE_MAX_DURATION_S, duration_limit
from deepfake_lib.cli.score import add_score_arguments, run_score
from deepfake_lib.config import ConfigError, ExperimentConfig
from deepfake_lib.corpora import embedded as synthetic
from deepfake_lib.deploy.detector import BACKENDS, Detector
from deepfake_lib.deploy.export import export_model, load_run_test_waves
from deepfake_lib.deploy.service import DEFAULT_MAX_CONCURRENT, DEFAULT_MAX_UPLOAD_MB, create_app
from deepfake_lib.modeling import training as train
from deepfake_lib.notebook import series

__all__ = [
    "add_detect_arguments",
    "build_parser",
    "collect_audio_files",
    "format_segments",
    "JSONL_SUFFIXES",
    "main",
    "main_detect",
    "parse_set_options",
    "read_done_paths",
    "RESULT_COLUMNS",
    "result_row",
    "results_format",
    "ResultsWriter",
    "run_build_corpus",
    "run_corpus",
    "run_detect",
    "run_export",
    "run_refresh_notebooks",
    "run_series",
    "run_serve",
    "run_train",
    "score_files",
    "UsageError",
]

log = logging.getLogger(__name__)

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

RESULT_COLUMNS: tuple[str, ...] = (
    "path",
    "label",
    "prob_real",
    "score",
    "threshold",
    "duration_s",
    "n_windows",
    "max_fake_prob",
    "suspicious_segments",
    "error",
)
"""Columns of a ``deepfake-detect`` results file (CSV header, JSON-lines keys)."""

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


class UsageError(Exception):
    """A command-line problem reported with exit code 2."""


# --------------------------------------------------------------------------------------
# inputs and results files
# --------------------------------------------------------------------------------------
def _link_problem(path: str) -> str | None:
    """Why ``path`` cannot be opened as a file (broken or looping link, missing, not a regular
    file), or None when it can."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "broken link (its target does not exist)" if os.path.islink(path) else "no such file or folder"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        return f"cannot read ({exc.strerror or exc})"
    if stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
        return None
    return "not a regular file"


def collect_audio_files(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Audio files named by ``paths``: files as given, folders searched recursively for
    :data:`deepfake_lib.corpora.sources.AUDIO_EXTENSIONS` (case-insensitive; links to files are followed,
    links to folders are not), sorted, without duplicates (by real path).

    Returns ``(files, problems)``, all as absolute paths (links are not resolved);
    ``problems`` pairs each input that cannot be read with why: a missing path, a broken or
    looping link (named on the command line or found in a folder), a non-regular file.
    """
    files: list[Path] = []
    problems: list[tuple[Path, str]] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            files.append(Path(path))

    for raw in paths:
        top = os.path.abspath(os.path.expanduser(os.fspath(raw)))
        problem = _link_problem(top)
        if problem is not None:
            problems.append((Path(top), problem))
        elif not os.path.isdir(top):
            add(top)
        else:
            found: list[tuple[str, str | None]] = []
            for folder, dirs, names in os.walk(top, onerror=None, followlinks=False):
                dirs.sort()
                for name in names:
                    if os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS:
                        full = os.path.join(folder, name)
                        found.append((full, _link_problem(full)))
            for full, problem in sorted(found):
                if problem is None:
                    add(full)
                else:
                    problems.append((Path(full), problem))
    return files, problems


def results_format(out: str | os.PathLike[str] | None, fmt: str | None) -> str:
    """``"csv"`` or ``"jsonl"``: ``fmt`` when given, else from ``out``'s suffix (CSV by default)."""
    if fmt:
        return fmt
    if out is not None and Path(out).suffix.lower() in JSONL_SUFFIXES:
        return "jsonl"
    return "csv"


def _csv_records(text: str) -> Iterator[tuple[list[str], int]]:
    """``(fields, end)`` for each CSV record of ``text``; ``end`` is the character offset just
    after it. Lines break only at ``\\n``, ``\\r`` and ``\\r\\n`` outside quotes (never at
    U+2028 or U+0085); a record cut inside quotes at the end is yielded as it stands."""
    consumed = [0]

    def lines() -> Iterator[str]:
        for line in io.StringIO(text, newline=""):
            consumed[0] += len(line)
            yield line

    reader = csv.reader(lines())
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error:  # unexpected end of data inside quotes: a cut last record
            yield [], consumed[0]
            return
        yield fields, consumed[0]


def read_done_paths(out: str | os.PathLike[str], fmt: str) -> set[str]:
    """Paths already present in an existing results file (for resuming).

    Exact for any file name (commas, quotes, ``\\r``, ``\\n``, U+2028, U+0085, bytes that
    are not UTF-8): CSV is parsed with the csv module and JSON lines are split at ``\\n``
    only. A last row cut short by an interrupted run is removed from the file first, so
    appended rows start on a fresh line. Raises :class:`UsageError` when the file is not a
    results file of this command (wrong header or unreadable lines), rather than appending to it.
    """
    p = Path(out)
    if not p.is_file() or p.stat().st_size == 0:
        return set()
    with open(p, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        text = fh.read()
    done: set[str] = set()
    keep = len(text)
    if fmt == "csv":
        records = list(_csv_records(text))
        if records and (len(records[-1][0]) != len(RESULT_COLUMNS) or not text.endswith("\n")):
            keep = records[-2][1] if len(records) > 1 else 0
            records = records[:-1]
        if records and tuple(records[0][0]) != RESULT_COLUMNS:
            raise UsageError(
                f"{p}: exists but its header is not {','.join(RESULT_COLUMNS)}; "
                "choose another --out (it would be appended to)"
            )
        done.update(fields[0] for fields, _ in records[1:] if fields)
    else:
        lines = text.split("\n")
        if lines[-1]:  # no final newline: the last line was cut
            keep = len(text) - len(lines[-1])
        for n, line in enumerate(lines[:-1], start=1):
            if not line.strip():
                continue
            try:
                done.add(json.loads(line)["path"])
            except (json.JSONDecodeError, KeyError, TypeError):
                raise UsageError(
                    f"{p}: line {n} is not a deepfake-detect JSON result; choose another --out"
                ) from None
    if keep < len(text):
        log.warning("%s: removing an incomplete last row left by an interrupted run", p)
        with open(p, "r+b") as fh:
            fh.truncate(len(text[:keep].encode("utf-8", "surrogateescape")))
    return done


def format_segments(segments: Sequence[dict[str, Any]]) -> str:
    """``"start-end;start-end"`` in seconds with 2 decimals (the CSV form of suspicious segments)."""
    return ";".join(f"{s['start_s']:.2f}-{s['end_s']:.2f}" for s in segments)


def result_row(path: str, result: Any) -> dict[str, Any]:
    """One results row for a :class:`~deepfake_lib.deploy.detector.Prediction` or
    :class:`~deepfake_lib.deploy.detector.PredictionError` of the file ``path``."""
    row: dict[str, Any] = {c: None for c in RESULT_COLUMNS}
    row["path"] = path
    if getattr(result, "ok", False):
        row.update(
            label=result.label,
            prob_real=round(result.prob_real, 6),
            score=round(result.score, 6),
            threshold=round(result.threshold, 6),
            duration_s=round(result.duration_s, 3),
            n_windows=result.n_windows,
            max_fake_prob=round(result.max_fake_prob, 6),
            suspicious_segments=[
                {"start_s": s["start_s"], "end_s": s["end_s"]} for s in result.suspicious_segments
            ],
            error="",
        )
    else:
        row["error"] = getattr(result, "error", str(result))
    return row


class ResultsWriter:
    """Writes result rows as CSV or JSON lines, flushing after every row.

    CSV fields are quoted when needed; a row with a ``\r`` in any field is written with
    every field quoted (the csv module would otherwise leave ``\r`` bare), so that
    :func:`read_done_paths` reads back exactly the names written.
    """

    def __init__(self, stream: TextIO, fmt: str, *, write_header: bool, exact_names: bool = True) -> None:
        self.stream = stream
        self.fmt = fmt
        self.exact_names = exact_names
        self._csv = csv.writer(stream, lineterminator="\n") if fmt == "csv" else None
        self._csv_quoted = (
            csv.writer(stream, lineterminator="\n", quoting=csv.QUOTE_ALL) if fmt == "csv" else None
        )
        if self._csv is not None and write_header:
            self._csv.writerow(RESULT_COLUMNS)
            stream.flush()

    def write(self, row: dict[str, Any]) -> None:
        """Append one row and flush it to the operating system."""
        if self._csv is not None:
            values = self._names(row)
            segs = values.get("suspicious_segments")
            values["suspicious_segments"] = format_segments(segs) if segs else ""
            fields = ["" if values[c] is None else values[c] for c in RESULT_COLUMNS]
            quoted = any("\r" in f for f in fields if isinstance(f, str))
            (self._csv_quoted if quoted else self._csv).writerow(fields)
        else:
            self.stream.write(json.dumps(self._names(row), ensure_ascii=False) + "\n")
        self.stream.flush()

    def _names(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row with file names kept exact (results files) or made printable (terminal)."""
        if self.exact_names:
            return dict(row)
        return {k: _printable(v) if isinstance(v, str) else v for k, v in row.items()}


# --------------------------------------------------------------------------------------
# detect
# --------------------------------------------------------------------------------------
def add_detect_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``deepfake-detect`` / ``deepfake-lib detect``."""
    parser.add_argument("model", metavar="MODEL", help="run folder, export folder, model folder or Hub id")
    parser.add_argument(
        "paths", metavar="PATH", nargs="+", help="audio files or folders (searched recursively)"
    )
    parser.add_argument(
        "--out", help="results file (.csv or .jsonl); resumed when it exists. Default: CSV on stdout"
    )
    parser.add_argument(
        "--format", choices=("csv", "jsonl"), help="results format (default: from --out's suffix)"
    )
    parser.add_argument(
        "--threshold", type=float, help="decision threshold on the log-odds score (default: the model's)"
    )
    parser.add_argument("--window-s", type=float, default=4.0, help="window length, seconds (default 4)")
    parser.add_argument(
        "--hop-s", type=float, default=None, help="window hop, seconds (default: half a window)"
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
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--max-duration-s",
        type=float,
        default=None,
        help=f"longest audio scored, seconds; longer files get an error row (default {CLI_MAX_DURATION_S:g})",
    )


def run_detect(args: argparse.Namespace) -> int:
    """Score the files of ``args`` (see :func:`add_detect_arguments`); returns the exit code.

    Long because resuming, streaming rows to the output and the exit code share its state."""
    fmt = results_format(args.out, args.format)
    max_duration_s = getattr(args, "max_duration_s", None) or CLI_MAX_DURATION_S
    if not max_duration_s > 0:
        print(f"deepfake-detect: --max-duration-s {max_duration_s}: must be positive", file=sys.stderr)
        return EXIT_USAGE
    files, problems = collect_audio_files(args.paths)
    for path, problem in problems:
        print(f"deepfake-detect: {_printable(str(path))}: {problem}", file=sys.stderr)
    if not files:
        looked = "" if problems else " (looked for " + ", ".join(_audio_extensions()) + ")"
        print(f"deepfake-detect: no input files{looked}", file=sys.stderr)
        return EXIT_USAGE
    try:
        done = read_done_paths(args.out, fmt) if args.out else set()
    except UsageError as exc:
        print(f"deepfake-detect: {exc}", file=sys.stderr)
        return EXIT_USAGE
    todo = [f for f in files if str(f) not in done]
    todo_problems = [(p, why) for p, why in problems if str(p) not in done]
    n_skipped = len(files) - len(todo)
    counts = {"scored": 0, "Fake": 0, "Real": 0, "errors": 0, "skipped": n_skipped}

    detector = None
    if todo:
        if args.no_progress or not sys.stderr.isatty():
            _quiet_transformers()
        try:
            detector = Detector.from_source(
                args.model,
                threshold=args.threshold,
                device=args.device,
                backend=args.backend,
                window_s=args.window_s,
                hop_s=args.hop_s,
                batch_size=args.batch_size,
                log_path=args.log_path,
            )
        except Exception as exc:  # noqa: BLE001 - any loading failure is reported, not a traceback
            print(
                f"deepfake-detect: cannot load model {args.model!r}: {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )
            return EXIT_USAGE
        choice = detector.backend_choice
        print(
            f"deepfake-detect: backend {choice.get('chosen', args.backend)}"
            + (f" ({choice['reason']})" if choice.get("reason") else ""),
            file=sys.stderr,
        )

    out_stream: TextIO
    if args.out:
        out_path = Path(args.out)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        new_file = not out_path.is_file() or out_path.stat().st_size == 0
        out_stream = open(out_path, "a", encoding="utf-8", errors="surrogateescape", newline="")  # noqa: SIM115 - closed below
    else:
        new_file = True
        out_stream = sys.stdout
    interrupted = False
    try:
        writer = ResultsWriter(
            out_stream, fmt, write_header=new_file, exact_names=out_stream is not sys.stdout
        )
        for path, problem in todo_problems:
            writer.write(result_row(str(path), _Missing(f"{path}: {problem}")))
            counts["errors"] += 1
        if detector is not None:
            bar = tqdm(
                total=len(todo),
                unit="file",
                file=sys.stderr,
                disable=args.no_progress or not sys.stderr.isatty(),
            )
            try:
                with duration_limit(max_duration_s):
                    for path, result in score_files(detector, todo):
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
    print(
        f"deepfake-detect: {counts['scored']} scored ({counts['Fake']} Fake, {counts['Real']} Real), "
        f"{counts['errors']} errors{skipped}"
        + (" -- interrupted; run again to resume" if interrupted else ""),
        file=sys.stderr,
    )
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_SOME_FAILED if counts["errors"] else EXIT_OK


def score_files(detector: Any, files: Sequence[Path]) -> Iterator[tuple[Path, Any]]:
    """``(path, result)`` for every file, in order, each as soon as it is known.

    Files are scored in batches by ``detector.predict_many``; an exception that escapes it
    (rather than becoming a per-file error) no longer loses the run: the files not yet
    reported are scored one at a time, and a file whose scoring raises gets an error row
    (``MemoryError``, ``RuntimeError``...) instead of a traceback.
    """
    done = 0
    try:
        for result in detector.predict_many(files):
            yield files[done], result
            done += 1
        return
    except (KeyboardInterrupt, GeneratorExit):
        raise
    except Exception as exc:  # noqa: BLE001 - MemoryError included; isolated below, file by file
        log.warning(
            "batch scoring failed (%s: %s); scoring the remaining %d files one at a time",
            type(exc).__name__,
            exc,
            len(files) - done,
        )
    for path in files[done:]:
        try:
            result = next(iter(detector.predict_many([path])))
        except Exception as exc:  # noqa: BLE001 - reported in the file's row
            result = _Missing(f"{path}: cannot score ({type(exc).__name__}: {exc})")
        yield path, result


def _printable(text: str) -> str:
    """``text`` with bytes that are not UTF-8 (surrogate escapes) shown as ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class _Missing:
    ok = False

    def __init__(self, error: str) -> None:
        self.error = error


def _audio_extensions() -> list[str]:
    return list(AUDIO_EXTENSIONS)


def _quiet_transformers() -> None:
    """No weight-loading progress bars from transformers on non-interactive runs."""
    hf_logging.disable_progress_bar()


def main_detect(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``deepfake-detect``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="deepfake-detect",
        description="Score audio files for deepfakes.",
        epilog="Exit codes: 0 all scored, 1 some files failed, 2 usage/model/no input.",
    )
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
    import uvicorn  # optional extra (pip install .[serve]): needed only here

    if not args.max_duration_s > 0 or args.max_concurrent < 1:
        raise UsageError("--max-duration-s must be positive and --max-concurrent at least 1")
    app = create_app(
        args.model,
        max_upload_mb=args.max_upload_mb,
        max_duration_s=args.max_duration_s,
        max_concurrent=args.max_concurrent,
        log_path=args.log_path,
        backend=args.backend,
        threshold=args.threshold,
        device=args.device,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    """``deepfake-lib export``: write an export folder and print the parity figures."""
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
    given = {
        k: getattr(args, k)
        for k in ("n_utterances", "spoofs_per_utterance", "difficulty", "seed")
        if getattr(args, k) is not None
    }
    try:
        config = synthetic.CorpusConfig(**given)
    except (TypeError, ValueError) as exc:
        print(f"deepfake-lib corpus: {exc}", file=sys.stderr)
        return EXIT_USAGE
    path = synthetic.write_corpus(args.out, config)
    print(f"corpus written: {path}")
    return EXIT_OK


def run_train(args: argparse.Namespace) -> int:
    """``deepfake-lib train``: fine-tune with parameters from a YAML file and ``--set`` options.

    Runs unchanged under ``torchrun --nproc_per_node N`` (DDP through the Trainer); every rank
    prints one closing line, and only rank 0 writes the run folder.
    """
    try:
        base = ExperimentConfig.from_yaml(args.params) if args.params else ExperimentConfig()
        cfg = ExperimentConfig.from_params(
            {**base.to_dict(), **parse_set_options(args.set or [])}, strict=True
        )
    except (ConfigError, UsageError) as exc:
        print(f"deepfake-lib train: {exc}", file=sys.stderr)
        return EXIT_USAGE
    result = train.fine_tune(cfg)
    rank, world = os.environ.get("RANK", "0"), os.environ.get("WORLD_SIZE", "1")
    test = (result.metrics or {}).get("test") or {}
    if "eer" in test:
        print(f"run folder: {result.run_dir}")
        print(f"test EER {test['eer']:.3f}, AUC {test.get('auc', float('nan')):.3f} (n={test.get('n')})")
    print(f"rank {rank} of {world} finished", flush=True)
    return EXIT_OK


def run_series(args: argparse.Namespace) -> int:
    """``deepfake-lib series``: run the notebook series into a run folder."""
    series.run_series(run_dir=args.run_dir, params_file=args.params, parameters=parse_set_options(args.set))
    return EXIT_OK


def run_refresh_notebooks(args: argparse.Namespace) -> int:
    """``deepfake-lib refresh-notebooks``: re-execute the committed notebooks in place."""
    series.refresh_notebooks()
    return EXIT_OK


def run_build_corpus(args: argparse.Namespace) -> int:
    """``deepfake-lib build-corpus real-speech ARGS``: :func:`deepfake_lib.corpora.real_speech.main` with ``ARGS``."""
    # Imported here, not at module top: the builder pulls in librosa and the vocoders, which
    # every deepfake-detect call would otherwise pay for at start-up.
    from deepfake_lib.corpora import real_speech

    return int(real_speech.main(list(args.corpus_args)))


def build_parser() -> argparse.ArgumentParser:
    """The ``deepfake-lib`` parser with all subcommands."""
    parser = argparse.ArgumentParser(prog="deepfake-lib", description="Audio deepfake detection workbench.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("detect", help="score audio files (same as deepfake-detect)")
    add_detect_arguments(p)
    p.set_defaults(handler=run_detect)

    p = sub.add_parser("serve", help="serve a model over HTTP (FastAPI + uvicorn)")
    p.add_argument(
        "--model",
        default=os.environ.get("DEEPFAKE_MODEL", "runs/demo"),
        help="run/export/model folder or Hub id (default $DEEPFAKE_MODEL or runs/demo)",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threshold", type=float, default=None)
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD_MB,
        help=f"largest accepted upload, MB (default {DEFAULT_MAX_UPLOAD_MB:g})",
    )
    p.add_argument(
        "--max-duration-s",
        type=float,
        default=SERVICE_MAX_DURATION_S,
        help=f"longest audio scored, seconds; longer uploads get 413 (default {SERVICE_MAX_DURATION_S:g})",
    )
    p.add_argument(
        "--max-concurrent",
        type=int,
        default=DEFAULT_MAX_CONCURRENT,
        help=f"requests decoded and scored at once; others wait (default {DEFAULT_MAX_CONCURRENT})",
    )
    p.add_argument("--log", dest="log_path", help="append one JSON line per prediction to this file")
    p.set_defaults(handler=run_serve)

    p = sub.add_parser("export", help="export int8 / ONNX / int8 ONNX variants with parity checks")
    p.add_argument("--model", required=True, help="run folder, model folder or Hub id")
    p.add_argument("--out", required=True, help="export folder to write")
    p.add_argument("--int8", action="store_true", help="int8 PyTorch recipe")
    p.add_argument("--onnx", action="store_true", help="ONNX fp32")
    p.add_argument("--onnx-int8", action="store_true", help="ONNX int8 (MatMul/Gemm)")
    p.add_argument(
        "--parity-data", help="run folder whose test split is used for parity (default: synthetic clips)"
    )
    p.add_argument("--parity-clips", type=int, default=64, help="at most this many parity clips (default 64)")
    p.set_defaults(handler=run_export)

    p = sub.add_parser("corpus", help="write the embedded synthetic corpus (parquet, Hemg schema)")
    p.add_argument("--out", required=True, help="parquet file to write")
    p.add_argument("--n-utterances", type=int)
    p.add_argument("--spoofs-per-utterance", type=int)
    p.add_argument("--difficulty", type=float)
    p.add_argument("--seed", type=int)
    p.set_defaults(handler=run_corpus)

    p = sub.add_parser("build-corpus", help="build a corpus from real speech (see its --help)")
    corpora = p.add_subparsers(dest="corpus", required=True, metavar="CORPUS")
    q = corpora.add_parser(
        "real-speech",
        add_help=False,
        help="real speech and its spoofs (deepfake_lib.corpora.real_speech)",
        description="Arguments are those of python -m deepfake_lib.corpora.real_speech (--help lists them).",
    )
    q.add_argument("corpus_args", nargs=argparse.REMAINDER, metavar="ARGS")
    q.set_defaults(handler=run_build_corpus)

    p = sub.add_parser("train", help="fine-tune a detector and write a run folder")
    p.add_argument("--params", help="YAML file of parameters (see params/)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a parameter (repeatable)")
    p.set_defaults(handler=run_train)

    p = sub.add_parser("series", help="run the notebook series end to end")
    p.add_argument("--run-dir", required=True, help="run folder (relative to the project root)")
    p.add_argument("--params", help="YAML file of notebook parameters")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one parameter after the params file (repeatable), e.g. --set epochs=2",
    )
    p.set_defaults(handler=run_series)

    p = sub.add_parser("refresh-notebooks", help="re-execute the committed notebooks on the defaults")
    p.set_defaults(handler=run_refresh_notebooks)

    p = sub.add_parser("score", help="score a detector's score file against a protocol (EER, minDCF, Cllr)")
    add_score_arguments(p)
    p.set_defaults(handler=run_score)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``deepfake-lib``; returns the exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "command", None) == "build-corpus":  # the corpus builder parses its own options
        args.corpus_args = [*extra, *args.corpus_args]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
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
