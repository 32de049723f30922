"""/datasets: the datasets a job can train on — the paper's, the toys, and the user's own uploads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, HTTPException, Response, UploadFile
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from service.api.deps import AdminKey, ApiKey, SettingsDep
from service.bounds import MODEL_NAME
from service.datasets import store, uploads
from service.serving.noise import MAX_SEED
from service.settings import get_settings

router = APIRouter(prefix="/datasets", tags=["datasets"])


class DatasetOut(BaseModel):
    name: str
    kind: Literal["builtin", "toy", "upload"]
    image_shape: list[int] = Field(description="(C, H, W) of one sample; toys are points: (1, 1, d)")
    counts: dict[str, int] = Field(description="examples per split: train, valid, test")
    source: str
    sha256: str = Field(description="what a model version records: the stored array's sha256 for uploads, "
                                     "a digest of the pinned files for builtin data, of the points for toys")
    size: int | None = Field(description="bytes of the stored array (uploads)")
    seed: int | None = Field(description="the seed of the upload's train/valid/test split")
    options: dict[str, Any]
    created_at: datetime | None
    models: list[str] = Field(description="models with a version trained on this dataset")
    label_names: list[str] = Field(default=[], description="class names (class k is label_names[k]) of a labelled "
                                                           "dataset, which can train a conditional model; [] if none")


@router.get("", response_model=list[DatasetOut])
def list_datasets() -> list[dict[str, Any]]:
    """Every dataset: builtin (MNIST, Fashion-MNIST, CIFAR-10), toys, then uploads."""
    return store.list_all()


@router.get("/{name}", response_model=DatasetOut)
def get_dataset(name: str) -> dict[str, Any]:
    return store.get(name)


@router.post("", status_code=201, response_model=DatasetOut)
def upload_dataset(
        _: ApiKey,
        settings: SettingsDep,
        response: Response,
        name: Annotated[str, Form(description="[a-z0-9][a-z0-9_-]*, not taken", pattern=MODEL_NAME)],
        archive: Annotated[UploadFile, File(description="a .zip or .tar.gz of PNG/JPEG files (folders allowed)")],
        # SkipJsonSchema: "omitted" is the only way to say none; a form field cannot carry a null.
        size: Annotated[int | SkipJsonSchema[None],
                        Form(description="resize every image to size x size (a centre square crop first); "
                                         "omitted: all images must share one size",
                             json_schema_extra={"minimum": uploads.MIN_SIDE,
                                                "maximum": get_settings().upload_max_side})] = None,
        color: Annotated[Literal["rgb", "grayscale"], Form()] = "rgb",
        seed: Annotated[int, Form(description="seed of the train/valid/test split (made once, kept)",
                                  json_schema_extra={"minimum": 0, "maximum": MAX_SEED})] = 0,
        valid_fraction: Annotated[float, Form(description="0..0.4",
                                              json_schema_extra={"minimum": 0, "maximum": uploads.MAX_FRACTION})] = 0.1,
        test_fraction: Annotated[float, Form(description="0..0.4",
                                             json_schema_extra={"minimum": 0, "maximum": uploads.MAX_FRACTION})] = 0.1,
) -> dict[str, Any]:
    """Decode, resize, check and store the images as one uint8 array (sha256-pinned, in the artifact store),
    split once from `seed`. Any problem is a 422 naming the field (or 413 for too much data), and then
    nothing is stored."""
    options = uploads.UploadOptions(size=size, color=color, seed=seed, valid_fraction=valid_fraction,
                                    test_fraction=test_fraction)
    uploads.check_name(name)
    uploads.check_options(options, settings)
    store.check_free(name)
    data = archive.file.read(settings.upload_max_bytes + 1)
    prepared = uploads.prepare(data, archive.filename or "archive", options, settings)
    created = store.create(name, prepared, options)
    response.headers["Location"] = f"/datasets/{name}"
    return created


@router.delete("/{name}", status_code=204)
def delete_dataset(_: AdminKey, name: str) -> Response:
    """Refused (409) while a model version was trained on it or a queued/running job names it."""
    try:
        store.delete(name)
    except store.DatasetInUse as exc:
        raise HTTPException(409, str(exc)) from exc
    return Response(status_code=204)
