# make lab | make test | make lint | make bench -- each creates .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: lab test lint unit nbval bench bench-accuracy export clean

# Re-install when pyproject.toml changes; one stamp per set of extras.
$(VENV)/.installed-%: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else \
	  "d2lcnn needs Python 3.10+; run make PYTHON=python3.11 (or newer)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[$(subst +,$(comma),$*)]'
	@touch $@

comma := ,

lab: $(VENV)/.installed-lab+test
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/jupyter lab notebooks/

lint: $(VENV)/.installed-test
	$(BIN)/ruff check d2lcnn tests tools benchmarks

unit: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q tests --doctest-modules d2lcnn

# conftest.py selects the smoke profile; PATH makes nbval's kernel this venv's Python
nbval: $(VENV)/.installed-test
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q --nbval notebooks/

test: lint unit nbval

export: $(VENV)/.installed-test
	$(BIN)/python tools/export.py

bench: $(VENV)/.installed-bench+test
	$(BIN)/python benchmarks/run.py

bench-accuracy: $(VENV)/.installed-bench+test
	$(BIN)/python benchmarks/run.py --accuracy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
