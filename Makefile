# The README's two commands: `make demo` (set up + main job) and `make test` (the test suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.edgekit-installed

.PHONY: demo test lint pytest bench notebooks clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,train,quant,fpga,rtl]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/edgekit compile jet_tagger

test: lint pytest

lint: $(STAMP)
	$(BIN)/ruff check edgekit models tests bench hil
	$(BIN)/ruff format --check edgekit models tests bench hil
	$(BIN)/mypy
	$(BIN)/mkdocs build --strict --quiet --site-dir build/docs-site

pytest: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadfile --durations=25

bench: $(STAMP)
	$(BIN)/python bench/bench_onnxruntime.py
	$(BIN)/python bench/bench_compression.py
	$(BIN)/python bench/bench_hls4ml.py
	$(BIN)/python bench/bench_rtl.py
	$(BIN)/python bench/bench_validate.py
	$(BIN)/python bench/bench_sweep.py
	$(BIN)/python bench/bench_training.py
	$(BIN)/python bench/bench_standardize.py
	$(BIN)/python bench/bench_learned.py

# Run the notebooks at full size and refresh the figures the docs show (docs/figures/).
notebooks: $(STAMP)
	for nb in notebooks/*.ipynb; do \
		EDGEKIT_NOTEBOOK_FIGURES=$(CURDIR)/docs/figures EDGEKIT_NOTEBOOK_OUT=$(CURDIR)/build/notebooks $(BIN)/jupyter-execute --timeout=-1 "$$nb" || exit 1; \
	done

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
