/* SPDX-License-Identifier: MIT */
/* t_json.h: a tiny, strict JSON reader for the tests (the reference files of tests/ref/). */
#ifndef T_JSON_H
#define T_JSON_H

#include <stddef.h>
#include <stdint.h>

enum t_json_type { T_JSON_NULL, T_JSON_BOOL, T_JSON_NUM, T_JSON_STR, T_JSON_ARR, T_JSON_OBJ };

/* One value. Arrays and objects hold their n items in items[]; an object's items carry their member name in key. */
struct t_json {
	enum t_json_type type;
	int b;      /* T_JSON_BOOL */
	double num; /* T_JSON_NUM (strtod of the literal) */
	int64_t i;  /* T_JSON_NUM: the exact value when is_int */
	int is_int; /* T_JSON_NUM written as an integer that fits int64_t */
	char *str;  /* T_JSON_STR: UTF-8, NUL-terminated (may hold NULs from \u0000: use len); lone surrogates
	             * \uD800..\uDFFF are kept as their 3-byte (WTF-8) form */
	size_t len; /* T_JSON_STR: bytes */
	char *key;  /* the member name of an object's item, NULL elsewhere */
	size_t keylen;
	size_t n; /* T_JSON_ARR, T_JSON_OBJ */
	struct t_json *items;
};

/* Parse len bytes (one value, surrounding whitespace allowed). NULL on error, with a message (and the byte offset)
 * in err. Nesting is limited to 64 levels. */
struct t_json *t_json_parse(const char *text, size_t len, char *err, size_t errlen);
/* Read and parse a file. NULL on error (err says why; errno is ENOENT when the file does not exist). */
struct t_json *t_json_load(const char *path, char *err, size_t errlen);
void t_json_free(struct t_json *j);

/* An object's member (the first of that name), or NULL (also when o is not an object). */
const struct t_json *t_json_get(const struct t_json *o, const char *key);
/* An array's (or object's) i-th item, or NULL. */
const struct t_json *t_json_at(const struct t_json *a, size_t i);
/* Items of an array or object; 0 for anything else (or NULL). */
size_t t_json_len(const struct t_json *a);
/* The member key as a string (NULL if absent or not a string). */
const char *t_json_str(const struct t_json *o, const char *key);

#endif
