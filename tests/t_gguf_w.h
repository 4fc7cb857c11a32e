/* SPDX-License-Identifier: MIT */
/* t_gguf_w.h: a GGUF v3 file written in memory, for tests that make small models of their own (test_engine's tiny
 * model with one thing wrong at a time, test_engine_gpu's random k-quant model). Out of memory aborts. */
#ifndef T_GGUF_W_H
#define T_GGUF_W_H

#include <stddef.h>
#include <stdint.h>

struct t_buf {
	unsigned char *p;
	size_t len, cap;
};
void t_put(struct t_buf *b, const void *s, size_t n);
void t_put_u32(struct t_buf *b, uint32_t v);
void t_put_u64(struct t_buf *b, uint64_t v);
void t_put_str(struct t_buf *b, const char *s); /* GGUF string: u64 length, bytes */

/* Metadata, tensor infos and data, kept apart until t_gguf_finish puts them in file order. */
struct t_gguf_w {
	struct t_buf kv, ti, data;
	uint64_t n_kv, n_t;
};
void t_kv_u32(struct t_gguf_w *w, const char *key, uint32_t v);
void t_kv_f32(struct t_gguf_w *w, const char *key, float v);
void t_kv_str(struct t_gguf_w *w, const char *key, const char *v);
/* The info of a tensor of ne0 x ne1 elements (ne1 0: 1-D) of type, its data at the end of w->data: the caller then
 * appends that data (rows of cck_type_row_bytes) and calls t_gguf_tensor_end (32-byte alignment). */
void t_gguf_tensor_begin(struct t_gguf_w *w, const char *name, uint64_t ne0, uint64_t ne1, int type);
void t_gguf_tensor_end(struct t_gguf_w *w);
/* The whole file (header, metadata, tensor infos, padding, data); w is emptied. Free the result's p. */
struct t_buf t_gguf_finish(struct t_gguf_w *w);

#endif /* T_GGUF_W_H */
