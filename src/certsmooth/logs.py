"""Logging set-up shared by the command-line entry points."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

LOG = logging.getLogger("certsmooth")


def setup_logging(log_file: str | None, verbose: bool = False) -> None:
    """Log to ``log_file`` (the rule's ``log:``) when given, else to stderr."""
    logging.raiseExceptions = False  # a log write that fails (full disk) must not print a traceback
    LOG.handlers.clear()
    LOG.setLevel(logging.DEBUG if verbose else logging.INFO)
    LOG.propagate = False
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(log_file, mode="w")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    LOG.addHandler(handler)


def log_stream():
    """The log file's stream when logging goes to a file (tqdm progress in the rule's log)."""
    for h in LOG.handlers:
        stream = getattr(h, "stream", None)
        if stream is not None:
            return stream
    return None
