/* SPDX-License-Identifier: MIT */
/* log.c: ccd's logger and the small helpers of util.h. */
#define _GNU_SOURCE 1
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static const char *const level_names[CCD_LOG_COUNT] = {
    [CCD_LOG_ERROR] = "error",
    [CCD_LOG_WARN] = "warn",
    [CCD_LOG_INFO] = "info",
    [CCD_LOG_DEBUG] = "debug",
};

static const int level_prio[CCD_LOG_COUNT] = {
    [CCD_LOG_ERROR] = LOG_ERR,
    [CCD_LOG_WARN] = LOG_WARNING,
    [CCD_LOG_INFO] = LOG_INFO,
    [CCD_LOG_DEBUG] = LOG_DEBUG,
};

/* Read by every thread; written by the main thread only. */
static atomic_int log_level = CCD_LOG_INFO;
static atomic_int log_stderr = 1;
static atomic_int log_syslog;

int ccd_log_parse_level(const char *name)
{
	int i;

	if (!name)
		return -EINVAL;
	for (i = 0; i < CCD_LOG_COUNT; i++)
		if (!strcmp(name, level_names[i]))
			return i;
	if (!strcmp(name, "warning"))
		return CCD_LOG_WARN;
	return -EINVAL;
}

void ccd_log_setup(int level, int to_stderr, int to_syslog)
{
	if (level < 0 || level >= CCD_LOG_COUNT)
		level = CCD_LOG_INFO;
	atomic_store(&log_level, level);
	atomic_store(&log_stderr, !!to_stderr);
	if (to_syslog && !atomic_load(&log_syslog))
		openlog("ccd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	atomic_store(&log_syslog, !!to_syslog);
}

void ccd_log_to_stderr(int on)
{
	atomic_store(&log_stderr, !!on);
}

void ccd_log_close(void)
{
	if (atomic_exchange(&log_syslog, 0))
		closelog();
}

int ccd_log_on(int level)
{
	return level <= atomic_load(&log_level);
}

void ccd_log(int level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int saved = errno;

	if (level < 0 || level >= CCD_LOG_COUNT || !ccd_log_on(level))
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (atomic_load(&log_stderr))
		fprintf(stderr, "ccd[%ld]: %s: %s\n", (long)getpid(), level_names[level], buf);
	if (atomic_load(&log_syslog))
		syslog(level_prio[level], "%s", buf);
	errno = saved;
}

void ccd_assert_fail(const char *expr, const char *file, int line)
{
	ccd_log(CCD_LOG_ERROR, "%s:%d: assertion failed: %s", file, line, expr);
	abort();
}

uint64_t ccd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

double ccd_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void ccd_sanitize(char *dst, size_t size, const char *src)
{
	size_t i;

	if (!size)
		return;
	if (!src)
		src = "";
	for (i = 0; src[i] && i + 1 < size; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
	dst[i] = 0;
	if (src[i] && size >= 4)
		memcpy(dst + size - 4, "...", 4);
}
