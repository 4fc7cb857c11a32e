/* SPDX-License-Identifier: MIT */
/* workers.c: worker threads pinned per NUMA node, and the front end's side of the load-balancing pattern. */
#define _GNU_SOURCE 1 /* pthread_setname_np */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "cck.h"
#include "jobs.h"
#include "log.h"
#include "numa.h"
#include "util.h"
#include "workers.h"

#define POOL_ENDPOINT "inproc://ccd-workers"
#define WORKER_ID_LEN 5 /* 'w' + the worker's index, little-endian */

struct ccd_worker {
	struct ccd_pool *pool;
	pthread_t thread;
	unsigned index;
	int node;
	int started;
};

struct pool_node {
	struct ccd_job *head, *tail; /* jobs waiting for an idle worker */
	unsigned *idle;              /* indices of idle workers (a stack) */
	unsigned nidle;
	unsigned nworkers;
};

struct ccd_pool {
	void *ctx;
	void *sock; /* ROUTER: workers' DEALERs connect here */
	const struct ccd_topo *topo;
	struct ccd_worker *workers;
	unsigned nworkers;
	struct pool_node *nodes;
	int nnodes;
	unsigned running, queued;
};

static void worker_id(unsigned index, unsigned char id[WORKER_ID_LEN])
{
	id[0] = 'w';
	id[1] = (unsigned char)index;
	id[2] = (unsigned char)(index >> 8);
	id[3] = (unsigned char)(index >> 16);
	id[4] = (unsigned char)(index >> 24);
}

/*
 * The worker: announce (a NULL job), then take a job, run it, send it back,
 * until the context is shut down. Job pointers travel through inproc
 * messages; ZeroMQ's queues order the front end's writes to a job before
 * the worker's reads and the worker's writes before the front end's.
 */
static void *worker_main(void *arg)
{
	struct ccd_worker *w = arg;
	struct ccd_pool *pool = w->pool;
	unsigned char id[WORKER_ID_LEN];
	struct ccd_job *job = NULL;
	char name[16];
	int linger = 0, r;
	void *s;

	snprintf(name, sizeof(name), "ccd-w%u-n%d", w->index, w->node);
	pthread_setname_np(pthread_self(), name);
	/* kernel jobs are split over the workers, each part single-threaded; inference jobs lift the cap */
	cck_set_local_threads(1);
	r = ccd_topo_pin(pool->topo, w->node);
	if (r < 0)
		ccd_warn("worker %u: cannot pin to node %d: %s", w->index, w->node, strerror(-r));
	s = zmq_socket(pool->ctx, ZMQ_DEALER);
	if (!s) {
		ccd_error("worker %u: cannot create its socket: %s", w->index, zmq_strerror(errno));
		return NULL;
	}
	worker_id(w->index, id);
	zmq_setsockopt(s, ZMQ_ROUTING_ID, id, sizeof(id));
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	if (zmq_connect(s, POOL_ENDPOINT) < 0) {
		ccd_error("worker %u: cannot connect: %s", w->index, zmq_strerror(errno));
		goto out_close;
	}
	if (zmq_send(s, &job, sizeof(job), 0) < 0)
		goto out_close;
	for (;;) {
		r = zmq_recv(s, &job, sizeof(job), 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break; /* ETERM: shutting down */
		}
		if (r != (int)sizeof(job) || !job)
			continue;
		ccd_job_run(job);
		while ((r = zmq_send(s, &job, sizeof(job), 0)) < 0 && errno == EINTR)
			;
		if (r < 0)
			break;
	}
out_close:
	zmq_close(s);
	return NULL;
}

int ccd_pool_start(void *zctx, const struct ccd_topo *topo, unsigned nworkers, struct ccd_pool **ret, char *err,
                   unsigned long errsize)
{
	struct ccd_pool *pool;
	int linger = 0, i, r;
	unsigned w, k;

	CCD_ASSERT(nworkers >= 1 && topo->nnodes >= 1);
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		goto out_nomem;
	pool->ctx = zctx;
	pool->topo = topo;
	pool->nnodes = topo->nnodes;
	pool->nworkers = nworkers;
	pool->nodes = calloc((size_t)topo->nnodes, sizeof(*pool->nodes));
	pool->workers = calloc(nworkers, sizeof(*pool->workers));
	if (!pool->nodes || !pool->workers)
		goto out_free;
	for (i = 0; i < pool->nnodes; i++) {
		struct pool_node *nd = &pool->nodes[i];

		nd->nworkers = nworkers / (unsigned)pool->nnodes + ((unsigned)i < nworkers % (unsigned)pool->nnodes);
		nd->idle = calloc(nd->nworkers ? nd->nworkers : 1, sizeof(*nd->idle));
		if (!nd->idle)
			goto out_free;
	}

	pool->sock = zmq_socket(zctx, ZMQ_ROUTER);
	if (!pool->sock) {
		r = -errno;
		snprintf(err, errsize, "cannot create the workers' socket: %s", zmq_strerror(-r));
		goto out_err;
	}
	zmq_setsockopt(pool->sock, ZMQ_LINGER, &linger, sizeof(linger));
	if (zmq_bind(pool->sock, POOL_ENDPOINT) < 0) {
		r = -errno;
		snprintf(err, errsize, "cannot bind %s: %s", POOL_ENDPOINT, zmq_strerror(-r));
		goto out_err;
	}

	for (w = 0, i = 0; i < pool->nnodes; i++) {
		for (k = 0; k < pool->nodes[i].nworkers; k++, w++) {
			struct ccd_worker *wk = &pool->workers[w];

			wk->pool = pool;
			wk->index = w;
			wk->node = i;
			r = -pthread_create(&wk->thread, NULL, worker_main, wk);
			if (r < 0) {
				snprintf(err, errsize, "cannot start worker %u: %s", w, strerror(-r));
				goto out_err;
			}
			wk->started = 1;
		}
	}
	*ret = pool;
	return 0;

out_nomem:
	snprintf(err, errsize, "out of memory");
	return -ENOMEM;
out_free:
	r = -ENOMEM;
	snprintf(err, errsize, "out of memory");
out_err:
	ccd_pool_stop(pool);
	return r;
}

void *ccd_pool_socket(const struct ccd_pool *pool)
{
	return pool->sock;
}

unsigned ccd_pool_workers(const struct ccd_pool *pool)
{
	return pool->nworkers;
}

unsigned ccd_pool_node_workers(const struct ccd_pool *pool, int node)
{
	if (node < 0 || node >= pool->nnodes)
		return 0;
	return pool->nodes[node].nworkers;
}

unsigned ccd_pool_running(const struct ccd_pool *pool)
{
	return pool->running;
}

unsigned ccd_pool_queued(const struct ccd_pool *pool)
{
	return pool->queued;
}

static void send_to(struct ccd_pool *pool, unsigned worker, struct ccd_job *job)
{
	unsigned char id[WORKER_ID_LEN];
	int r;

	worker_id(worker, id);
	/* The worker said it is idle and waits in zmq_recv: the inproc pipe has room. */
	r = zmq_send(pool->sock, id, sizeof(id), ZMQ_SNDMORE);
	if (r >= 0)
		r = zmq_send(pool->sock, &job, sizeof(job), 0);
	if (r < 0)
		ccd_error("cannot hand a job to worker %u: %s", worker, zmq_strerror(errno));
	CCD_ASSERT(r >= 0);
	pool->running++;
}

void ccd_pool_submit(struct ccd_pool *pool, struct ccd_job *job)
{
	struct pool_node *nd;

	CCD_ASSERT(job->node >= 0 && job->node < pool->nnodes);
	nd = &pool->nodes[job->node];
	CCD_ASSERT(nd->nworkers > 0);
	if (nd->nidle) {
		send_to(pool, nd->idle[--nd->nidle], job);
		return;
	}
	job->next = NULL;
	if (nd->tail)
		nd->tail->next = job;
	else
		nd->head = job;
	nd->tail = job;
	pool->queued++;
}

/* Worker w is free: give it the next job of its node, or remember it as idle. */
static void worker_idle(struct ccd_pool *pool, unsigned w)
{
	struct pool_node *nd = &pool->nodes[pool->workers[w].node];
	struct ccd_job *job = nd->head;

	if (job) {
		nd->head = job->next;
		if (!nd->head)
			nd->tail = NULL;
		job->next = NULL;
		pool->queued--;
		send_to(pool, w, job);
		return;
	}
	CCD_ASSERT(nd->nidle < nd->nworkers);
	nd->idle[nd->nidle++] = w;
}

struct ccd_job *ccd_pool_collect(struct ccd_pool *pool)
{
	unsigned char id[WORKER_ID_LEN + 1];
	struct ccd_job *job;
	int n, more;
	size_t len = sizeof(more);
	unsigned w;

	for (;;) {
		n = zmq_recv(pool->sock, id, sizeof(id), ZMQ_DONTWAIT);
		if (n < 0)
			return NULL; /* EAGAIN: nothing more now */
		more = 0;
		zmq_getsockopt(pool->sock, ZMQ_RCVMORE, &more, &len);
		CCD_ASSERT(n == WORKER_ID_LEN && id[0] == 'w' && more);
		n = zmq_recv(pool->sock, &job, sizeof(job), 0);
		CCD_ASSERT(n == (int)sizeof(job));
		w = (unsigned)id[1] | (unsigned)id[2] << 8 | (unsigned)id[3] << 16 | (unsigned)id[4] << 24;
		CCD_ASSERT(w < pool->nworkers);
		if (job) {
			CCD_ASSERT(pool->running > 0);
			pool->running--;
		}
		worker_idle(pool, w);
		if (job)
			return job;
	}
}

struct ccd_job *ccd_pool_unqueue(struct ccd_pool *pool)
{
	int i;

	for (i = 0; i < pool->nnodes; i++) {
		struct pool_node *nd = &pool->nodes[i];
		struct ccd_job *job = nd->head;

		if (!job)
			continue;
		nd->head = job->next;
		if (!nd->head)
			nd->tail = NULL;
		job->next = NULL;
		pool->queued--;
		return job;
	}
	return NULL;
}

struct ccd_job *ccd_pool_unqueue_client(struct ccd_pool *pool, const struct ccd_client *client)
{
	struct ccd_job *out = NULL, **tail = &out;
	int i;

	for (i = 0; i < pool->nnodes; i++) {
		struct pool_node *nd = &pool->nodes[i];
		struct ccd_job **pp = &nd->head, *job;

		nd->tail = NULL;
		while ((job = *pp)) {
			if (job->client != client) {
				nd->tail = job;
				pp = &job->next;
				continue;
			}
			*pp = job->next;
			job->next = NULL;
			*tail = job;
			tail = &job->next;
			pool->queued--;
		}
	}
	return out;
}

void ccd_pool_stop(struct ccd_pool *pool)
{
	unsigned w;
	int i;

	if (!pool)
		return;
	CCD_ASSERT(!pool->running && !pool->queued);
	if (pool->sock)
		zmq_close(pool->sock);
	/* Every worker waits in zmq_recv (or is about to): shutting the context down wakes it with ETERM. */
	zmq_ctx_shutdown(pool->ctx);
	for (w = 0; pool->workers && w < pool->nworkers; w++)
		if (pool->workers[w].started)
			pthread_join(pool->workers[w].thread, NULL);
	for (i = 0; pool->nodes && i < pool->nnodes; i++)
		free(pool->nodes[i].idle);
	free(pool->nodes);
	free(pool->workers);
	free(pool);
}
