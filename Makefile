# make demo: set up .venv and run the main job.  make test: set up and run the default tests.
# Torch is pinned to the local CPU build by constraints.txt: an unpinned torch pulls gigabytes of CUDA.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TEXTRNN_DATA_DIR ?= $(abspath ../shared/data)
# glibc gives large freed blocks back to the OS at once, so every training step page-faults its
# LSTM gradient buffers afresh; keeping them cuts ~10% of the step time (docs/benchmarks.md).
export MALLOC_MMAP_THRESHOLD_ ?= 33554432
export MALLOC_TRIM_THRESHOLD_ ?= 1073741824

.PHONY: setup demo test test-slow bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,serve,chinese,export]'
	touch $(STAMP)

demo: setup
	$(PY) recipes/demo.py

test: setup
	$(PY) -m pytest

test-slow: setup
	$(PY) -m pytest -m slow

bench: setup
	$(PY) bench/ner_speed.py

clean:
	rm -rf $(VENV) build dist *.egg-info
