/* SPDX-License-Identifier: MIT */
/* infer.c: the inference jobs a worker runs: generate (template, tokenize, batched prompt, sample until a stop)
 * and logits (evaluate a token list, keep the last position's logits). */
#define _GNU_SOURCE 1
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cck.h"
#include "infer.h"
#include "log.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Set the job's error (one line) and code; returns code. */
__attribute__((format(printf, 3, 4))) static int fail(struct ccd_infer *inf, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(inf->err, sizeof(inf->err), fmt, ap);
	va_end(ap);
	inf->code = code;
	return code;
}

/* Append len bytes to the generated text. */
static int text_add(struct ccd_infer *inf, const char *s, size_t len, size_t *cap)
{
	if (inf->text_len + len + 1 > *cap) {
		size_t ncap = *cap ? *cap * 2 : 256;
		char *p;

		while (ncap < inf->text_len + len + 1)
			ncap *= 2;
		p = realloc(inf->text, ncap);
		if (!p)
			return -ENOMEM;
		inf->text = p;
		*cap = ncap;
	}
	memcpy(inf->text + inf->text_len, s, len);
	inf->text_len += len;
	inf->text[inf->text_len] = '\0';
	return 0;
}

/* A stop string now in the text (searching only where a new piece could complete one): cut the text there. */
static int hit_stop(struct ccd_infer *inf, size_t from)
{
	size_t i;

	for (i = 0; i < inf->nstop; i++) {
		size_t sl = strlen(inf->stop[i]), start = from > sl ? from - sl : 0;
		char *p;

		if (!sl || sl > inf->text_len)
			continue;
		p = memmem(inf->text + start, inf->text_len - start, inf->stop[i], sl);
		if (p) {
			inf->text_len = (size_t)(p - inf->text);
			inf->text[inf->text_len] = '\0';
			return 1;
		}
	}
	return 0;
}

/* The engine checks the model's cancel flag between layers: a forced unload or a shutdown stops a long prompt too. */
/* Append token id's piece: n bytes, already in buf when they fit its size, else fetched again at full length. */
static int add_piece(struct ccd_infer *inf, int32_t id, const char *buf, size_t size, size_t n, size_t *cap)
{
	char *big;
	int r;

	if (n <= size)
		return text_add(inf, buf, n, cap);
	big = malloc(n);
	if (!big)
		return -ENOMEM;
	r = cce_token_piece(inf->vocab, id, 0, big, n);
	r = r < 0 ? r : text_add(inf, big, (size_t)r < n ? (size_t)r : n, cap);
	free(big);
	return r;
}

static int eval(struct ccd_infer *inf, struct cce_ctx *ctx, const int32_t *ids, size_t n, float *logits)
{
	return cce_eval(ctx, ids, n, logits, inf->cancel_model);
}

static void run_generate(struct ccd_infer *inf)
{
	const struct cce_hparams *hp = cce_model_hparams(inf->model);
	struct cce_sampler *smp = NULL;
	struct cce_ctx *ctx = NULL;
	char *templated = NULL, piece[256];
	const char *text = inf->prompt;
	int32_t *ids = NULL;
	float *logits = NULL;
	size_t nids = 0, cap = 0, i;
	uint32_t n_ctx;
	double t0;
	int r, parse_special = 0;

	if (!inf->prompt[0]) {
		fail(inf, -EINVAL, "empty prompt");
		return;
	}
	inf->tmpl = "raw";
	if (!inf->raw) {
		struct cce_msg msg = {"user", inf->prompt};

		r = cce_chat_apply(inf->gguf, &msg, 1, &templated);
		if (r == 0) {
			text = templated;
			parse_special = 1; /* the template's own markers are special tokens */
			inf->tmpl = "chat";
		} else if (r == -EOPNOTSUPP) {
			inf->tmpl = "raw (the model's chat template is not one ccd knows)";
			ccd_warn("generate: the model's chat template is not one ccd knows: using the raw prompt");
		} else {
			fail(inf, r, "chat template: %s", strerror(-r));
			goto out;
		}
	}
	r = cce_tokenize(inf->vocab, text, strlen(text), -1, parse_special, &ids, &nids);
	if (r < 0) {
		fail(inf, r, "%s", r == -EILSEQ ? "the prompt is not valid UTF-8" : strerror(-r));
		goto out;
	}
	if (nids == 0) {
		fail(inf, -EINVAL, "the prompt has no tokens");
		goto out;
	}
	n_ctx = inf->max_ctx;
	if (hp->n_ctx_train && hp->n_ctx_train < n_ctx)
		n_ctx = hp->n_ctx_train;
	if (nids >= n_ctx) {
		fail(inf, -E2BIG, "the prompt has %zu tokens: more than the context of %u allows", nids, n_ctx);
		goto out;
	}
	if (nids + inf->max_tokens < n_ctx)
		n_ctx = (uint32_t)(nids + inf->max_tokens);
	inf->prompt_tokens = (uint32_t)nids;
	logits = malloc((size_t)hp->n_vocab * sizeof(float));
	inf->gen = malloc(((size_t)inf->max_tokens + 1) * sizeof(int32_t));
	if (!logits || !inf->gen || cce_ctx_new(inf->model, n_ctx, &ctx) < 0 ||
	    cce_sampler_new(&inf->samp, hp->n_vocab, &smp) < 0 || text_add(inf, "", 0, &cap) < 0) {
		fail(inf, -ENOMEM, "out of memory");
		goto out;
	}
	t0 = now_s();
	r = eval(inf, ctx, ids, nids, logits);
	inf->pp_s = now_s() - t0;
	if (r < 0) {
		fail(inf, r, "evaluating the prompt: %s", r == -ECANCELED ? "cancelled" : strerror(-r));
		goto out;
	}
	for (i = 0; i < nids; i++)
		cce_sampler_accept(smp, ids[i]);
	inf->stop_reason = "length";
	t0 = now_s();
	while (inf->ngen < inf->max_tokens) {
		int32_t id = cce_sampler_sample(smp, logits);
		size_t before = inf->text_len;
		int n;

		if (cce_vocab_is_eog(inf->vocab, id)) {
			inf->stop_reason = "eos";
			break;
		}
		inf->gen[inf->ngen++] = id;
		cce_sampler_accept(smp, id);
		n = cce_token_piece(inf->vocab, id, 0, piece, sizeof(piece));
		if (n > 0 && add_piece(inf, id, piece, sizeof(piece), (size_t)n, &cap) < 0) {
			fail(inf, -ENOMEM, "out of memory");
			goto out;
		}
		if (inf->nstop && hit_stop(inf, before)) {
			inf->stop_reason = "stop";
			break;
		}
		if (inf->ngen == inf->max_tokens)
			break;
		if (cce_ctx_pos(ctx) >= n_ctx) { /* the context is full: the text so far is the answer */
			inf->stop_reason = "context";
			break;
		}
		r = eval(inf, ctx, &id, 1, logits);
		if (r < 0) {
			fail(inf, r, "generating: %s",
			     r == -ECANCELED ? "cancelled (the model is being unloaded, or ccd is shutting down)"
			                     : strerror(-r));
			goto out;
		}
	}
	inf->tg_s = now_s() - t0;
	inf->code = 0;
out:
	cce_sampler_free(smp);
	cce_ctx_free(ctx);
	free(logits);
	free(ids);
	free(templated);
}

static void run_logits(struct ccd_infer *inf)
{
	const struct cce_hparams *hp = cce_model_hparams(inf->model);
	struct cce_ctx *ctx = NULL;
	float *logits = NULL;
	uint32_t n_ctx = inf->max_ctx, k, i, j;
	int r;

	if (hp->n_ctx_train && hp->n_ctx_train < n_ctx)
		n_ctx = hp->n_ctx_train;
	if (inf->nids == 0) {
		fail(inf, -EINVAL, "no tokens to evaluate");
		return;
	}
	if (inf->nids > n_ctx) {
		fail(inf, -E2BIG, "%zu tokens: more than the context of %u allows", inf->nids, n_ctx);
		return;
	}
	for (i = 0; i < inf->nids; i++)
		if (inf->ids[i] < 0 || (uint32_t)inf->ids[i] >= hp->n_vocab) {
			fail(inf, -EINVAL, "token %ld is not in the vocabulary", (long)inf->ids[i]);
			return;
		}
	inf->n_vocab = hp->n_vocab;
	logits = malloc((size_t)hp->n_vocab * sizeof(float));
	k = inf->top < hp->n_vocab ? inf->top : hp->n_vocab;
	inf->top_ids = malloc(((size_t)k + 1) * sizeof(int32_t));
	inf->top_logits = malloc(((size_t)k + 1) * sizeof(float));
	if (!logits || !inf->top_ids || !inf->top_logits || cce_ctx_new(inf->model, (uint32_t)inf->nids, &ctx) < 0) {
		fail(inf, -ENOMEM, "out of memory");
		goto out;
	}
	r = eval(inf, ctx, inf->ids, inf->nids, logits);
	if (r < 0) {
		fail(inf, r, "evaluating: %s", strerror(-r));
		goto out;
	}
	if (inf->out)
		memcpy(inf->out, logits, (size_t)hp->n_vocab * sizeof(float));
	/* the k best, best first (ties: the lower id first), by insertion into a sorted top list */
	for (i = 0; i < hp->n_vocab; i++) {
		float v = logits[i];

		if (inf->ntop == k && (k == 0 || !(v > inf->top_logits[k - 1])))
			continue;
		j = inf->ntop < k ? inf->ntop++ : k - 1;
		while (j > 0 && v > inf->top_logits[j - 1]) {
			inf->top_logits[j] = inf->top_logits[j - 1];
			inf->top_ids[j] = inf->top_ids[j - 1];
			j--;
		}
		inf->top_logits[j] = v;
		inf->top_ids[j] = (int32_t)i;
	}
	inf->code = 0;
out:
	cce_ctx_free(ctx);
	free(logits);
}

void ccd_infer_run(struct ccd_infer *inf)
{
	int old = cck_set_local_threads((int)inf->threads);

	inf->code = 0;
	inf->err[0] = '\0';
	if (inf->kind == CCD_INFER_GENERATE)
		run_generate(inf);
	else
		run_logits(inf);
	cck_set_local_threads(old);
}

void ccd_infer_free(struct ccd_infer *inf)
{
	size_t i;

	if (!inf)
		return;
	free(inf->prompt);
	for (i = 0; i < inf->nstop; i++)
		free(inf->stop[i]);
	free(inf->stop);
	free(inf->ids);
	free(inf->text);
	free(inf->gen);
	free(inf->top_ids);
	free(inf->top_logits);
	free(inf);
}
