"""The Celery executor of the distributed jobs, configured from the settings
(``CANDLEFLOW_CELERY_BROKER``, ``_BACKEND``, ``_QUEUE``: ``candleflow/settings.py``).

Broker and backend set in the environment are given to the executor as ``{"env": VARIABLE}``, as a
resource gets a ``dg.EnvVar``: resolved where the run is orchestrated (``dagster job execute``, or
the run worker the daemon launches), never shown in the UI (a broker URL holds a password). The
workers listen on the same broker and queue (``deploy/celery-worker.yaml``, ``docs/deployment.md``).
The queue is the Celery app's default queue: every step goes to it.
"""

from dagster_celery import celery_executor

from candleflow.settings import Settings, read_settings, variable


def executor_config(settings: Settings) -> dict:
    def source(name: str):
        return {"env": variable(name)} if name in settings.from_environment else getattr(settings, name)

    return {"broker": source("celery_broker"), "backend": source("celery_backend"),
            "config_source": {"task_default_queue": settings.celery_queue}}


candleflow_celery_executor = celery_executor.configured(executor_config(read_settings()), name="candleflow_celery")
