#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_ccbench_matmul.sh: `ccbench matmul` (the README's quick start runs it) exits 0 and prints libcck's line for
# each size, and OpenBLAS's line and the ratio when OpenBLAS can be loaded (else an error line for it, still exit 0).
# It once crashed: the OpenCL backend table gave its calls a backend pointer that matmul never set.
set -u
b=${T_BUILDDIR:-.}
BENCH=$b/tools/ccbench/ccbench
[ -x "$BENCH" ] || { echo "SKIP: no ccbench at $BENCH"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to check the JSON"; exit 77; }
out=$(timeout 300 "$BENCH" matmul --sizes 33,64 --threads 1 --reps-ms 20 2>&1)
rc=$?
printf '%s\n' "$out"
[ "$rc" = 0 ] || { echo "FAIL: ccbench matmul exited $rc"; exit 1; }
printf '%s\n' "$out" | python3 -c '
import json, sys
lines = [json.loads(l) for l in sys.stdin if l.startswith("{")]
cck = {l["n"]: l for l in lines if l.get("impl") == "cck"}
assert set(cck) == {33, 64}, "a cck line per size: %r" % lines
for l in cck.values():
    assert l["ns"] > 0 and l["gflops"] > 0, l
blas = [l for l in lines if l.get("impl") == "openblas"]
print("ok: cck at %s; OpenBLAS lines: %d" % (sorted(cck), len(blas)))
'
