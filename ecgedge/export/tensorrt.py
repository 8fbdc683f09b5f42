"""TensorRT engines for a bundle: built here with the Python API, or on the Jetson with trtexec.

TensorRT 10 (JetPack 6) builds from the FP32 graph with ``BuilderFlag.FP16``
(weak typing: TensorRT picks FP16 kernels where it likes). TensorRT 11
removed the precision flags; networks are strongly typed and the precision
comes from the graph, so it builds from the FP16 graph. Both get one
optimisation profile over the batch axis: min 1, opt, max.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from ecgedge.export.onnx_graph import INPUT
from ecgedge.runtime.tensorrt_backend import import_tensorrt, tensorrt_major

ENGINE = "model.engine"
SCRIPT = "build_engine.sh"


@dataclass(frozen=True)
class EnginePlan:
    """How one TensorRT major version builds the engine.

    Attributes
    ----------
    source : {"fp32", "fp16"}
        Bundle role of the ONNX graph to parse.
    strongly_typed : bool
        Create the network strongly typed (precision from the graph).
    fp16_flag : bool
        Set ``BuilderFlag.FP16`` (weakly typed networks only).
    """

    source: str
    strongly_typed: bool
    fp16_flag: bool


def engine_plan(major: int) -> EnginePlan:
    """The build recipe for TensorRT ``major`` (10 or later)."""
    if major < 10:
        raise ValueError(f"TensorRT {major} is not supported: ecgedge needs TensorRT 10 or 11")
    if major == 10:
        return EnginePlan(source="fp32", strongly_typed=False, fp16_flag=True)
    return EnginePlan(source="fp16", strongly_typed=True, fp16_flag=False)


def check_profile(opt_batch: int, max_batch: int) -> None:
    """Refuse an optimisation profile that is not ``1 <= opt_batch <= max_batch``."""
    if not 1 <= opt_batch <= max_batch:
        raise ValueError(f"need 1 <= opt_batch <= max_batch, got opt_batch={opt_batch}, max_batch={max_batch}")


def _shapes(length: int, opt_batch: int, max_batch: int) -> tuple[tuple[int, int], ...]:
    check_profile(opt_batch, max_batch)
    return (1, length), (opt_batch, length), (max_batch, length)


def build_engine(
    onnx_paths: dict[str, Path], engine_path: Path, *, length: int, opt_batch: int, max_batch: int, trt=None
) -> dict:
    """Build and serialize a TensorRT engine for the bundle's scoring graph.

    Parameters
    ----------
    onnx_paths : dict
        Bundle role (``"fp32"``, ``"fp16"``) to ONNX graph path; the plan for
        the installed TensorRT picks one.
    engine_path : Path
        Where to write the serialized engine.
    length : int
        Samples per beat.
    opt_batch, max_batch : int
        Optimisation profile: batch 1 to ``max_batch``, tuned for ``opt_batch``.
    trt : module, optional
        The ``tensorrt`` module (imported when omitted).

    Returns
    -------
    dict
        What the manifest records about the engine: TensorRT version,
        precision, source graph, typing and the profile.

    Raises
    ------
    TensorRTUnavailable
        When ``tensorrt`` is not installed or older than 10.
    RuntimeError
        When parsing or building fails.
    """
    trt = trt if trt is not None else import_tensorrt()
    plan = engine_plan(tensorrt_major(trt))
    if plan.source not in onnx_paths:
        raise ValueError(f"TensorRT {trt.__version__} builds from the {plan.source} graph, which the bundle lacks")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if plan.strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_paths[plan.source])):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_paths[plan.source]}: {errors}")
    config = builder.create_builder_config()
    if plan.fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT, *_shapes(length, opt_batch, max_batch))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT failed to build the engine (see its log above)")
    Path(engine_path).write_bytes(bytes(serialized))
    return {
        "tensorrt_version": str(trt.__version__),
        "precision": "fp16",
        "source": plan.source,
        "strongly_typed": plan.strongly_typed,
        "min_batch": 1,
        "opt_batch": opt_batch,
        "max_batch": max_batch,
    }


def _shape_arg(shape: tuple[int, int]) -> str:
    return f"{INPUT}:{shape[0]}x{shape[1]}"


def build_script(onnx_names: dict[str, str], *, length: int, opt_batch: int, max_batch: int) -> str:
    """Text of ``build_engine.sh``: build the engine with ``trtexec`` on the device.

    The script reads the TensorRT version from trtexec's banner, builds from
    the FP32 graph with ``--fp16`` on TensorRT 10 or from the FP16 graph
    with ``--stronglyTyped`` on TensorRT 11, over batch 1..max_batch, then
    lists the engine (with its SHA-256) in ``bundle.json`` through
    :func:`ecgedge.runtime.add_artifact`.
    """
    low, opt, high = (_shape_arg(s) for s in _shapes(length, opt_batch, max_batch))
    q = shlex.quote
    return f"""#!/usr/bin/env bash
# Build the TensorRT engine of this ecgedge bundle on the target (Jetson / GPU box).
# Usage: ./{SCRIPT} [path/to/trtexec]   (default: trtexec on PATH, then /usr/src/tensorrt/bin/trtexec)
# PYTHON (default python3) must import ecgedge: it lists the engine and its SHA-256 in bundle.json.
set -euo pipefail
cd "$(dirname "$0")"
TRTEXEC="${{1:-$(command -v trtexec || echo /usr/src/tensorrt/bin/trtexec)}}"
[ -x "$TRTEXEC" ] || {{ echo "trtexec not found; pass its path as the first argument" >&2; exit 1; }}
TAG=$("$TRTEXEC" --help 2>&1 | grep -o 'TensorRT v[0-9]*' | head -n 1 | tr -dc '0-9' || true)
[ -n "$TAG" ] || {{ echo "could not read the TensorRT version from trtexec's banner" >&2; exit 1; }}
MAJOR=$((TAG / 10000))
if [ "$MAJOR" -lt 10 ]; then
  echo "trtexec reports TensorRT v$TAG: ecgedge needs TensorRT 10 or 11" >&2; exit 1
elif [ "$MAJOR" -eq 10 ]; then
  SOURCE=fp32; ARGS=(--onnx={q(onnx_names["fp32"])} --fp16)
else
  SOURCE=fp16; ARGS=(--onnx={q(onnx_names["fp16"])} --stronglyTyped)
fi
"$TRTEXEC" "${{ARGS[@]}}" --minShapes={low} --optShapes={opt} --maxShapes={high} --saveEngine={ENGINE}
"${{PYTHON:-python3}}" - "$TAG" "$SOURCE" <<'PY'
import sys
from ecgedge.runtime import add_artifact
tag, source = sys.argv[1], sys.argv[2]
version = f"{{int(tag) // 10000}}.{{int(tag) // 100 % 100}}.{{int(tag) % 100}}"
add_artifact(".", "engine", "{ENGINE}", tensorrt_version=version, precision="fp16", source=source,
             strongly_typed=source == "fp16", min_batch=1, opt_batch={opt_batch}, max_batch={max_batch})
print("engine listed in bundle.json")
PY
"""


def write_build_script(
    bundle_dir: Path, onnx_names: dict[str, str], *, length: int, opt_batch: int, max_batch: int
) -> Path:
    """Write :func:`build_script` into the bundle as an executable ``build_engine.sh``."""
    path = Path(bundle_dir) / SCRIPT
    path.write_text(build_script(onnx_names, length=length, opt_batch=opt_batch, max_batch=max_batch))
    path.chmod(0o755)
    return path
