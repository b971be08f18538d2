# hyperv.backup: every command a developer or CI needs. `make help` lists them.
SHELL := /bin/sh
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON_VERSION = $$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# PowerShell 7 runs the collection's modules in every test (docs/simulator.md); CI puts the
# project's copy on PATH (.ci/run). Without it the targets that need it stop with how to get it.
PWSH_CHECK = PYTHONPATH=tests $(PY) -c "from hvtest.sim.pwsh import find_pwsh; find_pwsh()"

.PHONY: changelog-lint collection-link integration help venv test timed lane-ansible-test lane-powershell core-venvs static lint sanity sanity-oldest sanity-matrix units pester e2e demo bench bench-quick docs docs-site diagram galaxy clean

help:
	@echo "make demo    run the example playbook against the Hyper-V simulator"
	@echo "make test    run every test: static PowerShell checks, docs, sanity, units, end-to-end"
	@echo "make static  PowerShell checks (names against the schema, Windows PowerShell 5.1 compatibility) and module docs"
	@echo "make pester  Pester tests of the module_utils on the real PowerShell, against the simulated host"
	@echo "make lint    ansible-lint --profile production (offline)"
	@echo "make sanity  ansible-test sanity (offline)"
	@echo "make sanity-oldest  ansible-test sanity on ansible-core 2.16 (Python 3.12)"
	@echo "make sanity-matrix  ansible-test sanity on every ansible-core from 2.16 to 2.21"
	@echo "make galaxy  build the collection and run galaxy-importer on the tarball"
	@echo "make docs-site  documentation site with antsibull-docs and Sphinx (.build/docs-site)"
	@echo "make units   ansible-test units"
	@echo "make integration  ansible-test windows-integration targets against the simulator"
	@echo "make e2e     end-to-end playbooks over WinRM against the simulator"
	@echo "make bench   the collection against a playbook of win_powershell tasks, 1 to 50 VMs and a fleet (about 15 min on 2 cores)"
	@echo "make bench-quick  the benchmark's small set (run by make test)"
	@echo "make docs    render every module with ansible-doc"

$(VENV)/.installed: tests/requirements.txt
	@test -x $(PY) || "$$(tests/find-python)" -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	@touch $@

venv: $(VENV)/.installed

static: venv collection-link
	@$(PWSH_CHECK)
	PYTHONPATH=tests $(PY) -m hvtest.pscheck
	PYTHONPATH=tests $(PY) -m hvtest.ps51
	$(PY) -m pytest -q tests/static

sanity: venv
	@$(PWSH_CHECK)
	tests/ansible-test $(abspath $(VENV)) sanity --venv --python $(PYTHON_VERSION)

# .build/bench/collections: the benchmark's baseline playbooks (tests/bench) call ansible.windows.
lint: venv .build/bench/collections/.installed collection-link
	PATH="$(abspath $(VENV))/bin:$$PATH" ANSIBLE_COLLECTIONS_PATH="$(abspath .build/collections):$(abspath .build/bench/collections)" $(VENV)/bin/ansible-lint

sanity-oldest:
	tests/sanity-matrix 2.16 3.12

sanity-matrix:
	tests/sanity-matrix 2.16 3.12
	tests/sanity-matrix 2.17 3.12
	tests/sanity-matrix 2.18 3.13
	tests/sanity-matrix 2.19 3.13
	tests/sanity-matrix 2.20 3.13
	tests/sanity-matrix 2.21 3.13

.venv-release/.installed: tests/requirements-release.txt docs/site/requirements.txt
	@test -x .venv-release/bin/python || "$$(tests/find-python)" -m venv .venv-release
	.venv-release/bin/pip install --quiet --disable-pip-version-check -r tests/requirements-release.txt
	@touch $@

# .build/collections/ansible_collections/hyperv/backup: the working tree as an installed collection.
collection-link: venv
	PYTHONPATH=tests $(PY) -c "from hvtest import paths; paths.collections_path()"

changelog-lint: .venv-release/.installed
	.venv-release/bin/antsibull-changelog lint

docs-site: venv .venv-release/.installed collection-link
	tests/docs-site $(abspath .venv-release) $(abspath .build/collections)

galaxy: venv .venv-release/.installed
	rm -rf .build/galaxy && mkdir -p .build/galaxy
	$(VENV)/bin/ansible-galaxy collection build --output-path .build/galaxy .
	@! tar tzf .build/galaxy/hyperv-backup-*.tar.gz | grep -E '^(\.venv|\.build|tests/output)' || { echo "the tarball holds build or venv files" >&2; exit 1; }
	cd .build/galaxy && PATH="$(abspath .venv-release)/bin:$$PATH" ../../.venv-release/bin/python -m galaxy_importer.main hyperv-backup-*.tar.gz | tee importer.log
	@! grep -E "ERROR|WARNING" .build/galaxy/importer.log
	.venv-release/bin/ansible-builder introspect --sanitize .build/collections | tee .build/galaxy/ee-dependencies.yml
	@grep -q "pywinrm" .build/galaxy/ee-dependencies.yml

integration: venv
	@$(PWSH_CHECK)
	PYTHONPATH=tests $(PY) -m hvtest.integration $(abspath $(VENV))

units: venv
	tests/ansible-test $(abspath $(VENV)) units --venv --python $(PYTHON_VERSION)

pester: venv
	@$(PWSH_CHECK)
	PYTHONPATH=tests $(PY) -m hvtest.pester

e2e: venv
	@$(PWSH_CHECK)
	$(PY) -m pytest -q -n 2 --dist worksteal --durations=30 tests/e2e

# make test: the two quickest checks first (lint, changelog: a slip fails in seconds), then two
# lanes side by side, one per core, each mostly one process at a time: the static checks, sanity
# (2.21 and 2.16) and units; the docs site, the collection build, the older ansible-core venvs,
# Pester and the integration targets. Then the end-to-end suite on two workers,
# with the benchmark's small set beside it: the suite leaves a core idle while its simulated jobs
# run, and the small set only shows that the benchmark still runs (its figures come from make bench
# or make bench-quick on a quiet machine). Each stage prints its time; a lane's output is printed
# whole when the lane ends. The lanes are balanced on the stage times CI prints (2026-11-30:
# static 42 s, sanity 159, units 13, sanity-oldest 164; docs-site 10, galaxy 13, core-venvs 28,
# pester 61, integration 284).
TEST_FIRST = lint changelog-lint
TEST_LANE_ANSIBLE_TEST = static sanity units sanity-oldest
TEST_LANE_POWERSHELL = docs-site galaxy core-venvs pester integration
TEST_LAST = e2e bench-quick

test: venv .venv-release/.installed .build/bench/collections/.installed
	@$(MAKE) --no-print-directory timed STAGES="$(TEST_FIRST)"
	@$(MAKE) --no-print-directory -j2 --output-sync=recurse lane-ansible-test lane-powershell
	@$(MAKE) --no-print-directory -j2 --output-sync=recurse $(addprefix lane-last-,$(TEST_LAST))

lane-last-%:
	@$(MAKE) --no-print-directory timed STAGES="$*"

# The ansible-core 2.16-2.20 venvs the end-to-end suite runs one flow in (made on first use
# otherwise, inside the suite's own time).
core-venvs: venv
	PYTHONPATH=tests $(PY) -c "from hvtest import corevenv; [corevenv.venv(core) for core in corevenv.OLDER]"

lane-ansible-test:
	@$(MAKE) --no-print-directory timed STAGES="$(TEST_LANE_ANSIBLE_TEST)"

lane-powershell:
	@$(MAKE) --no-print-directory timed STAGES="$(TEST_LANE_POWERSHELL)"

timed:
	@for stage in $(STAGES); do \
		started=$$(date +%s); \
		$(MAKE) --no-print-directory $$stage || { echo "== make $$stage failed after $$(( $$(date +%s) - started )) s"; exit 1; }; \
		echo "== make $$stage: $$(( $$(date +%s) - started )) s"; \
	done

demo: venv
	@$(PWSH_CHECK)
	PYTHONPATH=tests $(PY) -m hvtest.demo

# The benchmark's baseline runs ansible.windows, unpacked from the ansible package's wheel (pinned
# in tests/bench/requirements-windows.txt); its plot needs matplotlib, in .venv-bench only.
.build/bench/collections/.installed: tests/bench/requirements-windows.txt | venv
	$(PY) -m pip download --quiet --disable-pip-version-check --no-deps --dest .build/bench/wheels -r tests/bench/requirements-windows.txt
	PYTHONPATH=tests $(PY) -m hvtest.bench.windows .build/bench/wheels .build/bench/collections
	touch $@

.venv-bench/.installed: tests/bench/requirements-plot.txt
	@test -x .venv-bench/bin/python || "$$(tests/find-python)" -m venv .venv-bench
	.venv-bench/bin/pip install --quiet --disable-pip-version-check -r tests/bench/requirements-plot.txt
	touch $@

bench: venv .build/bench/collections/.installed .venv-bench/.installed
	@$(PWSH_CHECK)
	PYTHONPATH=tests $(PY) -m hvtest.bench .build/bench/collections --json .build/bench/results.json --docs docs/performance.md
	PYTHONPATH=tests .venv-bench/bin/python -m hvtest.bench.plot .build/bench/results.json docs/images/performance.png

bench-quick: venv .build/bench/collections/.installed
	@$(PWSH_CHECK)
	PYTHONPATH=tests $(PY) -m hvtest.bench .build/bench/collections --quick

docs: venv
	$(PY) -m pytest -q tests/static/test_docs.py

clean:
	rm -rf .build tests/output .pytest_cache .venv-bench

diagram:
	for f in docs/images/*.dot; do dot -Tsvg "$$f" -o "$${f%.dot}.svg"; done
