/* SPDX-License-Identifier: MIT */
/* log.h: ccd's printf-checked logger (stderr in the foreground, syslog as a daemon). */
#ifndef CCD_LOG_H
#define CCD_LOG_H

enum ccd_log_level { CCD_LOG_ERROR = 0, CCD_LOG_WARN, CCD_LOG_INFO, CCD_LOG_DEBUG, CCD_LOG_COUNT };

/* Level for a name ("error", "warn", "info", "debug"), or -EINVAL. */
int ccd_log_parse_level(const char *name);

/*
 * Set the threshold and the sinks. Called from the main thread; the sinks
 * may be changed later (ccd_log_to_stderr) while other threads log.
 * to_syslog opens syslog as "ccd" (LOG_DAEMON, LOG_PID).
 */
void ccd_log_setup(int level, int to_stderr, int to_syslog);
/* Turn the stderr sink on or off (stderr goes to /dev/null once a daemon is ready). */
void ccd_log_to_stderr(int on);
/* Close syslog if it was opened. */
void ccd_log_close(void);
/* Whether a message of this level would be written (to skip costly formatting). */
int ccd_log_on(int level);

/*
 * Write one line (no trailing newline needed) at level to every sink.
 * Thread-safe. Log an error once, where it is handled.
 */
void ccd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define ccd_error(...) ccd_log(CCD_LOG_ERROR, __VA_ARGS__)
#define ccd_warn(...) ccd_log(CCD_LOG_WARN, __VA_ARGS__)
#define ccd_info(...) ccd_log(CCD_LOG_INFO, __VA_ARGS__)
#define ccd_debug(...)                                                                                                 \
	do {                                                                                                           \
		if (ccd_log_on(CCD_LOG_DEBUG))                                                                         \
			ccd_log(CCD_LOG_DEBUG, __VA_ARGS__);                                                           \
	} while (0)

#endif /* CCD_LOG_H */
