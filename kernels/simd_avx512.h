/* SPDX-License-Identifier: MIT */
/* simd_avx512.h: the vector vocabulary of kern_simd.inc, spelled in AVX-512 (F/DQ/BW/VL). */
#ifndef CCK_SIMD_AVX512_H
#define CCK_SIMD_AVX512_H

#include <immintrin.h>
#include <stdint.h>

#define VW 16 /* floats per vector */
#define VDW 8 /* doubles per vector */
#define TIER(name) name##_avx512
#define TIER_NAME "avx512"
#define TIER_HAS_FMA 1

typedef __m512 vf;
typedef __m512d vd;
typedef __m512i vi;
typedef __mmask16 vm; /* one bit per float lane */
typedef __mmask8 vdm; /* one bit per double lane */

static inline vf vf_loadu(const float *p)
{
	return _mm512_loadu_ps(p);
}
static inline void vf_storeu(float *p, vf v)
{
	_mm512_storeu_ps(p, v);
}
static inline void vf_stream(float *p, vf v)
{
	_mm512_stream_ps(p, v);
}
static inline vm m_first(size_t n)
{
	return (vm)((n >= VW) ? 0xffffu : ((1u << n) - 1u));
}
/* Masked loads never touch memory of the lanes they leave out. */
static inline vf vf_load_n(const float *p, size_t n)
{
	return _mm512_maskz_loadu_ps(m_first(n), p);
}
static inline void vf_store_n(float *p, vf v, size_t n)
{
	_mm512_mask_storeu_ps(p, m_first(n), v);
}
static inline vf vf_set1(float f)
{
	return _mm512_set1_ps(f);
}
static inline vf vf_zero(void)
{
	return _mm512_setzero_ps();
}
static inline vf vf_add(vf a, vf b)
{
	return _mm512_add_ps(a, b);
}
static inline vf vf_sub(vf a, vf b)
{
	return _mm512_sub_ps(a, b);
}
static inline vf vf_mul(vf a, vf b)
{
	return _mm512_mul_ps(a, b);
}
static inline vf vf_div(vf a, vf b)
{
	return _mm512_div_ps(a, b);
}
/* 1/d to about 2^-28: rcp14 and one Newton step (the divider is slow here) */
static inline vf vf_rcp(vf d)
{
	vf r = _mm512_rcp14_ps(d);
	return _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.0f)));
}
static inline vf vf_fmadd(vf a, vf b, vf c)
{
	return _mm512_fmadd_ps(a, b, c);
}
static inline vf vf_fnmadd(vf a, vf b, vf c)
{
	return _mm512_fnmadd_ps(a, b, c);
}
static inline vf vf_sqrt(vf a)
{
	return _mm512_sqrt_ps(a);
}
/* x86 semantics: a < b ? a : b, so a NaN in b comes through, one in a does not. */
static inline vf vf_min(vf a, vf b)
{
	return _mm512_min_ps(a, b);
}
static inline vf vf_max(vf a, vf b)
{
	return _mm512_max_ps(a, b);
}
static inline vf vf_and(vf a, vf b)
{
	return _mm512_and_ps(a, b);
}
static inline vf vf_or(vf a, vf b)
{
	return _mm512_or_ps(a, b);
}
static inline vf vf_xor(vf a, vf b)
{
	return _mm512_xor_ps(a, b);
}
static inline vf vf_andnot(vf a, vf b)
{
	return _mm512_andnot_ps(a, b);
}
static inline vm vf_lt(vf a, vf b)
{
	return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ);
}
static inline vm vf_le(vf a, vf b)
{
	return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ);
}
static inline vm vf_gt(vf a, vf b)
{
	return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ);
}
static inline vm vf_ge(vf a, vf b)
{
	return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ);
}
static inline vm vf_eq(vf a, vf b)
{
	return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ);
}
static inline vm vf_isnan(vf a)
{
	return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
}
static inline vf vf_sel(vm m, vf a, vf b)
{
	return _mm512_mask_blend_ps(m, b, a);
}
static inline vm m_or(vm a, vm b)
{
	return (vm)(a | b);
}
static inline vm m_and(vm a, vm b)
{
	return (vm)(a & b);
}
static inline vm m_andnot(vm a, vm b)
{
	return (vm)(~a & b);
}
static inline int m_any(vm m)
{
	return m != 0;
}
static inline unsigned m_bits(vm m)
{
	return (unsigned)m;
}

/* 32-bit integer lanes */
static inline vi vi_set1(int32_t k)
{
	return _mm512_set1_epi32(k);
}
static inline vi vi_add(vi a, vi b)
{
	return _mm512_add_epi32(a, b);
}
static inline vi vi_sub(vi a, vi b)
{
	return _mm512_sub_epi32(a, b);
}
static inline vi vi_and(vi a, vi b)
{
	return _mm512_and_si512(a, b);
}
#define vi_slli(a, k) _mm512_slli_epi32((a), (k))
#define vi_srli(a, k) _mm512_srli_epi32((a), (k))
#define vi_srai(a, k) _mm512_srai_epi32((a), (k))
static inline vm vi_eq(vi a, vi b)
{
	return _mm512_cmpeq_epi32_mask(a, b);
}
static inline vm vi_ltu(vi a, vi b)
{
	return _mm512_cmplt_epu32_mask(a, b);
}
static inline vi vi_from_vf(vf a) /* round to nearest */
{
	return _mm512_cvtps_epi32(a);
}
static inline vi vi_from_vf_trunc(vf a)
{
	return _mm512_cvttps_epi32(a);
}
static inline vf vf_from_vi(vi a)
{
	return _mm512_cvtepi32_ps(a);
}
static inline vi vf_as_vi(vf a)
{
	return _mm512_castps_si512(a);
}
static inline vf vi_as_vf(vi a)
{
	return _mm512_castsi512_ps(a);
}

static inline vf vf_rint(vf a)
{
	return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
static inline vf vf_floor(vf a)
{
	return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
}
static inline vf vf_ceil(vf a)
{
	return _mm512_roundscale_ps(a, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC);
}
static inline vf vf_trunc(vf a)
{
	return _mm512_roundscale_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
}
/* p * 2^n with one rounding, n an integral float in [-160, 160]. */
static inline vf vf_ldexp(vf p, vf n)
{
	return _mm512_scalef_ps(p, n);
}

/* Inclusive prefix sum across the lanes. */
static inline vf vf_prefix(vf v)
{
	const __m512i z = _mm512_setzero_si512();
	__m512i x = _mm512_castps_si512(v);
	v = _mm512_add_ps(v, _mm512_castsi512_ps(_mm512_alignr_epi32(x, z, 15)));
	x = _mm512_castps_si512(v);
	v = _mm512_add_ps(v, _mm512_castsi512_ps(_mm512_alignr_epi32(x, z, 14)));
	x = _mm512_castps_si512(v);
	v = _mm512_add_ps(v, _mm512_castsi512_ps(_mm512_alignr_epi32(x, z, 12)));
	x = _mm512_castps_si512(v);
	v = _mm512_add_ps(v, _mm512_castsi512_ps(_mm512_alignr_epi32(x, z, 8)));
	return v;
}
static inline float vf_last(vf v)
{
	return _mm_cvtss_f32(_mm512_extractf32x4_ps(_mm512_permutexvar_ps(_mm512_set1_epi32(15), v), 0));
}
static inline float vf_hmin(vf v)
{
	return _mm512_reduce_min_ps(v);
}
static inline float vf_hmax(vf v)
{
	return _mm512_reduce_max_ps(v);
}

/* doubles */
static inline vd vd_zero(void)
{
	return _mm512_setzero_pd();
}
static inline vd vd_set1(double d)
{
	return _mm512_set1_pd(d);
}
static inline vd vd_add(vd a, vd b)
{
	return _mm512_add_pd(a, b);
}
static inline vd vd_sub(vd a, vd b)
{
	return _mm512_sub_pd(a, b);
}
static inline vd vd_mul(vd a, vd b)
{
	return _mm512_mul_pd(a, b);
}
static inline vd vd_div(vd a, vd b)
{
	return _mm512_div_pd(a, b);
}
static inline vd vd_fmadd(vd a, vd b, vd c)
{
	return _mm512_fmadd_pd(a, b, c);
}
static inline vd vd_min(vd a, vd b)
{
	return _mm512_min_pd(a, b);
}
static inline vd vd_max(vd a, vd b)
{
	return _mm512_max_pd(a, b);
}
static inline vd vd_abs(vd a)
{
	return _mm512_abs_pd(a);
}
static inline vdm vd_lt(vd a, vd b)
{
	return _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ);
}
static inline vd vd_sel(vdm m, vd a, vd b)
{
	return _mm512_mask_blend_pd(m, b, a);
}
static inline vd vd_rint(vd a)
{
	return _mm512_roundscale_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
/* a * 2^n, n integral, result normal */
static inline vd vd_ldexp(vd a, vd n)
{
	return _mm512_scalef_pd(a, n);
}
static inline vd vf_widen_lo(vf a)
{
	return _mm512_cvtps_pd(_mm512_castps512_ps256(a));
}
static inline vd vf_widen_hi(vf a)
{
	return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
}
static inline vf vf_from_vd2(vd lo, vd hi)
{
	__m256 l = _mm512_cvtpd_ps(lo), h = _mm512_cvtpd_ps(hi);
	return _mm512_insertf32x8(_mm512_castps256_ps512(l), h, 1);
}
static inline double vd_hsum(vd a)
{
	return _mm512_reduce_add_pd(a);
}

#endif /* CCK_SIMD_AVX512_H */
