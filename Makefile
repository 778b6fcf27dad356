# Shoal. `make demo` on a fresh machine installs, builds and runs a dev cluster; `make test` runs every test.
SHELL := /bin/bash
DEMO_DIR ?= $(CURDIR)/.shoal-demo
API_PORT ?= 7070
ETCD_PORT ?= 23790
SHOAL := node dist/cmd/shoal/main.js --config $(DEMO_DIR)/config.yaml

.PHONY: all deps build typecheck layers gen-types test demo down bench chaos clean

all: build

deps:
	@hack/install-deps.sh

node_modules: package-lock.json
	@hack/npm-ci.sh
	@touch node_modules

build: node_modules
	@npm run -s build

typecheck: node_modules
	@npx tsc -p tsconfig.test.json
	@node hack/gen-types.mjs --check

# The package layering and no-cycle rules in .dependency-cruiser.cjs.
layers: node_modules
	@npx depcruise --config .dependency-cruiser.cjs pkg cmd

gen-types: node_modules
	@node hack/gen-types.mjs

test: build typecheck layers
	@npx jest

# Benchmarks (not part of `make test`): every scenario, or one with `make bench SCENARIO=api`;
# options in BENCH_ARGS (e.g. BENCH_ARGS="--agents 5000 --tasks 50000"); results in test/bench/results/.
bench: build
	@npx tsc -p tsconfig.bench.json
	@node dist-bench/test/bench/run.js $(SCENARIO) $(BENCH_ARGS)

# Fault suite (not part of `make test`, which runs a ~1 min smoke of it): CHAOS_SECONDS (180) of
# seeded random faults during rolling upgrades, then the invariants (docs/operations.md). Replay a
# run with CHAOS_SEED=<its seed>; CHAOS_ARGS e.g. "--keep" (keep component logs) or "--smoke".
# Results in test/chaos/results/latest.{json,md}; exits non-zero when an invariant failed.
CHAOS_SECONDS ?= 180
chaos: build
	@npx tsc -p test/chaos/tsconfig.json
	@CHAOS_SECONDS=$(CHAOS_SECONDS) node dist-bench/test/chaos/run.js $(if $(CHAOS_SEED),--seed $(CHAOS_SEED)) $(CHAOS_ARGS)

# DEMO_DIR, API_PORT and ETCD_PORT may be set (make demo DEMO_DIR=/tmp/d); `make down` stops the
# demo in DEMO_DIR, or without DEMO_DIR the last one `make demo` started (docs/operations.md).
DEMO_DEFAULT_DIR := $(CURDIR)/.shoal-demo

demo: deps build
	@hack/start-dockerd.sh && hack/build-images.sh || echo "make demo: no Docker (see above): container tasks cannot run; process and hollow tasks still do" >&2
	@hack/demo.sh "$(DEMO_DIR)" "$(API_PORT)" "$(ETCD_PORT)" "$(DEMO_DEFAULT_DIR)"

down:
	@hack/down.sh "$(DEMO_DIR)" $(if $(filter file,$(origin DEMO_DIR)),default)

clean:
	rm -rf dist coverage
