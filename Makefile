# Two commands on a fresh machine: `make demo` (the main job on built-in data) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: demo test bench clean browser services

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch is pinned to the CPU wheel in pyproject.toml; an unpinned torch would pull a CUDA build
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/vigil demo --out runs/demo

test: $(VENV)/.installed browser services
	$(PY) -m pytest -q

# The report is tested in a real headless browser: Debian's chromium, installed when missing and
# when we may (root with apt-get); otherwise that one test skips and says why.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium not installed: the browser test of the report will be skipped"; }

# `vigil serve` is tested with a real MQTT broker and a real PostgreSQL server: Debian's mosquitto and
# postgresql, installed when missing and when we may (root with apt-get); otherwise those tests skip and say why.
services:
	@{ command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ]; } && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto postgresql >/dev/null) \
	  || echo "mosquitto/postgresql not installed: the MQTT and PostgreSQL tests of vigil serve will be skipped"; }

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_truesight.py --save runs/ped2-truesight
	$(PY) benchmarks/bench_hybrid.py
	$(PY) benchmarks/bench_ocrgan_video.py --save runs/ped2-ocrgan8
	$(PY) benchmarks/bench_export.py
	$(PY) benchmarks/bench_robustness.py --run runs/ped2-truesight --run runs/ped2-ocrgan8 --hybrid
	$(PY) benchmarks/bench_serve.py

clean:
	rm -rf runs .pytest_cache
