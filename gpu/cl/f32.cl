/* SPDX-License-Identifier: MIT */
/*
 * f32.cl: libcck's f32 op table on the device (kernels "f32_*", driven by gpu/ops_f32.c). The definitions are
 * libcck's (kernels/kern_scalar.c is the reference; the comments there say why each formula is written so):
 *  - exact ops (neg abs square sqrt rsqrt recip relu leaky_relu floor ceil round trunc scale add_scalar clamp,
 *    add sub mul div minimum maximum) are the same IEEE operations, so they give libcck's bits. Division and sqrt
 *    round correctly: by -cl-fp32-correctly-rounded-divide-sqrt where the device has it (CCG_CR_DIVSQRT), else in
 *    double (a double quotient or root of floats rounds to the correctly rounded float), else plain float.
 *  - the transcendental ops follow kern_scalar.c: in double where the device has it (CCG_FP64: the result is
 *    within an ulp of libm's), else with the float built-ins in the same formulas (1-2 ulp on PoCL; gelu, silu,
 *    mish more where the result is below 1e-7, within libcck's absolute allowance).
 *  - sums accumulate in double (CCG_FP64) or in compensated float pairs (TwoSum), per work-item then over the
 *    work-group in local memory; the host adds the groups' partial sums in double (and, without double, sums
 *    again with scaled elements where float overflowed or underflowed).
 * Index arithmetic is size_t (ulong sizes): any n the device can hold.
 */

/* Work-items of a work-group at most: the local arrays below are this big (gpu/ops_f32.c never asks for more). */
#define F32_WG 256
/* Elements per work-item in a block of the scan (cumsum). */
#define F32_SCAN_ITEMS 8
/* No index: an empty part of a min/max. */
#define F32_NONE ULONG_MAX

#ifdef CCG_FP64
typedef double f32_real;
#define F32_R(c) c
typedef double f32_acc;
#else
typedef float f32_real;
#define F32_R(c) c##f
/* x: the running sum, y: the rounding errors of its additions, added up */
typedef float2 f32_acc;
#endif

/* Correctly rounded float division and square root (see the top). */
#if defined(CCG_CR_DIVSQRT) || !defined(CCG_FP64)
#define F32_DIV(a, b) ((a) / (b))
#define F32_SQRT(x) sqrt(x)
#else
#define F32_DIV(a, b) ((float)((double)(a) / (double)(b)))
#define F32_SQRT(x) ((float)sqrt((double)(x)))
#endif

/* ---- accumulators --------------------------------------------------------------------------------------------- */

#ifdef CCG_FP64
static inline f32_acc f32_acc_zero(void)
{
	return 0.0;
}

static inline f32_acc f32_acc_add(f32_acc s, f32_real v)
{
	return s + v;
}

static inline f32_acc f32_acc_merge(f32_acc s, f32_acc t)
{
	return s + t;
}

static inline float f32_acc_float(f32_acc s)
{
	return (float)s;
}
#else
static inline f32_acc f32_acc_zero(void)
{
	return (float2)(0.0f, 0.0f);
}

/* TwoSum: e is exactly what s.x + v lost. Not once the sum is inf or NaN (e would turn it into NaN). */
static inline f32_acc f32_acc_add(f32_acc s, float v)
{
	float t = s.x + v, bv = t - s.x;
	float e = (s.x - (t - bv)) + (v - bv);

	return (float2)(t, isfinite(t) ? s.y + e : s.y);
}

static inline f32_acc f32_acc_merge(f32_acc s, f32_acc t)
{
	s = f32_acc_add(s, t.x);
	s.y += t.y;
	return s;
}

static inline float f32_acc_float(f32_acc s)
{
	return isfinite(s.x) ? s.x + s.y : s.x;
}
#endif

/*
 * The work-group's sums of nacc accumulators s[] (l: nacc * F32_WG of local memory; the local size is a power of
 * two), written by work-item 0 to out[group * nacc + k].
 */
static inline void f32_group_sums(__local f32_acc *l, f32_acc *s, const int nacc, __global f32_acc *out)
{
	const size_t lid = get_local_id(0), ls = get_local_size(0);

	for (int k = 0; k < nacc; k++)
		l[k * F32_WG + lid] = s[k];
	barrier(CLK_LOCAL_MEM_FENCE);
	for (size_t h = ls / 2; h > 0; h /= 2) {
		if (lid < h)
			for (int k = 0; k < nacc; k++)
				l[k * F32_WG + lid] = f32_acc_merge(l[k * F32_WG + lid], l[k * F32_WG + lid + h]);
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	if (lid == 0)
		for (int k = 0; k < nacc; k++)
			out[get_group_id(0) * nacc + k] = l[k * F32_WG];
}

/* Exclusive prefix sum of v over the work-group (Hillis-Steele in l, F32_WG entries); the group's total in *total. */
static inline f32_acc f32_group_scan(__local f32_acc *l, f32_acc v, f32_acc *total)
{
	const size_t lid = get_local_id(0), ls = get_local_size(0);
	f32_acc ex;

	l[lid] = v;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (size_t off = 1; off < ls; off *= 2) {
		f32_acc t = lid >= off ? l[lid - off] : f32_acc_zero();

		barrier(CLK_LOCAL_MEM_FENCE);
		if (lid >= off)
			l[lid] = f32_acc_merge(t, l[lid]);
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	ex = lid > 0 ? l[lid - 1] : f32_acc_zero();
	*total = l[ls - 1];
	barrier(CLK_LOCAL_MEM_FENCE); /* l is reused by the caller */
	return ex;
}

/* ---- element-wise ops ----------------------------------------------------------------------------------------- */

/* x * sigmoid(u) without cancellation on either side; x = -inf gives -0 (the limit) rather than -inf * 0. */
static inline f32_real f32_x_sigmoid(f32_real x, f32_real u)
{
	f32_real e = exp(-fabs(u));

	if (u < 0)
		return e == 0 ? F32_R(-0.0) : x * e / (1 + e);
	return x / (1 + e);
}

static inline float f32_sigmoid_(float x)
{
	return isnan(x) ? x : (float)f32_x_sigmoid(1, x);
}

static inline float f32_relu_(float x)
{
	return (x > 0.0f || isnan(x)) ? x : (x == 0.0f ? x : 0.0f);
}

/* gelu, tanh form: 0.5 x (1 + tanh(z)) = x sigmoid(2z), 2z = sqrt(8/pi) (x + 0.044715 x^3) */
static inline float f32_gelu_(float x)
{
	f32_real d = x, u2;

	if (isnan(x))
		return x;
	if (fabs(d) > F32_R(1e15))
		return x < 0 ? -0.0f : x;
	u2 = F32_R(1.5957691216057308) * d * (1 + F32_R(0.044715) * d * d);
	return (float)f32_x_sigmoid(d, u2);
}

static inline float f32_gelu_erf_(float x)
{
	if (isinf(x))
		return x < 0 ? -0.0f : x;
	return (float)(F32_R(0.5) * x * erfc(-(f32_real)x * F32_R(0.70710678118654752440)));
}

static inline float f32_silu_(float x)
{
	return isnan(x) ? x : (float)f32_x_sigmoid(x, x);
}

/* x tanh(softplus(x)) = x n / (n + 2), n = e^x (e^x + 2) */
static inline float f32_mish_(float x)
{
	f32_real e, n;

	if (x > 20.0f)
		return x;
	if (x < -120.0f)
		return -0.0f;
	e = exp((f32_real)x);
	n = e * (e + 2);
	return (float)(x * n / (n + 2));
}

static inline float f32_hardswish_(float x)
{
	float t = fmin(fmax(x + 3.0f, 0.0f), 6.0f);

	if (x <= -3.0f)
		return -0.0f; /* -inf * 0 would be NaN; the limit is -0 */
	return (isnan(x) || x >= 3.0f) ? x : F32_DIV(x * t, 6.0f);
}

static inline float f32_softplus_(float x)
{
	f32_real d = x;

	return (float)(fmax(d, F32_R(0.0)) + log1p(exp(-fabs(d))));
}

static inline float f32_elu_(float x, float a)
{
	return x > 0.0f ? x : (float)(a * expm1((f32_real)x));
}

/* SELU's constants (Klambauer et al.) */
static inline float f32_selu_(float x)
{
	const f32_real scale = F32_R(1.0507009873554805), alpha = F32_R(1.6732632423543772);

	return (float)(x > 0.0f ? scale * x : scale * alpha * expm1((f32_real)x));
}

static inline float f32_clamp_(float x, float lo, float hi)
{
	if (isnan(x))
		return x;
	return x < lo ? lo : (x > hi ? hi : x);
}

/* y = f(x) for each of n elements; a, b: the op's params. y may be x. */
#define F32_UNARY(name, EXPR)                                                                                          \
	__kernel void f32_##name(__global const float *xs, __global float *ys, const ulong n, const float a,           \
	                         const float b)                                                                        \
	{                                                                                                              \
		const size_t i = get_global_id(0);                                                                     \
                                                                                                                       \
		if (i < n) {                                                                                           \
			const float x = xs[i];                                                                         \
			ys[i] = (EXPR);                                                                                \
		}                                                                                                      \
	}

F32_UNARY(neg, -x)
F32_UNARY(abs, fabs(x))
F32_UNARY(square, x * x)
F32_UNARY(sqrt, F32_SQRT(x))
F32_UNARY(rsqrt, F32_DIV(1.0f, F32_SQRT(x)))
F32_UNARY(recip, F32_DIV(1.0f, x))
F32_UNARY(exp, (float)exp((f32_real)x))
F32_UNARY(ln, (float)log((f32_real)x))
F32_UNARY(log2, (float)log2((f32_real)x))
F32_UNARY(log10, (float)log10((f32_real)x))
F32_UNARY(sin, (float)sin((f32_real)x))
F32_UNARY(cos, (float)cos((f32_real)x))
F32_UNARY(tanh, (float)tanh((f32_real)x))
F32_UNARY(sigmoid, f32_sigmoid_(x))
F32_UNARY(relu, f32_relu_(x))
F32_UNARY(leaky_relu, x > 0.0f ? x : a * x)
F32_UNARY(elu, f32_elu_(x, a))
F32_UNARY(selu, f32_selu_(x))
F32_UNARY(gelu, f32_gelu_(x))
F32_UNARY(gelu_erf, f32_gelu_erf_(x))
F32_UNARY(silu, f32_silu_(x))
F32_UNARY(mish, f32_mish_(x))
F32_UNARY(hardswish, f32_hardswish_(x))
F32_UNARY(softplus, f32_softplus_(x))
F32_UNARY(floor, floor(x))
F32_UNARY(ceil, ceil(x))
F32_UNARY(round, round(x)) /* half away from zero, as C's roundf */
F32_UNARY(trunc, trunc(x))
F32_UNARY(scale, x * a)
F32_UNARY(add_scalar, x + a)
F32_UNARY(clamp, f32_clamp_(x, a, b))
/* log_softmax's last step: (x - m) - log(s), two roundings as libcck (x - m is exact near the max) */
F32_UNARY(sub2, (x - a) - b)

/*
 * libcck's affine step of the whole-vector ops: y = ((x + a) + lo) * b (mode & 1: the offset as two floats, lo the
 * part of it that a rounds away) or x * b (a zero offset: x + 0 would turn -0 into +0), then times post (mode & 2)
 * where b alone would not be a normal float.
 */
__kernel void f32_affine(__global const float *xs, __global float *ys, const ulong n, const float a, const float lo,
                         const float b, const float post, const int mode)
{
	const size_t i = get_global_id(0);

	if (i < n) {
		float v = (mode & 1) ? ((xs[i] + a) + lo) * b : xs[i] * b;

		ys[i] = (mode & 2) ? v * post : v;
	}
}

/* y = v everywhere (the NaN result of an undefined whole-vector op) */
__kernel void f32_fill(__global float *ys, const ulong n, const float v)
{
	const size_t i = get_global_id(0);

	if (i < n)
		ys[i] = v;
}

/* e^(x - m) as libcck rounds it: x - m in float, the exponential of that */
static inline float f32_exp_sub(float x, float m)
{
	return (float)exp((f32_real)(x - m));
}

/* softmax's output: e^(x - m) times p = 1 / sum, the same float terms f32_expsum added up (round != 0) */
__kernel void f32_softmax(__global const float *xs, __global float *ys, const ulong n, const float m, const float p)
{
	const size_t i = get_global_id(0);

	if (i < n)
		ys[i] = f32_exp_sub(xs[i], m) * p;
}

#define F32_BINARY(name, EXPR)                                                                                         \
	__kernel void f32_##name(__global const float *as, __global const float *bs, __global float *ys,               \
	                         const ulong n)                                                                        \
	{                                                                                                              \
		const size_t i = get_global_id(0);                                                                     \
                                                                                                                       \
		if (i < n) {                                                                                           \
			const float a = as[i], b = bs[i];                                                              \
			ys[i] = (EXPR);                                                                                \
		}                                                                                                      \
	}

F32_BINARY(add, a + b)
F32_BINARY(sub, a - b)
F32_BINARY(mul, a * b)
F32_BINARY(div, F32_DIV(a, b))
/* NaN in either input gives NaN, as NumPy's minimum/maximum */
F32_BINARY(minimum, isnan(a) ? a : (a < b ? a : b))
F32_BINARY(maximum, isnan(a) ? a : (a > b ? a : b))

/* ---- sums ------------------------------------------------------------------------------------------------------
 * A grid of work-groups strides over [0, n): each work-item adds its elements' terms (TERMS sets t[0..NACC)), then
 * the group adds its work-items' sums; out[group * NACC + k] is the group's sum k. Every kernel takes the same
 * arguments: c0, c1 are centres, sa and sb powers of two the elements of a and b are scaled by first (1 with
 * double accumulators; without them the host scales float sums that would overflow or underflow, and c0, c1 come
 * scaled too); bs is unused by the one-vector sums.
 */
#define F32_SUMS(name, NACC, TERMS)                                                                                    \
	__kernel void f32_##name(__global const float *as, __global const float *bs, const ulong n, const float c0,    \
	                         const float c1, const float sa, const float sb, __global f32_acc *out)                \
	{                                                                                                              \
		__local f32_acc l[NACC * F32_WG];                                                                      \
		f32_acc s[NACC];                                                                                       \
		f32_real t[NACC];                                                                                      \
                                                                                                                       \
		for (int k = 0; k < NACC; k++)                                                                         \
			s[k] = f32_acc_zero();                                                                         \
		for (size_t i = get_global_id(0); i < n; i += get_global_size(0)) {                                    \
			TERMS;                                                                                         \
			for (int k = 0; k < NACC; k++)                                                                 \
				s[k] = f32_acc_add(s[k], t[k]);                                                        \
		}                                                                                                      \
		f32_group_sums(l, s, NACC, out);                                                                       \
	}

/* a[i], b[i] scaled, in the accumulation type */
#define F32_A ((f32_real)as[i] * sa)
#define F32_B ((f32_real)bs[i] * sb)

F32_SUMS(sum, 1, t[0] = F32_A)
F32_SUMS(sumsq, 1, f32_real v = F32_A; t[0] = v * v)
F32_SUMS(abssum, 1, t[0] = fabs(F32_A))
/* e^(x - c0) (never scaled: terms <= 1), rounded to float first when c1 != 0 (softmax adds the floats it outputs) */
F32_SUMS(expsum, 1, f32_real e = exp((f32_real)(as[i] - c0)); t[0] = c1 != 0.0f ? (f32_real)(float)e : e)
/* variance about the centre c0: sum (x - c0), sum (x - c0)^2 */
F32_SUMS(csumsq, 2, f32_real d = F32_A - c0; t[0] = d; t[1] = d * d)
F32_SUMS(dot, 1, t[0] = F32_A * F32_B)
/* a and b share one scale here (sb == sa) */
F32_SUMS(sqdiff, 1, f32_real d = F32_A - F32_B; t[0] = d * d)
F32_SUMS(sum2, 2, t[0] = F32_A; t[1] = F32_B)
/* covariance about (c0, c1): sum da db, sum da^2, sum db^2, sum da, sum db (libcck's CCK__R2_CENTRED) */
F32_SUMS(centred, 5, f32_real da = F32_A - c0; f32_real db = F32_B - c1; t[0] = da * db; t[1] = da * da;
         t[2] = db * db; t[3] = da; t[4] = db)

#undef F32_A
#undef F32_B

/* ---- min and max ----------------------------------------------------------------------------------------------- */

/* Is (v, i) a better extreme than (w, j)? Lower (higher with want_max) value, then the lower index; none is worst. */
static inline int f32_ext_better(float v, ulong i, float w, ulong j, int want_max)
{
	if (i == F32_NONE)
		return 0;
	if (j == F32_NONE || (want_max ? v > w : v < w))
		return 1;
	return v == w && i < j;
}

/*
 * The min and max of the non-NaN elements with the first index of each, and the first NaN's index, per work-group:
 * vals[2g] = min, vals[2g + 1] = max; idx[3g] = its index, idx[3g + 1], idx[3g + 2] = first NaN (F32_NONE: none).
 */
__kernel void f32_minmax(__global const float *xs, const ulong n, __global float *vals, __global ulong *idx)
{
	__local float lmn[F32_WG], lmx[F32_WG];
	__local ulong lmi[F32_WG], lxi[F32_WG], lni[F32_WG];
	const size_t lid = get_local_id(0), ls = get_local_size(0), g = get_group_id(0);
	float mn = INFINITY, mx = -INFINITY;
	ulong mi = F32_NONE, xi = F32_NONE, ni = F32_NONE;

	/* in increasing i: strict comparisons keep the first */
	for (size_t i = get_global_id(0); i < n; i += get_global_size(0)) {
		const float v = xs[i];

		if (isnan(v)) {
			ni = min(ni, (ulong)i);
			continue;
		}
		if (mi == F32_NONE || v < mn) {
			mn = v;
			mi = i;
		}
		if (xi == F32_NONE || v > mx) {
			mx = v;
			xi = i;
		}
	}
	lmn[lid] = mn;
	lmx[lid] = mx;
	lmi[lid] = mi;
	lxi[lid] = xi;
	lni[lid] = ni;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (size_t h = ls / 2; h > 0; h /= 2) {
		if (lid < h) {
			if (f32_ext_better(lmn[lid + h], lmi[lid + h], lmn[lid], lmi[lid], 0)) {
				lmn[lid] = lmn[lid + h];
				lmi[lid] = lmi[lid + h];
			}
			if (f32_ext_better(lmx[lid + h], lxi[lid + h], lmx[lid], lxi[lid], 1)) {
				lmx[lid] = lmx[lid + h];
				lxi[lid] = lxi[lid + h];
			}
			lni[lid] = min(lni[lid], lni[lid + h]);
		}
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	if (lid == 0) {
		vals[2 * g] = lmn[0];
		vals[2 * g + 1] = lmx[0];
		idx[3 * g] = lmi[0];
		idx[3 * g + 1] = lxi[0];
		idx[3 * g + 2] = lni[0];
	}
}

/* ---- cumsum: blocks of F32_SCAN_ITEMS * local size elements ---------------------------------------------------
 * f32_block_sums: each block's sum; f32_scan_carries (one work-group): the sum of the blocks before each block;
 * f32_cumsum: each block scanned from its carry. y may be x (a block is read whole before it is written). sa: a
 * power of two the elements are scaled by, inv = 1 / sa (1 with double accumulators; see F32_SUMS).
 */
__kernel void f32_block_sums(__global const float *xs, const ulong n, const float sa, __global f32_acc *out)
{
	__local f32_acc l[F32_WG];
	const size_t lid = get_local_id(0), ls = get_local_size(0);
	const size_t base = get_group_id(0) * ls * F32_SCAN_ITEMS;
	f32_acc s = f32_acc_zero();

	for (int k = 0; k < F32_SCAN_ITEMS; k++) {
		size_t i = base + k * ls + lid;

		if (i < n)
			s = f32_acc_add(s, xs[i] * sa);
	}
	f32_group_sums(l, &s, 1, out);
}

__kernel void f32_scan_carries(__global const f32_acc *sums, const ulong nblocks, __global f32_acc *carry)
{
	__local f32_acc l[F32_WG];
	const size_t lid = get_local_id(0), ls = get_local_size(0);
	f32_acc run = f32_acc_zero(), total;

	for (size_t b0 = 0; b0 < nblocks; b0 += ls) {
		f32_acc v = b0 + lid < nblocks ? sums[b0 + lid] : f32_acc_zero();
		f32_acc ex = f32_group_scan(l, v, &total);

		if (b0 + lid < nblocks)
			carry[b0 + lid] = f32_acc_merge(run, ex);
		run = f32_acc_merge(run, total);
	}
}

__kernel void f32_cumsum(__global const float *xs, __global float *ys, const ulong n, const float sa, const float inv,
                         __global const f32_acc *carry)
{
	__local float lx[F32_WG * F32_SCAN_ITEMS];
	__local f32_acc l[F32_WG];
	const size_t lid = get_local_id(0), ls = get_local_size(0), g = get_group_id(0);
	const size_t base = g * ls * F32_SCAN_ITEMS;
	f32_acc s = f32_acc_zero(), total, run;

	/* coalesced: the block through local memory; work-item lid then owns F32_SCAN_ITEMS consecutive elements */
	for (int k = 0; k < F32_SCAN_ITEMS; k++) {
		size_t i = base + k * ls + lid;

		lx[k * ls + lid] = i < n ? xs[i] * sa : 0.0f;
	}
	barrier(CLK_LOCAL_MEM_FENCE);
	for (int k = 0; k < F32_SCAN_ITEMS; k++)
		s = f32_acc_add(s, lx[lid * F32_SCAN_ITEMS + k]);
	run = f32_acc_merge(carry[g], f32_group_scan(l, s, &total));
	for (int k = 0; k < F32_SCAN_ITEMS; k++) {
		run = f32_acc_add(run, lx[lid * F32_SCAN_ITEMS + k]);
		lx[lid * F32_SCAN_ITEMS + k] = f32_acc_float(run) * inv;
	}
	barrier(CLK_LOCAL_MEM_FENCE);
	for (int k = 0; k < F32_SCAN_ITEMS; k++) {
		size_t i = base + k * ls + lid;

		if (i < n)
			ys[i] = lx[k * ls + lid];
	}
}

/* ---- matrix products (float, fused multiply-adds, as libcck's SIMD tiers) ------------------------------------- */

/* y = A x for matrices with few columns: a work-item per row. */
__kernel void f32_matvec_rows(__global const float *A, __global const float *x, __global float *y, const ulong rows,
                              const ulong cols)
{
	const size_t r = get_global_id(0);
	float s = 0.0f;

	if (r >= rows)
		return;
	for (size_t c = 0; c < cols; c++)
		s = fma(A[r * cols + c], x[c], s);
	y[r] = s;
}

/* y = A x: a work-group per row, its work-items stride over the columns (coalesced), then add up in local memory. */
__kernel void f32_matvec(__global const float *A, __global const float *x, __global float *y, const ulong rows,
                         const ulong cols)
{
	__local float l[F32_WG];
	const size_t lid = get_local_id(0), ls = get_local_size(0), r = get_group_id(0);
	__global const float *a = A + r * cols;
	float s = 0.0f;

	for (size_t c = lid; c < cols; c += ls)
		s = fma(a[c], x[c], s);
	l[lid] = s;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (size_t h = ls / 2; h > 0; h /= 2) {
		if (lid < h)
			l[lid] += l[lid + h];
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	if (lid == 0)
		y[r] = l[0];
}

/*
 * C = A B (m x k times k x n, row-major), tiled: a work-group of 16 x 16 work-items computes a 64 x 64 tile of C,
 * each work-item 4 x 4 of it (rows ty + 16 i, columns tx + 16 j), going over k in steps of 16 with the tiles of A
 * and B in local memory. Outside the matrices the tiles hold zeros (products with them reach no stored output).
 */
#define F32_MM_T 64 /* tile of C */
#define F32_MM_K 16 /* depth of a step */
#define F32_MM_L 16 /* work-items per dimension */
#define F32_MM_W 4  /* outputs per work-item per dimension */

__kernel __attribute__((reqd_work_group_size(F32_MM_L, F32_MM_L, 1))) void
f32_matmul(__global const float *A, __global const float *B, __global float *C, const ulong m, const ulong k,
           const ulong n)
{
	__local float As[F32_MM_K][F32_MM_T + 1], Bs[F32_MM_K][F32_MM_T + 1];
	const int tx = get_local_id(0), ty = get_local_id(1), tid = ty * F32_MM_L + tx;
	const size_t row0 = get_group_id(1) * F32_MM_T, col0 = get_group_id(0) * F32_MM_T;
	float acc[F32_MM_W][F32_MM_W];

	for (int i = 0; i < F32_MM_W; i++)
		for (int j = 0; j < F32_MM_W; j++)
			acc[i][j] = 0.0f;
	for (size_t p0 = 0; p0 < k; p0 += F32_MM_K) {
		for (int e = tid; e < F32_MM_T * F32_MM_K; e += F32_MM_L * F32_MM_L) {
			/* A: 16 consecutive k per row (coalesced), stored transposed; B: 64 consecutive columns */
			const int ar = e / F32_MM_K, ac = e % F32_MM_K, br = e / F32_MM_T, bc = e % F32_MM_T;
			const size_t gar = row0 + ar, gac = p0 + ac, gbr = p0 + br, gbc = col0 + bc;

			As[ac][ar] = gar < m && gac < k ? A[gar * k + gac] : 0.0f;
			Bs[br][bc] = gbr < k && gbc < n ? B[gbr * n + gbc] : 0.0f;
		}
		barrier(CLK_LOCAL_MEM_FENCE);
		for (int p = 0; p < F32_MM_K; p++) {
			float a[F32_MM_W], b[F32_MM_W];

			for (int i = 0; i < F32_MM_W; i++)
				a[i] = As[p][ty + F32_MM_L * i];
			for (int j = 0; j < F32_MM_W; j++)
				b[j] = Bs[p][tx + F32_MM_L * j];
			for (int i = 0; i < F32_MM_W; i++)
				for (int j = 0; j < F32_MM_W; j++)
					acc[i][j] = fma(a[i], b[j], acc[i][j]);
		}
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	for (int i = 0; i < F32_MM_W; i++) {
		const size_t r = row0 + ty + F32_MM_L * i;

		for (int j = 0; j < F32_MM_W; j++) {
			const size_t c = col0 + tx + F32_MM_L * j;

			if (r < m && c < n)
				C[r * n + c] = acc[i][j];
		}
	}
}

/* C = A B, a work-item per output: for devices whose work-groups cannot hold f32_matmul's 256 work-items. */
__kernel void f32_matmul_naive(__global const float *A, __global const float *B, __global float *C, const ulong m,
                               const ulong k, const ulong n)
{
	const size_t j = get_global_id(0), i = get_global_id(1);
	float s = 0.0f;

	if (i >= m || j >= n)
		return;
	for (size_t p = 0; p < k; p++)
		s = fma(A[i * k + p], B[p * n + j], s);
	C[i * n + j] = s;
}
