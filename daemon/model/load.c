/* SPDX-License-Identifier: MIT */
/* load.c: the model weight loader: a file's byte range into NUMA-placed memory by io_uring, mmap or pread. */
#define _GNU_SOURCE 1 /* O_DIRECT, MADV_* */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <numa.h>
#include <numaif.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "load.h"

#define PAGE 4096u
#define HUGE_SZ ((size_t)2 << 20) /* x86-64 PMD size: where THP can map a whole huge page */
#define FAKE_NUMA_MAX 256
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

/*
 * Tuning, measured with `ccbench load` on a 2-core VM (virtio disk, Linux 6.18, THP "madvise"),
 * other builds running at times (the quietest of repeated runs). GB/s, warm / cold page cache:
 *
 *                                     SmolLM2 98 MB     1 GB file
 *   read: pread loop, 4 MB chunks      7.2 / 2.2        7.3 / 2.5
 *   uring buffered, 8 x 2 MB           7.0 / 1.9        7.1 / 2.3
 *   uring buffered + IOSQE_ASYNC       11.9 / 2.4       12.0 / 2.6
 *   uring O_DIRECT, 8 x 2 MB           2.8 / 2.8        3.0 / 3.0
 *   mmap + MADV_POPULATE_READ          45 / 2.5         180 / 2.9
 *   one `ccbench load` run, load average 1.2:
 *     uring as chosen below            8.1 / 2.9        10.5 / 2.5
 *     read, same run                   4.7 / 2.0         6.5 / 2.0
 *   over 8 runs, others building: uring / read = 0.87x-1.7x warm, 1.15x-1.8x cold.
 *
 * - Warm, a read is a copy out of the page cache plus the first touch (zeroing) of the
 *   destination. Without IOSQE_ASYNC io_uring does that copy inline in the submitting thread,
 *   one read after the other: no faster than pread. With IOSQE_ASYNC the reads go to io-wq
 *   workers and the copies (and faults) run on several CPUs at once: 1.6x pread here on 2 CPUs
 *   (when the other CPU is busy with other work it drops to about pread's speed: 0.87x-1.0x).
 * - Cold, O_DIRECT wins (no page cache fill, no copy: the device writes into our memory) by
 *   15-50% over the pread loop, but warm it loses to buffered reads 4x. So O_DIRECT is used
 *   only when the range is mostly not cached (mincore() on a sample of its pages, below) and at
 *   least 8 MB; anything else is read buffered. Data read with O_DIRECT is not left in the
 *   page cache, which is what a loader wants (the weights are in our memory now).
 * - Depth and chunk: 4..32 reads of 1..4 MB in flight all land within noise of each other
 *   (buffered: 10-12 GB/s warm; direct: 2.7-3.0 GB/s); 8 x 2 MB is at the top of both and keeps
 *   the io-wq worker count small. Registered buffers were not tried: registering pins (and so
 *   first-touches) the whole destination before the first read can start.
 * - mmap warm maps page-cache folios without copying anything: no copying loader can match it;
 *   the price is that the weights stay file pages (no NUMA placement, evictable, SIGBUS if the
 *   file shrinks later).
 * Overridable through the environment for measurements: CCM_URING_DEPTH, CCM_URING_CHUNK_KB,
 * CCM_URING_ASYNC=0|1, CCM_DIRECT=0|1 (default: by cache state), CCM_READ_CHUNK_KB, CCM_MMAP_CHUNK_KB.
 */
#define URING_DEPTH 8                 /* reads in flight */
#define URING_CHUNK ((size_t)2 << 20) /* bytes per read */
#define READ_CHUNK ((size_t)4 << 20)  /* bytes per pread (READ mode) */
#define MMAP_CHUNK ((size_t)8 << 20)  /* bytes per MADV_POPULATE_READ (MMAP mode: progress, cancel) */
#define URING_DEPTH_MAX 64

static const char *const mode_names[] = {"uring", "mmap", "read"};

const char *ccm_mode_name(enum ccm_mode m)
{
	return (unsigned)m < sizeof(mode_names) / sizeof(mode_names[0]) ? mode_names[m] : "?";
}

int ccm_mode_parse(const char *s)
{
	unsigned i;

	for (i = 0; s && i < sizeof(mode_names) / sizeof(mode_names[0]); i++)
		if (!strcmp(s, mode_names[i]))
			return (int)i;
	return -EINVAL;
}

/* A non-negative decimal int (no sign, no spaces), or -1. */
static int parse_uint(const char *s, long max)
{
	long v = 0;

	if (!s || !*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
		if (v > max)
			return -1;
	}
	return (int)v;
}

int ccm_place_parse(const char *s, struct ccm_place *ret)
{
	int n;

	if (!s || !ret)
		return -EINVAL;
	if (!strcmp(s, "interleave")) {
		ret->kind = CCM_PLACE_INTERLEAVE;
		ret->node = -1;
		return 0;
	}
	if (!strcmp(s, "local")) {
		ret->kind = CCM_PLACE_LOCAL;
		ret->node = -1;
		return 0;
	}
	if (!strncmp(s, "node=", 5) && (n = parse_uint(s + 5, 1 << 20)) >= 0) {
		ret->kind = CCM_PLACE_NODE;
		ret->node = n;
		return 0;
	}
	return -EINVAL;
}

static void __attribute__((format(printf, 3, 4))) seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Append "; "-separated text to a region's note. */
static void __attribute__((format(printf, 2, 3))) addnote(struct ccm_region *r, const char *fmt, ...)
{
	size_t n = strlen(r->note);
	va_list ap;

	if (n && n + 2 < sizeof(r->note)) {
		memcpy(r->note + n, "; ", 3);
		n += 2;
	}
	if (n + 1 >= sizeof(r->note))
		return;
	va_start(ap, fmt);
	vsnprintf(r->note + n, sizeof(r->note) - n, fmt, ap);
	va_end(ap);
}

static long env_long(const char *name, long def, long lo, long hi)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s)
		return def;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return def;
	return v;
}

static inline void prog_add(struct ccm_progress *p, uint64_t n)
{
	if (p && n)
		atomic_fetch_add_explicit(&p->done, n, memory_order_relaxed);
}

static inline int prog_cancelled(struct ccm_progress *p)
{
	return p && atomic_load_explicit(&p->cancel, memory_order_relaxed);
}

/* ---- anonymous memory and its NUMA placement ------------------------------------------------ */

/* "0-1,3" for the set bits of a node mask. */
static void format_nodes(struct bitmask *m, char *buf, size_t size)
{
	unsigned i, j, nbits = (unsigned)numa_bitmask_nbytes(m) * 8;
	size_t n = 0;

	buf[0] = 0;
	for (i = 0; i < nbits && n + 1 < size; i++) {
		if (!numa_bitmask_isbitset(m, i))
			continue;
		for (j = i; j + 1 < nbits && numa_bitmask_isbitset(m, j + 1); j++)
			;
		if (j == i)
			n += (size_t)snprintf(buf + n, size - n, "%s%u", n ? "," : "", i);
		else
			n += (size_t)snprintf(buf + n, size - n, "%s%u-%u", n ? "," : "", i, j);
		i = j;
	}
}

/* The node count CC_FAKE_NUMA asks for (daemon/numa.c's rule), 0 when unset, -1 when malformed. */
static int fake_numa(void)
{
	const char *s = getenv("CC_FAKE_NUMA");
	int n;

	if (!s || !*s)
		return 0;
	n = parse_uint(s, FAKE_NUMA_MAX);
	return n >= 1 ? n : -1;
}

/* Check a placement before anything is allocated: -EINVAL for a node that does not exist. */
static int check_place(const struct ccm_place *pl, char *err, size_t errlen)
{
	struct bitmask *mems;
	int fake, ok;

	if (pl->kind != CCM_PLACE_INTERLEAVE && pl->kind != CCM_PLACE_LOCAL && pl->kind != CCM_PLACE_NODE) {
		seterr(err, errlen, "unknown placement kind %d", (int)pl->kind);
		return -EINVAL;
	}
	/* A malformed CC_FAKE_NUMA is refused as ccd refuses it (daemon/numa.c). */
	fake = fake_numa();
	if (fake < 0) {
		seterr(err, errlen, "CC_FAKE_NUMA='%.32s': expected a node count from 1 to %d", getenv("CC_FAKE_NUMA"),
		       FAKE_NUMA_MAX);
		return -EINVAL;
	}
	if (pl->kind != CCM_PLACE_NODE)
		return 0;
	if (fake) {
		ok = pl->node >= 0 && pl->node < fake;
	} else if (numa_available() < 0) {
		ok = pl->node == 0;
	} else {
		mems = numa_get_mems_allowed();
		if (!mems) {
			seterr(err, errlen, "out of memory");
			return -ENOMEM;
		}
		ok = pl->node >= 0 && pl->node <= numa_max_node() && numa_bitmask_isbitset(mems, (unsigned)pl->node);
		numa_free_nodemask(mems);
	}
	if (!ok) {
		seterr(err, errlen, "node=%d: no such NUMA node (or not one this process may allocate on)", pl->node);
		return -EINVAL;
	}
	return 0;
}

/* Set the policy of [base, base + len) (not yet touched); record what was applied. */
static void apply_place(const struct ccm_place *pl, void *base, size_t len, struct ccm_region *r)
{
	struct bitmask *mask = NULL;
	char nodes[48];
	int fake = fake_numa(), mpol;

	if (pl->kind == CCM_PLACE_LOCAL) {
		snprintf(r->placement, sizeof(r->placement), "local");
		return;
	}
	if (fake > 0) {
		if (pl->kind == CCM_PLACE_NODE)
			snprintf(r->placement, sizeof(r->placement), "node=%d (fake, not applied)", pl->node);
		else
			snprintf(r->placement, sizeof(r->placement), "interleave(fake 0-%d, not applied)", fake - 1);
		addnote(r, "CC_FAKE_NUMA=%d: fake nodes, no NUMA memory policy applied", fake);
		return;
	}
	if (numa_available() < 0) {
		if (pl->kind == CCM_PLACE_NODE)
			snprintf(r->placement, sizeof(r->placement), "node=0 (no NUMA support)");
		else
			snprintf(r->placement, sizeof(r->placement), "interleave(0) (no NUMA support)");
		return;
	}
	if (pl->kind == CCM_PLACE_NODE) {
		mask = numa_allocate_nodemask();
		if (mask)
			numa_bitmask_setbit(mask, (unsigned)pl->node);
		mpol = MPOL_BIND;
	} else {
		mask = numa_get_mems_allowed();
		mpol = MPOL_INTERLEAVE;
	}
	if (!mask) {
		snprintf(r->placement, sizeof(r->placement), "local");
		addnote(r, "NUMA policy not applied: out of memory");
		return;
	}
	if (mbind(base, len, mpol, mask->maskp, mask->size + 1, 0) < 0) {
		snprintf(r->placement, sizeof(r->placement), "local");
		addnote(r, "NUMA policy not applied (mbind: %s)", strerror(errno));
	} else if (pl->kind == CCM_PLACE_NODE) {
		snprintf(r->placement, sizeof(r->placement), "node=%d", pl->node);
	} else {
		format_nodes(mask, nodes, sizeof(nodes));
		snprintf(r->placement, sizeof(r->placement), "interleave(%s)", nodes);
	}
	numa_free_nodemask(mask);
}

/* Transparent huge pages are not switched off ("[never]") for madvise()d memory. */
static int thp_possible(void)
{
	char buf[128] = "";
	ssize_t n;
	int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	return !strstr(buf, "[never]");
}

/*
 * Anonymous memory for need bytes: 2 MB aligned (so THP can back it) when need is at least 2 MB,
 * placed, then MADV_HUGEPAGE. Nothing is touched here.
 */
static int anon_alloc(size_t need, const struct ccm_place *pl, struct ccm_region *r, char *err, size_t errlen)
{
	size_t align = need >= HUGE_SZ ? HUGE_SZ : PAGE;
	size_t map_len = (need + align - 1) & ~(align - 1);
	size_t extra = align > PAGE ? align : 0;
	uint8_t *p, *a;

	if (map_len < need || map_len + extra < map_len) {
		seterr(err, errlen, "range of %zu bytes is too large to map", need);
		return -ENOMEM;
	}
	p = mmap(NULL, map_len + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		int e = errno;

		seterr(err, errlen, "cannot map %zu bytes of memory: %s", map_len, strerror(e));
		return -e;
	}
	a = (uint8_t *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (p + map_len + extra > a + map_len)
		munmap(a + map_len, (size_t)(p + map_len + extra - (a + map_len)));
	r->base = a;
	r->map_len = map_len;
	apply_place(pl, a, map_len, r);
#ifdef MADV_HUGEPAGE
	if (align == HUGE_SZ && thp_possible() && madvise(a, map_len, MADV_HUGEPAGE) == 0)
		r->huge = 1;
#endif
	return 0;
}

/* ---- READ: the pread loop ------------------------------------------------------------------- */

static int load_read(int fd, uint64_t off, uint64_t len, uint8_t *dst, struct ccm_progress *prog, char *err,
                     size_t errlen)
{
	size_t chunk = (size_t)env_long("CCM_READ_CHUNK_KB", READ_CHUNK >> 10, 4, 1 << 20) << 10;
	uint64_t pos = 0;
	ssize_t n;

	while (pos < len) {
		if (prog_cancelled(prog)) {
			seterr(err, errlen, "load cancelled");
			return -ECANCELED;
		}
		n = pread(fd, dst + pos, len - pos < chunk ? (size_t)(len - pos) : chunk, (off_t)(off + pos));
		if (n < 0) {
			int e = errno;

			if (e == EINTR || e == EAGAIN)
				continue;
			seterr(err, errlen, "read at file offset %llu: %s", (unsigned long long)(off + pos),
			       strerror(e));
			return -e;
		}
		if (n == 0) {
			seterr(err, errlen,
			       "the file ended at byte %llu, before the end of the range (%llu): did it shrink?",
			       (unsigned long long)(off + pos), (unsigned long long)(off + len));
			return -EIO;
		}
		pos += (uint64_t)n;
		prog_add(prog, (uint64_t)n);
	}
	return 0;
}

/* ---- URING ---------------------------------------------------------------------------------- */

struct rd {
	uint64_t pos; /* file offset of the read's first byte */
	size_t want;  /* its length */
	size_t got;   /* bytes done so far (short reads resume from here) */
	int direct;   /* issued on the O_DIRECT descriptor */
	int next_free;
};

struct uload {
	struct io_uring ring;
	int fd, dfd; /* buffered and O_DIRECT (-1: none) descriptors */
	uint64_t a;  /* file offset of dst[0]: off rounded down to a page */
	uint64_t e;  /* end of the range */
	uint8_t *dst;
	struct ccm_progress *prog;
	struct rd rds[URING_DEPTH_MAX];
	int free_head;
	int inflight; /* prepared or submitted, not yet completed */
	int rc;
	int async; /* IOSQE_ASYNC: every read to io-wq workers */
	char *err;
	size_t errlen;
};

static void u_prep(struct uload *u, int i)
{
	struct rd *d = &u->rds[i];
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring); /* never NULL: at most depth reads are out */
	uint64_t at = d->pos + d->got;

	io_uring_prep_read(sqe, d->direct ? u->dfd : u->fd, u->dst + (at - u->a), (unsigned)(d->want - d->got), at);
	io_uring_sqe_set_data(sqe, d);
	if (u->async)
		io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
}

/* The length of [lo, hi) within [a, b). */
static uint64_t overlap(uint64_t lo, uint64_t hi, uint64_t a, uint64_t b)
{
	if (lo < a)
		lo = a;
	if (hi > b)
		hi = b;
	return hi > lo ? hi - lo : 0;
}

static void u_fail(struct uload *u, int rc)
{
	if (!u->rc)
		u->rc = rc;
}

/* One completion. Returns 1 if the read was resubmitted (still in flight), 0 if it is finished. */
static int u_complete(struct uload *u, struct rd *d, int res, uint64_t off)
{
	uint64_t at = d->pos + d->got;

	if (res == -EAGAIN || res == -EINTR) {
		if (u->rc)
			return 0;
		u_prep(u, (int)(d - u->rds));
		return 1;
	}
	if (res == -EINVAL && d->direct) {
		/* The file system takes O_DIRECT opens but not these reads: go on buffered. */
		d->direct = 0;
		if (u->rc)
			return 0;
		u_prep(u, (int)(d - u->rds));
		return 1;
	}
	if (res < 0) {
		if (!u->rc)
			seterr(u->err, u->errlen, "read at file offset %llu: %s", (unsigned long long)at,
			       strerror(-res));
		u_fail(u, res);
		return 0;
	}
	if (res == 0) {
		if (at < u->e) {
			if (!u->rc)
				seterr(
				    u->err, u->errlen,
				    "the file ended at byte %llu, before the end of the range (%llu): did it shrink?",
				    (unsigned long long)at, (unsigned long long)u->e);
			u_fail(u, -EIO);
		}
		return 0;
	}
	prog_add(u->prog, overlap(at, at + (uint64_t)res, off, u->e));
	d->got += (size_t)res;
	at += (uint64_t)res;
	if (d->got < d->want && at < u->e && !u->rc) {
		/* A short read inside the range: ask for the rest (buffered if no longer aligned). */
		if (at % PAGE)
			d->direct = 0;
		u_prep(u, (int)(d - u->rds));
		return 1;
	}
	return 0;
}

/* Read [a, round_up(e, 4096)) into dst with depth reads of chunk bytes in flight; drains them all before returning. */
static int load_uring(struct uload *u, uint64_t off, int depth, size_t chunk)
{
	uint64_t next = u->a, endr = (u->e + PAGE - 1) & ~(uint64_t)(PAGE - 1);
	struct io_uring_cqe *cqe;
	unsigned head, seen;
	int i, r;

	u->free_head = -1;
	for (i = depth - 1; i >= 0; i--) {
		u->rds[i].next_free = u->free_head;
		u->free_head = i;
	}
	for (;;) {
		if (!u->rc && prog_cancelled(u->prog)) {
			seterr(u->err, u->errlen, "load cancelled");
			u_fail(u, -ECANCELED);
		}
		while (!u->rc && u->free_head >= 0 && next < endr) {
			struct rd *d = &u->rds[u->free_head];

			u->free_head = d->next_free;
			d->pos = next;
			d->want = endr - next < chunk ? (size_t)(endr - next) : chunk;
			d->got = 0;
			d->direct = u->dfd >= 0;
			next += d->want;
			u_prep(u, (int)(d - u->rds));
			u->inflight++;
		}
		if (!u->inflight)
			break;
		r = io_uring_submit_and_wait(&u->ring, 1);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			/* Cannot submit: reap what was submitted (the kernel writes into dst until then), give up. */
			int unsub = (int)io_uring_sq_ready(&u->ring);

			if (!u->rc)
				seterr(u->err, u->errlen, "io_uring_submit: %s", strerror(-r));
			u_fail(u, r);
			u->inflight -= unsub;
			while (u->inflight > 0) {
				r = io_uring_wait_cqe(&u->ring, &cqe);
				if (r == -EINTR || r == -EAGAIN)
					continue;
				if (r < 0)
					break;
				io_uring_cqe_seen(&u->ring, cqe);
				u->inflight--;
			}
			break;
		}
		seen = 0;
		io_uring_for_each_cqe(&u->ring, head, cqe)
		{
			struct rd *d = io_uring_cqe_get_data(cqe);

			seen++;
			if (!u_complete(u, d, cqe->res, off)) {
				d->next_free = u->free_head;
				u->free_head = (int)(d - u->rds);
				u->inflight--;
			}
		}
		io_uring_cq_advance(&u->ring, seen);
	}
	return u->rc;
}

/*
 * Fraction (0..1) of the range's pages in the page cache, from mincore() on a throwaway mapping
 * (every page up to 4096 pages, else 256 evenly spread windows of 16 pages), or -1 when it cannot
 * be told.
 */
static double cached_fraction(int fd, uint64_t off, uint64_t len)
{
	uint64_t a = off & ~(uint64_t)(PAGE - 1), mlen = off + len - a;
	size_t npages = (size_t)((mlen + PAGE - 1) / PAGE), win = 16, nwin = 256, w, k, in = 0, tot = 0;
	unsigned char vec[16];
	uint8_t *p;

	p = mmap(NULL, (size_t)mlen, PROT_READ, MAP_SHARED, fd, (off_t)a);
	if (p == MAP_FAILED)
		return -1;
	if (npages <= win * nwin)
		nwin = (npages + win - 1) / win;
	for (w = 0; w < nwin; w++) {
		size_t first = npages <= win * 256 ? w * win : w * (npages - win) / (nwin - 1);
		size_t cnt = npages - first < win ? npages - first : win;

		if (mincore(p + first * PAGE, cnt * PAGE, vec) < 0) {
			munmap(p, (size_t)mlen);
			return -1;
		}
		for (k = 0; k < cnt; k++)
			in += vec[k] & 1;
		tot += cnt;
	}
	munmap(p, (size_t)mlen);
	return tot ? (double)in / (double)tot : -1;
}

/* ---- MMAP ----------------------------------------------------------------------------------- */

static int load_mmap(int fd, uint64_t off, uint64_t len, struct ccm_progress *prog, struct ccm_region *r, char *err,
                     size_t errlen)
{
	uint64_t a = off & ~(uint64_t)(PAGE - 1), mlen = off + len - a, pos;
	volatile const uint8_t *q;
	size_t chunk = (size_t)env_long("CCM_MMAP_CHUNK_KB", MMAP_CHUNK >> 10, 4, 1 << 20) << 10, n, i;
	uint8_t *p;
	int populate = 1;

	p = mmap(NULL, (size_t)mlen, PROT_READ, MAP_SHARED, fd, (off_t)a);
	if (p == MAP_FAILED) {
		int e = errno;

		seterr(err, errlen, "cannot map the file: %s", strerror(e));
		return -e;
	}
	r->base = p;
	r->map_len = (size_t)mlen;
	r->data = p + (off - a);
	snprintf(r->placement, sizeof(r->placement), "file page cache");
	madvise(p, (size_t)mlen, MADV_WILLNEED);
	for (pos = 0; pos < mlen; pos += n) {
		if (prog_cancelled(prog)) {
			seterr(err, errlen, "load cancelled");
			return -ECANCELED;
		}
		n = mlen - pos < chunk ? (size_t)(mlen - pos) : chunk;
		if (populate && madvise(p + pos, n, MADV_POPULATE_READ) < 0) {
			if (errno == EINVAL) {
				populate = 0; /* before Linux 5.14: touch the pages */
			} else if (errno == EINTR || errno == EAGAIN) {
				n = 0;
				continue;
			} else {
				int e = errno;

				seterr(err, errlen, "cannot read the file's pages in [%llu, %llu): %s%s",
				       (unsigned long long)(a + pos), (unsigned long long)(a + pos + n), strerror(e),
				       e == EFAULT ? " (did the file shrink?)" : "");
				return e == EFAULT ? -EIO : -e;
			}
		}
		if (!populate)
			for (q = p + pos, i = 0; i < n; i += PAGE)
				(void)q[i];
		prog_add(prog, overlap(a + pos, a + pos + n, off, off + len));
	}
	return 0;
}

/* ---- the entry points ----------------------------------------------------------------------- */

/* Decide whether URING reads with O_DIRECT; returns the descriptor or -1 (buffered). */
static int open_direct(int fd, uint64_t off, uint64_t len)
{
	const char *env = getenv("CCM_DIRECT");
	char path[64];
	double cached;

	if (env && !strcmp(env, "0"))
		return -1;
	if (!(env && !strcmp(env, "1"))) {
		/* auto: O_DIRECT only for a range mostly not in the page cache and large enough to matter. */
		if (len < ((uint64_t)8 << 20))
			return -1;
		cached = cached_fraction(fd, off, len);
		if (cached < 0 || cached > 0.5)
			return -1;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
}

/* URING into dst (the page-aligned start of the mapping); falls back to READ (*mode) with a note. */
static int run_uring(int fd, uint64_t off, uint64_t len, uint8_t *dst, struct ccm_progress *prog, struct ccm_region *r,
                     char *err, size_t errlen)
{
	int depth = (int)env_long("CCM_URING_DEPTH", URING_DEPTH, 1, URING_DEPTH_MAX);
	size_t chunk = (size_t)env_long("CCM_URING_CHUNK_KB", URING_CHUNK >> 10, 4, 1 << 20) << 10;
	const char *no = getenv("CCM_NO_URING");
	struct io_uring_probe *probe;
	struct uload *u;
	int rc, ok;

	if (no && !strcmp(no, "1")) {
		r->mode = CCM_MODE_READ;
		addnote(r, "io_uring disabled (CCM_NO_URING=1): loaded with pread");
		return 1;
	}
	u = calloc(1, sizeof(*u));
	if (!u) {
		seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = io_uring_queue_init((unsigned)depth, &u->ring, 0);
	if (rc < 0) {
		r->mode = CCM_MODE_READ;
		addnote(r, "io_uring unavailable (%s): loaded with pread", strerror(-rc));
		free(u);
		return 1;
	}
	probe = io_uring_get_probe_ring(&u->ring);
	ok = probe && io_uring_opcode_supported(probe, IORING_OP_READ);
	if (probe)
		io_uring_free_probe(probe);
	if (!ok) {
		io_uring_queue_exit(&u->ring);
		free(u);
		r->mode = CCM_MODE_READ;
		addnote(r, "io_uring unavailable (no IORING_OP_READ on this kernel): loaded with pread");
		return 1;
	}
	u->fd = fd;
	u->dfd = open_direct(fd, off, len);
	u->a = off & ~(uint64_t)(PAGE - 1);
	u->e = off + len;
	u->dst = dst;
	u->prog = prog;
	/* One read gains nothing from a worker thread: IOSQE_ASYNC only when there are several. */
	u->async = (int)env_long("CCM_URING_ASYNC", len > chunk, 0, 1);
	u->err = err;
	u->errlen = errlen;
	r->direct = u->dfd >= 0;
	rc = load_uring(u, off, depth, chunk);
	if (u->dfd >= 0)
		close(u->dfd);
	io_uring_queue_exit(&u->ring);
	free(u);
	return rc;
}

int ccm_load_fd(int fd, uint64_t off, uint64_t len, enum ccm_mode mode, const struct ccm_place *place,
                struct ccm_progress *prog, struct ccm_region *ret, char *err, size_t errlen)
{
	static const struct ccm_place def_place = {CCM_PLACE_INTERLEAVE, -1};
	uint64_t head = off % PAGE;
	struct stat st;
	int rc;

	if (err && errlen)
		err[0] = 0;
	if (!ret) {
		seterr(err, errlen, "no region to fill");
		return -EINVAL;
	}
	memset(ret, 0, sizeof(*ret));
	if ((unsigned)mode > CCM_MODE_READ) {
		seterr(err, errlen, "unknown load mode %d", (int)mode);
		return -EINVAL;
	}
	if (!place)
		place = &def_place;
	if (fstat(fd, &st) < 0) {
		int e = errno;

		seterr(err, errlen, "cannot stat the file: %s", strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		seterr(err, errlen, "not a regular file");
		return -EINVAL;
	}
	if (len == 0 || off > (uint64_t)st.st_size || len > (uint64_t)st.st_size - off) {
		seterr(err, errlen, "range [%llu, +%llu) is not inside the file (%lld bytes)", (unsigned long long)off,
		       (unsigned long long)len, (long long)st.st_size);
		return -EINVAL;
	}
	if (len > SIZE_MAX - 2 * HUGE_SZ) {
		seterr(err, errlen, "range of %llu bytes is too large for this address space", (unsigned long long)len);
		return -ENOMEM;
	}
	if (prog) {
		prog->total = len;
		atomic_store_explicit(&prog->done, 0, memory_order_relaxed);
	}
	ret->len = (size_t)len;
	ret->mode = mode;
	if (mode == CCM_MODE_MMAP) {
		rc = load_mmap(fd, off, len, prog, ret, err, errlen);
		goto out;
	}
	rc = check_place(place, err, errlen);
	if (rc < 0)
		goto out;
	rc = anon_alloc((size_t)(head + len), place, ret, err, errlen);
	if (rc < 0)
		goto out;
	ret->data = (uint8_t *)ret->base + head;
	if (mode == CCM_MODE_URING) {
		rc = run_uring(fd, off, len, ret->base, prog, ret, err, errlen);
		if (rc <= 0)
			goto out;
	}
	rc = load_read(fd, off, len, (uint8_t *)ret->base + head, prog, err, errlen);
out:
	if (rc < 0)
		ccm_region_free(ret);
	return rc;
}

void ccm_region_free(struct ccm_region *r)
{
	if (!r)
		return;
	if (r->base && r->map_len)
		munmap(r->base, r->map_len);
	memset(r, 0, sizeof(*r));
}
