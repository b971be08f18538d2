"""End-to-end fixtures: a simulator process per test and a way to run tasks through ansible-playbook."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from hvtest import runs
from hvtest.sim.runner import PASSWORD, SimServer

SCENARIOS = pathlib.Path(__file__).parent / "scenarios"
RESULT_RE = re.compile(r"^hv01 \| (SUCCESS|CHANGED|FAILED!|UNREACHABLE!|SKIPPED)(?: \| rc=\d+)? => ", re.MULTILINE)


class Play:
    """Runs a list of tasks against the simulator and returns each task's result."""

    def __init__(self, server: SimServer, workdir: pathlib.Path) -> None:
        self.server = server
        self.workdir = workdir
        self.count = 0
        self.last_output = ""

    def __call__(self, *tasks: dict, check: bool = False, diff: bool = False, password: str = PASSWORD,
                 extra: tuple[str, ...] = (), env: dict[str, str] | None = None, playbook_command: str | None = None) -> list[dict[str, Any]]:
        self.count += 1
        playbook = self.workdir / f"play{self.count}.yml"
        playbook.write_text(yaml.safe_dump([{
            "name": "e2e", "hosts": "hyperv", "gather_facts": False, "tasks": list(tasks),
        }], sort_keys=False), encoding="utf-8")
        args = [*(["--check"] if check else []), *(["--diff"] if diff else []), *extra]
        done = self.server.playbook(playbook, *args, password=password, env={"ANSIBLE_STDOUT_CALLBACK": "minimal", **(env or {})},
                                    command=playbook_command)
        self.last_output = done.stdout + done.stderr
        return parse_minimal(done.stdout)

    def started(self, *tasks: dict) -> subprocess.Popen:
        """The tasks' play started in the background, in its own process group."""
        self.count += 1
        playbook = self.workdir / f"play{self.count}.yml"
        playbook.write_text(yaml.safe_dump([{"name": "e2e", "hosts": "hyperv", "gather_facts": False, "tasks": list(tasks)}], sort_keys=False),
                            encoding="utf-8")
        return self.server.playbook_started(playbook, env={"ANSIBLE_STDOUT_CALLBACK": "minimal"})


def parse_minimal(output: str) -> list[dict[str, Any]]:
    """Task results from the minimal callback's 'hv01 | STATUS => {json}' blocks."""
    results = []
    matches = list(RESULT_RE.finditer(output))
    decoder = json.JSONDecoder()
    for match in matches:
        value = decoder.raw_decode(output[match.end():])[0]
        value["_status"] = match.group(1).rstrip("!")
        results.append(value)
    return results


@pytest.fixture
def server(request, tmp_path: pathlib.Path) -> Iterator[SimServer]:
    """The simulator with tests/e2e/scenarios/<marker or demo>.yml, stopped after the test."""
    marker = request.node.get_closest_marker("scenario")
    name = marker.args[0] if marker else "demo"
    scenario = SCENARIOS / f"{name}.yml"
    knobs = dict(marker.kwargs) if marker else {}
    knobs.update(getattr(request, "param", None) or {})
    if knobs:
        # The scenario file with some top-level knobs set (language, culture, windows, answers, vms ...).
        data = yaml.safe_load(scenario.read_text(encoding="utf-8"))
        data.update(knobs)
        scenario = tmp_path / f"{name}-knobs.yml"
        scenario.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with SimServer(scenario, tmp_path) as running:
        running.scenario_knobs = knobs
        yield running


@pytest.fixture
def play(server: SimServer, tmp_path: pathlib.Path) -> Play:
    return Play(server, tmp_path)


def catalog_entries(server: SimServer, path: pathlib.Path | None = None) -> list[dict[str, Any]]:
    """The entries of the host's catalog file (the default one unless path is given); none when it does not exist."""
    target = path or server.catalog
    return json.loads(target.read_text(encoding="utf-8-sig"))["entries"] if target.exists() else []


def invoked(server: SimServer) -> list[str]:
    """Hyper-V methods the host received, in order, as Class.Method."""
    return [f"{c['class_name']}.{c['method']}" for c in server.calls()["calls"] if c["op"] == "invoke"]


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "scenario(name): the simulator scenario file a test runs against")
    if not hasattr(config, "workerinput"):
        # The controller (not an xdist worker) collects every host's module runs for the summary.
        log = pathlib.Path(config.rootpath) / ".build" / "runs-e2e.jsonl"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("", encoding="utf-8")
        os.environ["HVTEST_RUNS_LOG"] = str(log)


def pytest_terminal_summary(terminalreporter, config) -> None:
    if not hasattr(config, "workerinput") and os.environ.get("HVTEST_RUNS_LOG"):
        terminalreporter.write_line(runs.summary("e2e", pathlib.Path(os.environ["HVTEST_RUNS_LOG"])))
