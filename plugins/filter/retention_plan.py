# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Filter hyperv.backup.retention_plan: which reference points a retention rule removes."""

from __future__ import annotations

from typing import Any

from ansible_collections.hyperv.backup.plugins.plugin_utils._retention import retention_plan

DOCUMENTATION = r"""
name: retention_plan
short_description: Reference points of one VM that a retention rule removes
version_added: 0.1.0
description:
  - Takes the reference points of one VM (RV(hyperv.backup.reference_point_info#module:reference_points))
    and returns those to remove, dependants before what they depend on.
  - Only reference points that closed a backup (with a C(mode), made by
    M(hyperv.backup.recovery_checkpoint)) are counted; other named reference points are never removed.
  - Never the newest; never one that a kept incremental depends on (through C(base), transitively);
    never a foreign one unless O(include_foreign=true).
options:
  _input:
    description: The reference points of one VM.
    type: list
    elements: dict
    required: true
  keep:
    description: How many of the newest points or chains to keep; at least 1.
    type: int
    default: 2
  unit:
    description:
      - V(chains) keeps the newest O(keep) chains (a full backup with the incrementals taken against it).
      - V(points) keeps the newest O(keep) points and every point they depend on.
    type: str
    choices: [chains, points]
    default: chains
  include_foreign:
    description: Also remove reference points the catalog does not know (made by other software).
    type: bool
    default: false
author:
  - hyperv.backup contributors (@hyperv-backup)
"""

EXAMPLES = r"""
- name: Remove what the newest two chains of web01 do not need
  hyperv.backup.reference_point:
    vm: web01
    instance_id: "{{ item.instance_id }}"
    state: absent
  loop: "{{ points.reference_points | selectattr('vm_name', 'equalto', 'web01') | hyperv.backup.retention_plan(keep=2) }}"
"""

RETURN = r"""
_value:
  description: The reference points to remove (the input entries, each with a C(reason)), dependants first.
  type: list
  elements: dict
"""


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"retention_plan": retention_plan}
