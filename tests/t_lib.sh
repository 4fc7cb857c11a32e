# SPDX-License-Identifier: MIT
# t_lib.sh: what the ccctl shell tests share (sourced, after they set src): failures counted by fail/ok, the
# folder of the vendored test models, a private temporary folder.

fails=0
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}
ok() { echo "ok: $*"; }

# Set models to the folder holding stories260K.gguf ($CC_MODELS_DIR, else ../shared/models), or skip the test.
t_models() {
	models=${CC_MODELS_DIR:-}
	if [ -z "$models" ]; then
		for d in "$src/../shared/models" /work/shared/models; do
			[ -r "$d/stories260K.gguf" ] && { models=$d; break; }
		done
	fi
	[ -n "$models" ] && [ -r "$models/stories260K.gguf" ] || { echo "SKIP: test models not found (set CC_MODELS_DIR)"; exit 77; }
}

# Set tmp to a new private (0700) temporary folder named after $1.
t_tmpdir() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || exit 99
	chmod 700 "$tmp"
}
