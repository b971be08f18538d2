# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This file holds the documentation only; the module is job_info.ps1 and its action plugin
# plugins/action/job_info.py.

DOCUMENTATION = r"""
---
module: job_info
short_description: Read or wait on Hyper-V jobs by their ids
version_added: 0.1.0
description:
  - Reads a Hyper-V job (C(Msvm_ConcreteJob), or C(Msvm_StorageJob) for the work of the image
    management service) by its C(InstanceID), as returned in RV(job.id) by the modules of this
    collection, with its state, progress and, for a failed job, the error texts of C(GetErrorEx).
  - With O(wait=true) the controller follows the job until it ends or O(job_timeout) passes, so a
    play that lost its controller can wait on the job it started instead of starting a second one.
  - With O(job_ids), reads several jobs in one round trip, after waiting on the host (up to
    O(wait_timeout)) until one of them has ended; the action plugins of this collection follow all
    the jobs of a task this way.
  - Changes nothing; to cancel a job use M(hyperv.backup.job).
options:
  job_id:
    description:
      - The job's C(InstanceID). Exactly one of O(job_id) and O(job_ids) is required.
    type: str
  job_ids:
    description:
      - The C(InstanceID) of several jobs, answered in RV(jobs) in this order.
    type: list
    elements: str
    version_added: 0.2.0
  wait:
    description:
      - Follow the job (O(job_id)) from the controller until it ends or O(job_timeout) passes.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds the module waits on the host in one round trip, until the job (or one of O(job_ids))
        has ended, before answering.
    type: int
    default: 0
extends_documentation_fragment:
  - hyperv.backup.job_wait
notes:
  - Hyper-V forgets finished jobs after a while; such a job is returned with RV(exists=false)
    and RV(job.state=gone), which is not an error.
  - Supports C(check_mode).
seealso:
  - module: hyperv.backup.job
  - module: hyperv.backup.reference_point
author:
  - hyperv.backup contributors (@hyperv-backup)
"""

EXAMPLES = r"""
- name: Start a reference point without waiting on the job (neither on the host nor from the controller)
  hyperv.backup.reference_point:
    vm: web01
    name: nightly
    wait_timeout: 0
    job_timeout: 0
  register: rp

- name: Wait on that job later (also works from another play, with the id saved somewhere)
  hyperv.backup.job_info:
    job_id: "{{ rp.job.id }}"
    wait: true
    job_timeout: 7200
  when: rp.pending

- name: Read two jobs at once
  hyperv.backup.job_info:
    job_ids:
      - 2D7CF5B5-3F0A-4F12-9A8E-0E3F29E1C0B4
      - 8E0C43A1-77B2-4C5D-A1B0-5C1F2E3D4A5B
  register: both
"""

RETURN = r"""
exists:
  description: Whether the host still has the job.
  returned: with O(job_id)
  type: bool
  sample: true
jobs:
  description:
    - Each job of O(job_ids), in that order, with the fields of RV(job); a job the host no longer has
      is only C(id) and C(state=gone).
  returned: with O(job_ids)
  type: list
  elements: dict
  sample: [{id: 2D7CF5B5-3F0A-4F12-9A8E-0E3F29E1C0B4, state: completed, state_code: 7, finished: true, succeeded: true}]
job:
  description: The job.
  returned: with O(job_id)
  type: dict
  contains:
    id:
      description: The job's C(InstanceID).
      type: str
      sample: 2D7CF5B5-3F0A-4F12-9A8E-0E3F29E1C0B4
    state:
      description: Job state (V(running), V(completed), V(exception), V(terminated), ...), or V(gone).
      type: str
      sample: running
    state_code:
      description: C(JobState) as a number.
      type: int
      sample: 4
    percent_complete:
      description: C(PercentComplete).
      type: int
      sample: 42
    finished:
      description: Whether the job reached a final state.
      type: bool
      sample: false
    succeeded:
      description: Whether it completed without error.
      type: bool
      sample: false
    cancellable:
      description: Whether the job can be cancelled.
      type: bool
      sample: true
    job_type:
      description: C(JobType) (201 create reference point, 202 delete reference point, 70 create snapshot, 62 export).
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
"""
