# Two commands for a new user: `make demo` and `make test`. Each sets itself up from nothing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install tools benchmark clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tradewatch needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	# `python -m pip`, not bin/pip: console scripts carry an absolute interpreter path.
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,ops]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m tradewatch.cli.main demo

# tests/test_deploy.py validates docker-compose.yml with Debian's docker-compose;
# tests/test_monitoring_config.py validates deploy/ with promtool (package prometheus) and amtool
# (package prometheus-alertmanager). Installed when missing, as root with apt-get. Note: on a host
# run by systemd the two packages also enable and start a local prometheus and alertmanager
# service (ports 9090, 9093); `systemctl disable --now prometheus prometheus-alertmanager` if
# only the tools are wanted.
tools:
	@command -v docker-compose >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing docker-compose (Debian package)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; \
	  else echo "docker-compose is missing: apt-get install docker-compose (tests/test_deploy.py needs it)"; fi; }
	@missing=""; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v amtool >/dev/null 2>&1 || missing="$$missing prometheus-alertmanager"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing (Debian packages: promtool, amtool)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "promtool/amtool missing: apt-get install$$missing (tests/test_monitoring_config.py needs them)"; fi; \
	fi

# Needs Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (see README); .ci/run starts them.
test: $(STAMP) tools
	$(BIN)/python -m pytest $(PYTEST_ARGS)

benchmark: $(STAMP)
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
