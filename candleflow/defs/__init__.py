"""Dagster definitions, one folder per domain, loaded as dg loads a project's defs folder
(``candleflow.definitions``): every asset, job, sensor and schedule at the top level of a module
here is part of the code location.

``market_data``: the four per-symbol assets, their jobs (per range of symbols; sharded over Celery),
the landing-folder and readiness sensors and the daily schedule. ``tracking``: what keeps the task
tracking rows true (run failure and cancel sensors, the reconciler) and their retention.
"""
