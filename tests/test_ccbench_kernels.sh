#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_ccbench_kernels.sh: `ccbench kernels` (bench-check and bench/compare-numpy read its lines) prints a read_bw line
# per size and a line per op and size with a positive time and rate, with ordinary pages and with --huge (the buffers
# of 4 MB and more on transparent huge pages, as compare-numpy asks for: the 1.1M size is past that); --no-read-bw
# leaves the read_bw lines out; --resident dram makes every line of a size (read_bw too) take copies (at least 2) of its
# buffers in turn and say so ("resident":"dram","copies"), while at these sizes (a binary op's vectors well inside any
# last-level cache) the default reuses one set ("resident":"reuse"); a quantized op prints its read_bw line (the same
# bytes and copies) and its own with vs_read_bw = its gbps / read_bw's; an unknown op or --resident mode is an error
# (exit status not 0).
set -u
b=${T_BUILDDIR:-.}
BENCH=$b/tools/ccbench/ccbench
[ -x "$BENCH" ] || { echo "SKIP: no ccbench at $BENCH"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to check the JSON"; exit 77; }
fail=0
for flags in "" "--huge" "--huge --no-read-bw" "--resident dram" "--huge --resident dram"; do
	# shellcheck disable=SC2086
	out=$(timeout 300 "$BENCH" kernels --ops sum,dot,zscore --sizes 1000,1100000 --reps-ms 5 $flags 2>&1)
	rc=$?
	printf '%s\n' "$out"
	[ "$rc" = 0 ] || { echo "FAIL: ccbench kernels $flags exited $rc"; fail=1; continue; }
	printf '%s\n' "$out" | FLAGS="$flags" python3 -c '
import json, os, sys
lines = [json.loads(l) for l in sys.stdin if l.startswith("{")]
want_read = "--no-read-bw" not in os.environ["FLAGS"]
for n in (1000, 1100000):
    ops = {l["op"]: l for l in lines if l["n"] == n}
    assert set(ops) == ({"read_bw"} if want_read else set()) | {"sum", "dot", "zscore"}, (n, sorted(ops))
    for l in ops.values():
        assert l["ns"] > 0 and l["gbps"] > 0, l
        if "dram" in os.environ["FLAGS"]:
            assert l["resident"] == "dram" and l["copies"] >= 2, l
        else:
            assert l["resident"] == "reuse" and "copies" not in l, l
print("ok:", os.environ["FLAGS"] or "(ordinary pages)")
' || fail=1
done
# A quantized op: its read_bw line (same bytes, same rotation of copies) then its own, with vs_read_bw; none of
# either with --no-read-bw.
for flags in "" "--no-read-bw"; do
	# shellcheck disable=SC2086
	out=$(timeout 300 "$BENCH" kernels --ops qmatvec_q4_0 --sizes 256x512 --reps-ms 5 $flags 2>&1)
	rc=$?
	printf '%s\n' "$out"
	[ "$rc" = 0 ] || { echo "FAIL: ccbench kernels qmatvec $flags exited $rc"; fail=1; continue; }
	printf '%s\n' "$out" | FLAGS="$flags" python3 -c '
import json, os, sys
lines = [json.loads(l) for l in sys.stdin if l.startswith("{")]
ops = [l["op"] for l in lines]
q = lines[-1]
assert q["op"] == "qmatvec_q4_0" and q["rows"] == 256 and q["cols"] == 512, q
assert q["ns"] > 0 and q["gbps"] > 0 and q["resident"] == "dram" and q["copies"] >= 1, q
assert q["weight_bytes"] == 256 * 512 // 32 * 18, q
if os.environ["FLAGS"]:
    assert ops == ["qmatvec_q4_0"] and "vs_read_bw" not in q, lines
else:
    r = lines[0]
    assert ops == ["read_bw", "qmatvec_q4_0"], ops
    assert r["n"] == q["weight_bytes"] // 4 and r["copies"] == q["copies"] and r["gbps"] > 0, (r, q)
    assert abs(q["vs_read_bw"] - q["gbps"] / r["gbps"]) < 0.01 * q["vs_read_bw"] + 0.002, (r, q)
print("ok: qmatvec", os.environ["FLAGS"] or "(with read_bw)")
' || fail=1
done
if "$BENCH" kernels --ops no_such_op --sizes 1000 >/dev/null 2>&1; then
	echo "FAIL: an unknown op exited 0"
	fail=1
fi
if "$BENCH" kernels --ops sum --sizes 1000 --resident nowhere >/dev/null 2>&1; then
	echo "FAIL: an unknown --resident mode exited 0"
	fail=1
fi
exit $fail
