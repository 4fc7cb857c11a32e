#!/bin/sh
# SPDX-License-Identifier: MIT
# test_quant_ref.sh: runs tests/quant_ref.py (gguf-py vs libcck's dequantization, bit for bit) with the venv python.
# Environment: CC_PYTHON (default ~/.cache/cc/venv/bin/python), CC_MODELS_DIR (default
# $T_SRCDIR/../shared/models, then /work/shared/models), CC_SMOLLM2 (default
# ~/.cache/cc/models/SmolLM2-135M-Instruct.Q4_1.gguf). Exits 77 (skip) without python, numpy or gguf.
here=$(cd "$(dirname "$0")" && pwd)
srcdir=${T_SRCDIR:-$here/..}
builddir=${T_BUILDDIR:-$(pwd)}
py=${CC_PYTHON:-$HOME/.cache/cc/venv/bin/python}
tool=$builddir/tests/t_dequant

if ! [ -x "$py" ] && ! command -v "$py" >/dev/null 2>&1; then
	echo "SKIP: no python at $py (set CC_PYTHON)"
	exit 77
fi
if ! "$py" -c 'import numpy, gguf.quants' >/dev/null 2>&1; then
	echo "SKIP: $py lacks numpy or gguf (pip install numpy gguf)"
	exit 77
fi
if ! [ -x "$tool" ]; then
	echo "FAIL: $tool not built"
	exit 1
fi
models=${CC_MODELS_DIR:-}
if [ -z "$models" ]; then
	models=$srcdir/../shared/models
	[ -d "$models" ] || models=/work/shared/models
fi
smol=${CC_SMOLLM2:-$HOME/.cache/cc/models/SmolLM2-135M-Instruct.Q4_1.gguf}
exec "$py" "$srcdir/tests/quant_ref.py" "$tool" --models "$models" --smollm2 "$smol"
