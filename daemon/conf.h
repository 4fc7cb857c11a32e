/* SPDX-License-Identifier: MIT */
/* conf.h: ccd's one table of limits and tunables (name, type, min, max, default, help), set by file and -o. */
#ifndef CCD_CONF_H
#define CCD_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Every setting; the table in conf.c is indexed by these. */
enum ccd_conf_key {
	CCD_CONF_MAX_MESSAGE_BYTES = 0,
	CCD_CONF_MAX_CLIENTS,
	CCD_CONF_MAX_REGIONS_PER_CLIENT,
	CCD_CONF_MAX_BYTES_PER_CLIENT,
	CCD_CONF_MAX_INFLIGHT_PER_CLIENT,
	CCD_CONF_THREADS,
	CCD_CONF_INLINE_MAX_ELEMENTS,
	CCD_CONF_INLINE_MAX_MATMUL,
	CCD_CONF_SPLIT_MIN_ELEMENTS,
	CCD_CONF_SPLIT_MIN_MATMUL,
	CCD_CONF_REAP_INTERVAL_MS,
	CCD_CONF_MAX_MODELS,
	CCD_CONF_ENGINE_THREADS,
	CCD_CONF_MAX_CTX,
	CCD_CONF_MAX_GEN_TOKENS,
	CCD_CONF_MAX_SESSIONS_PER_CLIENT,
	CCD_CONF_KV_BUDGET,
	CCD_CONF_SESSION_CTX,
	CCD_CONF_SESSION_IDLE_S,
	CCD_CONF_BATCH_TOKENS,
	CCD_CONF_OPENCL_DEVICE, /* text: ccd_conf_str() */
	CCD_CONF_BACKEND,       /* a choice: ccd_conf_str(), NULL when not set */
	CCD_CONF_GPU_LAYERS,    /* CCD_CONF_ALL for -1 ("all") */
	CCD_CONF_PACK_WEIGHTS,  /* a choice: 0 off, 1 on */
	CCD_CONF_SHARE_PREFIXES, /* a choice: 0 off, 1 on */
	CCD_CONF_COUNT
};

/* The value of a count setting that also takes -1 or "all" (gpu_layers): every one. */
#define CCD_CONF_ALL UINT64_MAX
/* The value of a choice setting nobody set (its library keeps its own default). */
#define CCD_CONF_UNSET UINT64_MAX
/* Longest text of a text setting, terminator included. */
#define CCD_CONF_STR_MAX 128

/* Text settings, each in its own slot of struct ccd_conf's s[] (the table in conf.c maps keys to slots). */
enum ccd_conf_slot { CCD_CONF_SLOT_OPENCL_DEVICE = 0, CCD_CONF_SLOT_COUNT };

/* Values of every setting, indexed by enum ccd_conf_key (text settings keep their text in s[]). */
struct ccd_conf {
	uint64_t v[CCD_CONF_COUNT];
	char s[CCD_CONF_SLOT_COUNT][CCD_CONF_STR_MAX];
};

/* Fill every setting with its default. */
void ccd_conf_defaults(struct ccd_conf *conf);

/* Name of a setting ("max_clients"), or NULL for a bad key. */
const char *ccd_conf_name(int key);

/* The text of a text setting, or the name of a choice setting's value (NULL for a choice nobody set, or a key that
 * is neither). */
const char *ccd_conf_str(const struct ccd_conf *conf, int key);

/*
 * Set name to value (decimal; byte sizes take a K/M/G/T suffix, powers of
 * 1024; a choice one of its names; a text any printable text). Returns 0,
 * -ENOENT for an unknown name, -EINVAL for a value that is not a number (not
 * one of the choices, an empty or too long text), -ERANGE outside [min, max];
 * on error err holds a one-line reason naming the key (and min and max, or
 * the choices). conf is untouched on error.
 */
int ccd_conf_set(struct ccd_conf *conf, const char *name, const char *value, char *err, size_t errsize);

/* ccd_conf_set() for a "name=value" string (the -o option). */
int ccd_conf_set_option(struct ccd_conf *conf, const char *arg, char *err, size_t errsize);

/*
 * Read "name = value" lines from path ('#' starts a comment, blank lines
 * are skipped) into conf. Same returns as ccd_conf_set (-errno if the file
 * cannot be read); err names the file and line.
 */
int ccd_conf_load(struct ccd_conf *conf, const char *path, char *err, size_t errsize);

/* Describe every setting (for --help). */
void ccd_conf_print_help(FILE *f);

/* Log every value at debug level. */
void ccd_conf_log(const struct ccd_conf *conf);

#endif /* CCD_CONF_H */
