/* SPDX-License-Identifier: MIT */
/* t_json.c: a tiny, strict JSON reader for the tests (recursive descent into a malloc'd tree). */
#include "t_json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_JSON_MAX_DEPTH 64

struct jp {
	const char *s;
	size_t len, pos;
	char *err;
	size_t errlen;
	int failed;
};

static void jp_fail(struct jp *p, const char *fmt, ...)
{
	va_list ap;
	int k = 0;

	if (p->failed)
		return;
	p->failed = 1;
	if (!p->err || !p->errlen)
		return;
	va_start(ap, fmt);
	k = vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
	if (k >= 0 && (size_t)k < p->errlen)
		snprintf(p->err + k, p->errlen - (size_t)k, " at byte %zu", p->pos);
}

static void jp_ws(struct jp *p)
{
	while (p->pos < p->len &&
	       (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

static int jp_lit(struct jp *p, const char *lit)
{
	size_t n = strlen(lit);

	if (p->len - p->pos < n || memcmp(p->s + p->pos, lit, n) != 0) {
		jp_fail(p, "bad literal");
		return -1;
	}
	p->pos += n;
	return 0;
}

static int hex4(struct jp *p, unsigned *ret)
{
	unsigned v = 0;
	int i;

	if (p->len - p->pos < 4) {
		jp_fail(p, "short \\u escape");
		return -1;
	}
	for (i = 0; i < 4; i++) {
		char c = p->s[p->pos++];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else {
			jp_fail(p, "bad \\u escape");
			return -1;
		}
	}
	*ret = v;
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* A string after its opening quote: the decoded bytes (never longer than the source) into a malloc'd buffer. */
static char *jp_string(struct jp *p, size_t *ret_len)
{
	size_t start = p->pos, end = start, o = 0;
	char *out;

	while (end < p->len && p->s[end] != '"') {
		if (p->s[end] == '\\')
			end++;
		end++;
	}
	if (end >= p->len) {
		jp_fail(p, "unterminated string");
		return NULL;
	}
	out = malloc(end - start + 1);
	if (!out) {
		jp_fail(p, "out of memory");
		return NULL;
	}
	while (p->pos < end) {
		unsigned char c = (unsigned char)p->s[p->pos++];
		unsigned cp, lo;

		if (c < 0x20) {
			p->pos--;
			jp_fail(p, "control character in string");
			free(out);
			return NULL;
		}
		if (c != '\\') {
			out[o++] = (char)c;
			continue;
		}
		c = (unsigned char)p->s[p->pos++];
		switch (c) {
		case '"':
			out[o++] = '"';
			break;
		case '\\':
			out[o++] = '\\';
			break;
		case '/':
			out[o++] = '/';
			break;
		case 'b':
			out[o++] = '\b';
			break;
		case 'f':
			out[o++] = '\f';
			break;
		case 'n':
			out[o++] = '\n';
			break;
		case 'r':
			out[o++] = '\r';
			break;
		case 't':
			out[o++] = '\t';
			break;
		case 'u':
			if (hex4(p, &cp)) {
				free(out);
				return NULL;
			}
			if (cp >= 0xD800 && cp < 0xDC00 && end - p->pos >= 6 && p->s[p->pos] == '\\' &&
			    p->s[p->pos + 1] == 'u') {
				size_t save = p->pos;

				p->pos += 2;
				if (hex4(p, &lo)) {
					free(out);
					return NULL;
				}
				if (lo >= 0xDC00 && lo < 0xE000)
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				else
					p->pos = save; /* a lone high surrogate, then another escape */
			}
			o += put_utf8(out + o, cp); /* 6 source bytes give at most 3, 12 at most 4 */
			break;
		default:
			p->pos--;
			jp_fail(p, "bad escape");
			free(out);
			return NULL;
		}
	}
	p->pos = end + 1;
	out[o] = 0;
	*ret_len = o;
	return out;
}

static int jp_value(struct jp *p, struct t_json *v, int depth);

static int jp_push(struct jp *p, struct t_json *v, size_t *cap)
{
	if (v->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		struct t_json *ni = realloc(v->items, nc * sizeof(*ni));

		if (!ni) {
			jp_fail(p, "out of memory");
			return -1;
		}
		v->items = ni;
		*cap = nc;
	}
	memset(&v->items[v->n], 0, sizeof(v->items[0]));
	v->n++;
	return 0;
}

static int jp_container(struct jp *p, struct t_json *v, int depth, int obj)
{
	size_t cap = 0;
	char close = obj ? '}' : ']';

	v->type = obj ? T_JSON_OBJ : T_JSON_ARR;
	p->pos++;
	jp_ws(p);
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
		return 0;
	}
	for (;;) {
		struct t_json *it;

		jp_ws(p);
		if (jp_push(p, v, &cap))
			return -1;
		it = &v->items[v->n - 1];
		if (obj) {
			if (p->pos >= p->len || p->s[p->pos] != '"') {
				jp_fail(p, "expected a member name");
				return -1;
			}
			p->pos++;
			it->key = jp_string(p, &it->keylen);
			if (!it->key)
				return -1;
			jp_ws(p);
			if (p->pos >= p->len || p->s[p->pos] != ':') {
				jp_fail(p, "expected ':'");
				return -1;
			}
			p->pos++;
		}
		if (jp_value(p, it, depth + 1))
			return -1;
		jp_ws(p);
		if (p->pos < p->len && p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->s[p->pos] == close) {
			p->pos++;
			return 0;
		}
		jp_fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
		return -1;
	}
}

static int jp_number(struct jp *p, struct t_json *v)
{
	size_t start = p->pos;
	int is_int = 1;
	char buf[64], *end;

	if (p->pos < p->len && p->s[p->pos] == '-')
		p->pos++;
	if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9') {
		jp_fail(p, "bad number");
		return -1;
	}
	while (p->pos < p->len) {
		char c = p->s[p->pos];

		if (c >= '0' && c <= '9')
			;
		else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')
			is_int = 0;
		else
			break;
		p->pos++;
	}
	if (p->pos - start >= sizeof(buf)) {
		jp_fail(p, "number too long");
		return -1;
	}
	memcpy(buf, p->s + start, p->pos - start);
	buf[p->pos - start] = 0;
	v->type = T_JSON_NUM;
	errno = 0;
	v->num = strtod(buf, &end);
	if (*end) {
		jp_fail(p, "bad number");
		return -1;
	}
	if (is_int) {
		errno = 0;
		v->i = strtoll(buf, &end, 10);
		v->is_int = errno == 0 && !*end;
	}
	return 0;
}

static int jp_value(struct jp *p, struct t_json *v, int depth)
{
	char c;

	if (depth > T_JSON_MAX_DEPTH) {
		jp_fail(p, "nested too deep");
		return -1;
	}
	jp_ws(p);
	if (p->pos >= p->len) {
		jp_fail(p, "unexpected end");
		return -1;
	}
	c = p->s[p->pos];
	switch (c) {
	case '{':
	case '[':
		return jp_container(p, v, depth, c == '{');
	case '"':
		p->pos++;
		v->type = T_JSON_STR;
		v->str = jp_string(p, &v->len);
		return v->str ? 0 : -1;
	case 't':
		v->type = T_JSON_BOOL;
		v->b = 1;
		return jp_lit(p, "true");
	case 'f':
		v->type = T_JSON_BOOL;
		return jp_lit(p, "false");
	case 'n':
		v->type = T_JSON_NULL;
		return jp_lit(p, "null");
	default:
		return jp_number(p, v);
	}
}

static void jv_clear(struct t_json *v)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		jv_clear(&v->items[i]);
	free(v->items);
	free(v->str);
	free(v->key);
}

void t_json_free(struct t_json *j)
{
	if (!j)
		return;
	jv_clear(j);
	free(j);
}

struct t_json *t_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct jp p = {.s = text, .len = len, .err = err, .errlen = errlen};
	struct t_json *v = calloc(1, sizeof(*v));

	if (!v) {
		jp_fail(&p, "out of memory");
		return NULL;
	}
	if (jp_value(&p, v, 0) == 0) {
		jp_ws(&p);
		if (p.pos != p.len)
			jp_fail(&p, "trailing characters");
	}
	if (p.failed) {
		t_json_free(v);
		return NULL;
	}
	return v;
}

struct t_json *t_json_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;
	struct t_json *j;
	int e;

	if (!f) {
		e = errno;
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(e));
		errno = e;
		return NULL;
	}
	for (;;) {
		size_t r;

		if (cap - n < 65536) {
			char *nb = realloc(buf, cap + 65536 * 4);

			if (!nb) {
				free(buf);
				fclose(f);
				if (err && errlen)
					snprintf(err, errlen, "%s: out of memory", path);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
			cap += 65536 * 4;
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	e = ferror(f);
	fclose(f);
	if (e) {
		free(buf);
		if (err && errlen)
			snprintf(err, errlen, "%s: read error", path);
		errno = EIO;
		return NULL;
	}
	j = t_json_parse(buf, n, err, errlen);
	free(buf);
	if (!j)
		errno = EBADMSG;
	return j;
}

const struct t_json *t_json_get(const struct t_json *o, const char *key)
{
	size_t i, kl;

	if (!o || o->type != T_JSON_OBJ)
		return NULL;
	kl = strlen(key);
	for (i = 0; i < o->n; i++)
		if (o->items[i].keylen == kl && memcmp(o->items[i].key, key, kl) == 0)
			return &o->items[i];
	return NULL;
}

const struct t_json *t_json_at(const struct t_json *a, size_t i)
{
	if (!a || (a->type != T_JSON_ARR && a->type != T_JSON_OBJ) || i >= a->n)
		return NULL;
	return &a->items[i];
}

size_t t_json_len(const struct t_json *a)
{
	if (!a || (a->type != T_JSON_ARR && a->type != T_JSON_OBJ))
		return 0;
	return a->n;
}

const char *t_json_str(const struct t_json *o, const char *key)
{
	const struct t_json *v = t_json_get(o, key);

	return v && v->type == T_JSON_STR ? v->str : NULL;
}
