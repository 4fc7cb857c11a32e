/* SPDX-License-Identifier: MIT */
/* quant_avx512.c: libcck's avx512 quantized kernels: the quant_simd.inc bodies (EVEX-encoded), plain and with VNNI. */
#include "config.h"
#define QS_VNNI 1 /* also the AVX512-VNNI bodies, in functions of their own target */
#include "quant_simd.inc"

/* The avx512 table; V: the suffix of its q4_0, q4_1 and q4_K dot entries and its batched ones (empty, or _vnni). */
#define QS_AVX512_TABLE(V)                                                                                             \
	{                                                                                                              \
		.quant =                                                                                               \
		    {                                                                                                  \
		        [CCK_TYPE_Q8_0] = qs_quant_q8_0,                                                               \
		        [CCK_TYPE_Q8_1] = qs_quant_q8_1,                                                               \
		        [CCK_TYPE_Q8_K] = qs_quant_q8_k,                                                               \
		    },                                                                                                 \
		.act_quant =                                                                                           \
		    {                                                                                                  \
		        [CCK_TYPE_Q8_0] = qs_act_quant_q8_0,                                                           \
		        [CCK_TYPE_Q8_1] = qs_act_quant_q8_1,                                                           \
		    },                                                                                                 \
		.vdot =                                                                                                \
		    {                                                                                                  \
		        [CCK_TYPE_F16] = qs_vdot_f16,      [CCK_TYPE_BF16] = qs_vdot_bf16,                             \
		        [CCK_TYPE_Q4_0] = qs_vdot_q4_0##V, [CCK_TYPE_Q4_1] = qs_vdot_q4_1##V,                          \
		        [CCK_TYPE_Q5_0] = qs_vdot_q5_0,    [CCK_TYPE_Q5_1] = qs_vdot_q5_1,                             \
		        [CCK_TYPE_Q8_0] = qs_vdot_q8_0,    [CCK_TYPE_Q4_K] = qs_vdot_q4_k##V,                          \
		        [CCK_TYPE_Q5_K] = qs_vdot_q5_k,    [CCK_TYPE_Q6_K] = qs_vdot_q6_k,                             \
		    },                                                                                                 \
		.vdot4 =                                                                                               \
		    {                                                                                                  \
		        [CCK_TYPE_Q4_0] = qs_vdot4_q4_0##V,                                                            \
		        [CCK_TYPE_Q4_1] = qs_vdot4_q4_1##V,                                                            \
		        [CCK_TYPE_Q5_0] = qs_vdot4_q5_0,                                                               \
		        [CCK_TYPE_Q5_1] = qs_vdot4_q5_1,                                                               \
		    },                                                                                                 \
		.mprep =                                                                                               \
		    {                                                                                                  \
		        [CCK_TYPE_Q4_0] = qs_mprep_q4_0##V, [CCK_TYPE_Q4_1] = qs_mprep_q4_1##V,                        \
		        [CCK_TYPE_Q5_0] = qs_mprep_q5_0##V, [CCK_TYPE_Q5_1] = qs_mprep_q5_1##V,                        \
		        [CCK_TYPE_Q8_0] = qs_mprep_q8_0##V,                                                            \
		    },                                                                                                 \
		.vdotm = {                                                                                             \
		    [CCK_TYPE_Q4_0] = qs_vdotm_q4_0##V, [CCK_TYPE_Q4_1] = qs_vdotm_q4_1##V,                            \
		    [CCK_TYPE_Q5_0] = qs_vdotm_q5_0##V, [CCK_TYPE_Q5_1] = qs_vdotm_q5_1##V,                            \
		    [CCK_TYPE_Q8_0] = qs_vdotm_q8_0##V,                                                                \
		},                                                                                                     \
	}

const struct cck__qops cck__qops_avx512 = QS_AVX512_TABLE();

/* Chosen by quant.c for the avx512 tier when the CPU has AVX512-VNNI (cck__cpu_has_avx512vnni()). */
const struct cck__qops cck__qops_avx512vnni = QS_AVX512_TABLE(_vnni);
