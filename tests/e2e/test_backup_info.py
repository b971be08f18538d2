"""backup_info on the real PowerShell: what the role's exports let a user restore, and what breaks a chain."""

from __future__ import annotations

import os
import pathlib

import pytest
from test_rct_backup_role import backup

APP01 = "7a7a7a7a-0000-4000-8000-000000000001"


def backup_info(play, server, **options) -> dict:
    (result,) = play({"name": "What can be restored", "hyperv.backup.backup_info": {"path": server.path("Backup"), **options}})
    return result


def files_on_disk(folder: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name != "hyperv.backup-export.json")


@pytest.mark.scenario("backup")
def test_three_nights_make_three_restore_points_and_a_broken_link_or_unfinished_export_breaks_the_later_ones(server, play, tmp_path) -> None:
    for night in ("night1", "night2", "night3"):
        done, _summary = backup(server, tmp_path, night)
        assert done.returncode == 0, done.stdout
        server.write("app01", 3 * 2**20, disk=0, offset=2**30)

    info = backup_info(play, server)
    assert info["_status"] == "SUCCESS" and info["changed"] is False, info
    points = info["restore_points"]
    assert [(p["label"], p["mode"], p["base"], p["chain"], p["complete"]) for p in points] == [
        ("night1", "full", None, ["night1"], True),
        ("night2", "incremental", "night1", ["night1", "night2"], True),
        ("night3", "incremental", "night2", ["night1", "night2", "night3"], True),
    ]
    folder = server.root / "Backup" / f"app01_{APP01}"
    assert [p["path"] for p in points] == [str(folder / n) for n in ("night1", "night2", "night3")]
    # Bytes as the exports wrote them, counted again from the files, not taken from the module.
    assert [p["bytes"] for p in points] == [files_on_disk(folder / n) for n in ("night1", "night2", "night3")]
    assert points[2]["chain_bytes"] == sum(files_on_disk(folder / n) for n in ("night1", "night2", "night3"))
    assert info["vms"] == [{"id": APP01, "name": "app01", "restore_points": 3, "complete": 3,
                            "latest": "night3", "latest_time": points[2]["time"]}]
    assert (info["complete"], info["broken"], info["incomplete"]) == (3, 0, [])

    # A differential cut short on the share (a copy that stopped): night2 and night3 cannot be restored.
    cut = next((folder / "night2").rglob("*.vhdx"))
    written = cut.stat().st_size
    os.truncate(cut, written // 2)
    info = backup_info(play, server, vm=APP01.upper())
    points = info["restore_points"]
    assert [p["complete"] for p in points] == [True, False, False]
    assert points[1]["problems"] == [f"file '{cut}' is {written // 2} bytes, the export wrote {written}"]
    assert points[2]["problems"] == [f"it needs 'night2' ({folder / 'night2'}), whose file '{cut}' is {written // 2} bytes, the export wrote {written}"]
    assert info["vms"][0]["latest"] == "night1" and (info["complete"], info["broken"]) == (1, 2)

    # Markers only: the same folder reads as whole, said so by check_files.
    assert [p["complete"] for p in backup_info(play, server, check_files=False)["restore_points"]] == [True, True, True]

    # What an export leaves when the host dies under it: Hyper-V's files, no marker. Listed apart,
    # never as a restore point; the export based on it names the missing base.
    (folder / "night1" / "hyperv.backup-export.json").unlink()
    info = backup_info(play, server)
    assert [p["label"] for p in info["restore_points"]] == ["night2", "night3"]
    assert info["restore_points"][0]["problems"][-1] == "it needs 'night1', the base of 'night2', which is not in this folder"
    assert [i["path"] for i in info["incomplete"]] == [str(folder / "night1")]
    assert info["incomplete"][0]["bytes"] == files_on_disk(folder / "night1") and info["incomplete"][0]["files"] == 3
    assert info["vms"][0]["latest"] is None


@pytest.mark.scenario("backup")
def test_a_folder_that_cannot_be_read_fails_with_what_to_do(server, play) -> None:
    (result,) = play({"hyperv.backup.backup_info": {"path": server.path("NoSuchFolder")}})
    assert result["_status"] == "FAILED" and result["changed"] is False
    assert result["msg"].startswith(f"Backup folder '{server.path('NoSuchFolder')}' does not exist, or this account cannot see it")
    (result,) = play({"hyperv.backup.backup_info": {"path": "Backup"}})
    assert result["msg"] == ("path 'Backup' is not a full path: give a drive and its root (E:\\Backups) or a share (\\\\server\\share\\Backups).")
