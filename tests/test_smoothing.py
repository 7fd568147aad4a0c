"""Architectures, the wide ensemble, partitioned training and checkpoints."""

import json
import logging

import numpy as np
import pytest
import torch

from certsmooth.certificates.ensemble import certify_points, model_probabilities
from certsmooth.errors import ConfigError, CorruptFileError
from certsmooth.lanes import job_lanes, lanes
from certsmooth.models import WideEnsemble, build_model
from certsmooth.models.files import check_manifest, load_models, save_models
from certsmooth.smoothing.train import TrainConfig, model_seeds, train_partition


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    y = np.arange(96) % 2
    x = 0.3 * rng.random((96, 1, 28, 28), dtype=np.float32)
    x[y == 1, :, 8:20, 8:20] += 0.6  # class 1: a bright square
    return x, y


CFG = TrainConfig(arch="mnist_cnn", sigma=0.5, epochs=2, batch_size=32, lr=1e-3, lane_width=2)


@pytest.mark.parametrize(
    "arch,shape,classes",
    [("mnist_cnn", (1, 28, 28), 2), ("mnist_cnn", (1, 28, 28), 10), ("preact_resnet32", (3, 32, 32), 2),
     ("nin", (1, 28, 28), 10), ("nin", (3, 32, 32), 2), ("resnet18", (3, 64, 64), 3)],
)  # fmt: skip
def test_wide_ensemble_equals_separate_models(arch, shape, classes):
    models = [build_model(arch, shape, classes, seed=s).eval() for s in range(3)]
    wide = WideEnsemble(models).eval()
    x = torch.rand(3, 5, *shape)
    with torch.no_grad():
        ref = torch.stack([m(x[i]) for i, m in enumerate(models)])
        out = wide(x)
    assert out.shape == (3, 5, 1 if classes == 2 else classes)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    for i, state in enumerate(wide.state_dicts()):
        ref_state = models[i].state_dict()
        assert state.keys() == ref_state.keys()
        assert all(torch.equal(state[k], ref_state[k]) for k in state)


def test_wide_batchnorm_keeps_per_model_statistics():
    models = [build_model("preact_resnet32", (3, 32, 32), 2, seed=s) for s in range(2)]
    wide = WideEnsemble(models).train()
    x = torch.rand(2, 8, 3, 32, 32)
    x[1] *= 3  # very different inputs for model 1
    wide(x)
    for m, xi in zip(models, x, strict=True):
        m.train()(xi)
    for i, state in enumerate(wide.state_dicts()):
        torch.testing.assert_close(state["features.1.bn1.running_mean"], models[i].features[1].bn1.running_mean)


def test_build_model_seeded_and_checked():
    a = build_model("mnist_cnn", (1, 28, 28), 2, seed=5).state_dict()
    b = build_model("mnist_cnn", (1, 28, 28), 2, seed=5).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ConfigError, match="does not fit 32×32"):
        build_model("mnist_cnn", (3, 32, 32), 2)
    with pytest.raises(ConfigError, match="unknown architecture"):
        build_model("vgg", (1, 28, 28), 2)


def test_lanes_and_jobs():
    assert lanes(7, 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert job_lanes(7, 3, 2) == [[[0, 1, 2], [3, 4, 5]], [[6]]] or job_lanes(7, 3, 2) == [
        [[0, 1, 2]],
        [[3, 4, 5], [6]],
    ]
    parts = job_lanes(50, 10, 5)
    assert [m for p in parts for lane in p for m in lane] == list(range(50))
    with pytest.raises(ConfigError, match="between 1 and"):
        job_lanes(8, 4, 3)
    seeds = model_seeds(0, 3)
    assert len(set(seeds.values())) == 4 and seeds == model_seeds(0, 3) and seeds != model_seeds(1, 3)


def test_partition_invariance_bit_for_bit(toy):
    x, y = toy
    m = 8
    one, _, _ = train_partition(x, y, job_lanes(m, CFG.lane_width, 1)[0], 7, CFG, 2, "cpu")
    four = {}
    for part in job_lanes(m, CFG.lane_width, 4):
        s, _, _ = train_partition(x, y, part, 7, CFG, 2, "cpu")
        four.update(s)
    assert sorted(one) == sorted(four) == list(range(m))
    for i in range(m):
        assert all(torch.equal(one[i][k], four[i][k]) for k in one[i]), f"model {i} differs"
    # and the certificates are identical too
    keys = {i: model_seeds(7, i)["test_noise"] for i in range(m)}
    for scope in ("train", "joint"):
        p1 = model_probabilities(one, keys, "mnist_cnn", 2, x[:20], 0.5, scope, 2, torch.device("cpu"))
        p4 = model_probabilities(four, keys, "mnist_cnn", 2, x[:20], 0.5, scope, 2, torch.device("cpu"))
        np.testing.assert_array_equal(p1, p4)
    # models differ from each other (independent noise, init, order)
    assert not torch.equal(one[0]["classifier.2.weight"], one[1]["classifier.2.weight"])


def test_training_rerun_determinism_and_learning(toy):
    x, y = toy
    cfg = TrainConfig(arch="mnist_cnn", sigma=0.1, epochs=8, batch_size=32, lr=2e-3, lane_width=2)
    a, stats, _ = train_partition(x, y, [[0, 1]], 3, cfg, 2, "cpu")
    b, _, _ = train_partition(x, y, [[0, 1]], 3, cfg, 2, "cpu")
    assert all(torch.equal(a[0][k], b[0][k]) for k in a[0])
    assert min(s["final_epoch_noisy_train_accuracy"] for s in stats) > 0.8  # it learns the toy rule


def test_checkpoint_round_trip_and_corruption(toy, tmp_path):
    x, y = toy
    states, stats, _ = train_partition(x, y, [[0, 1]], 1, CFG, 2, "cpu")
    w, m = tmp_path / "p.safetensors", tmp_path / "p.json"
    save_models(w, m, states, {"seed": 1, "train": CFG.to_dict(), "per_model": stats})
    back, manifest = load_models(w, m)
    assert sorted(back) == [0, 1] and all(torch.equal(back[0][k], states[0][k]) for k in states[0])
    assert manifest["models"] == [0, 1] and "torch_version" in manifest
    check_manifest(manifest, w, seed=1)
    with pytest.raises(CorruptFileError, match="trained with seed = 1, but this run expects 2"):
        check_manifest(manifest, w, seed=2)
    truncated = tmp_path / "t.safetensors"
    truncated.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    with pytest.raises(CorruptFileError, match="t.safetensors: not a readable safetensors file.*delete"):
        load_models(truncated, m)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({**manifest, "models": [0, 1, 2]}))
    with pytest.raises(CorruptFileError, match="its manifest"):
        load_models(w, wrong)
    pickled = tmp_path / "pickle.safetensors"
    torch.save(states[0], pickled)  # a pickle is refused, never loaded
    with pytest.raises(CorruptFileError):
        load_models(pickled, m)


def test_certify_points_soft_and_votes():
    probs = np.zeros((100, 3, 2), dtype=np.float32)
    probs[:, 0] = [0.1, 0.9]  # unanimous class 1
    probs[:, 1, 0] = np.r_[np.full(50, 0.6), np.full(50, 0.4)]  # a tie on average
    probs[:, 1, 1] = 1 - probs[:, 1, 0]
    probs[:, 2] = [1.0, 0.0]
    soft = certify_points(probs, 0.001, 1.0, "soft")
    votes = certify_points(probs, 0.001, 1.0, "votes")
    assert soft.predict.tolist() == [1, -1, 0] and votes.predict.tolist() == [1, -1, 0]
    assert votes.radius[0] > soft.radius[0] > 0  # votes see 100/100 for class 1, soft sees 0.9


def test_bf16_autocast_trains_on_cpu(toy):
    x, y = toy
    cfg = TrainConfig(arch="mnist_cnn", sigma=0.5, epochs=1, batch_size=48, lr=1e-3, lane_width=2, bf16=True)
    states, stats, timing = train_partition(x, y, [[0, 1]], 0, cfg, 2, "cpu")
    assert sorted(states) == [0, 1] and timing["device"] == "cpu"
    assert all(np.isfinite(s["final_epoch_loss"]) for s in stats)


def test_cuda_device_without_gpu_is_a_config_error():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    from certsmooth.device import resolve_device

    with pytest.raises(ConfigError, match="ensemble.device = 'cuda', but no CUDA device is visible"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_sample_specific_sigma(toy):
    x, y = toy
    lanes_ = [[0, 1]]
    scalar, _, _ = train_partition(x, y, lanes_, 5, CFG, 2, "cpu")
    constant, _, _ = train_partition(x, y, lanes_, 5, CFG, 2, "cpu", sample_sigma=np.full(len(y), CFG.sigma))
    assert all(torch.equal(scalar[0][k], constant[0][k]) for k in scalar[0])  # σ vector = σ: identical
    varied, _, _ = train_partition(x, y, lanes_, 5, CFG, 2, "cpu", sample_sigma=np.linspace(0.1, 1.0, len(y)))
    assert not torch.equal(scalar[0]["classifier.2.weight"], varied[0]["classifier.2.weight"])
    with pytest.raises(ValueError, match="positive scales"):
        train_partition(x, y, lanes_, 5, CFG, 2, "cpu", sample_sigma=np.zeros(len(y)))


# -- resumable training (certsmooth.smoothing.resume) ---------------------------------------------------------------


class Killed(BaseException):
    """Stands for a kill: raised right after the n-th checkpoint is on disk."""


@pytest.fixture
def ckpt_log(caplog, monkeypatch):
    from certsmooth.logs import LOG

    monkeypatch.setenv("CERTSMOOTH_CHECKPOINT_EVERY_S", "0")
    level = LOG.level
    LOG.setLevel(logging.INFO)  # setLevel, not assignment: it clears the logger's isEnabledFor cache
    LOG.addHandler(caplog.handler)
    yield caplog
    LOG.removeHandler(caplog.handler)
    LOG.setLevel(level)


def _kill_after(monkeypatch, saves: int) -> None:
    """Make the ``saves``-th checkpoint write the last thing the process does."""
    from certsmooth.smoothing.resume import Checkpoint

    original, count = Checkpoint.save, [0]

    def save(self, *args, **kwargs):
        path = original(self, *args, **kwargs)
        count[0] += 1
        if count[0] == saves:
            raise Killed
        return path

    monkeypatch.setattr(Checkpoint, "save", save)


def _assert_same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for i in a:
        assert a[i].keys() == b[i].keys()
        for k in a[i]:
            assert torch.equal(a[i][k], b[i][k]), f"model {i}: {k} differs"


RESUME_CFG = TrainConfig(arch="mnist_cnn", sigma=0.5, epochs=3, batch_size=40, lr=1e-3, lane_width=2)


@pytest.mark.parametrize(
    "saves,sample_sigma,expect",
    [
        (2, False, ["resuming lane [0, 1] from epoch 2 of 3"]),  # mid-lane
        (3, False, ["resuming lane [0, 1] from epoch 3 of 3", "already trained"]),  # lane boundary
        (4, True, ["resuming lane [0, 1] from epoch 3 of 3", "resuming lane [2, 3] from epoch 1 of 3"]),  # Cert-SSB
    ],
)  # fmt: skip
def test_interrupted_training_resumes_bit_for_bit(toy, tmp_path, monkeypatch, ckpt_log, saves, sample_sigma, expect):
    x, y = toy
    part = [[0, 1], [2, 3]]
    sig = np.linspace(0.1, 1.0, len(y)).astype(np.float32) if sample_sigma else None
    ref, ref_stats, _ = train_partition(x, y, part, 7, RESUME_CFG, 2, "cpu", sig)
    ckdir = tmp_path / "ckpt"
    with monkeypatch.context() as m:
        _kill_after(m, saves)
        with pytest.raises(Killed):
            train_partition(x, y, part, 7, RESUME_CFG, 2, "cpu", sig, ckdir)
    ckpt_log.clear()
    resumed, stats, timing = train_partition(x, y, part, 7, RESUME_CFG, 2, "cpu", sig, ckdir)
    for line in expect:
        assert line in ckpt_log.text
    assert "from scratch" not in ckpt_log.text
    _assert_same(resumed, ref)
    assert stats == ref_stats  # the manifest's per-model statistics too
    assert timing["resumed_lane_epochs"] == saves
    # every lane keeps its final checkpoint (one record, one tensor file) until the caller removes the folder
    assert sorted(p.name for p in ckdir.glob("*.json")) == ["lane00000-00001.json", "lane00002-00003.json"]
    assert len(list(ckdir.glob("*.safetensors"))) == 2 and not list(ckdir.glob(".*tmp"))
    from certsmooth.smoothing.resume import remove_checkpoints

    remove_checkpoints(ckdir)
    assert not ckdir.exists()


@pytest.mark.parametrize("damage", ["record", "tensors", "token", "settings"])
def test_unusable_checkpoints_are_ignored(toy, tmp_path, monkeypatch, ckpt_log, damage):
    x, y = toy
    part = [[0, 1]]
    ckdir = tmp_path / "ckpt"
    with monkeypatch.context() as m:
        _kill_after(m, 2)
        with pytest.raises(Killed):
            train_partition(x, y, part, 7, RESUME_CFG, 2, "cpu", checkpoint_dir=ckdir)
    record = ckdir / "lane00000-00001.json"
    (tensors,) = ckdir.glob("*.safetensors")
    seed = 7
    if damage == "record":  # a kill while writing could not do this (atomic), a full disk or an editor could
        record.write_text(record.read_text()[:50])
    elif damage == "tensors":
        tensors.write_bytes(tensors.read_bytes()[:1000])
    elif damage == "token":  # a tensor file that is not the one the record names
        rec = json.loads(record.read_text())
        record.write_text(json.dumps({**rec, "token": "0" * 16}))
    else:
        seed = 8  # other settings: the checkpoint is not theirs
    ref, _, _ = train_partition(x, y, part, seed, RESUME_CFG, 2, "cpu")
    ckpt_log.clear()
    got, _, _ = train_partition(x, y, part, seed, RESUME_CFG, 2, "cpu", checkpoint_dir=ckdir)
    assert "ignoring checkpoint" in ckpt_log.text and "training lane [0, 1] from scratch" in ckpt_log.text
    if damage == "settings":
        assert "differs in: root_seed" in ckpt_log.text
    assert "resuming" not in ckpt_log.text
    _assert_same(got, ref)
    assert len(list(ckdir.glob("*.safetensors"))) == 1  # the stale tensor file is replaced, not accumulated


def test_checkpoint_interval(toy, tmp_path, monkeypatch):
    from certsmooth.smoothing.resume import Checkpoint, checkpoint_interval

    x, y = toy
    calls = []
    original = Checkpoint.save
    monkeypatch.setattr(Checkpoint, "save", lambda self, n, *a: calls.append(n) or original(self, n, *a))
    monkeypatch.setenv("CERTSMOOTH_CHECKPOINT_EVERY_S", "3600")
    train_partition(x, y, [[0, 1], [2, 3]], 7, RESUME_CFG, 2, "cpu", checkpoint_dir=tmp_path / "a")
    assert calls == [3, 3]  # only at the end of each lane
    calls.clear()
    monkeypatch.setenv("CERTSMOOTH_CHECKPOINT_EVERY_S", "0")
    train_partition(x, y, [[0, 1]], 7, RESUME_CFG, 2, "cpu", checkpoint_dir=tmp_path / "b")
    assert calls == [1, 2, 3]
    monkeypatch.delenv("CERTSMOOTH_CHECKPOINT_EVERY_S")
    assert checkpoint_interval() == 300
    monkeypatch.setenv("CERTSMOOTH_CHECKPOINT_EVERY_S", "soon")
    with pytest.raises(ConfigError, match="CERTSMOOTH_CHECKPOINT_EVERY_S = 'soon'"):
        checkpoint_interval()


@pytest.mark.parametrize("method", ["ga", "macer", "smoothadv"])
def test_cohen_training_resumes_bit_for_bit(toy, tmp_path, monkeypatch, ckpt_log, method):
    from certsmooth.smoothing.ga import GAConfig, train_gaussian

    x, y = toy
    extra = {
        "macer": {"macer": {"k": 2, "beta": 16.0, "gamma": 8.0, "lam": 1.0}},
        "smoothadv": {"smoothadv": {"eps": 0.5, "steps": 1, "warmup_epochs": 2, "noise": "fixed"}},
    }.get(method, {})
    cfg = GAConfig(arch="mnist_cnn", sigma=0.25, epochs=3, batch_size=40, lr=1e-3, method=method, **extra)
    ref, ref_stats = train_gaussian(x, y, cfg, 0, 2, "cpu")
    ckdir = tmp_path / "ckpt"
    with monkeypatch.context() as m:
        _kill_after(m, 1)
        with pytest.raises(Killed):
            train_gaussian(x, y, cfg, 0, 2, "cpu", ckdir)
    got, stats = train_gaussian(x, y, cfg, 0, 2, "cpu", ckdir)
    assert f"resuming the {method} model from epoch 1 of 3" in ckpt_log.text
    _assert_same({0: got}, {0: ref})
    for key in ("final_epoch_loss", "final_epoch_noisy_train_accuracy"):
        assert stats[key] == ref_stats[key]


def test_resume_restores_batchnorm_statistics(tmp_path, monkeypatch, ckpt_log):
    rng = np.random.default_rng(1)
    x, y = rng.random((24, 3, 32, 32), dtype=np.float32), np.arange(24) % 3
    cfg = TrainConfig(arch="preact_resnet32", sigma=0.25, epochs=2, batch_size=12, lr=1e-3, lane_width=2)
    ref, ref_stats, _ = train_partition(x, y, [[0, 1]], 3, cfg, 3, "cpu")
    with monkeypatch.context() as m:
        _kill_after(m, 1)
        with pytest.raises(Killed):
            train_partition(x, y, [[0, 1]], 3, cfg, 3, "cpu", checkpoint_dir=tmp_path)
    got, stats, _ = train_partition(x, y, [[0, 1]], 3, cfg, 3, "cpu", checkpoint_dir=tmp_path)
    assert "resuming lane [0, 1] from epoch 1 of 2" in ckpt_log.text
    assert any("running_mean" in k for k in got[0]) and any("num_batches_tracked" in k for k in got[0])
    _assert_same(got, ref)
    assert stats == ref_stats


def test_remove_checkpoints_touches_only_its_files(toy, tmp_path, monkeypatch):
    from certsmooth.smoothing.resume import remove_checkpoints

    x, y = toy
    monkeypatch.setenv("CERTSMOOTH_CHECKPOINT_EVERY_S", "0")
    ckdir = tmp_path / "ckpt"
    train_partition(x, y, [[0, 1]], 7, RESUME_CFG, 2, "cpu", checkpoint_dir=ckdir)
    (ckdir / ".lane00000-00001.0123456789abcdef.safetensors.x1y2.tmp").write_bytes(b"half")  # a kill mid-write
    remove_checkpoints(ckdir)
    assert not ckdir.exists()
    ckdir.mkdir()
    train_partition(x, y, [[0, 1]], 7, RESUME_CFG, 2, "cpu", checkpoint_dir=ckdir)
    (ckdir / "notes.json").write_text("{}")  # a folder given by mistake: foreign files stay
    remove_checkpoints(ckdir)
    assert [p.name for p in ckdir.iterdir()] == ["notes.json"]
    remove_checkpoints(tmp_path / "missing")  # nothing to do
