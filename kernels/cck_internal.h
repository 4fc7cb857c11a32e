/* SPDX-License-Identifier: MIT */
/* cck_internal.h: what the tier files, the dispatcher and the pool share inside libcck. */
#ifndef CCK_INTERNAL_H
#define CCK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "cck.h"

/* Parameters of an element-wise op, resolved by the dispatcher. */
struct cck__param {
	float a; /* alpha, lo, scale, ... */
	float b; /* hi, offset, ... */
	float c; /* the low part of a two-float offset (CCK__AFFINE2) */
};

/*
 * Partial result of a reduction over one chunk; chunks are combined in order.
 * The double fields must be as good as double accumulation: a tier may sum
 * in float blocks for speed, but falls back to double where float would
 * overflow or underflow (squares of |x| > 1e19 or < 1e-19).
 */
struct cck__part {
	double s0;  /* sum / sum of squares / dot ... */
	double s1;  /* second moment where an op needs one */
	double s2;  /* third accumulator (correlation) */
	double s3;  /* sum of centred a (correction term) */
	double s4;  /* sum of centred b (correction term) */
	float f;    /* min / max / |max| */
	size_t idx; /* argmin / argmax, relative to the chunk start */
};

/* Element-wise kernel: y[i] = f(x[i]), y may equal x. */
typedef void (*cck__unary_fn)(const float *x, float *y, size_t n, const struct cck__param *p);
/* Element-wise binary kernel: y may equal a or b. */
typedef void (*cck__binary_fn)(const float *a, const float *b, float *y, size_t n);
/* Reduction of one chunk; p carries a centre (mean) for centred ops. */
typedef void (*cck__reduce_fn)(const float *x, size_t n, const struct cck__param *p, struct cck__part *ret);
typedef void (*cck__reduce2_fn)(const float *a, const float *b, size_t n, const struct cck__param *p,
                                struct cck__part *ret);

/* Internal primitives that are not public ops. */
enum cck__prim {
	CCK__AFFINE = 0, /* unary: y = (x + p.a) * p.b */
	CCK__EXPSUB,     /* unary: y = exp(x - p.a) */
	CCK__SUB2,       /* unary: y = (x - p.a) - p.b, two roundings (log_softmax) */
	CCK__AFFINE2,    /* unary: y = ((x + p.a) + p.c) * p.b: an offset of two floats (zscore, layer_norm) */
	CCK__PRIM_COUNT
};
enum cck__rprim {
	CCK__R_SUM = 0, /* s0 = sum x (double accumulation) */
	CCK__R_SUMSQ,   /* s0 = sum x^2 (as if in double: no float overflow or underflow) */
	CCK__R_ABSSUM,  /* s0 = sum |x| */
	CCK__R_MIN,     /* f = min x (NaN if any), idx = first index of it */
	CCK__R_MAX,     /* f = max x (NaN if any), idx = first index of it */
	CCK__R_ABSMAX,  /* f = max |x| (NaN if any) */
	CCK__R_CSUMSQ,  /* s0 = sum (x - p.a), s1 = sum (x - p.a)^2, as if in double */
	CCK__R_EXPSUM,  /* s0 = sum exp(x - p.a) */
	CCK__R_COUNT
};
enum cck__r2prim {
	CCK__R2_DOT = 0, /* s0 = sum a*b */
	CCK__R2_SQDIFF,  /* s0 = sum (a-b)^2 */
	CCK__R2_CENTRED, /* da = a - p.a, db = b - p.b (in double): s0 = sum da*db, s1 = sum da^2,
	                    s2 = sum db^2, s3 = sum da, s4 = sum db */
	CCK__R2_COUNT
};

/*
 * One SIMD tier: every op has a body here. Tables are const and filled at
 * build time; dispatch picks a table per op once (see cck.c).
 */
struct cck__tier_ops {
	const char *name;
	cck__unary_fn unary[CCK_OP_COUNT]; /* element-wise ops, indexed by enum cck_op */
	cck__unary_fn prim[CCK__PRIM_COUNT];
	cck__binary_fn binary[CCK_OP_COUNT];
	cck__reduce_fn reduce[CCK__R_COUNT];
	cck__reduce2_fn reduce2[CCK__R2_COUNT];
	/* y = inclusive prefix sum of x, plus carry; returns carry + sum(x) */
	double (*cumsum)(const float *x, float *y, size_t n, double carry);
	/* y[r] = dot(A[r*lda .. +cols], x) for r in [0, rows) */
	void (*matvec)(const float *A, size_t lda, const float *x, float *y, size_t rows, size_t cols);
	/*
	 * C[m x n] (ldc) = A[m x k] (lda) * B[k x n] (ldb), single-threaded over
	 * a block of C. The threaded driver in matmul.c calls it on slices.
	 */
	void (*gemm)(const float *A, size_t lda, const float *B, size_t ldb, float *C, size_t ldc, size_t m, size_t k,
	             size_t n);
};

extern const struct cck__tier_ops cck__ops_scalar;
#if defined(__x86_64__) || defined(__i386__)
extern const struct cck__tier_ops cck__ops_sse2;
extern const struct cck__tier_ops cck__ops_avx2;
extern const struct cck__tier_ops cck__ops_avx512;
#endif

/* Host detection (cpu.c, baseline flags): highest enum cck_tier_id the CPU and OS support. */
int cck__cpu_tier(void);
/* Whether the CPU has AVX512-VNNI next to the avx512 tier (cpu.c): 1 or 0. */
int cck__cpu_has_avx512vnni(void);

/*
 * Persistent thread pool (pool.c). cck__pool_run calls fn(arg, i, nt) for
 * i in [0, nt) on nt threads (the caller runs i == 0) and returns when all
 * are done. Parts may share a thread, so fn must never wait for another
 * part of the same job. nt is clamped to the pool size. Safe to call from several
 * threads: concurrent callers are serialised, and a call made from inside a
 * pool task runs every part inline.
 */
int cck__pool_threads(void);
/* Set this thread's cap (0: none); returns the old one. */
int cck__pool_local_limit(int n);
int cck__pool_resize(int n);
void cck__pool_run(int nt, void (*fn)(void *arg, int i, int nt), void *arg);

/* Highest tier any op may use now: the forced tier, or the host's (enum cck_tier_id). */
int cck__tier_cap(void);

/* Current table for op (tier choice per op); never NULL. */
const struct cck__tier_ops *cck__ops_for(int op);

#define CCK__ASSERT(c)                                                                                                 \
	do {                                                                                                           \
		if (!(c))                                                                                              \
			cck__assert_fail(#c, __FILE__, __LINE__);                                                      \
	} while (0)
void cck__assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

#endif /* CCK_INTERNAL_H */
