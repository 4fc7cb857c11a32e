/* SPDX-License-Identifier: MIT */
/* server.c: the front end: one thread owns the ROUTER, parses and checks requests, dispatches and answers. */
#define _GNU_SOURCE 1
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <zmq.h>

#include "cc.pb-c.h"
#include "ccg.h"
#include "cck.h"
#include "clients.h"
#include "jobs.h"
#include "log.h"
#include "infer.h"
#include "models.h"
#include "sched.h"
#include "server.h"
#include "shm.h"
#include "util.h"
#include "workers.h"

/* The protocol version this ccd speaks (cc.proto, Hello.proto_version). */
#define CCD_PROTO_VERSION 1
/* Messages taken from the ROUTER per poll round, so finished jobs are not starved by a flood. */
#define ROUTER_BATCH 256
/* How long closing waits to flush replies already queued (the shutdown request's among them). */
#define CLOSE_LINGER_MS 500

struct ccd_server {
	struct ccd_conf conf;
	const struct ccd_topo *topo;
	void *ctx;
	void *router;
	struct ccd_pool *pool;
	struct ccd_clients clients;
	int clients_ready;
	struct ccd_shm_stats shm;
	double start_s;
	uint64_t jobs_done, jobs_failed;
	int stopping;
	struct ccd_models models;
	int models_ready;
	/* inference sessions (sched.c runs them; this list is the front end's view) */
	struct ccd_evq evq;
	int evq_ready;
	_Atomic uint64_t kv_used;
	struct ccd_sess *sessions;
	uint64_t next_sess;
	unsigned turns_running;
	/* kernels_set calibrate: the thread measuring the crossovers (joined at the next one, or at the end) */
	pthread_t calib;
	int calib_joinable;
	atomic_int calib_running, calib_stop;
};

/* The sender of a request: its ZeroMQ routing id. */
struct peer {
	unsigned char ident[CCD_IDENT_MAX];
	size_t len;
	int have_cred; /* uid/pid below come from the socket (SO_PEERCRED), not from the client */
	uid_t uid;
	pid_t pid;
};

/* The quantized types whose matvec has a crossover of its own (CCG_QOP). */
static const int xo_qtypes[] = {CCK_TYPE_Q4_0, CCK_TYPE_Q4_1, CCK_TYPE_Q8_0, CCK_TYPE_Q4_K, CCK_TYPE_Q6_K};
#define XO_MAX (CCK_OP_COUNT + CCD_ARRAY_SIZE(xo_qtypes))

/* The OpenCL part of a kernels reply: the devices and the crossovers (malloc'd, freed with the reply). */
struct kernels_cl {
	int ndev;
	struct ccg_device_info *info;
	Cc__OpenclDevice *dev;
	Cc__OpenclDevice **dev_ptr;
	Cc__Crossover xo[XO_MAX];
	Cc__Crossover *xo_ptr[XO_MAX];
	char qname[CCD_ARRAY_SIZE(xo_qtypes)][32];
};

static void kernels_cl_free(struct kernels_cl *k)
{
	if (!k)
		return;
	free(k->info);
	free(k->dev);
	free(k->dev_ptr);
	free(k);
}

/* A reply being built, with storage for whichever body it carries. */
struct reply {
	Cc__Reply msg;
	char err[512];
	union {
		Cc__HelloReply hello;
		Cc__OpReply op;
		Cc__StatusReply status;
		Cc__ClientsReply clients;
		Cc__KernelsReply kernels;
		Cc__ModelsReply models;
		Cc__ModelShowReply show;
		Cc__TokenizeReply tok;
		Cc__DetokenizeReply detok;
		Cc__SessionReply sess;
		Cc__SessionsReply sessions;
	} u;
	Cc__SessionInfo *sinfo;      /* malloc'd for sessions */
	Cc__SessionInfo **sinfo_ptr; /* malloc'd for sessions */
	int32_t *ids;              /* malloc'd for tokenize */
	Cc__ModelInfo *minfo;      /* malloc'd for models */
	Cc__ModelInfo **minfo_ptr; /* malloc'd for models */
	char *json;                /* malloc'd for model_show */
	char *tiers[CCK_TIER_COUNT];
	char *ops[CCK_OP_COUNT];
	char *kinds[CCK_OP_COUNT];
	Cc__ClientInfo *infos;     /* malloc'd for clients */
	Cc__ClientInfo **info_ptr; /* malloc'd for clients */
	struct kernels_cl *kcl;    /* malloc'd for kernels */
};

/* A handler's return when the reply comes later (a job went to the workers). */
#define REPLY_DEFERRED 1

static const char *const kind_names[CCK_KIND_COUNT] = {
    [CCK_KIND_UNARY] = "unary",   [CCK_KIND_VECTOR] = "vector",   [CCK_KIND_BINARY] = "binary",
    [CCK_KIND_REDUCE] = "reduce", [CCK_KIND_REDUCE2] = "reduce2", [CCK_KIND_MATRIX] = "matrix",
};

static int fail(struct reply *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct reply *r, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	return code;
}

static void send_reply(struct ccd_server *s, const void *ident, size_t identlen, Cc__Reply *msg)
{
	size_t len = cc__reply__get_packed_size(msg);
	zmq_msg_t m;

	if (zmq_msg_init_size(&m, len) < 0) {
		ccd_error("cannot allocate a %zu-byte reply: %s", len, zmq_strerror(errno));
		return;
	}
	cc__reply__pack(msg, zmq_msg_data(&m));
	/* A ROUTER never blocks: a reply to a peer that is gone or not reading is dropped. */
	if (zmq_send(s->router, ident, identlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_msg_send(&m, s->router, ZMQ_DONTWAIT) < 0) {
		ccd_debug("reply %" PRIu64 " not sent: %s", msg->id, zmq_strerror(errno));
		zmq_msg_close(&m);
	}
}

/* Answer with code (and r's error text and body when set). */
static void finish_reply(struct ccd_server *s, const struct peer *p, struct reply *r, int code)
{
	r->msg.code = code;
	if (code) {
		r->msg.body_case = CC__REPLY__BODY__NOT_SET;
		r->msg.error = r->err[0] ? r->err : (char *)strerror(-code);
	}
	send_reply(s, p->ident, p->len, &r->msg);
	free(r->infos);
	free(r->info_ptr);
	free(r->minfo);
	free(r->minfo_ptr);
	free(r->json);
	free(r->ids);
	free(r->sinfo);
	free(r->sinfo_ptr);
	kernels_cl_free(r->kcl);
}

/* ---- jobs ------------------------------------------------------------------- */

static void model_job_done(struct ccd_server *s, struct ccd_job *job);

/* The reply of a finished logits job. */
static void infer_reply(struct ccd_server *s, struct ccd_client *c, struct ccd_job *job, Cc__Reply *msg)
{
	struct ccd_infer *inf = job->infer;
	Cc__LogitsReply l = CC__LOGITS_REPLY__INIT;

	l.n_top_ids = inf->ntop;
	l.top_ids = inf->top_ids;
	l.n_top_logits = inf->ntop;
	l.top_logits = inf->top_logits;
	l.n_vocab = inf->n_vocab;
	msg->body_case = CC__REPLY__BODY_LOGITS;
	msg->logits = &l;
	send_reply(s, c->ident, c->identlen, msg);
}

/* A job (or the last part of a split one) is done: answer it, release its regions, count it. */
static void job_finished(struct ccd_server *s, struct ccd_job *job)
{
	struct ccd_client *c;
	Cc__Reply msg = CC__REPLY__INIT;
	Cc__OpReply op = CC__OP_REPLY__INIT;
	char err[256];
	int i;

	if (job->parent) {
		struct ccd_job *parent = job->parent;

		if (job->code && !parent->code)
			parent->code = job->code;
		CCD_ASSERT(parent->parts_left > 0);
		if (--parent->parts_left)
			return;
		job = parent;
	}
	c = job->client;
	if (c->state == CCD_CLIENT_LIVE) {
		msg.id = job->req_id;
		msg.code = job->code;
		if (job->code) {
			ccd_job_strerror(job, err, sizeof(err));
			msg.error = err;
			send_reply(s, c->ident, c->identlen, &msg);
		} else if (job->type == CCD_JOB_INFER) {
			infer_reply(s, c, job, &msg);
		} else {
			op.value = job->value;
			msg.body_case = CC__REPLY__BODY_OP;
			msg.op = &op;
			send_reply(s, c->ident, c->identlen, &msg);
		}
	}
	if (job->code) {
		s->jobs_failed++;
		c->jobs_failed++;
	} else {
		s->jobs_done++;
		c->jobs_done++;
	}
	for (i = 0; i < job->nregions; i++)
		ccd_region_unref(job->regions[i]);
	ccd_clients_job_end(&s->clients, c);
	if (job->model)
		model_job_done(s, job);
	ccd_infer_free(job->infer);
	free(job);
}

static void drain_workers(struct ccd_server *s)
{
	struct ccd_job *job;

	while ((job = ccd_pool_collect(s->pool)))
		job_finished(s, job);
}

/* Answer every job still waiting for a worker with -ECANCELED. */
static void cancel_queued(struct ccd_server *s)
{
	struct ccd_job *job;

	while ((job = ccd_pool_unqueue(s->pool))) {
		job->code = -ECANCELED;
		job_finished(s, job);
	}
}

/* The client said bye or died: cancel its queued jobs, free its regions, and free it once no job runs. */
static void sessions_drop_client(struct ccd_server *s, struct ccd_client *c);

static void client_leave(struct ccd_server *s, struct ccd_client *c)
{
	struct ccd_job *job = ccd_pool_unqueue_client(s->pool, c), *next;

	sessions_drop_client(s, c);

	for (; job; job = next) {
		next = job->next;
		job->code = -ECANCELED;
		job_finished(s, job);
	}
	ccd_clients_retire(&s->clients, c);
}

static void begin_stop(struct ccd_server *s, const char *why)
{
	if (s->stopping)
		return;
	s->stopping = 1;
	atomic_store(&s->calib_stop, 1); /* a calibration ends after the op it measures; ccd_server_free joins it */
	ccd_info("shutting down (%s): %u jobs running, %u queued", why, ccd_pool_running(s->pool),
	         ccd_pool_queued(s->pool));
	cancel_queued(s);
	{
		struct ccd_model *m;

		/* loads stop, and so do the running jobs that use a model (generations: within one layer) */
		for (m = s->models.all; m; m = m->next) {
			if (m->state == CCD_MODEL_LOADING)
				atomic_store(&m->prog.cancel, 1);
			atomic_store(&m->cancel_jobs, CCD_CANCEL_SHUTDOWN);
		}
	}
}

/* ---- request handlers ------------------------------------------------------- */

typedef int (*handler_fn)(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                          struct reply *r);

static int h_hello(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                   struct reply *r)
{
	const Cc__Hello *h = req->hello;
	unsigned long long start;
	int ret;

	if (!h)
		return fail(r, -EBADMSG, "hello: missing");
	if (c)
		return fail(r, -EALREADY, "hello: already done on this connection (client %" PRIu64 ")", c->id);
	if (h->proto_version != CCD_PROTO_VERSION)
		return fail(r, -EPROTO, "protocol version %u not supported: ccd speaks %d", h->proto_version,
		            CCD_PROTO_VERSION);
	if (s->stopping)
		return fail(r, -ESHUTDOWN, "ccd is shutting down");
	if (!h->pid || h->pid > INT32_MAX)
		return fail(r, -EINVAL, "hello: pid %u is not a process", h->pid);
	ret = ccd_proc_start_time((pid_t)h->pid, &start);
	if (ret == -ESRCH)
		return fail(r, ret, "hello: no process %u", h->pid);
	if (ret < 0)
		return fail(r, ret, "hello: cannot check process %u: %s", h->pid, strerror(-ret));
	if (s->clients.live >= s->conf.v[CCD_CONF_MAX_CLIENTS])
		return fail(r, -EMFILE, "max_clients (%" PRIu64 ") reached", s->conf.v[CCD_CONF_MAX_CLIENTS]);
	ret = ccd_clients_add(&s->clients, p->ident, p->len, (pid_t)h->pid, start, h->name, &c);
	if (ret < 0)
		return fail(r, ret, "hello: cannot add a client: %s", strerror(-ret));
	ccd_info("client %" PRIu64 " connected: pid %ld '%s', node %d", c->id, (long)c->pid, c->name, c->node);
	r->u.hello = (Cc__HelloReply)CC__HELLO_REPLY__INIT;
	r->u.hello.proto_version = CCD_PROTO_VERSION;
	r->u.hello.client_id = c->id;
	r->u.hello.version = (char *)PACKAGE_VERSION;
	r->u.hello.pid = (uint32_t)getpid();
	r->u.hello.tier = (char *)cck_tier();
	r->msg.body_case = CC__REPLY__BODY_HELLO;
	r->msg.hello = &r->u.hello;
	return 0;
}

static int h_region_add(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                        struct reply *r)
{
	const Cc__RegionAdd *a = req->region_add;
	struct ccd_shm_limits lim = {
	    .max_regions = s->conf.v[CCD_CONF_MAX_REGIONS_PER_CLIENT],
	    .max_bytes = s->conf.v[CCD_CONF_MAX_BYTES_PER_CLIENT],
	};
	int ret;

	if (!a)
		return fail(r, -EBADMSG, "region_add: missing");
	ret = ccd_region_add(&c->regions, c->pid, a->region_id, a->fd, a->size, &lim, s->topo, c->node, r->err,
	                     sizeof(r->err));
	if (!ret)
		ccd_debug("client %" PRIu64 ": region %" PRIu64 " added (%" PRIu64 " bytes)", c->id, a->region_id,
		          a->size);
	return ret;
}

static int h_region_free(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                         struct reply *r)
{
	const Cc__RegionFree *f = req->region_free;

	if (!f)
		return fail(r, -EBADMSG, "region_free: missing");
	if (ccd_region_remove(&c->regions, f->region_id) < 0)
		return fail(r, -ENOENT, "no region %" PRIu64, f->region_id);
	return 0;
}

static struct ccd_model *model_find_ready(struct ccd_server *s, const char *name, struct reply *r, int *code);

/* model_matvec: y = W x with W a tensor of a loaded model; the job is one of the model's users. */
static int model_op(struct ccd_server *s, struct ccd_client *c, const Cc__Request *req, struct reply *r)
{
	const Cc__OpRequest *o = req->op;
	const struct ccm_tensor *t;
	struct ccd_model *m;
	struct ccd_job *job;
	const char *w;
	char tname[80];
	int ret, k;

	if (!o->op || strcmp(o->op, "model_matvec") != 0) {
		ccd_sanitize(tname, sizeof(tname), o->op);
		return fail(r, -ENOENT, "op '%s' does not take a model (model ops: model_matvec)", tname);
	}
	if (!o->model || !o->model[0] || !o->tensor || !o->tensor[0])
		return fail(r, -EINVAL, "model_matvec needs a model and a tensor name");
	m = model_find_ready(s, o->model, r, &ret);
	if (!m)
		return ret;
	ccd_sanitize(tname, sizeof(tname), o->tensor);
	t = ccm_gguf_find_tensor(m->gguf, o->tensor);
	if (!t)
		return fail(r, -ENOENT, "model '%s' has no tensor '%s'", m->name, tname);
	if (t->n_dims > 2 || (t->n_dims == 2 && t->ne[1] == 0))
		return fail(r, -EINVAL, "tensor '%s' is %u-D: model_matvec takes a matrix", tname, t->n_dims);
	if (!cck_type_has_dot(t->type))
		return fail(r, -EOPNOTSUPP, "tensor '%s' has type %s, which has no dot product in libcck", tname,
		            cck_type_name(t->type) ? cck_type_name(t->type) : "?");
	job = calloc(1, sizeof(*job));
	if (!job)
		return fail(r, -ENOMEM, "op: out of memory");
	w = (const char *)m->region.data + t->offset;
	/* the engine may have packed it (pack_weights): then its product is the packed one */
	ret = ccd_job_prepare_model(job, o, &c->regions, w, m->engine ? cce_model_weight_type(m->engine, w, t->type) : t->type,
	                            t->n_dims == 2 ? t->ne[1] : 1, t->ne[0], r->err, sizeof(r->err));
	if (ret) {
		free(job);
		return ret;
	}
	job->client = c;
	job->req_id = req->id;
	job->node = c->node;
	job->model = m;
	job->cancel = &m->cancel_jobs;
	m->users++;
	for (k = 0; k < job->nregions; k++)
		ccd_region_ref(job->regions[k]);
	c->in_flight++;
	ccd_pool_submit(s->pool, job);
	return 0;
}

static int h_op(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                struct reply *r)
{
	struct ccd_job job, *blk;
	uint64_t max_inflight = s->conf.v[CCD_CONF_MAX_INFLIGHT_PER_CLIENT];
	unsigned nparts, i;
	int inline_ok, ret, k;

	if (!req->op) {
		ret = fail(r, -EBADMSG, "op: missing");
		goto out_failed;
	}
	if (c->in_flight >= max_inflight) {
		ret = fail(r, -EBUSY, "max_inflight_per_client (%" PRIu64 ") reached", max_inflight);
		goto out_failed;
	}
	if ((req->op->model && req->op->model[0]) || (req->op->op && strcmp(req->op->op, "model_matvec") == 0)) {
		ret = model_op(s, c, req, r);
		if (ret)
			goto out_failed;
		return REPLY_DEFERRED;
	}
	ret = ccd_job_prepare(&job, req->op, &c->regions, r->err, sizeof(r->err));
	if (ret)
		goto out_failed;
	job.client = c;
	job.req_id = req->id;
	job.node = c->node;
	if (job.kind == CCK_KIND_MATRIX)
		inline_ok = job.work <= s->conf.v[CCD_CONF_INLINE_MAX_MATMUL];
	else
		inline_ok = job.work <= s->conf.v[CCD_CONF_INLINE_MAX_ELEMENTS];
	if (inline_ok) {
		/* Tiny: the front end computes it now, cheaper than a trip through a worker. */
		ccd_job_run(&job);
		if (job.code) {
			ccd_job_strerror(&job, r->err, sizeof(r->err));
			ret = job.code;
			goto out_failed;
		}
		s->jobs_done++;
		c->jobs_done++;
		r->u.op = (Cc__OpReply)CC__OP_REPLY__INIT;
		r->u.op.value = job.value;
		r->msg.body_case = CC__REPLY__BODY_OP;
		r->msg.op = &r->u.op;
		return 0;
	}

	nparts = ccd_job_plan(&job, ccd_pool_node_workers(s->pool, job.node), s->conf.v[CCD_CONF_SPLIT_MIN_ELEMENTS],
	                      s->conf.v[CCD_CONF_SPLIT_MIN_MATMUL]);
	blk = calloc(1 + (nparts > 1 ? nparts : 0), sizeof(*blk));
	if (!blk) {
		ret = fail(r, -ENOMEM, "op: out of memory");
		goto out_failed;
	}
	*blk = job;
	for (k = 0; k < blk->nregions; k++)
		ccd_region_ref(blk->regions[k]);
	c->in_flight++;
	if (nparts <= 1) {
		ccd_pool_submit(s->pool, blk);
		return REPLY_DEFERRED;
	}
	blk->parts_left = nparts;
	for (i = 0; i < nparts; i++) {
		ccd_job_part(blk, i, nparts, &blk[1 + i]);
		blk[1 + i].parent = blk;
		ccd_pool_submit(s->pool, &blk[1 + i]);
	}
	return REPLY_DEFERRED;

out_failed:
	s->jobs_failed++;
	c->jobs_failed++;
	return ret;
}

static void model_info(const struct ccd_server *s, const struct ccd_model *m, Cc__ModelInfo *mi);

/* Every model's info into r->minfo, pointed at by r->minfo_ptr; *n their number. -ENOMEM. */
static int model_infos(const struct ccd_server *s, struct reply *r, size_t *n)
{
	const struct ccd_model *m;
	size_t i = 0;

	*n = 0;
	if (!s->models.count)
		return 0;
	r->minfo = calloc(s->models.count, sizeof(*r->minfo));
	r->minfo_ptr = calloc(s->models.count, sizeof(*r->minfo_ptr));
	if (!r->minfo || !r->minfo_ptr)
		return -ENOMEM;
	for (m = s->models.all; m && i < s->models.count; m = m->next, i++) {
		model_info(s, m, &r->minfo[i]);
		r->minfo_ptr[i] = &r->minfo[i];
	}
	*n = i;
	return 0;
}

static int h_status(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                    struct reply *r)
{
	Cc__StatusReply *st = &r->u.status;

	*st = (Cc__StatusReply)CC__STATUS_REPLY__INIT;
	st->version = (char *)PACKAGE_VERSION;
	st->pid = (uint32_t)getpid();
	st->uptime_s = ccd_now_s() - s->start_s;
	st->tier = (char *)cck_tier();
	st->numa_nodes = (uint32_t)s->topo->nnodes;
	st->workers = ccd_pool_workers(s->pool);
	st->clients = s->clients.live;
	st->regions = s->shm.regions;
	st->region_bytes = s->shm.bytes;
	st->jobs_done = s->jobs_done;
	st->jobs_failed = s->jobs_failed;
	st->numa_simulated = s->topo->simulated != 0;
	st->models = s->models.count;
	st->model_bytes = s->models.bytes;
	for (const struct ccd_sess *ss = s->sessions; ss; ss = ss->fe_next)
		st->sessions++;
	st->kv_bytes = atomic_load(&s->kv_used);
	if (model_infos(s, r, &st->n_model_list) < 0)
		return fail(r, -ENOMEM, "out of memory");
	st->model_list = r->minfo_ptr;
	r->msg.body_case = CC__REPLY__BODY_STATUS;
	r->msg.status = st;
	return 0;
}

static int h_clients(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                     struct reply *r)
{
	size_t n = s->clients.live, i = 0;
	struct ccd_client *it;

	r->u.clients = (Cc__ClientsReply)CC__CLIENTS_REPLY__INIT;
	if (n) {
		r->infos = calloc(n, sizeof(*r->infos));
		r->info_ptr = calloc(n, sizeof(*r->info_ptr));
		if (!r->infos || !r->info_ptr)
			return fail(r, -ENOMEM, "clients: out of memory");
	}
	for (it = s->clients.all; it && i < n; it = it->next) {
		Cc__ClientInfo *ci = &r->infos[i];

		if (it->state != CCD_CLIENT_LIVE)
			continue;
		*ci = (Cc__ClientInfo)CC__CLIENT_INFO__INIT;
		ci->id = it->id;
		ci->pid = (uint32_t)it->pid;
		ci->uid = (uint32_t)geteuid(); /* the socket is private: every client is our user */
		ci->name = it->name;
		ci->regions = it->regions.mapped;
		ci->bytes = it->regions.bytes;
		ci->jobs = it->jobs_done;
		ci->in_flight = it->in_flight;
		ci->node = (uint32_t)it->node;
		r->info_ptr[i++] = ci;
	}
	r->u.clients.n_clients = i;
	r->u.clients.clients = r->info_ptr;
	r->msg.body_case = CC__REPLY__BODY_CLIENTS;
	r->msg.clients = &r->u.clients;
	return 0;
}

/* One crossover entry of op (named name): "measured" with its size, "never", or "unknown"; 0 if the op has none. */
static int crossover_entry(Cc__Crossover *x, int op, const char *name)
{
	size_t n = 0;
	int r = ccg_crossover(op, &n);

	*x = (Cc__Crossover)CC__CROSSOVER__INIT;
	x->op = (char *)name;
	if (r == -EAGAIN) {
		x->state = (char *)"unknown";
		return 1;
	}
	if (r < 0)
		return 0;
	x->state = (char *)(n == SIZE_MAX ? "never" : "measured");
	x->n = n == SIZE_MAX ? 0 : (uint64_t)n;
	return 1;
}

static void device_entry(Cc__OpenclDevice *d, const struct ccg_device_info *in)
{
	*d = (Cc__OpenclDevice)CC__OPENCL_DEVICE__INIT;
	d->index = (uint32_t)in->index;
	d->platform = (char *)in->platform;
	d->name = (char *)in->name;
	d->vendor = (char *)in->vendor;
	d->version = (char *)in->version;
	d->driver = (char *)in->driver;
	d->type = (char *)in->type;
	d->compute_units = in->compute_units;
	d->global_mem = in->global_mem;
	d->max_alloc = in->max_alloc;
	d->host_unified = in->host_unified != 0;
	d->fp64 = in->fp64 != 0;
	d->selected = in->selected != 0;
}

/* The backend, the OpenCL devices and the device in use (or why none), and every op's crossover. -ENOMEM. */
static int kernels_opencl(Cc__KernelsReply *k, struct reply *r)
{
	struct kernels_cl *kc = calloc(1, sizeof(*kc));
	const char *cache;
	size_t nx = 0, i;
	int d;

	if (!kc)
		return -ENOMEM;
	r->kcl = kc;
	/* OpenCL is set up at its first use (main.c): listing the devices is one. Quick once the kernels are cached. */
	ccg_init();
	cache = ccg_cache_path();
	kc->ndev = ccg_device_count();
	if (kc->ndev > 0) {
		kc->info = calloc((size_t)kc->ndev, sizeof(*kc->info));
		kc->dev = calloc((size_t)kc->ndev, sizeof(*kc->dev));
		kc->dev_ptr = calloc((size_t)kc->ndev, sizeof(*kc->dev_ptr));
		if (!kc->info || !kc->dev || !kc->dev_ptr)
			return -ENOMEM;
	}
	for (d = 0; d < kc->ndev; d++) {
		if (ccg_device_info(d, &kc->info[k->n_devices]) < 0)
			continue;
		device_entry(&kc->dev[k->n_devices], &kc->info[k->n_devices]);
		kc->dev_ptr[k->n_devices] = &kc->dev[k->n_devices];
		k->n_devices++;
	}
	for (i = 0; i < CCK_OP_COUNT; i++) {
		const char *name = cck_op_name((int)i);

		if (name && crossover_entry(&kc->xo[nx], (int)i, name)) {
			kc->xo_ptr[nx] = &kc->xo[nx];
			nx++;
		}
	}
	for (i = 0; i < CCD_ARRAY_SIZE(xo_qtypes); i++) {
		snprintf(kc->qname[i], sizeof(kc->qname[i]), "qmatvec_%s", cck_type_name(xo_qtypes[i]));
		if (crossover_entry(&kc->xo[nx], CCG_QOP(xo_qtypes[i]), kc->qname[i])) {
			kc->xo_ptr[nx] = &kc->xo[nx];
			nx++;
		}
	}
	k->backend = (char *)ccg_backend_name(ccg_get_backend());
	k->opencl = (char *)ccg_why();
	k->devices = kc->dev_ptr;
	k->n_crossovers = nx;
	k->crossovers = kc->xo_ptr;
	k->crossover_cache = (char *)(cache ? cache : "");
	return 0;
}

static int h_kernels(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                     struct reply *r)
{
	Cc__KernelsReply *k = &r->u.kernels;
	const char *host = cck_host_tier();
	size_t nt = 0, no = 0;
	int i;

	*k = (Cc__KernelsReply)CC__KERNELS_REPLY__INIT;
	k->tier = (char *)cck_tier();
	for (i = 0; i < CCK_TIER_COUNT; i++) {
		const char *name = cck_tier_name(i);

		if (!name)
			break;
		r->tiers[nt++] = (char *)name;
		if (host && !strcmp(name, host))
			break;
	}
	for (i = 0; i < CCK_OP_COUNT; i++) {
		const char *name = cck_op_name(i);
		int kind = cck_op_kind(i);

		if (!name || kind < 0 || kind >= CCK_KIND_COUNT)
			continue;
		r->ops[no] = (char *)name;
		r->kinds[no++] = (char *)kind_names[kind];
	}
	k->n_tiers = nt;
	k->tiers = r->tiers;
	k->n_ops = no;
	k->ops = r->ops;
	k->n_kinds = no;
	k->kinds = r->kinds;
	k->threads = ccd_pool_workers(s->pool);
	if (kernels_opencl(k, r) < 0)
		return fail(r, -ENOMEM, "kernels: out of memory");
	k->calibrating = atomic_load(&s->calib_running) != 0;
	r->msg.body_case = CC__REPLY__BODY_KERNELS;
	r->msg.kernels = k;
	return 0;
}

/* ---- kernels_set: the backend, the OpenCL device and the crossovers, at run time ------------------------------ */

static int admin_check(const struct peer *p, struct reply *r, const char *what);

/*
 * Measure every crossover again, off the front end (tens of seconds on PoCL). With one thread per op, as ccd's
 * kernel jobs run libcck (a crossover measured at an op's first large call in ccd is measured so too). Shutdown
 * sets calib_stop: the thread ends after the op it is measuring.
 */
static void *calibrate_main(void *arg)
{
	struct ccd_server *s = arg;
	double t0 = ccd_now_s();
	int done = 0, failed = 0, rc;
	size_t i;

	cck_set_local_threads(1);
	for (i = 0; i < CCK_OP_COUNT + CCD_ARRAY_SIZE(xo_qtypes) && !atomic_load(&s->calib_stop); i++) {
		int op = i < CCK_OP_COUNT ? (int)i : CCG_QOP(xo_qtypes[i - CCK_OP_COUNT]);

		if (i < CCK_OP_COUNT && !cck_op_name(op))
			continue;
		rc = ccg_calibrate(op, 1);
		if (rc == -EINVAL)
			continue; /* an op without a crossover of its own */
		if (rc < 0) {
			ccd_warn("OpenCL: calibrating %s: %s",
			         i < CCK_OP_COUNT ? cck_op_name(op) : "a quantized matvec", strerror(-rc));
			failed++;
		} else {
			done++;
		}
	}
	if (atomic_load(&s->calib_stop))
		ccd_info("OpenCL: calibration stopped by the shutdown after %d crossovers", done);
	else
		ccd_info("OpenCL: calibrated %d crossovers in %.1f s%s", done, ccd_now_s() - t0,
		         failed ? " (some failed: see above)" : "");
	atomic_store(&s->calib_running, 0);
	return NULL;
}

/* Stop a calibration (after its current op) and wait for it. */
static void calibrate_join(struct ccd_server *s)
{
	if (!s->calib_joinable)
		return;
	atomic_store(&s->calib_stop, 1);
	pthread_join(s->calib, NULL);
	s->calib_joinable = 0;
}

static int calibrate_start(struct ccd_server *s, const struct ccd_client *c, struct reply *r)
{
	int rc;

	if (ccg_init() < 0)
		return fail(r, -ENODEV, "calibrate: no OpenCL device: %s", ccg_why());
	if (atomic_load(&s->calib_running)) {
		ccd_info("client %" PRIu64 ": calibrate: a calibration is running already", c->id);
		return 0;
	}
	if (s->calib_joinable) { /* the last one is done: collect its thread */
		pthread_join(s->calib, NULL);
		s->calib_joinable = 0;
	}
	atomic_store(&s->calib_stop, 0);
	atomic_store(&s->calib_running, 1);
	rc = pthread_create(&s->calib, NULL, calibrate_main, s);
	if (rc) {
		atomic_store(&s->calib_running, 0);
		return fail(r, -rc, "calibrate: cannot start a thread: %s", strerror(rc));
	}
	s->calib_joinable = 1;
	ccd_info("client %" PRIu64 ": measuring every op's crossover on %s (in the background)", c->id, ccg_why());
	return 0;
}

/* Whether selection sel (as CC_OPENCL_DEVICE takes it) names the device in use ("none": whether there is none). */
static int device_in_use(const char *sel)
{
	struct ccg_device_info in;
	const char *env = getenv("CC_OPENCL_DEVICE");
	int i;

	if (!strcasecmp(sel, "auto") && env && *env)
		sel = env; /* what auto meant when OpenCL was set up */
	i = ccg_match(sel);
	if (i == -ENODEV)
		return !ccg_available();
	return i >= 0 && ccg_device_info(i, &in) == 0 && in.selected;
}

/*
 * The device: ccg_select works until OpenCL is set up (at its first use: main.c), and the kernels reply sets it up
 * at once. After that a device cannot change under the clients' resident weights: -EBUSY unless it is the same.
 */
static int kernels_device(const struct ccd_client *c, const char *sel, struct reply *r)
{
	int rc;

	if (strlen(sel) > 127) /* ccg_select's limit (one built without OpenCL takes anything) */
		return fail(r, -EINVAL, "device: a selection is at most 127 characters, not %zu", strlen(sel));
	rc = ccg_select(strcasecmp(sel, "auto") ? sel : NULL);
	if (rc == -EBUSY) {
		ccg_init(); /* a set-up under way (another thread) finishes first */
		if (device_in_use(sel))
			return 0;
		if (!ccg_available())
			return fail(r, -EBUSY,
			            "device: OpenCL is already set up, without a device (%s): restart ccd with "
			            "-o opencl_device=%.128s",
			            ccg_why(), sel);
		return fail(r, -EBUSY,
		            "device: the OpenCL device is already set up (%s): restart ccd with "
		            "-o opencl_device=%.128s",
		            ccg_why(), sel);
	}
	if (rc < 0)
		return fail(r, rc, "device: '%.64s': %s", sel, strerror(-rc));
	ccd_info("client %" PRIu64 ": OpenCL device selection '%s'", c->id, sel);
	if (ccg_init() < 0 && strcasecmp(sel, "none"))
		return fail(r, -ENODEV,
		            "device: '%.128s' gives no OpenCL device: %s; ops run on the CPU until ccd restarts", sel,
		            ccg_why());
	return 0;
}

static int h_kernels_set(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                         struct reply *r)
{
	const Cc__KernelsSet *ks = req->kernels_set;
	int backend = -1, rc;

	if (!ks)
		return fail(r, -EBADMSG, "kernels_set: missing");
	rc = admin_check(p, r, "kernels_set");
	if (rc)
		return rc;
	if (ks->backend && ks->backend[0]) {
		backend = ccg_backend_lookup(ks->backend);
		if (backend < 0)
			return fail(r, -EINVAL, "backend: '%.64s' is not auto, cpu or opencl", ks->backend);
	}
	if (ks->device && ks->device[0]) {
		rc = kernels_device(c, ks->device, r);
		if (rc)
			return rc;
	}
	if (backend >= 0 && backend != ccg_get_backend()) {
		ccd_info("client %" PRIu64 " (pid %ld): backend %s (was %s), for every client's later ops", c->id,
		         (long)c->pid, ccg_backend_name(backend), ccg_backend_name(ccg_get_backend()));
		ccg_set_backend(backend);
	}
	if (ks->calibrate) {
		rc = calibrate_start(s, c, r);
		if (rc)
			return rc;
	}
	return h_kernels(s, p, c, req, r);
}

static int h_shutdown(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                      struct reply *r)
{
	char why[64];

	snprintf(why, sizeof(why), "requested by client %" PRIu64, c->id);
	begin_stop(s, why);
	return 0;
}

static int h_ping(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                  struct reply *r)
{
	return 0;
}

static int h_bye(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                 struct reply *r)
{
	ccd_info("client %" PRIu64 " said bye: freeing %" PRIu64 " regions (%" PRIu64 " bytes)", c->id,
	         c->regions.mapped, c->regions.bytes);
	client_leave(s, c);
	return 0;
}

/* ---- models ------------------------------------------------------------------- */

/* Load and unload change what every client shares: only ccd's own user or root. */
static int admin_check(const struct peer *p, struct reply *r, const char *what)
{
	uid_t me = geteuid();

	if (!p->have_cred)
		return fail(r, -EPERM, "%s: the sender's credentials are unknown (not a local ipc:// connection)",
		            what);
	if (p->uid != 0 && p->uid != me)
		return fail(r, -EPERM, "%s: only ccd's user (uid %lu) or root may do this; you are uid %lu", what,
		            (unsigned long)me, (unsigned long)p->uid);
	return 0;
}

/* Fill mi from m; the strings point into m (valid until m is freed). */
static void model_info(const struct ccd_server *s, const struct ccd_model *m, Cc__ModelInfo *mi)
{
	uint64_t done, total;
	const struct ccd_sess *ss;

	*mi = (Cc__ModelInfo)CC__MODEL_INFO__INIT;
	mi->name = (char *)m->name;
	mi->path = m->path;
	mi->state = (char *)ccd_model_state_name(m->state);
	mi->requested_mode = (char *)ccm_mode_name(m->req_mode);
	ccd_model_progress(m, &done, &total);
	mi->loaded_bytes = done;
	mi->bytes = total;
	mi->seconds = ccd_now_s() - m->t0;
	if (m->state == CCD_MODEL_LOADING) {
		mi->mode = (char *)ccm_mode_name(m->req_mode);
		return; /* the rest is the loader thread's until it is done */
	}
	mi->seconds = m->seconds;
	mi->arch = (char *)m->arch;
	mi->params = m->params;
	mi->tensors = m->ntensors;
	mi->file_bytes = m->file_bytes;
	mi->users = m->users;
	mi->error = (char *)m->err;
	mi->engine = (char *)m->engine_note;
	mi->gpu_layers = m->gpu_layers;
	mi->device_bytes = m->device_bytes;
	for (ss = s->sessions; ss; ss = ss->fe_next)
		if (ss->model == m) {
			mi->sessions++;
			mi->kv_bytes += atomic_load(&ss->kv_bytes);
		}
	if (m->sched)
		ccd_sched_stats(m->sched, &mi->gen_tokens, &mi->tps_1m, &mi->active);
	if (m->have_region) {
		mi->loaded_bytes = m->region.len;
		mi->bytes = m->region.len;
		mi->mode = (char *)ccm_mode_name(m->region.mode);
		mi->placement = (char *)m->region.placement;
		mi->note = (char *)m->region.note;
		mi->huge_pages = m->region.huge != 0;
	} else {
		mi->mode = (char *)ccm_mode_name(m->req_mode);
	}
}

/* A reply carrying one model's info, sent to a waiter. */
static void send_model_reply(struct ccd_server *s, const struct ccd_waiter *w, const struct ccd_model *m, int code,
                             const char *err)
{
	Cc__Reply msg = CC__REPLY__INIT;
	Cc__ModelsReply mr = CC__MODELS_REPLY__INIT;
	Cc__ModelInfo mi, *mip = &mi;

	msg.id = w->req_id;
	msg.code = code;
	if (code) {
		msg.error = (char *)(err && err[0] ? err : strerror(-code));
	} else if (m) {
		model_info(s, m, &mi);
		mr.n_models = 1;
		mr.models = &mip;
		msg.body_case = CC__REPLY__BODY_MODELS;
		msg.models = &mr;
	}
	send_reply(s, w->ident, w->identlen, &msg);
}

static void sessions_drop_model(struct ccd_server *s, struct ccd_model *m);

/* Unload m now (no users left): answer its waiters and free it. */
static void model_release(struct ccd_server *s, struct ccd_model *m)
{
	struct ccd_waiter *w;

	ccd_info("model '%s' unloaded (%" PRIu64 " bytes freed)", m->name,
	         m->have_region ? (uint64_t)m->region.len : 0);
	for (w = m->load_waiters; w; w = w->next)
		send_model_reply(s, w, NULL, -ECANCELED, "the model was unloaded before its load finished");
	for (w = m->unload_waiters; w; w = w->next)
		send_model_reply(s, w, NULL, 0, NULL);
	sessions_drop_model(s, m);
	ccd_model_free(&s->models, m);
}

/* A model that jobs may use now, or NULL with the reason in r and *code. */
static struct ccd_model *model_find_ready(struct ccd_server *s, const char *name, struct reply *r, int *code)
{
	struct ccd_model *m = ccd_model_find(&s->models, name);
	char n[CCD_MODEL_NAME_MAX];

	ccd_sanitize(n, sizeof(n), name);
	if (!m)
		*code = fail(r, -ENOENT, "no model named '%s'", n);
	else if (m->state == CCD_MODEL_LOADING)
		*code = fail(r, -EAGAIN, "model '%s' is still loading", n);
	else if (m->state == CCD_MODEL_UNLOADING)
		*code = fail(r, -ENOENT, "model '%s' is being unloaded", n);
	else if (m->state != CCD_MODEL_READY)
		*code = fail(r, -ENOENT, "model '%s' failed to load: %s", n, m->err);
	else
		return m;
	return NULL;
}

/* A job that used a model is finished: the last one lets a waiting unload go on. */
static void model_job_done(struct ccd_server *s, struct ccd_job *job)
{
	struct ccd_model *m = job->model;

	CCD_ASSERT(m->users > 0);
	m->users--;
	if (m->state == CCD_MODEL_UNLOADING && m->users == 0)
		model_release(s, m);
}

/* A loader thread finished: answer whoever waits, log, drop failed live loads. */
static void model_loaded(void *arg, struct ccd_model *m)
{
	struct ccd_server *s = arg;
	struct ccd_waiter *w;

	if (m->code == 0)
		ccd_info("model '%s' loaded: %s, %" PRIu64 " bytes in %.3f s (%s%s%s, %s)", m->name, m->path,
		         (uint64_t)m->region.len, m->seconds, ccm_mode_name(m->region.mode),
		         m->region.note[0] ? ": " : "", m->region.note, m->region.placement);
	else
		ccd_error("model '%s' failed to load: %s", m->name, m->err);
	if (m->unload_waiters || s->stopping) {
		model_release(s, m);
		return;
	}
	for (w = m->load_waiters; w; w = w->next)
		send_model_reply(s, w, m, m->code, m->err);
	/* A failed live load was answered; a failed preload stays listed so `ccctl models` says why. */
	if (m->code && m->load_waiters) {
		ccd_model_free(&s->models, m);
		return;
	}
	/* answered once: a later unload must not answer them again */
	ccd_waiters_free(m->load_waiters);
	m->load_waiters = NULL;
}

static int h_model_load(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                        struct reply *r)
{
	const Cc__ModelLoad *l = req->model_load;
	struct ccm_place place = {CCM_PLACE_INTERLEAVE, 0};
	struct ccd_model *m;
	int mode = CCM_MODE_URING, ret;

	if (!l || !l->name || !l->path)
		return fail(r, -EBADMSG, "model_load: missing");
	ret = admin_check(p, r, "load");
	if (ret)
		return ret;
	if (l->mode && l->mode[0]) {
		mode = ccm_mode_parse(l->mode);
		if (mode < 0 || mode == CCM_MODE_READ)
			return fail(r, -EINVAL, "load: mode must be 'uring' or 'mmap'");
	}
	if (l->placement && l->placement[0] && ccm_place_parse(l->placement, &place) < 0)
		return fail(r, -EINVAL, "load: NUMA placement must be 'interleave', 'node=N' or 'local'");
	ret = ccd_model_start(&s->models, l->name, l->path, (enum ccm_mode)mode, &place,
	                      (unsigned)s->conf.v[CCD_CONF_MAX_MODELS], &m, r->err, sizeof(r->err));
	if (ret)
		return ret;
	ccd_info("client %" PRIu64 ": loading model '%s' from %s (%s)", c->id, m->name, m->path,
	         ccm_mode_name(m->req_mode));
	if (ccd_waiter_add(&m->load_waiters, p->ident, p->len, req->id) < 0) {
		atomic_store(&m->prog.cancel, 1);
		return fail(r, -ENOMEM, "out of memory");
	}
	return REPLY_DEFERRED;
}

static int h_model_unload(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                          struct reply *r)
{
	const Cc__ModelUnload *u = req->model_unload;
	struct ccd_model *m;
	int ret;

	if (!u || !u->name)
		return fail(r, -EBADMSG, "model_unload: missing");
	ret = admin_check(p, r, "unload");
	if (ret)
		return ret;
	m = ccd_model_find(&s->models, u->name);
	if (!m)
		return fail(r, -ENOENT, "no model named '%.64s'", u->name);
	if (m->state == CCD_MODEL_FAILED || (m->state != CCD_MODEL_LOADING && m->users == 0)) {
		ccd_info("client %" PRIu64 ": unloading model '%s'", c->id, m->name);
		model_release(s, m);
		return 0;
	}
	if (ccd_waiter_add(&m->unload_waiters, p->ident, p->len, req->id) < 0)
		return fail(r, -ENOMEM, "out of memory");
	if (m->state == CCD_MODEL_LOADING) {
		/* Cancel the load; model_loaded() releases it when the loader thread stops. */
		ccd_info("client %" PRIu64 ": unloading model '%s' while it loads: cancelling the load", c->id,
		         m->name);
		atomic_store(&m->prog.cancel, 1);
		return REPLY_DEFERRED;
	}
	ccd_info("client %" PRIu64 ": unloading model '%s': %s %u job(s)", c->id, m->name,
	         u->force ? "cancelling" : "waiting for", m->users);
	m->state = CCD_MODEL_UNLOADING;
	if (u->force)
		atomic_store(&m->cancel_jobs, CCD_CANCEL_UNLOAD);
	return REPLY_DEFERRED;
}

static int h_models(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                    struct reply *r)
{
	r->u.models = (Cc__ModelsReply)CC__MODELS_REPLY__INIT;
	if (model_infos(s, r, &r->u.models.n_models) < 0)
		return fail(r, -ENOMEM, "out of memory");
	r->u.models.models = r->minfo_ptr;
	r->msg.body_case = CC__REPLY__BODY_MODELS;
	r->msg.models = &r->u.models;
	return 0;
}

static int h_model_show(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                        struct reply *r)
{
	const Cc__ModelShow *sh = req->model_show;
	struct ccd_model *m;

	if (!sh || !sh->name)
		return fail(r, -EBADMSG, "model_show: missing");
	m = ccd_model_find(&s->models, sh->name);
	if (!m)
		return fail(r, -ENOENT, "no model named '%.64s'", sh->name);
	if (m->state == CCD_MODEL_LOADING)
		return fail(r, -EAGAIN, "model '%s' is still loading", m->name);
	if (!m->gguf)
		return fail(r, -ENOENT, "model '%s' failed to load: %s", m->name, m->err);
	r->minfo = calloc(1, sizeof(*r->minfo));
	r->json = ccm_gguf_json(m->gguf, 64);
	if (!r->minfo || !r->json)
		return fail(r, -ENOMEM, "out of memory");
	model_info(s, m, r->minfo);
	r->u.show = (Cc__ModelShowReply)CC__MODEL_SHOW_REPLY__INIT;
	r->u.show.info = r->minfo;
	r->u.show.gguf_json = r->json;
	r->msg.body_case = CC__REPLY__BODY_MODEL_SHOW;
	r->msg.model_show = &r->u.show;
	return 0;
}

/* ---- inference ---------------------------------------------------------------- */

/* The model's engine, or NULL with the reason (no model, still loading, not an architecture we run...). */
static struct ccd_model *engine_model(struct ccd_server *s, const char *name, int need_vocab, struct reply *r,
                                      int *code)
{
	struct ccd_model *m = model_find_ready(s, name, r, code);

	if (!m)
		return NULL;
	if (!m->engine || (need_vocab && !m->vocab)) {
		*code = fail(r, -EOPNOTSUPP, "model '%s' cannot run inference: %s", m->name, m->engine_note);
		return NULL;
	}
	return m;
}

/* Queue an inference job on the client's node; the job is one of the model's users. */
static int submit_infer(struct ccd_server *s, struct ccd_client *c, const Cc__Request *req, struct ccd_model *m,
                        struct ccd_infer *inf, struct ccd_job *job)
{
	int k;

	inf->model = m->engine;
	inf->vocab = m->vocab;
	inf->gguf = m->gguf;
	inf->threads = (unsigned)s->conf.v[CCD_CONF_ENGINE_THREADS];
	inf->max_ctx = (uint32_t)s->conf.v[CCD_CONF_MAX_CTX];
	inf->cancel_model = &m->cancel_jobs;
	job->type = CCD_JOB_INFER;
	job->infer = inf;
	job->client = c;
	job->req_id = req->id;
	job->node = c->node;
	job->model = m;
	m->users++;
	for (k = 0; k < job->nregions; k++)
		ccd_region_ref(job->regions[k]);
	c->in_flight++;
	ccd_pool_submit(s->pool, job);
	return REPLY_DEFERRED;
}

/* ---- sessions and generation (sched.c runs them) ---------------------------------------------------------- */

/* The model's scheduler, started at its first session. */
static struct ccd_sched *model_sched(struct ccd_server *s, struct ccd_model *m, struct reply *r, int *code)
{
	struct ccd_sched_conf sc = {
	    .model = m->engine,
	    .vocab = m->vocab,
	    .gguf = m->gguf,
	    .cancel_model = &m->cancel_jobs,
	    .name = m->name,
	    .threads = (unsigned)s->conf.v[CCD_CONF_ENGINE_THREADS],
	    .batch_tokens = (uint32_t)s->conf.v[CCD_CONF_BATCH_TOKENS],
	    .share_prefixes = s->conf.v[CCD_CONF_SHARE_PREFIXES] == 1,
	    .max_ctx = (uint32_t)s->conf.v[CCD_CONF_MAX_CTX],
	    .kv_used = &s->kv_used,
	    .kv_budget = s->conf.v[CCD_CONF_KV_BUDGET],
	    .evq = &s->evq,
	};
	int ret;

	if (m->sched)
		return m->sched;
	ret = ccd_sched_new(&sc, &m->sched, r->err, sizeof(r->err));
	if (ret) {
		*code = ret;
		return NULL;
	}
	return m->sched;
}

/* Take ss out of the front end's list and hand it to its scheduler to free (its running turn is cancelled). */
static void session_drop(struct ccd_server *s, struct ccd_sess *ss)
{
	struct ccd_sess **pp;
	struct ccd_model *m = ss->model;

	for (pp = &s->sessions; *pp && *pp != ss; pp = &(*pp)->fe_next)
		;
	CCD_ASSERT(*pp == ss);
	*pp = ss->fe_next;
	/* the budget is free at once (a new session may take it); the memory goes when the scheduler frees it */
	atomic_fetch_sub(&s->kv_used, atomic_exchange(&ss->kv_bytes, 0));
	ccd_sched_detach(m->sched, ss);
}

/* Drop the sessions of client c, or of model m (NULL: any); returns how many. */
static unsigned sessions_drop_where(struct ccd_server *s, const struct ccd_client *c, const struct ccd_model *m)
{
	struct ccd_sess *ss, *next;
	unsigned n = 0;

	for (ss = s->sessions; ss; ss = next) {
		next = ss->fe_next;
		if ((!c || ss->client == c) && (!m || ss->model == m)) {
			session_drop(s, ss);
			n++;
		}
	}
	return n;
}

static void sessions_drop_client(struct ccd_server *s, struct ccd_client *c)
{
	unsigned n = sessions_drop_where(s, c, NULL);

	if (n)
		ccd_info("client %" PRIu64 ": %u session(s) freed", c->id, n);
}

/* Before m is freed: its sessions go (no turn runs: the model has no users). */
static void sessions_drop_model(struct ccd_server *s, struct ccd_model *m)
{
	sessions_drop_where(s, NULL, m);
}

/* Idle sessions past session_idle_s are freed. */
static void sessions_expire(struct ccd_server *s)
{
	uint64_t now = ccd_now_ms(), idle = s->conf.v[CCD_CONF_SESSION_IDLE_S] * 1000;
	struct ccd_sess *ss, *next;

	for (ss = s->sessions; ss; ss = next) {
		next = ss->fe_next;
		if (ss->turn || ss->oneshot || now - ss->last_used_ms < idle)
			continue;
		ccd_info("session %" PRIu64 " of client %" PRIu64 " idle for %" PRIu64 " s: freed", ss->id, ss->client_id,
		         (now - ss->last_used_ms) / 1000);
		session_drop(s, ss);
	}
}

static struct ccd_sess *session_find(struct ccd_server *s, const struct ccd_client *c, uint64_t id)
{
	struct ccd_sess *ss;

	for (ss = s->sessions; ss; ss = ss->fe_next)
		if (ss->id == id && ss->client == c && !ss->oneshot)
			return ss;
	return NULL;
}

/* A new session of c on m (n_ctx 0: one-shot), in the front end's list; NULL with the reason. */
static struct ccd_sess *session_open(struct ccd_server *s, struct ccd_client *c, struct ccd_model *m, uint32_t n_ctx,
                                     int oneshot, struct reply *r, int *code)
{
	uint64_t max = s->conf.v[CCD_CONF_MAX_SESSIONS_PER_CLIENT], have = 0;
	struct ccd_sched *sc = model_sched(s, m, r, code);
	struct ccd_sess *ss;

	if (!sc)
		return NULL;
	for (ss = s->sessions; ss; ss = ss->fe_next)
		have += ss->client == c;
	if (have >= max) {
		*code = fail(r, -ENOSPC, "this client has %" PRIu64 " sessions: max_sessions_per_client is %" PRIu64, have,
		             max);
		return NULL;
	}
	*code = ccd_sess_new(sc, oneshot ? 0 : n_ctx, &ss, r->err, sizeof(r->err));
	if (*code)
		return NULL;
	ss->id = ++s->next_sess;
	ss->client_id = c->id;
	ss->pid = (int)c->pid;
	ss->client = c;
	ss->model = m;
	ss->last_used_ms = ccd_now_ms();
	ss->fe_next = s->sessions;
	s->sessions = ss;
	ccd_sched_attach(sc, ss);
	return ss;
}

static int h_session_new(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                         struct reply *r)
{
	const Cc__SessionNew *sn = req->session_new;
	uint32_t n_ctx;
	struct ccd_model *m;
	struct ccd_sess *ss;
	int ret;

	if (!sn || !sn->model || !sn->model[0])
		return fail(r, -EBADMSG, "session_new: no model named");
	m = engine_model(s, sn->model, 1, r, &ret);
	if (!m)
		return ret;
	n_ctx = sn->n_ctx ? sn->n_ctx : (uint32_t)s->conf.v[CCD_CONF_SESSION_CTX];
	if (n_ctx < 16)
		return fail(r, -EINVAL, "session_new: a context of %u positions is too small (16 at least)", n_ctx);
	ss = session_open(s, c, m, n_ctx, 0, r, &ret);
	if (!ss)
		return ret;
	ccd_debug("client %" PRIu64 ": session %" PRIu64 " on '%s', %u positions", c->id, ss->id, m->name, ss->n_ctx);
	r->u.sess = (Cc__SessionReply)CC__SESSION_REPLY__INIT;
	r->u.sess.session = ss->id;
	r->u.sess.n_ctx = ss->n_ctx;
	r->u.sess.kv_bytes = atomic_load(&ss->kv_bytes);
	r->msg.body_case = CC__REPLY__BODY_SESSION;
	r->msg.session = &r->u.sess;
	return 0;
}

static int h_session_free(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                          struct reply *r)
{
	struct ccd_sess *ss;

	if (!req->session_free)
		return fail(r, -EBADMSG, "session_free: missing");
	ss = session_find(s, c, req->session_free->session);
	if (!ss)
		return fail(r, -ENOENT, "no session %" PRIu64 " of this client", req->session_free->session);
	session_drop(s, ss);
	return 0;
}

static int h_cancel(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                    struct reply *r)
{
	struct ccd_sess *ss;

	if (!req->cancel)
		return fail(r, -EBADMSG, "cancel: missing");
	for (ss = s->sessions; ss; ss = ss->fe_next)
		if (ss->client == c && ss->turn && ss->turn->req_id == req->cancel->request) {
			atomic_store(&ss->cancel, 1);
			return 0;
		}
	return fail(r, -ENOENT, "no generation with request id %" PRIu64 " is running for this client",
	            req->cancel->request);
}

static const char *const sess_state_names[] = {"idle", "queued", "prefill", "decode"};

static int h_sessions(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                      struct reply *r)
{
	uint64_t now = ccd_now_ms();
	struct ccd_sess *ss;
	size_t n = 0, i = 0;

	for (ss = s->sessions; ss; ss = ss->fe_next)
		n++;
	r->u.sessions = (Cc__SessionsReply)CC__SESSIONS_REPLY__INIT;
	if (n) {
		r->sinfo = calloc(n, sizeof(*r->sinfo));
		r->sinfo_ptr = calloc(n, sizeof(*r->sinfo_ptr));
		if (!r->sinfo || !r->sinfo_ptr)
			return fail(r, -ENOMEM, "out of memory");
	}
	for (ss = s->sessions; ss; ss = ss->fe_next, i++) {
		Cc__SessionInfo *si = &r->sinfo[i];
		int st = atomic_load(&ss->state);

		*si = (Cc__SessionInfo)CC__SESSION_INFO__INIT;
		si->id = ss->id;
		si->client = ss->client_id;
		si->pid = (uint32_t)ss->pid;
		si->model = ((struct ccd_model *)ss->model)->name;
		si->n_past = atomic_load(&ss->n_past);
		si->n_ctx = ss->n_ctx;
		si->kv_bytes = atomic_load(&ss->kv_bytes);
		si->state = (char *)(st >= 0 && st <= CCD_SESS_DECODE ? sess_state_names[st] : "?");
		si->gen_tokens = atomic_load(&ss->gen_total);
		si->idle_s = ss->turn ? 0 : (double)(now - ss->last_used_ms) / 1000.0;
		si->oneshot = ss->oneshot != 0;
		r->sinfo_ptr[i] = si;
	}
	r->u.sessions.n_sessions = i;
	r->u.sessions.sessions = r->sinfo_ptr;
	r->u.sessions.kv_bytes = atomic_load(&s->kv_used);
	r->u.sessions.kv_budget = s->conf.v[CCD_CONF_KV_BUDGET];
	r->msg.body_case = CC__REPLY__BODY_SESSIONS;
	r->msg.sessions = &r->u.sessions;
	return 0;
}

/* A generate request as a turn (validated here; the scheduler reports the rest). */
static int make_turn(struct ccd_server *s, const Cc__Request *req, struct reply *r, struct ccd_turn **ret)
{
	const Cc__Generate *g = req->generate;
	uint64_t max_gen = s->conf.v[CCD_CONF_MAX_GEN_TOKENS];
	struct ccd_turn *t;

	if (g->max_tokens > max_gen)
		return fail(r, -EINVAL, "max_tokens %u is more than max_gen_tokens (%" PRIu64 ")", g->max_tokens,
		            max_gen);
	if (g->n_stop > 16)
		return fail(r, -EINVAL, "at most 16 stop strings, got %zu", g->n_stop);
	t = ccd_turn_new();
	if (!t)
		return fail(r, -ENOMEM, "out of memory");
	t->req_id = req->id;
	t->t_arrival = ccd_now_s();
	t->raw = g->raw;
	t->stream = g->stream;
	t->ignore_eos = g->ignore_eos;
	t->max_tokens = g->max_tokens ? g->max_tokens : (uint32_t)(max_gen < 128 ? max_gen : 128);
	t->samp.temp = g->temp;
	t->samp.top_k = g->top_k;
	t->samp.top_p = g->top_p == 0 ? 1.0f : g->top_p;
	t->samp.min_p = g->min_p;
	t->samp.repeat_penalty = g->repeat_penalty == 0 ? 1.0f : g->repeat_penalty;
	t->samp.repeat_last_n = g->repeat_last_n;
	t->samp.seed = g->seed;
	if (cce_sampling_check(&t->samp, r->err, sizeof(r->err)) < 0) {
		ccd_turn_free(t);
		return -EINVAL;
	}
	t->prompt = strdup(g->prompt);
	t->stop = calloc(g->n_stop + 1, sizeof(*t->stop));
	if (!t->prompt || !t->stop) {
		ccd_turn_free(t);
		return fail(r, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < g->n_stop; i++) {
		t->stop[i] = strdup(g->stop[i] ? g->stop[i] : "");
		if (!t->stop[i]) {
			ccd_turn_free(t);
			return fail(r, -ENOMEM, "out of memory");
		}
		t->nstop++;
	}
	*ret = t;
	return 0;
}

static int h_generate(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                      struct reply *r)
{
	const Cc__Generate *g = req->generate;
	struct ccd_model *m;
	struct ccd_sess *ss = NULL;
	struct ccd_turn *t = NULL;
	int ret;

	if (!g || !g->prompt || (!g->session && !g->model))
		return fail(r, -EBADMSG, "generate: missing");
	if (c->in_flight >= s->conf.v[CCD_CONF_MAX_INFLIGHT_PER_CLIENT])
		return fail(r, -EBUSY, "max_inflight_per_client reached");
	if (g->session) {
		ss = session_find(s, c, g->session);
		if (!ss)
			return fail(r, -ENOENT, "no session %" PRIu64 " of this client", g->session);
		if (ss->turn)
			return fail(r, -EBUSY, "session %" PRIu64 " is already generating (request %" PRIu64 ")", ss->id,
			            ss->turn->req_id);
		m = ss->model;
		if (m->state != CCD_MODEL_READY)
			return fail(r, -ENOENT, "the model of session %" PRIu64 " is being unloaded", ss->id);
	} else {
		if (!g->prompt[0])
			return fail(r, -EINVAL, "empty prompt");
		m = engine_model(s, g->model, 1, r, &ret);
		if (!m)
			return ret;
	}
	ret = make_turn(s, req, r, &t);
	if (ret)
		return ret;
	if (!g->session) {
		ss = session_open(s, c, m, 0, 1, r, &ret);
		if (!ss) {
			ccd_turn_free(t);
			return ret;
		}
	}
	t->sess_id = ss->id;
	t->client = c;
	t->model = m;
	ss->turn = t;
	m->users++;
	c->in_flight++;
	s->turns_running++;
	ccd_sched_submit(m->sched, ss, t);
	return REPLY_DEFERRED;
}

/* A turn ended (its final reply was sent): the session is idle again, the client and the model are released. */
static void turn_done(struct ccd_server *s, struct ccd_turn *t, int code)
{
	struct ccd_client *c = t->client;
	struct ccd_model *m = t->model;
	struct ccd_sess *ss;

	for (ss = s->sessions; ss; ss = ss->fe_next)
		if (ss->id == t->sess_id)
			break;
	if (ss) {
		ss->turn = NULL;
		ss->last_used_ms = ccd_now_ms();
		if (ss->oneshot)
			session_drop(s, ss);
	}
	if (code) {
		s->jobs_failed++;
		c->jobs_failed++;
	} else {
		s->jobs_done++;
		c->jobs_done++;
	}
	s->turns_running--;
	ccd_turn_free(t);
	ccd_clients_job_end(&s->clients, c);
	CCD_ASSERT(m->users > 0);
	if (--m->users == 0 && m->state == CCD_MODEL_UNLOADING)
		model_release(s, m);
}

/* What the schedulers reported: stream pieces and final replies to their clients. */
static void drain_events(struct ccd_server *s)
{
	struct ccd_event *e = ccd_evq_take(&s->evq), *next;

	for (; e; e = next) {
		struct ccd_client *c = e->turn->client;

		next = e->next;
		if (c->state == CCD_CLIENT_LIVE) {
			zmq_msg_t msg;

			if (zmq_msg_init_size(&msg, e->len) == 0) {
				memcpy(zmq_msg_data(&msg), e->data, e->len);
				if (zmq_send(s->router, c->ident, c->identlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
				    zmq_msg_send(&msg, s->router, ZMQ_DONTWAIT) < 0) {
					ccd_debug("generation reply to client %" PRIu64 " not sent: %s", c->id,
					          zmq_strerror(errno));
					zmq_msg_close(&msg);
				}
			}
		}
		if (e->final)
			turn_done(s, e->turn, e->code);
		free(e);
	}
}

static int h_logits(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                    struct reply *r)
{
	const Cc__Logits *l = req->logits;
	struct ccd_infer *inf;
	struct ccd_job *job;
	struct ccd_model *m;
	int ret;

	if (!l || !l->model)
		return fail(r, -EBADMSG, "logits: missing");
	if (c->in_flight >= s->conf.v[CCD_CONF_MAX_INFLIGHT_PER_CLIENT])
		return fail(r, -EBUSY, "max_inflight_per_client reached");
	m = engine_model(s, l->model, 0, r, &ret);
	if (!m)
		return ret;
	if (l->n_tokens == 0)
		return fail(r, -EINVAL, "logits: no tokens");
	if (l->top > 1000)
		return fail(r, -EINVAL, "logits: top %u is more than 1000", l->top);
	inf = calloc(1, sizeof(*inf));
	job = calloc(1, sizeof(*job));
	if (!inf || !job || !(inf->ids = malloc(l->n_tokens * sizeof(int32_t)))) {
		ccd_infer_free(inf);
		free(job);
		return fail(r, -ENOMEM, "out of memory");
	}
	inf->kind = CCD_INFER_LOGITS;
	memcpy(inf->ids, l->tokens, l->n_tokens * sizeof(int32_t));
	inf->nids = l->n_tokens;
	inf->top = l->top;
	if (l->output) {
		ret = ccd_job_out_tensor(job, l->output, &c->regions, cce_model_hparams(m->engine)->n_vocab, &inf->out,
		                         r->err, sizeof(r->err));
		if (ret) {
			ccd_infer_free(inf);
			free(job);
			return ret;
		}
	}
	return submit_infer(s, c, req, m, inf, job);
}

static int h_tokenize(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                      struct reply *r)
{
	const Cc__Tokenize *t = req->tokenize;
	struct ccd_model *m;
	int32_t *ids = NULL;
	size_t n = 0;
	int ret;

	if (!t || !t->model)
		return fail(r, -EBADMSG, "tokenize: missing");
	m = engine_model(s, t->model, 1, r, &ret);
	if (!m)
		return ret;
	ret = cce_tokenize(m->vocab, (const char *)t->text.data, t->text.len, t->no_bos ? 0 : -1, t->special, &ids, &n);
	if (ret == -EILSEQ)
		return fail(r, ret, "tokenize: the text is not valid UTF-8");
	if (ret < 0)
		return fail(r, ret, "tokenize: %s", strerror(-ret));
	r->ids = ids;
	r->u.tok = (Cc__TokenizeReply)CC__TOKENIZE_REPLY__INIT;
	r->u.tok.n_tokens = n;
	r->u.tok.tokens = ids;
	r->msg.body_case = CC__REPLY__BODY_TOKENIZE;
	r->msg.tokenize = &r->u.tok;
	return 0;
}

static int h_detokenize(struct ccd_server *s, const struct peer *p, struct ccd_client *c, const Cc__Request *req,
                        struct reply *r)
{
	const Cc__Detokenize *d = req->detokenize;
	struct ccd_model *m;
	size_t i, len = 0;
	int ret;

	if (!d || !d->model)
		return fail(r, -EBADMSG, "detokenize: missing");
	m = engine_model(s, d->model, 1, r, &ret);
	if (!m)
		return ret;
	for (i = 0; i < d->n_tokens; i++)
		if (d->tokens[i] < 0 || (uint32_t)d->tokens[i] >= cce_vocab_size(m->vocab))
			return fail(r, -EINVAL, "detokenize: token %d is not in the vocabulary", d->tokens[i]);
	ret = cce_detokenize(m->vocab, d->tokens, d->n_tokens, 0, &r->json, &len);
	if (ret < 0)
		return fail(r, ret, "detokenize: %s", strerror(-ret));
	r->u.detok = (Cc__DetokenizeReply)CC__DETOKENIZE_REPLY__INIT;
	r->u.detok.text.data = (uint8_t *)r->json;
	r->u.detok.text.len = len;
	r->msg.body_case = CC__REPLY__BODY_DETOKENIZE;
	r->msg.detokenize = &r->u.detok;
	return 0;
}

enum {
	H_ANON = 1 << 0,     /* allowed before hello */
	H_STOPPING = 1 << 1, /* served while shutting down */
};

/*
 * One entry per request kind of cc.proto, indexed by its oneof case. The
 * model registry and the engine add their requests (load, unload, session,
 * generate, ...) here, next to new fields of Request.
 */
static const struct handler {
	handler_fn fn;
	unsigned flags;
	const char *name;
} handlers[] = {
    [CC__REQUEST__BODY_HELLO] = {h_hello, H_ANON, "hello"},
    [CC__REQUEST__BODY_REGION_ADD] = {h_region_add, 0, "region_add"},
    [CC__REQUEST__BODY_REGION_FREE] = {h_region_free, H_STOPPING, "region_free"},
    [CC__REQUEST__BODY_OP] = {h_op, 0, "op"},
    [CC__REQUEST__BODY_STATUS] = {h_status, H_STOPPING, "status"},
    [CC__REQUEST__BODY_CLIENTS] = {h_clients, H_STOPPING, "clients"},
    [CC__REQUEST__BODY_KERNELS] = {h_kernels, H_STOPPING, "kernels"},
    [CC__REQUEST__BODY_SHUTDOWN] = {h_shutdown, H_STOPPING, "shutdown"},
    [CC__REQUEST__BODY_PING] = {h_ping, H_ANON | H_STOPPING, "ping"},
    [CC__REQUEST__BODY_BYE] = {h_bye, H_STOPPING, "bye"},
    [CC__REQUEST__BODY_MODEL_LOAD] = {h_model_load, 0, "model_load"},
    [CC__REQUEST__BODY_MODEL_UNLOAD] = {h_model_unload, 0, "model_unload"},
    [CC__REQUEST__BODY_MODELS] = {h_models, H_STOPPING, "models"},
    [CC__REQUEST__BODY_MODEL_SHOW] = {h_model_show, H_STOPPING, "model_show"},
    [CC__REQUEST__BODY_GENERATE] = {h_generate, 0, "generate"},
    [CC__REQUEST__BODY_TOKENIZE] = {h_tokenize, 0, "tokenize"},
    [CC__REQUEST__BODY_DETOKENIZE] = {h_detokenize, 0, "detokenize"},
    [CC__REQUEST__BODY_LOGITS] = {h_logits, 0, "logits"},
    [CC__REQUEST__BODY_SESSION_NEW] = {h_session_new, 0, "session_new"},
    [CC__REQUEST__BODY_SESSION_FREE] = {h_session_free, H_STOPPING, "session_free"},
    [CC__REQUEST__BODY_CANCEL] = {h_cancel, H_STOPPING, "cancel"},
    [CC__REQUEST__BODY_SESSIONS] = {h_sessions, H_STOPPING, "sessions"},
    [CC__REQUEST__BODY_KERNELS_SET] = {h_kernels_set, 0, "kernels_set"},
};

/* Check and dispatch one request; answer it unless its handler deferred the reply. */
static void handle_request(struct ccd_server *s, const struct peer *p, const void *data, size_t size, int extra)
{
	Cc__Request *req = cc__request__unpack(NULL, size, data);
	const struct handler *h = NULL;
	struct ccd_client *c;
	struct reply r;
	int code;

	memset(&r, 0, sizeof(r));
	r.msg = (Cc__Reply)CC__REPLY__INIT;
	if (!req) {
		code = fail(&r, -EBADMSG, "malformed request: %zu bytes that are not a cc.Request", size);
		goto out_reply;
	}
	r.msg.id = req->id;
	if (extra) {
		code = fail(&r, -EBADMSG, "request has %d extra frames: send exactly one frame per request", extra);
		goto out_reply;
	}
	if ((size_t)req->body_case < CCD_ARRAY_SIZE(handlers))
		h = &handlers[req->body_case];
	if (!h || !h->fn) {
		if (req->body_case == CC__REQUEST__BODY__NOT_SET && !req->base.n_unknown_fields)
			code = fail(&r, -EBADMSG, "request has no body");
		else
			code = fail(&r, -EOPNOTSUPP, "request type not supported by this ccd (version %s)",
			            PACKAGE_VERSION);
		goto out_reply;
	}
	c = ccd_clients_find(&s->clients, p->ident, p->len);
	if (!c && !(h->flags & H_ANON)) {
		code = fail(&r, -EPROTO, "hello first");
		goto out_reply;
	}
	if (s->stopping && !(h->flags & H_STOPPING)) {
		code = fail(&r, -ESHUTDOWN, "ccd is shutting down");
		goto out_reply;
	}
	code = h->fn(s, p, c, req, &r);
	if (code == REPLY_DEFERRED) {
		cc__request__free_unpacked(req, NULL);
		return;
	}
	if (code)
		ccd_debug("%s from client %" PRIu64 ": %s", h->name, c ? c->id : 0, r.err);
out_reply:
	if (code && !h)
		ccd_debug("bad request: %s", r.err);
	finish_reply(s, p, &r, code);
	if (req)
		cc__request__free_unpacked(req, NULL);
}

/*
 * The sender's uid and pid, from the socket: libzmq appends SO_PEERCRED of
 * an ipc connection to the "Peer-Address" property as ":uid:gid:pid" (after
 * a host part that depends on the version, e.g. "localhost:0:0:1234").
 */
static void peer_cred(zmq_msg_t *m, struct peer *p)
{
	const char *a = zmq_msg_gets(m, "Peer-Address");
	unsigned long v[3];
	const char *q;
	char *end;
	int i;

	p->have_cred = 0;
	if (!a)
		return;
	q = a + strlen(a);
	for (i = 2; i >= 0; i--) {
		/* the i-th number starts after the colon before it */
		const char *c = q;

		while (c > a && c[-1] != ':')
			c--;
		if (c == a || c == q)
			return;
		errno = 0;
		v[i] = strtoul(c, &end, 10);
		if (errno || end != q)
			return;
		q = c - 1;
	}
	p->have_cred = 1;
	p->uid = (uid_t)v[0];
	p->pid = (pid_t)v[2];
}

/* Take one message from the ROUTER. Returns 0, or -EAGAIN when there is none. */
static int recv_request(struct ccd_server *s)
{
	struct peer p;
	zmq_msg_t id, body, junk;
	int extra = 0, r;

	zmq_msg_init(&id);
	if (zmq_msg_recv(&id, s->router, ZMQ_DONTWAIT) < 0) {
		r = -errno;
		zmq_msg_close(&id);
		return r == -EAGAIN || r == -EINTR ? -EAGAIN : r;
	}
	/* The routing id frame is complete with its message: the rest is there already. */
	zmq_msg_init(&body);
	if (!zmq_msg_more(&id) || zmq_msg_recv(&body, s->router, 0) < 0) {
		zmq_msg_close(&body);
		zmq_msg_close(&id);
		return 0;
	}
	while (zmq_msg_more(extra ? &junk : &body)) {
		if (extra)
			zmq_msg_close(&junk);
		zmq_msg_init(&junk);
		if (zmq_msg_recv(&junk, s->router, 0) < 0)
			break;
		extra++;
	}
	if (extra)
		zmq_msg_close(&junk);
	p.len = zmq_msg_size(&id);
	peer_cred(&body, &p);
	if (p.len >= 1 && p.len <= sizeof(p.ident)) {
		memcpy(p.ident, zmq_msg_data(&id), p.len);
		handle_request(s, &p, zmq_msg_data(&body), zmq_msg_size(&body), extra);
	}
	zmq_msg_close(&body);
	zmq_msg_close(&id);
	return 0;
}

/* Free the state of clients whose process is gone. */
static void reap(struct ccd_server *s)
{
	struct ccd_client *c, *next;

	for (c = s->clients.all; c; c = next) {
		next = c->next;
		if (c->state != CCD_CLIENT_LIVE || ccd_client_alive(c))
			continue;
		ccd_info("client %" PRIu64 " (pid %ld '%s') is gone: freeing %" PRIu64 " regions (%" PRIu64 " bytes)",
		         c->id, (long)c->pid, c->name, c->regions.mapped, c->regions.bytes);
		client_leave(s, c);
	}
}

static void read_signals(struct ccd_server *s, int sigfd)
{
	struct signalfd_siginfo si;

	while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			if (s->stopping)
				ccd_info("%s: still waiting for %u running jobs", strsignal((int)si.ssi_signo),
				         ccd_pool_running(s->pool));
			begin_stop(s, strsignal((int)si.ssi_signo));
			break;
		case SIGHUP:
			ccd_info("SIGHUP: nothing to reload");
			break;
		default:
			break;
		}
	}
}

int ccd_server_run(struct ccd_server *s, int sigfd)
{
	zmq_pollitem_t items[5] = {
	    {s->router, 0, ZMQ_POLLIN, 0},
	    {ccd_pool_socket(s->pool), 0, ZMQ_POLLIN, 0},
	    {NULL, s->models.evfd, ZMQ_POLLIN, 0},
	    {NULL, s->evq.evfd, ZMQ_POLLIN, 0},
	    {NULL, sigfd, ZMQ_POLLIN, 0},
	};
	uint64_t interval = s->conf.v[CCD_CONF_REAP_INTERVAL_MS], now = ccd_now_ms(), next_reap = now + interval;
	int nitems = sigfd >= 0 ? 5 : 4, i, r;

	while (!s->stopping || ccd_pool_running(s->pool) || s->turns_running) {
		now = ccd_now_ms();
		r = zmq_poll(items, nitems, next_reap > now ? (long)(next_reap - now) : 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			ccd_error("zmq_poll failed: %s", zmq_strerror(-r));
			return r;
		}
		if (nitems > 4 && (items[4].revents & ZMQ_POLLIN))
			read_signals(s, sigfd);
		if (items[3].revents & ZMQ_POLLIN)
			drain_events(s);
		if (items[2].revents & ZMQ_POLLIN)
			ccd_models_collect(&s->models, model_loaded, s);
		if (items[1].revents & ZMQ_POLLIN)
			drain_workers(s);
		if (items[0].revents & ZMQ_POLLIN) {
			for (i = 0; i < ROUTER_BATCH; i++) {
				r = recv_request(s);
				if (r == -EAGAIN)
					break;
				if (r < 0) {
					ccd_error("receiving a request failed: %s", zmq_strerror(-r));
					break;
				}
			}
		}
		now = ccd_now_ms();
		if (now >= next_reap) {
			ccd_models_collect(&s->models, model_loaded, s);
			reap(s);
			sessions_expire(s);
			next_reap = now + interval;
		}
	}
	return 0;
}

int ccd_server_new(const char *endpoint, const struct ccd_conf *conf, const struct ccd_topo *topo,
                   struct ccd_server **ret, char *err, unsigned long errsize)
{
	struct ccd_server *s;
	unsigned nworkers, *node_workers = NULL;
	int64_t maxmsg = (int64_t)conf->v[CCD_CONF_MAX_MESSAGE_BYTES];
	int linger = 0, sndhwm = 1 << 17, i, r;

	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errsize, "out of memory");
		return -ENOMEM;
	}
	s->conf = *conf;
	s->topo = topo;
	s->start_s = ccd_now_s();
	s->ctx = zmq_ctx_new();
	if (!s->ctx) {
		r = -errno;
		snprintf(err, errsize, "cannot create a ZeroMQ context: %s", zmq_strerror(-r));
		goto out_free;
	}
	s->router = zmq_socket(s->ctx, ZMQ_ROUTER);
	if (!s->router) {
		r = -errno;
		snprintf(err, errsize, "cannot create the ROUTER socket: %s", zmq_strerror(-r));
		goto out_free;
	}
	zmq_setsockopt(s->router, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(s->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	/* streamed generations send a reply per token: room for a client's streams (the default is 1000 messages) */
	zmq_setsockopt(s->router, ZMQ_SNDHWM, &sndhwm, sizeof(sndhwm));
	if (zmq_bind(s->router, endpoint) < 0) {
		r = -errno;
		snprintf(err, errsize, "cannot bind %s: %s", endpoint, zmq_strerror(-r));
		goto out_free;
	}

	nworkers = (unsigned)conf->v[CCD_CONF_THREADS];
	if (!nworkers)
		nworkers = (unsigned)(topo->ncpus > topo->nnodes ? topo->ncpus : topo->nnodes);
	r = ccd_pool_start(s->ctx, topo, nworkers, &s->pool, err, errsize);
	if (r < 0)
		goto out_free;
	node_workers = calloc((size_t)topo->nnodes, sizeof(*node_workers));
	if (!node_workers) {
		r = -ENOMEM;
		snprintf(err, errsize, "out of memory");
		goto out_free;
	}
	for (i = 0; i < topo->nnodes; i++)
		node_workers[i] = ccd_pool_node_workers(s->pool, i);
	r = ccd_clients_init(&s->clients, (size_t)conf->v[CCD_CONF_MAX_CLIENTS], topo->nnodes, node_workers, &s->shm);
	free(node_workers);
	if (r < 0) {
		snprintf(err, errsize, "out of memory");
		goto out_free;
	}
	s->clients_ready = 1;
	r = ccd_models_init(&s->models);
	if (r < 0) {
		snprintf(err, errsize, "cannot create an eventfd: %s", strerror(-r));
		goto out_free;
	}
	s->models_ready = 1;
	s->models.gpu_layers = conf->v[CCD_CONF_GPU_LAYERS];
	s->models.pack = conf->v[CCD_CONF_PACK_WEIGHTS] == 1;
	r = ccd_evq_init(&s->evq);
	if (r < 0) {
		snprintf(err, errsize, "cannot create an eventfd: %s", strerror(-r));
		goto out_free;
	}
	s->evq_ready = 1;
	*ret = s;
	return 0;

out_free:
	ccd_server_free(s);
	return r;
}

void ccd_server_free(struct ccd_server *s)
{
	int linger = CLOSE_LINGER_MS;

	if (!s)
		return;
	calibrate_join(s);
	if (s->pool) {
		/* Jobs on workers use mapped regions: wait for them before unmapping anything. */
		cancel_queued(s);
		while (ccd_pool_running(s->pool)) {
			zmq_pollitem_t it = {ccd_pool_socket(s->pool), 0, ZMQ_POLLIN, 0};

			if (zmq_poll(&it, 1, -1) < 0 && errno != EINTR)
				break;
			drain_workers(s);
		}
	}
	if (s->evq_ready) {
		/* generations end (shutdown cancelled them); then the sessions go with their models */
		while (s->turns_running) {
			zmq_pollitem_t it = {NULL, s->evq.evfd, ZMQ_POLLIN, 0};

			if (zmq_poll(&it, 1, -1) < 0 && errno != EINTR)
				break;
			drain_events(s);
		}
		while (s->sessions)
			session_drop(s, s->sessions);
	}
	if (s->models_ready)
		ccd_models_fini(&s->models);
	if (s->evq_ready)
		ccd_evq_fini(&s->evq);
	if (s->clients_ready)
		ccd_clients_fini(&s->clients);
	if (s->router) {
		zmq_setsockopt(s->router, ZMQ_LINGER, &linger, sizeof(linger));
		zmq_close(s->router);
	}
	if (s->pool)
		ccd_pool_stop(s->pool);
	if (s->ctx)
		zmq_ctx_term(s->ctx);
	free(s);
}

int ccd_server_add_model(struct ccd_server *s, const char *name, const char *path, const char *mode, char *err,
                         unsigned long errsize)
{
	struct ccm_place place = {CCM_PLACE_INTERLEAVE, 0};
	struct ccd_model *m;
	int md = CCM_MODE_URING, r;

	if (mode && mode[0]) {
		md = ccm_mode_parse(mode);
		if (md < 0 || md == CCM_MODE_READ) {
			snprintf(err, errsize, "model '%s': mode must be 'uring' or 'mmap', not '%s'", name, mode);
			return -EINVAL;
		}
	}
	r = ccd_model_start(&s->models, name, path, (enum ccm_mode)md, &place, (unsigned)s->conf.v[CCD_CONF_MAX_MODELS],
	                    &m, err, errsize);
	if (r == 0)
		ccd_info("preloading model '%s' from %s (%s)", name, path, ccm_mode_name((enum ccm_mode)md));
	return r;
}

int ccd_server_probe(const char *endpoint, int timeout_ms)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__Empty ping = CC__EMPTY__INIT;
	unsigned char buf[4096];
	zmq_pollitem_t it;
	Cc__Reply *rep;
	void *ctx, *sock;
	int linger = 0, r, n;
	size_t len;

	ctx = zmq_ctx_new();
	if (!ctx)
		return -errno;
	sock = zmq_socket(ctx, ZMQ_DEALER);
	if (!sock) {
		r = -errno;
		goto out_term;
	}
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	if (zmq_connect(sock, endpoint) < 0) {
		r = -errno;
		goto out_close;
	}
	req.id = 1;
	req.body_case = CC__REQUEST__BODY_PING;
	req.ping = &ping;
	len = cc__request__pack(&req, buf);
	if (zmq_send(sock, buf, len, ZMQ_DONTWAIT) < 0) {
		r = 0;
		goto out_close;
	}
	it = (zmq_pollitem_t){sock, 0, ZMQ_POLLIN, 0};
	r = 0;
	if (zmq_poll(&it, 1, timeout_ms) > 0) {
		n = zmq_recv(sock, buf, sizeof(buf), 0);
		if (n > 0 && (size_t)n <= sizeof(buf)) {
			rep = cc__reply__unpack(NULL, (size_t)n, buf);
			r = rep && rep->id == 1 && rep->code == 0;
			if (rep)
				cc__reply__free_unpacked(rep, NULL);
		}
	}
out_close:
	zmq_close(sock);
out_term:
	zmq_ctx_term(ctx);
	return r;
}
