/* SPDX-License-Identifier: MIT */
/* engine.h: the inference engine (libccengine): tokenizers, the llama/qwen2 forward pass over weights that libccmodel
 * loaded, sampling and chat templates. Used in-process by ccd, the tests and ccbench. Prefix cce_. */
#ifndef CCE_ENGINE_H
#define CCE_ENGINE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

/* ---- tokenizer (tokenizer.c) ------------------------------------------------------------------------------------- */

struct cce_vocab; /* from the GGUF's tokenizer.ggml.* metadata; immutable, shareable between threads */

/*
 * Build the vocabulary of a parsed file: "llama" (SentencePiece: scores, byte fallback <0xXX>, leading space) or
 * "gpt2" (byte-level BPE: merges, the pre-tokenizer split named by tokenizer.ggml.pre: at least default/gpt2,
 * llama3 (llama-bpe), qwen2, smollm), special/control tokens, BOS/EOS/EOT/UNK/PAD ids, add_bos_token (and
 * llama.cpp's default when the key is absent). Returns 0, -ENOENT (the file has no tokenizer), -EOPNOTSUPP
 * (a tokenizer model or pre-tokenizer we do not implement: err names it), -EBADMSG (inconsistent metadata).
 */
int cce_vocab_load(const struct ccm_gguf *g, struct cce_vocab **ret, char *err, size_t errlen);
void cce_vocab_free(struct cce_vocab *v);

const char *cce_vocab_kind(const struct cce_vocab *v); /* "llama" or "gpt2" */
uint32_t cce_vocab_size(const struct cce_vocab *v);
int32_t cce_vocab_bos(const struct cce_vocab *v);  /* -1 if none */
int32_t cce_vocab_eos(const struct cce_vocab *v);  /* -1 if none */
int cce_vocab_add_bos(const struct cce_vocab *v);  /* what the metadata (or llama.cpp's default) says */
size_t cce_vocab_bytes(const struct cce_vocab *v); /* memory it holds (the vocabulary stays resident per model) */
/* End of generation: EOS, EOT (e.g. <|im_end|>, <|eot_id|>) and the other eog tokens llama.cpp treats so. */
int cce_vocab_is_eog(const struct cce_vocab *v, int32_t id);
/* The id of a token's exact text (e.g. "<|im_end|>"), or -1. */
int32_t cce_vocab_find(const struct cce_vocab *v, const char *text, size_t len);

/*
 * Tokenize len bytes of UTF-8 text as llama.cpp's llama_tokenize(vocab, text, add_special = add_bos,
 * parse_special) does: add_bos < 0 means the vocab's default, 1 adds BOS (as llama.cpp does with
 * tokenizer.ggml.add_bos_token overridden to true), 0 adds none; parse_special: control-token texts in the input
 * become their ids (else they are plain text; user-defined tokens are always matched, as in llama.cpp). Invalid
 * UTF-8 is -EILSEQ, over 1 GiB of text -E2BIG. The ids go to a malloc'd array.
 */
int cce_tokenize(const struct cce_vocab *v, const char *text, size_t len, int add_bos, int parse_special,
                 int32_t **ret_ids, size_t *ret_n);
/*
 * The bytes of one token as llama.cpp's llama_token_to_piece(special = 0 / 1) gives them (SentencePiece: '▁' ->
 * ' ', <0xXX> -> the byte; BPE: the byte-level mapping undone). Writes up to size bytes, returns the length
 * (may exceed size: then call again with a bigger buffer), or -EINVAL for a bad id.
 */
int cce_token_piece(const struct cce_vocab *v, int32_t id, int special, char *buf, size_t size);
/* Text of a token list as llama.cpp's llama_detokenize(remove_special = 0, unparse_special = special): pieces
 * concatenated, a leading space of SentencePiece's first piece removed, and for BPE pre-tokenizers that ask for it
 * clean_up_tokenization_spaces. Malloc'd, NUL-terminated; may hold invalid UTF-8 mid-way through a character;
 * -EINVAL for a bad id. */
int cce_detokenize(const struct cce_vocab *v, const int32_t *ids, size_t n, int special, char **ret, size_t *ret_len);

/* ---- model and forward pass (model.c, forward.c) --------------------------------------------------------------- */

/* Hyperparameters read from the GGUF (general.architecture = llama | qwen2). */
struct cce_hparams {
	char arch[16];
	uint32_t n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, n_ff, n_rot, head_dim;
	float rms_eps, rope_freq_base, rope_freq_scale;
	int rope_neox;   /* 1: NEOX rotation (qwen2), 0: normal (llama) */
	int tied_output; /* output.weight absent: token_embd.weight is the output matrix */
};

struct cce_model; /* weights: pointers into the loaded tensor data (never copied or expanded), + hparams */

/*
 * Bind a parsed file and its loaded tensor data (data = the first byte of the data section) into a model.
 * Checks every tensor the architecture needs (name, shape, a type libcck can dot) and says which is wrong.
 * -EOPNOTSUPP for an unsupported architecture (err names it).
 */
int cce_model_init(const struct ccm_gguf *g, const void *data, struct cce_model **ret, char *err, size_t errlen);
void cce_model_free(struct cce_model *m);
const struct cce_hparams *cce_model_hparams(const struct cce_model *m);
/*
 * Offload matrix products to the OpenCL device (libccgpu), as llama.cpp's -ngl: the weight matrices of the last
 * n_layers layers whose types the device multiplies (ccg_type_supported: q4_0, q4_1, q8_0, q4_K, q6_K; others stay
 * on the CPU) are uploaded once and their products run there; n_layers < 0 or > n_layer: every layer and the output
 * matrix too; 0: none (what an earlier call offloaded is freed first). On a host-unified device the device buffers
 * are the model's own mapped weights (no copy). q4_0, q4_1 and q8_0 products give libcck's bits; q4_K and q6_K differ
 * only in float summation order. Call it while no pass runs on the model. Returns the number of layers with a matrix
 * on the device (>= 0), or -errno: -ENODEV (no device: err = ccg_why()), -ENOMEM, -EIO (then nothing is offloaded).
 */
int cce_model_offload(struct cce_model *m, int n_layers, char *err, size_t errlen);
/*
 * Pack the layers' weight matrices for libcck's packed kernels (cck_qpack: groups of 16 rows interleaved) where this
 * host has a faster kernel for their type (cck_qpack_supported), in place: the data given to cce_model_init must be
 * writable and the caller's (a copy in memory, not a file mapping), and those tensors then hold the packed layout
 * (cce_model_weight_type says which). Their products then sum in libcck's packed order: the same bits on every tier,
 * batch size and thread count, within float rounding of llama.cpp's (no longer bit for bit). Offloaded matrices stay
 * as they are, and cce_model_offload unpacks a packed one before uploading it. Call it before any pass. Returns the
 * number of matrices packed (0: none could be), or -errno (-ENOMEM; the matrices done so far stay packed, and work).
 */
int cce_model_pack(struct cce_model *m);
/* The libcck type that multiplies the model's tensor whose data starts at p: type | CCK_TYPE_PACK16 for a matrix
 * that cce_model_pack packed, else type (its type in the file). */
int cce_model_weight_type(const struct cce_model *m, const void *p, int type);
/* Layers offloaded (with a matrix on the device), and the device bytes of the offloaded matrices. */
int cce_model_offloaded(const struct cce_model *m);
size_t cce_model_device_bytes(const struct cce_model *m);

/*
 * A context: one sequence's KV cache (f16) of n_ctx positions and its position; the scratch of a pass lives in a
 * struct cce_work (cce_eval makes one of its own at its first call). The model must outlive it.
 */
struct cce_ctx;
int cce_ctx_new(const struct cce_model *m, uint32_t n_ctx, struct cce_ctx **ret);
void cce_ctx_free(struct cce_ctx *c);
uint32_t cce_ctx_pos(const struct cce_ctx *c); /* tokens in the cache */
/*
 * dst (of src's model) takes the first n positions of src's KV cache and then holds n tokens (what it held is
 * forgotten). The bits are those dst would compute for src's first n tokens if src computed them as dst would: the
 * same tokens from position 0, as prompt rows (struct cce_seq's prompt flag) or all as single decoded tokens; that is
 * the caller's to know. -EINVAL: NULL, dst == src, another model, n past src's position or dst's n_ctx.
 */
int cce_ctx_copy_prefix(struct cce_ctx *dst, const struct cce_ctx *src, uint32_t n);
void cce_ctx_reset(struct cce_ctx *c);         /* forget the cache */
/*
 * Append n tokens at the next positions (prompt processing runs batched: matmuls over all n tokens) and, if
 * logits is not NULL, write the logits of the last one (n_vocab floats). -ENOSPC past n_ctx, -EINVAL for an id
 * out of range, -ECANCELED if *cancel became non-zero (checked between layers; cancel may be NULL); -ENOMEM if the
 * context's own work cannot be made at the first call.
 */
int cce_eval(struct cce_ctx *c, const int32_t *ids, size_t n, float *logits, const _Atomic int *cancel);
/* KV cache bytes of a context of n_ctx positions (what cce_ctx_new allocates for it); 0 on overflow. */
size_t cce_kv_bytes(const struct cce_model *m, uint32_t n_ctx);
size_t cce_ctx_kv_bytes(const struct cce_ctx *c);
uint32_t cce_ctx_n_ctx(const struct cce_ctx *c);

/*
 * Batched evaluation of several sequences in one pass over the weights (continuous batching): every weight
 * matrix is read once for all the tokens of all the sequences; RoPE, the KV store and attention are per sequence.
 * A context made by cce_ctx_new only holds its KV cache (and its position); the scratch of a pass lives in a
 * struct cce_work, one per thread that evaluates (a server keeps one per model). Each row's arithmetic is the same
 * whatever else is in the batch, so a sequence gets the same bits batched with others as alone.
 */
struct cce_seq {
	struct cce_ctx *ctx;  /* distinct in one call */
	const int32_t *ids;   /* n >= 1 tokens appended at ctx's next positions */
	uint32_t n;
	int prompt;           /* these tokens are part of one multi-token llama_decode (a prompt of 2 or more tokens,
	                         maybe split over several calls): the attention products then take tinyBLAS's order,
	                         as cce_eval of 2 or more tokens; 0: a single decoded token (ggml_vec_dot_f16's order) */
	float *logits;        /* NULL, or n_vocab floats for the logits of the last of the n tokens */
};
struct cce_work;
/* Scratch for passes of up to max_tokens tokens in all (a bigger call is split) over contexts of up to max_ctx
 * positions, with per-thread attention scratch for libcck's pool as it is sized when the work is made.
 * -EOVERFLOW for a max_ctx too large, -ENOMEM. */
int cce_work_new(const struct cce_model *m, uint32_t max_tokens, uint32_t max_ctx, struct cce_work **ret);
void cce_work_free(struct cce_work *w);
/* Bytes the work holds. */
size_t cce_work_bytes(const struct cce_work *w);
/*
 * Evaluate nseq sequences. -EINVAL (nseq == 0, an id out of range, n == 0, a context of another model or past
 * max_ctx, the same context twice), -ENOSPC (a sequence does not fit its context: nothing is evaluated), -ECANCELED. On an
 * error after evaluation began, the contexts' positions are unchanged (the partial KV rows are dead).
 */
int cce_eval_batch(struct cce_work *w, struct cce_seq *seqs, size_t nseq, const _Atomic int *cancel);

/* ---- sampling (sampler.c) --------------------------------------------------------------------------------------- */

struct cce_sampling {
	float temp;           /* <= 0: greedy */
	int32_t top_k;        /* <= 0: off */
	float top_p;          /* >= 1: off */
	float min_p;          /* <= 0: off */
	float repeat_penalty; /* 1: off; applied to the last repeat_last_n tokens */
	int32_t repeat_last_n;
	uint64_t seed;
};
/* The defaults ccctl uses (llama.cpp's: temp 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat 1.0 / 64). */
void cce_sampling_defaults(struct cce_sampling *s);
/* -EINVAL (with err) for NaN or out-of-range values. */
int cce_sampling_check(const struct cce_sampling *s, char *err, size_t errlen);
struct cce_sampler;
int cce_sampler_new(const struct cce_sampling *s, uint32_t n_vocab, struct cce_sampler **ret);
void cce_sampler_free(struct cce_sampler *s);
/* Record a token (prompt or generated) for the repetition penalty. */
void cce_sampler_accept(struct cce_sampler *s, int32_t id);
/* Pick the next token from logits (which it may modify). Same seed + same logits sequence = same tokens. */
int32_t cce_sampler_sample(struct cce_sampler *s, float *logits);

/* ---- chat templates (chat.c) ----------------------------------------------------------------------------------- */

struct cce_msg {
	const char *role; /* "system", "user", "assistant" */
	const char *content;
};
/*
 * Render messages with the model's tokenizer.chat_template as llama.cpp's llama_chat_apply_template does for
 * the forms it recognizes (ChatML, Llama 2, Llama 3, ...), with the assistant prompt added. Returns 0 and a
 * malloc'd text, or -EOPNOTSUPP for a template we do not recognize (the caller then uses the raw text and
 * warns).
 */
int cce_chat_apply(const struct ccm_gguf *g, const struct cce_msg *msgs, size_t n, char **ret);

#endif /* CCE_ENGINE_H */
