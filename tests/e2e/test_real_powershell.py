"""The modules that answer the tests are the collection's own PowerShell, run by ansible-core's exec wrapper."""

from __future__ import annotations

import fcntl
import shutil
import time

import yaml
from conftest import SCENARIOS, Play, parse_minimal

from hvtest.collection import ROOT
from hvtest.sim.pwsh import SLOTS_ENV
from hvtest.sim.runner import SimServer


def rp(**args):
    return {"hyperv.backup.reference_point": args}


def test_a_fault_that_only_shows_at_run_time_fails_the_task_with_the_powershell_error(play, server, tmp_path) -> None:
    # A copy of the collection with a statement planted at the start of the catalog's save that
    # parses and passes every static check, and fails when it runs.
    tree = tmp_path / "planted" / "ansible_collections" / "hyperv" / "backup"
    shutil.copytree(ROOT / "plugins", tree / "plugins")
    shutil.copytree(ROOT / "meta", tree / "meta")
    shutil.copy(ROOT / "galaxy.yml", tree / "galaxy.yml")
    util = tree / "plugins" / "module_utils" / "_HvCatalog.psm1"
    text = util.read_text(encoding="utf-8")
    planted = text.replace('    $temporary = "$Path.tmp"\n', '    $copies = [int]\'twelve\'\n    $temporary = "$Path.tmp"\n', 1)
    assert planted != text, "the planting point moved: Save-HvCatalog no longer starts with $temporary"
    util.write_text(planted, encoding="utf-8")

    (broken,) = play(rp(vm="web01", name="n"), env={"ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "planted")})
    assert broken["_status"] == "FAILED"
    assert 'Cannot convert value "twelve" to type "System.Int32"' in broken["msg"]

    (working,) = play(rp(vm="web01", name="m"))
    assert working["_status"] == "CHANGED" and working["reference_point"]["name"] == "m"


def test_a_module_waiting_on_its_job_lets_its_core_slot_go(monkeypatch, tmp_path) -> None:
    # The benchmark's fleet shares this machine's cores between simulated hosts (sim/pwsh.py,
    # HVSIM_PWSH_SLOTS). A module that sleeps between reads of its job uses no core on its host, so
    # its slot must be free meanwhile; before, a waiting module held it to the end of its run.
    slots = tmp_path / "slots"
    slots.mkdir()
    (slots / "slot-0").touch()
    monkeypatch.setenv(SLOTS_ENV, str(slots))
    scenario = tmp_path / "slow.yml"
    data = yaml.safe_load((SCENARIOS / "slow.yml").read_text(encoding="utf-8"))
    scenario.write_text(yaml.safe_dump({**data, "jobs": {"CreateReferencePoint": {"duration": 4}}}), encoding="utf-8")
    with SimServer(scenario, tmp_path / "sim") as server:
        running = Play(server, tmp_path).started(rp(vm="big01", name="n", wait_timeout=30))
        held = free_again = None
        while running.poll() is None and free_again is None:
            with open(slots / "slot-0", "a", encoding="utf-8") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    held = True
                else:
                    fcntl.flock(handle, fcntl.LOCK_UN)
                    free_again = time.time() if held else None
            time.sleep(0.02)
        output = running.communicate(timeout=120)[0]
        (run,) = [r for r in server.calls()["module_runs"] if r["module"] == "reference_point"]
    assert parse_minimal(output)[0]["_status"] == "CHANGED", output
    assert free_again is not None, "the slot was never free while the module ran"
    assert run["times"]["pwsh_start"] < free_again < run["times"]["pwsh_end"] - 1, (free_again, run["times"])
