# The two set-up commands of the README: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hotmem-installed
SOURCES := pyproject.toml setup.py hotmem/_core.pyx $(wildcard hotmem/_cy/*.pxi)

.PHONY: demo test test-python bench clean

$(STAMP): $(SOURCES)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,plot,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m hotmem

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

test-python: $(STAMP)
	HOTMEM_BACKEND=python $(PY) -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(PY) -m pytest -q benchmarks --benchmark-enable --benchmark-json=benchmarks/last-run.json

clean:
	rm -rf $(VENV) build hotmem/_core.c hotmem/_core*.so *.egg-info
