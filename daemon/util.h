/* SPDX-License-Identifier: MIT */
/* util.h: small helpers every file of ccd uses: array sizes, invariant checks, clocks, safe strings. */
#ifndef CCD_UTIL_H
#define CCD_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define CCD_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * A broken internal invariant: log "file:line: assertion failed" and abort.
 * Only for the daemon's own bookkeeping, never for anything a client or a
 * file supplied (that gets an error reply or a startup error instead).
 */
#define CCD_ASSERT(x)                                                                                                  \
	do {                                                                                                           \
		if (!(x))                                                                                              \
			ccd_assert_fail(#x, __FILE__, __LINE__);                                                       \
	} while (0)

/* Log the failed assertion and abort(). Never returns. Defined in log.c. */
void ccd_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

/* Monotonic clock in milliseconds / seconds (thread-safe). */
uint64_t ccd_now_ms(void);
double ccd_now_s(void);

/*
 * Copy at most size - 1 bytes of src to dst (always terminated), replacing
 * anything that is not printable ASCII by '?', so text from a client can go
 * into logs and replies as-is. A truncated copy ends in "...". NULL src is "".
 */
void ccd_sanitize(char *dst, size_t size, const char *src);

#endif /* CCD_UTIL_H */
