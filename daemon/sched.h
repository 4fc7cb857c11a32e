/* SPDX-License-Identifier: MIT */
/*
 * sched.h: inference sessions and the continuous-batching scheduler of a model. One scheduler thread per model
 * runs every generation on it: each step is ONE batched forward pass (cce_eval_batch) holding the next token of
 * every decoding session plus chunks of the prompts waiting (chunked prefill), so the weights are read once per
 * step for all sessions, and a long prompt never holds up the generations already running.
 *
 * Threads: the front end creates sessions and turns, hands them over (attach, submit), and asks for cancels and
 * removals; the scheduler thread does everything else with them and reports through an event queue (replies
 * already packed, and the end of each turn) that the front end drains when its eventfd is readable.
 */
#ifndef CCD_SCHED_H
#define CCD_SCHED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

struct ccd_sched;
struct ccd_sess_priv;
struct ccd_turn_priv;

/* Where the schedulers report to the front end. */
struct ccd_evq {
	pthread_mutex_t lock;
	struct ccd_event *head, *tail;
	int evfd; /* readable while events wait */
};

struct ccd_turn;

/* One event: a packed Cc__Reply for the turn's client (a streamed piece, or the final reply). */
struct ccd_event {
	struct ccd_event *next;
	struct ccd_turn *turn;
	int final;          /* the turn is over: the scheduler no longer touches it */
	int code;           /* final: 0 or -errno */
	size_t len;
	unsigned char data[]; /* the Reply, packed */
};

/* A generation request: filled by the front end, run by the scheduler. */
struct ccd_turn {
	uint64_t req_id;
	uint64_t sess_id;
	void *client;  /* the front end's (struct ccd_client *); the scheduler never uses it */
	void *model;   /* the front end's (struct ccd_model *) */
	double t_arrival;
	char *prompt;
	int raw, stream, ignore_eos;
	uint32_t max_tokens;
	struct cce_sampling samp;
	char **stop;
	size_t nstop;
	struct ccd_turn_priv *p; /* the scheduler's state */
	struct ccd_event *spare; /* room for a short final error reply, should memory run out when the turn ends */
};

/* A turn with its spare event (the front end fills the rest), or NULL. */
struct ccd_turn *ccd_turn_new(void);

enum ccd_sess_state { CCD_SESS_IDLE = 0, CCD_SESS_QUEUED, CCD_SESS_PREFILL, CCD_SESS_DECODE };

/*
 * A session: one conversation's KV cache and history. Made by ccd_sess_new (its KV cache is reserved against the
 * scheduler's budget and allocated then, or, for a one-shot session, when its turn starts), then attached; after
 * ccd_sched_detach the scheduler frees it, so the front end must drop every pointer to it.
 */
struct ccd_sess {
	uint64_t id;
	uint64_t client_id;
	int pid;
	int oneshot;
	uint32_t n_ctx;            /* 0 for a one-shot session until its turn sizes it */
	void *client;              /* front end's */
	void *model;               /* front end's */
	struct ccd_sess *fe_next;  /* front end's list */
	struct ccd_turn *turn;     /* front end: the turn running (submitted, final not yet seen) */
	uint64_t last_used_ms;     /* front end */
	/* written by the scheduler, read by anyone */
	_Atomic uint64_t kv_bytes;
	_Atomic uint32_t n_past;
	_Atomic int state; /* enum ccd_sess_state */
	_Atomic uint64_t gen_total;
	_Atomic int cancel; /* set by the front end: the running turn ends with -ECANCELED within a step */
	struct ccd_sess_priv *p;
};

/* Values of a model's cancel flag: why its jobs stop. */
#define CCD_CANCEL_UNLOAD 1
#define CCD_CANCEL_SHUTDOWN 2

struct ccd_sched_conf {
	const struct cce_model *model;
	const struct cce_vocab *vocab;
	const struct ccm_gguf *gguf;
	const _Atomic int *cancel_model; /* forced unload or shutdown: every turn ends with -ECANCELED */
	const char *name;                /* the model's name, for logs */
	unsigned threads;                /* libcck threads of the steps (0: all) */
	uint32_t batch_tokens;           /* tokens per step */
	int share_prefixes;              /* prompts take the KV rows of prefixes other sessions evaluated */
	uint32_t max_ctx;                /* largest session context */
	_Atomic uint64_t *kv_used;       /* KV bytes of every session of every model (shared) */
	uint64_t kv_budget;
	struct ccd_evq *evq;
};

int ccd_evq_init(struct ccd_evq *q);
void ccd_evq_fini(struct ccd_evq *q); /* frees events left */
/* Take every waiting event (a list in order), clearing the eventfd. */
struct ccd_event *ccd_evq_take(struct ccd_evq *q);

/* Start a model's scheduler thread. -errno with err. */
int ccd_sched_new(const struct ccd_sched_conf *conf, struct ccd_sched **ret, char *err, size_t errlen);
/* Stop the thread and free the scheduler with every session still attached. No turn may be running. */
void ccd_sched_free(struct ccd_sched *s);

/*
 * A new session of n_ctx positions (0: a one-shot session, sized by its turn). Reserves the KV bytes against the
 * budget: -ENOSPC (err says so) past it, -ENOMEM. Not attached yet.
 */
int ccd_sess_new(struct ccd_sched *s, uint32_t n_ctx, struct ccd_sess **ret, char *err, size_t errlen);
/* Free a session that was never attached. */
void ccd_sess_free(struct ccd_sched *s, struct ccd_sess *ss);
void ccd_sched_attach(struct ccd_sched *s, struct ccd_sess *ss);
/* The front end drops the session: its turn (if any) ends with -ECANCELED; the scheduler frees it. */
void ccd_sched_detach(struct ccd_sched *s, struct ccd_sess *ss);
/* Start a turn on an attached, idle session (the front end checked). The scheduler owns turn->p. */
void ccd_sched_submit(struct ccd_sched *s, struct ccd_sess *ss, struct ccd_turn *t);
/* Free a turn whose final event was seen (or that was never submitted). */
void ccd_turn_free(struct ccd_turn *t);

/* Statistics: tokens generated since the start, over the last 60 s (per second), sessions generating now. */
void ccd_sched_stats(struct ccd_sched *s, uint64_t *gen_total, double *tps_1m, unsigned *active);

#endif /* CCD_SCHED_H */
