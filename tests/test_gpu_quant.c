/* SPDX-License-Identifier: MIT */
/*
 * test_gpu_quant.c: libccgpu's quantized products (ccg_cl_qmatvec, ccg_cl_qmatmul, ccg_mat) against libcck's
 * cck_qmatvec / cck_qmatmul, on random rows made by cck_quantize and on real tensors of the test models.
 * What is checked, per output y[b][r] (W's row r, column b of X):
 *  - q4_0, q4_1, q8_0: bit for bit libcck's value (the device quantizes X as libcck does and sums in its order, ggml's
 *    x86 lanes);
 *  - f16: bit for bit libcck's value where libcck runs its avx2 or avx512 tier (x rounded to f16, ggml's
 *    vec_dot_f16 lanes: its F16C order); on libcck's scalar tier (its sum in double) within Q_BOUND * S;
 *  - f32: bit for bit on a device with fp64 (libcck sums the float products in double, in order); without fp64 the
 *    device sums in a float pair: within Q_BOUND * S;
 *  - q4_K, q6_K: |gpu - cck| <= Q_BOUND * S, S = sum_i |w_i x_i| (w the dequantized row): the integer part of every
 *    super-block is the same, only the float order over super-blocks differs (see Q_BOUND);
 *  - ccg_mat_mul gives ccg_cl_qmatmul's bits (the same kernels), from several threads at once too, in both kernel
 *    layouts (CCG_QLAYOUT=rows and lanes);
 *  - argument errors as libcck's, -EOPNOTSUPP for the types without a kernel (q5_0, bf16, ...), -ENODEV without a
 *    device (then the device checks skip and print ccg_why()).
 * Batches 1, 2, 7 and 33 (more than one launch of Q_BATCH = 32 columns), odd row counts, padded strides and rows
 * at 2-byte (not 4- or 32-byte) addresses; f32 and f16 rows of 1, 13, 40, 96 and 577 columns (every path of the
 * f16 lanes: whole 32s, 8s, a tail); activations with NaN, infinities, subnormal, tiny, huge and zero blocks and exact rounding ties
 * (the device's quants must be libcck's there too).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cck.h"
#include "ccg.h"
#include "gguf.h"
#include "t_models.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/*
 * The k-quants' bound, normalized by S = sum_i |w_i x_i|. Both sides add the same per-super-block terms (exact
 * integer sums scaled in float) in different orders: each sum is within (nb + 8) u of the terms' total magnitude
 * (u = 2^-24, nb <= 6 super-blocks here, plus the few roundings of a term), and that total can exceed S a few times
 * where a q4_K min cancels its scale part. 2^-16 (1.5e-5) leaves that headroom; one wrong quant of a row moves y
 * by about S / cols (>= 6e-4 S here), far above it.
 */
#define Q_BOUND (1.0 / 65536.0)
/*
 * The float types where they are not bit-exact (above) are within the same bound: f16 on libcck's scalar tier
 * (double sum) against the device's 32 float lanes: each lane adds at most cols / 32 + 1 terms, then 5 additions
 * and the tail, so |error| <= (cols / 32 + 7 + tail) u S (u = 2^-24), below 2^-16 S up to ~ 8000 columns; f32
 * without fp64: a float pair sum (about cols 2^-47 S) rounded (one ulp of the result, <= 2^-23 S).
 */

static const int gpu_types[] = {CCK_TYPE_Q4_0, CCK_TYPE_Q4_1, CCK_TYPE_Q8_0, CCK_TYPE_Q4_K,
                                CCK_TYPE_Q6_K, CCK_TYPE_F32,  CCK_TYPE_F16};
static const size_t batches[] = {1, 2, 7, 33};
/* libccgpu's two kernel layouts of the 32-element types (CCG_QLAYOUT): one work-item per row (its default on CPU
 * devices) and 8 per row (GPUs); both are checked on whatever device there is. */
static const char *const layouts[] = {"rows", "lanes"};

static int have_dev;
/* f16 is bit-exact where libcck runs its F16C kernel (avx2, avx512); f32 where the device has fp64. */
static int f16_exact, f32_exact;

/* Per type: the largest normalized difference seen, the outputs compared, those not bit-identical. */
static struct {
	double max_err;
	size_t n, differ;
} stats[CCK_TYPE_COUNT];

static int exact_type(int type)
{
	return type == CCK_TYPE_Q4_0 || type == CCK_TYPE_Q4_1 || type == CCK_TYPE_Q8_0 ||
	       (type == CCK_TYPE_F16 && f16_exact) || (type == CCK_TYPE_F32 && f32_exact);
}

static int float_type(int type)
{
	return type == CCK_TYPE_F32 || type == CCK_TYPE_F16;
}

/* ---- random data ------------------------------------------------------------------------------------------------ */

static uint64_t rng_s = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_s ^= rng_s << 13;
	rng_s ^= rng_s >> 7;
	rng_s ^= rng_s << 17;
	return rng_s;
}

static float uniform(void)
{
	return (float)((rng() >> 40) + 0.5) / (float)(1 << 24);
}

static float gauss(void)
{
	return sqrtf(-2.0f * logf(uniform())) * cosf(6.2831853f * uniform());
}

/* n floats: gaussian times a per-32 scale (some blocks tiny, some large), a few outliers, some exact zeros. */
static void fill(float *x, size_t n)
{
	float s = 1.0f;

	for (size_t i = 0; i < n; i++) {
		if (i % 32 == 0)
			s = powf(2.0f, (float)((int)(rng() % 9) - 4));
		x[i] = gauss() * s;
		if (rng() % 97 == 0)
			x[i] *= 8.0f;
		if (rng() % 61 == 0)
			x[i] = 0.0f;
	}
}

/* ---- comparing ------------------------------------------------------------------------------------------------- */

/* A weight matrix: rows at stride bytes from data; its rows dequantized (w, rows x cols) for the normalizer. */
struct wmat {
	int type;
	const unsigned char *data;
	size_t rows, cols, stride;
	float *w;
	const char *what;
};

static void wmat_dequant(struct wmat *m)
{
	m->w = malloc(m->rows * m->cols * sizeof(float) + 1);
	assert_non_null(m->w);
	for (size_t r = 0; r < m->rows; r++)
		assert_int_equal(cck_dequantize(m->type, m->data + r * m->stride, m->w + r * m->cols, m->cols), 0);
}

/* got (batch x rows) against libcck's want: bit for bit for the exact types, else within Q_BOUND * S. */
static void compare(const struct wmat *m, const float *X, const float *want, const float *got, size_t batch,
                    const char *how)
{
	for (size_t b = 0; b < batch; b++)
		for (size_t r = 0; r < m->rows; r++) {
			const float *w = m->w + r * m->cols, *x = X + b * m->cols;
			float a = want[b * m->rows + r], g = got[b * m->rows + r];
			double s = 0.0, err;

			for (size_t i = 0; i < m->cols; i++)
				s += fabs((double)w[i] * x[i]);
			err = fabs((double)a - g) / (s > 0.0 ? s : 1.0);
			stats[m->type].n++;
			if (memcmp(&a, &g, sizeof(a)) != 0)
				stats[m->type].differ++;
			if (err > stats[m->type].max_err)
				stats[m->type].max_err = err;
			if (exact_type(m->type) && memcmp(&a, &g, sizeof(a)) != 0)
				fail_msg("%s %s %s (%zu x %zu) batch %zu: y[%zu][%zu] = %.9g, libcck %.9g (not "
				         "bit-identical)",
				         how, cck_type_name(m->type), m->what, m->rows, m->cols, batch, b, r, g, a);
			if (!(err <= Q_BOUND))
				fail_msg("%s %s %s (%zu x %zu) batch %zu: y[%zu][%zu] = %.9g, libcck %.9g: error %.3g "
				         "S > %.3g S",
				         how, cck_type_name(m->type), m->what, m->rows, m->cols, batch, b, r, g, a, err,
				         Q_BOUND);
		}
}

/* Every path against libcck on m, for each batch size: qmatvec per column, qmatmul, and a resident mat. */
static void check_matrix(struct wmat *m, const size_t *bs, size_t nbs)
{
	size_t maxb = 0, rb;
	float *X, *want, *got, *got2;
	struct ccg_mat *mat = NULL;

	for (size_t i = 0; i < nbs; i++)
		maxb = bs[i] > maxb ? bs[i] : maxb;
	wmat_dequant(m);
	X = malloc(maxb * m->cols * sizeof(float));
	want = malloc(maxb * m->rows * sizeof(float));
	got = malloc(maxb * m->rows * sizeof(float));
	got2 = malloc(maxb * m->rows * sizeof(float));
	assert_true(X && want && got && got2);
	fill(X, maxb * m->cols);
	assert_int_equal(ccg_mat_new(m->type, m->data, m->stride, m->rows, m->cols, &mat), 0);
	assert_int_equal(cck_type_row_bytes(m->type, m->cols, &rb), 0);
	assert_int_equal(ccg_mat_bytes(mat), (m->rows - 1) * m->stride + rb);
	for (size_t i = 0; i < nbs; i++) {
		size_t batch = bs[i];

		assert_int_equal(cck_qmatmul(m->type, m->data, m->stride, X, want, m->rows, m->cols, batch), 0);
		for (size_t l = 0; l < NELEM(layouts); l++) {
			char how[64];

			setenv("CCG_QLAYOUT", layouts[l], 1);
			memset(got, 0xff, batch * m->rows * sizeof(float));
			assert_int_equal(ccg_cl_qmatmul(m->type, m->data, m->stride, X, got, m->rows, m->cols, batch),
			                 0);
			snprintf(how, sizeof(how), "ccg_cl_qmatmul (%s)", layouts[l]);
			compare(m, X, want, got, batch, how);
			memset(got2, 0xff, batch * m->rows * sizeof(float));
			assert_int_equal(ccg_mat_mul(mat, X, got2, batch), 0);
			snprintf(how, sizeof(how), "ccg_mat_mul (%s)", layouts[l]);
			compare(m, X, want, got2, batch, how);
			assert_memory_equal(got, got2, batch * m->rows * sizeof(float));
		}
		unsetenv("CCG_QLAYOUT");
		if (batch > 2)
			continue;
		for (size_t b = 0; b < batch; b++) { /* qmatvec of each column (the activation kernel on one column) */
			assert_int_equal(ccg_cl_qmatvec(m->type, m->data, m->stride, X + b * m->cols, got + b * m->rows,
			                                m->rows, m->cols),
			                 0);
			assert_int_equal(cck_qmatvec(m->type, m->data, m->stride, X + b * m->cols, want + b * m->rows,
			                             m->rows, m->cols),
			                 0);
		}
		compare(m, X, want, got, batch, "ccg_cl_qmatvec");
	}
	ccg_mat_free(mat);
	free(X);
	free(want);
	free(got);
	free(got2);
	free(m->w);
	m->w = NULL;
}

static int device_or_skip(void)
{
	if (have_dev)
		return 1;
	printf("    SKIP: no OpenCL device: %s\n", ccg_why());
	return 0;
}

/* ---- random matrices -------------------------------------------------------------------------------------------- */

/* rows quantized from random floats by cck_quantize, at stride bytes (>= the row size), the first row at byte off
 * of the buffer. Blocks hold fp16 fields, so 2 is the alignment a row can count on (libcck reads them as such). */
static unsigned char *random_rows(int type, size_t rows, size_t cols, size_t stride, size_t off)
{
	unsigned char *buf = calloc(1, off + rows * stride + 1);
	float *x = malloc(cols * sizeof(float));

	assert_true(buf && x);
	for (size_t r = 0; r < rows; r++) {
		fill(x, cols);
		assert_int_equal(cck_quantize(type, x, buf + off + r * stride, cols), 0);
	}
	free(x);
	return buf;
}

static void test_random(void **state)
{
	static const size_t rows_32[] = {1, 7, 33, 130}, cols_32[] = {32, 96, 576};
	static const size_t rows_k[] = {1, 9, 67}, cols_k[] = {256, 1536};
	static const size_t cols_f[] = {1, 13, 40, 96, 577};

	(void)state;
	if (!device_or_skip())
		skip();
	for (size_t t = 0; t < NELEM(gpu_types); t++) {
		int type = gpu_types[t], k = type >= CCK_TYPE_Q2_K;
		const size_t *rs = k ? rows_k : rows_32, *cs = k ? cols_k : float_type(type) ? cols_f : cols_32;
		size_t nr = k ? NELEM(rows_k) : NELEM(rows_32);
		size_t nc = k ? NELEM(cols_k) : float_type(type) ? NELEM(cols_f) : NELEM(cols_32);

		for (size_t ri = 0; ri < nr; ri++)
			for (size_t ci = 0; ci < nc; ci++)
				for (int padded = 0; padded < 2; padded++) {
					size_t rb, stride, off = padded ? 2 : 0;
					unsigned char *buf;
					struct wmat m;

					assert_int_equal(cck_type_row_bytes(type, cs[ci], &rb), 0);
					stride = padded ? rb + 6 : rb; /* padded rows off every alignment but the blocks' 2 */
					buf = random_rows(type, rs[ri], cs[ci], stride, off);
					m = (struct wmat){.type = type,
					                  .data = buf + off,
					                  .rows = rs[ri],
					                  .cols = cs[ci],
					                  .stride = stride,
					                  .what = padded ? "random, padded" : "random"};
					check_matrix(&m, batches, NELEM(batches));
					free(buf);
				}
	}
}

/* ---- real tensors ------------------------------------------------------------------------------------------------ */

/* A tensor's bytes read from the file (malloc'd). */
static unsigned char *read_tensor(const char *path, const struct ccm_gguf *g, const struct ccm_tensor *t)
{
	unsigned char *buf = malloc(t->nbytes);
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(buf && fd >= 0);
	assert_int_equal(pread(fd, buf, t->nbytes, (off_t)(ccm_gguf_data_offset(g) + t->offset)), (ssize_t)t->nbytes);
	close(fd);
	return buf;
}

/* Every 2-D tensor of a supported type whose name starts with one of the prefixes (NULL: all) against libcck.
 * Returns the tensors checked; 0 (skip printed) when the file is absent. */
static size_t check_file(const char *path, const char *const *prefixes, const size_t *bs, size_t nbs)
{
	struct ccm_gguf *g;
	char err[256];
	size_t done = 0;

	if (access(path, R_OK) != 0) {
		printf("    SKIP %s: not found\n", path);
		return 0;
	}
	if (ccm_gguf_open(path, &g, err, sizeof(err)))
		fail_msg("%s: %s", path, err);
	for (size_t i = 0; i < ccm_gguf_tensor_count(g); i++) {
		const struct ccm_tensor *t = ccm_gguf_tensor(g, i);
		int match = prefixes == NULL;
		struct wmat m;
		unsigned char *data;

		for (size_t p = 0; prefixes && prefixes[p]; p++)
			match |= strncmp(t->name.s, prefixes[p], strlen(prefixes[p])) == 0;
		if (!match || t->n_dims != 2 || !ccg_type_supported(t->type))
			continue;
		data = read_tensor(path, g, t);
		m = (struct wmat){.type = t->type,
		                  .data = data,
		                  .rows = (size_t)t->ne[1],
		                  .cols = (size_t)t->ne[0],
		                  .stride = (size_t)(t->nbytes / t->ne[1]),
		                  .what = t->name.s};
		check_matrix(&m, bs, nbs);
		free(data);
		done++;
	}
	ccm_gguf_free(g);
	return done;
}

/* Every 2-D tensor of the vendored models: stories260K (f32), its q4_0 / q8_0 / f16 versions, and
 * llama-2-tiny-random (f16 matrices, f32 token embeddings). */
static void test_stories(void **state)
{
	static const char *const files[] = {"derived/stories260K-Q4_0.gguf", "derived/stories260K-Q8_0.gguf",
	                                    "stories260K.gguf", "derived/stories260K-F16.gguf",
	                                    "llama-2-tiny-random.gguf"};

	(void)state;
	if (!device_or_skip())
		skip();
	for (size_t f = 0; f < NELEM(files); f++) {
		char path[PATH_MAX];
		size_t n;

		t_model(files[f], path, sizeof(path)); /* NULL or not: check_file prints the skip */
		n = check_file(path, NULL, batches, NELEM(batches));
		printf("    %s: %zu tensors\n", files[f], n);
	}
}

/* SmolLM2: layer 0 (q4_1) and the token embeddings (q8_0, its tied output: 49152 rows, batch 1 and 2). */
static void test_smollm2(void **state)
{
	static const char *const layer0[] = {"blk.0.", NULL}, *const embd[] = {"token_embd.", NULL};
	static const size_t few[] = {1, 2};
	char path[PATH_MAX];
	size_t n;

	(void)state;
	if (!device_or_skip())
		skip();
	t_smollm2(path, sizeof(path)); /* NULL or not: check_file prints the skip */
	n = check_file(path, layer0, batches, NELEM(batches));
	if (n)
		n += check_file(path, embd, few, NELEM(few));
	printf("    SmolLM2: %zu tensors\n", n);
}

/* The k-quants on real weights: SmolLM2's ffn_down rows (1536 columns) of layers 0 and 29 dequantized and quantized
 * again to q4_K and q6_K by cck_quantize. */
static void test_kquant_real(void **state)
{
	static const char *const names[] = {"blk.0.ffn_down.weight", "blk.29.ffn_down.weight"};
	static const int ktypes[] = {CCK_TYPE_Q4_K, CCK_TYPE_Q6_K};
	char path[PATH_MAX], err[256];
	struct ccm_gguf *g;

	(void)state;
	if (!device_or_skip())
		skip();
	if (!t_smollm2(path, sizeof(path))) {
		printf("    SKIP %s: not found\n", path);
		skip();
	}
	if (ccm_gguf_open(path, &g, err, sizeof(err)))
		fail_msg("%s: %s", path, err);
	for (size_t i = 0; i < NELEM(names); i++) {
		const struct ccm_tensor *t = ccm_gguf_find_tensor(g, names[i]);
		size_t rows, cols, rb, srb;
		unsigned char *src;
		float *f;

		assert_non_null(t);
		rows = (size_t)t->ne[1];
		cols = (size_t)t->ne[0];
		src = read_tensor(path, g, t);
		srb = (size_t)(t->nbytes / rows);
		f = malloc(rows * cols * sizeof(float));
		assert_non_null(f);
		for (size_t r = 0; r < rows; r++)
			assert_int_equal(cck_dequantize(t->type, src + r * srb, f + r * cols, cols), 0);
		for (size_t k = 0; k < NELEM(ktypes); k++) {
			unsigned char *q;
			struct wmat m;

			assert_int_equal(cck_type_row_bytes(ktypes[k], cols, &rb), 0);
			q = malloc(rows * rb);
			assert_non_null(q);
			for (size_t r = 0; r < rows; r++)
				assert_int_equal(cck_quantize(ktypes[k], f + r * cols, q + r * rb, cols), 0);
			m = (struct wmat){ktypes[k], q, rows, cols, rb, NULL, names[i]};
			check_matrix(&m, batches, NELEM(batches));
			free(q);
		}
		free(f);
		free(src);
	}
	ccm_gguf_free(g);
}

/* ---- special activations ------------------------------------------------------------------------------------------
 */

/* Column c of the special inputs (from random ones): a NaN mid-block (dropped by libcck's ordered max: the quant
 * saturates, the result stays finite), a NaN ending a block (amax NaN), an infinity, subnormal / tiny / huge / zero
 * blocks, and quants falling exactly half-way (amax 127: id 1; round half to even matters) with both signs of the
 * max in a block. huge: the largest magnitude (near FLT_MAX the k-quants' float sums may overflow in one order and
 * not the other). */
#define N_SPECIAL 5
static void special_column(float *x, size_t cols, int c, float huge)
{
	fill(x, cols);
	switch (c) {
	case 0:
		x[5] = NAN;
		break;
	case 1:
		x[63] = NAN;
		break;
	case 2:
		x[100] = -INFINITY;
		break;
	case 3:
		for (size_t i = 0; i < 32; i++) {
			x[i] = (float)(i % 7) * 1e-41f; /* subnormal */
			x[32 + i] = (float)i * 1e-37f;  /* near FLT_MIN: 127 / amax is huge */
			x[64 + i] = ((float)(i % 5) * 0.6f - 1.0f) * huge;
			x[96 + i] = 0.0f;
		}
		break;
	case 4:
		for (size_t i = 0; i < cols; i++) {
			x[i] = (float)((int)(i % 64) - 32) + 0.5f;
			if (i % 32 == 0)
				x[i] = (i / 32) % 2 ? -127.0f : 127.0f;
		}
		x[40] = -127.0f;
		break;
	}
}

/* got against want where inputs may be special: the same bits or both NaN (exact types); else the same non-finite
 * value, or within Q_BOUND of S where everything is finite. */
static void compare_special(const struct wmat *m, const float *X, const float *want, const float *got, size_t batch)
{
	for (size_t b = 0; b < batch; b++)
		for (size_t r = 0; r < m->rows; r++) {
			float a = want[b * m->rows + r], g = got[b * m->rows + r];
			double s = 0.0;

			if ((isnan(a) && isnan(g)) || memcmp(&a, &g, sizeof(a)) == 0)
				continue;
			for (size_t i = 0; i < m->cols; i++) /* a NaN quantizes to a bounded value: count |w| for it */
				s += fabs((double)m->w[r * m->cols + i]) *
				     (isnan(X[b * m->cols + i]) ? 1.0 : fabs(X[b * m->cols + i]));
			if (exact_type(m->type) || !isfinite(a) || !isfinite(g) || !isfinite(s) ||
			    !(fabs((double)a - g) <= Q_BOUND * s))
				fail_msg("%s special column %zu, row %zu: %.9g, libcck %.9g", cck_type_name(m->type), b,
				         r, g, a);
		}
}

static void test_special(void **state)
{
	const size_t rows = 9, cols = 256, batch = N_SPECIAL;
	float X[N_SPECIAL * 256], want[N_SPECIAL * 9], got[N_SPECIAL * 9];

	(void)state;
	if (!device_or_skip())
		skip();
	for (size_t t = 0; t < NELEM(gpu_types); t++) {
		size_t rb;
		unsigned char *W;
		struct wmat m;

		for (int c = 0; c < N_SPECIAL; c++)
			special_column(X + c * cols, cols, c, exact_type(gpu_types[t]) ? 1e38f : 1e30f);
		assert_int_equal(cck_type_row_bytes(gpu_types[t], cols, &rb), 0);
		W = random_rows(gpu_types[t], rows, cols, rb, 0);
		m = (struct wmat){gpu_types[t], W, rows, cols, rb, NULL, "special"};
		wmat_dequant(&m);
		assert_int_equal(cck_qmatmul(m.type, W, 0, X, want, rows, cols, batch), 0);
		for (size_t l = 0; l < NELEM(layouts); l++) {
			setenv("CCG_QLAYOUT", layouts[l], 1);
			assert_int_equal(ccg_cl_qmatmul(m.type, W, 0, X, got, rows, cols, batch), 0);
			compare_special(&m, X, want, got, batch);
		}
		unsetenv("CCG_QLAYOUT");
		free(m.w);
		free(W);
	}
}

/* ---- threads ------------------------------------------------------------------------------------------------------
 */

#define T_THREADS 4
#define T_ROUNDS 8

struct tjob {
	struct ccg_mat *mat;
	const float *X;
	const float *want;
	size_t cols, rows, batch;
	int bad;
};

static void *tjob_run(void *arg)
{
	struct tjob *j = arg;
	float *y = malloc(j->batch * j->rows * sizeof(float));

	for (int i = 0; y && i < T_ROUNDS && !j->bad; i++) {
		if (ccg_mat_mul(j->mat, j->X, y, j->batch) != 0 ||
		    memcmp(y, j->want, j->batch * j->rows * sizeof(float)))
			j->bad = 1;
	}
	if (!y)
		j->bad = 1;
	free(y);
	return NULL;
}

/* One mat, several threads multiplying their own X at once: each always gets what it got alone. */
static void test_threads(void **state)
{
	const size_t rows = 77, cols = 256, rb = 144, batch[T_THREADS] = {1, 3, 7, 33};
	struct tjob jobs[T_THREADS];
	pthread_t th[T_THREADS];
	struct ccg_mat *mat;
	unsigned char *W;

	(void)state;
	if (!device_or_skip())
		skip();
	W = random_rows(CCK_TYPE_Q4_K, rows, cols, rb, 0);
	assert_int_equal(ccg_mat_new(CCK_TYPE_Q4_K, W, 0, rows, cols, &mat), 0);
	for (int i = 0; i < T_THREADS; i++) {
		float *X = malloc(batch[i] * cols * sizeof(float)), *want = malloc(batch[i] * rows * sizeof(float));

		assert_true(X && want);
		fill(X, batch[i] * cols);
		assert_int_equal(ccg_mat_mul(mat, X, want, batch[i]), 0);
		jobs[i] = (struct tjob){mat, X, want, cols, rows, batch[i], 0};
	}
	for (int i = 0; i < T_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, tjob_run, &jobs[i]), 0);
	for (int i = 0; i < T_THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_false(jobs[i].bad);
		free((void *)jobs[i].X);
		free((void *)jobs[i].want);
	}
	ccg_mat_free(mat);
	free(W);
}

/* ---- arguments ------------------------------------------------------------------------------------------------- */

/*
 * A device call's rc against what libcck answers for the same arguments: the same with a device; without one, a
 * valid call is -ENODEV and an invalid one its error or -ENODEV (libccgpu built without OpenCL answers -ENODEV to
 * everything).
 */
static void expect_rc(int got, int want, const char *what, int line)
{
	if (have_dev ? got == want : (got == -ENODEV || (want != 0 && got == want)))
		return;
	fail_msg("line %d: %s = %d, expected %d%s", line, what, got, want, have_dev ? "" : " or -ENODEV");
}
#define EXPECT(call, want) expect_rc((call), (want), #call, __LINE__)

static void expect_both(int type, const void *W, size_t stride, const float *X, float *Y, size_t rows, size_t cols,
                        size_t batch, int want)
{
	float y2[64];

	assert_int_equal(cck_qmatmul(type, W, stride, X, Y ? y2 : NULL, rows, cols, batch), want);
	EXPECT(ccg_cl_qmatmul(type, W, stride, X, Y, rows, cols, batch), want);
	if (batch == 1)
		EXPECT(ccg_cl_qmatvec(type, W, stride, X, Y, rows, cols), want);
}

static void test_args(void **state)
{
	static const int other[] = {CCK_TYPE_Q5_0, CCK_TYPE_Q5_1, CCK_TYPE_Q2_K,
	                            CCK_TYPE_Q3_K, CCK_TYPE_Q5_K, CCK_TYPE_BF16};
	unsigned char W[4 * 144] = {0};
	float X[2 * 512] = {0}, Y[64];
	struct ccg_mat *mat = NULL;

	(void)state;
	if (!have_dev)
		printf("    no device (%s): valid calls must answer -ENODEV\n", ccg_why());
	/* libcck's checks */
	expect_both(CCK_TYPE_Q4_0, W, 0, X, Y, 2, 64, 1, 0);
	expect_both(CCK_TYPE_Q4_0, W, 0, X, Y, 2, 48, 1, -EINVAL);  /* cols not whole blocks */
	expect_both(CCK_TYPE_Q4_K, W, 0, X, Y, 2, 128, 1, -EINVAL); /* 256-blocks */
	expect_both(CCK_TYPE_Q4_0, W, 17, X, Y, 2, 32, 1, -EINVAL); /* stride below the row */
	expect_both(99, W, 0, X, Y, 2, 32, 1, -EINVAL);             /* no such type */
	expect_both(-1, W, 0, X, Y, 2, 32, 1, -EINVAL);
	expect_both(CCK_TYPE_Q8_0, NULL, 0, X, Y, 2, 32, 1, -EINVAL); /* NULLs */
	expect_both(CCK_TYPE_Q8_0, W, 0, NULL, Y, 2, 32, 1, -EINVAL);
	expect_both(CCK_TYPE_Q8_0, W, 0, X, NULL, 2, 32, 1, -EINVAL);
	expect_both(CCK_TYPE_Q8_0, W, SIZE_MAX / 2, X, Y, 4, 32, 1, -EOVERFLOW); /* rows past the address space */
	expect_both(CCK_TYPE_Q8_0, W, 0, X, Y, SIZE_MAX / 2, 32, 2, -EOVERFLOW);
	/* a batch past the kernels' 32-bit column index: refused before anything is read (libcck, which has no such
	 * limit, would read the 2^32 columns: not called) */
	{
		int rc = ccg_cl_qmatmul(CCK_TYPE_F32, W, 0, X, Y, 1, 1, (size_t)UINT32_MAX + 1);

		if (rc != -EOVERFLOW && !(rc == -ENODEV && !have_dev))
			fail_msg("a batch of 2^32 columns: %d, want -EOVERFLOW", rc);
	}
	/* the float types: any column count; the stride, NULLs and sizes as for the others */
	expect_both(CCK_TYPE_F32, W, 0, X, Y, 3, 7, 2, 0);
	expect_both(CCK_TYPE_F16, W, 0, X, Y, 3, 7, 2, 0);
	expect_both(CCK_TYPE_F32, W, 27, X, Y, 2, 7, 1, -EINVAL); /* stride below the row (28 bytes) */
	expect_both(CCK_TYPE_F16, W, 13, X, Y, 2, 7, 1, -EINVAL); /* (14 bytes) */
	expect_both(CCK_TYPE_F16, W, 16, X, Y, 2, 7, 1, 0);       /* a padded stride */
	expect_both(CCK_TYPE_F16, NULL, 0, X, Y, 2, 7, 1, -EINVAL);
	expect_both(CCK_TYPE_F32, W, 0, NULL, Y, 2, 7, 1, -EINVAL);
	expect_both(CCK_TYPE_F32, W, 0, X, Y, 2, SIZE_MAX / 2, 1, -EOVERFLOW);
	expect_both(CCK_TYPE_F16, W, SIZE_MAX / 4, X, Y, 3, 7, 1, -EOVERFLOW);
	expect_both(CCK_TYPE_F16, W, 0, X, Y, SIZE_MAX / 4, 7, 4, -EOVERFLOW);
	/* nothing to do: 0 before any pointer is looked at (without a device: -ENODEV first) */
	expect_both(CCK_TYPE_Q8_0, NULL, 0, NULL, NULL, 0, 32, 1, 0);
	expect_both(CCK_TYPE_Q8_0, NULL, 0, NULL, NULL, 3, 32, 0, 0);
	if (have_dev) { /* cols 0: Y zeroed */
		Y[0] = Y[1] = Y[2] = 1.0f;
		assert_int_equal(ccg_cl_qmatmul(CCK_TYPE_Q4_0, NULL, 0, NULL, Y, 3, 0, 1), 0);
		assert_true(Y[0] == 0.0f && Y[1] == 0.0f && Y[2] == 0.0f);
	}
	/* types libcck multiplies but the device does not */
	for (size_t i = 0; i < NELEM(other); i++) {
		assert_false(ccg_type_supported(other[i]));
		EXPECT(ccg_cl_qmatvec(other[i], W, 0, X, Y, 2, 256), -EOPNOTSUPP);
		EXPECT(ccg_cl_qmatmul(other[i], W, 0, X, Y, 2, 256, 2), -EOPNOTSUPP);
		EXPECT(ccg_mat_new(other[i], W, 0, 2, 256, &mat), -EOPNOTSUPP);
		assert_null(mat);
	}
	for (size_t i = 0; have_dev && i < NELEM(gpu_types); i++)
		assert_true(ccg_type_supported(gpu_types[i]));
	/* mats */
	EXPECT(ccg_mat_new(CCK_TYPE_Q4_0, W, 0, 2, 32, NULL), -EINVAL);
	EXPECT(ccg_mat_new(CCK_TYPE_Q4_0, W, 0, 2, 48, &mat), -EINVAL);
	EXPECT(ccg_mat_new(CCK_TYPE_Q4_0, NULL, 0, 2, 32, &mat), -EINVAL);
	EXPECT(ccg_mat_mul(NULL, X, Y, 1), -EINVAL);
	assert_int_equal(ccg_mat_bytes(NULL), 0);
	ccg_mat_free(NULL);
	assert_null(mat);
	EXPECT(ccg_mat_new(CCK_TYPE_Q4_K, W, 0, 4, 256, &mat), 0);
	if (!have_dev) {
		assert_null(mat);
		return;
	}
	assert_int_equal(ccg_mat_bytes(mat), 4 * 144);
	assert_int_equal(ccg_mat_mul(mat, NULL, Y, 1), -EINVAL);
	assert_int_equal(ccg_mat_mul(mat, X, Y, (size_t)UINT32_MAX + 1), -EOVERFLOW); /* 32-bit batch columns */
	assert_int_equal(ccg_mat_mul(mat, X, NULL, 1), -EINVAL);
	assert_int_equal(ccg_mat_mul(mat, NULL, NULL, 0), 0);
	assert_int_equal(ccg_mat_mul(mat, X, Y, SIZE_MAX / 8), -EOVERFLOW);
	assert_int_equal(ccg_mat_mul(mat, X, Y, 2), 0); /* zero weights: zeros */
	for (int i = 0; i < 8; i++)
		assert_true(Y[i] == 0.0f);
	ccg_mat_free(mat);
}

static void test_report(void **state)
{
	(void)state;
	for (size_t t = 0; t < NELEM(gpu_types); t++) {
		int type = gpu_types[t];

		if (stats[type].n)
			printf("    %-5s %8zu outputs: max |gpu - cck| / S = %.3g (bound %s), %zu not bit-identical\n",
			       cck_type_name(type), stats[type].n, stats[type].max_err,
			       exact_type(type) ? "bit-exact" : "2^-16", stats[type].differ);
	}
	printf("    (libcck tier %s: f16 %s; device fp64 %s: f32 %s)\n", cck_tier(),
	       f16_exact ? "bit-exact" : "bounded", f32_exact ? "yes" : "no", f32_exact ? "bit-exact" : "bounded");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_args),    cmocka_unit_test(test_random),      cmocka_unit_test(test_stories),
	    cmocka_unit_test(test_smollm2), cmocka_unit_test(test_kquant_real), cmocka_unit_test(test_special),
	    cmocka_unit_test(test_threads), cmocka_unit_test(test_report),
	};

	have_dev = ccg_init() == 0;
	printf("device: %s\n", ccg_why());
	f16_exact = !strcmp(cck_tier(), "avx2") || !strcmp(cck_tier(), "avx512");
	for (int i = 0; have_dev && i < ccg_device_count(); i++) {
		struct ccg_device_info info;

		if (ccg_device_info(i, &info) == 0 && info.selected)
			f32_exact = info.fp64;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
