/* SPDX-License-Identifier: MIT */
/* ccg_internal.h: what the files of libccgpu share: the selected device, its one program (every gpu/cl/ file,
 * embedded at build time, built once per device and cached), kernels by name, buffers and enqueueing. Only built
 * with OpenCL (CC_HAVE_OPENCL); gpu/none.c stands in for the rest without it. */
#ifndef CCG_INTERNAL_H
#define CCG_INTERNAL_H

#define CL_TARGET_OPENCL_VERSION 120
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>
#include <pthread.h>
#include <stddef.h>

#include "ccg.h"

#define CCG_MAX_KERNELS 128
#define CCG_POOL_N 16 /* device buffers kept between calls (a device with its own memory) */

/* The device in use. Every enqueue of a call happens under lock (a cl_kernel's arguments are not thread-safe),
 * from the first clSetKernelArg to the last read back: one call at a time per device. */
struct ccg_dev {
	cl_platform_id plat;
	cl_device_id dev;
	cl_context ctx;
	cl_command_queue q;
	cl_program prog;
	struct ccg_device_info info;
	pthread_mutex_t lock;
	int nkern;
	const char *kname[CCG_MAX_KERNELS];
	cl_kernel kern[CCG_MAX_KERNELS];
	/* ccg_buf_put's buffers, oldest first, for the next calls' ccg_buf_* (under lock) */
	int pool_on, npool;
	struct {
		cl_mem b;
		size_t cap;
	} pool[CCG_POOL_N];
	size_t pool_bytes;
	uint64_t pool_made, pool_reused;
};

/* The device after a successful ccg_init(), else NULL (ccg_dev() calls ccg_init() itself). */
struct ccg_dev *ccg_dev(void);

/* The kernel called name in the program (made once, then cached); NULL if there is none. Call with d->lock held. */
cl_kernel ccg_kernel(struct ccg_dev *d, const char *name);

/*
 * Buffers for one call, given back with ccg_buf_put. With host-unified memory (PoCL, integrated GPUs) they wrap
 * the caller's memory (CL_MEM_USE_HOST_PTR: no copy); otherwise they come from the device's pool (see ccg.c),
 * inputs are copied in (enqueued, not waited for: the call must end with ccg_buf_get or clFinish while the host
 * memory is still there) and outputs read back by ccg_buf_get. bytes == 0 is allowed (a 1-byte buffer stands
 * in). NULL and *err = -errno on failure.
 *  - ccg_buf_in:    read-only input (the host memory is not written);
 *  - ccg_buf_out:   write-only output, host is where ccg_buf_get puts the result;
 *  - ccg_buf_inout: read and written (y == x in place, or an output the kernel also reads);
 *  - ccg_buf_tmp:   device-only scratch (partial sums), not visible to the host.
 */
cl_mem ccg_buf_in(struct ccg_dev *d, const void *host, size_t bytes, int *err);
cl_mem ccg_buf_out(struct ccg_dev *d, void *host, size_t bytes, int *err);
cl_mem ccg_buf_inout(struct ccg_dev *d, void *host, size_t bytes, int *err);
cl_mem ccg_buf_tmp(struct ccg_dev *d, size_t bytes, int *err);
/* Bring an output (or inout) buffer's first bytes to host (blocking; for a wrapped buffer a map/unmap, so the host
 * memory holds the result). Waits for the queue. 0 or -errno. */
int ccg_buf_get(struct ccg_dev *d, cl_mem b, void *host, size_t bytes);
/* A buffer of the ccg_buf_* above back, at the end of its call: kept in the pool, or released (NULL is fine). */
void ccg_buf_put(struct ccg_dev *d, cl_mem b);
/* A read-only copy of host's bytes that is kept (weights): its exact size, never from the pool; ccg_buf_free. */
cl_mem ccg_buf_const(struct ccg_dev *d, const void *host, size_t bytes, int *err);
/* Release a buffer (NULL is fine). */
void ccg_buf_free(cl_mem b);

/* Enqueue k over gws[dims] work-items (lws NULL: the driver picks; else each gws[i] a multiple of lws[i]).
 * 0 or -errno. */
int ccg_run(struct ccg_dev *d, cl_kernel k, unsigned dims, const size_t *gws, const size_t *lws);
/* Set argument i of k from a value of size bytes; 0 or -errno. */
int ccg_arg(cl_kernel k, unsigned i, size_t size, const void *value);
#define CCG_ARG(k, i, v) ccg_arg((k), (i), sizeof(v), &(v))

/* -errno for an OpenCL error code (-ENOMEM for allocation failures, -EINVAL for invalid arguments, -EIO otherwise),
 * and its name ("CL_OUT_OF_RESOURCES"). */
int ccg_errno(cl_int e);
const char *ccg_clerr_name(cl_int e);
/* Debug line to stderr when CCG_DEBUG is set in the environment. */
void ccg_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Work-group size for 1-D kernels: min(256, the device's max). */
size_t ccg_wg(const struct ccg_dev *d);
/* Round n up to a multiple of m (m > 0). */
static inline size_t ccg_round_up(size_t n, size_t m)
{
	return (n + m - 1) / m * m;
}

/* The embedded kernel sources (the gpu/cl/ files, in the order of gpu/Makefile.inc), made by gpu/embed.sh. */
struct ccg_source {
	const char *name;
	const char *text;
};
extern const struct ccg_source ccg_sources[];
extern const size_t ccg_nsources;

#endif /* CCG_INTERNAL_H */
