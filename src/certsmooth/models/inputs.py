"""Which input sizes each architecture takes, and about how many numbers a model holds,
without building it (the workflow's parse checks params.yaml with this and imports no
torch; :func:`certsmooth.models.build_model` checks the same table, and
``tests/test_count_workflow.py`` the sizes against built models)."""

from __future__ import annotations

from certsmooth.errors import ConfigError

# arch -> (smallest height/width, largest or None, description)
ARCH_INPUTS: dict[str, tuple[int, int | None, str]] = {
    "mnist_cnn": (28, 28, "28×28 inputs"),
    "preact_resnet32": (8, None, "inputs of at least 8×8 (32×32 in the papers)"),
    "nin": (8, None, "inputs of at least 8×8 (28×28 and 32×32 in the papers)"),
    "resnet18": (32, None, "any size ≥ 32×32"),
}

# arch -> (parameters and buffers of a model with one output, and per extra output) for
# 3-channel inputs (1-channel ones hold a little less): a model of C classes holds about
# base + per_output·outputs numbers (memory estimates, not exact counts)
ARCH_SIZES: dict[str, tuple[int, int]] = {
    "mnist_cnn": (276_000, 513),
    "preact_resnet32": (468_500, 65),
    "nin": (1_007_000, 193),
    "resnet18": (11_186_200, 513),
}


def model_numbers(arch: str, num_classes: int) -> int:
    """About how many float32 numbers (parameters and buffers) one model holds."""
    base, per = ARCH_SIZES[arch]
    return base + per * (1 if num_classes == 2 else num_classes)


def check_fits(arch: str, in_shape: tuple[int, int, int]) -> None:
    """ConfigError unless ``arch`` is known and takes C×H×W images of ``in_shape``."""
    if arch not in ARCH_INPUTS:
        raise ConfigError(f"arch = {arch!r}: unknown architecture; allowed: {', '.join(ARCH_INPUTS)}")
    lo, hi, what = ARCH_INPUTS[arch]
    h, w = in_shape[1], in_shape[2]
    if min(h, w) < lo or (hi is not None and max(h, w) > hi):
        raise ConfigError(f"arch = {arch!r} does not fit {h}×{w} images ({what}); choose another architecture")
