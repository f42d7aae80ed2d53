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

# A local admin credential, made once and kept out of git, so `make run` is usable at once.
.jindou-admin-token:
	@umask 077; $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(24))' > $@

run: $(BIN)/.installed .jindou-admin-token
	@echo "Jindou admin token (Authorization: Bearer ...): $${JINDOU_ADMIN_TOKEN:-$$(cat .jindou-admin-token)}"
	JINDOU_ADMIN_TOKEN="$${JINDOU_ADMIN_TOKEN:-$$(cat .jindou-admin-token)}" $(BIN)/jindou serve --host $(HOST) --port $(PORT)

demo: $(BIN)/.installed  # its own database, so a real ./jindou.db is never mixed with demo data
	JINDOU_DATABASE_URL="$${JINDOU_DATABASE_URL:-sqlite:///./jindou-demo.db}" $(BIN)/jindou demo --host $(HOST) --port $(PORT)

test: $(BIN)/.installed
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(BIN)/.installed
	$(BIN)/jindou bench

clean:
	rm -rf $(VENV) jindou.db* jindou-demo.db* .pytest_cache test-artifacts
