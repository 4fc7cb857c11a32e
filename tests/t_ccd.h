/* SPDX-License-Identifier: MIT */
/* t_ccd.h: helpers of the integration tests: start and stop a real ccd, raw ZeroMQ requests, memfds, watchdogs. */
#ifndef T_CCD_H
#define T_CCD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cc.h"
#include "cc.pb-c.h"
#include "t_models.h" /* t_models_dir(), t_model(), t_smollm2() */

/* Exit status of a test program that cannot run here (automake's SKIP). */
#define T_EXIT_SKIP 77

/*
 * Deadlines are multiplied by t_scale(): 1 for a plain build, 4 under ASan, times
 * $T_TIMEOUT_SCALE if set (e.g. for a ccd run under valgrind through $CCD_WRAPPER).
 */
/* Counts a mismatch in *nfail and prints it to stderr ("MISMATCH: ...") while fewer than max have been printed
 * (*nprinted counts them). */
void t_mismatch(unsigned *nfail, unsigned *nprinted, unsigned max, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

double t_scale(void);
/* CLOCK_MONOTONIC in seconds. */
double t_now(void);
/* Sleep ms milliseconds. */
void t_msleep(unsigned ms);

/*
 * Kill the calling test program (and every ccd it started) after seconds * t_scale(), printing
 * what: a hung test is a failure, never a hang of `make check`. Call again to re-arm.
 */
void t_watchdog(unsigned seconds, const char *what);

/* One daemon started by t_ccd_start. */
struct t_ccd {
	pid_t pid;          /* 0 when not running */
	int status;         /* wait status once reaped */
	char dir[128];      /* private (0700) temporary directory */
	char sock[160];     /* dir/ccd.sock */
	char endpoint[176]; /* ipc://dir/ccd.sock */
	char log[160];      /* dir/ccd.log: the daemon's stdout and stderr */
};

/* $CCD (set by the Makefile), else ./daemon/ccd; exits T_EXIT_SKIP with a message if it is not there. */
const char *t_ccd_path(void);
/* $CCCTL, else ./tools/ccctl/ccctl; NULL if not there. */
const char *t_ccctl_path(void);

/*
 * Start `ccd --foreground --endpoint ipc://DIR/ccd.sock ARGS...` in a fresh private directory,
 * with the extra environment ENV ("NAME=value" strings; both lists NULL-terminated, may be NULL),
 * and wait (bounded) until it answers a hello. The daemon gets SIGKILL if the test program dies.
 * Returns 0, or -errno after printing why (and the daemon's log) and cleaning up.
 */
int t_ccd_start(struct t_ccd *d, const char *const *args, const char *const *env);
/*
 * Stop the daemon: SIGTERM, wait up to 10 s (scaled), then SIGKILL. Removes the directory.
 * Returns 0 when ccd exited with status 0 and removed its socket; else -1 after printing the
 * wait status and the daemon's log.
 */
int t_ccd_stop(struct t_ccd *d);
/*
 * Run ccd with ARGS (and ENV) in a fresh private directory and expect it to exit on its own
 * within timeout_s (scaled): for options it must refuse. Returns 0 with the wait status in
 * *ret_status and the start of its output in out, or -ETIMEDOUT (it was killed).
 */
int t_ccd_run(const char *const *args, const char *const *env, double timeout_s, int *ret_status, char *out,
              size_t outlen);
/* 1 if the daemon process is still running (not exited). */
int t_ccd_alive(struct t_ccd *d);
/* Print the last bytes of the daemon's log on stderr. */
void t_ccd_dump_log(const struct t_ccd *d);
/* cc_connect to the daemon, retrying a refused connection for up to 5 s (scaled). */
int t_ccd_connect(const struct t_ccd *d, cc_client **ret);

/* ---- raw protocol: a DEALER socket speaking cc.proto without libcc ------------------------ */
struct t_raw {
	void *ctx;
	void *sock;
	uint64_t next_id;
};
/* Connect a DEALER to endpoint (no hello). Returns 0 or -errno. */
int t_raw_open(struct t_raw *r, const char *endpoint);
void t_raw_close(struct t_raw *r);
/* Send one frame of bytes (more: ZMQ_SNDMORE). Returns 0 or -errno. */
int t_raw_send_bytes(struct t_raw *r, const void *buf, size_t len, int more);
/* Serialize and send req as one frame. Returns 0 or -errno. */
int t_raw_send(struct t_raw *r, const Cc__Request *req);
/*
 * Receive one reply within timeout_ms (scaled). Returns 0 and *ret (free with
 * cc__reply__free_unpacked(*ret, NULL)), -ETIMEDOUT, or -EBADMSG when the message is not one
 * frame holding a Reply (printed).
 */
int t_raw_recv(struct t_raw *r, int timeout_ms, Cc__Reply **ret);
/* Send req with a fresh id (req->id is set) and receive replies until the one with that id. */
int t_raw_call(struct t_raw *r, Cc__Request *req, Cc__Reply **ret);
/* Hello with version (CC_PROTO_VERSION normally) and our pid. Returns the reply's code, or -errno. */
int t_raw_hello(struct t_raw *r, uint32_t version);
/* A bodyless-request sender for the Empty-bodied requests (status, clients, kernels, ping, bye). */
int t_raw_empty(struct t_raw *r, Cc__Request__BodyCase body, Cc__Reply **ret);
/* region_add {id, fd, size}: returns the reply's code (message in err if not NULL), or -errno. */
int t_raw_region_add(struct t_raw *r, uint64_t id, int fd, uint64_t size, char *err, size_t errlen);
int t_raw_region_free(struct t_raw *r, uint64_t id);

/* A TensorRef of f32 elements, for building OpRequests by hand. */
void t_tref(Cc__TensorRef *t, uint64_t region, uint64_t offset, uint64_t len);
/*
 * Run an op by hand: inputs (nin of them), output (NULL: none), params. Returns the reply's
 * code (error text copied to err, value to *ret_value when not NULL), or -errno.
 */
int t_raw_op(struct t_raw *r, const char *op, Cc__TensorRef *const *inputs, size_t nin, Cc__TensorRef *output,
             const float *params, size_t nparams, uint64_t m, uint64_t k, uint64_t n, double *ret_value, char *err,
             size_t errlen);

/*
 * A memfd of size bytes (MFD_ALLOW_SEALING), mapped shared at *ret_map, with seals added
 * (0: none). Returns the fd or -errno.
 */
int t_memfd(size_t size, unsigned seals, void **ret_map);
/* The seals every region needs (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL). */
unsigned t_seals_all(void);

/* ---- daemon introspection ------------------------------------------------------------------ */
/* status through a raw connection that said hello. Returns 0 or -errno; free *ret with cc__reply__free_unpacked. */
int t_raw_status(struct t_raw *r, Cc__Reply **ret);
int t_raw_clients(struct t_raw *r, Cc__Reply **ret);
/* Count of the daemon's open fds and of its memfd mappings (from /proc). -1 if unreadable. */
int t_proc_nfds(pid_t pid);
/*
 * Wait up to seconds (scaled) until pid has at most max open fds (ZeroMQ closes a connection's
 * fd a moment after the peer went). Returns the last count (-1 if unreadable).
 */
int t_proc_nfds_settle(pid_t pid, int max, double seconds);
int t_proc_nmemfd_maps(pid_t pid);

/* 1 if text contains the decimal number v as a whole token (not part of a longer number). */
int t_has_number(const char *text, uint64_t v);
/* The numeric value after "key": in a JSON text (first occurrence). Returns 0 or -ENOENT. */
int t_json_number(const char *json, const char *key, double *ret);

/* Bitwise equality of two float arrays where any NaN equals any NaN. Returns the index of the
 * first difference, or n if none. */
size_t t_f32_diff(const float *a, const float *b, size_t n);
/* 1 if two doubles are the same bits, or both NaN. */
int t_f64_same(double a, double b);

/* Page-aligned malloc (so in-process references see the same alignment as shared regions). */
void *t_alloc_pages(size_t bytes);
/* Side s <= cap of a square s x s x s matmul that takes about target_s seconds in-process. */
size_t t_matmul_side(double target_s, size_t cap);

/*
 * The fixture every daemon test starts from: libcck set as ccd sets it (one
 * thread, "auto" tier) for in-process references, a ccd started with args,
 * a libcc client c and a raw client r that has said hello. Returns 0, or -1
 * with the reason on stderr and nothing left running.
 */
int t_fixture_up(struct t_ccd *d, const char *const *args, cc_client **c, struct t_raw *r);
/* Close r and c and stop d: 0, or -1 if ccd did not exit cleanly. */
int t_fixture_down(struct t_ccd *d, cc_client **c, struct t_raw *r);
/*
 * The daemon is alive and client c still gets exact results: an
 * element-wise op and a reduction on n (<= 4096) elements, compared with
 * libcck in-process, then a ping. Returns NULL, or what went wrong.
 */
const char *t_healthy_check(struct t_ccd *d, cc_client *c, size_t n);

/* ---- test models (where they are: t_models.h) ------------------------------------------------ */
/*
 * Write a copy of the GGUF file src to dst with its tokenizer.ggml.model key renamed (tokenizer.ggml.mode_): a model
 * that loads but has no tokenizer. Returns 0, or -1 after printing why (no such key exactly once, I/O).
 */
int t_write_no_tokenizer(const char *src, const char *dst);

/* Run $CCCTL --endpoint EP ARGS... (NULL-terminated), its stdout and stderr into out. Returns its exit status, or -1
 * when there is no ccctl (out then says so); 124 when it ran past 60 s (scaled: killed), 125/126 when it could not be
 * started (out says why). */
int t_ccctl(const struct t_ccd *d, char *out, size_t outlen, ...);

#endif /* T_CCD_H */
