/* SPDX-License-Identifier: MIT */
/* test_kernels.c: every libcck op on every host tier, checked against the scalar tier and a double reference. */
/*
 * Accuracy contracts (the references and bounds live in t_ref.c):
 *  - exact, bit-identical to the correctly rounded double result (float)ref: neg abs square sqrt
 *    recip relu leaky_relu floor ceil round trunc scale add_scalar clamp add sub mul div minimum
 *    maximum (relu, clamp, minimum, maximum: +0 == -0); min max argmin argmax: equal.
 *  - rsqrt: <= 2 ulp.
 *  - exp ln log2 log10 sin cos tanh sigmoid gelu gelu_erf silu elu selu mish hardswish softplus:
 *    <= 4 ulp or |err| <= 1e-7 against libm double functions, over the whole float range; a
 *    reference that rounds to NaN or +-inf needs NaN or the same infinity.
 *  - whole-vector ops: |y - ref| <= 1e-5 |ref| + 1e-6 max|ref|; cumsum: |y_i - ref_i| <=
 *    1e-6 sum_{j<=i} |x_j| + ulp(ref_i).
 *  - sum, mean, norm_l1: 1e-6 sum|x| (mean: / n); sum_of_squares: 1e-6 sum x^2; norm_l2,
 *    norm_linf, dist_l2: 1e-6 |ref|; dot: 1e-6 sum|a b|; variance, stddev: 1e-5 |ref| (two-pass
 *    double reference); covariance: 1e-5 sqrt(var_a var_b); correlation: 1e-5.
 *  - matvec, matmul: |err| <= 2 k 2^-24 sum_p |a_ip b_pj|.
 * Every tier is also compared with the scalar tier's output, within twice these bounds.
 */
#include <errno.h>
#include <fenv.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cck.h"
#include "t_ref.h"

#define T_NELEM(a) (sizeof(a) / sizeof((a)[0]))
/* Full-range sweep: every T_SWEEP_STRIDE-th float bit pattern (a prime, so every exponent and
 * many mantissas are hit). */
#if defined(__SANITIZE_ADDRESS__)
#define T_SWEEP_STRIDE 1999u /* half as dense under ASan, to keep its run near 30 s */
#else
#define T_SWEEP_STRIDE 997u
#endif
#define T_SMALL_MAX 130                     /* every n in 0..T_SMALL_MAX */
#define T_PRINT_MAX 6                       /* failure messages printed per test, op and tier */
#define T_GUARD_BYTES (256 * 1024)          /* room of each guarded buffer */
#define T_BIG_N 10000000u                   /* the summation test */
#define T_BIG_EXT_N (((size_t)3 << 20) + 5) /* large argmin/argmax, cumsum */

/* What a check is about, for its messages. */
struct t_run {
	int op; /* CCK_OP_COUNT: not one op */
	const float *params;
	int tier;
	int threads;
	const char *shape; /* "n=17" or "m=.. k=.. n=.." */
	const char *lay;
	const char *data;
};

static const char *const t_tier_names[CCK_TIER_COUNT] = {"scalar", "sse2", "avx2", "avx512"};
static int t_host = -1; /* highest tier id the host has */
static const int t_thr_def[] = {2};
static const int t_thr_both[] = {1, 2};

/* Failing cases by op and tier (row CCK_OP_COUNT: not about one op), for the final summary. */
static size_t t_fails[CCK_OP_COUNT + 1][CCK_TIER_COUNT];
static unsigned t_printed[CCK_OP_COUNT + 1][CCK_TIER_COUNT];

static struct t_guard t_guards[3];
static float *t_sweep;
static size_t t_nsweep;
static struct timespec t_t0;
/* The kernel call in flight, so that a fault (guard page) can be attributed in the teardown. */
static struct t_run t_cur;
static char t_cur_shape[64];
static volatile int t_in_call;
static size_t t_ncalls; /* kernel calls checked */

/* What each op is: canonical name, kind, number of params. */
/* clang-format off */
static const struct {
	const char *name;
	int kind;
	int nparams;
} t_ops[CCK_OP_COUNT] = {
	[CCK_OP_NEG]               = {"neg",              CCK_KIND_UNARY, 0},
	[CCK_OP_ABS]               = {"abs",              CCK_KIND_UNARY, 0},
	[CCK_OP_SQUARE]            = {"square",           CCK_KIND_UNARY, 0},
	[CCK_OP_SQRT]              = {"sqrt",             CCK_KIND_UNARY, 0},
	[CCK_OP_RSQRT]             = {"rsqrt",            CCK_KIND_UNARY, 0},
	[CCK_OP_RECIP]             = {"recip",            CCK_KIND_UNARY, 0},
	[CCK_OP_EXP]               = {"exp",              CCK_KIND_UNARY, 0},
	[CCK_OP_LN]                = {"ln",               CCK_KIND_UNARY, 0},
	[CCK_OP_LOG2]              = {"log2",             CCK_KIND_UNARY, 0},
	[CCK_OP_LOG10]             = {"log10",            CCK_KIND_UNARY, 0},
	[CCK_OP_SIN]               = {"sin",              CCK_KIND_UNARY, 0},
	[CCK_OP_COS]               = {"cos",              CCK_KIND_UNARY, 0},
	[CCK_OP_TANH]              = {"tanh",             CCK_KIND_UNARY, 0},
	[CCK_OP_SIGMOID]           = {"sigmoid",          CCK_KIND_UNARY, 0},
	[CCK_OP_RELU]              = {"relu",             CCK_KIND_UNARY, 0},
	[CCK_OP_LEAKY_RELU]        = {"leaky_relu",       CCK_KIND_UNARY, 1},
	[CCK_OP_ELU]               = {"elu",              CCK_KIND_UNARY, 1},
	[CCK_OP_SELU]              = {"selu",             CCK_KIND_UNARY, 0},
	[CCK_OP_GELU]              = {"gelu",             CCK_KIND_UNARY, 0},
	[CCK_OP_GELU_ERF]          = {"gelu_erf",         CCK_KIND_UNARY, 0},
	[CCK_OP_SILU]              = {"silu",             CCK_KIND_UNARY, 0},
	[CCK_OP_MISH]              = {"mish",             CCK_KIND_UNARY, 0},
	[CCK_OP_HARDSWISH]         = {"hardswish",        CCK_KIND_UNARY, 0},
	[CCK_OP_SOFTPLUS]          = {"softplus",         CCK_KIND_UNARY, 0},
	[CCK_OP_FLOOR]             = {"floor",            CCK_KIND_UNARY, 0},
	[CCK_OP_CEIL]              = {"ceil",             CCK_KIND_UNARY, 0},
	[CCK_OP_ROUND]             = {"round",            CCK_KIND_UNARY, 0},
	[CCK_OP_TRUNC]             = {"trunc",            CCK_KIND_UNARY, 0},
	[CCK_OP_SCALE]             = {"scale",            CCK_KIND_UNARY, 1},
	[CCK_OP_ADD_SCALAR]        = {"add_scalar",       CCK_KIND_UNARY, 1},
	[CCK_OP_CLAMP]             = {"clamp",            CCK_KIND_UNARY, 2},
	[CCK_OP_SOFTMAX]           = {"softmax",          CCK_KIND_VECTOR, 0},
	[CCK_OP_LOG_SOFTMAX]       = {"log_softmax",      CCK_KIND_VECTOR, 0},
	[CCK_OP_NORMALIZE]         = {"normalize",        CCK_KIND_VECTOR, 0},
	[CCK_OP_ZSCORE]            = {"zscore",           CCK_KIND_VECTOR, 0},
	[CCK_OP_MINMAX_NORMALIZE]  = {"minmax_normalize", CCK_KIND_VECTOR, 0},
	[CCK_OP_LAYER_NORM]        = {"layer_norm",       CCK_KIND_VECTOR, 1},
	[CCK_OP_RMS_NORM]          = {"rms_norm",         CCK_KIND_VECTOR, 1},
	[CCK_OP_CUMSUM]            = {"cumsum",           CCK_KIND_VECTOR, 0},
	[CCK_OP_ADD]               = {"add",              CCK_KIND_BINARY, 0},
	[CCK_OP_SUB]               = {"sub",              CCK_KIND_BINARY, 0},
	[CCK_OP_MUL]               = {"mul",              CCK_KIND_BINARY, 0},
	[CCK_OP_DIV]               = {"div",              CCK_KIND_BINARY, 0},
	[CCK_OP_MINIMUM]           = {"minimum",          CCK_KIND_BINARY, 0},
	[CCK_OP_MAXIMUM]           = {"maximum",          CCK_KIND_BINARY, 0},
	[CCK_OP_SUM]               = {"sum",              CCK_KIND_REDUCE, 0},
	[CCK_OP_MEAN]              = {"mean",             CCK_KIND_REDUCE, 0},
	[CCK_OP_MIN]               = {"min",              CCK_KIND_REDUCE, 0},
	[CCK_OP_MAX]               = {"max",              CCK_KIND_REDUCE, 0},
	[CCK_OP_ARGMIN]            = {"argmin",           CCK_KIND_REDUCE, 0},
	[CCK_OP_ARGMAX]            = {"argmax",           CCK_KIND_REDUCE, 0},
	[CCK_OP_SUM_OF_SQUARES]    = {"sum_of_squares",   CCK_KIND_REDUCE, 0},
	[CCK_OP_NORM_L1]           = {"norm_l1",          CCK_KIND_REDUCE, 0},
	[CCK_OP_NORM_L2]           = {"norm_l2",          CCK_KIND_REDUCE, 0},
	[CCK_OP_NORM_LINF]         = {"norm_linf",        CCK_KIND_REDUCE, 0},
	[CCK_OP_VARIANCE]          = {"variance",         CCK_KIND_REDUCE, 0},
	[CCK_OP_STDDEV]            = {"stddev",           CCK_KIND_REDUCE, 0},
	[CCK_OP_DOT]               = {"dot",              CCK_KIND_REDUCE2, 0},
	[CCK_OP_COVARIANCE]        = {"covariance",       CCK_KIND_REDUCE2, 0},
	[CCK_OP_CORRELATION]       = {"correlation",      CCK_KIND_REDUCE2, 0},
	[CCK_OP_DIST_L2]           = {"dist_l2",          CCK_KIND_REDUCE2, 0},
	[CCK_OP_MATVEC]            = {"matvec",           CCK_KIND_MATRIX, 0},
	[CCK_OP_MATMUL]            = {"matmul",           CCK_KIND_MATRIX, 0},
};
/* clang-format on */


/* ---- failure reports ------------------------------------------------------------------ */

static void t_fail(const struct t_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Count a failing case and print it, at most T_PRINT_MAX times per op and tier. */
static void t_fail(const struct t_run *r, const char *fmt, ...)
{
	int op = r->op >= 0 && r->op < CCK_OP_COUNT ? r->op : CCK_OP_COUNT;
	int tier = r->tier >= 0 && r->tier < CCK_TIER_COUNT ? r->tier : 0;
	char par[64] = "";
	va_list ap;

	t_fails[op][tier]++;
	if (t_printed[op][tier]++ >= T_PRINT_MAX) {
		if (t_printed[op][tier] == T_PRINT_MAX + 1)
			print_message("FAIL %s tier=%s: further failures of this op and tier are only counted\n",
			              op < CCK_OP_COUNT ? t_ops[op].name : "-", t_tier_names[tier]);
		return;
	}
	if (op < CCK_OP_COUNT && r->params && t_ops[op].nparams == 1)
		snprintf(par, sizeof(par), "(%.9g)", r->params[0]);
	else if (op < CCK_OP_COUNT && r->params && t_ops[op].nparams == 2)
		snprintf(par, sizeof(par), "(%.9g, %.9g)", r->params[0], r->params[1]);
	print_message("FAIL %s%s tier=%s threads=%d %s layout=%s data=%s: ", op < CCK_OP_COUNT ? t_ops[op].name : "-",
	              par, t_tier_names[tier], r->threads, r->shape ? r->shape : "", r->lay ? r->lay : "-",
	              r->data ? r->data : "-");
	va_start(ap, fmt);
	vprint_message(fmt, ap);
	va_end(ap);
	print_message("\n");
	fflush(stdout);
}

static void t_call_begin(const struct t_run *r)
{
	t_cur = *r;
	snprintf(t_cur_shape, sizeof(t_cur_shape), "%s", r->shape ? r->shape : "");
	t_cur.shape = t_cur_shape;
	t_in_call = 1;
	t_ncalls++;
}

static void t_call_end(void)
{
	t_in_call = 0;
}

/* API checks that do not stop at the first failure. */
#define T_CHECK(nf, cond, ...)                                                                                         \
	do {                                                                                                           \
		if (!(cond)) {                                                                                         \
			(nf)++;                                                                                        \
			print_message("FAIL %s:%d: %s: ", __func__, __LINE__, #cond);                                  \
			print_message(__VA_ARGS__);                                                                    \
			print_message("\n");                                                                           \
		}                                                                                                      \
	} while (0)

static void *t_alloc(size_t bytes)
{
	void *p = malloc(bytes ? bytes : 1);

	assert_non_null(p);
	return p;
}

/* ---- tiers and threads ---------------------------------------------------------------- */

static void t_force(int tier)
{
	int rc = cck_force_tier(t_tier_names[tier]);

	if (rc != 0 || strcmp(cck_tier(), t_tier_names[tier]) != 0)
		print_message("FAIL cck_force_tier(\"%s\") = %d, cck_tier() = \"%s\"\n", t_tier_names[tier], rc,
		              cck_tier());
	assert_int_equal(rc, 0);
	assert_string_equal(cck_tier(), t_tier_names[tier]);
}

static void t_restore(void)
{
	cck_force_tier("auto");
	cck_set_threads(2);
}

static void t_threads(int n)
{
	int rc = cck_set_threads(n);

	if (rc != n)
		print_message("FAIL cck_set_threads(%d) = %d\n", n, rc);
	assert_int_equal(rc, n);
}

/* ---- buffer placement ----------------------------------------------------------------- */

enum { T_HEAP, T_GEND, T_GSTART };

/* Where the inputs (slot 0: x or a, slot 1: b) and the output (slot 2) lie. */
struct t_lay {
	const char *name;
	int where;
	unsigned off[3]; /* T_HEAP: floats past a 64-byte boundary; exact-size blocks, so ASan sees over-reads */
	int y_is;        /* -1: y has its own buffer; 0: y == a (in place); 1: y == b */
	int b_is_a;      /* b == a */
};

/* clang-format off */
static const struct t_lay t_lays[] = {
	{"aligned",          T_HEAP,   {0, 0, 0}, -1, 0},
	{"misaligned 1/2/3", T_HEAP,   {1, 2, 3}, -1, 0},
	{"misaligned 2/3/1", T_HEAP,   {2, 3, 1}, -1, 0},
	{"misaligned 3/1/2", T_HEAP,   {3, 1, 2}, -1, 0},
	{"guard end",        T_GEND,   {0, 0, 0}, -1, 0},
	{"guard start",      T_GSTART, {0, 0, 0}, -1, 0},
	{"in-place y=a",     T_HEAP,   {0, 0, 0}, 0,  0},
	{"in-place y=a +3",  T_HEAP,   {3, 1, 3}, 0,  0},
	{"in-place y=b +1",  T_HEAP,   {2, 1, 1}, 1,  0},
	{"a=b",              T_HEAP,   {1, 1, 2}, -1, 1},
	{"in-place y=a=b",   T_HEAP,   {2, 2, 2}, 0,  1},
};
/* clang-format on */
#define T_LAY_ALIGNED (&t_lays[0])
#define T_LAY_MISALIGNED (&t_lays[1])
#define T_LAY_INPLACE_A (&t_lays[7]) /* y == a, misaligned */
#define T_LAY_INPLACE_B (&t_lays[8]) /* y == b, misaligned */
#define T_NLAY_PLAIN 6               /* the layouts without aliasing come first */

struct t_place {
	float *p[3];
	void *mem[3];
	size_t pre[3]; /* canary floats before p[i] */
};

static const uint32_t t_canary = 0x7fa5c3e1u; /* a signalling NaN nobody computes */

static void t_place(struct t_place *pl, const struct t_lay *lay, const size_t sz[3])
{
	memset(pl, 0, sizeof(*pl));
	for (int s = 0; s < 3; s++) {
		if ((s == 1 && lay->b_is_a) || (s == 2 && lay->y_is >= 0))
			continue;
		if (lay->where == T_HEAP) {
			void *m = NULL;
			size_t fl = lay->off[s] + sz[s];

			assert_int_equal(posix_memalign(&m, 64, fl ? fl * sizeof(float) : 64), 0);
			pl->mem[s] = m;
			pl->pre[s] = lay->off[s];
			pl->p[s] = (float *)m + lay->off[s];
			for (size_t i = 0; i < pl->pre[s]; i++)
				((float *)m)[i] = t_float(t_canary);
		} else {
			assert_true(sz[s] * sizeof(float) <= T_GUARD_BYTES);
			pl->p[s] = lay->where == T_GEND ? t_guard_end(&t_guards[s], sz[s])
			                                : t_guard_start(&t_guards[s], sz[s]);
		}
	}
	if (lay->b_is_a)
		pl->p[1] = pl->p[0];
	if (lay->y_is >= 0)
		pl->p[2] = pl->p[lay->y_is];
}

static void t_unplace(struct t_place *pl)
{
	for (int s = 0; s < 3; s++)
		free(pl->mem[s]);
}

/* Canaries before the heap blocks intact? */
static int t_canaries_ok(const struct t_place *pl)
{
	for (int s = 0; s < 3; s++)
		for (size_t i = 0; i < pl->pre[s]; i++)
			if (t_bits(((float *)pl->mem[s])[i]) != t_canary)
				return 0;
	return 1;
}

static void t_poison(float *y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] = 0x1.2468acp+99f;
}

/* ---- data ------------------------------------------------------------------------------ */



/* ---- runners: one case on every tier (and thread count), checked --------------------- */

static double t_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Round to nearest, denormals neither flushed (FTZ) nor read as zero (DAZ)? */
static int t_fpenv_ok(void)
{
	volatile float tiny = 1e-40f, one = 1.0f, half = 0.5f;

	return fegetround() == FE_TONEAREST && tiny * one != 0.0f && FLT_MIN * half != 0.0f;
}

/* Checks that do not depend on the op: return code, FP environment, canaries, inputs untouched. */
static size_t t_check_common(const struct t_run *r, int rc, const struct t_place *pl, const struct t_lay *lay,
                             const float *a, const float *b, size_t na, size_t nb)
{
	size_t f = 0;

	if (rc != 0) {
		t_fail(r, "returned %d, expected 0", rc);
		return 1;
	}
	if (!t_fpenv_ok()) {
		t_fail(r, "left the caller's floating-point environment changed (rounding mode or FTZ/DAZ)");
		fesetround(FE_TONEAREST);
		f++;
	}
	if (!t_canaries_ok(pl)) {
		t_fail(r, "wrote before the start of a buffer");
		f++;
	}
	if (lay->y_is != 0 && a && memcmp(pl->p[0], a, na * sizeof(float)) != 0) {
		t_fail(r, "modified its input a/x");
		f++;
	}
	if (lay->y_is != 1 && !(lay->b_is_a && lay->y_is == 0) && b && memcmp(pl->p[1], b, nb * sizeof(float)) != 0) {
		t_fail(r, "modified its input b");
		f++;
	}
	return f;
}

/* Badness of an element-wise result, to pick the worst one to show. */
static double t_badness(float got, double ref)
{
	float rf = (float)ref;

	if (isnan(got) != isnan(rf) || isinf(got) != isinf(rf))
		return INFINITY;
	if (isnan(got))
		return 0;
	return (double)t_ulp_dist(got, rf);
}

/* The ulp distance of got from (float)ref as text ("n/a" with a NaN). */
static const char *t_ulp_str(char *buf, size_t len, float got, double ref)
{
	if (isnan(got) || isnan((float)ref))
		snprintf(buf, len, "n/a");
	else
		snprintf(buf, len, "%lld", (long long)t_ulp_dist(got, (float)ref));
	return buf;
}

/*
 * cck_unary_f32 (element-wise or whole-vector) on src[0..n) placed per lay, on every tier and
 * each thread count in thr; returns the failing cases.
 */
static size_t t_run_unary(int op, const float *params, const float *src, size_t n, const struct t_lay *lay,
                          const int *thr, int nthr, const char *data)
{
	int elem = t_ops[op].kind == CCK_KIND_UNARY;
	struct t_tol tol = t_op_tol(op);
	double *ref = t_alloc(n * sizeof(double)), *bnd = t_alloc(n * sizeof(double));
	float *sy = t_alloc(n * sizeof(float));
	size_t sz[3] = {n, 0, n}, fails = 0;
	int defined = 1, have_s = 0;
	struct t_place pl;
	char shape[32];

	snprintf(shape, sizeof(shape), "n=%zu", n);
	if (elem) {
		for (size_t i = 0; i < n; i++)
			ref[i] = t_ref_unary(op, src[i], params);
	} else {
		defined = t_ref_vector(op, src, n, params, ref, bnd) == 0;
	}
	t_place(&pl, lay, sz);
	for (int tier = 0; tier <= t_host; tier++) {
		t_force(tier);
		for (int ti = 0; ti < nthr; ti++) {
			struct t_run r = {op, params, tier, thr[ti], shape, lay->name, data};
			size_t bad = 0, bad_s = 0, i0 = 0, iw = 0, is = 0;
			double worst = -1;
			char ulps[24];
			float *y;
			int rc;

			t_threads(thr[ti]);
			memcpy(pl.p[0], src, n * sizeof(float));
			if (pl.p[2] != pl.p[0])
				t_poison(pl.p[2], n);
			t_call_begin(&r);
			rc = cck_unary_f32(op, pl.p[0], pl.p[2], n, params);
			t_call_end();
			if (t_check_common(&r, rc, &pl, lay, src, NULL, n, 0)) {
				fails++;
				if (rc != 0)
					continue;
			}
			y = pl.p[2];
			for (size_t i = 0; i < n; i++) {
				int ok, ok_s = 1;

				if (elem) {
					ok = t_elem_ok(tol, y[i], ref[i]);
					if (have_s)
						ok_s = t_same_ok(tol, y[i], sy[i]);
				} else {
					ok = !defined || fabs((double)y[i] - ref[i]) <= bnd[i];
					if (have_s && defined)
						ok_s = fabs((double)y[i] - (double)sy[i]) <= 2 * bnd[i];
				}
				if (!ok) {
					double b =
					    elem ? t_badness(y[i], ref[i]) : fabs((double)y[i] - ref[i]) / bnd[i];

					if (bad++ == 0)
						i0 = i;
					if (!(b <= worst)) {
						worst = b;
						iw = i;
					}
				}
				if (!ok_s && bad_s++ == 0)
					is = i;
			}
			if (bad) {
				if (elem)
					t_fail(&r,
					       "%zu of %zu elements off; first i=%zu x=%.9g (0x%08x) expected %.9g "
					       "got %.9g (0x%08x), %s ulp; worst i=%zu x=%.9g (0x%08x) expected %.9g "
					       "(ref %.17g) got %.9g (0x%08x)",
					       bad, n, i0, src[i0], t_bits(src[i0]), (float)ref[i0], y[i0],
					       t_bits(y[i0]), t_ulp_str(ulps, sizeof(ulps), y[i0], ref[i0]), iw,
					       src[iw], t_bits(src[iw]), (float)ref[iw], ref[iw], y[iw], t_bits(y[iw]));
				else
					t_fail(&r,
					       "%zu of %zu elements off; first i=%zu x=%.9g expected %.9g got %.9g "
					       "(bound %.3g); worst i=%zu x=%.9g expected %.9g got %.9g (err %.3g, "
					       "bound %.3g)",
					       bad, n, i0, src[i0], ref[i0], y[i0], bnd[i0], iw, src[iw], ref[iw],
					       y[iw], fabs((double)y[iw] - ref[iw]), bnd[iw]);
				fails++;
			}
			if (bad_s) {
				t_fail(&r,
				       "differs from the scalar tier (threads=1st run) in %zu of %zu elements; first "
				       "i=%zu x=%.9g (0x%08x) scalar %.9g got %.9g",
				       bad_s, n, is, src[is], t_bits(src[is]), sy[is], y[is]);
				fails++;
			}
			if (!have_s) {
				memcpy(sy, y, n * sizeof(float));
				have_s = 1;
			}
		}
	}
	t_unplace(&pl);
	free(ref);
	free(bnd);
	free(sy);
	return fails;
}

/* cck_binary_f32 on a[0..n), b[0..n) placed per lay (b ignored when lay->b_is_a). */
static size_t t_run_binary(int op, const float *a, const float *b, size_t n, const struct t_lay *lay, const int *thr,
                           int nthr, const char *data)
{
	struct t_tol tol = t_op_tol(op);
	double *ref = t_alloc(n * sizeof(double));
	float *sy = t_alloc(n * sizeof(float));
	size_t sz[3] = {n, n, n}, fails = 0;
	struct t_place pl;
	int have_s = 0;
	char shape[32];

	if (lay->b_is_a)
		b = a;
	snprintf(shape, sizeof(shape), "n=%zu", n);
	for (size_t i = 0; i < n; i++)
		ref[i] = t_ref_binary(op, a[i], b[i]);
	t_place(&pl, lay, sz);
	for (int tier = 0; tier <= t_host; tier++) {
		t_force(tier);
		for (int ti = 0; ti < nthr; ti++) {
			struct t_run r = {op, NULL, tier, thr[ti], shape, lay->name, data};
			size_t bad = 0, bad_s = 0, i0 = 0, iw = 0, is = 0;
			double worst = -1;
			float *y;
			int rc;

			t_threads(thr[ti]);
			memcpy(pl.p[0], a, n * sizeof(float));
			if (!lay->b_is_a)
				memcpy(pl.p[1], b, n * sizeof(float));
			if (lay->y_is < 0)
				t_poison(pl.p[2], n);
			t_call_begin(&r);
			rc = cck_binary_f32(op, pl.p[0], pl.p[1], pl.p[2], n);
			t_call_end();
			if (t_check_common(&r, rc, &pl, lay, a, b, n, n)) {
				fails++;
				if (rc != 0)
					continue;
			}
			y = pl.p[2];
			for (size_t i = 0; i < n; i++) {
				if (!t_elem_ok(tol, y[i], ref[i])) {
					double w = t_badness(y[i], ref[i]);

					if (bad++ == 0)
						i0 = i;
					if (!(w <= worst)) {
						worst = w;
						iw = i;
					}
				}
				if (have_s && !t_same_ok(tol, y[i], sy[i]) && bad_s++ == 0)
					is = i;
			}
			if (bad) {
				t_fail(&r,
				       "%zu of %zu elements off; first i=%zu a=%.9g (0x%08x) b=%.9g (0x%08x) expected "
				       "%.9g (0x%08x) got %.9g (0x%08x); worst i=%zu a=%.9g b=%.9g expected %.9g got "
				       "%.9g",
				       bad, n, i0, a[i0], t_bits(a[i0]), b[i0], t_bits(b[i0]), (float)ref[i0],
				       t_bits((float)ref[i0]), y[i0], t_bits(y[i0]), iw, a[iw], b[iw], (float)ref[iw],
				       y[iw]);
				fails++;
			}
			if (bad_s) {
				t_fail(&r,
				       "differs from the scalar tier in %zu of %zu elements; first i=%zu a=%.9g b=%.9g "
				       "scalar %.9g got %.9g",
				       bad_s, n, is, a[is], b[is], sy[is], y[is]);
				fails++;
			}
			if (!have_s) {
				memcpy(sy, y, n * sizeof(float));
				have_s = 1;
			}
		}
	}
	t_unplace(&pl);
	free(ref);
	free(sy);
	return fails;
}

static int t_reduce_needs_data(int op)
{
	return op == CCK_OP_MIN || op == CCK_OP_MAX || op == CCK_OP_ARGMIN || op == CCK_OP_ARGMAX;
}

/* cck_reduce_f32 (b == NULL) or cck_reduce2_f32 on a, b placed per lay. */
static size_t t_run_reduce(int op, const float *a, const float *b, size_t n, const struct t_lay *lay, const int *thr,
                           int nthr, const char *data)
{
	int two = t_ops[op].kind == CCK_KIND_REDUCE2;
	size_t sz[3] = {n, two ? n : 0, 0}, fails = 0;
	const double sentinel = -0x1.2345p+777;
	double bound, ref, sret = 0;
	struct t_place pl;
	int have_s = 0;
	char shape[32];

	if (two && lay->b_is_a)
		b = a;
	snprintf(shape, sizeof(shape), "n=%zu", n);
	ref = two ? t_ref_reduce2(op, a, b, n, &bound) : t_ref_reduce(op, a, n, &bound);
	t_place(&pl, lay, sz);
	for (int tier = 0; tier <= t_host; tier++) {
		t_force(tier);
		for (int ti = 0; ti < nthr; ti++) {
			struct t_run r = {op, NULL, tier, thr[ti], shape, lay->name, data};
			double ret = sentinel;
			int rc;

			t_threads(thr[ti]);
			memcpy(pl.p[0], a, n * sizeof(float));
			if (two && !lay->b_is_a)
				memcpy(pl.p[1], b, n * sizeof(float));
			t_call_begin(&r);
			rc =
			    two ? cck_reduce2_f32(op, pl.p[0], pl.p[1], n, &ret) : cck_reduce_f32(op, pl.p[0], n, &ret);
			t_call_end();
			if (n == 0 && !two && t_reduce_needs_data(op)) {
				if (rc != -EINVAL || ret != sentinel) {
					t_fail(&r, "returned %d and ret %.17g; expected -EINVAL and ret untouched", rc,
					       ret);
					fails++;
				}
				continue;
			}
			if (t_check_common(&r, rc, &pl, lay, a, two ? b : NULL, n, two ? n : 0)) {
				fails++;
				if (rc != 0)
					continue;
			}
			if (bound >= 0 && !t_close(ret, ref, bound)) {
				t_fail(&r, "expected %.17g got %.17g: error %.3g, bound %.3g", ref, ret,
				       fabs(ret - ref), bound);
				fails++;
			}
			if (have_s && bound >= 0 && !t_close(ret, sret, 2 * bound)) {
				t_fail(&r, "scalar tier gave %.17g, this tier %.17g (reference %.17g, bound %.3g)",
				       sret, ret, ref, bound);
				fails++;
			}
			if (!have_s) {
				sret = ret;
				have_s = 1;
			}
		}
	}
	t_unplace(&pl);
	return fails;
}

/*
 * cck_matmul_f32 (or cck_matvec_f32 when matvec, with n == 1) on A (m x k), B (k x n), placed
 * per lay (slots: A, B, C).
 */
static size_t t_run_matrix(int matvec, const float *A, const float *B, size_t m, size_t k, size_t n,
                           const struct t_lay *lay, const int *thr, int nthr)
{
	int op = matvec ? CCK_OP_MATVEC : CCK_OP_MATMUL;
	size_t sz[3] = {m * k, k * n, m * n}, fails = 0;
	double *ref = t_alloc(m * n * sizeof(double)), *bnd = t_alloc(m * n * sizeof(double));
	float *sc = t_alloc(m * n * sizeof(float));
	struct t_place pl;
	int have_s = 0;
	char shape[64];

	if (matvec)
		snprintf(shape, sizeof(shape), "rows=%zu cols=%zu", m, k);
	else
		snprintf(shape, sizeof(shape), "m=%zu k=%zu n=%zu", m, k, n);
	t_ref_matmul(A, B, m, k, n, ref, bnd);
	t_place(&pl, lay, sz);
	for (int tier = 0; tier <= t_host; tier++) {
		t_force(tier);
		for (int ti = 0; ti < nthr; ti++) {
			struct t_run r = {op, NULL, tier, thr[ti], shape, lay->name, "uniform[-1,1]"};
			size_t bad = 0, bad_s = 0, i0 = 0, iw = 0;
			double worst = -1;
			float *C;
			int rc;

			t_threads(thr[ti]);
			memcpy(pl.p[0], A, sz[0] * sizeof(float));
			memcpy(pl.p[1], B, sz[1] * sizeof(float));
			for (size_t i = 0; i < sz[2]; i++)
				pl.p[2][i] = NAN;
			t_call_begin(&r);
			rc = matvec ? cck_matvec_f32(pl.p[0], pl.p[1], pl.p[2], m, k)
			            : cck_matmul_f32(pl.p[0], pl.p[1], pl.p[2], m, k, n);
			t_call_end();
			if (t_check_common(&r, rc, &pl, lay, A, B, sz[0], sz[1])) {
				fails++;
				if (rc != 0)
					continue;
			}
			C = pl.p[2];
			for (size_t i = 0; i < m * n; i++) {
				double e = fabs((double)C[i] - ref[i]);

				if (!(e <= bnd[i])) {
					double w = bnd[i] > 0 ? e / bnd[i] : INFINITY;

					if (bad++ == 0)
						i0 = i;
					if (!(w <= worst)) {
						worst = w;
						iw = i;
					}
				}
				if (have_s && !(fabs((double)C[i] - (double)sc[i]) <= 2 * bnd[i]))
					bad_s++;
			}
			if (bad) {
				t_fail(&r,
				       "%zu of %zu outputs off; first [%zu][%zu] expected %.9g got %.9g (bound %.3g); "
				       "worst [%zu][%zu] expected %.9g got %.9g (bound %.3g)",
				       bad, m * n, i0 / n, i0 % n, ref[i0], C[i0], bnd[i0], iw / n, iw % n, ref[iw],
				       C[iw], bnd[iw]);
				fails++;
			}
			if (bad_s) {
				t_fail(&r, "differs from the scalar tier in %zu of %zu outputs", bad_s, m * n);
				fails++;
			}
			if (!have_s) {
				memcpy(sc, C, m * n * sizeof(float));
				have_s = 1;
			}
		}
	}
	t_unplace(&pl);
	free(ref);
	free(bnd);
	free(sc);
	return fails;
}

static void t_expect_none(size_t fails, const char *what)
{
	if (fails)
		print_message("%s: %zu failing cases (see FAIL lines above)\n", what, fails);
	assert_int_equal(fails, 0);
}

/* ---- tests: the API around the kernels ------------------------------------------------- */

static void test_op_table(void **state)
{
	static const int bad_ops[] = {-1, CCK_OP_COUNT, 1000, INT_MIN, INT_MAX};
	size_t nf = 0;

	(void)state;
	for (int op = 0; op < CCK_OP_COUNT; op++) {
		const char *name = cck_op_name(op);
		int tier = cck_op_tier(op);

		T_CHECK(nf, name && strcmp(name, t_ops[op].name) == 0, "cck_op_name(%d) = \"%s\", expected \"%s\"", op,
		        name ? name : "(null)", t_ops[op].name);
		T_CHECK(nf, cck_op_lookup(t_ops[op].name) == op, "cck_op_lookup(\"%s\") = %d, expected %d",
		        t_ops[op].name, cck_op_lookup(t_ops[op].name), op);
		T_CHECK(nf, cck_op_kind(op) == t_ops[op].kind, "cck_op_kind(%s) = %d, expected %d", t_ops[op].name,
		        cck_op_kind(op), t_ops[op].kind);
		T_CHECK(nf, cck_op_nparams(op) == t_ops[op].nparams, "cck_op_nparams(%s) = %d, expected %d",
		        t_ops[op].name, cck_op_nparams(op), t_ops[op].nparams);
		T_CHECK(nf, tier >= 0 && tier <= t_host, "cck_op_tier(%s) = %d, host tier %d", t_ops[op].name, tier,
		        t_host);
	}
	T_CHECK(nf, cck_op_lookup("swish") == CCK_OP_SILU, "cck_op_lookup(\"swish\") = %d", cck_op_lookup("swish"));
	T_CHECK(nf, cck_op_lookup("") == -ENOENT, "cck_op_lookup(\"\") = %d", cck_op_lookup(""));
	T_CHECK(nf, cck_op_lookup("nosuchop") == -ENOENT, "= %d", cck_op_lookup("nosuchop"));
	T_CHECK(nf, cck_op_lookup("relu6") == -ENOENT, "= %d", cck_op_lookup("relu6"));
	T_CHECK(nf, cck_op_lookup("sigmoidx") == -ENOENT, "= %d", cck_op_lookup("sigmoidx"));
	T_CHECK(nf, cck_op_lookup("sigmoi") == -ENOENT, "= %d", cck_op_lookup("sigmoi"));
	T_CHECK(nf, cck_op_lookup(NULL) == -EINVAL, "cck_op_lookup(NULL) = %d", cck_op_lookup(NULL));
	for (size_t i = 0; i < T_NELEM(bad_ops); i++) {
		int op = bad_ops[i];

		T_CHECK(nf, cck_op_name(op) == NULL, "cck_op_name(%d) not NULL", op);
		T_CHECK(nf, cck_op_kind(op) == -EINVAL, "cck_op_kind(%d) = %d", op, cck_op_kind(op));
		T_CHECK(nf, cck_op_nparams(op) == -EINVAL, "cck_op_nparams(%d) = %d", op, cck_op_nparams(op));
		T_CHECK(nf, cck_op_tier(op) == -EINVAL, "cck_op_tier(%d) = %d", op, cck_op_tier(op));
	}
	t_expect_none(nf, __func__);
}

static void test_tier_api(void **state)
{
	static const char *const bad[] = {"", "avx1024", "neon", "sse3", "scalar ", "AVX2x"};
	size_t nf = 0;

	(void)state;
	for (int t = 0; t < CCK_TIER_COUNT; t++)
		T_CHECK(nf, cck_tier_name(t) && strcmp(cck_tier_name(t), t_tier_names[t]) == 0,
		        "cck_tier_name(%d) = \"%s\"", t, cck_tier_name(t) ? cck_tier_name(t) : "(null)");
	T_CHECK(nf, cck_tier_name(-1) == NULL, "cck_tier_name(-1) not NULL");
	T_CHECK(nf, cck_tier_name(CCK_TIER_COUNT) == NULL, "cck_tier_name(CCK_TIER_COUNT) not NULL");
	for (int t = 0; t < CCK_TIER_COUNT; t++) {
		int rc = cck_force_tier(t_tier_names[t]);

		if (t <= t_host) {
			T_CHECK(nf, rc == 0, "cck_force_tier(\"%s\") = %d", t_tier_names[t], rc);
			T_CHECK(nf, strcmp(cck_tier(), t_tier_names[t]) == 0, "forced %s, cck_tier() = %s",
			        t_tier_names[t], cck_tier());
			T_CHECK(nf, strcmp(cck_host_tier(), t_tier_names[t_host]) == 0, "cck_host_tier() moved to %s",
			        cck_host_tier());
			/* a forced tier is exact: every op runs that tier's body */
			for (int op = 0; op < CCK_OP_COUNT; op++) {
				int ot = cck_op_tier(op);

				T_CHECK(nf, ot == t, "forced %s, cck_op_tier(%s) = %d", t_tier_names[t], t_ops[op].name,
				        ot);
			}
		} else {
			print_message("skipping tier %s: the host has up to %s; forcing it must fail\n",
			              t_tier_names[t], t_tier_names[t_host]);
			T_CHECK(nf, rc == -ENOTSUP, "cck_force_tier(\"%s\") above the host = %d", t_tier_names[t], rc);
			T_CHECK(nf, strcmp(cck_tier(), t_tier_names[t_host]) == 0, "after a refused force, tier %s",
			        cck_tier());
		}
	}
	/* down to scalar and back up to the host's tier */
	T_CHECK(nf, cck_force_tier("scalar") == 0, "force scalar");
	T_CHECK(nf, strcmp(cck_tier(), "scalar") == 0, "tier %s", cck_tier());
	for (size_t i = 0; i < T_NELEM(bad); i++) {
		int rc = cck_force_tier(bad[i]);

		T_CHECK(nf, rc == -EINVAL, "cck_force_tier(\"%s\") = %d", bad[i], rc);
		T_CHECK(nf, strcmp(cck_tier(), "scalar") == 0, "a refused force changed the tier to %s", cck_tier());
	}
	T_CHECK(nf, cck_force_tier(NULL) == -EINVAL, "cck_force_tier(NULL) = %d", cck_force_tier(NULL));
	T_CHECK(nf, cck_force_tier(t_tier_names[t_host]) == 0, "force back to %s", t_tier_names[t_host]);
	T_CHECK(nf, strcmp(cck_tier(), t_tier_names[t_host]) == 0, "tier %s after forcing the host tier", cck_tier());
	/* "auto": each op on its preferred tier, none above the host's */
	T_CHECK(nf, cck_force_tier("scalar") == 0, "force scalar");
	T_CHECK(nf, cck_force_tier("auto") == 0, "cck_force_tier(\"auto\")");
	T_CHECK(nf, strcmp(cck_tier(), t_tier_names[t_host]) == 0, "tier %s in auto mode", cck_tier());
	for (int op = 0; op < CCK_OP_COUNT; op++) {
		int ot = cck_op_tier(op);

		T_CHECK(nf, ot >= CCK_TIER_SCALAR && ot <= t_host, "auto: cck_op_tier(%s) = %d", t_ops[op].name, ot);
		T_CHECK(nf, t_host == CCK_TIER_SCALAR || ot > CCK_TIER_SCALAR, "auto: %s left on scalar",
		        t_ops[op].name);
	}
	t_expect_none(nf, __func__);
}

static void *get_threads_main(void *arg)
{
	*(int *)arg = cck_get_threads();
	return NULL;
}

static void test_threads_api(void **state)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	size_t nf = 0;
	int rc, before;

	(void)state;
	T_CHECK(nf, cck_set_threads(2) == 2, "set 2");
	before = cck_get_threads();
	T_CHECK(nf, before == 2, "cck_get_threads() = %d after setting 2", before);
	rc = cck_set_threads(-1);
	T_CHECK(nf, rc == -EINVAL, "cck_set_threads(-1) = %d", rc);
	rc = cck_set_threads(INT_MIN);
	T_CHECK(nf, rc == -EINVAL, "cck_set_threads(INT_MIN) = %d", rc);
	T_CHECK(nf, cck_get_threads() == before, "a refused cck_set_threads changed the count to %d",
	        cck_get_threads());
	rc = cck_set_threads(0);
	T_CHECK(nf, rc == ncpu, "cck_set_threads(0) = %d, online CPUs %ld", rc, ncpu);
	T_CHECK(nf, cck_get_threads() == ncpu, "cck_get_threads() = %d, online CPUs %ld", cck_get_threads(), ncpu);
	rc = cck_set_threads(1);
	T_CHECK(nf, rc == 1 && cck_get_threads() == 1, "set 1: %d, get %d", rc, cck_get_threads());
	rc = cck_set_threads(2);
	T_CHECK(nf, rc == 2 && cck_get_threads() == 2, "set 2: %d, get %d", rc, cck_get_threads());
	/* a per-thread cap: this thread sees it, another does not, 0 lifts it */
	T_CHECK(nf, cck_set_local_threads(1) == 0, "first local cap: previous not 0");
	T_CHECK(nf, cck_get_threads() == 1, "local cap 1: get %d", cck_get_threads());
	{
		pthread_t th;
		int other = 0;

		T_CHECK(nf, pthread_create(&th, NULL, get_threads_main, &other) == 0, "pthread_create");
		pthread_join(th, NULL);
		T_CHECK(nf, other == 2, "another thread sees %d, not the global 2", other);
	}
	T_CHECK(nf, cck_set_local_threads(-1) == -EINVAL, "local -1 accepted");
	T_CHECK(nf, cck_set_local_threads(0) == 1, "lifting the cap: previous not 1");
	T_CHECK(nf, cck_get_threads() == 2, "cap lifted: get %d", cck_get_threads());
	t_expect_none(nf, __func__);
}

/* NULL pointers with n == 0 are fine; the n == 0 results of the reductions. */
static void test_empty(void **state)
{
	static const float ok_params[2] = {0.5f, 1.0f};
	float buf[4] = {1, 2, 3, 4}, C[12];
	size_t nf = 0;

	(void)state;
	for (int tier = 0; tier <= t_host; tier++) {
		t_force(tier);
		for (int op = 0; op < CCK_OP_COUNT; op++) {
			const char *nm = t_ops[op].name;
			double ret = 42.0;
			int rc;

			switch (t_ops[op].kind) {
			case CCK_KIND_UNARY:
			case CCK_KIND_VECTOR:
				rc = cck_unary_f32(op, NULL, NULL, 0, ok_params);
				T_CHECK(nf, rc == 0, "%s tier %s n=0 NULL: %d", nm, t_tier_names[tier], rc);
				rc = cck_unary_f32(op, buf, buf, 0, ok_params);
				T_CHECK(nf, rc == 0, "%s tier %s n=0: %d", nm, t_tier_names[tier], rc);
				T_CHECK(nf, buf[0] == 1 && buf[3] == 4, "%s n=0 wrote to y", nm);
				break;
			case CCK_KIND_BINARY:
				rc = cck_binary_f32(op, NULL, NULL, NULL, 0);
				T_CHECK(nf, rc == 0, "%s tier %s n=0 NULL: %d", nm, t_tier_names[tier], rc);
				break;
			case CCK_KIND_REDUCE:
				rc = cck_reduce_f32(op, NULL, 0, &ret);
				if (t_reduce_needs_data(op)) {
					T_CHECK(nf, rc == -EINVAL && ret == 42.0, "%s tier %s n=0: rc %d ret %g", nm,
					        t_tier_names[tier], rc, ret);
				} else if (op == CCK_OP_MEAN || op == CCK_OP_VARIANCE || op == CCK_OP_STDDEV) {
					T_CHECK(nf, rc == 0 && isnan(ret), "%s tier %s n=0: rc %d ret %g, expected NaN",
					        nm, t_tier_names[tier], rc, ret);
				} else {
					T_CHECK(nf, rc == 0 && ret == 0.0, "%s tier %s n=0: rc %d ret %g, expected 0",
					        nm, t_tier_names[tier], rc, ret);
				}
				break;
			case CCK_KIND_REDUCE2:
				rc = cck_reduce2_f32(op, NULL, NULL, 0, &ret);
				if (op == CCK_OP_COVARIANCE || op == CCK_OP_CORRELATION)
					T_CHECK(nf, rc == 0 && isnan(ret), "%s tier %s n=0: rc %d ret %g, expected NaN",
					        nm, t_tier_names[tier], rc, ret);
				else
					T_CHECK(nf, rc == 0 && ret == 0.0, "%s tier %s n=0: rc %d ret %g, expected 0",
					        nm, t_tier_names[tier], rc, ret);
				break;
			default:
				break;
			}
		}
		T_CHECK(nf, cck_matvec_f32(NULL, NULL, NULL, 0, 0) == 0, "matvec 0x0");
		T_CHECK(nf, cck_matmul_f32(NULL, NULL, NULL, 0, 0, 0) == 0, "matmul 0x0x0");
		T_CHECK(nf, cck_matmul_f32(NULL, NULL, NULL, 0, 5, 0) == 0, "matmul 0x5x0");
		/* an empty inner dimension gives zeros */
		for (size_t i = 0; i < T_NELEM(C); i++)
			C[i] = NAN;
		T_CHECK(nf, cck_matvec_f32(buf, buf, C, 4, 0) == 0, "matvec 4x0");
		for (size_t i = 0; i < 4; i++)
			T_CHECK(nf, C[i] == 0, "matvec rows=4 cols=0 tier %s: y[%zu] = %g, expected 0",
			        t_tier_names[tier], i, C[i]);
		for (size_t i = 0; i < T_NELEM(C); i++)
			C[i] = NAN;
		T_CHECK(nf, cck_matmul_f32(buf, buf, C, 3, 0, 4) == 0, "matmul 3x0x4");
		for (size_t i = 0; i < 12; i++)
			T_CHECK(nf, C[i] == 0, "matmul m=3 k=0 n=4 tier %s: C[%zu] = %g, expected 0",
			        t_tier_names[tier], i, C[i]);
	}
	t_expect_none(nf, __func__);
}

/* Bad arguments: -EINVAL, *ret untouched. */
static void test_bad_args(void **state)
{
	static const int bad_ops[] = {-1, CCK_OP_COUNT, 1000, INT_MIN, INT_MAX};
	static const float ok_params[2] = {0.5f, 1.0f};
	float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b[8] = {2, 3, 4, 5, 6, 7, 8, 9}, y[8], M[64];
	const double sentinel = 1234.5;
	size_t nf = 0;

	(void)state;
	for (int op = 0; op < CCK_OP_COUNT; op++) {
		const char *nm = t_ops[op].name;
		int kind = t_ops[op].kind, rc;
		double ret;

		/* an op of the wrong kind */
		if (kind != CCK_KIND_UNARY && kind != CCK_KIND_VECTOR) {
			rc = cck_unary_f32(op, x, y, 8, ok_params);
			T_CHECK(nf, rc == -EINVAL, "cck_unary_f32(%s) = %d", nm, rc);
		}
		if (kind != CCK_KIND_BINARY) {
			rc = cck_binary_f32(op, x, b, y, 8);
			T_CHECK(nf, rc == -EINVAL, "cck_binary_f32(%s) = %d", nm, rc);
		}
		if (kind != CCK_KIND_REDUCE) {
			ret = sentinel;
			rc = cck_reduce_f32(op, x, 8, &ret);
			T_CHECK(nf, rc == -EINVAL && ret == sentinel, "cck_reduce_f32(%s) = %d, ret %g", nm, rc, ret);
		}
		if (kind != CCK_KIND_REDUCE2) {
			ret = sentinel;
			rc = cck_reduce2_f32(op, x, b, 8, &ret);
			T_CHECK(nf, rc == -EINVAL && ret == sentinel, "cck_reduce2_f32(%s) = %d, ret %g", nm, rc, ret);
		}
		/* NULL pointers, missing or NaN params */
		switch (kind) {
		case CCK_KIND_UNARY:
		case CCK_KIND_VECTOR:
			rc = cck_unary_f32(op, NULL, y, 8, ok_params);
			T_CHECK(nf, rc == -EINVAL, "%s x=NULL: %d", nm, rc);
			rc = cck_unary_f32(op, x, NULL, 8, ok_params);
			T_CHECK(nf, rc == -EINVAL, "%s y=NULL: %d", nm, rc);
			if (t_ops[op].nparams > 0) {
				rc = cck_unary_f32(op, x, y, 8, NULL);
				T_CHECK(nf, rc == -EINVAL, "%s params=NULL: %d", nm, rc);
				for (int k = 0; k < t_ops[op].nparams; k++) {
					float p[2] = {ok_params[0], ok_params[1]};

					p[k] = NAN;
					rc = cck_unary_f32(op, x, y, 8, p);
					T_CHECK(nf, rc == -EINVAL, "%s params[%d]=NaN: %d", nm, k, rc);
					p[k] = -NAN;
					rc = cck_unary_f32(op, x, y, 8, p);
					T_CHECK(nf, rc == -EINVAL, "%s params[%d]=-NaN: %d", nm, k, rc);
				}
			} else {
				rc = cck_unary_f32(op, x, y, 8, NULL);
				T_CHECK(nf, rc == 0, "%s takes no params, params=NULL: %d", nm, rc);
			}
			break;
		case CCK_KIND_BINARY:
			rc = cck_binary_f32(op, NULL, b, y, 8);
			T_CHECK(nf, rc == -EINVAL, "%s a=NULL: %d", nm, rc);
			rc = cck_binary_f32(op, x, NULL, y, 8);
			T_CHECK(nf, rc == -EINVAL, "%s b=NULL: %d", nm, rc);
			rc = cck_binary_f32(op, x, b, NULL, 8);
			T_CHECK(nf, rc == -EINVAL, "%s y=NULL: %d", nm, rc);
			break;
		case CCK_KIND_REDUCE:
			ret = sentinel;
			rc = cck_reduce_f32(op, NULL, 8, &ret);
			T_CHECK(nf, rc == -EINVAL && ret == sentinel, "%s x=NULL: %d, ret %g", nm, rc, ret);
			rc = cck_reduce_f32(op, x, 8, NULL);
			T_CHECK(nf, rc == -EINVAL, "%s ret=NULL: %d", nm, rc);
			break;
		case CCK_KIND_REDUCE2:
			ret = sentinel;
			rc = cck_reduce2_f32(op, NULL, b, 8, &ret);
			T_CHECK(nf, rc == -EINVAL && ret == sentinel, "%s a=NULL: %d, ret %g", nm, rc, ret);
			ret = sentinel;
			rc = cck_reduce2_f32(op, x, NULL, 8, &ret);
			T_CHECK(nf, rc == -EINVAL && ret == sentinel, "%s b=NULL: %d, ret %g", nm, rc, ret);
			rc = cck_reduce2_f32(op, x, b, 8, NULL);
			T_CHECK(nf, rc == -EINVAL, "%s ret=NULL: %d", nm, rc);
			break;
		default:
			break;
		}
	}
	/* clamp with lo > hi; a NaN bound */
	{
		const float lohi[][2] = {{2.0f, 1.0f}, {0.0f, -0.5f}, {INFINITY, -INFINITY}, {NAN, 1.0f}, {0.0f, NAN}};

		for (size_t i = 0; i < T_NELEM(lohi); i++) {
			int rc = cck_unary_f32(CCK_OP_CLAMP, x, y, 8, lohi[i]);

			T_CHECK(nf, rc == -EINVAL, "clamp(%g, %g) = %d", lohi[i][0], lohi[i][1], rc);
		}
	}
	/* op ids out of range */
	for (size_t i = 0; i < T_NELEM(bad_ops); i++) {
		int op = bad_ops[i], rc;
		double ret = sentinel;

		rc = cck_unary_f32(op, x, y, 8, ok_params);
		T_CHECK(nf, rc == -EINVAL, "cck_unary_f32(op %d) = %d", op, rc);
		rc = cck_binary_f32(op, x, b, y, 8);
		T_CHECK(nf, rc == -EINVAL, "cck_binary_f32(op %d) = %d", op, rc);
		rc = cck_reduce_f32(op, x, 8, &ret);
		T_CHECK(nf, rc == -EINVAL && ret == sentinel, "cck_reduce_f32(op %d) = %d, ret %g", op, rc, ret);
		rc = cck_reduce2_f32(op, x, b, 8, &ret);
		T_CHECK(nf, rc == -EINVAL && ret == sentinel, "cck_reduce2_f32(op %d) = %d, ret %g", op, rc, ret);
	}
	/* matrices: NULL with nonzero sizes */
	for (size_t i = 0; i < T_NELEM(M); i++)
		M[i] = 1.0f;
	T_CHECK(nf, cck_matvec_f32(NULL, x, y, 4, 4) == -EINVAL, "matvec A=NULL");
	T_CHECK(nf, cck_matvec_f32(M, NULL, y, 4, 4) == -EINVAL, "matvec x=NULL");
	T_CHECK(nf, cck_matvec_f32(M, x, NULL, 4, 4) == -EINVAL, "matvec y=NULL");
	T_CHECK(nf, cck_matmul_f32(NULL, M, y, 2, 4, 4) == -EINVAL, "matmul A=NULL");
	T_CHECK(nf, cck_matmul_f32(M, NULL, y, 2, 4, 4) == -EINVAL, "matmul B=NULL");
	T_CHECK(nf, cck_matmul_f32(M, M, NULL, 2, 4, 4) == -EINVAL, "matmul C=NULL");
	T_CHECK(nf, cck_matmul_f32(NULL, NULL, NULL, 2, 4, 4) == -EINVAL, "matmul all NULL");
	t_expect_none(nf, __func__);
}

/* Sizes whose byte counts overflow: -EINVAL before any memory is touched. Run last: a kernel
 * without the check runs off its buffers. */
static void test_bad_sizes(void **state)
{
	const size_t huge = SIZE_MAX / 2 + 1, big = (size_t)1 << 33;
	float x[8] = {0}, y[8], M[8] = {0};
	const double sentinel = 1234.5;
	double ret = sentinel;
	size_t nf = 0;
	int rc;

	(void)state;
	rc = cck_unary_f32(CCK_OP_EXP, x, y, huge, NULL);
	T_CHECK(nf, rc == -EINVAL, "unary n=SIZE_MAX/2+1: %d", rc);
	rc = cck_unary_f32(CCK_OP_SOFTMAX, x, y, huge, NULL);
	T_CHECK(nf, rc == -EINVAL, "softmax n=SIZE_MAX/2+1: %d", rc);
	rc = cck_binary_f32(CCK_OP_ADD, x, x, y, huge);
	T_CHECK(nf, rc == -EINVAL, "binary n=SIZE_MAX/2+1: %d", rc);
	rc = cck_reduce_f32(CCK_OP_SUM, x, huge, &ret);
	T_CHECK(nf, rc == -EINVAL && ret == sentinel, "reduce n=SIZE_MAX/2+1: %d, ret %g", rc, ret);
	rc = cck_reduce2_f32(CCK_OP_DOT, x, x, huge, &ret);
	T_CHECK(nf, rc == -EINVAL && ret == sentinel, "reduce2 n=SIZE_MAX/2+1: %d, ret %g", rc, ret);
	rc = cck_matvec_f32(M, x, y, big, big);
	T_CHECK(nf, rc == -EINVAL, "matvec 2^33 x 2^33: %d", rc);
	rc = cck_matvec_f32(M, x, y, 1, huge);
	T_CHECK(nf, rc == -EINVAL, "matvec 1 x (SIZE_MAX/2+1): %d", rc);
	rc = cck_matmul_f32(M, M, y, big, big, 1);
	T_CHECK(nf, rc == -EINVAL, "matmul m=k=2^33: %d", rc);
	rc = cck_matmul_f32(M, M, y, 1, big, big);
	T_CHECK(nf, rc == -EINVAL, "matmul k=n=2^33: %d", rc);
	rc = cck_matmul_f32(M, M, y, big, 1, big);
	T_CHECK(nf, rc == -EINVAL, "matmul m=n=2^33: %d", rc);
	t_expect_none(nf, __func__);
}

/* ---- tests: element-wise ops ------------------------------------------------------------ */

/* Every element-wise op over the whole float range (a bit-pattern sweep plus the specials). */
static void test_unary_sweep(void **state)
{
	size_t fails = 0;

	(void)state;
	for (int op = 0; op < CCK_OP_COUNT; op++) {
		if (t_ops[op].kind != CCK_KIND_UNARY)
			continue;
		for (int ps = 0; ps < t_npsets(op); ps++)
			fails +=
			    t_run_unary(op, t_pset(op, ps), t_sweep, t_nsweep, T_LAY_ALIGNED, t_thr_def, 1, "sweep");
	}
	t_expect_none(fails, __func__);
}

/* Every n in 0..130, every layout (misaligned, guard pages, in place). */
static void test_unary_lengths(void **state)
{
	float *src = t_alloc((T_SMALL_MAX + 1) * sizeof(float));
	size_t fails = 0;

	(void)state;
	for (int op = 0; op < CCK_OP_COUNT; op++) {
		if (t_ops[op].kind != CCK_KIND_UNARY)
			continue;
		for (size_t n = 0; n <= T_SMALL_MAX; n++) {
			struct t_rng r;

			t_rng_seed(&r, 1000003u * (uint64_t)op + n + 1);
			t_gen_mixed(&r, src, n);
			for (size_t l = 0; l < T_NELEM(t_lays); l++) {
				if (t_lays[l].b_is_a || t_lays[l].y_is == 1)
					continue;
				fails += t_run_unary(op, t_pset(op, (int)n), src, n, &t_lays[l], t_thr_def, 1, "mixed");
			}
		}
	}
	free(src);
	t_expect_none(fails, __func__);
}

static void test_vector_lengths(void **state)
{
	float *src = t_alloc((T_SMALL_MAX + 1) * sizeof(float));
	size_t fails = 0;

	(void)state;
	for (int op = 0; op < CCK_OP_COUNT; op++) {
		if (t_ops[op].kind != CCK_KIND_VECTOR)
			continue;
		for (size_t n = 0; n <= T_SMALL_MAX; n++) {
			struct t_rng r;
			const char *data;

			t_rng_seed(&r, 2000003u * (uint64_t)op + n + 1);
			data = t_gen_data(&r, src, n, (int)(n % T_NDATA));
			for (size_t l = 0; l < T_NELEM(t_lays); l++) {
				if (t_lays[l].b_is_a || t_lays[l].y_is == 1)
					continue;
				fails += t_run_unary(op, t_pset(op, (int)n), src, n, &t_lays[l], t_thr_def, 1, data);
			}
		}
	}
	free(src);
	t_expect_none(fails, __func__);
}

/* Binary ops on arbitrary bit-pattern pairs, all pairs of specials, and mixed values. */
static void test_binary_sweep(void **state)
{
	size_t ns = t_nspecials(), nr = (size_t)1 << 20, n = ns * ns + nr, fails = 0;
	float *a = t_alloc(n * sizeof(float)), *b = t_alloc(n * sizeof(float));
	struct t_rng r;

	(void)state;
	t_rng_seed(&r, 77);
	for (size_t i = 0; i < ns * ns; i++) {
		a[i] = t_special(i / ns);
		b[i] = t_special(i % ns);
	}
	for (size_t i = ns * ns; i < n; i++) {
		if (i % 2) {
			a[i] = t_float((uint32_t)t_rng_u64(&r));
			b[i] = t_float((uint32_t)t_rng_u64(&r));
		} else {
			t_gen_mixed(&r, &a[i], 1);
			t_gen_mixed(&r, &b[i], 1);
		}
	}
	for (int op = 0; op < CCK_OP_COUNT; op++)
		if (t_ops[op].kind == CCK_KIND_BINARY)
			fails += t_run_binary(op, a, b, n, T_LAY_ALIGNED, t_thr_def, 1, "specials x specials + bits");
	free(a);
	free(b);
	t_expect_none(fails, __func__);
}

static void test_binary_lengths(void **state)
{
	float *a = t_alloc((T_SMALL_MAX + 1) * sizeof(float)), *b = t_alloc((T_SMALL_MAX + 1) * sizeof(float));
	size_t fails = 0;

	(void)state;
	for (int op = 0; op < CCK_OP_COUNT; op++) {
		if (t_ops[op].kind != CCK_KIND_BINARY)
			continue;
		for (size_t n = 0; n <= T_SMALL_MAX; n++) {
			struct t_rng r;

			t_rng_seed(&r, 3000017u * (uint64_t)op + n + 1);
			t_gen_mixed(&r, a, n);
			t_gen_mixed(&r, b, n);
			for (size_t l = 0; l < T_NELEM(t_lays); l++)
				fails += t_run_binary(op, a, b, n, &t_lays[l], t_thr_def, 1, "mixed");
		}
	}
	free(a);
	free(b);
	t_expect_none(fails, __func__);
}

/* ---- tests: reductions ------------------------------------------------------------------- */

/* b = 0.7 a + noise: correlated, so covariance and correlation are far from 0. */
static void t_gen_pair(struct t_rng *r, const float *a, float *b, size_t n, int which)
{
	const char *unused = t_gen_data(r, b, n, which + 1);

	(void)unused;
	for (size_t i = 0; i < n; i++)
		b[i] = (float)(0.7 * a[i] + 0.5 * b[i]);
}

static void test_reduce_lengths(void **state)
{
	float *a = t_alloc((T_SMALL_MAX + 1) * sizeof(float)), *b = t_alloc((T_SMALL_MAX + 1) * sizeof(float));
	size_t fails = 0;

	(void)state;
	for (int op = 0; op < CCK_OP_COUNT; op++) {
		int kind = t_ops[op].kind;

		if (kind != CCK_KIND_REDUCE && kind != CCK_KIND_REDUCE2)
			continue;
		for (size_t n = 0; n <= T_SMALL_MAX; n++) {
			struct t_rng r;
			const char *data;

			t_rng_seed(&r, 4000037u * (uint64_t)op + n + 1);
			data = t_gen_data(&r, a, n, (int)(n % T_NDATA));
			t_gen_pair(&r, a, b, n, (int)(n % T_NDATA));
			for (size_t l = 0; l < T_NELEM(t_lays); l++) {
				const struct t_lay *lay = &t_lays[l];

				if (lay->y_is >= 0 || (lay->b_is_a && kind != CCK_KIND_REDUCE2))
					continue;
				fails += t_run_reduce(op, a, kind == CCK_KIND_REDUCE2 ? b : NULL, n, lay, t_thr_def, 1,
				                      data);
			}
		}
	}
	free(a);
	free(b);
	t_expect_none(fails, __func__);
}

/* min, max, argmin, argmax: ties (first index wins), infinities, NaNs (the first NaN wins). */
static void test_reduce_extremes(void **state)
{
	static const int ops[] = {CCK_OP_MIN, CCK_OP_MAX, CCK_OP_ARGMIN, CCK_OP_ARGMAX};
	float *x = t_alloc((T_SMALL_MAX + 1) * sizeof(float));
	size_t fails = 0;
	struct t_rng r;

	(void)state;
	t_rng_seed(&r, 99);
	for (size_t n = 1; n <= T_SMALL_MAX; n++) {
		for (int variant = 0; variant < 5; variant++) {
			const char *data;

			/* small integers: many ties */
			for (size_t i = 0; i < n; i++)
				x[i] = (float)((int)t_rng_below(&r, 7) - 3);
			switch (variant) {
			case 0:
				data = "ties";
				break;
			case 1:
				data = "ties, -inf and +inf";
				x[t_rng_below(&r, n)] = -INFINITY;
				x[t_rng_below(&r, n)] = INFINITY;
				x[t_rng_below(&r, n)] = -INFINITY;
				break;
			case 2:
				data = "a NaN at the end";
				x[n - 1] = NAN;
				break;
			case 3:
				data = "NaNs at random places";
				x[t_rng_below(&r, n)] = NAN;
				x[t_rng_below(&r, n)] = -NAN;
				break;
			default:
				data = "all equal";
				for (size_t i = 0; i < n; i++)
					x[i] = 2.5f;
				break;
			}
			for (size_t k = 0; k < T_NELEM(ops); k++) {
				const struct t_lay *lay = &t_lays[(n + (size_t)variant) % T_NLAY_PLAIN];

				fails += t_run_reduce(ops[k], x, NULL, n, lay, t_thr_def, 1, data);
			}
		}
	}
	free(x);
	/* large: ties and NaNs in different threads' parts, which must combine in order */
	x = t_alloc(T_BIG_EXT_N * sizeof(float));
	for (int variant = 0; variant < 4; variant++) {
		const size_t n = T_BIG_EXT_N;
		const char *data = "ties over all parts";

		for (size_t i = 0; i < n; i++)
			x[i] = (float)((int)t_rng_below(&r, 7) - 3);
		if (variant == 1) {
			data = "ties, a late NaN";
			x[n - 5] = NAN;
			x[n - 2] = NAN;
		} else if (variant == 2) {
			data = "ties, a NaN in the second half, extremes after it";
			x[n / 2 + 77] = NAN;
			x[n - 1] = -INFINITY;
			x[n - 3] = INFINITY;
		} else if (variant == 3) {
			data = "the only extremes near the end";
			x[n - 7] = -4.0f;
			x[n - 6] = 4.0f;
		}
		for (size_t k = 0; k < T_NELEM(ops); k++)
			fails += t_run_reduce(ops[k], x, NULL, n, variant % 2 ? T_LAY_MISALIGNED : T_LAY_ALIGNED,
			                      t_thr_both, 2, data);
	}
	free(x);
	t_expect_none(fails, __func__);
}

/* n = 10^7, data on which naive float summation fails the bound (checked here too). */
static void test_big_sums(void **state)
{
	static const int ops[] = {CCK_OP_SUM, CCK_OP_MEAN, CCK_OP_NORM_L1, CCK_OP_SUM_OF_SQUARES, CCK_OP_NORM_L2};
	const size_t n = T_BIG_N;
	float *a = t_alloc(n * sizeof(float)), *b = t_alloc(n * sizeof(float));
	size_t fails = 0;
	struct t_rng r;

	(void)state;
	t_rng_seed(&r, 5);
	for (int set = 0; set < 2; set++) {
		const char *data = set ? "uniform[0,1)" : "all 0.1f";
		float naive = 0, naive_dot = 0;
		double ref, bound;

		for (size_t i = 0; i < n; i++) {
			a[i] = set ? (float)t_rng_unit(&r) : 0.1f;
			b[i] = (float)t_rng_uniform(&r, 0.5, 1.5);
		}
		/* sanity of the test: a naive float loop must fail these bounds */
		for (size_t i = 0; i < n; i++) {
			naive += a[i];
			naive_dot += a[i] * b[i];
		}
		ref = t_ref_reduce(CCK_OP_SUM, a, n, &bound);
		print_message("%s, n=%zu: sum %.17g, naive float sum %.9g (error %.3g, bound %.3g)\n", data, n, ref,
		              (double)naive, fabs(naive - ref), bound);
		if (!(fabs((double)naive - ref) > bound)) {
			print_message("FAIL test sanity: a naive float sum meets the bound on \"%s\"\n", data);
			fails++;
		}
		ref = t_ref_reduce2(CCK_OP_DOT, a, b, n, &bound);
		if (!(fabs((double)naive_dot - ref) > bound)) {
			print_message("FAIL test sanity: a naive float dot meets the bound on \"%s\"\n", data);
			fails++;
		}
		for (size_t k = 0; k < T_NELEM(ops); k++)
			fails += t_run_reduce(ops[k], a, NULL, n, T_LAY_ALIGNED, t_thr_both, 2, data);
		fails += t_run_reduce(CCK_OP_DOT, a, b, n, T_LAY_ALIGNED, t_thr_both, 2, data);
		/* a running sum in float fails cumsum's bound on 0.1f as well */
		naive = 0;
		for (size_t i = 0; i < T_BIG_EXT_N; i++)
			naive += a[i];
		ref = t_ref_reduce(CCK_OP_SUM, a, T_BIG_EXT_N, &bound);
		if (set == 0 && !(fabs((double)naive - ref) > bound + t_ulp_at((float)ref))) {
			print_message("FAIL test sanity: a float running sum meets cumsum's bound on \"%s\"\n", data);
			fails++;
		}
		fails += t_run_unary(CCK_OP_CUMSUM, NULL, a, T_BIG_EXT_N, T_LAY_MISALIGNED, t_thr_both, 2, data);
	}
	free(a);
	free(b);
	t_expect_none(fails, __func__);
}

/* Large mean, small variance: a one-pass float formula fails it (checked here too). */
static void test_variance_large_mean(void **state)
{
	static const size_t sizes[] = {2, 17, 1000, 100003};
	const size_t nmax = 100003;
	float *a = t_alloc(nmax * sizeof(float)), *b = t_alloc(nmax * sizeof(float));
	size_t fails = 0;
	struct t_rng r;

	(void)state;
	t_rng_seed(&r, 6);
	for (size_t s = 0; s < T_NELEM(sizes); s++) {
		size_t n = sizes[s];
		const char *data = "1e4 + uniform[-1,1]";
		const int *thr = n >= 100000 ? t_thr_both : t_thr_def;
		int nthr = n >= 100000 ? 2 : 1;

		for (size_t i = 0; i < n; i++) {
			double u = t_rng_uniform(&r, -1, 1);

			a[i] = (float)(1e4 + u);
			b[i] = (float)(-2e4 + 0.5 * u + t_rng_uniform(&r, -0.5, 0.5));
		}
		if (n == nmax) {
			float s1 = 0, s2 = 0, v;
			double ref, bound;

			for (size_t i = 0; i < n; i++) {
				s1 += a[i];
				s2 += a[i] * a[i];
			}
			v = s2 / (float)n - (s1 / (float)n) * (s1 / (float)n);
			ref = t_ref_reduce(CCK_OP_VARIANCE, a, n, &bound);
			print_message("%s, n=%zu: variance %.9g, one-pass float %.9g\n", data, n, ref, (double)v);
			if (!(fabs((double)v - ref) > bound)) {
				print_message("FAIL test sanity: one-pass float variance meets the bound\n");
				fails++;
			}
		}
		fails += t_run_reduce(CCK_OP_VARIANCE, a, NULL, n, T_LAY_MISALIGNED, thr, nthr, data);
		fails += t_run_reduce(CCK_OP_STDDEV, a, NULL, n, T_LAY_MISALIGNED, thr, nthr, data);
		fails += t_run_reduce(CCK_OP_MEAN, a, NULL, n, T_LAY_MISALIGNED, thr, nthr, data);
		fails += t_run_reduce(CCK_OP_COVARIANCE, a, b, n, T_LAY_MISALIGNED, thr, nthr, data);
		fails += t_run_reduce(CCK_OP_CORRELATION, a, b, n, T_LAY_MISALIGNED, thr, nthr, data);
	}
	free(a);
	free(b);
	t_expect_none(fails, __func__);
}

/*
 * zscore and layer_norm of data with a large mean and a small spread (1e4 + uniform[-0.05, 0.05]: the mean's float
 * rounds away up to 5e-4, a hundredth of the spread): within the vector ops' bound of the double reference on every
 * tier (the offset goes in as two floats). With the mean as one float the error was 2e-3 on values of about 1.
 * minmax_normalize (its offset, the minimum, is a float itself) and rms_norm on the same data.
 */
static void test_vector_large_mean(void **state)
{
	static const size_t sizes[] = {3, 130, 5000, 100003};
	static const float eps[] = {0.0f, 1e-6f};
	float *a = t_alloc(100003 * sizeof(float));
	size_t fails = 0;
	struct t_rng r;

	(void)state;
	t_rng_seed(&r, 61);
	for (size_t s = 0; s < T_NELEM(sizes); s++) {
		const size_t n = sizes[s];
		const int *thr = n >= 100000 ? t_thr_both : t_thr_def;
		const int nthr = n >= 100000 ? 2 : 1;

		for (size_t i = 0; i < n; i++)
			a[i] = (float)(1e4 + t_rng_uniform(&r, -0.05, 0.05));
		fails += t_run_unary(CCK_OP_ZSCORE, NULL, a, n, T_LAY_MISALIGNED, thr, nthr, "1e4 + uniform[-0.05,0.05]");
		for (size_t e = 0; e < T_NELEM(eps); e++)
			fails += t_run_unary(CCK_OP_LAYER_NORM, &eps[e], a, n, T_LAY_MISALIGNED, thr, nthr,
			                     "1e4 + uniform[-0.05,0.05]");
		fails += t_run_unary(CCK_OP_MINMAX_NORMALIZE, NULL, a, n, T_LAY_MISALIGNED, thr, nthr,
		                     "1e4 + uniform[-0.05,0.05]");
		fails += t_run_unary(CCK_OP_RMS_NORM, &eps[1], a, n, T_LAY_MISALIGNED, thr, nthr,
		                     "1e4 + uniform[-0.05,0.05]");
	}
	free(a);
	t_expect_none(fails, __func__);
}

/*
 * cumsum near FLT_MAX: every tier keeps the running total in double, so a prefix that passes FLT_MAX and comes back
 * (3e38, 3e38, -3e38, -3e38: inf, then 3e38 and 0) gives the scalar tier's values; the SIMD tiers' in-vector float
 * prefix once made inf - inf = NaN of it. In place too, and at every offset inside a vector.
 */
static void test_cumsum_overflow(void **state)
{
	const size_t n = 70;
	float *x = t_alloc(n * sizeof(float)), *want = t_alloc(n * sizeof(float)), *y = t_alloc(n * sizeof(float));
	size_t fails = 0;

	(void)state;
	for (size_t off = 0; off < 17; off++) {
		for (size_t i = 0; i < n; i++)
			x[i] = i < off ? 1.0f : ((i - off) % 4 < 2 ? 3e38f : -3e38f);
		t_force(CCK_TIER_SCALAR);
		assert_int_equal(cck_unary_f32(CCK_OP_CUMSUM, x, want, n, NULL), 0);
		for (int t = CCK_TIER_SCALAR; t <= t_host; t++) {
			t_force(t);
			for (int inplace = 0; inplace < 2; inplace++) {
				if (inplace)
					memcpy(y, x, n * sizeof(float));
				assert_int_equal(cck_unary_f32(CCK_OP_CUMSUM, inplace ? y : x, y, n, NULL), 0);
				for (size_t i = 0; i < n; i++)
					if (memcmp(&y[i], &want[i], sizeof(float))) {
						if (fails++ < 10)
							print_message("FAIL cumsum %s%s offset %zu: y[%zu] = %g, scalar %g\n",
							              t_tier_names[t], inplace ? " in place" : "", off, i,
							              (double)y[i], (double)want[i]);
						break;
					}
			}
		}
	}
	t_restore();
	free(x);
	free(want);
	free(y);
	t_expect_none(fails, __func__);
}

/*
 * Magnitudes where float accumulation would overflow or underflow although
 * the double result is fine (squares of 1e20 and of 1e-25, sums past
 * FLT_MAX), and inputs whose head misrepresents the whole (a ramp, a step)
 * so the one-pass shifted variance must fall back to centring on the mean.
 */
static void test_reduce_magnitudes(void **state)
{
	static const int sq_ops[] = {CCK_OP_SUM_OF_SQUARES, CCK_OP_NORM_L2, CCK_OP_VARIANCE,
	                             CCK_OP_STDDEV,         CCK_OP_DOT,     CCK_OP_DIST_L2,
	                             CCK_OP_COVARIANCE};
	static const int sum_ops[] = {CCK_OP_SUM, CCK_OP_MEAN, CCK_OP_NORM_L1};
	static const double scales[] = {1e20, 1e-25};
	const size_t n = 5003;
	const size_t nbig = 100003;
	float *a = t_alloc(nbig * sizeof(float)), *b = t_alloc(nbig * sizeof(float));
	size_t fails = 0;
	struct t_rng r;
	char what[64];

	(void)state;
	t_rng_seed(&r, 11);
	for (size_t s = 0; s < T_NELEM(scales); s++) {
		for (size_t i = 0; i < n; i++) {
			a[i] = (float)(scales[s] * t_rng_uniform(&r, -1, 1));
			b[i] = (float)(scales[s] * t_rng_uniform(&r, -1, 1));
		}
		snprintf(what, sizeof(what), "uniform[-1,1] * %g", scales[s]);
		for (size_t k = 0; k < T_NELEM(sq_ops); k++) {
			int two = cck_op_kind(sq_ops[k]) == CCK_KIND_REDUCE2;

			fails += t_run_reduce(sq_ops[k], a, two ? b : NULL, n, T_LAY_MISALIGNED, t_thr_def, 1, what);
		}
	}
	for (size_t i = 0; i < n; i++)
		a[i] = (float)(3e38 * t_rng_uniform(&r, 0.5, 1));
	for (size_t k = 0; k < T_NELEM(sum_ops); k++)
		fails += t_run_reduce(sum_ops[k], a, NULL, n, T_LAY_MISALIGNED, t_thr_def, 1, "3e38 * uniform[0.5,1]");
	for (size_t i = 0; i < nbig; i++)
		a[i] = (float)i;
	fails += t_run_reduce(CCK_OP_VARIANCE, a, NULL, nbig, T_LAY_MISALIGNED, t_thr_both, 2, "ramp 0..n");
	for (size_t i = 0; i < nbig; i++)
		a[i] = i < 5000 ? 1000.0f : (float)t_rng_uniform(&r, -1, 1);
	fails += t_run_reduce(CCK_OP_VARIANCE, a, NULL, nbig, T_LAY_MISALIGNED, t_thr_both, 2, "step 1000 then noise");
	fails += t_run_reduce(CCK_OP_STDDEV, a, NULL, nbig, T_LAY_MISALIGNED, t_thr_both, 2, "step 1000 then noise");
	free(a);
	free(b);
	t_expect_none(fails, __func__);
}

/* ---- tests: large sizes, one and two threads --------------------------------------------- */

static const size_t t_large[] = {1000, 4097, 100003, ((size_t)1 << 20) + 3};
#define T_LARGE_MAX (((size_t)1 << 20) + 3)

static void t_large_thr(size_t n, const int **thr, int *nthr)
{
	*thr = n >= 100000 ? t_thr_both : t_thr_def;
	*nthr = n >= 100000 ? 2 : 1;
}

static void test_large_elementwise(void **state)
{
	float *a = t_alloc(T_LARGE_MAX * sizeof(float)), *b = t_alloc(T_LARGE_MAX * sizeof(float));
	size_t fails = 0;

	(void)state;
	for (size_t s = 0; s < T_NELEM(t_large); s++) {
		size_t n = t_large[s];
		const struct t_lay *lay = s % 2 ? T_LAY_MISALIGNED : T_LAY_ALIGNED;
		const int *thr;
		int nthr;
		struct t_rng r;

		t_large_thr(n, &thr, &nthr);
		t_rng_seed(&r, 7 + s);
		t_gen_mixed(&r, a, n);
		t_gen_mixed(&r, b, n);
		for (int op = 0; op < CCK_OP_COUNT; op++) {
			if (t_ops[op].kind == CCK_KIND_UNARY)
				fails += t_run_unary(op, t_pset(op, (int)s), a, n, lay, thr, nthr, "mixed");
			else if (t_ops[op].kind == CCK_KIND_BINARY)
				fails += t_run_binary(op, a, b, n, lay, thr, nthr, "mixed");
		}
		/* in place, large */
		fails += t_run_unary(CCK_OP_SIGMOID, NULL, a, n, T_LAY_INPLACE_A, thr, nthr, "mixed");
		fails += t_run_binary(CCK_OP_MUL, a, b, n, T_LAY_INPLACE_B, thr, nthr, "mixed");
	}
	free(a);
	free(b);
	t_expect_none(fails, __func__);
}

static void test_large_vector(void **state)
{
	float *a = t_alloc(T_LARGE_MAX * sizeof(float));
	size_t fails = 0;

	(void)state;
	for (size_t s = 0; s < T_NELEM(t_large); s++) {
		size_t n = t_large[s];
		const struct t_lay *lay = s % 2 ? T_LAY_MISALIGNED : T_LAY_ALIGNED;
		const int *thr;
		int nthr;

		t_large_thr(n, &thr, &nthr);
		for (int d = 0; d < 3; d++) {
			struct t_rng r;
			const char *data;

			t_rng_seed(&r, 100 + 7 * s + (size_t)d);
			data = t_gen_data(&r, a, n, (int)(2 * s + (size_t)d));
			for (int op = 0; op < CCK_OP_COUNT; op++) {
				if (t_ops[op].kind != CCK_KIND_VECTOR)
					continue;
				fails += t_run_unary(op, t_pset(op, d), a, n, lay, thr, nthr, data);
				/* in place, on the threaded path too */
				if (d == 0 && n >= 100000)
					fails += t_run_unary(op, t_pset(op, d), a, n, T_LAY_INPLACE_A, thr, nthr, data);
			}
		}
	}
	free(a);
	t_expect_none(fails, __func__);
}

static void test_large_reduce(void **state)
{
	float *a = t_alloc(T_LARGE_MAX * sizeof(float)), *b = t_alloc(T_LARGE_MAX * sizeof(float));
	size_t fails = 0;

	(void)state;
	for (size_t s = 0; s < T_NELEM(t_large); s++) {
		size_t n = t_large[s];
		const struct t_lay *lay = s % 2 ? T_LAY_MISALIGNED : T_LAY_ALIGNED;
		const int *thr;
		int nthr;

		t_large_thr(n, &thr, &nthr);
		for (int d = 0; d < 3; d++) {
			struct t_rng r;
			const char *data;

			t_rng_seed(&r, 200 + 7 * s + (size_t)d);
			data = t_gen_data(&r, a, n, (int)(2 * s + (size_t)d));
			t_gen_pair(&r, a, b, n, (int)(2 * s + (size_t)d));
			/* put the extremes far from the start, in the last chunk */
			if (d == 1) {
				a[n - 2] = 5000.0f;
				a[n - 1] = -5000.0f;
			}
			for (int op = 0; op < CCK_OP_COUNT; op++) {
				if (t_ops[op].kind == CCK_KIND_REDUCE)
					fails += t_run_reduce(op, a, NULL, n, lay, thr, nthr, data);
				else if (t_ops[op].kind == CCK_KIND_REDUCE2)
					fails += t_run_reduce(op, a, b, n, lay, thr, nthr, data);
			}
		}
	}
	free(a);
	free(b);
	t_expect_none(fails, __func__);
}

/* ---- tests: matrices ------------------------------------------------------------------------ */

static const size_t t_dims[] = {0, 1, 2, 3, 5, 7, 15, 16, 17, 31, 33, 63, 65, 127, 129};

static void t_fill_uniform(struct t_rng *r, float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float)t_rng_uniform(r, -1, 1);
}

static void test_matvec(void **state)
{
	static const size_t big[][2] = {{1000, 1003}, {3, 100003}, {100003, 3}, {1, (1 << 20) + 3}, {257, 4099}};
	const size_t cap = (size_t)1 << 21;
	float *A = t_alloc(cap * sizeof(float)), *x = t_alloc(cap * sizeof(float));
	size_t fails = 0, idx = 0;
	struct t_rng r;

	(void)state;
	t_rng_seed(&r, 8);
	for (size_t i = 0; i < T_NELEM(t_dims); i++) {
		for (size_t j = 0; j < T_NELEM(t_dims); j++, idx++) {
			size_t rows = t_dims[i], cols = t_dims[j];

			t_fill_uniform(&r, A, rows * cols);
			t_fill_uniform(&r, x, cols);
			fails += t_run_matrix(1, A, x, rows, cols, 1, &t_lays[idx % T_NLAY_PLAIN], t_thr_def, 1);
		}
	}
	for (size_t i = 0; i < T_NELEM(big); i++) {
		size_t rows = big[i][0], cols = big[i][1];

		t_fill_uniform(&r, A, rows * cols);
		t_fill_uniform(&r, x, cols);
		fails += t_run_matrix(1, A, x, rows, cols, 1, &t_lays[i % 4], t_thr_both, 2);
	}
	free(A);
	free(x);
	t_expect_none(fails, __func__);
}

static void test_matmul(void **state)
{
	static const size_t big[][3] = {{300, 257, 190}, {1, 1000, 1}, {257, 1, 300}, {64, 64, 64}, {2, 3000, 5}};
	const size_t cap = 300 * 257 + 16;
	float *A = t_alloc(cap * sizeof(float)), *B = t_alloc(cap * sizeof(float));
	size_t fails = 0, idx = 0;
	struct t_rng r;

	(void)state;
	t_rng_seed(&r, 9);
	for (size_t i = 0; i < T_NELEM(t_dims); i++) {
		for (size_t j = 0; j < T_NELEM(t_dims); j++) {
			for (size_t k = 0; k < T_NELEM(t_dims); k++, idx++) {
				size_t m = t_dims[i], kk = t_dims[j], n = t_dims[k];

				t_fill_uniform(&r, A, m * kk);
				t_fill_uniform(&r, B, kk * n);
				fails += t_run_matrix(0, A, B, m, kk, n, &t_lays[idx % T_NLAY_PLAIN], t_thr_def, 1);
			}
		}
	}
	for (size_t i = 0; i < T_NELEM(big); i++) {
		size_t m = big[i][0], k = big[i][1], n = big[i][2];

		t_fill_uniform(&r, A, m * k);
		t_fill_uniform(&r, B, k * n);
		fails += t_run_matrix(0, A, B, m, k, n, &t_lays[i % 4], t_thr_both, 2);
	}
	free(A);
	free(B);
	t_expect_none(fails, __func__);
}

/* ---- tests: several callers at once ----------------------------------------------------------- */

struct t_conc {
	const float *x, *A;
	size_t n, dim;
	double sum_ref, sum_bound;
	const double *smx_ref, *smx_bnd, *mm_ref, *mm_bnd;
	size_t bad;
};

static void *t_conc_main(void *arg)
{
	struct t_conc *c = arg;
	float *y = malloc(c->n * sizeof(float)), *C = malloc(c->dim * c->dim * sizeof(float));

	if (!y || !C) {
		c->bad++;
		goto out;
	}
	for (int it = 0; it < 8; it++) {
		double s = 0;

		if (cck_reduce_f32(CCK_OP_SUM, c->x, c->n, &s) != 0 || !(fabs(s - c->sum_ref) <= c->sum_bound))
			c->bad++;
		if (cck_unary_f32(CCK_OP_SOFTMAX, c->x, y, c->n, NULL) != 0)
			c->bad++;
		for (size_t i = 0; i < c->n; i++)
			if (!(fabs((double)y[i] - c->smx_ref[i]) <= c->smx_bnd[i]))
				c->bad++;
		if (cck_matmul_f32(c->A, c->A, C, c->dim, c->dim, c->dim) != 0)
			c->bad++;
		for (size_t i = 0; i < c->dim * c->dim; i++)
			if (!(fabs((double)C[i] - c->mm_ref[i]) <= c->mm_bnd[i]))
				c->bad++;
	}
out:
	free(y);
	free(C);
	return NULL;
}

/* Three threads calling large (pool-using) ops at once: results must stay right. */
static void test_concurrent_callers(void **state)
{
	struct t_conc c[3];
	pthread_t th[3];
	const size_t n = 300007, dim = 97;
	float *x = t_alloc(n * sizeof(float)), *A = t_alloc(dim * dim * sizeof(float));
	double *smx = t_alloc(n * sizeof(double)), *sbnd = t_alloc(n * sizeof(double));
	double *mm = t_alloc(dim * dim * sizeof(double)), *mbnd = t_alloc(dim * dim * sizeof(double));
	double sum, sbound;
	size_t bad = 0;
	struct t_rng r;

	(void)state;
	t_rng_seed(&r, 10);
	t_gen_data(&r, x, n, 1);
	t_fill_uniform(&r, A, dim * dim);
	sum = t_ref_reduce(CCK_OP_SUM, x, n, &sbound);
	assert_int_equal(t_ref_vector(CCK_OP_SOFTMAX, x, n, NULL, smx, sbnd), 0);
	t_ref_matmul(A, A, dim, dim, dim, mm, mbnd);
	t_threads(2);
	for (int i = 0; i < 3; i++) {
		c[i] = (struct t_conc){x, A, n, dim, sum, sbound, smx, sbnd, mm, mbnd, 0};
		assert_int_equal(pthread_create(&th[i], NULL, t_conc_main, &c[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		bad += c[i].bad;
	}
	if (bad) {
		struct t_run rr = {CCK_OP_COUNT, NULL, t_host, 2, "", "3 caller threads", "uniform[-30,30]"};

		t_fail(&rr, "%zu wrong results (sum, softmax n=%zu, matmul %zu^3) with concurrent callers", bad, n,
		       dim);
	}
	free(x);
	free(A);
	free(smx);
	free(sbnd);
	free(mm);
	free(mbnd);
	t_expect_none(bad, __func__);
}

/* ---- harness ---------------------------------------------------------------------------------- */

static int t_setup(void **state)
{
	(void)state;
	memset(t_printed, 0, sizeof(t_printed)); /* the print budget is per test */
	clock_gettime(CLOCK_MONOTONIC, &t_t0);
	return 0;
}

static int t_teardown(void **state)
{
	struct timespec t1;

	(void)state;
	if (t_in_call) {
		t_in_call = 0;
		t_fail(&t_cur, "this call did not return (a fault: read or wrote past a guard page?)");
	}
	t_restore();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	print_message("[     TIME ] %.2f s\n",
	              (double)(t1.tv_sec - t_t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t_t0.tv_nsec));
	fflush(stdout);
	return 0;
}

static int t_group_setup(void **state)
{
	const char *host = cck_host_tier();
	size_t ns = t_nspecials(), k = 0;

	(void)state;
	for (int t = 0; t < CCK_TIER_COUNT; t++)
		if (host && strcmp(host, t_tier_names[t]) == 0)
			t_host = t;
	if (t_host < 0) {
		print_message("cck_host_tier() = \"%s\": not a tier name\n", host ? host : "(null)");
		return -1;
	}
	print_message("host tier: %s; testing tiers scalar..%s", host, host);
	for (int t = t_host + 1; t < CCK_TIER_COUNT; t++)
		print_message("%s%s", t == t_host + 1 ? "; skipping (host lacks): " : ", ", t_tier_names[t]);
	print_message("\n");
	for (uint64_t u = 0; u <= 0xffffffffu; u += T_SWEEP_STRIDE)
		t_sweep[k++] = t_float((uint32_t)u);
	for (size_t i = 0; i < ns; i++)
		t_sweep[k++] = t_special(i);
	t_nsweep = k;
	cck_set_threads(2);
	return 0;
}

static int t_group_teardown(void **state)
{
	size_t total = 0;

	(void)state;
	print_message("%zu kernel calls checked on tiers scalar..%s\n", t_ncalls, t_tier_names[t_host]);
	for (int op = 0; op <= CCK_OP_COUNT; op++)
		for (int t = 0; t < CCK_TIER_COUNT; t++)
			total += t_fails[op][t];
	if (total) {
		print_message("\nfailing cases by op and tier:\n");
		for (int op = 0; op <= CCK_OP_COUNT; op++) {
			size_t row = 0;

			for (int t = 0; t < CCK_TIER_COUNT; t++)
				row += t_fails[op][t];
			if (!row)
				continue;
			print_message("  %-18s", op < CCK_OP_COUNT ? t_ops[op].name : "(other)");
			for (int t = 0; t < CCK_TIER_COUNT; t++)
				if (t_fails[op][t])
					print_message(" %s:%zu", t_tier_names[t], t_fails[op][t]);
			print_message("\n");
		}
	}
	for (int s = 0; s < 3; s++)
		t_guard_fini(&t_guards[s]);
	free(t_sweep);
	return 0;
}

#define T_TEST(f) cmocka_unit_test_setup_teardown(f, t_setup, t_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    T_TEST(test_op_table),
	    T_TEST(test_tier_api),
	    T_TEST(test_threads_api),
	    T_TEST(test_empty),
	    T_TEST(test_bad_args),
	    T_TEST(test_unary_lengths),
	    T_TEST(test_vector_lengths),
	    T_TEST(test_binary_lengths),
	    T_TEST(test_reduce_lengths),
	    T_TEST(test_reduce_extremes),
	    T_TEST(test_matvec),
	    T_TEST(test_matmul),
	    T_TEST(test_unary_sweep),
	    T_TEST(test_binary_sweep),
	    T_TEST(test_large_elementwise),
	    T_TEST(test_large_vector),
	    T_TEST(test_large_reduce),
	    T_TEST(test_big_sums),
	    T_TEST(test_variance_large_mean),
	    T_TEST(test_vector_large_mean),
	    T_TEST(test_reduce_magnitudes),
	    T_TEST(test_cumsum_overflow),
	    T_TEST(test_concurrent_callers),
	    T_TEST(test_bad_sizes),
	};
	double t0 = t_now();
	int rc;

	/* For tests/test_tier_env.sh: what CCK_TIER made of the tier at load time. */
	if (argc == 2 && strcmp(argv[1], "--print-tier") == 0) {
		printf("%s\n", cck_tier());
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--print-host-tier") == 0) {
		printf("%s\n", cck_host_tier());
		return 0;
	}
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* what the tests need from the system, not from libcck: without it they cannot run */
	for (int s = 0; s < 3; s++) {
		if (t_guard_init(&t_guards[s], T_GUARD_BYTES) != 0) {
			print_message("SKIP: cannot map guard pages\n");
			return 77;
		}
	}
	t_nsweep = (size_t)(0xffffffffu / T_SWEEP_STRIDE) + 1 + t_nspecials();
	t_sweep = malloc(t_nsweep * sizeof(float));
	if (!t_sweep) {
		print_message("SKIP: cannot allocate the sweep (%zu floats)\n", t_nsweep);
		return 77;
	}
	rc = cmocka_run_group_tests(tests, t_group_setup, t_group_teardown);
	print_message("total time %.1f s\n", t_now() - t0);
	return rc;
}
