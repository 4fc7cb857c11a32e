/* SPDX-License-Identifier: MIT */
/* test_ccd_ops.c: every libcck op through a real ccd (libcc and raw requests) is bit-identical to libcck in-process. */
/*
 * The daemon runs the same libcck with one thread per job (cck_set_threads(1)) and the host's
 * "auto" tier; this program does the same for its in-process reference, and keeps its buffers
 * page-aligned like the shared regions, so that every result must match to the bit (any NaN
 * matches any NaN), error codes included.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cck.h"
#include "t_ccd.h"
#include "t_ref.h"

#define T_NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define T_BIG ((size_t)(1u << 20) + 3)
#define T_PRINT_MAX 25       /* mismatch messages printed per test */
#define T_SENTINEL -7777.25f /* written to outputs before a job: a job that writes nothing shows */
#define T_ASYNC_JOBS 48      /* below the default max_inflight_per_client (64) */

static const size_t t_sizes[] = {0, 1, 2, 3, 5, 8, 15, 16, 17, 31, 33, 64, 65, 100, 255, 1000, 4097, 65537, T_BIG};

static struct t_ccd t_d;
static cc_client *t_c;
static struct t_raw t_r;
static unsigned t_nprinted;
static size_t t_ncompared;

#define t_fail_msg(nfail, ...) t_mismatch(nfail, &t_nprinted, T_PRINT_MAX, __VA_ARGS__)

static int t_group_setup(void **state)
{
	(void)state;
	return t_fixture_up(&t_d, NULL, &t_c, &t_r);
}

static int t_group_teardown(void **state)
{
	(void)state;
	print_message("%zu results compared with libcck in-process\n", t_ncompared);
	return t_fixture_down(&t_d, &t_c, &t_r);
}

static int t_setup(void **state)
{
	(void)state;
	t_nprinted = 0;
	t_watchdog(120, "test_ccd_ops");
	return 0;
}

/* ---- tensors: a libcc tensor and its page-aligned in-process twin ----------------------- */
struct t_pair {
	size_t n;
	cc_tensor *t;
	float *d; /* cc_tensor_data(t) */
	float *l; /* in-process copy */
};

static void t_pair_new(struct t_pair *p, size_t n)
{
	int err;

	memset(p, 0, sizeof(*p));
	p->n = n;
	err = cc_tensor_new(t_c, CC_DTYPE_F32, n, &p->t);
	if (err)
		fail_msg("cc_tensor_new(n=%zu): %s (%s)", n, cc_strerror(err), cc_last_error(t_c));
	assert_int_equal(cc_tensor_len(p->t), n);
	p->d = cc_tensor_data(p->t);
	assert_non_null(p->d);
	p->l = t_alloc_pages(n * sizeof(float));
	assert_non_null(p->l);
}

static void t_pair_free(struct t_pair *p)
{
	cc_tensor_free(p->t);
	free(p->l);
	memset(p, 0, sizeof(*p));
}

/* Same bytes on both sides. */
static void t_pair_sync(struct t_pair *p)
{
	if (p->n)
		memcpy(p->l, p->d, p->n * sizeof(float));
}

static void t_pair_fill_const(struct t_pair *p, float v)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		p->d[i] = v;
	t_pair_sync(p);
}

enum t_data { T_DATA_MIXED, T_DATA_POSITIVE, T_DATA_SPECIAL, T_DATA_COUNT };
static const char *const t_data_names[T_DATA_COUNT] = {"mixed", "positive", "special"};

static void t_fill(float *x, size_t n, enum t_data kind, uint64_t seed)
{
	struct t_rng r;
	size_t i;

	t_rng_seed(&r, seed);
	for (i = 0; i < n; i++) {
		switch (kind) {
		case T_DATA_MIXED:
			x[i] = (float)t_rng_uniform(&r, -5, 5);
			break;
		case T_DATA_POSITIVE:
			x[i] = (float)t_rng_uniform(&r, 0.01, 10);
			break;
		default:
			/* every third element special (zeros, infinities, NaNs, denormals, extremes) */
			x[i] =
			    i % 3 == 1 ? t_special(t_rng_below(&r, t_nspecials())) : (float)t_rng_uniform(&r, -50, 50);
			break;
		}
	}
}

static void t_pair_fill(struct t_pair *p, enum t_data kind, uint64_t seed)
{
	t_fill(p->d, p->n, kind, seed);
	t_pair_sync(p);
}

/* Compare the daemon's side of p with the in-process side; a message per mismatch. */
static void t_pair_check(const struct t_pair *p, unsigned *nfail, const char *what)
{
	size_t i = t_f32_diff(p->d, p->l, p->n);

	t_ncompared++;
	if (i < p->n)
		t_fail_msg(nfail, "%s: element %zu of %zu: ccd %a (0x%08x), in-process %a (0x%08x)", what, i, p->n,
		           (double)p->d[i], t_bits(p->d[i]), (double)p->l[i], t_bits(p->l[i]));
}

/* Parameter sets of the ops that take any. */
static int t_param_sets(int op, float sets[][2])
{
	switch (op) {
	case CCK_OP_LEAKY_RELU:
		sets[0][0] = 0.01f, sets[1][0] = 0.3f;
		return 2;
	case CCK_OP_ELU:
		sets[0][0] = 1.0f, sets[1][0] = 0.5f;
		return 2;
	case CCK_OP_SCALE:
		sets[0][0] = 2.5f, sets[1][0] = -0.75f;
		return 2;
	case CCK_OP_ADD_SCALAR:
		sets[0][0] = 1.5f, sets[1][0] = -3.0f;
		return 2;
	case CCK_OP_CLAMP:
		sets[0][0] = -1.0f, sets[0][1] = 1.0f, sets[1][0] = 0.5f, sets[1][1] = 3.0f;
		return 2;
	case CCK_OP_LAYER_NORM:
		sets[0][0] = 1e-5f, sets[1][0] = 0.1f;
		return 2;
	case CCK_OP_RMS_NORM:
		sets[0][0] = 1e-6f, sets[1][0] = 1.0f;
		return 2;
	default:
		sets[0][0] = 0.5f, sets[0][1] = 1.5f;
		return 1;
	}
}

static const char *t_shape(char *buf, size_t size, const char *op, size_t n, enum t_data data, const float *p, int np)
{
	int k = snprintf(buf, size, "%s n=%zu data=%s", op, n, t_data_names[data]);

	if (np >= 1)
		k += snprintf(buf + k, size - (size_t)k, " params=%g", (double)p[0]);
	if (np >= 2)
		snprintf(buf + k, size - (size_t)k, ",%g", (double)p[1]);
	return buf;
}

/* The daemon's tier is ours, and it lists every libcck op with its kind. */
static void test_kernels_match(void **state)
{
	Cc__Reply *rep;
	size_t i, j;
	int op;

	(void)state;
	assert_int_equal(t_raw_empty(&t_r, CC__REQUEST__BODY_KERNELS, &rep), 0);
	assert_int_equal(rep->code, 0);
	assert_int_equal(rep->body_case, CC__REPLY__BODY_KERNELS);
	if (strcmp(rep->kernels->tier, cck_tier()))
		fail_msg("ccd's tier is '%s', in-process libcck's '%s': results cannot be compared", rep->kernels->tier,
		         cck_tier());
	assert_int_equal(rep->kernels->n_ops, CCK_OP_COUNT);
	assert_int_equal(rep->kernels->n_kinds, rep->kernels->n_ops);
	for (op = 0; op < CCK_OP_COUNT; op++) {
		static const char *const kinds[CCK_KIND_COUNT] = {"unary",  "vector",  "binary",
		                                                  "reduce", "reduce2", "matrix"};

		for (j = 0; j < rep->kernels->n_ops; j++)
			if (!strcmp(rep->kernels->ops[j], cck_op_name(op)))
				break;
		if (j == rep->kernels->n_ops)
			fail_msg("ccd's kernels reply lacks op '%s'", cck_op_name(op));
		assert_string_equal(rep->kernels->kinds[j], kinds[cck_op_kind(op)]);
	}
	for (i = 0; i < rep->kernels->n_tiers; i++)
		if (!strcmp(rep->kernels->tiers[i], cck_host_tier()))
			break;
	if (i == rep->kernels->n_tiers)
		fail_msg("ccd's supported tiers lack the host's '%s'", cck_host_tier());
	cc__reply__free_unpacked(rep, NULL);
	assert_int_equal(cc_ping(t_c), 0);
}

/* Unary element-wise and whole-vector ops, every size, data set and parameter set; in place too. */
static void run_unary_kind(int want_kind)
{
	struct t_pair x[T_NELEM(t_sizes)], y[T_NELEM(t_sizes)];
	unsigned nfail = 0, ncalls = 0;
	char what[160];
	size_t si;
	int op;

	for (si = 0; si < T_NELEM(t_sizes); si++) {
		t_pair_new(&x[si], t_sizes[si]);
		t_pair_new(&y[si], t_sizes[si]);
	}
	for (op = 0; op < CCK_OP_COUNT; op++) {
		float psets[2][2];
		int np, nsets, ps;

		if (cck_op_kind(op) != want_kind)
			continue;
		np = cck_op_nparams(op);
		nsets = np ? t_param_sets(op, psets) : 1;
		for (ps = 0; ps < nsets; ps++) {
			const float *params = np ? psets[ps] : NULL;

			for (si = 0; si < T_NELEM(t_sizes); si++) {
				size_t n = t_sizes[si];
				int data;

				for (data = 0; data < T_DATA_COUNT; data++) {
					int rl, rd;

					if (n == T_BIG && (data != T_DATA_MIXED || ps > 0))
						continue; /* one big run per op is enough */
					t_shape(what, sizeof(what), cck_op_name(op), n, data, params, np);
					t_pair_fill(&x[si], data, 1000u * (unsigned)op + 17u * si + (unsigned)data + 1);
					t_pair_fill_const(&y[si], T_SENTINEL);
					rl = cck_unary_f32(op, x[si].l, y[si].l, n, params);
					rd = cc_unary(t_c, cck_op_name(op), x[si].t, y[si].t, params, (size_t)np);
					ncalls++;
					if (rd != rl) {
						t_fail_msg(&nfail, "%s: ccd returned %d (%s: %s), in-process %d", what,
						           rd, cc_strerror(rd), cc_last_error(t_c), rl);
						continue;
					}
					t_pair_check(&y[si], &nfail, what);
					/* the input is read-only for the daemon */
					if (t_f32_diff(x[si].d, x[si].l, n) != n)
						t_fail_msg(&nfail, "%s: ccd changed the input", what);

					/* element-wise ops in place (y == x) */
					if (want_kind == CCK_KIND_UNARY && data != T_DATA_POSITIVE) {
						rl = cck_unary_f32(op, x[si].l, x[si].l, n, params);
						rd = cc_unary(t_c, cck_op_name(op), x[si].t, x[si].t, params,
						              (size_t)np);
						ncalls++;
						if (rd != rl)
							t_fail_msg(&nfail,
							           "%s in place: ccd returned %d (%s), in-process %d",
							           what, rd, cc_last_error(t_c), rl);
						else
							t_pair_check(&x[si], &nfail, "in place");
					}
				}
			}
		}
	}
	for (si = 0; si < T_NELEM(t_sizes); si++) {
		t_pair_free(&x[si]);
		t_pair_free(&y[si]);
	}
	print_message("%u calls, %u mismatches\n", ncalls, nfail);
	assert_int_equal(nfail, 0);
}

static void test_unary(void **state)
{
	(void)state;
	run_unary_kind(CCK_KIND_UNARY);
}

static void test_vector(void **state)
{
	(void)state;
	run_unary_kind(CCK_KIND_VECTOR);
}

static void test_alias_swish(void **state)
{
	struct t_pair x, y;
	unsigned nfail = 0;

	(void)state;
	t_pair_new(&x, 1001);
	t_pair_new(&y, 1001);
	t_pair_fill(&x, T_DATA_SPECIAL, 99);
	t_pair_fill_const(&y, T_SENTINEL);
	assert_int_equal(cck_unary_f32(CCK_OP_SILU, x.l, y.l, x.n, NULL), 0);
	assert_int_equal(cc_unary(t_c, "swish", x.t, y.t, NULL, 0), 0);
	t_pair_check(&y, &nfail, "swish");
	t_pair_free(&x);
	t_pair_free(&y);
	assert_int_equal(nfail, 0);
}

/* Binary element-wise ops; y aliasing a or b too. */
static void test_binary(void **state)
{
	unsigned nfail = 0, ncalls = 0;
	char what[160];
	size_t si;
	int op;

	(void)state;
	for (si = 0; si < T_NELEM(t_sizes); si++) {
		struct t_pair a, b, y;
		size_t n = t_sizes[si];

		t_pair_new(&a, n);
		t_pair_new(&b, n);
		t_pair_new(&y, n);
		for (op = 0; op < CCK_OP_COUNT; op++) {
			int data, rl, rd;

			if (cck_op_kind(op) != CCK_KIND_BINARY)
				continue;
			for (data = 0; data < T_DATA_COUNT; data++) {
				if (n == T_BIG && data != T_DATA_MIXED)
					continue;
				t_shape(what, sizeof(what), cck_op_name(op), n, data, NULL, 0);
				t_pair_fill(&a, data, 31u * (unsigned)op + si + 7);
				t_pair_fill(&b, data, 37u * (unsigned)op + si + 1000);
				t_pair_fill_const(&y, T_SENTINEL);
				rl = cck_binary_f32(op, a.l, b.l, y.l, n);
				rd = cc_binary(t_c, cck_op_name(op), a.t, b.t, y.t);
				ncalls++;
				if (rd != rl) {
					t_fail_msg(&nfail, "%s: ccd returned %d (%s), in-process %d", what, rd,
					           cc_last_error(t_c), rl);
					continue;
				}
				t_pair_check(&y, &nfail, what);
				/* y == a, then y == b */
				rl = cck_binary_f32(op, a.l, b.l, a.l, n);
				rd = cc_binary(t_c, cck_op_name(op), a.t, b.t, a.t);
				if (rd != rl)
					t_fail_msg(&nfail, "%s, y == a: ccd returned %d, in-process %d", what, rd, rl);
				else
					t_pair_check(&a, &nfail, "y == a");
				rl = cck_binary_f32(op, a.l, b.l, b.l, n);
				rd = cc_binary(t_c, cck_op_name(op), a.t, b.t, b.t);
				ncalls += 2;
				if (rd != rl)
					t_fail_msg(&nfail, "%s, y == b: ccd returned %d, in-process %d", what, rd, rl);
				else
					t_pair_check(&b, &nfail, "y == b");
			}
		}
		t_pair_free(&a);
		t_pair_free(&b);
		t_pair_free(&y);
	}
	print_message("%u calls, %u mismatches\n", ncalls, nfail);
	assert_int_equal(nfail, 0);
}

/* Reductions of one and two vectors (the value comes back in the reply); n = 0 gives the same codes. */
static void test_reduce(void **state)
{
	unsigned nfail = 0, ncalls = 0;
	char what[160];
	size_t si;
	int op;

	(void)state;
	for (si = 0; si < T_NELEM(t_sizes); si++) {
		struct t_pair a, b;
		size_t n = t_sizes[si];

		t_pair_new(&a, n);
		t_pair_new(&b, n);
		for (op = 0; op < CCK_OP_COUNT; op++) {
			int kind = cck_op_kind(op), data, rl, rd;

			if (kind != CCK_KIND_REDUCE && kind != CCK_KIND_REDUCE2)
				continue;
			for (data = 0; data < T_DATA_COUNT; data++) {
				double vl = -1234.5, vd = -1234.5;

				if (n == T_BIG && data != T_DATA_MIXED)
					continue;
				t_shape(what, sizeof(what), cck_op_name(op), n, data, NULL, 0);
				t_pair_fill(&a, data, 41u * (unsigned)op + si + 3);
				t_pair_fill(&b, data, 43u * (unsigned)op + si + 5);
				if (kind == CCK_KIND_REDUCE) {
					rl = cck_reduce_f32(op, a.l, n, &vl);
					rd = cc_reduce(t_c, cck_op_name(op), a.t, NULL, &vd);
				} else {
					rl = cck_reduce2_f32(op, a.l, b.l, n, &vl);
					rd = cc_reduce(t_c, cck_op_name(op), a.t, b.t, &vd);
				}
				ncalls++;
				t_ncompared++;
				if (rd != rl)
					t_fail_msg(&nfail, "%s: ccd returned %d (%s), in-process %d", what, rd,
					           cc_last_error(t_c), rl);
				else if (rl == 0 && !t_f64_same(vd, vl))
					t_fail_msg(&nfail, "%s: ccd %a, in-process %a", what, vd, vl);
				if (t_f32_diff(a.d, a.l, n) != n || t_f32_diff(b.d, b.l, n) != n)
					t_fail_msg(&nfail, "%s: ccd changed an input", what);
			}
		}
		t_pair_free(&a);
		t_pair_free(&b);
	}
	print_message("%u calls, %u mismatches\n", ncalls, nfail);
	assert_int_equal(nfail, 0);
}

/* C[m x n] = A[m x k] B[k x n] on odd shapes. */
static void test_matmul(void **state)
{
	static const size_t shapes[][3] = {{1, 1, 1},       {2, 3, 4},    {3, 5, 7},     {7, 1, 9},     {1, 33, 1},
	                                   {17, 33, 9},     {64, 64, 64}, {65, 127, 31}, {100, 1, 100}, {129, 65, 130},
	                                   {256, 300, 200}, {1, 0, 3},    {0, 4, 5},     {333, 17, 1},  {1, 1000, 517}};
	unsigned nfail = 0;
	char what[96];
	size_t s;

	(void)state;
	for (s = 0; s < T_NELEM(shapes); s++) {
		size_t m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
		struct t_pair A, B, C;
		int rl, rd;

		snprintf(what, sizeof(what), "matmul m=%zu k=%zu n=%zu", m, k, n);
		t_pair_new(&A, m * k);
		t_pair_new(&B, k * n);
		t_pair_new(&C, m * n);
		t_pair_fill(&A, T_DATA_MIXED, 100 + s);
		t_pair_fill(&B, T_DATA_MIXED, 200 + s);
		t_pair_fill_const(&C, T_SENTINEL);
		rl = cck_matmul_f32(A.l, B.l, C.l, m, k, n);
		rd = cc_matmul(t_c, A.t, B.t, C.t, m, k, n);
		if (rd != rl)
			t_fail_msg(&nfail, "%s: ccd returned %d (%s), in-process %d", what, rd, cc_last_error(t_c), rl);
		else
			t_pair_check(&C, &nfail, what);
		t_pair_free(&A);
		t_pair_free(&B);
		t_pair_free(&C);
	}
	assert_int_equal(nfail, 0);
}

/*
 * Raw requests on a memfd region at odd offsets: matvec (libcc has no call for it), element-wise
 * ops and reductions on views that start mid-region. The whole region, outside the output too,
 * must equal the in-process run on a page-aligned copy with the same layout.
 */
static void test_raw_offsets_matvec(void **state)
{
	static const size_t mv[][2] = {{1, 1}, {3, 7}, {17, 33}, {64, 64}, {65, 127}, {1000, 3}, {3, 1000}, {513, 257}};
	const size_t size = 2u << 20;
	unsigned nfail = 0;
	float *reg, *loc;
	char err[256], what[128];
	size_t i;
	int fd, rd, rl;
	const uint64_t rid = 7;

	(void)state;
	fd = t_memfd(size, t_seals_all(), (void **)&reg);
	assert_true(fd >= 0);
	loc = t_alloc_pages(size);
	assert_non_null(loc);
	rd = t_raw_region_add(&t_r, rid, fd, size, err, sizeof(err));
	if (rd)
		fail_msg("region_add of a sealed memfd: %d %s", rd, err);

	for (i = 0; i < T_NELEM(mv); i++) {
		size_t rows = mv[i][0], cols = mv[i][1];
		/* A at byte 4, x right after A (any 4-byte alignment), y at a later odd spot */
		uint64_t oa = 4, ox = oa + rows * cols * 4, oy = ox + cols * 4 + 12;
		Cc__TensorRef A, x, y, *in[2] = {&A, &x};

		snprintf(what, sizeof(what), "matvec rows=%zu cols=%zu", rows, cols);
		t_fill(reg, size / 4, T_DATA_MIXED, 500 + i);
		memcpy(loc, reg, size);
		t_tref(&A, rid, oa, rows * cols);
		t_tref(&x, rid, ox, cols);
		t_tref(&y, rid, oy, rows);
		rl = cck_matvec_f32(loc + oa / 4, loc + ox / 4, loc + oy / 4, rows, cols);
		rd = t_raw_op(&t_r, "matvec", in, 2, &y, NULL, 0, rows, cols, 0, NULL, err, sizeof(err));
		if (rd != rl) {
			t_fail_msg(&nfail, "%s: ccd returned %d (%s), in-process %d", what, rd, err, rl);
			continue;
		}
		t_ncompared++;
		if (t_f32_diff(reg, loc, size / 4) != size / 4) {
			size_t e = t_f32_diff(reg, loc, size / 4);

			t_fail_msg(&nfail, "%s: region float %zu: ccd %a, in-process %a", what, e, (double)reg[e],
			           (double)loc[e]);
		}
	}

	/* element-wise, whole-vector, binary and reductions on views at offsets 4, 12, 60 (bytes) */
	{
		static const char *const ops[] = {"exp", "relu", "softmax", "cumsum", "add",
		                                  "mul", "sum",  "dot",     "argmax"};
		static const uint64_t offs[] = {4, 12, 60, 4096};
		static const size_t lens[] = {1, 7, 33, 1000, 65536 + 5};
		size_t o, l, q;

		for (q = 0; q < T_NELEM(ops); q++) {
			int op = cck_op_lookup(ops[q]), kind = cck_op_kind(op);

			for (o = 0; o < T_NELEM(offs); o++) {
				for (l = 0; l < T_NELEM(lens); l++) {
					uint64_t oa = offs[o], ob = oa + lens[l] * 4 + 8, oy = ob + lens[l] * 4 + 4;
					Cc__TensorRef a, b, y, *in[2] = {&a, &b};
					double vd = 0, vl = 0;
					size_t n = lens[l];

					snprintf(what, sizeof(what), "%s at offset %llu n=%zu", ops[q],
					         (unsigned long long)oa, n);
					t_fill(reg, size / 4, T_DATA_MIXED, 900 + 31 * q + 7 * o + l);
					memcpy(loc, reg, size);
					t_tref(&a, rid, oa, n);
					t_tref(&b, rid, ob, n);
					t_tref(&y, rid, oy, n);
					switch (kind) {
					case CCK_KIND_UNARY:
					case CCK_KIND_VECTOR:
						rl = cck_unary_f32(op, loc + oa / 4, loc + oy / 4, n, NULL);
						rd = t_raw_op(&t_r, ops[q], in, 1, &y, NULL, 0, 0, 0, 0, NULL, err,
						              sizeof(err));
						break;
					case CCK_KIND_BINARY:
						rl = cck_binary_f32(op, loc + oa / 4, loc + ob / 4, loc + oy / 4, n);
						rd = t_raw_op(&t_r, ops[q], in, 2, &y, NULL, 0, 0, 0, 0, NULL, err,
						              sizeof(err));
						break;
					case CCK_KIND_REDUCE:
						rl = cck_reduce_f32(op, loc + oa / 4, n, &vl);
						rd = t_raw_op(&t_r, ops[q], in, 1, NULL, NULL, 0, 0, 0, 0, &vd, err,
						              sizeof(err));
						break;
					default:
						rl = cck_reduce2_f32(op, loc + oa / 4, loc + ob / 4, n, &vl);
						rd = t_raw_op(&t_r, ops[q], in, 2, NULL, NULL, 0, 0, 0, 0, &vd, err,
						              sizeof(err));
						break;
					}
					t_ncompared++;
					if (rd != rl)
						t_fail_msg(&nfail, "%s: ccd returned %d (%s), in-process %d", what, rd,
						           err, rl);
					else if (!t_f64_same(vd, vl))
						t_fail_msg(&nfail, "%s: ccd %a, in-process %a", what, vd, vl);
					else if (t_f32_diff(reg, loc, size / 4) != size / 4)
						t_fail_msg(&nfail, "%s: region float %zu differs", what,
						           t_f32_diff(reg, loc, size / 4));
				}
			}
		}
	}
	/* exact aliasing through raw refs: y == x for an element-wise op */
	{
		Cc__TensorRef a, *in[1] = {&a};

		t_fill(reg, size / 4, T_DATA_SPECIAL, 4242);
		memcpy(loc, reg, size);
		t_tref(&a, rid, 16, 4099);
		rl = cck_unary_f32(CCK_OP_TANH, loc + 4, loc + 4, 4099, NULL);
		rd = t_raw_op(&t_r, "tanh", in, 1, &a, NULL, 0, 0, 0, 0, NULL, err, sizeof(err));
		if (rd != rl || t_f32_diff(reg, loc, size / 4) != size / 4)
			t_fail_msg(&nfail, "tanh in place on a raw view: ccd %d (%s), in-process %d", rd, err, rl);
	}
	assert_int_equal(t_raw_region_free(&t_r, rid), 0);
	munmap(reg, size);
	close(fd);
	free(loc);
	assert_int_equal(nfail, 0);
}

/* Asynchronous jobs: many in flight, waited for in a shuffled order, a synchronous op in between. */
struct t_job {
	int op;
	size_t n, m, k, nn;
	struct t_pair a, b, y;
	uint64_t id;
	int rl;
	double vl;
};

static void t_job_make(struct t_job *j, unsigned i)
{
	static const char *const ops[] = {"sigmoid", "gelu",     "softmax", "layer_norm",  "add",    "div",
	                                  "sum",     "variance", "dot",     "correlation", "matmul", "clamp"};
	static const size_t ns[] = {1, 8, 17, 1000, 4097, 100003, 1u << 20};
	float params[2] = {1e-5f, 0};
	int kind;

	memset(j, 0, sizeof(*j));
	j->op = cck_op_lookup(ops[i % T_NELEM(ops)]);
	j->n = ns[(i * 7 + i / 3) % T_NELEM(ns)];
	kind = cck_op_kind(j->op);
	if (j->op == CCK_OP_CLAMP)
		params[0] = -0.5f, params[1] = 2.0f;
	if (kind == CCK_KIND_MATRIX) {
		j->m = 3 + i, j->k = 64 + 5 * i, j->nn = 17 + 2 * i;
		t_pair_new(&j->a, j->m * j->k);
		t_pair_new(&j->b, j->k * j->nn);
		t_pair_new(&j->y, j->m * j->nn);
	} else {
		t_pair_new(&j->a, j->n);
		t_pair_new(&j->b, kind == CCK_KIND_BINARY || kind == CCK_KIND_REDUCE2 ? j->n : 0);
		t_pair_new(&j->y, kind == CCK_KIND_REDUCE || kind == CCK_KIND_REDUCE2 ? 0 : j->n);
	}
	t_pair_fill(&j->a, T_DATA_MIXED, 7000 + i);
	t_pair_fill(&j->b, T_DATA_MIXED, 8000 + i);
	t_pair_fill_const(&j->y, T_SENTINEL);
	switch (kind) {
	case CCK_KIND_UNARY:
	case CCK_KIND_VECTOR:
		j->rl = cck_unary_f32(j->op, j->a.l, j->y.l, j->n, params);
		assert_int_equal(cc_submit_unary(t_c, ops[i % T_NELEM(ops)], j->a.t, j->y.t, params,
		                                 (size_t)cck_op_nparams(j->op), &j->id),
		                 0);
		break;
	case CCK_KIND_BINARY:
		j->rl = cck_binary_f32(j->op, j->a.l, j->b.l, j->y.l, j->n);
		assert_int_equal(cc_submit_binary(t_c, ops[i % T_NELEM(ops)], j->a.t, j->b.t, j->y.t, &j->id), 0);
		break;
	case CCK_KIND_REDUCE:
		j->rl = cck_reduce_f32(j->op, j->a.l, j->n, &j->vl);
		assert_int_equal(cc_submit_reduce(t_c, ops[i % T_NELEM(ops)], j->a.t, NULL, &j->id), 0);
		break;
	case CCK_KIND_REDUCE2:
		j->rl = cck_reduce2_f32(j->op, j->a.l, j->b.l, j->n, &j->vl);
		assert_int_equal(cc_submit_reduce(t_c, ops[i % T_NELEM(ops)], j->a.t, j->b.t, &j->id), 0);
		break;
	default:
		j->rl = cck_matmul_f32(j->a.l, j->b.l, j->y.l, j->m, j->k, j->nn);
		assert_int_equal(cc_submit_matmul(t_c, j->a.t, j->b.t, j->y.t, j->m, j->k, j->nn, &j->id), 0);
		break;
	}
	assert_true(j->id > 0);
}

static void t_job_check(struct t_job *j, int rd, double vd, unsigned *nfail)
{
	char what[96];

	snprintf(what, sizeof(what), "async job %llu (%s n=%zu)", (unsigned long long)j->id, cck_op_name(j->op), j->n);
	t_ncompared++;
	if (rd != j->rl)
		t_fail_msg(nfail, "%s: ccd returned %d (%s), in-process %d", what, rd, cc_last_error(t_c), j->rl);
	else if (cck_op_kind(j->op) == CCK_KIND_REDUCE || cck_op_kind(j->op) == CCK_KIND_REDUCE2) {
		if (!t_f64_same(vd, j->vl))
			t_fail_msg(nfail, "%s: ccd %a, in-process %a", what, vd, j->vl);
	} else {
		t_pair_check(&j->y, nfail, what);
	}
}

static void test_async_order(void **state)
{
	struct t_job *jobs = calloc(T_ASYNC_JOBS, sizeof(*jobs));
	unsigned order[T_ASYNC_JOBS], nfail = 0, i, k;
	struct t_rng r;

	(void)state;
	assert_non_null(jobs);
	for (i = 0; i < T_ASYNC_JOBS; i++) {
		t_job_make(&jobs[i], i);
		for (k = 0; k < i; k++)
			if (jobs[k].id == jobs[i].id)
				fail_msg("jobs %u and %u got the same id %llu", k, i, (unsigned long long)jobs[i].id);
		order[i] = i;
	}
	/* waits in a shuffled order: the last submitted first, then random */
	t_rng_seed(&r, 12345);
	for (i = T_ASYNC_JOBS - 1; i > 1; i--) {
		unsigned j = (unsigned)t_rng_below(&r, i), tmp = order[i];

		order[i] = order[j], order[j] = tmp;
	}
	for (i = 0; i < T_ASYNC_JOBS; i++) {
		double v = -1;
		int rd;

		if (i == T_ASYNC_JOBS / 2) {
			/* a synchronous op while jobs are in flight: its reply must not be confused with theirs */
			struct t_pair x, y;

			t_pair_new(&x, 333);
			t_pair_new(&y, 333);
			t_pair_fill(&x, T_DATA_MIXED, 1);
			t_pair_fill_const(&y, T_SENTINEL);
			assert_int_equal(cck_unary_f32(CCK_OP_EXP, x.l, y.l, 333, NULL), 0);
			assert_int_equal(cc_unary(t_c, "exp", x.t, y.t, NULL, 0), 0);
			t_pair_check(&y, &nfail, "sync exp among async jobs");
			t_pair_free(&x);
			t_pair_free(&y);
		}
		if (i % 5 == 4) {
			/* poll this one until done */
			double end = t_now() + 20 * t_scale();

			while ((rd = cc_poll(t_c, jobs[order[i]].id, &v)) == -EAGAIN && t_now() < end)
				t_msleep(1);
		} else {
			rd = cc_wait(t_c, jobs[order[i]].id, (int)(30000 * t_scale()), &v);
		}
		t_job_check(&jobs[order[i]], rd, v, &nfail);
	}
	for (i = 0; i < T_ASYNC_JOBS; i++) {
		t_pair_free(&jobs[i].a);
		t_pair_free(&jobs[i].b);
		t_pair_free(&jobs[i].y);
	}
	free(jobs);
	assert_int_equal(nfail, 0);
}

/*
 * A long job: cc_poll says -EAGAIN and cc_wait with a short timeout -ETIMEDOUT while it runs;
 * another client's small ops and pings are answered meanwhile (long jobs never block small ones).
 */
static void test_long_job(void **state)
{
	size_t s = t_matmul_side(0.6, 4096);
	struct t_pair A, B, C, x, y;
	cc_client *c2 = NULL;
	double t0, tsmall, worst = 0;
	uint64_t job;
	unsigned nfail = 0;
	int rd, rl, i, still;

	(void)state;
	print_message("long job: matmul %zu^3\n", s);
	t_pair_new(&A, s * s);
	t_pair_new(&B, s * s);
	t_pair_new(&C, s * s);
	t_pair_fill(&A, T_DATA_MIXED, 1);
	t_pair_fill(&B, T_DATA_MIXED, 2);
	t_pair_fill_const(&C, T_SENTINEL);
	assert_int_equal(t_ccd_connect(&t_d, &c2), 0);
	assert_int_equal(cc_tensor_new(c2, CC_DTYPE_F32, 64, &x.t), 0);
	assert_int_equal(cc_tensor_new(c2, CC_DTYPE_F32, 64, &y.t), 0);
	x.n = y.n = 64;
	x.d = cc_tensor_data(x.t);
	y.d = cc_tensor_data(y.t);
	x.l = t_alloc_pages(256);
	y.l = t_alloc_pages(256);
	t_pair_fill(&x, T_DATA_MIXED, 3);

	t0 = t_now();
	assert_int_equal(cc_submit_matmul(t_c, A.t, B.t, C.t, s, s, s, &job), 0);
	rd = cc_poll(t_c, job, NULL);
	if (rd != -EAGAIN)
		fail_msg("cc_poll on a job just submitted (matmul %zu^3) returned %d (%s), expected -EAGAIN", s, rd,
		         cc_strerror(rd));
	rd = cc_wait(t_c, job, 1, NULL);
	if (rd != -ETIMEDOUT)
		fail_msg("cc_wait(1 ms) on a running job returned %d (%s), expected -ETIMEDOUT", rd, cc_strerror(rd));
	for (i = 0; i < 20; i++) {
		double t1 = t_now();

		assert_int_equal(cc_ping(c2), 0);
		t_pair_fill_const(&y, T_SENTINEL);
		assert_int_equal(cc_unary(c2, "relu", x.t, y.t, NULL, 0), 0);
		assert_int_equal(cck_unary_f32(CCK_OP_RELU, x.l, y.l, 64, NULL), 0);
		t_pair_check(&y, &nfail, "small relu during a long job");
		if (t_now() - t1 > worst)
			worst = t_now() - t1;
	}
	tsmall = t_now() - t0;
	rd = cc_poll(t_c, job, NULL);
	still = rd == -EAGAIN;
	if (still)
		rd = cc_wait(t_c, job, (int)(60000 * t_scale()), NULL);
	print_message("long job %.3f s; 20 small ops and pings from another client took %.3f s (worst %.1f ms)\n",
	              t_now() - t0, tsmall, worst * 1e3);
	if (!still)
		fail_msg("the long job (%.3f s) was done before another client's 20 small ops (%.3f s): they waited "
		         "behind it",
		         t_now() - t0, tsmall);
	rl = cck_matmul_f32(A.l, B.l, C.l, s, s, s);
	assert_int_equal(rd, rl);
	t_pair_check(&C, &nfail, "long matmul");
	t_pair_free(&A);
	t_pair_free(&B);
	t_pair_free(&C);
	cc_tensor_free(x.t);
	cc_tensor_free(y.t);
	free(x.l);
	free(y.l);
	cc_close(c2);
	assert_int_equal(nfail, 0);
}

#define T_TEST(f) cmocka_unit_test_setup(f, t_setup)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T_TEST(test_kernels_match), T_TEST(test_unary),    T_TEST(test_vector), T_TEST(test_alias_swish),
	    T_TEST(test_binary),        T_TEST(test_reduce),   T_TEST(test_matmul), T_TEST(test_raw_offsets_matvec),
	    T_TEST(test_async_order),   T_TEST(test_long_job),
	};
	double t0;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	t_ccd_path(); /* skips (77) when there is no daemon to test */
	if (access("/proc/self/fd", R_OK) != 0) {
		fprintf(stderr, "SKIP: no /proc: ccd needs /proc/<pid>/fd to map client regions\n");
		return T_EXIT_SKIP;
	}
	if (getenv("T_FILTER")) /* e.g. T_FILTER=test_kill9: run only the matching tests */
		cmocka_set_test_filter(getenv("T_FILTER"));
	t0 = t_now();
	rc = cmocka_run_group_tests(tests, t_group_setup, t_group_teardown);
	print_message("total time %.1f s\n", t_now() - t0);
	return rc;
}
