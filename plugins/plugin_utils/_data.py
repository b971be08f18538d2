# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Copies of task data for the collection's filters and action plugins (internal to this collection)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def plain_copy(value: Any) -> Any:
    """A copy of value made of new dicts and lists, with its scalars as they are.

    Not copy.deepcopy: since ansible-core 2.19 a filter receives lazy containers that hold the
    templar, and deep-copying them copies its plugin loaders too, which ansible-core 2.21 reports
    as a deprecation (loaders instantiated with aliases) in every play that uses the filter.
    Walking the value renders it and copies only the data.
    """
    if isinstance(value, Mapping):
        return {key: plain_copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_copy(item) for item in value]
    return value
