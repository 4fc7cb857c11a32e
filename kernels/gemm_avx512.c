/* SPDX-License-Identifier: MIT */
/* gemm_avx512.c: AVX-512 instantiation of the packed GEMM and matvec in gemm_simd.inc. */
#include <immintrin.h>

#define GEMM_TIER avx512
#define V __m512
#define VW 16
#define V_LOAD(p) _mm512_load_ps(p)
#define V_LOADU(p) _mm512_loadu_ps(p)
#define V_STORE(p, v) _mm512_store_ps((p), (v))
#define V_STOREU(p, v) _mm512_storeu_ps((p), (v))
#define V_SET1(f) _mm512_set1_ps(f)
#define V_ZERO() _mm512_setzero_ps()
#define V_ADD(a, b) _mm512_add_ps((a), (b))
#define V_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define V_HSUM(v) _mm512_reduce_add_ps(v)

#ifndef MR
#define MR 6
#endif
#ifndef NRV
#define NRV 4
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
