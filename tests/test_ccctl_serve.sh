#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_ccctl_serve.sh: the serving side of ccctl and ccbench against a real ccd (issue 7): `ccctl generate` streams
# the same text as --json gives, `ccctl sessions` (table and --json), the per-model serving columns of `ccctl status`
# and `ccctl models`, Ctrl-C cancelling a streamed generation (SmolLM2 when present: the tiny model is too fast to
# interrupt), and `ccbench serve` printing one well-formed JSON line per client count (on a running ccd and with
# --start). Only shapes and exact texts are checked, never speeds.
# Run from the build directory (as `make check` does); CCD, CCCTL, T_BUILDDIR and T_SRCDIR come from the Makefile.
set -u
b=${T_BUILDDIR:-.}
src=${T_SRCDIR:-.}
CCD=${CCD:-$b/daemon/ccd}
CCCTL=${CCCTL:-$b/tools/ccctl/ccctl}
BENCH=${CCBENCH:-$b/tools/ccbench/ccbench}
T=${T_TIMEOUT_SCALE:-1}
[ -x "$CCD" ] || { echo "SKIP: no ccd at $CCD"; exit 77; }
[ -x "$CCCTL" ] || { echo "SKIP: no ccctl at $CCCTL"; exit 77; }
[ -x "$BENCH" ] || { echo "SKIP: no ccbench at $BENCH"; exit 77; }
command -v timeout >/dev/null || { echo "SKIP: timeout(1) is needed"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to check the JSON"; exit 77; }
export CCD

. "$src/tests/t_lib.sh"
t_models
tiny=$models/stories260K.gguf
smol=${CC_SMOLLM2:-$HOME/.cache/cc/models/SmolLM2-135M-Instruct.Q4_1.gguf}

t_tmpdir t_ccctl_serve
ccd_pid=
gen_pid=
cleanup() {
	[ -n "$gen_pid" ] && kill -9 "$gen_pid" 2>/dev/null
	[ -n "$ccd_pid" ] && kill -9 "$ccd_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
export CC_ENDPOINT="ipc://$tmp/ccd.sock"

# py FILE CODE: run CODE with d = the JSON document in FILE; prints what failed
py() {
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $2" "$1" 2>&1
}

mopts=(--model "m=$tiny")
have_smol=0
if [ -r "$smol" ]; then
	mopts+=(--model "smol=$smol")
	have_smol=1
else
	echo "SKIP (part): SmolLM2 not found at $smol: Ctrl-C and a live session's listing are not checked"
fi
"$CCD" --foreground "${mopts[@]}" >"$tmp/ccd.log" 2>&1 &
ccd_pid=$!
for _ in $(seq $((300 * T))); do
	"$CCCTL" status >/dev/null 2>&1 && break
	sleep 0.1
done
"$CCCTL" status >/dev/null 2>&1 || { echo "FAIL: ccd did not start"; cat "$tmp/ccd.log"; exit 1; }

# ---- idle: no sessions, and every field there -------------------------------------------------------------------------
if "$CCCTL" sessions --json >"$tmp/s.json" 2>"$tmp/err" &&
	msg=$(py "$tmp/s.json" 'assert d["sessions"] == [] and d["kv_bytes"] == 0 and d["kv_budget"] > 0, d'); then
	ok "sessions --json when idle: $(cat "$tmp/s.json")"
else
	fail "sessions --json when idle: $(cat "$tmp/err") $msg"
fi
if "$CCCTL" sessions >"$tmp/out" 2>"$tmp/err" && grep -q "^no sessions" "$tmp/out" && [ "$(wc -l <"$tmp/out")" = 1 ]; then
	ok "sessions when idle: $(cat "$tmp/out")"
else
	fail "sessions when idle: $(cat "$tmp/out" "$tmp/err")"
fi

# ---- generate: the streamed text is the --json text ------------------------------------------------------------------
for prompt in "Once upon a time" "The little dog"; do
	args=(m "$prompt" --temp 0 --raw --max-tokens 40)
	if timeout $((60 * T)) "$CCCTL" generate "${args[@]}" --json >"$tmp/g.json" 2>"$tmp/err" &&
		timeout $((60 * T)) "$CCCTL" generate "${args[@]}" >"$tmp/g.txt" 2>"$tmp/g.err"; then
		if msg=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); t=open(sys.argv[2], "rb").read().decode(); assert t == d["text"] + "\n", (t, d["text"])' "$tmp/g.json" "$tmp/g.txt" 2>&1); then
			ok "generate '$prompt' streams the --json text: $(head -c 80 "$tmp/g.txt")"
		else
			fail "generate '$prompt': streamed text differs from --json: $msg"
		fi
		# stderr is no terminal here: no summary without -v
		[ -s "$tmp/g.err" ] && fail "generate printed on stderr without -v: $(cat "$tmp/g.err")"
	else
		fail "generate '$prompt': $(cat "$tmp/err" "$tmp/g.err" 2>/dev/null)"
	fi
done
# --json keeps its one object (the keys the inference issue defined, nothing streamed before it)
if msg=$(py "$tmp/g.json" 'assert list(d) == ["text","tokens","prompt_tokens","gen_tokens","pp_tps","tg_tps","stop_reason","template"], list(d)') &&
	[ "$(wc -l <"$tmp/g.json")" = 1 ]; then
	ok "generate --json: one object, the same keys"
else
	fail "generate --json: $msg $(cat "$tmp/g.json")"
fi
if timeout $((60 * T)) "$CCCTL" generate m "Once upon a time" --temp 0 --raw --max-tokens 8 -v >"$tmp/g.txt" 2>"$tmp/g.err" &&
	grep -q "8 generated at .* stop: length" "$tmp/g.err"; then
	ok "generate -v: summary on stderr: $(cat "$tmp/g.err")"
else
	fail "generate -v: no summary on stderr: $(cat "$tmp/g.err")"
fi
"$CCCTL" generate nosuch "x" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 1 ] && grep -q "nosuch" "$tmp/err" && ok "generate on an unknown model: exit 1: $(cat "$tmp/err")" ||
	fail "generate nosuch: exit $rc: $(cat "$tmp/err")"

# ---- status and models: per-model serving figures -----------------------------------------------------------------------
if "$CCCTL" status --json >"$tmp/st.json" 2>"$tmp/err" &&
	msg=$(py "$tmp/st.json" 'assert d["sessions"] == 0 and d["kv_bytes"] == 0, d; m = [x for x in d["model_list"] if x["name"] == "m"]; assert len(m) == 1, d["model_list"]; m = m[0]; assert m["sessions"] == 0 and m["active"] == 0 and m["gen_tokens"] >= 96 and m["tps_1m"] > 0 and m["kv_bytes"] == 0, m'); then
	ok "status --json: sessions, kv_bytes, model_list with the serving fields"
else
	fail "status --json: $(cat "$tmp/err") $msg"
fi
if "$CCCTL" status >"$tmp/out" 2>"$tmp/err" && grep -q "^sessions: *0" "$tmp/out" &&
	grep -Eq "^ +MODEL +STATE +SESSIONS +ACTIVE +TOKENS +TOK/S_1M" "$tmp/out" &&
	grep -Eq "^ +m +ready +0 +0 +[1-9][0-9]* +[0-9.]+$" "$tmp/out"; then
	ok "status shows the model line with its sessions: $(grep -E '^ +m ' "$tmp/out")"
else
	fail "status lacks the model line with sessions: $(cat "$tmp/out" "$tmp/err")"
fi
if "$CCCTL" models >"$tmp/out" 2>"$tmp/err" && grep -Eq "SESSIONS +ACTIVE +TOKENS +TOK/S_1M" "$tmp/out" &&
	grep -q "^m .*ready" "$tmp/out" &&
	"$CCCTL" models --json >"$tmp/m.json" &&
	msg=$(py "$tmp/m.json" 'm = [x for x in d["models"] if x["name"] == "m"][0]; assert all(k in m for k in ("sessions","active","gen_tokens","tps_1m","kv_bytes")), m'); then
	ok "models: the serving columns and fields"
else
	fail "models: $(cat "$tmp/out" "$tmp/err") $msg"
fi

# ---- Ctrl-C cancels a streamed generation (a model slow enough to be caught mid-stream) ----------------------------------
if [ $have_smol = 1 ]; then
	# --ignore-eos: the generation cannot end by itself before the interrupt
	"$CCCTL" generate smol "Once upon a time" --raw --ignore-eos --temp 0 --max-tokens 1000 >"$tmp/c.txt" 2>"$tmp/c.err" &
	gen_pid=$!
	# the first piece has arrived: ccctl streams, with its SIGINT handler in place
	for _ in $(seq $((600 * T))); do
		[ -s "$tmp/c.txt" ] && break
		kill -0 "$gen_pid" 2>/dev/null || break
		sleep 0.05
	done
	if "$CCCTL" sessions --json >"$tmp/s.json" 2>"$tmp/err" &&
		msg=$(py "$tmp/s.json" 's = d["sessions"]; assert len(s) == 1, s; s = s[0]; assert s["model"] == "smol" and s["oneshot"] is True and s["state"] in ("prefill", "decode") and s["n_ctx"] > 0 and s["kv_bytes"] > 0 and s["pid"] > 0 and s["client"] > 0, s; assert d["kv_bytes"] >= s["kv_bytes"], d') &&
		"$CCCTL" sessions >"$tmp/out" 2>&1 &&
		grep -Eq "^ *ID +CLIENT +PID +MODEL +CONTEXT +KV +STATE +TOKENS +IDLE" "$tmp/out" && grep -q " smol " "$tmp/out"; then
		ok "sessions lists the streaming generation: $(tail -2 "$tmp/out" | tr '\n' '|')"
	else
		fail "sessions during a generation: $(cat "$tmp/err") $msg $(cat "$tmp/out")"
	fi
	kill -INT "$gen_pid"
	wait "$gen_pid"
	rc=$?
	gen_pid=
	if [ $rc = 130 ] && grep -q "cancelled" "$tmp/c.err"; then
		ok "Ctrl-C: exit 130, $(cat "$tmp/c.err"), after $(wc -c <"$tmp/c.txt") bytes"
	else
		fail "Ctrl-C: exit $rc: $(cat "$tmp/c.err")"
	fi
	# ccd stopped that generation and freed its session (at once: ccctl waited for the end before exiting)
	if "$CCCTL" sessions --json >"$tmp/s.json" 2>"$tmp/err" && msg=$(py "$tmp/s.json" 'assert d["sessions"] == [], d') &&
		"$CCCTL" models --json >"$tmp/m.json" &&
		msg=$(py "$tmp/m.json" 'm = [x for x in d["models"] if x["name"] == "smol"][0]; assert m["active"] == 0 and 0 < m["gen_tokens"] < 1000, m'); then
		ok "after Ctrl-C: no session left, the generation stopped early"
	else
		fail "after Ctrl-C: $(cat "$tmp/err") $msg"
	fi
fi

# ---- ccbench serve -------------------------------------------------------------------------------------------------------
cat >"$tmp/serve.py" <<'EOF'
import json, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
ks = [int(k) for k in sys.argv[2].split(",")]
gen = int(sys.argv[3])
assert len(lines) == len(ks), "%d lines for clients %s" % (len(lines), ks)
for line, k in zip(lines, ks):
    d = json.loads(line)
    keys = ["clients", "agg_tps", "p50_tpot_ms", "p99_tpot_ms", "ttft_ms_p50", "rss_mb"]
    assert list(d)[:6] == keys, "keys %r" % list(d)
    assert "error" not in d, d
    assert d["clients"] == k, d
    for key in keys[1:]:
        assert isinstance(d[key], (int, float)) and not isinstance(d[key], bool) and d[key] >= 0, (key, d)
    # the tiny model outruns its clients' wake-ups: pieces come in bursts, and gaps of 0.000 ms are real
    assert d["agg_tps"] > 0 and d["ttft_ms_p50"] > 0 and d["rss_mb"] > 0, d
    assert d["p99_tpot_ms"] >= d["p50_tpot_ms"], d
    assert d["tokens"] == k * gen, d  # ignore_eos: every client generates all its tokens
    assert d["kv_mb"] > 0, d
EOF
if timeout $((300 * T)) "$BENCH" serve --model m --clients 1,2 --gen-tokens 8 >"$tmp/b.out" 2>"$tmp/b.err" &&
	msg=$(python3 "$tmp/serve.py" "$tmp/b.out" 1,2 8 2>&1); then
	ok "ccbench serve --clients 1,2 (running ccd): $(tr '\n' ' ' <"$tmp/b.out")"
else
	fail "ccbench serve --clients 1,2: $msg $(cat "$tmp/b.out" "$tmp/b.err")"
fi
# its clients freed their sessions
if "$CCCTL" sessions --json >"$tmp/s.json" 2>"$tmp/err" && msg=$(py "$tmp/s.json" 'assert d["sessions"] == [], d'); then
	ok "no session left after ccbench serve"
else
	fail "sessions after ccbench serve: $(cat "$tmp/err") $msg"
fi
# with a ccd of its own (started, loaded, stopped)
if timeout $((300 * T)) "$BENCH" serve --model tiny --start "$tiny" --threads 1 --clients 2 --gen-tokens 8 \
	--prompt-tokens 16 >"$tmp/b.out" 2>"$tmp/b.err" &&
	msg=$(python3 "$tmp/serve.py" "$tmp/b.out" 2 8 2>&1) &&
	msg=$(python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read()); assert d["threads"] == 1 and d["prompt_tokens"] == 16, d' "$tmp/b.out" 2>&1); then
	ok "ccbench serve --start: $(cat "$tmp/b.out")"
	pid=$(sed -n 's/.*started .* (pid \([0-9]*\)) on .*/\1/p' "$tmp/b.err")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && fail "ccbench serve left its ccd (pid $pid) running"
else
	fail "ccbench serve --start: $msg $(cat "$tmp/b.out" "$tmp/b.err")"
fi
"$BENCH" serve --clients 2 >/dev/null 2>&1
[ $? = 2 ] || fail "ccbench serve without --model must exit 2"
"$BENCH" serve --model m --clients 0 >/dev/null 2>&1
[ $? = 2 ] || fail "ccbench serve --clients 0 must exit 2"

"$CCCTL" shutdown >/dev/null 2>&1 || fail "shutdown"
wait "$ccd_pid"
rc=$?
ccd_pid=
[ $rc = 0 ] || fail "ccd exit status $rc"
if [ $fails -ne 0 ]; then
	echo "--- ccd log"
	tail -40 "$tmp/ccd.log"
	echo "$fails failure(s)"
	exit 1
fi
echo "all ccctl serve checks passed"
