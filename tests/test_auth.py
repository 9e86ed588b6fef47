"""Token auth: where the token comes from, 401 with WWW-Authenticate on every route but /health
and the page's files, the WebSocket's subprotocol and query-parameter tokens, and the refusal
to serve a non-loopback address without a token."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from starlette.testclient import WebSocketDenialResponse  # noqa: E402

from deepfake_lib.deploy import service  # noqa: E402
from deepfake_lib.deploy.auth import (  # noqa: E402
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    check_bind,
    is_loopback,
    load_token,
)

TOKEN = "s3cret-token-for-tests-0123456789"


def test_token_sources_and_their_order(tmp_path) -> None:
    path = tmp_path / "token"
    path.write_text("from-the-file-0123456789\nignored second line\n")
    assert load_token(env={}) is None
    assert load_token(env={TOKEN_ENV: TOKEN}) == TOKEN
    assert load_token(env={TOKEN_FILE_ENV: str(path)}) == "from-the-file-0123456789"
    assert load_token(token_file=path, env={TOKEN_ENV: TOKEN}) == "from-the-file-0123456789"
    assert load_token("given-directly-0123456789", env={TOKEN_ENV: TOKEN}) == "given-directly-0123456789"
    with pytest.raises(ValueError, match="at least 16"):
        load_token(env={TOKEN_ENV: "short"})
    with pytest.raises(ValueError, match="only letters"):
        load_token(env={TOKEN_ENV: "has spaces and ; semicolons"})
    with pytest.raises(OSError):
        load_token(env={TOKEN_FILE_ENV: str(tmp_path / "missing")})


def test_non_loopback_bind_needs_a_token_or_insecure() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", TOKEN)
    check_bind("0.0.0.0", None, insecure=True)
    with pytest.raises(ValueError, match="--insecure"):
        check_bind("0.0.0.0", None)


def test_serve_command_refuses_a_public_bind_without_a_token(monkeypatch, capsys) -> None:
    from deepfake_lib.cli import main as cli

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(TOKEN_FILE_ENV, raising=False)
    code = cli.main(["serve", "--model", "no-such-model", "--host", "0.0.0.0"])
    assert code == cli.EXIT_USAGE
    assert "--insecure" in capsys.readouterr().err


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from deepfake_lib.modeling.frontends import build_tiny_model
    from deepfake_lib.modeling.models import save_model

    model = save_model(build_tiny_model(seed=7), tmp_path_factory.mktemp("auth") / "model")
    app = service.create_app(str(model), device="cpu", runtime="torch", token=TOKEN)
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/model"),
        ("post", "/predict"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
        ("get", "/docs"),
    ],
)
def test_every_route_but_health_needs_the_token(client, method: str, path: str) -> None:
    missing = getattr(client, method)(path)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json() == {"detail": "unauthorized: missing bearer token"}
    wrong = getattr(client, method)(path, headers={"Authorization": "Bearer " + TOKEN[:-1] + "X"})
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]
    right = getattr(client, method)(path, headers={"Authorization": "Bearer " + TOKEN})
    assert right.status_code != 401


def test_health_and_the_page_files_are_public(client) -> None:
    assert client.get("/health").status_code == 200
    assert client.get("/").status_code == 200 and "<html" in client.get("/").text
    assert client.get("/static/app.js").status_code == 200


@pytest.mark.parametrize("how", ["subprotocol", "query", "header"])
def test_stream_takes_the_token_in_the_ways_a_browser_can_send_it(client, how: str) -> None:
    kwargs: dict = {"subprotocols": ["deepfake-stream"]}
    path = "/stream"
    if how == "subprotocol":
        kwargs["subprotocols"].append("bearer." + TOKEN)
    elif how == "query":
        path += "?token=" + TOKEN
    else:
        kwargs["headers"] = {"Authorization": "Bearer " + TOKEN}
    with client.websocket_connect(path, **kwargs) as ws:
        assert ws.accepted_subprotocol == "deepfake-stream"  # the token is never echoed
        ws.send_text(json.dumps({"sample_rate": 16000}))
        assert ws.receive_json()["type"] == "ready"


def test_stream_without_the_token_is_refused_before_it_opens(client) -> None:
    for kwargs in ({}, {"subprotocols": ["bearer.wrong-token-0123456789"]}):
        with pytest.raises(WebSocketDenialResponse) as err:
            with client.websocket_connect("/stream", **kwargs):
                pass
        assert err.value.status_code == 401 and "Bearer" in err.value.headers["www-authenticate"]


def test_refused_requests_are_counted_by_route(client) -> None:
    client.get("/model")
    text = client.get("/metrics", headers={"Authorization": "Bearer " + TOKEN}).text
    assert 'deepfake_requests_total{method="GET",route="/model",status="401"}' in text
