"""The status bar's runtime line: backend and device, and why a present GPU is unused."""

from __future__ import annotations

import os
import stat
import sys

from desktop import runtime


def test_format_runtime():
    assert runtime.format_runtime("tensorflow", [], []) == "TensorFlow · CPU"
    assert runtime.format_runtime("tensorflow", ["NVIDIA H100 80GB HBM3"], ["NVIDIA H100 80GB HBM3"]) \
        == "TensorFlow · GPU: NVIDIA H100 80GB HBM3"
    assert runtime.format_runtime("jax", ["H100", "H100"], []) == "JAX · GPU: H100 (+1)"
    line = runtime.format_runtime("tensorflow", [], ["NVIDIA A10"], "TensorFlow is the CPU build (install the gpu extra)")
    assert line == "TensorFlow · CPU — GPU found (NVIDIA A10) but TensorFlow is the CPU build (install the gpu extra)"


def _fake_nvidia_smi(folder, output: str, code: int = 0):
    exe = folder / "nvidia-smi"
    exe.write_text(f"#!/bin/sh\nprintf '{output}'\nexit {code}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return folder


def test_nvidia_gpu_names_from_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(_fake_nvidia_smi(tmp_path, "NVIDIA H100 80GB HBM3\\n")))
    assert runtime.nvidia_gpu_names() == ["NVIDIA H100 80GB HBM3"]


def test_no_nvidia_smi_means_no_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert runtime.nvidia_gpu_names() == []


def test_describe_runtime_names_the_reason_a_gpu_is_unused(tmp_path, monkeypatch):
    """With the CPU TensorFlow wheel and an NVIDIA GPU present, the line says why it is not used."""
    monkeypatch.setenv("PATH", str(_fake_nvidia_smi(tmp_path, "NVIDIA A10\\n")) + os.pathsep + os.environ["PATH"])
    monkeypatch.setattr(runtime, "_tensorflow", lambda: ([], "TensorFlow is the CPU build (install the gpu extra)"))
    import keras

    if keras.backend.backend() == "tensorflow":
        assert runtime.describe_runtime() == ("TensorFlow · CPU — GPU found (NVIDIA A10) but "
                                              "TensorFlow is the CPU build (install the gpu extra)")


def test_describe_runtime_on_this_machine():
    line = runtime.describe_runtime()
    assert " · " in line and ("CPU" in line or "GPU" in line), line
    print(line, file=sys.stderr)
