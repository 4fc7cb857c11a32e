#!/bin/sh
# SPDX-License-Identifier: MIT
# test_gpu_nofp64.sh: tests/test_gpu on the device as if it had no doubles (CCG_NO_FP64=1: the program is built
# without -DCCG_FP64), so the float-only kernels that devices without cl_khr_fp64 run (sums in compensated float,
# overflow rescaling, divisions without double) meet the same bounds. Run from the build directory.
prog=${1:-./tests/test_gpu}

[ -x "$prog" ] || { echo "cannot run $prog"; exit 99; }
CCG_NO_FP64=1 exec "$prog"
