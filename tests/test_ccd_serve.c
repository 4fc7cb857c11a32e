/* SPDX-License-Identifier: MIT */
/* test_ccd_serve.c: serving through a real ccd and libcc (issue 7): sessions, streamed generation, cancel, continuous
 * batching, dead clients and forced unloads. */
/*
 * - 8 client processes stream 8 prompts at once (greedy): each gets what its prompt gives alone, token for token,
 *   and its pieces put together are the final text (stories260K, and SmolLM2 when it is here).
 * - A client killed mid-stream: its session leaves the list (libcc, the raw protocol and `ccctl sessions`) within
 *   seconds while another stream goes on to the end and still equals its result alone.
 * - Cancel: counted on the raw protocol, at most one step's tokens come after the cancel's reply; the stream ends
 *   with -ECANCELED and the session takes a new turn.
 * - A forced unload (libcc and `ccctl unload --force`) ends every stream with an error that says so; the daemon
 *   serves on, and the model loads and generates again.
 * - Sessions: a turn only processes its own tokens, the history is right (next-token logits of the whole text),
 *   turn 1 equals a one-shot generation; limits (per client, KV budget, idle expiry), ownership, -EBUSY, cc_close.
 * - Bad input gets clear errors, and the daemon serves on.
 * - Chunked prefill: a long prompt does not stall a stream that is running.
 * Client processes are this program again (exec'd with --gen or --hog), never a bare fork of this multi-threaded
 * process: a fork can inherit an allocator lock held by a ZeroMQ thread (it hung under ASan once).
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "t_ccd.h"
#include "t_json.h"

#define T_NCLIENTS 8
#define T_STEP_MS 60000     /* longest wait for one piece (scaled): a lost reply fails the test, never hangs it */
#define T_RECLAIM_S 5.0     /* "within a few seconds" (scaled) */
#define T_LONG_TOKENS 1800  /* a generation that runs until it is stopped (session_ctx is 2048) */
#define T_CANCEL_TOKENS 2   /* tokens that may still come after the cancel's reply: the step then running */
#define T_STORIES_TOKENS 96 /* per client in the batching test (stories260K) */
#define T_SMOL_TOKENS 24    /* the same with SmolLM2: kept short */

extern char **environ;

static struct t_ccd d;
static cc_client *c;
static struct t_raw raw;
static char stories[PATH_MAX];

/* Dead clients are noticed every 200 ms instead of every second. */
static const char *const group_args[] = {"-o", "reap_interval_ms=200", NULL};

/*
 * Eight prompts of different lengths; the longest is past batch_tokens (64), so its prefill is chunked between the
 * others' decode steps.
 */
static const char *const prompts[T_NCLIENTS] = {
    "Once upon a time",
    "The little dog",
    "Lily and Ben went to the park. They saw a big tree and",
    "One day, a girl named Sue",
    "Tom had a red ball. He liked to play with it every day. One day, the ball rolled away and Tom was sad. He "
    "looked for it in the garden, under the bed and in the kitchen. He asked his mom and his dad and his sister, "
    "but nobody knew where the ball was. Then he saw his dog. The dog had the ball in his mouth and he was happy. "
    "Tom laughed and said",
    "A bird",
    "Sam",
    "The sun was shining and the sky was blue. Anna",
};

/* ---- generation helpers ---------------------------------------------------------------------------------- */

/* Greedy, raw, a fixed number of tokens at most. */
static void t_params(struct cc_gen_params *p, uint32_t max_tokens, int ignore_eos)
{
	cc_gen_defaults(p);
	p->temp = 0;
	p->raw = 1;
	p->max_tokens = max_tokens;
	p->ignore_eos = ignore_eos;
}

/* One streamed generation as it came: the result (err 0) or the error, and the pieces put together. */
struct t_gen {
	int err;
	char errtext[256];
	struct cc_gen_result r; /* when err == 0 */
	char *cat;              /* the pieces, concatenated (NUL-terminated) */
	size_t catlen;
	unsigned npieces;
	unsigned emptypieces; /* pieces without text (the daemon sends a token that adds none, or text held back) */
	unsigned badpieces;   /* pieces that were not whole UTF-8 characters, or with a NUL inside */
	char badwhy[96];      /* the first bad piece */
};

/* 1 if s[0..len) is whole, valid UTF-8 characters. */
static int t_utf8_whole(const char *s, size_t len)
{
	size_t i = 0, k, n;

	while (i < len) {
		unsigned char b = (unsigned char)s[i];

		n = b < 0x80 ? 1 : (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 : (b & 0xf8) == 0xf0 ? 4 : 0;
		if (!n || i + n > len)
			return 0;
		for (k = 1; k < n; k++)
			if (((unsigned char)s[i + k] & 0xc0) != 0x80)
				return 0;
		i += n;
	}
	return 1;
}

static void t_gen_piece(struct t_gen *g, const char *text, size_t len)
{
	char *cat = realloc(g->cat, g->catlen + len + 1);

	if (!cat) {
		fprintf(stderr, "out of memory\n");
		abort();
	}
	if (text && !len)
		g->emptypieces++;
	if (!text || memchr(text, 0, len) || text[len] != 0 || !t_utf8_whole(text, len)) {
		if (!g->badpieces++) {
			size_t i, o;

			o = (size_t)snprintf(g->badwhy, sizeof(g->badwhy), "piece %u, %zu bytes:", g->npieces, len);
			for (i = 0; text && i < len && i < 16 && o < sizeof(g->badwhy); i++)
				o += (size_t)snprintf(g->badwhy + o, sizeof(g->badwhy) - o, " %02x",
				                      (unsigned char)text[i]);
		}
	}
	if (text && len)
		memcpy(cat + g->catlen, text, len);
	g->catlen += len;
	cat[g->catlen] = 0;
	g->cat = cat;
	g->npieces++;
}

/* The stream's end: r is cc_stream_next's 0 or error. */
static void t_gen_end(struct t_gen *g, cc_client *cl, cc_stream *st, int r)
{
	g->err = r;
	if (r == 0)
		g->err = cc_stream_result(st, &g->r);
	if (g->err)
		snprintf(g->errtext, sizeof(g->errtext), "%s", cc_last_error(cl));
}

/* Stream one generation to its end (session 0: one-shot of model). */
static void t_stream_run(cc_client *cl, uint64_t session, const char *model, const char *prompt,
                         const struct cc_gen_params *p, struct t_gen *g)
{
	cc_stream *st = NULL;
	const char *text;
	size_t len;
	int r;

	memset(g, 0, sizeof(*g));
	r = cc_stream_start(cl, session, model, prompt, p, &st);
	if (r) {
		g->err = r;
		snprintf(g->errtext, sizeof(g->errtext), "cc_stream_start: %s", cc_last_error(cl));
		return;
	}
	while ((r = cc_stream_next(st, (int)(T_STEP_MS * t_scale()), &text, &len)) == 1)
		t_gen_piece(g, text, len);
	t_gen_end(g, cl, st, r);
	cc_stream_free(st);
}

static void t_gen_free(struct t_gen *g)
{
	if (g->err == 0)
		cc_gen_result_free(&g->r);
	free(g->cat);
	memset(g, 0, sizeof(*g));
}

/* NULL when the two results are the same generation (tokens, text, stop reason), else what differs. */
static const char *t_result_diff(const struct cc_gen_result *a, const struct cc_gen_result *b)
{
	static char why[256];
	size_t i;

	if (a->ntokens != b->ntokens) {
		for (i = 0; i < a->ntokens && i < b->ntokens && a->tokens[i] == b->tokens[i]; i++)
			;
		snprintf(why, sizeof(why), "%zu tokens instead of %zu (the first difference at %zu)", a->ntokens,
		         b->ntokens, i);
		return why;
	}
	for (i = 0; i < a->ntokens; i++)
		if (a->tokens[i] != b->tokens[i]) {
			snprintf(why, sizeof(why), "token %zu is %d instead of %d", i, a->tokens[i], b->tokens[i]);
			return why;
		}
	if (strcmp(a->text, b->text)) {
		snprintf(why, sizeof(why), "same tokens, text '%.60s' instead of '%.60s'", a->text, b->text);
		return why;
	}
	if (strcmp(a->stop_reason, b->stop_reason)) {
		snprintf(why, sizeof(why), "stop reason %s instead of %s", a->stop_reason, b->stop_reason);
		return why;
	}
	return NULL;
}

/* NULL when a stream ended well, its pieces make its text, and it equals alone (if not NULL); else what is wrong. */
static const char *t_gen_diff(const struct t_gen *g, const struct cc_gen_result *alone)
{
	static char why[512];
	const char *w;

	if (g->err) {
		snprintf(why, sizeof(why), "the stream failed: %d %s (%s)", g->err, strerror(-g->err), g->errtext);
		return why;
	}
	if (g->badpieces) {
		snprintf(why, sizeof(why), "%u of %u pieces were not whole UTF-8 characters (the first: %s)",
		         g->badpieces, g->npieces, g->badwhy);
		return why;
	}
	if (g->catlen != strlen(g->r.text) || (g->catlen && memcmp(g->cat, g->r.text, g->catlen))) {
		snprintf(why, sizeof(why), "the %u pieces make '%.80s' (%zu bytes), the final text is '%.80s' (%zu)",
		         g->npieces, g->cat ? g->cat : "", g->catlen, g->r.text, strlen(g->r.text));
		return why;
	}
	if (g->r.ntokens && !g->npieces) {
		snprintf(why, sizeof(why), "%zu tokens generated and no piece streamed", g->r.ntokens);
		return why;
	}
	if (alone && (w = t_result_diff(&g->r, alone))) {
		snprintf(why, sizeof(why), "differs from the same prompt alone: %s", w);
		return why;
	}
	return NULL;
}

static void t_assert_gen(const struct t_gen *g, const struct cc_gen_result *alone, const char *what)
{
	const char *why = t_gen_diff(g, alone);

	if (why)
		fail_msg("%s: %s", what, why);
}

/* cc_generate of prompt alone (one-shot, not streamed); fails the test on an error. */
static void t_alone(cc_client *cl, const char *model, const char *prompt, const struct cc_gen_params *p,
                    struct cc_gen_result *r)
{
	int e = cc_generate(cl, model, prompt, p, r);

	if (e)
		fail_msg("generate '%.30s' alone: %s (%s)", prompt, cc_strerror(e), cc_last_error(cl));
}

static int t_piece_count(void *arg, const char *text, size_t len)
{
	(void)text;
	(void)len;
	++*(unsigned *)arg;
	return 0;
}

/* A callback that asks to cancel once it has seen *arg pieces (counting down). */
static int t_piece_cancel_after(void *arg, const char *text, size_t len)
{
	unsigned *left = arg;

	(void)text;
	(void)len;
	return *left == 0 || --*left == 0;
}

/* ---- several streams of one client ----------------------------------------------------------------------- */
#define T_MAXST 4

struct t_multi {
	cc_client *cl;
	size_t n;
	cc_stream *st[T_MAXST];
	struct t_gen g[T_MAXST];
	int done[T_MAXST];
};

/* Start stream i of m. */
static void t_multi_start(struct t_multi *m, size_t i, uint64_t session, const char *model, const char *prompt,
                          const struct cc_gen_params *p)
{
	int e;

	memset(&m->g[i], 0, sizeof(m->g[i]));
	m->done[i] = 0;
	e = cc_stream_start(m->cl, session, model, prompt, p, &m->st[i]);
	if (e)
		fail_msg("cc_stream_start %zu: %s (%s)", i, cc_strerror(e), cc_last_error(m->cl));
	if (i >= m->n)
		m->n = i + 1;
}

/* Read m's streams until each has min_pieces pieces or has ended (min_pieces 0: until all have ended). */
static void t_multi_drive(struct t_multi *m, unsigned min_pieces)
{
	for (;;) {
		cc_stream *live[T_MAXST];
		size_t map[T_MAXST], nl = 0, i;
		const char *text;
		size_t len;
		int k, r;

		for (i = 0; i < m->n; i++)
			if (!m->done[i] && (!min_pieces || m->g[i].npieces < min_pieces))
				map[nl] = i, live[nl++] = m->st[i];
		if (!nl)
			return;
		k = cc_stream_poll(live, nl, (int)(T_STEP_MS * t_scale()));
		if (k < 0)
			fail_msg("cc_stream_poll over %zu streams: %s (%s)", nl, cc_strerror(k), cc_last_error(m->cl));
		if ((size_t)k >= nl)
			fail_msg("cc_stream_poll returned %d for %zu streams", k, nl);
		i = map[k];
		r = cc_stream_next(m->st[i], 0, &text, &len);
		if (r == 1)
			t_gen_piece(&m->g[i], text, len);
		else if (r != -ETIMEDOUT) {
			t_gen_end(&m->g[i], m->cl, m->st[i], r);
			m->done[i] = 1;
		}
	}
}

static void t_multi_free(struct t_multi *m)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		cc_stream_free(m->st[i]);
		t_gen_free(&m->g[i]);
	}
	m->n = 0;
}

/* ---- the raw protocol: sessions, generate, cancel ------------------------------------------------------- */

/* The sessions list through r (any client may list). Fails the test on an error; free with cc__reply__free_unpacked. */
static Cc__Reply *t_sessions(struct t_raw *r)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__Empty e = CC__EMPTY__INIT;
	Cc__Reply *rep = NULL;
	int err;

	req.body_case = CC__REQUEST__BODY_SESSIONS;
	req.sessions = &e;
	err = t_raw_call(r, &req, &rep);
	if (err)
		fail_msg("sessions request: %s", strerror(-err));
	if (rep->code || rep->body_case != CC__REPLY__BODY_SESSIONS || !rep->sessions) {
		int code = rep->code;
		char why[256];

		snprintf(why, sizeof(why), "%s", rep->error ? rep->error : "");
		cc__reply__free_unpacked(rep, NULL);
		fail_msg("sessions request: code %d (%s), body %s", code, why, code ? "-" : "missing");
	}
	return rep;
}

/* Sessions listed through r that match pid (0: any) and id (0: any), and (if not NULL) the last match's info. */
static unsigned t_sessions_matching(struct t_raw *r, pid_t pid, uint64_t id, Cc__SessionInfo *info)
{
	Cc__Reply *rep = t_sessions(r);
	unsigned n = 0;
	size_t i;

	for (i = 0; i < rep->sessions->n_sessions; i++) {
		Cc__SessionInfo *si = rep->sessions->sessions[i];

		if ((pid && si->pid != (uint32_t)pid) || (id && si->id != id))
			continue;
		n++;
		if (info) {
			*info = *si;
			info->model = info->state = NULL; /* they die with the reply */
		}
	}
	cc__reply__free_unpacked(rep, NULL);
	return n;
}

/* Sessions (of any client) listed through r whose state is not idle: generating or waiting to. */
static unsigned t_sessions_busy(struct t_raw *r)
{
	Cc__Reply *rep = t_sessions(r);
	unsigned n = 0;
	size_t i;

	for (i = 0; i < rep->sessions->n_sessions; i++)
		if (rep->sessions->sessions[i]->state && strcmp(rep->sessions->sessions[i]->state, "idle"))
			n++;
	cc__reply__free_unpacked(rep, NULL);
	return n;
}

/* SessionNew by hand: the reply's code (text to err), with the reply's values in *out when 0. */
static int t_raw_session_new(struct t_raw *r, const char *model, uint32_t n_ctx, Cc__SessionReply *out, char *err,
                             size_t errlen)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__SessionNew sn = CC__SESSION_NEW__INIT;
	Cc__Reply *rep;
	int e;

	if (model)
		sn.model = (char *)model;
	sn.n_ctx = n_ctx;
	req.body_case = CC__REQUEST__BODY_SESSION_NEW;
	req.session_new = &sn;
	e = t_raw_call(r, &req, &rep);
	if (e)
		fail_msg("raw session_new: %s", strerror(-e));
	e = rep->code;
	snprintf(err, errlen, "%s", rep->error ? rep->error : "");
	if (e == 0) {
		if (rep->body_case != CC__REPLY__BODY_SESSION || !rep->session) {
			cc__reply__free_unpacked(rep, NULL);
			fail_msg("session_new answered 0 without a SessionReply");
		}
		*out = *rep->session;
	}
	cc__reply__free_unpacked(rep, NULL);
	return e;
}

static int t_raw_session_free(struct t_raw *r, uint64_t session)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__SessionFree sf = CC__SESSION_FREE__INIT;
	Cc__Reply *rep;
	int e;

	sf.session = session;
	req.body_case = CC__REQUEST__BODY_SESSION_FREE;
	req.session_free = &sf;
	e = t_raw_call(r, &req, &rep);
	if (e)
		fail_msg("raw session_free: %s", strerror(-e));
	e = rep->code;
	cc__reply__free_unpacked(rep, NULL);
	return e;
}

/* Send a greedy raw Generate without waiting; returns its id. */
static uint64_t t_raw_gen_send(struct t_raw *r, uint64_t session, const char *model, const char *prompt,
                               uint32_t max_tokens, int stream, int ignore_eos, const char *stop)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__Generate g = CC__GENERATE__INIT;
	char *stops[1] = {(char *)stop};

	if (model)
		g.model = (char *)model;
	g.prompt = (char *)prompt;
	g.raw = 1;
	g.max_tokens = max_tokens;
	g.temp = 0;
	g.top_k = 40;
	g.top_p = 0.95f;
	g.min_p = 0.05f;
	g.repeat_penalty = 1;
	g.repeat_last_n = 64;
	g.session = session;
	g.stream = stream;
	g.ignore_eos = ignore_eos;
	if (stop) {
		g.stop = stops;
		g.n_stop = 1;
	}
	req.id = r->next_id++;
	req.body_case = CC__REQUEST__BODY_GENERATE;
	req.generate = &g;
	assert_int_equal(t_raw_send(r, &req), 0);
	return req.id;
}

/* Send Cancel{request} without waiting; returns the cancel's own id. */
static uint64_t t_raw_cancel_send(struct t_raw *r, uint64_t request)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__Cancel cn = CC__CANCEL__INIT;

	cn.request = request;
	req.id = r->next_id++;
	req.body_case = CC__REQUEST__BODY_CANCEL;
	req.cancel = &cn;
	assert_int_equal(t_raw_send(r, &req), 0);
	return req.id;
}

/* Receive r's next reply (fails the test after T_STEP_MS, scaled). */
static Cc__Reply *t_raw_next(struct t_raw *r)
{
	Cc__Reply *rep = NULL;
	int e = t_raw_recv(r, T_STEP_MS, &rep);

	if (e)
		fail_msg("raw client: no reply within %d ms: %s", T_STEP_MS, strerror(-e));
	return rep;
}

/* ---- JSON and ccctl ---------------------------------------------------------------------------------------- */

/* Objects anywhere in j with "pid": pid. */
static unsigned t_json_count_pid(const struct t_json *j, uint64_t pid)
{
	const struct t_json *p;
	unsigned n = 0;
	size_t i;

	if (!j)
		return 0;
	if (j->type == T_JSON_OBJ && (p = t_json_get(j, "pid")) && p->type == T_JSON_NUM && p->num == (double)pid)
		n++;
	if (j->type == T_JSON_OBJ || j->type == T_JSON_ARR)
		for (i = 0; i < j->n; i++)
			n += t_json_count_pid(&j->items[i], pid);
	return n;
}

/* Sessions of pid in cc_admin_json(cl, "sessions"), which must be one JSON document with a "sessions" array. */
static unsigned t_admin_sessions_of(cc_client *cl, pid_t pid)
{
	char *json = NULL, err[160];
	struct t_json *j;
	unsigned n;
	int e = cc_admin_json(cl, "sessions", &json);

	if (e)
		fail_msg("cc_admin_json(sessions): %s (%s)", cc_strerror(e), cc_last_error(cl));
	j = t_json_parse(json, strlen(json), err, sizeof(err));
	if (!j)
		fail_msg("cc_admin_json(sessions) is not JSON (%s): %.200s", err, json);
	free(json);
	if (!t_json_get(j, "sessions") || t_json_get(j, "sessions")->type != T_JSON_ARR) {
		t_json_free(j);
		fail_msg("cc_admin_json(sessions) has no \"sessions\" array");
	}
	n = t_json_count_pid(t_json_get(j, "sessions"), (uint64_t)pid);
	t_json_free(j);
	return n;
}


/* Sessions of pid in `ccctl --json sessions` (which must succeed and print JSON). */
static unsigned t_ccctl_sessions_of(const struct t_ccd *dd, pid_t pid)
{
	static char out[1 << 16];
	char err[160];
	struct t_json *j;
	unsigned n;
	int st = t_ccctl(dd, out, sizeof(out), "--json", "sessions", (char *)NULL);

	if (st)
		fail_msg("ccctl --json sessions exited with %d: %.300s", st, out);
	j = t_json_parse(out, strlen(out), err, sizeof(err));
	if (!j)
		fail_msg("ccctl --json sessions did not print JSON (%s): %.300s", err, out);
	n = t_json_count_pid(j, (uint64_t)pid);
	t_json_free(j);
	return n;
}

/* ---- fixture ----------------------------------------------------------------------------------------------- */

static int setup(void **state)
{
	(void)state;
	if (!t_model("stories260K.gguf", stories, sizeof(stories)))
		return -1;
	if (t_fixture_up(&d, group_args, &c, &raw))
		return -1;
	if (cc_model_load(c, "s", stories, NULL, NULL, NULL, NULL, NULL)) {
		fprintf(stderr, "load %s: %s\n", stories, cc_last_error(c));
		t_fixture_down(&d, &c, &raw);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return t_fixture_down(&d, &c, &raw) ? -1 : 0;
}

static int t_setup(void **state)
{
	(void)state;
	t_watchdog(300, "test_ccd_serve");
	return 0;
}

/* A daemon of a test's own (args), a client, a raw client that said hello, and stories260K loaded as "s". */
static void t_daemon_up(struct t_ccd *dd, const char *const *args, cc_client **cl, struct t_raw *r)
{
	int e;

	assert_int_equal(t_ccd_start(dd, args, NULL), 0);
	e = t_ccd_connect(dd, cl);
	if (e)
		fail_msg("connect: %s", cc_strerror(e));
	assert_int_equal(t_raw_open(r, dd->endpoint), 0);
	assert_int_equal(t_raw_hello(r, CC_PROTO_VERSION), 0);
	if (cc_model_load(*cl, "s", stories, NULL, NULL, NULL, NULL, NULL))
		fail_msg("load %s: %s", stories, cc_last_error(*cl));
}

static void t_daemon_down(struct t_ccd *dd, cc_client **cl, struct t_raw *r)
{
	t_raw_close(r);
	cc_close(*cl);
	*cl = NULL;
	assert_int_equal(t_ccd_stop(dd), 0);
}

/* The fixture's daemon still serves: ops, ping, status, and a generation. */
static void t_assert_serving(void)
{
	const char *why = t_healthy_check(&d, c, 1000);
	struct cc_gen_params p;
	struct cc_gen_result r;
	Cc__Reply *rep;

	if (why)
		fail_msg("%s", why);
	assert_int_equal(t_raw_status(&raw, &rep), 0);
	cc__reply__free_unpacked(rep, NULL);
	t_params(&p, 4, 1);
	t_alone(c, "s", "Once", &p, &r);
	assert_int_equal(r.ntokens, 4);
	cc_gen_result_free(&r);
}

/* The status's entry for model: tokens generated since its load, and (if not NULL) its open sessions. */
static uint64_t t_model_gen_tokens(const char *model, uint32_t *sessions)
{
	Cc__Reply *rep;
	uint64_t n = 0;
	size_t i;
	int found = 0;

	assert_int_equal(t_raw_status(&raw, &rep), 0);
	for (i = 0; i < rep->status->n_model_list; i++)
		if (!strcmp(rep->status->model_list[i]->name, model)) {
			n = rep->status->model_list[i]->gen_tokens;
			if (sessions)
				*sessions = rep->status->model_list[i]->sessions;
			found = 1;
		}
	cc__reply__free_unpacked(rep, NULL);
	if (!found)
		fail_msg("status: no entry for model %s in model_list", model);
	return n;
}

/* ---- 1. eight client processes at once --------------------------------------------------------------------- */

/* What a --gen client writes to its file: this header, then the tokens, the final text and the pieces. */
struct t_rec {
	int32_t err;
	uint32_t ntokens, len, catlen, npieces, badpieces;
	uint64_t session, want_session;
	char stop[16];
	char errtext[256];
	char badwhy[96];
};

/* Client idx's parameters: even ones ignore EOS (they run the whole max_tokens), odd ones stop at it. */
static void t_client_params(struct cc_gen_params *p, unsigned idx, uint32_t max_tokens)
{
	t_params(p, max_tokens, idx % 2 == 0);
}

/*
 * --gen EP MODEL IDX MAX_TOKENS GO_FD READY_FD OUTFILE: connect, say ready, wait for the go, stream prompts[IDX]
 * (on a session of its own for odd IDX, one-shot for even ones) and write the outcome to OUTFILE.
 */
static int t_child_gen(char **argv)
{
	const char *ep = argv[0], *model = argv[1], *path = argv[6];
	unsigned idx = (unsigned)atoi(argv[2]);
	int go = atoi(argv[4]), ready = atoi(argv[5]), e;
	struct cc_gen_params p;
	struct t_rec rec;
	struct t_gen g;
	uint64_t sid = 0;
	cc_client *cl;
	FILE *f;
	char ch;

	t_watchdog(240, "a --gen client process");
	if (idx >= T_NCLIENTS)
		return 2;
	e = cc_connect(ep, &cl);
	if (e) {
		fprintf(stderr, "client %u: cc_connect: %s\n", idx, cc_strerror(e));
		return 3;
	}
	if (idx % 2 && (e = cc_session_new(cl, model, 0, &sid))) {
		fprintf(stderr, "client %u: cc_session_new: %s (%s)\n", idx, cc_strerror(e), cc_last_error(cl));
		return 3;
	}
	if (write(ready, "R", 1) != 1 || read(go, &ch, 1) != 1)
		return 4;
	close(ready);
	close(go);
	t_client_params(&p, idx, (uint32_t)atoi(argv[3]));
	t_stream_run(cl, sid, sid ? NULL : model, prompts[idx], &p, &g);
	memset(&rec, 0, sizeof(rec));
	rec.err = g.err;
	rec.want_session = sid;
	snprintf(rec.errtext, sizeof(rec.errtext), "%s", g.errtext);
	if (!g.err) {
		rec.ntokens = (uint32_t)g.r.ntokens;
		rec.len = (uint32_t)strlen(g.r.text);
		rec.session = g.r.session;
		memcpy(rec.stop, g.r.stop_reason, sizeof(rec.stop));
	}
	rec.catlen = (uint32_t)g.catlen;
	rec.npieces = g.npieces;
	rec.badpieces = g.badpieces;
	memcpy(rec.badwhy, g.badwhy, sizeof(rec.badwhy));
	f = fopen(path, "wb");
	if (!f || fwrite(&rec, sizeof(rec), 1, f) != 1 ||
	    (rec.ntokens && fwrite(g.r.tokens, sizeof(int32_t), rec.ntokens, f) != rec.ntokens) ||
	    (rec.len && fwrite(g.r.text, 1, rec.len, f) != rec.len) ||
	    (rec.catlen && fwrite(g.cat, 1, rec.catlen, f) != rec.catlen) || fclose(f)) {
		fprintf(stderr, "client %u: cannot write %s\n", idx, path);
		return 5;
	}
	if (sid && (e = cc_session_free(cl, sid))) {
		fprintf(stderr, "client %u: cc_session_free: %s\n", idx, cc_strerror(e));
		return 6;
	}
	t_gen_free(&g);
	cc_close(cl);
	return 0;
}

/* Read a --gen client's file back into g (and its sessions). */
static void t_rec_read(const char *path, struct t_gen *g, uint64_t *session, uint64_t *want_session)
{
	struct t_rec rec;
	FILE *f = fopen(path, "rb");

	memset(g, 0, sizeof(*g));
	if (!f)
		fail_msg("a client left no %s", path);
	if (fread(&rec, sizeof(rec), 1, f) != 1)
		fail_msg("%s is short", path);
	g->err = rec.err;
	memcpy(g->errtext, rec.errtext, sizeof(g->errtext));
	g->npieces = rec.npieces;
	g->badpieces = rec.badpieces;
	memcpy(g->badwhy, rec.badwhy, sizeof(g->badwhy));
	g->catlen = rec.catlen;
	g->cat = calloc(1, rec.catlen + 1);
	assert_non_null(g->cat);
	if (!rec.err) {
		g->r.ntokens = rec.ntokens;
		g->r.tokens = calloc(rec.ntokens + 1, sizeof(int32_t));
		g->r.text = calloc(1, rec.len + 1);
		assert_non_null(g->r.tokens);
		assert_non_null(g->r.text);
		memcpy(g->r.stop_reason, rec.stop, sizeof(rec.stop));
		g->r.stop_reason[sizeof(g->r.stop_reason) - 1] = 0;
		if (fread(g->r.tokens, sizeof(int32_t), rec.ntokens, f) != rec.ntokens ||
		    fread(g->r.text, 1, rec.len, f) != rec.len)
			fail_msg("%s is short", path);
	}
	if (fread(g->cat, 1, rec.catlen, f) != rec.catlen)
		fail_msg("%s is short", path);
	fclose(f);
	*session = rec.session;
	*want_session = rec.want_session;
}

/* Wait up to seconds (scaled) for want bytes on fd. Returns the bytes read. */
static size_t t_read_bytes(int fd, char *buf, size_t want, double seconds)
{
	double end = t_now() + seconds * t_scale();
	struct pollfd pfd = {fd, POLLIN, 0};
	size_t got = 0;
	ssize_t n;

	while (got < want) {
		int left = (int)((end - t_now()) * 1000);

		if (left <= 0 || poll(&pfd, 1, left) != 1)
			break;
		n = read(fd, buf + got, want - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

/*
 * 8 prompts alone, one at a time; then 8 client processes stream them at once (started together): each output is
 * its prompt's alone, token for token, and its pieces make its text.
 */
static void t_eight_clients(const char *model, uint32_t max_tokens)
{
	struct cc_gen_result alone[T_NCLIENTS];
	pid_t pids[T_NCLIENTS], dead[T_NCLIENTS];
	int go[2], ready[2], st;
	unsigned i, bad = 0, busy_max = 0, busy, left;
	char rbuf[T_NCLIENTS], path[256];
	uint64_t gen0 = t_model_gen_tokens(model, NULL), sum = 0;
	double t0;

	for (i = 0; i < T_NCLIENTS; i++) {
		struct cc_gen_params p;

		t_client_params(&p, i, max_tokens);
		t_alone(c, model, prompts[i], &p, &alone[i]);
		sum += alone[i].ntokens;
	}
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(ready), 0);
	fflush(stdout);
	fflush(stderr);
	for (i = 0; i < T_NCLIENTS; i++) {
		char idx[16], ntok[16], gofd[16], rdfd[16];

		snprintf(idx, sizeof(idx), "%u", i);
		snprintf(ntok, sizeof(ntok), "%u", (unsigned)max_tokens);
		snprintf(gofd, sizeof(gofd), "%d", go[0]);
		snprintf(rdfd, sizeof(rdfd), "%d", ready[1]);
		snprintf(path, sizeof(path), "%s/gen.%u", d.dir, i);
		unlink(path);
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(go[1]);
			close(ready[0]);
			execl("/proc/self/exe", "test_ccd_serve", "--gen", d.endpoint, model, idx, ntok, gofd, rdfd,
			      path, (char *)NULL);
			_exit(127);
		}
	}
	close(go[0]);
	close(ready[1]);
	if (t_read_bytes(ready[0], rbuf, T_NCLIENTS, 60) != T_NCLIENTS) {
		for (i = 0; i < T_NCLIENTS; i++)
			kill(pids[i], SIGKILL);
		fail_msg("the client processes did not all get ready");
	}
	/* all connected (and their sessions made): go */
	t0 = t_now();
	memset(rbuf, 'G', sizeof(rbuf));
	assert_int_equal(write(go[1], rbuf, T_NCLIENTS), T_NCLIENTS);
	close(go[1]);
	close(ready[0]);
	for (left = T_NCLIENTS; left;) {
		for (i = 0; i < T_NCLIENTS; i++) {
			if (!pids[i] || waitpid(pids[i], &st, WNOHANG) != pids[i])
				continue;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				fprintf(stderr, "client process %u failed: wait status 0x%x\n", i, st);
				bad++;
			}
			dead[i] = pids[i];
			pids[i] = 0;
			left--;
		}
		/* how many generate at once (for the log; never a pass condition) */
		busy = t_sessions_busy(&raw);
		if (busy > busy_max)
			busy_max = busy;
		t_msleep(2);
	}
	print_message("%s: %u clients x %u tokens at once in %.2f s; at most %u sessions busy at once in the list\n",
	              model, T_NCLIENTS, (unsigned)max_tokens, t_now() - t0, busy_max);
	assert_int_equal(bad, 0);
	for (i = 0; i < T_NCLIENTS; i++) {
		uint64_t sess, want;
		struct t_gen g;
		const char *why;

		snprintf(path, sizeof(path), "%s/gen.%u", d.dir, i);
		t_rec_read(path, &g, &sess, &want);
		unlink(path);
		why = t_gen_diff(&g, &alone[i]);
		if (why)
			fail_msg("client %u ('%.30s', %s): %s", i, prompts[i], want ? "session" : "one-shot", why);
		if (sess != want)
			fail_msg("client %u: the result names session %llu, it was %llu", i, (unsigned long long)sess,
			         (unsigned long long)want);
		t_gen_free(&g);
		cc_gen_result_free(&alone[i]);
	}
	/* the status counts every token: the alone ones and the clients' (the same number again) */
	{
		uint64_t gen1 = t_model_gen_tokens(model, NULL);

		if (gen1 - gen0 != 2 * sum)
			fail_msg("status: model %s's gen_tokens went from %llu to %llu; %llu tokens were generated",
			         model, (unsigned long long)gen0, (unsigned long long)gen1,
			         (unsigned long long)(2 * sum));
	}
	/* every client closed: none of their sessions is left */
	{
		double end = t_now() + T_RECLAIM_S * t_scale();

		for (i = 0; i < T_NCLIENTS; i++) {
			while (t_sessions_matching(&raw, dead[i], 0, NULL) && t_now() < end)
				t_msleep(20);
			if (t_sessions_matching(&raw, dead[i], 0, NULL))
				fail_msg("client %u's session is still listed after it closed", i);
		}
	}
	t_assert_serving();
}

static void test_eight_clients_batched_equal_alone(void **state)
{
	(void)state;
	t_eight_clients("s", T_STORIES_TOKENS);
}

static void test_eight_clients_smollm2(void **state)
{
	char path[PATH_MAX];

	(void)state;
	if (!t_smollm2(path, sizeof(path))) {
		print_message("SmolLM2 is not here: skipping its 8-client test\n");
		skip();
	}
	if (cc_model_load(c, "smol", path, NULL, NULL, NULL, NULL, NULL))
		fail_msg("load %s: %s", path, cc_last_error(c));
	t_eight_clients("smol", T_SMOL_TOKENS);
	assert_int_equal(cc_model_unload(c, "smol", 0), 0);
}

/* One client streams 4 generations at once (2 on sessions, 2 one-shot), read through cc_stream_poll: each equals its
 * prompt alone. */
static void test_one_client_four_streams(void **state)
{
	struct cc_gen_result alone[T_MAXST];
	struct cc_gen_params p;
	struct t_multi m;
	uint64_t sess[2];
	size_t i;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.cl = c;
	assert_int_equal(cc_session_new(c, "s", 0, &sess[0]), 0);
	assert_int_equal(cc_session_new(c, "s", 0, &sess[1]), 0);
	for (i = 0; i < T_MAXST; i++) {
		t_client_params(&p, (unsigned)i, T_STORIES_TOKENS);
		t_alone(c, "s", prompts[i + 4], &p, &alone[i]);
	}
	for (i = 0; i < T_MAXST; i++) {
		t_client_params(&p, (unsigned)i, T_STORIES_TOKENS);
		t_multi_start(&m, i, i < 2 ? sess[i] : 0, i < 2 ? NULL : "s", prompts[i + 4], &p);
	}
	t_multi_drive(&m, 0);
	for (i = 0; i < T_MAXST; i++) {
		const char *why = t_gen_diff(&m.g[i], &alone[i]);

		if (why)
			fail_msg("stream %zu of one client: %s", i, why);
		assert_int_equal(m.g[i].r.session, i < 2 ? sess[i] : 0);
		cc_gen_result_free(&alone[i]);
	}
	t_multi_free(&m);
	assert_int_equal(cc_session_free(c, sess[0]), 0);
	assert_int_equal(cc_session_free(c, sess[1]), 0);
}

/*
 * Prompt prefixes shared between sessions (ccd's share_prefixes, on by default): 4 sessions of one client stream at
 * once a long prompt, the same again, it with more after it, and its first half with another ending. Each output is
 * its prompt's alone (one-shot generations first, which keep no cache to share), token for token; of the first three
 * (which share the whole prompt) one at most computes it (cached_tokens 0): the others take its rows (they waited for
 * it, or copied what it had done), whatever order the scheduler takes them in. Then, while those sessions live, a one-shot generation of the prompt takes all of it but
 * its last token from them, and still gives its answer alone; and one of the prompt followed by the first session's
 * answer takes only the prompt's rows (the answer's were decoded one token at a time: not what a prompt computes).
 */
static void test_shared_prefixes(void **state)
{
	const char *base = prompts[4];
	char longer[1024], other[1024], *cont;
	const char *ps[T_MAXST];
	struct cc_gen_result alone[T_MAXST], r, cont_alone;
	struct cc_gen_params p;
	struct t_multi m;
	uint64_t sess[T_MAXST];
	size_t i, computed, half = strlen(base) / 2;

	(void)state;
	while (base[half] != ' ')
		half++;
	snprintf(longer, sizeof(longer), "%s that his dog", base);
	snprintf(other, sizeof(other), "%.*s the moon was up", (int)half, base);
	ps[0] = base;
	ps[1] = base;
	ps[2] = longer;
	ps[3] = other;
	t_params(&p, T_STORIES_TOKENS, 1);
	for (i = 0; i < T_MAXST; i++) {
		t_alone(c, "s", ps[i], &p, &alone[i]);
		assert_int_equal(alone[i].cached_tokens, 0);
	}
	assert_true(asprintf(&cont, "%s%s", base, alone[0].text) > 0);
	t_alone(c, "s", cont, &p, &cont_alone);
	memset(&m, 0, sizeof(m));
	m.cl = c;
	for (i = 0; i < T_MAXST; i++) {
		assert_int_equal(cc_session_new(c, "s", 0, &sess[i]), 0);
		t_multi_start(&m, i, sess[i], NULL, ps[i], &p);
	}
	t_multi_drive(&m, 0);
	for (i = 0; i < T_MAXST; i++) {
		const char *why = t_gen_diff(&m.g[i], &alone[i]);

		if (why)
			fail_msg("stream %zu (a shared prefix): %s", i, why);
		print_message("stream %zu: %u prompt tokens, %u of them cached\n", i, m.g[i].r.prompt_tokens,
		              m.g[i].r.cached_tokens);
	}
	/* the scheduler may take the four in any order: one of the three that share the whole prompt computes it */
	for (i = 0, computed = 0; i < 3; i++) {
		computed += m.g[i].r.cached_tokens == 0;
		assert_true(m.g[i].r.cached_tokens < m.g[i].r.prompt_tokens);
	}
	assert_true(computed <= 1);
	t_multi_free(&m);
	if (cc_generate(c, "s", base, &p, &r))
		fail_msg("generate: %s", cc_last_error(c));
	assert_int_equal(r.cached_tokens, r.prompt_tokens - 1);
	assert_int_equal(r.ntokens, alone[0].ntokens);
	assert_memory_equal(r.tokens, alone[0].tokens, r.ntokens * sizeof(int32_t));
	cc_gen_result_free(&r);
	if (cc_generate(c, "s", cont, &p, &r))
		fail_msg("generate: %s", cc_last_error(c));
	print_message("the prompt and the first answer: %u prompt tokens, %u of them cached\n", r.prompt_tokens,
	              r.cached_tokens);
	assert_int_equal(r.cached_tokens, alone[0].prompt_tokens);
	assert_int_equal(r.ntokens, cont_alone.ntokens);
	assert_memory_equal(r.tokens, cont_alone.tokens, r.ntokens * sizeof(int32_t));
	cc_gen_result_free(&r);
	cc_gen_result_free(&cont_alone);
	free(cont);
	for (i = 0; i < T_MAXST; i++) {
		assert_int_equal(cc_session_free(c, sess[i]), 0);
		cc_gen_result_free(&alone[i]);
	}
}

/* ---- 2. a client killed mid-stream ------------------------------------------------------------------------- */

/*
 * --hog EP MODEL READY_FD: stream long turns on a session, one after another, for ever (a new session when the
 * context is full); once the first piece came, write "R <session>\n" to READY_FD. Only SIGKILL ends it.
 */
static int t_child_hog(char **argv)
{
	const char *ep = argv[0], *model = argv[1];
	int ready = atoi(argv[2]), told = 0, fails = 0, e, r;
	struct cc_gen_params p;
	uint64_t sid;
	cc_client *cl;

	t_watchdog(240, "a --hog client process (the test should have killed it)");
	e = cc_connect(ep, &cl);
	if (e) {
		fprintf(stderr, "hog: cc_connect: %s\n", cc_strerror(e));
		return 3;
	}
	e = cc_session_new(cl, model, 0, &sid);
	if (e) {
		fprintf(stderr, "hog: cc_session_new: %s (%s)\n", cc_strerror(e), cc_last_error(cl));
		return 3;
	}
	t_params(&p, 200, 1);
	for (;;) {
		cc_stream *st;
		const char *text;
		size_t len;

		e = cc_stream_start(cl, sid, NULL, told ? " And then" : prompts[0], &p, &st);
		if (e)
			return 4;
		while ((r = cc_stream_next(st, -1, &text, &len)) == 1)
			if (!told) {
				dprintf(ready, "R %llu\n", (unsigned long long)sid);
				told = 1;
			}
		cc_stream_free(st);
		if (r == 0) {
			fails = 0;
			continue;
		}
		/* the context is full (or the turn failed): go on with a new session */
		if (!told || ++fails > 3) {
			fprintf(stderr, "hog: turn: %s (%s)\n", cc_strerror(r), cc_last_error(cl));
			return 5;
		}
		cc_session_free(cl, sid);
		if (cc_session_new(cl, model, 0, &sid))
			return 6;
	}
}

static void test_killed_client_frees_session(void **state)
{
	struct cc_gen_params p;
	struct cc_gen_result alone;
	int rp[2], st, listed, r, done = 0;
	char buf[64], rdfd[16];
	unsigned long long sid = 0;
	struct t_gen g;
	cc_stream *s;
	const char *text;
	size_t len, got;
	double tkill = 0, tgone = -1, end;
	unsigned after_kill = 0;
	pid_t kid;

	(void)state;
	t_params(&p, 1000, 1);
	t_alone(c, "s", prompts[2], &p, &alone);
	assert_int_equal(pipe(rp), 0);
	snprintf(rdfd, sizeof(rdfd), "%d", rp[1]);
	fflush(stdout);
	fflush(stderr);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		close(rp[0]);
		execl("/proc/self/exe", "test_ccd_serve", "--hog", d.endpoint, "s", rdfd, (char *)NULL);
		_exit(127);
	}
	close(rp[1]);
	memset(buf, 0, sizeof(buf));
	got = t_read_bytes(rp[0], buf, 4, 60);
	close(rp[0]);
	if (got < 4 || sscanf(buf, "R %llu", &sid) != 1) {
		kill(kid, SIGKILL);
		waitpid(kid, &st, 0);
		fail_msg("the client to be killed did not start streaming (wait status 0x%x)", st);
	}
	listed = (int)t_sessions_matching(&raw, kid, 0, NULL);
	if (listed < 1) {
		kill(kid, SIGKILL);
		waitpid(kid, &st, 0);
		fail_msg("the streaming client's session (pid %d) is not listed", (int)kid);
	}
	if (t_admin_sessions_of(c, kid) < 1 || (t_ccctl_path() && t_ccctl_sessions_of(&d, kid) < 1)) {
		kill(kid, SIGKILL);
		waitpid(kid, &st, 0);
		fail_msg("cc_admin_json(sessions) or `ccctl sessions` does not list the session of pid %d", (int)kid);
	}
	/* another stream, then the kill once it streams */
	memset(&g, 0, sizeof(g));
	assert_int_equal(cc_stream_start(c, 0, "s", prompts[2], &p, &s), 0);
	r = cc_stream_next(s, (int)(T_STEP_MS * t_scale()), &text, &len);
	if (r == 1)
		t_gen_piece(&g, text, len);
	else
		t_gen_end(&g, c, s, r), done = 1;
	assert_int_equal(kill(kid, SIGKILL), 0);
	tkill = t_now();
	assert_int_equal(waitpid(kid, &st, 0), kid);
	end = tkill + T_RECLAIM_S * t_scale();
	/* read the other stream while the dead one's session goes */
	while (!done || tgone < 0) {
		if (!done) {
			r = cc_stream_next(s, 10, &text, &len);
			if (r == 1) {
				t_gen_piece(&g, text, len);
				after_kill++;
			} else if (r != -ETIMEDOUT) {
				t_gen_end(&g, c, s, r);
				done = 1;
			}
		} else {
			t_msleep(10);
		}
		if (tgone < 0 && t_sessions_matching(&raw, kid, 0, NULL) == 0)
			tgone = t_now() - tkill;
		if (tgone < 0 && t_now() > end)
			break;
	}
	if (!done) { /* the dead client's session stayed: finish the stream anyway */
		while ((r = cc_stream_next(s, (int)(T_STEP_MS * t_scale()), &text, &len)) == 1)
			t_gen_piece(&g, text, len);
		t_gen_end(&g, c, s, r);
	}
	cc_stream_free(s);
	print_message("killed client's session %llu gone after %.2f s; the other stream got %u pieces after the kill\n",
	              sid, tgone, after_kill);
	if (tgone < 0)
		fail_msg("the killed client's session (pid %d) is still listed %.1f s after SIGKILL", (int)kid,
		         t_now() - tkill);
	if (t_admin_sessions_of(c, kid))
		fail_msg("cc_admin_json(sessions) still lists the killed client's session");
	if (t_ccctl_path() && t_ccctl_sessions_of(&d, kid))
		fail_msg("`ccctl sessions` still lists the killed client's session");
	t_assert_gen(&g, &alone, "the stream that went on while another client was killed");
	t_gen_free(&g);
	cc_gen_result_free(&alone);
	t_assert_serving();
}

/* ---- 3. cancel -------------------------------------------------------------------------------------------- */

/* Raw: after the cancel's reply, at most the step then running comes; exactly one final reply, -ECANCELED. */
static void t_cancel_raw(void)
{
	unsigned before = 0, after = 0, tok_after = 0, finals = 0;
	int cancel_seen = 0, final_code = 1;
	char final_err[256] = "", why[256];
	Cc__SessionReply sr;
	uint64_t gid, cid = 0, pid;
	Cc__Reply *rep;

	if (t_raw_session_new(&raw, "s", 0, &sr, why, sizeof(why)))
		fail_msg("raw session_new: %s", why);
	gid = t_raw_gen_send(&raw, sr.session, NULL, prompts[0], T_LONG_TOKENS, 1, 1, NULL);
	while (!cancel_seen || !finals) {
		rep = t_raw_next(&raw);
		if (rep->id == gid && rep->code == 0 && rep->body_case == CC__REPLY__BODY_PIECE) {
			if (cancel_seen) {
				after++;
				tok_after += (unsigned)rep->piece->n_tokens;
			} else {
				before++;
			}
			if (finals)
				fail_msg("a piece came after the generation's final reply");
		} else if (rep->id == gid) {
			finals++;
			final_code = rep->code;
			snprintf(final_err, sizeof(final_err), "%s", rep->error ? rep->error : "");
			if (!cid)
				fail_msg("the generation of %d tokens ended (code %d) before it was cancelled",
				         T_LONG_TOKENS, rep->code);
		} else if (cid && rep->id == cid) {
			if (rep->code)
				fail_msg("cancel of a running generation answered %d (%s)", rep->code,
				         rep->error ? rep->error : "");
			cancel_seen = 1;
		} else {
			fail_msg("a reply to request %llu, none was sent", (unsigned long long)rep->id);
		}
		cc__reply__free_unpacked(rep, NULL);
		if (!cid && before >= 3)
			cid = t_raw_cancel_send(&raw, gid);
	}
	print_message("raw cancel: %u pieces before the cancel's reply, %u pieces (%u tokens) after; final %d '%s'\n",
	              before, after, tok_after, final_code, final_err);
	assert_int_equal(final_code, -ECANCELED);
	if (!strstr(final_err, "cancel"))
		fail_msg("the cancelled generation's error does not say so: '%s'", final_err);
	if (tok_after > T_CANCEL_TOKENS)
		fail_msg("%u tokens (%u pieces) came after the cancel's reply: more than one step", tok_after, after);
	/* no reply of the generation is left: a ping's reply comes next */
	{
		Cc__Request req = CC__REQUEST__INIT;
		Cc__Empty e = CC__EMPTY__INIT;

		req.id = pid = raw.next_id++;
		req.body_case = CC__REQUEST__BODY_PING;
		req.ping = &e;
		assert_int_equal(t_raw_send(&raw, &req), 0);
		rep = t_raw_next(&raw);
		if (rep->id != pid)
			fail_msg("after the final reply, another reply to request %llu came",
			         (unsigned long long)rep->id);
		cc__reply__free_unpacked(rep, NULL);
	}
	/* the session takes a new turn */
	gid = t_raw_gen_send(&raw, sr.session, NULL, " The end", 8, 0, 1, NULL);
	rep = t_raw_next(&raw);
	assert_int_equal(rep->id, gid);
	if (rep->code || rep->body_case != CC__REPLY__BODY_GENERATE)
		fail_msg("a turn after the cancel: code %d (%s)", rep->code, rep->error ? rep->error : "");
	assert_int_equal(rep->generate->n_tokens, 8);
	assert_int_equal(rep->generate->session, sr.session);
	cc__reply__free_unpacked(rep, NULL);
	assert_int_equal(t_raw_session_free(&raw, sr.session), 0);
}

/* libcc: cc_stream_cancel, then a callback asking to stop, on one session; then it generates normally. */
static void t_cancel_libcc(void)
{
	struct cc_gen_params p;
	struct cc_gen_result r;
	unsigned left = 2, n = 0, after = 0;
	const char *text;
	size_t len;
	uint64_t sid;
	cc_stream *st;
	int e;

	assert_int_equal(cc_session_new(c, "s", 0, &sid), 0);
	t_params(&p, T_LONG_TOKENS, 1);
	assert_int_equal(cc_stream_start(c, sid, NULL, prompts[1], &p, &st), 0);
	while ((e = cc_stream_next(st, (int)(T_STEP_MS * t_scale()), &text, &len)) == 1 && ++n < 3)
		;
	if (e != 1)
		fail_msg("the stream ended (%d: %s) before it was cancelled", e, cc_last_error(c));
	assert_int_equal(cc_stream_cancel(st), 0);
	while ((e = cc_stream_next(st, (int)(T_STEP_MS * t_scale()), &text, &len)) == 1)
		after++;
	print_message("libcc cancel: %u pieces read after cc_stream_cancel returned\n", after);
	if (e != -ECANCELED)
		fail_msg("a cancelled stream ended with %d (%s), not -ECANCELED", e, cc_last_error(c));
	if (!strstr(cc_last_error(c), "cancel"))
		fail_msg("the cancelled stream's error does not say so: '%s'", cc_last_error(c));
	assert_int_not_equal(cc_stream_result(st, &r), 0);
	cc_stream_free(st);
	/* a callback returning non-zero cancels */
	e = cc_generate_stream(c, sid, NULL, " and", &p, t_piece_cancel_after, &left, &r);
	if (e != -ECANCELED)
		fail_msg("cc_generate_stream with a callback asking to stop: %d (%s)", e, cc_last_error(c));
	/* the session still generates */
	t_params(&p, 8, 1);
	n = 0;
	e = cc_generate_stream(c, sid, NULL, " Then", &p, t_piece_count, &n, &r);
	if (e)
		fail_msg("a turn after two cancels: %s (%s)", cc_strerror(e), cc_last_error(c));
	assert_int_equal(r.ntokens, 8);
	assert_int_equal(r.session, sid);
	assert_true(n >= 1);
	cc_gen_result_free(&r);
	assert_int_equal(cc_session_free(c, sid), 0);
}

static void test_cancel_stops_within_a_step(void **state)
{
	(void)state;
	t_cancel_raw();
	t_cancel_libcc();
	t_assert_serving();
}

/* ---- 4. a forced unload mid-stream ------------------------------------------------------------------------- */

/* Every stream of m ended with -ECANCELED and an error that names the unload. */
static void t_assert_unloaded(struct t_multi *m, const char *how)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		if (m->g[i].err == 0)
			fail_msg("%s: stream %zu finished (%zu tokens) instead of being cancelled", how, i,
			         m->g[i].r.ntokens);
		if (m->g[i].err != -ECANCELED)
			fail_msg("%s: stream %zu ended with %d (%s), not -ECANCELED", how, i, m->g[i].err,
			         m->g[i].errtext);
		if (!strstr(m->g[i].errtext, "unload"))
			fail_msg("%s: stream %zu's error does not name the unload: '%s'", how, i, m->g[i].errtext);
		if (m->g[i].badpieces)
			fail_msg("%s: stream %zu had bad pieces", how, i);
	}
}

static void t_reload_and_check(const struct cc_gen_result *alone, cc_client *sc)
{
	struct cc_gen_params p;
	struct t_gen g;

	if (cc_model_load(c, "u", stories, NULL, NULL, NULL, NULL, NULL))
		fail_msg("load again after the forced unload: %s", cc_last_error(c));
	t_params(&p, 32, 0);
	t_stream_run(sc, 0, "u", prompts[0], &p, &g);
	t_assert_gen(&g, alone, "a stream after the model was loaded again");
	t_gen_free(&g);
}

static void test_unload_force_mid_stream(void **state)
{
	struct cc_gen_params p;
	struct cc_gen_result alone;
	struct t_multi m;
	uint64_t sess[2];
	char out[4096];
	cc_client *sc;
	int e;

	(void)state;
	if (cc_model_load(c, "u", stories, NULL, NULL, NULL, NULL, NULL))
		fail_msg("load: %s", cc_last_error(c));
	t_params(&p, 32, 0);
	t_alone(c, "u", prompts[0], &p, &alone);
	e = t_ccd_connect(&d, &sc);
	if (e)
		fail_msg("connect: %s", cc_strerror(e));
	memset(&m, 0, sizeof(m));
	m.cl = sc;
	assert_int_equal(cc_session_new(sc, "u", 0, &sess[0]), 0);
	assert_int_equal(cc_session_new(sc, "u", 0, &sess[1]), 0);
	t_params(&p, T_LONG_TOKENS, 1);
	t_multi_start(&m, 0, sess[0], NULL, prompts[1], &p);
	t_multi_start(&m, 1, sess[1], NULL, prompts[2], &p);
	t_multi_start(&m, 2, 0, "u", prompts[3], &p);
	t_multi_drive(&m, 1);
	e = cc_model_unload(c, "u", 1);
	if (e)
		fail_msg("cc_model_unload(force) with 3 streams running: %s (%s)", cc_strerror(e), cc_last_error(c));
	t_multi_drive(&m, 0);
	print_message("forced unload: the streams ended with '%s' after %u, %u, %u pieces\n", m.g[0].errtext,
	              m.g[0].npieces, m.g[1].npieces, m.g[2].npieces);
	t_assert_unloaded(&m, "cc_model_unload(force)");
	t_multi_free(&m);
	/* the daemon serves on; no session of the model is left, and its sessions cannot be used */
	t_assert_serving();
	assert_int_equal(cc_ping(sc), 0);
	{
		Cc__Reply *rep = t_sessions(&raw);
		size_t i;

		for (i = 0; i < rep->sessions->n_sessions; i++)
			if (!strcmp(rep->sessions->sessions[i]->model, "u"))
				fail_msg("session %llu of the unloaded model is still listed",
				         (unsigned long long)rep->sessions->sessions[i]->id);
		cc__reply__free_unpacked(rep, NULL);
	}
	t_reload_and_check(&alone, sc);
	{
		struct cc_gen_result r;
		unsigned n = 0;

		t_params(&p, 4, 1);
		e = cc_generate_stream(sc, sess[0], NULL, "Hi", &p, t_piece_count, &n, &r);
		if (e == 0) {
			cc_gen_result_free(&r);
			fail_msg("a session of the unloaded model took a turn on the model loaded again");
		}
		print_message("a turn on a session of the unloaded model: %s (%s)\n", cc_strerror(e),
		              cc_last_error(sc));
	}

	/* the same with `ccctl unload --force` */
	if (t_ccctl_path()) {
		memset(&m, 0, sizeof(m));
		m.cl = sc;
		t_params(&p, T_LONG_TOKENS, 1);
		t_multi_start(&m, 0, 0, "u", prompts[4], &p);
		t_multi_start(&m, 1, 0, "u", prompts[5], &p);
		t_multi_drive(&m, 1);
		e = t_ccctl(&d, out, sizeof(out), "unload", "u", "--force", (char *)NULL);
		if (e)
			fail_msg("ccctl unload u --force exited with %d: %s", e, out);
		t_multi_drive(&m, 0);
		t_assert_unloaded(&m, "ccctl unload --force");
		t_multi_free(&m);
		t_assert_serving();
		t_reload_and_check(&alone, sc);
	} else {
		print_message("no ccctl: `ccctl unload --force` not tried\n");
	}
	cc_close(sc);
	assert_int_equal(cc_model_unload(c, "u", 0), 0);
	cc_gen_result_free(&alone);
}

/* SIGTERM with streams running: each ends with an error that says why, and ccd exits cleanly. */
static void test_shutdown_mid_stream(void **state)
{
	struct cc_gen_params p;
	struct t_ccd d2;
	struct t_raw r2;
	struct t_multi m;
	cc_client *c2;
	uint64_t sid;
	size_t i;

	(void)state;
	t_daemon_up(&d2, NULL, &c2, &r2);
	t_raw_close(&r2);
	memset(&m, 0, sizeof(m));
	m.cl = c2;
	assert_int_equal(cc_session_new(c2, "s", 0, &sid), 0);
	t_params(&p, T_LONG_TOKENS, 1);
	t_multi_start(&m, 0, sid, NULL, prompts[0], &p);
	t_multi_start(&m, 1, 0, "s", prompts[1], &p);
	t_multi_drive(&m, 1);
	assert_int_equal(kill(d2.pid, SIGTERM), 0);
	t_multi_drive(&m, 0);
	for (i = 0; i < m.n; i++) {
		print_message("stream %zu at shutdown: %d (%s) after %u pieces\n", i, m.g[i].err, m.g[i].errtext,
		              m.g[i].npieces);
		if (m.g[i].err == 0)
			fail_msg("stream %zu finished instead of being cancelled by the shutdown", i);
		if (m.g[i].err != -ECANCELED)
			fail_msg("stream %zu ended with %d (%s) at shutdown, not -ECANCELED", i, m.g[i].err,
			         m.g[i].errtext);
		if (!strstr(m.g[i].errtext, "shutting down"))
			fail_msg("stream %zu's error does not say that ccd is shutting down: '%s'", i, m.g[i].errtext);
	}
	t_multi_free(&m);
	cc_close(c2);
	assert_int_equal(t_ccd_stop(&d2), 0);
}

/* ---- 5. sessions ------------------------------------------------------------------------------------------ */

static size_t t_ntok(const char *text, int add_bos, int32_t **ids)
{
	size_t n = 0;
	int e = cc_tokenize(c, "s", text, add_bos, 0, ids, &n);

	if (e)
		fail_msg("tokenize '%s': %s", text, cc_last_error(c));
	return n;
}

/*
 * Two turns and a third: each processes only its own tokens (and the one token the last turn sampled but did not
 * evaluate), n_past adds up, turn 1 equals a one-shot generation, and turn 2 starts where the whole history
 * evaluated from scratch says it should.
 */
static void test_session_turns(void **state)
{
	static const char *const A = "Once upon a time, there was a little girl",
	                         *B = " She had a big red ball. The ball", *C = " One day";
	struct cc_gen_params p;
	struct cc_gen_result r0, r3;
	struct t_gen g1, g2;
	int32_t *ta = NULL, *tb = NULL, *hist;
	size_t na, nb, nh, pend2;
	Cc__SessionInfo si;
	unsigned n = 0;
	uint64_t sid;
	int e;

	(void)state;
	na = t_ntok(A, 1, &ta);
	nb = t_ntok(B, 0, &tb);
	assert_int_equal(cc_session_new(c, "s", 0, &sid), 0);
	assert_true(sid != 0);
	assert_int_equal(t_sessions_matching(&raw, getpid(), sid, &si), 1);
	assert_int_equal(si.n_past, 0);
	t_params(&p, 16, 1);
	t_stream_run(c, sid, NULL, A, &p, &g1);
	t_alone(c, "s", A, &p, &r0);
	t_assert_gen(&g1, &r0, "turn 1 of a session against the same prompt one-shot");
	assert_int_equal(g1.r.session, sid);
	assert_int_equal(r0.session, 0);
	if (g1.r.new_tokens != na)
		fail_msg("turn 1 processed %u tokens, its prompt has %zu", g1.r.new_tokens, na);
	assert_int_equal(g1.r.prompt_tokens, na);
	/* the last sampled token may wait for the next turn to be evaluated */
	if (g1.r.n_past != na + g1.r.ntokens && g1.r.n_past + 1 != na + g1.r.ntokens)
		fail_msg("after turn 1, n_past %u: prompt %zu + %zu generated", g1.r.n_past, na, g1.r.ntokens);
	print_message("turn 1: new_tokens %u, %zu generated, n_past %u\n", g1.r.new_tokens, g1.r.ntokens, g1.r.n_past);

	t_stream_run(c, sid, NULL, B, &p, &g2);
	t_assert_gen(&g2, NULL, "turn 2");
	assert_int_equal(g2.r.session, sid);
	pend2 = na + g1.r.ntokens - g1.r.n_past;
	print_message("turn 2: new_tokens %u (prompt %zu + %zu pending), %zu generated, n_past %u\n", g2.r.new_tokens,
	              nb, pend2, g2.r.ntokens, g2.r.n_past);
	if (g2.r.new_tokens != nb + pend2)
		fail_msg("turn 2 processed %u tokens, its prompt has %zu (+ %zu pending): history processed again?",
		         g2.r.new_tokens, nb, pend2);
	if (g2.r.n_past != g1.r.n_past + g2.r.new_tokens + g2.r.ntokens &&
	    g2.r.n_past + 1 != g1.r.n_past + g2.r.new_tokens + g2.r.ntokens)
		fail_msg("after turn 2, n_past %u: %u + %u new + %zu generated", g2.r.n_past, g1.r.n_past,
		         g2.r.new_tokens, g2.r.ntokens);
	/* the history is right: the whole text from scratch predicts turn 2's first token */
	nh = na + g1.r.ntokens + nb;
	hist = malloc(nh * sizeof(int32_t));
	assert_non_null(hist);
	memcpy(hist, ta, na * sizeof(int32_t));
	memcpy(hist + na, g1.r.tokens, g1.r.ntokens * sizeof(int32_t));
	memcpy(hist + na + g1.r.ntokens, tb, nb * sizeof(int32_t));
	{
		int32_t top[2];
		float tl[2];

		if (cc_logits(c, "s", hist, nh, NULL, 2, top, tl, NULL))
			fail_msg("logits of the history: %s", cc_last_error(c));
		if (tl[0] - tl[1] > 1e-3f * fmaxf(1.0f, fabsf(tl[0])) && top[0] != g2.r.tokens[0])
			fail_msg("turn 2 began with token %d; the whole history evaluated from scratch gives %d",
			         g2.r.tokens[0], top[0]);
		else if (top[0] != g2.r.tokens[0])
			print_message("turn 2's first token %d vs %d from scratch: a near tie (%g, %g)\n",
			              g2.r.tokens[0], top[0], (double)tl[0], (double)tl[1]);
	}
	free(hist);
	/* a third turn through the callback form; the list shows the session as it is */
	e = cc_generate_stream(c, sid, NULL, C, &p, t_piece_count, &n, &r3);
	if (e)
		fail_msg("turn 3: %s (%s)", cc_strerror(e), cc_last_error(c));
	assert_true(n >= 1);
	assert_true(r3.n_past > g2.r.n_past);
	assert_int_equal(t_sessions_matching(&raw, getpid(), sid, &si), 1);
	assert_int_equal(si.n_past, r3.n_past);
	assert_int_equal(si.gen_tokens, g1.r.ntokens + g2.r.ntokens + r3.ntokens);
	assert_false(si.oneshot);
	assert_true(si.kv_bytes > 0);
	cc_gen_result_free(&r3);
	cc_gen_result_free(&r0);
	t_gen_free(&g1);
	t_gen_free(&g2);
	free(ta);
	free(tb);
	assert_int_equal(cc_session_free(c, sid), 0);
	assert_int_equal(cc_session_free(c, sid), -ENOENT);
	assert_int_equal(t_sessions_matching(&raw, 0, sid, NULL), 0);

	/* a full context: the generation stops with "context", the next turn cannot go on */
	assert_int_equal(cc_session_new(c, "s", 64, &sid), 0);
	t_params(&p, 100, 1);
	t_stream_run(c, sid, NULL, A, &p, &g1);
	t_assert_gen(&g1, NULL, "a turn past a 64-token context");
	assert_string_equal(g1.r.stop_reason, "context");
	assert_true(g1.r.n_past <= 64);
	t_params(&p, 8, 1);
	t_stream_run(c, sid, NULL, B, &p, &g2);
	print_message("a turn on a full session: %d (%s) %s\n", g2.err, g2.errtext, g2.err ? "" : g2.r.stop_reason);
	if (!(g2.err == -ENOSPC || (g2.err == 0 && !strcmp(g2.r.stop_reason, "context"))))
		fail_msg("a turn on a full session: %d (%s), not -ENOSPC or a stop for the context", g2.err,
		         g2.errtext);
	if (g2.err == -ENOSPC && !strstr(g2.errtext, "context"))
		fail_msg("a full session's error does not name the context: '%s'", g2.errtext);
	t_gen_free(&g1);
	t_gen_free(&g2);
	assert_int_equal(cc_session_free(c, sid), 0);
	t_assert_serving();
}

/* A streamed generation with a stop string: its pieces never hold part of it, and make the cut text. */
static void test_stream_stop_string(void **state)
{
	struct cc_gen_params p;
	struct cc_gen_result full;
	struct t_gen g;
	const char *stop[1];
	char cut[16], *want;
	size_t at, i;

	(void)state;
	t_params(&p, 64, 1);
	t_alone(c, "s", prompts[3], &p, &full);
	/* a stop string from the middle of the text, at a character boundary */
	at = strlen(full.text) / 2;
	while (at && ((unsigned char)full.text[at] & 0xc0) == 0x80)
		at--;
	if (strlen(full.text) < 16) {
		cc_gen_result_free(&full);
		fail_msg("the alone text is too short for a stop string: '%s'", full.text);
	}
	snprintf(cut, 6, "%s", full.text + at);
	while (strlen(cut) && ((unsigned char)cut[strlen(cut) - 1] & 0xc0) >= 0x80)
		cut[strlen(cut) - 1] = 0;
	stop[0] = cut;
	p.stop = stop;
	p.nstop = 1;
	t_stream_run(c, 0, "s", prompts[3], &p, &g);
	t_assert_gen(&g, NULL, "a stream with a stop string");
	want = strndup(full.text, (size_t)(strstr(full.text, cut) - full.text));
	assert_non_null(want);
	print_message("stop string '%s': '%s'\n", cut, g.r.text);
	assert_string_equal(g.r.stop_reason, "stop");
	assert_string_equal(g.r.text, want);
	for (i = 0; g.cat && i < g.catlen; i++)
		assert_false(strncmp(g.cat + i, cut, strlen(cut)) == 0);
	/* the same on the raw protocol: pieces in order, their tokens and texts make the final reply's */
	{
		int32_t toks[64];
		size_t ntoks = 0, catlen = 0;
		char cat[4096];
		unsigned idx = 0;
		uint64_t gid = t_raw_gen_send(&raw, 0, "s", prompts[3], 64, 1, 1, cut);
		Cc__Reply *rep;

		for (;;) {
			rep = t_raw_next(&raw);
			assert_int_equal(rep->id, gid);
			if (rep->body_case != CC__REPLY__BODY_PIECE)
				break;
			assert_int_equal(rep->code, 0);
			assert_int_equal(rep->piece->index, idx++);
			assert_true(ntoks + rep->piece->n_tokens <= 64);
			if (rep->piece->n_tokens) /* protobuf-c leaves empty arrays NULL */
				memcpy(toks + ntoks, rep->piece->tokens, rep->piece->n_tokens * sizeof(int32_t));
			ntoks += rep->piece->n_tokens;
			assert_true(catlen + rep->piece->text.len < sizeof(cat));
			if (rep->piece->text.len) {
				assert_true(t_utf8_whole((const char *)rep->piece->text.data, rep->piece->text.len));
				memcpy(cat + catlen, rep->piece->text.data, rep->piece->text.len);
			}
			catlen += rep->piece->text.len;
			cc__reply__free_unpacked(rep, NULL);
		}
		cat[catlen] = 0;
		if (rep->code || rep->body_case != CC__REPLY__BODY_GENERATE)
			fail_msg("raw stream with a stop string: code %d (%s)", rep->code,
			         rep->error ? rep->error : "");
		assert_string_equal(rep->generate->text, want);
		assert_string_equal(cat, want);
		assert_int_equal(rep->generate->n_tokens, ntoks);
		assert_memory_equal(rep->generate->tokens, toks, ntoks * sizeof(int32_t));
		assert_memory_equal(rep->generate->tokens, full.tokens, ntoks * sizeof(int32_t));
		cc__reply__free_unpacked(rep, NULL);
	}
	free(want);
	t_gen_free(&g);
	cc_gen_result_free(&full);
}

/* Limits: sessions per client, the KV budget, idle expiry; each with a daemon of its own. */
static void test_session_limits(void **state)
{
	static const char *const max2[] = {"-o", "max_sessions_per_client=2", NULL};
	static const char *const idle[] = {"-o", "session_idle_s=1", "-o", "reap_interval_ms=200", NULL};
	char budget_arg[64], why[256];
	const char *kvargs[] = {"-o", budget_arg, NULL};
	struct cc_gen_params p;
	struct cc_gen_result r;
	Cc__SessionReply sr;
	Cc__SessionInfo si;
	struct t_ccd d2;
	struct t_raw r2;
	cc_client *c2, *c3;
	uint64_t s[3], kvb, budget;
	unsigned n = 0;
	double end;
	int e;

	(void)state;
	/* max_sessions_per_client=2: the third is refused, naming the limit; another client still gets one */
	t_daemon_up(&d2, max2, &c2, &r2);
	assert_int_equal(cc_session_new(c2, "s", 0, &s[0]), 0);
	assert_int_equal(cc_session_new(c2, "s", 0, &s[1]), 0);
	e = cc_session_new(c2, "s", 0, &s[2]);
	assert_int_equal(e, -ENOSPC);
	if (!strstr(cc_last_error(c2), "max_sessions_per_client"))
		fail_msg("the third session's error does not name max_sessions_per_client: '%s'", cc_last_error(c2));
	t_params(&p, 4, 1);
	e = cc_generate(c2, "s", "Once", &p, &r);
	print_message("a one-shot generation with max_sessions_per_client sessions open: %s\n",
	              e ? cc_last_error(c2) : "done");
	if (!e)
		cc_gen_result_free(&r);
	e = t_ccd_connect(&d2, &c3);
	if (e)
		fail_msg("connect: %s", cc_strerror(e));
	assert_int_equal(cc_session_new(c3, "s", 0, &s[2]), 0);
	cc_close(c3);
	assert_int_equal(cc_session_free(c2, s[0]), 0);
	assert_int_equal(cc_session_new(c2, "s", 0, &s[0]), 0);
	t_daemon_down(&d2, &c2, &r2);

	/* kv_budget: one 1024-position session fits, a second does not (sized from what one costs) */
	if (t_raw_session_new(&raw, "s", 1024, &sr, why, sizeof(why)))
		fail_msg("session_new n_ctx 1024: %s", why);
	assert_int_equal(sr.n_ctx, 1024);
	kvb = sr.kv_bytes;
	assert_true(kvb > 0);
	assert_int_equal(t_raw_session_free(&raw, sr.session), 0);
	budget = kvb * 3 / 2 > (1u << 20) ? kvb * 3 / 2 : 1u << 20;
	if (2 * kvb <= budget)
		fail_msg("a 1024-position session of stories260K takes %llu bytes: two fit in the smallest kv_budget",
		         (unsigned long long)kvb);
	snprintf(budget_arg, sizeof(budget_arg), "kv_budget=%llu", (unsigned long long)budget);
	t_daemon_up(&d2, kvargs, &c2, &r2);
	assert_int_equal(cc_session_new(c2, "s", 1024, &s[0]), 0);
	e = cc_session_new(c2, "s", 1024, &s[1]);
	assert_int_equal(e, -ENOSPC);
	if (!strstr(cc_last_error(c2), "kv_budget"))
		fail_msg("the session past the KV budget: the error does not name kv_budget: '%s'", cc_last_error(c2));
	{
		Cc__Reply *rep = t_sessions(&r2);

		assert_int_equal(rep->sessions->kv_budget, budget);
		assert_int_equal(rep->sessions->kv_bytes, kvb);
		cc__reply__free_unpacked(rep, NULL);
	}
	/* a freed session's KV cache is given back at once: the next session_new fits */
	assert_int_equal(cc_session_free(c2, s[0]), 0);
	e = cc_session_new(c2, "s", 1024, &s[1]);
	if (e) {
		char first[256];

		snprintf(first, sizeof(first), "%s", cc_last_error(c2));
		end = t_now() + T_RECLAIM_S * t_scale();
		while ((e = cc_session_new(c2, "s", 1024, &s[1])) == -ENOSPC && t_now() < end)
			t_msleep(20);
		fail_msg("session_new right after cc_session_free of the only session: -ENOSPC (%s); %s", first,
		         e ? "still refused seconds later: the budget is never given back"
		           : "it fits a moment later: the free gives the budget back late");
	}
	t_daemon_down(&d2, &c2, &r2);

	/* session_idle_s=1: an idle session leaves the list within seconds, and is then unknown */
	t_daemon_up(&d2, idle, &c2, &r2);
	assert_int_equal(cc_session_new(c2, "s", 0, &s[0]), 0);
	t_params(&p, 4, 1);
	e = cc_generate_stream(c2, s[0], NULL, "Once", &p, t_piece_count, &n, &r);
	if (e)
		fail_msg("a turn: %s", cc_last_error(c2));
	cc_gen_result_free(&r);
	end = t_now() + (1 + T_RECLAIM_S) * t_scale();
	while (t_sessions_matching(&r2, 0, s[0], &si) && t_now() < end)
		t_msleep(50);
	if (t_sessions_matching(&r2, 0, s[0], &si))
		fail_msg("an idle session is still listed (idle_s %.1f) with session_idle_s=1", si.idle_s);
	e = cc_generate_stream(c2, s[0], NULL, " again", &p, t_piece_count, &n, &r);
	if (e == 0)
		cc_gen_result_free(&r);
	assert_int_equal(e, -ENOENT);
	assert_int_equal(cc_session_free(c2, s[0]), -ENOENT);
	t_daemon_down(&d2, &c2, &r2);
}

/* Another client's session is unknown; a busy session refuses a second turn; cc_close frees its sessions. */
static void test_session_ownership(void **state)
{
	struct cc_gen_params p;
	struct cc_gen_result r;
	struct t_gen g;
	uint64_t sid, s3[2];
	cc_client *c2;
	cc_stream *st1, *st2;
	const char *text;
	size_t len;
	unsigned n = 0, before;
	double end;
	int e;

	(void)state;
	assert_int_equal(cc_session_new(c, "s", 0, &sid), 0);
	e = t_ccd_connect(&d, &c2);
	if (e)
		fail_msg("connect: %s", cc_strerror(e));
	t_params(&p, 8, 1);
	e = cc_generate_stream(c2, sid, NULL, "Once", &p, t_piece_count, &n, &r);
	if (e == 0)
		cc_gen_result_free(&r);
	assert_int_equal(e, -ENOENT);
	assert_int_equal(cc_session_free(c2, sid), -ENOENT);
	assert_int_equal(t_sessions_matching(&raw, 0, sid, NULL), 1);

	/* busy: a second turn while the first runs */
	t_params(&p, T_LONG_TOKENS, 1);
	assert_int_equal(cc_stream_start(c, sid, NULL, prompts[0], &p, &st1), 0);
	t_params(&p, 8, 1);
	assert_int_equal(cc_stream_start(c, sid, NULL, prompts[1], &p, &st2), 0);
	while ((e = cc_stream_next(st2, (int)(T_STEP_MS * t_scale()), &text, &len)) == 1)
		;
	if (e != -EBUSY)
		fail_msg("a second turn on a generating session: %d (%s), not -EBUSY", e, cc_last_error(c));
	print_message("busy session: '%s'\n", cc_last_error(c));
	cc_stream_free(st2);
	assert_int_equal(cc_stream_cancel(st1), 0);
	while ((e = cc_stream_next(st1, (int)(T_STEP_MS * t_scale()), &text, &len)) == 1)
		;
	assert_int_equal(e, -ECANCELED);
	cc_stream_free(st1);
	t_params(&p, 8, 1);
	t_stream_run(c, sid, NULL, " The end", &p, &g);
	t_assert_gen(&g, NULL, "a turn after the busy one");
	t_gen_free(&g);
	assert_int_equal(cc_session_free(c, 0x7ffffff0ULL), -ENOENT);
	assert_int_equal(cc_session_free(c, sid), 0);

	/* cc_close frees the client's sessions, one of them streaming */
	before = t_sessions_matching(&raw, 0, 0, NULL);
	assert_int_equal(cc_session_new(c2, "s", 0, &s3[0]), 0);
	assert_int_equal(cc_session_new(c2, "s", 0, &s3[1]), 0);
	assert_int_equal(t_sessions_matching(&raw, 0, s3[0], NULL), 1);
	assert_int_equal(t_sessions_matching(&raw, 0, s3[1], NULL), 1);
	t_params(&p, T_LONG_TOKENS, 1);
	assert_int_equal(cc_stream_start(c2, s3[1], NULL, prompts[0], &p, &st1), 0);
	assert_int_equal(cc_stream_next(st1, (int)(T_STEP_MS * t_scale()), &text, &len), 1);
	cc_close(c2); /* the stream not freed: cc_close frees it */
	end = t_now() + T_RECLAIM_S * t_scale();
	while ((t_sessions_matching(&raw, 0, s3[0], NULL) || t_sessions_matching(&raw, 0, s3[1], NULL) ||
	        t_sessions_matching(&raw, 0, 0, NULL) > before) &&
	       t_now() < end)
		t_msleep(10);
	if (t_sessions_matching(&raw, 0, s3[0], NULL) || t_sessions_matching(&raw, 0, s3[1], NULL))
		fail_msg("the sessions of a closed client are still listed");
	assert_int_equal(t_sessions_matching(&raw, 0, 0, NULL), before);
	t_assert_serving();
}

/* ---- 6. bad input ------------------------------------------------------------------------------------------ */

static void test_bad_input(void **state)
{
	struct cc_gen_params p;
	struct cc_gen_result r;
	Cc__SessionReply sr;
	struct t_gen g;
	char why[256];
	unsigned n = 0;
	uint64_t sid, id;
	Cc__Reply *rep;
	int32_t *ids = NULL;
	size_t ntok;
	int e;

	(void)state;
	t_params(&p, 8, 1);
	/* a session that never existed */
	e = cc_generate_stream(c, 987654321ULL, NULL, "Once", &p, t_piece_count, &n, &r);
	if (e == 0)
		cc_gen_result_free(&r);
	assert_int_equal(e, -ENOENT);
	if (!strstr(cc_last_error(c), "session"))
		fail_msg("a turn on an unknown session: the error does not say what is unknown: '%s'",
		         cc_last_error(c));
	t_stream_run(c, 987654322ULL, NULL, "Once", &p, &g);
	assert_int_equal(g.err, -ENOENT);
	assert_int_equal(g.npieces, 0);
	t_gen_free(&g);
	id = t_raw_gen_send(&raw, 987654323ULL, "s", "Once", 8, 1, 0, NULL);
	rep = t_raw_next(&raw);
	assert_int_equal(rep->id, id);
	assert_int_equal(rep->code, -ENOENT);
	assert_true(rep->body_case != CC__REPLY__BODY_PIECE);
	cc__reply__free_unpacked(rep, NULL);

	/* cancel of a request that does not run */
	id = t_raw_cancel_send(&raw, 424242);
	rep = t_raw_next(&raw);
	assert_int_equal(rep->id, id);
	assert_int_equal(rep->code, -ENOENT);
	assert_true(rep->error && *rep->error);
	cc__reply__free_unpacked(rep, NULL);
	id = t_raw_cancel_send(&raw, 0);
	rep = t_raw_next(&raw);
	assert_int_equal(rep->id, id);
	assert_true(rep->code == -ENOENT || rep->code == -EINVAL);
	cc__reply__free_unpacked(rep, NULL);

	/* SessionNew without a model, with an unknown one; SessionFree of unknown sessions */
	e = t_raw_session_new(&raw, NULL, 0, &sr, why, sizeof(why));
	print_message("session_new without a model: %d '%s'\n", e, why);
	assert_true(e == -EBADMSG || e == -EINVAL || e == -ENOENT);
	if (!strstr(why, "model"))
		fail_msg("session_new without a model: the error does not say so: '%s'", why);
	e = t_raw_session_new(&raw, "nosuchmodel", 0, &sr, why, sizeof(why));
	assert_int_equal(e, -ENOENT);
	if (!strstr(why, "nosuchmodel"))
		fail_msg("session_new of an unknown model: the error does not name it: '%s'", why);
	assert_int_equal(cc_session_new(c, "nosuchmodel", 0, &sid), -ENOENT);
	assert_int_equal(t_raw_session_free(&raw, 0), -ENOENT);
	assert_int_equal(t_raw_session_free(&raw, 55555555), -ENOENT);

	/* a huge n_ctx is capped (or refused with a reason), never allocated */
	e = t_raw_session_new(&raw, "s", 1u << 30, &sr, why, sizeof(why));
	print_message("session_new n_ctx 2^30: %d '%s' n_ctx %u\n", e, why, e ? 0 : sr.n_ctx);
	if (e == 0) {
		assert_true(sr.n_ctx <= 4096);
		assert_int_equal(t_raw_session_free(&raw, sr.session), 0);
	} else if (!*why) {
		fail_msg("session_new n_ctx 2^30 refused (%d) without a reason", e);
	}

	/* bad parameters and prompts on a session: refused, and the session still works */
	assert_int_equal(cc_session_new(c, "s", 0, &sid), 0);
	p.temp = NAN;
	t_stream_run(c, sid, NULL, "Once", &p, &g);
	assert_int_equal(g.err, -EINVAL);
	t_gen_free(&g);
	t_params(&p, 8, 1);
	t_stream_run(c, sid, NULL, "", &p, &g);
	assert_int_equal(g.err, -EINVAL);
	t_gen_free(&g);
	t_stream_run(c, sid, NULL, "ok \xff\xfe bad", &p, &g);
	assert_int_equal(g.err, -EILSEQ);
	t_gen_free(&g);
	t_stream_run(c, sid, NULL, "Once", &p, &g);
	t_assert_gen(&g, NULL, "a turn after refused ones");
	ntok = t_ntok("Once", 1, &ids);
	free(ids);
	assert_int_equal(g.r.new_tokens, ntok);
	t_gen_free(&g);
	assert_int_equal(cc_session_free(c, sid), 0);

	/* a model that cannot run inference has no sessions */
	{
		char tmp[PATH_MAX];

		snprintf(tmp, sizeof(tmp), "%s/notok.gguf", d.dir);
		assert_int_equal(t_write_no_tokenizer(stories, tmp), 0);
		assert_int_equal(cc_model_load(c, "nt", tmp, NULL, NULL, NULL, NULL, NULL), 0);
		e = cc_session_new(c, "nt", 0, &sid);
		assert_int_equal(e, -EOPNOTSUPP);
		t_stream_run(c, 0, "nt", "Once", &p, &g);
		assert_int_equal(g.err, -EOPNOTSUPP);
		t_gen_free(&g);
		assert_int_equal(cc_model_unload(c, "nt", 0), 0);
		unlink(tmp);
	}
	t_assert_serving();
}

/* Take every piece stream st has now, without waiting; returns the tokens they held. */
static size_t t_drain_now(cc_stream *st)
{
	const char *text;
	size_t len, n = 0;

	while (cc_stream_next(st, 0, &text, &len) == 1)
		n += cc_stream_piece_tokens(st, NULL);
	return n;
}

/*
 * Chunked prefill is fair: while a long prompt is processed (batch_tokens = 8: at most 7 of its tokens a step), a
 * stream already running keeps getting a token every step. Counted in tokens, not time: between the long prompt's
 * submission and its first piece, the running stream gets about one token per chunk (over 40 here); one unchunked
 * prefill would let it have the one or two of the step the prompt ran in. SmolLM2: its steps are slow enough that
 * the running stream has no backlog when the long prompt goes in.
 */
static void test_long_prompt_does_not_stall(void **state)
{
	static const char *const args[] = {"-o", "batch_tokens=8", NULL};
	struct cc_gen_params pa, pb;
	cc_stream *st[2] = {NULL, NULL};
	char prompt[2048] = "", path[PATH_MAX];
	struct t_ccd d2;
	struct t_raw r2;
	cc_client *c2;
	uint64_t sa;
	int32_t *ids = NULL;
	size_t nids = 0, a_tokens = 0, b_pieces = 0;
	const char *text;
	size_t len;
	int e, i;

	(void)state;
	if (!t_smollm2(path, sizeof(path))) {
		print_message("SmolLM2 is not here: skipping the chunked-prefill test\n");
		skip();
	}
	t_daemon_up(&d2, args, &c2, &r2);
	if (cc_model_load(c2, "smol", path, NULL, NULL, NULL, NULL, NULL))
		fail_msg("load %s: %s", path, cc_last_error(c2));
	while (strlen(prompt) < 1300) /* about 300 tokens */
		strcat(prompt, "The cat sat on the mat and the dog ran in the park. ");
	assert_int_equal(cc_tokenize(c2, "smol", prompt, 1, 0, &ids, &nids), 0);
	free(ids);
	if (nids < 200)
		fail_msg("the long prompt has only %zu tokens", nids);
	assert_int_equal(cc_session_new(c2, "smol", 0, &sa), 0);
	t_params(&pa, 1000, 1);
	t_params(&pb, 4, 1);
	assert_int_equal(cc_stream_start(c2, sa, NULL, "Once upon a time", &pa, &st[0]), 0);
	assert_int_equal(cc_stream_next(st[0], T_STEP_MS, &text, &len), 1); /* A is decoding */
	t_drain_now(st[0]);
	assert_int_equal(cc_stream_start(c2, 0, "smol", prompt, &pb, &st[1]), 0);
	while (b_pieces == 0) {
		i = cc_stream_poll(st, 2, T_STEP_MS);
		if (i < 0)
			fail_msg("poll: %s", cc_strerror(i));
		e = cc_stream_next(st[i], 0, &text, &len);
		if (e < 0 && e != -ETIMEDOUT)
			fail_msg("stream %c: %s (%s)", "AB"[i], cc_strerror(e), cc_last_error(c2));
		if (e == 0)
			fail_msg("stream %c ended before the long prompt's first token", "AB"[i]);
		if (e == 1 && i == 0)
			a_tokens += cc_stream_piece_tokens(st[0], NULL);
		if (e == 1 && i == 1)
			b_pieces++;
	}
	print_message("stream A got %zu tokens while a %zu-token prompt was processed\n", a_tokens, nids);
	if (a_tokens < 20)
		fail_msg("stream A got only %zu tokens during a %zu-token prefill: the prompt was not chunked", a_tokens,
		         nids);
	cc_stream_free(st[0]);
	cc_stream_free(st[1]);
	assert_int_equal(cc_session_free(c2, sa), 0);
	t_daemon_down(&d2, &c2, &r2);
}

#define T_TEST(f) cmocka_unit_test_setup(f, t_setup)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    T_TEST(test_eight_clients_batched_equal_alone),
	    T_TEST(test_eight_clients_smollm2),
	    T_TEST(test_one_client_four_streams),
	    T_TEST(test_shared_prefixes),
	    T_TEST(test_killed_client_frees_session),
	    T_TEST(test_cancel_stops_within_a_step),
	    T_TEST(test_unload_force_mid_stream),
	    T_TEST(test_shutdown_mid_stream),
	    T_TEST(test_session_turns),
	    T_TEST(test_stream_stop_string),
	    T_TEST(test_session_limits),
	    T_TEST(test_session_ownership),
	    T_TEST(test_bad_input),
	    T_TEST(test_long_prompt_does_not_stall),
	};
	double t0;
	int rc;

	if (argc == 9 && !strcmp(argv[1], "--gen"))
		return t_child_gen(argv + 2);
	if (argc == 5 && !strcmp(argv[1], "--hog"))
		return t_child_hog(argv + 2);
	setvbuf(stdout, NULL, _IOLBF, 0);
	t_ccd_path();
	if (!t_models_dir())
		return T_EXIT_SKIP;
	if (getenv("T_FILTER")) /* e.g. T_FILTER=test_session_turns: run only the matching tests */
		cmocka_set_test_filter(getenv("T_FILTER"));
	t0 = t_now();
	rc = cmocka_run_group_tests(tests, setup, teardown);
	print_message("total time %.1f s\n", t_now() - t0);
	return rc;
}
