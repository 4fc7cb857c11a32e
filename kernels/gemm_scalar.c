/* SPDX-License-Identifier: MIT */
/* gemm_scalar.c: portable reference GEMM and matvec, the baseline tier and the yardstick of the tests. */
#include <string.h>

#include "gemm.h"

/*
 * Blocking: a KC x NC block of B (64 KiB) stays in L2 while every row of A
 * streams past it, so large products are not bound by memory even without
 * SIMD. Each C element is still summed over p in plain increasing order,
 * which keeps this the simple reference the SIMD tiers are tested against.
 */
#define SCALAR_KC 128
#define SCALAR_NC 128

/* Contract in gemm.h: C = A * B, overwriting C; zeroes C when k == 0. */
void cck__gemm_scalar(const float *A, size_t lda, const float *B, size_t ldb, float *C, size_t ldc, size_t m, size_t k,
                      size_t n)
{
	size_t i, j, p, pc, jc;

	for (i = 0; i < m; i++)
		memset(C + i * ldc, 0, n * sizeof(float));
	for (pc = 0; pc < k; pc += SCALAR_KC) {
		size_t pe = k - pc < SCALAR_KC ? k : pc + SCALAR_KC;

		for (jc = 0; jc < n; jc += SCALAR_NC) {
			size_t nc = n - jc < SCALAR_NC ? n - jc : SCALAR_NC;

			for (i = 0; i < m; i++) {
				float *c = C + i * ldc + jc;

				for (p = pc; p < pe; p++) {
					const float *b = B + p * ldb + jc;
					float a = A[i * lda + p];

					for (j = 0; j < nc; j++)
						c[j] += a * b[j];
				}
			}
		}
	}
}

/* Contract in gemm.h: y = A * x, one plain dot product per row. */
void cck__matvec_scalar(const float *A, size_t lda, const float *x, float *y, size_t rows, size_t cols)
{
	size_t r, c;

	for (r = 0; r < rows; r++) {
		const float *a = A + r * lda;
		float s = 0.0f;

		for (c = 0; c < cols; c++)
			s += a[c] * x[c];
		y[r] = s;
	}
}
