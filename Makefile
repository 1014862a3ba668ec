# cellsim: `make demo` runs the whole pipeline on the embedded defaults; `make test` runs every check.
# Both create .venv and install everything on first use (PyTorch CPU build first, then the package).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.cellsim-installed
export OMP_NUM_THREADS ?= 1
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install system-deps test lint demo screen bench docs clean mutate

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU build of torch first: otherwise chgnet/sevenn pull the CUDA wheels (gigabytes)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	# every requirement holds, but mace-torch's pins (installed below without them, see there) on a second install
	$(PY) -m pip check || ! $(PY) -m pip check | grep -v '^mace-torch '
	# the distilled student (cellsim.engines.student, docs/student.md): mace-torch pins e3nn==0.4.4 and sevenn
	# needs e3nn>=0.5, so no resolver installs both; mace-torch runs on sevenn's e3nn (tests/engines/test_student.py),
	# so it goes in after the check without its pins, and its other requirements come from the `student` extra
	$(PY) -m pip install -q -e ".[dev,student]"
	$(PY) -m pip install -q --no-deps "mace-torch==0.3.16"
	touch $(STAMP)

install: $(STAMP)

# Debian packages for the tests, installed when missing and we are root (as in CI): chromium for the
# report's browser test; cp2k (PBE single points: `cellsim engines check --reference cp2k`, data/pbe/);
# gpaw (plane-wave PBE of the metal's Bain path; Debian's runs under /usr/bin/python3 only);
# slurm-wlm + munge for a real single-node SLURM cluster (started here).
system-deps:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not found and not root: the report's browser test will be skipped"; fi
	@command -v cp2k.psmp >/dev/null 2>&1 || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cp2k >/dev/null; \
	  else echo "cp2k not found and not root: the CP2K (PBE reference) tests will be skipped"; fi
	@/usr/bin/python3 -c "import gpaw" >/dev/null 2>&1 || python3 -c "import gpaw" >/dev/null 2>&1 || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gpaw >/dev/null; \
	  else echo "gpaw not found and not root: the plane-wave PBE (GPAW) tests will be skipped"; fi
	@if [ "$$(id -u)" = 0 ]; then scripts/slurm-local.sh start; \
	  else echo "not root: the SLURM tests will be skipped"; fi

lint: $(STAMP)
	$(VENV)/bin/ruff check cellsim tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: lint system-deps
	$(VENV)/bin/pytest -q

demo: $(STAMP)
	$(VENV)/bin/cellsim demo -o runs/demo

# the bundled screen (docs/screening.md): In, LiIn and Li on Li6PS5Cl(001), 2 terminations x 3 seeds, about an hour
screen: $(STAMP)
	$(VENV)/bin/cellsim screen workflows/screens/li6ps5cl.yaml -o runs/screen_li6ps5cl

bench: $(STAMP)
	$(PY) -m pip install -q -e ".[dev,bench]"
	$(PY) bench/bench_build.py
	$(PY) bench/bench_analysis.py

# Mutation testing of the rules the answer rests on ([tool.mutmut] in pyproject.toml): not part of `make test`
# or CI. It runs in a copy of the tree, so mutmut's mutants/ folder never lands in the checkout; one worker,
# niced, to leave the machine's other cores alone. The score and the surviving mutants: `mutmut results` there;
# the last figure, and every survivor killed or argued equivalent: docs/mutation.md.
MUTATE_DIR ?= /tmp/cellsim-mutate
mutate: $(STAMP)
	$(PY) -m pip install -q -e ".[dev,mutation]"
	rm -rf $(MUTATE_DIR) && mkdir -p $(MUTATE_DIR)
	cp -r cellsim tests pyproject.toml $(MUTATE_DIR)/
	cd $(MUTATE_DIR) && nice -n 10 $(abspath $(VENV))/bin/mutmut run --max-children 1 || true
	cd $(MUTATE_DIR) && $(abspath $(PY)) $(abspath bench/mutation_score.py)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# docs/cli.md is generated from the CLI itself (tests/core/test_docs.py checks it is current)
docs: $(STAMP)
	$(PY) -m typer cellsim.cli utils docs --name cellsim --title "cellsim command-line reference" --output docs/cli.md
