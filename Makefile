# mbv1: the two set-up commands (README): `make demo` and `make test`.
# Both create .venv when it is missing or stale, install mbv1 with its pinned torch pair, and
# fetch the pinned real assets into ~/.cache/mbv1 (once). A complete environment is reused.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mbv1-installed
ASSETS_STAMP := $(VENV)/.mbv1-assets
DEMO_VIDEO ?=
PYTEST_ARGS ?=

.PHONY: setup assets demo test lint bench clean-venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch and torchvision first, as a pinned pair (see docs/install.md: nothing may pull another torch)
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

$(ASSETS_STAMP): $(STAMP) mbv1/assets.py
	$(BIN)/mbv1 weights pull
	@touch $(ASSETS_STAMP)

assets: $(ASSETS_STAMP)

demo: assets
	$(BIN)/mbv1 demo $(DEMO_VIDEO)

test: assets
	MBV1_REQUIRE_ASSETS=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check mbv1 tests benchmarks

bench: assets
	$(BIN)/python benchmarks/detect_video.py
	$(BIN)/python benchmarks/face_students.py

clean-venv:
	rm -rf $(VENV)
