"""The multiprocess executor of universe runs: ``CANDLEFLOW_WORKERS`` processes (default: the
machine's cores), started by a forkserver that has already imported candleflow's definitions.

Dagster's multiprocess executor starts each step in a new Python process. With the default
``spawn`` that process imports Dagster, pandas, TA-Lib and the definitions again (about 2 s here);
a ``forkserver`` with ``preload_modules`` imports them once, and each step's process is a fork of
it (the step start is measured by ``python -m candleflow.bench universe-day``: ``worker_start_seconds``).
"""

import os

import dagster as dg

from candleflow.settings import Settings, read_settings

#: What the forkserver imports before it forks a step's process: the code location.
PRELOADED = ["candleflow.definitions"]


def worker_count(settings: Settings) -> int:
    return settings.workers or os.cpu_count() or 1


def executor_config(settings: Settings) -> dict:
    return {"max_concurrent": worker_count(settings),
            "start_method": {"forkserver": {"preload_modules": PRELOADED}}}


candleflow_multiprocess_executor = dg.multiprocess_executor.configured(
    executor_config(read_settings()), name="candleflow_multiprocess")
