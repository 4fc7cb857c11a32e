/* SPDX-License-Identifier: MIT */
/* simd_sse2.h: the vector vocabulary of kern_simd.inc, spelled in SSE2 (no FMA, no round). */
#ifndef CCK_SIMD_SSE2_H
#define CCK_SIMD_SSE2_H

#include <emmintrin.h>
#include <stdint.h>
#include <string.h>

#define VW 4  /* floats per vector */
#define VDW 2 /* doubles per vector */
#define TIER(name) name##_sse2
#define TIER_NAME "sse2"
#define TIER_HAS_FMA 0

typedef __m128 vf;
typedef __m128d vd;
typedef __m128i vi;
typedef __m128 vm;
typedef __m128d vdm;

static inline vf vf_loadu(const float *p)
{
	return _mm_loadu_ps(p);
}
static inline void vf_storeu(float *p, vf v)
{
	_mm_storeu_ps(p, v);
}
static inline void vf_stream(float *p, vf v)
{
	_mm_stream_ps(p, v);
}
static inline vm m_first(size_t n)
{
	const __m128i idx = _mm_setr_epi32(0, 1, 2, 3);
	int k = n >= VW ? VW : (int)n;
	return _mm_castsi128_ps(_mm_cmpgt_epi32(_mm_set1_epi32(k), idx));
}
static inline vf vf_load_n(const float *p, size_t n)
{
	float b[VW] = {0};
	memcpy(b, p, n * sizeof(float));
	return _mm_loadu_ps(b);
}
static inline void vf_store_n(float *p, vf v, size_t n)
{
	float b[VW];
	_mm_storeu_ps(b, v);
	memcpy(p, b, n * sizeof(float));
}
static inline vf vf_set1(float f)
{
	return _mm_set1_ps(f);
}
static inline vf vf_zero(void)
{
	return _mm_setzero_ps();
}
static inline vf vf_add(vf a, vf b)
{
	return _mm_add_ps(a, b);
}
static inline vf vf_sub(vf a, vf b)
{
	return _mm_sub_ps(a, b);
}
static inline vf vf_mul(vf a, vf b)
{
	return _mm_mul_ps(a, b);
}
static inline vf vf_div(vf a, vf b)
{
	return _mm_div_ps(a, b);
}
/* No FMA in this tier: two roundings. The algorithms allow for it (TIER_HAS_FMA). */
static inline vf vf_rcp(vf d)
{
	return _mm_div_ps(_mm_set1_ps(1.0f), d);
}
static inline vf vf_fmadd(vf a, vf b, vf c)
{
	return _mm_add_ps(_mm_mul_ps(a, b), c);
}
static inline vf vf_fnmadd(vf a, vf b, vf c)
{
	return _mm_sub_ps(c, _mm_mul_ps(a, b));
}
static inline vf vf_sqrt(vf a)
{
	return _mm_sqrt_ps(a);
}
static inline vf vf_min(vf a, vf b)
{
	return _mm_min_ps(a, b);
}
static inline vf vf_max(vf a, vf b)
{
	return _mm_max_ps(a, b);
}
static inline vf vf_and(vf a, vf b)
{
	return _mm_and_ps(a, b);
}
static inline vf vf_or(vf a, vf b)
{
	return _mm_or_ps(a, b);
}
static inline vf vf_xor(vf a, vf b)
{
	return _mm_xor_ps(a, b);
}
static inline vf vf_andnot(vf a, vf b)
{
	return _mm_andnot_ps(a, b);
}
static inline vm vf_lt(vf a, vf b)
{
	return _mm_cmplt_ps(a, b);
}
static inline vm vf_le(vf a, vf b)
{
	return _mm_cmple_ps(a, b);
}
static inline vm vf_gt(vf a, vf b)
{
	return _mm_cmpgt_ps(a, b);
}
static inline vm vf_ge(vf a, vf b)
{
	return _mm_cmpge_ps(a, b);
}
static inline vm vf_eq(vf a, vf b)
{
	return _mm_cmpeq_ps(a, b);
}
static inline vm vf_isnan(vf a)
{
	return _mm_cmpunord_ps(a, a);
}
static inline vf vf_sel(vm m, vf a, vf b)
{
	return _mm_or_ps(_mm_and_ps(m, a), _mm_andnot_ps(m, b));
}
static inline vm m_or(vm a, vm b)
{
	return _mm_or_ps(a, b);
}
static inline vm m_and(vm a, vm b)
{
	return _mm_and_ps(a, b);
}
static inline vm m_andnot(vm a, vm b)
{
	return _mm_andnot_ps(a, b);
}
static inline int m_any(vm m)
{
	return _mm_movemask_ps(m) != 0;
}
static inline unsigned m_bits(vm m)
{
	return (unsigned)_mm_movemask_ps(m);
}

static inline vi vi_set1(int32_t k)
{
	return _mm_set1_epi32(k);
}
static inline vi vi_add(vi a, vi b)
{
	return _mm_add_epi32(a, b);
}
static inline vi vi_sub(vi a, vi b)
{
	return _mm_sub_epi32(a, b);
}
static inline vi vi_and(vi a, vi b)
{
	return _mm_and_si128(a, b);
}
#define vi_slli(a, k) _mm_slli_epi32((a), (k))
#define vi_srli(a, k) _mm_srli_epi32((a), (k))
#define vi_srai(a, k) _mm_srai_epi32((a), (k))
static inline vm vi_eq(vi a, vi b)
{
	return _mm_castsi128_ps(_mm_cmpeq_epi32(a, b));
}
static inline vm vi_ltu(vi a, vi b) /* unsigned a < b */
{
	const __m128i s = _mm_set1_epi32((int32_t)0x80000000u);
	return _mm_castsi128_ps(_mm_cmpgt_epi32(_mm_xor_si128(b, s), _mm_xor_si128(a, s)));
}
static inline vi vi_from_vf(vf a)
{
	return _mm_cvtps_epi32(a);
}
static inline vi vi_from_vf_trunc(vf a)
{
	return _mm_cvttps_epi32(a);
}
static inline vf vf_from_vi(vi a)
{
	return _mm_cvtepi32_ps(a);
}
static inline vi vf_as_vi(vf a)
{
	return _mm_castps_si128(a);
}
static inline vf vi_as_vf(vi a)
{
	return _mm_castsi128_ps(a);
}

/*
 * SSE2 has no rounding instruction: go through int32 where |a| < 2^23 (larger
 * floats, inf and NaN are already integral or unordered and pass through),
 * and put the sign back so that e.g. trunc(-0.5) is -0 as in libm.
 */
static inline vf t__small(vf a)
{
	return _mm_cmplt_ps(_mm_andnot_ps(_mm_set1_ps(-0.0f), a), _mm_set1_ps(8388608.0f));
}
static inline vf t__signed(vf r, vf a)
{
	return _mm_or_ps(r, _mm_and_ps(a, _mm_set1_ps(-0.0f)));
}
static inline vf vf_trunc(vf a)
{
	vf t = _mm_cvtepi32_ps(_mm_cvttps_epi32(a));
	return vf_sel(t__small(a), t__signed(t, a), a);
}
static inline vf vf_rint(vf a)
{
	vf t = _mm_cvtepi32_ps(_mm_cvtps_epi32(a));
	return vf_sel(t__small(a), t__signed(t, a), a);
}
static inline vf vf_floor(vf a)
{
	vf t = _mm_cvtepi32_ps(_mm_cvttps_epi32(a));
	t = _mm_sub_ps(t, _mm_and_ps(_mm_cmpgt_ps(t, a), _mm_set1_ps(1.0f)));
	return vf_sel(t__small(a), t__signed(t, a), a);
}
static inline vf vf_ceil(vf a)
{
	vf t = _mm_cvtepi32_ps(_mm_cvttps_epi32(a));
	t = _mm_add_ps(t, _mm_and_ps(_mm_cmplt_ps(t, a), _mm_set1_ps(1.0f)));
	return vf_sel(t__small(a), t__signed(t, a), a);
}
static inline vf vf_ldexp(vf p, vf n)
{
	__m128i k = _mm_cvtps_epi32(n);
	__m128i k1 = _mm_srai_epi32(k, 1);
	__m128i k2 = _mm_sub_epi32(k, k1);
	__m128i b = _mm_set1_epi32(127);
	vf f1 = _mm_castsi128_ps(_mm_slli_epi32(_mm_add_epi32(k1, b), 23));
	vf f2 = _mm_castsi128_ps(_mm_slli_epi32(_mm_add_epi32(k2, b), 23));
	return _mm_mul_ps(_mm_mul_ps(p, f1), f2);
}

static inline vf vf_prefix(vf v)
{
	v = _mm_add_ps(v, _mm_castsi128_ps(_mm_slli_si128(_mm_castps_si128(v), 4)));
	return _mm_add_ps(v, _mm_castsi128_ps(_mm_slli_si128(_mm_castps_si128(v), 8)));
}
static inline float vf_last(vf v)
{
	return _mm_cvtss_f32(_mm_shuffle_ps(v, v, 0xff));
}
static inline float vf_hmin(vf m)
{
	m = _mm_min_ps(m, _mm_movehl_ps(m, m));
	m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
	return _mm_cvtss_f32(m);
}
static inline float vf_hmax(vf m)
{
	m = _mm_max_ps(m, _mm_movehl_ps(m, m));
	m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
	return _mm_cvtss_f32(m);
}

static inline vd vd_zero(void)
{
	return _mm_setzero_pd();
}
static inline vd vd_set1(double d)
{
	return _mm_set1_pd(d);
}
static inline vd vd_add(vd a, vd b)
{
	return _mm_add_pd(a, b);
}
static inline vd vd_sub(vd a, vd b)
{
	return _mm_sub_pd(a, b);
}
static inline vd vd_mul(vd a, vd b)
{
	return _mm_mul_pd(a, b);
}
static inline vd vd_div(vd a, vd b)
{
	return _mm_div_pd(a, b);
}
static inline vd vd_fmadd(vd a, vd b, vd c)
{
	return _mm_add_pd(_mm_mul_pd(a, b), c);
}
static inline vd vd_min(vd a, vd b)
{
	return _mm_min_pd(a, b);
}
static inline vd vd_max(vd a, vd b)
{
	return _mm_max_pd(a, b);
}
static inline vd vd_abs(vd a)
{
	return _mm_andnot_pd(_mm_set1_pd(-0.0), a);
}
static inline vdm vd_lt(vd a, vd b)
{
	return _mm_cmplt_pd(a, b);
}
static inline vd vd_sel(vdm m, vd a, vd b)
{
	return _mm_or_pd(_mm_and_pd(m, a), _mm_andnot_pd(m, b));
}
/* Round to nearest for |a| < 2^51 by the 1.5 * 2^52 trick. */
static inline vd vd_rint(vd a)
{
	const __m128d magic = _mm_set1_pd(6755399441055744.0);
	return _mm_sub_pd(_mm_add_pd(a, magic), magic);
}
static inline vd vd_ldexp(vd a, vd n)
{
	const __m128d magic = _mm_set1_pd(6755399441055744.0);
	__m128i k = _mm_castpd_si128(_mm_add_pd(n, magic));
	k = _mm_slli_epi64(_mm_add_epi64(k, _mm_set1_epi64x(1023)), 52);
	return _mm_mul_pd(a, _mm_castsi128_pd(k));
}
static inline vd vf_widen_lo(vf a)
{
	return _mm_cvtps_pd(a);
}
static inline vd vf_widen_hi(vf a)
{
	return _mm_cvtps_pd(_mm_movehl_ps(a, a));
}
static inline vf vf_from_vd2(vd lo, vd hi)
{
	return _mm_movelh_ps(_mm_cvtpd_ps(lo), _mm_cvtpd_ps(hi));
}
static inline double vd_hsum(vd a)
{
	return _mm_cvtsd_f64(_mm_add_sd(a, _mm_unpackhi_pd(a, a)));
}

#endif /* CCK_SIMD_SSE2_H */
