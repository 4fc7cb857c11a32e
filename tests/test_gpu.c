/* SPDX-License-Identifier: MIT */
/*
 * test_gpu.c: every libcck f32 op on the OpenCL device (ccg_cl_*) against libcck (cck_*) and the double-precision
 * references of t_ref.c: sizes 0, 1, tails and ~1M, inputs over each op's domain (specials, arbitrary bit patterns,
 * a sweep of the whole float range), in place and misaligned, the same return codes for bad arguments. Without a
 * device every device test skips and says why, and test_no_device checks what must hold then (-ENODEV from every
 * ccg_cl_* call, libcck's exact results through the dispatch): tests/test_gpu_none.sh runs this program so.
 *
 * The bound of each op is t_bound[] below.
 */
#include <errno.h>
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
#include <setjmp.h>
#include <cmocka.h>

#include "cck.h"
#include "ccg.h"
#include "t_ref.h"

#define T_NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define T_MAX_N ((size_t)PTRDIFF_MAX / sizeof(float))
#define T_PRINT_MAX 5       /* failure lines printed per test and op */
#define T_SWEEP_STRIDE 997u /* the sweep: every 997th float bit pattern (a prime: every exponent, many mantissas) */
#define T_BIG_N 10000000u   /* the summation test: the project's accuracy rule is stated at n = 10^7 */
#define T_BIG_SCAN_N (((size_t)3 << 20) + 5)
#define T_CANARY 0x7fa5c3e1u /* a signalling NaN nobody computes, after every output */
#define T_NCANARY 16

/*
 * How the device result of each op is judged (y: the device, c: libcck, r: t_ref.c's double reference):
 *  T_BIT    bit-identical to c (NaN: any NaN): the same IEEE operations, each correctly rounded. rsqrt is 1 / sqrt
 *           in both; sqrt, recip and div round correctly (-cl-fp32-correctly-rounded-divide-sqrt, or double).
 *  T_BIT_Z  the same, except +0 and -0 match (libcck leaves the sign of a zero result unspecified).
 *  T_ULP    |y - r| <= T_ULPS ulp or <= 1e-7 absolute (libcck's own contract, t_elem_ok), and |y - c| within twice
 *           that (t_same_ok); NaN exactly where r is NaN, an infinity where r is that infinity.
 *  T_VEC    whole-vector ops: |y - r| <= 1e-5 |r| + 1e-6 max|r| (t_ref_vector), |y - c| <= twice that.
 *  T_SCAN   cumsum: |y_i - r_i| <= 1e-6 sum_{j<=i} |x_j| + ulp(r_i), |y - c| <= twice that.
 *  T_SUM    reductions: t_ref_reduce / t_ref_reduce2's normalized bound (sum, mean, norm_l1: 1e-6 sum|x|;
 *           sum_of_squares: 1e-6 sum x^2; norm_l2, norm_linf, dist_l2: 1e-6 |r|; dot: 1e-6 sum|a b|;
 *           variance, stddev: 1e-5 |r|; covariance: 1e-5 sqrt(var_a var_b); correlation: 1e-5), |y - c| <= twice.
 *  T_EQ     min max argmin argmax: equal to c (the first extreme; the first NaN if any).
 *  T_MAT    matvec, matmul: |y - r| <= 2 k 2^-24 sum_p |a_ip b_pj| (t_ref_matmul), |y - c| <= twice that.
 */
#define T_ULPS 4
enum t_kind { T_BIT, T_BIT_Z, T_ULP, T_VEC, T_SCAN, T_SUM, T_EQ, T_MAT };

/* clang-format off */
static const enum t_kind t_bound[CCK_OP_COUNT] = {
	[CCK_OP_NEG] = T_BIT,         [CCK_OP_ABS] = T_BIT,          [CCK_OP_SQUARE] = T_BIT,
	[CCK_OP_SQRT] = T_BIT,        [CCK_OP_RSQRT] = T_BIT,        [CCK_OP_RECIP] = T_BIT,
	[CCK_OP_EXP] = T_ULP,         [CCK_OP_LN] = T_ULP,           [CCK_OP_LOG2] = T_ULP,
	[CCK_OP_LOG10] = T_ULP,       [CCK_OP_SIN] = T_ULP,          [CCK_OP_COS] = T_ULP,
	[CCK_OP_TANH] = T_ULP,        [CCK_OP_SIGMOID] = T_ULP,      [CCK_OP_RELU] = T_BIT_Z,
	[CCK_OP_LEAKY_RELU] = T_BIT,  [CCK_OP_ELU] = T_ULP,          [CCK_OP_SELU] = T_ULP,
	[CCK_OP_GELU] = T_ULP,        [CCK_OP_GELU_ERF] = T_ULP,     [CCK_OP_SILU] = T_ULP,
	[CCK_OP_MISH] = T_ULP,        [CCK_OP_HARDSWISH] = T_ULP,    [CCK_OP_SOFTPLUS] = T_ULP,
	[CCK_OP_FLOOR] = T_BIT,       [CCK_OP_CEIL] = T_BIT,         [CCK_OP_ROUND] = T_BIT,
	[CCK_OP_TRUNC] = T_BIT,       [CCK_OP_SCALE] = T_BIT,        [CCK_OP_ADD_SCALAR] = T_BIT,
	[CCK_OP_CLAMP] = T_BIT_Z,
	[CCK_OP_SOFTMAX] = T_VEC,     [CCK_OP_LOG_SOFTMAX] = T_VEC,  [CCK_OP_NORMALIZE] = T_VEC,
	[CCK_OP_ZSCORE] = T_VEC,      [CCK_OP_MINMAX_NORMALIZE] = T_VEC, [CCK_OP_LAYER_NORM] = T_VEC,
	[CCK_OP_RMS_NORM] = T_VEC,    [CCK_OP_CUMSUM] = T_SCAN,
	[CCK_OP_ADD] = T_BIT,         [CCK_OP_SUB] = T_BIT,          [CCK_OP_MUL] = T_BIT,
	[CCK_OP_DIV] = T_BIT,         [CCK_OP_MINIMUM] = T_BIT_Z,    [CCK_OP_MAXIMUM] = T_BIT_Z,
	[CCK_OP_SUM] = T_SUM,         [CCK_OP_MEAN] = T_SUM,         [CCK_OP_MIN] = T_EQ,
	[CCK_OP_MAX] = T_EQ,          [CCK_OP_ARGMIN] = T_EQ,        [CCK_OP_ARGMAX] = T_EQ,
	[CCK_OP_SUM_OF_SQUARES] = T_SUM, [CCK_OP_NORM_L1] = T_SUM,   [CCK_OP_NORM_L2] = T_SUM,
	[CCK_OP_NORM_LINF] = T_SUM,   [CCK_OP_VARIANCE] = T_SUM,     [CCK_OP_STDDEV] = T_SUM,
	[CCK_OP_DOT] = T_SUM,         [CCK_OP_COVARIANCE] = T_SUM,   [CCK_OP_CORRELATION] = T_SUM,
	[CCK_OP_DIST_L2] = T_SUM,     [CCK_OP_MATVEC] = T_MAT,       [CCK_OP_MATMUL] = T_MAT,
};
/* clang-format on */

/* Sizes of the length tests: 0, 1, tails of every vector and work-group width, and ~1M. */
static const size_t t_sizes[] = {0, 1, 3, 17, 255, 256, 1000, 4099, 65537, ((size_t)1 << 20) + 3};

static int t_dev;      /* a device is in use */
static size_t t_fails; /* failing cases of the running test */
static unsigned t_printed[CCK_OP_COUNT + 1];
/* The worst error seen per op: ulp from the reference for T_ULP (all results, tiny ones too), error / bound for
 * the bounded kinds; and the results of T_ULP ops that differ from libcck's bits. Printed at the end. */
static double t_worst[CCK_OP_COUNT];
static size_t t_notbit[CCK_OP_COUNT], t_checked[CCK_OP_COUNT];

/* ---- reporting ------------------------------------------------------------------------------------------------- */

static void t_fail(int op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Count a failing case; print it, at most T_PRINT_MAX times per op and test. */
static void t_fail(int op, const char *fmt, ...)
{
	int slot = op >= 0 && op < CCK_OP_COUNT ? op : CCK_OP_COUNT;
	va_list ap;

	t_fails++;
	if (t_printed[slot]++ >= T_PRINT_MAX)
		return;
	print_message("FAIL %s: ", slot < CCK_OP_COUNT ? cck_op_name(op) : "-");
	va_start(ap, fmt);
	vprint_message(fmt, ap);
	va_end(ap);
	print_message("\n");
}

static void t_setup_test(void)
{
	t_fails = 0;
	memset(t_printed, 0, sizeof(t_printed));
}

static void t_expect_none(const char *what)
{
	if (t_fails)
		print_message("%s: %zu failing cases (see FAIL lines above)\n", what, t_fails);
	assert_int_equal(t_fails, 0);
}

static void t_worse(int op, double v)
{
	if (v > t_worst[op])
		t_worst[op] = v;
}

#define T_NEED_DEVICE()                                                                                                \
	do {                                                                                                           \
		if (!t_dev) {                                                                                          \
			print_message("SKIP: no OpenCL device: %s\n", ccg_why());                                      \
			skip();                                                                                        \
		}                                                                                                      \
		t_setup_test();                                                                                        \
	} while (0)

/* ---- buffers and data ------------------------------------------------------------------------------------------ */

/* n floats at an offset of off floats from a 64-byte boundary, followed by T_NCANARY canaries; free with t_free. */
static float *t_buf(size_t n, size_t off)
{
	void *m = NULL;
	float *p;

	assert_int_equal(posix_memalign(&m, 64, (off + n + T_NCANARY) * sizeof(float)), 0);
	p = (float *)m + off;
	for (size_t i = 0; i < T_NCANARY; i++)
		p[n + i] = t_float(T_CANARY);
	return p;
}

static void t_free(float *p, size_t off)
{
	if (p)
		free(p - off);
}

static int t_canaries_ok(const float *p, size_t n)
{
	for (size_t i = 0; i < T_NCANARY; i++)
		if (t_bits(p[n + i]) != T_CANARY)
			return 0;
	return 1;
}

static void *t_alloc(size_t bytes)
{
	void *p = malloc(bytes ? bytes : 1);

	assert_non_null(p);
	return p;
}


static const char *t_pstr(char *buf, size_t len, int op, const float *p)
{
	int np = cck_op_nparams(op);

	if (np == 1 && p)
		snprintf(buf, len, "(%.9g)", p[0]);
	else if (np == 2 && p)
		snprintf(buf, len, "(%.9g, %.9g)", p[0], p[1]);
	else
		buf[0] = '\0';
	return buf;
}

/* ---- checks ---------------------------------------------------------------------------------------------------- */

static int t_both_nan(float a, float b)
{
	return isnan(a) && isnan(b);
}

/* Element i of an element-wise op: device y against libcck's c and the reference r, per t_bound[op]. */
static int t_elem_check(int op, float y, float c, double r)
{
	struct t_tol tol = t_op_tol(op);

	t_checked[op]++;
	switch (t_bound[op]) {
	case T_BIT:
		return t_bits(y) == t_bits(c) || t_both_nan(y, c);
	case T_BIT_Z:
		return y == c || t_both_nan(y, c);
	default:
		tol.kind = T_TOL_ULP;
		tol.ulps = T_ULPS;
		if (t_bits(y) != t_bits(c) && !t_both_nan(y, c))
			t_notbit[op]++;
		if (!isnan(y) && !isnan((float)r))
			t_worse(op, (double)t_ulp_dist(y, (float)r));
		return t_elem_ok(tol, y, r) && t_same_ok(tol, y, c);
	}
}

/*
 * ccg_cl_unary_f32 (element-wise) on src[0..n) with x at offset xo and y at offset yo (in_place: y == x), against
 * cck_unary_f32 and t_ref_unary.
 */
static void t_run_unary(int op, const float *params, const float *src, size_t n, size_t xo, size_t yo, int in_place,
                        const char *data)
{
	float *x = t_buf(n, xo), *y = in_place ? x : t_buf(n, yo), *c = t_alloc(n * sizeof(float));
	size_t bad = 0, i0 = 0;
	char ps[64];
	int rc, rcc;

	memcpy(x, src, n * sizeof(float));
	if (!in_place)
		for (size_t i = 0; i < n; i++)
			y[i] = 0x1.2468acp+99f;
	rcc = cck_unary_f32(op, src, c, n, params);
	rc = ccg_cl_unary_f32(op, x, y, n, params);
	t_pstr(ps, sizeof(ps), op, params);
	if (rc != rcc) {
		t_fail(op, "%s n=%zu %s: returned %d, libcck %d", ps, n, data, rc, rcc);
		goto out;
	}
	if (!in_place && memcmp(x, src, n * sizeof(float)) != 0)
		t_fail(op, "%s n=%zu %s: modified its input", ps, n, data);
	if (!t_canaries_ok(y, n))
		t_fail(op, "%s n=%zu %s: wrote past the end of y", ps, n, data);
	for (size_t i = 0; i < n; i++)
		if (!t_elem_check(op, y[i], c[i], t_ref_unary(op, src[i], params)) && bad++ == 0)
			i0 = i;
	if (bad)
		t_fail(op,
		       "%s n=%zu %s%s: %zu of %zu elements off; first i=%zu x=%.9g (0x%08x): device %.9g (0x%08x), "
		       "libcck %.9g (0x%08x), reference %.17g",
		       ps, n, data, in_place ? " in place" : "", bad, n, i0, src[i0], t_bits(src[i0]), y[i0],
		       t_bits(y[i0]), c[i0], t_bits(c[i0]), t_ref_unary(op, src[i0], params));
out:
	if (!in_place)
		t_free(y, yo);
	t_free(x, xo);
	free(c);
}

/* ccg_cl_binary_f32 on a, b (alias: 0 none, 1 y == a, 2 y == b, 3 a == b, 4 y == a == b). */
static void t_run_binary(int op, const float *a, const float *b, size_t n, int alias, const char *data)
{
	static const char *const names[] = {"", " y=a", " y=b", " a=b", " y=a=b"};
	float *ab = t_buf(n, 1), *bb = alias >= 3 ? ab : t_buf(n, 2), *y, *c = t_alloc(n * sizeof(float));
	size_t bad = 0, i0 = 0;
	int rc, rcc;

	if (alias >= 3)
		b = a;
	memcpy(ab, a, n * sizeof(float));
	memcpy(bb, b, n * sizeof(float));
	y = alias == 1 || alias == 4 ? ab : alias == 2 ? bb : t_buf(n, 3);
	rcc = cck_binary_f32(op, a, b, c, n);
	rc = ccg_cl_binary_f32(op, ab, bb, y, n);
	if (rc != rcc) {
		t_fail(op, "n=%zu %s%s: returned %d, libcck %d", n, data, names[alias], rc, rcc);
		goto out;
	}
	if (!t_canaries_ok(y, n))
		t_fail(op, "n=%zu %s%s: wrote past the end of y", n, data, names[alias]);
	if ((y != ab && memcmp(ab, a, n * sizeof(float))) || (y != bb && memcmp(bb, b, n * sizeof(float))))
		t_fail(op, "n=%zu %s%s: modified an input", n, data, names[alias]);
	for (size_t i = 0; i < n; i++)
		if (!t_elem_check(op, y[i], c[i], t_ref_binary(op, a[i], b[i])) && bad++ == 0)
			i0 = i;
	if (bad)
		t_fail(op,
		       "n=%zu %s%s: %zu of %zu elements off; first i=%zu a=%.9g (0x%08x) b=%.9g (0x%08x): device "
		       "%.9g (0x%08x), libcck %.9g (0x%08x)",
		       n, data, names[alias], bad, n, i0, a[i0], t_bits(a[i0]), b[i0], t_bits(b[i0]), y[i0],
		       t_bits(y[i0]), c[i0], t_bits(c[i0]));
out:
	if (y != ab && y != bb)
		t_free(y, 3);
	if (bb != ab)
		t_free(bb, 2);
	t_free(ab, 1);
	free(c);
}

/* |y - c| <= 1e-5 |c| + 1e-6 max|c| with NaN and infinities where c has them: for inputs t_ref_vector does not
 * cover (NaN, inf, constant vectors). */
static size_t t_vec_like(const float *y, const float *c, size_t n, size_t *i0)
{
	double m = 0;
	size_t bad = 0;

	for (size_t i = 0; i < n; i++)
		if (isfinite(c[i]) && fabs((double)c[i]) > m)
			m = fabs((double)c[i]);
	for (size_t i = 0; i < n; i++) {
		int ok = isnan(c[i])   ? isnan(y[i])
		         : isinf(c[i]) ? y[i] == c[i]
		                       : fabs((double)y[i] - c[i]) <= 1e-5 * fabs((double)c[i]) + 1e-6 * m;

		if (!ok && bad++ == 0)
			*i0 = i;
	}
	return bad;
}

/*
 * ccg_cl_unary_f32 of a whole-vector op on src[0..n) (x misaligned by 1; in_place: y == x) against cck_unary_f32
 * and t_ref_vector (ref_ok: the data is finite, so the reference applies; else only libcck is compared).
 */
static void t_run_vector(int op, const float *params, const float *src, size_t n, int in_place, int ref_ok,
                         const char *data)
{
	float *x = t_buf(n, 1), *y = in_place ? x : t_buf(n, 2), *c = t_alloc(n * sizeof(float));
	double *r = t_alloc(n * sizeof(double)), *bd = t_alloc(n * sizeof(double));
	size_t bad = 0, i0 = 0;
	int rc, rcc, defined;
	char ps[64];

	memcpy(x, src, n * sizeof(float));
	rcc = cck_unary_f32(op, src, c, n, params);
	rc = ccg_cl_unary_f32(op, x, y, n, params);
	t_pstr(ps, sizeof(ps), op, params);
	if (rc != rcc) {
		t_fail(op, "%s n=%zu %s: returned %d, libcck %d", ps, n, data, rc, rcc);
		goto out;
	}
	if (!t_canaries_ok(y, n))
		t_fail(op, "%s n=%zu %s: wrote past the end of y", ps, n, data);
	if (!in_place && memcmp(x, src, n * sizeof(float)) != 0)
		t_fail(op, "%s n=%zu %s: modified its input", ps, n, data);
	defined = ref_ok && t_ref_vector(op, src, n, params, r, bd) == 0;
	if (!defined) {
		bad = t_vec_like(y, c, n, &i0);
		if (bad)
			t_fail(op,
			       "%s n=%zu %s%s: %zu of %zu elements off libcck's; first i=%zu x=%.9g: device %.9g, "
			       "libcck %.9g",
			       ps, n, data, in_place ? " in place" : "", bad, n, i0, src[i0], y[i0], c[i0]);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		double e = fabs((double)y[i] - r[i]);

		t_checked[op]++;
		if (bd[i] > 0)
			t_worse(op, e / bd[i]);
		if (!(e <= bd[i]) || !(fabs((double)y[i] - c[i]) <= 2 * bd[i])) {
			if (bad++ == 0)
				i0 = i;
		}
	}
	if (bad)
		t_fail(op,
		       "%s n=%zu %s%s: %zu of %zu elements off; first i=%zu x=%.9g: device %.9g, libcck %.9g, "
		       "reference %.17g (bound %.3g)",
		       ps, n, data, in_place ? " in place" : "", bad, n, i0, src[i0], y[i0], c[i0], r[i0], bd[i0]);
out:
	if (!in_place)
		t_free(y, 2);
	t_free(x, 1);
	free(c);
	free(r);
	free(bd);
}

/* ccg_cl_reduce_f32 (b NULL) or ccg_cl_reduce2_f32 on a, b (misaligned by 1 and 2) against libcck and t_ref.c
 * (ref_ok: the data is finite; else only libcck is compared, within 1e-6 relative). */
static void t_run_reduce(int op, const float *a, const float *b, size_t n, int ref_ok, const char *data)
{
	const double sentinel = -0x1.2345p+777;
	int two = cck_op_kind(op) == CCK_KIND_REDUCE2, rc, rcc;
	float *ab = t_buf(n, 1), *bb = two ? t_buf(n, 2) : NULL;
	double v = sentinel, cv = sentinel, ref = 0, bound = -1;

	memcpy(ab, a, n * sizeof(float));
	if (two)
		memcpy(bb, b, n * sizeof(float));
	rcc = two ? cck_reduce2_f32(op, a, b, n, &cv) : cck_reduce_f32(op, a, n, &cv);
	rc = two ? ccg_cl_reduce2_f32(op, ab, bb, n, &v) : ccg_cl_reduce_f32(op, ab, n, &v);
	if (rc != rcc || (rc != 0 && v != sentinel)) {
		t_fail(op, "n=%zu %s: returned %d (ret %.17g), libcck %d", n, data, rc, v, rcc);
		goto out;
	}
	if (rc)
		goto out;
	if (memcmp(ab, a, n * sizeof(float)) || (two && memcmp(bb, b, n * sizeof(float))))
		t_fail(op, "n=%zu %s: modified an input", n, data);
	t_checked[op]++;
	if (t_bound[op] == T_EQ) {
		if (!(v == cv || (isnan(v) && isnan(cv))))
			t_fail(op, "n=%zu %s: device %.17g, libcck %.17g", n, data, v, cv);
		goto out;
	}
	if (ref_ok)
		ref = two ? t_ref_reduce2(op, a, b, n, &bound) : t_ref_reduce(op, a, n, &bound);
	if (!ref_ok || bound < 0) {
		/* undefined on this data (t_ref.c), or not finite data: libcck's value, NaN and infinities included */
		if (!t_close(v, cv, 1e-6 * fabs(cv)))
			t_fail(op, "n=%zu %s: device %.17g, libcck %.17g", n, data, v, cv);
		goto out;
	}
	if (bound > 0)
		t_worse(op, fabs(v - ref) / bound);
	if (!t_close(v, ref, bound) || !t_close(v, cv, 2 * bound))
		t_fail(op, "n=%zu %s: device %.17g, libcck %.17g, reference %.17g: error %.3g, bound %.3g", n, data, v,
		       cv, ref, fabs(v - ref), bound);
out:
	t_free(ab, 1);
	t_free(bb, 2);
}

/* ccg_cl_matmul_f32 (or matvec: n == 1) of A (m x k) and B (k x n) against libcck and t_ref_matmul. */
static void t_run_matrix(int matvec, const float *A, const float *B, size_t m, size_t k, size_t n)
{
	int op = matvec ? CCK_OP_MATVEC : CCK_OP_MATMUL, rc, rcc;
	float *Ab = t_buf(m * k, 1), *Bb = t_buf(k * n, 2), *C = t_buf(m * n, 3), *cc = t_alloc(m * n * sizeof(float));
	double *r = t_alloc(m * n * sizeof(double)), *bd = t_alloc(m * n * sizeof(double));
	size_t bad = 0, i0 = 0;

	memcpy(Ab, A, m * k * sizeof(float));
	memcpy(Bb, B, k * n * sizeof(float));
	for (size_t i = 0; i < m * n; i++)
		C[i] = NAN;
	rcc = matvec ? cck_matvec_f32(A, B, cc, m, k) : cck_matmul_f32(A, B, cc, m, k, n);
	rc = matvec ? ccg_cl_matvec_f32(Ab, Bb, C, m, k) : ccg_cl_matmul_f32(Ab, Bb, C, m, k, n);
	if (rc != rcc) {
		t_fail(op, "m=%zu k=%zu n=%zu: returned %d, libcck %d", m, k, n, rc, rcc);
		goto out;
	}
	if (!t_canaries_ok(C, m * n))
		t_fail(op, "m=%zu k=%zu n=%zu: wrote past the end", m, k, n);
	t_ref_matmul(A, B, m, k, n, r, bd);
	for (size_t i = 0; i < m * n; i++) {
		double e = fabs((double)C[i] - r[i]);

		t_checked[op]++;
		if (bd[i] > 0)
			t_worse(op, e / bd[i]);
		if (!(e <= bd[i]) || !(fabs((double)C[i] - cc[i]) <= 2 * bd[i])) {
			if (bad++ == 0)
				i0 = i;
		}
	}
	if (bad)
		t_fail(op,
		       "m=%zu k=%zu n=%zu: %zu of %zu outputs off; first [%zu][%zu]: device %.9g, libcck %.9g, "
		       "reference %.17g (bound %.3g)",
		       m, k, n, bad, m * n, i0 / n, i0 % n, C[i0], cc[i0], r[i0], bd[i0]);
out:
	t_free(Ab, 1);
	t_free(Bb, 2);
	t_free(C, 3);
	free(cc);
	free(r);
	free(bd);
}

/* ---- tests: no device ------------------------------------------------------------------------------------------ */

/* Every ccg_cl_* call is -ENODEV, and the dispatching ccg_* calls give libcck's results bit for bit. */
static void test_no_device(void **state)
{
	static const size_t sizes[] = {1, 1000, 5000, 70000};
	const size_t nmax = 70000;
	float *a, *b, *y, *c;
	float p2[2] = {0.5f, 2.0f};
	struct ccg_mat *mat = NULL;
	unsigned char q[34 * 4];
	struct t_rng r;
	double v, cv;

	(void)state;
	if (t_dev) {
		print_message("SKIP: a device is in use (%s); tests/test_gpu_none.sh runs this with "
		              "CC_OPENCL_DEVICE=none\n",
		              ccg_why());
		skip();
	}
	t_setup_test();
	a = t_alloc(nmax * sizeof(float));
	b = t_alloc(nmax * sizeof(float));
	y = t_alloc(nmax * sizeof(float));
	c = t_alloc(nmax * sizeof(float));
	print_message("no device: %s\n", ccg_why());
	if (ccg_available() != 0 || !ccg_why() || !*ccg_why())
		t_fail(-1, "ccg_available() = %d, ccg_why() \"%s\"", ccg_available(), ccg_why() ? ccg_why() : "(null)");
	t_rng_seed(&r, 11);
	t_gen_mixed(&r, a, nmax);
	t_gen_mixed(&r, b, nmax);
	for (int op = 0; op < CCK_OP_COUNT; op++) {
		int kind = cck_op_kind(op), rc = 0;

		v = -1;
		if (kind == CCK_KIND_UNARY || kind == CCK_KIND_VECTOR)
			rc = ccg_cl_unary_f32(op, a, y, 100, p2);
		else if (kind == CCK_KIND_BINARY)
			rc = ccg_cl_binary_f32(op, a, b, y, 100);
		else if (kind == CCK_KIND_REDUCE)
			rc = ccg_cl_reduce_f32(op, a, 100, &v);
		else if (kind == CCK_KIND_REDUCE2)
			rc = ccg_cl_reduce2_f32(op, a, b, 100, &v);
		else if (op == CCK_OP_MATVEC)
			rc = ccg_cl_matvec_f32(a, b, y, 10, 10);
		else
			rc = ccg_cl_matmul_f32(a, b, y, 10, 10, 10);
		if (rc != -ENODEV || v != -1)
			t_fail(op, "the device call returned %d (ret %g), expected -ENODEV", rc, v);
	}
	assert_int_equal(cck_quantize(CCK_TYPE_Q8_0, a, q, 128), 0);
	if (ccg_cl_qmatvec(CCK_TYPE_Q8_0, q, 0, a, y, 1, 128) != -ENODEV ||
	    ccg_cl_qmatmul(CCK_TYPE_Q8_0, q, 0, a, y, 1, 128, 1) != -ENODEV ||
	    ccg_mat_new(CCK_TYPE_Q8_0, q, 0, 1, 128, &mat) != -ENODEV || mat)
		t_fail(-1, "a quantized device call did not return -ENODEV");
	/* the dispatch, automatic and forced to the device: libcck's bits */
	for (int bi = 0; bi < 2; bi++) {
		int backend = bi ? CCG_BACKEND_OPENCL : CCG_BACKEND_AUTO;

		assert_int_equal(ccg_set_backend(backend), 0);
		for (size_t s = 0; s < T_NELEM(sizes); s++) {
			size_t n = sizes[s];

			for (int op = 0; op < CCK_OP_COUNT; op++) {
				int kind = cck_op_kind(op), rc = 0, rcc = 0;
				const float *p = t_pset(op, 0);
				size_t rows = n / 100 ? n / 100 : 1, ny = n;

				v = cv = -1;
				if (kind == CCK_KIND_UNARY || kind == CCK_KIND_VECTOR) {
					rc = ccg_unary_f32(op, a, y, n, p);
					rcc = cck_unary_f32(op, a, c, n, p);
				} else if (kind == CCK_KIND_BINARY) {
					rc = ccg_binary_f32(op, a, b, y, n);
					rcc = cck_binary_f32(op, a, b, c, n);
				} else if (kind == CCK_KIND_REDUCE) {
					rc = ccg_reduce_f32(op, a, n, &v);
					rcc = cck_reduce_f32(op, a, n, &cv);
				} else if (kind == CCK_KIND_REDUCE2) {
					rc = ccg_reduce2_f32(op, a, b, n, &v);
					rcc = cck_reduce2_f32(op, a, b, n, &cv);
				} else if (op == CCK_OP_MATVEC) {
					rc = ccg_matvec_f32(a, b, y, rows, 100);
					rcc = cck_matvec_f32(a, b, c, rows, 100);
					ny = rows;
				} else {
					rc = ccg_matmul_f32(a, b, y, rows / 10 + 1, 100, 9);
					rcc = cck_matmul_f32(a, b, c, rows / 10 + 1, 100, 9);
					ny = (rows / 10 + 1) * 9;
				}
				if (kind == CCK_KIND_REDUCE || kind == CCK_KIND_REDUCE2)
					ny = 0;
				if (rc != rcc || memcmp(&v, &cv, sizeof(v)) != 0 ||
				    memcmp(y, c, ny * sizeof(float)) != 0)
					t_fail(op,
					       "backend %s n=%zu: rc %d (%.17g), libcck %d (%.17g), or other outputs",
					       ccg_backend_name(backend), n, rc, v, rcc, cv);
			}
		}
		/* bad arguments: libcck's codes */
		if (ccg_unary_f32(CCK_OP_ADD, a, y, 10, NULL) != -EINVAL ||
		    ccg_binary_f32(CCK_OP_ADD, NULL, b, y, 10) != -EINVAL ||
		    ccg_reduce_f32(CCK_OP_MIN, a, 0, &v) != -EINVAL)
			t_fail(-1, "backend %s: a bad argument was not -EINVAL", ccg_backend_name(backend));
		v = cv = -1;
		if (ccg_qmatvec(CCK_TYPE_Q8_0, q, 0, a, y, 1, 128) != 0 ||
		    cck_qmatvec(CCK_TYPE_Q8_0, q, 0, a, c, 1, 128) != 0 || memcmp(y, c, sizeof(float)) != 0)
			t_fail(-1, "backend %s: ccg_qmatvec is not libcck's", ccg_backend_name(backend));
	}
	ccg_set_backend(CCG_BACKEND_AUTO);
	free(a);
	free(b);
	free(y);
	free(c);
	t_expect_none(__func__);
}

/* ---- tests: the device ----------------------------------------------------------------------------------------- */

/* Bad arguments and empty inputs: the return codes (and results) of libcck, the output untouched on errors. */
static void test_args(void **state)
{
	static const float nan2[2] = {NAN, 0}, bad_clamp[2] = {2, 1}, neg_eps[2] = {-1e-3f, 0}, ok2[2] = {0.5f, 1};
	static const int bad_ops[] = {-1, CCK_OP_COUNT, 1000, INT_MIN};
	float x[8] = {1, -2, 3, 0.5f, -0.25f, 8, 7, -6}, y[8], c[8];
	const size_t huge = T_MAX_N + 1;
	double v, cv;

	(void)state;
	T_NEED_DEVICE();
#define T_SAME(op, call_g, call_c)                                                                                     \
	do {                                                                                                           \
		int rg_ = (call_g), rc_ = (call_c);                                                                    \
		if (rg_ != rc_)                                                                                        \
			t_fail(op, "%s: returned %d, libcck's %s %d", #call_g, rg_, #call_c, rc_);                     \
	} while (0)
	for (int op = 0; op < CCK_OP_COUNT; op++) {
		int kind = cck_op_kind(op);

		/* wrong kind, NULL pointers with n > 0, NaN and missing params, sizes past any array, n == 0 */
		T_SAME(op, ccg_cl_unary_f32(op, x, y, 8, ok2), cck_unary_f32(op, x, c, 8, ok2));
		T_SAME(op, ccg_cl_unary_f32(op, NULL, y, 8, ok2), cck_unary_f32(op, NULL, c, 8, ok2));
		T_SAME(op, ccg_cl_unary_f32(op, x, NULL, 8, ok2), cck_unary_f32(op, x, NULL, 8, ok2));
		T_SAME(op, ccg_cl_unary_f32(op, x, y, 8, NULL), cck_unary_f32(op, x, c, 8, NULL));
		T_SAME(op, ccg_cl_unary_f32(op, x, y, 8, nan2), cck_unary_f32(op, x, c, 8, nan2));
		T_SAME(op, ccg_cl_unary_f32(op, x, y, huge, ok2), cck_unary_f32(op, x, c, huge, ok2));
		T_SAME(op, ccg_cl_unary_f32(op, NULL, NULL, 0, ok2), cck_unary_f32(op, NULL, NULL, 0, ok2));
		T_SAME(op, ccg_cl_binary_f32(op, x, x, y, 8), cck_binary_f32(op, x, x, c, 8));
		T_SAME(op, ccg_cl_binary_f32(op, NULL, x, y, 8), cck_binary_f32(op, NULL, x, c, 8));
		T_SAME(op, ccg_cl_binary_f32(op, x, NULL, y, 8), cck_binary_f32(op, x, NULL, c, 8));
		T_SAME(op, ccg_cl_binary_f32(op, x, x, NULL, 8), cck_binary_f32(op, x, x, NULL, 8));
		T_SAME(op, ccg_cl_binary_f32(op, x, x, y, huge), cck_binary_f32(op, x, x, c, huge));
		T_SAME(op, ccg_cl_binary_f32(op, NULL, NULL, NULL, 0), cck_binary_f32(op, NULL, NULL, NULL, 0));
		v = cv = -7;
		T_SAME(op, ccg_cl_reduce_f32(op, x, 8, NULL), cck_reduce_f32(op, x, 8, NULL));
		T_SAME(op, ccg_cl_reduce_f32(op, NULL, 8, &v), cck_reduce_f32(op, NULL, 8, &cv));
		T_SAME(op, ccg_cl_reduce_f32(op, x, huge, &v), cck_reduce_f32(op, x, huge, &cv));
		T_SAME(op, ccg_cl_reduce_f32(op, NULL, 0, &v), cck_reduce_f32(op, NULL, 0, &cv));
		if (memcmp(&v, &cv, sizeof(v)) != 0 && !(isnan(v) && isnan(cv)))
			t_fail(op, "n == 0: ret %.17g, libcck %.17g", v, cv);
		v = cv = -7;
		T_SAME(op, ccg_cl_reduce2_f32(op, x, x, 8, NULL), cck_reduce2_f32(op, x, x, 8, NULL));
		T_SAME(op, ccg_cl_reduce2_f32(op, NULL, x, 8, &v), cck_reduce2_f32(op, NULL, x, 8, &cv));
		T_SAME(op, ccg_cl_reduce2_f32(op, x, NULL, 8, &v), cck_reduce2_f32(op, x, NULL, 8, &cv));
		T_SAME(op, ccg_cl_reduce2_f32(op, x, x, huge, &v), cck_reduce2_f32(op, x, x, huge, &cv));
		T_SAME(op, ccg_cl_reduce2_f32(op, NULL, NULL, 0, &v), cck_reduce2_f32(op, NULL, NULL, 0, &cv));
		if (memcmp(&v, &cv, sizeof(v)) != 0 && !(isnan(v) && isnan(cv)))
			t_fail(op, "reduce2 n == 0: ret %.17g, libcck %.17g", v, cv);
		if (kind == CCK_KIND_UNARY && cck_op_nparams(op) == 0)
			continue;
		T_SAME(op, ccg_cl_unary_f32(op, x, y, 8, bad_clamp), cck_unary_f32(op, x, c, 8, bad_clamp));
		T_SAME(op, ccg_cl_unary_f32(op, x, y, 8, neg_eps), cck_unary_f32(op, x, c, 8, neg_eps));
	}
	for (size_t i = 0; i < T_NELEM(bad_ops); i++) {
		int op = bad_ops[i];

		T_SAME(-1, ccg_cl_unary_f32(op, x, y, 8, ok2), cck_unary_f32(op, x, c, 8, ok2));
		T_SAME(-1, ccg_cl_binary_f32(op, x, x, y, 8), cck_binary_f32(op, x, x, c, 8));
		T_SAME(-1, ccg_cl_reduce_f32(op, x, 8, &v), cck_reduce_f32(op, x, 8, &cv));
		T_SAME(-1, ccg_cl_reduce2_f32(op, x, x, 8, &v), cck_reduce2_f32(op, x, x, 8, &cv));
	}
	/* a failing reduction leaves *ret alone */
	v = -7;
	if (ccg_cl_reduce_f32(CCK_OP_ARGMAX, x, 0, &v) != -EINVAL || v != -7)
		t_fail(CCK_OP_ARGMAX, "n == 0: not -EINVAL with ret untouched");
	/* matrices: overflowing shapes, NULL with and without elements, empty results, k == 0 */
	T_SAME(CCK_OP_MATVEC, ccg_cl_matvec_f32(x, x, y, SIZE_MAX / 2, 3), cck_matvec_f32(x, x, c, SIZE_MAX / 2, 3));
	T_SAME(CCK_OP_MATVEC, ccg_cl_matvec_f32(NULL, x, y, 2, 2), cck_matvec_f32(NULL, x, c, 2, 2));
	T_SAME(CCK_OP_MATVEC, ccg_cl_matvec_f32(x, NULL, y, 2, 2), cck_matvec_f32(x, NULL, c, 2, 2));
	T_SAME(CCK_OP_MATVEC, ccg_cl_matvec_f32(x, x, NULL, 2, 2), cck_matvec_f32(x, x, NULL, 2, 2));
	T_SAME(CCK_OP_MATVEC, ccg_cl_matvec_f32(NULL, NULL, NULL, 0, 5), cck_matvec_f32(NULL, NULL, NULL, 0, 5));
	T_SAME(CCK_OP_MATVEC, ccg_cl_matvec_f32(NULL, NULL, y, 3, 0), cck_matvec_f32(NULL, NULL, c, 3, 0));
	if (memcmp(y, c, 3 * sizeof(float)) != 0)
		t_fail(CCK_OP_MATVEC, "cols == 0: not zeros");
	T_SAME(CCK_OP_MATMUL, ccg_cl_matmul_f32(x, x, y, SIZE_MAX / 2, 2, 2),
	       cck_matmul_f32(x, x, c, SIZE_MAX / 2, 2, 2));
	T_SAME(CCK_OP_MATMUL, ccg_cl_matmul_f32(NULL, x, y, 2, 2, 2), cck_matmul_f32(NULL, x, c, 2, 2, 2));
	T_SAME(CCK_OP_MATMUL, ccg_cl_matmul_f32(x, NULL, y, 2, 2, 2), cck_matmul_f32(x, NULL, c, 2, 2, 2));
	T_SAME(CCK_OP_MATMUL, ccg_cl_matmul_f32(x, x, NULL, 2, 2, 2), cck_matmul_f32(x, x, NULL, 2, 2, 2));
	T_SAME(CCK_OP_MATMUL, ccg_cl_matmul_f32(NULL, NULL, NULL, 0, 3, 3), cck_matmul_f32(NULL, NULL, NULL, 0, 3, 3));
	T_SAME(CCK_OP_MATMUL, ccg_cl_matmul_f32(NULL, NULL, NULL, 3, 3, 0), cck_matmul_f32(NULL, NULL, NULL, 3, 3, 0));
	for (int i = 0; i < 8; i++)
		y[i] = c[i] = 5;
	T_SAME(CCK_OP_MATMUL, ccg_cl_matmul_f32(NULL, NULL, y, 2, 0, 3), cck_matmul_f32(NULL, NULL, c, 2, 0, 3));
	if (memcmp(y, c, sizeof(y)) != 0)
		t_fail(CCK_OP_MATMUL, "k == 0: not libcck's zeros");
#undef T_SAME
	t_expect_none(__func__);
}

/* Element-wise unary ops: every size, each param set, aligned / misaligned / in place, mixed data. */
static void test_unary(void **state)
{
	const size_t nmax = t_sizes[T_NELEM(t_sizes) - 1];
	float *src;
	struct t_rng r;

	(void)state;
	T_NEED_DEVICE();
	src = t_alloc(nmax * sizeof(float));
	t_rng_seed(&r, 1);
	t_gen_mixed(&r, src, nmax);
	for (int op = 0; op < CCK_OP_COUNT; op++) {
		if (cck_op_kind(op) != CCK_KIND_UNARY)
			continue;
		for (size_t s = 0; s < T_NELEM(t_sizes); s++) {
			size_t n = t_sizes[s];

			for (int ps = 0; ps < t_npsets(op); ps++) {
				const float *p = t_pset(op, ps);

				t_run_unary(op, p, src, n, 0, 0, 0, "mixed, aligned");
				if (n >= 65536)
					continue;
				t_run_unary(op, p, src + 5, n, 1, 3, 0, "mixed, misaligned");
				t_run_unary(op, p, src + 7, n, 2, 0, 1, "mixed");
			}
		}
	}
	free(src);
	t_expect_none(__func__);
}

/* The whole float range: every T_SWEEP_STRIDE-th bit pattern and every special, through every element-wise op. */
static void test_unary_sweep(void **state)
{
	size_t n = (size_t)(0xffffffffu / T_SWEEP_STRIDE) + 1 + t_nspecials();
	float *x;

	(void)state;
	T_NEED_DEVICE();
	x = t_alloc(n * sizeof(float));
	for (size_t i = 0; i < n; i++)
		x[i] = i < t_nspecials() ? t_special(i) : t_float((uint32_t)((i - t_nspecials()) * T_SWEEP_STRIDE));
	for (int op = 0; op < CCK_OP_COUNT; op++) {
		if (cck_op_kind(op) != CCK_KIND_UNARY)
			continue;
		for (int ps = 0; ps < t_npsets(op); ps++)
			t_run_unary(op, t_pset(op, ps), x, n, 0, 0, 0, "sweep");
	}
	free(x);
	t_expect_none(__func__);
}

/* Binary ops: every size and aliasing, mixed data and arbitrary bit patterns. */
static void test_binary(void **state)
{
	const size_t nmax = t_sizes[T_NELEM(t_sizes) - 1];
	float *a, *b, *ra, *rb;
	struct t_rng r;

	(void)state;
	T_NEED_DEVICE();
	a = t_alloc(nmax * sizeof(float));
	b = t_alloc(nmax * sizeof(float));
	ra = t_alloc(nmax * sizeof(float));
	rb = t_alloc(nmax * sizeof(float));
	t_rng_seed(&r, 2);
	t_gen_mixed(&r, a, nmax);
	t_gen_mixed(&r, b, nmax);
	for (size_t i = 0; i < nmax; i++) {
		ra[i] = t_float((uint32_t)t_rng_u64(&r));
		rb[i] = t_float((uint32_t)t_rng_u64(&r));
	}
	for (int op = 0; op < CCK_OP_COUNT; op++) {
		if (cck_op_kind(op) != CCK_KIND_BINARY)
			continue;
		for (size_t s = 0; s < T_NELEM(t_sizes); s++) {
			size_t n = t_sizes[s];

			t_run_binary(op, a, b, n, 0, "mixed");
			t_run_binary(op, ra, rb, n, 0, "bit patterns");
			if (n >= 65536)
				continue;
			for (int alias = 1; alias <= 4; alias++)
				t_run_binary(op, a + 3, b + 1, n, alias, "mixed");
		}
	}
	free(a);
	free(b);
	free(ra);
	free(rb);
	t_expect_none(__func__);
}

/* Whole-vector ops: every size, data set and param set; in place; and inputs with NaN, inf, constants, zeros. */
static void test_vector(void **state)
{
	const size_t nmax = t_sizes[T_NELEM(t_sizes) - 1];
	float *x, *sp;
	struct t_rng r;

	(void)state;
	T_NEED_DEVICE();
	x = t_alloc(nmax * sizeof(float));
	sp = t_alloc(4099 * sizeof(float));
	t_rng_seed(&r, 3);
	for (int op = 0; op < CCK_OP_COUNT; op++) {
		if (cck_op_kind(op) != CCK_KIND_VECTOR)
			continue;
		for (size_t s = 0; s < T_NELEM(t_sizes); s++) {
			size_t n = t_sizes[s];

			for (int d = 0; d < T_NDATA; d++) {
				const char *data = t_gen_data(&r, x, n, d);

				if (n >= 65536 && d % 3)
					continue;
				for (int ps = 0; ps < t_npsets(op); ps++)
					t_run_vector(op, t_pset(op, ps), x, n, d == 1 && n < 65536, 1, data);
			}
		}
		/* what the reference does not cover: libcck's NaN and infinity rules */
		for (int k = 0; k < 7; k++) {
			static const char *const names[] = {"a NaN",     "+inf",      "-inf and +inf", "constant 3",
			                                    "all zeros", "-inf only", "huge values"};
			size_t n = k == 3 || k == 4 ? 1000 : 4099;

			t_gen_data(&r, sp, n, 1);
			if (k == 0)
				sp[1234] = NAN;
			else if (k == 1)
				sp[77] = INFINITY;
			else if (k == 2)
				sp[5] = -INFINITY, sp[4000] = INFINITY;
			for (size_t i = 0; i < n && (k == 3 || k == 4 || k == 5); i++)
				sp[i] = k == 3 ? 3.0f : k == 4 ? 0.0f : -INFINITY;
			/* up to 9e36: norms past FLT_MAX (the two-step scale), float sums of 16 still finite */
			for (size_t i = 0; i < n && k == 6; i++)
				sp[i] *= 3e35f;
			/* huge values: x - max and the running sums overflow where the double reference does not;
			 * libcck's definition (float x - m, float outputs) is what the device must give */
			for (int ps = 0; ps < t_npsets(op); ps++)
				t_run_vector(op, t_pset(op, ps), sp, n, 0, k == 3, names[k]);
		}
		/* a large mean and a small spread: the offset of zscore and layer_norm as two floats, as libcck's */
		for (size_t i = 0; i < 4099; i++)
			sp[i] = (float)(1e4 + t_rng_uniform(&r, -0.05, 0.05));
		for (int ps = 0; ps < t_npsets(op); ps++)
			t_run_vector(op, t_pset(op, ps), sp, 4099, 0, 1, "1e4 + uniform[-0.05,0.05]");
	}
	free(x);
	free(sp);
	t_expect_none(__func__);
}

/* Reductions of one and two vectors: every size and data set; then NaN, inf, ties and signed zeros. */
static void test_reduce(void **state)
{
	const size_t nmax = t_sizes[T_NELEM(t_sizes) - 1];
	float *a, *b;
	struct t_rng r;

	(void)state;
	T_NEED_DEVICE();
	a = t_alloc(nmax * sizeof(float));
	b = t_alloc(nmax * sizeof(float));
	t_rng_seed(&r, 4);
	for (size_t s = 0; s < T_NELEM(t_sizes); s++) {
		size_t n = t_sizes[s];

		for (int d = 0; d < T_NDATA; d++) {
			const char *data = t_gen_data(&r, a, n, d);

			t_gen_data(&r, b, n, d + 1);
			/* b correlated with a, so correlation is not ~0 */
			for (size_t i = 0; i < n; i++)
				b[i] = 0.5f * a[i] + b[i];
			for (int op = 0; op < CCK_OP_COUNT; op++) {
				int kind = cck_op_kind(op);

				if (kind == CCK_KIND_REDUCE || kind == CCK_KIND_REDUCE2)
					t_run_reduce(op, a, b, n, 1, data);
			}
		}
	}
	/* the first extreme and the first NaN, wherever they are: small integers (ties), then specials */
	for (int variant = 0; variant < 9; variant++) {
		static const char *const names[] = {
		    "ties",     "ties, a late NaN", "ties, NaN then extremes", "extremes at the end", "all +inf",
		    "all -inf", "signed zeros",     "mixed specials",          "an early NaN"};
		size_t n = variant == 7 ? 65537 : 4099 + 64 * (size_t)variant;

		for (size_t i = 0; i < n; i++)
			a[i] = (float)((int)t_rng_below(&r, 7) - 3);
		if (variant == 1)
			a[n - 5] = NAN, a[n - 2] = NAN;
		else if (variant == 2)
			a[n / 2 + 77] = NAN, a[n - 1] = -INFINITY, a[n - 3] = INFINITY;
		else if (variant == 3)
			a[n - 7] = -4.0f, a[n - 6] = 4.0f;
		for (size_t i = 0; i < n && (variant == 4 || variant == 5); i++)
			a[i] = variant == 4 ? INFINITY : -INFINITY;
		for (size_t i = 0; i < n && variant == 6; i++)
			a[i] = i % 3 ? 0.0f : -0.0f;
		if (variant == 7)
			t_gen_mixed(&r, a, n);
		if (variant == 8)
			a[3] = NAN;
		memcpy(b, a, n * sizeof(float));
		for (int op = 0; op < CCK_OP_COUNT; op++) {
			int kind = cck_op_kind(op);

			if (kind == CCK_KIND_REDUCE || kind == CCK_KIND_REDUCE2)
				t_run_reduce(op, a, b, n, 0, names[variant]);
		}
	}
	free(a);
	free(b);
	t_expect_none(__func__);
}

/*
 * n = 10^7 (the project's accuracy rule: sums within 1e-6 sum|x|) on data where naive float summation fails the
 * bound (checked here too), and cumsum over 3M on the same data.
 */
static void test_big(void **state)
{
	static const int ops[] = {CCK_OP_SUM,     CCK_OP_MEAN,    CCK_OP_NORM_L1, CCK_OP_SUM_OF_SQUARES,
	                          CCK_OP_NORM_L2, CCK_OP_VARIANCE};
	const size_t n = T_BIG_N;
	float *a, *b;
	struct t_rng r;

	(void)state;
	T_NEED_DEVICE();
	a = t_alloc(n * sizeof(float));
	b = t_alloc(n * sizeof(float));
	t_rng_seed(&r, 5);
	for (int set = 0; set < 2; set++) {
		const char *data = set ? "uniform[0,1)" : "all 0.1f";
		float naive = 0;
		double ref, bound;

		for (size_t i = 0; i < n; i++) {
			a[i] = set ? (float)t_rng_unit(&r) : 0.1f;
			b[i] = (float)t_rng_uniform(&r, 0.5, 1.5);
		}
		for (size_t i = 0; i < n; i++)
			naive += a[i];
		ref = t_ref_reduce(CCK_OP_SUM, a, n, &bound);
		if (!(fabs((double)naive - ref) > bound))
			t_fail(-1, "test sanity: a naive float sum meets the bound on \"%s\"", data);
		for (size_t k = 0; k < T_NELEM(ops); k++)
			t_run_reduce(ops[k], a, NULL, n, 1, data);
		t_run_reduce(CCK_OP_DOT, a, b, n, 1, data);
		t_run_reduce(CCK_OP_CORRELATION, a, b, n, 1, data);
		t_run_vector(CCK_OP_CUMSUM, NULL, a, T_BIG_SCAN_N, set, 1, data);
		t_run_vector(CCK_OP_SOFTMAX, NULL, a, T_BIG_SCAN_N, 0, 1, data);
	}
	free(a);
	free(b);
	t_expect_none(__func__);
}

/*
 * Magnitudes where float accumulation would overflow or underflow though the double result is fine (squares of
 * 1e20 and 1e-25, sums past FLT_MAX), a large mean with a small variance, and inputs whose head misrepresents the
 * whole (a ramp) so the variance must centre again on the mean.
 */
static void test_magnitudes(void **state)
{
	static const int ops[] = {
	    CCK_OP_SUM, CCK_OP_SUM_OF_SQUARES, CCK_OP_NORM_L2,    CCK_OP_VARIANCE,    CCK_OP_STDDEV,
	    CCK_OP_DOT, CCK_OP_DIST_L2,        CCK_OP_COVARIANCE, CCK_OP_CORRELATION, CCK_OP_MEAN};
	static const int vops[] = {CCK_OP_NORMALIZE,        CCK_OP_ZSCORE,  CCK_OP_RMS_NORM,    CCK_OP_LAYER_NORM,
	                           CCK_OP_MINMAX_NORMALIZE, CCK_OP_SOFTMAX, CCK_OP_LOG_SOFTMAX, CCK_OP_CUMSUM};
	const size_t n = 100003;
	float *a, *b;
	struct t_rng r;

	(void)state;
	T_NEED_DEVICE();
	a = t_alloc(n * sizeof(float));
	b = t_alloc(n * sizeof(float));
	t_rng_seed(&r, 6);
	for (int set = 0; set < 5; set++) {
		static const char *const names[] = {"1e20 * uniform[-1,1]", "1e-25 * uniform[-1,1]",
		                                    "3e38 * uniform[0.9,1]", "1e4 + uniform[-1,1]", "a ramp 0..1e5"};

		for (size_t i = 0; i < n; i++) {
			double u = t_rng_uniform(&r, -1, 1);

			a[i] = set == 0   ? (float)(1e20 * u)
			       : set == 1 ? (float)(1e-25 * u)
			       : set == 2 ? (float)(3e38 * t_rng_uniform(&r, 0.9, 1))
			       : set == 3 ? (float)(1e4 + u)
			                  : (float)i;
			b[i] = set == 3 ? (float)(-2e4 + 0.5 * u + t_rng_uniform(&r, -0.5, 0.5))
			                : (float)(0.5 * a[i] - u * a[i]);
		}
		for (size_t k = 0; k < T_NELEM(ops); k++)
			t_run_reduce(ops[k], a, b, n, 1, names[set]);
		/*
		 * Against the reference where libcck meets it: not where float outputs or x - max overflow (3e38), nor
		 * zscore and layer_norm of a large mean (1e4 +- 1): libcck subtracts the mean rounded to float, off by
		 * up to ulp(mean) / 2 / stddev (~2e-4 here), and the device does as libcck does.
		 */
		for (size_t k = 0; k < T_NELEM(vops); k++)
			t_run_vector(vops[k], t_pset(vops[k], 0), a, n, 0,
			             set != 2 &&
			                 !(set == 3 && (vops[k] == CCK_OP_ZSCORE || vops[k] == CCK_OP_LAYER_NORM)),
			             names[set]);
	}
	free(a);
	free(b);
	t_expect_none(__func__);
}

/* matvec and matmul over odd shapes (both matvec kernels, partial tiles, tiles of tiles), uniform[-1,1]. */
static void test_matrix(void **state)
{
	static const size_t mv[][2] = {{1, 1},    {3, 5},     {17, 31},  {17, 32},    {5, 33},
	                               {64, 300}, {1000, 17}, {7, 4099}, {300, 1000}, {2, 65537}};
	static const size_t mm[][3] = {{1, 1, 1},     {3, 5, 7},     {17, 33, 9},  {64, 300, 70},   {65, 17, 64},
	                               {1, 300, 129}, {128, 1, 128}, {200, 64, 3}, {129, 130, 131}, {256, 512, 256}};
	const size_t amax = 300 * 1000 > 2 * 65537 ? 300 * 1000 : 2 * 65537, bmax = 512 * 256;
	float *A, *B;
	struct t_rng r;

	(void)state;
	T_NEED_DEVICE();
	A = t_alloc(amax * sizeof(float));
	B = t_alloc(bmax * sizeof(float));
	t_rng_seed(&r, 7);
	for (size_t i = 0; i < amax; i++)
		A[i] = (float)t_rng_uniform(&r, -1, 1);
	for (size_t i = 0; i < bmax; i++)
		B[i] = (float)t_rng_uniform(&r, -1, 1);
	for (size_t i = 0; i < T_NELEM(mv); i++)
		t_run_matrix(1, A, B, mv[i][0], mv[i][1], 1);
	for (size_t i = 0; i < T_NELEM(mm); i++)
		t_run_matrix(0, A, B, mm[i][0], mm[i][1], mm[i][2]);
	t_expect_none(__func__);
	free(A);
	free(B);
}

/* Several threads calling the device at once get what they get alone. */
struct t_thread {
	const float *x;
	float *y, *want;
	size_t n;
	int op, rc, same;
};

static void *t_thread_main(void *arg)
{
	struct t_thread *t = arg;

	t->same = 1;
	for (int rep = 0; rep < 20 && t->same; rep++) {
		t->rc = ccg_cl_unary_f32(t->op, t->x, t->y, t->n, NULL);
		t->same = t->rc == 0 && memcmp(t->y, t->want, t->n * sizeof(float)) == 0;
	}
	return NULL;
}

static void test_threads(void **state)
{
	static const int ops[] = {CCK_OP_EXP, CCK_OP_SOFTMAX, CCK_OP_CUMSUM, CCK_OP_GELU};
	const size_t n = 30011;
	struct t_thread t[T_NELEM(ops)];
	pthread_t th[T_NELEM(ops)];
	struct t_rng r;
	float *x;

	(void)state;
	T_NEED_DEVICE();
	x = t_alloc(n * sizeof(float));
	t_rng_seed(&r, 8);
	t_gen_data(&r, x, n, 1);
	for (size_t i = 0; i < T_NELEM(ops); i++) {
		t[i] = (struct t_thread){x, t_alloc(n * sizeof(float)), t_alloc(n * sizeof(float)), n, ops[i], 0, 0};
		assert_int_equal(ccg_cl_unary_f32(ops[i], x, t[i].want, n, NULL), 0);
	}
	for (size_t i = 0; i < T_NELEM(ops); i++)
		assert_int_equal(pthread_create(&th[i], NULL, t_thread_main, &t[i]), 0);
	for (size_t i = 0; i < T_NELEM(ops); i++) {
		pthread_join(th[i], NULL);
		if (!t[i].same)
			t_fail(ops[i], "from 4 threads at once: rc %d, or not the result of a lone call", t[i].rc);
		free(t[i].y);
		free(t[i].want);
	}
	free(x);
	t_expect_none(__func__);
}

/*
 * The buffer pool of a device with its own memory (tests/test_gpu_own.sh runs this program with CCG_OWN_MEMORY=1,
 * so that PoCL does): the second of two identical calls makes no buffer, takes its buffers from the pool, and
 * gives libcck's result. A device without a pool says so (-ENOTSUP) and the test skips.
 */
static void test_pool(void **state)
{
	uint64_t made0, reused0, made1, reused1, made2, reused2;
	const size_t n = 10000;
	float *a, *b, *y, *want;
	int rc;

	(void)state;
	T_NEED_DEVICE();
	rc = ccg_pool_counts(&made0, &reused0);
	if (rc == -ENOTSUP) {
		print_message("SKIP: no buffer pool on this device (host memory): tests/test_gpu_own.sh runs this "
		              "with CCG_OWN_MEMORY=1\n");
		skip();
	}
	assert_int_equal(rc, 0);
	a = malloc(n * sizeof(float));
	b = malloc(n * sizeof(float));
	y = malloc(n * sizeof(float));
	want = malloc(n * sizeof(float));
	assert_true(a && b && y && want);
	for (size_t i = 0; i < n; i++) {
		a[i] = (float)i * 0.5f;
		b[i] = 3.0f - (float)i;
	}
	assert_int_equal(cck_binary_f32(CCK_OP_ADD, a, b, want, n), 0);
	assert_int_equal(ccg_cl_binary_f32(CCK_OP_ADD, a, b, y, n), 0);
	assert_int_equal(ccg_pool_counts(&made1, &reused1), 0);
	assert_true(made1 + reused1 >= made0 + reused0 + 3); /* a, b and y: three buffers at least */
	assert_memory_equal(y, want, n * sizeof(float));
	memset(y, 0, n * sizeof(float));
	for (size_t i = 0; i < n; i++)
		b[i] = (float)i; /* new data in the same host memory: what the pool's buffer held must not show */
	assert_int_equal(cck_binary_f32(CCK_OP_ADD, a, b, want, n), 0);
	assert_int_equal(ccg_cl_binary_f32(CCK_OP_ADD, a, b, y, n), 0);
	assert_int_equal(ccg_pool_counts(&made2, &reused2), 0);
	print_message("pool: first call %llu made, %llu reused; second %llu made, %llu reused\n",
	              (unsigned long long)(made1 - made0), (unsigned long long)(reused1 - reused0),
	              (unsigned long long)(made2 - made1), (unsigned long long)(reused2 - reused1));
	assert_true(made2 == made1);
	assert_true(reused2 >= reused1 + 3);
	assert_memory_equal(y, want, n * sizeof(float));
	free(a), free(b), free(y), free(want);
}

/* ---- main ------------------------------------------------------------------------------------------------------ */

static int t_group_setup(void **state)
{
	struct ccg_device_info info;

	(void)state;
	t_dev = ccg_init() == 0;
	print_message("OpenCL: %s\n", ccg_why());
	for (int i = 0; t_dev && i < ccg_device_count(); i++)
		if (ccg_device_info(i, &info) == 0 && info.selected)
			print_message("device %d: %s, %s, fp64 %s, work-group %zu, %s memory\n", i, info.name,
			              info.version, info.fp64 ? "yes" : "no", info.max_work_group,
			              info.host_unified ? "host" : "own");
	return 0;
}

/* The worst errors measured, for the record (the bounds are in t_bound[]). */
static int t_group_teardown(void **state)
{
	(void)state;
	if (!t_dev)
		return 0;
	print_message("worst error per op (ulp from the double reference, or error / bound), results not bit-identical "
	              "to libcck's:\n");
	for (int op = 0; op < CCK_OP_COUNT; op++) {
		if (!t_checked[op])
			continue;
		if (t_bound[op] == T_ULP)
			print_message("  %-16s %3.0f ulp, %zu of %zu results differ from libcck's bits\n",
			              cck_op_name(op), t_worst[op], t_notbit[op], t_checked[op]);
		else if (t_bound[op] >= T_VEC && t_bound[op] != T_EQ)
			print_message("  %-16s %.3g of the bound\n", cck_op_name(op), t_worst[op]);
	}
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_device),   cmocka_unit_test(test_args),    cmocka_unit_test(test_unary),
	    cmocka_unit_test(test_unary_sweep), cmocka_unit_test(test_binary),  cmocka_unit_test(test_vector),
	    cmocka_unit_test(test_reduce),      cmocka_unit_test(test_big),     cmocka_unit_test(test_magnitudes),
	    cmocka_unit_test(test_matrix),      cmocka_unit_test(test_threads), cmocka_unit_test(test_pool),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, t_group_setup, t_group_teardown);
}
