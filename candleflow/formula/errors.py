"""The one exception type of the formula language."""

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
