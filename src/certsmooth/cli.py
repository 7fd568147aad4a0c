"""Command-line interface: one subcommand per workflow step, ``python -m certsmooth <step> ...``.

A command is its step's ``run`` (every rule calls one; each runs standalone). Its flags are
that function's parameters (``--out-dir`` for ``out_dir``; before the ``*``: positional),
typed by the annotations (``dict``: JSON, ``list[str]``: values, ``tuple[int, int]``: two,
``bool``: a switch, ``Literal``: choices), required without a default; a step that takes
``device`` also gets ``--threads``. A user error prints one line ``certsmooth: error: ...``
and exits with status 2, leaving no output behind.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from certsmooth import __version__
from certsmooth.errors import CertsmoothError, ConfigError, storage_error
from certsmooth.heap import keep_freed_blocks
from certsmooth.logs import LOG, setup_logging

#: the commands: ``<command>`` runs ``certsmooth.steps.<command, - as _>.run``, one per module of the steps
COMMANDS = tuple(sorted(f.stem.replace("_", "-") for f in (Path(__file__).parent / "steps").glob("[!_]*.py")))


def _flags(sp: argparse.ArgumentParser, run) -> list[str]:
    """Add ``run``'s parameters to ``sp``; the names of those that arrive as JSON."""
    import inspect
    import typing

    hints, as_json = typing.get_type_hints(run), []
    for name, param in inspect.signature(run).parameters.items():
        kind, default = hints[name], param.default
        optional = default is not inspect.Parameter.empty
        args = typing.get_args(kind)
        if type(None) in args:  # X | None
            kind = next(a for a in args if a is not type(None))
            args = typing.get_args(kind)
        origin = typing.get_origin(kind) or kind
        spec: dict = {"default": (list(default) if isinstance(default, tuple) else default) if optional else None}
        if origin is bool:
            spec = {"action": "store_true"}
        elif origin is dict:
            as_json.append(name)
        elif origin is list:
            spec.update(nargs="*" if optional else "+", type=args[0])
        elif origin is tuple:
            spec.update(nargs=len(args), type=args[0], metavar=tuple(a.__name__.upper() for a in args))
        elif origin is typing.Literal:
            spec.update(choices=args, type=type(args[0]))
        else:
            spec.update(type=origin)
        if name == "device":
            spec["default"], optional = "auto", True
            sp.add_argument("--threads", type=int, default=0, help="torch's intra-op threads (0: torch's default)")
        if param.kind is inspect.Parameter.KEYWORD_ONLY:
            spec["required"] = not optional and spec.get("action") != "store_true"
            sp.add_argument("--" + name.replace("_", "-"), dest=name, **spec)
        else:
            sp.add_argument(name, nargs="?" if optional else None, **{k: v for k, v in spec.items() if k != "nargs"})
    return as_json


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command (the flags of ``command`` only, when given: importing
    every step would cost a job its start-up)."""
    import importlib

    p = argparse.ArgumentParser(prog="certsmooth", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"certsmooth {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("bench", help="benchmarks: bench data | train | certify ... (certsmooth bench -h)")
    for name in COMMANDS:
        wanted = command in (None, name)
        step = importlib.import_module(f"certsmooth.steps.{name.replace('-', '_')}") if wanted else None
        help_ = step.__doc__.split(":", 1)[-1].strip().split("\n\n")[0].replace("\n", " ") if step else None
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.add_argument("--log", help="write the log to this file (default: stderr)")
        sp.add_argument("-v", "--verbose", action="store_true")
        sp.set_defaults(step=step, as_json=_flags(sp, step.run) if step else [])
    return p


def _run(args) -> None:
    """Parse the JSON flags, set the threads, call the step."""
    given = {k: v for k, v in vars(args).items() if k not in ("command", "step", "as_json", "log", "verbose")}
    for name in args.as_json:
        text = given[name]
        try:
            given[name] = json.loads(text) if text is not None else None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--{name.replace('_', '-')} {text!r}: not valid JSON ({exc})") from None
    threads = given.pop("threads", 0)
    if threads:
        import torch

        torch.set_num_threads(threads)
    args.step.run(**given)


def main(argv: list[str] | None = None) -> int:
    keep_freed_blocks()  # before the first tensor: batches reuse the heap instead of faulting in pages
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        return _bench(argv[1:])
    args = build_parser(next((a for a in argv if a in COMMANDS), None)).parse_args(argv)
    try:
        setup_logging(args.log, args.verbose)
        _run(args)
    except CertsmoothError as exc:
        return _fail(str(exc), args.log)
    except OSError as exc:
        msg = storage_error(exc)
        if msg is None:
            raise  # not the environment's doing: a bug, keep the traceback
        return _fail(msg, args.log)
    return 0


def _bench(argv: list[str]) -> int:
    """``certsmooth bench ...``: the benchmarks (not a workflow step)."""
    from certsmooth.bench.cli import main as bench_main

    return bench_main(argv)


def _fail(msg: str, log: str | None) -> int:
    msg = msg.replace("\n", " ")
    if log:
        LOG.error("%s", msg)  # a log that cannot be written is skipped (logs.setup_logging)
    print(f"certsmooth: error: {msg}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
