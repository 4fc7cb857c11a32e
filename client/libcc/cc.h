/* SPDX-License-Identifier: MIT */
/* cc.h: public API of libcc, the client library of the Compute Core daemon ccd. */
#ifndef CC_H
#define CC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CC_BUILDING) && defined(__GNUC__)
#define CC_EXPORT __attribute__((visibility("default")))
#else
#define CC_EXPORT
#endif

/* Protocol version spoken by this libcc (see ipc/proto/cc.proto). */
#define CC_PROTO_VERSION 1

/* Element types. Values are ABI: never renumbered. */
enum cc_dtype {
	CC_DTYPE_F32 = 0, /* IEEE-754 binary32 */
	CC_DTYPE_COUNT    /* number of dtypes, not a dtype */
};

/* Opaque handles. */
typedef struct cc_client cc_client;
typedef struct cc_tensor cc_tensor;

/*
 * Errors are negative errno values; cc_strerror() explains them in the
 * words of this library (e.g. -ECONNREFUSED: the daemon is not running, and
 * how to start it). When the daemon refused a request, cc_last_error()
 * holds its own message.
 */
CC_EXPORT const char *cc_strerror(int err);

/*
 * Connect to ccd at endpoint (a ZeroMQ URL such as "ipc:///run/user/1000/ccd.sock");
 * NULL means $CC_ENDPOINT, else the per-user default (cc_default_endpoint()).
 * Performs the protocol handshake. Returns 0 and *ret, or a negative errno:
 * -ECONNREFUSED when no daemon answers (within 2 s, or $CC_TIMEOUT_MS),
 * -EPROTO on a version mismatch.
 * A client handle is not thread-safe: use one per thread.
 * On every call below, -ECONNRESET means ccd died (or was shut down) since:
 * the handle can only be closed.
 */
CC_EXPORT int cc_connect(const char *endpoint, cc_client **ret);
/*
 * Free every tensor and stream of c (their handles are then gone), tell the
 * daemon (which frees c's sessions), and close. NULL is a no-op.
 */
CC_EXPORT void cc_close(cc_client *c);
/*
 * The daemon's message for the last refused request on c ("" if none).
 * c == NULL: the daemon's message for the last failed cc_connect of the
 * calling thread (e.g. both protocol versions on -EPROTO).
 */
CC_EXPORT const char *cc_last_error(const cc_client *c);
/*
 * The default endpoint for this user: ipc://$XDG_RUNTIME_DIR/ccd.sock when
 * XDG_RUNTIME_DIR is a private directory of ours, else ipc:///tmp/cc-<uid>/ccd.sock
 * (the directory is created 0700 and must be ours and not a symlink).
 * Writes at most size bytes to buf. Returns 0 or a negative errno.
 */
CC_EXPORT int cc_default_endpoint(char *buf, size_t size);

/*
 * A tensor of n elements of dtype in shared memory (a sealed memfd)
 * registered with the daemon: the daemon reads and writes it in place, the
 * bytes never cross the socket. n may be 0. Returns 0 and *ret or -errno.
 */
CC_EXPORT int cc_tensor_new(cc_client *c, int dtype, size_t n, cc_tensor **ret);
/* Pointer to the elements (valid until cc_tensor_free). */
CC_EXPORT void *cc_tensor_data(cc_tensor *t);
/* Number of elements. */
CC_EXPORT size_t cc_tensor_len(const cc_tensor *t);
/* Unregister and unmap. NULL is a no-op. Must not be called while a job uses t. */
CC_EXPORT void cc_tensor_free(cc_tensor *t);

/*
 * Synchronous ops: libcck's op names (see cck.h). Each returns 0 or -errno
 * once the daemon has finished the job.
 *   cc_unary:  element-wise and whole-vector ops, y may be x; params/nparams
 *              as the op needs them.
 *   cc_binary: y = a op b.
 *   cc_reduce: one-input reductions (b must be NULL) and two-input ones
 *              (dot, covariance, correlation, dist_l2); result in *ret.
 *   cc_matmul: C[m x n] = A[m x k] * B[k x n], row-major.
 */
CC_EXPORT int cc_unary(cc_client *c, const char *op, const cc_tensor *x, cc_tensor *y, const float *params,
                       size_t nparams);
CC_EXPORT int cc_binary(cc_client *c, const char *op, const cc_tensor *a, const cc_tensor *b, cc_tensor *y);
CC_EXPORT int cc_reduce(cc_client *c, const char *op, const cc_tensor *x, const cc_tensor *b, double *ret);
CC_EXPORT int cc_matmul(cc_client *c, const cc_tensor *A, const cc_tensor *B, cc_tensor *C, size_t m, size_t k,
                        size_t n);

/*
 * Asynchronous form: submit returns at once with a job id (> 0); several
 * jobs may be in flight (up to the daemon's per-client limit). cc_wait
 * blocks until that job is done (timeout_ms < 0: forever) and returns its
 * result code (and the reduction value in *ret_value if not NULL);
 * -ETIMEDOUT if it is not done in time (the job stays in flight). cc_poll
 * is cc_wait with timeout 0 and returns -EAGAIN while the job runs. A job
 * is collected once: its id is then unknown (-ESRCH), like an id never
 * submitted. Results of jobs never waited for are freed by cc_close.
 * Tensors of a job in flight must not be freed or touched until it is done.
 */
CC_EXPORT int cc_submit_unary(cc_client *c, const char *op, const cc_tensor *x, cc_tensor *y, const float *params,
                              size_t nparams, uint64_t *ret_job);
CC_EXPORT int cc_submit_binary(cc_client *c, const char *op, const cc_tensor *a, const cc_tensor *b, cc_tensor *y,
                               uint64_t *ret_job);
CC_EXPORT int cc_submit_reduce(cc_client *c, const char *op, const cc_tensor *x, const cc_tensor *b, uint64_t *ret_job);
CC_EXPORT int cc_submit_matmul(cc_client *c, const cc_tensor *A, const cc_tensor *B, cc_tensor *C, size_t m, size_t k,
                               size_t n, uint64_t *ret_job);
CC_EXPORT int cc_wait(cc_client *c, uint64_t job, int timeout_ms, double *ret_value);
CC_EXPORT int cc_poll(cc_client *c, uint64_t job, double *ret_value);

/* Round trip to the daemon's front end without a job (latency probe). */
CC_EXPORT int cc_ping(cc_client *c);

/*
 * Admin queries for ccctl: the daemon's reply to a status / clients /
 * kernels / models / sessions request as a JSON document (malloc'd, caller
 * frees), keys in snake_case as in cc.proto. what: "status", "clients",
 * "kernels", "models" or "sessions".
 */
CC_EXPORT int cc_admin_json(cc_client *c, const char *what, char **ret_json);
/*
 * Change where the daemon's ops run (only for its own user or root), then
 * *ret_json = the "kernels" document. backend: "auto", "cpu" or "opencl"
 * (every client's later ops); device: an OpenCL selection as
 * CC_OPENCL_DEVICE takes it ("none", an index, a part of "platform: name"),
 * only until the daemon has set OpenCL up (-EBUSY after, unless it names the
 * device in use); NULL or "" leaves a setting as it is. calibrate: measure
 * every op's crossover again in the background (the document says
 * "calibrating": true; `kernels` shows the crossovers as they land).
 */
CC_EXPORT int cc_kernels_set(cc_client *c, const char *backend, const char *device, int calibrate, char **ret_json);
/*
 * Models (load and unload: only for the daemon's own user or root).
 * cc_model_load asks ccd to load the GGUF file path (made absolute here) as
 * name; mode "uring" (NULL: default) or "mmap"; placement "interleave"
 * (NULL: default), "node=N" or "local". It returns when the load is done;
 * meanwhile progress(arg, loaded, total) is called about every 100 ms
 * (total is 0 until the header is parsed). On success *ret_json (if not
 * NULL) is the model as `models` lists it. cc_model_unload waits for the
 * jobs that use the model (force: cancels them first). cc_model_show gives
 * {"model":{...},"gguf":{metadata, tensor types, tensors}} as JSON.
 * cc_admin_json(c, "models", ...) lists every model.
 */
typedef void (*cc_progress_fn)(void *arg, uint64_t done, uint64_t total);
CC_EXPORT int cc_model_load(cc_client *c, const char *name, const char *path, const char *mode, const char *placement,
                            cc_progress_fn progress, void *arg, char **ret_json);
CC_EXPORT int cc_model_unload(cc_client *c, const char *name, int force);
CC_EXPORT int cc_model_show(cc_client *c, const char *name, char **ret_json);
/*
 * y = W x with W the 2-D tensor named tensor of the loaded model (rows x
 * cols, any quantized type libcck has a dot product for): x has cols f32
 * elements, y rows. The weights stay in ccd, shared; x is quantized as
 * libcck's cck_qmatvec does. The job holds the model: an unload waits for
 * it (a forced unload cancels it: -ECANCELED).
 */
CC_EXPORT int cc_model_matvec(cc_client *c, const char *model, const char *tensor, const cc_tensor *x, cc_tensor *y);
CC_EXPORT int cc_submit_model_matvec(cc_client *c, const char *model, const char *tensor, const cc_tensor *x,
                                     cc_tensor *y, uint64_t *ret_job);

/*
 * Inference with a loaded model's engine (llama / qwen2 architectures).
 * cc_gen_defaults fills llama.cpp's sampling defaults (temp 0.8, top_k 40,
 * top_p 0.95, min_p 0.05, no repetition penalty, max_tokens 128, seed 0);
 * temp 0 is greedy. raw = 1 skips the model's chat template. The result's
 * strings and arrays are malloc'd: cc_gen_result_free frees them.
 */
struct cc_gen_params {
	uint32_t max_tokens;
	float temp;
	int32_t top_k;
	float top_p;
	float min_p;
	float repeat_penalty;
	int32_t repeat_last_n;
	uint64_t seed;
	int raw;
	const char *const *stop; /* stop strings, nstop of them (not part of the text) */
	size_t nstop;
	int ignore_eos; /* generate max_tokens even past an end-of-generation token (benchmarks) */
};
struct cc_gen_result {
	char *text;
	int32_t *tokens; /* generated ids */
	size_t ntokens;
	uint32_t prompt_tokens;
	double pp_tps, tg_tps;
	char stop_reason[16]; /* "eos", "length", "stop", "context" (the context is full) */
	char templ[96];       /* "raw", "chat", or why the template was not used */
	uint64_t session;     /* 0 for a one-shot generation */
	double ttft_ms;       /* request to first generated token, as ccd measured it */
	double tpot_ms;       /* mean time per generated token after the first */
	uint32_t n_past;      /* tokens in the session's context after this turn */
	uint32_t new_tokens;  /* prompt tokens this turn processed */
	uint32_t cached_tokens; /* of those, the ones whose KV ccd copied from another session with the same prefix */
};
CC_EXPORT void cc_gen_defaults(struct cc_gen_params *p);
CC_EXPORT int cc_generate(cc_client *c, const char *model, const char *prompt, const struct cc_gen_params *p,
                          struct cc_gen_result *ret);
CC_EXPORT void cc_gen_result_free(struct cc_gen_result *r);
/* Token ids of text (add_bos: 1 as the model's metadata says, 0 never; special: parse special-token texts). */
CC_EXPORT int cc_tokenize(cc_client *c, const char *model, const char *text, int add_bos, int special,
                          int32_t **ret_ids, size_t *ret_n);
CC_EXPORT int cc_detokenize(cc_client *c, const char *model, const int32_t *ids, size_t n, char **ret_text,
                            size_t *ret_len);
/*
 * Evaluate ids from an empty context: the last position's logits go to out
 * (n_vocab f32 elements; may be NULL) and the k best (top_ids, top_logits,
 * best first, k <= 1000; may be 0) come back; *ret_n_vocab if not NULL.
 */
CC_EXPORT int cc_logits(cc_client *c, const char *model, const int32_t *ids, size_t n, cc_tensor *out, size_t k,
                        int32_t *top_ids, float *top_logits, uint32_t *ret_n_vocab);

/*
 * Sessions and streamed generation. A session lives in ccd and holds one
 * conversation's KV cache and sampling state (the model's weights are
 * shared by all): each cc_stream_start on it is the next turn, and only the
 * new turn's tokens are processed. n_ctx 0 takes ccd's session_ctx. The
 * daemon refuses a session past max_sessions_per_client or past its KV
 * memory budget (-ENOSPC, with the reason in cc_last_error). A session is
 * freed by cc_session_free, by cc_close, when the client process dies, or
 * after session_idle_s without use.
 */
CC_EXPORT int cc_session_new(cc_client *c, const char *model, uint32_t n_ctx, uint64_t *ret_session);
CC_EXPORT int cc_session_free(cc_client *c, uint64_t session);

/*
 * A generation in progress, asynchronous: cc_stream_start returns once the
 * request is sent. session 0 is a one-shot generation of model (model is
 * ignored, and may be NULL, for a session). Several streams of one client
 * (on different sessions) may run at once; one client's streams are read
 * from one thread. cc_stream_next waits up to timeout_ms (< 0: for ever)
 * for the next piece of text: 1 and *text / *len (valid until the next call
 * on this stream; whole UTF-8 characters, NUL-terminated) when one came, 0
 * once the generation has ended (then cc_stream_result), -ETIMEDOUT, or the
 * generation's error (-ECANCELED after cc_stream_cancel or a forced unload,
 * -E2BIG, ...; text in cc_last_error). cc_stream_cancel asks ccd to stop
 * (it stops within one decoding step; the stream then ends with
 * -ECANCELED). cc_stream_result fills ret (text: the whole turn) once the
 * stream has ended well. cc_stream_free cancels a stream still running.
 */
typedef struct cc_stream cc_stream;
CC_EXPORT int cc_stream_start(cc_client *c, uint64_t session, const char *model, const char *prompt,
                              const struct cc_gen_params *p, cc_stream **ret);
CC_EXPORT int cc_stream_next(cc_stream *st, int timeout_ms, const char **text, size_t *len);
CC_EXPORT int cc_stream_cancel(cc_stream *st);
CC_EXPORT int cc_stream_result(cc_stream *st, struct cc_gen_result *ret);
CC_EXPORT void cc_stream_free(cc_stream *st);
/*
 * The token ids of the piece cc_stream_next returned last (valid as its
 * text is; a piece may hold several tokens, e.g. a character split over
 * tokens): returns their number, ids in *ids. 0 before the first piece.
 */
CC_EXPORT size_t cc_stream_piece_tokens(const cc_stream *st, const int32_t **ids);
/*
 * Wait until one of n streams (of one client) has a piece or has ended:
 * returns its index, or -ETIMEDOUT, or -errno.
 */
CC_EXPORT int cc_stream_poll(cc_stream *const *sts, size_t n, int timeout_ms);
/*
 * The same, with a callback: on_piece(arg, text, len) for every piece
 * (return non-zero to cancel), then the result as cc_generate gives it.
 */
typedef int (*cc_piece_fn)(void *arg, const char *text, size_t len);
CC_EXPORT int cc_generate_stream(cc_client *c, uint64_t session, const char *model, const char *prompt,
                                 const struct cc_gen_params *p, cc_piece_fn on_piece, void *arg,
                                 struct cc_gen_result *ret);

/* Ask the daemon to shut down cleanly. */
CC_EXPORT int cc_shutdown(cc_client *c);

#ifdef __cplusplus
}
#endif
#endif /* CC_H */
