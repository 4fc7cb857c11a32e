/* SPDX-License-Identifier: MIT */
/* none.c: libccgpu built without OpenCL (configure found none): no device, every ccg_cl_* call is -ENODEV, and
 * the dispatch in dispatch.c runs libcck alone. */
#include <errno.h>
#include <stddef.h>
#include <strings.h>

#include "ccg.h"

static const char why[] = "built without OpenCL (configure found no OpenCL: install the Debian packages "
                          "ocl-icd-opencl-dev opencl-headers pocl-opencl-icd and rebuild)";

int ccg_init(void)
{
	return -ENODEV;
}

void ccg_on_init(void (*fn)(int rc, const char *why))
{
	(void)fn; /* never called: there is no init to finish */
}

int ccg_match(const char *spec)
{
	return spec && !strcasecmp(spec, "none") ? -ENODEV : -ENOENT;
}

int ccg_select(const char *spec)
{
	return 0;
}

const char *ccg_why(void)
{
	return why;
}

int ccg_available(void)
{
	return 0;
}

int ccg_device_count(void)
{
	return 0;
}

int ccg_pool_counts(uint64_t *made, uint64_t *reused)
{
	(void)made;
	(void)reused;
	return -ENODEV;
}

int ccg_device_info(int i, struct ccg_device_info *out)
{
	return -EINVAL;
}

const char *ccg_cache_path(void)
{
	return NULL;
}

int ccg_cl_unary_f32(int op, const float *x, float *y, size_t n, const float *params)
{
	return -ENODEV;
}

int ccg_cl_binary_f32(int op, const float *a, const float *b, float *y, size_t n)
{
	return -ENODEV;
}

int ccg_cl_reduce_f32(int op, const float *x, size_t n, double *ret)
{
	return -ENODEV;
}

int ccg_cl_reduce2_f32(int op, const float *a, const float *b, size_t n, double *ret)
{
	return -ENODEV;
}

int ccg_cl_matvec_f32(const float *A, const float *x, float *y, size_t rows, size_t cols)
{
	return -ENODEV;
}

int ccg_cl_matmul_f32(const float *A, const float *B, float *C, size_t m, size_t k, size_t n)
{
	return -ENODEV;
}

int ccg_type_supported(int type)
{
	return 0;
}

int ccg_cl_qmatvec(int type, const void *W, size_t row_stride, const float *x, float *y, size_t rows, size_t cols)
{
	return -ENODEV;
}

int ccg_cl_qmatmul(int type, const void *W, size_t row_stride, const float *X, float *Y, size_t rows, size_t cols,
                   size_t batch)
{
	return -ENODEV;
}

int ccg_mat_new(int type, const void *W, size_t row_stride, size_t rows, size_t cols, struct ccg_mat **ret)
{
	return -ENODEV;
}

int ccg_mat_mul(struct ccg_mat *m, const float *X, float *Y, size_t batch)
{
	return -ENODEV;
}

size_t ccg_mat_bytes(const struct ccg_mat *m)
{
	return 0;
}

void ccg_mat_free(struct ccg_mat *m)
{
}
