# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: demo test lint format install lock clean chromium screenshots translations stack stack-stop test-stack

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/gateway demo

test: $(STAMP) chromium
	$(BIN)/python -m pytest

# The production shape without Docker (docker/stack.py, docs/operations.md "The stack"): PostgreSQL,
# Redis, the funds, two instances, a worker and nginx on loopback, state in var/stack.
stack: $(STAMP)
	$(BIN)/python docker/stack.py up

stack-stop:
	$(BIN)/python docker/stack.py down

# The failures under load through the proxy (tests/stack); `make test` skips them, CI runs them once.
test-stack: $(STAMP)
	$(BIN)/python -m pytest -m stack tests/stack -q -s

# The browser tests (tests/browser) drive Debian's chromium; Playwright's own browsers are not used.
chromium:
	@test -x /usr/bin/chromium || { apt-get update && apt-get install -y --no-install-recommends chromium; }

# Re-take the portal screenshots shown in the README (docs/screenshots/).
screenshots: $(STAMP) chromium
	GATEWAY_SCREENSHOTS=1 $(BIN)/python -m pytest tests/browser -q

# Portal messages: extract, merge into the fr/nl/en catalogs, compile (README "Translations").
translations: $(STAMP)
	$(BIN)/pybabel extract -F gateway/portal/babel.cfg -k N_ --no-location --sort-output -o gateway/portal/locale/messages.pot .
	$(BIN)/pybabel update --width 100 -i gateway/portal/locale/messages.pot -d gateway/portal/locale
	$(BIN)/pybabel compile -d gateway/portal/locale --statistics

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports  # the layer contracts in pyproject.toml (docs/architecture.md 3b)

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Re-pin every dependency after changing pyproject.toml (run in a fresh venv to drop strays).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet -e '.[dev]'
	.venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
