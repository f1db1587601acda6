"""The exceptions of the formula language: FormulaError, and its subclass ScanTimeout."""

from __future__ import annotations


class FormulaError(ValueError):
    """A formula that cannot be compiled or used: bad syntax, unknown names, limits exceeded.

    ``position`` is the 0-based character offset in the formula text where the problem is; the
    message ends with ``" at column N"`` giving the same offset. ``message`` is the text without
    the position.
    """

    def __init__(self, message: str, position: int = 0) -> None:
        self.message = message
        self.position = int(position)
        super().__init__(f"{message} at column {self.position}")

    def __reduce__(self):  # keep it picklable with both arguments
        return (type(self), (self.message, self.position))


class ScanTimeout(FormulaError):
    """A scan ran past its time limit on a block of symbols (see ``evaluate_scans``).

    It is about the evaluation, not a place in the text: ``str()`` is the message alone, e.g.
    "scan 'slow' exceeded its time limit of 2 s", and ``position`` is 0.
    """

    def __init__(self, scan: str, limit_s: float) -> None:
        self.scan = scan
        self.limit_s = limit_s
        super().__init__(f"scan {scan!r} exceeded its time limit of {limit_s:g} s")
        self.args = (self.message,)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        return (type(self), (self.scan, self.limit_s))
