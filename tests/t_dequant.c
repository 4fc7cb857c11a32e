/* SPDX-License-Identifier: MIT */
/* t_dequant.c: stdin -> stdout filter over libcck's quantized types, for tests/quant_ref.py. */
/*
 * Usage:
 *   t_dequant TYPE     < blocks > floats   cck_dequantize: raw blocks of TYPE in, little-endian f32 out
 *   t_dequant -q TYPE  < floats > blocks   cck_quantize: f32 in, raw blocks out
 * TYPE is a name as cck_type_lookup takes it ("q4_0", "Q6_K", "f16", ...). Exit status 0, or 1 with a
 * message on stderr (unknown type, input not whole blocks, I/O error).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cck.h"

static unsigned char *slurp(size_t *len)
{
	size_t cap = 1 << 20, n = 0, got;
	unsigned char *buf = malloc(cap), *nb;

	while (buf && (got = fread(buf + n, 1, cap - n, stdin)) > 0) {
		n += got;
		if (n == cap) {
			nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (!buf || ferror(stdin)) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

int main(int argc, char **argv)
{
	int quant = argc == 3 && !strcmp(argv[1], "-q");
	const char *name = argc == 2 ? argv[1] : quant ? argv[2] : NULL;
	size_t len = 0, be, bb, n, outlen;
	unsigned char *in, *out;
	int type, rc;

	if (!name) {
		fprintf(stderr, "usage: t_dequant [-q] TYPE < input > output\n");
		return 1;
	}
	type = cck_type_lookup(name);
	if (type < 0 || cck_type_block(type, &be, &bb)) {
		fprintf(stderr, "t_dequant: unknown type %s\n", name);
		return 1;
	}
	in = slurp(&len);
	if (!in) {
		fprintf(stderr, "t_dequant: cannot read stdin\n");
		return 1;
	}
	/* blocks in (dequantize) or floats in (quantize); either way whole blocks */
	if (quant ? len % (be * sizeof(float)) : len % bb) {
		fprintf(stderr, "t_dequant: %zu bytes is not whole blocks of %s\n", len, name);
		return 1;
	}
	n = quant ? len / sizeof(float) : len / bb * be;
	outlen = quant ? n / be * bb : n * sizeof(float);
	out = malloc(outlen ? outlen : 1);
	if (!out) {
		fprintf(stderr, "t_dequant: out of memory\n");
		return 1;
	}
	rc = quant ? cck_quantize(type, (const float *)in, out, n) : cck_dequantize(type, in, (float *)out, n);
	if (rc) {
		fprintf(stderr, "t_dequant: %s: %s\n", quant ? "cck_quantize" : "cck_dequantize", strerror(-rc));
		return 1;
	}
	if (fwrite(out, 1, outlen, stdout) != outlen || fflush(stdout)) {
		fprintf(stderr, "t_dequant: write error\n");
		return 1;
	}
	free(in);
	free(out);
	return 0;
}
