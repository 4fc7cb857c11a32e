/* SPDX-License-Identifier: MIT */
/* cck.h: public API of libcck, Compute Core's SIMD compute kernels (f32). */
#ifndef CCK_H
#define CCK_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CCK_BUILDING) && defined(__GNUC__)
#define CCK_EXPORT __attribute__((visibility("default")))
#else
#define CCK_EXPORT
#endif

/*
 * Op ids. Values are part of the ABI: never reuse or renumber, only append
 * before CCK_OP_COUNT. cck_op_lookup() maps a name to one of these.
 */
enum cck_op {
	/* unary element-wise */
	CCK_OP_NEG = 0,
	CCK_OP_ABS,
	CCK_OP_SQUARE,
	CCK_OP_SQRT,
	CCK_OP_RSQRT,
	CCK_OP_RECIP,
	CCK_OP_EXP,
	CCK_OP_LN,
	CCK_OP_LOG2,
	CCK_OP_LOG10,
	CCK_OP_SIN,
	CCK_OP_COS,
	CCK_OP_TANH,
	CCK_OP_SIGMOID,
	CCK_OP_RELU,
	CCK_OP_LEAKY_RELU, /* params[0] = alpha */
	CCK_OP_ELU,        /* params[0] = alpha */
	CCK_OP_SELU,
	CCK_OP_GELU, /* tanh approximation */
	CCK_OP_GELU_ERF,
	CCK_OP_SILU, /* alias "swish" */
	CCK_OP_MISH,
	CCK_OP_HARDSWISH,
	CCK_OP_SOFTPLUS,
	CCK_OP_FLOOR,
	CCK_OP_CEIL,
	CCK_OP_ROUND, /* half away from zero, as C's roundf */
	CCK_OP_TRUNC,
	CCK_OP_SCALE,      /* params[0] = alpha: y = alpha * x */
	CCK_OP_ADD_SCALAR, /* params[0] = alpha: y = x + alpha */
	CCK_OP_CLAMP,      /* params[0] = lo, params[1] = hi */
	/* unary whole-vector (the result depends on every element) */
	CCK_OP_SOFTMAX,
	CCK_OP_LOG_SOFTMAX,
	CCK_OP_NORMALIZE, /* x / ||x||_2 */
	CCK_OP_ZSCORE,    /* (x - mean) / stddev (population) */
	CCK_OP_MINMAX_NORMALIZE,
	CCK_OP_LAYER_NORM, /* params[0] = eps */
	CCK_OP_RMS_NORM,   /* params[0] = eps */
	CCK_OP_CUMSUM,
	/* binary element-wise */
	CCK_OP_ADD,
	CCK_OP_SUB,
	CCK_OP_MUL,
	CCK_OP_DIV,
	CCK_OP_MINIMUM,
	CCK_OP_MAXIMUM,
	/* reductions of one vector */
	CCK_OP_SUM,
	CCK_OP_MEAN,
	CCK_OP_MIN,
	CCK_OP_MAX,
	CCK_OP_ARGMIN,
	CCK_OP_ARGMAX,
	CCK_OP_SUM_OF_SQUARES,
	CCK_OP_NORM_L1,
	CCK_OP_NORM_L2,
	CCK_OP_NORM_LINF,
	CCK_OP_VARIANCE, /* population */
	CCK_OP_STDDEV,   /* population */
	/* reductions of two vectors */
	CCK_OP_DOT,
	CCK_OP_COVARIANCE, /* population */
	CCK_OP_CORRELATION,
	CCK_OP_DIST_L2,
	/* matrix */
	CCK_OP_MATVEC,
	CCK_OP_MATMUL,
	CCK_OP_COUNT
};

/* What an op takes; cck_op_kind() returns one of these. */
enum cck_kind {
	CCK_KIND_UNARY = 0, /* cck_unary_f32, element-wise */
	CCK_KIND_VECTOR,    /* cck_unary_f32, whole-vector */
	CCK_KIND_BINARY,    /* cck_binary_f32 */
	CCK_KIND_REDUCE,    /* cck_reduce_f32 */
	CCK_KIND_REDUCE2,   /* cck_reduce2_f32 */
	CCK_KIND_MATRIX,    /* cck_matvec_f32 / cck_matmul_f32 */
	CCK_KIND_COUNT
};

/* SIMD tiers, lowest first. */
enum cck_tier_id {
	CCK_TIER_SCALAR = 0,
	CCK_TIER_SSE2,
	CCK_TIER_AVX2,   /* AVX2 + FMA */
	CCK_TIER_AVX512, /* AVX-512 F/DQ/BW/VL */
	CCK_TIER_COUNT
};

/* Op id for a name (e.g. "sigmoid", "swish"), or -ENOENT; -EINVAL for NULL. */
CCK_EXPORT int cck_op_lookup(const char *name);
/* Canonical name of an op, or NULL if op is out of range. */
CCK_EXPORT const char *cck_op_name(int op);
/* enum cck_kind of an op, or -EINVAL. */
CCK_EXPORT int cck_op_kind(int op);
/* Number of float parameters an op reads from params (0, 1 or 2), or -EINVAL. */
CCK_EXPORT int cck_op_nparams(int op);

/* Name of the highest tier in use: "scalar", "sse2", "avx2" or "avx512"
 * (the forced tier, or the host's in "auto" mode). */
CCK_EXPORT const char *cck_tier(void);
/* Name of the highest tier the host supports (ignores forcing). */
CCK_EXPORT const char *cck_host_tier(void);
/* Name of a tier id, or NULL. */
CCK_EXPORT const char *cck_tier_name(int tier);
/* Tier an op actually runs on now (ops may prefer a lower tier when it is
 * faster on this host), as a tier id; -EINVAL for a bad op. */
CCK_EXPORT int cck_op_tier(int op);
/*
 * Run every op on exactly the tier name ("scalar".."avx512"), lower than or
 * equal to the host's; "auto" (the default) goes back to letting each op
 * pick the fastest tier the host has (see cck_op_tier). Returns 0, -ENOTSUP
 * if the host lacks that tier, -EINVAL for an unknown name. The environment
 * variable CCK_TIER does the same at load time. Safe to call while other
 * threads run ops: each op reads the setting once.
 */
CCK_EXPORT int cck_force_tier(const char *name);
/*
 * Threads for large ops: n >= 1, or 0 for every online CPU. Returns the count
 * now in use, or -EINVAL for n < 0. The pool is persistent and shared.
 */
CCK_EXPORT int cck_set_threads(int n);
/* Threads currently in use (>= 1) by ops called from this thread. */
CCK_EXPORT int cck_get_threads(void);
/*
 * Cap the threads of ops called from the calling thread at n (0: no cap,
 * the global cck_set_threads count). Returns the previous cap, or -EINVAL.
 * A server can keep many small jobs single-threaded on their own threads
 * while one thread runs big ones over the whole pool.
 */
CCK_EXPORT int cck_set_local_threads(int n);
/*
 * Run fn(arg, part, nparts) for every part in [0, nparts) on the persistent
 * pool and return when all are done. nparts is clamped to the threads in use
 * (cck_get_threads: the cap of cck_set_local_threads holds); the calling thread
 * runs parts itself. Parts with different indices may run at once, each index
 * runs exactly once, so scratch indexed by part is safe; fn must never wait for
 * another part of the same call (parts may share a thread). Returns the nparts
 * fn was given (>= 1), or -EINVAL (nparts < 1, fn NULL).
 */
CCK_EXPORT int cck_parallel(int nparts, void (*fn)(void *arg, int part, int nparts), void *arg);

/*
 * The kernels. All return 0 or -errno: -EINVAL for a NULL pointer with n > 0,
 * an op of the wrong kind, a NaN parameter or missing params where the op
 * needs them, or a size that overflows. n == 0 is a no-op (reductions: see
 * cck_reduce_f32). y == x (and y == a or b) is allowed for element-wise ops.
 * Thread-safe: several threads may call them at once.
 */
CCK_EXPORT int cck_unary_f32(int op, const float *x, float *y, size_t n, const float *params);
CCK_EXPORT int cck_binary_f32(int op, const float *a, const float *b, float *y, size_t n);
/* Reductions return their result in *ret (untouched on error). With n == 0:
 * sum, sum_of_squares and the norms give 0; mean, variance, stddev give NaN;
 * min, max, argmin and argmax return -EINVAL. argmin/argmax give the index of
 * the first extreme (the first NaN, if any), as a double. */
CCK_EXPORT int cck_reduce_f32(int op, const float *x, size_t n, double *ret);
CCK_EXPORT int cck_reduce2_f32(int op, const float *a, const float *b, size_t n, double *ret);
/* y[rows] = A[rows x cols] * x[cols], row-major. */
CCK_EXPORT int cck_matvec_f32(const float *A, const float *x, float *y, size_t rows, size_t cols);
/* C[m x n] = A[m x k] * B[k x n], row-major. C must not overlap A or B. */
CCK_EXPORT int cck_matmul_f32(const float *A, const float *B, float *C, size_t m, size_t k, size_t n);

/*
 * Quantized tensors (GGUF / ggml block layouts). Type ids equal GGUF's
 * ggml_type ids; values are ABI. A "row" is n elements, n a multiple of the
 * type's block size, stored as n / block_elems blocks back to back.
 */
enum cck_type {
	CCK_TYPE_F32 = 0,
	CCK_TYPE_F16 = 1,
	CCK_TYPE_Q4_0 = 2,
	CCK_TYPE_Q4_1 = 3,
	CCK_TYPE_Q5_0 = 6,
	CCK_TYPE_Q5_1 = 7,
	CCK_TYPE_Q8_0 = 8,
	CCK_TYPE_Q8_1 = 9,
	CCK_TYPE_Q2_K = 10,
	CCK_TYPE_Q3_K = 11,
	CCK_TYPE_Q4_K = 12,
	CCK_TYPE_Q5_K = 13,
	CCK_TYPE_Q6_K = 14,
	CCK_TYPE_Q8_K = 15,
	CCK_TYPE_BF16 = 30,
	CCK_TYPE_COUNT = 40 /* bound for tables indexed by type id, not a type */
};

/* Lower-case name ("q4_k", "f16", ...) of a supported type id, or NULL. */
CCK_EXPORT const char *cck_type_name(int type);
/* Type id for a name (case-insensitive), or -ENOENT; -EINVAL for NULL. */
CCK_EXPORT int cck_type_lookup(const char *name);
/* Elements and bytes per block (1 and 4 for f32). 0, or -EINVAL for an
 * unknown or unsupported type id. */
CCK_EXPORT int cck_type_block(int type, size_t *block_elems, size_t *block_bytes);
/* Bytes of a row of n elements into *bytes. -EINVAL if the type is unknown
 * or n is not a multiple of its block size, -EOVERFLOW on overflow. */
CCK_EXPORT int cck_type_row_bytes(int type, size_t n, size_t *bytes);
/* True (1) if type can be the weight of cck_qdot/qmatvec/qmatmul, else 0. */
CCK_EXPORT int cck_type_has_dot(int type);

/* dst[n] = the n elements of the row src, as ggml's reference dequantization
 * gives them (bit for bit). */
CCK_EXPORT int cck_dequantize(int type, const void *src, float *dst, size_t n);
/* Quantize n floats into a row of type (ggml's reference rounding). Every
 * type with a dot product can be produced; -ENOTSUP for the others. */
CCK_EXPORT int cck_quantize(int type, const float *src, void *dst, size_t n);
/*
 * *ret = dot(row w of type, x[n]). Like ggml, x is first quantized to the
 * type's activation format (q8_0, q8_1 or q8_k; f16 / bf16 for those
 * types; f32 stays f32), then integer dot products are summed. q8_0 and
 * q8_1 are made as ggml's x86 code makes them (round half to even), not as
 * cck_quantize does; q4_0, q4_1, q5_0, q5_1 and q8_0 rows are summed in
 * ggml's x86 (AVX2) order, with the same result on every tier: llama.cpp's
 * values on x86, bit for bit.
 */
CCK_EXPORT int cck_qdot(int type, const void *w, const float *x, size_t n, float *ret);
/*
 * y[r] = dot(row r of W, x) for r in [0, rows); W is rows x cols of type,
 * row r at (const char *)W + r * row_stride (row_stride 0 = packed rows).
 * Threaded over rows; x is quantized once.
 */
CCK_EXPORT int cck_qmatvec(int type, const void *W, size_t row_stride, const float *x, float *y, size_t rows,
                           size_t cols);
/*
 * Y[b][r] = dot(row r of W, X[b]) for b < batch, r < rows: X is batch x cols
 * f32 (row-major), Y is batch x rows. Each weight row is read once for the
 * whole batch. Y must not overlap X or W.
 */
CCK_EXPORT int cck_qmatmul(int type, const void *W, size_t row_stride, const float *X, float *Y, size_t rows,
                           size_t cols, size_t batch);
/* One weight matrix of cck_qmatmul_n: rows x (the call's cols) of type, row r at (const char *)W + r * row_stride
 * (0: packed), and its output Y (batch x rows). */
struct cck_qmat {
	int type;
	const void *W;
	size_t row_stride, rows;
	float *Y;
};
#define CCK_QMAT_MAX 8
/*
 * Several matrices of one type and the same cols times the same activations
 * (a layer's Q, K and V; its gate and up): m[i].Y = what cck_qmatmul(m[i].type,
 * m[i].W, m[i].row_stride, X, m[i].Y, m[i].rows, cols, batch) gives, bit for
 * bit, with X quantized once and the rows of all of them shared out among the
 * threads as one job. 1 <= n <= CCK_QMAT_MAX, every m[i].type the same, else
 * -EINVAL; the other errors as cck_qmatmul's.
 */
CCK_EXPORT int cck_qmatmul_n(const struct cck_qmat *m, size_t n, const float *X, size_t cols, size_t batch);

/*
 * Packed matrices. cck_qpack re-lays a weight matrix out in place in groups of 16 rows: for each block column, the
 * 16 rows' blocks side by side (their quants interleaved 4 bytes a row, then their scales), so that one vector lane
 * holds one row and a block's integer sums come out per row with no horizontal adds. The matrix keeps its size
 * (rows x the row bytes). type | CCK_TYPE_PACK16 names such a matrix in cck_qmatvec, cck_qmatmul and cck_qmatmul_n
 * (rows a multiple of 16, row_stride 0 or the row bytes); no other call takes it.
 * A packed matrix's rows are summed in an order of their own (per row, for each block in turn,
 * acc = fma(isum, d_w * d_x, acc), for q4_1 then acc = fma(m_w, s_x, acc), starting from 0): the same bits on every tier,
 * for every batch size and thread count, but not ggml's order, so not the row-major matrix's results bit for bit
 * (they agree to float rounding).
 */
#define CCK_TYPE_PACK16 0x100
#define CCK_PACK_ROWS 16 /* rows of a packed group: a packed matrix has a multiple of them */
/* 1 if type has a packed layout (q4_1, q8_0) and this host (at the tier allowed now) has a kernel for it faster than
 * the row-major one (AVX512-VNNI); else 0. Packing is the caller's choice: it about doubles batched throughput, but
 * the packed order moves a sensitive model's logits off llama.cpp's bits (SmolLM2-135M's by up to about 0.4, as
 * llama.cpp's own batched and token-by-token sums differ from each other). */
CCK_EXPORT int cck_qpack_supported(int type);
/* Packs the rows x cols matrix W (row-major, rows back to back) of type in place. 0; -EINVAL (rows not a multiple
 * of 16, cols not whole blocks, NULL), -ENOTSUP (no packed layout for type, whatever the host), -ENOMEM. */
CCK_EXPORT int cck_qpack(int type, void *W, size_t rows, size_t cols);
/* Row r of the packed P (rows x cols of type) as its type's row (cols / block elements blocks) into row. */
CCK_EXPORT int cck_qpacked_row(int type, const void *P, size_t rows, size_t cols, size_t r, void *row);
/* The row-major matrix of packed P into W (rows back to back; W must not overlap P). Errors as cck_qpack. */
CCK_EXPORT int cck_qunpack(int type, const void *P, void *W, size_t rows, size_t cols);

#ifdef __cplusplus
}
#endif
#endif /* CCK_H */
