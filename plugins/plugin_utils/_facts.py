# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The hyperv_backup fact: what the collection made or found, per VM, for later tasks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.hyperv.backup.plugins.plugin_utils._data import plain_copy

FACT = "hyperv_backup"


def vm_key(vm: dict[str, Any] | None) -> str | None:
    """The key of a VM in the fact: its GUID in lower case, as the modules report vm.id.

    Names are not keys: two VMs may share a name, or differ only in case.
    """
    vm_id = (vm or {}).get("id")
    return str(vm_id).lower() if vm_id else None


def with_reference_point(existing: dict[str, Any] | None, vm: dict[str, Any] | None, name: str, point: dict[str, Any] | None) -> dict[str, Any]:
    """The fact with one VM's named reference point set (or dropped when point is None).

    Keyed by the VM's id (vm_key); each point carries vm_name and vm_id for reading. Facts replace
    each other whole, so the new value starts from what earlier tasks set.
    """
    key = vm_key(vm)
    fact = plain_copy(existing) if isinstance(existing, Mapping) else {}
    if key is None:
        return fact
    per_vm = fact.setdefault("reference_points", {})
    points = per_vm.setdefault(key, {})
    if point is None:
        points.pop(name, None)
        if not points:
            per_vm.pop(key, None)
    else:
        points[name] = point
    return fact
