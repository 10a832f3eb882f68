# The platform's everyday commands; each creates .venv and installs the project as needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo dev test bench clean

$(BIN)/bodyfriend: setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,test]'
	touch $@

demo: $(BIN)/bodyfriend
	$(BIN)/bodyfriend demo

dev: $(BIN)/bodyfriend
	$(BIN)/bodyfriend dev

test: $(BIN)/bodyfriend
	$(BIN)/python -m pytest bodyfriend_assets_tests

# Not part of the tests: extraction throughput and memory against a psql COPY pipe (a few minutes),
# then the lv0 layer over 7 days against sling (installed from PyPI into .bodyfriend/bench-sling),
# then the daily run's own time outside SQL and COPY (three runs).
# Smaller: make bench ARGS="--rows 200000"
bench: $(BIN)/bodyfriend
	$(BIN)/python -m benchmarks.extraction $(ARGS)
	$(BIN)/python -m benchmarks.lv0_vs_sling
	$(BIN)/python -m benchmarks.daily_overhead --repeat 3

clean:
	rm -rf $(VENV) build *.egg-info
