/* SPDX-License-Identifier: MIT */
/* dispatch.c: the automatic choice between libcck and the OpenCL device, per op and size. An op goes to the device
 * only from its crossover: the smallest size of a ladder from which the device was faster than libcck at every
 * larger size measured, by a margin (a device that merely ties stays unused: its copies and queue cost more under
 * load than a timing shows). Measured at an op's first dispatch of a size worth it, cached on disk per device,
 * driver and kernel source. trueno's GPU path was 2x to 800x slower on vector ops for want of this. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cck.h"
#include "ccg.h"

#define NQTYPES 5
#define NSLOTS (CCK_OP_COUNT + NQTYPES)
#define MARGIN 0.85  /* the device must take <= 85% of libcck's time to count as faster */
#define LOSS 4.0    /* a first call this many times libcck's is a loss without timing it again */
#define REPS 5       /* timed calls per backend and size (the fastest counts) */
#define NLADDER 8 /* sizes a ladder may hold */

static const int qtypes[NQTYPES] = {CCK_TYPE_Q4_0, CCK_TYPE_Q4_1, CCK_TYPE_Q8_0, CCK_TYPE_Q4_K, CCK_TYPE_Q6_K};

enum { XO_UNKNOWN = 0, XO_KNOWN };

static _Atomic int g_backend = CCG_BACKEND_AUTO;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER; /* the table, the file, one calibration at a time */
static _Atomic int g_state[NSLOTS];
static _Atomic size_t g_xo[NSLOTS];
static int g_loaded;
static _Atomic uint64_t g_device_calls;

uint64_t ccg_device_calls(void)
{
	return atomic_load(&g_device_calls);
}

static const char *const backend_names[] = {"auto", "cpu", "opencl"};

int ccg_backend_lookup(const char *name)
{
	if (!name)
		return -EINVAL;
	for (int i = 0; i < 3; i++)
		if (!strcasecmp(name, backend_names[i]))
			return i;
	return -ENOENT;
}

const char *ccg_backend_name(int b)
{
	return b >= 0 && b < 3 ? backend_names[b] : NULL;
}

/* The environment's backend, read once at load so that a call's fast path is one relaxed load. */
__attribute__((constructor)) static void env_backend(void)
{
	const char *e = getenv("CC_BACKEND");
	int b = e && *e ? ccg_backend_lookup(e) : CCG_BACKEND_AUTO;

	if (b >= 0)
		atomic_store(&g_backend, b);
}

int ccg_set_backend(int b)
{
	if (!ccg_backend_name(b))
		return -EINVAL;
	atomic_store(&g_backend, b);
	return 0;
}

int ccg_get_backend(void)
{
	return atomic_load_explicit(&g_backend, memory_order_relaxed);
}

/* ---- slots: cck ops, then the quantized matvec of each type -------------------------------------------------- */

static int slot_of(int op)
{
	if (op >= 0 && op < CCK_OP_COUNT)
		return op;
	for (int i = 0; i < NQTYPES; i++)
		if (op == CCG_QOP(qtypes[i]))
			return CCK_OP_COUNT + i;
	return -1;
}

static void slot_name(int slot, char *buf, size_t len)
{
	if (slot < CCK_OP_COUNT)
		snprintf(buf, len, "%s", cck_op_name(slot));
	else
		snprintf(buf, len, "qmatvec_%s", cck_type_name(qtypes[slot - CCK_OP_COUNT]));
}

/* The cache file: one line per known slot, "NAME N" or "NAME never". Called with g_lock held. */
static void load_cache(void)
{
	const char *path = ccg_cache_path();
	char line[128], name[64], val[32];
	FILE *f;

	if (g_loaded || !path)
		return;
	g_loaded = 1;
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %31s", name, val) != 2)
			continue;
		for (int s = 0; s < NSLOTS; s++) {
			char sn[64];
			char *end;
			unsigned long long v;

			slot_name(s, sn, sizeof(sn));
			if (strcmp(sn, name))
				continue;
			if (!strcmp(val, "never")) {
				atomic_store(&g_xo[s], SIZE_MAX);
			} else {
				v = strtoull(val, &end, 10);
				if (*end || v == 0)
					break;
				atomic_store(&g_xo[s], (size_t)v);
			}
			atomic_store(&g_state[s], XO_KNOWN);
			break;
		}
	}
	fclose(f);
}

static void save_cache(void)
{
	const char *path = ccg_cache_path();
	char tmp[600], sn[64];
	FILE *f;

	if (!path)
		return;
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	f = fopen(tmp, "we");
	if (!f)
		return;
	for (int s = 0; s < NSLOTS; s++) {
		size_t v = atomic_load(&g_xo[s]);

		if (atomic_load(&g_state[s]) != XO_KNOWN)
			continue;
		slot_name(s, sn, sizeof(sn));
		if (v == SIZE_MAX)
			fprintf(f, "%s never\n", sn);
		else
			fprintf(f, "%s %zu\n", sn, v);
	}
	if (fclose(f) == 0)
		rename(tmp, path);
	else
		unlink(tmp);
}

/* ---- measuring ---------------------------------------------------------------------------------------------- */

struct bench {
	int slot, kind;
	size_t n, rows, cols, m, k;
	float *a, *b, *y;
	void *w;
	float params[2];
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int run_once(struct bench *b, int device)
{
	double r;
	int op = b->slot;

	if (b->slot >= CCK_OP_COUNT) {
		int t = qtypes[b->slot - CCK_OP_COUNT];

		return device ? ccg_cl_qmatvec(t, b->w, 0, b->a, b->y, b->rows, b->cols)
		              : cck_qmatvec(t, b->w, 0, b->a, b->y, b->rows, b->cols);
	}
	switch (b->kind) {
	case CCK_KIND_UNARY:
	case CCK_KIND_VECTOR:
		return device ? ccg_cl_unary_f32(op, b->a, b->y, b->n, b->params)
		              : cck_unary_f32(op, b->a, b->y, b->n, b->params);
	case CCK_KIND_BINARY:
		return device ? ccg_cl_binary_f32(op, b->a, b->b, b->y, b->n) : cck_binary_f32(op, b->a, b->b, b->y, b->n);
	case CCK_KIND_REDUCE:
		return device ? ccg_cl_reduce_f32(op, b->a, b->n, &r) : cck_reduce_f32(op, b->a, b->n, &r);
	case CCK_KIND_REDUCE2:
		return device ? ccg_cl_reduce2_f32(op, b->a, b->b, b->n, &r) : cck_reduce2_f32(op, b->a, b->b, b->n, &r);
	default:
		if (op == CCK_OP_MATVEC)
			return device ? ccg_cl_matvec_f32(b->a, b->b, b->y, b->rows, b->cols)
			              : cck_matvec_f32(b->a, b->b, b->y, b->rows, b->cols);
		return device ? ccg_cl_matmul_f32(b->a, b->b, b->y, b->m, b->k, b->m)
		              : cck_matmul_f32(b->a, b->b, b->y, b->m, b->k, b->m);
	}
}

/* The fastest of REPS calls on each side after a warm-up, the two sides taking turns so that a burst of load on
 * the shared machine hits both; seconds in t[0] (libcck) and t[1] (device). 0 or -errno. */
static int time_both(struct bench *b, double t[2])
{
	double warm[2];

	t[0] = t[1] = INFINITY;
	for (int dev = 0; dev < 2; dev++) {
		warm[dev] = now();
		if (run_once(b, dev) < 0)
			return -EIO;
		warm[dev] = now() - warm[dev];
	}
	if (warm[1] > LOSS * warm[0]) { /* a clear loss needs no repeats (slow ops would take seconds) */
		t[0] = warm[0];
		t[1] = warm[1];
		return 0;
	}
	for (int i = 0; i < REPS; i++)
		for (int dev = 0; dev < 2; dev++) {
			double t0 = now();

			if (run_once(b, dev) < 0)
				return -EIO;
			t0 = now() - t0;
			if (t0 < t[dev])
				t[dev] = t0;
		}
	return 0;
}

static float frand(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return (float)(*s >> 8) * (1.0f / 16777216.0f);
}

static void fill(float *p, size_t n, float lo, float hi, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = lo + (hi - lo) * frand(&seed);
}

/* Inputs of the slot's op at size n (elements; for matmul m*k*n multiply-adds). 0, -ENOMEM or -EINVAL. */
static int bench_make(struct bench *b, int slot, size_t n)
{
	size_t na, nb = 0, ny;
	int positive = 0;

	memset(b, 0, sizeof(*b));
	b->slot = slot;
	b->n = n;
	b->kind = slot < CCK_OP_COUNT ? cck_op_kind(slot) : CCK_KIND_MATRIX;
	na = ny = n;
	if (slot >= CCK_OP_COUNT) {
		size_t side = (size_t)sqrt((double)n) / 256 * 256, wb;

		b->rows = b->cols = side < 256 ? 256 : side;
		na = b->cols;
		ny = b->rows;
		if (cck_type_row_bytes(qtypes[slot - CCK_OP_COUNT], b->cols, &wb) < 0)
			return -EINVAL;
		b->w = malloc(wb * b->rows);
		if (!b->w)
			return -ENOMEM;
	} else if (slot == CCK_OP_MATVEC) {
		b->rows = b->cols = (size_t)sqrt((double)n);
		na = b->rows * b->cols;
		nb = b->cols;
		ny = b->rows;
	} else if (slot == CCK_OP_MATMUL) {
		b->m = b->k = (size_t)cbrt((double)n);
		na = nb = ny = b->m * b->k;
	} else if (b->kind == CCK_KIND_BINARY || b->kind == CCK_KIND_REDUCE2) {
		nb = n;
	}
	b->a = malloc(na * sizeof(float));
	b->b = nb ? malloc(nb * sizeof(float)) : NULL;
	b->y = malloc(ny * sizeof(float));
	if (!b->a || (nb && !b->b) || !b->y)
		return -ENOMEM;
	positive = slot == CCK_OP_SQRT || slot == CCK_OP_RSQRT || slot == CCK_OP_LN || slot == CCK_OP_LOG2 ||
	           slot == CCK_OP_LOG10 || slot == CCK_OP_RECIP;
	fill(b->a, na, positive ? 0.5f : -4.0f, 4.0f, 12345);
	if (nb)
		fill(b->b, nb, 0.5f, 2.0f, 777);
	b->params[0] = slot == CCK_OP_CLAMP ? -1.0f : slot == CCK_OP_LAYER_NORM || slot == CCK_OP_RMS_NORM ? 1e-5f : 0.1f;
	b->params[1] = 1.0f;
	if (slot >= CCK_OP_COUNT) {
		size_t wb;
		float *tmp = malloc(b->cols * sizeof(float));

		if (!tmp)
			return -ENOMEM;
		cck_type_row_bytes(qtypes[slot - CCK_OP_COUNT], b->cols, &wb);
		for (size_t r = 0; r < b->rows; r++) {
			fill(tmp, b->cols, -1.0f, 1.0f, (uint32_t)r + 1);
			cck_quantize(qtypes[slot - CCK_OP_COUNT], tmp, (char *)b->w + r * wb, b->cols);
		}
		free(tmp);
	}
	return 0;
}

static void bench_free(struct bench *b)
{
	free(b->a);
	free(b->b);
	free(b->y);
	free(b->w);
}

/* The size ladder of a slot, smallest first (elements; matmul: m*k*n multiply-adds); returns how many. */
static int ladder(int slot, size_t *sz)
{
	int n = 0;

	if (slot == CCK_OP_MATMUL)
		for (size_t side = 16; side <= 512; side *= 2)
			sz[n++] = side * side * side;
	else if (slot >= CCK_OP_COUNT) /* square weights of 256 .. 4096 columns: up to a big layer's */
		for (size_t side = 256; side <= 4096; side *= 2)
			sz[n++] = side * side;
	else
		for (size_t e = 4096; e <= ((size_t)16 << 20); e *= 4) /* 4K .. 16M */
			sz[n++] = e;
	return n;
}

/*
 * Measure slot's crossover, from the top of the ladder down: the crossover is the smallest size from which the
 * device won (took <= MARGIN of libcck's time) at every size above, and it takes two sizes in a row: a device
 * that wins only at the top of the ladder is within the noise of a shared machine, and sizes past the top would
 * follow that one verdict. 0 (g_xo[slot] set), or -errno. Called with g_lock held.
 */
static int measure(int slot)
{
	size_t sz[NLADDER], xo = SIZE_MAX;
	int n = ladder(slot, sz), wins = 0;
	char name[64];

	slot_name(slot, name, sizeof(name));
	for (int i = n - 1; i >= 0; i--) {
		struct bench b;
		double t[2];
		int rc = bench_make(&b, slot, sz[i]);

		if (rc == 0)
			rc = time_both(&b, t);
		bench_free(&b);
		if (rc < 0)
			return rc;
		if (getenv("CCG_DEBUG"))
			fprintf(stderr, "ccg: crossover %s n=%zu cpu %.3g s device %.3g s\n", name, sz[i], t[0], t[1]);
		if (t[1] > MARGIN * t[0])
			break; /* the device lost here: the crossover is above */
		xo = sz[i];
		wins++;
	}
	atomic_store(&g_xo[slot], wins >= 2 ? xo : SIZE_MAX);
	atomic_store(&g_state[slot], XO_KNOWN);
	return 0;
}

int ccg_calibrate(int op, int force)
{
	int slot = slot_of(op), rc = 0;

	if (slot < 0)
		return -EINVAL;
	if (ccg_init() < 0)
		return -ENODEV;
	pthread_mutex_lock(&g_lock);
	load_cache();
	if (force || atomic_load(&g_state[slot]) != XO_KNOWN) {
		rc = measure(slot);
		if (rc == 0)
			save_cache();
	}
	pthread_mutex_unlock(&g_lock);
	return rc;
}

int ccg_crossover(int op, size_t *n)
{
	int slot = slot_of(op);

	if (slot < 0 || !n)
		return -EINVAL;
	if (ccg_init() < 0) {
		*n = SIZE_MAX;
		return 0;
	}
	if (pthread_mutex_trylock(&g_lock) == 0) { /* busy: a calibration runs, after loading the cache */
		load_cache();
		pthread_mutex_unlock(&g_lock);
	}
	if (atomic_load(&g_state[slot]) != XO_KNOWN)
		return -EAGAIN;
	*n = atomic_load(&g_xo[slot]);
	return 0;
}

/*
 * Whether a call of slot's op at size n goes to the device. Below CCG_MIN_MEASURE (and whenever the device is not
 * known to be faster) it stays on libcck. The first call of an unknown op that is big enough measures it; another
 * thread calling while a measurement runs takes libcck rather than waiting.
 */
static __attribute__((noinline)) int use_device_slow(int b, int slot, size_t n)
{
	if (slot < 0 || slot >= NSLOTS)
		return 0; /* a bad op id: libcck says -EINVAL */
	if (b == CCG_BACKEND_OPENCL)
		return ccg_init() == 0;
	if (ccg_init() < 0)
		return 0;
	if (atomic_load(&g_state[slot]) != XO_KNOWN) {
		if (pthread_mutex_trylock(&g_lock) != 0)
			return 0;
		load_cache();
		if (atomic_load(&g_state[slot]) != XO_KNOWN && measure(slot) == 0)
			save_cache();
		pthread_mutex_unlock(&g_lock);
		if (atomic_load(&g_state[slot]) != XO_KNOWN)
			return 0;
	}
	return n >= atomic_load(&g_xo[slot]);
}

/* The fast path, inlined into every call: small ops cost libcck's time plus one relaxed load and a compare. */
static inline int use_device(int slot, size_t n)
{
	int b = atomic_load_explicit(&g_backend, memory_order_relaxed);

	if (b == CCG_BACKEND_CPU || (b == CCG_BACKEND_AUTO && n < CCG_MIN_MEASURE))
		return 0;
	return use_device_slow(b, slot, n);
}

/* A device error other than a bad argument falls back to libcck: the caller gets its result either way. A call the
 * device answered is counted. */
static int device_failed(int rc)
{
	if (rc < 0 && rc != -EINVAL && rc != -EOVERFLOW)
		return 1;
	if (rc >= 0)
		atomic_fetch_add_explicit(&g_device_calls, 1, memory_order_relaxed);
	return 0;
}

static size_t mul_sat(size_t a, size_t b)
{
	return b && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

int ccg_unary_f32(int op, const float *x, float *y, size_t n, const float *params)
{
	int rc;

	if (use_device(op, n)) {
		rc = ccg_cl_unary_f32(op, x, y, n, params);
		if (!device_failed(rc))
			return rc;
	}
	return cck_unary_f32(op, x, y, n, params);
}

int ccg_binary_f32(int op, const float *a, const float *b, float *y, size_t n)
{
	int rc;

	if (use_device(op, n)) {
		rc = ccg_cl_binary_f32(op, a, b, y, n);
		if (!device_failed(rc))
			return rc;
	}
	return cck_binary_f32(op, a, b, y, n);
}

int ccg_reduce_f32(int op, const float *x, size_t n, double *ret)
{
	int rc;

	if (use_device(op, n)) {
		rc = ccg_cl_reduce_f32(op, x, n, ret);
		if (!device_failed(rc))
			return rc;
	}
	return cck_reduce_f32(op, x, n, ret);
}

int ccg_reduce2_f32(int op, const float *a, const float *b, size_t n, double *ret)
{
	int rc;

	if (use_device(op, n)) {
		rc = ccg_cl_reduce2_f32(op, a, b, n, ret);
		if (!device_failed(rc))
			return rc;
	}
	return cck_reduce2_f32(op, a, b, n, ret);
}

int ccg_matvec_f32(const float *A, const float *x, float *y, size_t rows, size_t cols)
{
	int rc;

	if (use_device(CCK_OP_MATVEC, mul_sat(rows, cols))) {
		rc = ccg_cl_matvec_f32(A, x, y, rows, cols);
		if (!device_failed(rc))
			return rc;
	}
	return cck_matvec_f32(A, x, y, rows, cols);
}

int ccg_matmul_f32(const float *A, const float *B, float *C, size_t m, size_t k, size_t n)
{
	int rc;

	if (use_device(CCK_OP_MATMUL, mul_sat(mul_sat(m, k), n))) {
		rc = ccg_cl_matmul_f32(A, B, C, m, k, n);
		if (!device_failed(rc))
			return rc;
	}
	return cck_matmul_f32(A, B, C, m, k, n);
}

int ccg_qmatvec(int type, const void *W, size_t row_stride, const float *x, float *y, size_t rows, size_t cols)
{
	int slot = slot_of(CCG_QOP(type)), rc;

	if (slot >= 0 && use_device(slot, mul_sat(rows, cols))) {
		rc = ccg_cl_qmatvec(type, W, row_stride, x, y, rows, cols);
		if (!device_failed(rc))
			return rc;
	}
	return cck_qmatvec(type, W, row_stride, x, y, rows, cols);
}
