/* SPDX-License-Identifier: MIT */
/* kern_sse2.c: libcck's sse2 tier, the shared kern_simd.inc bodies spelled with simd_sse2.h. */
#include "config.h"
#include "simd_sse2.h"
#include "kern_simd.inc"
