"""The rules of docs/architecture.md that lint-imports cannot check: what an import loads at run time, module and
function sizes, and why a function imports lazily."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("service", "worker", "models", "bench")
# Alembic revisions describe a schema, table by table, in one function each.
GENERATED = ("service/db/migrations/versions",)
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
HISTORY = re.compile(r"\bissue #?\d+", re.IGNORECASE)


def sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (REPO / package).rglob("*.py")
                  if not str(p.relative_to(REPO)).startswith(GENERATED))


def loaded_modules(statement: str, blocked: tuple[str, ...] = ()) -> set[str]:
    """Top-level module names in sys.modules after running `statement` in a fresh interpreter; importing any
    of `blocked` raises ImportError there."""
    program = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {blocked!r}:\n"
        "            raise ImportError(f'{name} is not allowed here')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"{statement}\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n")
    result = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return set(result.stdout.split())


def test_the_worker_loads_no_web_framework() -> None:
    loaded = loaded_modules("import worker.tasks, worker.celery_app")
    assert not loaded & {"fastapi", "starlette", "uvicorn"}


def test_training_imports_with_torch_and_numpy_alone() -> None:
    """worker/training runs on a bare GPU machine: no database, broker or web package is there."""
    modules = sorted(".".join(p.relative_to(REPO).with_suffix("").parts)
                     for p in (REPO / "worker" / "training").glob("*.py") if p.name != "__init__.py")
    loaded_modules(f"import {', '.join(modules)}",
                   blocked=("service", "sqlalchemy", "psycopg", "celery", "kombu", "redis", "fastapi",
                            "starlette", "onnxruntime"))


def test_modules_and_functions_stay_small() -> None:
    too_long = []
    for path in sources():
        source = path.read_text()
        name = path.relative_to(REPO)
        if (lines := source.count("\n")) > MAX_MODULE_LINES:
            too_long.append(f"{name}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}:{node.lineno} {node.name}(): {length} lines")
    assert not too_long, "split these:\n" + "\n".join(too_long)


def test_function_level_imports_say_why() -> None:
    """Imports belong at the top; one inside a function keeps a heavy or optional dependency lazy, and its
    comment (on the line or the line above) says so."""
    silent = []
    for path in sources():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    here, above = lines[inner.lineno - 1], lines[inner.lineno - 2].strip()
                    if "#" not in here and not above.startswith("#"):
                        silent.append(f"{path.relative_to(REPO)}:{inner.lineno}: {here.strip()}")
    assert not silent, "move to the top, or say why it is lazy:\n" + "\n".join(sorted(set(silent)))


def test_no_comment_narrates_history() -> None:
    """Comments say why; issue numbers belong in commit messages."""
    narrated = [f"{p.relative_to(REPO)}:{i}" for p in sources()
                for i, line in enumerate(p.read_text().splitlines(), 1) if HISTORY.search(line)]
    assert not narrated, narrated
