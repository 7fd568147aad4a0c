"""User-facing errors.

Every mistake a user can make (a bad parameter, a missing download, a corrupt file)
raises a subclass of :class:`CertsmoothError` whose message is one line that names the
value and the fix. The command-line interface prints that line and exits with status 2;
any other exception is a bug and keeps its traceback.
"""


class CertsmoothError(Exception):
    """Base class of errors caused by user input or the environment, not by a bug."""


class ConfigError(CertsmoothError):
    """An invalid value in params.yaml or on the command line."""


class DatasetUnavailableError(CertsmoothError):
    """A dataset's raw files are missing and cannot be downloaded."""


class CorruptFileError(CertsmoothError):
    """An artifact exists but cannot be read or fails its consistency checks."""


def check_positive(**values: float) -> None:
    """Library entry points: each value must be a finite number > 0 (NaN passes every
    comparison-based check, so it is tested explicitly)."""
    import math

    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{name} = {value!r}: must be a finite number > 0")


def storage_error(exc: OSError) -> str | None:
    """One line for a write that the file system refused (full, read-only, no permission,
    quota), naming the path and the fix; None for other errors."""
    import errno
    import os

    fixes = {
        errno.ENOSPC: "free space on that file system (or point the workflow's folders elsewhere), then rerun",
        errno.EDQUOT: "free space within your quota, then rerun",
        errno.EROFS: "the file system is read-only: run where the output folders are writable",
        errno.EACCES: "make the folder writable for this user, then rerun",
        errno.EPERM: "make the folder writable for this user, then rerun",
    }
    if exc.errno not in fixes:
        return None
    return f"cannot write {exc.filename or 'an output file'}: {os.strerror(exc.errno)}; {fixes[exc.errno]}"
