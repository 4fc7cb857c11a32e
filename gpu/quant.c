/* SPDX-License-Identifier: MIT */
/*
 * quant.c: the quantized matrix products on the device (ccg_cl_qmatvec, ccg_cl_qmatmul) and resident weight
 * matrices (ccg_mat) for q4_0, q4_1, q8_0, q4_K, q6_K, f32 and f16. The activations are quantized by a kernel of
 * gpu/cl/quant.cl to the weight type's dot format with libcck's arithmetic (same scales, same integer quants; f16:
 * x rounded to f16; f32: x as it is), then the dot kernel of the type runs over Q_BATCH columns per launch
 * (rows_layout() picks its work-item layout). q4_0, q4_1, q8_0, f16 and f32 (on a device with fp64) sum in
 * libcck's order (its bits); q4_K and q6_K only differ from it by the float order over super-blocks.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cck.h"
#include "ccg_internal.h"

/* As gpu/cl/quant.cl: work-items per row, rows per work-group (at most), batch columns per launch. */
#define Q_LANES 8
#define Q_ROWS 8
#define Q_BATCH 32
/* Work-group size of the one-row-per-work-item kernels (at most). */
#define Q_ROWS_WG 64

#define MAX_BYTES ((size_t)PTRDIFF_MAX)

enum act { ACT_Q8_0, ACT_Q8_1, ACT_Q8_K, ACT_F16, ACT_F32 };

struct qtype {
	int type;
	enum act act;
	size_t blck;           /* elements per block (32 or 256; 1 for f32, f16) */
	const char *kern;      /* the dot kernel: Q_LANES work-items per row */
	const char *kern_rows; /* one work-item per row (for CPU devices), or NULL */
};

static const struct qtype qtypes[] = {
    {CCK_TYPE_Q4_0, ACT_Q8_0, 32, "q_mm_q4_0", "q_mm_q4_0_rows"},
    {CCK_TYPE_Q4_1, ACT_Q8_1, 32, "q_mm_q4_1", "q_mm_q4_1_rows"},
    {CCK_TYPE_Q8_0, ACT_Q8_0, 32, "q_mm_q8_0", "q_mm_q8_0_rows"},
    {CCK_TYPE_Q4_K, ACT_Q8_K, 256, "q_mm_q4_k", NULL},
    {CCK_TYPE_Q6_K, ACT_Q8_K, 256, "q_mm_q6_k", NULL},
    {CCK_TYPE_F32, ACT_F32, 1, "q_mm_f32", "q_mm_f32_rows"},
    {CCK_TYPE_F16, ACT_F16, 1, "q_mm_f16", "q_mm_f16_rows"},
};

static const struct qtype *qtype(int type)
{
	for (size_t i = 0; i < sizeof(qtypes) / sizeof(qtypes[0]); i++)
		if (qtypes[i].type == type)
			return &qtypes[i];
	return NULL;
}

int ccg_type_supported(int type)
{
	return qtype(type) != NULL;
}

/* A matrix to multiply: its type, shape and rows on the device. */
struct qmat {
	const struct qtype *t;
	size_t rows, cols, stride;
};

/*
 * cck_qmatmul's checks of a rows x cols matrix (row_stride 0: packed) and a batch, in its order: -EINVAL (unknown
 * type, cols not whole blocks, a stride below the row size), -EOVERFLOW, then -EOPNOTSUPP for a type without a
 * kernel here. Sets *bytes to the span of the rows.
 */
static int check(int type, size_t row_stride, size_t rows, size_t cols, size_t batch, struct qmat *m, size_t *bytes)
{
	size_t rb;
	int rc = cck_type_row_bytes(type, cols, &rb);

	if (rc)
		return rc;
	if (row_stride == 0)
		row_stride = rb;
	if (row_stride < rb)
		return -EINVAL;
	if (rows > 1 && row_stride > (MAX_BYTES - rb) / (rows - 1))
		return -EOVERFLOW;
	m->t = qtype(type);
	if (!m->t)
		return -EOPNOTSUPP; /* a type libcck knows (cck_type_row_bytes checked it), without a kernel here */
	if (batch && (rows > MAX_BYTES / sizeof(float) / batch || cols > MAX_BYTES / sizeof(float) / batch))
		return -EOVERFLOW; /* Y, X */
	/* the kernels index rows, blocks per row and batch columns with 32 bits */
	if (rows > UINT32_MAX - Q_ROWS || cols / m->t->blck > UINT32_MAX || batch > UINT32_MAX - Q_BATCH)
		return -EOVERFLOW;
	m->rows = rows;
	m->cols = cols;
	m->stride = row_stride;
	*bytes = rows ? (rows - 1) * row_stride + rb : 0;
	return 0;
}

/* The largest work-group kernel k can run on the device. */
static size_t kernel_wg(struct ccg_dev *d, cl_kernel k)
{
	size_t wg = 0;

	if (clGetKernelWorkGroupInfo(k, d->dev, CL_KERNEL_WORK_GROUP_SIZE, sizeof(wg), &wg, NULL) != CL_SUCCESS)
		wg = d->info.max_work_group;
	if (d->info.max_work_group && wg > d->info.max_work_group)
		wg = d->info.max_work_group;
	return wg;
}

/*
 * The kernel layout of the 32-element types: one work-item per row on CPU devices (a work-group's items are loop
 * iterations there, vector types its SIMD), Q_LANES per row elsewhere (GPUs: more work-items, the same bits).
 * CCG_QLAYOUT=rows or lanes in the environment forces one (the tests check both on whatever device there is).
 */
static int rows_layout(const struct ccg_dev *d)
{
	const char *e = getenv("CCG_QLAYOUT");

	if (e && !strcmp(e, "rows"))
		return 1;
	if (e && !strcmp(e, "lanes"))
		return 0;
	return !strcmp(d->info.type, "cpu");
}

/* The activations of a batch, quantized on the device (device-only buffers). */
struct acts {
	cl_mem q, d, aux;
};

static void acts_free(struct ccg_dev *d, struct acts *a)
{
	ccg_buf_put(d, a->q);
	ccg_buf_put(d, a->d);
	ccg_buf_put(d, a->aux);
}

/* X rounded to f16 (as floats) into a->q: libcck's f16 activation rows. 0 or -errno. */
static int act_f16(struct ccg_dev *d, cl_mem x, size_t n, struct acts *a)
{
	cl_ulong nn = (cl_ulong)n;
	cl_kernel k;
	int rc = 0;

	if (!(a->q = ccg_buf_tmp(d, n * sizeof(float), &rc)))
		return rc;
	if (!(k = ccg_kernel(d, "q_act_f16")))
		return -EIO;
	if ((rc = CCG_ARG(k, 0, x)) || (rc = CCG_ARG(k, 1, nn)) || (rc = CCG_ARG(k, 2, a->q)))
		return rc;
	return ccg_run(d, k, 1, &n, NULL);
}

/* Quantize X (batch x cols, at x) into a (the device's q_act_* kernel); f32 leaves a empty (X is used as it is).
 * 0 or -errno. */
static int quantize(struct ccg_dev *d, const struct qmat *m, cl_mem x, size_t batch, struct acts *a)
{
	const size_t nb = m->cols / m->t->blck;
	cl_ulong n = (cl_ulong)(batch * nb);
	size_t gws = batch * nb, aux;
	cl_kernel k;
	int rc = 0;

	if (m->t->act == ACT_F32)
		return 0;
	if (m->t->act == ACT_F16)
		return act_f16(d, x, batch * m->cols, a);
	aux = m->t->act == ACT_Q8_1 ? batch * nb * sizeof(float) : m->t->act == ACT_Q8_K ? batch * nb * 16 * 2 : 0;
	a->q = ccg_buf_tmp(d, batch * m->cols, &rc);
	if (a->q)
		a->d = ccg_buf_tmp(d, batch * nb * sizeof(float), &rc);
	if (a->d)
		a->aux = ccg_buf_tmp(d, aux, &rc);
	if (!a->aux)
		return rc;
	k = ccg_kernel(d, m->t->act == ACT_Q8_K ? "q_act_q8_k" : "q_act_q8");
	if (!k)
		return -EIO;
	if ((rc = CCG_ARG(k, 0, x)) || (rc = CCG_ARG(k, 1, n)) || (rc = CCG_ARG(k, 2, a->q)) ||
	    (rc = CCG_ARG(k, 3, a->d)) || (rc = CCG_ARG(k, 4, a->aux)))
		return rc;
	if (m->t->act != ACT_Q8_K) {
		cl_int with_sum = m->t->act == ACT_Q8_1;

		if ((rc = CCG_ARG(k, 5, with_sum)))
			return rc;
	}
	return ccg_run(d, k, 1, &gws, NULL);
}

/* The dot kernel over every row, Q_BATCH columns per launch, into y; x: X itself (f32 reads it, a being empty). */
static int dots(struct ccg_dev *d, const struct qmat *m, cl_mem w, const struct acts *a, cl_mem x, cl_mem y,
                size_t batch)
{
	/* the float types' kernels read only aq: the other two get a valid buffer they ignore */
	cl_mem aq = a->q ? a->q : x, ad = a->d ? a->d : aq, aux = a->aux ? a->aux : aq;
	int by_row = m->t->kern_rows && rows_layout(d);
	cl_kernel k = ccg_kernel(d, by_row ? m->t->kern_rows : m->t->kern);
	cl_ulong stride = m->stride;
	cl_uint nb = (cl_uint)(m->cols / m->t->blck), rows = (cl_uint)m->rows;
	size_t gws[2], lws[2], wg;
	int rc;

	if (!k)
		return -EIO;
	wg = kernel_wg(d, k);
	if (by_row) { /* 1-D: a work-item per row */
		lws[0] = wg < Q_ROWS_WG ? wg : Q_ROWS_WG;
		gws[0] = lws[0] ? ccg_round_up(m->rows, lws[0]) : 0;
	} else { /* Q_LANES x r: r rows per work-group */
		lws[0] = Q_LANES;
		lws[1] = wg / Q_LANES < Q_ROWS ? wg / Q_LANES : Q_ROWS;
		gws[0] = Q_LANES;
		gws[1] = lws[1] ? ccg_round_up(m->rows, lws[1]) : 0;
	}
	if (!gws[by_row ? 0 : 1])
		return -EIO; /* a device that cannot run the work-group: none known */
	if ((rc = CCG_ARG(k, 0, w)) || (rc = CCG_ARG(k, 1, stride)) || (rc = CCG_ARG(k, 2, nb)) ||
	    (rc = CCG_ARG(k, 3, rows)) || (rc = CCG_ARG(k, 4, aq)) || (rc = CCG_ARG(k, 5, ad)) ||
	    (rc = CCG_ARG(k, 6, aux)) || (rc = CCG_ARG(k, 7, y)))
		return rc;
	for (size_t b0 = 0; b0 < batch; b0 += Q_BATCH) {
		cl_uint cb0 = (cl_uint)b0, nbat = (cl_uint)(batch - b0 < Q_BATCH ? batch - b0 : Q_BATCH);

		if ((rc = CCG_ARG(k, 8, cb0)) || (rc = CCG_ARG(k, 9, nbat)) ||
		    (rc = ccg_run(d, k, by_row ? 1 : 2, gws, lws)))
			return rc;
	}
	return 0;
}

/*
 * Y = W x X on the device, W in the buffer w (NULL: W from the host for this call). Arguments checked; rows,
 * batch and cols not 0. Takes d->lock; releases every buffer it made.
 */
static int run(struct ccg_dev *d, const struct qmat *m, cl_mem w, const void *W, size_t wbytes, const float *X,
               float *Y, size_t batch)
{
	struct acts a = {NULL, NULL, NULL};
	cl_mem x = NULL, y = NULL, wt = NULL;
	size_t ybytes = batch * m->rows * sizeof(float);
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	if (!w)
		w = wt = ccg_buf_in(d, W, wbytes, &rc);
	if (w)
		x = ccg_buf_in(d, X, batch * m->cols * sizeof(float), &rc);
	if (x)
		y = ccg_buf_out(d, Y, ybytes, &rc);
	if (y && (rc = quantize(d, m, x, batch, &a)) == 0 && (rc = dots(d, m, w, &a, x, y, batch)) == 0)
		rc = ccg_buf_get(d, y, Y, ybytes);
	if (rc)
		clFinish(d->q); /* nothing enqueued may still use the buffers' host memory */
	acts_free(d, &a);
	ccg_buf_put(d, y);
	ccg_buf_put(d, x);
	ccg_buf_put(d, wt);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

/* The trivial cases after the checks: 1 (done: rc in *rc), or 0 (the device must run it). */
static int trivial(const struct qmat *m, const void *W, const float *X, float *Y, size_t batch, int *rc)
{
	*rc = 0;
	if (m->rows == 0 || batch == 0)
		return 1;
	if (!Y || (m->cols && (!W || !X))) {
		*rc = -EINVAL;
		return 1;
	}
	if (m->cols == 0) {
		memset(Y, 0, m->rows * batch * sizeof(float));
		return 1;
	}
	return 0;
}

int ccg_cl_qmatmul(int type, const void *W, size_t row_stride, const float *X, float *Y, size_t rows, size_t cols,
                   size_t batch)
{
	struct ccg_dev *d;
	struct qmat m;
	size_t bytes;
	int rc = check(type, row_stride, rows, cols, batch, &m, &bytes);

	if (rc)
		return rc;
	if (!(d = ccg_dev()))
		return -ENODEV;
	if (trivial(&m, W, X, Y, batch, &rc))
		return rc;
	return run(d, &m, NULL, W, bytes, X, Y, batch);
}

int ccg_cl_qmatvec(int type, const void *W, size_t row_stride, const float *x, float *y, size_t rows, size_t cols)
{
	return ccg_cl_qmatmul(type, W, row_stride, x, y, rows, cols, 1);
}

/* ---- resident matrices ---------------------------------------------------------------------------------------- */

/*
 * The weights in one read-only device buffer, made by ccg_buf_in: a copy on a device with its own memory; on a
 * host-unified device (PoCL, integrated GPUs) the buffer wraps the caller's W itself (CL_MEM_USE_HOST_PTR, no copy),
 * so W must stay unchanged and mapped until ccg_mat_free: model weights are immutable and outlive their mats.
 */
struct ccg_mat {
	struct qmat m;
	cl_mem w;
	size_t bytes;
};

int ccg_mat_new(int type, const void *W, size_t row_stride, size_t rows, size_t cols, struct ccg_mat **ret)
{
	struct ccg_dev *d;
	struct ccg_mat *mat;
	size_t bytes;
	struct qmat m;
	int rc;

	if (!ret)
		return -EINVAL;
	*ret = NULL;
	if ((rc = check(type, row_stride, rows, cols, 0, &m, &bytes)))
		return rc;
	if (rows && cols && !W)
		return -EINVAL;
	if (!(d = ccg_dev()))
		return -ENODEV;
	mat = calloc(1, sizeof(*mat));
	if (!mat)
		return -ENOMEM;
	mat->m = m;
	mat->bytes = bytes;
	if (bytes) {
		pthread_mutex_lock(&d->lock);
		mat->w = ccg_buf_const(d, W, bytes, &rc);
		pthread_mutex_unlock(&d->lock);
		if (!mat->w) {
			free(mat);
			return rc;
		}
	}
	*ret = mat;
	return 0;
}

int ccg_mat_mul(struct ccg_mat *mat, const float *X, float *Y, size_t batch)
{
	struct ccg_dev *d;
	const struct qmat *m;
	int rc;

	if (!mat)
		return -EINVAL;
	m = &mat->m;
	if (batch && (m->rows > MAX_BYTES / sizeof(float) / batch || m->cols > MAX_BYTES / sizeof(float) / batch))
		return -EOVERFLOW;
	if (batch > UINT32_MAX - Q_BATCH) /* the kernels' batch columns are 32-bit */
		return -EOVERFLOW;
	if (trivial(m, mat->w, X, Y, batch, &rc))
		return rc;
	if (!(d = ccg_dev()))
		return -ENODEV; /* not reached: the mat was made on the device */
	return run(d, m, mat->w, NULL, 0, X, Y, batch);
}

size_t ccg_mat_bytes(const struct ccg_mat *mat)
{
	return mat ? mat->bytes : 0;
}

void ccg_mat_free(struct ccg_mat *mat)
{
	if (!mat)
		return;
	ccg_buf_free(mat->w);
	free(mat);
}
