# Two commands do all set-up: `make train` and `make test` create .venv if it is missing,
# install the package (once; again only when pyproject.toml or its constraints file changes)
# and run their job.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
COMMA := ,

.PHONY: install train test test-all test-metaworld lint benchmarks policies clean

# torch first, pinned: this exact CPU build is on the machine's disk, while a looser spec
# would make pip download a multi-GB CUDA build. The package itself asks for torch>=2.3.
# Then the package with every dependency at the exact version its constraints file names
# (constraints/*.txt: the versions RESULTS.md's new rows are measured with).
# $(1): the venv's python, $(2): the package's extras, $(3): the constraints file.
define install_into
	$(1) -m pip install --quiet --upgrade pip
	$(1) -m pip install --quiet -c $(3) torch==2.13.0
	$(1) -m pip install --quiet -c $(3) -e '.[$(2)]'
endef

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml constraints/core.txt
	$(call install_into,$(PY),dev,constraints/core.txt)
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(VENV)/bin/reptile-rl train navigation $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

test-all: $(STAMP)
	$(PY) -m pytest -q -m '' $(ARGS)

# Meta-World pins MuJoCo 3.3.0 (the core runs MuJoCo 4): its extra gets a venv of its own, so
# the core's physics, and every number measured with it, stay as they are.
MW_VENV ?= .venv-metaworld
MW_PY := $(MW_VENV)/bin/python
MW_STAMP := $(MW_VENV)/.installed

$(MW_PY):
	$(PYTHON) -m venv $(MW_VENV)

$(MW_STAMP): $(MW_PY) pyproject.toml constraints/metaworld.txt
	$(call install_into,$(MW_PY),dev$(COMMA)metaworld,constraints/metaworld.txt)
	touch $(MW_STAMP)

test-metaworld: $(MW_STAMP)
	$(MW_PY) -m pytest -q tests/test_metaworld.py tests/test_success_rate.py $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

benchmarks: $(STAMP)
	$(PY) -m benchmarks.run_all

# Re-create the policies shipped in reptile_rl/pretrained/<PRESET>/ (meta, pretrained, oracle),
# e.g. `make policies PRESET=navigation`. Runs land in runs/shipped-<PRESET>-*.
PRESET ?= navigation
SEED ?= 0
policies: $(STAMP)
	$(VENV)/bin/reptile-rl train $(PRESET) --seed $(SEED) --out runs/shipped-$(PRESET)-meta
	$(VENV)/bin/reptile-rl pretrain $(PRESET) --seed $(SEED) --out runs/shipped-$(PRESET)-pretrained
	$(VENV)/bin/reptile-rl pretrain $(PRESET) --seed $(SEED) --oracle --out runs/shipped-$(PRESET)-oracle
	mkdir -p reptile_rl/pretrained/$(PRESET)
	cp runs/shipped-$(PRESET)-meta/meta_policy.safetensors \
	   runs/shipped-$(PRESET)-pretrained/pretrained_policy.safetensors \
	   runs/shipped-$(PRESET)-oracle/oracle_policy.safetensors reptile_rl/pretrained/$(PRESET)/

clean:
	rm -rf $(VENV) $(MW_VENV) build *.egg-info
