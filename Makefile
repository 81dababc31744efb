# Every target builds .venv from pyproject.toml when it is missing or older than pyproject.toml,
# so any target works as the first command on a fresh machine.
.DEFAULT_GOAL := help
PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
SOURCES := openapi mockserver contracts tests bench
BASE_URL  ?=
API_KEY   ?=
B_API_KEY ?=
ARGS      ?=

# Keys reach the suite and the differential run through the environment, never on a command line that
# make prints: `make contract API_KEY="k1 k2"` echoes the command without them. Several keys: space-separated.
ifneq ($(strip $(API_KEY)),)
contract diff: export MORPHEUS_API_KEYS := $(API_KEY)
endif
ifneq ($(strip $(B_API_KEY)),)
diff: export MORPHEUS_B_API_KEYS := $(B_API_KEY)
endif

# Compiled modules are cached under .venv/pycache, never beside the sources. Where PYTHONDONTWRITEBYTECODE
# is set (as on the CI machine) nothing was cached at all: every Python process the tests start compiled
# its imports again, and pytest rewrote the asserts of hypothesis, schemathesis and the kit (pytest11
# plugins) again, about 4 s of CPU per suite run. A PYTHONPYCACHEPREFIX of your own is kept.
export PYTHONPYCACHEPREFIX ?= $(abspath $(VENV))/pycache
export PYTHONDONTWRITEBYTECODE :=

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

.PHONY: install  ## Create .venv and install the project with its dev extras
install: $(STAMP)

.PHONY: redis  ## Install Debian's redis-server when it is missing (the Redis store tests need a real one)
redis:
	@command -v redis-server >/dev/null 2>&1 || { echo "installing redis-server (Debian package)"; \
	  (apt-get update -qq && apt-get install -y -qq redis-server >/dev/null) \
	  || echo "warning: could not install redis-server: the Redis tests will be skipped"; }

.PHONY: browser  ## Install Debian's chromium and chromium-driver when missing (the page tests drive a real browser)
browser:
	@{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || { echo "installing chromium and chromium-driver (Debian packages)"; \
	  (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) \
	  || echo "warning: could not install chromium: the browser tests will be skipped"; }

.PHONY: test  ## Run the whole test suite (two cores) with branch coverage of openapi/, mockserver/ and contracts/ (100%), then the mutants proof
test: $(STAMP) redis browser
	$(BIN)/coverage erase
	@# coverage itself measures every Python process the tests start ([tool.coverage.run] patch): the
	@# pytest-xdist workers, the served mocks and the contract suite run as users run it (python -m contracts).
	@# The pytest plugin's own tests run here too: coverage starts before pytest (and, through the patch, before
	@# each worker's pytest), so the entry-point plugins' import is measured.
	$(BIN)/coverage run -m pytest -n 2 --dist loadfile --ignore=tests/gallery/test_mutants.py $(ARGS)
	$(BIN)/coverage combine --quiet
	$(BIN)/coverage report --include='openapi/*,mockserver/*'
	@# contracts/ (shipped code too) is measured in the suite's own processes, held at 100% like the others.
	$(BIN)/coverage report --include='contracts/*' --fail-under=100
	@# The gallery proof runs alone and unmeasured: its race variants need the machine's cores to themselves.
	$(BIN)/pytest tests/gallery/test_mutants.py $(ARGS)

.PHONY: check  ## Verify formatting, lint and types (changes nothing)
check: $(STAMP)
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/mypy

.PHONY: fix  ## Format and auto-fix lint findings (changes files)
fix: $(STAMP)
	$(BIN)/ruff format $(SOURCES)
	$(BIN)/ruff check --fix $(SOURCES)

DEMO_KEY ?= sk-Demo01.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef

.PHONY: mock  ## Start the mock gateway on 127.0.0.1:8000 with a demo key (ARGS=... for more flags)
mock: export MORPHEUS_MOCK_KEY := $(DEMO_KEY)
mock: $(STAMP)
	@echo "demo API key (the mock's own, public): $(DEMO_KEY)"
	$(BIN)/python -m mockserver --admin $(ARGS)

.PHONY: contract  ## Run the contract suite (BASE_URL=... API_KEY="k1 k2"; default target: the in-process mock)
contract: $(STAMP)
	$(BIN)/python -m contracts $(if $(BASE_URL),--base-url $(BASE_URL)) $(ARGS)

.PHONY: mutants  ## The suite against every gateway of tests/gallery, at three settings (ARGS=--help); prints the table
mutants: $(STAMP)
	$(BIN)/python -m tests.gallery.mutants $(ARGS)

A ?= mock
B ?= mock
.PHONY: diff  ## One seeded request sequence to A and B (URLs, or 'mock'; API_KEY=, B_API_KEY=) compared
diff: $(STAMP)
	$(BIN)/python -m contracts.diff --a $(A) --b $(B) $(ARGS)

.PHONY: bench  ## Benchmark the mock against Prism and bare Starlette; writes bench/results.md (ARGS=--help)
bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

.PHONY: clean  ## Remove the virtualenv, caches and reports
clean:
	rm -rf $(VENV) .coverage .coverage.* .hypothesis .schemathesis .mypy_cache .ruff_cache reports

.PHONY: help  ## Show this help
help:
	@grep -E '^\.PHONY: [a-z-]+ +## ' $(MAKEFILE_LIST) | sed -E 's/^\.PHONY: ([a-z-]+) +## (.*)/\1\t\2/' | awk -F'\t' '{printf "  make %-10s %s\n", $$1, $$2}'
