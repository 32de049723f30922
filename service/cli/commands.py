"""The client commands: `ganserve train [--follow]`, `jobs`, `models`, `sample`, `interpolate`, `download`,
`scores`. Each is one or two HTTP calls (service/cli/client.py) and a readable print."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from service.cli.client import Api, CliError, check
from service.cli.follow import follow

console = Console()


def _version(args: argparse.Namespace) -> dict[str, Any]:
    return {"version": args.version} if args.version else {}


def train(api: Api, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"model": args.model, "preset": args.preset}
    if args.dataset:
        body["dataset"] = args.dataset
    if args.iterations:
        body["iterations"] = args.iterations
    for option in args.set or []:
        name, _, value = option.partition("=")
        body[name.replace("-", "_")] = _value(value)
    job = api.json("POST", "/jobs", json=body)
    console.print(f"queued job {job['id']}: {job['model']} on {job['dataset']}, "
                  f"{job['config'].get('iterations')} iterations  {api.base_url}/jobs/{job['id']}")
    return follow(api, job["id"], args.cancel_on_exit, console) if args.follow else 0


def _value(text: str) -> Any:
    """An option's value as JSON would read it (numbers, true/false), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def jobs(api: Api, args: argparse.Namespace) -> int:
    params = {k: v for k, v in (("status", args.status), ("model", args.model)) if v}
    table = Table("id", "model", "kind", "status", "progress", "iteration", "created")
    for job in api.json("GET", "/jobs", params=params)[:args.limit]:
        table.add_row(job["id"][:8], job["model"], job["kind"], job["status"], f"{job['progress']:.0%}",
                      str(job["iteration"]), (job["created_at"] or "")[:19])
    console.print(table)
    return 0


def models(api: Api, args: argparse.Namespace) -> int:
    table = Table("model", "version", "dataset", "aliases", "sha256", "size", "created")
    for model in api.json("GET", "/models"):
        by_version: dict[int, list[str]] = {}
        for alias, version in model.get("aliases", {}).items():
            by_version.setdefault(version, []).append(alias)
        for v in model["versions"]:
            table.add_row(model["name"], str(v["version"]), v["dataset"], ", ".join(by_version.get(v["version"], [])),
                          v["artifact_sha256"][:12], f"{v['artifact_size']:,}", (v["created_at"] or "")[:19])
    console.print(table)
    return 0


def _save(api: Api, path: str, params: dict[str, Any], out: Path) -> Any:
    response = api.request("GET", path, params=params)
    out.write_bytes(response.content)
    return response


def sample(api: Api, args: argparse.Namespace) -> int:
    out = Path(args.output)
    fmt = out.suffix.lstrip(".") if out.suffix in (".png", ".npy", ".json") else "png"
    params = {"model": args.model, "n": args.n, "format": fmt, **_version(args)}
    if args.seed is not None:
        params["seed"] = args.seed
    r = _save(api, "/samples", params, out)
    console.print(f"{out}: {args.n} samples of {args.model} v{r.headers['X-Model-Version']}, seed "
                  f"{r.headers['X-Seed']}")
    return 0


def interpolate(api: Api, args: argparse.Namespace) -> int:
    out = Path(args.output)
    fmt = out.suffix.lstrip(".") if out.suffix in (".png", ".gif", ".json") else "png"
    params = {"model": args.model, "z0": args.z0, "z1": args.z1, "steps": args.steps, "method": args.method,
              "format": fmt, **_version(args)}
    r = _save(api, "/interpolate", params, out)
    console.print(f"{out}: {args.steps} frames of {args.model} v{r.headers['X-Model-Version']} from z0={args.z0} "
                  f"to z1={args.z1} ({args.method})")
    return 0


def download(api: Api, args: argparse.Namespace) -> int:
    version = args.version or _latest(api, args.model)
    out = Path(args.output or f"{args.model}-v{version}.onnx")
    digest = hashlib.sha256()
    with api.http.stream("GET", f"/models/{args.model}/versions/{version}/onnx") as response:
        check(response)
        with out.open("wb") as f:
            for chunk in response.iter_bytes():
                f.write(chunk)
                digest.update(chunk)
        etag = response.headers.get("ETag", "").strip('"')
    if etag and etag != digest.hexdigest():
        out.unlink()
        raise CliError(f"the download's sha256 {digest.hexdigest()} differs from the server's {etag}")
    console.print(f"{out}: {args.model} v{response.headers.get('X-Model-Version', version)}, "
                  f"{out.stat().st_size:,} bytes, sha256 {digest.hexdigest()} (verified)")
    return 0


def _latest(api: Api, model: str) -> str:
    for entry in api.json("GET", "/models"):
        if entry["name"] == model:
            return str(entry["latest"])
    raise CliError(f"unknown model {model!r}; `ganserve models` lists them")


def scores(api: Api, args: argparse.Namespace) -> int:
    from service.cli.parzen import render  # lazy: that module loads the database layer for `ganserve parzen`

    response = api.request("GET", "/parzen", params={"model": args.model, **_version(args)})
    body = response.json()
    if response.status_code == 202:
        console.print(f"no score yet: {body['detail']}")
        return 0
    print(render(body))
    return 0


COMMANDS = {"train": train, "jobs": jobs, "models": models, "sample": sample, "interpolate": interpolate,
            "download": download, "scores": scores}


def run(args: argparse.Namespace) -> int:
    try:
        with Api() as api:
            return COMMANDS[args.command](api, args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
