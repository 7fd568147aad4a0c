"""Compute devices: which one a setting means, and the backend flags that make it
reproducible.

``device: auto`` is CUDA when a GPU is visible, else the CPU; ``cpu``, ``cuda`` and
``cuda:N`` are taken literally. On CUDA, :func:`resolve_device` also fixes the backend so
that a rerun of the same job gives the same bits and fp32 means fp32:

* cuDNN picks deterministic kernels (``cudnn.deterministic``, no autotuning with
  ``cudnn.benchmark``), cuBLAS gets a fixed workspace (``CUBLAS_WORKSPACE_CONFIG``, set
  before its first use), and ``torch.use_deterministic_algorithms(True, warn_only=True)``
  warns about any operation without a deterministic CUDA kernel (the GPU check,
  ``bench/gpu.sh``, records such warnings);
* TF32 is off for matrix products and convolutions (PyTorch enables it for cuDNN
  convolutions by default): with it, a GPU run would differ from the CPU by about 1e-3
  relative instead of rounding noise. Reduced precision is a setting of its own
  (``bf16: true``, bfloat16 autocast), recorded with the models.
"""

from __future__ import annotations

import os

import torch

from certsmooth.errors import ConfigError

CUBLAS_WORKSPACE = ":4096:8"


def resolve_device(device: str) -> torch.device:
    """The torch device of a ``device`` setting (``auto``, ``cpu``, ``cuda``, ``cuda:N``);
    on CUDA the backend is made reproducible first (:func:`reproducible_cuda`)."""
    if device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"ensemble.device = {device!r}, but no CUDA device is visible; use 'auto' or 'cpu'")
    else:
        dev = torch.device(device)
    if dev.type == "cuda":
        reproducible_cuda()
    return dev


def reproducible_cuda() -> None:
    """Deterministic cuDNN/cuBLAS kernels and no TF32 (see the module docstring).
    Idempotent; process-wide."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU): call before reading a timer."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def describe() -> dict:
    """The compute environment: torch, CUDA and cuDNN versions and, per visible GPU, its
    name, memory, compute capability and multiprocessors."""
    out = {
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu_threads": torch.get_num_threads(),
        "gpus": [],
    }
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            out["gpus"].append(
                {
                    "name": p.name,
                    "memory_gib": round(p.total_memory / 2**30, 2),
                    "capability": f"{p.major}.{p.minor}",
                    "multiprocessors": p.multi_processor_count,
                }
            )
    return out
