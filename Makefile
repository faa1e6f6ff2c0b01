# TDS — make demo | make test | make bench | make lint
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# SecretFlow's spu, the baseline of bench/psi.py, in an environment of its own: its wheel pins
# NumPy < 2 and jax <= 0.4.34, which the project's own environment does not share
SPU_VENV  := .venv-spu
SPU_STAMP := $(SPU_VENV)/.installed

.PHONY: demo test bench bench-psi bench-sandbox bench-ledger bench-he bench-console bench-script lint i18n clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

$(SPU_STAMP): spu-requirements.txt
	@test -x $(SPU_VENV)/bin/python || $(PYTHON) -m venv $(SPU_VENV)
	$(SPU_VENV)/bin/python -m pip install -q -r spu-requirements.txt
	@touch $(SPU_STAMP)

## demo: a space, a bank and a telecom operator on loopback; PSI jobs; the ledger
demo: $(STAMP)
	$(BIN)/tds demo

## test: the whole suite (starts a throwaway PostgreSQL cluster itself)
test: $(STAMP) $(SPU_STAMP)
	rm -f .coverage .coverage.*
	$(BIN)/python -m pytest --cov --cov-report=term:skip-covered $(PYTEST_ARGS)

## bench: every benchmark under bench/, each printing its figures and its baseline
bench: bench-psi bench-sandbox bench-ledger bench-he bench-console bench-script

## bench-psi: the PSI jobs through two connectors and the space vs openmined-psi in one process
## and SecretFlow's ECDH-FourQ and RR22 in two
bench-psi: $(STAMP) $(SPU_STAMP)
	$(BIN)/python bench/psi.py $(PSI_ARGS)

## bench-script: a pandas group-by over 1M rows as an approved rerun vs python directly
bench-script: $(STAMP)
	$(BIN)/python bench/script.py

## bench-ledger: appends/s over HTTP (SQLite, PostgreSQL), proofs at 1M leaves, audit verify
bench-ledger: $(STAMP)
	$(BIN)/python bench/ledger.py $(LEDGER_ARGS)

## bench-he: he.aggregate vs NumPy, he.score vs bare TenSEAL
bench-he: $(STAMP)
	$(BIN)/python bench/he.py $(HE_ARGS)

## bench-console: the web console's pages over a log of 1 000 000 records
bench-console: $(STAMP)
	$(BIN)/python bench/console.py $(CONSOLE_ARGS)

## bench-sandbox: start-up per sandbox backend, and PSI's sandboxed work per backend
bench-sandbox: $(STAMP)
	$(BIN)/python bench/sandbox.py $(SANDBOX_ARGS)

## i18n: extract the consoles' strings, merge them into the Chinese catalogs, compile them
I18N := space/console connectors/console
i18n: $(STAMP)
	for dir in $(I18N); do \
	  (cd $$dir && $(CURDIR)/$(BIN)/pybabel extract -F babel.cfg -k _l -o translations/messages.pot \
	    --no-location --omit-header --sort-output . && \
	  if [ -f translations/zh/LC_MESSAGES/messages.po ]; then \
	    $(CURDIR)/$(BIN)/pybabel update -i translations/messages.pot -d translations -l zh --no-fuzzy-matching -w 100; \
	  else $(CURDIR)/$(BIN)/pybabel init -i translations/messages.pot -d translations -l zh -w 100; fi && \
	  $(CURDIR)/$(BIN)/pybabel compile -d translations --statistics) || exit 1; \
	done

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(SPU_VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* test-output
