"""The Dagster UI in a real browser: find the asset graph, materialize one symbol, see it stored.

`dagster-webserver` runs on loopback against a temporary DAGSTER_HOME and SQLite store; Debian's
Chromium (driven by Playwright, which cannot download its own browser here) clicks through the UI
like a user. Screenshots go to $CANDLEFLOW_TEST_ARTIFACTS (default tests/artifacts/), also when a
step fails.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from candleflow.store import CandleStore

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.chromium
ARTIFACTS = Path(os.environ.get("CANDLEFLOW_TEST_ARTIFACTS", REPO / "tests" / "artifacts"))
SYMBOLS = ["AAPL", "KO", "MSFT"]
ASSETS = ["raw_candles", "derived_bars", "indicators", "scan_signals"]
# Without the background-networking flags Chromium reaches for the network, which is closed here.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# The deploy instance keeps Dagster's default QueuedRunCoordinator, whose queue only the daemon
# (`make ui` = `dagster dev`) drains; a lone webserver must launch the run itself.
LAUNCH_IMMEDIATELY = """
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def ui_env(tmp_path, monkeypatch) -> dict[str, str]:
    """Environment of a temporary instance whose universe is SYMBOLS, with daily history; its
    DAGSTER_HOME is also this process's, for the test to read the instance."""
    home = tmp_path / "dagster"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    (home / "dagster.yaml").write_text((REPO / "deploy" / "dagster-sqlite.yaml").read_text() + LAUNCH_IMMEDIATELY)
    env = {**os.environ, "DAGSTER_HOME": str(home), "CANDLEFLOW_HOME": str(tmp_path),
           "CANDLEFLOW_STORE_URL": f"sqlite:///{tmp_path / 'candleflow.db'}",
           "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1", "DAGSTER_EVENT_BATCH_SIZE": "1000"}
    cli = [sys.executable, "-m", "candleflow.cli"]
    for args in (["universe", "add", *SYMBOLS], ["preload", "--sessions", "260"]):
        subprocess.run([*cli, *args], env=env, cwd=REPO, check=True, capture_output=True, timeout=120)
    return env


@pytest.fixture
def webserver(ui_env, tmp_path) -> Iterator[str]:
    """Base URL of `dagster-webserver` serving candleflow.definitions; stopped with its children."""
    port = _free_port()
    log = tmp_path / "webserver.log"
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [str(BIN / "dagster-webserver"), "-m", "candleflow.definitions", "-h", "127.0.0.1",
             "-p", str(port)], env=ui_env, cwd=REPO, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(base, server, log)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _wait_for_server(base: str, server: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"dagster-webserver exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/server_info", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"dagster-webserver did not answer {base}/server_info in {timeout:.0f} s:\n"
                f"{log.read_text()[-3000:]}")


@pytest.fixture
def page(tmp_path) -> Iterator[Page]:
    """A page of headless Debian Chromium with a new, empty profile."""
    if not CHROMIUM.exists():
        pytest.fail(f"Debian's Chromium is missing at {CHROMIUM}: apt-get install -y chromium "
                    "(.ci/run installs it)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile", executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 900})
        # A fresh instance shows localhost visitors a newsletter dialog a second after load, which
        # would swallow a click; dismissed up front as its Skip button does (browser storage).
        context.add_init_script("localStorage.setItem('communityNux', '\"1\"')")
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield page
        context.close()


@contextmanager
def screenshot_on_failure(page: Page, name: str) -> Iterator[None]:
    """Save ``{name}-failure.png`` if the block fails (and drop one left by an earlier run)."""
    path = ARTIFACTS / f"{name}-failure.png"
    path.unlink(missing_ok=True)
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=path, full_page=True)
        raise


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png")


def test_materialize_one_symbol_from_the_asset_graph(webserver, ui_env, page):
    show_asset_graph(page, webserver)
    launch_one_partition(page, "MSFT")
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        assert run.tags["dagster/partition"] == "MSFT"
        assert wait_for_run_outcome(page, webserver, run.run_id) == "Success"
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.SUCCESS
        for asset in ASSETS:
            assert set(instance.get_materialized_partitions(dg.AssetKey(asset))) == {"MSFT"}, asset
    store = CandleStore(ui_env["CANDLEFLOW_STORE_URL"])
    for interval in ("1m", "5m", "1h"):
        assert set(store.read_candles(SYMBOLS, interval)["symbol"]) == {"MSFT"}, interval
    assert set(store.read_indicators(SYMBOLS, "1d")["symbol"]) == {"MSFT"}
    store.dispose()
    assert chart_size(page, webserver, "MSFT") == [640, 320]


def show_asset_graph(page: Page, base: str) -> None:
    """The global lineage, its groups expanded: every asset in view."""
    with screenshot_on_failure(page, "ui-asset-graph"):
        page.goto(f"{base}/asset-groups")
        for group in ("ingest", "bars", "analytics"):
            expect(page.get_by_text(group, exact=True).first).to_be_visible()
        page.locator("button:has([aria-label=settings])").last.click()
        page.get_by_role("menuitem", name="Expand all groups").click()
        page.get_by_text("Global asset lineage").click()  # closes the menu
        expect(page.get_by_role("menu")).to_be_hidden()
        for asset in ASSETS:
            expect(page.get_by_text(asset, exact=True)).to_be_visible()
        screenshot(page, "ui-asset-graph")


def launch_one_partition(page: Page, symbol: str) -> None:
    """Materialize all… -> one partition in the partition dialog -> launch (one run, no backfill)."""
    with screenshot_on_failure(page, "ui-launch"):
        page.get_by_role("button", name="Materialize all…").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_text("Select a partition or create one").click()
        page.get_by_role("menuitem", name=symbol).click()
        page.keyboard.press("Escape")
        expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
        dialog.get_by_role("button", name="Launch 1 run").click()
        expect(page.get_by_text(re.compile(r"^Launched run"))).to_be_visible()


def wait_for_run_outcome(page: Page, base: str, run_id: str) -> str:
    """The run page's status once the run has ended: Success, Failure or Canceled."""
    with screenshot_on_failure(page, "ui-run"):
        page.goto(f"{base}/runs/{run_id}")
        outcome = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
        expect(outcome).to_be_visible(timeout=90_000)
        screenshot(page, "ui-run")
        return outcome.inner_text()


def chart_size(page: Page, base: str, symbol: str) -> list[int]:
    """Width and height of the chart in the symbol's latest ``indicators`` materialization."""
    with screenshot_on_failure(page, "ui-chart"):
        page.goto(f"{base}/assets/indicators?view=partitions&partition={symbol}")
        expect(page.get_by_text("Materialized", exact=True).first).to_be_visible()
        page.get_by_text("[Show Markdown]").click()
        chart = page.get_by_role("img", name=f"{symbol} chart")
        expect(chart).to_be_visible()
        screenshot(page, "ui-chart")
        return chart.evaluate("image => [image.naturalWidth, image.naturalHeight]")
