"""Market-data computation (calendar, synthetic candles, bars, indicators, validation).

Plain Python: nothing under this package imports Dagster.
"""
