"""Reading what ansible-core sends over WinRM: which module, with which arguments.

Two formats exist (see notes in docs/simulator.md):
- ansible-core 2.19 and later: stdin is the bootstrap JSON, a line of four NUL bytes, then the
  exec manifest JSON whose actions end with module_wrapper.ps1 (params.Script names the module,
  params.Variables holds complex_args).
- ansible-core 2.16 to 2.18: stdin is the exec wrapper text, four NUL bytes, then JSON with
  module_args (including _ansible_module_name).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import shlex
from typing import Any

SEPARATOR = b"\0\0\0\0"
SCRIPT_RE = re.compile(r"^ansible_collections\.hyperv\.backup\.plugins\.modules\.(\w+)\.ps1$")


@dataclasses.dataclass
class Invocation:
    module: str | None
    args: dict[str, Any]
    raw_script: str | None = None


def encoded_command(command_line: str) -> str | None:
    """The script of a `powershell ... -EncodedCommand <base64>` command line."""
    parts = shlex.split(command_line, posix=True)
    for index, part in enumerate(parts[:-1]):
        if part.lower() in ("-encodedcommand", "-enc", "-e"):
            try:
                return base64.b64decode(parts[index + 1]).decode("utf-16-le")
            except (ValueError, UnicodeDecodeError):
                return None
    return None


def _find(node: Any, key: str) -> Any:
    """The first value stored under key anywhere in nested JSON."""
    if isinstance(node, dict):
        if key in node:
            return node[key]
        for value in node.values():
            found = _find(value, key)
            if found is not None:
                return found
    elif isinstance(node, list):
        for value in node:
            found = _find(value, key)
            if found is not None:
                return found
    return None


def decode(command_line: str, stdin: bytes) -> Invocation:
    """The module and arguments of one WinRM command, or its raw script when it runs no module."""
    if not stdin.strip():
        return Invocation(None, {}, raw_script=encoded_command(command_line) or command_line)
    parts = [p.strip() for p in stdin.split(SEPARATOR)]
    documents = []
    for part in parts:
        try:
            documents.append(json.loads(part.decode("utf-8")))
        except (ValueError, UnicodeDecodeError):
            continue
    for document in documents:
        # 2.19+: the module_wrapper action names the script
        for action in document.get("actions", []) if isinstance(document, dict) else []:
            if not isinstance(action, dict):
                continue  # 2.16 - 2.18 list actions by name only
            params = action.get("params") or {}
            script = params.get("Script")
            if isinstance(script, str) and action.get("name") == "module_wrapper.ps1":
                match = SCRIPT_RE.match(script)
                variables = params.get("Variables") or []
                args = next((v.get("Value") for v in variables if isinstance(v, dict) and v.get("Name") == "complex_args"), None)
                if args is None:
                    args = _find(variables, "complex_args") or {}
                return Invocation(match.group(1) if match else script, args)
        # 2.16 - 2.18: module_args carries the module name
        module_args = document.get("module_args") if isinstance(document, dict) else None
        if isinstance(module_args, dict):
            name = str(module_args.get("_ansible_module_name", ""))
            short = name.rsplit(".", 1)[-1] if name.startswith("hyperv.backup.") else name
            return Invocation(short, module_args)
    return Invocation(None, {}, raw_script=encoded_command(command_line) or command_line)
