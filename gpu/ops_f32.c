/* SPDX-License-Identifier: MIT */
/*
 * ops_f32.c: libcck's f32 op table on the OpenCL device (the kernels of gpu/cl/f32.cl). Each call checks its
 * arguments as the cck_* function of the same name does, then runs on the device: element-wise ops as one kernel;
 * reductions as per-work-group partial sums that the host adds up in double (min/max: per-group extremes merged
 * by the same first-index rule); whole-vector ops as libcck composes them (cck.c: the same passes, centres, scale
 * factors and NaN rules), each pass a reduction and the last one the element-wise output, so y is written once.
 */
#include "config.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cck.h"
#include "ccg_internal.h"

/* Largest n whose float array can exist (objects are at most PTRDIFF_MAX bytes), as libcck. */
#define MAX_N ((size_t)PTRDIFF_MAX / sizeof(float))
/* As gpu/cl/f32.cl: the most work-items of a 1-D work-group; the scan's elements per work-item; the matmul tile. */
#define F32_WG 256
#define SCAN_ITEMS 8
#define MM_T 64
#define MM_L 16
/* Below this many columns a matvec takes a work-item per row rather than a work-group. */
#define MATVEC_ROW_COLS 32
/* Sums: work-groups per compute unit (enough to fill a GPU), at most MAX_GROUPS partial sums, each work-item at
 * least SUM_ITEMS elements. */
#define GROUPS_PER_CU 8
#define MAX_GROUPS 1024
#define SUM_ITEMS 8
/* libcck's moments(): the centre of a variance is the mean of the first SHIFT_N elements. */
#define SHIFT_N 4096
#define NONE SIZE_MAX
#define MAX_BUFS 8

/* The kernel of each element-wise op (unary and binary). */
static const char *const elem_kernels[CCK_OP_COUNT] = {
    [CCK_OP_NEG] = "f32_neg",
    [CCK_OP_ABS] = "f32_abs",
    [CCK_OP_SQUARE] = "f32_square",
    [CCK_OP_SQRT] = "f32_sqrt",
    [CCK_OP_RSQRT] = "f32_rsqrt",
    [CCK_OP_RECIP] = "f32_recip",
    [CCK_OP_EXP] = "f32_exp",
    [CCK_OP_LN] = "f32_ln",
    [CCK_OP_LOG2] = "f32_log2",
    [CCK_OP_LOG10] = "f32_log10",
    [CCK_OP_SIN] = "f32_sin",
    [CCK_OP_COS] = "f32_cos",
    [CCK_OP_TANH] = "f32_tanh",
    [CCK_OP_SIGMOID] = "f32_sigmoid",
    [CCK_OP_RELU] = "f32_relu",
    [CCK_OP_LEAKY_RELU] = "f32_leaky_relu",
    [CCK_OP_ELU] = "f32_elu",
    [CCK_OP_SELU] = "f32_selu",
    [CCK_OP_GELU] = "f32_gelu",
    [CCK_OP_GELU_ERF] = "f32_gelu_erf",
    [CCK_OP_SILU] = "f32_silu",
    [CCK_OP_MISH] = "f32_mish",
    [CCK_OP_HARDSWISH] = "f32_hardswish",
    [CCK_OP_SOFTPLUS] = "f32_softplus",
    [CCK_OP_FLOOR] = "f32_floor",
    [CCK_OP_CEIL] = "f32_ceil",
    [CCK_OP_ROUND] = "f32_round",
    [CCK_OP_TRUNC] = "f32_trunc",
    [CCK_OP_SCALE] = "f32_scale",
    [CCK_OP_ADD_SCALAR] = "f32_add_scalar",
    [CCK_OP_CLAMP] = "f32_clamp",
    [CCK_OP_ADD] = "f32_add",
    [CCK_OP_SUB] = "f32_sub",
    [CCK_OP_MUL] = "f32_mul",
    [CCK_OP_DIV] = "f32_div",
    [CCK_OP_MINIMUM] = "f32_minimum",
    [CCK_OP_MAXIMUM] = "f32_maximum",
};

/* ---- one call: the device locked, its buffers, the first error (later steps do nothing once there is one) ---- */

struct call {
	struct ccg_dev *d;
	int err;
	int nbuf;
	cl_mem buf[MAX_BUFS];
};

static void call_begin(struct call *c, struct ccg_dev *d)
{
	memset(c, 0, sizeof(*c));
	c->d = d;
	pthread_mutex_lock(&d->lock);
}

/* Release every buffer (after a failure, once nothing enqueued may still use their host memory); 0 or -errno. */
static int call_end(struct call *c)
{
	if (c->err)
		clFinish(c->d->q);
	for (int i = 0; i < c->nbuf; i++)
		ccg_buf_put(c->d, c->buf[i]);
	pthread_mutex_unlock(&c->d->lock);
	return c->err;
}

static void fail(struct call *c, int err)
{
	if (!c->err)
		c->err = err;
}

static cl_mem keep(struct call *c, cl_mem b, int err)
{
	if (!b) {
		fail(c, err ? err : -ENOMEM);
		return NULL;
	}
	if (c->nbuf == MAX_BUFS) { /* not reached: no op needs more */
		ccg_buf_put(c->d, b);
		fail(c, -ENOMEM);
		return NULL;
	}
	c->buf[c->nbuf++] = b;
	return b;
}

/* Release b before the call ends (its host memory is about to go: after a failure, wait for what may use it). */
static void drop(struct call *c, cl_mem b)
{
	if (c->err)
		clFinish(c->d->q);
	for (int i = 0; i < c->nbuf; i++)
		if (c->buf[i] == b) {
			ccg_buf_put(c->d, b);
			c->buf[i] = c->buf[--c->nbuf];
			return;
		}
}

enum buf_kind { B_IN, B_OUT, B_INOUT, B_TMP };

static cl_mem buffer(struct call *c, enum buf_kind kind, const void *host, size_t bytes)
{
	cl_mem b = NULL;
	int err = 0;

	if (c->err)
		return NULL;
	switch (kind) {
	case B_IN:
		b = ccg_buf_in(c->d, host, bytes, &err);
		break;
	case B_OUT:
		b = ccg_buf_out(c->d, (void *)host, bytes, &err);
		break;
	case B_INOUT:
		b = ccg_buf_inout(c->d, (void *)host, bytes, &err);
		break;
	case B_TMP:
		b = ccg_buf_tmp(c->d, bytes, &err);
		break;
	}
	return keep(c, b, err);
}

/* Bring the first bytes of b to host. */
static void get(struct call *c, cl_mem b, void *host, size_t bytes)
{
	if (!c->err)
		fail(c, ccg_buf_get(c->d, b, host, bytes));
}

static cl_kernel kernel(struct call *c, const char *name)
{
	cl_kernel k;

	if (c->err)
		return NULL;
	k = ccg_kernel(c->d, name);
	if (!k)
		fail(c, -EIO); /* the program lacks it: not built from this source */
	return k;
}

/* Set the first nargs arguments of k from (size_t size, const void *value) pairs: ARG(v) makes one. */
#define ARG(v) sizeof(v), (const void *)&(v)
static void args(struct call *c, cl_kernel k, unsigned nargs, ...)
{
	va_list ap;

	va_start(ap, nargs);
	for (unsigned i = 0; i < nargs && !c->err; i++) {
		size_t size = va_arg(ap, size_t);
		const void *value = va_arg(ap, const void *);

		fail(c, ccg_arg(k, i, size, value));
	}
	va_end(ap);
}

/* Work-items per work-group for a 1-D kernel: a power of two, at most F32_WG, what the device and k allow. */
static size_t group_size(struct call *c, cl_kernel k)
{
	size_t w = ccg_wg(c->d), kw = 0, p = 1;

	if (c->err)
		return 1;
	if (clGetKernelWorkGroupInfo(k, c->d->dev, CL_KERNEL_WORK_GROUP_SIZE, sizeof(kw), &kw, NULL) == CL_SUCCESS &&
	    kw && kw < w)
		w = kw;
	if (w > F32_WG)
		w = F32_WG;
	while (p * 2 <= w)
		p *= 2;
	return p;
}

/* Enqueue k over items work-items (rounded up to whole work-groups of lws). */
static void run1(struct call *c, cl_kernel k, size_t items, size_t lws)
{
	size_t gws = ccg_round_up(items ? items : 1, lws);

	if (!c->err)
		fail(c, ccg_run(c->d, k, 1, &gws, &lws));
}

/* ---- sums and extremes ---------------------------------------------------------------------------------------- */

/* Work-groups for a sum over n elements with wg work-items each. */
static size_t sum_groups(const struct ccg_dev *d, size_t n, size_t wg)
{
	size_t g = (n + wg * SUM_ITEMS - 1) / (wg * SUM_ITEMS);
	size_t gmax = (size_t)(d->info.compute_units ? d->info.compute_units : 1) * GROUPS_PER_CU;

	if (gmax > MAX_GROUPS)
		gmax = MAX_GROUPS;
	return g < 1 ? 1 : g > gmax ? gmax : g;
}

/* min and max of the non-NaN elements with the first index of each (NONE: none), and the first NaN's index. */
struct extremes {
	float mn, mx;
	size_t mi, xi, ni;
};

/* Is (v, i) a better extreme than (w, j)? As ext_better() of gpu/cl/f32.cl. */
static int better(float v, size_t i, float w, size_t j, int want_max)
{
	if (i == NONE)
		return 0;
	if (j == NONE || (want_max ? v > w : v < w))
		return 1;
	return v == w && i < j;
}

static void extremes(struct call *c, cl_mem x, size_t n, struct extremes *e)
{
	cl_kernel k = kernel(c, "f32_minmax");
	size_t wg = group_size(c, k), ng = sum_groups(c->d, n, wg);
	cl_ulong nn = n, *idx = NULL;
	float *vals = NULL;
	cl_mem vb, ib;

	e->mi = e->xi = e->ni = NONE;
	e->mn = e->mx = NAN;
	if (c->err)
		return;
	vals = malloc(ng * 2 * sizeof(*vals));
	idx = malloc(ng * 3 * sizeof(*idx));
	if (!vals || !idx) {
		fail(c, -ENOMEM);
		goto out;
	}
	vb = buffer(c, B_OUT, vals, ng * 2 * sizeof(*vals));
	ib = buffer(c, B_OUT, idx, ng * 3 * sizeof(*idx));
	args(c, k, 4, ARG(x), ARG(nn), ARG(vb), ARG(ib));
	run1(c, k, ng * wg, wg);
	get(c, vb, vals, ng * 2 * sizeof(*vals));
	get(c, ib, idx, ng * 3 * sizeof(*idx));
	drop(c, vb);
	drop(c, ib);
	for (size_t g = 0; g < ng && !c->err; g++) {
		size_t mi = idx[3 * g] == CL_ULONG_MAX ? NONE : (size_t)idx[3 * g];
		size_t xi = idx[3 * g + 1] == CL_ULONG_MAX ? NONE : (size_t)idx[3 * g + 1];
		size_t ni = idx[3 * g + 2] == CL_ULONG_MAX ? NONE : (size_t)idx[3 * g + 2];

		if (better(vals[2 * g], mi, e->mn, e->mi, 0)) {
			e->mn = vals[2 * g];
			e->mi = mi;
		}
		if (better(vals[2 * g + 1], xi, e->mx, e->xi, 1)) {
			e->mx = vals[2 * g + 1];
			e->xi = xi;
		}
		if (ni < e->ni)
			e->ni = ni;
	}
out:
	free(vals);
	free(idx);
}

/* The magnitude a scale must bring into range: max |x| over the non-NaN elements, an infinity counting as FLT_MAX
 * (scaled, it stays infinite, and the finite elements must not overflow beside it); 0 with none. */
static double max_mag(struct call *c, cl_mem x, size_t n)
{
	struct extremes e;
	double m;

	extremes(c, x, n, &e);
	if (e.mi == NONE)
		return 0;
	m = fmax(fabs((double)e.mn), fabs((double)e.mx));
	return isinf(m) ? FLT_MAX : m;
}

/* The sum kernels (gpu/cl/f32.cl's F32_SUMS): accumulators, and the power of a's and b's scale in each. */
enum sum_kernel { SK_SUM, SK_SUMSQ, SK_ABSSUM, SK_EXPSUM, SK_CSUMSQ, SK_DOT, SK_SQDIFF, SK_SUM2, SK_CENTRED };

static const struct {
	const char *name;
	int nacc;
	unsigned char pa[5], pb[5];
} sum_kernels[] = {
    [SK_SUM] = {"f32_sum", 1, {1}, {0}},
    [SK_SUMSQ] = {"f32_sumsq", 1, {2}, {0}},
    [SK_ABSSUM] = {"f32_abssum", 1, {1}, {0}},
    [SK_EXPSUM] = {"f32_expsum", 1, {0}, {0}},
    [SK_CSUMSQ] = {"f32_csumsq", 2, {1, 2}, {0, 0}},
    [SK_DOT] = {"f32_dot", 1, {1}, {1}},
    [SK_SQDIFF] = {"f32_sqdiff", 1, {2}, {0}}, /* one scale for a and b */
    [SK_SUM2] = {"f32_sum2", 2, {1, 0}, {0, 1}},
    [SK_CENTRED] = {"f32_centred", 5, {1, 2, 0, 1, 0}, {1, 0, 2, 0, 1}},
};

/* The partial sum i: a double with CCG_FP64 (the program is built with it iff info.fp64), else a compensated float
 * pair. */
static double partial(const struct ccg_dev *d, const void *host, size_t i)
{
	if (d->info.fp64)
		return ((const double *)host)[i];
	return (double)((const float *)host)[2 * i] + (double)((const float *)host)[2 * i + 1];
}

/* One run of sum kernel sk with the scales sa, sb: out[] = the groups' partial sums added in double, in order. */
static void sums_run(struct call *c, enum sum_kernel sk, cl_mem a, cl_mem b, size_t n, float c0, float c1, float sa,
                     float sb, double *out)
{
	const int nacc = sum_kernels[sk].nacc;
	cl_kernel k = kernel(c, sum_kernels[sk].name);
	size_t wg = group_size(c, k), ng = sum_groups(c->d, n, wg), bytes = ng * (size_t)nacc * 8;
	cl_ulong nn = n;
	void *host;
	cl_mem ob;

	for (int j = 0; j < nacc; j++)
		out[j] = 0;
	if (c->err)
		return;
	host = malloc(bytes);
	if (!host) {
		fail(c, -ENOMEM);
		return;
	}
	ob = buffer(c, B_OUT, host, bytes);
	args(c, k, 8, ARG(a), ARG(b), ARG(nn), ARG(c0), ARG(c1), ARG(sa), ARG(sb), ARG(ob));
	run1(c, k, ng * wg, wg);
	get(c, ob, host, bytes);
	drop(c, ob);
	for (size_t g = 0; g < ng && !c->err; g++)
		for (int j = 0; j < nacc; j++)
			out[j] += partial(c->d, host, g * (size_t)nacc + (size_t)j);
	free(host);
}

/* A normal power of two that brings m (finite, > 0) into [1, 4); 1 for 0, inf or NaN. */
static float scale_for(double m)
{
	int e;

	if (!(m > 0 && isfinite(m)))
		return 1;
	e = -ilogb(m);
	return ldexpf(1.0f, e > 126 ? 126 : e < -126 ? -126 : e);
}

/* libcck's threshold for a sum of squares too small to trust from float accumulation (kern_simd.inc) */
#define TINY_SUMSQ 1e-20

/*
 * The sums of kernel sk over a[0..n) (and b) with centres c0, c1, into out[]. Double accumulators cover every
 * float input; compensated float ones overflow (sums near FLT_MAX, squares of |x| > 1.8e19) or lose squares below
 * 1e-19, so without double a result that is not finite, or a tiny sum of squares, is computed again with the
 * elements scaled by a power of two that brings max |x| to [1, 2), and scaled back in double, as libcck redoes
 * such chunks in double.
 */
static void sums(struct call *c, enum sum_kernel sk, cl_mem a, cl_mem b, size_t n, float c0, float c1, double *out)
{
	int redo = 0;
	double ma, mb;
	float sa, sb;

	sums_run(c, sk, a, b, n, c0, c1, 1, 1, out);
	if (c->err || c->d->info.fp64 || sk == SK_EXPSUM)
		return;
	for (int j = 0; j < sum_kernels[sk].nacc; j++) {
		int squares = sum_kernels[sk].pa[j] + sum_kernels[sk].pb[j] == 2;

		redo |= !isfinite(out[j]) || (squares && fabs(out[j]) < TINY_SUMSQ);
	}
	if (!redo)
		return;
	ma = max_mag(c, a, n);
	mb = sk == SK_DOT || sk == SK_SQDIFF || sk == SK_SUM2 || sk == SK_CENTRED ? max_mag(c, b, n) : 0;
	if (sk == SK_SQDIFF)
		ma = mb = fmax(ma, mb);
	sa = scale_for(ma);
	sb = scale_for(mb);
	if (sa == 1 && sb == 1)
		return;
	sums_run(c, sk, a, b, n, c0 * sa, c1 * sb, sa, sb, out);
	for (int j = 0; j < sum_kernels[sk].nacc; j++)
		out[j] = ldexp(out[j], -sum_kernels[sk].pa[j] * ilogbf(sa) - sum_kernels[sk].pb[j] * ilogbf(sb));
}

/*
 * Population mean and variance as libcck's moments(): centred on c, the mean of the first SHIFT_N elements, with
 * var = (s1 - s0^2 / n) / n (s0 = sum (x - c), s1 = sum (x - c)^2), and centred again on the mean when the head
 * was unrepresentative.
 */
static void moments(struct call *c, cl_mem x, size_t n, double *mean, double *var)
{
	size_t head = n < SHIFT_N ? n : SHIFT_N;
	double s, r[2], v;
	float ctr;

	sums(c, SK_SUM, x, x, head, 0, 0, &s);
	ctr = (float)(s / (double)head);
	if (!isfinite(ctr))
		ctr = 0; /* inf/NaN input: let the full pass produce it */
	sums(c, SK_CSUMSQ, x, x, n, ctr, 0, r);
	if (head < n && r[0] * r[0] / (double)n > 0.5 * r[1]) {
		ctr = (float)(ctr + r[0] / (double)n);
		sums(c, SK_CSUMSQ, x, x, n, ctr, 0, r);
	}
	v = (r[1] - r[0] * r[0] / (double)n) / (double)n;
	*mean = ctr + r[0] / (double)n;
	*var = v < 0 ? 0 : v; /* rounding can go just below 0; NaN stays NaN */
}

/* ---- element-wise --------------------------------------------------------------------------------------------- */

/* The x and y buffers of an element-wise call: one read-write buffer when y is x. */
static void io(struct call *c, const float *x, float *y, size_t n, cl_mem *xb, cl_mem *yb)
{
	if (x == y) {
		*xb = *yb = buffer(c, B_INOUT, y, n * sizeof(float));
	} else {
		*xb = buffer(c, B_IN, x, n * sizeof(float));
		*yb = buffer(c, B_OUT, y, n * sizeof(float));
	}
}

/* y = name(x) with the params a, b (kernels of F32_UNARY's arguments). */
static void unary(struct call *c, const char *name, cl_mem x, cl_mem y, size_t n, float a, float b)
{
	cl_kernel k = kernel(c, name);
	cl_ulong nn = n;

	args(c, k, 5, ARG(x), ARG(y), ARG(nn), ARG(a), ARG(b));
	run1(c, k, n, group_size(c, k));
}

static void fill(struct call *c, cl_mem y, size_t n, float v)
{
	cl_kernel k = kernel(c, "f32_fill");
	cl_ulong nn = n;

	args(c, k, 3, ARG(y), ARG(nn), ARG(v));
	run1(c, k, n, group_size(c, k));
}

/*
 * libcck's affine(): y = (x + a) * f with a and f computed in double, the offset as two floats (hi, then lo: the
 * part of a that hi rounds away); where f is not a normal float (a denormal spread makes 1/spread overflow, a huge
 * one makes it denormal) in two steps through 2^64.
 */
static void affine(struct call *c, cl_mem x, cl_mem y, size_t n, double a, double f)
{
	cl_kernel k = kernel(c, "f32_affine");
	const float hi = (float)a, lo = isfinite(hi) ? (float)(a - (double)hi) : 0.0f;
	float b = (float)f, post = 1;
	cl_ulong nn = n;
	cl_int mode;

	if (f > FLT_MAX && isfinite(f)) {
		b = 0x1p64f;
		post = (float)(f * 0x1p-64);
	} else if (f > 0 && f < FLT_MIN) {
		b = (float)(f * 0x1p64);
		post = 0x1p-64f;
	}
	mode = (hi != 0 ? 1 : 0) | (post != 1 ? 2 : 0);
	args(c, k, 8, ARG(x), ARG(y), ARG(nn), ARG(hi), ARG(lo), ARG(b), ARG(post), ARG(mode));
	run1(c, k, n, group_size(c, k));
}

/* ---- whole-vector ops: libcck's vector_op() ------------------------------------------------------------------- */

static void softmax(struct call *c, cl_mem x, cl_mem y, size_t n, int is_log)
{
	struct extremes e;
	cl_kernel k;
	cl_ulong nn = n;
	double s;
	float m, p;

	extremes(c, x, n, &e);
	m = e.ni != NONE ? NAN : e.mx;
	/* NaN, or an infinite max (inf - inf): NumPy gives NaN everywhere. */
	if (!isfinite(m)) {
		fill(c, y, n, NAN);
		return;
	}
	/* softmax adds the float terms it outputs; log_softmax the exact ones */
	sums(c, SK_EXPSUM, x, x, n, m, is_log ? 0.0f : 1.0f, &s);
	if (is_log) {
		/* (x - m) is exact near the max, so the small results that matter most keep full precision */
		unary(c, "f32_sub2", x, y, n, m, (float)log(s));
		return;
	}
	/* s >= 1 (the max contributes e^0), so 1 / s is a normal float */
	p = (float)(1.0 / s);
	k = kernel(c, "f32_softmax");
	args(c, k, 5, ARG(x), ARG(y), ARG(nn), ARG(m), ARG(p));
	run1(c, k, n, group_size(c, k));
}

/* Inclusive prefix sums: each block's sum, the carries into the blocks, each block scanned from its carry. */
static void cumsum(struct call *c, cl_mem x, cl_mem y, size_t n)
{
	cl_kernel kb = kernel(c, "f32_block_sums"), ks = kernel(c, "f32_scan_carries"), kc = kernel(c, "f32_cumsum");
	size_t wg = group_size(c, kb), nb;
	cl_ulong nn = n, nnb;
	float sa = 1, inv = 1;
	cl_mem sb, cb;
	double m;

	/* the three kernels share the block size: the smallest work-group any of them allows */
	if (group_size(c, ks) < wg)
		wg = group_size(c, ks);
	if (group_size(c, kc) < wg)
		wg = group_size(c, kc);
	/* compensated float sums of blocks or runs could pass FLT_MAX where the double ones of libcck do not: scaled */
	if (!c->d->info.fp64) {
		m = max_mag(c, x, n);
		if (m * (double)n > 0x1p120) {
			sa = scale_for(m);
			inv = 1 / sa;
		}
	}
	nb = (n + wg * SCAN_ITEMS - 1) / (wg * SCAN_ITEMS);
	nnb = nb;
	sb = buffer(c, B_TMP, NULL, nb * 8);
	cb = buffer(c, B_TMP, NULL, nb * 8);
	args(c, kb, 4, ARG(x), ARG(nn), ARG(sa), ARG(sb));
	run1(c, kb, nb * wg, wg);
	args(c, ks, 3, ARG(sb), ARG(nnb), ARG(cb));
	run1(c, ks, wg, wg);
	args(c, kc, 6, ARG(x), ARG(y), ARG(nn), ARG(sa), ARG(inv), ARG(cb));
	run1(c, kc, nb * wg, wg);
}

static void vector_op(struct call *c, int op, cl_mem x, cl_mem y, size_t n, float eps)
{
	struct extremes e;
	double s, mean, var, d;
	float lo, hi;

	switch (op) {
	case CCK_OP_SOFTMAX:
	case CCK_OP_LOG_SOFTMAX:
		softmax(c, x, y, n, op == CCK_OP_LOG_SOFTMAX);
		return;
	case CCK_OP_NORMALIZE:
		sums(c, SK_SUMSQ, x, x, n, 0, 0, &s);
		d = sqrt(s);
		/* All zeros: 0/0 is NaN in NumPy's x / norm(x), so here too. */
		if (isnan(d) || d == 0)
			break;
		affine(c, x, y, n, 0, 1 / d);
		return;
	case CCK_OP_ZSCORE:
	case CCK_OP_LAYER_NORM:
		moments(c, x, n, &mean, &var);
		d = sqrt(var + (op == CCK_OP_LAYER_NORM ? eps : 0));
		/* Constant input without eps divides 0 by 0. */
		if (isnan(d) || d == 0)
			break;
		affine(c, x, y, n, -mean, 1 / d);
		return;
	case CCK_OP_MINMAX_NORMALIZE:
		extremes(c, x, n, &e);
		lo = e.ni != NONE ? NAN : e.mn;
		hi = e.ni != NONE ? NAN : e.mx;
		d = (double)hi - lo;
		if (isnan(d) || d == 0)
			break;
		/* An infinite range gives 0, and NaN where x is infinite, as NumPy does. */
		affine(c, x, y, n, -(double)lo, 1 / d);
		return;
	case CCK_OP_RMS_NORM:
		sums(c, SK_SUMSQ, x, x, n, 0, 0, &s);
		d = sqrt(s / (double)n + eps);
		if (isnan(d) || d == 0)
			break;
		affine(c, x, y, n, 0, 1 / d);
		return;
	case CCK_OP_CUMSUM:
		cumsum(c, x, y, n);
		return;
	default:
		fail(c, -EINVAL);
		return;
	}
	if (!c->err)
		fill(c, y, n, NAN);
}

/* ---- the ops -------------------------------------------------------------------------------------------------- */

/* libcck's get_params(): the op's params (0, 1 or 2), none NaN, clamp's lo <= hi, norms' eps >= 0. */
static int get_params(int op, const float *params, float *a, float *b)
{
	int np = cck_op_nparams(op);

	*a = 0;
	*b = 0;
	if (np <= 0)
		return 0;
	if (!params)
		return -EINVAL;
	*a = params[0];
	if (np > 1)
		*b = params[1];
	if (isnan(*a) || isnan(*b))
		return -EINVAL;
	if (op == CCK_OP_CLAMP && *a > *b)
		return -EINVAL;
	if ((op == CCK_OP_LAYER_NORM || op == CCK_OP_RMS_NORM) && *a < 0)
		return -EINVAL;
	return 0;
}

int ccg_cl_unary_f32(int op, const float *x, float *y, size_t n, const float *params)
{
	int kind = cck_op_kind(op), err;
	struct ccg_dev *d;
	struct call c;
	cl_mem xb, yb;
	float a, b;

	if (kind != CCK_KIND_UNARY && kind != CCK_KIND_VECTOR)
		return -EINVAL;
	err = get_params(op, params, &a, &b);
	if (err)
		return err;
	if (n > MAX_N || (n && (!x || !y)))
		return -EINVAL;
	if (!(d = ccg_dev()))
		return -ENODEV;
	if (!n)
		return 0;
	call_begin(&c, d);
	io(&c, x, y, n, &xb, &yb);
	if (kind == CCK_KIND_VECTOR)
		vector_op(&c, op, xb, yb, n, a);
	else
		unary(&c, elem_kernels[op], xb, yb, n, a, b);
	get(&c, yb, y, n * sizeof(float));
	return call_end(&c);
}

int ccg_cl_binary_f32(int op, const float *a, const float *b, float *y, size_t n)
{
	struct ccg_dev *d;
	struct call c;
	cl_mem ab, bb, yb;
	cl_kernel k;
	cl_ulong nn = n;

	if (cck_op_kind(op) != CCK_KIND_BINARY || n > MAX_N || (n && (!a || !b || !y)))
		return -EINVAL;
	if (!(d = ccg_dev()))
		return -ENODEV;
	if (!n)
		return 0;
	call_begin(&c, d);
	/* y may be a or b, a may be b: one buffer for each distinct array, read-write for y */
	yb = buffer(&c, y == a || y == b ? B_INOUT : B_OUT, y, n * sizeof(float));
	ab = a == y ? yb : buffer(&c, B_IN, a, n * sizeof(float));
	bb = b == y ? yb : b == a ? ab : buffer(&c, B_IN, b, n * sizeof(float));
	k = kernel(&c, elem_kernels[op]);
	args(&c, k, 4, ARG(ab), ARG(bb), ARG(yb), ARG(nn));
	run1(&c, k, n, group_size(&c, k));
	get(&c, yb, y, n * sizeof(float));
	return call_end(&c);
}

static int needs_data(int op)
{
	return op == CCK_OP_MIN || op == CCK_OP_MAX || op == CCK_OP_ARGMIN || op == CCK_OP_ARGMAX;
}

int ccg_cl_reduce_f32(int op, const float *x, size_t n, double *ret)
{
	struct extremes e;
	struct ccg_dev *d;
	struct call c;
	double s, mean, var, v = 0;
	cl_mem xb;
	int err;

	if (cck_op_kind(op) != CCK_KIND_REDUCE || !ret || n > MAX_N || (n && !x) || (!n && needs_data(op)))
		return -EINVAL;
	if (!(d = ccg_dev()))
		return -ENODEV;
	if (!n) {
		*ret = op == CCK_OP_MEAN || op == CCK_OP_VARIANCE || op == CCK_OP_STDDEV ? NAN : 0;
		return 0;
	}
	call_begin(&c, d);
	xb = buffer(&c, B_IN, x, n * sizeof(float));
	switch (op) {
	case CCK_OP_SUM:
	case CCK_OP_MEAN:
		sums(&c, SK_SUM, xb, xb, n, 0, 0, &s);
		v = op == CCK_OP_MEAN ? s / (double)n : s;
		break;
	case CCK_OP_MIN:
	case CCK_OP_MAX:
	case CCK_OP_ARGMIN:
	case CCK_OP_ARGMAX:
	case CCK_OP_NORM_LINF:
		/* the first NaN wins; else the first extreme */
		extremes(&c, xb, n, &e);
		if (op == CCK_OP_NORM_LINF)
			v = e.ni != NONE ? NAN : fmax(fabs((double)e.mn), fabs((double)e.mx));
		else if (op == CCK_OP_ARGMIN || op == CCK_OP_ARGMAX)
			v = (double)(e.ni != NONE ? e.ni : op == CCK_OP_ARGMIN ? e.mi : e.xi);
		else
			v = e.ni != NONE ? NAN : op == CCK_OP_MIN ? e.mn : e.mx;
		break;
	case CCK_OP_SUM_OF_SQUARES:
	case CCK_OP_NORM_L2:
		sums(&c, SK_SUMSQ, xb, xb, n, 0, 0, &s);
		v = op == CCK_OP_NORM_L2 ? sqrt(s) : s;
		break;
	case CCK_OP_NORM_L1:
		sums(&c, SK_ABSSUM, xb, xb, n, 0, 0, &v);
		break;
	case CCK_OP_VARIANCE:
	case CCK_OP_STDDEV:
		moments(&c, xb, n, &mean, &var);
		v = op == CCK_OP_VARIANCE ? var : sqrt(var);
		break;
	default:
		fail(&c, -EINVAL);
		break;
	}
	err = call_end(&c);
	if (!err)
		*ret = v;
	return err;
}

/*
 * Covariance and correlation as libcck's centred2(): centred on (float) means ca, cb, with
 * sum (a - ma)(b - mb) = sum da db - (sum da)(sum db) / n.
 */
static double centred2(struct call *c, int op, cl_mem a, cl_mem b, size_t n)
{
	double m[2], r[5], sab, saa, sbb, nd = (double)n;

	sums(c, SK_SUM2, a, b, n, 0, 0, m);
	sums(c, SK_CENTRED, a, b, n, (float)(m[0] / nd), (float)(m[1] / nd), r);
	sab = r[0] - r[3] * r[4] / nd;
	if (op == CCK_OP_COVARIANCE)
		return sab / nd;
	saa = r[1] - r[3] * r[3] / nd;
	sbb = r[2] - r[4] * r[4] / nd;
	/* A constant input has no correlation: NaN, as NumPy's corrcoef. */
	if (!(saa > 0 && sbb > 0) || isnan(sab))
		return NAN;
	r[0] = sab / (sqrt(saa) * sqrt(sbb));
	/* Rounding can step just outside [-1, 1]; corrcoef clips too. */
	return r[0] > 1 ? 1 : r[0] < -1 ? -1 : r[0];
}

int ccg_cl_reduce2_f32(int op, const float *a, const float *b, size_t n, double *ret)
{
	struct ccg_dev *d;
	struct call c;
	double v = 0;
	cl_mem ab, bb;
	int err;

	if (cck_op_kind(op) != CCK_KIND_REDUCE2 || !ret || n > MAX_N || (n && (!a || !b)))
		return -EINVAL;
	if (!(d = ccg_dev()))
		return -ENODEV;
	if (!n) {
		*ret = op == CCK_OP_COVARIANCE || op == CCK_OP_CORRELATION ? NAN : 0;
		return 0;
	}
	call_begin(&c, d);
	ab = buffer(&c, B_IN, a, n * sizeof(float));
	bb = b == a ? ab : buffer(&c, B_IN, b, n * sizeof(float));
	switch (op) {
	case CCK_OP_DOT:
		sums(&c, SK_DOT, ab, bb, n, 0, 0, &v);
		break;
	case CCK_OP_DIST_L2:
		sums(&c, SK_SQDIFF, ab, bb, n, 0, 0, &v);
		v = sqrt(v);
		break;
	case CCK_OP_COVARIANCE:
	case CCK_OP_CORRELATION:
		v = centred2(&c, op, ab, bb, n);
		break;
	default:
		fail(&c, -EINVAL);
		break;
	}
	err = call_end(&c);
	if (!err)
		*ret = v;
	return err;
}

/* a * b into *ret unless it overflows the floats a size_t can count (libcck's mul_ok). */
static int mul_ok(size_t a, size_t b, size_t *ret)
{
	size_t lim = SIZE_MAX / sizeof(float);

	if (a > lim || b > lim || (a && b > lim / a))
		return 0;
	*ret = a * b;
	return 1;
}

int ccg_cl_matvec_f32(const float *A, const float *x, float *y, size_t rows, size_t cols)
{
	struct ccg_dev *d;
	struct call c;
	cl_ulong nr = rows, nc = cols;
	size_t size, wg, p = 1;
	cl_mem Ab, xb, yb;
	cl_kernel k;

	/* An empty y is a no-op whatever the pointers; a pointer to a non-empty array must not be NULL. */
	if (!mul_ok(rows, cols, &size) || (rows && (!y || (cols && (!A || !x)))))
		return -EINVAL;
	if (!(d = ccg_dev()))
		return -ENODEV;
	if (rows == 0)
		return 0;
	if (cols == 0) {
		memset(y, 0, rows * sizeof(float));
		return 0;
	}
	call_begin(&c, d);
	Ab = buffer(&c, B_IN, A, size * sizeof(float));
	xb = buffer(&c, B_IN, x, cols * sizeof(float));
	yb = buffer(&c, B_OUT, y, rows * sizeof(float));
	k = kernel(&c, cols < MATVEC_ROW_COLS ? "f32_matvec_rows" : "f32_matvec");
	args(&c, k, 5, ARG(Ab), ARG(xb), ARG(yb), ARG(nr), ARG(nc));
	wg = group_size(&c, k);
	if (cols < MATVEC_ROW_COLS) {
		run1(&c, k, rows, wg);
	} else {
		/* a work-group per row, no wider than the row */
		while (p * 2 <= wg && p * 2 <= cols)
			p *= 2;
		run1(&c, k, rows * p, p);
	}
	get(&c, yb, y, rows * sizeof(float));
	return call_end(&c);
}

int ccg_cl_matmul_f32(const float *A, const float *B, float *C, size_t m, size_t k, size_t n)
{
	struct ccg_dev *d;
	struct call c;
	cl_ulong mm = m, kk = k, nn = n;
	size_t sa, sb, sc, gws[2], lws[2] = {MM_L, MM_L}, kw = 0;
	cl_mem Ab, Bb, Cb;
	cl_kernel kt;
	int naive = 0;

	if (!mul_ok(m, k, &sa) || !mul_ok(k, n, &sb) || !mul_ok(m, n, &sc) || (sc && (!C || (k && (!A || !B)))))
		return -EINVAL;
	if (!(d = ccg_dev()))
		return -ENODEV;
	if (sc == 0)
		return 0;
	if (k == 0) {
		memset(C, 0, sc * sizeof(float));
		return 0;
	}
	call_begin(&c, d);
	Ab = buffer(&c, B_IN, A, sa * sizeof(float));
	Bb = buffer(&c, B_IN, B, sb * sizeof(float));
	Cb = buffer(&c, B_OUT, C, sc * sizeof(float));
	kt = kernel(&c, "f32_matmul");
	if (kt &&
	    clGetKernelWorkGroupInfo(kt, d->dev, CL_KERNEL_WORK_GROUP_SIZE, sizeof(kw), &kw, NULL) == CL_SUCCESS &&
	    kw >= MM_L * MM_L) {
		gws[0] = ccg_round_up(n, MM_T) / MM_T * MM_L;
		gws[1] = ccg_round_up(m, MM_T) / MM_T * MM_L;
	} else {
		/* the device cannot run 16 x 16 work-items together: one per output, work-groups as the driver likes */
		kt = kernel(&c, "f32_matmul_naive");
		naive = 1;
		gws[0] = n;
		gws[1] = m;
	}
	args(&c, kt, 6, ARG(Ab), ARG(Bb), ARG(Cb), ARG(mm), ARG(kk), ARG(nn));
	if (!c.err)
		fail(&c, ccg_run(d, kt, 2, gws, naive ? NULL : lws));
	get(&c, Cb, C, sc * sizeof(float));
	return call_end(&c);
}
