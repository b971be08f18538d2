"""The modules that answer the tests are the collection's own PowerShell, run by ansible-core's exec wrapper."""

from __future__ import annotations

import shutil

from hvtest.collection import ROOT


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
