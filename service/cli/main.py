"""The `ganserve` command. Each subcommand imports what only it needs (the database, the app, torch for the
benchmarks) when it runs, so `ganserve --help` and `ganserve hash-key` start at once."""

from __future__ import annotations

import argparse
import importlib
import sys

from models import datasets
from service.keys import key_hash, new_key
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
    print(f"sha256 (add to GANSERVE_API_KEYS, a JSON list): {key_hash(key)}")
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
    p.set_defaults(func=_hash_key)

    p = sub.add_parser("bench", help="benchmarks: train, parzen, serve, toy, scores, conditional (add --json for one "
                                     "JSON line)")
    p.add_argument("what", choices=["train", "parzen", "serve", "toy", "scores", "conditional"])
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.func is _parzen:
        import service.datasets.store  # noqa: F401 - lazy; registers uploaded datasets, so they are scored too
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
