"""The workflow's steps: one module per command of ``python -m certsmooth``.

Each module holds the step function a command calls once its arguments are parsed
(:mod:`certsmooth.cli` holds no step logic): it reads the step's inputs, calls the
algorithms of :mod:`certsmooth.attacks`, :mod:`certsmooth.smoothing`,
:mod:`certsmooth.certificates` and :mod:`certsmooth.plots`, and writes the outputs with their
provenance record. A step is its own module so that the library files a rule declares (the
import closure of its command, :mod:`certsmooth.provenance`) are the step's and no other's:
editing the Cohen merge reruns the merges, not the Cohen training.
"""
