/* SPDX-License-Identifier: MIT */
/* ccctl.c: the admin tool of ccd (status, clients, kernels, models, sessions, generate, bench, shutdown), a client of
 * libcc only. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cc.h"

#define EXIT_USAGE 2
#define BENCH_COUNT_DEFAULT 2000
#define BENCH_INFLIGHT 32
#define BENCH_SMALL_N 8
#define BENCH_BIG_N (1u << 20)
#define BENCH_BIG_REPS 21
#define SHUTDOWN_WAIT_S 10

static const char *prog = "ccctl";

__attribute__((format(printf, 1, 2))) static void die_msg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: ccctl [--endpoint URL] [--json] [--count N] COMMAND [ARG]...\n"
	        "\n"
	        "commands:\n"
	        "  status     daemon version, pid, uptime, kernel tier, NUMA nodes, workers, clients, regions, jobs,\n"
	        "             sessions; per model: sessions, generating, tokens generated, tokens/s over the last\n"
	        "             minute\n"
	        "  clients    connected clients: id, pid, uid, name, regions, bytes, jobs\n"
	        "  kernels [--backend auto|cpu|opencl] [--device SEL] [--calibrate]\n"
	        "             kernel tier in use, tiers the host supports, ops by kind; the backend, the OpenCL\n"
	        "             devices (the one in use, or why none) and each op's crossover size to the device;\n"
	        "             the options change them first (ccd's user or root): --backend for every client's\n"
	        "             later ops; --device (none, an index, a part of the name) until ccd has set OpenCL up;\n"
	        "             --calibrate measures every crossover again in the background\n"
	        "  models     loaded models: name, state, arch, parameters, bytes, mode, NUMA placement, users,\n"
	        "             sessions, generating, tokens generated, tokens/s over the last minute\n"
	        "  sessions   inference sessions: id, client, pid, model, context used, KV cache, state, tokens, idle\n"
	        "  load NAME PATH [--mode uring|mmap] [--numa interleave|node=N|local]\n"
	        "             load a GGUF model into ccd, shared by every client (progress bar on a terminal)\n"
	        "  unload NAME [--force]\n"
	        "             unload a model once the jobs using it are done (--force: cancel them)\n"
	        "  show NAME  a model's metadata (large arrays as counts), tensor types, tokenizer, context, tensors\n"
	        "  generate NAME PROMPT [--max-tokens N] [--temp T] [--top-k K] [--top-p P] [--min-p P]\n"
	        "             [--repeat-penalty R] [--seed S] [--stop TEXT]... [--raw] [--ignore-eos]\n"
	        "             generate text, streamed to stdout as it comes (--temp 0: greedy; --raw: no chat\n"
	        "             template); a summary goes to stderr on a terminal or with -v; Ctrl-C cancels it\n"
	        "             (exit 130); --json prints one object with the whole text and the token ids when done;\n"
	        "             --ignore-eos: generate all --max-tokens even past an end of text (benchmarks, tests)\n"
	        "  tokenize NAME TEXT [--no-bos]   the token ids of TEXT (special-token texts are not parsed)\n"
	        "  logits NAME TEXT [--top K]      the K best next tokens after TEXT (tokenized as tokenize does)\n"
	        "  bench      round-trip latency and throughput through the daemon\n"
	        "  shutdown   stop the daemon cleanly\n"
	        "  help       this text\n"
	        "\n"
	        "options:\n"
	        "  -e, --endpoint URL  ccd's endpoint (default: $CC_ENDPOINT, else the per-user socket)\n"
	        "  -j, --json          print one JSON document on stdout, for scripts\n"
	        "  -n, --count N       bench: round trips per measurement (default %d)\n"
	        "  -m, --mode MODE     load: uring (default) or mmap\n"
	        "      --numa WHERE    load: interleave (default), node=N or local\n"
	        "  -f, --force         unload: cancel the jobs using the model\n"
	        "  -v, --verbose       generate: the summary line on stderr even when it is not a terminal\n"
	        "  -h, --help          this text\n"
	        "  -V, --version       print the version\n",
	        BENCH_COUNT_DEFAULT);
}

/* ---- a small JSON reader for libcc's admin documents ------------------------------------ */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
	enum jtype t;
	int b;
	double num;
	char *s;          /* J_STR: the text; J_NUM: the number as written (exact for uint64) */
	struct jv *items; /* J_ARR, J_OBJ */
	char **keys;      /* J_OBJ */
	size_t n;
};

struct jp {
	const char *p;
	int depth;
};

static void jv_clear(struct jv *v)
{
	size_t i;

	for (i = 0; i < v->n; i++) {
		jv_clear(&v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->s);
	memset(v, 0, sizeof(*v));
}

static void skip_ws(struct jp *j)
{
	while (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')
		j->p++;
}

static int hex4(const char *p, unsigned *ret)
{
	unsigned v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		char ch = p[i];

		v <<= 4;
		if (ch >= '0' && ch <= '9')
			v |= (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v |= (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			v |= (unsigned)(ch - 'A' + 10);
		else
			return -EINVAL;
	}
	*ret = v;
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A JSON string at j->p (on its opening quote) into a malloc'd *ret. */
static int parse_str(struct jp *j, char **ret)
{
	const char *p = j->p + 1;
	char *out, *o;

	/* the unescaped text is never longer than the escaped one */
	out = malloc(strlen(p) + 1);
	if (!out)
		return -ENOMEM;
	o = out;
	while (*p != '"') {
		unsigned cp, lo;

		if (*p == '\0' || (unsigned char)*p < 0x20)
			goto bad;
		if (*p != '\\') {
			*o++ = *p++;
			continue;
		}
		p++;
		switch (*p) {
		case '"':
		case '\\':
		case '/':
			*o++ = *p;
			break;
		case 'b':
			*o++ = '\b';
			break;
		case 'f':
			*o++ = '\f';
			break;
		case 'n':
			*o++ = '\n';
			break;
		case 'r':
			*o++ = '\r';
			break;
		case 't':
			*o++ = '\t';
			break;
		case 'u':
			if (hex4(p + 1, &cp) < 0)
				goto bad;
			p += 4;
			if (cp >= 0xd800 && cp <= 0xdbff && p[1] == '\\' && p[2] == 'u' && hex4(p + 3, &lo) == 0 &&
			    lo >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				p += 6;
			} else if (cp >= 0xd800 && cp <= 0xdfff) {
				cp = 0xfffd;
			}
			o += put_utf8(o, cp);
			break;
		default:
			goto bad;
		}
		p++;
	}
	*o = '\0';
	j->p = p + 1;
	*ret = out;
	return 0;
bad:
	free(out);
	return -EBADMSG;
}

static int parse_value(struct jp *j, struct jv *v);

/* Append one (key, value) to an array or object, growing it. */
static int push(struct jv *v, char *key, struct jv *item)
{
	struct jv *items = realloc(v->items, (v->n + 1) * sizeof(*items));

	if (!items)
		return -ENOMEM;
	v->items = items;
	if (v->t == J_OBJ) {
		char **keys = realloc(v->keys, (v->n + 1) * sizeof(*keys));

		if (!keys)
			return -ENOMEM;
		v->keys = keys;
		keys[v->n] = key;
	}
	items[v->n++] = *item;
	return 0;
}

static int parse_container(struct jp *j, struct jv *v, char close)
{
	int r;

	j->p++;
	skip_ws(j);
	if (*j->p == close) {
		j->p++;
		return 0;
	}
	for (;;) {
		struct jv item = {0};
		char *key = NULL;

		skip_ws(j);
		if (close == '}') {
			if (*j->p != '"')
				return -EBADMSG;
			r = parse_str(j, &key);
			if (r < 0)
				return r;
			skip_ws(j);
			if (*j->p != ':') {
				free(key);
				return -EBADMSG;
			}
			j->p++;
		}
		r = parse_value(j, &item);
		if (r == 0)
			r = push(v, key, &item);
		if (r < 0) {
			free(key);
			jv_clear(&item);
			return r;
		}
		skip_ws(j);
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p == close) {
			j->p++;
			return 0;
		}
		return -EBADMSG;
	}
}

static int parse_value(struct jp *j, struct jv *v)
{
	int r;

	skip_ws(j);
	memset(v, 0, sizeof(*v));
	if (*j->p == '{' || *j->p == '[') {
		if (++j->depth > 32)
			return -EBADMSG;
		v->t = *j->p == '{' ? J_OBJ : J_ARR;
		r = parse_container(j, v, *j->p == '{' ? '}' : ']');
		j->depth--;
		if (r < 0)
			jv_clear(v);
		return r;
	}
	if (*j->p == '"') {
		v->t = J_STR;
		return parse_str(j, &v->s);
	}
	if (strncmp(j->p, "true", 4) == 0 || strncmp(j->p, "false", 5) == 0) {
		v->t = J_BOOL;
		v->b = j->p[0] == 't';
		j->p += v->b ? 4 : 5;
		return 0;
	}
	if (strncmp(j->p, "null", 4) == 0) {
		v->t = J_NULL;
		j->p += 4;
		return 0;
	}
	{
		char *end;
		size_t len;

		v->num = strtod(j->p, &end);
		if (end == j->p)
			return -EBADMSG;
		len = (size_t)(end - j->p);
		v->s = malloc(len + 1);
		if (!v->s)
			return -ENOMEM;
		memcpy(v->s, j->p, len);
		v->s[len] = '\0';
		v->t = J_NUM;
		j->p = end;
		return 0;
	}
}

static int json_parse(const char *text, struct jv *ret)
{
	struct jp j = {.p = text};
	struct jv v;
	int r;

	r = parse_value(&j, &v);
	if (r < 0)
		return r;
	skip_ws(&j);
	if (*j.p) {
		jv_clear(&v);
		return -EBADMSG;
	}
	*ret = v;
	return 0;
}

static const struct jv *jget(const struct jv *o, const char *key)
{
	static const struct jv none = {.t = J_NULL};
	size_t i;

	if (o->t == J_OBJ)
		for (i = 0; i < o->n; i++)
			if (strcmp(o->keys[i], key) == 0)
				return &o->items[i];
	return &none;
}

/* A value as display text: numbers as written, strings as they are, "-" when absent. */
static const char *jtext(const struct jv *v)
{
	if (v->t == J_NUM || v->t == J_STR)
		return v->s;
	if (v->t == J_BOOL)
		return v->b ? "yes" : "no";
	return "-";
}

static double jnum(const struct jv *v)
{
	return v->t == J_NUM ? v->num : 0.0;
}

/* ---- human output ------------------------------------------------------------------------ */

static void human_bytes(double b, char *buf, size_t size)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	size_t u = 0;

	while (b >= 1024 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		b /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%.0f B", b);
	else
		snprintf(buf, size, "%.1f %s", b, unit[u]);
}

static void human_duration(double s, char *buf, size_t size)
{
	unsigned long long t = s > 0 ? (unsigned long long)s : 0;
	unsigned long long d = t / 86400, h = t / 3600 % 24, m = t / 60 % 60, sec = t % 60;

	if (d)
		snprintf(buf, size, "%llud %02lluh %02llum %02llus", d, h, m, sec);
	else if (h)
		snprintf(buf, size, "%lluh %02llum %02llus", h, m, sec);
	else if (m)
		snprintf(buf, size, "%llum %02llus", m, sec);
	else
		snprintf(buf, size, "%.1fs", s > 0 ? s : 0.0);
}

/* Client-supplied text made safe for a terminal: control bytes become '?'. */
static void sanitize(const char *s, char *buf, size_t size)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < size; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	buf[i] = '\0';
}

static int print_serving(const struct jv *list);

static int print_status(const struct jv *st)
{
	char up[64], bytes[32];
	const struct jv *sim = jget(st, "numa_simulated");

	human_duration(jnum(jget(st, "uptime_s")), up, sizeof(up));
	human_bytes(jnum(jget(st, "region_bytes")), bytes, sizeof(bytes));
	printf("version:      %s\n", jtext(jget(st, "version")));
	printf("pid:          %s\n", jtext(jget(st, "pid")));
	printf("uptime:       %s\n", up);
	printf("kernel tier:  %s\n", jtext(jget(st, "tier")));
	printf("numa nodes:   %s%s\n", jtext(jget(st, "numa_nodes")), sim->t == J_BOOL && sim->b ? " (simulated)" : "");
	printf("workers:      %s\n", jtext(jget(st, "workers")));
	printf("clients:      %s\n", jtext(jget(st, "clients")));
	printf("regions:      %s (%s)\n", jtext(jget(st, "regions")), bytes);
	printf("jobs done:    %s\n", jtext(jget(st, "jobs_done")));
	printf("jobs failed:  %s\n", jtext(jget(st, "jobs_failed")));
	human_bytes(jnum(jget(st, "model_bytes")), bytes, sizeof(bytes));
	printf("models:       %s (%s of weights, each loaded once for every client)\n", jtext(jget(st, "models")),
	       bytes);
	human_bytes(jnum(jget(st, "kv_bytes")), bytes, sizeof(bytes));
	printf("sessions:     %s (KV caches %s)\n", jtext(jget(st, "sessions")), bytes);
	return print_serving(jget(st, "model_list"));
}

#define CLIENT_COLS 9

static int print_clients(const struct jv *doc)
{
	static const char *const head[CLIENT_COLS] = {"ID",    "PID",  "UID",       "NAME", "REGIONS",
	                                              "BYTES", "JOBS", "IN_FLIGHT", "NODE"};
	static const char *const key[CLIENT_COLS] = {"id",    "pid",  "uid",       "name", "regions",
	                                             "bytes", "jobs", "in_flight", "node"};
	const struct jv *list = jget(doc, "clients");
	size_t rows = list->t == J_ARR ? list->n : 0, i, col, width[CLIENT_COLS];
	char(*cell)[CLIENT_COLS][64];

	cell = calloc(rows ? rows : 1, sizeof(*cell));
	if (!cell)
		return -ENOMEM;
	for (col = 0; col < CLIENT_COLS; col++)
		width[col] = strlen(head[col]);
	for (i = 0; i < rows; i++) {
		for (col = 0; col < CLIENT_COLS; col++) {
			const struct jv *v = jget(&list->items[i], key[col]);

			if (col == 5)
				human_bytes(jnum(v), cell[i][col], sizeof(cell[i][col]));
			else
				sanitize(jtext(v), cell[i][col], sizeof(cell[i][col]));
			if (strlen(cell[i][col]) > width[col])
				width[col] = strlen(cell[i][col]);
		}
	}
	/* numbers right-aligned, the name left-aligned; the last column carries no padding */
	for (col = 0; col < CLIENT_COLS; col++)
		printf(col == 3 ? "%-*s%s" : "%*s%s", (int)width[col], head[col], col + 1 < CLIENT_COLS ? "  " : "\n");
	for (i = 0; i < rows; i++)
		for (col = 0; col < CLIENT_COLS; col++)
			printf(col == 3 ? "%-*s%s" : "%*s%s", (int)width[col], cell[i][col],
			       col + 1 < CLIENT_COLS ? "  " : "\n");
	free(cell);
	return 0;
}

/* 1 if the kernels document has an OpenCL device in use. */
static int opencl_in_use(const struct jv *doc)
{
	const struct jv *devs = jget(doc, "devices");
	size_t i;

	for (i = 0; devs->t == J_ARR && i < devs->n; i++)
		if (jget(&devs->items[i], "selected")->t == J_BOOL && jget(&devs->items[i], "selected")->b)
			return 1;
	return 0;
}

/* The OpenCL part of kernels: the backend, the devices (the one in use marked), or why there is none. */
static void print_opencl(const struct jv *doc)
{
	const struct jv *devs = jget(doc, "devices");
	char text[256], mem[32], alloc[32];
	int have = opencl_in_use(doc);
	size_t i;

	printf("backend:  %s\n", jtext(jget(doc, "backend")));
	sanitize(jtext(jget(doc, "opencl")), text, sizeof(text));
	if (have)
		printf("opencl:   %s\n", text);
	else
		printf("opencl:   none: %s; ops run on the CPU\n", text);
	for (i = 0; devs->t == J_ARR && i < devs->n; i++) {
		const struct jv *d = &devs->items[i];
		char plat[128], name[160], ver[96], drv[96];
		int sel = jget(d, "selected")->t == J_BOOL && jget(d, "selected")->b;

		sanitize(jtext(jget(d, "platform")), plat, sizeof(plat));
		sanitize(jtext(jget(d, "name")), name, sizeof(name));
		sanitize(jtext(jget(d, "version")), ver, sizeof(ver));
		sanitize(jtext(jget(d, "driver")), drv, sizeof(drv));
		human_bytes(jnum(jget(d, "global_mem")), mem, sizeof(mem));
		human_bytes(jnum(jget(d, "max_alloc")), alloc, sizeof(alloc));
		printf("  %s %s: %s: %s\n", sel ? "*" : " ", jtext(jget(d, "index")), plat, name);
		printf("       %s, %s compute units, %s (buffers up to %s)%s%s; %s, driver %s\n",
		       jtext(jget(d, "type")), jtext(jget(d, "compute_units")), mem, alloc,
		       jget(d, "host_unified")->b ? ", host memory" : "", jget(d, "fp64")->b ? ", fp64" : "", ver, drv);
	}
}

/* One line (wrapped at 100 columns) of the ops whose crossover shows as label. */
static void print_crossover_group(const struct jv *xo, const char *label, const char *state, const char *n)
{
	size_t i, col = 0, shown = 0;

	for (i = 0; i < xo->n; i++) {
		const struct jv *x = &xo->items[i];
		char op[64];

		if (strcmp(jtext(jget(x, "state")), state) || (n && strcmp(jtext(jget(x, "n")), n)))
			continue;
		sanitize(jtext(jget(x, "op")), op, sizeof(op));
		if (shown == 0) {
			printf("  %-18s", label);
			col = 20;
		} else if (col + 1 + strlen(op) > 100) {
			printf("\n  %-18s", "");
			col = 20;
		}
		printf(" %s", op);
		col += 1 + strlen(op);
		shown++;
	}
	if (shown)
		printf("\n");
}

/*
 * The crossover table: from which size (elements; matmul: multiply-adds) the auto backend runs each op on the
 * device, the ops of one size on one line, smallest first; then "never" and "not measured yet".
 */
static void print_crossovers(const struct jv *doc)
{
	const struct jv *xo = jget(doc, "crossovers");
	const char *cache = jtext(jget(doc, "crossover_cache"));
	double done = 0;
	size_t i;

	if (!opencl_in_use(doc)) {
		printf("crossovers: none (no OpenCL device: every op runs on the CPU)\n");
		return;
	}
	if (xo->t != J_ARR || xo->n == 0)
		return;
	printf("crossovers (size from which the auto backend runs an op on the device%s%s):\n",
	       strcmp(cache, "-") && cache[0] ? "; kept in " : "", strcmp(cache, "-") && cache[0] ? cache : "");
	for (;;) {
		const struct jv *next = NULL;
		char label[48];

		/* the smallest measured size above the ones printed */
		for (i = 0; i < xo->n; i++) {
			const struct jv *x = &xo->items[i], *n = jget(x, "n");

			if (!strcmp(jtext(jget(x, "state")), "measured") && jnum(n) > done &&
			    (!next || jnum(n) < jnum(next)))
				next = n;
		}
		if (!next)
			break;
		snprintf(label, sizeof(label), "from %s:", jtext(next));
		print_crossover_group(xo, label, "measured", jtext(next));
		done = jnum(next);
	}
	print_crossover_group(xo, "never:", "never", NULL);
	print_crossover_group(xo, "not measured yet:", "unknown", NULL);
}

static void print_kernels(const struct jv *doc)
{
	static const char *const kinds[] = {"unary", "vector", "binary", "reduce", "reduce2", "matrix"};
	const struct jv *tiers = jget(doc, "tiers"), *ops = jget(doc, "ops");
	size_t i, k;

	printf("tier:     %s\n", jtext(jget(doc, "tier")));
	printf("tiers:   ");
	for (i = 0; tiers->t == J_ARR && i < tiers->n; i++)
		printf(" %s", jtext(&tiers->items[i]));
	printf("\nthreads:  %s\n", jtext(jget(doc, "threads")));
	printf("ops:      %zu\n", ops->t == J_ARR ? ops->n : 0);
	if (ops->t != J_ARR) {
		print_opencl(doc);
		print_crossovers(doc);
		return;
	}
	/* one line (wrapped) per kind, in libcck's order; kinds we do not know go last */
	for (k = 0; k <= sizeof(kinds) / sizeof(kinds[0]); k++) {
		size_t col = 0, shown = 0;

		for (i = 0; i < ops->n; i++) {
			const char *kind = jtext(jget(&ops->items[i], "kind"));
			const char *name = jtext(jget(&ops->items[i], "name"));
			size_t j, known = 0;

			for (j = 0; j < sizeof(kinds) / sizeof(kinds[0]); j++)
				known |= strcmp(kind, kinds[j]) == 0;
			if (k < sizeof(kinds) / sizeof(kinds[0]) ? strcmp(kind, kinds[k]) != 0 : known)
				continue;
			if (shown == 0) {
				printf("  %-8s", k < sizeof(kinds) / sizeof(kinds[0]) ? kinds[k] : "other");
				col = 10;
			} else if (col + 1 + strlen(name) > 100) {
				printf("\n  %-8s", "");
				col = 10;
			}
			printf(" %s", name);
			col += 1 + strlen(name);
			shown++;
		}
		if (shown)
			printf("\n");
	}
	print_opencl(doc);
	print_crossovers(doc);
	if (jget(doc, "calibrating")->t == J_BOOL && jget(doc, "calibrating")->b)
		printf("calibrating: measuring every crossover now (`ccctl kernels` shows them as they land)\n");
}

/* ---- commands ---------------------------------------------------------------------------- */

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

struct opts {
	const char *endpoint;
	int json;
	int count;
	const char *mode;
	const char *numa;
	int force;
	int verbose;
	struct cc_gen_params gen;
	const char *stop[16];
	int no_bos;
	long top;
	const char *backend; /* kernels: change the backend, the device, calibrate first */
	const char *device;
	int calibrate;
};

/* Report a failed request: the daemon's own words when it gave some, else libcc's. */
static int fail(cc_client *c, const char *what, int r)
{
	const char *daemon = c ? cc_last_error(c) : "";

	if (daemon && *daemon)
		die_msg("%s: %s", what, daemon);
	else
		die_msg("%s: %s", what, cc_strerror(r));
	return EXIT_FAILURE;
}

/*
 * The JSON document a request (result r) returned: printed as it is with --json (1), else parsed into doc (0);
 * -1 after the error message. json is freed.
 */
static int take_json(cc_client *c, const struct opts *o, const char *what, int r, char *json, struct jv *doc)
{
	if (r < 0) {
		fail(c, what, r);
		return -1;
	}
	if (o->json) {
		printf("%s\n", json);
		free(json);
		return 1;
	}
	r = json_parse(json, doc);
	free(json);
	if (r < 0) {
		fail(NULL, what, r);
		return -1;
	}
	return 0;
}

static int print_models(const struct jv *doc);
static int print_sessions(const struct jv *doc);

static int cmd_admin(cc_client *c, const struct opts *o, const char *what)
{
	struct jv doc;
	char *json = NULL;
	int r;

	if (strcmp(what, "kernels") == 0 && (o->backend || o->device || o->calibrate))
		r = cc_kernels_set(c, o->backend, o->device, o->calibrate, &json);
	else
		r = cc_admin_json(c, what, &json);
	r = take_json(c, o, what, r, json, &doc);
	if (r)
		return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
	if (strcmp(what, "status") == 0)
		r = print_status(&doc);
	else if (strcmp(what, "clients") == 0)
		r = print_clients(&doc);
	else if (strcmp(what, "models") == 0)
		r = print_models(&doc);
	else if (strcmp(what, "sessions") == 0)
		r = print_sessions(&doc);
	else
		print_kernels(&doc);
	jv_clear(&doc);
	return r < 0 ? fail(NULL, what, r) : EXIT_SUCCESS;
}

/* ---- models ----------------------------------------------------------------------------- */

static void human_count(double n, char *buf, size_t size)
{
	if (n >= 1e9)
		snprintf(buf, size, "%.2fB", n / 1e9);
	else if (n >= 1e6)
		snprintf(buf, size, "%.1fM", n / 1e6);
	else if (n >= 1e3)
		snprintf(buf, size, "%.1fK", n / 1e3);
	else
		snprintf(buf, size, "%.0f", n);
}

/* A table cell: at most this many bytes of text. */
#define CELL_MAX 128

/* Column widths of a table of rows x cols cells (cell[r * cols + c]) under head. */
static void table_widths(const char *const *head, size_t cols, char (*cell)[CELL_MAX], size_t rows, size_t *width)
{
	size_t i, c;

	for (c = 0; c < cols; c++) {
		width[c] = strlen(head[c]);
		for (i = 0; i < rows; i++)
			if (strlen(cell[i * cols + c]) > width[c])
				width[c] = strlen(cell[i * cols + c]);
	}
}

/* One line of a table: right[c] right-aligns column c (numbers); a left-aligned last column carries no padding. */
static void table_row(const char *const *text, const int *right, const size_t *width, size_t cols, int indent)
{
	size_t c;

	printf("%*s", indent, "");
	for (c = 0; c < cols; c++) {
		int last = c + 1 == cols;

		printf(right[c] ? "%*s%s" : "%-*s%s", last && !right[c] ? 0 : (int)width[c], text[c],
		       last ? "\n" : "  ");
	}
}

/* A whole table: head, then the rows, each line indented by indent spaces. */
static void print_table(const char *const *head, const int *right, size_t cols, char (*cell)[CELL_MAX], size_t rows,
                        int indent)
{
	size_t width[16], i, c;
	const char *text[16];

	table_widths(head, cols, cell, rows, width);
	table_row(head, right, width, cols, indent);
	for (i = 0; i < rows; i++) {
		for (c = 0; c < cols; c++)
			text[c] = cell[i * cols + c];
		table_row(text, right, width, cols, indent);
	}
}

/* A number cell: as written in the JSON, "-" when absent. */
static void num_cell(const struct jv *v, char *buf)
{
	sanitize(jtext(v), buf, CELL_MAX);
}

/* tok/s over the last minute: one decimal. */
static void tps_cell(const struct jv *v, char *buf)
{
	if (v->t == J_NUM)
		snprintf(buf, CELL_MAX, "%.1f", v->num);
	else
		snprintf(buf, CELL_MAX, "-");
}

#define MODEL_COLS 13

static int print_models(const struct jv *doc)
{
	static const char *const head[MODEL_COLS] = {"NAME",     "STATE",  "ARCH",   "PARAMS", "BYTES",
	                                             "MODE",     "NUMA",   "USERS",  "SESSIONS", "ACTIVE",
	                                             "TOKENS",   "TOK/S_1M", "PATH"};
	static const int right[MODEL_COLS] = {0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0};
	const struct jv *list = jget(doc, "models");
	size_t rows = list->t == J_ARR ? list->n : 0, i, width[MODEL_COLS];
	char(*cell)[CELL_MAX];

	if (rows == 0) {
		printf("no models loaded (load one with `ccctl load NAME PATH`)\n");
		return 0;
	}
	cell = calloc(rows * MODEL_COLS, sizeof(*cell));
	if (!cell)
		return -ENOMEM;
	for (i = 0; i < rows; i++) {
		const struct jv *m = &list->items[i];
		char(*row)[CELL_MAX] = cell + i * MODEL_COLS;
		static const char *const text_key[] = {"name", "state", "arch", NULL, NULL, "mode", "placement"};
		size_t col;

		for (col = 0; col < 7; col++) {
			const struct jv *v;

			if (!text_key[col])
				continue;
			v = jget(m, text_key[col]);
			sanitize(v->t == J_STR && !v->s[0] ? "-" : jtext(v), row[col], CELL_MAX);
		}
		if (strcmp(jtext(jget(m, "state")), "loading") == 0 && jnum(jget(m, "bytes")) > 0)
			snprintf(row[1], CELL_MAX, "loading %.0f%%",
			         100.0 * jnum(jget(m, "loaded_bytes")) / jnum(jget(m, "bytes")));
		human_count(jnum(jget(m, "params")), row[3], CELL_MAX);
		human_bytes(jnum(jget(m, "bytes")), row[4], CELL_MAX);
		num_cell(jget(m, "users"), row[7]);
		num_cell(jget(m, "sessions"), row[8]);
		num_cell(jget(m, "active"), row[9]);
		num_cell(jget(m, "gen_tokens"), row[10]);
		tps_cell(jget(m, "tps_1m"), row[11]);
		sanitize(jtext(jget(m, "path")), row[12], CELL_MAX);
	}
	/* one model a line, with its error and note lines under it */
	table_widths(head, MODEL_COLS, cell, rows, width);
	table_row(head, right, width, MODEL_COLS, 0);
	for (i = 0; i < rows; i++) {
		const struct jv *m = &list->items[i];
		const char *text[MODEL_COLS];
		char why[512];
		size_t col;

		for (col = 0; col < MODEL_COLS; col++)
			text[col] = cell[i * MODEL_COLS + col];
		table_row(text, right, width, MODEL_COLS, 0);
		if (jget(m, "error")->t == J_STR && jget(m, "error")->s[0]) {
			sanitize(jtext(jget(m, "error")), why, sizeof(why));
			printf("  error: %s\n", why);
		}
		if (jget(m, "note")->t == J_STR && jget(m, "note")->s[0]) {
			sanitize(jtext(jget(m, "note")), why, sizeof(why));
			printf("  note: %s\n", why);
		}
	}
	free(cell);
	return 0;
}

#define SERVE_COLS 6

/* status: per model, what serving it costs and does now. */
static int print_serving(const struct jv *list)
{
	static const char *const head[SERVE_COLS] = {"MODEL", "STATE", "SESSIONS", "ACTIVE", "TOKENS", "TOK/S_1M"};
	static const int right[SERVE_COLS] = {0, 0, 1, 1, 1, 1};
	size_t rows = list->t == J_ARR ? list->n : 0, i;
	char(*cell)[CELL_MAX];

	if (rows == 0)
		return 0;
	cell = calloc(rows * SERVE_COLS, sizeof(*cell));
	if (!cell)
		return -ENOMEM;
	for (i = 0; i < rows; i++) {
		const struct jv *m = &list->items[i];
		char(*row)[CELL_MAX] = cell + i * SERVE_COLS;

		sanitize(jtext(jget(m, "name")), row[0], CELL_MAX);
		sanitize(jtext(jget(m, "state")), row[1], CELL_MAX);
		num_cell(jget(m, "sessions"), row[2]);
		num_cell(jget(m, "active"), row[3]);
		num_cell(jget(m, "gen_tokens"), row[4]);
		tps_cell(jget(m, "tps_1m"), row[5]);
	}
	print_table(head, right, SERVE_COLS, cell, rows, 2);
	free(cell);
	return 0;
}

#define SESSION_COLS 9

static int print_sessions(const struct jv *doc)
{
	static const char *const head[SESSION_COLS] = {"ID",    "CLIENT", "PID",    "MODEL", "CONTEXT",
	                                               "KV",    "STATE",  "TOKENS", "IDLE"};
	static const int right[SESSION_COLS] = {1, 1, 1, 0, 1, 1, 0, 1, 1};
	const struct jv *list = jget(doc, "sessions");
	size_t rows = list->t == J_ARR ? list->n : 0, i;
	char(*cell)[CELL_MAX], used[32], budget[32];

	human_bytes(jnum(jget(doc, "kv_bytes")), used, sizeof(used));
	human_bytes(jnum(jget(doc, "kv_budget")), budget, sizeof(budget));
	if (rows == 0) {
		printf("no sessions open (KV caches %s of %s)\n", used, budget);
		return 0;
	}
	cell = calloc(rows * SESSION_COLS, sizeof(*cell));
	if (!cell)
		return -ENOMEM;
	for (i = 0; i < rows; i++) {
		const struct jv *se = &list->items[i];
		char(*row)[CELL_MAX] = cell + i * SESSION_COLS;
		char state[32];

		sanitize(jtext(jget(se, "state")), state, sizeof(state));
		num_cell(jget(se, "id"), row[0]);
		num_cell(jget(se, "client"), row[1]);
		num_cell(jget(se, "pid"), row[2]);
		sanitize(jtext(jget(se, "model")), row[3], CELL_MAX);
		snprintf(row[4], CELL_MAX, "%s/%s", jtext(jget(se, "n_past")), jtext(jget(se, "n_ctx")));
		human_bytes(jnum(jget(se, "kv_bytes")), row[5], CELL_MAX);
		snprintf(row[6], CELL_MAX, "%s%s", state,
		         jget(se, "oneshot")->t == J_BOOL && jget(se, "oneshot")->b ? " (one-shot)" : "");
		num_cell(jget(se, "gen_tokens"), row[7]);
		if (strcmp(state, "idle") == 0)
			human_duration(jnum(jget(se, "idle_s")), row[8], CELL_MAX);
		else
			snprintf(row[8], CELL_MAX, "-");
	}
	print_table(head, right, SESSION_COLS, cell, rows, 0);
	printf("%zu session%s, KV caches %s of %s\n", rows, rows == 1 ? "" : "s", used, budget);
	free(cell);
	return 0;
}

/* The progress bar of `ccctl load` on a terminal (stderr). */
struct bar {
	const char *name;
	double t0;
	int shown;
};

static void load_progress(void *arg, uint64_t done, uint64_t total)
{
	struct bar *b = arg;
	char d[32], t[32];
	double secs = (now_us() - b->t0) / 1e6, frac = total ? (double)done / (double)total : 0;
	int i, w = 30, fill = (int)(frac * w + 0.5);

	human_bytes((double)done, d, sizeof(d));
	human_bytes((double)total, t, sizeof(t));
	fprintf(stderr, "\rloading %s [", b->name);
	for (i = 0; i < w; i++)
		fputc(i < fill ? '#' : '.', stderr);
	fprintf(stderr, "] %3.0f%%  %s / %s  %.2f GB/s ", frac * 100, d, total ? t : "?",
	        secs > 0 ? (double)done / secs / 1e9 : 0.0);
	fflush(stderr);
	b->shown = 1;
}

static int cmd_load(cc_client *c, const struct opts *o, const char *name, const char *path)
{
	struct bar b = {.name = name, .t0 = now_us()};
	int tty = isatty(STDERR_FILENO);
	struct jv doc;
	char *json = NULL, bytes[32], params[32], what[300];
	int r;

	snprintf(what, sizeof(what), "load %s", name);
	r = cc_model_load(c, name, path, o->mode, o->numa, tty ? load_progress : NULL, &b, &json);
	if (b.shown)
		fputc('\n', stderr);
	r = take_json(c, o, what, r, json, &doc);
	if (r)
		return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
	human_bytes(jnum(jget(&doc, "bytes")), bytes, sizeof(bytes));
	human_count(jnum(jget(&doc, "params")), params, sizeof(params));
	printf("loaded %s: %s, %s parameters, %s tensors, %s in %.3f s (%s GB/s), mode %s, numa %s%s\n", name,
	       jtext(jget(&doc, "arch")), params, jtext(jget(&doc, "tensors")), bytes, jnum(jget(&doc, "seconds")),
	       jtext(jget(&doc, "gbps")), jtext(jget(&doc, "mode")), jtext(jget(&doc, "placement")),
	       jnum(jget(&doc, "huge_pages")) || (jget(&doc, "huge_pages")->t == J_BOOL && jget(&doc, "huge_pages")->b)
	           ? ", huge pages"
	           : "");
	if (jget(&doc, "note")->t == J_STR && jget(&doc, "note")->s[0])
		printf("note: %s\n", jtext(jget(&doc, "note")));
	jv_clear(&doc);
	return EXIT_SUCCESS;
}

static int cmd_unload(cc_client *c, const struct opts *o, const char *name)
{
	char what[300];
	int r;

	snprintf(what, sizeof(what), "unload %s", name);
	r = cc_model_unload(c, name, o->force);
	if (r < 0)
		return fail(c, what, r);
	if (o->json)
		printf("{\"unloaded\":true}\n");
	else
		printf("unloaded %s\n", name);
	return EXIT_SUCCESS;
}

/* A metadata value for people: scalars as they are, short arrays inline, big ones as a count. */
static void print_value(const struct jv *v, int depth)
{
	char buf[256];
	size_t i;

	switch (v->t) {
	case J_NULL:
		printf("null");
		break;
	case J_BOOL:
		printf("%s", v->b ? "true" : "false");
		break;
	case J_NUM:
		printf("%s", v->s);
		break;
	case J_STR:
		sanitize(v->s, buf, sizeof(buf));
		printf("%s%s", buf, strlen(v->s) >= sizeof(buf) ? "..." : "");
		break;
	case J_ARR:
		printf("[");
		for (i = 0; i < v->n && i < 16; i++) {
			if (i)
				printf(", ");
			print_value(&v->items[i], depth + 1);
		}
		printf("%s]", v->n > 16 ? ", ..." : "");
		break;
	case J_OBJ:
		if (jget(v, "array")->t == J_STR)
			printf("[%s %s values]", jtext(jget(v, "count")), jtext(jget(v, "array")));
		else
			printf("{...}");
		break;
	}
}

static int cmd_show(cc_client *c, const struct opts *o, const char *name)
{
	const struct jv *m, *g, *meta, *types, *tensors, *tok, *toks;
	struct jv doc;
	char *json = NULL, what[300], bytes[32], params[32], key[160];
	size_t i, j;
	int r;

	snprintf(what, sizeof(what), "show %s", name);
	r = cc_model_show(c, name, &json);
	r = take_json(c, o, what, r, json, &doc);
	if (r)
		return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
	m = jget(&doc, "model");
	g = jget(&doc, "gguf");
	meta = jget(g, "metadata");
	types = jget(g, "tensor_types");
	tensors = jget(g, "tensors");
	human_bytes(jnum(jget(m, "bytes")), bytes, sizeof(bytes));
	human_count(jnum(jget(m, "params")), params, sizeof(params));
	printf("name:         %s\n", jtext(jget(m, "name")));
	printf("path:         %s\n", jtext(jget(m, "path")));
	printf("state:        %s\n", jtext(jget(m, "state")));
	printf("arch:         %s\n", jtext(jget(m, "arch")));
	printf("parameters:   %s (%s)\n", params, jtext(jget(m, "params")));
	printf("tensor bytes: %s (%s)\n", bytes, jtext(jget(m, "bytes")));
	printf("tensors:      %s:", jtext(jget(g, "tensor_count")));
	for (i = 0; types->t == J_OBJ && i < types->n; i++)
		printf(" %s %s", types->keys[i], jtext(&types->items[i]));
	printf("\n");
	tok = jget(meta, "tokenizer.ggml.model");
	toks = jget(meta, "tokenizer.ggml.tokens");
	printf("tokenizer:    %s", tok->t == J_STR ? tok->s : "none");
	if (jget(toks, "count")->t == J_NUM)
		printf(" (%s tokens)", jtext(jget(toks, "count")));
	else if (toks->t == J_ARR)
		printf(" (%zu tokens)", toks->n);
	printf("\n");
	snprintf(key, sizeof(key), "%s.context_length", jtext(jget(m, "arch")));
	printf("context:      %s\n", jtext(jget(meta, key)));
	printf("mode:         %s%s%s\n", jtext(jget(m, "mode")),
	       jget(m, "huge_pages")->t == J_BOOL && jget(m, "huge_pages")->b ? ", huge pages" : "",
	       jget(m, "note")->t == J_STR && jget(m, "note")->s[0] ? "" : "");
	if (jget(m, "note")->t == J_STR && jget(m, "note")->s[0])
		printf("note:         %s\n", jtext(jget(m, "note")));
	printf("numa:         %s\n", jtext(jget(m, "placement")));
	printf("users:        %s\n", jtext(jget(m, "users")));
	printf("engine:       %s\n", jtext(jget(m, "engine")));
	printf("gguf:         v%s, alignment %s, data at %s, %s bytes in the file\n", jtext(jget(g, "version")),
	       jtext(jget(g, "alignment")), jtext(jget(g, "data_offset")), jtext(jget(g, "file_size")));
	printf("metadata (%s keys):\n", jtext(jget(g, "kv_count")));
	for (i = 0; meta->t == J_OBJ && i < meta->n; i++) {
		sanitize(meta->keys[i], key, sizeof(key));
		printf("  %s = ", key);
		print_value(&meta->items[i], 0);
		printf("\n");
	}
	printf("tensors (%zu):\n", tensors->t == J_ARR ? tensors->n : 0);
	for (i = 0; tensors->t == J_ARR && i < tensors->n; i++) {
		const struct jv *t = &tensors->items[i], *shape = jget(t, "shape");

		sanitize(jtext(jget(t, "name")), key, sizeof(key));
		printf("  %-28s %-5s [", key, jtext(jget(t, "type")));
		for (j = 0; shape->t == J_ARR && j < shape->n; j++)
			printf("%s%s", j ? ", " : "", jtext(&shape->items[j]));
		printf("]  offset %s, %s bytes\n", jtext(jget(t, "offset")), jtext(jget(t, "bytes")));
	}
	jv_clear(&doc);
	return EXIT_SUCCESS;
}

/* ---- inference --------------------------------------------------------------------------- */

/* s (len bytes) as a JSON string: escapes, and U+FFFD for bytes that are not UTF-8 (a token may end mid-character). */
static void json_str(FILE *f, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	fputc('"', f);
	while (i < len) {
		unsigned char ch = p[i];
		size_t n = ch < 0x80                    ? 1
		           : (ch >= 0xc2 && ch <= 0xdf) ? 2
		           : (ch >= 0xe0 && ch <= 0xef) ? 3
		           : (ch >= 0xf0 && ch <= 0xf4) ? 4
		                                        : 0;
		size_t k;

		for (k = 1; n && k < n; k++)
			if (i + k >= len || (p[i + k] & 0xc0) != 0x80)
				n = 0;
		if (n == 3 && ((ch == 0xe0 && p[i + 1] < 0xa0) || (ch == 0xed && p[i + 1] >= 0xa0)))
			n = 0;
		if (n == 4 && ((ch == 0xf0 && p[i + 1] < 0x90) || (ch == 0xf4 && p[i + 1] >= 0x90)))
			n = 0;
		if (n == 0) {
			fputs("\\ufffd", f);
			i++;
			continue;
		}
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch == '\t')
			fputs("\\t", f);
		else if (ch == '\r')
			fputs("\\r", f);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fwrite(p + i, 1, n, f);
		i += n;
	}
	fputc('"', f);
}

static void json_ids(FILE *f, const int32_t *ids, size_t n)
{
	size_t i;

	fputc('[', f);
	for (i = 0; i < n; i++)
		fprintf(f, "%s%d", i ? "," : "", ids[i]);
	fputc(']', f);
}

/* Set by SIGINT while a generation streams: the loop then cancels it. */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* How often a streamed generate looks at the Ctrl-C flag while no piece comes. */
#define GEN_POLL_MS 100
/* Exit status after Ctrl-C, as a shell reports a SIGINT death. */
#define EXIT_INTERRUPTED 130

/* The text written so far (to print what the final reply holds beyond the pieces, if anything). */
struct shown {
	char *buf;
	size_t len, cap;
};

static int shown_add(struct shown *sh, const char *text, size_t len)
{
	if (sh->len + len + 1 > sh->cap) {
		size_t cap = sh->cap ? sh->cap : 4096;
		char *p;

		while (cap < sh->len + len + 1)
			cap *= 2;
		p = realloc(sh->buf, cap);
		if (!p)
			return -ENOMEM;
		sh->buf = p;
		sh->cap = cap;
	}
	memcpy(sh->buf + sh->len, text, len);
	sh->len += len;
	return 0;
}

static void gen_summary(const struct opts *o, const struct cc_gen_result *res)
{
	if (!isatty(STDERR_FILENO) && !o->verbose)
		return;
	fprintf(stderr,
	        "[%u prompt tokens at %.1f t/s, %zu generated at %.1f t/s, first token after %.0f ms, stop: %s, "
	        "template: %s]\n",
	        res->prompt_tokens, res->pp_tps, res->ntokens, res->tg_tps, res->ttft_ms, res->stop_reason, res->templ);
}

/* --json: one object once the generation is done (as before streaming existed). */
static int generate_json(cc_client *c, const struct opts *o, const char *name, const char *prompt)
{
	struct cc_gen_result res;
	char what[300];
	int r;

	snprintf(what, sizeof(what), "generate %s", name);
	r = cc_generate(c, name, prompt, &o->gen, &res);
	if (r < 0)
		return fail(c, what, r);
	printf("{\"text\":");
	json_str(stdout, res.text, strlen(res.text));
	printf(",\"tokens\":");
	json_ids(stdout, res.tokens, res.ntokens);
	printf(",\"prompt_tokens\":%u,\"gen_tokens\":%zu,\"pp_tps\":%.3f,\"tg_tps\":%.3f,\"stop_reason\":",
	       res.prompt_tokens, res.ntokens, res.pp_tps, res.tg_tps);
	json_str(stdout, res.stop_reason, strlen(res.stop_reason));
	printf(",\"template\":");
	json_str(stdout, res.templ, strlen(res.templ));
	printf("}\n");
	cc_gen_result_free(&res);
	return EXIT_SUCCESS;
}

/*
 * Read st to its end, writing each piece to stdout as it comes. Returns the stream's end (0 or -errno), or 1 when
 * Ctrl-C stopped it (then cancelled).
 */
static int stream_pieces(cc_stream *st, struct shown *sh)
{
	const char *text;
	size_t len;
	int r;

	for (;;) {
		if (interrupted) {
			/* stop ccd's work too, not just our reading: the free then waits (briefly) for the end */
			(void)cc_stream_cancel(st);
			return 1;
		}
		r = cc_stream_next(st, GEN_POLL_MS, &text, &len);
		if (r == -ETIMEDOUT)
			continue;
		if (r <= 0)
			return r;
		if (shown_add(sh, text, len) < 0)
			return -ENOMEM;
		fwrite(text, 1, len, stdout);
		fflush(stdout);
	}
}

static int cmd_generate(cc_client *c, const struct opts *o, const char *name, const char *prompt)
{
	struct sigaction sa, old;
	struct cc_gen_result res;
	struct shown sh = {0};
	cc_stream *st = NULL;
	char what[300];
	int r;

	if (o->json)
		return generate_json(c, o, name, prompt);
	snprintf(what, sizeof(what), "generate %s", name);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);
	r = cc_stream_start(c, 0, name, prompt, &o->gen, &st);
	if (r == 0)
		r = stream_pieces(st, &sh);
	if (r == 0)
		r = cc_stream_result(st, &res);
	sigaction(SIGINT, &old, NULL);
	if (r == 0) {
		/* the final text is the whole turn: anything the pieces did not carry is its tail */
		if (strlen(res.text) > sh.len && memcmp(res.text, sh.buf ? sh.buf : "", sh.len) == 0)
			fputs(res.text + sh.len, stdout);
		printf("\n");
		fflush(stdout);
		gen_summary(o, &res);
		cc_gen_result_free(&res);
	} else if (sh.len || r == 1) {
		printf("\n");
		fflush(stdout);
	}
	cc_stream_free(st);
	free(sh.buf);
	if (r == 1) {
		die_msg("%s: cancelled", what);
		return EXIT_INTERRUPTED;
	}
	return r < 0 ? fail(c, what, r) : EXIT_SUCCESS;
}

static int cmd_tokenize(cc_client *c, const struct opts *o, const char *name, const char *text)
{
	int32_t *ids = NULL;
	char what[300];
	size_t n = 0, i;
	int r;

	snprintf(what, sizeof(what), "tokenize %s", name);
	r = cc_tokenize(c, name, text, !o->no_bos, 0, &ids, &n);
	if (r < 0)
		return fail(c, what, r);
	if (o->json) {
		printf("{\"tokens\":");
		json_ids(stdout, ids, n);
		printf("}\n");
	} else {
		for (i = 0; i < n; i++)
			printf("%s%d", i ? " " : "", ids[i]);
		printf("\n");
	}
	free(ids);
	return EXIT_SUCCESS;
}

static int cmd_logits(cc_client *c, const struct opts *o, const char *name, const char *text)
{
	size_t k = o->top > 0 ? (size_t)o->top : 10, n = 0, i;
	int32_t *ids = NULL, *top = calloc(k, sizeof(*top));
	float *val = calloc(k, sizeof(*val));
	char what[300], piece[64];
	int r;

	snprintf(what, sizeof(what), "logits %s", name);
	if (!top || !val) {
		free(top);
		free(val);
		return fail(NULL, what, -ENOMEM);
	}
	r = cc_tokenize(c, name, text, 1, 0, &ids, &n);
	if (r == 0)
		r = cc_logits(c, name, ids, n, NULL, k, top, val, NULL);
	if (r < 0) {
		free(ids);
		free(top);
		free(val);
		return fail(c, what, r);
	}
	if (o->json) {
		printf("{\"top\":[");
		for (i = 0; i < k && top[i] >= 0; i++)
			printf("%s[%d,%.9g]", i ? "," : "", top[i], (double)val[i]);
		printf("]}\n");
	} else {
		for (i = 0; i < k && top[i] >= 0; i++) {
			char *t = NULL;

			if (cc_detokenize(c, name, &top[i], 1, &t, NULL) == 0) {
				sanitize(t, piece, sizeof(piece));
				free(t);
			} else {
				piece[0] = '\0';
			}
			printf("%8d  %12.6f  '%s'\n", top[i], (double)val[i], piece);
		}
	}
	free(ids);
	free(top);
	free(val);
	return EXIT_SUCCESS;
}

/* ccd's pid from its status, or 0 when it cannot be had. */
static long daemon_pid(cc_client *c)
{
	struct jv doc;
	char *json = NULL;
	long pid = 0;

	if (cc_admin_json(c, "status", &json) < 0)
		return 0;
	if (json_parse(json, &doc) == 0) {
		pid = (long)jnum(jget(&doc, "pid"));
		jv_clear(&doc);
	}
	free(json);
	return pid;
}

static int cmd_shutdown(cc_client *c, const struct opts *o, const char *endpoint)
{
	/* a local daemon is waited for, so that `ccctl shutdown && ccd` never finds the old one still there */
	long pid = strncmp(endpoint, "ipc://", 6) == 0 ? daemon_pid(c) : 0;
	double until;
	int r;

	r = cc_shutdown(c);
	if (r < 0)
		return fail(c, "shutdown", r);
	for (until = now_us() + SHUTDOWN_WAIT_S * 1e6; pid > 0 && now_us() < until;) {
		struct timespec ts = {0, 10 * 1000 * 1000};

		if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
			break;
		nanosleep(&ts, NULL);
	}
	if (pid > 0 && now_us() >= until) {
		die_msg("shutdown: ccd (pid %ld) accepted but is still running after %d s", pid, SHUTDOWN_WAIT_S);
		return EXIT_FAILURE;
	}
	puts(o->json ? "{\"ok\":true}" : "ccd shut down");
	return EXIT_SUCCESS;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The p-th percentile (0..100) of v[n] (sorts v). */
static double percentile(double *v, size_t n, double p)
{
	size_t i;

	qsort(v, n, sizeof(*v), cmp_double);
	i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

struct bench {
	double ping_p50, ping_p99;
	double op_p50, op_p99;
	double ops_per_s;
	double relu_gbps;
};

/* Latency of count pings, then of count 8-element relus, in microseconds. */
static int bench_latency(cc_client *c, int count, struct bench *b)
{
	double *lat;
	cc_tensor *x = NULL;
	float *xd;
	int i, r;

	lat = calloc((size_t)count, sizeof(*lat));
	if (!lat)
		return -ENOMEM;
	for (i = 0; i < 50; i++) {
		r = cc_ping(c);
		if (r < 0)
			goto out;
	}
	for (i = 0; i < count; i++) {
		double t0 = now_us();

		r = cc_ping(c);
		if (r < 0)
			goto out;
		lat[i] = now_us() - t0;
	}
	b->ping_p50 = percentile(lat, (size_t)count, 50);
	b->ping_p99 = percentile(lat, (size_t)count, 99);

	r = cc_tensor_new(c, CC_DTYPE_F32, BENCH_SMALL_N, &x);
	if (r < 0)
		goto out;
	xd = cc_tensor_data(x);
	for (i = 0; i < BENCH_SMALL_N; i++)
		xd[i] = (float)(i - BENCH_SMALL_N / 2);
	for (i = 0; i < 50; i++) {
		r = cc_unary(c, "relu", x, x, NULL, 0);
		if (r < 0)
			goto out;
	}
	for (i = 0; i < count; i++) {
		double t0 = now_us();

		r = cc_unary(c, "relu", x, x, NULL, 0);
		if (r < 0)
			goto out;
		lat[i] = now_us() - t0;
	}
	b->op_p50 = percentile(lat, (size_t)count, 50);
	b->op_p99 = percentile(lat, (size_t)count, 99);
	r = 0;
out:
	cc_tensor_free(x);
	free(lat);
	return r;
}

/* Small-op throughput with BENCH_INFLIGHT jobs in flight, each on a tensor of its own. */
static int bench_throughput(cc_client *c, int count, struct bench *b)
{
	cc_tensor *t[BENCH_INFLIGHT] = {0};
	uint64_t job[BENCH_INFLIGHT] = {0};
	int i, sent = 0, done = 0, r = 0, slot;
	double t0;

	for (i = 0; i < BENCH_INFLIGHT; i++) {
		r = cc_tensor_new(c, CC_DTYPE_F32, BENCH_SMALL_N, &t[i]);
		if (r < 0)
			goto out;
	}
	t0 = now_us();
	for (slot = 0; slot < BENCH_INFLIGHT && sent < count; slot++, sent++) {
		r = cc_submit_unary(c, "relu", t[slot], t[slot], NULL, 0, &job[slot]);
		if (r < 0)
			goto out;
	}
	/* jobs finish roughly in order: wait for the oldest slot, then refill it */
	for (slot = 0; done < count; slot = (slot + 1) % BENCH_INFLIGHT) {
		if (!job[slot])
			continue;
		r = cc_wait(c, job[slot], -1, NULL);
		job[slot] = 0;
		if (r < 0)
			goto out;
		done++;
		if (sent < count) {
			r = cc_submit_unary(c, "relu", t[slot], t[slot], NULL, 0, &job[slot]);
			if (r < 0)
				goto out;
			sent++;
		}
	}
	b->ops_per_s = (double)count / ((now_us() - t0) / 1e6);
out:
	/* a job still in flight must finish before its tensor goes */
	for (i = 0; i < BENCH_INFLIGHT; i++)
		if (job[i])
			(void)cc_wait(c, job[i], -1, NULL);
	for (i = 0; i < BENCH_INFLIGHT; i++)
		cc_tensor_free(t[i]);
	return r;
}

/* relu over 1M elements (4 MiB read + 4 MiB written): median of BENCH_BIG_REPS runs, in GB/s. */
static int bench_big(cc_client *c, struct bench *b)
{
	double lat[BENCH_BIG_REPS];
	cc_tensor *x = NULL, *y = NULL;
	float *xd;
	size_t i;
	int r;

	r = cc_tensor_new(c, CC_DTYPE_F32, BENCH_BIG_N, &x);
	if (r < 0)
		goto out;
	r = cc_tensor_new(c, CC_DTYPE_F32, BENCH_BIG_N, &y);
	if (r < 0)
		goto out;
	xd = cc_tensor_data(x);
	for (i = 0; i < BENCH_BIG_N; i++)
		xd[i] = (float)((int)(i % 17) - 8);
	r = cc_unary(c, "relu", x, y, NULL, 0);
	if (r < 0)
		goto out;
	for (i = 0; i < BENCH_BIG_REPS; i++) {
		double t0 = now_us();

		r = cc_unary(c, "relu", x, y, NULL, 0);
		if (r < 0)
			goto out;
		lat[i] = now_us() - t0;
	}
	b->relu_gbps = 2.0 * sizeof(float) * BENCH_BIG_N / (percentile(lat, BENCH_BIG_REPS, 50) * 1e3);
out:
	cc_tensor_free(y);
	cc_tensor_free(x);
	return r;
}

static int cmd_bench(cc_client *c, const struct opts *o)
{
	struct bench b = {0};
	int r;

	r = bench_latency(c, o->count, &b);
	if (r == 0)
		r = bench_throughput(c, o->count, &b);
	if (r == 0)
		r = bench_big(c, &b);
	if (r < 0)
		return fail(c, "bench", r);
	if (o->json) {
		printf("{\"ping_us_p50\":%.2f,\"ping_us_p99\":%.2f,\"op_us_p50\":%.2f,\"op_us_p99\":%.2f,"
		       "\"ops_per_s\":%.0f,\"relu_1m_gbps\":%.2f}\n",
		       b.ping_p50, b.ping_p99, b.op_p50, b.op_p99, b.ops_per_s, b.relu_gbps);
		return EXIT_SUCCESS;
	}
	printf("ping round trip     p50 %8.1f us   p99 %8.1f us   (%d pings)\n", b.ping_p50, b.ping_p99, o->count);
	printf("8-element relu      p50 %8.1f us   p99 %8.1f us   (%d ops)\n", b.op_p50, b.op_p99, o->count);
	printf("small-op throughput %12.0f ops/s        (%d in flight)\n", b.ops_per_s, BENCH_INFLIGHT);
	printf("relu, 1M elements   %12.2f GB/s         (read + write, median of %d)\n", b.relu_gbps, BENCH_BIG_REPS);
	return EXIT_SUCCESS;
}

/* The endpoint we will use, for messages: --endpoint, else CC_ENDPOINT, else the per-user default. */
static int resolve_endpoint(const char *opt, char *buf, size_t size)
{
	const char *env = getenv("CC_ENDPOINT");

	if (!opt && env && *env)
		opt = env;
	if (opt) {
		if ((size_t)snprintf(buf, size, "%s", opt) >= size)
			return -ENAMETOOLONG;
		return 0;
	}
	return cc_default_endpoint(buf, size);
}

static int connect_or_explain(const char *endpoint, cc_client **ret)
{
	int r = cc_connect(endpoint, ret);
	const char *why = cc_last_error(NULL);

	if (r == 0)
		return 0;
	if (r == -ECONNREFUSED)
		die_msg("cannot reach ccd at %s: is it running? start it with `ccd`", endpoint);
	else if (r == -EPROTO)
		die_msg("protocol version mismatch with ccd at %s%s%s", endpoint, *why ? ": " : "", why);
	else
		die_msg("cannot connect to ccd at %s: %s", endpoint, *why ? why : cc_strerror(r));
	return r;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"endpoint", required_argument, NULL, 'e'},
	    {"json", no_argument, NULL, 'j'},
	    {"count", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"mode", required_argument, NULL, 'm'},
	    {"numa", required_argument, NULL, 'N'},
	    {"force", no_argument, NULL, 'f'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"max-tokens", required_argument, NULL, 1},
	    {"temp", required_argument, NULL, 2},
	    {"top-k", required_argument, NULL, 3},
	    {"top-p", required_argument, NULL, 4},
	    {"min-p", required_argument, NULL, 5},
	    {"repeat-penalty", required_argument, NULL, 6},
	    {"seed", required_argument, NULL, 7},
	    {"stop", required_argument, NULL, 8},
	    {"raw", no_argument, NULL, 9},
	    {"no-bos", no_argument, NULL, 10},
	    {"top", required_argument, NULL, 11},
	    {"ignore-eos", no_argument, NULL, 12},
	    {"backend", required_argument, NULL, 13},
	    {"device", required_argument, NULL, 14},
	    {"calibrate", no_argument, NULL, 15},
	    {NULL, 0, NULL, 0},
	};
	static const struct {
		const char *name;
		int nargs;
	} cmds[] = {
	    {"status", 0}, {"clients", 0}, {"kernels", 0}, {"models", 0},   {"sessions", 0}, {"bench", 0},
	    {"shutdown", 0}, {"load", 2},  {"unload", 1},  {"show", 1},     {"generate", 2}, {"tokenize", 2},
	    {"logits", 2},
	};
	const char *args[2] = {NULL, NULL};
	size_t k;
	int nargs;
	struct opts o = {.count = BENCH_COUNT_DEFAULT};
	char endpoint[512];
	const char *cmd;
	cc_client *c;
	int opt, r;

	cc_gen_defaults(&o.gen);
	o.gen.stop = o.stop;
	opterr = 0; /* our own one-line messages */
	while ((opt = getopt_long(argc, argv, ":e:jn:hVm:fv", longopts, NULL)) != -1) {
		switch (opt) {
		case 'e':
			o.endpoint = optarg;
			break;
		case 'j':
			o.json = 1;
			break;
		case 'n': {
			char *end;
			long v;

			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || v < 1 || v > 10000000) {
				die_msg("--count wants a number from 1 to 10000000, not '%s'", optarg);
				return EXIT_USAGE;
			}
			o.count = (int)v;
			break;
		}
		case 'm':
			o.mode = optarg;
			break;
		case 'N':
			o.numa = optarg;
			break;
		case 'f':
			o.force = 1;
			break;
		case 'v':
			o.verbose = 1;
			break;
		case 1:
		case 3:
		case 7:
		case 11: {
			char *end;
			unsigned long long v;

			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || *end || end == optarg || optarg[0] == '-' || (opt != 7 && v > 1000000)) {
				die_msg("%s wants a whole number, not '%s'", argv[optind - 1], optarg);
				return EXIT_USAGE;
			}
			if (opt == 1)
				o.gen.max_tokens = (uint32_t)v;
			else if (opt == 3)
				o.gen.top_k = (int32_t)v;
			else if (opt == 7)
				o.gen.seed = v;
			else
				o.top = (long)v;
			break;
		}
		case 2:
		case 4:
		case 5:
		case 6: {
			char *end;
			float v;

			errno = 0;
			v = strtof(optarg, &end);
			if (errno || *end || end == optarg || v != v) {
				die_msg("%s wants a number, not '%s'", argv[optind - 1], optarg);
				return EXIT_USAGE;
			}
			if (opt == 2)
				o.gen.temp = v;
			else if (opt == 4)
				o.gen.top_p = v;
			else if (opt == 5)
				o.gen.min_p = v;
			else
				o.gen.repeat_penalty = v;
			break;
		}
		case 8:
			if (o.gen.nstop >= sizeof(o.stop) / sizeof(o.stop[0])) {
				die_msg("at most %zu --stop strings", sizeof(o.stop) / sizeof(o.stop[0]));
				return EXIT_USAGE;
			}
			o.stop[o.gen.nstop++] = optarg;
			break;
		case 9:
			o.gen.raw = 1;
			break;
		case 10:
			o.no_bos = 1;
			break;
		case 12:
			o.gen.ignore_eos = 1;
			break;
		case 13:
			o.backend = optarg;
			break;
		case 14:
			o.device = optarg;
			break;
		case 15:
			o.calibrate = 1;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			printf("ccctl (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
			return EXIT_SUCCESS;
		case ':':
			die_msg("option '%s' needs an argument (try `ccctl help`)", argv[optind - 1]);
			return EXIT_USAGE;
		default:
			if (strncmp(argv[optind - 1], "--", 2) == 0)
				die_msg("bad option '%s' (try `ccctl help`)", argv[optind - 1]);
			else
				die_msg("unknown option '-%c' (try `ccctl help`)", optopt);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		die_msg("no command (try `ccctl help`)");
		return EXIT_USAGE;
	}
	cmd = argv[optind];
	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return EXIT_SUCCESS;
	}
	for (k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++)
		if (strcmp(cmd, cmds[k].name) == 0)
			break;
	if (k == sizeof(cmds) / sizeof(cmds[0])) {
		die_msg("unknown command '%s' (try `ccctl help`)", cmd);
		return EXIT_USAGE;
	}
	nargs = argc - optind - 1;
	if (nargs > cmds[k].nargs) {
		die_msg("unexpected argument '%s' after %s", argv[optind + 1 + cmds[k].nargs], cmd);
		return EXIT_USAGE;
	}
	if (nargs < cmds[k].nargs) {
		die_msg("%s needs %s (try `ccctl help`)", cmd,
		        cmds[k].nargs == 1             ? "NAME"
		        : strcmp(cmd, "load") == 0     ? "NAME and PATH"
		        : strcmp(cmd, "generate") == 0 ? "NAME and PROMPT"
		                                       : "NAME and TEXT");
		return EXIT_USAGE;
	}
	for (opt = 0; opt < nargs; opt++)
		args[opt] = argv[optind + 1 + opt];
	if ((o.backend || o.device || o.calibrate) && strcmp(cmd, "kernels") != 0) {
		die_msg("--backend, --device and --calibrate go with kernels, not %s", cmd);
		return EXIT_USAGE;
	}
	if (o.mode && strcmp(o.mode, "uring") != 0 && strcmp(o.mode, "mmap") != 0) {
		die_msg("--mode must be uring or mmap, not '%s'", o.mode);
		return EXIT_USAGE;
	}

	r = resolve_endpoint(o.endpoint, endpoint, sizeof(endpoint));
	if (r < 0) {
		die_msg("no usable endpoint for ccd: %s", cc_strerror(r));
		return EXIT_FAILURE;
	}
	if (connect_or_explain(endpoint, &c) < 0)
		return EXIT_FAILURE;
	if (strcmp(cmd, "bench") == 0)
		r = cmd_bench(c, &o);
	else if (strcmp(cmd, "shutdown") == 0)
		r = cmd_shutdown(c, &o, endpoint);
	else if (strcmp(cmd, "load") == 0)
		r = cmd_load(c, &o, args[0], args[1]);
	else if (strcmp(cmd, "unload") == 0)
		r = cmd_unload(c, &o, args[0]);
	else if (strcmp(cmd, "show") == 0)
		r = cmd_show(c, &o, args[0]);
	else if (strcmp(cmd, "generate") == 0)
		r = cmd_generate(c, &o, args[0], args[1]);
	else if (strcmp(cmd, "tokenize") == 0)
		r = cmd_tokenize(c, &o, args[0], args[1]);
	else if (strcmp(cmd, "logits") == 0)
		r = cmd_logits(c, &o, args[0], args[1]);
	else
		r = cmd_admin(c, &o, cmd);
	cc_close(c);
	if (fflush(stdout) != 0 && r == EXIT_SUCCESS) {
		die_msg("writing the output: %s", strerror(errno));
		r = EXIT_FAILURE;
	}
	return r;
}
