"""Benchmarks: interleaved repeats, medians and ratios.

Machines here have sporadic slowdowns of up to 25×, so variants are never timed in
blocks: every round runs each variant once, in turn, and the report gives the median
per variant and its ratio to the first one.

    python -m certsmooth.bench data        # data steps (CSV reader, triggers, poisoning)
    python -m certsmooth.bench train       # partition trainer vs one-model-at-a-time loops
    python -m certsmooth.bench profile     # one training step of a lane, phase by phase
    python -m certsmooth.bench count       # count certifiers' subset trainer vs one model at a time
    python -m certsmooth.bench certify     # ensemble certification: model evaluations per second
    python -m certsmooth.bench cohen       # Cohen et al.'s CERTIFY: noisy forward passes per second
    python -m certsmooth.bench sigma       # Cert-SSB σ ascent: vectorised vs per-model loop
    python -m certsmooth.bench bilevel     # Mehra et al.'s ApproxGrad: one epoch per victim method
    python -m certsmooth.bench checkpoint  # resumable training: a checkpoint every epoch vs none
    python -m certsmooth.bench noise       # counter-based noise: cache-sized chunks vs the whole tensor
    python -m certsmooth.bench start       # a training job's start: torch.optim.Adam vs certsmooth's CPU Adam

(`certsmooth bench ...` is the same.) Every benchmark takes ``--json PATH`` (the figures
as JSON, as ``bench/gpu.sh`` collects them) and all but ``data`` and ``start`` take
``--device``. ``train`` runs every (variant, repeat) in a fresh process so that each run's
peak RSS is its own, or all in one process with ``--in-process``; either way each variant
is warmed up (lazy imports, CUDA and cuDNN start-up) before its timer starts.

One module per benchmark, named after its subcommand (``certsmooth.bench.train`` for
``bench train``), with ``HELP`` (its one-line help), ``DEVICE`` (whether it takes
``--device``), ``add_arguments(p)`` (its own arguments) and ``run(args)`` (the benchmark;
what it returns is what ``--json`` writes). :mod:`certsmooth.bench.timing` holds what
several share (interleaved rounds and their report, matmul rate, FLOPs per sample, the
data); :mod:`certsmooth.bench.cli` builds the command line from the modules;
:mod:`certsmooth.bench.gpucheck` is the GPU check (``bench/gpu.sh``), which runs the
benchmarks on the device under test. Importing the package imports nothing else.
"""
