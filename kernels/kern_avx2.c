/* SPDX-License-Identifier: MIT */
/* kern_avx2.c: libcck's avx2 tier, the shared kern_simd.inc bodies spelled with simd_avx2.h. */
#include "config.h"
#include "simd_avx2.h"
#include "kern_simd.inc"
