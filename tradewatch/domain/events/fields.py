"""One payload field as a plain value for the flat records the consumers read (the compliance
and dashboard ``events`` modules): the same conversion the SQL read of the stored JSON gives.

- ``number``: float for a JSON number or a decimal string (how the trail stores declared
  decimals), None for anything else (booleans included: JSON's true is not 1 here);
- ``bool``: the JSON boolean, None for anything else;
- ``text``: str of the value.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

FieldKind = Literal["number", "bool", "text"]


def field_value(value: Any, kind: FieldKind) -> Any:
    if value is None:
        return None
    if kind == "number":
        if isinstance(value, bool):
            return None
        if isinstance(value, (int, float, Decimal)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return None
        return None
    if kind == "bool":
        return value if isinstance(value, bool) else None
    return str(value)


__all__ = ["FieldKind", "field_value"]
