/* SPDX-License-Identifier: MIT */
/* test_ccd_clients.c: many client processes at once through a real ccd, and the reclaiming of dead or closed clients.
 */
/*
 * - 8 processes, each with its own connection, run a few thousand mixed jobs (sync and async,
 *   several sizes, waited for in random order) and check every result against libcck
 *   in-process: a lost reply hangs (and the watchdog fails the test), a crossed one mismatches.
 * - A client killed with SIGKILL while its jobs run disappears from `clients` within seconds,
 *   and its regions, bytes, fds and mappings are given back; another client keeps working.
 * - cc_close (bye) gives everything back at once.
 * - CC_FAKE_NUMA=2: two nodes, and clients spread over them.
 * `test_ccd_clients --hold N` is a helper for test_ccctl.sh: N clients on $CC_ENDPOINT, each
 * with a tensor and a job done, held until stdin closes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cck.h"
#include "t_ccd.h"
#include "t_ref.h"

#define T_NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define T_NCHILD 8
#define T_JOBS_PER_CHILD 400 /* 3200 in all */
#define T_MAX_BATCH 8        /* async jobs in flight per child */
#define T_RECLAIM_S 5.0      /* "within a few seconds" (scaled under ASan) */
#define T_SENTINEL -7777.25f
#define T_KILL_REGIONS 18 /* regions of the client killed with jobs in flight */

static const size_t t_sizes[] = {1, 3, 8, 17, 100, 1000, 4096, 10000, 100000};

static struct t_ccd t_d;
static cc_client *t_c; /* the healthy client that keeps working while others misbehave */
static struct t_raw t_r;

static int t_group_setup(void **state)
{
	(void)state;
	return t_fixture_up(&t_d, NULL, &t_c, &t_r);
}

static int t_group_teardown(void **state)
{
	(void)state;
	return t_fixture_down(&t_d, &t_c, &t_r);
}

static int t_setup(void **state)
{
	(void)state;
	t_watchdog(240, "test_ccd_clients");
	return 0;
}

/* ---- one client's mixed jobs ------------------------------------------------------------- */
struct t_side {
	cc_tensor *t;
	float *l;
	size_t n;
};

struct t_cjob {
	int op, kind, rl;
	size_t n, m, k, nn;
	struct t_side *x, *b, *y; /* from the slot cache, or own ones (matmul) */
	struct t_side own[3];
	uint64_t id;
	double vl; /* in-process reduction value */
	double vd; /* ccd's, for a synchronous reduction */
	int sync;
};

struct t_worker {
	cc_client *c;
	unsigned idx;
	struct t_rng rng;
	struct t_side slots[T_NELEM(t_sizes)][T_MAX_BATCH][3];
	unsigned nfail, nprinted;
};

static void t_wfail(struct t_worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void t_wfail(struct t_worker *w, const char *fmt, ...)
{
	va_list ap;

	w->nfail++;
	if (w->nprinted++ >= 10)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "client %u (pid %d): ", w->idx, (int)getpid());
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static int t_side_new(struct t_worker *w, struct t_side *s, size_t n)
{
	int err = cc_tensor_new(w->c, CC_DTYPE_F32, n, &s->t);

	if (err) {
		t_wfail(w, "cc_tensor_new(%zu): %s (%s)", n, cc_strerror(err), cc_last_error(w->c));
		s->t = NULL;
		return err;
	}
	s->n = n;
	s->l = t_alloc_pages(n * sizeof(float));
	return s->l ? 0 : -ENOMEM;
}

static void t_side_free(struct t_side *s)
{
	cc_tensor_free(s->t);
	free(s->l);
	memset(s, 0, sizeof(*s));
}

static void t_side_fill(struct t_worker *w, struct t_side *s, float v)
{
	float *d = cc_tensor_data(s->t);
	size_t i;

	for (i = 0; i < s->n; i++)
		d[i] = isnan(v) ? (float)t_rng_uniform(&w->rng, -4, 4) : v;
	if (s->n)
		memcpy(s->l, d, s->n * sizeof(float));
}

static struct t_side *t_slot(struct t_worker *w, size_t si, unsigned slot, unsigned which)
{
	struct t_side *s = &w->slots[si][slot][which];

	/* region churn: now and then give a tensor back and make a new one */
	if (s->t && t_rng_below(&w->rng, 50) == 0)
		t_side_free(s);
	if (!s->t && t_side_new(w, s, t_sizes[si]))
		return NULL;
	return s;
}

/* Pick and start one job (in-process reference first). Returns 0 or -1 (already reported). */
static int t_cjob_start(struct t_worker *w, struct t_cjob *j, unsigned slot, int sync)
{
	static const float params[2] = {0.5f, 1.5f};
	size_t si;
	int err;

	memset(j, 0, sizeof(*j));
	j->sync = sync;
	do
		j->op = (int)t_rng_below(&w->rng, CCK_OP_COUNT);
	while (j->op == CCK_OP_MATVEC || (j->op == CCK_OP_MATMUL && t_rng_below(&w->rng, 3)));
	j->kind = cck_op_kind(j->op);
	/* mostly small jobs */
	si = t_rng_below(&w->rng, 4) ? t_rng_below(&w->rng, 6) : t_rng_below(&w->rng, T_NELEM(t_sizes));
	j->n = t_sizes[si];
	if (j->kind == CCK_KIND_MATRIX) {
		j->m = 1 + t_rng_below(&w->rng, 40), j->k = 1 + t_rng_below(&w->rng, 40),
		j->nn = 1 + t_rng_below(&w->rng, 40);
		if (t_side_new(w, &j->own[0], j->m * j->k) || t_side_new(w, &j->own[1], j->k * j->nn) ||
		    t_side_new(w, &j->own[2], j->m * j->nn))
			return -1;
		j->x = &j->own[0], j->b = &j->own[1], j->y = &j->own[2];
	} else {
		j->x = t_slot(w, si, slot, 0);
		j->b = t_slot(w, si, slot, 1);
		j->y = t_slot(w, si, slot, 2);
		if (!j->x || !j->b || !j->y)
			return -1;
	}
	t_side_fill(w, j->x, NAN);
	t_side_fill(w, j->b, NAN);
	t_side_fill(w, j->y, T_SENTINEL);
	switch (j->kind) {
	case CCK_KIND_UNARY:
	case CCK_KIND_VECTOR:
		j->rl = cck_unary_f32(j->op, j->x->l, j->y->l, j->n, params);
		if (sync)
			err =
			    cc_unary(w->c, cck_op_name(j->op), j->x->t, j->y->t, params, (size_t)cck_op_nparams(j->op));
		else
			err = cc_submit_unary(w->c, cck_op_name(j->op), j->x->t, j->y->t, params,
			                      (size_t)cck_op_nparams(j->op), &j->id);
		break;
	case CCK_KIND_BINARY:
		j->rl = cck_binary_f32(j->op, j->x->l, j->b->l, j->y->l, j->n);
		if (sync)
			err = cc_binary(w->c, cck_op_name(j->op), j->x->t, j->b->t, j->y->t);
		else
			err = cc_submit_binary(w->c, cck_op_name(j->op), j->x->t, j->b->t, j->y->t, &j->id);
		break;
	case CCK_KIND_REDUCE:
	case CCK_KIND_REDUCE2: {
		const cc_tensor *b = j->kind == CCK_KIND_REDUCE2 ? j->b->t : NULL;

		if (j->kind == CCK_KIND_REDUCE)
			j->rl = cck_reduce_f32(j->op, j->x->l, j->n, &j->vl);
		else
			j->rl = cck_reduce2_f32(j->op, j->x->l, j->b->l, j->n, &j->vl);
		if (sync)
			err = cc_reduce(w->c, cck_op_name(j->op), j->x->t, b, &j->vd);
		else
			err = cc_submit_reduce(w->c, cck_op_name(j->op), j->x->t, b, &j->id);
		break;
	}
	default:
		j->rl = cck_matmul_f32(j->x->l, j->b->l, j->y->l, j->m, j->k, j->nn);
		if (sync)
			err = cc_matmul(w->c, j->x->t, j->b->t, j->y->t, j->m, j->k, j->nn);
		else
			err = cc_submit_matmul(w->c, j->x->t, j->b->t, j->y->t, j->m, j->k, j->nn, &j->id);
		break;
	}
	if (sync) {
		j->id = (uint64_t)(int64_t)err; /* the result code, checked by t_cjob_check */
		return 0;
	}
	if (err) {
		t_wfail(w, "submit %s n=%zu: %s (%s)", cck_op_name(j->op), j->n, cc_strerror(err), cc_last_error(w->c));
		return -1;
	}
	return 0;
}

static void t_cjob_check(struct t_worker *w, struct t_cjob *j, int rd, double vd)
{
	const char *name = cck_op_name(j->op);

	if (rd != j->rl) {
		t_wfail(w, "%s %s n=%zu: ccd returned %d (%s), in-process %d", j->sync ? "sync" : "async", name, j->n,
		        rd, cc_last_error(w->c), j->rl);
	} else if (j->kind == CCK_KIND_REDUCE || j->kind == CCK_KIND_REDUCE2) {
		if (rd == 0 && !t_f64_same(vd, j->vl))
			t_wfail(w, "%s n=%zu: ccd %a, in-process %a (a crossed reply?)", name, j->n, vd, j->vl);
	} else if (rd == 0) {
		size_t i = t_f32_diff(cc_tensor_data(j->y->t), j->y->l, j->y->n);

		if (i < j->y->n)
			t_wfail(w, "%s n=%zu: element %zu: ccd %a, in-process %a", name, j->y->n, i,
			        (double)((float *)cc_tensor_data(j->y->t))[i], (double)j->y->l[i]);
	}
	if (j->kind == CCK_KIND_MATRIX) {
		t_side_free(&j->own[0]);
		t_side_free(&j->own[1]);
		t_side_free(&j->own[2]);
	}
}

/* A client process's work. Returns the number of failures. */
static unsigned t_client_work(const char *endpoint, unsigned idx, unsigned njobs)
{
	struct t_worker *w = calloc(1, sizeof(*w));
	struct t_cjob jobs[T_MAX_BATCH];
	unsigned done = 0, nfail, i, q, r;
	int err;

	if (!w)
		return 1;
	w->idx = idx;
	t_rng_seed(&w->rng, 0x51ed2700u + idx);
	err = cc_connect(endpoint, &w->c);
	if (err) {
		fprintf(stderr, "client %u: cc_connect: %s\n", idx, cc_strerror(err));
		free(w);
		return 1;
	}
	while (done < njobs && w->nfail == 0) {
		unsigned batch = 1 + (unsigned)t_rng_below(&w->rng, T_MAX_BATCH), order[T_MAX_BATCH];
		int sync = batch == 1 || t_rng_below(&w->rng, 4) == 0;

		if (batch > njobs - done)
			batch = njobs - done;
		for (i = 0; i < batch; i++) {
			if (t_cjob_start(w, &jobs[i], i, sync))
				break;
			if (sync)
				t_cjob_check(w, &jobs[i], (int)(int64_t)jobs[i].id, jobs[i].vd);
			order[i] = i;
		}
		if (i < batch)
			break;
		if (!sync) {
			for (i = batch; i > 1; i--) {
				q = (unsigned)t_rng_below(&w->rng, i);
				r = order[i - 1], order[i - 1] = order[q], order[q] = r;
			}
			for (i = 0; i < batch; i++) {
				struct t_cjob *j = &jobs[order[i]];
				double v = -1;
				int rd = cc_wait(w->c, j->id, (int)(30000 * t_scale()), &v);

				if (rd == -ETIMEDOUT)
					t_wfail(w, "job %llu (%s n=%zu) not answered in 30 s: a lost reply",
					        (unsigned long long)j->id, cck_op_name(j->op), j->n);
				t_cjob_check(w, j, rd, v);
			}
		}
		done += batch;
	}
	for (i = 0; i < T_NELEM(t_sizes); i++)
		for (q = 0; q < T_MAX_BATCH; q++)
			for (r = 0; r < 3; r++)
				t_side_free(&w->slots[i][q][r]);
	cc_close(w->c);
	nfail = w->nfail;
	if (done < njobs && !nfail)
		nfail = 1;
	free(w);
	return nfail;
}

/* Look the entries of pid up in a clients reply: how many, and the sums of their fields. */
struct t_cl_sum {
	unsigned count;
	uint64_t regions, bytes, in_flight, jobs;
	unsigned nodes_seen; /* bit mask of nodes (< 32) */
};

static struct t_cl_sum t_clients_of(pid_t pid)
{
	struct t_cl_sum s = {0, 0, 0, 0, 0, 0};
	Cc__Reply *rep;
	size_t i;

	assert_int_equal(t_raw_clients(&t_r, &rep), 0);
	for (i = 0; i < rep->clients->n_clients; i++) {
		Cc__ClientInfo *ci = rep->clients->clients[i];

		if (ci->pid != (uint32_t)pid)
			continue;
		s.count++;
		s.regions += ci->regions;
		s.bytes += ci->bytes;
		s.in_flight += ci->in_flight;
		s.jobs += ci->jobs;
		if (ci->node < 32)
			s.nodes_seen |= 1u << ci->node;
	}
	cc__reply__free_unpacked(rep, NULL);
	return s;
}

/* 1 if cc_admin_json("clients") (what `ccctl clients --json` prints) lists a client of pid. */
static int t_json_lists_pid(pid_t pid)
{
	char *json = NULL;
	const char *p;
	int err = cc_admin_json(t_c, "clients", &json), found = 0;

	if (err)
		fail_msg("cc_admin_json(clients): %s (%s)", cc_strerror(err), cc_last_error(t_c));
	for (p = json; (p = strstr(p, "\"pid\"")); p += 5) {
		char *end;
		const char *q = p + 5;

		while (*q == ' ' || *q == ':')
			q++;
		if (strtol(q, &end, 10) == (long)pid && end != q)
			found = 1;
	}
	free(json);
	return found;
}

static void t_status(uint64_t *clients, uint64_t *regions, uint64_t *bytes, uint64_t *done, uint64_t *failed)
{
	Cc__Reply *rep;

	assert_int_equal(t_raw_status(&t_r, &rep), 0);
	if (clients)
		*clients = rep->status->clients;
	if (regions)
		*regions = rep->status->regions;
	if (bytes)
		*bytes = rep->status->region_bytes;
	if (done)
		*done = rep->status->jobs_done;
	if (failed)
		*failed = rep->status->jobs_failed;
	cc__reply__free_unpacked(rep, NULL);
}

/* The healthy client still computes correctly. */
static void t_healthy(void)
{
	const char *why = t_healthy_check(&t_d, t_c, 777);

	if (why)
		fail_msg("%s", why);
}

static void test_eight_clients(void **state)
{
	uint64_t clients0, done0, failed0, clients1, done1, failed1, regions0, regions1;
	pid_t pids[T_NCHILD];
	unsigned i, bad = 0;
	double t0 = t_now(), end;

	(void)state;
	t_status(&clients0, &regions0, NULL, &done0, &failed0);
	fflush(stdout);
	fflush(stderr);
	for (i = 0; i < T_NCHILD; i++) {
		char idx[16], njobs[16];

		/*
		 * Each client is a fresh process (this program again, --client): a child that went on
		 * running in a fork of this multi-threaded process (ZeroMQ's threads) could find an
		 * allocator lock held forever, which ASan's runtime does not guard against.
		 */
		snprintf(idx, sizeof(idx), "%u", i);
		snprintf(njobs, sizeof(njobs), "%u", (unsigned)T_JOBS_PER_CHILD);
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			execl("/proc/self/exe", "test_ccd_clients", "--client", t_d.endpoint, idx, njobs, (char *)NULL);
			_exit(127);
		}
	}
	/* the parent's own client keeps working meanwhile */
	for (i = 0; i < 20; i++)
		t_healthy();
	for (i = 0; i < T_NCHILD; i++) {
		int st;

		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "client process %u failed (wait status 0x%x)\n", i, st);
			bad++;
		}
	}
	print_message("%u processes x %u jobs in %.2f s\n", T_NCHILD, T_JOBS_PER_CHILD, t_now() - t0);
	assert_int_equal(bad, 0);
	t_status(NULL, NULL, NULL, &done1, &failed1);
	if (done1 < done0 + T_NCHILD * T_JOBS_PER_CHILD)
		fail_msg("status: jobs_done went from %llu to %llu, %u jobs were done", (unsigned long long)done0,
		         (unsigned long long)done1, T_NCHILD * T_JOBS_PER_CHILD);
	if (failed1 != failed0)
		fail_msg("status: jobs_failed went from %llu to %llu, no job failed", (unsigned long long)failed0,
		         (unsigned long long)failed1);
	/* every child closed: the count goes back (bye) */
	end = t_now() + T_RECLAIM_S * t_scale();
	do {
		t_status(&clients1, &regions1, NULL, NULL, NULL);
		if (clients1 == clients0 && regions1 == regions0)
			break;
		t_msleep(20);
	} while (t_now() < end);
	assert_int_equal(clients1, clients0);
	assert_int_equal(regions1, regions0);
	t_healthy();
}

static void test_kill9(void **state)
{
	uint64_t regions0, bytes0, regions1 = 0, bytes1 = 0;
	int nfd0, nmap0, nfd1 = -1, nmap1 = -1, p[2], st;
	size_t side = t_matmul_side(0.3, 4096);
	struct t_cl_sum cs;
	struct pollfd pfd;
	double t0, tgone = -1, end;
	char ch;
	pid_t kid;

	(void)state;
	if (side > 2048) /* busy enough; the regions stay near 100 MB */
		side = 2048;
	/* earlier clients' connections may still be closing */
	nfd0 = t_proc_nfds_settle(t_d.pid, 0, 0.3);
	nmap0 = t_proc_nmemfd_maps(t_d.pid);
	t_status(NULL, &regions0, &bytes0, NULL, NULL);
	assert_int_equal(pipe(p), 0);
	fflush(stdout);
	fflush(stderr);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		cc_tensor *t[T_KILL_REGIONS]; /* A, B, 4 matmul outputs, 6 x (in, out) of 1M */
		cc_client *c;
		uint64_t job;
		int i, err = 0;

		t_watchdog(120, "client to be killed");
		close(p[0]);
		if (cc_connect(t_d.endpoint, &c))
			_exit(2);
		for (i = 0; i < 6 && !err; i++)
			err = cc_tensor_new(c, CC_DTYPE_F32, side * side, &t[i]);
		for (i = 6; i < T_KILL_REGIONS && !err; i++)
			err = cc_tensor_new(c, CC_DTYPE_F32, (size_t)1 << 20, &t[i]);
		for (i = 0; i < 4 && !err; i++)
			err = cc_submit_matmul(c, t[0], t[1], t[2 + i], side, side, side, &job);
		for (i = 0; i < 6 && !err; i++)
			err = cc_submit_unary(c, "exp", t[6 + 2 * i], t[7 + 2 * i], NULL, 0, &job);
		/* a round trip: the daemon has read the submissions before it (one connection, in order) */
		if (!err)
			err = cc_ping(c);
		if (err) {
			fprintf(stderr, "client to be killed: %s (%s)\n", cc_strerror(err), cc_last_error(c));
			_exit(3);
		}
		if (write(p[1], "R", 1) != 1)
			_exit(4);
		for (;;)
			pause();
	}
	close(p[1]);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	if (poll(&pfd, 1, (int)(30000 * t_scale())) != 1 || read(p[0], &ch, 1) != 1) {
		kill(kid, SIGKILL);
		waitpid(kid, &st, 0);
		fail_msg("the client to be killed did not get ready (wait status 0x%x)", st);
	}
	close(p[0]);
	cs = t_clients_of(kid);
	print_message("client pid %d: %u entry, %llu regions, %llu bytes, %llu jobs in flight, %llu done; matmul side "
	              "%zu\n",
	              (int)kid, cs.count, (unsigned long long)cs.regions, (unsigned long long)cs.bytes,
	              (unsigned long long)cs.in_flight, (unsigned long long)cs.jobs, side);
	assert_int_equal(cs.count, 1);
	if (!t_json_lists_pid(kid))
		fail_msg("cc_admin_json(clients) does not list the client (pid %d)", (int)kid);
	assert_true(cs.regions >= T_KILL_REGIONS);
	assert_true(cs.bytes >= (uint64_t)T_KILL_REGIONS * 4096);
	if (cs.in_flight == 0)
		fail_msg("the client had no job in flight when killed: the test proves nothing");
	t_status(NULL, &regions1, &bytes1, NULL, NULL);
	assert_true(regions1 >= regions0 + T_KILL_REGIONS);
	if (nfd0 >= 0) {
		nfd1 = t_proc_nfds(t_d.pid);
		nmap1 = t_proc_nmemfd_maps(t_d.pid);
		print_message("while it lives: ccd fds %d, memfd mappings %d\n", nfd1, nmap1);
		/* ccd maps the regions; if it shows in /proc, the count must come back down */
		if (nmap1 < nmap0 + T_KILL_REGIONS)
			print_message("(ccd's region mappings do not show as /memfd: in its maps)\n");
	}

	t0 = t_now();
	assert_int_equal(kill(kid, SIGKILL), 0);
	assert_int_equal(waitpid(kid, &st, 0), kid);
	end = t0 + T_RECLAIM_S * t_scale();
	/* poll until gone, while the healthy client keeps working */
	for (;;) {
		t_healthy();
		cs = t_clients_of(kid);
		if (cs.count == 0) {
			tgone = t_now() - t0;
			break;
		}
		if (t_now() > end)
			break;
		t_msleep(50);
	}
	if (tgone < 0)
		fail_msg("the killed client (pid %d) is still listed %.1f s after SIGKILL", (int)kid, t_now() - t0);
	if (t_json_lists_pid(kid))
		fail_msg("cc_admin_json(clients) still lists the killed client (pid %d)", (int)kid);
	/* its regions and bytes are given back (at the latest a moment later) */
	end = t_now() + 2 * t_scale();
	do {
		t_status(NULL, &regions1, &bytes1, NULL, NULL);
		if (nfd0 >= 0) {
			nfd1 = t_proc_nfds(t_d.pid);
			nmap1 = t_proc_nmemfd_maps(t_d.pid);
		}
		if (regions1 == regions0 && bytes1 == bytes0 && nfd1 <= nfd0 && nmap1 == nmap0)
			break;
		t_msleep(20);
	} while (t_now() < end);
	print_message("killed client gone after %.2f s; regions %llu -> %llu, bytes %llu -> %llu, ccd fds %d -> %d, "
	              "memfd mappings %d -> %d\n",
	              tgone, (unsigned long long)regions0, (unsigned long long)regions1, (unsigned long long)bytes0,
	              (unsigned long long)bytes1, nfd0, nfd1, nmap0, nmap1);
	assert_int_equal(regions1, regions0);
	assert_int_equal(bytes1, bytes0);
	if (nfd0 >= 0) {
		if (nfd1 > nfd0)
			fail_msg("ccd holds %d fds, %d before the killed client came", nfd1, nfd0);
		assert_int_equal(nmap1, nmap0);
	}
	t_healthy();
	assert_true(t_ccd_alive(&t_d));
}

/* cc_close says bye: the entry and its regions go at once. */
static void test_close_reclaims(void **state)
{
	uint64_t regions0, bytes0, regions1, bytes1;
	struct t_cl_sum before, during, after;
	cc_tensor *t[5];
	cc_client *c;
	double end;
	int i;

	(void)state;
	before = t_clients_of(getpid());
	t_status(NULL, &regions0, &bytes0, NULL, NULL);
	assert_int_equal(t_ccd_connect(&t_d, &c), 0);
	for (i = 0; i < 5; i++)
		assert_int_equal(cc_tensor_new(c, CC_DTYPE_F32, 100000, &t[i]), 0);
	assert_int_equal(cc_unary(c, "neg", t[0], t[1], NULL, 0), 0);
	during = t_clients_of(getpid());
	assert_int_equal(during.count, before.count + 1);
	assert_true(during.regions >= before.regions + 5);
	/* tensors deliberately not freed: cc_close frees them */
	cc_close(c);
	end = t_now() + 2 * t_scale();
	do {
		after = t_clients_of(getpid());
		t_status(NULL, &regions1, &bytes1, NULL, NULL);
		if (after.count == before.count && regions1 == regions0 && bytes1 == bytes0)
			break;
		t_msleep(10);
	} while (t_now() < end);
	assert_int_equal(after.count, before.count);
	assert_int_equal(regions1, regions0);
	assert_int_equal(bytes1, bytes0);
	t_healthy();
}

/* CC_FAKE_NUMA=2: two (simulated) nodes, clients spread over them, results still exact on both. */
static void test_fake_numa(void **state)
{
	static const char *const env[] = {"CC_FAKE_NUMA=2", NULL};
	struct t_ccd d2;
	struct t_raw r2;
	cc_client *c[4];
	Cc__Reply *rep;
	unsigned nodes = 0;
	size_t i, k;

	(void)state;
	assert_int_equal(t_ccd_start(&d2, NULL, env), 0);
	assert_int_equal(t_raw_open(&r2, d2.endpoint), 0);
	assert_int_equal(t_raw_hello(&r2, CC_PROTO_VERSION), 0);
	assert_int_equal(t_raw_status(&r2, &rep), 0);
	print_message("CC_FAKE_NUMA=2: numa_nodes %u, workers %u, simulated %d\n", rep->status->numa_nodes,
	              rep->status->workers, rep->status->numa_simulated);
	assert_int_equal(rep->status->numa_nodes, 2);
	assert_true(rep->status->numa_simulated);
	assert_true(rep->status->workers >= 2);
	cc__reply__free_unpacked(rep, NULL);
	for (k = 0; k < 4; k++) {
		cc_tensor *x, *y;
		float ref[1000];

		assert_int_equal(t_ccd_connect(&d2, &c[k]), 0);
		assert_int_equal(cc_tensor_new(c[k], CC_DTYPE_F32, 1000, &x), 0);
		assert_int_equal(cc_tensor_new(c[k], CC_DTYPE_F32, 1000, &y), 0);
		for (i = 0; i < 1000; i++)
			((float *)cc_tensor_data(x))[i] = (float)i * 0.01f - 5;
		assert_int_equal(cc_unary(c[k], "gelu", x, y, NULL, 0), 0);
		assert_int_equal(cck_unary_f32(CCK_OP_GELU, cc_tensor_data(x), ref, 1000, NULL), 0);
		assert_int_equal(t_f32_diff(cc_tensor_data(y), ref, 1000), 1000);
	}
	assert_int_equal(t_raw_clients(&r2, &rep), 0);
	for (i = 0; i < rep->clients->n_clients; i++) {
		Cc__ClientInfo *ci = rep->clients->clients[i];

		assert_true(ci->node < 2);
		if (!strcmp(ci->name, "t_raw"))
			continue;
		nodes |= 1u << ci->node;
	}
	cc__reply__free_unpacked(rep, NULL);
	for (k = 0; k < 4; k++)
		cc_close(c[k]);
	t_raw_close(&r2);
	assert_int_equal(t_ccd_stop(&d2), 0);
	if (nodes != 3)
		fail_msg("4 clients on 2 nodes all went to node(s) mask 0x%x", nodes);
}

/*
 * SIGTERM while a client has a long job running and more queued: ccd exits 0 within bounds
 * (running jobs finish, queued ones are cancelled), every wait returns (done, cancelled or the
 * connection gone; never a hang), and a later call on the handle fails cleanly.
 */
static void test_shutdown_with_jobs(void **state)
{
	size_t side = t_matmul_side(0.5, 4096);
	cc_tensor *A, *B, *C[4];
	uint64_t job[4];
	struct t_ccd d2;
	cc_client *c;
	double t0;
	int i, rc[4], st;

	(void)state;
	if (side > 2048)
		side = 2048;
	assert_int_equal(t_ccd_start(&d2, NULL, NULL), 0);
	assert_int_equal(t_ccd_connect(&d2, &c), 0);
	assert_int_equal(cc_tensor_new(c, CC_DTYPE_F32, side * side, &A), 0);
	assert_int_equal(cc_tensor_new(c, CC_DTYPE_F32, side * side, &B), 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(cc_tensor_new(c, CC_DTYPE_F32, side * side, &C[i]), 0);
		assert_int_equal(cc_submit_matmul(c, A, B, C[i], side, side, side, &job[i]), 0);
	}
	assert_int_equal(cc_ping(c), 0); /* the submissions have arrived */
	t0 = t_now();
	assert_int_equal(kill(d2.pid, SIGTERM), 0);
	for (i = 0; i < 4; i++) {
		rc[i] = cc_wait(c, job[i], (int)(30000 * t_scale()), NULL);
		if (rc[i] == -ETIMEDOUT)
			fail_msg("job %d: cc_wait timed out after ccd got SIGTERM", i);
	}
	print_message("SIGTERM with 4 matmuls %zu^3 in flight: waits returned %d %d %d %d after %.2f s\n", side, rc[0],
	              rc[1], rc[2], rc[3], t_now() - t0);
	if (rc[0] != 0 && rc[1] != 0)
		print_message("(no job finished: the running ones were not allowed to complete?)\n");
	i = cc_unary(c, "relu", A, B, NULL, 0);
	if (i == 0)
		fail_msg("an op after the daemon stopped succeeded");
	for (i = 0; i < 4; i++)
		cc_tensor_free(C[i]);
	cc_tensor_free(A);
	cc_tensor_free(B);
	cc_close(c);
	st = t_ccd_stop(&d2);
	assert_int_equal(st, 0);
}

/* --hold N: helper of test_ccctl.sh. */
static int t_hold(int n)
{
	cc_client *c[64];
	cc_tensor *x[64];
	char buf[64];
	int i, err;

	if (n < 1 || n > 64)
		return 2;
	alarm(120);
	for (i = 0; i < n; i++) {
		err = cc_connect(NULL, &c[i]);
		if (!err)
			err = cc_tensor_new(c[i], CC_DTYPE_F32, 1000, &x[i]);
		if (!err)
			err = cc_unary(c[i], "relu", x[i], x[i], NULL, 0);
		if (err) {
			fprintf(stderr, "hold: client %d: %s\n", i, cc_strerror(err));
			return 1;
		}
	}
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	while (read(0, buf, sizeof(buf)) > 0)
		;
	for (i = 0; i < n; i++)
		cc_close(c[i]);
	return 0;
}

#define T_TEST(f) cmocka_unit_test_setup(f, t_setup)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    T_TEST(test_eight_clients),      T_TEST(test_kill9), T_TEST(test_close_reclaims), T_TEST(test_fake_numa),
	    T_TEST(test_shutdown_with_jobs),
	};
	double t0;
	int rc;

	if (argc == 3 && !strcmp(argv[1], "--hold"))
		return t_hold(atoi(argv[2]));
	if (argc == 5 && !strcmp(argv[1], "--client")) {
		/* one client of test_eight_clients, with libcck set as the fixture sets it for references */
		if (cck_set_threads(1) != 1 || cck_force_tier("auto") != 0)
			return 2;
		t_watchdog(180, "client process");
		return t_client_work(argv[2], (unsigned)atoi(argv[3]), (unsigned)atoi(argv[4])) ? 1 : 0;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	t_ccd_path();
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
