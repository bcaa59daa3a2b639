"""The one error type for mistakes the user can fix."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input (scenario, data, flags).

    The CLI prints it as one line on stderr and exits with status 2; the message names
    what is wrong and how to fix it.
    """
