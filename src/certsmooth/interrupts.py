"""Interrupting a local workflow run: Ctrl-C and SIGTERM stop it the same way, so that the
same command finishes it.

Snakemake ends a run on SIGTERM by letting the running jobs end (they get the signal too
when it is sent to the process group, as a terminal's Ctrl-C or a scheduler's kill is) and
then recording each one: a finished job's outputs are kept, a stopped job's are removed.
On SIGINT it instead raises KeyboardInterrupt and cancels at once; a job that had just
written its outputs is then left marked incomplete, and the next plain run refuses with
``IncompleteFilesException``. :func:`install` (the workflow's ``onstart``, local runs only:
on a cluster Snakemake's own Ctrl-C cancels the submitted jobs) routes the first SIGINT to
the same graceful stop as SIGTERM; a second Ctrl-C stops at once, as before.

It also says once, in one line, what happens, instead of Snakemake's "Will exit after
finishing currently running jobs" on every scheduler pass (filtered to its first), and
:func:`explain` (``onerror``) says that the run was stopped, not failed, and how to finish it.
"""

from __future__ import annotations

import logging
import signal
import sys

REPEATED = "Will exit after finishing currently running jobs"
_received: list[int] = []  # the signals that stopped this run, in order


class _FirstOnly(logging.Filter):
    """Let the first of Snakemake's repeated shutdown lines through, drop the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        if REPEATED in str(record.msg):
            if self.seen:
                return False
            self.seen = True
        return True


def install(scheduler, log: logging.Logger | None = None) -> bool:
    """Route SIGINT and SIGTERM to ``scheduler.exit_gracefully`` (Snakemake's SIGTERM path);
    False (nothing changed) where the scheduler has no such method."""
    stop = getattr(scheduler, "exit_gracefully", None)
    if stop is None:
        return False

    def handler(signum, _frame):
        if signum == signal.SIGINT and signal.SIGINT in _received:
            raise KeyboardInterrupt  # the second Ctrl-C: Snakemake's immediate stop
        if not _received:
            name = signal.Signals(signum).name
            again = "; Ctrl-C again stops at once" if signum == signal.SIGINT else ""
            print(f"certsmooth: {name}: stopping once the running jobs end (they got the signal too); a stopped "
                  f"job's outputs are removed, and the same command finishes the run{again}",
                  file=sys.stderr, flush=True)  # fmt: skip
        _received.append(signum)
        stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    (log or logging.getLogger("snakemake.logging")).addFilter(_FirstOnly())
    return True


def explain() -> str | None:
    """The line for ``onerror`` when a signal stopped the run (None otherwise)."""
    if not _received:
        return None
    name = signal.Signals(_received[0]).name
    return (
        f"certsmooth: the run was stopped by {name}, not by a failing job: the jobs it stopped have no outputs "
        "left, what finished is kept; run the same command to finish the run"
    )
