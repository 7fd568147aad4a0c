"""torchvision datasets without network: the offline failure and the files-present path."""

import hashlib
import pickle
import socket
import subprocess
import sys

import numpy as np
import pytest
import torchvision.datasets as tvd

from certsmooth.data.prepared import prepare
from certsmooth.data.sources import fetch, load_raw
from certsmooth.errors import DatasetUnavailableError


@pytest.fixture
def no_network(monkeypatch):
    """Every connection attempt fails at once, as on a compute node without network."""

    def refuse(*args, **kwargs):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def write_idx(root, folder, prefix_train="train", prefix_test="t10k", n=(12, 6), seed=0):
    """Small MNIST-format files (big-endian idx) in torchvision's raw layout."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    data = {}
    for prefix, count in ((prefix_train, n[0]), (prefix_test, n[1])):
        x = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        y = np.arange(count, dtype=np.uint8) % 10
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            np.array([0x803, count, 28, 28], dtype=">i4").tobytes() + x.tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(np.array([0x801, count], dtype=">i4").tobytes() + y.tobytes())
        data[prefix] = (x, y)
    return data


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_offline_download_fails_with_one_clear_line(tmp_path, no_network, name):
    with pytest.raises(DatasetUnavailableError) as info:
        fetch(name, tmp_path / "raw")
    msg = str(info.value)
    assert "\n" not in msg
    assert f"dataset '{name}'" in msg and "network" in msg
    assert f"certsmooth download {name} --raw-dir" in msg and str(tmp_path / "raw") in msg
    assert "place torchvision's files at" in msg


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_offline_fetch_without_download_and_load_fail_clearly(tmp_path, name):
    for call in (lambda: fetch(name, tmp_path, download=False), lambda: load_raw(name, tmp_path)):
        with pytest.raises(DatasetUnavailableError, match=f"dataset '{name}': raw files missing") as info:
            call()
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_layout_files_present(tmp_path, no_network, name, folder):
    data = write_idx(tmp_path, folder)
    manifest = fetch(name, tmp_path)  # download=True, but nothing needs downloading
    assert len(manifest["files"]) == 4 and len(manifest["sha256"]) == 64
    raw = load_raw(name, tmp_path)
    np.testing.assert_array_equal(raw.train.x[:, 0], data["train"][0])
    np.testing.assert_array_equal(raw.test.y, data["t10k"][1])
    assert raw.raw_sha256 == manifest["sha256"]
    parts = prepare(name, [1, 0], "official", tmp_path)
    np.testing.assert_array_equal(parts["test"].source_index, [0, 1])  # test labels 0..5: digits 0 and 1
    np.testing.assert_array_equal(parts["test"].y, [1, 0])  # 0 -> label 1, 1 -> label 0


def test_cifar10_layout_files_present(tmp_path, no_network, monkeypatch):
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(0)
    md5 = {}
    batches = {}
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
        x = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)
        labels = [0, 2, 2, 5]
        (base / name).write_bytes(pickle.dumps({"data": x, "labels": labels}))
        batches[name] = x
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (base / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    for f in base.iterdir():
        md5[f.name] = hashlib.md5(f.read_bytes()).hexdigest()
    # torchvision verifies the official md5 sums; point it at the test files' sums
    monkeypatch.setattr(tvd.CIFAR10, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(tvd.CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(
        tvd.CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names", "md5": md5["batches.meta"]}
    )
    fetch("cifar10", tmp_path)
    raw = load_raw("cifar10", tmp_path)
    assert raw.train.x.shape == (20, 3, 32, 32)
    np.testing.assert_array_equal(raw.test.x[1], batches["test_batch"][1].reshape(3, 32, 32))
    parts = prepare("cifar10", ["bird", "airplane"], "official", tmp_path)  # RAB: target bird = 0
    np.testing.assert_array_equal(parts["train"].y, [1, 0, 0] * 5)
    assert parts["train"].class_names == ["bird", "airplane"]


def test_cli_download_offline_exit_code_and_message(tmp_path):
    code = (
        "import socket, sys\n"
        "def refuse(*a, **k): raise OSError(101, 'Network is unreachable')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse; socket.getaddrinfo = refuse\n"
        "from certsmooth.cli import main\n"
        f"sys.exit(main(['download', 'cifar10', '--raw-dir', {str(tmp_path / 'raw')!r}, "
        f"'--manifest', {str(tmp_path / 'm.json')!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("certsmooth: error: dataset 'cifar10'")
    assert not (tmp_path / "m.json").exists()
