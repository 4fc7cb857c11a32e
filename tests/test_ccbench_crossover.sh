#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_ccbench_crossover.sh: `ccbench crossover` runs end to end and prints its lines: one per op and size with the
# three timings (libcck, the device, the dispatch) and their ratios, then the crossover table; without a device it
# says why and still prints libcck's figures. Speed is not checked here (a loaded machine would fail it): only that
# every figure is there and plausible, and that an op the table gives a crossover has one in its lines.
set -u
b=${T_BUILDDIR:-.}
BENCH=$b/tools/ccbench/ccbench
T=${T_TIMEOUT_SCALE:-1}
[ -x "$BENCH" ] || { echo "SKIP: no ccbench at $BENCH"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to check the JSON"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/t_ccbench_xo.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
fail=0

run() { # NAME ENV... : ccbench crossover on two ops and two sizes, its own crossover cache
	local name=$1
	shift
	env XDG_CACHE_HOME="$tmp/cache-$name" "$@" timeout $((300 * T)) "$BENCH" crossover --ops add,qmatvec_q4_0 \
		--sizes 1K,100K >"$tmp/$name.out" 2>"$tmp/$name.err"
	local rc=$?
	echo "ccbench crossover ($name): exit $rc"
	cat "$tmp/$name.out"
	sed 's/^/  stderr: /' "$tmp/$name.err"
	[ "$rc" = 0 ] || { echo "FAIL: ccbench crossover ($name) exited $rc"; fail=1; }
	python3 - "$tmp/$name.out" "$name" <<'PY' || fail=1
import json, sys
path, name = sys.argv[1], sys.argv[2]
lines = [json.loads(l) for l in open(path) if l.strip()]
nodev = "device" in lines[0] and lines[0]["device"] is None
if name == "nodevice":
    assert nodev and lines[0].get("why"), "no device: the first line must say why: %r" % lines[0]
elif nodev:
    print("# no OpenCL device here (%s): the device figures are not checked" % lines[0].get("why"))
if nodev:
    lines = lines[1:]
rows, summary = lines[:-1], lines[-1]
assert len(rows) == 4, "4 op x size lines, got %d" % len(rows)
table = summary["crossover_table"]
assert set(table) == {"add", "qmatvec_q4_0"}, table
assert summary["worst_auto_vs_cpu"] > 0 and summary["worst_auto_vs_cpu_over_noise"] > 0, summary
for r in rows:
    assert r["op"] in table and r["n"] > 0 and r["cpu_s"] > 0 and r["auto_s"] > 0, r
    assert 0.2 < r["auto_vs_cpu"] < 50 and r["cpu_vs_cpu"] >= 1, r
    assert r["crossover"] == table[r["op"]], (r, table)
    if nodev:
        assert r["opencl_s"] is None and r["crossover"] is None, r
    else:
        assert r["opencl_s"] > 0, r
print("ok: %s: %d lines, crossovers %s" % (name, len(rows), table))
PY
}

run device
run nodevice CC_OPENCL_DEVICE=none
exit $fail
