# Two entry points for humans: `make demo` and `make test`. Everything else is set up on demand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo serve dev test soak lint bench validate-module clean

setup: $(STAMP)

# Re-install only when a dependency declaration changes, so re-running is fast. Two distributions, both
# editable: the runtime (runtime/) and the toolchain, which depends on it.
$(STAMP): pyproject.toml runtime/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ./runtime -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/protokit doctor
	$(BIN)/protokit lint
	$(BIN)/protokit gen
	@echo
	@echo "Generated tree (generated/):"
	@find generated -name '*.py*' -not -path '*/__pycache__/*' | sort | sed 's/^/  /'
	@echo
	PYTHONPATH=generated:examples/userservice $(BIN)/python examples/userservice/demo.py

# The example UserService: plaintext on 127.0.0.1, port from PORT (default 50051), reflection on.
serve: setup
	PYTHONPATH=generated:examples/userservice $(BIN)/python -m userservice

# The example UserService under `protokit dev`: edit protos/ or examples/userservice/ and it follows.
dev: setup
	$(BIN)/protokit dev --port $${PORT:-50051}

test: setup lint
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

# The example UserService as a real server under mixed load for SOAK_SECONDS (default 45); figures printed,
# and written as JSON to the file SOAK_REPORT names. Under 90 s.
soak: setup
	$(BIN)/python -m pytest -m soak -v -s tests/test_soak.py

# protokit's own code: ruff and mypy --strict (part of `make test`, so CI enforces them).
lint: setup
	$(BIN)/ruff check src runtime tests bench
	$(BIN)/ruff format --check src runtime tests bench
	$(BIN)/mypy

# With PYTHONDONTWRITEBYTECODE set, an editable install never caches protokit's bytecode: compile it
# once, so runs are timed as an installed protokit runs.
bench: setup
	$(BIN)/python -m compileall -q src runtime/src
	$(BIN)/python bench/run.py

# buf/validate/validate_pb2.py, which protokit-runtime ships, regenerated from the installed protovalidate.
validate-module: setup
	$(BIN)/python -c 'import pathlib; from protokit import cache, toolchain; \
	pathlib.Path("runtime/src/buf/validate/validate_pb2.py").write_bytes(toolchain.validate_module(cache.cache_dir()))'

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
