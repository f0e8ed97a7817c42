# The two commands of the README. Each installs what it needs (system packages included),
# then runs: `make explore` the flagship study, `make test` the test suite.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STUDY   ?= resnet18-vta
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT     := gcc g++ make clang libomp-dev util-linux python3-venv \
           gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user \
           openssh-server openssh-client adb valgrind postgresql \
           texlive-latex-base texlive-latex-recommended texlive-pictures poppler-utils
EXTRAS  ?= test,postgres,tvm,dashboard

.PHONY: explore test test-fast system python python-test

explore: system python
	$(VENV)/bin/tune explore $(STUDY)

# -rs prints why each test was skipped; under CI=true (.ci/run) a skip for a missing gcc, qemu,
# PostgreSQL or sshd fails the run (tests/ci_skips.py)
test: system python-test
	$(PY) -m pytest -q -rs -p no:cacheprovider

# no compiler, no servers: the campaign on recorded measurements, the record, Pareto, knobs (< 30 s)
test-fast: python-test
	$(PY) -m pytest -q -rs -p no:cacheprovider -m "fast and not slow"

system:
	@missing=$$(for p in $(APT); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

python: $(VENV)/bin/python
	$(PY) -m pip install -q -e .

python-test: $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
