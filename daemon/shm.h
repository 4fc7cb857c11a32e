/* SPDX-License-Identifier: MIT */
/* shm.h: the registry of a client's shared-memory regions (sealed memfds mapped into ccd). */
#ifndef CCD_SHM_H
#define CCD_SHM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ccd_topo;

/* Totals over every client, for status. */
struct ccd_shm_stats {
	uint64_t regions;
	uint64_t bytes;
};

struct ccd_regions;

/*
 * One mapped region. It stays mapped while it is in its client's table or a
 * job holds a reference (refs), so a region freed (or a client reaped)
 * while a worker computes on it is unmapped only when that job is done.
 * Only the front-end thread touches refs and the tables.
 */
struct ccd_region {
	struct ccd_region *hnext; /* hash chain of the owner table */
	struct ccd_regions *owner;
	uint64_t id;
	unsigned char *addr;
	size_t size;
	dev_t dev; /* the memory object, to spot two regions over one memfd */
	ino_t ino;
	unsigned refs;
	int attached; /* still in owner's table */
};

/* One client's regions, by id, with its accounting. */
struct ccd_regions {
	struct ccd_region **buckets;
	size_t nbuckets; /* a power of two, or 0 before the first add */
	size_t attached; /* regions in the table */
	uint64_t mapped; /* regions mapped (in the table or held by jobs) */
	uint64_t bytes;  /* their bytes */
	struct ccd_shm_stats *global;
};

/* Limits checked by ccd_region_add(), from the settings table. */
struct ccd_shm_limits {
	uint64_t max_regions;
	uint64_t max_bytes;
};

/* An empty table accounting into global (which must outlive it). */
void ccd_regions_init(struct ccd_regions *t, struct ccd_shm_stats *global);

/*
 * Register region id of the process pid: open /proc/<pid>/fd/<fd>, require
 * a sealed memfd (F_SEAL_SHRINK and F_SEAL_GROW) of exactly size bytes, map
 * it shared read-write, place it on NUMA node (ccd_topo_place), and add it.
 * Returns 0, or a negative errno with a one-line reason in err:
 * -EINVAL (id 0, size 0, bad fd, size mismatch, not a regular file),
 * -EEXIST (id in use), -EMFILE (max_regions_per_client), -ENOSPC
 * (max_bytes_per_client), -EPERM (not sealed), or what open/mmap failed with
 * (-ENOENT: no such fd, -EACCES, -ENOMEM, ...).
 */
int ccd_region_add(struct ccd_regions *t, pid_t pid, uint64_t id, int fd, uint64_t size,
                   const struct ccd_shm_limits *lim, const struct ccd_topo *topo, int node, char *err, size_t errsize);

/* The attached region id, or NULL. */
struct ccd_region *ccd_region_find(const struct ccd_regions *t, uint64_t id);

/*
 * Take region id out of the table; it is unmapped now, or when the last
 * job holding it lets go. Returns 0 or -ENOENT.
 */
int ccd_region_remove(struct ccd_regions *t, uint64_t id);

/* Take a reference for a job. */
void ccd_region_ref(struct ccd_region *r);
/* Drop one; the last reference of a detached region unmaps and frees it. */
void ccd_region_unref(struct ccd_region *r);

/* Remove every region (ccd_region_remove on each). */
void ccd_regions_clear(struct ccd_regions *t);
/* Free the table itself; every region must be gone (cleared and no job holding one). */
void ccd_regions_fini(struct ccd_regions *t);

#endif /* CCD_SHM_H */
