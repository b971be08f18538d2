"""Static checks of the collection's PowerShell, with a real parser (no pwsh needed).

Checks, each reported as a Finding with file and line:
- syntax: the file parses without error nodes;
- spec: a module's $spec (plus shared specs from module_utils) equals its doc stub's options;
- cim: every Msvm_*/CIM_* class, property, method and parameter named exists in the schema;
- variables: no variable is read before it is assigned in its scope;
- wql: -Query/-Filter text is constant (only [guid]-typed values may be interpolated);
- style: exported functions have [CmdletBinding()] and help; Hv* commands come from required utils.

Run: python -m hvtest.pscheck [ROOT]   (exit 1 when anything is found)
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import sys
from collections.abc import Iterable, Iterator

from tree_sitter import Node

from . import collection, pstree, schema

CIM_NAME_RE = re.compile(r"\b((?:Msvm|CIM)_[A-Za-z0-9_]+)")
CIM_TYPE_RE = re.compile(r"^Microsoft\.Management\.Infrastructure\.CimInstance#(?:.*/)?((?:Msvm|CIM)_\w+)$")
RESULT_TYPE_RE = re.compile(r"^Microsoft\.Management\.Infrastructure\.CimMethodResult#((?:Msvm|CIM)_\w+)\.(\w+)$")
WQL_FIELD_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=|<>|!=|<|>|\bLIKE\b|\bIS\b|\bISA\b)", re.IGNORECASE)
METHOD_COMMANDS = {"invoke-cimmethod", "invoke-hvcimmethod"}
AUTOMATIC_VARIABLES = frozenset({
    "_", "psitem", "args", "true", "false", "null", "this", "input", "matches", "error", "host", "pscmdlet",
    "psboundparameters", "myinvocation", "psscriptroot", "pscommandpath", "executioncontext", "lastexitcode",
    "erroractionpreference", "warningpreference", "verbosepreference", "progresspreference", "pshome", "home",
    "pid", "psversiontable", "sender", "eventargs", "foreach", "switch", "stacktrace", "ofs", "complex_args",
})


@dataclasses.dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int
    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.check}] {self.message}"


# ---------------------------------------------------------------- spec versus docs

def _body_statements(function: pstree.Function) -> list[Node]:
    block = next((c for c in function.node.named_children if c.type == "script_block"), None)
    body = next((c for c in (block.named_children if block else []) if c.type == "script_block_body"), None)
    statements = next((c for c in (body.named_children if body else []) if c.type == "statement_list"), None)
    return list(statements.named_children) if statements else []


# ---------------------------------------------------------------- CIM names

def _cim_type(names: Iterable[str]) -> str | None:
    for name in names:
        match = CIM_TYPE_RE.match(name)
        if match:
            return match.group(1)
    return None


def _result_type(names: Iterable[str]) -> tuple[str, str] | None:
    for name in names:
        match = RESULT_TYPE_RE.match(name)
        if match:
            return match.group(1), match.group(2)
    return None


@dataclasses.dataclass
class _Types:
    """What the checker knows of the functions in scope: CIM class or method result they return."""

    returns_class: dict[str, str]
    returns_result: dict[str, tuple[str, str]]


def _known_types(sources: list[pstree.Source]) -> _Types:
    types = _Types({}, {})
    for source in sources:
        for function in pstree.functions(source.root):
            outputs = function.output_types()
            cls = _cim_type(outputs)
            if cls:
                types.returns_class[function.name.lower()] = cls
            result = _result_type(outputs)
            if result:
                types.returns_result[function.name.lower()] = result
    return types


def _variable_name(node: Node) -> str:
    raw = pstree.text(node).lstrip("$@").strip("{}")
    for prefix in ("local:", "private:", "script:"):
        if raw.lower().startswith(prefix):
            raw = raw[len(prefix):]
    return raw.lower()


def _scope_of(node: Node) -> Node:
    current = node.parent
    while current is not None and current.type not in ("function_statement", "program"):
        current = current.parent
    return current


def _value_kind(value: Node, types: _Types, schema_: schema.Schema) -> tuple[str, object] | None:
    """('class', name) or ('result', (class, method)) for an expression, when it is known."""
    inner = pstree.innermost(value)
    if inner.type == "array_expression":
        commands_ = [c for c in pstree.walk(inner) if c.type == "command"]
        if len(commands_) != 1:
            return None
        inner = commands_[0]
    if inner.type != "command":
        # a pipeline ending in Select-Object -First 1 keeps the type of its first command
        first = next((c for c in pstree.walk(value) if c.type == "command"), None)
        if first is None:
            return None
        inner = first
    command = next(pstree.commands(inner))
    name = command.name.lower()
    if name == "get-ciminstance":
        cls = command.parameter_text("ClassName")
        return ("class", cls) if cls and schema_.has_class(cls) else None
    if name == "get-cimassociatedinstance":
        cls = command.parameter_text("ResultClassName")
        return ("class", cls) if cls and schema_.has_class(cls) else None
    if name in types.returns_class:
        return ("class", types.returns_class[name])
    if name in types.returns_result:
        return ("result", types.returns_result[name])
    return None


def _typed_variables(source: pstree.Source, types: _Types, schema_: schema.Schema) -> dict[tuple[int, str], tuple[str, object]]:
    """(scope id, variable) -> kind, from typed parameters, assignments and foreach loops."""
    typed: dict[tuple[int, str], tuple[str, object]] = {}
    for function in pstree.functions(source.root):
        for parameter in function.parameters:
            cls = _cim_type(pstree.parameter_type_names(parameter))
            if cls:
                typed[(function.node.id, pstree.parameter_variable(parameter).lstrip("$").lower())] = ("class", cls)
    for node in pstree.walk(source.root):
        if node.type == "assignment_expression":
            target = pstree.innermost(node.named_children[0])
            if target.type == "variable":
                kind = _value_kind(node.named_children[-1], types, schema_)
                if kind:
                    typed[(_scope_of(node).id, _variable_name(target))] = kind
        elif node.type == "foreach_statement":
            variables = [c for c in node.named_children if c.type == "variable"]
            collection_ = next((c for c in node.named_children if c.type == "pipeline"), None)
            if variables and collection_ is not None:
                source_var = pstree.innermost(collection_)
                if source_var.type == "variable":
                    kind = typed.get((_scope_of(node).id, _variable_name(source_var)))
                    if kind:
                        typed[(_scope_of(node).id, _variable_name(variables[0]))] = kind
    return typed


def check_cim(path: pathlib.Path, root: pathlib.Path = collection.ROOT, schema_: schema.Schema | None = None) -> list[Finding]:
    schema_ = schema_ or schema.load()
    source = pstree.parse(path)
    rel = str(pathlib.Path(path).resolve().relative_to(root))
    found: list[Finding] = []

    def report(node: Node, message: str) -> None:
        found.append(Finding(rel, source.line(node), "cim", message))

    # Class names anywhere in code: strings, bare words, type names.
    for node in pstree.walk(source.root):
        if node.type in ("verbatim_string_characters", "expandable_string_literal", "generic_token", "simple_name"):
            for name in CIM_NAME_RE.findall(pstree.text(node)):
                if not schema_.has_class(name):
                    report(node, f"class {name} is not in the schema")

    for command in pstree.commands(source.root):
        name = command.name.lower()
        if name in METHOD_COMMANDS:
            _check_method_call(command, schema_, report)
        class_name = command.parameter_text("ClassName")
        properties = command.parameters.get("property")
        if class_name and schema_.has_class(class_name) and properties is not None:
            known = schema_.properties(class_name)
            for key in sorted(_literal_keys(properties) or ()):
                if key not in known:
                    report(command.node, f"{class_name} has no property {key}")
        for parameter in ("filter", "query"):
            value = command.parameters.get(parameter)
            if value is not None:
                _check_wql(command, value, parameter, class_name, schema_, report, source)

    types = _known_types(collection.module_sources(path, root))
    typed = _typed_variables(source, types, schema_)
    for node in pstree.walk(source.root):
        if node.type != "member_access":
            continue
        target, member = node.named_children[0], node.named_children[-1]
        if target.type != "variable" or member.type != "member_name":
            continue
        scope = _scope_of(node)
        kind = typed.get((scope.id, _variable_name(target)))
        if kind is None and scope.type == "function_statement":
            # dynamic scope: a function sees the script's variables
            kind = typed.get((source.root.id, _variable_name(target)))
        if kind is None:
            continue
        member_name = pstree.text(member)
        if kind[0] == "class":
            cls = str(kind[1])
            allowed = set(schema_.properties(cls)) | set(schema_.methods(cls)) | schema.CIM_INSTANCE_MEMBERS
            if member_name not in allowed:
                report(node, f"{pstree.text(target)} is a {cls}, which has no property {member_name}")
        else:
            cls, method = kind[1]  # type: ignore[misc]
            outputs = schema_.parameters(cls, method, ("OUT", "IN/OUT")) | schema.METHOD_RESULT_MEMBERS
            if member_name not in outputs:
                report(node, f"{pstree.text(target)} is the result of {cls}.{method}, which has no output {member_name}")
    return found


def _check_method_call(command: pstree.Command, schema_: schema.Schema, report) -> None:
    method = command.parameter_text("MethodName")
    if method is None:
        return  # a helper passing its own -MethodName through; checked at its callers
    owners = schema_.classes_with_method(method)
    if not owners:
        report(command.node, f"method {method} is not in the schema")
        return
    arguments = command.parameters.get("arguments")
    if arguments is None:
        return
    keys = _literal_keys(arguments)
    if keys is None:
        return
    fitting = [c for c in owners if keys <= schema_.parameters(c, method, ("IN", "IN/OUT"))]
    if not fitting:
        inputs = sorted(set().union(*(schema_.parameters(c, method, ("IN", "IN/OUT")) for c in owners)))
        report(command.node, f"{method} takes {inputs} as input; got {sorted(keys)}")


def _literal_keys(node: Node) -> set[str] | None:
    inner = pstree.innermost(node)
    if inner.type != "hash_literal_expression":
        return None
    keys = set()
    body = next((c for c in inner.named_children if c.type == "hash_literal_body"), None)
    for entry in (body.named_children if body else []):
        if entry.type == "hash_entry":
            keys.add(pstree.string_value(entry.named_children[0]))
    return keys


def _guid_variables(source: pstree.Source) -> set[str]:
    names = set()
    for node in pstree.walk(source.root):
        if node.type == "cast_expression":
            type_literal, variable = node.named_children[0], pstree.innermost(node.named_children[-1])
            if pstree.text(type_literal).lower() == "[guid]" and variable.type == "variable":
                names.add(_variable_name(variable))
        if node.type == "script_parameter" and "guid" in [t.lower() for t in pstree.parameter_type_names(node)]:
            names.add(pstree.parameter_variable(node).lstrip("$").lower())
    return names


def _check_wql(command, value: Node, parameter: str, class_name, schema_, report, source) -> None:
    inner = pstree.innermost(value)
    if inner.type == "expandable_string_literal":
        unsafe = [pstree.text(v) for v in pstree.walk(inner) if v.type == "variable" and _variable_name(v) not in _guid_variables(source)]
        if unsafe:
            report(command.node, f"-{parameter.capitalize()} interpolates {', '.join(unsafe)}: "
                   "WQL must be constant; compare in PowerShell, or parse into [guid] first")
            return
        wql = pstree.text(inner)[1:-1]
    else:
        try:
            wql = pstree.string_value(inner)
        except pstree.NotALiteral:
            report(command.node, f"-{parameter.capitalize()} is built at run time: WQL must be a constant string")
            return
    target = class_name
    if parameter == "query":
        match = re.search(r"\bFROM\s+(\w+)", wql, re.IGNORECASE)
        target = match.group(1) if match else None
        wql = re.split(r"\bWHERE\b", wql, flags=re.IGNORECASE)[-1] if re.search(r"\bWHERE\b", wql, re.IGNORECASE) else ""
    if target and schema_.has_class(target):
        known = schema_.properties(target)
        without_strings = re.sub(r"'[^']*'|\"[^\"]*\"", "''", wql)
        for field in WQL_FIELD_RE.findall(without_strings):
            if field.upper() not in ("AND", "OR", "NOT") and field not in known:
                report(command.node, f"WQL names {field}, which {target} does not have")


# ---------------------------------------------------------------- variables

def _assigned_here(node: Node) -> Iterator[Node]:
    """Variable nodes that a node assigns (as opposed to reads)."""
    if node.type == "assignment_expression":
        for target in pstree.walk(node.named_children[0]):
            if target.type == "variable":
                parent = target.parent
                if parent is not None and parent.type == "member_access":
                    continue
                if parent is not None and parent.type == "element_access":
                    continue
                yield target
    elif node.type == "foreach_statement":
        yield from [c for c in node.named_children if c.type == "variable"][:1]
    elif node.type == "script_parameter":
        yield from [c for c in node.named_children if c.type == "variable"][:1]
    elif node.type == "cast_expression" and pstree.text(node.named_children[0]).lower() == "[ref]":
        variable = pstree.innermost(node.named_children[-1])
        if variable.type == "variable":
            yield variable


def _written_by_command(command: pstree.Command) -> list[str]:
    names = []
    for parameter in ("errorvariable", "outvariable", "warningvariable", "pipelinevariable", "ev", "ov"):
        value = command.parameter_text(parameter)
        if value:
            names.append(value.lstrip("+$").lower())
    return names


def check_variables(path: pathlib.Path, root: pathlib.Path = collection.ROOT) -> list[Finding]:
    source = pstree.parse(path)
    rel = str(pathlib.Path(path).resolve().relative_to(root))
    # scope node id -> variable -> first assignment offset
    assigned: dict[int, dict[str, int]] = {}
    assigned_nodes: set[int] = set()

    def scope_chain(node: Node) -> list[Node]:
        chain = []
        current = node.parent
        while current is not None:
            if current.type in ("function_statement", "script_block_expression", "program"):
                chain.append(current)
            current = current.parent
        return chain

    for node in pstree.walk(source.root):
        for variable in _assigned_here(node):
            scope = scope_chain(variable)[0]
            if node.type == "script_parameter" and scope.type not in ("function_statement", "script_block_expression"):
                continue
            table = assigned.setdefault(scope.id, {})
            name = _variable_name(variable)
            table[name] = min(table.get(name, variable.start_byte), variable.start_byte)
            assigned_nodes.add(variable.id)
        if node.type == "command":
            command = next(pstree.commands(node))
            for name in _written_by_command(command):
                table = assigned.setdefault(scope_chain(node)[0].id, {})
                table[name] = min(table.get(name, node.start_byte), node.start_byte)

    script_level = assigned.get(source.root.id, {})
    found = []
    for node in pstree.walk(source.root):
        if node.type != "variable" or node.id in assigned_nodes:
            continue
        raw = pstree.text(node).lstrip("$@").strip("{}").lower()
        if ":" in raw and not raw.startswith(("script:", "local:", "private:")):
            continue  # env:, global:, using:, variable:, function:
        name = _variable_name(node)
        if name in AUTOMATIC_VARIABLES:
            continue
        if raw.startswith("script:"):
            if name not in script_level:
                found.append(Finding(rel, source.line(node), "variables", f"$script:{name} is read but never assigned at script level"))
            continue
        ok = False
        for scope in scope_chain(node):
            first = assigned.get(scope.id, {}).get(name)
            if first is not None and (first < node.start_byte or scope.type == "program" and _inside_function(node)):
                ok = True
                break
        if not ok:
            found.append(Finding(rel, source.line(node), "variables", f"${name} is read before it is assigned"))
    return found


def _inside_function(node: Node) -> bool:
    current = node.parent
    while current is not None:
        if current.type == "function_statement":
            return True
        current = current.parent
    return False


# ---------------------------------------------------------------- style

def check_style(path: pathlib.Path, root: pathlib.Path = collection.ROOT) -> list[Finding]:
    source = pstree.parse(path)
    rel = str(pathlib.Path(path).resolve().relative_to(root))
    found = []
    for function in pstree.functions(source.root):
        line = source.line(function.node)
        if "cmdletbinding" not in function.attributes:
            found.append(Finding(rel, line, "style", f"{function.name} has no [CmdletBinding()]"))
        if ".SYNOPSIS" not in pstree.text(function.node):
            found.append(Finding(rel, line, "style", f"{function.name} has no help (.SYNOPSIS)"))
    defined = {f.name.lower() for s in collection.module_sources(path, root) for f in pstree.functions(s.root)}
    for command in pstree.commands(source.root):
        name = command.name.lower()
        if re.match(r"^[a-z]+-hv", name) and name not in defined:
            found.append(Finding(rel, source.line(command.node), "style", f"{command.name} is not defined here nor in a module_util this file requires"))
    return found


# ---------------------------------------------------------------- all

def check_file(path: pathlib.Path, root: pathlib.Path = collection.ROOT) -> list[Finding]:
    source = pstree.parse(path)
    rel = str(pathlib.Path(path).resolve().relative_to(root))
    errors = pstree.syntax_errors(source)
    if errors:
        return [Finding(rel, line, "syntax", f"does not parse near: {snippet}") for line, snippet in errors]
    return check_cim(path, root) + check_variables(path, root) + check_style(path, root)


def check_all(root: pathlib.Path = collection.ROOT) -> list[Finding]:
    found: list[Finding] = []
    for path in collection.powershell_files(root):
        found.extend(check_file(path, root))
    return sorted(set(found))


def main(argv: list[str]) -> int:
    root = pathlib.Path(argv[0]).resolve() if argv else collection.ROOT
    found = check_all(root)
    for finding in found:
        print(finding)
    files = len(collection.powershell_files(root))
    print(f"pscheck: {files} PowerShell files, {len(collection.module_names(root))} modules, {len(found)} findings")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
