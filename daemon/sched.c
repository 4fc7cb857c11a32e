/* SPDX-License-Identifier: MIT */
/* sched.c: sessions and the continuous-batching scheduler of a model (see sched.h). */
#define _GNU_SOURCE 1
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "cc.pb-c.h"
#include "cck.h"
#include "log.h"
#include "sched.h"

/* Window of the tokens-per-second figure, in one-second buckets. */
#define TPS_WINDOW 60

struct ccd_sess_priv {
	struct ccd_sess *next; /* the scheduler's list */
	struct cce_ctx *ctx;   /* NULL for a one-shot session until its turn starts */
	int32_t *hist;         /* the tokens in the KV cache, n_ctx of room */
	uint32_t nhist;
	uint32_t nshare; /* hist[0, nshare) were evaluated as prompt rows from position 0: another session whose prompt
	                    starts with them may copy their KV (share_prefixes) */
	int32_t pending; /* sampled, in the text, not yet evaluated: the next turn feeds it first (-1: none) */
	/* chat: the messages so far and their rendering plus the last answer (what the cache holds) */
	struct cce_msg *msgs;
	size_t nmsgs;
	char *rendered;
	int gone;               /* detached by the front end */
	struct ccd_turn *queued; /* submitted, not yet taken by the thread */
	struct ccd_turn *turn;   /* running */
};

enum { PH_SETUP = 0, PH_PREFILL, PH_DECODE };

struct ccd_turn_priv {
	struct ccd_sess *ss;
	int phase;
	int32_t *todo; /* prompt tokens to evaluate (the pending token first) */
	size_t ntodo, ndone;
	int prompt_flag; /* ntodo >= 2: one multi-token decode, as llama.cpp would run it */
	int wait;        /* this step: the prompt waits for an earlier one it shares a prefix with (share_prefixes) */
	uint32_t shared; /* prompt tokens whose KV came from another session */
	float *logits;
	struct cce_sampler *smp;
	char *text; /* the answer so far */
	size_t len, cap, sent;
	int32_t *gen;
	size_t ngen, piece_from;
	uint32_t npieces;
	int32_t next; /* the token the next decode step feeds */
	const char *tmpl;
	char *full; /* chat: the rendering of the messages with this turn's, to keep on success */
	double t_admit, t_first, t_last, t_pp_end;
};

struct ccd_sched {
	struct ccd_sched_conf c;
	const struct cce_hparams *hp;
	uint32_t ctx_cap; /* max_ctx bounded by the model's training context */
	pthread_t thread;
	int thread_live;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop, dirty;
	struct ccd_sess *sessions; /* attached (under lock) */
	/* the thread's own */
	struct ccd_turn **active;
	size_t nactive, active_cap;
	struct cce_work *work;
	struct cce_seq *seqs;
	struct ccd_turn **seq_turn;
	int32_t *picked; /* the token sampled for each seq of the step */
	int32_t *eog; /* end-of-generation ids (ignore_eos masks them) */
	size_t neog;
	size_t rr;
	struct ccd_event *ev_head, *ev_tail; /* made this step, handed over at its end */
	/* statistics (under lock) */
	uint64_t gen_total;
	uint64_t sec_stamp[TPS_WINDOW];
	uint32_t sec_count[TPS_WINDOW];
	_Atomic unsigned nrunning;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the event queue ---------------------------------------------------------------------------------------------- */

int ccd_evq_init(struct ccd_evq *q)
{
	memset(q, 0, sizeof(*q));
	q->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->evfd < 0)
		return -errno;
	pthread_mutex_init(&q->lock, NULL);
	return 0;
}

void ccd_evq_fini(struct ccd_evq *q)
{
	struct ccd_event *e = ccd_evq_take(q), *n;

	for (; e; e = n) {
		n = e->next;
		free(e);
	}
	if (q->evfd >= 0)
		close(q->evfd);
	q->evfd = -1;
	pthread_mutex_destroy(&q->lock);
}

struct ccd_event *ccd_evq_take(struct ccd_evq *q)
{
	struct ccd_event *e;
	uint64_t v;

	if (read(q->evfd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing signalled; the list is checked anyway */
	}
	pthread_mutex_lock(&q->lock);
	e = q->head;
	q->head = q->tail = NULL;
	pthread_mutex_unlock(&q->lock);
	return e;
}

/* Hand this step's events to the front end. */
static void flush_events(struct ccd_sched *s)
{
	struct ccd_evq *q = s->c.evq;
	uint64_t one = 1;

	if (!s->ev_head)
		return;
	pthread_mutex_lock(&q->lock);
	if (q->tail)
		q->tail->next = s->ev_head;
	else
		q->head = s->ev_head;
	q->tail = s->ev_tail;
	pthread_mutex_unlock(&q->lock);
	s->ev_head = s->ev_tail = NULL;
	if (write(q->evfd, &one, sizeof(one)) < 0) {
		/* the counter cannot overflow in practice */
	}
}

/* Queue msg (packed) for t's client. An allocation failure loses a piece, never a final reply's slot. */
static void emit(struct ccd_sched *s, struct ccd_turn *t, int final, int code, const Cc__Reply *msg)
{
	size_t len = cc__reply__get_packed_size(msg);
	struct ccd_event *e = malloc(sizeof(*e) + len);

	if (!e) {
		Cc__Reply oom = CC__REPLY__INIT;

		if (!final)
			return; /* a piece is lost; the final reply carries the whole text */
		/* the turn must end (its client and model wait for this event): its spare holds a short error */
		oom.id = msg->id;
		oom.code = -ENOMEM;
		oom.error = (char *)"out of memory";
		e = t->spare;
		t->spare = NULL;
		msg = &oom;
		code = -ENOMEM;
	}
	e->next = NULL;
	e->turn = t;
	e->final = final;
	e->code = code;
	e->len = cc__reply__pack(msg, e->data);
	if (s->ev_tail)
		s->ev_tail->next = e;
	else
		s->ev_head = e;
	s->ev_tail = e;
}

/* ---- sessions ----------------------------------------------------------------------------------------------------- */

/* Reserve bytes of KV cache against the budget. */
static int kv_reserve(struct ccd_sched *s, uint64_t bytes, char *err, size_t errlen)
{
	uint64_t cur = atomic_load(s->c.kv_used);

	do {
		if (bytes > s->c.kv_budget || cur > s->c.kv_budget - bytes) {
			snprintf(err, errlen,
			         "the KV cache budget (kv_budget %" PRIu64 " KiB) is used up: %" PRIu64
			         " KiB in use, this session needs %" PRIu64 " KiB",
			         s->c.kv_budget >> 10, cur >> 10, (bytes + 1023) >> 10);
			return -ENOSPC;
		}
	} while (!atomic_compare_exchange_weak(s->c.kv_used, &cur, cur + bytes));
	return 0;
}

/* Allocate ss's KV cache of n_ctx positions (reserved against the budget). */
static int sess_alloc(struct ccd_sched *s, struct ccd_sess *ss, uint32_t n_ctx, char *err, size_t errlen)
{
	uint64_t bytes = cce_kv_bytes(s->c.model, n_ctx);
	int r;

	if (!bytes) {
		snprintf(err, errlen, "a context of %u positions is too large", n_ctx);
		return -EOVERFLOW;
	}
	r = kv_reserve(s, bytes, err, errlen);
	if (r)
		return r;
	ss->p->hist = malloc((size_t)n_ctx * sizeof(int32_t));
	r = ss->p->hist ? cce_ctx_new(s->c.model, n_ctx, &ss->p->ctx) : -ENOMEM;
	if (r) {
		free(ss->p->hist);
		ss->p->hist = NULL;
		atomic_fetch_sub(s->c.kv_used, bytes);
		snprintf(err, errlen, "cannot allocate a context of %u positions: %s", n_ctx, strerror(-r));
		return r;
	}
	ss->n_ctx = n_ctx;
	atomic_store(&ss->kv_bytes, bytes);
	return 0;
}

/* Give the KV cache back (a one-shot session's, once its turn is over; any session's when freed). */
static void sess_release(struct ccd_sched *s, struct ccd_sess *ss)
{
	cce_ctx_free(ss->p->ctx);
	ss->p->ctx = NULL;
	free(ss->p->hist);
	ss->p->hist = NULL;
	ss->p->nhist = 0;
	ss->p->nshare = 0;
	atomic_fetch_sub(s->c.kv_used, atomic_exchange(&ss->kv_bytes, 0));
	atomic_store(&ss->n_past, 0);
}

static void msgs_free(struct ccd_sess_priv *p)
{
	for (size_t i = 0; i < p->nmsgs; i++) {
		free((char *)p->msgs[i].role);
		free((char *)p->msgs[i].content);
	}
	free(p->msgs);
	p->msgs = NULL;
	p->nmsgs = 0;
	free(p->rendered);
	p->rendered = NULL;
}

int ccd_sess_new(struct ccd_sched *s, uint32_t n_ctx, struct ccd_sess **ret, char *err, size_t errlen)
{
	struct ccd_sess *ss = calloc(1, sizeof(*ss) + sizeof(struct ccd_sess_priv));
	int r;

	if (!ss) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ss->p = (struct ccd_sess_priv *)(ss + 1);
	ss->p->pending = -1;
	if (n_ctx) {
		if (n_ctx > s->ctx_cap)
			n_ctx = s->ctx_cap;
		r = sess_alloc(s, ss, n_ctx, err, errlen);
		if (r) {
			free(ss);
			return r;
		}
	} else {
		ss->oneshot = 1;
	}
	*ret = ss;
	return 0;
}

void ccd_sess_free(struct ccd_sched *s, struct ccd_sess *ss)
{
	if (!ss)
		return;
	sess_release(s, ss);
	msgs_free(ss->p);
	free(ss);
}

void ccd_sched_attach(struct ccd_sched *s, struct ccd_sess *ss)
{
	pthread_mutex_lock(&s->lock);
	ss->p->next = s->sessions;
	s->sessions = ss;
	pthread_mutex_unlock(&s->lock);
}

void ccd_sched_detach(struct ccd_sched *s, struct ccd_sess *ss)
{
	pthread_mutex_lock(&s->lock);
	ss->p->gone = 1;
	atomic_store(&ss->cancel, 1);
	s->dirty = 1;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

void ccd_sched_submit(struct ccd_sched *s, struct ccd_sess *ss, struct ccd_turn *t)
{
	t->p = NULL;
	atomic_store(&ss->cancel, 0);
	atomic_store(&ss->state, CCD_SESS_QUEUED);
	atomic_fetch_add(&s->nrunning, 1);
	pthread_mutex_lock(&s->lock);
	ss->p->queued = t;
	s->dirty = 1;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* Room for the packed "out of memory" final reply: an id, a code and the text. */
#define SPARE_BYTES 64

struct ccd_turn *ccd_turn_new(void)
{
	struct ccd_turn *t = calloc(1, sizeof(*t));

	if (t && !(t->spare = malloc(sizeof(struct ccd_event) + SPARE_BYTES))) {
		free(t);
		t = NULL;
	}
	return t;
}

void ccd_turn_free(struct ccd_turn *t)
{
	if (!t)
		return;
	free(t->spare);
	free(t->prompt);
	for (size_t i = 0; i < t->nstop; i++)
		free(t->stop[i]);
	free(t->stop);
	free(t);
}

void ccd_sched_stats(struct ccd_sched *s, uint64_t *gen_total, double *tps_1m, unsigned *active)
{
	uint64_t now = (uint64_t)now_s(), sum = 0;

	pthread_mutex_lock(&s->lock);
	*gen_total = s->gen_total;
	for (int i = 0; i < TPS_WINDOW; i++)
		if (s->sec_stamp[i] + TPS_WINDOW > now && s->sec_stamp[i] <= now)
			sum += s->sec_count[i];
	pthread_mutex_unlock(&s->lock);
	*tps_1m = (double)sum / TPS_WINDOW;
	*active = atomic_load(&s->nrunning);
}

/* Count n generated tokens now (the thread). */
static void count_tokens(struct ccd_sched *s, uint32_t n)
{
	uint64_t now = (uint64_t)now_s();
	int b = (int)(now % TPS_WINDOW);

	pthread_mutex_lock(&s->lock);
	if (s->sec_stamp[b] != now) {
		s->sec_stamp[b] = now;
		s->sec_count[b] = 0;
	}
	s->sec_count[b] += n;
	s->gen_total += n;
	pthread_mutex_unlock(&s->lock);
}

/* ---- the end of a turn ---------------------------------------------------------------------------------------------- */

static void turn_priv_free(struct ccd_turn_priv *p)
{
	if (!p)
		return;
	free(p->todo);
	free(p->logits);
	cce_sampler_free(p->smp);
	free(p->text);
	free(p->gen);
	free(p->full);
	free(p);
}

static void active_remove(struct ccd_sched *s, struct ccd_turn *t)
{
	for (size_t i = 0; i < s->nactive; i++)
		if (s->active[i] == t) {
			memmove(s->active + i, s->active + i + 1, (s->nactive - i - 1) * sizeof(*s->active));
			s->nactive--;
			return;
		}
}

/* Send the text not streamed yet (up to end) with the tokens since the last piece. */
static void send_piece(struct ccd_sched *s, struct ccd_turn *t, size_t end)
{
	struct ccd_turn_priv *p = t->p;
	Cc__Reply msg = CC__REPLY__INIT;
	Cc__GenPiece gp = CC__GEN_PIECE__INIT;

	if (!t->stream || (end <= p->sent && p->piece_from == p->ngen))
		return;
	if (end < p->sent)
		end = p->sent;
	gp.text.data = (uint8_t *)p->text + p->sent;
	gp.text.len = end - p->sent;
	gp.tokens = p->gen + p->piece_from;
	gp.n_tokens = p->ngen - p->piece_from;
	gp.index = p->npieces++;
	msg.id = t->req_id;
	msg.body_case = CC__REPLY__BODY_PIECE;
	msg.piece = &gp;
	emit(s, t, 0, 0, &msg);
	p->sent = end;
	p->piece_from = p->ngen;
}

/* Keep the answer of a chat turn in the session's history (what the cache now holds). */
static void chat_commit(struct ccd_turn *t)
{
	struct ccd_sess_priv *sp = t->p->ss->p;
	struct cce_msg *m;
	char *rendered;

	if (!t->p->full)
		return;
	m = realloc(sp->msgs, (sp->nmsgs + 2) * sizeof(*m));
	if (!m)
		goto forget;
	sp->msgs = m;
	if (asprintf(&rendered, "%s%.*s", t->p->full, (int)t->p->len, t->p->text ? t->p->text : "") < 0)
		goto forget;
	m[sp->nmsgs].role = strdup("user");
	m[sp->nmsgs].content = strdup(t->prompt);
	m[sp->nmsgs + 1].role = strdup("assistant");
	m[sp->nmsgs + 1].content = strndup(t->p->text ? t->p->text : "", t->p->len);
	sp->nmsgs += 2;
	free(sp->rendered);
	sp->rendered = rendered;
	for (size_t i = sp->nmsgs - 2; i < sp->nmsgs; i++)
		if (!m[i].role || !m[i].content)
			goto forget;
	return;
forget: /* out of memory: the next chat turn renders the whole conversation again from an empty cache */
	msgs_free(sp);
}

/*
 * The turn is over: stream what is left, update its session, and queue the final reply. code 0: reason says why it
 * stopped; else err. After this the thread never touches t (the front end frees it once it sees the event).
 */
static void finish(struct ccd_sched *s, struct ccd_turn *t, int code, const char *reason, const char *err)
{
	struct ccd_turn_priv *p = t->p;
	struct ccd_sess *ss = p ? p->ss : NULL;
	Cc__Reply msg = CC__REPLY__INIT;
	Cc__GenerateReply g = CC__GENERATE_REPLY__INIT;
	double now = now_s();

	active_remove(s, t);
	msg.id = t->req_id;
	msg.code = code;
	if (p && p->phase == PH_DECODE && p->ngen) {
		/* the last sampled token is in the text but not in the cache (eos: in neither) */
		if (strcmp(reason ? reason : "", "eos") != 0)
			ss->p->pending = p->gen[p->ngen - 1];
		if (code == 0 || code == -ECANCELED)
			chat_commit(t);
	} else if (p && code && p->ndone) {
		msgs_free(ss->p); /* part of the prompt is in the cache, not in the history: a chat turn starts again */
	}
	if (code == 0) {
		send_piece(s, t, p->len);
		g.text = p->text ? p->text : (char *)"";
		g.n_tokens = p->ngen;
		g.tokens = p->gen;
		g.prompt_tokens = (uint32_t)p->ntodo;
		g.new_tokens = (uint32_t)p->ntodo;
		g.cached_tokens = p->shared;
		g.gen_tokens = (uint32_t)p->ngen;
		g.pp_tps = p->t_pp_end > p->t_admit ? (double)p->ntodo / (p->t_pp_end - p->t_admit) : 0;
		g.tg_tps = p->ngen && now > p->t_pp_end ? (double)p->ngen / (now - p->t_pp_end) : 0;
		g.stop_reason = (char *)reason;
		g.template_ = (char *)(p->tmpl ? p->tmpl : "raw");
		g.session = ss->oneshot ? 0 : ss->id;
		g.ttft_ms = p->ngen ? (p->t_first - t->t_arrival) * 1e3 : 0;
		g.tpot_ms = p->ngen > 1 ? (p->t_last - p->t_first) * 1e3 / (double)(p->ngen - 1) : 0;
		g.n_past = ss->p->nhist;
		msg.body_case = CC__REPLY__BODY_GENERATE;
		msg.generate = &g;
	} else {
		msg.error = (char *)(err && err[0] ? err : strerror(-code));
	}
	emit(s, t, 1, code, &msg);
	if (ss) {
		ss->p->turn = NULL;
		if (ss->oneshot)
			sess_release(s, ss);
		atomic_store(&ss->state, CCD_SESS_IDLE);
	}
	turn_priv_free(p);
	t->p = NULL;
	atomic_fetch_sub(&s->nrunning, 1);
}

__attribute__((format(printf, 4, 5))) static void finish_err(struct ccd_sched *s, struct ccd_turn *t, int code,
                                                              const char *fmt, ...)
{
	char err[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, sizeof(err), fmt, ap);
	va_end(ap);
	finish(s, t, code, NULL, err);
}

static void finish_cancel(struct ccd_sched *s, struct ccd_turn *t)
{
	int why = atomic_load(s->c.cancel_model);

	if (why == CCD_CANCEL_SHUTDOWN)
		finish_err(s, t, -ECANCELED, "cancelled: ccd is shutting down");
	else if (why)
		finish_err(s, t, -ECANCELED, "cancelled: the model '%s' is being unloaded", s->c.name);
	else
		finish_err(s, t, -ECANCELED, "cancelled");
}

/* ---- a turn's start: template, tokens, context ---------------------------------------------------------------------- */

/* The text this turn feeds and how to tokenize it (chat: only what the conversation adds to the cache). */
static int turn_text(struct ccd_sched *s, struct ccd_turn *t, char **ret, int *add_bos, int *special)
{
	struct ccd_turn_priv *p = t->p;
	struct ccd_sess_priv *sp = p->ss->p;
	struct cce_msg *msgs;
	size_t plen;
	int r;

	*add_bos = sp->nhist == 0 ? -1 : 0;
	*special = 0;
	p->tmpl = "raw";
	if (t->raw) {
		*ret = strdup(t->prompt);
		return *ret ? 0 : -ENOMEM;
	}
	msgs = malloc((sp->nmsgs + 1) * sizeof(*msgs));
	if (!msgs)
		return -ENOMEM;
	memcpy(msgs, sp->msgs, sp->nmsgs * sizeof(*msgs));
	msgs[sp->nmsgs] = (struct cce_msg){"user", t->prompt};
	r = cce_chat_apply(s->c.gguf, msgs, sp->nmsgs + 1, &p->full);
	free(msgs);
	if (r == -EOPNOTSUPP) {
		p->tmpl = "raw (the model's chat template is not one ccd knows)";
		ccd_warn("generate: the model's chat template is not one ccd knows: using the raw prompt");
		*ret = strdup(t->prompt);
		return *ret ? 0 : -ENOMEM;
	}
	if (r < 0)
		return r;
	p->tmpl = "chat";
	*special = 1; /* the template's own markers are special tokens */
	plen = sp->rendered ? strlen(sp->rendered) : 0;
	if (sp->nhist && sp->rendered && strncmp(p->full, sp->rendered, plen) == 0) {
		*ret = strdup(p->full + plen); /* the history is in the cache: only what follows it */
		return *ret ? 0 : -ENOMEM;
	}
	if (sp->nhist) { /* the cache holds something the rendering does not start with: start again */
		cce_ctx_reset(sp->ctx);
		sp->nhist = 0;
		sp->nshare = 0;
		sp->pending = -1;
		atomic_store(&p->ss->n_past, 0);
		*add_bos = -1;
	}
	*ret = strdup(p->full);
	return *ret ? 0 : -ENOMEM;
}

/* Tokens of the turn: the pending token, then the new text's. */
static int turn_tokens(struct ccd_sched *s, struct ccd_turn *t, char *errbuf, size_t errlen)
{
	struct ccd_turn_priv *p = t->p;
	struct ccd_sess_priv *sp = p->ss->p;
	int32_t *ids = NULL;
	size_t nids = 0;
	char *text;
	int add_bos, special, r;

	r = turn_text(s, t, &text, &add_bos, &special);
	if (r < 0) {
		snprintf(errbuf, errlen, "chat template: %s", strerror(-r));
		return r;
	}
	if (text[0]) {
		r = cce_tokenize(s->c.vocab, text, strlen(text), add_bos, special, &ids, &nids);
		if (r < 0) {
			free(text);
			snprintf(errbuf, errlen, "%s", r == -EILSEQ ? "the prompt is not valid UTF-8" : strerror(-r));
			return r;
		}
	}
	free(text);
	p->todo = malloc((nids + 1) * sizeof(int32_t));
	if (!p->todo) {
		free(ids);
		return -ENOMEM;
	}
	if (sp->pending >= 0 && sp->nhist)
		p->todo[p->ntodo++] = sp->pending;
	if (nids)
		memcpy(p->todo + p->ntodo, ids, nids * sizeof(int32_t));
	p->ntodo += nids;
	free(ids);
	if (p->ntodo == 0) {
		snprintf(errbuf, errlen, "the prompt has no tokens");
		return -EINVAL;
	}
	return 0;
}

/* A one-shot session gets a context sized for its prompt and answer (as a llama.cpp context would be). */
static int oneshot_ctx(struct ccd_sched *s, struct ccd_turn *t, char *errbuf, size_t errlen)
{
	struct ccd_turn_priv *p = t->p;
	uint32_t n_ctx = s->ctx_cap;

	if (p->ntodo >= n_ctx) {
		snprintf(errbuf, errlen, "the prompt has %zu tokens: more than the context of %u allows", p->ntodo, n_ctx);
		return -E2BIG;
	}
	if (p->ntodo + t->max_tokens < n_ctx)
		n_ctx = (uint32_t)(p->ntodo + t->max_tokens);
	return sess_alloc(s, p->ss, n_ctx, errbuf, errlen);
}

/* Everything a turn needs before its prompt runs; on failure the turn ends with the error. */
static void setup(struct ccd_sched *s, struct ccd_turn *t)
{
	struct ccd_turn_priv *p = t->p;
	struct ccd_sess *ss = p->ss;
	char err[320] = "";
	int r;

	if (!t->prompt[0] && (ss->p->pending < 0 || !ss->p->nhist)) {
		finish_err(s, t, -EINVAL, "empty prompt");
		return;
	}
	r = turn_tokens(s, t, err, sizeof(err));
	if (r == 0 && ss->oneshot)
		r = oneshot_ctx(s, t, err, sizeof(err));
	if (r == 0 && p->ntodo >= ss->n_ctx) {
		snprintf(err, sizeof(err), "the prompt has %zu tokens: more than the context of %u allows", p->ntodo,
		         ss->n_ctx);
		r = -E2BIG;
	} else if (r == 0 && ss->p->nhist + p->ntodo >= ss->n_ctx) {
		snprintf(err, sizeof(err), "the session's context is full: %u of %u positions used, the turn needs %zu more",
		         ss->p->nhist, ss->n_ctx, p->ntodo + 1);
		r = -ENOSPC;
	}
	if (r == 0) {
		p->logits = malloc((size_t)s->hp->n_vocab * sizeof(float));
		p->gen = malloc(((size_t)t->max_tokens + 1) * sizeof(int32_t));
		if (!p->logits || !p->gen || cce_sampler_new(&t->samp, s->hp->n_vocab, &p->smp) < 0) {
			snprintf(err, sizeof(err), "out of memory");
			r = -ENOMEM;
		}
	}
	if (r) {
		finish_err(s, t, r, "%s", err[0] ? err : strerror(-r));
		return;
	}
	for (uint32_t i = 0; i < ss->p->nhist; i++)
		cce_sampler_accept(p->smp, ss->p->hist[i]);
	for (size_t i = 0; i < p->ntodo; i++)
		cce_sampler_accept(p->smp, p->todo[i]);
	ss->p->pending = -1;
	p->prompt_flag = p->ntodo >= 2;
	p->phase = PH_PREFILL;
	atomic_store(&ss->state, CCD_SESS_PREFILL);
}

/* ---- sampling, text, stop strings ---------------------------------------------------------------------------------- */

static int text_add(struct ccd_turn_priv *p, const char *b, size_t n)
{
	if (p->len + n + 1 > p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 256;
		char *q;

		while (cap < p->len + n + 1)
			cap *= 2;
		q = realloc(p->text, cap);
		if (!q)
			return -ENOMEM;
		p->text = q;
		p->cap = cap;
	}
	memcpy(p->text + p->len, b, n);
	p->len += n;
	p->text[p->len] = '\0';
	return 0;
}

static int add_token_text(struct ccd_sched *s, struct ccd_turn_priv *p, int32_t id)
{
	char buf[256], *big;
	int n = cce_token_piece(s->c.vocab, id, 0, buf, sizeof(buf)), r;

	if (n <= 0)
		return 0;
	if ((size_t)n <= sizeof(buf))
		return text_add(p, buf, (size_t)n);
	big = malloc((size_t)n);
	if (!big)
		return -ENOMEM;
	r = cce_token_piece(s->c.vocab, id, 0, big, (size_t)n);
	r = r < 0 ? r : text_add(p, big, (size_t)r < (size_t)n ? (size_t)r : (size_t)n);
	free(big);
	return r;
}

/* A stop string now in the text (only where the new bytes could complete one): cut the text there. */
static int hit_stop(const struct ccd_turn *t, struct ccd_turn_priv *p, size_t from)
{
	for (size_t i = 0; i < t->nstop; i++) {
		size_t sl = strlen(t->stop[i]), start = from > sl ? from - sl : 0;
		char *q;

		if (!sl || sl > p->len)
			continue;
		q = memmem(p->text + start, p->len - start, t->stop[i], sl);
		if (q) {
			p->len = (size_t)(q - p->text);
			p->text[p->len] = '\0';
			return 1;
		}
	}
	return 0;
}

/*
 * How much of the text may be streamed now: not a UTF-8 character still incomplete at the end, and not an end
 * that could be the start of a stop string.
 */
static size_t safe_end(const struct ccd_turn *t, const struct ccd_turn_priv *p)
{
	size_t end = p->len, hold = 0;

	for (size_t k = 1; k <= 4 && k <= end; k++) {
		unsigned char c = (unsigned char)p->text[end - k];
		size_t need;

		if ((c & 0xc0) == 0x80)
			continue; /* a continuation byte: look further back for its lead */
		need = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 1;
		if (need > k)
			hold = k;
		break;
	}
	end -= hold;
	for (size_t i = 0; i < t->nstop; i++) {
		size_t sl = strlen(t->stop[i]);

		for (size_t k = sl > 1 ? sl - 1 : 0; k > 0; k--)
			if (k <= end && end - k >= p->sent && memcmp(p->text + end - k, t->stop[i], k) == 0) {
				end -= k;
				break;
			}
	}
	return end < p->sent ? p->sent : end;
}

/* The next token of turn t from its logits (ignore_eos: never an end-of-generation token). Thread-safe per turn. */
static int32_t pick(const struct ccd_sched *s, struct ccd_turn *t)
{
	struct ccd_turn_priv *p = t->p;

	if (t->ignore_eos)
		for (size_t i = 0; i < s->neog; i++)
			p->logits[s->eog[i]] = -INFINITY;
	return cce_sampler_sample(p->smp, p->logits);
}

/* Take the sampled token id; the turn may end here. Returns 1 if it goes on decoding. */
static int sample(struct ccd_sched *s, struct ccd_turn *t, int32_t id)
{
	struct ccd_turn_priv *p = t->p;
	struct ccd_sess *ss = p->ss;
	double now = now_s();
	size_t before;

	if (!p->ngen)
		p->t_first = now;
	p->t_last = now;
	if (!t->ignore_eos && cce_vocab_is_eog(s->c.vocab, id)) {
		finish(s, t, 0, "eos", NULL);
		return 0;
	}
	p->gen[p->ngen++] = id;
	cce_sampler_accept(p->smp, id);
	atomic_fetch_add(&ss->gen_total, 1);
	count_tokens(s, 1);
	before = p->len;
	if (add_token_text(s, p, id) < 0) {
		finish_err(s, t, -ENOMEM, "out of memory");
		return 0;
	}
	if (t->nstop && hit_stop(t, p, before)) {
		finish(s, t, 0, "stop", NULL);
		return 0;
	}
	if (p->ngen >= t->max_tokens) {
		finish(s, t, 0, "length", NULL);
		return 0;
	}
	if (ss->p->nhist >= ss->n_ctx) { /* the context is full: the text so far is the answer */
		finish(s, t, 0, "context", NULL);
		return 0;
	}
	send_piece(s, t, safe_end(t, p));
	p->next = id;
	return 1;
}

/* ---- one step -------------------------------------------------------------------------------------------------------- */

/* Take what the front end handed over: detached sessions go (their turns end), submitted turns start. Under lock. */
static void intake(struct ccd_sched *s)
{
	struct ccd_sess **pp = &s->sessions, *ss;

	while ((ss = *pp)) {
		struct ccd_sess_priv *sp = ss->p;

		if (sp->queued && !sp->gone) {
			struct ccd_turn *t = sp->queued;
			struct ccd_turn_priv *p = calloc(1, sizeof(*p));

			sp->queued = NULL;
			if (s->nactive == s->active_cap) {
				size_t cap = s->active_cap ? s->active_cap * 2 : 16;
				struct ccd_turn **a = realloc(s->active, cap * sizeof(*a));

				if (a) {
					s->active = a;
					s->active_cap = cap;
				}
			}
			if (!p || s->nactive == s->active_cap) {
				free(p);
				finish_err(s, t, -ENOMEM, "out of memory");
				atomic_store(&ss->state, CCD_SESS_IDLE);
			} else {
				p->ss = ss;
				p->t_admit = now_s();
				t->p = p;
				sp->turn = t;
				s->active[s->nactive++] = t;
			}
		}
		if (sp->gone) {
			if (sp->queued) {
				finish_err(s, sp->queued, -ECANCELED, "cancelled: the session was freed");
				sp->queued = NULL;
			}
			if (sp->turn)
				finish_err(s, sp->turn, -ECANCELED, "cancelled: the session was freed");
			*pp = sp->next;
			ccd_sess_free(s, ss);
			continue;
		}
		pp = &sp->next;
	}
}

/* Cancels and the setup of new turns. */
static void prepare(struct ccd_sched *s)
{
	int model_cancel = atomic_load(s->c.cancel_model);

	for (size_t i = 0; i < s->nactive;) {
		struct ccd_turn *t = s->active[i];

		if (model_cancel || atomic_load(&t->p->ss->cancel)) {
			finish_cancel(s, t);
			continue;
		}
		if (t->p->phase == PH_SETUP) {
			setup(s, t);
			if (i >= s->nactive || s->active[i] != t)
				continue; /* it failed and ended */
		}
		i++;
	}
}

/* Tokens at the start of a and b that are the same (at most n). */
static uint32_t common_prefix(const int32_t *a, const int32_t *b, uint32_t n)
{
	uint32_t i = 0;

	while (i < n && a[i] == b[i])
		i++;
	return i;
}

/*
 * Prompt prefixes shared between sessions. A turn whose prompt starts an empty cache takes the KV rows of the longest
 * prefix of it that another session of the model evaluated as prompt rows from position 0 (at least SHARE_MIN tokens,
 * and never the prompt's last token, whose logits it needs): cce_ctx_copy_prefix, the same bits as evaluating them
 * (a row's arithmetic depends only on the tokens up to it and on the prompt flag, which the rest of this prompt keeps:
 * so its answer is the one it gets alone). But a prompt sharing more than that, at least SHARE_WAIT tokens and half of
 * itself, with an earlier prompt still being evaluated waits for it, a step at a time, instead of computing the same
 * rows beside it. Many clients sending one system prompt, or one benchmark prompt, compute it once.
 */
#define SHARE_MIN 4
#define SHARE_WAIT 16
static void share_prefixes(struct ccd_sched *s)
{
	for (size_t i = 0; i < s->nactive; i++) {
		struct ccd_turn_priv *p = s->active[i]->p;
		struct ccd_sess_priv *sp = p->ss->p;
		struct ccd_sess *donor = NULL;
		uint32_t best = 0, cap;

		p->wait = 0;
		if (!s->c.share_prefixes || p->phase != PH_PREFILL || p->ndone || sp->nhist || !p->prompt_flag)
			continue;
		cap = (uint32_t)p->ntodo - 1;
		pthread_mutex_lock(&s->lock);
		for (struct ccd_sess *d = s->sessions; d; d = d->p->next) {
			uint32_t l;

			if (d == p->ss || !d->p->ctx || d->p->nshare < SHARE_MIN)
				continue;
			l = common_prefix(p->todo, d->p->hist, cap < d->p->nshare ? cap : d->p->nshare);
			if (l > best) {
				best = l;
				donor = d;
			}
		}
		pthread_mutex_unlock(&s->lock);
		for (size_t k = 0; k < i; k++) { /* an earlier prompt, evaluated first, that will have more of this one */
			const struct ccd_turn_priv *e = s->active[k]->p;
			uint32_t l;

			/* it started an empty cache, and its rows so far are prompt rows */
			if (e->phase != PH_PREFILL || e->wait || !e->prompt_flag || e->ss->p->nhist != e->ndone ||
			    e->ss->p->nshare != e->ss->p->nhist)
				continue;
			l = common_prefix(p->todo, e->todo, cap < e->ntodo ? cap : (uint32_t)e->ntodo);
			if (l > best && l >= SHARE_WAIT && l >= p->ntodo / 2 && e->ss->p->nshare < l) {
				p->wait = 1;
				break;
			}
		}
		if (!p->wait && best >= SHARE_MIN && cce_ctx_copy_prefix(sp->ctx, donor->p->ctx, best) == 0) {
			memcpy(sp->hist, p->todo, best * sizeof(int32_t));
			sp->nhist = sp->nshare = best;
			atomic_store(&p->ss->n_past, best);
			p->ndone = p->shared = best;
		}
	}
}

/* The step's batch: the next token of every decoding turn, then prompt chunks in arrival order. Returns seqs. */
static size_t build(struct ccd_sched *s)
{
	const size_t budget = s->c.batch_tokens;
	size_t n = 0, used = 0, ndec = 0, left;

	for (size_t i = 0; i < s->nactive; i++)
		ndec += s->active[i]->p->phase == PH_DECODE;
	for (size_t k = 0; k < s->nactive && used < budget; k++) {
		/* more decoders than the budget: start at a rotating one so each gets its turn */
		struct ccd_turn *t = s->active[(s->rr + k) % s->nactive];
		struct ccd_turn_priv *p = t->p;

		if (p->phase != PH_DECODE)
			continue;
		s->seqs[n] = (struct cce_seq){p->ss->p->ctx, &p->next, 1, 0, p->logits};
		s->seq_turn[n++] = t;
		used++;
	}
	if (ndec > budget)
		s->rr = (s->rr + budget) % s->nactive;
	/* prompts get what is left, but at least a quarter of a step: a crowd of decoders never starves them */
	left = budget - used < budget / 4 ? (budget / 4 ? budget / 4 : 1) : budget - used;
	share_prefixes(s);
	for (size_t i = 0; i < s->nactive && left; i++) {
		struct ccd_turn *t = s->active[i];
		struct ccd_turn_priv *p = t->p;
		size_t chunk = p->ntodo - p->ndone;

		if (p->phase != PH_PREFILL || p->wait)
			continue;
		if (chunk > left)
			chunk = left;
		s->seqs[n] = (struct cce_seq){p->ss->p->ctx, p->todo + p->ndone, (uint32_t)chunk, p->prompt_flag,
		                              p->ndone + chunk == p->ntodo ? p->logits : NULL};
		s->seq_turn[n++] = t;
		left -= chunk;
	}
	return n;
}

/* Sampling of the turns that got logits this step, spread over the step's threads (part i takes every nt-th). */
struct pick_job {
	struct ccd_sched *s;
	size_t n;
};

static void pick_part(void *arg, int part, int nt)
{
	const struct pick_job *j = arg;

	for (size_t k = (size_t)part; k < j->n; k += (size_t)nt)
		if (j->s->seqs[k].logits)
			j->s->picked[k] = pick(j->s, j->s->seq_turn[k]);
}

/* After the pass: the cache holds the new tokens; turns whose logits came sample. */
static void advance(struct ccd_sched *s, size_t n)
{
	struct pick_job job = {s, n};

	cck_parallel(n < 2 ? 1 : (int)n, pick_part, &job);
	for (size_t k = 0; k < n; k++) {
		struct ccd_turn *t = s->seq_turn[k];
		struct ccd_turn_priv *p = t->p;
		struct ccd_sess_priv *sp = p->ss->p;
		const struct cce_seq *q = &s->seqs[k];

		if (q->prompt && sp->nshare == sp->nhist) /* still prompt rows from position 0 */
			sp->nshare += q->n;
		memcpy(sp->hist + sp->nhist, q->ids, q->n * sizeof(int32_t));
		sp->nhist += q->n;
		atomic_store(&p->ss->n_past, sp->nhist);
		if (p->phase == PH_PREFILL) {
			p->ndone += q->n;
			if (p->ndone < p->ntodo)
				continue;
			p->t_pp_end = now_s();
			p->phase = PH_DECODE;
			atomic_store(&p->ss->state, CCD_SESS_DECODE);
		}
		sample(s, t, s->picked[k]);
	}
}

static void step(struct ccd_sched *s)
{
	size_t n;
	int r;

	prepare(s);
	if (!s->nactive)
		return;
	n = build(s);
	if (!n)
		return;
	r = cce_eval_batch(s->work, s->seqs, n, s->c.cancel_model);
	if (r < 0) {
		for (size_t k = 0; k < n; k++) {
			if (r == -ECANCELED)
				finish_cancel(s, s->seq_turn[k]);
			else
				finish_err(s, s->seq_turn[k], r, "evaluation failed: %s", strerror(-r));
		}
		return;
	}
	advance(s, n);
}

static void *sched_main(void *arg)
{
	struct ccd_sched *s = arg;

	cck_set_local_threads((int)s->c.threads);
	for (;;) {
		pthread_mutex_lock(&s->lock);
		while (!s->stop && !s->dirty && !s->nactive)
			pthread_cond_wait(&s->cond, &s->lock);
		s->dirty = 0;
		intake(s);
		if (s->stop && !s->nactive) {
			pthread_mutex_unlock(&s->lock);
			break;
		}
		pthread_mutex_unlock(&s->lock);
		step(s);
		flush_events(s);
	}
	flush_events(s);
	return NULL;
}

/* ---- life ----------------------------------------------------------------------------------------------------------- */

static int eog_list(struct ccd_sched *s)
{
	uint32_t nv = cce_vocab_size(s->c.vocab);

	s->eog = malloc(16 * sizeof(int32_t));
	if (!s->eog)
		return -ENOMEM;
	for (uint32_t i = 0; i < nv; i++) {
		if (!cce_vocab_is_eog(s->c.vocab, (int32_t)i))
			continue;
		if (s->neog % 16 == 15) {
			int32_t *e = realloc(s->eog, (s->neog + 17) * sizeof(int32_t));

			if (!e)
				return -ENOMEM;
			s->eog = e;
		}
		s->eog[s->neog++] = (int32_t)i;
	}
	return 0;
}

int ccd_sched_new(const struct ccd_sched_conf *conf, struct ccd_sched **ret, char *err, size_t errlen)
{
	struct ccd_sched *s = calloc(1, sizeof(*s));
	int r;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->c = *conf;
	s->hp = cce_model_hparams(conf->model);
	s->ctx_cap = conf->max_ctx;
	if (s->hp->n_ctx_train && s->hp->n_ctx_train < s->ctx_cap)
		s->ctx_cap = s->hp->n_ctx_train;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	/* a step holds at most batch_tokens decoders and prompt chunks of batch_tokens tokens */
	s->seqs = calloc(2 * (size_t)conf->batch_tokens, sizeof(*s->seqs));
	s->seq_turn = calloc(2 * (size_t)conf->batch_tokens, sizeof(*s->seq_turn));
	s->picked = calloc(2 * (size_t)conf->batch_tokens, sizeof(*s->picked));
	r = s->seqs && s->seq_turn && s->picked ? eog_list(s) : -ENOMEM;
	if (r == 0)
		r = cce_work_new(conf->model, conf->batch_tokens, s->ctx_cap, &s->work);
	if (r == 0) {
		r = -pthread_create(&s->thread, NULL, sched_main, s);
		s->thread_live = r == 0;
	}
	if (r) {
		snprintf(err, errlen, "cannot start the scheduler of model '%s': %s", conf->name, strerror(-r));
		ccd_sched_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

void ccd_sched_free(struct ccd_sched *s)
{
	struct ccd_sess *ss, *next;

	if (!s)
		return;
	if (s->thread_live) {
		pthread_mutex_lock(&s->lock);
		s->stop = 1;
		for (ss = s->sessions; ss; ss = ss->p->next)
			ss->p->gone = 1;
		pthread_cond_signal(&s->cond);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->thread, NULL);
	}
	for (ss = s->sessions; ss; ss = next) {
		next = ss->p->next;
		ccd_sess_free(s, ss);
	}
	cce_work_free(s->work);
	free(s->active);
	free(s->seqs);
	free(s->seq_turn);
	free(s->picked);
	free(s->eog);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}
