"""The domain store: candles, indicator values and scan signals in SQLite or Postgres.

Plain SQLAlchemy 2 Core; nothing here imports Dagster. The pipeline depends on the
``MarketDataRepository`` protocol; ``CandleStore`` implements it on the engines of
``candleflow.store.dialects``.
"""

from candleflow.store.repository import MarketDataRepository
from candleflow.store.store import CandleStore

__all__ = ["CandleStore", "MarketDataRepository"]
