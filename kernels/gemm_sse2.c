/* SPDX-License-Identifier: MIT */
/* gemm_sse2.c: the SSE2 packed GEMM and matvec, instantiated from gemm_simd.inc. */
#include <emmintrin.h>

/* Sum of the 4 lanes. */
static inline float gemm_hsum128(__m128 v)
{
	__m128 s = _mm_add_ps(v, _mm_movehl_ps(v, v));

	s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
	return _mm_cvtss_f32(s);
}

#define GEMM_TIER sse2
#define V __m128
#define VW 4
#define V_LOAD(p) _mm_load_ps(p)
#define V_LOADU(p) _mm_loadu_ps(p)
#define V_STORE(p, v) _mm_store_ps((p), (v))
#define V_STOREU(p, v) _mm_storeu_ps((p), (v))
#define V_SET1(f) _mm_set1_ps(f)
#define V_ZERO() _mm_setzero_ps()
#define V_ADD(a, b) _mm_add_ps((a), (b))
/* SSE2 has no FMA: multiply then add (two roundings, as BLAS does on SSE2). */
#define V_FMA(a, b, c) _mm_add_ps(_mm_mul_ps((a), (b)), (c))
#define V_HSUM(v) gemm_hsum128(v)

/*
 * 4 x 12 tile: 12 accumulators + 3 B vectors + 1 product temporary fill the
 * 16 XMM registers. A is packed pre-broadcast (GEMM_PACK_BCAST): with no
 * broadcast load in SSE2, the movss+shufps per element cost ~20% on Zen 4
 * (40 against 48 GFLOPS at 1024^3; 4x8, 6x8 and 3x16 were slower still).
 */
#define GEMM_PACK_BCAST
#define MR 4
#define NRV 3
#define KC 256
#define MC 256
#define NC 4096

#include "gemm_simd.inc"
