"""schemathesis against /openapi.json of a live API: no 5xx, and every response matches the documented schema.

A throwaway stack without workers: the jobs it creates stay queued, nothing trains. Bounded by examples per
operation and a time budget: 25 and 40 s by default; GANSERVE_FUZZ_EXAMPLES / GANSERVE_FUZZ_SECONDS for a
longer run (the README's figures: 100 and 300).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, TEST_API_KEY
from tests.faults.conftest import FaultStack

EXAMPLES = int(os.environ.get("GANSERVE_FUZZ_EXAMPLES", "25"))
SECONDS = int(os.environ.get("GANSERVE_FUZZ_SECONDS", "40"))
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
          "response_headers_conformance,negative_data_rejection,missing_required_header,ignored_auth")


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    stack = FaultStack(tmp_path_factory.mktemp("fuzz"))
    # A registered generator, so /samples and /interpolate have something to run.
    subprocess.run([sys.executable, "-c", "from tests.factories import register_model; register_model('fuzz')"],
                   cwd=REPO, env=stack.env, check=True, capture_output=True, timeout=120)
    yield stack
    stack.close()


def test_fuzzing_the_openapi_schema_finds_no_5xx_and_no_schema_violation(fuzz_stack: FaultStack,
                                                                         tmp_path: Path) -> None:
    report = tmp_path / "schemathesis.json"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "st"), "run", f"{fuzz_stack.api.url}/openapi.json",
         # One worker: schemathesis' workers are threads, and Python 3.11's ast.parse (hypothesis describes
         # its filters with it) is not thread-safe ("AST constructor recursion depth mismatch", 1 run in 3 on
         # this schema with 2 workers). One worker generates as many cases in the time budget here.
         "--checks", CHECKS, "--max-examples", str(EXAMPLES), "--seed", "7", "--workers", "1",
         "--phases", "examples,coverage,fuzzing", "--max-time", str(SECONDS), "--request-timeout", "20",
         "--header", f"X-API-Key: {TEST_API_KEY}",
         # The event stream never ends for a live job: it has its own tests.
         "--exclude-path", "/jobs/{job_id}/events",
         "--report", "json", "--report-json-path", str(report), "--no-color"],
        cwd=tmp_path, capture_output=True, text=True, timeout=SECONDS + 240, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    cases = json.loads(report.read_text())["test_cases"]
    assert cases["with_failures"] == 0 and cases["generated"] > 0, cases
    print(f"\nschemathesis: {cases['generated']} inputs over every operation, {cases['with_failures']} failures")
