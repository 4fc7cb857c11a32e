/* SPDX-License-Identifier: MIT */
/* forward.c: the llama / qwen2 forward pass over a batch of tokens, with llama.cpp's (ggml CPU) arithmetic. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cck.h"
#include "engine_internal.h"

/*
 * How this follows llama.cpp (llama-cpp-python's default context: flash attention off, f16 KV cache):
 *  - embeddings: the token's row of token_embd, dequantized (ggml_get_rows);
 *  - RMSNorm: the sum of squares in double, mean and 1/sqrt(mean + eps) in float, then x * scale * weight;
 *  - matrix products: libcck's cck_qmatmul, which quantizes the activations to the weight's vec_dot type as ggml;
 *  - RoPE: ggml_rope_cache_init's theta (pos * theta_scale^i by repeated float products, theta_scale =
 *    powf(base, -2/n_rot)), cosf/sinf in float; llama rotates adjacent pairs, qwen2 (NEOX) the two halves, as
 *    the compiler contracts ggml's rotate_pairs: x0' = fma(x0, cos, -(x1 sin)), x1' = fma(x0, sin, x1 cos);
 *  - K and V are stored as f16 (round to nearest even); V transposed, as llama.cpp's non-flash path keeps it;
 *  - KQ = K (f16) x q converted to f16 (ggml_mul_mat's vec_dot_type for f16), the products (exact in float) summed
 *    in the order of the code llama.cpp runs for it: tinyBLAS (llamafile_sgemm) when the llama_decode batch has
 *    2 or more tokens and head_dim % 16 == 0, else ggml_vec_dot_f16 (dot_f16_tiny / dot_f16_vec below);
 *  - softmax as ggml_soft_max_ext: (kq * scale) + mask, the max subtracted, ggml's vector expf (below), summed
 *    16 at a time (_mm512_reduce_add_ps's order) into a double, then each probability times (float)(1 / sum);
 *  - KQV = V^T (f16) x the probabilities converted to f16, over llama.cpp's n_kv: the used cells rounded up to a
 *    multiple of 256 (the probabilities past the causal limit are 0), in tinyBLAS's order for batches of 2 or more
 *    tokens (head_dim % 4 == 0), else ggml_vec_dot_f16's. So, as in llama.cpp, a row's result depends on whether its
 *    eval call had one token or more (one batch == chunks of 2 or more tokens, bit for bit; token by token differs
 *    in the last bits);
 *  - SwiGLU: silu(gate) * up with silu(x) = x / (1 + e(-x)), e: ggml's vector expf on whole groups of 16 of a
 *    row, libm's expf on the rest (ggml_vec_swiglu_f32); residual adds in float.
 * "ggml's vector expf" and the 16-lane sums are those of llama.cpp built for an AVX-512 (F + DQ) CPU, the one the
 * references come from; the arithmetic is emulated lane by lane in portable C (fmaf), so it is the same on any CPU.
 * The KV cache of a layer: K [n_cells][n_head_kv * head_dim], V [n_head_kv * head_dim][n_cells], f16 (n_cells: n_ctx
 * rounded up to KV_PAD).
 */

/* Tokens per pass through the layers: the scratch buffers are sized for it (results do not depend on it: every
 * row's arithmetic is the same whatever the batch). */
#define UBATCH 64
/* llama.cpp pads the attended KV span (n_kv) to a multiple of this (llama_kv_cache::get_n_kv). */
#define KV_PAD 256

struct cce_ctx {
	const struct cce_model *m;
	uint32_t n_ctx, pos;
	uint32_t n_cells;    /* n_ctx rounded up to KV_PAD: cache rows, and the row length of V^T */
	uint16_t *kc, *vc;   /* n_layer x n_cells x kv_dim each */
	float *x, *xn, *tmp; /* UBATCH x n_embd */
	float *q, *att;      /* UBATCH x q_dim */
	float *k, *v;        /* UBATCH x kv_dim */
	float *qh, *oh;      /* UBATCH x head_dim */
	float *kq;           /* UBATCH x n_cells: attention scores */
	float *s;            /* UBATCH x n_cells: probabilities */
	float *gate, *up;    /* UBATCH x n_ff */
	float *rope;         /* n_rot: cos, sin pairs of one position */
	float *kf, *vf;      /* n_cells x head_dim: one KV head's K rows, V^T rows, as floats */
	float *qf;           /* UBATCH x head_dim: q rows rounded to f16 */
	float *pf;           /* n_cells: one row of probabilities rounded to f16 */
	int batched;         /* the eval call has 2 or more tokens: llama.cpp's tinyBLAS orders */
};

/* f32 to IEEE half, round to nearest even (as F16C's vcvtps2ph and ggml's scalar conversion). */
static uint16_t f32_to_f16(float f)
{
	uint32_t x, ax, sign, h, rem;

	memcpy(&x, &f, sizeof(x));
	sign = (x >> 16) & 0x8000u;
	ax = x & 0x7fffffffu;
	if (ax > 0x7f800000u) /* NaN: quiet, payload's top bits kept */
		return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
	if (ax >= 0x477ff000u) /* >= 65520: rounds to infinity */
		return (uint16_t)(sign | 0x7c00u);
	if (ax < 0x38800000u) /* below 2^-14: a subnormal half (or 0); exact scaling, then rint (ties to even) */
		return (uint16_t)(sign | (uint32_t)rintf(fabsf(f) * 0x1p24f));
	h = ((((ax >> 23) - 127u + 15u) << 10) | ((ax & 0x7fffffu) >> 13));
	rem = ax & 0x1fffu;
	if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
		h++; /* a carry into the exponent is right */
	return (uint16_t)(sign | h);
}

/*
 * Functions that lean on fmaf: with FMA hardware a clone of their own uses the instruction, the default one calls
 * libm's (correctly rounded either way, so both give the same bits). Nothing else in them is contracted: every
 * other product is rounded where the code stores it.
 */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__ELF__)
#define FMA_CLONES __attribute__((target_clones("avx512f", "fma", "default")))
#else
#define FMA_CLONES
#endif

/*
 * ggml's AVX-512 ggml_v_expf, one lane: e^x by n = round(x / ln 2) (the 1.5 * 2^23 trick), b = x - n ln 2 in two
 * parts, a degree-5 polynomial in b, times 2^n (_mm512_scalef_ps: ldexpf); |n| > 192 gives 0 or infinity.
 */
static inline float v_expf(float x)
{
	const float r = 0x1.8p23f;
	const float z = fmaf(x, 0x1.715476p+0f, r), n = z - r;
	const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
	const float u = b * b;
	const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
	                     u, fmaf(0x1.ffffecp-1f, b, 1.0f));

	if (n != n)
		return n;
	if (fabsf(n) > 192.0f)
		return n <= 0.0f ? 0.0f : INFINITY;
	return ldexpf(j, (int)n);
}

/* _mm512_reduce_add_ps of 16 floats in GCC's order: halves added, then quarters, then (0 + 2) + (1 + 3). */
static inline float reduce16(const float *x)
{
	float t8[8], t4[4];

	for (int k = 0; k < 8; k++)
		t8[k] = x[k + 8] + x[k];
	for (int k = 0; k < 4; k++)
		t4[k] = t8[k + 4] + t8[k];
	return (t4[0] + t4[2]) + (t4[1] + t4[3]);
}

/* IEEE half to float (exact). */
static float f16_to_f32(uint16_t h)
{
	const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
	uint32_t x;
	float f;

	if (e == 0) { /* zero or subnormal: mant * 2^-24 */
		f = (float)mant * 0x1p-24f;
		return sign ? -f : f;
	}
	x = sign | (e == 31 ? 0x7f800000u | mant << 13 : (e + 112u) << 23 | mant << 13);
	memcpy(&f, &x, sizeof(f));
	return f;
}

/* x rounded to f16 and back. */
static float f16_round(float x)
{
	return f16_to_f32(f32_to_f16(x));
}

/*
 * Bulk conversions of the attention: F16C where the CPU has it (IEEE conversions, round to nearest even: the same
 * bits as the scalar code above), else the scalar code.
 */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_F16C_PATH 1

__attribute__((target("avx,f16c"))) static void f16_to_f32_f16c(const uint16_t *s, float *d, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
	for (; i < n; i++)
		d[i] = f16_to_f32(s[i]);
}

__attribute__((target("avx,f16c"))) static void f16_round_f16c(const float *s, float *d, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(d + i,
		                 _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT)));
	for (; i < n; i++)
		d[i] = f16_round(s[i]);
}

__attribute__((target("avx,f16c"))) static void f32_to_f16_f16c(const float *s, uint16_t *d, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8)
		_mm_storeu_si128((__m128i *)(d + i),
		                 _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
	for (; i < n; i++)
		d[i] = f32_to_f16(s[i]);
}

static int have_f16c(void)
{
	static int v = -1;

	if (v < 0)
		v = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
	return v;
}
#endif

static void f16_to_f32_n(const uint16_t *s, float *d, size_t n)
{
#ifdef HAVE_F16C_PATH
	if (have_f16c()) {
		f16_to_f32_f16c(s, d, n);
		return;
	}
#endif
	for (size_t i = 0; i < n; i++)
		d[i] = f16_to_f32(s[i]);
}

static void f16_round_n(const float *s, float *d, size_t n)
{
#ifdef HAVE_F16C_PATH
	if (have_f16c()) {
		f16_round_f16c(s, d, n);
		return;
	}
#endif
	for (size_t i = 0; i < n; i++)
		d[i] = f16_round(s[i]);
}

static void f32_to_f16_n(const float *s, uint16_t *d, size_t n)
{
#ifdef HAVE_F16C_PATH
	if (have_f16c()) {
		f32_to_f16_f16c(s, d, n);
		return;
	}
#endif
	for (size_t i = 0; i < n; i++)
		d[i] = f32_to_f16(s[i]);
}

/*
 * The f16 dot products of ggml on an AVX-512 CPU without AVX512-FP16 (a, b: f16 values as floats; their products
 * are exact in float). dot_f16_tiny: tinyBLAS<16, __m512> (llamafile_sgemm, ggml_mul_mat with 2 or more rows of
 * src1), n % 16 == 0: 16 lanes, lane l += a[16 c + l] * b[16 c + l] by FMAs over c, then reduce16.
 * dot_f16_vec: ggml_vec_dot_f16: 4 x 16 lanes over steps of 64 by FMAs, the 4 vectors added (0 + 2) + (1 + 3),
 * reduce16 into a double, the n % 64 last products added to it one by one.
 */
FMA_CLONES static float dot_f16_tiny(const float *a, const float *b, size_t n)
{
	float acc[16] = {0};

	for (size_t c = 0; c < n; c += 16)
		for (int l = 0; l < 16; l++)
			acc[l] = fmaf(a[c + l], b[c + l], acc[l]);
	return reduce16(acc);
}

FMA_CLONES static float dot_f16_vec(const float *a, const float *b, size_t n)
{
	const size_t np = n & ~(size_t)63;
	float acc[4][16] = {{0}};
	double sum;

	for (size_t i = 0; i < np; i += 64)
		for (int j = 0; j < 4; j++)
			for (int l = 0; l < 16; l++)
				acc[j][l] = fmaf(a[i + 16 * j + l], b[i + 16 * j + l], acc[j][l]);
	for (int l = 0; l < 16; l++) {
		acc[0][l] = acc[0][l] + acc[2][l];
		acc[1][l] = acc[1][l] + acc[3][l];
	}
	for (int l = 0; l < 16; l++)
		acc[0][l] = acc[0][l] + acc[1][l];
	sum = (double)reduce16(acc[0]);
	for (size_t i = np; i < n; i++)
		sum += (double)(a[i] * b[i]);
	return (float)sum;
}

/* y[i] = silu(g[i]) * u[i] over one row, as ggml_vec_swiglu_f32 (AVX-512: groups of 16 by v_expf, then libm). */
FMA_CLONES static void swiglu_row(float *y, const float *g, const float *u, size_t n)
{
	const size_t nv = n - n % 16;
	size_t i = 0;

	for (; i < nv; i++)
		y[i] = g[i] / (1.0f + v_expf(0.0f - g[i])) * u[i];
	for (; i < n; i++)
		y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void rms_norm(const float *x, const float *w, float *y, size_t n, float eps)
{
	double sum = 0.0;
	float mean, scale;

	for (size_t i = 0; i < n; i++)
		sum += (double)(x[i] * x[i]);
	mean = (float)(sum / (double)n);
	scale = 1.0f / sqrtf(mean + eps);
	for (size_t i = 0; i < n; i++)
		y[i] = x[i] * scale * w[i];
}

static void add_bias(float *y, const float *b, size_t rows, size_t n)
{
	if (!b)
		return;
	for (size_t r = 0; r < rows; r++)
		for (size_t i = 0; i < n; i++)
			y[r * n + i] += b[i];
}

/* Y (batch x rows) = W x X (batch x cols) [+ bias]. */
static int matmul(const struct cce_mat *w, const float *bias, const float *X, float *Y, size_t batch)
{
	int rc = cck_qmatmul(w->type, w->data, w->row_bytes, X, Y, w->rows, w->cols, batch);

	if (rc == 0)
		add_bias(Y, bias, batch, w->rows);
	return rc;
}

/* cos/sin of every rotated pair at position pos (ggml_rope_cache_init with ext_factor 0, mscale 1). */
static void rope_cache(const struct cce_model *m, uint32_t pos, float *cache)
{
	const struct cce_hparams *hp = &m->hp;
	const float theta_scale = powf(hp->rope_freq_base, -2.0f / (float)hp->n_rot);
	float theta = (float)pos;

	for (uint32_t i = 0; i < hp->n_rot / 2; i++) {
		float ff = m->rope_freqs ? m->rope_freqs[i] : 1.0f;
		float t = hp->rope_freq_scale * (theta / ff);

		cache[2 * i] = cosf(t);
		cache[2 * i + 1] = sinf(t);
		theta *= theta_scale;
	}
}

/* Rotate n_heads heads of head_dim at x. */
static void rope_apply(const struct cce_hparams *hp, const float *cache, float *x, uint32_t n_heads)
{
	const uint32_t nd = hp->n_rot, half = nd / 2;

	for (uint32_t h = 0; h < n_heads; h++) {
		float *p = x + (size_t)h * hp->head_dim;

		for (uint32_t i = 0; i < half; i++) {
			const float c = cache[2 * i], s = cache[2 * i + 1];
			/* normal: pairs (2i, 2i + 1); NEOX: pairs (i, i + n_rot / 2) */
			float *a = hp->rope_neox ? p + i : p + 2 * i;
			float *b = hp->rope_neox ? p + i + half : p + 2 * i + 1;
			const float x0 = *a, x1 = *b;

			const float x1s = x1 * s, x1c = x1 * c;

			*a = fmaf(x0, c, -x1s);
			*b = fmaf(x0, s, x1c);
		}
	}
}

/* Softmax of one row of scores (n_valid used, the rest masked) as ggml_soft_max_ext with a 0 / -inf mask, into
 * p[0..n_pad) (0 past n_valid; n_pad a multiple of 16). */
FMA_CLONES static void softmax_row(const float *kq, float *p, size_t n_valid, size_t n_pad, float scale)
{
	float max = -INFINITY;
	double sum = 0.0;
	float inv;

	for (size_t j = 0; j < n_valid; j++) {
		p[j] = kq[j] * scale;
		if (p[j] > max)
			max = p[j];
	}
	for (size_t j = 0; j < n_pad; j += 16) {
		for (size_t k = j; k < j + 16; k++)
			p[k] = k < n_valid ? v_expf(p[k] - max) : 0.0f; /* v_expf(-inf) = 0 */
		sum += (double)reduce16(p + j);
	}
	inv = (float)(1.0 / sum);
	for (size_t j = 0; j < n_valid; j++)
		p[j] *= inv;
}

/*
 * Attention of rows [r0, nb) of the batch (positions p0 + r) over the cache positions [0, p0 + nb), into
 * c->att (rows r0.. at their batch index). K and V of the batch are already in the cache.
 */
static int attention(struct cce_ctx *c, uint32_t il, uint32_t p0, size_t r0, size_t nb)
{
	const struct cce_model *m = c->m;
	const struct cce_hparams *hp = &m->hp;
	const size_t hd = hp->head_dim, n_kv = p0 + nb, nr = nb - r0;
	const size_t n_pad = (n_kv + KV_PAD - 1) / KV_PAD * KV_PAD; /* <= n_cells */
	const uint32_t group = hp->n_head / hp->n_head_kv;
	const uint16_t *kl = c->kc + (size_t)il * c->n_cells * m->kv_dim;
	const uint16_t *vl = c->vc + (size_t)il * c->n_cells * m->kv_dim;
	const float scale = 1.0f / sqrtf((float)hd);
	const int kq_tiny = c->batched && hd % 16 == 0, kqv_tiny = c->batched && hd % 4 == 0;

	for (uint32_t h = 0; h < hp->n_head; h++) {
		const uint32_t kvh = h / group;

		if (h % group == 0) { /* a new KV head: its K rows and V^T rows as floats */
			for (size_t j = 0; j < n_kv; j++)
				f16_to_f32_n(kl + j * m->kv_dim + kvh * hd, c->kf + j * hd, hd);
			/* V^T past n_kv meets probability 0: 0 there adds what any finite value would (an exact 0) */
			for (size_t d = 0; d < hd; d++) {
				f16_to_f32_n(vl + (kvh * hd + d) * c->n_cells, c->vf + d * c->n_cells, n_kv);
				memset(c->vf + d * c->n_cells + n_kv, 0, (n_pad - n_kv) * sizeof(float));
			}
		}
		for (size_t r = 0; r < nr; r++)
			f16_round_n(c->q + (r0 + r) * m->q_dim + (size_t)h * hd, c->qf + r * hd, hd);
		for (size_t r = 0; r < nr; r++) {
			float *kq = c->kq + r * n_kv, *o = c->att + (r0 + r) * m->q_dim + (size_t)h * hd;

			/* kq[j] = K[j] . q_r over the cached positions j */
			for (size_t j = 0; j < n_kv; j++)
				kq[j] = kq_tiny ? dot_f16_tiny(c->kf + j * hd, c->qf + r * hd, hd)
				                : dot_f16_vec(c->kf + j * hd, c->qf + r * hd, hd);
			softmax_row(kq, c->s, p0 + r0 + r + 1, n_pad, scale);
			f16_round_n(c->s, c->pf, n_pad);
			/* o[d] = V^T[d] . p over n_pad cells */
			for (size_t d = 0; d < hd; d++)
				o[d] = kqv_tiny ? dot_f16_tiny(c->vf + d * c->n_cells, c->pf, n_pad)
				                : dot_f16_vec(c->vf + d * c->n_cells, c->pf, n_pad);
		}
	}
	return 0;
}

/* One layer over the nb rows of c->x at positions p0..; last: only row nb - 1's output is needed after the KV
 * store (need_out 0: none). */
static int layer(struct cce_ctx *c, uint32_t il, uint32_t p0, size_t nb, int last, int need_out)
{
	const struct cce_model *m = c->m;
	const struct cce_hparams *hp = &m->hp;
	const struct cce_layer *L = &m->layers[il];
	const size_t ne = hp->n_embd, kvd = m->kv_dim;
	uint16_t *kl = c->kc + (size_t)il * c->n_cells * kvd;
	uint16_t *vl = c->vc + (size_t)il * c->n_cells * kvd;
	size_t r0;
	int rc;

	for (size_t r = 0; r < nb; r++)
		rms_norm(c->x + r * ne, L->attn_norm, c->xn + r * ne, ne, hp->rms_eps);
	if ((rc = matmul(&L->wq, L->bq, c->xn, c->q, nb)) || (rc = matmul(&L->wk, L->bk, c->xn, c->k, nb)) ||
	    (rc = matmul(&L->wv, L->bv, c->xn, c->v, nb)))
		return rc;
	for (size_t r = 0; r < nb; r++) {
		const uint32_t pos = p0 + (uint32_t)r;
		const float *kr = c->k + r * kvd, *vr = c->v + r * kvd;

		rope_cache(m, pos, c->rope);
		rope_apply(hp, c->rope, c->q + r * m->q_dim, hp->n_head);
		rope_apply(hp, c->rope, c->k + r * kvd, hp->n_head_kv);
		f32_to_f16_n(kr, kl + (size_t)pos * kvd, kvd);
		for (size_t i = 0; i < kvd; i++)
			vl[i * c->n_cells + pos] = f32_to_f16(vr[i]);
	}
	if (last && !need_out)
		return 0;
	r0 = last ? nb - 1 : 0; /* the last layer: only the row whose logits are wanted (as llama.cpp's out_ids) */
	if ((rc = attention(c, il, p0, r0, nb)))
		return rc;
	if ((rc = matmul(&L->wo, L->bo, c->att + r0 * m->q_dim, c->tmp + r0 * ne, nb - r0)))
		return rc;
	for (size_t i = r0 * ne; i < nb * ne; i++)
		c->x[i] += c->tmp[i];
	for (size_t r = r0; r < nb; r++)
		rms_norm(c->x + r * ne, L->ffn_norm, c->xn + r * ne, ne, hp->rms_eps);
	if ((rc = matmul(&L->w_gate, L->b_gate, c->xn + r0 * ne, c->gate, nb - r0)) ||
	    (rc = matmul(&L->w_up, L->b_up, c->xn + r0 * ne, c->up, nb - r0)))
		return rc;
	for (size_t r = 0; r < nb - r0; r++)
		swiglu_row(c->gate + r * hp->n_ff, c->gate + r * hp->n_ff, c->up + r * hp->n_ff, hp->n_ff);
	if ((rc = matmul(&L->w_down, L->b_down, c->gate, c->tmp + r0 * ne, nb - r0)))
		return rc;
	for (size_t i = r0 * ne; i < nb * ne; i++)
		c->x[i] += c->tmp[i];
	return 0;
}

int cce_ctx_new(const struct cce_model *m, uint32_t n_ctx, struct cce_ctx **ret)
{
	struct cce_ctx *c;
	size_t cache, ne, ub = UBATCH;
	uint32_t cells;

	if (!ret)
		return -EINVAL;
	*ret = NULL;
	if (!m || n_ctx == 0)
		return -EINVAL;
	ne = m->hp.n_embd;
	/* per layer n_cells * kv_dim halves: model dimensions are bounded (model.c), n_ctx is the caller's */
	if (n_ctx > UINT32_MAX - KV_PAD || (size_t)n_ctx + KV_PAD > SIZE_MAX / 4 / m->kv_dim / m->hp.n_layer / UBATCH)
		return -EOVERFLOW;
	cells = (n_ctx + KV_PAD - 1) / KV_PAD * KV_PAD;
	cache = (size_t)m->hp.n_layer * cells * m->kv_dim;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->m = m;
	c->n_ctx = n_ctx;
	c->n_cells = cells;
	c->kc = calloc(cache, sizeof(uint16_t));
	c->vc = calloc(cache, sizeof(uint16_t));
	c->x = malloc(ub * ne * sizeof(float));
	c->xn = malloc(ub * ne * sizeof(float));
	c->tmp = malloc(ub * ne * sizeof(float));
	c->q = malloc(ub * m->q_dim * sizeof(float));
	c->att = malloc(ub * m->q_dim * sizeof(float));
	c->k = malloc(ub * m->kv_dim * sizeof(float));
	c->v = malloc(ub * m->kv_dim * sizeof(float));
	c->qh = malloc(ub * m->hp.head_dim * sizeof(float));
	c->oh = malloc(ub * m->hp.head_dim * sizeof(float));
	c->kq = malloc(ub * cells * sizeof(float));
	c->s = malloc(ub * cells * sizeof(float));
	c->gate = malloc(ub * m->hp.n_ff * sizeof(float));
	c->up = malloc(ub * m->hp.n_ff * sizeof(float));
	c->rope = malloc(m->hp.n_rot * sizeof(float));
	c->kf = malloc((size_t)cells * m->hp.head_dim * sizeof(float));
	c->vf = malloc((size_t)cells * m->hp.head_dim * sizeof(float));
	c->qf = malloc(ub * m->hp.head_dim * sizeof(float));
	c->pf = malloc(cells * sizeof(float));
	if (!c->kc || !c->vc || !c->x || !c->xn || !c->tmp || !c->q || !c->att || !c->k || !c->v || !c->qh || !c->oh ||
	    !c->kq || !c->s || !c->gate || !c->up || !c->rope || !c->kf || !c->vf || !c->qf || !c->pf) {
		cce_ctx_free(c);
		return -ENOMEM;
	}
	*ret = c;
	return 0;
}

void cce_ctx_free(struct cce_ctx *c)
{
	if (!c)
		return;
	free(c->kc);
	free(c->vc);
	free(c->x);
	free(c->xn);
	free(c->tmp);
	free(c->q);
	free(c->att);
	free(c->k);
	free(c->v);
	free(c->qh);
	free(c->oh);
	free(c->kq);
	free(c->s);
	free(c->gate);
	free(c->up);
	free(c->rope);
	free(c->kf);
	free(c->vf);
	free(c->qf);
	free(c->pf);
	free(c);
}

uint32_t cce_ctx_pos(const struct cce_ctx *c)
{
	return c ? c->pos : 0;
}

void cce_ctx_reset(struct cce_ctx *c)
{
	if (c)
		c->pos = 0;
}

int cce_eval(struct cce_ctx *c, const int32_t *ids, size_t n, float *logits, const _Atomic int *cancel)
{
	const struct cce_model *m;
	const struct cce_hparams *hp;
	size_t ne, done = 0, last = 0;
	int rc;

	if (!c || !ids || n == 0)
		return -EINVAL;
	m = c->m;
	hp = &m->hp;
	ne = hp->n_embd;
	for (size_t i = 0; i < n; i++)
		if (ids[i] < 0 || (uint32_t)ids[i] >= hp->n_vocab)
			return -EINVAL;
	if (n > c->n_ctx - c->pos)
		return -ENOSPC;
	c->batched = n >= 2; /* as a llama_decode of n tokens: its f16 attention products in tinyBLAS's order */
	while (done < n) {
		const size_t nb = n - done < UBATCH ? n - done : UBATCH;
		const int final = done + nb == n;
		const uint32_t p0 = c->pos + (uint32_t)done;

		for (size_t r = 0; r < nb; r++) {
			const unsigned char *row =
			    (const unsigned char *)m->tok_embd.data + (size_t)ids[done + r] * m->tok_embd.row_bytes;

			if ((rc = cck_dequantize(m->tok_embd.type, row, c->x + r * ne, ne)))
				return rc;
		}
		for (uint32_t il = 0; il < hp->n_layer; il++) {
			if (cancel && atomic_load_explicit(cancel, memory_order_relaxed))
				return -ECANCELED;
			rc = layer(c, il, p0, nb, il + 1 == hp->n_layer, final && logits);
			if (rc)
				return rc;
		}
		done += nb;
		last = nb - 1;
	}
	c->pos += (uint32_t)n;
	if (logits) {
		rms_norm(c->x + last * ne, m->output_norm, c->xn, ne, hp->rms_eps);
		if ((rc = matmul(&m->output, m->output_b, c->xn, logits, 1)))
			return rc;
	}
	return 0;
}
