"""Argument validation as Ansible.Basic does it, driven by the module's own $spec.

The spec is read from the .ps1 with the static tooling (hvtest.pscheck.module_spec), so the
rendering accepts exactly the options the PowerShell module accepts.
"""

from __future__ import annotations

from typing import Any

BOOLEAN_TRUE = {"yes", "on", "1", "true", "y", "t"}
BOOLEAN_FALSE = {"no", "off", "0", "false", "n", "f", ""}


class ArgumentError(ValueError):
    """Bad task arguments; the message is what Ansible.Basic would say."""


def _convert(name: str, kind: str, value: Any, elements: str | None = None) -> Any:
    if value is None:
        return None
    if kind in ("str", "path"):
        if isinstance(value, (dict, list)):
            raise ArgumentError(f"argument for {name} is of type {type(value).__name__} and we were unable to convert to str")
        return str(value)
    if kind == "int":
        if isinstance(value, bool):
            raise ArgumentError(f"argument for {name} is of type bool and we were unable to convert to int")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ArgumentError(f"argument for {name} is of type {type(value).__name__} and we were unable to convert to int") from None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in BOOLEAN_TRUE:
            return True
        if text in BOOLEAN_FALSE:
            return False
        raise ArgumentError(f"argument for {name} is of type {type(value).__name__} and we were unable to convert to bool")
    if kind == "list":
        items = value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
        return [_convert(f"{name} element", elements, v) if elements else v for v in items]
    if kind == "dict":
        if not isinstance(value, dict):
            raise ArgumentError(f"argument for {name} is of type {type(value).__name__} and we were unable to convert to dict")
        return value
    raise ArgumentError(f"the simulator does not know option type {kind}")


def validate(module_name: str, spec: dict, args: dict) -> dict:
    """Parameters with defaults applied, or ArgumentError with Ansible.Basic's wording."""
    options: dict[str, dict] = spec.get("options", {})
    given = {k: v for k, v in args.items() if not k.startswith("_ansible_")}
    unsupported = sorted(set(given) - set(options))
    if unsupported:
        raise ArgumentError(f"Unsupported parameters for ({module_name}) module: {', '.join(unsupported)}. "
                            f"Supported parameters include: {', '.join(sorted(options))}")
    params: dict[str, Any] = {}
    for name, option in options.items():
        value = given.get(name, option.get("default"))
        value = _convert(name, option.get("type", "str"), value, option.get("elements"))
        if value is not None and option.get("choices") is not None:
            values = value if isinstance(value, list) else [value]
            bad = [v for v in values if v not in option["choices"]]
            if bad:
                raise ArgumentError(f"value of {name} must be one of: {', '.join(map(str, option['choices']))}, got: {bad[0]}")
        if option.get("required") and value is None:
            raise ArgumentError(f"missing required arguments: {name}")
        if option.get("options") and value is not None:
            # Elements are validated against the nested spec, as Ansible.Basic does ("... found in vms").
            items = value if isinstance(value, list) else [value]
            try:
                checked = [validate(module_name, option, item if isinstance(item, dict) else {}) for item in items]
            except ArgumentError as error:
                raise ArgumentError(f"{error} found in {name}") from None
            value = checked if isinstance(value, list) else checked[0]
        params[name] = value

    def present(name: str) -> bool:
        return params.get(name) not in (None, "", [])

    for group in spec.get("mutually_exclusive", []):
        both = [n for n in group if n in given and present(n)]
        if len(both) > 1:
            raise ArgumentError(f"parameters are mutually exclusive: {', '.join(group)}")
    for group in spec.get("required_one_of", []):
        if not any(present(n) for n in group):
            raise ArgumentError(f"one of the following is required: {', '.join(group)}")
    for rule in spec.get("required_if", []):
        key, value, needed = rule[0], rule[1], rule[2]
        any_of = len(rule) > 3 and rule[3]
        if params.get(key) == value:
            missing = [n for n in needed if not present(n)]
            if (any_of and len(missing) == len(needed)) or (not any_of and missing):
                word = "any" if any_of else "all"
                raise ArgumentError(f"{key} is {value} but {word} of the following are missing: {', '.join(missing)}")
    return params
