# The two set-up commands of the README: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hotmem-installed
SOURCES := pyproject.toml setup.py hotmem/_core.pyx $(wildcard hotmem/_cy/*.pxi)

.PHONY: demo test test-python bench validate validate-ppc64le clean

$(STAMP): $(SOURCES)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,plot,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m hotmem

test: $(STAMP)
	@# Debian's libfuse3 for the FUSE-mount tests (root with apt only; they skip, saying why, without it)
	-$(PY) -c 'from hotmem.mount import fuse_unavailable as u, install_fuse as i; u() and i()'
	$(PY) -m pytest -q -p no:cacheprovider

test-python: $(STAMP)
	HOTMEM_BACKEND=python $(PY) -m pytest -q -p no:cacheprovider

# every shipped scenario on Debian's real 6.1 and 6.12 kernels in QEMU (installs QEMU, fetches the
# kernels: 6.12 through the project's own trixie apt state in the cache); scenarios/known-differences/
# holds the ones the model is known not to predict
validate: $(STAMP)
	fail=0; for v in 6.1 6.12; do for s in scenarios/*.toml; do \
		$(PY) -m hotmem validate --install --kernel-version $$v $$s || fail=1; done; done; \
	exit $$fail

# the ppc64le DLPAR scenarios on Debian's ppc64el kernels under QEMU pseries (TCG): 6.1 (64K
# pages) and 6.12 (-64k and 4K), fetched through the project's own multi-arch apt state
validate-ppc64le: $(STAMP)
	# p2 on 4K pages: the guest's own kernel allocates in the DLPAR-onlined ZONE_NORMAL LMBs, so
	# its offline is refused (EBUSY) by the guest's workload; docs/validate-ppc64le.md
	fail=0; for vp in 6.1:64K 6.12:64K 6.12:4K; do for s in scenarios/ppc64le/*.toml; do \
		case "$$vp:$$s" in *:4K:*/p2_*) echo "skip $$s on $$vp (docs/validate-ppc64le.md)"; continue;; esac; \
		$(PY) -m hotmem validate --arch powerpc64 --kernel-version $${vp%:*} \
			--page-size $${vp#*:} $$s || fail=1; done; done; \
	exit $$fail

# groups 1-4 of benchmarks/ (HOTMEM_BENCH_SCALE=128G,1T,... picks the scale sizes), a profile
# of the same workloads, and the summary of this run in benchmarks/README.md
bench: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider benchmarks --benchmark-enable \
		--benchmark-json=benchmarks/last-run.json
	$(PY) benchmarks/profile_model.py -o benchmarks/last-profile.txt > /dev/null
	$(PY) benchmarks/summary.py benchmarks/last-run.json --profile benchmarks/last-profile.txt \
		--readme benchmarks/README.md

clean:
	rm -rf $(VENV) build hotmem/_core.c hotmem/_core*.so *.egg-info
