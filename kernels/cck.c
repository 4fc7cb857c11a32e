/* SPDX-License-Identifier: MIT */
/* cck.c: libcck's public API: op metadata, tier choice, validation and dispatch to the tier tables. */
#include "config.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cck_internal.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Largest n whose float array can exist (objects are at most PTRDIFF_MAX bytes). */
#define MAX_N ((size_t)PTRDIFF_MAX / sizeof(float))

struct op_info {
	const char *name;
	unsigned char kind; /* enum cck_kind */
	unsigned char nparams;
};

/* Canonical names are the lower-case enum names; aliases live in cck_op_lookup(). */
/* clang-format off */
static const struct op_info op_info[] = {
	[CCK_OP_NEG]              = { "neg", CCK_KIND_UNARY, 0 },
	[CCK_OP_ABS]              = { "abs", CCK_KIND_UNARY, 0 },
	[CCK_OP_SQUARE]           = { "square", CCK_KIND_UNARY, 0 },
	[CCK_OP_SQRT]             = { "sqrt", CCK_KIND_UNARY, 0 },
	[CCK_OP_RSQRT]            = { "rsqrt", CCK_KIND_UNARY, 0 },
	[CCK_OP_RECIP]            = { "recip", CCK_KIND_UNARY, 0 },
	[CCK_OP_EXP]              = { "exp", CCK_KIND_UNARY, 0 },
	[CCK_OP_LN]               = { "ln", CCK_KIND_UNARY, 0 },
	[CCK_OP_LOG2]             = { "log2", CCK_KIND_UNARY, 0 },
	[CCK_OP_LOG10]            = { "log10", CCK_KIND_UNARY, 0 },
	[CCK_OP_SIN]              = { "sin", CCK_KIND_UNARY, 0 },
	[CCK_OP_COS]              = { "cos", CCK_KIND_UNARY, 0 },
	[CCK_OP_TANH]             = { "tanh", CCK_KIND_UNARY, 0 },
	[CCK_OP_SIGMOID]          = { "sigmoid", CCK_KIND_UNARY, 0 },
	[CCK_OP_RELU]             = { "relu", CCK_KIND_UNARY, 0 },
	[CCK_OP_LEAKY_RELU]       = { "leaky_relu", CCK_KIND_UNARY, 1 },
	[CCK_OP_ELU]              = { "elu", CCK_KIND_UNARY, 1 },
	[CCK_OP_SELU]             = { "selu", CCK_KIND_UNARY, 0 },
	[CCK_OP_GELU]             = { "gelu", CCK_KIND_UNARY, 0 },
	[CCK_OP_GELU_ERF]         = { "gelu_erf", CCK_KIND_UNARY, 0 },
	[CCK_OP_SILU]             = { "silu", CCK_KIND_UNARY, 0 },
	[CCK_OP_MISH]             = { "mish", CCK_KIND_UNARY, 0 },
	[CCK_OP_HARDSWISH]        = { "hardswish", CCK_KIND_UNARY, 0 },
	[CCK_OP_SOFTPLUS]         = { "softplus", CCK_KIND_UNARY, 0 },
	[CCK_OP_FLOOR]            = { "floor", CCK_KIND_UNARY, 0 },
	[CCK_OP_CEIL]             = { "ceil", CCK_KIND_UNARY, 0 },
	[CCK_OP_ROUND]            = { "round", CCK_KIND_UNARY, 0 },
	[CCK_OP_TRUNC]            = { "trunc", CCK_KIND_UNARY, 0 },
	[CCK_OP_SCALE]            = { "scale", CCK_KIND_UNARY, 1 },
	[CCK_OP_ADD_SCALAR]       = { "add_scalar", CCK_KIND_UNARY, 1 },
	[CCK_OP_CLAMP]            = { "clamp", CCK_KIND_UNARY, 2 },
	[CCK_OP_SOFTMAX]          = { "softmax", CCK_KIND_VECTOR, 0 },
	[CCK_OP_LOG_SOFTMAX]      = { "log_softmax", CCK_KIND_VECTOR, 0 },
	[CCK_OP_NORMALIZE]        = { "normalize", CCK_KIND_VECTOR, 0 },
	[CCK_OP_ZSCORE]           = { "zscore", CCK_KIND_VECTOR, 0 },
	[CCK_OP_MINMAX_NORMALIZE] = { "minmax_normalize", CCK_KIND_VECTOR, 0 },
	[CCK_OP_LAYER_NORM]       = { "layer_norm", CCK_KIND_VECTOR, 1 },
	[CCK_OP_RMS_NORM]         = { "rms_norm", CCK_KIND_VECTOR, 1 },
	[CCK_OP_CUMSUM]           = { "cumsum", CCK_KIND_VECTOR, 0 },
	[CCK_OP_ADD]              = { "add", CCK_KIND_BINARY, 0 },
	[CCK_OP_SUB]              = { "sub", CCK_KIND_BINARY, 0 },
	[CCK_OP_MUL]              = { "mul", CCK_KIND_BINARY, 0 },
	[CCK_OP_DIV]              = { "div", CCK_KIND_BINARY, 0 },
	[CCK_OP_MINIMUM]          = { "minimum", CCK_KIND_BINARY, 0 },
	[CCK_OP_MAXIMUM]          = { "maximum", CCK_KIND_BINARY, 0 },
	[CCK_OP_SUM]              = { "sum", CCK_KIND_REDUCE, 0 },
	[CCK_OP_MEAN]             = { "mean", CCK_KIND_REDUCE, 0 },
	[CCK_OP_MIN]              = { "min", CCK_KIND_REDUCE, 0 },
	[CCK_OP_MAX]              = { "max", CCK_KIND_REDUCE, 0 },
	[CCK_OP_ARGMIN]           = { "argmin", CCK_KIND_REDUCE, 0 },
	[CCK_OP_ARGMAX]           = { "argmax", CCK_KIND_REDUCE, 0 },
	[CCK_OP_SUM_OF_SQUARES]   = { "sum_of_squares", CCK_KIND_REDUCE, 0 },
	[CCK_OP_NORM_L1]          = { "norm_l1", CCK_KIND_REDUCE, 0 },
	[CCK_OP_NORM_L2]          = { "norm_l2", CCK_KIND_REDUCE, 0 },
	[CCK_OP_NORM_LINF]        = { "norm_linf", CCK_KIND_REDUCE, 0 },
	[CCK_OP_VARIANCE]         = { "variance", CCK_KIND_REDUCE, 0 },
	[CCK_OP_STDDEV]           = { "stddev", CCK_KIND_REDUCE, 0 },
	[CCK_OP_DOT]              = { "dot", CCK_KIND_REDUCE2, 0 },
	[CCK_OP_COVARIANCE]       = { "covariance", CCK_KIND_REDUCE2, 0 },
	[CCK_OP_CORRELATION]      = { "correlation", CCK_KIND_REDUCE2, 0 },
	[CCK_OP_DIST_L2]          = { "dist_l2", CCK_KIND_REDUCE2, 0 },
	[CCK_OP_MATVEC]           = { "matvec", CCK_KIND_MATRIX, 0 },
	[CCK_OP_MATMUL]           = { "matmul", CCK_KIND_MATRIX, 0 },
};
/* clang-format on */
_Static_assert(ARRAY_SIZE(op_info) == CCK_OP_COUNT, "op_info must list every op");

/*
 * Highest tier each op may use; it runs on min(pref_tier, cap). Lower an
 * entry where the benchmark shows a lower tier is faster on the hosts we
 * target. Measured with `ccbench kernels --compare-tiers` at 1M and 10M
 * (3 interleaved runs, medians) on AMD Zen 4, which splits 512-bit ops in
 * two: the memory-bound binary ops and the sum-type reductions ran 2-8%
 * faster on AVX2 at 1M and 10M (equal at 100K); everything else with real
 * arithmetic (min/max with index, transcendental and vector ops) is faster
 * on AVX-512, up to 1.8x.
 */
/* clang-format off */
static const unsigned char pref_tier[] = {
	[CCK_OP_NEG]              = CCK_TIER_AVX512,
	[CCK_OP_ABS]              = CCK_TIER_AVX512,
	[CCK_OP_SQUARE]           = CCK_TIER_AVX512,
	[CCK_OP_SQRT]             = CCK_TIER_AVX512,
	[CCK_OP_RSQRT]            = CCK_TIER_AVX512,
	[CCK_OP_RECIP]            = CCK_TIER_AVX512,
	[CCK_OP_EXP]              = CCK_TIER_AVX512,
	[CCK_OP_LN]               = CCK_TIER_AVX512,
	[CCK_OP_LOG2]             = CCK_TIER_AVX512,
	[CCK_OP_LOG10]            = CCK_TIER_AVX512,
	[CCK_OP_SIN]              = CCK_TIER_AVX512,
	[CCK_OP_COS]              = CCK_TIER_AVX512,
	[CCK_OP_TANH]             = CCK_TIER_AVX512,
	[CCK_OP_SIGMOID]          = CCK_TIER_AVX512,
	[CCK_OP_RELU]             = CCK_TIER_AVX512,
	[CCK_OP_LEAKY_RELU]       = CCK_TIER_AVX512,
	[CCK_OP_ELU]              = CCK_TIER_AVX512,
	[CCK_OP_SELU]             = CCK_TIER_AVX512,
	[CCK_OP_GELU]             = CCK_TIER_AVX512,
	[CCK_OP_GELU_ERF]         = CCK_TIER_AVX512,
	[CCK_OP_SILU]             = CCK_TIER_AVX512,
	[CCK_OP_MISH]             = CCK_TIER_AVX512,
	[CCK_OP_HARDSWISH]        = CCK_TIER_AVX512,
	[CCK_OP_SOFTPLUS]         = CCK_TIER_AVX512,
	[CCK_OP_FLOOR]            = CCK_TIER_AVX512,
	[CCK_OP_CEIL]             = CCK_TIER_AVX512,
	[CCK_OP_ROUND]            = CCK_TIER_AVX512,
	[CCK_OP_TRUNC]            = CCK_TIER_AVX512,
	[CCK_OP_SCALE]            = CCK_TIER_AVX512,
	[CCK_OP_ADD_SCALAR]       = CCK_TIER_AVX512,
	[CCK_OP_CLAMP]            = CCK_TIER_AVX512,
	[CCK_OP_SOFTMAX]          = CCK_TIER_AVX512,
	[CCK_OP_LOG_SOFTMAX]      = CCK_TIER_AVX512,
	[CCK_OP_NORMALIZE]        = CCK_TIER_AVX512,
	[CCK_OP_ZSCORE]           = CCK_TIER_AVX512,
	[CCK_OP_MINMAX_NORMALIZE] = CCK_TIER_AVX512,
	[CCK_OP_LAYER_NORM]       = CCK_TIER_AVX512,
	[CCK_OP_RMS_NORM]         = CCK_TIER_AVX512,
	[CCK_OP_CUMSUM]           = CCK_TIER_AVX512,
	[CCK_OP_ADD]              = CCK_TIER_AVX2,
	[CCK_OP_SUB]              = CCK_TIER_AVX2,
	[CCK_OP_MUL]              = CCK_TIER_AVX2,
	[CCK_OP_DIV]              = CCK_TIER_AVX2,
	[CCK_OP_MINIMUM]          = CCK_TIER_AVX2,
	[CCK_OP_MAXIMUM]          = CCK_TIER_AVX2,
	[CCK_OP_SUM]              = CCK_TIER_AVX2,
	[CCK_OP_MEAN]             = CCK_TIER_AVX2,
	[CCK_OP_MIN]              = CCK_TIER_AVX512,
	[CCK_OP_MAX]              = CCK_TIER_AVX512,
	[CCK_OP_ARGMIN]           = CCK_TIER_AVX512,
	[CCK_OP_ARGMAX]           = CCK_TIER_AVX512,
	[CCK_OP_SUM_OF_SQUARES]   = CCK_TIER_AVX2,
	[CCK_OP_NORM_L1]          = CCK_TIER_AVX2,
	[CCK_OP_NORM_L2]          = CCK_TIER_AVX2,
	[CCK_OP_NORM_LINF]        = CCK_TIER_AVX512,
	[CCK_OP_VARIANCE]         = CCK_TIER_AVX512,
	[CCK_OP_STDDEV]           = CCK_TIER_AVX512,
	[CCK_OP_DOT]              = CCK_TIER_AVX2,
	[CCK_OP_COVARIANCE]       = CCK_TIER_AVX512,
	[CCK_OP_CORRELATION]      = CCK_TIER_AVX512,
	[CCK_OP_DIST_L2]          = CCK_TIER_AVX2,
	[CCK_OP_MATVEC]           = CCK_TIER_AVX2,
	[CCK_OP_MATMUL]           = CCK_TIER_AVX512,
};
/* clang-format on */
_Static_assert(ARRAY_SIZE(pref_tier) == CCK_OP_COUNT, "pref_tier must list every op");

#define K ((size_t)1024)
#define NEVER SIZE_MAX

/*
 * Smallest n at which an op is split across the pool; below it one thread
 * does everything. A split gives each thread at least thread_min_n / 2
 * elements. Measured with bench/tune-threads (1 vs 2 threads with the split
 * forced at every size, best of 3 interleaved rounds, AMD Zen 4, 2 CPUs):
 * each entry is the larger of (a) the size from which on the split wins by
 * 1.2x or more with the workers warm, e.g. 64K for add, exp and sqrt, 128K
 * for relu, sum and dot, 256K for argmax and softmax, 4K for sin, tanh and
 * gelu; and (b) the size a single thread needs ~10 us for, so that waking a
 * sleeping worker (a few us) never makes a call much slower: 32K for sin,
 * tanh and sigmoid, 16K for gelu, 8K for gelu_erf. Matrix ops are threaded
 * by matmul.c. Re-run the tool on a new kind of host.
 */
/* clang-format off */
static const size_t thread_min_n[] = {
	[CCK_OP_NEG]              = 128 * K,
	[CCK_OP_ABS]              = 128 * K,
	[CCK_OP_SQUARE]           = 128 * K,
	[CCK_OP_SQRT]             = 64 * K,
	[CCK_OP_RSQRT]            = 64 * K,
	[CCK_OP_RECIP]            = 64 * K,
	[CCK_OP_EXP]              = 64 * K,
	[CCK_OP_LN]               = 64 * K,
	[CCK_OP_LOG2]             = 64 * K,
	[CCK_OP_LOG10]            = 64 * K,
	[CCK_OP_SIN]              = 32 * K,
	[CCK_OP_COS]              = 32 * K,
	[CCK_OP_TANH]             = 32 * K,
	[CCK_OP_SIGMOID]          = 32 * K,
	[CCK_OP_RELU]             = 128 * K,
	[CCK_OP_LEAKY_RELU]       = 128 * K,
	[CCK_OP_ELU]              = 32 * K,
	[CCK_OP_SELU]             = 32 * K,
	[CCK_OP_GELU]             = 16 * K,
	[CCK_OP_GELU_ERF]         = 8 * K,
	[CCK_OP_SILU]             = 32 * K,
	[CCK_OP_MISH]             = 16 * K,
	[CCK_OP_HARDSWISH]        = 128 * K,
	[CCK_OP_SOFTPLUS]         = 16 * K,
	[CCK_OP_FLOOR]            = 128 * K,
	[CCK_OP_CEIL]             = 128 * K,
	[CCK_OP_ROUND]            = 128 * K,
	[CCK_OP_TRUNC]            = 128 * K,
	[CCK_OP_SCALE]            = 128 * K,
	[CCK_OP_ADD_SCALAR]       = 128 * K,
	[CCK_OP_CLAMP]            = 128 * K,
	[CCK_OP_SOFTMAX]          = 256 * K,
	[CCK_OP_LOG_SOFTMAX]      = 256 * K,
	[CCK_OP_NORMALIZE]        = 128 * K,
	[CCK_OP_ZSCORE]           = 128 * K,
	[CCK_OP_MINMAX_NORMALIZE] = 256 * K,
	[CCK_OP_LAYER_NORM]       = 128 * K,
	[CCK_OP_RMS_NORM]         = 128 * K,
	[CCK_OP_CUMSUM]           = 64 * K,
	[CCK_OP_ADD]              = 64 * K,
	[CCK_OP_SUB]              = 64 * K,
	[CCK_OP_MUL]              = 64 * K,
	[CCK_OP_DIV]              = 64 * K,
	[CCK_OP_MINIMUM]          = 64 * K,
	[CCK_OP_MAXIMUM]          = 64 * K,
	[CCK_OP_SUM]              = 128 * K,
	[CCK_OP_MEAN]             = 128 * K,
	[CCK_OP_MIN]              = 256 * K,
	[CCK_OP_MAX]              = 256 * K,
	[CCK_OP_ARGMIN]           = 256 * K,
	[CCK_OP_ARGMAX]           = 256 * K,
	[CCK_OP_SUM_OF_SQUARES]   = 128 * K,
	[CCK_OP_NORM_L1]          = 128 * K,
	[CCK_OP_NORM_L2]          = 128 * K,
	[CCK_OP_NORM_LINF]        = 256 * K,
	[CCK_OP_VARIANCE]         = 128 * K,
	[CCK_OP_STDDEV]           = 128 * K,
	[CCK_OP_DOT]              = 128 * K,
	[CCK_OP_COVARIANCE]       = 128 * K,
	[CCK_OP_CORRELATION]      = 128 * K,
	[CCK_OP_DIST_L2]          = 128 * K,
	[CCK_OP_MATVEC]           = NEVER,
	[CCK_OP_MATMUL]           = NEVER,
};
/* clang-format on */
_Static_assert(ARRAY_SIZE(thread_min_n) == CCK_OP_COUNT, "thread_min_n must list every op");

/* ---- tiers --------------------------------------------------------------- */

/* clang-format off */
static const char *const tier_names[CCK_TIER_COUNT] = {
	[CCK_TIER_SCALAR] = "scalar",
	[CCK_TIER_SSE2] = "sse2",
	[CCK_TIER_AVX2] = "avx2",
	[CCK_TIER_AVX512] = "avx512",
};

static const struct cck__tier_ops *const tier_ops[CCK_TIER_COUNT] = {
	[CCK_TIER_SCALAR] = &cck__ops_scalar,
#ifdef CCK_HAVE_X86
	[CCK_TIER_SSE2] = &cck__ops_sse2,
	[CCK_TIER_AVX2] = &cck__ops_avx2,
	[CCK_TIER_AVX512] = &cck__ops_avx512,
#endif
};
/* clang-format on */

static pthread_once_t tier_once = PTHREAD_ONCE_INIT;
static int host_tier;        /* set once by tier_init() */
static _Atomic int cap_tier; /* highest tier any op may use; <= host_tier */
/*
 * 0: "auto", each op runs on min(pref_tier, cap). 1: a tier was forced (by
 * CCK_TIER or cck_force_tier), and every op runs on exactly that tier, so a
 * test or benchmark that asks for avx512 gets the AVX-512 bodies.
 */
static _Atomic int forced;

static int tier_from_name(const char *name)
{
	int t;

	if (!name)
		return -EINVAL;
	for (t = 0; t < CCK_TIER_COUNT; t++)
		if (!strcmp(name, tier_names[t]))
			return t;
	return -EINVAL;
}

static void tier_init(void)
{
	const char *env = getenv("CCK_TIER");
	int t;

#ifdef CCK_HAVE_X86
	host_tier = cck__cpu_tier();
#else
	host_tier = CCK_TIER_SCALAR;
#endif
	/* An unknown name or one above the host is ignored: the library must not fail on its environment. */
	t = tier_from_name(env);
	atomic_store(&cap_tier, t >= 0 && t < host_tier ? t : host_tier);
	atomic_store(&forced, t >= 0 && t <= host_tier);
}

/* CCK_TIER is documented as read at load time, so read it before main() can setenv(). */
__attribute__((constructor)) static void tier_ctor(void)
{
	pthread_once(&tier_once, tier_init);
}

static int cap(void)
{
	/* Also here: another library's constructor may call us before ours ran. */
	pthread_once(&tier_once, tier_init);
	return atomic_load_explicit(&cap_tier, memory_order_relaxed);
}

static int op_tier(int op)
{
	int c = cap();

	if (atomic_load_explicit(&forced, memory_order_relaxed))
		return c;
	return pref_tier[op] < c ? pref_tier[op] : c;
}

/* Highest tier any op may use now (the forced tier, or the host's): for the tables outside this file (quant.c). */
int cck__tier_cap(void)
{
	return cap();
}

/* Table for op's tier under the current cap; any op id, valid or not, gets a table. */
const struct cck__tier_ops *cck__ops_for(int op)
{
	if (op < 0 || op >= CCK_OP_COUNT)
		return tier_ops[cap()];
	return tier_ops[op_tier(op)];
}

/* Internal assertion failure: no message (the library never prints); abort for a core dump. */
void cck__assert_fail(const char *expr, const char *file, int line)
{
	(void)expr;
	(void)file;
	(void)line;
	abort();
}

/* ---- metadata ------------------------------------------------------------ */

CCK_EXPORT int cck_op_lookup(const char *name)
{
	int op;

	if (!name)
		return -EINVAL;
	for (op = 0; op < CCK_OP_COUNT; op++)
		if (!strcmp(name, op_info[op].name))
			return op;
	if (!strcmp(name, "swish"))
		return CCK_OP_SILU;
	return -ENOENT;
}

CCK_EXPORT const char *cck_op_name(int op)
{
	return op >= 0 && op < CCK_OP_COUNT ? op_info[op].name : NULL;
}

CCK_EXPORT int cck_op_kind(int op)
{
	return op >= 0 && op < CCK_OP_COUNT ? op_info[op].kind : -EINVAL;
}

CCK_EXPORT int cck_op_nparams(int op)
{
	return op >= 0 && op < CCK_OP_COUNT ? op_info[op].nparams : -EINVAL;
}

CCK_EXPORT const char *cck_tier(void)
{
	return tier_names[cap()];
}

CCK_EXPORT const char *cck_host_tier(void)
{
	cap();
	return tier_names[host_tier];
}

CCK_EXPORT const char *cck_tier_name(int tier)
{
	return tier >= 0 && tier < CCK_TIER_COUNT ? tier_names[tier] : NULL;
}

CCK_EXPORT int cck_op_tier(int op)
{
	if (op < 0 || op >= CCK_OP_COUNT)
		return -EINVAL;
	return op_tier(op);
}

CCK_EXPORT int cck_force_tier(const char *name)
{
	int t;

	cap();
	if (name && !strcmp(name, "auto")) {
		atomic_store_explicit(&forced, 0, memory_order_relaxed);
		atomic_store_explicit(&cap_tier, host_tier, memory_order_relaxed);
		return 0;
	}
	t = tier_from_name(name);
	if (t < 0)
		return t;
	if (t > host_tier)
		return -ENOTSUP;
	atomic_store_explicit(&cap_tier, t, memory_order_relaxed);
	atomic_store_explicit(&forced, 1, memory_order_relaxed);
	return 0;
}

CCK_EXPORT int cck_set_threads(int n)
{
	return cck__pool_resize(n);
}

CCK_EXPORT int cck_get_threads(void)
{
	return cck__pool_threads();
}

CCK_EXPORT int cck_set_local_threads(int n)
{
	if (n < 0)
		return -EINVAL;
	return cck__pool_local_limit(n);
}

/* cck_parallel's call: the caller's function, and the part count the pool gave it (part 0 always runs). */
struct par_call {
	void (*fn)(void *arg, int part, int nparts);
	void *arg;
	int nparts;
};

static void par_part(void *arg, int part, int nparts)
{
	struct par_call *c = arg;

	if (part == 0)
		c->nparts = nparts;
	c->fn(c->arg, part, nparts);
}

CCK_EXPORT int cck_parallel(int nparts, void (*fn)(void *arg, int part, int nparts), void *arg)
{
	struct par_call c = {fn, arg, 1};

	if (nparts < 1 || !fn)
		return -EINVAL;
	cck__pool_run(nparts, par_part, &c);
	return c.nparts;
}

/* ---- splitting work over the pool ----------------------------------------- */

/* Part boundaries are multiples of this, keeping each part's start as aligned as the array's. */
#define CHUNK_ALIGN 64
/*
 * Parts handed out per thread. More, smaller parts let a thread that starts
 * late or shares its CPU (a busy host) do less, instead of every thread
 * waiting for it; each part still costs only an atomic increment.
 */
#define PARTS_PER_THREAD 4
#define MIN_PART 2048
/* Reductions keep one struct cck__part per part on the stack (7 KiB). */
#define MAX_PARTS 128
/* Floats a fused pass keeps in L1 between its two kernels (16 KiB; a multiple of CHUNK_ALIGN). */
#define BLOCK 4096

enum job_mode {
	J_UNARY,
	J_BINARY,
	J_REDUCE,
	J_REDUCE2,
	J_EXPSUB_SUM, /* softmax: y = exp(x - p.a), s0 = sum y */
	J_CUMSUM,
};

struct job {
	enum job_mode mode;
	int nthreads;
	int nparts;
	_Atomic int next; /* next part to hand out */
	size_t n, chunk;  /* part k is [k * chunk, min(n, (k + 1) * chunk)) */
	const float *x, *b;
	float *y;
	struct cck__param p;
	const struct cck__tier_ops *tbl;
	union {
		cck__unary_fn un;
		cck__binary_fn bin;
		cck__reduce_fn red;
		cck__reduce2_fn red2;
	} fn;
	struct cck__part *parts; /* one per part, for the modes that produce one */
	const double *carry;     /* J_CUMSUM: running sum before each part */
};

/*
 * CCK_SPLIT_MIN=N (read once) replaces every thread_min_n entry: the knob
 * bench/tune-threads turns to time each op split and unsplit at every size.
 */
static size_t split_min_env = SIZE_MAX;
static pthread_once_t split_once = PTHREAD_ONCE_INIT;

static void split_init(void)
{
	const char *env = getenv("CCK_SPLIT_MIN");
	char *end;
	unsigned long long v;

	if (!env || !*env)
		return;
	errno = 0;
	v = strtoull(env, &end, 10);
	if (!errno && !*end)
		split_min_env = (size_t)v;
}

static size_t split_min(int op)
{
	pthread_once(&split_once, split_init);
	return split_min_env != SIZE_MAX ? split_min_env : thread_min_n[op];
}

/* Threads op should use for n elements. */
static int want_threads(int op, size_t n)
{
	size_t min_n = split_min(op), per;
	int t;

	if (n < min_n)
		return 1;
	t = cck__pool_threads();
	per = min_n / 2 > CHUNK_ALIGN ? min_n / 2 : CHUNK_ALIGN;
	if (n / per < (size_t)t)
		t = (int)(n / per);
	return t > 1 ? t : 1;
}

/*
 * Split n elements for op into at most max_parts parts, none empty. The
 * split depends only on op, n and the thread count, never on timing or on
 * which thread runs a part, so a reduction gives the same result every run.
 */
static void split(struct job *j, int op, size_t n, int max_parts)
{
	size_t want, c;

	j->n = n;
	j->nthreads = want_threads(op, n);
	want = j->nthreads > 1 ? (size_t)j->nthreads * PARTS_PER_THREAD : 1;
	if (want > n / MIN_PART)
		want = n / MIN_PART > (size_t)j->nthreads ? n / MIN_PART : (size_t)j->nthreads;
	if (want > (size_t)max_parts)
		want = (size_t)max_parts;
	c = (n + want - 1) / want;
	c = (c + CHUNK_ALIGN - 1) & ~(size_t)(CHUNK_ALIGN - 1);
	j->chunk = c;
	j->nparts = (int)((n + c - 1) / c);
	if (j->nthreads > j->nparts)
		j->nthreads = j->nparts;
}

static void expsub_sum(const struct cck__tier_ops *tbl, const float *x, float *y, size_t n, const struct cck__param *p,
                       struct cck__part *ret)
{
	double s = 0;
	size_t o, len;

	/* Sum each block while it is still in L1 instead of re-reading y from memory. */
	for (o = 0; o < n; o += len) {
		struct cck__part q = {0};

		len = n - o < BLOCK ? n - o : BLOCK;
		tbl->prim[CCK__EXPSUB](x + o, y + o, len, p);
		tbl->reduce[CCK__R_SUM](y + o, len, p, &q);
		s += q.s0;
	}
	ret->s0 = s;
}

static void job_part(const struct job *j, int k)
{
	size_t lo = (size_t)k * j->chunk;
	size_t len = j->n - lo < j->chunk ? j->n - lo : j->chunk;

	switch (j->mode) {
	case J_UNARY:
		j->fn.un(j->x + lo, j->y + lo, len, &j->p);
		break;
	case J_BINARY:
		j->fn.bin(j->x + lo, j->b + lo, j->y + lo, len);
		break;
	case J_REDUCE:
		j->fn.red(j->x + lo, len, &j->p, &j->parts[k]);
		break;
	case J_REDUCE2:
		j->fn.red2(j->x + lo, j->b + lo, len, &j->p, &j->parts[k]);
		break;
	case J_EXPSUB_SUM:
		expsub_sum(j->tbl, j->x + lo, j->y + lo, len, &j->p, &j->parts[k]);
		break;
	case J_CUMSUM:
		j->tbl->cumsum(j->x + lo, j->y + lo, len, j->carry[k]);
		break;
	}
}

/* Every thread takes parts first come, first served until none are left. */
static void job_task(void *arg, int i, int nt)
{
	struct job *j = arg;
	int k;

	(void)i;
	(void)nt;
	while ((k = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed)) < j->nparts)
		job_part(j, k);
}

static void job_run(struct job *j)
{
	int k;

	if (j->nthreads > 1) {
		atomic_init(&j->next, 0);
		cck__pool_run(j->nthreads, job_task, j);
		return;
	}
	for (k = 0; k < j->nparts; k++)
		job_part(j, k);
}

/* y = fn(x) over n elements, split for op. */
static void par_unary(int op, cck__unary_fn fn, const float *x, float *y, size_t n, const struct cck__param *p)
{
	struct job j = {.mode = J_UNARY, .x = x, .y = y, .p = *p, .fn.un = fn};

	split(&j, op, n, INT_MAX);
	job_run(&j);
}

enum combine {
	C_SUM,
	C_MIN,
	C_MAX,
};

/*
 * Fold parts in order into parts[0]. Strict comparisons keep the first
 * extreme, and a NaN, once found, wins: the result is that of one pass.
 */
static void combine(struct cck__part *parts, int np, size_t chunk, enum combine how)
{
	struct cck__part *acc = &parts[0];
	int k;

	for (k = 1; k < np; k++) {
		const struct cck__part *q = &parts[k];
		int take;

		switch (how) {
		case C_SUM:
			acc->s0 += q->s0;
			acc->s1 += q->s1;
			acc->s2 += q->s2;
			acc->s3 += q->s3;
			acc->s4 += q->s4;
			break;
		case C_MIN:
		case C_MAX:
			if (isnan(acc->f))
				break;
			take = isnan(q->f) || (how == C_MIN ? q->f < acc->f : q->f > acc->f);
			if (take) {
				acc->f = q->f;
				acc->idx = q->idx + (size_t)k * chunk;
			}
			break;
		}
	}
}

static enum combine combine_of(int prim)
{
	switch (prim) {
	case CCK__R_MIN:
		return C_MIN;
	case CCK__R_MAX:
	case CCK__R_ABSMAX:
		return C_MAX;
	default:
		return C_SUM;
	}
}

/* Reduction primitive prim over x[0, n), n > 0, split for op. */
static struct cck__part par_reduce(const struct cck__tier_ops *tbl, int op, int prim, const float *x, size_t n,
                                   const struct cck__param *p)
{
	struct cck__part parts[MAX_PARTS];
	struct job j = {.mode = J_REDUCE, .x = x, .p = *p, .fn.red = tbl->reduce[prim], .parts = parts};

	split(&j, op, n, MAX_PARTS);
	/* Kernels fill only their own fields: the rest must combine harmlessly. */
	memset(parts, 0, (size_t)j.nparts * sizeof(parts[0]));
	job_run(&j);
	combine(parts, j.nparts, j.chunk, combine_of(prim));
	return parts[0];
}

static struct cck__part par_reduce2(const struct cck__tier_ops *tbl, int op, int prim, const float *a, const float *b,
                                    size_t n, const struct cck__param *p)
{
	struct cck__part parts[MAX_PARTS];
	struct job j = {.mode = J_REDUCE2, .x = a, .b = b, .p = *p, .fn.red2 = tbl->reduce2[prim], .parts = parts};

	split(&j, op, n, MAX_PARTS);
	memset(parts, 0, (size_t)j.nparts * sizeof(parts[0]));
	job_run(&j);
	combine(parts, j.nparts, j.chunk, C_SUM);
	return parts[0];
}

/* ---- validation ------------------------------------------------------------ */

static int op_is(int op, int kind)
{
	return op >= 0 && op < CCK_OP_COUNT && op_info[op].kind == kind;
}

static int get_params(int op, const float *params, struct cck__param *p)
{
	int np = op_info[op].nparams;

	p->a = 0;
	p->b = 0;
	if (!np)
		return 0;
	if (!params)
		return -EINVAL;
	p->a = params[0];
	if (np > 1)
		p->b = params[1];
	if (isnan(p->a) || isnan(p->b))
		return -EINVAL;
	if (op == CCK_OP_CLAMP && p->a > p->b)
		return -EINVAL;
	if ((op == CCK_OP_LAYER_NORM || op == CCK_OP_RMS_NORM) && p->a < 0)
		return -EINVAL;
	return 0;
}

/* ---- whole-vector ops ------------------------------------------------------ */

static void fill_nan(float *y, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		y[i] = NAN;
}

/*
 * y = (x + a) * f with a and f computed in double. The offset goes in as two
 * floats, hi = (float)a and lo = (float)(a - hi), added one after the other:
 * where x is near -a (data with a large mean and a small spread), x + hi is
 * exact and lo restores the part of a that one float rounds away (up to half
 * an ulp of the mean, which can be most of the spread). When f does not fit
 * a normal float (a denormal spread or norm makes 1/spread overflow; a huge
 * one makes it denormal), scale in two steps through 2^64 so f keeps its
 * precision.
 */
static void affine(const struct cck__tier_ops *tbl, int op, const float *x, float *y, size_t n, double a, double f)
{
	const float hi = (float)a, lo = isfinite(hi) ? (float)(a - (double)hi) : 0.0f;
	struct cck__param p = {.a = hi, .b = (float)f, .c = lo};
	struct cck__param post = {.a = 1};

	if (f > FLT_MAX && isfinite(f)) {
		p.b = 0x1p64f;
		post.a = (float)(f * 0x1p-64);
	} else if (f > 0 && f < FLT_MIN) {
		p.b = (float)(f * 0x1p64);
		post.a = 0x1p-64f;
	}
	/* A zero offset goes through SCALE: x + 0 would turn -0 into +0. */
	if (hi == 0) {
		p.a = p.b;
		par_unary(op, tbl->unary[CCK_OP_SCALE], x, y, n, &p);
	} else if (lo == 0) {
		par_unary(op, tbl->prim[CCK__AFFINE], x, y, n, &p);
	} else {
		par_unary(op, tbl->prim[CCK__AFFINE2], x, y, n, &p);
	}
	if (post.a != 1)
		par_unary(op, tbl->unary[CCK_OP_SCALE], y, y, n, &post);
}

/*
 * Population mean and variance in one pass over x when it can be: shift by
 * c, the mean of the first SHIFT_N elements, and use the corrected formula
 * var = (s1 - s0^2 / n) / n with s0 = sum (x - c), s1 = sum (x - c)^2. The
 * subtraction loses little while c is within about a standard deviation of
 * the mean (s0^2 / n <= s1 / 2: at most one bit); when the head of the data
 * is unrepresentative (sorted or drifting input) a second pass centres on
 * the mean itself, which is the corrected two-pass method. The mean is
 * refined the same way, c + s0 / n, so constant input centres to exactly 0.
 */
#define SHIFT_N 4096

static void moments(const struct cck__tier_ops *tbl, int op, const float *x, size_t n, double *mean, double *var)
{
	struct cck__param p = {0};
	struct cck__part r;
	size_t head = n < SHIFT_N ? n : SHIFT_N;
	double v;

	tbl->reduce[CCK__R_SUM](x, head, &p, &r);
	p.a = (float)(r.s0 / (double)head);
	if (!isfinite(p.a))
		p.a = 0; /* inf/NaN input: let the full pass produce it */
	r = par_reduce(tbl, op, CCK__R_CSUMSQ, x, n, &p);
	if (head < n && r.s0 * r.s0 / (double)n > 0.5 * r.s1) {
		p.a = (float)(p.a + r.s0 / (double)n);
		r = par_reduce(tbl, op, CCK__R_CSUMSQ, x, n, &p);
	}
	v = (r.s1 - r.s0 * r.s0 / (double)n) / (double)n;
	*mean = p.a + r.s0 / (double)n;
	*var = v < 0 ? 0 : v; /* rounding can go just below 0; NaN stays NaN */
}

static void softmax(const struct cck__tier_ops *tbl, int op, const float *x, float *y, size_t n)
{
	struct cck__param p = {0};
	struct cck__part parts[MAX_PARTS];
	struct job j = {.mode = J_EXPSUB_SUM, .x = x, .y = y, .tbl = tbl, .parts = parts};
	float m = par_reduce(tbl, op, CCK__R_MAX, x, n, &p).f;

	/* NaN, or an infinite max (inf - inf): NumPy gives NaN everywhere. */
	if (!isfinite(m)) {
		fill_nan(y, n);
		return;
	}
	j.p.a = m;
	split(&j, op, n, MAX_PARTS);
	memset(parts, 0, (size_t)j.nparts * sizeof(parts[0]));
	job_run(&j);
	combine(parts, j.nparts, j.chunk, C_SUM);
	/* s >= 1 (the max contributes exp(0)), so 1/s is a normal float. */
	p.a = (float)(1.0 / parts[0].s0);
	par_unary(op, tbl->unary[CCK_OP_SCALE], y, y, n, &p);
}

static void log_softmax(const struct cck__tier_ops *tbl, int op, const float *x, float *y, size_t n)
{
	struct cck__param p = {0};
	float m = par_reduce(tbl, op, CCK__R_MAX, x, n, &p).f;
	double s;

	if (!isfinite(m)) {
		fill_nan(y, n);
		return;
	}
	p.a = m;
	s = par_reduce(tbl, op, CCK__R_EXPSUM, x, n, &p).s0;
	/*
	 * (x - m) is exact near the max (Sterbenz), so the small results that
	 * matter most keep full precision; a single float offset m + log s
	 * would round away up to ulp(m) from each of them.
	 */
	p.a = m;
	p.b = (float)log(s);
	par_unary(op, tbl->prim[CCK__SUB2], x, y, n, &p);
}

static void cumsum(const struct cck__tier_ops *tbl, int op, const float *x, float *y, size_t n)
{
	struct cck__part parts[MAX_PARTS];
	double carry[MAX_PARTS], run = 0;
	struct cck__param p = {0};
	struct job j = {.mode = J_REDUCE, .x = x, .y = y, .tbl = tbl, .fn.red = tbl->reduce[CCK__R_SUM]};
	int k;

	split(&j, op, n, MAX_PARTS);
	if (j.nthreads == 1) {
		tbl->cumsum(x, y, n, 0);
		return;
	}
	/* Two passes: each part's sum gives the next part its carry. */
	j.p = p;
	j.parts = parts;
	memset(parts, 0, (size_t)j.nparts * sizeof(parts[0]));
	job_run(&j);
	for (k = 0; k < j.nparts; k++) {
		carry[k] = run;
		run += parts[k].s0;
	}
	j.mode = J_CUMSUM;
	j.carry = carry;
	job_run(&j);
}

static void vector_op(int op, const float *x, float *y, size_t n, const struct cck__param *prm)
{
	const struct cck__tier_ops *tbl = cck__ops_for(op);
	struct cck__param p = {0};
	struct cck__part lo, hi;
	double mean, var, d;

	switch (op) {
	case CCK_OP_SOFTMAX:
		softmax(tbl, op, x, y, n);
		return;
	case CCK_OP_LOG_SOFTMAX:
		log_softmax(tbl, op, x, y, n);
		return;
	case CCK_OP_NORMALIZE:
		d = sqrt(par_reduce(tbl, op, CCK__R_SUMSQ, x, n, &p).s0);
		/* All zeros: 0/0 is NaN in NumPy's x / norm(x), so here too. */
		if (isnan(d) || d == 0)
			break;
		affine(tbl, op, x, y, n, 0, 1 / d);
		return;
	case CCK_OP_ZSCORE:
	case CCK_OP_LAYER_NORM:
		moments(tbl, op, x, n, &mean, &var);
		d = sqrt(var + (op == CCK_OP_LAYER_NORM ? prm->a : 0));
		/* Constant input without eps divides 0 by 0. */
		if (isnan(d) || d == 0)
			break;
		affine(tbl, op, x, y, n, -mean, 1 / d);
		return;
	case CCK_OP_MINMAX_NORMALIZE:
		lo = par_reduce(tbl, op, CCK__R_MIN, x, n, &p);
		hi = par_reduce(tbl, op, CCK__R_MAX, x, n, &p);
		d = (double)hi.f - lo.f;
		if (isnan(d) || d == 0)
			break;
		/* An infinite range gives 0, and NaN where x is infinite, as NumPy does. */
		affine(tbl, op, x, y, n, -(double)lo.f, 1 / d);
		return;
	case CCK_OP_RMS_NORM:
		d = sqrt(par_reduce(tbl, op, CCK__R_SUMSQ, x, n, &p).s0 / (double)n + prm->a);
		if (isnan(d) || d == 0)
			break;
		affine(tbl, op, x, y, n, 0, 1 / d);
		return;
	case CCK_OP_CUMSUM:
		cumsum(tbl, op, x, y, n);
		return;
	default:
		CCK__ASSERT(0);
	}
	fill_nan(y, n);
}

/* ---- the kernels ------------------------------------------------------------ */

CCK_EXPORT int cck_unary_f32(int op, const float *x, float *y, size_t n, const float *params)
{
	const struct cck__tier_ops *tbl;
	struct cck__param p;
	int err;

	if (!op_is(op, CCK_KIND_UNARY) && !op_is(op, CCK_KIND_VECTOR))
		return -EINVAL;
	err = get_params(op, params, &p);
	if (err)
		return err;
	if (n > MAX_N)
		return -EINVAL;
	if (!n)
		return 0;
	if (!x || !y)
		return -EINVAL;
	if (op_info[op].kind == CCK_KIND_VECTOR) {
		vector_op(op, x, y, n, &p);
		return 0;
	}
	tbl = cck__ops_for(op);
	if (n < split_min(op))
		tbl->unary[op](x, y, n, &p);
	else
		par_unary(op, tbl->unary[op], x, y, n, &p);
	return 0;
}

CCK_EXPORT int cck_binary_f32(int op, const float *a, const float *b, float *y, size_t n)
{
	const struct cck__tier_ops *tbl;
	struct job j = {.mode = J_BINARY, .x = a, .b = b, .y = y};

	if (!op_is(op, CCK_KIND_BINARY) || n > MAX_N)
		return -EINVAL;
	if (!n)
		return 0;
	if (!a || !b || !y)
		return -EINVAL;
	tbl = cck__ops_for(op);
	if (n < split_min(op)) {
		tbl->binary[op](a, b, y, n);
		return 0;
	}
	j.fn.bin = tbl->binary[op];
	split(&j, op, n, INT_MAX);
	job_run(&j);
	return 0;
}

CCK_EXPORT int cck_reduce_f32(int op, const float *x, size_t n, double *ret)
{
	const struct cck__tier_ops *tbl;
	struct cck__param p = {0};
	struct cck__part r;
	double mean, var, v;

	if (!op_is(op, CCK_KIND_REDUCE) || !ret || n > MAX_N)
		return -EINVAL;
	if (!n) {
		switch (op) {
		case CCK_OP_MIN:
		case CCK_OP_MAX:
		case CCK_OP_ARGMIN:
		case CCK_OP_ARGMAX:
			return -EINVAL;
		case CCK_OP_MEAN:
		case CCK_OP_VARIANCE:
		case CCK_OP_STDDEV:
			*ret = NAN;
			return 0;
		default:
			*ret = 0;
			return 0;
		}
	}
	if (!x)
		return -EINVAL;
	tbl = cck__ops_for(op);

	switch (op) {
	case CCK_OP_SUM:
		v = par_reduce(tbl, op, CCK__R_SUM, x, n, &p).s0;
		break;
	case CCK_OP_MEAN:
		v = par_reduce(tbl, op, CCK__R_SUM, x, n, &p).s0 / (double)n;
		break;
	case CCK_OP_MIN:
	case CCK_OP_ARGMIN:
		r = par_reduce(tbl, op, CCK__R_MIN, x, n, &p);
		v = op == CCK_OP_MIN ? (double)r.f : (double)r.idx;
		break;
	case CCK_OP_MAX:
	case CCK_OP_ARGMAX:
		r = par_reduce(tbl, op, CCK__R_MAX, x, n, &p);
		v = op == CCK_OP_MAX ? (double)r.f : (double)r.idx;
		break;
	case CCK_OP_SUM_OF_SQUARES:
		v = par_reduce(tbl, op, CCK__R_SUMSQ, x, n, &p).s0;
		break;
	case CCK_OP_NORM_L1:
		v = par_reduce(tbl, op, CCK__R_ABSSUM, x, n, &p).s0;
		break;
	case CCK_OP_NORM_L2:
		v = sqrt(par_reduce(tbl, op, CCK__R_SUMSQ, x, n, &p).s0);
		break;
	case CCK_OP_NORM_LINF:
		v = par_reduce(tbl, op, CCK__R_ABSMAX, x, n, &p).f;
		break;
	case CCK_OP_VARIANCE:
	case CCK_OP_STDDEV:
		moments(tbl, op, x, n, &mean, &var);
		v = op == CCK_OP_VARIANCE ? var : sqrt(var);
		break;
	default:
		CCK__ASSERT(0);
	}
	*ret = v;
	return 0;
}

/*
 * Covariance and correlation by the same corrected two-pass method as
 * moments(): centred on ca = (float)mean_a and cb likewise, with
 * sum (a - ma)(b - mb) = sum da db - (sum da)(sum db) / n.
 */
static double centred2(const struct cck__tier_ops *tbl, int op, const float *a, const float *b, size_t n)
{
	struct cck__param p = {0};
	struct cck__part r;
	double sab, saa, sbb, nd = (double)n;

	p.a = (float)(par_reduce(tbl, op, CCK__R_SUM, a, n, &p).s0 / nd);
	p.b = (float)(par_reduce(tbl, op, CCK__R_SUM, b, n, &p).s0 / nd);
	r = par_reduce2(tbl, op, CCK__R2_CENTRED, a, b, n, &p);
	sab = r.s0 - r.s3 * r.s4 / nd;
	if (op == CCK_OP_COVARIANCE)
		return sab / nd;
	saa = r.s1 - r.s3 * r.s3 / nd;
	sbb = r.s2 - r.s4 * r.s4 / nd;
	/* A constant input has no correlation: NaN, as NumPy's corrcoef. */
	if (!(saa > 0 && sbb > 0) || isnan(sab))
		return NAN;
	r.s0 = sab / (sqrt(saa) * sqrt(sbb));
	/* Rounding can step just outside [-1, 1]; corrcoef clips too. */
	return r.s0 > 1 ? 1 : r.s0 < -1 ? -1 : r.s0;
}

CCK_EXPORT int cck_reduce2_f32(int op, const float *a, const float *b, size_t n, double *ret)
{
	const struct cck__tier_ops *tbl;
	struct cck__param p = {0};
	double v;

	if (!op_is(op, CCK_KIND_REDUCE2) || !ret || n > MAX_N)
		return -EINVAL;
	if (!n) {
		*ret = op == CCK_OP_COVARIANCE || op == CCK_OP_CORRELATION ? NAN : 0;
		return 0;
	}
	if (!a || !b)
		return -EINVAL;
	tbl = cck__ops_for(op);

	switch (op) {
	case CCK_OP_DOT:
		v = par_reduce2(tbl, op, CCK__R2_DOT, a, b, n, &p).s0;
		break;
	case CCK_OP_DIST_L2:
		v = sqrt(par_reduce2(tbl, op, CCK__R2_SQDIFF, a, b, n, &p).s0);
		break;
	case CCK_OP_COVARIANCE:
	case CCK_OP_CORRELATION:
		v = centred2(tbl, op, a, b, n);
		break;
	default:
		CCK__ASSERT(0);
	}
	*ret = v;
	return 0;
}
