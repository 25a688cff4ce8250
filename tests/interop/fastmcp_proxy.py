#!/usr/bin/env python3
"""A fastmcp proxy used as a real third-party enforcer in front of the mock.

It serves MCP over stdio and forwards to an upstream given either as a
command (after `--`, or as one shell-quoted `--upstream-cmd` string) or as a
Streamable HTTP URL. It enforces what fastmcp itself offers, nothing more:

- `RateLimitingMiddleware` (token bucket: `--rate` per second, `--burst`), or
  `SlidingWindowRateLimitingMiddleware` when `--per-minute N` is given;
- one or more tools disabled through the server's visibility transform
  (`--disable NAME`, repeatable).

Example, as an external enforcer template for the harness:

    .venv/bin/python tests/interop/fastmcp_proxy.py --rate 0.5 --burst 30 \
        --disable 'WizCommerce Open API_DeleteCustomer' -- {upstream}
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys

# Before fastmcp is imported, so its own settings pick it up: the harness
# keeps an enforcer's stderr, and fastmcp's INFO lines are noise there.
os.environ.setdefault("FASTMCP_LOG_LEVEL", "WARNING")

from fastmcp.client.transports import StdioTransport, StreamableHttpTransport  # noqa: E402
from fastmcp.server import create_proxy  # noqa: E402
from fastmcp.server.middleware.rate_limiting import (  # noqa: E402
    RateLimitingMiddleware,
    SlidingWindowRateLimitingMiddleware,
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    if "--" in argv:
        split = argv.index("--")
        own, upstream = argv[:split], argv[split + 1 :]
    else:
        own, upstream = argv, []
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream-cmd", help="upstream stdio command, shell-quoted")
    parser.add_argument("--upstream-url", help="upstream Streamable HTTP endpoint")
    parser.add_argument(
        "--rate", type=float, default=10.0, help="token bucket refill, requests per second"
    )
    parser.add_argument("--burst", type=int, default=None, help="token bucket capacity")
    parser.add_argument(
        "--per-minute",
        type=int,
        default=None,
        help="use the sliding-window middleware instead: N requests per minute",
    )
    parser.add_argument(
        "--disable", action="append", default=[], help="tool name to disable (repeatable)"
    )
    args = parser.parse_args(own)
    if upstream and args.upstream_cmd:
        parser.error("give the upstream command after `--` or as --upstream-cmd, not both")
    if args.upstream_cmd:
        upstream = shlex.split(args.upstream_cmd)
    args.upstream = upstream
    if bool(args.upstream) == bool(args.upstream_url):
        parser.error("give exactly one upstream: a command or --upstream-url")
    return args


def build(args: argparse.Namespace):
    if args.upstream_url:
        backend = StreamableHttpTransport(args.upstream_url)
    else:
        # keep_alive: one upstream process for the proxy's whole life, as a
        # real deployment would run it, so the mock's store and ledger persist.
        backend = StdioTransport(args.upstream[0], args.upstream[1:], keep_alive=True)
    proxy = create_proxy(backend, name="fastmcp-enforcer")
    if args.per_minute is not None:
        proxy.add_middleware(
            SlidingWindowRateLimitingMiddleware(max_requests=args.per_minute, window_minutes=1)
        )
    else:
        proxy.add_middleware(
            RateLimitingMiddleware(max_requests_per_second=args.rate, burst_capacity=args.burst)
        )
    if args.disable:
        proxy.disable(names=set(args.disable), components={"tool"})
    return proxy


def main() -> int:
    args = parse_args(sys.argv[1:])
    # The Aksjah tool names contain spaces; the SDK warns about each one
    # (SEP-986 says "should", not "must") and then serves them unchanged.
    logging.getLogger("mcp.shared.tool_name_validation").setLevel(logging.ERROR)
    build(args).run(transport="stdio", show_banner=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
