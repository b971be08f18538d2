# hyperv.backup: every command a developer or CI needs. `make help` lists them.
SHELL := /bin/sh
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON_VERSION = $$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
MODULE_PS1 := $(wildcard plugins/modules/*.ps1)
# validate-modules needs pwsh for .ps1 files; the doc stubs are still checked, and
# tests/static compares each $spec with its doc stub instead.
VALIDATE_EXCLUDES := $(foreach f,$(MODULE_PS1),--exclude $(f))

.PHONY: help venv test static lint sanity units e2e demo docs diagram clean

help:
	@echo "make demo    run the example playbook against the Hyper-V simulator"
	@echo "make test    run every test: static PowerShell checks, docs, sanity, units, end-to-end"
	@echo "make static  PowerShell checks and module docs only (fast)"
	@echo "make lint    ansible-lint --profile production (offline)"
	@echo "make sanity  ansible-test sanity (offline)"
	@echo "make units   ansible-test units"
	@echo "make e2e     end-to-end playbooks over WinRM against the simulator"
	@echo "make docs    render every module with ansible-doc"

$(VENV)/.installed: tests/requirements.txt
	@test -x $(PY) || "$$(tests/find-python)" -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	@touch $@

venv: $(VENV)/.installed

static: venv
	PYTHONPATH=tests $(PY) -c "from hvtest import paths; paths.collections_path()"
	PYTHONPATH=tests $(PY) -m hvtest.pscheck
	$(PY) -m pytest -q tests/static

sanity: venv
	tests/ansible-test $(abspath $(VENV)) sanity --venv --python $(PYTHON_VERSION) --skip-test validate-modules
	tests/ansible-test $(abspath $(VENV)) sanity --venv --python $(PYTHON_VERSION) --test validate-modules $(VALIDATE_EXCLUDES)

lint: venv
	PATH="$(abspath $(VENV))/bin:$$PATH" ANSIBLE_COLLECTIONS_PATH="$(abspath .build/collections)" $(VENV)/bin/ansible-lint

units: venv
	tests/ansible-test $(abspath $(VENV)) units --venv --python $(PYTHON_VERSION)

e2e: venv
	$(PY) -m pytest -q -n 2 tests/e2e

test: static lint sanity units e2e

demo: venv
	PYTHONPATH=tests $(PY) -m hvtest.demo

docs: venv
	$(PY) -m pytest -q tests/static/test_docs.py

clean:
	rm -rf .build tests/output .pytest_cache

diagram:
	dot -Tsvg docs/images/backup-flow.dot -o docs/images/backup-flow.svg
