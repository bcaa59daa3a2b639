"""The one error type for mistakes the user can fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake in the user's input (scenario, data, flags).

    The CLI prints it as one line on stderr and exits with status 2; the message names
    what is wrong and how to fix it.
    """


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice most like `word` (a likely typo's intended spelling), or None."""
    match = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return match[0] if match else None
