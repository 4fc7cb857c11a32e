/* SPDX-License-Identifier: MIT */
/* bench_infer.c: `ccbench infer`: prompt processing and generation speed of the engine in-process (the figures
 * bench/compare-llamacpp sets beside llama.cpp's on the same model, prompt and threads), and with --batch K the
 * aggregate generation speed of K sequences decoded together (continuous batching: one cce_eval_batch per step). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ccg.h"
#include "cck.h"
#include "engine.h"
#include "gguf.h"
#include "load.h"

int cmd_infer(int argc, char **argv);

/* Tokens of a --batch pass: the prompts go through in passes of this many. */
#define BATCH_PASS 64

struct bench {
	const char *path;
	long threads, np, ng, reps, batch;
	struct cce_model *m;
	const struct cce_hparams *hp;
	int opencl;       /* --backend opencl */
	int pack;         /* --pack: cce_model_pack (in uring mode) */
	int packed;       /* matrices it packed */
	long gpu_layers;  /* --gpu-layers: -1 = all */
	int offloaded;    /* layers on the device */
	size_t dev_bytes; /* their bytes there */
	char device[320]; /* the device, "" on the CPU */
};

/* The backend's fields of every line: "backend", "gpu_layers", "device_bytes", "device". */
static void print_backend(const struct bench *b)
{
	printf(",\"packed\":%d,\"backend\":\"%s\",\"gpu_layers\":%d,\"device_bytes\":%zu,\"device\":", b->packed,
	       b->opencl ? "opencl" : "cpu", b->offloaded, b->dev_bytes);
	if (!b->opencl) {
		printf("null");
		return;
	}
	putchar('"');
	for (const char *p = b->device; *p; p++)
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if ((unsigned char)*p >= 0x20)
			putchar(*p);
	putchar('"');
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * The prompt: token i is (i * 7919 + 13) mod n_vocab, skipping id 0..2 (specials in these vocabularies), so any
 * peer can rebuild the same ids. The prompt starts with BOS (1) as llama.cpp's bench does. Sequence s of --batch
 * takes tokens s * np + i instead (a prompt of its own, BOS first).
 */
static int32_t prompt_id(uint64_t i, uint32_t n_vocab)
{
	if (i == 0)
		return 1;
	return (int32_t)(3 + (i * 7919u + 13u) % (n_vocab - 3));
}

static const char *base_name(const char *path)
{
	return strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
}

static int32_t argmax(const float *v, uint32_t n)
{
	uint32_t i, best = 0;

	for (i = 1; i < n; i++)
		if (v[i] > v[best])
			best = i;
	return (int32_t)best;
}

/* The classic figures: one context, its prompt in one cce_eval, then ng tokens one at a time. */
static int run_single(const struct bench *b)
{
	struct cce_ctx *ctx = NULL;
	double best_pp = 0, best_tg = 0;
	int32_t *ids = malloc((size_t)b->np * sizeof(*ids));
	float *logits = malloc((size_t)b->hp->n_vocab * sizeof(*logits));
	int r = 0;

	if (!ids || !logits || cce_ctx_new(b->m, (uint32_t)(b->np + b->ng), &ctx) < 0)
		r = -ENOMEM;
	for (long i = 0; r == 0 && i < b->np; i++)
		ids[i] = prompt_id((uint64_t)i, b->hp->n_vocab);
	for (long rep = 0; r == 0 && rep < b->reps; rep++) {
		double t0, pp, tg;
		int32_t next;

		cce_ctx_reset(ctx);
		t0 = now_s();
		r = cce_eval(ctx, ids, (size_t)b->np, logits, NULL);
		pp = now_s() - t0;
		t0 = now_s();
		for (long i = 0; i < b->ng && r == 0; i++) {
			next = argmax(logits, b->hp->n_vocab);
			r = cce_eval(ctx, &next, 1, logits, NULL);
		}
		tg = now_s() - t0;
		if ((double)b->np / pp > best_pp)
			best_pp = (double)b->np / pp;
		if (b->ng && (double)b->ng / tg > best_tg)
			best_tg = (double)b->ng / tg;
	}
	if (r == 0) {
		printf("{\"bench\":\"infer\",\"model\":\"%s\",\"arch\":\"%s\",\"threads\":%d,\"prompt_tokens\":%ld,"
		       "\"gen_tokens\":%ld,\"reps\":%ld,\"stat\":\"best\",\"pp_tps\":%.2f,\"tg_tps\":%.2f",
		       base_name(b->path), b->hp->arch, cck_get_threads(), b->np, b->ng, b->reps, best_pp, best_tg);
		print_backend(b);
		printf("}\n");
	}
	cce_ctx_free(ctx);
	free(ids);
	free(logits);
	return r;
}

/* K sequences decoded together (what --batch runs, K = 1 too). */
struct group {
	long k;
	struct cce_ctx **ctx;
	struct cce_seq *seqs;
	int32_t *ids, *next; /* k x np prompt tokens; k next tokens */
	float *logits;       /* k x n_vocab */
};

static void group_free(struct group *g)
{
	for (long s = 0; g->ctx && s < g->k; s++)
		cce_ctx_free(g->ctx[s]);
	free(g->ctx);
	free(g->seqs);
	free(g->ids);
	free(g->next);
	free(g->logits);
}

static int group_init(const struct bench *b, long k, struct group *g)
{
	const size_t nv = b->hp->n_vocab;

	memset(g, 0, sizeof(*g));
	g->k = k;
	g->ctx = calloc((size_t)k, sizeof(*g->ctx));
	g->seqs = calloc((size_t)k, sizeof(*g->seqs));
	g->ids = malloc((size_t)k * (size_t)b->np * sizeof(*g->ids));
	g->next = malloc((size_t)k * sizeof(*g->next));
	g->logits = malloc((size_t)k * nv * sizeof(*g->logits));
	if (!g->ctx || !g->seqs || !g->ids || !g->next || !g->logits)
		return -ENOMEM;
	for (long s = 0; s < k; s++) {
		if (cce_ctx_new(b->m, (uint32_t)(b->np + b->ng), &g->ctx[s]) < 0)
			return -ENOMEM;
		for (long i = 0; i < b->np; i++)
			g->ids[s * b->np + i] = prompt_id(i ? (uint64_t)(s * b->np + i) : 0, b->hp->n_vocab);
	}
	return 0;
}

/* One round: the k prompts in one call (passes of BATCH_PASS), then ng steps of one token each; the step time. */
static int group_round(struct cce_work *w, const struct bench *b, struct group *g, double *tg)
{
	const size_t nv = b->hp->n_vocab;
	double t0;
	int r;

	for (long s = 0; s < g->k; s++) {
		cce_ctx_reset(g->ctx[s]);
		g->seqs[s] = (struct cce_seq){g->ctx[s], g->ids + s * b->np, (uint32_t)b->np, b->np >= 2,
		                              g->logits + (size_t)s * nv};
	}
	if ((r = cce_eval_batch(w, g->seqs, (size_t)g->k, NULL)))
		return r;
	t0 = now_s();
	for (long i = 0; i < b->ng; i++) {
		for (long s = 0; s < g->k; s++) {
			g->next[s] = argmax(g->logits + (size_t)s * nv, (uint32_t)nv);
			g->seqs[s].ids = &g->next[s];
			g->seqs[s].n = 1;
			g->seqs[s].prompt = 0;
		}
		if ((r = cce_eval_batch(w, g->seqs, (size_t)g->k, NULL)))
			return r;
	}
	*tg = now_s() - t0;
	return 0;
}

/* --batch K: aggregate decode tokens/s of K sequences and of one, rounds alternating (a noisy host hits both). */
static int run_batch(const struct bench *b)
{
	struct group g1, gk;
	struct cce_work *w = NULL;
	double best1 = 0, bestk = 0, t;
	int r;

	r = cce_work_new(b->m, BATCH_PASS > b->batch ? BATCH_PASS : (uint32_t)b->batch, (uint32_t)(b->np + b->ng), &w);
	if (r == 0)
		r = group_init(b, 1, &g1);
	if (r == 0)
		r = group_init(b, b->batch, &gk);
	for (long rep = 0; r == 0 && rep < b->reps; rep++) {
		if ((r = group_round(w, b, &g1, &t)) == 0 && (double)b->ng / t > best1)
			best1 = (double)b->ng / t;
		if (r == 0 && (r = group_round(w, b, &gk, &t)) == 0 && (double)(b->ng * b->batch) / t > bestk)
			bestk = (double)(b->ng * b->batch) / t;
	}
	if (r == 0) {
		printf("{\"bench\":\"infer_batch\",\"model\":\"%s\",\"arch\":\"%s\",\"threads\":%d,"
		       "\"prompt_tokens\":%ld,\"gen_tokens\":%ld,\"reps\":%ld,\"stat\":\"best\",\"batch\":%ld,"
		       "\"tg_tps_1\":%.2f,\"tg_tps_batch\":%.2f,\"ratio\":%.3f",
		       base_name(b->path), b->hp->arch, cck_get_threads(), b->np, b->ng, b->reps, b->batch, best1,
		       bestk, best1 > 0 ? bestk / best1 : 0.0);
		print_backend(b);
		printf("}\n");
	}
	group_free(&g1);
	group_free(&gk);
	cce_work_free(w);
	return r;
}

static int usage(void)
{
	fprintf(stderr, "usage: ccbench infer --model PATH [--threads T] [--prompt-tokens N] [--gen-tokens N] "
	                "[--reps R] [--mode mmap|uring] [--batch K] [--backend cpu|opencl] [--gpu-layers N] [--pack]\n"
	                "  --batch K: K sequences (prompts of N tokens each) decode together, one batched\n"
	                "             eval a step; prints the aggregate generation tokens/s for K and for 1\n"
	                "             (same run) and their ratio\n"
	                "  --backend opencl: the weights of --gpu-layers layers (default -1: all) go to the\n"
	                "             OpenCL device (CC_OPENCL_DEVICE, else the first GPU, else the first device)\n"
	                "             and their matrix products run there; cpu (default): libcck only\n"
	                "  --pack: (with --mode uring) the q4_1 and q8_0 matrices packed as ccd's pack_weights=on\n"
	                "             does (AVX512-VNNI; not llama.cpp's bits)\n"
	                "  Every line says \"packed\" (matrices), \"backend\", \"gpu_layers\" (offloaded),\n"
	                "  \"device_bytes\", \"device\".\n");
	return 2;
}

static int parse(int argc, char **argv, struct bench *b, const char **mode)
{
	static const struct option opts[] = {
	    {"model", required_argument, NULL, 'm'},
	    {"threads", required_argument, NULL, 't'},
	    {"prompt-tokens", required_argument, NULL, 'p'},
	    {"gen-tokens", required_argument, NULL, 'g'},
	    {"reps", required_argument, NULL, 'r'},
	    {"mode", required_argument, NULL, 'M'},
	    {"batch", required_argument, NULL, 'b'},
	    {"backend", required_argument, NULL, 'B'},
	    {"gpu-layers", required_argument, NULL, 'G'},
	    {"pack", no_argument, NULL, 'P'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int opt, gl_given = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "m:t:p:g:r:M:b:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			b->path = optarg;
			break;
		case 't':
			b->threads = strtol(optarg, NULL, 10);
			break;
		case 'p':
			b->np = strtol(optarg, NULL, 10);
			break;
		case 'g':
			b->ng = strtol(optarg, NULL, 10);
			break;
		case 'r':
			b->reps = strtol(optarg, NULL, 10);
			break;
		case 'M':
			*mode = optarg;
			break;
		case 'b':
			b->batch = strtol(optarg, NULL, 10);
			break;
		case 'B':
			if (strcmp(optarg, "cpu") && strcmp(optarg, "opencl")) {
				fprintf(stderr, "ccbench infer: --backend '%s': cpu or opencl\n", optarg);
				return 2;
			}
			b->opencl = !strcmp(optarg, "opencl");
			break;
		case 'G':
			b->gpu_layers = strtol(optarg, NULL, 10);
			gl_given = 1;
			break;
		case 'P':
			b->pack = 1;
			break;
		default:
			return usage();
		}
	}
	if (b->pack && ccm_mode_parse(*mode) == CCM_MODE_MMAP) {
		fprintf(stderr, "ccbench infer: --pack rewrites the weights in memory: give --mode uring\n");
		return 2;
	}
	if (b->gpu_layers < -1 || (gl_given && !b->opencl)) {
		fprintf(stderr, "ccbench infer: --gpu-layers N (-1: all) goes with --backend opencl\n");
		return 2;
	}
	if (!b->path || b->threads < 0 || b->np < 1 || b->ng < 0 || b->reps < 1 || b->batch < 0 || b->batch > 4096 ||
	    ccm_mode_parse(*mode) < 0) {
		fprintf(stderr, "ccbench infer: need --model PATH, threads >= 0, prompt-tokens >= 1, reps >= 1, "
		                "batch <= 4096, mode mmap|uring\n");
		return 2;
	}
	return 0;
}

/* --backend opencl: the weights of gpu_layers layers onto the device. 0, or 1 after saying why not. */
static int offload(struct bench *b)
{
	char err[256] = "";
	int n, r;

	if (!b->opencl) {
		ccg_set_backend(CCG_BACKEND_CPU);
		return 0;
	}
	if (ccg_init() < 0) {
		fprintf(stderr, "ccbench infer: --backend opencl: no OpenCL device: %s\n", ccg_why());
		return 1;
	}
	snprintf(b->device, sizeof(b->device), "%s", ccg_why());
	/* -1: every layer and the output matrix */
	n = b->gpu_layers < 0 || b->gpu_layers > (long)b->hp->n_layer ? -1 : (int)b->gpu_layers;
	r = cce_model_offload(b->m, n, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "ccbench infer: cannot offload %d layers: %s\n", n, err[0] ? err : strerror(-r));
		return 1;
	}
	b->offloaded = cce_model_offloaded(b->m);
	b->dev_bytes = cce_model_device_bytes(b->m);
	return 0;
}

int cmd_infer(int argc, char **argv)
{
	struct bench b = {.threads = 1, .np = 128, .ng = 64, .reps = 3, .gpu_layers = -1};
	const char *mode = "mmap";
	struct ccm_place place = {CCM_PLACE_INTERLEAVE, 0};
	struct ccm_region region;
	struct ccm_gguf *g = NULL;
	char err[512] = "";
	int fd, r;

	if ((r = parse(argc, argv, &b, &mode)))
		return r;
	cck_set_threads((int)b.threads);
	fd = open(b.path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "ccbench infer: %s: %s\n", b.path, strerror(errno));
		return 1;
	}
	r = ccm_gguf_open_fd(fd, &g, err, sizeof(err));
	if (r == 0)
		r = ccm_load_fd(fd, ccm_gguf_data_offset(g), ccm_gguf_data_size(g), (enum ccm_mode)ccm_mode_parse(mode),
		                &place, NULL, &region, err, sizeof(err));
	close(fd);
	if (r == 0)
		r = cce_model_init(g, region.data, &b.m, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "ccbench infer: %s: %s\n", b.path, err[0] ? err : strerror(-r));
		return 1;
	}
	b.hp = cce_model_hparams(b.m);
	if (b.pack) { /* as ccd's pack_weights=on */
		r = cce_model_pack(b.m);
		if (r < 0)
			fprintf(stderr, "ccbench infer: packing the weights: %s (they stay row-major)\n", strerror(-r));
		b.packed = r > 0 ? r : 0;
	}
	if (offload(&b)) {
		r = 1;
	} else if ((uint64_t)b.np + (uint64_t)b.ng > b.hp->n_ctx_train) {
		fprintf(stderr, "ccbench infer: %ld + %ld tokens exceed the model's context (%u)\n", b.np, b.ng,
		        b.hp->n_ctx_train);
		r = 2;
	} else {
		r = b.batch ? run_batch(&b) : run_single(&b);
		if (r < 0)
			fprintf(stderr, "ccbench infer: eval: %s\n", strerror(-r));
		r = r < 0;
	}
	cce_model_free(b.m);
	ccm_region_free(&region);
	ccm_gguf_free(g);
	return r;
}
