/* SPDX-License-Identifier: MIT */
/* gemm_avx512.c: the AVX-512 packed GEMM and matvec, instantiated from gemm_simd.inc. */
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

/*
 * 6 x 64 tile: 24 accumulators + 4 B vectors + 1 broadcast of the 32 ZMM
 * registers; 24 FMAs per 4 loads and 6 broadcasts. Tried on Zen 4 (which
 * runs one 512-bit FMA per cycle) at 1024^3: 6x64 ~107-111 GFLOPS, 8x48
 * ~102, 12x32 and 14x32 ~99-104; 6 rows also waste the least on edge tiles.
 * KC = 512 keeps the 12 KiB A micro-panel in L1; NC = 4096 packs A once per
 * k-slice for n <= 4096 (a narrower NC, to keep B in L2, measured 3-8%
 * slower).
 */
#define MR 6
#define NRV 4
#define KC 512
#define MC 384
#define NC 4096

#include "gemm_simd.inc"
