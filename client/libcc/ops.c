/* SPDX-License-Identifier: MIT */
/* ops.c: libcck ops through ccd on registered tensors: argument checks, sync calls, submit/wait/poll. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libcc-internal.h"

/* One op's operands, checked here before anything is sent. */
struct op_args {
	const char *op;
	const cc_tensor *in[2];
	size_t nin;
	const cc_tensor *out; /* NULL for reductions */
	const float *params;
	size_t nparams;
	uint64_t m, k, n;
	const char *model, *tensor; /* model_matvec */
};

static int ours(const cc_client *c, const cc_tensor *t)
{
	return t && t->c == c;
}

static int check_name(const char *op)
{
	size_t len;

	if (!op)
		return -EINVAL;
	len = strnlen(op, CC__OP_NAME_MAX);
	return len == 0 || len == CC__OP_NAME_MAX ? -EINVAL : 0;
}

static int check_params(const float *params, size_t nparams)
{
	if (nparams > CC__PARAMS_MAX || (nparams && !params))
		return -EINVAL;
	return 0;
}

static void ref_of(Cc__TensorRef *ref, const cc_tensor *t)
{
	ref->region_id = t->region_id;
	ref->offset = 0;
	ref->len = t->n;
	ref->dtype = CC__DTYPE__DTYPE_F32;
}

/* Send an op request for a; returns 0 and *ret_id, or -errno. */
static int op_send(cc_client *c, const struct op_args *a, uint64_t *ret_id)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__OpRequest op = CC__OP_REQUEST__INIT;
	Cc__TensorRef refs[3] = {CC__TENSOR_REF__INIT, CC__TENSOR_REF__INIT, CC__TENSOR_REF__INIT};
	Cc__TensorRef *inputs[2];
	size_t i;

	if (c->dead)
		return -ECONNRESET;
	for (i = 0; i < a->nin; i++) {
		ref_of(&refs[i], a->in[i]);
		inputs[i] = &refs[i];
	}
	op.op = (char *)a->op;
	op.n_inputs = a->nin;
	op.inputs = inputs;
	if (a->out) {
		ref_of(&refs[2], a->out);
		op.output = &refs[2];
	}
	op.n_params = a->nparams;
	op.params = (float *)a->params;
	op.m = a->m;
	op.k = a->k;
	op.n = a->n;
	op.model = (char *)(a->model ? a->model : "");
	op.tensor = (char *)(a->tensor ? a->tensor : "");
	req.body_case = CC__REQUEST__BODY_OP;
	req.op = &op;
	return cc__send(c, &req, ret_id);
}

/* Run a to completion: returns the job's code, the reduction value in *ret_value if not NULL. */
static int op_call(cc_client *c, const struct op_args *a, double *ret_value)
{
	Cc__Reply *rep;
	uint64_t id;
	int r;

	r = op_send(c, a, &id);
	if (r < 0)
		return r;
	/* no timeout: a long job is fine as long as ccd is alive (the wait checks that) */
	r = cc__wait_reply(c, id, -1, &rep);
	if (r < 0)
		return r;
	r = cc__reply_code(c, rep);
	if (r == 0 && ret_value)
		*ret_value = rep->body_case == CC__REPLY__BODY_OP && rep->op ? rep->op->value : 0.0;
	cc__reply__free_unpacked(rep, NULL);
	return r;
}

/* Submit a as a job: returns 0 and *ret_job, or -errno. */
static int op_submit(cc_client *c, const struct op_args *a, uint64_t *ret_job)
{
	uint64_t want = c->next_id, id;
	int r;

	/* the job is recorded under the id the send is about to use, so its reply always has a home */
	r = cc__job_add(c, want);
	if (r < 0)
		return r;
	r = op_send(c, a, &id);
	if (r < 0) {
		cc__job_remove(c, want);
		return r;
	}
	*ret_job = id;
	return 0;
}

static int unary_args(cc_client *c, const char *op, const cc_tensor *x, cc_tensor *y, const float *params,
                      size_t nparams, struct op_args *a)
{
	if (!c || check_name(op) < 0 || !ours(c, x) || !ours(c, y) || check_params(params, nparams) < 0)
		return -EINVAL;
	if (x->n != y->n)
		return -EINVAL;
	memset(a, 0, sizeof(*a));
	a->op = op;
	a->in[0] = x;
	a->nin = 1;
	a->out = y;
	a->params = params;
	a->nparams = nparams;
	return 0;
}

static int binary_args(cc_client *c, const char *op, const cc_tensor *x, const cc_tensor *b, cc_tensor *y,
                       struct op_args *a)
{
	if (!c || check_name(op) < 0 || !ours(c, x) || !ours(c, b) || !ours(c, y))
		return -EINVAL;
	if (x->n != b->n || x->n != y->n)
		return -EINVAL;
	memset(a, 0, sizeof(*a));
	a->op = op;
	a->in[0] = x;
	a->in[1] = b;
	a->nin = 2;
	a->out = y;
	return 0;
}

static int reduce_args(cc_client *c, const char *op, const cc_tensor *x, const cc_tensor *b, struct op_args *a)
{
	if (!c || check_name(op) < 0 || !ours(c, x) || (b && !ours(c, b)))
		return -EINVAL;
	if (b && b->n != x->n)
		return -EINVAL;
	memset(a, 0, sizeof(*a));
	a->op = op;
	a->in[0] = x;
	a->in[1] = b;
	a->nin = b ? 2 : 1;
	return 0;
}

/* n1 * n2 == want, without overflow. */
static int product_is(size_t n1, size_t n2, size_t want)
{
	if (n1 && n2 > SIZE_MAX / n1)
		return 0;
	return n1 * n2 == want;
}

static int matmul_args(cc_client *c, const cc_tensor *A, const cc_tensor *B, cc_tensor *C, size_t m, size_t k, size_t n,
                       struct op_args *a)
{
	if (!c || !ours(c, A) || !ours(c, B) || !ours(c, C))
		return -EINVAL;
	/* C is written while A and B are read: it must be a tensor of its own */
	if (C == A || C == B)
		return -EINVAL;
	if (!product_is(m, k, A->n) || !product_is(k, n, B->n) || !product_is(m, n, C->n))
		return -EINVAL;
	memset(a, 0, sizeof(*a));
	a->op = "matmul";
	a->in[0] = A;
	a->in[1] = B;
	a->nin = 2;
	a->out = C;
	a->m = m;
	a->k = k;
	a->n = n;
	return 0;
}

int cc_unary(cc_client *c, const char *op, const cc_tensor *x, cc_tensor *y, const float *params, size_t nparams)
{
	struct op_args a;
	int r = unary_args(c, op, x, y, params, nparams, &a);

	return r < 0 ? r : op_call(c, &a, NULL);
}

int cc_binary(cc_client *c, const char *op, const cc_tensor *x, const cc_tensor *b, cc_tensor *y)
{
	struct op_args a;
	int r = binary_args(c, op, x, b, y, &a);

	return r < 0 ? r : op_call(c, &a, NULL);
}

int cc_reduce(cc_client *c, const char *op, const cc_tensor *x, const cc_tensor *b, double *ret)
{
	struct op_args a;
	int r;

	if (!ret)
		return -EINVAL;
	r = reduce_args(c, op, x, b, &a);
	return r < 0 ? r : op_call(c, &a, ret);
}

int cc_matmul(cc_client *c, const cc_tensor *A, const cc_tensor *B, cc_tensor *C, size_t m, size_t k, size_t n)
{
	struct op_args a;
	int r = matmul_args(c, A, B, C, m, k, n, &a);

	return r < 0 ? r : op_call(c, &a, NULL);
}

static int model_matvec_args(cc_client *c, const char *model, const char *tensor, const cc_tensor *x, cc_tensor *y,
                             struct op_args *a)
{
	if (!c || !model || !tensor || !ours(c, x) || !ours(c, y))
		return -EINVAL;
	memset(a, 0, sizeof(*a));
	a->op = "model_matvec";
	a->in[0] = x;
	a->nin = 1;
	a->out = y;
	a->model = model;
	a->tensor = tensor;
	return 0;
}

int cc_model_matvec(cc_client *c, const char *model, const char *tensor, const cc_tensor *x, cc_tensor *y)
{
	struct op_args a;
	int r = model_matvec_args(c, model, tensor, x, y, &a);

	return r < 0 ? r : op_call(c, &a, NULL);
}

int cc_submit_model_matvec(cc_client *c, const char *model, const char *tensor, const cc_tensor *x, cc_tensor *y,
                           uint64_t *ret_job)
{
	struct op_args a;
	int r;

	if (!ret_job)
		return -EINVAL;
	r = model_matvec_args(c, model, tensor, x, y, &a);
	return r < 0 ? r : op_submit(c, &a, ret_job);
}

int cc_submit_unary(cc_client *c, const char *op, const cc_tensor *x, cc_tensor *y, const float *params, size_t nparams,
                    uint64_t *ret_job)
{
	struct op_args a;
	int r;

	if (!ret_job)
		return -EINVAL;
	r = unary_args(c, op, x, y, params, nparams, &a);
	return r < 0 ? r : op_submit(c, &a, ret_job);
}

int cc_submit_binary(cc_client *c, const char *op, const cc_tensor *x, const cc_tensor *b, cc_tensor *y,
                     uint64_t *ret_job)
{
	struct op_args a;
	int r;

	if (!ret_job)
		return -EINVAL;
	r = binary_args(c, op, x, b, y, &a);
	return r < 0 ? r : op_submit(c, &a, ret_job);
}

int cc_submit_reduce(cc_client *c, const char *op, const cc_tensor *x, const cc_tensor *b, uint64_t *ret_job)
{
	struct op_args a;
	int r;

	if (!ret_job)
		return -EINVAL;
	r = reduce_args(c, op, x, b, &a);
	return r < 0 ? r : op_submit(c, &a, ret_job);
}

int cc_submit_matmul(cc_client *c, const cc_tensor *A, const cc_tensor *B, cc_tensor *C, size_t m, size_t k, size_t n,
                     uint64_t *ret_job)
{
	struct op_args a;
	int r;

	if (!ret_job)
		return -EINVAL;
	r = matmul_args(c, A, B, C, m, k, n, &a);
	return r < 0 ? r : op_submit(c, &a, ret_job);
}

/* Hand a finished job's result to the caller and forget the job. */
static int collect(cc_client *c, struct cc__job *j, double *ret_value)
{
	int code = j->code;

	if (code == 0 && ret_value)
		*ret_value = j->value;
	if (code)
		cc__set_error(c, j->error ? j->error : cc_strerror(code));
	cc__job_remove(c, j->id);
	return code;
}

/* cc_wait and cc_poll; timing out gives timeout_code (a job's own -ETIMEDOUT stays itself). */
static int wait_job(cc_client *c, uint64_t job, int timeout_ms, double *ret_value, int timeout_code)
{
	struct cc__job *j;
	Cc__Reply *rep;
	int r;

	if (!c || job == 0)
		return -EINVAL;
	j = cc__job_find(c, job);
	if (!j)
		return -ESRCH;
	if (j->done)
		return collect(c, j, ret_value);
	if (c->dead)
		return -ECONNRESET;
	r = cc__wait_reply(c, job, timeout_ms, &rep);
	if (r == -ETIMEDOUT)
		return timeout_code;
	if (r < 0)
		return r;
	/* the table may have moved while replies to other jobs were stored */
	j = cc__job_find(c, job);
	r = cc__reply_code(c, rep);
	if (r == 0 && ret_value)
		*ret_value = rep->body_case == CC__REPLY__BODY_OP && rep->op ? rep->op->value : 0.0;
	cc__reply__free_unpacked(rep, NULL);
	if (j)
		cc__job_remove(c, j->id);
	return r;
}

int cc_wait(cc_client *c, uint64_t job, int timeout_ms, double *ret_value)
{
	return wait_job(c, job, timeout_ms, ret_value, -ETIMEDOUT);
}

int cc_poll(cc_client *c, uint64_t job, double *ret_value)
{
	return wait_job(c, job, 0, ret_value, -EAGAIN);
}
