# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This file holds the documentation only; the module is reference_point.ps1.

DOCUMENTATION = r"""
---
module: reference_point
short_description: Create or remove a named Hyper-V reference point of a VM
version_added: 0.1.0
description:
  - Creates or removes a reference point (C(Msvm_VirtualSystemReferencePoint)) of one virtual
    machine through C(Msvm_VirtualSystemReferencePointService), idempotently, in one WinRM round
    trip.
  - A reference point remembers the Resilient Change Tracking (RCT) id of each virtual disk, so a
    later backup can ask what changed since then. It holds no disk data.
  - Hyper-V gives reference points no label, so the name is kept in a catalog on the host (see
    O(catalog_path)). A name whose creation was started by an earlier run that never saw the end
    (for example the controller died) is resolved from that run's job, never created twice.
  - Long operations run as Hyper-V jobs. The module waits up to O(wait_timeout) seconds on the
    host; a job still running then is followed from the controller (see O(job_timeout)), with
    progress, surviving dropped connections, and the result recorded in the catalog once it ends.
  - On success sets the fact C(hyperv_backup.reference_points[<VM id>][<name>]) to
    RV(reference_point) (removed again by O(state=absent)), so later tasks and roles can use it
    without C(register). The VM id is the GUID in lower case (RV(vm.id)), never the name, which
    two VMs may share; each point carries C(vm_name) and C(vm_id).
  - Reference points the catalog does not know were made by other software (a backup product may
    depend on them) and are only removed with O(allow_foreign=true).
options:
  name:
    description:
      - The label of the reference point; what makes O(state=present) idempotent.
      - Unique per VM in the catalog.
      - Exactly one of O(name) and O(instance_id) is required, for the task or for each entry of O(vms);
        O(state=present) needs O(name).
    type: str
  instance_id:
    description:
      - The C(InstanceID) of the reference point to remove, as returned in
        RV(reference_point.instance_id) or by M(hyperv.backup.reference_point_info).
      - Only with O(state=absent).
    type: str
  state:
    description:
      - V(present) makes sure a reference point with this O(name) exists for the VM.
      - V(absent) removes the one with this O(name) or O(instance_id); a reference point that
        is gone already changes nothing.
    type: str
    choices: [absent, present]
    default: present
  type:
    description:
      - V(rct) for a reference point based on Resilient Change Tracking of the virtual disks
        (incremental backups).
      - V(log) for one based on Hyper-V Replica log tracking.
    type: str
    choices: [log, rct]
    default: rct
  consistency:
    description:
      - Consistency level asked of Hyper-V (C(Msvm_VirtualSystemReferencePointSettingData.ConsistencyLevel)).
      - Hosts that do not support it answer Invalid Parameter, which the task reports as its failure.
    type: str
    choices: [application, crash]
    default: application
  allow_foreign:
    description:
      - Allow O(state=absent) with O(instance_id) to remove a reference point the catalog does not
        know (made by other software).
    type: bool
    default: false
  run_id:
    description:
      - Free text recorded in the catalog with a new reference point, to tell which run made it
        (for example the AWX job id).
    type: str
    default: ''
  wait_timeout:
    description:
      - Seconds the module waits on the host for a Hyper-V job in its own round trip, before the
        controller takes over following it (O(job_timeout)); counted from when it has started the
        job of every VM of the task.
      - V(0) returns at once after starting the job.
    type: int
    default: 30
  vms:
    description:
      - Several reference points in one task, instead of O(vm) or O(vm_id) - one round trip for all of them
        rather than one task each (for example every reference point that retention removes on a host).
      - Each element selects a VM with C(vm) (display name) or C(vm_id) (GUID) and may give its own C(name)
        or C(instance_id); the task's values apply where it does not. A VM may be listed once per reference point.
      - Every creation or removal is started first, then the jobs run side by side on the host and are waited
        on together (up to O(wait_timeout) on the host, then O(job_timeout) from the controller).
      - One entry's failure does not stop the others. The result has one entry per element in RV(results); the
        task fails when any failed, with a message naming each.
    type: list
    elements: dict
    version_added: 0.2.0
    suboptions:
      vm:
        description:
          - Display name of the VM. Exactly one of C(vm) and C(vm_id) is required.
        type: str
      vm_id:
        description:
          - GUID of the VM.
        type: str
      name:
        description:
          - This entry's O(name).
        type: str
      instance_id:
        description:
          - This entry's O(instance_id).
        type: str
extends_documentation_fragment:
  - hyperv.backup.vm
  - hyperv.backup.catalog
  - hyperv.backup.job_wait
notes:
  - Needs Windows Server 2016 or Windows 10 or later with the Hyper-V role, and an account in
    Hyper-V Administrators or the local Administrators group.
  - RCT reference points need VHDX disks and VM configuration version 6.2 or later; a VM with a VHD,
    VHD Set (.vhds) or pass-through disk, or an older version, is refused before any change.
  - A VM that is off gets a crash-consistent reference point (with a warning); a saved or paused one
    is refused for O(consistency=application).
  - On Windows Server 2016, which lacks Msvm_VirtualSystemReferencePointSettingData, creating fails
    naming that class; reference points made by converting a recovery checkpoint work there.
  - Supports C(check_mode) and C(diff) (the catalog entry before and after).
  - With the C(async) task keyword the module waits on the host itself, up to the async time counted
    from when its jobs have started; ansible ends the module at the async time itself, so with many VMs
    in O(vms) give C(async) the seconds it takes to start their jobs (about one per VM) more.
seealso:
  - module: hyperv.backup.reference_point_info
  - name: CreateReferencePoint method of the Msvm_VirtualSystemReferencePointService class
    description: Microsoft's reference.
    link: https://learn.microsoft.com/en-us/windows/win32/hyperv_v2/createreferencepoint-msvm-virtualsystemreferencepointservice
author:
  - hyperv.backup contributors (@hyperv-backup)
"""

EXAMPLES = r"""
- name: Make sure tonight's reference point of web01 exists
  hyperv.backup.reference_point:
    vm: web01
    name: nightly-2026-11-28
  register: rp

- name: Show the RCT id of each disk
  ansible.builtin.debug:
    msg: "{{ rp.reference_point.disks | map(attribute='rct_id') | list }}"

- name: Create by VM GUID with a crash-consistent setting, following the job for up to 2 hours
  hyperv.backup.reference_point:
    vm_id: 6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162
    name: weekly
    consistency: crash
    run_id: "awx-{{ awx_job_id | default('manual') }}"
    job_timeout: 7200

- name: Use the fact the task above set (keyed by the VM's GUID in lower case)
  ansible.builtin.debug:
    msg: "{{ hyperv_backup.reference_points['6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162']['weekly'].instance_id }}"

- name: Remove a reference point by name
  hyperv.backup.reference_point:
    vm: web01
    name: nightly-2026-11-27
    state: absent

- name: Remove a reference point made by other software, by its InstanceID
  hyperv.backup.reference_point:
    vm: web01
    instance_id: "{{ foreign_id }}"
    allow_foreign: true
    state: absent

- name: Remove the reference points of two VMs in one task (as retention does)
  hyperv.backup.reference_point:
    vms:
      - {vm: web01, instance_id: 'Microsoft:5B1F4A0C-3C1E-4C55-9C1B-7E0F7C3A9D11'}
      - {vm: web01, instance_id: 'Microsoft:0C4E7D11-2A6B-4F0E-8F3D-1B2C3D4E5F60'}
      - {vm: db01, name: nightly-2026-11-20}
    state: absent
"""

RETURN = r"""
vm:
  description: The virtual machine the task was about (filled before any work, also on failure).
  returned: always (with O(vms), in each element of RV(results) instead)
  type: dict
  contains:
    name:
      description: Display name.
      type: str
      sample: web01
    id:
      description: GUID.
      type: str
      sample: 6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162
reference_point:
  description:
    - The reference point that exists after the task, with its catalog name.
    - V(null) after O(state=absent), in check mode before a creation, and while the creation job runs.
  returned: always (with O(vms), in each element of RV(results) instead)
  type: dict
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
      description: V(application), V(crash), or V(unknown) as Hyper-V reports it.
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
      description: One pair per virtual disk, aligned as Hyper-V returns them.
      type: list
      elements: dict
      contains:
        disk_id:
          description: The disk's C(VirtualDiskIdentifiers) entry.
          type: str
          sample: Microsoft:6B4A5C2E-0D8C-4F7A-9A57-1D2E3F405162\\83F8638B-8DCA-4152-9EDA-2CA8B33039B4\\0\\0\\D
        rct_id:
          description: The RCT id to ask for changes since this reference point.
          type: str
          sample: rctX:5bfde23b:ce75:4303:b54f:6c18394f105c:00000001
    disks_aligned:
      description: Whether Hyper-V returned as many RCT ids as disk ids; V(false) means the pairs cannot be trusted.
      type: bool
      sample: true
    created:
      description: When the collection made it (UTC, from the catalog); V(null) when foreign.
      type: str
      sample: '2026-11-28T01:00:12Z'
    run_id:
      description: The O(run_id) recorded when it was made.
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
      description: Whether the catalog does not know it (made by other software).
      type: bool
      sample: false
job:
  description:
    - The Hyper-V job the task started or followed; V(null) when none ran.
  returned: always (with O(vms), in each element of RV(results) instead)
  type: dict
  contains:
    id:
      description: The job's C(InstanceID); wait on it with M(hyperv.backup.reference_point) again.
      type: str
      sample: 2D7CF5B5-3F0A-4F12-9A8E-0E3F29E1C0B4
    state:
      description: Job state (V(running), V(completed), V(exception), ...), or V(gone) when the host no longer has it.
      type: str
      sample: completed
    state_code:
      description: C(JobState) as a number.
      type: int
      sample: 7
    percent_complete:
      description: C(PercentComplete).
      type: int
      sample: 100
    finished:
      description: Whether the job reached a final state.
      type: bool
      sample: true
    succeeded:
      description: Whether it completed without error.
      type: bool
      sample: true
    cancellable:
      description: Whether the job can be cancelled.
      type: bool
      sample: false
    job_type:
      description: C(JobType) (201 create reference point, 202 delete reference point).
      type: int
      sample: 201
    error_code:
      description: C(ErrorCode); 0 when none.
      type: int
      sample: 0
    error_description:
      description: C(ErrorDescription).
      type: str
      sample: ''
    errors:
      description: The texts of C(GetErrorEx) for a failed job.
      type: list
      elements: str
      sample: []
pending:
  description: Whether the job was still running when the task ended (only with O(job_timeout=0)).
  returned: always (with O(vms), in each element of RV(results) instead)
  type: bool
  sample: false
results:
  description:
    - With O(vms), one entry per element in the order given, each with the keys this module returns for one
      reference point (RV(vm), RV(reference_point), RV(job)) and C(changed), C(failed) and, when it
      failed, C(msg).
    - An entry whose job was still running at the end has C(pending=true) and its RV(job).
  returned: when O(vms) is set
  type: list
  elements: dict
  sample:
    - {vm: {name: web01, id: 6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162}, changed: true, failed: false, pending: false}
"""
