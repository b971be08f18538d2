"""What the simulator's host modules share: the refusal to guess, and reading embedded instances."""

from __future__ import annotations

import xml.etree.ElementTree as ET


class CimError(Exception):
    """The simulator was asked for something it does not model (a test tooling gap, never an answer)."""


def _properties(text: str, name: str) -> list:
    if not text:
        return []
    return [prop for prop in ET.fromstring(text).iter() if prop.tag in ("PROPERTY", "PROPERTY.ARRAY") and prop.get("NAME") == name]


def embedded_property(text: str, name: str) -> str | None:
    """A property value of an embedded CIM-XML instance (as New-HvEmbeddedInstance makes them)."""
    for prop in _properties(text, name):
        value = prop.find("VALUE")
        return value.text if value is not None else None
    return None


def embedded_array(text: str, name: str) -> list[str]:
    """The values of an array property of an embedded CIM-XML instance (none when it is absent or null)."""
    for prop in _properties(text, name):
        return [value.text or "" for value in prop.findall("VALUE.ARRAY/VALUE")]
    return []
