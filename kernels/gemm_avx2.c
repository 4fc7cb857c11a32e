/* SPDX-License-Identifier: MIT */
/* gemm_avx2.c: AVX2+FMA instantiation of the packed GEMM and matvec in gemm_simd.inc. */
#include <immintrin.h>

/* Sum of the 8 lanes: fold 256 -> 128 -> 64 -> 32 bits. */
static inline float gemm_hsum256(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
	return _mm_cvtss_f32(s);
}

#define GEMM_TIER avx2
#define V __m256
#define VW 8
#define V_LOAD(p) _mm256_load_ps(p)
#define V_LOADU(p) _mm256_loadu_ps(p)
#define V_STORE(p, v) _mm256_store_ps((p), (v))
#define V_STOREU(p, v) _mm256_storeu_ps((p), (v))
#define V_SET1(f) _mm256_set1_ps(f)
#define V_ZERO() _mm256_setzero_ps()
#define V_ADD(a, b) _mm256_add_ps((a), (b))
#define V_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define V_HSUM(v) gemm_hsum256(v)

#ifndef MR
#define MR 6
#endif
#ifndef NRV
#define NRV 2
#endif
#ifndef KC
#define KC 384
#endif
#ifndef MC
#define MC 384
#endif
#ifndef NC
#define NC 4096
#endif

#include "gemm_simd.inc"
