# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action of hyperv.backup.vm_export: run the module and follow the export jobs."""

from __future__ import annotations

from typing import Any

from ansible_collections.hyperv.backup.plugins.plugin_utils._job_action import JobAction


class ActionModule(JobAction):
    MODULE = "hyperv.backup.vm_export"

    def describe(self, args: dict[str, Any], vm_result: dict[str, Any]) -> str:
        vm = (vm_result.get("vm") or {}).get("name")
        return f"Export of VM '{vm}' to '{vm_result.get('destination') or args.get('destination')}'"
