/* SPDX-License-Identifier: MIT */
/* common.cl: what every kernel file of libccgpu shares; the program is common.cl, f32.cl, quant.cl, in order. */
#ifdef CCG_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

/* IEEE half (its bits) to float, exactly, subnormals included: no vload_half, so any byte offset works. */
static inline float ccg_half_to_float(ushort h)
{
	uint sign = (uint)(h & 0x8000u) << 16;
	uint exp = (h >> 10) & 0x1fu;
	uint man = h & 0x3ffu;

	if (exp == 0x1fu) /* inf, NaN */
		return as_float(sign | 0x7f800000u | (man << 13));
	if (exp == 0) /* zero, subnormal: man * 2^-24 is exact in float */
		return as_float(sign) + (sign ? -1.0f : 1.0f) * (float)man * 0x1p-24f;
	return as_float(sign | ((exp + 112u) << 23) | (man << 13));
}
