"""The `ganserve` command. Each subcommand imports what only it needs (the database, the app, torch for the
benchmarks) when it runs, so `ganserve --help` and `ganserve hash-key` start at once."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

from models import datasets
from service.keys import SCOPES, key_hash, new_key
from service.settings import get_settings


def _data_fetch(args: argparse.Namespace) -> int:
    data_dir = get_settings().resolved_data_dir
    try:
        path = datasets.fetch(args.name, data_dir)
    except datasets.DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.name}: ready in {path}")
    return 0


def _up(args: argparse.Namespace) -> int:
    from service.cli.up import up  # lazy: the app, the database and the embedded servers

    return up(args.host, args.port, args.demo)


def _migrate(args: argparse.Namespace) -> int:
    from service.db.engine import migrate  # lazy: sqlalchemy and alembic

    migrate()
    print("database schema is at head")
    return 0


def _hash_key(args: argparse.Namespace) -> int:
    """Print the sha256 digest to put in GANSERVE_API_KEYS; with no key given, make a new one first."""
    key = args.key
    if key == "-":
        key = sys.stdin.readline().strip()
    if not key:
        key = new_key()
        print(f"new key (give it to the client; it is not stored anywhere): {key}")
    prefix = "" if args.scope == "train" else f"{args.scope}:"
    print(f"sha256 (add to GANSERVE_API_KEYS, a JSON list): {prefix}{key_hash(key)}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"bench.{args.what}")
    return int(module.main(args.rest))


def _parzen(args: argparse.Namespace) -> int:
    from service.cli.parzen import main  # lazy: the database and the stored scores

    return main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganserve", description="Train and serve GAN generators.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("up", help="start the API and a worker (embedded PostgreSQL/Redis when no URLs are set)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--demo", action="store_true", help="queue a quick MNIST job when no mnist model exists")
    p.set_defaults(func=_up)

    p = sub.add_parser("data", help="datasets")
    data_sub = p.add_subparsers(dest="action", required=True)
    f = data_sub.add_parser("fetch", help="download and verify a dataset into GANSERVE_DATA_DIR")
    f.add_argument("name", help="dataset name, e.g. mnist")
    f.set_defaults(func=_data_fetch)

    p = sub.add_parser("migrate", help="alembic upgrade head")
    p.set_defaults(func=_migrate)

    p = sub.add_parser("hash-key", help="the sha256 of an API key for GANSERVE_API_KEYS (no key: make one)")
    p.add_argument("key", nargs="?", default="", help="the key, or - to read it from stdin (keeps it out of "
                                                      "the shell history); omit to generate a new key")
    p.add_argument("--scope", choices=SCOPES, default="train", help="read (reads when they need a key), train "
                                                                     "(jobs, uploads; the default), admin (aliases, "
                                                                     "deletes)")
    p.set_defaults(func=_hash_key)

    p = sub.add_parser("bench", help="benchmarks: train, parzen, serve, toy, scores, conditional, libraries (add "
                                     "--json for one JSON line)")
    p.add_argument("what", choices=["train", "parzen", "serve", "toy", "scores", "conditional", "libraries"])
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_bench)

    p = sub.add_parser("parzen", help="the Parzen-window log-likelihood of a model version (Table 1)")
    p.add_argument("--model", required=True)
    p.add_argument("--version", type=int)
    p.add_argument("--recompute", action="store_true", help="score again and replace the stored result")
    p.add_argument("--fine-grid", action="store_true", help="28 sigmas (contains the paper's 10); not stored")
    p.add_argument("--full-validation", action="store_true", help="choose sigma on all validation images; "
                                                                  "not stored")
    p.add_argument("--json", action="store_true", help="print the GET /parzen body instead of a table")
    p.set_defaults(func=_parzen)
    _client_commands(sub)
    return parser


def _client(args: argparse.Namespace) -> int:
    from service.cli.commands import run  # lazy: httpx and rich

    return run(args)


def _client_commands(sub: Any) -> None:
    """The commands that talk to a running API (GANSERVE_URL; key: GANSERVE_API_KEY or GANSERVE_HOME/api_key)."""
    p = sub.add_parser("train", help="queue a training job; --follow shows its live progress")
    p.add_argument("--model", required=True)
    p.add_argument("--preset", default="quick", help="a preset of models/config.py (default quick)")
    p.add_argument("--dataset", help="default: the preset's")
    p.add_argument("--iterations", type=int)
    p.add_argument("--set", action="append", metavar="OPTION=VALUE", help="any training option, e.g. lr=0.05 "
                                                                            "(repeatable)")
    p.add_argument("--follow", action="store_true", help="a progress bar until the job ends (exit 0: succeeded)")
    p.add_argument("--cancel-on-exit", action="store_true", help="Ctrl-C cancels the job instead of detaching")
    p = sub.add_parser("jobs", help="the newest jobs")
    p.add_argument("--status")
    p.add_argument("--model")
    p.add_argument("--limit", type=int, default=20)
    sub.add_parser("models", help="models, versions and aliases")
    p = sub.add_parser("sample", help="samples of a model to a file (.png grid, .npy or .json)")
    p.add_argument("--model", required=True)
    p.add_argument("-n", type=int, default=64)
    p.add_argument("--seed", type=int)
    p.add_argument("--version", help="a number or an alias (default: the latest)")
    p.add_argument("-o", "--output", default="samples.png")
    p = sub.add_parser("interpolate", help="a path in z space to a file (.png strip, .gif or .json)")
    p.add_argument("--model", required=True)
    p.add_argument("--z0", default="1", help="a seed or comma-separated floats")
    p.add_argument("--z1", default="2")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--method", choices=["lerp", "slerp"], default="lerp")
    p.add_argument("--version", help="a number or an alias (default: the latest)")
    p.add_argument("-o", "--output", default="interpolation.png")
    p = sub.add_parser("download", help="a version's generator as ONNX, checked against its sha256")
    p.add_argument("--model", required=True)
    p.add_argument("--version", help="a number or an alias (default: the latest)")
    p.add_argument("-o", "--output", help="default: MODEL-vVERSION.onnx")
    p = sub.add_parser("scores", help="a version's Parzen score beside Table 1 (from the API)")
    p.add_argument("--model", required=True)
    p.add_argument("--version", help="a number or an alias (default: the latest)")
    for name in ("train", "jobs", "models", "sample", "interpolate", "download", "scores"):
        sub.choices[name].set_defaults(func=_client)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.func is _parzen:
        import service.datasets.store  # noqa: F401 - lazy; registers uploaded datasets, so they are scored too
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
