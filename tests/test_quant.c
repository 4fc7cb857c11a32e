/* SPDX-License-Identifier: MIT */
/* test_quant.c: libcck's quantized-tensor API: traits, errors, (de)quantization, qdot bounds, tiers, qmatvec. */
/*
 * Contracts checked (bit-exactness against gguf-py is tests/quant_ref.py's job):
 *  - dequantize is deterministic, finite for finite scales, non-finite everywhere for NaN / Inf
 *    scales, and bit-identical on every tier; quantize gives the same bytes on every tier.
 *  - round trip quantize -> dequantize, per block of the input: |x - x'| <= the type's step:
 *      f16 2^-11 |x|; bf16 2^-8 |x|; q4_0, q5_0: s = amax / 2^(b-1), |err| <= s (1 + 2^-7) (the
 *      element of largest |x| may be clamped one step); q4_1, q5_1: s = (max - min) / (2^b - 1),
 *      |err| <= s (1/2 + 2^-6) + 2^-10 amax (f16 rounding of d and m); q8_0, q8_1: s = amax / 127,
 *      s (1/2 + 2^-4 + 2^-10) (f16 d: 127 * 2^-11 < 2^-4); q8_k: s (1/2 + 2^-10);
 *      k-quants (optimised scales, checked not derived): one step of a uniform grid over
 *      [-amax, amax] of the super-block, 2 amax / L, L = 3 (q2_k), 7 (q3_k), 15, 31, 63 (q6_k).
 *  - qdot against ref = sum w_i x_i in double (w = the dequantized weights), u = 2^-24:
 *      |qdot - ref| <= sum_i |w_i| e_i + S + g M, where e_i bounds the activation error |x^_i - x_i|:
 *        q8_0, q8_1 (block amax A, D = A/127 (1 + 2u), f16 rounding of D: dl = max(2^-11 D, 2^-25),
 *          |q_i| <= Q_i = 127 |x_i| / A (1 + 2u) + 1/2 + 256u):  e_i = D (1/2 + 256u) + Q_i dl
 *        q8_k (f32 d):  e_i = D (1/2 + 384u);  f16: max(2^-11 |x_i|, 2^-25);  bf16: 2^-8 |x_i|;  f32: 0,
 *      S (q4_1, q5_1 only: their min m meets the q8_1 block sum s = f16(d sum q) instead of sum x^):
 *        sum_b |m_b| ((2^-11 + 2u) D_b sum_b Q_i + 2^-25 + dl_b sum_b Q_i),
 *      M = sum_i (|x_i| + e_i)(|w_i| + 2 |min part of w_i|), g = (nb + 7) u for nb blocks summed in
 *      float (<= 4 roundings per block term, <= 3 per dequantized w_i, nb - 1 in the sum, 1 for
 *      second-order terms), g = 3u + n 2^-52 for f32 / f16 / bf16 (float products, double sum).
 *  - every tier (each forced tier <= host, then "auto") equals the scalar tier: dequant and quant
 *    bit for bit, qdot within 2 (k + 7) u M (k = blocks, or n for the float types); q4_0, q4_1,
 *    q5_0, q5_1 and q8_0 qdot bit for bit (they all sum in ggml's x86 order).
 *  - the dot products quantize activations to q8_0 / q8_1 as ggml's x86 code (round half to even,
 *    id = 127 / amax; q8_1's s = f16(d * sum q)), not as cck_quantize (ggml's _ref: half away from 0).
 *  - qmatvec / qmatmul equal cck_qdot of each row bit for bit, with 1 and 2 threads; every column of
 *    qmatmul (batch 1..11, the batched kernels) equals qmatvec of that column on every tier.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cck.h"
#include "quant.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define U (1.0 / 16777216.0) /* 2^-24 */

static const int all_types[] = {
    CCK_TYPE_F32,  CCK_TYPE_F16,  CCK_TYPE_BF16, CCK_TYPE_Q4_0, CCK_TYPE_Q4_1,
    CCK_TYPE_Q5_0, CCK_TYPE_Q5_1, CCK_TYPE_Q8_0, CCK_TYPE_Q8_1, CCK_TYPE_Q2_K,
    CCK_TYPE_Q3_K, CCK_TYPE_Q4_K, CCK_TYPE_Q5_K, CCK_TYPE_Q6_K, CCK_TYPE_Q8_K,
};

/* ggml's block sizes (GGUF ABI) */
static const struct {
	int type;
	const char *name;
	size_t blck, bytes;
	int act;
} expect[] = {
    {CCK_TYPE_F32, "f32", 1, 4, CCK_TYPE_F32},        {CCK_TYPE_F16, "f16", 1, 2, CCK_TYPE_F16},
    {CCK_TYPE_BF16, "bf16", 1, 2, CCK_TYPE_BF16},     {CCK_TYPE_Q4_0, "q4_0", 32, 18, CCK_TYPE_Q8_0},
    {CCK_TYPE_Q4_1, "q4_1", 32, 20, CCK_TYPE_Q8_1},   {CCK_TYPE_Q5_0, "q5_0", 32, 22, CCK_TYPE_Q8_0},
    {CCK_TYPE_Q5_1, "q5_1", 32, 24, CCK_TYPE_Q8_1},   {CCK_TYPE_Q8_0, "q8_0", 32, 34, CCK_TYPE_Q8_0},
    {CCK_TYPE_Q8_1, "q8_1", 32, 36, CCK_TYPE_Q8_1},   {CCK_TYPE_Q2_K, "q2_k", 256, 84, CCK_TYPE_Q8_K},
    {CCK_TYPE_Q3_K, "q3_k", 256, 110, CCK_TYPE_Q8_K}, {CCK_TYPE_Q4_K, "q4_k", 256, 144, CCK_TYPE_Q8_K},
    {CCK_TYPE_Q5_K, "q5_k", 256, 176, CCK_TYPE_Q8_K}, {CCK_TYPE_Q6_K, "q6_k", 256, 210, CCK_TYPE_Q8_K},
    {CCK_TYPE_Q8_K, "q8_k", 256, 292, CCK_TYPE_Q8_K},
};

static int act_of(int t)
{
	for (size_t k = 0; k < NELEM(expect); k++)
		if (expect[k].type == t)
			return expect[k].act;
	fail_msg("type %d", t);
	return -1;
}

/* ---- helpers ------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void) /* splitmix64 */
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double unif(void) /* [0, 1) */
{
	return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0);
}

static double gauss(void)
{
	double a = unif() + 1e-300, b = unif();

	return sqrt(-2.0 * log(a)) * cos(6.283185307179586 * b);
}

/* Test data: gaussian, the scale changing every 32 elements (1e-2 .. 1e2), 1% outliers x20, a zero block. */
static void gen_x(float *x, size_t n)
{
	double s = 1.0;

	for (size_t i = 0; i < n; i++) {
		if (i % 32 == 0)
			s = pow(10.0, (double)(rnd() % 5) - 2.0);
		x[i] = (float)(gauss() * s * (unif() < 0.01 ? 20.0 : 1.0));
	}
	if (n >= 64)
		memset(x + 32, 0, 32 * sizeof(float));
}

static size_t blck_of(int t)
{
	size_t be = 0;

	assert_int_equal(cck_type_block(t, &be, NULL), 0);
	return be;
}

static size_t rowb(int t, size_t n)
{
	size_t b = 0;

	assert_int_equal(cck_type_row_bytes(t, n, &b), 0);
	return b;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	assert_non_null(p);
	return p;
}

/* Conversions through the public API (an f16 / bf16 row of one element; little-endian host). */
static uint16_t f16_bits(float f)
{
	uint16_t h;

	assert_int_equal(cck_quantize(CCK_TYPE_F16, &f, &h, 1), 0);
	return h;
}

static float f16_val(uint16_t h)
{
	float f;

	assert_int_equal(cck_dequantize(CCK_TYPE_F16, &h, &f, 1), 0);
	return f;
}

static uint16_t bf16_bits(float f)
{
	uint16_t h;

	assert_int_equal(cck_quantize(CCK_TYPE_BF16, &f, &h, 1), 0);
	return h;
}

static float bf16_val(uint16_t h)
{
	float f;

	assert_int_equal(cck_dequantize(CCK_TYPE_BF16, &h, &f, 1), 0);
	return f;
}

/* Independent reference: the value of a half, from its fields. */
static double f16_ref(uint16_t h)
{
	int e = (h >> 10) & 0x1f, m = h & 0x3ff;
	double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);

	return h & 0x8000 ? -v : v;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* A random finite half: raw bits with exponent < 31, or a typical scale. */
static uint16_t rand_f16(void)
{
	if (rnd() & 1)
		return (uint16_t)((rnd() % 0x7c00) | (rnd() & 1) << 15);
	return f16_bits((float)(gauss() * pow(10.0, (double)(rnd() % 6) - 4.0)));
}

/* Byte offsets of the f16 scale fields of a block; returns how many. */
static int f16_fields(int t, size_t off[2])
{
	switch (t) {
	case CCK_TYPE_Q4_0:
		off[0] = offsetof(struct cck_block_q4_0, d);
		return 1;
	case CCK_TYPE_Q5_0:
		off[0] = offsetof(struct cck_block_q5_0, d);
		return 1;
	case CCK_TYPE_Q8_0:
		off[0] = offsetof(struct cck_block_q8_0, d);
		return 1;
	case CCK_TYPE_Q4_1:
		off[0] = offsetof(struct cck_block_q4_1, d);
		off[1] = offsetof(struct cck_block_q4_1, m);
		return 2;
	case CCK_TYPE_Q5_1:
		off[0] = offsetof(struct cck_block_q5_1, d);
		off[1] = offsetof(struct cck_block_q5_1, m);
		return 2;
	case CCK_TYPE_Q8_1:
		off[0] = offsetof(struct cck_block_q8_1, d);
		off[1] = offsetof(struct cck_block_q8_1, s);
		return 2;
	case CCK_TYPE_Q2_K:
		off[0] = offsetof(struct cck_block_q2_k, d);
		off[1] = offsetof(struct cck_block_q2_k, dmin);
		return 2;
	case CCK_TYPE_Q3_K:
		off[0] = offsetof(struct cck_block_q3_k, d);
		return 1;
	case CCK_TYPE_Q4_K:
		off[0] = offsetof(struct cck_block_q4_k, d);
		off[1] = offsetof(struct cck_block_q4_k, dmin);
		return 2;
	case CCK_TYPE_Q5_K:
		off[0] = offsetof(struct cck_block_q5_k, d);
		off[1] = offsetof(struct cck_block_q5_k, dmin);
		return 2;
	case CCK_TYPE_Q6_K:
		off[0] = offsetof(struct cck_block_q6_k, d);
		return 1;
	default:
		return 0;
	}
}

/*
 * nb random blocks of t: random bytes, every scale a random finite value, or
 * special (NaN, Inf) for every scale (element of the float types) if non-zero.
 */
static void rand_blocks(int t, uint8_t *buf, size_t nb, float special)
{
	size_t bytes, off[2];
	int nf = f16_fields(t, off);

	assert_int_equal(cck_type_block(t, NULL, &bytes), 0);
	for (size_t i = 0; i < nb * bytes; i++)
		buf[i] = (uint8_t)rnd();
	for (size_t b = 0; b < nb; b++) {
		uint8_t *p = buf + b * bytes;

		for (int f = 0; f < nf; f++)
			put16(p + off[f], special != 0.0f ? f16_bits(special) : rand_f16());
		if (t == CCK_TYPE_F16)
			put16(p, special != 0.0f ? f16_bits(special) : rand_f16());
		if (t == CCK_TYPE_BF16) {
			uint16_t v = (uint16_t)rnd();

			if ((v & 0x7f80) == 0x7f80)
				v &= 0xbfff; /* finite */
			put16(p, special != 0.0f ? bf16_bits(special) : v);
		}
		if (t == CCK_TYPE_F32 || t == CCK_TYPE_Q8_K) {
			float d = special != 0.0f ? special : (float)(gauss() * pow(10.0, (double)(rnd() % 61) - 30.0));

			memcpy(p, &d, sizeof(d)); /* f32 value, or q8_k's d (its first field) */
		}
	}
}

/* |min part| of element i of the row w of t (q4_1, q5_1: m; q2_k, q4_k, q5_k: dmin * mn[g]), else 0. */
static double min_part(int t, const uint8_t *w, size_t i)
{
	size_t bb = 0, be = 0;
	const uint8_t *b;
	size_t e;

	assert_int_equal(cck_type_block(t, &be, &bb), 0);
	b = w + i / be * bb;
	e = i % be;
	switch (t) {
	case CCK_TYPE_Q4_1:
	case CCK_TYPE_Q5_1:
		return fabs(f16_val(get16(b + 2)));
	case CCK_TYPE_Q2_K:
		return fabs((double)f16_val(get16(b + offsetof(struct cck_block_q2_k, dmin))) *
		            (b[offsetof(struct cck_block_q2_k, scales) + e / 16] >> 4));
	case CCK_TYPE_Q4_K:
	case CCK_TYPE_Q5_K: {
		const uint8_t *s = b + 4;
		size_t g = e / 32;
		int mn = g < 4 ? s[g + 4] & 63 : (s[g + 4] >> 4) | (s[g] >> 6) << 4;

		return fabs((double)f16_val(get16(b + 2)) * mn);
	}
	default:
		return 0.0;
	}
}

static int has_min(int t)
{
	return t == CCK_TYPE_Q4_1 || t == CCK_TYPE_Q5_1;
}

/* The tiers to try: every tier up to the host's, forced, then "auto" (NULL name = auto). */
static int ntiers(void)
{
	int n = 0;

	while (n < CCK_TIER_COUNT && strcmp(cck_tier_name(n), cck_host_tier()) != 0)
		n++;
	return n + 2; /* 0..host, then auto */
}

static const char *tier_at(int i)
{
	return i == ntiers() - 1 ? "auto" : cck_tier_name(i);
}

/* ---- traits and errors ---------------------------------------------------- */

static void test_traits(void **state)
{
	size_t be, bb, b;

	(void)state;
	for (size_t k = 0; k < NELEM(expect); k++) {
		int t = expect[k].type;
		char up[8];

		assert_string_equal(cck_type_name(t), expect[k].name);
		assert_int_equal(cck_type_lookup(expect[k].name), t);
		for (size_t c = 0; c <= strlen(expect[k].name); c++)
			up[c] = (char)(expect[k].name[c] >= 'a' && expect[k].name[c] <= 'z' ? expect[k].name[c] - 32
			                                                                    : expect[k].name[c]);
		assert_int_equal(cck_type_lookup(up), t);
		assert_int_equal(cck_type_block(t, &be, &bb), 0);
		assert_int_equal(be, expect[k].blck);
		assert_int_equal(bb, expect[k].bytes);
		assert_int_equal(cck_type_has_dot(t), 1);
		assert_int_equal(cck_type_row_bytes(t, 0, &b), 0);
		assert_int_equal(b, 0);
		assert_int_equal(cck_type_row_bytes(t, 7 * be, &b), 0);
		assert_int_equal(b, 7 * bb);
		if (be > 1)
			assert_int_equal(cck_type_row_bytes(t, be + 1, &b), -EINVAL);
		assert_int_equal(cck_type_row_bytes(t, SIZE_MAX / be * be, &b), -EOVERFLOW);
		assert_int_equal(cck_type_row_bytes(t, be, NULL), -EINVAL);
		assert_int_equal(cck_type_block(t, NULL, NULL), 0);
	}
	/* every other id is unsupported */
	for (int t = -2; t < CCK_TYPE_COUNT + 3; t++) {
		int known = 0;

		for (size_t k = 0; k < NELEM(expect); k++)
			known |= expect[k].type == t;
		if (known)
			continue;
		assert_null(cck_type_name(t));
		assert_int_equal(cck_type_block(t, &be, &bb), -EINVAL);
		assert_int_equal(cck_type_row_bytes(t, 32, &b), -EINVAL);
		assert_int_equal(cck_type_has_dot(t), 0);
	}
	assert_int_equal(cck_type_lookup(NULL), -EINVAL);
	assert_int_equal(cck_type_lookup("q4_2"), -ENOENT);
	assert_int_equal(cck_type_lookup(""), -ENOENT);
}

static void test_api_errors(void **state)
{
	float x[256] = {0}, y[256], r = 1.0f;
	uint8_t q[512] = {0};
	size_t big = SIZE_MAX / 256 * 256;

	(void)state;
	/* unknown types */
	assert_int_equal(cck_dequantize(4, q, y, 32), -EINVAL);
	assert_int_equal(cck_dequantize(-1, q, y, 32), -EINVAL);
	assert_int_equal(cck_quantize(CCK_TYPE_COUNT, x, q, 32), -EINVAL);
	assert_int_equal(cck_qdot(5, q, x, 32, &r), -EINVAL);
	assert_int_equal(cck_qmatvec(16, q, 0, x, y, 1, 32), -EINVAL);
	assert_int_equal(cck_qmatmul(29, q, 0, x, y, 1, 32, 1), -EINVAL);
	/* n not whole blocks */
	assert_int_equal(cck_dequantize(CCK_TYPE_Q4_0, q, y, 33), -EINVAL);
	assert_int_equal(cck_quantize(CCK_TYPE_Q6_K, x, q, 32), -EINVAL);
	assert_int_equal(cck_qdot(CCK_TYPE_Q4_K, q, x, 128, &r), -EINVAL);
	assert_int_equal(cck_qmatvec(CCK_TYPE_Q8_0, q, 0, x, y, 2, 16), -EINVAL);
	assert_int_equal(cck_qmatmul(CCK_TYPE_Q8_0, q, 0, x, y, 2, 16, 2), -EINVAL);
	/* NULL with n > 0; fine with n == 0 */
	assert_int_equal(cck_dequantize(CCK_TYPE_Q4_0, NULL, y, 32), -EINVAL);
	assert_int_equal(cck_dequantize(CCK_TYPE_Q4_0, q, NULL, 32), -EINVAL);
	assert_int_equal(cck_dequantize(CCK_TYPE_Q4_0, NULL, NULL, 0), 0);
	assert_int_equal(cck_quantize(CCK_TYPE_Q8_0, NULL, q, 32), -EINVAL);
	assert_int_equal(cck_quantize(CCK_TYPE_Q8_0, x, NULL, 32), -EINVAL);
	assert_int_equal(cck_quantize(CCK_TYPE_Q8_0, NULL, NULL, 0), 0);
	assert_int_equal(cck_qdot(CCK_TYPE_Q8_0, NULL, x, 32, &r), -EINVAL);
	assert_int_equal(cck_qdot(CCK_TYPE_Q8_0, q, NULL, 32, &r), -EINVAL);
	assert_int_equal(cck_qdot(CCK_TYPE_Q8_0, q, x, 32, NULL), -EINVAL);
	assert_int_equal(cck_qdot(CCK_TYPE_Q8_0, NULL, NULL, 0, &r), 0);
	assert_true(r == 0.0f);
	assert_int_equal(cck_qmatvec(CCK_TYPE_Q8_0, NULL, 0, x, y, 1, 32), -EINVAL);
	assert_int_equal(cck_qmatvec(CCK_TYPE_Q8_0, q, 0, NULL, y, 1, 32), -EINVAL);
	assert_int_equal(cck_qmatvec(CCK_TYPE_Q8_0, q, 0, x, NULL, 1, 32), -EINVAL);
	assert_int_equal(cck_qmatvec(CCK_TYPE_Q8_0, NULL, 0, NULL, NULL, 0, 32), 0);
	assert_int_equal(cck_qmatmul(CCK_TYPE_Q8_0, q, 0, NULL, y, 1, 32, 2), -EINVAL);
	assert_int_equal(cck_qmatmul(CCK_TYPE_Q8_0, NULL, 0, NULL, NULL, 4, 32, 0), 0);
	/* cols == 0: empty dots */
	y[0] = y[1] = 5.0f;
	assert_int_equal(cck_qmatvec(CCK_TYPE_Q4_0, NULL, 0, NULL, y, 2, 0), 0);
	assert_true(y[0] == 0.0f && y[1] == 0.0f);
	/* row_stride shorter than a row */
	assert_int_equal(cck_qmatvec(CCK_TYPE_Q8_0, q, 33, x, y, 2, 32), -EINVAL);
	assert_int_equal(cck_qmatmul(CCK_TYPE_Q4_0, q, 17, x, y, 2, 32, 1), -EINVAL);
	/* sizes that overflow */
	assert_int_equal(cck_dequantize(CCK_TYPE_Q4_K, q, y, big), -EOVERFLOW);
	assert_int_equal(cck_quantize(CCK_TYPE_F32, x, q, SIZE_MAX / 2), -EOVERFLOW);
	assert_int_equal(cck_qdot(CCK_TYPE_Q8_0, q, x, big, &r), -EOVERFLOW);
	assert_int_equal(cck_qmatvec(CCK_TYPE_Q8_0, q, SIZE_MAX / 4, x, y, 8, 32), -EOVERFLOW);
	assert_int_equal(cck_qmatmul(CCK_TYPE_Q8_0, q, 0, x, y, SIZE_MAX / 8, 32, 8), -EOVERFLOW);
	assert_int_equal(cck_qmatmul(CCK_TYPE_Q8_0, q, 0, x, y, 2, 32, SIZE_MAX / 16), -EOVERFLOW);
}

/* ---- dequantize, quantize ------------------------------------------------- */

/* Random blocks of every type dequantize the same way twice and on every tier; finite / non-finite scales. */
static void test_dequant_random(void **state)
{
	static const float specials[] = {0.0f, NAN, INFINITY, -INFINITY};
	const size_t nb = 37;

	(void)state;
	rng_state = 1;
	for (size_t k = 0; k < NELEM(all_types); k++) {
		int t = all_types[k];
		size_t be = blck_of(t), n = nb * be, bytes = rowb(t, n);
		uint8_t *q = xmalloc(bytes);
		float *y0 = xmalloc(n * sizeof(float)), *y1 = xmalloc(n * sizeof(float));

		for (size_t s = 0; s < NELEM(specials); s++) {
			rand_blocks(t, q, nb, specials[s]);
			assert_int_equal(cck_force_tier("scalar"), 0);
			assert_int_equal(cck_dequantize(t, q, y0, n), 0);
			for (int ti = 0; ti < ntiers(); ti++) {
				assert_int_equal(cck_force_tier(tier_at(ti)), 0);
				memset(y1, 0xa5, n * sizeof(float));
				assert_int_equal(cck_dequantize(t, q, y1, n), 0);
				if (memcmp(y0, y1, n * sizeof(float)) != 0)
					fail_msg("%s: dequantize on tier %s differs from scalar", cck_type_name(t),
					         tier_at(ti));
			}
			for (size_t i = 0; i < n; i++) {
				int special = specials[s] != 0.0f; /* every scale (float types: every element) */

				if (!special && !isfinite(y0[i]))
					fail_msg("%s: element %zu = %g from finite scales", cck_type_name(t), i, y0[i]);
				if (special && isfinite(y0[i]))
					fail_msg("%s: element %zu = %g from scale %g", cck_type_name(t), i, y0[i],
					         specials[s]);
				if (special && isnan(specials[s]) && !isnan(y0[i]))
					fail_msg("%s: element %zu = %g from NaN scales", cck_type_name(t), i, y0[i]);
			}
		}
		free(q);
		free(y0);
		free(y1);
	}
	assert_int_equal(cck_force_tier("auto"), 0);
}

/* Round trip quantize -> dequantize within the type's step (see the top of the file). */
static void test_roundtrip(void **state)
{
	const size_t n = 256 * 40;
	float *x = xmalloc(n * sizeof(float)), *y = xmalloc(n * sizeof(float));

	(void)state;
	rng_state = 2;
	gen_x(x, n);
	for (size_t k = 0; k < NELEM(all_types); k++) {
		int t = all_types[k];
		size_t be = blck_of(t), bs = be > 1 ? be : 32, bytes = rowb(t, n);
		uint8_t *q = xmalloc(bytes), *q2 = xmalloc(bytes);

		assert_int_equal(cck_force_tier("scalar"), 0);
		assert_int_equal(cck_quantize(t, x, q, n), 0);
		assert_int_equal(cck_dequantize(t, q, y, n), 0);
		for (size_t b = 0; b < n / bs; b++) {
			const float *xb = x + b * bs, *yb = y + b * bs;
			double amax = 0, max = -INFINITY, min = INFINITY;

			for (size_t i = 0; i < bs; i++) {
				amax = fmax(amax, fabs(xb[i]));
				max = fmax(max, xb[i]);
				min = fmin(min, xb[i]);
			}
			for (size_t i = 0; i < bs; i++) {
				double err = fabs((double)xb[i] - yb[i]), bound, s;

				switch (t) {
				case CCK_TYPE_F32:
					bound = 0;
					break;
				case CCK_TYPE_F16:
					bound = fmax(ldexp(fabs(xb[i]), -11), ldexp(1, -25));
					break;
				case CCK_TYPE_BF16:
					bound = ldexp(fabs(xb[i]), -8);
					break;
				case CCK_TYPE_Q4_0:
					bound = amax / 8 * (1 + 1.0 / 128);
					break;
				case CCK_TYPE_Q5_0:
					bound = amax / 16 * (1 + 1.0 / 128);
					break;
				case CCK_TYPE_Q4_1:
				case CCK_TYPE_Q5_1:
					s = (max - min) / (t == CCK_TYPE_Q4_1 ? 15 : 31);
					bound = s * (0.5 + 1.0 / 64) + amax / 1024;
					break;
				case CCK_TYPE_Q8_0:
				case CCK_TYPE_Q8_1:
					bound = amax / 127 * (0.5 + 1.0 / 16 + 1.0 / 1024);
					break;
				case CCK_TYPE_Q8_K:
					bound = amax / 127 * (0.5 + 1.0 / 1024);
					break;
				case CCK_TYPE_Q2_K:
					bound = 2 * amax / 3;
					break;
				case CCK_TYPE_Q3_K:
					bound = 2 * amax / 7;
					break;
				case CCK_TYPE_Q4_K:
					bound = 2 * amax / 15;
					break;
				case CCK_TYPE_Q5_K:
					bound = 2 * amax / 31;
					break;
				default:
					bound = 2 * amax / 63;
					break; /* q6_k */
				}
				if (!(err <= bound))
					fail_msg(
					    "%s: round trip of x[%zu] = %.9g gives %.9g: |err| %.3g > step bound %.3g",
					    cck_type_name(t), b * bs + i, xb[i], yb[i], err, bound);
			}
		}
		/* every tier quantizes to the same bytes */
		for (int ti = 0; ti < ntiers(); ti++) {
			assert_int_equal(cck_force_tier(tier_at(ti)), 0);
			memset(q2, 0x5a, bytes);
			assert_int_equal(cck_quantize(t, x, q2, n), 0);
			if (memcmp(q, q2, bytes) != 0)
				fail_msg("%s: quantize on tier %s differs from scalar", cck_type_name(t), tier_at(ti));
		}
		free(q);
		free(q2);
	}
	assert_int_equal(cck_force_tier("auto"), 0);
	free(x);
	free(y);
}

/* ---- dot products --------------------------------------------------------- */

struct dot_bound {
	double ref;   /* sum w_i x_i, double, dequantized weights */
	double bound; /* the stated bound on |qdot - ref| */
	double mag;   /* M */
};

/* The reference and the bound stated at the top of the file, for row w of t and x[n]. */
static void dot_bound(int t, const uint8_t *w, const float *x, size_t n, struct dot_bound *r)
{
	int act = act_of(t);
	size_t ab = act == CCK_TYPE_Q8_K ? 256 : 32, nb = n / blck_of(t);
	float *wd = xmalloc(n * sizeof(float));
	double eterm = 0, sterm = 0, mag = 0;

	assert_int_equal(cck_dequantize(t, w, wd, n), 0);
	r->ref = 0;
	for (size_t i = 0; i < n; i++)
		r->ref += (double)wd[i] * x[i];
	for (size_t b0 = 0; b0 < n; b0 += ab) {
		size_t len = b0 + ab <= n ? ab : n - b0;
		double A = 0, D, dl, qsum = 0;

		for (size_t i = b0; i < b0 + len; i++)
			A = fmax(A, fabs(x[i]));
		D = A / 127 * (1 + 2 * U);
		dl = fmax(ldexp(D, -11), ldexp(1, -25));
		for (size_t i = b0; i < b0 + len; i++) {
			double e, Q = A > 0 ? 127 * fabs(x[i]) / A * (1 + 2 * U) + 0.5 + 256 * U : 0;

			switch (act) {
			case CCK_TYPE_Q8_0:
			case CCK_TYPE_Q8_1:
				e = A > 0 ? D * (0.5 + 256 * U) + Q * dl : 0;
				break;
			case CCK_TYPE_Q8_K:
				e = D * (0.5 + 384 * U);
				break;
			case CCK_TYPE_F16:
				e = fmax(ldexp(fabs(x[i]), -11), ldexp(1, -25));
				break;
			case CCK_TYPE_BF16:
				e = ldexp(fabs(x[i]), -8);
				break;
			default:
				e = 0;
				break;
			}
			eterm += fabs(wd[i]) * e;
			mag += (fabs(x[i]) + e) * (fabs(wd[i]) + 2 * min_part(t, w, i));
			qsum += Q;
		}
		if (has_min(t) && A > 0)
			sterm += min_part(t, w, b0) * ((ldexp(1, -11) + 2 * U) * D * qsum + ldexp(1, -25) + dl * qsum);
	}
	r->mag = mag;
	r->bound = eterm + sterm + (blck_of(t) > 1 ? (double)(nb + 7) * U : 3 * U + (double)n * ldexp(1, -52)) * mag;
	free(wd);
}

/* Row counts in blocks: one, several, odd. */
static const size_t dot_blocks[] = {1, 2, 3, 7, 16, 33};

/* qdot is within the stated bound of the double dot product of the dequantized row, on every tier. */
static void test_qdot_bound(void **state)
{
	(void)state;
	rng_state = 3;
	for (size_t k = 0; k < NELEM(all_types); k++) {
		int t = all_types[k];
		size_t be = blck_of(t);
		double worst = 0; /* largest |err| / bound, printed: how tight the bound is */

		for (size_t m = 0; m < NELEM(dot_blocks); m++) {
			size_t nb = dot_blocks[m] * (be > 1 ? 1 : 64), n = nb * be;
			float *x = xmalloc(n * sizeof(float)), *wf = xmalloc(n * sizeof(float)), r0, r;
			uint8_t *w = xmalloc(rowb(t, n));
			struct dot_bound db;
			double tol;

			gen_x(wf, n);
			gen_x(x, n);
			assert_int_equal(cck_force_tier("scalar"), 0);
			assert_int_equal(cck_quantize(t, wf, w, n), 0);
			assert_int_equal(cck_qdot(t, w, x, n, &r0), 0);
			dot_bound(t, w, x, n, &db);
			if (!(fabs(r0 - db.ref) <= db.bound))
				fail_msg("%s, n %zu: qdot %.9g vs dequantized dot %.9g: |err| %.3g > bound %.3g "
				         "(sum |w_i| e_i + S + g M, M = %.3g)",
				         cck_type_name(t), n, r0, db.ref, fabs(r0 - db.ref), db.bound, db.mag);
			worst = fmax(worst, fabs(r0 - db.ref) / db.bound);
			/* tiers: equal to scalar up to float summation order (bit for bit where both sum as ggml's x86)
			 */
			tol = 2.0 * ((double)(be > 1 ? nb : n) + 7) * U * db.mag;
			if (t == CCK_TYPE_Q4_0 || t == CCK_TYPE_Q4_1 || t == CCK_TYPE_Q5_0 || t == CCK_TYPE_Q5_1 ||
			    t == CCK_TYPE_Q8_0)
				tol = 0;
			for (int ti = 0; ti < ntiers(); ti++) {
				assert_int_equal(cck_force_tier(tier_at(ti)), 0);
				assert_int_equal(cck_qdot(t, w, x, n, &r), 0);
				if (!(fabs(r - r0) <= tol))
					fail_msg("%s, n %zu: qdot on tier %s %.9g vs scalar %.9g: |diff| %.3g > %.3g",
					         cck_type_name(t), n, tier_at(ti), r, r0, fabs(r - r0), tol);
			}
			free(x);
			free(wf);
			free(w);
		}
		print_message("%-5s qdot: largest |err| / bound %.3f\n", cck_type_name(t), worst);
	}
	assert_int_equal(cck_force_tier("auto"), 0);
}

/*
 * The activation quantizer of the dot products, seen through cck_qdot on every tier: x = 127, 2.5, -2.5, 3.5, 0.5, 0...
 * (amax 127: d = 1, x * id exact). A q8_0 weight block with d = 1 and one byte 1 at j reads q_j: 2, -2, 4, 0 (half
 * to even; the _ref rounding would give 3, -3, 4, 1). A q4_1 block with d = 0, m = 1 reads the q8_1 block's s:
 * 127 + 2 - 2 + 4 = 131 (_ref: 132).
 */
static void test_act_quant(void **state)
{
	static const float want_q[] = {127, 2, -2, 4, 0};
	float x[32] = {127.0f, 2.5f, -2.5f, 3.5f, 0.5f}, r;
	struct cck_block_q8_0 w8;
	struct cck_block_q4_1 w41;

	(void)state;
	for (int ti = 0; ti < ntiers(); ti++) {
		assert_int_equal(cck_force_tier(tier_at(ti)), 0);
		for (size_t j = 0; j < NELEM(want_q); j++) {
			memset(&w8, 0, sizeof(w8));
			w8.d = 0x3c00; /* 1.0 */
			w8.qs[j] = 1;
			assert_int_equal(cck_qdot(CCK_TYPE_Q8_0, &w8, x, 32, &r), 0);
			if (r != want_q[j])
				fail_msg("tier %s: q8_0 activation byte %zu is %g, want %g", tier_at(ti), j, r,
				         want_q[j]);
		}
		memset(&w41, 0, sizeof(w41));
		w41.m = 0x3c00; /* d = 0, m = 1 */
		assert_int_equal(cck_qdot(CCK_TYPE_Q4_1, &w41, x, 32, &r), 0);
		if (r != 131.0f)
			fail_msg("tier %s: q8_1 activation sum s is %g, want 131", tier_at(ti), r);
	}
	assert_int_equal(cck_force_tier("auto"), 0);
}

/* qmatvec and qmatmul give each row's cck_qdot bit for bit, with 1 and 2 threads, packed and strided rows. */
static void test_qmatvec(void **state)
{
	static const size_t rows_list[] = {1, 7, 300};
	const size_t cols = 1024, batch = 3; /* 300 x 1024 is past the threading threshold */
	int threads0 = cck_get_threads();

	(void)state;
	rng_state = 4;
	for (size_t k = 0; k < NELEM(all_types); k++) {
		int t = all_types[k];
		size_t rb = rowb(t, cols), stride_list[2] = {0, rb + 6};
		size_t maxrows = rows_list[NELEM(rows_list) - 1];
		uint8_t *W = xmalloc((rb + 6) * maxrows);
		float *wf = xmalloc(cols * sizeof(float)), *X = xmalloc(batch * cols * sizeof(float));
		float *Y = xmalloc(batch * maxrows * sizeof(float)), *ref = xmalloc(batch * maxrows * sizeof(float));

		gen_x(X, batch * cols);
		for (size_t r = 0; r < maxrows; r++) {
			gen_x(wf, cols);
			assert_int_equal(cck_quantize(t, wf, W + r * (rb + 6), cols), 0);
		}
		for (int ti = 0; ti < 2; ti++) { /* the tiers are compared in test_qdot_bound */
			const char *tier = ti ? "auto" : "scalar";

			assert_int_equal(cck_force_tier(tier), 0);
			for (size_t s = 0; s < 2; s++) {
				size_t stride = s ? stride_list[1] : rb;
				uint8_t *Wp = W;

				if (!s) { /* pack the rows */
					Wp = xmalloc(rb * maxrows);
					for (size_t r = 0; r < maxrows; r++)
						memcpy(Wp + r * rb, W + r * (rb + 6), rb);
				}
				for (size_t b = 0; b < batch; b++)
					for (size_t r = 0; r < maxrows; r++)
						assert_int_equal(cck_qdot(t, Wp + r * stride, X + b * cols, cols,
						                          &ref[b * maxrows + r]),
						                 0);
				for (int nt = 1; nt <= 2; nt++) {
					assert_int_equal(cck_set_threads(nt), nt);
					for (size_t m = 0; m < NELEM(rows_list); m++) {
						size_t rows = rows_list[m];

						memset(Y, 0xa5, batch * maxrows * sizeof(float));
						assert_int_equal(cck_qmatvec(t, Wp, stride_list[s], X, Y, rows, cols),
						                 0);
						for (size_t r = 0; r < rows; r++)
							if (memcmp(&Y[r], &ref[r], sizeof(float)) != 0)
								fail_msg("%s tier %s, %d threads, %zu rows, stride "
								         "%zu: qmatvec y[%zu] "
								         "%.9g != qdot %.9g",
								         cck_type_name(t), tier, nt, rows, stride, r,
								         Y[r], ref[r]);
						memset(Y, 0xa5, batch * maxrows * sizeof(float));
						assert_int_equal(
						    cck_qmatmul(t, Wp, stride_list[s], X, Y, rows, cols, batch), 0);
						for (size_t b = 0; b < batch; b++)
							for (size_t r = 0; r < rows; r++)
								if (memcmp(&Y[b * rows + r], &ref[b * maxrows + r],
								           sizeof(float)) != 0)
									fail_msg("%s tier %s, %d threads, %zu rows, "
									         "stride %zu: qmatmul "
									         "Y[%zu][%zu] %.9g != qdot %.9g",
									         cck_type_name(t), tier, nt, rows,
									         stride, b, r, Y[b * rows + r],
									         ref[b * maxrows + r]);
					}
				}
				if (!s)
					free(Wp);
			}
		}
		free(W);
		free(wf);
		free(X);
		free(Y);
		free(ref);
	}
	assert_int_equal(cck_force_tier("auto"), 0);
	assert_int_equal(cck_set_threads(threads0), threads0);
}

/* The types whose dot products give the same bits on every tier (ggml's x86 order). */
static int tier_exact(int t)
{
	return t == CCK_TYPE_Q4_0 || t == CCK_TYPE_Q4_1 || t == CCK_TYPE_Q5_0 || t == CCK_TYPE_Q5_1 ||
	       t == CCK_TYPE_Q8_0;
}

/*
 * qmatmul's batched kernels (a weight block unpacked once for several columns): every column of
 * cck_qmatmul, batch 1..11, is bit for bit cck_qmatvec of that column, on every tier, with 1 and 2
 * threads (the largest shape is split), odd row counts, random blocks; for the tier_exact() types
 * also equal to the scalar tier's.
 */
static void test_qmatmul_columns(void **state)
{
	enum { BMAX = 11 };
	static const struct {
		size_t rows, blocks;
	} shapes[] = {{1, 3}, {6, 7}, {37, 5}, {403, 11}};
	int threads0 = cck_get_threads();

	(void)state;
	rng_state = 11;
	for (size_t k = 0; k < NELEM(all_types); k++) {
		int t = all_types[k];

		for (size_t sh = 0; sh < NELEM(shapes); sh++) {
			size_t rows = shapes[sh].rows, be = blck_of(t);
			/* the k-quants' super-blocks: fewer of them (their scalar dot is slow), still more than one */
			size_t blocks = be == CCK_QK_K ? (shapes[sh].blocks + 3) / 4 : shapes[sh].blocks;
			size_t cols = blocks * (be == 1 ? 37 : be), nb = cols / be, rb = rowb(t, cols);
			uint8_t *W = xmalloc(rb * rows);
			float *X = xmalloc(BMAX * cols * sizeof(float)), *Y = xmalloc(BMAX * rows * sizeof(float));
			float *ref = xmalloc(BMAX * rows * sizeof(float)), *sref = xmalloc(BMAX * rows * sizeof(float));

			rand_blocks(t, W, nb * rows, 0.0f);
			gen_x(X, BMAX * cols);
			for (int ti = 0; ti < ntiers(); ti++) {
				const char *tier = tier_at(ti);

				assert_int_equal(cck_force_tier(tier), 0);
				assert_int_equal(cck_set_threads(1), 1);
				for (size_t b = 0; b < BMAX; b++)
					assert_int_equal(cck_qmatvec(t, W, 0, X + b * cols, ref + b * rows, rows, cols),
					                 0);
				if (ti == 0)
					memcpy(sref, ref, BMAX * rows * sizeof(float));
				else if (tier_exact(t) && memcmp(sref, ref, BMAX * rows * sizeof(float)) != 0)
					fail_msg("%s tier %s: qmatvec differs from the scalar tier's", cck_type_name(t),
					         tier);
				for (int nt = 1; nt <= 2; nt++) {
					assert_int_equal(cck_set_threads(nt), nt);
					for (size_t batch = 1; batch <= BMAX; batch++) {
						memset(Y, 0xa5, BMAX * rows * sizeof(float));
						assert_int_equal(cck_qmatmul(t, W, 0, X, Y, rows, cols, batch), 0);
						for (size_t i = 0; i < batch * rows; i++)
							if (memcmp(&Y[i], &ref[i], sizeof(float)) != 0)
								fail_msg(
								    "%s tier %s, %d threads, %zu x %zu, batch %zu: "
								    "qmatmul Y[%zu][%zu] %.9g != qmatvec %.9g",
								    cck_type_name(t), tier, nt, rows, cols, batch,
								    i / rows, i % rows, Y[i], ref[i]);
					}
				}
			}
			free(W);
			free(X);
			free(Y);
			free(ref);
			free(sref);
		}
	}
	assert_int_equal(cck_force_tier("auto"), 0);
	assert_int_equal(cck_set_threads(threads0), threads0);
}

/*
 * cck_qmatmul_n: 3 matrices of one type (rows 370, 4 and 1301: chunks of the threaded job that cross from one
 * matrix into the next) times one batch, 1 and 2 threads, batch 1..9: each output bit for bit cck_qmatmul of its matrix
 * alone; row strides of their own; a matrix of 0 rows; and its errors.
 */
static void test_qmatmul_n(void **state)
{
	static const int types[] = {CCK_TYPE_F32, CCK_TYPE_F16, CCK_TYPE_Q4_0, CCK_TYPE_Q4_1, CCK_TYPE_Q8_0, CCK_TYPE_Q4_K};
	static const size_t rows[] = {370, 4, 1301, 0}; /* enough work to be threaded, in chunks */
	int threads0 = cck_get_threads();

	(void)state;
	rng_state = 17;
	for (size_t k = 0; k < NELEM(types); k++) {
		const int t = types[k];
		const size_t be = blck_of(t), cols = (be == 1 ? 8 : be == CCK_QK_K ? 2 : 9) * (be == 1 ? 32 : be);
		const size_t rb = rowb(t, cols);
		uint8_t *W[4];
		float *X = xmalloc(9 * cols * sizeof(float)), *Y[4], *R[4];
		struct cck_qmat m[4];

		gen_x(X, 9 * cols);
		for (size_t i = 0; i < 4; i++) {
			const size_t stride = rb + 16 * i; /* 0, 16, ... spare bytes a row */

			W[i] = xmalloc(stride * (rows[i] ? rows[i] : 1));
			memset(W[i], 0, stride * (rows[i] ? rows[i] : 1));
			for (size_t r = 0; r < rows[i]; r++) {
				float *row = xmalloc(cols * sizeof(float));

				gen_x(row, cols);
				assert_int_equal(cck_quantize(t, row, W[i] + r * stride, cols), 0);
				free(row);
			}
			Y[i] = xmalloc(9 * (rows[i] + 1) * sizeof(float));
			R[i] = xmalloc(9 * (rows[i] + 1) * sizeof(float));
			m[i] = (struct cck_qmat){t, W[i], stride, rows[i], Y[i]};
		}
		for (int nt = 1; nt <= 2; nt++) {
			assert_int_equal(cck_set_threads(nt), nt);
			for (size_t batch = 1; batch <= 9; batch++) {
				for (size_t i = 0; i < 4; i++) {
					memset(Y[i], 0xa5, 9 * (rows[i] + 1) * sizeof(float));
					assert_int_equal(cck_qmatmul(t, W[i], m[i].row_stride, X, R[i], rows[i], cols, batch),
					                 0);
				}
				assert_int_equal(cck_qmatmul_n(m, 4, X, cols, batch), 0);
				for (size_t i = 0; i < 4; i++)
					if (memcmp(Y[i], R[i], batch * rows[i] * sizeof(float)) != 0)
						fail_msg("%s, %d threads, batch %zu: cck_qmatmul_n's matrix %zu differs from "
						         "cck_qmatmul's",
						         cck_type_name(t), nt, batch, i);
			}
		}
		/* errors: none, too many, mixed types, NULL */
		assert_int_equal(cck_qmatmul_n(m, 0, X, cols, 1), -EINVAL);
		assert_int_equal(cck_qmatmul_n(NULL, 1, X, cols, 1), -EINVAL);
		{
			struct cck_qmat many[CCK_QMAT_MAX + 1];

			for (size_t i = 0; i < NELEM(many); i++)
				many[i] = m[0];
			assert_int_equal(cck_qmatmul_n(many, NELEM(many), X, cols, 1), -EINVAL);
			assert_int_equal(cck_qmatmul_n(many, CCK_QMAT_MAX, X, cols, 1), 0);
			many[1].type = t == CCK_TYPE_F32 ? CCK_TYPE_F16 : CCK_TYPE_F32;
			assert_int_equal(cck_qmatmul_n(many, 2, X, cols, 1), -EINVAL);
			many[1] = m[0];
			many[1].Y = NULL;
			assert_int_equal(cck_qmatmul_n(many, 2, X, cols, 1), -EINVAL);
		}
		for (size_t i = 0; i < 4; i++) {
			free(W[i]);
			free(Y[i]);
			free(R[i]);
		}
		free(X);
	}
	assert_int_equal(cck_set_threads(threads0), threads0);
}

/*
 * f16 / bf16 conversions through cck_quantize / cck_dequantize: widening exact
 * (checked against the fields of every half), narrowing to nearest even:
 * for every pair of adjacent finite halves, the midpoint goes to the even one
 * and its neighbours to the nearer one; overflow to inf, NaN stays NaN.
 */
static void test_f16_conv(void **state)
{
	(void)state;
	for (uint32_t h = 0; h < 0x10000; h++) {
		float f = f16_val((uint16_t)h);
		double r = f16_ref((uint16_t)h);

		if (isnan(r)) {
			assert_true(isnan(f));
			assert_true(isnan(f16_val(f16_bits(f))));
			continue;
		}
		if (!((double)f == r && !signbit(f) == !signbit(r)))
			fail_msg("f16 0x%04x widens to %.9g, expected %.9g", h, f, r);
		assert_int_equal(f16_bits(f), h);
		if ((h & 0x7fff) < 0x7c00) { /* finite: the midpoint to the next half up in magnitude */
			uint16_t up = (uint16_t)(h + 1), even = (h & 1) ? up : (uint16_t)h;
			float mid = (float)((r + f16_ref(up)) / 2); /* 12 significant bits: exact */

			if ((up & 0x7fff) == 0x7c00) { /* past 65504: the midpoint 65520 rounds to inf */
				mid = (h & 0x8000) ? -65520.0f : 65520.0f;
				even = up;
			}
			if (f16_bits(mid) != even)
				fail_msg("f16: midpoint %.9g between 0x%04x and 0x%04x gives 0x%04x", mid, h, up,
				         f16_bits(mid));
			assert_int_equal(f16_bits(nextafterf(mid, 0.0f)), h);
			assert_int_equal(f16_bits(nextafterf(mid, (h & 0x8000) ? -INFINITY : INFINITY)), up);
		}
	}
	assert_int_equal(f16_bits(1e30f), 0x7c00);
	assert_int_equal(f16_bits(-INFINITY), 0xfc00);
	assert_int_equal(f16_bits(ldexpf(1, -26)), 0);
	assert_int_equal(f16_bits(-0.0f), 0x8000);
	assert_int_equal(f16_bits(NAN) & 0x7e00, 0x7e00);
	/* bf16: widening is exact (the top half of the float), narrowing to nearest even */
	assert_true(bf16_val(0x3f80) == 1.0f);
	assert_true(bf16_val(0x0001) == ldexpf(1, -133));
	assert_int_equal(bf16_bits(1.0f + ldexpf(1, -8)), 0x3f80);
	assert_int_equal(bf16_bits(1.0f + ldexpf(3, -8)), 0x3f82);
	assert_int_equal(bf16_bits(1.0f + ldexpf(1, -8) + ldexpf(1, -20)), 0x3f81);
	assert_int_equal(bf16_bits(3.4e38f), 0x7f80); /* rounds up past the largest bf16 */
	assert_true(isnan(bf16_val(bf16_bits(NAN))));
}

/* ---- packed matrices (cck_qpack) -------------------------------------------------------------------------------- */

/*
 * Activations that quantize exactly: every block's first element is +-127 and the rest integers in [-127, 127], so
 * the q8_0 / q8_1 block has d = 1, its quants are the values, and q8_1's s = f16(sum). The packed order's reference
 * is then plain C here: per row, per block, acc = fmaf(isum, d_w * d_x, acc) (q4_1: then fmaf(m_w, s_x, acc)).
 */
static void exact_x(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = i % CCK_QK == 0 ? (rnd() & 1 ? 127.0f : -127.0f) : (float)((int)(rnd() % 255) - 127);
}

static float packed_ref(int t, const uint8_t *row, const float *x, size_t cols, double *mag)
{
	float acc = 0.0f;

	*mag = 0.0;

	for (size_t b = 0; b < cols / CCK_QK; b++) {
		const float *xb = x + b * CCK_QK;
		int32_t isum = 0, xsum = 0;

		for (int i = 0; i < CCK_QK; i++)
			xsum += (int32_t)xb[i];
		if (t == CCK_TYPE_Q4_1) {
			const struct cck_block_q4_1 *w = (const void *)(row + b * sizeof(*w));

			for (int i = 0; i < CCK_QK / 2; i++)
				isum += (w->qs[i] & 15) * (int32_t)xb[i] + (w->qs[i] >> 4) * (int32_t)xb[i + 16];
			acc = fmaf((float)isum, f16_val(w->d) * 1.0f, acc);
			acc = fmaf(f16_val(w->m), f16_val(f16_bits((float)xsum)), acc);
			*mag += fabs((double)isum * f16_val(w->d)) + fabs((double)f16_val(w->m) * xsum);
		} else {
			const struct cck_block_q8_0 *w = (const void *)(row + b * sizeof(*w));

			for (int i = 0; i < CCK_QK; i++)
				isum += w->qs[i] * (int32_t)xb[i];
			acc = fmaf((float)isum, f16_val(w->d) * 1.0f, acc);
			*mag += fabs((double)isum * f16_val(w->d));
		}
	}
	return acc;
}

/* Random blocks of t with scales of a typical size (products stay finite). */
static void packed_blocks(int t, uint8_t *W, size_t nb)
{
	size_t off[2], bytes = rowb(t, CCK_QK);
	int nf = f16_fields(t, off);

	rand_blocks(t, W, nb, 0.0f);
	for (size_t b = 0; b < nb; b++)
		for (int f = 0; f < nf; f++)
			put16(W + b * bytes + off[f], f16_bits((float)(gauss() * 0.01)));
}

/*
 * cck_qpack: the layout round-trips (cck_qunpack, cck_qpacked_row of every row), and cck_qmatvec / cck_qmatmul of the
 * packed matrix give the packed order (packed_ref) bit for bit on every tier, with 1 and 2 threads (400 rows x 576:
 * threaded, in chunks of whole groups), batch 1 .. 11 (the kernels' 8-column groups and their tails); they agree with
 * the row-major matrix's to float rounding; cck_qmatmul_n of packed matrices == each alone; and the errors.
 */
static void test_qpack(void **state)
{
	enum { BMAX = 11 };
	static const int types[] = {CCK_TYPE_Q4_1, CCK_TYPE_Q8_0};
	static const struct {
		size_t rows, blocks;
	} shapes[] = {{16, 1}, {48, 5}, {400, 18}};
	int threads0 = cck_get_threads();
	uint8_t one[64];

	(void)state;
	rng_state = 23;
	/* errors */
	assert_int_equal(cck_qpack(CCK_TYPE_Q4_0, one, 16, 32), -ENOTSUP);
	assert_int_equal(cck_qpack(CCK_TYPE_Q4_1, one, 15, 32), -EINVAL);
	assert_int_equal(cck_qpack(CCK_TYPE_Q4_1, one, 16, 33), -EINVAL);
	assert_int_equal(cck_qpack(CCK_TYPE_Q4_1, NULL, 16, 32), -EINVAL);
	assert_int_equal(cck_qpack(999, one, 16, 32), -EINVAL);
	assert_int_equal(cck_qunpack(CCK_TYPE_Q8_0, one, NULL, 16, 32), -EINVAL);
	assert_int_equal(cck_qpacked_row(CCK_TYPE_Q8_0, one, 16, 32, 16, one), -EINVAL);
	assert_int_equal(cck_qmatvec(CCK_TYPE_Q4_0 | CCK_TYPE_PACK16, one, 0, (float *)one, (float *)one, 16, 32),
	                 -EINVAL);
	for (size_t k = 0; k < NELEM(types); k++) {
		int t = types[k];

		for (size_t sh = 0; sh < NELEM(shapes); sh++) {
			const size_t rows = shapes[sh].rows, cols = shapes[sh].blocks * CCK_QK, rb = rowb(t, cols);
			uint8_t *W = xmalloc(rb * rows), *P = xmalloc(rb * rows), *Wu = xmalloc(rb * rows);
			float *X = xmalloc(BMAX * cols * sizeof(float)), *Y = xmalloc(BMAX * rows * sizeof(float));
			float *ref = xmalloc(BMAX * rows * sizeof(float)), *rm = xmalloc(BMAX * rows * sizeof(float));
			double *mag = xmalloc(BMAX * rows * sizeof(double));

			packed_blocks(t, W, rows * shapes[sh].blocks);
			exact_x(X, BMAX * cols);
			memcpy(P, W, rb * rows);
			assert_int_equal(cck_qpack(t, P, rows, cols), 0);
			assert_true(memcmp(P, W, rb * rows) != 0);
			assert_int_equal(cck_qunpack(t, P, Wu, rows, cols), 0);
			assert_memory_equal(Wu, W, rb * rows);
			for (size_t r = 0; r < rows; r++) {
				memset(Wu, 0, rb);
				assert_int_equal(cck_qpacked_row(t, P, rows, cols, r, Wu), 0);
				assert_memory_equal(Wu, W + r * rb, rb);
			}
			/* wrong packed calls: rows not whole groups, a stride that is not the row bytes */
			assert_int_equal(cck_qmatvec(t | CCK_TYPE_PACK16, P, 0, X, Y, rows - 1, cols), -EINVAL);
			assert_int_equal(cck_qmatvec(t | CCK_TYPE_PACK16, P, rb + 1, X, Y, rows, cols), -EINVAL);
			for (size_t b = 0; b < BMAX; b++)
				for (size_t r = 0; r < rows; r++)
					ref[b * rows + r] = packed_ref(t, W + r * rb, X + b * cols, cols, &mag[b * rows + r]);
			assert_int_equal(cck_force_tier("auto"), 0);
			assert_int_equal(cck_qmatmul(t, W, 0, X, rm, rows, cols, BMAX), 0);
			for (size_t i = 0; i < BMAX * rows; i++) /* to float rounding: a few ulps of the terms' magnitude */
				if (fabs((double)rm[i] - ref[i]) > 1e-6 * mag[i] + 1e-30)
					fail_msg("%s %zu x %zu: packed %.9g, row-major %.9g", cck_type_name(t), rows, cols,
					         ref[i], rm[i]);
			for (int ti = 0; ti < ntiers(); ti++) {
				const char *tier = tier_at(ti);

				assert_int_equal(cck_force_tier(tier), 0);
				for (int nt = 1; nt <= 2; nt++) {
					assert_int_equal(cck_set_threads(nt), nt);
					for (size_t batch = 1; batch <= BMAX; batch++) {
						memset(Y, 0xa5, BMAX * rows * sizeof(float));
						assert_int_equal(cck_qmatmul(t | CCK_TYPE_PACK16, P, batch == 3 ? rb : 0,
						                             X, Y, rows, cols, batch),
						                 0);
						for (size_t i = 0; i < batch * rows; i++)
							if (memcmp(&Y[i], &ref[i], sizeof(float)) != 0)
								fail_msg("%s packed, tier %s, %d threads, %zu x %zu, "
								         "batch %zu: Y[%zu][%zu] %.9g != %.9g",
								         cck_type_name(t), tier, nt, rows, cols, batch,
								         i / rows, i % rows, Y[i], ref[i]);
					}
				}
			}
			if (sh == NELEM(shapes) - 1) { /* qmatmul_n: this matrix, its first group and its first 96 rows */
				struct cck_qmat m[3] = {{t | CCK_TYPE_PACK16, P, 0, rows, Y},
				                        {t | CCK_TYPE_PACK16, P, 0, 16, rm},
				                        {t | CCK_TYPE_PACK16, P, 0, 96, rm + 16 * 5}};

				assert_int_equal(cck_set_threads(2), 2);
				assert_int_equal(cck_qmatmul_n(m, 3, X, cols, 5), 0);
				assert_memory_equal(Y, ref, 5 * rows * sizeof(float));
				for (size_t b = 0; b < 5; b++) {
					assert_memory_equal(rm + b * 16, ref + b * rows, 16 * sizeof(float));
					assert_memory_equal(rm + 80 + b * 96, ref + b * rows, 96 * sizeof(float));
				}
				m[1].rows = 15;
				assert_int_equal(cck_qmatmul_n(m, 3, X, cols, 5), -EINVAL);
			}
			free(W);
			free(P);
			free(Wu);
			free(X);
			free(Y);
			free(ref);
			free(rm);
			free(mag);
		}
	}
	assert_int_equal(cck_force_tier("auto"), 0);
	assert_int_equal(cck_set_threads(threads0), threads0);
	print_message("packed kernels: this host %s a fast one (q4_1 %d, q8_0 %d)\n",
	              cck_qpack_supported(CCK_TYPE_Q4_1) ? "has" : "lacks", cck_qpack_supported(CCK_TYPE_Q4_1),
	              cck_qpack_supported(CCK_TYPE_Q8_0));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_traits),          cmocka_unit_test(test_api_errors),
	    cmocka_unit_test(test_f16_conv),        cmocka_unit_test(test_dequant_random),
	    cmocka_unit_test(test_roundtrip),       cmocka_unit_test(test_qdot_bound),
	    cmocka_unit_test(test_act_quant),       cmocka_unit_test(test_qmatvec),
	    cmocka_unit_test(test_qmatmul_columns), cmocka_unit_test(test_qmatmul_n),
	    cmocka_unit_test(test_qpack),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	print_message("host tier %s\n", cck_host_tier());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
