"""K models as one wide network ("grouped ensemble").

Every layer of K copies of an architecture is fused into one layer of K times the width:
``Conv2d(c, d, groups=g)`` becomes ``Conv2d(K·c, K·d, groups=K·g)``, ``BatchNorm2d(c)``
becomes ``BatchNorm2d(K·c)`` (per-model statistics, exactly), ``Linear`` becomes a
batched matmul over the K models; channel-wise layers (ReLU, pooling, residual sums)
are unchanged and features stay model-major, so ``Flatten`` keeps each model's layout.
Model k sees only its own input channels, so the K models train independently (their
losses are summed; the gradients do not mix) while every kernel call does K models'
work. Unlike ``torch.func.vmap`` this handles BatchNorm's running statistics and, on
the CPU, runs grouped convolutions in channels-last format (``python -m certsmooth.bench
train`` measures it against a one-model-at-a-time loop).

Checkpoints hold per-model state dicts with the base architecture's names, so models
can be regrouped freely.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from certsmooth.errors import ConfigError
from certsmooth.lanes import lanes
from certsmooth.models.archs import build_model, predictions

CHANNELWISE = (
    nn.ReLU,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.Flatten,
    nn.Identity,
    nn.Sequential,
)


class GroupedLinear(nn.Module):
    """K independent Linear(in, out) layers on model-major features (B, K·in) → (B, K·out);
    ``weight`` (K, out, in) and ``bias`` (K, out) are the K layers' stacked (new tensors)."""

    # hidden layers (the MNIST CNN's 512 × 512) take :class:`_GroupedAffine`'s backward; a head
    # of one logit does not: there ``gᵀ·x`` is a vector-matrix product whose kernel sums in
    # another order than autograd's matrix-vector ``xᵀ·g`` (other bits in the last place), and
    # its copy is tiny
    MIN_OWN_BACKWARD = 64

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.k, self.out_features, self.in_features = weight.shape
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias)

    def forward(self, x):
        b = x.shape[0]
        x = x.reshape(b, self.k, self.in_features).transpose(0, 1)  # (K, B, in)
        if (self.out_features >= self.MIN_OWN_BACKWARD and torch.is_grad_enabled()
                and not torch.is_autocast_enabled(x.device.type)):  # fmt: skip
            y = _GroupedAffine.apply(x, self.weight, self.bias)
        else:
            y = torch.baddbmm(self.bias[:, None, :], x, self.weight.transpose(1, 2))  # (K, B, out)
        return y.transpose(0, 1).reshape(b, self.k * self.out_features)


class _GroupedAffine(torch.autograd.Function):
    """``baddbmm(bias, x, weightᵀ)`` with autograd's own backward for it, except that the
    weight gradient is computed as ``gᵀ·x`` (K, out, in) instead of ``(xᵀ·g)ᵀ``: the same
    dot products over the same rows, which torch's ``bmm`` returns with the same bits for
    matrix-matrix products (checked against autograd in tests/test_models.py), but without
    the transposed copy of a (K, out, in) gradient that autograd makes every step to match
    the weight's layout (a lane of 20 MNIST CNNs: 21 MB; docs/benchmarks.md). Differentiable twice, as the
    backward is made of torch operations. ``needs_input_grad`` is fixed at the forward, so a
    call that asks for input gradients only while the weights require gradients (none does:
    Cert-SSB's σ ascent freezes them) would compute the weight gradient too."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return torch.baddbmm(bias[:, None, :], x, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        gx = torch.bmm(g, weight) if ctx.needs_input_grad[0] else None
        gw = torch.bmm(g.transpose(1, 2), x) if ctx.needs_input_grad[1] else None
        gb = g.sum(1) if ctx.needs_input_grad[2] else None
        return gx, gw, gb


def _wide_leaf(module: nn.Module, tensors: Sequence[dict[str, torch.Tensor]]) -> nn.Module:
    """The base layer ``module`` (Conv2d, BatchNorm2d or Linear; its hyperparameters only: it may live on the ``meta``
    device) widened to K = len(tensors) models; ``tensors[k]`` holds model k's parameters and
    buffers under their local names ("weight", "running_mean", …). The wide layer's tensors
    are new (concatenated in model order), never views of the models'."""
    k = len(tensors)
    if isinstance(module, nn.Linear):
        if module.bias is None:
            raise ConfigError(f"{module}: a Linear layer without bias cannot be widened")
        return GroupedLinear(torch.stack([t["weight"] for t in tensors]), torch.stack([t["bias"] for t in tensors]))
    with torch.device("meta"):  # no initialisation: the weights are the models'
        if isinstance(module, nn.Conv2d):
            c = module
            wide: nn.Module = nn.Conv2d(k * c.in_channels, k * c.out_channels, c.kernel_size, c.stride, c.padding,
                                        c.dilation, groups=k * c.groups, bias=c.bias is not None,
                                        padding_mode=c.padding_mode)  # fmt: skip
        else:  # BatchNorm2d
            b = module
            wide = nn.BatchNorm2d(k * b.num_features, b.eps, b.momentum, b.affine, b.track_running_stats)
    for name, _ in module.named_parameters(recurse=False):
        setattr(wide, name, nn.Parameter(torch.cat([t[name] for t in tensors])))
    for name, buf in module.named_buffers(recurse=False):
        # num_batches_tracked (0-d, the same in every model of a lane): model 0's, copied
        wide.register_buffer(name, tensors[0][name].clone() if buf.ndim == 0 else torch.cat([t[name] for t in tensors]))
    return wide


def _per_model(module: nn.Module, k: int, i: int, prefix: str) -> dict[str, torch.Tensor]:
    """Model i's entries of one wide leaf module, under the base names."""
    out = {}
    if isinstance(module, GroupedLinear):
        out[f"{prefix}weight"] = module.weight[i]
        out[f"{prefix}bias"] = module.bias[i]
        return out
    for name, t in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
        if t.ndim == 0:  # num_batches_tracked
            out[f"{prefix}{name}"] = t
        else:
            n = t.shape[0] // k
            out[f"{prefix}{name}"] = t[i * n : (i + 1) * n]
    return out


class WideEnsemble(nn.Module):
    """K base models fused into one network. ``forward`` takes (K, B, C, H, W) and
    returns logits (K, B, out)."""

    #: memory format of the wide activations: None = channels-last on the CPU (where the
    #: grouped convolutions are faster in it) and the default format elsewhere; True/False
    #: force it (``certsmooth bench train --channels-last`` compares them)
    channels_last: bool | None = None

    def __init__(
        self,
        models: Sequence[nn.Module] = (),
        *,
        template: nn.Module | None = None,
        states: Sequence[dict[str, torch.Tensor]] | None = None,
    ):
        """The K ``models``, or K trained ``states`` (state dicts) of the architecture of
        ``template`` (a base model used for its structure only; on the ``meta`` device it
        costs no initialisation: :func:`wide_lane`)."""
        super().__init__()
        if models:
            template, states = models[0], [m.state_dict() for m in models]
        if template is None or not states:
            raise ValueError("an ensemble needs at least one model")
        want = set(template.state_dict())
        for i, state in enumerate(states):
            if set(state) != want:
                raise ValueError(f"state {i} does not fit the architecture: missing {sorted(want - set(state))}, "
                                 f"unexpected {sorted(set(state) - want)}")  # fmt: skip
        self.k = len(states)
        self.net = copy.deepcopy(template)
        self._leaves: list[str] = []
        for name, module in template.named_modules():
            if name == "" or list(module.children()):
                if name and not isinstance(module, CHANNELWISE) and list(module.parameters(recurse=False)):
                    raise ConfigError(f"layer {name} ({type(module).__name__}) has its own parameters; not supported")
                continue
            if isinstance(module, CHANNELWISE):
                continue
            if not isinstance(module, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)):
                raise ConfigError(
                    f"layer {name} ({type(module).__name__}) cannot be widened; "
                    "supported: Conv2d, BatchNorm2d, Linear and channel-wise layers"
                )
            local = [n for n, _ in module.named_parameters(recurse=False)]
            local += [n for n, _ in module.named_buffers(recurse=False)]
            self._set(name, _wide_leaf(module, [{n: st[f"{name}.{n}"] for n in local} for st in states]))
            self._leaves.append(name)

    def _set(self, name: str, module: nn.Module) -> None:
        parent = self.net
        *path, last = name.split(".")
        for p in path:
            parent = getattr(parent, p)
        setattr(parent, last, module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, b = x.shape[:2]
        if k != self.k:
            raise ValueError(f"expected inputs for {self.k} models, got {k}")
        wide = x.transpose(0, 1).reshape(b, k * x.shape[2], *x.shape[3:])
        nhwc = x.device.type == "cpu" if self.channels_last is None else self.channels_last
        if nhwc and wide.ndim == 4:
            wide = wide.contiguous(memory_format=torch.channels_last)
        out = self.net(wide)
        return out.reshape(b, k, -1).transpose(0, 1)

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        """Per-model state dicts under the base architecture's names (CPU copies)."""
        modules = dict(self.net.named_modules())
        states = []
        for i in range(self.k):
            state: dict[str, torch.Tensor] = {}
            for name in self._leaves:
                for key, t in _per_model(modules[name], self.k, i, f"{name}.").items():
                    state[key] = t.detach().to("cpu").clone().contiguous()
            states.append(state)
        return states


def wide_lane(
    states: dict[int, dict[str, torch.Tensor]], lane: list[int], arch: str, shape: tuple, num_classes: int, device
) -> WideEnsemble:
    """The models ``lane`` of a trained ensemble as one wide network in eval mode."""
    with torch.device("meta"):  # the structure only (no initialisation: a tenth of certification's time)
        template = build_model(arch, tuple(shape), num_classes, check=False)
    return WideEnsemble(template=template, states=[states[i] for i in lane]).to(device).eval()


@torch.no_grad()
def lane_votes(states: dict, ids: list[int], arch: str, shape, num_classes: int, x: np.ndarray, lane_width: int,
               device) -> np.ndarray:  # fmt: skip
    """(points, len(ids)) hard predictions of the base models ``ids`` on float images x."""
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
    out = np.empty((len(x), len(ids)), dtype=np.int64)
    for lane in lanes(len(ids), lane_width):
        net = wide_lane(states, [ids[i] for i in lane], arch, shape, num_classes, device)
        for s in range(0, len(x), 500):
            xb = xt[s : s + 500]
            out[s : s + 500, lane[0] : lane[-1] + 1] = predictions(net(xb[None].expand(len(lane), *xb.shape))).T.cpu()
    return out
