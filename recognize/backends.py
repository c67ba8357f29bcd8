"""Inference backend selection: one place that turns a backend name into an ONNX Runtime session.

All models are plain ONNX files, so CPU, CUDA and TensorRT differ only in the execution
provider list.  ``onnxruntime`` is imported lazily so that importing :mod:`recognize` stays cheap
and never pulls in CUDA or TensorRT libraries.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_TRT_CACHE_DIR = Path.home() / ".cache" / "gantry" / "trt-engines"


@dataclass(frozen=True)
class BackendSpec:
    """What a backend needs: the ORT provider, whether it uses a GPU, and how to install it."""

    provider: str
    gpus: float
    install_hint: str


BACKENDS: dict[str, BackendSpec] = {
    "onnx-cpu": BackendSpec("CPUExecutionProvider", 0.0, "pip install onnxruntime"),
    "onnx-cuda": BackendSpec("CUDAExecutionProvider", 1.0, "pip install onnxruntime-gpu"),
    "tensorrt": BackendSpec(
        "TensorrtExecutionProvider", 1.0, "pip install onnxruntime-gpu tensorrt"
    ),
}


def backend_spec(backend: str) -> BackendSpec:
    """Return the spec of ``backend``; unknown names fail early with the list of valid ones."""
    try:
        return BACKENDS[backend]
    except KeyError:
        valid = ", ".join(sorted(BACKENDS))
        raise ValueError(f"unknown backend {backend!r}; valid backends: {valid}") from None


def num_gpus_for(backend: str) -> float:
    """GPUs a Ray actor must request to run ``backend`` (0 for CPU, 1 for GPU backends)."""
    return backend_spec(backend).gpus


def gpu_model_name() -> str:
    """Name of GPU 0 as a filesystem-safe slug; TensorRT engines are only valid on the same model."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", "0"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return re.sub(r"[^A-Za-z0-9]+", "-", out).strip("-").lower() or "unknown-gpu"


def trt_cache_path(cache_dir: Path, gpu_name: str, model_name: str, shape_key: str) -> Path:
    """Engine cache folder keyed per GPU model, model file and input shape profile.

    TensorRT engines are specialised to the GPU and the shape profile they were built for;
    separate folders keep a cache shared across machines (e.g. a volume) from serving a
    mismatched engine.
    """
    safe_shape = re.sub(r"[^A-Za-z0-9]+", "_", shape_key).strip("_") or "dynamic"
    return cache_dir / gpu_name / model_name / safe_shape


def provider_config(
    backend: str,
    available: list[str],
    *,
    model_name: str = "model",
    shape_key: str = "dynamic",
    cache_dir: Path = DEFAULT_TRT_CACHE_DIR,
    gpu_name: str | None = None,
) -> list[Any]:
    """ONNX Runtime ``providers`` argument for ``backend``, given the providers ORT reports.

    Pure apart from the GPU name lookup, so the selection rules are unit-testable without a GPU.
    GPU backends keep CPU as the last fallback for the few operators GPU providers reject.
    """
    spec = backend_spec(backend)
    if spec.provider not in available:
        raise RuntimeError(
            f"backend {backend!r} needs ONNX Runtime's {spec.provider}, which is not available "
            f"(available: {', '.join(available) or 'none'}). Install it with: {spec.install_hint}"
        )
    if backend == "onnx-cpu":
        return ["CPUExecutionProvider"]
    if backend == "onnx-cuda":
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    path = trt_cache_path(cache_dir, gpu_name or gpu_model_name(), model_name, shape_key)
    path.mkdir(parents=True, exist_ok=True)
    trt_options = {
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(path),
        "trt_fp16_enable": True,
    }
    return [("TensorrtExecutionProvider", trt_options), "CUDAExecutionProvider", "CPUExecutionProvider"]


def create_session(
    model_path: Path,
    backend: str = "onnx-cpu",
    *,
    threads: int = 0,
    shape_key: str = "dynamic",
    cache_dir: Path = DEFAULT_TRT_CACHE_DIR,
) -> Any:
    """Create an ``onnxruntime.InferenceSession`` for ``model_path`` on ``backend``.

    ``threads`` = 0 lets ORT use every core; set it when several actors share one host.
    """
    backend_spec(backend)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    providers = provider_config(
        backend,
        ort.get_available_providers(),
        model_name=f"{model_path.parent.name}-{model_path.stem}",
        shape_key=shape_key,
        cache_dir=cache_dir,
    )
    return ort.InferenceSession(str(model_path), sess_options=options, providers=providers)
