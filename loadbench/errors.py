"""The one base class of the mistakes a user can fix: the CLI prints its message and exits 2.

Every layer raises its own subclass (a bad checkpoint, suite, run directory or option)
so that callers can tell them apart, and the error boundary needs to know only this one.
It subclasses ValueError because every such mistake is a value the user gave.
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(ValueError):
    """Input the user can correct; the message names the input and what to do."""
