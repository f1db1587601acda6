"""Table definitions of the domain store (documented in docs/tables.md)."""

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text, text

metadata = MetaData()

candles = Table(
    "candles",
    metadata,
    Column("symbol", String(16), primary_key=True),
    Column("interval", String(4), primary_key=True),
    Column("bar_start", BigInteger, primary_key=True, comment="bar start, Unix epoch seconds UTC"),
    Column("open", Float(53), nullable=False),
    Column("high", Float(53), nullable=False),
    Column("low", Float(53), nullable=False),
    Column("close", Float(53), nullable=False),
    Column("volume", Float(53), nullable=False),
    Column("minutes", Integer, nullable=False, comment="1m bars that went into the bar"),
    Column("complete", Boolean, nullable=False),
    Column("part", String(8), nullable=False, server_default="regular",
           comment="pre, regular or post: the part of the session a bar is in"),
)
#: Only the bars still open: what a run looks through to finish the ones whose window has passed.
Index("idx_candles_incomplete", candles.c.symbol, candles.c.interval, candles.c.bar_start,
      postgresql_where=text("NOT complete"), sqlite_where=text("NOT complete"))

indicator_values = Table(
    "indicator_values",
    metadata,
    Column("symbol", String(16), primary_key=True),
    Column("interval", String(4), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("bar_start", BigInteger, primary_key=True),
    Column("value", Float(53), nullable=False),
)

signals = Table(
    "signals",
    metadata,
    Column("scan", String(64), primary_key=True),
    Column("symbol", String(16), primary_key=True),
    Column("interval", String(4), primary_key=True),
    Column("bar_start", BigInteger, primary_key=True),
    Column("formula", Text, nullable=False),
    Column("term_values", Text, nullable=False, comment="JSON: value of each formula term"),
)
