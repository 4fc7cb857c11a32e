/* SPDX-License-Identifier: MIT */
/* t_ref.c: the double-precision references, accuracy contracts, PRNG and guarded buffers of the libcck tests. */
#include "t_ref.h"

#include <float.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cck.h"

/* SELU's constants (Klambauer et al.), as the spec states them. */
#define T_SELU_ALPHA 1.6732632423543772
#define T_SELU_SCALE 1.0507009873554805

void t_rng_seed(struct t_rng *r, uint64_t seed)
{
	r->s = seed ? seed : 0x9e3779b97f4a7c15ull;
}

uint64_t t_rng_u64(struct t_rng *r)
{
	uint64_t x = r->s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->s = x;
	return x * 0x2545f4914f6cdd1dull;
}

double t_rng_unit(struct t_rng *r)
{
	return (double)(t_rng_u64(r) >> 11) * 0x1p-53;
}

double t_rng_uniform(struct t_rng *r, double lo, double hi)
{
	return lo + (hi - lo) * t_rng_unit(r);
}

double t_rng_normal(struct t_rng *r)
{
	double s = 0;

	for (int i = 0; i < 12; i++)
		s += t_rng_unit(r);
	return s - 6.0;
}

size_t t_rng_below(struct t_rng *r, size_t n)
{
	return (size_t)(t_rng_u64(r) % n);
}

uint32_t t_bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

float t_float(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

/* Floats in order as integers: -0 and +0 both map to 0. */
static int64_t t_ord(float f)
{
	uint32_t u = t_bits(f);

	return (u & 0x80000000u) ? -(int64_t)(u & 0x7fffffffu) : (int64_t)u;
}

int64_t t_ulp_dist(float a, float b)
{
	int64_t d = t_ord(a) - t_ord(b);

	return d < 0 ? -d : d;
}

double t_ulp_at(float f)
{
	f = fabsf(f);
	if (isinf(f))
		return INFINITY;
	if (f == FLT_MAX)
		return (double)f - (double)nextafterf(f, 0.0f);
	return (double)nextafterf(f, INFINITY) - (double)f;
}

/* clang-format off */
static const float t_special_floats[] = {
	0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN,
	FLT_MIN, -FLT_MIN, 1e-40f, -1e-40f, 0x1p-149f, -0x1p-149f, 0x1.fffffcp-127f, -0x1.fffffcp-127f,
	FLT_MAX, -FLT_MAX, 0x1.fffffcp+127f,
	/* exp: overflow near 88.7228, result denormal below -87.34, zero below -103.97 */
	88.72f, 88.7228f, 88.72284f, 88.7229f, 88.73f, 89.0f, 100.0f, -87.3f, -87.33654f, -87.34f, -88.0f,
	-100.0f, -103.0f, -103.97f, -103.98f, -104.0f, -150.0f,
	/* sin/cos: arguments whose reduction needs care */
	1e4f, -1e4f, 1e6f, -1e6f, 1e20f, -1e20f, 3e38f, -3e38f, 3.1415927f, -3.1415927f, 1.5707964f,
	-1.5707964f, 0.7853982f, 6.2831855f, 102.10176f, 1e5f, 12345.678f, 8.3886080e6f, 1.6777215e7f,
	/* rounding: halves, 0.5 - ulp (floor(x + 0.5) gets it wrong), beyond int32 and 2^23 */
	0.5f, -0.5f, 1.5f, -1.5f, 2.5f, -2.5f, 0.49999997f, -0.49999997f, 8388607.5f, -8388607.5f,
	8388608.0f, -8388609.0f, 16777216.0f, 2147483648.0f, -2147483648.0f, -2147483904.0f, 4294967296.0f,
	1e10f, -1e10f, 1.0f, -1.0f, 0.1f, -0.1f, 1e-3f, -1e-3f, 1e-7f, -1e-7f, 1e-30f, -1e-30f,
	/* activations: hardswish knees, tanh/sigmoid saturation, gelu tails */
	3.0f, -3.0f, 6.0f, -6.0f, 9.0f, -9.0f, 15.0f, -15.0f, 20.0f, -20.0f, 40.0f, -40.0f, 0.6931472f,
	-0.6931472f, 2.0f, 0.25f, 4.0f, 1e3f, -1e3f,
};
/* clang-format on */
static const uint32_t t_special_nan_bits[] = {
    0x7fc00001u, /* quiet NaN with a payload */
    0xffc12345u, /* negative quiet NaN with a payload */
    0x7f800001u, /* signalling NaN */
    0xff8fffffu, /* negative signalling NaN */
    0x7fffffffu,
};
#define T_NELEM(a) (sizeof(a) / sizeof((a)[0]))

size_t t_nspecials(void)
{
	return T_NELEM(t_special_floats) + T_NELEM(t_special_nan_bits);
}

float t_special(size_t i)
{
	if (i < T_NELEM(t_special_floats))
		return t_special_floats[i];
	return t_float(t_special_nan_bits[(i - T_NELEM(t_special_floats)) % T_NELEM(t_special_nan_bits)]);
}

/*
 * The accuracy contract of the element-wise ops:
 *  exact (bit-identical to the correctly rounded double result): neg abs square sqrt recip relu
 *    leaky_relu floor ceil round trunc scale add_scalar clamp add sub mul div minimum maximum
 *    (for relu, clamp, minimum and maximum, +0 and -0 count as equal);
 *  rsqrt: <= 2 ulp;
 *  the transcendental ones: <= 4 ulp, or absolute error <= 1e-7.
 */
struct t_tol t_op_tol(int op)
{
	struct t_tol t = {T_TOL_ULP, 4};

	switch (op) {
	case CCK_OP_NEG:
	case CCK_OP_ABS:
	case CCK_OP_SQUARE:
	case CCK_OP_SQRT:
	case CCK_OP_RECIP:
	case CCK_OP_LEAKY_RELU:
	case CCK_OP_FLOOR:
	case CCK_OP_CEIL:
	case CCK_OP_ROUND:
	case CCK_OP_TRUNC:
	case CCK_OP_SCALE:
	case CCK_OP_ADD_SCALAR:
	case CCK_OP_ADD:
	case CCK_OP_SUB:
	case CCK_OP_MUL:
	case CCK_OP_DIV:
		t.kind = T_TOL_EXACT;
		t.ulps = 0;
		break;
	case CCK_OP_RELU:
	case CCK_OP_CLAMP:
	case CCK_OP_MINIMUM:
	case CCK_OP_MAXIMUM:
		t.kind = T_TOL_EXACT_Z;
		t.ulps = 0;
		break;
	case CCK_OP_RSQRT:
		t.ulps = 2;
		break;
	default:
		break;
	}
	return t;
}

int t_elem_ok(struct t_tol tol, float got, double ref)
{
	float rf = (float)ref;

	/* NaN in the reference needs NaN; NaN anywhere else is wrong. */
	if (isnan(rf))
		return isnan(got);
	if (isnan(got))
		return 0;
	switch (tol.kind) {
	case T_TOL_EXACT:
		return t_bits(got) == t_bits(rf);
	case T_TOL_EXACT_Z:
		return got == rf;
	case T_TOL_ULP:
	default:
		/* an infinite reference needs the same infinity */
		if (isinf(rf))
			return got == rf;
		if (t_ulp_dist(got, rf) <= tol.ulps)
			return 1;
		return fabs((double)got - ref) <= T_ABS_TOL;
	}
}

int t_same_ok(struct t_tol tol, float got, float s)
{
	if (isnan(got) || isnan(s))
		return isnan(got) && isnan(s);
	switch (tol.kind) {
	case T_TOL_EXACT:
		return t_bits(got) == t_bits(s);
	case T_TOL_EXACT_Z:
		return got == s;
	case T_TOL_ULP:
	default:
		if (got == s)
			return 1;
		if (t_ulp_dist(got, s) <= 2 * (int64_t)tol.ulps)
			return 1;
		return isfinite(got) && isfinite(s) && fabs((double)got - (double)s) <= 2 * T_ABS_TOL;
	}
}

static double t_sigmoid(double x)
{
	if (x >= 0)
		return 1.0 / (1.0 + exp(-x));
	double e = exp(x);
	return e / (1.0 + e);
}

/* log(1 + exp(x)) without overflow */
static double t_softplus(double x)
{
	if (x > 0)
		return x + log1p(exp(-x));
	return log1p(exp(x));
}

/*
 * Infinite inputs of the x * f(x) activations give their limits (0 at -inf, x at +inf)
 * rather than -inf * 0.
 */
double t_ref_unary(int op, double x, const float *p)
{
	switch (op) {
	case CCK_OP_NEG:
		return -x;
	case CCK_OP_ABS:
		return fabs(x);
	case CCK_OP_SQUARE:
		return x * x;
	case CCK_OP_SQRT:
		return sqrt(x);
	case CCK_OP_RSQRT:
		return 1.0 / sqrt(x);
	case CCK_OP_RECIP:
		return 1.0 / x;
	case CCK_OP_EXP:
		return exp(x);
	case CCK_OP_LN:
		return log(x);
	case CCK_OP_LOG2:
		return log2(x);
	case CCK_OP_LOG10:
		return log10(x);
	case CCK_OP_SIN:
		return sin(x);
	case CCK_OP_COS:
		return cos(x);
	case CCK_OP_TANH:
		return tanh(x);
	case CCK_OP_SIGMOID:
		return t_sigmoid(x);
	case CCK_OP_RELU:
		if (isnan(x))
			return x;
		return x > 0 ? x : 0.0;
	case CCK_OP_LEAKY_RELU:
		return x > 0 ? x : (double)p[0] * x;
	case CCK_OP_ELU:
		return x > 0 ? x : (double)p[0] * expm1(x);
	case CCK_OP_SELU:
		return T_SELU_SCALE * (x > 0 ? x : T_SELU_ALPHA * expm1(x));
	case CCK_OP_GELU: {
		/* 0.5x(1 + tanh(z)) == x / (1 + exp(-2z)), which does not cancel for x < 0 */
		if (isinf(x))
			return x > 0 ? x : -0.0;
		double z = sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x);
		return x / (1.0 + exp(-2.0 * z));
	}
	case CCK_OP_GELU_ERF:
		if (isinf(x))
			return x > 0 ? x : -0.0;
		if (x >= 0)
			return 0.5 * x * (1.0 + erf(x * M_SQRT1_2));
		return 0.5 * x * erfc(-x * M_SQRT1_2);
	case CCK_OP_SILU:
		if (isinf(x))
			return x > 0 ? x : -0.0;
		return x * t_sigmoid(x);
	case CCK_OP_MISH:
		if (isinf(x))
			return x > 0 ? x : -0.0;
		return x * tanh(t_softplus(x));
	case CCK_OP_HARDSWISH:
		if (x <= -3.0)
			return -0.0;
		if (x >= 3.0)
			return x;
		return x * (x + 3.0) / 6.0;
	case CCK_OP_SOFTPLUS:
		return t_softplus(x);
	case CCK_OP_FLOOR:
		return floor(x);
	case CCK_OP_CEIL:
		return ceil(x);
	case CCK_OP_ROUND:
		return round(x);
	case CCK_OP_TRUNC:
		return trunc(x);
	case CCK_OP_SCALE:
		return (double)p[0] * x;
	case CCK_OP_ADD_SCALAR:
		return x + (double)p[0];
	case CCK_OP_CLAMP:
		/* NaN stays NaN, as relu(NaN) and np.clip do */
		if (isnan(x))
			return x;
		if (x < p[0])
			return p[0];
		if (x > p[1])
			return p[1];
		return x;
	default:
		return NAN;
	}
}

/* NumPy's np.minimum / np.maximum: a NaN in either input gives NaN. */
double t_ref_binary(int op, double a, double b)
{
	switch (op) {
	case CCK_OP_ADD:
		return a + b;
	case CCK_OP_SUB:
		return a - b;
	case CCK_OP_MUL:
		return a * b;
	case CCK_OP_DIV:
		return a / b;
	case CCK_OP_MINIMUM:
		if (isnan(a) || isnan(b))
			return NAN;
		return a < b ? a : b;
	case CCK_OP_MAXIMUM:
		if (isnan(a) || isnan(b))
			return NAN;
		return a > b ? a : b;
	default:
		return NAN;
	}
}

static double t_mean(const float *x, size_t n)
{
	double s = 0;

	for (size_t i = 0; i < n; i++)
		s += x[i];
	return s / (double)n;
}

/* population variance, two-pass */
static double t_var(const float *x, size_t n, double mean)
{
	double s = 0;

	for (size_t i = 0; i < n; i++) {
		double d = (double)x[i] - mean;
		s += d * d;
	}
	return s / (double)n;
}

/*
 * Whole-vector ops: |y - ref| <= 1e-5 * |ref| + 1e-6 * max|ref| elementwise;
 * cumsum: |y_i - ref_i| <= 1e-6 * sum_{j<=i} |x_j| + ulp(ref_i).
 */
int t_ref_vector(int op, const float *x, size_t n, const float *p, double *y, double *bound)
{
	double m, s, mean, var, lo, hi;
	size_t i;

	if (n == 0)
		return 0;
	switch (op) {
	case CCK_OP_SOFTMAX:
	case CCK_OP_LOG_SOFTMAX:
		m = x[0];
		for (i = 1; i < n; i++)
			m = x[i] > m ? x[i] : m;
		s = 0;
		for (i = 0; i < n; i++)
			s += exp((double)x[i] - m);
		for (i = 0; i < n; i++)
			y[i] = op == CCK_OP_SOFTMAX ? exp((double)x[i] - m) / s : (double)x[i] - m - log(s);
		break;
	case CCK_OP_NORMALIZE:
		s = 0;
		for (i = 0; i < n; i++)
			s += (double)x[i] * x[i];
		if (s == 0)
			return -1;
		s = sqrt(s);
		for (i = 0; i < n; i++)
			y[i] = x[i] / s;
		break;
	case CCK_OP_ZSCORE:
		mean = t_mean(x, n);
		var = t_var(x, n, mean);
		if (var == 0)
			return -1;
		for (i = 0; i < n; i++)
			y[i] = ((double)x[i] - mean) / sqrt(var);
		break;
	case CCK_OP_MINMAX_NORMALIZE:
		lo = hi = x[0];
		for (i = 1; i < n; i++) {
			lo = x[i] < lo ? x[i] : lo;
			hi = x[i] > hi ? x[i] : hi;
		}
		if (hi == lo)
			return -1;
		for (i = 0; i < n; i++)
			y[i] = ((double)x[i] - lo) / (hi - lo);
		break;
	case CCK_OP_LAYER_NORM:
		mean = t_mean(x, n);
		var = t_var(x, n, mean);
		if (var + (double)p[0] == 0)
			return -1;
		for (i = 0; i < n; i++)
			y[i] = ((double)x[i] - mean) / sqrt(var + (double)p[0]);
		break;
	case CCK_OP_RMS_NORM:
		s = 0;
		for (i = 0; i < n; i++)
			s += (double)x[i] * x[i];
		if (s / (double)n + (double)p[0] == 0)
			return -1;
		s = sqrt(s / (double)n + (double)p[0]);
		for (i = 0; i < n; i++)
			y[i] = x[i] / s;
		break;
	case CCK_OP_CUMSUM:
		s = 0;
		m = 0;
		for (i = 0; i < n; i++) {
			s += x[i];
			m += fabs((double)x[i]);
			y[i] = s;
			bound[i] = 1e-6 * m + t_ulp_at((float)s);
		}
		return 0;
	default:
		return -1;
	}
	m = 0;
	for (i = 0; i < n; i++)
		m = fabs(y[i]) > m ? fabs(y[i]) : m;
	for (i = 0; i < n; i++)
		bound[i] = 1e-5 * fabs(y[i]) + 1e-6 * m;
	return 0;
}

/* First index of the minimum (max != 0: maximum); the first NaN wins. */
static size_t t_argext(const float *x, size_t n, int max)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (isnan(x[i]))
			return i;
		if (max ? x[i] > x[k] : x[i] < x[k])
			k = i;
	}
	return k;
}

/*
 * Reductions: sum, mean, norm_l1: |err| <= 1e-6 * sum|x| (mean: / n); sum_of_squares:
 * 1e-6 * sum x^2; norm_l2, norm_linf: 1e-6 * |ref|; variance, stddev: 1e-5 * |ref| against a
 * two-pass double reference; min, max, argmin, argmax: exact.
 */
double t_ref_reduce(int op, const float *x, size_t n, double *bound)
{
	double s = 0, a = 0, r;
	size_t i, k;

	*bound = 0;
	switch (op) {
	case CCK_OP_SUM:
	case CCK_OP_MEAN:
	case CCK_OP_NORM_L1:
		for (i = 0; i < n; i++) {
			s += x[i];
			a += fabs((double)x[i]);
		}
		if (op == CCK_OP_NORM_L1)
			s = a;
		*bound = 1e-6 * a;
		if (op == CCK_OP_MEAN) {
			*bound /= (double)n;
			return n ? s / (double)n : NAN;
		}
		return s;
	case CCK_OP_SUM_OF_SQUARES:
	case CCK_OP_NORM_L2:
		for (i = 0; i < n; i++)
			s += (double)x[i] * x[i];
		r = op == CCK_OP_NORM_L2 ? sqrt(s) : s;
		*bound = 1e-6 * r;
		return r;
	case CCK_OP_NORM_LINF:
		for (i = 0; i < n; i++)
			s = fabs((double)x[i]) > s ? fabs((double)x[i]) : s;
		*bound = 1e-6 * s;
		return s;
	case CCK_OP_MIN:
	case CCK_OP_MAX:
	case CCK_OP_ARGMIN:
	case CCK_OP_ARGMAX:
		if (n == 0)
			return NAN;
		k = t_argext(x, n, op == CCK_OP_MAX || op == CCK_OP_ARGMAX);
		if (op == CCK_OP_ARGMIN || op == CCK_OP_ARGMAX)
			return (double)k;
		return x[k];
	case CCK_OP_VARIANCE:
	case CCK_OP_STDDEV:
		if (n == 0)
			return NAN;
		r = t_var(x, n, t_mean(x, n));
		if (op == CCK_OP_STDDEV)
			r = sqrt(r);
		*bound = 1e-5 * r;
		return r;
	default:
		*bound = -1;
		return NAN;
	}
}

/*
 * dot: |err| <= 1e-6 * sum|a*b|; dist_l2: 1e-6 * |ref|; covariance: 1e-5 * sqrt(var_a var_b)
 * (relative to the largest covariance the data allow); correlation: 1e-5 absolute. n == 0:
 * dot and dist_l2 give 0, covariance and correlation NaN (as mean and variance do).
 */
double t_ref_reduce2(int op, const float *a, const float *b, size_t n, double *bound)
{
	double s = 0, t = 0, ma, mb, va, vb;
	size_t i;

	*bound = 0;
	switch (op) {
	case CCK_OP_DOT:
		for (i = 0; i < n; i++) {
			s += (double)a[i] * b[i];
			t += fabs((double)a[i] * b[i]);
		}
		*bound = 1e-6 * t;
		return s;
	case CCK_OP_DIST_L2:
		for (i = 0; i < n; i++) {
			double d = (double)a[i] - b[i];
			s += d * d;
		}
		s = sqrt(s);
		*bound = 1e-6 * s;
		return s;
	case CCK_OP_COVARIANCE:
	case CCK_OP_CORRELATION:
		if (n == 0)
			return NAN;
		ma = t_mean(a, n);
		mb = t_mean(b, n);
		va = t_var(a, n, ma);
		vb = t_var(b, n, mb);
		for (i = 0; i < n; i++)
			s += ((double)a[i] - ma) * ((double)b[i] - mb);
		s /= (double)n;
		if (op == CCK_OP_COVARIANCE) {
			*bound = 1e-5 * sqrt(va * vb);
			return s;
		}
		if (va == 0 || vb == 0) {
			*bound = -1;
			return NAN;
		}
		*bound = 1e-5;
		return s / sqrt(va * vb);
	default:
		*bound = -1;
		return NAN;
	}
}

void t_ref_matmul(const float *A, const float *B, size_t m, size_t k, size_t n, double *C, double *bound)
{
	for (size_t i = 0; i < m; i++) {
		for (size_t j = 0; j < n; j++) {
			double s = 0, t = 0;
			for (size_t p = 0; p < k; p++) {
				double v = (double)A[i * k + p] * B[p * n + j];
				s += v;
				t += fabs(v);
			}
			C[i * n + j] = s;
			bound[i * n + j] = 2.0 * (double)k * 0x1p-24 * t;
		}
	}
}

int t_guard_init(struct t_guard *g, size_t bytes)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t body = (bytes + pg - 1) / pg * pg;
	void *m;

	memset(g, 0, sizeof(*g));
	m = mmap(NULL, body + 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -1;
	g->map = m;
	g->maplen = body + 2 * pg;
	g->lo = g->map + pg;
	g->hi = g->lo + body;
	if (mprotect(g->map, pg, PROT_NONE) != 0 || mprotect(g->hi, pg, PROT_NONE) != 0) {
		t_guard_fini(g);
		return -1;
	}
	return 0;
}

void t_guard_fini(struct t_guard *g)
{
	if (g->map)
		munmap(g->map, g->maplen);
	memset(g, 0, sizeof(*g));
}

float *t_guard_end(const struct t_guard *g, size_t n)
{
	return (float *)(void *)(g->hi - n * sizeof(float));
}

float *t_guard_start(const struct t_guard *g, size_t n)
{
	(void)n;
	return (float *)(void *)g->lo;
}

/* ---- test data (test_kernels, test_gpu) ---- */

/* Inputs of element-wise ops: mostly ordinary values, some arbitrary bit patterns and specials. */
void t_gen_mixed(struct t_rng *r, float *x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned k = (unsigned)(t_rng_u64(r) % 16);

		if (k < 9)
			x[i] = (float)t_rng_uniform(r, -10, 10);
		else if (k < 11)
			x[i] = (float)t_rng_uniform(r, -100, 100);
		else if (k < 12)
			x[i] = (float)t_rng_uniform(r, -1e-3, 1e-3);
		else if (k < 14)
			x[i] = t_float((uint32_t)t_rng_u64(r));
		else
			x[i] = t_special(t_rng_below(r, t_nspecials()));
	}
}

/* Finite data sets of several scales for the whole-vector ops and reductions. */
const char *t_gen_data(struct t_rng *r, float *x, size_t n, int which)
{
	static const char *const names[T_NDATA] = {"uniform[-1,1]",  "uniform[-30,30]", "normal(5,2)",
	                                           "normal(0,1e-3)", "uniform[0,1000]", "normal(-1000,300)"};

	which %= T_NDATA;
	for (size_t i = 0; i < n; i++) {
		switch (which) {
		case 0:
			x[i] = (float)t_rng_uniform(r, -1, 1);
			break;
		case 1:
			x[i] = (float)t_rng_uniform(r, -30, 30);
			break;
		case 2:
			x[i] = (float)(5 + 2 * t_rng_normal(r));
			break;
		case 3:
			x[i] = (float)(1e-3 * t_rng_normal(r));
			break;
		case 4:
			x[i] = (float)t_rng_uniform(r, 0, 1000);
			break;
		default:
			x[i] = (float)(-1000 + 300 * t_rng_normal(r));
			break;
		}
	}
	return names[which];
}

/* Parameter sets the tests use, per op; small-n tests cycle through them. */
static const float t_ps_leaky[][2] = {{0.01f, 0}, {3.0f, 0}};
static const float t_ps_elu[][2] = {{1.0f, 0}, {0.5f, 0}};
static const float t_ps_scale[][2] = {{2.5f, 0}, {-0.3f, 0}};
static const float t_ps_adds[][2] = {{1.5f, 0}, {-1e-3f, 0}};
static const float t_ps_clamp[][2] = {{-1.5f, 2.25f}, {0.0f, 6.0f}, {1.0f, 1.0f}};
static const float t_ps_ln[][2] = {{1e-5f, 0}, {0.0f, 0}};
static const float t_ps_rms[][2] = {{1e-6f, 0}, {1e-2f, 0}};

int t_npsets(int op)
{
	switch (op) {
	case CCK_OP_LEAKY_RELU:
		return T_NELEM(t_ps_leaky);
	case CCK_OP_ELU:
		return T_NELEM(t_ps_elu);
	case CCK_OP_SCALE:
		return T_NELEM(t_ps_scale);
	case CCK_OP_ADD_SCALAR:
		return T_NELEM(t_ps_adds);
	case CCK_OP_CLAMP:
		return T_NELEM(t_ps_clamp);
	case CCK_OP_LAYER_NORM:
		return T_NELEM(t_ps_ln);
	case CCK_OP_RMS_NORM:
		return T_NELEM(t_ps_rms);
	default:
		return 1;
	}
}

/* Parameter set i of op (NULL for an op without params). */
const float *t_pset(int op, int i)
{
	i %= t_npsets(op);
	switch (op) {
	case CCK_OP_LEAKY_RELU:
		return t_ps_leaky[i];
	case CCK_OP_ELU:
		return t_ps_elu[i];
	case CCK_OP_SCALE:
		return t_ps_scale[i];
	case CCK_OP_ADD_SCALAR:
		return t_ps_adds[i];
	case CCK_OP_CLAMP:
		return t_ps_clamp[i];
	case CCK_OP_LAYER_NORM:
		return t_ps_ln[i];
	case CCK_OP_RMS_NORM:
		return t_ps_rms[i];
	default:
		return NULL;
	}
}

int t_close(double got, double ref, double bound)
{
	if (isnan(ref))
		return isnan(got);
	if (got == ref)
		return 1;
	return fabs(got - ref) <= bound;
}
