/* SPDX-License-Identifier: MIT */
/* load.h: the model weight loader: a byte range of a file into memory (io_uring, mmap or pread), NUMA-placed. */
#ifndef CCM_LOAD_H
#define CCM_LOAD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/*
 * How the bytes get into memory.
 *  URING  io_uring reads (several large reads in flight) into anonymous memory placed by NUMA policy.
 *         Falls back to READ, with a note, where io_uring is unavailable or CCM_NO_URING=1 is set.
 *  MMAP   the file itself, mapped read-only and shared (the page cache is the copy). The load faults
 *         every page of the range in (reading the file where it is not cached), so the time it
 *         takes is the honest time until the weights are usable without disk I/O.
 *  READ   a plain pread loop into the same kind of anonymous memory as URING: fallback and baseline.
 */
enum ccm_mode { CCM_MODE_URING = 0, CCM_MODE_MMAP, CCM_MODE_READ };

/* "uring", "mmap", "read" ("?" for a value out of range). */
const char *ccm_mode_name(enum ccm_mode m);
/* The mode named s (as ccm_mode_name() spells it), or -EINVAL. */
int ccm_mode_parse(const char *s);

/*
 * Where anonymous memory (URING, READ) goes, set before the first touch:
 *  INTERLEAVE  pages interleaved over every node this process may allocate on (the default);
 *  NODE        bound to one node (ccm_load_fd() gives -EINVAL if it is not such a node);
 *  LOCAL       no policy: the kernel's default (first touch, i.e. the loading thread's node).
 * With CC_FAKE_NUMA=N in the environment (fake nodes, see daemon/numa.h) node=0..N-1 are accepted
 * but no policy is applied (a note says so); a malformed CC_FAKE_NUMA gives -EINVAL, as ccd refuses
 * it. Where the kernel refuses the policy (mbind fails) the load goes on without one: placement
 * "local" and a note. MMAP ignores placement ("file page cache").
 */
enum ccm_place_kind { CCM_PLACE_INTERLEAVE = 0, CCM_PLACE_NODE, CCM_PLACE_LOCAL };
struct ccm_place {
	enum ccm_place_kind kind;
	int node; /* CCM_PLACE_NODE only */
};
/* "interleave", "node=N" (N a decimal node number) or "local" into *ret. Returns 0 or -EINVAL. */
int ccm_place_parse(const char *s, struct ccm_place *ret);

/*
 * Progress of one load, readable by other threads while it runs. The loader sets total = len and
 * done = 0 at the start and advances done (relaxed atomics) as bytes of the range arrive; a
 * non-zero cancel (set by any thread) makes the load stop within one batch of reads and return
 * -ECANCELED.
 */
struct ccm_progress {
	_Atomic uint64_t done;
	uint64_t total;
	_Atomic int cancel;
};

struct ccm_region {
	const void *data;   /* the requested range, in memory: data[i] is the file's byte off + i */
	size_t len;         /* the range's length */
	enum ccm_mode mode; /* the mode actually used (URING may have fallen back to READ) */
	int huge;           /* transparent huge pages requested (MADV_HUGEPAGE) and accepted */
	char note[160];     /* "" or why a fallback happened, e.g. "io_uring unavailable (...): loaded with pread" */
	char placement[64]; /* what was applied: "interleave(0-1)", "node=0", "local", "file page cache", ... */
	/* private */
	void *base;     /* the whole mapping */
	size_t map_len; /* its length */
	int direct;     /* URING read (part of) the range with O_DIRECT */
};

/*
 * Load the bytes [off, off + len) of the regular file open on fd (readable; its offset is not
 * used) into *ret. The range must be non-empty and lie inside the file. data is placed so that
 * (uintptr_t)data % 4096 == off % 4096: alignment within the file (tensor alignment) is kept.
 * prog may be NULL. On failure *ret is zeroed and err (when errlen > 0) holds one line saying
 * why. Returns 0, -EINVAL (bad range, bad node, bad mode), -ECANCELED, -EIO (the file ended
 * before the range did: it shrank while loading), -ENOMEM, or another -errno from the reads.
 * Thread-safe: loads may run in parallel (each has its own ring).
 */
int ccm_load_fd(int fd, uint64_t off, uint64_t len, enum ccm_mode mode, const struct ccm_place *place,
                struct ccm_progress *prog, struct ccm_region *ret, char *err, size_t errlen);

/* Unmap everything a successful ccm_load_fd() mapped; the region is zeroed. Safe on a zeroed region. */
void ccm_region_free(struct ccm_region *r);

#endif /* CCM_LOAD_H */
