/* SPDX-License-Identifier: MIT */
/* model.c: binds a parsed GGUF (llama / qwen2) and its loaded tensor data into a cce_model, checking every tensor. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cck.h"
#include "ccg.h"
#include "engine_internal.h"
#include "gguf.h"

/* Bounds that keep every size product far from overflowing (real models are well inside them). */
#define MAX_DIM ((uint64_t)1 << 20)
#define MAX_LAYERS 4096
#define MAX_VOCAB ((uint64_t)1 << 24)

struct binder {
	const struct ccm_gguf *g;
	const unsigned char *data;
	const char *arch;
	char *err;
	size_t errlen;
};

static int fail(struct binder *b, int rc, const char *fmt, ...)
{
	va_list ap;

	if (b->err && b->errlen) {
		va_start(ap, fmt);
		vsnprintf(b->err, b->errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* <arch>.<key> as an unsigned integer; absent: def (or an error if required). */
static int get_u32(struct binder *b, const char *key, int required, uint32_t def, uint64_t max, uint32_t *ret)
{
	char full[128];
	uint64_t v;
	int rc;

	snprintf(full, sizeof(full), "%s.%s", b->arch, key);
	rc = ccm_gguf_get_u64(b->g, full, &v);
	if (rc == -ENOENT && !required) {
		*ret = def;
		return 0;
	}
	if (rc == -ENOENT)
		return fail(b, -EBADMSG, "metadata %s: missing", full);
	if (rc)
		return fail(b, -EBADMSG, "metadata %s: not a non-negative integer", full);
	if (v == 0 || v > max)
		return fail(b, -EBADMSG, "metadata %s = %" PRIu64 ": out of range (1..%" PRIu64 ")", full, v, max);
	*ret = (uint32_t)v;
	return 0;
}

static int get_float(struct binder *b, const char *key, int required, float def, float *ret)
{
	char full[128];
	double v;
	int rc;

	snprintf(full, sizeof(full), "%s.%s", b->arch, key);
	rc = ccm_gguf_get_f64(b->g, full, &v);
	if (rc == -ENOENT && !required) {
		*ret = def;
		return 0;
	}
	if (rc == -ENOENT)
		return fail(b, -EBADMSG, "metadata %s: missing", full);
	if (rc)
		return fail(b, -EBADMSG, "metadata %s: not a number", full);
	if (!(v >= 0.0 && v < 1e30))
		return fail(b, -EBADMSG, "metadata %s = %g: out of range", full, v);
	*ret = (float)v;
	return 0;
}

static void shape_str(const struct ccm_tensor *t, char *buf, size_t len)
{
	size_t o = 0;

	o += (size_t)snprintf(buf, len, "[");
	for (uint32_t d = 0; d < t->n_dims && o < len; d++)
		o += (size_t)snprintf(buf + o, len - o, "%s%" PRIu64, d ? ", " : "", t->ne[d]);
	if (o < len)
		snprintf(buf + o, len - o, "]");
}

static const char *type_str(int type)
{
	const char *n = cck_type_name(type);

	return n ? n : "unknown";
}

/* A tensor of the expected shape (ne[0] = n0, and ne[1] = n1 when n1 != 0) or NULL (rc 0) when absent and optional. */
static int find_shaped(struct binder *b, const char *name, uint64_t n0, uint64_t n1, int required,
                       const struct ccm_tensor **ret)
{
	const struct ccm_tensor *t = ccm_gguf_find_tensor(b->g, name);
	char have[96];
	uint32_t dims = n1 ? 2 : 1;

	*ret = NULL;
	if (!t) {
		if (required)
			return fail(b, -EBADMSG, "tensor %s: missing", name);
		return 0;
	}
	if (t->n_dims != dims || t->ne[0] != n0 || (n1 && t->ne[1] != n1)) {
		shape_str(t, have, sizeof(have));
		if (n1)
			return fail(b, -EBADMSG, "tensor %s: shape %s, expected [%" PRIu64 ", %" PRIu64 "]", name, have,
			            n0, n1);
		return fail(b, -EBADMSG, "tensor %s: shape %s, expected [%" PRIu64 "]", name, have, n0);
	}
	*ret = t;
	return 0;
}

/* A matrix of rows x cols (GGUF shape [cols, rows]); dot: its type must be one libcck can multiply by. */
static int bind_mat(struct binder *b, const char *name, uint64_t cols, uint64_t rows, int required, int dot,
                    struct cce_mat *m)
{
	const struct ccm_tensor *t;
	size_t rb;
	int rc;

	memset(m, 0, sizeof(*m));
	rc = find_shaped(b, name, cols, rows, required, &t);
	if (rc || !t)
		return rc;
	if (dot && !cck_type_has_dot(t->type))
		return fail(b, -EOPNOTSUPP, "tensor %s: type %s (%d) is not supported for matrix products", name,
		            type_str(t->type), t->type);
	if (cck_type_row_bytes(t->type, (size_t)cols, &rb) != 0)
		return fail(b, -EOPNOTSUPP, "tensor %s: type %s (%d) is not supported for rows of %" PRIu64, name,
		            type_str(t->type), t->type, cols);
	if (t->nbytes != (uint64_t)rb * rows)
		return fail(b, -EBADMSG, "tensor %s: %" PRIu64 " bytes, expected %" PRIu64, name, t->nbytes,
		            (uint64_t)rb * rows);
	m->data = b->data + t->offset;
	m->type = t->type;
	m->rows = (size_t)rows;
	m->cols = (size_t)cols;
	m->row_bytes = rb;
	return 0;
}

/* An f32 vector of n elements (norm weights, biases). */
static int bind_vec(struct binder *b, const char *name, uint64_t n, int required, const float **ret)
{
	const struct ccm_tensor *t;
	const unsigned char *p;
	int rc;

	*ret = NULL;
	rc = find_shaped(b, name, n, 0, required, &t);
	if (rc || !t)
		return rc;
	if (t->type != CCK_TYPE_F32)
		return fail(b, -EOPNOTSUPP, "tensor %s: type %s (%d), expected f32", name, type_str(t->type), t->type);
	p = b->data + t->offset;
	if ((uintptr_t)p % sizeof(float))
		return fail(b, -EBADMSG, "tensor %s: data not aligned for f32", name);
	*ret = (const float *)(const void *)p;
	return 0;
}

static int bind_layer(struct binder *b, const struct cce_hparams *hp, uint32_t q_dim, uint32_t kv_dim, uint32_t il,
                      struct cce_layer *L)
{
	int qwen2 = strcmp(hp->arch, "qwen2") == 0;
	char n[96];
	int rc = 0;

#define NAME(s) (snprintf(n, sizeof(n), "blk.%" PRIu32 ".%s", il, s), n)
	if ((rc = bind_vec(b, NAME("attn_norm.weight"), hp->n_embd, 1, &L->attn_norm)) ||
	    (rc = bind_mat(b, NAME("attn_q.weight"), hp->n_embd, q_dim, 1, 1, &L->wq)) ||
	    (rc = bind_mat(b, NAME("attn_k.weight"), hp->n_embd, kv_dim, 1, 1, &L->wk)) ||
	    (rc = bind_mat(b, NAME("attn_v.weight"), hp->n_embd, kv_dim, 1, 1, &L->wv)) ||
	    (rc = bind_vec(b, NAME("attn_q.bias"), q_dim, qwen2, &L->bq)) ||
	    (rc = bind_vec(b, NAME("attn_k.bias"), kv_dim, qwen2, &L->bk)) ||
	    (rc = bind_vec(b, NAME("attn_v.bias"), kv_dim, qwen2, &L->bv)) ||
	    (rc = bind_mat(b, NAME("attn_output.weight"), q_dim, hp->n_embd, 1, 1, &L->wo)) ||
	    (rc = bind_vec(b, NAME("attn_output.bias"), hp->n_embd, 0, &L->bo)) ||
	    (rc = bind_vec(b, NAME("ffn_norm.weight"), hp->n_embd, 1, &L->ffn_norm)) ||
	    (rc = bind_mat(b, NAME("ffn_gate.weight"), hp->n_embd, hp->n_ff, 1, 1, &L->w_gate)) ||
	    (rc = bind_mat(b, NAME("ffn_up.weight"), hp->n_embd, hp->n_ff, 1, 1, &L->w_up)) ||
	    (rc = bind_mat(b, NAME("ffn_down.weight"), hp->n_ff, hp->n_embd, 1, 1, &L->w_down)))
		return rc;
	if (!qwen2 && ((rc = bind_vec(b, NAME("ffn_gate.bias"), hp->n_ff, 0, &L->b_gate)) ||
	               (rc = bind_vec(b, NAME("ffn_up.bias"), hp->n_ff, 0, &L->b_up)) ||
	               (rc = bind_vec(b, NAME("ffn_down.bias"), hp->n_embd, 0, &L->b_down))))
		return rc;
#undef NAME
	return 0;
}

/* rope.scaling.type / factor: none and linear are supported (llama.cpp's default type is linear). */
static int read_rope_scaling(struct binder *b, struct cce_hparams *hp)
{
	char key[128];
	struct ccm_str s;
	float factor = 0.0f;
	int rc;

	snprintf(key, sizeof(key), "%s.rope.scaling.type", b->arch);
	rc = ccm_gguf_get_str(b->g, key, &s);
	if (rc && rc != -ENOENT)
		return fail(b, -EBADMSG, "metadata %s: not a string", key);
	if (rc == 0 && strcmp(s.s, "none") != 0 && strcmp(s.s, "linear") != 0)
		return fail(b, -EOPNOTSUPP, "metadata %s = \"%s\": only none and linear RoPE scaling are supported",
		            key, s.s);
	if (rc == 0 && strcmp(s.s, "none") == 0) {
		hp->rope_freq_scale = 1.0f;
		return 0;
	}
	snprintf(key, sizeof(key), "%s.rope.scaling.factor", b->arch);
	if (ccm_gguf_find(b->g, key))
		rc = get_float(b, "rope.scaling.factor", 0, 0.0f, &factor);
	else
		rc = get_float(b, "rope.scale_linear", 0, 0.0f, &factor);
	if (rc)
		return rc;
	hp->rope_freq_scale = factor == 0.0f ? 1.0f : 1.0f / factor;
	return 0;
}

static int read_hparams(struct binder *b, struct cce_hparams *hp)
{
	uint32_t key_len, val_len;
	int rc;

	if ((rc = get_u32(b, "context_length", 1, 0, UINT32_MAX, &hp->n_ctx_train)) ||
	    (rc = get_u32(b, "embedding_length", 1, 0, MAX_DIM, &hp->n_embd)) ||
	    (rc = get_u32(b, "block_count", 1, 0, MAX_LAYERS, &hp->n_layer)) ||
	    (rc = get_u32(b, "feed_forward_length", 1, 0, MAX_DIM, &hp->n_ff)) ||
	    (rc = get_u32(b, "attention.head_count", 1, 0, MAX_DIM, &hp->n_head)) ||
	    (rc = get_u32(b, "attention.head_count_kv", 0, hp->n_head, MAX_DIM, &hp->n_head_kv)))
		return rc;
	if (hp->n_embd % hp->n_head)
		return fail(b, -EBADMSG, "%s.embedding_length %" PRIu32 " is not a multiple of head_count %" PRIu32,
		            b->arch, hp->n_embd, hp->n_head);
	if (hp->n_head % hp->n_head_kv)
		return fail(b, -EBADMSG,
		            "%s.attention.head_count %" PRIu32 " is not a multiple of head_count_kv %" PRIu32, b->arch,
		            hp->n_head, hp->n_head_kv);
	hp->head_dim = hp->n_embd / hp->n_head;
	if ((rc = get_u32(b, "attention.key_length", 0, hp->head_dim, MAX_DIM, &key_len)) ||
	    (rc = get_u32(b, "attention.value_length", 0, hp->head_dim, MAX_DIM, &val_len)))
		return rc;
	if (key_len != hp->head_dim || val_len != hp->head_dim)
		return fail(b, -EOPNOTSUPP,
		            "%s.attention.key_length/value_length %" PRIu32 "/%" PRIu32
		            ": only n_embd / head_count (%" PRIu32 ") is supported",
		            b->arch, key_len, val_len, hp->head_dim);
	if ((rc = get_u32(b, "rope.dimension_count", 0, hp->head_dim, MAX_DIM, &hp->n_rot)))
		return rc;
	if (hp->n_rot != hp->head_dim || hp->head_dim % 2)
		return fail(b, -EOPNOTSUPP,
		            "%s.rope.dimension_count %" PRIu32 ": only the head size (%" PRIu32 ", even) is supported",
		            b->arch, hp->n_rot, hp->head_dim);
	if ((uint64_t)hp->head_dim * hp->n_head > MAX_DIM)
		return fail(b, -EBADMSG, "%s: attention width out of range", b->arch);
	if ((rc = get_float(b, "attention.layer_norm_rms_epsilon", 1, 0.0f, &hp->rms_eps)) ||
	    (rc = get_float(b, "rope.freq_base", 0, 10000.0f, &hp->rope_freq_base)))
		return rc;
	if (!(hp->rope_freq_base > 0.0f))
		return fail(b, -EBADMSG, "%s.rope.freq_base must be > 0", b->arch);
	if ((rc = read_rope_scaling(b, hp)))
		return rc;
	hp->rope_neox = strcmp(hp->arch, "qwen2") == 0;
	return 0;
}

int cce_model_init(const struct ccm_gguf *g, const void *data, struct cce_model **ret, char *err, size_t errlen)
{
	struct binder b = {.g = g, .data = data, .err = err, .errlen = errlen};
	const struct ccm_tensor *te;
	struct cce_model *m;
	struct ccm_str arch;
	struct cce_hparams *hp;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!ret)
		return -EINVAL;
	*ret = NULL;
	if (!g || !data)
		return fail(&b, -EINVAL, "no model file or tensor data");
	rc = ccm_gguf_get_str(g, "general.architecture", &arch);
	if (rc == -ENOENT)
		return fail(&b, -EBADMSG, "metadata general.architecture: missing");
	if (rc)
		return fail(&b, -EBADMSG, "metadata general.architecture: not a string");
	if (strcmp(arch.s, "llama") != 0 && strcmp(arch.s, "qwen2") != 0)
		return fail(&b, -EOPNOTSUPP, "architecture \"%.64s\" is not supported (llama and qwen2 are)", arch.s);
	m = calloc(1, sizeof(*m));
	if (!m)
		return fail(&b, -ENOMEM, "out of memory");
	hp = &m->hp;
	snprintf(hp->arch, sizeof(hp->arch), "%s", arch.s);
	b.arch = hp->arch;
	rc = read_hparams(&b, hp);
	if (rc)
		goto out;
	m->q_dim = hp->n_head * hp->head_dim;
	m->kv_dim = hp->n_head_kv * hp->head_dim;

	te = ccm_gguf_find_tensor(g, "token_embd.weight");
	if (!te) {
		rc = fail(&b, -EBADMSG, "tensor token_embd.weight: missing");
		goto out;
	}
	if (te->n_dims != 2 || te->ne[1] == 0 || te->ne[1] > MAX_VOCAB) {
		char have[96];

		shape_str(te, have, sizeof(have));
		rc = fail(&b, -EBADMSG, "tensor token_embd.weight: shape %s, expected [%" PRIu32 ", n_vocab]", have,
		          hp->n_embd);
		goto out;
	}
	hp->n_vocab = (uint32_t)te->ne[1];
	if ((rc = bind_mat(&b, "token_embd.weight", hp->n_embd, hp->n_vocab, 1, 0, &m->tok_embd)) ||
	    (rc = bind_vec(&b, "output_norm.weight", hp->n_embd, 1, &m->output_norm)) ||
	    (rc = bind_mat(&b, "output.weight", hp->n_embd, hp->n_vocab, 0, 1, &m->output)) ||
	    (rc = bind_vec(&b, "output.bias", hp->n_vocab, 0, &m->output_b)) ||
	    (rc = bind_vec(&b, "rope_freqs.weight", hp->n_rot / 2, 0, &m->rope_freqs)))
		goto out;
	if (!m->output.data) {
		hp->tied_output = 1;
		if ((rc = bind_mat(&b, "token_embd.weight", hp->n_embd, hp->n_vocab, 1, 1, &m->output)))
			goto out;
	}
	m->layers = calloc(hp->n_layer, sizeof(*m->layers));
	if (!m->layers) {
		rc = fail(&b, -ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t il = 0; il < hp->n_layer; il++)
		if ((rc = bind_layer(&b, hp, m->q_dim, m->kv_dim, il, &m->layers[il])))
			goto out;
	*ret = m;
	return 0;
out:
	cce_model_free(m);
	return rc;
}

/* ---- offloading to the OpenCL device ----------------------------------------------------------------------------- */

#define LAYER_MATS 7

static void layer_mats(struct cce_layer *L, struct cce_mat *v[LAYER_MATS])
{
	v[0] = &L->wq;
	v[1] = &L->wk;
	v[2] = &L->wv;
	v[3] = &L->wo;
	v[4] = &L->w_gate;
	v[5] = &L->w_up;
	v[6] = &L->w_down;
}

static const char *const layer_mat_names[LAYER_MATS] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                                        "ffn_gate", "ffn_up", "ffn_down"};

static void mat_unload(struct cce_mat *w)
{
	ccg_mat_free(w->dev);
	w->dev = NULL;
}

static void unload_all(struct cce_model *m)
{
	struct cce_mat *v[LAYER_MATS];

	for (uint32_t il = 0; m->layers && il < m->hp.n_layer; il++) {
		layer_mats(&m->layers[il], v);
		for (int k = 0; k < LAYER_MATS; k++)
			mat_unload(v[k]);
	}
	mat_unload(&m->output);
	m->n_offloaded = 0;
}

/* A packed matrix back to row-major, in place (the device takes rows). 0 or -ENOMEM. */
static int mat_unpack(struct cce_mat *w)
{
	const int base = w->type & ~CCK_TYPE_PACK16;
	const size_t bytes = w->rows * w->row_bytes;
	void *tmp;
	int rc;

	if (!(w->type & CCK_TYPE_PACK16))
		return 0;
	tmp = malloc(bytes);
	if (!tmp)
		return -ENOMEM;
	rc = cck_qunpack(base, w->data, tmp, w->rows, w->cols);
	if (rc == 0) {
		memcpy((void *)(uintptr_t)w->data, tmp, bytes);
		w->type = base;
	}
	free(tmp);
	return rc;
}

/* token_embd, when it is the output matrix's tensor (tied), has its layout: packed or unpacked with it. */
static void tied_type(struct cce_model *m)
{
	if (m->tok_embd.data == m->output.data)
		m->tok_embd.type = m->output.type;
}

/* Upload w where the device multiplies its type: 1 (uploaded), 0 (it stays on the CPU), or -errno (err says). */
static int mat_upload(struct cce_mat *w, const char *name, char *err, size_t errlen)
{
	int rc;

	if (!ccg_type_supported(w->type & ~CCK_TYPE_PACK16))
		return 0;
	if ((rc = mat_unpack(w))) {
		if (err && errlen)
			snprintf(err, errlen, "%s: unpacking for the device: %s", name, strerror(-rc));
		return rc;
	}
	rc = ccg_mat_new(w->type, w->data, w->row_bytes, w->rows, w->cols, &w->dev);
	if (rc) {
		if (err && errlen)
			snprintf(err, errlen, "%s (%s, %zu x %zu) to the device: %s", name, type_str(w->type), w->rows,
			         w->cols, strerror(-rc));
		return rc;
	}
	return 1;
}

int cce_model_offload(struct cce_model *m, int n_layers, char *err, size_t errlen)
{
	struct cce_mat *v[LAYER_MATS];
	uint32_t n, il;
	char name[96];
	int rc = 0, count = 0, any;

	if (err && errlen)
		err[0] = '\0';
	if (!m)
		return -EINVAL;
	unload_all(m);
	if (n_layers == 0)
		return 0;
	if (ccg_init() != 0) {
		if (err && errlen)
			snprintf(err, errlen, "%s", ccg_why());
		return -ENODEV;
	}
	n = n_layers < 0 || (uint32_t)n_layers > m->hp.n_layer ? m->hp.n_layer : (uint32_t)n_layers;
	for (il = m->hp.n_layer - n; il < m->hp.n_layer; il++) {
		layer_mats(&m->layers[il], v);
		any = 0;
		for (int k = 0; k < LAYER_MATS; k++) {
			snprintf(name, sizeof(name), "blk.%" PRIu32 ".%s", il, layer_mat_names[k]);
			if ((rc = mat_upload(v[k], name, err, errlen)) < 0)
				goto fail;
			any |= rc;
		}
		count += any;
	}
	if (n_layers < 0 || (uint32_t)n_layers > m->hp.n_layer) { /* llama.cpp's -ngl past n_layer: the output too */
		rc = mat_upload(&m->output, "output", err, errlen);
		tied_type(m);
		if (rc < 0)
			goto fail;
	}
	m->n_offloaded = (uint32_t)count;
	return count;
fail:
	unload_all(m);
	return rc;
}

int cce_model_pack(struct cce_model *m)
{
	struct cce_mat *v[LAYER_MATS];
	int n = 0, rc;

	if (!m)
		return -EINVAL;
	for (uint32_t il = 0; il <= m->hp.n_layer; il++) {
		int nv = LAYER_MATS;

		if (il < m->hp.n_layer)
			layer_mats(&m->layers[il], v);
		else { /* then the output matrix (token_embd when tied: its rows are then read out of the groups) */
			v[0] = &m->output;
			nv = 1;
		}
		for (int k = 0; k < nv; k++) {
			struct cce_mat *w = v[k];

			if (!w->data || w->dev || (w->type & CCK_TYPE_PACK16) || !cck_qpack_supported(w->type) ||
			    w->rows % CCK_PACK_ROWS)
				continue;
			rc = cck_qpack(w->type, (void *)(uintptr_t)w->data, w->rows, w->cols);
			if (rc)
				return rc;
			w->type |= CCK_TYPE_PACK16;
			n++;
		}
	}
	tied_type(m);
	return n;
}

int cce_model_weight_type(const struct cce_model *m, const void *p, int type)
{
	struct cce_mat *v[LAYER_MATS];

	for (uint32_t il = 0; m && p && il < m->hp.n_layer; il++) {
		layer_mats(&m->layers[il], v);
		for (int k = 0; k < LAYER_MATS; k++)
			if (v[k]->data == p)
				return v[k]->type;
	}
	if (m && p && m->output.data == p)
		return m->output.type;
	return type;
}

int cce_model_offloaded(const struct cce_model *m)
{
	return m ? (int)m->n_offloaded : 0;
}

size_t cce_model_device_bytes(const struct cce_model *m)
{
	struct cce_mat *v[LAYER_MATS];
	size_t bytes;

	if (!m)
		return 0;
	bytes = ccg_mat_bytes(m->output.dev);
	for (uint32_t il = 0; m->layers && il < m->hp.n_layer; il++) {
		layer_mats(&m->layers[il], v);
		for (int k = 0; k < LAYER_MATS; k++)
			bytes += ccg_mat_bytes(v[k]->dev);
	}
	return bytes;
}

void cce_model_free(struct cce_model *m)
{
	if (!m)
		return;
	unload_all(m);
	free(m->layers);
	free(m);
}

const struct cce_hparams *cce_model_hparams(const struct cce_model *m)
{
	return m ? &m->hp : NULL;
}
