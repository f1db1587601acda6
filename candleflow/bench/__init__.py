"""Benchmarks: ``python -m candleflow.bench WORKLOAD ...`` prints JSON figures."""
