#!/bin/sh
# SPDX-License-Identifier: MIT
# test_gpu_none.sh: tests/test_gpu with the device selection "none" (CC_OPENCL_DEVICE=none): every device test must
# skip (saying why) and test_no_device must run and pass: -ENODEV from every ccg_cl_* call, libcck's results through
# the dispatch. Run from the build directory (as `make check` does), or pass the test program's path.
prog=${1:-./tests/test_gpu}

[ -x "$prog" ] || { echo "cannot run $prog"; exit 99; }
out=$(CC_OPENCL_DEVICE=none "$prog" 2>&1)
rc=$?
printf '%s\n' "$out"
echo "----"
if [ "$rc" -ne 0 ]; then
	echo "FAIL: $prog exited with $rc"
	exit 1
fi
fail=0
ran=0
nodev=0
for t in $(printf '%s\n' "$out" | sed -n 's/^\[ RUN      \] \([A-Za-z0-9_]*\)$/\1/p'); do
	ran=$((ran + 1))
	if [ "$t" = test_no_device ]; then
		want='[       OK ]'
		nodev=1
	else
		want='[  SKIPPED ]'
	fi
	if printf '%s\n' "$out" | grep -qxF "$want $t"; then
		echo "ok: $t: $want"
	else
		echo "FAIL: $t did not end with $want"
		fail=1
	fi
done
if [ "$nodev" != 1 ] || [ "$ran" -lt 2 ]; then
	echo "FAIL: test_no_device did not run, or no device test did ($ran tests ran)"
	fail=1
fi
exit $fail
