"""An order's notional, as the policy defines it (the compliance rules and the dashboard's
risk-limit consumption both use this one definition).

    notional = quantity x price (account currency)
    price    = limit price (limit order) | decision price (market order) | last mid | unknown
"""

from __future__ import annotations


def order_price(order_type: str | None, limit_price: float | None, decision_price: float | None,
                mid: float | None) -> tuple[float | None, str | None]:
    """(price, what it is: "limit price", "decision price", "last mid"), or (None, None) when
    nothing prices the order."""
    if order_type == "limit" and limit_price is not None:
        return limit_price, "limit price"
    if decision_price is not None:
        return decision_price, "decision price"
    if mid is not None:
        return mid, "last mid"
    return None, None


__all__ = ["order_price"]
