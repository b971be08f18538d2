"""PowerShell source read with tree-sitter-powershell: syntax errors, literals, commands.

tree-sitter gives expressions as long single-child chains (pipeline > ... > unary_expression >
literal); `innermost` walks down such a chain so callers see the literal or hashtable itself.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import re
from collections.abc import Iterator
from typing import Any

import tree_sitter_powershell
from tree_sitter import Language, Node, Parser, Tree

_LANGUAGE = Language(tree_sitter_powershell.language())

# Nodes that only wrap one meaningful child.
_WRAPPERS = frozenset({
    "pipeline", "pipeline_chain", "logical_expression", "bitwise_expression", "comparison_expression",
    "additive_expression", "multiplicative_expression", "format_expression", "range_expression",
    "array_literal_expression", "unary_expression", "statement_list", "parenthesized_expression",
    "attribute_argument", "string_literal", "key_expression", "left_assignment_expression", "integer_literal", "real_literal",
})

REQUIRES_RE = re.compile(r"^#AnsibleRequires\s+-PowerShell\s+(\S+)", re.MULTILINE)


class NotALiteral(ValueError):
    """The expression is computed at run time and has no static value."""


@dataclasses.dataclass(frozen=True)
class Source:
    path: pathlib.Path
    text: bytes
    tree: Tree

    @property
    def root(self) -> Node:
        return self.tree.root_node

    def line(self, node: Node) -> int:
        return node.start_point[0] + 1


@functools.lru_cache(maxsize=None)
def parse(path: pathlib.Path) -> Source:
    text = pathlib.Path(path).read_bytes()
    return Source(pathlib.Path(path), text, Parser(_LANGUAGE).parse(text))


def parse_text(text: str, name: str = "<text>.ps1") -> Source:
    data = text.encode("utf-8")
    return Source(pathlib.Path(name), data, Parser(_LANGUAGE).parse(data))


def walk(node: Node) -> Iterator[Node]:
    """Every node below (and including) node, in source order."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def text(node: Node) -> str:
    return node.text.decode("utf-8")


def innermost(node: Node) -> Node:
    """Walks down single-meaningful-child wrappers to the expression that matters."""
    while node.type in _WRAPPERS:
        named = [c for c in node.named_children if c.type != "comment"]
        if len(named) != 1:
            break
        node = named[0]
    return node


def syntax_errors(source: Source) -> list[tuple[int, str]]:
    found = []
    for node in walk(source.root):
        if node.is_error or node.is_missing:
            found.append((source.line(node), text(node)[:60].replace("\n", " ")))
    return found


def string_value(node: Node) -> str:
    """The value of a string literal or a bare word; NotALiteral for interpolating strings."""
    node = innermost(node)
    raw = text(node)
    if node.type in ("verbatim_string_characters", "verbatim_here_string_characters"):
        return raw[1:-1].replace("''", "'")
    if node.type == "expandable_string_literal":
        if node.named_children:
            raise NotALiteral(raw)
        return raw[1:-1]
    if node.type in ("generic_token", "simple_name", "command_name_expr", "type_identifier"):
        return raw
    raise NotALiteral(raw)


def literal(node: Node) -> Any:
    """The static value of a literal expression: strings, numbers, booleans, arrays, hashtables."""
    node = innermost(node)
    kind = node.type
    if kind == "hash_literal_expression":
        result: dict[str, Any] = {}
        body = next((c for c in node.named_children if c.type == "hash_literal_body"), None)
        for entry in (body.named_children if body else []):
            if entry.type != "hash_entry":
                continue
            key = string_value(entry.child_by_field_name("key") or entry.named_children[0])
            result[key] = literal(entry.named_children[-1])
        return result
    if kind == "array_expression":
        statements = [c for c in node.named_children if c.type == "statement_list"]
        items: list[Any] = []
        for statement_list in statements:
            for statement in statement_list.named_children:
                if statement.type == "empty_statement":
                    continue
                value = literal(statement)
                items.extend(value if isinstance(value, _Items) else [value])
        return items
    if kind == "array_literal_expression":
        # a, b, c  or  ,a (unary comma makes a one-element array)
        return _Items(literal(p) for p in node.named_children)
    if kind == "variable":
        name = text(node).lower()
        if name in ("$true", "$false", "$null"):
            return {"$true": True, "$false": False, "$null": None}[name]
        raise NotALiteral(text(node))
    if kind in ("decimal_integer_literal", "hexadecimal_integer_literal"):
        return int(text(node), 0)
    if kind == "expression_with_unary_operator" and text(node).startswith(","):
        return _Items([literal(node.named_children[-1])])
    return string_value(node)


class _Items(list):
    """A comma list inside @( ): its items belong to the enclosing array."""


@dataclasses.dataclass
class Command:
    node: Node
    name: str
    parameters: dict[str, Node | None]
    positional: list[Node]

    def parameter_text(self, name: str) -> str | None:
        value = self.parameters.get(name.lower())
        if value is None:
            return None
        try:
            return string_value(value)
        except NotALiteral:
            return None


def commands(root: Node) -> Iterator[Command]:
    """Every command invocation with its named parameters (lower-cased names) and their values."""
    for node in walk(root):
        if node.type != "command":
            continue
        name_node = node.child_by_field_name("command_name") or next(
            (c for c in node.named_children if c.type == "command_name"), None)
        if name_node is None:
            continue
        elements = next((c for c in node.named_children if c.type == "command_elements"), None)
        parameters: dict[str, Node | None] = {}
        positional: list[Node] = []
        pending: str | None = None
        for child in (elements.named_children if elements else []):
            if child.type == "command_argument_sep":
                continue
            if child.type == "command_parameter":
                if pending is not None:
                    parameters[pending] = None
                pending = text(child).lstrip("-").rstrip(":").lower()
                continue
            if pending is not None:
                parameters[pending] = child
                pending = None
            else:
                positional.append(child)
        if pending is not None:
            parameters[pending] = None
        yield Command(node, text(name_node), parameters, positional)


@dataclasses.dataclass
class Function:
    name: str
    node: Node
    attributes: dict[str, list[Node]]
    parameters: list[Node]

    def output_types(self) -> list[str]:
        values = []
        for argument in self.attributes.get("outputtype", []):
            try:
                values.append(string_value(argument))
            except NotALiteral:
                values.append(text(innermost(argument)).strip("[]"))
        return values


def functions(root: Node) -> Iterator[Function]:
    for node in walk(root):
        if node.type != "function_statement":
            continue
        name_node = next((c for c in node.children if c.type == "function_name"), None)
        attributes: dict[str, list[Node]] = {}
        parameters: list[Node] = []
        param_block = next((n for n in walk(node) if n.type == "param_block"), None)
        if param_block is not None:
            for attribute in (n for n in param_block.children if n.type == "attribute_list"):
                for item in attribute.named_children:
                    name = attribute_name(item)
                    if name:
                        attributes.setdefault(name.lower(), []).extend(attribute_arguments(item))
            parameter_list = next((c for c in param_block.named_children if c.type == "parameter_list"), None)
            parameters = [c for c in (parameter_list.named_children if parameter_list else []) if c.type == "script_parameter"]
        yield Function(text(name_node) if name_node else "", node, attributes, parameters)


def attribute_name(attribute: Node) -> str | None:
    name = next((c for c in attribute.named_children if c.type == "attribute_name"), None)
    return text(name) if name is not None else None


def attribute_arguments(attribute: Node) -> list[Node]:
    arguments = next((c for c in attribute.named_children if c.type == "attribute_arguments"), None)
    return [c for c in (arguments.named_children if arguments else []) if c.type == "attribute_argument"]


def parameter_variable(parameter: Node) -> str:
    variable = next(c for c in parameter.named_children if c.type == "variable")
    return text(variable)


def parameter_type_names(parameter: Node) -> list[str]:
    """PSTypeName values and [type] literals on a script parameter."""
    names = []
    attribute_list = next((c for c in parameter.named_children if c.type == "attribute_list"), None)
    for attribute in (attribute_list.named_children if attribute_list else []):
        if attribute.type != "attribute":
            continue
        type_literal = next((c for c in attribute.named_children if c.type == "type_literal"), None)
        if type_literal is not None:
            names.append(text(type_literal).strip("[]"))
        elif (attribute_name(attribute) or "").lower() == "pstypename":
            names.extend(string_value(a) for a in attribute_arguments(attribute))
    return names


def required_module_utils(source: Source) -> list[str]:
    return REQUIRES_RE.findall(source.text.decode("utf-8"))
