/* SPDX-License-Identifier: MIT */
/* infer.h: the logits job of ccd: what a worker runs with a model's engine (generation: sched.h). */
#ifndef CCD_INFER_H
#define CCD_INFER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

enum ccd_infer_kind {
	CCD_INFER_LOGITS = 0,
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

	/* logits */
	int32_t *ids;
	size_t nids;
	float *out; /* n_vocab floats in a client region, or NULL */
	uint32_t top;

	/* results */
	int code;
	char err[256];
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
