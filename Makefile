# casemesh developer entry points. Every target sets up what it needs on a fresh
# machine: a virtualenv in .venv (pinned by constraints.txt) and, for the checks,
# buf from the npm registry (pinned in package.json).

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BUF    := node_modules/.bin/buf
ARGS   ?=
PYTEST_ARGS ?=

.PHONY: run test protos lint check-protos clean

## make run ARGS="--duration 30": start the URL-shortener mesh and benchmark it against its SLOs
run: $(STAMP)
	$(VENV)/bin/casemesh run url-shortener $(ARGS)

## make test: buf lint, stub staleness check, then the default (fast) test suite
test: $(STAMP) $(BUF)
	$(BUF) lint
	$(PY) tools/gen_protos.py --check
	$(PY) -m pytest $(PYTEST_ARGS)

## make protos: regenerate gen/python from protos/
protos: $(STAMP)
	$(PY) tools/gen_protos.py

$(STAMP): pyproject.toml setup.py constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $@

# buf's version is pinned exactly in package.json. No lock file: npm here writes one without the
# other platforms' optional binaries, which `npm ci` then rejects.
$(BUF): package.json
	npm install --silent --no-package-lock --no-audit --no-fund
	touch $@

clean:
	rm -rf $(VENV) node_modules build *.egg-info
