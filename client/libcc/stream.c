/* SPDX-License-Identifier: MIT */
/* stream.c: libcc's sessions and streamed generations (pieces queued per stream as client.c routes them). */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "libcc-internal.h"

int cc_session_new(cc_client *c, const char *model, uint32_t n_ctx, uint64_t *ret_session)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__SessionNew sn = CC__SESSION_NEW__INIT;
	Cc__Reply *rep = NULL;
	int r;

	if (!c || !model || !ret_session)
		return -EINVAL;
	sn.model = (char *)model;
	sn.n_ctx = n_ctx;
	req.body_case = CC__REQUEST__BODY_SESSION_NEW;
	req.session_new = &sn;
	r = cc__call(c, &req, c->control_timeout_ms, &rep);
	if (r == 0 && (rep->body_case != CC__REPLY__BODY_SESSION || !rep->session || !rep->session->session)) {
		cc__set_error(c, "ccd answered session_new with the wrong reply");
		r = -EBADMSG;
	}
	if (r == 0)
		*ret_session = rep->session->session;
	if (rep)
		cc__reply__free_unpacked(rep, NULL);
	return r;
}

int cc_session_free(cc_client *c, uint64_t session)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__SessionFree sf = CC__SESSION_FREE__INIT;

	if (!c || !session)
		return -EINVAL;
	sf.session = session;
	req.body_case = CC__REQUEST__BODY_SESSION_FREE;
	req.session_free = &sf;
	return cc__call(c, &req, c->control_timeout_ms, NULL);
}

void cc__stream_drop(cc_stream *st)
{
	cc_client *c = st->c;
	struct cc__piece *pc;

	if (st->prev)
		st->prev->next = st->next;
	else
		c->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	while ((pc = st->head)) {
		st->head = pc->next;
		free(pc);
	}
	free(st->cur);
	if (st->final)
		cc__reply__free_unpacked(st->final, NULL);
	free(st);
}

int cc_stream_start(cc_client *c, uint64_t session, const char *model, const char *prompt,
                    const struct cc_gen_params *p, cc_stream **ret)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__Generate g = CC__GENERATE__INIT;
	struct cc_gen_params def;
	cc_stream *st;
	int r;

	if (!c || (!session && !model) || !prompt || !ret)
		return -EINVAL;
	if (!p) {
		cc_gen_defaults(&def);
		p = &def;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	g.model = (char *)(session ? "" : model);
	g.prompt = (char *)prompt;
	g.session = session;
	g.stream = 1;
	cc__gen_request(&g, p);
	req.body_case = CC__REQUEST__BODY_GENERATE;
	req.generate = &g;
	r = cc__send(c, &req, &st->id);
	if (r < 0) {
		free(st);
		return r;
	}
	/* nothing is read between the send and here: no reply of ours can have been dropped */
	st->c = c;
	st->session = session;
	st->next = c->streams;
	if (c->streams)
		c->streams->prev = st;
	c->streams = st;
	*ret = st;
	return 0;
}

/* Has the stream something for cc_stream_next: a piece, or its end? */
static int stream_ready(const cc_stream *st)
{
	return st->head || st->final;
}

static int ready_one(void *arg)
{
	return stream_ready(arg);
}

/* How a stream that has no more pieces ended: 0 (a GenerateReply came), or its error (text in last_error). */
static int stream_end(cc_stream *st)
{
	cc_client *c = st->c;
	int r;

	if (st->lost)
		return st->lost;
	r = cc__reply_code(c, st->final);
	if (r == 0 && (st->final->body_case != CC__REPLY__BODY_GENERATE || !st->final->generate)) {
		cc__set_error(c, "ccd ended a stream with the wrong reply");
		r = -EBADMSG;
	}
	return r;
}

int cc_stream_next(cc_stream *st, int timeout_ms, const char **text, size_t *len)
{
	int r;

	if (!st)
		return -EINVAL;
	free(st->cur);
	st->cur = NULL;
	if (!stream_ready(st)) {
		if (st->c->dead)
			return -ECONNRESET;
		r = cc__wait_until(st->c, ready_one, st, timeout_ms);
		if (r < 0)
			return r;
	}
	if (!st->head)
		return stream_end(st);
	st->cur = st->head;
	st->head = st->cur->next;
	if (!st->head)
		st->tail = NULL;
	if (text)
		*text = st->cur->text;
	if (len)
		*len = st->cur->len;
	return 1;
}

size_t cc_stream_piece_tokens(const cc_stream *st, const int32_t **ids)
{
	if (!st || !st->cur) {
		if (ids)
			*ids = NULL;
		return 0;
	}
	if (ids)
		*ids = st->cur->tok;
	return st->cur->ntok;
}

int cc_stream_cancel(cc_stream *st)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__Cancel cn = CC__CANCEL__INIT;
	int r;

	if (!st)
		return -EINVAL;
	if (st->final || st->cancelled)
		return 0;
	cn.request = st->id;
	req.body_case = CC__REQUEST__BODY_CANCEL;
	req.cancel = &cn;
	st->cancelled = 1;
	r = cc__call(st->c, &req, st->c->control_timeout_ms, NULL);
	/* -ENOENT: the generation ended before the cancel came; its final reply is on the way or here */
	return r == -ENOENT ? 0 : r;
}

int cc_stream_result(cc_stream *st, struct cc_gen_result *ret)
{
	int r;

	if (!st || !ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if (!st->final)
		return -EAGAIN;
	r = stream_end(st);
	if (r < 0)
		return r;
	return cc__gen_result_fill(st->final->generate, ret);
}

/* Stop waiting for a cancelled stream's end after this long: its late replies are dropped anyway. */
#define FREE_WAIT_MS 5000

void cc_stream_free(cc_stream *st)
{
	if (!st)
		return;
	/*
	 * A running generation is cancelled, and its end waited for (briefly): the session is then free for
	 * the next turn at once instead of answering -EBUSY while the cancel is on its way.
	 */
	if (!st->final && !st->c->dead && cc_stream_cancel(st) == 0) {
		int t = st->c->control_timeout_ms < FREE_WAIT_MS ? st->c->control_timeout_ms : FREE_WAIT_MS;

		(void)cc__wait_until(st->c, ready_one, st, t);
	}
	cc__stream_drop(st);
}

struct poll_set {
	cc_stream *const *sts;
	size_t n;
	size_t first; /* looked at first */
	size_t found;
};

static int ready_any(void *arg)
{
	struct poll_set *ps = arg;
	size_t i, k;

	for (i = 0; i < ps->n; i++) {
		k = (ps->first + i) % ps->n;
		if (stream_ready(ps->sts[k])) {
			ps->found = k;
			return 1;
		}
	}
	return 0;
}

int cc_stream_poll(cc_stream *const *sts, size_t n, int timeout_ms)
{
	struct poll_set ps = {sts, n, 0, 0};
	cc_client *c;
	size_t i;
	int r;

	if (!sts || !n || n > INT_MAX || !sts[0])
		return -EINVAL;
	c = sts[0]->c;
	for (i = 1; i < n; i++)
		if (!sts[i] || sts[i]->c != c)
			return -EINVAL;
	/* round robin: a stream whose pieces pile up (a slow reader) does not hide the others */
	ps.first = c->poll_next % n;
	r = cc__wait_until(c, ready_any, &ps, timeout_ms);
	if (r < 0)
		return r;
	c->poll_next = ps.found + 1;
	return (int)ps.found;
}

int cc_generate_stream(cc_client *c, uint64_t session, const char *model, const char *prompt,
                       const struct cc_gen_params *p, cc_piece_fn on_piece, void *arg, struct cc_gen_result *ret)
{
	const char *text;
	cc_stream *st;
	size_t len;
	int r;

	if (!ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	r = cc_stream_start(c, session, model, prompt, p, &st);
	if (r < 0)
		return r;
	while ((r = cc_stream_next(st, -1, &text, &len)) > 0) {
		if (!on_piece || st->cancelled || on_piece(arg, text, len) == 0)
			continue;
		/* the caller wants no more: the stream still runs to its end (-ECANCELED, or done meanwhile) */
		r = cc_stream_cancel(st);
		if (r < 0)
			break;
	}
	if (r == 0)
		r = cc_stream_result(st, ret);
	cc_stream_free(st);
	return r;
}
