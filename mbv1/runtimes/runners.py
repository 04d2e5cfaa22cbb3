"""Running an exported file with its own runtime: ONNX Runtime (fp32 and int8 QDQ), OpenVINO
and LiteRT (TFLite). Each runner is ``runner(x: float32 [1, 3, S, S]) -> list of numpy outputs``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mbv1.errors import MBV1Error

__all__ = ["OpenVinoRunner", "OrtRunner", "TfliteRunner", "runner_for"]


def _threads(threads: int | None) -> int:
    """Given, else ``$MBV1_RUNTIME_THREADS``, else every core this process may use."""
    return (threads or int(os.environ.get("MBV1_RUNTIME_THREADS") or 0)
            or len(os.sched_getaffinity(0)))


class OrtRunner:
    """ONNX Runtime session on the CPU (or CUDA when asked and available); thread spinning
    off, so that decoding and post-processing keep their share of the cores."""

    def __init__(self, path: str | Path, threads: int | None = None, cuda: bool = False):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = _threads(threads)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if cuda and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types
            raise MBV1Error(f"ONNX Runtime cannot load {path}: {str(e).splitlines()[0][:160]}"
                            ) from None
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input: np.ascontiguousarray(x, np.float32)})


class OpenVinoRunner:
    """An OpenVINO IR (``.xml`` + ``.bin``) compiled for the CPU, latency hint."""

    def __init__(self, path: str | Path, threads: int | None = None):
        import openvino as ov

        core = ov.Core()
        # f32 explicitly: on CPUs with bf16 support OpenVINO otherwise runs bf16 (measured: 0.66
        # max abs diff on the face model's box codes, vs 2e-5 in f32)
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": _threads(threads),
                  "INFERENCE_PRECISION_HINT": "f32"}
        try:
            self.compiled = core.compile_model(str(path), "CPU", config)
        except RuntimeError as e:
            raise MBV1Error(f"OpenVINO cannot load {path}: {str(e).splitlines()[0][:160]}"
                            ) from None
        self.request = self.compiled.create_infer_request()
        self.outputs = list(self.compiled.outputs)

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        res = self.request.infer({0: np.ascontiguousarray(x, np.float32)})
        return [np.asarray(res[o]) for o in self.outputs]


class TfliteRunner:
    """A TFLite flatbuffer on the LiteRT interpreter (``ai_edge_litert``, XNNPACK on the CPU)."""

    def __init__(self, path: str | Path, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=_threads(threads))
            self.interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as e:
            raise MBV1Error(f"LiteRT cannot load {path}: {str(e).splitlines()[0][:160]}"
                            ) from None
        self.input = self.interpreter.get_input_details()[0]
        self.outputs = self.interpreter.get_output_details()

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        """float32 in and out; a fully integer file (LiteRT int8) has its input quantized and
        its outputs dequantized here with the file's own scales and zero points."""
        x = np.asarray(x, np.float32)
        scale, zero = self.input["quantization"]
        if scale:
            info = np.iinfo(self.input["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        self.interpreter.set_tensor(self.input["index"],
                                    np.ascontiguousarray(x, self.input["dtype"]))
        self.interpreter.invoke()
        outs = []
        for d in self.outputs:
            v = self.interpreter.get_tensor(d["index"])
            scale, zero = d["quantization"]
            outs.append((v.astype(np.float32) - zero) * scale if scale else v.copy())
        return outs


def runner_for(path: str | Path, threads: int | None = None):
    """The runner of an exported file by its suffix (``.onnx`` → ONNX Runtime, ``.xml`` →
    OpenVINO, ``.tflite`` → LiteRT)."""
    path = Path(path)
    if path.suffix == ".onnx":
        return OrtRunner(path, threads)
    if path.suffix == ".xml":
        return OpenVinoRunner(path, threads)
    if path.suffix == ".tflite":
        return TfliteRunner(path, threads)
    raise MBV1Error(f"{path}: no runtime for {path.suffix} files (.onnx, .xml or .tflite)")
