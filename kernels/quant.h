/* SPDX-License-Identifier: MIT */
/* quant.h: block layouts of the quantized types (as ggml stores them in GGUF) and the
 * per-tier table of quantized kernels, shared inside libcck. */
#ifndef CCK_QUANT_H
#define CCK_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include "cck.h"

#define CCK_QK 32    /* elements per block of the 32-element types */
#define CCK_QK_K 256 /* elements per super-block of the k-quants */
#define CCK_K_SCALE_SIZE 12

typedef uint16_t cck_f16;  /* IEEE half, raw bits */
typedef uint16_t cck_bf16; /* bfloat16, raw bits */

/* 32-element blocks. Element j of a block: low nibble of qs[j] for j < 16,
 * high nibble of qs[j - 16] for j >= 16 (the 4- and 5-bit types). */
struct cck_block_q4_0 {
	cck_f16 d;
	uint8_t qs[CCK_QK / 2];
}; /* x = (q - 8) * d */
struct cck_block_q4_1 {
	cck_f16 d, m;
	uint8_t qs[CCK_QK / 2];
}; /* x = q * d + m */
struct cck_block_q5_0 {
	cck_f16 d;
	uint8_t qh[4]; /* bit j = 5th bit of element j */
	uint8_t qs[CCK_QK / 2];
}; /* x = (q - 16) * d */
struct cck_block_q5_1 {
	cck_f16 d, m;
	uint8_t qh[4];
	uint8_t qs[CCK_QK / 2];
}; /* x = q * d + m */
struct cck_block_q8_0 {
	cck_f16 d;
	int8_t qs[CCK_QK];
}; /* x = q * d */
struct cck_block_q8_1 {
	cck_f16 d; /* delta */
	cck_f16 s; /* d * sum(qs) */
	int8_t qs[CCK_QK];
};

/* 256-element super-blocks (k-quants). */
struct cck_block_q2_k {
	uint8_t scales[CCK_QK_K / 16]; /* low 4 bits scale, high 4 bits min */
	uint8_t qs[CCK_QK_K / 4];
	cck_f16 d, dmin;
};
struct cck_block_q3_k {
	uint8_t hmask[CCK_QK_K / 8];
	uint8_t qs[CCK_QK_K / 4];
	uint8_t scales[12]; /* 16 6-bit scales */
	cck_f16 d;
};
struct cck_block_q4_k {
	cck_f16 d, dmin;
	uint8_t scales[CCK_K_SCALE_SIZE]; /* 8 6-bit scales and mins */
	uint8_t qs[CCK_QK_K / 2];
};
struct cck_block_q5_k {
	cck_f16 d, dmin;
	uint8_t scales[CCK_K_SCALE_SIZE];
	uint8_t qh[CCK_QK_K / 8];
	uint8_t qs[CCK_QK_K / 2];
};
struct cck_block_q6_k {
	uint8_t ql[CCK_QK_K / 2];
	uint8_t qh[CCK_QK_K / 4];
	int8_t scales[CCK_QK_K / 16];
	cck_f16 d;
};
struct cck_block_q8_k {
	float d;
	int8_t qs[CCK_QK_K];
	int16_t bsums[CCK_QK_K / 16]; /* sum of each 16 qs */
};

_Static_assert(sizeof(struct cck_block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(struct cck_block_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(struct cck_block_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(struct cck_block_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(struct cck_block_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(struct cck_block_q8_1) == 36, "q8_1 layout");
_Static_assert(sizeof(struct cck_block_q2_k) == 84, "q2_k layout");
_Static_assert(sizeof(struct cck_block_q3_k) == 110, "q3_k layout");
_Static_assert(sizeof(struct cck_block_q4_k) == 144, "q4_k layout");
_Static_assert(sizeof(struct cck_block_q5_k) == 176, "q5_k layout");
_Static_assert(sizeof(struct cck_block_q6_k) == 210, "q6_k layout");
_Static_assert(sizeof(struct cck_block_q8_k) == 292, "q8_k layout");

/* Static facts about one type (quant.c holds the table, indexed by type id). */
struct cck__type_traits {
	const char *name; /* NULL: not a supported type id */
	size_t blck;      /* elements per block */
	size_t bytes;     /* bytes per block */
	int act_type;     /* type x is quantized to for a dot product (CCK_TYPE_Q8_0 ...), or -1 */
};
extern const struct cck__type_traits cck__types[CCK_TYPE_COUNT];

/* Dequantize nb blocks of src into dst[nb * blck]. */
typedef void (*cck__dequant_fn)(const void *src, float *dst, size_t nb);
/* Quantize n floats (n a multiple of the block size) into dst. */
typedef void (*cck__quant_fn)(const float *src, void *dst, size_t n);
/* Dot of a weight row (n elements, n a multiple of the block size) with an
 * activation row already in the type's act_type; returns the sum. */
typedef float (*cck__vdot_fn)(size_t n, const void *w, const void *act);
/* vdot of 4 weight rows at once (row r at w + r * row_stride) with one activation row: out[r] is
 * bit for bit what the same table's vdot gives for row r (only the rows' work is interleaved). */
typedef void (*cck__vdot4_fn)(size_t n, const void *w, size_t row_stride, const void *act, float out[4]);

/*
 * Batched dot products (cck_qmatmul), optional, SIMD tables only. The weights
 * are unpacked once per block for a group of activation columns, and every
 * (row, column) keeps its own accumulator: each output is bit for bit what the
 * same table's vdot gives for that row and column (the same float operations
 * in the same order; only integer work and loads are shared).
 * mprep[t](n, act, act_stride, cols, buf): once per call, lays out what
 * vdotm[t] needs of the cols activation rows (float scales as vectors of 8
 * columns, per-column integer offsets) in buf: 64-byte aligned, of
 * CCK_MM_PREP_BYTES(n, cols) bytes.
 * vdotm[t](n, w, row_stride, rows, prep, cols, y, y_stride): y[c * y_stride +
 * r] = vdot(n, w + r * row_stride, act + c * act_stride) for r < rows, c <
 * cols (the activations as prep has them: vdotm reads only prep).
 */
#define CCK_MM_PREP_BLOCK 576 /* bytes per block per group of 8 columns, at most */
#define CCK_MM_PREP_BYTES(n, cols) (((cols) + 7) / 8 * ((n) / CCK_QK) * (size_t)CCK_MM_PREP_BLOCK)
typedef void (*cck__mprep_fn)(size_t n, const void *act, size_t act_stride, size_t cols, void *buf);
typedef void (*cck__vdotm_fn)(size_t n, const void *w, size_t row_stride, size_t rows, const void *prep, size_t cols,
                              float *y, size_t y_stride);

/*
 * One tier's quantized kernels, indexed by type id. A NULL entry falls back
 * to the next lower tier (the scalar table has every entry).
 * dequant[t] / quant[t]: the type itself; quant[] also covers the activation
 * types (q8_0, q8_1, q8_k, f16, bf16). vdot[t]: weight type t times act_type(t).
 * A SIMD entry must give the same value as the scalar one up to float
 * summation order (integer parts exact); q4_0, q4_1, q5_0, q5_1 and q8_0
 * give it bit for bit (ggml's x86 order: 8 float lanes, see quant_scalar.c).
 */
struct cck__qops {
	cck__dequant_fn dequant[CCK_TYPE_COUNT];
	cck__quant_fn quant[CCK_TYPE_COUNT];
	/*
	 * act_quant[t]: how cck_qdot / qmatvec / qmatmul quantize the activations to t where that differs from
	 * quant[t] (cck_quantize's ggml _ref semantics): q8_0 and q8_1 as the x86 code llama.cpp runs
	 * (ggml-cpu's quantize_row_q8_0 / q8_1: id = 127 / amax, round half to even, saturating to int8, q8_1's
	 * s = f16(d * sum q)). NULL in every table: quant[t] is used. Bit-identical across tiers.
	 */
	cck__quant_fn act_quant[CCK_TYPE_COUNT];
	cck__vdot_fn vdot[CCK_TYPE_COUNT];
	cck__vdot4_fn vdot4[CCK_TYPE_COUNT]; /* optional: used only with the same table's vdot */
	cck__mprep_fn mprep[CCK_TYPE_COUNT]; /* optional, with vdotm: both used only with the same table's vdot */
	cck__vdotm_fn vdotm[CCK_TYPE_COUNT];
};

extern const struct cck__qops cck__qops_scalar;
#if defined(__x86_64__) || defined(__i386__)
extern const struct cck__qops cck__qops_avx2;
extern const struct cck__qops cck__qops_avx512;
extern const struct cck__qops cck__qops_avx512vnni; /* avx512 + AVX512-VNNI: the avx512 table where the CPU has it */
#endif

/*
 * Packed matrices (cck_qpack, qpack.c). A q4_1 group of 16 rows holds, per block column, 320 bytes: qs[j][r][i] =
 * row r's qs[4 j + i] (j < 4, r < 16, i < 4: lane r of a 64-byte vector j holds 4 of row r's bytes: elements
 * 4 j + i in the low nibbles, 16 + 4 j + i in the high ones), then the 16 rows' d, then their m.
 * pmm(nb, W, groups, act, act_stride, ds, cols, y, y_stride): for the groups of 16 rows from W (nb blocks a row) and
 * cols activation rows (q8_1, act_stride bytes apart; ds[2 (c nb + b)] and [.. + 1]: column c's block b's d and s as
 * floats: see q8_0 below), y[c * y_stride + 16 g + r] = the packed order's dot (cck.h). act: q8_1 rows for q4_1,
 * q8_0 rows for q8_0 (the weight type's activation type).
 */
struct cck_block_q4_1x16 {
	uint8_t qs[4][16][4];
	cck_f16 d[16], m[16];
};
_Static_assert(sizeof(struct cck_block_q4_1x16) == 16 * sizeof(struct cck_block_q4_1), "q4_1x16 layout");
/* q8_0: qs[k][r][i] = row r's qs[4 k + i] + 128 (stored as unsigned: the kernel's dpbusd takes the weights as the
 * unsigned side, and subtracts 128 times the activation block's sum), then the 16 rows' d. pmm's ds for q8_0: the
 * column's block d, and 128 * the sum of its quants (exact in float). */
struct cck_block_q8_0x16 {
	uint8_t qs[8][16][4];
	cck_f16 d[16];
};
_Static_assert(sizeof(struct cck_block_q8_0x16) == 16 * sizeof(struct cck_block_q8_0), "q8_0x16 layout");
typedef void (*cck__pmm_fn)(size_t nb, const void *W, size_t groups, const void *act, size_t act_stride,
                            const float *ds, size_t cols, float *y, size_t y_stride);
/* The packed kernel of type (type without the flag) for the tier allowed now, or NULL: no packed layout. */
cck__pmm_fn cck__pmm_pick(int type);
#if defined(__x86_64__) || defined(__i386__)
void cck__pmm_q4_1_avx512vnni(size_t nb, const void *W, size_t groups, const void *act, size_t act_stride,
                              const float *ds, size_t cols, float *y, size_t y_stride);
void cck__pmm_q8_0_avx512vnni(size_t nb, const void *W, size_t groups, const void *act, size_t act_stride,
                              const float *ds, size_t cols, float *y, size_t y_stride);
#endif

/* Half / bfloat16 conversions (exact, round-to-nearest-even on the way down), as ggml. */
float cck__f16_to_f32(cck_f16 h);
cck_f16 cck__f32_to_f16(float f);
float cck__bf16_to_f32(cck_bf16 h);
cck_bf16 cck__f32_to_bf16(float f);

#endif /* CCK_QUANT_H */
