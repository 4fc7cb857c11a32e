/* SPDX-License-Identifier: MIT */
/* numa.h: the NUMA topology ccd schedules on: libnuma's nodes and their CPUs, or fake nodes for tests. */
#ifndef CCD_NUMA_H
#define CCD_NUMA_H

#include <stddef.h>

/* One node: its CPUs (those this process may run on), ascending. */
struct ccd_node {
	int os_node; /* the kernel's node number (fake topology: the index) */
	int ncpus;
	int *cpus;
};

struct ccd_topo {
	int nnodes;
	int ncpus;     /* CPUs this process may run on */
	int simulated; /* CC_FAKE_NUMA split the CPUs into fake nodes */
	int place;     /* memory placement is real: several real nodes */
	struct ccd_node *nodes;
};

/*
 * Discover the topology. With CC_FAKE_NUMA=N (1..256) in the environment the
 * online CPUs are split into N fake nodes (contiguous runs; with fewer CPUs
 * than nodes each node gets one CPU, shared): workers are pinned to a fake
 * node's CPUs but no memory is placed. Otherwise libnuma's nodes that have
 * allowed CPUs; without NUMA support, one node. Returns 0 or -errno with a
 * one-line reason in err. Free with ccd_topo_fini().
 */
int ccd_topo_init(struct ccd_topo *topo, char *err, size_t errsize);
/* Free what ccd_topo_init() allocated. Safe on a zeroed struct. */
void ccd_topo_fini(struct ccd_topo *topo);

/* Pin the calling thread to node's CPUs. Returns 0 or -errno. */
int ccd_topo_pin(const struct ccd_topo *topo, int node);

/*
 * Ask the kernel to place the pages of [addr, addr + len) (a mapping of a
 * shared-memory object) on node: a preferred policy on the object itself,
 * so pages the client touches first land there too. A no-op unless
 * topo->place. Failure is only logged: placement is an optimization.
 */
void ccd_topo_place(const struct ccd_topo *topo, int node, void *addr, size_t len);

#endif /* CCD_NUMA_H */
