"""How long a test may wait for something it started, so that a hang fails with a message.

The watchdogs (``faulthandler_timeout`` in pyproject.toml, the ``timeout`` around pytest
in the Makefile) catch whatever slips through; these bounds fail sooner and say what hung.
"""

from __future__ import annotations

import threading

COMMAND_SECONDS = 120  # one `lakota` command or helper interpreter started by a test
THREAD_SECONDS = 60  # a helper thread that a test starts, then joins


def join(thread: threading.Thread, seconds: float = THREAD_SECONDS) -> None:
    """Join `thread`, failing with its name if it is still running after `seconds`."""
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"thread {thread.name} still running after {seconds} s")
