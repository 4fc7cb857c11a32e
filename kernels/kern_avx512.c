/* SPDX-License-Identifier: MIT */
/* kern_avx512.c: libcck's avx512 tier, the shared kern_simd.inc bodies spelled with simd_avx512.h. */
#include "config.h"
#include "simd_avx512.h"
#include "kern_simd.inc"
