from pathlib import Path

import pytest

from recognize.backends import BACKENDS, num_gpus_for, provider_config, trt_cache_path


def test_unknown_backend_lists_valid_ones() -> None:
    with pytest.raises(ValueError) as exc:
        num_gpus_for("cuda")
    for name in BACKENDS:
        assert name in str(exc.value)


def test_num_gpus() -> None:
    assert num_gpus_for("onnx-cpu") == 0
    assert num_gpus_for("onnx-cuda") == 1
    assert num_gpus_for("tensorrt") == 1


def test_cpu_providers() -> None:
    assert provider_config("onnx-cpu", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]


@pytest.mark.parametrize("backend,hint", [("onnx-cuda", "onnxruntime-gpu"), ("tensorrt", "tensorrt")])
def test_missing_gpu_provider_names_install(backend: str, hint: str) -> None:
    with pytest.raises(RuntimeError, match=f"pip install .*{hint}"):
        provider_config(backend, ["CPUExecutionProvider"])


def test_cuda_falls_back_to_cpu_for_unsupported_ops() -> None:
    assert provider_config("onnx-cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_tensorrt_engine_cache_keyed_by_gpu_and_shape(tmp_path: Path) -> None:
    providers = provider_config(
        "tensorrt", ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
        model_name="det", shape_key="det_960", cache_dir=tmp_path, gpu_name="nvidia-l4")
    name, options = providers[0]
    assert name == "TensorrtExecutionProvider"
    assert options["trt_engine_cache_enable"] is True
    assert Path(options["trt_engine_cache_path"]) == tmp_path / "nvidia-l4" / "det" / "det_960"
    assert Path(options["trt_engine_cache_path"]).is_dir()
    assert providers[1:] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert trt_cache_path(tmp_path, "a100", "rec", "1x3x48:320") != trt_cache_path(tmp_path, "l4", "rec", "1x3x48:320")
