# mbv1: the two set-up commands (README): `make demo` and `make test`.
# Both create .venv when it is missing or stale, install exactly requirements.lock and mbv1, and
# fetch the pinned real assets into ~/.cache/mbv1 (once). A complete environment is reused.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mbv1-installed
ASSETS_STAMP := $(VENV)/.mbv1-assets
DEMO_VIDEO ?=
PYTEST_ARGS ?=
LOCK_ARGS ?=

.PHONY: setup lock assets demo test lint bench clean-venv

# The environment is the lock: every package at its locked version and hash (requirements.lock,
# resolved by `make lock`); a changed lock or pyproject reinstalls, and packages that are not in
# the lock are removed, so the suite runs on exactly what CI tested.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r requirements.lock
	$(BIN)/uv pip sync -q --python $(BIN)/python requirements.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# Re-resolve the lock for this machine's Python (keeps current pins unless LOCK_ARGS=--upgrade,
# or LOCK_ARGS='--upgrade-package NAME'); then `make test`, and commit both files together.
lock: setup
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra tflite --generate-hashes --python $(BIN)/python \
		--custom-compile-command "make lock" -o requirements.lock $(LOCK_ARGS)

setup: $(STAMP)

$(ASSETS_STAMP): $(STAMP) mbv1/assets/pinned.py
	$(BIN)/mbv1 weights pull
	@touch $(ASSETS_STAMP)

assets: $(ASSETS_STAMP)

demo: assets
	$(BIN)/mbv1 demo $(DEMO_VIDEO)

# tools/run_tests.sh: pytest on two xdist workers; only a crashed worker process (a native crash,
# not a test failure) makes it run the suite again, up to three attempts (the script says why).
test: assets
	bash tools/run_tests.sh $(BIN)/python $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check mbv1 tests benchmarks

bench: assets
	$(BIN)/python benchmarks/detect_video.py
	$(BIN)/python benchmarks/face_students.py

clean-venv:
	rm -rf $(VENV)
