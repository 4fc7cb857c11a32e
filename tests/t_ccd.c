/* SPDX-License-Identifier: MIT */
/* t_ccd.c: helpers of the integration tests: start and stop a real ccd, raw ZeroMQ requests, memfds, watchdogs. */
#define _GNU_SOURCE
#include "t_ccd.h"

#include "cck.h"
#include "t_ref.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define T_MAX_DAEMONS 16
#define T_START_S 15.0  /* until a fresh ccd answers */
#define T_STOP_S 10.0   /* SIGTERM to exit */
#define T_CONNECT_S 5.0 /* cc_connect retries */
#define T_CALL_MS 20000 /* one raw request */
#define T_LOG_TAIL 6000 /* bytes of a daemon's log printed on failure */

/* Daemons started and not yet reaped, so that a watchdog or exit can kill them. */
static pid_t t_daemons[T_MAX_DAEMONS];
static pid_t t_owner; /* the process that started them (forked children must not kill them) */
static const char *t_watch_what = "test";
static int t_atexit_set;

double t_scale(void)
{
	static double s;
	const char *e;

	if (s > 0)
		return s;
	s = 1.0;
#if defined(__SANITIZE_ADDRESS__)
	s = 4.0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	s = 4.0;
#endif
#endif
	e = getenv("T_TIMEOUT_SCALE");
	if (e && atof(e) > 0)
		s *= atof(e);
	return s;
}

double t_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void t_msleep(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void t_kill_daemons(void)
{
	int i;

	if (getpid() != t_owner)
		return;
	for (i = 0; i < T_MAX_DAEMONS; i++)
		if (t_daemons[i] > 0)
			kill(t_daemons[i], SIGKILL);
}

static void t_on_alarm(int sig)
{
	static const char msg1[] = "\nFATAL: watchdog: the test hung (";
	static const char msg2[] = "); killing its daemons\n";
	ssize_t unused;

	(void)sig;
	unused = write(2, msg1, sizeof(msg1) - 1);
	unused = write(2, t_watch_what, strlen(t_watch_what));
	unused = write(2, msg2, sizeof(msg2) - 1);
	(void)unused;
	t_kill_daemons();
	_exit(1);
}

void t_watchdog(unsigned seconds, const char *what)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = t_on_alarm;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	t_watch_what = what ? what : "test";
	alarm((unsigned)ceil(seconds * t_scale()));
}

static void t_register(pid_t pid)
{
	int i;

	if (!t_atexit_set) {
		atexit(t_kill_daemons);
		t_atexit_set = 1;
	}
	t_owner = getpid();
	for (i = 0; i < T_MAX_DAEMONS; i++)
		if (t_daemons[i] <= 0) {
			t_daemons[i] = pid;
			return;
		}
}

static void t_unregister(pid_t pid)
{
	int i;

	for (i = 0; i < T_MAX_DAEMONS; i++)
		if (t_daemons[i] == pid)
			t_daemons[i] = 0;
}

static const char *t_tool_path(const char *env, const char *rel)
{
	const char *p = getenv(env);

	if (p && *p)
		return access(p, X_OK) == 0 ? p : NULL;
	return access(rel, X_OK) == 0 ? rel : NULL;
}

const char *t_ccd_path(void)
{
	const char *p = t_tool_path("CCD", "./daemon/ccd");

	if (!p) {
		fprintf(stderr, "SKIP: no ccd to test ($CCD='%s', ./daemon/ccd missing)\n",
		        getenv("CCD") ? getenv("CCD") : "");
		exit(T_EXIT_SKIP);
	}
	return p;
}

const char *t_ccctl_path(void)
{
	return t_tool_path("CCCTL", "./tools/ccctl/ccctl");
}

void t_ccd_dump_log(const struct t_ccd *d)
{
	char buf[T_LOG_TAIL + 1];
	ssize_t got;
	off_t size;
	int fd;

	fd = open(d->log, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "(no daemon log at %s)\n", d->log);
		return;
	}
	size = lseek(fd, 0, SEEK_END);
	lseek(fd, size > T_LOG_TAIL ? size - T_LOG_TAIL : 0, SEEK_SET);
	got = read(fd, buf, T_LOG_TAIL);
	close(fd);
	if (got < 0)
		got = 0;
	buf[got] = 0;
	fprintf(stderr, "---- ccd log (%s, last %zd bytes) ----\n%s%s---- end of ccd log ----\n", d->log, got, buf,
	        got && buf[got - 1] != '\n' ? "\n" : "");
}

static void t_rmdir_all(const char *dir)
{
	char path[512];
	struct dirent *e;
	DIR *dp;

	dp = opendir(dir);
	if (dp) {
		while ((e = readdir(dp))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
		closedir(dp);
	}
	rmdir(dir);
}

/* Split $CCD_WRAPPER (e.g. "valgrind --leak-check=full --error-exitcode=9") into argv words. */
static int t_wrapper_words(char *buf, size_t size, char **words, int max)
{
	const char *w = getenv("CCD_WRAPPER");
	char *save = NULL, *tok;
	int n = 0;

	if (!w || !*w)
		return 0;
	snprintf(buf, size, "%s", w);
	for (tok = strtok_r(buf, " \t", &save); tok && n < max; tok = strtok_r(NULL, " \t", &save))
		words[n++] = tok;
	return n;
}

int t_ccd_alive(struct t_ccd *d)
{
	pid_t r;

	if (d->pid <= 0)
		return 0;
	r = waitpid(d->pid, &d->status, WNOHANG);
	if (r == d->pid) {
		t_unregister(d->pid);
		d->pid = 0;
		return 0;
	}
	return 1;
}

int t_ccd_connect(const struct t_ccd *d, cc_client **ret)
{
	double end = t_now() + T_CONNECT_S * t_scale();
	int err;

	for (;;) {
		err = cc_connect(d->endpoint, ret);
		if (err != -ECONNREFUSED && err != -EAGAIN && err != -ENOENT && err != -ETIMEDOUT)
			return err;
		if (t_now() > end)
			return err;
		t_msleep(20);
	}
}

/* Fork and exec ccd (see t_ccd_start) without waiting for it. */
static int t_ccd_spawn(struct t_ccd *d, const char *const *args, const char *const *env)
{
	const char *ccd = t_ccd_path();
	const char *tmp = getenv("TMPDIR");
	char wbuf[512], *argv[64];
	pid_t parent = getpid();
	int logfd, argc = 0, i, err;

	memset(d, 0, sizeof(*d));
	/* An ipc:// path must fit in sun_path (108 bytes): fall back to /tmp for a long $TMPDIR. */
	if (!tmp || !*tmp || strlen(tmp) > 60)
		tmp = "/tmp";
	snprintf(d->dir, sizeof(d->dir), "%s/t_ccd.XXXXXX", tmp);
	if (!mkdtemp(d->dir)) {
		err = -errno;
		fprintf(stderr, "mkdtemp %s: %s\n", d->dir, strerror(errno));
		return err;
	}
	chmod(d->dir, 0700);
	snprintf(d->sock, sizeof(d->sock), "%s/ccd.sock", d->dir);
	snprintf(d->endpoint, sizeof(d->endpoint), "ipc://%s", d->sock);
	snprintf(d->log, sizeof(d->log), "%s/ccd.log", d->dir);
	logfd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (logfd < 0) {
		err = -errno;
		t_rmdir_all(d->dir);
		return err;
	}

	argc = t_wrapper_words(wbuf, sizeof(wbuf), argv, 16);
	argv[argc++] = (char *)ccd;
	argv[argc++] = (char *)"--foreground";
	argv[argc++] = (char *)"--endpoint";
	argv[argc++] = d->endpoint;
	for (i = 0; args && args[i] && argc < 62; i++)
		argv[argc++] = (char *)args[i];
	argv[argc] = NULL;

	fflush(stdout);
	fflush(stderr);
	d->pid = fork();
	if (d->pid < 0) {
		err = -errno;
		close(logfd);
		t_rmdir_all(d->dir);
		return err;
	}
	if (d->pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		/* Never outlive the test program. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		setenv("CC_ENDPOINT", d->endpoint, 1);
		/* The tests compare ccd's results with in-process libcck bit for bit: an OpenCL device past an op's
		 * crossover would change the last bits of inexact ops. test_ccd_gpu sets its backend with -o. */
		setenv("CC_BACKEND", "cpu", 0);
		for (i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		execvp(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(logfd);
	t_register(d->pid);
	return 0;
}

int t_ccd_start(struct t_ccd *d, const char *const *args, const char *const *env)
{
	struct stat st;
	double end;
	int i, err;

	err = t_ccd_spawn(d, args, env);
	if (err)
		return err;
	end = t_now() + T_START_S * t_scale();
	for (;;) {
		cc_client *c = NULL;

		if (!t_ccd_alive(d)) {
			fprintf(stderr,
			        "ccd exited before answering (wait status 0x%x); its extra arguments:", d->status);
			for (i = 0; args && args[i]; i++)
				fprintf(stderr, " %s", args[i]);
			fprintf(stderr, "\n");
			t_ccd_dump_log(d);
			t_rmdir_all(d->dir);
			return -ECHILD;
		}
		if (stat(d->sock, &st) == 0) {
			err = cc_connect(d->endpoint, &c);
			if (err == 0) {
				cc_close(c);
				return 0;
			}
		} else {
			err = -ENOENT;
		}
		if (t_now() > end) {
			fprintf(stderr, "ccd (pid %d) did not answer on %s within %.0f s: last error %d (%s)\n",
			        (int)d->pid, d->endpoint, T_START_S * t_scale(), err, cc_strerror(err));
			t_ccd_dump_log(d);
			kill(d->pid, SIGKILL);
			waitpid(d->pid, &d->status, 0);
			t_unregister(d->pid);
			d->pid = 0;
			t_rmdir_all(d->dir);
			return -ETIMEDOUT;
		}
		t_msleep(10);
	}
}

int t_ccd_run(const char *const *args, const char *const *env, double timeout_s, int *ret_status, char *out,
              size_t outlen)
{
	struct t_ccd d;
	double end;
	ssize_t got = 0;
	int fd, ret = 0;

	if (t_ccd_spawn(&d, args, env))
		return -ECHILD;
	end = t_now() + timeout_s * t_scale();
	while (t_ccd_alive(&d)) {
		if (t_now() > end) {
			kill(d.pid, SIGKILL);
			waitpid(d.pid, &d.status, 0);
			t_unregister(d.pid);
			d.pid = 0;
			ret = -ETIMEDOUT;
			break;
		}
		t_msleep(5);
	}
	*ret_status = d.status;
	fd = open(d.log, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && outlen) {
		got = read(fd, out, outlen - 1);
		close(fd);
	}
	if (outlen)
		out[got > 0 ? got : 0] = 0;
	t_rmdir_all(d.dir);
	return ret;
}

int t_ccd_stop(struct t_ccd *d)
{
	double end = t_now() + T_STOP_S * t_scale();
	int killed = 0, ret = 0;
	struct stat st;

	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		while (t_ccd_alive(d)) {
			if (t_now() > end) {
				fprintf(stderr, "ccd (pid %d) did not exit within %.0f s of SIGTERM: SIGKILL\n",
				        (int)d->pid, T_STOP_S * t_scale());
				kill(d->pid, SIGKILL);
				waitpid(d->pid, &d->status, 0);
				t_unregister(d->pid);
				d->pid = 0;
				killed = 1;
				break;
			}
			t_msleep(5);
		}
	}
	if (killed || !WIFEXITED(d->status) || WEXITSTATUS(d->status) != 0) {
		if (!killed) {
			if (WIFSIGNALED(d->status))
				fprintf(stderr, "ccd was killed by signal %d (%s)\n", WTERMSIG(d->status),
				        strsignal(WTERMSIG(d->status)));
			else
				fprintf(stderr, "ccd exited with status %d after SIGTERM (expected 0)\n",
				        WEXITSTATUS(d->status));
		}
		ret = -1;
	}
	if (!killed && stat(d->sock, &st) == 0) {
		fprintf(stderr, "ccd left its socket %s behind\n", d->sock);
		ret = -1;
	}
	if (ret)
		t_ccd_dump_log(d);
	else if (getenv("T_CCD_LOG"))
		t_ccd_dump_log(d);
	if (d->dir[0])
		t_rmdir_all(d->dir);
	d->dir[0] = 0;
	return ret;
}

/* ---- raw protocol ------------------------------------------------------------------------- */

int t_raw_open(struct t_raw *r, const char *endpoint)
{
	int zero = 0, err;

	memset(r, 0, sizeof(*r));
	r->next_id = 1000;
	r->ctx = zmq_ctx_new();
	if (!r->ctx)
		return -errno;
	r->sock = zmq_socket(r->ctx, ZMQ_DEALER);
	if (!r->sock) {
		err = -errno;
		goto err_ctx;
	}
	zmq_setsockopt(r->sock, ZMQ_LINGER, &zero, sizeof(zero));
	if (zmq_connect(r->sock, endpoint) != 0) {
		err = -errno;
		goto err_sock;
	}
	return 0;
err_sock:
	zmq_close(r->sock);
err_ctx:
	zmq_ctx_term(r->ctx);
	memset(r, 0, sizeof(*r));
	return err;
}

void t_raw_close(struct t_raw *r)
{
	if (r->sock)
		zmq_close(r->sock);
	if (r->ctx)
		zmq_ctx_term(r->ctx);
	memset(r, 0, sizeof(*r));
}

int t_raw_send_bytes(struct t_raw *r, const void *buf, size_t len, int more)
{
	if (zmq_send(r->sock, buf, len, more ? ZMQ_SNDMORE : 0) < 0)
		return -errno;
	return 0;
}

int t_raw_send(struct t_raw *r, const Cc__Request *req)
{
	size_t len = cc__request__get_packed_size(req);
	uint8_t *buf = malloc(len ? len : 1);
	int err;

	if (!buf)
		return -ENOMEM;
	cc__request__pack(req, buf);
	err = t_raw_send_bytes(r, buf, len, 0);
	free(buf);
	return err;
}

int t_raw_recv(struct t_raw *r, int timeout_ms, Cc__Reply **ret)
{
	zmq_pollitem_t it = {r->sock, 0, ZMQ_POLLIN, 0};
	int tmo = (int)(timeout_ms * t_scale());
	Cc__Reply *rep = NULL;
	zmq_msg_t msg;
	int parts = 0, more = 0, rc;
	size_t moresz = sizeof(more);

	rc = zmq_poll(&it, 1, tmo);
	if (rc < 0)
		return -errno;
	if (rc == 0)
		return -ETIMEDOUT;
	do {
		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, r->sock, 0) < 0) {
			rc = -errno;
			zmq_msg_close(&msg);
			return rc;
		}
		if (parts++ == 0)
			rep = cc__reply__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
		zmq_getsockopt(r->sock, ZMQ_RCVMORE, &more, &moresz);
		zmq_msg_close(&msg);
	} while (more);
	if (parts != 1 || !rep) {
		fprintf(stderr, "raw client: the daemon sent %s\n",
		        parts != 1 ? "a multipart message" : "a frame that is not a Reply");
		if (rep)
			cc__reply__free_unpacked(rep, NULL);
		return -EBADMSG;
	}
	*ret = rep;
	return 0;
}

int t_raw_call(struct t_raw *r, Cc__Request *req, Cc__Reply **ret)
{
	double end = t_now() + T_CALL_MS / 1000.0 * t_scale();
	Cc__Reply *rep;
	int err;

	req->id = r->next_id++;
	err = t_raw_send(r, req);
	if (err)
		return err;
	for (;;) {
		int left = (int)((end - t_now()) * 1000 / t_scale());

		if (left <= 0)
			return -ETIMEDOUT;
		err = t_raw_recv(r, left, &rep);
		if (err)
			return err;
		if (rep->id == req->id) {
			*ret = rep;
			return 0;
		}
		cc__reply__free_unpacked(rep, NULL); /* a late answer to an earlier abusive frame */
	}
}

int t_raw_hello(struct t_raw *r, uint32_t version)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__Hello h = CC__HELLO__INIT;
	Cc__Reply *rep;
	int err;

	h.proto_version = version;
	h.pid = (uint32_t)getpid();
	h.name = (char *)"t_raw";
	req.body_case = CC__REQUEST__BODY_HELLO;
	req.hello = &h;
	err = t_raw_call(r, &req, &rep);
	if (err)
		return err;
	err = rep->code;
	cc__reply__free_unpacked(rep, NULL);
	return err;
}

int t_raw_empty(struct t_raw *r, Cc__Request__BodyCase body, Cc__Reply **ret)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__Empty e = CC__EMPTY__INIT;

	req.body_case = body;
	switch (body) {
	case CC__REQUEST__BODY_STATUS:
		req.status = &e;
		break;
	case CC__REQUEST__BODY_CLIENTS:
		req.clients = &e;
		break;
	case CC__REQUEST__BODY_KERNELS:
		req.kernels = &e;
		break;
	case CC__REQUEST__BODY_SHUTDOWN:
		req.shutdown = &e;
		break;
	case CC__REQUEST__BODY_PING:
		req.ping = &e;
		break;
	case CC__REQUEST__BODY_BYE:
		req.bye = &e;
		break;
	default:
		return -EINVAL;
	}
	return t_raw_call(r, &req, ret);
}

static int t_raw_code(struct t_raw *r, Cc__Request *req, char *err, size_t errlen, double *ret_value)
{
	Cc__Reply *rep;
	int e;

	if (err && errlen)
		err[0] = 0;
	e = t_raw_call(r, req, &rep);
	if (e)
		return e;
	e = rep->code;
	if (err && errlen)
		snprintf(err, errlen, "%s", rep->error ? rep->error : "");
	if (ret_value && rep->body_case == CC__REPLY__BODY_OP && rep->op)
		*ret_value = rep->op->value;
	cc__reply__free_unpacked(rep, NULL);
	return e;
}

int t_raw_region_add(struct t_raw *r, uint64_t id, int fd, uint64_t size, char *err, size_t errlen)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__RegionAdd ra = CC__REGION_ADD__INIT;

	ra.region_id = id;
	ra.fd = fd;
	ra.size = size;
	req.body_case = CC__REQUEST__BODY_REGION_ADD;
	req.region_add = &ra;
	return t_raw_code(r, &req, err, errlen, NULL);
}

int t_raw_region_free(struct t_raw *r, uint64_t id)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__RegionFree rf = CC__REGION_FREE__INIT;

	rf.region_id = id;
	req.body_case = CC__REQUEST__BODY_REGION_FREE;
	req.region_free = &rf;
	return t_raw_code(r, &req, NULL, 0, NULL);
}

void t_tref(Cc__TensorRef *t, uint64_t region, uint64_t offset, uint64_t len)
{
	cc__tensor_ref__init(t);
	t->region_id = region;
	t->offset = offset;
	t->len = len;
	t->dtype = CC__DTYPE__DTYPE_F32;
}

int t_raw_op(struct t_raw *r, const char *op, Cc__TensorRef *const *inputs, size_t nin, Cc__TensorRef *output,
             const float *params, size_t nparams, uint64_t m, uint64_t k, uint64_t n, double *ret_value, char *err,
             size_t errlen)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__OpRequest o = CC__OP_REQUEST__INIT;

	o.op = (char *)op;
	o.n_inputs = nin;
	o.inputs = (Cc__TensorRef **)inputs;
	o.output = output;
	o.n_params = nparams;
	o.params = (float *)params;
	o.m = m;
	o.k = k;
	o.n = n;
	req.body_case = CC__REQUEST__BODY_OP;
	req.op = &o;
	return t_raw_code(r, &req, err, errlen, ret_value);
}

unsigned t_seals_all(void)
{
	return F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
}

int t_memfd(size_t size, unsigned seals, void **ret_map)
{
	void *map = NULL;
	int fd, err;

	fd = memfd_create("t_ccd", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) != 0) {
		err = -errno;
		goto err_fd;
	}
	if (size) {
		map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED) {
			err = -errno;
			goto err_fd;
		}
	}
	if (seals && fcntl(fd, F_ADD_SEALS, seals) != 0) {
		err = -errno;
		goto err_map;
	}
	if (ret_map)
		*ret_map = map;
	else if (map)
		munmap(map, size);
	return fd;
err_map:
	if (map)
		munmap(map, size);
err_fd:
	close(fd);
	return err;
}

int t_raw_status(struct t_raw *r, Cc__Reply **ret)
{
	int err = t_raw_empty(r, CC__REQUEST__BODY_STATUS, ret);

	if (err)
		return err;
	if ((*ret)->code || (*ret)->body_case != CC__REPLY__BODY_STATUS || !(*ret)->status) {
		err = (*ret)->code ? (*ret)->code : -EBADMSG;
		fprintf(stderr, "status request failed: %d %s\n", (*ret)->code, (*ret)->error ? (*ret)->error : "");
		cc__reply__free_unpacked(*ret, NULL);
		return err;
	}
	return 0;
}

int t_raw_clients(struct t_raw *r, Cc__Reply **ret)
{
	int err = t_raw_empty(r, CC__REQUEST__BODY_CLIENTS, ret);

	if (err)
		return err;
	if ((*ret)->code || (*ret)->body_case != CC__REPLY__BODY_CLIENTS || !(*ret)->clients) {
		err = (*ret)->code ? (*ret)->code : -EBADMSG;
		fprintf(stderr, "clients request failed: %d %s\n", (*ret)->code, (*ret)->error ? (*ret)->error : "");
		cc__reply__free_unpacked(*ret, NULL);
		return err;
	}
	return 0;
}

int t_proc_nfds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *dp;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dp = opendir(path);
	if (!dp)
		return -1;
	while ((e = readdir(dp)))
		if (e->d_name[0] != '.')
			n++;
	closedir(dp);
	return n;
}

int t_proc_nfds_settle(pid_t pid, int max, double seconds)
{
	double end = t_now() + seconds * t_scale();
	int n;

	while ((n = t_proc_nfds(pid)) > max && t_now() < end)
		t_msleep(10);
	return n;
}

int t_proc_nmemfd_maps(pid_t pid)
{
	char path[64], line[1024];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "/memfd:"))
			n++;
	fclose(f);
	return n;
}

int t_has_number(const char *text, uint64_t v)
{
	const char *p = text;

	while (p && *p) {
		if (isdigit((unsigned char)*p)) {
			char *end;
			unsigned long long x = strtoull(p, &end, 10);

			if (x == v && (p == text || !isdigit((unsigned char)p[-1])))
				return 1;
			p = end;
		} else {
			p++;
		}
	}
	return 0;
}

int t_json_number(const char *json, const char *key, double *ret)
{
	char pat[128];
	const char *p;
	char *end;
	double v;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	p = strstr(json, pat);
	if (!p)
		return -ENOENT;
	p += strlen(pat);
	while (isspace((unsigned char)*p))
		p++;
	if (*p++ != ':')
		return -ENOENT;
	v = strtod(p, &end);
	if (end == p)
		return -ENOENT;
	*ret = v;
	return 0;
}

size_t t_f32_diff(const float *a, const float *b, size_t n)
{
	size_t i;

	if (n == 0 || !memcmp(a, b, n * sizeof(float)))
		return n;
	for (i = 0; i < n; i++) {
		uint32_t x, y;

		memcpy(&x, &a[i], 4);
		memcpy(&y, &b[i], 4);
		if (x != y && !(isnan(a[i]) && isnan(b[i])))
			return i;
	}
	return n;
}

int t_f64_same(double a, double b)
{
	return !memcmp(&a, &b, sizeof(a)) || (isnan(a) && isnan(b));
}

void *t_alloc_pages(size_t bytes)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, bytes ? bytes : 1))
		return NULL;
	return p;
}

size_t t_matmul_side(double target_s, size_t cap)
{
	size_t s = 128;
	double dt;

	for (;;) {
		float *A = t_alloc_pages(s * s * 4), *C = t_alloc_pages(s * s * 4);
		double t0;

		if (!A || !C) {
			free(A);
			free(C);
			return s;
		}
		memset(A, 0, s * s * 4);
		t0 = t_now();
		cck_matmul_f32(A, A, C, s, s, s);
		dt = t_now() - t0;
		free(A);
		free(C);
		if (dt >= target_s / 8 || s >= cap)
			break;
		s *= 2;
	}
	/* time grows as s^3: 1.25^3 = 1.953125 */
	while (dt < target_s && s < cap) {
		s = s * 5 / 4;
		dt *= 1.953125;
	}
	return s < cap ? s : cap;
}

int t_fixture_up(struct t_ccd *d, const char *const *args, cc_client **c, struct t_raw *r)
{
	int err;

	if (cck_set_threads(1) != 1 || cck_force_tier("auto") != 0) {
		fprintf(stderr, "cannot set libcck to 1 thread / auto tier\n");
		return -1;
	}
	t_watchdog(60, "daemon start");
	if (t_ccd_start(d, args, NULL))
		return -1;
	err = t_ccd_connect(d, c);
	if (err) {
		fprintf(stderr, "cc_connect %s: %s\n", d->endpoint, cc_strerror(err));
		goto stop;
	}
	if (t_raw_open(r, d->endpoint) || t_raw_hello(r, CC_PROTO_VERSION) != 0) {
		fprintf(stderr, "raw hello to %s failed\n", d->endpoint);
		goto close;
	}
	return 0;
close:
	cc_close(*c);
	*c = NULL;
stop:
	t_ccd_stop(d);
	return -1;
}

int t_fixture_down(struct t_ccd *d, cc_client **c, struct t_raw *r)
{
	t_watchdog(60, "daemon stop");
	t_raw_close(r);
	cc_close(*c);
	*c = NULL;
	return t_ccd_stop(d) ? -1 : 0;
}

const char *t_healthy_check(struct t_ccd *d, cc_client *c, size_t n)
{
	static __thread char why[160];
	cc_tensor *x = NULL, *y = NULL;
	float ref[4096], *dx, *dy;
	double v = 0, vl = 0;
	struct t_rng rng;
	int e;

	if (n > 4096)
		n = 4096;
	if (!t_ccd_alive(d)) {
		snprintf(why, sizeof(why), "ccd died (wait status 0x%x)", d->status);
		return why;
	}
	if ((e = cc_tensor_new(c, CC_DTYPE_F32, n, &x)) || (e = cc_tensor_new(c, CC_DTYPE_F32, n, &y))) {
		snprintf(why, sizeof(why), "cc_tensor_new: %s", cc_strerror(e));
		goto out;
	}
	dx = cc_tensor_data(x);
	dy = cc_tensor_data(y);
	t_rng_seed(&rng, (uint64_t)(t_now() * 1e6));
	for (size_t i = 0; i < n; i++)
		dx[i] = (float)t_rng_uniform(&rng, -3, 3);
	why[0] = 0;
	if ((e = cc_unary(c, "tanh", x, y, NULL, 0)) || cck_unary_f32(CCK_OP_TANH, dx, ref, n, NULL))
		snprintf(why, sizeof(why), "tanh: %s", cc_strerror(e));
	else if (t_f32_diff(dy, ref, n) != n)
		snprintf(why, sizeof(why), "the healthy client got a wrong tanh");
	else if ((e = cc_reduce(c, "dot", x, y, &v)) || cck_reduce2_f32(CCK_OP_DOT, dx, dy, n, &vl))
		snprintf(why, sizeof(why), "dot: %s", cc_strerror(e));
	else if (!t_f64_same(v, vl))
		snprintf(why, sizeof(why), "the healthy client got a wrong dot: %a vs %a", v, vl);
	else if ((e = cc_ping(c)))
		snprintf(why, sizeof(why), "ping: %s", cc_strerror(e));
out:
	cc_tensor_free(x);
	cc_tensor_free(y);
	return why[0] ? why : NULL;
}

/* ---- test models ----------------------------------------------------------------------------- */

/* t_models_dir(), t_model() and t_smollm2() are in t_models.c (the in-process tests share them). */

int t_write_no_tokenizer(const char *src, const char *dst)
{
	unsigned char *buf = NULL;
	size_t len = 0, i, hits = 0;
	FILE *f = fopen(src, "rb");
	long end;
	int ok = 0;

	if (f && fseek(f, 0, SEEK_END) == 0 && (end = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
		len = (size_t)end;
		buf = malloc(len);
		ok = buf && fread(buf, 1, len, f) == len;
	}
	if (f)
		fclose(f);
	for (i = 0; ok && i + 20 <= len; i++)
		if (memcmp(buf + i, "tokenizer.ggml.model", 20) == 0) {
			buf[i + 19] = '_'; /* the key becomes tokenizer.ggml.mode_: no tokenizer model named */
			hits++;
		}
	if (ok && hits == 1) {
		f = fopen(dst, "wb");
		ok = f && fwrite(buf, 1, len, f) == len;
		if (f && fclose(f))
			ok = 0;
	}
	free(buf);
	if (!ok || hits != 1) {
		fprintf(stderr, "t_write_no_tokenizer %s -> %s: %s\n", src, dst,
		        ok ? "the key tokenizer.ggml.model is not there exactly once" : "cannot read or write");
		return -1;
	}
	return 0;
}

/*
 * Run $CCCTL --endpoint EP ARGS... (NULL-terminated), its stdout and stderr into out. Returns its exit status,
 * or -1 when there is no ccctl (out then says so).
 */
int t_ccctl(const struct t_ccd *dd, char *out, size_t outlen, ...)
{
	const char *ccctl = t_ccctl_path();
	char *argv[16], path[256];
	posix_spawn_file_actions_t fa;
	double end = t_now() + 60 * t_scale();
	int argc = 0, st = 0, fd, timed_out = 0;
	ssize_t got;
	va_list ap;
	pid_t pid;

	out[0] = 0;
	if (!ccctl) {
		snprintf(out, outlen, "no ccctl ($CCCTL)");
		return -1;
	}
	argv[argc++] = (char *)ccctl;
	argv[argc++] = (char *)"--endpoint";
	argv[argc++] = (char *)dd->endpoint;
	va_start(ap, outlen);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	snprintf(path, sizeof(path), "%s/ccctl.out", dd->dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(out, outlen, "cannot create %s: %s", path, strerror(errno));
		return 125;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd, 1);
	posix_spawn_file_actions_adddup2(&fa, fd, 2);
	st = posix_spawn(&pid, ccctl, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (st != 0) {
		close(fd);
		snprintf(out, outlen, "cannot run %s: %s", ccctl, strerror(st));
		return 126;
	}
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (t_now() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			timed_out = 1;
			break;
		}
		t_msleep(5);
	}
	got = pread(fd, out, outlen - 1, 0);
	out[got > 0 ? got : 0] = 0;
	close(fd);
	unlink(path);
	if (timed_out) {
		snprintf(out, outlen, "ccctl %s did not exit within 60 s", argc > 3 ? argv[3] : "");
		return 124;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void t_mismatch(unsigned *nfail, unsigned *nprinted, unsigned max, const char *fmt, ...)
{
	va_list ap;

	(*nfail)++;
	if ((*nprinted)++ >= max)
		return;
	va_start(ap, fmt);
	fputs("MISMATCH: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}
