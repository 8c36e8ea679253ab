# Two commands for a fresh machine: `make demo` and `make test`. Everything else is set up by them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch==2.13.0 is pinned: on these machines pip takes a CPU build from local disk.
TORCH_PIN := torch==2.13.0

.PHONY: setup demo test clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/activate setup.cfg pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH_PIN)
	$(BIN)/pip install --quiet -e ".[test,dicom,serve]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/autounet demo --output demo_output

# Extra pytest arguments, e.g. make test PYTEST_ARGS="--skip-browser" (see tests/conftest.py). The default is the
# complete suite: without ../shared the real-data tests fail, without Chromium the report rendering test fails.
PYTEST_ARGS ?=

test: setup
	@# Headless Chromium renders the HTML report in tests/report (Debian package, ~1 min to install).
	@export DEBIAN_FRONTEND=noninteractive; command -v chromium >/dev/null 2>&1 || apt-get install -y chromium >/dev/null 2>&1 \
		|| (apt-get update >/dev/null 2>&1 && apt-get install -y chromium >/dev/null 2>&1) \
		|| echo "*** chromium could not be installed: the report rendering test will FAIL (make test PYTEST_ARGS=--skip-browser skips it on purpose) ***" >&2
	@# dciodvfy (dicom3tools, Debian) validates written DICOM Segmentations in tests/dicom.
	@command -v dciodvfy >/dev/null 2>&1 || apt-get install -y dicom3tools >/dev/null 2>&1 || echo "dicom3tools unavailable: the dciodvfy validation test will be skipped"
	$(BIN)/python -m pytest -q --durations=15 $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) demo_output .pytest_cache
