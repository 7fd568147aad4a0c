"""certsmooth: certified robustness under training-set poisoning.

The package is organised by domain (see DESIGN.md): ``data`` (datasets, prepared
format), ``attacks`` (triggers, poisoning), ``plots``; ``config`` validates
``params.yaml``; ``cli`` is the entry point every workflow rule calls.
"""

__version__ = "0.1.0"
