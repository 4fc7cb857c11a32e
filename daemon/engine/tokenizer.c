/* SPDX-License-Identifier: MIT */
/* tokenizer.c: the vocabularies of GGUF models and their tokenizers, SentencePiece ("llama") and byte-level BPE
 * ("gpt2"), splitting, merging and detokenizing exactly as llama.cpp does (see the notes at each step). */
#define _GNU_SOURCE /* memmem */
#include "engine.h"
#include "unicode.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Token attributes (llama.cpp's llama_token_attr bits that tokenization looks at) and our end-of-generation mark. */
enum {
	A_UNKNOWN = 1 << 0,
	A_UNUSED = 1 << 1,
	A_NORMAL = 1 << 2,
	A_CONTROL = 1 << 3,
	A_USER = 1 << 4,
	A_BYTE = 1 << 5,
	A_EOG = 1 << 7
};

/* tokenizer.ggml.token_type values 1..6 (GGUF's) as attributes. */
static const uint8_t token_type_attr[7] = {0, A_NORMAL, A_UNKNOWN, A_CONTROL, A_USER, A_UNUSED, A_BYTE};

enum { V_SPM, V_BPE };

#define MAX_TEXT ((size_t)1 << 30) /* the longest text tokenized in one call */
#define NO_SLOT UINT32_MAX

struct merge {
	uint32_t l, r; /* the two parts' string ids (NO_SLOT: empty slot) */
	uint32_t rank; /* the merge's index in tokenizer.ggml.merges */
	uint32_t res;  /* the merged text's string id */
};

struct cce_vocab {
	int kind;
	uint32_t n;    /* tokens */
	uint32_t nstr; /* strings: the tokens, then the merge parts and results that are no token */
	uint32_t strcap;
	char *arena; /* the strings, each NUL-terminated */
	size_t arena_len, arena_cap;
	uint32_t *soff, *slen;
	float *score;    /* SPM only */
	uint8_t *attr;   /* per token */
	uint32_t *hslot; /* string hash: id + 1, 0 when empty */
	uint32_t hmask, hcount;
	struct merge *mslot; /* BPE merges, open addressing by (l, r) */
	uint32_t mmask, mcount;
	int32_t *special; /* the control / user-defined / unknown tokens, longest first */
	uint32_t nspecial;
	int32_t bos, eos, eot, eom, unk, sep, pad, mask;
	int32_t fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
	int add_bos, add_eos, add_space_prefix, ignore_merges, clean_spaces;
	uint8_t stages[4];
	uint8_t nstages;
	int32_t byte_tok[256]; /* SPM: <0xXX> (or the byte itself) for the byte fallback; BPE: the one-byte token */
	uint16_t b2cp[256];    /* BPE: byte -> the code point GPT-2's byte-level mapping gives it */
	int16_t cp2b[324];     /* and back (-1: none) */
};

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* ---- strings: an arena and a hash from text to id ------------------------------------------------------------- */

static uint32_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return (uint32_t)h;
}

static const char *str_text(const struct cce_vocab *v, uint32_t id)
{
	return v->arena + v->soff[id];
}

/* The string id of a text (a token or a merge string), or -1. */
static int64_t str_find(const struct cce_vocab *v, const char *s, size_t n)
{
	uint32_t i = hash_bytes(s, n) & v->hmask;

	for (;; i = (i + 1) & v->hmask) {
		uint32_t e = v->hslot[i];

		if (!e)
			return -1;
		e--;
		if (v->slen[e] == n && memcmp(str_text(v, e), s, n) == 0)
			return e;
	}
}

/* A token's id, or -1. */
static int32_t tok_find(const struct cce_vocab *v, const char *s, size_t n)
{
	int64_t id = str_find(v, s, n);

	return id >= 0 && id < v->n ? (int32_t)id : -1;
}

static int hash_resize(struct cce_vocab *v, uint32_t nslots)
{
	uint32_t *h = calloc(nslots, sizeof(*h)), i;

	if (!h)
		return -ENOMEM;
	for (i = 0; i < v->nstr; i++) {
		uint32_t k = hash_bytes(str_text(v, i), v->slen[i]) & (nslots - 1);

		while (h[k])
			k = (k + 1) & (nslots - 1);
		h[k] = i + 1;
	}
	free(v->hslot);
	v->hslot = h;
	v->hmask = nslots - 1;
	return 0;
}

/* Append a string (not yet present) and hash it; its id in *ret. */
static int str_add(struct cce_vocab *v, const char *s, size_t n, uint32_t *ret)
{
	uint32_t k;

	if (n > UINT32_MAX - 1 || v->arena_len + n + 1 > UINT32_MAX || v->nstr == UINT32_MAX - 1)
		return -E2BIG;
	if (v->arena_len + n + 1 > v->arena_cap) {
		size_t nc = v->arena_cap ? v->arena_cap : 4096;
		char *na;

		while (nc < v->arena_len + n + 1)
			nc *= 2;
		if (nc > UINT32_MAX)
			nc = UINT32_MAX;
		na = realloc(v->arena, nc);
		if (!na)
			return -ENOMEM;
		v->arena = na;
		v->arena_cap = nc;
	}
	if (v->nstr == v->strcap) {
		uint32_t nc = v->strcap ? v->strcap * 2 : 1024;
		uint32_t *no = realloc(v->soff, (size_t)nc * sizeof(*no)), *nl;

		if (!no)
			return -ENOMEM;
		v->soff = no;
		nl = realloc(v->slen, (size_t)nc * sizeof(*nl));
		if (!nl)
			return -ENOMEM;
		v->slen = nl;
		v->strcap = nc;
	}
	memcpy(v->arena + v->arena_len, s, n);
	v->arena[v->arena_len + n] = 0;
	v->soff[v->nstr] = (uint32_t)v->arena_len;
	v->slen[v->nstr] = (uint32_t)n;
	v->arena_len += n + 1;
	*ret = v->nstr++;
	if ((uint64_t)(v->hcount + 1) * 2 > (uint64_t)v->hmask + 1) {
		int rc = hash_resize(v, (v->hmask + 1) * 2);

		if (rc)
			return rc;
		v->hcount++;
		return 0;
	}
	k = hash_bytes(s, n) & v->hmask;
	while (v->hslot[k])
		k = (k + 1) & v->hmask;
	v->hslot[k] = *ret + 1;
	v->hcount++;
	return 0;
}

/* The id of a string, added if new. */
static int str_intern(struct cce_vocab *v, const char *s, size_t n, uint32_t *ret)
{
	int64_t id = str_find(v, s, n);

	if (id >= 0) {
		*ret = (uint32_t)id;
		return 0;
	}
	return str_add(v, s, n, ret);
}

/* ---- BPE merges: (left id, right id) -> rank, merged id -------------------------------------------------------- */

static uint32_t hash_pair(uint32_t l, uint32_t r)
{
	uint64_t h = ((uint64_t)l << 32 | r) * 0x9e3779b97f4a7c15ull;

	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	return (uint32_t)(h >> 32);
}

static const struct merge *merge_find(const struct cce_vocab *v, uint32_t l, uint32_t r)
{
	uint32_t i;

	if (!v->mslot)
		return NULL;
	for (i = hash_pair(l, r) & v->mmask;; i = (i + 1) & v->mmask) {
		const struct merge *m = &v->mslot[i];

		if (m->l == NO_SLOT)
			return NULL;
		if (m->l == l && m->r == r)
			return m;
	}
}

/* llama.cpp's bpe_ranks.emplace(): the first of duplicate merges wins. */
static void merge_add(struct cce_vocab *v, uint32_t l, uint32_t r, uint32_t rank, uint32_t res)
{
	uint32_t i;

	for (i = hash_pair(l, r) & v->mmask;; i = (i + 1) & v->mmask) {
		struct merge *m = &v->mslot[i];

		if (m->l == NO_SLOT) {
			*m = (struct merge){l, r, rank, res};
			v->mcount++;
			return;
		}
		if (m->l == l && m->r == r)
			return;
	}
}

/* ---- loading --------------------------------------------------------------------------------------------------- */

/* The BPE pre-tokenizers (tokenizer.ggml.pre) we implement: llama.cpp's names, its split for each, and the flags
 * its loader sets with them. Names that set anything else (add_sep, escaped whitespace, ...) are left out. */
struct pre_def {
	const char *name;
	uint8_t stages[4];
	uint8_t nstages;
	uint8_t flags; /* P_* */
};

enum { P_IGNORE_MERGES = 1, P_ADD_BOS = 2, P_CLEAN_SPACES = 4 };

#define ST1(a) {a}, 1
#define ST2(a, b) {a, b}, 2
static const struct pre_def pre_defs[] = {
    {"default", {CCE_PRE_PUNCT_RUN, CCE_PRE_GPT2, CCE_PRE_NUM_RUN, CCE_PRE_DIGIT3}, 4, P_CLEAN_SPACES},
    {"gpt-2", ST1(CCE_PRE_GPT2), P_CLEAN_SPACES},
    {"phi-2", ST1(CCE_PRE_GPT2), P_CLEAN_SPACES},
    {"jina-es", ST1(CCE_PRE_GPT2), P_CLEAN_SPACES},
    {"jina-de", ST1(CCE_PRE_GPT2), P_CLEAN_SPACES},
    {"gigachat", ST1(CCE_PRE_GPT2), P_CLEAN_SPACES},
    {"jina-v2-es", ST1(CCE_PRE_GPT2), P_CLEAN_SPACES},
    {"jina-v2-de", ST1(CCE_PRE_GPT2), P_CLEAN_SPACES},
    {"a.x-4.0", ST1(CCE_PRE_GPT2), P_CLEAN_SPACES},
    {"mellum", ST1(CCE_PRE_GPT2), P_CLEAN_SPACES},
    {"modern-bert", ST1(CCE_PRE_GPT2), P_CLEAN_SPACES},
    {"exaone4", ST1(CCE_PRE_GPT2), P_CLEAN_SPACES},
    {"mpt", ST1(CCE_PRE_GPT2), P_CLEAN_SPACES},
    {"olmo", ST1(CCE_PRE_GPT2), P_CLEAN_SPACES},
    {"jais", ST1(CCE_PRE_GPT2), P_CLEAN_SPACES},
    {"trillion", ST1(CCE_PRE_GPT2), 0},
    {"granite-docling", ST1(CCE_PRE_GPT2), 0},
    {"starcoder", ST2(CCE_PRE_NUM_EACH, CCE_PRE_GPT2), P_CLEAN_SPACES},
    {"refact", ST2(CCE_PRE_NUM_EACH, CCE_PRE_GPT2), P_CLEAN_SPACES},
    {"command-r", ST2(CCE_PRE_NUM_EACH, CCE_PRE_GPT2), 0},
    {"smollm", ST2(CCE_PRE_NUM_EACH, CCE_PRE_GPT2), 0},
    {"codeshell", ST2(CCE_PRE_NUM_EACH, CCE_PRE_GPT2), P_CLEAN_SPACES},
    {"exaone", ST2(CCE_PRE_NUM_EACH, CCE_PRE_GPT2), P_CLEAN_SPACES},
    {"minerva-7b", ST2(CCE_PRE_NUM_EACH, CCE_PRE_GPT2), P_CLEAN_SPACES},
    {"mellum2", ST2(CCE_PRE_NUM_EACH, CCE_PRE_GPT2), P_CLEAN_SPACES},
    {"falcon", {CCE_PRE_PUNCT_RUN_BT, CCE_PRE_GPT2, CCE_PRE_DIGIT3}, 3, P_CLEAN_SPACES},
    {"llama3", ST1(CCE_PRE_LLAMA3), P_IGNORE_MERGES | P_ADD_BOS | P_CLEAN_SPACES},
    {"llama-v3", ST1(CCE_PRE_LLAMA3), P_IGNORE_MERGES | P_ADD_BOS | P_CLEAN_SPACES},
    {"llama-bpe", ST1(CCE_PRE_LLAMA3), P_IGNORE_MERGES | P_ADD_BOS | P_CLEAN_SPACES},
    {"falcon3", ST1(CCE_PRE_LLAMA3), P_IGNORE_MERGES | P_ADD_BOS | P_CLEAN_SPACES},
    {"falcon-h1", ST1(CCE_PRE_LLAMA3), P_IGNORE_MERGES | P_ADD_BOS | P_CLEAN_SPACES},
    {"pixtral", ST1(CCE_PRE_LLAMA3), P_IGNORE_MERGES | P_ADD_BOS | P_CLEAN_SPACES},
    {"midm-2.0", ST1(CCE_PRE_LLAMA3), P_IGNORE_MERGES | P_ADD_BOS | P_CLEAN_SPACES},
    {"lfm2", ST1(CCE_PRE_LLAMA3), P_IGNORE_MERGES | P_ADD_BOS | P_CLEAN_SPACES},
    {"jina-v5-nano", ST1(CCE_PRE_LLAMA3), P_IGNORE_MERGES | P_ADD_BOS | P_CLEAN_SPACES},
    {"dbrx", ST1(CCE_PRE_LLAMA3), P_CLEAN_SPACES},
    {"smaug-bpe", ST1(CCE_PRE_LLAMA3), P_CLEAN_SPACES},
    {"qwen2", ST1(CCE_PRE_QWEN2), 0},
    {"deepseek-r1-qwen", ST1(CCE_PRE_QWEN2), 0},
    {"kormo", ST1(CCE_PRE_QWEN2), 0},
    {"f2llmv2", ST1(CCE_PRE_QWEN2), 0},
    {"megrez", ST1(CCE_PRE_QWEN2), P_CLEAN_SPACES},
    {"stablelm2", ST1(CCE_PRE_QWEN2), P_CLEAN_SPACES},
    {"hunyuan", ST1(CCE_PRE_QWEN2), 0},
    {"solar-open", ST1(CCE_PRE_QWEN2), 0},
};

/* Token texts llama.cpp's loader recognizes (llama-vocab.cpp, load()): the first token of each list becomes that
 * special token if the metadata names none, and is made a control token. "First" is the lowest id here; llama.cpp
 * takes the first its unordered_map yields, which differs only for a vocabulary with several of one list. */
static const char *const eot_texts[] = {"<|eot_id|>",
                                        "<|im_end|>",
                                        "<|end|>",
                                        "<end_of_turn>",
                                        "<|endoftext|>",
                                        "<|end_of_text|>",
                                        "<EOT>",
                                        "_<EOT>",
                                        "[EOT]",
                                        "<\xef\xbd\x9c"
                                        "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
                                        "<end_of_utterance>",
                                        NULL};
static const char *const eom_texts[] = {"<|eom_id|>", NULL};
static const char *const fim_pre_texts[] = {"<|fim_prefix|>",
                                            "<fim-prefix>",
                                            "<fim_prefix>",
                                            "<\xef\xbd\x9c"
                                            "fim\xe2\x96\x81"
                                            "begin\xef\xbd\x9c>",
                                            "<PRE>",
                                            "\xe2\x96\x81<PRE>",
                                            "<|code_prefix|>",
                                            "<|prefix|>",
                                            NULL};
static const char *const fim_suf_texts[] = {"<|fim_suffix|>",
                                            "<fim-suffix>",
                                            "<fim_suffix>",
                                            "<\xef\xbd\x9c"
                                            "fim\xe2\x96\x81hole\xef\xbd\x9c>",
                                            "<SUF>",
                                            "\xe2\x96\x81<SUF>",
                                            "<|code_suffix|>",
                                            "<|suffix|>",
                                            NULL};
static const char *const fim_mid_texts[] = {"<|fim_middle|>",
                                            "<fim-middle>",
                                            "<fim_middle>",
                                            "<\xef\xbd\x9c"
                                            "fim\xe2\x96\x81"
                                            "end\xef\xbd\x9c>",
                                            "<MID>",
                                            "\xe2\x96\x81<MID>",
                                            "<|code_middle|>",
                                            "<|middle|>",
                                            NULL};
static const char *const fim_pad_texts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", NULL};
static const char *const fim_rep_texts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                            "<REPO>",       "<reponame>",    NULL};
static const char *const fim_sep_texts[] = {"<|file_sep|>", NULL};
/* Tokens that end generation. */
static const char *const eog_texts[] = {"<|eot_id|>",
                                        "<|im_end|>",
                                        "<|end|>",
                                        "<|return|>",
                                        "<|call|>",
                                        "<|flush|>",
                                        "<|calls|>",
                                        "<end_of_turn>",
                                        "<|endoftext|>",
                                        "</s>",
                                        "<|eom_id|>",
                                        "<EOT>",
                                        "_<EOT>",
                                        "[EOT]",
                                        "[EOS]",
                                        "<|end_of_text|>",
                                        "<end_of_utterance>",
                                        "<eos>",
                                        "<turn|>",
                                        "<|tool_response>",
                                        "<\xef\xbd\x9c"
                                        "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
                                        "[e~[",
                                        NULL};
/* gpt-oss: always rendered */
static const char *const user_texts[] = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>", NULL};

static int32_t find_text(const struct cce_vocab *v, const char *s)
{
	return tok_find(v, s, strlen(s));
}

/* The first token (lowest id) whose text is in the list, made a control token; -1 if none. */
static int32_t detect(struct cce_vocab *v, const char *const *texts)
{
	int32_t best = -1, id;

	for (; *texts; texts++) {
		id = find_text(v, *texts);
		if (id >= 0 && (best < 0 || id < best))
			best = id;
	}
	if (best >= 0)
		v->attr[best] |= A_CONTROL;
	return best;
}

static int is_text(const struct cce_vocab *v, int32_t id, const char *s)
{
	return id >= 0 && v->slen[id] == strlen(s) && memcmp(str_text(v, id), s, v->slen[id]) == 0;
}

/* A special token id from the metadata (llama.cpp reads it as a u32; one past the vocabulary keeps the default). */
static int read_id(const struct ccm_gguf *g, const char *key, int32_t *id, uint32_t n, char *err, size_t errlen)
{
	uint64_t u;
	int rc = ccm_gguf_get_u64(g, key, &u);

	if (rc == -ENOENT || rc == -ERANGE) /* absent, or negative (-1 written as an i32): the default stays */
		return 0;
	if (rc)
		return fail(err, errlen, -EBADMSG, "%s: not an integer", key);
	if (u < n)
		*id = (int32_t)u;
	return 0;
}

static int read_flag(const struct ccm_gguf *g, const char *key, int *flag, char *err, size_t errlen)
{
	int b, rc = ccm_gguf_get_bool(g, key, &b);

	if (rc == -ENOENT)
		return 0;
	if (rc)
		return fail(err, errlen, -EBADMSG, "%s: not a bool", key);
	*flag = b;
	return 0;
}

/* Longest text first; among equal lengths the lower id (llama.cpp's std::sort leaves their order unspecified). */
static int cmp_special(const void *a, const void *b, void *arg)
{
	const struct cce_vocab *v = arg;
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	if (v->slen[x] != v->slen[y])
		return v->slen[x] > v->slen[y] ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* Sort the special ids (a merge sort: qsort has no argument for the vocabulary). */
static int sort_special(struct cce_vocab *v)
{
	int32_t *tmp;
	uint32_t n = v->nspecial, width, i;

	if (n < 2)
		return 0;
	tmp = malloc((size_t)n * sizeof(*tmp));
	if (!tmp)
		return -ENOMEM;
	for (width = 1; width < n; width *= 2) {
		for (i = 0; i < n; i += 2 * width) {
			uint32_t lo = i, mid = i + width < n ? i + width : n,
			         hi = i + 2 * width < n ? i + 2 * width : n;
			uint32_t a = lo, b = mid, k = lo;

			while (a < mid && b < hi)
				tmp[k++] = cmp_special(&v->special[b], &v->special[a], v) < 0 ? v->special[b++]
				                                                              : v->special[a++];
			while (a < mid)
				tmp[k++] = v->special[a++];
			while (b < hi)
				tmp[k++] = v->special[b++];
		}
		memcpy(v->special, tmp, (size_t)n * sizeof(*tmp));
	}
	free(tmp);
	return 0;
}

static void byte_map_init(struct cce_vocab *v)
{
	unsigned b, extra = 0;

	for (b = 0; b < 324; b++)
		v->cp2b[b] = -1;
	for (b = 0; b < 256; b++) {
		int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);

		v->b2cp[b] = (uint16_t)(printable ? b : 256 + extra++);
		v->cp2b[v->b2cp[b]] = (int16_t)b;
	}
}

static int load_tokens(struct cce_vocab *v, const struct ccm_gguf *g, char *err, size_t errlen)
{
	const struct ccm_kv *tk, *sk = NULL, *tt = NULL;
	const struct ccm_str *toks;
	uint64_t n, i;
	int rc;
	uint32_t hs = 1024;

	rc = ccm_gguf_get_array(g, "tokenizer.ggml.tokens", CCM_STRING, &tk);
	if (rc == -ENOENT)
		return fail(err, errlen, -EBADMSG, "tokenizer.ggml.tokens is missing");
	if (rc)
		return fail(err, errlen, -EBADMSG, "tokenizer.ggml.tokens is not an array of strings");
	n = tk->v.arr.n;
	if (n == 0 || n > INT32_MAX)
		return fail(err, errlen, -EBADMSG, "tokenizer.ggml.tokens has %llu tokens", (unsigned long long)n);
	toks = tk->v.arr.data;

	if (ccm_gguf_find(g, "tokenizer.ggml.scores")) {
		if (ccm_gguf_get_array(g, "tokenizer.ggml.scores", CCM_F32, &sk) &&
		    ccm_gguf_get_array(g, "tokenizer.ggml.scores", CCM_I32, &sk))
			return fail(err, errlen, -EBADMSG, "tokenizer.ggml.scores is not an array of f32 or i32");
		if (sk->v.arr.n < n)
			return fail(err, errlen, -EBADMSG, "tokenizer.ggml.scores has %llu entries for %llu tokens",
			            (unsigned long long)sk->v.arr.n, (unsigned long long)n);
	}
	if (ccm_gguf_find(g, "tokenizer.ggml.token_type")) {
		if (ccm_gguf_get_array(g, "tokenizer.ggml.token_type", CCM_I32, &tt))
			return fail(err, errlen, -EBADMSG, "tokenizer.ggml.token_type is not an array of i32");
		if (tt->v.arr.n < n)
			return fail(err, errlen, -EBADMSG, "tokenizer.ggml.token_type has %llu entries for %llu tokens",
			            (unsigned long long)tt->v.arr.n, (unsigned long long)n);
	}

	v->n = (uint32_t)n;
	while (hs < 2 * n)
		hs *= 2;
	v->hslot = calloc(hs, sizeof(*v->hslot));
	v->attr = malloc(n);
	if (v->kind == V_SPM)
		v->score = malloc(n * sizeof(*v->score));
	if (!v->hslot || !v->attr || (v->kind == V_SPM && !v->score))
		return fail(err, errlen, -ENOMEM, "out of memory");
	v->hmask = hs - 1;

	for (i = 0; i < n; i++) {
		const char *s = toks[i].s;
		size_t len = toks[i].len;
		char empty[32];
		uint32_t id;

		if (len == 0) { /* llama.cpp names empty tokens so */
			len = (size_t)snprintf(empty, sizeof(empty), "[EMPTY_%llu]", (unsigned long long)i);
			s = empty;
		}
		if (str_find(v, s, len) >= 0)
			return fail(err, errlen, -EBADMSG, "tokenizer.ggml.tokens: token %llu duplicates token %lld",
			            (unsigned long long)i, (long long)str_find(v, s, len));
		rc = str_add(v, s, len, &id);
		if (rc)
			return fail(err, errlen, rc, "out of memory for the token texts");
		if (v->score) {
			if (!sk)
				v->score[i] = 0.0f;
			else if (sk->v.arr.type == CCM_F32)
				v->score[i] = ((const float *)sk->v.arr.data)[i];
			else
				v->score[i] = (float)((const int32_t *)sk->v.arr.data)[i];
		}
		v->attr[i] = A_NORMAL;
		if (tt) {
			/* tokenizer.ggml.token_type: 1 normal .. 6 byte; anything else is undefined (0) */
			int32_t t = ((const int32_t *)tt->v.arr.data)[i];

			v->attr[i] = t >= 1 && t <= 6 ? token_type_attr[t] : 0;
		}
	}
	return 0;
}

static int load_merges(struct cce_vocab *v, const struct ccm_gguf *g, char *err, size_t errlen)
{
	const struct ccm_kv *mk;
	const struct ccm_str *ms;
	uint64_t n, i;
	uint32_t slots = 16;
	char *buf = NULL;
	size_t bufcap = 0;
	int rc = ccm_gguf_get_array(g, "tokenizer.ggml.merges", CCM_STRING, &mk);

	if (rc == -ENOENT)
		return fail(err, errlen, -EBADMSG, "tokenizer.ggml.merges is missing (a gpt2 tokenizer needs it)");
	if (rc)
		return fail(err, errlen, -EBADMSG, "tokenizer.ggml.merges is not an array of strings");
	n = mk->v.arr.n;
	if (n > INT32_MAX)
		return fail(err, errlen, -EBADMSG, "tokenizer.ggml.merges has %llu entries", (unsigned long long)n);
	ms = mk->v.arr.data;
	while ((uint64_t)slots * 3 < n * 4) /* load <= 3/4 */
		slots *= 2;
	v->mslot = malloc((size_t)slots * sizeof(*v->mslot));
	if (!v->mslot)
		return fail(err, errlen, -ENOMEM, "out of memory");
	memset(v->mslot, 0xFF, (size_t)slots * sizeof(*v->mslot));
	v->mmask = slots - 1;

	for (i = 0; i < n; i++) {
		const char *s = ms[i].s, *sp;
		size_t len = ms[i].len, nl, nr;
		uint32_t l, r, res;

		/* "left right", split at the first space after the first byte; a merge without one can never apply
		 * (llama.cpp files it under a pair of empty strings) */
		sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
		if (!sp)
			continue;
		nl = (size_t)(sp - s);
		nr = len - nl - 1;
		if (nl + nr > bufcap) {
			char *nb = realloc(buf, nl + nr);

			if (!nb) {
				free(buf);
				return fail(err, errlen, -ENOMEM, "out of memory");
			}
			buf = nb;
			bufcap = nl + nr;
		}
		memcpy(buf, s, nl);
		memcpy(buf + nl, sp + 1, nr);
		/* parts or results that are no token get a string id of their own past the tokens: merging runs on
		 * the texts, as llama.cpp's does */
		if ((rc = str_intern(v, s, nl, &l)) || (rc = str_intern(v, sp + 1, nr, &r)) ||
		    (rc = str_intern(v, buf, nl + nr, &res))) {
			free(buf);
			return fail(err, errlen, rc, "out of memory for the merges");
		}
		merge_add(v, l, r, (uint32_t)i, res);
	}
	free(buf);
	return 0;
}

/* Special ids, flags, llama.cpp's detection of control / end-of-generation tokens by their text. */
static int load_specials(struct cce_vocab *v, const struct ccm_gguf *g, char *err, size_t errlen)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
	    {"tokenizer.ggml.bos_token_id", offsetof(struct cce_vocab, bos)},
	    {"tokenizer.ggml.eos_token_id", offsetof(struct cce_vocab, eos)},
	    {"tokenizer.ggml.eot_token_id", offsetof(struct cce_vocab, eot)},
	    {"tokenizer.ggml.eom_token_id", offsetof(struct cce_vocab, eom)},
	    {"tokenizer.ggml.unknown_token_id", offsetof(struct cce_vocab, unk)},
	    {"tokenizer.ggml.seperator_token_id", offsetof(struct cce_vocab, sep)},
	    {"tokenizer.ggml.padding_token_id", offsetof(struct cce_vocab, pad)},
	    {"tokenizer.ggml.mask_token_id", offsetof(struct cce_vocab, mask)},
	    {"tokenizer.ggml.fim_pre_token_id", offsetof(struct cce_vocab, fim_pre)},
	    {"tokenizer.ggml.fim_suf_token_id", offsetof(struct cce_vocab, fim_suf)},
	    {"tokenizer.ggml.fim_mid_token_id", offsetof(struct cce_vocab, fim_mid)},
	    {"tokenizer.ggml.fim_pad_token_id", offsetof(struct cce_vocab, fim_pad)},
	    {"tokenizer.ggml.fim_rep_token_id", offsetof(struct cce_vocab, fim_rep)},
	    {"tokenizer.ggml.fim_sep_token_id", offsetof(struct cce_vocab, fim_sep)},
	    {"tokenizer.ggml.prefix_token_id", offsetof(struct cce_vocab, fim_pre)},
	    {"tokenizer.ggml.suffix_token_id", offsetof(struct cce_vocab, fim_suf)},
	    {"tokenizer.ggml.middle_token_id", offsetof(struct cce_vocab, fim_mid)},
	};
	size_t k;
	int32_t id, end_id = -1, s_id = -1;
	int rc, has_return = 0, has_call = 0, has_flush = 0, has_normal_s = 0;
	const char *const *t;
	uint32_t i;

	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		int32_t *p = (int32_t *)((char *)v + keys[k].off);

		if (*p >= 0 && (uint32_t)*p >= v->n) /* a default past the vocabulary is disabled */
			*p = -1;
		rc = read_id(g, keys[k].key, p, v->n, err, errlen);
		if (rc)
			return rc;
	}
	if ((rc = read_flag(g, "tokenizer.ggml.add_bos_token", &v->add_bos, err, errlen)) ||
	    (rc = read_flag(g, "tokenizer.ggml.add_eos_token", &v->add_eos, err, errlen)))
		return rc;

	if (v->eot < 0)
		v->eot = detect(v, eot_texts);
	if (v->eom < 0)
		v->eom = detect(v, eom_texts);
	if (v->fim_pre < 0)
		v->fim_pre = detect(v, fim_pre_texts);
	if (v->fim_suf < 0)
		v->fim_suf = detect(v, fim_suf_texts);
	if (v->fim_mid < 0)
		v->fim_mid = detect(v, fim_mid_texts);
	if (v->fim_pad < 0)
		v->fim_pad = detect(v, fim_pad_texts);
	if (v->fim_rep < 0)
		v->fim_rep = detect(v, fim_rep_texts);
	if (v->fim_sep < 0)
		v->fim_sep = detect(v, fim_sep_texts);

	/* end of generation */
	if (v->fim_pad >= 0)
		v->attr[v->fim_pad] |= A_EOG;
	if (v->fim_rep >= 0)
		v->attr[v->fim_rep] |= A_EOG;
	if (v->fim_sep >= 0)
		v->attr[v->fim_sep] |= A_EOG;
	for (t = eog_texts; *t; t++) {
		id = find_text(v, *t);
		if (id >= 0)
			v->attr[id] |= A_EOG | A_CONTROL;
	}
	for (t = user_texts; *t; t++) {
		id = find_text(v, *t);
		if (id >= 0)
			v->attr[id] = (uint8_t)((v->attr[id] & A_EOG) | A_USER);
	}
	if (v->eos >= 0)
		v->attr[v->eos] |= A_EOG;
	if (v->eot >= 0)
		v->attr[v->eot] |= A_EOG;
	if (v->eom >= 0)
		v->attr[v->eom] |= A_EOG;
	/* o200k_harmony / solar-open: <|end|> is no end of generation there */
	for (i = 0; i < v->n; i++) {
		if (!(v->attr[i] & A_EOG))
			continue;
		if (is_text(v, (int32_t)i, "<|return|>"))
			has_return = 1;
		else if (is_text(v, (int32_t)i, "<|call|>") || is_text(v, (int32_t)i, "<|calls|>"))
			has_call = 1;
		else if (is_text(v, (int32_t)i, "<|flush|>"))
			has_flush = 1;
		else if (is_text(v, (int32_t)i, "<|end|>"))
			end_id = (int32_t)i;
		if (is_text(v, (int32_t)i, "<|tool_response>") || is_text(v, (int32_t)i, "<|plamo:eos|>"))
			has_normal_s = 1;
		else if (is_text(v, (int32_t)i, "</s>"))
			s_id = (int32_t)i;
	}
	if (end_id >= 0 && ((has_return && has_call) || (has_call && has_flush)))
		v->attr[end_id] = A_USER;
	if (has_normal_s && s_id >= 0) /* gemma4, plamo: </s> is a normal token */
		v->attr[s_id] = A_NORMAL;

	/* the special tokens the partition looks for */
	v->special = malloc((size_t)v->n * sizeof(*v->special));
	if (!v->special)
		return fail(err, errlen, -ENOMEM, "out of memory");
	for (i = 0; i < v->n; i++)
		if (v->attr[i] & (A_CONTROL | A_USER | A_UNKNOWN))
			v->special[v->nspecial++] = (int32_t)i;
	if (sort_special(v))
		return fail(err, errlen, -ENOMEM, "out of memory");
	if (v->nspecial < v->n) {
		int32_t *shrunk = realloc(v->special, (size_t)(v->nspecial ? v->nspecial : 1) * sizeof(*shrunk));

		if (shrunk)
			v->special = shrunk;
	}

	/* byte fallback tokens */
	for (i = 0; i < 256; i++) {
		char b = (char)i;

		if (v->kind == V_SPM) {
			char hex[8];

			snprintf(hex, sizeof(hex), "<0x%02X>", i);
			id = find_text(v, hex);
			v->byte_tok[i] = id >= 0 ? id : tok_find(v, &b, 1);
		} else {
			v->byte_tok[i] = tok_find(v, &b, 1);
		}
	}
	return 0;
}

/* Give back the growth slack of the string arrays (the vocabulary stays resident). */
static void vocab_trim(struct cce_vocab *v)
{
	char *a = realloc(v->arena, v->arena_len);
	uint32_t *o, *l;

	if (a) {
		v->arena = a;
		v->arena_cap = v->arena_len;
	}
	o = realloc(v->soff, (size_t)v->nstr * sizeof(*o));
	if (o)
		v->soff = o;
	l = realloc(v->slen, (size_t)v->nstr * sizeof(*l));
	if (l)
		v->slen = l;
	if (o && l)
		v->strcap = v->nstr;
}

void cce_vocab_free(struct cce_vocab *v)
{
	if (!v)
		return;
	free(v->arena);
	free(v->soff);
	free(v->slen);
	free(v->score);
	free(v->attr);
	free(v->hslot);
	free(v->mslot);
	free(v->special);
	free(v);
}

int cce_vocab_load(const struct ccm_gguf *g, struct cce_vocab **ret, char *err, size_t errlen)
{
	struct ccm_str model, pre = {"", 0};
	struct cce_vocab *v;
	int rc;

	if (err && errlen)
		err[0] = 0;
	if (!g || !ret)
		return fail(err, errlen, -EINVAL, "no file or no result pointer");
	*ret = NULL;
	rc = ccm_gguf_get_str(g, "tokenizer.ggml.model", &model);
	if (rc == -ENOENT)
		return ccm_gguf_find(g, "tokenizer.ggml.tokens")
		           ? fail(err, errlen, -EBADMSG, "tokenizer.ggml.tokens without tokenizer.ggml.model")
		           : fail(err, errlen, -ENOENT, "the file has no tokenizer (no tokenizer.ggml.model)");
	if (rc)
		return fail(err, errlen, -EBADMSG, "tokenizer.ggml.model is not a string");
	if (strcmp(model.s, "no_vocab") == 0 || strcmp(model.s, "none") == 0)
		return fail(err, errlen, -ENOENT, "the file has no tokenizer (tokenizer.ggml.model = \"%s\")", model.s);

	v = calloc(1, sizeof(*v));
	if (!v)
		return fail(err, errlen, -ENOMEM, "out of memory");
	v->eot = v->eom = v->sep = v->pad = v->mask = -1;
	v->fim_pre = v->fim_suf = v->fim_mid = v->fim_pad = v->fim_rep = v->fim_sep = -1;
	byte_map_init(v);

	if (strcmp(model.s, "llama") == 0) {
		v->kind = V_SPM;
		v->bos = 1;
		v->eos = 2;
		v->unk = 0;
		v->add_bos = 1;
		v->add_space_prefix = 1;
	} else if (strcmp(model.s, "gpt2") == 0) {
		size_t k;

		v->kind = V_BPE;
		v->bos = v->eos = 11; /* llama.cpp's defaults for gpt2 */
		v->unk = -1;
		rc = ccm_gguf_get_str(g, "tokenizer.ggml.pre", &pre);
		if (rc == -EINVAL) {
			rc = fail(err, errlen, -EBADMSG, "tokenizer.ggml.pre is not a string");
			goto out;
		}
		if (rc || pre.len == 0) /* llama.cpp warns and takes the default */
			pre = (struct ccm_str){"default", 7};
		for (k = 0; k < sizeof(pre_defs) / sizeof(pre_defs[0]); k++)
			if (strcmp(pre.s, pre_defs[k].name) == 0)
				break;
		if (k == sizeof(pre_defs) / sizeof(pre_defs[0])) {
			rc = fail(err, errlen, -EOPNOTSUPP,
			          "pre-tokenizer \"%s\" (tokenizer.ggml.pre) is not implemented", pre.s);
			goto out;
		}
		memcpy(v->stages, pre_defs[k].stages, sizeof(v->stages));
		v->nstages = pre_defs[k].nstages;
		v->ignore_merges = (pre_defs[k].flags & P_IGNORE_MERGES) != 0;
		v->add_bos = (pre_defs[k].flags & P_ADD_BOS) != 0;
		v->clean_spaces = (pre_defs[k].flags & P_CLEAN_SPACES) != 0;
	} else {
		rc = fail(err, errlen, -EOPNOTSUPP, "tokenizer model \"%s\" (tokenizer.ggml.model) is not implemented",
		          model.s);
		goto out;
	}
	if ((rc = read_flag(g, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix, err, errlen)))
		goto out;
	if ((rc = load_tokens(v, g, err, errlen)))
		goto out;
	if (v->kind == V_BPE && (rc = load_merges(v, g, err, errlen)))
		goto out;
	if ((rc = load_specials(v, g, err, errlen)))
		goto out;
	vocab_trim(v);
	*ret = v;
	return 0;
out:
	cce_vocab_free(v);
	return rc;
}

const char *cce_vocab_kind(const struct cce_vocab *v)
{
	return v->kind == V_SPM ? "llama" : "gpt2";
}

uint32_t cce_vocab_size(const struct cce_vocab *v)
{
	return v->n;
}

int32_t cce_vocab_bos(const struct cce_vocab *v)
{
	return v->bos;
}

int32_t cce_vocab_eos(const struct cce_vocab *v)
{
	return v->eos;
}

int cce_vocab_add_bos(const struct cce_vocab *v)
{
	return v->add_bos;
}

size_t cce_vocab_bytes(const struct cce_vocab *v)
{
	return sizeof(*v) + v->arena_cap + (size_t)v->strcap * 2 * sizeof(uint32_t) +
	       (size_t)v->n * (1 + (v->score ? 4 : 0)) + ((size_t)v->hmask + 1) * sizeof(*v->hslot) +
	       (v->mslot ? ((size_t)v->mmask + 1) * sizeof(*v->mslot) : 0) + (size_t)v->nspecial * sizeof(*v->special);
}

int cce_vocab_is_eog(const struct cce_vocab *v, int32_t id)
{
	return id >= 0 && (uint32_t)id < v->n && (v->attr[id] & A_EOG);
}

int32_t cce_vocab_find(const struct cce_vocab *v, const char *text, size_t len)
{
	return text ? tok_find(v, text, len) : -1;
}

/* ---- tokenizing ------------------------------------------------------------------------------------------------ */

struct idvec {
	int32_t *v;
	size_t n, cap;
};

static int ids_push(struct idvec *o, int32_t id)
{
	if (o->n == o->cap) {
		size_t nc = o->cap ? o->cap * 2 : 64;
		int32_t *nv = realloc(o->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		o->v = nv;
		o->cap = nc;
	}
	o->v[o->n++] = id;
	return 0;
}

struct buf {
	char *p;
	size_t n, cap;
};

static int buf_reserve(struct buf *b, size_t more)
{
	if (b->cap - b->n < more) {
		size_t nc = b->cap ? b->cap : 256;
		char *np;

		while (nc - b->n < more)
			nc *= 2;
		np = realloc(b->p, nc);
		if (!np)
			return -ENOMEM;
		b->p = np;
		b->cap = nc;
	}
	return 0;
}

/* A piece of the input: raw text (id < 0) or a special token found in it. */
struct frag {
	size_t off, len;
	int32_t id;
};

struct fragv {
	struct frag *v;
	size_t n, cap;
};

static int frag_push(struct fragv *f, size_t off, size_t len, int32_t id)
{
	if (f->n == f->cap) {
		size_t nc = f->cap ? f->cap * 2 : 16;
		struct frag *nv = realloc(f->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		f->v = nv;
		f->cap = nc;
	}
	f->v[f->n++] = (struct frag){off, len, id};
	return 0;
}

/*
 * llama.cpp's tokenizer_st_partition: each special token, longest first, splits every raw piece at all its
 * occurrences (left to right). Control and unknown tokens only with parse_special; user-defined ones always.
 */
static int partition(const struct cce_vocab *v, const char *text, size_t len, int parse_special, struct fragv *out)
{
	struct fragv cur = {0}, nxt = {0};
	uint32_t s;
	int rc = 0;

	if (len && (rc = frag_push(&cur, 0, len, -1)))
		return rc;
	for (s = 0; s < v->nspecial && cur.n; s++) {
		int32_t id = v->special[s];
		const char *tt = str_text(v, (uint32_t)id);
		size_t tl = v->slen[id], i;
		int found = 0;

		if (!parse_special && (v->attr[id] & (A_CONTROL | A_UNKNOWN)))
			continue;
		for (i = 0; i < cur.n && !found; i++)
			if (cur.v[i].id < 0 && cur.v[i].len >= tl && memmem(text + cur.v[i].off, cur.v[i].len, tt, tl))
				found = 1;
		if (!found)
			continue;
		nxt.n = 0;
		for (i = 0; i < cur.n && !rc; i++) {
			size_t off = cur.v[i].off, end = off + cur.v[i].len;
			const char *m;

			if (cur.v[i].id >= 0) {
				rc = frag_push(&nxt, off, 0, cur.v[i].id);
				continue;
			}
			while (!rc && off < end && (m = memmem(text + off, end - off, tt, tl))) {
				size_t at = (size_t)(m - text);

				if (at > off)
					rc = frag_push(&nxt, off, at - off, -1);
				if (!rc)
					rc = frag_push(&nxt, at, 0, id);
				off = at + tl;
			}
			if (!rc && off < end)
				rc = frag_push(&nxt, off, end - off, -1);
		}
		if (rc)
			break;
		{
			struct fragv t = cur;

			cur = nxt;
			nxt = t;
		}
	}
	free(nxt.v);
	if (rc) {
		free(cur.v);
		return rc;
	}
	*out = cur;
	return 0;
}

/* The symbols and the queue of candidate merges of SPM and BPE (llama.cpp's llm_symbol and bigram queue). */
struct sym {
	size_t off; /* into the text being merged */
	size_t n;   /* bytes; 0 once merged into its left neighbour */
	int64_t prev, next;
	int64_t id; /* BPE: its string id (-1: none) */
};

struct bigram {
	double key; /* SPM: -score (best first); BPE: the merge rank */
	int64_t left, right;
	size_t size;
	uint32_t res; /* BPE: the merged string id */
};

struct heap {
	struct bigram *v;
	size_t n, cap;
};

/* llama.cpp's queues: SPM pops the highest score, BPE the lowest rank, ties to the leftmost pair. */
static int bg_before(const struct bigram *a, const struct bigram *b)
{
	return a->key < b->key || (a->key == b->key && a->left < b->left);
}

static int heap_push(struct heap *h, const struct bigram *b)
{
	size_t i;

	if (h->n == h->cap) {
		size_t nc = h->cap ? h->cap * 2 : 64;
		struct bigram *nv = realloc(h->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		h->v = nv;
		h->cap = nc;
	}
	i = h->n++;
	while (i > 0 && bg_before(b, &h->v[(i - 1) / 2])) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = *b;
	return 0;
}

static struct bigram heap_pop(struct heap *h)
{
	struct bigram top = h->v[0], last = h->v[--h->n];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && bg_before(&h->v[c + 1], &h->v[c]))
			c++;
		if (!bg_before(&h->v[c], &last))
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = last;
	return top;
}

struct symv {
	struct sym *v;
	size_t n, cap;
};

static int sym_push(struct symv *s, const struct sym *x)
{
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 64;
		struct sym *nv = realloc(s->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->cap = nc;
	}
	s->v[s->n++] = *x;
	return 0;
}

/* Bytes of the UTF-8 sequence a lead byte starts (llama.cpp's unicode_len_utf8). */
static size_t utf8_len(unsigned char c)
{
	static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};

	return len[c >> 4];
}

/* Split t[0..n) into one symbol per character, linked in order. */
static int split_chars(struct symv *s, const char *t, size_t n)
{
	size_t off = 0;

	s->n = 0;
	while (off < n) {
		struct sym x;
		size_t l = utf8_len((unsigned char)t[off]);

		if (l > n - off)
			l = n - off;
		x.off = off;
		x.n = l;
		x.prev = (int64_t)s->n - 1;
		off += l;
		x.next = off == n ? -1 : (int64_t)s->n + 1;
		x.id = -1;
		if (sym_push(s, &x))
			return -ENOMEM;
	}
	return 0;
}

struct work {
	struct symv syms;
	struct heap heap;
	struct buf text; /* the text being merged (SPM: escaped; BPE: one byte-encoded word) */
	uint32_t *cps;
	size_t *segs;
};

static void work_free(struct work *w)
{
	free(w->syms.v);
	free(w->heap.v);
	free(w->text.p);
	free(w->cps);
	free(w->segs);
}

static int spm_try(const struct cce_vocab *v, struct work *w, int64_t left, int64_t right)
{
	struct bigram b;
	int32_t id;
	const struct sym *l, *r;

	if (left < 0 || right < 0)
		return 0;
	l = &w->syms.v[left];
	r = &w->syms.v[right];
	id = tok_find(v, w->text.p + l->off, l->n + r->n);
	if (id < 0)
		return 0;
	b.key = -(double)v->score[id];
	b.left = left;
	b.right = right;
	b.size = l->n + r->n;
	b.res = 0;
	return heap_push(&w->heap, &b);
}

/* llama.cpp's llm_tokenizer_spm_session::tokenize over w->text. */
static int spm_tokenize(const struct cce_vocab *v, struct work *w, struct idvec *out)
{
	struct symv *s = &w->syms;
	size_t i;
	int64_t k;
	int rc;

	if ((rc = split_chars(s, w->text.p, w->text.n)))
		return rc;
	w->heap.n = 0;
	for (i = 1; i < s->n; i++)
		if ((rc = spm_try(v, w, (int64_t)i - 1, (int64_t)i)))
			return rc;
	while (w->heap.n) {
		struct bigram b = heap_pop(&w->heap);
		struct sym *l = &s->v[b.left], *r = &s->v[b.right];

		if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
			continue; /* outdated */
		l->n += r->n;
		r->n = 0;
		l->next = r->next;
		if (r->next >= 0)
			s->v[r->next].prev = b.left;
		if ((rc = spm_try(v, w, l->prev, b.left)) || (rc = spm_try(v, w, b.left, l->next)))
			return rc;
	}
	/* a symbol that is no token falls back to its bytes (a merged symbol always is one) */
	for (k = s->n ? 0 : -1; k != -1; k = s->v[k].next) {
		const struct sym *x = &s->v[k];
		int32_t id = tok_find(v, w->text.p + x->off, x->n);

		if (id >= 0) {
			if ((rc = ids_push(out, id)))
				return rc;
			continue;
		}
		for (i = 0; i < x->n; i++) {
			int32_t bt = v->byte_tok[(unsigned char)w->text.p[x->off + i]];

			if (bt < 0)
				bt = v->unk; /* no byte token (llama.cpp throws here) */
			if (bt >= 0 && (rc = ids_push(out, bt)))
				return rc;
		}
	}
	return 0;
}

static int bpe_try(const struct cce_vocab *v, struct work *w, int64_t left, int64_t right)
{
	const struct merge *m;
	struct bigram b;
	const struct sym *l, *r;

	if (left < 0 || right < 0)
		return 0;
	l = &w->syms.v[left];
	r = &w->syms.v[right];
	if (l->id < 0 || r->id < 0)
		return 0;
	m = merge_find(v, (uint32_t)l->id, (uint32_t)r->id);
	if (!m)
		return 0;
	b.key = m->rank;
	b.left = left;
	b.right = right;
	b.size = l->n + r->n;
	b.res = m->res;
	return heap_push(&w->heap, &b);
}

/* llama.cpp's llm_tokenizer_bpe_session::tokenize for one word (already byte-encoded in w->text). */
static int bpe_word(const struct cce_vocab *v, struct work *w, struct idvec *out)
{
	struct symv *s = &w->syms;
	const char *t = w->text.p;
	size_t i, j;
	int32_t whole;
	int rc;

	if (v->ignore_merges && (whole = tok_find(v, t, w->text.n)) >= 0)
		return ids_push(out, whole);
	if ((rc = split_chars(s, t, w->text.n)))
		return rc;
	for (i = 0; i < s->n; i++)
		s->v[i].id = str_find(v, t + s->v[i].off, s->v[i].n);
	w->heap.n = 0;
	for (i = 1; i < s->n; i++)
		if ((rc = bpe_try(v, w, (int64_t)i - 1, (int64_t)i)))
			return rc;
	while (w->heap.n) {
		struct bigram b = heap_pop(&w->heap);
		struct sym *l = &s->v[b.left], *r = &s->v[b.right];

		if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
			continue; /* outdated */
		l->n += r->n;
		l->id = b.res;
		r->n = 0;
		l->next = r->next;
		if (r->next >= 0)
			s->v[r->next].prev = b.left;
		if ((rc = bpe_try(v, w, l->prev, b.left)) || (rc = bpe_try(v, w, b.left, l->next)))
			return rc;
	}
	for (i = 0; i < s->n; i++) {
		const struct sym *x = &s->v[i];

		if (x->n == 0)
			continue;
		if (x->id >= 0 && x->id < v->n) {
			if ((rc = ids_push(out, (int32_t)x->id)))
				return rc;
			continue;
		}
		/* no token: each byte of the (encoded) text that is a token by itself, as llama.cpp does */
		for (j = 0; j < x->n; j++) {
			int32_t bt = v->byte_tok[(unsigned char)t[x->off + j]];

			if (bt >= 0 && (rc = ids_push(out, bt)))
				return rc;
		}
	}
	return 0;
}

/* Pre-tokenize one raw piece, byte-encode each word and merge it. */
static int bpe_tokenize(const struct cce_vocab *v, struct work *w, const char *text, size_t len, struct idvec *out)
{
	size_t n = 0, pos = 0, nsegs, i, start = 0;
	uint32_t *cps;
	int rc;

	cps = realloc(w->cps, (len ? len : 1) * sizeof(*cps));
	if (!cps)
		return -ENOMEM;
	w->cps = cps;
	while (pos < len)
		cps[n++] = cce_utf8_next(text, &pos);
	free(w->segs);
	w->segs = NULL;
	if ((rc = cce_pre_split(cps, n, v->stages, v->nstages, &w->segs, &nsegs)))
		return rc;
	for (i = 0; i < nsegs; i++) {
		size_t k;

		w->text.n = 0;
		for (k = start; k < start + w->segs[i]; k++) {
			char u[4];
			size_t ul = cce_utf8_put(u, cps[k]), b;

			if ((rc = buf_reserve(&w->text, 8)))
				return rc;
			for (b = 0; b < ul; b++)
				w->text.n += cce_utf8_put(w->text.p + w->text.n, v->b2cp[(unsigned char)u[b]]);
		}
		start += w->segs[i];
		if ((rc = bpe_word(v, w, out)))
			return rc;
	}
	return 0;
}

int cce_tokenize(const struct cce_vocab *v, const char *text, size_t len, int add_bos, int parse_special,
                 int32_t **ret_ids, size_t *ret_n)
{
	struct fragv frags = {0};
	struct idvec out = {0};
	struct work w = {0};
	int add_special = add_bos != 0, want_bos = add_bos < 0 ? v && v->add_bos : add_bos > 0, prev_special = 1, rc;
	size_t i;

	if (!v || !ret_ids || !ret_n || (!text && len))
		return -EINVAL;
	*ret_ids = NULL;
	*ret_n = 0;
	if (len > MAX_TEXT)
		return -E2BIG;
	if (cce_utf8_check(text, len) < 0)
		return -EILSEQ;
	if ((rc = partition(v, text, len, parse_special, &frags)))
		return rc;
	if (want_bos && v->bos >= 0 && (rc = ids_push(&out, v->bos)))
		goto out;
	for (i = 0; i < frags.n; i++) {
		const struct frag *f = &frags.v[i];

		if (f->id >= 0) {
			if ((rc = ids_push(&out, f->id)))
				goto out;
			prev_special = 1;
			continue;
		}
		if (v->kind == V_SPM) {
			/* a space first (after the start or a special token) if add_space_prefix, spaces -> U+2581 */
			size_t k;

			w.text.n = 0;
			if ((rc = buf_reserve(&w.text, 3 * f->len + 3)))
				goto out;
			if (v->add_space_prefix && prev_special) {
				memcpy(w.text.p, "\xe2\x96\x81", 3);
				w.text.n = 3;
			}
			for (k = 0; k < f->len; k++) {
				char c = text[f->off + k];

				if (c == ' ') {
					memcpy(w.text.p + w.text.n, "\xe2\x96\x81", 3);
					w.text.n += 3;
				} else {
					w.text.p[w.text.n++] = c;
				}
			}
			rc = spm_tokenize(v, &w, &out);
		} else {
			rc = bpe_tokenize(v, &w, text + f->off, f->len, &out);
		}
		if (rc)
			goto out;
		prev_special = 0;
	}
	if (add_special && v->add_eos && v->eos >= 0 && (rc = ids_push(&out, v->eos)))
		goto out;
	if (!out.v && !(out.v = malloc(sizeof(int32_t)))) {
		rc = -ENOMEM;
		goto out;
	}
	*ret_ids = out.v;
	*ret_n = out.n;
	out.v = NULL;
out:
	free(out.v);
	free(frags.v);
	work_free(&w);
	return rc;
}

/* ---- pieces and detokenizing ----------------------------------------------------------------------------------- */

/* Bytes written up to a limit, counting all. lstrip: drop the first byte put if it is a space. */
struct sink {
	char *p;
	size_t size, len;
	int lstrip;
};

static void put(struct sink *s, const char *b, size_t n)
{
	if (s->lstrip && n) {
		s->lstrip = 0;
		if (b[0] == ' ') {
			b++;
			n--;
		}
	}
	if (s->len < s->size) {
		size_t k = s->size - s->len < n ? s->size - s->len : n;

		memcpy(s->p + s->len, b, k);
	}
	s->len += n;
}

/* llama.cpp's lax UTF-8 decoding of token texts (unicode_cpts_from_utf8): no check of overlong forms; an invalid
 * byte is U+FFFD. Returns the code point and its length in *n. */
static uint32_t lax_next(const unsigned char *s, size_t len, size_t *n)
{
	unsigned c = s[0];
	size_t l, k;
	uint32_t cp;

	if (c < 0x80) {
		*n = 1;
		return c;
	}
	if (!(c & 0x40) || (c & 0xF8) == 0xF8) {
		*n = 1;
		return 0xFFFD;
	}
	l = !(c & 0x20) ? 2 : !(c & 0x10) ? 3 : 4;
	cp = c & (0x7F >> l);
	if (l > len) {
		*n = 1;
		return 0xFFFD;
	}
	for (k = 1; k < l; k++) {
		if ((s[k] & 0xC0) != 0x80) {
			*n = 1;
			return 0xFFFD;
		}
		cp = cp << 6 | (s[k] & 0x3F);
	}
	*n = l;
	return cp;
}

/* llama.cpp's llama_decode_text: undo the byte-level mapping; a code point outside it is written as
 * [UNK_BYTE_0x<its UTF-8 in hex><the whole token text>]. */
static void bpe_decode(const struct cce_vocab *v, const char *t, size_t len, struct sink *s)
{
	size_t i = 0;

	while (i < len) {
		size_t n;
		uint32_t cp = lax_next((const unsigned char *)t + i, len - i, &n);

		i += n;
		if (cp < 324 && v->cp2b[cp] >= 0) {
			char b = (char)v->cp2b[cp];

			put(s, &b, 1);
		} else {
			char u[4], hex[8];
			size_t ul = cp <= 0x10FFFF ? cce_utf8_put(u, cp) : cce_utf8_put(u, 0xFFFD), k;

			put(s, "[UNK_BYTE_0x", 12);
			for (k = 0; k < ul; k++) {
				snprintf(hex, sizeof(hex), "%02x", (unsigned char)u[k]);
				put(s, hex, 2);
			}
			put(s, t, len);
			put(s, "]", 1);
		}
	}
}

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	                              : -1;
}

/* llama.cpp's token_to_byte: strtol of the two characters after "<0x". */
static char token_byte(const char *t, size_t len)
{
	int hi, lo;

	if (len < 4 || (hi = hexval(t[3])) < 0)
		return 0;
	if (len < 5 || (lo = hexval(t[4])) < 0)
		return (char)hi;
	return (char)(hi << 4 | lo);
}

/* llama.cpp's token_to_piece (its lstrip is the sink's). */
static void piece(const struct cce_vocab *v, int32_t id, int special, struct sink *s)
{
	uint8_t a = v->attr[id];
	const char *t = str_text(v, (uint32_t)id);
	size_t len = v->slen[id], i;

	if (!special && (a & (A_UNKNOWN | A_CONTROL)))
		return;
	if (a & (A_UNKNOWN | A_CONTROL | A_USER)) {
		put(s, t, len);
	} else if (a & A_NORMAL) {
		if (v->kind == V_BPE) {
			bpe_decode(v, t, len, s);
			return;
		}
		for (i = 0; i < len; i++) {
			if (len - i >= 3 && memcmp(t + i, "\xe2\x96\x81", 3) == 0) {
				put(s, " ", 1);
				i += 2;
			} else {
				put(s, t + i, 1);
			}
		}
	} else if (a & A_BYTE) {
		char b = token_byte(t, len);

		put(s, &b, 1);
	}
}

int cce_token_piece(const struct cce_vocab *v, int32_t id, int special, char *buf, size_t size)
{
	struct sink s = {buf, buf ? size : 0, 0, 0};

	if (!v || id < 0 || (uint32_t)id >= v->n)
		return -EINVAL;
	piece(v, id, special, &s);
	return s.len > INT32_MAX ? -E2BIG : (int)s.len;
}

/* llama.cpp's clean_up_tokenization_spaces (llama_detokenize with clean_spaces), in place over t[0..n): drops
 * the space before ? ! . , ; the spaces around a lone ' ; the space before 's 'm 're 've. Returns the new length. */
static size_t clean_spaces(char *t, size_t n)
{
	size_t i, total, n1, n2;

	if (n == 0)
		return 0;
	for (i = 1, total = 1; i < n; i++) {
		char x = t[i];

		if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
			total--;
		t[total++] = x;
	}
	n1 = total;
	for (i = 1, total = 1; i < n1; i++) {
		char x = t[i];

		if (x == '\'' && i + 1 < n1 && t[i - 1] == ' ' && t[i + 1] == ' ') {
			total--;
			t[++i] = 0;
		}
		t[total++] = x;
	}
	n2 = total;
	for (i = 1, total = 1; i < n2; i++) {
		char x = t[i];

		if (t[i - 1] == ' ' && x == '\'' && i + 1 < n2) {
			char x1 = t[i + 1];

			if (x1 == 's' || x1 == 'm')
				total--;
			else if (i + 2 < n2 && ((x1 == 'r' && t[i + 2] == 'e') || (x1 == 'v' && t[i + 2] == 'e')))
				total--;
		}
		t[total++] = x;
	}
	return total;
}

/*
 * llama.cpp's llama_detokenize(remove_special = false, unparse_special = special): the pieces concatenated, the
 * first one without its leading space where the vocabulary adds a space prefix (SentencePiece), then for some BPE
 * pre-tokenizers clean_up_tokenization_spaces. (llama-cpp-python's Llama.detokenize differs: it strips the space
 * only after a BOS and never cleans spaces; and it drops pieces longer than its 32-byte buffer.)
 */
int cce_detokenize(const struct cce_vocab *v, const int32_t *ids, size_t n, int special, char **ret, size_t *ret_len)
{
	struct sink s = {NULL, 0, 0, 0};
	size_t i, cap = 64;

	if (!v || !ret || (!ids && n))
		return -EINVAL;
	*ret = NULL;
	if (ret_len)
		*ret_len = 0;
	for (i = 0; i < n; i++)
		if (ids[i] < 0 || (uint32_t)ids[i] >= v->n)
			return -EINVAL;
	for (;;) {
		s.p = malloc(cap);
		s.size = cap;
		s.len = 0;
		if (!s.p)
			return -ENOMEM;
		for (i = 0; i < n; i++) {
			s.lstrip = i == 0 && v->add_space_prefix; /* the first piece only, even when it is empty */
			piece(v, ids[i], special, &s);
		}
		if (s.len < cap)
			break;
		free(s.p);
		cap = s.len + 1;
	}
	if (v->clean_spaces)
		s.len = clean_spaces(s.p, s.len);
	s.p[s.len] = 0;
	*ret = s.p;
	if (ret_len)
		*ret_len = s.len;
	return 0;
}
