/* SPDX-License-Identifier: MIT */
/* gguf.h: a strict, bounded parser of GGUF (v2/v3) model file headers: metadata and tensor infos. */
#ifndef CCM_GGUF_H
#define CCM_GGUF_H

#include <stddef.h>
#include <stdint.h>

#define CCM_GGUF_DEFAULT_ALIGNMENT 32

/* A parsed file. It owns all its strings and arrays; everything it hands out lives until ccm_gguf_free(). */
struct ccm_gguf;

/* GGUF's metadata value type ids (the numbers are the file format's). */
enum ccm_vtype {
	CCM_U8 = 0,
	CCM_I8,
	CCM_U16,
	CCM_I16,
	CCM_U32,
	CCM_I32,
	CCM_F32,
	CCM_BOOL,
	CCM_STRING,
	CCM_ARRAY,
	CCM_U64,
	CCM_I64,
	CCM_F64
};
#define CCM_VTYPE_COUNT 13

/* s is NUL-terminated too (len excludes the NUL); it may hold NUL bytes. */
struct ccm_str {
	const char *s;
	size_t len;
};

struct ccm_kv {
	struct ccm_str key;
	enum ccm_vtype type;
	union {
		uint64_t u; /* CCM_U8, U16, U32, U64 */
		int64_t i;  /* CCM_I8, I16, I32, I64 */
		double f;   /* CCM_F32, F64 */
		int b;      /* CCM_BOOL: 0 or 1 */
		struct ccm_str str;
		/* CCM_ARRAY: n elements of type (never CCM_ARRAY) in data, as the native C type: uint8_t .. double,
		 * int8_t (0 or 1) for bool, struct ccm_str for strings. data is suitably aligned; NULL when n is 0. */
		struct {
			enum ccm_vtype type;
			uint64_t n;
			const void *data;
		} arr;
	} v;
};

struct ccm_tensor {
	struct ccm_str name;
	uint32_t n_dims; /* 1..4 */
	uint64_t ne[4];  /* elements per dimension, ne[0] the fastest; 1 past n_dims */
	int type;        /* enum cck_type (GGUF's ggml_type id) */
	uint64_t offset; /* from the data section start, a multiple of the alignment */
	uint64_t nbytes;
	uint64_t info_offset; /* file offset of this tensor's info in the header (for messages) */
};

/* Open and parse a file's header (pread in growing chunks; never maps or reads the tensor data). All return 0 or
 * -errno: -EBADMSG for a malformed file, -EINVAL for bad arguments or a non-regular file, -ENOMEM, -EIO, or
 * open()'s error. On failure, err (if not NULL) gets one line naming the problem, the field and the file offset. */
int ccm_gguf_open(const char *path, struct ccm_gguf **ret, char *err, size_t errlen);
/* Same from an open file descriptor, which it does not close. */
int ccm_gguf_open_fd(int fd, struct ccm_gguf **ret, char *err, size_t errlen);
/* A whole file in memory (buf need not stay valid after the call). */
int ccm_gguf_parse(const void *buf, size_t len, struct ccm_gguf **ret, char *err, size_t errlen);
/* The first len bytes of a file of file_size bytes (len <= file_size): the header must lie within them; the
 * tensors are checked against file_size. */
int ccm_gguf_parse_prefix(const void *buf, size_t len, uint64_t file_size, struct ccm_gguf **ret, char *err,
                          size_t errlen);
void ccm_gguf_free(struct ccm_gguf *g);

uint32_t ccm_gguf_version(const struct ccm_gguf *g);
uint64_t ccm_gguf_alignment(const struct ccm_gguf *g);
/* Absolute file offset of the data section (the header's end rounded up to the alignment). */
uint64_t ccm_gguf_data_offset(const struct ccm_gguf *g);
/* Bytes from the data offset to the end of the last tensor. */
uint64_t ccm_gguf_data_size(const struct ccm_gguf *g);
uint64_t ccm_gguf_file_size(const struct ccm_gguf *g);
/* Bytes of the header proper (magic to the last tensor info), before the alignment padding. */
uint64_t ccm_gguf_header_size(const struct ccm_gguf *g);

/* Key/value pairs and tensors in file order; NULL for an index out of range or a key/name not present. */
size_t ccm_gguf_kv_count(const struct ccm_gguf *g);
const struct ccm_kv *ccm_gguf_kv(const struct ccm_gguf *g, size_t i);
const struct ccm_kv *ccm_gguf_find(const struct ccm_gguf *g, const char *key);
size_t ccm_gguf_tensor_count(const struct ccm_gguf *g);
const struct ccm_tensor *ccm_gguf_tensor(const struct ccm_gguf *g, size_t i);
const struct ccm_tensor *ccm_gguf_find_tensor(const struct ccm_gguf *g, const char *name);

/* Typed getters: 0, -ENOENT if the key is missing, -EINVAL if its type does not fit, -ERANGE if the value does not.
 * get_u64: any integer type with a value >= 0 (bool is not an integer). get_i64: any integer type <= INT64_MAX.
 * get_f64: any integer or float type. get_str: strings. get_bool: bools (*ret 0 or 1). */
int ccm_gguf_get_u64(const struct ccm_gguf *g, const char *key, uint64_t *ret);
int ccm_gguf_get_i64(const struct ccm_gguf *g, const char *key, int64_t *ret);
int ccm_gguf_get_f64(const struct ccm_gguf *g, const char *key, double *ret);
int ccm_gguf_get_str(const struct ccm_gguf *g, const char *key, struct ccm_str *ret);
int ccm_gguf_get_bool(const struct ccm_gguf *g, const char *key, int *ret);
/* An array of elements of type elem: 0 with *ret pointing at the kv, -ENOENT, or -EINVAL (not such an array). */
int ccm_gguf_get_array(const struct ccm_gguf *g, const char *key, enum ccm_vtype elem, const struct ccm_kv **ret);

/* Name of a value type ("u8", "i32", "f32", "bool", "string", "array", ...), or NULL for an unknown id. */
const char *ccm_vtype_name(enum ccm_vtype t);

/* The whole header as one JSON object (malloc'd, NUL-terminated; NULL on ENOMEM):
 * {"version":3,"alignment":32,"data_offset":N,"data_size":N,"file_size":N,"kv_count":N,"tensor_count":N,
 *  "metadata":{"key":value,...},"tensor_types":{"q4_1":210,...},"tensors":[{"name":..,"type":"q4_1",
 *  "shape":[576,49152],"offset":N,"bytes":N},...]}
 * Metadata in file order; integers exact, f32 as %.9g and f64 as %.17g (NaN/Inf as null), strings escaped (invalid
 * UTF-8 replaced by U+FFFD); arrays of up to max_array elements inline, bigger ones as {"array":"<type>","count":N}.
 * tensor_types: count per type, the most frequent first. */
char *ccm_gguf_json(const struct ccm_gguf *g, size_t max_array);

#endif
