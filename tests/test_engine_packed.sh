#!/bin/sh
# SPDX-License-Identifier: MIT
# test_engine_packed.sh: tests/test_engine with packed weights (the models loaded into memory and packed by
# cce_model_pack): the engine's invariants (one batch == chunks of 7, batched sequences == each alone, AVX-512 code ==
# portable code) on every test model. Skipped (77, with a line saying so) where the host has no packed kernel.
# Run from the build directory.
prog=${1:-./tests/test_engine}

[ -x "$prog" ] || { echo "cannot run $prog"; exit 99; }
T_PACKED=1 exec "$prog"
