/* SPDX-License-Identifier: MIT */
/* test_tokenizer.c: the tokenizers (libccengine's cce_vocab_* / cce_tokenize / cce_detokenize) against llama.cpp's
 * reference ids and texts (tests/ref/<model>.json), round trips, and error cases on GGUF files built in memory. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "engine.h"
#include "gguf.h"
#include "t_json.h"

#define T_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- finding models and references ----------------------------------------------------------------------------- */

static const char *models_dir(void)
{
	static char buf[PATH_MAX];
	const char *env = getenv("CC_MODELS_DIR");
	struct stat st;

	if (env && *env)
		return env;
	snprintf(buf, sizeof(buf), "%s/../shared/models", T_TOP_SRCDIR);
	if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
		return buf;
	return "/work/shared/models";
}

static void smollm2_path(char *path, size_t size)
{
	const char *env = getenv("CC_SMOLLM2"), *home = getenv("HOME");

	if (env && *env)
		snprintf(path, size, "%s", env);
	else
		snprintf(path, size, "%s/.cache/cc/models/SmolLM2-135M-Instruct.Q4_1.gguf", home ? home : "");
}

static void ref_path(char *path, size_t size, const char *dir, const char *stem)
{
	const char *src = getenv("T_SRCDIR");

	snprintf(path, size, "%s/tests/%s/%s.json", src && *src ? src : T_TOP_SRCDIR, dir, stem);
}

/* A model under test: its file (relative to the models dir; NULL: SmolLM2), its reference stem (tests/ref) and
 * the stem of the tokenizer's own references (tests/tokref: the derived files share stories260K's vocabulary). */
struct tmodel {
	const char *file;
	const char *stem;
	const char *tokref;
};

static const struct tmodel tmodels[] = {
    {"stories260K.gguf", "stories260K", "stories260K"},
    {"derived/stories260K-F16.gguf", "stories260K-F16", "stories260K"},
    {"derived/stories260K-Q8_0.gguf", "stories260K-Q8_0", "stories260K"},
    {"derived/stories260K-Q4_0.gguf", "stories260K-Q4_0", "stories260K"},
    {"llama-2-tiny-random.gguf", "llama-2-tiny-random", "llama-2-tiny-random"},
    {NULL, "SmolLM2-135M-Instruct.Q4_1", "SmolLM2-135M-Instruct.Q4_1"},
};

/* The BPE pre-tokenizers checked on SmolLM2's vocabulary (tests/tokref/<stem>@<pre>.json). */
static const char *const variant_pres[] = {"gpt-2", "llama-bpe", "qwen2", "default", "falcon"};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Open a model's vocabulary, or skip the test (with a message) when the file is missing. */
static struct cce_vocab *open_vocab(const struct tmodel *m, struct ccm_gguf **gret)
{
	char path[PATH_MAX + 64], err[256];
	struct ccm_gguf *g;
	struct cce_vocab *v;
	double t0;
	int rc;

	if (m->file)
		snprintf(path, sizeof(path), "%s/%s", models_dir(), m->file);
	else
		smollm2_path(path, sizeof(path));
	if (access(path, R_OK) != 0) {
		print_message("test_tokenizer: %s missing (set CC_MODELS_DIR / CC_SMOLLM2): skipped\n", path);
		return NULL;
	}
	rc = ccm_gguf_open(path, &g, err, sizeof(err));
	if (rc)
		fail_msg("%s: %s", path, err);
	t0 = now_ms();
	rc = cce_vocab_load(g, &v, err, sizeof(err));
	if (rc)
		fail_msg("%s: cce_vocab_load %d: %s", path, rc, err);
	print_message("test_tokenizer: %s: %s vocabulary, %u tokens, loaded in %.2f ms, %.2f MB resident\n", m->stem,
	              cce_vocab_kind(v), cce_vocab_size(v), now_ms() - t0, (double)cce_vocab_bytes(v) / 1e6);
	*gret = g;
	return v;
}

/* ---- helpers --------------------------------------------------------------------------------------------------- */

static void print_ids(const char *what, const int32_t *ids, size_t n)
{
	size_t i;

	print_message("  %s [", what);
	for (i = 0; i < n; i++)
		print_message("%s%d", i ? ", " : "", ids[i]);
	print_message("]\n");
}

/* Tokenize, compare with want[] (want_n ids), print both on a difference. Returns 1 when equal. */
static int check_ids(const struct cce_vocab *v, const char *text, size_t len, int add_bos, int special,
                     const int32_t *want, size_t want_n, const char *label)
{
	int32_t *ids = NULL;
	size_t n = 0;
	int rc = cce_tokenize(v, text, len, add_bos, special, &ids, &n), ok;

	if (rc) {
		print_message("%s: cce_tokenize(\"%.*s\") = %d\n", label, (int)len, text, rc);
		return 0;
	}
	ok = n == want_n && (n == 0 || memcmp(ids, want, n * sizeof(*ids)) == 0);
	if (!ok) {
		print_message("%s: tokenize(\"%.*s\", add_bos %d, special %d) differs\n", label, (int)len, text,
		              add_bos, special);
		print_ids("want", want, want_n);
		print_ids("got ", ids, n);
	}
	free(ids);
	return ok;
}

/* Detokenize and compare with the text. */
static int check_text(const struct cce_vocab *v, const int32_t *ids, size_t n, int special, const char *want,
                      size_t want_len, const char *label)
{
	char *text = NULL;
	size_t len = 0;
	int rc = cce_detokenize(v, ids, n, special, &text, &len), ok;

	if (rc) {
		print_message("%s: cce_detokenize = %d\n", label, rc);
		return 0;
	}
	ok = len == want_len && memcmp(text, want, len) == 0 && text[len] == 0;
	if (!ok)
		print_message("%s: detokenize gives \"%.*s\" (%zu bytes), want \"%.*s\" (%zu bytes)\n", label, (int)len,
		              text, len, (int)want_len, want, want_len);
	free(text);
	return ok;
}

/* detokenize(tokenize(text)) == text */
static int round_trip(const struct cce_vocab *v, const char *text, size_t len, int special, const char *label)
{
	int32_t *ids = NULL;
	size_t n = 0;
	char *back = NULL;
	size_t blen = 0;
	int ok;

	if (cce_tokenize(v, text, len, 0, special, &ids, &n) != 0)
		return 0;
	if (cce_detokenize(v, ids, n, special, &back, &blen) != 0) {
		free(ids);
		return 0;
	}
	ok = blen == len && memcmp(back, text, len) == 0;
	if (!ok)
		print_message("%s: round trip of \"%.*s\" gives \"%.*s\"\n", label, (int)len, text, (int)blen, back);
	free(ids);
	free(back);
	return ok;
}

static int32_t *json_ids(const struct t_json *a, size_t *n)
{
	int32_t *ids = malloc((t_json_len(a) + 1) * sizeof(*ids));
	size_t i;

	assert_non_null(ids);
	for (i = 0; i < t_json_len(a); i++) {
		assert_int_equal(t_json_at(a, i)->type, T_JSON_NUM);
		ids[i] = (int32_t)t_json_at(a, i)->i;
	}
	*n = t_json_len(a);
	return ids;
}

/* A deterministic PRNG (xorshift64*). */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* The byte-level BPE symbol of a byte (GPT-2's mapping of bytes to printable code points), NUL-terminated. */
static void byte_symbol(unsigned b, char out[4])
{
	unsigned i, k = 0;

	for (i = 0; i < b; i++)
		k += !((i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE && i <= 0xFF));
	if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
		out[put_utf8(out, b)] = 0;
	else
		out[put_utf8(out, 256 + k)] = 0;
}

/* Random valid UTF-8 (no U+2581, which SentencePiece reads as a space): mostly ASCII, whitespace, then the BMP and
 * beyond; no code point with a byte that is 0 in ok_byte (if not NULL). Returns the length written (out has room
 * for 4 * ncp bytes). */
static size_t random_text(uint64_t *s, char *out, size_t ncp, const uint8_t *ok_byte)
{
	static const uint32_t ws[] = {' ', ' ', ' ', '\n', '\t', '\r', 0xA0, 0x3000, 0x2009, 0x85};
	size_t i, len = 0;

	for (i = 0; i < ncp; i++) {
		uint64_t r = rng_next(s) % 100;
		uint32_t cp;

		do {
			if (r < 50)
				cp = 0x20 + (uint32_t)(rng_next(s) % 0x5F);
			else if (r < 62)
				cp = ws[rng_next(s) % T_NELEM(ws)];
			else if (r < 80)
				cp = 0x80 + (uint32_t)(rng_next(s) % (0x3000 - 0x80));
			else if (r < 95)
				cp = 0x3000 + (uint32_t)(rng_next(s) % (0x10000 - 0x3000));
			else
				cp = 0x10000 + (uint32_t)(rng_next(s) % (0x110000 - 0x10000));
			if (ok_byte) {
				char u[4];
				size_t k, ul = put_utf8(u, cp);

				for (k = 0; k < ul && ok_byte[(unsigned char)u[k]]; k++)
					;
				if (k < ul)
					cp = 0xD800; /* again */
			}
		} while ((cp >= 0xD800 && cp < 0xE000) || cp == 0x2581);
		len += put_utf8(out + len, cp);
	}
	return len;
}

/* Strings every model must round-trip (llama.cpp does for these vocabularies: no clean-up of spaces). */
struct tstr {
	const char *s;
	size_t len;
};
#define S(x)                                                                                                           \
	{                                                                                                              \
		x, sizeof(x) - 1                                                                                       \
	}
static const struct tstr varied[] = {
    S(""),
    S(" "),
    S("   "),
    S("\n"),
    S("Hello world"),
    S(" Hello world"),
    S("Hello  world  "),
    S("I'm here, don't go; THEY'LL see we've"),
    S("12345 3.14159 1,000,000"),
    S("caf\xc3\xa9 na\xc3\xafve \xc3\xbc"
      "ber"),
    S("\xe4\xb8\xad\xe6\x96\x87 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"),
    S("\xf0\x9f\x98\x80 emoji \xf0\x9f\x9a\x80"),
    S("a\n\nb\r\n\tc"),
    S("mixed \xc2\xa0nbsp\xe3\x80\x80wide"),
    S("e\xcc\x81 combining, zero\xe2\x80\x8bwidth"),
    S("unassigned \xcd\xb8 x"),
    S("<|im_start|>user\nhi<|im_end|>"),
    S("<s>x</s> <unk>"),
    S("!!!???... ,,, ;;; --- ``` ~~~"),
    S("def f(x):\n    return x**2  # c\n"),
    S("<0x41> <0xZZ>"),
    S("x\0y"),
};

/* ---- per model: references, round trips ------------------------------------------------------------------------ */

static void check_reference(const struct cce_vocab *v, const struct tmodel *m)
{
	char path[PATH_MAX + 64], err[256], label[128];
	const struct t_json *tok, *det, *set, *eog;
	struct t_json *ref;
	size_t i, bad = 0, n;
	uint32_t id;

	ref_path(path, sizeof(path), "ref", m->stem);
	ref = t_json_load(path, err, sizeof(err));
	if (!ref) {
		if (errno != ENOENT)
			fail_msg("%s", err);
		print_message("test_tokenizer: %s: no reference %s: reference checks skipped\n", m->stem, path);
		return;
	}
	print_message("test_tokenizer: %s: reference of %s\n", m->stem, t_json_str(ref, "peer"));
	set = t_json_get(ref, "settings");
	if (set) {
		const struct t_json *x;

		if ((x = t_json_get(set, "bos")))
			assert_int_equal(cce_vocab_bos(v), x->i);
		if ((x = t_json_get(set, "eos")))
			assert_int_equal(cce_vocab_eos(v), x->i);
		if ((x = t_json_get(set, "add_bos_default")))
			assert_int_equal(cce_vocab_add_bos(v), x->b);
		eog = t_json_get(set, "eog_ids");
		if (eog) {
			for (id = 0, n = 0; id < cce_vocab_size(v); id++) {
				int want = 0;

				for (i = 0; i < t_json_len(eog); i++)
					want |= t_json_at(eog, i)->i == id;
				if (cce_vocab_is_eog(v, (int32_t)id) != want) {
					print_message("%s: token %u eog %d, llama.cpp %d\n", m->stem, id,
					              cce_vocab_is_eog(v, (int32_t)id), want);
					n++;
				}
			}
			assert_int_equal(n, 0);
		}
	}

	tok = t_json_get(ref, "tokenize");
	for (i = 0; i < t_json_len(tok); i++) {
		const struct t_json *c = t_json_at(tok, i), *t = t_json_get(c, "text"), *ab = t_json_get(c, "add_bos"),
		                    *sp = t_json_get(c, "special");
		int32_t *want;
		size_t wn;

		assert_non_null(t);
		want = json_ids(t_json_get(c, "ids"), &wn);
		snprintf(label, sizeof(label), "%s tokenize #%zu", m->stem, i);
		if (!check_ids(v, t->str, t->len, ab ? ab->b : -1, sp ? sp->b : 0, want, wn, label))
			bad++;
		free(want);
	}
	det = t_json_get(ref, "detokenize");
	for (i = 0; i < t_json_len(det); i++) {
		const struct t_json *c = t_json_at(det, i), *t = t_json_get(c, "text"), *sp = t_json_get(c, "special");
		int32_t *ids;
		size_t nids;

		assert_non_null(t);
		ids = json_ids(t_json_get(c, "ids"), &nids);
		snprintf(label, sizeof(label), "%s detokenize #%zu", m->stem, i);
		if (!check_text(v, ids, nids, sp ? sp->b : 0, t->str, t->len, label))
			bad++;
		free(ids);
	}
	/* the reference texts round-trip too */
	for (i = 0; i < t_json_len(tok); i++) {
		const struct t_json *t = t_json_get(t_json_at(tok, i), "text");

		snprintf(label, sizeof(label), "%s round trip #%zu", m->stem, i);
		if (!round_trip(v, t->str, t->len, 0, label))
			bad++;
	}
	print_message("test_tokenizer: %s: %zu tokenize and %zu detokenize reference cases, %zu differences\n", m->stem,
	              t_json_len(tok), t_json_len(det), bad);
	t_json_free(ref);
	assert_int_equal(bad, 0);
}

static int hexnib(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The tokenizer's own references (make_tokref.py): many texts, with and without BOS and special tokens. */
static void check_tokref(const struct cce_vocab *v, const char *stem)
{
	char path[PATH_MAX + 64], err[256], label[160];
	const struct t_json *tok, *det;
	struct t_json *ref;
	size_t i, bad = 0;

	ref_path(path, sizeof(path), "tokref", stem);
	ref = t_json_load(path, err, sizeof(err));
	if (!ref) {
		if (errno != ENOENT)
			fail_msg("%s", err);
		print_message("test_tokenizer: no %s: those checks skipped\n", path);
		return;
	}
	tok = t_json_get(ref, "tokenize");
	det = t_json_get(ref, "detokenize");
	assert_true(t_json_len(tok) > 0);
	for (i = 0; i < t_json_len(tok); i++) {
		const struct t_json *c = t_json_at(tok, i), *t = t_json_get(c, "text"), *ab = t_json_get(c, "add_bos"),
		                    *sp = t_json_get(c, "special");
		int32_t *want;
		size_t wn;

		want = json_ids(t_json_get(c, "ids"), &wn);
		snprintf(label, sizeof(label), "%s tokenize #%zu", stem, i);
		bad += !check_ids(v, t->str, t->len, ab && ab->type == T_JSON_BOOL ? ab->b : -1, sp && sp->b, want, wn,
		                  label);
		free(want);
	}
	for (i = 0; i < t_json_len(det); i++) {
		const struct t_json *c = t_json_at(det, i), *hex = t_json_get(c, "text_hex"),
		                    *sp = t_json_get(c, "special");
		char *want = malloc(hex->len / 2 + 1);
		int32_t *ids;
		size_t nids, k;

		assert_non_null(want);
		for (k = 0; k < hex->len / 2; k++)
			want[k] = (char)(hexnib(hex->str[2 * k]) << 4 | hexnib(hex->str[2 * k + 1]));
		ids = json_ids(t_json_get(c, "ids"), &nids);
		snprintf(label, sizeof(label), "%s detokenize #%zu", stem, i);
		bad += !check_text(v, ids, nids, sp && sp->b, want, hex->len / 2, label);
		free(ids);
		free(want);
	}
	print_message("test_tokenizer: %s: %zu tokenize and %zu detokenize cases of %s, %zu differences\n", stem,
	              t_json_len(tok), t_json_len(det), t_json_str(ref, "peer"), bad);
	t_json_free(ref);
	assert_int_equal(bad, 0);
}

static void check_round_trips(const struct cce_vocab *v, const struct tmodel *m)
{
	char label[128], *buf = malloc(4 * 64);
	uint64_t seed = 0x9E3779B97F4A7C15ull;
	size_t i, bad = 0;
	uint8_t ok_byte[256];
	int bpe = strcmp(cce_vocab_kind(v), "gpt2") == 0;

	assert_non_null(buf);
	/* a BPE vocabulary may lack the symbols of some bytes (SmolLM2: 0x04 0x06 0x13 0x14 0x16 0x1D and the lead
	 * bytes C0 C1 F1 F2 F5..FF): llama.cpp drops those bytes, so text with them does not round-trip */
	for (i = 0; i < 256; i++) {
		char sym[4];

		byte_symbol((unsigned)i, sym);
		ok_byte[i] = !bpe || cce_vocab_find(v, sym, strlen(sym)) >= 0;
	}
	for (i = 0; i < T_NELEM(varied); i++) {
		snprintf(label, sizeof(label), "%s varied #%zu", m->stem, i);
		bad += !round_trip(v, varied[i].s, varied[i].len, 0, label);
	}
	for (i = 0; i < 300; i++) {
		size_t len = random_text(&seed, buf, 1 + rng_next(&seed) % 64, ok_byte);

		snprintf(label, sizeof(label), "%s random #%zu", m->stem, i);
		bad += !round_trip(v, buf, len, 0, label);
	}
	free(buf);
	assert_int_equal(bad, 0);
}

/* Properties that hold for any vocabulary. */
static void check_basics(const struct cce_vocab *v)
{
	static const char *const bad_utf8[] = {"\xff",         "a\x80",          "\xc0\x80",         "\xc1\xbf",
	                                       "\xe0\x80\x80", "\xed\xa0\x80",   "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
	                                       "\xe2\x82",     "ok \xf0\x9f\x98"};
	int32_t *ids = NULL, bos = cce_vocab_bos(v), one;
	size_t n = 99, i;
	char piece[4], *text = NULL;
	int len;

	/* invalid UTF-8 */
	for (i = 0; i < T_NELEM(bad_utf8); i++) {
		assert_int_equal(cce_tokenize(v, bad_utf8[i], strlen(bad_utf8[i]), -1, 0, &ids, &n), -EILSEQ);
		assert_null(ids);
		assert_int_equal(n, 0);
	}
	/* empty text: BOS alone or nothing */
	assert_int_equal(cce_tokenize(v, NULL, 0, 1, 0, &ids, &n), 0);
	assert_int_equal(n, bos >= 0 ? 1 : 0);
	if (bos >= 0)
		assert_int_equal(ids[0], bos);
	free(ids);
	assert_int_equal(cce_tokenize(v, "", 0, 0, 1, &ids, &n), 0);
	assert_int_equal(n, 0);
	free(ids);
	assert_int_equal(cce_tokenize(v, "", 0, -1, 0, &ids, &n), 0);
	assert_int_equal(n, cce_vocab_add_bos(v) && bos >= 0 ? 1 : 0);
	free(ids);
	assert_int_equal(cce_tokenize(NULL, "x", 1, 0, 0, &ids, &n), -EINVAL);
	assert_int_equal(cce_tokenize(v, NULL, 1, 0, 0, &ids, &n), -EINVAL);

	/* bad ids */
	assert_int_equal(cce_token_piece(v, -1, 0, piece, sizeof(piece)), -EINVAL);
	assert_int_equal(cce_token_piece(v, (int32_t)cce_vocab_size(v), 0, piece, sizeof(piece)), -EINVAL);
	one = -1;
	assert_int_equal(cce_detokenize(v, &one, 1, 0, &text, NULL), -EINVAL);
	assert_null(text);
	one = (int32_t)cce_vocab_size(v);
	assert_int_equal(cce_detokenize(v, &one, 1, 0, &text, NULL), -EINVAL);
	assert_int_equal(cce_detokenize(v, NULL, 0, 0, &text, NULL), 0);
	assert_string_equal(text, "");
	free(text);
	assert_false(cce_vocab_is_eog(v, -1));
	assert_false(cce_vocab_is_eog(v, (int32_t)cce_vocab_size(v)));

	/* pieces: the length needed is returned whatever the buffer; every token's piece matches its detokenization
	 * alone (but the SentencePiece first-piece space) */
	for (one = 0; one < (int32_t)cce_vocab_size(v); one++) {
		char *big;
		size_t tl;

		len = cce_token_piece(v, one, 1, NULL, 0);
		assert_true(len >= 0);
		big = malloc((size_t)len + 1);
		assert_non_null(big);
		assert_int_equal(cce_token_piece(v, one, 1, big, (size_t)len + 1), len);
		assert_int_equal(cce_detokenize(v, &one, 1, 1, &text, &tl), 0);
		if (strcmp(cce_vocab_kind(v), "llama") == 0 && len > 0 && big[0] == ' ')
			assert_true(tl == (size_t)len - 1 && memcmp(text, big + 1, tl) == 0);
		else if (strcmp(cce_vocab_kind(v), "gpt2") != 0)
			assert_true(tl == (size_t)len && memcmp(text, big, tl) == 0);
		free(text);
		free(big);
	}
	/* a control token's piece is empty without special */
	if (bos >= 0) {
		assert_int_equal(cce_token_piece(v, bos, 0, piece, sizeof(piece)), 0);
		assert_int_equal(cce_vocab_find(v, "\xff\xfe no such token", 16), -1);
	}
}

static void t_model(void **state)
{
	const struct tmodel *m = *state;
	struct ccm_gguf *g = NULL;
	struct cce_vocab *v = open_vocab(m, &g);

	if (!v)
		skip();
	check_basics(v);
	check_reference(v, m);
	check_tokref(v, m->tokref);
	check_round_trips(v, m);
	if (!m->file) { /* SmolLM2 specifics llama.cpp shows */
		int32_t want[] = {1, 4093, 198, 6004, 2};

		assert_string_equal(cce_vocab_kind(v), "gpt2");
		assert_int_equal(cce_vocab_size(v), 49152);
		assert_int_equal(cce_vocab_find(v, "<|im_end|>", 10), 2);
		assert_int_equal(cce_vocab_find(v, "<|im_start|>", 12), 1);
		assert_true(cce_vocab_is_eog(v, 2));
		assert_true(cce_vocab_is_eog(v, 0));
		assert_false(cce_vocab_is_eog(v, 1));
		assert_true(check_ids(v, "<|im_start|>user\nhi<|im_end|>", 29, -1, 1, want, 5, "SmolLM2 ChatML"));
		assert_true(round_trip(v, "<|im_start|>user\nhi<|im_end|>", 29, 1, "SmolLM2 ChatML special"));
	} else {
		assert_string_equal(cce_vocab_kind(v), "llama");
		assert_int_equal(cce_vocab_find(v, "</s>", 4), 2);
	}
	cce_vocab_free(v);
	ccm_gguf_free(g);
}

/* The same vocabulary used from several threads at once gives the same ids. */
struct thr_arg {
	const struct cce_vocab *v;
	uint64_t seed;
	int ok;
};

static void *thr_main(void *p)
{
	struct thr_arg *a = p;
	char buf[4 * 200];
	uint64_t s = a->seed;
	int r;

	a->ok = 1;
	for (r = 0; r < 50 && a->ok; r++) {
		size_t len = random_text(&s, buf, 200, NULL), n1, n2;
		int32_t *i1, *i2;

		if (cce_tokenize(a->v, buf, len, -1, 1, &i1, &n1) || cce_tokenize(a->v, buf, len, -1, 1, &i2, &n2)) {
			a->ok = 0;
			break;
		}
		a->ok = n1 == n2 && memcmp(i1, i2, n1 * sizeof(*i1)) == 0;
		free(i1);
		free(i2);
	}
	return NULL;
}

static void t_threads(void **state)
{
	const struct tmodel *m = &tmodels[T_NELEM(tmodels) - 1];
	struct ccm_gguf *g = NULL;
	struct cce_vocab *v = open_vocab(m, &g);
	struct thr_arg args[4];
	pthread_t th[4];
	int i;

	(void)state;
	if (!v)
		skip();
	for (i = 0; i < 4; i++) {
		args[i] = (struct thr_arg){v, 12345, 0};
		assert_int_equal(pthread_create(&th[i], NULL, thr_main, &args[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_true(args[i].ok);
	}
	cce_vocab_free(v);
	ccm_gguf_free(g);
}

/* ---- GGUF files built in memory -------------------------------------------------------------------------------- */

struct gb {
	uint8_t *p;
	size_t n, cap;
	uint64_t nkv;
};

static void gb_put(struct gb *b, const void *x, size_t n)
{
	if (b->cap - b->n < n) {
		b->cap = (b->cap + n) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->n, x, n);
	b->n += n;
}

static void gb_u32(struct gb *b, uint32_t x)
{
	gb_put(b, &x, 4);
}

static void gb_u64(struct gb *b, uint64_t x)
{
	gb_put(b, &x, 8);
}

static void gb_str(struct gb *b, const char *s)
{
	gb_u64(b, strlen(s));
	gb_put(b, s, strlen(s));
}

static void gb_begin(struct gb *b)
{
	memset(b, 0, sizeof(*b));
	gb_put(b, "GGUF", 4);
	gb_u32(b, 3);
	gb_u64(b, 0); /* tensors */
	gb_u64(b, 0); /* key/value pairs, set by gb_parse */
}

static void kv_key(struct gb *b, const char *key, uint32_t type)
{
	gb_str(b, key);
	gb_u32(b, type);
	b->nkv++;
}

static void kv_str(struct gb *b, const char *key, const char *val)
{
	kv_key(b, key, CCM_STRING);
	gb_str(b, val);
}

static void kv_u32(struct gb *b, const char *key, uint32_t val)
{
	kv_key(b, key, CCM_U32);
	gb_u32(b, val);
}

static void kv_i32(struct gb *b, const char *key, int32_t val)
{
	kv_key(b, key, CCM_I32);
	gb_put(b, &val, 4);
}

static void kv_bool(struct gb *b, const char *key, int val)
{
	uint8_t x = (uint8_t)val;

	kv_key(b, key, CCM_BOOL);
	gb_put(b, &x, 1);
}

static void kv_strs(struct gb *b, const char *key, const char *const *v, size_t n)
{
	size_t i;

	kv_key(b, key, CCM_ARRAY);
	gb_u32(b, CCM_STRING);
	gb_u64(b, n);
	for (i = 0; i < n; i++)
		gb_str(b, v[i]);
}

static void kv_f32s(struct gb *b, const char *key, const float *v, size_t n)
{
	kv_key(b, key, CCM_ARRAY);
	gb_u32(b, CCM_F32);
	gb_u64(b, n);
	gb_put(b, v, n * 4);
}

static void kv_i32s(struct gb *b, const char *key, const int32_t *v, size_t n)
{
	kv_key(b, key, CCM_ARRAY);
	gb_u32(b, CCM_I32);
	gb_u64(b, n);
	gb_put(b, v, n * 4);
}

/* Parse the file built and load its vocabulary: cce_vocab_load's result; the vocab (if any) in *ret. */
static int gb_load(struct gb *b, struct cce_vocab **ret, char *err, size_t errlen)
{
	struct ccm_gguf *g;
	char perr[256];
	int rc;

	memcpy(b->p + 16, &b->nkv, 8);
	rc = ccm_gguf_parse(b->p, b->n, &g, perr, sizeof(perr));
	if (rc)
		fail_msg("the test's GGUF does not parse: %s", perr);
	*ret = NULL;
	rc = cce_vocab_load(g, ret, err, errlen);
	ccm_gguf_free(g); /* the vocabulary does not keep the file */
	free(b->p);
	b->p = NULL;
	return rc;
}

/* A small SentencePiece vocabulary: <unk> <s> </s>, the 256 byte tokens, then pieces with scores. */
#define SPM_EXTRA 6
static const char *const spm_pieces[SPM_EXTRA] = {"\xe2\x96\x81",
                                                  "a",
                                                  "b",
                                                  "\xe2\x96\x81"
                                                  "a",
                                                  "ab",
                                                  "\xe2\x96\x81"
                                                  "ab"};
static const float spm_scores[SPM_EXTRA] = {-1, -2, -2, -1.5f, -1, -0.5f};

static void spm_file(struct gb *b, int with_types, int with_scores, size_t drop_scores)
{
	const char *toks[3 + 256 + SPM_EXTRA];
	char names[256][8];
	float scores[3 + 256 + SPM_EXTRA];
	int32_t types[3 + 256 + SPM_EXTRA];
	size_t i, n = 3 + 256 + SPM_EXTRA;

	toks[0] = "<unk>";
	toks[1] = "<s>";
	toks[2] = "</s>";
	types[0] = 2;
	types[1] = types[2] = 3;
	for (i = 0; i < 256; i++) {
		snprintf(names[i], sizeof(names[i]), "<0x%02X>", (unsigned)i);
		toks[3 + i] = names[i];
		types[3 + i] = 6;
	}
	for (i = 0; i < n; i++)
		scores[i] = i < 3 + 256 ? 0 : spm_scores[i - 3 - 256];
	for (i = 0; i < SPM_EXTRA; i++) {
		toks[3 + 256 + i] = spm_pieces[i];
		types[3 + 256 + i] = 1;
	}
	gb_begin(b);
	kv_str(b, "general.architecture", "llama");
	kv_str(b, "tokenizer.ggml.model", "llama");
	kv_strs(b, "tokenizer.ggml.tokens", toks, n);
	if (with_scores)
		kv_f32s(b, "tokenizer.ggml.scores", scores, n - drop_scores);
	if (with_types)
		kv_i32s(b, "tokenizer.ggml.token_type", types, n);
}

static int32_t spm_id(const char *piece)
{
	size_t i;

	for (i = 0; i < SPM_EXTRA; i++)
		if (strcmp(spm_pieces[i], piece) == 0)
			return (int32_t)(3 + 256 + i);
	return -1;
}

static void t_spm_small(void **state)
{
	struct gb b;
	struct cce_vocab *v;
	char err[256];
	int32_t *ids;
	size_t n;
	char *text;

	(void)state;
	spm_file(&b, 1, 1, 0);
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), 0);
	assert_string_equal(cce_vocab_kind(v), "llama");
	assert_int_equal(cce_vocab_bos(v), 1); /* llama.cpp's SPM defaults */
	assert_int_equal(cce_vocab_eos(v), 2);
	assert_true(cce_vocab_add_bos(v));
	assert_true(cce_vocab_is_eog(v, 2)); /* "</s>" */
	/* "ab ab": "▁ab" (best score), "▁ab" */
	{
		int32_t want[] = {1,
		                  spm_id("\xe2\x96\x81"
		                         "ab"),
		                  spm_id("\xe2\x96\x81"
		                         "ab")};

		assert_true(check_ids(v, "ab ab", 5, -1, 0, want, 3, "spm"));
	}
	/* "bab": "▁" + "b"? merges by score: "ab" (-1) beats "▁a"? no pair "▁b": ▁, b, ab */
	{
		int32_t want[] = {spm_id("\xe2\x96\x81"), spm_id("b"), spm_id("ab")};

		assert_true(check_ids(v, "bab", 3, 0, 0, want, 3, "spm"));
	}
	/* unknown characters fall back to bytes */
	{
		int32_t want[] = {spm_id("\xe2\x96\x81"), 3 + 0xC3, 3 + 0xA9, 3 + 'z'};

		assert_true(check_ids(v, "\xc3\xa9z", 3, 0, 0, want, 4, "spm bytes"));
	}
	/* control tokens only with parse_special; the text after one gets the prefix space again */
	{
		int32_t want[] = {spm_id("\xe2\x96\x81"
		                         "a"),
		                  2, spm_id("\xe2\x96\x81"), spm_id("b")};

		assert_true(check_ids(v, "a</s>b", 6, 0, 1, want, 4, "spm special"));
		assert_int_equal(cce_tokenize(v, "a</s>b", 6, 0, 0, &ids, &n), 0);
		assert_true(n > 4); /* "</s>" as text: bytes */
		free(ids);
	}
	/* pieces and detokenizing: the first piece loses its space, byte tokens give bytes, controls nothing */
	{
		int32_t list[] = {1,
		                  spm_id("\xe2\x96\x81"
		                         "ab"),
		                  3 + 0xC3, 3 + 0xA9, 2};

		assert_true(check_text(v, list + 1, 3, 0, "ab\xc3\xa9", 4, "spm detok"));
		assert_true(check_text(v, list, 5, 0, " ab\xc3\xa9", 5, "spm detok bos"));
		assert_true(check_text(v, list, 5, 1, "<s> ab\xc3\xa9</s>", 12, "spm detok special"));
		assert_int_equal(cce_detokenize(v, list, 0, 0, &text, NULL), 0);
		assert_string_equal(text, "");
		free(text);
	}
	cce_vocab_free(v);

	/* no scores: all 0; no types: all normal, so "<s>" is plain text */
	spm_file(&b, 0, 0, 0);
	kv_bool(&b, "tokenizer.ggml.add_space_prefix", 0);
	kv_bool(&b, "tokenizer.ggml.add_bos_token", 0);
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), 0);
	assert_false(cce_vocab_add_bos(v));
	{
		int32_t want[] = {3 + '<', 3 + 's',
		                  3 + '>'}; /* "<s>" is a normal token here, and no pair of it merges */

		assert_true(check_ids(v, "<s>", 3, -1, 1, want, 3, "spm no types"));
		assert_int_equal(cce_tokenize(v, "ab", 2, -1, 0, &ids, &n), 0);
		assert_int_equal(n, 1); /* no prefix space: "ab" */
		assert_int_equal(ids[0], spm_id("ab"));
		free(ids);
	}
	cce_vocab_free(v);
}

/* A small byte-level BPE vocabulary: the 256 byte symbols, a few merges (one naming unknown parts, one whose
 * result is no token, one without a space), and ChatML-like control and user-defined tokens. */
static void bpe_file(struct gb *b, const char *pre, int merges)
{
	static const char *const extra[] = {"\xc4\xa0"
	                                    "a",
	                                    "ab",
	                                    "\xc4\xa0"
	                                    "ab",
	                                    "<|im_end|>",
	                                    "<tool>",
	                                    "abc"};
	static const char *const mlist[] = {"\xc4\xa0 a",
	                                    "a b",
	                                    "\xc4\xa0"
	                                    "a b",
	                                    "q r s",
	                                    "b c",
	                                    "nospace",
	                                    "ab c",
	                                    "a b"};
	const char *toks[256 + T_NELEM(extra)];
	char syms[256][4];
	int32_t types[256 + T_NELEM(extra)];
	size_t i, k = 0;

	/* the byte-level symbols, in byte order */
	for (i = 0; i < 256; i++) {
		int pr = (i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE && i <= 0xFF);
		uint32_t cp = pr ? (uint32_t)i : 256 + (uint32_t)k++;

		syms[i][put_utf8(syms[i], cp)] = 0;
		toks[i] = syms[i];
		types[i] = 1;
	}
	for (i = 0; i < T_NELEM(extra); i++) {
		toks[256 + i] = extra[i];
		types[256 + i] = i == 3 ? 3 : i == 4 ? 4 : 1;
	}
	gb_begin(b);
	kv_str(b, "general.architecture", "qwen2");
	kv_str(b, "tokenizer.ggml.model", "gpt2");
	if (pre)
		kv_str(b, "tokenizer.ggml.pre", pre);
	kv_strs(b, "tokenizer.ggml.tokens", toks, T_NELEM(toks));
	kv_i32s(b, "tokenizer.ggml.token_type", types, T_NELEM(types));
	if (merges)
		kv_strs(b, "tokenizer.ggml.merges", mlist, T_NELEM(mlist));
	kv_u32(b, "tokenizer.ggml.eos_token_id", 256 + 3);
}

static void t_bpe_small(void **state)
{
	struct gb b;
	struct cce_vocab *v;
	char err[256];
	int32_t *ids;
	size_t n;

	(void)state;
	bpe_file(&b, "qwen2", 1);
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), 0);
	assert_string_equal(cce_vocab_kind(v), "gpt2");
	assert_int_equal(cce_vocab_bos(v), 11); /* llama.cpp's gpt2 default, in range here */
	assert_false(cce_vocab_add_bos(v));
	assert_int_equal(cce_vocab_eos(v), 259);
	assert_true(cce_vocab_is_eog(v, 259));
	{
		int32_t want[] = {257, 258}; /* "ab" " ab" */

		assert_true(check_ids(v, "ab ab", 5, -1, 0, want, 2, "bpe"));
	}
	{
		/* "abc": "a b" then "ab c" makes "abc", a token */
		int32_t want[] = {261};

		assert_true(check_ids(v, "abc", 3, 0, 0, want, 1, "bpe abc"));
	}
	{
		/* "bc": the merge "b c" applies, "bc" is no token: its bytes' one-byte tokens */
		int32_t want[] = {'b', 'c'};

		assert_true(check_ids(v, "bc", 2, 0, 0, want, 2, "bpe bc"));
	}
	{
		/* the user-defined token is matched even without parse_special, the control one only with it */
		int32_t want1[] = {257, 260, 259};

		assert_true(check_ids(v, "ab<tool><|im_end|>", 18, 0, 1, want1, 3, "bpe special"));
		assert_int_equal(cce_tokenize(v, "<tool><|im_end|>", 16, 0, 0, &ids, &n), 0);
		assert_true(n > 2 && ids[0] == 260 && ids[1] == '<');
		free(ids);
	}
	{
		/* forced BOS */
		int32_t want[] = {11, 257};

		assert_true(check_ids(v, "ab", 2, 1, 0, want, 2, "bpe forced bos"));
	}
	assert_true(round_trip(v, " ab\xc3\xa9\n\t x", 9, 0, "bpe"));
	assert_true(check_text(v, (int32_t[]){259, 258}, 2, 0, " ab", 3, "bpe detok"));
	assert_true(check_text(v, (int32_t[]){259, 258}, 2, 1, "<|im_end|> ab", 13, "bpe detok special"));
	cce_vocab_free(v);

	/* the other pre-tokenizers load; "default" cleans spaces when detokenizing */
	bpe_file(&b, "llama-bpe", 1);
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), 0);
	assert_true(cce_vocab_add_bos(v)); /* llama3 adds BOS */
	cce_vocab_free(v);
	bpe_file(&b, "smollm", 1);
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), 0);
	cce_vocab_free(v);
	bpe_file(&b, NULL, 1);
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), 0);
	{
		int32_t *t2;
		size_t n2;
		char *text;

		assert_int_equal(cce_tokenize(v, "a .", 3, 0, 0, &t2, &n2), 0);
		assert_int_equal(cce_detokenize(v, t2, n2, 0, &text, NULL), 0);
		assert_string_equal(text, "a.");
		free(text);
		free(t2);
	}
	cce_vocab_free(v);
}

static void t_bad_files(void **state)
{
	static const char *const two[] = {"a", "b"}, *const dup[] = {"a", "b", "a"}, *const empty[] = {"a", "", "c"};
	struct gb b;
	struct cce_vocab *v;
	char err[256];

	(void)state;
	/* no tokenizer at all */
	gb_begin(&b);
	kv_str(&b, "general.architecture", "llama");
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), -ENOENT);
	assert_null(v);
	assert_non_null(strstr(err, "no tokenizer"));
	gb_begin(&b);
	kv_str(&b, "tokenizer.ggml.model", "none");
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), -ENOENT);
	/* tokens but no model, model of the wrong type */
	gb_begin(&b);
	kv_strs(&b, "tokenizer.ggml.tokens", two, 2);
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), -EBADMSG);
	gb_begin(&b);
	kv_u32(&b, "tokenizer.ggml.model", 1);
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), -EBADMSG);
	/* models and pre-tokenizers we do not implement */
	gb_begin(&b);
	kv_str(&b, "tokenizer.ggml.model", "bert");
	kv_strs(&b, "tokenizer.ggml.tokens", two, 2);
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), -EOPNOTSUPP);
	assert_non_null(strstr(err, "bert"));
	bpe_file(&b, "deepseek-coder", 1);
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), -EOPNOTSUPP);
	assert_non_null(strstr(err, "deepseek-coder"));
	/* missing or inconsistent arrays */
	gb_begin(&b);
	kv_str(&b, "tokenizer.ggml.model", "llama");
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "tokenizer.ggml.tokens"));
	gb_begin(&b);
	kv_str(&b, "tokenizer.ggml.model", "llama");
	kv_i32s(&b, "tokenizer.ggml.tokens", (int32_t[]){1, 2}, 2);
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), -EBADMSG);
	gb_begin(&b);
	kv_str(&b, "tokenizer.ggml.model", "llama");
	kv_strs(&b, "tokenizer.ggml.tokens", two, 0);
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), -EBADMSG);
	spm_file(&b, 1, 1, 1); /* one score short */
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "scores"));
	gb_begin(&b);
	kv_str(&b, "tokenizer.ggml.model", "llama");
	kv_strs(&b, "tokenizer.ggml.tokens", two, 2);
	kv_i32s(&b, "tokenizer.ggml.token_type", (int32_t[]){1}, 1);
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "token_type"));
	gb_begin(&b);
	kv_str(&b, "tokenizer.ggml.model", "llama");
	kv_strs(&b, "tokenizer.ggml.tokens", two, 2);
	kv_f32s(&b, "tokenizer.ggml.token_type", (float[]){1, 1}, 2);
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), -EBADMSG);
	/* duplicate tokens (llama.cpp aborts on them) */
	gb_begin(&b);
	kv_str(&b, "tokenizer.ggml.model", "llama");
	kv_strs(&b, "tokenizer.ggml.tokens", dup, 3);
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "duplicates"));
	/* a gpt2 vocabulary needs its merges */
	bpe_file(&b, "qwen2", 0);
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "merges"));
	/* flags of the wrong type */
	spm_file(&b, 1, 1, 0);
	kv_str(&b, "tokenizer.ggml.add_bos_token", "yes");
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), -EBADMSG);
	spm_file(&b, 1, 1, 0);
	kv_str(&b, "tokenizer.ggml.bos_token_id", "1");
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), -EBADMSG);

	/* out-of-range special ids keep the default (llama.cpp warns); a default past the vocabulary is none */
	gb_begin(&b);
	kv_str(&b, "tokenizer.ggml.model", "llama");
	kv_strs(&b, "tokenizer.ggml.tokens", two, 2);
	kv_u32(&b, "tokenizer.ggml.bos_token_id", 5);
	kv_i32(&b, "tokenizer.ggml.eos_token_id", -1);
	kv_u32(&b, "tokenizer.ggml.seperator_token_id", UINT32_MAX);
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), 0);
	assert_int_equal(cce_vocab_bos(v), 1);
	assert_int_equal(cce_vocab_eos(v), -1);
	{
		int32_t *ids;
		size_t n;

		/* no byte tokens and a character not in the vocabulary: the unknown token (id 0) */
		assert_int_equal(cce_tokenize(v, "x", 1, 0, 0, &ids, &n), 0);
		assert_true(n >= 1);
		free(ids);
	}
	cce_vocab_free(v);
	/* empty tokens get llama.cpp's name */
	gb_begin(&b);
	kv_str(&b, "tokenizer.ggml.model", "llama");
	kv_strs(&b, "tokenizer.ggml.tokens", empty, 3);
	assert_int_equal(gb_load(&b, &v, err, sizeof(err)), 0);
	assert_int_equal(cce_vocab_find(v, "[EMPTY_1]", 9), 1);
	cce_vocab_free(v);
	assert_int_equal(cce_vocab_load(NULL, &v, err, sizeof(err)), -EINVAL);
	cce_vocab_free(NULL);
}

/* Copy a key/value pair of a parsed file into the file being built. */
static void kv_copy(struct gb *b, const struct ccm_kv *kv)
{
	static const uint8_t size[CCM_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
	uint64_t i;

	gb_u64(b, kv->key.len);
	gb_put(b, kv->key.s, kv->key.len);
	gb_u32(b, kv->type);
	b->nkv++;
	switch (kv->type) {
	case CCM_STRING:
		gb_u64(b, kv->v.str.len);
		gb_put(b, kv->v.str.s, kv->v.str.len);
		break;
	case CCM_ARRAY:
		gb_u32(b, kv->v.arr.type);
		gb_u64(b, kv->v.arr.n);
		if (kv->v.arr.type == CCM_STRING) {
			const struct ccm_str *ss = kv->v.arr.data;

			for (i = 0; i < kv->v.arr.n; i++) {
				gb_u64(b, ss[i].len);
				gb_put(b, ss[i].s, ss[i].len);
			}
		} else if (kv->v.arr.n) {
			gb_put(b, kv->v.arr.data, kv->v.arr.n * size[kv->v.arr.type]);
		}
		break;
	case CCM_F32: {
		float f = (float)kv->v.f;

		gb_put(b, &f, 4);
		break;
	}
	case CCM_F64:
		gb_put(b, &kv->v.f, 8);
		break;
	case CCM_BOOL: {
		uint8_t x = (uint8_t)kv->v.b;

		gb_put(b, &x, 1);
		break;
	}
	case CCM_I8:
	case CCM_I16:
	case CCM_I32:
	case CCM_I64:
		gb_put(b, &kv->v.i, size[kv->type]);
		break; /* little-endian: the low bytes */
	default:
		gb_put(b, &kv->v.u, size[kv->type]);
		break;
	}
}

/* SmolLM2's vocabulary under the other BPE pre-tokenizers, against llama.cpp on the same metadata. */
static void t_pre_variants(void **state)
{
	const struct tmodel *m = &tmodels[T_NELEM(tmodels) - 1];
	char path[PATH_MAX], err[256], stem[128];
	struct ccm_gguf *g;
	size_t p, i;

	(void)state;
	smollm2_path(path, sizeof(path));
	if (access(path, R_OK) != 0) {
		print_message("test_tokenizer: %s missing (set CC_SMOLLM2): skipped\n", path);
		skip();
	}
	assert_int_equal(ccm_gguf_open(path, &g, err, sizeof(err)), 0);
	for (p = 0; p < T_NELEM(variant_pres); p++) {
		struct gb b;
		struct cce_vocab *v;

		gb_begin(&b);
		for (i = 0; i < ccm_gguf_kv_count(g); i++)
			if (strcmp(ccm_gguf_kv(g, i)->key.s, "tokenizer.ggml.pre") != 0)
				kv_copy(&b, ccm_gguf_kv(g, i));
		kv_str(&b, "tokenizer.ggml.pre", variant_pres[p]);
		assert_int_equal(gb_load(&b, &v, err, sizeof(err)), 0);
		snprintf(stem, sizeof(stem), "%s@%s", m->tokref, variant_pres[p]);
		check_tokref(v, stem);
		cce_vocab_free(v);
	}
	ccm_gguf_free(g);
}

int main(void)
{
	struct CMUnitTest tests[T_NELEM(tmodels) + 5];
	size_t i;

	for (i = 0; i < T_NELEM(tmodels); i++) {
		tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(t_model, (void *)&tmodels[i]);
		tests[i].name = tmodels[i].stem;
	}
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(t_pre_variants);
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(t_threads);
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(t_spm_small);
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(t_bpe_small);
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(t_bad_files);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
