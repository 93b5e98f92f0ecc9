# make demo / make test each build .venv when needed, install likeness and the face models.
VENV ?= .venv
PY := $(VENV)/bin/python
LIKENESS := $(VENV)/bin/likeness
STAMP := $(VENV)/.installed
CORPUS ?= ../shared/corpus
OUT ?= out

.PHONY: demo test lint fmt bench models clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

models: $(STAMP)
	$(LIKENESS) models install

demo: models
	mkdir -p $(OUT)
	$(PY) -c "import cv2; from skimage import data; cv2.imwrite('$(OUT)/astronaut.png', cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))"
	$(LIKENESS) faces $(OUT)/astronaut.png -o $(OUT)/astronaut.faces.png --json $(OUT)/astronaut.faces.json
	@# Marking: keys (made once, in LIKENESS_HOME), a signed copy, and its verification.
	$(LIKENESS) keys show >/dev/null 2>&1 || $(LIKENESS) keys init --no-passphrase
	$(LIKENESS) keys export-trust -o $(OUT)/likeness-root.pem
	$(LIKENESS) sign $(OUT)/astronaut.faces.png -o $(OUT)/astronaut.faces.signed.png \
	  --ingredient $(OUT)/astronaut.png --source-type compositeSynthetic
	$(LIKENESS) verify $(OUT)/astronaut.faces.signed.png --trust $(OUT)/likeness-root.pem
	if [ -f $(CORPUS)/videos/lp-d0.mp4 ]; then \
	  $(LIKENESS) faces $(CORPUS)/videos/lp-d0.mp4 -o $(OUT)/lp-d0.faces.mp4 && \
	  $(LIKENESS) watermark embed $(OUT)/lp-d0.faces.mp4 -o $(OUT)/lp-d0.marked.mp4 && \
	  $(LIKENESS) watermark detect $(OUT)/lp-d0.marked.mp4; fi
	@echo "demo outputs are in $(abspath $(OUT))/"

test: models
	$(VENV)/bin/ruff check likeness tests
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check likeness tests
	$(VENV)/bin/ruff format --check likeness tests

fmt: $(STAMP)
	$(VENV)/bin/ruff format likeness tests
	$(VENV)/bin/ruff check --fix likeness tests

bench: models
	$(LIKENESS) bench faces -o bench-results

clean:
	rm -rf $(VENV) $(OUT) bench-results .pytest_cache .ruff_cache
