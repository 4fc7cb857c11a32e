/* SPDX-License-Identifier: MIT */
/* simd_avx2.h: the vector vocabulary of kern_simd.inc, spelled in AVX2 + FMA. */
#ifndef CCK_SIMD_AVX2_H
#define CCK_SIMD_AVX2_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define VW 8  /* floats per vector */
#define VDW 4 /* doubles per vector */
#define TIER(name) name##_avx2
#define TIER_NAME "avx2"
#define TIER_HAS_FMA 1

typedef __m256 vf;
typedef __m256d vd;
typedef __m256i vi;
typedef __m256 vm; /* all-ones / all-zeros per lane */
typedef __m256d vdm;

static inline vf vf_loadu(const float *p)
{
	return _mm256_loadu_ps(p);
}
static inline void vf_storeu(float *p, vf v)
{
	_mm256_storeu_ps(p, v);
}
static inline void vf_stream(float *p, vf v)
{
	_mm256_stream_ps(p, v);
}
static inline vm m_first(size_t n)
{
	const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	int k = n >= VW ? VW : (int)n;
	return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(k), idx));
}
/* Partial vectors go through a stack buffer so no byte past p[n-1] is read. */
static inline vf vf_load_n(const float *p, size_t n)
{
	float b[VW] = {0};
	memcpy(b, p, n * sizeof(float));
	return _mm256_loadu_ps(b);
}
static inline void vf_store_n(float *p, vf v, size_t n)
{
	float b[VW];
	_mm256_storeu_ps(b, v);
	memcpy(p, b, n * sizeof(float));
}
static inline vf vf_set1(float f)
{
	return _mm256_set1_ps(f);
}
static inline vf vf_zero(void)
{
	return _mm256_setzero_ps();
}
static inline vf vf_add(vf a, vf b)
{
	return _mm256_add_ps(a, b);
}
static inline vf vf_sub(vf a, vf b)
{
	return _mm256_sub_ps(a, b);
}
static inline vf vf_mul(vf a, vf b)
{
	return _mm256_mul_ps(a, b);
}
static inline vf vf_div(vf a, vf b)
{
	return _mm256_div_ps(a, b);
}
static inline vf vf_rcp(vf d) /* exact: rcp_ps + one step would give only ~22 bits */
{
	return _mm256_div_ps(_mm256_set1_ps(1.0f), d);
}
static inline vf vf_fmadd(vf a, vf b, vf c)
{
	return _mm256_fmadd_ps(a, b, c);
}
static inline vf vf_fnmadd(vf a, vf b, vf c)
{
	return _mm256_fnmadd_ps(a, b, c);
}
static inline vf vf_sqrt(vf a)
{
	return _mm256_sqrt_ps(a);
}
static inline vf vf_min(vf a, vf b)
{
	return _mm256_min_ps(a, b);
}
static inline vf vf_max(vf a, vf b)
{
	return _mm256_max_ps(a, b);
}
static inline vf vf_and(vf a, vf b)
{
	return _mm256_and_ps(a, b);
}
static inline vf vf_or(vf a, vf b)
{
	return _mm256_or_ps(a, b);
}
static inline vf vf_xor(vf a, vf b)
{
	return _mm256_xor_ps(a, b);
}
static inline vf vf_andnot(vf a, vf b)
{
	return _mm256_andnot_ps(a, b);
}
static inline vm vf_lt(vf a, vf b)
{
	return _mm256_cmp_ps(a, b, _CMP_LT_OQ);
}
static inline vm vf_le(vf a, vf b)
{
	return _mm256_cmp_ps(a, b, _CMP_LE_OQ);
}
static inline vm vf_gt(vf a, vf b)
{
	return _mm256_cmp_ps(a, b, _CMP_GT_OQ);
}
static inline vm vf_ge(vf a, vf b)
{
	return _mm256_cmp_ps(a, b, _CMP_GE_OQ);
}
static inline vm vf_eq(vf a, vf b)
{
	return _mm256_cmp_ps(a, b, _CMP_EQ_OQ);
}
static inline vm vf_isnan(vf a)
{
	return _mm256_cmp_ps(a, a, _CMP_UNORD_Q);
}
static inline vf vf_sel(vm m, vf a, vf b)
{
	return _mm256_blendv_ps(b, a, m);
}
static inline vm m_or(vm a, vm b)
{
	return _mm256_or_ps(a, b);
}
static inline vm m_and(vm a, vm b)
{
	return _mm256_and_ps(a, b);
}
static inline vm m_andnot(vm a, vm b)
{
	return _mm256_andnot_ps(a, b);
}
static inline int m_any(vm m)
{
	return _mm256_movemask_ps(m) != 0;
}
static inline unsigned m_bits(vm m)
{
	return (unsigned)_mm256_movemask_ps(m);
}

static inline vi vi_set1(int32_t k)
{
	return _mm256_set1_epi32(k);
}
static inline vi vi_add(vi a, vi b)
{
	return _mm256_add_epi32(a, b);
}
static inline vi vi_sub(vi a, vi b)
{
	return _mm256_sub_epi32(a, b);
}
static inline vi vi_and(vi a, vi b)
{
	return _mm256_and_si256(a, b);
}
#define vi_slli(a, k) _mm256_slli_epi32((a), (k))
#define vi_srli(a, k) _mm256_srli_epi32((a), (k))
#define vi_srai(a, k) _mm256_srai_epi32((a), (k))
static inline vm vi_eq(vi a, vi b)
{
	return _mm256_castsi256_ps(_mm256_cmpeq_epi32(a, b));
}
static inline vm vi_ltu(vi a, vi b) /* unsigned a < b */
{
	const __m256i s = _mm256_set1_epi32((int32_t)0x80000000u);
	return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_xor_si256(b, s), _mm256_xor_si256(a, s)));
}
static inline vi vi_from_vf(vf a)
{
	return _mm256_cvtps_epi32(a);
}
static inline vi vi_from_vf_trunc(vf a)
{
	return _mm256_cvttps_epi32(a);
}
static inline vf vf_from_vi(vi a)
{
	return _mm256_cvtepi32_ps(a);
}
static inline vi vf_as_vi(vf a)
{
	return _mm256_castps_si256(a);
}
static inline vf vi_as_vf(vi a)
{
	return _mm256_castsi256_ps(a);
}

static inline vf vf_rint(vf a)
{
	return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
static inline vf vf_floor(vf a)
{
	return _mm256_round_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
}
static inline vf vf_ceil(vf a)
{
	return _mm256_round_ps(a, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC);
}
static inline vf vf_trunc(vf a)
{
	return _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
}
/*
 * p * 2^n with one rounding, n an integral float in [-160, 160]: split into
 * two normal powers so that denormal results are rounded once, at the end.
 */
static inline vf vf_ldexp(vf p, vf n)
{
	__m256i k = _mm256_cvtps_epi32(n);
	__m256i k1 = _mm256_srai_epi32(k, 1);
	__m256i k2 = _mm256_sub_epi32(k, k1);
	__m256i b = _mm256_set1_epi32(127);
	vf f1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, b), 23));
	vf f2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, b), 23));
	return _mm256_mul_ps(_mm256_mul_ps(p, f1), f2);
}

static inline vf vf_prefix(vf v)
{
	v = _mm256_add_ps(v, _mm256_castsi256_ps(_mm256_slli_si256(_mm256_castps_si256(v), 4)));
	v = _mm256_add_ps(v, _mm256_castsi256_ps(_mm256_slli_si256(_mm256_castps_si256(v), 8)));
	vf t = _mm256_shuffle_ps(v, v, 0xff);
	t = _mm256_permute2f128_ps(t, t, 0x08);
	return _mm256_add_ps(v, t);
}
static inline float vf_last(vf v)
{
	__m128 h = _mm256_extractf128_ps(v, 1);
	return _mm_cvtss_f32(_mm_shuffle_ps(h, h, 0xff));
}
static inline float vf_hmin(vf v)
{
	__m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	m = _mm_min_ps(m, _mm_movehl_ps(m, m));
	m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
	return _mm_cvtss_f32(m);
}
static inline float vf_hmax(vf v)
{
	__m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	m = _mm_max_ps(m, _mm_movehl_ps(m, m));
	m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
	return _mm_cvtss_f32(m);
}

static inline vd vd_zero(void)
{
	return _mm256_setzero_pd();
}
static inline vd vd_set1(double d)
{
	return _mm256_set1_pd(d);
}
static inline vd vd_add(vd a, vd b)
{
	return _mm256_add_pd(a, b);
}
static inline vd vd_sub(vd a, vd b)
{
	return _mm256_sub_pd(a, b);
}
static inline vd vd_mul(vd a, vd b)
{
	return _mm256_mul_pd(a, b);
}
static inline vd vd_div(vd a, vd b)
{
	return _mm256_div_pd(a, b);
}
static inline vd vd_fmadd(vd a, vd b, vd c)
{
	return _mm256_fmadd_pd(a, b, c);
}
static inline vd vd_min(vd a, vd b)
{
	return _mm256_min_pd(a, b);
}
static inline vd vd_max(vd a, vd b)
{
	return _mm256_max_pd(a, b);
}
static inline vd vd_abs(vd a)
{
	return _mm256_andnot_pd(_mm256_set1_pd(-0.0), a);
}
static inline vdm vd_lt(vd a, vd b)
{
	return _mm256_cmp_pd(a, b, _CMP_LT_OQ);
}
static inline vd vd_sel(vdm m, vd a, vd b)
{
	return _mm256_blendv_pd(b, a, m);
}
static inline vd vd_rint(vd a)
{
	return _mm256_round_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
/* a * 2^n for integral n in [-1022, 1023], built in the exponent field. */
static inline vd vd_ldexp(vd a, vd n)
{
	const __m256d magic = _mm256_set1_pd(6755399441055744.0); /* 1.5 * 2^52 */
	__m256i k = _mm256_castpd_si256(_mm256_add_pd(n, magic));
	k = _mm256_slli_epi64(_mm256_add_epi64(k, _mm256_set1_epi64x(1023)), 52);
	return _mm256_mul_pd(a, _mm256_castsi256_pd(k));
}
static inline vd vf_widen_lo(vf a)
{
	return _mm256_cvtps_pd(_mm256_castps256_ps128(a));
}
static inline vd vf_widen_hi(vf a)
{
	return _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1));
}
static inline vf vf_from_vd2(vd lo, vd hi)
{
	return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(lo)), _mm256_cvtpd_ps(hi), 1);
}
static inline double vd_hsum(vd a)
{
	__m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
	return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

#endif /* CCK_SIMD_AVX2_H */
