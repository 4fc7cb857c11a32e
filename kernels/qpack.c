/* SPDX-License-Identifier: MIT */
/* qpack.c: packed matrices (groups of 16 rows interleaved, cck.h): the layout, the portable kernel, the choice. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cck_internal.h"
#include "quant.h"

/*
 * The packed order in portable C (fmaf: one rounding, as the vector fma). Per row and column: acc = 0; for each block
 * b: acc = fma((float)isum_b, d_w * d_x, acc); acc = fma(m_w, s_x, acc). isum_b is exact (at most 15 * 127 * 32).
 */
static void pmm_q4_1_scalar(size_t nb, const void *W, size_t groups, const void *act, size_t act_stride,
                            const float *ds, size_t cols, float *y, size_t y_stride)
{
	const struct cck_block_q4_1x16 *blk = W;

	for (size_t g = 0; g < groups; g++, blk += nb)
		for (size_t c = 0; c < cols; c++) {
			const struct cck_block_q8_1 *a = (const void *)((const char *)act + c * act_stride);
			const float *f = ds + 2 * c * nb;

			for (int r = 0; r < CCK_PACK_ROWS; r++) {
				float acc = 0.0f;

				for (size_t b = 0; b < nb; b++) {
					const struct cck_block_q4_1x16 *x = &blk[b];
					int32_t s = 0;

					for (int j = 0; j < 4; j++)
						for (int i = 0; i < 4; i++) {
							s += (x->qs[j][r][i] & 15) * a[b].qs[4 * j + i];
							s += (x->qs[j][r][i] >> 4) * a[b].qs[16 + 4 * j + i];
						}
					acc = fmaf((float)s, cck__f16_to_f32(x->d[r]) * f[2 * b], acc);
					acc = fmaf(cck__f16_to_f32(x->m[r]), f[2 * b + 1], acc);
				}
				y[c * y_stride + g * CCK_PACK_ROWS + r] = acc;
			}
		}
}

/* q8_0, the same way: acc = fma((float)isum_b, d_w * d_x, acc) (the stored quants are the weights + 128). */
static void pmm_q8_0_scalar(size_t nb, const void *W, size_t groups, const void *act, size_t act_stride,
                            const float *ds, size_t cols, float *y, size_t y_stride)
{
	const struct cck_block_q8_0x16 *blk = W;

	for (size_t g = 0; g < groups; g++, blk += nb)
		for (size_t c = 0; c < cols; c++) {
			const struct cck_block_q8_0 *a = (const void *)((const char *)act + c * act_stride);
			const float *f = ds + 2 * c * nb;

			for (int r = 0; r < CCK_PACK_ROWS; r++) {
				float acc = 0.0f;

				for (size_t b = 0; b < nb; b++) {
					const struct cck_block_q8_0x16 *x = &blk[b];
					int32_t s = 0;

					for (int k = 0; k < 8; k++)
						for (int i = 0; i < 4; i++)
							s += ((int32_t)x->qs[k][r][i] - 128) * a[b].qs[4 * k + i];
					acc = fmaf((float)s, cck__f16_to_f32(x->d[r]) * f[2 * b], acc);
				}
				y[c * y_stride + g * CCK_PACK_ROWS + r] = acc;
			}
		}
}

/* The vector kernel this host may use now for type, or NULL. */
static cck__pmm_fn pmm_fast(int type)
{
#ifdef CCK_HAVE_X86
	if (cck__tier_cap() >= CCK_TIER_AVX512 && cck__cpu_has_avx512vnni()) {
		if (type == CCK_TYPE_Q4_1)
			return cck__pmm_q4_1_avx512vnni;
		if (type == CCK_TYPE_Q8_0)
			return cck__pmm_q8_0_avx512vnni;
	}
#else
	(void)type;
#endif
	return NULL;
}

cck__pmm_fn cck__pmm_pick(int type)
{
	cck__pmm_fn f = pmm_fast(type);

	if (f)
		return f;
	return type == CCK_TYPE_Q4_1 ? pmm_q4_1_scalar : type == CCK_TYPE_Q8_0 ? pmm_q8_0_scalar : NULL;
}

/* Whether type has a packed layout (and kernels). */
static int packable(int type)
{
	return type == CCK_TYPE_Q4_1 || type == CCK_TYPE_Q8_0;
}

CCK_EXPORT int cck_qpack_supported(int type)
{
	return pmm_fast(type) != NULL;
}

/* Arguments of cck_qpack / cck_qunpack: 0, or the error; *rb: the row bytes. */
static int pack_args(int type, const void *a, const void *b, size_t rows, size_t cols, size_t *rb)
{
	int rc;

	if (!packable(type))
		return cck_type_row_bytes(type, cols, rb) ? -EINVAL : -ENOTSUP;
	if (!a || !b || rows % CCK_PACK_ROWS || cols % CCK_QK || cols == 0)
		return -EINVAL;
	rc = cck_type_row_bytes(type, cols, rb);
	if (rc)
		return rc;
	if (rows > SIZE_MAX / 2 / *rb)
		return -EOVERFLOW;
	return 0;
}

/*
 * Rows r0 .. r1 - 1 of one group of q8_0, row-major (the first at rowm, rb apart), into the packed group pk, or back
 * (unpack). A whole group is 0 .. 16; one row alone, r .. r + 1.
 */
static void q8_0_group(size_t nb, struct cck_block_q8_0 *rowm, size_t rb, struct cck_block_q8_0x16 *pk, int unpack,
                       int r0, int r1)
{
	for (int r = r0; r < r1; r++) {
		struct cck_block_q8_0 *row = (void *)((char *)rowm + (size_t)(r - r0) * rb);

		for (size_t b = 0; b < nb; b++) {
			struct cck_block_q8_0x16 *x = &pk[b];

			if (unpack)
				row[b].d = x->d[r];
			else
				x->d[r] = row[b].d;
			for (int k = 0; k < 8; k++)
				for (int i = 0; i < 4; i++) {
					if (unpack)
						row[b].qs[4 * k + i] = (int8_t)(x->qs[k][r][i] ^ 0x80);
					else
						x->qs[k][r][i] = (uint8_t)row[b].qs[4 * k + i] ^ 0x80;
				}
		}
	}
}

/* The same for q4_1. */
static void q4_1_group(size_t nb, struct cck_block_q4_1 *rowm, size_t rb, struct cck_block_q4_1x16 *pk, int unpack,
                       int r0, int r1)
{
	for (int r = r0; r < r1; r++) {
		struct cck_block_q4_1 *row = (void *)((char *)rowm + (size_t)(r - r0) * rb);

		for (size_t b = 0; b < nb; b++) {
			struct cck_block_q4_1x16 *x = &pk[b];

			if (unpack) {
				row[b].d = x->d[r];
				row[b].m = x->m[r];
				for (int j = 0; j < 4; j++)
					memcpy(row[b].qs + 4 * j, x->qs[j][r], 4);
			} else {
				x->d[r] = row[b].d;
				x->m[r] = row[b].m;
				for (int j = 0; j < 4; j++)
					memcpy(x->qs[j][r], row[b].qs + 4 * j, 4);
			}
		}
	}
}

/* Rows r0 .. r1 - 1 of one group of type (row-major from rowm, rb apart), from or into the packed group at pk. */
static void pack_group(int type, size_t nb, void *rowm, size_t rb, void *pk, int unpack, int r0, int r1)
{
	if (type == CCK_TYPE_Q4_1)
		q4_1_group(nb, rowm, rb, pk, unpack, r0, r1);
	else
		q8_0_group(nb, rowm, rb, pk, unpack, r0, r1);
}

CCK_EXPORT int cck_qpack(int type, void *W, size_t rows, size_t cols)
{
	size_t rb, nb = cols / CCK_QK;
	char *tmp;
	int rc = pack_args(type, W, W, rows, cols, &rb);

	if (rc)
		return rc;
	tmp = malloc(CCK_PACK_ROWS * rb);
	if (!tmp)
		return -ENOMEM;
	for (size_t g = 0; g < rows / CCK_PACK_ROWS; g++) {
		char *grp = (char *)W + g * CCK_PACK_ROWS * rb;

		memcpy(tmp, grp, CCK_PACK_ROWS * rb);
		pack_group(type, nb, tmp, rb, grp, 0, 0, CCK_PACK_ROWS);
	}
	free(tmp);
	return 0;
}

CCK_EXPORT int cck_qpacked_row(int type, const void *P, size_t rows, size_t cols, size_t r, void *row)
{
	size_t rb;
	int rc = pack_args(type, P, row, rows, cols, &rb);

	if (rc)
		return rc;
	if (r >= rows)
		return -EINVAL;
	pack_group(type, cols / CCK_QK, row, rb, (char *)(uintptr_t)P + r / CCK_PACK_ROWS * CCK_PACK_ROWS * rb, 1,
	           (int)(r % CCK_PACK_ROWS), (int)(r % CCK_PACK_ROWS) + 1);
	return 0;
}

CCK_EXPORT int cck_qunpack(int type, const void *P, void *W, size_t rows, size_t cols)
{
	size_t rb, nb = cols / CCK_QK;
	int rc = pack_args(type, P, W, rows, cols, &rb);

	if (rc)
		return rc;
	for (size_t g = 0; g < rows / CCK_PACK_ROWS; g++)
		pack_group(type, nb, (char *)W + g * CCK_PACK_ROWS * rb, rb, (char *)(uintptr_t)P + g * CCK_PACK_ROWS * rb, 1,
		           0, CCK_PACK_ROWS);
	return 0;
}
