/* SPDX-License-Identifier: MIT */
/* gemm.h: the per-tier matrix kernels that the tier tables (kern_*.c) point at. */
#ifndef CCK_GEMM_H
#define CCK_GEMM_H

#include <stddef.h>

/*
 * cck__gemm_<tier>: C[m x n] = A[m x k] * B[k x n], row-major, element (i, j)
 * of X at X[i * ldX + j]. C is overwritten (not accumulated into); with k == 0
 * it is zeroed. C must not overlap A or B. Single-threaded and reentrant: the
 * packing buffers are allocated per call, so several threads may run it on
 * disjoint blocks of C at once. Accumulates in float.
 *
 * cck__matvec_<tier>: y[r] = sum_c A[r * lda + c] * x[c] for r in [0, rows);
 * y is zeroed when cols == 0. y must not overlap A or x. Single-threaded.
 *
 * Each tier's body lives in gemm_<tier>.c, compiled with that tier's ISA flags
 * only; callers must check the host supports the tier before calling it.
 */
void cck__gemm_scalar(const float *A, size_t lda, const float *B, size_t ldb, float *C, size_t ldc, size_t m, size_t k,
                      size_t n);
void cck__matvec_scalar(const float *A, size_t lda, const float *x, float *y, size_t rows, size_t cols);

#if defined(__x86_64__) || defined(__i386__)
void cck__gemm_sse2(const float *A, size_t lda, const float *B, size_t ldb, float *C, size_t ldc, size_t m, size_t k,
                    size_t n);
void cck__matvec_sse2(const float *A, size_t lda, const float *x, float *y, size_t rows, size_t cols);
void cck__gemm_avx2(const float *A, size_t lda, const float *B, size_t ldb, float *C, size_t ldc, size_t m, size_t k,
                    size_t n);
void cck__matvec_avx2(const float *A, size_t lda, const float *x, float *y, size_t rows, size_t cols);
void cck__gemm_avx512(const float *A, size_t lda, const float *B, size_t ldb, float *C, size_t ldc, size_t m, size_t k,
                      size_t n);
void cck__matvec_avx512(const float *A, size_t lda, const float *x, float *y, size_t rows, size_t cols);
#endif

#endif /* CCK_GEMM_H */
