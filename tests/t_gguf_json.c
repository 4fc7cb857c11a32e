/* SPDX-License-Identifier: MIT */
/* t_gguf_json.c: check helper: `t_gguf_json FILE [MAX_ARRAY]` prints ccm_gguf_json() of FILE's header. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "gguf.h"

int main(int argc, char **argv)
{
	struct ccm_gguf *g;
	char err[512], *json;
	size_t max_array = 64;
	int rc;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s FILE [MAX_ARRAY]\n", argv[0]);
		return 2;
	}
	if (argc == 3)
		max_array = strtoull(argv[2], NULL, 10);
	rc = ccm_gguf_open(argv[1], &g, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "%s: %s\n", argv[1], err);
		return 1;
	}
	json = ccm_gguf_json(g, max_array);
	ccm_gguf_free(g);
	if (!json) {
		fprintf(stderr, "%s: out of memory\n", argv[1]);
		return 1;
	}
	puts(json);
	free(json);
	return 0;
}
