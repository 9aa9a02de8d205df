"""The simulator's position book and cash ledger.

Realized PnL uses the **average-cost** method: buying into a long (or selling into a short)
moves the average price to the quantity-weighted mean of the old average and the fill price;
a fill against the position realizes ``closed_quantity * (fill_price - avg_price) * multiplier``
on the long side (the negative of that on the short side) and leaves the average unchanged; a
fill that crosses zero closes the old position at the average and opens the remainder at the
fill price. Realized PnL is gross of fees: fees are charged to cash (and so to equity) and are
reported on each fill.

Unrealized PnL is ``(market_price - avg_price) * quantity * multiplier`` (quantity signed).
Cash: a buy pays ``quantity * price * multiplier + fee``, a sell receives
``quantity * price * multiplier - fee``. Equity is cash plus the signed market value of all
positions, so ``equity = initial cash + realized - fees + unrealized`` up to the rounding of
the average price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal(0)
AVG_PRICE_QUANTUM = Decimal("0.00000001")
CENT = Decimal("0.01")


@dataclass(slots=True)
class Position:
    """One strategy's position in one instrument."""

    quantity: Decimal = ZERO
    avg_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    multiplier: Decimal = Decimal(1)

    def unrealized_pnl(self, market_price: Decimal) -> Decimal:
        if not self.quantity:
            return ZERO
        return (market_price - self.avg_price) * self.quantity * self.multiplier

    def apply(self, signed_quantity: Decimal, price: Decimal) -> Decimal:
        """Apply a fill (positive buys, negative sells); return the PnL it realized."""
        q = self.quantity
        realized = ZERO
        if not q or (q > 0) == (signed_quantity > 0):
            new_q = q + signed_quantity
            self.avg_price = ((abs(q) * self.avg_price + abs(signed_quantity) * price) / abs(new_q)).quantize(AVG_PRICE_QUANTUM)
            self.quantity = new_q
            return realized
        closed = min(abs(signed_quantity), abs(q))
        direction = 1 if q > 0 else -1
        realized = closed * (price - self.avg_price) * direction * self.multiplier
        self.realized_pnl += realized
        new_q = q + signed_quantity
        if not new_q:
            self.avg_price = ZERO
        elif (new_q > 0) != (q > 0):
            self.avg_price = price  # the remainder opened a position the other way at this price
        self.quantity = new_q
        return realized


@dataclass(slots=True)
class PositionBook:
    """Positions per (strategy, symbol) and the cash of the account that holds them."""

    cash: Decimal = ZERO
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)

    def position(self, strategy_id: str, symbol: str, multiplier: Decimal = Decimal(1)) -> Position:
        key = (strategy_id, symbol)
        pos = self.positions.get(key)
        if pos is None:
            pos = self.positions[key] = Position(multiplier=multiplier)
        return pos

    def apply_fill(
        self,
        strategy_id: str,
        symbol: str,
        side: str,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal = ZERO,
        multiplier: Decimal = Decimal(1),
    ) -> Position:
        """Book a fill: update the position (average cost) and cash; return the position."""
        if side not in ("buy", "sell"):
            raise ValueError(f"side {side!r}: accepted buy or sell")
        if quantity <= 0:
            raise ValueError(f"quantity {quantity}: must be positive")
        pos = self.position(strategy_id, symbol, multiplier)
        signed = quantity if side == "buy" else -quantity
        pos.apply(signed, price)
        pos.fees += fee
        self.cash -= signed * price * pos.multiplier + fee
        return pos

    def exposures(self, marks: dict[str, Decimal], strategies: frozenset[str] | None = None) -> tuple[Decimal, Decimal]:
        """(gross, net) market value of the positions, marked at ``marks[symbol]``."""
        gross = net = ZERO
        for (strategy_id, symbol), pos in self.positions.items():
            if not pos.quantity or (strategies is not None and strategy_id not in strategies):
                continue
            value = pos.quantity * marks[symbol] * pos.multiplier
            gross += abs(value)
            net += value
        return gross, net
