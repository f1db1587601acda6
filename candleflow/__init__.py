"""candleflow: 1-minute OHLCV candles to derived bars, indicators and scan signals on Dagster."""
