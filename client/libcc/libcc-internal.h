/* SPDX-License-Identifier: MIT */
/* libcc-internal.h: state and request plumbing shared by libcc's source files (not installed). */
#ifndef CC_LIBCC_INTERNAL_H
#define CC_LIBCC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cc.h"
#include "cc.pb-c.h"

/* Longest endpoint URL we accept (an ipc:// path is at most 108 bytes anyway). */
#define CC__ENDPOINT_MAX 512
/* Longest op name sent (libcck names are short); keeps every request tiny. */
#define CC__OP_NAME_MAX 64
/* Most float parameters an op may carry (libcck ops take 0 to 2). */
#define CC__PARAMS_MAX 16
/* Wait for the hello reply; CC_TIMEOUT_MS overrides it. */
#define CC__HELLO_TIMEOUT_MS 2000
/* Wait for a control reply (region add/free, ping, admin); CC_TIMEOUT_MS overrides it. */
#define CC__CONTROL_TIMEOUT_MS 30000
/* How often a long wait checks that ccd is still alive. */
#define CC__LIVENESS_SLICE_MS 500

/* A tensor: one sealed memfd, mapped here and registered with ccd as one region. */
struct cc_tensor {
	cc_client *c;
	struct cc_tensor *prev;
	struct cc_tensor *next;
	uint64_t region_id;
	void *data;
	size_t map_size;
	size_t n;
	int fd;
};

/* An asynchronous job: submitted, and possibly answered but not yet collected by cc_wait. */
struct cc__job {
	uint64_t id;
	int done;
	int code;
	double value;
	char *error; /* the daemon's text when code != 0 (malloc'd), or NULL */
};

/* A streamed piece of text waiting to be read by cc_stream_next: its token ids, then its NUL-terminated text. */
struct cc__piece {
	struct cc__piece *next;
	size_t len;
	size_t ntok;
	char *text; /* points into the same allocation, after tok */
	int32_t tok[];
};

/* A streamed generation: the Generate's id, its pieces in arrival order, and its final reply once it came. */
struct cc_stream {
	cc_client *c;
	struct cc_stream *prev;
	struct cc_stream *next;
	uint64_t id;
	uint64_t session;
	struct cc__piece *head; /* queued, oldest first */
	struct cc__piece *tail;
	struct cc__piece *cur; /* handed out by the last cc_stream_next, freed at the next call */
	Cc__Reply *final;      /* the last reply (GenerateReply or an error), NULL while running */
	int lost;              /* -ENOMEM when a piece could not be kept: the stream then ends with it */
	int cancelled;         /* a Cancel was sent */
};

struct cc_client {
	void *zctx;
	void *sock;
	uint64_t next_id;
	uint64_t next_region;
	int hello_timeout_ms;
	int control_timeout_ms;
	pid_t daemon_pid; /* > 0 when we can check that ccd is alive (local ipc endpoint) */
	int dead;         /* ccd is gone (or shut down): every request fails at once */
	struct cc_tensor *tensors;
	struct cc__job *jobs;
	size_t njobs;
	size_t jobs_cap;
	struct cc_stream *streams;
	size_t poll_next; /* cc_stream_poll looks from here first: no stream starves another */
	char endpoint[CC__ENDPOINT_MAX];
	char last_error[256];
};

/*
 * Send req (its id is assigned here) and wait up to timeout_ms (< 0: until
 * ccd answers or dies) for its reply. Returns the reply's code (0 or
 * -errno, the daemon's text then in c->last_error) with the reply in *ret
 * (caller frees with cc__reply__free_unpacked) when ret is not NULL, or a
 * transport error (-ETIMEDOUT, -ECONNRESET, -ENOMEM, ...) with *ret untouched.
 */
int cc__call(cc_client *c, Cc__Request *req, int timeout_ms, Cc__Reply **ret);

/* Assign req an id and send it. Returns 0 and *ret_id, or -errno. */
int cc__send(cc_client *c, Cc__Request *req, uint64_t *ret_id);

/*
 * Wait for the reply to request id, storing replies to other submitted jobs
 * on the way. Returns 0 and *ret (caller frees), -ETIMEDOUT, -ECONNRESET
 * (ccd died) or another -errno.
 */
int cc__wait_reply(cc_client *c, uint64_t id, int timeout_ms, Cc__Reply **ret);

/*
 * Read replies (routing them to jobs and streams) until ready(arg) is true,
 * for up to timeout_ms (< 0: for ever). Returns 0, -ETIMEDOUT, -ECONNRESET
 * (ccd died) or another -errno.
 */
int cc__wait_until(cc_client *c, int (*ready)(void *arg), void *arg, int timeout_ms);

/* Free a stream's memory and unlink it from its client, without telling ccd. */
void cc__stream_drop(cc_stream *st);

/* Copy a GenerateReply into a result (strings and arrays malloc'd). Returns 0 or -ENOMEM (ret then empty). */
int cc__gen_result_fill(const Cc__GenerateReply *gr, struct cc_gen_result *ret);

/* Fill the Generate request g from p (not NULL); g's strings point into p. */
void cc__gen_request(Cc__Generate *g, const struct cc_gen_params *p);

/* The code of a reply as this library returns it (0 or a negative errno); copies its text to c->last_error. */
int cc__reply_code(cc_client *c, const Cc__Reply *rep);

/* Record job id as submitted (before its request is sent). Returns 0 or -ENOMEM. */
int cc__job_add(cc_client *c, uint64_t id);
/* Forget job id (after a failed send, or once collected). */
void cc__job_remove(cc_client *c, uint64_t id);
/* The submitted job id, or NULL. */
struct cc__job *cc__job_find(cc_client *c, uint64_t id);

/* Set c->last_error to msg (truncated). */
void cc__set_error(cc_client *c, const char *msg);

/* Unmap and close t and unlink it from its client, without telling ccd. */
void cc__tensor_drop(cc_tensor *t);

#endif /* CC_LIBCC_INTERNAL_H */
