/* SPDX-License-Identifier: MIT */
/*
 * quant.cl: quantized matrix products Y (batch x rows) = W (rows x cols, GGUF blocks) x X (batch x cols), as libcck's
 * cck_qmatmul computes them (kernels/quant_scalar.c is the reference):
 *  - q_act_*: the activations quantized on the device to the weight type's dot format, with libcck's arithmetic
 *    (ggml-cpu's x86 q8_0 / q8_1: d = amax / 127, id = 127 / amax, q = x * id rounded half to even; q8_K:
 *    iscale = -127 / max, q = nearest_int(iscale * x), d = 1 / iscale): the same d and the same integer quants.
 *    One work-item per block, in libcck's element order (the max of a block with a NaN depends on it). The f16
 *    scales are kept as the floats they round to, so the dot kernels read no half.
 *  - q_mm_*: a work-group of Q_LANES x R work-items does R rows, work-item (u, r) the lane u of row r, for up to
 *    Q_BATCH batch columns at once (each weight block is read and unpacked once for all of them).
 *    q4_0, q4_1, q8_0: lane u takes the products 4u..4u+3 of every 32-block, in block order, adding
 *    fma(dw * dx, (float)isum, acc), then the lanes are added as ggml's hsum_float_8: libcck's (and ggml's x86)
 *    order exactly, so these give libcck's bits. q4_K, q6_K: lane u takes super-blocks u, u + Q_LANES, ...,
 *    each one's integer sum exact as libcck's, (d * dx) * isum - (dmin * dx) * summin in float; only the float
 *    order over super-blocks differs from libcck's.
 *  - q_mm_*_rows (q4_0, q4_1, q8_0): the same sums with one work-item per row and its 8 lanes as a float8, for CPU
 *    devices (PoCL runs a work-group's items as loop iterations: vector types are its SIMD; about 7 times faster
 *    there than 8 work-items per row). Same bits.
 * No FMA contraction here: every product and sum is rounded where libcck rounds it.
 */
#pragma OPENCL FP_CONTRACT OFF

#define Q_LANES 8  /* work-items per row (gpu/quant.c has the same numbers) */
#define Q_ROWS 8   /* rows per work-group, at most */
#define Q_BATCH 32 /* batch columns per launch */

/* ---- scalar helpers ------------------------------------------------------------------------------------------- */

/* IEEE half bits of f, round to nearest even, overflow to inf, NaN quieted (libcck's cck__f32_to_f16). */
static inline ushort q_f2h(float f)
{
	uint u = as_uint(f), a = u & 0x7fffffffu, r, rem;
	uint sign = (u >> 16) & 0x8000u;

	if (a > 0x7f800000u)
		return (ushort)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
	if (a >= 0x477ff000u)
		return (ushort)(sign | 0x7c00u);
	if (a < 0x38800000u) {
		uint e = a >> 23, m = (a & 0x7fffffu) | 0x800000u, shift;

		if (a <= 0x33000000u)
			return (ushort)sign;
		shift = 126u - e;
		r = m >> shift;
		rem = m & ((1u << shift) - 1u);
		if (rem > (1u << (shift - 1u)) || (rem == (1u << (shift - 1u)) && (r & 1u)))
			r++;
		return (ushort)(sign | r);
	}
	r = (a - 0x38000000u) >> 13;
	rem = a & 0x1fffu;
	if (rem > 0x1000u || (rem == 0x1000u && (r & 1u)))
		r++;
	return (ushort)(sign | r);
}

/* The float an f16 store of f keeps. */
static inline float q_as_half(float f)
{
	return ccg_half_to_float(q_f2h(f));
}

/* a / b correctly rounded, as the CPU divides: OpenCL's float division may be 2.5 ulp off. In double where the
 * device has it (float operands: rounding the double quotient to float is exact rounding), else the float quotient
 * is moved to the neighbour whose remainder (exact by fma) is smaller. */
static inline float q_div(float a, float b)
{
#ifdef CCG_FP64
	return (float)((double)a / (double)b);
#else
	float q = a / b;

	if (!isfinite(q) || fabs(q) < FLT_MIN)
		return q;
	for (int i = 0; i < 4; i++) {
		float lo = nextafter(q, -INFINITY), hi = nextafter(q, INFINITY);
		float r = fabs(fma(-q, b, a)), rl = fabs(fma(-lo, b, a)), rh = fabs(fma(-hi, b, a));

		if (rl < r)
			q = lo;
		else if (rh < r)
			q = hi;
		else
			break;
	}
	return q;
#endif
}

/* The f16 at p (any byte address), as a float. */
static inline float q_h(global const uchar *p)
{
	return ccg_half_to_float((ushort)(p[0] | (p[1] << 8)));
}

/* ---- activations ------------------------------------------------------------------------------------------------
 * q_act_q8 (q8_0, and q8_1 with with_sum): n blocks of 32 floats of x into aq (32 int8 each), ad (d as its f16
 * value), as (q8_1's s = f16(d * sum q), the int32 sum of the unsaturated q, wrapping). As libcck's act_quant
 * (quant_q8_x86): amax = MAX(amax, |x|) in element order, q = rint(x * id) converted as cvtps_epi32 (INT_MIN
 * for NaN and out of range), saturated to int8.
 */
kernel void q_act_q8(global const float *x, ulong n, global char *aq, global float *ad, global float *as,
                     int with_sum)
{
	size_t i = get_global_id(0);
	global const float *p = x + i * 32;
	global char *q = aq + i * 32;
	float amax = 0.0f, d, id;
	uint sum = 0;

	if (i >= n)
		return;
	for (int j = 0; j < 32; j++) {
		float a = fabs(p[j]);

		amax = amax > a ? amax : a;
	}
	d = q_div(amax, 127.0f);
	id = amax != 0.0f ? q_div(127.0f, amax) : 0.0f;
	for (int j = 0; j < 32; j++) {
		float v = rint(p[j] * id);
		int qi = (v >= -2147483648.0f && v < 2147483648.0f) ? (int)v : INT_MIN;

		q[j] = (char)clamp(qi, -128, 127);
		sum += (uint)qi;
	}
	ad[i] = q_as_half(d);
	if (with_sum)
		as[i] = q_as_half(d * (float)(int)sum);
}

/*
 * q_act_q8_k: n super-blocks of 256 floats into aq (256 int8), ad (the float d) and bs (16 sums of 16 quants), as
 * libcck's quant_q8_k (ggml's quantize_row_q8_K_ref): max = the first element of largest |x|, iscale = -127 / max,
 * q = min(127, nearest_int(iscale * x)) by the 1.5 * 2^23 addition, d = 1 / iscale; all zero when amax is 0. A NaN
 * x (or iscale * x, iscale infinite) gives the quant x86 gives it, whatever NaN the device makes.
 */
kernel void q_act_q8_k(global const float *x, ulong n, global char *aq, global float *ad, global short *bs)
{
	size_t i = get_global_id(0);
	global const float *p = x + i * 256;
	global char *q = aq + i * 256;
	float max = 0.0f, amax = 0.0f, iscale;

	if (i >= n)
		return;
	for (int j = 0; j < 256; j++)
		if (fabs(p[j]) > amax) {
			amax = fabs(p[j]);
			max = p[j];
		}
	if (amax == 0.0f) {
		for (int j = 0; j < 256; j++)
			q[j] = 0;
		for (int j = 0; j < 16; j++)
			bs[i * 16 + j] = 0;
		ad[i] = 0.0f;
		return;
	}
	iscale = q_div(-127.0f, max);
	for (int g = 0; g < 16; g++) {
		int s = 0;

		for (int l = 0; l < 16; l++) {
			float x = p[16 * g + l], t = iscale * x;
			/* a NaN's bits as x86 (libcck's reference) makes them: the input NaN quieted, else the default NaN */
			uint v = isnan(t) ? (isnan(x) ? as_uint(x) | 0x00400000u : 0xffc00000u) : as_uint(t + 12582912.0f);
			int qi = min((int)(v & 0x007fffffu) - 0x00400000, 127);
			char c = (char)qi;

			q[16 * g + l] = c;
			s += c;
		}
		bs[i * 16 + g] = (short)s;
	}
	ad[i] = q_div(1.0f, iscale);
}

/* ---- dot products ----------------------------------------------------------------------------------------------
 * Arguments of every q_mm_* kernel: W (rows at stride bytes), nb blocks per row, rows; the quantized activations of
 * the whole batch (aq: cols int8 per column, ad: nb scales per column, aux: q8_1's s or q8_K's 16 bsums per block);
 * Y (batch x rows); this launch's columns b0 .. b0 + nbat - 1 (nbat <= Q_BATCH).
 */

/* Lane u's 8 partial sums of column b, added as ggml's hsum_float_8 (libcck's lanes8_sum). */
static inline float q_lanes_sum(local const float (*part)[Q_BATCH], uint b)
{
	float t0 = part[4][b] + part[0][b], t1 = part[5][b] + part[1][b];
	float t2 = part[6][b] + part[2][b], t3 = part[7][b] + part[3][b];

	return (t0 + t2) + (t1 + t3);
}

/* The 4 integer products of lane u: w4 the weights, the activations at a. */
static inline int q_dot4(int4 w4, global const char *a)
{
	int4 a4 = convert_int4(vload4(0, a));

	return w4.x * a4.x + w4.y * a4.y + w4.z * a4.z + w4.w * a4.w;
}

/* Row, lane and local row of this work-item; the work-group's lane partials, the finished columns written. */
#define Q_PROLOGUE                                                                                                     \
	const uint u = get_local_id(0), lr = get_local_id(1);                                                          \
	const size_t row = get_group_id(1) * get_local_size(1) + lr;                                                   \
	local float part[Q_ROWS][Q_LANES][Q_BATCH];                                                                    \
	float acc[Q_BATCH];                                                                                            \
	for (uint b = 0; b < nbat; b++)                                                                                \
		acc[b] = 0.0f

#define Q_EPILOGUE(extra)                                                                                              \
	for (uint b = 0; b < nbat; b++)                                                                                \
		part[lr][u][b] = acc[b];                                                                               \
	barrier(CLK_LOCAL_MEM_FENCE);                                                                                  \
	if (row < rows)                                                                                                \
		for (uint b = u; b < nbat; b += Q_LANES)                                                               \
			Y[(size_t)(b0 + b) * rows + row] = q_lanes_sum(part[lr], b) extra

/* lane u's 4 quants of a q4 block (x = low nibbles of qs[0..15], elements 16.. the high ones), minus off. */
static inline int4 q_nib4(global const uchar *qs, uint u, int off)
{
	int4 v = convert_int4(vload4(0, qs + 4 * (u & 3)));

	return (u < 4 ? (v & 15) : (v >> 4)) - off;
}

kernel void q_mm_q4_0(global const uchar *W, ulong stride, uint nb, uint rows, global const char *aq,
                      global const float *ad, global const float *aux, global float *Y, uint b0, uint nbat)
{
	Q_PROLOGUE;
	if (row < rows) {
		global const uchar *w = W + row * stride;

		for (uint i = 0; i < nb; i++, w += 18) {
			float dw = q_h(w);
			int4 q = q_nib4(w + 2, u, 8);

			for (uint b = 0; b < nbat; b++) {
				size_t c = (size_t)(b0 + b) * nb + i;

				acc[b] = fma(dw * ad[c], (float)q_dot4(q, aq + c * 32 + 4 * u), acc[b]);
			}
		}
	}
	Q_EPILOGUE(;);
}

/* q4_1 x q8_1: the lanes, plus the m * s terms summed in their own float (lane 0), added last. */
kernel void q_mm_q4_1(global const uchar *W, ulong stride, uint nb, uint rows, global const char *aq,
                      global const float *ad, global const float *aux, global float *Y, uint b0, uint nbat)
{
	local float summs[Q_ROWS][Q_BATCH];
	float sm[Q_BATCH];

	Q_PROLOGUE;
	for (uint b = 0; b < nbat; b++)
		sm[b] = 0.0f;
	if (row < rows) {
		global const uchar *w = W + row * stride;

		for (uint i = 0; i < nb; i++, w += 20) {
			float dw = q_h(w), mw = q_h(w + 2);
			int4 q = q_nib4(w + 4, u, 0);

			for (uint b = 0; b < nbat; b++) {
				size_t c = (size_t)(b0 + b) * nb + i;

				if (u == 0)
					sm[b] = fma(mw, aux[c], sm[b]);
				acc[b] = fma(dw * ad[c], (float)q_dot4(q, aq + c * 32 + 4 * u), acc[b]);
			}
		}
	}
	if (u == 0)
		for (uint b = 0; b < nbat; b++)
			summs[lr][b] = sm[b];
	Q_EPILOGUE(+summs[lr][b]);
}

kernel void q_mm_q8_0(global const uchar *W, ulong stride, uint nb, uint rows, global const char *aq,
                      global const float *ad, global const float *aux, global float *Y, uint b0, uint nbat)
{
	Q_PROLOGUE;
	if (row < rows) {
		global const uchar *w = W + row * stride;

		for (uint i = 0; i < nb; i++, w += 34) {
			float dw = q_h(w);
			int4 q = convert_int4(vload4(0, (global const char *)(w + 2 + 4 * u)));

			for (uint b = 0; b < nbat; b++) {
				size_t c = (size_t)(b0 + b) * nb + i;

				acc[b] = fma(dw * ad[c], (float)q_dot4(q, aq + c * 32 + 4 * u), acc[b]);
			}
		}
	}
	Q_EPILOGUE(;);
}

/* The sum of 16 shorts, in int. */
static inline int q_hsum16(short16 p)
{
	int8 t = convert_int8(p.lo) + convert_int8(p.hi);
	int4 u = t.lo + t.hi;

	return u.x + u.y + u.z + u.w;
}

/* The integer dot of 16 quants q (|q| <= 64) with the activations at a (each product fits a short). */
static inline int q_idot16(short16 q, global const char *a)
{
	return q_hsum16(q * convert_short16(vload16(0, a)));
}

/*
 * q4_K (144 bytes: d, dmin, 12 bytes of 6-bit scales and mins, 128 bytes of nibbles): 8 groups of 32; element
 * 32 g + l is nibble g & 1 of qs[32 (g / 2) + l]. isum = sum_g sc[g] * (q . x over g), summin = sum_g mn[g] *
 * (the two bsums of g); each super-block adds (d * dx) * isum - (dmin * dx) * summin.
 */
kernel void q_mm_q4_k(global const uchar *W, ulong stride, uint nb, uint rows, global const char *aq,
                      global const float *ad, global const short *aux, global float *Y, uint b0, uint nbat)
{
	int isum[Q_BATCH];

	Q_PROLOGUE;
	if (row < rows) {
		for (uint i = u; i < nb; i += Q_LANES) {
			global const uchar *w = W + row * stride + (size_t)i * 144, *s = w + 4;
			float d = q_h(w), dmin = q_h(w + 2);
			int sc[8], mn[8];

			for (int g = 0; g < 8; g++) {
				sc[g] = g < 4 ? s[g] & 63 : (s[g + 4] & 15) | (s[g - 4] >> 6) << 4;
				mn[g] = g < 4 ? s[g + 4] & 63 : (s[g + 4] >> 4) | (s[g] >> 6) << 4;
			}
			for (uint b = 0; b < nbat; b++)
				isum[b] = 0;
			for (int g = 0; g < 8; g++) {
				global const uchar *qs = w + 16 + 32 * (g / 2);
				const uchar16 sh = (uchar16)(4 * (g & 1));
				short16 q0 = convert_short16((vload16(0, qs) >> sh) & (uchar16)15);
				short16 q1 = convert_short16((vload16(1, qs) >> sh) & (uchar16)15);

				for (uint b = 0; b < nbat; b++) {
					global const char *a = aq + ((size_t)(b0 + b) * nb + i) * 256 + 32 * g;

					isum[b] += sc[g] * (q_idot16(q0, a) + q_idot16(q1, a + 16));
				}
			}
			for (uint b = 0; b < nbat; b++) {
				size_t c = (size_t)(b0 + b) * nb + i;
				global const short *bs = aux + c * 16;
				int summin = 0;

				for (int g = 0; g < 8; g++)
					summin += mn[g] * (bs[2 * g] + bs[2 * g + 1]);
				acc[b] += (d * ad[c]) * (float)isum[b] - (dmin * ad[c]) * (float)summin;
			}
		}
	}
	Q_EPILOGUE(;);
}

/*
 * q6_K (210 bytes: ql[128], qh[64], 16 int8 scales, d): 16 groups of 16; element e = 128 h + 32 k + l is
 * (nibble k / 2 of ql[64 h + 32 (k & 1) + l] | bits 2k, 2k + 1 of qh[32 h + l] << 4) - 32. Each super-block adds
 * (d * dx) * sum_g sc[g] * (q . x over g).
 */
kernel void q_mm_q6_k(global const uchar *W, ulong stride, uint nb, uint rows, global const char *aq,
                      global const float *ad, global const short *aux, global float *Y, uint b0, uint nbat)
{
	int isum[Q_BATCH];

	Q_PROLOGUE;
	if (row < rows) {
		for (uint i = u; i < nb; i += Q_LANES) {
			global const uchar *w = W + row * stride + (size_t)i * 210;
			global const char *sc = (global const char *)(w + 192);
			float d = q_h(w + 208);

			for (uint b = 0; b < nbat; b++)
				isum[b] = 0;
			for (int g = 0; g < 16; g++) {
				int h = g / 8, k = (g % 8) / 2, l0 = 16 * (g & 1);
				uchar16 ql = vload16(0, w + 64 * h + 32 * (k & 1) + l0), qh = vload16(0, w + 128 + 32 * h + l0);
				short16 q = convert_short16(((ql >> (uchar16)(4 * (k >> 1))) & (uchar16)15) |
				                            (((qh >> (uchar16)(2 * k)) & (uchar16)3) << (uchar16)4)) -
				            (short16)32;

				for (uint b = 0; b < nbat; b++)
					isum[b] += sc[g] * q_idot16(q, aq + ((size_t)(b0 + b) * nb + i) * 256 + 16 * g);
			}
			for (uint b = 0; b < nbat; b++) {
				size_t c = (size_t)(b0 + b) * nb + i;

				acc[b] += (d * ad[c]) * (float)isum[b];
			}
		}
	}
	Q_EPILOGUE(;);
}

/* ---- one work-item per row (CPU devices) -------------------------------------------------------------------------
 * Work-item r does row r for columns b0 .. b0 + nbat - 1: per block, the weights unpacked once as vectors, then for
 * each column the 8 lane sums (products 4u..4u+3) at once and acc = fma(dw * dx, lanes, acc) on a float8.
 */

/* ggml's hsum_float_8 (libcck's lanes8_sum). */
static inline float q_hsum8(float8 v)
{
	float4 t = v.hi + v.lo;

	return (t.s0 + t.s2) + (t.s1 + t.s3);
}

/* The 8 lane sums of a 32-block: the weights' low half lo (elements 0..15) and high half hi with the activations a. */
static inline float8 q_lanes16(short16 lo, short16 hi, global const char *a)
{
	short16 pl = lo * convert_short16(vload16(0, a)), ph = hi * convert_short16(vload16(1, a));
	short8 tl = pl.even + pl.odd, th = ph.even + ph.odd;

	return convert_float8((short8)(tl.even + tl.odd, th.even + th.odd));
}

#define Q_ROWS_PROLOGUE                                                                                                \
	const size_t row = get_global_id(0);                                                                           \
	float8 acc[Q_BATCH];                                                                                           \
	if (row >= rows)                                                                                               \
		return;                                                                                                \
	for (uint b = 0; b < nbat; b++)                                                                                \
		acc[b] = (float8)(0.0f)

kernel void q_mm_q4_0_rows(global const uchar *W, ulong stride, uint nb, uint rows, global const char *aq,
                           global const float *ad, global const float *aux, global float *Y, uint b0, uint nbat)
{
	global const uchar *w = W + get_global_id(0) * stride;

	Q_ROWS_PROLOGUE;
	for (uint i = 0; i < nb; i++, w += 18) {
		float dw = q_h(w);
		uchar16 qs = vload16(0, w + 2);
		short16 lo = convert_short16(qs & (uchar16)15) - (short16)8, hi = convert_short16(qs >> (uchar16)4) - (short16)8;

		for (uint b = 0; b < nbat; b++) {
			size_t c = (size_t)(b0 + b) * nb + i;

			acc[b] = fma((float8)(dw * ad[c]), q_lanes16(lo, hi, aq + c * 32), acc[b]);
		}
	}
	for (uint b = 0; b < nbat; b++)
		Y[(size_t)(b0 + b) * rows + row] = q_hsum8(acc[b]);
}

kernel void q_mm_q4_1_rows(global const uchar *W, ulong stride, uint nb, uint rows, global const char *aq,
                           global const float *ad, global const float *aux, global float *Y, uint b0, uint nbat)
{
	global const uchar *w = W + get_global_id(0) * stride;
	float sm[Q_BATCH];

	Q_ROWS_PROLOGUE;
	for (uint b = 0; b < nbat; b++)
		sm[b] = 0.0f;
	for (uint i = 0; i < nb; i++, w += 20) {
		float dw = q_h(w), mw = q_h(w + 2);
		uchar16 qs = vload16(0, w + 4);
		short16 lo = convert_short16(qs & (uchar16)15), hi = convert_short16(qs >> (uchar16)4);

		for (uint b = 0; b < nbat; b++) {
			size_t c = (size_t)(b0 + b) * nb + i;

			sm[b] = fma(mw, aux[c], sm[b]);
			acc[b] = fma((float8)(dw * ad[c]), q_lanes16(lo, hi, aq + c * 32), acc[b]);
		}
	}
	for (uint b = 0; b < nbat; b++)
		Y[(size_t)(b0 + b) * rows + row] = q_hsum8(acc[b]) + sm[b];
}

/* q8_0: products of two int8 (up to 2^14 each) summed in int. */
kernel void q_mm_q8_0_rows(global const uchar *W, ulong stride, uint nb, uint rows, global const char *aq,
                           global const float *ad, global const float *aux, global float *Y, uint b0, uint nbat)
{
	global const uchar *w = W + get_global_id(0) * stride;

	Q_ROWS_PROLOGUE;
	for (uint i = 0; i < nb; i++, w += 34) {
		float dw = q_h(w);
		global const char *qs = (global const char *)(w + 2);
		int16 lo = convert_int16(vload16(0, qs)), hi = convert_int16(vload16(1, qs));

		for (uint b = 0; b < nbat; b++) {
			size_t c = (size_t)(b0 + b) * nb + i;
			global const char *a = aq + c * 32;
			int16 pl = lo * convert_int16(vload16(0, a)), ph = hi * convert_int16(vload16(1, a));
			int8 tl = pl.even + pl.odd, th = ph.even + ph.odd;

			acc[b] = fma((float8)(dw * ad[c]), convert_float8((int8)(tl.even + tl.odd, th.even + th.odd)), acc[b]);
		}
	}
	for (uint b = 0; b < nbat; b++)
		Y[(size_t)(b0 + b) * rows + row] = q_hsum8(acc[b]);
}

/* ---- float weights (f32, f16) --------------------------------------------------------------------------------------
 * As libcck's vdot of these types (the x86 tiers'; its scalar tier sums f16 in double):
 *  - f32 (quant_scalar.c's vdot_f32, on every tier): each product w_i x_i rounded to float, summed in double in
 *    element order, the sum rounded to float. X is used as it is (no activation kernel).
 *  - f16 (quant_simd.inc's qs_vdot_f16, ggml's vec_dot_f16): x rounded to f16 first (q_act_f16, kept as the float
 *    it is), then 4 accumulators of 8 lanes: element 32c + 8k + l goes to fma into accumulator k, lane l; the
 *    elements past the last whole 32 by 8s into accumulator 0; the lanes of (a0 + a1) + (a2 + a3) added as
 *    hsum_float_8; plus the last n % 8 products, each rounded, summed in float in order.
 * Weights are read as bytes (vload of uchar): a row may start at any byte, as libcck allows.
 */

/* The float of each element of x rounded to f16 (libcck's f16 activation row, cck__f32_to_f16). */
kernel void q_act_f16(global const float *x, ulong n, global float *ah)
{
	size_t i = get_global_id(0);

	if (i < n)
		ah[i] = q_as_half(x[i]);
}

/* 8 halves (their bits) to floats, exactly: ccg_half_to_float on a vector. */
static inline float8 q_half8(ushort8 h)
{
	uint8 x = convert_uint8(h), sign = (x & 0x8000u) << 16, exp = (x >> 10) & 0x1fu, man = x & 0x3ffu;
	uint8 nrm = sign | ((exp + 112u) << 23) | (man << 13), inf = sign | 0x7f800000u | (man << 13);
	uint8 sub = sign | as_uint8(convert_float8(man) * 0x1p-24f); /* man * 2^-24: exact */

	return as_float8(select(select(nrm, inf, exp == (uint8)0x1fu), sub, exp == (uint8)0));
}

/* The f32 at p + 4 i and the f16 at p + 2 i, p any byte address. */
static inline float q_f32_at(global const uchar *p, size_t i)
{
	return as_float(vload4(i, p));
}

static inline float q_f16_at(global const uchar *p, size_t i)
{
	return ccg_half_to_float(as_ushort(vload2(i, p)));
}

/* The f32 dot of the row at w with x (n floats) in libcck's order; without fp64 a float pair (TwoSum) stands in
 * for the double (not bit-exact then: within an ulp of the result and about n 2^-48 sum |w x|). */
static inline float q_dot_f32(global const uchar *w, global const float *x, uint n)
{
#ifdef CCG_FP64
	double s = 0.0;

	for (uint i = 0; i < n; i++)
		s += (double)(q_f32_at(w, i) * x[i]);
	return (float)s;
#else
	float hi = 0.0f, lo = 0.0f;

	for (uint i = 0; i < n; i++) {
		float p = q_f32_at(w, i) * x[i], s = hi + p, bp = s - hi, e = (hi - (s - bp)) + (p - bp);

		hi = s;
		lo += e;
	}
	return hi + lo;
#endif
}

/* f32, a work-item per row: the columns one after the other (each a sequential sum). */
kernel void q_mm_f32_rows(global const uchar *W, ulong stride, uint nb, uint rows, global const float *aq,
                          global const float *ad, global const float *aux, global float *Y, uint b0, uint nbat)
{
	const size_t row = get_global_id(0);

	if (row >= rows)
		return;
	for (uint b = 0; b < nbat; b++)
		Y[(size_t)(b0 + b) * rows + row] = q_dot_f32(W + row * stride, aq + (size_t)(b0 + b) * nb, nb);
}

/* f32, Q_LANES work-items per row: libcck's sum is sequential, so the lanes split the columns (u, u + Q_LANES, ..),
 * not the row. */
kernel void q_mm_f32(global const uchar *W, ulong stride, uint nb, uint rows, global const float *aq,
                     global const float *ad, global const float *aux, global float *Y, uint b0, uint nbat)
{
	const uint u = get_local_id(0);
	const size_t row = get_group_id(1) * get_local_size(1) + get_local_id(1);

	if (row >= rows)
		return;
	for (uint b = u; b < nbat; b += Q_LANES)
		Y[(size_t)(b0 + b) * rows + row] = q_dot_f32(W + row * stride, aq + (size_t)(b0 + b) * nb, nb);
}

/* The last n % 8 products of an f16 row from element i, each rounded, summed in order (qs_vdot_f16's tail). */
static inline float q_tail_f16(global const uchar *w, global const float *x, uint i, uint n)
{
	float t = 0.0f;

	for (; i < n; i++)
		t += q_f16_at(w, i) * x[i];
	return t;
}

/* f16, a work-item per row: the 4 accumulators as float8s, per column. */
kernel void q_mm_f16_rows(global const uchar *W, ulong stride, uint nb, uint rows, global const float *aq,
                          global const float *ad, global const float *aux, global float *Y, uint b0, uint nbat)
{
	const size_t row = get_global_id(0);
	global const uchar *w = W + row * stride;

	if (row >= rows)
		return;
	for (uint b = 0; b < nbat; b++) {
		global const float *x = aq + (size_t)(b0 + b) * nb;
		float8 a0 = (float8)(0.0f), a1 = a0, a2 = a0, a3 = a0;
		uint i = 0;

		for (; nb - i >= 32; i += 32) {
			a0 = fma(q_half8(as_ushort8(vload16(0, w + 2 * i))), vload8(0, x + i), a0);
			a1 = fma(q_half8(as_ushort8(vload16(0, w + 2 * i + 16))), vload8(0, x + i + 8), a1);
			a2 = fma(q_half8(as_ushort8(vload16(0, w + 2 * i + 32))), vload8(0, x + i + 16), a2);
			a3 = fma(q_half8(as_ushort8(vload16(0, w + 2 * i + 48))), vload8(0, x + i + 24), a3);
		}
		for (; nb - i >= 8; i += 8)
			a0 = fma(q_half8(as_ushort8(vload16(0, w + 2 * i))), vload8(0, x + i), a0);
		Y[(size_t)(b0 + b) * rows + row] = q_hsum8((a0 + a1) + (a2 + a3)) + q_tail_f16(w, x, i, nb);
	}
}

/* f16, Q_LANES work-items per row: lane u holds lane u of the 4 accumulators; lane 0 also sums the tail. */
kernel void q_mm_f16(global const uchar *W, ulong stride, uint nb, uint rows, global const float *aq,
                     global const float *ad, global const float *aux, global float *Y, uint b0, uint nbat)
{
	local float tails[Q_ROWS][Q_BATCH];

	Q_PROLOGUE;
	if (row < rows) {
		global const uchar *w = W + row * stride;

		for (uint b = 0; b < nbat; b++) {
			global const float *x = aq + (size_t)(b0 + b) * nb;
			float4 a = (float4)(0.0f);
			uint i = 0;

			for (; nb - i >= 32; i += 32) {
				a.s0 = fma(q_f16_at(w, i + u), x[i + u], a.s0);
				a.s1 = fma(q_f16_at(w, i + 8 + u), x[i + 8 + u], a.s1);
				a.s2 = fma(q_f16_at(w, i + 16 + u), x[i + 16 + u], a.s2);
				a.s3 = fma(q_f16_at(w, i + 24 + u), x[i + 24 + u], a.s3);
			}
			for (; nb - i >= 8; i += 8)
				a.s0 = fma(q_f16_at(w, i + u), x[i + u], a.s0);
			acc[b] = (a.s0 + a.s1) + (a.s2 + a.s3);
			if (u == 0)
				tails[lr][b] = q_tail_f16(w, x, i, nb);
		}
	}
	Q_EPILOGUE(+tails[lr][b]);
}
