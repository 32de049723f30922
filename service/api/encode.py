"""POST /encode: where an image sits in a model's z (the learned inference net E of the paper's section 7.2),
and G's reconstruction of it. The work is in service/serving/encode.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, UploadFile

from service.api.limits import RateLimit
from service.api.schemas import EncodeOut
from service.serving import encode as encoding
from service.settings import get_settings
from service.versions.refs import VERSION_HELP, VersionParam

router = APIRouter(tags=["sampling"])


@router.post("/encode", response_model=EncodeOut)
async def encode(
        request: Request,
        image: Annotated[UploadFile, File(description="a PNG or JPEG; converted to the model's shape and colour "
                                                      "as dataset uploads are (centre crop, resize)")],
        model: Annotated[str, Query(description="model name, see GET /models (a version with an encoder)")],
        version: Annotated[VersionParam | None, Query(description=VERSION_HELP)] = None,
        label: Annotated[str | None, Query(max_length=100, description=(
            "conditional models (required there): the image's class, an index or a name (GET /models: "
            "label_names)"))] = None) -> dict[str, Any]:
    """z = E(x) and G(z) as a PNG. 409 when the version has no encoder (train one with "encoder": true)."""
    raw = await image.read(get_settings().max_body_bytes + 1)
    return await encoding.encode(model, version, raw, label, RateLimit.client(request.scope))
