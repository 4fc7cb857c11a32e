/* SPDX-License-Identifier: MIT */
/* client.c: libcc's connection to ccd: handshake, request ids, reply matching, job table, close. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "endpoint.h"
#include "libcc-internal.h"

/* The daemon's text for the last failed cc_connect of this thread (cc_last_error(NULL)). */
static _Thread_local char connect_error[256];

static void copy_text(char *dst, size_t size, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= size)
		n = size - 1;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

void cc__set_error(cc_client *c, const char *msg)
{
	copy_text(c->last_error, sizeof(c->last_error), msg);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* CC_TIMEOUT_MS if it is a sane number of milliseconds, else def. */
static int env_timeout(int def)
{
	const char *s = getenv("CC_TIMEOUT_MS");
	char *end;
	long v;

	if (!s || !*s)
		return def;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 1 || v > 24L * 3600 * 1000)
		return def;
	return (int)v;
}

/* A zombie counts as gone: a daemon killed under a parent that does not reap it stays one for a while. */
static int is_zombie(pid_t pid)
{
	char path[64], buf[256], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold anything, so the state follows the last ')' */
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* Is ccd still there? Only answerable for a local daemon whose pid we saw at hello. */
static int daemon_alive(cc_client *c)
{
	if (c->dead)
		return 0;
	if (c->daemon_pid <= 0)
		return 1;
	if ((kill(c->daemon_pid, 0) < 0 && errno == ESRCH) || is_zombie(c->daemon_pid)) {
		c->dead = 1;
		return 0;
	}
	return 1;
}

struct cc__job *cc__job_find(cc_client *c, uint64_t id)
{
	size_t i;

	for (i = 0; i < c->njobs; i++)
		if (c->jobs[i].id == id)
			return &c->jobs[i];
	return NULL;
}

int cc__job_add(cc_client *c, uint64_t id)
{
	struct cc__job *j;

	if (c->njobs == c->jobs_cap) {
		size_t cap = c->jobs_cap ? c->jobs_cap * 2 : 16;

		j = realloc(c->jobs, cap * sizeof(*j));
		if (!j)
			return -ENOMEM;
		c->jobs = j;
		c->jobs_cap = cap;
	}
	j = &c->jobs[c->njobs++];
	memset(j, 0, sizeof(*j));
	j->id = id;
	return 0;
}

void cc__job_remove(cc_client *c, uint64_t id)
{
	struct cc__job *j = cc__job_find(c, id);

	if (!j)
		return;
	free(j->error);
	*j = c->jobs[--c->njobs];
}

int cc__reply_code(cc_client *c, const Cc__Reply *rep)
{
	int code = rep->code;

	if (code == 0)
		return 0;
	/* a daemon that answers a positive code breaks the protocol: never pass it on as success */
	if (code > 0)
		code = -EPROTO;
	cc__set_error(c, rep->error && *rep->error ? rep->error : cc_strerror(code));
	return code;
}

/* Keep a reply to a submitted job until cc_wait collects it. Consumes rep. */
static void store_reply(struct cc__job *j, Cc__Reply *rep)
{
	j->done = 1;
	j->code = rep->code > 0 ? -EPROTO : rep->code;
	if (rep->body_case == CC__REPLY__BODY_OP && rep->op)
		j->value = rep->op->value;
	if (j->code && rep->error && *rep->error)
		j->error = strdup(rep->error); /* on ENOMEM cc_wait falls back to cc_strerror */
	cc__reply__free_unpacked(rep, NULL);
}

/* The running stream whose Generate had id, or NULL. */
static struct cc_stream *stream_find(cc_client *c, uint64_t id)
{
	struct cc_stream *st;

	for (st = c->streams; st; st = st->next)
		if (st->id == id && !st->final)
			return st;
	return NULL;
}

/* Queue a streamed piece (rep is a GenPiece reply) on st, in arrival order. */
static void stream_piece(struct cc_stream *st, const Cc__GenPiece *gp)
{
	size_t len = gp->text.len, ntok = gp->n_tokens;
	struct cc__piece *pc;

	pc = malloc(sizeof(*pc) + ntok * sizeof(int32_t) + len + 1);
	if (!pc) {
		/* losing text silently would be worse than failing the stream */
		st->lost = -ENOMEM;
		return;
	}
	pc->next = NULL;
	pc->len = len;
	pc->ntok = ntok;
	if (ntok)
		memcpy(pc->tok, gp->tokens, ntok * sizeof(int32_t));
	pc->text = (char *)(pc->tok + ntok);
	if (len)
		memcpy(pc->text, gp->text.data, len);
	pc->text[len] = '\0';
	if (st->tail)
		st->tail->next = pc;
	else
		st->head = pc;
	st->tail = pc;
}

/* A reply with a stream's id: a piece is queued, anything else is the final reply. Consumes rep. */
static void stream_reply(struct cc_stream *st, Cc__Reply *rep)
{
	if (rep->code == 0 && rep->body_case == CC__REPLY__BODY_PIECE && rep->piece) {
		stream_piece(st, rep->piece);
		cc__reply__free_unpacked(rep, NULL);
		return;
	}
	st->final = rep;
}

/*
 * Read the replies already waiting, without blocking. The one for want (if
 * not 0) goes to *ret and reading stops there (1); replies to submitted
 * jobs are stored and those of running streams queued on them; anything
 * else (a late reply to a request that timed out or of a stream that was
 * freed, or a frame that does not parse) is dropped. At most DRAIN_MAX
 * replies are read per call, so that a waiter sees its stream's pieces even
 * while others keep coming. Returns 1, 0 (nothing for want yet) or -errno.
 */
#define DRAIN_MAX 256
static int drain(cc_client *c, uint64_t want, Cc__Reply **ret)
{
	int nread;

	for (nread = 0; nread < DRAIN_MAX; nread++) {
		zmq_msg_t msg;
		Cc__Reply *rep;
		struct cc_stream *st;
		struct cc__job *j;
		int more, n;

		zmq_msg_init(&msg);
		n = zmq_msg_recv(&msg, c->sock, ZMQ_DONTWAIT);
		if (n < 0) {
			int e = errno;

			zmq_msg_close(&msg);
			if (e == EAGAIN)
				return 0;
			if (e == EINTR)
				continue;
			return e == ETERM || e == ENOTSOCK ? -ECONNRESET : -e;
		}
		more = zmq_msg_more(&msg);
		rep = more ? NULL : cc__reply__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
		zmq_msg_close(&msg);
		/* ccd sends exactly one frame per reply: skip the rest of anything longer */
		while (more) {
			zmq_msg_init(&msg);
			if (zmq_msg_recv(&msg, c->sock, 0) < 0) {
				zmq_msg_close(&msg);
				break;
			}
			more = zmq_msg_more(&msg);
			zmq_msg_close(&msg);
		}
		if (!rep)
			continue;
		if (want && rep->id == want) {
			*ret = rep;
			return 1;
		}
		st = stream_find(c, rep->id);
		if (st) {
			stream_reply(st, rep);
			continue;
		}
		j = cc__job_find(c, rep->id);
		if (j && !j->done)
			store_reply(j, rep);
		else
			cc__reply__free_unpacked(rep, NULL);
	}
	return 0;
}

/*
 * Read replies until the one for id came (id not 0: into *ret) or ready(arg)
 * holds (ready not NULL), for up to timeout_ms (< 0: for ever). A silent
 * stretch of CC__LIVENESS_SLICE_MS checks that ccd is still alive.
 */
static int wait_loop(cc_client *c, uint64_t id, Cc__Reply **ret, int (*ready)(void *), void *arg, int timeout_ms)
{
	int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : 0;
	int pass;

	for (pass = 0;; pass++) {
		zmq_pollitem_t it = {.socket = c->sock, .events = ZMQ_POLLIN};
		int64_t left = -1;
		int r, slice;

		r = drain(c, id, ret);
		if (r > 0)
			return 0;
		if (r < 0)
			return r;
		if (ready && ready(arg))
			return 0;
		if (timeout_ms >= 0) {
			left = deadline - now_ms();
			if (left < 0)
				left = 0;
			/* replies for others (another stream's pieces) that keep coming must not hold off the deadline */
			if (left == 0 && pass > 0)
				return daemon_alive(c) ? -ETIMEDOUT : -ECONNRESET;
		}
		slice = left < 0 || left > CC__LIVENESS_SLICE_MS ? CC__LIVENESS_SLICE_MS : (int)left;
		r = zmq_poll(&it, 1, slice);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno == ETERM || errno == ENOTSOCK ? -ECONNRESET : -errno;
		}
		if (r > 0)
			continue;
		if (!daemon_alive(c))
			return -ECONNRESET;
		if (left >= 0 && left <= slice)
			return -ETIMEDOUT;
	}
}

int cc__wait_reply(cc_client *c, uint64_t id, int timeout_ms, Cc__Reply **ret)
{
	return wait_loop(c, id, ret, NULL, NULL, timeout_ms);
}

int cc__wait_until(cc_client *c, int (*ready)(void *arg), void *arg, int timeout_ms)
{
	if (ready(arg))
		return 0;
	return wait_loop(c, 0, NULL, ready, arg, timeout_ms);
}

int cc__send(cc_client *c, Cc__Request *req, uint64_t *ret_id)
{
	zmq_msg_t msg;
	size_t len;

	if (c->dead)
		return -ECONNRESET;
	req->id = c->next_id++;
	len = cc__request__get_packed_size(req);
	if (zmq_msg_init_size(&msg, len) < 0)
		return -ENOMEM;
	cc__request__pack(req, zmq_msg_data(&msg));
	while (zmq_msg_send(&msg, c->sock, 0) < 0) {
		int e = errno;

		if (e == EINTR)
			continue;
		zmq_msg_close(&msg);
		/* EAGAIN: the send timeout passed with the queue to ccd full */
		if (e == EAGAIN)
			return daemon_alive(c) ? -ETIMEDOUT : -ECONNRESET;
		return e == ETERM || e == ENOTSOCK ? -ECONNRESET : -e;
	}
	*ret_id = req->id;
	return 0;
}

int cc__call(cc_client *c, Cc__Request *req, int timeout_ms, Cc__Reply **ret)
{
	Cc__Reply *rep;
	uint64_t id;
	int r;

	r = cc__send(c, req, &id);
	if (r < 0)
		return r;
	r = cc__wait_reply(c, id, timeout_ms, &rep);
	if (r < 0)
		return r;
	r = cc__reply_code(c, rep);
	if (ret)
		*ret = rep;
	else
		cc__reply__free_unpacked(rep, NULL);
	return r;
}

/* Our name for `ccctl clients`: the kernel's comm of this process. */
static void process_name(char *buf, size_t size)
{
	ssize_t n = -1;
	int fd;

	fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, size - 1);
		close(fd);
	}
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/*
 * Fail fast when an ipc:// endpoint has no socket file: ZeroMQ's connect
 * would succeed and keep retrying in the background, so only the hello
 * timeout would tell. Abstract (ipc://@name) endpoints cannot be checked.
 */
static int ipc_probe(const char *endpoint)
{
	const char *path;
	struct stat st;

	if (strncmp(endpoint, "ipc://", 6) != 0)
		return 0;
	path = endpoint + 6;
	if (path[0] == '@')
		return 0;
	if (stat(path, &st) < 0)
		return errno == ENOENT || errno == ENOTDIR ? -ECONNREFUSED : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -ECONNREFUSED;
	return 0;
}

/* Say hello and check the daemon's answer. On a refusal its text is kept for cc_last_error(NULL). */
static int hello(cc_client *c)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__Hello h = CC__HELLO__INIT;
	Cc__Reply *rep = NULL;
	char name[64];
	int r;

	process_name(name, sizeof(name));
	h.proto_version = CC_PROTO_VERSION;
	h.pid = (uint32_t)getpid();
	h.name = name;
	req.body_case = CC__REQUEST__BODY_HELLO;
	req.hello = &h;
	r = cc__call(c, &req, c->hello_timeout_ms, &rep);
	if (r == -ETIMEDOUT)
		return -ECONNREFUSED; /* nobody answers on that endpoint */
	if (r < 0 && !rep)
		return r;
	if (r < 0) {
		copy_text(connect_error, sizeof(connect_error), c->last_error);
		goto out_reply;
	}
	if (rep->body_case != CC__REPLY__BODY_HELLO || !rep->hello) {
		r = -EPROTO;
		copy_text(connect_error, sizeof(connect_error), "ccd answered hello without a hello reply");
		goto out_reply;
	}
	if (rep->hello->proto_version != CC_PROTO_VERSION) {
		r = -EPROTO;
		snprintf(connect_error, sizeof(connect_error), "ccd speaks protocol version %u, libcc speaks %d",
		         rep->hello->proto_version, CC_PROTO_VERSION);
		goto out_reply;
	}
	/* a local daemon's pid tells us when it dies; a pid we cannot see (another namespace) is not used */
	c->daemon_pid = (pid_t)rep->hello->pid;
	if (strncmp(c->endpoint, "ipc://", 6) != 0 || c->daemon_pid <= 0 ||
	    (kill(c->daemon_pid, 0) < 0 && errno == ESRCH))
		c->daemon_pid = 0;
	r = 0;
out_reply:
	cc__reply__free_unpacked(rep, NULL);
	return r;
}

int cc_connect(const char *endpoint, cc_client **ret)
{
	char buf[CC__ENDPOINT_MAX];
	cc_client *c;
	int r, zero = 0, sndtimeo;

	connect_error[0] = '\0';
	if (!ret)
		return -EINVAL;
	if (!endpoint) {
		r = cc__endpoint_resolve(buf, sizeof(buf), 0);
		/* the default directory does not exist: ccd never ran as this user */
		if (r == -ENOENT)
			return -ECONNREFUSED;
		if (r < 0)
			return r;
		endpoint = buf;
	}
	if (!*endpoint)
		return -EINVAL;
	if (strlen(endpoint) >= CC__ENDPOINT_MAX)
		return -ENAMETOOLONG;
	r = ipc_probe(endpoint);
	if (r < 0)
		return r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	copy_text(c->endpoint, sizeof(c->endpoint), endpoint);
	c->next_id = 1;
	c->hello_timeout_ms = env_timeout(CC__HELLO_TIMEOUT_MS);
	c->control_timeout_ms = env_timeout(CC__CONTROL_TIMEOUT_MS);
	c->zctx = zmq_ctx_new();
	if (!c->zctx) {
		r = errno ? -errno : -ENOMEM;
		goto err_free;
	}
	c->sock = zmq_socket(c->zctx, ZMQ_DEALER);
	if (!c->sock) {
		r = errno ? -errno : -ENOMEM;
		goto err_ctx;
	}
	/* never let a queued message hold up close (e.g. a connect to a daemon that is not there) */
	sndtimeo = c->control_timeout_ms;
	if (zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
	    zmq_setsockopt(c->sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof(sndtimeo)) < 0) {
		r = -errno;
		goto err_sock;
	}
	if (zmq_connect(c->sock, endpoint) < 0) {
		r = -errno;
		goto err_sock;
	}
	r = hello(c);
	if (r < 0)
		goto err_sock;
	*ret = c;
	return 0;

err_sock:
	zmq_close(c->sock);
err_ctx:
	zmq_ctx_term(c->zctx);
err_free:
	free(c);
	return r;
}

void cc_close(cc_client *c)
{
	size_t i;

	if (!c)
		return;
	/* bye frees every region of ours in ccd at once; waiting for its answer makes that visible on return */
	if (!c->dead) {
		Cc__Request req = CC__REQUEST__INIT;
		Cc__Empty e = CC__EMPTY__INIT;
		int t = c->hello_timeout_ms;

		req.body_case = CC__REQUEST__BODY_BYE;
		req.bye = &e;
		(void)cc__call(c, &req, t, NULL);
	}
	while (c->tensors)
		cc__tensor_drop(c->tensors);
	/* bye ended the streams in ccd: like tensors, their handles go with the client */
	while (c->streams)
		cc__stream_drop(c->streams);
	for (i = 0; i < c->njobs; i++)
		free(c->jobs[i].error);
	free(c->jobs);
	zmq_close(c->sock);
	zmq_ctx_term(c->zctx);
	free(c);
}

const char *cc_last_error(const cc_client *c)
{
	return c ? c->last_error : connect_error;
}

int cc_default_endpoint(char *buf, size_t size)
{
	return cc__endpoint_default(buf, size, 1);
}

int cc_ping(cc_client *c)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__Empty e = CC__EMPTY__INIT;

	if (!c)
		return -EINVAL;
	req.body_case = CC__REQUEST__BODY_PING;
	req.ping = &e;
	return cc__call(c, &req, c->control_timeout_ms, NULL);
}

int cc_shutdown(cc_client *c)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__Empty e = CC__EMPTY__INIT;
	int r;

	if (!c)
		return -EINVAL;
	req.body_case = CC__REQUEST__BODY_SHUTDOWN;
	req.shutdown = &e;
	r = cc__call(c, &req, c->control_timeout_ms, NULL);
	/* the daemon is going away: later requests (and close's bye) must not wait for it */
	if (r == 0)
		c->dead = 1;
	return r;
}
