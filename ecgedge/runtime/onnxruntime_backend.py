"""ONNX Runtime backend: runs the bundle's FP32, INT8 or FP16 ONNX graph."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ecgedge.runtime.bundle import Bundle, BundleError
from ecgedge.runtime.scorer import Scorer
from ecgedge.runtime.validate import check_graph_io, one_line

#: ONNX Runtime's errors for a graph it cannot load (garbage, truncated or invalid protobuf, unknown operators).
_LOAD_ERRORS = (
    "Fail",
    "InvalidArgument",
    "InvalidGraph",
    "InvalidProtobuf",
    "NoSuchFile",
    "NotImplemented",
    "RuntimeException",
)


def load_errors() -> tuple[type[BaseException], ...]:
    """The exception classes ONNX Runtime raises when a graph cannot be loaded."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return tuple(getattr(state, name) for name in _LOAD_ERRORS if hasattr(state, name))


def session_options(threads: int | None, precision: str):
    """ONNX Runtime session options for one scorer.

    ``threads`` pins the intra-op thread pool (``None`` lets ONNX Runtime
    choose); operators run one after another (inter-op 1), which is what a
    small recurrent graph wants. The FP16 graph is optimised at the
    "extended" level: onnxruntime 1.32's "all" level (layout transforms)
    crashes on that graph on the CPU.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: FP16 constant-folding notices are not actionable
    if threads is not None:
        options.intra_op_num_threads = threads
    if precision == "fp16":
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    return options


class OnnxRuntimeScorer(Scorer):
    """Scores beats with an ONNX Runtime session over one of the bundle's ONNX graphs.

    Parameters
    ----------
    bundle : Bundle
        The verified bundle.
    precision : {"fp32", "int8", "fp16"}
        Which graph to run.
    threads : int or None
        Intra-op threads (``None``: ONNX Runtime's default).
    providers : sequence of str or None
        Execution providers; default the CPU provider.

    Raises
    ------
    BundleError
        When the graph fails its SHA-256 check, ONNX Runtime cannot load it,
        or its input and outputs do not fit the manifest
        (:func:`ecgedge.runtime.validate.check_graph_io`).
    """

    backend = "onnxruntime"

    def __init__(
        self,
        bundle: Bundle,
        precision: str = "fp32",
        threads: int | None = None,
        providers: Sequence[str] | None = None,
    ) -> None:
        import onnxruntime as ort

        super().__init__(bundle, precision)
        graph = bundle.read(precision)
        where = bundle.path / bundle.manifest["artifacts"][precision]
        try:
            self.session = ort.InferenceSession(
                graph, session_options(threads, precision), providers=list(providers or ["CPUExecutionProvider"])
            )
        except load_errors() as err:
            raise BundleError(f"ONNX Runtime cannot load {where}: {one_line(err)}") from None
        check_graph_io(
            str(where),
            self.session.get_inputs(),
            self.session.get_outputs(),
            bundle,
            self.session.get_modelmeta().custom_metadata_map,
        )
        self._input = bundle.manifest["io"]["input"]
        self._output = bundle.manifest["io"]["score"]

    def _score(self, beats: np.ndarray) -> np.ndarray:
        if self.session is None:
            raise RuntimeError("this scorer is closed")
        return self.session.run([self._output], {self._input: beats})[0]

    def close(self) -> None:
        """Drop the ONNX Runtime session."""
        self.session = None
