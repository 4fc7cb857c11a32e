/* SPDX-License-Identifier: MIT */
/* engine_internal.h: the bound model (weights as pointers into the loaded data), shared by model.c and forward.c. */
#ifndef CCE_ENGINE_INTERNAL_H
#define CCE_ENGINE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

struct ccg_mat;

/* A weight matrix of rows x cols (GGUF shape {cols, rows}), rows packed at row_bytes, of a libcck type; dev: its copy
 * on the OpenCL device when offloaded (cce_model_offload), which the matrix products then use. */
struct cce_mat {
	const void *data;
	int type;
	size_t rows, cols, row_bytes;
	struct ccg_mat *dev;
};

struct cce_layer {
	const float *attn_norm, *ffn_norm;
	struct cce_mat wq, wk, wv, wo;
	const float *bq, *bk, *bv, *bo; /* NULL when absent (qwen2 has q/k/v biases) */
	struct cce_mat w_gate, w_up, w_down;
	const float *b_gate, *b_up, *b_down; /* optional FFN biases (llama) */
};

struct cce_model {
	struct cce_hparams hp;
	uint32_t q_dim, kv_dim;
	struct cce_mat tok_embd; /* n_vocab x n_embd: rows are dequantized for the embeddings */
	struct cce_mat output;   /* n_vocab x n_embd: token_embd again when tied */
	const float *output_norm, *output_b;
	const float *rope_freqs; /* n_rot / 2 frequency factors (llama3) or NULL */
	struct cce_layer *layers;
	uint32_t n_offloaded; /* layers with a matrix on the device (cce_model_offload) */
};

#endif /* CCE_ENGINE_INTERNAL_H */
