/* SPDX-License-Identifier: MIT */
/* ccdemo.c: a small client of ccd: vector ops on shared-memory tensors through libcc, and a matvec with the
 * weights of a model ccd has loaded (shared by every client). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cc.h"

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int fail(const char *what, int err, cc_client *c)
{
	const char *detail = c ? cc_last_error(c) : "";

	fprintf(stderr, "ccdemo: %s: %s%s%s\n", what, cc_strerror(err), *detail ? ": " : "", detail);
	return 1;
}

/* The shape of a tensor from `show`'s JSON: "name":"...","type":"..","shape":[cols,rows] */
static int tensor_shape(const char *json, const char *tensor, size_t *cols, size_t *rows)
{
	char pat[256];
	const char *p;
	unsigned long long c0, r0 = 1;

	snprintf(pat, sizeof(pat), "{\"name\":\"%s\",", tensor);
	p = strstr(json, pat);
	if (!p || !(p = strstr(p, "\"shape\":[")))
		return -ENOENT;
	if (sscanf(p, "\"shape\":[%llu,%llu]", &c0, &r0) < 1)
		return -ENOENT;
	*cols = (size_t)c0;
	*rows = (size_t)r0;
	return 0;
}

/* y = W x with W a tensor of a model in ccd: the weights are not copied, every client uses the same. */
static int model_demo(cc_client *c, const char *model, const char *tensor)
{
	cc_tensor *x = NULL, *y = NULL;
	char *json = NULL;
	size_t cols, rows, i, best = 0;
	double t0;
	float *py;
	int r;

	r = cc_model_show(c, model, &json);
	if (r < 0)
		return fail("model show", r, c);
	r = tensor_shape(json, tensor, &cols, &rows);
	free(json);
	if (r < 0) {
		fprintf(stderr, "ccdemo: model %s has no 2-D tensor %s\n", model, tensor);
		return 1;
	}
	if ((r = cc_tensor_new(c, CC_DTYPE_F32, cols, &x)) < 0 || (r = cc_tensor_new(c, CC_DTYPE_F32, rows, &y)) < 0) {
		fail("tensor", r, c);
		goto out;
	}
	for (i = 0; i < cols; i++)
		((float *)cc_tensor_data(x))[i] = (float)cos((double)i);
	t0 = now_us();
	r = cc_model_matvec(c, model, tensor, x, y);
	if (r < 0) {
		fail("model_matvec", r, c);
		goto out;
	}
	py = cc_tensor_data(y);
	for (i = 1; i < rows; i++)
		if (py[i] > py[best])
			best = i;
	printf("model     %9.1f us   %s.%s (%zu x %zu) times x: argmax row %zu = %.4f\n", now_us() - t0, model, tensor,
	       rows, cols, best, py[best]);
out:
	cc_tensor_free(x);
	cc_tensor_free(y);
	return r < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	const size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	const char *model = argc > 2 ? argv[2] : NULL, *tensor = argc > 3 ? argv[3] : "token_embd.weight";
	cc_client *c = NULL;
	cc_tensor *x = NULL, *y = NULL, *z = NULL;
	double dot, sum, t0;
	float *px, *py;
	int r, rc = 1;

	r = cc_connect(NULL, &c);
	if (r < 0)
		return fail("connect", r, NULL);
	if ((r = cc_tensor_new(c, CC_DTYPE_F32, n, &x)) < 0 || (r = cc_tensor_new(c, CC_DTYPE_F32, n, &y)) < 0 ||
	    (r = cc_tensor_new(c, CC_DTYPE_F32, n, &z)) < 0) {
		fail("tensor", r, c);
		goto out;
	}
	px = cc_tensor_data(x);
	py = cc_tensor_data(y);
	for (size_t i = 0; i < n; i++) {
		px[i] = (float)sin((double)i * 0.001);
		py[i] = (float)cos((double)i * 0.001);
	}
	printf("client pid %ld: %zu-element tensors in shared memory\n", (long)getpid(), n);

	t0 = now_us();
	if ((r = cc_unary(c, "sigmoid", x, z, NULL, 0)) < 0) {
		fail("sigmoid", r, c);
		goto out;
	}
	printf("sigmoid   %9.1f us   z[0..2] = %.6f %.6f %.6f\n", now_us() - t0, ((float *)cc_tensor_data(z))[0],
	       ((float *)cc_tensor_data(z))[1], ((float *)cc_tensor_data(z))[2]);
	t0 = now_us();
	if ((r = cc_binary(c, "add", x, y, z)) < 0) {
		fail("add", r, c);
		goto out;
	}
	printf("add       %9.1f us   z[1] = %.6f (x[1] + y[1] = %.6f)\n", now_us() - t0,
	       ((float *)cc_tensor_data(z))[1], px[1] + py[1]);
	t0 = now_us();
	if ((r = cc_reduce(c, "dot", x, y, &dot)) < 0 || (r = cc_reduce(c, "sum", z, NULL, &sum)) < 0) {
		fail("reduce", r, c);
		goto out;
	}
	printf("dot, sum  %9.1f us   dot(x, y) = %.6f, sum(z) = %.6f\n", now_us() - t0, dot, sum);
	t0 = now_us();
	if ((r = cc_unary(c, "softmax", x, z, NULL, 0)) < 0 || (r = cc_reduce(c, "sum", z, NULL, &sum)) < 0) {
		fail("softmax", r, c);
		goto out;
	}
	printf("softmax   %9.1f us   sum(softmax(x)) = %.6f\n", now_us() - t0, sum);
	rc = model ? model_demo(c, model, tensor) : 0;
out:
	cc_tensor_free(x);
	cc_tensor_free(y);
	cc_tensor_free(z);
	cc_close(c);
	return rc;
}
