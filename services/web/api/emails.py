"""One account per address, however it is typed: e-mail addresses are compared NFKC-normalised and
case-folded (``AB@x`` typed in full-width letters is ``ab@x``; ``Ä@x`` is ``ä@x``), the same on every
database (SQLite's ``lower()`` folds ASCII only). The address is kept as the user typed it, NFKC-normalised."""

from __future__ import annotations

import unicodedata


def typed(email: str) -> str:
    """The address as shown back: NFKC (one encoding of each character), surrounding space gone."""
    return unicodedata.normalize("NFKC", email.strip())


def normalized(email: str) -> str:
    """The address as compared and stored for uniqueness."""
    return typed(email).casefold()
