/* SPDX-License-Identifier: MIT */
/* tokenizer_pre.c: code point classes, UTF-8 helpers and the BPE pre-tokenizer splits, hand-written scanners
 * that split exactly as llama.cpp's (custom scanners and std::regex over its category table) do. */
#include "unicode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

unsigned cce_ucls(uint32_t cp)
{
	size_t lo = 0, hi = cce_ucls_nranges;

	if (cp >= 0x110000)
		return 0;
	/* the last range whose first code point is <= cp */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if ((cce_ucls_ranges[mid] >> 11) <= cp)
			lo = mid;
		else
			hi = mid;
	}
	return cce_ucls_ranges[lo] & 0x7FF;
}

long cce_utf8_check(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	long count = 0;

	while (i < n) {
		unsigned c = s[i];
		size_t len, k;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			count++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			len = 2;
			cp = c & 0x1F;
			min = 0x80;
		} else if (c >= 0xE0 && c <= 0xEF) {
			len = 3;
			cp = c & 0x0F;
			min = 0x800;
		} else if (c >= 0xF0 && c <= 0xF4) {
			len = 4;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return -1;
		}
		if (n - i < len)
			return -1;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return -1;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return -1;
		i += len;
		count++;
	}
	return count;
}

uint32_t cce_utf8_next(const char *str, size_t *pos)
{
	const unsigned char *s = (const unsigned char *)str + *pos;
	unsigned c = s[0];

	if (c < 0x80) {
		*pos += 1;
		return c;
	}
	if (c < 0xE0) {
		*pos += 2;
		return (uint32_t)(c & 0x1F) << 6 | (s[1] & 0x3F);
	}
	if (c < 0xF0) {
		*pos += 3;
		return (uint32_t)(c & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
	}
	*pos += 4;
	return (uint32_t)(c & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 | (uint32_t)(s[2] & 0x3F) << 6 |
	       (s[3] & 0x3F);
}

size_t cce_utf8_put(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* ---- the split of one stage ----------------------------------------------------------------------------------- */

#define NO_CP 0xFFFFFFFFu
#define WLN (CCE_U_WHITESPACE | CCE_U_LETTER | CCE_U_NUMBER)

/* Word lengths being collected. */
struct segv {
	size_t *v;
	size_t n, cap;
	int err;
};

static void seg_push(struct segv *o, size_t len)
{
	if (!len || o->err)
		return;
	if (o->n == o->cap) {
		size_t nc = o->cap ? o->cap * 2 : 64;
		size_t *nv = realloc(o->v, nc * sizeof(*nv));

		if (!nv) {
			o->err = -ENOMEM;
			return;
		}
		o->v = nv;
		o->cap = nc;
	}
	o->v[o->n++] = len;
}

/* One input word [a, b) of the code points being scanned: outside it there is nothing (class 0, NO_CP), as the
 * regexes run over each word of the previous stage separately. */
struct win {
	const uint32_t *cps;
	size_t a, b;
	size_t done; /* end of the last word emitted */
	struct segv *out;
};

static uint32_t w_cp(const struct win *w, size_t i)
{
	return i >= w->a && i < w->b ? w->cps[i] : NO_CP;
}

static unsigned w_cls(const struct win *w, size_t i)
{
	return i >= w->a && i < w->b ? cce_ucls(w->cps[i]) : 0;
}

/* Emit the word that ends at end (it starts where the last one ended). */
static void w_emit(struct win *w, size_t end)
{
	seg_push(w->out, end - w->done);
	w->done = end;
}

static uint32_t ascii_lower(uint32_t c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* The contractions 's 't 're 've 'm 'll 'd at pos: their length (2 or 3) or 0. fold: case-insensitive. */
static size_t contraction(const struct win *w, size_t pos, int fold)
{
	uint32_t c1, c2;

	if (w->cps[pos] != '\'' || pos + 1 >= w->b)
		return 0;
	c1 = w_cp(w, pos + 1);
	if (fold)
		c1 = ascii_lower(c1); /* no code point past ASCII lowercases to one of these letters */
	if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
		return 2;
	if (pos + 2 >= w->b)
		return 0;
	c2 = w_cp(w, pos + 2);
	if (fold)
		c2 = ascii_lower(c2);
	if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
		return 3;
	return 0;
}

/* The whitespace tail shared by the scanners: \s+(?!\S) (all but the last of several whitespaces when something
 * follows in the word), else \s+, else one code point. Returns the new position. */
static size_t ws_tail(const struct win *w, size_t pos)
{
	size_t nws = 0;

	while (w_cls(w, pos + nws) & CCE_U_WHITESPACE)
		nws++;
	if (nws > 1 && w_cp(w, pos + nws) != NO_CP)
		return pos + nws - 1;
	if (nws > 0)
		return pos + nws;
	return pos + 1;
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static void scan_gpt2(struct win *w)
{
	size_t pos = w->a;

	while (pos < w->b) {
		uint32_t c = w->cps[pos];
		unsigned f = cce_ucls(c), f2;
		size_t k = contraction(w, pos, 0);

		if (k) {
			pos += k;
			w_emit(w, pos);
			continue;
		}
		f2 = c == ' ' ? w_cls(w, pos + 1) : f;
		if (f2 & (CCE_U_LETTER | CCE_U_NUMBER)) {
			unsigned want = f2 & CCE_U_LETTER ? CCE_U_LETTER : CCE_U_NUMBER;

			pos += c == ' ';
			while (w_cls(w, pos) & want)
				pos++;
			w_emit(w, pos);
			continue;
		}
		if (!(f2 & WLN) && f2) {
			pos += c == ' ';
			for (;;) {
				unsigned g = w_cls(w, pos);

				if ((g & WLN) || !g)
					break;
				pos++;
			}
			w_emit(w, pos);
			continue;
		}
		pos = ws_tail(w, pos);
		w_emit(w, pos);
	}
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * (llama3; qwen2 has \p{N} instead of \p{N}{1,3}: num_group 1) */
static void scan_llama3(struct win *w, size_t num_group)
{
	size_t pos = w->a;

	while (pos < w->b) {
		uint32_t c = w->cps[pos];
		unsigned f = cce_ucls(c), f2;
		size_t k = contraction(w, pos, 1), last_nl, nws;

		if (k) {
			pos += k;
			w_emit(w, pos);
			continue;
		}
		if (!(c == '\r' || c == '\n' || (f & CCE_U_NUMBER)) &&
		    ((f & CCE_U_LETTER) || (w_cls(w, pos + 1) & CCE_U_LETTER))) {
			pos++;
			while (w_cls(w, pos) & CCE_U_LETTER)
				pos++;
			w_emit(w, pos);
			continue;
		}
		if (f & CCE_U_NUMBER) {
			size_t run = 0;

			while (w_cls(w, pos) & CCE_U_NUMBER) {
				pos++;
				if (++run == num_group) {
					w_emit(w, pos);
					run = 0;
				}
			}
			w_emit(w, pos);
			continue;
		}
		f2 = c == ' ' ? w_cls(w, pos + 1) : f;
		if (!(f2 & WLN)) { /* f is never 0 inside the word */
			uint32_t c2;

			pos += c == ' ';
			for (;;) {
				unsigned g = w_cls(w, pos);

				if ((g & WLN) || !g)
					break;
				pos++;
			}
			for (c2 = w_cp(w, pos); c2 == '\r' || c2 == '\n'; c2 = w_cp(w, pos))
				pos++;
			w_emit(w, pos);
			continue;
		}
		/* \s*[\r\n]+: up to the last \r or \n of the whitespace run */
		last_nl = 0;
		for (nws = 0; w_cls(w, pos + nws) & CCE_U_WHITESPACE; nws++) {
			uint32_t c2 = w_cp(w, pos + nws);

			if (c2 == '\r' || c2 == '\n')
				last_nl = pos + nws + 1;
		}
		if (last_nl) {
			pos = last_nl;
			w_emit(w, pos);
			continue;
		}
		pos = ws_tail(w, pos);
		w_emit(w, pos);
	}
}

/* The classes of the regex character-class stages. */
static int is_num(uint32_t c)
{
	return (cce_ucls(c) & CCE_U_NUMBER) != 0; /* in ASCII only 0-9 */
}

static int is_punct_run(uint32_t c, int backtick)
{
	if (c < 0x80) /* \p{P} in ASCII and $+<=>^~| : every ASCII punctuation or symbol but ` */
		return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x5E) || c == '_' ||
		       (c >= 0x7B && c <= 0x7E) || (backtick && c == '`');
	return (cce_ucls(c) & (CCE_U_PUNCT | CCE_U_WHITESPACE)) == CCE_U_PUNCT;
}

static int stage_pred(uint8_t st, uint32_t c)
{
	switch (st) {
	case CCE_PRE_NUM_EACH:
	case CCE_PRE_NUM_RUN:
		return is_num(c);
	case CCE_PRE_PUNCT_RUN:
		return is_punct_run(c, 0);
	case CCE_PRE_PUNCT_RUN_BT:
		return is_punct_run(c, 1);
	default:
		return c >= '0' && c <= '9';
	}
}

/* A regex stage: its matches (leftmost, longest) and the text between them each become a word. */
static void scan_class(struct win *w, uint8_t st)
{
	size_t pos = w->a;

	while (pos < w->b) {
		size_t end = pos;

		if (st == CCE_PRE_DIGIT3) {
			while (end < w->b && end - pos < 3 && stage_pred(st, w->cps[end]))
				end++;
			if (end - pos < 3) {
				pos++;
				continue;
			}
		} else {
			if (!stage_pred(st, w->cps[pos])) {
				pos++;
				continue;
			}
			end = pos + 1;
			if (st != CCE_PRE_NUM_EACH)
				while (end < w->b && stage_pred(st, w->cps[end]))
					end++;
		}
		w_emit(w, pos); /* the text before the match */
		w_emit(w, end);
		pos = end;
	}
	w_emit(w, w->b);
}

int cce_pre_split(const uint32_t *cps, size_t n, const uint8_t *stages, size_t nstages, size_t **segs, size_t *nsegs)
{
	struct segv cur = {0}, next;
	size_t s, i;

	*segs = NULL;
	*nsegs = 0;
	seg_push(&cur, n);
	for (s = 0; s < nstages && !cur.err; s++) {
		size_t start = 0;

		memset(&next, 0, sizeof(next));
		for (i = 0; i < cur.n; i++) {
			struct win w = {.cps = cps, .a = start, .b = start + cur.v[i], .done = start, .out = &next};

			switch (stages[s]) {
			case CCE_PRE_GPT2:
				scan_gpt2(&w);
				break;
			case CCE_PRE_LLAMA3:
				scan_llama3(&w, 3);
				break;
			case CCE_PRE_QWEN2:
				scan_llama3(&w, 1);
				break;
			default:
				scan_class(&w, stages[s]);
				break;
			}
			start += cur.v[i];
		}
		free(cur.v);
		cur = next;
	}
	if (cur.err) {
		free(cur.v);
		return cur.err;
	}
	*segs = cur.v;
	*nsegs = cur.n;
	return 0;
}
