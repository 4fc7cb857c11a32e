/* SPDX-License-Identifier: MIT */
/* infer.c: the logits job a worker runs (evaluate a token list, keep the last position's logits). Generation runs
 * in the model's scheduler (sched.c). */
#define _GNU_SOURCE 1
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cck.h"
#include "infer.h"
#include "log.h"

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

static int eval(struct ccd_infer *inf, struct cce_ctx *ctx, const int32_t *ids, size_t n, float *logits)
{
	return cce_eval(ctx, ids, n, logits, inf->cancel_model);
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
	run_logits(inf);
	cck_set_local_threads(old);
}

void ccd_infer_free(struct ccd_infer *inf)
{
	if (!inf)
		return;
	free(inf->ids);
	free(inf->top_ids);
	free(inf->top_logits);
	free(inf);
}
