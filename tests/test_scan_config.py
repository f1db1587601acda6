"""Scans from configuration: name, formula, interval and universe; clear errors for bad entries."""

import pytest

from candleflow.pipeline.scan_config import load_scans


def write(tmp_path, text):
    path = tmp_path / "scans.yaml"
    path.write_text(text)
    return path


def test_packaged_scans_load():
    scans = load_scans()
    assert [s.name for s in scans][:2] == ["oversold_in_uptrend", "golden_cross"]
    assert all(s.universe is None for s in scans)


def test_universe_as_list_and_file(tmp_path):
    (tmp_path / "banks.txt").write_text("JPM\nBAC\n")
    path = write(tmp_path, """scans:
  - {name: a, formula: "close > 1", interval: 1d, universe: [AAPL, MSFT]}
  - {name: b, formula: "close > 1", universe: banks.txt}
""")
    a, b = load_scans(path)
    assert (a.universe, b.universe, b.interval) == (("AAPL", "MSFT"), ("JPM", "BAC"), "1d")


@pytest.mark.parametrize(("entry", "message"), [
    ('{name: a, formula: "close >", interval: 1d}', "scan 'a': invalid syntax"),
    ('{name: a, formula: "close > 1", interval: 2m}', "scan 'a': unknown interval '2m'"),
    ('{name: a, formula: "close > 1", universe: [aapl]}', "scan 'a': malformed symbol 'aapl'"),
    ('{name: a, formula: "close > 1", universe: missing.txt}', "scan 'a': [Errno 2] No such file"),
    ('{name: Bad-Name, formula: "close > 1"}', "scan #1 has an invalid name 'Bad-Name'"),
    ('{name: a, formula: "close > 1", colour: red}', "scan #1 may only have formula, interval, name, universe"),
    ('{name: a, formula: "__import__(1)"}', "scan 'a': "),
])
def test_bad_entries(tmp_path, entry, message):
    with pytest.raises(ValueError, match=None) as error:
        load_scans(write(tmp_path, f"scans:\n  - {entry}\n"))
    assert message in str(error.value)
    assert str(error.value).startswith(str(tmp_path / "scans.yaml"))


def test_duplicate_names(tmp_path):
    with pytest.raises(ValueError, match="scan names must be unique"):
        load_scans(write(tmp_path, 'scans:\n  - {name: a, formula: "close > 1"}\n  - {name: a, formula: "close > 2"}\n'))
