/* SPDX-License-Identifier: MIT */
/* ccg.c: the core of libccgpu: finding OpenCL devices, choosing one, building the embedded kernels once per device
 * (the program binary is cached on disk, keyed by device, driver, options and source), kernels by name, buffers
 * that wrap host memory where the device shares it, and enqueueing. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ccg_internal.h"

#define MAX_DEVS 16
#define MAX_BINARY (256u << 20) /* a cached program binary larger than this is not ours */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t g_sel_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_sel[128];
static int g_sel_set, g_started;
static struct ccg_device_info g_info[MAX_DEVS];
static cl_platform_id g_plat[MAX_DEVS];
static cl_device_id g_devid[MAX_DEVS];
static int g_ndev;
static struct ccg_dev *g_dev;
static char g_why[320] = "OpenCL not initialized yet";
static char g_xover_path[512];

void ccg_debug(const char *fmt, ...)
{
	static int on = -1;
	va_list ap;

	if (on < 0)
		on = getenv("CCG_DEBUG") != NULL;
	if (!on)
		return;
	va_start(ap, fmt);
	fputs("ccg: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

const char *ccg_clerr_name(cl_int e)
{
	switch (e) {
#define E(x) \
	case x: \
		return #x
		E(CL_SUCCESS);
		E(CL_DEVICE_NOT_FOUND);
		E(CL_DEVICE_NOT_AVAILABLE);
		E(CL_COMPILER_NOT_AVAILABLE);
		E(CL_MEM_OBJECT_ALLOCATION_FAILURE);
		E(CL_OUT_OF_RESOURCES);
		E(CL_OUT_OF_HOST_MEMORY);
		E(CL_BUILD_PROGRAM_FAILURE);
		E(CL_MAP_FAILURE);
		E(CL_INVALID_VALUE);
		E(CL_INVALID_DEVICE);
		E(CL_INVALID_BINARY);
		E(CL_INVALID_BUILD_OPTIONS);
		E(CL_INVALID_PROGRAM);
		E(CL_INVALID_KERNEL_NAME);
		E(CL_INVALID_KERNEL_ARGS);
		E(CL_INVALID_ARG_INDEX);
		E(CL_INVALID_ARG_SIZE);
		E(CL_INVALID_WORK_GROUP_SIZE);
		E(CL_INVALID_WORK_ITEM_SIZE);
		E(CL_INVALID_GLOBAL_WORK_SIZE);
		E(CL_INVALID_BUFFER_SIZE);
		E(CL_INVALID_HOST_PTR);
		E(CL_INVALID_MEM_OBJECT);
		E(CL_INVALID_OPERATION);
#undef E
	case -1001:
		return "CL_PLATFORM_NOT_FOUND_KHR";
	default:
		return "CL error";
	}
}

int ccg_errno(cl_int e)
{
	switch (e) {
	case CL_SUCCESS:
		return 0;
	case CL_MEM_OBJECT_ALLOCATION_FAILURE:
	case CL_OUT_OF_RESOURCES:
	case CL_OUT_OF_HOST_MEMORY:
	case CL_INVALID_BUFFER_SIZE:
		return -ENOMEM;
	case CL_INVALID_VALUE:
	case CL_INVALID_ARG_INDEX:
	case CL_INVALID_ARG_SIZE:
	case CL_INVALID_ARG_VALUE:
	case CL_INVALID_KERNEL_ARGS:
	case CL_INVALID_WORK_GROUP_SIZE:
	case CL_INVALID_WORK_ITEM_SIZE:
	case CL_INVALID_GLOBAL_WORK_SIZE:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/* ---- discovery ------------------------------------------------------------------------------------------------ */

/* A device string, cut to len - 1 bytes (PoCL's CL_DEVICE_VERSION is longer than our field). */
static void dev_str(cl_device_id d, cl_device_info what, char *buf, size_t len)
{
	size_t need = 0;
	char *tmp;

	snprintf(buf, len, "?");
	if (clGetDeviceInfo(d, what, 0, NULL, &need) != CL_SUCCESS || need == 0 || !(tmp = malloc(need + 1)))
		return;
	if (clGetDeviceInfo(d, what, need, tmp, NULL) == CL_SUCCESS) {
		tmp[need] = '\0';
		snprintf(buf, len, "%s", tmp);
	}
	free(tmp);
}

static void fill_info(int i, cl_platform_id p, cl_device_id d)
{
	struct ccg_device_info *in = &g_info[i];
	cl_device_type type = 0;
	cl_uint cu = 0;
	cl_ulong gm = 0, ma = 0, lm = 0;
	cl_bool unified = CL_FALSE;
	size_t wg = 0;
	char ext[4096];

	memset(in, 0, sizeof(*in));
	in->index = i;
	if (clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof(in->platform), in->platform, NULL) != CL_SUCCESS)
		snprintf(in->platform, sizeof(in->platform), "?");
	in->platform[sizeof(in->platform) - 1] = '\0';
	dev_str(d, CL_DEVICE_NAME, in->name, sizeof(in->name));
	dev_str(d, CL_DEVICE_VENDOR, in->vendor, sizeof(in->vendor));
	dev_str(d, CL_DEVICE_VERSION, in->version, sizeof(in->version));
	dev_str(d, CL_DRIVER_VERSION, in->driver, sizeof(in->driver));
	clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof(type), &type, NULL);
	snprintf(in->type, sizeof(in->type), "%s",
	         (type & CL_DEVICE_TYPE_GPU)           ? "gpu"
	         : (type & CL_DEVICE_TYPE_CPU)         ? "cpu"
	         : (type & CL_DEVICE_TYPE_ACCELERATOR) ? "accel"
	                                               : "other");
	clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof(cu), &cu, NULL);
	clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof(gm), &gm, NULL);
	clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof(ma), &ma, NULL);
	clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof(lm), &lm, NULL);
	clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof(wg), &wg, NULL);
	clGetDeviceInfo(d, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof(unified), &unified, NULL);
	in->compute_units = cu;
	in->global_mem = gm;
	in->max_alloc = ma;
	in->local_mem = lm;
	in->max_work_group = wg;
	/* CCG_OWN_MEMORY runs a host-unified device (PoCL) the way of one with its own memory: copies, the pool */
	in->host_unified = unified == CL_TRUE && !getenv("CCG_OWN_MEMORY");
	if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, sizeof(ext), ext, NULL) == CL_SUCCESS) {
		ext[sizeof(ext) - 1] = '\0';
		/* CCG_NO_FP64 tests the float-only kernels (devices without doubles) on a device with them */
		in->fp64 = !getenv("CCG_NO_FP64") && strstr(ext, "cl_khr_fp64") != NULL;
	}
}

static int discover(void)
{
	cl_platform_id plats[8];
	cl_uint np = 0;
	cl_int e = clGetPlatformIDs(8, plats, &np);

	if (e != CL_SUCCESS || np == 0) {
		snprintf(g_why, sizeof(g_why),
		         "no OpenCL platform (%s): no ICD is installed, e.g. the Debian package pocl-opencl-icd",
		         e == CL_SUCCESS ? "none listed" : ccg_clerr_name(e));
		return -ENODEV;
	}
	for (cl_uint p = 0; p < np && p < 8; p++) {
		cl_device_id ids[MAX_DEVS];
		cl_uint nd = 0;

		if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, MAX_DEVS, ids, &nd) != CL_SUCCESS)
			continue;
		for (cl_uint i = 0; i < nd && g_ndev < MAX_DEVS; i++) {
			g_plat[g_ndev] = plats[p];
			g_devid[g_ndev] = ids[i];
			fill_info(g_ndev, plats[p], ids[i]);
			g_ndev++;
		}
	}
	if (g_ndev == 0) {
		snprintf(g_why, sizeof(g_why), "OpenCL platforms found, but no device");
		return -ENODEV;
	}
	return 0;
}

static int ci_contains(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (!strncasecmp(hay, needle, n))
			return 1;
	return n == 0;
}

int ccg_match(const char *spec)
{
	char *end;
	long v;

	if (!spec || !*spec || !strcasecmp(spec, "auto")) {
		for (int i = 0; i < g_ndev; i++)
			if (!strcmp(g_info[i].type, "gpu"))
				return i;
		return g_ndev > 0 ? 0 : -ENOENT;
	}
	if (!strcasecmp(spec, "none"))
		return -ENODEV;
	v = strtol(spec, &end, 10);
	if (*end == '\0')
		return v >= 0 && v < g_ndev ? (int)v : -ENOENT;
	for (int i = 0; i < g_ndev; i++) {
		char full[512];

		snprintf(full, sizeof(full), "%s: %s (%s, %s)", g_info[i].platform, g_info[i].name, g_info[i].vendor,
		         g_info[i].version);
		if (ci_contains(full, spec))
			return i;
	}
	return -ENOENT;
}

/* The index the selection names, or -1 (g_why says why). */
static int choose(const char *spec)
{
	int i = ccg_match(spec);

	if (i == -ENODEV)
		snprintf(g_why, sizeof(g_why), "OpenCL disabled by the device selection \"none\"");
	else if (i < 0)
		snprintf(g_why, sizeof(g_why), "no OpenCL device matches \"%s\" (%d found)", spec ? spec : "", g_ndev);
	return i < 0 ? -1 : i;
}

/* ---- the program: built once per device, binary cached --------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
	return fnv(h, s, strlen(s) + 1);
}

static int cache_dir(char *buf, size_t len)
{
	const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	int n;

	if (x && *x)
		n = snprintf(buf, len, "%s/cc/opencl", x);
	else if (home && *home)
		n = snprintf(buf, len, "%s/.cache/cc/opencl", home);
	else
		return -ENOENT;
	return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

static void mkdirs(const char *dir)
{
	char tmp[512];

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(tmp, 0755);
			*p = '/';
		}
	mkdir(tmp, 0755);
}

static unsigned char *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	unsigned char *buf = NULL;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && st.st_size > 0 && (uint64_t)st.st_size <= MAX_BINARY) {
		buf = malloc((size_t)st.st_size);
		if (buf && pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)st.st_size;
	}
	close(fd);
	return buf;
}

static void write_file(const char *path, const void *data, size_t len)
{
	char tmp[600];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	int ok = write(fd, data, len) == (ssize_t)len;

	if (close(fd) != 0)
		ok = 0;
	if (ok)
		rename(tmp, path);
	else
		unlink(tmp);
}

static cl_int build(struct ccg_dev *d, cl_program p, const char *opts)
{
	cl_int e = clBuildProgram(p, 1, &d->dev, opts, NULL, NULL);

	if (e != CL_SUCCESS) {
		char log[2048] = "";

		clGetProgramBuildInfo(p, d->dev, CL_PROGRAM_BUILD_LOG, sizeof(log), log, NULL);
		log[sizeof(log) - 1] = '\0';
		ccg_debug("build failed (%s): %s", ccg_clerr_name(e), log);
		snprintf(g_why, sizeof(g_why), "the kernels failed to build on %s (%s): %.160s", d->info.name,
		         ccg_clerr_name(e), log);
	}
	return e;
}

static cl_program from_binary(struct ccg_dev *d, const char *path, const char *opts)
{
	size_t len = 0;
	unsigned char *bin = read_file(path, &len);
	const unsigned char *cb = bin;
	cl_int e, status;
	cl_program p;

	if (!bin)
		return NULL;
	p = clCreateProgramWithBinary(d->ctx, 1, &d->dev, &len, &cb, &status, &e);
	free(bin);
	if (e != CL_SUCCESS || status != CL_SUCCESS) {
		if (p)
			clReleaseProgram(p);
		return NULL;
	}
	if (clBuildProgram(p, 1, &d->dev, opts, NULL, NULL) != CL_SUCCESS) {
		clReleaseProgram(p);
		return NULL;
	}
	ccg_debug("program from the cache %s", path);
	return p;
}

static void save_binary(struct ccg_dev *d, cl_program p, const char *path, const char *dir)
{
	size_t len = 0;
	unsigned char *bin;

	if (clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof(len), &len, NULL) != CL_SUCCESS || len == 0 ||
	    len > MAX_BINARY)
		return;
	bin = malloc(len);
	if (!bin)
		return;
	if (clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof(bin), &bin, NULL) == CL_SUCCESS) {
		mkdirs(dir);
		write_file(path, bin, len);
	}
	free(bin);
}

static int make_program(struct ccg_dev *d)
{
	char opts[256], dir[400], path[512];
	const char *srcs[16];
	cl_device_fp_config fp = 0;
	uint64_t key = 0xcbf29ce484222325ull;
	size_t n = ccg_nsources < 16 ? ccg_nsources : 16;
	cl_int e;

	clGetDeviceInfo(d->dev, CL_DEVICE_SINGLE_FP_CONFIG, sizeof(fp), &fp, NULL);
	/* CCG_CR_DIVSQRT tells the kernels that float / and sqrt are correctly rounded (else they divide in double) */
	snprintf(opts, sizeof(opts), "-cl-std=CL1.2%s%s",
	         (fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT)
	             ? " -cl-fp32-correctly-rounded-divide-sqrt -DCCG_CR_DIVSQRT=1"
	             : "",
	         d->info.fp64 ? " -DCCG_FP64=1" : "");
	key = fnv_str(key, d->info.platform);
	key = fnv_str(key, d->info.name);
	key = fnv_str(key, d->info.driver);
	key = fnv_str(key, d->info.version);
	key = fnv_str(key, opts);
	for (size_t i = 0; i < n; i++) {
		srcs[i] = ccg_sources[i].text;
		key = fnv_str(key, srcs[i]);
	}
	d->prog = NULL;
	if (cache_dir(dir, sizeof(dir)) == 0) {
		snprintf(path, sizeof(path), "%s/%016llx.bin", dir, (unsigned long long)key);
		snprintf(g_xover_path, sizeof(g_xover_path), "%s/%016llx.crossover", dir, (unsigned long long)key);
		d->prog = from_binary(d, path, opts);
	}
	if (d->prog)
		return 0;
	d->prog = clCreateProgramWithSource(d->ctx, (cl_uint)n, srcs, NULL, &e);
	if (e != CL_SUCCESS) {
		snprintf(g_why, sizeof(g_why), "clCreateProgramWithSource: %s", ccg_clerr_name(e));
		return -ENODEV;
	}
	if (build(d, d->prog, opts) != CL_SUCCESS) {
		clReleaseProgram(d->prog);
		d->prog = NULL;
		return -ENODEV;
	}
	if (g_xover_path[0])
		save_binary(d, d->prog, path, dir);
	return 0;
}

static int open_device(int i)
{
	struct ccg_dev *d = calloc(1, sizeof(*d));
	cl_int e;

	if (!d) {
		snprintf(g_why, sizeof(g_why), "out of memory");
		return -ENOMEM;
	}
	d->plat = g_plat[i];
	d->dev = g_devid[i];
	d->info = g_info[i];
	d->pool_on = !d->info.host_unified && !getenv("CCG_NO_POOL");
	pthread_mutex_init(&d->lock, NULL);
	d->ctx = clCreateContext(NULL, 1, &d->dev, NULL, NULL, &e);
	if (e != CL_SUCCESS) {
		snprintf(g_why, sizeof(g_why), "clCreateContext on %s: %s", d->info.name, ccg_clerr_name(e));
		goto fail;
	}
	d->q = clCreateCommandQueue(d->ctx, d->dev, 0, &e);
	if (e != CL_SUCCESS) {
		snprintf(g_why, sizeof(g_why), "clCreateCommandQueue on %s: %s", d->info.name, ccg_clerr_name(e));
		goto fail;
	}
	if (make_program(d) < 0)
		goto fail;
	g_info[i].selected = 1;
	d->info.selected = 1;
	snprintf(g_why, sizeof(g_why), "%s: %s (%s, %u compute units, %llu MiB%s)", d->info.platform, d->info.name,
	         d->info.type, d->info.compute_units, (unsigned long long)(d->info.global_mem >> 20),
	         d->info.host_unified ? ", host memory" : "");
	g_dev = d;
	return 0;
fail:
	if (d->q)
		clReleaseCommandQueue(d->q);
	if (d->ctx)
		clReleaseContext(d->ctx);
	pthread_mutex_destroy(&d->lock);
	free(d);
	g_xover_path[0] = '\0';
	return -ENODEV;
}

static void (*g_on_init)(int rc, const char *why);

void ccg_on_init(void (*fn)(int rc, const char *why))
{
	g_on_init = fn;
}

static void do_init(void)
{
	const char *spec;
	int i;

	pthread_mutex_lock(&g_sel_lock);
	g_started = 1;
	spec = g_sel_set ? g_sel : getenv("CC_OPENCL_DEVICE");
	pthread_mutex_unlock(&g_sel_lock);
	if (spec && !strcasecmp(spec, "none")) /* no discovery: loading the ICDs alone costs memory */
		snprintf(g_why, sizeof(g_why), "OpenCL disabled by the device selection \"none\"");
	else if (discover() == 0 && (i = choose(spec)) >= 0)
		open_device(i);
	ccg_debug("%s", g_why);
	if (g_on_init)
		g_on_init(g_dev ? 0 : -ENODEV, g_why);
}

int ccg_init(void)
{
	pthread_once(&g_once, do_init);
	return g_dev ? 0 : -ENODEV;
}

int ccg_select(const char *spec)
{
	int rc = 0;

	if (spec && strlen(spec) >= sizeof(g_sel))
		return -EINVAL;
	pthread_mutex_lock(&g_sel_lock);
	if (g_started) {
		rc = -EBUSY;
	} else {
		g_sel_set = spec != NULL;
		snprintf(g_sel, sizeof(g_sel), "%s", spec ? spec : "");
	}
	pthread_mutex_unlock(&g_sel_lock);
	return rc;
}

const char *ccg_why(void)
{
	return g_why;
}

int ccg_available(void)
{
	return g_dev != NULL;
}

int ccg_device_count(void)
{
	return g_ndev;
}

int ccg_device_info(int i, struct ccg_device_info *out)
{
	if (i < 0 || i >= g_ndev || !out)
		return -EINVAL;
	*out = g_info[i];
	return 0;
}

const char *ccg_cache_path(void)
{
	return g_dev && g_xover_path[0] ? g_xover_path : NULL;
}

struct ccg_dev *ccg_dev(void)
{
	return ccg_init() == 0 ? g_dev : NULL;
}

/* ---- kernels, buffers, enqueueing ----------------------------------------------------------------------------- */

cl_kernel ccg_kernel(struct ccg_dev *d, const char *name)
{
	cl_int e;
	cl_kernel k;

	for (int i = 0; i < d->nkern; i++)
		if (!strcmp(d->kname[i], name))
			return d->kern[i];
	if (d->nkern == CCG_MAX_KERNELS)
		return NULL;
	k = clCreateKernel(d->prog, name, &e);
	if (e != CL_SUCCESS) {
		ccg_debug("no kernel %s: %s", name, ccg_clerr_name(e));
		return NULL;
	}
	d->kname[d->nkern] = name; /* callers pass string literals */
	d->kern[d->nkern++] = k;
	return k;
}

size_t ccg_wg(const struct ccg_dev *d)
{
	size_t m = d->info.max_work_group;

	return m >= 256 || m == 0 ? 256 : m;
}

/*
 * The pool (a device with its own memory): the buffers of a call go back to it at the call's end (ccg_buf_put)
 * instead of being released, and the next calls take them, so that a call makes no buffer of its own once its
 * sizes repeat. Without it each call made and released 2-5 buffers, the inputs copied in by clCreateBuffer
 * itself. Capacities are powers of two from 4 KB; a buffer is taken for at least a quarter of its capacity; the
 * pool keeps at most CCG_POOL_N buffers and POOL_BYTES in all, releasing those given back longest ago to make
 * room. CCG_NO_POOL=1 turns it off (for measurements).
 */
#define POOL_MAX ((size_t)64 << 20) /* larger buffers are made and released per call */
#define POOL_BYTES ((size_t)256 << 20)

/* Entry i out of the pool (the others keep their order: oldest first). */
static void pool_remove(struct ccg_dev *d, int i)
{
	d->pool_bytes -= d->pool[i].cap;
	d->npool--;
	memmove(&d->pool[i], &d->pool[i + 1], (size_t)(d->npool - i) * sizeof(d->pool[0]));
}

static cl_mem pool_take(struct ccg_dev *d, size_t bytes, cl_int *e)
{
	size_t cap = 4096, best = 0;
	int bi = -1;

	for (int i = 0; i < d->npool; i++)
		if (d->pool[i].cap >= bytes && d->pool[i].cap / 4 <= bytes && (bi < 0 || d->pool[i].cap < best)) {
			bi = i;
			best = d->pool[i].cap;
		}
	if (bi >= 0) {
		cl_mem b = d->pool[bi].b;

		pool_remove(d, bi);
		d->pool_reused++;
		*e = CL_SUCCESS;
		return b;
	}
	while (cap < bytes)
		cap *= 2;
	d->pool_made++;
	return clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, cap, NULL, e);
}

int ccg_pool_counts(uint64_t *made, uint64_t *reused)
{
	struct ccg_dev *d = ccg_dev();

	if (!d)
		return -ENODEV;
	if (!d->pool_on)
		return -ENOTSUP;
	pthread_mutex_lock(&d->lock);
	if (made)
		*made = d->pool_made;
	if (reused)
		*reused = d->pool_reused;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

void ccg_buf_put(struct ccg_dev *d, cl_mem b)
{
	size_t cap = 0;

	if (!b)
		return;
	if (!d->pool_on || clGetMemObjectInfo(b, CL_MEM_SIZE, sizeof(cap), &cap, NULL) != CL_SUCCESS ||
	    cap > POOL_MAX) {
		clReleaseMemObject(b);
		return;
	}
	/* room made by releasing the buffers given back longest ago */
	while (d->npool == CCG_POOL_N || (d->npool && d->pool_bytes + cap > POOL_BYTES)) {
		clReleaseMemObject(d->pool[0].b);
		pool_remove(d, 0);
	}
	d->pool[d->npool].b = b;
	d->pool[d->npool++].cap = cap;
	d->pool_bytes += cap;
}

/* A buffer for ccg_buf_*: from the pool where pooled and the device has one. */
static cl_mem buf(struct ccg_dev *d, cl_mem_flags flags, void *host, size_t bytes, int *err, int pooled)
{
	cl_int e;
	cl_mem b;

	if (pooled && d->pool_on && bytes <= POOL_MAX) {
		/* the copy in is enqueued, not waited for (see ccg_internal.h) */
		b = pool_take(d, bytes ? bytes : 1, &e);
		if (b && host && bytes && !(flags & CL_MEM_WRITE_ONLY) &&
		    (e = clEnqueueWriteBuffer(d->q, b, CL_FALSE, 0, bytes, host, 0, NULL, NULL)) != CL_SUCCESS) {
			clReleaseMemObject(b);
			b = NULL;
		}
		if (err)
			*err = b ? 0 : ccg_errno(e);
		if (!b)
			ccg_debug("pooled buffer of %zu bytes: %s", bytes, ccg_clerr_name(e));
		return b;
	}
	if (bytes == 0) {
		bytes = 1;
		host = NULL;
		flags = CL_MEM_READ_WRITE;
	} else if (host && d->info.host_unified) {
		flags |= CL_MEM_USE_HOST_PTR;
	} else if (host && !(flags & CL_MEM_WRITE_ONLY)) {
		flags |= CL_MEM_COPY_HOST_PTR;
	} else {
		host = NULL;
	}
	b = clCreateBuffer(d->ctx, flags, bytes, host, &e);
	if (e != CL_SUCCESS) {
		if (err)
			*err = ccg_errno(e);
		ccg_debug("clCreateBuffer(%zu): %s", bytes, ccg_clerr_name(e));
		return NULL;
	}
	if (err)
		*err = 0;
	return b;
}

cl_mem ccg_buf_in(struct ccg_dev *d, const void *host, size_t bytes, int *err)
{
	return buf(d, CL_MEM_READ_ONLY, (void *)host, bytes, err, 1);
}

cl_mem ccg_buf_out(struct ccg_dev *d, void *host, size_t bytes, int *err)
{
	return buf(d, CL_MEM_WRITE_ONLY, host, bytes, err, 1);
}

cl_mem ccg_buf_inout(struct ccg_dev *d, void *host, size_t bytes, int *err)
{
	return buf(d, CL_MEM_READ_WRITE, host, bytes, err, 1);
}

cl_mem ccg_buf_tmp(struct ccg_dev *d, size_t bytes, int *err)
{
	return buf(d, CL_MEM_READ_WRITE, NULL, bytes, err, 1);
}

cl_mem ccg_buf_const(struct ccg_dev *d, const void *host, size_t bytes, int *err)
{
	return buf(d, CL_MEM_READ_ONLY, (void *)host, bytes, err, 0);
}

int ccg_buf_get(struct ccg_dev *d, cl_mem b, void *host, size_t bytes)
{
	cl_mem_flags flags = 0;
	cl_int e;

	if (bytes == 0)
		return ccg_errno(clFinish(d->q));
	clGetMemObjectInfo(b, CL_MEM_FLAGS, sizeof(flags), &flags, NULL);
	if (flags & CL_MEM_USE_HOST_PTR) {
		void *p = clEnqueueMapBuffer(d->q, b, CL_TRUE, CL_MAP_READ, 0, bytes, 0, NULL, NULL, &e);

		if (e != CL_SUCCESS)
			return ccg_errno(e);
		if (p != host)
			memcpy(host, p, bytes);
		e = clEnqueueUnmapMemObject(d->q, b, p, 0, NULL, NULL);
		if (e == CL_SUCCESS)
			e = clFinish(d->q);
		return ccg_errno(e);
	}
	return ccg_errno(clEnqueueReadBuffer(d->q, b, CL_TRUE, 0, bytes, host, 0, NULL, NULL));
}

void ccg_buf_free(cl_mem b)
{
	if (b)
		clReleaseMemObject(b);
}

int ccg_arg(cl_kernel k, unsigned i, size_t size, const void *value)
{
	cl_int e = clSetKernelArg(k, i, size, value);

	if (e != CL_SUCCESS)
		ccg_debug("clSetKernelArg(%u): %s", i, ccg_clerr_name(e));
	return ccg_errno(e);
}

int ccg_run(struct ccg_dev *d, cl_kernel k, unsigned dims, const size_t *gws, const size_t *lws)
{
	cl_int e;

	for (unsigned i = 0; i < dims; i++)
		if (gws[i] == 0)
			return 0;
	e = clEnqueueNDRangeKernel(d->q, k, dims, NULL, gws, lws, 0, NULL, NULL);
	if (e != CL_SUCCESS)
		ccg_debug("clEnqueueNDRangeKernel: %s", ccg_clerr_name(e));
	return ccg_errno(e);
}
