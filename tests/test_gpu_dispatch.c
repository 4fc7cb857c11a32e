/* SPDX-License-Identifier: MIT */
/*
 * test_gpu_dispatch.c: libccgpu's automatic dispatch and its crossover cache (gpu/dispatch.c).
 *  - backends by name, bad ids;
 *  - a crossover is unknown (-EAGAIN) until measured; ccg_calibrate measures it and writes the cache file;
 *  - a cache file written beforehand decides: an op goes to the device from its size up and never below it, an op
 *    marked "never" stays on libcck at any size, lines that make no sense are ignored (the op stays unknown);
 *  - backend cpu keeps everything on libcck, backend opencl sends even tiny ops to the device;
 *  - with the device selection "none": crossovers are "never", calibration is -ENODEV, results are libcck's.
 * The dispatch state is per process (ccg_init runs once), so each case runs in a child process of its own with its
 * own XDG_CACHE_HOME; the parent never touches OpenCL. ccg_device_calls() tells which side ran a call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cck.h"
#include "ccg.h"

#define BIG ((size_t)1 << 20)

static char g_dir[] = "/tmp/test_gpu_dispatch.XXXXXX";
static float *g_x, *g_y, *g_ref;

/* A check in a child: print what failed and exit 1. */
#define CHECK(cond, ...)                                                                                             \
	do {                                                                                                         \
		if (!(cond)) {                                                                                       \
			printf("child: %s:%d: %s: ", __FILE__, __LINE__, #cond);                                     \
			printf(__VA_ARGS__);                                                                         \
			printf("\n");                                                                                \
			fflush(stdout);                                                                              \
			_exit(1);                                                                                    \
		}                                                                                                    \
	} while (0)

/* Run fn in a child with XDG_CACHE_HOME = g_dir, no crossover file yet (the program binary the first child built
 * stays: one build), and the environment variable given; 0 = it passed, 77 = no device (the child said why). */
static int in_child(const char *name, void (*fn)(void), const char *env_name, const char *env_value)
{
	char cmd[300];
	const char *cache = g_dir;
	pid_t pid;
	int st;

	snprintf(cmd, sizeof(cmd), "rm -f '%s'/cc/opencl/*.crossover", g_dir);
	assert_int_equal(system(cmd), 0);
	printf("# %s\n", name);
	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("XDG_CACHE_HOME", cache, 1);
		unsetenv("CC_BACKEND");
		if (env_name)
			setenv(env_name, env_value, 1);
		fn();
		fflush(stdout);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void need_device(void)
{
	if (ccg_init() < 0) {
		printf("child: no OpenCL device: %s\n", ccg_why());
		fflush(stdout);
		_exit(77);
	}
}

static void run_child(const char *name, void (*fn)(void), const char *env_name, const char *env_value)
{
	int rc = in_child(name, fn, env_name, env_value);

	if (rc == 77) {
		printf("# SKIP %s: no OpenCL device here (see the child's line above)\n", name);
		skip();
	}
	assert_int_equal(rc, 0);
}

/* ---- cases (each runs in its own child) ---------------------------------------------------------------------- */

static void child_unknown_then_measured(void)
{
	size_t n = 0;
	const char *path;
	FILE *f;
	char line[128];
	int found = 0;

	need_device();
	CHECK(ccg_crossover(CCK_OP_ADD, &n) == -EAGAIN, "a crossover before any measurement");
	CHECK(ccg_crossover(-1, &n) == -EINVAL && ccg_crossover(CCK_OP_COUNT + 5, &n) == -EINVAL, "bad op ids");
	CHECK(ccg_calibrate(-1, 0) == -EINVAL, "calibrate of a bad op");
	CHECK(ccg_crossover(CCK_OP_ADD, NULL) == -EINVAL, "NULL n");
	CHECK(ccg_calibrate(CCK_OP_ADD, 0) == 0, "calibrate add");
	CHECK(ccg_crossover(CCK_OP_ADD, &n) == 0, "add is known after calibrating");
	CHECK(n == SIZE_MAX || n >= CCG_MIN_MEASURE, "add's crossover %zu", n);
	CHECK(ccg_calibrate(CCG_QOP(CCK_TYPE_Q4_0), 0) == 0, "calibrate qmatvec_q4_0");
	CHECK(ccg_calibrate(CCG_QOP(CCK_TYPE_Q5_0), 0) == -EINVAL, "q5_0 has no device product");
	path = ccg_cache_path();
	CHECK(path != NULL, "a cache path");
	f = fopen(path, "r");
	CHECK(f != NULL, "the cache file %s was written", path);
	while (fgets(line, sizeof(line), f))
		found += !strncmp(line, "add ", 4) || !strncmp(line, "qmatvec_q4_0 ", 13);
	fclose(f);
	CHECK(found == 2, "add and qmatvec_q4_0 in %s", path);
	printf("child: add's crossover: %s (%zu); cache %s\n", n == SIZE_MAX ? "never" : "measured", n, path);
}

/* Device selections name devices as ccg_init chose: by index, by a part of the name or version, none, auto. */
static void child_match(void)
{
	struct ccg_device_info in;
	int sel = -1;

	need_device();
	for (int i = 0; i < ccg_device_count(); i++) {
		CHECK(ccg_device_info(i, &in) == 0, "device %d", i);
		if (in.selected)
			sel = i;
		CHECK(ccg_match(in.name) >= 0, "the name %s", in.name);
	}
	CHECK(sel >= 0, "a device is selected");
	CHECK(ccg_match("auto") == sel && ccg_match(NULL) == sel && ccg_match("") == sel, "auto is the one in use");
	CHECK(ccg_match("none") == -ENODEV && ccg_match("NONE") == -ENODEV, "none");
	CHECK(ccg_match("99") == -ENOENT && ccg_match("-1") == -ENOENT, "an index out of range");
	CHECK(ccg_match("no such device at all") == -ENOENT, "a name nothing has");
	CHECK(ccg_device_info(sel, &in) == 0, "info");
	if (strstr(in.platform, "Portable Computing Language"))
		CHECK(ccg_match("pocl") == sel && ccg_match("PoCL") == sel, "pocl, from the version string");
	CHECK(ccg_select("0") == -EBUSY, "a selection after ccg_init");
}

/* Write the cache file this child's device would read, then check what the dispatch does with it. */
static void child_cache_decides(void)
{
	size_t n = 0;
	uint64_t c0;
	double r;
	FILE *f;

	need_device();
	f = fopen(ccg_cache_path(), "w");
	CHECK(f != NULL, "write %s", ccg_cache_path());
	fprintf(f, "exp 8192\nsum never\nrelu banana\nnonsense 5\nsqrt 0\ngarbage\n");
	fclose(f);
	CHECK(ccg_crossover(CCK_OP_EXP, &n) == 0 && n == 8192, "exp from the file: %zu", n);
	CHECK(ccg_crossover(CCK_OP_SUM, &n) == 0 && n == SIZE_MAX, "sum never");
	CHECK(ccg_crossover(CCK_OP_RELU, &n) == -EAGAIN, "a bad value leaves relu unknown");
	CHECK(ccg_crossover(CCK_OP_SQRT, &n) == -EAGAIN, "a zero leaves sqrt unknown");

	c0 = ccg_device_calls();
	CHECK(ccg_unary_f32(CCK_OP_EXP, g_x, g_y, 8191, NULL) == 0, "exp 8191");
	CHECK(ccg_device_calls() == c0, "exp below its crossover ran on the device");
	CHECK(ccg_unary_f32(CCK_OP_EXP, g_x, g_y, 8192, NULL) == 0, "exp 8192");
	CHECK(ccg_device_calls() == c0 + 1, "exp at its crossover did not run on the device");
	CHECK(ccg_unary_f32(CCK_OP_EXP, g_x, g_y, BIG, NULL) == 0, "exp big");
	CHECK(ccg_device_calls() == c0 + 2, "exp above its crossover did not run on the device");
	CHECK(cck_unary_f32(CCK_OP_EXP, g_x, g_ref, BIG, NULL) == 0, "cck exp");
	for (size_t i = 0; i < BIG; i++)
		CHECK(fabsf(g_y[i] - g_ref[i]) <= 1e-6f * fabsf(g_ref[i]), "exp[%zu] %g vs libcck %g", i, g_y[i], g_ref[i]);
	CHECK(ccg_reduce_f32(CCK_OP_SUM, g_x, BIG, &r) == 0, "sum");
	CHECK(ccg_device_calls() == c0 + 2, "sum (never) ran on the device");
	CHECK(ccg_unary_f32(CCK_OP_EXP, g_x, g_y, 100, NULL) == 0 && ccg_device_calls() == c0 + 2, "tiny exp");
	/* bad arguments are libcck's errors on either side */
	CHECK(ccg_unary_f32(CCK_OP_EXP, NULL, g_y, BIG, NULL) == -EINVAL, "NULL x");
	CHECK(ccg_unary_f32(CCK_OP_ADD, g_x, g_y, 5, NULL) == -EINVAL, "a binary op as unary");
	CHECK(ccg_unary_f32(-3, g_x, g_y, BIG, NULL) == -EINVAL, "a bad op id");

	/* forced backends */
	CHECK(ccg_set_backend(CCG_BACKEND_CPU) == 0, "backend cpu");
	CHECK(ccg_unary_f32(CCK_OP_EXP, g_x, g_y, BIG, NULL) == 0 && ccg_device_calls() == c0 + 2, "cpu backend");
	CHECK(ccg_set_backend(CCG_BACKEND_OPENCL) == 0, "backend opencl");
	CHECK(ccg_reduce_f32(CCK_OP_SUM, g_x, 10, &r) == 0 && ccg_device_calls() == c0 + 3, "opencl backend: sum");
	CHECK(ccg_unary_f32(CCK_OP_RELU, g_x, g_y, 3, NULL) == 0 && ccg_device_calls() == c0 + 4, "opencl: relu");
	CHECK(ccg_set_backend(CCG_BACKEND_AUTO) == 0 && ccg_get_backend() == CCG_BACKEND_AUTO, "back to auto");
	printf("child: the cache file decided: %llu calls on the device\n", (unsigned long long)(ccg_device_calls() - c0));
}

static void child_env_backend(void)
{
	uint64_t c0;

	need_device();
	CHECK(ccg_get_backend() == CCG_BACKEND_OPENCL, "CC_BACKEND=opencl read at load: %d", ccg_get_backend());
	c0 = ccg_device_calls();
	CHECK(ccg_binary_f32(CCK_OP_ADD, g_x, g_x, g_y, 7) == 0 && ccg_device_calls() == c0 + 1, "add on the device");
	for (size_t i = 0; i < 7; i++)
		CHECK(g_y[i] == g_x[i] + g_x[i], "add[%zu]", i);
}

static void child_no_device(void)
{
	size_t n = 0;
	double r;

	CHECK(ccg_init() == -ENODEV, "the selection none gives no device");
	CHECK(strstr(ccg_why(), "\"none\"") || strstr(ccg_why(), "built without OpenCL"), "why: %s", ccg_why());
	CHECK(ccg_crossover(CCK_OP_EXP, &n) == 0 && n == SIZE_MAX, "never without a device");
	CHECK(ccg_calibrate(CCK_OP_EXP, 1) == -ENODEV, "nothing to calibrate");
	CHECK(ccg_cache_path() == NULL, "no cache path");
	CHECK(ccg_set_backend(CCG_BACKEND_OPENCL) == 0, "backend opencl without a device");
	CHECK(ccg_unary_f32(CCK_OP_EXP, g_x, g_y, BIG, NULL) == 0, "exp");
	CHECK(cck_unary_f32(CCK_OP_EXP, g_x, g_ref, BIG, NULL) == 0, "cck exp");
	CHECK(!memcmp(g_y, g_ref, BIG * sizeof(float)), "libcck's bits without a device");
	CHECK(ccg_reduce_f32(CCK_OP_MIN, g_x, 0, &r) == -EINVAL, "libcck's error for min of nothing");
	CHECK(ccg_device_calls() == 0, "no device calls");
}

/* ---- tests ------------------------------------------------------------------------------------------------- */

static void test_backend_names(void **state)
{
	(void)state;
	assert_int_equal(ccg_backend_lookup("auto"), CCG_BACKEND_AUTO);
	assert_int_equal(ccg_backend_lookup("CPU"), CCG_BACKEND_CPU);
	assert_int_equal(ccg_backend_lookup("opencl"), CCG_BACKEND_OPENCL);
	assert_int_equal(ccg_backend_lookup("gpu"), -ENOENT);
	assert_int_equal(ccg_backend_lookup(NULL), -EINVAL);
	assert_string_equal(ccg_backend_name(CCG_BACKEND_OPENCL), "opencl");
	assert_null(ccg_backend_name(3));
	assert_null(ccg_backend_name(-1));
	assert_int_equal(ccg_set_backend(3), -EINVAL);
	assert_int_equal(ccg_set_backend(-1), -EINVAL);
}

static void test_unknown_then_measured(void **state)
{
	(void)state;
	run_child("measured", child_unknown_then_measured, NULL, NULL);
}

static void test_match(void **state)
{
	(void)state;
	run_child("match", child_match, NULL, NULL);
}

static void test_cache_decides(void **state)
{
	(void)state;
	run_child("cache", child_cache_decides, NULL, NULL);
}

static const char *g_self;

/* CC_BACKEND is read when the library loads: the child runs this program again with it set. */
static void exec_env_child(void)
{
	execl(g_self, g_self, "--env-child", (char *)NULL);
	printf("child: exec %s failed\n", g_self);
	_exit(1);
}

static void test_env_backend(void **state)
{
	(void)state;
	run_child("env", exec_env_child, "CC_BACKEND", "opencl");
}

static void test_no_device(void **state)
{
	(void)state;
	assert_int_equal(in_child("none", child_no_device, "CC_OPENCL_DEVICE", "none"), 0);
}

static int make_inputs(void)
{
	g_x = malloc(BIG * sizeof(float));
	g_y = malloc(BIG * sizeof(float));
	g_ref = malloc(BIG * sizeof(float));
	if (!g_x || !g_y || !g_ref)
		return -1;
	for (size_t i = 0; i < BIG; i++)
		g_x[i] = (float)((i * 2654435761u) % 20000) / 2000.0f - 5.0f;
	return 0;
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(g_dir) ? make_inputs() : -1;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", g_dir);
	free(g_x);
	free(g_y);
	free(g_ref);
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backend_names),    cmocka_unit_test(test_unknown_then_measured),
	    cmocka_unit_test(test_match),            cmocka_unit_test(test_cache_decides),
	    cmocka_unit_test(test_env_backend),
	    cmocka_unit_test(test_no_device),
	};

	g_self = "/proc/self/exe";
	if (argc == 2 && !strcmp(argv[1], "--env-child")) {
		if (make_inputs())
			return 1;
		child_env_backend();
		return 0;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
