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
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,ray,serve]'
	touch $(STAMP)

models: $(STAMP)
	$(LIKENESS) models install

# The demo shows the three jobs. Make: animate a held-out corpus photo with a held-out
# driving clip (people the shipped model never saw in training); without ../shared/corpus,
# scikit-image's astronaut with scripted motion. Mark: the output is watermarked and signed;
# verify it like a stranger would, against the exported root. Catch: scan it beside a real
# corpus clip (without the corpus: beside the astronaut photo) into JSON lines and the HTML
# report. About a minute on 2 CPU cores.
DEMO_PHOTO ?= $(CORPUS)/photos/st-people0.png
DEMO_DRIVING ?= $(CORPUS)/videos/ap-pose-ref.mp4
DEMO_REAL ?= $(CORPUS)/videos/vr-3.mp4
DEMO_CORPUS := $(and $(wildcard $(DEMO_PHOTO)),$(wildcard $(DEMO_DRIVING)),$(wildcard $(DEMO_REAL)))
DEMO_BESIDE := $(if $(DEMO_CORPUS),$(DEMO_REAL),$(OUT)/astronaut.png)

demo: models
	mkdir -p $(OUT)
	$(LIKENESS) keys show >/dev/null 2>&1 || $(LIKENESS) keys init --no-passphrase
	$(LIKENESS) keys export-trust -o $(OUT)/likeness-root.pem
	@echo "== make: animate a photo (watermarked, C2PA-signed)"
ifneq ($(DEMO_CORPUS),)
	$(LIKENESS) animate $(DEMO_PHOTO) $(DEMO_DRIVING) -o $(OUT)/animated.mp4
else
	$(PY) -c "import cv2; from skimage import data; cv2.imwrite('$(OUT)/astronaut.png', cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))"
	$(LIKENESS) animate $(OUT)/astronaut.png --motion nod,blink,smile,talk,look-left -o $(OUT)/animated.mp4
endif
	@echo "== mark: verify it against the exported trust anchor"
	$(LIKENESS) verify $(OUT)/animated.mp4 --trust $(OUT)/likeness-root.pem
	@echo "== catch: scan it beside a real one ($(notdir $(DEMO_BESIDE)))"
	status=0; $(LIKENESS) scan $(OUT)/animated.mp4 $(DEMO_BESIDE) --trust $(OUT)/likeness-root.pem \
	  --json $(OUT)/scan.jsonl --html $(OUT)/report.html || status=$$?; \
	  [ $$status -eq 0 ] || [ $$status -eq 3 ]  # exit 3: something was found manipulated
	@echo "demo outputs:"
	@echo "  animated video (watermarked, signed): $(abspath $(OUT))/animated.mp4"
	@echo "  trust anchor it verified against:     $(abspath $(OUT))/likeness-root.pem"
	@echo "  scan JSON lines:                      $(abspath $(OUT))/scan.jsonl"
	@echo "  scan report (open in a browser):      $(abspath $(OUT))/report.html"

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

# Long fuzz run of the decoders and readers (tests/reliability/fuzzing.py; CI runs a
# small fixed-seed version in tests/reliability/test_fuzz.py). Seed 1, 6000 cases per
# target (manifest 2000, pack 2400), two child processes: about 5 minutes on 2 cores.
# Inputs of failing cases are kept in fuzz-failures/; rerun one with --only INDEX.
FUZZ_SEED ?= 1
FUZZ_COUNT ?= 6000
.PHONY: fuzz
fuzz: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m tests.reliability.fuzzing --target all --seed $(FUZZ_SEED) \
	  --count $(FUZZ_COUNT) --jobs 2 --keep fuzz-failures

# The training set that tools/gpu/train_detector.py expects (a lent GPU's detector run):
# the corpus packed (about 400 s on 2 cores; kept in GPU_PACK, outside .gpu, which travels
# whole, for later runs), then the
# train and val splits' fakes with small masks (165 s, 46 MB, under the device tool's
# 64 MiB with the tracked tree). Then one device call: `python3 tools/gpu/train_detector.py`
# with `.gpu` carried.
GPU_PACK ?= $(OUT)/pack
.PHONY: gpu-data
gpu-data: models
	test -f $(GPU_PACK)/manifest.json || $(LIKENESS) dataset pack $(CORPUS) -o $(GPU_PACK)
	$(LIKENESS) dataset fakes --pack $(GPU_PACK) -o .gpu/fakes --every 4 --quality 80 \
	  --mask-size 64 --split train --split val --force
