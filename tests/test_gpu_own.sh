#!/bin/sh
# SPDX-License-Identifier: MIT
# test_gpu_own.sh: tests/test_gpu and tests/test_gpu_quant on the device as if it had its own memory
# (CCG_OWN_MEMORY=1), as a discrete GPU has: buffers from the device's pool, inputs copied in, results read back,
# instead of PoCL's buffers over the caller's memory. So the path an NVIDIA or AMD card takes is tested on a
# machine without one (test_gpu's test_pool checks the pool itself). Run from the build directory.
gpu=${1:-./tests/test_gpu}
quant=${2:-./tests/test_gpu_quant}

for p in "$gpu" "$quant"; do
	[ -x "$p" ] || { echo "cannot run $p"; exit 99; }
done
CCG_OWN_MEMORY=1 "$gpu" || exit 1
CCG_OWN_MEMORY=1 exec "$quant"
