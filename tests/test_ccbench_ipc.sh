#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_ccbench_ipc.sh: `ccbench ipc` runs end to end (starting and stopping its own ccd) and prints its three JSON lines.
# The speed targets are not checked here (a loaded machine would fail them): only that every
# number is there and plausible, and that no ccd is left behind.
set -u
b=${T_BUILDDIR:-.}
BENCH=$b/tools/ccbench/ccbench
CCD=${CCD:-$b/daemon/ccd}
T=${T_TIMEOUT_SCALE:-1}
[ -x "$BENCH" ] || { echo "SKIP: no ccbench at $BENCH"; exit 77; }
[ -x "$CCD" ] || { echo "SKIP: no ccd at $CCD"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to check the JSON"; exit 77; }
[ -r /proc/self/fd ] || { echo "SKIP: no /proc: ccd needs /proc/<pid>/fd to map client regions"; exit 77; }
export CCD

tmp=$(mktemp -d "${TMPDIR:-/tmp}/t_ccbench.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT

# nothing listens here: ccbench must start (and stop) a ccd of its own
timeout $((300 * T)) "$BENCH" ipc --iters 300 --endpoint "ipc://$tmp/none.sock" >"$tmp/out" 2>"$tmp/err"
rc=$?
echo "ccbench ipc: exit $rc"
cat "$tmp/out"
sed 's/^/  stderr: /' "$tmp/err"
[ "$rc" = 0 ] || { echo "FAIL: ccbench ipc exited $rc"; exit 1; }

pid=$(sed -n 's/.*started .* (pid \([0-9]*\)) on .*/\1/p' "$tmp/err")
if [ -z "$pid" ]; then
	echo "FAIL: ccbench did not say it started a ccd"
	exit 1
fi
if kill -0 "$pid" 2>/dev/null && grep -q ccd "/proc/$pid/cmdline" 2>/dev/null; then
	echo "FAIL: the ccd ccbench started (pid $pid) is still running"
	kill -9 "$pid"
	exit 1
fi

python3 - "$tmp/out" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {l.get("bench"): l for l in lines}
errs = []
want = {"zmq_pingpong": ("p50_us", "p99_us"), "ccd_small_op": ("p50_us", "p99_us", "ratio_vs_zmq"),
        "ccd_relu_16m": ("ccd_ms", "inproc_ms", "ratio")}
for bench, keys in want.items():
    l = by.get(bench)
    if l is None:
        errs.append("no %s line" % bench)
        continue
    if "error" in l:
        errs.append("%s: %s" % (bench, l["error"]))
    for k in keys:
        v = l.get(k)
        if not isinstance(v, (int, float)) or not v > 0:
            errs.append("%s: %s is %r" % (bench, k, v))
    if "p99_us" in keys and not errs and l["p99_us"] < l["p50_us"]:
        errs.append("%s: p99 < p50" % bench)
if not errs:
    print("ratio of the small op to the ZeroMQ ping-pong: %.2f (target <= 2); 16M relu ccd/in-process: %.2f (target <= 1.15)"
          % (by["ccd_small_op"]["ratio_vs_zmq"], by["ccd_relu_16m"]["ratio"]))
for e in errs:
    print("FAIL: " + e)
sys.exit(1 if errs else 0)
EOF
