"""The market data domain: candles to scan signals, and what launches and announces its runs."""
