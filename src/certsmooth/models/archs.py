"""Base classifiers. Inputs are images in [0, 1] (no normalisation, as RAB); the head
has one logit for binary tasks (class 1 iff logit > 0) and C logits otherwise.

* ``mnist_cnn``: RAB/Cert-SSB MNIST CNN: conv5×5 1→16, ReLU, maxpool 2, conv5×5 16→32,
  ReLU, maxpool 2, FC 512→512, ReLU, FC 512→out (28×28 inputs).
* ``preact_resnet32``: RAB/Cert-SSB CIFAR pre-activation ResNet: conv3×3 3→16, three
  stages of five pre-activation basic blocks, widths 16/32/64, strides 1/2/2, BN+ReLU,
  global average pooling, FC 64→out, Kaiming initialisation (≈ ResNet-32).
* ``nin``: DPA's / Finite Aggregation's Network-in-Network (the 3-stage RotNet NiN of
  Gidaris et al. that ``alevine0/DPA`` trains): three stages of conv+BN+ReLU blocks with
  192/160/96, 192/192/192 and 192/192/192 channels (kernels 5-1-1, 5-1-1, 3-1-1, no conv
  bias), 3×3 stride-2 max pooling after stage 1 and average pooling after stage 2, global
  average pooling, FC 192→out; convolutions initialised N(0, 2/(k²·out channels)), BN 1/0,
  FC bias 0 (RotNet's initialisation).
* ``resnet18``: torchvision's ResNet-18 with an ``out``-unit head, for larger images.
  RAB fine-tunes ImageNet-pretrained weights; downloading them needs network, so
  certsmooth trains from torchvision's random initialisation (documented divergence).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from certsmooth.errors import ConfigError
from certsmooth.models.inputs import check_fits


class MaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` (same module, no state) that pools in channels-last on the CPU when no
    gradient is taken: torch's NCHW max-pool CPU kernel is 3-4× slower than its channels-last
    one on the MNIST CNN's activations (2.7× for 1000×16×24×24, 3.6× for 1000×32×8×8, one
    thread, conversions included), and it was the largest single cost of Cohen's CERTIFY.
    A maximum is exact, so the result has the same bits in the input's own layout
    (tests/test_models.py); training (gradients: the arg-max tie order) keeps torch's path."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.device.type == "cpu" and x.dim() == 4 and x.is_contiguous() and x.shape[1] > 1
                and not (torch.is_grad_enabled() and x.requires_grad)):  # fmt: skip
            return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()
        return super().forward(x)


def in_row_slices(features: nn.Sequential, x: torch.Tensor, budget: int) -> torch.Tensor:
    """``features(x)``, on the CPU without gradients computed a slice of rows at a time, each
    slice's first activation about ``budget`` bytes (the first layer's output channels × the
    input's H × W × 4): the whole batch's first activation (37 MB for Cohen's 1,000 noisy
    copies, 368 MB for 500 points in a lane of 20 MNIST CNNs) leaves the cache between the
    convolution that writes it and the pooling that reads it, a slice's does not. Only for
    layers that treat every row alone (convolutions, pooling, ReLU; no BatchNorm in training
    mode): torch's CPU kernels give every row the same bits whatever the rows around it
    (tests/test_models.py), and only the features are sliced, because the last linear layer's
    matrix-vector kernel does not (its output has other bits at some batch sizes)."""
    first = features[0]
    if (budget <= 0 or x.device.type != "cpu" or torch.is_grad_enabled() or x.dim() != 4
            or not isinstance(first, nn.Conv2d)):  # fmt: skip
        return features(x)
    rows = max(1, budget // (4 * first.out_channels * x.shape[-2] * x.shape[-1]))
    if len(x) <= rows:
        return features(x)
    return torch.cat([features(x[s : s + rows]) for s in range(0, len(x), rows)])


def with_torch_pooling(model: nn.Module) -> nn.Module:
    """A copy of ``model`` as plain torch runs it: every :class:`MaxPool2d` replaced by
    torch's own ``nn.MaxPool2d`` (the same function and bits, torch's NCHW kernel) and the
    whole batch in one call (``slice_bytes = 0``): the baseline the benchmarks compare
    against."""
    import copy

    model = copy.deepcopy(model)
    for name, m in list(model.named_modules()):
        if isinstance(m, MaxPool2d):
            parent, _, leaf = name.rpartition(".")
            setattr(model.get_submodule(parent), leaf, nn.MaxPool2d(m.kernel_size, m.stride, m.padding))
        if hasattr(m, "slice_bytes"):
            m.slice_bytes = 0
    return model


class MnistCNN(nn.Module):
    """RAB's MNIST CNN. Max-pooling is applied before the ReLU: max and ReLU commute
    (ReLU is monotone), so the function and its gradients are RAB's, with a 4× smaller
    ReLU. On the CPU without gradients the convolutional features run in row slices
    (:func:`in_row_slices`, ``slice_bytes``; 0: the whole batch in one call)."""

    slice_bytes = 8 * 2**20  # bench: 2.0-2.5x for 1-20 models per lane at 4-8 MiB (docs/benchmarks.md)

    def __init__(self, in_channels: int = 1, out: int = 1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, 5),
            MaxPool2d(2),
            nn.ReLU(),
            nn.Conv2d(16, 32, 5),
            MaxPool2d(2),
            nn.ReLU(),
        )
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, out))

    def forward(self, x):
        return self.classifier(self.flatten(in_row_slices(self.features, x, self.slice_bytes)))


class PreActBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.relu = nn.ReLU()
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None

    def forward(self, x):
        out = self.relu(self.bn1(x))
        short = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.relu(self.bn2(out)))
        return out + short


class PreActResNet(nn.Module):
    def __init__(self, in_channels: int = 3, out: int = 1, blocks: int = 5, widths=(16, 32, 64)):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)]
        cin = widths[0]
        for i, w in enumerate(widths):
            for b in range(blocks):
                layers.append(PreActBlock(cin, w, 2 if (b == 0 and i > 0) else 1))
                cin = w
        layers += [nn.BatchNorm2d(cin), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, out)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.fc(self.features(x))


class NiN(nn.Module):
    """DPA's Network-in-Network base model (see the module docstring)."""

    STAGES = (((5, 192), (1, 160), (1, 96)), ((5, 192), (1, 192), (1, 192)), ((3, 192), (1, 192), (1, 192)))

    def __init__(self, in_channels: int = 1, out: int = 1):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for i, stage in enumerate(self.STAGES):
            for kernel, cout in stage:
                conv = nn.Conv2d(cin, cout, kernel, 1, (kernel - 1) // 2, bias=False)
                layers += [conv, nn.BatchNorm2d(cout), nn.ReLU()]
                cin = cout
            if i == 0:
                layers.append(MaxPool2d(3, 2, 1))
            elif i == 1:
                layers.append(nn.AvgPool2d(3, 2, 1))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, out)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, (2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        return self.fc(self.features(x))


def _resnet18(in_channels: int, out: int) -> nn.Module:
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=out)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
    return model


ARCHS: dict[str, tuple[Callable[[int, int], nn.Module], str]] = {
    "mnist_cnn": (lambda c, o: MnistCNN(c, o), "28×28 inputs"),
    "preact_resnet32": (lambda c, o: PreActResNet(c, o), "32×32 inputs"),
    "nin": (lambda c, o: NiN(c, o), "inputs of at least 8×8 (28×28 and 32×32 in the papers)"),
    "resnet18": (_resnet18, "any size ≥ 32×32"),
}


def num_outputs(num_classes: int) -> int:
    """One logit for binary tasks, one per class otherwise."""
    return 1 if num_classes == 2 else num_classes


def build_model(
    arch: str, in_shape: tuple[int, int, int], num_classes: int, seed: int | None = None, check: bool = True
) -> nn.Module:
    """A freshly initialised base model; with ``seed`` its initialisation is a pure
    function of the seed (the global RNG state is saved and restored). ``check`` refuses
    an input size the architecture does not take (:mod:`certsmooth.models.inputs`)."""
    if check:
        check_fits(arch, in_shape)
    elif arch not in ARCHS:
        raise ConfigError(f"arch = {arch!r}: unknown architecture; allowed: {', '.join(ARCHS)}")
    factory, _ = ARCHS[arch]
    if seed is None:
        model = factory(in_shape[0], num_outputs(num_classes))
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = factory(in_shape[0], num_outputs(num_classes))
    return model.train()


def predictions(logits: torch.Tensor) -> torch.Tensor:
    if logits.shape[-1] == 1:
        return (logits[..., 0] > 0).long()
    return logits.argmax(-1)


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """(…, 1) logit → [1 − sigmoid, sigmoid] (RAB); (…, C) → softmax."""
    if logits.shape[-1] == 1:
        p = torch.sigmoid(logits[..., 0].float())
        return torch.stack([1 - p, p], dim=-1)
    return torch.softmax(logits.float(), dim=-1)
