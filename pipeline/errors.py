"""Error messages: one line each, whatever the exception (no heavy imports, for every stage)."""

from __future__ import annotations


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (its type name if it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__
