/* SPDX-License-Identifier: MIT */
/* clients.c: the client table (by ZeroMQ routing id), NUMA node assignment, liveness by /proc, retirement. */
#define _GNU_SOURCE 1
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clients.h"
#include "log.h"
#include "util.h"

static uint64_t hash_ident(const void *ident, size_t len)
{
	const unsigned char *p = ident;
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

int ccd_clients_init(struct ccd_clients *cs, size_t max_clients, int nnodes, const unsigned *node_workers,
                     struct ccd_shm_stats *shm)
{
	size_t n = 16;
	int i, usable = 0;

	memset(cs, 0, sizeof(*cs));
	while (n < max_clients && n < ((size_t)1 << 20))
		n *= 2;
	cs->buckets = calloc(n, sizeof(*cs->buckets));
	cs->node_clients = calloc((size_t)nnodes, sizeof(*cs->node_clients));
	cs->node_usable = calloc((size_t)nnodes, 1);
	if (!cs->buckets || !cs->node_clients || !cs->node_usable)
		goto out_free;
	for (i = 0; i < nnodes; i++) {
		cs->node_usable[i] = node_workers[i] > 0;
		usable += cs->node_usable[i];
	}
	CCD_ASSERT(usable > 0);
	cs->nbuckets = n;
	cs->nnodes = nnodes;
	cs->next_id = 1;
	cs->shm = shm;
	return 0;

out_free:
	free(cs->buckets);
	free(cs->node_clients);
	free(cs->node_usable);
	memset(cs, 0, sizeof(*cs));
	return -ENOMEM;
}

static void client_free(struct ccd_clients *cs, struct ccd_client *c)
{
	CCD_ASSERT(c->state == CCD_CLIENT_GONE && !c->in_flight);
	ccd_regions_fini(&c->regions);
	if (c->prev)
		c->prev->next = c->next;
	else
		cs->all = c->next;
	if (c->next)
		c->next->prev = c->prev;
	cs->gone--;
	free(c);
}

void ccd_clients_fini(struct ccd_clients *cs)
{
	while (cs->all) {
		struct ccd_client *c = cs->all;

		CCD_ASSERT(!c->in_flight);
		if (c->state == CCD_CLIENT_LIVE)
			ccd_clients_retire(cs, c);
		else
			client_free(cs, c);
	}
	free(cs->buckets);
	free(cs->node_clients);
	free(cs->node_usable);
	memset(cs, 0, sizeof(*cs));
}

struct ccd_client *ccd_clients_find(const struct ccd_clients *cs, const void *ident, size_t len)
{
	uint64_t h = hash_ident(ident, len);
	struct ccd_client *c;

	for (c = cs->buckets[h & (cs->nbuckets - 1)]; c; c = c->hnext)
		if (c->hash == h && c->identlen == len && !memcmp(c->ident, ident, len))
			return c;
	return NULL;
}

/* The usable node with the fewest live clients, scanning round-robin from the last pick. */
static int pick_node(struct ccd_clients *cs)
{
	int i, best = -1;

	for (i = 0; i < cs->nnodes; i++) {
		int n = (cs->rr + i) % cs->nnodes;

		if (cs->node_usable[n] && (best < 0 || cs->node_clients[n] < cs->node_clients[best]))
			best = n;
	}
	CCD_ASSERT(best >= 0);
	cs->rr = (best + 1) % cs->nnodes;
	return best;
}

int ccd_clients_add(struct ccd_clients *cs, const void *ident, size_t len, pid_t pid, unsigned long long start_time,
                    const char *name, struct ccd_client **ret)
{
	struct ccd_client *c;
	size_t b;

	if (!len || len > CCD_IDENT_MAX)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	memcpy(c->ident, ident, len);
	c->identlen = len;
	c->hash = hash_ident(ident, len);
	c->id = cs->next_id++;
	c->pid = pid;
	c->start_time = start_time;
	ccd_sanitize(c->name, sizeof(c->name), name);
	c->node = pick_node(cs);
	c->state = CCD_CLIENT_LIVE;
	ccd_regions_init(&c->regions, cs->shm);
	b = c->hash & (cs->nbuckets - 1);
	c->hnext = cs->buckets[b];
	cs->buckets[b] = c;
	c->next = cs->all;
	if (cs->all)
		cs->all->prev = c;
	cs->all = c;
	cs->live++;
	cs->node_clients[c->node]++;
	*ret = c;
	return 0;
}

void ccd_clients_retire(struct ccd_clients *cs, struct ccd_client *c)
{
	struct ccd_client **pp;

	CCD_ASSERT(c->state == CCD_CLIENT_LIVE);
	for (pp = &cs->buckets[c->hash & (cs->nbuckets - 1)]; *pp != c; pp = &(*pp)->hnext)
		;
	*pp = c->hnext;
	c->hnext = NULL;
	c->state = CCD_CLIENT_GONE;
	cs->live--;
	cs->gone++;
	cs->node_clients[c->node]--;
	ccd_regions_clear(&c->regions);
	if (!c->in_flight)
		client_free(cs, c);
}

void ccd_clients_job_end(struct ccd_clients *cs, struct ccd_client *c)
{
	CCD_ASSERT(c->in_flight > 0);
	c->in_flight--;
	if (c->state == CCD_CLIENT_GONE && !c->in_flight)
		client_free(cs, c);
}

int ccd_proc_start_time(pid_t pid, unsigned long long *ret)
{
	char path[64], buf[1024], *p;
	unsigned long long start;
	ssize_t n;
	int fd, field, r;

	if (pid <= 0)
		return -ESRCH;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	r = n < 0 ? -errno : 0;
	close(fd);
	if (r < 0)
		return r;
	buf[n] = 0;
	/* "pid (comm) S ppid ...": comm may hold anything, so parse from the last ')'. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -EINVAL;
	p += 2;
	if (*p == 'Z' || *p == 'X')
		return -ESRCH;
	/* p is at field 3 (state); the start time is field 22. */
	for (field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -EINVAL;
		p++;
	}
	if (sscanf(p, "%llu", &start) != 1)
		return -EINVAL;
	*ret = start;
	return 0;
}

int ccd_client_alive(const struct ccd_client *c)
{
	unsigned long long start;
	int r = ccd_proc_start_time(c->pid, &start);

	if (r == -ESRCH)
		return 0;
	if (r < 0)
		return 1; /* cannot tell: keep it rather than free a live client's memory */
	return start == c->start_time;
}
