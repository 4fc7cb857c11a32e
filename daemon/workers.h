/* SPDX-License-Identifier: MIT */
/* workers.h: the worker pools, one per NUMA node, fed by the front end over a load-balancing inproc ROUTER. */
#ifndef CCD_WORKERS_H
#define CCD_WORKERS_H

struct ccd_client;
struct ccd_job;
struct ccd_topo;
struct ccd_pool;

/*
 * Start nworkers threads (>= 1) spread over the topology's nodes (node i
 * gets nworkers / nnodes, the first nworkers % nnodes one more), each
 * pinned to its node's CPUs, each with a DEALER connected to the pool's
 * ROUTER (bound here, on zctx). A worker announces itself, then runs one
 * job at a time and sends it back; the front end hands a node's next job
 * to an idle worker of that node only, so a long job never holds up small
 * ones behind it while another worker of the node is free. topo must
 * outlive the pool. Returns 0 and *ret, or -errno with err set.
 * All other functions are for the front-end thread only.
 */
int ccd_pool_start(void *zctx, const struct ccd_topo *topo, unsigned nworkers, struct ccd_pool **ret, char *err,
                   unsigned long errsize);

/* The ROUTER socket to poll for ZMQ_POLLIN (finished jobs, workers ready). */
void *ccd_pool_socket(const struct ccd_pool *pool);
/* Workers in all, and on node. */
unsigned ccd_pool_workers(const struct ccd_pool *pool);
unsigned ccd_pool_node_workers(const struct ccd_pool *pool, int node);
/* Jobs a worker is running now; jobs waiting for an idle worker. */
unsigned ccd_pool_running(const struct ccd_pool *pool);
unsigned ccd_pool_queued(const struct ccd_pool *pool);

/* Hand job to an idle worker of job->node, or queue it (FIFO) until one is idle. */
void ccd_pool_submit(struct ccd_pool *pool, struct ccd_job *job);

/*
 * Take one message from the workers without blocking: returns a finished
 * job (its code and value set), or NULL when there is none right now.
 * Worker announcements are handled here (the next queued job goes out).
 */
struct ccd_job *ccd_pool_collect(struct ccd_pool *pool);

/* Take a queued (not yet started) job back, or NULL if none is queued. */
struct ccd_job *ccd_pool_unqueue(struct ccd_pool *pool);

/*
 * Take back every queued job (and part) of client, in a list linked by
 * job->next (NULL if none), so a client that left does not keep workers
 * busy; jobs already running are not touched.
 */
struct ccd_job *ccd_pool_unqueue_client(struct ccd_pool *pool, const struct ccd_client *client);

/*
 * Stop: close the pool's socket, shut the ZeroMQ context down (so every
 * worker's blocking receive returns), and join the threads. No job may be
 * running or queued. The caller closes its own sockets first and calls
 * zmq_ctx_term() after. NULL is a no-op.
 */
void ccd_pool_stop(struct ccd_pool *pool);

#endif /* CCD_WORKERS_H */
