"""/models: the registry of trained generators: versions, model cards, ONNX downloads, aliases, retiring.

Wherever a path names a version it may be a number or an alias (service/versions/refs.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Response
from fastapi.responses import FileResponse
from sqlalchemy import select

from service.api.deps import AdminKey
from service.api.schemas import AliasIn, AliasOut, ModelCard, ModelOut, VersionOut
from service.bounds import ALIAS_NAME, MODEL_NAME
from service.db import blobs
from service.db.engine import session_scope
from service.db.tables import ModelAlias, ModelVersion
from service.evaluation import scores
from service.serving.generate import IMMUTABLE, matches
from service.serving.registry import registry
from service.versions import manage, refs

router = APIRouter(prefix="/models", tags=["models"])

NamePath = Annotated[str, Path(pattern=MODEL_NAME, description="model name, see GET /models")]
AliasPath = Annotated[str, Path(pattern=ALIAS_NAME, description="an alias name: starts with a letter")]
VersionPath = Annotated[str, Path(pattern=refs.VERSION_PATH,
                                  description="a version number or an alias")]
ONNX_MEDIA = "application/octet-stream"


@router.get("", response_model=list[ModelOut])
def list_models() -> list[ModelOut]:
    with session_scope() as session:
        rows = session.scalars(select(ModelVersion).order_by(ModelVersion.name, ModelVersion.version)).all()
        scored = scores.summaries([row.id for row in rows])
        by_name: dict[str, list[VersionOut]] = {}
        for row in rows:
            by_name.setdefault(row.name, []).append(VersionOut.of(row, scored.get(row.id)))
        aliases: dict[str, dict[str, int]] = {}
        for alias in session.scalars(select(ModelAlias).order_by(ModelAlias.name, ModelAlias.alias)):
            aliases.setdefault(alias.name, {})[alias.alias] = alias.version
    return [ModelOut(name=name, latest=versions[-1].version, versions=versions, aliases=aliases.get(name, {}))
            for name, versions in by_name.items()]


@router.get("/{name}/versions/{version}", response_model=ModelCard)
def model_card(name: NamePath, version: VersionPath) -> dict[str, Any]:
    """The model card: config, dataset and its sha256, metrics, scores, job, artifact sha256 and size,
    aliases."""
    with session_scope() as session:
        return manage.card(session, refs.find(session, name, refs.parse("version", version)))


@router.get("/{name}/versions/{version}/onnx", response_class=Response, responses={
    200: {"content": {ONNX_MEDIA: {}}, "description": "the generator as an ONNX file: input z (n, latent_dim) "
                                                      "float32, output (n, C*H*W) in [0, 1]"}, 304: {}})
def download_onnx(name: NamePath, version: VersionPath,
                  if_none_match: Annotated[str | None, Header()] = None) -> Response:
    """The generator itself, streamed from a verified local copy. ETag is its sha256; cacheable forever
    when `version` is a number (an alias may move)."""
    ref = refs.parse("version", version)
    with session_scope() as session:
        row = refs.find(session, name, ref)
        headers = {"ETag": f'"{row.artifact_sha256}"', "X-Model-Version": str(row.version),
                   "Cache-Control": IMMUTABLE if refs.is_pinned(ref) else "no-cache"}
        if matches(if_none_match, headers["ETag"]):
            return Response(status_code=304, headers=headers)
        path = blobs.verified_path(session, row.artifact_key, row.artifact_sha256)
    return FileResponse(path, media_type=ONNX_MEDIA, headers=headers,
                        filename=f"{row.name}-v{row.version}.onnx")


@router.delete("/{name}/versions/{version}", status_code=204, responses={
    409: {"description": "an alias points at this version"}})
def retire_version(_: AdminKey, name: NamePath, version: VersionPath) -> Response:
    """Retire a version: its artifact, snapshots, checkpoints and scores are deleted, and its number is never
    given again. Refused (409) while an alias points at it."""
    with session_scope() as session:
        number = manage.retire(session, name, refs.parse("version", version))
    registry.forget(name, number)
    return Response(status_code=204)


@router.put("/{name}/aliases/{alias}", response_model=AliasOut)
def put_alias(_: AdminKey, name: NamePath, alias: AliasPath, body: AliasIn) -> AliasOut:
    """Point `alias` at a version (created, or moved). Every `version` parameter accepts it from then on."""
    with session_scope() as session:
        row = manage.set_alias(session, name, alias, body.version)
        return AliasOut(name=row.name, alias=row.alias, version=row.version)


@router.delete("/{name}/aliases/{alias}", status_code=204)
def delete_alias(_: AdminKey, name: NamePath, alias: AliasPath) -> Response:
    """Drop an alias (the version stays)."""
    with session_scope() as session:
        manage.drop_alias(session, name, alias)
    return Response(status_code=204)
