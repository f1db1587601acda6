"""Database URLs in messages: the password never shows."""

import re

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

#: ``user:password@`` after an optional ``scheme://``: the password is all up to the last "@".
_USER_PASSWORD = re.compile(r"^((?:[\w+.-]+://)?[^/:@]*):.*@", re.DOTALL)


def masked_url(url: str) -> str:
    """``url`` with its password replaced by ``***``: the only form of a URL that candleflow puts
    into a message, an error or a log.

    A string SQLAlchemy cannot parse, or whose host holds an "@" (a password with a plain "@"), is
    masked by pattern: everything between the user name and the last "@".
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        parsed = None
    if parsed is None or "@" in (parsed.host or ""):
        return _USER_PASSWORD.sub(r"\1:***@", url)
    return parsed.render_as_string(hide_password=True)
