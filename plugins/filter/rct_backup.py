# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Filters rct_vms, rct_record and rct_summary: the per-VM bookkeeping of the rct_backup role.

The role runs each step once for all its VMs (one module call with vms). Its state is a dict
keyed by the VM as the user gave it (name or GUID); each step's VMs come from rct_vms, and
rct_record files the step's per-VM results back, turning a VM's failure into its error, so
later steps leave that VM out and the clean-up removes its recovery checkpoint.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.hyperv.backup.plugins.plugin_utils._rct_state import rct_record, rct_summary, rct_vms


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"rct_vms": rct_vms, "rct_record": rct_record, "rct_summary": rct_summary}
