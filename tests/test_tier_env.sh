#!/bin/sh
# SPDX-License-Identifier: MIT
# test_tier_env.sh: CCK_TIER caps libcck's tier at load time, as cck_force_tier() does.
# Run from the build directory (as `make check` does), or pass the test program's path.
prog=${1:-./tests/test_kernels}
tiers="scalar sse2 avx2 avx512"

unset CCK_TIER
host=$("$prog" --print-host-tier) || { echo "cannot run $prog"; exit 99; }
plain=$("$prog" --print-tier) || exit 99
echo "host tier: $host"
if [ "$plain" != "$host" ]; then
	echo "FAIL: without CCK_TIER the tier is '$plain', expected the host's '$host'"
	exit 1
fi

fail=0
above=0
for t in $tiers; do
	if [ "$above" = 1 ]; then
		# the tier can be forced lower, never higher: a tier the host lacks leaves the host's
		echo "skipping CCK_TIER=$t as a cap (the host lacks it); it must leave '$host'"
		want=$host
	else
		want=$t
	fi
	got=$(CCK_TIER=$t "$prog" --print-tier) || { echo "FAIL: CCK_TIER=$t: the program failed"; fail=1; continue; }
	if [ "$got" = "$want" ]; then
		echo "ok: CCK_TIER=$t -> $got"
	else
		echo "FAIL: CCK_TIER=$t gives tier '$got', expected '$want'"
		fail=1
	fi
	[ "$t" = "$host" ] && above=1
done

# an unknown name changes nothing
got=$(CCK_TIER=bogus "$prog" --print-tier) || { echo "FAIL: CCK_TIER=bogus: the program failed"; exit 1; }
if [ "$got" = "$host" ]; then
	echo "ok: CCK_TIER=bogus -> $got"
else
	echo "FAIL: CCK_TIER=bogus gives tier '$got', expected '$host'"
	fail=1
fi
exit $fail
