/* SPDX-License-Identifier: MIT */
/*
 * t_models.h: where the test models are, for the in-process tests (test_engine, test_engine_gpu, test_gpu_quant) and
 * the integration tests (through t_ccd.h). No ZeroMQ or cmocka here, so any test program can link it.
 */
#ifndef T_MODELS_H
#define T_MODELS_H

#include <stddef.h>

/*
 * The vendored test models' directory: $CC_MODELS_DIR, else $T_SRCDIR/../shared/models (T_SRCDIR: set by `make
 * check`; when it is not in the environment, the T_TOP_SRCDIR this file was compiled with, so a test run by hand
 * finds them too), else /work/shared/models; NULL (after printing where it looked) when none holds stories260K.gguf.
 */
const char *t_models_dir(void);
/*
 * path of a vendored model (e.g. "stories260K.gguf", "derived/stories260K-Q4_0.gguf") into buf, or NULL. buf holds
 * the path looked at (just rel when there is no models directory) even then, for a skip message.
 */
const char *t_model(const char *rel, char *buf, size_t size);
/* SmolLM2-135M-Instruct Q4_1: $CC_SMOLLM2, else ~/.cache/cc/models/...; NULL (printed) if absent, buf the path. */
const char *t_smollm2(char *buf, size_t size);

#endif /* T_MODELS_H */
