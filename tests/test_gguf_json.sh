#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_gguf_json.sh: ccm_gguf_json() (through tests/t_gguf_json) of every vendored model and SmolLM2 equals
# gguf.GGUFReader's view (tests/gguf_show_ref.py); the GGUF v1 file is refused.
# Run from the build directory (as `make check` does); T_BUILDDIR and T_SRCDIR come from the Makefile.
set -u
b=${T_BUILDDIR:-.}
src=${T_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
TJ=$b/tests/t_gguf_json
REF=$src/tests/gguf_show_ref.py
PY=${CC_PYTHON:-$HOME/.cache/cc/venv/bin/python}
[ -x "$TJ" ] || { echo "SKIP: no $TJ (make check builds it)"; exit 77; }
[ -x "$PY" ] || { echo "SKIP: no python at $PY (set CC_PYTHON to a python with numpy and gguf)"; exit 77; }
"$PY" -c 'import numpy, gguf' 2>/dev/null || { echo "SKIP: $PY cannot import numpy and gguf"; exit 77; }

if [ -n "${CC_MODELS_DIR:-}" ]; then
	models=$CC_MODELS_DIR
elif [ -r "$src/../shared/models/stories260K.gguf" ]; then
	models=$src/../shared/models
else
	models=/work/shared/models
fi
[ -r "$models/stories260K.gguf" ] || { echo "SKIP: test models not found: no $models/stories260K.gguf (set CC_MODELS_DIR)"; exit 77; }
smol=${CC_SMOLLM2:-$HOME/.cache/cc/models/SmolLM2-135M-Instruct.Q4_1.gguf}

fails=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t_gguf_json.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT

check() { # model max_array
	if ! "$TJ" "$1" "$2" >"$tmp/out.json" 2>"$tmp/err"; then
		echo "FAIL: t_gguf_json $1: $(cat "$tmp/err")"
		fails=$((fails + 1))
	elif ! "$PY" "$REF" "$1" "$tmp/out.json" --max-array "$2"; then
		echo "FAIL: $1 (max_array $2): the JSON differs from gguf.GGUFReader"
		fails=$((fails + 1))
	fi
}

for m in stories260K.gguf llama-2-tiny-random.gguf derived/stories260K-F16.gguf derived/stories260K-Q8_0.gguf \
	derived/stories260K-Q4_0.gguf; do
	check "$models/$m" 64
done
# every array inline (tokenizer vocabularies: strings, scores, types), once
check "$models/llama-2-tiny-random.gguf" 100000
# and through stdin, as `ccctl show --json | gguf_show_ref.py MODEL` will
if ! "$TJ" "$models/stories260K.gguf" 0 | "$PY" "$REF" "$models/stories260K.gguf" --max-array 0; then
	echo "FAIL: stories260K.gguf through stdin"
	fails=$((fails + 1))
fi
if [ -r "$smol" ]; then
	check "$smol" 64
	check "$smol" 1000000
else
	echo "note: SmolLM2 not found at $smol (set CC_SMOLLM2): not checked"
fi

legacy=$models/legacy/tinyllamas-stories-260k-f32.gguf
if [ -r "$legacy" ]; then
	if "$TJ" "$legacy" >/dev/null 2>"$tmp/err" || ! grep -q "GGUF v1 is not supported" "$tmp/err"; then
		echo "FAIL: the GGUF v1 file was not refused as such: $(cat "$tmp/err")"
		fails=$((fails + 1))
	else
		echo "ok: $(cat "$tmp/err")"
	fi
fi
[ "$fails" = 0 ] || { echo "$fails failures"; exit 1; }
echo "ok: ccm_gguf_json matches gguf.GGUFReader"
