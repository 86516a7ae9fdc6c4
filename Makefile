# xrec: two commands do all the set-up (see README.md).
#   make all    install, execute every paper notebook at SCALE (default smoke), build the site
#   make test   install the test extras (and headless Chromium for the site test), run the tests,
#               then re-execute the golden smoke notebooks and diff their outputs (nbval)
#   make test-notebooks   only the golden notebooks
#   make bench  rerun every benchmark in sequence on a quiet machine (benchmarks/run_all.sh)
PYTHON ?= python3
SCALE ?= smoke
SHARED_DATA := $(abspath ../shared/data)
export XREC_DATA ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)

.PHONY: all install install-test test test-notebooks book bench clean

all: install
	$(PYTHON) -m xrec_core all --scale $(SCALE)

install:
	$(PYTHON) -m pip install -q -e ".[test]"

install-test: install
	bash scripts/install_chromium.sh

# A change that moves a smoke number fails here until the golden copy is refreshed on purpose
# (tests/golden_notebooks/refresh.py), so that the diff of the notebook's outputs is reviewed.
NBVAL_GOLDEN = $(PYTHON) -m pytest -q -p no:cacheprovider --nbval --nbval-current-env \
	--nbval-sanitize-with tests/golden_notebooks/sanitize.cfg tests/golden_notebooks

test: install-test
	$(PYTHON) -m pytest -q
	$(NBVAL_GOLDEN)

test-notebooks: install
	$(NBVAL_GOLDEN)

book:
	$(PYTHON) -m xrec_core book --scale $(SCALE)

bench:
	PYTHON=$(PYTHON) bash benchmarks/run_all.sh

clean:
	rm -rf _build outputs
