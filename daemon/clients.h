/* SPDX-License-Identifier: MIT */
/* clients.h: ccd's table of clients (one per connection that said hello): identity, process, node, accounting. */
#ifndef CCD_CLIENTS_H
#define CCD_CLIENTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shm.h"

#define CCD_IDENT_MAX 255 /* ZeroMQ routing ids are 1..255 bytes */
#define CCD_NAME_MAX 64

enum ccd_client_state {
	CCD_CLIENT_LIVE = 0, /* said hello, in the identity table */
	CCD_CLIENT_GONE,     /* said bye or died; freed once no job of it runs */
	CCD_CLIENT_STATE_COUNT
};

struct ccd_client {
	struct ccd_client *hnext;       /* identity hash chain (live clients) */
	struct ccd_client *prev, *next; /* every client, live or gone */
	uint64_t id;                    /* unique for the daemon's life */
	uint64_t hash;
	unsigned char ident[CCD_IDENT_MAX];
	size_t identlen;
	pid_t pid;
	unsigned long long start_time; /* /proc/<pid>/stat field 22: tells a reused pid apart */
	char name[CCD_NAME_MAX];       /* sanitized */
	int node;                      /* NUMA node (index into the topology) its jobs run on */
	int state;                     /* enum ccd_client_state */
	unsigned in_flight;            /* jobs queued or running on workers */
	uint64_t jobs_done, jobs_failed;
	struct ccd_regions regions;
};

struct ccd_clients {
	struct ccd_client **buckets;
	size_t nbuckets;
	struct ccd_client *all;
	unsigned live, gone;
	uint64_t next_id;
	int nnodes;
	unsigned *node_clients;     /* live clients per node */
	unsigned char *node_usable; /* nodes with workers */
	int rr;
	struct ccd_shm_stats *shm;
};

/*
 * An empty table sized for max_clients, assigning clients to the nodes
 * whose node_workers[i] > 0 (at least one must be). shm receives every
 * client's region accounting. Returns 0 or -ENOMEM.
 */
int ccd_clients_init(struct ccd_clients *cs, size_t max_clients, int nnodes, const unsigned *node_workers,
                     struct ccd_shm_stats *shm);
/* Retire and free every client. No job may be in flight. */
void ccd_clients_fini(struct ccd_clients *cs);

/* The live client with this ZeroMQ routing id, or NULL. */
struct ccd_client *ccd_clients_find(const struct ccd_clients *cs, const void *ident, size_t len);

/*
 * Add a live client for routing id ident (1..CCD_IDENT_MAX bytes) of
 * process pid (start_time from ccd_proc_start_time) named name (sanitized
 * here), on the usable node with the fewest clients (round-robin among
 * equals). Returns 0 and *ret, or -ENOMEM / -EINVAL. The caller checks
 * max_clients.
 */
int ccd_clients_add(struct ccd_clients *cs, const void *ident, size_t len, pid_t pid, unsigned long long start_time,
                    const char *name, struct ccd_client **ret);

/*
 * The client said bye or died: out of the identity table, its regions
 * freed (those a running job holds stay mapped until it is done), and the
 * client itself freed now if no job of it is in flight, else by the last
 * ccd_clients_job_end(). c must not be used after this unless a job of it
 * is in flight.
 */
void ccd_clients_retire(struct ccd_clients *cs, struct ccd_client *c);

/* A job of c was answered: count it; frees a retired c whose last job this was. */
void ccd_clients_job_end(struct ccd_clients *cs, struct ccd_client *c);

/*
 * Start time of process pid (clock ticks after boot), so that a pid reused
 * by another process is not mistaken for the client. Returns 0, -ESRCH if
 * there is no such process or it is a zombie (it has exited: its files are
 * closed), or another -errno.
 */
int ccd_proc_start_time(pid_t pid, unsigned long long *ret);

/* Whether c's process still runs (the same process that said hello). */
int ccd_client_alive(const struct ccd_client *c);

#endif /* CCD_CLIENTS_H */
