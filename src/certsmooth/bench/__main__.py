"""``python -m certsmooth.bench ...``: the benchmarks' command line (:mod:`certsmooth.bench.cli`)."""

from certsmooth.bench.cli import main

raise SystemExit(main())
