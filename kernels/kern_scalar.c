/* SPDX-License-Identifier: MIT */
/*
 * kern_scalar.c: libcck's scalar tier, plain C over libm, the reference the
 * SIMD tiers are tested against. Built with baseline flags and without
 * auto-vectorisation so "scalar" means scalar; transcendental ops go through
 * double so the reference is as accurate as the float result can be.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cck_internal.h"
#include "gemm.h"

static float s_neg(float x, float a, float b)
{
	return -x;
}
static float s_abs(float x, float a, float b)
{
	return fabsf(x);
}
static float s_square(float x, float a, float b)
{
	return x * x;
}
static float s_sqrt(float x, float a, float b)
{
	return sqrtf(x);
}
static float s_rsqrt(float x, float a, float b)
{
	return 1.0f / sqrtf(x);
}
static float s_recip(float x, float a, float b)
{
	return 1.0f / x;
}
static float s_exp(float x, float a, float b)
{
	return (float)exp(x);
}
static float s_ln(float x, float a, float b)
{
	return (float)log(x);
}
static float s_log2(float x, float a, float b)
{
	return (float)log2(x);
}
static float s_log10(float x, float a, float b)
{
	return (float)log10(x);
}
static float s_sin(float x, float a, float b)
{
	return (float)sin(x);
}
static float s_cos(float x, float a, float b)
{
	return (float)cos(x);
}
static float s_tanh(float x, float a, float b)
{
	return (float)tanh(x);
}
/* x * sigmoid(u) in double, with the x = -inf limit (-0) rather than -inf * 0 */
static double d_x_sigmoid(double x, double u)
{
	double e = exp(-fabs(u));
	if (u < 0)
		return e == 0 ? -0.0 : x * e / (1.0 + e);
	return x / (1.0 + e);
}
static float s_sigmoid(float x, float a, float b)
{
	if (isnan(x))
		return x;
	return (float)d_x_sigmoid(1.0, x);
}
static float s_relu(float x, float a, float b)
{
	return (x > 0.0f || isnan(x)) ? x : (x == 0.0f ? x : 0.0f);
}
static float s_leaky_relu(float x, float a, float b)
{
	return x > 0.0f ? x : a * x;
}
static float s_elu(float x, float a, float b)
{
	return x > 0.0f ? x : (float)(a * expm1(x));
}
static float s_selu(float x, float a, float b)
{
	const double scale = 1.0507009873554805, alpha = 1.6732632423543772;
	return (float)(x > 0.0f ? scale * x : scale * alpha * expm1(x));
}
static float s_gelu(float x, float a, float b)
{
	if (isnan(x))
		return x;
	double d = x;
	if (fabs(d) > 1e15)
		return x < 0 ? -0.0f : x;
	double u2 = 1.5957691216057308 * d * (1.0 + 0.044715 * d * d);
	return (float)d_x_sigmoid(d, u2);
}
static float s_gelu_erf(float x, float a, float b)
{
	if (isinf(x))
		return x < 0 ? -0.0f : x;
	return (float)(0.5 * x * erfc(-(double)x * 0.70710678118654752440));
}
static float s_silu(float x, float a, float b)
{
	if (isnan(x))
		return x;
	return (float)d_x_sigmoid(x, x);
}
static float s_mish(float x, float a, float b)
{
	if (x > 20.0f)
		return x;
	if (x < -120.0f)
		return -0.0f;
	double e = exp((double)x), n = e * (e + 2.0);
	return (float)(x * n / (n + 2.0));
}
static float s_hardswish(float x, float a, float b)
{
	float t = fminf(fmaxf(x + 3.0f, 0.0f), 6.0f);
	if (x <= -3.0f)
		return -0.0f;
	return (isnan(x) || x >= 3.0f) ? x : x * t / 6.0f;
}
static float s_softplus(float x, float a, float b)
{
	double d = x;
	return (float)(fmax(d, 0.0) + log1p(exp(-fabs(d))));
}
static float s_floor(float x, float a, float b)
{
	return floorf(x);
}
static float s_ceil(float x, float a, float b)
{
	return ceilf(x);
}
static float s_round(float x, float a, float b)
{
	return roundf(x);
}
static float s_trunc(float x, float a, float b)
{
	return truncf(x);
}
static float s_scale(float x, float a, float b)
{
	return x * a;
}
static float s_add_scalar(float x, float a, float b)
{
	return x + a;
}
static float s_clamp(float x, float a, float b)
{
	if (isnan(x))
		return x;
	return x < a ? a : (x > b ? b : x);
}
static float s_affine(float x, float a, float b)
{
	return (x + a) * b;
}
static float s_sub2(float x, float a, float b)
{
	return (x - a) - b;
}
static float s_expsub(float x, float a, float b)
{
	return (float)exp((double)(x - a));
}

#define DEF_UNARY(name)                                                                                                \
	static void u_##name(const float *x, float *y, size_t n, const struct cck__param *p)                           \
	{                                                                                                              \
		const float a = p ? p->a : 0.0f, b = p ? p->b : 0.0f;                                                  \
		for (size_t i = 0; i < n; i++)                                                                         \
			y[i] = s_##name(x[i], a, b);                                                                   \
	}
DEF_UNARY(neg)
DEF_UNARY(abs)
DEF_UNARY(square)
DEF_UNARY(sqrt)
DEF_UNARY(rsqrt)
DEF_UNARY(recip)
DEF_UNARY(exp)
DEF_UNARY(ln)
DEF_UNARY(log2)
DEF_UNARY(log10)
DEF_UNARY(sin)
DEF_UNARY(cos)
DEF_UNARY(tanh)
DEF_UNARY(sigmoid)
DEF_UNARY(relu)
DEF_UNARY(leaky_relu)
DEF_UNARY(elu)
DEF_UNARY(selu)
DEF_UNARY(gelu)
DEF_UNARY(gelu_erf)
DEF_UNARY(silu)
DEF_UNARY(mish)
DEF_UNARY(hardswish)
DEF_UNARY(softplus)
DEF_UNARY(floor)
DEF_UNARY(ceil)
DEF_UNARY(round)
DEF_UNARY(trunc)
DEF_UNARY(scale)
DEF_UNARY(add_scalar)
DEF_UNARY(clamp)
DEF_UNARY(affine)
DEF_UNARY(expsub)
DEF_UNARY(sub2)

/* y = ((x + a) + c) * b: the offset's two parts one after the other (see affine() in cck.c). */
static void u_affine2(const float *x, float *y, size_t n, const struct cck__param *p)
{
	for (size_t i = 0; i < n; i++)
		y[i] = ((x[i] + p->a) + p->c) * p->b;
}

static float f_add(float a, float b)
{
	return a + b;
}
static float f_sub(float a, float b)
{
	return a - b;
}
static float f_mul(float a, float b)
{
	return a * b;
}
static float f_div(float a, float b)
{
	return a / b;
}
/* NaN in either input gives NaN, as NumPy's minimum/maximum do. */
static float f_minimum(float a, float b)
{
	return isnan(a) ? a : (a < b ? a : b);
}
static float f_maximum(float a, float b)
{
	return isnan(a) ? a : (a > b ? a : b);
}

#define DEF_BINARY(name)                                                                                               \
	static void b_##name(const float *a, const float *b, float *y, size_t n)                                       \
	{                                                                                                              \
		for (size_t i = 0; i < n; i++)                                                                         \
			y[i] = f_##name(a[i], b[i]);                                                                   \
	}
DEF_BINARY(add)
DEF_BINARY(sub)
DEF_BINARY(mul)
DEF_BINARY(div)
DEF_BINARY(minimum)
DEF_BINARY(maximum)

static void r_sum(const float *x, size_t n, const struct cck__param *p, struct cck__part *ret)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += x[i];
	memset(ret, 0, sizeof(*ret));
	ret->s0 = s;
}
static void r_sumsq(const float *x, size_t n, const struct cck__param *p, struct cck__part *ret)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)x[i] * x[i];
	memset(ret, 0, sizeof(*ret));
	ret->s0 = s;
}
static void r_abssum(const float *x, size_t n, const struct cck__param *p, struct cck__part *ret)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += fabs((double)x[i]);
	memset(ret, 0, sizeof(*ret));
	ret->s0 = s;
}
static void r_expsum(const float *x, size_t n, const struct cck__param *p, struct cck__part *ret)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += exp((double)(x[i] - p->a));
	memset(ret, 0, sizeof(*ret));
	ret->s0 = s;
}
static void r_csumsq(const float *x, size_t n, const struct cck__param *p, struct cck__part *ret)
{
	double a = 0, b = 0;
	for (size_t i = 0; i < n; i++) {
		double d = (double)x[i] - p->a;
		a += d;
		b += d * d;
	}
	memset(ret, 0, sizeof(*ret));
	ret->s0 = a;
	ret->s1 = b;
}
/* first extreme; the first NaN if there is one */
static void r_extreme(const float *x, size_t n, int want_max, struct cck__part *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->f = want_max ? -INFINITY : INFINITY;
	for (size_t i = 0; i < n; i++) {
		if (isnan(x[i])) {
			ret->f = x[i];
			ret->idx = i;
			return;
		}
		if (want_max ? x[i] > ret->f : x[i] < ret->f) {
			ret->f = x[i];
			ret->idx = i;
		}
	}
	if (n > 0 && ret->f == (want_max ? -INFINITY : INFINITY)) {
		for (size_t i = 0; i < n; i++)
			if (x[i] == ret->f) {
				ret->idx = i;
				break;
			}
	}
}
static void r_min(const float *x, size_t n, const struct cck__param *p, struct cck__part *ret)
{
	r_extreme(x, n, 0, ret);
}
static void r_max(const float *x, size_t n, const struct cck__param *p, struct cck__part *ret)
{
	r_extreme(x, n, 1, ret);
}
static void r_absmax(const float *x, size_t n, const struct cck__param *p, struct cck__part *ret)
{
	float m = 0.0f;
	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < n; i++) {
		if (isnan(x[i])) {
			ret->f = NAN;
			return;
		}
		if (fabsf(x[i]) > m)
			m = fabsf(x[i]);
	}
	ret->f = m;
}

static void r2_dot(const float *a, const float *b, size_t n, const struct cck__param *p, struct cck__part *ret)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	memset(ret, 0, sizeof(*ret));
	ret->s0 = s;
}
static void r2_sqdiff(const float *a, const float *b, size_t n, const struct cck__param *p, struct cck__part *ret)
{
	double s = 0;
	for (size_t i = 0; i < n; i++) {
		double d = (double)a[i] - b[i];
		s += d * d;
	}
	memset(ret, 0, sizeof(*ret));
	ret->s0 = s;
}
static void r2_centred(const float *a, const float *b, size_t n, const struct cck__param *p, struct cck__part *ret)
{
	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < n; i++) {
		double da = (double)a[i] - p->a, db = (double)b[i] - p->b;
		ret->s0 += da * db;
		ret->s1 += da * da;
		ret->s2 += db * db;
		ret->s3 += da;
		ret->s4 += db;
	}
}

static double s_cumsum(const float *x, float *y, size_t n, double carry)
{
	for (size_t i = 0; i < n; i++) {
		carry += x[i];
		y[i] = (float)carry;
	}
	return carry;
}

const struct cck__tier_ops cck__ops_scalar = {
    .name = "scalar",
    .unary =
        {
            [CCK_OP_NEG] = u_neg,
            [CCK_OP_ABS] = u_abs,
            [CCK_OP_SQUARE] = u_square,
            [CCK_OP_SQRT] = u_sqrt,
            [CCK_OP_RSQRT] = u_rsqrt,
            [CCK_OP_RECIP] = u_recip,
            [CCK_OP_EXP] = u_exp,
            [CCK_OP_LN] = u_ln,
            [CCK_OP_LOG2] = u_log2,
            [CCK_OP_LOG10] = u_log10,
            [CCK_OP_SIN] = u_sin,
            [CCK_OP_COS] = u_cos,
            [CCK_OP_TANH] = u_tanh,
            [CCK_OP_SIGMOID] = u_sigmoid,
            [CCK_OP_RELU] = u_relu,
            [CCK_OP_LEAKY_RELU] = u_leaky_relu,
            [CCK_OP_ELU] = u_elu,
            [CCK_OP_SELU] = u_selu,
            [CCK_OP_GELU] = u_gelu,
            [CCK_OP_GELU_ERF] = u_gelu_erf,
            [CCK_OP_SILU] = u_silu,
            [CCK_OP_MISH] = u_mish,
            [CCK_OP_HARDSWISH] = u_hardswish,
            [CCK_OP_SOFTPLUS] = u_softplus,
            [CCK_OP_FLOOR] = u_floor,
            [CCK_OP_CEIL] = u_ceil,
            [CCK_OP_ROUND] = u_round,
            [CCK_OP_TRUNC] = u_trunc,
            [CCK_OP_SCALE] = u_scale,
            [CCK_OP_ADD_SCALAR] = u_add_scalar,
            [CCK_OP_CLAMP] = u_clamp,
        },
    .prim = {[CCK__AFFINE] = u_affine, [CCK__EXPSUB] = u_expsub, [CCK__SUB2] = u_sub2, [CCK__AFFINE2] = u_affine2},
    .binary =
        {
            [CCK_OP_ADD] = b_add,
            [CCK_OP_SUB] = b_sub,
            [CCK_OP_MUL] = b_mul,
            [CCK_OP_DIV] = b_div,
            [CCK_OP_MINIMUM] = b_minimum,
            [CCK_OP_MAXIMUM] = b_maximum,
        },
    .reduce =
        {
            [CCK__R_SUM] = r_sum,
            [CCK__R_SUMSQ] = r_sumsq,
            [CCK__R_ABSSUM] = r_abssum,
            [CCK__R_MIN] = r_min,
            [CCK__R_MAX] = r_max,
            [CCK__R_ABSMAX] = r_absmax,
            [CCK__R_CSUMSQ] = r_csumsq,
            [CCK__R_EXPSUM] = r_expsum,
        },
    .reduce2 = {[CCK__R2_DOT] = r2_dot, [CCK__R2_SQDIFF] = r2_sqdiff, [CCK__R2_CENTRED] = r2_centred},
    .cumsum = s_cumsum,
    .matvec = cck__matvec_scalar,
    .gemm = cck__gemm_scalar,
};
