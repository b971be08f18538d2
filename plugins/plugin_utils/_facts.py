# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The hyperv_backup fact: what the collection made or found, per VM, for later tasks."""

from __future__ import annotations

import copy
from typing import Any

FACT = "hyperv_backup"


def with_reference_point(existing: dict[str, Any] | None, vm_name: str, name: str, point: dict[str, Any] | None) -> dict[str, Any]:
    """The fact with one VM's named reference point set (or dropped when point is None).

    Facts replace each other whole, so the new value starts from what earlier tasks set.
    """
    fact = copy.deepcopy(existing) if isinstance(existing, dict) else {}
    per_vm = fact.setdefault("reference_points", {})
    points = per_vm.setdefault(vm_name, {})
    if point is None:
        points.pop(name, None)
        if not points:
            per_vm.pop(vm_name, None)
    else:
        points[name] = point
    return fact
