"""The status API as a real server process (uvicorn on 127.0.0.1), and the CLI giving the same payloads.

The store holds a run in progress (A: ingest done, two indicator tasks still PROCESSING) and a run
that failed and was retried (B1, retried as B2 with root run B1). Timestamps come from a fixed
clock, so every expected value below is written out by hand.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from candleflow import status_cli
from candleflow.store.migrate import upgrade_schema
from candleflow.store.store import make_engine
from candleflow.tracking import TrackingService
from tests.tracking_fixtures import Clock

REPO = Path(__file__).resolve().parents[1]
RUN_A = "aaaaaaaa-0000-4000-8000-00000000000a"
RUN_B1 = "bbbbbbbb-0000-4000-8000-000000000001"
RUN_B2 = "bbbbbbbb-0000-4000-8000-000000000002"
UNKNOWN_RUN = "cccccccc-0000-4000-8000-00000000000c"
COUNTS_ZERO = {"PENDING": 0, "PROCESSING": 0, "COMPLETED": 0, "FAILED": 0, "CANCELLED": 0}


def _seed(engine) -> None:
    clock = Clock()
    svc = TrackingService(engine, now=clock)
    symbols = ["AAPL", "MSFT", "NVDA", "TSLA"]
    # run A, in progress
    ingest = svc.create("candle_ingest", run_id=RUN_A, step_key="raw_candles", partition_keys=symbols,
                        interval="1m")
    ind = svc.create("indicators", run_id=RUN_A, step_key="indicators", partition_keys=symbols, interval="1d")
    clock.at(1)
    svc.start("candle_ingest", ingest, RUN_A)
    clock.at(5)
    svc.complete("candle_ingest", ingest, rows_written=390)
    clock.at(10)
    svc.start("indicators", ind, RUN_A)
    clock.at(60)
    svc.progress("indicators", ind[2:], 5, 12)
    clock.at(70)
    svc.complete("indicators", ind[:2], rows_written={ind[0]: 100, ind[1]: 200})
    # run B1 fails for two symbols; run retry B2 (root B1) re-runs them: MSFT completes, IBM fails again
    h = 3600
    clock.at(h)
    scans = svc.create("scans", run_id=RUN_B1, step_key="scan_signals", partition_keys=["AAPL", "MSFT", "IBM"],
                       interval="1d", metadata={"upstream": "indicators"})
    clock.at(h + 5)
    svc.start("scans", scans, RUN_B1)
    clock.at(h + 20)
    svc.complete("scans", scans[:1], rows_written=3)
    svc.fail("scans", scans[1:], {scans[1]: "boom MSFT", scans[2]: "boom IBM"})
    clock.at(h + 60)
    assert svc.create("scans", run_id=RUN_B2, root_run_id=RUN_B1, step_key="scan_signals",
                      partition_keys=["AAPL", "MSFT", "IBM"]) == scans
    assert svc.retry("scans", scans).changed_ids == [2, 3]
    clock.at(h + 65)
    svc.start("scans", scans, RUN_B2)
    clock.at(h + 80)
    svc.fail("scans", [scans[2]], {scans[2]: "boom IBM again"})
    clock.at(h + 95)
    svc.complete("scans", [scans[1]], rows_written=7)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tracking_engine, tracking_url, tmp_path_factory):  # noqa: F811
    _seed(tracking_engine)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    folder = tmp_path_factory.mktemp("status_api")
    log_path, url_file = folder / "server.log", folder / "store-url"
    url_file.write_text(f"{tracking_url}\n")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "candleflow.status_api", "--port", str(port),
                                 "--store-url-file", str(url_file)], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait(10)
            raise AssertionError(f"status API did not start: {log_path.read_text()}")
        time.sleep(0.1)
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            yield client, str(url_file)
    finally:
        proc.terminate()
        proc.wait(10)
    assert "Traceback" not in log_path.read_text()  # no request above made the server fail


def get(client, path: str, status: int):
    response = client.get(path)
    assert "Traceback" not in response.text
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def cli(capsys, *argv) -> tuple[int, dict | None, str]:
    code = status_cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, (json.loads(out) if code == 0 else None), err


JOB_A = {
    "run_id": RUN_A,
    "root_run_ids": [RUN_A],
    "status": "PROCESSING",
    "progress": {"completed": 6, "finished": 6, "total": 8, "percentage": 75.0},
    "counts": {"overall": {**COUNTS_ZERO, "PROCESSING": 2, "COMPLETED": 6, "total": 8},
               "domains": {"candle_ingest": {**COUNTS_ZERO, "COMPLETED": 4, "total": 4},
                           "indicators": {**COUNTS_ZERO, "PROCESSING": 2, "COMPLETED": 2, "total": 4}}},
    "timestamps": {"first_created": "2024-03-08T14:00:00+00:00", "last_updated": "2024-03-08T14:01:10+00:00",
                   "first_started": "2024-03-08T14:00:01+00:00", "last_completed": "2024-03-08T14:01:10+00:00"},
    "errors": [],
    "errors_total": 0,
    "errors_truncated": False,
}

JOB_B_ERRORS = [{"domain": "scans", "id": 3, "partition_key": "IBM", "step_key": "scan_signals",
                 "run_id": RUN_B2, "attempts": 2, "error_message": "boom IBM again"}]


def _job_b(run_id: str) -> dict:
    return {
        "run_id": run_id,
        "root_run_ids": [RUN_B1],
        "status": "FAILED",
        "progress": {"completed": 2, "finished": 3, "total": 3, "percentage": 66.67},
        "counts": {"overall": {**COUNTS_ZERO, "COMPLETED": 2, "FAILED": 1, "total": 3},
                   "domains": {"scans": {**COUNTS_ZERO, "COMPLETED": 2, "FAILED": 1, "total": 3}}},
        "timestamps": {"first_created": "2024-03-08T15:00:00+00:00",
                       "last_updated": "2024-03-08T15:01:35+00:00",
                       "first_started": "2024-03-08T15:00:05+00:00",
                       "last_completed": "2024-03-08T15:01:35+00:00"},
        "errors": JOB_B_ERRORS,
        "errors_total": 1,
        "errors_truncated": False,
    }


TASK_SCANS_3 = {
    "domain": "scans", "id": 3, "status": "FAILED",
    "created_at": "2024-03-08T15:00:00+00:00", "updated_at": "2024-03-08T15:01:20+00:00",
    "started_at": "2024-03-08T15:01:05+00:00", "completed_at": "2024-03-08T15:01:20+00:00",
    "heartbeat_at": "2024-03-08T15:01:05+00:00", "error_message": "boom IBM again",
    "attempts": 2, "max_attempts": 3, "run_id": RUN_B2, "root_run_id": RUN_B1,
    "step_key": "scan_signals", "partition_key": "IBM", "items_completed": None, "items_total": None,
    "metadata_json": {"upstream": "indicators"}, "symbol": "IBM", "interval": "1d",
    "span_start": None, "span_end": None, "rows_written": 0, "duration_s": 15.0,
}

STATS_SCANS = {
    "domain": "scans",
    "counts": {**COUNTS_ZERO, "COMPLETED": 2, "FAILED": 1, "total": 3},
    "success": 2, "failure": 1, "success_rate": 0.666667,
    # durations 15 s (AAPL) and 30 s (MSFT's second attempt); linear percentiles
    "duration_s": {"count": 2, "p50": 22.5, "p90": 28.5, "p99": 29.85, "mean": 22.5, "max": 30.0},
}


def test_health(server, tracking_url):  # noqa: F811
    client, _ = server
    body = get(client, "/health", 200)
    assert body == {"status": "ok", "database": "postgresql" if tracking_url.startswith("postgresql") else "sqlite",
                    "schema_revision": "0005"}


def test_job_in_progress(server, capsys):
    client, url_file = server
    assert get(client, f"/jobs/{RUN_A}", 200) == JOB_A
    assert cli(capsys, "job", RUN_A, "--store-url-file", url_file) == (0, JOB_A, "")


def test_failed_then_retried_job_is_one_chain(server, capsys):
    client, url_file = server
    assert get(client, f"/jobs/{RUN_B1}", 200) == _job_b(RUN_B1)
    assert get(client, f"/jobs/{RUN_B2}", 200) == _job_b(RUN_B2)
    assert cli(capsys, "status", "--store-url-file", url_file, "job", RUN_B2) == (0, _job_b(RUN_B2), "")


def test_tasks(server, capsys):
    client, url_file = server
    assert get(client, "/tasks/scans/3", 200) == TASK_SCANS_3
    assert cli(capsys, "task", "scans", "3", "--store-url-file", url_file) == (0, TASK_SCANS_3, "")

    failed = get(client, "/tasks/scans?status=FAILED", 200)
    assert (failed["total"], failed["limit"], failed["offset"], failed["status"]) == (1, 100, 0, "FAILED")
    assert failed["tasks"] == [TASK_SCANS_3]
    assert cli(capsys, "tasks", "scans", "--status", "FAILED", "--store-url-file", url_file) == (0, failed, "")

    page = get(client, "/tasks/indicators?status=PROCESSING&limit=1", 200)
    assert (page["total"], len(page["tasks"])) == (2, 1)
    newest = page["tasks"][0]
    assert (newest["id"], newest["partition_key"], newest["items_completed"], newest["items_total"]) == (
        4, "TSLA", 5, 12)
    second = get(client, "/tasks/indicators?status=PROCESSING&limit=1&offset=1", 200)
    assert second["tasks"][0]["partition_key"] == "NVDA"
    assert get(client, "/tasks/candle_ingest", 200)["total"] == 4


def test_stats(server, capsys):
    client, url_file = server
    assert get(client, "/stats/scans", 200) == STATS_SCANS
    assert cli(capsys, "stats", "scans", "--store-url-file", url_file) == (0, STATS_SCANS, "")


@pytest.mark.parametrize("path,status,detail", [
    (f"/jobs/{UNKNOWN_RUN}", 404, f"no tracked tasks for run '{UNKNOWN_RUN}'"),
    ("/tasks/scans/999", 404, "no task 999 in domain 'scans'"),
    ("/tasks/scans/99999999999", 404, "no task 99999999999 in domain 'scans'"),
    ("/tasks/nope/1", 404, "unknown domain 'nope': expected one of candle_ingest, derived_bars, indicators, scans"),
    ("/tasks/nope", 404, "unknown domain 'nope': expected one of candle_ingest, derived_bars, indicators, scans"),
    ("/stats/nope", 404, "unknown domain 'nope': expected one of candle_ingest, derived_bars, indicators, scans"),
    ("/jobs/NOT-A-RUN", 400, "malformed run id: expected 8-64 characters of 0-9, a-f and '-'"),
    ("/jobs/abc", 400, "malformed run id: expected 8-64 characters of 0-9, a-f and '-'"),
    ("/jobs/aaaaaaaa%27%20OR%201=1", 400, "malformed run id: expected 8-64 characters of 0-9, a-f and '-'"),
    ("/tasks/scans/abc", 400, "malformed task id: expected a positive integer"),
    ("/tasks/scans/0", 400, "malformed task id: expected a positive integer"),
    ("/tasks/scans/-1", 400, "malformed task id: expected a positive integer"),
    ("/tasks/scans?status=DONE", 400,
     "unknown status 'DONE': expected one of PENDING, PROCESSING, COMPLETED, FAILED, CANCELLED"),
    ("/tasks/scans?status=failed", 400,
     "unknown status 'failed': expected one of PENDING, PROCESSING, COMPLETED, FAILED, CANCELLED"),
    ("/tasks/scans?limit=0", 400, "malformed limit: expected an integer from 1 to 1000"),
    ("/tasks/scans?limit=x", 400, "malformed limit: expected an integer from 1 to 1000"),
    ("/tasks/scans?offset=-3", 400, "malformed offset: expected a non-negative integer"),
    ("/nowhere", 404, "Not Found"),
])
def test_errors_are_json_without_tracebacks(server, path, status, detail):
    client, _ = server
    assert get(client, path, status) == {"detail": detail}


@pytest.mark.parametrize("argv,message", [
    (["job", UNKNOWN_RUN], f"no tracked tasks for run '{UNKNOWN_RUN}'"),
    (["job", "NOT-A-RUN"], "malformed run id"),
    (["task", "scans", "999"], "no task 999 in domain 'scans'"),
    (["task", "scans", "x1"], "malformed task id"),
    (["task", "nope", "1"], "unknown domain 'nope'"),
    (["tasks", "scans", "--status", "DONE"], "unknown status 'DONE'"),
    (["stats", "nope"], "unknown domain 'nope'"),
])
def test_cli_unknown_or_malformed_exits_2(server, capsys, argv, message):
    _, url_file = server
    code, payload, err = cli(capsys, *argv, "--store-url-file", url_file)
    assert code == 2 and payload is None
    assert err.startswith("candleflow status: ") and message in err and err.count("\n") == 1


def test_cli_as_a_process(server):
    _, url_file = server
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "candleflow.status_cli", "job", RUN_B1,
                           "--store-url-file", url_file],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == _job_b(RUN_B1)


def test_internal_errors_are_a_generic_500(tmp_path, caplog):
    """A store that was never migrated to the tracking revision: the query fails inside; the client
    gets {"detail": "internal error"}, the traceback goes to the server log."""
    import asyncio

    from candleflow.status_api import create_app

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    upgrade_schema(engine, "0001")
    engine.dispose()
    app = create_app(url)

    async def requests():
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://status") as client:
            return await client.get("/health"), await client.get(f"/jobs/{RUN_A}")

    health, response = asyncio.run(requests())
    app.state.engine.dispose()
    assert health.json() == {"status": "ok", "database": "sqlite", "schema_revision": "0001"}
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error"}
    assert "Traceback" not in response.text and "no such table" not in response.text
    assert "no such table" in caplog.text  # logged server-side, with the traceback
    with pytest.raises(FileNotFoundError):
        create_app(f"sqlite:///{tmp_path / 'missing.db'}")
