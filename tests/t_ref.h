/* SPDX-License-Identifier: MIT */
/* t_ref.h: helpers of the libcck tests: a PRNG, float bit tools, double-precision references and guarded buffers. */
#ifndef T_REF_H
#define T_REF_H

#include <stddef.h>
#include <stdint.h>

/* xorshift64* PRNG: deterministic, so a failure replays with the same data. */
struct t_rng {
	uint64_t s;
};
void t_rng_seed(struct t_rng *r, uint64_t seed);
uint64_t t_rng_u64(struct t_rng *r);
/* Uniform in [0, 1). */
double t_rng_unit(struct t_rng *r);
/* Uniform in [lo, hi). */
double t_rng_uniform(struct t_rng *r, double lo, double hi);
/* Roughly N(0, 1): the sum of 12 uniforms, minus 6. */
double t_rng_normal(struct t_rng *r);
/* Uniform integer in [0, n), n > 0. */
size_t t_rng_below(struct t_rng *r, size_t n);

uint32_t t_bits(float f);
float t_float(uint32_t u);
/* Distance of two non-NaN floats in representable steps (+0 and -0 are one point; an
 * infinity is the step after the largest finite float). */
int64_t t_ulp_dist(float a, float b);
/* Spacing of floats at |f| (the ulp of f); +inf for an infinity. */
double t_ulp_at(float f);

/* Special inputs: zeros, infinities, NaNs (with payloads, signalling), FLT_MIN, denormals,
 * FLT_MAX, the exp overflow and underflow thresholds, large sin/cos arguments, halves and
 * rounding traps. t_special(i) for i in [0, t_nspecials()). */
size_t t_nspecials(void);
float t_special(size_t i);

/* How an element-wise op's result is compared with the double reference. */
enum t_tol_kind {
	T_TOL_EXACT,   /* bit-identical to (float)ref; any NaN matches any NaN */
	T_TOL_EXACT_Z, /* the same, except +0 and -0 match (sign of a zero result unspecified) */
	T_TOL_ULP      /* <= ulps steps from (float)ref, or |got - ref| <= T_ABS_TOL */
};
#define T_ABS_TOL 1e-7
struct t_tol {
	enum t_tol_kind kind;
	int ulps;
};
/* The accuracy contract of an element-wise (unary or binary) op. */
struct t_tol t_op_tol(int op);
/* 1 if got satisfies tol against the double reference ref. */
int t_elem_ok(struct t_tol tol, float got, double ref);
/* 1 if got agrees with the scalar tier's s within twice tol. */
int t_same_ok(struct t_tol tol, float got, float s);

/* Double reference of a unary element-wise op (params as the kernel reads them). */
double t_ref_unary(int op, double x, const float *params);
/* Double reference of a binary element-wise op. */
double t_ref_binary(int op, double a, double b);
/*
 * Double reference of a whole-vector op into y[0..n) and the per-element bound into bound[0..n).
 * Returns 0, or -1 when the op is undefined on x (a constant or all-zero vector).
 */
int t_ref_vector(int op, const float *x, size_t n, const float *params, double *y, double *bound);
/*
 * Double reference of a reduction and its error bound in *bound (0: exact). *bound < 0 means
 * the result is undefined on this data and is not checked. n == 0 gives the documented values.
 */
/* |got - ref| <= bound, NaN matching NaN, infinities matching exactly (a reduction's result against its reference). */
int t_close(double got, double ref, double bound);
double t_ref_reduce(int op, const float *x, size_t n, double *bound);
double t_ref_reduce2(int op, const float *a, const float *b, size_t n, double *bound);
/* Double reference of C = A*B (m x k times k x n, row-major) and its bound per element:
 * 2 * k * 2^-24 * sum_p |a_ip||b_pj|. */
void t_ref_matmul(const float *A, const float *B, size_t m, size_t k, size_t n, double *C, double *bound);

/*
 * A mapping with a PROT_NONE page on each side of a usable region [lo, hi): a buffer placed
 * to end at hi (or start at lo) faults on any access past its end (or before its start).
 */
struct t_guard {
	unsigned char *map;
	size_t maplen;
	unsigned char *lo;
	unsigned char *hi;
};
int t_guard_init(struct t_guard *g, size_t bytes);
void t_guard_fini(struct t_guard *g);
/* n floats that end exactly at the trailing guard page / start right after the leading one. */
float *t_guard_end(const struct t_guard *g, size_t n);
float *t_guard_start(const struct t_guard *g, size_t n);

/* Inputs of element-wise ops: mostly ordinary values of several scales, some arbitrary bit patterns and specials. */
void t_gen_mixed(struct t_rng *r, float *x, size_t n);
/* Finite data sets of several scales and offsets for the whole-vector ops and the reductions: set which % T_NDATA;
 * returns its name. */
#define T_NDATA 6
const char *t_gen_data(struct t_rng *r, float *x, size_t n, int which);

/* Parameter sets the tests use per op (t_npsets of them, >= 1; small-n tests cycle through them): set i % t_npsets
 * of op, or NULL for an op without params. */
int t_npsets(int op);
const float *t_pset(int op, int i);

#endif /* T_REF_H */
