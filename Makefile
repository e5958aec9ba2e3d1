# The two commands of the README: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
PY := .venv/bin/python
MEMBERS ?= 3

.PHONY: deps demo test lint unit crds down image lock

deps:
	hack/ensure-deps

## demo: hub + members on this machine, the CRDs, example offers and jobs, the operator.
demo: deps
	hack/demo

## test: lint, then every test (unit, integration, e2e) against the real test bed.
test: deps lint
	hack/run-tests

lint:
	.venv/bin/ruff check operator tests bench hack/testbed hack/render-dashboards hack/run-chart-pods
	.venv/bin/mypy
	.venv/bin/lint-imports

unit: deps
	.venv/bin/pytest tests/unit -q

crds: deps
	$(PY) -m interconnect crds

down:
	hack/testbed down

## image: the operator's OCI image without a Docker engine (build/image/; needs root). `make test` builds its
## own of the working tree (hack/run-chart-pods image, build/chart-pods/; rebuilt only when its inputs change).
image:
	hack/build-image build

## lock: regenerate image/requirements.lock (hashes, for the image's Python) and image/build-tools.lock.
lock:
	hack/build-image lock
