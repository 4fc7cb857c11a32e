/* SPDX-License-Identifier: MIT */
/*
 * test_ccd_gpu.c: the OpenCL backend through a real ccd.
 *  - `ccctl kernels` (--json and the table) names the backend, the OpenCL devices and the one in use (or why there
 *    is none), and a crossover state for every op and quantized matvec type;
 *  - every op run on the device (backend opencl) and through the automatic dispatch at sizes around each measured
 *    crossover gives libcck's in-process result: the exact ops bit for bit, the others within the bounds below;
 *  - with opencl_device=none ccd says why, and every op still runs (on the CPU: bit for bit);
 *  - a model with every layer on the device (gpu_layers=-1) generates the greedy tokens of the CPU.
 * Where ccd has no OpenCL device (built without OpenCL, no ICD), the device checks are skipped, saying why; the
 * rest runs.
 *
 * The bounds: |ccd - libcck| <= TOL * scale, scale an upper bound of the magnitudes the result is made of:
 *  - element-wise ops: |y| + |x| (an error of a few ulp of the input through f' <= ~1, or of the output);
 *  - whole-vector ops: |y| + max|y| / 100 (their near-zero outputs come out of a cancellation at the vector's scale);
 *    cumsum: the running sum of |x|;
 *  - reductions: sum and mean: sum|x| (mean: / n); dot sum|a b|, covariance sum|a b| / n; correlation 1; the sums of
 *    positive terms (sum of squares, the norms, variance, stddev, dist_l2): |y|;
 *  - matvec, matmul: sum_j |A_ij x_j| per output.
 * TOL = 1e-5 (about 170 float ulp: the device's summation order and its own math functions stay far below it, a
 * wrong element or a wrong index lands far above), 2^-14 for the matrix products (float sums of up to 1024 terms).
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cck.h"
#include "t_ccd.h"
#include "t_json.h"
#include "t_ref.h"

extern char **environ;

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define T_BIG ((size_t)(1u << 20) + 3)
#define T_VMAX ((size_t)8 << 20) /* the largest vector op: twice the top of the crossover ladder (4M) */
#define T_CAP (3 * T_VMAX + 256) /* floats in the shared region */
#define T_TOL 1e-5
#define T_TOL_MAT (1.0 / 16384.0)
#define T_PRINT_MAX 25
#define T_RID 1
#define T_OUT_MAX (256 * 1024)

/* A ccd with a raw client, a shared region and its page-aligned in-process twin. */
struct rig {
	int up; /* rig_up ran: rig_down has something to undo */
	struct t_ccd d;
	struct t_raw r;
	int raw_open;
	int fd;
	float *reg, *loc;
	int have_dev;     /* ccd has an OpenCL device in use */
	char device[512]; /* its description, or why there is none */
};

static struct rig g_a, g_b;
static unsigned g_nprinted;
static int g_exact_all; /* every result must be libcck's bits (the CPU path) */

/* The worst normalized error (err / (TOL * scale)) seen per op, and how many results were compared. */
static double g_worst[CCK_OP_COUNT];
static size_t g_compared;

/* A counted mismatch, printed at most T_PRINT_MAX times (quiet once g_nprinted is set to it). */
#define t_mismatch(nfail, ...) t_mismatch(nfail, &g_nprinted, T_PRINT_MAX, __VA_ARGS__)

/* ---- ccctl ---------------------------------------------------------------------------------------------------- */


/* `ccctl --json kernels` parsed (libcc's cc_admin_json, the same document, where there is no ccctl). */
static struct t_json *kernels_json(struct rig *g)
{
	static char out[T_OUT_MAX];
	char err[256];
	struct t_json *j;
	char *doc = NULL;
	int r = t_ccctl(&g->d, out, sizeof(out), "--json", "kernels", NULL);

	if (r < 0) {
		cc_client *c = NULL;

		assert_int_equal(t_ccd_connect(&g->d, &c), 0);
		if (cc_admin_json(c, "kernels", &doc))
			fail_msg("kernels: %s", cc_last_error(c));
		cc_close(c);
		snprintf(out, sizeof(out), "%s", doc);
		free(doc);
	} else if (r != 0) {
		fail_msg("ccctl --json kernels exited %d: %s", r, out);
	}
	j = t_json_parse(out, strlen(out), err, sizeof(err));
	if (!j)
		fail_msg("ccctl --json kernels: not JSON (%s): %.300s", err, out);
	return j;
}

/* The selected device of a kernels document (NULL if none), checking there is at most one. */
static const struct t_json *selected_device(const struct t_json *k)
{
	const struct t_json *devs = t_json_get(k, "devices"), *sel = NULL;

	assert_non_null(devs);
	assert_int_equal(devs->type, T_JSON_ARR);
	for (size_t i = 0; i < t_json_len(devs); i++) {
		const struct t_json *d = t_json_at(devs, i), *s = t_json_get(d, "selected");

		assert_non_null(s);
		assert_non_null(t_json_str(d, "name"));
		assert_non_null(t_json_str(d, "platform"));
		assert_non_null(t_json_get(d, "compute_units"));
		assert_true(t_json_get(d, "index") && t_json_get(d, "index")->i == (int64_t)i);
		if (s->b) {
			if (sel)
				fail_msg("two devices selected");
			sel = d;
		}
	}
	return sel;
}

/* The crossover entry of an op name, or NULL. */
static const struct t_json *crossover_of(const struct t_json *k, const char *op)
{
	const struct t_json *xo = t_json_get(k, "crossovers");

	for (size_t i = 0; i < t_json_len(xo); i++)
		if (!strcmp(t_json_str(t_json_at(xo, i), "op"), op))
			return t_json_at(xo, i);
	return NULL;
}

/* ---- the rig -------------------------------------------------------------------------------------------------- */

static void rig_up(struct rig *g, const char *const *args, const char *const *env)
{
	const size_t bytes = T_CAP * sizeof(float);
	const struct t_json *sel;
	struct t_json *k;
	char err[256];
	int r;

	memset(g, 0, sizeof(*g));
	g->fd = -1;
	g->up = 1;
	if (cck_set_threads(1) != 1 || cck_force_tier("auto") != 0)
		fail_msg("cannot set libcck to 1 thread / auto tier");
	t_watchdog(120, "daemon start");
	if (t_ccd_start(&g->d, args, env))
		fail_msg("ccd did not start");
	if (t_raw_open(&g->r, g->d.endpoint) || t_raw_hello(&g->r, CC_PROTO_VERSION) != 0)
		fail_msg("raw hello to %s failed", g->d.endpoint);
	g->raw_open = 1;
	g->fd = t_memfd(bytes, t_seals_all(), (void **)&g->reg);
	assert_true(g->fd >= 0);
	g->loc = t_alloc_pages(bytes);
	assert_non_null(g->loc);
	r = t_raw_region_add(&g->r, T_RID, g->fd, bytes, err, sizeof(err));
	if (r)
		fail_msg("region_add: %d %s", r, err);
	k = kernels_json(g);
	sel = selected_device(k);
	g->have_dev = sel != NULL;
	snprintf(g->device, sizeof(g->device), "%s", t_json_str(k, "opencl") ? t_json_str(k, "opencl") : "?");
	t_json_free(k);
}

static void rig_down(struct rig *g)
{
	if (!g->up)
		return;
	g->up = 0;
	if (g->raw_open)
		t_raw_close(&g->r);
	g->raw_open = 0;
	if (g->reg)
		munmap(g->reg, T_CAP * sizeof(float));
	if (g->fd >= 0)
		close(g->fd);
	free(g->loc);
	g->reg = g->loc = NULL;
	g->fd = -1;
	if (g->d.pid > 0 && t_ccd_stop(&g->d))
		fail_msg("ccd did not stop cleanly");
	memset(&g->d, 0, sizeof(g->d));
}

static int teardown(void **state)
{
	(void)state;
	g_exact_all = 0;
	t_watchdog(60, "daemon stop");
	rig_down(&g_a);
	rig_down(&g_b);
	return 0;
}

/* ---- ops: ccd against libcck in-process ------------------------------------------------------------------------ */

enum cls { C_EXACT, C_ELEM, C_VEC, C_CUMSUM, C_SUM, C_MEAN, C_POS, C_DOT, C_COV, C_CORR, C_MAT };

static int op_class(int op)
{
	switch (op) {
	case CCK_OP_NEG:
	case CCK_OP_ABS:
	case CCK_OP_SQUARE:
	case CCK_OP_RELU:
	case CCK_OP_LEAKY_RELU:
	case CCK_OP_FLOOR:
	case CCK_OP_CEIL:
	case CCK_OP_ROUND:
	case CCK_OP_TRUNC:
	case CCK_OP_SCALE:
	case CCK_OP_ADD_SCALAR:
	case CCK_OP_CLAMP:
	case CCK_OP_ADD:
	case CCK_OP_SUB:
	case CCK_OP_MUL:
	case CCK_OP_MINIMUM:
	case CCK_OP_MAXIMUM:
	case CCK_OP_MIN:
	case CCK_OP_MAX:
	case CCK_OP_ARGMIN:
	case CCK_OP_ARGMAX:
	case CCK_OP_NORM_LINF:
		return C_EXACT;
	case CCK_OP_CUMSUM:
		return C_CUMSUM;
	case CCK_OP_SUM:
		return C_SUM;
	case CCK_OP_MEAN:
		return C_MEAN;
	case CCK_OP_SUM_OF_SQUARES:
	case CCK_OP_NORM_L1:
	case CCK_OP_NORM_L2:
	case CCK_OP_VARIANCE:
	case CCK_OP_STDDEV:
	case CCK_OP_DIST_L2:
		return C_POS;
	case CCK_OP_DOT:
		return C_DOT;
	case CCK_OP_COVARIANCE:
		return C_COV;
	case CCK_OP_CORRELATION:
		return C_CORR;
	case CCK_OP_MATVEC:
	case CCK_OP_MATMUL:
		return C_MAT;
	default:
		return cck_op_kind(op) == CCK_KIND_VECTOR ? C_VEC : C_ELEM;
	}
}

static int wants_positive(int op)
{
	return op == CCK_OP_SQRT || op == CCK_OP_RSQRT || op == CCK_OP_RECIP || op == CCK_OP_LN || op == CCK_OP_LOG2 ||
	       op == CCK_OP_LOG10;
}

/* Parameters as ccbench gives them. */
static size_t op_params(int op, float *p)
{
	p[0] = op == CCK_OP_LEAKY_RELU   ? 0.01f
	       : op == CCK_OP_ELU        ? 1.0f
	       : op == CCK_OP_SCALE      ? 1.5f
	       : op == CCK_OP_ADD_SCALAR ? 0.25f
	       : op == CCK_OP_CLAMP      ? -1.0f
	       : op == CCK_OP_LAYER_NORM ? 1e-5f
	       : op == CCK_OP_RMS_NORM   ? 1e-6f
	                                 : 0.5f;
	p[1] = 1.0f;
	return (size_t)cck_op_nparams(op);
}

static void fill(float *x, size_t n, float lo, float hi, int signs, uint64_t seed)
{
	struct t_rng r;

	t_rng_seed(&r, seed);
	for (size_t i = 0; i < n; i++) {
		float v = (float)t_rng_uniform(&r, lo, hi);

		x[i] = signs && (t_rng_u64(&r) & 1) ? -v : v;
	}
}

/* |got - want| against TOL * scale; records the worst ratio of op. 1 if within. */
static int within(int op, double got, double want, double scale, double tol)
{
	double e;

	if (isnan(got) || isnan(want))
		return isnan(got) && isnan(want);
	if (isinf(want) || isinf(got))
		return got == want;
	e = fabs(got - want) / (tol * (scale > 0 ? scale : 1e-30));
	if (e > g_worst[op])
		g_worst[op] = e;
	return e <= 1.0;
}

/* Vector outputs y (ccd) and l (libcck) of op over x (and b). */
static void compare_vec(int op, const float *x, const float *y, const float *l, size_t n, const char *what,
                        unsigned *nfail)
{
	int c = op_class(op);
	double ymax = 0, run = 0;
	size_t i;

	if (c == C_EXACT || g_exact_all) {
		i = t_f32_diff(y, l, n);
		if (i != n)
			t_mismatch(nfail, "%s: element %zu: ccd %a, libcck %a (%s)", what, i, (double)y[i],
			           (double)l[i], g_exact_all ? "the CPU path" : "an exact op");
		return;
	}
	for (i = 0; i < n; i++)
		ymax = fmax(ymax, fabs(l[i]));
	for (i = 0; i < n; i++) {
		double scale = c == C_VEC ? fabs(l[i]) + ymax / 100 : fabs(l[i]) + fabs(x[i]);

		if (c == C_CUMSUM)
			scale = run += fabs(x[i]);
		if (!within(op, y[i], l[i], scale, T_TOL)) {
			t_mismatch(nfail, "%s: element %zu: ccd %.9g, libcck %.9g (x %.9g, bound %.3g)", what, i,
			           (double)y[i], (double)l[i], (double)x[i], T_TOL * scale);
			return;
		}
	}
}

/* The magnitude a reduction's result is made of. */
static double reduce_scale(int op, const float *a, const float *b, size_t n, double want)
{
	double s = 0;

	switch (op_class(op)) {
	case C_SUM:
	case C_MEAN:
		for (size_t i = 0; i < n; i++)
			s += fabs(a[i]);
		return op_class(op) == C_MEAN ? s / (double)(n ? n : 1) : s;
	case C_DOT:
	case C_COV:
		for (size_t i = 0; i < n; i++)
			s += fabs((double)a[i] * b[i]);
		return op_class(op) == C_COV ? s / (double)(n ? n : 1) : s;
	case C_CORR:
		return 1;
	default:
		return fabs(want);
	}
}

/* op on n elements (fresh inputs from seed) through ccd and in-process: same code, same result within bounds. */
static void check_vector_op(struct rig *g, int op, size_t n, uint64_t seed, unsigned *nfail)
{
	const int kind = cck_op_kind(op), two = kind == CCK_KIND_BINARY || kind == CCK_KIND_REDUCE2;
	const char *name = cck_op_name(op);
	/* x, b and y at float offsets 0, n + 16 and 2n + 48 (b and y 64-byte aligned or not, as n falls) */
	const size_t ox = 0, ob = n + 16, oy = 2 * n + 48;
	Cc__TensorRef tx, tb, ty, *in[2] = {&tx, &tb};
	float params[2];
	size_t np = op_params(op, params);
	double vd = 0, vl = 0;
	char err[256], what[96];
	int rd, rl;

	snprintf(what, sizeof(what), "%s n=%zu", name, n);
	if (wants_positive(op))
		fill(g->reg + ox, n, 0.01f, 10.0f, 0, seed);
	else
		fill(g->reg + ox, n, -5.0f, 5.0f, 0, seed);
	if (op == CCK_OP_DIV)
		fill(g->reg + ob, n, 0.5f, 2.0f, 1, seed + 1);
	else
		fill(g->reg + ob, n, -5.0f, 5.0f, 0, seed + 1);
	memset(g->reg + oy, 0, n * sizeof(float));
	memcpy(g->loc, g->reg, (oy + n) * sizeof(float));
	t_tref(&tx, T_RID, ox * 4, n);
	t_tref(&tb, T_RID, ob * 4, n);
	t_tref(&ty, T_RID, oy * 4, n);
	switch (kind) {
	case CCK_KIND_UNARY:
	case CCK_KIND_VECTOR:
		rl = cck_unary_f32(op, g->loc + ox, g->loc + oy, n, np ? params : NULL);
		rd = t_raw_op(&g->r, name, in, 1, &ty, params, np, 0, 0, 0, NULL, err, sizeof(err));
		break;
	case CCK_KIND_BINARY:
		rl = cck_binary_f32(op, g->loc + ox, g->loc + ob, g->loc + oy, n);
		rd = t_raw_op(&g->r, name, in, 2, &ty, NULL, 0, 0, 0, 0, NULL, err, sizeof(err));
		break;
	case CCK_KIND_REDUCE:
		rl = cck_reduce_f32(op, g->loc + ox, n, &vl);
		rd = t_raw_op(&g->r, name, in, 1, NULL, NULL, 0, 0, 0, 0, &vd, err, sizeof(err));
		break;
	default:
		rl = cck_reduce2_f32(op, g->loc + ox, g->loc + ob, n, &vl);
		rd = t_raw_op(&g->r, name, in, 2, NULL, NULL, 0, 0, 0, 0, &vd, err, sizeof(err));
		break;
	}
	if (rd != rl) {
		t_mismatch(nfail, "%s: ccd returned %d (%s), libcck %d", what, rd, err, rl);
		return;
	}
	g_compared++;
	if (rl)
		return;
	if (kind == CCK_KIND_REDUCE || kind == CCK_KIND_REDUCE2) {
		if (op_class(op) == C_EXACT || g_exact_all
		        ? !t_f64_same(vd, vl)
		        : !within(op, vd, vl, reduce_scale(op, g->loc + ox, g->loc + ob, n, vl), T_TOL))
			t_mismatch(nfail, "%s: ccd %.17g, libcck %.17g", what, vd, vl);
		return;
	}
	(void)two;
	compare_vec(op, g->loc + ox, g->reg + oy, g->loc + oy, n, what, nfail);
}

/* matvec (n == 0) or matmul (C[m x n] = A[m x k] B[k x n]) through ccd and in-process. */
static void check_matrix(struct rig *g, size_t m, size_t k, size_t n, uint64_t seed, unsigned *nfail)
{
	const int mv = n == 0;
	const size_t nb = mv ? k : k * n, ny = mv ? m : m * n, oa = 0, ob = m * k + 16, oy = ob + nb + 16;
	Cc__TensorRef ta, tb, ty, *in[2] = {&ta, &tb};
	char err[256], what[96];
	size_t i, j, q;
	int rd, rl;

	snprintf(what, sizeof(what), mv ? "matvec %zux%zu" : "matmul %zux%zux%zu", m, k, n);
	if (oy + ny > T_CAP) {
		printf("# %s: larger than the test's region, skipped\n", what);
		return;
	}
	fill(g->reg + oa, m * k, -2.0f, 2.0f, 0, seed);
	fill(g->reg + ob, nb, -2.0f, 2.0f, 0, seed + 1);
	memset(g->reg + oy, 0, ny * sizeof(float));
	memcpy(g->loc, g->reg, (oy + ny) * sizeof(float));
	t_tref(&ta, T_RID, oa * 4, m * k);
	t_tref(&tb, T_RID, ob * 4, nb);
	t_tref(&ty, T_RID, oy * 4, ny);
	if (mv) {
		rl = cck_matvec_f32(g->loc + oa, g->loc + ob, g->loc + oy, m, k);
		rd = t_raw_op(&g->r, "matvec", in, 2, &ty, NULL, 0, m, k, 0, NULL, err, sizeof(err));
	} else {
		rl = cck_matmul_f32(g->loc + oa, g->loc + ob, g->loc + oy, m, k, n);
		rd = t_raw_op(&g->r, "matmul", in, 2, &ty, NULL, 0, m, k, n, NULL, err, sizeof(err));
	}
	if (rd != rl) {
		t_mismatch(nfail, "%s: ccd returned %d (%s), libcck %d", what, rd, err, rl);
		return;
	}
	g_compared++;
	for (i = 0; i < m; i++) {
		for (j = 0; j < (mv ? 1 : n); j++) {
			const float *A = g->loc + oa + i * k, *B = g->loc + ob;
			double scale = 0;

			for (q = 0; q < k; q++)
				scale += fabs((double)A[q] * B[mv ? q : q * n + j]);
			if (g_exact_all ? t_f32_diff(&g->reg[oy + i * (mv ? 1 : n) + j],
			                             &g->loc[oy + i * (mv ? 1 : n) + j], 1) != 1
			                : !within(mv ? CCK_OP_MATVEC : CCK_OP_MATMUL, g->reg[oy + i * (mv ? 1 : n) + j],
			                          g->loc[oy + i * (mv ? 1 : n) + j], scale, T_TOL_MAT)) {
				t_mismatch(nfail, "%s: C[%zu][%zu]: ccd %.9g, libcck %.9g", what, i, j,
				           (double)g->reg[oy + i * (mv ? 1 : n) + j],
				           (double)g->loc[oy + i * (mv ? 1 : n) + j]);
				return;
			}
		}
	}
}

static void print_worst(const char *what)
{
	int any = 0;

	printf("# %s: %zu results compared with libcck in-process; worst error / bound:", what, g_compared);
	for (int op = 0; op < CCK_OP_COUNT; op++) {
		if (g_worst[op] > 0) {
			printf(" %s %.3f", cck_op_name(op), g_worst[op]);
			any = 1;
		}
	}
	printf("%s\n", any ? "" : " none (every result libcck's bits)");
	memset(g_worst, 0, sizeof(g_worst));
	g_compared = 0;
}

/* Every op at each size of sizes (matrix ops at shapes of about that many elements). */
static void check_all_ops(struct rig *g, const size_t *sizes, size_t nsizes, unsigned *nfail)
{
	for (size_t s = 0; s < nsizes; s++) {
		size_t side = (size_t)sqrt((double)sizes[s]), cube = (size_t)cbrt((double)sizes[s]);

		for (int op = 0; op < CCK_OP_COUNT; op++)
			if (op != CCK_OP_MATVEC && op != CCK_OP_MATMUL)
				check_vector_op(g, op, sizes[s], 1000 * s + (uint64_t)op, nfail);
		/* odd shapes: rows and columns that are no multiple of a work-group or a vector */
		check_matrix(g, side ? side : 1, side > 2 ? side - 1 : 1, 0, 77 + s, nfail);
		if (cube <= 256)
			check_matrix(g, cube ? cube : 1, cube + 3, cube > 1 ? cube - 1 : 1, 99 + s, nfail);
	}
}

/* ---- tests ---------------------------------------------------------------------------------------------------- */

/* backend=opencl: the report, then every op on the device. */
static void test_backend_opencl(void **state)
{
	static const size_t sizes[] = {0, 1, 3, 17, 4097, 65537, T_BIG};
	static const char *const qops[] = {"qmatvec_q4_0", "qmatvec_q4_1", "qmatvec_q8_0", "qmatvec_q4_k",
	                                   "qmatvec_q6_k"};
	static const char *const args[] = {"-o", "backend=opencl", NULL};
	static char out[T_OUT_MAX];
	const struct t_json *sel, *xo;
	struct t_json *k;
	unsigned nfail = 0;
	int r;

	(void)state;
	rig_up(&g_a, args, NULL);
	t_watchdog(600, "ops on the OpenCL device");
	k = kernels_json(&g_a);
	assert_string_equal(t_json_str(k, "backend"), "opencl");
	assert_non_null(t_json_str(k, "opencl"));
	assert_true(strlen(t_json_str(k, "opencl")) > 0);
	sel = selected_device(k);
	if (sel) {
		printf("# OpenCL device in use: %s\n", t_json_str(k, "opencl"));
		if (!strstr(t_json_str(k, "opencl"), t_json_str(sel, "name")))
			fail_msg("kernels: opencl '%s' does not name the selected device '%s'", t_json_str(k, "opencl"),
			         t_json_str(sel, "name"));
	} else {
		printf("# SKIP device checks: ccd has no OpenCL device: %s\n", t_json_str(k, "opencl"));
	}
	/* a state for every op and every quantized type the device has */
	for (int op = 0; op < CCK_OP_COUNT; op++) {
		const char *st;

		xo = crossover_of(k, cck_op_name(op));
		if (!xo)
			fail_msg("kernels: no crossover entry for %s", cck_op_name(op));
		st = t_json_str(xo, "state");
		if (!st || (strcmp(st, "measured") && strcmp(st, "never") && strcmp(st, "unknown")))
			fail_msg("kernels: crossover state of %s: '%s'", cck_op_name(op), st ? st : "(none)");
		if (!sel && strcmp(st, "never"))
			fail_msg("kernels: no device, yet the crossover of %s is %s", cck_op_name(op), st);
		if (!strcmp(st, "measured") && t_json_get(xo, "n")->i <= 0)
			fail_msg("kernels: %s measured with n = 0", cck_op_name(op));
	}
	for (size_t i = 0; i < NELEM(qops); i++)
		if (!crossover_of(k, qops[i]))
			fail_msg("kernels: no crossover entry for %s", qops[i]);
	/* the table: the backend, the device (or why none), the crossovers */
	r = t_ccctl(&g_a.d, out, sizeof(out), "kernels", NULL);
	if (r >= 0) {
		assert_int_equal(r, 0);
		if (!strstr(out, "backend:  opencl") || !strstr(out, "opencl:   ") || !strstr(out, "crossovers"))
			fail_msg("ccctl kernels: no backend / opencl / crossovers lines:\n%s", out);
		if (sel && (!strstr(out, t_json_str(sel, "name")) || !strstr(out, "  * ")))
			fail_msg("ccctl kernels does not show the device in use:\n%s", out);
		if (!sel && !strstr(out, "opencl:   none: "))
			fail_msg("ccctl kernels does not say why there is no device:\n%s", out);
	}
	t_json_free(k);

	check_all_ops(&g_a, sizes, NELEM(sizes), &nfail);
	print_worst(g_a.have_dev ? "backend opencl (on the device)" : "backend opencl without a device (CPU)");
	if (nfail)
		fail_msg("%u results differ from libcck beyond their bounds", nfail);
	rig_down(&g_a);
}

/* backend=auto: each op's crossover is measured at its first large call; sizes around it agree with libcck. */
static void test_auto_around_crossover(void **state)
{
	static const char *const args[] = {"-o", "backend=auto", NULL};
	const size_t first = 65537;
	unsigned nfail = 0, measured = 0;
	struct t_json *k;

	(void)state;
	rig_up(&g_a, args, NULL);
	t_watchdog(600, "ops around the crossovers");
	if (!g_a.have_dev)
		printf("# SKIP crossover checks: ccd has no OpenCL device: %s\n", g_a.device);
	/* the first call of each op at a size worth measuring measures its crossover */
	for (int op = 0; op < CCK_OP_COUNT; op++) {
		if (op == CCK_OP_MATVEC)
			check_matrix(&g_a, 256, 256, 0, 5, &nfail);
		else if (op == CCK_OP_MATMUL)
			check_matrix(&g_a, 64, 64, 64, 6, &nfail);
		else
			check_vector_op(&g_a, op, first, 7 + (uint64_t)op, &nfail);
	}
	k = kernels_json(&g_a);
	printf("# crossovers:");
	for (int op = 0; op < CCK_OP_COUNT; op++) {
		const struct t_json *xo = crossover_of(k, cck_op_name(op));
		const char *st;
		size_t n, tries[4];

		assert_non_null(xo);
		st = t_json_str(xo, "state");
		printf(" %s=%s", cck_op_name(op), strcmp(st, "measured") ? st : "");
		if (!strcmp(st, "measured"))
			printf("%lld", (long long)t_json_get(xo, "n")->i);
		if (g_a.have_dev && !strcmp(st, "unknown"))
			fail_msg("%s: the crossover is still unknown after a call of %zu elements", cck_op_name(op),
			         first);
		if (strcmp(st, "measured"))
			continue;
		measured++;
		n = (size_t)t_json_get(xo, "n")->i;
		/* just below, at, just above (an odd tail), and twice: the first sizes on the device */
		tries[0] = n - 1;
		tries[1] = n;
		tries[2] = n + 13;
		tries[3] = 2 * n + 5;
		for (size_t t = 0; t < NELEM(tries); t++) {
			size_t side;

			if (op == CCK_OP_MATVEC) {
				side = (size_t)sqrt((double)tries[t]);
				check_matrix(&g_a, side, tries[t] / side, 0, 40 + t, &nfail);
			} else if (op == CCK_OP_MATMUL) {
				side = (size_t)cbrt((double)tries[t]);
				check_matrix(&g_a, side, side, tries[t] / (side * side), 50 + t, &nfail);
			} else if (tries[t] <= T_VMAX) {
				check_vector_op(&g_a, op, tries[t], 60 + t, &nfail);
			}
		}
	}
	printf("\n# %u ops measured faster on the device from their crossover\n", measured);
	t_json_free(k);
	print_worst("backend auto around the crossovers");
	if (nfail)
		fail_msg("%u results differ from libcck beyond their bounds", nfail);
	rig_down(&g_a);
}

/*
 * No device: opencl_device=none, or no OpenCL ICD at all (OCL_ICD_VENDORS pointing nowhere: the ICD loader finds no
 * platform, as on a machine without pocl-opencl-icd). ccd says why (log, ccctl kernels), lists no device in use,
 * and every op runs on the CPU: libcck's bits.
 */
static void check_no_device(const char *const *args, const char *const *env, const char *what)
{
	static const size_t sizes[] = {0, 5, 4097, 65537};
	static char out[T_OUT_MAX];
	struct t_json *k;
	const char *why;
	unsigned nfail = 0;
	int r, fd;
	ssize_t got;

	rig_up(&g_a, args, env);
	k = kernels_json(&g_a);
	assert_null(selected_device(k));
	why = t_json_str(k, "opencl");
	assert_non_null(why);
	printf("# %s: %s\n", what, why);
	assert_true(strlen(why) > 0);
	for (size_t i = 0; i < t_json_len(t_json_get(k, "crossovers")); i++)
		assert_string_equal(t_json_str(t_json_at(t_json_get(k, "crossovers"), i), "state"), "never");
	r = t_ccctl(&g_a.d, out, sizeof(out), "kernels", NULL);
	if (r >= 0) {
		assert_int_equal(r, 0);
		if (!strstr(out, "opencl:   none: ") || !strstr(out, why) || !strstr(out, "ops run on the CPU"))
			fail_msg("%s: ccctl kernels does not say why there is no device:\n%s", what, out);
	}
	t_json_free(k);
	/* the log line at startup */
	fd = open(g_a.d.log, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	got = read(fd, out, sizeof(out) - 1);
	close(fd);
	out[got > 0 ? got : 0] = 0;
	if (!strstr(out, "OpenCL: none: ") || !strstr(out, "ops run on the CPU"))
		fail_msg("%s: ccd's log does not say why there is no OpenCL device:\n%s", what, out);

	/* the CPU path gives libcck's bits: every op compared exactly */
	g_exact_all = 1;
	for (size_t s = 0; s < NELEM(sizes); s++) {
		for (int op = 0; op < CCK_OP_COUNT; op++)
			if (op != CCK_OP_MATVEC && op != CCK_OP_MATMUL)
				check_vector_op(&g_a, op, sizes[s], 300 + s, &nfail);
		check_matrix(&g_a, 64, 63, 0, 310 + s, &nfail);
		check_matrix(&g_a, 17, 33, 9, 320 + s, &nfail);
	}
	g_exact_all = 0;
	print_worst(what);
	if (nfail)
		fail_msg("%s: %u results differ from libcck", what, nfail);
	rig_down(&g_a);
}

static void test_no_device(void **state)
{
	static const char *const none_args[] = {"-o", "opencl_device=none", "-o", "backend=auto", NULL};
	static const char *const no_icd_env[] = {"OCL_ICD_VENDORS=/nonexistent/cc-test-no-icd", NULL};
	static const char *const auto_args[] = {"-o", "backend=auto", NULL};

	(void)state;
	t_watchdog(300, "no OpenCL device");
	check_no_device(none_args, NULL, "opencl_device=none");
	check_no_device(auto_args, no_icd_env, "no OpenCL ICD");
}

/* The "models" document's entry of name. */
static void model_offload(struct rig *g, const char *name, int64_t *layers, int64_t *bytes, char *engine,
                          size_t engine_len)
{
	static char out[T_OUT_MAX];
	const struct t_json *list;
	struct t_json *j;
	char err[256];
	cc_client *c = NULL;
	char *doc = NULL;

	assert_int_equal(t_ccd_connect(&g->d, &c), 0);
	if (cc_admin_json(c, "models", &doc))
		fail_msg("models: %s", cc_last_error(c));
	cc_close(c);
	snprintf(out, sizeof(out), "%s", doc);
	free(doc);
	j = t_json_parse(out, strlen(out), err, sizeof(err));
	assert_non_null(j);
	list = t_json_get(j, "models");
	for (size_t i = 0; i < t_json_len(list); i++) {
		const struct t_json *m = t_json_at(list, i);

		if (strcmp(t_json_str(m, "name"), name))
			continue;
		assert_non_null(t_json_get(m, "gpu_layers"));
		assert_non_null(t_json_get(m, "device_bytes"));
		*layers = t_json_get(m, "gpu_layers")->i;
		*bytes = t_json_get(m, "device_bytes")->i;
		snprintf(engine, engine_len, "%s", t_json_str(m, "engine"));
		t_json_free(j);
		return;
	}
	fail_msg("models: no %s", name);
}

/* Greedy generation of prompt on the model "m" of g (48 tokens at most), malloc'd ids into *ids. */
static size_t greedy(struct rig *g, cc_client *c, const char *prompt, int32_t **ids)
{
	struct cc_gen_params p;
	struct cc_gen_result res;
	size_t n;

	(void)g;
	cc_gen_defaults(&p);
	p.temp = 0;
	p.raw = 1;
	p.max_tokens = 48;
	if (cc_generate(c, "m", prompt, &p, &res))
		fail_msg("generate '%s': %s", prompt, cc_last_error(c));
	n = res.ntokens;
	*ids = malloc((n ? n : 1) * sizeof(int32_t));
	assert_non_null(*ids);
	memcpy(*ids, res.tokens, n * sizeof(int32_t));
	cc_gen_result_free(&res);
	return n;
}

/* gpu_layers=-1: every layer on the device, the greedy tokens of a ccd without a device. Every model's matrices are
 * of a type the device multiplies (f32, f16, q8_0, q4_0): all its layers must be offloaded. */
static void test_offload_greedy(void **state)
{
	static const struct {
		const char *rel;
		int64_t n_layer;
	} models[] = {{"stories260K.gguf", 5},
	              {"derived/stories260K-F16.gguf", 5},
	              {"llama-2-tiny-random.gguf", 1},
	              {"derived/stories260K-Q8_0.gguf", 5},
	              {"derived/stories260K-Q4_0.gguf", 5}};
	static const char *const prompts[] = {"Once upon a time", "The little dog", "Lily and Ben went to the park"};
	static const char *const dev_args[] = {"-o", "gpu_layers=-1", "-o", "backend=auto", NULL};
	static const char *const cpu_args[] = {"-o", "opencl_device=none", NULL};
	cc_client *ca = NULL, *cb = NULL;
	size_t done = 0;

	(void)state;
	if (!t_models_dir()) {
		printf("# SKIP: no test models\n");
		return;
	}
	rig_up(&g_a, dev_args, NULL);
	rig_up(&g_b, cpu_args, NULL);
	t_watchdog(300, "greedy generation with every layer offloaded");
	if (!g_a.have_dev)
		printf("# SKIP offload checks: ccd has no OpenCL device: %s\n", g_a.device);
	assert_int_equal(t_ccd_connect(&g_a.d, &ca), 0);
	assert_int_equal(t_ccd_connect(&g_b.d, &cb), 0);
	for (size_t i = 0; i < NELEM(models); i++) {
		char path[PATH_MAX], engine[512];
		int64_t layers = -1, bytes = -1;

		if (!t_model(models[i].rel, path, sizeof(path)))
			continue;
		if (cc_model_load(ca, "m", path, NULL, NULL, NULL, NULL, NULL))
			fail_msg("load %s: %s", path, cc_last_error(ca));
		if (cc_model_load(cb, "m", path, NULL, NULL, NULL, NULL, NULL))
			fail_msg("load %s: %s", path, cc_last_error(cb));
		model_offload(&g_a, "m", &layers, &bytes, engine, sizeof(engine));
		printf("# %s: %lld layers on the device (%lld bytes): %s\n", models[i].rel, (long long)layers,
		       (long long)bytes, engine);
		if (g_a.have_dev && (layers != models[i].n_layer || bytes <= 0))
			fail_msg("%s: gpu_layers=-1 put %lld of %lld layers on the device: %s", models[i].rel,
			         (long long)layers, (long long)models[i].n_layer, engine);
		if (!g_a.have_dev && (layers != 0 || bytes != 0 || !strstr(engine, "no layer on OpenCL")))
			fail_msg("%s: %lld layers offloaded, expected none and why (%s)", models[i].rel,
			         (long long)layers, engine);
		model_offload(&g_b, "m", &layers, &bytes, engine, sizeof(engine));
		assert_int_equal(layers, 0);
		assert_int_equal(bytes, 0);
		for (size_t p = 0; p < NELEM(prompts); p++) {
			int32_t *ta = NULL, *tb = NULL;
			size_t na = greedy(&g_a, ca, prompts[p], &ta), nb = greedy(&g_b, cb, prompts[p], &tb), s;

			for (s = 0; s < na && s < nb && ta[s] == tb[s]; s++)
				;
			if (na != nb || s != na)
				fail_msg("%s '%s': offloaded %zu tokens, CPU %zu, first difference at %zu",
				         models[i].rel, prompts[p], na, nb, s);
			assert_true(na > 0);
			free(ta);
			free(tb);
		}
		assert_int_equal(cc_model_unload(ca, "m", 0), 0);
		assert_int_equal(cc_model_unload(cb, "m", 0), 0);
		done++;
	}
	printf("# %zu models: the same greedy tokens with every layer on the device as on the CPU\n", done);
	cc_close(ca);
	cc_close(cb);
	rig_down(&g_a);
	rig_down(&g_b);
}

/* ---- kernels_set: the backend, the device and the crossovers at run time (ccctl kernels --backend/--device/
 * --calibrate) ------------------------------------------------------------------------------------------------- */

/*
 * `ccctl --json kernels OPT [VAL]` on ccd d (libcc's cc_kernels_set where there is no ccctl): its exit status, with
 * the kernels document (exit 0) or the error text in out.
 */
static int kernels_set(const struct t_ccd *d, const char *opt, const char *val, char *out, size_t outlen)
{
	int r = t_ccctl(d, out, outlen, "--json", "kernels", opt, val, NULL);

	if (r < 0) {
		cc_client *c = NULL;
		char *doc = NULL;

		assert_int_equal(t_ccd_connect(d, &c), 0);
		r = cc_kernels_set(c, !strcmp(opt, "--backend") ? val : NULL, !strcmp(opt, "--device") ? val : NULL,
		                   !strcmp(opt, "--calibrate"), &doc);
		snprintf(out, outlen, "%s", r ? cc_last_error(c) : doc);
		free(doc);
		cc_close(c);
		r = r ? 1 : 0;
	}
	return r;
}

/* kernels_set that must succeed: its kernels document. */
static struct t_json *kernels_set_ok(const struct t_ccd *d, const char *opt, const char *val)
{
	static char out[T_OUT_MAX];
	struct t_json *j;
	char err[256];
	int r = kernels_set(d, opt, val, out, sizeof(out));

	if (r != 0)
		fail_msg("ccctl kernels %s %s exited %d: %s", opt, val ? val : "", r, out);
	j = t_json_parse(out, strlen(out), err, sizeof(err));
	if (!j)
		fail_msg("ccctl --json kernels %s: not JSON (%s): %.300s", opt, err, out);
	return j;
}

/* kernels_set that must fail (exit != 0) saying want (and want2 if not NULL). */
static void kernels_set_fails(const struct t_ccd *d, const char *opt, const char *val, const char *want,
                              const char *want2)
{
	static char out[T_OUT_MAX];
	int r = kernels_set(d, opt, val, out, sizeof(out));

	if (r == 0 || r >= 124)
		fail_msg("ccctl kernels %s %s exited %d, not an error: %.300s", opt, val ? val : "", r, out);
	if (!strstr(out, want) && (!want2 || !strstr(out, want2)))
		fail_msg("ccctl kernels %s %s: the error does not say '%s'%s%s: %s", opt, val ? val : "", want,
		         want2 ? " or " : "", want2 ? want2 : "", out);
	printf("# kernels %s %s: %s", opt, val ? val : "", out);
}

/* How many of a few reductions at 65537 elements give other bits than libcck (0 when every one ran on libcck). */
static unsigned reductions_differing(struct rig *g)
{
	static const int ops[] = {CCK_OP_SUM,     CCK_OP_MEAN,     CCK_OP_SUM_OF_SQUARES,
	                          CCK_OP_NORM_L2, CCK_OP_VARIANCE, CCK_OP_DOT};
	unsigned nfail = 0, before = g_nprinted;

	g_exact_all = 1;
	g_nprinted = T_PRINT_MAX; /* quiet: differing is what is counted here */
	for (size_t i = 0; i < NELEM(ops); i++)
		check_vector_op(g, ops[i], 65537, 700 + i, &nfail);
	g_exact_all = 0;
	g_nprinted = before;
	return nfail;
}

/* A client of another user is refused kernels_set (and may still read kernels). */
static void kernels_set_needs_admin(struct t_ccd *d)
{
	pid_t pid;
	int status;

	if (geteuid() != 0) {
		printf("# not root: cannot run a client as another user here\n");
		return;
	}
	assert_int_equal(chmod(d->dir, 0711), 0);
	assert_int_equal(chmod(d->sock, 0777), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cc_client *cc;
		char *json = NULL;

		if (setgid(65534) || setuid(65534))
			_exit(10);
		if (cc_connect(d->endpoint, &cc))
			_exit(11);
		if (cc_kernels_set(cc, "cpu", NULL, 0, &json) != -EPERM || !strstr(cc_last_error(cc), "uid"))
			_exit(12);
		if (cc_kernels_set(cc, NULL, "none", 1, &json) != -EPERM)
			_exit(13);
		if (cc_admin_json(cc, "kernels", &json))
			_exit(14); /* reading is for everyone */
		free(json);
		cc_close(cc);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	chmod(d->dir, 0700);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the uid-65534 client failed at step %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	printf("# kernels_set: a client of uid 65534 is refused\n");
}

/*
 * --backend at run time: from opencl (the reductions' bits differ from libcck's: they ran on the device) to cpu
 * (every op gives libcck's bits) and back; a bad name is an error; only ccd's user or root may.
 */
static void test_kernels_set_backend(void **state)
{
	static const char *const args[] = {"-o", "backend=opencl", NULL};
	static char out[T_OUT_MAX];
	struct t_json *k;
	unsigned nfail = 0;
	int fd, r;
	ssize_t got;

	(void)state;
	rig_up(&g_a, args, NULL);
	t_watchdog(300, "kernels --backend");
	if (g_a.have_dev && !reductions_differing(&g_a))
		fail_msg("backend opencl: every reduction gave libcck's bits: did they run on the device?");

	k = kernels_set_ok(&g_a.d, "--backend", "cpu");
	assert_string_equal(t_json_str(k, "backend"), "cpu");
	t_json_free(k);
	k = kernels_json(&g_a);
	assert_string_equal(t_json_str(k, "backend"), "cpu");
	t_json_free(k);
	g_exact_all = 1;
	for (int op = 0; op < CCK_OP_COUNT; op++)
		if (op != CCK_OP_MATVEC && op != CCK_OP_MATMUL)
			check_vector_op(&g_a, op, 65537, 800 + (uint64_t)op, &nfail);
	check_matrix(&g_a, 256, 256, 0, 801, &nfail);
	check_matrix(&g_a, 64, 64, 64, 802, &nfail);
	g_exact_all = 0;
	if (nfail)
		fail_msg("backend cpu: %u results are not libcck's bits", nfail);

	k = kernels_set_ok(&g_a.d, "--backend", "opencl");
	assert_string_equal(t_json_str(k, "backend"), "opencl");
	t_json_free(k);
	if (g_a.have_dev && !reductions_differing(&g_a))
		fail_msg("back to backend opencl: every reduction gave libcck's bits: did they run on the device?");
	check_all_ops(&g_a, (const size_t[]){4097}, 1, &nfail);
	if (nfail)
		fail_msg("back to backend opencl: %u results differ from libcck beyond their bounds", nfail);

	kernels_set_fails(&g_a.d, "--backend", "gpu", "not auto, cpu or opencl", NULL);
	k = kernels_json(&g_a);
	assert_string_equal(t_json_str(k, "backend"), "opencl"); /* unchanged by the refusals */
	t_json_free(k);
	/* the table, and the log line naming the client */
	r = t_ccctl(&g_a.d, out, sizeof(out), "kernels", "--backend", "auto", NULL);
	if (r >= 0 && (r != 0 || !strstr(out, "backend:  auto")))
		fail_msg("ccctl kernels --backend auto exited %d, or does not show the backend:\n%s", r, out);
	fd = open(g_a.d.log, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	got = read(fd, out, sizeof(out) - 1);
	close(fd);
	out[got > 0 ? got : 0] = 0;
	if (!strstr(out, "backend cpu (was opencl), for every client's later ops") || !strstr(out, "client "))
		fail_msg("ccd's log does not say which client changed the backend:\n%s", out);
	kernels_set_needs_admin(&g_a.d);
	rig_down(&g_a);
}

/*
 * --device: before OpenCL is set up ("none" on a fresh ccd: no device, and why), and after (-EBUSY, saying how to
 * restart, unless it names the device in use).
 */
static void test_kernels_set_device(void **state)
{
	static const char *const args[] = {"-o", "backend=auto", NULL};
	static char out[T_OUT_MAX];
	const struct t_json *sel;
	struct t_json *k;
	char name[160];

	(void)state;
	t_watchdog(300, "kernels --device");
	/* a fresh ccd: nothing has set OpenCL up */
	memset(&g_b, 0, sizeof(g_b));
	g_b.fd = -1;
	if (t_ccd_start(&g_b.d, args, NULL))
		fail_msg("ccd did not start");
	g_b.up = 1;
	k = kernels_set_ok(&g_b.d, "--device", "none");
	assert_null(selected_device(k));
	assert_non_null(t_json_str(k, "opencl"));
	assert_true(strlen(t_json_str(k, "opencl")) > 0);
	printf("# kernels --device none: %s\n", t_json_str(k, "opencl"));
	for (size_t i = 0; i < t_json_len(t_json_get(k, "crossovers")); i++)
		assert_string_equal(t_json_str(t_json_at(t_json_get(k, "crossovers"), i), "state"), "never");
	t_json_free(k);
	if (t_ccctl(&g_b.d, out, sizeof(out), "kernels", NULL) == 0 && !strstr(out, "opencl:   none: "))
		fail_msg("ccctl kernels after --device none does not say why there is no device:\n%s", out);
	/* set up (without a device): another device is refused, "none" again is fine */
	kernels_set_fails(&g_b.d, "--device", "0", "already set up", "gives no OpenCL device");
	k = kernels_set_ok(&g_b.d, "--device", "none");
	assert_null(selected_device(k));
	t_json_free(k);
	rig_down(&g_b);

	/* a ccd whose device is set up (rig_up lists the kernels) */
	rig_up(&g_a, args, NULL);
	if (!g_a.have_dev) {
		printf("# SKIP device switching: ccd has no OpenCL device: %s\n", g_a.device);
		kernels_set_fails(&g_a.d, "--device", "0", "already set up", "gives no OpenCL device");
		rig_down(&g_a);
		return;
	}
	k = kernels_json(&g_a);
	sel = selected_device(k);
	assert_non_null(sel);
	snprintf(name, sizeof(name), "%s", t_json_str(sel, "name"));
	if (t_json_get(sel, "index")->i == 0)
		t_json_free(kernels_set_ok(&g_a.d, "--device", "0"));
	else
		kernels_set_fails(&g_a.d, "--device", "0", "already set up", NULL);
	t_json_free(k);
	t_json_free(kernels_set_ok(&g_a.d, "--device", name)); /* the device in use, by name */
	kernels_set_fails(&g_a.d, "--device", "none", "the OpenCL device is already set up (", NULL);
	kernels_set_fails(&g_a.d, "--device", "none", "restart ccd with -o opencl_device=none", NULL);
	kernels_set_fails(&g_a.d, "--device", "no-such-device-anywhere", "already set up", NULL);
	k = kernels_json(&g_a);
	sel = selected_device(k);
	assert_non_null(sel);
	assert_string_equal(t_json_str(sel, "name"), name); /* still the same device */
	t_json_free(k);
	rig_down(&g_a);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/*
 * --calibrate: the reply comes at once (calibrating, crossovers still unknown: a fresh cache directory), the
 * crossovers land while kernels is polled, every one known (measured or never) when it is done, and kept in the
 * cache file. A shutdown during a calibration stops cleanly.
 */
static void test_kernels_set_calibrate(void **state)
{
	static const char *const args[] = {"-o", "backend=auto", NULL};
	char cache[64] = "/tmp/cc-test-calib-XXXXXX", env0[96];
	const char *env[] = {env0, NULL};
	struct t_json *k;
	const char *file;
	size_t unknown = 0, n;
	double t0;
	int polls = 0;

	(void)state;
	assert_non_null(mkdtemp(cache));
	snprintf(env0, sizeof(env0), "XDG_CACHE_HOME=%s", cache);
	rig_up(&g_a, args, env);
	if (!g_a.have_dev) {
		printf("# SKIP calibration: ccd has no OpenCL device: %s\n", g_a.device);
		kernels_set_fails(&g_a.d, "--calibrate", NULL, "no OpenCL device", NULL);
		rig_down(&g_a);
		nftw(cache, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
		return;
	}
	t_watchdog(600, "kernels --calibrate");
	t0 = t_now();
	k = kernels_set_ok(&g_a.d, "--calibrate", NULL);
	assert_true(t_json_get(k, "calibrating") && t_json_get(k, "calibrating")->b);
	n = t_json_len(t_json_get(k, "crossovers"));
	assert_int_equal(n, CCK_OP_COUNT + 5);
	for (size_t i = 0; i < n; i++)
		unknown += !strcmp(t_json_str(t_json_at(t_json_get(k, "crossovers"), i), "state"), "unknown");
	printf("# kernels --calibrate answered in %.2f s, %zu crossovers unknown\n", t_now() - t0, unknown);
	if (!unknown)
		fail_msg("a fresh cache, yet every crossover is known as the calibration starts");
	t_json_free(k);
	/* poll until it is done (the watchdog bounds it) */
	for (;;) {
		const struct t_json *c;

		k = kernels_json(&g_a);
		c = t_json_get(k, "calibrating");
		polls++;
		if (!c || !c->b)
			break;
		t_json_free(k);
		t_msleep(500);
	}
	printf("# calibrated in %.1f s (%d polls)\n", t_now() - t0, polls);
	for (size_t i = 0; i < t_json_len(t_json_get(k, "crossovers")); i++) {
		const struct t_json *x = t_json_at(t_json_get(k, "crossovers"), i);
		const char *st = t_json_str(x, "state");

		if (strcmp(st, "measured") && strcmp(st, "never"))
			fail_msg("calibrated, yet the crossover of %s is %s", t_json_str(x, "op"), st);
	}
	file = t_json_str(k, "crossover_cache");
	assert_non_null(file);
	if (strncmp(file, cache, strlen(cache)) || access(file, R_OK))
		fail_msg("the crossovers are not kept in %s/...: '%s'", cache, file);
	t_json_free(k);
	/* again, and stop ccd while it runs: a clean exit (rig_down checks) */
	k = kernels_set_ok(&g_a.d, "--calibrate", NULL);
	assert_true(t_json_get(k, "calibrating")->b);
	t_json_free(k);
	rig_down(&g_a);
	nftw(cache, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_backend_opencl, teardown),
	    cmocka_unit_test_teardown(test_auto_around_crossover, teardown),
	    cmocka_unit_test_teardown(test_no_device, teardown),
	    cmocka_unit_test_teardown(test_offload_greedy, teardown),
	    cmocka_unit_test_teardown(test_kernels_set_backend, teardown),
	    cmocka_unit_test_teardown(test_kernels_set_device, teardown),
	    cmocka_unit_test_teardown(test_kernels_set_calibrate, teardown),
	};

	t_ccd_path();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
