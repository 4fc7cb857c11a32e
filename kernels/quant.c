/* SPDX-License-Identifier: MIT */
/* quant.c: the public quantized-tensor API: type traits, validation, tier choice, threaded qmatvec/qmatmul. */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cck_internal.h"
#include "quant.h"

/*
 * Name, elements and bytes per block, activation type (what x is quantized
 * to for a dot product: ggml's vec_dot_type).
 */
/* clang-format off */
const struct cck__type_traits cck__types[CCK_TYPE_COUNT] = {
	[CCK_TYPE_F32]  = { "f32",  1,        4,                              CCK_TYPE_F32 },
	[CCK_TYPE_F16]  = { "f16",  1,        2,                              CCK_TYPE_F16 },
	[CCK_TYPE_BF16] = { "bf16", 1,        2,                              CCK_TYPE_BF16 },
	[CCK_TYPE_Q4_0] = { "q4_0", CCK_QK,   sizeof(struct cck_block_q4_0), CCK_TYPE_Q8_0 },
	[CCK_TYPE_Q4_1] = { "q4_1", CCK_QK,   sizeof(struct cck_block_q4_1), CCK_TYPE_Q8_1 },
	[CCK_TYPE_Q5_0] = { "q5_0", CCK_QK,   sizeof(struct cck_block_q5_0), CCK_TYPE_Q8_0 },
	[CCK_TYPE_Q5_1] = { "q5_1", CCK_QK,   sizeof(struct cck_block_q5_1), CCK_TYPE_Q8_1 },
	[CCK_TYPE_Q8_0] = { "q8_0", CCK_QK,   sizeof(struct cck_block_q8_0), CCK_TYPE_Q8_0 },
	[CCK_TYPE_Q8_1] = { "q8_1", CCK_QK,   sizeof(struct cck_block_q8_1), CCK_TYPE_Q8_1 },
	[CCK_TYPE_Q2_K] = { "q2_k", CCK_QK_K, sizeof(struct cck_block_q2_k), CCK_TYPE_Q8_K },
	[CCK_TYPE_Q3_K] = { "q3_k", CCK_QK_K, sizeof(struct cck_block_q3_k), CCK_TYPE_Q8_K },
	[CCK_TYPE_Q4_K] = { "q4_k", CCK_QK_K, sizeof(struct cck_block_q4_k), CCK_TYPE_Q8_K },
	[CCK_TYPE_Q5_K] = { "q5_k", CCK_QK_K, sizeof(struct cck_block_q5_k), CCK_TYPE_Q8_K },
	[CCK_TYPE_Q6_K] = { "q6_k", CCK_QK_K, sizeof(struct cck_block_q6_k), CCK_TYPE_Q8_K },
	[CCK_TYPE_Q8_K] = { "q8_k", CCK_QK_K, sizeof(struct cck_block_q8_k), CCK_TYPE_Q8_K },
};

/* The quantized-kernel table of each tier; NULL (sse2) has none of its own. */
static const struct cck__qops *const qtier[CCK_TIER_COUNT] = {
	[CCK_TIER_SCALAR] = &cck__qops_scalar,
#ifdef CCK_HAVE_X86
	[CCK_TIER_AVX2]   = &cck__qops_avx2,
	[CCK_TIER_AVX512] = &cck__qops_avx512,
#endif
};
/* clang-format on */

/* Tier t's table: for avx512, the one that also uses AVX512-VNNI where the CPU has it. */
static const struct cck__qops *qtable(int t)
{
#ifdef CCK_HAVE_X86
	if (t == CCK_TIER_AVX512 && cck__cpu_has_avx512vnni())
		return &cck__qops_avx512vnni;
#endif
	return qtier[t];
}

/* Kernels and sizes for one dot-product call, chosen when it starts. */
struct qk {
	cck__quant_fn quant; /* of the activation type (NULL for f32: x is used as it is) */
	cck__vdot_fn vdot;
	cck__vdot4_fn vdot4; /* 4 rows at once, from vdot's table; NULL: none */
	cck__mprep_fn mprep; /* batched kernel and its prep, from vdot's table; NULL: none */
	cck__vdotm_fn vdotm;
	cck__pmm_fn pmm; /* a packed matrix's kernel (type | CCK_TYPE_PACK16); then none of the above is used */
	size_t blck, act_bytes; /* block elements; bytes of an activation row */
	int act;
};

/*
 * Per entry, the highest tier allowed now (the forced tier, or the host's)
 * whose table has it, else the next lower one; the scalar table has every
 * entry a type supports.
 */
#define DEFINE_PICK(field, fn_type)                                                                                    \
	static fn_type pick_##field(int type)                                                                          \
	{                                                                                                              \
		for (int t = cck__tier_cap(); t > CCK_TIER_SCALAR; t--)                                                \
			if (qtable(t) && qtable(t)->field[type])                                                       \
				return qtable(t)->field[type];                                                         \
		return cck__qops_scalar.field[type];                                                                   \
	}
DEFINE_PICK(dequant, cck__dequant_fn)
DEFINE_PICK(quant, cck__quant_fn)
DEFINE_PICK(act_quant, cck__quant_fn)

/* The dot products' activation quantizer of type act: act_quant[act] where the scalar table has one, else quant[]. */
static cck__quant_fn pick_act(int act)
{
	return cck__qops_scalar.act_quant[act] ? pick_act_quant(act) : pick_quant(act);
}

/*
 * The table of the highest tier allowed now that has a vdot for type (the
 * scalar one has every one it supports): its vdot4, mprep and vdotm are used
 * only with that vdot, whose results they give.
 */
static const struct cck__qops *vdot_table(int type)
{
	for (int t = cck__tier_cap(); t > CCK_TIER_SCALAR; t--)
		if (qtable(t) && qtable(t)->vdot[type])
			return qtable(t);
	return &cck__qops_scalar;
}

static int supported(int type)
{
	return type >= 0 && type < CCK_TYPE_COUNT && cck__types[type].name;
}

/* Largest object size (an object is at most PTRDIFF_MAX bytes). */
#define MAX_BYTES ((size_t)PTRDIFF_MAX)

/* Bytes of n elements of a supported type: -EINVAL if n is not whole blocks, -EOVERFLOW if too big. */
static int row_bytes(int type, size_t n, size_t *bytes)
{
	const struct cck__type_traits *t = &cck__types[type];
	size_t nb = n / t->blck;

	if (n % t->blck)
		return -EINVAL;
	if (nb > MAX_BYTES / t->bytes || n > MAX_BYTES / sizeof(float))
		return -EOVERFLOW; /* the row, or its float form, could not exist */
	*bytes = nb * t->bytes;
	return 0;
}

CCK_EXPORT const char *cck_type_name(int type)
{
	return supported(type) ? cck__types[type].name : NULL;
}

CCK_EXPORT int cck_type_lookup(const char *name)
{
	if (!name)
		return -EINVAL;
	for (int t = 0; t < CCK_TYPE_COUNT; t++)
		if (cck__types[t].name && !strcasecmp(name, cck__types[t].name))
			return t;
	return -ENOENT;
}

CCK_EXPORT int cck_type_block(int type, size_t *block_elems, size_t *block_bytes)
{
	if (!supported(type))
		return -EINVAL;
	if (block_elems)
		*block_elems = cck__types[type].blck;
	if (block_bytes)
		*block_bytes = cck__types[type].bytes;
	return 0;
}

CCK_EXPORT int cck_type_row_bytes(int type, size_t n, size_t *bytes)
{
	size_t b;
	int rc;

	if (!supported(type) || !bytes)
		return -EINVAL;
	rc = row_bytes(type, n, &b);
	if (rc == 0)
		*bytes = b;
	return rc;
}

CCK_EXPORT int cck_type_has_dot(int type)
{
	return supported(type) && cck__qops_scalar.vdot[type] && cck__qops_scalar.quant[cck__types[type].act_type];
}

CCK_EXPORT int cck_dequantize(int type, const void *src, float *dst, size_t n)
{
	size_t bytes;
	int rc;

	if (!supported(type))
		return -EINVAL;
	rc = row_bytes(type, n, &bytes);
	if (rc || n == 0)
		return rc;
	if (!src || !dst)
		return -EINVAL;
	pick_dequant(type)(src, dst, n / cck__types[type].blck);
	return 0;
}

CCK_EXPORT int cck_quantize(int type, const float *src, void *dst, size_t n)
{
	size_t bytes;
	int rc;

	if (!supported(type))
		return -EINVAL;
	rc = row_bytes(type, n, &bytes);
	if (rc)
		return rc;
	if (!cck__qops_scalar.quant[type])
		return -ENOTSUP;
	if (n == 0)
		return 0;
	if (!src || !dst)
		return -EINVAL;
	pick_quant(type)(src, dst, n);
	return 0;
}

/* Kernels and activation sizes for weight type with rows of n elements; -ENOTSUP without a dot product. */
static int qk_init(struct qk *k, int type, size_t n)
{
	const struct cck__qops *vt;

	if (!cck_type_has_dot(type))
		return -ENOTSUP;
	vt = vdot_table(type);
	k->act = cck__types[type].act_type;
	k->blck = cck__types[type].blck;
	k->quant = k->act == CCK_TYPE_F32 ? NULL : pick_act(k->act);
	k->vdot = vt->vdot[type];
	k->vdot4 = vt->vdot4[type];
	k->mprep = vt->mprep[type];
	k->vdotm = k->mprep ? vt->vdotm[type] : NULL;
	k->pmm = NULL;
	return row_bytes(k->act, n, &k->act_bytes); /* n is whole blocks of type, so of act too */
}

/* Activation buffers up to this size live on the stack. */
#define ACT_STACK 8192

/* Quantizes count rows of n floats (x, stride n) into buf (stride act_bytes), or points at x for f32. */
static const void *act_rows(const struct qk *k, const float *x, size_t n, size_t count, void *buf)
{
	if (!k->quant)
		return x;
	for (size_t b = 0; b < count; b++)
		k->quant(x + b * n, (char *)buf + b * k->act_bytes, n);
	return buf;
}

CCK_EXPORT int cck_qdot(int type, const void *w, const float *x, size_t n, float *ret)
{
	alignas(64) unsigned char stack[ACT_STACK];
	struct qk k;
	void *heap = NULL;
	const void *act;
	size_t wb;
	int rc;

	if (!supported(type) || !ret)
		return -EINVAL;
	rc = row_bytes(type, n, &wb);
	if (rc)
		return rc;
	rc = qk_init(&k, type, n);
	if (rc)
		return rc;
	if (n == 0) {
		*ret = 0.0f;
		return 0;
	}
	if (!w || !x)
		return -EINVAL;
	if (k.quant && k.act_bytes > sizeof(stack) && !(heap = malloc(k.act_bytes)))
		return -ENOMEM;
	act = act_rows(&k, x, n, 1, heap ? heap : stack);
	*ret = k.vdot(n, w, act);
	free(heap);
	return 0;
}

/*
 * Threading of qmatvec / qmatmul, in weight elements times columns: the
 * f32 matvec's figures (matmul.c), 256K to split, each part at least 128K
 * (a q4_1 qmatvec of 256K elements is about 9 us on Zen 4). Columns as
 * qmatvec costs them: the batched kernels (vdotm) do up to 4 columns in
 * about the time of 2 qmatvec calls and up to 8 in that of 3.4 (q4_1,
 * 576 x 576, Zen 4), so a batch counts 2 columns up to 4, else 4 for each 8.
 */
#define QMV_MT_MIN ((size_t)256 * 1024)
#define QMV_PART_MIN ((size_t)128 * 1024)

/* The columns a batch counts as for threading (above). */
static size_t batch_cost(size_t batch, int batched)
{
	if (!batched)
		return batch;
	return batch <= 4 ? 2 : (batch / 8 + (batch % 8 != 0)) * 4;
}

/* One matrix of a job: its rows are rows row0 .. row0 + rows - 1 of the job. */
struct qjob_mat {
	const char *W;
	size_t stride, rows, row0;
	float *Y; /* batch x rows */
};

struct qjob {
	const struct qk *k;
	const struct qjob_mat *m;
	size_t nm, rows, cols, batch; /* rows: of all the matrices */
	const char *act;              /* batch activation rows of k->act_bytes (or f32 rows of cols) */
	size_t act_stride;
	const void *prep;    /* k->mprep's layout of act, when the batched kernel is used; else NULL */
	const float *ds;     /* for k->pmm: each column's blocks' d and s as floats (quant.h) */
	size_t chunk;        /* rows a thread takes at a time (a multiple of 4), when threaded */
	_Atomic size_t next; /* the first row nobody has taken yet */
};

/*
 * Rows lo..hi-1 of matrix m. Every y[b][r] is what one vdot call gives (vdot4
 * gives each of its rows exactly that), so the result does not depend on the
 * split. For each row (or group of 4 rows) all the batch dots are done while
 * the rows are in cache.
 *
 * The 4 rows of a vdot4 call are a quarter of the range apart (rows t, t + q,
 * t + 2q, t + 3q, for t = lo .. lo + q - 1), so that it reads 4 long
 * sequential streams, each a quarter of the range, which the hardware
 * prefetchers follow. 4 adjacent rows are 4 streams of one row each (a few
 * KB), which they hardly follow: single-threaded q4_0 qmatvec at 4096 x 4096
 * from DRAM ran at 0.29 of the read bandwidth so, 0.65-0.72 with a software
 * prefetch of the next 4 rows, and at 0.80-0.88 this way with none (q4_1 the
 * same; 1536 x 576: 0.52-0.64 before, 0.70-0.72).
 */
static void qjob_mat_rows(const struct qjob *j, const struct qjob_mat *m, size_t lo, size_t hi)
{
	size_t r = lo;

	if (j->k->pmm) { /* lo and hi are whole groups of rows; a group is CCK_PACK_ROWS row strides */
		j->k->pmm(j->cols / CCK_QK, m->W + lo * m->stride, (hi - lo) / CCK_PACK_ROWS, j->act, j->act_stride, j->ds,
		          j->batch, m->Y + lo, m->rows);
		return;
	}
	if (j->prep) {
		j->k->vdotm(j->cols, m->W + lo * m->stride, m->stride, hi - lo, j->prep, j->batch, m->Y + lo, m->rows);
		return;
	}
	if (j->k->vdot4 && hi - lo >= 4) {
		const size_t q = (hi - lo) / 4;

		for (size_t t = lo; t < lo + q; t++) {
			const void *wr = m->W + t * m->stride;

			for (size_t b = 0; b < j->batch; b++) {
				float o[4], *yb = m->Y + b * m->rows + t;

				j->k->vdot4(j->cols, wr, q * m->stride, j->act + b * j->act_stride, o);
				yb[0] = o[0];
				yb[q] = o[1];
				yb[2 * q] = o[2];
				yb[3 * q] = o[3];
			}
		}
		r = lo + 4 * q;
	}
	for (; r < hi; r++) {
		const void *wr = m->W + r * m->stride;

		for (size_t b = 0; b < j->batch; b++)
			m->Y[b * m->rows + r] = j->k->vdot(j->cols, wr, j->act + b * j->act_stride);
	}
}

/* Rows lo..hi-1 of the job: the parts of them in each matrix. */
static void qjob_rows(const struct qjob *j, size_t lo, size_t hi)
{
	for (size_t i = 0; i < j->nm && lo < hi; i++) {
		const struct qjob_mat *m = &j->m[i];
		const size_t end = m->row0 + m->rows;

		if (lo >= end)
			continue;
		qjob_mat_rows(j, m, lo - m->row0, (hi < end ? hi : end) - m->row0);
		lo = end;
	}
}

/*
 * A thread of a threaded job: chunks of rows taken from a shared counter
 * until none are left. A thread that the machine runs late (a busy host, a
 * worker still waking) then holds up the job by one chunk, not by its fixed
 * share of the rows.
 */
static void qjob_part(void *arg, int i, int nt)
{
	struct qjob *j = arg;
	size_t lo;

	(void)i;
	(void)nt;
	while ((lo = atomic_fetch_add_explicit(&j->next, j->chunk, memory_order_relaxed)) < j->rows)
		qjob_rows(j, lo, j->rows - lo < j->chunk ? j->rows : lo + j->chunk);
}

/* Validates a rows x cols matrix of type at row_stride (0: packed); sets *stride. */
static int check_matrix(int type, size_t rows, size_t cols, size_t row_stride, size_t *stride)
{
	size_t rb;
	int rc;

	if (!supported(type))
		return -EINVAL;
	rc = row_bytes(type, cols, &rb);
	if (rc)
		return rc;
	if (row_stride == 0)
		row_stride = rb;
	if (row_stride < rb)
		return -EINVAL;
	/* the last row ends at (rows - 1) * stride + rb */
	if (rows > 1 && (row_stride > (MAX_BYTES - rb) / (rows - 1)))
		return -EOVERFLOW;
	*stride = row_stride;
	return 0;
}

/*
 * Bytes of the batched kernel's prep of batch columns (CCK_MM_PREP_BYTES, at
 * most about 10 times the quantized activations), or 0: no batched kernel,
 * one column, or sizes no buffer could hold (then the per-column way).
 */
static size_t mm_prep_bytes(const struct qk *k, size_t cols, size_t batch)
{
	size_t nb = cols / CCK_QK, groups = (batch + 7) / 8, act;

	if (!k->vdotm || batch < 2 || k->act_bytes > MAX_BYTES / 4 / batch)
		return 0;
	act = k->act_bytes * batch;
	if (nb > (MAX_BYTES / 2 - act) / CCK_MM_PREP_BLOCK / groups)
		return 0;
	return CCK_MM_PREP_BYTES(cols, batch);
}

/*
 * What a packed kernel reads of each activation row (quant.h's pmm ds) into ds: per column and block, 2 floats: for a
 * q8_1 row (q4_1 weights) the block's d and s, for a q8_0 row (q8_0 weights) its d and 128 times the sum of its quants
 * (exact). Returns ds.
 */
static const float *packed_ds(int act, const char *rows, size_t stride, size_t nb, size_t cols, float *ds)
{
	for (size_t c = 0; c < cols; c++, rows += stride)
		for (size_t b = 0; b < nb; b++) {
			float *f = &ds[2 * (c * nb + b)];

			if (act == CCK_TYPE_Q8_1) {
				const struct cck_block_q8_1 *y = (const void *)rows;

				f[0] = cck__f16_to_f32(y[b].d);
				f[1] = cck__f16_to_f32(y[b].s);
			} else {
				const struct cck_block_q8_0 *y = (const void *)rows;
				int32_t sum = 0;

				for (int i = 0; i < CCK_QK; i++)
					sum += y[b].qs[i];
				f[0] = cck__f16_to_f32(y[b].d);
				f[1] = (float)(128 * sum);
			}
		}
	return ds;
}

/* The matrices m[0..nm) (all of type, cols columns) times the same batch x cols activations X: one job. */
static int qmm(int type, const struct cck_qmat *m, size_t nm, const float *X, size_t cols, size_t batch)
{
	alignas(64) unsigned char stack[ACT_STACK];
	struct qjob_mat jm[CCK_QMAT_MAX];
	struct qjob job;
	struct qk k;
	void *heap = NULL;
	size_t rows = 0, work, batch_eq, prep_bytes, need, ds_bytes = 0;
	const int packed = (type & CCK_TYPE_PACK16) != 0;
	const int base = type & ~CCK_TYPE_PACK16;
	cck__pmm_fn pmm = NULL;
	int rc, nt;

	if (nm == 0 || nm > CCK_QMAT_MAX || !m)
		return -EINVAL;
	if (packed && !(pmm = cck__pmm_pick(base)))
		return -EINVAL; /* no packed layout for this type */
	rc = 0;
	for (size_t i = 0; i < nm && rc == 0; i++) {
		if (m[i].type != type)
			return -EINVAL;
		if (packed && m[i].rows % CCK_PACK_ROWS)
			return -EINVAL;
		rc = check_matrix(base, m[i].rows, cols, m[i].row_stride, &jm[i].stride);
		if (rc == 0 && packed && m[i].row_stride && m[i].row_stride != cols / CCK_QK * cck__types[base].bytes)
			rc = -EINVAL; /* a packed matrix's rows are back to back */
		if (rc == 0 && batch && m[i].rows > MAX_BYTES / sizeof(float) / batch)
			rc = -EOVERFLOW; /* Y */
		jm[i].W = m[i].W;
		jm[i].rows = m[i].rows;
		jm[i].row0 = rows;
		jm[i].Y = m[i].Y;
		if (rc == 0 && m[i].rows > SIZE_MAX / 2 - rows)
			rc = -EOVERFLOW;
		rows += m[i].rows;
	}
	if (rc || (rc = qk_init(&k, base, cols)))
		return rc;
	if (packed) {
		k.pmm = pmm;
		k.vdot4 = NULL;
		k.mprep = NULL;
		k.vdotm = NULL;
	}
	if (batch && cols > MAX_BYTES / sizeof(float) / batch)
		return -EOVERFLOW; /* X */
	if (k.quant && batch && k.act_bytes > MAX_BYTES / batch)
		return -EOVERFLOW;
	if (rows == 0 || batch == 0)
		return 0;
	for (size_t i = 0; i < nm; i++)
		if (m[i].rows && (!m[i].Y || (cols && (!m[i].W || !X))))
			return -EINVAL;
	if (cols == 0) {
		for (size_t i = 0; i < nm; i++)
			if (m[i].rows)
				memset(m[i].Y, 0, m[i].rows * batch * sizeof(float));
		return 0;
	}
	prep_bytes = mm_prep_bytes(&k, cols, batch);
	if (packed) /* 2 floats per block per column, after the activations, 64-byte aligned */
		ds_bytes = batch * (cols / CCK_QK) * 2 * sizeof(float) + 64;
	need = k.act_bytes * batch + (prep_bytes ? prep_bytes + 64 : 0) + ds_bytes;
	if (k.quant && need > sizeof(stack) && !(heap = malloc(need)))
		return -ENOMEM;
	job.k = &k;
	job.m = jm;
	job.nm = nm;
	job.rows = rows;
	job.cols = cols;
	job.batch = batch;
	job.act = act_rows(&k, X, cols, batch, heap ? heap : stack);
	job.act_stride = k.quant ? k.act_bytes : cols * sizeof(float);
	job.prep = NULL;
	job.ds = NULL;
	if (ds_bytes) {
		uintptr_t p = (uintptr_t)((char *)(heap ? heap : stack) + k.act_bytes * batch);

		job.ds = packed_ds(k.act, job.act, job.act_stride, cols / CCK_QK, batch,
		                   (float *)(void *)((p + 63) & ~(uintptr_t)63));
	}
	if (prep_bytes) { /* after the activations, 64-byte aligned */
		uintptr_t p = (uintptr_t)((char *)(heap ? heap : stack) + k.act_bytes * batch);

		job.prep = (void *)((p + 63) & ~(uintptr_t)63);
		k.mprep(cols, job.act, job.act_stride, batch, (void *)job.prep);
	}

	/* rows * cols * the batch's cost in columns, saturated */
	work = rows > SIZE_MAX / cols ? SIZE_MAX : rows * cols;
	batch_eq = batch_cost(batch, job.prep != NULL || packed);
	work = work > SIZE_MAX / batch_eq ? SIZE_MAX : work * batch_eq;
	nt = cck__pool_threads();
	if (nt <= 1 || work < QMV_MT_MIN)
		nt = 1;
	else {
		if ((size_t)nt > work / QMV_PART_MIN)
			nt = (int)(work / QMV_PART_MIN);
		if ((size_t)nt > rows)
			nt = (int)rows;
	}
	if (nt <= 1)
		qjob_rows(&job, 0, rows);
	else {
		/* about 8 chunks a thread, of at least QMV_PART_MIN / 4 work each, whole groups of 4 rows */
		size_t per_row = work / rows ? work / rows : 1, c = rows / ((size_t)nt * 8);

		if (c < QMV_PART_MIN / 4 / per_row)
			c = QMV_PART_MIN / 4 / per_row;
		job.chunk = c < 4 ? 4 : (c + 3) & ~(size_t)3;
		if (packed) /* whole groups */
			job.chunk = (job.chunk + CCK_PACK_ROWS - 1) / CCK_PACK_ROWS * CCK_PACK_ROWS;
		atomic_init(&job.next, 0);
		cck__pool_run(nt, qjob_part, &job);
	}
	free(heap);
	return 0;
}

CCK_EXPORT int cck_qmatvec(int type, const void *W, size_t row_stride, const float *x, float *y, size_t rows,
                           size_t cols)
{
	const struct cck_qmat m = {type, W, row_stride, rows, y};

	return qmm(type, &m, 1, x, cols, 1);
}

CCK_EXPORT int cck_qmatmul(int type, const void *W, size_t row_stride, const float *X, float *Y, size_t rows,
                           size_t cols, size_t batch)
{
	const struct cck_qmat m = {type, W, row_stride, rows, Y};

	return qmm(type, &m, 1, X, cols, batch);
}

CCK_EXPORT int cck_qmatmul_n(const struct cck_qmat *m, size_t n, const float *X, size_t cols, size_t batch)
{
	if (!m || n == 0)
		return -EINVAL;
	return qmm(m[0].type, m, n, X, cols, batch);
}
