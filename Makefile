# casemesh developer entry points. Every target sets up what it needs on a fresh
# machine: a virtualenv in .venv (pinned by constraints.txt) and, for the checks,
# the Node tools from the npm registry (buf, protoc-gen-es, Connect, tsc; pinned in package.json).

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BUF    := node_modules/.bin/buf
NODE_STAMP := node_modules/.installed
NODE_IDGEN := build/node/idgen/server.js
ARGS   ?=
PYTEST_ARGS ?=

.PHONY: run test protos gen-ts lint check-protos clean node-idgen

## make run ARGS="--duration 30": start the URL-shortener mesh and benchmark it against its SLOs
## (the same as ./casemesh run url-shortener, except that make exits 2 whenever casemesh exits non-zero:
## the README's command is ./casemesh, whose exit code is casemesh's own)
run: $(STAMP)
	$(VENV)/bin/casemesh run url-shortener $(ARGS)

## make test: buf lint, format and breaking checks, stub staleness check, then the default (fast) test suite
## (which includes tests/interop: TypeScript client, k6, grpcurl against real services on 127.0.0.1)
test: $(STAMP) $(NODE_STAMP) $(NODE_IDGEN)
	$(BUF) lint
	$(BUF) format --diff --exit-code
	BUF=$(BUF) bash tools/buf-breaking.sh  # against main: which commit, and why, is explained in the script
	$(PY) tools/gen_protos.py --check
	$(PY) -m pytest $(PYTEST_ARGS)

## make protos: regenerate gen/python from protos/
protos: $(STAMP)
	$(PY) tools/gen_protos.py

$(STAMP): pyproject.toml setup.py constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $@

# Node tool versions are pinned exactly in package.json. No lock file: npm here writes one without the
# other platforms' optional binaries, which `npm ci` then rejects.
# The stamp is newer than package.json once its devDependencies are installed: editing package.json
# (a new tool, a new pin) re-runs the install. --include=dev: installed even under NODE_ENV=production.
$(NODE_STAMP): package.json
	npm install --silent --no-package-lock --no-audit --no-fund --include=dev
	touch $@

$(BUF): $(NODE_STAMP)

## make node-idgen: compile the Node implementation of idgen (services/idgen/node/src/*.ts, docs/polyglot.md) into
## build/node/idgen/ with the project's tsc; `casemesh run --set idgen.impl=node` runs this target itself when needed
node-idgen: $(NODE_IDGEN)

$(NODE_IDGEN): $(NODE_STAMP) services/idgen/node/tsconfig.json $(wildcard services/idgen/node/src/*.ts)
	node_modules/.bin/tsc -p services/idgen/node
	touch $@

## make gen-ts: TypeScript client code of protos/ in gen/ts (buf.gen.yaml; not committed: docs/clients.md)
gen-ts: $(NODE_STAMP)
	$(BUF) generate

## make dashboards: regenerate the Grafana dashboards (dashboards/json/) from their code (dashboards/casemesh_dashboards/)
.PHONY: dashboards
dashboards: $(STAMP)
	$(PY) dashboards/generate.py

clean:
	rm -rf $(VENV) node_modules build gen/ts *.egg-info
