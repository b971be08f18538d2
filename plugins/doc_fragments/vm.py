# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """How the modules select their virtual machine (or machines, with vms), and the internal _resume."""

    # Matches Get-HvBatchSpec (_HvBatch.psm1); validate-modules holds the two together.
    DOCUMENTATION = r"""
options:
  vm:
    description:
      - Display name of the virtual machine.
      - Compared exactly (case-insensitively, as Hyper-V Manager does) after a fixed query, so
        any character is safe. A name that matches no VM or several VMs fails before any change,
        listing the VMs found.
      - Exactly one of O(vm) and O(vm_id) is required (or O(vms)).
    type: str
  vm_id:
    description:
      - GUID of the virtual machine (C(Get-VM).Id), the stable choice when names repeat.
      - Exactly one of O(vm) and O(vm_id) is required (or O(vms)).
    type: str
  _resume:
    description:
      - Internal use only, do not set it. The collection's action plugins set it when they run the
        module again for the VMs whose Hyper-V job has ended (one entry per VM of that run, in
        order); they refuse a task that sets it, before anything runs.
    type: list
    elements: dict
    suboptions:
      job_id:
        description:
          - Internal use only.
        type: str
        required: true
      state:
        description:
          - Internal use only.
        type: dict
"""
