/* SPDX-License-Identifier: MIT */
/* t_models.c: where the test models are (see t_models.h); one implementation for every test program. */
#define _GNU_SOURCE /* PATH_MAX, access() under -std=c11 */
#include "t_models.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int t_readable(const char *path)
{
	return access(path, R_OK) == 0;
}

const char *t_models_dir(void)
{
	static char dir[PATH_MAX];
	const char *env = getenv("CC_MODELS_DIR"), *src = getenv("T_SRCDIR");
	char probe[PATH_MAX + 32];

	if (dir[0])
		return dir;
#ifdef T_TOP_SRCDIR
	/* Run by hand (no `make check` environment): the source tree this program was built from. */
	if (!src || !*src)
		src = T_TOP_SRCDIR;
#endif
	if (env && *env)
		snprintf(dir, sizeof(dir), "%s", env);
	else if (src && *src &&
	         (snprintf(probe, sizeof(probe), "%s/../shared/models/stories260K.gguf", src), t_readable(probe)))
		snprintf(dir, sizeof(dir), "%s/../shared/models", src);
	else
		snprintf(dir, sizeof(dir), "/work/shared/models");
	snprintf(probe, sizeof(probe), "%s/stories260K.gguf", dir);
	if (!t_readable(probe)) {
		fprintf(stderr, "test models not found: no %s (set CC_MODELS_DIR)\n", probe);
		dir[0] = '\0';
		return NULL;
	}
	return dir;
}

const char *t_model(const char *rel, char *buf, size_t size)
{
	const char *dir = t_models_dir();

	if (!dir) {
		/* The callers' skip messages print buf: name the model at least. */
		snprintf(buf, size, "%s", rel);
		return NULL;
	}
	snprintf(buf, size, "%s/%s", dir, rel);
	return t_readable(buf) ? buf : NULL;
}

const char *t_smollm2(char *buf, size_t size)
{
	const char *env = getenv("CC_SMOLLM2"), *home = getenv("HOME");

	if (env && *env)
		snprintf(buf, size, "%s", env);
	else
		snprintf(buf, size, "%s/.cache/cc/models/SmolLM2-135M-Instruct.Q4_1.gguf", home ? home : "/root");
	if (!t_readable(buf)) {
		fprintf(stderr, "SmolLM2 not found at %s (scripts/install-deps fetches it; or set CC_SMOLLM2)\n", buf);
		return NULL;
	}
	return buf;
}
