"""The benchmark's arithmetic (tests/hvtest/bench): phases from a timeline, ratios, the derived fleet, the page, the unpacking."""

from __future__ import annotations

import zipfile

import pytest

from hvtest.bench import measure, report, scenarios, windows


def _row(**figures) -> measure.Measured:
    base = {"scenario": "nightly role", "engine": "collection", "vms": 20, "hosts": 1, "module_runs": 6, "operations": 42,
            "hyperv_calls": 300, "pwsh_seconds": 30.0, "wall": 50.0}
    return measure.Measured(**{**base, **figures})


def test_phases_split_the_wall_time_by_the_timeline_and_add_up() -> None:
    # A play of 100 s: one shell open from 10 to 40 s whose pwsh runs 12-38 s, first CIM call at 16 s;
    # a job runs from 30 to 60 s (its last 8 s inside the module, 20 s while no shell is open).
    times = {"command": 11.0, "pwsh_start": 12.0, "first_cim": 16.0, "pwsh_end": 38.0, "replied": 39.0}
    record = measure.HostRecord(
        module_runs=[{"module": "vm_export", "seconds": 26.0, "times": times}],
        operations=7, calls=[], shells=[{"id": "a", "created": 10.0, "deleted": 40.0}],
        jobs=[{"run": "x", "method": "ExportSystemDefinition", "vm": "v", "started": 30.0, "ended": 60.0}])
    phases = measure.phases(record, wall=100.0, started_wall=0.0)
    assert phases == {
        "controller": 50.0,
        "controller, waiting on jobs between polls": 20.0,
        "WinRM": 4.0,
        "pwsh start and exec wrapper": 4.0,
        "module code": 14.0,
        "waiting on jobs (in a module)": 8.0,
    }
    assert sum(phases.values()) == 100.0


def test_the_fleet_baseline_is_derived_from_one_host_and_says_so() -> None:
    one = _row(engine="baseline", scenario="fleet", vms=10, module_runs=40, operations=280, hyperv_calls=230, pwsh_seconds=200.0, wall=220.0)
    fleet = report.derived_fleet(one, 20)
    assert (fleet.hosts, fleet.module_runs, fleet.operations, fleet.hyperv_calls, fleet.pwsh_seconds, fleet.wall) == (
        20, 800, 5600, 4600, 4000.0, 220.0)
    assert fleet.derived and "derived" in fleet.notes[0] and not one.derived
    collection = _row(scenario="fleet", vms=10, hosts=20, module_runs=120, operations=900)
    assert report.baseline_for(collection, [one, fleet]) is fleet


def test_ratios_are_the_collection_over_the_baseline_of_the_same_scenario() -> None:
    baseline = _row(engine="baseline", module_runs=80, operations=560, hyperv_calls=600, pwsh_seconds=400.0, wall=500.0)
    assert report.ratios(_row(), baseline) == {"module_runs": 0.07, "operations": 0.07, "hyperv_calls": 0.5, "pwsh_seconds": 0.07,
                                               "wall": 0.1}
    assert report.ratios(_row(), None)["wall"] is None
    table = report.table([_row(floor=40.0), baseline], module_start=5.0)
    assert "| nightly role | 20 | 1 | collection | 6 (0.07x) | 42 (0.07x) |" in table and "| 1.25 |" in table


def test_the_floor_is_each_steps_longest_job_plus_a_module_start_per_step() -> None:
    scenario = scenarios.Scenario("x", 5, jobs={"CreateSnapshot": {"duration": 60}, "ExportSystemDefinition": {"duration": 120}},
                                  clock_scale=60, steps=("CreateSnapshot", "ExportSystemDefinition"))
    assert scenario.floor(module_start=4.0) == 1.0 + 2.0 + 2 * 4.0


def test_the_page_gets_the_tables_between_its_markers_only(tmp_path) -> None:
    page = tmp_path / "performance.md"
    page.write_text(f"intro\n{report.BEGIN}\nold\n{report.END}\nafter\n", encoding="utf-8")
    report.update_page(page, "| new |", 600)
    text = page.read_text(encoding="utf-8")
    assert text.startswith("intro\n") and text.endswith(f"{report.END}\nafter\n") and "| new |" in text and "old" not in text
    page.write_text("no markers", encoding="utf-8")
    with pytest.raises(SystemExit, match="no bench markers"):
        report.update_page(page, "| new |", 1)


def test_only_ansible_windows_is_unpacked_from_the_ansible_wheel(tmp_path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "ansible-14.5.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("ansible_collections/ansible/windows/MANIFEST.json", "{}")
        wheel.writestr("ansible_collections/community/general/MANIFEST.json", "{}")
    folder = windows.unpack(wheels, tmp_path / "out")
    assert (folder / "MANIFEST.json").is_file() and not (tmp_path / "out" / "ansible_collections" / "community").exists()
    (wheels / "ansible-14.5.0-py3-none-any.whl").unlink()
    with pytest.raises(SystemExit, match="expected one ansible wheel"):
        windows.unpack(wheels, tmp_path / "out")


def test_targets_say_met_or_by_how_much_they_are_missed() -> None:
    rows = [_row(vms=1, module_runs=6, wall=20.0, floor=18.0), _row(vms=20, module_runs=6, operations=42, wall=50.0, floor=25.0),
            _row(engine="baseline", vms=20, module_runs=80, operations=560, wall=120.0)]
    text = report.targets(rows)
    assert "do not grow with VMs (1 VMs: 6, 20 VMs: 6): met" in text
    assert "wall within 1.2x of the floor at 1 VMs: 1.11x, met" in text
    assert "wall within 1.2x of the floor at 20 VMs: 2.00x, missed by 1.67x" in text
    assert "5x fewer module runs than the baseline at 20 VMs: 13.3x, met" in text
    assert "3x less wall time than the baseline at 20 VMs: 2.4x, missed by 1.25x" in text


def test_time_in_pwsh_leaves_out_the_wait_for_a_core_another_host_held() -> None:
    # In the fleet a module that slept waits to get a core slot back (sim/pwsh.py): that wait is
    # this machine's, not the host's, and is not counted as time in pwsh.
    runs = [{"module": "vm_export", "seconds": 9.0, "times": {"slot_wait": 2.5}}, {"module": "job_info", "seconds": 3.0, "times": {}}]
    record = measure.HostRecord(module_runs=runs, operations=14, calls=[], shells=[], jobs=[])
    assert measure.measured("fleet", "collection", 10, [record], wall=20.0).pwsh_seconds == 9.5
