# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hyperv.backup.plugins.plugin_utils._retention import retention_plan


def point(name: str, day: int, mode: str | None, base: str | None = None, foreign: bool = False) -> dict:
    return {"name": None if foreign else name, "instance_id": f"ID-{name}", "created": f"2026-11-{day:02d}T01:00:00Z",
            "mode": mode, "base": base, "foreign": foreign, "vm_id": "vm1"}


CHAINS = [
    point("f1", 1, "full"), point("i1", 2, "incremental", "f1"), point("i2", 3, "incremental", "i1"),
    point("f2", 4, "full"), point("i3", 5, "incremental", "f2"),
    point("f3", 6, "full"),
    point("manual", 7, None), point("other", 8, None, foreign=True),
]


def names(plan: list[dict]) -> list[str]:
    return [p["instance_id"].removeprefix("ID-") for p in plan]


def test_chains_keeps_the_newest_whole_chains_and_removes_dependants_first() -> None:
    assert names(retention_plan(CHAINS, keep=2)) == ["i2", "i1", "f1"]


def test_points_keeps_what_the_newest_points_depend_on() -> None:
    # keeping i3 and f3 needs f2 (i3's base); the first chain goes, newest first
    assert names(retention_plan(CHAINS, keep=2, unit="points")) == ["i2", "i1", "f1"]
    assert names(retention_plan(CHAINS, keep=1, unit="points")) == ["i3", "f2", "i2", "i1", "f1"]


def test_keeping_an_incremental_keeps_its_whole_base_path() -> None:
    plan = retention_plan(CHAINS[:3], keep=1, unit="points")
    assert plan == [], "i2 needs i1 which needs f1"


def test_never_the_newest_and_never_manual_or_foreign_points() -> None:
    plan = names(retention_plan(CHAINS, keep=1))
    assert "f3" not in plan and "manual" not in plan and "other" not in plan


def test_foreign_points_only_when_asked() -> None:
    assert "other" in names(retention_plan(CHAINS, keep=3, include_foreign=True))


@pytest.mark.parametrize("points, kwargs, message", [
    (CHAINS, {"keep": 0}, "keeps at least 1"),
    (CHAINS, {"unit": "days"}, "unit must be chains or points"),
    ("nope", {}, "expects the reference_points list"),
    (CHAINS + [dict(point("x", 9, "full"), vm_id="vm2")], {}, "one VM"),
])
def test_bad_input_is_refused(points, kwargs: dict, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        retention_plan(points, **kwargs)
