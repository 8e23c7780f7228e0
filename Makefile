# The two commands a newcomer runs (see README.md). Needs Python 3.11+, git and make.
# `make lint` runs the linters CI runs before the tests (ruff, then mypy on catalog/).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow test-s3 lint sample clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# (setuptools' notice that an editable install can be shadowed by folders of the checkout is expected here)
	PYTHONWARNINGS='ignore:Editable installation:UserWarning' $(BIN)/python -m pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/catalog --lake data/lake demo

# Two workers, a test file each at a time (a file's tests share module fixtures: Spark).
# The slowest files (real MLflow and GTO, Spark, Chromium, the benchmarks' own checks, the
# torture test) run in `make test-slow`, which CI runs too: each target stays under 30 minutes.
SLOW_TESTS ?= tests/test_mlflow_store.py tests/test_import_mlflow.py tests/test_import_gto.py tests/test_snapshot.py \
	tests/test_site_sql.py tests/test_site_browser.py tests/test_benchmarks.py tests/test_torture.py
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile $(SLOW_TESTS:%=--ignore=%)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile $(SLOW_TESTS)

# The lake tests again with every lake in a bucket of a real S3-compatible server on
# loopback (SeaweedFS, from the test extra); tests that inspect files on local disk skip.
S3_TESTS ?= tests/test_registry.py tests/test_rollback.py tests/test_governance.py tests/test_consistency.py \
	tests/test_concurrency.py tests/test_integrity.py tests/test_cli.py tests/test_bulk.py tests/test_conditions.py \
	tests/test_cli_ux.py tests/test_inputs.py tests/test_doctor.py tests/test_site.py tests/test_events.py
test-s3: $(STAMP)
	CATALOG_TEST_BACKEND=s3 $(BIN)/python -m pytest -q -n 2 --dist loadfile $(S3_TESTS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

sample: $(STAMP)
	$(BIN)/python scripts/make_sample_lake.py data/lake

clean:
	rm -rf $(VENV) site .catalog-build .pytest_cache
