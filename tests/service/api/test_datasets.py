"""/datasets through the real stack: uploads (zip and tar.gz of PNG/JPEG), listing, deletion, every kind of bad
input (each a 422/413 that stores nothing), and upload → train on a real worker → RGB samples and a Parzen
score; a toy model answers points, not images."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from tests.conftest import wait_for_job

# A distinct colour per image, so RGB survives (or not) visibly, and an 8 x 8 image is tiny to train on.
COLOURS = [(255 * (i % 2), 255 * ((i // 2) % 2), 40 * (i % 7)) for i in range(64)]


def png(i: int, size: tuple[int, int] = (8, 8), fmt: str = "PNG", mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(i)
    base = np.array(COLOURS[i % len(COLOURS)], dtype=np.int16)
    pixels = np.clip(base + rng.integers(-20, 20, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").convert(mode).save(out, format=fmt)
    return out.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def tar_of(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return out.getvalue()


def images(n: int, **kw: Any) -> dict[str, bytes]:
    return {f"faces/img{i:03d}.png": png(i, **kw) for i in range(n)}


def upload(client: Any, name: str, archive: bytes, filename: str = "set.zip", **form: Any) -> Any:
    return client.post("/datasets", data={"name": name, **{k: str(v) for k, v in form.items()}},
                       files={"archive": (filename, archive, "application/octet-stream")})


def stored_counts() -> tuple[int, int]:
    from service.db.engine import session_scope
    from service.db.tables import Blob, Dataset

    with session_scope() as session:
        rows = session.scalar(select(func.count()).select_from(Dataset))
        blobs = session.scalar(select(func.count()).select_from(Blob).where(Blob.key.startswith("datasets/")))
    return int(rows or 0), int(blobs or 0)


def test_listing_has_the_papers_datasets_and_the_toys(client: Any) -> None:
    listed = {d["name"]: d for d in client.get("/datasets").json()}
    assert {"mnist", "fashion-mnist", "cifar10", "toy-1d", "toy-ring", "toy-grid"} <= set(listed)
    assert listed["cifar10"]["image_shape"] == [3, 32, 32]
    assert listed["cifar10"]["counts"] == {"train": 40_000, "valid": 10_000, "test": 10_000}
    assert listed["fashion-mnist"]["kind"] == "builtin" and listed["toy-ring"]["kind"] == "toy"
    assert listed["toy-1d"]["image_shape"] == [1, 1, 1] and listed["toy-grid"]["image_shape"] == [1, 1, 2]
    assert all(len(d["sha256"]) == 64 for d in listed.values())
    assert client.get("/datasets/toy-1d").json()["source"].startswith("generated")
    assert client.get("/datasets/nope").status_code == 404


def test_zip_upload_is_stored_split_and_loadable(client: Any) -> None:
    from models import datasets
    from service.settings import get_settings

    members = {**images(24), "__MACOSX/faces/._img000.png": b"junk", "faces/.DS_Store": b"junk", "faces/": b""}
    response = upload(client, "colours", zip_of(members), seed=5)
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["Location"] == "/datasets/colours"
    assert body["kind"] == "upload" and body["image_shape"] == [3, 8, 8]
    assert body["counts"] == {"train": 20, "valid": 2, "test": 2} and body["seed"] == 5
    assert body["options"]["color"] == "rgb" and body["models"] == []
    # The registry reaches it through PostgreSQL, as a worker on another machine would.
    assert "colours" in datasets.dataset_names()
    assert "colours" in client.get("/gallery/options").json()["datasets"]
    splits = datasets.load("colours", get_settings().resolved_data_dir)
    assert splits.sha256 == body["sha256"] and splits.image_shape == (3, 8, 8)
    assert splits.valid is not None and splits.test is not None
    every = np.rint(np.concatenate([splits.train, splits.valid, splits.test]) * 255).astype(np.uint8)
    uploaded = np.stack([np.asarray(Image.open(io.BytesIO(png(i)))).transpose(2, 0, 1).reshape(-1)
                         for i in range(24)])  # (C, H, W) order, as stored
    assert sorted(map(bytes, every)) == sorted(map(bytes, uploaded))
    # Same images, same seed: the same array and sha256; another seed: another split.
    again = upload(client, "colours-again", zip_of(images(24)), seed=5).json()
    other = upload(client, "colours-other", zip_of(images(24)), seed=6).json()
    assert again["sha256"] == body["sha256"] and other["sha256"] != body["sha256"]
    rows, blobs = stored_counts()
    for name in ("colours", "colours-again", "colours-other"):
        assert client.delete(f"/datasets/{name}").status_code == 204
    assert stored_counts() == (rows - 3, blobs - 3)
    assert client.get("/datasets/colours").status_code == 404 and "colours" not in datasets.dataset_names()


def test_tar_gz_of_jpegs_resized_to_grayscale(client: Any) -> None:
    members = {f"a/{i}.jpg": png(i, size=(20 + i % 3, 17), fmt="JPEG") for i in range(22)}
    response = upload(client, "grey", tar_of(members), filename="set.tar.gz", size=16, color="grayscale",
                      valid_fraction=0.2, test_fraction=0.1)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["image_shape"] == [1, 16, 16] and body["counts"] == {"train": 16, "valid": 4, "test": 2}
    assert "tar.gz" in body["source"]
    assert client.delete("/datasets/grey").status_code == 204


def lying_zip() -> bytes:
    """A member whose headers declare 100 bytes while its data inflates to much more."""
    data = bytearray(zip_of({**images(20), "faces/zz.png": png(1) + b"\0" * 5000}))
    for marker, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.rfind(marker)  # the last local header / central entry is the big member's
        data[at + offset:at + offset + 4] = (100).to_bytes(4, "little")
    return bytes(data)


BAD: dict[str, tuple[Callable[[], dict[str, Any]], dict[str, Any], int, str]] = {
    # case: (upload kwargs, settings overrides, status, field named in the problem)
    "archive over the size limit": (lambda: {"archive": zip_of(images(20))}, {"upload_max_bytes": 3000}, 413,
                                    "upload_max_bytes"),
    "body far over the size limit": (lambda: {"archive": zip_of(images(20)) + bytes(200_000)},
                                     {"upload_max_bytes": 3000}, 413, "upload_max_bytes"),
    "zip bomb (declared size)": (lambda: {"archive": zip_of({**images(20), "faces/big.png": b"\0" * 3_000_000})},
                                 {"upload_max_unpacked_bytes": 1_000_000}, 413, "upload_max_unpacked_bytes"),
    "zip bomb (declared vs actual)": (lambda: {"archive": lying_zip()}, {}, 422, "archive"),
    "tar.gz bomb": (lambda: {"archive": tar_of({**images(20), "big.png": b"\0" * 3_000_000}),
                             "filename": "x.tar.gz"}, {"upload_max_unpacked_bytes": 1_000_000}, 413,
                    "upload_max_unpacked_bytes"),
    "too many files": (lambda: {"archive": zip_of(images(30))}, {"upload_max_files": 25}, 413, "upload_max_files"),
    "dot-dot path": (lambda: {"archive": zip_of({**images(20), "../evil.png": png(1)})}, {}, 422, "archive"),
    "absolute path": (lambda: {"archive": zip_of({**images(20), "/etc/evil.png": png(1)})}, {}, 422, "archive"),
    "dot-dot path in a tar": (lambda: {"archive": tar_of({**images(20), "a/../../evil.png": png(1)}),
                                       "filename": "x.tar.gz"}, {}, 422, "archive"),
    "symlink in a tar": (lambda: {"archive": tar_of(images(20), links={"faces/link.png": "/etc/passwd"}),
                                  "filename": "x.tar.gz"}, {}, 422, "archive"),
    "not an image": (lambda: {"archive": zip_of({**images(20), "faces/readme.txt": b"hello"})}, {}, 422, "archive"),
    "fails to decode": (lambda: {"archive": zip_of({**images(20), "faces/broken.png": png(1)[:60]})}, {}, 422,
                        "archive"),
    "not an archive": (lambda: {"archive": b"just some bytes"}, {}, 422, "archive"),
    "too few images": (lambda: {"archive": zip_of(images(5))}, {}, 422, "archive"),
    "mixed sizes without resize": (lambda: {"archive": zip_of({**images(20), "faces/zz.png": png(3, size=(9, 8))})},
                                   {}, 422, "size"),
    "name not allowed": (lambda: {"archive": zip_of(images(20)), "name": "Bad Name"}, {}, 422, "name"),
    "name of a builtin": (lambda: {"archive": zip_of(images(20)), "name": "mnist"}, {}, 422, "name"),
    "size out of range": (lambda: {"archive": zip_of(images(20)), "size": 2}, {}, 422, "size"),
    "unknown colour mode": (lambda: {"archive": zip_of(images(20)), "color": "cmyk"}, {}, 422, "color"),
    "fraction out of range": (lambda: {"archive": zip_of(images(20)), "test_fraction": 0.9}, {}, 422,
                              "test_fraction"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_uploads_are_refused_and_store_nothing(client: Any, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    from service.settings import get_settings

    make, overrides, status, field = BAD[case]
    for key, value in overrides.items():
        monkeypatch.setattr(get_settings(), key, value)
    kwargs = make()
    before = stored_counts()
    response = upload(client, kwargs.pop("name", "bad-one"), kwargs.pop("archive"), **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    named = [e["field"] for e in problem.get("errors", [])]
    assert field in named or problem["detail"].startswith(f"{field}:") or field in problem["detail"], problem
    assert stored_counts() == before


def test_taken_names_unknown_deletes_and_auth(client: Any) -> None:
    assert upload(client, "twice", zip_of(images(20))).status_code == 201
    again = upload(client, "twice", zip_of(images(21)))
    assert again.status_code == 422 and again.json()["errors"][0]["field"] == "name"
    assert client.delete("/datasets/mnist").status_code == 409
    assert client.delete("/datasets/never-was").status_code == 404
    anonymous = client.post("/datasets", data={"name": "anon"}, files={"archive": ("a.zip", b"x")},
                            headers={"X-API-Key": ""})
    assert anonymous.status_code == 401
    assert client.delete("/datasets/twice", headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.delete("/datasets/twice").status_code == 204


TINY = {"preset": "quick", "iterations": 30, "g_hidden": [32], "d_hidden": [16], "batch_size": 16,
        "log_every": 10, "snapshot_every": 15, "seed": 3}


@pytest.fixture(scope="module")
def rgb_model(client: Any, worker: Any) -> dict[str, Any]:
    """Upload 32 coloured images, train a tiny model on them with the real worker."""
    created = upload(client, "rgb-set", zip_of(images(32)), seed=1)
    assert created.status_code == 201, created.text
    response = client.post("/jobs", json={"model": "rgb-model", "dataset": "rgb-set", **TINY})
    assert response.status_code == 202, response.text
    job = wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    return {"dataset": created.json(), "job": job}


def rgb(content: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(content))
    assert image.mode == "RGB"
    return np.asarray(image)


def test_upload_train_and_sample_in_colour(client: Any, rgb_model: dict[str, Any]) -> None:
    from service.db.engine import session_scope
    from service.db.tables import ModelVersion

    version = client.get("/models").json()
    version = next(m for m in version if m["name"] == "rgb-model")["versions"][-1]
    assert version["dataset"] == "rgb-set" and version["image_shape"] == [3, 8, 8]
    with session_scope() as session:
        row = session.scalar(select(ModelVersion).where(ModelVersion.name == "rgb-model"))
        assert row is not None and row.dataset_sha256 == rgb_model["dataset"]["sha256"]
    grid = rgb(client.get("/samples", params={"model": "rgb-model", "n": 64, "seed": 1}).content)
    assert grid.shape == (8 * 10 + 2, 8 * 10 + 2, 3)
    cells = grid[2:, 2:].reshape(8, 10, 8, 10, 3)[:, :8, :, :8]
    assert np.abs(cells[..., 0].astype(int) - cells[..., 1]).mean() > 1  # colour, not grey in 3 channels
    paired = rgb(client.get("/samples", params={"model": "rgb-model", "n": 4, "seed": 1, "neighbors": "true"}).content)
    assert paired.shape[2] == 3 and paired.shape[1] > paired.shape[0]
    strip = rgb(client.get("/interpolate", params={"model": "rgb-model", "z0": 1, "z1": 2, "steps": 5}).content)
    assert strip.shape == (12, 5 * 10 + 2, 3)
    snaps = client.get(f"/jobs/{rgb_model['job']['id']}/snapshots").json()
    assert rgb(client.get(snaps[-1]["url"]).content).shape[2] == 3
    listed = client.get("/datasets/rgb-set").json()
    assert listed["models"] == ["rgb-model"]
    refused = client.delete("/datasets/rgb-set")
    assert refused.status_code == 409 and "rgb-model" in refused.json()["detail"]


def test_parzen_scores_an_uploaded_dataset(client: Any, rgb_model: dict[str, Any]) -> None:
    response = client.post("/jobs", json={"kind": "parzen", "model": "rgb-model"})
    assert response.status_code == 202, response.text
    job = wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    score = client.get("/parzen", params={"model": "rgb-model"})
    assert score.status_code == 200, score.text
    body = score.json()
    assert body["dataset"] == "rgb-set" and body["n_test"] == rgb_model["dataset"]["counts"]["test"]
    assert np.isfinite(body["ll"]) and len(body["grid"]) == 10


def test_toy_models_answer_points_not_images(client: Any, worker: Any) -> None:
    response = client.post("/jobs", json={"model": "toy-points", "preset": "toy-1d", "iterations": 60,
                                          "log_every": 20, "snapshot_every": 30})
    assert response.status_code == 202, response.text
    job = wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    versions = next(m for m in client.get("/models").json() if m["name"] == "toy-points")["versions"]
    assert versions[-1]["image_shape"] == [1, 1, 1] and versions[-1]["dataset"] == "toy-1d"
    refused = client.get("/samples", params={"model": "toy-points", "n": 8, "seed": 1})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "format"
    assert "format=json" in refused.json()["detail"]
    body = client.get("/samples", params={"model": "toy-points", "n": 8, "seed": 1, "format": "json"}).json()
    assert len(body["points"]) == 8 and all(len(p) == 1 for p in body["points"]) and "images" not in body
    near = client.get("/samples", params={"model": "toy-points", "n": 3, "seed": 1, "format": "json",
                                          "neighbors": "true"}).json()
    assert all(len(n["point"]) == 1 for n in near["neighbors"])
    npy = client.get("/samples", params={"model": "toy-points", "n": 8, "seed": 1, "format": "npy"})
    assert np.load(io.BytesIO(npy.content)).shape == (8, 1, 1, 1)
    assert client.get("/interpolate", params={"model": "toy-points", "z0": 1, "z1": 2}).status_code == 422
    path = client.get("/interpolate", params={"model": "toy-points", "z0": 1, "z1": 2, "steps": 4,
                                              "format": "json"}).json()
    assert len(path["points"]) == 4


def test_archive_sha_is_of_the_stored_array(client: Any) -> None:
    from service.db import blobs
    from service.db.engine import session_scope

    body = upload(client, "hashed", zip_of(images(20))).json()
    with session_scope() as session:
        data = blobs.get(session, f"datasets/hashed/{body['sha256']}.npz")
    assert hashlib.sha256(data).hexdigest() == body["sha256"] and body["size"] == len(data)
    assert client.delete("/datasets/hashed").status_code == 204


def test_a_delete_waits_for_a_registration_on_the_dataset_and_then_refuses(client: Any) -> None:
    """A job registering a version holds the dataset (as worker/train_job.py's register does): a delete
    that comes in meanwhile waits for that transaction, then sees the version, never a moment with neither
    the running job nor its version."""
    import threading
    import uuid

    from service.datasets import store
    from service.db.engine import session_scope
    from service.db.tables import Job, ModelVersion
    from service.jobs.status import JobStatus

    assert upload(client, "held", zip_of(images(20))).status_code == 201
    job_id = uuid.uuid4()
    with session_scope() as session:
        session.add(Job(id=job_id, kind="train", model_name="held-model", dataset="held", config={},
                        status=JobStatus.RUNNING, progress=0.0, iteration=0, attempts=1, cancel_requested=False))
    outcome: list[str] = []

    def delete() -> None:
        try:
            store.delete("held")
            outcome.append("deleted")
        except store.DatasetInUse as exc:
            outcome.append(str(exc))

    with session_scope() as session:                      # the registration's transaction
        store.hold(session, "held")
        session.add(ModelVersion(name="held-model", version=1, job_id=job_id, artifact_key="none",
                                 artifact_sha256="0" * 64, artifact_size=0, latent_dim=1, noise={},
                                 image_shape=[3, 8, 8], dataset="held", dataset_sha256="0" * 64, config={},
                                 metrics={}))
        session.get(Job, job_id).status = JobStatus.SUCCEEDED  # type: ignore[union-attr]
        deleter = threading.Thread(target=delete)
        deleter.start()
        deleter.join(timeout=1.0)
        assert deleter.is_alive(), f"the delete did not wait: {outcome}"
    deleter.join(timeout=10)
    assert outcome and "used by model(s) held-model" in outcome[0], outcome
    with session_scope() as session:                      # leave no fake version for later tests
        session.query(ModelVersion).filter_by(name="held-model").delete()
    store.delete("held")


def _scores_after_training(client: Any, model: str, dataset: str) -> dict[str, Any]:
    """Train `model` on `dataset` (TINY), ask for its scores, wait for them, return GET /scores' body."""
    trained = client.post("/jobs", json={"model": model, "dataset": dataset, **TINY})
    assert wait_for_job(client, trained.json()["id"])["status"] == "succeeded"
    asked = client.post("/scores", params={"model": model})
    assert asked.status_code == 202, asked.text
    assert wait_for_job(client, asked.json()["job"]["id"], timeout=300)["status"] == "succeeded"
    return client.get("/scores", params={"model": model}).json()


def test_scores_of_an_unlabelled_upload_use_random_features(client: Any, worker: Any) -> None:
    created = upload(client, "scored-set", zip_of(images(40)), seed=2, test_fraction=0.2)
    assert created.status_code == 201, created.text
    body = _scores_after_training(client, "scored-upload", "scored-set")
    assert body["space"].startswith("random projection of the pixels (192 -> 128")
    assert body["n_test"] == created.json()["counts"]["test"] == 8
    assert body["fd"] > 0 and body["kid"] is not None and 0 <= body["precision"] <= 1 and 0 <= body["recall"] <= 1
    assert body["class_histogram"] is None and body["classes_covered"] is None and body["classifier"] is None
    assert body["reference"]["fd"] >= 0 and body["reference"]["precision"] is not None
    classifier_jobs = [j for j in client.get("/jobs", params={"limit": 1000}).json() if j["kind"] == "classifier"
                       and j["dataset"] == "scored-set"]
    assert classifier_jobs == []


def test_scores_of_a_labelled_upload_use_its_own_classifier(client: Any, worker: Any) -> None:
    members = {f"set/{'dark' if i % 2 else 'bright'}/img{i:03d}.png": png(i) for i in range(40)}
    created = upload(client, "scored-classes", zip_of(members), seed=2, test_fraction=0.25)
    assert created.status_code == 201 and created.json()["label_names"] == ["bright", "dark"], created.text
    body = _scores_after_training(client, "scored-classes-gan", "scored-classes")
    assert body["classifier"]["version"] == 1 and body["space"].startswith("classifier v1")
    assert body["n_classes"] == 2 and len(body["class_histogram"]) == 2 and body["n_test"] == 10
    assert sum(body["test_histogram"]) == pytest.approx(1.0) and min(body["test_histogram"]) > 0  # both classes
    assert 0 <= body["classes_covered"] <= 2
    classifier_jobs = [j for j in client.get("/jobs", params={"limit": 1000}).json() if j["kind"] == "classifier"
                       and j["dataset"] == "scored-classes"]
    assert [j["status"] for j in classifier_jobs] == ["succeeded"]
