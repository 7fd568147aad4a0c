"""Which input sizes each architecture takes, without building it (the workflow's parse
checks params.yaml with this and imports no torch; :func:`certsmooth.models.build_model`
checks the same table)."""

from __future__ import annotations

from certsmooth.errors import ConfigError

# arch -> (smallest height/width, largest or None, description)
ARCH_INPUTS: dict[str, tuple[int, int | None, str]] = {
    "mnist_cnn": (28, 28, "28×28 inputs"),
    "preact_resnet32": (8, None, "inputs of at least 8×8 (32×32 in the papers)"),
    "resnet18": (32, None, "any size ≥ 32×32"),
}


def check_fits(arch: str, in_shape: tuple[int, int, int]) -> None:
    """ConfigError unless ``arch`` is known and takes C×H×W images of ``in_shape``."""
    if arch not in ARCH_INPUTS:
        raise ConfigError(f"arch = {arch!r}: unknown architecture; allowed: {', '.join(ARCH_INPUTS)}")
    lo, hi, what = ARCH_INPUTS[arch]
    h, w = in_shape[1], in_shape[2]
    if min(h, w) < lo or (hi is not None and max(h, w) > hi):
        raise ConfigError(f"arch = {arch!r} does not fit {h}×{w} images ({what}); choose another architecture")
