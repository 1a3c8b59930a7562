# Two entry points (see README.md): `make run` and `make test`. Both create and fill the
# virtual environment from the exact versions in requirements.lock first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.lock pyproject.toml | sha256sum | cut -c1-12)

.PHONY: install run test lint stress bench lock

$(STAMP):
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "uv==0.13.9"
	# Byte-compile at install: with PYTHONDONTWRITEBYTECODE set (as on these machines) every
	# process would otherwise compile the whole stack again, ~8 s per server start-up.
	$(VENV)/bin/uv pip install -q --compile-bytecode -p $(PY) -r requirements.lock
	$(VENV)/bin/uv pip install -q -p $(PY) --no-deps -e .
	rm -f $(VENV)/.installed-*; touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/riskscreen run

test: install
	bash scripts/test

lint: install
	$(VENV)/bin/ruff check src service tests bench examples
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

# The reliability tier with every count raised (seed printed); see tests/reliability/README.md.
stress: install
	bash scripts/stress $(ARGS)

bench: install
	$(PY) -m bench $(ARGS)

# Regenerate the lock after changing dependencies in pyproject.toml.
lock:
	$(VENV)/bin/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 -o requirements.lock
