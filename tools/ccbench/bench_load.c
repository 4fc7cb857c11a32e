/* SPDX-License-Identifier: MIT */
/* bench_load.c: `ccbench load`: the model loader's modes (pread loop, io_uring, mmap) on a file, warm and cold cache.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "load.h"

#define DEF_REPS 5
#define MAX_REPS 1000

int cmd_load(int argc, char **argv);

/*
 * Usage text (ccbench.c's usage lists the command; the details are here, shown by --help).
 */
static const char load_usage[] =
    "ccbench load PATH [--reps N] [--no-cold] [--place P] [--modes LIST]\n"
    "  Loads the whole of PATH with the model loader (libccmodel's ccm_load_fd) in each\n"
    "  mode, with the page cache warm (the file read once before) and cold (dropped before\n"
    "  each run: posix_fadvise(POSIX_FADV_DONTNEED), plus \"1\" into /proc/sys/vm/drop_caches\n"
    "  when permitted; checked with mincore(), else the cold runs are skipped with a note).\n"
    "  Modes: read (pread loop of 4 MB chunks into anonymous memory: the baseline), uring\n"
    "  (io_uring, several reads in flight), mmap (the file mapped and every page faulted in;\n"
    "  ccbench touches each page again after the load). One line per mode and cache state:\n"
    "    {\"bench\":\"load\",\"mode\":\"uring\",\"cache\":\"warm\",\"bytes\":N,\"seconds\":S,\"gbps\":G,\n"
    "     \"reps\":R,\"stat\":\"best\",\"median_seconds\":M,\"mode_used\":..,\"huge\":..,\"direct\":..}\n"
    "  seconds: the best of R runs (median_seconds: their median); gbps = bytes / seconds / 1e9.\n"
    "  Then {\"bench\":\"load_summary\",\"uring_vs_best_warm\":X,\"uring_vs_read_cold\":Y,...}: speed\n"
    "  ratios (best times; above 1: uring is faster) against the faster of read and mmap warm,\n"
    "  and read cold; also uring_vs_read_warm, uring_vs_mmap_warm and uring_vs_mmap_cold.\n"
    "  mmap warm maps page-cache pages without copying them: no copying mode can match it.\n"
    "  --reps N    runs per mode and cache state (default 5).\n"
    "  --no-cold   warm runs only.\n"
    "  --place P   NUMA placement: interleave (default), node=N or local.\n"
    "  --modes L   comma-separated modes to run (default read,uring,mmap).\n";

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Fraction of the file's pages in the page cache (mincore on a mapping), or -1. */
static double cached_fraction(int fd, size_t size)
{
	size_t npages = (size + 4095) / 4096, i, in = 0;
	unsigned char *vec;
	void *p;

	p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -1;
	vec = malloc(npages);
	if (!vec || mincore(p, size, vec) < 0) {
		free(vec);
		munmap(p, size);
		return -1;
	}
	for (i = 0; i < npages; i++)
		in += vec[i] & 1;
	free(vec);
	munmap(p, size);
	return (double)in / (double)npages;
}

/* Drop the file from the page cache; 0 when mincore confirms (at most 1% left), else -1 with why. */
static int drop_cache_once(int fd, size_t size, char *why, size_t whylen)
{
	double f;
	int dfd;

	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	dfd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	if (dfd >= 0) {
		sync();
		if (write(dfd, "1", 1) != 1) {
			/* not permitted (container): the fadvise may still have done it */
		}
		close(dfd);
	}
	f = cached_fraction(fd, size);
	if (f < 0) {
		snprintf(why, whylen, "mincore failed: cannot check the page cache");
		return -1;
	}
	if (f > 0.01) {
		snprintf(why, whylen, "%.0f%% of the file stayed in the page cache after POSIX_FADV_DONTNEED%s",
		         f * 100, dfd < 0 ? " (drop_caches not writable)" : " and drop_caches");
		return -1;
	}
	return 0;
}

/* Another process reading the file at the same time can bring pages back: try a few times. */
static int drop_cache(int fd, size_t size, char *why, size_t whylen)
{
	int i;

	for (i = 0; i < 3; i++)
		if (drop_cache_once(fd, size, why, whylen) == 0)
			return 0;
	return -1;
}

/* Read the whole file once (into the page cache). */
static int warm_cache(int fd, size_t size)
{
	size_t chunk = (size_t)4 << 20, pos = 0;
	char *buf = malloc(chunk);
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	while (pos < size) {
		n = pread(fd, buf, size - pos < chunk ? size - pos : chunk, (off_t)pos);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			free(buf);
			return n < 0 ? -errno : -EIO;
		}
		pos += (size_t)n;
	}
	free(buf);
	return 0;
}

/* s with the characters JSON strings cannot hold as they are (quote, backslash, controls) replaced. */
static const char *json_safe(const char *s, char *buf, size_t size)
{
	size_t i, n = 0;

	for (i = 0; s[i] && n + 1 < size; i++)
		buf[n++] = s[i] == '"' ? '\'' : s[i] == '\\' || (unsigned char)s[i] < 0x20 ? ' ' : s[i];
	buf[n] = 0;
	return buf;
}

struct result {
	double best, median;
	int ok;
};

/* One mode, one cache state: reps runs. Prints its line; fills *res. Returns 0, 1 (failed) or 2 (skipped). */
static int run_one(int fd, size_t size, enum ccm_mode mode, int cold, int reps, const struct ccm_place *place,
                   struct result *res)
{
	double *t = calloc((size_t)reps, sizeof(double));
	char err[256], why[200], esc[300], placement[64] = "";
	struct ccm_region reg;
	int i, rc, huge = 0, direct = 0;
	enum ccm_mode used = mode;
	volatile unsigned sink = 0;
	char note[160] = "";

	res->ok = 0;
	if (!t)
		return 1;
	if (!cold && warm_cache(fd, size) < 0) {
		printf("{\"bench\":\"load\",\"mode\":\"%s\",\"cache\":\"warm\",\"error\":\"cannot read the file\"}\n",
		       ccm_mode_name(mode));
		free(t);
		return 1;
	}
	for (i = 0; i < reps; i++) {
		double t0;

		if (cold && drop_cache(fd, size, why, sizeof(why)) < 0) {
			printf("{\"bench\":\"load\",\"mode\":\"%s\",\"cache\":\"cold\",\"skipped\":\"%s\"}\n",
			       ccm_mode_name(mode), why);
			free(t);
			return 2;
		}
		t0 = now_s();
		rc = ccm_load_fd(fd, 0, size, mode, place, NULL, &reg, err, sizeof(err));
		if (rc == 0 && mode == CCM_MODE_MMAP) {
			const volatile unsigned char *p = reg.data;
			size_t k;

			for (k = 0; k < size; k += 4096)
				sink += p[k];
		}
		t[i] = now_s() - t0;
		if (rc < 0) {
			printf("{\"bench\":\"load\",\"mode\":\"%s\",\"cache\":\"%s\",\"error\":\"%s\"}\n",
			       ccm_mode_name(mode), cold ? "cold" : "warm", json_safe(err, esc, sizeof(esc)));
			free(t);
			return 1;
		}
		used = reg.mode;
		huge = reg.huge;
		direct = reg.direct;
		snprintf(note, sizeof(note), "%s", reg.note);
		snprintf(placement, sizeof(placement), "%s", reg.placement);
		ccm_region_free(&reg);
	}
	(void)sink;
	qsort(t, (size_t)reps, sizeof(double), cmp_double);
	res->best = t[0];
	res->median = reps % 2 ? t[reps / 2] : (t[reps / 2 - 1] + t[reps / 2]) / 2;
	res->ok = 1;
	printf("{\"bench\":\"load\",\"mode\":\"%s\",\"cache\":\"%s\",\"bytes\":%zu,\"seconds\":%.6f,\"gbps\":%.3f,"
	       "\"reps\":%d,\"stat\":\"best\",\"median_seconds\":%.6f,\"mode_used\":\"%s\",\"huge\":%s,\"direct\":%s,"
	       "\"placement\":\"%s\"",
	       ccm_mode_name(mode), cold ? "cold" : "warm", size, res->best, (double)size / res->best / 1e9, reps,
	       res->median, ccm_mode_name(used), huge ? "true" : "false", direct ? "true" : "false", placement);
	if (note[0])
		printf(",\"note\":\"%s\"", json_safe(note, esc, sizeof(esc)));
	printf("}\n");
	free(t);
	return 0;
}

/* "read,uring" -> want[] (indexes as modes[] in cmd_load: read, uring, mmap). */
static int parse_modes(const char *s, int want[3])
{
	char buf[64], *tok, *save = NULL;
	int m;

	if (strlen(s) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", s);
	want[0] = want[1] = want[2] = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		m = ccm_mode_parse(tok);
		if (m < 0)
			return -1;
		want[m == CCM_MODE_READ ? 0 : m == CCM_MODE_URING ? 1 : 2] = 1;
	}
	return want[0] || want[1] || want[2] ? 0 : -1;
}

int cmd_load(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"reps", required_argument, NULL, 'r'},  {"no-cold", no_argument, NULL, 'c'},
	    {"place", required_argument, NULL, 'p'}, {"modes", required_argument, NULL, 'm'},
	    {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
	static const enum ccm_mode modes[] = {CCM_MODE_READ, CCM_MODE_URING, CCM_MODE_MMAP};
	struct ccm_place place = {CCM_PLACE_INTERLEAVE, -1};
	struct result res[3][2];
	int reps = DEF_REPS, no_cold = 0, ch, fd, failed = 0, c, m, want[3] = {1, 1, 1};
	struct stat st;
	char *end;
	long v;

	memset(res, 0, sizeof(res));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || v < 1 || v > MAX_REPS) {
				fprintf(stderr, "ccbench load: bad --reps '%s' (1 to %d)\n", optarg, MAX_REPS);
				return 2;
			}
			reps = (int)v;
			break;
		case 'c':
			no_cold = 1;
			break;
		case 'p':
			if (ccm_place_parse(optarg, &place) < 0) {
				fprintf(stderr, "ccbench load: bad --place '%s' (interleave, node=N or local)\n",
				        optarg);
				return 2;
			}
			break;
		case 'm':
			if (parse_modes(optarg, want) < 0) {
				fprintf(stderr, "ccbench load: bad --modes '%s' (read, uring, mmap)\n", optarg);
				return 2;
			}
			break;
		case 'h':
			fputs(load_usage, stdout);
			return 0;
		default:
			fputs(load_usage, stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "ccbench load: %s\n", optind >= argc ? "no file given" : "one file only");
		fputs(load_usage, stderr);
		return 2;
	}
	fd = open(argv[optind], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "ccbench load: %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
		fprintf(stderr, "ccbench load: %s: not a non-empty regular file\n", argv[optind]);
		close(fd);
		return 1;
	}
	for (c = 0; c < 2; c++) {
		if (c == 1 && no_cold)
			break;
		for (m = 0; m < 3; m++) {
			if (!want[m])
				continue;
			int r = run_one(fd, (size_t)st.st_size, modes[m], c, reps, &place, &res[m][c]);

			if (r == 1)
				failed = 1;
			if (r == 2)
				break; /* the cache cannot be dropped: no cold runs at all */
		}
	}
	close(fd);
	{
		/* res[mode][cache]: 0 read, 1 uring, 2 mmap. Ratios of speeds (inverse times): above 1, uring is
		 * faster. */
		double best_other = 0;
		int have_cold = res[0][1].ok && res[1][1].ok;

		if (res[0][0].ok)
			best_other = res[0][0].best;
		if (res[2][0].ok && (!best_other || res[2][0].best < best_other))
			best_other = res[2][0].best;
		printf("{\"bench\":\"load_summary\"");
		if (res[1][0].ok && best_other)
			printf(",\"uring_vs_best_warm\":%.3f", best_other / res[1][0].best);
		if (res[1][0].ok && res[0][0].ok)
			printf(",\"uring_vs_read_warm\":%.3f", res[0][0].best / res[1][0].best);
		if (res[1][0].ok && res[2][0].ok)
			printf(",\"uring_vs_mmap_warm\":%.3f", res[2][0].best / res[1][0].best);
		if (have_cold)
			printf(",\"uring_vs_read_cold\":%.3f", res[0][1].best / res[1][1].best);
		if (have_cold && res[2][1].ok)
			printf(",\"uring_vs_mmap_cold\":%.3f", res[2][1].best / res[1][1].best);
		else
			printf(",\"uring_vs_read_cold\":null");
		printf("}\n");
	}
	return failed;
}
