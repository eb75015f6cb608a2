#!/usr/bin/env python3
"""The Python MCP SDK's side of Loom's MCP round-trip benchmark (`loom/benches/mcp.rs`).

One call of a trivial `add(a, b)` tool, timed from the client's `call_tool` to its result,
through the official Python SDK (`pip install mcp==2.3.0`, the v2 API): a `Client` talking
to an `MCPServer` in a child process over stdio, and over streamable HTTP on 127.0.0.1
(uvicorn, the SDK's own server). The floor is the same tool called in the process through
`MCPServer.call_tool` (argument validation and result conversion, no transport).

    python3 loom/benches/python/mcp_roundtrip.py            # readable
    python3 loom/benches/python/mcp_roundtrip.py --json     # one JSON line per measurement
    python3 loom/benches/python/mcp_roundtrip.py --n 200    # fewer calls

`cargo bench -p loomflow --bench mcp` runs it when `mcp` is importable. The servers it starts
are this file run as `serve stdio` / `serve http PORT`; they are stopped when it ends (the
HTTP one also when its standard input closes, so it never outlives this process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from importlib import metadata

ARGS = {"a": 2, "b": 3}
EXPECTED = "5"


def make_server():
    from mcp.server.mcpserver import MCPServer

    # WARNING: no log line per request (uvicorn's access log), which Loom's server does not write either.
    server = MCPServer("python-bench", log_level="WARNING")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    return server


def serve(argv: list[str]) -> None:
    mode = argv[0] if argv else "stdio"
    server = make_server()
    if mode == "stdio":
        server.run("stdio")
    elif mode == "http":

        def exit_when_stdin_closes() -> None:
            sys.stdin.buffer.read()
            os._exit(0)

        threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
        server.run("streamable-http", host="127.0.0.1", port=int(argv[1]))
    else:
        sys.exit(f"usage: mcp_roundtrip.py serve stdio|http PORT (not {mode!r})")


def text_of(result) -> str:
    if getattr(result, "is_error", False):
        raise RuntimeError(f"the tool failed: {result}")
    return "".join(getattr(block, "text", "") for block in result.content)


def summary(variant: str, n: int, times_ns: list[int], wall_s: float) -> dict:
    ordered = sorted(times_ns)

    def pct(p: float) -> float:
        rank = max(1, min(len(ordered), int(-(-p / 100 * len(ordered) // 1))))
        return round(ordered[rank - 1] / 1000, 3)

    return {
        "framework": f"python-mcp {metadata.version('mcp')}",
        "workload": "mcp_roundtrip",
        "variant": variant,
        "n": n,
        "p50_us": pct(50),
        "p99_us": pct(99),
        "mean_us": round(statistics.fmean(ordered) / 1000, 3),
        "calls_per_s": round(n / wall_s, 1),
        "python": sys.version.split()[0],
        "verified": True,
    }


async def time_calls(call, n: int, warmup: int) -> tuple[list[int], float]:
    for _ in range(warmup):
        if (got := text_of(await call())) != EXPECTED:
            raise RuntimeError(f"add(2, 3) returned {got!r}")
    times: list[int] = []
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter_ns()
        result = await call()
        times.append(time.perf_counter_ns() - t0)
        if (got := text_of(result)) != EXPECTED:
            raise RuntimeError(f"add(2, 3) returned {got!r}")
    return times, time.perf_counter() - start


async def floor(n: int, warmup: int) -> dict:
    server = make_server()
    times, wall = await time_calls(lambda: server.call_tool("add", dict(ARGS)), n, warmup)
    return summary("direct", n, times, wall)


async def over(target, variant: str, n: int, warmup: int) -> dict:
    from mcp import Client

    async with Client(target) as client:
        times, wall = await time_calls(lambda: client.call_tool("add", dict(ARGS)), n, warmup)
    return summary(variant, n, times, wall)


async def stdio(n: int, warmup: int) -> dict:
    from mcp import StdioServerParameters

    params = StdioServerParameters(command=sys.executable, args=[os.path.abspath(__file__), "serve", "stdio"])
    return await over(params, "stdio", n, warmup)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def http(n: int, warmup: int) -> dict:
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "serve", "http", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if child.poll() is not None:
                raise RuntimeError(f"the HTTP server exited: {child.stderr.read().decode(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the HTTP server did not listen within 30 s") from None
                await asyncio.sleep(0.05)
        return await over(f"http://127.0.0.1:{port}/mcp", "http", n, warmup)
    finally:
        child.terminate()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


async def main(args: argparse.Namespace) -> int:
    warmup = max(5, min(200, args.n // 20))
    failed = False
    for name, run in (("direct", floor), ("stdio", stdio), ("http", http)):
        if args.variant and name not in args.variant:
            continue
        try:
            line = await run(args.n, warmup)
        except Exception as e:  # noqa: BLE001 - reported as a failed line
            line = {"framework": "python-mcp", "workload": "mcp_roundtrip", "variant": name, "verified": False,
                    "error": f"{type(e).__name__}: {e}"}
            failed = True
        if args.json:
            print(json.dumps(line), flush=True)
        elif line["verified"]:
            print(f"{name:7} p50 {line['p50_us']:>9.1f} µs  p99 {line['p99_us']:>9.1f} µs  "
                  f"{line['calls_per_s']:>9,.0f} calls/s  (n = {line['n']})", flush=True)
        else:
            print(f"{name:7} failed: {line['error']}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2:])
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON line per measurement")
    parser.add_argument("--n", type=int, default=2000, help="timed calls per variant (default 2000)")
    parser.add_argument("--variant", action="append", choices=["direct", "stdio", "http"], help="only these")
    sys.exit(asyncio.run(main(parser.parse_args())))
