"""The domain store: candles, indicator values and scan signals in SQLite or Postgres.

Plain SQLAlchemy 2 Core; nothing here imports Dagster.
"""

from candleflow.store.store import CandleStore

__all__ = ["CandleStore"]
