# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Both create .venv on first use and install unblur into it (torch pinned by constraints.txt).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,onnx]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/unblur demo

test: $(STAMP)
	$(BIN)/ruff check src tests scripts
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/unblur bench --quick

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache
