/* SPDX-License-Identifier: MIT */
/* admin.c: cc_admin_json, the daemon's status / clients / kernels replies as JSON documents for ccctl. */
#include "config.h"

#include <errno.h>
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

static void status_json(struct sb *b, const Cc__StatusReply *s)
{
	sb_puts(b, "{");
	sb_key(b, "version", 1);
	sb_str(b, s->version);
	sb_key(b, "pid", 0);
	sb_printf(b, "%" PRIu32, s->pid);
	sb_key(b, "uptime_s", 0);
	sb_double(b, s->uptime_s);
	sb_key(b, "tier", 0);
	sb_str(b, s->tier);
	sb_key(b, "numa_nodes", 0);
	sb_printf(b, "%" PRIu32, s->numa_nodes);
	sb_key(b, "workers", 0);
	sb_printf(b, "%" PRIu32, s->workers);
	sb_key(b, "clients", 0);
	sb_printf(b, "%" PRIu32, s->clients);
	sb_key(b, "regions", 0);
	sb_printf(b, "%" PRIu64, s->regions);
	sb_key(b, "region_bytes", 0);
	sb_printf(b, "%" PRIu64, s->region_bytes);
	sb_key(b, "jobs_done", 0);
	sb_printf(b, "%" PRIu64, s->jobs_done);
	sb_key(b, "jobs_failed", 0);
	sb_printf(b, "%" PRIu64, s->jobs_failed);
	sb_key(b, "numa_simulated", 0);
	sb_puts(b, s->numa_simulated ? "true" : "false");
	sb_puts(b, "}");
}

static void clients_json(struct sb *b, const Cc__ClientsReply *cl)
{
	size_t i;

	sb_puts(b, "{\"clients\":[");
	for (i = 0; i < cl->n_clients; i++) {
		const Cc__ClientInfo *ci = cl->clients[i];

		if (i)
			sb_puts(b, ",");
		sb_puts(b, "{");
		sb_key(b, "id", 1);
		sb_printf(b, "%" PRIu64, ci->id);
		sb_key(b, "pid", 0);
		sb_printf(b, "%" PRIu32, ci->pid);
		sb_key(b, "uid", 0);
		sb_printf(b, "%" PRIu32, ci->uid);
		sb_key(b, "name", 0);
		sb_str(b, ci->name);
		sb_key(b, "regions", 0);
		sb_printf(b, "%" PRIu64, ci->regions);
		sb_key(b, "bytes", 0);
		sb_printf(b, "%" PRIu64, ci->bytes);
		sb_key(b, "jobs", 0);
		sb_printf(b, "%" PRIu64, ci->jobs);
		sb_key(b, "in_flight", 0);
		sb_printf(b, "%" PRIu32, ci->in_flight);
		sb_key(b, "node", 0);
		sb_printf(b, "%" PRIu32, ci->node);
		sb_puts(b, "}");
	}
	sb_puts(b, "]}");
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
	sb_puts(b, "}");
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
		status_json(&b, rep->status);
	else if (want == CC__REPLY__BODY_CLIENTS)
		clients_json(&b, rep->clients);
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
