# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.hyperv.backup.plugins.plugin_utils._data import plain_copy


def test_plain_copy_copies_the_containers_and_keeps_the_scalars() -> None:
    original = {"web01": {"disks": [{"rct_id": "rctX:1", "size": 2**40}], "ok": True, "base": None}, "pair": ("a", 1)}
    copied = plain_copy(original)
    assert copied == {"web01": {"disks": [{"rct_id": "rctX:1", "size": 2**40}], "ok": True, "base": None}, "pair": ["a", 1]}
    copied["web01"]["disks"][0]["rct_id"] = "changed"
    copied["web01"]["disks"].append({})
    assert original["web01"]["disks"] == [{"rct_id": "rctX:1", "size": 2**40}], "nothing is shared with the original"
