/* SPDX-License-Identifier: MIT */
/* numa.c: NUMA discovery with libnuma (or a fake split for tests), thread pinning and memory placement. */
#define _GNU_SOURCE 1 /* CPU sets, pthread_setaffinity_np */
#include "config.h"

#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "numa.h"
#include "util.h"

#define FAKE_NUMA_MAX 256

/* libnuma reports its own errors through these weak hooks: send them to our log, not to stderr. */
void numa_error(char *where)
{
	ccd_debug("libnuma: %s: %s", where, strerror(errno));
}

void numa_warn(int num, char *fmt, ...)
{
	/* The format is libnuma's, not checkable here: log it unexpanded. */
	ccd_debug("libnuma warning %d: %s", num, fmt);
}

/* The CPUs this process may run on, ascending, in a malloc'd array. */
static int allowed_cpus(int **ret, int *ret_n)
{
	size_t ncpu = 1024, size;
	cpu_set_t *set;
	int *cpus, n = 0;
	size_t i;

	for (;;) {
		set = CPU_ALLOC(ncpu);
		if (!set)
			return -ENOMEM;
		size = CPU_ALLOC_SIZE(ncpu);
		if (sched_getaffinity(0, size, set) == 0)
			break;
		CPU_FREE(set);
		if (errno != EINVAL || ncpu >= ((size_t)1 << 20))
			return -errno;
		ncpu *= 2;
	}
	cpus = calloc(ncpu, sizeof(*cpus));
	if (!cpus) {
		CPU_FREE(set);
		return -ENOMEM;
	}
	for (i = 0; i < ncpu; i++)
		if (CPU_ISSET_S(i, size, set))
			cpus[n++] = (int)i;
	CPU_FREE(set);
	if (!n) {
		free(cpus);
		return -ENODEV;
	}
	*ret = cpus;
	*ret_n = n;
	return 0;
}

static int add_node(struct ccd_topo *t, int os_node, const int *cpus, int n)
{
	struct ccd_node *nodes = realloc(t->nodes, (size_t)(t->nnodes + 1) * sizeof(*nodes));
	struct ccd_node *nd;

	if (!nodes)
		return -ENOMEM;
	t->nodes = nodes;
	nd = &nodes[t->nnodes];
	nd->cpus = malloc((size_t)n * sizeof(int));
	if (!nd->cpus)
		return -ENOMEM;
	memcpy(nd->cpus, cpus, (size_t)n * sizeof(int));
	nd->ncpus = n;
	nd->os_node = os_node;
	t->nnodes++;
	return 0;
}

static int fake_topo(struct ccd_topo *t, const char *env, const int *cpus, int ncpus, char *err, size_t errsize)
{
	char *end;
	long n;
	int i, r;

	errno = 0;
	n = strtol(env, &end, 10);
	if (errno || *end || n < 1 || n > FAKE_NUMA_MAX) {
		snprintf(err, errsize, "CC_FAKE_NUMA='%.32s': expected a node count from 1 to %d", env, FAKE_NUMA_MAX);
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		if (n <= ncpus) {
			int lo = (int)((long)i * ncpus / n), hi = (int)((long)(i + 1) * ncpus / n);

			r = add_node(t, i, cpus + lo, hi - lo);
		} else {
			r = add_node(t, i, cpus + i % ncpus, 1);
		}
		if (r < 0)
			return r;
	}
	t->simulated = 1;
	return 0;
}

static int real_topo(struct ccd_topo *t, const int *cpus, int ncpus)
{
	struct bitmask *mems, *mask;
	int *sel, node, max, i, n, r = 0;

	if (numa_available() < 0)
		return add_node(t, 0, cpus, ncpus);
	sel = malloc((size_t)ncpus * sizeof(int));
	mask = numa_allocate_cpumask();
	mems = numa_get_mems_allowed();
	if (!sel || !mask || !mems) {
		r = -ENOMEM;
		goto out;
	}
	max = numa_max_node();
	for (node = 0; node <= max; node++) {
		if (!numa_bitmask_isbitset(mems, (unsigned)node))
			continue;
		if (numa_node_to_cpus(node, mask) < 0)
			continue;
		for (n = 0, i = 0; i < ncpus; i++)
			if (numa_bitmask_isbitset(mask, (unsigned)cpus[i]))
				sel[n++] = cpus[i];
		/* Memory-only nodes (no CPU of ours) get no workers. */
		if (!n)
			continue;
		r = add_node(t, node, sel, n);
		if (r < 0)
			goto out;
	}
	if (!t->nnodes)
		r = add_node(t, 0, cpus, ncpus);
	else
		t->place = t->nnodes > 1;
out:
	if (mems)
		numa_free_nodemask(mems);
	if (mask)
		numa_free_cpumask(mask);
	free(sel);
	return r;
}

int ccd_topo_init(struct ccd_topo *topo, char *err, size_t errsize)
{
	const char *env = getenv("CC_FAKE_NUMA");
	int *cpus = NULL, ncpus = 0, r;

	memset(topo, 0, sizeof(*topo));
	r = allowed_cpus(&cpus, &ncpus);
	if (r < 0) {
		snprintf(err, errsize, "cannot list the CPUs ccd may run on: %s", strerror(-r));
		return r;
	}
	topo->ncpus = ncpus;
	if (env && *env)
		r = fake_topo(topo, env, cpus, ncpus, err, errsize);
	else
		r = real_topo(topo, cpus, ncpus);
	free(cpus);
	if (r < 0) {
		if (r != -EINVAL)
			snprintf(err, errsize, "cannot discover the NUMA topology: %s", strerror(-r));
		ccd_topo_fini(topo);
	}
	return r;
}

void ccd_topo_fini(struct ccd_topo *topo)
{
	int i;

	for (i = 0; i < topo->nnodes; i++)
		free(topo->nodes[i].cpus);
	free(topo->nodes);
	memset(topo, 0, sizeof(*topo));
}

int ccd_topo_pin(const struct ccd_topo *topo, int node)
{
	const struct ccd_node *nd;
	cpu_set_t *set;
	size_t size;
	int i, max = 0, r;

	if (node < 0 || node >= topo->nnodes)
		return -EINVAL;
	nd = &topo->nodes[node];
	for (i = 0; i < nd->ncpus; i++)
		if (nd->cpus[i] > max)
			max = nd->cpus[i];
	set = CPU_ALLOC((size_t)max + 1);
	if (!set)
		return -ENOMEM;
	size = CPU_ALLOC_SIZE((size_t)max + 1);
	CPU_ZERO_S(size, set);
	for (i = 0; i < nd->ncpus; i++)
		CPU_SET_S((size_t)nd->cpus[i], size, set);
	r = -pthread_setaffinity_np(pthread_self(), size, set);
	CPU_FREE(set);
	return r;
}

void ccd_topo_place(const struct ccd_topo *topo, int node, void *addr, size_t len)
{
	unsigned long mask[FAKE_NUMA_MAX / (8 * sizeof(unsigned long))] = {0};
	const size_t bits = 8 * sizeof(unsigned long);
	int os;

	if (!topo->place || node < 0 || node >= topo->nnodes || !len)
		return;
	os = topo->nodes[node].os_node;
	if (os < 0 || (size_t)os >= CCD_ARRAY_SIZE(mask) * bits)
		return;
	mask[(size_t)os / bits] |= 1UL << ((size_t)os % bits);
	/* Preferred, not bound: a full node spills over instead of failing the client's page faults. */
	if (mbind(addr, len, MPOL_PREFERRED, mask, CCD_ARRAY_SIZE(mask) * bits, 0) < 0)
		ccd_debug("mbind of %zu bytes to node %d failed: %s", len, os, strerror(errno));
}
