"""The benchmarks' command line (``certsmooth bench ...``, ``python -m certsmooth.bench ...``):
a subcommand per benchmark module, in :data:`BENCHMARKS` order, plus the internal one that
``bench train`` runs in its subprocesses."""

from __future__ import annotations

import argparse

import certsmooth.bench
from certsmooth.bench import bilevel, certify, checkpoint, cohen, count, data, noise, profile, sigma, start, train
from certsmooth.bench.timing import _repeats
from certsmooth.heap import keep_freed_blocks

#: the benchmarks, in the order of the subcommands (each subcommand is its module's name)
BENCHMARKS = (data, train, profile, checkpoint, count, certify, cohen, sigma, bilevel, noise, start)


def build_parser() -> argparse.ArgumentParser:
    description = certsmooth.bench.__doc__.splitlines()[0]
    parser = argparse.ArgumentParser(prog="certsmooth bench", description=description)
    sub = parser.add_subparsers(dest="what", required=True)
    for module in BENCHMARKS:
        name = module.__name__.rpartition(".")[2]
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        p.set_defaults(func=module.run)
        p.add_argument("--repeats", type=_repeats, default=5, help="interleaved rounds (at least 5)")
        p.add_argument("--json", metavar="PATH", help="also write the measured figures to this JSON file")
        if module.DEVICE:
            p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
        module.add_arguments(p)
    p = sub.add_parser(train.ONE)  # internal: one timed run (JSON spec), printed as JSON
    p.add_argument("spec")
    p.set_defaults(func=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    import json

    keep_freed_blocks()  # as every certsmooth command (certsmooth.heap)
    args = build_parser().parse_args(argv)
    if args.what == train.ONE:
        print(json.dumps(train.train_one(json.loads(args.spec))))
        return 0
    result = args.func(args)
    if args.json:
        from certsmooth.artifacts import write_json

        write_json(args.json, {"bench": args.what, **(result or {})})
    return 0
