/* SPDX-License-Identifier: MIT */
/* matmul.c: the public matvec/matmul entry points: argument checks, tier choice and the split across the pool. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cck_internal.h"

/*
 * Thresholds for using the pool, in multiply-adds (m * k * n for matmul,
 * rows * cols for matvec), and the least work a part gets. Measured on a
 * 2-core Zen 4 (AVX-512 tier) by timing cck_set_threads(1) against (2) with
 * the split forced on, best of 5 rounds of back-to-back calls ("warm": the
 * worker is still spinning), and with 300 us sleeps between calls ("cold":
 * the worker sleeps in the kernel and the call pays for waking it):
 *
 *  - matmul, warm: break-even at 32^3 (32K), 1.66x at 48^3 (108K), 1.8x at
 *    64^3 (256K), 1.9x from 128^3; thin shapes gain less (16x1024x16, 256K:
 *    1.36x; 32x1024x32, 1M: 1.5x). Cold, the split loses a few microseconds
 *    up to ~128^3 (the caller ends up running both parts). 512K (about
 *    12 us on one thread) takes the warm gain where it is solid while
 *    bounding the cold loss to a fraction of the call.
 *  - matvec, warm: 1.1-1.6x at 64K elements, 1.35-1.75x at 128K, 1.7-1.96x
 *    at 256K (1 MiB of A, 11 us), 2x beyond; from DRAM (4096^2) 1.85x.
 *    256K for the same reason.
 *
 * A part gets at least half the threshold so a split never makes slivers.
 */
#define MATMUL_MT_MIN ((size_t)512 * 1024)
#define MATMUL_PART_MIN ((size_t)256 * 1024)
#define MATVEC_MT_MIN ((size_t)256 * 1024)
#define MATVEC_PART_MIN ((size_t)128 * 1024)

/*
 * Slices start at multiples of these. Finer than a register tile on purpose:
 * a slice ending mid-tile only costs one edge tile, while coarse rounding
 * unbalances the parts (1024 rows in steps of 48 split 528 + 496, 6% idle).
 * 16 floats is a cache line, so column slices of C (if it is line-aligned)
 * and of A and x never share one; matvec rows go 4 at a time in the kernels.
 */
#define MATMUL_COL_ALIGN 16
#define MATMUL_ROW_ALIGN 8
#define MATVEC_ROW_ALIGN 4
#define MATVEC_COL_ALIGN 16

/*
 * Below this many rows per thread a matvec is split by columns instead (a
 * wide, short A: one 64 MiB row from DRAM is as worth sharing as 4096 rows),
 * each part summing its columns into a private copy of y, the copies then
 * added in part order so the result does not depend on timing.
 */
#define MATVEC_ROWS_PER_PART 32

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

/*
 * Number of parts for a job of work that can be cut into at most units
 * pieces: 1 below the threshold, else one per pool thread, as long as each
 * part gets part_min.
 */
static int parts_for(size_t work, size_t mt_min, size_t part_min, size_t units)
{
	size_t nt = (size_t)cck__pool_threads();

	if (nt <= 1 || work < mt_min)
		return 1;
	if (nt > work / part_min)
		nt = work / part_min;
	if (nt > units)
		nt = units;
	return nt < 1 ? 1 : (int)nt;
}

/* Pieces of align items in len items (the last possibly short). */
static size_t units_of(size_t len, size_t align)
{
	return len / align + (len % align != 0);
}

/*
 * First item of part i of nt over len items: the len / align units (the last
 * possibly short) are dealt out as evenly as possible.
 */
static size_t part_start(size_t len, size_t align, int i, int nt)
{
	size_t units = units_of(len, align), ui = (size_t)i, un = (size_t)nt;
	/* floor(units * i / nt) without overflowing units * i */
	size_t lo = (units / un * ui + units % un * ui / un) * align;

	return lo < len ? lo : len;
}

struct matvec_job {
	const struct cck__tier_ops *ops;
	const float *A, *x;
	float *y;
	float *part; /* column split: nt partial y's of rows floats each */
	size_t rows, cols;
};

static void matvec_rows_part(void *arg, int i, int nt)
{
	const struct matvec_job *j = arg;
	size_t lo = part_start(j->rows, MATVEC_ROW_ALIGN, i, nt);
	size_t hi = part_start(j->rows, MATVEC_ROW_ALIGN, i + 1, nt);

	if (hi > lo)
		j->ops->matvec(j->A + lo * j->cols, j->cols, j->x, j->y + lo, hi - lo, j->cols);
}

static void matvec_cols_part(void *arg, int i, int nt)
{
	const struct matvec_job *j = arg;
	size_t lo = part_start(j->cols, MATVEC_COL_ALIGN, i, nt);
	size_t hi = part_start(j->cols, MATVEC_COL_ALIGN, i + 1, nt);

	/* an empty range still writes its zeros, which the sum reads */
	j->ops->matvec(j->A + lo, j->cols, j->x + lo, j->part + (size_t)i * j->rows, j->rows, hi - lo);
}

/* Column split (see MATVEC_ROWS_PER_PART); 0, or -1 if out of memory. */
static int matvec_by_cols(struct matvec_job *job, int nt)
{
	size_t r;
	int i;

	/*
	 * Zeroed: the pool may run fewer parts than asked (cck_set_threads()
	 * from another thread); the parts then cover the columns between them
	 * and the copies nobody wrote add nothing.
	 */
	job->part = calloc((size_t)nt * job->rows, sizeof(float));
	if (!job->part)
		return -1;
	cck__pool_run(nt, matvec_cols_part, job);
	for (r = 0; r < job->rows; r++) {
		float s = job->part[r];

		for (i = 1; i < nt; i++)
			s += job->part[(size_t)i * job->rows + r];
		job->y[r] = s;
	}
	free(job->part);
	return 0;
}

/*
 * Contract in cck.h. Blocks of rows go to the pool when A is large; a short
 * wide A is cut by columns instead.
 */
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
	job.part = NULL;
	job.rows = rows;
	job.cols = cols;
	nt = parts_for(size, MATVEC_MT_MIN, MATVEC_PART_MIN, SIZE_MAX);
	if (nt > 1 && rows < (size_t)nt * MATVEC_ROWS_PER_PART) {
		size_t ntc = units_of(cols, MATVEC_COL_ALIGN);

		if (ntc > (size_t)nt)
			ntc = (size_t)nt;
		/* on malloc failure carry on with the row split */
		if (ntc > 1 && matvec_by_cols(&job, (int)ntc) == 0)
			return 0;
	}
	if ((size_t)nt > units_of(rows, MATVEC_ROW_ALIGN))
		nt = (int)units_of(rows, MATVEC_ROW_ALIGN);
	if (nt <= 1)
		job.ops->matvec(A, cols, x, y, rows, cols);
	else
		cck__pool_run(nt, matvec_rows_part, &job);
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
			j->ops->gemm(j->A + lo * j->k, j->k, j->B, j->n, j->C + lo * j->n, j->n, hi - lo, j->k, j->n);
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
	size_t sa, sb, sc, work;
	int nt;

	/* An empty C is a no-op whatever the pointers; a pointer to a non-empty array must not be NULL. */
	if (!mul_ok(m, k, &sa) || !mul_ok(k, n, &sb) || !mul_ok(m, n, &sc))
		return -EINVAL;
	if (sc == 0)
		return 0;
	if (!C || (k && (!A || !B)))
		return -EINVAL;
	if (k == 0) {
		memset(C, 0, sc * sizeof(float));
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
	nt = parts_for(work, MATMUL_MT_MIN, MATMUL_PART_MIN,
	               job.by_cols ? units_of(n, MATMUL_COL_ALIGN) : units_of(m, MATMUL_ROW_ALIGN));
	if (nt <= 1)
		job.ops->gemm(A, k, B, n, C, n, m, k, n);
	else
		cck__pool_run(nt, matmul_part, &job);
	return 0;
}
