/* SPDX-License-Identifier: MIT */
/* chat.c: chat prompts from tokenizer.chat_template, recognized and rendered as llama.cpp's built-in templates do. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "gguf.h"

/* The forms we render (llama.cpp's llm_chat_template names in comments). */
enum tmpl {
	T_UNKNOWN = 0,
	T_CHATML,           /* chatml */
	T_LLAMA2,           /* llama2: no system message markers */
	T_LLAMA2_SYS,       /* llama2-sys: <<SYS>> */
	T_LLAMA2_SYS_BOS,   /* llama2-sys-bos: <s> before each later [INST] */
	T_LLAMA2_SYS_STRIP, /* llama2-sys-strip: contents trimmed */
	T_LLAMA3,           /* llama3 */
};

static int has(const char *t, const char *s)
{
	return strstr(t, s) != NULL;
}

/*
 * llama.cpp's llm_chat_detect_template: an exact template name first, then substrings, in its order. Templates it
 * would recognize as a form we do not render (Phi, Mistral, Zephyr, Gemma, ...) are T_UNKNOWN, never misread as one
 * of ours.
 */
static enum tmpl detect(const char *t)
{
	static const struct {
		const char *name;
		enum tmpl t;
	} names[] = {
	    {"chatml", T_CHATML},
	    {"llama2", T_LLAMA2},
	    {"llama2-sys", T_LLAMA2_SYS},
	    {"llama2-sys-bos", T_LLAMA2_SYS_BOS},
	    {"llama2-sys-strip", T_LLAMA2_SYS_STRIP},
	    {"llama3", T_LLAMA3},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(t, names[i].name) == 0)
			return names[i].t;
	if (has(t, "<|im_start|>"))
		return has(t, "<|im_sep|>") || has(t, "<end_of_utterance>") ? T_UNKNOWN : T_CHATML;
	if (strncmp(t, "mistral", 7) == 0 || has(t, "[INST]")) {
		if (has(t, "[SYSTEM_PROMPT]") || has(t, "' [INST] ' + system_message") || has(t, "[AVAILABLE_TOOLS]"))
			return T_UNKNOWN; /* Mistral v1 / v3 / v7 */
		if (has(t, "content.strip()"))
			return T_LLAMA2_SYS_STRIP;
		if (has(t, "bos_token + '[INST]"))
			return T_LLAMA2_SYS_BOS;
		return has(t, "<<SYS>>") ? T_LLAMA2_SYS : T_LLAMA2;
	}
	/* the forms llama.cpp checks before Llama 3 */
	if ((has(t, "<|assistant|>") && (has(t, "<|end|>") || has(t, "<|user|>"))) || has(t, "[gMASK]<sop>") ||
	    (has(t, "<|{{ item['role'] }}|>") && has(t, "<|begin_of_image|>")) ||
	    (has(t, "<|user|>") && has(t, "<|endoftext|>")) || has(t, "bos_token + message['role']") ||
	    has(t, "<start_of_turn>") || has(t, "'\\n\\nAssistant: ' + eos_token") || has(t, "GPT4 Correct ") ||
	    (has(t, "USER: ") && has(t, "ASSISTANT: ")) || (has(t, "### Instruction:") && has(t, "<|EOT|>")) ||
	    (has(t, "<|START_OF_TURN_TOKEN|>") && has(t, "<|USER_TOKEN|>")))
		return T_UNKNOWN;
	if (has(t, "<|start_header_id|>") && has(t, "<|end_header_id|>"))
		return T_LLAMA3;
	return T_UNKNOWN;
}

struct sb {
	char *s;
	size_t len, cap;
	int oom;
};

static void put_n(struct sb *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->s, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void put(struct sb *b, const char *s)
{
	put_n(b, s, strlen(s));
}

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* s without leading and trailing whitespace (C locale isspace, as llama.cpp's trim). */
static void put_trimmed(struct sb *b, const char *s)
{
	size_t lo = 0, hi = strlen(s);

	while (lo < hi && is_space((unsigned char)s[lo]))
		lo++;
	while (hi > lo && is_space((unsigned char)s[hi - 1]))
		hi--;
	put_n(b, s + lo, hi - lo);
}

static void render(enum tmpl t, const struct cce_msg *msgs, size_t n, struct sb *b)
{
	if (t == T_CHATML) {
		for (size_t i = 0; i < n; i++) {
			put(b, "<|im_start|>");
			put(b, msgs[i].role);
			put(b, "\n");
			put(b, msgs[i].content);
			put(b, "<|im_end|>\n");
		}
		put(b, "<|im_start|>assistant\n");
	} else if (t == T_LLAMA3) {
		for (size_t i = 0; i < n; i++) {
			put(b, "<|start_header_id|>");
			put(b, msgs[i].role);
			put(b, "<|end_header_id|>\n\n");
			put_trimmed(b, msgs[i].content);
			put(b, "<|eot_id|>");
		}
		put(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
	} else {
		const int sys = t != T_LLAMA2, bos = t == T_LLAMA2_SYS_BOS, strip = t == T_LLAMA2_SYS_STRIP;
		int inside = 1; /* the first [INST] is written here, without a BOS */

		put(b, "[INST] ");
		for (size_t i = 0; i < n; i++) {
			const char *role = msgs[i].role;

			if (!inside) {
				inside = 1;
				put(b, bos ? "<s>[INST] " : "[INST] ");
			}
			if (strcmp(role, "system") == 0)
				put(b, sys ? "<<SYS>>\n" : "");
			if (strip)
				put_trimmed(b, msgs[i].content);
			else
				put(b, msgs[i].content);
			if (strcmp(role, "system") == 0) {
				put(b, sys ? "\n<</SYS>>\n\n" : "\n");
			} else if (strcmp(role, "user") == 0) {
				put(b, " [/INST]");
			} else {
				put(b, "</s>");
				inside = 0;
			}
		}
	}
}

int cce_chat_apply(const struct ccm_gguf *g, const struct cce_msg *msgs, size_t n, char **ret)
{
	struct ccm_str tmpl;
	struct sb b = {0};
	enum tmpl t;

	if (!ret)
		return -EINVAL;
	*ret = NULL;
	if (!g || (n && !msgs))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!msgs[i].role || !msgs[i].content)
			return -EINVAL;
	/* a model without a template (or with one that is not a string): the caller uses the raw text */
	if (ccm_gguf_get_str(g, "tokenizer.chat_template", &tmpl) != 0)
		return -EOPNOTSUPP;
	t = detect(tmpl.s);
	if (t == T_UNKNOWN)
		return -EOPNOTSUPP;
	render(t, msgs, n, &b);
	if (b.oom || !b.s) {
		free(b.s);
		return -ENOMEM;
	}
	*ret = b.s;
	return 0;
}
