/* SPDX-License-Identifier: MIT */
/* matmul.c: the public matvec/matmul entry points: argument checks, tier choice and the split across the pool. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "cck_internal.h"

/*
 * Thresholds for using the pool, in multiply-adds (m * k * n for matmul,
 * rows * cols for matvec), and the least work a part gets. Measured on a
 * 2-core Zen 4 (AVX-512 tier, pool already warm, best of several runs) by
 * timing 1 vs 2 threads over shapes around the crossover:
 *
 *  - matmul: cubes and flat shapes (m or n = 16..64) alike break even near
 *    m * k * n = 96^3 (~0.9M) and gain 1.5x by ~192^3; the parts only pay
 *    once each has ~256K multiply-adds (tens of microseconds against a wake
 *    -up of a few), so split from 512K and give each part at least 256K.
 *  - matvec (memory-bound): with A in L2 two threads break even at ~64K
 *    elements (256 KiB) and win 1.6x from 256K; split from 128K elements,
 *    at least 64K per part.
 */
#define MATMUL_MT_MIN ((size_t)512 * 1024)
#define MATMUL_PART_MIN ((size_t)256 * 1024)
#define MATVEC_MT_MIN ((size_t)128 * 1024)
#define MATVEC_PART_MIN ((size_t)64 * 1024)

/*
 * Slices start at multiples of these: 16 floats is a cache line, so slices of
 * C (if it is line-aligned) and of y never share one. Finer than a register
 * tile on purpose: a slice ending mid-tile only costs one edge tile, while
 * coarse rounding unbalances the parts (1024 rows in steps of 48 split
 * 528 + 496, 6% idle).
 */
#define MATMUL_COL_ALIGN 16
#define MATMUL_ROW_ALIGN 8
#define MATVEC_ROW_ALIGN 16

/*
 * Whether an array of a * b floats can exist: the product, and its size in
 * bytes, fit in size_t. Sets *ret = a * b when it does.
 */
static int mul_ok(size_t a, size_t b, size_t *ret)
{
	size_t lim = SIZE_MAX / sizeof(float);

	if (a > lim || b > lim || (a && b > lim / a))
		return 0;
	*ret = a * b;
	return 1;
}

/* Number of parts for a job of work, spread over len items in steps of align. */
static int parts_for(size_t work, size_t mt_min, size_t part_min, size_t len, size_t align)
{
	size_t nt = (size_t)cck__pool_threads();

	if (nt <= 1 || work < mt_min)
		return 1;
	if (nt > work / part_min)
		nt = work / part_min;
	if (nt > (len + align - 1) / align)
		nt = (len + align - 1) / align;
	return nt < 1 ? 1 : (int)nt;
}

/*
 * First item of part i of nt over len items: the len / align units (the last
 * possibly short) are dealt out as evenly as possible.
 */
static size_t part_start(size_t len, size_t align, int i, int nt)
{
	size_t units = (len + align - 1) / align, ui = (size_t)i, un = (size_t)nt;
	/* floor(units * i / nt) without overflowing units * i */
	size_t lo = (units / un * ui + units % un * ui / un) * align;

	return lo < len ? lo : len;
}

struct matvec_job {
	const struct cck__tier_ops *ops;
	const float *A, *x;
	float *y;
	size_t rows, cols;
};

static void matvec_part(void *arg, int i, int nt)
{
	const struct matvec_job *j = arg;
	size_t lo = part_start(j->rows, MATVEC_ROW_ALIGN, i, nt);
	size_t hi = part_start(j->rows, MATVEC_ROW_ALIGN, i + 1, nt);

	if (hi > lo)
		j->ops->matvec(j->A + lo * j->cols, j->cols, j->x, j->y + lo, hi - lo, j->cols);
}

/* Contract in cck.h. Row blocks go to the pool when A is large. */
CCK_EXPORT int cck_matvec_f32(const float *A, const float *x, float *y, size_t rows, size_t cols)
{
	struct matvec_job job;
	size_t size;
	int nt;

	/* An empty y is a no-op whatever the pointers; a pointer to a non-empty array must not be NULL. */
	if (!mul_ok(rows, cols, &size))
		return -EINVAL;
	if (rows == 0)
		return 0;
	if (!y || (cols && (!A || !x)))
		return -EINVAL;
	if (cols == 0) {
		memset(y, 0, rows * sizeof(float));
		return 0;
	}
	job.ops = cck__ops_for(CCK_OP_MATVEC);
	job.A = A;
	job.x = x;
	job.y = y;
	job.rows = rows;
	job.cols = cols;
	nt = parts_for(size, MATVEC_MT_MIN, MATVEC_PART_MIN, rows, MATVEC_ROW_ALIGN);
	if (nt <= 1)
		job.ops->matvec(A, cols, x, y, rows, cols);
	else
		cck__pool_run(nt, matvec_part, &job);
	return 0;
}

struct matmul_job {
	const struct cck__tier_ops *ops;
	const float *A, *B;
	float *C;
	size_t m, k, n;
	int by_cols;
};

static void matmul_part(void *arg, int i, int nt)
{
	const struct matmul_job *j = arg;
	size_t lo, hi;

	if (j->by_cols) {
		lo = part_start(j->n, MATMUL_COL_ALIGN, i, nt);
		hi = part_start(j->n, MATMUL_COL_ALIGN, i + 1, nt);
		if (hi > lo)
			j->ops->gemm(j->A, j->k, j->B + lo, j->n, j->C + lo, j->n, j->m, j->k, hi - lo);
	} else {
		lo = part_start(j->m, MATMUL_ROW_ALIGN, i, nt);
		hi = part_start(j->m, MATMUL_ROW_ALIGN, i + 1, nt);
		if (hi > lo)
			j->ops->gemm(j->A + lo * j->k, j->k, j->B, j->n, j->C + lo * j->n, j->n, hi - lo, j->k,
				     j->n);
	}
}

/*
 * Contract in cck.h. Large products are cut into blocks of C, one per pool
 * thread, each computed by the tier's single-threaded gemm. Each part packs
 * the whole of the operand it shares with the others (B for row blocks, A for
 * column blocks), so the cut runs along the longer of m and n: the shared
 * operand is then the smaller one and its repeated packing costs least.
 */
CCK_EXPORT int cck_matmul_f32(const float *A, const float *B, float *C, size_t m, size_t k, size_t n)
{
	struct matmul_job job;
	size_t sa, sb, sc, work, i;
	int nt;

	/* An empty C is a no-op whatever the pointers; a pointer to a non-empty array must not be NULL. */
	if (!mul_ok(m, k, &sa) || !mul_ok(k, n, &sb) || !mul_ok(m, n, &sc))
		return -EINVAL;
	if (sc == 0)
		return 0;
	if (!C || (k && (!A || !B)))
		return -EINVAL;
	if (k == 0) {
		for (i = 0; i < m; i++)
			memset(C + i * n, 0, n * sizeof(float));
		return 0;
	}
	job.ops = cck__ops_for(CCK_OP_MATMUL);
	job.A = A;
	job.B = B;
	job.C = C;
	job.m = m;
	job.k = k;
	job.n = n;
	job.by_cols = n > m;
	/* m * k * n may overflow where each pair does not: saturate. */
	work = sa > SIZE_MAX / n ? SIZE_MAX : sa * n;
	nt = parts_for(work, MATMUL_MT_MIN, MATMUL_PART_MIN, job.by_cols ? n : m,
		       job.by_cols ? MATMUL_COL_ALIGN : MATMUL_ROW_ALIGN);
	if (nt <= 1)
		job.ops->gemm(A, k, B, n, C, n, m, k, n);
	else
		cck__pool_run(nt, matmul_part, &job);
	return 0;
}
