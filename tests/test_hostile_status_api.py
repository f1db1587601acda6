"""Hostile-user findings on the status API and the status CLI (issue 11): redirects built from the
Host header, names that pass with a trailing newline, store URLs (and their passwords) in process
arguments and messages. The server is the real one of tests/test_status_api.py."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_status_api import REPO, RUN_A, cli, get, server  # noqa: F401

SECRET = "S3cretPW"
MALFORMED_RUN_ID = "malformed run id: expected 8-64 characters of 0-9, a-f and '-'"
MALFORMED_TASK_ID = "malformed task id: expected a positive integer"
REMOVED_OPTION = ("--store-url was removed (a URL in the process arguments is visible to every local "
                  "user): use CANDLEFLOW_STORE_URL or --store-url-file PATH")


@pytest.mark.parametrize("path", [f"/jobs/{RUN_A}/", "/tasks/scans/", "/tasks/scans/3/", "/health/"])
def test_a_trailing_slash_is_a_plain_404_without_a_redirect(server, path):  # noqa: F811
    client, _ = server
    response = client.get(path, headers={"Host": "evil.example"})
    assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})
    assert "location" not in response.headers


@pytest.mark.parametrize("path,status,detail", [
    ("/tasks/candle_ingest/1%0A", 400, MALFORMED_TASK_ID),
    ("/tasks/candle_ingest/1%0D%0A", 400, MALFORMED_TASK_ID),
    (f"/jobs/{RUN_A}%0A", 400, MALFORMED_RUN_ID),
    ("/tasks/candle_ingest%0A/1", 404,
     "unknown domain 'candle_ingest\\n': expected one of candle_ingest, derived_bars, indicators, scans"),
])
def test_a_trailing_newline_is_malformed(server, path, status, detail):  # noqa: F811
    client, _ = server
    assert get(client, "/tasks/candle_ingest/1", 200)["id"] == 1
    assert get(client, path, status) == {"detail": detail}


@pytest.mark.parametrize("argv,message", [
    (["task", "candle_ingest", "1\n"], MALFORMED_TASK_ID),
    (["job", f"{RUN_A}\n"], MALFORMED_RUN_ID),
])
def test_the_cli_refuses_a_trailing_newline(server, capsys, argv, message):  # noqa: F811
    _, url_file = server
    assert cli(capsys, *argv, "--store-url-file", url_file) == (2, None, f"candleflow status: {message}\n")


def test_the_cli_reads_the_store_url_from_the_environment(server, capsys, monkeypatch):  # noqa: F811
    _, url_file = server
    monkeypatch.setenv("CANDLEFLOW_STORE_URL", Path(url_file).read_text().strip())
    code, payload, err = cli(capsys, "task", "candle_ingest", "1")
    assert (code, payload["id"], payload["partition_key"], err) == (0, 1, "AAPL", "")


def test_the_cli_refuses_a_store_url_argument_without_echoing_it(capsys):
    code, payload, err = cli(capsys, "job", RUN_A, "--store-url", f"postgresql://postgres:{SECRET}@db1/candleflow")
    assert (code, payload) == (2, None)
    assert err.endswith(f"candleflow status job: error: {REMOVED_OPTION}\n") and SECRET not in err


def test_the_api_refuses_a_store_url_argument_without_echoing_it():
    done = run_api("--store-url", f"postgresql://postgres:{SECRET}@db1/candleflow")
    assert done.returncode == 2
    assert done.stderr.endswith(f"python -m candleflow.status_api: error: {REMOVED_OPTION}\n")
    assert SECRET not in done.stderr + done.stdout


@pytest.mark.parametrize("content,message", [
    (None, "cannot read the store URL file {path}: No such file or directory"),
    ("directory", "cannot read the store URL file {path}: Is a directory"),
    ("\n  \n", "the store URL file {path} is empty"),
    (b"\xffpostgresql://postgres:S3cretPW@db1/candleflow", "cannot read the store URL file {path}: not UTF-8 text"),
    (f"postgresq://postgres:{SECRET}@db1/candleflow\n",
     "unsupported store URL scheme 'postgresq' in 'postgresq://postgres:***@db1/candleflow': "
     "use sqlite:///PATH or postgresql://..."),
])
def test_a_bad_store_url_file_is_one_line_naming_the_file(tmp_path, capsys, content, message):
    path = tmp_path / "store-url"
    if content == "directory":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    expected = message.format(path=path)
    assert cli(capsys, "stats", "scans", "--store-url-file", str(path)) == (1, None, f"candleflow status: {expected}\n")
    done = run_api("--store-url-file", str(path))
    assert (done.returncode, done.stderr) == (1, f"python -m candleflow.status_api: {expected}\n")


def test_a_url_given_as_the_file_name_is_not_printed_with_its_password(capsys):
    code, _, err = cli(capsys, "stats", "scans", "--store-url-file", f"postgresql://postgres:{SECRET}@db1/db")
    assert (code, err) == (1, "candleflow status: cannot read the store URL file "
                              "postgresql://postgres:***@db1/db: No such file or directory\n")


def test_a_refused_connection_is_reported_without_the_password(capsys, monkeypatch):
    monkeypatch.setenv("CANDLEFLOW_STORE_URL",
                       f"postgresql://postgres:{SECRET}@127.0.0.1:5432/candleflow_no_such_database")
    code, _, err = cli(capsys, "stats", "scans")
    assert code == 1
    assert err.startswith("candleflow status: cannot read the store: OperationalError: ")
    assert 'database "candleflow_no_such_database" does not exist' in err and SECRET not in err


def run_api(*argv: str) -> subprocess.CompletedProcess:
    """``python -m candleflow.status_api`` on a free port; it must exit by itself (on bad input)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "candleflow.status_api", "--port", "0", *argv], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=60)
