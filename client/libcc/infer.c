/* SPDX-License-Identifier: MIT */
/* infer.c: libcc's inference calls: generate, tokenize, detokenize, logits (the model stays in ccd). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcc-internal.h"

void cc_gen_defaults(struct cc_gen_params *p)
{
	memset(p, 0, sizeof(*p));
	p->max_tokens = 128;
	p->temp = 0.8f;
	p->top_k = 40;
	p->top_p = 0.95f;
	p->min_p = 0.05f;
	p->repeat_penalty = 1.0f;
	p->repeat_last_n = 64;
}

void cc_gen_result_free(struct cc_gen_result *r)
{
	if (!r)
		return;
	free(r->text);
	free(r->tokens);
	memset(r, 0, sizeof(*r));
}

/* Send req and wait for its reply with the expected body; a generation may take long: no deadline, but a dead
 * ccd is noticed. */
static int call(cc_client *c, Cc__Request *req, int timeout_ms, Cc__Reply__BodyCase want, Cc__Reply **ret)
{
	int r = cc__call(c, req, timeout_ms, ret);

	if (r < 0) {
		if (*ret)
			cc__reply__free_unpacked(*ret, NULL);
		*ret = NULL;
		return r;
	}
	if ((*ret)->body_case != want) {
		cc__reply__free_unpacked(*ret, NULL);
		*ret = NULL;
		cc__set_error(c, "ccd answered with the wrong reply");
		return -EBADMSG;
	}
	return 0;
}

void cc__gen_request(Cc__Generate *g, const struct cc_gen_params *p)
{
	g->raw = p->raw != 0;
	g->max_tokens = p->max_tokens;
	g->temp = p->temp;
	g->top_k = p->top_k;
	g->top_p = p->top_p;
	g->min_p = p->min_p;
	g->repeat_penalty = p->repeat_penalty;
	g->repeat_last_n = p->repeat_last_n;
	g->seed = p->seed;
	g->n_stop = p->nstop;
	g->stop = (char **)p->stop;
	g->ignore_eos = p->ignore_eos != 0;
}

int cc__gen_result_fill(const Cc__GenerateReply *gr, struct cc_gen_result *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->text = strdup(gr->text ? gr->text : "");
	ret->tokens = malloc((gr->n_tokens ? gr->n_tokens : 1) * sizeof(int32_t));
	if (!ret->text || !ret->tokens) {
		cc_gen_result_free(ret);
		return -ENOMEM;
	}
	if (gr->n_tokens)
		memcpy(ret->tokens, gr->tokens, gr->n_tokens * sizeof(int32_t));
	ret->ntokens = gr->n_tokens;
	ret->prompt_tokens = gr->prompt_tokens;
	ret->pp_tps = gr->pp_tps;
	ret->tg_tps = gr->tg_tps;
	snprintf(ret->stop_reason, sizeof(ret->stop_reason), "%s", gr->stop_reason ? gr->stop_reason : "");
	snprintf(ret->templ, sizeof(ret->templ), "%s", gr->template_ ? gr->template_ : "");
	ret->session = gr->session;
	ret->ttft_ms = gr->ttft_ms;
	ret->tpot_ms = gr->tpot_ms;
	ret->n_past = gr->n_past;
	ret->new_tokens = gr->new_tokens;
	ret->cached_tokens = gr->cached_tokens;
	return 0;
}

int cc_generate(cc_client *c, const char *model, const char *prompt, const struct cc_gen_params *p,
                struct cc_gen_result *ret)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__Generate g = CC__GENERATE__INIT;
	struct cc_gen_params def;
	Cc__Reply *rep = NULL;
	int r;

	if (!c || !model || !prompt || !ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if (!p) {
		cc_gen_defaults(&def);
		p = &def;
	}
	g.model = (char *)model;
	g.prompt = (char *)prompt;
	cc__gen_request(&g, p);
	req.body_case = CC__REQUEST__BODY_GENERATE;
	req.generate = &g;
	r = call(c, &req, -1, CC__REPLY__BODY_GENERATE, &rep);
	if (r < 0)
		return r;
	r = cc__gen_result_fill(rep->generate, ret);
	cc__reply__free_unpacked(rep, NULL);
	return r;
}

int cc_tokenize(cc_client *c, const char *model, const char *text, int add_bos, int special, int32_t **ret_ids,
                size_t *ret_n)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__Tokenize t = CC__TOKENIZE__INIT;
	Cc__Reply *rep = NULL;
	int r;

	if (!c || !model || !text || !ret_ids || !ret_n)
		return -EINVAL;
	t.model = (char *)model;
	t.text.data = (uint8_t *)text;
	t.text.len = strlen(text);
	t.no_bos = !add_bos;
	t.special = special != 0;
	req.body_case = CC__REQUEST__BODY_TOKENIZE;
	req.tokenize = &t;
	r = call(c, &req, c->control_timeout_ms, CC__REPLY__BODY_TOKENIZE, &rep);
	if (r < 0)
		return r;
	*ret_n = rep->tokenize->n_tokens;
	*ret_ids = malloc((*ret_n ? *ret_n : 1) * sizeof(int32_t));
	if (!*ret_ids) {
		cc__reply__free_unpacked(rep, NULL);
		return -ENOMEM;
	}
	if (*ret_n)
		memcpy(*ret_ids, rep->tokenize->tokens, *ret_n * sizeof(int32_t));
	cc__reply__free_unpacked(rep, NULL);
	return 0;
}

int cc_detokenize(cc_client *c, const char *model, const int32_t *ids, size_t n, char **ret_text, size_t *ret_len)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__Detokenize d = CC__DETOKENIZE__INIT;
	Cc__Reply *rep = NULL;
	size_t len;
	int r;

	if (!c || !model || (n && !ids) || !ret_text)
		return -EINVAL;
	d.model = (char *)model;
	d.n_tokens = n;
	d.tokens = (int32_t *)ids;
	req.body_case = CC__REQUEST__BODY_DETOKENIZE;
	req.detokenize = &d;
	r = call(c, &req, c->control_timeout_ms, CC__REPLY__BODY_DETOKENIZE, &rep);
	if (r < 0)
		return r;
	len = rep->detokenize->text.len;
	*ret_text = malloc(len + 1);
	if (!*ret_text) {
		cc__reply__free_unpacked(rep, NULL);
		return -ENOMEM;
	}
	if (len)
		memcpy(*ret_text, rep->detokenize->text.data, len);
	(*ret_text)[len] = '\0';
	if (ret_len)
		*ret_len = len;
	cc__reply__free_unpacked(rep, NULL);
	return 0;
}

int cc_logits(cc_client *c, const char *model, const int32_t *ids, size_t n, cc_tensor *out, size_t k, int32_t *top_ids,
              float *top_logits, uint32_t *ret_n_vocab)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__Logits l = CC__LOGITS__INIT;
	Cc__TensorRef ref = CC__TENSOR_REF__INIT;
	Cc__Reply *rep = NULL;
	const Cc__LogitsReply *lr;
	size_t i;
	int r;

	if (!c || !model || (n && !ids) || (k && (!top_ids || !top_logits)) || (out && out->c != c))
		return -EINVAL;
	l.model = (char *)model;
	l.n_tokens = n;
	l.tokens = (int32_t *)ids;
	l.top = (uint32_t)(k > 1000 ? 1001 : k);
	if (out) {
		ref.region_id = out->region_id;
		ref.len = out->n;
		ref.dtype = CC__DTYPE__DTYPE_F32;
		l.output = &ref;
	}
	req.body_case = CC__REQUEST__BODY_LOGITS;
	req.logits = &l;
	r = call(c, &req, -1, CC__REPLY__BODY_LOGITS, &rep);
	if (r < 0)
		return r;
	lr = rep->logits;
	for (i = 0; i < k; i++) {
		top_ids[i] = i < lr->n_top_ids ? lr->top_ids[i] : -1;
		top_logits[i] = i < lr->n_top_logits ? lr->top_logits[i] : 0.0f;
	}
	if (ret_n_vocab)
		*ret_n_vocab = lr->n_vocab;
	cc__reply__free_unpacked(rep, NULL);
	return 0;
}
