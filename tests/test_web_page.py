"""The web page at ``/``: shipped in the package, nothing loaded from outside, and driven in a real
headless Chromium with a fake microphone fed from a WAV file made here."""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from deepfake_lib.deploy import service  # noqa: E402
from deepfake_lib.scoring import window_spans  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOT_DIR = Path(
    os.environ.get("DEEPFAKE_SCREENSHOT_DIR")
    or Path(__file__).resolve().parents[1] / "runs" / "test-artifacts"
)
"""Where the browser test leaves its screenshots for a person to look at: ``runs/test-artifacts`` in
the checkout (git ignores ``runs/``; the tests' own project root is a temporary folder), or
``$DEEPFAKE_SCREENSHOT_DIR``."""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from deepfake_lib.modeling.frontends import build_tiny_model
    from deepfake_lib.modeling.models import save_model

    return save_model(build_tiny_model(seed=7), tmp_path_factory.mktemp("web") / "model")


def make_app(model_dir, **kwargs):
    return service.create_app(
        str(model_dir), device="cpu", runtime="torch", window_s=1.0, hop_s=0.5, **kwargs
    )


def test_page_files_are_package_data_and_load_nothing_from_outside(model_dir) -> None:
    files = sorted(p.name for p in service.WEB_DIR.iterdir())
    assert {"index.html", "app.js", "style.css", "capture-worklet.js"} <= set(files)
    for path in service.WEB_DIR.iterdir():
        text = path.read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I), (
            f"{path.name} names an outside URL"
        )
        assert "import(" not in text and "@import" not in text
    with TestClient(make_app(model_dir)) as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        for src in re.findall(r'(?:src|href)="([^"]+)"', page.text):
            assert client.get("/" + src).status_code == 200, src
        assert client.get("/static/../service.py").status_code == 404


def test_package_data_lists_the_page() -> None:
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["deepfake_lib"]
    assert "deploy/web/*" in data


# ---------------------------------------------------------------- the browser
def browser_or_skip():
    """A headless Chromium WebDriver with a fake microphone, or a skip naming what is missing."""
    missing = [
        pkg
        for pkg, path in (("chromium", CHROMIUM), ("chromium-driver", CHROMEDRIVER))
        if not Path(path).exists()
    ]
    if missing:
        pytest.skip(
            f"Debian package(s) {', '.join(missing)} missing: run `make browser-deps` (apt-get install)"
        )
    try:
        from selenium import webdriver  # noqa: F401
    except ImportError:
        pytest.skip("Python package selenium missing: pip install -e '.[dev]'")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving ``app`` on 127.0.0.1 in a thread, stopped on exit (bounded waits)."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.time() + 120
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}/"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_chromium(fake_wav: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={fake_wav}",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1100,1400",
    ):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver, profile


def wait_for(driver, condition, timeout_s: float, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout_s, poll_frequency=0.2).until(condition)
    except Exception as exc:  # noqa: BLE001 - say what the page showed instead
        status = driver.find_element("id", "status").text
        raise AssertionError(f"{what} within {timeout_s} s; page status: {status!r}") from exc


@pytest.mark.slow
def test_page_records_the_fake_microphone_and_scores_a_file(model_dir, tmp_path) -> None:
    browser_or_skip()
    rng = np.random.default_rng(0)
    t = np.arange(48_000 * 4) / 48_000
    voice = 0.3 * np.sin(2 * np.pi * 180 * t + 3 * np.sin(2 * np.pi * 0.5 * t)) + 0.02 * rng.standard_normal(
        t.size
    )
    fake_mic = tmp_path / "microphone.wav"
    sf.write(fake_mic, voice.astype(np.float32), 48_000, subtype="PCM_16")
    upload = tmp_path / "upload.wav"
    sf.write(upload, voice[: 48_000 * 3].astype(np.float32), 48_000, subtype="PCM_16")
    record_s = 3
    expected_stream = len(window_spans(record_s * 16_000, 16_000, 8_000))  # 1 s windows, 0.5 s hop
    app = make_app(model_dir)
    shots = SCREENSHOT_DIR
    shots.mkdir(parents=True, exist_ok=True)
    with LiveServer(app) as url:
        expected_file = app.state.load_detector().predict(upload).n_windows
        driver, profile = start_chromium(fake_mic)
        try:
            driver.get(url)
            wait_for(driver, lambda d: d.find_elements("css selector", "#card-facts dd"), 30, "no model card")
            assert "no test metrics" in driver.find_element("id", "card-warning").text  # a bare model folder
            box = driver.find_element("id", "record-seconds")
            box.clear()
            box.send_keys(str(record_s))
            driver.find_element("id", "record").click()
            done = wait_for(
                driver,
                lambda d: d.find_element("id", "verdict").get_attribute("data-done"),
                record_s + 60,
                "no streamed verdict",
            )
            bars = driver.find_elements("css selector", "#timeline .win")
            driver.save_screenshot(str(shots / "web_page_microphone.png"))
            assert int(done) == expected_stream and len(bars) == expected_stream
            assert driver.find_element("id", "verdict").text.split()[0] in ("Real", "Fake")

            driver.find_element("id", "file").send_keys(str(upload))
            wait_for(
                driver,
                lambda d: (
                    d.find_element("id", "verdict").get_attribute("data-done") == str(expected_file)
                    and "upload.wav" in d.find_element("id", "status").text
                ),
                60,
                "no verdict for the picked file",
            )
            assert len(driver.find_elements("css selector", "#timeline .win")) == expected_file
            driver.save_screenshot(str(shots / "web_page_file.png"))
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)
    print(f"screenshots in {shots}")


@pytest.mark.slow
def test_page_asks_for_the_token_once_and_streams_with_it(model_dir, tmp_path) -> None:
    browser_or_skip()
    token = "browser-test-token-0123456789"
    t = np.arange(48_000 * 2) / 48_000
    fake_mic = tmp_path / "microphone.wav"
    sf.write(fake_mic, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 48_000, subtype="PCM_16")
    expected = len(window_spans(2 * 16_000, 16_000, 8_000))
    with LiveServer(make_app(model_dir, token=token)) as url:
        driver, profile = start_chromium(fake_mic)
        try:
            driver.get(url)
            wait_for(
                driver, lambda d: d.find_element("id", "token-box").is_displayed(), 30, "no token prompt"
            )
            driver.find_element("id", "token").send_keys(token)
            driver.find_element("css selector", "#token-form button").click()
            wait_for(driver, lambda d: d.find_elements("css selector", "#card-facts dd"), 30, "no model card")
            assert not driver.find_element("id", "token-box").is_displayed()
            box = driver.find_element("id", "record-seconds")
            box.clear()
            box.send_keys("2")
            driver.find_element("id", "record").click()  # the WebSocket carries the token as a subprotocol
            done = wait_for(
                driver, lambda d: d.find_element("id", "verdict").get_attribute("data-done"), 60, "no verdict"
            )
            assert int(done) == expected == len(driver.find_elements("css selector", "#timeline .win"))
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.slow
def test_model_card_warns_when_the_run_was_tested_on_the_embedded_corpus(tmp_path) -> None:
    browser_or_skip()
    from deepfake_lib.evaluation.metrics import summarize_scores
    from deepfake_lib.modeling.frontends import build_tiny_model
    from deepfake_lib.modeling.models import save_model
    from deepfake_lib.runs import mark_complete, write_json

    run = tmp_path / "run"
    save_model(build_tiny_model(seed=7), run / "model")
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(40, int), np.zeros(40, int)]
    test = summarize_scores(labels, rng.normal(size=80) + 1.5 * labels, threshold=0.3, n_bootstrap=50)
    metrics = {
        "threshold": {"value": 0.3, "chosen_on": "validation EER"},
        "data_source": "embedded",
        "test": test,
    }
    write_json(run / "metrics.json", metrics)
    mark_complete(run, "run", writer="test fixture")
    fake_mic = tmp_path / "microphone.wav"
    sf.write(fake_mic, np.zeros(16_000, np.float32), 16_000)
    app = service.create_app(str(run), device="cpu", runtime="torch")
    with LiveServer(app) as url:
        driver, profile = start_chromium(fake_mic)
        try:
            driver.get(url)
            wait_for(
                driver, lambda d: d.find_elements("css selector", "#card-metrics tbody tr"), 30, "no metrics"
            )
            warning = driver.find_element("id", "card-warning")
            assert warning.is_displayed() and "embedded synthetic corpus" in warning.text
            rows = {
                r.find_elements("tag name", "td")[0].text: r.text
                for r in driver.find_elements("css selector", "#card-metrics tbody tr")
            }
            low, high = test["ci"]["eer"]
            assert f"[{low:.3f}, {high:.3f}]" in rows["eer"]  # the test EER with its interval
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)
