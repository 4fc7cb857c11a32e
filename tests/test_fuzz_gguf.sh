#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_fuzz_gguf.sh: runs the GGUF parser's libFuzzer target (tests/fuzz_gguf) for T_FUZZ_SECONDS (15) over a seed
# corpus of the vendored models' headers, copied into a temporary directory. Skips (77) when it was not built.
# Run from the build directory (as `make check` does); T_BUILDDIR and T_SRCDIR come from the Makefile.
set -u
b=${T_BUILDDIR:-.}
src=${T_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
FUZZ=$b/tests/fuzz_gguf
TJ=$b/tests/t_gguf_json
secs=${T_FUZZ_SECONDS:-15}
[ -x "$FUZZ" ] || {
	echo "SKIP: the fuzzer was not built: configure found no clang that links -fsanitize=fuzzer,address,undefined" \
		"(see 'GGUF fuzzer' in its summary)"
	exit 77
}
[ -x "$TJ" ] || { echo "SKIP: no $TJ (make check builds it)"; exit 77; }

if [ -n "${CC_MODELS_DIR:-}" ]; then
	models=$CC_MODELS_DIR
elif [ -r "$src/../shared/models/stories260K.gguf" ]; then
	models=$src/../shared/models
else
	models=/work/shared/models
fi
[ -r "$models/stories260K.gguf" ] || { echo "SKIP: test models not found: no $models/stories260K.gguf (set CC_MODELS_DIR)"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/t_fuzz_gguf.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/corpus" "$tmp/artifacts"
n=0
for m in stories260K.gguf llama-2-tiny-random.gguf derived/stories260K-F16.gguf derived/stories260K-Q8_0.gguf \
	derived/stories260K-Q4_0.gguf; do
	f=$models/$m
	[ -r "$f" ] || continue
	# the header: up to the data section
	off=$("$TJ" "$f" 0 | sed -n 's/.*"data_offset":\([0-9]*\).*/\1/p')
	[ -n "$off" ] || { echo "FAIL: no data_offset for $f"; exit 1; }
	head -c "$off" "$f" >"$tmp/corpus/$(basename "$f").header"
	n=$((n + 1))
done
# the v1 file's start too (refused, but close to valid)
[ -r "$models/legacy/tinyllamas-stories-260k-f32.gguf" ] &&
	head -c 16384 "$models/legacy/tinyllamas-stories-260k-f32.gguf" >"$tmp/corpus/legacy-v1.head" && n=$((n + 1))
echo "fuzzing for ${secs}s from $n seeds (the vendored models' headers)"
"$FUZZ" -max_total_time="$secs" -max_len=131072 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$tmp/artifacts/" "$tmp/corpus" >"$tmp/log" 2>&1
rc=$?
grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb)' "$tmp/log"
if [ "$rc" != 0 ] || [ -n "$(ls -A "$tmp/artifacts")" ]; then
	tail -40 "$tmp/log"
	mkdir -p "$b/tests/fuzz_gguf_crashes"
	cp "$tmp/artifacts/"* "$b/tests/fuzz_gguf_crashes/" 2>/dev/null
	echo "FAIL: the fuzzer stopped with $rc; inputs kept in $b/tests/fuzz_gguf_crashes (rerun: $FUZZ FILE)"
	exit 1
fi
echo "ok: no crash, leak or sanitizer report"
