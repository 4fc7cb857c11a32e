/* SPDX-License-Identifier: MIT */
/* gguf.c: GGUF header parser: every count, length, type and offset is checked against the file size first. */
#define _GNU_SOURCE 1
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cck.h"
#include "gguf.h"

/* The fd reader refuses headers bigger than this (a real model's header is a few MB: the tokenizer). */
#define MAX_HEADER_BYTES ((uint64_t)1 << 30)
#define FIRST_READ ((size_t)256 << 10)
#define ARENA_CHUNK ((size_t)64 << 10)

/* Smallest encodings, to bound counts by the bytes left: a kv is a key (8-byte length) + type (4) + a 1-byte
 * value; a tensor info is a name (8) + n_dims (4) + one dimension (8) + type (4) + offset (8). */
#define MIN_KV_BYTES 13
#define MIN_TENSOR_BYTES 32

struct chunk {
	struct chunk *next;
	size_t used, cap;
	max_align_t data[];
};

struct ccm_gguf {
	uint32_t version;
	uint64_t alignment, data_offset, data_size, file_size, header_size;
	struct ccm_kv *kvs;
	size_t n_kv, cap_kv;
	struct ccm_tensor *tensors;
	size_t n_tensors, cap_tensors;
	size_t *kv_hash, kv_hmask; /* index + 1, 0 for an empty slot */
	size_t *t_hash, t_hmask;
	struct chunk *arena;
	void **blocks; /* malloc'd string arrays */
	size_t n_blocks, cap_blocks;
};

/* Where the bytes come from: [0, avail) of a file of size bytes are in buf; an fd source reads more on demand. */
struct src {
	const uint8_t *buf;
	size_t avail;
	uint64_t size;
	int fd; /* -1: memory */
	uint8_t *own;
	size_t cap;
};

struct parser {
	struct src src;
	uint64_t pos;
	char *err;
	size_t errlen;
	char ctx[320];      /* "kv 3 ('general.name')": prefixed to messages */
	uint64_t align_off; /* file offset of the general.alignment kv */
	struct ccm_gguf *g;
};

/* ---- messages ---------------------------------------------------------------------------------------------- */

/* A name for a message: printable ASCII as is, other bytes as \xNN, at most 64 bytes of it. */
static void quote_name(char *out, size_t outlen, const char *s, size_t len)
{
	size_t o = 0, i;

	for (i = 0; i < len && o + 8 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (i == 64) {
			o += (size_t)snprintf(out + o, outlen - o, "...");
			break;
		}
		if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
	}
	out[o < outlen ? o : outlen - 1] = 0;
}

__attribute__((format(printf, 4, 5))) static int fail(struct parser *p, int rc, uint64_t off, const char *fmt, ...)
{
	va_list ap;
	size_t o = 0;
	int n;

	if (!p->err || !p->errlen)
		return rc;
	if (p->ctx[0]) {
		n = snprintf(p->err, p->errlen, "%s: ", p->ctx);
		o = n < 0 ? 0 : (size_t)n;
	}
	if (o < p->errlen) {
		va_start(ap, fmt);
		n = vsnprintf(p->err + o, p->errlen - o, fmt, ap);
		va_end(ap);
		o += n < 0 ? 0 : (size_t)n;
	}
	if (o < p->errlen && off != UINT64_MAX)
		snprintf(p->err + o, p->errlen - o, " at offset %" PRIu64, off);
	return rc;
}

static void set_ctx(struct parser *p, const char *what, size_t idx, const struct ccm_str *name)
{
	char q[300];

	if (name) {
		quote_name(q, sizeof(q), name->s, name->len);
		snprintf(p->ctx, sizeof(p->ctx), "%s %zu ('%s')", what, idx, q);
	} else {
		snprintf(p->ctx, sizeof(p->ctx), "%s %zu", what, idx);
	}
}

/* ---- memory ------------------------------------------------------------------------------------------------ */

static void *arena_alloc(struct ccm_gguf *g, size_t n)
{
	struct chunk *c = g->arena;

	n = (n + 15) & ~(size_t)15;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->cap = cap;
		c->used = 0;
		if (g->arena && n > ARENA_CHUNK) {
			/* a big one-off: keep filling the current chunk afterwards */
			c->next = g->arena->next;
			g->arena->next = c;
		} else {
			c->next = g->arena;
			g->arena = c;
		}
	}
	c->used += n;
	return (char *)c->data + c->used - n;
}

static int add_block(struct ccm_gguf *g, void *b)
{
	if (g->n_blocks == g->cap_blocks) {
		size_t cap = g->cap_blocks ? 2 * g->cap_blocks : 16;
		void **nb = realloc(g->blocks, cap * sizeof(*nb));
		if (!nb)
			return -ENOMEM;
		g->blocks = nb;
		g->cap_blocks = cap;
	}
	g->blocks[g->n_blocks++] = b;
	return 0;
}

void ccm_gguf_free(struct ccm_gguf *g)
{
	struct chunk *c, *next;
	size_t i;

	if (!g)
		return;
	for (c = g->arena; c; c = next) {
		next = c->next;
		free(c);
	}
	for (i = 0; i < g->n_blocks; i++)
		free(g->blocks[i]);
	free(g->blocks);
	free(g->kvs);
	free(g->tensors);
	free(g->kv_hash);
	free(g->t_hash);
	free(g);
}

/* ---- reading ----------------------------------------------------------------------------------------------- */

/* Make bytes [0, end) available (end <= size, checked by the caller). */
static int src_ensure(struct parser *p, uint64_t end)
{
	struct src *s = &p->src;
	size_t cap, got;
	uint8_t *nb;

	if (end <= s->avail)
		return 0;
	if (s->fd < 0)
		return fail(p, -EBADMSG, UINT64_MAX,
		            "the header runs past the %zu bytes given (needs %" PRIu64 " of a %" PRIu64 "-byte file)",
		            s->avail, end, s->size);
	if (end > MAX_HEADER_BYTES)
		return fail(p, -EFBIG, s->avail, "the header is bigger than the %" PRIu64 " bytes supported",
		            MAX_HEADER_BYTES);
	cap = s->cap ? s->cap : FIRST_READ;
	while (cap < end)
		cap *= 2;
	if (cap > s->size)
		cap = (size_t)s->size;
	if (cap > s->cap) {
		nb = realloc(s->own, cap);
		if (!nb)
			return fail(p, -ENOMEM, UINT64_MAX, "out of memory reading %zu header bytes", cap);
		s->own = nb;
		s->buf = nb;
		s->cap = cap;
	}
	got = s->avail;
	while (got < cap) {
		ssize_t r = pread(s->fd, s->own + got, cap - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			return fail(p, -e, got, "read: %s", strerror(e));
		}
		if (r == 0)
			return fail(p, -EIO, got, "read: the file shrank while being read (expected %" PRIu64 " bytes)",
			            s->size);
		got += (size_t)r;
	}
	s->avail = got;
	return 0;
}

static uint64_t left(const struct parser *p)
{
	return p->src.size - p->pos;
}

/* n bytes of field `what` at the current position, or a message naming it. */
static int need(struct parser *p, uint64_t n, const char *what)
{
	if (n > left(p))
		return fail(p, -EBADMSG, p->pos,
		            "%s (%" PRIu64 " bytes) runs past the end of the file (%" PRIu64 " bytes)", what, n,
		            p->src.size);
	return src_ensure(p, p->pos + n);
}

static uint64_t le(const uint8_t *b, int n)
{
	uint64_t v = 0;
	int i;

	for (i = n - 1; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

static int rd_u32(struct parser *p, uint32_t *v, const char *what)
{
	int rc = need(p, 4, what);
	if (rc)
		return rc;
	*v = (uint32_t)le(p->src.buf + p->pos, 4);
	p->pos += 4;
	return 0;
}

static int rd_u64(struct parser *p, uint64_t *v, const char *what)
{
	int rc = need(p, 8, what);
	if (rc)
		return rc;
	*v = le(p->src.buf + p->pos, 8);
	p->pos += 8;
	return 0;
}

/* A GGUF string: u64 length + bytes, copied NUL-terminated into the arena. */
static int rd_str(struct parser *p, struct ccm_str *out, const char *what)
{
	uint64_t start = p->pos, len;
	char *s;
	int rc;

	if (left(p) < 8)
		return fail(p, -EBADMSG, p->pos,
		            "%s length (8 bytes) runs past the end of the file (%" PRIu64 " bytes)", what, p->src.size);
	rc = src_ensure(p, p->pos + 8);
	if (rc)
		return rc;
	len = le(p->src.buf + p->pos, 8);
	p->pos += 8;
	if (len > left(p))
		return fail(p, -EBADMSG, start,
		            "%s length %" PRIu64 " runs past the end of the file (%" PRIu64 " bytes left of %" PRIu64
		            ")",
		            what, len, left(p), p->src.size);
	rc = src_ensure(p, p->pos + len);
	if (rc)
		return rc;
	s = arena_alloc(p->g, (size_t)len + 1);
	if (!s)
		return fail(p, -ENOMEM, start, "out of memory for a %s of %" PRIu64 " bytes", what, len);
	memcpy(s, p->src.buf + p->pos, (size_t)len);
	s[len] = 0;
	out->s = s;
	out->len = (size_t)len;
	p->pos += len;
	return 0;
}

static const char *const vtype_names[CCM_VTYPE_COUNT] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                                         "bool", "string", "array", "u64", "i64", "f64"};
static const uint8_t vtype_size[CCM_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *ccm_vtype_name(enum ccm_vtype t)
{
	return (unsigned)t < CCM_VTYPE_COUNT ? vtype_names[t] : NULL;
}

/* A scalar of numeric/bool type t (already checked to be in the buffer) into kv->v. */
static int scalar(struct parser *p, enum ccm_vtype t, const uint8_t *b, struct ccm_kv *kv)
{
	uint64_t raw = le(b, vtype_size[t]);
	union {
		uint32_t u;
		float f;
	} f32;
	union {
		uint64_t u;
		double f;
	} f64;

	switch (t) {
	case CCM_U8:
	case CCM_U16:
	case CCM_U32:
	case CCM_U64:
		kv->v.u = raw;
		break;
	case CCM_I8:
		kv->v.i = (int8_t)raw;
		break;
	case CCM_I16:
		kv->v.i = (int16_t)raw;
		break;
	case CCM_I32:
		kv->v.i = (int32_t)raw;
		break;
	case CCM_I64:
		kv->v.i = (int64_t)raw;
		break;
	case CCM_F32:
		f32.u = (uint32_t)raw;
		kv->v.f = f32.f;
		break;
	case CCM_F64:
		f64.u = raw;
		kv->v.f = f64.f;
		break;
	case CCM_BOOL:
		if (raw > 1)
			return fail(p, -EBADMSG, (uint64_t)(b - p->src.buf), "bool value %u (must be 0 or 1)",
			            (unsigned)raw);
		kv->v.b = (int)raw;
		break;
	default:
		return -EINVAL;
	}
	return 0;
}

static int is_big_endian(void)
{
	const uint16_t one = 1;
	return *(const uint8_t *)&one == 0;
}

static int rd_array(struct parser *p, struct ccm_kv *kv)
{
	uint64_t start = p->pos, n, i, bytes;
	uint32_t et;
	size_t es;
	int rc;

	rc = rd_u32(p, &et, "array element type");
	if (rc)
		return rc;
	if (et == CCM_ARRAY)
		return fail(p, -EBADMSG, start, "nested array (an array of arrays) is not supported");
	if (et >= CCM_VTYPE_COUNT)
		return fail(p, -EBADMSG, start, "unknown array element type %" PRIu32 " (valid: 0..12)", et);
	rc = rd_u64(p, &n, "array count");
	if (rc)
		return rc;
	kv->v.arr.type = (enum ccm_vtype)et;
	kv->v.arr.n = n;
	kv->v.arr.data = NULL;
	if (et == CCM_STRING) {
		struct ccm_str *a = NULL;
		size_t cap = 0;

		/* each string takes at least its 8-byte length */
		if (n > left(p) / 8)
			return fail(p, -EBADMSG, start + 4,
			            "array count %" PRIu64 " of strings runs past the end of the file (%" PRIu64
			            " bytes left hold at most %" PRIu64 ")",
			            n, left(p), left(p) / 8);
		/* grows with the strings actually read, so a lying count costs no memory */
		for (i = 0; i < n; i++) {
			if (i == cap) {
				size_t ncap = cap ? 2 * cap : (n < 1024 ? (size_t)n : 1024);
				struct ccm_str *na;
				if (ncap > n)
					ncap = (size_t)n;
				na = realloc(a, ncap * sizeof(*a));
				if (!na) {
					free(a);
					return fail(p, -ENOMEM, p->pos, "out of memory for a string array of %" PRIu64,
					            n);
				}
				a = na;
				cap = ncap;
			}
			rc = rd_str(p, &a[i], "array string");
			if (rc) {
				size_t l = strlen(p->err ? p->err : "");
				if (p->err && l + 32 < p->errlen)
					snprintf(p->err + l, p->errlen - l, " (element %" PRIu64 ")", i);
				free(a);
				return rc;
			}
		}
		if (a && add_block(p->g, a)) {
			free(a);
			return fail(p, -ENOMEM, start, "out of memory");
		}
		kv->v.arr.data = a;
		return 0;
	}
	es = vtype_size[et];
	if (n > left(p) / es)
		return fail(p, -EBADMSG, start + 4,
		            "array count %" PRIu64 " of %s (%zu bytes each) runs past the end of the file (%" PRIu64
		            " bytes left)",
		            n, vtype_names[et], es, left(p));
	bytes = n * es;
	rc = src_ensure(p, p->pos + bytes);
	if (rc)
		return rc;
	if (n) {
		uint8_t *d = arena_alloc(p->g, (size_t)bytes);
		if (!d)
			return fail(p, -ENOMEM, start, "out of memory for an array of %" PRIu64 " bytes", bytes);
		memcpy(d, p->src.buf + p->pos, (size_t)bytes);
		if (et == CCM_BOOL) {
			for (i = 0; i < n; i++)
				if (d[i] > 1)
					return fail(p, -EBADMSG, p->pos + i,
					            "bool array element %" PRIu64 " is %u (must be 0 or 1)", i, d[i]);
		}
		if (es > 1 && is_big_endian()) {
			for (i = 0; i < n; i++) {
				uint8_t *e = d + i * es;
				size_t j;
				for (j = 0; j < es / 2; j++) {
					uint8_t t = e[j];
					e[j] = e[es - 1 - j];
					e[es - 1 - j] = t;
				}
			}
		}
		kv->v.arr.data = d;
	}
	p->pos += bytes;
	return 0;
}

static int rd_value(struct parser *p, struct ccm_kv *kv)
{
	uint64_t start = p->pos;
	uint32_t t;
	int rc;

	rc = rd_u32(p, &t, "value type");
	if (rc)
		return rc;
	if (t >= CCM_VTYPE_COUNT)
		return fail(p, -EBADMSG, start, "unknown value type %" PRIu32 " (valid: 0..12)", t);
	kv->type = (enum ccm_vtype)t;
	if (t == CCM_STRING)
		return rd_str(p, &kv->v.str, "string value");
	if (t == CCM_ARRAY)
		return rd_array(p, kv);
	rc = need(p, vtype_size[t], vtype_names[t]);
	if (rc)
		return rc;
	rc = scalar(p, (enum ccm_vtype)t, p->src.buf + p->pos, kv);
	if (rc)
		return rc;
	p->pos += vtype_size[t];
	return 0;
}

/* ---- lookup tables ----------------------------------------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

static const struct ccm_str *kv_name(const struct ccm_gguf *g, size_t i)
{
	return &g->kvs[i].key;
}

static const struct ccm_str *t_name(const struct ccm_gguf *g, size_t i)
{
	return &g->tensors[i].name;
}

static size_t hfind(const struct ccm_gguf *g, const size_t *slots, size_t mask,
                    const struct ccm_str *(*name)(const struct ccm_gguf *, size_t), const char *s, size_t len)
{
	size_t h;

	if (!slots)
		return 0;
	for (h = (size_t)hash_bytes(s, len) & mask; slots[h]; h = (h + 1) & mask) {
		const struct ccm_str *n = name(g, slots[h] - 1);
		if (n->len == len && !memcmp(n->s, s, len))
			return slots[h];
	}
	return 0;
}

/* Open addressing; slots hold index + 1, grown at half load; name(g, i) is entry i's name. Insert entry idx (count
 * entries are in the table after this one). */
static int hinsert(struct ccm_gguf *g, size_t **slots, size_t *mask,
                   const struct ccm_str *(*name)(const struct ccm_gguf *, size_t), size_t idx, size_t count)
{
	const struct ccm_str *n;
	size_t h;

	if (!*slots || count * 2 > *mask + 1) {
		size_t cap = *slots ? 2 * (*mask + 1) : 64, i;
		size_t *ns;

		while (count * 2 > cap)
			cap *= 2;
		ns = calloc(cap, sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		for (i = 0; *slots && i <= *mask; i++) {
			if (!(*slots)[i])
				continue;
			n = name(g, (*slots)[i] - 1);
			for (h = (size_t)hash_bytes(n->s, n->len) & (cap - 1); ns[h]; h = (h + 1) & (cap - 1))
				;
			ns[h] = (*slots)[i];
		}
		free(*slots);
		*slots = ns;
		*mask = cap - 1;
	}
	n = name(g, idx);
	for (h = (size_t)hash_bytes(n->s, n->len) & *mask; (*slots)[h]; h = (h + 1) & *mask)
		;
	(*slots)[h] = idx + 1;
	return 0;
}

/* ---- the header -------------------------------------------------------------------------------------------- */

static const char *ggml_type_name(uint32_t t)
{
	/* ggml ids this library has no kernels for, to name them in messages */
	static const char *const names[] = {
	    [4] = "q4_2 (removed from ggml)",
	    [5] = "q4_3 (removed from ggml)",
	    [16] = "iq2_xxs",
	    [17] = "iq2_xs",
	    [18] = "iq3_xxs",
	    [19] = "iq1_s",
	    [20] = "iq4_nl",
	    [21] = "iq3_s",
	    [22] = "iq2_s",
	    [23] = "iq4_xs",
	    [24] = "i8",
	    [25] = "i16",
	    [26] = "i32",
	    [27] = "i64",
	    [28] = "f64",
	    [29] = "iq1_m",
	    [31] = "q4_0_4_4 (removed from ggml)",
	    [32] = "q4_0_4_8 (removed from ggml)",
	    [33] = "q4_0_8_8 (removed from ggml)",
	    [34] = "tq1_0",
	    [35] = "tq2_0",
	    [36] = "iq4_nl_4_4 (removed from ggml)",
	    [37] = "iq4_nl_4_8 (removed from ggml)",
	    [38] = "iq4_nl_8_8 (removed from ggml)",
	    [39] = "mxfp4",
	};
	const char *n = cck_type_name((int)t);

	if (t < sizeof(names) / sizeof(names[0]) && names[t])
		return names[t];
	return n ? n : "unknown";
}

static int rd_kvs(struct parser *p, uint64_t n_kv)
{
	struct ccm_gguf *g = p->g;
	uint64_t i;
	int rc;

	for (i = 0; i < n_kv; i++) {
		uint64_t start = p->pos;
		struct ccm_kv *kv;
		size_t dup;

		if (g->n_kv == g->cap_kv) {
			size_t cap = g->cap_kv ? 2 * g->cap_kv : 64;
			struct ccm_kv *nk;
			if (cap > n_kv)
				cap = (size_t)n_kv;
			nk = realloc(g->kvs, cap * sizeof(*nk));
			if (!nk)
				return fail(p, -ENOMEM, start, "out of memory");
			g->kvs = nk;
			g->cap_kv = cap;
		}
		kv = &g->kvs[g->n_kv];
		memset(kv, 0, sizeof(*kv));
		set_ctx(p, "kv", (size_t)i, NULL);
		rc = rd_str(p, &kv->key, "key");
		if (rc)
			return rc;
		set_ctx(p, "kv", (size_t)i, &kv->key);
		dup = hfind(g, g->kv_hash, g->kv_hmask, kv_name, kv->key.s, kv->key.len);
		if (dup)
			return fail(p, -EBADMSG, start, "duplicate key (first defined by kv %zu)", dup - 1);
		rc = rd_value(p, kv);
		if (rc)
			return rc;
		if (kv->key.len == 17 && !memcmp(kv->key.s, "general.alignment", 17))
			p->align_off = start;
		g->n_kv++;
		if (hinsert(g, &g->kv_hash, &g->kv_hmask, kv_name, g->n_kv - 1, g->n_kv))
			return fail(p, -ENOMEM, start, "out of memory");
	}
	p->ctx[0] = 0;
	return 0;
}

static int rd_alignment(struct parser *p)
{
	struct ccm_gguf *g = p->g;
	const struct ccm_kv *kv = ccm_gguf_find(g, "general.alignment");

	g->alignment = CCM_GGUF_DEFAULT_ALIGNMENT;
	if (!kv)
		return 0;
	if (kv->type != CCM_U32)
		return fail(p, -EBADMSG, p->align_off, "general.alignment (kv %zu) has type %s, must be u32",
		            (size_t)(kv - g->kvs), vtype_names[kv->type]);
	if (kv->v.u == 0 || (kv->v.u & (kv->v.u - 1)))
		return fail(p, -EBADMSG, p->align_off,
		            "general.alignment (kv %zu) is %" PRIu64 ", must be a non-zero power of two",
		            (size_t)(kv - g->kvs), kv->v.u);
	g->alignment = kv->v.u;
	return 0;
}

static int rd_tensor(struct parser *p, size_t i, struct ccm_tensor *t)
{
	uint64_t start = p->pos, dim_off, rows = 1, elems, type_off;
	uint32_t type;
	size_t be, bb, row_bytes;
	char what[32];
	unsigned d;
	int rc;

	memset(t, 0, sizeof(*t));
	t->info_offset = start;
	set_ctx(p, "tensor", i, NULL);
	rc = rd_str(p, &t->name, "name");
	if (rc)
		return rc;
	set_ctx(p, "tensor", i, &t->name);
	rc = rd_u32(p, &t->n_dims, "n_dims");
	if (rc)
		return rc;
	if (t->n_dims < 1 || t->n_dims > 4)
		return fail(p, -EBADMSG, p->pos - 4, "n_dims %" PRIu32 " (must be 1..4)", t->n_dims);
	dim_off = p->pos;
	for (d = 0; d < 4; d++)
		t->ne[d] = 1;
	for (d = 0; d < t->n_dims; d++) {
		snprintf(what, sizeof(what), "dimension %u", d);
		rc = rd_u64(p, &t->ne[d], what);
		if (rc)
			return rc;
		if (t->ne[d] == 0)
			return fail(p, -EBADMSG, p->pos - 8, "dimension %u is 0", d);
		if (t->ne[d] > (uint64_t)INT64_MAX)
			return fail(p, -EBADMSG, p->pos - 8, "dimension %u is %" PRIu64 " (more than INT64_MAX)", d,
			            t->ne[d]);
	}
	elems = t->ne[0];
	for (d = 1; d < 4; d++) {
		if (t->ne[d] > (uint64_t)INT64_MAX / elems)
			return fail(p, -EBADMSG, dim_off,
			            "element count overflows: %" PRIu64 " x %" PRIu64 " x %" PRIu64 " x %" PRIu64,
			            t->ne[0], t->ne[1], t->ne[2], t->ne[3]);
		elems *= t->ne[d];
		rows *= t->ne[d];
	}
	type_off = p->pos;
	rc = rd_u32(p, &type, "type");
	if (rc)
		return rc;
	if (type >= CCK_TYPE_COUNT || cck_type_block((int)type, &be, &bb))
		return fail(p, -EBADMSG, type_off, "unsupported tensor type %" PRIu32 " (%s)", type,
		            ggml_type_name(type));
	t->type = (int)type;
	if (t->ne[0] % be)
		return fail(p, -EBADMSG, dim_off,
		            "dimension 0 (%" PRIu64 ") is not a multiple of the block size %zu of %s", t->ne[0], be,
		            cck_type_name(t->type));
	rc = cck_type_row_bytes(t->type, (size_t)t->ne[0], &row_bytes);
	if (rc || (row_bytes && rows > UINT64_MAX / row_bytes))
		return fail(p, -EBADMSG, dim_off, "byte size of %" PRIu64 " rows of %" PRIu64 " %s overflows", rows,
		            t->ne[0], cck_type_name(t->type));
	t->nbytes = rows * row_bytes;
	rc = rd_u64(p, &t->offset, "offset");
	if (rc)
		return rc;
	if (t->offset % p->g->alignment)
		return fail(p, -EBADMSG, p->pos - 8,
		            "data offset %" PRIu64 " is not a multiple of the alignment %" PRIu64, t->offset,
		            p->g->alignment);
	if (t->offset > UINT64_MAX - t->nbytes)
		return fail(p, -EBADMSG, p->pos - 8, "data [offset %" PRIu64 " + %" PRIu64 " bytes] overflows",
		            t->offset, t->nbytes);
	return 0;
}

struct span {
	uint64_t off;
	size_t idx;
};

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int check_layout(struct parser *p)
{
	struct ccm_gguf *g = p->g;
	uint64_t size = p->src.size, room;
	struct span *sp;
	char q1[300], q2[300];
	size_t i;

	g->header_size = p->pos;
	g->data_offset = (p->pos + g->alignment - 1) / g->alignment * g->alignment;
	g->data_size = 0;
	if (!g->n_tensors)
		return 0;
	if (g->data_offset > size)
		return fail(p, -EBADMSG, UINT64_MAX,
		            "the data section starts at offset %" PRIu64 ", past the end of the file (%" PRIu64
		            " bytes)",
		            g->data_offset, size);
	room = size - g->data_offset;
	for (i = 0; i < g->n_tensors; i++) {
		const struct ccm_tensor *t = &g->tensors[i];
		if (t->offset > room || t->nbytes > room - t->offset) {
			quote_name(q1, sizeof(q1), t->name.s, t->name.len);
			return fail(p, -EBADMSG, UINT64_MAX,
			            "tensor %zu ('%s'): data [offset %" PRIu64 " + %" PRIu64
			            " bytes] ends past the end of the file (%" PRIu64 " bytes, data section at %" PRIu64
			            ") at header offset %" PRIu64,
			            i, q1, t->offset, t->nbytes, size, g->data_offset, t->info_offset);
		}
		if (t->offset + t->nbytes > g->data_size)
			g->data_size = t->offset + t->nbytes;
	}
	sp = malloc(g->n_tensors * sizeof(*sp));
	if (!sp)
		return fail(p, -ENOMEM, UINT64_MAX, "out of memory");
	for (i = 0; i < g->n_tensors; i++) {
		sp[i].off = g->tensors[i].offset;
		sp[i].idx = i;
	}
	qsort(sp, g->n_tensors, sizeof(*sp), span_cmp);
	for (i = 1; i < g->n_tensors; i++) {
		const struct ccm_tensor *a = &g->tensors[sp[i - 1].idx], *b = &g->tensors[sp[i].idx];
		if (a->offset + a->nbytes > b->offset) {
			size_t ia = sp[i - 1].idx, ib = sp[i].idx;
			free(sp);
			quote_name(q1, sizeof(q1), a->name.s, a->name.len);
			quote_name(q2, sizeof(q2), b->name.s, b->name.len);
			return fail(p, -EBADMSG, UINT64_MAX,
			            "tensor %zu ('%s') data [offset %" PRIu64 " + %" PRIu64
			            " bytes] overlaps tensor %zu ('%s') "
			            "data [offset %" PRIu64 " + %" PRIu64 " bytes] (header offsets %" PRIu64
			            " and %" PRIu64 ")",
			            ib, q2, b->offset, b->nbytes, ia, q1, a->offset, a->nbytes, b->info_offset,
			            a->info_offset);
		}
	}
	free(sp);
	return 0;
}

static int rd_header(struct parser *p)
{
	struct ccm_gguf *g = p->g;
	uint64_t n_tensors, n_kv, i;
	uint32_t version;
	int rc;

	rc = need(p, 4, "magic");
	if (rc)
		return rc;
	if (memcmp(p->src.buf, "GGUF", 4)) {
		char q[64];
		quote_name(q, sizeof(q), (const char *)p->src.buf, 4);
		return fail(p, -EBADMSG, 0, "bad magic '%s' (not a GGUF file: expected 'GGUF')", q);
	}
	p->pos = 4;
	rc = rd_u32(p, &version, "version");
	if (rc)
		return rc;
	if (version == 1)
		return fail(p, -EBADMSG, 4,
		            "GGUF v1 is not supported (32-bit counts; convert it with a current llama.cpp)");
	if (version != 2 && version != 3) {
		uint32_t sw = __builtin_bswap32(version);
		if (sw >= 1 && sw <= 3)
			return fail(p, -EBADMSG, 4,
			            "version field 0x%08" PRIx32 " is byte-swapped: big-endian GGUF (v%" PRIu32
			            ") is not supported",
			            version, sw);
		return fail(p, -EBADMSG, 4, "unsupported GGUF version %" PRIu32 " (2 and 3 are supported)", version);
	}
	g->version = version;
	rc = rd_u64(p, &n_tensors, "tensor count");
	if (rc)
		return rc;
	rc = rd_u64(p, &n_kv, "kv count");
	if (rc)
		return rc;
	if (n_kv > left(p) / MIN_KV_BYTES)
		return fail(p, -EBADMSG, 16,
		            "kv count %" PRIu64 " runs past the end of the file (the %" PRIu64
		            " bytes left hold at most %" PRIu64 " kvs)",
		            n_kv, left(p), left(p) / MIN_KV_BYTES);
	if (n_tensors > left(p) / MIN_TENSOR_BYTES || n_kv * MIN_KV_BYTES > left(p) - n_tensors * MIN_TENSOR_BYTES)
		return fail(p, -EBADMSG, 8,
		            "tensor count %" PRIu64 " (with %" PRIu64 " kvs) runs past the end of the file (%" PRIu64
		            " bytes left)",
		            n_tensors, n_kv, left(p));
	rc = rd_kvs(p, n_kv);
	if (rc)
		return rc;
	rc = rd_alignment(p);
	if (rc)
		return rc;
	if (n_tensors > left(p) / MIN_TENSOR_BYTES)
		return fail(p, -EBADMSG, 8,
		            "tensor count %" PRIu64 " runs past the end of the file (%" PRIu64
		            " bytes left after the kvs hold at most %" PRIu64 " tensor infos)",
		            n_tensors, left(p), left(p) / MIN_TENSOR_BYTES);
	for (i = 0; i < n_tensors; i++) {
		struct ccm_tensor *t;
		size_t dup;

		if (g->n_tensors == g->cap_tensors) {
			size_t cap = g->cap_tensors ? 2 * g->cap_tensors : 64;
			struct ccm_tensor *nt;
			if (cap > n_tensors)
				cap = (size_t)n_tensors;
			nt = realloc(g->tensors, cap * sizeof(*nt));
			if (!nt)
				return fail(p, -ENOMEM, p->pos, "out of memory");
			g->tensors = nt;
			g->cap_tensors = cap;
		}
		t = &g->tensors[g->n_tensors];
		rc = rd_tensor(p, (size_t)i, t);
		if (rc)
			return rc;
		dup = hfind(g, g->t_hash, g->t_hmask, t_name, t->name.s, t->name.len);
		if (dup)
			return fail(p, -EBADMSG, t->info_offset, "duplicate tensor name (first used by tensor %zu)",
			            dup - 1);
		g->n_tensors++;
		if (hinsert(g, &g->t_hash, &g->t_hmask, t_name, g->n_tensors - 1, g->n_tensors))
			return fail(p, -ENOMEM, t->info_offset, "out of memory");
	}
	p->ctx[0] = 0;
	return check_layout(p);
}

static int parse(struct src *s, struct ccm_gguf **ret, char *err, size_t errlen)
{
	struct parser p;
	int rc;

	*ret = NULL;
	memset(&p, 0, sizeof(p));
	p.src = *s;
	p.err = err;
	p.errlen = errlen;
	if (err && errlen)
		err[0] = 0;
	p.g = calloc(1, sizeof(*p.g));
	if (!p.g)
		return fail(&p, -ENOMEM, UINT64_MAX, "out of memory");
	p.g->file_size = s->size;
	rc = rd_header(&p);
	*s = p.src; /* the fd buffer may have moved */
	if (rc) {
		ccm_gguf_free(p.g);
		return rc;
	}
	*ret = p.g;
	return 0;
}

int ccm_gguf_parse_prefix(const void *buf, size_t len, uint64_t file_size, struct ccm_gguf **ret, char *err,
                          size_t errlen)
{
	struct src s = {.buf = buf, .avail = len, .size = file_size, .fd = -1};

	if (!ret || (!buf && len) || len > file_size) {
		if (ret)
			*ret = NULL;
		if (err && errlen)
			snprintf(err, errlen, "invalid arguments");
		return -EINVAL;
	}
	return parse(&s, ret, err, errlen);
}

int ccm_gguf_parse(const void *buf, size_t len, struct ccm_gguf **ret, char *err, size_t errlen)
{
	return ccm_gguf_parse_prefix(buf, len, len, ret, err, errlen);
}

int ccm_gguf_open_fd(int fd, struct ccm_gguf **ret, char *err, size_t errlen)
{
	struct src s = {.fd = fd};
	struct stat st;
	int rc;

	if (!ret || fd < 0) {
		if (ret)
			*ret = NULL;
		if (err && errlen)
			snprintf(err, errlen, "invalid arguments");
		return -EINVAL;
	}
	*ret = NULL;
	if (fstat(fd, &st)) {
		rc = -errno;
		if (err && errlen)
			snprintf(err, errlen, "fstat: %s", strerror(-rc));
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		if (err && errlen)
			snprintf(err, errlen, "not a regular file");
		return -EINVAL;
	}
	s.size = (uint64_t)st.st_size;
	rc = parse(&s, ret, err, errlen);
	free(s.own);
	return rc;
}

int ccm_gguf_open(const char *path, struct ccm_gguf **ret, char *err, size_t errlen)
{
	int fd, rc;

	if (!path || !ret) {
		if (ret)
			*ret = NULL;
		if (err && errlen)
			snprintf(err, errlen, "invalid arguments");
		return -EINVAL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		*ret = NULL;
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	rc = ccm_gguf_open_fd(fd, ret, err, errlen);
	close(fd);
	return rc;
}

/* ---- accessors --------------------------------------------------------------------------------------------- */

uint32_t ccm_gguf_version(const struct ccm_gguf *g)
{
	return g->version;
}

uint64_t ccm_gguf_alignment(const struct ccm_gguf *g)
{
	return g->alignment;
}

uint64_t ccm_gguf_data_offset(const struct ccm_gguf *g)
{
	return g->data_offset;
}

uint64_t ccm_gguf_data_size(const struct ccm_gguf *g)
{
	return g->data_size;
}

uint64_t ccm_gguf_file_size(const struct ccm_gguf *g)
{
	return g->file_size;
}

uint64_t ccm_gguf_header_size(const struct ccm_gguf *g)
{
	return g->header_size;
}

size_t ccm_gguf_kv_count(const struct ccm_gguf *g)
{
	return g->n_kv;
}

const struct ccm_kv *ccm_gguf_kv(const struct ccm_gguf *g, size_t i)
{
	return i < g->n_kv ? &g->kvs[i] : NULL;
}

const struct ccm_kv *ccm_gguf_find(const struct ccm_gguf *g, const char *key)
{
	size_t i;

	if (!key)
		return NULL;
	i = hfind(g, g->kv_hash, g->kv_hmask, kv_name, key, strlen(key));
	return i ? &g->kvs[i - 1] : NULL;
}

size_t ccm_gguf_tensor_count(const struct ccm_gguf *g)
{
	return g->n_tensors;
}

const struct ccm_tensor *ccm_gguf_tensor(const struct ccm_gguf *g, size_t i)
{
	return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const struct ccm_tensor *ccm_gguf_find_tensor(const struct ccm_gguf *g, const char *name)
{
	size_t i;

	if (!name)
		return NULL;
	i = hfind(g, g->t_hash, g->t_hmask, t_name, name, strlen(name));
	return i ? &g->tensors[i - 1] : NULL;
}

static int is_int(enum ccm_vtype t)
{
	return t == CCM_U8 || t == CCM_U16 || t == CCM_U32 || t == CCM_U64 || t == CCM_I8 || t == CCM_I16 ||
	       t == CCM_I32 || t == CCM_I64;
}

static int is_unsigned(enum ccm_vtype t)
{
	return t == CCM_U8 || t == CCM_U16 || t == CCM_U32 || t == CCM_U64;
}

int ccm_gguf_get_u64(const struct ccm_gguf *g, const char *key, uint64_t *ret)
{
	const struct ccm_kv *kv = ccm_gguf_find(g, key);

	if (!kv)
		return -ENOENT;
	if (!is_int(kv->type))
		return -EINVAL;
	if (!is_unsigned(kv->type) && kv->v.i < 0)
		return -ERANGE;
	*ret = kv->v.u;
	return 0;
}

int ccm_gguf_get_i64(const struct ccm_gguf *g, const char *key, int64_t *ret)
{
	const struct ccm_kv *kv = ccm_gguf_find(g, key);

	if (!kv)
		return -ENOENT;
	if (!is_int(kv->type))
		return -EINVAL;
	if (is_unsigned(kv->type) && kv->v.u > (uint64_t)INT64_MAX)
		return -ERANGE;
	*ret = is_unsigned(kv->type) ? (int64_t)kv->v.u : kv->v.i;
	return 0;
}

int ccm_gguf_get_f64(const struct ccm_gguf *g, const char *key, double *ret)
{
	const struct ccm_kv *kv = ccm_gguf_find(g, key);

	if (!kv)
		return -ENOENT;
	if (kv->type == CCM_F32 || kv->type == CCM_F64)
		*ret = kv->v.f;
	else if (is_unsigned(kv->type))
		*ret = (double)kv->v.u;
	else if (is_int(kv->type))
		*ret = (double)kv->v.i;
	else
		return -EINVAL;
	return 0;
}

int ccm_gguf_get_str(const struct ccm_gguf *g, const char *key, struct ccm_str *ret)
{
	const struct ccm_kv *kv = ccm_gguf_find(g, key);

	if (!kv)
		return -ENOENT;
	if (kv->type != CCM_STRING)
		return -EINVAL;
	*ret = kv->v.str;
	return 0;
}

int ccm_gguf_get_bool(const struct ccm_gguf *g, const char *key, int *ret)
{
	const struct ccm_kv *kv = ccm_gguf_find(g, key);

	if (!kv)
		return -ENOENT;
	if (kv->type != CCM_BOOL)
		return -EINVAL;
	*ret = kv->v.b;
	return 0;
}

int ccm_gguf_get_array(const struct ccm_gguf *g, const char *key, enum ccm_vtype elem, const struct ccm_kv **ret)
{
	const struct ccm_kv *kv = ccm_gguf_find(g, key);

	if (!kv)
		return -ENOENT;
	if (kv->type != CCM_ARRAY || kv->v.arr.type != elem)
		return -EINVAL;
	*ret = kv;
	return 0;
}

/* ---- JSON -------------------------------------------------------------------------------------------------- */

struct jbuf {
	char *s;
	size_t len, cap;
	int oom;
};

static void jreserve(struct jbuf *j, size_t n)
{
	size_t cap;
	char *ns;

	if (j->oom || j->len + n < j->cap)
		return;
	cap = j->cap ? j->cap : 4096;
	while (cap <= j->len + n)
		cap *= 2;
	ns = realloc(j->s, cap);
	if (!ns) {
		j->oom = 1;
		return;
	}
	j->s = ns;
	j->cap = cap;
}

static void jput(struct jbuf *j, const char *s, size_t n)
{
	jreserve(j, n);
	if (j->oom)
		return;
	memcpy(j->s + j->len, s, n);
	j->len += n;
	j->s[j->len] = 0;
}

static void jcat(struct jbuf *j, const char *s)
{
	jput(j, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void jprintf(struct jbuf *j, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		jput(j, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Length of a well-formed UTF-8 sequence at s (1..4), or 0 with *bad set to the bytes of the maximal ill-formed
 * prefix (one U+FFFD replaces them, as Unicode recommends and Python's 'replace' does). */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t need, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 1;
	else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		*bad = 1;
		return 0;
	}
	for (i = 1; i <= need; i++) {
		unsigned char x;
		if (i >= n) {
			*bad = i;
			return 0;
		}
		x = s[i];
		if (x < lo || x > hi) {
			*bad = i;
			return 0;
		}
		lo = 0x80;
		hi = 0xbf;
	}
	return need + 1;
}

static void jstr(struct jbuf *j, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run = 0;

	jreserve(j, len + 2);
	jput(j, "\"", 1);
	while (i < len) {
		unsigned char c = s[i];
		size_t n, bad = 0;
		char esc[8];

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			/* copy runs of plain ASCII at once */
			for (run = i + 1;
			     run < len && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\'; run++)
				;
			jput(j, str + i, run - i);
			i = run;
			continue;
		}
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			jput(j, esc, 2);
			i++;
			continue;
		}
		if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			jput(j, esc, 6);
			i++;
			continue;
		}
		n = utf8_seq(s + i, len - i, &bad);
		if (n) {
			jput(j, str + i, n);
			i += n;
		} else {
			jput(j, "\xef\xbf\xbd", 3);
			i += bad;
		}
	}
	jput(j, "\"", 1);
}

static void jfloat(struct jbuf *j, double v, int f32)
{
	if (!isfinite(v))
		jcat(j, "null");
	else if (f32)
		jprintf(j, "%.9g", v);
	else
		jprintf(j, "%.17g", v);
}

static void jelem(struct jbuf *j, enum ccm_vtype t, const void *data, uint64_t i)
{
	switch (t) {
	case CCM_U8:
		jprintf(j, "%u", ((const uint8_t *)data)[i]);
		break;
	case CCM_I8:
		jprintf(j, "%d", ((const int8_t *)data)[i]);
		break;
	case CCM_U16:
		jprintf(j, "%u", ((const uint16_t *)data)[i]);
		break;
	case CCM_I16:
		jprintf(j, "%d", ((const int16_t *)data)[i]);
		break;
	case CCM_U32:
		jprintf(j, "%" PRIu32, ((const uint32_t *)data)[i]);
		break;
	case CCM_I32:
		jprintf(j, "%" PRId32, ((const int32_t *)data)[i]);
		break;
	case CCM_U64:
		jprintf(j, "%" PRIu64, ((const uint64_t *)data)[i]);
		break;
	case CCM_I64:
		jprintf(j, "%" PRId64, ((const int64_t *)data)[i]);
		break;
	case CCM_F32:
		jfloat(j, ((const float *)data)[i], 1);
		break;
	case CCM_F64:
		jfloat(j, ((const double *)data)[i], 0);
		break;
	case CCM_BOOL:
		jcat(j, ((const int8_t *)data)[i] ? "true" : "false");
		break;
	case CCM_STRING:
		jstr(j, ((const struct ccm_str *)data)[i].s, ((const struct ccm_str *)data)[i].len);
		break;
	default:
		jcat(j, "null");
		break;
	}
}

static void jvalue(struct jbuf *j, const struct ccm_kv *kv, size_t max_array)
{
	uint64_t i;

	switch (kv->type) {
	case CCM_U8:
	case CCM_U16:
	case CCM_U32:
	case CCM_U64:
		jprintf(j, "%" PRIu64, kv->v.u);
		break;
	case CCM_I8:
	case CCM_I16:
	case CCM_I32:
	case CCM_I64:
		jprintf(j, "%" PRId64, kv->v.i);
		break;
	case CCM_F32:
		jfloat(j, kv->v.f, 1);
		break;
	case CCM_F64:
		jfloat(j, kv->v.f, 0);
		break;
	case CCM_BOOL:
		jcat(j, kv->v.b ? "true" : "false");
		break;
	case CCM_STRING:
		jstr(j, kv->v.str.s, kv->v.str.len);
		break;
	case CCM_ARRAY:
		if (kv->v.arr.n > max_array) {
			jprintf(j, "{\"array\":\"%s\",\"count\":%" PRIu64 "}", vtype_names[kv->v.arr.type],
			        kv->v.arr.n);
			break;
		}
		jcat(j, "[");
		for (i = 0; i < kv->v.arr.n && !j->oom; i++) {
			if (i)
				jcat(j, ",");
			jelem(j, kv->v.arr.type, kv->v.arr.data, i);
		}
		jcat(j, "]");
		break;
	}
}

char *ccm_gguf_json(const struct ccm_gguf *g, size_t max_array)
{
	struct jbuf j = {0};
	size_t counts[CCK_TYPE_COUNT] = {0}, i, k, ntypes = 0;
	int order[CCK_TYPE_COUNT];

	jprintf(&j, "{\"version\":%" PRIu32 ",\"alignment\":%" PRIu64, g->version, g->alignment);
	jprintf(&j, ",\"data_offset\":%" PRIu64, g->data_offset);
	jprintf(&j, ",\"data_size\":%" PRIu64, g->data_size);
	jprintf(&j, ",\"file_size\":%" PRIu64, g->file_size);
	jprintf(&j, ",\"kv_count\":%zu,\"tensor_count\":%zu,\"metadata\":{", g->n_kv, g->n_tensors);
	for (i = 0; i < g->n_kv && !j.oom; i++) {
		if (i)
			jcat(&j, ",");
		jstr(&j, g->kvs[i].key.s, g->kvs[i].key.len);
		jcat(&j, ":");
		jvalue(&j, &g->kvs[i], max_array);
	}
	jcat(&j, "},\"tensor_types\":{");
	for (i = 0; i < g->n_tensors; i++)
		counts[g->tensors[i].type]++;
	for (k = 0; k < CCK_TYPE_COUNT; k++)
		if (counts[k])
			order[ntypes++] = (int)k;
	/* most frequent first, then by type id (insertion sort: at most a few entries) */
	for (i = 1; i < ntypes; i++) {
		int t = order[i];
		for (k = i; k > 0 && counts[order[k - 1]] < counts[t]; k--)
			order[k] = order[k - 1];
		order[k] = t;
	}
	for (i = 0; i < ntypes; i++) {
		const char *n = cck_type_name(order[i]);
		if (i)
			jcat(&j, ",");
		if (n)
			jstr(&j, n, strlen(n));
		else
			jprintf(&j, "\"type%d\"", order[i]);
		jprintf(&j, ":%zu", counts[order[i]]);
	}
	jcat(&j, "},\"tensors\":[");
	for (i = 0; i < g->n_tensors && !j.oom; i++) {
		const struct ccm_tensor *t = &g->tensors[i];
		const char *n = cck_type_name(t->type);
		uint32_t d;

		jcat(&j, i ? ",{\"name\":" : "{\"name\":");
		jstr(&j, t->name.s, t->name.len);
		jcat(&j, ",\"type\":");
		if (n)
			jstr(&j, n, strlen(n));
		else
			jprintf(&j, "\"type%d\"", t->type);
		jcat(&j, ",\"shape\":[");
		for (d = 0; d < t->n_dims; d++)
			jprintf(&j, d ? ",%" PRIu64 : "%" PRIu64, t->ne[d]);
		jprintf(&j, "],\"offset\":%" PRIu64, t->offset);
		jprintf(&j, ",\"bytes\":%" PRIu64 "}", t->nbytes);
	}
	jcat(&j, "]}");
	if (j.oom) {
		free(j.s);
		return NULL;
	}
	return j.s;
}
