"""Failure isolation: work on a whole batch first, and only if that raises, item by item.

The batch is the fast path (one vectorised computation over many symbols or rows). The retry one
item at a time exists so that one item whose data breaks the computation fails alone, with its
own error, and the others still succeed. The pipeline's stages (symbols), the scan runner (a block
of symbols) and the block evaluator (rows of a cross section's argument) all isolate failures
this way, through ``batch_then_one_by_one``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def batch_then_one_by_one(
    items: Sequence[Item],
    work: Callable[[Sequence[Item]], Result],
    on_failure: Callable[[Item, Exception], Result | None],
    *,
    work_one: Callable[[Item], Result] | None = None,
    on_batch_failure: Callable[[Exception], None] | None = None,
    reraise: tuple[type[BaseException], ...] = (),
) -> list[Result]:
    """``[work(items)]`` if that succeeds; else the results of the items one by one.

    After the batch raised (``on_batch_failure(error)`` is told, e.g. to log it), each item is
    worked on alone with ``work_one(item)`` (default ``work([item])``); an item that raises gets
    ``on_failure(item, error)``, whose return value stands in for its result (None: nothing is
    added). So the list holds one result for a successful batch, else one per item (in order),
    leaving out the failed items for which ``on_failure`` returned None.

    Exceptions of the types in ``reraise`` (cancellation, a time limit that covers the whole
    batch) are never isolated: they propagate from the batch and from every single item.
    """
    try:
        return [work(items)]
    except reraise:
        raise
    except Exception as batch_error:  # any error of the batch: isolate the item(s) behind it
        if on_batch_failure is not None:
            on_batch_failure(batch_error)
    one = work_one if work_one is not None else (lambda item: work([item]))
    results: list[Result] = []
    for item in items:
        try:
            results.append(one(item))
        except reraise:
            raise
        except Exception as error:  # handed to on_failure, never raised
            stand_in = on_failure(item, error)
            if stand_in is not None:
                results.append(stand_in)
    return results


def error_text(error: BaseException) -> str:
    """How an isolated failure is reported: ``"ValueError: the message"``."""
    return f"{type(error).__name__}: {error}"
