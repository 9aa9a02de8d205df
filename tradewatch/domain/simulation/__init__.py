"""A deterministic synthetic trading engine producing realistic, linked audit event chains.

Used by ``tradewatch simulate``, ``make demo`` and the benchmarks. Pure: the caller passes the
start time (integer nanoseconds) and the seed (in the config); see ``simulator`` for the model
and ``book`` for the position and PnL accounting (average cost).
"""

from tradewatch.domain.simulation.book import Position, PositionBook
from tradewatch.domain.simulation.config import DEFAULT_SYMBOLS, SimulationConfig, SymbolConfig
from tradewatch.domain.simulation.simulator import TradingSimulator

__all__ = ["DEFAULT_SYMBOLS", "Position", "PositionBook", "SimulationConfig", "SymbolConfig", "TradingSimulator"]
