# deepfake_lib — run `make help` for the targets.
# Everything runs inside a local virtual environment (.venv) that `make setup` creates.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
RUN_DIR ?= runs/demo
PARAMS ?=
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: help setup demo test test-fast notebooks bench serve clean rehearse fuzz-api lint browser-deps

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

setup: $(VENV)/.installed  ## create .venv and install the package with every extra (about 3 min)

demo: setup  ## run the four notebooks on the embedded default into $(RUN_DIR) (PARAMS=params/x.yaml, SET="k=v ..." to override)
	$(PY) -m deepfake_lib.cli series --run-dir $(RUN_DIR) $(if $(PARAMS),--params $(PARAMS)) $(foreach kv,$(SET),--set $(kv))

test: setup lint browser-deps  ## lint, unit tests, papermill smoke run, nbval on the committed notebooks, notebook hygiene
	$(PY) -m pytest tests notebooks --nbval-lax --sanitize-with notebooks/nbval_sanitize.cfg -p no:cacheprovider

lint: setup  ## ruff: lint and format check (configured in pyproject.toml; `ruff format .` fixes the layout)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test-fast: setup  ## unit tests only (no training-heavy or notebook tests)
	$(PY) -m pytest tests -m "not slow"

notebooks: setup  ## re-execute the committed notebooks in place on the defaults and strip volatile metadata
	$(PY) -m deepfake_lib.cli refresh-notebooks

bench: setup  ## run every benchmark (15 to 30 min on 2 cores); figures land in benchmarks/results/ and the README table
	$(PY) benchmarks/bench_audio.py
	$(PY) benchmarks/bench_corpus.py
	$(PY) benchmarks/bench_training.py
	$(PY) benchmarks/bench_latency.py --no-compile $(if $(wildcard $(RUN_DIR)/metrics.json),--run-dir $(RUN_DIR))
	$(PY) benchmarks/bench_service.py $(if $(wildcard $(RUN_DIR)/metrics.json),--model $(RUN_DIR))
	$(PY) benchmarks/bench_stream.py $(if $(wildcard $(RUN_DIR)/metrics.json),--run-dir $(RUN_DIR))
	$(PY) benchmarks/report.py --update README.md

rehearse: setup  ## dress rehearsal of the Colab run, offline: stand-ins + the four notebooks on params/rehearsal.yaml (30+ min)
	HF_HUB_OFFLINE=1 $(PY) -m deepfake_lib.notebook.rehearsal build --out runs/rehearsal_standins
	HF_HUB_OFFLINE=1 $(PY) benchmarks/bench_rehearsal.py --skip-build

serve: setup  ## serve the demo run's model and its web page on http://127.0.0.1:8000 (MODEL=path to override)
	$(PY) -m deepfake_lib.cli serve --model $(or $(MODEL),$(RUN_DIR)) --host 127.0.0.1 --port 8000

browser-deps:  ## Debian's chromium and chromium-driver for the web page test (apt-get; skipped when present)
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then echo "chromium and chromium-driver present"; else \
	  $(if $(filter 0,$(shell id -u)),,sudo )apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo -E )apt-get install -y -q chromium chromium-driver; fi

fuzz-api: setup  ## schemathesis on a live service at 127.0.0.1:8765 with token auth on (bounded: 100 cases per operation, 10 min; MODEL=path)
	test -x $(VENV)/fuzz/bin/schemathesis || { $(PYTHON) -m venv $(VENV)/fuzz && $(VENV)/fuzz/bin/pip install --quiet "schemathesis>=4,<5"; }
	token=$$($(PY) -c "import secrets; print(secrets.token_urlsafe(24))"); \
	DEEPFAKE_TOKEN=$$token DEEPFAKE_MODEL=$(or $(MODEL),$(RUN_DIR)) $(VENV)/bin/uvicorn deepfake_lib.deploy.service:app --host 127.0.0.1 --port 8765 & \
	server=$$!; trap 'kill $$server' EXIT; \
	for i in $$(seq 180); do \
	  $(PY) -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8765/health', timeout=2)" 2>/dev/null && break; \
	  sleep 1; done; \
	timeout 600 $(VENV)/fuzz/bin/schemathesis run http://127.0.0.1:8765/openapi.json --max-examples 100 \
	  --header "Authorization: Bearer $$token" \
	  --checks not_a_server_error,status_code_conformance,response_schema_conformance --request-timeout 60

clean:  ## remove runs/, data caches and build leftovers (keeps .venv)
	rm -rf runs data build *.egg-info .pytest_cache

.PHONY: realdata realdata-deps

realdata-deps: setup  ## install the Debian packages of the real-speech corpus (Asterisk prompt sets, flite, festival, espeak-ng; apt-get)
	$(if $(filter 0,$(shell id -u)),,sudo )apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo -E )apt-get install -y -q $$($(PY) -m deepfake_lib.corpora.real_speech --apt-packages)

realdata: setup  ## build the real-speech corpus into data/real_speech (10-15 min on 2 cores; SMALL=1: the test slice)
	$(PY) -m deepfake_lib.corpora.real_speech $(if $(SMALL),--small)
