/* SPDX-License-Identifier: MIT */
/* ccg.h: libccgpu, the OpenCL backend of libcck's op table (prefix ccg_). The same ops as cck.h, run on an OpenCL
 * device (a GPU where there is one, PoCL on the CPU elsewhere), and an automatic dispatch that sends an op to the
 * device only from the size where that was measured to be faster than libcck (the crossover, measured per op and
 * device at first use and cached on disk). Built with or without OpenCL: without it (or with no device) every
 * ccg_cl_* call is -ENODEV and every dispatching call runs libcck, and ccg_why() says why. */
#ifndef CCG_H
#define CCG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- devices ------------------------------------------------------------------------------------------------- */

struct ccg_device_info {
	int index;           /* 0.. over every device of every platform, in clGetPlatformIDs/clGetDeviceIDs order */
	char platform[96];   /* CL_PLATFORM_NAME */
	char name[128];      /* CL_DEVICE_NAME */
	char vendor[64];     /* CL_DEVICE_VENDOR */
	char version[128];   /* CL_DEVICE_VERSION */
	char driver[64];     /* CL_DRIVER_VERSION */
	char type[8];        /* "gpu", "cpu", "accel", "other" */
	uint32_t compute_units;
	uint64_t global_mem;     /* bytes */
	uint64_t max_alloc;      /* largest buffer, bytes */
	uint64_t local_mem;      /* bytes per work-group */
	size_t max_work_group;
	int host_unified;        /* CL_DEVICE_HOST_UNIFIED_MEMORY: buffers use host memory, no copies */
	int fp64;                /* cl_khr_fp64 */
	int selected;            /* the device ops run on */
};

/*
 * Find the OpenCL devices and select one; idempotent and thread-safe (the first call does the work, later calls
 * return its result). The device is chosen by, first to last: ccg_select() called before, the environment
 * variable CC_OPENCL_DEVICE, else the first GPU, else the first device. A selection is "none" (no device: CPU
 * only), a device index ("1"), or a case-insensitive part of "platform: name (vendor, version)" ("nvidia", "pocl").
 * Returns 0 with a device, else -ENODEV (built without OpenCL, no ICD or platform, no device, selection
 * "none" or matching nothing, the device failed to build our kernels): ccg_why() tells which.
 */
int ccg_init(void);
/* Call fn(result of ccg_init, ccg_why()) once, when the first ccg_init finishes (in the thread that ran it): a server
 * logs the device it got at its first use. Set it before anything can call ccg_init. */
void ccg_on_init(void (*fn)(int rc, const char *why));
/* The device a selection names, by the rule above (a name part is looked for in "platform: name (vendor, version)"),
 * among the devices found: its index, -ENODEV for "none", -ENOENT when it names none. */
int ccg_match(const char *spec);
/* Set the selection before ccg_init (later: -EBUSY). NULL = the default rule. */
int ccg_select(const char *spec);
/* Why there is no device, or a one-line description of the one in use ("PoCL: cpu-... (cpu, 2 CU)"). */
const char *ccg_why(void);
/* 1 if a device is in use (after ccg_init), else 0. */
int ccg_available(void);
/* Number of devices found (0 before ccg_init or without OpenCL); info of device i: 0 or -EINVAL. */
int ccg_device_count(void);
int ccg_device_info(int i, struct ccg_device_info *out);
/* The device's buffer pool (a device with its own memory keeps the buffers of its calls for the next ones): how
 * many buffers calls got that had to be made, and how many came from the pool. -ENODEV without a device;
 * -ENOTSUP where there is no pool (host-unified memory, or CCG_NO_POOL set). */
int ccg_pool_counts(uint64_t *made, uint64_t *reused);

/* ---- ops on the device (always the device: -ENODEV when there is none) ---------------------------------------
 * Same contracts, argument checks and return codes as the cck_* functions of the same name; results agree with
 * libcck within the bounds test_gpu states (bit-exact for exact ops: neg abs relu floor ... add sub mul minimum
 * maximum, min max argmin argmax). Thread-safe. */
int ccg_cl_unary_f32(int op, const float *x, float *y, size_t n, const float *params);
int ccg_cl_binary_f32(int op, const float *a, const float *b, float *y, size_t n);
int ccg_cl_reduce_f32(int op, const float *x, size_t n, double *ret);
int ccg_cl_reduce2_f32(int op, const float *a, const float *b, size_t n, double *ret);
int ccg_cl_matvec_f32(const float *A, const float *x, float *y, size_t rows, size_t cols);
int ccg_cl_matmul_f32(const float *A, const float *B, float *C, size_t m, size_t k, size_t n);
/* Weight types f32, f16, q4_0, q4_1, q8_0, q4_k, q6_k (ccg_type_supported). The activations are made the type's dot
 * format on the device as libcck (and ggml) make them: q8_0 / q8_1 / q8_k quants, f16 (rounded to nearest even), or
 * f32 as they are; so the integer parts match libcck exactly, and f32, f16, q4_0, q4_1 and q8_0 rows are summed in
 * libcck's order (its bits, on its avx2/avx512 tiers); q4_k and q6_k only differ in the float order across
 * super-blocks. -EOPNOTSUPP for another type. */
int ccg_type_supported(int type);
int ccg_cl_qmatvec(int type, const void *W, size_t row_stride, const float *x, float *y, size_t rows, size_t cols);
int ccg_cl_qmatmul(int type, const void *W, size_t row_stride, const float *X, float *Y, size_t rows, size_t cols,
                   size_t batch);

/* A weight matrix kept on the device (uploaded once), for the engine's offloaded layers. Thread-safe use. On a
 * device that shares host memory (PoCL, integrated GPUs) the mat wraps W instead of copying it: W must then
 * outlive the mat (model weights do). The environment variable CCG_QLAYOUT=rows|lanes forces the kernels' layout
 * (one work-item per row, as CPU devices prefer, or 8 per row, as GPUs do; default by device type). */
struct ccg_mat;
int ccg_mat_new(int type, const void *W, size_t row_stride, size_t rows, size_t cols, struct ccg_mat **ret);
/* Y (batch x rows) = W x X (batch x cols), as ccg_cl_qmatmul. */
int ccg_mat_mul(struct ccg_mat *m, const float *X, float *Y, size_t batch);
size_t ccg_mat_bytes(const struct ccg_mat *m);
void ccg_mat_free(struct ccg_mat *m);

/* ---- automatic dispatch --------------------------------------------------------------------------------------- */

enum ccg_backend {
	CCG_BACKEND_AUTO = 0, /* the device from the op's crossover size up, libcck below it */
	CCG_BACKEND_CPU,      /* libcck only */
	CCG_BACKEND_OPENCL    /* the device whenever there is one */
};
/* Set / get the backend of the calling process (default: CC_BACKEND=auto|cpu|opencl, else auto). -EINVAL. */
int ccg_set_backend(int backend);
int ccg_get_backend(void);
const char *ccg_backend_name(int backend);
int ccg_backend_lookup(const char *name);

/* The cck_* op table through the dispatch: same signatures, same contracts. */
int ccg_unary_f32(int op, const float *x, float *y, size_t n, const float *params);
int ccg_binary_f32(int op, const float *a, const float *b, float *y, size_t n);
int ccg_reduce_f32(int op, const float *x, size_t n, double *ret);
int ccg_reduce2_f32(int op, const float *a, const float *b, size_t n, double *ret);
int ccg_matvec_f32(const float *A, const float *x, float *y, size_t rows, size_t cols);
int ccg_matmul_f32(const float *A, const float *B, float *C, size_t m, size_t k, size_t n);
int ccg_qmatvec(int type, const void *W, size_t row_stride, const float *x, float *y, size_t rows, size_t cols);

/*
 * The crossover of an op (a cck op id, or CCG_QOP(type) for the quantized matvec of a type): the element count
 * (for matrix ops: elements of the matrix) from which the device was faster than libcck at every size measured,
 * or SIZE_MAX when it never was (or there is no device). Measured at the op's first dispatch of a size at least
 * CCG_MIN_MEASURE (a ladder of sizes, each timed on both, with libcck's current thread count), then cached in
 * $XDG_CACHE_HOME/cc/opencl (or ~/.cache/cc/opencl) per device, driver and kernel source. ccg_crossover() does
 * not measure: -EAGAIN while unknown. ccg_calibrate() measures now (force = 1: even if known).
 */
#define CCG_QOP(type) (1000 + (type))
#define CCG_MIN_MEASURE 4096
int ccg_crossover(int op, size_t *n);
int ccg_calibrate(int op, int force);
/* Calls of the dispatching ccg_* functions that ran on the device so far (in this process). */
uint64_t ccg_device_calls(void);
/* Where the cache file is (NULL without a device). */
const char *ccg_cache_path(void);

#ifdef __cplusplus
}
#endif
#endif /* CCG_H */
