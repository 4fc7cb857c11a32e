/* SPDX-License-Identifier: MIT */
/* infer.h: inference jobs of ccd (generate, logits): what a worker runs with a model's engine. */
#ifndef CCD_INFER_H
#define CCD_INFER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

enum ccd_infer_kind {
	CCD_INFER_GENERATE = 0,
	CCD_INFER_LOGITS,
};

/* One inference request: inputs set by the front end, results by the worker (ccd_infer_run). */
struct ccd_infer {
	enum ccd_infer_kind kind;
	const struct cce_model *model;
	const struct cce_vocab *vocab;
	const struct ccm_gguf *gguf;
	unsigned threads;                /* libcck threads for this job (0: all) */
	uint32_t max_ctx;                /* cap on the context (positions) */
	const _Atomic int *cancel_model; /* set when the model is force-unloaded, or ccd shuts down */

	/* generate */
	char *prompt;
	int raw;
	uint32_t max_tokens;
	struct cce_sampling samp;
	char **stop;
	size_t nstop;
	/* logits */
	int32_t *ids;
	size_t nids;
	float *out; /* n_vocab floats in a client region, or NULL */
	uint32_t top;

	/* results */
	int code;
	char err[256];
	char *text;
	size_t text_len;
	int32_t *gen;
	size_t ngen;
	uint32_t prompt_tokens;
	double pp_s, tg_s;
	const char *stop_reason;
	const char *tmpl;
	int32_t *top_ids;
	float *top_logits;
	uint32_t ntop;
	uint32_t n_vocab;
};

/* Run it (on a worker thread). Sets code (0 or -errno) and err. */
void ccd_infer_run(struct ccd_infer *inf);
/* Free it and everything it owns. NULL is a no-op. */
void ccd_infer_free(struct ccd_infer *inf);

#endif /* CCD_INFER_H */
