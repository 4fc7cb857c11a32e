/* SPDX-License-Identifier: MIT */
/* ccbench.c: benchmarks of libcck (per-op, per-tier, matmul vs OpenBLAS) and of the ccd round trip (ipc). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "cc.h"
#include "ccg.h"
#include "cck.h"
#include "own_ccd.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define CCB_X86 1
#include <immintrin.h>
#endif

#define NBATCH 9               /* timed batches per measurement (median taken) */
#define NBATCH_SLOW 5          /* batches when one call is longer than a batch */
#define DEF_REPS_MS 100        /* default timed budget per measurement */
#define DEF_MATMUL_REPS_MS 300 /* default for the matmul command */
#define MATMUL_MAX_SIDE 8192   /* larger matmul cube sides are skipped */
#define MAX_SIZES 64
#define EXIT_USAGE 2

static const char usage_text[] =
    "Usage: ccbench <command> [options]\n"
    "\n"
    "Benchmarks libcck. Every result is one JSON object per line on stdout.\n"
    "\n"
    "Commands:\n"
    "  kernels   time libcck ops (and a plain memory read as the speed limit)\n"
    "  crossover each op on libcck, on the OpenCL device and through the automatic\n"
    "            dispatch, side by side, with the crossover sizes (the table)\n"
    "  matmul    time cck_matmul_f32 against OpenBLAS cblas_sgemm, same matrices\n"
    "  ipc       ZeroMQ ipc ping-pong, and small and large ops through ccd\n"
    "  load      the model loader (pread, io_uring, mmap) on a file: ccbench load --help\n"
    "  infer     prompt processing and generation tokens/s of the engine: ccbench infer --model PATH\n"
    "            [--threads T] [--prompt-tokens 128] [--gen-tokens 64] [--reps 3]\n"
    "  serve     K client processes generating at once through ccd: ccbench serve --model NAME\n"
    "            [--clients K[,K...]] [--gen-tokens 64] [--prompt-tokens 32] [--endpoint URL]\n"
    "            [--start PATH [--threads T]]   (details: ccbench serve --help)\n"
    "  help      show this text (also: ccbench --help, ccbench <command> --help)\n"
    "\n"
    "ccbench kernels [--ops a,b,...] [--sizes N,...] [--tier T] [--threads N]\n"
    "                [--reps-ms MS] [--compare-tiers] [--no-read-bw] [--huge]\n"
    "                [--resident auto|reuse|dram] [--backend cpu|opencl|auto]\n"
    "  --ops LIST       comma-separated op names as cck_op_lookup() accepts them\n"
    "                   (aliases too), and the quantized ops qmatvec_<type>,\n"
    "                   qmatmul_<type>x<batch> and qmatmul8_<type> (<type> a\n"
    "                   cck_type_lookup() name with a dot product: q4_0, q8_0,\n"
    "                   q4_k, f16, ...).\n"
    "                   Default: every op except matmul and the quantized ones.\n"
    "  --sizes LIST     comma-separated element counts; a k/K or m/M suffix means\n"
    "                   x1000 or x1000000. Default: 1K,100K,1M,10M, or 1024 when\n"
    "                   --ops names only matmul. matvec runs on a rows x cols\n"
    "                   matrix with rows = cols = round(sqrt(n)); matmul takes n\n"
    "                   as the cube side (m = k = n; sides above 8192 are skipped).\n"
    "                   RxC (e.g. 4096x4096) is a size of n = R*C elements that\n"
    "                   the quantized ops take as R rows of C columns; for a\n"
    "                   plain n they use rows = cols = round(sqrt(n)) rounded to\n"
    "                   a multiple of 256 (at least 256).\n"
    "  --tier T         cap the SIMD tier (scalar, sse2, avx2, avx512) with\n"
    "                   cck_force_tier(); exit 2 if the host lacks it.\n"
    "  --threads N      cck_set_threads(N) (0: every online CPU). Default 1.\n"
    "  --reps-ms MS     timed budget per measurement in milliseconds, split into\n"
    "                   9 batches (5 when one call is longer than a batch).\n"
    "                   Default 100.\n"
    "  --compare-tiers  for each size and op, one line per tier the host\n"
    "                   supports (from scalar up to --tier, if given), measured\n"
    "                   back to back.\n"
    "  --no-read-bw     leave out the read_bw lines (for tools that time only ops).\n"
    "  --huge           buffers of 4 MB and more on transparent huge pages\n"
    "                   (madvise), as NumPy allocates its arrays of that size:\n"
    "                   bench/compare-numpy passes it. Default: ordinary pages.\n"
    "  --resident M     where the vector ops' buffers are when a call starts:\n"
    "                   reuse (every call the same buffers, as a loop over one\n"
    "                   array), dram (each buffer in several copies, together at\n"
    "                   least 4x the last-level cache, taken in turn: every call\n"
    "                   streams from DRAM), or auto (default): dram where a binary\n"
    "                   op's three vectors (12n bytes) are more than the last-level\n"
    "                   cache, else reuse. read_bw is measured the same way, and\n"
    "                   each line says \"resident\" (and \"copies\" with dram).\n"
    "                   Matrix ops always reuse theirs.\n"
    "  --backend B      cpu (default): libcck (cck_*); opencl: the OpenCL device\n"
    "                   (ccg_cl_*; exit 1 if there is none, saying why); auto:\n"
    "                   libccgpu's dispatch (ccg_*: the device from the op's\n"
    "                   crossover size up, measured at its first large call).\n"
    "                   The device is CC_OPENCL_DEVICE's, else the first GPU, else\n"
    "                   the first device. Each line says \"backend\"; \"tier\" stays\n"
    "                   libcck's.\n"
    "\n"
    "  Each size first prints a read_bw line, then one line per op:\n"
    "    {\"op\":\"read_bw\",\"n\":1000000,\"tier\":\"avx512\",\"threads\":1,\"ns\":..,\"gbps\":..}\n"
    "    {\"op\":\"sum\",\"n\":1000000,\"tier\":\"avx512\",\"threads\":1,\"ns\":123.4,\"gbps\":32.4}\n"
    "  ns    median time per call: after one warm-up call, calls are timed in\n"
    "        batches (CLOCK_MONOTONIC) and the median per-call time is taken.\n"
    "  gbps  bytes read + written per call / ns: 4n for a one-vector reduction,\n"
    "        8n for unary and whole-vector ops and two-vector reductions, 12n\n"
    "        for binary ops, 4(rows*cols + cols + rows) for matvec and\n"
    "        4(mk + kn + mn) for matmul.\n"
    "  tier  the tier the op actually ran on: cck_tier_name(cck_op_tier(op)).\n"
    "        For read_bw, the instruction set of ccbench's own read loop.\n"
    "  read_bw  a plain read (sum into independent accumulators, widest loads\n"
    "        the CPU has) of the same n floats, split over --threads threads:\n"
    "        the speed limit at that size, in the same run and cache state.\n"
    "  Inputs are random floats in (0.5, 2) for sqrt, rsqrt, recip, ln, log2 and\n"
    "  log10, and in (-5, 5) for everything else (div's divisor: +-(0.5, 2));\n"
    "  buffers are 64-byte aligned, written before timing, and the output\n"
    "  buffer is distinct from the inputs.\n"
    "  Quantized ops (cck_qmatvec / cck_qmatmul of an R x C weight matrix):\n"
    "    {\"op\":\"read_bw\",\"n\":2359296,..,\"gbps\":..,\"resident\":\"dram\",\"copies\":14}\n"
    "    {\"op\":\"qmatvec_q4_0\",\"n\":16777216,\"rows\":4096,\"cols\":4096,\"batch\":1,\n"
    "     \"tier\":\"avx512\",\"threads\":1,\"ns\":..,\"gbps\":..,\"weight_bytes\":9437184,\n"
    "     \"resident\":\"dram\",\"copies\":14,\"vs_read_bw\":..}\n"
    "    The weights stream from DRAM, as a model's do: there are `copies`\n"
    "    distinct copies of the matrix, together at least 4 times the last-level\n"
    "    cache (its size from /sys, else sysconf, else 32 MB), and each call uses\n"
    "    the next one, so no copy is still cached when it comes round again.\n"
    "    gbps = weight_bytes / ns (the weights are the traffic that matters; x, y\n"
    "    and the quantized activations are left out), vs_read_bw = gbps / the\n"
    "    gbps of the read_bw line printed just before it, measured in the same\n"
    "    run with the same method over a float buffer of the same total size,\n"
    "    each call reading the next weight_bytes of it in the same rotation\n"
    "    (n = weight_bytes / 4). The two are measured alternately, 3 rounds,\n"
    "    and the best round of each is printed (a burst of load from other\n"
    "    processes only slows a round down, and is left out of both alike).\n"
    "    qmatmul8_<type> times qmatvec and a batch of 8 on the same matrices in\n"
    "    the same run (each twice, alternating, the lower median kept) and adds\n"
    "    \"ns_qmatvec\", \"ns_per_column\" (ns / 8) and \"speedup_per_column\"\n"
    "    (8 ns_qmatvec / ns: what a batch of 8 saves per column; above 1: the\n"
    "    batch is cheaper than 8 qmatvec calls).\n"
    "    Weights: 64 rows quantized from random floats in (-1, 1) with\n"
    "    cck_quantize, copied to every row; x is random in (-5, 5). tier is\n"
    "    cck_tier(): libcck runs each quantized kernel on the highest tier up to\n"
    "    that one which has it. --no-read-bw leaves out the read_bw lines and\n"
    "    vs_read_bw.\n"
    "  A kernel that fails prints {\"op\":..,\"n\":..,\"tier\":..,\"threads\":..,\n"
    "  \"error\":\"...\"} instead, and ccbench exits 1 at the end.\n"
    "\n"
    "ccbench crossover [--ops LIST] [--sizes N,...] [--threads N] [--reps-ms MS]\n"
    "  Measures each op's crossover on the OpenCL device now (ccg_calibrate, with\n"
    "  libcck on --threads threads, default 1 as in a ccd job; the result goes to\n"
    "  the cache on disk, which a ccd started afterwards uses), then times each\n"
    "  size on libcck (cpu), on the device (opencl) and through the dispatch\n"
    "  (auto) in the same run (each twice, the lower median kept; cpu and auto\n"
    "  back to back):\n"
    "    {\"op\":\"add\",\"n\":100000,\"crossover\":65536,\"threads\":1,\"cpu_s\":..,\n"
    "     \"opencl_s\":..,\"auto_s\":..,\"auto_vs_cpu\":..,\"cpu_vs_cpu\":..,\"device\":\"...\"}\n"
    "  then one summary line:\n"
    "    {\"crossover_table\":{\"add\":65536,\"exp\":null,...},\"device\":\"...\",\n"
    "     \"threads\":1,\"worst_auto_vs_cpu\":..,\"worst_auto_vs_cpu_over_noise\":..}\n"
    "  crossover: elements from which the device was faster at every size\n"
    "  measured (matvec and qmatvec: elements of the matrix; matmul: multiply-\n"
    "  adds), null when it never was. auto_vs_cpu = auto_s / cpu_s: the\n"
    "  dispatch is never meant to be slower than libcck alone (1 within noise).\n"
    "  cpu_vs_cpu: libcck's two timings of the same call in this run, the larger\n"
    "  over the smaller: the noise of the moment (1 on a quiet machine);\n"
    "  worst_auto_vs_cpu_over_noise: the worst auto_vs_cpu / cpu_vs_cpu.\n"
    "  --ops: libcck op names and qmatvec_<type> (q4_0, q4_1, q8_0, q4_k, q6_k);\n"
    "  default: every op but matmul, and qmatvec of those five types. --sizes:\n"
    "  element counts, default 1K,10K,100K,1M,10M; matvec uses a square matrix\n"
    "  of n elements, matmul cubes of n multiply-adds, qmatvec squares with a\n"
    "  side that is a multiple of 256. Without a device: a line\n"
    "  {\"device\":null,\"why\":\"...\"} (and the reason on stderr), the CPU\n"
    "  figures, exit 0.\n"
    "\n"
    "ccbench matmul [--sizes N,...] [--threads N] [--reps-ms MS]\n"
    "  Square matmuls (C[n x n] = A[n x n] B[n x n]), default --sizes 1024 and\n"
    "  --reps-ms 300. OpenBLAS is loaded at run time with\n"
    "  dlopen(\"libopenblas.so.0\") and set to the same thread count\n"
    "  (OPENBLAS_NUM_THREADS and openblas_set_num_threads); OPENBLAS_CORETYPE\n"
    "  and OPENBLAS_L2_SIZE are removed from the environment first so that\n"
    "  OpenBLAS runs its own best kernels. Per size:\n"
    "    {\"op\":\"matmul\",\"n\":1024,\"impl\":\"cck\",\"threads\":1,\"ns\":..,\"gflops\":..}\n"
    "    {\"op\":\"matmul\",\"n\":1024,\"impl\":\"openblas\",\"threads\":1,\"ns\":..,\"gflops\":..}\n"
    "    {\"op\":\"matmul\",\"n\":1024,\"threads\":1,\"ratio_vs_openblas\":..}\n"
    "  gflops = 2 n^3 / ns; ratio_vs_openblas = openblas ns / cck ns (above 1:\n"
    "  cck is faster). If OpenBLAS cannot be loaded, or its result and cck's\n"
    "  differ, a line with \"error\" is printed and the run goes on.\n"
    "\n"
    "ccbench ipc [--endpoint URL] [--iters N]\n"
    "  Three measurements in one run, one line each:\n"
    "    {\"bench\":\"zmq_pingpong\",\"iters\":N,\"p50_us\":..,\"p99_us\":..}\n"
    "      1-byte round trips from a DEALER to a ROUTER (in a thread of ccbench)\n"
    "      over a temporary ipc:// socket: the transport's own latency.\n"
    "    {\"bench\":\"ccd_small_op\",\"op\":\"relu\",\"n\":8,\"iters\":N,\"p50_us\":..,\n"
    "     \"p99_us\":..,\"ratio_vs_zmq\":..}\n"
    "      cc_unary(\"relu\") on an 8-element tensor through ccd, round trip per\n"
    "      call; ratio_vs_zmq = its p50 / the ping-pong's p50.\n"
    "    {\"bench\":\"ccd_relu_16m\",\"n\":16777216,\"reps\":7,\"ccd_ms\":..,\n"
    "     \"inproc_ms\":..,\"ratio\":..}\n"
    "      relu on 16M floats through ccd (shared memory) and in-process\n"
    "      (cck_unary_f32, one thread, as ccd runs a job), 7 interleaved runs\n"
    "      each after a warm-up, medians; ratio = ccd_ms / inproc_ms. The two\n"
    "      results must be identical.\n"
    "  --endpoint URL  the ccd to use (default: $CC_ENDPOINT, else the per-user\n"
    "                  default). If none answers there, ccbench starts one\n"
    "                  ($CCD, else the ccd next to ccbench) on a temporary\n"
    "                  socket and stops it at the end.\n"
    "  --iters N       timed round trips for the two latency lines (after 1000\n"
    "                  untimed ones). Default 10000.\n"
    "  p50/p99: percentiles of the per-round-trip times (CLOCK_MONOTONIC).\n"
    "  A step that fails prints {\"bench\":..,\"error\":\"...\"} and ccbench exits 1.\n"
    "\n"
    "Exit status: 0 success, 1 a kernel or a step failed, 2 usage error or unsupported tier.\n";

static void usage(FILE *f)
{
	fputs(usage_text, f);
}

static void __attribute__((noreturn)) usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void usage_error(const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		fputs("ccbench: ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	usage(stderr);
	exit(EXIT_USAGE);
}

/* ---- timing --------------------------------------------------------------- */

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One call of the thing being timed; returns 0 or -errno. */
typedef int (*call_fn)(void *ctx);

static int time_calls(call_fn fn, void *ctx, uint64_t k, double *ns)
{
	double t0, t1;
	uint64_t i;
	int err = 0;

	t0 = now_ns();
	for (i = 0; i < k; i++) {
		int e = fn(ctx);

		if (e && !err)
			err = e;
	}
	t1 = now_ns();
	*ns = t1 - t0;
	return err;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/*
 * Median time per call: one warm-up call, a doubling calibration, then
 * NBATCH batches of about budget_ns / NBATCH each.
 */
static int measure(call_fn fn, void *ctx, double budget_ns, double *ns_out)
{
	double target = budget_ns / NBATCH;
	double v[NBATCH];
	double t, per;
	uint64_t k = 1, kb;
	int err, nb, i;

	err = fn(ctx);
	if (err)
		return err;
	for (;;) {
		err = time_calls(fn, ctx, k, &t);
		if (err)
			return err;
		if (t >= target / 4 || k >= ((uint64_t)1 << 40))
			break;
		k *= t < target / 64 ? 8 : 2;
	}
	per = t / (double)k;
	if (per >= target) {
		kb = 1;
		nb = NBATCH_SLOW;
	} else {
		kb = (uint64_t)(target / (per > 0 ? per : 1));
		if (kb < 1)
			kb = 1;
		nb = NBATCH;
	}
	for (i = 0; i < nb; i++) {
		err = time_calls(fn, ctx, kb, &t);
		if (err)
			return err;
		v[i] = t / (double)kb;
	}
	qsort(v, (size_t)nb, sizeof(v[0]), cmp_double);
	*ns_out = v[nb / 2];
	return 0;
}

/* ---- buffers and inputs --------------------------------------------------- */

#define HUGE_SZ ((size_t)2 << 20)
#define HUGE_FROM ((size_t)4 << 20)

/* --huge: buffers of HUGE_FROM bytes or more on transparent huge pages (see xalloc). */
static int opt_huge;

static void *xalloc(size_t nfloat)
{
	size_t bytes = nfloat * sizeof(float);
	void *p;

	if (nfloat > SIZE_MAX / sizeof(float) - 64) {
		fprintf(stderr, "ccbench: size too large\n");
		exit(1);
	}
	bytes = (bytes + 63) & ~(size_t)63;
	if (bytes == 0)
		bytes = 64;
	/*
	 * --huge: from 4 MB, transparent huge pages where the system gives them on request (THP "madvise"), as
	 * NumPy asks for its arrays of that size: bench/compare-numpy passes it, so that both sides stream through
	 * the same TLB reach (without it, 40 MB reductions read 15-20% slower here than the same code on a NumPy
	 * array). Not the default: read_bw then gains more than two-input ops do (one stream from DRAM speeds up
	 * with fewer TLB misses, two streams stay at about 30 GB/s here).
	 */
	if (opt_huge && bytes >= HUGE_FROM) {
		bytes = (bytes + HUGE_SZ - 1) & ~(HUGE_SZ - 1);
		p = aligned_alloc(HUGE_SZ, bytes);
#ifdef MADV_HUGEPAGE
		if (p)
			madvise(p, bytes, MADV_HUGEPAGE);
#endif
	} else {
		p = aligned_alloc(64, bytes);
	}
	if (!p) {
		fprintf(stderr, "ccbench: out of memory (%zu bytes)\n", bytes);
		exit(1);
	}
	memset(p, 0, bytes);
	return p;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [lo, hi); with signed set, a random sign too. */
static void fill_uniform(float *p, size_t n, float lo, float hi, int signed_)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t r = rng_next();
		float u = (float)(r >> 40) * (1.0f / 16777216.0f);
		float v = lo + (hi - lo) * u;

		p[i] = signed_ && (r & 1) ? -v : v;
	}
}

static int op_wants_positive(int op)
{
	switch (op) {
	case CCK_OP_SQRT:
	case CCK_OP_RSQRT:
	case CCK_OP_RECIP:
	case CCK_OP_LN:
	case CCK_OP_LOG2:
	case CCK_OP_LOG10:
		return 1;
	default:
		return 0;
	}
}

/* Parameters for ops that take them, or NULL. */
static const float *op_params(int op, float *buf)
{
	int np = cck_op_nparams(op);

	buf[0] = 0.5f;
	buf[1] = 1.0f;
	switch (op) {
	case CCK_OP_LEAKY_RELU:
		buf[0] = 0.01f;
		break;
	case CCK_OP_ELU:
		buf[0] = 1.0f;
		break;
	case CCK_OP_SCALE:
		buf[0] = 1.5f;
		break;
	case CCK_OP_ADD_SCALAR:
		buf[0] = 0.25f;
		break;
	case CCK_OP_CLAMP:
		buf[0] = -1.0f;
		buf[1] = 1.0f;
		break;
	case CCK_OP_LAYER_NORM:
		buf[0] = 1e-5f;
		break;
	case CCK_OP_RMS_NORM:
		buf[0] = 1e-6f;
		break;
	default:
		break;
	}
	return np > 0 ? buf : NULL;
}

static size_t isqrt_round(size_t n)
{
	size_t r = (size_t)llround(sqrt((double)n));

	return r ? r : 1;
}

static size_t icbrt_round(size_t n)
{
	size_t r = (size_t)llround(cbrt((double)n));

	return r ? r : 1;
}

/* ---- the plain read (read_bw) --------------------------------------------- */

typedef float (*read_fn)(const float *p, size_t n);

#ifdef CCB_X86
__attribute__((target("avx512f"))) static float read_avx512(const float *p, size_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
	size_t i = 0;
	float r;

	for (; i + 128 <= n; i += 128) {
		s0 = _mm512_add_ps(s0, _mm512_loadu_ps(p + i));
		s1 = _mm512_add_ps(s1, _mm512_loadu_ps(p + i + 16));
		s2 = _mm512_add_ps(s2, _mm512_loadu_ps(p + i + 32));
		s3 = _mm512_add_ps(s3, _mm512_loadu_ps(p + i + 48));
		s4 = _mm512_add_ps(s4, _mm512_loadu_ps(p + i + 64));
		s5 = _mm512_add_ps(s5, _mm512_loadu_ps(p + i + 80));
		s6 = _mm512_add_ps(s6, _mm512_loadu_ps(p + i + 96));
		s7 = _mm512_add_ps(s7, _mm512_loadu_ps(p + i + 112));
	}
	for (; i + 16 <= n; i += 16)
		s0 = _mm512_add_ps(s0, _mm512_loadu_ps(p + i));
	if (i < n)
		s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps((__mmask16)((1u << (n - i)) - 1), p + i));
	s0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)),
	                   _mm512_add_ps(_mm512_add_ps(s4, s5), _mm512_add_ps(s6, s7)));
	r = _mm512_reduce_add_ps(s0);
	return r;
}

__attribute__((target("avx2"))) static float read_avx2(const float *p, size_t n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
	__m128 h;
	size_t i = 0;
	float r;

	for (; i + 64 <= n; i += 64) {
		s0 = _mm256_add_ps(s0, _mm256_loadu_ps(p + i));
		s1 = _mm256_add_ps(s1, _mm256_loadu_ps(p + i + 8));
		s2 = _mm256_add_ps(s2, _mm256_loadu_ps(p + i + 16));
		s3 = _mm256_add_ps(s3, _mm256_loadu_ps(p + i + 24));
		s4 = _mm256_add_ps(s4, _mm256_loadu_ps(p + i + 32));
		s5 = _mm256_add_ps(s5, _mm256_loadu_ps(p + i + 40));
		s6 = _mm256_add_ps(s6, _mm256_loadu_ps(p + i + 48));
		s7 = _mm256_add_ps(s7, _mm256_loadu_ps(p + i + 56));
	}
	for (; i + 8 <= n; i += 8)
		s0 = _mm256_add_ps(s0, _mm256_loadu_ps(p + i));
	s0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)),
	                   _mm256_add_ps(_mm256_add_ps(s4, s5), _mm256_add_ps(s6, s7)));
	h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
	h = _mm_add_ps(h, _mm_movehl_ps(h, h));
	h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
	r = _mm_cvtss_f32(h);
	for (; i < n; i++)
		r += p[i];
	return r;
}

__attribute__((target("sse2"))) static float read_sse2(const float *p, size_t n)
{
	__m128 s0 = _mm_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
	size_t i = 0;
	float r;

	for (; i + 32 <= n; i += 32) {
		s0 = _mm_add_ps(s0, _mm_loadu_ps(p + i));
		s1 = _mm_add_ps(s1, _mm_loadu_ps(p + i + 4));
		s2 = _mm_add_ps(s2, _mm_loadu_ps(p + i + 8));
		s3 = _mm_add_ps(s3, _mm_loadu_ps(p + i + 12));
		s4 = _mm_add_ps(s4, _mm_loadu_ps(p + i + 16));
		s5 = _mm_add_ps(s5, _mm_loadu_ps(p + i + 20));
		s6 = _mm_add_ps(s6, _mm_loadu_ps(p + i + 24));
		s7 = _mm_add_ps(s7, _mm_loadu_ps(p + i + 28));
	}
	for (; i + 4 <= n; i += 4)
		s0 = _mm_add_ps(s0, _mm_loadu_ps(p + i));
	s0 = _mm_add_ps(_mm_add_ps(_mm_add_ps(s0, s1), _mm_add_ps(s2, s3)),
	                _mm_add_ps(_mm_add_ps(s4, s5), _mm_add_ps(s6, s7)));
	s0 = _mm_add_ps(s0, _mm_movehl_ps(s0, s0));
	s0 = _mm_add_ss(s0, _mm_shuffle_ps(s0, s0, 1));
	r = _mm_cvtss_f32(s0);
	for (; i < n; i++)
		r += p[i];
	return r;
}
#endif

/* Portable fallback: 8 independent 16-byte vector accumulators. */
typedef float v4f __attribute__((vector_size(16)));

static float read_generic(const float *p, size_t n)
{
	v4f s[8] = {{0}};
	size_t i = 0;
	float r = 0;
	int j;

	for (; i + 32 <= n; i += 32) {
		for (j = 0; j < 8; j++) {
			v4f t;

			memcpy(&t, p + i + 4 * j, sizeof(t));
			s[j] += t;
		}
	}
	for (j = 1; j < 8; j++)
		s[0] += s[j];
	for (j = 0; j < 4; j++)
		r += s[0][j];
	for (; i < n; i++)
		r += p[i];
	return r;
}

/* The read loops this CPU can run, widest first. */
struct read_variant {
	read_fn fn;
	const char *tier;
};

static int pick_reads(struct read_variant *v)
{
	int nv = 0;

#ifdef CCB_X86
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f"))
		v[nv++] = (struct read_variant){read_avx512, "avx512"};
	if (__builtin_cpu_supports("avx2"))
		v[nv++] = (struct read_variant){read_avx2, "avx2"};
	if (__builtin_cpu_supports("sse2"))
		v[nv++] = (struct read_variant){read_sse2, "sse2"};
#endif
	if (!nv)
		v[nv++] = (struct read_variant){read_generic, "scalar"};
	return nv;
}

/*
 * Threaded read: workers exist only while read_bw is measured and spin on a
 * generation counter, so that a call is one synchronised pass over the buffer.
 */
struct rd_slot {
	float result;
	char pad[60];
};

struct rd_pool {
	read_fn fn;
	const float *buf; /* what this call reads: base + (next % copies) * stride */
	const float *base;
	size_t n, copies, stride, next;
	int nt;
	atomic_uint gen;
	atomic_uint done;
	atomic_int quit;
	struct rd_slot *slot;
	pthread_t *tid;
	volatile float sink;
};

struct rd_arg {
	struct rd_pool *pool;
	int idx;
};

static void rd_chunk(const struct rd_pool *p, int i, size_t *start, size_t *len)
{
	size_t per = (p->n / (size_t)p->nt + 15) & ~(size_t)15;
	size_t s = per * (size_t)i;

	if (s > p->n)
		s = p->n;
	*start = s;
	*len = p->n - s < per ? p->n - s : per;
}

static inline void cpu_relax(void)
{
#ifdef CCB_X86
	_mm_pause();
#endif
}

static void *rd_worker(void *argp)
{
	struct rd_arg *a = argp;
	struct rd_pool *p = a->pool;
	unsigned seen = 0, g;
	size_t s, len;
	int spins;

	for (;;) {
		spins = 0;
		while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
			if (atomic_load_explicit(&p->quit, memory_order_acquire))
				return NULL;
			cpu_relax();
			if (++spins > 4096) {
				sched_yield();
				spins = 0;
			}
		}
		seen = g;
		rd_chunk(p, a->idx, &s, &len);
		p->slot[a->idx].result = p->fn(p->buf + s, len);
		atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel);
	}
}

static int rd_call(void *ctx)
{
	struct rd_pool *p = ctx;
	size_t s, len;
	float r;
	int i, spins = 0;

	p->buf = p->base + p->next++ % p->copies * p->stride; /* published to the workers by the gen release */
	if (p->nt == 1) {
		p->sink = p->fn(p->buf, p->n);
		return 0;
	}
	atomic_store_explicit(&p->done, 0, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->gen, 1, memory_order_acq_rel);
	rd_chunk(p, 0, &s, &len);
	r = p->fn(p->buf + s, len);
	while (atomic_load_explicit(&p->done, memory_order_acquire) < (unsigned)(p->nt - 1)) {
		cpu_relax();
		if (++spins > 4096) {
			sched_yield();
			spins = 0;
		}
	}
	for (i = 1; i < p->nt; i++)
		r += p->slot[i].result;
	p->sink = r;
	return 0;
}

/* Times reads of n floats; buf holds copies runs of n at a stride, and each call reads the next one. */
static int measure_read(read_fn fn, const float *buf, size_t n, size_t copies, size_t stride, int nt, double budget_ns,
                        double *ns)
{
	struct rd_pool *p;
	struct rd_arg *args;
	int i, started = 0, err;

	p = calloc(1, sizeof(*p));
	args = calloc((size_t)nt, sizeof(*args));
	if (!p || !args) {
		fprintf(stderr, "ccbench: out of memory\n");
		exit(1);
	}
	p->slot = aligned_alloc(64, sizeof(struct rd_slot) * (size_t)nt);
	p->tid = calloc((size_t)nt, sizeof(*p->tid));
	if (!p->slot || !p->tid) {
		fprintf(stderr, "ccbench: out of memory\n");
		exit(1);
	}
	p->fn = fn;
	p->buf = p->base = buf;
	p->n = n;
	p->copies = copies;
	p->stride = stride;
	p->nt = nt;
	atomic_init(&p->gen, 0);
	atomic_init(&p->done, 0);
	atomic_init(&p->quit, 0);
	for (i = 1; i < nt; i++) {
		args[i].pool = p;
		args[i].idx = i;
		if (pthread_create(&p->tid[i], NULL, rd_worker, &args[i]))
			break;
		started++;
	}
	if (started != nt - 1) {
		p->nt = 1 + started;
		fprintf(stderr, "ccbench: read_bw: only %d of %d threads started\n", p->nt, nt);
	}
	err = measure(rd_call, p, budget_ns, ns);
	atomic_store_explicit(&p->quit, 1, memory_order_release);
	for (i = 1; i <= started; i++)
		pthread_join(p->tid[i], NULL);
	free(p->tid);
	free(p->slot);
	free(args);
	free(p);
	return err;
}

static void print_result_x(const char *op, size_t n, const char *tier, int threads, double ns, double bytes,
                           const char *extra);

/*
 * read_bw: every read loop the CPU has, back to back, and the fastest wins
 * (on some CPUs narrower loads stream from DRAM faster than the widest).
 * A call reads n floats; with copies > 1, buf holds that many runs of n floats
 * stride apart and successive calls read them in turn. extra (if not NULL) is
 * appended to the JSON line (",\"key\":value...").
 */
/* read_bw without its line: the fastest variant's time in *best_ns, its index in *besti. */
static int read_best(const struct read_variant *v, int nv, const float *buf, size_t n, size_t copies, size_t stride,
                     int threads, double budget_ns, double *best_ns, int *besti)
{
	double ns;
	int err;

	for (int i = 0; i < nv; i++) {
		err = measure_read(v[i].fn, buf, n, copies, stride, threads, budget_ns, &ns);
		if (err)
			return err;
		if (i == 0 || ns < *best_ns) {
			*best_ns = ns;
			*besti = i;
		}
	}
	return 0;
}

static int read_bw(const struct read_variant *v, int nv, const float *buf, size_t n, size_t copies, size_t stride,
                   int threads, double budget_ns, double *best_ns, const char *extra)
{
	double best = 0;
	int besti = 0, err = read_best(v, nv, buf, n, copies, stride, threads, budget_ns, &best, &besti);

	if (err)
		return err;
	print_result_x("read_bw", n, v[besti].tier, threads, best, 4.0 * (double)n, extra);
	if (best_ns)
		*best_ns = best;
	return 0;
}

/* ---- output --------------------------------------------------------------- */

/* The backend the ops of this run go through (`ccbench kernels --backend`), named in every line. */
static const char *g_be_name = "cpu";

static void print_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_result_x(const char *op, size_t n, const char *tier, int threads, double ns, double bytes,
                           const char *extra)
{
	printf("{\"op\":");
	print_json_string(op);
	printf(",\"n\":%zu,\"tier\":", n);
	print_json_string(tier);
	printf(",\"threads\":%d,\"backend\":\"%s\",\"ns\":%.1f,\"gbps\":%.2f%s}\n", threads, g_be_name, ns,
	       ns > 0 ? bytes / ns : 0.0, extra ? extra : "");
	fflush(stdout);
}

static void print_error(const char *op, size_t n, const char *tier, int threads, const char *what, int err)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "%s: %s", what, strerror(err < 0 ? -err : err));
	printf("{\"op\":");
	print_json_string(op);
	printf(",\"n\":%zu,\"tier\":", n);
	print_json_string(tier ? tier : "unknown");
	printf(",\"threads\":%d,\"backend\":\"%s\",\"error\":", threads, g_be_name);
	print_json_string(msg);
	printf("}\n");
	fflush(stdout);
}

/* ---- argument parsing ----------------------------------------------------- */

static int parse_count(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;
	unsigned long long mul = 1;

	if (!*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	if (*end == 'k' || *end == 'K') {
		mul = 1000;
		end++;
	} else if (*end == 'm' || *end == 'M') {
		mul = 1000000;
		end++;
	}
	if (*end || v == 0 || v > SIZE_MAX / 16 / mul)
		return -1;
	*out = (size_t)(v * mul);
	return 0;
}

/* A size: a count n, or RxC (n = R*C; shape[] gets R and C, else 0 and 0). */
static int parse_size(char *tok, size_t *n, size_t shape[2])
{
	char *x = strchr(tok, 'x');

	shape[0] = shape[1] = 0;
	if (!x)
		return parse_count(tok, n);
	*x = '\0';
	if (parse_count(tok, &shape[0]) || parse_count(x + 1, &shape[1]) || shape[0] > SIZE_MAX / 16 / shape[1])
		return -1;
	*n = shape[0] * shape[1];
	return 0;
}

static int parse_sizes(const char *arg, size_t *sizes, size_t (*shapes)[2])
{
	char *copy = strdup(arg), *save = NULL, *tok;
	int count = 0;

	if (!copy)
		exit(1);
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (count == MAX_SIZES)
			usage_error("too many sizes (at most %d)", MAX_SIZES);
		if (parse_size(tok, &sizes[count], shapes[count]))
			usage_error("bad size '%s'", tok);
		count++;
	}
	free(copy);
	if (!count)
		usage_error("empty --sizes");
	return count;
}

/* A quantized op: cck_qmatvec (batch 0) or cck_qmatmul on batch rows of x; pair: also qmatvec, compared. */
struct qop {
	int type;
	size_t batch;
	int pair;
};
#define MAX_QOPS 64

/* --resident: where the vector ops' buffers are when a call starts (resident_copies). */
enum { RES_AUTO, RES_REUSE, RES_DRAM };

/* qmatvec_<type>, qmatmul_<type>x<batch> or qmatmul8_<type> into *q: 1, or 0 if tok is none of them. */
static int parse_qop(const char *tok, struct qop *q)
{
	char name[32], *x;
	int type;

	q->pair = 0;
	if (!strncmp(tok, "qmatmul8_", 9)) {
		snprintf(name, sizeof(name), "%s", tok + 9);
		q->batch = 8;
		q->pair = 1;
	} else if (!strncmp(tok, "qmatvec_", 8)) {
		snprintf(name, sizeof(name), "%s", tok + 8);
		q->batch = 0;
	} else if (!strncmp(tok, "qmatmul_", 8)) {
		snprintf(name, sizeof(name), "%s", tok + 8);
		x = strrchr(name, 'x');
		if (!x || parse_count(x + 1, &q->batch) || q->batch > 4096)
			usage_error("bad op '%s' (qmatmul_<type>x<batch>, batch 1..4096)", tok);
		*x = '\0';
	} else {
		return 0;
	}
	type = cck_type_lookup(name);
	if (type < 0 || !cck_type_has_dot(type))
		usage_error("unknown op '%s' (no quantized type '%s' with a dot product)", tok, name);
	q->type = type;
	return 1;
}

static int parse_ops(const char *arg, int *ops, struct qop *qops, int *nqops)
{
	char *copy = strdup(arg), *save = NULL, *tok;
	int count = 0, op, i, dup;

	if (!copy)
		exit(1);
	*nqops = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct qop q;

		if (parse_qop(tok, &q)) {
			for (dup = 0, i = 0; i < *nqops; i++)
				dup |= qops[i].type == q.type && qops[i].batch == q.batch && qops[i].pair == q.pair;
			if (!dup && *nqops == MAX_QOPS)
				usage_error("too many quantized ops (at most %d)", MAX_QOPS);
			if (!dup)
				qops[(*nqops)++] = q;
			continue;
		}
		op = cck_op_lookup(tok);
		if (op < 0 || op >= CCK_OP_COUNT)
			usage_error("unknown op '%s'", tok);
		for (dup = 0, i = 0; i < count; i++)
			dup |= ops[i] == op;
		if (!dup)
			ops[count++] = op;
	}
	free(copy);
	if (!count && !*nqops)
		usage_error("empty --ops");
	return count;
}

static int parse_int(const char *opt, const char *s, int lo, int hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		usage_error("bad value '%s' for %s", s, opt);
	return (int)v;
}

static int setup_threads(int threads)
{
	int r = cck_set_threads(threads);

	if (r < 1) {
		fprintf(stderr, "ccbench: cck_set_threads(%d) failed: %s\n", threads, strerror(r < 0 ? -r : EINVAL));
		exit(EXIT_USAGE);
	}
	return r;
}

static void force_tier_or_die(const char *name)
{
	int r = cck_force_tier(name);

	if (r == -ENOTSUP) {
		fprintf(stderr, "ccbench: tier '%s' is not supported by this host (host tier: %s)\n", name,
		        cck_host_tier());
		exit(EXIT_USAGE);
	}
	if (r) {
		fprintf(stderr, "ccbench: unknown tier '%s' (scalar, sse2, avx2, avx512)\n", name);
		exit(EXIT_USAGE);
	}
}

/* ---- backends: libcck, the OpenCL device, or libccgpu's dispatch between them --------------------------------- */

/* The op table of one backend (the same signatures as cck.h). */
struct backend {
	const char *name;
	int (*unary)(int op, const float *x, float *y, size_t n, const float *params);
	int (*binary)(int op, const float *a, const float *b, float *y, size_t n);
	int (*reduce)(int op, const float *x, size_t n, double *ret);
	int (*reduce2)(int op, const float *a, const float *b, size_t n, double *ret);
	int (*matvec)(const float *A, const float *x, float *y, size_t rows, size_t cols);
	int (*matmul)(const float *A, const float *B, float *C, size_t m, size_t k, size_t n);
	int (*qmatvec)(int type, const void *W, size_t row_stride, const float *x, float *y, size_t rows, size_t cols);
	int (*qmatmul)(int type, const void *W, size_t row_stride, const float *X, float *Y, size_t rows, size_t cols,
	               size_t batch);
};

enum { BE_CPU = 0, BE_OPENCL, BE_AUTO, BE_COUNT };

/* auto's qmatmul is libcck's: the dispatch has no qmatmul (the engine's offloaded layers keep theirs on the device
 * with ccg_mat instead). */
static const struct backend backends[BE_COUNT] = {
    [BE_CPU] = {"cpu", cck_unary_f32, cck_binary_f32, cck_reduce_f32, cck_reduce2_f32, cck_matvec_f32, cck_matmul_f32,
                cck_qmatvec, cck_qmatmul},
    [BE_OPENCL] = {"opencl", ccg_cl_unary_f32, ccg_cl_binary_f32, ccg_cl_reduce_f32, ccg_cl_reduce2_f32,
                   ccg_cl_matvec_f32, ccg_cl_matmul_f32, ccg_cl_qmatvec, ccg_cl_qmatmul},
    [BE_AUTO] = {"auto", ccg_unary_f32, ccg_binary_f32, ccg_reduce_f32, ccg_reduce2_f32, ccg_matvec_f32, ccg_matmul_f32,
                 ccg_qmatvec, cck_qmatmul},
};

/* The backend `ccbench kernels` runs the ops on (--backend). */
static const struct backend *g_be = &backends[BE_CPU];

static int backend_lookup(const char *name)
{
	for (int i = 0; i < BE_COUNT; i++)
		if (!strcmp(name, backends[i].name))
			return i;
	usage_error("unknown backend '%s' (cpu, opencl or auto)", name);
}

/*
 * Make backend be usable: the device for opencl (0, or -ENODEV after saying why on stderr and in a JSON line),
 * and for auto libccgpu's dispatch set to auto whatever CC_BACKEND says.
 */
static int backend_setup(int be, const char *cmd)
{
	if (be == BE_CPU)
		return 0;
	if (ccg_init() < 0 && be == BE_OPENCL) {
		fprintf(stderr, "ccbench %s: no OpenCL device: %s\n", cmd, ccg_why());
		printf("{\"backend\":\"opencl\",\"error\":");
		print_json_string(ccg_why());
		printf("}\n");
		fflush(stdout);
		return -ENODEV;
	}
	if (be == BE_AUTO)
		ccg_set_backend(CCG_BACKEND_AUTO);
	return 0;
}

/* ---- kernels -------------------------------------------------------------- */

/* Everything one op call needs at one size. */
struct op_ctx {
	const struct backend *be;
	int op;
	int kind;
	size_t n;
	const float *x; /* first input */
	const float *b; /* second input */
	float *y;       /* output */
	const float *params;
	const float *A; /* matrix ops */
	const float *B;
	float *C;
	size_t rows, cols;
	size_t copies, stride, next; /* vector ops: call k uses x, b and y + (k % copies) * stride */
	volatile double sink;
};

/* The offset (floats) of this call's copy of the vector operands. */
static size_t op_next(struct op_ctx *c)
{
	return c->copies > 1 ? c->next++ % c->copies * c->stride : 0;
}

static int call_unary(void *p)
{
	struct op_ctx *c = p;
	size_t o = op_next(c);

	return c->be->unary(c->op, c->x + o, c->y + o, c->n, c->params);
}

static int call_binary(void *p)
{
	struct op_ctx *c = p;
	size_t o = op_next(c);

	return c->be->binary(c->op, c->x + o, c->b + o, c->y + o, c->n);
}

static int call_reduce(void *p)
{
	struct op_ctx *c = p;
	double r = 0;
	size_t o = op_next(c);
	int err = c->be->reduce(c->op, c->x + o, c->n, &r);

	c->sink = r;
	return err;
}

static int call_reduce2(void *p)
{
	struct op_ctx *c = p;
	double r = 0;
	size_t o = op_next(c);
	int err = c->be->reduce2(c->op, c->x + o, c->b + o, c->n, &r);

	c->sink = r;
	return err;
}

static int call_matvec(void *p)
{
	struct op_ctx *c = p;

	return c->be->matvec(c->A, c->x, c->y, c->rows, c->cols);
}

static int call_matmul(void *p)
{
	struct op_ctx *c = p;

	return c->be->matmul(c->A, c->B, c->C, c->rows, c->rows, c->rows);
}

/*
 * Inputs for one size, shared by every op at that size. The vector buffers
 * (not the matrices) hold `copies` runs of n floats, stride floats apart, and
 * successive calls take them in turn (see resident_copies).
 */
struct size_bufs {
	size_t n, copies, stride;
	float *sym;     /* (-5, 5) */
	float *pos;     /* (0.5, 2) */
	float *sym2;    /* second operand, (-5, 5) */
	float *divisor; /* +-(0.5, 2) */
	float *out;
	float *mat; /* matvec: rows x cols */
	size_t mrows;
	float *mm[3]; /* matmul: A, B, C of side x side */
	size_t side;
};

static void bufs_free(struct size_bufs *s)
{
	free(s->sym);
	free(s->pos);
	free(s->sym2);
	free(s->divisor);
	free(s->out);
	free(s->mat);
	free(s->mm[0]);
	free(s->mm[1]);
	free(s->mm[2]);
	memset(s, 0, sizeof(*s));
}

/* A buffer of n floats, uniform in [lo, hi) (random sign if signed_), made on first use. */
static float *lazy_buf(float **slot, size_t n, float lo, float hi, int signed_)
{
	if (!*slot) {
		*slot = xalloc(n);
		fill_uniform(*slot, n, lo, hi, signed_);
	}
	return *slot;
}

/* A vector buffer of s: copies runs of n floats, each the same random values (made on first use). */
static float *lazy_vec(const struct size_bufs *s, float **slot, float lo, float hi, int signed_)
{
	if (!*slot) {
		*slot = xalloc((s->copies - 1) * s->stride + s->n);
		fill_uniform(*slot, s->n, lo, hi, signed_);
		for (size_t k = 1; k < s->copies; k++)
			memcpy(*slot + k * s->stride, *slot, s->n * sizeof(float));
	}
	return *slot;
}

/* The first input and the output are made at once; the rest when an op needs them. */
static void bufs_alloc(struct size_bufs *s, size_t n, size_t copies)
{
	memset(s, 0, sizeof(*s));
	s->n = n;
	s->copies = copies ? copies : 1;
	s->stride = (n + 1023) & ~(size_t)1023; /* whole 4 KB pages apart */
	lazy_vec(s, &s->sym, -5.0f, 5.0f, 0);
	s->out = xalloc((s->copies - 1) * s->stride + n);
	if (n <= MATMUL_MAX_SIDE)
		s->side = n;
}

/* Set c up for op at s; returns the call and the bytes moved per call. */
static call_fn op_setup(struct op_ctx *c, int op, struct size_bufs *s, float *pbuf, double *bytes)
{
	size_t n = s->n;

	memset(c, 0, sizeof(*c));
	c->be = g_be;
	c->op = op;
	c->kind = cck_op_kind(op);
	c->n = n;
	c->copies = s->copies;
	c->stride = s->stride;
	c->x = op_wants_positive(op) ? lazy_vec(s, &s->pos, 0.5f, 2.0f, 0) : s->sym;
	c->y = s->out;
	c->params = op_params(op, pbuf);
	switch (c->kind) {
	case CCK_KIND_UNARY:
	case CCK_KIND_VECTOR:
		*bytes = 8.0 * (double)n;
		return call_unary;
	case CCK_KIND_BINARY:
		c->b = op == CCK_OP_DIV ? lazy_vec(s, &s->divisor, 0.5f, 2.0f, 1) : lazy_vec(s, &s->sym2, -5.0f, 5.0f, 0);
		*bytes = 12.0 * (double)n;
		return call_binary;
	case CCK_KIND_REDUCE:
		*bytes = 4.0 * (double)n;
		return call_reduce;
	case CCK_KIND_REDUCE2:
		c->b = lazy_vec(s, &s->sym2, -5.0f, 5.0f, 0);
		*bytes = 8.0 * (double)n;
		return call_reduce2;
	case CCK_KIND_MATRIX:
		c->copies = 1; /* the matrices are single buffers: x, y (and A) are the same every call */
		if (op == CCK_OP_MATVEC) {
			if (!s->mat) {
				s->mrows = isqrt_round(n);
				lazy_buf(&s->mat, s->mrows * s->mrows, -5.0f, 5.0f, 0);
			}
			c->rows = c->cols = s->mrows;
			c->A = s->mat;
			c->x = s->sym;
			*bytes = 4.0 * ((double)c->rows * (double)c->cols + (double)c->cols + (double)c->rows);
			return call_matvec;
		}
		if (op == CCK_OP_MATMUL && s->side) {
			double sd = (double)s->side;

			lazy_buf(&s->mm[0], n * n, -5.0f, 5.0f, 0);
			lazy_buf(&s->mm[1], n * n, -5.0f, 5.0f, 0);
			if (!s->mm[2])
				s->mm[2] = xalloc(n * n);
			c->rows = c->cols = s->side;
			c->A = s->mm[0];
			c->B = s->mm[1];
			c->C = s->mm[2];
			*bytes = 4.0 * 3.0 * sd * sd;
			return call_matmul;
		}
		return NULL;
	default:
		return NULL;
	}
}

static const char *op_tier_name(int op)
{
	const char *t = cck_tier_name(cck_op_tier(op));

	return t ? t : "unknown";
}

/* The "resident" (and "copies") keys of a line whose calls took copies runs of their vectors in turn. */
static const char *resident_extra(size_t copies, char *buf, size_t size)
{
	if (copies > 1)
		snprintf(buf, size, ",\"resident\":\"dram\",\"copies\":%zu", copies);
	else
		snprintf(buf, size, ",\"resident\":\"reuse\"");
	return buf;
}

static size_t llc_bytes(void);

/*
 * --resident for the vector ops at n floats: the copies of each vector buffer
 * that calls take in turn (1: every call reuses the same buffers).
 *
 * reuse: 1. dram: enough copies that each buffer's copies together are at
 * least 4 times the last-level cache, so that a copy has left the cache by the
 * time it comes round again (at least 2). auto (the default): dram where the
 * largest working set of a call at this size (a binary op's x, b and y: 12n
 * bytes) is more than the last-level cache, else reuse. So every op at a size
 * and its read_bw line stream from the same place: at 10M floats on a 32 MB
 * L3, a reused 40 MB read_bw buffer was still 20-40% in the L3 from one call to
 * the next (30-40 GB/s against 25 GB/s from DRAM), while a two-vector reduction
 * (80 MB) never was, so their ratio measured the L3's leftovers, not the op.
 */
static size_t resident_copies(int mode, size_t n)
{
	size_t llc = llc_bytes(), c;

	if (mode == RES_REUSE || (mode == RES_AUTO && (n > SIZE_MAX / 12 || 12 * n <= llc)))
		return 1;
	c = n > SIZE_MAX / 4 ? 1 : (4 * llc + 4 * n - 1) / (4 * n);
	return c < 2 ? 2 : c;
}

/* Time one op at one size on the current tier and print its line; 0 or -errno. */
static int bench_op(int op, struct size_bufs *s, int threads, double budget_ns)
{
	struct op_ctx c;
	float pbuf[2];
	double bytes = 0, ns = 0;
	const char *name = cck_op_name(op);
	const char *tier = op_tier_name(op);
	char extra[64];
	call_fn fn;
	int err;

	if (!name)
		name = "unknown";
	fn = op_setup(&c, op, s, pbuf, &bytes);
	if (!fn) {
		print_error(name, s->n, tier, threads, "no way to call this op", EINVAL);
		return -EINVAL;
	}
	err = measure(fn, &c, budget_ns, &ns);
	if (err) {
		print_error(name, s->n, tier, threads, "kernel failed", err);
		return err;
	}
	print_result_x(name, s->n, tier, threads, ns, bytes, resident_extra(c.copies, extra, sizeof(extra)));
	return 0;
}

/* ---- quantized ops (cck_qmatvec / cck_qmatmul) ------------------------------- */

#define QOP_ROUNDS 3 /* bench_qop: rounds of read_bw and the op, alternating; the best of each counts */

/* Each call multiplies by the next of copies weight matrices, stride bytes apart from W. */
struct qop_ctx {
	const struct backend *be;
	int type;
	const unsigned char *W;
	const float *x;
	float *y;
	size_t rows, cols, batch;
	size_t copies, stride, next;
};

static const void *qop_next_w(struct qop_ctx *c)
{
	return c->W + c->next++ % c->copies * c->stride;
}

static int call_qmatvec(void *p)
{
	struct qop_ctx *c = p;

	return c->be->qmatvec(c->type, qop_next_w(c), 0, c->x, c->y, c->rows, c->cols);
}

static int call_qmatmul(void *p)
{
	struct qop_ctx *c = p;

	return c->be->qmatmul(c->type, qop_next_w(c), 0, c->x, c->y, c->rows, c->cols, c->batch);
}

/*
 * qmatmul8_<type>: qmatvec (*mv_ns) and the batch (*mm_ns) on the same
 * matrices, each measured twice, alternating, the lower median kept (the
 * two are compared: a burst of noise during one of them would skew the
 * ratio).
 */
static int measure_pair(struct qop_ctx *c, double budget_ns, double *mm_ns, double *mv_ns)
{
	double t;
	int err = 0;

	*mm_ns = *mv_ns = 0;
	for (int k = 0; k < 2 && !err; k++) {
		err = measure(call_qmatvec, c, budget_ns / 2, &t);
		if (!err && (k == 0 || t < *mv_ns))
			*mv_ns = t;
		if (!err)
			err = measure(call_qmatmul, c, budget_ns / 2, &t);
		if (!err && (k == 0 || t < *mm_ns))
			*mm_ns = t;
	}
	return err;
}

/* The matrix shape of a quantized op at a size: RxC as given, else a square with a side multiple of 256. */
static void qop_shape(size_t n, const size_t shape[2], size_t *rows, size_t *cols)
{
	size_t side;

	if (shape[0]) {
		*rows = shape[0];
		*cols = shape[1];
		return;
	}
	side = isqrt_round(n) / 256 * 256;
	*rows = *cols = side ? side : 256;
}

#define DEF_LLC_BYTES ((size_t)32 << 20)

/*
 * Bytes of the last-level cache: the largest unified cache of cpu0 in /sys,
 * else sysconf(_SC_LEVEL3_CACHE_SIZE), else 32 MB. /sys comes first because
 * sysconf can be far off in a VM (one here says 320 MB for a 32 MB L3).
 */
static size_t llc_bytes(void)
{
	size_t best = 0;
	long sc;

	for (int i = 0; i < 8; i++) {
		char path[96], buf[64], *end;
		unsigned long long v;
		FILE *f;

		snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
		f = fopen(path, "r");
		if (!f)
			break;
		if (fgets(buf, sizeof(buf), f)) {
			errno = 0;
			v = strtoull(buf, &end, 10);
			if (!errno && end != buf) {
				if (*end == 'K')
					v <<= 10;
				else if (*end == 'M')
					v <<= 20;
				else if (*end == 'G')
					v <<= 30;
				if (v > best && v <= SIZE_MAX)
					best = (size_t)v;
			}
		}
		fclose(f);
	}
	if (best >= ((size_t)1 << 20))
		return best;
#ifdef _SC_LEVEL3_CACHE_SIZE
	sc = sysconf(_SC_LEVEL3_CACHE_SIZE);
	if (sc > 0)
		return (size_t)sc;
#else
	(void)sc;
#endif
	return DEF_LLC_BYTES;
}

/*
 * Time one quantized op at one shape: a read_bw line (unless no_read), then
 * the op's line. 0 or -errno.
 *
 * The weights are streamed from DRAM, as a model's are: a real model is
 * 100 MB and more, far past any L3, so a matrix that fits the L3 (a 4096 x
 * 4096 q4_0 one is 9.4 MB) would time a cache-resident case that inference
 * never sees, against a cache-speed read_bw. So there are `copies` distinct
 * copies of the matrix, together at least 4 times the LLC, and each call uses
 * the next one: by the time a copy comes round again it has been evicted.
 * read_bw reads a float buffer of the same total size in the same rotation
 * (each call the next copy's bytes), so vs_read_bw compares like with like.
 */
static int bench_qop(const struct qop *q, size_t n, const size_t shape[2], int threads, double budget_ns, int no_read,
                     const struct read_variant *rv, int nrv)
{
	enum { SRC_ROWS = 64 };
	const char *tname = cck_type_name(q->type), *tier = cck_tier();
	size_t rows, cols, row_bytes, wbytes, wstride, copies, nx, r, src_rows, llc, nf;
	char name[64], extra[64];
	struct qop_ctx c;
	double ns = 0, read_ns = 0, mv_ns = 0, gbps;
	unsigned char *W = NULL, *src_q;
	float *src, *x, *y, *rb;
	int err, read_i = 0;

	qop_shape(n, shape, &rows, &cols);
	if (q->pair)
		snprintf(name, sizeof(name), "qmatmul8_%s", tname);
	else if (q->batch)
		snprintf(name, sizeof(name), "qmatmul_%sx%zu", tname, q->batch);
	else
		snprintf(name, sizeof(name), "qmatvec_%s", tname);
	err = cck_type_row_bytes(q->type, cols, &row_bytes);
	if (err || rows > SIZE_MAX / 16 / row_bytes) {
		print_error(name, rows * cols, tier, threads, "bad shape (cols must be a multiple of the block size)",
		            err ? err : EOVERFLOW);
		return err ? err : -EOVERFLOW;
	}
	wbytes = rows * row_bytes;
	wstride = (wbytes + 63) & ~(size_t)63; /* every copy 64-byte aligned */
	llc = llc_bytes();
	copies = llc > SIZE_MAX / 8 ? 1 : (4 * llc + wbytes - 1) / wbytes;
	if (copies < 1)
		copies = 1;
	if (copies > SIZE_MAX / 8 / wstride) {
		print_error(name, rows * cols, tier, threads, "weight copies too large", EOVERFLOW);
		return -EOVERFLOW;
	}
	snprintf(extra, sizeof(extra), ",\"resident\":\"dram\",\"copies\":%zu", copies);
	src_rows = rows < SRC_ROWS ? rows : SRC_ROWS;
	/* A few distinct quantized rows, copied over the whole matrix: every weight byte is still read. */
	src = xalloc(src_rows * cols);
	fill_uniform(src, src_rows * cols, -1.0f, 1.0f, 0);
	src_q = xalloc((src_rows * row_bytes + 3) / 4);
	for (r = 0; r < src_rows && !err; r++)
		err = cck_quantize(q->type, src + r * cols, src_q + r * row_bytes, cols);
	free(src);
	if (err) {
		print_error(name, rows * cols, tier, threads, "cck_quantize failed", err);
		free(src_q);
		return err;
	}
	W = xalloc(copies * wstride / 4);
	for (r = 0; r < rows; r++)
		memcpy(W + r * row_bytes, src_q + (r % src_rows) * row_bytes, row_bytes);
	free(src_q);
	for (r = 1; r < copies; r++)
		memcpy(W + r * wstride, W, wbytes);
	nx = cols * (q->batch ? q->batch : 1);
	x = xalloc(nx);
	fill_uniform(x, nx, -5.0f, 5.0f, 0);
	y = xalloc(rows * (q->batch ? q->batch : 1));

	/*
	 * QOP_ROUNDS rounds, each the read (unless no_read) then the op, and the best round of each counts: the two
	 * figures of the ratio are taken alternately, so that a burst of load from other processes, which only
	 * ever slows a round down, is left out of both the same way (one round each: vs_read_bw varied by 0.1 here).
	 */
	nf = (wbytes + 3) / 4;
	rb = no_read ? NULL : xalloc(copies * wstride / 4);
	if (rb)
		fill_uniform(rb, copies * wstride / 4, -5.0f, 5.0f, 0);
	c = (struct qop_ctx){g_be, q->type, W, x, y, rows, cols, q->batch, copies, wstride, 0};
	err = 0;
	for (int round = 0; round < QOP_ROUNDS && !err; round++) {
		double rns = 0, ons = 0, mns = 0;
		int ri = 0, rerr;

		if (rb) {
			if ((rerr = read_best(rv, nrv, rb, nf, copies, wstride / 4, threads, budget_ns, &rns, &ri))) {
				print_error("read_bw", nf, rv[0].tier, threads, "read failed", rerr);
				free(rb);
				rb = NULL;
				read_ns = 0;
			} else if (round == 0 || rns < read_ns) {
				read_ns = rns;
				read_i = ri;
			}
		}
		if (q->pair)
			err = measure_pair(&c, budget_ns, &ons, &mns);
		else
			err = measure(q->batch ? call_qmatmul : call_qmatvec, &c, budget_ns, &ons);
		if (!err && (round == 0 || ons < ns)) {
			ns = ons;
			mv_ns = mns;
		}
	}
	if (rb) {
		print_result_x("read_bw", nf, rv[read_i].tier, threads, read_ns, 4.0 * (double)nf, extra);
		free(rb);
	}
	free(W);
	free(x);
	free(y);
	if (err) {
		print_error(name, rows * cols, tier, threads, "kernel failed", err);
		return err;
	}
	gbps = ns > 0 ? (double)wbytes / ns : 0.0;
	printf("{\"op\":");
	print_json_string(name);
	printf(",\"n\":%zu,\"rows\":%zu,\"cols\":%zu,\"batch\":%zu,\"tier\":", rows * cols, rows, cols,
	       q->batch ? q->batch : 1);
	print_json_string(tier);
	printf(",\"threads\":%d,\"backend\":\"%s\",\"ns\":%.1f,\"gbps\":%.2f,\"weight_bytes\":%zu%s", threads,
	       g_be_name, ns, gbps, wbytes, extra);
	if (read_ns > 0)
		printf(",\"vs_read_bw\":%.3f", gbps / ((double)wbytes / read_ns));
	if (q->pair)
		printf(",\"ns_qmatvec\":%.1f,\"ns_per_column\":%.1f,\"speedup_per_column\":%.3f", mv_ns,
		       ns / (double)q->batch, ns > 0 ? (double)q->batch * mv_ns / ns : 0.0);
	printf("}\n");
	fflush(stdout);
	return 0;
}

static int cmd_kernels(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"ops", required_argument, NULL, 'o'},     {"sizes", required_argument, NULL, 's'},
	    {"tier", required_argument, NULL, 't'},    {"threads", required_argument, NULL, 'j'},
	    {"reps-ms", required_argument, NULL, 'r'}, {"compare-tiers", no_argument, NULL, 'c'},
	    {"no-read-bw", no_argument, NULL, 'R'},    {"backend", required_argument, NULL, 'b'},
	    {"huge", no_argument, NULL, 'H'},          {"resident", required_argument, NULL, 'E'},
	    {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	static const size_t default_sizes[] = {1000, 100000, 1000000, 10000000};
	int be = BE_CPU;
	int ops[CCK_OP_COUNT];
	size_t sizes[MAX_SIZES], shapes[MAX_SIZES][2];
	struct qop qops[MAX_QOPS];
	int nops = 0, nqops = 0, ops_given = 0, nsizes = 0, threads = 1, reps_ms = DEF_REPS_MS, compare = 0;
	const char *tier = NULL, *cap_name;
	int tiers[CCK_TIER_COUNT], ntiers = 0;
	int only_matmul = 1, no_read = 0, failed = 0, resident = RES_AUTO;
	char cap_buf[32], extra[64];
	struct read_variant rv[4];
	int nrv;
	int ch, i, j, t;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			nops = parse_ops(optarg, ops, qops, &nqops);
			ops_given = 1;
			break;
		case 's':
			nsizes = parse_sizes(optarg, sizes, shapes);
			break;
		case 't':
			tier = optarg;
			break;
		case 'j':
			threads = parse_int("--threads", optarg, 0, 4096);
			break;
		case 'r':
			reps_ms = parse_int("--reps-ms", optarg, 1, 3600 * 1000);
			break;
		case 'c':
			compare = 1;
			break;
		case 'R':
			no_read = 1;
			break;
		case 'H':
			opt_huge = 1;
			break;
		case 'E':
			if (!strcmp(optarg, "auto"))
				resident = RES_AUTO;
			else if (!strcmp(optarg, "reuse"))
				resident = RES_REUSE;
			else if (!strcmp(optarg, "dram"))
				resident = RES_DRAM;
			else
				usage_error("--resident: auto, reuse or dram, not '%s'", optarg);
			break;
		case 'b':
			be = backend_lookup(optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage_error(NULL);
		}
	}
	if (optind != argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (compare && be != BE_CPU)
		usage_error("--compare-tiers compares libcck's tiers: only with --backend cpu");
	if (backend_setup(be, "kernels") < 0)
		return 1;
	g_be = &backends[be];
	g_be_name = g_be->name;

	if (!ops_given) {
		for (i = 0; i < CCK_OP_COUNT; i++)
			if (i != CCK_OP_MATMUL)
				ops[nops++] = i;
	}
	for (i = 0; i < nops; i++) {
		only_matmul &= ops[i] == CCK_OP_MATMUL;
	}
	if (!nsizes) {
		memset(shapes, 0, sizeof(shapes));
		if (nqops && !nops) {
			shapes[0][0] = shapes[0][1] = 4096;
			sizes[nsizes++] = 4096 * 4096;
		} else if (only_matmul) {
			sizes[nsizes++] = 1024;
		} else {
			for (i = 0; i < (int)(sizeof(default_sizes) / sizeof(default_sizes[0])); i++)
				sizes[nsizes++] = default_sizes[i];
		}
	}

	if (tier)
		force_tier_or_die(tier);
	threads = setup_threads(threads);
	nrv = pick_reads(rv);

	/* The cap: --tier, else whatever is in use (CCK_TIER may have capped it). */
	snprintf(cap_buf, sizeof(cap_buf), "%s", cck_tier());
	cap_name = cap_buf;
	if (compare) {
		for (t = 0; t < CCK_TIER_COUNT; t++) {
			const char *tn = cck_tier_name(t);

			if (tn && cck_force_tier(tn) == 0)
				tiers[ntiers++] = t;
			if (tn && !strcmp(tn, cap_name))
				break;
		}
		force_tier_or_die(cap_name);
	}

	for (i = 0; i < nsizes; i++) {
		struct size_bufs s;
		size_t n = sizes[i];
		int err;

		for (j = 0; j < nqops; j++) {
			if (!compare) {
				failed |=
				    bench_qop(&qops[j], n, shapes[i], threads, reps_ms * 1e6, no_read, rv, nrv) != 0;
				continue;
			}
			for (t = 0; t < ntiers; t++) {
				force_tier_or_die(cck_tier_name(tiers[t]));
				failed |=
				    bench_qop(&qops[j], n, shapes[i], threads, reps_ms * 1e6, no_read, rv, nrv) != 0;
			}
			force_tier_or_die(cap_name);
		}
		if (!nops)
			continue;
		bufs_alloc(&s, n, resident_copies(resident, n));
		err = no_read ? 0
		              : read_bw(rv, nrv, s.sym, n, s.copies, s.stride, threads, reps_ms * 1e6, NULL,
		                        resident_extra(s.copies, extra, sizeof(extra)));
		if (err)
			print_error("read_bw", n, rv[0].tier, threads, "read failed", err);
		for (j = 0; j < nops; j++) {
			int op = ops[j];

			if (op == CCK_OP_MATMUL && !s.side) {
				fprintf(stderr, "ccbench: matmul: cube side %zu is above %d, skipped\n", n,
				        MATMUL_MAX_SIDE);
				continue;
			}
			if (!compare) {
				failed |= bench_op(op, &s, threads, reps_ms * 1e6) != 0;
				continue;
			}
			for (t = 0; t < ntiers; t++) {
				force_tier_or_die(cck_tier_name(tiers[t]));
				failed |= bench_op(op, &s, threads, reps_ms * 1e6) != 0;
			}
			force_tier_or_die(cap_name);
		}
		bufs_free(&s);
	}
	return failed ? 1 : 0;
}

/* ---- crossover: libcck, the device and the dispatch, side by side ---------------------------------------------- */

#define XO_QTYPES 5
static const int xo_qtypes[XO_QTYPES] = {CCK_TYPE_Q4_0, CCK_TYPE_Q4_1, CCK_TYPE_Q8_0, CCK_TYPE_Q4_K, CCK_TYPE_Q6_K};
static const size_t xo_default_sizes[] = {1000, 10000, 100000, 1000000, 10000000};

/* One op of the crossover command: a libcck op, or the quantized matvec of a type (qtype >= 0). */
struct xo_op {
	int op;    /* cck op, or -1 */
	int qtype; /* quantized type, or -1 */
	char name[32];
	int xop;          /* what ccg_crossover takes */
	size_t crossover; /* SIZE_MAX: never (or no device) */
	int known;
};

/* A quantized matvec of rows x cols: 64 rows quantized from random floats, repeated; x random. */
struct xo_q {
	struct qop_ctx c;
	unsigned char *W;
	float *x, *y;
};

static int xo_q_new(struct xo_q *q, int type, size_t n)
{
	enum { SRC_ROWS = 64 };
	size_t rows, cols, row_bytes, r, src_rows;
	const size_t none[2] = {0, 0};
	unsigned char *src_q;
	float *src;
	int err;

	memset(q, 0, sizeof(*q));
	qop_shape(n, none, &rows, &cols);
	err = cck_type_row_bytes(type, cols, &row_bytes);
	if (err)
		return err;
	src_rows = rows < SRC_ROWS ? rows : SRC_ROWS;
	src = xalloc(src_rows * cols);
	fill_uniform(src, src_rows * cols, -1.0f, 1.0f, 0);
	src_q = xalloc((src_rows * row_bytes + 3) / 4);
	for (r = 0; r < src_rows && !err; r++)
		err = cck_quantize(type, src + r * cols, src_q + r * row_bytes, cols);
	free(src);
	if (err) {
		free(src_q);
		return err;
	}
	q->W = xalloc((rows * row_bytes + 3) / 4);
	for (r = 0; r < rows; r++)
		memcpy(q->W + r * row_bytes, src_q + (r % src_rows) * row_bytes, row_bytes);
	free(src_q);
	q->x = xalloc(cols);
	fill_uniform(q->x, cols, -5.0f, 5.0f, 0);
	q->y = xalloc(rows);
	q->c = (struct qop_ctx){&backends[BE_CPU], type, q->W, q->x, q->y, rows, cols, 0, 1, 0, 0};
	return 0;
}

static void xo_q_free(struct xo_q *q)
{
	free(q->W);
	free(q->x);
	free(q->y);
}

/* --ops for crossover: libcck op names and qmatvec_<type> of the types the dispatch measures. */
static int xo_parse_ops(const char *arg, struct xo_op *xo)
{
	int ops[CCK_OP_COUNT], nops, nq = 0, n = 0;
	struct qop q[MAX_QOPS];

	nops = parse_ops(arg, ops, q, &nq);
	for (int i = 0; i < nops; i++)
		xo[n++] = (struct xo_op){.op = ops[i], .qtype = -1, .xop = ops[i]};
	for (int i = 0; i < nq; i++) {
		if (q[i].batch || q[i].pair)
			usage_error("crossover: of the quantized ops only qmatvec_<type> has a crossover");
		int known = 0;

		for (int k = 0; k < XO_QTYPES; k++)
			known |= xo_qtypes[k] == q[i].type;
		if (!known) /* the types the dispatch measures, device or not */
			usage_error("crossover: the dispatch has no crossover for qmatvec_%s", cck_type_name(q[i].type));
		xo[n++] = (struct xo_op){.op = -1, .qtype = q[i].type, .xop = CCG_QOP(q[i].type)};
	}
	return n;
}

static void xo_name(struct xo_op *x)
{
	if (x->qtype >= 0)
		snprintf(x->name, sizeof(x->name), "qmatvec_%s", cck_type_name(x->qtype));
	else
		snprintf(x->name, sizeof(x->name), "%s", cck_op_name(x->op));
}

static double g_xo_cpu_spread; /* of the last xo_measure: its two libcck timings, the larger over the smaller */

/*
 * Times of one call on each backend, the lower median of two measurements each: the device first (a driver's
 * threads may still spin for a moment after it), then libcck and the dispatch back to back, in the order
 * cpu auto auto cpu, so that neither gets the quieter moment.
 */
static int xo_measure(call_fn fn, void *ctx, const struct backend **slot, int device, double budget_ns,
                      double ns[BE_COUNT], int errs[BE_COUNT])
{
	static const int order[] = {BE_OPENCL, BE_OPENCL, BE_CPU, BE_AUTO, BE_AUTO, BE_CPU};
	int seen[BE_COUNT] = {0};
	double cpu[2] = {0, 0};

	for (int b = 0; b < BE_COUNT; b++) {
		ns[b] = 0;
		errs[b] = 0;
	}
	if (!device)
		errs[BE_OPENCL] = -ENODEV;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		int b = order[i];
		double t = 0;

		if (errs[b])
			continue;
		*slot = &backends[b];
		errs[b] = measure(fn, ctx, budget_ns / 2, &t);
		if (b == BE_CPU && !errs[b])
			cpu[seen[b] ? 1 : 0] = t;
		if (!errs[b] && (!seen[b]++ || t < ns[b]))
			ns[b] = t;
	}
	/* the same code timed twice in the same moment: how far apart two timings of one thing land here and now */
	g_xo_cpu_spread = cpu[0] > 0 && cpu[1] > 0 ? fmax(cpu[0], cpu[1]) / fmin(cpu[0], cpu[1]) : 0;
	return errs[BE_CPU] ? errs[BE_CPU] : errs[BE_AUTO];
}

static void print_secs(const char *key, double ns, int ok)
{
	if (ok)
		printf(",\"%s\":%.4e", key, ns / 1e9);
	else
		printf(",\"%s\":null", key);
}

/* One line: op, n, the crossover, the three times, auto / cpu, the device. Returns auto / cpu (0 if unknown). */
static double xo_print(const struct xo_op *x, size_t n, const double ns[BE_COUNT], const int errs[BE_COUNT],
                       int threads, const char *device)
{
	double ratio = !errs[BE_CPU] && !errs[BE_AUTO] && ns[BE_CPU] > 0 ? ns[BE_AUTO] / ns[BE_CPU] : 0;

	printf("{\"op\":\"%s\",\"n\":%zu,\"crossover\":", x->name, n);
	if (x->known && x->crossover != SIZE_MAX)
		printf("%zu", x->crossover);
	else
		printf("null");
	printf(",\"threads\":%d", threads);
	print_secs("cpu_s", ns[BE_CPU], !errs[BE_CPU]);
	print_secs("opencl_s", ns[BE_OPENCL], !errs[BE_OPENCL]);
	print_secs("auto_s", ns[BE_AUTO], !errs[BE_AUTO]);
	if (ratio > 0)
		printf(",\"auto_vs_cpu\":%.3f", ratio);
	else
		printf(",\"auto_vs_cpu\":null");
	if (g_xo_cpu_spread > 0)
		printf(",\"cpu_vs_cpu\":%.3f", g_xo_cpu_spread);
	printf(",\"device\":");
	print_json_string(device);
	for (int b = 0; b < BE_COUNT; b++) {
		if (errs[b] && !(b == BE_OPENCL && errs[b] == -ENODEV)) {
			printf(",\"%s_error\":", backends[b].name);
			print_json_string(strerror(-errs[b]));
		}
	}
	printf("}\n");
	fflush(stdout);
	return ratio;
}

/* One op at one size; the auto / cpu ratio (0 on failure, *failed set). */
static double xo_run(struct xo_op *x, size_t n, int threads, double budget_ns, int device, const char *devname,
                     int *failed)
{
	double ns[BE_COUNT], bytes = 0, ratio;
	int errs[BE_COUNT], err;
	struct size_bufs s;
	struct op_ctx c;
	struct xo_q q;
	float pbuf[2];
	size_t elems = n;
	call_fn fn;

	if (x->qtype >= 0) {
		err = xo_q_new(&q, x->qtype, n);
		if (err) {
			print_error(x->name, n, cck_tier(), threads, "cannot make the weights", err);
			*failed = 1;
			return 0;
		}
		err = xo_measure(call_qmatvec, &q.c, &q.c.be, device, budget_ns, ns, errs);
		elems = q.c.rows * q.c.cols;
		xo_q_free(&q);
	} else {
		/* matmul: n multiply-adds (cubes of side cbrt(n)), as the crossover counts them */
		bufs_alloc(&s, x->op == CCK_OP_MATMUL ? icbrt_round(n) : n, 1);
		fn = op_setup(&c, x->op, &s, pbuf, &bytes);
		if (!fn) {
			print_error(x->name, n, cck_tier(), threads, "no way to call this op", EINVAL);
			bufs_free(&s);
			*failed = 1;
			return 0;
		}
		if (x->op == CCK_OP_MATVEC)
			elems = c.rows * c.cols;
		else if (x->op == CCK_OP_MATMUL)
			elems = c.rows * c.rows * c.rows;
		err = xo_measure(fn, &c, &c.be, device, budget_ns, ns, errs);
		bufs_free(&s);
	}
	ratio = xo_print(x, elems, ns, errs, threads, devname);
	if (err || (device && errs[BE_OPENCL]))
		*failed = 1;
	return ratio;
}

static int cmd_crossover(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"ops", required_argument, NULL, 'o'},     {"sizes", required_argument, NULL, 's'},
	    {"threads", required_argument, NULL, 'j'}, {"reps-ms", required_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	struct xo_op xo[CCK_OP_COUNT + MAX_QOPS];
	size_t sizes[MAX_SIZES], shapes[MAX_SIZES][2];
	int nxo = 0, nsizes = 0, threads = 1, reps_ms = DEF_REPS_MS, failed = 0, device, ch, i, j;
	const char *ops_arg = NULL;
	double worst = 0, worst_noise = 0;
	char devname[320];

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			ops_arg = optarg;
			break;
		case 's':
			nsizes = parse_sizes(optarg, sizes, shapes);
			break;
		case 'j':
			threads = parse_int("--threads", optarg, 0, 4096);
			break;
		case 'r':
			reps_ms = parse_int("--reps-ms", optarg, 1, 3600 * 1000);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage_error(NULL);
		}
	}
	if (optind != argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	for (i = 0; i < nsizes; i++)
		if (shapes[i][0])
			usage_error("crossover: sizes are element counts (quantized matrices are squares)");
	if (ops_arg) {
		nxo = xo_parse_ops(ops_arg, xo);
	} else {
		for (i = 0; i < CCK_OP_COUNT; i++)
			if (i != CCK_OP_MATMUL)
				xo[nxo++] = (struct xo_op){.op = i, .qtype = -1, .xop = i};
		for (i = 0; i < XO_QTYPES; i++)
			xo[nxo++] = (struct xo_op){.op = -1, .qtype = xo_qtypes[i], .xop = CCG_QOP(xo_qtypes[i])};
	}
	if (!nsizes)
		for (i = 0; i < (int)(sizeof(xo_default_sizes) / sizeof(xo_default_sizes[0])); i++)
			sizes[nsizes++] = xo_default_sizes[i];
	threads = setup_threads(threads);
	ccg_set_backend(CCG_BACKEND_AUTO);
	device = ccg_init() == 0;
	if (device) {
		snprintf(devname, sizeof(devname), "%s", ccg_why());
	} else {
		snprintf(devname, sizeof(devname), "none: %s", ccg_why());
		fprintf(stderr, "ccbench crossover: no OpenCL device (%s): CPU figures only\n", ccg_why());
		printf("{\"device\":null,\"why\":");
		print_json_string(ccg_why());
		printf("}\n");
	}
	/* Measure every crossover first, at libcck's thread count of this run, then time each size. */
	for (i = 0; i < nxo; i++) {
		double t0 = now_ns();
		int err = device ? ccg_calibrate(xo[i].xop, 1) : 0;

		xo_name(&xo[i]);
		if (err) {
			print_error(xo[i].name, 0, cck_tier(), threads, "ccg_calibrate failed", err);
			failed = 1;
		}
		xo[i].known = ccg_crossover(xo[i].xop, &xo[i].crossover) == 0;
		if (device && xo[i].known && xo[i].crossover != SIZE_MAX)
			fprintf(stderr, "ccbench crossover: %s: %zu (measured in %.1f s)\n", xo[i].name,
			        xo[i].crossover, (now_ns() - t0) / 1e9);
		else if (device)
			fprintf(stderr, "ccbench crossover: %s: never (measured in %.1f s)\n", xo[i].name,
			        (now_ns() - t0) / 1e9);
	}
	for (j = 0; j < nsizes; j++)
		for (i = 0; i < nxo; i++) {
			double r = xo_run(&xo[i], sizes[j], threads, reps_ms * 1e6, device, devname, &failed);

			if (r > worst)
				worst = r;
			if (r > 0 && g_xo_cpu_spread > 0 && r / g_xo_cpu_spread > worst_noise)
				worst_noise = r / g_xo_cpu_spread;
		}
	printf("{\"crossover_table\":{");
	for (i = 0; i < nxo; i++) {
		printf("%s\"%s\":", i ? "," : "", xo[i].name);
		if (xo[i].known && xo[i].crossover != SIZE_MAX)
			printf("%zu", xo[i].crossover);
		else
			printf("null");
	}
	printf("},\"device\":");
	print_json_string(devname);
	printf(",\"threads\":%d,\"worst_auto_vs_cpu\":%.3f,\"worst_auto_vs_cpu_over_noise\":%.3f}\n", threads, worst,
	       worst_noise);
	return failed ? 1 : 0;
}

/* ---- matmul against OpenBLAS ---------------------------------------------- */

enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111 };

typedef void (*sgemm_fn_t)(int order, int transa, int transb, int m, int n, int k, float alpha, const float *a, int lda,
                           const float *b, int ldb, float beta, float *c, int ldc);
typedef void (*set_threads_fn_t)(int n);

struct blas_ctx {
	sgemm_fn_t sgemm;
	const float *A, *B;
	float *C;
	int n;
};

static int call_blas(void *p)
{
	struct blas_ctx *c = p;

	c->sgemm(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_NO_TRANS, c->n, c->n, c->n, 1.0f, c->A, c->n, c->B, c->n, 0.0f,
	         c->C, c->n);
	return 0;
}

static void print_matmul_error(size_t n, const char *impl, int threads, const char *msg)
{
	printf("{\"op\":\"matmul\",\"n\":%zu,", n);
	if (impl) {
		printf("\"impl\":");
		print_json_string(impl);
		putchar(',');
	}
	printf("\"threads\":%d,\"error\":", threads);
	print_json_string(msg);
	printf("}\n");
	fflush(stdout);
}

static void print_matmul(size_t n, const char *impl, int threads, double ns)
{
	double flops = 2.0 * (double)n * (double)n * (double)n;

	printf("{\"op\":\"matmul\",\"n\":%zu,\"impl\":", n);
	print_json_string(impl);
	printf(",\"threads\":%d,\"ns\":%.1f,\"gflops\":%.2f}\n", threads, ns, ns > 0 ? flops / ns : 0.0);
	fflush(stdout);
}

static int cmd_matmul(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"sizes", required_argument, NULL, 's'},
	    {"threads", required_argument, NULL, 'j'},
	    {"reps-ms", required_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	size_t sizes[MAX_SIZES];
	int nsizes = 0, threads = 1, reps_ms = DEF_MATMUL_REPS_MS, failed = 0;
	sgemm_fn_t sgemm = NULL;
	set_threads_fn_t blas_threads = NULL;
	char blas_err[512] = "";
	char nbuf[32];
	void *lib;
	int ch, i;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's': {
			size_t shapes[MAX_SIZES][2];

			nsizes = parse_sizes(optarg, sizes, shapes);
			for (i = 0; i < nsizes; i++)
				if (shapes[i][0])
					usage_error("matmul takes cube sides, not RxC sizes");
			break;
		}
		case 'j':
			threads = parse_int("--threads", optarg, 0, 4096);
			break;
		case 'r':
			reps_ms = parse_int("--reps-ms", optarg, 1, 3600 * 1000);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage_error(NULL);
		}
	}
	if (optind != argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (!nsizes)
		sizes[nsizes++] = 1024;
	for (i = 0; i < nsizes; i++)
		if (sizes[i] > MATMUL_MAX_SIDE)
			usage_error("matmul side %zu is above %d", sizes[i], MATMUL_MAX_SIDE);

	threads = setup_threads(threads);

	/* OpenBLAS reads these at load time. */
	snprintf(nbuf, sizeof(nbuf), "%d", threads);
	setenv("OPENBLAS_NUM_THREADS", nbuf, 1);
	unsetenv("OPENBLAS_CORETYPE");
	unsetenv("OPENBLAS_L2_SIZE");
	lib = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		const char *e = dlerror();

		snprintf(blas_err, sizeof(blas_err), "cannot load OpenBLAS: %s", e ? e : "dlopen failed");
	} else {
		*(void **)&sgemm = dlsym(lib, "cblas_sgemm");
		*(void **)&blas_threads = dlsym(lib, "openblas_set_num_threads");
		if (!sgemm)
			snprintf(blas_err, sizeof(blas_err), "libopenblas.so.0 has no cblas_sgemm");
		else if (blas_threads)
			blas_threads(threads);
	}

	for (i = 0; i < nsizes; i++) {
		size_t n = sizes[i];
		float *A = xalloc(n * n), *B = xalloc(n * n), *C = xalloc(n * n), *C2 = xalloc(n * n);
		struct op_ctx c;
		double cck_ns = 0, blas_ns = 0;
		int err;

		fill_uniform(A, n * n, -5.0f, 5.0f, 0);
		fill_uniform(B, n * n, -5.0f, 5.0f, 0);
		memset(&c, 0, sizeof(c));
		c.be = &backends[BE_CPU]; /* libcck's matmul: OpenBLAS's peer */
		c.A = A;
		c.B = B;
		c.C = C;
		c.rows = c.cols = n;
		err = measure(call_matmul, &c, reps_ms * 1e6, &cck_ns);
		if (err) {
			char msg[128];

			snprintf(msg, sizeof(msg), "cck_matmul_f32: %s", strerror(-err));
			print_matmul_error(n, "cck", threads, msg);
			failed = 1;
		} else {
			print_matmul(n, "cck", threads, cck_ns);
		}
		if (!sgemm) {
			print_matmul_error(n, "openblas", threads, blas_err);
		} else if (n > INT_MAX) {
			print_matmul_error(n, "openblas", threads, "size too large for cblas");
		} else {
			struct blas_ctx b = {sgemm, A, B, C2, (int)n};

			measure(call_blas, &b, reps_ms * 1e6, &blas_ns);
			print_matmul(n, "openblas", threads, blas_ns);
			if (!err) {
				/* A fast wrong answer is no answer: compare the two results. */
				double maxdiff = 0, maxref = 0;
				size_t e;

				for (e = 0; e < n * n; e++) {
					double d = fabs((double)C[e] - (double)C2[e]);

					if (!(d <= maxdiff))
						maxdiff = d;
					if (fabs((double)C2[e]) > maxref)
						maxref = fabs((double)C2[e]);
				}
				if (!(maxdiff <= 1e-3 * (maxref > 1 ? maxref : 1))) {
					char msg[160];

					snprintf(msg, sizeof(msg),
					         "cck result differs from OpenBLAS: max |diff| %.3g, max |C| %.3g",
					         maxdiff, maxref);
					print_matmul_error(n, "cck", threads, msg);
					failed = 1;
				} else if (cck_ns > 0) {
					printf(
					    "{\"op\":\"matmul\",\"n\":%zu,\"threads\":%d,\"ratio_vs_openblas\":%.3f}\n",
					    n, threads, blas_ns / cck_ns);
					fflush(stdout);
				}
			}
		}
		free(A);
		free(B);
		free(C);
		free(C2);
	}
	return failed ? 1 : 0;
}

/* ---- ipc: raw ZeroMQ ping-pong and round trips through ccd ------------------ */

#define IPC_DEF_ITERS 10000   /* timed round trips per latency measurement */
#define IPC_WARMUP 1000       /* untimed round trips first */
#define IPC_BIG_N (16u << 20) /* the 16M-element relu */
#define IPC_BIG_REPS 7        /* timed runs of it, each way (median) */

/* p-th percentile (0..100) of sorted v[0..n). */
static double percentile(const double *v, size_t n, double p)
{
	size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);

	return v[i < n ? i : n - 1];
}

static void print_ipc_error(const char *bench, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void print_ipc_error(const char *bench, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("{\"bench\":");
	print_json_string(bench);
	printf(",\"error\":");
	print_json_string(msg);
	printf("}\n");
	fflush(stdout);
}

/* The echo side of the ping-pong: a ROUTER that sends every message back until an empty one. */
struct pp_server {
	void *ctx;
	const char *endpoint;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int state; /* 0 starting, 1 bound, -errno failed */
};

static void *pp_server_main(void *arg)
{
	struct pp_server *s = arg;
	void *sock = zmq_socket(s->ctx, ZMQ_ROUTER);
	int zero = 0, state = 1;

	if (!sock || zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero)) || zmq_bind(sock, s->endpoint))
		state = -errno;
	pthread_mutex_lock(&s->lock);
	s->state = state;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (state < 0) {
		if (sock)
			zmq_close(sock);
		return NULL;
	}
	for (;;) {
		zmq_msg_t id, body;
		int quit;

		zmq_msg_init(&id);
		zmq_msg_init(&body);
		if (zmq_msg_recv(&id, sock, 0) < 0 || zmq_msg_recv(&body, sock, 0) < 0) {
			zmq_msg_close(&id);
			zmq_msg_close(&body);
			break;
		}
		quit = zmq_msg_size(&body) == 0;
		zmq_msg_send(&id, sock, ZMQ_SNDMORE);
		zmq_msg_send(&body, sock, 0);
		zmq_msg_close(&id);
		zmq_msg_close(&body);
		if (quit)
			break;
	}
	zmq_close(sock);
	return NULL;
}

/*
 * 1-byte round trips DEALER -> ROUTER -> DEALER over a fresh ipc:// socket (the transport and
 * socket types libcc and ccd use), timed one by one. Returns 0 with the sorted times (us) in
 * lat[0..iters), or -errno.
 */
static int zmq_pingpong(int iters, double *lat)
{
	char dir[] = "/tmp/ccbench.XXXXXX", endpoint[80], path[64];
	struct pp_server s;
	pthread_t th;
	void *dealer = NULL;
	int zero = 0, i, err = 0;
	char byte = 'x';

	if (!mkdtemp(dir))
		return -errno;
	snprintf(path, sizeof(path), "%s/pp.sock", dir);
	snprintf(endpoint, sizeof(endpoint), "ipc://%s", path);
	memset(&s, 0, sizeof(s));
	s.ctx = zmq_ctx_new();
	s.endpoint = endpoint;
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cond, NULL);
	if (!s.ctx || pthread_create(&th, NULL, pp_server_main, &s)) {
		err = -EAGAIN;
		goto out_dir;
	}
	pthread_mutex_lock(&s.lock);
	while (s.state == 0)
		pthread_cond_wait(&s.cond, &s.lock);
	pthread_mutex_unlock(&s.lock);
	if (s.state < 0) {
		err = s.state;
		goto out_join;
	}
	dealer = zmq_socket(s.ctx, ZMQ_DEALER);
	if (!dealer || zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof(zero)) || zmq_connect(dealer, endpoint)) {
		err = -errno;
		goto out_stop;
	}
	for (i = -IPC_WARMUP; i < iters; i++) {
		double t0 = now_ns();
		char back;

		if (zmq_send(dealer, &byte, 1, 0) != 1 || zmq_recv(dealer, &back, 1, 0) != 1) {
			err = -errno;
			break;
		}
		if (i >= 0)
			lat[i] = (now_ns() - t0) * 1e-3;
	}
out_stop:
	/* an empty message stops the server (a fresh DEALER if ours failed) */
	if (!dealer) {
		dealer = zmq_socket(s.ctx, ZMQ_DEALER);
		zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_connect(dealer, endpoint);
	}
	zmq_send(dealer, "", 0, 0);
out_join:
	pthread_join(th, NULL);
	if (dealer)
		zmq_close(dealer);
	zmq_ctx_term(s.ctx);
out_dir:
	pthread_mutex_destroy(&s.lock);
	pthread_cond_destroy(&s.cond);
	unlink(path);
	rmdir(dir);
	if (!err)
		qsort(lat, (size_t)iters, sizeof(lat[0]), cmp_double);
	return err;
}

static int cmd_ipc(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"endpoint", required_argument, NULL, 'e'},
	    {"iters", required_argument, NULL, 'i'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *endpoint = NULL;
	struct own_ccd own = {0};
	cc_client *c = NULL;
	cc_tensor *x = NULL, *y = NULL, *bx = NULL, *by = NULL;
	double *lat = NULL, zmq_p50 = 0, ccd_t[IPC_BIG_REPS], in_t[IPC_BIG_REPS];
	float *lx = NULL, *ly = NULL;
	int iters = IPC_DEF_ITERS, opt, err, i, failed = 0;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'e':
			endpoint = optarg;
			break;
		case 'i':
			iters = parse_int("--iters", optarg, 1, 100000000);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage_error(NULL);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	lat = malloc((size_t)iters * sizeof(*lat));
	if (!lat) {
		fprintf(stderr, "ccbench: out of memory\n");
		return 1;
	}

	/* (a) raw ZeroMQ */
	err = zmq_pingpong(iters, lat);
	if (err) {
		print_ipc_error("zmq_pingpong", "%s", strerror(-err));
		failed = 1;
	} else {
		zmq_p50 = percentile(lat, (size_t)iters, 50);
		printf("{\"bench\":\"zmq_pingpong\",\"iters\":%d,\"p50_us\":%.2f,\"p99_us\":%.2f}\n", iters, zmq_p50,
		       percentile(lat, (size_t)iters, 99));
	}

	/* a ccd: the one at the endpoint, or our own */
	err = cc_connect(endpoint, &c);
	if (err) {
		fprintf(stderr, "ccbench: no ccd at %s (%s)\n", endpoint ? endpoint : "the default endpoint",
		        cc_strerror(err));
		err = own_ccd_start(&own, NULL, &c);
		if (err) {
			print_ipc_error("ccd_small_op", "cannot reach or start ccd: %s", cc_strerror(err));
			free(lat);
			return 1;
		}
	}

	/* (b) an 8-element relu through ccd */
	err = cc_tensor_new(c, CC_DTYPE_F32, 8, &x);
	if (!err)
		err = cc_tensor_new(c, CC_DTYPE_F32, 8, &y);
	if (err) {
		print_ipc_error("ccd_small_op", "cc_tensor_new: %s (%s)", cc_strerror(err), cc_last_error(c));
		failed = 1;
		goto big;
	}
	fill_uniform(cc_tensor_data(x), 8, -5.0f, 5.0f, 0);
	for (i = -IPC_WARMUP; i < iters && !err; i++) {
		double t0 = now_ns();

		err = cc_unary(c, "relu", x, y, NULL, 0);
		if (i >= 0)
			lat[i] = (now_ns() - t0) * 1e-3;
	}
	if (err) {
		print_ipc_error("ccd_small_op", "cc_unary relu: %s (%s)", cc_strerror(err), cc_last_error(c));
		failed = 1;
	} else {
		double p50;

		qsort(lat, (size_t)iters, sizeof(lat[0]), cmp_double);
		p50 = percentile(lat, (size_t)iters, 50);
		printf(
		    "{\"bench\":\"ccd_small_op\",\"op\":\"relu\",\"n\":8,\"iters\":%d,\"p50_us\":%.2f,\"p99_us\":%.2f",
		    iters, p50, percentile(lat, (size_t)iters, 99));
		if (zmq_p50 > 0)
			printf(",\"ratio_vs_zmq\":%.3f", p50 / zmq_p50);
		printf("}\n");
	}

big:
	/* (c) a 16M-element relu through ccd vs in-process (one thread, as ccd runs a job) */
	setup_threads(1);
	err = cc_tensor_new(c, CC_DTYPE_F32, IPC_BIG_N, &bx);
	if (!err)
		err = cc_tensor_new(c, CC_DTYPE_F32, IPC_BIG_N, &by);
	if (err) {
		print_ipc_error("ccd_relu_16m", "cc_tensor_new: %s (%s)", cc_strerror(err), cc_last_error(c));
		failed = 1;
		goto out;
	}
	lx = xalloc(IPC_BIG_N);
	ly = xalloc(IPC_BIG_N);
	fill_uniform(lx, IPC_BIG_N, -5.0f, 5.0f, 0);
	memcpy(cc_tensor_data(bx), lx, (size_t)IPC_BIG_N * sizeof(float));
	memset(cc_tensor_data(by), 0, (size_t)IPC_BIG_N * sizeof(float)); /* both sides' pages exist */
	/* warm-up, then interleaved timed runs so that both see the same machine state */
	err = cc_unary(c, "relu", bx, by, NULL, 0);
	if (!err)
		err = cck_unary_f32(CCK_OP_RELU, lx, ly, IPC_BIG_N, NULL);
	for (i = 0; i < IPC_BIG_REPS && !err; i++) {
		double t0 = now_ns();

		err = cc_unary(c, "relu", bx, by, NULL, 0);
		ccd_t[i] = (now_ns() - t0) * 1e-6;
		t0 = now_ns();
		if (!err)
			err = cck_unary_f32(CCK_OP_RELU, lx, ly, IPC_BIG_N, NULL);
		in_t[i] = (now_ns() - t0) * 1e-6;
	}
	if (err) {
		print_ipc_error("ccd_relu_16m", "relu: %s (%s)", cc_strerror(err), cc_last_error(c));
		failed = 1;
	} else if (memcmp(cc_tensor_data(by), ly, (size_t)IPC_BIG_N * sizeof(float))) {
		/* a fast wrong answer is no answer */
		print_ipc_error("ccd_relu_16m", "ccd's result differs from in-process libcck");
		failed = 1;
	} else {
		double cm, im;

		qsort(ccd_t, IPC_BIG_REPS, sizeof(double), cmp_double);
		qsort(in_t, IPC_BIG_REPS, sizeof(double), cmp_double);
		cm = ccd_t[IPC_BIG_REPS / 2];
		im = in_t[IPC_BIG_REPS / 2];
		printf("{\"bench\":\"ccd_relu_16m\",\"n\":%u,\"reps\":%d,\"ccd_ms\":%.3f,\"inproc_ms\":%.3f,\"ratio\":%"
		       ".3f}\n",
		       IPC_BIG_N, IPC_BIG_REPS, cm, im, im > 0 ? cm / im : 0.0);
	}

out:
	cc_tensor_free(x);
	cc_tensor_free(y);
	cc_tensor_free(bx);
	cc_tensor_free(by);
	cc_close(c);
	own_ccd_stop(&own);
	free(lx);
	free(ly);
	free(lat);
	return failed;
}

int cmd_load(int argc, char **argv);  /* bench_load.c */
int cmd_infer(int argc, char **argv); /* bench_infer.c */
int cmd_serve(int argc, char **argv); /* bench_serve.c */

int main(int argc, char **argv)
{
	const char *cmd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		usage_error("no command given");
	cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "kernels"))
		return cmd_kernels(argc - 1, argv + 1);
	if (!strcmp(cmd, "crossover"))
		return cmd_crossover(argc - 1, argv + 1);
	if (!strcmp(cmd, "matmul"))
		return cmd_matmul(argc - 1, argv + 1);
	if (!strcmp(cmd, "ipc"))
		return cmd_ipc(argc - 1, argv + 1);
	if (!strcmp(cmd, "load"))
		return cmd_load(argc - 1, argv + 1);
	if (!strcmp(cmd, "infer"))
		return cmd_infer(argc - 1, argv + 1);
	if (!strcmp(cmd, "serve"))
		return cmd_serve(argc - 1, argv + 1);
	usage_error("unknown command '%s'", cmd);
}
