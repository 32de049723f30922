"""schemathesis against /openapi.json of a live API: no 5xx, and every response matches the documented schema.

A throwaway stack without workers: the jobs it creates stay queued, nothing trains. Bounded by examples per
operation and a time budget: 25 and 40 s by default; GANSERVE_FUZZ_EXAMPLES / GANSERVE_FUZZ_SECONDS for a
longer run (the README's figures: 100 and 300).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, TEST_API_KEY
from tests.faults.conftest import FaultStack

EXAMPLES = int(os.environ.get("GANSERVE_FUZZ_EXAMPLES", "25"))
SECONDS = int(os.environ.get("GANSERVE_FUZZ_SECONDS", "40"))
# Every check, positive data acceptance and unsupported methods included. A schema-valid request may still
# be refused for a rule across fields (or against stored state) that OpenAPI cannot state: each such rule is
# written in the operation's description, and declared here, operation by operation, as an expected 422.
CHECKS = "all"
ACCEPTED = [200, 201, 202, 204, 304, 401, 404, 409, 429]
CROSS_FIELD_422 = {
    # the nets' parameters and checkpoint within the budget; epochs or iterations, not both; k = 1 with
    # simultaneous updates; score_every a multiple of log_every; keep "best" needs score_every; a known dataset
    # that fits the architecture; a parzen job names an existing version.
    "POST /jobs": "the training options' cross-field rules and the budget",
    # the archive must hold decodable PNG/JPEG images of one size (or a size given), and the name be free.
    "POST /datasets": "the archive's content and a free name",
    # z0/z1 as floats: exactly the model's latent size of them.
    "GET /interpolate": "z0/z1's length is the model's latent size",
    # scoring needs a test split in the version's dataset.
    "GET /parzen": "the dataset has a test split",
    # label only on a conditional model (the fuzz stack's model is unconditional), and a class it knows.
    "GET /samples": "label names a class of a conditional model",
}
# The Open Inference Protocol answers a malformed request with 400 and its own error object: the binary tensor
# extension's layout (a JSON header of Inference-Header-Content-Length bytes, then the tensors) and the inputs'
# agreement with the model's metadata are not statable in OpenAPI.
PROTOCOL_400 = ("POST /v2/models/{name}/infer", "POST /v2/models/{name}/versions/{version}/infer")


def schemathesis_config(path: Path) -> Path:
    lines = []
    for operation in CROSS_FIELD_422:
        lines += ["[[operations]]", f'include-name = "{operation}"',
                  f"checks.positive_data_acceptance.expected-statuses = {[*ACCEPTED, 422]}", ""]
    for operation in PROTOCOL_400:
        lines += ["[[operations]]", f'include-name = "{operation}"',
                  f"checks.positive_data_acceptance.expected-statuses = {[*ACCEPTED, 400]}", ""]
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    stack = FaultStack(tmp_path_factory.mktemp("fuzz"))
    # A registered generator, so /samples and /interpolate have something to run.
    subprocess.run([sys.executable, "-c", "from tests.factories import register_model; register_model('fuzz')"],
                   cwd=REPO, env=stack.env, check=True, capture_output=True, timeout=120)
    yield stack
    stack.close()


def _schemathesis(schema: str, config: Path, tmp_path: Path, *extra: str) -> dict[str, int]:
    """Run schemathesis on `schema` (a URL, or a file with --url among `extra`); its report's test-case counts."""
    report = tmp_path / "schemathesis.json"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "st"), "--config-file", str(config), "run", schema,
         # One worker: schemathesis' workers are threads, and Python 3.11's ast.parse (hypothesis describes
         # its filters with it) is not thread-safe ("AST constructor recursion depth mismatch", 1 run in 3 on
         # this schema with 2 workers). One worker generates as many cases in the time budget here.
         "--checks", CHECKS, "--max-examples", str(EXAMPLES), "--seed", "7", "--workers", "1",
         "--phases", "examples,coverage,fuzzing", "--max-time", str(SECONDS), "--request-timeout", "20",
         # Both credentials, valid: the API refuses a request that presents any invalid one.
         "--header", f"X-API-Key: {TEST_API_KEY}", "--header", f"Authorization: Bearer {TEST_API_KEY}",
         *extra, "--report", "json", "--report-json-path", str(report), "--no-color"],
        cwd=tmp_path, capture_output=True, text=True, timeout=SECONDS + 240, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    cases: dict[str, int] = json.loads(report.read_text())["test_cases"]
    assert cases["with_failures"] == 0 and cases["generated"] > 0, cases
    return cases


def test_fuzzing_the_openapi_schema_finds_no_5xx_and_no_schema_violation(fuzz_stack: FaultStack,
                                                                         tmp_path: Path) -> None:
    # The event stream never ends for a live job: it has its own tests.
    cases = _schemathesis(f"{fuzz_stack.api.url}/openapi.json", schemathesis_config(tmp_path / "st.toml"),
                          tmp_path, "--exclude-path", "/jobs/{job_id}/events")
    print(f"\nschemathesis: {cases['generated']} inputs over every operation, {cases['with_failures']} failures")


def test_samples_without_a_label_accept_every_schema_valid_request(fuzz_stack: FaultStack, tmp_path: Path) -> None:
    """The 422 allowed for GET /samples above is for `label` alone: without it, no valid request for the
    registered model is refused."""
    schema = httpx.get(f"{fuzz_stack.api.url}/openapi.json", timeout=10).json()
    operation = schema["paths"]["/samples"]["get"]
    operation["parameters"] = [p for p in operation["parameters"] if p["name"] != "label"]
    for parameter in operation["parameters"]:          # the registered model: else most requests are a 404
        if parameter["name"] == "model":
            parameter["schema"] = {"type": "string", "enum": ["fuzz"]}
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(schema))
    config = tmp_path / "st.toml"
    config.write_text(f'[[operations]]\ninclude-name = "GET /samples"\n'
                      f"checks.positive_data_acceptance.expected-statuses = {ACCEPTED}\n")      # no 422
    _schemathesis(str(path), config, tmp_path, "--url", fuzz_stack.api.url, "--include-name", "GET /samples")


def test_a_request_line_over_64_kib_gets_the_documented_plain_text_400(fuzz_stack: FaultStack) -> None:
    """uvicorn refuses it before the API runs; the schema says a 400 may be that (fuzzing makes such URLs)."""
    base = fuzz_stack.api.url
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:   # httpx refuses such a URL itself
        conn.sendall(f"GET /interpolate?model=fuzz&z0=1&z1={'7' * 70_000} HTTP/1.1\r\nHost: {host}\r\n\r\n"
                     .encode())
        head = conn.recv(4096).decode("latin-1").lower()
    assert head.startswith("http/1.1 400") and "content-type: text/plain" in head, head
    paths = httpx.get(f"{base}/openapi.json", timeout=10).json()["paths"]
    for path, operation in (("/interpolate", "get"), ("/v2/models/{name}/infer", "post")):
        assert "text/plain" in paths[path][operation]["responses"]["400"]["content"], path
