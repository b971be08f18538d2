# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Options handled on the controller, validated from their documentation (internal to this collection).

The controller options of the modules that start jobs are declared once, in the doc fragment
hyperv.backup.job_wait (and, for job_info's wait, in its doc stub); the argument spec the action
plugins validate with is read from that YAML, as ansible.utils validates plugin options from
their DOCUMENTATION.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.hyperv.backup.plugins.doc_fragments.job_wait import ModuleDocFragment

_SPEC_KEYS = ("type", "default", "choices", "elements", "required")
# The option only the collection sets, on its reruns of a module (documented as internal by the
# doc fragment hyperv.backup.vm); a task that sets it is refused.
INTERNAL = "_resume"


def argument_spec(documentation: str) -> dict[str, dict[str, Any]]:
    """An argument spec from the options of a DOCUMENTATION text (types, defaults, choices)."""
    options = (yaml.safe_load(documentation) or {}).get("options") or {}
    return {name: {key: value for key, value in data.items() if key in _SPEC_KEYS} for name, data in options.items()}


JOB_WAIT_SPEC: dict[str, dict[str, Any]] = argument_spec(ModuleDocFragment.DOCUMENTATION)


def split(args: dict[str, Any], spec: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the module's arguments, the validated controller options) of a task's arguments."""
    if INTERNAL in args:
        raise AnsibleActionFail(f"{INTERNAL} is internal to hyperv.backup: its action plugins set it when they run a module again "
                                "for a job that ended. Remove it from the task; nothing was run.")
    _check_vms(args.get("vms"))
    module_args = {name: value for name, value in args.items() if name not in spec}
    validated = ArgumentSpecValidator(spec).validate({name: value for name, value in args.items() if name in spec})
    if validated.error_messages:
        raise AnsibleActionFail("; ".join(validated.error_messages))
    options = validated.validated_parameters
    for name in ("job_timeout", "connection_retries"):
        if name in options and options[name] < 0:
            raise AnsibleActionFail(f"{name} must be 0 or more, got {options[name]}.")
    return module_args, options


def _check_vms(vms: Any) -> None:
    """Refuses vms elements that are not dicts, which the module's own argument check cannot name (it fails on them unhandled)."""
    if vms is None:
        return
    example = "for example vms: [{vm: web01}, {vm: db01}]; nothing was run."
    if isinstance(vms, Mapping):
        raise AnsibleActionFail(f"vms is one dict; it is a list of them, one per VM, {example}")
    elements = vms if isinstance(vms, list) else [vms]
    for position, element in enumerate(elements, 1):
        if not isinstance(element, Mapping):
            raise AnsibleActionFail(f"vms: element {position} ({element!r}) is not a dict. Give each VM as a dict with vm (its name) or "
                                    f"vm_id (its GUID), {example}")
