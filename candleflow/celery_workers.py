"""dagster-celery workers on this host: start them, wait until they listen, kill one, stop them.

For the integration test and the benchmark; a deployment starts each worker with the same command
(``worker_command``; docs/deployment.md). Each worker is its own process group (the
``dagster-celery`` wrapper, the Celery main process and its pool), so killing a worker kills all
of it, as when its host dies.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

WORKER_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "celery-worker.yaml"
BIN = Path(sys.executable).parent


def worker_command(name: str, queue: str, concurrency: int, config_yaml: Path = WORKER_CONFIG) -> list[str]:
    return [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y", str(config_yaml),
            "-q", queue, "-n", name, "--", "--concurrency", str(concurrency), "--without-gossip",
            "--without-mingle"]


class LocalWorkers:
    """``count`` workers named ``<queue>-0``, ``<queue>-1``, ... listening on ``queue``.

    ``env`` must hold what a step needs (DAGSTER_HOME and the variables its dagster.yaml reads,
    CANDLEFLOW_STORE_URL, CANDLEFLOW_CELERY_BROKER / _BACKEND). Logs go to ``log_dir``.
    """

    def __init__(self, env: dict[str, str], queue: str, log_dir: Path, count: int = 2, concurrency: int = 1):
        self.env = {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"}  # the wrapper runs `celery`
        self.queue, self.log_dir, self.concurrency = queue, log_dir, concurrency
        self.names = [f"{queue}-{index}" for index in range(count)]
        self.processes: dict[str, subprocess.Popen] = {}

    def log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self, timeout: float = 90) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in self.names:
            with open(self.log(name), "w") as out:
                self.processes[name] = subprocess.Popen(
                    worker_command(name, self.queue, self.concurrency), env=self.env, stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        for name in self.names:
            while f"{name}@" not in self._ready_line(name):
                if self.processes[name].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"celery worker {name} did not start; its log:\n"
                                       f"{self.log(name).read_text()[-3000:]}")
                time.sleep(0.2)

    def _ready_line(self, name: str) -> str:
        return next((line for line in self.log(name).read_text().splitlines() if line.endswith(" ready.")), "")

    def kill(self, name: str) -> None:
        """SIGKILL to the whole worker: nothing of it gets to clean up or acknowledge."""
        process = self.processes[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop(self, grace: float = 20) -> None:
        """SIGTERM (Celery's warm shutdown: the running task finishes), SIGKILL after ``grace`` s."""
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            while _group_alive(process) and time.monotonic() < deadline:
                time.sleep(0.1)
            _signal_group(process, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> "LocalWorkers":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _group_alive(process: subprocess.Popen) -> bool:
    process.poll()  # reap the group leader if it exited, so that it no longer counts
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def delete_queue(broker_url: str, queue: str) -> None:
    """Remove a queue and the exchange Celery declared for it (a test's own queue, afterwards)."""
    from kombu import Connection

    with Connection(broker_url) as connection:
        channel = connection.default_channel
        channel.queue_delete(queue)
        channel.exchange_delete(queue)
