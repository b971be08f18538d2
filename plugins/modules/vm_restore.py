# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This file holds the documentation only; the module is vm_restore.ps1.

DOCUMENTATION = r"""
---
module: vm_restore
short_description: Restore a VM's backup as a new VM or over the VM itself, or remove such a restore
version_added: 0.3.0
description:
  - Restores one restore point of a VM (a full export and the differentials after it, as
    M(hyperv.backup.backup_info) lists them) as a new VM with a new id, under a new name, into a
    target folder; with O(replace=true), over the backed-up VM itself.
  - Each disk is copied from the full export into O(folder), and each differential of the chain is
    copied next to it, re-parented onto it and merged into it in order
    (C(Msvm_ImageManagementService) C(SetParentVirtualHardDisk) and C(MergeVirtualHardDisk)), so
    the restored VM has one disk per drive, holding what the VM's disk held at that backup.
  - The VM's configuration from that backup is imported with a new identifier
    (C(ImportSystemDefinition)), named O(name), pointed at the restored disks, its network adapters
    connected to their switches by name (O(switch_map) to map them), validated and registered
    (C(ValidatePlannedSystem), C(RealizePlannedSystem)). Optionally started, with a wait for the
    guest's heartbeat.
  - The backup files are only read. A chain that cannot be restored (an export missing, a file
    missing or cut short) is refused before anything is written, naming the file.
  - A failure at any step removes what the task made - the imported VM, the files it wrote, the
    folders it made - and says so; the message names what could not be removed, if anything. The
    one exception is O(replace=true) once the VM replaced may be gone - the restored VM is then kept
    (see O(replace)).
  - Idempotent by O(name) and O(folder) - the folder's restore marker records the VM it made; a
    second run finds it and changes nothing. O(state=absent) removes a restore recorded in
    O(folder) (its VM, turned off first, and its files) and nothing else.
options:
  name:
    description:
      - The restored VM's display name. It must not be the name of any VM on the host, unless
        that VM is the restore recorded in O(folder), or O(replace=true) and that VM is the backed-up VM.
    type: str
    required: true
  replace:
    description:
      - Restore over the backed-up VM. When a VM named O(name) exists and is the VM the backup is of
        (same id), it is replaced - the restore is made and registered first, then that VM's
        reference points are removed (C(DestroyReferencePoint)) and the VM is removed from the host
        (C(DestroySystem)). Its disk files are kept where they are (RV(replaced.files_kept), and a
        warning), for you to delete once the restored VM is checked.
      - Refused, with nothing changed, when that VM is not the backed-up VM, is not off (shut it down
        first), or has checkpoints (what removing a VM does with its checkpoints' files is not
        documented; delete them first, which merges them into its disks).
      - It is checked again just before it is removed (it may have been started or checkpointed during
        a long restore). All its reference points go, this collection's and any other backup
        product's - DestroySystem of a VM with reference points is not documented either.
      - Until that VM is removed, a failure removes the restore and leaves it in place (the message
        says which of its reference points are gone, if any - its next backup cannot be a
        differential one). When Hyper-V does not say whether it removed the VM (a timeout, a job
        that vanished), the restored VM is kept and the restore recorded as not finished; run the
        task again - once that VM is gone, it records the restore as done.
      - The restored VM has a new id; its next backup is a full export into a folder of its own. The
        backups of the VM it replaced stay, and can still be restored - by its GUID in O(vm) once the
        restored VM has been backed up too (the backups then hold two VMs of that name).
      - Not for clustered VMs - the restored VM is not made highly available, and the cluster would
        keep a role for the VM removed.
      - When no VM is named O(name), the restore is made as without this option (RV(replaced) is V(null)).
    type: bool
    default: false
  folder:
    description:
      - The target folder, a full path on the host (C(D:\\Restore\\web01-restored)). It must be new
        or empty; it gets the restored disks (C(Virtual Hard Disks)), the configuration
        (C(Virtual Machines)) and the restore marker C(hyperv.backup-restore.json).
    type: str
    required: true
  state:
    description:
      - V(present) restores; V(absent) removes the restore recorded in O(folder).
      - After a O(replace=true), V(absent) removes the restored VM, which is then the only copy -
        the VM it replaced is not brought back (restore it again for that). A replace that was not
        recorded as done while the VM replaced is gone is refused - run V(present) again first.
    type: str
    choices: [present, absent]
    default: present
  path:
    description:
      - The backup folder, as M(hyperv.backup.backup_info) reads it. Required with O(state=present).
    type: str
  vm:
    description:
      - The backed-up VM - its GUID, or its name as the exports recorded it. Required with O(state=present).
    type: str
  restore_point:
    description:
      - The backup's label, or V(latest) for the newest restore point that can be restored.
    type: str
    default: latest
  switch_map:
    description:
      - Switch names to use on this host, by the name of the switch each adapter was on when backed up.
      - An adapter whose switch this host does not have is left disconnected, with a warning.
    type: dict
    default: {}
  connect_network:
    description:
      - V(false) leaves every network adapter disconnected (a restore test that must not reach the network).
    type: bool
    default: true
  start:
    description:
      - Start the restored VM and wait up to O(heartbeat_timeout) seconds for its heartbeat to be
        OK; the task fails when it is not (the VM is left running, for a look at its console).
    type: bool
    default: false
  heartbeat_timeout:
    description: Seconds to wait for the heartbeat after a start.
    type: int
    default: 300
  step_timeout:
    description:
      - Seconds to wait for each Hyper-V job of the restore (a merge of a large disk takes long).
    type: int
    default: 3600
notes:
  - Supports C(check_mode) - it reads the backup and says what would be restored (RV(source), RV(disks)) and replaced
    (RV(replaced)), and writes nothing.
  - Runs on the host that gets the VM; the backup folder may be a share it can read (see the second hop in docs/awx.md).
    Hyper-V's own service reads the disks' headers there as the host's computer account, so the
    share must let that account read too.
  - Disks are matched to the chain by file name. A VM whose disks were differencing disks (of a
    template, or with checkpoints) when backed up has other file names in its exports; its restore
    is refused before any change. ISO paths in the configuration are kept as they were.
  - With O(replace=true), the folder must still be new or empty - the restored VM's files do not go where the replaced VM's were.
seealso:
  - module: hyperv.backup.backup_info
  - module: hyperv.backup.vm_export
author:
  - hyperv.backup contributors (@hyperv-backup)
"""

EXAMPLES = r"""
- name: Restore web01 as it was last night, as web01-restored
  hyperv.backup.vm_restore:
    path: 'E:\Backups\Hyper-V'
    vm: web01
    name: web01-restored
    folder: 'D:\Restore\web01-restored'
  register: restored

- name: Restore an older backup onto another switch, and start it
  hyperv.backup.vm_restore:
    path: '\\backup01\hyperv\hv01'
    vm: 6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162
    restore_point: nightly-2026-11-26
    name: web01-1126
    folder: 'D:\Restore\web01-1126'
    switch_map:
      LAN: LAN-isolated
    start: true

- name: Bring web01 back over itself from last night (shut it down first; its old disks are kept and listed)
  hyperv.backup.vm_restore:
    path: 'E:\Backups\Hyper-V'
    vm: web01
    name: web01
    folder: 'D:\VMs\web01-restored'
    replace: true
  register: replaced

- name: A restore test - boot without network, check the heartbeat, then remove it all
  block:
    - name: Restore and boot
      hyperv.backup.vm_restore:
        path: 'E:\Backups\Hyper-V'
        vm: web01
        name: web01-restore-test
        folder: 'D:\RestoreTest\web01'
        connect_network: false
        start: true
  always:
    - name: Remove the test VM and its files
      hyperv.backup.vm_restore:
        name: web01-restore-test
        folder: 'D:\RestoreTest\web01'
        state: absent
"""

RETURN = r"""
folder:
  description: The target folder, as given.
  returned: always
  type: str
  sample: 'D:\Restore\web01-restored'
vm:
  description:
    - The restored VM - its new id (lower case), its name and its state (V(off), V(running)).
    - In check mode the id is V(null).
  returned: when a restore was found, made or removed
  type: dict
  sample: {id: 0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0, name: web01-restored, state: off}
source:
  description: The restore point restored.
  returned: with O(state=present), when the restore point was found
  type: dict
  contains:
    vm:
      description: The backed-up VM (its GUID and name when backed up).
      type: dict
      sample: {id: 6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162, name: web01}
    restore_point:
      description: The backup's label.
      type: str
      sample: nightly-2026-11-28
    time:
      description: When its export finished (UTC).
      type: str
      sample: '2026-11-28T01:14:09Z'
    mode:
      description: V(full) or V(incremental).
      type: str
      sample: incremental
    chain:
      description: The labels of the exports used, the full one first.
      type: list
      elements: str
      sample: [nightly-2026-11-26, nightly-2026-11-27, nightly-2026-11-28]
    path:
      description: The restore point's export folder.
      type: str
      sample: 'E:\Backups\Hyper-V\web01_6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162\nightly-2026-11-28'
disks:
  description: Each disk restored (or, in check mode, to restore) - its file name, the backup files it is made from in order, and how many merges that takes.
  returned: with O(state=present), when a restore was planned or made
  type: list
  elements: dict
  sample: [{name: web01.vhdx, from: ['E:\Backups\...\nightly-2026-11-26\web01\Virtual Hard Disks\web01.vhdx'], merges: 0}]
network:
  description:
    - Each network adapter - the switch it was on when backed up, the switch it is connected to
      now (V(null) when none), whether it is connected, and why not.
  returned: when a restore was made
  type: list
  elements: dict
  sample: [{adapter: 0, backed_up_switch: LAN, switch: LAN, connected: true, reason: null}]
validation:
  description: What Hyper-V reported when validating the imported VM (also given as warnings).
  returned: when a restore was made
  type: list
  elements: str
  sample: []
replaced:
  description:
    - With O(replace=true), the VM replaced (or, in check mode, to replace) - its id and name, the
      reference points removed with it (in check mode, those it has), and its disk files, which are kept.
    - V(null) when no VM was replaced.
  returned: with O(state=present), when a restore was planned, made or found
  type: dict
  contains:
    vm:
      description: The VM replaced - its id (lower case) and name.
      type: dict
      sample: {id: 6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162, name: web01}
    reference_points:
      description: The InstanceIDs of the reference points removed with it (in check mode, those it has).
      type: list
      elements: str
      sample: ['Microsoft:6B4A5C2E-0D8C-4F7A-9A57-1D2E3F405162:1']
    files_kept:
      description: Its virtual hard disk files, kept where they are.
      type: list
      elements: str
      sample: ['D:\VMs\web01\web01.vhdx']
heartbeat:
  description: The guest's heartbeat after a start - V(ok), V(no_contact), V(lost_communication) or V(none).
  returned: with O(start)
  type: str
  sample: ok
"""
