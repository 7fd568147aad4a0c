import os
import sys

if os.environ.get("CERTSMOOTH_FORKSERVER", "off") != "off":  # a workflow job: run in the warm server
    from certsmooth.forkserver import delegate

    _code = delegate(os.environ["CERTSMOOTH_FORKSERVER"], sys.argv)
    if _code is not None:
        raise SystemExit(_code)

from certsmooth.cli import main  # noqa: E402


def _trace_imports(folder: str) -> None:
    """Test hook (CERTSMOOTH_IMPORT_TRACE=<folder>): record the certsmooth modules this
    process loaded, which tests/test_provenance.py compares with the rule's declared inputs."""
    import json

    mods = sorted(n for n in sys.modules if n == "certsmooth" or n.startswith("certsmooth."))
    with open(os.path.join(folder, f"{os.getpid()}.json"), "w") as f:
        json.dump({"argv": sys.argv[1:], "modules": mods, "pid": os.getpid(), "ppid": os.getppid(),
                   "cwd": os.getcwd(), "torch": "torch" in sys.modules, "environ": sorted(os.environ)}, f)


if os.environ.get("CERTSMOOTH_IMPORT_TRACE"):
    import atexit

    atexit.register(_trace_imports, os.environ["CERTSMOOTH_IMPORT_TRACE"])

raise SystemExit(main())
