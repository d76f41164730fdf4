"""A one-line description of what runs the models: backend and device.

"TensorFlow · CPU", "TensorFlow · GPU: NVIDIA H100 80GB HBM3", or, when an
NVIDIA GPU is present but unused, the CPU line with the reason. Qt-free;
:func:`describe_runtime` imports the model framework, so call it on the model
thread only.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Sequence

BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch", "numpy": "NumPy"}


def nvidia_gpu_names(timeout: float = 5.0) -> list[str]:
    """Names of the NVIDIA GPUs ``nvidia-smi`` reports ([] without nvidia-smi)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return ["NVIDIA GPU"]
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return names or ["NVIDIA GPU"]


def format_runtime(backend: str, used_gpus: Sequence[str], nvidia_gpus: Sequence[str], reason: str = "") -> str:
    """The status-bar line.

    backend: Keras backend name; used_gpus: GPUs the backend will run on;
    nvidia_gpus: GPUs present on the machine; reason: why a present GPU is unused.
    """
    name = BACKEND_NAMES.get(backend, backend)
    if used_gpus:
        more = f" (+{len(used_gpus) - 1})" if len(used_gpus) > 1 else ""
        return f"{name} · GPU: {used_gpus[0]}{more}"
    if nvidia_gpus:
        return f"{name} · CPU — GPU found ({nvidia_gpus[0]}) but {reason or f'{name} cannot use it'}"
    return f"{name} · CPU"


def _tensorflow() -> tuple[list[str], str]:
    import tensorflow as tf

    used = []
    for device in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(device)
        except Exception:  # details are optional; the device name is enough
            details = {}
        used.append(details.get("device_name") or device.name)
    if tf.test.is_built_with_cuda():
        reason = "TensorFlow cannot use it (CUDA libraries or driver not found)"
    else:
        reason = "TensorFlow is the CPU build (install the gpu extra)"
    return used, reason


def _jax() -> tuple[list[str], str]:
    import jax

    used = [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    return used, "JAX is the CPU build (install jax[cuda12])"


def _torch() -> tuple[list[str], str]:
    import torch

    used = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return used, "PyTorch is the CPU build"


def describe_runtime() -> str:
    """Backend and device the models run on (imports the framework: model thread only)."""
    import keras

    backend = keras.backend.backend()
    probe = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}.get(backend)
    used, reason = probe() if probe else ([], "")
    return format_runtime(backend, used, nvidia_gpu_names() if not used else [], reason)
