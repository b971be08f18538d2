# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This file holds the documentation only; the module is disk_changes_info.ps1.

DOCUMENTATION = r"""
---
module: disk_changes_info
short_description: Changed byte ranges of a VM's disks since a reference point (RCT)
version_added: 0.1.0
description:
  - For each virtual disk of the recovery checkpoint O(checkpoint), lists the byte ranges that changed
    since the reference point O(base), with C(Msvm_ImageManagementService.GetVirtualDiskChanges) and
    the base's RCT id of that disk, for block-level backup tools.
  - One call may process less of the disk than asked; the module walks each disk until all of it is
    covered (optionally O(chunk_bytes) at a time).
  - Says when only a full backup is possible (RV(full_needed)) and why - the base is gone, a disk was
    added or removed since it, or its change tracking data is no longer valid.
  - Lists longer than O(max_ranges_inline) are written to a JSON file on the host (RV(disks[].ranges_file)).
options:
  checkpoint:
    description:
      - The name of the recovery checkpoint whose disks are read (made by M(hyperv.backup.recovery_checkpoint)).
    type: str
    required: true
  base:
    description:
      - The catalog name of the reference point to list changes since.
      - Required, for the task or for each VM of O(vms).
    type: str
  chunk_bytes:
    description:
      - Ask for at most this many bytes per call (V(0) for the rest of the disk each time).
    type: int
    default: 0
  max_ranges_inline:
    description:
      - Disks with more changed ranges than this have them written to a file on the host instead of returned.
    type: int
    default: 1000
  ranges_dir:
    description:
      - Directory on the host for range files. Defaults to C(%ProgramData%\\hyperv.backup\\changes).
    type: path
  vms:
    description:
      - Several VMs of the host in one task, instead of O(vm) or O(vm_id) - one round trip for all of them
        rather than one task per VM.
      - Each element selects one VM with C(vm) (display name) or C(vm_id) (GUID) and may set its own
        values of the options listed below; the task's values apply where it does not.
      - The changes of every VM are read in the same module run on the host.
      - One VM's failure does not stop the others. The result has one entry per VM in RV(results); the
        task fails when any VM failed, with a message naming each.
    type: list
    version_added: 0.2.0
    elements: dict
    suboptions:
      vm:
        description:
          - Display name of the VM. Exactly one of C(vm) and C(vm_id) is required.
        type: str
      vm_id:
        description:
          - GUID of the VM.
        type: str
      base:
        description:
          - This VM's O(base).
        type: str
      ranges_dir:
        description:
          - This VM's O(ranges_dir).
        type: path
extends_documentation_fragment:
  - hyperv.backup.vm
  - hyperv.backup.catalog
notes:
  - Supports C(check_mode); then range files are not written and every list is returned. When the
    checkpoint does not exist in check mode (the task that makes it ran in check mode too), only the
    base is checked; RV(disks) is empty and RV(changed_bytes) is V(null).
seealso:
  - module: hyperv.backup.recovery_checkpoint
  - module: hyperv.backup.vm_export
author:
  - hyperv.backup contributors (@hyperv-backup)
"""

EXAMPLES = r"""
- name: What changed on web01's disks since last night
  hyperv.backup.disk_changes_info:
    vm: web01
    checkpoint: nightly-2026-11-29
    base: nightly-2026-11-28
  register: changes

- name: Fall back to a full copy when an incremental is impossible
  ansible.builtin.debug:
    msg: "Full backup needed: {{ changes.full_reasons | join('; ') }}"
  when: changes.full_needed

- name: Changed blocks of two VMs in one task
  hyperv.backup.disk_changes_info:
    vms:
      - {vm: web01, base: nightly-2026-11-28}
      - {vm: web02, base: nightly-2026-11-27}
    checkpoint: nightly-2026-11-29
"""

RETURN = r"""
vm:
  description: The virtual machine (filled before any work, also on failure).
  returned: always (with O(vms), in each element of RV(results) instead)
  type: dict
  sample: {name: web01, id: 6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162}
checkpoint:
  description: The checkpoint read.
  returned: always (with O(vms), in each element of RV(results) instead)
  type: str
  sample: nightly-2026-11-29
base:
  description: The base reference point's name.
  returned: always (with O(vms), in each element of RV(results) instead)
  type: str
  sample: nightly-2026-11-28
disks:
  description: One entry per disk of the checkpoint.
  returned: always (with O(vms), in each element of RV(results) instead)
  type: list
  elements: dict
  contains:
    path:
      description: The disk file.
      type: str
      sample: 'D:\Hyper-V\web01\os.vhdx'
    device:
      description: The disk's id without its owner part (the same in the VM, its checkpoints and reference points).
      type: str
      sample: 83F8638B-8DCA-4152-9EDA-2CA8B33039B4\0\0\D
    rct_id:
      description: The base's RCT id of this disk; V(null) when the base does not know the disk.
      type: str
      sample: rctX:5bfde23b:ce75:4303:b54f:6c18394f105c:00000001
    size:
      description: The disk's size in bytes.
      type: int
      sample: 42949672960
    changed_bytes:
      description: Bytes in the changed ranges; V(null) when they could not be read.
      type: int
      sample: 8388608
    range_count:
      description: How many ranges changed.
      type: int
      sample: 2
    ranges:
      description: The changed ranges as [offset, length] pairs (empty when written to RV(disks[].ranges_file)).
      type: list
      elements: list
      sample: [[0, 3145728], [10485760, 5242880]]
    ranges_file:
      description: The JSON file on the host holding the ranges, when there were more than O(max_ranges_inline).
      type: str
      sample: null
changed_bytes:
  description:
    - Total changed bytes of the disks that could be read.
    - V(null) in check mode when the checkpoint does not exist yet.
  returned: always (with O(vms), in each element of RV(results) instead)
  type: int
  sample: 8388608
full_needed:
  description: Whether an incremental is impossible and a full backup is needed.
  returned: always (with O(vms), in each element of RV(results) instead)
  type: bool
  sample: false
full_reasons:
  description: Why a full backup is needed.
  returned: always (with O(vms), in each element of RV(results) instead)
  type: list
  elements: str
  sample: []
results:
  description:
    - With O(vms), one entry per VM in the order given, each with the keys this module returns for one VM
      (RV(vm), RV(checkpoint), RV(base), RV(disks), RV(changed_bytes), RV(full_needed), RV(full_reasons)) and C(changed), C(failed) and, when it failed, C(msg).
  returned: when O(vms) is set
  type: list
  elements: dict
  sample:
    - {vm: {name: web01, id: 6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162}, changed: true, failed: false, pending: false}
    - {vm: {name: db01, id: 0f0e43a1-5c4b-4d0e-8a52-6f5ddc0b7a13}, changed: false, failed: true, msg: '...'}
"""
