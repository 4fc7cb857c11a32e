/* SPDX-License-Identifier: MIT */
/* pool.c: the persistent worker pool that splits large ops across CPUs. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* sched_getaffinity, pthread_setname_np */
#endif
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cck_internal.h"

#if defined(__linux__) && !defined(CCK_POOL_NO_FUTEX)
#include <linux/futex.h>
#include <sys/syscall.h>
#define POOL_FUTEX 1
#endif

/* Hard cap on threads; part indices and counts are packed into 16 bits. */
#define POOL_MAX 512

/*
 * How long an idle worker, and a caller waiting for its workers, spin before
 * sleeping in the kernel. A sleeping worker starts 3-30 us after its wake-up
 * (measured on a KVM guest) against well under 1 us for a spinning one, which
 * back-to-back ops of some hundred microseconds notice; spinning longer than
 * this burns CPU that other processes may want.
 */
#define WORKER_SPIN_NS 50000
#define CALLER_SPIN_NS 200000

#define CACHELINE 64

/*
 * Job protocol: the caller (holding run_lock) writes fn/arg, sets pending to
 * the number of parts others may take, then publishes claim = gen:32 | nt:16 |
 * next:16 with next = 1 (the caller keeps part 0). Anyone, workers or the
 * caller itself once its part is done, takes a part by CAS on claim, which
 * makes fn/arg visible and pins the job (it cannot finish while a claimed
 * part runs). Because the caller steals unclaimed parts, correctness never
 * depends on a worker waking up: wake-ups are only an optimisation, which is
 * also why fork() and failed pthread_create are harmless.
 */
static struct {
	pthread_mutex_t run_lock; /* serialises callers, worker creation */
	int nworkers;             /* threads started; under run_lock */
	uint32_t gen;             /* under run_lock */
	pthread_t tid[POOL_MAX];
	void (*fn)(void *arg, int i, int nt); /* current job; see protocol */
	void *arg;

	_Alignas(CACHELINE) _Atomic uint64_t claim;
	_Alignas(CACHELINE) _Atomic uint32_t pending; /* parts > 0 not yet finished; futex word */
	_Atomic int caller_sleeping;
	_Alignas(CACHELINE) _Atomic uint32_t wake_seq; /* bumped per job; futex word for idle workers */
	_Atomic int sleepers;
	_Atomic int stop;
	_Alignas(CACHELINE) _Atomic int size;
	_Atomic uint32_t park_seq; /* bumped on resize; futex word for workers beyond size */
	int ncpu;
} pool = {.run_lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

/* Set in workers for good, and in a caller while it runs parts of its job. */
static _Thread_local int in_pool;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#ifdef POOL_FUTEX
static void wait_on(_Atomic uint32_t *word, uint32_t val)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void wake_up(_Atomic uint32_t *word, int n)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}
#else
/*
 * Portable stand-in for a futex: the waker changes *word before taking the
 * lock, so a waiter either sees the change or is already waiting.
 */
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sleep_cond = PTHREAD_COND_INITIALIZER;

static void wait_on(_Atomic uint32_t *word, uint32_t val)
{
	pthread_mutex_lock(&sleep_lock);
	if (atomic_load(word) == val)
		pthread_cond_wait(&sleep_cond, &sleep_lock);
	pthread_mutex_unlock(&sleep_lock);
}

static void wake_up(_Atomic uint32_t *word, int n)
{
	(void)word;
	(void)n;
	pthread_mutex_lock(&sleep_lock);
	pthread_cond_broadcast(&sleep_cond);
	pthread_mutex_unlock(&sleep_lock);
}
#endif

static void finish_part(void)
{
	/* seq_cst pairs with wait_done(): either we see the sleeper or it sees 0. */
	if (atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_seq_cst) == 1 &&
	    atomic_load_explicit(&pool.caller_sleeping, memory_order_seq_cst))
		wake_up(&pool.pending, 1);
}

/* Run unclaimed parts of the current job until none are left. */
static void drain(void)
{
	uint64_t w = atomic_load_explicit(&pool.claim, memory_order_relaxed);

	for (;;) {
		int nt = (int)((w >> 16) & 0xffff);
		int i = (int)(w & 0xffff);

		if (i >= nt)
			return;
		if (atomic_compare_exchange_weak_explicit(&pool.claim, &w, w + 1, memory_order_acquire,
		                                          memory_order_relaxed)) {
			pool.fn(pool.arg, i, nt);
			finish_part();
			w = atomic_load_explicit(&pool.claim, memory_order_relaxed);
		}
	}
}

/*
 * Spinning only pays while every pool thread has a CPU of its own; with more
 * threads than CPUs a spinner takes the CPU from a thread with real work.
 */
static uint64_t spin_budget(uint64_t ns)
{
	return atomic_load_explicit(&pool.size, memory_order_relaxed) <= pool.ncpu ? ns : 0;
}

static void idle_wait(uint32_t seq)
{
	uint64_t deadline = now_ns() + spin_budget(WORKER_SPIN_NS);
	unsigned spin = 0;

	while (atomic_load_explicit(&pool.wake_seq, memory_order_relaxed) == seq) {
		cpu_relax();
		if (++spin % 64 == 0 && now_ns() > deadline)
			goto sleep;
	}
	return;
sleep:
	/* seq_cst pairs with cck__pool_run(): it sees us or we see its bump. */
	atomic_fetch_add_explicit(&pool.sleepers, 1, memory_order_seq_cst);
	while (atomic_load_explicit(&pool.wake_seq, memory_order_seq_cst) == seq)
		wait_on(&pool.wake_seq, seq);
	atomic_fetch_sub_explicit(&pool.sleepers, 1, memory_order_relaxed);
}

/*
 * Worker w is thread w + 1 of a job. Workers the pool has shrunk past sleep
 * on park_seq: they take no parts, do not spin, and do not swallow the
 * wake-ups meant for workers in use.
 */
static int parked(int w)
{
	uint32_t ps = atomic_load_explicit(&pool.park_seq, memory_order_acquire);

	if (w + 1 < atomic_load_explicit(&pool.size, memory_order_relaxed) ||
	    atomic_load_explicit(&pool.stop, memory_order_relaxed))
		return 0;
	wait_on(&pool.park_seq, ps);
	return 1;
}

static void *worker_main(void *arg)
{
	int w = (int)(intptr_t)arg;

	in_pool = 1;
	for (;;) {
		uint32_t seq;

		if (parked(w))
			continue;
		seq = atomic_load_explicit(&pool.wake_seq, memory_order_acquire);
		drain();
		if (atomic_load_explicit(&pool.stop, memory_order_relaxed))
			return NULL;
		idle_wait(seq);
	}
}

/* Start workers until there are want of them; on failure run with fewer. */
static void ensure_workers(int want)
{
	sigset_t all, old;

	if (pool.nworkers >= want || atomic_load_explicit(&pool.stop, memory_order_relaxed))
		return;
	/* Workers inherit this mask: signals belong to the application's threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	while (pool.nworkers < want) {
		if (pthread_create(&pool.tid[pool.nworkers], NULL, worker_main, (void *)(intptr_t)pool.nworkers))
			break;
#ifdef __GLIBC__
		pthread_setname_np(pool.tid[pool.nworkers], "cck-worker");
#endif
		pool.nworkers++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void wait_done(void)
{
	uint64_t deadline = 0;
	unsigned spin = 0;
	uint32_t v;

	while ((v = atomic_load_explicit(&pool.pending, memory_order_acquire)) != 0) {
		if (++spin % 64 != 0) {
			cpu_relax();
			continue;
		}
		if (!deadline)
			deadline = now_ns() + spin_budget(CALLER_SPIN_NS);
		if (now_ns() < deadline)
			continue;
		atomic_store_explicit(&pool.caller_sleeping, 1, memory_order_seq_cst);
		v = atomic_load_explicit(&pool.pending, memory_order_seq_cst);
		if (v)
			wait_on(&pool.pending, v);
		atomic_store_explicit(&pool.caller_sleeping, 0, memory_order_relaxed);
	}
}

static int count_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
#ifdef CPU_COUNT
	cpu_set_t set;

	/* Honour taskset/cgroup cpusets: threads beyond them only time-share. */
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0 && (n < 1 || CPU_COUNT(&set) < n))
		n = CPU_COUNT(&set);
#endif
	if (n < 1)
		n = 1;
	return n > POOL_MAX ? POOL_MAX : (int)n;
}

static void fork_prepare(void)
{
	pthread_mutex_lock(&pool.run_lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&pool.run_lock);
}

/* Only the forking thread survives; no job is in flight (we hold run_lock). */
static void fork_child(void)
{
	pool.nworkers = 0;
	atomic_store(&pool.sleepers, 0);
	atomic_store(&pool.caller_sleeping, 0);
	pthread_mutex_unlock(&pool.run_lock);
}

static void pool_init(void)
{
	const char *env = getenv("CCK_THREADS");
	int n;

	pool.ncpu = count_cpus();
	n = pool.ncpu;
	if (env && *env) {
		char *end;
		long v;

		errno = 0;
		v = strtol(env, &end, 10);
		/* Malformed values are ignored: a library must not fail on its environment. */
		if (!errno && *end == '\0' && v > 0)
			n = v > POOL_MAX ? POOL_MAX : (int)v;
	}
	atomic_store(&pool.size, n);
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Join the workers so that dlclose() cannot unmap code they are running. */
__attribute__((destructor)) static void pool_fini(void)
{
	int i;

	/* A job still running (exit() racing an op): leave the workers be. */
	if (pthread_mutex_trylock(&pool.run_lock))
		return;
	atomic_store(&pool.stop, 1);
	atomic_fetch_add(&pool.wake_seq, 1);
	wake_up(&pool.wake_seq, INT_MAX);
	atomic_fetch_add(&pool.park_seq, 1);
	wake_up(&pool.park_seq, INT_MAX);
	for (i = 0; i < pool.nworkers; i++)
		pthread_join(pool.tid[i], NULL);
	pool.nworkers = 0;
	pthread_mutex_unlock(&pool.run_lock);
}

/* cck_set_local_threads(): a cap on the threads of jobs started by this thread (0: none). */
static _Thread_local int local_limit;

int cck__pool_local_limit(int n)
{
	int old = local_limit;

	local_limit = n;
	return old;
}

/* Threads the pool uses for a job (>= 1): CCK_THREADS, or the CPUs we may run on, capped by this thread's limit. */
int cck__pool_threads(void)
{
	int size;

	pthread_once(&pool_once, pool_init);
	size = atomic_load_explicit(&pool.size, memory_order_relaxed);
	return local_limit > 0 && local_limit < size ? local_limit : size;
}

/*
 * Set the thread count: n >= 1, or 0 for every CPU we may run on; capped at
 * POOL_MAX. Returns the new count or -EINVAL. Shrinking parks the workers
 * beyond n (asleep, not stopped); growing again wakes them.
 */
int cck__pool_resize(int n)
{
	pthread_once(&pool_once, pool_init);
	if (n < 0)
		return -EINVAL;
	if (n == 0)
		n = pool.ncpu;
	if (n > POOL_MAX)
		n = POOL_MAX;
	if (atomic_exchange_explicit(&pool.size, n, memory_order_relaxed) != n) {
		/* Release: a parked worker that sees the bump sees the new size. */
		atomic_fetch_add_explicit(&pool.park_seq, 1, memory_order_release);
		wake_up(&pool.park_seq, INT_MAX);
	}
	return n;
}

/*
 * Calls fn(arg, i, nt) for every i in [0, nt) and returns when all are done.
 * nt is clamped to the pool size; the caller runs part 0 and, rather than
 * wait for a slow worker to wake, any part nobody has started. So parts may
 * share a thread: fn must never wait for another part of the same job.
 */
void cck__pool_run(int nt, void (*fn)(void *arg, int i, int nt), void *arg)
{
	int size = cck__pool_threads();
	uint32_t sleepers;
	int i;

	if (nt > size)
		nt = size;
	if (nt <= 1) {
		fn(arg, 0, 1);
		return;
	}
	if (in_pool) {
		/* Nested: the pool is busy with our own parent job. */
		for (i = 0; i < nt; i++)
			fn(arg, i, nt);
		return;
	}

	pthread_mutex_lock(&pool.run_lock);
	ensure_workers(nt - 1);
	pool.fn = fn;
	pool.arg = arg;
	pool.gen++;
	atomic_store_explicit(&pool.pending, (uint32_t)(nt - 1), memory_order_relaxed);
	atomic_store_explicit(&pool.claim, (uint64_t)pool.gen << 32 | (uint64_t)nt << 16 | 1, memory_order_release);
	atomic_fetch_add_explicit(&pool.wake_seq, 1, memory_order_seq_cst);
	sleepers = (uint32_t)atomic_load_explicit(&pool.sleepers, memory_order_seq_cst);
	if (sleepers)
		wake_up(&pool.wake_seq, sleepers < (uint32_t)nt - 1 ? (int)sleepers : nt - 1);

	in_pool = 1;
	fn(arg, 0, nt);
	drain();
	in_pool = 0;
	wait_done();
	pthread_mutex_unlock(&pool.run_lock);
}
