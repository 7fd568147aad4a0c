"""certsmooth.models.archs: the channels-last CPU pooling and the row-sliced inference features
give torch's bits."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from certsmooth.models import WideEnsemble, build_model
from certsmooth.models.archs import MaxPool2d, MnistCNN, with_torch_pooling


@pytest.mark.parametrize("shape,args", [((7, 16, 24, 24), (2,)), ((5, 32, 8, 8), (2,)), ((3, 8, 15, 15), (3, 2, 1))])
def test_inference_pooling_has_torch_bits_and_layout(shape, args):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g)
    x[0, :, :4, :4] = 0.5  # ties inside windows
    ours, ref = MaxPool2d(*args), nn.MaxPool2d(*args)
    with torch.no_grad():
        y = ours(x)
        assert torch.equal(y, ref(x)) and y.is_contiguous()
        xc = x.contiguous(memory_format=torch.channels_last)  # already channels-last: torch's own path
        assert torch.equal(ours(xc), ref(xc))


def test_training_keeps_torchs_path_and_gradients():
    x = torch.randn(4, 16, 12, 12, requires_grad=True)
    (ga,) = torch.autograd.grad(MaxPool2d(2)(x).square().sum(), x)
    (gb,) = torch.autograd.grad(nn.MaxPool2d(2)(x).square().sum(), x)
    assert torch.equal(ga, gb)


@pytest.mark.parametrize("arch,shape", [("mnist_cnn", (1, 28, 28)), ("nin", (3, 32, 32))])
def test_models_predict_the_same_bits_with_torchs_pooling(arch, shape):
    model = build_model(arch, shape, 3, seed=0).eval()
    x = torch.rand(6, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        plain = with_torch_pooling(model)
        assert not any(isinstance(m, MaxPool2d) for m in plain.modules())
        assert any(isinstance(m, MaxPool2d) for m in model.modules())  # the original is untouched
        assert torch.equal(model(x), plain(x))


@pytest.mark.parametrize("models", [0, 1, 5, 20])
@pytest.mark.parametrize("rows", [1000, 333, 7])
def test_row_sliced_inference_has_the_whole_batchs_bits(models, rows, monkeypatch):
    """Cohen's batches of noisy copies (one model) and the certifiers' wide lanes: the
    features in row slices give the bits of one call on the whole batch, and do slice."""
    shape = (1, 28, 28)
    g = torch.Generator().manual_seed(models)
    if models:
        net = WideEnsemble([build_model("mnist_cnn", shape, 2, seed=i) for i in range(models)]).eval()
        x = torch.rand(models, rows, *shape, generator=g)
        first = net.net.features[0]
    else:
        net = build_model("mnist_cnn", shape, 10, seed=0).eval()
        x = torch.rand(rows, *shape, generator=g)
        first = net.features[0]
    calls = []
    first.register_forward_hook(lambda *_: calls.append(1))
    monkeypatch.setattr(MnistCNN, "slice_bytes", 5 * 4 * first.out_channels * 28 * 28)  # 5 rows per slice
    with torch.no_grad():
        sliced = net(x)
        assert len(calls) == -(-rows // 5)
        monkeypatch.setattr(MnistCNN, "slice_bytes", 0)
        assert torch.equal(sliced, net(x))
    monkeypatch.setattr(MnistCNN, "slice_bytes", 5 * 4 * first.out_channels * 28 * 28)
    assert torch.equal(sliced, net(x).detach())  # with gradients: one call, the same bits
    assert len(calls) == -(-rows // 5) + 2


@pytest.mark.parametrize("arch,shape,classes", [("mnist_cnn", (1, 28, 28), 2), ("nin", (3, 32, 32), 10)])
def test_wide_lane_loads_without_initialising(arch, shape, classes):
    """wide_lane builds a lane from trained states without drawing any initialisation (the
    global RNG is untouched: no model or wide layer was initialised, only loaded), and its
    weights and outputs are those of the separately loaded models."""
    from certsmooth.models import wide_lane

    states = {i: build_model(arch, shape, classes, seed=i).eval().state_dict() for i in range(3)}
    rng = torch.get_rng_state()
    net = wide_lane(states, [2, 0], arch, shape, classes, torch.device("cpu"))
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(p.device.type == "cpu" and p.requires_grad for p in net.parameters())
    assert [set(s) for s in net.state_dicts()] == [set(states[2]), set(states[0])]
    for got, i in zip(net.state_dicts(), [2, 0], strict=True):
        assert all(torch.equal(got[k], v) for k, v in states[i].items())
    x = torch.rand(2, 4, *shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        for j, i in enumerate([2, 0]):
            single = build_model(arch, shape, classes, seed=i).eval()
            assert torch.allclose(net(x)[j], single(x[j]), atol=1e-5)


def test_wide_ensemble_refuses_states_of_another_architecture():
    """A trained state that does not fit the lane's architecture is refused by name, before
    any layer is widened (a wrong checkpoint must not give a half-loaded lane)."""
    from certsmooth.models import wide_lane

    good = build_model("mnist_cnn", (1, 28, 28), 2, seed=0).state_dict()
    bad = dict(good)
    bad.pop("classifier.2.bias")
    bad["head.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"state 1 does not fit.*classifier\.2\.bias.*head\.weight"):
        wide_lane({0: good, 1: bad}, [0, 1], "mnist_cnn", (1, 28, 28), 2, torch.device("cpu"))


@pytest.mark.parametrize("k,rows,classes", [(5, 16, 2), (3, 9, 10), (1, 4, 10)])
def test_grouped_linear_backward_has_autograds_bits(k, rows, classes, monkeypatch):
    """The wide hidden layer's own backward (the weight gradient as gᵀ·x, no transposed copy)
    gives every parameter and input gradient of a lane the bits of autograd's baddbmm
    backward, heads of 1 and of 10 logits included; and it is differentiable twice, as the
    bilevel attack's Hessian-vector products need (float64 gradcheck)."""
    from certsmooth.models.wide import GroupedLinear, _GroupedAffine

    net = WideEnsemble([build_model("mnist_cnn", (1, 28, 28), classes, seed=i) for i in range(k)]).train()
    x = torch.rand(k, rows, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    grads = []
    for threshold in (GroupedLinear.MIN_OWN_BACKWARD, 10**9):  # ours, then autograd's baddbmm
        monkeypatch.setattr(GroupedLinear, "MIN_OWN_BACKWARD", threshold)
        xi = x.clone().requires_grad_()
        net.zero_grad(set_to_none=True)
        net(xi).square().sum().backward()
        grads.append([xi.grad, *(p.grad for p in net.parameters())])
        assert all(p.grad.is_contiguous() for p in net.parameters())
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))
    g = torch.Generator().manual_seed(2)
    args = (torch.randn(2, 3, 4, generator=g, dtype=torch.float64).transpose(0, 1).requires_grad_(),
            torch.randn(3, 5, 4, generator=g, dtype=torch.float64, requires_grad=True),
            torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True))  # fmt: skip
    assert torch.autograd.gradcheck(_GroupedAffine.apply, args)
    assert torch.autograd.gradgradcheck(_GroupedAffine.apply, args)
