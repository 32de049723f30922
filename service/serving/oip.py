"""The Open Inference Protocol's tensors (KServe v2 / Triton HTTP): reading an infer request, building the z it
asks for, and writing the response, in JSON or with the binary tensor data extension.

A request body is a JSON header, optionally followed by raw little-endian tensor bytes: the header's length is
then in the Inference-Header-Content-Length header and each binary input says its `binary_data_size`.
Inputs: `seed` (INT64 [n]: one image per seed, the z /samples draws first for it) or `z` (FP32 [n, latent]);
`label` (INT64 [n]: each row's class index) only for a conditional model, which needs it with `z`; with `seed`
and no `label`, each row's class is the one /samples?seed=<seed>&n=1 draws. Output `x`: FP32 [n, C, H, W] in
[0, 1].
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.errors import InvalidParameter
from service.serving import labels
from service.serving.noise import MAX_SEED, sample_noise
from service.serving.registry import VersionInfo

DATATYPES: dict[str, np.dtype[Any]] = {"INT64": np.dtype("<i8"), "FP32": np.dtype("<f4")}
INPUT_TYPES = {"seed": "INT64", "z": "FP32", "label": "INT64"}
OUTPUT = "x"
PLATFORM = "onnxruntime_onnx"
BINARY_HEADER = "Inference-Header-Content-Length"


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    inputs: dict[str, np.ndarray]
    binary_output: bool


def labels_of(info: VersionInfo) -> int:
    """How many class labels the model takes (0: unconditional)."""
    return len(info.label_names)


def metadata(info: VersionInfo, versions: list[int]) -> dict[str, Any]:
    """The model metadata response of one version (`versions`: every version of the name)."""
    c, h, w = info.image_shape
    inputs = [{"name": "seed", "datatype": "INT64", "shape": [-1]},
              {"name": "z", "datatype": "FP32", "shape": [-1, info.latent_dim]}]
    if labels_of(info):
        inputs.append({"name": "label", "datatype": "INT64", "shape": [-1]})
    return {"name": info.name, "versions": [str(v) for v in versions], "platform": PLATFORM, "inputs": inputs,
            "outputs": [{"name": OUTPUT, "datatype": "FP32", "shape": [-1, c, h, w]}]}


def parse(body: bytes, header_length: str | None) -> InferRequest:
    """The request's JSON header and its input tensors; InvalidParameter names what is wrong."""
    size = _header_size(header_length, len(body))
    try:
        header = json.loads(body[:size])
    except (ValueError, UnicodeDecodeError):
        raise InvalidParameter("body", "must be a JSON inference request (optionally followed by binary tensor "
                                       f"data, with {BINARY_HEADER})") from None
    if not isinstance(header, dict):
        raise InvalidParameter("body", "must be a JSON object with `inputs`")
    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidParameter("id", "must be a string")
    raw = header.get("inputs")
    if not isinstance(raw, list) or not raw:
        raise InvalidParameter("inputs", f"must be a non-empty list of tensors named {', '.join(INPUT_TYPES)}")
    inputs: dict[str, np.ndarray] = {}
    offset = size
    for i, tensor in enumerate(raw):
        name, array, offset = _tensor(f"inputs[{i}]", tensor, body, offset)
        if name in inputs:
            raise InvalidParameter(f"inputs[{i}].name", f"{name!r} is given twice")
        inputs[name] = array
    if offset != len(body):
        raise InvalidParameter("body", f"{len(body) - offset} bytes of binary data no input claims")
    return InferRequest(request_id, inputs, _binary_output(header))


def _header_size(value: str | None, body_size: int) -> int:
    if value is None:
        return body_size
    if not value.strip().isdigit() or int(value) > body_size:
        raise InvalidParameter(BINARY_HEADER, f"must be the JSON header's length in bytes, 0..{body_size}; "
                                              f"got {value!r}")
    return int(value)


def _tensor(field: str, tensor: Any, body: bytes, offset: int) -> tuple[str, np.ndarray, int]:
    if not isinstance(tensor, dict):
        raise InvalidParameter(field, "must be an object with name, shape, datatype and data")
    name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
    if not isinstance(name, str) or name not in INPUT_TYPES:
        raise InvalidParameter(f"{field}.name", f"must be one of {', '.join(INPUT_TYPES)}; got {name!r}")
    if datatype != INPUT_TYPES[name]:
        raise InvalidParameter(f"{field}.datatype", f"{name} must be {INPUT_TYPES[name]}; got {datatype!r}")
    if (not isinstance(shape, list) or not 1 <= len(shape) <= 2
            or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_SEED for d in shape)):
        raise InvalidParameter(f"{field}.shape", f"must be a list of 1 or 2 non-negative integers; got {shape!r}")
    dtype, count = DATATYPES[datatype], math.prod(shape)
    parameters = tensor.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidParameter(f"{field}.parameters", "must be an object")
    size = parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size != count * dtype.itemsize \
                or offset + size > len(body):
            raise InvalidParameter(f"{field}.parameters.binary_data_size",
                                   f"must be {count} x {dtype.itemsize} bytes, present after the JSON header")
        array = np.frombuffer(body, dtype, count, offset).reshape(shape)
        return name, array, offset + size
    return name, _json_data(field, tensor.get("data"), dtype, count).reshape(shape), offset


def _json_data(field: str, data: Any, dtype: np.dtype[Any], count: int) -> np.ndarray:
    flat = _flatten(data) if isinstance(data, list) else None
    kind = int if dtype.kind == "i" else (int, float)
    if flat is None or not all(isinstance(v, kind) and not isinstance(v, bool) for v in flat):
        raise InvalidParameter(f"{field}.data", f"must be a (nested) list of {'integers' if kind is int else 'numbers'}"
                                                f", or binary data with parameters.binary_data_size")
    if len(flat) != count:
        raise InvalidParameter(f"{field}.data", f"has {len(flat)} values; its shape needs {count}")
    if dtype.kind == "i" and any(not -2**63 <= v < 2**63 for v in flat):
        raise InvalidParameter(f"{field}.data", "INT64 values must fit in 64 bits")
    return np.asarray(flat, dtype=dtype).reshape(-1)


def _flatten(data: list[Any]) -> list[Any] | None:
    out: list[Any] = []
    for item in data:
        if isinstance(item, list):
            inner = _flatten(item)
            if inner is None:
                return None
            out.extend(inner)
        else:
            out.append(item)
    return out


def _binary_output(header: dict[str, Any]) -> bool:
    """Whether `x` goes back as binary data: asked for on the output, or for all outputs."""
    outputs = header.get("outputs")
    if outputs is not None:
        if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
            raise InvalidParameter("outputs", f"must be a list of objects naming {OUTPUT!r}")
        names = [o.get("name") for o in outputs]
        if any(name != OUTPUT for name in names):
            raise InvalidParameter("outputs", f"the only output is {OUTPUT!r}; got {names!r}")
        if outputs:
            parameters = outputs[0].get("parameters") or {}
            if not isinstance(parameters, dict):
                raise InvalidParameter("outputs[0].parameters", "must be an object, e.g. {\"binary_data\": true}")
            return bool(parameters.get("binary_data", False))
    parameters = header.get("parameters") or {}
    return bool(parameters.get("binary_data_output", False)) if isinstance(parameters, dict) else False


def latent(info: VersionInfo, request: InferRequest, max_rows: int) -> np.ndarray:
    """(n, latent_dim) float32 from `seed` or `z`."""
    given = [name for name in ("seed", "z") if name in request.inputs]
    if len(given) != 1:
        raise InvalidParameter("inputs", "give exactly one of `seed` (INT64 [n]) and `z` "
                                         f"(FP32 [n, {info.latent_dim}])")
    if given == ["seed"]:
        seeds = request.inputs["seed"]
        if seeds.ndim != 1 or not 1 <= len(seeds) <= max_rows:
            raise InvalidParameter("seed", f"must have shape [n] with n in 1..{max_rows}; got {list(seeds.shape)}")
        if (seeds < 0).any():
            raise InvalidParameter("seed", f"seeds must be in 0..{MAX_SEED}")
        return np.concatenate([sample_noise(info, 1, int(s)) for s in seeds])
    z = request.inputs["z"]
    if z.ndim != 2 or z.shape[1] != info.latent_dim or not 1 <= len(z) <= max_rows:
        raise InvalidParameter("z", f"must have shape [n, {info.latent_dim}] with n in 1..{max_rows}; "
                                    f"got {list(z.shape)}")
    if not np.isfinite(z).all():
        raise InvalidParameter("z", "must be finite")
    return np.ascontiguousarray(z, dtype=np.float32)


def model_input(info: VersionInfo, request: InferRequest, max_rows: int) -> np.ndarray:
    """G's input rows: (n, latent_dim) z, or [z | c] (service/serving/labels.py) for a conditional model."""
    z = latent(info, request, max_rows)
    count = labels_of(info)
    given = request.inputs.get("label")
    if not count:
        if given is not None:
            raise InvalidParameter("label", f"model {info.name!r} v{info.version} is not conditional (trained "
                                            f"without labels): omit the `label` input")
        return z
    if given is None:
        if "seed" not in request.inputs:
            raise InvalidParameter("label", f"model {info.name!r} is conditional: with `z`, give `label` (INT64 "
                                            f"[{len(z)}]), each a class index 0..{count - 1}")
        classes = np.array([labels.uniform_classes(int(s), 1, count)[0] for s in request.inputs["seed"]])
    else:
        if given.shape != (len(z),):
            raise InvalidParameter("label", f"must have shape [{len(z)}], one class per row; got {list(given.shape)}")
        if ((given < 0) | (given >= count)).any():
            raise InvalidParameter("label", f"class indices must be in 0..{count - 1} "
                                            f"({', '.join(info.label_names)}); got {given.tolist()[:8]}")
        classes = given
    return labels.with_classes(z, labels.one_hot(classes.astype(np.int64), count))


def response(info: VersionInfo, request: InferRequest, x: np.ndarray) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers: JSON, or a JSON header followed by x's bytes."""
    c, h, w = info.image_shape
    x = np.ascontiguousarray(x, dtype="<f4").reshape(len(x), c, h, w)
    output: dict[str, Any] = {"name": OUTPUT, "datatype": "FP32", "shape": list(x.shape)}
    if request.binary_output:
        output["parameters"] = {"binary_data_size": x.nbytes}
    else:
        output["data"] = x.reshape(-1).tolist()
    body: dict[str, Any] = {"model_name": info.name, "model_version": str(info.version), "outputs": [output]}
    if request.id is not None:
        body["id"] = request.id
    head = json.dumps(body, separators=(",", ":")).encode()
    if not request.binary_output:
        return head, {"Content-Type": "application/json"}
    return head + x.tobytes(), {"Content-Type": "application/octet-stream", BINARY_HEADER: str(len(head))}
