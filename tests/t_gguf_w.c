/* SPDX-License-Identifier: MIT */
/* t_gguf_w.c: a GGUF v3 file written in memory (see t_gguf_w.h). */
#include "t_gguf_w.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"

static const unsigned char zero[32];

void t_put(struct t_buf *b, const void *s, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;

		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p) {
			fprintf(stderr, "t_put: out of memory\n");
			abort();
		}
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
}

void t_put_u32(struct t_buf *b, uint32_t v)
{
	t_put(b, &v, 4);
}

void t_put_u64(struct t_buf *b, uint64_t v)
{
	t_put(b, &v, 8);
}

void t_put_str(struct t_buf *b, const char *s)
{
	t_put_u64(b, strlen(s));
	t_put(b, s, strlen(s));
}

void t_kv_u32(struct t_gguf_w *w, const char *key, uint32_t v)
{
	t_put_str(&w->kv, key);
	t_put_u32(&w->kv, CCM_U32);
	t_put_u32(&w->kv, v);
	w->n_kv++;
}

void t_kv_f32(struct t_gguf_w *w, const char *key, float v)
{
	t_put_str(&w->kv, key);
	t_put_u32(&w->kv, CCM_F32);
	t_put(&w->kv, &v, 4);
	w->n_kv++;
}

void t_kv_str(struct t_gguf_w *w, const char *key, const char *v)
{
	t_put_str(&w->kv, key);
	t_put_u32(&w->kv, CCM_STRING);
	t_put_str(&w->kv, v);
	w->n_kv++;
}

void t_gguf_tensor_begin(struct t_gguf_w *w, const char *name, uint64_t ne0, uint64_t ne1, int type)
{
	t_put_str(&w->ti, name);
	t_put_u32(&w->ti, ne1 ? 2 : 1);
	t_put_u64(&w->ti, ne0);
	if (ne1)
		t_put_u64(&w->ti, ne1);
	t_put_u32(&w->ti, (uint32_t)type);
	t_put_u64(&w->ti, w->data.len);
}

void t_gguf_tensor_end(struct t_gguf_w *w)
{
	while (w->data.len % 32)
		t_put(&w->data, zero, 1);
	w->n_t++;
}

struct t_buf t_gguf_finish(struct t_gguf_w *w)
{
	struct t_buf f = {0};

	t_put(&f, "GGUF", 4);
	t_put_u32(&f, 3);
	t_put_u64(&f, w->n_t);
	t_put_u64(&f, w->n_kv);
	t_put(&f, w->kv.p, w->kv.len);
	t_put(&f, w->ti.p, w->ti.len);
	while (f.len % 32)
		t_put(&f, zero, 1);
	t_put(&f, w->data.p, w->data.len);
	free(w->kv.p);
	free(w->ti.p);
	free(w->data.p);
	memset(w, 0, sizeof(*w));
	return f;
}
