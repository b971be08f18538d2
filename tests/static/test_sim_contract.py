"""The simulator's Python renderings stay tied to the PowerShell modules they stand in for.

Without pwsh the .ps1 files never run here, so the end-to-end tests run renderings instead.
These tests fail when the two drift: different Hyper-V calls, different messages, helpers
without a counterpart, or results holding keys the docs do not describe.
"""

from __future__ import annotations

import ast
import json
import pathlib
import re

import pytest

from hvtest import collection, pscheck, pstree, troubleshooting
from hvtest.sim import modules
from hvtest.sim.host import SimHost

SIM = collection.ROOT / "tests" / "hvtest" / "sim"
JOB_METHODS = ("CreateReferencePoint", "DestroyReferencePoint", "CreateSnapshot", "DestroySnapshot", "ConvertToReferencePoint",
               "ExportSystemDefinition")
SCENARIO = {
    "host": "HV09",
    "jobs": {method: {"duration": 0.05} for method in JOB_METHODS},
    "vms": [{"name": "a", "id": "aaaaaaaa-0000-4000-8000-000000000001"}, {"name": "b", "id": "aaaaaaaa-0000-4000-8000-000000000002"}],
    "reference_points": [{"vm": "b", "instance_id": "Microsoft:FOREIGN"}],
}


# ------------------------------------------------------------------ what the PowerShell calls

def _literal_parameter(command: pstree.Command, name: str) -> str | None:
    return command.parameter_text(name)


def powershell_calls(paths: list[pathlib.Path]) -> set[tuple]:
    """('invoke', method, args) / ('enumerate', class) / ('associators', association, result) in the sources."""
    sources = [pstree.parse(p) for p in paths]
    found: set[tuple] = set()
    call_sites: dict[str, list[pstree.Command]] = {}
    for source in sources:
        for command in pstree.commands(source.root):
            call_sites.setdefault(command.name.lower(), []).append(command)
    for source in sources:
        for function in pstree.functions(source.root):
            for command in pstree.commands(function.node):
                name = command.name.lower()
                if name in pscheck.METHOD_COMMANDS and _literal_parameter(command, "MethodName"):
                    keys = pscheck._literal_keys(command.parameters["arguments"]) if "arguments" in command.parameters else set()
                    found.add(("invoke", _literal_parameter(command, "MethodName"), tuple(sorted(keys or ()))))
                elif name == "get-ciminstance" and _literal_parameter(command, "ClassName"):
                    if "inputobject" not in command.parameters:
                        found.add(("enumerate", _literal_parameter(command, "ClassName")))
                elif name == "get-cimassociatedinstance":
                    association = _literal_parameter(command, "Association")
                    result = _literal_parameter(command, "ResultClassName")
                    if result is not None:
                        found.add(("associators", association, result))
                    else:
                        # the result class is a parameter of the enclosing helper: take it from its callers
                        for caller in call_sites.get(function.name.lower(), []):
                            found.add(("associators", association, _literal_parameter(caller, "ResultClassName")))
    return found


def rendering_calls(host: SimHost) -> set[tuple]:
    found = set()
    for call in host.calls:
        if call["op"] == "invoke":
            found.add(("invoke", call["method"], tuple(call["arguments"])))
        elif call["op"] == "enumerate":
            found.add(("enumerate", call["class_name"]))
        elif call["op"] == "associators":
            found.add(("associators", call["association"], call["result_class"]))
    return found


def _run(host: SimHost, module_name: str, **args) -> dict:
    return modules.run_module(module_name, args, host)


def exercised_host() -> tuple[SimHost, list[dict]]:
    """A host on which the renderings took every path that reaches Hyper-V."""
    host = SimHost(SCENARIO)
    results = [
        _run(host, "reference_point", vm="a", name="one"),
        _run(host, "reference_point", vm="a", name="one"),
        _run(host, "reference_point", vm="a", name="one", state="absent"),
        _run(host, "reference_point_info"),
        _run(host, "reference_point_info", vm=["b"]),
    ]
    host.add_fault({"method": "CreateReferencePoint", "job": {"duration": 0.05, "fail": {"error_code": 32768, "description": "boom"}}})
    results.append(_run(host, "reference_point", vm="a", name="two"))
    host.add_fault({"method": "CreateReferencePoint", "job": {"never_ends": True}})
    hung = _run(host, "reference_point", vm="a", name="three", wait_timeout=0)
    results.append(_run(host, "job_info", job_id=hung["job"]["id"]))
    results.append(_run(host, "job_info", job_id=hung["job"]["id"], cancel=True))
    results.append(_run(host, "recovery_checkpoint", vm="a", name="left-behind"))
    results.append(_run(host, "recovery_checkpoint", vm="a", name="c1"))
    results.append(_run(host, "recovery_checkpoint", vm="a", name="c1", state="converted", mode="full"))
    results.append(_run(host, "recovery_checkpoint", vm="a", name="c2"))
    results.append(_run(host, "recovery_checkpoint", vm="a", name="c2", state="absent"))
    results.append(_run(host, "recovery_checkpoint", vm="a", name="c3"))
    results.append(_run(host, "vm_export", vm="a", checkpoint="c3", destination="E:\\x", base="c1", wait_timeout=5))
    results.append(_run(host, "vm_export", vm="a", checkpoint="c3", destination="E:\\x", base="c1"))
    host.write("a", 0, 0, 4096)
    results.append(_run(host, "recovery_checkpoint", vm="a", name="c4"))
    results.append(_run(host, "disk_changes_info", vm="a", checkpoint="c4", base="c1", chunk_bytes=2**30))
    # Many VMs per call: steps started side by side, a failed application checkpoint falling back
    # after the module's own wait, an unknown VM failing alone.
    host.add_fault({"method": "CreateSnapshot", "job": {"duration": 0.05, "fail": {"error_code": 32768, "description": "VSS failed"}}})
    results.append(_run(host, "recovery_checkpoint", vms=[{"vm": "a"}, {"vm": "b"}], name="m1", crash_fallback=True))
    results.append(_run(host, "recovery_checkpoint", vms=[{"vm": "a"}, {"vm_id": "aaaaaaaa-0000-4000-8000-000000000002"}, {"vm": "nope"}], name="m1"))
    results.append(_run(host, "vm_export", vms=[{"vm": "a", "destination": "E:\\m\\a"}, {"vm": "b", "destination": "E:\\m\\b"}], checkpoint="m1"))
    # Reference points of several VMs, one VM twice, created then removed (one of them foreign) in one call each.
    results.append(_run(host, "reference_point", vms=[{"vm": "a", "name": "p1"}, {"vm": "a", "name": "p2"}, {"vm": "b", "name": "p1"}]))
    results.append(_run(host, "reference_point", state="absent", allow_foreign=True,
                        vms=[{"vm": "a", "name": "p1"}, {"vm": "a", "name": "p2"}, {"vm": "b", "instance_id": "Microsoft:FOREIGN"}]))
    return host, results


def test_renderings_make_exactly_the_calls_the_powershell_makes() -> None:
    host = exercised_host()[0]
    static = powershell_calls(collection.powershell_files())
    assert rendering_calls(host) == static


@pytest.mark.parametrize("name", collection.module_names())
def test_each_rendering_calls_only_what_its_module_can(name: str) -> None:
    host = exercised_host()[0]
    host.calls.clear()
    args = {"reference_point": {"vm": "a", "name": "x"}, "job_info": {"job_id": "NO-SUCH-JOB"},
            "recovery_checkpoint": {"vm": "a", "name": "x"},
            "vm_export": {"vm": "a", "checkpoint": "c3", "destination": "E:\\y"},
            "disk_changes_info": {"vm": "a", "checkpoint": "c4", "base": "c1"}}.get(name, {})
    _run(host, name, **args)
    sources = [s.path for s in collection.module_sources(collection.ROOT / "plugins" / "modules" / f"{name}.ps1")]
    assert rendering_calls(host) <= powershell_calls(sources)


# ------------------------------------------------------------------ helpers and messages

def _rendered_functions() -> dict[str, str]:
    """PowerShell function name -> the Python function rendering it (from the docstrings)."""
    tree = ast.parse((SIM / "hvutils.py").read_text(encoding="utf-8"))
    rendered = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            doc = ast.get_docstring(node) or ""
            match = re.match(r"^([A-Z][A-Za-z]+-Hv\w+)", doc)
            if match:
                rendered[match.group(1)] = node.name
    return rendered


def test_every_module_util_function_has_one_rendering() -> None:
    defined = {f.name for p in (collection.ROOT / "plugins" / "module_utils").glob("*.psm1") for f in pstree.functions(pstree.parse(p).root)}
    # The spec functions feed $spec, which the renderings read from the .ps1 itself.
    assert set(_rendered_functions()) == defined - {"Get-HvCatalogSpec", "Get-HvBatchSpec"}


def _message_fragments(path: pathlib.Path) -> list[str]:
    """Fixed text of the messages a file throws, fails or warns with (between interpolations)."""
    source = pstree.parse(path)
    fragments = []
    for node in pstree.walk(source.root):
        if node.type not in ("expandable_string_literal", "verbatim_string_characters") or not troubleshooting.is_message(node):
            continue
        raw = pstree.text(node)[1:-1]
        if node.type == "verbatim_string_characters":
            raw = raw.replace("''", "'")
        for piece in re.split(r"\$\((?:[^()]|\([^()]*\))*\)|\$\{[^}]*\}|\$[\w:]+(?:\.\w+)*", raw):
            if len(piece.strip()) >= 12:
                fragments.append(piece.strip())
    return fragments


@pytest.mark.parametrize("path", collection.powershell_files(), ids=lambda p: p.name)
def test_messages_are_worded_the_same_in_the_rendering(path: pathlib.Path) -> None:
    python = " ".join((SIM / "hvutils.py").read_text(encoding="utf-8").split()) + " ".join((SIM / "modules.py").read_text(encoding="utf-8").split())
    python = python.replace('" "', "").replace("\" f\"", "").replace('"f"', "")
    missing = [f for f in _message_fragments(path) if " ".join(f.split()) not in python]
    assert missing == []


def test_message_fragments_are_found() -> None:
    fragments = _message_fragments(collection.ROOT / "plugins" / "module_utils" / "HvVirtualMachine.psm1")
    assert ". Select one with vm_id." in fragments and "No virtual machine with id" in fragments


# ------------------------------------------------------------------ results

def test_successful_results_hold_every_documented_key() -> None:
    results = exercised_host()[1]
    created, listing, job, cancelled = results[0], results[3], results[6], results[7]
    assert set(modules.documented_keys("reference_point")) - {"results"} <= set(created)
    assert set(modules.documented_keys("reference_point_info")) <= set(listing)
    assert set(modules.documented_keys("job_info")) <= set(job)
    assert job["job"]["state"] == "running" and cancelled["changed"] is True and cancelled["job"]["state"] == "terminated"
    made, converted = results[9], results[10]
    assert set(modules.documented_keys("recovery_checkpoint")) - {"results"} <= set(made)
    assert [c["label"] for c in made["removed_leftovers"]] == ["left-behind"], "the earlier run's checkpoint is cleaned up"
    assert converted["reference_point"]["mode"] == "full" and converted["checkpoints"] == []
    exported, again = results[14], results[15]
    assert set(modules.documented_keys("vm_export")) - {"results"} <= set(exported)
    assert exported["changed"] is True and exported["mode"] == "differential" and again["changed"] is False and again["bytes"] == exported["bytes"]
    changes = results[17]
    assert set(modules.documented_keys("disk_changes_info")) - {"results"} <= set(changes)
    assert changes["changed_bytes"] == 4096 and changes["full_needed"] is False and changes["disks"][0]["ranges"] == [[0, 4096]]


def test_many_vms_in_one_call_have_a_result_each() -> None:
    made, again, exported = exercised_host()[1][18:21]
    for result, name in ((made, "recovery_checkpoint"), (exported, "vm_export")):
        assert result["failed"] is False and result["changed"] is True and result["pending"] is False
        for element in result["results"]:
            assert set(modules.documented_keys(name)) - {"results"} <= set(element), "each VM has the one-VM keys"
            assert element["failed"] is False and element["changed"] is True
    assert [r["vm"]["name"] for r in made["results"]] == ["a", "b"]
    assert sorted(r["consistency"] for r in made["results"]) == ["application", "crash"], "the failed application job fell back after the wait"
    assert [c["label"] for c in made["results"][0]["removed_leftovers"]] == ["c4"], "a's leftover removed through its job first, and reported"
    assert any("Falling back to a crash-consistent checkpoint" in w for w in made["warnings"])
    assert again["failed"] is True and again["changed"] is False and "1 of 3 VMs failed: No virtual machine named 'nope'" in again["msg"]
    assert [r["failed"] for r in again["results"]] == [False, False, True]
    created, removed = exercised_host()[1][21:23]
    assert [(r["vm"]["name"], r["reference_point"]["name"]) for r in created["results"]] == [("a", "p1"), ("a", "p2"), ("b", "p1")]
    assert removed["failed"] is False and [r["changed"] for r in removed["results"]] == [True, True, True]
    assert [r["failed"] for r in removed["results"]] == [False, False, False]
    assert [r["destination"] for r in exported["results"]] == ["E:\\m\\a", "E:\\m\\b"] and all(r["bytes"] > 0 for r in exported["results"])


def test_undocumented_result_key_is_caught(monkeypatch) -> None:
    original = modules.RENDERINGS["reference_point_info"]

    def drifted(module, hv):
        module.result["surprise"] = 1
        original(module, hv)

    monkeypatch.setitem(modules.RENDERINGS, "reference_point_info", drifted)
    with pytest.raises(modules.UndocumentedKey, match=r"\['surprise'\]"):
        _run(SimHost(SCENARIO), "reference_point_info")


def test_rendering_argument_spec_is_the_modules_own() -> None:
    spec = modules.module_spec("reference_point")
    assert spec == pscheck.module_spec(collection.ROOT / "plugins" / "modules" / "reference_point.ps1")
    assert "catalog_path" in spec["options"]  # merged from Get-HvCatalogSpec as Ansible.Basic does


def test_a_removal_job_failing_in_a_many_vm_call_is_reported_once_and_retried_next_time() -> None:
    host = SimHost(SCENARIO)
    _run(host, "reference_point", vms=[{"vm": "a", "name": "p1"}, {"vm": "b", "name": "p1"}])
    host.add_fault({"method": "DestroyReferencePoint", "job": {"duration": 0.05, "fail": {"error_code": 32768, "description": "in use"}}})
    failed = _run(host, "reference_point", state="absent", vms=[{"vm": "a", "name": "p1"}, {"vm": "b", "name": "p1"}])
    assert failed["failed"] is True and failed["msg"].startswith("1 of 2 VMs failed: Removing Reference point 'p1' of VM 'a' failed: job ")
    assert [r["failed"] for r in failed["results"]] == [True, False]
    catalog = json.loads(host.files[modules.Hv(host).resolve_catalog_path(None)])
    assert [(e["vm_name"], e["status"], e["job_id"]) for e in catalog["entries"]] == [("a", "ready", None)], "ready again, for the next run"
    again = _run(host, "reference_point", state="absent", vm="a", name="p1")
    assert again["changed"] is True and again["failed"] is False


def test_a_many_vm_call_lists_the_hosts_vms_once() -> None:
    host = SimHost(SCENARIO)
    made = _run(host, "recovery_checkpoint", vms=[{"vm": "a"}, {"vm": "b"}], name="once")
    assert [(r["changed"], r["pending"]) for r in made["results"]] == [(True, False), (True, False)], "each VM's step ran again after its job"
    listings = [c for c in host.calls if c["op"] == "enumerate" and c["class_name"] == "Msvm_ComputerSystem"]
    assert len(listings) == 1, "one listing for the module run, not one per VM and step"
