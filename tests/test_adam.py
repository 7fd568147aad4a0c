"""certsmooth's CPU Adam (smoothing.adam) against torch.optim.Adam, bit for bit."""

import subprocess
import sys

import pytest
import torch

from certsmooth.models import build_model
from certsmooth.smoothing.adam import Adam, adam


def _net(seed=0):
    return build_model("mnist_cnn", (1, 28, 28), 10, seed=seed, check=False)


def _run(opt_factory, steps=7, skip=(), seed=0, net=None, opt=None, start=0):
    """Train ``net`` for ``steps`` steps on fixed random batches; in the steps of ``skip``
    the first parameter gets no gradient (as a parameter a loss does not reach)."""
    net = net if net is not None else _net(seed)
    opt = opt if opt is not None else opt_factory(net.parameters())
    for s in range(start, start + steps):
        g = torch.Generator().manual_seed(100 + s)
        x, y = torch.rand(16, 1, 28, 28, generator=g), torch.randint(0, 10, (16,), generator=g)
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        if s in skip:
            next(net.parameters()).grad = None
        opt.step()
    return net, opt


def _differing(a, b) -> list[str]:
    """Names of the state entries of two models that are not bit-identical."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return [k for k in sa if not torch.equal(sa[k], sb[k])]


@pytest.mark.parametrize("fused", [False, True])
def test_weights_and_state_bit_identical_to_torch(fused):
    ours_net, ours = _run(lambda p: Adam(p, lr=3e-3, fused=fused), skip={2})
    ref_net, ref = _run(lambda p: torch.optim.Adam(p, lr=3e-3, fused=fused), skip={2})
    assert _differing(ours_net, ref_net) == []
    s_ours, s_ref = ours.state_dict()["state"], ref.state_dict()["state"]
    assert s_ours.keys() == s_ref.keys()
    for i in s_ref:
        assert s_ours[i].keys() == s_ref[i].keys()
        for key in s_ref[i]:
            a, b = s_ours[i][key], s_ref[i][key]
            assert a.dtype == b.dtype and a.device == b.device and torch.equal(a, b), (i, key)
    assert float(s_ours[0]["step"]) == 6.0 and float(s_ours[1]["step"]) == 7.0  # the skipped step


@pytest.mark.parametrize("fused", [False, True])
def test_state_dict_round_trip_resumes_exactly(fused):
    """Seven steps in one go == four, state_dict into a fresh optimiser (ours from torch's
    and torch's from ours), three more."""
    full, _ = _run(lambda p: Adam(p, lr=1e-3, fused=fused), steps=7)
    for first, second in [(Adam, torch.optim.Adam), (torch.optim.Adam, Adam), (Adam, Adam)]:
        net, opt = _run(lambda p, c=first: c(p, lr=1e-3, fused=fused), steps=4)
        saved = opt.state_dict()
        fresh = second(net.parameters(), lr=1e-3, fused=fused)
        fresh.load_state_dict(saved)
        net, _ = _run(None, steps=3, net=net, opt=fresh, start=4)
        assert _differing(net, full) == [], (first, second)


def test_factory_and_bad_input():
    net = _net()
    assert isinstance(adam(net.parameters(), lr=1e-3), Adam)
    with pytest.raises(ValueError, match="CPU tensors"):
        Adam([], lr=1e-3)
    with pytest.raises(ValueError, match="floating-point"):
        Adam([torch.zeros(3, dtype=torch.int64)], lr=1e-3, fused=True)
    with pytest.raises(ValueError, match="one dtype"):
        Adam([torch.zeros(3), torch.zeros(3, dtype=torch.float64)], lr=1e-3, fused=True)
    opt = Adam(net.parameters(), lr=1e-3)
    opt.step()  # no gradients: nothing happens, no state
    assert opt.state == {}
    _run(None, steps=1, net=net, opt=opt)
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in net.parameters())


def test_training_does_not_import_dynamo():
    """The reason the class exists: a training job no longer pays torch._dynamo's import."""
    code = (
        "import sys, numpy as np\n"
        "from certsmooth.smoothing.train import TrainConfig, train_lane\n"
        "from certsmooth.smoothing.ga import GAConfig, train_gaussian\n"
        "import torch\n"
        "x = torch.rand(8, 1, 28, 28); y = torch.arange(8) % 2\n"
        "cfg = TrainConfig(arch='mnist_cnn', sigma=0.5, epochs=1, batch_size=4, lr=1e-3, lane_width=2)\n"
        "train_lane(x, y, [0, 1], 7, cfg, 2, torch.device('cpu'))\n"
        "train_gaussian(x.numpy(), y.numpy(), GAConfig(arch='mnist_cnn', sigma=0.5, epochs=1, batch_size=4,"
        " lr=1e-3, method='smoothadv'), 7, 2, 'cpu')\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr


def test_lane_adam_is_torchs_adam_per_model_bit_for_bit():
    """LaneAdam over wide parameters of three models (model-major rows, as a lane's) gives
    each model the bits of torch.optim.Adam (single-tensor) run on that model's rows alone
    with the same gradients, including a model that sits out some steps: it keeps its
    weights and moments, and its own step count sets its bias corrections."""
    from certsmooth.subsets.optim import LaneAdam

    g = torch.Generator().manual_seed(0)
    wide = [torch.nn.Parameter(torch.randn(shape, generator=g)) for shape in ((3 * 4, 5, 2), (3, 7))]
    alone = [[torch.nn.Parameter(p.detach()[j * (len(p) // 3) : (j + 1) * (len(p) // 3)].clone()) for p in wide]
             for j in range(3)]  # fmt: skip
    lane = LaneAdam(wide, 3, 1e-3)
    opts = [torch.optim.Adam(ps, lr=1e-3, foreach=False) for ps in alone]
    sits_out = {1: (2, 3), 2: (0,)}  # model → steps without a batch
    for s in range(6):
        active = torch.tensor([s not in sits_out.get(j, ()) for j in range(3)])
        for p in wide:
            p.grad = torch.randn(p.shape, generator=g) * 10.0 ** float(torch.randint(-4, 2, (), generator=g))
        for j in range(3):
            for p, q in zip(wide, alone[j], strict=True):
                n = len(p) // 3
                q.grad = p.grad[j * n : (j + 1) * n].clone()
            if active[j]:
                opts[j].step()
        lane.step(active)
    for j in range(3):
        for p, q in zip(wide, alone[j], strict=True):
            n = len(p) // 3
            assert torch.equal(p.detach()[j * n : (j + 1) * n], q.detach()), j
