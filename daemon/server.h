/* SPDX-License-Identifier: MIT */
/* server.h: ccd's front end: the ROUTER socket, request dispatch, replies, admin, clients and their reaping. */
#ifndef CCD_SERVER_H
#define CCD_SERVER_H

#include "conf.h"
#include "numa.h"

struct ccd_server;

/*
 * Create the ZeroMQ context, bind the ROUTER on endpoint (ZMQ_MAXMSGSIZE
 * from max_message_bytes) and start the worker pools (conf threads, or
 * one per CPU, at least one per node). conf and topo are copied / must
 * outlive the server. The calling thread becomes the front end: signals
 * must already be blocked so ZeroMQ's and the workers' threads inherit
 * the mask. Returns 0 and *ret, or -errno with a one-line reason in err.
 */
int ccd_server_new(const char *endpoint, const struct ccd_conf *conf, const struct ccd_topo *topo,
                   struct ccd_server **ret, char *err, unsigned long errsize);

/*
 * Serve until a shutdown request or SIGTERM/SIGINT read from sigfd (a
 * signalfd, or -1). Then refuse new work, cancel queued jobs, wait for the
 * running ones, and answer them. Returns 0 on a clean stop, -errno if the
 * loop itself failed.
 */
int ccd_server_run(struct ccd_server *s, int sigfd);

/*
 * Register a model to load at start (ccd --model NAME=PATH[:mode]); the load
 * runs in its own thread while ccd serves. mode: "uring" (NULL or "") or
 * "mmap". Returns 0, or -errno with a reason in err (bad name, duplicate).
 */
int ccd_server_add_model(struct ccd_server *s, const char *name, const char *path, const char *mode, char *err,
                         unsigned long errsize);

/* Free every client and region, stop the workers, close the socket and the context. NULL is a no-op. */
void ccd_server_free(struct ccd_server *s);

/*
 * Whether a ccd answers a ping at endpoint within timeout_ms: 1 yes, 0 no,
 * -errno if the probe could not be made. Uses its own ZeroMQ context (safe
 * before fork).
 */
int ccd_server_probe(const char *endpoint, int timeout_ms);

#endif /* CCD_SERVER_H */
