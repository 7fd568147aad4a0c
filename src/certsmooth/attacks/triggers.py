"""Backdoor triggers on float32 images N×C×H×W in [0, 1].

RAB's additive triggers (arXiv 2003.08904 and its released code; Cert-SSB uses the same
ones), with ℓ2 norm ``delta`` before clipping:

* ``onepixel``: +δ/√C on every channel of one pixel (MNIST (23,23), CIFAR (15,15),
  224×224 (112,112)), then ``min(·, 1)``;
* ``fourpixel``: +δ/√(4C) on every channel of four pixels (MNIST (18,20), (19,19),
  (20,18), (20,20); CIFAR (14,16), (15,15), (16,14), (16,16); 224×224 (112,112),
  (111,113), (113,111), (113,113)), then ``min(·, 1)``;
* ``blending``: a fixed N(0, 1) pattern drawn with NumPy's legacy generator seeded
  ``pattern_seed`` (RAB: ``np.random.seed(0); np.random.randn(C, H, W)``), rescaled to
  ℓ2 norm δ and added **without clipping**.

Positions are (row, column). Two common non-additive triggers:

* ``badnets`` (Gu et al. 2017): a square patch of ``size`` pixels whose top-left corner
  is ``position`` (default: flush with the bottom-right corner) is set to ``value``
  (``pattern: solid``) or to a checkerboard of ``value`` and 0 on every channel;
* ``blend`` (Chen et al. 2017): x' = (1 − α)·x + α·k with a fixed uniform-noise pattern
  k ~ U[0, 1]^(C×H×W) (NumPy legacy generator seeded ``pattern_seed``);
* ``corners``: ``count`` square patches in the image corners at ``value`` (the test-time
  trigger of the ``avail_boundary`` availability attack).

The effective perturbation of each image, ``x' − x``, is what poisoning records.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from certsmooth import schema
from certsmooth.errors import ConfigError

ONEPIXEL_POSITIONS = {(28, 28): [(23, 23)], (32, 32): [(15, 15)], (224, 224): [(112, 112)]}
FOURPIXEL_POSITIONS = {
    (28, 28): [(18, 20), (19, 19), (20, 18), (20, 20)],
    (32, 32): [(14, 16), (15, 15), (16, 14), (16, 16)],
    (224, 224): [(112, 112), (111, 113), (113, 111), (113, 113)],
}

# the params schema is the only copy of the triggers' defaults
_DEFAULTS = {kind: schema.defaults(f"{kind}_trigger") for kind in ("pixel", "blending", "badnets", "blend", "corners")}


def _check_images(x: np.ndarray) -> None:
    if x.dtype != np.float32 or x.ndim != 4:
        raise TypeError(f"triggers take float32 images N×C×H×W, got {x.dtype} {x.shape}")


@dataclass
class Trigger(abc.ABC):
    """A trigger; ``apply`` returns a new array and never modifies its input."""

    name: str = field(init=False)

    @abc.abstractmethod
    def apply(self, x: np.ndarray) -> np.ndarray:
        """Triggered copy of float32 images ``x`` (N×C×H×W, [0, 1] scale)."""

    @abc.abstractmethod
    def pattern(self, shape: Sequence[int]) -> dict[str, np.ndarray]:
        """The arrays that define the trigger on images of ``shape`` = (C, H, W)."""

    def spec(self) -> dict:
        return {"name": self.name, **{k: v for k, v in asdict(self).items() if k != "name"}}

    @property
    def nominal_norm(self) -> float | None:
        """ℓ2 norm of the perturbation before clipping, where the trigger defines one."""
        return None


@dataclass
class PixelTrigger(Trigger):
    """Add δ/√(C·k) to all channels of k pixels, then clip each entry at 1 (RAB)."""

    delta: float = _DEFAULTS["pixel"]["delta"]
    positions: list[list[int]] | None = _DEFAULTS["pixel"]["positions"]
    table = {}  # overridden per subclass

    def pixels(self, shape: Sequence[int]) -> list[tuple[int, int]]:
        _, h, w = shape
        if self.positions is not None:
            pix = [tuple(int(v) for v in p) for p in self.positions]
        elif (h, w) in self.table:
            pix = self.table[(h, w)]
        else:
            raise ConfigError(
                f"attack.trigger: {self.name} has no default positions for {h}×{w} images "
                f"(known: {sorted(self.table)}); set trigger.positions: [[row, col], ...]"
            )
        for r, c in pix:
            if not (0 <= r < h and 0 <= c < w):
                raise ConfigError(f"attack.trigger.positions: ({r}, {c}) lies outside the {h}×{w} image")
        if len(set(pix)) != len(pix):
            raise ConfigError(f"attack.trigger.positions: {pix} repeats a pixel")
        return pix

    def amount(self, channels: int, k: int) -> np.float32:
        return np.float32(self.delta / math.sqrt(channels * k))

    def apply(self, x: np.ndarray) -> np.ndarray:
        _check_images(x)
        out = x.copy()
        pix = self.pixels(x.shape[1:])
        a = self.amount(x.shape[1], len(pix))
        for r, c in pix:
            out[:, :, r, c] = np.minimum(out[:, :, r, c] + a, np.float32(1.0))
        return out

    def pattern(self, shape: Sequence[int]) -> dict[str, np.ndarray]:
        add = np.zeros(shape, dtype=np.float32)
        pix = self.pixels(shape)
        for r, c in pix:
            add[:, r, c] = self.amount(shape[0], len(pix))
        return {"additive": add, "clip_max": np.float32(1.0)}

    @property
    def nominal_norm(self) -> float:
        return float(self.delta)


@dataclass
class OnePixel(PixelTrigger):
    table = ONEPIXEL_POSITIONS

    def __post_init__(self):
        self.name = "onepixel"


@dataclass
class FourPixel(PixelTrigger):
    table = FOURPIXEL_POSITIONS

    def __post_init__(self):
        self.name = "fourpixel"


@dataclass
class Blending(Trigger):
    """RAB's additive Gaussian pattern with ℓ2 norm δ, not clipped."""

    delta: float = _DEFAULTS["blending"]["delta"]
    pattern_seed: int = _DEFAULTS["blending"]["pattern_seed"]

    def __post_init__(self):
        self.name = "blending"

    def noise(self, shape: Sequence[int]) -> np.ndarray:
        raw = np.random.RandomState(self.pattern_seed).randn(*shape).astype(np.float32)
        norm = np.float32(np.linalg.norm(raw.astype(np.float64)))
        return raw / norm * np.float32(self.delta)

    def apply(self, x: np.ndarray) -> np.ndarray:
        _check_images(x)
        return x + self.noise(x.shape[1:])[None]

    def pattern(self, shape: Sequence[int]) -> dict[str, np.ndarray]:
        return {"additive": self.noise(shape)}

    @property
    def nominal_norm(self) -> float:
        return float(self.delta)


@dataclass
class BadNets(Trigger):
    """A square patch pasted on every channel."""

    size: int = _DEFAULTS["badnets"]["size"]
    position: list[int] | None = _DEFAULTS["badnets"]["position"]
    value: float = _DEFAULTS["badnets"]["value"]
    style: str = _DEFAULTS["badnets"]["style"]

    def __post_init__(self):
        self.name = "badnets"
        if self.style not in ("solid", "checkerboard"):
            raise ConfigError(f"attack.trigger.style = {self.style!r}: allowed 'solid' or 'checkerboard'")

    def mask_values(self, shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        c, h, w = shape
        s = int(self.size)
        r0, c0 = (h - s, w - s) if self.position is None else (int(self.position[0]), int(self.position[1]))
        if s < 1 or r0 < 0 or c0 < 0 or r0 + s > h or c0 + s > w:
            raise ConfigError(
                f"attack.trigger: a {s}×{s} patch at ({r0}, {c0}) does not fit in {h}×{w} images; "
                "choose a smaller size or another position"
            )
        mask = np.zeros((c, h, w), dtype=bool)
        mask[:, r0 : r0 + s, c0 : c0 + s] = True
        values = np.zeros((c, h, w), dtype=np.float32)
        patch = np.full((s, s), self.value, dtype=np.float32)
        if self.style == "checkerboard":
            patch[(np.add.outer(np.arange(s), np.arange(s)) % 2) == 1] = 0.0
        values[:, r0 : r0 + s, c0 : c0 + s] = patch
        return mask, values

    def apply(self, x: np.ndarray) -> np.ndarray:
        _check_images(x)
        mask, values = self.mask_values(x.shape[1:])
        return np.where(mask[None], values[None], x).astype(np.float32)

    def pattern(self, shape: Sequence[int]) -> dict[str, np.ndarray]:
        mask, values = self.mask_values(shape)
        return {"mask": mask, "values": values}


CORNER_ORDER = ("bottom-right", "bottom-left", "top-right", "top-left")


@dataclass
class Corners(Trigger):
    """``count`` square patches of ``size`` pixels flush with the image corners (in the
    order bottom-right, bottom-left, top-right, top-left), every channel set to ``value``.
    The test-time trigger of ``avail_boundary`` (:mod:`certsmooth.attacks.boundary`),
    whose poisons move each patch's value by ± an offset."""

    size: int = _DEFAULTS["corners"]["size"]
    count: int = _DEFAULTS["corners"]["count"]
    value: float = _DEFAULTS["corners"]["value"]

    def __post_init__(self):
        self.name = "corners"
        if not 2 <= int(self.count) <= len(CORNER_ORDER):
            raise ConfigError(f"attack.trigger.count = {self.count}: must be 2, 3 or 4 (corner patches)")
        if not 0.0 <= float(self.value) <= 1.0:
            raise ConfigError(f"attack.trigger.value = {self.value}: must be in [0, 1]")

    def masks(self, shape: Sequence[int]) -> np.ndarray:
        """Boolean masks, ``count`` × C × H × W, one per corner patch."""
        c, h, w = shape
        s = int(self.size)
        if s < 1 or 2 * s > min(h, w):
            raise ConfigError(
                f"attack.trigger: {s}×{s} corner patches overlap in {h}×{w} images; "
                f"choose a size of at most {min(h, w) // 2}"
            )
        out = np.zeros((int(self.count), c, h, w), dtype=bool)
        corners = [(h - s, w - s), (h - s, 0), (0, w - s), (0, 0)]
        for k in range(int(self.count)):
            r0, c0 = corners[k]
            out[k, :, r0 : r0 + s, c0 : c0 + s] = True
        return out

    def with_values(self, x: np.ndarray, values: Sequence[float]) -> np.ndarray:
        """Copy of ``x`` with patch k set to ``values[k]``."""
        _check_images(x)
        out = np.array(x, dtype=np.float32, copy=True)
        for mask, v in zip(self.masks(x.shape[1:]), values, strict=True):
            out[:, mask] = np.float32(v)
        return out

    def apply(self, x: np.ndarray) -> np.ndarray:
        return self.with_values(x, [self.value] * int(self.count))

    def pattern(self, shape: Sequence[int]) -> dict[str, np.ndarray]:
        masks = self.masks(shape)
        return {"masks": masks, "values": np.where(masks.any(0), np.float32(self.value), np.float32(0))}


@dataclass
class Blend(Trigger):
    """Chen et al.'s blended injection with a fixed uniform-noise key pattern."""

    alpha: float = _DEFAULTS["blend"]["alpha"]
    pattern_seed: int = _DEFAULTS["blend"]["pattern_seed"]

    def __post_init__(self):
        self.name = "blend"
        if not 0.0 < self.alpha <= 1.0:
            raise ConfigError(f"attack.trigger.alpha = {self.alpha}: must be in (0, 1]")

    def key(self, shape: Sequence[int]) -> np.ndarray:
        return np.random.RandomState(self.pattern_seed).uniform(0.0, 1.0, size=tuple(shape)).astype(np.float32)

    def apply(self, x: np.ndarray) -> np.ndarray:
        _check_images(x)
        a = np.float32(self.alpha)
        return ((np.float32(1.0) - a) * x + a * self.key(x.shape[1:])[None]).astype(np.float32)

    def pattern(self, shape: Sequence[int]) -> dict[str, np.ndarray]:
        return {"key": self.key(shape), "alpha": np.float32(self.alpha)}


TRIGGERS: dict[str, type[Trigger]] = {
    "onepixel": OnePixel,
    "fourpixel": FourPixel,
    "blending": Blending,
    "badnets": BadNets,
    "blend": Blend,
    "corners": Corners,
}


@dataclass
class NoTrigger(Trigger):
    """The identity: attacks without a test-time trigger (bilevel) and clean controls."""

    def __post_init__(self):
        self.name = "none"

    def apply(self, x: np.ndarray) -> np.ndarray:
        return np.array(x, dtype=np.float32, copy=True)

    def pattern(self, shape: Sequence[int]) -> dict[str, np.ndarray]:
        return {"identity": np.zeros(0, dtype=np.float32)}


def make_trigger(spec: dict | None) -> Trigger:
    """Build a trigger from its params.yaml entry, e.g. ``{name: onepixel, delta: 1.0}``
    (``None``: no trigger)."""
    if spec is None:
        return NoTrigger()
    spec = dict(spec)
    name = spec.pop("name", None)
    if name not in TRIGGERS:
        raise ConfigError(f"attack.trigger.name = {name!r}: unknown trigger; allowed: {', '.join(TRIGGERS)}")
    try:
        return TRIGGERS[name](**spec)
    except TypeError as exc:
        raise ConfigError(f"attack.trigger ({name}): {exc}") from exc
