/* SPDX-License-Identifier: MIT */
/* conf.c: the settings table, value parsing, and the config file reader. */
#define _GNU_SOURCE 1
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "util.h"

enum conf_type {
	CONF_T_COUNT = 0, /* a plain number */
	CONF_T_BYTES,     /* a size: accepts K/M/G/T suffixes */
	CONF_T_COUNT_ALL, /* a number, or -1 / "all" (stored as CCD_CONF_ALL) */
	CONF_T_CHOICE,    /* one of choices[] (stored as its index; CCD_CONF_UNSET: not set) */
	CONF_T_TEXT,      /* printable text, kept in conf->s[slot] */
	CONF_T_TYPE_COUNT
};

struct conf_def {
	const char *name;
	unsigned char type; /* enum conf_type */
	uint64_t min, max, def;
	const char *help;
	const char *const *choices; /* CONF_T_CHOICE: NULL-terminated */
	const char *text_def;       /* CONF_T_TEXT: the default */
	unsigned char slot;         /* CONF_T_TEXT: enum ccd_conf_slot */
};

/* In the order of enum ccg_backend (gpu/ccg.h): main.c hands the name to ccg_backend_lookup(). */
static const char *const backend_choices[] = {"auto", "cpu", "opencl", NULL};
static const char *const off_on_choices[] = {"off", "on", NULL};

#define KiB ((uint64_t)1 << 10)
#define MiB ((uint64_t)1 << 20)
#define GiB ((uint64_t)1 << 30)
#define TiB ((uint64_t)1 << 40)

/*
 * Every client-controlled resource has its limit here, and every tunable
 * its bounds; main.c, server.c and the pool read the values from struct
 * ccd_conf, never from anywhere else.
 */
/* clang-format off */
static const struct conf_def defs[CCD_CONF_COUNT] = {
	[CCD_CONF_MAX_MESSAGE_BYTES] = { "max_message_bytes", CONF_T_BYTES, 4 * KiB, 1 * GiB, 1 * MiB,
		"largest request ccd accepts; ZeroMQ drops a peer sending more" },
	[CCD_CONF_MAX_CLIENTS] = { "max_clients", CONF_T_COUNT, 1, 65536, 256,
		"connected clients (after hello) at once" },
	[CCD_CONF_MAX_REGIONS_PER_CLIENT] = { "max_regions_per_client", CONF_T_COUNT, 1, 1 << 20, 4096,
		"shared-memory regions one client may register" },
	[CCD_CONF_MAX_BYTES_PER_CLIENT] = { "max_bytes_per_client", CONF_T_BYTES, 4 * KiB, 1024 * TiB, 64 * GiB,
		"total bytes of one client's regions" },
	[CCD_CONF_MAX_INFLIGHT_PER_CLIENT] = { "max_inflight_per_client", CONF_T_COUNT, 1, 65536, 64,
		"jobs one client may have submitted and not yet answered" },
	[CCD_CONF_THREADS] = { "threads", CONF_T_COUNT, 0, 4096, 0,
		"worker threads over all NUMA nodes (0: one per online CPU, at least one per node)" },
	[CCD_CONF_INLINE_MAX_ELEMENTS] = { "inline_max_elements", CONF_T_COUNT, 0, 1 << 24, 4096,
		"vector ops up to this many elements run on the front-end thread (lowest latency)" },
	[CCD_CONF_INLINE_MAX_MATMUL] = { "inline_max_matmul", CONF_T_COUNT, 0, 1 << 30, 32768,
		"matmul/matvec up to this many multiply-adds run on the front-end thread" },
	[CCD_CONF_SPLIT_MIN_ELEMENTS] = { "split_min_elements", CONF_T_COUNT, 1024, (uint64_t)1 << 40, 256 * 1024,
		"element-wise ops are split over the node's workers in parts of at least this many elements" },
	[CCD_CONF_SPLIT_MIN_MATMUL] = { "split_min_matmul", CONF_T_COUNT, 1024, (uint64_t)1 << 50, 512 * 1024,
		"matmul/matvec are split by rows in parts of at least this many multiply-adds" },
	[CCD_CONF_REAP_INTERVAL_MS] = { "reap_interval_ms", CONF_T_COUNT, 100, 60000, 1000,
		"how often ccd checks that each client's process is still alive" },
	[CCD_CONF_MAX_MODELS] = { "max_models", CONF_T_COUNT, 1, 1024, 16,
		"models that may be registered at once (loaded, loading or failed)" },
	[CCD_CONF_ENGINE_THREADS] = { "engine_threads", CONF_T_COUNT, 0, 4096, 0,
		"threads of one inference job (generate, logits); 0: every CPU" },
	[CCD_CONF_MAX_CTX] = { "max_ctx", CONF_T_COUNT, 16, 1 << 20, 4096,
		"context (positions) of one generation at most (also bounded by the model's)" },
	[CCD_CONF_MAX_GEN_TOKENS] = { "max_gen_tokens", CONF_T_COUNT, 1, 1 << 20, 4096,
		"tokens one generate request may ask for" },
	[CCD_CONF_MAX_SESSIONS_PER_CLIENT] = { "max_sessions_per_client", CONF_T_COUNT, 1, 65536, 16,
		"inference sessions one client may hold (a one-shot generate counts while it runs)" },
	[CCD_CONF_KV_BUDGET] = { "kv_budget", CONF_T_BYTES, 1 * MiB, 1024 * TiB, 4 * GiB,
		"KV cache memory of all sessions together; a session past it is refused" },
	[CCD_CONF_SESSION_CTX] = { "session_ctx", CONF_T_COUNT, 16, 1 << 20, 2048,
		"context (positions) of a session when its client does not say (bounded by max_ctx)" },
	[CCD_CONF_SESSION_IDLE_S] = { "session_idle_s", CONF_T_COUNT, 1, 30 * 24 * 3600, 600,
		"an idle session is freed after this many seconds without a generation" },
	[CCD_CONF_BATCH_TOKENS] = { "batch_tokens", CONF_T_COUNT, 1, 4096, 64,
		"tokens of one batched step of a model: decode tokens of every generating session first, "
		"then prompt chunks (chunked prefill)" },
	[CCD_CONF_OPENCL_DEVICE] = { "opencl_device", CONF_T_TEXT, 0, 0, 0,
		"OpenCL device: auto ($CC_OPENCL_DEVICE, else the first GPU, else the first device), none, "
		"an index (ccctl kernels lists them) or a case-insensitive part of \"platform: name\"",
		.text_def = "auto", .slot = CCD_CONF_SLOT_OPENCL_DEVICE },
	[CCD_CONF_BACKEND] = { "backend", CONF_T_CHOICE, 0, 2, CCD_CONF_UNSET,
		"where vector ops run: auto (on the OpenCL device from each op's measured crossover size up), "
		"cpu (libcck only) or opencl (the device whenever there is one); unset: $CC_BACKEND, else auto",
		.choices = backend_choices },
	[CCD_CONF_GPU_LAYERS] = { "gpu_layers", CONF_T_COUNT_ALL, 0, 1 << 16, 0,
		"layers of each model loaded from then on whose matrices go to the OpenCL device, the last ones "
		"(-1 or all: every one and the output matrix; 0: none); only q4_0, q4_1, q8_0, q4_K and q6_K "
		"weights go" },
	[CCD_CONF_PACK_WEIGHTS] = { "pack_weights", CONF_T_CHOICE, 0, 1, 0,
		"models loaded from then on in uring or read mode: on lays their q4_1 and q8_0 matrices out in groups "
		"of 16 rows for libcck's packed kernels where the CPU has AVX512-VNNI (about twice the batched "
		"throughput; their sums run in another order, so outputs no longer match llama.cpp's bit for bit); "
		"off: llama.cpp's arithmetic", .choices = off_on_choices },
	[CCD_CONF_SHARE_PREFIXES] = { "share_prefixes", CONF_T_CHOICE, 0, 1, 1,
		"a prompt that starts an empty context takes the KV cache rows of the longest prefix of it that another "
		"session of the model has evaluated as prompt (the same bits: outputs do not change), and one sharing "
		"most of an earlier prompt still running waits for it instead of computing it again",
		.choices = off_on_choices },
};
/* clang-format on */

void ccd_conf_defaults(struct ccd_conf *conf)
{
	int i;

	memset(conf, 0, sizeof(*conf));
	for (i = 0; i < CCD_CONF_COUNT; i++) {
		conf->v[i] = defs[i].def;
		if (defs[i].type == CONF_T_TEXT)
			snprintf(conf->s[defs[i].slot], sizeof(conf->s[0]), "%s", defs[i].text_def);
	}
}

const char *ccd_conf_name(int key)
{
	if (key < 0 || key >= CCD_CONF_COUNT)
		return NULL;
	return defs[key].name;
}

const char *ccd_conf_str(const struct ccd_conf *conf, int key)
{
	const struct conf_def *d;

	if (key < 0 || key >= CCD_CONF_COUNT)
		return NULL;
	d = &defs[key];
	if (d->type == CONF_T_TEXT)
		return conf->s[d->slot];
	if (d->type == CONF_T_CHOICE && conf->v[key] <= d->max)
		return d->choices[conf->v[key]];
	return NULL;
}

/* "64G" for whole binary multiples, else the plain number. */
static void fmt_value(char *buf, size_t size, const struct conf_def *d, uint64_t v)
{
	static const char suffix[] = "KMGT";
	int i;

	if (d->type == CONF_T_COUNT_ALL && v == CCD_CONF_ALL) {
		snprintf(buf, size, "-1 (all)");
		return;
	}
	if (d->type == CONF_T_CHOICE) {
		snprintf(buf, size, "%s", v <= d->max ? d->choices[v] : "unset");
		return;
	}
	if (d->type == CONF_T_BYTES && v) {
		for (i = 3; i >= 0; i--) {
			uint64_t unit = (uint64_t)1 << (10 * (i + 1));

			if (v % unit == 0) {
				snprintf(buf, size, "%" PRIu64 "%c", v / unit, suffix[i]);
				return;
			}
		}
	}
	snprintf(buf, size, "%" PRIu64, v);
}

/* The upper bound of d as shown: "65536", or "65536 or -1 (all)" for a count that takes all. */
static void fmt_max(char *buf, size_t size, const struct conf_def *d)
{
	size_t len;

	fmt_value(buf, size, d, d->max);
	len = strlen(buf);
	if (d->type == CONF_T_COUNT_ALL)
		snprintf(buf + len, size - len, " or -1 (all)");
}

/* Parse a non-negative decimal, with a K/M/G/T[iB] suffix for byte sizes. */
static int parse_value(const struct conf_def *d, const char *s, uint64_t *ret)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	if (d->type == CONF_T_COUNT_ALL && (!strcmp(s, "-1") || !strcmp(s, "all"))) {
		*ret = CCD_CONF_ALL;
		return 0;
	}
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	if (d->type == CONF_T_BYTES && *end) {
		switch (*end) {
		case 'k':
		case 'K':
			shift = 10;
			break;
		case 'm':
		case 'M':
			shift = 20;
			break;
		case 'g':
		case 'G':
			shift = 30;
			break;
		case 't':
		case 'T':
			shift = 40;
			break;
		default:
			return -EINVAL;
		}
		end++;
		if (end[0] == 'i' && end[1] == 'B')
			end += 2;
		else if (end[0] == 'B')
			end++;
	}
	while (isspace((unsigned char)*end))
		end++;
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*ret = (uint64_t)v << shift;
	return 0;
}

/* The choices of d as "a, b or c". */
static void fmt_choices(char *buf, size_t size, const struct conf_def *d)
{
	size_t len = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; d->choices[i] && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s",
		                        i == 0              ? ""
		                        : d->choices[i + 1] ? ", "
		                                            : " or ",
		                        d->choices[i]);
}

/* A choice (one of its names) or a text (printable, not empty, shorter than CCD_CONF_STR_MAX). */
static int set_text(struct ccd_conf *conf, const struct conf_def *d, const char *value, char *err, size_t errsize)
{
	char shown[64], list[64];
	size_t i, n = strlen(value);

	ccd_sanitize(shown, sizeof(shown), value);
	if (d->type == CONF_T_CHOICE) {
		for (i = 0; d->choices[i]; i++) {
			if (!strcmp(value, d->choices[i])) {
				conf->v[d - defs] = i;
				return 0;
			}
		}
		fmt_choices(list, sizeof(list), d);
		snprintf(err, errsize, "%s = '%s': expected %s", d->name, shown, list);
		return -EINVAL;
	}
	for (i = 0; i < n; i++)
		if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
			break;
	if (n == 0 || n >= CCD_CONF_STR_MAX || i < n) {
		snprintf(err, errsize, "%s = '%s': expected printable text of 1 to %d bytes", d->name, shown,
		         CCD_CONF_STR_MAX - 1);
		return -EINVAL;
	}
	memcpy(conf->s[d->slot], value, n + 1);
	return 0;
}

int ccd_conf_set(struct ccd_conf *conf, const char *name, const char *value, char *err, size_t errsize)
{
	char shown[64], lo[32], hi[32];
	const struct conf_def *d = NULL;
	uint64_t v;
	int i, r;

	for (i = 0; i < CCD_CONF_COUNT; i++)
		if (!strcmp(name, defs[i].name))
			d = &defs[i];
	if (!d) {
		ccd_sanitize(shown, sizeof(shown), name);
		snprintf(err, errsize, "unknown setting '%s' (ccd --help lists them)", shown);
		return -ENOENT;
	}
	if (d->type == CONF_T_CHOICE || d->type == CONF_T_TEXT)
		return set_text(conf, d, value, err, errsize);
	fmt_value(lo, sizeof(lo), d, d->min);
	fmt_max(hi, sizeof(hi), d);
	ccd_sanitize(shown, sizeof(shown), value);
	r = parse_value(d, value, &v);
	if (r == -EINVAL) {
		snprintf(err, errsize, "%s = '%s' is not a %s (min %s, max %s)", d->name, shown,
		         d->type == CONF_T_BYTES ? "size (a number with an optional K/M/G/T suffix)" : "number", lo,
		         hi);
		return r;
	}
	if (r || ((v < d->min || v > d->max) && !(d->type == CONF_T_COUNT_ALL && v == CCD_CONF_ALL))) {
		snprintf(err, errsize, "%s = %s out of range (min %s, max %s)", d->name, shown, lo, hi);
		return -ERANGE;
	}
	conf->v[d - defs] = v;
	return 0;
}

int ccd_conf_set_option(struct ccd_conf *conf, const char *arg, char *err, size_t errsize)
{
	char name[128], shown[64];
	const char *eq = strchr(arg, '=');
	size_t len;

	if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof(name)) {
		ccd_sanitize(shown, sizeof(shown), arg);
		snprintf(err, errsize, "-o '%s': expected name=value", shown);
		return -EINVAL;
	}
	len = (size_t)(eq - arg);
	memcpy(name, arg, len);
	name[len] = 0;
	return ccd_conf_set(conf, name, eq + 1, err, errsize);
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

int ccd_conf_load(struct ccd_conf *conf, const char *path, char *err, size_t errsize)
{
	struct ccd_conf tmp = *conf;
	char msg[256], *line = NULL, *name, *value, *p;
	size_t cap = 0;
	unsigned lineno = 0;
	FILE *f;
	int r = 0;

	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		snprintf(err, errsize, "cannot read config file %s: %s", path, strerror(-r));
		return r;
	}
	while (getline(&line, &cap, f) >= 0) {
		lineno++;
		p = strchr(line, '#');
		if (p)
			*p = 0;
		name = trim(line);
		if (!*name)
			continue;
		p = strchr(name, '=');
		if (!p) {
			snprintf(err, errsize, "%s:%u: expected 'name = value'", path, lineno);
			r = -EINVAL;
			goto out_free_line;
		}
		*p = 0;
		value = trim(p + 1);
		name = trim(name);
		r = ccd_conf_set(&tmp, name, value, msg, sizeof(msg));
		if (r < 0) {
			snprintf(err, errsize, "%s:%u: %s", path, lineno, msg);
			goto out_free_line;
		}
	}
	if (ferror(f)) {
		r = -EIO;
		snprintf(err, errsize, "cannot read config file %s", path);
		goto out_free_line;
	}
	*conf = tmp;
out_free_line:
	free(line);
	fclose(f);
	return r;
}

void ccd_conf_print_help(FILE *f)
{
	char lo[32], hi[32], def[32], list[64];
	int i;

	for (i = 0; i < CCD_CONF_COUNT; i++) {
		const struct conf_def *d = &defs[i];

		if (d->type == CONF_T_TEXT) {
			fprintf(f, "  %-24s default %s\n  %-24s %s\n", d->name, d->text_def, "", d->help);
			continue;
		}
		if (d->type == CONF_T_CHOICE) {
			fmt_choices(list, sizeof(list), d);
			fprintf(f, "  %-24s %s\n  %-24s %s\n", d->name, list, "", d->help);
			continue;
		}
		fmt_value(lo, sizeof(lo), d, d->min);
		fmt_max(hi, sizeof(hi), d);
		fmt_value(def, sizeof(def), d, d->def);
		fprintf(f, "  %-24s default %s, min %s, max %s\n  %-24s %s\n", d->name, def, lo, hi, "", d->help);
	}
}

void ccd_conf_log(const struct ccd_conf *conf)
{
	char v[32];
	int i;

	for (i = 0; i < CCD_CONF_COUNT; i++) {
		if (defs[i].type == CONF_T_TEXT) {
			ccd_debug("setting %s = %s", defs[i].name, conf->s[defs[i].slot]);
			continue;
		}
		fmt_value(v, sizeof(v), &defs[i], conf->v[i]);
		ccd_debug("setting %s = %s", defs[i].name, v);
	}
}
