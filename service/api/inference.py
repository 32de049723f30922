"""/v2: the Open Inference Protocol (KServe v2, Triton's HTTP API), so Triton's and KServe's clients can sample.

Inference changes nothing, so it is a read (public unless reads need a key), rate limited like /samples
(service/api/limits.py). Errors on these routes are the protocol's `{"error": "..."}`; the tensors are
service/serving/oip.py's. A version in a path is a number or an alias.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy import select
from starlette.exceptions import HTTPException

from service.api.health import readiness
from service.api.limits import RateLimit
from service.api.problems import PROBLEM, PROBLEM_SCHEMA, SERVER_400, SERVER_400_TEXT
from service.bounds import MODEL_NAME
from service.db.engine import session_scope
from service.db.tables import ModelVersion
from service.errors import InvalidParameter, NotFound
from service.serving import oip
from service.serving.generate import admitted, model_for
from service.serving.registry import VersionInfo
from service.settings import get_settings
from service.versions import refs

SERVER_VERSION = "0.1.0"
EXTENSIONS = ["binary_tensor_data"]
ERROR_SCHEMA = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
# The protocol's error shape; a refusal by a middleware in front (401, 413, 429) is still problem+json.
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": "the protocol's error object" + extra_text, "content": {
        "application/json": {"schema": ERROR_SCHEMA}, PROBLEM: {"schema": PROBLEM_SCHEMA}, **extra}}
    for code, extra_text, extra in ((400, SERVER_400_TEXT, SERVER_400), ("4XX", "", {}))}


def oip_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class OipRoute(APIRoute):
    """A route whose client errors are `{"error": "..."}`, as the protocol's clients read them."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except NotFound as exc:
                return oip_error(404, str(exc))
            except InvalidParameter as exc:
                return oip_error(400, str(exc))
            except RequestValidationError as exc:
                return oip_error(400, "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}"
                                                for e in exc.errors()))
            except HTTPException as exc:
                return oip_error(exc.status_code, str(exc.detail))

        return answer


router = APIRouter(prefix="/v2", tags=["open inference protocol"], route_class=OipRoute, responses=ERRORS)
NamePath = Annotated[str, Path(pattern=MODEL_NAME, description="model name, see GET /models")]
VersionPath = Annotated[str, Path(pattern=refs.VERSION_PATH,
                                  description="a version number or an alias")]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    version: str
    ready: bool


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class OutputTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    data: list[float] | None = None
    parameters: dict[str, Any] | None = None


class InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[OutputTensor]


_TENSOR_IN = {"type": "object", "required": ["name", "shape", "datatype"], "properties": {
    "name": {"type": "string", "enum": list(oip.INPUT_TYPES)},
    "shape": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "integer", "minimum": 0}},
    "datatype": {"type": "string", "enum": list(oip.DATATYPES)},
    "parameters": {"type": "object", "properties": {"binary_data_size": {"type": "integer", "minimum": 0}}},
    "data": {"type": "array", "description": "row-major values (or nested lists); absent with binary data"}}}
_INFER_BODY = {"type": "object", "required": ["inputs"], "properties": {
    "id": {"type": "string"},
    "parameters": {"type": "object", "properties": {"binary_data_output": {"type": "boolean"}}},
    "inputs": {"type": "array", "minItems": 1, "items": _TENSOR_IN},
    "outputs": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "enum": [oip.OUTPUT]},
        "parameters": {"type": "object", "properties": {"binary_data": {"type": "boolean"}}}}}}}}
_INFER_OPENAPI = {
    "requestBody": {"required": True, "content": {
        "application/json": {"schema": _INFER_BODY,
                             "example": {"inputs": [{"name": "seed", "datatype": "INT64", "shape": [2],
                                                     "data": [1, 2]}]}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    "description": f"The binary tensor data extension: the JSON header, then the tensors' bytes; the "
                   f"{oip.BINARY_HEADER} header gives the JSON header's length."}}
_INFER_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"model": InferResponse, "content": {
    "application/octet-stream": {}}, "description": "x: FP32 [n, C, H, W] in [0, 1], as JSON data or binary"}}


@router.get("", response_model=ServerMetadata)
def server_metadata() -> ServerMetadata:
    return ServerMetadata(name="ganserve", version=SERVER_VERSION, extensions=EXTENSIONS)


@router.get("/health/live", response_model=Live)
def server_live() -> Live:
    return Live(live=True)


@router.get("/health/ready", response_model=Ready, responses={503: {"model": Ready}})
def server_ready() -> Any:
    """Ready when PostgreSQL and Redis answer (as /readyz)."""
    ready = all(v == "ok" for v in readiness(get_settings()).values())
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


def _metadata(name: str, ref: refs.VersionRef) -> dict[str, Any]:
    with session_scope() as session:
        row = refs.find(session, name, ref)
        numbers = list(session.scalars(select(ModelVersion.version).where(ModelVersion.name == name)
                                       .order_by(ModelVersion.version)))
        return oip.metadata(VersionInfo.of(row), numbers)


@router.get("/models/{name}", response_model=ModelMetadata)
def model_metadata(name: NamePath) -> dict[str, Any]:
    """The latest version's inputs and outputs, and every version."""
    return _metadata(name, None)


@router.get("/models/{name}/versions/{version}", response_model=ModelMetadata)
def version_metadata(name: NamePath, version: VersionPath) -> dict[str, Any]:
    return _metadata(name, refs.parse("version", version))


async def _ready(name: str, ref: refs.VersionRef) -> ModelReady:
    model = await model_for(name, ref)  # loaded and warmed: ready means it answers at once
    return ModelReady(name=name, version=str(model.info.version), ready=True)


@router.get("/models/{name}/ready", response_model=ModelReady)
async def model_ready(name: NamePath) -> ModelReady:
    return await _ready(name, None)


@router.get("/models/{name}/versions/{version}/ready", response_model=ModelReady)
async def version_ready(name: NamePath, version: VersionPath) -> ModelReady:
    return await _ready(name, refs.parse("version", version))


async def _infer(name: str, ref: refs.VersionRef, request: Request) -> Response:
    body = await request.body()
    parsed = oip.parse(body, request.headers.get(oip.BINARY_HEADER))
    model = await model_for(name, ref)
    info = model.info
    z = await to_thread.run_sync(oip.model_input, info, parsed, get_settings().max_samples)
    # Admitted as /samples is (the output: n float32 images, as npy would carry them).
    with admitted(RateLimit.client(request.scope), info, "inputs", z.shape[0], "npy"):
        content, headers = await model.respond(z, lambda x: oip.response(info, parsed, x), cheap=parsed.binary_output)
    return Response(content, 200, headers)


@router.post("/models/{name}/infer", response_class=Response, responses=_INFER_RESPONSES,
             openapi_extra=_INFER_OPENAPI)
async def model_infer(name: NamePath, request: Request) -> Response:
    """Run the latest version: inputs `seed` (INT64 [n]) or `z` (FP32 [n, latent]), and for a conditional model
    `label` (INT64 [n], class indices; required with `z`); output `x`."""
    return await _infer(name, None, request)


@router.post("/models/{name}/versions/{version}/infer", response_class=Response, responses=_INFER_RESPONSES,
             openapi_extra=_INFER_OPENAPI)
async def version_infer(name: NamePath, version: VersionPath, request: Request) -> Response:
    return await _infer(name, refs.parse("version", version), request)
