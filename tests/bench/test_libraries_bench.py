"""`ganserve bench libraries`: each hand-written piece and its library do the same job, and both are timed."""

from __future__ import annotations

import json

import pytest

from bench import libraries


def test_prints_each_comparison_and_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert libraries.main(["--number", "50", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["png", "logline", "latency"]
    report = json.loads(lines[-1])
    for name in ("png", "logline"):  # direct timings
        assert report[name]["ours_us"] > 0 and report[name]["library_us"] > 0, report[name]
    # Differences of two timings (with and without the recording): only their presence is certain at 50 calls.
    assert {"ours_us", "library_us", "bare_us"} <= report["latency"].keys()
    # Same image, both valid PNGs of similar size (the writer is not faster by writing less).
    assert 0.5 < report["png"]["ours_bytes"] / report["png"]["library_bytes"] < 1.5
