"""The CIM wire between the PowerShell CIM shim (tests/hvtest/pwsh/HvSimCim) and the simulated host.

The shim turns each CIM cmdlet call into one POST /sim/cim with a JSON request; this module
answers it from SimHost with instances typed as Windows types them: every property of the class
(null where the host has no value), each with its CIM type from the schema and
tests/data/cim-overlay.json (datetime and interval properties, enum base types, key
properties, embedded-instance parameters). Embedded instances the collection writes are parsed
with a real XML parser and checked against the schema (class, property names, types).

Anything Windows would answer in a way nobody documents is refused with a SimRefused error: the
shim turns it into a terminating error that names the simulator, so a test fails loudly instead
of passing on a guess.
"""

from __future__ import annotations

import datetime
import functools
import json
import pathlib
import re
import weakref
import xml.etree.ElementTree as ET
from typing import Any

from .. import schema as schema_mod
from .host import CimError

OVERLAY_PATH = pathlib.Path(__file__).resolve().parents[2] / "data" / "cim-overlay.json"
NAMESPACE = "root/virtualization/v2"
SCALARS = {"string", "bool", "boolean", "uint8", "uint16", "uint32", "uint64", "sint8", "sint16", "sint32", "sint64",
           "int8", "int16", "int32", "int64", "real32", "real64", "datetime", "interval", "char16"}
INT_RANGES = {
    "uint8": (0, 2**8 - 1), "uint16": (0, 2**16 - 1), "uint32": (0, 2**32 - 1), "uint64": (0, 2**64 - 1),
    "sint8": (-(2**7), 2**7 - 1), "sint16": (-(2**15), 2**15 - 1), "sint32": (-(2**31), 2**31 - 1), "sint64": (-(2**63), 2**63 - 1),
}
# The wmigen schema spells signed types int8..int64 and booleans bool; CIM-XML says sint8.. and boolean.
CIM_XML_NAME = {"int8": "sint8", "int16": "sint16", "int32": "sint32", "int64": "sint64", "bool": "boolean"}


class CimFault(Exception):
    """An error a Windows host gives through the CIM cmdlets (CimException with a native code)."""

    def __init__(self, native: str, message: str, category: str, hresult: str = "") -> None:
        super().__init__(message)
        self.native = native
        self.message = message
        self.category = category
        self.hresult = hresult

    def wire(self) -> dict[str, Any]:
        return {"fault": {"native": self.native, "message": self.message, "category": self.category, "hresult": self.hresult}}


class SimRefused(Exception):
    """Something the simulator will not answer because what Windows does is not known."""

    def wire(self) -> dict[str, Any]:
        return {"refused": str(self)}


def not_found() -> CimFault:
    return CimFault("NotFound", "Not found ", "ObjectNotFound", "HRESULT 0x80041002")


def invalid_class(name: str) -> CimFault:
    del name
    return CimFault("InvalidClass", "Invalid class ", "MetadataError", "HRESULT 0x80041010")


def class_not_found() -> CimFault:
    """Get-CimClass of a class the namespace does not have (PowerShell's Get-CimClass tests)."""
    return CimFault("NotFound", "Not found ", "ObjectNotFound", "HRESULT 0x80041002")


def invalid_namespace() -> CimFault:
    return CimFault("InvalidNamespace", "Invalid namespace ", "MetadataError", "HRESULT 0x8004100e")


def invalid_query() -> CimFault:
    return CimFault("InvalidQuery", "Invalid query ", "InvalidArgument", "HRESULT 0x80041017")


class ArgumentRefused(Exception):
    """What Invoke-CimMethod -InputObject refuses on the client, before any call: a parameter the
    method does not declare (a terminating System.ArgumentException, CimCmdlets' own text)."""

    def wire(self) -> dict[str, Any]:
        return {"argument_error": str(self)}


@functools.lru_cache(maxsize=None)
def overlay() -> dict[str, Any]:
    return json.loads(OVERLAY_PATH.read_text(encoding="utf-8"))


class Types:
    """CIM types of properties and parameters: the schema, completed by the overlay."""

    def __init__(self, schema: schema_mod.Schema) -> None:
        self.schema = schema
        self.overlay = overlay()
        # The schema does not change: each property's type is worked out once (most of the time the
        # simulator spent answering a call went into working them out again for every instance).
        self._property_types: dict[tuple[str, str], tuple[str, bool]] = {}
        self._class_names = {known.lower(): known for known in schema.classes}

    def base_type(self, declared: str, where: str) -> str:
        """uint16, string, a class name (a reference), ... for a schema type without its array mark."""
        if declared in SCALARS:
            return CIM_XML_NAME.get(declared, declared)
        if declared in self.schema.enums:
            base = self.overlay["enum_base"].get(declared)
            if base is None:
                raise SimRefused(f"{where}: the base type of enum {declared} is not known to the simulator (add it to cim-overlay.json from Microsoft's page)")
            return base
        if self.schema.has_class(declared):
            return "reference"
        raise SimRefused(f"{where}: type {declared} is not known to the simulator")

    def property_type(self, class_name: str, name: str) -> tuple[str, bool]:
        """(CIM type, is array) of a property of a class."""
        known = self._property_types.get((class_name, name))
        if known is None:
            known = self._property_types[(class_name, name)] = self._work_out_property_type(class_name, name)
        return known

    def class_name(self, name: str) -> str | None:
        """The schema's spelling of a class name, whatever its case; None for a class the schema lacks."""
        return self._class_names.get(str(name).lower())

    def _work_out_property_type(self, class_name: str, name: str) -> tuple[str, bool]:
        declared = self.schema.properties(class_name).get(name)
        if declared is None:
            raise SimRefused(f"{class_name} has no property {name} in the schema")
        array = declared.startswith("[]")
        declared = declared[2:] if array else declared
        for kind in ("datetime", "interval"):
            if any(name in self.overlay[kind].get(cls, []) for cls in self.schema.lineage(class_name)):
                return kind, array
        return self.base_type(declared, f"{class_name}.{name}"), array

    def keys(self, class_name: str) -> list[str]:
        lineage = self.schema.lineage(class_name)
        for base, keys in self.overlay["keys_by_base"].items():
            if base in lineage:
                return list(keys)
        raise SimRefused(f"the key properties of {class_name} are not known to the simulator")

    def embedded_class(self, class_name: str, method: str, parameter: str) -> str | None:
        for cls in self.schema.lineage(class_name):
            found = self.overlay["embedded_parameters"].get(f"{cls}.{method}.{parameter}")
            if found:
                return found
        return None

    def property_names(self, class_name: str) -> list[str]:
        """Every property of a class, bases first, as Windows lists them."""
        return list(self.schema.properties(class_name))


_TYPES: weakref.WeakKeyDictionary[schema_mod.Schema, Types] = weakref.WeakKeyDictionary()


def types_of(schema: schema_mod.Schema) -> Types:
    """The Types of a host's schema, made once (it reads the overlay file and works out each property's type)."""
    known = _TYPES.get(schema)
    if known is None:
        known = _TYPES[schema] = Types(schema)
    return known


# ---------------------------------------------------------------------------- values on the wire

def check_value(cim_type: str, value: Any, where: str) -> Any:
    """The value as the wire carries it, after checking it fits its CIM type."""
    if value is None:
        return None
    if cim_type in INT_RANGES:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SimRefused(f"{where}: {value!r} is not an integer ({cim_type})")
        low, high = INT_RANGES[cim_type]
        if not low <= value <= high:
            raise SimRefused(f"{where}: {value} is out of range for {cim_type}")
        return value
    if cim_type == "boolean":
        if not isinstance(value, bool):
            raise SimRefused(f"{where}: {value!r} is not a boolean")
        return value
    if cim_type in ("string", "char16"):
        if not isinstance(value, str):
            raise SimRefused(f"{where}: {value!r} is not a string")
        return value
    if cim_type == "datetime":
        if not isinstance(value, datetime.datetime) or value.tzinfo is None:
            raise SimRefused(f"{where}: {value!r} is not an aware datetime")
        return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if cim_type == "interval":
        if not isinstance(value, datetime.timedelta):
            raise SimRefused(f"{where}: {value!r} is not a timedelta")
        return value.total_seconds()
    if cim_type in ("real32", "real64"):
        return float(value)
    raise SimRefused(f"{where}: values of type {cim_type} are not served by the simulator")


class Wire:
    """Instances of SimHost (dicts with ClassName) as the shim receives them."""

    def __init__(self, types: Types, host_name: str) -> None:
        self.types = types
        self.host_name = host_name

    def instance(self, instance: dict[str, Any], key_only: bool = False) -> dict[str, Any]:
        class_name = instance["ClassName"]
        schema = self.types.schema
        if not schema.has_class(class_name):
            raise SimRefused(f"the host holds an instance of {class_name}, which the schema does not have")
        known = set(self.types.property_names(class_name))
        extra = [k for k in instance if k != "ClassName" and not k.startswith("_") and k not in known]
        if extra:
            raise SimRefused(f"the host's {class_name} has properties the schema does not: {extra}")
        keys = self.types.keys(class_name) if class_name != "Msvm_Error" else []
        properties = []
        for name in self.types.property_names(class_name):
            value = None if key_only and name not in keys else instance.get(name)
            if value is None and name == "CreationClassName" and name in keys:
                value = class_name
            try:
                cim_type, array = self.types.property_type(class_name, name)
            except SimRefused:
                if value is not None:
                    raise
                # A null of a type the overlay does not know: null whatever its type.
                cim_type, array = "unknown", self.types.schema.properties(class_name)[name].startswith("[]")
            properties.append([name, cim_type, array, self.value(cim_type, array, value, f"{class_name}.{name}")])
        return {
            "class": class_name,
            "namespace": NAMESPACE,
            "server": self.host_name,
            "lineage": [c for c in schema.lineage(class_name) if not c.startswith("cim.")],
            "keys": keys,
            "properties": properties,
        }

    def value(self, cim_type: str, array: bool, value: Any, where: str) -> Any:
        if value is None:
            return None
        if cim_type == "reference":
            items = value if array else [value]
            converted = [self.instance(item, key_only=True) for item in items]
            return converted if array else converted[0]
        if array:
            if not isinstance(value, (list, tuple)):
                raise SimRefused(f"{where}: an array property holds {value!r}")
            return [check_value(cim_type, item, where) for item in value]
        return check_value(cim_type, value, where)

    def method_result(self, class_name: str, method: str, output: dict[str, Any]) -> dict[str, Any]:
        """A method's ReturnValue and out parameters, typed from the schema."""
        definition = self.types.schema.method(class_name, method) or {"params": []}
        out = []
        names = {"ReturnValue"}
        for parameter in definition["params"]:
            if parameter["direction"] not in ("OUT", "IN/OUT"):
                continue
            name = parameter["name"]
            names.add(name)
            declared = parameter["type"]
            array = declared.startswith("[]")
            base = self.types.base_type(declared[2:] if array else declared, f"{class_name}.{method}.{name}")
            out.append([name, base, array, self.value(base, array, output.get(name), f"{class_name}.{method}.{name}")])
        unknown = set(output) - names
        if unknown:
            raise SimRefused(f"the host answered {class_name}.{method} with out parameters the schema does not have: {sorted(unknown)}")
        return_value = output.get("ReturnValue")
        return {"class": class_name, "method": method, "return_value": check_value("uint32", return_value, f"{class_name}.{method}"),
                "out": out}


# ---------------------------------------------------------------------------- what the shim sends

def reference(value: dict[str, Any], types: Types, where: str) -> dict[str, Any]:
    """A CimInstance the shim passed (class and key properties) as the host's lookup dict."""
    if not isinstance(value, dict) or value.get("kind") != "instance":
        raise SimRefused(f"{where}: expected a CimInstance, got {value!r}")
    class_name = value["class"]
    keys = types.keys(class_name)
    properties = value.get("keys") or {}
    missing = [k for k in keys if properties.get(k) in (None, "")]
    if missing:
        raise SimRefused(f"{where}: the {class_name} instance passed has no value for its key properties {missing}")
    return {"ClassName": class_name, **{k: properties[k] for k in keys}}


def argument(value: Any, cim_type: str, array: bool, types: Types, where: str) -> Any:
    """An argument of Invoke-CimMethod converted to the parameter's CIM type as the CIM cmdlets do."""
    if value is None:
        return None
    if cim_type == "reference":
        items = value if array else [value]
        converted = [reference(item, types, where) for item in items]
        return converted if array else converted[0]
    if array:
        if not isinstance(value, list):
            value = [value]
        return [argument(item, cim_type, False, types, where) for item in value]
    if isinstance(value, dict) and value.get("kind") == "instance":
        raise SimRefused(f"{where}: a CimInstance was passed for a parameter of type {cim_type}; Hyper-V takes embedded instances as CIM-XML text here")
    kind, raw = value["type"], value["value"]
    if cim_type in INT_RANGES:
        if kind in ("bool",):
            raise SimRefused(f"{where}: a boolean was passed for {cim_type}")
        try:
            number = int(raw) if kind != "string" else int(str(raw), 0)
        except ValueError as error:
            raise CimFault("InvalidParameter", f"Cannot convert value \"{raw}\" to type {cim_type}", "InvalidArgument") from error
        low, high = INT_RANGES[cim_type]
        if not low <= number <= high:
            raise CimFault("InvalidParameter", f"Value {number} is out of range for {cim_type}", "InvalidArgument")
        return number
    if cim_type == "boolean":
        if kind != "bool":
            raise SimRefused(f"{where}: {kind} {raw!r} passed for a boolean parameter")
        return bool(raw)
    if cim_type == "string":
        if kind not in ("string",):
            raise SimRefused(f"{where}: {kind} {raw!r} passed for a string parameter; what Windows converts it to is not modelled")
        return str(raw)
    raise SimRefused(f"{where}: arguments of type {cim_type} are not modelled")


def method_arguments(class_name: str, method: str, arguments: dict[str, Any], types: Types) -> dict[str, Any]:
    """The arguments of a call checked against the schema's IN parameters (names are case-insensitive)."""
    definition = types.schema.method(class_name, method)
    if definition is None:
        raise SimRefused(f"{class_name} has no method {method}: the client sends the call and what the host answers is not documented")
    inputs = {p["name"].lower(): p for p in definition["params"] if p["direction"] in ("IN", "IN/OUT")}
    converted: dict[str, Any] = {}
    for name, value in arguments.items():
        parameter = inputs.get(name.lower())
        if parameter is None:
            raise ArgumentRefused(f"Can not find Parameter '{name}' in method '{method}' of class '{class_name}'.")
        declared = parameter["type"]
        array = declared.startswith("[]")
        base = types.base_type(declared[2:] if array else declared, f"{class_name}.{method}.{parameter['name']}")
        where = f"{class_name}.{method}({parameter['name']})"
        converted[parameter["name"]] = argument(value, base, array, types, where)
        embedded = types.embedded_class(class_name, method, parameter["name"])
        if embedded and converted[parameter["name"]]:
            for text in (converted[parameter["name"]] if array else [converted[parameter["name"]]]):
                parse_embedded(text, embedded, types, where)
    return converted


# ---------------------------------------------------------------------------- embedded instances

def parse_embedded(text: str, expected: str, types: Types, where: str) -> dict[str, Any]:
    """The properties of a CIM-XML INSTANCE, checked against the schema; SimRefused when it does not fit.

    Accepts what CimSerializer writes and what the collection's XML writer writes: an INSTANCE
    element with PROPERTY (NAME, TYPE, one VALUE) and PROPERTY.ARRAY (VALUE.ARRAY of VALUE).
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as error:
        raise SimRefused(f"{where}: the embedded instance is not well-formed XML ({error}): {text[:200]!r}") from error
    if root.tag != "INSTANCE":
        raise SimRefused(f"{where}: the embedded instance's root element is {root.tag}, not INSTANCE")
    class_name = root.get("CLASSNAME", "")
    if expected not in types.schema.lineage(class_name):
        raise SimRefused(f"{where}: an embedded {class_name or '(no CLASSNAME)'} was passed where Hyper-V takes {expected}")
    known = {name.lower(): name for name in types.property_names(class_name)}
    values: dict[str, Any] = {}
    for node in root:
        if node.tag not in ("PROPERTY", "PROPERTY.ARRAY", "PROPERTY.REFERENCE"):
            raise SimRefused(f"{where}: unexpected element {node.tag} in the embedded instance")
        name = known.get((node.get("NAME") or "").lower())
        if name is None:
            raise SimRefused(f"{where}: {class_name} has no property {node.get('NAME')!r}")
        cim_type, array = types.property_type(class_name, name)
        given = node.get("TYPE")
        if given != cim_type:
            raise SimRefused(f"{where}: {class_name}.{name} is {cim_type}, the embedded instance says {given}")
        if array != (node.tag == "PROPERTY.ARRAY"):
            raise SimRefused(f"{where}: {class_name}.{name} is {'an array' if array else 'not an array'}, the embedded instance says otherwise")
        if array:
            items = node.findall("VALUE.ARRAY/VALUE")
            values[name] = [xml_value(item.text or "", cim_type, where) for item in items]
        else:
            value = node.find("VALUE")
            values[name] = None if value is None else xml_value(value.text or "", cim_type, where)
    return {"ClassName": class_name, **values}


def xml_value(text: str, cim_type: str, where: str) -> Any:
    if cim_type in INT_RANGES:
        if not re.fullmatch(r"-?\d+", text.strip()):
            raise SimRefused(f"{where}: {text!r} is not a {cim_type} in CIM-XML (digits only)")
        number = int(text)
        low, high = INT_RANGES[cim_type]
        if not low <= number <= high:
            raise SimRefused(f"{where}: {number} is out of range for {cim_type}")
        return number
    if cim_type == "boolean":
        if text.strip().lower() not in ("true", "false"):
            raise SimRefused(f"{where}: {text!r} is not a CIM-XML boolean (true or false)")
        return text.strip().lower() == "true"
    return text


def embedded_instance(class_name: str, values: dict[str, Any], types: Types) -> str:
    """CIM-XML of an instance the host hands out as text (GetErrorEx's Msvm_Error, SettingData)."""
    root = ET.Element("INSTANCE", {"CLASSNAME": class_name})
    for name, value in values.items():
        cim_type, array = types.property_type(class_name, name)
        if array:
            node = ET.SubElement(root, "PROPERTY.ARRAY", {"NAME": name, "TYPE": cim_type})
            holder = ET.SubElement(node, "VALUE.ARRAY")
            for item in value:
                ET.SubElement(holder, "VALUE").text = _xml_text(item)
        else:
            node = ET.SubElement(root, "PROPERTY", {"NAME": name, "TYPE": cim_type})
            if value is not None:
                ET.SubElement(node, "VALUE").text = _xml_text(value)
    return ET.tostring(root, encoding="unicode")


def _xml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------------- WQL

_TOKEN = re.compile(r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")|(?P<number>-?\d+)"
                    r"|(?P<op><>|!=|<=|>=|=|<|>|\(|\))|(?P<word>[A-Za-z_][A-Za-z0-9_]*))")


def parse_filter(text: str) -> Any:
    """A WQL WHERE clause as a predicate over an instance dict; CimFault InvalidQuery on bad syntax.

    Supports what a careful caller writes: comparisons of a property with a literal (= <> != < >
    <= >= LIKE), IS [NOT] NULL, AND, OR, NOT and parentheses. String comparisons are
    case-insensitive, as WMI compares strings.
    """
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            if text[position:].strip() == "":
                break
            raise invalid_query()
        position = match.end()
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
    parser = _Wql(tokens)
    predicate = parser.expression()
    if parser.position != len(tokens):
        raise invalid_query()
    return predicate


class _Wql:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.position = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def word(self, *words: str) -> bool:
        token = self.peek()
        if token and token[0] == "word" and token[1].upper() in words:
            self.position += 1
            return True
        return False

    def expression(self) -> Any:
        left = self.conjunction()
        while self.word("OR"):
            right = self.conjunction()
            left = _either(left, right)
        return left

    def conjunction(self) -> Any:
        left = self.negation()
        while self.word("AND"):
            right = self.negation()
            left = _both(left, right)
        return left

    def negation(self) -> Any:
        if self.word("NOT"):
            inner = self.negation()
            return lambda i: not inner(i)
        token = self.peek()
        if token == ("op", "("):
            self.position += 1
            inner = self.expression()
            if self.peek() != ("op", ")"):
                raise invalid_query()
            self.position += 1
            return inner
        return self.comparison()

    def comparison(self) -> Any:
        token = self.peek()
        if not token or token[0] != "word":
            raise invalid_query()
        self.position += 1
        name = token[1]
        if self.word("IS"):
            negate = self.word("NOT")
            if not self.word("NULL"):
                raise invalid_query()
            return lambda i: (_get(i, name) is None) != negate
        if self.word("LIKE"):
            literal = self.literal()
            pattern = re.compile(_like_to_regex(str(literal)), re.IGNORECASE | re.DOTALL)
            return lambda i: _get(i, name) is not None and bool(pattern.fullmatch(str(_get(i, name))))
        op = self.peek()
        if not op or op[0] != "op" or op[1] in ("(", ")"):
            raise invalid_query()
        self.position += 1
        literal = self.literal()
        return lambda i: _compare(_get(i, name), op[1], literal)

    def literal(self) -> Any:
        token = self.peek()
        if not token:
            raise invalid_query()
        self.position += 1
        kind, text = token
        if kind == "string":
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind == "number":
            return int(text)
        if kind == "word" and text.upper() in ("TRUE", "FALSE"):
            return text.upper() == "TRUE"
        if kind == "word" and text.upper() == "NULL":
            return None
        raise invalid_query()


def _either(left: Any, right: Any) -> Any:
    return lambda instance: left(instance) or right(instance)


def _both(left: Any, right: Any) -> Any:
    return lambda instance: left(instance) and right(instance)


def _get(instance: dict[str, Any], name: str) -> Any:
    for key, value in instance.items():
        if key.lower() == name.lower():
            return value
    return None


def _compare(value: Any, op: str, literal: Any) -> bool:
    if value is None or literal is None:
        return False
    if isinstance(value, str) and isinstance(literal, str):
        value, literal = value.lower(), literal.lower()
    elif isinstance(value, bool) or isinstance(literal, bool):
        value, literal = bool(value), bool(literal)
    elif isinstance(literal, int) and isinstance(value, str):
        return False
    try:
        return {"=": value == literal, "<>": value != literal, "!=": value != literal, "<": value < literal,
                ">": value > literal, "<=": value <= literal, ">=": value >= literal}[op]
    except TypeError:
        return False


def _like_to_regex(pattern: str) -> str:
    out = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        elif char == "[":
            end = pattern.find("]", index + 1)
            if end < 0:
                raise invalid_query()
            body = pattern[index + 1:end]
            out.append("[" + ("^" + re.escape(body[1:]) if body.startswith("^") else re.escape(body)) + "]")
            index = end
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)


# ---------------------------------------------------------------------------- the requests

def _namespace(request: dict[str, Any]) -> None:
    namespace = str(request.get("namespace") or NAMESPACE).replace("\\", "/").strip("/").lower()
    if namespace != NAMESPACE:
        raise invalid_namespace()


def _class(types: Types, name: str) -> str:
    """The schema's spelling of a class name (WMI class names are case-insensitive)."""
    known = types.class_name(name)
    if known is None:
        raise invalid_class(name)
    return known


def answer(host: Any, request: dict[str, Any]) -> dict[str, Any]:
    """The reply to one shim request: {"instances": [...]}, {"result": {...}}, {"class": {...}}, a fault or a refusal."""
    types = types_of(host.schema)
    wire = Wire(types, host.name)
    try:
        op = request.get("op")
        if op == "enumerate":
            _namespace(request)
            class_name = _class(types, request["class"])
            predicate = parse_filter(request["filter"]) if request.get("filter") else None
            found = [i for i in host.enumerate(class_name) if predicate is None or predicate(i)]
            return {"instances": [wire.instance(i) for i in found]}
        if op == "get":
            target = reference(request["instance"], types, "Get-CimInstance -InputObject")
            found = host.get_instance(target)
            if found is None:
                raise not_found()
            return {"instances": [wire.instance(found)]}
        if op == "associators":
            source = reference(request["instance"], types, "Get-CimAssociatedInstance -InputObject")
            association = _class(types, request["association"]) if request.get("association") else None
            result_class = _class(types, request["result_class"]) if request.get("result_class") else None
            if association is None or result_class is None:
                raise SimRefused("Get-CimAssociatedInstance without -Association and -ResultClassName is not modelled")
            found = host.associators(source, association, result_class)
            return {"instances": [wire.instance(i) for i in found]}
        if op == "invoke":
            target = reference(request["instance"], types, "Invoke-CimMethod -InputObject")
            method = _method(types, target["ClassName"], request["method"])
            arguments = method_arguments(target["ClassName"], method, request.get("arguments") or {}, types)
            output = host.invoke(target, method, arguments)
            return {"result": wire.method_result(target["ClassName"], method, output)}
        if op == "class":
            _namespace(request)
            try:
                class_name = _class(types, request["class"])
            except CimFault as fault:
                raise class_not_found() from fault
            return {"class": class_definition(types, class_name)}
        raise SimRefused(f"the CIM shim asked for {op!r}, which the simulator does not answer")
    except CimFault as fault:
        host.log("fault", request=op_summary(request), native=fault.native)
        return fault.wire()
    except ArgumentRefused as refused:
        return refused.wire()
    except (SimRefused, CimError) as refused:
        # CimError: the host model met a case it does not model (raised by host.py). Answered as a
        # refusal, so the module fails saying so, instead of a dropped connection.
        host.log("refused", request=op_summary(request), reason=str(refused))
        return SimRefused(str(refused)).wire()


def _method(types: Types, class_name: str, name: str) -> str:
    for known in types.schema.methods(class_name):
        if known.lower() == str(name).lower():
            return known
    raise SimRefused(f"{class_name} has no method {name}: the client sends the call and what the host answers is not documented")


def op_summary(request: dict[str, Any]) -> str:
    return " ".join(str(request.get(k)) for k in ("op", "class", "method") if request.get(k))


def class_definition(types: Types, class_name: str) -> dict[str, Any]:
    """What Get-CimClass gives: the properties (name, type, array, key, reference class) and methods."""
    keys = set(types.keys(class_name)) if class_name != "Msvm_Error" else set()
    properties = []
    for name in types.property_names(class_name):
        declared = types.schema.properties(class_name)[name]
        array = declared.startswith("[]")
        bare = declared[2:] if array else declared
        try:
            cim_type, _array = types.property_type(class_name, name)
        except SimRefused:
            cim_type = "unknown"  # Get-CimClass shows it; using it in an embedded instance is refused later
        properties.append({"name": name, "type": cim_type, "array": array, "key": name in keys,
                           "reference_class": bare if cim_type == "reference" else None})
    return {"class": class_name, "namespace": NAMESPACE, "superclass": (types.schema.lineage(class_name) + [None])[1],
            "properties": properties, "methods": sorted(types.schema.methods(class_name))}
