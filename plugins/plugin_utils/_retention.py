# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Which reference points a retention rule removes (internal to this collection; the filter
hyperv.backup.retention_plan and the role's bookkeeping use it)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError


def _order(point: dict[str, Any]) -> tuple[str, str]:
    return (str(point.get("created") or ""), str(point.get("name") or ""))


def _chain_root(point: dict[str, Any], by_name: dict[str, dict[str, Any]]) -> str:
    """The name of the full backup a point's chain starts from (itself for a full one)."""
    seen = set()
    current = point
    while current.get("mode") == "incremental" and current.get("base") in by_name and current["name"] not in seen:
        seen.add(current["name"])
        current = by_name[current["base"]]
    return str(current.get("name"))


def _needed(kept: list[dict[str, Any]], by_name: dict[str, dict[str, Any]]) -> set[str]:
    """Names of the kept points and of everything they depend on."""
    needed: set[str] = set()
    for point in kept:
        current: dict[str, Any] | None = point
        while current is not None and current["name"] not in needed:
            needed.add(current["name"])
            current = by_name.get(current.get("base") or "") if current.get("mode") == "incremental" else None
    return needed


def retention_plan(points: list[dict[str, Any]], keep: int = 2, unit: str = "chains", include_foreign: bool = False) -> list[dict[str, Any]]:
    if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
        raise AnsibleFilterError("retention_plan expects the reference_points list of hyperv.backup.reference_point_info")
    if int(keep) < 1:
        raise AnsibleFilterError(f"retention_plan keeps at least 1, got keep={keep}: the newest reference point is never removed")
    if unit not in ("chains", "points"):
        raise AnsibleFilterError(f"retention_plan unit must be chains or points, got {unit}")
    vms = {p.get("vm_id") for p in points}
    if len(vms) > 1:
        raise AnsibleFilterError("retention_plan works on the reference points of one VM; select them first (selectattr('vm_name', ...))")

    backups = sorted((p for p in points if not p.get("foreign") and p.get("mode") in ("full", "incremental")), key=_order)
    by_name = {p["name"]: p for p in backups}
    if unit == "points":
        kept = backups[-int(keep):]
    else:
        roots = []
        for point in backups:
            root = _chain_root(point, by_name)
            if root not in roots:
                roots.append(root)
        kept_roots = set(roots[-int(keep):])
        kept = [p for p in backups if _chain_root(p, by_name) in kept_roots]
    needed = _needed(kept, by_name)
    plan = [dict(p, reason=f"older than the {keep} newest {unit} kept") for p in backups if p["name"] not in needed]
    if include_foreign:
        plan += [dict(p, reason="foreign (include_foreign)") for p in sorted((p for p in points if p.get("foreign")), key=_order)]
    # dependants first: the newest go first, so no kept-until-now point loses its base mid-way
    return sorted(plan, key=_order, reverse=True)
