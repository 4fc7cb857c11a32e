/* SPDX-License-Identifier: MIT */
/* cpu.c: finds the highest SIMD tier that both the CPU and the OS support. */
#include "config.h"

#include <stdatomic.h>
#include <stdint.h>

#include "cck_internal.h"

#ifdef CCK_HAVE_X86
#include <cpuid.h>

/* Older <cpuid.h> lack some of these names; the bit positions are fixed by Intel. */
#ifndef bit_SSE2
#define bit_SSE2 (1u << 26)
#endif
#ifndef bit_FMA
#define bit_FMA (1u << 12)
#endif
#ifndef bit_OSXSAVE
#define bit_OSXSAVE (1u << 27)
#endif
#ifndef bit_AVX
#define bit_AVX (1u << 28)
#endif
#ifndef bit_F16C
#define bit_F16C (1u << 29)
#endif
#ifndef bit_AVX2
#define bit_AVX2 (1u << 5)
#endif
#ifndef bit_AVX512F
#define bit_AVX512F (1u << 16)
#endif
#ifndef bit_AVX512DQ
#define bit_AVX512DQ (1u << 17)
#endif
#ifndef bit_AVX512BW
#define bit_AVX512BW (1u << 30)
#endif
#ifndef bit_AVX512VL
#define bit_AVX512VL (1u << 31)
#endif
#ifndef bit_AVX512VNNI
#define bit_AVX512VNNI (1u << 11) /* CPUID.(7,0):ECX */
#endif

/* XCR0 state components the OS must save for us to touch the registers. */
#define XCR0_SSE_AVX 0x06u          /* XMM, upper YMM */
#define XCR0_AVX512 (0xe0u | 0x06u) /* + opmask, upper ZMM0-15, ZMM16-31 */

static uint64_t xgetbv0(void)
{
	uint32_t lo, hi;

	/* Only valid once CPUID says OSXSAVE; needs no -mxsave. */
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (uint64_t)hi << 32 | lo;
}

static int detect(void)
{
	const unsigned avx512 = bit_AVX512F | bit_AVX512DQ | bit_AVX512BW | bit_AVX512VL;
	const unsigned avx = bit_AVX | bit_FMA | bit_F16C | bit_OSXSAVE;
	unsigned a, b, c, d, b7 = 0;
	uint64_t xcr0;

	if (!__get_cpuid(1, &a, &b, &c, &d))
		return CCK_TIER_SCALAR;
	/* Always there on x86-64; checked for i386 builds. */
	if (!(d & bit_SSE2))
		return CCK_TIER_SCALAR;
	if ((c & avx) != avx)
		return CCK_TIER_SSE2;
	if (!__get_cpuid_count(7, 0, &a, &b7, &c, &d))
		return CCK_TIER_SSE2;
	xcr0 = xgetbv0();
	if (!(b7 & bit_AVX2) || (xcr0 & XCR0_SSE_AVX) != XCR0_SSE_AVX)
		return CCK_TIER_SSE2;
	if ((b7 & avx512) != avx512 || (xcr0 & XCR0_AVX512) != XCR0_AVX512)
		return CCK_TIER_AVX2;
	return CCK_TIER_AVX512;
}
#else
static int detect(void)
{
	return CCK_TIER_SCALAR;
}
#endif

/*
 * Highest enum cck_tier_id this CPU and OS support, ignoring any forcing.
 * Detected on the first call; thread-safe (a race only detects twice).
 */
int cck__cpu_tier(void)
{
	static _Atomic int tier = -1;
	int t = atomic_load_explicit(&tier, memory_order_relaxed);

	if (t < 0) {
		t = detect();
		atomic_store_explicit(&tier, t, memory_order_relaxed);
	}
	return t;
}

/*
 * Whether the avx512 tier may also use AVX512-VNNI (CPUID.(7,0):ECX bit 11;
 * its registers are the avx512 tier's, so no other OS check). Detected once.
 */
int cck__cpu_has_avx512vnni(void)
{
	static _Atomic int has = -1;
	int h = atomic_load_explicit(&has, memory_order_relaxed);

	if (h < 0) {
		h = 0;
#ifdef CCK_HAVE_X86
		if (cck__cpu_tier() >= CCK_TIER_AVX512) {
			unsigned a, b, c, d;

			h = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (c & bit_AVX512VNNI);
		}
#endif
		atomic_store_explicit(&has, h, memory_order_relaxed);
	}
	return h;
}
