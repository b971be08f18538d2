"""disk_changes_info through ansible-playbook, WinRM and the simulator."""

from __future__ import annotations

import json
import pathlib

import pytest

GIB = 2**30


def rc(**args):
    return {"hyperv.backup.recovery_checkpoint": args}


def changes(**args):
    return {"hyperv.backup.disk_changes_info": args}


def base_then_checkpoint(play, server, writes):
    play(rc(vm="files01", name="base"), rc(vm="files01", name="base", state="converted", mode="full"))
    for disk, offset, length in writes:
        server.write("files01", length, disk=disk, offset=offset)
    play(rc(vm="files01", name="now"))


@pytest.mark.scenario("blocks")
def test_changes_are_walked_across_the_whole_disk_in_the_pieces_hyperv_answers(play, server) -> None:
    base_then_checkpoint(play, server, [(0, 512, 4096), (1, 3 * GIB, 8192), (1, 7 * GIB + 100, 100)])
    (result,) = play(changes(vm="files01", checkpoint="now", base="base"))
    os_disk, data_disk = result["disks"]
    assert os_disk["ranges"] == [[512, 4096]] and os_disk["size"] == 4 * GIB
    assert data_disk["ranges"] == [[3 * GIB, 8192], [7 * GIB + 100, 100]]
    assert result["changed_bytes"] == 4096 + 8192 + 100 and result["full_needed"] is False
    calls = [c for c in server.calls()["calls"] if c["op"] == "invoke" and c["method"] == "GetVirtualDiskChanges"]
    assert len(calls) == 4 + 8, "1 GiB per call over a 4 GiB and an 8 GiB disk"


@pytest.mark.scenario("blocks")
def test_long_range_lists_go_to_a_file_on_the_host(play, server) -> None:
    base_then_checkpoint(play, server, [(0, n * 1_000_000, 10) for n in range(5)])
    (result,) = play(changes(vm="files01", checkpoint="now", base="base", max_ranges_inline=3, ranges_dir=server.path("Changes")))
    disk = result["disks"][0]
    assert disk["ranges"] == [] and disk["range_count"] == 5 and disk["ranges_file"].startswith(server.path("Changes") + "/")
    saved = json.loads(pathlib.Path(disk["ranges_file"]).read_text(encoding="utf-8"))
    assert saved["ranges"] == [[n * 1_000_000, 10] for n in range(5)]


@pytest.mark.scenario("blocks")
def test_full_is_needed_when_tracking_restarted_or_a_disk_was_added(play, server) -> None:
    base_then_checkpoint(play, server, [])
    server.invalidate_rct("files01")
    server.add_disk("files01", "D:\\VMs\\files01\\new.vhdx", 1)
    play(rc(vm="files01", name="later"))
    (result,) = play(changes(vm="files01", checkpoint="later", base="base"))
    assert result["full_needed"] is True
    reasons = " ".join(result["full_reasons"])
    assert "disk 'D:\\VMs\\files01\\new.vhdx' is not in 'base'" in reasons
    assert "GetVirtualDiskChanges returned 32768 (Failed)" in reasons


@pytest.mark.scenario("blocks")
def test_missing_base_says_a_full_backup_is_needed(play, server) -> None:
    play(rc(vm="files01", name="now"))
    (result,) = play(changes(vm="files01", checkpoint="now", base="never"))
    assert result["full_needed"] is True and result["full_reasons"] == ["the base reference point 'never' no longer exists"]
