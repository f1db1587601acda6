"""batch_then_one_by_one: one item that breaks a batch fails alone, the others still succeed; and
so in the scan runner (a block of symbols) and the block evaluator (a cross section's argument)."""

import logging

import numpy as np
import pytest

from candleflow.formula import Scan, evaluate_scans, kernels
from candleflow.isolation import batch_then_one_by_one, error_text
from tests.test_formula_engine import ramp_panel


class Cancelled(Exception):
    pass


def squares_unless(bad):
    """Work that squares a batch of numbers, and breaks on ``bad`` (the whole batch with it)."""
    calls = []

    def work(batch):
        calls.append(list(batch))
        if bad in batch:
            raise ValueError(f"cannot square {bad}")
        return {x: x * x for x in batch}

    return work, calls


def test_a_batch_that_succeeds_is_worked_on_once():
    work, calls = squares_unless(bad=None)
    failures = []
    assert batch_then_one_by_one([1, 2, 3], work, lambda item, error: failures.append(item)) == [{1: 1, 2: 4, 3: 9}]
    assert calls == [[1, 2, 3]] and failures == []


def test_one_failing_item_fails_alone_with_its_own_error():
    work, calls = squares_unless(bad=2)
    batch_errors = []
    failed = {}

    def on_failure(item, error):
        failed[item] = error_text(error)

    results = batch_then_one_by_one([1, 2, 3], work, on_failure, on_batch_failure=batch_errors.append)
    assert results == [{1: 1}, {3: 9}]
    assert failed == {2: "ValueError: cannot square 2"}
    assert [str(e) for e in batch_errors] == ["cannot square 2"]
    assert calls == [[1, 2, 3], [1], [2], [3]]


def test_what_on_failure_returns_stands_in_for_the_result():
    work, _ = squares_unless(bad=2)
    results = batch_then_one_by_one([1, 2, 3], work, lambda item, error: {item: "failed"})
    assert results == [{1: 1}, {2: "failed"}, {3: 9}]


def test_work_one_replaces_the_batch_of_one():
    work, calls = squares_unless(bad=3)
    results = batch_then_one_by_one([2, 3], work, lambda item, error: None, work_one=lambda x: {x: -x})
    assert results == [{2: -2}, {3: -3}]
    assert calls == [[2, 3]]


def test_every_item_failing_gives_no_results():
    def work(batch):
        raise ZeroDivisionError("boom")

    failed = []
    assert batch_then_one_by_one(["a", "b"], work, lambda item, error: failed.append(error_text(error))) == []
    assert failed == ["ZeroDivisionError: boom"] * 2


@pytest.mark.parametrize("breaks_on", [None, 2])
def test_reraised_errors_are_never_isolated(breaks_on):
    """Cancellation from the batch, or from a single item after the batch failed, propagates."""

    def work(batch):
        if len(batch) > 1 and breaks_on is not None:
            raise ValueError("batch broke")
        raise Cancelled()

    failed = []
    with pytest.raises(Cancelled):
        batch_then_one_by_one([1, 2], work, lambda item, error: failed.append(item), reraise=(Cancelled,))
    assert failed == []


# ------------------------------------------------------------------ its uses in the formula engine

BAD_FIRST_CLOSE = 250.0  # the first close of S150 in ramp_panel (100 + 150 + 0)


@pytest.fixture
def abs_breaks_on_s150(monkeypatch):
    """abs() raises for any block (2-D array) holding S150's bars, and for nothing else."""
    real = kernels.absolute

    def absolute(x):
        if np.ndim(x) == 2 and (x[:, 0] == BAD_FIRST_CLOSE).any():
            raise RuntimeError("boom")
        return real(x)

    monkeypatch.setattr(kernels, "absolute", absolute)


def test_a_block_of_symbols_that_fails_is_evaluated_one_by_one(abs_breaks_on_s150, caplog):
    panel = ramp_panel(300, bars=40)
    with caplog.at_level(logging.ERROR, logger="candleflow.formula"):
        res = evaluate_scans([Scan("a", "abs(close) > 0")], {"1d": panel})
    assert res[150].error == "RuntimeError: boom" and res[150].matches == []
    assert res[150].seconds > 0
    for r in res[:150] + res[151:]:
        assert r.error is None and len(r.matches) == 40
    assert [rec.getMessage() for rec in caplog.records if rec.levelno == logging.ERROR] == [
        "block of 128 symbols failed; evaluating them one by one"]


@pytest.mark.parametrize("formula", ["rank(abs(close)) <= 5", "rank(abs(close)) + 0 <= 5"])
def test_a_cross_section_argument_that_fails_for_one_symbol_fails_that_symbol_only(abs_breaks_on_s150, formula):
    """The top-k test and the full ranking alike."""
    res = evaluate_scans([Scan("r", formula)], {"1d": ramp_panel(300, bars=40)})
    assert res[150].error == "scan 'r': RuntimeError: boom" and res[150].matches == []
    assert [r.symbol for r in res if r.error] == ["S150"]
    assert sorted({m.symbol for r in res for m in r.matches}) == [f"S{i}" for i in range(295, 300)]
    assert all(len(r.matches) == 40 for r in res[295:])
