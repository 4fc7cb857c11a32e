/* SPDX-License-Identifier: MIT */
/* shm.c: opening, checking, mapping, placing, accounting and freeing clients' shared-memory regions. */
#define _GNU_SOURCE 1 /* F_GET_SEALS */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "numa.h"
#include "shm.h"
#include "util.h"

/*
 * Why memfd + seals (and not POSIX shm): a memfd has no name in any
 * filesystem, so no other process can open it; ccd reaches it through
 * /proc/<pid>/fd/<fd>, which the kernel only lets a process with ptrace
 * rights over the client do (same user, or root). Sealing it against
 * shrinking means the client cannot truncate it under ccd's mapping, so
 * ccd's kernels can never fault with SIGBUS on a page that vanished; the
 * bounds of every job are checked against the size fixed at registration.
 */
#ifndef F_SEAL_SHRINK
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#define F_SEAL_WRITE 0x0008
#endif

#define INITIAL_BUCKETS 16

static size_t bucket_of(const struct ccd_regions *t, uint64_t id)
{
	return (size_t)((id * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (t->nbuckets - 1);
}

void ccd_regions_init(struct ccd_regions *t, struct ccd_shm_stats *global)
{
	memset(t, 0, sizeof(*t));
	t->global = global;
}

/* Double the buckets (or make the first ones). On failure the table stays as it was. */
static int grow(struct ccd_regions *t)
{
	size_t n = t->nbuckets ? t->nbuckets * 2 : INITIAL_BUCKETS, i, old = t->nbuckets;
	struct ccd_region **b = calloc(n, sizeof(*b)), **ob = t->buckets;

	if (!b)
		return -ENOMEM;
	t->buckets = b;
	t->nbuckets = n;
	for (i = 0; i < old; i++) {
		struct ccd_region *r = ob[i], *next;

		for (; r; r = next) {
			size_t k = bucket_of(t, r->id);

			next = r->hnext;
			r->hnext = b[k];
			b[k] = r;
		}
	}
	free(ob);
	return 0;
}

struct ccd_region *ccd_region_find(const struct ccd_regions *t, uint64_t id)
{
	struct ccd_region *r;

	if (!t->nbuckets)
		return NULL;
	for (r = t->buckets[bucket_of(t, id)]; r; r = r->hnext)
		if (r->id == id)
			return r;
	return NULL;
}

int ccd_region_add(struct ccd_regions *t, pid_t pid, uint64_t id, int fd, uint64_t size,
                   const struct ccd_shm_limits *lim, const struct ccd_topo *topo, int node, char *err, size_t errsize)
{
	char path[64];
	struct ccd_region *r;
	struct stat st;
	void *addr;
	int mfd, seals, ret;
	size_t k;

	if (!id) {
		snprintf(err, errsize, "region_add: region_id must be > 0");
		return -EINVAL;
	}
	if (!size || size > SIZE_MAX) {
		snprintf(err, errsize, "region %" PRIu64 ": size %" PRIu64 " cannot be mapped", id, size);
		return -EINVAL;
	}
	if (fd < 0) {
		snprintf(err, errsize, "region %" PRIu64 ": fd %d is not a file descriptor", id, fd);
		return -EINVAL;
	}
	if (ccd_region_find(t, id)) {
		snprintf(err, errsize, "region %" PRIu64 " already registered", id);
		return -EEXIST;
	}
	if (t->mapped >= lim->max_regions) {
		snprintf(err, errsize, "max_regions_per_client (%" PRIu64 ") reached", lim->max_regions);
		return -EMFILE;
	}
	if (size > lim->max_bytes || t->bytes > lim->max_bytes - size) {
		snprintf(err, errsize,
		         "max_bytes_per_client (%" PRIu64 ") exceeded: %" PRIu64 " bytes registered + %" PRIu64,
		         lim->max_bytes, t->bytes, size);
		return -ENOSPC;
	}
	if (t->attached + 1 > t->nbuckets && grow(t) < 0) {
		snprintf(err, errsize, "region %" PRIu64 ": out of memory", id);
		return -ENOMEM;
	}

	snprintf(path, sizeof(path), "/proc/%ld/fd/%d", (long)pid, fd);
	mfd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (mfd < 0) {
		ret = -errno;
		snprintf(err, errsize, "region %" PRIu64 ": cannot open fd %d of pid %ld: %s", id, fd, (long)pid,
		         strerror(-ret));
		return ret;
	}
	if (fstat(mfd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errsize, "region %" PRIu64 ": fd %d is not a memfd", id, fd);
		ret = -EINVAL;
		goto out_close;
	}
	seals = fcntl(mfd, F_GET_SEALS);
	if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) {
		snprintf(err, errsize, "region %" PRIu64 " not sealed: need a memfd with F_SEAL_SHRINK and F_SEAL_GROW",
		         id);
		ret = -EPERM;
		goto out_close;
	}
	if ((uint64_t)st.st_size != size) {
		snprintf(err, errsize, "region %" PRIu64 ": size %" PRIu64 " declared, the memfd has %lld bytes", id,
		         size, (long long)st.st_size);
		ret = -EINVAL;
		goto out_close;
	}
	addr = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (addr == MAP_FAILED) {
		ret = -errno;
		snprintf(err, errsize, "region %" PRIu64 ": cannot map %" PRIu64 " bytes: %s%s", id, size,
		         strerror(-ret), (seals & F_SEAL_WRITE) ? " (write-sealed)" : "");
		goto out_close;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errsize, "region %" PRIu64 ": out of memory", id);
		ret = -ENOMEM;
		goto out_unmap;
	}
	ccd_topo_place(topo, node, addr, (size_t)size);
	r->owner = t;
	r->id = id;
	r->addr = addr;
	r->size = (size_t)size;
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	r->refs = 1;
	r->attached = 1;
	k = bucket_of(t, id);
	r->hnext = t->buckets[k];
	t->buckets[k] = r;
	t->attached++;
	t->mapped++;
	t->bytes += size;
	t->global->regions++;
	t->global->bytes += size;
	/* The mapping keeps the memory object alive; the descriptor is not needed. */
	close(mfd);
	return 0;

out_unmap:
	munmap(addr, (size_t)size);
out_close:
	close(mfd);
	return ret;
}

void ccd_region_ref(struct ccd_region *r)
{
	r->refs++;
}

void ccd_region_unref(struct ccd_region *r)
{
	struct ccd_regions *t = r->owner;

	CCD_ASSERT(r->refs > 0);
	if (--r->refs)
		return;
	CCD_ASSERT(!r->attached);
	if (munmap(r->addr, r->size) < 0)
		ccd_error("munmap of region %" PRIu64 " failed: %s", r->id, strerror(errno));
	t->mapped--;
	t->bytes -= r->size;
	t->global->regions--;
	t->global->bytes -= r->size;
	free(r);
}

/* Unlink r from its bucket. */
static void detach(struct ccd_regions *t, struct ccd_region *r)
{
	struct ccd_region **pp = &t->buckets[bucket_of(t, r->id)];

	while (*pp != r)
		pp = &(*pp)->hnext;
	*pp = r->hnext;
	r->hnext = NULL;
	r->attached = 0;
	t->attached--;
}

int ccd_region_remove(struct ccd_regions *t, uint64_t id)
{
	struct ccd_region *r = ccd_region_find(t, id);

	if (!r)
		return -ENOENT;
	detach(t, r);
	ccd_region_unref(r);
	return 0;
}

void ccd_regions_clear(struct ccd_regions *t)
{
	size_t i;

	for (i = 0; i < t->nbuckets; i++) {
		while (t->buckets[i]) {
			struct ccd_region *r = t->buckets[i];

			detach(t, r);
			ccd_region_unref(r);
		}
	}
}

void ccd_regions_fini(struct ccd_regions *t)
{
	CCD_ASSERT(!t->attached && !t->mapped && !t->bytes);
	free(t->buckets);
	t->buckets = NULL;
	t->nbuckets = 0;
}
