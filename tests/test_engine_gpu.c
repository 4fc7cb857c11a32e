/* SPDX-License-Identifier: MIT */
/*
 * test_engine_gpu.c: the engine with its layers offloaded to the OpenCL device (cce_model_offload) against the CPU,
 * on stories260K and its derived variants, SmolLM2 when present, and a random model written here:
 *  - each prompt is evaluated in one batch, then GEN_TOKENS tokens are generated greedily on the CPU; offloaded
 *    (every layer and the output: -1, then the last layer only: 1), the same prompt with the CPU's tokens fed back
 *    must choose the same token at every step;
 *  - SmolLM2 (q4_1, q8_0 matrices): the logits of every step are bit-identical to the CPU's (libccgpu sums those
 *    types in libcck's order);
 *  - stories260K (f32), stories260K-F16 and llama-2-tiny-random (f16 matrices), stories260K-Q8_0 / -Q4_0 (q8_0 /
 *    q4_0 matrices, but f16 ffn_down: 172 columns are not whole 32-blocks): every layer offloaded too, logits
 *    bit-identical to the CPU's where libccgpu's f16 / f32 products are libcck's bits (f16: libcck on its avx2 or
 *    avx512 tier, whose F16C lanes the device follows; f32: a device with fp64, libcck's double sum); elsewhere
 *    (libcck forced to its scalar tier, no fp64) within K_LOGIT_BOUND as below;
 *  - random-Q4_K_M (llama.cpp's Q4_K_M mix: q4_K matrices, q6_K attn_v, ffn_down and output): logits within
 *    K_LOGIT_BOUND of each step's max |logit|, tokens equal except where the CPU's top two are closer than that
 *    (reported), and not bit-identical (the products did run on the device, in another float order);
 *  - what offloading reports: layers, device bytes (the output matrix counts only past n_layer), 0 frees everything;
 *  - a packed model (cce_model_pack): offloading unpacks what it uploads (the row-major model's bits, on the device
 *    and back on the CPU);
 *  - without a device (this program run again with the selection "none") cce_model_offload is -ENODEV with
 *    ccg_why() as its message.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "ccg.h"
#include "cck.h"
#include "engine.h"
#include "gguf.h"
#include "load.h"
#include "t_gguf_w.h"
#include "t_models.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define GEN_TOKENS 32
/*
 * Models with q4_K / q6_K matrices: max |logit_gpu - logit_cpu| / max |logit_cpu| at every step. Their products
 * differ from libcck's in float summation order only (test_gpu_quant: about 1e-6 of sum |w x|), but the next
 * product quantizes its activations, where a last-bit difference can move a quant by one step (1/127 of its block's
 * max): libcck's own avx2 and avx512 tiers differ by up to 2.4e-2 on the random model's 48-token prompt. A wrong
 * product is off by the order of the logits themselves.
 */
#define K_LOGIT_BOUND 0.1

/* When a model's offloaded logits are libcck's bits: always (q4_0, q4_1, q8_0 only), never (q4_K, q6_K: they
 * differ), where libcck runs its F16C kernel (f16 matrices among them), where the device has fp64 (f32 matrices). */
enum exactness { EX_NEVER, EX_ALWAYS, EX_F16, EX_F32 };

struct tmodel {
	const char *stem;
	const char *rel; /* under the models directory; NULL: SmolLM2 (its own path); "": the k-quant model made here */
	int exact;       /* enum exactness */
	size_t gen;      /* tokens generated per prompt */
};

static const struct tmodel tmodels[] = {
    {"stories260K", "stories260K.gguf", EX_F32, GEN_TOKENS},
    {"stories260K-F16", "derived/stories260K-F16.gguf", EX_F16, GEN_TOKENS},
    {"llama-2-tiny-random", "llama-2-tiny-random.gguf", EX_F16, GEN_TOKENS},
    {"stories260K-Q8_0", "derived/stories260K-Q8_0.gguf", EX_F16, GEN_TOKENS}, /* f16 ffn_down */
    {"stories260K-Q4_0", "derived/stories260K-Q4_0.gguf", EX_F16, GEN_TOKENS},
    {"SmolLM2-135M-Instruct.Q4_1", NULL, EX_ALWAYS, 12},
    {"random-Q4_K_M", "", EX_NEVER, GEN_TOKENS},
};

static const char *const prompts[] = {
    "Once upon a time",
    "The little dog ran to the park. He saw a big red ball under a tree and wanted to play with it, but a cat was "
    "sitting on it. The dog said hello to the cat, and the cat said hello back. They became friends and played "
    "with the ball all day until the sun went down and their moms called them home.",
};

static int have_dev;
static int f16_exact, f32_exact; /* libcck on avx2 / avx512; the device has fp64 */

/* Whether tm's offloaded logits must be the CPU's bits. */
static int is_exact(const struct tmodel *tm)
{
	return tm->exact == EX_ALWAYS || (tm->exact == EX_F16 && f16_exact) || (tm->exact == EX_F32 && f32_exact);
}

/* ---- models ------------------------------------------------------------------------------------------------------ */

/* A model loaded as ccd does (header parsed, data mmapped, bound) with its vocabulary. */
struct lmodel {
	struct ccm_gguf *g;
	struct ccm_region reg;
	struct cce_model *m;
	struct cce_vocab *v;
	uint32_t n_vocab, n_layer;
};

static struct lmodel L; /* freed by the teardown, also after a failed assertion */

/* ---- a random llama with llama.cpp's Q4_K_M types, written in memory --------------------------------------------- */

#define K_EMBD 256
#define K_FF 512
#define K_HEAD 4
#define K_HEAD_KV 2
#define K_LAYER 3
#define K_VOCAB 300
/* Prompt tokens at most (one id per byte of the prompt's text): more than a launch of 32 columns on the device. */
#define K_PROMPT 48

static uint64_t g_rng; /* the random k-quant model's generator */

/* Gaussian-ish (sum of 4 uniforms, centred) times scale. */
static float w_rand(float scale)
{
	float s = 0.0f;

	for (int i = 0; i < 4; i++) {
		g_rng ^= g_rng << 13;
		g_rng ^= g_rng >> 7;
		g_rng ^= g_rng << 17;
		s += (float)(g_rng >> 40) / (float)(1 << 24) - 0.5f;
	}
	return s * scale;
}

/* A tensor of ne0 x ne1 (ne1 0: a vector of ones) of type: random values of scale 1 / sqrt(ne0), quantized. */
static void k_tensor(struct t_gguf_w *w, const char *name, uint64_t ne0, uint64_t ne1, int type)
{
	size_t rb, rows = ne1 ? ne1 : 1;
	float *row = malloc(ne0 * sizeof(float));
	unsigned char *q;

	assert_int_equal(cck_type_row_bytes(type, ne0, &rb), 0);
	q = malloc(rb);
	assert_true(row && q);
	t_gguf_tensor_begin(w, name, ne0, ne1, type);
	for (size_t r = 0; r < rows; r++) {
		for (size_t i = 0; i < ne0; i++)
			row[i] = ne1 ? w_rand(2.0f / sqrtf((float)ne0)) : 1.0f;
		assert_int_equal(cck_quantize(type, row, q, ne0), 0);
		t_put(&w->data, q, rb);
	}
	t_gguf_tensor_end(w);
	free(row);
	free(q);
}

/* The file: llama, K_LAYER layers; q4_K matrices, q6_K attn_v, ffn_down and output (as llama.cpp's Q4_K_M), f32
 * token embeddings and norms. */
static struct t_buf kquant_model(void)
{
	struct t_gguf_w w = {0};
	const uint32_t kvd = K_EMBD / K_HEAD * K_HEAD_KV;
	char name[64];

	g_rng = 0x2545f4914f6cdd1dull;
	t_kv_str(&w, "general.architecture", "llama");
	t_kv_u32(&w, "llama.context_length", 256);
	t_kv_u32(&w, "llama.embedding_length", K_EMBD);
	t_kv_u32(&w, "llama.block_count", K_LAYER);
	t_kv_u32(&w, "llama.feed_forward_length", K_FF);
	t_kv_u32(&w, "llama.attention.head_count", K_HEAD);
	t_kv_u32(&w, "llama.attention.head_count_kv", K_HEAD_KV);
	t_kv_f32(&w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
	t_kv_f32(&w, "llama.rope.freq_base", 10000.0f);
	k_tensor(&w, "token_embd.weight", K_EMBD, K_VOCAB, CCK_TYPE_F32);
	k_tensor(&w, "output_norm.weight", K_EMBD, 0, CCK_TYPE_F32);
	k_tensor(&w, "output.weight", K_EMBD, K_VOCAB, CCK_TYPE_Q6_K);
	for (int l = 0; l < K_LAYER; l++) {
		const struct {
			const char *name;
			uint64_t ne0, ne1;
			int type;
		} ts[] = {
		    {"attn_norm.weight", K_EMBD, 0, CCK_TYPE_F32},
		    {"attn_q.weight", K_EMBD, K_EMBD, CCK_TYPE_Q4_K},
		    {"attn_k.weight", K_EMBD, kvd, CCK_TYPE_Q4_K},
		    {"attn_v.weight", K_EMBD, kvd, CCK_TYPE_Q6_K},
		    {"attn_output.weight", K_EMBD, K_EMBD, CCK_TYPE_Q4_K},
		    {"ffn_norm.weight", K_EMBD, 0, CCK_TYPE_F32},
		    {"ffn_gate.weight", K_EMBD, K_FF, CCK_TYPE_Q4_K},
		    {"ffn_up.weight", K_EMBD, K_FF, CCK_TYPE_Q4_K},
		    {"ffn_down.weight", K_FF, K_EMBD, CCK_TYPE_Q6_K},
		};

		for (size_t i = 0; i < NELEM(ts); i++) {
			snprintf(name, sizeof(name), "blk.%d.%s", l, ts[i].name);
			k_tensor(&w, name, ts[i].ne0, ts[i].ne1, ts[i].type);
		}
	}
	return t_gguf_finish(&w);
}

/* ---- loading --------------------------------------------------------------------------------------------------- */

static struct t_buf kfile; /* the k-quant model's bytes while it is open */

/*
 * 0: loaded; 1: skipped (why printed). lm->v stays NULL for the k-quant model (no tokenizer: prompts are ids).
 * mode: where a file's weights go (CCM_MODE_READ: memory of our own, which cce_model_pack may rewrite).
 */
static int lm_open_mode(const struct tmodel *tm, struct lmodel *lm, enum ccm_mode mode)
{
	char path[PATH_MAX], err[256];
	int fd;

	memset(lm, 0, sizeof(*lm));
	if (tm->rel && !*tm->rel) {
		kfile = kquant_model();
		if (ccm_gguf_parse(kfile.p, kfile.len, &lm->g, err, sizeof(err)))
			fail_msg("%s: %s", tm->stem, err);
		if (cce_model_init(lm->g, kfile.p + ccm_gguf_data_offset(lm->g), &lm->m, err, sizeof(err)))
			fail_msg("%s: cce_model_init: %s", tm->stem, err);
		lm->n_vocab = cce_model_hparams(lm->m)->n_vocab;
		lm->n_layer = cce_model_hparams(lm->m)->n_layer;
		return 0;
	}
	if (!(tm->rel ? t_model(tm->rel, path, sizeof(path)) : t_smollm2(path, sizeof(path)))) {
		printf("    SKIP %s: model %s not found (set CC_MODELS_DIR / CC_SMOLLM2)\n", tm->stem, path);
		return 1;
	}
	if (ccm_gguf_open(path, &lm->g, err, sizeof(err)))
		fail_msg("%s: %s", path, err);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	if (ccm_load_fd(fd, ccm_gguf_data_offset(lm->g), ccm_gguf_data_size(lm->g), mode, NULL, NULL, &lm->reg, err,
	                sizeof(err)))
		fail_msg("%s: load: %s", path, err);
	close(fd);
	if (cce_model_init(lm->g, lm->reg.data, &lm->m, err, sizeof(err)))
		fail_msg("%s: cce_model_init: %s", path, err);
	if (cce_vocab_load(lm->g, &lm->v, err, sizeof(err)))
		fail_msg("%s: cce_vocab_load: %s", path, err);
	lm->n_vocab = cce_model_hparams(lm->m)->n_vocab;
	lm->n_layer = cce_model_hparams(lm->m)->n_layer;
	return 0;
}

static int lm_open(const struct tmodel *tm, struct lmodel *lm)
{
	return lm_open_mode(tm, lm, CCM_MODE_MMAP);
}

static int lm_teardown(void **state)
{
	(void)state;
	cce_vocab_free(L.v);
	cce_model_free(L.m);
	ccm_region_free(&L.reg);
	ccm_gguf_free(L.g);
	memset(&L, 0, sizeof(L));
	free(kfile.p);
	memset(&kfile, 0, sizeof(kfile));
	return 0;
}

/* ---- generation ------------------------------------------------------------------------------------------------- */

static int32_t argmax(const float *x, uint32_t n)
{
	uint32_t best = 0;

	for (uint32_t i = 1; i < n; i++)
		if (x[i] > x[best])
			best = i;
	return (int32_t)best;
}

/* One prompt through a model: the logits of the prompt (one batch) and of each token fed after it (row k: the
 * logits that chose tok[k]), and the argmax tokens. */
struct run {
	float *logits; /* gen x n_vocab */
	int32_t tok[GEN_TOKENS];
};

/* Evaluate text, then gen - 1 tokens one at a time: greedy (force NULL: each argmax fed back), or the tokens of
 * force fed back (teacher forcing: a run stays comparable with force's after a near tie). */
static void run_prompt(const struct lmodel *lm, const char *text, size_t gen, const struct run *force, struct run *out)
{
	const size_t nv = lm->n_vocab;
	struct cce_ctx *c;
	int32_t *ids;
	size_t n;

	if (lm->v) {
		assert_int_equal(cce_tokenize(lm->v, text, strlen(text), -1, 0, &ids, &n), 0);
	} else { /* no tokenizer: one id per byte (below the vocabulary's size), at most K_PROMPT */
		n = strlen(text) < K_PROMPT ? strlen(text) : K_PROMPT;
		ids = malloc(n * sizeof(*ids));
		assert_non_null(ids);
		for (size_t i = 0; i < n; i++)
			ids[i] = (int32_t)((unsigned char)text[i] % lm->n_vocab);
	}
	out->logits = malloc(gen * nv * sizeof(float));
	assert_non_null(out->logits);
	assert_int_equal(cce_ctx_new(lm->m, (uint32_t)(n + gen + 1), &c), 0);
	assert_int_equal(cce_eval(c, ids, n, out->logits, NULL), 0);
	for (size_t k = 0; k < gen; k++) {
		out->tok[k] = argmax(out->logits + k * nv, lm->n_vocab);
		if (k + 1 < gen)
			assert_int_equal(
			    cce_eval(c, force ? &force->tok[k] : &out->tok[k], 1, out->logits + (k + 1) * nv, NULL), 0);
	}
	cce_ctx_free(c);
	free(ids);
}

/* The top logit minus the second. */
static double top_gap(const float *x, uint32_t n)
{
	int32_t best = argmax(x, n);
	double second = -INFINITY;

	for (uint32_t i = 0; i < n; i++)
		if ((int32_t)i != best && x[i] > second)
			second = x[i];
	return (double)x[best] - second;
}

/*
 * The offloaded run (teacher-forced with the CPU's tokens) against the CPU's: exact models give the CPU's bits at
 * every step; the others stay within K_LOGIT_BOUND of each step's max |logit|, choose the CPU's token except where
 * the CPU's top two are closer than that (reported in *ties), and differ somewhere (the device summed them).
 * Returns the largest normalized difference.
 */
static double compare_runs(const struct tmodel *tm, const struct lmodel *lm, const struct run *cpu,
                           const struct run *gpu, const char *how, size_t p, size_t *ties)
{
	const size_t nv = lm->n_vocab;
	const int exact = is_exact(tm);
	double worst = 0.0;

	if (exact && memcmp(cpu->logits, gpu->logits, tm->gen * nv * sizeof(float)) != 0)
		fail_msg("%s %s, prompt %zu: logits not bit-identical to the CPU's", tm->stem, how, p);
	for (size_t k = 0; k < tm->gen; k++) {
		const float *a = cpu->logits + k * nv, *b = gpu->logits + k * nv;
		double amax = 0.0, dmax = 0.0;

		for (size_t i = 0; i < nv; i++) {
			amax = fmax(amax, fabs(a[i]));
			dmax = fmax(dmax, fabs((double)a[i] - b[i]));
		}
		if (!(dmax <= K_LOGIT_BOUND * amax))
			fail_msg("%s %s, prompt %zu, step %zu: logits differ by %.3g (max |logit| %.3g): over %g",
			         tm->stem, how, p, k, dmax, amax, K_LOGIT_BOUND);
		worst = fmax(worst, amax > 0.0 ? dmax / amax : 0.0);
		if (cpu->tok[k] == gpu->tok[k])
			continue;
		if (exact || top_gap(a, lm->n_vocab) > K_LOGIT_BOUND * amax)
			fail_msg("%s %s, prompt %zu: token %zu is %d, the CPU's %d (CPU's top-2 gap %.3g)", tm->stem,
			         how, p, k, gpu->tok[k], cpu->tok[k], top_gap(a, lm->n_vocab));
		printf("    %s %s, prompt %zu, step %zu: near tie (gap %.3g): %d here, %d on the CPU\n", tm->stem, how,
		       p, k, top_gap(a, lm->n_vocab), gpu->tok[k], cpu->tok[k]);
		(*ties)++;
	}
	/* libcck's SIMD tiers sum the k-quants in another order than the device; its scalar tier may not */
	if (tm->exact == EX_NEVER && worst == 0.0 && strcmp(cck_tier(), "scalar") != 0)
		fail_msg("%s %s, prompt %zu: logits bit-identical to the CPU's: the products did not run on the device",
		         tm->stem, how, p);
	return worst;
}

static void test_offload(void **state)
{
	const struct tmodel *tm = *state;
	struct run cpu[NELEM(prompts)], gpu;
	static const int ngl[] = {-1, 1};
	char err[256];
	int rc;

	if (!have_dev) {
		printf("    SKIP: no OpenCL device: %s\n", ccg_why());
		skip();
	}
	if (lm_open(tm, &L))
		skip();
	memset(cpu, 0, sizeof(cpu));
	for (size_t p = 0; p < NELEM(prompts); p++)
		run_prompt(&L, prompts[p], tm->gen, NULL, &cpu[p]);
	for (size_t k = 0; k < NELEM(ngl); k++) {
		uint32_t want = ngl[k] < 0 ? L.n_layer : (uint32_t)ngl[k];
		double worst = 0.0;
		size_t ties = 0;

		rc = cce_model_offload(L.m, ngl[k], err, sizeof(err));
		if (rc < 0)
			fail_msg("%s: cce_model_offload(%d): %d %s", tm->stem, ngl[k], rc, err);
		assert_int_equal(rc, want);
		assert_int_equal(cce_model_offloaded(L.m), want);
		assert_true(want ? cce_model_device_bytes(L.m) > 0 : cce_model_device_bytes(L.m) == 0);
		for (size_t p = 0; p < NELEM(prompts); p++) {
			char how[32];

			snprintf(how, sizeof(how), "offload %d", ngl[k]);
			run_prompt(&L, prompts[p], tm->gen, &cpu[p], &gpu);
			worst = fmax(worst, compare_runs(tm, &L, &cpu[p], &gpu, how, p, &ties));
			free(gpu.logits);
		}
		printf(
		    "    %s, %d layers offloaded (-ngl %d, %zu bytes on the device): %zu prompts x %zu greedy tokens "
		    "equal to the CPU's (%zu near ties), logits %s (max difference %.3g of max |logit|)\n",
		    tm->stem, rc, ngl[k], cce_model_device_bytes(L.m), NELEM(prompts), tm->gen, ties,
		    is_exact(tm) ? "bit-identical" : "within the bound", worst);
	}
	/* all layers but not the output: fewer bytes than with it (every model's output is of a device type) */
	{
		size_t with;

		assert_int_equal(cce_model_offload(L.m, -1, err, sizeof(err)), (int)L.n_layer);
		with = cce_model_device_bytes(L.m);
		assert_int_equal(cce_model_offload(L.m, (int)L.n_layer, err, sizeof(err)), (int)L.n_layer);
		assert_true(cce_model_device_bytes(L.m) < with);
		assert_int_equal(cce_model_offload(L.m, (int)L.n_layer + 1, err, sizeof(err)), (int)L.n_layer);
		assert_int_equal(cce_model_device_bytes(L.m), with);
	}
	assert_int_equal(cce_model_offload(L.m, 0, err, sizeof(err)), 0);
	assert_int_equal(cce_model_offloaded(L.m), 0);
	assert_int_equal(cce_model_device_bytes(L.m), 0);
	for (size_t p = 0; p < NELEM(prompts); p++)
		free(cpu[p].logits);
}

/*
 * Offloading a packed model (cce_model_pack) unpacks each matrix it uploads: with every layer and the output on the
 * device, the logits are the row-major model's CPU bits (the device sums q4_1 / q8_0 as libcck's row-major kernels
 * do); offloaded back to none, the matrices stay row-major and the CPU gives those bits again. A tied token_embd (SmolLM2)
 * is unpacked with the output. Models whose offloaded logits are exact only; skipped where nothing packs (no
 * AVX512-VNNI, or no q4_1 / q8_0 matrix).
 */
static void test_offload_packed(void **state)
{
	const struct tmodel *tm = *state;
	struct run cpu, gpu;
	char err[256];
	size_t ties = 0;
	int n;

	if (!have_dev) {
		printf("    SKIP: no OpenCL device: %s\n", ccg_why());
		skip();
	}
	if (lm_open_mode(tm, &L, CCM_MODE_READ))
		skip();
	memset(&cpu, 0, sizeof(cpu));
	run_prompt(&L, prompts[0], tm->gen, NULL, &cpu);
	n = cce_model_pack(L.m);
	assert_true(n >= 0);
	if (n == 0) {
		free(cpu.logits);
		printf("    SKIP %s: nothing packed (no AVX512-VNNI, or no q4_1 / q8_0 matrix)\n", tm->stem);
		skip();
	}
	assert_int_equal(cce_model_offload(L.m, -1, err, sizeof(err)), (int)L.n_layer);
	run_prompt(&L, prompts[0], tm->gen, &cpu, &gpu);
	compare_runs(tm, &L, &cpu, &gpu, "packed, offload -1", 0, &ties);
	free(gpu.logits);
	assert_int_equal(cce_model_offload(L.m, 0, err, sizeof(err)), 0);
	run_prompt(&L, prompts[0], tm->gen, &cpu, &gpu);
	if (memcmp(cpu.logits, gpu.logits, tm->gen * L.n_vocab * sizeof(float)) != 0)
		fail_msg("%s: packed, offloaded and back: logits not the row-major model's", tm->stem);
	printf("    %s: %d matrices packed; offloaded (unpacked) and back on the CPU: the row-major model's logits\n",
	       tm->stem, n);
	free(gpu.logits);
	free(cpu.logits);
}

/* cce_model_offload with no device: -ENODEV and ccg_why() as the message (run in a child with "none" selected). */
static int nodev_main(void)
{
	const struct tmodel *tm = &tmodels[NELEM(tmodels) - 1]; /* the k-quant model: no file needed */
	char err[256] = "unchanged";
	int rc, ok;

	if (ccg_select("none") != 0 || lm_open(tm, &L))
		return 2;
	rc = cce_model_offload(L.m, -1, err, sizeof(err));
	printf("    no device: cce_model_offload = %d, \"%s\"\n", rc, err);
	ok = rc == -ENODEV && strcmp(err, ccg_why()) == 0 && cce_model_offloaded(L.m) == 0 &&
	     cce_model_device_bytes(L.m) == 0 && cce_model_offload(L.m, 0, err, sizeof(err)) == 0;
	lm_teardown(NULL);
	return ok ? 0 : 1;
}

static void test_nodev(void **state)
{
	char exe[PATH_MAX];
	ssize_t n;
	pid_t pid;
	int st;

	(void)state;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl(exe, exe, "--nodev", (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(int argc, char **argv)
{
	struct CMUnitTest tests[NELEM(tmodels) + 3];
	static char names[NELEM(tmodels)][96];
	size_t nt = NELEM(tmodels);

	if (argc > 1 && !strcmp(argv[1], "--nodev"))
		return nodev_main();
	have_dev = ccg_init() == 0;
	printf("device: %s\n", ccg_why());
	f16_exact = !strcmp(cck_tier(), "avx2") || !strcmp(cck_tier(), "avx512");
	for (int i = 0; have_dev && i < ccg_device_count(); i++) {
		struct ccg_device_info info;

		if (ccg_device_info(i, &info) == 0 && info.selected)
			f32_exact = info.fp64;
	}
	for (size_t i = 0; i < NELEM(tmodels); i++) {
		snprintf(names[i], sizeof(names[i]), "offload %s", tmodels[i].stem);
		tests[i] = (struct CMUnitTest){names[i], test_offload, NULL, lm_teardown, (void *)&tmodels[i]};
	}
	tests[nt++] = (struct CMUnitTest){"offload packed stories260K-Q8_0", test_offload_packed, NULL, lm_teardown,
	                                  (void *)&tmodels[3]};
	tests[nt++] = (struct CMUnitTest){"offload packed SmolLM2", test_offload_packed, NULL, lm_teardown,
	                                  (void *)&tmodels[5]};
	tests[nt++] = (struct CMUnitTest){"offload without a device", test_nodev, NULL, NULL, NULL};
	return _cmocka_run_group_tests("engine on the OpenCL device", tests, nt, NULL, NULL) ? 1 : 0;
}
