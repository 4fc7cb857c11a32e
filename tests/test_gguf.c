/* SPDX-License-Identifier: MIT */
/* test_gguf.c: the GGUF parser on the vendored models (and SmolLM2), on re-serialized and corrupted variants. */
#define _GNU_SOURCE 1
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cck.h"
#include "gguf.h"

/* ---- models -------------------------------------------------------------------------------------------------- */

static char models_dir[PATH_MAX];

static int readable(const char *path)
{
	return access(path, R_OK) == 0;
}

/* $CC_MODELS_DIR, else $T_SRCDIR/../shared/models, else /work/shared/models (as tests/t_ccd.c looks). */
static int find_models(void)
{
	const char *env = getenv("CC_MODELS_DIR"), *src = getenv("T_SRCDIR");
	char probe[PATH_MAX + 64];

	if (env && *env)
		snprintf(models_dir, sizeof(models_dir), "%s", env);
	else if (src && *src &&
	         (snprintf(probe, sizeof(probe), "%s/../shared/models/stories260K.gguf", src), readable(probe)))
		snprintf(models_dir, sizeof(models_dir), "%s/../shared/models", src);
	else
		snprintf(models_dir, sizeof(models_dir), "/work/shared/models");
	snprintf(probe, sizeof(probe), "%s/stories260K.gguf", models_dir);
	if (!readable(probe)) {
		fprintf(stderr, "test_gguf: skip: test models not found: no %s (set CC_MODELS_DIR)\n", probe);
		return -1;
	}
	return 0;
}

static const char *model(const char *rel)
{
	static char buf[8][PATH_MAX + 64];
	static int next;
	char *p = buf[next++ % 8];

	snprintf(p, PATH_MAX + 64, "%s/%s", models_dir, rel);
	return p;
}

static const char *smollm2(void)
{
	static char buf[PATH_MAX];
	const char *env = getenv("CC_SMOLLM2"), *home = getenv("HOME");

	if (env && *env)
		snprintf(buf, sizeof(buf), "%s", env);
	else
		snprintf(buf, sizeof(buf), "%s/.cache/cc/models/SmolLM2-135M-Instruct.Q4_1.gguf",
		         home ? home : "/root");
	if (!readable(buf)) {
		fprintf(stderr,
		        "SmolLM2 not found at %s (scripts/install-deps fetches it; or set CC_SMOLLM2): skipped\n", buf);
		return NULL;
	}
	return buf;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *b;
	int fd = open(path, O_RDONLY);
	size_t got = 0;

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	b = malloc((size_t)st.st_size + 1);
	assert_non_null(b);
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, b + got, (size_t)st.st_size - got);
		assert_true(r > 0);
		got += (size_t)r;
	}
	close(fd);
	*len = got;
	return b;
}

/* ---- a GGUF writer (to re-serialize a parsed file, changed) --------------------------------------------------- */

struct wb {
	uint8_t *b;
	size_t len, cap;
};

static void wb_put(struct wb *w, const void *p, size_t n)
{
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		while (cap < w->len + n)
			cap *= 2;
		w->b = realloc(w->b, cap);
		assert_non_null(w->b);
		w->cap = cap;
	}
	if (n)
		memcpy(w->b + w->len, p, n);
	w->len += n;
}

static void wb_le(struct wb *w, uint64_t v, int n)
{
	uint8_t b[8];
	int i;

	for (i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	wb_put(w, b, (size_t)n);
}

static void wb_str(struct wb *w, const char *s, size_t len)
{
	wb_le(w, len, 8);
	wb_put(w, s, len);
}

static const int vsize[CCM_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

static void wb_scalar(struct wb *w, enum ccm_vtype t, const struct ccm_kv *kv)
{
	union {
		float f;
		uint32_t u;
	} f32;
	union {
		double f;
		uint64_t u;
	} f64;

	switch (t) {
	case CCM_F32:
		f32.f = (float)kv->v.f;
		wb_le(w, f32.u, 4);
		break;
	case CCM_F64:
		f64.f = kv->v.f;
		wb_le(w, f64.u, 8);
		break;
	case CCM_BOOL:
		wb_le(w, (uint64_t)kv->v.b, 1);
		break;
	case CCM_I8:
	case CCM_I16:
	case CCM_I32:
	case CCM_I64:
		wb_le(w, (uint64_t)kv->v.i, vsize[t]);
		break;
	default:
		wb_le(w, kv->v.u, vsize[t]);
		break;
	}
}

static void wb_kv(struct wb *w, const struct ccm_kv *kv)
{
	uint64_t i;

	wb_str(w, kv->key.s, kv->key.len);
	wb_le(w, (uint64_t)kv->type, 4);
	if (kv->type == CCM_STRING) {
		wb_str(w, kv->v.str.s, kv->v.str.len);
	} else if (kv->type == CCM_ARRAY) {
		wb_le(w, (uint64_t)kv->v.arr.type, 4);
		wb_le(w, kv->v.arr.n, 8);
		if (kv->v.arr.type == CCM_STRING) {
			const struct ccm_str *a = kv->v.arr.data;
			for (i = 0; i < kv->v.arr.n; i++)
				wb_str(w, a[i].s, a[i].len);
		} else {
			wb_put(w, kv->v.arr.data, kv->v.arr.n * (size_t)vsize[kv->v.arr.type]); /* little-endian host */
		}
	} else {
		wb_scalar(w, kv->type, kv);
	}
}

/* A model to write: kvs, then raw already-encoded kvs, tensors whose data comes from tdata[i] (zeros if NULL),
 * laid out in order at multiples of align (the way ggml writes them). */
struct tmodel {
	struct ccm_kv kvs[128];
	size_t nkv;
	struct wb raw; /* encoded extra kvs */
	size_t nraw;
	struct ccm_tensor ts[512];
	const uint8_t *tdata[512];
	size_t nt;
	uint64_t align;
	uint32_t version;
	uint64_t *tinfo_off; /* filled: file offset of each tensor info */
	size_t header_len;   /* filled: bytes before the padding */
};

static void tm_from(struct tmodel *m, const struct ccm_gguf *g, const uint8_t *file)
{
	size_t i;

	memset(m, 0, sizeof(*m));
	m->version = ccm_gguf_version(g);
	m->align = ccm_gguf_alignment(g);
	m->nkv = ccm_gguf_kv_count(g);
	assert_true(m->nkv <= 128);
	for (i = 0; i < m->nkv; i++)
		m->kvs[i] = *ccm_gguf_kv(g, i);
	m->nt = ccm_gguf_tensor_count(g);
	assert_true(m->nt <= 512);
	for (i = 0; i < m->nt; i++) {
		m->ts[i] = *ccm_gguf_tensor(g, i);
		m->tdata[i] = file ? file + ccm_gguf_data_offset(g) + m->ts[i].offset : NULL;
	}
}

static void tm_add_raw(struct tmodel *m, const char *key, uint32_t type, const void *payload, size_t n)
{
	wb_str(&m->raw, key, strlen(key));
	wb_le(&m->raw, type, 4);
	wb_put(&m->raw, payload, n);
	m->nraw++;
}

static void tm_add_u32(struct tmodel *m, const char *key, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	tm_add_raw(m, key, CCM_U32, b, 4);
}

static void tm_add_kv(struct tmodel *m, struct ccm_kv kv)
{
	assert_true(m->nkv < 128);
	m->kvs[m->nkv++] = kv;
}

static struct ccm_str S(const char *s) {
	struct ccm_str r = {s, strlen(s)};
	return r;
}

static struct wb
tm_write(struct tmodel *m)
{
	struct wb w = {0};
	uint64_t a = m->align ? m->align : 32, off = 0, data_start;
	size_t i, d;
	static uint64_t info_off[512];

	wb_put(&w, "GGUF", 4);
	wb_le(&w, m->version ? m->version : 3, 4);
	wb_le(&w, m->nt, 8);
	wb_le(&w, m->nkv + m->nraw, 8);
	for (i = 0; i < m->nkv; i++)
		wb_kv(&w, &m->kvs[i]);
	wb_put(&w, m->raw.b, m->raw.len);
	for (i = 0; i < m->nt; i++) {
		struct ccm_tensor *t = &m->ts[i];
		off = (off + a - 1) / a * a;
		t->offset = off;
		off += t->nbytes;
		info_off[i] = w.len;
		wb_str(&w, t->name.s, t->name.len);
		wb_le(&w, t->n_dims, 4);
		for (d = 0; d < t->n_dims; d++)
			wb_le(&w, t->ne[d], 8);
		wb_le(&w, (uint64_t)t->type, 4);
		wb_le(&w, t->offset, 8);
	}
	m->tinfo_off = info_off;
	m->header_len = w.len;
	data_start = m->nt ? (w.len + a - 1) / a * a : w.len; /* no tensors: no padding */
	while (w.len < data_start)
		wb_le(&w, 0, 1);
	for (i = 0; i < m->nt; i++) {
		const struct ccm_tensor *t = &m->ts[i];
		while (w.len < data_start + t->offset)
			wb_le(&w, 0, 1);
		if (m->tdata[i]) {
			wb_put(&w, m->tdata[i], t->nbytes);
		} else {
			for (d = 0; d < t->nbytes; d++)
				wb_le(&w, 0, 1);
		}
	}
	/* ggml pads the last tensor too */
	while (m->nt && w.len % a)
		wb_le(&w, 0, 1);
	free(m->raw.b);
	m->raw.b = NULL;
	return w;
}

/* ---- checks ---------------------------------------------------------------------------------------------------- */

static void put_le(uint8_t *p, uint64_t v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The same bytes through ccm_gguf_open_fd (a memfd). */
static int parse_fd(const uint8_t *b, size_t len, struct ccm_gguf **g, char *err, size_t errlen)
{
	int fd = memfd_create("gguf", MFD_CLOEXEC), rc;
	size_t put = 0;

	assert_true(fd >= 0);
	while (put < len) {
		ssize_t r = write(fd, b + put, len - put);
		assert_true(r > 0);
		put += (size_t)r;
	}
	rc = ccm_gguf_open_fd(fd, g, err, errlen);
	close(fd);
	return rc;
}

static int n_failures_checked;

/* b must be refused, from memory and from a file alike, with a message holding `want`. */
static void expect_fail(const uint8_t *b, size_t len, const char *want)
{
	struct ccm_gguf *g = (struct ccm_gguf *)1;
	char err[512], err2[512];
	int rc;

	err[0] = 'x';
	err[1] = 0;
	rc = ccm_gguf_parse(b, len, &g, err, sizeof(err));
	if (rc != -EBADMSG || !strstr(err, want))
		fail_msg("expected -EBADMSG with '%s', got %d: '%s'", want, rc, err);
	assert_null(g);
	assert_null(strchr(err, '\n'));
	rc = parse_fd(b, len, &g, err2, sizeof(err2));
	assert_int_equal(rc, -EBADMSG);
	assert_null(g);
	assert_string_equal(err, err2);
	n_failures_checked++;
	if (getenv("T_VERBOSE"))
		printf("    refused: %s\n", err);
}

static void expect_fail_w(struct wb *w, const char *want)
{
	expect_fail(w->b, w->len, want);
	free(w->b);
	w->b = NULL;
}

static size_t count_type(const struct ccm_gguf *g, int type)
{
	size_t i, n = 0;

	for (i = 0; i < ccm_gguf_tensor_count(g); i++)
		n += ccm_gguf_tensor(g, i)->type == type;
	return n;
}

static struct ccm_gguf *open_ok(const char *path)
{
	struct ccm_gguf *g = NULL;
	char err[512] = "";
	int rc = ccm_gguf_open(path, &g, err, sizeof(err));

	if (rc)
		fail_msg("%s: %d %s", path, rc, err);
	return g;
}

static void check_u64(const struct ccm_gguf *g, const char *key, uint64_t want)
{
	uint64_t v = 0;

	if (ccm_gguf_get_u64(g, key, &v))
		fail_msg("%s: missing or not an integer", key);
	assert_int_equal(v, want);
}

static void check_str(const struct ccm_gguf *g, const char *key, const char *want)
{
	struct ccm_str s;

	assert_int_equal(ccm_gguf_get_str(g, key, &s), 0);
	assert_int_equal(s.len, strlen(want));
	assert_string_equal(s.s, want);
}

static const struct ccm_str *arr_str(const struct ccm_gguf *g, const char *key, uint64_t n)
{
	const struct ccm_kv *kv;

	assert_int_equal(ccm_gguf_get_array(g, key, CCM_STRING, &kv), 0);
	assert_int_equal(kv->v.arr.n, n);
	return kv->v.arr.data;
}

static void check_tensor(const struct ccm_gguf *g, const char *name, int type, uint32_t n_dims, uint64_t ne0,
                         uint64_t ne1, uint64_t offset, uint64_t nbytes)
{
	const struct ccm_tensor *t = ccm_gguf_find_tensor(g, name);

	assert_non_null(t);
	assert_string_equal(t->name.s, name);
	assert_int_equal(t->type, type);
	assert_int_equal(t->n_dims, n_dims);
	assert_int_equal(t->ne[0], ne0);
	assert_int_equal(t->ne[1], ne1);
	assert_int_equal(t->ne[2], 1);
	assert_int_equal(t->ne[3], 1);
	assert_int_equal(t->offset, offset);
	assert_int_equal(t->nbytes, nbytes);
}

/* What every stories260K variant shares (values read once with gguf.GGUFReader). */
static void check_stories_common(const struct ccm_gguf *g)
{
	const struct ccm_str *tok;
	const struct ccm_kv *kv;
	double eps;

	assert_int_equal(ccm_gguf_version(g), 3);
	assert_int_equal(ccm_gguf_alignment(g), 32);
	assert_int_equal(ccm_gguf_tensor_count(g), 48);
	check_str(g, "general.architecture", "llama");
	check_str(g, "general.name", "llama");
	check_str(g, "tokenizer.ggml.model", "llama");
	check_u64(g, "llama.context_length", 2048);
	check_u64(g, "llama.embedding_length", 64);
	check_u64(g, "llama.feed_forward_length", 172);
	check_u64(g, "llama.attention.head_count", 8);
	check_u64(g, "llama.attention.head_count_kv", 4);
	check_u64(g, "llama.block_count", 5);
	check_u64(g, "llama.rope.dimension_count", 8);
	check_u64(g, "tokenizer.ggml.unknown_token_id", 0);
	check_u64(g, "tokenizer.ggml.bos_token_id", 1);
	check_u64(g, "tokenizer.ggml.eos_token_id", 2);
	check_u64(g, "tokenizer.ggml.seperator_token_id", 4294967295u);
	check_u64(g, "tokenizer.ggml.padding_token_id", 4294967295u);
	assert_int_equal(ccm_gguf_get_f64(g, "llama.attention.layer_norm_rms_epsilon", &eps), 0);
	assert_true(eps == (double)1e-5f);
	tok = arr_str(g, "tokenizer.ggml.tokens", 512);
	assert_string_equal(tok[0].s, "<unk>");
	assert_string_equal(tok[1].s, "<s>");
	assert_string_equal(tok[2].s, "</s>");
	assert_string_equal(tok[3].s, "<0x00>");
	assert_string_equal(tok[300].s, "\xe2\x96\x81ha");
	assert_string_equal(tok[511].s, "\xe2\x80\x8a");
	assert_int_equal(ccm_gguf_get_array(g, "tokenizer.ggml.scores", CCM_F32, &kv), 0);
	assert_int_equal(kv->v.arr.n, 512);
	assert_true(((const float *)kv->v.arr.data)[300] == -41.0f);
	assert_true(((const float *)kv->v.arr.data)[511] == -252.0f);
	assert_int_equal(ccm_gguf_get_array(g, "tokenizer.ggml.token_type", CCM_I32, &kv), 0);
	assert_int_equal(((const int32_t *)kv->v.arr.data)[0], 2);
	assert_int_equal(((const int32_t *)kv->v.arr.data)[1], 3);
	assert_int_equal(((const int32_t *)kv->v.arr.data)[3], 6);
	assert_int_equal(((const int32_t *)kv->v.arr.data)[300], 1);
	check_tensor(g, "output_norm.weight", CCK_TYPE_F32, 1, 64, 1,
	             ccm_gguf_find_tensor(g, "output_norm.weight")->offset, 256);
}

/* ---- the vendored models ------------------------------------------------------------------------------------- */

static void test_stories260k(void **state)
{
	struct ccm_gguf *g = open_ok(model("stories260K.gguf"));

	check_stories_common(g);
	assert_int_equal(ccm_gguf_kv_count(g), 19);
	assert_int_equal(count_type(g, CCK_TYPE_F32), 48);
	assert_int_equal(ccm_gguf_data_offset(g), 14176);
	assert_int_equal(ccm_gguf_data_size(g), 1171200);
	assert_int_equal(ccm_gguf_file_size(g), 1185376);
	assert_null(ccm_gguf_find(g, "general.file_type"));
	assert_string_equal(ccm_gguf_kv(g, 0)->key.s, "tokenizer.ggml.tokens");
	assert_string_equal(ccm_gguf_kv(g, 18)->key.s, "llama.attention.layer_norm_rms_epsilon");
	assert_null(ccm_gguf_kv(g, 19));
	check_tensor(g, "token_embd.weight", CCK_TYPE_F32, 2, 64, 512, 0, 131072);
	check_tensor(g, "output_norm.weight", CCK_TYPE_F32, 1, 64, 1, 131072, 256);
	check_tensor(g, "output.weight", CCK_TYPE_F32, 2, 64, 512, 131328, 131072);
	check_tensor(g, "blk.4.ffn_norm.weight", CCK_TYPE_F32, 1, 64, 1, 1170944, 256);
	check_tensor(g, "blk.0.ffn_down.weight", CCK_TYPE_F32, 2, 172, 64,
	             ccm_gguf_find_tensor(g, "blk.0.ffn_down.weight")->offset, 172 * 64 * 4);
	assert_string_equal(ccm_gguf_tensor(g, 0)->name.s, "token_embd.weight");
	assert_null(ccm_gguf_tensor(g, 48));
	assert_null(ccm_gguf_find_tensor(g, "blk.5.ffn_norm.weight"));
	ccm_gguf_free(g);
}

static void test_stories260k_derived(void **state)
{
	struct ccm_gguf *g;

	g = open_ok(model("derived/stories260K-F16.gguf"));
	check_stories_common(g);
	assert_int_equal(ccm_gguf_kv_count(g), 21);
	assert_int_equal(count_type(g, CCK_TYPE_F16), 37);
	assert_int_equal(count_type(g, CCK_TYPE_F32), 11);
	assert_int_equal(ccm_gguf_data_offset(g), 14240);
	assert_int_equal(ccm_gguf_data_size(g), 587008);
	check_u64(g, "general.file_type", 1);
	check_u64(g, "general.quantization_version", 2);
	check_tensor(g, "output.weight", CCK_TYPE_F16, 2, 64, 512, 0, 65536);
	check_tensor(g, "blk.4.ffn_up.weight", CCK_TYPE_F16, 2, 64, 172, 564992, 22016);
	ccm_gguf_free(g);

	g = open_ok(model("derived/stories260K-Q8_0.gguf"));
	check_stories_common(g);
	assert_int_equal(ccm_gguf_kv_count(g), 21);
	assert_int_equal(count_type(g, CCK_TYPE_Q8_0), 32);
	assert_int_equal(count_type(g, CCK_TYPE_F16), 5);
	assert_int_equal(count_type(g, CCK_TYPE_F32), 11);
	assert_int_equal(ccm_gguf_data_offset(g), 14240);
	assert_int_equal(ccm_gguf_data_size(g), 364912);
	check_tensor(g, "output.weight", CCK_TYPE_Q8_0, 2, 64, 512, 0, 34816);
	check_tensor(g, "blk.4.ffn_up.weight", CCK_TYPE_Q8_0, 2, 64, 172, 353216, 11696);
	check_tensor(g, "blk.2.ffn_down.weight", CCK_TYPE_F16, 2, 172, 64,
	             ccm_gguf_find_tensor(g, "blk.2.ffn_down.weight")->offset, 172 * 64 * 2);
	ccm_gguf_free(g);

	g = open_ok(model("derived/stories260K-Q4_0.gguf"));
	check_stories_common(g);
	assert_int_equal(ccm_gguf_kv_count(g), 21);
	assert_int_equal(count_type(g, CCK_TYPE_Q4_0), 31);
	assert_int_equal(count_type(g, CCK_TYPE_Q8_0), 1);
	assert_int_equal(count_type(g, CCK_TYPE_F16), 5);
	assert_int_equal(count_type(g, CCK_TYPE_F32), 11);
	assert_int_equal(ccm_gguf_data_offset(g), 14240);
	assert_int_equal(ccm_gguf_data_size(g), 262768);
	assert_int_equal(ccm_gguf_file_size(g), 277024);
	check_u64(g, "general.file_type", 2);
	check_tensor(g, "output.weight", CCK_TYPE_Q8_0, 2, 64, 512, 0, 34816);
	check_tensor(g, "output_norm.weight", CCK_TYPE_F32, 1, 64, 1, 34816, 256);
	check_tensor(g, "token_embd.weight", CCK_TYPE_Q4_0, 2, 64, 512, 35072, 18432);
	check_tensor(g, "blk.4.ffn_up.weight", CCK_TYPE_Q4_0, 2, 64, 172, 256576, 6192);
	ccm_gguf_free(g);
}

static void test_llama2_tiny_random(void **state)
{
	struct ccm_gguf *g = open_ok(model("llama-2-tiny-random.gguf"));
	const struct ccm_str *tok;
	const struct ccm_kv *kv;

	assert_int_equal(ccm_gguf_version(g), 3);
	assert_int_equal(ccm_gguf_kv_count(g), 18);
	assert_int_equal(ccm_gguf_tensor_count(g), 12);
	assert_int_equal(count_type(g, CCK_TYPE_F16), 9);
	assert_int_equal(count_type(g, CCK_TYPE_F32), 3);
	assert_int_equal(ccm_gguf_data_offset(g), 724416);
	assert_int_equal(ccm_gguf_data_size(g), 1026144);
	assert_int_equal(ccm_gguf_file_size(g), 1750560);
	check_str(g, "general.architecture", "llama");
	check_str(g, "general.name", "LLaMA v2");
	check_u64(g, "llama.context_length", 4096);
	check_u64(g, "llama.embedding_length", 8);
	check_u64(g, "llama.block_count", 1);
	check_u64(g, "llama.feed_forward_length", 32);
	check_u64(g, "llama.attention.head_count", 2);
	check_u64(g, "general.file_type", 1);
	tok = arr_str(g, "tokenizer.ggml.tokens", 32000);
	assert_string_equal(tok[1].s, "<s>");
	assert_string_equal(tok[300].s, "et");
	assert_string_equal(tok[31999].s, "\xe7\xbb\x99");
	assert_int_equal(ccm_gguf_get_array(g, "tokenizer.ggml.scores", CCM_F32, &kv), 0);
	assert_true(((const float *)kv->v.arr.data)[31999] == -31740.0f);
	check_tensor(g, "token_embd.weight", CCK_TYPE_F16, 2, 8, 32000, 0, 512000);
	check_tensor(g, "blk.0.attn_q.weight", CCK_TYPE_F16, 2, 8, 8, 512000, 128);
	check_tensor(g, "output.weight", CCK_TYPE_F16, 2, 8, 32000, 514144, 512000);
	ccm_gguf_free(g);
}

static void test_smollm2(void **state)
{
	const char *path = smollm2();
	struct ccm_gguf *g;
	const struct ccm_str *s;
	struct timespec t0, t1;
	int b = -1;
	double f;

	if (!path)
		skip();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	g = open_ok(path);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("    SmolLM2 header (%" PRIu64 " bytes, 49152 tokens + 48900 merges) parsed in %.2f ms "
	       "(machine shared with other builds)\n",
	       ccm_gguf_header_size(g), (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
	assert_int_equal(ccm_gguf_kv_count(g), 33);
	assert_int_equal(ccm_gguf_tensor_count(g), 272);
	assert_int_equal(count_type(g, CCK_TYPE_Q4_1), 210);
	assert_int_equal(count_type(g, CCK_TYPE_F32), 61);
	assert_int_equal(count_type(g, CCK_TYPE_Q8_0), 1);
	assert_int_equal(ccm_gguf_data_offset(g), 1785664);
	assert_int_equal(ccm_gguf_data_size(g), 96576768);
	assert_int_equal(ccm_gguf_file_size(g), 98362432);
	check_str(g, "tokenizer.ggml.model", "gpt2");
	check_str(g, "tokenizer.ggml.pre", "smollm");
	check_u64(g, "llama.vocab_size", 49152);
	check_u64(g, "llama.attention.head_count_kv", 3);
	check_u64(g, "tokenizer.ggml.padding_token_id", 2);
	assert_int_equal(ccm_gguf_get_f64(g, "llama.rope.freq_base", &f), 0);
	assert_true(f == 100000.0);
	assert_int_equal(ccm_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b), 0);
	assert_int_equal(b, 0);
	s = arr_str(g, "tokenizer.ggml.tokens", 49152);
	assert_string_equal(s[0].s, "<|endoftext|>");
	assert_string_equal(s[1].s, "<|im_start|>");
	assert_string_equal(s[49151].s, "ectable");
	s = arr_str(g, "tokenizer.ggml.merges", 48900);
	assert_string_equal(s[0].s, "\xc4\xa0 t");
	assert_string_equal(s[48899].s, "ect able");
	s = arr_str(g, "general.languages", 1);
	assert_string_equal(s[0].s, "en");
	assert_int_equal(ccm_gguf_find(g, "tokenizer.chat_template")->v.str.len, 368);
	check_tensor(g, "token_embd.weight", CCK_TYPE_Q8_0, 2, 576, 49152, 0, 30081024);
	check_tensor(g, "blk.0.attn_norm.weight", CCK_TYPE_F32, 1, 576, 1, 30081024, 2304);
	check_tensor(g, "blk.0.ffn_down.weight", CCK_TYPE_Q4_1, 2, 1536, 576, 30083328, 1536 / 32 * 20 * 576);
	check_tensor(g, "output_norm.weight", CCK_TYPE_F32, 1, 576, 1, 96574464, 2304);
	ccm_gguf_free(g);
}

static void test_v1_refused(void **state)
{
	struct ccm_gguf *g = (struct ccm_gguf *)1;
	char err[512] = "";
	uint8_t *b;
	size_t len;

	assert_int_equal(ccm_gguf_open(model("legacy/tinyllamas-stories-260k-f32.gguf"), &g, err, sizeof(err)),
	                 -EBADMSG);
	assert_null(g);
	assert_non_null(strstr(err, "v1"));
	b = slurp(model("legacy/tinyllamas-stories-260k-f32.gguf"), &len);
	expect_fail(b, len, "GGUF v1 is not supported");
	free(b);
}

/* Memory, path, fd and header-prefix parses all give the same result. */
static void check_sources_agree(const char *path)
{
	struct ccm_gguf *a, *b, *c, *d;
	char err[512];
	char *ja, *jb, *jc, *jd;
	size_t len;
	uint8_t *file = slurp(path, &len);
	int fd;

	assert_int_equal(ccm_gguf_parse(file, len, &a, err, sizeof(err)), 0);
	b = open_ok(path);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(ccm_gguf_open_fd(fd, &c, err, sizeof(err)), 0);
	assert_true(fcntl(fd, F_GETFD) >= 0); /* not closed */
	close(fd);
	assert_int_equal(ccm_gguf_parse_prefix(file, (size_t)ccm_gguf_header_size(a), len, &d, err, sizeof(err)), 0);
	ja = ccm_gguf_json(a, 1u << 20);
	jb = ccm_gguf_json(b, 1u << 20);
	jc = ccm_gguf_json(c, 1u << 20);
	jd = ccm_gguf_json(d, 1u << 20);
	assert_non_null(ja);
	assert_string_equal(ja, jb);
	assert_string_equal(ja, jc);
	assert_string_equal(ja, jd);
	assert_int_equal(ccm_gguf_header_size(a), ccm_gguf_header_size(b));
	ccm_gguf_free(d);
	/* one byte less of header is not enough */
	assert_int_equal(ccm_gguf_parse_prefix(file, (size_t)ccm_gguf_header_size(a) - 1, len, &d, err, sizeof(err)),
	                 -EBADMSG);
	assert_null(d);
	assert_non_null(strstr(err, "bytes given"));
	free(ja);
	free(jb);
	free(jc);
	free(jd);
	ccm_gguf_free(a);
	ccm_gguf_free(b);
	ccm_gguf_free(c);
	free(file);
}

static void test_sources_agree(void **state)
{
	static const char *const rel[] = {"stories260K.gguf", "llama-2-tiny-random.gguf",
	                                  "derived/stories260K-Q4_0.gguf"};
	const char *s = smollm2();
	size_t i;

	for (i = 0; i < sizeof(rel) / sizeof(rel[0]); i++)
		check_sources_agree(model(rel[i]));
	if (s)
		check_sources_agree(s);
}

/* Writing back what was parsed gives the file byte for byte: every kv, array and tensor info was kept. */
static void test_roundtrip(void **state)
{
	static const char *const rel[] = {"stories260K.gguf", "llama-2-tiny-random.gguf",
	                                  "derived/stories260K-F16.gguf", "derived/stories260K-Q8_0.gguf",
	                                  "derived/stories260K-Q4_0.gguf"};
	static struct tmodel m;
	size_t i, len;

	for (i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		uint8_t *file = slurp(model(rel[i]), &len);
		struct ccm_gguf *g;
		struct wb w;
		char err[512];

		assert_int_equal(ccm_gguf_parse(file, len, &g, err, sizeof(err)), 0);
		tm_from(&m, g, file);
		w = tm_write(&m);
		assert_int_equal(w.len, len);
		assert_memory_equal(w.b, file, len);
		free(w.b);
		ccm_gguf_free(g);
		free(file);
	}
}

static void test_bad_args(void **state)
{
	struct ccm_gguf *g = (struct ccm_gguf *)1;
	char err[512] = "", path[PATH_MAX + 32];
	int fds[2];

	snprintf(path, sizeof(path), "%s/no-such-model.gguf", models_dir);
	assert_int_equal(ccm_gguf_open(path, &g, err, sizeof(err)), -ENOENT);
	assert_null(g);
	assert_non_null(strstr(err, "no-such-model.gguf"));
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(ccm_gguf_open_fd(fds[0], &g, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
	close(fds[0]);
	close(fds[1]);
	assert_int_equal(ccm_gguf_open(models_dir, &g, err, sizeof(err)), -EINVAL);
	assert_int_equal(ccm_gguf_parse(NULL, 10, &g, err, sizeof(err)), -EINVAL);
	assert_int_equal(ccm_gguf_parse_prefix("GGUF", 4, 3, &g, err, sizeof(err)), -EINVAL);
	/* no error buffer is fine */
	assert_int_equal(ccm_gguf_parse("GGUX", 4, &g, NULL, 0), -EBADMSG);
	expect_fail((const uint8_t *)"", 0, "magic (4 bytes) runs past the end of the file (0 bytes)");
}

/* ---- corrupted variants of stories260K-Q4_0 -------------------------------------------------------------------- */

static uint8_t *base;
static size_t base_len;
static struct ccm_gguf *bg; /* base parsed */
static uint64_t kv_off[64]; /* file offset of each kv */
static uint64_t kv_val[64]; /* file offset of each kv's value (after the type) */

static uint64_t value_bytes(const struct ccm_kv *kv)
{
	uint64_t n = 0, i;

	if (kv->type == CCM_STRING)
		return 8 + kv->v.str.len;
	if (kv->type != CCM_ARRAY)
		return (uint64_t)vsize[kv->type];
	if (kv->v.arr.type != CCM_STRING)
		return 12 + kv->v.arr.n * (uint64_t)vsize[kv->v.arr.type];
	for (i = 0; i < kv->v.arr.n; i++)
		n += 8 + ((const struct ccm_str *)kv->v.arr.data)[i].len;
	return 12 + n;
}

static int setup_base(void **state)
{
	char err[512];
	uint64_t off = 24;
	size_t i;

	base = slurp(model("derived/stories260K-Q4_0.gguf"), &base_len);
	if (ccm_gguf_parse(base, base_len, &bg, err, sizeof(err)))
		return -1;
	for (i = 0; i < ccm_gguf_kv_count(bg); i++) {
		const struct ccm_kv *kv = ccm_gguf_kv(bg, i);
		kv_off[i] = off;
		kv_val[i] = off + 8 + kv->key.len + 4;
		off = kv_val[i] + value_bytes(kv);
	}
	/* the walk ends where the first tensor info starts */
	return off == ccm_gguf_tensor(bg, 0)->info_offset ? 0 : -1;
}

static int teardown_base(void **state)
{
	ccm_gguf_free(bg);
	free(base);
	return 0;
}

static uint8_t *copy_base(void)
{
	uint8_t *b = malloc(base_len);
	assert_non_null(b);
	memcpy(b, base, base_len);
	return b;
}

static size_t kv_index(const char *key)
{
	const struct ccm_kv *kv = ccm_gguf_find(bg, key);
	assert_non_null(kv);
	return (size_t)(kv - ccm_gguf_kv(bg, 0));
}

/* Offsets inside tensor i's info. */
static uint64_t t_ndims_off(size_t i)
{
	const struct ccm_tensor *t = ccm_gguf_tensor(bg, i);
	return t->info_offset + 8 + t->name.len;
}

static uint64_t t_dim_off(size_t i, unsigned d)
{
	return t_ndims_off(i) + 4 + 8 * d;
}

static uint64_t t_type_off(size_t i)
{
	return t_dim_off(i, ccm_gguf_tensor(bg, i)->n_dims);
}

static uint64_t t_offset_off(size_t i)
{
	return t_type_off(i) + 4;
}

/* Patch n bytes of a copy of the base at off with v and expect want. */
static void patched(uint64_t off, uint64_t v, int n, const char *want)
{
	uint8_t *b = copy_base();

	put_le(b + off, v, n);
	expect_fail(b, base_len, want);
	free(b);
}

static void test_truncated(void **state)
{
	uint64_t hdr = ccm_gguf_header_size(bg), data = ccm_gguf_data_offset(bg), end = data + ccm_gguf_data_size(bg);
	uint64_t cut[40], x = UINT64_C(0x9e3779b97f4a7c15);
	size_t n = 0, i;

	cut[n++] = 0;
	cut[n++] = 3;
	cut[n++] = 10;
	cut[n++] = 20;
	cut[n++] = 30;
	cut[n++] = kv_val[0] + 12 + 3; /* inside the first token string */
	cut[n++] = ccm_gguf_tensor(bg, 0)->info_offset + 5;
	cut[n++] = hdr - 1; /* the last tensor info's offset */
	if (data > hdr)
		cut[n++] = hdr; /* in the padding */
	cut[n++] = data;        /* no data at all */
	cut[n++] = data + 100;
	cut[n++] = end - 1; /* (the file has padding after the last tensor) */
	/* and 16 random points, a fixed sequence (xorshift), half of them inside the header */
	for (i = 0; i < 16; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		cut[n++] = i < 8 ? x % hdr : hdr + x % (end - hdr);
	}
	for (i = 0; i < n; i++)
		expect_fail(base, (size_t)cut[i], "past the end of the file");
}

static void test_bad_magic(void **state)
{
	patched(0, 'X', 1, "bad magic 'XGUF'");
	patched(0, 0x00000000, 4, "bad magic '\\x00\\x00\\x00\\x00'");
}

static void test_bad_version(void **state)
{
	patched(4, 1, 4, "GGUF v1 is not supported");
	patched(4, 7, 4, "unsupported GGUF version 7 (2 and 3 are supported)");
	patched(4, 0, 4, "unsupported GGUF version 0");
	patched(4, 0x03000000, 4, "byte-swapped: big-endian GGUF (v3) is not supported");
}

static void test_huge_counts(void **state)
{
	patched(16, UINT64_C(1) << 40, 8, "kv count 1099511627776 runs past the end of the file");
	patched(16, UINT64_MAX, 8, "kv count 18446744073709551615 runs past the end of the file");
	patched(8, UINT64_C(1) << 40, 8, "tensor count 1099511627776 (with 21 kvs) runs past the end of the file");
	patched(8, UINT64_MAX / 8, 8, "tensor count 2305843009213693951");
	/* within what the whole file could hold, not within what the tensor infos' bytes could */
	patched(8, 8500, 8, "bytes left after the kvs hold at most");
}

static void test_huge_lengths(void **state)
{
	size_t arch = kv_index("general.architecture");

	patched(kv_off[0], UINT64_C(1) << 60, 8, "kv 0: key length 1152921504606846976 runs past the end of the file");
	patched(kv_off[3], UINT64_MAX, 8, "kv 3: key length 18446744073709551615 runs past the end of the file");
	patched(kv_val[arch], UINT64_C(1) << 33, 8,
	        "kv 4 ('general.architecture'): string value length 8589934592 runs past the end of the file");
	/* the first token's length */
	patched(kv_val[0] + 12, UINT64_C(1) << 62, 8,
	        "kv 0 ('tokenizer.ggml.tokens'): array string length 4611686018427387904 runs past the end");
	patched(ccm_gguf_tensor(bg, 5)->info_offset, 1u << 30, 8, "tensor 5: name length 1073741824 runs past");
}

static void test_huge_array_counts(void **state)
{
	size_t scores = kv_index("tokenizer.ggml.scores");

	assert_int_equal(ccm_gguf_kv(bg, 0)->v.arr.type, CCM_STRING);
	patched(
	    kv_val[0] + 4, UINT64_C(1) << 61, 8,
	    "kv 0 ('tokenizer.ggml.tokens'): array count 2305843009213693952 of strings runs past the end of the file");
	patched(kv_val[scores] + 4, UINT64_MAX, 8, "array count 18446744073709551615 of f32 (4 bytes each) runs past");
	patched(kv_val[scores] + 4, UINT64_MAX / 4 + 1, 8, "array count 4611686018427387904 of f32");
	/* one element too many: the next key's bytes are read as floats, then the kv after is garbage */
	patched(kv_val[0] + 4, 100000, 8, "array count 100000 of strings");
}

static void test_bad_value_types(void **state)
{
	size_t scores = kv_index("tokenizer.ggml.scores");

	patched(kv_val[3] - 4, 13, 4, "kv 3 ('tokenizer.ggml.model'): unknown value type 13 (valid: 0..12)");
	patched(kv_val[3] - 4, 0xffffffffu, 4, "unknown value type 4294967295");
	patched(kv_val[scores], 9, 4,
	        "kv 1 ('tokenizer.ggml.scores'): nested array (an array of arrays) is not supported");
	patched(kv_val[scores], 200, 4, "unknown array element type 200");
}

static void test_bad_dims(void **state)
{
	size_t i = 2; /* token_embd.weight, q4_0 [64, 512] */

	assert_string_equal(ccm_gguf_tensor(bg, i)->name.s, "token_embd.weight");
	patched(t_ndims_off(i), 0, 4, "tensor 2 ('token_embd.weight'): n_dims 0 (must be 1..4)");
	patched(t_ndims_off(i), 5, 4, "tensor 2 ('token_embd.weight'): n_dims 5 (must be 1..4)");
	patched(t_ndims_off(i), 0x80000000u, 4, "n_dims 2147483648 (must be 1..4)");
	patched(t_dim_off(i, 1), 0, 8, "tensor 2 ('token_embd.weight'): dimension 1 is 0");
	patched(t_dim_off(i, 0), 0, 8, "dimension 0 is 0");
	patched(t_dim_off(i, 1), UINT64_C(1) << 63, 8, "dimension 1 is 9223372036854775808 (more than INT64_MAX)");
	{
		uint8_t *b = copy_base();
		put_le(b + t_dim_off(i, 0), UINT64_C(1) << 32, 8);
		put_le(b + t_dim_off(i, 1), UINT64_C(1) << 32, 8);
		expect_fail(b, base_len, "element count overflows: 4294967296 x 4294967296 x 1 x 1");
		free(b);
	}
	/* big but no overflow of the count: the byte size is past the end */
	patched(t_dim_off(i, 1), UINT64_C(1) << 40, 8, "ends past the end of the file");
}

static void test_bad_tensor_types(void **state)
{
	patched(t_type_off(2), 4, 4,
	        "tensor 2 ('token_embd.weight'): unsupported tensor type 4 (q4_2 (removed from ggml))");
	patched(t_type_off(2), 5, 4, "unsupported tensor type 5 (q4_3 (removed from ggml))");
	patched(t_type_off(2), 16, 4, "unsupported tensor type 16 (iq2_xxs)");
	patched(t_type_off(2), 40, 4, "unsupported tensor type 40 (unknown)");
	patched(t_type_off(2), 0xfffffff0u, 4, "unsupported tensor type 4294967280 (unknown)");
}

static void test_not_block_multiple(void **state)
{
	/* q4_0 [64, 512] -> [48, 512]: 48 is not a multiple of 32 */
	patched(t_dim_off(2, 0), 48, 8,
	        "tensor 2 ('token_embd.weight'): dimension 0 (48) is not a multiple of the block size 32 of q4_0");
	/* q8_0 output.weight too */
	patched(t_dim_off(0, 0), 1, 8, "dimension 0 (1) is not a multiple of the block size 32 of q8_0");
}

static void test_bad_offsets(void **state)
{
	const struct ccm_tensor *t1 = ccm_gguf_tensor(bg, 1), *last = NULL;
	size_t i;

	patched(t_offset_off(1), t1->offset + 4, 8,
	        "tensor 1 ('output_norm.weight'): data offset 34820 is not a multiple of the alignment 32");
	patched(t_offset_off(1), 0, 8, "tensor 1 ('output_norm.weight') data [offset 0 + 256 bytes] overlaps tensor 0");
	patched(t_offset_off(2), t1->offset + 224, 8, "overlaps");
	for (i = 0; i < ccm_gguf_tensor_count(bg); i++)
		if (!last || ccm_gguf_tensor(bg, i)->offset > last->offset)
			last = ccm_gguf_tensor(bg, i);
	i = (size_t)(last - ccm_gguf_tensor(bg, 0));
	patched(t_offset_off(i), last->offset + 32, 8, "ends past the end of the file (277024 bytes");
	patched(t_offset_off(1), UINT64_C(1) << 62, 8,
	        "data [offset 4611686018427387904 + 256 bytes] ends past the end");
	patched(t_offset_off(1), UINT64_MAX - 31, 8, "data [offset 18446744073709551584 + 256 bytes] overflows");
}

static void test_alignment(void **state)
{
	static struct tmodel m;
	struct ccm_gguf *g;
	struct wb w;
	char err[512];
	uint64_t v64 = 32;
	size_t i;

	tm_from(&m, bg, base);
	tm_add_u32(&m, "general.alignment", 0);
	w = tm_write(&m);
	expect_fail_w(&w, "general.alignment (kv 21) is 0, must be a non-zero power of two");

	tm_from(&m, bg, base);
	tm_add_u32(&m, "general.alignment", 3);
	w = tm_write(&m);
	expect_fail_w(&w, "general.alignment (kv 21) is 3, must be a non-zero power of two");

	tm_from(&m, bg, base);
	tm_add_raw(&m, "general.alignment", CCM_U64, &v64, 8);
	w = tm_write(&m);
	expect_fail_w(&w, "general.alignment (kv 21) has type u64, must be u32");

	tm_from(&m, bg, base);
	tm_add_raw(&m, "general.alignment", CCM_STRING,
	           "\x02\0\0\0\0\0\0\0"
	           "32",
	           10);
	w = tm_write(&m);
	expect_fail_w(&w, "general.alignment (kv 21) has type string, must be u32");

	/* a valid alignment of 256: everything moves, data unchanged */
	tm_from(&m, bg, base);
	m.align = 256;
	tm_add_u32(&m, "general.alignment", 256);
	w = tm_write(&m);
	assert_int_equal(ccm_gguf_parse(w.b, w.len, &g, err, sizeof(err)), 0);
	assert_int_equal(ccm_gguf_alignment(g), 256);
	assert_int_equal(ccm_gguf_data_offset(g) % 256, 0);
	assert_true(ccm_gguf_data_offset(g) >= ccm_gguf_header_size(g));
	for (i = 0; i < ccm_gguf_tensor_count(g); i++) {
		const struct ccm_tensor *t = ccm_gguf_tensor(g, i), *o = ccm_gguf_tensor(bg, i);
		assert_int_equal(t->offset % 256, 0);
		assert_int_equal(t->nbytes, o->nbytes);
		assert_memory_equal(w.b + ccm_gguf_data_offset(g) + t->offset,
		                    base + ccm_gguf_data_offset(bg) + o->offset, o->nbytes);
	}
	/* ... and the 32-aligned original's offsets are refused under it */
	for (i = 0; i < ccm_gguf_tensor_count(bg); i++)
		if (ccm_gguf_tensor(bg, i)->offset % 256)
			break;
	assert_true(i < ccm_gguf_tensor_count(bg));
	put_le(w.b + m.tinfo_off[i] + 8 + ccm_gguf_tensor(bg, i)->name.len + 4 + 8 * ccm_gguf_tensor(bg, i)->n_dims + 4,
	       ccm_gguf_tensor(bg, i)->offset, 8);
	ccm_gguf_free(g);
	expect_fail_w(&w, "is not a multiple of the alignment 256");
}

static void test_duplicates(void **state)
{
	static struct tmodel m;
	struct wb w;

	tm_from(&m, bg, base);
	m.kvs[5].key = m.kvs[4].key;
	w = tm_write(&m);
	expect_fail_w(&w, "kv 5 ('general.architecture'): duplicate key (first defined by kv 4)");

	tm_from(&m, bg, base);
	tm_add_u32(&m, "tokenizer.ggml.tokens", 1);
	w = tm_write(&m);
	expect_fail_w(&w, "kv 21 ('tokenizer.ggml.tokens'): duplicate key (first defined by kv 0)");

	tm_from(&m, bg, base);
	m.ts[7].name = m.ts[2].name;
	w = tm_write(&m);
	expect_fail_w(&w, "tensor 7 ('token_embd.weight'): duplicate tensor name (first used by tensor 2)");
}

static void test_bad_bools(void **state)
{
	static struct tmodel m;
	struct wb w;
	uint8_t two = 2, arr[4 + 8 + 3] = {CCM_BOOL, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 5};

	tm_from(&m, bg, base);
	tm_add_raw(&m, "t.flag", CCM_BOOL, &two, 1);
	w = tm_write(&m);
	expect_fail_w(&w, "kv 21 ('t.flag'): bool value 2 (must be 0 or 1)");

	tm_from(&m, bg, base);
	tm_add_raw(&m, "t.flags", CCM_ARRAY, arr, sizeof(arr));
	w = tm_write(&m);
	expect_fail_w(&w, "kv 21 ('t.flags'): bool array element 2 is 5 (must be 0 or 1)");
}

static void test_weird_names(void **state)
{
	static struct tmodel m;
	struct wb w;

	/* names with bytes that must not reach a terminal raw */
	tm_from(&m, bg, base);
	tm_add_raw(&m, "t.\x1b[31m\n'x", CCM_U32, "\x01\x00\x00", 3); /* truncated value: runs into the tensor infos */
	m.nt = 0;
	w = tm_write(&m);
	assert_int_equal(w.len, m.header_len); /* ends after 3 of the value's 4 bytes */
	expect_fail_w(&w, "kv 21 ('t.\\x1b[31m\\x0a\\x27x'): u32 (4 bytes) runs past the end of the file");
}

/* ---- synthetic files: every type, getters, JSON ------------------------------------------------------------- */

static void test_all_types(void **state)
{
	static struct tmodel m;
	static char names[CCK_TYPE_COUNT][32];
	struct ccm_gguf *g;
	struct wb w;
	char err[512];
	int t;

	memset(&m, 0, sizeof(m));
	for (t = 0; t < CCK_TYPE_COUNT; t++) {
		size_t be, bb;
		struct ccm_tensor *x = &m.ts[m.nt];
		if (cck_type_block(t, &be, &bb))
			continue;
		snprintf(names[t], sizeof(names[t]), "t.%s", cck_type_name(t));
		x->name = S(names[t]);
		x->n_dims = 3;
		x->ne[0] = 2 * be;
		x->ne[1] = 3;
		x->ne[2] = 2;
		x->ne[3] = 1;
		x->type = t;
		x->nbytes = 2 * bb * 3 * 2;
		m.nt++;
	}
	assert_int_equal(m.nt, 15);
	w = tm_write(&m);
	assert_int_equal(ccm_gguf_parse(w.b, w.len, &g, err, sizeof(err)), 0);
	assert_int_equal(ccm_gguf_tensor_count(g), 15);
	assert_int_equal(ccm_gguf_kv_count(g), 0);
	for (t = 0; t < (int)m.nt; t++) {
		const struct ccm_tensor *x = ccm_gguf_tensor(g, (size_t)t);
		assert_int_equal(x->nbytes, m.ts[t].nbytes);
		assert_int_equal(x->type, m.ts[t].type);
		assert_int_equal(x->n_dims, 3);
		assert_int_equal(x->ne[3], 1);
	}
	assert_int_equal(ccm_gguf_find_tensor(g, "t.q4_k")->nbytes, 2 * 144 * 6);
	assert_int_equal(ccm_gguf_find_tensor(g, "t.bf16")->nbytes, 2 * 2 * 6);
	ccm_gguf_free(g);
	free(w.b);

	/* no tensors and no kvs at all: a valid, empty file */
	memset(&m, 0, sizeof(m));
	w = tm_write(&m);
	assert_int_equal(w.len, 24);
	assert_int_equal(ccm_gguf_parse(w.b, w.len, &g, err, sizeof(err)), 0);
	assert_int_equal(ccm_gguf_data_size(g), 0);
	assert_int_equal(ccm_gguf_data_offset(g), 32);
	ccm_gguf_free(g);
	/* version 2 has the same layout */
	put_le(w.b + 4, 2, 4);
	assert_int_equal(ccm_gguf_parse(w.b, w.len, &g, err, sizeof(err)), 0);
	assert_int_equal(ccm_gguf_version(g), 2);
	ccm_gguf_free(g);
	free(w.b);
}

static struct ccm_kv KV(const char *key, enum ccm_vtype t) {
	struct ccm_kv kv;

	memset(&kv, 0, sizeof(kv));
	kv.key = S(key);
	kv.type = t;
	return kv;
}

static struct ccm_gguf *
synthetic(void)
{
	static struct tmodel m;
	static const uint8_t u8s[3] = {1, 2, 3};
	static const int8_t bools[2] = {1, 0};
	static const double f64s[2] = {0.5, -1e300};
	static const float f32s[3] = {1.5f, NAN, -INFINITY};
	static const struct ccm_str strs[2] = {{"a", 1}, {"\"q\"", 3}};
	static const char weird[] = "a\"b\\c\n\x01\x7f \xc3\xa9 \xff \xe2\x82 \xed\xa0\x80 \xf0\x9f\x98\x80 end\0nul";
	struct ccm_kv kv;
	struct ccm_gguf *g;
	struct wb w;
	char err[512];

	memset(&m, 0, sizeof(m));
	kv = KV("t.u8", CCM_U8), kv.v.u = 200, tm_add_kv(&m, kv);
	kv = KV("t.i8", CCM_I8), kv.v.i = -5, tm_add_kv(&m, kv);
	kv = KV("t.u16", CCM_U16), kv.v.u = 65535, tm_add_kv(&m, kv);
	kv = KV("t.i16", CCM_I16), kv.v.i = -32768, tm_add_kv(&m, kv);
	kv = KV("t.i32", CCM_I32), kv.v.i = -7, tm_add_kv(&m, kv);
	kv = KV("t.u64", CCM_U64), kv.v.u = UINT64_MAX, tm_add_kv(&m, kv);
	kv = KV("t.i64", CCM_I64), kv.v.i = INT64_MIN, tm_add_kv(&m, kv);
	kv = KV("t.f32", CCM_F32), kv.v.f = 1e-5f, tm_add_kv(&m, kv);
	kv = KV("t.f64", CCM_F64), kv.v.f = 0.1, tm_add_kv(&m, kv);
	kv = KV("t.nan", CCM_F32), kv.v.f = NAN, tm_add_kv(&m, kv);
	kv = KV("t.inf", CCM_F64), kv.v.f = INFINITY, tm_add_kv(&m, kv);
	kv = KV("t.true", CCM_BOOL), kv.v.b = 1, tm_add_kv(&m, kv);
	kv = KV("t.str", CCM_STRING), kv.v.str.s = weird, kv.v.str.len = sizeof(weird) - 1, tm_add_kv(&m, kv);
	kv = KV("t.u8s", CCM_ARRAY), kv.v.arr.type = CCM_U8, kv.v.arr.n = 3, kv.v.arr.data = u8s, tm_add_kv(&m, kv);
	kv = KV("t.bools", CCM_ARRAY), kv.v.arr.type = CCM_BOOL, kv.v.arr.n = 2, kv.v.arr.data = bools,
	tm_add_kv(&m, kv);
	kv = KV("t.f64s", CCM_ARRAY), kv.v.arr.type = CCM_F64, kv.v.arr.n = 2, kv.v.arr.data = f64s, tm_add_kv(&m, kv);
	kv = KV("t.f32s", CCM_ARRAY), kv.v.arr.type = CCM_F32, kv.v.arr.n = 3, kv.v.arr.data = f32s, tm_add_kv(&m, kv);
	kv = KV("t.strs", CCM_ARRAY), kv.v.arr.type = CCM_STRING, kv.v.arr.n = 2, kv.v.arr.data = strs,
	tm_add_kv(&m, kv);
	kv = KV("t.empty", CCM_ARRAY), kv.v.arr.type = CCM_I64, kv.v.arr.n = 0, tm_add_kv(&m, kv);
	kv = KV("general.alignment", CCM_U32), kv.v.u = 64, tm_add_kv(&m, kv);
	m.align = 64;
	m.ts[0].name = S("w");
	m.ts[0].n_dims = 2;
	m.ts[0].ne[0] = 32;
	m.ts[0].ne[1] = 2;
	m.ts[0].ne[2] = m.ts[0].ne[3] = 1;
	m.ts[0].type = CCK_TYPE_Q8_0;
	m.ts[0].nbytes = 68;
	m.ts[1] = m.ts[0];
	m.ts[1].name = S("v\"\x01");
	m.ts[1].type = CCK_TYPE_F32;
	m.ts[1].n_dims = 1;
	m.ts[1].ne[1] = 1;
	m.ts[1].nbytes = 128;
	m.nt = 2;
	w = tm_write(&m);
	if (ccm_gguf_parse(w.b, w.len, &g, err, sizeof(err)))
		fail_msg("synthetic: %s", err);
	free(w.b);
	return g;
}

static void test_getters(void **state)
{
	struct ccm_gguf *g = synthetic();
	const struct ccm_kv *kv;
	struct ccm_str s;
	uint64_t u;
	int64_t i;
	double f;
	int b;

	assert_int_equal(ccm_gguf_get_u64(g, "t.u8", &u), 0);
	assert_int_equal(u, 200);
	assert_int_equal(ccm_gguf_get_u64(g, "t.u64", &u), 0);
	assert_int_equal(u, UINT64_MAX);
	assert_int_equal(ccm_gguf_get_u64(g, "t.i8", &u), -ERANGE);
	assert_int_equal(ccm_gguf_get_u64(g, "t.true", &u), -EINVAL);
	assert_int_equal(ccm_gguf_get_u64(g, "t.f32", &u), -EINVAL);
	assert_int_equal(ccm_gguf_get_u64(g, "t.str", &u), -EINVAL);
	assert_int_equal(ccm_gguf_get_u64(g, "nope", &u), -ENOENT);
	assert_int_equal(ccm_gguf_get_i64(g, "t.i16", &i), 0);
	assert_int_equal(i, -32768);
	assert_int_equal(ccm_gguf_get_i64(g, "t.i64", &i), 0);
	assert_true(i == INT64_MIN);
	assert_int_equal(ccm_gguf_get_i64(g, "t.u16", &i), 0);
	assert_int_equal(i, 65535);
	assert_int_equal(ccm_gguf_get_i64(g, "t.u64", &i), -ERANGE);
	assert_int_equal(ccm_gguf_get_i64(g, "t.f64", &i), -EINVAL);
	assert_int_equal(ccm_gguf_get_f64(g, "t.f64", &f), 0);
	assert_true(f == 0.1);
	assert_int_equal(ccm_gguf_get_f64(g, "t.f32", &f), 0);
	assert_true(f == (double)1e-5f);
	assert_int_equal(ccm_gguf_get_f64(g, "t.i32", &f), 0);
	assert_true(f == -7.0);
	assert_int_equal(ccm_gguf_get_f64(g, "t.nan", &f), 0);
	assert_true(isnan(f));
	assert_int_equal(ccm_gguf_get_f64(g, "t.true", &f), -EINVAL);
	assert_int_equal(ccm_gguf_get_bool(g, "t.true", &b), 0);
	assert_int_equal(b, 1);
	assert_int_equal(ccm_gguf_get_bool(g, "t.u8", &b), -EINVAL);
	assert_int_equal(ccm_gguf_get_str(g, "t.str", &s), 0);
	assert_int_equal(s.len, 33);
	assert_int_equal(s.s[s.len], 0);
	assert_memory_equal(s.s + 26, "end\0nul", 7);
	assert_int_equal(ccm_gguf_get_str(g, "t.u8s", &s), -EINVAL);
	assert_int_equal(ccm_gguf_get_array(g, "t.u8s", CCM_U8, &kv), 0);
	assert_int_equal(((const uint8_t *)kv->v.arr.data)[2], 3);
	assert_int_equal(ccm_gguf_get_array(g, "t.u8s", CCM_I8, &kv), -EINVAL);
	assert_int_equal(ccm_gguf_get_array(g, "t.empty", CCM_I64, &kv), 0);
	assert_int_equal(kv->v.arr.n, 0);
	assert_int_equal(ccm_gguf_get_array(g, "t.bools", CCM_BOOL, &kv), 0);
	assert_int_equal(((const int8_t *)kv->v.arr.data)[0], 1);
	assert_int_equal(ccm_gguf_get_array(g, "t.strs", CCM_STRING, &kv), 0);
	assert_string_equal(((const struct ccm_str *)kv->v.arr.data)[1].s, "\"q\"");
	assert_int_equal(ccm_gguf_alignment(g), 64);
	assert_int_equal(ccm_gguf_data_offset(g) % 64, 0);
	assert_int_equal(ccm_gguf_find_tensor(g, "v\"\x01")->offset, 128);
	assert_int_equal(ccm_gguf_data_size(g), 256);
	assert_string_equal(ccm_vtype_name(CCM_F64), "f64");
	assert_null(ccm_vtype_name((enum ccm_vtype)13));
	ccm_gguf_free(g);
}

static void test_json(void **state)
{
	struct ccm_gguf *g = synthetic();
	char *j = ccm_gguf_json(g, 64), *j2;

	assert_non_null(j);
	assert_true(!strncmp(j, "{\"version\":3,\"alignment\":64,\"data_offset\":", 42));
	assert_non_null(strstr(j, "\"kv_count\":20,\"tensor_count\":2,\"metadata\":{\"t.u8\":200,\"t.i8\":-5,"));
	assert_non_null(strstr(j, "\"t.u64\":18446744073709551615,\"t.i64\":-9223372036854775808,"));
	assert_non_null(strstr(j,
	                       "\"t.f32\":9.99999975e-06,\"t.f64\":0.10000000000000001,\"t.nan\":null,\"t.inf\":null,"
	                       "\"t.true\":true,"));
	/* escapes; bad UTF-8 (a lone 0xff, a truncated sequence, a surrogate) as U+FFFD; NUL kept */
	assert_non_null(strstr(j, "\"t.str\":\"a\\\"b\\\\c\\u000a\\u0001\x7f \xc3\xa9 \xef\xbf\xbd \xef\xbf\xbd "
	                          "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xf0\x9f\x98\x80 end\\u0000nul\""));
	assert_non_null(strstr(j,
	                       "\"t.u8s\":[1,2,3],\"t.bools\":[true,false],\"t.f64s\":[0.5,-1.0000000000000001e+300],"
	                       "\"t.f32s\":[1.5,null,null],\"t.strs\":[\"a\",\"\\\"q\\\"\"],\"t.empty\":[],"));
	assert_non_null(
	    strstr(j, "\"tensor_types\":{\"f32\":1,\"q8_0\":1},\"tensors\":[{\"name\":\"w\",\"type\":\"q8_0\","
	              "\"shape\":[32,2],\"offset\":0,\"bytes\":68},{\"name\":\"v\\\"\\u0001\",\"type\":\"f32\","
	              "\"shape\":[32],\"offset\":128,\"bytes\":128}]}"));
	j2 = ccm_gguf_json(g, 2);
	assert_non_null(strstr(j2, "\"t.u8s\":{\"array\":\"u8\",\"count\":3},\"t.bools\":[true,false],"));
	assert_non_null(strstr(j2, "\"t.f32s\":{\"array\":\"f32\",\"count\":3},\"t.strs\":[\"a\",\"\\\"q\\\"\"]"));
	free(j2);
	j2 = ccm_gguf_json(g, 0);
	assert_non_null(strstr(j2, "\"t.empty\":[]"));
	assert_non_null(strstr(j2, "\"t.strs\":{\"array\":\"string\",\"count\":2}"));
	free(j2);
	free(j);
	ccm_gguf_free(g);
}

int main(void)
{
	const struct CMUnitTest models[] = {
	    cmocka_unit_test(test_stories260k),
	    cmocka_unit_test(test_stories260k_derived),
	    cmocka_unit_test(test_llama2_tiny_random),
	    cmocka_unit_test(test_smollm2),
	    cmocka_unit_test(test_v1_refused),
	    cmocka_unit_test(test_sources_agree),
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_bad_args),
	    cmocka_unit_test(test_all_types),
	    cmocka_unit_test(test_getters),
	    cmocka_unit_test(test_json),
	};
	const struct CMUnitTest corrupt[] = {
	    cmocka_unit_test(test_truncated),        cmocka_unit_test(test_bad_magic),
	    cmocka_unit_test(test_bad_version),      cmocka_unit_test(test_huge_counts),
	    cmocka_unit_test(test_huge_lengths),     cmocka_unit_test(test_huge_array_counts),
	    cmocka_unit_test(test_bad_value_types),  cmocka_unit_test(test_bad_dims),
	    cmocka_unit_test(test_bad_tensor_types), cmocka_unit_test(test_not_block_multiple),
	    cmocka_unit_test(test_bad_offsets),      cmocka_unit_test(test_alignment),
	    cmocka_unit_test(test_duplicates),       cmocka_unit_test(test_bad_bools),
	    cmocka_unit_test(test_weird_names),
	};
	int fails;

	if (find_models())
		return 77;
#if !defined(__SANITIZE_ADDRESS__)
	{
		/* a corrupted count must never turn into a huge allocation: cap the heap (ASan needs its own room) */
		struct rlimit rl = {(rlim_t)512 << 20, (rlim_t)512 << 20};
		if (setrlimit(RLIMIT_DATA, &rl))
			perror("setrlimit(RLIMIT_DATA)");
	}
#endif
	fails = cmocka_run_group_tests_name("gguf: models, API, JSON", models, NULL, NULL);
	fails += cmocka_run_group_tests_name("gguf: corrupted files", corrupt, setup_base, teardown_base);
	printf("gguf: %d corrupted variants refused with the expected message\n", n_failures_checked);
	return fails ? 1 : 0;
}
