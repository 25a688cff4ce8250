#!/usr/bin/env python3
"""Interop: the official Python MCP SDK client against the mock Aksjah server.

For each transport (stdio, Streamable HTTP with JSON replies and with SSE
replies) and each way the SDK connects
(`legacy`: the initialize handshake; `auto`: probe `server/discover`, fall
back to initialize), it lists the tools, calls PostCustomers with valid
arguments, and then checks the mock's ledger: the call arrived, resolved to
PostCustomers under its own name, was valid and executed.

    .venv/bin/python tests/interop/sdk_client.py --gauntlet target/debug/gauntlet

Last, the same client goes through the fastmcp proxy (`fastmcp_proxy.py`)
to the stdio mock, to keep that third-party enforcer working as pinned.

Prints one line per check and a closing `interop: N passed, M failed`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import traceback
from contextlib import asynccontextmanager

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError

POST = "WizCommerce Open API_PostCustomers"
GET = "WizCommerce Open API_GetCustomers"
DELETE = "WizCommerce Open API_DeleteCustomer"
FASTMCP_PROXY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fastmcp_proxy.py")
TOOL_COUNT = 5
VALID_ARGS = {
    "company_name": "Fjord Supply AS",
    "first_name": "Ingrid",
    "last_name": "Berg",
    "email": "ingrid.berg@fjordsupply.example",
    "phone": "+47 22 33 44 55",
    "payment_term": "net_30",
    "credit_limit": 5000,
}
TIMEOUT = 30.0


class CheckFailed(Exception):
    pass


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise CheckFailed(what)


def read_ledger(path: str) -> list[dict]:
    """Folds the ledger's arrival and outcome lines into one record per message."""
    records: dict[tuple, dict] = {}
    order: list[tuple] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            entry = json.loads(line)
            key = (entry.get("instance", ""), entry["seq"])
            if entry.get("kind", "arrival") == "outcome":
                expect(key in records, f"ledger line {n} concludes message {key} that never arrived")
                records[key].update({k: v for k, v in entry.items() if k != "kind"})
            else:
                records[key] = dict(entry)
                order.append(key)
    return [records[k] for k in order]


def check_ledger(path: str, transport: str) -> str:
    records = read_ledger(path)
    calls = [r for r in records if r.get("method") == "tools/call"]
    expect(len(calls) == 1, f"ledger holds {len(calls)} tools/call records, expected 1")
    call = calls[0]
    expect(call.get("tool") == POST, f"call resolved to {call.get('tool')!r}")
    expect(call.get("raw_name") == POST, f"raw name arrived as {call.get('raw_name')!r}")
    expect(call.get("valid") is True, f"call judged invalid: {call.get('schema_errors')}")
    expect(call.get("executed") is True, "call did not execute")
    expect(call.get("transport") == transport, f"transport recorded as {call.get('transport')!r}")
    expect(call.get("arguments") == VALID_ARGS, "arguments arrived altered")
    methods = [r.get("method") for r in records]
    expect("tools/list" in methods, f"no tools/list in the ledger: {methods}")
    return call.get("revision") or "?"


async def exercise(client: Client) -> str:
    listed = await client.list_tools()
    names = [t.name for t in listed.tools]
    expect(len(names) == TOOL_COUNT, f"tools/list gave {len(names)} tools: {names}")
    expect(POST in names and GET in names, f"known tools missing from {names}")
    post = next(t for t in listed.tools if t.name == POST)
    expect(
        "email" in (post.input_schema or {}).get("properties", {}),
        "PostCustomers schema lost its properties",
    )
    result = await client.call_tool(POST, VALID_ARGS)
    expect(not result.is_error, f"call returned isError: {result.content}")
    text = " ".join(getattr(c, "text", "") for c in result.content)
    structured = json.dumps(result.structured_content or {})
    expect("WC_" in text + structured, f"no customer id (WC_...) in the reply: {text!r} {structured}")
    return text


@asynccontextmanager
async def http_mock(gauntlet: str, ledger: str, extra: list[str]):
    proc = await asyncio.create_subprocess_exec(
        gauntlet, "mock", "--http", "127.0.0.1:0", "--ledger", ledger, *extra,
        stdout=subprocess.PIPE,
    )
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
        url = line.decode().strip()
        expect(url.startswith("http://127.0.0.1:"), f"mock printed {url!r}, not an endpoint URL")
        yield url
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def run_check(gauntlet: str, transport: str, mode: str, extra: list[str]) -> str:
    with tempfile.TemporaryDirectory(prefix="gauntlet-interop-") as tmp:
        ledger = os.path.join(tmp, "ledger.jsonl")
        if transport == "stdio":
            server = StdioServerParameters(
                command=gauntlet, args=["mock", "--stdio", "--ledger", ledger]
            )
            async with Client(server, mode=mode, read_timeout_seconds=TIMEOUT) as client:
                await exercise(client)
        else:
            async with http_mock(gauntlet, ledger, extra) as url:
                async with Client(url, mode=mode, read_timeout_seconds=TIMEOUT) as client:
                    await exercise(client)
        return check_ledger(ledger, transport)


async def run_fastmcp_check(gauntlet: str) -> str:
    """The SDK client through the fastmcp proxy (one tool disabled, a small
    token bucket that never refills) to the stdio mock.

    fastmcp's bucket counts every request (initialize and tools/list too),
    so the exact number of calls it admits is its business: the check is
    that it admits some, then refuses with -32000, and that the ledger
    holds exactly the admitted calls and never the disabled tool.
    """
    with tempfile.TemporaryDirectory(prefix="gauntlet-interop-") as tmp:
        ledger = os.path.join(tmp, "ledger.jsonl")
        server = StdioServerParameters(
            command=sys.executable,
            args=[FASTMCP_PROXY, "--rate", "0.0001", "--burst", "5", "--disable", DELETE,
                  "--", gauntlet, "mock", "--stdio", "--ledger", ledger],
        )
        admitted = refused = 0
        async with Client(server, mode="legacy", read_timeout_seconds=TIMEOUT) as client:
            names = [t.name for t in (await client.list_tools()).tools]
            expect(POST in names and DELETE not in names, f"proxy listed {names}")
            disabled = await client.call_tool(DELETE, {"customer_id": "WC_000001"})
            expect(disabled.is_error, "the disabled tool did not answer isError")
            for _ in range(5):
                try:
                    result = await client.call_tool(POST, VALID_ARGS)
                    expect(not result.is_error, f"admitted call failed: {result.content}")
                    expect(refused == 0, "a call was admitted after the bucket ran dry")
                    admitted += 1
                except MCPError as e:
                    expect(e.code == -32000, f"refusal with code {e.code}: {e.message}")
                    refused += 1
        expect(admitted >= 1 and refused >= 1, f"{admitted} admitted, {refused} refused")
        records = read_ledger(ledger)
        calls = [r for r in records if r.get("method") == "tools/call"]
        expect(all(r.get("tool") == POST for r in calls), "the disabled tool reached the mock")
        expect(len(calls) == admitted, f"{len(calls)} calls arrived, {admitted} admitted")
        expect(all(r.get("executed") for r in calls), "an admitted call did not execute")
        return f"{admitted} admitted, {refused} refused"


async def main_async(gauntlet: str) -> int:
    passed = failed = 0
    # Streamable HTTP twice: the mock answers in plain JSON, or over SSE with `--sse`.
    variants = [("stdio", "stdio", []), ("http", "http", []), ("http-sse", "http", ["--sse"])]
    for label, transport, extra in variants:
        for mode in ("legacy", "auto"):
            name = f"sdk {label} {mode}"
            try:
                revision = await asyncio.wait_for(
                    run_check(gauntlet, transport, mode, extra), TIMEOUT * 2
                )
                print(f"PASS {name} (revision {revision})")
                passed += 1
            except Exception as e:  # every failure is reported, none stops the others
                print(f"FAIL {name}: {type(e).__name__}: {e}")
                if not isinstance(e, CheckFailed):
                    traceback.print_exc(file=sys.stdout)
                failed += 1
    try:
        detail = await asyncio.wait_for(run_fastmcp_check(gauntlet), TIMEOUT * 2)
        print(f"PASS sdk via fastmcp proxy ({detail})")
        passed += 1
    except Exception as e:
        print(f"FAIL sdk via fastmcp proxy: {type(e).__name__}: {e}")
        if not isinstance(e, CheckFailed):
            traceback.print_exc(file=sys.stdout)
        failed += 1
    print(f"interop: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gauntlet", required=True, help="path to the gauntlet binary")
    args = parser.parse_args()
    return asyncio.run(main_async(os.path.abspath(args.gauntlet)))


if __name__ == "__main__":
    sys.exit(main())
