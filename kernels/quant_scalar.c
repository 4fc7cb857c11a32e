/* SPDX-License-Identifier: MIT */
/* quant_scalar.c: scalar reference kernels of the quantized types: dequantize, quantize, dot products. */
/*
 * Every function here is the reference the SIMD tiers are checked against:
 *  - dequant gives what gguf-py's gguf.quants.dequantize (and ggml's dequantize_row_*) gives, bit for
 *    bit: each element is computed in float with the same operations in the same order. That needs
 *    separate float roundings, so this file must never be built with FMA contraction (it is built
 *    without -mfma on x86; elsewhere build it with -ffp-contract=off).
 *  - quant follows ggml's quantize_row_*_ref (the activation quantizers q8_0, q8_1 and q8_K included,
 *    which the dot products rely on).
 *  - act_quant (what the dot products quantize activations with) follows the x86 code llama.cpp
 *    runs instead where it differs from the _ref code: q8_0 and q8_1 (quant_q8_x86 below).
 *  - vdot multiplies a weight row with an activation row already quantized to the act type:
 *    integer sums per block, then scaled by the float scales. The 32-element types q4_0, q4_1,
 *    q5_0, q5_1 and q8_0 sum in ggml's x86 (AVX2) order, which the SIMD tiers compute bit for bit:
 *    8 float lanes, lane u of block b += (dw * dx) * (float)(sum of products 4u..4u+3) by an FMA,
 *    then the lanes added as ggml's hsum_float_8 [+ the sum of m * s by FMAs, for the _1 types].
 *    The others sum in float across blocks, as ggml's generic vec_dot (SIMD tiers differ only by
 *    float summation order): a 256-super-block adds (dw * dx) * (float)isum - (dminw * dx) * (float)summin.
 * Blocks are read byte by byte (little-endian, as GGUF stores them), so rows may sit at any address.
 */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "quant.h"

#define GROUP_MAX_EPS 1e-15f /* ggml: a group whose |max| is below this quantizes to zero */

/* ---- loads, stores, conversions ------------------------------------------ */

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline float rdf32(const uint8_t *p)
{
	uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

static inline void wrf32(uint8_t *p, float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	p[0] = (uint8_t)u;
	p[1] = (uint8_t)(u >> 8);
	p[2] = (uint8_t)(u >> 16);
	p[3] = (uint8_t)(u >> 24);
}

static inline uint32_t f2u(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static inline float u2f(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

/* Half -> float is exact; a NaN keeps its payload (shifted), as numpy and ggml's software path do. */
float cck__f16_to_f32(cck_f16 h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;

	if (exp == 0x1f)
		return u2f(sign | 0x7f800000 | mant << 13);
	if (exp == 0) {
		uint32_t e = 113; /* biased float exponent of 2^-14, the half subnormal scale */

		if (!mant)
			return u2f(sign);
		while (!(mant & 0x400)) { /* normalise: mant * 2^-24 */
			mant <<= 1;
			e--;
		}
		return u2f(sign | e << 23 | (mant & 0x3ff) << 13);
	}
	return u2f(sign | (exp + 112) << 23 | mant << 13);
}

/*
 * Float -> half, round to nearest even, overflow to +-inf, gradual underflow.
 * A NaN stays a NaN of the same sign, quieted, with the top payload bits
 * (what F16C's vcvtps2ph gives, so the SIMD tiers can use it).
 */
cck_f16 cck__f32_to_f16(float f)
{
	uint32_t u = f2u(f), a = u & 0x7fffffff, r, rem;
	uint16_t sign = (uint16_t)((u >> 16) & 0x8000);

	if (a > 0x7f800000)
		return (cck_f16)(sign | 0x7e00 | ((a >> 13) & 0x3ff));
	if (a >= 0x477ff000) /* >= 65520: rounds to inf (65504 has an odd mantissa) */
		return (cck_f16)(sign | 0x7c00);
	if (a < 0x38800000) { /* below 2^-14: half subnormal (or zero) */
		uint32_t e = a >> 23, m = (a & 0x7fffff) | 0x800000, shift;

		if (a <= 0x33000000) /* <= 2^-25: half way to 2^-24 or less, rounds to (even) zero */
			return sign;
		shift = 126 - e; /* value = m * 2^(e - 150) = (m >> shift) * 2^-24; 14 <= shift <= 24 */
		r = m >> shift;
		rem = m & ((1u << shift) - 1);
		if (rem > 1u << (shift - 1) || (rem == 1u << (shift - 1) && (r & 1)))
			r++; /* may carry into the smallest normal, whose encoding is r == 0x400 */
		return (cck_f16)(sign | r);
	}
	/* normal: rebias the exponent (127 -> 15) and drop 13 mantissa bits; a carry bumps the exponent */
	r = (a - 0x38000000) >> 13;
	rem = a & 0x1fff;
	if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
		r++;
	return (cck_f16)(sign | r);
}

float cck__bf16_to_f32(cck_bf16 h)
{
	return u2f((uint32_t)h << 16);
}

/* As ggml_compute_fp32_to_bf16: a NaN is quieted (bit 6 of the bf16), else round to nearest even. */
cck_bf16 cck__f32_to_bf16(float f)
{
	uint32_t u = f2u(f);

	if ((u & 0x7fffffff) > 0x7f800000)
		return (cck_bf16)((u >> 16) | 64);
	return (cck_bf16)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

static inline float h2f(const uint8_t *p)
{
	return cck__f16_to_f32(rd16(p));
}

/* ggml's nearest_int: round half to even by the 1.5 * 2^23 trick (valid for |f| < 2^22). */
static inline int nearest_int(float f)
{
	float v = f + 12582912.f;

	return (int)(f2u(v) & 0x007fffff) - 0x00400000;
}

/*
 * C conversion float -> int8_t as ggml's reference code does it on x86
 * ((int8_t)f: cvttss2si, then keep the low byte), defined for every input:
 * NaN and out-of-range values give INT32_MIN, i.e. 0 after truncation.
 */
static inline int8_t f2i8(float f)
{
	int32_t i = (f > -2147483648.f && f < 2147483648.f) ? (int32_t)f : INT32_MIN;

	return (int8_t)(uint8_t)(uint32_t)i;
}

/* Offsets of the block fields in bytes. */
#define OFF(type, field) offsetof(struct cck_block_##type, field)
#define BYTES(type) sizeof(struct cck_block_##type)

/* ---- f32, f16, bf16 ------------------------------------------------------- */

static void dequant_f32(const void *src, float *dst, size_t nb)
{
	memcpy(dst, src, nb * sizeof(float));
}

static void quant_f32(const float *src, void *dst, size_t n)
{
	memcpy(dst, src, n * sizeof(float));
}

static void dequant_f16(const void *src, float *dst, size_t nb)
{
	const uint8_t *p = src;

	for (size_t i = 0; i < nb; i++)
		dst[i] = h2f(p + 2 * i);
}

static void quant_f16(const float *src, void *dst, size_t n)
{
	uint8_t *p = dst;

	for (size_t i = 0; i < n; i++)
		wr16(p + 2 * i, cck__f32_to_f16(src[i]));
}

static void dequant_bf16(const void *src, float *dst, size_t nb)
{
	const uint8_t *p = src;

	for (size_t i = 0; i < nb; i++)
		dst[i] = cck__bf16_to_f32(rd16(p + 2 * i));
}

static void quant_bf16(const float *src, void *dst, size_t n)
{
	uint8_t *p = dst;

	for (size_t i = 0; i < n; i++)
		wr16(p + 2 * i, cck__f32_to_bf16(src[i]));
}

/* The float-valued types: products in float, summed in double (ggml's vec_dot_f16 / _bf16 / _f32). */
static float vdot_f32(size_t n, const void *w, const void *act)
{
	const uint8_t *a = w;
	const float *x = act;
	double s = 0;

	for (size_t i = 0; i < n; i++)
		s += (double)(rdf32(a + 4 * i) * x[i]);
	return (float)s;
}

static float vdot_f16(size_t n, const void *w, const void *act)
{
	const uint8_t *a = w, *x = act;
	double s = 0;

	for (size_t i = 0; i < n; i++)
		s += (double)(h2f(a + 2 * i) * h2f(x + 2 * i));
	return (float)s;
}

static float vdot_bf16(size_t n, const void *w, const void *act)
{
	const uint8_t *a = w, *x = act;
	double s = 0;

	for (size_t i = 0; i < n; i++)
		s += (double)(cck__bf16_to_f32(rd16(a + 2 * i)) * cck__bf16_to_f32(rd16(x + 2 * i)));
	return (float)s;
}

/* ---- 32-element blocks ---------------------------------------------------- */

/*
 * Quants of one 32-block as integers: q4_0 (q - 8), q4_1 q, q5_0 (q - 16),
 * q5_1 q, with q = nibble | 5th bit << 4. Element j < 16 is the low nibble of
 * qs[j], element j + 16 the high nibble; the 5th bit of element j is bit j of
 * the little-endian 32-bit qh.
 */
static void unpack_nib(const uint8_t *qs, const uint8_t *qh, int off, int8_t q[CCK_QK])
{
	uint32_t h = qh ? (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24 : 0;

	for (int j = 0; j < CCK_QK / 2; j++) {
		q[j] = (int8_t)(((qs[j] & 0x0f) | ((h >> j) & 1) << 4) - off);
		q[j + 16] = (int8_t)(((qs[j] >> 4) | ((h >> (j + 16)) & 1) << 4) - off);
	}
}

static void dequant_q4_0(const void *src, float *dst, size_t nb)
{
	const uint8_t *b = src;
	int8_t q[CCK_QK];

	for (size_t i = 0; i < nb; i++, b += BYTES(q4_0), dst += CCK_QK) {
		float d = h2f(b + OFF(q4_0, d));

		unpack_nib(b + OFF(q4_0, qs), NULL, 8, q);
		for (int j = 0; j < CCK_QK; j++)
			dst[j] = (float)q[j] * d;
	}
}

static void dequant_q4_1(const void *src, float *dst, size_t nb)
{
	const uint8_t *b = src;
	int8_t q[CCK_QK];

	for (size_t i = 0; i < nb; i++, b += BYTES(q4_1), dst += CCK_QK) {
		float d = h2f(b + OFF(q4_1, d)), m = h2f(b + OFF(q4_1, m));

		unpack_nib(b + OFF(q4_1, qs), NULL, 0, q);
		for (int j = 0; j < CCK_QK; j++)
			dst[j] = (float)q[j] * d + m; /* two roundings, no FMA */
	}
}

static void dequant_q5_0(const void *src, float *dst, size_t nb)
{
	const uint8_t *b = src;
	int8_t q[CCK_QK];

	for (size_t i = 0; i < nb; i++, b += BYTES(q5_0), dst += CCK_QK) {
		float d = h2f(b + OFF(q5_0, d));

		unpack_nib(b + OFF(q5_0, qs), b + OFF(q5_0, qh), 16, q);
		for (int j = 0; j < CCK_QK; j++)
			dst[j] = (float)q[j] * d;
	}
}

static void dequant_q5_1(const void *src, float *dst, size_t nb)
{
	const uint8_t *b = src;
	int8_t q[CCK_QK];

	for (size_t i = 0; i < nb; i++, b += BYTES(q5_1), dst += CCK_QK) {
		float d = h2f(b + OFF(q5_1, d)), m = h2f(b + OFF(q5_1, m));

		unpack_nib(b + OFF(q5_1, qs), b + OFF(q5_1, qh), 0, q);
		for (int j = 0; j < CCK_QK; j++)
			dst[j] = (float)q[j] * d + m;
	}
}

static void dequant_q8_0(const void *src, float *dst, size_t nb)
{
	const uint8_t *b = src;

	for (size_t i = 0; i < nb; i++, b += BYTES(q8_0), dst += CCK_QK) {
		const int8_t *qs = (const int8_t *)(b + OFF(q8_0, qs));
		float d = h2f(b + OFF(q8_0, d));

		for (int j = 0; j < CCK_QK; j++)
			dst[j] = (float)qs[j] * d;
	}
}

static void dequant_q8_1(const void *src, float *dst, size_t nb)
{
	const uint8_t *b = src;

	for (size_t i = 0; i < nb; i++, b += BYTES(q8_1), dst += CCK_QK) {
		const int8_t *qs = (const int8_t *)(b + OFF(q8_1, qs));
		float d = h2f(b + OFF(q8_1, d));

		for (int j = 0; j < CCK_QK; j++)
			dst[j] = (float)qs[j] * d;
	}
}

/* quantize_row_q4_0_ref / q5_0: d = max / -2^(bits-1) (max: the element of largest |x|), q = trunc(x / d + 2^(bits-1) +
 * .5). */
static void quant_sym(const float *x, uint8_t *b, int bits, size_t n, size_t bytes, size_t off_qs, size_t off_qh)
{
	const float half = (float)(1 << (bits - 1));
	const int qmax = (1 << bits) - 1;

	for (size_t i = 0; i < n / CCK_QK; i++, x += CCK_QK, b += bytes) {
		float amax = 0.0f, max = 0.0f, d, id;
		uint32_t qh = 0;

		for (int j = 0; j < CCK_QK; j++)
			if (amax < fabsf(x[j])) {
				amax = fabsf(x[j]);
				max = x[j];
			}
		d = max / -half;
		id = d != 0.0f ? 1.0f / d : 0.0f;
		wr16(b, cck__f32_to_f16(d));
		for (int j = 0; j < CCK_QK / 2; j++) {
			int8_t v0 = f2i8(x[j] * id + (half + 0.5f)), v1 = f2i8(x[j + 16] * id + (half + 0.5f));
			uint8_t q0 = (uint8_t)(v0 < qmax ? v0 : qmax), q1 = (uint8_t)(v1 < qmax ? v1 : qmax);

			b[off_qs + j] = (uint8_t)((q0 & 0x0f) | (q1 & 0x0f) << 4);
			qh |= (uint32_t)((q0 >> 4) & 1) << j | (uint32_t)((q1 >> 4) & 1) << (j + 16);
		}
		if (off_qh) {
			b[off_qh] = (uint8_t)qh;
			b[off_qh + 1] = (uint8_t)(qh >> 8);
			b[off_qh + 2] = (uint8_t)(qh >> 16);
			b[off_qh + 3] = (uint8_t)(qh >> 24);
		}
	}
}

/* quantize_row_q4_1_ref / q5_1: d = (max - min) / (2^bits - 1), m = min, q = trunc((x - min) / d + .5). */
static void quant_asym(const float *x, uint8_t *b, int bits, size_t n, size_t bytes, size_t off_qs, size_t off_qh)
{
	const int qmax = (1 << bits) - 1;

	for (size_t i = 0; i < n / CCK_QK; i++, x += CCK_QK, b += bytes) {
		float min = FLT_MAX, max = -FLT_MAX, d, id; /* as ggml */
		uint32_t qh = 0;

		for (int j = 0; j < CCK_QK; j++) {
			if (x[j] < min)
				min = x[j];
			if (x[j] > max)
				max = x[j];
		}
		d = (max - min) / (float)qmax;
		id = d != 0.0f ? 1.0f / d : 0.0f;
		wr16(b, cck__f32_to_f16(d));
		wr16(b + 2, cck__f32_to_f16(min));
		for (int j = 0; j < CCK_QK / 2; j++) {
			/* ggml clamps q4_1 with MIN(15, (int8_t)v) and casts q5_1 with (uint8_t)v: same for v < 32 */
			int8_t v0 = f2i8((x[j] - min) * id + 0.5f), v1 = f2i8((x[j + 16] - min) * id + 0.5f);
			uint8_t q0 = (uint8_t)(bits == 4 && v0 > qmax ? qmax : v0);
			uint8_t q1 = (uint8_t)(bits == 4 && v1 > qmax ? qmax : v1);

			b[off_qs + j] = (uint8_t)((q0 & 0x0f) | (q1 & 0x0f) << 4);
			qh |= (uint32_t)((q0 >> 4) & 1) << j | (uint32_t)((q1 >> 4) & 1) << (j + 16);
		}
		if (off_qh) {
			b[off_qh] = (uint8_t)qh;
			b[off_qh + 1] = (uint8_t)(qh >> 8);
			b[off_qh + 2] = (uint8_t)(qh >> 16);
			b[off_qh + 3] = (uint8_t)(qh >> 24);
		}
	}
}

static void quant_q4_0(const float *src, void *dst, size_t n)
{
	quant_sym(src, dst, 4, n, BYTES(q4_0), OFF(q4_0, qs), 0);
}

static void quant_q5_0(const float *src, void *dst, size_t n)
{
	quant_sym(src, dst, 5, n, BYTES(q5_0), OFF(q5_0, qs), OFF(q5_0, qh));
}

static void quant_q4_1(const float *src, void *dst, size_t n)
{
	quant_asym(src, dst, 4, n, BYTES(q4_1), OFF(q4_1, qs), 0);
}

static void quant_q5_1(const float *src, void *dst, size_t n)
{
	quant_asym(src, dst, 5, n, BYTES(q5_1), OFF(q5_1, qs), OFF(q5_1, qh));
}

/*
 * quantize_row_q8_0_ref / q8_1_ref: d = amax / 127, q = roundf(x / d) (half
 * away from zero, via x * (1/d)); q8_1 also stores s = d * sum(q) as f16
 * (with the float d, not its f16 rounding).
 */
static void quant_q8(const float *x, uint8_t *b, size_t n, int with_sum)
{
	const size_t bytes = with_sum ? BYTES(q8_1) : BYTES(q8_0);
	const size_t off_qs = with_sum ? OFF(q8_1, qs) : OFF(q8_0, qs);

	for (size_t i = 0; i < n / CCK_QK; i++, x += CCK_QK, b += bytes) {
		float amax = 0.0f, d, id;
		int sum = 0;

		for (int j = 0; j < CCK_QK; j++)
			amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]); /* MAX(amax, |x|) as ggml */
		d = amax / 127.0f;
		id = d != 0.0f ? 1.0f / d : 0.0f;
		wr16(b, cck__f32_to_f16(d));
		for (int j = 0; j < CCK_QK; j++) {
			int8_t q = f2i8(roundf(x[j] * id));

			b[off_qs + j] = (uint8_t)q;
			sum += q;
		}
		if (with_sum)
			wr16(b + OFF(q8_1, s), cck__f32_to_f16((float)sum * d));
	}
}

static void quant_q8_0(const float *src, void *dst, size_t n)
{
	quant_q8(src, dst, n, 0);
}

static void quant_q8_1(const float *src, void *dst, size_t n)
{
	quant_q8(src, dst, n, 1);
}

/* _mm256_cvtps_epi32 of an integral float: INT32_MIN for NaN and out of range. */
static inline int32_t cvt_i32(float f)
{
	return (f >= -2147483648.f && f < 2147483648.f) ? (int32_t)f : INT32_MIN;
}

/*
 * ggml-cpu's x86 quantize_row_q8_0 / q8_1 (AVX2; what llama.cpp's dot products use there):
 * d = amax / 127 (stored f16), id = amax ? 127 / amax : 0, q = x * id rounded half to even
 * (_mm256_round_ps), converted to int32 and saturated to int8 (packs); q8_1: s = f16(d * sum q)
 * with the float d and the int32 sum of the unsaturated q (wrapping, as the vector adds).
 */
static void quant_q8_x86(const float *x, uint8_t *b, size_t n, int with_sum)
{
	const size_t bytes = with_sum ? BYTES(q8_1) : BYTES(q8_0);
	const size_t off_qs = with_sum ? OFF(q8_1, qs) : OFF(q8_0, qs);

	for (size_t i = 0; i < n / CCK_QK; i++, x += CCK_QK, b += bytes) {
		float amax = 0.0f, d, id;
		uint32_t sum = 0;

		for (int j = 0; j < CCK_QK; j++)
			amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
		d = amax / 127.0f;
		id = amax != 0.0f ? 127.0f / amax : 0.0f;
		wr16(b, cck__f32_to_f16(d));
		for (int j = 0; j < CCK_QK; j++) {
			int32_t q = cvt_i32(nearbyintf(x[j] * id));

			b[off_qs + j] = (uint8_t)(int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);
			sum += (uint32_t)q;
		}
		if (with_sum)
			wr16(b + OFF(q8_1, s), cck__f32_to_f16(d * (float)(int32_t)sum));
	}
}

static void act_quant_q8_0(const float *src, void *dst, size_t n)
{
	quant_q8_x86(src, dst, n, 0);
}

static void act_quant_q8_1(const float *src, void *dst, size_t n)
{
	quant_q8_x86(src, dst, n, 1);
}

/* sum over a 32-block of w[j] * a[j] in int (exact: |sum| <= 32 * 128 * 128). */
static inline int isum32(const int8_t *w, const int8_t *a)
{
	int s = 0;

	for (int j = 0; j < CCK_QK; j++)
		s += w[j] * a[j];
	return s;
}

/*
 * ggml's x86 dot order for the 32-element types: 8 float lanes; block b adds
 * fma(dw * dx, (float)(products 4u..4u+3 summed), lane u) to lane u (as the AVX2
 * code's _mm256_fmadd_ps of the vpdpbusd / maddubs lanes), and at the end
 * hsum_float_8: t_u = lane u + lane u + 4, then (t0 + t2) + (t1 + t3).
 */
struct lanes8 {
	float v[8];
};

static inline void lanes8_add(struct lanes8 *acc, float d, const int8_t *w, const int8_t *a)
{
	for (int u = 0; u < 8; u++) {
		int s = 0;

		for (int j = 4 * u; j < 4 * u + 4; j++)
			s += w[j] * a[j];
		acc->v[u] = fmaf(d, (float)s, acc->v[u]);
	}
}

static inline float lanes8_sum(const struct lanes8 *acc)
{
	float t[4];

	for (int u = 0; u < 4; u++)
		t[u] = acc->v[u + 4] + acc->v[u];
	return (t[0] + t[2]) + (t[1] + t[3]);
}

/* q4_0 / q5_0 x q8_0: sum_b (dw * dx) * sum_j (q_j - off) x_j */
static float vdot_q4_0(size_t n, const void *w, const void *act)
{
	const uint8_t *b = w, *a = act;
	struct lanes8 acc = {{0}};
	int8_t q[CCK_QK];

	for (size_t i = 0; i < n / CCK_QK; i++, b += BYTES(q4_0), a += BYTES(q8_0)) {
		unpack_nib(b + OFF(q4_0, qs), NULL, 8, q);
		lanes8_add(&acc, h2f(b + OFF(q4_0, d)) * h2f(a + OFF(q8_0, d)), q, (const int8_t *)(a + OFF(q8_0, qs)));
	}
	return lanes8_sum(&acc);
}

static float vdot_q5_0(size_t n, const void *w, const void *act)
{
	const uint8_t *b = w, *a = act;
	struct lanes8 acc = {{0}};
	int8_t q[CCK_QK];

	for (size_t i = 0; i < n / CCK_QK; i++, b += BYTES(q5_0), a += BYTES(q8_0)) {
		unpack_nib(b + OFF(q5_0, qs), b + OFF(q5_0, qh), 16, q);
		lanes8_add(&acc, h2f(b + OFF(q5_0, d)) * h2f(a + OFF(q8_0, d)), q, (const int8_t *)(a + OFF(q8_0, qs)));
	}
	return lanes8_sum(&acc);
}

/*
 * q4_1 / q5_1 x q8_1: sum_b (dw * dx) * sum_j q_j x_j + m * s, s = dx * sum_j x_j from the q8_1
 * block; the m * s terms in their own float sum, one FMA per block (as ggml's summs, which the
 * compiler contracts), added after the lanes.
 */
static float vdot_q4_1(size_t n, const void *w, const void *act)
{
	const uint8_t *b = w, *a = act;
	struct lanes8 acc = {{0}};
	int8_t q[CCK_QK];
	float summs = 0.0f;

	for (size_t i = 0; i < n / CCK_QK; i++, b += BYTES(q4_1), a += BYTES(q8_1)) {
		unpack_nib(b + OFF(q4_1, qs), NULL, 0, q);
		summs = fmaf(h2f(b + OFF(q4_1, m)), h2f(a + OFF(q8_1, s)), summs);
		lanes8_add(&acc, h2f(b + OFF(q4_1, d)) * h2f(a + OFF(q8_1, d)), q, (const int8_t *)(a + OFF(q8_1, qs)));
	}
	return lanes8_sum(&acc) + summs;
}

static float vdot_q5_1(size_t n, const void *w, const void *act)
{
	const uint8_t *b = w, *a = act;
	struct lanes8 acc = {{0}};
	int8_t q[CCK_QK];
	float summs = 0.0f;

	for (size_t i = 0; i < n / CCK_QK; i++, b += BYTES(q5_1), a += BYTES(q8_1)) {
		unpack_nib(b + OFF(q5_1, qs), b + OFF(q5_1, qh), 0, q);
		summs = fmaf(h2f(b + OFF(q5_1, m)), h2f(a + OFF(q8_1, s)), summs);
		lanes8_add(&acc, h2f(b + OFF(q5_1, d)) * h2f(a + OFF(q8_1, d)), q, (const int8_t *)(a + OFF(q8_1, qs)));
	}
	return lanes8_sum(&acc) + summs;
}

static float vdot_q8_0(size_t n, const void *w, const void *act)
{
	const uint8_t *b = w, *a = act;
	struct lanes8 acc = {{0}};

	for (size_t i = 0; i < n / CCK_QK; i++, b += BYTES(q8_0), a += BYTES(q8_0))
		lanes8_add(&acc, h2f(b + OFF(q8_0, d)) * h2f(a + OFF(q8_0, d)), (const int8_t *)(b + OFF(q8_0, qs)),
		           (const int8_t *)(a + OFF(q8_0, qs)));
	return lanes8_sum(&acc);
}

/* q8_1 x q8_1: the plain q * d product (s is only an aid for the _1 weights). */
static float vdot_q8_1(size_t n, const void *w, const void *act)
{
	const uint8_t *b = w, *a = act;
	float s = 0.0f;

	for (size_t i = 0; i < n / CCK_QK; i++, b += BYTES(q8_1), a += BYTES(q8_1))
		s += (h2f(b + OFF(q8_1, d)) * h2f(a + OFF(q8_1, d))) *
		     (float)isum32((const int8_t *)(b + OFF(q8_1, qs)), (const int8_t *)(a + OFF(q8_1, qs)));
	return s;
}

/* ---- 256-element super-blocks (k-quants) ---------------------------------- */

/*
 * Each k-quant super-block unpacks to 256 integer quants q[], integer group
 * scales sc[] and (q2_k, q4_k, q5_k) group mins mn[]; group g covers
 * elements [g * gsize, (g + 1) * gsize). Values: x = d * sc[g] * q - dmin * mn[g]
 * (q2_k, q4_k, q5_k; q >= 0) or x = d * sc[g] * q (q3_k, q6_k; signed q, sc).
 */
struct kblock {
	int8_t q[CCK_QK_K];
	int sc[16];
	int mn[16];
	int gsize, ngroups;
	float d, dmin; /* dmin 0 for the types without mins */
};

/*
 * q2_k: scales[g] = sc | mn << 4 (16 groups of 16). Element e = 128 h + 32 k + l
 * (h < 2, k < 4, l < 32) is bits 2k..2k+1 of qs[32 h + l].
 */
static void unpack_q2_k(const uint8_t *b, struct kblock *k)
{
	const uint8_t *sc = b + OFF(q2_k, scales), *qs = b + OFF(q2_k, qs);

	k->gsize = 16;
	k->ngroups = 16;
	k->d = h2f(b + OFF(q2_k, d));
	k->dmin = h2f(b + OFF(q2_k, dmin));
	for (int g = 0; g < 16; g++) {
		k->sc[g] = sc[g] & 0x0f;
		k->mn[g] = sc[g] >> 4;
	}
	for (int e = 0; e < CCK_QK_K; e++)
		k->q[e] = (int8_t)((qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3);
}

/*
 * q3_k: 16 6-bit scales (stored value - 32): low 4 bits of scale g in byte
 * g % 8 (low nibble for g < 8, high for g >= 8), high 2 bits in byte 8 + g % 4
 * at bit 2 (g / 4). Element e = 128 h + 32 k + l: 2 low bits as in q2_k; bit
 * e / 32 of hmask[e % 32] set means q = low, clear means q = low - 4.
 */
static void unpack_q3_k(const uint8_t *b, struct kblock *k)
{
	const uint8_t *sc = b + OFF(q3_k, scales), *qs = b + OFF(q3_k, qs), *hm = b + OFF(q3_k, hmask);

	k->gsize = 16;
	k->ngroups = 16;
	k->d = h2f(b + OFF(q3_k, d));
	k->dmin = 0.0f;
	for (int g = 0; g < 16; g++) {
		int lo = g < 8 ? sc[g] & 0x0f : sc[g - 8] >> 4, hi = (sc[8 + g % 4] >> (2 * (g / 4))) & 3;

		k->sc[g] = (lo | hi << 4) - 32;
		k->mn[g] = 0;
	}
	for (int e = 0; e < CCK_QK_K; e++) {
		int lo = (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;

		k->q[e] = (int8_t)(lo - ((hm[e % 32] >> (e / 32)) & 1 ? 0 : 4));
	}
}

/*
 * q4_k / q5_k: 8 groups of 32 with 6-bit scales and mins packed in 12 bytes
 * (ggml's get_scale_min_k4): g < 4: sc = s[g] & 63, mn = s[g + 4] & 63;
 * g >= 4: sc = (s[g + 4] & 15) | (s[g - 4] >> 6) << 4, mn = (s[g + 4] >> 4) | (s[g] >> 6) << 4.
 */
static void scale_min_k4(const uint8_t *s, struct kblock *k)
{
	for (int g = 0; g < 8; g++) {
		if (g < 4) {
			k->sc[g] = s[g] & 63;
			k->mn[g] = s[g + 4] & 63;
		} else {
			k->sc[g] = (s[g + 4] & 0x0f) | (s[g - 4] >> 6) << 4;
			k->mn[g] = (s[g + 4] >> 4) | (s[g] >> 6) << 4;
		}
	}
}

/* q4_k: element 32 g + l is the low nibble of qs[32 (g / 2) + l] for even g, the high nibble for odd g. */
static void unpack_q4_k(const uint8_t *b, struct kblock *k)
{
	const uint8_t *qs = b + OFF(q4_k, qs);

	k->gsize = 32;
	k->ngroups = 8;
	k->d = h2f(b + OFF(q4_k, d));
	k->dmin = h2f(b + OFF(q4_k, dmin));
	scale_min_k4(b + OFF(q4_k, scales), k);
	for (int e = 0; e < CCK_QK_K; e++)
		k->q[e] = (int8_t)((qs[32 * (e / 64) + e % 32] >> (4 * ((e / 32) & 1))) & 0x0f);
}

/* q5_k: q4_k's nibbles plus the 5th bit of element 32 g + l in bit g of qh[l]. */
static void unpack_q5_k(const uint8_t *b, struct kblock *k)
{
	const uint8_t *qs = b + OFF(q5_k, qs), *qh = b + OFF(q5_k, qh);

	k->gsize = 32;
	k->ngroups = 8;
	k->d = h2f(b + OFF(q5_k, d));
	k->dmin = h2f(b + OFF(q5_k, dmin));
	scale_min_k4(b + OFF(q5_k, scales), k);
	for (int e = 0; e < CCK_QK_K; e++)
		k->q[e] = (int8_t)(((qs[32 * (e / 64) + e % 32] >> (4 * ((e / 32) & 1))) & 0x0f) |
		                   ((qh[e % 32] >> (e / 32)) & 1) << 4);
}

/*
 * q6_k: 16 int8 scales (groups of 16); q = (4 low bits | 2 high bits << 4) - 32.
 * Element e = 128 h + 32 k + l: low bits from ql[64 h + l + 32 (k & 1)], low
 * nibble for k < 2, high nibble for k >= 2; high bits are bits 2k..2k+1 of qh[32 h + l].
 */
static void unpack_q6_k(const uint8_t *b, struct kblock *k)
{
	const uint8_t *ql = b + OFF(q6_k, ql), *qh = b + OFF(q6_k, qh);
	const int8_t *sc = (const int8_t *)(b + OFF(q6_k, scales));

	k->gsize = 16;
	k->ngroups = 16;
	k->d = h2f(b + OFF(q6_k, d));
	k->dmin = 0.0f;
	for (int g = 0; g < 16; g++) {
		k->sc[g] = sc[g];
		k->mn[g] = 0;
	}
	for (int e = 0; e < CCK_QK_K; e++) {
		int h = e / 128, kk = (e % 128) / 32, l = e % 32;
		int lo = (ql[64 * h + l + 32 * (kk & 1)] >> (4 * (kk >> 1))) & 0x0f;
		int hi = (qh[32 * h + l] >> (2 * kk)) & 3;

		k->q[e] = (int8_t)((lo | hi << 4) - 32);
	}
}

/*
 * Dequantization in gguf-py's operation order: dl = d * sc, ml = dmin * mn
 * (each rounded to float), then dl * q - ml (q2_k, q4_k, q5_k) or dl * q (q3_k, q6_k).
 */
static void dequant_k(const void *src, float *dst, size_t nb, size_t bytes,
                      void (*unpack)(const uint8_t *, struct kblock *))
{
	const uint8_t *b = src;
	struct kblock k;

	for (size_t i = 0; i < nb; i++, b += bytes, dst += CCK_QK_K) {
		unpack(b, &k);
		for (int g = 0; g < k.ngroups; g++) {
			float dl = k.d * (float)k.sc[g], ml = k.dmin * (float)k.mn[g];
			const int8_t *q = k.q + g * k.gsize;
			float *y = dst + g * k.gsize;

			/* q3_k, q6_k: ml = +0, and v - +0 == v bit for bit (-0 and NaN payloads included) */
			for (int l = 0; l < k.gsize; l++)
				y[l] = dl * (float)q[l] - ml;
		}
	}
}

static void dequant_q2_k(const void *src, float *dst, size_t nb)
{
	dequant_k(src, dst, nb, BYTES(q2_k), unpack_q2_k);
}

static void dequant_q3_k(const void *src, float *dst, size_t nb)
{
	dequant_k(src, dst, nb, BYTES(q3_k), unpack_q3_k);
}

static void dequant_q4_k(const void *src, float *dst, size_t nb)
{
	dequant_k(src, dst, nb, BYTES(q4_k), unpack_q4_k);
}

static void dequant_q5_k(const void *src, float *dst, size_t nb)
{
	dequant_k(src, dst, nb, BYTES(q5_k), unpack_q5_k);
}

static void dequant_q6_k(const void *src, float *dst, size_t nb)
{
	dequant_k(src, dst, nb, BYTES(q6_k), unpack_q6_k);
}

static void dequant_q8_k(const void *src, float *dst, size_t nb)
{
	const uint8_t *b = src;

	for (size_t i = 0; i < nb; i++, b += BYTES(q8_k), dst += CCK_QK_K) {
		const int8_t *qs = (const int8_t *)(b + OFF(q8_k, qs));
		float d = rdf32(b + OFF(q8_k, d));

		for (int j = 0; j < CCK_QK_K; j++)
			dst[j] = d * (float)qs[j];
	}
}

/*
 * k-quant x q8_k: per super-block isum = sum_g sc[g] * sum_{e in g} q[e] x[e]
 * and summin = sum_g mn[g] * (sum of x over g, from the q8_k bsums of 16);
 * adds (d * dx) * isum - (dmin * dx) * summin. |isum| < 2^31: at most
 * 256 * 127 * 32 * 128 (q6_k).
 */
static float vdot_k(size_t n, const void *w, const void *act, size_t bytes,
                    void (*unpack)(const uint8_t *, struct kblock *))
{
	const uint8_t *b = w, *a = act;
	struct kblock k;
	float s = 0.0f;

	for (size_t i = 0; i < n / CCK_QK_K; i++, b += bytes, a += BYTES(q8_k)) {
		const int8_t *x = (const int8_t *)(a + OFF(q8_k, qs));
		const uint8_t *bsums = a + OFF(q8_k, bsums);
		float dx = rdf32(a + OFF(q8_k, d));
		int32_t isum = 0, summin = 0;

		unpack(b, &k);
		for (int g = 0; g < k.ngroups; g++) {
			int32_t gs = 0;

			for (int l = 0; l < k.gsize; l++)
				gs += k.q[g * k.gsize + l] * x[g * k.gsize + l];
			isum += k.sc[g] * gs;
			if (k.mn[g]) {
				int32_t bs = 0;

				for (int j = g * k.gsize / 16; j < (g + 1) * k.gsize / 16; j++)
					bs += (int16_t)rd16(bsums + 2 * j);
				summin += k.mn[g] * bs;
			}
		}
		s += (k.d * dx) * (float)isum - (k.dmin * dx) * (float)summin;
	}
	return s;
}

static float vdot_q2_k(size_t n, const void *w, const void *act)
{
	return vdot_k(n, w, act, BYTES(q2_k), unpack_q2_k);
}

static float vdot_q3_k(size_t n, const void *w, const void *act)
{
	return vdot_k(n, w, act, BYTES(q3_k), unpack_q3_k);
}

static float vdot_q4_k(size_t n, const void *w, const void *act)
{
	return vdot_k(n, w, act, BYTES(q4_k), unpack_q4_k);
}

static float vdot_q5_k(size_t n, const void *w, const void *act)
{
	return vdot_k(n, w, act, BYTES(q5_k), unpack_q5_k);
}

static float vdot_q6_k(size_t n, const void *w, const void *act)
{
	return vdot_k(n, w, act, BYTES(q6_k), unpack_q6_k);
}

static float vdot_q8_k(size_t n, const void *w, const void *act)
{
	const uint8_t *b = w, *a = act;
	float s = 0.0f;

	for (size_t i = 0; i < n / CCK_QK_K; i++, b += BYTES(q8_k), a += BYTES(q8_k)) {
		const int8_t *qw = (const int8_t *)(b + OFF(q8_k, qs)), *qx = (const int8_t *)(a + OFF(q8_k, qs));
		int32_t isum = 0;

		for (int j = 0; j < CCK_QK_K; j++)
			isum += qw[j] * qx[j];
		s += (rdf32(b + OFF(q8_k, d)) * rdf32(a + OFF(q8_k, d))) * (float)isum;
	}
	return s;
}

/* ---- k-quant quantization (ggml's quantize_row_*_K_ref) ------------------- */

/*
 * ggml's make_qx_quants with rmse_type 1 and no weights (w = x^2): symmetric
 * levels -nmax..nmax-1 for x = scale * l; picks the scale of least weighted
 * squared error among -nmax/max and 18 nearby trials. L gets l + nmax.
 */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L)
{
	float max = 0, amax = 0, iscale, sumlx = 0, suml2 = 0, scale, best;

	for (int i = 0; i < n; i++)
		if (fabsf(x[i]) > amax) {
			amax = fabsf(x[i]);
			max = x[i];
		}
	if (amax < GROUP_MAX_EPS) {
		memset(L, 0, (size_t)n);
		return 0.0f;
	}
	iscale = -nmax / max;
	for (int i = 0; i < n; i++) {
		int l = nearest_int(iscale * x[i]);
		float w = x[i] * x[i];

		l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
		L[i] = (int8_t)(l + nmax);
		sumlx += w * x[i] * (float)l;
		suml2 += w * (float)l * (float)l;
	}
	scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
	best = scale * sumlx;
	for (int is = -9; is <= 9; is++) {
		if (!is)
			continue;
		iscale = -((float)nmax + 0.1f * (float)is) / max;
		sumlx = suml2 = 0;
		for (int i = 0; i < n; i++) {
			int l = nearest_int(iscale * x[i]);
			float w = x[i] * x[i];

			l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
			sumlx += w * x[i] * (float)l;
			suml2 += w * (float)l * (float)l;
		}
		if (suml2 > 0 && sumlx * sumlx > best * suml2) {
			for (int i = 0; i < n; i++) {
				int l = nearest_int(iscale * x[i]);

				L[i] = (int8_t)(nmax + (l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l));
			}
			scale = sumlx / suml2;
			best = scale * sumlx;
		}
	}
	return scale;
}

/*
 * ggml's make_q3_quants with do_rmse: symmetric levels as above (w = x^2),
 * then up to 5 passes moving single elements to the level that lowers the
 * weighted error. L gets l + nmax.
 */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L)
{
	float max = 0, amax = 0, iscale, sumlx = 0, suml2 = 0;

	for (int i = 0; i < n; i++)
		if (fabsf(x[i]) > amax) {
			amax = fabsf(x[i]);
			max = x[i];
		}
	if (amax < GROUP_MAX_EPS) {
		memset(L, 0, (size_t)n);
		return 0.0f;
	}
	iscale = -nmax / max;
	for (int i = 0; i < n; i++) {
		int l = nearest_int(iscale * x[i]);
		float w = x[i] * x[i];

		l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
		L[i] = (int8_t)l;
		sumlx += w * x[i] * (float)l;
		suml2 += w * (float)l * (float)l;
	}
	for (int itry = 0; itry < 5; itry++) {
		int changed = 0;

		for (int i = 0; i < n; i++) {
			float w = x[i] * x[i], slx = sumlx - w * x[i] * (float)L[i];

			if (slx > 0) {
				float sl2 = suml2 - w * (float)L[i] * (float)L[i];
				int nl = nearest_int(x[i] * sl2 / slx);

				nl = nl < -nmax ? -nmax : nl > nmax - 1 ? nmax - 1 : nl;
				if (nl != L[i]) {
					slx += w * x[i] * (float)nl;
					sl2 += w * (float)nl * (float)nl;
					if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
						L[i] = (int8_t)nl;
						sumlx = slx;
						suml2 = sl2;
						changed++;
					}
				}
			}
		}
		if (!changed)
			break;
	}
	for (int i = 0; i < n; i++)
		L[i] = (int8_t)(L[i] + nmax);
	return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/*
 * ggml's make_qkx2_quants: levels 0..nmax for x = scale * l - min (min <= 0
 * returned negated in *the_min), weights w; tries nstep + 1 scales around
 * nmax / (max - min) and keeps the least weighted error (|diff| if use_mad,
 * else diff^2), refitting scale and min by least squares.
 */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *w, uint8_t *L, float *the_min,
                              uint8_t *Laux, float rmin, float rdelta, int nstep, int use_mad)
{
	float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0], iscale, scale, best_error = 0;

	for (int i = 1; i < n; i++) {
		if (x[i] < min)
			min = x[i];
		if (x[i] > max)
			max = x[i];
		sum_w += w[i];
		sum_x += w[i] * x[i];
	}
	if (min > 0)
		min = 0;
	if (max == min) {
		memset(L, 0, (size_t)n);
		*the_min = -min;
		return 0.0f;
	}
	iscale = (float)nmax / (max - min);
	scale = 1 / iscale;
	for (int i = 0; i < n; i++) {
		int l = nearest_int(iscale * (x[i] - min));
		float diff;

		L[i] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
		diff = scale * (float)L[i] + min - x[i];
		diff = use_mad ? fabsf(diff) : diff * diff;
		best_error += w[i] * diff;
	}
	for (int is = 0; is <= nstep; is++) {
		float sum_l = 0, sum_l2 = 0, sum_xl = 0, D;

		iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
		for (int i = 0; i < n; i++) {
			int l = nearest_int(iscale * (x[i] - min));

			l = l < 0 ? 0 : l > nmax ? nmax : l;
			Laux[i] = (uint8_t)l;
			sum_l += w[i] * (float)l;
			sum_l2 += w[i] * (float)l * (float)l;
			sum_xl += w[i] * (float)l * x[i];
		}
		D = sum_w * sum_l2 - sum_l * sum_l;
		if (D > 0) {
			float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
			float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
			float cur_error = 0;

			if (this_min > 0) {
				this_min = 0;
				this_scale = sum_xl / sum_l2;
			}
			for (int i = 0; i < n; i++) {
				float diff = this_scale * (float)Laux[i] + this_min - x[i];

				diff = use_mad ? fabsf(diff) : diff * diff;
				cur_error += w[i] * diff;
			}
			if (cur_error < best_error) {
				memcpy(L, Laux, (size_t)n);
				best_error = cur_error;
				scale = this_scale;
				min = this_min;
			}
		}
	}
	*the_min = -min;
	return scale;
}

static inline int clampi(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Packs 2-bit values L[256] (q2_k, q3_k low bits): element 128 h + 32 k + l -> bits 2k of qs[32 h + l]. */
static void pack2(const uint8_t *L, uint8_t *qs)
{
	for (int h = 0; h < 2; h++)
		for (int l = 0; l < 32; l++)
			qs[32 * h + l] = (uint8_t)(L[128 * h + l] | L[128 * h + l + 32] << 2 |
			                           L[128 * h + l + 64] << 4 | L[128 * h + l + 96] << 6);
}

static void quant_q2_k(const float *x, void *dst, size_t n)
{
	uint8_t *b = dst;

	for (size_t i = 0; i < n / CCK_QK_K; i++, x += CCK_QK_K, b += BYTES(q2_k)) {
		uint8_t L[CCK_QK_K], Laux[16], *sc = b + OFF(q2_k, scales);
		float w[16], mins[16], scales[16], max_scale = 0, max_min = 0, d, dm;

		for (int j = 0; j < 16; j++) {
			for (int l = 0; l < 16; l++)
				w[l] = fabsf(x[16 * j + l]);
			scales[j] =
			    make_qkx2_quants(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, 1);
			if (scales[j] > max_scale)
				max_scale = scales[j];
			if (mins[j] > max_min)
				max_min = mins[j];
		}
		if (max_scale > 0) {
			float iscale = 15.f / max_scale;

			for (int j = 0; j < 16; j++)
				sc[j] = (uint8_t)nearest_int(iscale * scales[j]);
			wr16(b + OFF(q2_k, d), cck__f32_to_f16(max_scale / 15.f));
		} else {
			memset(sc, 0, 16);
			wr16(b + OFF(q2_k, d), cck__f32_to_f16(0.0f));
		}
		if (max_min > 0) {
			float iscale = 15.f / max_min;

			for (int j = 0; j < 16; j++)
				sc[j] |= (uint8_t)(nearest_int(iscale * mins[j]) << 4);
			wr16(b + OFF(q2_k, dmin), cck__f32_to_f16(max_min / 15.f));
		} else {
			wr16(b + OFF(q2_k, dmin), cck__f32_to_f16(0.0f));
		}
		for (int j = 0; j < 16; j++) {
			d = h2f(b + OFF(q2_k, d)) * (float)(sc[j] & 0x0f);
			if (d == 0.0f)
				continue;
			dm = h2f(b + OFF(q2_k, dmin)) * (float)(sc[j] >> 4);
			for (int l = 0; l < 16; l++)
				L[16 * j + l] = (uint8_t)clampi(nearest_int((x[16 * j + l] + dm) / d), 0, 3);
		}
		pack2(L, b + OFF(q2_k, qs));
	}
}

static void quant_q3_k(const float *x, void *dst, size_t n)
{
	uint8_t *b = dst;

	for (size_t i = 0; i < n / CCK_QK_K; i++, x += CCK_QK_K, b += BYTES(q3_k)) {
		int8_t L[CCK_QK_K];
		uint8_t U[CCK_QK_K], *sc = b + OFF(q3_k, scales), *hm = b + OFF(q3_k, hmask);
		float scales[16], max_scale = 0, amax = 0;

		for (int j = 0; j < 16; j++) {
			scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
			if (fabsf(scales[j]) > amax) {
				amax = fabsf(scales[j]);
				max_scale = scales[j];
			}
		}
		memset(sc, 0, 12);
		if (max_scale != 0.0f) {
			float iscale = -32.f / max_scale;

			for (int j = 0; j < 16; j++) {
				int l = clampi((int8_t)nearest_int(iscale * scales[j]), -32, 31) + 32;

				if (j < 8)
					sc[j] = (uint8_t)(l & 0x0f);
				else
					sc[j - 8] |= (uint8_t)((l & 0x0f) << 4);
				sc[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
			}
			wr16(b + OFF(q3_k, d), cck__f32_to_f16(1 / iscale));
		} else {
			wr16(b + OFF(q3_k, d), cck__f32_to_f16(0.0f));
		}
		for (int j = 0; j < 16; j++) {
			int lo = j < 8 ? sc[j] & 0x0f : sc[j - 8] >> 4, hi = (sc[8 + j % 4] >> (2 * (j / 4))) & 3;
			float d = h2f(b + OFF(q3_k, d)) * (float)((lo | hi << 4) - 32);

			if (d == 0.0f)
				continue;
			for (int l = 0; l < 16; l++)
				L[16 * j + l] = (int8_t)(clampi(nearest_int(x[16 * j + l] / d), -4, 3) + 4);
		}
		/* high bit (L > 3) of element e -> bit e / 32 of hmask[e % 32]; then keep the 2 low bits */
		memset(hm, 0, CCK_QK_K / 8);
		for (int e = 0; e < CCK_QK_K; e++) {
			if (L[e] > 3) {
				hm[e % 32] |= (uint8_t)(1 << (e / 32));
				L[e] = (int8_t)(L[e] - 4);
			}
			U[e] = (uint8_t)L[e];
		}
		pack2(U, b + OFF(q3_k, qs));
	}
}

/*
 * q4_k / q5_k share the scale search: per group of 32, weights av_x + |x|
 * (av_x = rms of the group), make_qkx2_quants; then 6-bit scales and mins
 * relative to their maxima, and a requantization with the stored values.
 */
static void quant_k45(const float *x, uint8_t *b, int nmax, float rmin, int nstep, uint8_t *L)
{
	uint8_t Laux[32], *s = b + 4; /* scales follow d and dmin in both layouts */
	float w[32], mins[8], scales[8], max_scale = 0, max_min = 0, inv_scale, inv_min;
	struct kblock k;

	for (int j = 0; j < 8; j++) {
		float sum_x2 = 0, av_x;

		for (int l = 0; l < 32; l++)
			sum_x2 += x[32 * j + l] * x[32 * j + l];
		av_x = sqrtf(sum_x2 / 32);
		for (int l = 0; l < 32; l++)
			w[l] = av_x + fabsf(x[32 * j + l]);
		scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, 0);
		if (scales[j] > max_scale)
			max_scale = scales[j];
		if (mins[j] > max_min)
			max_min = mins[j];
	}
	inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
	inv_min = max_min > 0 ? 63.f / max_min : 0.f;
	for (int j = 0; j < 8; j++) {
		uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]), lm = (uint8_t)nearest_int(inv_min * mins[j]);

		ls = ls < 63 ? ls : 63;
		lm = lm < 63 ? lm : 63;
		if (j < 4) {
			s[j] = ls;
			s[j + 4] = lm;
		} else {
			s[j + 4] = (uint8_t)((ls & 0x0f) | (lm & 0x0f) << 4);
			s[j - 4] |= (uint8_t)((ls >> 4) << 6);
			s[j] |= (uint8_t)((lm >> 4) << 6);
		}
	}
	wr16(b, cck__f32_to_f16(max_scale / 63.f));
	wr16(b + 2, cck__f32_to_f16(max_min / 63.f));
	scale_min_k4(s, &k);
	for (int j = 0; j < 8; j++) {
		float d = h2f(b) * (float)k.sc[j], dm;

		if (d == 0.0f)
			continue;
		dm = h2f(b + 2) * (float)k.mn[j];
		for (int l = 0; l < 32; l++)
			L[32 * j + l] = (uint8_t)clampi(nearest_int((x[32 * j + l] + dm) / d), 0, nmax);
	}
}

static void quant_q4_k(const float *x, void *dst, size_t n)
{
	uint8_t *b = dst;

	for (size_t i = 0; i < n / CCK_QK_K; i++, x += CCK_QK_K, b += BYTES(q4_k)) {
		uint8_t L[CCK_QK_K], *qs = b + OFF(q4_k, qs);

		quant_k45(x, b, 15, -1.f, 20, L);
		for (int e = 0; e < CCK_QK_K; e += 64)
			for (int l = 0; l < 32; l++)
				qs[e / 2 + l] = (uint8_t)(L[e + l] | L[e + l + 32] << 4);
	}
}

static void quant_q5_k(const float *x, void *dst, size_t n)
{
	uint8_t *b = dst;

	for (size_t i = 0; i < n / CCK_QK_K; i++, x += CCK_QK_K, b += BYTES(q5_k)) {
		uint8_t L[CCK_QK_K], *qs = b + OFF(q5_k, qs), *qh = b + OFF(q5_k, qh);

		quant_k45(x, b, 31, -0.5f, 15, L);
		memset(qh, 0, CCK_QK_K / 8);
		for (int e = 0; e < CCK_QK_K; e++)
			qh[e % 32] |= (uint8_t)((L[e] >> 4) << (e / 32));
		for (int e = 0; e < CCK_QK_K; e += 64)
			for (int l = 0; l < 32; l++)
				qs[e / 2 + l] = (uint8_t)((L[e + l] & 0x0f) | (L[e + l + 32] & 0x0f) << 4);
	}
}

static void quant_q6_k(const float *x, void *dst, size_t n)
{
	uint8_t *b = dst;

	for (size_t i = 0; i < n / CCK_QK_K; i++, x += CCK_QK_K, b += BYTES(q6_k)) {
		int8_t L[CCK_QK_K], *sc = (int8_t *)(b + OFF(q6_k, scales));
		uint8_t *ql = b + OFF(q6_k, ql), *qh = b + OFF(q6_k, qh);
		float scales[16], max_scale = 0, max_abs = 0, iscale;

		for (int j = 0; j < 16; j++) {
			scales[j] = make_qx_quants(16, 32, x + 16 * j, L + 16 * j);
			if (fabsf(scales[j]) > max_abs) {
				max_abs = fabsf(scales[j]);
				max_scale = scales[j];
			}
		}
		if (max_abs < GROUP_MAX_EPS) {
			memset(b, 0, BYTES(q6_k));
			continue;
		}
		iscale = -128.f / max_scale;
		wr16(b + OFF(q6_k, d), cck__f32_to_f16(1 / iscale));
		for (int j = 0; j < 16; j++) {
			int v = nearest_int(iscale * scales[j]);

			sc[j] = (int8_t)(v < 127 ? v : 127);
		}
		for (int j = 0; j < 16; j++) {
			float d = h2f(b + OFF(q6_k, d)) * (float)sc[j];

			if (d == 0.0f)
				continue;
			for (int l = 0; l < 16; l++)
				L[16 * j + l] = (int8_t)(clampi(nearest_int(x[16 * j + l] / d), -32, 31) + 32);
		}
		for (int h = 0; h < 2; h++, ql += 64, qh += 32) {
			const int8_t *Lh = L + 128 * h;

			for (int l = 0; l < 32; l++) {
				ql[l] = (uint8_t)((Lh[l] & 0x0f) | (Lh[l + 64] & 0x0f) << 4);
				ql[l + 32] = (uint8_t)((Lh[l + 32] & 0x0f) | (Lh[l + 96] & 0x0f) << 4);
				qh[l] = (uint8_t)((Lh[l] >> 4) | (Lh[l + 32] >> 4) << 2 | (Lh[l + 64] >> 4) << 4 |
				                  (Lh[l + 96] >> 4) << 6);
			}
		}
	}
}

/*
 * quantize_row_q8_K_ref: max = the element of largest |x|, iscale = -127 / max,
 * q = min(127, nearest_int(iscale * x)), d = 1 / iscale (float), bsums = sums of 16 q.
 */
static void quant_q8_k(const float *x, void *dst, size_t n)
{
	uint8_t *b = dst;

	for (size_t i = 0; i < n / CCK_QK_K; i++, x += CCK_QK_K, b += BYTES(q8_k)) {
		int8_t *qs = (int8_t *)(b + OFF(q8_k, qs));
		float max = 0, amax = 0, iscale;

		for (int j = 0; j < CCK_QK_K; j++)
			if (fabsf(x[j]) > amax) {
				amax = fabsf(x[j]);
				max = x[j];
			}
		if (amax == 0.0f) {
			memset(b, 0, BYTES(q8_k)); /* d = 0, qs and bsums 0 */
			continue;
		}
		iscale = -127.f / max;
		for (int j = 0; j < CCK_QK_K; j++) {
			int v = nearest_int(iscale * x[j]);

			qs[j] = (int8_t)(v < 127 ? v : 127);
		}
		for (int j = 0; j < CCK_QK_K / 16; j++) {
			int s = 0;

			for (int l = 0; l < 16; l++)
				s += qs[16 * j + l];
			wr16(b + OFF(q8_k, bsums) + 2 * j, (uint16_t)(int16_t)s);
		}
		wrf32(b + OFF(q8_k, d), 1 / iscale);
	}
}

/* clang-format off */
const struct cck__qops cck__qops_scalar = {
	.dequant = {
		[CCK_TYPE_F32] = dequant_f32, [CCK_TYPE_F16] = dequant_f16, [CCK_TYPE_BF16] = dequant_bf16,
		[CCK_TYPE_Q4_0] = dequant_q4_0, [CCK_TYPE_Q4_1] = dequant_q4_1,
		[CCK_TYPE_Q5_0] = dequant_q5_0, [CCK_TYPE_Q5_1] = dequant_q5_1,
		[CCK_TYPE_Q8_0] = dequant_q8_0, [CCK_TYPE_Q8_1] = dequant_q8_1,
		[CCK_TYPE_Q2_K] = dequant_q2_k, [CCK_TYPE_Q3_K] = dequant_q3_k, [CCK_TYPE_Q4_K] = dequant_q4_k,
		[CCK_TYPE_Q5_K] = dequant_q5_k, [CCK_TYPE_Q6_K] = dequant_q6_k, [CCK_TYPE_Q8_K] = dequant_q8_k,
	},
	.quant = {
		[CCK_TYPE_F32] = quant_f32, [CCK_TYPE_F16] = quant_f16, [CCK_TYPE_BF16] = quant_bf16,
		[CCK_TYPE_Q4_0] = quant_q4_0, [CCK_TYPE_Q4_1] = quant_q4_1,
		[CCK_TYPE_Q5_0] = quant_q5_0, [CCK_TYPE_Q5_1] = quant_q5_1,
		[CCK_TYPE_Q8_0] = quant_q8_0, [CCK_TYPE_Q8_1] = quant_q8_1,
		[CCK_TYPE_Q2_K] = quant_q2_k, [CCK_TYPE_Q3_K] = quant_q3_k, [CCK_TYPE_Q4_K] = quant_q4_k,
		[CCK_TYPE_Q5_K] = quant_q5_k, [CCK_TYPE_Q6_K] = quant_q6_k, [CCK_TYPE_Q8_K] = quant_q8_k,
	},
	.act_quant = {
		[CCK_TYPE_Q8_0] = act_quant_q8_0, [CCK_TYPE_Q8_1] = act_quant_q8_1,
	},
	.vdot = {
		[CCK_TYPE_F32] = vdot_f32, [CCK_TYPE_F16] = vdot_f16, [CCK_TYPE_BF16] = vdot_bf16,
		[CCK_TYPE_Q4_0] = vdot_q4_0, [CCK_TYPE_Q4_1] = vdot_q4_1,
		[CCK_TYPE_Q5_0] = vdot_q5_0, [CCK_TYPE_Q5_1] = vdot_q5_1,
		[CCK_TYPE_Q8_0] = vdot_q8_0, [CCK_TYPE_Q8_1] = vdot_q8_1,
		[CCK_TYPE_Q2_K] = vdot_q2_k, [CCK_TYPE_Q3_K] = vdot_q3_k, [CCK_TYPE_Q4_K] = vdot_q4_k,
		[CCK_TYPE_Q5_K] = vdot_q5_k, [CCK_TYPE_Q6_K] = vdot_q6_k, [CCK_TYPE_Q8_K] = vdot_q8_k,
	},
};
/* clang-format on */
