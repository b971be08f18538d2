# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This file holds the documentation only; the module is reference_point_info.ps1.

DOCUMENTATION = r"""
---
module: reference_point_info
short_description: List the Hyper-V reference points of VMs with their catalog names
version_added: 0.1.0
description:
  - Lists the reference points (C(Msvm_VirtualSystemReferencePoint)) of one VM, of several VMs,
    or of every VM on the host, joined with the names the catalog gives them.
  - Reference points the catalog does not know were made by other software and are flagged
    RV(reference_points[].foreign=true).
  - Catalog entries whose reference point no longer exists are listed in RV(stale_entries).
  - Changes nothing.
options:
  vm:
    description:
      - Display names of VMs to list. A name that matches no VM or several VMs fails, listing the
        VMs found.
      - With neither O(vm) nor O(vm_id), every VM of the host is listed.
    type: list
    elements: str
    default: []
  vm_id:
    description:
      - GUIDs of VMs to list; may be combined with O(vm).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - hyperv.backup.catalog
notes:
  - Supports C(check_mode); it changes nothing in either mode.
seealso:
  - module: hyperv.backup.reference_point
author:
  - hyperv.backup contributors (@hyperv-backup)
"""

EXAMPLES = r"""
- name: List the reference points of every VM on the host
  hyperv.backup.reference_point_info:
  register: all_points

- name: List those of two VMs
  hyperv.backup.reference_point_info:
    vm:
      - web01
      - db01
  register: points

- name: Reference points made by other software
  ansible.builtin.debug:
    msg: "{{ points.reference_points | selectattr('foreign') | map(attribute='instance_id') | list }}"
"""

RETURN = r"""
vms:
  description: The VMs listed.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Display name.
      type: str
      sample: web01
    id:
      description: GUID.
      type: str
      sample: 6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162
reference_points:
  description: Every reference point of the VMs listed.
  returned: always
  type: list
  elements: dict
  contains:
    instance_id:
      description: Hyper-V's C(InstanceID) of the reference point; opaque, do not parse.
      type: str
      sample: Microsoft:5B1F4A0C-3C1E-4C55-9C1B-7E0F7C3A9D11
    name:
      description: The catalog name; V(null) for a foreign reference point.
      type: str
      sample: nightly-2026-11-28
    type:
      description: V(rct), V(log), or V(unknown).
      type: str
      sample: rct
    consistency:
      description: V(application), V(crash), or V(unknown).
      type: str
      sample: application
    vm_name:
      description: Display name of the VM.
      type: str
      sample: web01
    vm_id:
      description: GUID of the VM.
      type: str
      sample: 6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162
    disks:
      description: One pair per virtual disk.
      type: list
      elements: dict
      contains:
        disk_id:
          description: The disk's C(VirtualDiskIdentifiers) entry.
          type: str
          sample: Microsoft:6B4A5C2E-0D8C-4F7A-9A57-1D2E3F405162\\83F8638B-8DCA-4152-9EDA-2CA8B33039B4\\0\\0\\D
        rct_id:
          description: RCT id of the disk at that reference point.
          type: str
          sample: rctX:5bfde23b:ce75:4303:b54f:6c18394f105c:00000001
    disks_aligned:
      description: Whether Hyper-V returned as many RCT ids as disk ids.
      type: bool
      sample: true
    created:
      description: When the collection made it (UTC); V(null) when foreign.
      type: str
      sample: '2026-11-28T01:00:12Z'
    run_id:
      description: The run that made it, as recorded.
      type: str
      sample: awx-118
    mode:
      description: V(full) or V(incremental) when the reference point closed a backup of M(hyperv.backup.recovery_checkpoint); else V(null).
      type: str
      sample: incremental
    base:
      description: The name of the reference point an incremental backup was taken against; V(null) for a full one.
      type: str
      sample: nightly-2026-11-27
    foreign:
      description: Whether the catalog does not know it.
      type: bool
      sample: false
stale_entries:
  description: Catalog entries of the VMs listed whose reference point no longer exists, or whose creation has not been seen to end.
  returned: always
  type: list
  elements: dict
  contains:
    vm_id:
      description: GUID of the VM.
      type: str
      sample: 6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162
    vm_name:
      description: Display name of the VM when the entry was made.
      type: str
      sample: web01
    name:
      description: The name.
      type: str
      sample: nightly-2026-11-20
    instance_id:
      description: The InstanceID recorded; V(null) while pending.
      type: str
      sample: Microsoft:0C6C2E11-87A4-4E0E-8B8C-8B3F0C1D2E3F
    status:
      description: V(ready) or V(pending) (a creation job not yet seen to end).
      type: str
      sample: ready
    job_id:
      description: The creation job's id, when one ran.
      type: str
      sample: 2D7CF5B5-3F0A-4F12-9A8E-0E3F29E1C0B4
    type:
      description: The type asked for.
      type: str
      sample: rct
    consistency:
      description: The consistency asked for.
      type: str
      sample: application
    created:
      description: When the entry was made (UTC).
      type: str
      sample: '2026-11-20T01:00:09Z'
    run_id:
      description: The run that made it.
      type: str
      sample: awx-110
    mode:
      description: V(full) or V(incremental) for a reference point that closed a backup.
      type: str
      sample: full
    base:
      description: The reference point an incremental was taken against.
      type: str
      sample: null
    known_before:
      description:
        - InstanceIDs of the VM's reference points when the creation started. When Hyper-V has
          forgotten the job, or the job does not name what it made, the reference point it made is
          the one that is neither among these nor recorded in the catalog.
      type: list
      elements: str
      sample: []
      version_added: 0.2.0
catalog_path:
  description: The catalog that was read.
  returned: always
  type: str
  sample: C:\\ProgramData\\hyperv.backup\\catalog.json
"""
