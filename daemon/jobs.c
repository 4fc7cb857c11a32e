/* SPDX-License-Identifier: MIT */
/* jobs.c: validation of op requests against a client's regions, splitting into parts, and running the ops: through
 * libccgpu's dispatch (ccg_*), which runs libcck, or the OpenCL device from an op's measured crossover size up. */
#define _GNU_SOURCE 1
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ccg.h"
#include "cck.h"
#include "infer.h"
#include "jobs.h"
#include "shm.h"
#include "util.h"

/* Parts start at multiples of these (elements; matmul and matvec rows), as libcck's own splits do. */
#define ELEM_ALIGN 64
#define MATMUL_ROW_ALIGN 8
#define MATVEC_ROW_ALIGN 4

/* A checked tensor: where it lives and what it covers. */
struct tref {
	const struct ccd_region *r;
	uint64_t off, len;
};

static const char *const kind_what[CCK_KIND_COUNT] = {
    [CCK_KIND_UNARY] = "an element-wise op",
    [CCK_KIND_VECTOR] = "a whole-vector op",
    [CCK_KIND_BINARY] = "a binary op",
    [CCK_KIND_REDUCE] = "a reduction",
    [CCK_KIND_REDUCE2] = "a two-input reduction",
    [CCK_KIND_MATRIX] = "a matrix op",
};

static int check_tensor(const Cc__TensorRef *t, const char *what, const struct ccd_regions *regions, struct tref *ret,
                        char *err, size_t errsize)
{
	const struct ccd_region *r;

	if (!t) {
		snprintf(err, errsize, "%s: missing", what);
		return -EINVAL;
	}
	if (t->dtype != CC__DTYPE__DTYPE_F32) {
		snprintf(err, errsize, "%s: dtype %d not supported (only f32 = 0)", what, (int)t->dtype);
		return -EINVAL;
	}
	r = ccd_region_find(regions, t->region_id);
	if (!r) {
		snprintf(err, errsize, "%s: no region %" PRIu64, what, t->region_id);
		return -ENOENT;
	}
	if (t->offset % sizeof(float)) {
		snprintf(err, errsize, "%s: offset %" PRIu64 " is not a multiple of 4", what, t->offset);
		return -EINVAL;
	}
	if (t->len > r->size / sizeof(float) || t->offset > r->size || t->len * sizeof(float) > r->size - t->offset) {
		snprintf(err, errsize,
		         "%s: offset %" PRIu64 " + %" PRIu64 " elements past the end of region %" PRIu64 " (%zu bytes)",
		         what, t->offset, t->len, t->region_id, r->size);
		return -ERANGE;
	}
	ret->r = r;
	ret->off = t->offset;
	ret->len = t->len;
	return 0;
}

/* Same memory object: the same region, or two regions over one memfd (offsets are file offsets in both). */
static int same_memory(const struct tref *a, const struct tref *b)
{
	return a->r == b->r || (a->r->dev == b->r->dev && a->r->ino == b->r->ino);
}

static int overlap(const struct tref *a, const struct tref *b)
{
	if (!a->len || !b->len || !same_memory(a, b))
		return 0;
	return a->off < b->off + b->len * sizeof(float) && b->off < a->off + a->len * sizeof(float);
}

static int exact_alias(const struct tref *a, const struct tref *b)
{
	return same_memory(a, b) && a->off == b->off && a->len == b->len;
}

static int check_len(const struct tref *t, const char *what, uint64_t want, const char *want_what, char *err,
                     size_t errsize)
{
	if (t->len == want)
		return 0;
	snprintf(err, errsize, "%s: len %" PRIu64 " != %s %" PRIu64, what, t->len, want_what, want);
	return -EINVAL;
}

static int mul(uint64_t a, uint64_t b, const char *what, uint64_t *ret, char *err, size_t errsize)
{
	if (__builtin_mul_overflow(a, b, ret)) {
		snprintf(err, errsize, "%s overflows (%" PRIu64 " * %" PRIu64 ")", what, a, b);
		return -EINVAL;
	}
	return 0;
}

static int check_matrix(struct ccd_job *job, const Cc__OpRequest *req, const struct tref *in, const struct tref *out,
                        char *err, size_t errsize)
{
	uint64_t mk, kn, mn;
	int r;

	job->m = req->m;
	job->k = req->k;
	job->n = req->n;
	r = mul(req->m, req->k, "m*k", &mk, err, errsize);
	if (r)
		return r;
	if (job->op == CCK_OP_MATVEC) {
		/* y[m] = A[m x k] x[k]: n is 1 (or left 0). */
		if (req->n > 1) {
			snprintf(err, errsize, "n: matvec takes n = 1 (or 0), got %" PRIu64, req->n);
			return -EINVAL;
		}
		r = check_len(&in[0], "input 0", mk, "m*k", err, errsize);
		r = r ? r : check_len(&in[1], "input 1", req->k, "k", err, errsize);
		r = r ? r : check_len(out, "output", req->m, "m", err, errsize);
		job->work = mk;
		return r;
	}
	r = mul(req->k, req->n, "k*n", &kn, err, errsize);
	r = r ? r : mul(req->m, req->n, "m*n", &mn, err, errsize);
	r = r ? r : check_len(&in[0], "input 0", mk, "m*k", err, errsize);
	r = r ? r : check_len(&in[1], "input 1", kn, "k*n", err, errsize);
	r = r ? r : check_len(out, "output", mn, "m*n", err, errsize);
	if (r)
		return r;
	if (__builtin_mul_overflow(mk, req->n, &job->work))
		job->work = UINT64_MAX;
	return 0;
}

int ccd_job_prepare(struct ccd_job *job, const Cc__OpRequest *req, const struct ccd_regions *regions, char *err,
                    size_t errsize)
{
	struct tref in[2] = {{0}}, out = {0};
	char name[48], what[32];
	int op, kind, np, nin, has_out, r;
	size_t i;

	ccd_sanitize(name, sizeof(name), req->op);
	op = cck_op_lookup(req->op ? req->op : "");
	if (op < 0) {
		snprintf(err, errsize, "unknown op '%s'", name);
		return -ENOENT;
	}
	kind = cck_op_kind(op);
	np = cck_op_nparams(op);
	nin = (kind == CCK_KIND_BINARY || kind == CCK_KIND_REDUCE2 || kind == CCK_KIND_MATRIX) ? 2 : 1;
	has_out = kind != CCK_KIND_REDUCE && kind != CCK_KIND_REDUCE2;
	snprintf(name, sizeof(name), "%s", cck_op_name(op));

	if (req->n_inputs != (size_t)nin) {
		snprintf(err, errsize, "inputs: op '%s' takes %d, got %zu", name, nin, req->n_inputs);
		return -EINVAL;
	}
	if (has_out && !req->output) {
		snprintf(err, errsize, "output: op '%s' needs an output tensor", name);
		return -EINVAL;
	}
	if (!has_out && req->output) {
		snprintf(err, errsize, "output: op '%s' is %s: it returns a value and takes no output tensor", name,
		         kind_what[kind]);
		return -EINVAL;
	}
	if (req->n_params != (size_t)np) {
		snprintf(err, errsize, "params: op '%s' takes %d, got %zu", name, np, req->n_params);
		return -EINVAL;
	}
	for (i = 0; i < req->n_inputs; i++) {
		snprintf(what, sizeof(what), "input %zu", i);
		r = check_tensor(req->inputs[i], what, regions, &in[i], err, errsize);
		if (r)
			return r;
	}
	if (has_out) {
		r = check_tensor(req->output, "output", regions, &out, err, errsize);
		if (r)
			return r;
	}

	memset(job, 0, sizeof(*job));
	job->type = CCD_JOB_KERNEL;
	job->op = op;
	job->kind = kind;
	switch (kind) {
	case CCK_KIND_UNARY:
	case CCK_KIND_VECTOR:
	case CCK_KIND_REDUCE:
		r = has_out ? check_len(&out, "output", in[0].len, "input 0 len", err, errsize) : 0;
		break;
	case CCK_KIND_BINARY:
		r = check_len(&in[1], "input 1", in[0].len, "input 0 len", err, errsize);
		r = r ? r : check_len(&out, "output", in[0].len, "input 0 len", err, errsize);
		break;
	case CCK_KIND_REDUCE2:
		r = check_len(&in[1], "input 1", in[0].len, "input 0 len", err, errsize);
		break;
	case CCK_KIND_MATRIX:
		r = check_matrix(job, req, in, &out, err, errsize);
		break;
	default:
		snprintf(err, errsize, "op '%s': kind %d not served", name, kind);
		r = -EOPNOTSUPP;
	}
	if (r)
		return r;

	/* Element-wise kernels may write in place (y == x exactly); nothing else may overlap an input. */
	for (i = 0; has_out && i < (size_t)nin; i++) {
		int inplace_ok = kind == CCK_KIND_UNARY || kind == CCK_KIND_VECTOR || kind == CCK_KIND_BINARY;

		if (overlap(&out, &in[i]) && !(inplace_ok && exact_alias(&out, &in[i]))) {
			snprintf(err, errsize, "output overlaps input %zu%s", i,
			         inplace_ok ? " (only the very same tensor, y == x, is allowed)"
			                    : " (not allowed for matrix ops)");
			return -EINVAL;
		}
	}

	for (i = 0; i < (size_t)np; i++) {
		if (isnan(req->params[i])) {
			snprintf(err, errsize, "params[%zu] is NaN", i);
			return -EINVAL;
		}
		job->params[i] = req->params[i];
	}
	/* libcck checks the values (clamp lo <= hi, eps >= 0) before it looks at any data. */
	if (np && cck_unary_f32(op, NULL, NULL, 0, job->params) < 0) {
		const char *hint = op == CCK_OP_CLAMP                                   ? " (need lo <= hi)"
		                   : (op == CCK_OP_LAYER_NORM || op == CCK_OP_RMS_NORM) ? " (need eps >= 0)"
		                                                                        : "";

		if (np > 1)
			snprintf(err, errsize, "params: (%g, %g) rejected by op '%s'%s", (double)job->params[0],
			         (double)job->params[1], name, hint);
		else
			snprintf(err, errsize, "params: %g rejected by op '%s'%s", (double)job->params[0], name, hint);
		return -EINVAL;
	}

	for (i = 0; i < (size_t)nin; i++) {
		job->in[i] = (const float *)(in[i].r->addr + in[i].off);
		job->regions[job->nregions++] = (struct ccd_region *)in[i].r;
	}
	if (has_out) {
		job->out = (float *)(out.r->addr + out.off);
		job->regions[job->nregions++] = (struct ccd_region *)out.r;
	}
	job->len = (size_t)in[0].len;
	if (kind != CCK_KIND_MATRIX)
		job->work = in[0].len;
	return 0;
}

int ccd_job_prepare_model(struct ccd_job *job, const Cc__OpRequest *req, const struct ccd_regions *regions,
                          const void *w, int wtype, uint64_t rows, uint64_t cols, char *err, size_t errsize)
{
	struct tref x, y;
	size_t stride;
	int r;

	if (req->n_inputs != 1) {
		snprintf(err, errsize, "inputs: model_matvec takes 1 (x), got %zu", req->n_inputs);
		return -EINVAL;
	}
	if (!req->output) {
		snprintf(err, errsize, "output: model_matvec needs an output tensor");
		return -EINVAL;
	}
	if (req->n_params) {
		snprintf(err, errsize, "params: model_matvec takes none, got %zu", req->n_params);
		return -EINVAL;
	}
	r = check_tensor(req->inputs[0], "input 0", regions, &x, err, errsize);
	r = r ? r : check_tensor(req->output, "output", regions, &y, err, errsize);
	r = r ? r : check_len(&x, "input 0", cols, "the tensor's columns", err, errsize);
	r = r ? r : check_len(&y, "output", rows, "the tensor's rows", err, errsize);
	if (r)
		return r;
	if (overlap(&x, &y)) {
		snprintf(err, errsize, "output overlaps input 0 (not allowed for matrix ops)");
		return -EINVAL;
	}
	/* a packed matrix (wtype | CCK_TYPE_PACK16) has its type's row bytes; cck_qmatvec takes them as its stride */
	if (cck_type_row_bytes(wtype & ~CCK_TYPE_PACK16, (size_t)cols, &stride) < 0) {
		snprintf(err, errsize, "tensor type %d with %" PRIu64 " columns is not a whole number of blocks", wtype,
		         cols);
		return -EINVAL;
	}
	memset(job, 0, sizeof(*job));
	job->type = CCD_JOB_MODEL_MATVEC;
	job->op = CCK_OP_MATVEC;
	job->kind = CCK_KIND_MATRIX;
	job->in[0] = (const float *)(x.r->addr + x.off);
	job->out = (float *)(y.r->addr + y.off);
	job->regions[job->nregions++] = (struct ccd_region *)x.r;
	job->regions[job->nregions++] = (struct ccd_region *)y.r;
	job->m = rows;
	job->k = cols;
	job->w = w;
	job->wtype = wtype;
	job->wstride = stride;
	job->work = rows * cols;
	return 0;
}

int ccd_job_out_tensor(struct ccd_job *job, const Cc__TensorRef *t, const struct ccd_regions *regions, uint64_t len,
                       float **ret, char *err, size_t errsize)
{
	struct tref o;
	int r;

	r = check_tensor(t, "output", regions, &o, err, errsize);
	r = r ? r : check_len(&o, "output", len, "the model's vocabulary", err, errsize);
	if (r)
		return r;
	if (job->nregions >= CCD_JOB_MAX_REGIONS) {
		snprintf(err, errsize, "too many tensors");
		return -EINVAL;
	}
	job->regions[job->nregions++] = (struct ccd_region *)o.r;
	*ret = (float *)(o.r->addr + o.off);
	return 0;
}

/* Rows per step of a model matvec: a forced unload stops it within one step. */
#define MODEL_ROWS_STEP 256

static void run_model_matvec(struct ccd_job *job)
{
	size_t r0, n;

	for (r0 = 0; r0 < job->m; r0 += n) {
		if (job->cancel && atomic_load_explicit(job->cancel, memory_order_relaxed)) {
			job->code = -ECANCELED;
			return;
		}
		n = job->m - r0 < MODEL_ROWS_STEP ? (size_t)job->m - r0 : MODEL_ROWS_STEP;
		job->code = ccg_qmatvec(job->wtype, (const char *)job->w + r0 * job->wstride, job->wstride, job->in[0],
		                        job->out + r0, n, (size_t)job->k);
		if (job->code)
			return;
	}
}

static size_t round_up(size_t v, size_t align)
{
	return (v + align - 1) / align * align;
}

unsigned ccd_job_plan(struct ccd_job *job, unsigned workers, uint64_t min_elements, uint64_t min_madds)
{
	uint64_t total, parts;
	size_t align;

	if (job->type != CCD_JOB_KERNEL || workers < 2)
		return 1;
	switch (job->kind) {
	case CCK_KIND_UNARY:
	case CCK_KIND_BINARY:
		total = job->len;
		parts = job->work / (min_elements ? min_elements : 1);
		align = ELEM_ALIGN;
		break;
	case CCK_KIND_MATRIX:
		total = job->m;
		parts = job->work / (min_madds ? min_madds : 1);
		align = job->op == CCK_OP_MATVEC ? MATVEC_ROW_ALIGN : MATMUL_ROW_ALIGN;
		if (parts > total / align)
			parts = total / align;
		break;
	default:
		return 1;
	}
	if (parts > workers)
		parts = workers;
	if (parts < 2)
		return 1;
	job->chunk = round_up((size_t)((total + parts - 1) / parts), align);
	return (unsigned)((total + job->chunk - 1) / job->chunk);
}

void ccd_job_part(const struct ccd_job *parent, unsigned i, unsigned nparts, struct ccd_job *part)
{
	size_t lo = (size_t)i * parent->chunk, cnt;

	CCD_ASSERT(i < nparts && parent->chunk);
	*part = *parent;
	part->next = NULL;
	part->parent = NULL;
	part->parts_left = 0;
	part->nregions = 0;
	part->code = 0;
	part->value = 0;
	if (parent->kind == CCK_KIND_MATRIX) {
		CCD_ASSERT(lo < parent->m);
		cnt = parent->m - lo < parent->chunk ? (size_t)parent->m - lo : parent->chunk;
		part->m = cnt;
		part->in[0] = parent->in[0] + lo * parent->k;
		part->out = parent->out + (parent->op == CCK_OP_MATVEC ? lo : lo * parent->n);
		part->work = cnt * parent->k * (parent->op == CCK_OP_MATVEC ? 1 : parent->n);
		return;
	}
	CCD_ASSERT(lo < parent->len);
	cnt = parent->len - lo < parent->chunk ? parent->len - lo : parent->chunk;
	part->len = cnt;
	part->work = cnt;
	part->in[0] = parent->in[0] + lo;
	if (parent->kind == CCK_KIND_BINARY)
		part->in[1] = parent->in[1] + lo;
	part->out = parent->out + lo;
}

void ccd_job_run(struct ccd_job *job)
{
	double v = 0;

	if (job->type == CCD_JOB_MODEL_MATVEC) {
		job->code = 0;
		run_model_matvec(job);
		job->value = 0;
		return;
	}
	if (job->type == CCD_JOB_INFER) {
		ccd_infer_run(job->infer);
		job->code = job->infer->code;
		job->value = 0;
		return;
	}
	CCD_ASSERT(job->type == CCD_JOB_KERNEL);
	switch (job->kind) {
	case CCK_KIND_UNARY:
	case CCK_KIND_VECTOR:
		job->code = ccg_unary_f32(job->op, job->in[0], job->out, job->len, job->params);
		break;
	case CCK_KIND_BINARY:
		job->code = ccg_binary_f32(job->op, job->in[0], job->in[1], job->out, job->len);
		break;
	case CCK_KIND_REDUCE:
		job->code = ccg_reduce_f32(job->op, job->in[0], job->len, &v);
		break;
	case CCK_KIND_REDUCE2:
		job->code = ccg_reduce2_f32(job->op, job->in[0], job->in[1], job->len, &v);
		break;
	case CCK_KIND_MATRIX:
		if (job->op == CCK_OP_MATVEC)
			job->code = ccg_matvec_f32(job->in[0], job->in[1], job->out, (size_t)job->m, (size_t)job->k);
		else
			job->code = ccg_matmul_f32(job->in[0], job->in[1], job->out, (size_t)job->m, (size_t)job->k,
			                           (size_t)job->n);
		break;
	default:
		job->code = -EOPNOTSUPP;
	}
	job->value = job->code ? 0 : v;
}

void ccd_job_strerror(const struct ccd_job *job, char *buf, size_t size)
{
	const char *name = cck_op_name(job->op);

	if (!name)
		name = "?";
	if (job->type == CCD_JOB_INFER) {
		snprintf(buf, size, "%s", job->infer->err[0] ? job->infer->err : strerror(-job->code));
		return;
	}
	if (job->type == CCD_JOB_MODEL_MATVEC) {
		if (job->code == -ECANCELED)
			snprintf(buf, size,
			         "model_matvec cancelled: the model is being unloaded, or ccd is shutting down");
		else
			snprintf(buf, size, "model_matvec failed: %s", strerror(-job->code));
		return;
	}
	if (job->code == -ECANCELED)
		snprintf(buf, size, "op '%s' cancelled: ccd is shutting down", name);
	else if ((job->kind == CCK_KIND_REDUCE || job->kind == CCK_KIND_REDUCE2) && !job->len && job->code == -EINVAL)
		snprintf(buf, size, "op '%s' of an empty vector is undefined", name);
	else
		snprintf(buf, size, "op '%s' failed: %s", name, strerror(-job->code));
}
