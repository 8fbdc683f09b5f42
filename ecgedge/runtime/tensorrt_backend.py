"""TensorRT backend: runs the bundle's serialized engine on an NVIDIA GPU.

Needs the ``tensorrt`` Python package (TensorRT 10 or 11) and CUDA Python
(``cuda-python``) for device memory; neither can be installed where this was
written, so this backend is untested here (see ``docs/export.md``).
"""

from __future__ import annotations

import numpy as np

from ecgedge.runtime.bundle import Bundle, BundleError
from ecgedge.runtime.scorer import Scorer

MIN_TENSORRT_MAJOR = 10


class TensorRTUnavailable(ImportError):
    """The TensorRT (or CUDA Python) library this step needs is not installed."""


def import_tensorrt():
    """Import and return the ``tensorrt`` module, or raise :class:`TensorRTUnavailable`."""
    try:
        import tensorrt
    except ImportError as err:
        raise TensorRTUnavailable(
            "the 'tensorrt' Python package is not installed; on a Jetson it ships with JetPack 6 "
            "(TensorRT 10), elsewhere `pip install tensorrt`. Without it, build the engine with the "
            "bundle's build_engine.sh (trtexec)"
        ) from err
    return tensorrt


def tensorrt_major(trt) -> int:
    """Major version of a ``tensorrt`` module; refuse versions older than 10."""
    major = int(str(trt.__version__).split(".")[0])
    if major < MIN_TENSORRT_MAJOR:
        raise TensorRTUnavailable(f"TensorRT {trt.__version__} is too old: ecgedge needs TensorRT 10 or 11")
    return major


def _import_cudart():
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as err:
            raise TensorRTUnavailable("the TensorRT backend needs CUDA Python: `pip install cuda-python`") from err
    return cudart


def _checked(cudart, result):
    """Unpack a CUDA Python ``(error, value...)`` tuple, raising on an error."""
    err, *values = result
    if err != cudart.cudaError_t.cudaSuccess:
        raise RuntimeError(f"CUDA call failed: {err}")
    return values[0] if len(values) == 1 else None


class TensorRTScorer(Scorer):
    """Scores beats with the bundle's TensorRT engine.

    Beats are sent in chunks of at most the engine's maximum batch; only the
    engine's only output, ``score``, is read; the threshold is the bundle's
    (:attr:`offset_`), as for every backend.

    Parameters
    ----------
    bundle : Bundle
        The verified bundle; it must list an engine (``ecgedge export --trt``
        or the bundle's ``build_engine.sh``).
    """

    backend = "tensorrt"

    def __init__(self, bundle: Bundle) -> None:
        engine_path = bundle.file("engine")
        trt = import_tensorrt()
        tensorrt_major(trt)
        self._cudart = _import_cudart()
        super().__init__(bundle, bundle.manifest["engine"]["precision"])
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(bundle.read("engine"))  # the bytes that were hashed
        if self._engine is None:
            raise BundleError(f"TensorRT could not deserialize {engine_path} (built for another GPU or TensorRT?)")
        self._context = self._engine.create_execution_context()
        io = bundle.manifest["io"]
        self._input, self._output = io["input"], io["score"]
        self.max_batch = int(bundle.manifest["engine"]["max_batch"])
        self._buffers: dict[str, tuple[int, np.dtype]] = {}
        for index in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(index)
            dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))
            size = self.max_batch * (self.beat_format.length if name == self._input else 1)
            pointer = _checked(self._cudart, self._cudart.cudaMalloc(size * dtype.itemsize))
            self._buffers[name] = (pointer, dtype)
            self._context.set_tensor_address(name, pointer)
        self._stream = _checked(self._cudart, self._cudart.cudaStreamCreate())

    def _run(self, beats: np.ndarray) -> np.ndarray:
        cudart, kind = self._cudart, self._cudart.cudaMemcpyKind
        in_pointer, in_dtype = self._buffers[self._input]
        beats = np.ascontiguousarray(beats, dtype=in_dtype)
        out_pointer, out_dtype = self._buffers[self._output]
        scores = np.empty(len(beats), dtype=out_dtype)
        self._context.set_input_shape(self._input, beats.shape)
        _checked(
            cudart,
            cudart.cudaMemcpyAsync(
                in_pointer, beats.ctypes.data, beats.nbytes, kind.cudaMemcpyHostToDevice, self._stream
            ),
        )
        if not self._context.execute_async_v3(int(self._stream)):
            raise RuntimeError("TensorRT execution failed")
        _checked(
            cudart,
            cudart.cudaMemcpyAsync(
                scores.ctypes.data, out_pointer, scores.nbytes, kind.cudaMemcpyDeviceToHost, self._stream
            ),
        )
        _checked(cudart, cudart.cudaStreamSynchronize(self._stream))
        return scores

    def _score(self, beats: np.ndarray) -> np.ndarray:
        chunks = [beats[i : i + self.max_batch] for i in range(0, len(beats), self.max_batch)]
        return np.concatenate([self._run(chunk) for chunk in chunks])

    def close(self) -> None:
        """Free the device buffers and the stream."""
        for pointer, _ in self._buffers.values():
            self._cudart.cudaFree(pointer)
        self._buffers = {}
        if self._stream is not None:
            self._cudart.cudaStreamDestroy(self._stream)
            self._stream = None
