# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This file holds the documentation only; the module is backup_info.ps1.

DOCUMENTATION = r"""
---
module: backup_info
short_description: List what can be restored from a backup folder, and whether each chain is whole
version_added: 0.3.0
description:
  - Reads the exports under a folder (what M(hyperv.backup.vm_export) and the role
    C(hyperv.backup.rct_backup) write) and returns each restore point - VM, label, time, full or
    incremental, the chain of exports it needs from the full one, its bytes - and whether it can be
    restored - every export of its chain there, each with every file its marker names, of the size
    the export wrote.
  - Reads the files only, not the catalog or Hyper-V, so it runs on the host that made the backups
    or on any Windows host that can read the folder or share.
  - Takes the role's layout (C(<path>\\<VM name>_<VM GUID>\\<label>)), the layout before VM GUIDs
    (C(<path>\\<VM name>\\<label>)), one VM's folder, or one export folder. VMs are told apart by
    their GUID, never by the folder's name.
  - A restore point that cannot be restored is an answer (RV(restore_points[].complete) false, with
    RV(restore_points[].problems)), not a failure. The task fails only when the folder cannot be read.
  - Changes nothing.
options:
  path:
    description:
      - The folder to read, as the host sees it (C(E:\\Backups\\Hyper-V) or C(\\\\server\\share\\Hyper-V)).
    type: str
    required: true
  vm:
    description:
      - Only this VM's restore points - its GUID (any case, with or without braces) or its name as
        the exports recorded it (exact, case included).
      - Chains are still followed through every export under O(path).
    type: str
  check_files:
    description:
      - Whether to check that every file each marker names is there with its size.
      - V(false) reads the markers only (fast on a slow share), and then RV(restore_points[].complete)
        only says the chain's exports are all there.
    type: bool
    default: true
notes:
  - Supports C(check_mode) (it changes nothing in either mode).
  - An export folder with Hyper-V's files and no marker is an export that never finished; it is
    listed in RV(incomplete), never as a restore point.
  - The changed-blocks method (M(hyperv.backup.disk_changes_info)) writes block ranges for a backup
    product to copy, not restore points; they are not listed.
seealso:
  - module: hyperv.backup.vm_export
  - module: hyperv.backup.destination_info
author:
  - hyperv.backup contributors (@hyperv-backup)
"""

EXAMPLES = r"""
- name: What can be restored from last week's backups
  hyperv.backup.backup_info:
    path: 'E:\Backups\Hyper-V'
  register: backups

- name: Fail the weekly check when a chain is broken, naming what is missing
  ansible.builtin.fail:
    msg: "{{ backups.restore_points | rejectattr('complete') | map(attribute='problems') | flatten }}"
  when: backups.broken > 0

- name: The newest complete restore point of web01, read over the backup share
  hyperv.backup.backup_info:
    path: '\\backup01\hyperv\{{ inventory_hostname }}'
    vm: web01
  register: web01_backups

- name: Show it
  ansible.builtin.debug:
    msg: "web01 can be restored to {{ web01_backups.vms[0].latest }} ({{ web01_backups.vms[0].latest_time }})"
  when: web01_backups.vms | length > 0
"""

RETURN = r"""
path:
  description: The folder read, as given.
  returned: success
  type: str
  sample: 'E:\Backups\Hyper-V'
restore_points:
  description:
    - Every export found (with O(vm), that VM's), ordered by VM, then oldest first.
  returned: success
  type: list
  elements: dict
  contains:
    vm:
      description: The VM, by its GUID (lower case) and its name when it was backed up.
      type: dict
      sample: {id: 6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162, name: web01}
    label:
      description: The backup's label (the recovery checkpoint's, then the reference point's name).
      type: str
      sample: nightly-2026-11-28
    path:
      description: The export's folder, as this host reads it.
      type: str
      sample: 'E:\Backups\Hyper-V\web01_6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162\nightly-2026-11-28'
    time:
      description: When the export finished (UTC, C(yyyy-MM-ddTHH:mm:ssZ)); V(null) when its marker cannot be read.
      type: str
      sample: '2026-11-28T01:14:09Z'
    mode:
      description: V(full) or V(incremental) (the changes since RV(restore_points[].base)).
      type: str
      sample: incremental
    base:
      description: The label of the export this one holds the changes since; V(null) for a full one.
      type: str
      sample: nightly-2026-11-27
    chain:
      description: The labels of the exports a restore of this point needs, the full one first, this one last.
      type: list
      elements: str
      sample: [nightly-2026-11-26, nightly-2026-11-27, nightly-2026-11-28]
    bytes:
      description: Bytes of this export's files, as its marker records them.
      type: int
      sample: 2147483648
    chain_bytes:
      description: Bytes of every export of RV(restore_points[].chain).
      type: int
      sample: 45097156608
    files:
      description: How many files this export's marker names.
      type: int
      sample: 3
    complete:
      description: Whether this point can be restored (no problems, here or in its chain).
      type: bool
      sample: true
    problems:
      description:
        - Why it cannot be restored, each naming the file or export - a file missing or of another
          size than the export wrote, a base not in the folder, a marker that cannot be read, the
          same backup in two folders.
      type: list
      elements: str
      sample: ["it needs 'nightly-2026-11-27', the base of 'nightly-2026-11-28', which is not in this folder"]
vms:
  description: One entry per VM found, by GUID.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: The VM's GUID (lower case).
      type: str
      sample: 6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162
    name:
      description: Its name in its newest export.
      type: str
      sample: web01
    restore_points:
      description: How many restore points it has here.
      type: int
      sample: 7
    complete:
      description: How many of them can be restored.
      type: int
      sample: 7
    latest:
      description: The label of its newest restore point that can be restored; V(null) when none can.
      type: str
      sample: nightly-2026-11-28
    latest_time:
      description: When RV(vms[].latest) finished (UTC).
      type: str
      sample: '2026-11-28T01:14:09Z'
incomplete:
  description: Export folders with Hyper-V's files and no marker (exports that never finished); not restore points.
  returned: success
  type: list
  elements: dict
  contains:
    path:
      description: The folder.
      type: str
      sample: 'E:\Backups\Hyper-V\web01_6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162\nightly-2026-11-29'
    files:
      description: How many files it holds.
      type: int
      sample: 2
    bytes:
      description: Their bytes.
      type: int
      sample: 1073803264
complete:
  description: How many restore points can be restored.
  returned: success
  type: int
  sample: 14
broken:
  description: How many restore points cannot be restored (see RV(restore_points[].problems)).
  returned: success
  type: int
  sample: 0
"""
