# One name for each habit. `make run` sets up and starts the studio; `make test` sets up and runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FRONTEND_SRC := $(shell find frontend/src frontend/index.html frontend/vite.config.ts frontend/tsconfig.json -type f 2>/dev/null)

.PHONY: run install install-test frontend client check-client lint fmt typecheck test test-py test-frontend bench faults clean

run: install frontend
	$(BIN)/studio up

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[worker]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install -q -e '.[worker,test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

frontend/node_modules/.package-lock.json: frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error

frontend/dist/index.html: frontend/node_modules/.package-lock.json $(FRONTEND_SRC)
	cd frontend && npm run build

frontend: frontend/dist/index.html

# The typed client: OpenAPI document from the backend, TypeScript types from it.
client: install frontend/node_modules/.package-lock.json
	$(BIN)/python -m backend.openapi build/openapi.json
	cd frontend && npm run gen:api

# Fails when the checked-in client types differ from what the backend's API would generate.
check-client: client
	git diff --exit-code -- frontend/src/api/schema.d.ts

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install-test
	$(BIN)/mypy

test-frontend: frontend
	cd frontend && npm test

test-py: install-test frontend
	./scripts/services.sh
	./scripts/ensure-test-tools.sh
	STUDIO_REQUIRE_BROWSER=1 $(BIN)/python -m pytest

test: lint typecheck check-client test-frontend test-py

faults: install-test
	./scripts/services.sh
	$(BIN)/python -m pytest tests/test_faults.py -v

bench: install-test
	./scripts/services.sh
	$(BIN)/python benchmarks/dispatch.py
	$(BIN)/python benchmarks/engine_overhead.py
	$(BIN)/python benchmarks/loader.py
	$(BIN)/python benchmarks/coco_eval.py
	$(BIN)/python benchmarks/seg_metrics.py
	$(BIN)/python benchmarks/image_paging.py
	$(BIN)/python benchmarks/lanes.py
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/hmean.py
	$(BIN)/python benchmarks/cam.py
	@$(BIN)/python -c "import labelme" 2>/dev/null && $(BIN)/python benchmarks/convert.py \
	  || echo "benchmarks/convert.py compares with labelme: pip install labelme into $(VENV) to run it"

clean:
	rm -rf $(VENV) frontend/node_modules frontend/dist build
