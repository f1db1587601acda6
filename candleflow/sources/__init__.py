"""Where raw candles come from: a synthetic generator or a landing folder of files.

Plain Python; the Dagster resources in ``candleflow.resources`` wrap these classes.
"""
