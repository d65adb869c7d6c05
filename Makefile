# MedSeg: `make run` starts a server with a sample cohort, `make test` runs the tests.
# Both create .venv with pip when it is missing and are safe to run again.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.medseg-installed
STUDIES ?= data/studies
HOST   ?= 127.0.0.1
PORT   ?= 8000
CASES  ?= 3

.PHONY: run test lint bench cohort venv system-deps clean

venv: $(STAMP)

# torch is installed first and pinned exactly: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): MedSegServer/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e 'MedSegServer[dev]'
	@touch $(STAMP)

# Debian packages some features need (Orthanc for DICOMweb tests, GL libraries for offscreen
# rendering). Needs root or sudo; skipped with a warning otherwise.
system-deps:
	@bash scripts/install-system-deps.sh

cohort: $(STAMP)
	$(BIN)/medseg prepare-cohort --out $(STUDIES) --cases $(CASES) --seed 0

run: $(STAMP) cohort
	$(BIN)/medseg serve --studies $(STUDIES) --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) system-deps lint
	$(BIN)/python -m pytest Testing -q -p no:cacheprovider

bench: $(STAMP) system-deps
	$(BIN)/medseg bench all --out bench-results

clean:
	rm -rf $(VENV) data bench-results
