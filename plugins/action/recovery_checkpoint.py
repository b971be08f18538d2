# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action of hyperv.backup.recovery_checkpoint: run the module, follow its jobs, set the fact."""

from __future__ import annotations

from typing import Any

from ansible_collections.hyperv.backup.plugins.plugin_utils import _facts
from ansible_collections.hyperv.backup.plugins.plugin_utils._job_action import JobAction


class ActionModule(JobAction):
    MODULE = "hyperv.backup.recovery_checkpoint"

    def describe(self, args: dict[str, Any], vm_result: dict[str, Any]) -> str:
        vm = (vm_result.get("vm") or {}).get("name")
        return f"Recovery checkpoint '{args.get('name')}' of VM '{vm}'"

    def fact(self, result: dict[str, Any], args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any] | None:
        fact = task_vars.get(_facts.FACT)
        made = False
        for vm_result in result.get("results") or [result]:
            point = vm_result.get("reference_point")
            if point and not vm_result.get("failed"):
                fact = _facts.with_reference_point(fact, vm_result.get("vm"), point["name"], point)
                made = True
        return fact if made else None
