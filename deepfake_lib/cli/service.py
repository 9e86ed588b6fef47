"""``deepfake-lib serve`` (the web service) and ``deepfake-lib stream`` (its streaming client)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from deepfake_lib.audio.io import SERVICE_MAX_DURATION_S
from deepfake_lib.cli.scoring_options import add_scoring_arguments, scoring_kwargs
from deepfake_lib.deploy.auth import TOKEN_ENV, TOKEN_FILE_ENV, check_bind, load_token
from deepfake_lib.deploy.service import DEFAULT_MAX_CONCURRENT, DEFAULT_MAX_UPLOAD_MB, create_app
from deepfake_lib.deploy.stream_route import StreamLimits

__all__ = ["add_serve_arguments", "add_stream_arguments", "run_serve", "run_stream"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

WS_SIZE_FACTOR = 4
"""uvicorn drops WebSocket messages over this many times ``--max-message-bytes`` at the
protocol level (close 1009) before they reach the app, which closes smaller oversized ones
with its own reason."""


WS_MAX_QUEUE = 8
"""Messages uvicorn queues per WebSocket before it stops reading (TCP then holds the client back):
bounds the backlog a server that fell behind still scores for a client that has gone."""


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``deepfake-lib serve``."""
    parser.add_argument(
        "--model",
        default=os.environ.get("DEEPFAKE_MODEL", "runs/demo"),
        help="run/export/model folder or Hub id (default $DEEPFAKE_MODEL or runs/demo)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    add_scoring_arguments(parser)
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD_MB,
        help=f"largest accepted upload, MB (default {DEFAULT_MAX_UPLOAD_MB:g})",
    )
    parser.add_argument(
        "--max-duration-s",
        type=float,
        default=SERVICE_MAX_DURATION_S,
        help=f"longest audio scored (upload or stream), seconds (default {SERVICE_MAX_DURATION_S:g})",
    )
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=DEFAULT_MAX_CONCURRENT,
        help=f"uploads decoded and scored at once; others wait (default {DEFAULT_MAX_CONCURRENT})",
    )
    defaults = StreamLimits()
    parser.add_argument(
        "--max-streams",
        type=int,
        default=defaults.max_streams,
        help=f"WebSocket streams open at once (default {defaults.max_streams})",
    )
    parser.add_argument(
        "--max-message-bytes",
        type=int,
        default=defaults.max_message_bytes,
        help=f"largest stream message, bytes (default {defaults.max_message_bytes})",
    )
    parser.add_argument(
        "--token-file",
        help=f"file whose first line is the bearer token (else ${TOKEN_ENV} or ${TOKEN_FILE_ENV})",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback --host without a token (anyone who reaches the port can use it)",
    )


def run_serve(args: argparse.Namespace) -> int:
    """``deepfake-lib serve``: run the web service with uvicorn until stopped; 2 on a usage error."""
    import uvicorn  # optional extra (pip install .[serve]): needed only here

    try:
        token = load_token(token_file=args.token_file)
        check_bind(args.host, token, insecure=args.insecure)
        limits = StreamLimits(
            max_duration_s=args.max_duration_s,
            max_streams=args.max_streams,
            max_message_bytes=args.max_message_bytes,
        )
        if not args.max_upload_mb > 0 or args.max_concurrent < 1:
            raise ValueError("--max-upload-mb must be positive and --max-concurrent at least 1")
        app = create_app(
            args.model,
            max_upload_mb=args.max_upload_mb,
            max_duration_s=args.max_duration_s,
            max_concurrent=args.max_concurrent,
            stream_limits=limits,
            token=token,
            **scoring_kwargs(args),
        )
    except (ValueError, OSError) as exc:
        print(f"deepfake-lib serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="info",
        ws_max_size=WS_SIZE_FACTOR * limits.max_message_bytes,
        ws_max_queue=WS_MAX_QUEUE,
    )
    return EXIT_OK


def add_stream_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``deepfake-lib stream``."""
    parser.add_argument("path", metavar="FILE", help="audio file to stream")
    parser.add_argument(
        "--url",
        default="ws://127.0.0.1:8000/stream",
        help="the service's stream (default ws://127.0.0.1:8000/stream)",
    )
    parser.add_argument(
        "--token-file", help=f"file holding the bearer token (else ${TOKEN_ENV} or ${TOKEN_FILE_ENV})"
    )
    parser.add_argument(
        "--realtime", action="store_true", help="send at the audio's own pace, as a microphone would"
    )
    parser.add_argument("--chunk-s", type=float, default=0.1, help="audio per message, seconds (default 0.1)")
    parser.add_argument(
        "--timeout-s", type=float, default=60.0, help="longest wait for the server, seconds (default 60)"
    )


def run_stream(args: argparse.Namespace) -> int:
    """``deepfake-lib stream``: print one JSON line per window, then the result; 1 when the
    server closed the stream early, 2 on a usage error."""
    from deepfake_lib.audio.errors import AudioError
    from deepfake_lib.deploy.stream_client import StreamClosed, stream_audio

    def show(message: dict) -> None:
        print(json.dumps(message), flush=True)

    try:
        outcome = stream_audio(
            args.url,
            args.path,
            token=load_token(token_file=args.token_file),
            chunk_s=args.chunk_s,
            realtime=args.realtime,
            timeout_s=args.timeout_s,
            on_window=show,
        )
    except (AudioError, ValueError, OSError) as exc:
        print(f"deepfake-lib stream: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (StreamClosed, TimeoutError) as exc:
        print(f"deepfake-lib stream: {exc}", file=sys.stderr)
        return EXIT_FAILED
    show(outcome.result)
    return EXIT_OK
