# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This file holds the documentation only; the module is vm_export.ps1.

DOCUMENTATION = r"""
---
module: vm_export
short_description: Export a VM's recovery checkpoint, full or incremental, to a directory on the host
version_added: 0.1.0
description:
  - Exports the recovery checkpoint O(checkpoint) (made by M(hyperv.backup.recovery_checkpoint)) with
    C(ExportSystemDefinition) and C(Msvm_VirtualSystemExportSettingData) to O(destination) on the
    Hyper-V host.
  - Without O(base) the export is full; with O(base) (the catalog name of an earlier reference point
    of the VM) it holds only what changed since then (C(DifferentialBackupBase)).
  - Idempotent by destination - a complete export leaves a marker file
    C(hyperv.backup-export.json) and is not redone. A destination with files but no marker is a
    partial export (a run that failed) and is reported; it is removed and redone only with
    O(overwrite_partial=true).
  - Jobs that outlive O(wait_timeout) are followed from the controller (O(job_timeout)).
options:
  checkpoint:
    description:
      - The name of the recovery checkpoint to export (O(hyperv.backup.recovery_checkpoint#module:name)).
    type: str
    required: true
  destination:
    description:
      - Directory on the Hyper-V host (local or UNC path) to export into; created when missing.
      - One destination per export; a destination holding another complete export is refused.
      - Required, for the task or for each VM of O(vms).
      - Before the export starts (check mode too), refused with nothing changed when it is not a full
        path (a drive and its root, or a share), when neither it nor a parent it would be created in
        exists, when the account the module runs as cannot write a file there (a share beyond the
        WinRM second hop, missing rights), or, for a full export to a local volume, when less is free
        than the disks' files and O(free_space_margin). M(hyperv.backup.destination_info) runs the
        same checks alone.
    type: path
  free_space_margin:
    description:
      - Percent added to the size of the disks' files (C(FileSize) of each virtual disk) that must be
        free at a local O(destination) before a full export starts. Not checked for an incremental,
        whose size is known only once written, nor on a share, whose free space the host cannot see.
    type: int
    default: 10
    version_added: 0.3.0
  base:
    description:
      - Catalog name of the reference point to export changes since. Fails when it no longer exists
        (take a full export then).
    type: str
  fallback_to_full:
    description:
      - When an incremental export is impossible, export in full instead, with a warning, and say why
        in RV(full_reason). Impossible means the base reference point is gone, the VM's disk set changed
        since it (a disk added, removed or replaced), or its change tracking data is no longer valid
        (Hyper-V reports 0xC03A0029, 0xC03A0030 or 0xC03A002A; the VM moved, a disk was recreated, the
        RCT log aged out).
      - Without it such an export fails, saying why.
    type: bool
    default: false
  overwrite_partial:
    description:
      - Remove a partial export found at O(destination) and export again.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds the module waits on the host for the export job in its own round trip, counted from when
        it has started the job of every VM of the task.
    type: int
    default: 30
  vms:
    description:
      - Several VMs of the host in one task, instead of O(vm) or O(vm_id) - one round trip for all of them
        rather than one task per VM.
      - Each element selects one VM with C(vm) (display name) or C(vm_id) (GUID) and may set its own
        values of the options listed below; the task's values apply where it does not.
      - The work of every VM is started first, then the jobs run side by side on the host and are waited
        on together (up to O(wait_timeout) on the host, then O(job_timeout) from the controller).
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
      destination:
        description:
          - This VM's O(destination).
        type: path
      base:
        description:
          - This VM's O(base).
        type: str
extends_documentation_fragment:
  - hyperv.backup.vm
  - hyperv.backup.catalog
  - hyperv.backup.job_wait
notes:
  - Supports C(check_mode), reporting RV(mode) and RV(full_reason) as the export would have them.
    When the recovery checkpoint does not exist in check mode (the task that makes it ran in check
    mode too), the VM's own disks stand in for the checkpoint's in the disk-set comparison.
  - The module holds a lock on each destination it exports into until it exits (a file in the folder
    of O(catalog_path) on the host); a second run for the same destination waits for it, up to
    O(wait_timeout) seconds and one minute more, then fails saying another run is exporting there.
  - Each export job is recorded in C(pending-exports.json) in that folder from its start until the
    export is recorded or has failed. A run of the same VM and label into the same destination
    meanwhile (a controller killed while it followed a longer job, and the task run again) follows
    that job, with a warning, and records the export with the job's mode and base, instead of
    refusing its files as a partial export or exporting again. A run of another VM or label into
    that destination is refused while Hyper-V has the job (running, or ended and not recorded yet).
    A job Hyper-V has forgotten (five minutes after it ended) leaves a partial export, handled as
    O(overwrite_partial) says; each run not in check mode drops the records of such jobs.
seealso:
  - module: hyperv.backup.recovery_checkpoint
author:
  - hyperv.backup contributors (@hyperv-backup)
"""

EXAMPLES = r"""
- name: Full export of tonight's checkpoint
  hyperv.backup.vm_export:
    vm: web01
    checkpoint: nightly-2026-11-28
    destination: '\\backup01\hyperv\web01\2026-11-28'
    job_timeout: 14400

- name: Differential export against the last reference point
  hyperv.backup.vm_export:
    vm: web01
    checkpoint: nightly-2026-11-29
    base: nightly-2026-11-28
    destination: '\\backup01\hyperv\web01\2026-11-29'

- name: Export two VMs in one task, each to its own directory and against its own base
  hyperv.backup.vm_export:
    vms:
      - vm: web01
        destination: '\\backup01\hyperv\web01\2026-11-29'
        base: nightly-2026-11-28
      - vm: web02
        destination: '\\backup01\hyperv\web02\2026-11-29'
    checkpoint: nightly-2026-11-29
    fallback_to_full: true
    job_timeout: 14400
"""

RETURN = r"""
vm:
  description: The virtual machine (filled before any work, also on failure).
  returned: always (with O(vms), in each element of RV(results) instead)
  type: dict
  sample: {name: web01, id: 6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162}
destination:
  description: The export directory.
  returned: always (with O(vms), in each element of RV(results) instead)
  type: str
  sample: '\\backup01\hyperv\web01\2026-11-28'
mode:
  description:
    - V(full), or V(incremental) (only what changed since RV(base); Hyper-V's differential export,
      C(DifferentialBackupBase)). The same word as the catalog's mode and the role's
      C(rct_backup_mode).
  returned: always (with O(vms), in each element of RV(results) instead)
  type: str
  sample: full
base:
  description: The base reference point's name of an incremental export.
  returned: always (with O(vms), in each element of RV(results) instead)
  type: str
  sample: null
full_reason:
  description: Why an export asked to be incremental is full (see O(fallback_to_full)); V(null) otherwise.
  returned: always (with O(vms), in each element of RV(results) instead)
  type: str
  sample: "the VM's disk set changed since 'nightly-2026-11-27' (1 added, 0 removed)"
files:
  description: The exported files with their sizes in bytes (path and size).
  returned: always (with O(vms), in each element of RV(results) instead)
  type: list
  elements: dict
  sample: [{path: 'D:\Backup\web01\Virtual Hard Disks\os.vhdx', size: 4294967296}]
bytes:
  description:
    - Total size of the exported files.
    - In check mode, what a full export would copy (the disks' files); V(null) for an incremental,
      whose size is known only once Hyper-V has written it.
  returned: always (with O(vms), in each element of RV(results) instead)
  type: int
  sample: 4294967296
job:
  description: The export job (fields as in M(hyperv.backup.job_info)); V(null) when none ran.
  returned: always (with O(vms), in each element of RV(results) instead)
  type: dict
  sample: {id: 2D7CF5B5-3F0A-4F12-9A8E-0E3F29E1C0B4, state: completed, percent_complete: 100}
pending:
  description: Whether the job was still running when the task ended (only with O(job_timeout=0)).
  returned: always (with O(vms), in each element of RV(results) instead)
  type: bool
  sample: false
results:
  description:
    - With O(vms), one entry per VM in the order given, each with the keys this module returns for one VM
      (RV(vm), RV(destination), RV(mode), RV(base), RV(full_reason), RV(files), RV(bytes), RV(job)) and C(changed), C(failed) and, when it failed, C(msg).
    - A VM whose job was still running at the end has C(pending=true) and its RV(job).
  returned: when O(vms) is set
  type: list
  elements: dict
  sample:
    - {vm: {name: web01, id: 6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162}, changed: true, failed: false, pending: false}
    - {vm: {name: db01, id: 0f0e43a1-5c4b-4d0e-8a52-6f5ddc0b7a13}, changed: false, failed: true, msg: '...'}
"""
