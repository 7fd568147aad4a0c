"""What the ``poison`` step builds, by attack kind: every module of this package declares
``BUILDERS = {kind: build}``, each ``build(train, test, trigger, attack, seed)`` returning the
poisoned training set and the triggered test set (:class:`~certsmooth.attacks.poison.PoisonedTrain`,
:class:`~certsmooth.attacks.poison.TriggeredTest`). A new kind's module is found here (no list
to edit); the bilevel kinds are built by their own step."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from certsmooth.errors import ConfigError


def builder(kind: str) -> Callable:
    """The ``build`` of ``kind``, from the module of this package that declares it."""
    for info in pkgutil.iter_modules(__path__):
        builders = importlib.import_module(f"{__name__}.{info.name}").BUILDERS
        if kind in builders:
            return builders[kind]
    raise ConfigError(f"attack.kind = {kind!r}: the poison step builds no such kind; it is built by its own step")
