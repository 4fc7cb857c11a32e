#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_ccctl_models.sh: `ccctl load / models / show / unload` against a real ccd, for every vendored model and
# SmolLM2 in both modes; `ccctl show --json` must list the same tensors, types and metadata as gguf's reader
# (tests/gguf_show_ref.py with the venv python, skipped with a message where it cannot be had).
# Run from the build directory (as `make check` does); CCD, CCCTL, T_BUILDDIR and T_SRCDIR come from the Makefile.
set -u
b=${T_BUILDDIR:-.}
src=${T_SRCDIR:-.}
CCD=${CCD:-$b/daemon/ccd}
CCCTL=${CCCTL:-$b/tools/ccctl/ccctl}
PY=${CC_PYTHON:-$HOME/.cache/cc/venv/bin/python}
[ -x "$CCD" ] || { echo "SKIP: no ccd at $CCD"; exit 77; }
[ -x "$CCCTL" ] || { echo "SKIP: no ccctl at $CCCTL"; exit 77; }
command -v timeout >/dev/null || { echo "SKIP: timeout(1) is needed"; exit 77; }

. "$src/tests/t_lib.sh"
t_models
smol=${CC_SMOLLM2:-$HOME/.cache/cc/models/SmolLM2-135M-Instruct.Q4_1.gguf}

t_tmpdir t_ccctl_models
ccd_pid=
cleanup() {
	[ -n "$ccd_pid" ] && kill -9 "$ccd_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
export CC_ENDPOINT="ipc://$tmp/ccd.sock"

"$CCD" --foreground >"$tmp/ccd.log" 2>&1 &
ccd_pid=$!
for _ in $(seq 100); do
	"$CCCTL" status >/dev/null 2>&1 && break
	sleep 0.1
done
"$CCCTL" status >/dev/null 2>&1 || { echo "FAIL: ccd did not start"; cat "$tmp/ccd.log"; exit 1; }

have_ref=0
if [ -x "$PY" ] && "$PY" -c 'import gguf, numpy' 2>/dev/null; then
	have_ref=1
else
	echo "SKIP (part): no python with gguf+numpy at $PY: show --json is not compared with gguf's reader"
fi

files=("$models/stories260K.gguf" "$models/llama-2-tiny-random.gguf" "$models/derived/stories260K-F16.gguf"
	"$models/derived/stories260K-Q8_0.gguf" "$models/derived/stories260K-Q4_0.gguf")
if [ -r "$smol" ]; then
	files+=("$smol")
else
	echo "SKIP (part): SmolLM2 not found at $smol (scripts/install-deps fetches it)"
fi

for f in "${files[@]}"; do
	base=$(basename "$f")
	for mode in uring mmap; do
		if ! timeout 60 "$CCCTL" load m "$f" --mode "$mode" --json >"$tmp/load.json" 2>"$tmp/err"; then
			fail "load $base --mode $mode: $(cat "$tmp/err")"
			continue
		fi
		# the final object carries bytes, seconds, gbps and mode
		if grep -q '"bytes":[1-9]' "$tmp/load.json" && grep -q '"seconds":' "$tmp/load.json" &&
			grep -q '"gbps":' "$tmp/load.json" && grep -Eq "\"mode\":\"($mode|read)\"" "$tmp/load.json"; then
			ok "load $base --mode $mode: $(cat "$tmp/load.json" | head -c 300)"
		else
			fail "load $base --mode $mode: JSON lacks bytes/seconds/gbps/mode: $(cat "$tmp/load.json")"
		fi
		"$CCCTL" models >"$tmp/models.txt" 2>&1 || fail "models: $(cat "$tmp/models.txt")"
		grep -q "^m .*ready" "$tmp/models.txt" || fail "models does not list m as ready: $(cat "$tmp/models.txt")"
		"$CCCTL" show m >"$tmp/show.txt" 2>&1 || fail "show m: $(cat "$tmp/show.txt")"
		grep -q "^tokenizer:" "$tmp/show.txt" && grep -q "^context:" "$tmp/show.txt" ||
			fail "show m lacks tokenizer/context lines"
		if "$CCCTL" show m --json >"$tmp/show.json" 2>"$tmp/err"; then
			if [ $have_ref = 1 ]; then
				# the "gguf" member is the file's header as ccd parsed it; max_array 64 is what ccd sends
				if "$PY" -c 'import json, sys; json.dump(json.load(open(sys.argv[1]))["gguf"], sys.stdout)' \
					"$tmp/show.json" >"$tmp/gguf.json" &&
					"$PY" "$src/tests/gguf_show_ref.py" "$f" "$tmp/gguf.json" --max-array 64 >"$tmp/ref.txt" 2>&1; then
					ok "show --json $base ($mode) matches gguf's reader: $(tail -1 "$tmp/ref.txt")"
				else
					fail "show --json $base ($mode) differs from gguf's reader: $(tail -5 "$tmp/ref.txt")"
				fi
			fi
		else
			fail "show m --json: $(cat "$tmp/err")"
		fi
		"$CCCTL" unload m >/dev/null 2>"$tmp/err" || fail "unload m: $(cat "$tmp/err")"
	done
done

# inference commands and their JSON (the values themselves are checked against llama.cpp in test_ccd_infer)
if timeout 60 "$CCCTL" load m "$models/stories260K.gguf" >/dev/null 2>"$tmp/err"; then
	chk() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $1" "$tmp/out.json" 2>&1; }
	if timeout 60 "$CCCTL" generate m "Once upon a time" --temp 0 --raw --max-tokens 8 --json >"$tmp/out.json" 2>"$tmp/err" &&
		msg=$(chk 'assert set(d) >= {"text","tokens","prompt_tokens","gen_tokens","pp_tps","tg_tps"}, d; assert isinstance(d["text"], str) and len(d["tokens"]) == d["gen_tokens"] <= 8 and all(isinstance(t, int) for t in d["tokens"]), d; assert d["prompt_tokens"] >= 4, d'); then
		ok "generate --json: $(head -c 200 "$tmp/out.json")"
	else
		fail "generate --json: $(cat "$tmp/err") $msg $(cat "$tmp/out.json")"
	fi
	timeout 60 "$CCCTL" generate m "Once upon a time" --temp 0 --raw --max-tokens 8 >"$tmp/a.txt" 2>/dev/null
	timeout 60 "$CCCTL" generate m "Once upon a time" --temp 0.7 --seed 42 --raw --max-tokens 16 >"$tmp/b.txt" 2>/dev/null
	timeout 60 "$CCCTL" generate m "Once upon a time" --temp 0.7 --seed 42 --raw --max-tokens 16 >"$tmp/c.txt" 2>/dev/null
	[ -s "$tmp/a.txt" ] || fail "generate: no text"
	cmp -s "$tmp/b.txt" "$tmp/c.txt" && ok "same seed, same text" || fail "same seed gave different texts"
	if "$CCCTL" tokenize m "Hello world" --json >"$tmp/out.json" 2>"$tmp/err" &&
		msg=$(chk 'assert list(d) == ["tokens"] and d["tokens"][0] == 1, d') &&
		"$CCCTL" tokenize m "Hello world" --no-bos --json >"$tmp/nobos.json" &&
		python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["tokens"]; b=json.load(open(sys.argv[2]))["tokens"]; assert a[1:] == b, (a, b)' \
			"$tmp/out.json" "$tmp/nobos.json"; then
		ok "tokenize --json, --no-bos: $(cat "$tmp/out.json")"
	else
		fail "tokenize: $(cat "$tmp/err") $msg"
	fi
	if "$CCCTL" logits m "Once upon a" --top 5 --json >"$tmp/out.json" 2>"$tmp/err" &&
		msg=$(chk 'assert list(d) == ["top"] and len(d["top"]) == 5 and all(len(e) == 2 and isinstance(e[0], int) for e in d["top"]), d; v = [e[1] for e in d["top"]]; assert v == sorted(v, reverse=True), v'); then
		ok "logits --top 5 --json: $(cat "$tmp/out.json")"
	else
		fail "logits: $(cat "$tmp/err") $msg"
	fi
	"$CCCTL" generate m "" --raw >/dev/null 2>"$tmp/err"
	[ $? = 1 ] && grep -q "empty" "$tmp/err" && ok "empty prompt refused: $(cat "$tmp/err")" || fail "empty prompt: $(cat "$tmp/err")"
	"$CCCTL" generate m "x" --temp nan >/dev/null 2>&1
	[ $? = 2 ] || fail "--temp nan must exit 2"
	"$CCCTL" unload m >/dev/null 2>&1 || fail "unload m"
else
	fail "load for the inference commands: $(cat "$tmp/err")"
fi

# errors: one clear line on stderr, exit 1, and ccd keeps serving
printf 'GGUF\003\000\000\000garbage' >"$tmp/bad.gguf"
if "$CCCTL" load bad "$tmp/bad.gguf" >/dev/null 2>"$tmp/err"; then
	fail "a corrupt file was loaded"
else
	[ -s "$tmp/err" ] && ok "corrupt file refused: $(cat "$tmp/err")" || fail "corrupt file: no message"
fi
"$CCCTL" unload nosuch >/dev/null 2>"$tmp/err" && fail "unload of an unknown model succeeded"
grep -q "nosuch" "$tmp/err" || fail "unload nosuch: unclear message: $(cat "$tmp/err")"
"$CCCTL" load >/dev/null 2>&1
[ $? = 2 ] || fail "load without arguments must exit 2"
"$CCCTL" load m "$models/stories260K.gguf" --mode fast >/dev/null 2>&1
[ $? = 2 ] || fail "--mode fast must exit 2"
"$CCCTL" models --json | grep -q '"models":\[\]' || fail "models left behind: $("$CCCTL" models --json)"
"$CCCTL" status --json | grep -q '"models":0' || fail "status does not count models"

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
echo "all ccctl model checks passed"
