"""Hostile configuration: names with a trailing newline, YAML alias bombs, non-string fields,
universe files outside the scans file's folder or holding what is not a symbol."""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from candleflow.market.indicators import load_indicator_specs
from candleflow.market.symbols import SymbolError, read_universe_file, validate_symbol
from candleflow.pipeline import scan_config
from candleflow.pipeline.scan_config import load_scans

REPO = Path(__file__).resolve().parents[1]
SYMBOL_RULE = ("expected 1-6 upper-case letters or digits starting with a letter, optionally with a"
               " share class after '.' or '-' (e.g. AAPL, BRK.B)")
NO_ALIASES = "YAML anchors and aliases are not allowed"


def write(folder: Path, text: str, name: str = "scans.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def refusal(path, text: str = "") -> str:
    """The message of the ValueError load_scans raises for the scans file at ``path``."""
    with pytest.raises(ValueError) as error:
        load_scans(write(Path(path).parent, text) if text else path)
    return str(error.value)


def test_a_trailing_newline_is_not_a_symbol():
    with pytest.raises(SymbolError) as error:
        validate_symbol("NEWL\n")
    assert str(error.value) == f"malformed symbol 'NEWL\\n': {SYMBOL_RULE}"


def test_a_scan_name_with_a_trailing_newline_is_refused(tmp_path):
    path = tmp_path / "scans.yaml"
    message = refusal(path, 'scans:\n  - {name: "dup\\n", formula: "close > 1"}\n'
                            '  - {name: dup, formula: "close > 2"}\n')
    assert message == (f"{path}: scan #1 has an invalid name 'dup\\n' "
                       "(lower-case letters, digits and _, starting with a letter)")


def test_cli_refuses_a_newline_symbol_and_names_only_the_line_of_a_bad_universe_file(tmp_path):
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster-sqlite.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "CANDLEFLOW_HOME": str(tmp_path)}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "candleflow.cli", "universe", *args], env=env,
                              cwd=REPO, capture_output=True, text=True, timeout=120)

    added = cli("add", "NEWL\n")
    assert added.returncode == 2
    assert f"candleflow: error: malformed symbol 'NEWL\\n': {SYMBOL_RULE}\n" in added.stderr
    universe = tmp_path / "u.txt"
    universe.write_text("AAPL\nhunter2 secret\n")
    synced = cli("sync", str(universe))
    assert synced.returncode == 2
    assert f"candleflow: error: {universe}:2: not a valid symbol ({SYMBOL_RULE})\n" in synced.stderr
    assert "hunter2" not in synced.stderr
    assert cli("list").stdout == "\n"  # nothing was added


def laughs(lead: str) -> list[str]:
    """Eight levels of ten aliases each: 10**8 strings once expanded, from a few hundred bytes.
    ``lead`` starts each line, with ``{}`` for the level's name."""
    lines = [f"{lead.format('a')}&a [{', '.join(['lol'] * 10)}]"]
    for previous, name in zip("abcdefg", "bcdefgh"):
        lines.append(f"{lead.format(name)}&{name} [{', '.join([f'*{previous}'] * 10)}]")
    return lines


def test_an_alias_bomb_in_the_scans_file_is_refused_before_it_expands(tmp_path):
    path = tmp_path / "scans.yaml"
    text = "\n".join([*laughs("{}: "), "scans:", "  - name: boom", "    formula: *h", ""])
    assert refusal(path, text) == f"{path}: line 1: {NO_ALIASES}"


def test_an_alias_bomb_in_the_indicator_spec_is_refused_before_it_expands(tmp_path):
    path = write(tmp_path, "\n".join([
        "- name: boom", "  function: SMA", "  inputs: [close]", "  outputs: [boom]", "  intervals:",
        *laughs("    - "), ""]), "indicators.yaml")
    with pytest.raises(ValueError) as error:
        load_indicator_specs(path)
    assert str(error.value) == f"{path}: line 6: {NO_ALIASES}"


def test_a_single_alias_is_refused_too(tmp_path):
    path = tmp_path / "scans.yaml"
    text = 'f: &f "close > 1"\nscans:\n  - {name: a, formula: *f}\n'
    assert refusal(path, text) == f"{path}: line 1: {NO_ALIASES}"


@pytest.mark.parametrize(("entry", "message"), [
    ('{name: 5, formula: "close > 1"}', "scan #1: name must be a string, not int"),
    ("{name: a, formula: [close, 1]}", "scan 'a': formula must be a string, not list"),
    ("{name: a, formula: 1}", "scan 'a': formula must be a string, not int"),
    ('{name: a, formula: "close > 1", interval: {x: 1}}', "scan 'a': interval must be a string, not dict"),
    ('{name: a, formula: "close > 1", universe: 5}',
     "scan 'a': universe must be a list of symbols or a file name, not int"),
])
def test_non_string_fields_are_refused(tmp_path, entry, message):
    path = tmp_path / "scans.yaml"
    assert refusal(path, f"scans:\n  - {entry}\n") == f"{path}: {message}"


def scan_with_universe(folder: Path, universe: str) -> Path:
    return write(folder, f'scans:\n  - {{name: a, formula: "close > 1", universe: "{universe}"}}\n')


def test_a_universe_file_outside_the_folder_is_refused_without_reading_it(tmp_path):
    folder = tmp_path / "conf"
    environ = "../" * len(folder.parts) + "proc/self/environ"
    path = scan_with_universe(folder, environ)
    message = refusal(path)
    assert message == f"{path}: scan 'a': universe file '{environ}' is outside the scans file's folder"
    assert "PATH=" not in message


def test_an_absolute_universe_file_is_refused(tmp_path):
    (tmp_path / "banks.txt").write_text("JPM\n")
    path = scan_with_universe(tmp_path, str(tmp_path / "banks.txt"))
    assert refusal(path) == (f"{path}: scan 'a': universe file '{tmp_path / 'banks.txt'}' must be "
                             "a path relative to the scans file's folder")


def test_a_universe_file_linked_out_of_the_folder_is_refused(tmp_path):
    (tmp_path / "elsewhere.txt").write_text("JPM\n")
    folder = tmp_path / "conf"
    path = scan_with_universe(folder, "banks.txt")
    (folder / "banks.txt").symlink_to(tmp_path / "elsewhere.txt")
    assert refusal(path) == f"{path}: scan 'a': universe file 'banks.txt' is outside the scans file's folder"


def test_a_universe_file_linked_inside_the_folder_is_read(tmp_path):
    write(tmp_path / "lists", "JPM\nBAC\n", "banks.txt")
    (tmp_path / "banks.txt").symlink_to(tmp_path / "lists" / "banks.txt")
    path = write(tmp_path, 'scans:\n  - {name: a, formula: "close > 1", universe: banks.txt}\n'
                           '  - {name: b, formula: "close > 1", universe: lists/banks.txt}\n')
    assert [s.universe for s in load_scans(path)] == [("JPM", "BAC"), ("JPM", "BAC")]


def test_a_bad_universe_line_is_named_by_number_not_by_content(tmp_path):
    banks = write(tmp_path, "JPM\n\nhunter2 secret  # comment\n", "banks.txt")
    with pytest.raises(SymbolError) as error:
        read_universe_file(banks)
    assert str(error.value) == f"{banks}:3: not a valid symbol ({SYMBOL_RULE})"
    path = scan_with_universe(tmp_path, "banks.txt")
    message = refusal(path)
    assert message == f"{path}: scan 'a': {banks}:3: not a valid symbol ({SYMBOL_RULE})"
    assert "hunter2" not in message


def test_the_packaged_scans_file_cannot_name_a_universe_file(tmp_path, monkeypatch):
    """The packaged scans.yaml has no folder of the user's: a universe file there is refused."""
    write(tmp_path / "config", "JPM\n", "banks.txt")
    scan_with_universe(tmp_path / "config", "banks.txt")
    monkeypatch.setattr(scan_config, "resources", SimpleNamespace(files=lambda package: tmp_path))
    with pytest.raises(ValueError) as error:
        load_scans()
    assert str(error.value) == ("scans.yaml: scan 'a': universe file 'banks.txt' needs a scans file of "
                                "your own (CANDLEFLOW_SCANS_FILE); list the symbols instead")
