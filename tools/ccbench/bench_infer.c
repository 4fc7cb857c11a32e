/* SPDX-License-Identifier: MIT */
/* bench_infer.c: `ccbench infer`: prompt processing and generation speed of the engine in-process (the figures
 * bench/compare-llamacpp sets beside llama.cpp's on the same model, prompt and threads). */
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

#include "cck.h"
#include "engine.h"
#include "gguf.h"
#include "load.h"

int cmd_infer(int argc, char **argv);

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * The prompt: token i is (i * 7919 + 13) mod n_vocab, skipping id 0..2 (specials in these vocabularies), so any
 * peer can rebuild the same ids. The prompt starts with BOS (1) as llama.cpp's bench does.
 */
static int32_t prompt_id(uint32_t i, uint32_t n_vocab)
{
	if (i == 0)
		return 1;
	return (int32_t)(3 + ((uint64_t)i * 7919u + 13u) % (n_vocab - 3));
}

static int argmax(const float *v, uint32_t n)
{
	uint32_t i, best = 0;

	for (i = 1; i < n; i++)
		if (v[i] > v[best])
			best = i;
	return (int)best;
}

int cmd_infer(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"model", required_argument, NULL, 'm'},
	    {"threads", required_argument, NULL, 't'},
	    {"prompt-tokens", required_argument, NULL, 'p'},
	    {"gen-tokens", required_argument, NULL, 'g'},
	    {"reps", required_argument, NULL, 'r'},
	    {"mode", required_argument, NULL, 'M'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = NULL, *mode = "mmap";
	long threads = 1, np = 128, ng = 64, reps = 3;
	struct ccm_place place = {CCM_PLACE_INTERLEAVE, 0};
	struct ccm_region region;
	struct ccm_gguf *g = NULL;
	struct cce_model *m = NULL;
	struct cce_ctx *ctx = NULL;
	const struct cce_hparams *hp;
	double best_pp = 0, best_tg = 0;
	char err[512] = "";
	int32_t *ids = NULL;
	float *logits = NULL;
	int fd, opt, r;
	long rep, i;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "m:t:p:g:r:M:", opts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			path = optarg;
			break;
		case 't':
			threads = strtol(optarg, NULL, 10);
			break;
		case 'p':
			np = strtol(optarg, NULL, 10);
			break;
		case 'g':
			ng = strtol(optarg, NULL, 10);
			break;
		case 'r':
			reps = strtol(optarg, NULL, 10);
			break;
		case 'M':
			mode = optarg;
			break;
		default:
			fprintf(stderr,
			        "usage: ccbench infer --model PATH [--threads T] [--prompt-tokens N] [--gen-tokens N] "
			        "[--reps R] [--mode mmap|uring]\n");
			return 2;
		}
	}
	if (!path || threads < 0 || np < 1 || ng < 0 || reps < 1 || ccm_mode_parse(mode) < 0) {
		fprintf(stderr, "ccbench infer: need --model PATH, threads >= 0, prompt-tokens >= 1, reps >= 1, mode "
		                "mmap|uring\n");
		return 2;
	}
	cck_set_threads((int)threads);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "ccbench infer: %s: %s\n", path, strerror(errno));
		return 1;
	}
	r = ccm_gguf_open_fd(fd, &g, err, sizeof(err));
	if (r == 0)
		r = ccm_load_fd(fd, ccm_gguf_data_offset(g), ccm_gguf_data_size(g), (enum ccm_mode)ccm_mode_parse(mode),
		                &place, NULL, &region, err, sizeof(err));
	close(fd);
	if (r == 0)
		r = cce_model_init(g, region.data, &m, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "ccbench infer: %s: %s\n", path, err[0] ? err : strerror(-r));
		return 1;
	}
	hp = cce_model_hparams(m);
	if ((uint64_t)np + (uint64_t)ng > hp->n_ctx_train) {
		fprintf(stderr, "ccbench infer: %ld + %ld tokens exceed the model's context (%u)\n", np, ng,
		        hp->n_ctx_train);
		return 2;
	}
	ids = malloc((size_t)np * sizeof(*ids));
	logits = malloc((size_t)hp->n_vocab * sizeof(*logits));
	if (!ids || !logits || cce_ctx_new(m, (uint32_t)(np + ng), &ctx) < 0) {
		fprintf(stderr, "ccbench infer: out of memory\n");
		return 1;
	}
	for (i = 0; i < np; i++)
		ids[i] = prompt_id((uint32_t)i, hp->n_vocab);
	for (rep = 0; rep < reps; rep++) {
		double t0, pp, tg;
		int32_t next;

		cce_ctx_reset(ctx);
		t0 = now_s();
		r = cce_eval(ctx, ids, (size_t)np, logits, NULL);
		pp = now_s() - t0;
		if (r < 0)
			break;
		t0 = now_s();
		for (i = 0; i < ng && r == 0; i++) {
			next = argmax(logits, hp->n_vocab);
			r = cce_eval(ctx, &next, 1, logits, NULL);
		}
		tg = now_s() - t0;
		if (r < 0)
			break;
		if ((double)np / pp > best_pp)
			best_pp = (double)np / pp;
		if (ng && (double)ng / tg > best_tg)
			best_tg = (double)ng / tg;
	}
	if (r < 0) {
		fprintf(stderr, "ccbench infer: eval: %s\n", strerror(-r));
		return 1;
	}
	printf("{\"bench\":\"infer\",\"model\":\"%s\",\"arch\":\"%s\",\"threads\":%d,\"prompt_tokens\":%ld,"
	       "\"gen_tokens\":%ld,\"reps\":%ld,\"stat\":\"best\",\"pp_tps\":%.2f,\"tg_tps\":%.2f}\n",
	       strrchr(path, '/') ? strrchr(path, '/') + 1 : path, hp->arch, cck_get_threads(), np, ng, reps, best_pp,
	       best_tg);
	cce_ctx_free(ctx);
	cce_model_free(m);
	ccm_region_free(&region);
	ccm_gguf_free(g);
	free(ids);
	free(logits);
	return 0;
}
