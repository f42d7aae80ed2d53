# Jindou — two commands on a fresh machine with Python 3.11+:
#   make run    install what is needed and serve Jindou on SQLite (./jindou.db)
#   make test   install what is needed and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run demo test bench install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Jindou needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

run: $(BIN)/.installed
	$(BIN)/jindou serve --host $(HOST) --port $(PORT)

demo: $(BIN)/.installed
	$(BIN)/jindou demo --host $(HOST) --port $(PORT)

test: $(BIN)/.installed
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(BIN)/.installed
	$(BIN)/jindou bench

clean:
	rm -rf $(VENV) jindou.db jindou.db-wal jindou.db-shm .pytest_cache test-artifacts
