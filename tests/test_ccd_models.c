/* SPDX-License-Identifier: MIT */
/* test_ccd_models.c: the model registry through a real ccd: load/unload/show in both modes, corrupted files,
 * admin rights, cancelled loads, preloads, and the daemon's memory with a model and 8 clients. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <math.h>
#include <unistd.h>

#include <cmocka.h>

#include "cck.h"
#include "t_ccd.h"

static struct t_ccd d;
static cc_client *c;
static struct t_raw raw;

static int setup(void **state)
{
	(void)state;
	if (!t_models_dir())
		return -1;
	return t_fixture_up(&d, NULL, &c, &raw) ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	return t_fixture_down(&d, &c, &raw) ? -1 : 0;
}

static void assert_healthy(void)
{
	const char *why = t_healthy_check(&d, c, 1000);

	if (why)
		fail_msg("after the last case: %s", why);
}

static int models_count(void)
{
	char *json = NULL;
	int n = 0;
	const char *p;

	assert_int_equal(cc_admin_json(c, "models", &json), 0);
	for (p = json; (p = strstr(p, "\"name\":")); p++)
		n++;
	free(json);
	return n;
}

/* The first string value of "key" in json, into buf ("" if none). */
static const char *json_str(const char *json, const char *key, char *buf, size_t size)
{
	char pat[64];
	const char *p;
	size_t i = 0;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	buf[0] = '\0';
	p = strstr(json, pat);
	if (!p)
		return buf;
	p += strlen(pat);
	while (*p && *p != '"' && i + 1 < size)
		buf[i++] = *p++;
	buf[i] = '\0';
	return buf;
}

static off_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Load path as name in mode, check what models and show say, unload. */
static void load_check_unload(const char *path, const char *mode, unsigned ntensors)
{
	char *json = NULL, buf[64], want[32];
	double bytes = 0, tensors = 0, secs = -1;
	int r;

	r = cc_model_load(c, "m1", path, mode, NULL, NULL, NULL, &json);
	if (r)
		fail_msg("load %s (%s): %s", path, mode, cc_last_error(c));
	assert_string_equal(json_str(json, "state", buf, sizeof(buf)), "ready");
	/* uring may fall back to pread where io_uring is not allowed: then it must say so */
	json_str(json, "mode", buf, sizeof(buf));
	if (strcmp(mode, "uring") == 0 && strcmp(buf, "read") == 0) {
		char note[64];

		assert_true(strlen(json_str(json, "note", note, sizeof(note))) > 0);
	} else {
		assert_string_equal(buf, mode);
	}
	assert_int_equal(t_json_number(json, "bytes", &bytes), 0);
	assert_int_equal(t_json_number(json, "tensors", &tensors), 0);
	assert_int_equal(t_json_number(json, "seconds", &secs), 0);
	assert_true(bytes > 0 && bytes < (double)file_size(path));
	assert_int_equal((unsigned)tensors, ntensors);
	assert_true(secs >= 0);
	free(json);
	json = NULL;

	assert_int_equal(cc_model_show(c, "m1", &json), 0);
	snprintf(want, sizeof(want), "\"tensor_count\":%u", ntensors);
	assert_non_null(strstr(json, want));
	assert_non_null(strstr(json, "\"general.architecture\":\"llama\""));
	free(json);

	assert_int_equal(models_count(), 1);
	assert_int_equal(cc_model_unload(c, "m1", 0), 0);
	assert_int_equal(models_count(), 0);
}

static void test_load_vendored_both_modes(void **state)
{
	static const struct {
		const char *rel;
		unsigned ntensors;
	} models[] = {
	    {"stories260K.gguf", 48},
	    {"llama-2-tiny-random.gguf", 12},
	    {"derived/stories260K-F16.gguf", 48},
	    {"derived/stories260K-Q8_0.gguf", 48},
	    {"derived/stories260K-Q4_0.gguf", 48},
	};
	static const char *const modes[] = {"uring", "mmap"};
	char path[PATH_MAX];
	size_t i, k;

	(void)state;
	t_watchdog(120, "vendored models");
	for (i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
		if (!t_model(models[i].rel, path, sizeof(path)))
			fail_msg("missing vendored model %s", models[i].rel);
		for (k = 0; k < 2; k++)
			load_check_unload(path, modes[k], models[i].ntensors);
	}
	assert_healthy();
}

static void test_load_smollm2_both_modes(void **state)
{
	char path[PATH_MAX];

	(void)state;
	if (!t_smollm2(path, sizeof(path)))
		skip();
	t_watchdog(120, "SmolLM2");
	load_check_unload(path, "uring", 272);
	load_check_unload(path, "mmap", 272);
	assert_healthy();
}

/* Every wrong request gets a clear error, and nothing is left registered. */
static void test_load_errors(void **state)
{
	char path[PATH_MAX], v1[PATH_MAX], fifo[PATH_MAX], *json = NULL;
	int r;

	(void)state;
	assert_non_null(t_model("stories260K.gguf", path, sizeof(path)));
	r = cc_model_load(c, "m1", "/nonexistent/model.gguf", NULL, NULL, NULL, NULL, NULL);
	assert_int_equal(r, -ENOENT);
	r = cc_model_load(c, "bad name!", path, NULL, NULL, NULL, NULL, NULL);
	assert_int_equal(r, -EINVAL);
	assert_non_null(strstr(cc_last_error(c), "name"));
	r = cc_model_load(c, "m1", path, "fast", NULL, NULL, NULL, NULL);
	assert_int_equal(r, -EINVAL);
	r = cc_model_load(c, "m1", path, NULL, "node=99999", NULL, NULL, NULL);
	assert_true(r < 0);
	assert_int_equal(models_count(), 0);
	/* a directory is not a model */
	r = cc_model_load(c, "m1", "/", NULL, NULL, NULL, NULL, NULL);
	assert_true(r < 0);
	assert_int_equal(models_count(), 0);
	/* nor a FIFO: the loader must not block opening it (nor ccd's shutdown waiting for the loader) */
	snprintf(fifo, sizeof(fifo), "%s/fifo.gguf", d.dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	r = cc_model_load(c, "m1", fifo, NULL, NULL, NULL, NULL, NULL);
	assert_int_equal(r, -EINVAL);
	assert_non_null(strstr(cc_last_error(c), "regular file"));
	unlink(fifo);
	assert_int_equal(models_count(), 0);

	assert_int_equal(cc_model_load(c, "m1", path, NULL, NULL, NULL, NULL, NULL), 0);
	r = cc_model_load(c, "m1", path, NULL, NULL, NULL, NULL, NULL);
	assert_int_equal(r, -EEXIST);
	assert_non_null(strstr(cc_last_error(c), "already"));
	assert_int_equal(cc_model_unload(c, "nope", 0), -ENOENT);
	assert_int_equal(cc_model_show(c, "nope", &json), -ENOENT);
	assert_int_equal(cc_model_unload(c, "m1", 0), 0);
	assert_int_equal(cc_model_unload(c, "m1", 0), -ENOENT);

	/* GGUF v1 is refused, saying so */
	if (t_model("legacy/tinyllamas-stories-260k-f32.gguf", v1, sizeof(v1))) {
		r = cc_model_load(c, "old", v1, NULL, NULL, NULL, NULL, NULL);
		assert_true(r < 0);
		if (!strstr(cc_last_error(c), "v1") && !strstr(cc_last_error(c), "version 1"))
			fail_msg("v1 refusal does not say why: %s", cc_last_error(c));
	}
	assert_int_equal(models_count(), 0);
	assert_healthy();
}

/* ---- corrupted files ---------------------------------------------------------------------------- */

/* Where things are in a GGUF file (walked here independently of the parser under test). */
struct layout {
	size_t n_kv_off, n_tensors_off, first_key_len_off, first_vtype_off;
	size_t tinfo_off[64]; /* offset of each tensor info (its name length) */
	size_t ndims_off[64], ne_off[64], type_off[64], offset_off[64];
	size_t ntensors;
	size_t data_off;
	char name[64][96];
	uint32_t type[64], ndims[64];
	uint64_t ne[64][4], offset[64];
};

static uint64_t rd64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static uint32_t rd32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static size_t scalar_size(uint32_t t)
{
	static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

	return t < sizeof(sz) / sizeof(sz[0]) ? sz[t] : 0;
}

/* Skip one value of type t at p; returns the new offset. */
static size_t skip_value(const unsigned char *b, size_t p, uint32_t t)
{
	if (t == 8)
		return p + 8 + rd64(b + p);
	if (t == 9) {
		uint32_t et = rd32(b + p);
		uint64_t n = rd64(b + p + 4), i;

		p += 12;
		if (et == 8) {
			for (i = 0; i < n; i++)
				p += 8 + rd64(b + p);
			return p;
		}
		return p + n * scalar_size(et);
	}
	return p + scalar_size(t);
}

static void walk(const unsigned char *b, size_t len, struct layout *l)
{
	uint64_t nkv = rd64(b + 16), i, align = 32;
	size_t p = 24;

	memset(l, 0, sizeof(*l));
	l->n_tensors_off = 8;
	l->n_kv_off = 16;
	l->first_key_len_off = 24;
	l->ntensors = rd64(b + 8);
	assert_true(l->ntensors <= 64);
	for (i = 0; i < nkv; i++) {
		uint32_t t;

		p += 8 + rd64(b + p);
		if (i == 0)
			l->first_vtype_off = p;
		t = rd32(b + p);
		if (rd64(b + p - 8 - 17) == 17 && memcmp(b + p - 17, "general.alignment", 17) == 0 && t == 4)
			align = rd32(b + p + 4);
		p = skip_value(b, p + 4, t);
		assert_true(p < len);
	}
	for (i = 0; i < l->ntensors; i++) {
		uint32_t nd;

		uint64_t nl = rd64(b + p), j;

		l->tinfo_off[i] = p;
		memcpy(l->name[i], b + p + 8, nl < 95 ? nl : 95);
		p += 8 + nl;
		l->ndims_off[i] = p;
		nd = rd32(b + p);
		l->ndims[i] = nd;
		l->ne_off[i] = p + 4;
		for (j = 0; j < nd && j < 4; j++)
			l->ne[i][j] = rd64(b + p + 4 + 8 * j);
		p += 4 + 8 * (size_t)nd;
		l->type_off[i] = p;
		l->type[i] = rd32(b + p);
		l->offset_off[i] = p + 4;
		l->offset[i] = rd64(b + p + 4);
		p += 12;
	}
	l->data_off = (p + align - 1) / align * align;
}

static void put64(unsigned char *b, size_t off, uint64_t v)
{
	memcpy(b + off, &v, 8);
}

static void put32(unsigned char *b, size_t off, uint32_t v)
{
	memcpy(b + off, &v, 4);
}

static void test_corrupted_files(void **state)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	unsigned char *orig, *b;
	struct layout l;
	size_t len;
	int fd, k, nvariants = 0;
	FILE *f;

	(void)state;
	t_watchdog(120, "corrupted files");
	assert_non_null(t_model("derived/stories260K-Q4_0.gguf", path, sizeof(path)));
	len = (size_t)file_size(path);
	orig = malloc(len);
	b = malloc(len);
	assert_non_null(orig);
	assert_non_null(b);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(orig, 1, len, f), len);
	fclose(f);
	walk(orig, len, &l);
	assert_int_equal(l.ntensors, 48);
	snprintf(tmp, sizeof(tmp), "%s/corrupt.gguf", d.dir);

	for (k = 0;; k++) {
		size_t n = len;
		const char *what;

		memcpy(b, orig, len);
		switch (k) {
		case 0:
			what = "truncated inside the magic";
			n = 3;
			break;
		case 1:
			what = "truncated inside the kv section";
			n = l.first_vtype_off + 2;
			break;
		case 2:
			what = "truncated inside the tensor infos";
			n = l.tinfo_off[20] + 5;
			break;
		case 3:
			what = "truncated at the data section";
			n = l.data_off;
			break;
		case 4:
			what = "truncated in the middle of the data";
			n = l.data_off + (len - l.data_off) / 2;
			break;
		case 5:
			what = "truncated inside the last tensor";
			n = len - 32;
			break;
		case 6:
			what = "bad magic";
			memcpy(b, "GGML", 4);
			break;
		case 7:
			what = "version 1";
			put32(b, 4, 1);
			break;
		case 8:
			what = "version 99";
			put32(b, 4, 99);
			break;
		case 9:
			what = "byte-swapped version";
			put32(b, 4, 0x03000000);
			break;
		case 10:
			what = "huge tensor count";
			put64(b, l.n_tensors_off, UINT64_MAX / 2);
			break;
		case 11:
			what = "huge kv count";
			put64(b, l.n_kv_off, (uint64_t)1 << 60);
			break;
		case 12:
			what = "huge key length";
			put64(b, l.first_key_len_off, (uint64_t)1 << 62);
			break;
		case 13:
			what = "bad value type";
			put32(b, l.first_vtype_off, 77);
			break;
		case 14:
			what = "bad tensor type";
			put32(b, l.type_off[3], 200);
			break;
		case 15:
			what = "removed tensor type 4";
			put32(b, l.type_off[3], 4);
			break;
		case 16:
			what = "n_dims 0";
			put32(b, l.ndims_off[5], 0);
			break;
		case 17:
			what = "n_dims 5";
			put32(b, l.ndims_off[5], 5);
			break;
		case 18:
			what = "dimension 0";
			put64(b, l.ne_off[7], 0);
			break;
		case 19:
			what = "dimension overflow";
			put64(b, l.ne_off[7], (uint64_t)1 << 62);
			break;
		case 20:
			what = "misaligned tensor offset";
			put64(b, l.offset_off[9], rd64(orig + l.offset_off[9]) + 4);
			break;
		case 21:
			what = "overlapping tensors";
			put64(b, l.offset_off[10], rd64(orig + l.offset_off[11]));
			break;
		case 22:
			what = "tensor past the end";
			put64(b, l.offset_off[47], (uint64_t)len);
			break;
		case 23:
			what = "tensor offset near 2^64";
			put64(b, l.offset_off[47], UINT64_MAX - 31);
			break;
		case 24:
			what = "huge tensor name length";
			put64(b, l.tinfo_off[0], UINT64_MAX - 3);
			break;
		case 25:
			what = "empty file";
			n = 0;
			break;
		default:
			what = NULL;
			break;
		}
		if (!what)
			break;
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, b, n), (ssize_t)n);
		close(fd);
		{
			int r = cc_model_load(c, "bad", tmp, k % 2 ? "mmap" : "uring", NULL, NULL, NULL, NULL);
			const char *msg = cc_last_error(c);

			if (r == 0)
				fail_msg("variant %d (%s) was loaded", k, what);
			if (strlen(msg) < 12)
				fail_msg("variant %d (%s): unclear error '%s'", k, what, msg);
			printf("# %-36s -> %s\n", what, msg);
		}
		assert_int_equal(models_count(), 0);
		nvariants++;
		if (k % 5 == 0)
			assert_healthy();
	}
	assert_true(nvariants >= 20);
	unlink(tmp);
	free(orig);
	free(b);
	assert_healthy();
}

/* ---- jobs that use a model -------------------------------------------------------------------------- */

static unsigned char *read_file(const char *path, size_t *len)
{
	unsigned char *b;
	FILE *f;

	*len = (size_t)file_size(path);
	b = malloc(*len ? *len : 1);
	assert_non_null(b);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(b, 1, *len, f), *len);
	fclose(f);
	return b;
}

/* Whether ccd's engine packs the 2-D tensor i of l under pack_weights=on: a layer's matrix, or the output matrix. */
static int engine_packs(const struct layout *l, size_t i)
{
	int has_output = 0;

	for (size_t k = 0; k < l->ntensors; k++)
		has_output |= !strcmp(l->name[k], "output.weight");
	return l->ndims[i] == 2 && l->ne[i][1] % CCK_PACK_ROWS == 0 && cck_qpack_supported((int)l->type[i]) &&
	       (!strncmp(l->name[i], "blk.", 4) || !strcmp(l->name[i], has_output ? "output.weight" : "token_embd.weight"));
}

/*
 * model_matvec of every 2-D tensor of a model equals cck_qmatvec in-process on the file's bytes, bit for bit; with
 * packed (a ccd with pack_weights=on), the matrices its engine packs equal cck_qmatvec of them packed in-process.
 * Returns how many were packed.
 */
static size_t check_model_matvec(cc_client *cl, const char *path, const char *mode, int packed)
{
	struct layout *l = calloc(1, sizeof(*l));
	unsigned char *file;
	size_t len, i, n = 0;
	cc_tensor *x = NULL, *y = NULL;
	float *ref;
	size_t npacked = 0;

	assert_non_null(l);
	file = read_file(path, &len);
	walk(file, len, l);
	assert_int_equal(cc_model_load(cl, "mv", path, mode, NULL, NULL, NULL, NULL), 0);
	for (i = 0; i < l->ntensors; i++) {
		size_t rows = l->ndims[i] == 2 ? l->ne[i][1] : 1, cols = l->ne[i][0], j;
		float *dx, *dy;
		int r;

		if (l->ndims[i] > 2 || !cck_type_has_dot((int)l->type[i]))
			continue;
		assert_int_equal(cc_tensor_new(cl, CC_DTYPE_F32, cols, &x), 0);
		assert_int_equal(cc_tensor_new(cl, CC_DTYPE_F32, rows, &y), 0);
		dx = cc_tensor_data(x);
		dy = cc_tensor_data(y);
		for (j = 0; j < cols; j++)
			dx[j] = (float)sin((double)j * 0.37 + (double)i) * 2.0f;
		ref = malloc(rows * sizeof(float));
		assert_non_null(ref);
		if (packed && engine_packs(l, i)) {
			size_t rb;
			unsigned char *pk;

			assert_int_equal(cck_type_row_bytes((int)l->type[i], cols, &rb), 0);
			pk = malloc(rb * rows);
			assert_non_null(pk);
			memcpy(pk, file + l->data_off + l->offset[i], rb * rows);
			assert_int_equal(cck_qpack((int)l->type[i], pk, rows, cols), 0);
			assert_int_equal(cck_qmatvec((int)l->type[i] | CCK_TYPE_PACK16, pk, 0, dx, ref, rows, cols), 0);
			free(pk);
			npacked++;
		} else {
			assert_int_equal(
			    cck_qmatvec((int)l->type[i], file + l->data_off + l->offset[i], 0, dx, ref, rows, cols), 0);
		}
		r = cc_model_matvec(cl, "mv", l->name[i], x, y);
		if (r)
			fail_msg("model_matvec %s: %s", l->name[i], cc_last_error(cl));
		if (t_f32_diff(dy, ref, rows) != rows)
			fail_msg("model_matvec %s (%s, %zux%zu) differs from in-process cck_qmatvec at row %zu",
			         l->name[i], cck_type_name((int)l->type[i]), rows, cols, t_f32_diff(dy, ref, rows));
		free(ref);
		cc_tensor_free(x);
		cc_tensor_free(y);
		n++;
	}
	assert_true(n > 0);
	/* wrong requests: unknown tensor, wrong lengths */
	assert_int_equal(cc_tensor_new(cl, CC_DTYPE_F32, 3, &x), 0);
	assert_int_equal(cc_tensor_new(cl, CC_DTYPE_F32, 3, &y), 0);
	assert_int_equal(cc_model_matvec(cl, "mv", "no.such.tensor", x, y), -ENOENT);
	assert_int_equal(cc_model_matvec(cl, "mv", l->name[1], x, y), -EINVAL);
	assert_int_equal(cc_model_matvec(cl, "nomodel", l->name[1], x, y), -ENOENT);
	cc_tensor_free(x);
	cc_tensor_free(y);
	assert_int_equal(cc_model_unload(cl, "mv", 0), 0);
	free(file);
	free(l);
	return npacked;
}

static void test_model_matvec(void **state)
{
	static const char *const rel[] = {"stories260K.gguf", "derived/stories260K-F16.gguf",
	                                  "derived/stories260K-Q8_0.gguf", "derived/stories260K-Q4_0.gguf"};
	char path[PATH_MAX];
	size_t i;

	(void)state;
	t_watchdog(120, "model_matvec");
	for (i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		assert_non_null(t_model(rel[i], path, sizeof(path)));
		check_model_matvec(c, path, i % 2 ? "mmap" : "uring", 0);
	}
	assert_healthy();
}

/*
 * A ccd with pack_weights=on: model_matvec of a packed matrix (stories260K-Q8_0's and -Q4_0's layers and output, in
 * uring mode) is cck_qmatvec of the matrix packed in-process; the rest, and everything in mmap mode (the file's pages
 * are never rewritten), as before. Skipped where the CPU has no packed kernel (AVX512-VNNI).
 */
static void test_model_matvec_packed(void **state)
{
	static const char *const rel[] = {"derived/stories260K-Q8_0.gguf", "derived/stories260K-Q4_0.gguf"};
	const char *args[] = {"-o", "pack_weights=on", NULL};
	char path[PATH_MAX];
	struct t_ccd d2;
	cc_client *c2;
	size_t n = 0;

	(void)state;
	if (!cck_qpack_supported(CCK_TYPE_Q8_0)) {
		printf("# SKIP packed model_matvec: this CPU has no packed kernel (AVX512-VNNI)\n");
		skip();
	}
	t_watchdog(120, "model_matvec packed");
	assert_int_equal(t_ccd_start(&d2, args, NULL), 0);
	assert_int_equal(t_ccd_connect(&d2, &c2), 0);
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		assert_non_null(t_model(rel[i], path, sizeof(path)));
		n += check_model_matvec(c2, path, "uring", 1);
		assert_int_equal(check_model_matvec(c2, path, "mmap", 0), 0);
	}
	printf("# pack_weights=on: %zu matrices packed, each model_matvec == the in-process packed product\n", n);
	assert_true(n > 0);
	cc_close(c2);
	assert_int_equal(t_ccd_stop(&d2), 0);
}

/* Unload while jobs use the model: without force it waits for them (all succeed); with force they stop. */
static void unload_under_load(int force)
{
	enum { NJOBS = 48 };
	char path[PATH_MAX];
	const char *tensor;
	size_t rows, cols;
	cc_tensor *x, *y[NJOBS];
	uint64_t jobs[NJOBS];
	struct t_raw r2;
	Cc__Request req = CC__REQUEST__INIT;
	Cc__ModelUnload mu = CC__MODEL_UNLOAD__INIT;
	Cc__Reply *rep = NULL;
	int i, ok = 0, cancelled = 0, big = 0;

	if (t_smollm2(path, sizeof(path))) {
		big = 1;
		tensor = "token_embd.weight"; /* q8_0, 49152 x 576 */
		rows = 49152;
		cols = 576;
	} else {
		assert_non_null(t_model("derived/stories260K-Q8_0.gguf", path, sizeof(path)));
		tensor = "output.weight";
		rows = 512;
		cols = 64;
	}
	assert_int_equal(cc_model_load(c, "busy", path, NULL, NULL, NULL, NULL, NULL), 0);
	/* the unload's connection is ready before the jobs go, so that it comes while they are queued */
	assert_int_equal(t_raw_open(&r2, d.endpoint), 0);
	assert_int_equal(t_raw_hello(&r2, CC_PROTO_VERSION), 0);
	assert_int_equal(cc_tensor_new(c, CC_DTYPE_F32, cols, &x), 0);
	for (i = 0; i < (int)cols; i++)
		((float *)cc_tensor_data(x))[i] = (float)i / (float)cols;
	for (i = 0; i < NJOBS; i++) {
		assert_int_equal(cc_tensor_new(c, CC_DTYPE_F32, rows, &y[i]), 0);
		assert_int_equal(cc_submit_model_matvec(c, "busy", tensor, x, y[i], &jobs[i]), 0);
	}
	/* a round trip on the same connection: every submit before it has reached ccd (and is queued) before the
	 * unload, sent on another connection, can overtake it */
	assert_int_equal(cc_ping(c), 0);
	mu.name = "busy";
	mu.force = force;
	req.body_case = CC__REQUEST__BODY_MODEL_UNLOAD;
	req.model_unload = &mu;
	assert_int_equal(t_raw_call(&r2, &req, &rep), 0);
	assert_int_equal(rep->code, 0);
	cc__reply__free_unpacked(rep, NULL);
	/* the model is gone now; new jobs are refused, and every earlier job has an answer */
	assert_int_equal(cc_model_matvec(c, "busy", tensor, x, y[0]), -ENOENT);
	for (i = 0; i < NJOBS; i++) {
		int r = cc_wait(c, jobs[i], (int)(10000 * t_scale()), NULL);

		if (r == 0)
			ok++;
		else if (r == -ECANCELED)
			cancelled++;
		else
			fail_msg("job %d: %s", i, cc_strerror(r));
	}
	printf("# unload%s with %d jobs queued: %d finished, %d cancelled\n", force ? " --force" : "", NJOBS, ok,
	       cancelled);
	if (!force)
		assert_int_equal(ok, NJOBS);
	else if (big)
		assert_true(cancelled > 0); /* ~0.1 s of SmolLM2 jobs were queued when the forced unload came */
	for (i = 0; i < NJOBS; i++)
		cc_tensor_free(y[i]);
	cc_tensor_free(x);
	t_raw_close(&r2);
	assert_int_equal(models_count(), 0);
	assert_healthy();
}

static void test_unload_waits_for_jobs(void **state)
{
	(void)state;
	t_watchdog(120, "unload waits");
	unload_under_load(0);
}

static void test_unload_force_cancels_jobs(void **state)
{
	(void)state;
	t_watchdog(120, "unload --force");
	unload_under_load(1);
}

/* ---- admin rights ----------------------------------------------------------------------------------- */

static void test_load_needs_admin(void **state)
{
	char path[PATH_MAX], sockdir[160];
	pid_t pid;
	int status;

	(void)state;
	if (geteuid() != 0) {
		printf("# not root: cannot run a client as another user here\n");
		skip();
	}
	assert_non_null(t_model("stories260K.gguf", path, sizeof(path)));
	/* let user nobody reach the socket */
	snprintf(sockdir, sizeof(sockdir), "%s", d.dir);
	assert_int_equal(chmod(sockdir, 0711), 0);
	assert_int_equal(chmod(d.sock, 0777), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cc_client *cc;
		char *json = NULL;
		int r;

		if (setgid(65534) || setuid(65534))
			_exit(10);
		if (cc_connect(d.endpoint, &cc))
			_exit(11);
		r = cc_model_load(cc, "x", path, NULL, NULL, NULL, NULL, NULL);
		if (r != -EPERM || !strstr(cc_last_error(cc), "uid"))
			_exit(12);
		if (cc_model_unload(cc, "x", 1) != -EPERM)
			_exit(13);
		if (cc_admin_json(cc, "models", &json))
			_exit(14); /* listing is for everyone */
		free(json);
		cc_close(cc);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	chmod(sockdir, 0700);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the uid-65534 client failed at step %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	assert_int_equal(models_count(), 0);
	/* and root (ccd's own user here) may */
	assert_int_equal(cc_model_load(c, "x", path, NULL, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(cc_model_unload(c, "x", 0), 0);
}

/* ---- unload while loading ----------------------------------------------------------------------------- */

static void test_unload_cancels_load(void **state)
{
	Cc__Request req = CC__REQUEST__INIT, ureq = CC__REQUEST__INIT;
	Cc__ModelLoad ml = CC__MODEL_LOAD__INIT;
	Cc__ModelUnload mu = CC__MODEL_UNLOAD__INIT;
	Cc__Reply *rep = NULL, *urep = NULL;
	struct t_raw r2;
	char path[PATH_MAX];
	int i;

	(void)state;
	if (!t_smollm2(path, sizeof(path)) && !t_model("stories260K.gguf", path, sizeof(path)))
		skip();
	t_watchdog(60, "unload while loading");
	assert_int_equal(t_raw_open(&r2, d.endpoint), 0);
	assert_int_equal(t_raw_hello(&r2, CC_PROTO_VERSION), 0);
	for (i = 0; i < 3; i++) {
		ml.name = "big";
		ml.path = path;
		req.body_case = CC__REQUEST__BODY_MODEL_LOAD;
		req.model_load = &ml;
		req.id = 1000 + (uint64_t)i;
		assert_int_equal(t_raw_send(&raw, &req), 0);
		if (i)
			t_msleep(20 * (unsigned)i);
		mu.name = "big";
		ureq.body_case = CC__REQUEST__BODY_MODEL_UNLOAD;
		ureq.model_unload = &mu;
		assert_int_equal(t_raw_call(&r2, &ureq, &urep), 0);
		/* the unload either cancelled the load or came after it: both end with nothing loaded */
		if (urep->code != 0 && urep->code != -ENOENT)
			fail_msg("unload: %d %s", urep->code, urep->error);
		cc__reply__free_unpacked(urep, NULL);
		assert_int_equal(t_raw_recv(&raw, 10000, &rep), 0);
		assert_int_equal(rep->id, 1000 + (uint64_t)i);
		if (rep->code != 0 && rep->code != -ECANCELED)
			fail_msg("load: %d %s", rep->code, rep->error);
		printf("# load %d: %s\n", i, rep->code ? rep->error : "finished before the unload");
		cc__reply__free_unpacked(rep, NULL);
		/* a load that won the race is still there: unload it */
		if (models_count())
			assert_int_equal(cc_model_unload(c, "big", 0), 0);
		assert_int_equal(models_count(), 0);
	}
	t_raw_close(&r2);
	assert_healthy();
}

/* ---- preload and memory --------------------------------------------------------------------------------- */

static long rss_kb(pid_t pid)
{
	char p[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%ld/status", (long)pid);
	f = fopen(p, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static void test_preload_and_memory(void **state)
{
	char path[PATH_MAX], arg[PATH_MAX + 16], *json = NULL;
	const char *args[4];
	struct t_ccd d2;
	cc_client *c2;
	pid_t kids[8];
	double bytes = 0, t0;
	long rss0, rss;
	int i, ready = 0, fds[2];

	(void)state;
	if (!t_smollm2(path, sizeof(path)))
		skip();
	t_watchdog(120, "preload and memory");
	snprintf(arg, sizeof(arg), "smol=%s:uring", path);
	args[0] = "--model";
	args[1] = arg;
	args[2] = NULL;
	assert_int_equal(t_ccd_start(&d2, args, NULL), 0);
	assert_int_equal(t_ccd_connect(&d2, &c2), 0);
	for (t0 = t_now(); t_now() - t0 < 30 * t_scale() && !ready; t_msleep(50)) {
		assert_int_equal(cc_admin_json(c2, "models", &json), 0);
		ready = strstr(json, "\"state\":\"ready\"") != NULL;
		if (!ready && strstr(json, "\"state\":\"failed\""))
			fail_msg("preload failed: %s", json);
		if (!ready)
			free(json);
	}
	assert_true(ready);
	assert_int_equal(t_json_number(json, "bytes", &bytes), 0);
	free(json);

	/* 8 idle client processes connected */
	assert_int_equal(pipe(fds), 0);
	for (i = 0; i < 8; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			cc_client *k;
			char ch;

			close(fds[1]);
			if (cc_connect(d2.endpoint, &k))
				_exit(1);
			if (read(fds[0], &ch, 1) < 0) {
				/* the parent closed the pipe: time to go */
			}
			cc_close(k);
			_exit(0);
		}
	}
	close(fds[0]);
	for (t0 = t_now(); t_now() - t0 < 10 * t_scale(); t_msleep(50)) {
		assert_int_equal(cc_admin_json(c2, "status", &json), 0);
		i = strstr(json, "\"clients\":9") != NULL;
		free(json);
		if (i)
			break;
	}
	rss = rss_kb(d2.pid);
	rss0 = (long)(bytes / 1024);
	printf("# {\"test\":\"rss\",\"model_bytes\":%.0f,\"rss_bytes\":%ld,\"clients\":8,\"ratio\":%.4f,"
	       "\"limit_bytes\":%.0f}\n",
	       bytes, rss * 1024, (double)rss * 1024 / bytes, bytes * 1.05 + 16.0 * 1048576);
	/* the model exists once, resident, and the daemon adds little: within 5% + 16 MiB */
	assert_true((double)rss * 1024 >= bytes * 0.95);
#if defined(__SANITIZE_ADDRESS__)
	/* ASan's shadow memory and quarantine inflate every RSS: the bound is checked in the plain build */
	printf("# (ASan build: the RSS bound is not checked)\n");
#else
	if ((double)rss * 1024 > bytes * 1.05 + 16.0 * 1048576)
		fail_msg("ccd RSS %ld KiB > 1.05 x %ld KiB + 16 MiB", rss, rss0);
#endif
	close(fds[1]);
	for (i = 0; i < 8; i++)
		waitpid(kids[i], NULL, 0);
	cc_close(c2);
	assert_int_equal(t_ccd_stop(&d2), 0);
}

/* Where io_uring cannot be used, the load falls back to pread and says so in models and show. */
static void test_uring_fallback_reported(void **state)
{
	static const char *const env[] = {"CCM_NO_URING=1", NULL};
	char path[PATH_MAX], *json = NULL, mode[16], note[200];
	struct t_ccd d2;
	cc_client *c2;

	(void)state;
	assert_non_null(t_model("stories260K.gguf", path, sizeof(path)));
	assert_int_equal(t_ccd_start(&d2, NULL, env), 0);
	assert_int_equal(t_ccd_connect(&d2, &c2), 0);
	assert_int_equal(cc_model_load(c2, "m", path, "uring", NULL, NULL, NULL, &json), 0);
	assert_string_equal(json_str(json, "mode", mode, sizeof(mode)), "read");
	assert_string_equal(json_str(json, "requested_mode", mode, sizeof(mode)), "uring");
	json_str(json, "note", note, sizeof(note));
	if (!strstr(note, "pread") && !strstr(note, "read"))
		fail_msg("no fallback note: %s", json);
	free(json);
	assert_int_equal(cc_model_show(c2, "m", &json), 0);
	assert_non_null(strstr(json, note));
	free(json);
	cc_close(c2);
	assert_int_equal(t_ccd_stop(&d2), 0);
}

/* A preload of a file that is not a model shows as failed, with the reason, and ccd serves on. */
static void test_preload_bad_file(void **state)
{
	char arg[PATH_MAX + 16], *json = NULL, bad[PATH_MAX];
	const char *args[3];
	struct t_ccd d2;
	cc_client *c2;
	double t0;
	int failed = 0, fd;

	(void)state;
	snprintf(bad, sizeof(bad), "%s/notgguf.bin", d.dir);
	fd = open(bad, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello world, not a model", 24), 24);
	close(fd);
	snprintf(arg, sizeof(arg), "junk=%s", bad);
	args[0] = "--model";
	args[1] = arg;
	args[2] = NULL;
	assert_int_equal(t_ccd_start(&d2, args, NULL), 0);
	assert_int_equal(t_ccd_connect(&d2, &c2), 0);
	for (t0 = t_now(); t_now() - t0 < 10 * t_scale() && !failed; t_msleep(20)) {
		assert_int_equal(cc_admin_json(c2, "models", &json), 0);
		failed = strstr(json, "\"state\":\"failed\"") != NULL;
		if (failed)
			assert_non_null(strstr(json, "notgguf.bin"));
		free(json);
	}
	assert_true(failed);
	assert_int_equal(cc_model_unload(c2, "junk", 0), 0);
	cc_close(c2);
	assert_int_equal(t_ccd_stop(&d2), 0);
	unlink(bad);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_load_vendored_both_modes),
	    cmocka_unit_test(test_load_smollm2_both_modes),
	    cmocka_unit_test(test_load_errors),
	    cmocka_unit_test(test_corrupted_files),
	    cmocka_unit_test(test_model_matvec),
	    cmocka_unit_test(test_model_matvec_packed),
	    cmocka_unit_test(test_unload_waits_for_jobs),
	    cmocka_unit_test(test_unload_force_cancels_jobs),
	    cmocka_unit_test(test_load_needs_admin),
	    cmocka_unit_test(test_unload_cancels_load),
	    cmocka_unit_test(test_preload_and_memory),
	    cmocka_unit_test(test_preload_bad_file),
	    cmocka_unit_test(test_uring_fallback_reported),
	};

	(void)argc;
	(void)argv;
	if (!t_models_dir())
		return T_EXIT_SKIP;
	return cmocka_run_group_tests(tests, setup, teardown);
}
