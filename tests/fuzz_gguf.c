/* SPDX-License-Identifier: MIT */
/* fuzz_gguf.c: libFuzzer target for the GGUF parser: whole files, and header prefixes of bigger files. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(struct ccm_gguf *g)
{
	size_t i;
	char *json;

	/* walk everything the parser handed out, so ASan sees any bad pointer or length */
	for (i = 0; i < ccm_gguf_kv_count(g); i++) {
		const struct ccm_kv *kv = ccm_gguf_kv(g, i);
		if (ccm_gguf_find(g, kv->key.s) != kv && strlen(kv->key.s) == kv->key.len)
			abort();
	}
	for (i = 0; i < ccm_gguf_tensor_count(g); i++) {
		const struct ccm_tensor *t = ccm_gguf_tensor(g, i);
		if (t->offset + t->nbytes > ccm_gguf_data_size(g) ||
		    ccm_gguf_data_offset(g) + ccm_gguf_data_size(g) > ccm_gguf_file_size(g))
			abort();
	}
	json = ccm_gguf_json(g, 16);
	free(json);
	json = ccm_gguf_json(g, (size_t)-1);
	free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ccm_gguf *g;
	char err[256];

	if (ccm_gguf_parse(data, size, &g, err, sizeof(err)) == 0) {
		check(g);
		ccm_gguf_free(g);
	} else if (!err[0]) {
		abort(); /* every failure explains itself */
	}
	/* the same bytes as the header of a big file: tensors then lie within it, so more inputs reach the end */
	if (ccm_gguf_parse_prefix(data, size, (uint64_t)1 << 40, &g, err, sizeof(err)) == 0) {
		check(g);
		ccm_gguf_free(g);
	} else if (!err[0]) {
		abort();
	}
	return 0;
}
