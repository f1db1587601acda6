"""The Celery executor of the distributed jobs, configured from the environment.

| variable | default |
| --- | --- |
| ``CANDLEFLOW_CELERY_BROKER`` | ``amqp://guest:guest@127.0.0.1:5672//`` (RabbitMQ) |
| ``CANDLEFLOW_CELERY_BACKEND`` | ``rpc://`` (results as broker messages to the run worker) |
| ``CANDLEFLOW_CELERY_QUEUE`` | ``candleflow`` |

Read where the run is orchestrated (``dagster job execute``, or the run worker the daemon
launches). The workers listen on the same broker and queue (``deploy/celery-worker.yaml``,
``docs/deployment.md``). The queue is the Celery app's default queue: every step goes to it.
"""

import os

from dagster_celery import celery_executor

DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_BACKEND = "rpc://"
DEFAULT_QUEUE = "candleflow"


def celery_queue() -> str:
    return os.environ.get("CANDLEFLOW_CELERY_QUEUE", DEFAULT_QUEUE)


candleflow_celery_executor = celery_executor.configured(
    {
        "broker": os.environ.get("CANDLEFLOW_CELERY_BROKER", DEFAULT_BROKER),
        "backend": os.environ.get("CANDLEFLOW_CELERY_BACKEND", DEFAULT_BACKEND),
        "config_source": {"task_default_queue": celery_queue()},
    },
    name="candleflow_celery",
)
