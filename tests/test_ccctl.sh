#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_ccctl.sh: ccctl against a real ccd: status, clients, kernels (tables and --json), bench, shutdown, no daemon, CC_FAKE_NUMA=2.
# Run from the build directory (as `make check` does); CCD, CCCTL and T_BUILDDIR come from the Makefile.
set -u
b=${T_BUILDDIR:-.}
src=${T_SRCDIR:-.}
CCD=${CCD:-$b/daemon/ccd}
CCCTL=${CCCTL:-$b/tools/ccctl/ccctl}
HOLD=$b/tests/test_ccd_clients
KTEST=$b/tests/test_kernels
T=${T_TIMEOUT_SCALE:-1}
[ -x "$CCD" ] || { echo "SKIP: no ccd at $CCD"; exit 77; }
[ -x "$CCCTL" ] || { echo "SKIP: no ccctl at $CCCTL"; exit 77; }
[ -x "$HOLD" ] || { echo "SKIP: no $HOLD (make check builds it)"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to check the JSON"; exit 77; }
command -v timeout >/dev/null || { echo "SKIP: timeout(1) is needed"; exit 77; }
[ -r /proc/self/fd ] || { echo "SKIP: no /proc: ccd needs /proc/<pid>/fd to map client regions"; exit 77; }

. "$src/tests/t_lib.sh"

t_tmpdir t_ccctl
ccd_pid= hold_pid=
cleanup() {
	[ -n "$hold_pid" ] && kill -9 "$hold_pid" 2>/dev/null
	[ -n "$ccd_pid" ] && kill -9 "$ccd_pid" 2>/dev/null
	exec 3>&- 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "FAIL: interrupted"; exit 1' INT TERM

ep="ipc://$tmp/ccd.sock"
unset CC_FAKE_NUMA
export CC_ENDPOINT=$ep

# The JSON checks (file kind [expectations in the environment]).
cat >"$tmp/check.py" <<'EOF'
import json, os, sys
path, kind = sys.argv[1], sys.argv[2]
errs = []
def need(cond, msg):
    if not cond:
        errs.append(msg)
def isint(v):
    return isinstance(v, int) and not isinstance(v, bool)
def isnum(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)
try:
    d = json.load(open(path))
except Exception as e:
    print("not one JSON document: %s" % e)
    sys.exit(1)
env = os.environ.get
if kind == "status":
    for k, t in [("version", str), ("pid", int), ("uptime_s", float), ("tier", str), ("numa_nodes", int),
                 ("workers", int), ("clients", int), ("regions", int), ("region_bytes", int),
                 ("jobs_done", int), ("jobs_failed", int), ("models", int), ("model_bytes", int)]:
        need(k in d, "status lacks '%s'" % k)
        if k in d:
            need(isinstance(d[k], str) if t is str else (isint(d[k]) if t is int else isnum(d[k])),
                 "status '%s' is %r, not a %s" % (k, d[k], t.__name__))
    if not errs:
        if env("EXPECT_PID"): need(d["pid"] == int(env("EXPECT_PID")), "pid %r, ccd's is %s" % (d["pid"], env("EXPECT_PID")))
        if env("EXPECT_TIER"): need(d["tier"] == env("EXPECT_TIER"), "tier %r, libcck's is %s" % (d["tier"], env("EXPECT_TIER")))
        if env("CC_VERSION"): need(d["version"] == env("CC_VERSION"), "version %r, the package's is %s" % (d["version"], env("CC_VERSION")))
        need(d["uptime_s"] >= 0, "uptime_s < 0")
        need(d["numa_nodes"] >= 1, "numa_nodes < 1")
        need(d["workers"] >= d["numa_nodes"], "fewer workers than nodes")
        if env("EXPECT_NODES"): need(d["numa_nodes"] == int(env("EXPECT_NODES")), "numa_nodes %r, expected %s" % (d["numa_nodes"], env("EXPECT_NODES")))
        if env("EXPECT_MIN_CLIENTS"): need(d["clients"] >= int(env("EXPECT_MIN_CLIENTS")), "clients %r < %s" % (d["clients"], env("EXPECT_MIN_CLIENTS")))
        if env("EXPECT_MIN_REGIONS"): need(d["regions"] >= int(env("EXPECT_MIN_REGIONS")), "regions %r < %s" % (d["regions"], env("EXPECT_MIN_REGIONS")))
        if env("EXPECT_MIN_REGIONS"): need(d["region_bytes"] >= 4096 * int(env("EXPECT_MIN_REGIONS")), "region_bytes %r too small" % d["region_bytes"])
        if env("EXPECT_MIN_JOBS"): need(d["jobs_done"] >= int(env("EXPECT_MIN_JOBS")), "jobs_done %r < %s" % (d["jobs_done"], env("EXPECT_MIN_JOBS")))
elif kind == "clients":
    lst = d.get("clients") if isinstance(d, dict) else d
    need(isinstance(lst, list), "no list of clients")
    if isinstance(lst, list):
        mine = []
        for c in lst:
            for k in ("id", "pid", "uid", "regions", "bytes", "jobs", "node"):
                need(isinstance(c, dict) and k in c and isint(c[k]), "client entry %r lacks an integer '%s'" % (c, k))
            if isinstance(c, dict) and c.get("pid") == int(env("EXPECT_CLIENT_PID", "-1")):
                mine.append(c)
        if not errs:
            need(len(set(c["id"] for c in lst)) == len(lst), "client ids are not unique")
            n = int(env("EXPECT_NCLIENTS", "0"))
            need(len(mine) == n, "%d entries with the holder's pid, expected %d" % (len(mine), n))
            for c in mine:
                need(c["uid"] == os.getuid(), "uid %r, ours is %d" % (c["uid"], os.getuid()))
                need(c["regions"] >= 1 and c["bytes"] >= 4096 and c["jobs"] >= 1, "holder entry %r: no region or job" % c)
            if env("EXPECT_SPREAD"):
                nodes = sorted(set(c["node"] for c in mine))
                need(nodes == [0, 1], "the holder's clients are on nodes %r, expected spread over [0, 1]" % nodes)
elif kind == "kernels":
    for k in ("tier", "tiers", "ops"):
        need(k in d, "kernels lacks '%s'" % k)
    if not errs:
        need(isinstance(d["tiers"], list) and d["tier"] in d["tiers"], "tier %r not in tiers %r" % (d["tier"], d["tiers"]))
        if env("EXPECT_TIER"): need(d["tier"] == env("EXPECT_TIER"), "tier %r, libcck's is %s" % (d["tier"], env("EXPECT_TIER")))
        need(isinstance(d["ops"], list) and len(d["ops"]) >= 60, "ops is not the list of libcck's ops")
        # ops: names (with a parallel "kinds" list, as in cc.proto) or {"name":..,"kind":..} objects
        names = [o.get("name") if isinstance(o, dict) else o for o in d["ops"]] if isinstance(d["ops"], list) else []
        for op in ("relu", "sigmoid", "softmax", "add", "sum", "dot", "matvec", "matmul"):
            need(op in names, "op %s missing" % op)
        kinds = [o.get("kind") for o in d["ops"] if isinstance(o, dict)] or d.get("kinds", [])
        need(len(kinds) == len(names) and set(kinds) == {"unary", "vector", "binary", "reduce", "reduce2", "matrix"},
             "no kind for each op")
elif kind == "bench":
    need(isinstance(d, (dict, list)) and len(d) > 0, "empty bench document")
else:
    errs.append("unknown kind " + kind)
for e in errs:
    print(e)
sys.exit(1 if errs else 0)
EOF

jcheck() { # what file kind
	local msg
	if msg=$(python3 "$tmp/check.py" "$2" "$3" 2>&1); then
		ok "$1"
	else
		fail "$1: $(echo "$msg" | tr '\n' ';')"
		echo "  document: $(head -c 2000 "$2")"
	fi
}

# ccctl ARGS...: output in $tmp/out and $tmp/err, exit status in $rc.
ctl() {
	timeout $((60 * T)) "$CCCTL" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ $rc = 124 ] && echo "  (ccctl $* timed out)"
}

# Wait (bounded) for process $1 to exit; its status in $rc.
wait_exit() {
	local i=0
	while kill -0 "$1" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt $((400 * T)) ]; then
			fail "pid $1 did not exit within $((20 * T)) s"
			kill -9 "$1" 2>/dev/null
			break
		fi
		sleep 0.05
	done
	wait "$1"
	rc=$?
}

# start_ccd [VAR=value...]: a ccd on $ep, answered within 15 s.
start_ccd() {
	rm -f "$tmp/ccd.log"
	env "$@" "$CCD" --foreground --endpoint "$ep" --pidfile "$tmp/ccd.pid" >"$tmp/ccd.log" 2>&1 &
	ccd_pid=$!
	local i=0
	while :; do
		if ! kill -0 "$ccd_pid" 2>/dev/null; then
			wait "$ccd_pid"
			echo "FAIL: ccd exited with $? before answering"
			cat "$tmp/ccd.log"
			ccd_pid=
			exit 1
		fi
		[ -S "$tmp/ccd.sock" ] && timeout $((10 * T)) "$CCCTL" status >/dev/null 2>&1 && break
		i=$((i + 1))
		if [ $i -gt $((300 * T)) ]; then
			echo "FAIL: ccd did not answer within $((15 * T)) s"
			cat "$tmp/ccd.log"
			exit 1
		fi
		sleep 0.05
	done
}

# hold N: N libcc clients held open by one process (pid in $hold_pid) until release.
hold() {
	rm -f "$tmp/hold.fifo" "$tmp/hold.out"
	mkfifo "$tmp/hold.fifo"
	"$HOLD" --hold "$1" <"$tmp/hold.fifo" >"$tmp/hold.out" 2>&1 &
	hold_pid=$!
	exec 3>"$tmp/hold.fifo"
	local i=0
	until grep -q '^ready' "$tmp/hold.out" 2>/dev/null; do
		i=$((i + 1))
		if ! kill -0 "$hold_pid" 2>/dev/null || [ $i -gt $((300 * T)) ]; then
			echo "FAIL: the holder of $1 clients did not get ready"
			cat "$tmp/hold.out"
			exit 1
		fi
		sleep 0.05
	done
}
release() {
	exec 3>&-
	wait_exit "$hold_pid"
	[ "$rc" = 0 ] || fail "the holder exited with $rc: $(cat "$tmp/hold.out")"
	hold_pid=
}

tier=$("$KTEST" --print-tier 2>/dev/null) || tier=

# ---- no daemon ---------------------------------------------------------------
for args in "status" "--json status" "clients" "kernels" "models" "show x"; do
	# shellcheck disable=SC2086
	CC_ENDPOINT="ipc://$tmp/none.sock" ctl $args
	cat "$tmp/out" "$tmp/err" >"$tmp/both"
	lines=$(wc -l <"$tmp/both")
	if [ "$rc" != 1 ]; then
		fail "ccctl $args with no daemon: exit $rc, expected 1"
	elif [ "$lines" != 1 ]; then
		fail "ccctl $args with no daemon: $lines lines of output, expected a one-line reason: $(cat "$tmp/both")"
	elif ! grep -q 'ccd' "$tmp/both" || ! grep -Eqi 'start|run' "$tmp/both"; then
		fail "ccctl $args with no daemon: the reason does not say how to start ccd: $(cat "$tmp/both")"
	else
		ok "ccctl $args with no daemon: exit 1: $(cat "$tmp/both")"
	fi
done
ctl --endpoint "ipc://$tmp/none.sock" status
[ "$rc" = 1 ] || fail "ccctl --endpoint (nothing there) status: exit $rc, expected 1"

# ---- a daemon ------------------------------------------------------------------
start_ccd
ok "ccd started (pid $ccd_pid)"
if [ "$(cat "$tmp/ccd.pid" 2>/dev/null)" = "$ccd_pid" ]; then
	ok "--pidfile holds ccd's pid"
else
	fail "--pidfile holds '$(cat "$tmp/ccd.pid" 2>/dev/null)', ccd's pid is $ccd_pid"
fi

hold 3
export EXPECT_PID=$ccd_pid EXPECT_TIER=$tier EXPECT_CLIENT_PID=$hold_pid EXPECT_NCLIENTS=3
ctl --json status
[ "$rc" = 0 ] || fail "ccctl --json status: exit $rc: $(cat "$tmp/err")"
cp "$tmp/out" "$tmp/status.json"
EXPECT_MIN_CLIENTS=3 EXPECT_MIN_REGIONS=3 EXPECT_MIN_JOBS=3 jcheck "status --json" "$tmp/status.json" status

ctl clients --json
[ "$rc" = 0 ] || fail "ccctl clients --json: exit $rc: $(cat "$tmp/err")"
cp "$tmp/out" "$tmp/clients.json"
jcheck "clients --json (3 held clients of pid $hold_pid)" "$tmp/clients.json" clients

ctl --json kernels
[ "$rc" = 0 ] || fail "ccctl --json kernels: exit $rc: $(cat "$tmp/err")"
cp "$tmp/out" "$tmp/kernels.json"
jcheck "kernels --json" "$tmp/kernels.json" kernels

# tables
ctl status
if [ "$rc" != 0 ]; then
	fail "ccctl status: exit $rc: $(cat "$tmp/err")"
elif ! grep -qw "$ccd_pid" "$tmp/out" || { [ -n "$tier" ] && ! grep -qw "$tier" "$tmp/out"; }; then
	fail "ccctl status does not show ccd's pid $ccd_pid and tier $tier: $(cat "$tmp/out")"
elif python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/out" 2>/dev/null; then
	fail "ccctl status without --json printed JSON"
else
	ok "ccctl status (table)"
fi
ctl clients
if [ "$rc" != 0 ] || [ "$(grep -cw "$hold_pid" "$tmp/out")" -lt 3 ]; then
	fail "ccctl clients: exit $rc, expected 3 rows with pid $hold_pid: $(cat "$tmp/out" "$tmp/err")"
else
	ok "ccctl clients (table)"
fi
ctl kernels
if [ "$rc" != 0 ] || ! grep -qw relu "$tmp/out" || ! grep -qw matmul "$tmp/out"; then
	fail "ccctl kernels: exit $rc, expected the ops listed: $(cat "$tmp/out" "$tmp/err")"
else
	ok "ccctl kernels (table)"
fi

# --endpoint wins over CC_ENDPOINT
CC_ENDPOINT="ipc://$tmp/none.sock" ctl --endpoint "$ep" --json status
[ "$rc" = 0 ] && ok "--endpoint overrides CC_ENDPOINT" || fail "ccctl --endpoint $ep status with CC_ENDPOINT elsewhere: exit $rc"

ctl --json bench
if [ "$rc" != 0 ]; then
	fail "ccctl --json bench: exit $rc: $(cat "$tmp/err")"
else
	cp "$tmp/out" "$tmp/bench.json"
	jcheck "bench --json: $(head -c 300 "$tmp/bench.json" | tr '\n' ' ')" "$tmp/bench.json" bench
fi

ctl no-such-command
[ "$rc" != 0 ] && [ "$rc" != 124 ] && ok "an unknown command: exit $rc" || fail "ccctl no-such-command: exit $rc"
ctl
[ "$rc" != 0 ] && [ "$rc" != 124 ] && ok "no command: exit $rc" || fail "ccctl with no command: exit $rc"

release
# the held clients are gone (bye; allow a moment)
for i in $(seq 1 $((40 * T))); do
	ctl --json clients
	EXPECT_NCLIENTS=0 python3 "$tmp/check.py" "$tmp/out" clients >/dev/null 2>&1 && break
	sleep 0.05
done
EXPECT_NCLIENTS=0 jcheck "clients --json after the holder closed" "$tmp/out" clients

ctl shutdown
[ "$rc" = 0 ] || fail "ccctl shutdown: exit $rc: $(cat "$tmp/err")"
wait_exit "$ccd_pid"
ccd_pid=
if [ "$rc" = 0 ]; then ok "ccd exited 0 after ccctl shutdown"; else fail "ccd exited $rc after ccctl shutdown"; cat "$tmp/ccd.log"; fi
[ -e "$tmp/ccd.sock" ] && fail "the socket is still there after shutdown" || ok "socket removed"
ctl status
[ "$rc" = 1 ] && ok "ccctl status after shutdown: exit 1" || fail "ccctl status after shutdown: exit $rc"

# ---- CC_FAKE_NUMA=2 ------------------------------------------------------------
start_ccd CC_FAKE_NUMA=2
hold 4
export EXPECT_PID=$ccd_pid EXPECT_CLIENT_PID=$hold_pid EXPECT_NCLIENTS=4
ctl --json status
EXPECT_NODES=2 jcheck "CC_FAKE_NUMA=2: status --json has numa_nodes 2" "$tmp/out" status
ctl --json clients
EXPECT_SPREAD=1 jcheck "CC_FAKE_NUMA=2: 4 clients spread over nodes 0 and 1" "$tmp/out" clients
release
kill -TERM "$ccd_pid"
wait_exit "$ccd_pid"
ccd_pid=
[ "$rc" = 0 ] && ok "ccd exited 0 on SIGTERM" || { fail "ccd exited $rc on SIGTERM"; cat "$tmp/ccd.log"; }
[ -e "$tmp/ccd.sock" ] && fail "the socket is still there after SIGTERM"

echo "$fails failure(s)"
[ "$fails" = 0 ]
