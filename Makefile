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

test: setup
	@# Headless Chromium renders the HTML report in tests/report (Debian package, ~1 min); never fails make test.
	@export DEBIAN_FRONTEND=noninteractive; command -v chromium >/dev/null 2>&1 || (apt-get install -y chromium >/dev/null 2>&1 || (apt-get update >/dev/null 2>&1 && apt-get install -y chromium >/dev/null 2>&1)) || echo "chromium unavailable: the report rendering test will be skipped"
	@# dciodvfy (dicom3tools, Debian) validates written DICOM Segmentations in tests/dicom; never fails make test.
	@command -v dciodvfy >/dev/null 2>&1 || apt-get install -y dicom3tools >/dev/null 2>&1 || echo "dicom3tools unavailable: the dciodvfy validation test will be skipped"
	$(BIN)/python -m pytest -q --durations=15

clean:
	rm -rf $(VENV) demo_output .pytest_cache
