/* SPDX-License-Identifier: MIT */
/* test_load.c: the model loader (libccmodel's ccm_load_fd) in every mode, checked byte for byte against pread. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "load.h"

#define T_NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define BIG_SIZE ((size_t)64 << 20) /* the generated file: large enough to watch a load progress */
#define MAX_TRIES 20                /* attempts at catching a load in the middle */

/* A mode to test: the loader's mode plus environment it runs under. */
struct tmode {
	const char *label;
	enum ccm_mode mode;
	const char *direct; /* CCM_DIRECT value, NULL: unset */
};

static const struct tmode tmodes[] = {
    {"uring", CCM_MODE_URING, NULL}, {"uring+O_DIRECT", CCM_MODE_URING, "1"}, {"uring buffered", CCM_MODE_URING, "0"},
    {"mmap", CCM_MODE_MMAP, NULL},   {"read", CCM_MODE_READ, NULL},
};

static char big_path[PATH_MAX]; /* the generated 64 MB file */

/* ---- helpers ------------------------------------------------------------------------------ */

static void set_env(const char *name, const char *val)
{
	if (val)
		assert_int_equal(setenv(name, val, 1), 0);
	else
		assert_int_equal(unsetenv(name), 0);
}

static const char *tmpdir(void)
{
	const char *t = getenv("TMPDIR");

	return t && *t ? t : "/tmp";
}

/* A deterministic pseudo-random byte pattern (xorshift64*). */
static void fill_pattern(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed | 1, v;
	size_t i, k;

	for (i = 0; i < n; i += 8) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		v = x * 0x2545F4914F6CDD1DULL;
		for (k = 0; k < 8 && i + k < n; k++)
			p[i + k] = (uint8_t)(v >> (8 * k));
	}
}

/* Create a temp file of n pattern bytes; returns an fd open read-write, path in path. */
static int make_temp(char *path, size_t pathlen, size_t n, uint64_t seed)
{
	size_t chunk = (size_t)1 << 20, pos;
	uint8_t *buf = malloc(chunk);
	int fd;

	assert_non_null(buf);
	snprintf(path, pathlen, "%s/cc-test-load-XXXXXX", tmpdir());
	fd = mkstemp(path);
	assert_true(fd >= 0);
	for (pos = 0; pos < n; pos += chunk) {
		size_t k = n - pos < chunk ? n - pos : chunk;

		fill_pattern(buf, k, seed + pos);
		assert_int_equal(pwrite(fd, buf, k, (off_t)pos), (ssize_t)k);
	}
	free(buf);
	return fd;
}

static uint8_t *pread_all(int fd, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len ? len : 1);
	size_t got = 0;
	ssize_t n;

	assert_non_null(buf);
	while (got < len) {
		n = pread(fd, buf + got, len - got, (off_t)(off + got));
		assert_true(n > 0);
		got += (size_t)n;
	}
	return buf;
}

/* Whether the file system takes O_DIRECT opens of this file (tmpfs does not). */
static int direct_ok(int fd)
{
	char p[64];
	int d;

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	d = open(p, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (d < 0)
		return 0;
	close(d);
	return 1;
}

/* Load [off, off + len) in mode m and compare with pread; checks the region's fields. */
static void check_range(int fd, const char *what, const struct tmode *m, uint64_t off, uint64_t len)
{
	struct ccm_progress prog = {0};
	struct ccm_region reg;
	char err[256];
	uint8_t *want;
	int rc;

	set_env("CCM_DIRECT", m->direct);
	rc = ccm_load_fd(fd, off, len, m->mode, NULL, &prog, &reg, err, sizeof(err));
	set_env("CCM_DIRECT", NULL);
	if (rc != 0)
		fail_msg("%s, %s, [%llu, +%llu): %d (%s)", what, m->label, (unsigned long long)off,
		         (unsigned long long)len, rc, err);
	assert_non_null(reg.data);
	assert_int_equal(reg.len, len);
	assert_int_equal(reg.mode, m->mode);
	if (m->direct && m->direct[0] == '0')
		assert_int_equal(reg.direct, 0);
	if (m->direct && m->direct[0] == '1')
		assert_int_equal(reg.direct, direct_ok(fd));
	/* The only note allowed here: a NUMA policy the kernel refused (mbind in a restricted container). */
	if (reg.note[0] && !strstr(reg.note, "NUMA policy not applied"))
		fail_msg("%s, %s: unexpected note '%s'", what, m->label, reg.note);
	assert_true(reg.placement[0] != 0);
	/* Alignment within the file is kept: data sits at off's offset within a page. */
	assert_int_equal((uintptr_t)reg.data % 4096, off % 4096);
	assert_int_equal(prog.total, len);
	assert_int_equal(atomic_load(&prog.done), len);
	if (m->mode == CCM_MODE_MMAP) {
		assert_string_equal(reg.placement, "file page cache");
		assert_int_equal(reg.huge, 0);
	} else {
		assert_true(strncmp(reg.placement, "interleave(", 11) == 0 || reg.note[0]);
	}
	want = pread_all(fd, off, (size_t)len);
	if (memcmp(reg.data, want, (size_t)len) != 0) {
		size_t i;

		for (i = 0; i < len && ((const uint8_t *)reg.data)[i] == want[i]; i++)
			;
		fail_msg("%s, %s, [%llu, +%llu): first difference at byte %zu", what, m->label, (unsigned long long)off,
		         (unsigned long long)len, i);
	}
	free(want);
	ccm_region_free(&reg);
	assert_null(reg.data);
}

/* Whole file, a range at an odd offset within a page (to near the end) and [7, +12345), every mode. */
static void check_file(const char *path)
{
	struct stat st;
	uint64_t size, o;
	size_t i;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	size = (uint64_t)st.st_size;
	for (i = 0; i < T_NELEM(tmodes); i++) {
		check_range(fd, path, &tmodes[i], 0, size);
		o = 4096 * 3 + 32;
		if (size > o + 17)
			check_range(fd, path, &tmodes[i], o, size - o - 17);
		if (size >= 7 + 12345)
			check_range(fd, path, &tmodes[i], 7, 12345);
		check_range(fd, path, &tmodes[i], size - 1, 1);
	}
	close(fd);
}

static const char *models_dir(void)
{
	static char buf[PATH_MAX];
	const char *env = getenv("CC_MODELS_DIR");
	struct stat st;

	if (env && *env)
		return env;
	snprintf(buf, sizeof(buf), "%s/../shared/models", T_TOP_SRCDIR);
	if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
		return buf;
	return "/work/shared/models";
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void t_names(void **state)
{
	struct ccm_place pl;

	(void)state;
	assert_string_equal(ccm_mode_name(CCM_MODE_URING), "uring");
	assert_string_equal(ccm_mode_name(CCM_MODE_MMAP), "mmap");
	assert_string_equal(ccm_mode_name(CCM_MODE_READ), "read");
	assert_int_equal(ccm_mode_parse("uring"), CCM_MODE_URING);
	assert_int_equal(ccm_mode_parse("mmap"), CCM_MODE_MMAP);
	assert_int_equal(ccm_mode_parse("read"), CCM_MODE_READ);
	assert_int_equal(ccm_mode_parse("URING"), -EINVAL);
	assert_int_equal(ccm_mode_parse(""), -EINVAL);
	assert_int_equal(ccm_mode_parse(NULL), -EINVAL);

	assert_int_equal(ccm_place_parse("interleave", &pl), 0);
	assert_int_equal(pl.kind, CCM_PLACE_INTERLEAVE);
	assert_int_equal(ccm_place_parse("local", &pl), 0);
	assert_int_equal(pl.kind, CCM_PLACE_LOCAL);
	assert_int_equal(ccm_place_parse("node=0", &pl), 0);
	assert_int_equal(pl.kind, CCM_PLACE_NODE);
	assert_int_equal(pl.node, 0);
	assert_int_equal(ccm_place_parse("node=12", &pl), 0);
	assert_int_equal(pl.node, 12);
	assert_int_equal(ccm_place_parse("node=", &pl), -EINVAL);
	assert_int_equal(ccm_place_parse("node=-1", &pl), -EINVAL);
	assert_int_equal(ccm_place_parse("node=1x", &pl), -EINVAL);
	assert_int_equal(ccm_place_parse("node=99999999999", &pl), -EINVAL);
	assert_int_equal(ccm_place_parse("nodes", &pl), -EINVAL);
	assert_int_equal(ccm_place_parse("", &pl), -EINVAL);
}

/* Every vendored model file, whole and in sub-ranges, in every mode. */
static void t_vendored(void **state)
{
	static const char *const files[] = {"stories260K.gguf",
	                                    "llama-2-tiny-random.gguf",
	                                    "derived/stories260K-F16.gguf",
	                                    "derived/stories260K-Q8_0.gguf",
	                                    "derived/stories260K-Q4_0.gguf",
	                                    "legacy/tinyllamas-stories-260k-f32.gguf"};
	const char *dir = models_dir();
	char path[PATH_MAX + 64];
	size_t i, found = 0;

	(void)state;
	for (i = 0; i < T_NELEM(files); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if (access(path, R_OK) != 0) {
			print_message("test_load: %s missing: not checked\n", path);
			continue;
		}
		check_file(path);
		found++;
	}
	if (!found) {
		print_message("test_load: no vendored model under %s (set CC_MODELS_DIR): skipped\n", dir);
		skip();
	}
}

static void t_smollm2(void **state)
{
	const char *env = getenv("CC_SMOLLM2"), *home = getenv("HOME");
	char path[PATH_MAX];

	(void)state;
	if (env && *env)
		snprintf(path, sizeof(path), "%s", env);
	else
		snprintf(path, sizeof(path), "%s/.cache/cc/models/SmolLM2-135M-Instruct.Q4_1.gguf", home ? home : "");
	if (access(path, R_OK) != 0) {
		print_message("test_load: SmolLM2 not found at %s (set CC_SMOLLM2): skipped\n", path);
		skip();
	}
	check_file(path);
}

/* The generated 64 MB file, plus ranges at every offset within a page around odd lengths. */
static void t_generated(void **state)
{
	static const uint64_t offs[] = {0, 1, 63, 64, 4095, 4096, 4097, ((uint64_t)2 << 20) - 1, (uint64_t)5 << 20};
	static const uint64_t lens[] = {1, 4095, 4096, 4097, (uint64_t)2 << 20, ((uint64_t)9 << 20) + 3};
	size_t i, j, k;
	int fd;

	(void)state;
	check_file(big_path);
	fd = open(big_path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	for (i = 0; i < T_NELEM(offs); i++)
		for (j = 0; j < T_NELEM(lens); j++)
			for (k = 0; k < T_NELEM(tmodes); k++)
				check_range(fd, big_path, &tmodes[k], offs[i], lens[j]);
	close(fd);
}

/* ---- progress and cancel, observed by a second thread ----------------------------------------- */

struct watch {
	struct ccm_progress *prog;
	_Atomic int stop;
	int cancel_mid;    /* set cancel once a part of the range has arrived */
	int truncate_fd;   /* >= 0: ftruncate it to 4096 once a part of the range has arrived */
	uint64_t seen_mid; /* a value 0 < done < total that was seen */
	int acted;
};

static void *watcher(void *arg)
{
	struct watch *w = arg;
	uint64_t d, total;

	while (!atomic_load(&w->stop)) {
		d = atomic_load_explicit(&w->prog->done, memory_order_relaxed);
		total = w->prog->total;
		if (d > 0 && total && d < total) {
			if (!w->seen_mid)
				w->seen_mid = d;
			if (!w->acted && w->cancel_mid) {
				atomic_store(&w->prog->cancel, 1);
				w->acted = 1;
			}
			if (!w->acted && w->truncate_fd >= 0) {
				if (ftruncate(w->truncate_fd, 4096) == 0)
					w->acted = 1;
			}
		}
	}
	return NULL;
}

/* Small reads, so that a 64 MB load takes many steps (the watcher acts in between). */
static void slow_env(int on)
{
	set_env("CCM_READ_CHUNK_KB", on ? "64" : NULL);
	set_env("CCM_URING_CHUNK_KB", on ? "64" : NULL);
	set_env("CCM_URING_DEPTH", on ? "2" : NULL);
	set_env("CCM_MMAP_CHUNK_KB", on ? "64" : NULL);
}

static void t_progress_mid(void **state)
{
	size_t i;
	int fd, tries, rc;

	(void)state;
	fd = open(big_path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	slow_env(1);
	for (i = 0; i < T_NELEM(tmodes); i++) {
		uint64_t seen = 0;

		set_env("CCM_DIRECT", tmodes[i].direct);
		for (tries = 0; tries < MAX_TRIES && !seen; tries++) {
			struct ccm_progress prog = {0};
			struct watch w = {.prog = &prog, .truncate_fd = -1};
			struct ccm_region reg;
			pthread_t th;
			char err[256];

			prog.total = BIG_SIZE; /* the watcher may look before the loader sets it */
			assert_int_equal(pthread_create(&th, NULL, watcher, &w), 0);
			rc = ccm_load_fd(fd, 0, BIG_SIZE, tmodes[i].mode, NULL, &prog, &reg, err, sizeof(err));
			atomic_store(&w.stop, 1);
			pthread_join(th, NULL);
			if (rc != 0)
				fail_msg("%s: %d (%s)", tmodes[i].label, rc, err);
			assert_int_equal(atomic_load(&prog.done), BIG_SIZE);
			assert_int_equal(prog.total, BIG_SIZE);
			ccm_region_free(&reg);
			seen = w.seen_mid;
		}
		set_env("CCM_DIRECT", NULL);
		if (!seen)
			fail_msg("%s: never saw the progress between 0 and the total in %d loads", tmodes[i].label,
			         MAX_TRIES);
		assert_true(seen > 0 && seen < BIG_SIZE);
	}
	slow_env(0);
	close(fd);
}

static void t_cancel(void **state)
{
	size_t i;
	int fd, tries, rc;

	(void)state;
	fd = open(big_path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	for (i = 0; i < T_NELEM(tmodes); i++) {
		struct ccm_progress prog = {0};
		struct ccm_region reg;
		char err[256];
		int cancelled = 0;

		/* Cancelled before it starts. */
		set_env("CCM_DIRECT", tmodes[i].direct);
		atomic_store(&prog.cancel, 1);
		rc = ccm_load_fd(fd, 0, BIG_SIZE, tmodes[i].mode, NULL, &prog, &reg, err, sizeof(err));
		assert_int_equal(rc, -ECANCELED);
		assert_null(reg.data);
		assert_true(atomic_load(&prog.done) < BIG_SIZE);
		assert_true(strstr(err, "cancel") != NULL);

		/* Cancelled in the middle, by another thread. */
		slow_env(1);
		for (tries = 0; tries < MAX_TRIES && !cancelled; tries++) {
			struct ccm_progress p2 = {0};
			struct watch w = {.prog = &p2, .cancel_mid = 1, .truncate_fd = -1};
			pthread_t th;

			p2.total = BIG_SIZE;
			assert_int_equal(pthread_create(&th, NULL, watcher, &w), 0);
			rc = ccm_load_fd(fd, 0, BIG_SIZE, tmodes[i].mode, NULL, &p2, &reg, err, sizeof(err));
			atomic_store(&w.stop, 1);
			pthread_join(th, NULL);
			if (rc == 0) {
				/* It finished before the watcher acted: try again. */
				assert_false(w.acted && atomic_load(&p2.done) < BIG_SIZE);
				ccm_region_free(&reg);
				continue;
			}
			if (rc != -ECANCELED)
				fail_msg("%s: cancelled load returned %d (%s)", tmodes[i].label, rc, err);
			assert_null(reg.data);
			assert_true(atomic_load(&p2.done) < BIG_SIZE);
			cancelled = 1;
		}
		slow_env(0);
		set_env("CCM_DIRECT", NULL);
		if (!cancelled)
			fail_msg("%s: no load was cancelled in the middle in %d tries", tmodes[i].label, MAX_TRIES);
	}
	close(fd);
}

static void t_no_uring(void **state)
{
	struct ccm_region reg;
	char err[256];
	uint8_t *want;
	int fd;

	(void)state;
	fd = open(big_path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	set_env("CCM_NO_URING", "1");
	assert_int_equal(ccm_load_fd(fd, 100, 1 << 20, CCM_MODE_URING, NULL, NULL, &reg, err, sizeof(err)), 0);
	set_env("CCM_NO_URING", NULL);
	assert_int_equal(reg.mode, CCM_MODE_READ);
	assert_true(strstr(reg.note, "CCM_NO_URING") != NULL);
	assert_true(strstr(reg.note, "pread") != NULL);
	want = pread_all(fd, 100, 1 << 20);
	assert_memory_equal(reg.data, want, 1 << 20);
	free(want);
	ccm_region_free(&reg);
	close(fd);
}

/* In a child process whose io_uring_setup() fails with ENOSYS (a seccomp filter, as a sandbox or an old kernel). */
static int child_no_uring_syscall(void)
{
	struct sock_filter filt[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = (unsigned short)T_NELEM(filt), .filter = filt};
	struct ccm_region reg;
	char err[256];
	uint8_t *want;
	int fd, ok;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
		return 77;
	fd = open(big_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || ccm_load_fd(fd, 4096 + 1, 3 << 20, CCM_MODE_URING, NULL, NULL, &reg, err, sizeof(err)) != 0)
		return 2;
	if (reg.mode != CCM_MODE_READ || !strstr(reg.note, "io_uring unavailable") ||
	    !strstr(reg.note, strerror(ENOSYS)) || !strstr(reg.note, "pread"))
		return 3;
	want = malloc(3 << 20);
	ok = want && pread(fd, want, 3 << 20, 4096 + 1) == 3 << 20 && !memcmp(want, reg.data, 3 << 20);
	free(want);
	ccm_region_free(&reg);
	return ok ? 0 : 4;
}

static void t_no_uring_syscall(void **state)
{
	int st;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_no_uring_syscall());
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77) {
		print_message("test_load: cannot install a seccomp filter here: skipped\n");
		skip();
	}
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void t_bad_range(void **state)
{
	struct ccm_region reg;
	char err[256];
	size_t i;
	int fd, p[2];

	(void)state;
	fd = open(big_path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	for (i = 0; i < T_NELEM(tmodes); i++) {
		enum ccm_mode m = tmodes[i].mode;

		err[0] = 0;
		assert_int_equal(ccm_load_fd(fd, BIG_SIZE - 10, 11, m, NULL, NULL, &reg, err, sizeof(err)), -EINVAL);
		assert_true(strstr(err, "not inside the file") != NULL);
		assert_null(reg.data);
		assert_int_equal(ccm_load_fd(fd, BIG_SIZE + 1, 1, m, NULL, NULL, &reg, err, sizeof(err)), -EINVAL);
		assert_int_equal(ccm_load_fd(fd, 0, BIG_SIZE + 1, m, NULL, NULL, &reg, err, sizeof(err)), -EINVAL);
		assert_int_equal(ccm_load_fd(fd, 1, UINT64_MAX, m, NULL, NULL, &reg, err, sizeof(err)), -EINVAL);
		assert_int_equal(ccm_load_fd(fd, BIG_SIZE, 0, m, NULL, NULL, &reg, err, sizeof(err)), -EINVAL);
		assert_int_equal(ccm_load_fd(fd, 0, 0, m, NULL, NULL, &reg, err, sizeof(err)), -EINVAL);
		/* The last byte exactly is fine. */
		assert_int_equal(ccm_load_fd(fd, BIG_SIZE - 1, 1, m, NULL, NULL, &reg, err, sizeof(err)), 0);
		ccm_region_free(&reg);
	}
	assert_int_equal(ccm_load_fd(fd, 0, 1, (enum ccm_mode)7, NULL, NULL, &reg, err, sizeof(err)), -EINVAL);
	close(fd);
	assert_int_equal(ccm_load_fd(fd, 0, 1, CCM_MODE_READ, NULL, NULL, &reg, err, sizeof(err)), -EBADF);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(ccm_load_fd(p[0], 0, 1, CCM_MODE_URING, NULL, NULL, &reg, err, sizeof(err)), -EINVAL);
	close(p[0]);
	close(p[1]);
	/* A zeroed region frees as a no-op. */
	memset(&reg, 0, sizeof(reg));
	ccm_region_free(&reg);
	ccm_region_free(NULL);
}

static void t_place(void **state)
{
	struct ccm_place pl;
	struct ccm_region reg;
	char err[256];
	int fd;

	(void)state;
	fd = open(big_path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	/* node=0 exists everywhere (with or without NUMA support). */
	assert_int_equal(ccm_place_parse("node=0", &pl), 0);
	assert_int_equal(ccm_load_fd(fd, 0, 4 << 20, CCM_MODE_URING, &pl, NULL, &reg, err, sizeof(err)), 0);
	assert_true(strncmp(reg.placement, "node=0", 6) == 0 || strstr(reg.note, "NUMA policy not applied"));
	ccm_region_free(&reg);
	assert_int_equal(ccm_place_parse("local", &pl), 0);
	assert_int_equal(ccm_load_fd(fd, 0, 4 << 20, CCM_MODE_READ, &pl, NULL, &reg, err, sizeof(err)), 0);
	assert_string_equal(reg.placement, "local");
	ccm_region_free(&reg);
	/* A node that cannot exist. */
	assert_int_equal(ccm_place_parse("node=1048576", &pl), 0);
	err[0] = 0;
	assert_int_equal(ccm_load_fd(fd, 0, 4096, CCM_MODE_URING, &pl, NULL, &reg, err, sizeof(err)), -EINVAL);
	assert_true(strstr(err, "node=1048576") != NULL);
	assert_null(reg.data);
	assert_int_equal(ccm_load_fd(fd, 0, 4096, CCM_MODE_READ, &pl, NULL, &reg, err, sizeof(err)), -EINVAL);
	pl.kind = (enum ccm_place_kind)9;
	assert_int_equal(ccm_load_fd(fd, 0, 4096, CCM_MODE_READ, &pl, NULL, &reg, err, sizeof(err)), -EINVAL);

	/* Fake nodes: accepted by number, no policy applied, a note says so. */
	set_env("CC_FAKE_NUMA", "2");
	assert_int_equal(ccm_place_parse("node=1", &pl), 0);
	assert_int_equal(ccm_load_fd(fd, 0, 4096, CCM_MODE_READ, &pl, NULL, &reg, err, sizeof(err)), 0);
	assert_true(strstr(reg.note, "CC_FAKE_NUMA") != NULL);
	assert_true(strstr(reg.placement, "not applied") != NULL);
	ccm_region_free(&reg);
	assert_int_equal(ccm_load_fd(fd, 0, 4096, CCM_MODE_URING, NULL, NULL, &reg, err, sizeof(err)), 0);
	assert_true(strstr(reg.placement, "interleave(fake 0-1") != NULL);
	ccm_region_free(&reg);
	assert_int_equal(ccm_place_parse("node=2", &pl), 0);
	assert_int_equal(ccm_load_fd(fd, 0, 4096, CCM_MODE_READ, &pl, NULL, &reg, err, sizeof(err)), -EINVAL);
	set_env("CC_FAKE_NUMA", "two");
	assert_int_equal(ccm_load_fd(fd, 0, 4096, CCM_MODE_URING, NULL, NULL, &reg, err, sizeof(err)), -EINVAL);
	assert_true(strstr(err, "CC_FAKE_NUMA") != NULL);
	set_env("CC_FAKE_NUMA", NULL);
	close(fd);
}

/* data must hold make_temp()'s bytes for seed. */
static void check_pattern(const uint8_t *data, size_t n, uint64_t seed, const char *label)
{
	size_t chunk = (size_t)1 << 20, pos;
	uint8_t *buf = malloc(chunk);

	assert_non_null(buf);
	for (pos = 0; pos < n; pos += chunk) {
		size_t k = n - pos < chunk ? n - pos : chunk;

		fill_pattern(buf, k, seed + pos);
		if (memcmp(data + pos, buf, k) != 0)
			fail_msg("%s: a load that succeeded has wrong bytes in [%zu, %zu)", label, pos, pos + k);
	}
	free(buf);
}

/* A copy of the generated file truncated (to 4 KB) while it is being loaded: an error, not a hang. */
static void t_truncate(void **state)
{
	char path[PATH_MAX];
	size_t i;
	int tries, rc, fd;

	(void)state;
	slow_env(1);
	for (i = 0; i < T_NELEM(tmodes); i++) {
		int hit = 0;

		set_env("CCM_DIRECT", tmodes[i].direct);
		for (tries = 0; tries < MAX_TRIES && !hit; tries++) {
			struct ccm_progress prog = {0};
			struct watch w = {.prog = &prog};
			struct ccm_region reg;
			pthread_t th;
			char err[256];

			fd = make_temp(path, sizeof(path), BIG_SIZE, 99);
			w.truncate_fd = fd;
			prog.total = BIG_SIZE;
			assert_int_equal(pthread_create(&th, NULL, watcher, &w), 0);
			rc = ccm_load_fd(fd, 0, BIG_SIZE, tmodes[i].mode, NULL, &prog, &reg, err, sizeof(err));
			atomic_store(&w.stop, 1);
			pthread_join(th, NULL);
			if (rc == 0) {
				/* Loaded before the truncation: all of it (do not touch an mmap of a truncated file).
				 */
				if (tmodes[i].mode != CCM_MODE_MMAP)
					check_pattern(reg.data, BIG_SIZE, 99, tmodes[i].label);
				ccm_region_free(&reg);
			} else {
				if (rc != -EIO)
					fail_msg("%s: truncated file: %d (%s)", tmodes[i].label, rc, err);
				assert_true(strstr(err, "shrink") != NULL);
				assert_null(reg.data);
				hit = 1;
			}
			close(fd);
			unlink(path);
		}
		set_env("CCM_DIRECT", NULL);
		if (!hit)
			fail_msg("%s: the file was never truncated during a load in %d tries", tmodes[i].label,
			         MAX_TRIES);
	}
	slow_env(0);
}

/* The range checked against the file as it is when the load starts: a file truncated before. */
static void t_truncated_before(void **state)
{
	char path[PATH_MAX], err[256];
	struct ccm_region reg;
	size_t i;
	int fd;

	(void)state;
	fd = make_temp(path, sizeof(path), 1 << 20, 5);
	assert_int_equal(ftruncate(fd, 1000), 0);
	for (i = 0; i < T_NELEM(tmodes); i++) {
		assert_int_equal(ccm_load_fd(fd, 0, 1 << 20, tmodes[i].mode, NULL, NULL, &reg, err, sizeof(err)),
		                 -EINVAL);
		assert_int_equal(ccm_load_fd(fd, 0, 1000, tmodes[i].mode, NULL, NULL, &reg, err, sizeof(err)), 0);
		ccm_region_free(&reg);
	}
	close(fd);
	unlink(path);
}

static int group_setup(void **state)
{
	int fd;

	(void)state;
	fd = make_temp(big_path, sizeof(big_path), BIG_SIZE, 1234);
	close(fd);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (big_path[0])
		unlink(big_path);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_names),     cmocka_unit_test(t_vendored),         cmocka_unit_test(t_smollm2),
	    cmocka_unit_test(t_generated), cmocka_unit_test(t_progress_mid),     cmocka_unit_test(t_cancel),
	    cmocka_unit_test(t_no_uring),  cmocka_unit_test(t_no_uring_syscall), cmocka_unit_test(t_bad_range),
	    cmocka_unit_test(t_place),     cmocka_unit_test(t_truncate),         cmocka_unit_test(t_truncated_before),
	};

	/* The tests set these themselves where they need them. */
	unsetenv("CC_FAKE_NUMA");
	unsetenv("CCM_NO_URING");
	unsetenv("CCM_DIRECT");
	unsetenv("CCM_URING_DEPTH");
	unsetenv("CCM_URING_CHUNK_KB");
	unsetenv("CCM_URING_ASYNC");
	unsetenv("CCM_READ_CHUNK_KB");
	unsetenv("CCM_MMAP_CHUNK_KB");
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
