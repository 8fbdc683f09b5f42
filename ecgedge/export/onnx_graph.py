"""The ONNX graphs of a bundle: FP32 export, INT8 and FP16 variants, their self-description.

The FP32 graph is :class:`ecgedge.nn.BeatScorer` traced by ``torch.onnx``:
per-beat z-normalisation, the autoencoder and both parts of the score are in
the graph, which outputs the score alone. The threshold is not: it lives once
in the bundle manifest, and a stream may override it at run time.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from ecgedge.runtime.validate import METADATA_PREFIX

INPUT = "beats"
SCORE = "score"
OPSET = 17


def export_fp32(detector, path: Path, opset: int = OPSET) -> Path:
    """Export a fitted detector's scoring path as an FP32 ONNX graph with a dynamic batch axis.

    Parameters
    ----------
    detector : LSTMAutoencoderDetector
        A fitted detector.
    path : Path
        Where to write the graph.
    opset : int, default=17
        ONNX opset.

    Returns
    -------
    Path
        ``path``.

    Notes
    -----
    Uses the TorchScript-based exporter (``dynamo=False``): it exports the
    recurrent layers as single ONNX ``LSTM``/``GRU`` nodes, which ONNX
    Runtime quantises to ``DynamicQuantizeLSTM`` and TensorRT parses, and it
    runs in a fraction of a second (the dynamo exporter takes ~30 s on a
    small model for the same graph).
    """
    import torch

    from ecgedge.nn import BeatScorer

    scorer = BeatScorer(copy.deepcopy(detector.module_).float().eval(), detector.loss).eval()
    example = torch.zeros(2, detector.n_features_in_, dtype=torch.float32)
    dynamic = {name: {0: "batch"} for name in (INPUT, SCORE)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            scorer,
            (example,),
            str(path),
            input_names=[INPUT],
            output_names=[SCORE],
            dynamic_axes=dynamic,
            opset_version=opset,
            dynamo=False,
        )
    model = _drop_zero_initial_states(onnx.load(str(path)))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _drop_zero_initial_states(model: onnx.ModelProto) -> onnx.ModelProto:
    """Leave out the all-zero initial states of recurrent nodes, and the nodes that built them.

    The exporter builds zero ``initial_h`` / ``initial_c`` from the batch size
    at run time (five nodes per layer); zero is ONNX's default for a missing
    state, and for one beat at a time those nodes cost as much as the
    recurrent layer itself.
    """
    import onnx_ir
    from onnx_ir.passes.common import RemoveUnusedNodesPass

    producers = {out: node for node in model.graph.node for out in node.output}

    def zeros(name: str) -> bool:
        node = producers.get(name)
        if node is None or node.op_type != "ConstantOfShape":
            return False
        value = [numpy_helper.to_array(a.t) for a in node.attribute if a.name == "value"]
        return not value or not np.any(value[0])

    for node in model.graph.node:
        if node.op_type in ("LSTM", "GRU"):
            for index in (5, 6):  # initial_h, initial_c
                if index < len(node.input) and zeros(node.input[index]):
                    node.input[index] = ""
    graph = onnx_ir.from_proto(model)
    RemoveUnusedNodesPass()(graph)
    return onnx_ir.to_proto(graph)


def quantize_int8(fp32_path: Path, path: Path) -> Path:
    """Dynamic INT8 quantisation with ONNX Runtime (LSTM becomes ``DynamicQuantizeLSTM``).

    Only the recurrent layers, where the arithmetic is, are quantised: their
    weights are stored as signed INT8 and their activations quantised on the
    fly, so no calibration data is needed. The small linear layers and the
    distance to the normal-beat patches stay FP32 (quantising that distance
    costs accuracy and saves nothing). CPU only (ONNX Runtime contrib ops).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()  # the quantiser logs through the root logger
    hint = _PreprocessingHint()
    root.addFilter(hint)
    try:
        quantize_dynamic(str(fp32_path), str(path), op_types_to_quantize=["LSTM"], weight_type=QuantType.QInt8)
    finally:
        root.removeFilter(hint)
    return path


class _PreprocessingHint(logging.Filter):
    """Drops the quantiser's "consider pre-processing" hint, which does not apply to these graphs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-process" not in record.getMessage()


def convert_fp16(fp32_path: Path, path: Path) -> Path:
    """FP16 copy of a graph, keeping FP32 inputs and outputs.

    Uses ONNX Runtime's float16 converter with ``keep_io_types=True``, so the
    graph takes and returns the same dtypes as the FP32 graph (casts are
    inside it). The converter appends the input cast after its consumers, so
    the graph is topologically re-sorted with ``onnx_ir`` before saving.
    """
    import onnx_ir
    from onnx_ir.passes.common import TopologicalSortPass
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True)
    graph = onnx_ir.from_proto(model)
    TopologicalSortPass()(graph)
    model = onnx_ir.to_proto(graph)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def describe_graph(path: Path, description: Mapping[str, str]) -> None:
    """Write ``description`` into a graph's ``metadata_props`` (keys prefixed ``ecgedge.``), in place.

    A graph found alone then still says what it is: the beat format it takes,
    the score's direction, the ecgedge version and the identity of the model
    (see :func:`graph_description`).
    """
    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if not p.key.startswith(METADATA_PREFIX)]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in description.items():
        model.metadata_props.add(key=METADATA_PREFIX + key, value=str(value))
    onnx.save(model, str(path))


def graph_description(path: Path) -> dict[str, str]:
    """The ``ecgedge.`` entries of a graph's ``metadata_props``, without the prefix."""
    model = onnx.load(str(path), load_external_data=False)
    return {
        p.key.removeprefix(METADATA_PREFIX): p.value for p in model.metadata_props if p.key.startswith(METADATA_PREFIX)
    }
