/* SPDX-License-Identifier: MIT */
/* quant_avx2.c: libcck's avx2 quantized kernels, the shared quant_simd.inc bodies at 256 bits. */
#include "config.h"
#include "quant_simd.inc"

const struct cck__qops cck__qops_avx2 = {
    .quant =
        {
            [CCK_TYPE_Q8_0] = qs_quant_q8_0,
            [CCK_TYPE_Q8_1] = qs_quant_q8_1,
            [CCK_TYPE_Q8_K] = qs_quant_q8_k,
        },
    .act_quant =
        {
            [CCK_TYPE_Q8_0] = qs_act_quant_q8_0,
            [CCK_TYPE_Q8_1] = qs_act_quant_q8_1,
        },
    .vdot =
        {
            [CCK_TYPE_F16] = qs_vdot_f16,
            [CCK_TYPE_BF16] = qs_vdot_bf16,
            [CCK_TYPE_Q4_0] = qs_vdot_q4_0,
            [CCK_TYPE_Q4_1] = qs_vdot_q4_1,
            [CCK_TYPE_Q5_0] = qs_vdot_q5_0,
            [CCK_TYPE_Q5_1] = qs_vdot_q5_1,
            [CCK_TYPE_Q8_0] = qs_vdot_q8_0,
            [CCK_TYPE_Q4_K] = qs_vdot_q4_k,
            [CCK_TYPE_Q5_K] = qs_vdot_q5_k,
            [CCK_TYPE_Q6_K] = qs_vdot_q6_k,
        },
    .vdot4 =
        {
            [CCK_TYPE_Q4_0] = qs_vdot4_q4_0,
            [CCK_TYPE_Q4_1] = qs_vdot4_q4_1,
            [CCK_TYPE_Q5_0] = qs_vdot4_q5_0,
            [CCK_TYPE_Q5_1] = qs_vdot4_q5_1,
        },
    .mprep =
        {
            [CCK_TYPE_Q4_0] = qs_mprep_q4_0,
            [CCK_TYPE_Q4_1] = qs_mprep_q4_1,
            [CCK_TYPE_Q5_0] = qs_mprep_q5_0,
            [CCK_TYPE_Q5_1] = qs_mprep_q5_1,
            [CCK_TYPE_Q8_0] = qs_mprep_q8_0,
        },
    .vdotm =
        {
            [CCK_TYPE_Q4_0] = qs_vdotm_q4_0,
            [CCK_TYPE_Q4_1] = qs_vdotm_q4_1,
            [CCK_TYPE_Q5_0] = qs_vdotm_q5_0,
            [CCK_TYPE_Q5_1] = qs_vdotm_q5_1,
            [CCK_TYPE_Q8_0] = qs_vdotm_q8_0,
        },
};
