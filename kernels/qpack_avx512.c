/* SPDX-License-Identifier: MIT */
/* qpack_avx512.c: the packed q4_1 and q8_0 kernels (quant.h) with AVX512-VNNI: one row per lane, the packed order. */
#include "config.h"

#include <immintrin.h>
#include <stdint.h>

#include "cck_internal.h"
#include "quant.h"

#define VNNI __attribute__((target("avx512vnni")))

/*
 * How far ahead the kernels prefetch the weights, in bytes (whole blocks). A thread's rows are one sequential stream,
 * but a short one (a matrix of a small model is split in chunks of a few tens of KB), which the hardware prefetchers
 * pick up late: without this, single-token decoding of SmolLM2 (q4_1) ran 7% slower packed than row-major.
 */
#define PF_BYTES (8 * (int)sizeof(struct cck_block_q4_1x16))
#define PF_BYTES8 (8 * (int)sizeof(struct cck_block_q8_0x16))

/* 4 bytes of an activation block, read in place (broadcast straight from memory). */
typedef int32_t qp_i32u __attribute__((may_alias, aligned(1)));

/*
 * One block's integer dot per row (lane): the 8 vectors of its weights (unsigned, 4 bytes of each row) times the
 * column's 32 bytes, 4 at a time broadcast, in two chains of 4 dpbusd (integer: the order is free).
 */
VNNI static inline __attribute__((always_inline)) __m512i qp_dot8(const __m512i q[8], const qp_i32u *w)
{
	__m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[0], _mm512_set1_epi32(w[0]));
	__m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[4], _mm512_set1_epi32(w[4]));

	s0 = _mm512_dpbusd_epi32(s0, q[1], _mm512_set1_epi32(w[1]));
	s1 = _mm512_dpbusd_epi32(s1, q[5], _mm512_set1_epi32(w[5]));
	s0 = _mm512_dpbusd_epi32(s0, q[2], _mm512_set1_epi32(w[2]));
	s1 = _mm512_dpbusd_epi32(s1, q[6], _mm512_set1_epi32(w[6]));
	s0 = _mm512_dpbusd_epi32(s0, q[3], _mm512_set1_epi32(w[3]));
	s1 = _mm512_dpbusd_epi32(s1, q[7], _mm512_set1_epi32(w[7]));
	return _mm512_add_epi32(s0, s1);
}

/*
 * q4_1, columns c0 .. c0 + C - 1 of one group (C <= 8, a constant where inlined). Per block: the group's 4 vectors of
 * quants give 8 of nibbles, and each column's block sum per row is qp_dot8 of them. Then, as the portable kernel:
 * acc = fma(isum, d_w * d_x, acc); acc = fma(m_w, s_x, acc).
 */
VNNI static inline __attribute__((always_inline)) void group_cols(size_t nb, const struct cck_block_q4_1x16 *blk,
                                                                 const char *act, size_t act_stride, const float *ds,
                                                                 size_t C, float *y, size_t y_stride)
{
	const __m512i m4 = _mm512_set1_epi8(15);
	__m512 acc[8];

#pragma GCC unroll 8
	for (size_t c = 0; c < C; c++)
		acc[c] = _mm512_setzero_ps();
	for (size_t b = 0; b < nb; b++) {
		const struct cck_block_q4_1x16 *x = &blk[b];
		const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)x->d));
		const __m512 mw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)x->m));
		__m512i q[8]; /* q[j]: elements 4 j .. 4 j + 3 of every row (low nibbles), q[4 + j]: 16 + 4 j .. (high) */

#pragma GCC unroll 5
		for (int l = 0; l < 5; l++) /* the block PF_BYTES ahead, its 5 lines: this group's, or the next group's */
			_mm_prefetch((const char *)x + PF_BYTES + 64 * l, _MM_HINT_T0);
#pragma GCC unroll 4
		for (int j = 0; j < 4; j++) {
			const __m512i p = _mm512_loadu_si512(x->qs[j]);

			q[j] = _mm512_and_si512(p, m4);
			q[4 + j] = _mm512_and_si512(_mm512_srli_epi16(p, 4), m4);
		}
#pragma GCC unroll 8
		for (size_t c = 0; c < C; c++) {
			const struct cck_block_q8_1 *a = (const void *)(act + c * act_stride);
			const qp_i32u *w = (const qp_i32u *)(const void *)a[b].qs;
			const float *f = ds + 2 * (c * nb + b);

			acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(qp_dot8(q, w)), _mm512_mul_ps(dw, _mm512_set1_ps(f[0])),
			                         acc[c]);
			acc[c] = _mm512_fmadd_ps(mw, _mm512_set1_ps(f[1]), acc[c]);
		}
	}
#pragma GCC unroll 8
	for (size_t c = 0; c < C; c++)
		_mm512_storeu_ps(y + c * y_stride, acc[c]);
}

/*
 * q8_0, columns c0 .. c0 + C - 1 of one group: qp_dot8 of the 8 vectors of a block's quants (stored + 128, unsigned)
 * and each column's bytes; the raw sum minus 128 times the column block's sum (both exact
 * integers under 2^24, so the float subtraction is exact) is the block's integer dot; acc = fma(it, d_w * d_x, acc).
 */
VNNI static inline __attribute__((always_inline)) void group_cols_q8_0(size_t nb, const struct cck_block_q8_0x16 *blk,
                                                                      const char *act, size_t act_stride,
                                                                      const float *ds, size_t C, float *y,
                                                                      size_t y_stride)
{
	__m512 acc[8];

#pragma GCC unroll 8
	for (size_t c = 0; c < C; c++)
		acc[c] = _mm512_setzero_ps();
	for (size_t b = 0; b < nb; b++) {
		const struct cck_block_q8_0x16 *x = &blk[b];
		const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)x->d));
		__m512i q[8];

#pragma GCC unroll 9
		for (int l = 0; l < 9; l++) /* the block PF_BYTES8 ahead, its 9 lines (544 bytes) */
			_mm_prefetch((const char *)x + PF_BYTES8 + 64 * l, _MM_HINT_T0);
#pragma GCC unroll 8
		for (int k = 0; k < 8; k++)
			q[k] = _mm512_loadu_si512(x->qs[k]);
#pragma GCC unroll 8
		for (size_t c = 0; c < C; c++) {
			const struct cck_block_q8_0 *a = (const void *)(act + c * act_stride);
			const qp_i32u *w = (const qp_i32u *)(const void *)a[b].qs;
			const float *f = ds + 2 * (c * nb + b);

			acc[c] = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(qp_dot8(q, w)), _mm512_set1_ps(f[1])),
			                         _mm512_mul_ps(dw, _mm512_set1_ps(f[0])), acc[c]);
		}
	}
#pragma GCC unroll 8
	for (size_t c = 0; c < C; c++)
		_mm512_storeu_ps(y + c * y_stride, acc[c]);
}

/*
 * The exported kernel NAME (quant.h's pmm) over the groups, 8 columns at a time, with COLS (one group, up to 8 columns
 * of blocks BLK) inlined for the common widths, C a constant (the accumulators stay in registers).
 */
#define QP_DEFINE_PMM(NAME, BLK, COLS)                                                                                 \
	VNNI static void NAME##_upto8(size_t nb, const BLK *blk, const char *act, size_t act_stride, const float *ds,  \
	                              size_t C, float *y, size_t y_stride)                                             \
	{                                                                                                              \
		switch (C) {                                                                                           \
		case 1:                                                                                                \
			COLS(nb, blk, act, act_stride, ds, 1, y, y_stride);                                            \
			break;                                                                                         \
		case 2:                                                                                                \
			COLS(nb, blk, act, act_stride, ds, 2, y, y_stride);                                            \
			break;                                                                                         \
		case 4:                                                                                                \
			COLS(nb, blk, act, act_stride, ds, 4, y, y_stride);                                            \
			break;                                                                                         \
		case 8:                                                                                                \
			COLS(nb, blk, act, act_stride, ds, 8, y, y_stride);                                            \
			break;                                                                                         \
		default:                                                                                               \
			COLS(nb, blk, act, act_stride, ds, C, y, y_stride);                                            \
			break;                                                                                         \
		}                                                                                                      \
	}                                                                                                              \
	VNNI void NAME(size_t nb, const void *W, size_t groups, const void *act, size_t act_stride, const float *ds,   \
	               size_t cols, float *y, size_t y_stride)                                                         \
	{                                                                                                              \
		const BLK *blk = W;                                                                                    \
                                                                                                                       \
		for (size_t g = 0; g < groups; g++, blk += nb)                                                         \
			for (size_t c = 0; c < cols; c += 8)                                                           \
				NAME##_upto8(nb, blk, (const char *)act + c * act_stride, act_stride, ds + 2 * c * nb, \
				             cols - c < 8 ? cols - c : 8, y + c * y_stride + g * 16, y_stride);        \
	}

QP_DEFINE_PMM(cck__pmm_q4_1_avx512vnni, struct cck_block_q4_1x16, group_cols)
QP_DEFINE_PMM(cck__pmm_q8_0_avx512vnni, struct cck_block_q8_0x16, group_cols_q8_0)
