"""The fault table (issue 18, docs/reliability.md): one fault injected at one point of the flow per
row, on the real PowerShell, and what it left counted from the simulated host and the catalog,
never from the module's own result. Every row must leave 0 orphan checkpoints, 0 reference points
lost, 0 duplicated and 0 pending entries; the expected message of each row is written by hand.

docs/reliability.md holds the table as these rows render it (test_the_table_in_the_docs_is_this_one)."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable
from typing import Any

import pytest
from conftest import catalog_entries

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
WEB01 = "6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162"
APP01 = "7a7a7a7a-0000-4000-8000-000000000001"


@dataclasses.dataclass
class Row:
    fault: str
    scenario: str
    prepare: Callable[[Any], None]
    tasks: Callable[[Any], list[dict]]
    outcome: str  # ok | failed
    message: str  # the part of the last task's message a person reads (empty when it succeeded)
    changed: bool
    vm_id: str = WEB01


def point(**options) -> dict:
    return {"hyperv.backup.reference_point": {"vm": "web01", "name": "nightly", **options}, "ignore_errors": True}


def checkpoint(**options) -> dict:
    return {"hyperv.backup.recovery_checkpoint": {"vm": "app01", "name": "nightly", **options}, "ignore_errors": True}


def write_catalog(text: str) -> Callable[[Any], None]:
    def prepare(server) -> None:
        server.catalog.parent.mkdir(parents=True, exist_ok=True)
        server.catalog.write_text(text, encoding="utf-8")
    return prepare


def fault(**settings) -> Callable[[Any], None]:
    return lambda server: server.add_fault(**settings)


def nothing(_server) -> None:
    return None


ROWS = [
    Row("CreateReferencePoint answers 32775 (VM busy)", "demo", fault(method="CreateReferencePoint", return_value=32775),
        lambda s: [point()], "failed", "CreateReferencePoint returned 32775 (Invalid State)", False),
    Row("CreateReferencePoint answers 32769 (access denied)", "demo", fault(method="CreateReferencePoint", return_value=32769),
        lambda s: [point()], "failed", "returned 32769 (Access Denied). Run as a member of Hyper-V Administrators", False),
    Row("creation job fails (32768)", "demo",
        fault(method="CreateReferencePoint", job={"duration": 0.3, "fail": {"error_code": 32768, "description": "Disk busy."}}),
        lambda s: [point()], "failed", "ended in state exception with error code 32768: Disk busy.", False),
    Row("creation job forgotten by the host before it is read", "demo",
        fault(method="CreateReferencePoint", job={"duration": 2, "vanish_after": 0.2}), lambda s: [point(wait_timeout=0)], "ok", "", True),
    Row("creation job names no product", "demo", fault(method="CreateReferencePoint", job={"duration": 0.3, "names_product": False}),
        lambda s: [point()], "ok", "", True),
    Row("WinRM drops twice while the job is followed", "demo",
        lambda s: (s.add_fault(method="CreateReferencePoint", job={"duration": 4}), s.endpoint_faults(drop_receives=2, drop_module="job_info")),
        lambda s: [point(wait_timeout=0)], "ok", "", True),
    Row("job hangs past job_timeout, cancelled", "demo", fault(method="CreateReferencePoint", job={"never_ends": True}),
        lambda s: [point(wait_timeout=0, job_timeout=3, cancel_on_job_timeout=True)], "failed",
        "was cancelled (cancel_on_job_timeout); it is terminated now and made nothing that was recorded", False),
    Row("catalog is not JSON", "demo", write_catalog("{not json"), lambda s: [point()], "failed",
        "is corrupt: it is not valid JSON", False),
    Row("catalog version written as a string", "demo", write_catalog('{"version": "1", "entries": []}'), lambda s: [point()], "failed",
        'is corrupt: its version "1" is not a number', False),
    Row("catalog from a newer collection (version 2)", "demo", write_catalog('{"version": 2, "entries": []}'), lambda s: [point()], "failed",
        "is corrupt: its version 2 is not the supported version 1", False),
    Row("catalog with a UTF-8 byte order mark", "demo", write_catalog('\ufeff{"version": 1, "entries": []}'), lambda s: [point()], "ok", "", True),
    Row("CreateSnapshot answers 32775 (another product holds the VM)", "backup", fault(method="CreateSnapshot", return_value=32775),
        lambda s: [checkpoint()], "failed",
        "Creating recovery checkpoint 'nightly' of VM 'app01' (7a7a7a7a-0000-4000-8000-000000000001), which is running, failed: CreateSnapshot returned 32775",
        False, APP01),
    Row("checkpoint job fails, no fallback", "backup",
        fault(method="CreateSnapshot", job={"duration": 0.3, "fail": {"error_code": 32768, "description": "VSS failed."}}),
        lambda s: [checkpoint()], "failed", "ended in state exception with error code 32768: VSS failed.", False, APP01),
    Row("checkpoint job names no product", "backup", fault(method="CreateSnapshot", job={"duration": 0.3, "names_product": False}),
        lambda s: [checkpoint()], "ok", "", True, APP01),
    Row("controller dies while the checkpoint is made, task run again", "backup", nothing,
        lambda s: [checkpoint(wait_timeout=0, job_timeout=0), {"ansible.builtin.pause": {"seconds": 1}}, checkpoint()], "ok", "", True, APP01),
]


def left_behind(server, vm_id: str) -> dict[str, int]:
    """What a row left, from the host's state and the catalog only."""
    state = server.state()
    upper = vm_id.upper()
    checkpoints = [c for c in state["checkpoints"] if c["VirtualSystemIdentifier"] == upper]
    points = [p for p in state["reference_points"] if p["VirtualSystemIdentifier"] == upper]
    try:
        entries = [e for e in catalog_entries(server) if e["vm_id"] == vm_id]
    except (ValueError, KeyError):
        entries = []  # a catalog the row damaged on purpose is left as it was
    recorded = {e["instance_id"] for e in entries if e.get("instance_id")}
    seeded = {"Microsoft:0A0B0C0D-1111-4222-8333-444455556666"}  # the demo's foreign point
    pending_file = server.root / "ProgramData" / "hyperv.backup" / "pending-checkpoints.json"
    return {
        # A recovery checkpoint nobody tags or removes: untagged, or tagged but not the task's label.
        "orphan_checkpoints": len([c for c in checkpoints if c["ElementName"] != "hyperv.backup: nightly"]),
        "lost": len([e for e in entries if e["status"] == "ready" and e["instance_id"] not in {p["InstanceID"] for p in points}]),
        "duplicated": len([p for p in points if p["InstanceID"] not in recorded and p["InstanceID"] not in seeded]),
        "pending": len([e for e in entries if e["status"] != "ready"]) + len(catalog_entries(server, pending_file)),
    }


def render(row: Row, left: dict[str, int]) -> str:
    cells = [row.fault, row.outcome, "yes" if row.changed else "no", str(left["orphan_checkpoints"]), str(left["lost"]),
             str(left["duplicated"]), str(left["pending"]), row.message.replace("|", "\\|") or "-"]
    return "| " + " | ".join(cells) + " |"


@pytest.mark.parametrize("row", ROWS, ids=[r.fault for r in ROWS])
def test_fault_row(request, tmp_path, row: Row) -> None:
    from hvtest.sim.runner import SimServer  # pylint: disable=import-outside-toplevel
    from conftest import SCENARIOS, Play  # pylint: disable=import-outside-toplevel

    with SimServer(SCENARIOS / f"{row.scenario}.yml", tmp_path) as server:
        play = Play(server, tmp_path)
        row.prepare(server)
        before_catalog = server.catalog.read_bytes() if server.catalog.exists() else None
        results = play(*row.tasks(server))
        last = results[-1]
        assert last["_status"] == ("FAILED" if row.outcome == "failed" else last["_status"]), play.last_output
        if row.outcome == "ok":
            assert last["_status"] in ("CHANGED", "SUCCESS"), last.get("msg")
        assert bool(last.get("changed")) is row.changed, last
        assert row.message in " ".join(str(last.get("msg", "")).split()), last.get("msg")
        left = left_behind(server, row.vm_id)
        assert left == {"orphan_checkpoints": 0, "lost": 0, "duplicated": 0, "pending": 0}, left
        if before_catalog is not None and row.outcome == "failed" and "corrupt" in row.message:
            assert server.catalog.read_bytes() == before_catalog, "a damaged catalog is left as it was"
    out = pathlib.Path(request.config.rootpath) / ".build" / "fault-table"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{ROWS.index(row):02d}.md").write_text(render(row, left) + "\n", encoding="utf-8")


def test_the_table_in_the_docs_is_this_one() -> None:
    expected = [render(row, {"orphan_checkpoints": 0, "lost": 0, "duplicated": 0, "pending": 0}) for row in ROWS]
    text = DOC.read_text(encoding="utf-8")
    documented = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| fault") and "---" not in line]
    assert documented == expected, "docs/reliability.md shows another table: copy the rows this test renders"


def table() -> str:
    """The table as the docs show it (python -c 'from test_fault_table import table; print(table())')."""
    header = "| fault | outcome | changed | orphan checkpoints | reference points lost | duplicated | pending entries | message (part) |"
    rule = "| --- | --- | --- | --- | --- | --- | --- | --- |"
    rows = [render(row, {"orphan_checkpoints": 0, "lost": 0, "duplicated": 0, "pending": 0}) for row in ROWS]
    return "\n".join([header, rule, *rows])
