/* SPDX-License-Identifier: MIT */
/* forward.c: the llama / qwen2 forward pass over a batch of tokens of one or more sequences (continuous batching),
 * with llama.cpp's (ggml CPU) arithmetic. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cck.h"
#include "ccg.h"
#include "engine_internal.h"

/*
 * How this follows llama.cpp (llama-cpp-python's default context: flash attention off, f16 KV cache):
 *  - embeddings: the token's row of token_embd, dequantized (ggml_get_rows);
 *  - RMSNorm: the sum of squares in double, mean and 1/sqrt(mean + eps) in float, then x * scale * weight;
 *  - matrix products: libcck's cck_qmatmul, which quantizes the activations to the weight's vec_dot type as ggml (the
 *    offloaded ones: libccgpu's ccg_mat_mul, the same quantization and integer sums on the OpenCL device);
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
 *    multiple of 256 (the probabilities past the causal limit are 0: here the products stop at the row's causal
 *    span rounded up to 64, which adds the same exact zeros less often), in tinyBLAS's order for batches of 2 or more
 *    tokens (head_dim % 4 == 0), else ggml_vec_dot_f16's. So, as in llama.cpp, a row's result depends on whether its
 *    eval call had one token or more (one batch == chunks of 2 or more tokens, bit for bit; token by token differs
 *    in the last bits); cce_eval_batch takes that from each sequence's prompt flag;
 *  - SwiGLU: silu(gate) * up with silu(x) = x / (1 + e(-x)), e: ggml's vector expf on whole groups of 16 of a
 *    row, libm's expf on the rest (ggml_vec_swiglu_f32); residual adds in float.
 * "ggml's vector expf" and the 16-lane sums are those of llama.cpp built for an AVX-512 (F + DQ) CPU, the one the
 * references come from; the arithmetic is emulated lane by lane in portable C (fmaf), so it is the same on any CPU.
 * The KV cache of a layer: K [n_cells][kv_dim] (kv_dim = n_head_kv * head_dim), V^T in blocks of KV_BLOCK cells, each
 * [kv_dim][KV_BLOCK], f16 (n_cells: n_ctx rounded up to KV_PAD). Storing a position writes one K row and one column of
 * one V^T block: a context's pages are touched (its memory made resident) as its positions are used, not all at once
 * as one V^T row per value over every cell would. The products read the same values in the same order.
 * A pass (struct cce_work) takes the rows of several sequences: the norms and matrix products run over all of them
 * (cck_qmatmul's rows do not depend on the batch), RoPE and the KV store at each row's own position and context, the
 * attention per sequence over its own cache, split in items over libcck's pool (cck_parallel). On libcck's avx512
 * tier the attention and SwiGLU run AVX-512 code doing the same operations in the same order (CCK_TIER=avx2 runs the
 * portable code: the tests compare the two).
 */

/* Tokens per pass of cce_eval (its own work's max_tokens; results do not depend on it: every row's arithmetic is the
 * same whatever the batch). */
#define UBATCH 64
/* llama.cpp pads the attended KV span (n_kv) to a multiple of this (llama_kv_cache::get_n_kv). */
#define KV_PAD 256
/* The KQV products of a row run over its causal span rounded up to this: past the span the probabilities are 0 and
 * add exact zeros, so any multiple of 64 (ggml_vec_dot_f16's step) from there to llama.cpp's n_kv gives its bits. */
#define SPAN_PAD 64
/* Cells of a V^T block: a multiple of 64 (a KQV step reads 64 cells of a row from one block) dividing KV_PAD. */
#define KV_BLOCK 64
_Static_assert(KV_BLOCK % 64 == 0 && KV_PAD % KV_BLOCK == 0, "KV_BLOCK: 64-cell steps, whole blocks of cells");
/* Logit rows of one batched output matmul (cce_work_new's works; cce_eval's own writes its one row directly). */
#define OUT_ROWS 16
/* Attention items when it runs on several threads: rows of a prompt per item, and the work (rows x heads x cached
 * positions x head_dim) under which one thread does it all (waking the pool would cost more). */
#define ATT_ROWS 16
#define ATT_PAR_MIN 32768
/* q heads of a KV group that the AVX-512 attention runs together (sharing each K and V load; their accumulators fill
 * the registers). */
#define ATT_G 3

struct cce_ctx {
	const struct cce_model *m;
	uint32_t n_ctx, pos;
	uint32_t n_cells;        /* n_ctx rounded up to KV_PAD: cache rows, and the row length of V^T */
	uint16_t *kc, *vc;       /* n_layer x n_cells x kv_dim each: K rows, V^T blocks (one mapping: kv_bytes) */
	size_t kv_bytes;         /* the mapping's size */
	struct cce_work *work;   /* cce_eval's scratch, made by its first call */
	int named;               /* set while cce_eval_batch checks that no context is named twice */
};

/* A sequence's rows in a pass: rows [r0, r0 + n) at positions p0.., their attention output at rows o0.. of att. */
struct att_seg {
	const struct cce_ctx *c;
	uint32_t r0, n, p0, o0;
	int prompt;
};

/* An attention work item: rows [r0, r0 + n) of one segment (positions p0..), q heads [h0, h1) of one KV head. */
struct att_item {
	const struct cce_ctx *c;
	uint32_t r0, n, p0, o0, h0, h1;
	int prompt;
};

/* One part's attention scratch (the parts run at once). */
struct att_part {
	float *kf, *vf;     /* max_cells x head_dim: one KV head's K rows, V^T rows (row stride max_cells), as floats
	                       for the portable code (NULL when the AVX-512 code runs: it reads the cache) */
	float *qf;          /* ATT_G x head_dim: q rows rounded to f16 */
	float *kq, *pf;     /* ATT_G x max_cells: scores, probabilities rounded to f16 (a row's heads) */
	float *s;           /* max_cells: probabilities */
};

struct cce_work {
	const struct cce_model *m;
	uint32_t max_tokens, max_ctx, max_cells, out_rows;
	size_t bytes;
	void *mem;               /* every buffer below, in one allocation */
	float *x, *xn, *tmp;     /* max_tokens x n_embd */
	float *q, *att;          /* max_tokens x q_dim */
	float *k, *v;            /* max_tokens x kv_dim */
	float *gate, *up;        /* max_tokens x n_ff */
	float *rope;             /* max_tokens x n_rot: cos, sin pairs of each row's position */
	float *out;              /* out_rows x n_vocab: the logits of a batched output matmul */
	struct cce_ctx **rctx;   /* max_tokens: each row's context */
	uint32_t *rpos;          /* max_tokens: each row's position */
	struct att_seg *segs;    /* max_tokens: the sequences of the pass */
	struct att_seg *wsegs;   /* max_tokens: the rows whose logits are wanted (the last layer's attention) */
	float **wlog;            /* max_tokens: where those logits go */
	struct att_item *items;  /* max_tokens x n_head: the attention of the current layer */
	struct att_part *parts;  /* nparts: each attention part's scratch */
	int nparts;              /* the pool's threads when the work was made */
	int kv_floats;           /* parts have kf, vf: the portable attention can run */
	size_t nb, nseg, nw, nitems; /* the current pass: rows, sequences, wanted rows, attention items */
	int att_nparts;          /* parts its attention runs on */
	int avx512, att512;      /* the call runs the AVX-512 code (swiglu_512), and att_heads_512 */
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
	if (n >= -126.0f && n <= 127.0f) { /* 2^n is a normal float: one correctly rounded product, as ldexpf */
		const uint32_t bits = (uint32_t)((int)n + 127) << 23;
		float p2;

		memcpy(&p2, &bits, sizeof(p2));
		return j * p2;
	}
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

/*
 * RMS norm of nr rows of n at x (row stride n) into y, as ggml_rms_norm: each row's sum of squares in double, in
 * element order. Four rows at a time, their sums side by side: each row's arithmetic is the same as alone, but four
 * chains of dependent double adds overlap instead of one waiting on the last.
 */
static void rms_norm_rows(const float *x, const float *w, float *y, size_t nr, size_t n, float eps)
{
	size_t r = 0;

	for (; r + 4 <= nr; r += 4) {
		const float *x0 = x + r * n, *x1 = x0 + n, *x2 = x1 + n, *x3 = x2 + n;
		double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
		float sc[4];

		for (size_t i = 0; i < n; i++) {
			s0 += (double)(x0[i] * x0[i]);
			s1 += (double)(x1[i] * x1[i]);
			s2 += (double)(x2[i] * x2[i]);
			s3 += (double)(x3[i] * x3[i]);
		}
		sc[0] = 1.0f / sqrtf((float)(s0 / (double)n) + eps);
		sc[1] = 1.0f / sqrtf((float)(s1 / (double)n) + eps);
		sc[2] = 1.0f / sqrtf((float)(s2 / (double)n) + eps);
		sc[3] = 1.0f / sqrtf((float)(s3 / (double)n) + eps);
		for (int k = 0; k < 4; k++)
			for (size_t i = 0; i < n; i++)
				y[(r + k) * n + i] = x[(r + k) * n + i] * sc[k] * w[i];
	}
	for (; r < nr; r++) {
		const float *xr = x + r * n;
		double sum = 0.0;
		float scale;

		for (size_t i = 0; i < n; i++)
			sum += (double)(xr[i] * xr[i]);
		scale = 1.0f / sqrtf((float)(sum / (double)n) + eps);
		for (size_t i = 0; i < n; i++)
			y[r * n + i] = xr[i] * scale * w[i];
	}
}

static void add_bias(float *y, const float *b, size_t rows, size_t n)
{
	if (!b)
		return;
	for (size_t r = 0; r < rows; r++)
		for (size_t i = 0; i < n; i++)
			y[r * n + i] += b[i];
}

/* Y (batch x rows) = W x X (batch x cols) [+ bias]: on the device where W was offloaded, else libcck. */
static int matmul(const struct cce_mat *w, const float *bias, const float *X, float *Y, size_t batch)
{
	int rc = w->dev ? ccg_mat_mul(w->dev, X, Y, batch)
	                : cck_qmatmul(w->type, w->data, w->row_bytes, X, Y, w->rows, w->cols, batch);

	if (rc == 0)
		add_bias(Y, bias, batch, w->rows);
	return rc;
}

/*
 * Y_i = W_i x X for n matrices of the same input (Q, K, V; gate, up): on the CPU, one libcck job for all of them when
 * they share a type (the activations quantized once, the rows of all shared out among the threads), bit for bit what
 * the separate products give; else one by one.
 */
static int matmul_n(const struct cce_mat *const *w, const float *const *bias, const float *X, float *const *Y,
                    size_t n, size_t batch)
{
	struct cck_qmat m[CCK_QMAT_MAX];
	int rc = 0, same = n <= CCK_QMAT_MAX;

	for (size_t i = 0; i < n && same; i++) {
		same = !w[i]->dev && w[i]->type == w[0]->type && w[i]->cols == w[0]->cols;
		m[i] = (struct cck_qmat){w[i]->type, w[i]->data, w[i]->row_bytes, w[i]->rows, Y[i]};
	}
	if (!same) {
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = matmul(w[i], bias[i], X, Y[i], batch);
		return rc;
	}
	rc = cck_qmatmul_n(m, n, X, w[0]->cols, batch);
	for (size_t i = 0; i < n && rc == 0; i++)
		add_bias(Y[i], bias[i], batch, w[i]->rows);
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

/* Rotate n_heads heads of head_dim at x (the FMA clones: fmaf inline, not a libm call per element). */
FMA_CLONES static void rope_apply(const struct cce_hparams *hp, const float *cache, float *x, uint32_t n_heads)
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

/* ---- attention: items over the parts of cck_parallel ---------------------------------------------------------- */

static size_t span_of(size_t n)
{
	return (n + SPAN_PAD - 1) / SPAN_PAD * SPAN_PAD;
}

/* V^T row d of layer il of c in its first block: cell j of the row at + (j / KV_BLOCK) * kv_dim * KV_BLOCK (the block)
 * + j % KV_BLOCK; the next row at + KV_BLOCK. */
static uint16_t *v_rows(const struct cce_ctx *c, uint32_t il, size_t d)
{
	return c->vc + (size_t)il * c->n_cells * c->m->kv_dim + d * KV_BLOCK;
}

/*
 * KV head kvh of layer il of c over positions [0, n_kv) into a part's scratch: K rows and V^T rows as floats, V^T 0
 * from n_kv to the end of its span (where the probabilities are 0: 0 adds what any finite value would, an exact 0).
 */
static void att_load(const struct cce_work *w, const struct cce_ctx *c, uint32_t il, uint32_t kvh, size_t n_kv,
                     const struct att_part *p)
{
	const size_t hd = w->m->hp.head_dim, kvd = w->m->kv_dim, st = w->max_cells;
	const uint16_t *kl = c->kc + (size_t)il * c->n_cells * kvd + kvh * hd, *vl = v_rows(c, il, kvh * hd);

	for (size_t j = 0; j < n_kv; j++)
		f16_to_f32_n(kl + j * kvd, p->kf + j * hd, hd);
	for (size_t d = 0; d < hd; d++) {
		for (size_t j = 0; j < n_kv; j += KV_BLOCK)
			f16_to_f32_n(vl + j * kvd + d * KV_BLOCK, p->vf + d * st + j,
			             n_kv - j < KV_BLOCK ? n_kv - j : KV_BLOCK);
		memset(p->vf + d * st + n_kv, 0, (span_of(n_kv) - n_kv) * sizeof(float));
	}
}

/*
 * One head of one row at position pos: q (f32) against the loaded K and V, into o[head_dim]. prompt: the products in
 * tinyBLAS's order (part of a llama_decode of 2 or more tokens), else in ggml_vec_dot_f16's.
 */
static void att_row(const struct cce_work *w, const struct att_part *p, const float *q, uint32_t pos, int prompt,
                    float *o)
{
	const size_t hd = w->m->hp.head_dim, st = w->max_cells, n_valid = (size_t)pos + 1, n_span = span_of(n_valid);
	const int kq_tiny = prompt && hd % 16 == 0, kqv_tiny = prompt && hd % 4 == 0;
	const float scale = 1.0f / sqrtf((float)hd);

	f16_round_n(q, p->qf, hd);
	/* kq[j] = K[j] . q over the positions the row sees (the causal mask hides the others) */
	for (size_t j = 0; j < n_valid; j++)
		p->kq[j] = kq_tiny ? dot_f16_tiny(p->kf + j * hd, p->qf, hd) : dot_f16_vec(p->kf + j * hd, p->qf, hd);
	softmax_row(p->kq, p->s, n_valid, n_span, scale);
	f16_round_n(p->s, p->pf, n_span);
	/* o[d] = V^T[d] . p */
	for (size_t d = 0; d < hd; d++)
		o[d] = kqv_tiny ? dot_f16_tiny(p->vf + d * st, p->pf, n_span)
		                : dot_f16_vec(p->vf + d * st, p->pf, n_span);
}

/*
 * The attention of a row (head_dim % 16 == 0) and SwiGLU on AVX-512 (run on libcck's avx512 tier: F, DQ, BW, VL): the
 * same operations in the same order as the portable code (ggml's own AVX-512 code is what that code emulates), with
 * K and V read as f16 straight from the cache and the accumulators in registers.
 */
#ifdef HAVE_F16C_PATH
#define HAVE_AVX512_PATH 1
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

/* reduce16 of a register. */
T512 static inline float reduce16_512(__m512 x)
{
	const __m256 t8 = _mm256_add_ps(_mm512_castps512_ps256(x), _mm512_extractf32x8_ps(x, 1));
	const __m128 t4 = _mm_add_ps(_mm256_castps256_ps128(t8), _mm256_extractf128_ps(t8, 1));
	const __m128 s = _mm_add_ps(t4, _mm_movehl_ps(t4, t4)); /* t4[0] + t4[2], t4[1] + t4[3] */

	return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* v_expf of 16 lanes (_mm512_scalef_ps rounds as ldexpf does). */
T512 static inline __m512 v_expf_512(__m512 x)
{
	const __m512 r = _mm512_set1_ps(0x1.8p23f), zero = _mm512_setzero_ps();
	const __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r), r);
	const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f),
	                                  _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
	const __m512 u = _mm512_mul_ps(b, b);
	const __m512 j = _mm512_fmadd_ps(
	    _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
	                    _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f))),
	    u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f)));
	const __mmask16 big = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192.0f), _CMP_GT_OQ);
	const __mmask16 up = _mm512_cmp_ps_mask(n, zero, _CMP_GT_OQ);
	__m512 y = _mm512_scalef_ps(j, n);

	y = _mm512_mask_mov_ps(y, big, _mm512_mask_mov_ps(zero, up, _mm512_set1_ps(INFINITY)));
	return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(n, n, _CMP_UNORD_Q), n);
}

/* 16 f16 values at p as floats, those at index >= avail as 0 (not read). */
T512 static inline __m512 load_f16_512(const uint16_t *p, ptrdiff_t avail)
{
	const __mmask16 k = avail >= 16 ? 0xffff : avail <= 0 ? 0 : (__mmask16)((1u << avail) - 1);

	return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, p));
}

/*
 * reduce16 of 16 registers at once: r[e] = reduce16(x[e]), the same additions of the same values, lanes shuffled
 * between the registers (slot 4 m + l takes x[4 l + m]: the results then come out in x's order).
 */
T512 static inline __m512 reduce16x16_512(const __m512 *x)
{
	__m512 y[8], z[4], u[2];

	for (int i = 0; i < 8; i++) { /* halves: [t8 of slot 2i, t8 of slot 2i + 1] */
		const __m512 a = x[4 * (2 * i % 4) + 2 * i / 4], b = x[4 * ((2 * i + 1) % 4) + (2 * i + 1) / 4];

		y[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xee));
	}
	for (int i = 0; i < 4; i++) /* quarters: t4 of slots 4i..4i + 3, one per 128-bit lane */
		z[i] = _mm512_add_ps(_mm512_shuffle_f32x4(y[2 * i], y[2 * i + 1], 0x88),
		                     _mm512_shuffle_f32x4(y[2 * i], y[2 * i + 1], 0xdd));
	for (int i = 0; i < 2; i++) /* t4[0] + t4[2], t4[1] + t4[3] */
		u[i] = _mm512_add_ps(_mm512_shuffle_ps(z[2 * i], z[2 * i + 1], 0x44),
		                     _mm512_shuffle_ps(z[2 * i], z[2 * i + 1], 0xee));
	return _mm512_add_ps(_mm512_shuffle_ps(u[0], u[1], 0x88), _mm512_shuffle_ps(u[0], u[1], 0xdd));
}

/* Lanes of 4 accumulators combined as ggml_vec_dot_f16 does: (0 + 2) + (1 + 3). */
T512 static inline __m512 combine4_512(const __m512 *acc)
{
	return _mm512_add_ps(_mm512_add_ps(acc[0], acc[2]), _mm512_add_ps(acc[1], acc[3]));
}

/*
 * The lanes of K row k . q_g for the g < G q heads at q (stride hd), before their reduce16: dot_f16_tiny's one chain,
 * or dot_f16_vec's 4 over steps of 64 (up to np) combined. Each K value is loaded and converted once for all G heads.
 * Inlined with tiny and G constant: the accumulators stay in registers.
 */
__attribute__((always_inline)) T512 static inline void kq_lanes_512(const uint16_t *k, const float *q, size_t hd,
                                                                  size_t np, int tiny, int G, __m512 *out)
{
	__m512 acc[ATT_G][4];

#pragma GCC unroll 3
	for (int g = 0; g < G; g++)
#pragma GCC unroll 4
		for (int l = 0; l < 4; l++)
			acc[g][l] = _mm512_setzero_ps();
	if (tiny) {
		for (size_t c = 0; c < hd; c += 16) {
			const __m512 kv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(k + c)));

#pragma GCC unroll 3
			for (int g = 0; g < G; g++)
				acc[g][0] = _mm512_fmadd_ps(kv, _mm512_loadu_ps(q + g * hd + c), acc[g][0]);
		}
#pragma GCC unroll 3
		for (int g = 0; g < G; g++)
			out[g] = acc[g][0];
		return;
	}
	for (size_t i = 0; i < np; i += 64)
#pragma GCC unroll 4
		for (int l = 0; l < 4; l++) {
			const __m512 kv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(k + i + 16 * l)));

#pragma GCC unroll 3
			for (int g = 0; g < G; g++)
				acc[g][l] = _mm512_fmadd_ps(kv, _mm512_loadu_ps(q + g * hd + i + 16 * l), acc[g][l]);
		}
#pragma GCC unroll 3
	for (int g = 0; g < G; g++)
		out[g] = combine4_512(acc[g]);
}

/* kq_512's positions [0, n) by 16 (one shared reduction a head: only when nothing is left for dot_f16_vec's double,
 * as then its float result is the sum itself); returns where it stopped. */
__attribute__((always_inline)) T512 static inline size_t kq16_512(const uint16_t *k, size_t kst, const float *q,
                                                                size_t hd, size_t n, int tiny, int G, float *kq,
                                                                size_t kqst)
{
	const size_t np = hd & ~(size_t)63;
	size_t j = 0;

	if (!tiny && np != hd)
		return 0;
	for (; j + 16 <= n; j += 16) {
		__m512 t[ATT_G][16], l[ATT_G];

		for (int r = 0; r < 16; r++) {
			kq_lanes_512(k + (j + (size_t)r) * kst, q, hd, np, tiny, G, l);
#pragma GCC unroll 3
			for (int g = 0; g < G; g++)
				t[g][r] = l[g];
		}
#pragma GCC unroll 3
		for (int g = 0; g < G; g++)
			_mm512_storeu_ps(kq + g * kqst + j, reduce16x16_512(t[g]));
	}
	return j;
}

/*
 * kq_g[j] = K[j] . q_g for j < n and the g < G (<= ATT_G) q heads at q (stride hd), into kq (stride kqst); K rows of hd
 * (% 16 == 0) f16 at k + j * kst: dot_f16_vec's order (its hd % 64 last products added one by one in double), or
 * dot_f16_tiny's (tiny).
 */
T512 static void kq_512(const uint16_t *k, size_t kst, const float *q, size_t hd, size_t n, int tiny, int G, float *kq,
                        size_t kqst)
{
	const size_t np = hd & ~(size_t)63;
	size_t j;

	/* constant tiny and G for the inlined code */
	if (G == 3)
		j = tiny ? kq16_512(k, kst, q, hd, n, 1, 3, kq, kqst) : kq16_512(k, kst, q, hd, n, 0, 3, kq, kqst);
	else if (G == 2)
		j = tiny ? kq16_512(k, kst, q, hd, n, 1, 2, kq, kqst) : kq16_512(k, kst, q, hd, n, 0, 2, kq, kqst);
	else
		j = tiny ? kq16_512(k, kst, q, hd, n, 1, 1, kq, kqst) : kq16_512(k, kst, q, hd, n, 0, 1, kq, kqst);
	for (; j < n; j++)
		for (int g = 0; g < G; g++) {
			const uint16_t *kr = k + j * kst;
			const float *qg = q + (size_t)g * hd;
			__m512 l;
			double sum;

			kq_lanes_512(kr, qg, hd, np, tiny, 1, &l);
			if (tiny) {
				kq[g * kqst + j] = reduce16_512(l);
				continue;
			}
			sum = (double)reduce16_512(l);
			for (size_t i = np; i < hd; i++)
				sum += (double)(f16_to_f32(kr[i]) * qg[i]);
			kq[g * kqst + j] = (float)sum;
		}
}

/*
 * One step of 64 cells of kqv_512 for R V^T rows (at v, in blocks: see kqv_512) and G heads (p_g at p + g * pst); full:
 * all 64 cells readable (no masks). Each V value is loaded and converted once for all G heads.
 */
__attribute__((always_inline)) T512 static inline void kqv_step_512(__m512 acc[4][ATT_G][4], const uint16_t *v,
                                                                  size_t bst, ptrdiff_t n_kv, const float *p,
                                                                  size_t pst, size_t i, int tiny, int full, int R,
                                                                  int G)
{
	const uint16_t *vb = v + i / KV_BLOCK * bst + i % KV_BLOCK; /* the 64 cells from i: in one block */

#pragma GCC unroll 4
	for (int l = 0; l < 4; l++) {
		const size_t at = i + 16 * (size_t)l;
		__m512 vv[4];

#pragma GCC unroll 4
		for (int r = 0; r < R; r++) {
			const uint16_t *vr = vb + r * KV_BLOCK + 16 * l;

			vv[r] = full ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)vr))
			             : load_f16_512(vr, n_kv - (ptrdiff_t)at);
		}
		/* tiny: one chain over every group of 16 (acc[r][g][0]) */
#pragma GCC unroll 3
		for (int g = 0; g < G; g++) {
			const __m512 pl = _mm512_loadu_ps(p + g * pst + at);

#pragma GCC unroll 4
			for (int r = 0; r < R; r++)
				acc[r][g][tiny ? 0 : l] = _mm512_fmadd_ps(vv[r], pl, acc[r][g][tiny ? 0 : l]);
		}
	}
}

/* kqv_512 of R V^T rows for G heads (tiny, R and G constant when inlined): o_g[r] at o + g * hd + r. */
__attribute__((always_inline)) T512 static inline void kqv_rows_512(const uint16_t *v, size_t bst, ptrdiff_t n_kv,
                                                                  const float *p, size_t pst, size_t n, size_t full,
                                                                  size_t hd, int tiny, int R, int G, float *o)
{
	__m512 acc[4][ATT_G][4];
	size_t i = 0;

#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 3
		for (int g = 0; g < G; g++)
#pragma GCC unroll 4
			for (int l = 0; l < 4; l++)
				acc[r][g][l] = _mm512_setzero_ps();
	for (; i < full; i += 64)
		kqv_step_512(acc, v, bst, n_kv, p, pst, i, tiny, 1, R, G);
	for (; i < n; i += 64)
		kqv_step_512(acc, v, bst, n_kv, p, pst, i, tiny, 0, R, G);
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 3
		for (int g = 0; g < G; g++)
			o[(size_t)g * hd + (size_t)r] = reduce16_512(tiny ? acc[r][g][0] : combine4_512(acc[r][g]));
}

/*
 * o_g[d] = V^T[d] . p_g over n (% 64 == 0) cells for d < hd (% 4 == 0) and the g < G (<= ATT_G) heads (p_g at
 * p + g * pst, o_g at o + g * hd); V^T row d's cell j at v + (j / KV_BLOCK) * bst + d * KV_BLOCK + j % KV_BLOCK
 * (v_rows), n_kv values readable (0 past them): dot_f16_vec's order (no tail: n % 64 == 0), or dot_f16_tiny's. One
 * head: 4 V^T rows at a time share p's loads; more: 2 rows.
 */
T512 static void kqv_512(const uint16_t *v, size_t bst, ptrdiff_t n_kv, const float *p, size_t pst, size_t n,
                         size_t hd, int tiny, int G, float *o)
{
	const size_t full = (size_t)n_kv / 64 * 64 < n ? (size_t)n_kv / 64 * 64 : n;
	const size_t step = G == 1 ? 4 : 2;

	/* constant tiny, rows and G for the inlined code */
	for (size_t d = 0; d < hd; d += step, v += step * KV_BLOCK) {
		if (G == 3 && tiny)
			kqv_rows_512(v, bst, n_kv, p, pst, n, full, hd, 1, 2, 3, o + d);
		else if (G == 3)
			kqv_rows_512(v, bst, n_kv, p, pst, n, full, hd, 0, 2, 3, o + d);
		else if (G == 2 && tiny)
			kqv_rows_512(v, bst, n_kv, p, pst, n, full, hd, 1, 2, 2, o + d);
		else if (G == 2)
			kqv_rows_512(v, bst, n_kv, p, pst, n, full, hd, 0, 2, 2, o + d);
		else if (tiny)
			kqv_rows_512(v, bst, n_kv, p, pst, n, full, hd, 1, 4, 1, o + d);
		else
			kqv_rows_512(v, bst, n_kv, p, pst, n, full, hd, 0, 4, 1, o + d);
	}
}

/* swiglu_row on whole groups of 16 (v_expf_512), libm's expf on the rest. y may be g. */
T512 static void swiglu_512(float *y, const float *g, const float *u, size_t n)
{
	const size_t nv = n - n % 16;
	size_t i = 0;

	for (; i < nv; i += 16) {
		const __m512 gv = _mm512_loadu_ps(g + i);
		const __m512 e = v_expf_512(_mm512_sub_ps(_mm512_setzero_ps(), gv));

		_mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_div_ps(gv, _mm512_add_ps(_mm512_set1_ps(1.0f), e)),
		                                      _mm512_loadu_ps(u + i)));
	}
	for (; i < n; i++)
		y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* softmax_row's probabilities, then rounded to f16 (f16_round_n) into pf[0..n_pad). p: scratch of n_pad. */
T512 static void softmax_f16_512(const float *kq, float *p, float *pf, size_t n_valid, size_t n_pad, float scale)
{
	float max = -INFINITY, inv, lanes[16];
	__m512 mv = _mm512_set1_ps(-INFINITY);
	double sum = 0.0;
	size_t j = 0;

	/* the max of the scaled scores, NaN skipped (max_ps(v, m) keeps m unless v > m), as the scalar code */
	for (; j + 16 <= n_valid; j += 16) {
		const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(kq + j), _mm512_set1_ps(scale));

		_mm512_storeu_ps(p + j, v);
		mv = _mm512_max_ps(v, mv);
	}
	_mm512_storeu_ps(lanes, mv);
	for (int l = 0; l < 16; l++)
		if (lanes[l] > max)
			max = lanes[l];
	for (; j < n_valid; j++) {
		p[j] = kq[j] * scale;
		if (p[j] > max)
			max = p[j];
	}
	for (j = 0; j < n_pad; j += 16) {
		const ptrdiff_t left = (ptrdiff_t)n_valid - (ptrdiff_t)j;
		const __mmask16 k = left >= 16 ? 0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
		const __m512 e = _mm512_maskz_mov_ps(k, v_expf_512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, p + j),
		                                                                  _mm512_set1_ps(max))));

		_mm512_storeu_ps(p + j, e);
		sum += (double)reduce16_512(e);
	}
	inv = (float)(1.0 / sum);
	for (j = 0; j < n_pad; j += 16)
		_mm512_storeu_ps(pf + j, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_mul_ps(_mm512_loadu_ps(p + j),
		                                                                       _mm512_set1_ps(inv)),
		                                                         _MM_FROUND_TO_NEAREST_INT)));
}

/*
 * Heads [0, G) (G <= ATT_G) of one row at position pos, q_g at q + g * head_dim, into o + g * head_dim: att_row from
 * the cache (K rows at kl, stride kv_dim; V^T rows at vl, as v_rows gives them, n_kv values readable), the heads
 * sharing each load of K and V.
 */
T512 static void att_heads_512(const struct cce_work *w, const struct att_part *p, const uint16_t *kl,
                               const uint16_t *vl, size_t n_kv, const float *q, uint32_t pos, int prompt, int G,
                               float *o)
{
	const size_t hd = w->m->hp.head_dim, kvd = w->m->kv_dim, st = w->max_cells, n_valid = (size_t)pos + 1;
	const size_t n_span = span_of(n_valid);
	const float scale = 1.0f / sqrtf((float)hd);

	for (int g = 0; g < G; g++)
		f16_round_n(q + g * hd, p->qf + g * hd, hd);
	kq_512(kl, kvd, p->qf, hd, n_valid, prompt, G, p->kq, st);
	for (int g = 0; g < G; g++)
		softmax_f16_512(p->kq + g * st, p->s, p->pf + g * st, n_valid, n_span, scale);
	kqv_512(vl, kvd * KV_BLOCK, (ptrdiff_t)n_kv, p->pf, st, n_span, hd, prompt, G, o);
}
#endif

/* An item's rows and heads: every (head, row) into att; the portable code loads its KV head as floats first. */
static void att_item(const struct cce_work *w, const struct att_item *it, uint32_t il, const struct att_part *p)
{
	const struct cce_model *m = w->m;
	const size_t hd = m->hp.head_dim, kvd = m->kv_dim, n_kv = (size_t)it->p0 + it->n;
	const uint32_t kvh = it->h0 / (m->hp.n_head / m->hp.n_head_kv);
	const struct cce_ctx *c = it->c;

#ifdef HAVE_AVX512_PATH
	if (w->att512) {
		const uint16_t *kl = c->kc + (size_t)il * c->n_cells * kvd + kvh * hd, *vl = v_rows(c, il, kvh * hd);

		for (uint32_t r = 0; r < it->n; r++)
			for (uint32_t h = it->h0, g; h < it->h1; h += g) {
				const float *q = w->q + (size_t)(it->r0 + r) * m->q_dim + h * hd;

				g = it->h1 - h < ATT_G ? it->h1 - h : ATT_G;
				att_heads_512(w, p, kl, vl, n_kv, q, it->p0 + r, it->prompt, (int)g,
				              w->att + (size_t)(it->o0 + r) * m->q_dim + h * hd);
			}
		return;
	}
#endif
	att_load(w, c, il, kvh, n_kv, p);
	for (uint32_t h = it->h0; h < it->h1; h++)
		for (uint32_t r = 0; r < it->n; r++)
			att_row(w, p, w->q + (size_t)(it->r0 + r) * m->q_dim + h * hd, it->p0 + r, it->prompt,
			        w->att + (size_t)(it->o0 + r) * m->q_dim + h * hd);
}

struct att_job {
	const struct cce_work *w;
	uint32_t il;
	_Atomic size_t next; /* the next item to take */
};

/* One part: takes items in turn until none is left (their costs differ: taking them keeps the parts even). */
static void att_part_run(void *arg, int part, int nparts)
{
	struct att_job *j = arg;
	const struct cce_work *w = j->w;
	size_t i;

	(void)nparts;
	while ((i = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed)) < w->nitems)
		att_item(w, &w->items[i], j->il, &w->parts[part]);
}

/* Whether a call runs the AVX-512 code: libcck's avx512 tier is in use (forcing a lower tier, e.g. CCK_TIER=avx2,
 * runs the portable code: the same bits). */
static int avx512_ok(void)
{
#ifdef HAVE_AVX512_PATH
	return strcmp(cck_tier(), "avx512") == 0;
#else
	return 0;
#endif
}

/* Whether the attention runs att_heads_512: head_dim % 16 == 0 and the AVX-512 code runs, or a work made when it did
 * has no float K/V scratch for the portable code (the same bits either way). */
static int att512_ok(const struct cce_model *m, int kv_floats)
{
	return m->hp.head_dim % 16 == 0 && (avx512_ok() || !kv_floats);
}

/* The attention of layer il: w's items over w->att_nparts parts. */
static int attention(const struct cce_work *w, uint32_t il)
{
	struct att_job j = {w, il, 0};
	int rc = cck_parallel(w->att_nparts, att_part_run, &j);

	return rc < 0 ? rc : 0;
}

/*
 * The attention items of nseg segments: each segment's rows (in chunks of ATT_ROWS when several parts share them)
 * by KV head, or by q head when that still leaves fewer than 2 items a part. One part when the work is small.
 */
static void att_plan(struct cce_work *w, const struct att_seg *segs, size_t nseg)
{
	const struct cce_hparams *hp = &w->m->hp;
	const int threads = cck_get_threads();
	int np = threads < w->nparts ? threads : w->nparts;
	size_t cost = 0, chunks = 0;
	uint32_t rows, hs;

	for (size_t i = 0; i < nseg; i++)
		cost += (size_t)segs[i].n * (segs[i].p0 + segs[i].n);
	if (cost * hp->n_head * hp->head_dim < ATT_PAR_MIN)
		np = 1;
	rows = np > 1 ? ATT_ROWS : w->max_tokens;
	for (size_t i = 0; i < nseg; i++)
		chunks += (segs[i].n + rows - 1) / rows;
	hs = np > 1 && chunks * hp->n_head_kv < 2 * (size_t)np ? 1 : hp->n_head / hp->n_head_kv;
	w->nitems = 0;
	for (size_t i = 0; i < nseg; i++) {
		const struct att_seg *g = &segs[i];

		for (uint32_t r = 0; r < g->n; r += rows) {
			const uint32_t n = g->n - r < rows ? g->n - r : rows;

			for (uint32_t h = 0; h < hp->n_head; h += hs)
				w->items[w->nitems++] =
				    (struct att_item){g->c, g->r0 + r, n, g->p0 + r, g->o0 + r, h, h + hs, g->prompt};
		}
	}
	w->att_nparts = np;
}

/* ---- a layer over the rows of a pass ------------------------------------------------------------------------ */

/* RoPE at each row's position, then the row's K and V into its context's cache: rows r0..r1-1. */
static void rope_store(const struct cce_work *w, uint32_t il, size_t r0, size_t r1)
{
	const struct cce_model *m = w->m;
	const struct cce_hparams *hp = &m->hp;
	const size_t kvd = m->kv_dim;

	for (size_t r = r0; r < r1; r++) {
		const struct cce_ctx *c = w->rctx[r];
		const uint32_t pos = w->rpos[r];
		const float *rope = w->rope + r * hp->n_rot, *vr = w->v + r * kvd;
		uint16_t *kl = c->kc + (size_t)il * c->n_cells * kvd;
		uint16_t *vb = v_rows(c, il, 0) + (size_t)pos / KV_BLOCK * kvd * KV_BLOCK + pos % KV_BLOCK;

		rope_apply(hp, rope, w->q + r * m->q_dim, hp->n_head);
		rope_apply(hp, rope, w->k + r * kvd, hp->n_head_kv);
		f32_to_f16_n(w->k + r * kvd, kl + (size_t)pos * kvd, kvd);
		for (size_t i = 0; i < kvd; i++) /* column pos % KV_BLOCK of the position's V^T block */
			vb[i * KV_BLOCK] = f32_to_f16(vr[i]);
	}
}

/* The last layer goes on with the rows whose logits are wanted only (llama.cpp's out_ids): their x to rows 0... */
static void keep_wanted(struct cce_work *w)
{
	const size_t ne = w->m->hp.n_embd;

	for (size_t i = 0; i < w->nw; i++)
		if (w->wsegs[i].r0 != i) /* > i: not yet overwritten */
			memcpy(w->x + i * ne, w->x + (size_t)w->wsegs[i].r0 * ne, ne * sizeof(float));
}

/* The residual add: x[i] += t[i]. */
static void add_to(float *restrict x, const float *restrict t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] += t[i];
}

/*
 * The per-row steps between a layer's matrix products, each over rows [0, nr) split among the pool's threads in
 * groups of 4 rows (one part when there are 4 rows or fewer): every row's arithmetic is what it is alone, whichever
 * thread does it.
 */
enum row_step {
	RS_ATTN_NORM, /* xn = rms_norm(x) * attn_norm */
	RS_ROPE,      /* RoPE of q and k, k and v into the cache */
	RS_ADD_NORM,  /* x += tmp; xn = rms_norm(x) * ffn_norm */
	RS_SWIGLU,    /* gate = silu(gate) * up */
	RS_ADD,       /* x += tmp */
};

struct row_job {
	const struct cce_work *w;
	const struct cce_layer *L;
	uint32_t il;
	enum row_step step;
	size_t nr;
};

static void row_steps(const struct row_job *j, size_t r0, size_t r1)
{
	const struct cce_work *w = j->w;
	const struct cce_hparams *hp = &w->m->hp;
	const size_t ne = hp->n_embd, nff = hp->n_ff;

	switch (j->step) {
	case RS_ATTN_NORM:
		rms_norm_rows(w->x + r0 * ne, j->L->attn_norm, w->xn + r0 * ne, r1 - r0, ne, hp->rms_eps);
		break;
	case RS_ROPE:
		rope_store(w, j->il, r0, r1);
		break;
	case RS_ADD_NORM:
		add_to(w->x + r0 * ne, w->tmp + r0 * ne, (r1 - r0) * ne);
		rms_norm_rows(w->x + r0 * ne, j->L->ffn_norm, w->xn + r0 * ne, r1 - r0, ne, hp->rms_eps);
		break;
	case RS_SWIGLU:
		for (size_t r = r0; r < r1; r++) {
#ifdef HAVE_AVX512_PATH
			if (w->avx512) {
				swiglu_512(w->gate + r * nff, w->gate + r * nff, w->up + r * nff, nff);
				continue;
			}
#endif
			swiglu_row(w->gate + r * nff, w->gate + r * nff, w->up + r * nff, nff);
		}
		break;
	case RS_ADD:
		add_to(w->x + r0 * ne, w->tmp + r0 * ne, (r1 - r0) * ne);
		break;
	}
}

static void row_part(void *arg, int part, int nparts)
{
	const struct row_job *j = arg;
	const size_t groups = (j->nr + 3) / 4, g0 = groups * (size_t)part / (size_t)nparts,
	             g1 = groups * (size_t)(part + 1) / (size_t)nparts;
	const size_t r1 = 4 * g1 < j->nr ? 4 * g1 : j->nr;

	if (4 * g0 < r1)
		row_steps(j, 4 * g0, r1);
}

static void rows_run(const struct cce_work *w, const struct cce_layer *L, uint32_t il, enum row_step step, size_t nr)
{
	const struct row_job j = {w, L, il, step, nr};
	const size_t groups = (nr + 3) / 4;
	const int np = w->nparts < (int)groups ? w->nparts : (int)groups;

	if (np <= 1)
		row_steps(&j, 0, nr);
	else
		cck_parallel(np, row_part, (void *)&j);
}

/* Attention output projection and the feed-forward block over rows [0, nr) of att and x. */
static int attn_out_ffn(struct cce_work *w, const struct cce_layer *L, uint32_t il, size_t nr)
{
	int rc;

	if ((rc = matmul(&L->wo, L->bo, w->att, w->tmp, nr)))
		return rc;
	rows_run(w, L, il, RS_ADD_NORM, nr);
	if ((rc = matmul_n((const struct cce_mat *[]){&L->w_gate, &L->w_up}, (const float *[]){L->b_gate, L->b_up}, w->xn,
	                   (float *[]){w->gate, w->up}, 2, nr)))
		return rc;
	rows_run(w, L, il, RS_SWIGLU, nr);
	if ((rc = matmul(&L->w_down, L->b_down, w->gate, w->tmp, nr)))
		return rc;
	rows_run(w, L, il, RS_ADD, nr);
	return 0;
}

/* Layer il over the pass's rows; the last layer goes on after the KV store with the wanted rows only. */
static int layer(struct cce_work *w, uint32_t il, int last)
{
	const struct cce_model *m = w->m;
	const struct cce_layer *L = &m->layers[il];
	int rc;

	rows_run(w, L, il, RS_ATTN_NORM, w->nb);
	if ((rc = matmul_n((const struct cce_mat *[]){&L->wq, &L->wk, &L->wv}, (const float *[]){L->bq, L->bk, L->bv},
	                   w->xn, (float *[]){w->q, w->k, w->v}, 3, w->nb)))
		return rc;
	rows_run(w, L, il, RS_ROPE, w->nb);
	if (last) {
		if (w->nw == 0)
			return 0;
		keep_wanted(w);
		att_plan(w, w->wsegs, w->nw);
	}
	if ((rc = attention(w, il)))
		return rc;
	return attn_out_ffn(w, L, il, last ? w->nw : w->nb);
}

/* ---- passes ------------------------------------------------------------------------------------------------- */

/* The next row of the pass: token id at position pos of c (its embedding, and the cos/sin of its position). */
static int pass_row(struct cce_work *w, struct cce_ctx *c, int32_t id, uint32_t pos)
{
	const struct cce_model *m = w->m;
	const size_t ne = m->hp.n_embd, r = w->nb++;
	const unsigned char *row = (const unsigned char *)m->tok_embd.data + (size_t)id * m->tok_embd.row_bytes;

	w->rctx[r] = c;
	w->rpos[r] = pos;
	rope_cache(m, pos, w->rope + r * m->hp.n_rot);
	if (m->tok_embd.type & CCK_TYPE_PACK16) {
		/* packed as the output matrix (tied): the row out of its group, into w->tmp (scratch of the layers, free
		 * while a pass is laid out; a q4_1 or q8_0 row is less than its n_embd floats) */
		const int type = m->tok_embd.type & ~CCK_TYPE_PACK16;
		int rc = cck_qpacked_row(type, m->tok_embd.data, m->tok_embd.rows, ne, (size_t)id, w->tmp);

		return rc ? rc : cck_dequantize(type, w->tmp, w->x + r * ne, ne);
	}
	return cck_dequantize(m->tok_embd.type, row, w->x + r * ne, ne);
}

/*
 * Lay out the next pass: up to max_tokens rows from token *ti of sequence *si on (the positions counted from each
 * context's pos, which only moves once the whole call is done). A sequence whose last token is in the pass and that
 * wants logits adds a wanted row.
 */
static int pass_plan(struct cce_work *w, const struct cce_seq *seqs, size_t nseq, size_t *si, uint32_t *ti)
{
	int rc;

	w->nb = w->nseg = w->nw = 0;
	while (*si < nseq && w->nb < w->max_tokens) {
		const struct cce_seq *s = &seqs[*si];
		const uint32_t room = w->max_tokens - (uint32_t)w->nb, take = s->n - *ti < room ? s->n - *ti : room;
		const uint32_t r0 = (uint32_t)w->nb;
		const struct att_seg g = {s->ctx, r0, take, s->ctx->pos + *ti, r0, !!s->prompt};

		w->segs[w->nseg++] = g;
		for (uint32_t i = 0; i < take; i++)
			if ((rc = pass_row(w, s->ctx, s->ids[*ti + i], g.p0 + i)))
				return rc;
		*ti += take;
		if (*ti < s->n)
			break;
		if (s->logits) {
			struct att_seg *ws = &w->wsegs[w->nw];

			*ws = (struct att_seg){s->ctx, r0 + take - 1, 1, g.p0 + take - 1, (uint32_t)w->nw, g.prompt};
			w->wlog[w->nw++] = s->logits;
		}
		(*si)++;
		*ti = 0;
	}
	att_plan(w, w->segs, w->nseg);
	return 0;
}

/* Output norm and output matrix over the pass's wanted rows, out_rows at a time (one: straight into its logits). */
static int pass_logits(struct cce_work *w)
{
	const struct cce_model *m = w->m;
	const size_t ne = m->hp.n_embd, nv = m->hp.n_vocab;
	size_t k;
	int rc;

	rms_norm_rows(w->x, m->output_norm, w->xn, w->nw, ne, m->hp.rms_eps);
	for (size_t i = 0; i < w->nw; i += k) {
		k = w->nw - i < w->out_rows ? w->nw - i : w->out_rows;
		if (k <= 1) {
			k = 1;
			rc = matmul(&m->output, m->output_b, w->xn + i * ne, w->wlog[i], 1);
		} else {
			rc = matmul(&m->output, m->output_b, w->xn + i * ne, w->out, k);
			for (size_t j = 0; rc == 0 && j < k; j++)
				memcpy(w->wlog[i + j], w->out + j * nv, nv * sizeof(float));
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* One sequence of a batch: -EINVAL for what no context could take. */
static int seq_check(const struct cce_work *w, const struct cce_seq *s)
{
	const struct cce_ctx *c = s->ctx;

	if (!c || c->m != w->m || c->n_ctx > w->max_ctx || !s->ids || s->n == 0)
		return -EINVAL;
	for (uint32_t i = 0; i < s->n; i++)
		if (s->ids[i] < 0 || (uint32_t)s->ids[i] >= w->m->hp.n_vocab)
			return -EINVAL;
	return 0;
}

/* Every check of cce_eval_batch, before anything is evaluated: -EINVAL, then -ENOSPC. */
static int batch_check(const struct cce_work *w, const struct cce_seq *seqs, size_t nseq)
{
	size_t i;
	int rc = 0;

	if (!w || !seqs || nseq == 0)
		return -EINVAL;
	/* a context named twice is found marked (the marks are cleared again below) */
	for (i = 0; i < nseq; i++) {
		if ((rc = seq_check(w, &seqs[i])) || (rc = seqs[i].ctx->named ? -EINVAL : 0))
			break;
		seqs[i].ctx->named = 1;
	}
	while (i > 0)
		seqs[--i].ctx->named = 0;
	for (i = 0; i < nseq && rc == 0; i++)
		if (seqs[i].n > seqs[i].ctx->n_ctx - seqs[i].ctx->pos)
			rc = -ENOSPC;
	return rc;
}

/* ---- API ---------------------------------------------------------------------------------------------------- */

/* n objects of size bytes at *off, 64-byte aligned, from base (NULL: only counts); *ovf set on overflow. */
static void *carve(char *base, size_t *off, size_t n, size_t size, int *ovf)
{
	const size_t at = *off + 63 < *off ? SIZE_MAX : (*off + 63) & ~(size_t)63;

	if (at == SIZE_MAX || (n && size > (SIZE_MAX - at) / n)) {
		*ovf = 1;
		return NULL;
	}
	*off = at + n * size;
	return base && !*ovf ? base + at : NULL;
}

/* Lays w's buffers out from base (NULL: only their size, into *size); -EOVERFLOW. */
static int work_layout(struct cce_work *w, char *base, size_t *size)
{
	const struct cce_hparams *hp = &w->m->hp;
	const size_t t = w->max_tokens, cells = w->max_cells, hd = hp->head_dim, f = sizeof(float);
	size_t off = 0;
	int ovf = 0;

	w->x = carve(base, &off, t, hp->n_embd * f, &ovf);
	w->xn = carve(base, &off, t, hp->n_embd * f, &ovf);
	w->tmp = carve(base, &off, t, hp->n_embd * f, &ovf);
	w->q = carve(base, &off, t, w->m->q_dim * f, &ovf);
	w->att = carve(base, &off, t, w->m->q_dim * f, &ovf);
	w->k = carve(base, &off, t, w->m->kv_dim * f, &ovf);
	w->v = carve(base, &off, t, w->m->kv_dim * f, &ovf);
	w->gate = carve(base, &off, t, hp->n_ff * f, &ovf);
	w->up = carve(base, &off, t, hp->n_ff * f, &ovf);
	w->rope = carve(base, &off, t, hp->n_rot * f, &ovf);
	w->out = carve(base, &off, w->out_rows, hp->n_vocab * f, &ovf);
	w->rctx = carve(base, &off, t, sizeof(*w->rctx), &ovf);
	w->rpos = carve(base, &off, t, sizeof(*w->rpos), &ovf);
	w->segs = carve(base, &off, t, sizeof(*w->segs), &ovf);
	w->wsegs = carve(base, &off, t, sizeof(*w->wsegs), &ovf);
	w->wlog = carve(base, &off, t, sizeof(*w->wlog), &ovf);
	w->items = carve(base, &off, t, hp->n_head * sizeof(*w->items), &ovf);
	w->parts = carve(base, &off, (size_t)w->nparts, sizeof(*w->parts), &ovf);
	for (int i = 0; i < w->nparts; i++) {
		struct att_part dummy, *p = w->parts ? &w->parts[i] : &dummy;

		p->kf = w->kv_floats ? carve(base, &off, cells, hd * f, &ovf) : NULL;
		p->vf = w->kv_floats ? carve(base, &off, cells, hd * f, &ovf) : NULL;
		p->qf = carve(base, &off, ATT_G * hd, f, &ovf);
		p->kq = carve(base, &off, ATT_G * cells, f, &ovf);
		p->s = carve(base, &off, cells, f, &ovf);
		p->pf = carve(base, &off, ATT_G * cells, f, &ovf);
	}
	*size = off;
	return ovf ? -EOVERFLOW : 0;
}

/* The pool's threads, whatever this thread's cap (a server makes its works on a thread capped at 1, and evaluates on
 * threads that may use the pool). */
static int pool_threads(void)
{
	const int cap = cck_set_local_threads(0), n = cck_get_threads();

	cck_set_local_threads(cap);
	return n;
}

/* A work of out_rows logit rows per output matmul (cce_eval's own: 0, it has one). */
static int work_create(const struct cce_model *m, uint32_t max_tokens, uint32_t max_ctx, uint32_t out_rows,
                       struct cce_work **ret)
{
	struct cce_work *w;
	size_t size;
	int rc;

	if (!ret)
		return -EINVAL;
	*ret = NULL;
	if (!m || max_tokens == 0 || max_ctx == 0)
		return -EINVAL;
	if (max_ctx > UINT32_MAX - KV_PAD)
		return -EOVERFLOW;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (struct cce_work){.m = m, .max_tokens = max_tokens, .max_ctx = max_ctx, .out_rows = out_rows};
	w->max_cells = (max_ctx + KV_PAD - 1) / KV_PAD * KV_PAD;
	w->nparts = pool_threads(); /* attention scratch for each thread the pool may give it */
	w->kv_floats = !att512_ok(m, 1);
	if ((rc = work_layout(w, NULL, &size)) == 0 && size > SIZE_MAX - 64)
		rc = -EOVERFLOW;
	if (rc == 0 && !(w->mem = malloc(size + 64)))
		rc = -ENOMEM;
	if (rc) {
		free(w);
		return rc;
	}
	work_layout(w, (char *)(((uintptr_t)w->mem + 63) & ~(uintptr_t)63), &size);
	w->bytes = sizeof(*w) + size + 64;
	*ret = w;
	return 0;
}

int cce_work_new(const struct cce_model *m, uint32_t max_tokens, uint32_t max_ctx, struct cce_work **ret)
{
	return work_create(m, max_tokens, max_ctx, max_tokens < OUT_ROWS ? max_tokens : OUT_ROWS, ret);
}

void cce_work_free(struct cce_work *w)
{
	if (!w)
		return;
	free(w->mem);
	free(w);
}

size_t cce_work_bytes(const struct cce_work *w)
{
	return w ? w->bytes : 0;
}

size_t cce_kv_bytes(const struct cce_model *m, uint32_t n_ctx)
{
	const size_t per = 2 * sizeof(uint16_t); /* K and V of one value */
	size_t cells;

	if (!m || n_ctx > UINT32_MAX - KV_PAD)
		return 0;
	cells = (n_ctx + KV_PAD - 1) / KV_PAD * KV_PAD;
	if (cells > SIZE_MAX / per / m->kv_dim / m->hp.n_layer)
		return 0;
	return cells * m->kv_dim * m->hp.n_layer * per;
}

int cce_ctx_new(const struct cce_model *m, uint32_t n_ctx, struct cce_ctx **ret)
{
	struct cce_ctx *c;
	const size_t bytes = cce_kv_bytes(m, n_ctx);
	void *kv;

	if (!ret)
		return -EINVAL;
	*ret = NULL;
	if (!m || n_ctx == 0)
		return -EINVAL;
	if (bytes == 0)
		return -EOVERFLOW;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	/* Zero pages of its own, made resident as positions are stored (calloc could reuse freed heap memory and
	 * clear all of it) and given back whole when freed. */
	kv = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (kv == MAP_FAILED) {
		free(c);
		return -ENOMEM;
	}
	c->m = m;
	c->n_ctx = n_ctx;
	c->n_cells = (n_ctx + KV_PAD - 1) / KV_PAD * KV_PAD;
	c->kv_bytes = bytes;
	c->kc = kv;
	c->vc = c->kc + bytes / 2 / sizeof(uint16_t); /* K and V: halves of the same size */
	*ret = c;
	return 0;
}

void cce_ctx_free(struct cce_ctx *c)
{
	if (!c)
		return;
	cce_work_free(c->work);
	munmap(c->kc, c->kv_bytes);
	free(c);
}

int cce_ctx_copy_prefix(struct cce_ctx *dst, const struct cce_ctx *src, uint32_t n)
{
	size_t kvd;

	if (!dst || !src || dst == src || dst->m != src->m || n > src->pos || n > dst->n_ctx)
		return -EINVAL;
	kvd = dst->m->kv_dim;
	for (uint32_t il = 0; il < dst->m->hp.n_layer; il++) {
		memcpy(dst->kc + (size_t)il * dst->n_cells * kvd, src->kc + (size_t)il * src->n_cells * kvd,
		       (size_t)n * kvd * sizeof(uint16_t));
		/* V^T: the first n cells of each row of each block they fall in */
		for (uint32_t b = 0; b * KV_BLOCK < n; b++) {
			const size_t off = (size_t)b * kvd * KV_BLOCK, cells = n - b * KV_BLOCK < KV_BLOCK ? n - b * KV_BLOCK
			                                                                                   : KV_BLOCK;
			uint16_t *to = v_rows(dst, il, 0) + off;
			const uint16_t *from = v_rows(src, il, 0) + off;

			for (size_t d = 0; d < kvd; d++)
				memcpy(to + d * KV_BLOCK, from + d * KV_BLOCK, cells * sizeof(uint16_t));
		}
	}
	dst->pos = n;
	return 0;
}

uint32_t cce_ctx_pos(const struct cce_ctx *c)
{
	return c ? c->pos : 0;
}

/* Only the position: what a later use stores is all it reads (no clearing: it would touch every page). */
void cce_ctx_reset(struct cce_ctx *c)
{
	if (c)
		c->pos = 0;
}

size_t cce_ctx_kv_bytes(const struct cce_ctx *c)
{
	return c ? cce_kv_bytes(c->m, c->n_ctx) : 0;
}

uint32_t cce_ctx_n_ctx(const struct cce_ctx *c)
{
	return c ? c->n_ctx : 0;
}

int cce_eval_batch(struct cce_work *w, struct cce_seq *seqs, size_t nseq, const _Atomic int *cancel)
{
	size_t si = 0;
	uint32_t ti = 0;
	int rc;

	if ((rc = batch_check(w, seqs, nseq)))
		return rc;
	w->avx512 = avx512_ok();
	w->att512 = att512_ok(w->m, w->kv_floats);
	while (si < nseq) {
		if ((rc = pass_plan(w, seqs, nseq, &si, &ti)))
			return rc;
		for (uint32_t il = 0; il < w->m->hp.n_layer; il++) {
			if (cancel && atomic_load_explicit(cancel, memory_order_relaxed))
				return -ECANCELED;
			if ((rc = layer(w, il, il + 1 == w->m->hp.n_layer)))
				return rc;
		}
		if ((rc = pass_logits(w)))
			return rc;
	}
	for (size_t i = 0; i < nseq; i++)
		seqs[i].ctx->pos += seqs[i].n;
	return 0;
}

/* One sequence through the context's own work: a prompt when it has 2 or more tokens (one llama_decode of them). */
int cce_eval(struct cce_ctx *c, const int32_t *ids, size_t n, float *logits, const _Atomic int *cancel)
{
	struct cce_seq s;
	int rc;

	if (!c || !ids || n == 0)
		return -EINVAL;
	if (n > UINT32_MAX)
		return -ENOSPC;
	if (!c->work && (rc = work_create(c->m, UBATCH, c->n_ctx, 0, &c->work)))
		return rc;
	s = (struct cce_seq){c, ids, (uint32_t)n, n >= 2, logits};
	return cce_eval_batch(c->work, &s, 1, cancel);
}
