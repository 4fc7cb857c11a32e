/* SPDX-License-Identifier: MIT */
/* admin.c: cc_admin_json, the daemon's status / clients / kernels / models / sessions replies as JSON for ccctl. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcc-internal.h"

/* A growing string; the first failure sticks in err and later appends do nothing. */
struct sb {
	char *buf;
	size_t len;
	size_t cap;
	int err;
};

static int sb_reserve(struct sb *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->err)
		return b->err;
	if (more < b->cap - b->len)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap - b->len <= more) {
		if (cap > SIZE_MAX / 2) {
			b->err = -ENOMEM;
			return b->err;
		}
		cap *= 2;
	}
	p = realloc(b->buf, cap);
	if (!p) {
		b->err = -ENOMEM;
		return b->err;
	}
	b->buf = p;
	b->cap = cap;
	return 0;
}

static void sb_add(struct sb *b, const char *s, size_t n)
{
	if (sb_reserve(b, n) < 0)
		return;
	memcpy(b->buf + b->len, s, n);
	b->len += n;
	b->buf[b->len] = '\0';
}

static void sb_puts(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sb *b, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	/* only numbers go through here: they always fit */
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		b->err = b->err ? b->err : -EOVERFLOW;
		return;
	}
	sb_add(b, tmp, (size_t)n);
}

/* Length of the valid UTF-8 sequence at s (at most left bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
	size_t n, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n > left)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates, past U+10FFFF */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

/* s as a JSON string: quotes, escapes, and U+FFFD for bytes that are not UTF-8 (names come from clients). */
static void sb_str(struct sb *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t left = strlen((const char *)p);

	sb_puts(b, "\"");
	while (left) {
		size_t n = utf8_len(p, left);

		if (n == 0) {
			sb_puts(b, "\\ufffd");
			n = 1;
		} else if (*p == '"') {
			sb_puts(b, "\\\"");
		} else if (*p == '\\') {
			sb_puts(b, "\\\\");
		} else if (*p == '\n') {
			sb_puts(b, "\\n");
		} else if (*p == '\t') {
			sb_puts(b, "\\t");
		} else if (*p == '\r') {
			sb_puts(b, "\\r");
		} else if (*p < 0x20 || *p == 0x7f) {
			sb_printf(b, "\\u%04x", *p);
		} else {
			sb_add(b, (const char *)p, n);
		}
		p += n;
		left -= n;
	}
	sb_puts(b, "\"");
}

static void sb_key(struct sb *b, const char *key, int first)
{
	if (!first)
		sb_puts(b, ",");
	sb_str(b, key);
	sb_puts(b, ":");
}

static void sb_double(struct sb *b, double v)
{
	if (isfinite(v))
		sb_printf(b, "%.3f", v);
	else
		sb_puts(b, "null");
}

static void model_json(struct sb *b, const Cc__ModelInfo *m);

/* One scalar value of a field (at p) as JSON. */
static void field_json(struct sb *b, const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		sb_printf(b, "%" PRId32, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		sb_printf(b, "%" PRIu32, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		sb_printf(b, "%" PRId64, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		sb_printf(b, "%" PRIu64, *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		sb_double(b, *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		sb_double(b, *(const float *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		sb_puts(b, *(const protobuf_c_boolean *)p ? "true" : "false");
		break;
	case PROTOBUF_C_TYPE_STRING:
		sb_str(b, *(char *const *)p);
		break;
	default:
		sb_puts(b, "null"); /* bytes and enums do not occur in the admin replies */
		break;
	}
}

static void message_json(struct sb *b, const ProtobufCMessage *m);

/* Bytes of one element of a repeated field of this type, as protobuf-c lays the array out. */
static size_t elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4; /* the 32-bit numbers, float, enum */
	}
}

/* A nested message: ModelInfo has its own form (gbps, seconds to the microsecond), the others are generic. */
static void nested_json(struct sb *b, const ProtobufCMessage *m)
{
	if (!m)
		sb_puts(b, "null");
	else if (m->descriptor == &cc__model_info__descriptor)
		model_json(b, (const Cc__ModelInfo *)m);
	else
		message_json(b, m);
}

/*
 * The fields of m numbered from min_id up, in the order of cc.proto, keys as named there (first: no comma before
 * the first one). The hand-made forms (kernels, ModelInfo) end with this, so fields added to cc.proto appear.
 */
static void fields_json(struct sb *b, const ProtobufCMessage *m, uint32_t min_id, int first)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const void *p = base + f->offset;

		if (f->id < min_id)
			continue;
		sb_key(b, f->name, first);
		first = 0;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset), sz = elem_size(f->type);

			sb_puts(b, "[");
			for (size_t k = 0; k < n; k++) {
				const char *e = *(const char *const *)p + k * sz;

				if (k)
					sb_puts(b, ",");
				if (f->type == PROTOBUF_C_TYPE_MESSAGE)
					nested_json(b, *(const ProtobufCMessage *const *)e);
				else
					field_json(b, f, e);
			}
			sb_puts(b, "]");
		} else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
			nested_json(b, *(const ProtobufCMessage *const *)p);
		} else {
			field_json(b, f, p);
		}
	}
}

/* Every field of m in the order of cc.proto, keys as named there: the admin replies as JSON. */
static void message_json(struct sb *b, const ProtobufCMessage *m)
{
	sb_puts(b, "{");
	fields_json(b, m, 0, 1);
	sb_puts(b, "}");
}

static void kernels_json(struct sb *b, const Cc__KernelsReply *k)
{
	size_t i;

	sb_puts(b, "{");
	sb_key(b, "tier", 1);
	sb_str(b, k->tier);
	sb_key(b, "tiers", 0);
	sb_puts(b, "[");
	for (i = 0; i < k->n_tiers; i++) {
		if (i)
			sb_puts(b, ",");
		sb_str(b, k->tiers[i]);
	}
	sb_puts(b, "]");
	sb_key(b, "ops", 0);
	sb_puts(b, "[");
	for (i = 0; i < k->n_ops; i++) {
		if (i)
			sb_puts(b, ",");
		sb_puts(b, "{");
		sb_key(b, "name", 1);
		sb_str(b, k->ops[i]);
		sb_key(b, "kind", 0);
		sb_str(b, i < k->n_kinds ? k->kinds[i] : "");
		sb_puts(b, "}");
	}
	sb_puts(b, "]");
	sb_key(b, "threads", 0);
	sb_printf(b, "%" PRIu32, k->threads);
	fields_json(b, &k->base, 6, 0); /* backend, opencl, devices, crossovers, ... */
	sb_puts(b, "}");
}

/* A model's facts; gbps = bytes / seconds of its load. */
static void model_json(struct sb *b, const Cc__ModelInfo *m)
{
	sb_puts(b, "{");
	sb_key(b, "name", 1);
	sb_str(b, m->name);
	sb_key(b, "path", 0);
	sb_str(b, m->path);
	sb_key(b, "state", 0);
	sb_str(b, m->state);
	sb_key(b, "arch", 0);
	sb_str(b, m->arch);
	sb_key(b, "params", 0);
	sb_printf(b, "%" PRIu64, m->params);
	sb_key(b, "tensors", 0);
	sb_printf(b, "%" PRIu32, m->tensors);
	sb_key(b, "bytes", 0);
	sb_printf(b, "%" PRIu64, m->bytes);
	sb_key(b, "loaded_bytes", 0);
	sb_printf(b, "%" PRIu64, m->loaded_bytes);
	sb_key(b, "file_bytes", 0);
	sb_printf(b, "%" PRIu64, m->file_bytes);
	sb_key(b, "mode", 0);
	sb_str(b, m->mode);
	sb_key(b, "requested_mode", 0);
	sb_str(b, m->requested_mode);
	sb_key(b, "placement", 0);
	sb_str(b, m->placement);
	sb_key(b, "huge_pages", 0);
	sb_puts(b, m->huge_pages ? "true" : "false");
	sb_key(b, "users", 0);
	sb_printf(b, "%" PRIu32, m->users);
	sb_key(b, "seconds", 0);
	if (isfinite(m->seconds))
		sb_printf(b, "%.6f", m->seconds);
	else
		sb_puts(b, "null");
	sb_key(b, "gbps", 0);
	if (m->seconds > 0 && strcmp(m->state ? m->state : "", "loading") != 0)
		sb_printf(b, "%.3f", (double)m->bytes / m->seconds / 1e9);
	else
		sb_puts(b, "null");
	sb_key(b, "note", 0);
	sb_str(b, m->note);
	sb_key(b, "error", 0);
	sb_str(b, m->error);
	sb_key(b, "engine", 0);
	sb_str(b, m->engine);
	sb_key(b, "sessions", 0);
	sb_printf(b, "%" PRIu32, m->sessions);
	sb_key(b, "active", 0);
	sb_printf(b, "%" PRIu32, m->active);
	sb_key(b, "gen_tokens", 0);
	sb_printf(b, "%" PRIu64, m->gen_tokens);
	sb_key(b, "tps_1m", 0);
	sb_double(b, m->tps_1m);
	sb_key(b, "kv_bytes", 0);
	sb_printf(b, "%" PRIu64, m->kv_bytes);
	fields_json(b, &m->base, 24, 0); /* gpu_layers, device_bytes, ... */
	sb_puts(b, "}");
}

/* Hand b's text to *ret_json, or its error. */
static int sb_finish(struct sb *b, char **ret_json)
{
	if (b->err) {
		free(b->buf);
		return b->err;
	}
	*ret_json = b->buf;
	return 0;
}

/* The models reply, or NULL with the reason set; caller frees. */
static int query_models(cc_client *c, Cc__Reply **ret)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__Empty e = CC__EMPTY__INIT;
	int r;

	req.body_case = CC__REQUEST__BODY_MODELS;
	req.models = &e;
	r = cc__call(c, &req, c->control_timeout_ms, ret);
	if (r < 0) {
		if (*ret)
			cc__reply__free_unpacked(*ret, NULL);
		*ret = NULL;
		return r;
	}
	if ((*ret)->body_case != CC__REPLY__BODY_MODELS || !(*ret)->models) {
		cc__reply__free_unpacked(*ret, NULL);
		*ret = NULL;
		cc__set_error(c, "ccd answered a models request with the wrong reply");
		return -EBADMSG;
	}
	return 0;
}

static const Cc__ModelInfo *find_model(const Cc__Reply *rep, const char *name)
{
	size_t i;

	for (i = 0; i < rep->models->n_models; i++)
		if (rep->models->models[i]->name && strcmp(rep->models->models[i]->name, name) == 0)
			return rep->models->models[i];
	return NULL;
}

#define LOAD_POLL_MS 100

int cc_model_load(cc_client *c, const char *name, const char *path, const char *mode, const char *placement,
                  cc_progress_fn progress, void *arg, char **ret_json)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__ModelLoad ml = CC__MODEL_LOAD__INIT;
	Cc__Reply *rep = NULL;
	char abspath[PATH_MAX];
	struct sb b = {0};
	struct cc__job *j;
	uint64_t id;
	int r;

	if (!c || !name || !path)
		return -EINVAL;
	/* ccd opens the file itself: name it from the caller's directory. */
	if (!realpath(path, abspath)) {
		r = -errno;
		cc__set_error(c, "cannot resolve the model path");
		return r;
	}
	ml.name = (char *)name;
	ml.path = abspath;
	ml.mode = (char *)(mode ? mode : "");
	ml.placement = (char *)(placement ? placement : "");
	req.body_case = CC__REQUEST__BODY_MODEL_LOAD;
	req.model_load = &ml;
	r = cc__send(c, &req, &id);
	if (r < 0)
		return r;
	r = cc__job_add(c, id);
	if (r < 0)
		return r;
	for (;;) {
		Cc__Reply *mr = NULL;
		const Cc__ModelInfo *mi;

		r = cc__wait_reply(c, id, LOAD_POLL_MS, &rep);
		if (r == 0) {
			r = cc__reply_code(c, rep);
			break;
		}
		if (r != -ETIMEDOUT)
			goto out;
		j = cc__job_find(c, id);
		if (j && j->done) { /* the reply came while we asked for progress */
			r = j->code;
			if (r)
				cc__set_error(c, j->error ? j->error : cc_strerror(r));
			break;
		}
		r = query_models(c, &mr);
		if (r < 0)
			goto out;
		mi = find_model(mr, name);
		if (mi && progress)
			progress(arg, mi->loaded_bytes, mi->bytes);
		cc__reply__free_unpacked(mr, NULL);
	}
	if (r < 0)
		goto out;
	if (ret_json) {
		const Cc__ModelInfo *mi = NULL;

		if (!rep || rep->body_case != CC__REPLY__BODY_MODELS || !rep->models || rep->models->n_models != 1) {
			if (rep)
				cc__reply__free_unpacked(rep, NULL);
			rep = NULL;
			r = query_models(c, &rep);
			if (r < 0)
				goto out;
			mi = find_model(rep, name);
		} else {
			mi = rep->models->models[0];
		}
		if (!mi) {
			cc__set_error(c, "the model is gone: unloaded right after its load");
			r = -ENOENT;
			goto out;
		}
		if (progress)
			progress(arg, mi->bytes, mi->bytes);
		model_json(&b, mi);
		r = sb_finish(&b, ret_json);
	}
out:
	cc__job_remove(c, id);
	if (rep)
		cc__reply__free_unpacked(rep, NULL);
	return r;
}

int cc_model_unload(cc_client *c, const char *name, int force)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__ModelUnload mu = CC__MODEL_UNLOAD__INIT;

	if (!c || !name)
		return -EINVAL;
	mu.name = (char *)name;
	mu.force = force != 0;
	req.body_case = CC__REQUEST__BODY_MODEL_UNLOAD;
	req.model_unload = &mu;
	/* waits for the jobs that use the model: no deadline, but a dead ccd is noticed */
	return cc__call(c, &req, -1, NULL);
}

int cc_model_show(cc_client *c, const char *name, char **ret_json)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__ModelShow ms = CC__MODEL_SHOW__INIT;
	Cc__Reply *rep = NULL;
	struct sb b = {0};
	int r;

	if (!c || !name || !ret_json)
		return -EINVAL;
	ms.name = (char *)name;
	req.body_case = CC__REQUEST__BODY_MODEL_SHOW;
	req.model_show = &ms;
	r = cc__call(c, &req, c->control_timeout_ms, &rep);
	if (r < 0)
		goto out;
	if (rep->body_case != CC__REPLY__BODY_MODEL_SHOW || !rep->model_show || !rep->model_show->info ||
	    !rep->model_show->gguf_json || rep->model_show->gguf_json[0] != '{') {
		cc__set_error(c, "ccd answered a model_show request with the wrong reply");
		r = -EBADMSG;
		goto out;
	}
	sb_puts(&b, "{\"model\":");
	model_json(&b, rep->model_show->info);
	sb_puts(&b, ",\"gguf\":");
	sb_puts(&b, rep->model_show->gguf_json);
	sb_puts(&b, "}");
	r = sb_finish(&b, ret_json);
out:
	if (rep)
		cc__reply__free_unpacked(rep, NULL);
	return r;
}

int cc_kernels_set(cc_client *c, const char *backend, const char *device, int calibrate, char **ret_json)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__KernelsSet ks = CC__KERNELS_SET__INIT;
	Cc__Reply *rep = NULL;
	struct sb b = {0};
	int r;

	if (!c || !ret_json)
		return -EINVAL;
	ks.backend = (char *)(backend ? backend : "");
	ks.device = (char *)(device ? device : "");
	ks.calibrate = calibrate != 0;
	req.body_case = CC__REQUEST__BODY_KERNELS_SET;
	req.kernels_set = &ks;
	r = cc__call(c, &req, c->control_timeout_ms, &rep);
	if (r < 0)
		goto out;
	if (rep->body_case != CC__REPLY__BODY_KERNELS || !rep->kernels) {
		cc__set_error(c, "ccd answered a kernels_set request with the wrong reply");
		r = -EBADMSG;
		goto out;
	}
	kernels_json(&b, rep->kernels);
	r = sb_finish(&b, ret_json);
out:
	if (rep)
		cc__reply__free_unpacked(rep, NULL);
	return r;
}

int cc_admin_json(cc_client *c, const char *what, char **ret_json)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__Empty e = CC__EMPTY__INIT;
	Cc__Reply__BodyCase want;
	Cc__Reply *rep = NULL;
	struct sb b = {0};
	int r;

	if (!c || !what || !ret_json)
		return -EINVAL;
	if (strcmp(what, "status") == 0) {
		req.body_case = CC__REQUEST__BODY_STATUS;
		req.status = &e;
		want = CC__REPLY__BODY_STATUS;
	} else if (strcmp(what, "clients") == 0) {
		req.body_case = CC__REQUEST__BODY_CLIENTS;
		req.clients = &e;
		want = CC__REPLY__BODY_CLIENTS;
	} else if (strcmp(what, "kernels") == 0) {
		req.body_case = CC__REQUEST__BODY_KERNELS;
		req.kernels = &e;
		want = CC__REPLY__BODY_KERNELS;
	} else if (strcmp(what, "models") == 0) {
		req.body_case = CC__REQUEST__BODY_MODELS;
		req.models = &e;
		want = CC__REPLY__BODY_MODELS;
	} else if (strcmp(what, "sessions") == 0) {
		req.body_case = CC__REQUEST__BODY_SESSIONS;
		req.sessions = &e;
		want = CC__REPLY__BODY_SESSIONS;
	} else {
		return -EINVAL;
	}
	r = cc__call(c, &req, c->control_timeout_ms, &rep);
	if (r < 0)
		goto out;
	if (rep->body_case != want) {
		cc__set_error(c, "ccd answered an admin request with the wrong reply");
		r = -EBADMSG;
		goto out;
	}
	if (want == CC__REPLY__BODY_STATUS)
		message_json(&b, &rep->status->base);
	else if (want == CC__REPLY__BODY_CLIENTS)
		message_json(&b, &rep->clients->base);
	else if (want == CC__REPLY__BODY_MODELS)
		message_json(&b, &rep->models->base);
	else if (want == CC__REPLY__BODY_SESSIONS)
		message_json(&b, &rep->sessions->base);
	else
		kernels_json(&b, rep->kernels);
	if (b.err) {
		r = b.err;
		free(b.buf);
		goto out;
	}
	*ret_json = b.buf;
	r = 0;
out:
	if (rep)
		cc__reply__free_unpacked(rep, NULL);
	return r;
}
