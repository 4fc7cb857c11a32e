/* SPDX-License-Identifier: MIT */
/* test_ccd_abuse.c: malformed, hostile and over-limit requests to a real ccd get error replies; other clients never
 * notice. */
/*
 * Every case checks the error (code, and the words the design promises in the text), that no
 * kernel touched memory (the regions are compared byte for byte), and afterwards that the daemon
 * is alive and a healthy libcc client still gets exact results.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>
#include <zmq.h>

#include "cck.h"
#include "t_ccd.h"
#include "t_ref.h"

#define T_NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define T_MAX_MSG 65536 /* -o max_message_bytes for the shared daemon */
#define T_ANY -100000   /* "any negative code" */
#define T_REGION_BYTES 65536

static struct t_ccd t_d;
static cc_client *t_c;   /* the healthy client */
static struct t_raw t_r; /* a raw client that said hello and owns region 1 */
static float *t_reg;     /* region 1, T_REGION_BYTES, mapped here */
static int t_regfd;
static unsigned t_nfail;

static int t_group_setup(void **state)
{
	static const char *const args[] = {"-o", "max_message_bytes=65536", NULL};
	char err[256];
	int e;

	(void)state;
	if (t_fixture_up(&t_d, args, &t_c, &t_r))
		return -1;
	t_regfd = t_memfd(T_REGION_BYTES, t_seals_all(), (void **)&t_reg);
	if (t_regfd < 0)
		return -1;
	e = t_raw_region_add(&t_r, 1, t_regfd, T_REGION_BYTES, err, sizeof(err));
	if (e) {
		fprintf(stderr, "region_add of a good sealed memfd failed: %d %s\n", e, err);
		return -1;
	}
	return 0;
}

static int t_group_teardown(void **state)
{
	(void)state;
	munmap(t_reg, T_REGION_BYTES);
	close(t_regfd);
	return t_fixture_down(&t_d, &t_c, &t_r);
}

static int t_setup(void **state)
{
	(void)state;
	t_nfail = 0;
	t_watchdog(120, "test_ccd_abuse");
	return 0;
}

static void t_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void t_bad(const char *fmt, ...)
{
	va_list ap;

	t_nfail++;
	va_start(ap, fmt);
	fputs("FAIL: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/*
 * Check one refused request: code == want (T_ANY: any negative), error text non-empty and
 * containing each of the NULL-terminated needles (case-insensitive).
 */
static void t_expect(const char *what, int got, int want, const char *text, ...)
{
	const char *needle;
	va_list ap;

	if (want == T_ANY ? got >= 0 : got != want) {
		t_bad("%s: code %d (%s), expected %s%d", what, got, got ? strerror(-got) : "success",
		      want == T_ANY ? "any negative, not " : "", want == T_ANY ? 0 : want);
		return;
	}
	if (!text || !*text) {
		t_bad("%s: code %d but no error text", what, got);
		return;
	}
	va_start(ap, text);
	while ((needle = va_arg(ap, const char *)))
		if (!strcasestr(text, needle))
			t_bad("%s: error text '%s' does not mention '%s'", what, text, needle);
	va_end(ap);
}

/* The daemon is alive and the healthy client gets exact results. */
static void t_healthy(void)
{
	const char *why = t_healthy_check(&t_d, t_c, 1003);

	if (why)
		fail_msg("%s", why);
}

static void t_finish(void)
{
	t_healthy();
	assert_int_equal(t_nfail, 0);
}

/* Receive one reply expected to refuse something; returns its code (or -ETIMEDOUT). */
static int t_recv_code(struct t_raw *r, int timeout_ms, uint64_t *ret_id, char *text, size_t len)
{
	Cc__Reply *rep;
	int err = t_raw_recv(r, timeout_ms, &rep);

	if (err)
		return err == -ETIMEDOUT ? -ETIMEDOUT : INT_MIN;
	if (ret_id)
		*ret_id = rep->id;
	if (text)
		snprintf(text, len, "%s", rep->error ? rep->error : "");
	err = rep->code;
	cc__reply__free_unpacked(rep, NULL);
	return err;
}

/* Serialize a request into a malloc'd buffer. */
static uint8_t *t_pack(const Cc__Request *req, size_t *len)
{
	uint8_t *buf;

	*len = cc__request__get_packed_size(req);
	buf = malloc(*len + 1);
	assert_non_null(buf);
	cc__request__pack(req, buf);
	return buf;
}

/* ---- frames ------------------------------------------------------------------------------ */

/* Random bytes that do not parse as a Request: each answered with an error (id 0). */
static void test_garbage_frames(void **state)
{
	struct t_raw r;
	struct t_rng g;
	unsigned sent = 0, tries;
	char text[256];

	(void)state;
	assert_int_equal(t_raw_open(&r, t_d.endpoint), 0);
	assert_int_equal(t_raw_hello(&r, CC_PROTO_VERSION), 0);
	t_rng_seed(&g, 4711);
	for (tries = 0; sent < 64 && tries < 10000; tries++) {
		uint8_t buf[600];
		size_t len = 1 + t_rng_below(&g, sizeof(buf)), i;
		Cc__Request *parsed;
		uint64_t id = 12345;
		int code;

		for (i = 0; i < len; i++)
			buf[i] = (uint8_t)t_rng_u64(&g);
		parsed = cc__request__unpack(NULL, len, buf);
		if (parsed) { /* protobuf is permissive: this one happens to be a valid message */
			cc__request__free_unpacked(parsed, NULL);
			continue;
		}
		assert_int_equal(t_raw_send_bytes(&r, buf, len, 0), 0);
		code = t_recv_code(&r, 5000, &id, text, sizeof(text));
		if (code == -ETIMEDOUT)
			t_bad("garbage frame %u (%zu bytes): no reply", sent, len);
		else
			t_expect("garbage frame", code, T_ANY, text, NULL);
		if (code != -ETIMEDOUT && id != 0)
			t_bad("garbage frame: the reply has id %llu, expected 0 (unparsed)", (unsigned long long)id);
		sent++;
	}
	print_message("%u garbage frames answered\n", sent);
	t_raw_close(&r);
	t_finish();
}

/* Every message is one frame: two- and three-part messages are refused, nothing in them runs. */
static void test_multipart(void **state)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__Empty e = CC__EMPTY__INIT;
	struct t_raw r;
	uint8_t *buf;
	size_t len;
	char text[256];
	int code, nrep, variant;

	(void)state;
	assert_int_equal(t_raw_open(&r, t_d.endpoint), 0);
	assert_int_equal(t_raw_hello(&r, CC_PROTO_VERSION), 0);
	req.id = 5;
	req.body_case = CC__REQUEST__BODY_PING;
	req.ping = &e;
	buf = t_pack(&req, &len);
	for (variant = 0; variant < 3; variant++) {
		assert_int_equal(t_raw_send_bytes(&r, buf, len, 1), 0);
		if (variant == 0) {
			assert_int_equal(t_raw_send_bytes(&r, buf, len, 0), 0); /* ping + ping */
		} else if (variant == 1) {
			assert_int_equal(t_raw_send_bytes(&r, "junk", 4, 1), 0); /* ping + junk + empty */
			assert_int_equal(t_raw_send_bytes(&r, "", 0, 0), 0);
		} else {
			assert_int_equal(t_raw_send_bytes(&r, "", 0, 0), 0); /* ping + empty */
		}
		nrep = 0;
		/* after the first reply, 300 ms (unscaled) for any further one */
		while ((code = t_recv_code(&r, nrep ? (int)(300 / t_scale()) : 5000, NULL, text, sizeof(text))) !=
		       -ETIMEDOUT) {
			nrep++;
			t_expect("multipart message", code, T_ANY, text, NULL);
		}
		if (nrep == 0)
			t_bad("multipart message (variant %d): no reply", variant);
	}
	free(buf);
	t_raw_close(&r);
	t_finish();
}

/* A zero-length frame parses as a Request with no body: refused. */
static void test_empty_frame(void **state)
{
	char text[256];
	int code;

	(void)state;
	assert_int_equal(t_raw_send_bytes(&t_r, "", 0, 0), 0);
	code = t_recv_code(&t_r, 5000, NULL, text, sizeof(text));
	if (code == -ETIMEDOUT)
		t_bad("empty frame: no reply");
	else
		t_expect("empty frame", code, T_ANY, text, NULL);
	t_finish();
}

/* Every prefix of a valid op request is refused (and runs nothing); the whole one then works. */
static void test_truncated(void **state)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__OpRequest op = CC__OP_REQUEST__INIT;
	Cc__TensorRef x, y, *in[1] = {&x};
	float ref[100], before[T_REGION_BYTES / 4];
	uint8_t *buf;
	size_t len, cut, i;
	char text[256];
	int code;

	(void)state;
	for (i = 0; i < T_REGION_BYTES / 4; i++)
		t_reg[i] = (float)i * 0.25f - 40;
	memcpy(before, t_reg, sizeof(before));
	t_tref(&x, 1, 0, 100);
	t_tref(&y, 1, 400, 100);
	op.op = (char *)"relu";
	op.n_inputs = 1;
	op.inputs = in;
	op.output = &y;
	req.id = 4242;
	req.body_case = CC__REQUEST__BODY_OP;
	req.op = &op;
	buf = t_pack(&req, &len);
	for (cut = 0; cut < len; cut++) {
		char what[96];

		snprintf(what, sizeof(what), "request cut at %zu of %zu bytes", cut, len);
		assert_int_equal(t_raw_send_bytes(&t_r, buf, cut, 0), 0);
		code = t_recv_code(&t_r, 5000, NULL, text, sizeof(text));
		if (code == -ETIMEDOUT)
			t_bad("%s: no reply", what);
		else
			t_expect(what, code, T_ANY, text, NULL);
	}
	if (memcmp(before, t_reg, sizeof(before)))
		t_bad("a truncated request changed the region");
	/* the whole request runs */
	assert_int_equal(t_raw_send_bytes(&t_r, buf, len, 0), 0);
	code = t_recv_code(&t_r, 5000, NULL, text, sizeof(text));
	if (code != 0)
		t_bad("the untruncated request failed: %d %s", code, text);
	assert_int_equal(cck_unary_f32(CCK_OP_RELU, before, ref, 100, NULL), 0);
	if (t_f32_diff(t_reg + 100, ref, 100) != 100)
		t_bad("the untruncated relu is wrong");
	free(buf);
	t_finish();
}

/* Nothing but hello and ping before hello. */
static void test_before_hello(void **state)
{
	Cc__TensorRef x, y, *in[1] = {&x};
	struct t_raw r;
	Cc__Reply *rep;
	char text[256];
	int code, fd, nfd0 = t_proc_nfds(t_d.pid);
	Cc__Request__BodyCase admin[] = {CC__REQUEST__BODY_STATUS, CC__REQUEST__BODY_CLIENTS, CC__REQUEST__BODY_KERNELS,
	                                 CC__REQUEST__BODY_BYE};
	size_t i;

	(void)state;
	assert_int_equal(t_raw_open(&r, t_d.endpoint), 0);
	assert_int_equal(t_raw_empty(&r, CC__REQUEST__BODY_PING, &rep), 0);
	if (rep->code != 0)
		t_bad("ping before hello: code %d (%s), expected 0", rep->code, rep->error);
	cc__reply__free_unpacked(rep, NULL);
	t_tref(&x, 1, 0, 10);
	t_tref(&y, 1, 64, 10);
	code = t_raw_op(&r, "relu", in, 1, &y, NULL, 0, 0, 0, 0, NULL, text, sizeof(text));
	t_expect("op before hello", code, -EPROTO, text, "hello", NULL);
	fd = t_memfd(4096, t_seals_all(), NULL);
	assert_true(fd >= 0);
	code = t_raw_region_add(&r, 1, fd, 4096, text, sizeof(text));
	t_expect("region_add before hello", code, -EPROTO, text, "hello", NULL);
	code = t_raw_region_free(&r, 1);
	if (code != -EPROTO)
		t_bad("region_free before hello: code %d, expected -EPROTO", code);
	for (i = 0; i < T_NELEM(admin); i++) {
		assert_int_equal(t_raw_empty(&r, admin[i], &rep), 0);
		t_expect("admin request before hello", rep->code, -EPROTO, rep->error, "hello", NULL);
		cc__reply__free_unpacked(rep, NULL);
	}
	close(fd);
	t_raw_close(&r);
	/* the raw connection's own fd goes a moment after it closed; nothing else may stay */
	if (nfd0 >= 0 && t_proc_nfds_settle(t_d.pid, nfd0, 2) > nfd0)
		t_bad("ccd's open fds went from %d to %d", nfd0, t_proc_nfds(t_d.pid));
	t_finish();
}

/* A hello with another protocol version is refused with both versions named. */
static void test_wrong_version(void **state)
{
	static const uint32_t versions[] = {0, 2, 99, 0xffffffffu};
	Cc__Request req = CC__REQUEST__INIT;
	Cc__Hello h = CC__HELLO__INIT;
	struct t_raw r;
	Cc__Reply *rep;
	size_t i;

	(void)state;
	for (i = 0; i < T_NELEM(versions); i++) {
		char what[64];

		snprintf(what, sizeof(what), "hello with version %u", versions[i]);
		assert_int_equal(t_raw_open(&r, t_d.endpoint), 0);
		h.proto_version = versions[i];
		h.pid = (uint32_t)getpid();
		h.name = (char *)"wrong-version";
		req.body_case = CC__REQUEST__BODY_HELLO;
		req.hello = &h;
		assert_int_equal(t_raw_call(&r, &req, &rep), 0);
		t_expect(what, rep->code, -EPROTO, rep->error, "version", NULL);
		if (rep->code && rep->error && versions[i] &&
		    (!t_has_number(rep->error, versions[i]) || !t_has_number(rep->error, CC_PROTO_VERSION)))
			t_bad("%s: error text '%s' does not name both versions (%u and %u)", what, rep->error,
			      versions[i], CC_PROTO_VERSION);
		if (rep->body_case == CC__REPLY__BODY_HELLO)
			t_bad("%s: the refusal carries a HelloReply", what);
		cc__reply__free_unpacked(rep, NULL);
		/* still not a client */
		assert_int_equal(t_raw_empty(&r, CC__REQUEST__BODY_STATUS, &rep), 0);
		if (rep->code != -EPROTO)
			t_bad("%s, then status: code %d, expected -EPROTO (hello first)", what, rep->code);
		cc__reply__free_unpacked(rep, NULL);
		t_raw_close(&r);
	}
	t_finish();
}

/* ---- op requests --------------------------------------------------------------------------- */

static void t_reg_pattern(void)
{
	size_t i;

	for (i = 0; i < T_REGION_BYTES / 4; i++)
		t_reg[i] = (float)((i * 2654435761u) % 1000) * 0.01f - 5;
}

static void test_unknown_op(void **state)
{
	static const char *const names[] = {"foo", "", "RELU", "relu ", "matmul2", "sum;rm -rf"};
	cc_tensor *x, *y;
	Cc__TensorRef a, o, *in[1] = {&a};
	char text[256], what[96], longname[2000];
	size_t i;
	int code;

	(void)state;
	assert_int_equal(cc_tensor_new(t_c, CC_DTYPE_F32, 10, &x), 0);
	assert_int_equal(cc_tensor_new(t_c, CC_DTYPE_F32, 10, &y), 0);
	code = cc_unary(t_c, "foo", x, y, NULL, 0);
	t_expect("cc_unary 'foo'", code, -ENOENT, cc_last_error(t_c), "foo", NULL);
	code = cc_binary(t_c, "nosuchop", x, x, y);
	t_expect("cc_binary 'nosuchop'", code, -ENOENT, cc_last_error(t_c), "nosuchop", NULL);
	code = cc_reduce(t_c, "nosuchop", x, NULL, NULL);
	if (code >= 0)
		t_bad("cc_reduce 'nosuchop': code %d", code);
	cc_tensor_free(x);
	cc_tensor_free(y);

	t_reg_pattern();
	t_tref(&a, 1, 0, 10);
	t_tref(&o, 1, 64, 10);
	for (i = 0; i < T_NELEM(names); i++) {
		snprintf(what, sizeof(what), "raw op '%s'", names[i]);
		code = t_raw_op(&t_r, names[i], in, 1, &o, NULL, 0, 0, 0, 0, NULL, text, sizeof(text));
		t_expect(what, code, -ENOENT, text, NULL);
	}
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	code = t_raw_op(&t_r, longname, in, 1, &o, NULL, 0, 0, 0, 0, NULL, text, sizeof(text));
	t_expect("a 2000-byte op name", code, -ENOENT, text, NULL);
	t_finish();
}

/* A raw op on region 1 that must be refused without touching the region. */
static void t_raw_refused(const char *what, int want, const char *needle, const char *op, Cc__TensorRef *const *in,
                          size_t nin, Cc__TensorRef *out, const float *params, size_t np, uint64_t m, uint64_t k,
                          uint64_t n)
{
	static float before[T_REGION_BYTES / 4];
	char text[512];
	int code;

	t_reg_pattern();
	memcpy(before, t_reg, sizeof(before));
	code = t_raw_op(&t_r, op, in, nin, out, params, np, m, k, n, NULL, text, sizeof(text));
	t_expect(what, code, want, text, needle, NULL);
	if (memcmp(before, t_reg, sizeof(before)))
		t_bad("%s: the region changed although the request was refused", what);
}

static void test_wrong_arity(void **state)
{
	Cc__TensorRef a, b, c, o, *in1[1] = {&a}, *in2[2] = {&a, &b}, *in3[3] = {&a, &b, &c};
	Cc__TensorRef A, B, C, *inm[2] = {&A, &B};
	static const float p1[1] = {0.5f}, p2[2] = {0.5f, 1.5f};

	(void)state;
	t_tref(&a, 1, 0, 100);
	t_tref(&b, 1, 400, 100);
	t_tref(&c, 1, 800, 100);
	t_tref(&o, 1, 1200, 100);
	t_raw_refused("relu with no input", -EINVAL, NULL, "relu", NULL, 0, &o, NULL, 0, 0, 0, 0);
	t_raw_refused("relu with 2 inputs", -EINVAL, NULL, "relu", in2, 2, &o, NULL, 0, 0, 0, 0);
	t_raw_refused("relu with no output", -EINVAL, NULL, "relu", in1, 1, NULL, NULL, 0, 0, 0, 0);
	t_raw_refused("softmax with no output", -EINVAL, NULL, "softmax", in1, 1, NULL, NULL, 0, 0, 0, 0);
	t_raw_refused("add with 1 input", -EINVAL, NULL, "add", in1, 1, &o, NULL, 0, 0, 0, 0);
	t_raw_refused("add with 3 inputs", -EINVAL, NULL, "add", in3, 3, &o, NULL, 0, 0, 0, 0);
	t_raw_refused("add with no output", -EINVAL, NULL, "add", in2, 2, NULL, NULL, 0, 0, 0, 0);
	t_raw_refused("sum with 2 inputs", -EINVAL, NULL, "sum", in2, 2, NULL, NULL, 0, 0, 0, 0);
	t_raw_refused("sum with no input", -EINVAL, NULL, "sum", NULL, 0, NULL, NULL, 0, 0, 0, 0);
	t_raw_refused("dot with 1 input", -EINVAL, NULL, "dot", in1, 1, NULL, NULL, 0, 0, 0, 0);
	t_raw_refused("dot with 3 inputs", -EINVAL, NULL, "dot", in3, 3, NULL, NULL, 0, 0, 0, 0);
	t_raw_refused("matmul with 1 input", -EINVAL, NULL, "matmul", in1, 1, &o, NULL, 0, 10, 10, 10);
	t_raw_refused("matmul with no output", -EINVAL, NULL, "matmul", in2, 2, NULL, NULL, 0, 10, 10, 10);

	/* lengths */
	t_tref(&b, 1, 400, 99);
	t_raw_refused("add with lengths 100 and 99", -EINVAL, NULL, "add", in2, 2, &o, NULL, 0, 0, 0, 0);
	t_raw_refused("dot with lengths 100 and 99", -EINVAL, NULL, "dot", in2, 2, NULL, NULL, 0, 0, 0, 0);
	t_tref(&o, 1, 1200, 101);
	t_raw_refused("relu 100 -> 101", -EINVAL, NULL, "relu", in1, 1, &o, NULL, 0, 0, 0, 0);
	t_raw_refused("softmax 100 -> 101", -EINVAL, NULL, "softmax", in1, 1, &o, NULL, 0, 0, 0, 0);
	t_tref(&o, 1, 1200, 100);
	t_tref(&A, 1, 0, 6 * 7);
	t_tref(&B, 1, 4096, 7 * 5);
	t_tref(&C, 1, 8192, 6 * 5);
	t_raw_refused("matmul with k wrong", -EINVAL, NULL, "matmul", inm, 2, &C, NULL, 0, 6, 8, 5);
	t_raw_refused("matmul with m wrong", -EINVAL, NULL, "matmul", inm, 2, &C, NULL, 0, 7, 7, 5);
	t_raw_refused("matmul with n wrong", -EINVAL, NULL, "matmul", inm, 2, &C, NULL, 0, 6, 7, 6);
	t_raw_refused("matmul with m*k overflowing", T_ANY, NULL, "matmul", inm, 2, &C, NULL, 0, (uint64_t)1 << 62,
	              (uint64_t)1 << 62, 0);
	t_raw_refused("matvec with x too short", -EINVAL, NULL, "matvec", inm, 2, &C, NULL, 0, 6, 7, 0);

	/* params */
	t_tref(&b, 1, 400, 100);
	t_raw_refused("relu with a param", -EINVAL, "param", "relu", in1, 1, &o, p1, 1, 0, 0, 0);
	t_raw_refused("leaky_relu without params", -EINVAL, "param", "leaky_relu", in1, 1, &o, NULL, 0, 0, 0, 0);
	t_raw_refused("leaky_relu with 2 params", -EINVAL, "param", "leaky_relu", in1, 1, &o, p2, 2, 0, 0, 0);
	t_raw_refused("clamp with 1 param", -EINVAL, "param", "clamp", in1, 1, &o, p1, 1, 0, 0, 0);
	t_raw_refused("add with a param", -EINVAL, "param", "add", in2, 2, &o, p1, 1, 0, 0, 0);
	t_finish();
}

/* The same mistakes through libcc: -EINVAL, and the output untouched. */
static void test_wrong_arity_libcc(void **state)
{
	static const float one = 0.5f, two[2] = {0.5f, 1.5f}, nan1 = NAN, nan2[2] = {NAN, 1}, nan3[2] = {0, NAN};
	cc_tensor *x, *y, *z, *w;
	float *dy;
	double v = 12345;
	size_t i;
	int code;

	(void)state;
	assert_int_equal(cc_tensor_new(t_c, CC_DTYPE_F32, 100, &x), 0);
	assert_int_equal(cc_tensor_new(t_c, CC_DTYPE_F32, 100, &y), 0);
	assert_int_equal(cc_tensor_new(t_c, CC_DTYPE_F32, 99, &z), 0);
	assert_int_equal(cc_tensor_new(t_c, CC_DTYPE_F32, 100 * 100, &w), 0);
	dy = cc_tensor_data(y);
	for (i = 0; i < 100; i++) {
		((float *)cc_tensor_data(x))[i] = (float)i - 50;
		dy[i] = 777;
	}
#define T_LIBCC(what, call)                                                                                            \
	do {                                                                                                           \
		code = (call);                                                                                         \
		if (code != -EINVAL)                                                                                   \
			t_bad("%s: code %d (%s), expected -EINVAL", what, code, cc_last_error(t_c));                   \
		for (i = 0; i < 100; i++)                                                                              \
			if (dy[i] != 777) {                                                                            \
				t_bad("%s: the output changed", what);                                                 \
				dy[i] = 777;                                                                           \
			}                                                                                              \
	} while (0)
	T_LIBCC("cc_unary with a binary op", cc_unary(t_c, "add", x, y, NULL, 0));
	T_LIBCC("cc_unary with a reduction", cc_unary(t_c, "sum", x, y, NULL, 0));
	T_LIBCC("cc_unary with matmul", cc_unary(t_c, "matmul", x, y, NULL, 0));
	T_LIBCC("cc_binary with a unary op", cc_binary(t_c, "relu", x, x, y));
	T_LIBCC("cc_reduce with a unary op", cc_reduce(t_c, "relu", x, NULL, &v));
	T_LIBCC("cc_reduce dot without b", cc_reduce(t_c, "dot", x, NULL, &v));
	T_LIBCC("cc_reduce sum with b", cc_reduce(t_c, "sum", x, x, &v));
	T_LIBCC("leaky_relu without params", cc_unary(t_c, "leaky_relu", x, y, NULL, 0));
	T_LIBCC("leaky_relu with 2 params", cc_unary(t_c, "leaky_relu", x, y, two, 2));
	T_LIBCC("relu with a param", cc_unary(t_c, "relu", x, y, &one, 1));
	T_LIBCC("clamp with 1 param", cc_unary(t_c, "clamp", x, y, &one, 1));
	T_LIBCC("leaky_relu with a NaN param", cc_unary(t_c, "leaky_relu", x, y, &nan1, 1));
	T_LIBCC("clamp with a NaN lo", cc_unary(t_c, "clamp", x, y, nan2, 2));
	T_LIBCC("clamp with a NaN hi", cc_unary(t_c, "clamp", x, y, nan3, 2));
	T_LIBCC("layer_norm with a NaN eps", cc_unary(t_c, "layer_norm", x, y, &nan1, 1));
	T_LIBCC("relu 99 -> 100", cc_unary(t_c, "relu", z, y, NULL, 0));
	T_LIBCC("add 100 + 99", cc_binary(t_c, "add", x, z, y));
	T_LIBCC("dot 100 . 99", cc_reduce(t_c, "dot", x, z, &v));
	T_LIBCC("matmul with m*n != len C", cc_matmul(t_c, x, x, y, 10, 10, 9));
	T_LIBCC("matmul with m*k != len A", cc_matmul(t_c, w, x, y, 100, 99, 1));
	T_LIBCC("NULL op", cc_unary(t_c, NULL, x, y, NULL, 0));
	T_LIBCC("NULL input", cc_unary(t_c, "relu", NULL, y, NULL, 0));
	T_LIBCC("NULL client", cc_unary(NULL, "relu", x, y, NULL, 0));
	T_LIBCC("cc_tensor_new with dtype 1", cc_tensor_new(t_c, 1, 10, &z));
#undef T_LIBCC
	if (v != 12345)
		t_bad("a refused cc_reduce wrote *ret");
	cc_tensor_free(x);
	cc_tensor_free(y);
	cc_tensor_free(z);
	cc_tensor_free(w);
	t_finish();
}

/* NaN parameters through raw requests. */
static void test_nan_params(void **state)
{
	Cc__TensorRef a, o, *in1[1] = {&a};
	const float n1[1] = {NAN}, n2[2] = {-1, NAN}, n3[2] = {-NAN, 1};

	(void)state;
	t_tref(&a, 1, 0, 100);
	t_tref(&o, 1, 1024, 100);
	t_raw_refused("leaky_relu alpha NaN", -EINVAL, NULL, "leaky_relu", in1, 1, &o, n1, 1, 0, 0, 0);
	t_raw_refused("elu alpha NaN", -EINVAL, NULL, "elu", in1, 1, &o, n1, 1, 0, 0, 0);
	t_raw_refused("scale NaN", -EINVAL, NULL, "scale", in1, 1, &o, n1, 1, 0, 0, 0);
	t_raw_refused("rms_norm eps NaN", -EINVAL, NULL, "rms_norm", in1, 1, &o, n1, 1, 0, 0, 0);
	t_raw_refused("clamp hi NaN", -EINVAL, NULL, "clamp", in1, 1, &o, n2, 2, 0, 0, 0);
	t_raw_refused("clamp lo -NaN", -EINVAL, NULL, "clamp", in1, 1, &o, n3, 2, 0, 0, 0);
	t_finish();
}

/* Offsets, lengths, alignment, dtype and ids are checked against the region before any kernel. */
static void test_bounds(void **state)
{
	Cc__TensorRef a, b, o, *in1[1] = {&a}, *in2[2] = {&a, &b};
	const uint64_t size = T_REGION_BYTES, nel = T_REGION_BYTES / 4;
	char text[256];
	double v = 0;
	int code;

	(void)state;
	t_tref(&o, 1, 0, 1);
	t_tref(&b, 1, 0, 1);
	t_tref(&a, 1, size, 1);
	t_raw_refused("input at the region's end", -ERANGE, "input 0", "relu", in1, 1, &o, NULL, 0, 0, 0, 0);
	t_tref(&a, 1, 0, nel + 1);
	t_tref(&o, 1, 0, nel + 1);
	t_raw_refused("input one element too long", -ERANGE, "input 0", "sum", in1, 1, NULL, NULL, 0, 0, 0, 0);
	t_tref(&a, 1, 4, nel);
	t_raw_refused("input shifted one element past the end", -ERANGE, "input 0", "sum", in1, 1, NULL, NULL, 0, 0, 0,
	              0);
	t_tref(&a, 1, UINT64_MAX - 3, 1);
	t_raw_refused("offset near 2^64 (overflow)", -ERANGE, NULL, "sum", in1, 1, NULL, NULL, 0, 0, 0, 0);
	t_tref(&a, 1, 4, UINT64_MAX / 4 + 1);
	t_raw_refused("len * 4 overflowing", -ERANGE, NULL, "sum", in1, 1, NULL, NULL, 0, 0, 0, 0);
	t_tref(&a, 1, 0, UINT64_MAX);
	t_raw_refused("len 2^64 - 1", -ERANGE, NULL, "sum", in1, 1, NULL, NULL, 0, 0, 0, 0);
	t_tref(&a, 1, 0, 100);
	t_tref(&o, 1, size - 396, 100);
	t_raw_refused("output one element past the end", -ERANGE, "output", "relu", in1, 1, &o, NULL, 0, 0, 0, 0);
	t_tref(&b, 1, size - 200, 100);
	t_tref(&o, 1, 4096, 100);
	t_raw_refused("input 1 past the end", -ERANGE, "input 1", "add", in2, 2, &o, NULL, 0, 0, 0, 0);
	/* the last element exactly fits */
	t_tref(&a, 1, size - 4, 1);
	code = t_raw_op(&t_r, "sum", in1, 1, NULL, NULL, 0, 0, 0, 0, &v, text, sizeof(text));
	if (code != 0 || v != (double)t_reg[nel - 1])
		t_bad("sum of the region's last element: code %d (%s), value %g, expected %g", code, text, v,
		      (double)t_reg[nel - 1]);
	/* alignment and dtype */
	t_tref(&a, 1, 2, 10);
	t_tref(&o, 1, 4096, 10);
	t_raw_refused("offset 2 (misaligned)", -EINVAL, NULL, "relu", in1, 1, &o, NULL, 0, 0, 0, 0);
	t_tref(&a, 1, 0, 10);
	t_tref(&o, 1, 4097, 10);
	t_raw_refused("output offset 4097 (misaligned)", -EINVAL, NULL, "relu", in1, 1, &o, NULL, 0, 0, 0, 0);
	t_tref(&o, 1, 4096, 10);
	a.dtype = (Cc__Dtype)7;
	t_raw_refused("dtype 7", -EINVAL, NULL, "relu", in1, 1, &o, NULL, 0, 0, 0, 0);
	/* regions that are not there */
	t_tref(&a, 999, 0, 10);
	t_raw_refused("unregistered region 999", -ENOENT, NULL, "relu", in1, 1, &o, NULL, 0, 0, 0, 0);
	t_tref(&a, 0, 0, 10);
	t_raw_refused("region 0", T_ANY, NULL, "relu", in1, 1, &o, NULL, 0, 0, 0, 0);
	t_tref(&a, 1, 0, 10);
	t_tref(&o, 999, 0, 10);
	t_raw_refused("output in an unregistered region", -ENOENT, NULL, "relu", in1, 1, &o, NULL, 0, 0, 0, 0);
	/* partial overlap of output and input */
	t_tref(&a, 1, 0, 100);
	t_tref(&o, 1, 8, 100);
	t_raw_refused("output overlapping the input by part", -EINVAL, NULL, "relu", in1, 1, &o, NULL, 0, 0, 0, 0);
	t_tref(&o, 1, 396, 100);
	t_raw_refused("output overlapping the input's last element", -EINVAL, NULL, "exp", in1, 1, &o, NULL, 0, 0, 0,
	              0);
	t_tref(&b, 1, 800, 100);
	t_tref(&o, 1, 600, 100);
	t_raw_refused("output overlapping input 1 by part", -EINVAL, NULL, "add", in2, 2, &o, NULL, 0, 0, 0, 0);
	t_finish();
}

/* Region ids are per client: another client's ids are not ours, and the same id can be reused. */
static void test_foreign_region(void **state)
{
	Cc__TensorRef a, o, *in1[1] = {&a};
	float *mine, before[1024], ref[100];
	struct t_raw r2;
	char text[256];
	int fd, code;
	double v = 0;

	(void)state;
	assert_int_equal(t_raw_open(&r2, t_d.endpoint), 0);
	assert_int_equal(t_raw_hello(&r2, CC_PROTO_VERSION), 0);
	t_reg_pattern();
	memcpy(before, t_reg, sizeof(before));
	/* region 1 is t_r's: r2 has none */
	t_tref(&a, 1, 0, 100);
	t_tref(&o, 1, 1024, 100);
	code = t_raw_op(&r2, "relu", in1, 1, &o, NULL, 0, 0, 0, 0, NULL, text, sizeof(text));
	t_expect("another client's region 1", code, -ENOENT, text, NULL);
	code = t_raw_op(&r2, "sum", in1, 1, NULL, NULL, 0, 0, 0, 0, &v, text, sizeof(text));
	t_expect("another client's region 1 (sum)", code, -ENOENT, text, NULL);
	if (memcmp(before, t_reg, sizeof(before)))
		t_bad("another client's request changed region 1");
	code = t_raw_region_free(&r2, 1);
	if (code != -ENOENT)
		t_bad("region_free of another client's region: code %d, expected -ENOENT", code);
	/* r2 registers its own region 1 and computes on its own data */
	fd = t_memfd(8192, t_seals_all(), (void **)&mine);
	assert_true(fd >= 0);
	for (code = 0; code < 2048; code++)
		mine[code] = (float)code * -0.5f + 3;
	code = t_raw_region_add(&r2, 1, fd, 8192, text, sizeof(text));
	if (code)
		t_bad("a second client registering its own region 1: %d %s", code, text);
	code = t_raw_op(&r2, "relu", in1, 1, &o, NULL, 0, 0, 0, 0, NULL, text, sizeof(text));
	if (code)
		t_bad("relu on the second client's region 1: %d %s", code, text);
	assert_int_equal(cck_unary_f32(CCK_OP_RELU, mine, ref, 100, NULL), 0);
	if (t_f32_diff(mine + 256, ref, 100) != 100)
		t_bad("relu on the second client's region 1 read or wrote the wrong region");
	if (memcmp(before, t_reg, sizeof(before)))
		t_bad("the second client's relu changed the first client's region 1");
	assert_int_equal(t_raw_region_free(&r2, 1), 0);
	/* the first client's region 1 is still there */
	code = t_raw_op(&t_r, "sum", in1, 1, NULL, NULL, 0, 0, 0, 0, &v, text, sizeof(text));
	if (code)
		t_bad("the first client's region 1 after the second freed its own: %d %s", code, text);
	munmap(mine, 8192);
	close(fd);
	t_raw_close(&r2);
	t_finish();
}

/* region_add of memfds that are not sealed, of the wrong size, of fds that are not memfds. */
static void test_region_add_bad(void **state)
{
	char text[256], path[256];
	int fd, code, p[2], nfd0, nfd1;
	uint64_t regions0, regions1;
	Cc__Reply *rep;

	(void)state;
	nfd0 = t_proc_nfds(t_d.pid);
	assert_int_equal(t_raw_status(&t_r, &rep), 0);
	regions0 = rep->status->regions;
	cc__reply__free_unpacked(rep, NULL);

	fd = t_memfd(8192, 0, NULL);
	code = t_raw_region_add(&t_r, 10, fd, 8192, text, sizeof(text));
	t_expect("unsealed memfd", code, -EPERM, text, "seal", NULL);
	close(fd);
	fd = t_memfd(8192, F_SEAL_SHRINK, NULL);
	code = t_raw_region_add(&t_r, 10, fd, 8192, text, sizeof(text));
	t_expect("memfd sealed against shrinking only", code, -EPERM, text, "seal", NULL);
	close(fd);
	fd = t_memfd(8192, F_SEAL_GROW | F_SEAL_SEAL, NULL);
	code = t_raw_region_add(&t_r, 10, fd, 8192, text, sizeof(text));
	t_expect("memfd sealed against growing only", code, -EPERM, text, "seal", NULL);
	close(fd);
	fd = t_memfd(8192, t_seals_all(), NULL);
	code = t_raw_region_add(&t_r, 10, fd, 4096, text, sizeof(text));
	t_expect("memfd of 8192 bytes declared 4096", code, -EINVAL, text, NULL);
	code = t_raw_region_add(&t_r, 10, fd, 16384, text, sizeof(text));
	t_expect("memfd of 8192 bytes declared 16384", code, -EINVAL, text, NULL);
	code = t_raw_region_add(&t_r, 0, fd, 8192, text, sizeof(text));
	t_expect("region id 0", code, -EINVAL, text, NULL);
	code = t_raw_region_add(&t_r, 1, fd, 8192, text, sizeof(text));
	t_expect("region id 1 again", code, T_ANY, text, NULL);
	close(fd);
	code = t_raw_region_add(&t_r, 10, 9999, 8192, text, sizeof(text));
	t_expect("fd 9999 (not open)", code, T_ANY, text, NULL);
	code = t_raw_region_add(&t_r, 10, -1, 8192, text, sizeof(text));
	t_expect("fd -1", code, T_ANY, text, NULL);
	assert_int_equal(pipe(p), 0);
	code = t_raw_region_add(&t_r, 10, p[0], 4096, text, sizeof(text));
	t_expect("a pipe", code, T_ANY, text, NULL);
	close(p[0]);
	close(p[1]);
	snprintf(path, sizeof(path), "%s/plainfile", t_d.dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 8192), 0);
	code = t_raw_region_add(&t_r, 10, fd, 8192, text, sizeof(text));
	t_expect("a plain file", code, T_ANY, text, NULL);
	close(fd);
	unlink(path);
	code = t_raw_region_add(&t_r, 10, 0, 0, text, sizeof(text));
	t_expect("fd 0 (stdin), size 0", code, T_ANY, text, NULL);
	/* region_free of what is not there */
	code = t_raw_region_free(&t_r, 10);
	if (code != -ENOENT)
		t_bad("region_free of an unknown region: code %d, expected -ENOENT", code);

	assert_int_equal(t_raw_status(&t_r, &rep), 0);
	regions1 = rep->status->regions;
	cc__reply__free_unpacked(rep, NULL);
	if (regions1 != regions0)
		t_bad("refused region_adds changed the daemon's region count from %llu to %llu",
		      (unsigned long long)regions0, (unsigned long long)regions1);
	nfd1 = t_proc_nfds_settle(t_d.pid, nfd0, 2);
	if (nfd0 >= 0 && nfd1 > nfd0)
		t_bad("refused region_adds leaked fds in ccd: %d -> %d", nfd0, nfd1);
	t_finish();
}

/* The seals stop a client from shrinking (or growing) a region under the daemon; a hole punched
 * in it reads as zeros; unmapping our side changes nothing for the daemon. */
static void test_shrink_behind_back(void **state)
{
	const size_t size = 1u << 20, nel = size / 4;
	Cc__TensorRef a, *in1[1] = {&a};
	float *map, *copy, *ref;
	char text[256];
	int fd, code;
	size_t i;

	(void)state;
	fd = t_memfd(size, t_seals_all(), (void **)&map);
	assert_true(fd >= 0);
	for (i = 0; i < nel; i++)
		map[i] = (float)i * 0.001f - 100;
	code = t_raw_region_add(&t_r, 20, fd, size, text, sizeof(text));
	assert_int_equal(code, 0);
	errno = 0;
	if (ftruncate(fd, 4096) == 0 || errno != EPERM)
		t_bad("ftruncate of a registered region to 4096 bytes: %s, expected EPERM", strerror(errno));
	errno = 0;
	if (ftruncate(fd, 0) == 0 || errno != EPERM)
		t_bad("ftruncate of a registered region to 0: %s, expected EPERM", strerror(errno));
	errno = 0;
	if (ftruncate(fd, (off_t)size * 2) == 0 || errno != EPERM)
		t_bad("growing a registered region: %s, expected EPERM", strerror(errno));
	errno = 0;
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == 0 || errno != EPERM)
		t_bad("adding a seal after F_SEAL_SEAL: %s, expected EPERM", strerror(errno));
	/* a punched hole is allowed by the seals: the daemon reads zeros, no fault */
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 65536, 65536) != 0)
		print_message("(fallocate PUNCH_HOLE: %s; skipped)\n", strerror(errno));
	copy = t_alloc_pages(size);
	ref = t_alloc_pages(size);
	assert_non_null(copy);
	assert_non_null(ref);
	memcpy(copy, map, size);
	/* our own mapping goes away; the daemon keeps its own */
	assert_int_equal(munmap(map, size), 0);
	t_tref(&a, 20, 0, nel);
	code = t_raw_op(&t_r, "square", in1, 1, &a, NULL, 0, 0, 0, 0, NULL, text, sizeof(text));
	if (code)
		t_bad("square in place on the region after the tricks: %d %s", code, text);
	assert_int_equal(cck_unary_f32(CCK_OP_SQUARE, copy, ref, nel, NULL), 0);
	map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(map != MAP_FAILED);
	if (t_f32_diff(map, ref, nel) != nel)
		t_bad("square on the region is wrong at element %zu", t_f32_diff(map, ref, nel));
	assert_int_equal(t_raw_region_free(&t_r, 20), 0);
	munmap(map, size);
	close(fd);
	free(copy);
	free(ref);
	t_finish();
}

/*
 * region_free of a region a running job reads and writes, then bye with a job still running,
 * then the socket closed: ccd must not fault (its mapping lives until the job is done), must
 * answer every request, and must give everything back.
 */
static void test_free_while_running(void **state)
{
	size_t side = t_matmul_side(0.3, 1200), msz = (3 * side * side * 4 + 4095) / 4096 * 4096;
	Cc__TensorRef A, B, C, *in[2] = {&A, &B};
	Cc__OpRequest op = CC__OP_REQUEST__INIT;
	Cc__Request req = CC__REQUEST__INIT;
	uint64_t regions0, regions1;
	struct t_raw r;
	Cc__Reply *rep;
	char text[256];
	float *map;
	double end;
	int fd, code, round, got_op, got_free;

	(void)state;
	assert_int_equal(t_raw_status(&t_r, &rep), 0);
	regions0 = rep->status->regions;
	cc__reply__free_unpacked(rep, NULL);
	fd = t_memfd(msz, t_seals_all(), (void **)&map);
	assert_true(fd >= 0);
	t_tref(&A, 5, 0, side * side);
	t_tref(&B, 5, side * side * 4, side * side);
	t_tref(&C, 5, 2 * side * side * 4, side * side);
	op.op = (char *)"matmul";
	op.n_inputs = 2;
	op.inputs = in;
	op.output = &C;
	op.m = op.k = op.n = side;
	req.body_case = CC__REQUEST__BODY_OP;
	req.op = &op;
	for (round = 0; round < 2; round++) {
		assert_int_equal(t_raw_open(&r, t_d.endpoint), 0);
		assert_int_equal(t_raw_hello(&r, CC_PROTO_VERSION), 0);
		code = t_raw_region_add(&r, 5, fd, msz, text, sizeof(text));
		assert_int_equal(code, 0);
		req.id = 900;
		assert_int_equal(t_raw_send(&r, &req), 0);
		if (round == 0) {
			Cc__Request fr = CC__REQUEST__INIT;
			Cc__RegionFree f = CC__REGION_FREE__INIT;

			/* free the region under the running job; both requests are answered */
			f.region_id = 5;
			fr.id = 901;
			fr.body_case = CC__REQUEST__BODY_REGION_FREE;
			fr.region_free = &f;
			assert_int_equal(t_raw_send(&r, &fr), 0);
			got_op = got_free = INT_MIN;
			while (got_op == INT_MIN || got_free == INT_MIN) {
				if (t_raw_recv(&r, 60000, &rep)) {
					t_bad("region_free under a running job: a reply is missing (op %d, free %d)",
					      got_op, got_free);
					break;
				}
				if (rep->id == 900)
					got_op = rep->code;
				else if (rep->id == 901)
					got_free = rep->code;
				cc__reply__free_unpacked(rep, NULL);
			}
			print_message("region_free during a matmul %zu^3: job %d, free %d\n", side, got_op, got_free);
			if (got_free == 0 && t_raw_region_free(&r, 5) != -ENOENT)
				t_bad("the freed region is still there");
			if (got_free != 0 && t_raw_region_free(&r, 5) != 0)
				t_bad("the region whose free was refused cannot be freed later");
		} else {
			/* bye with the job running, then the connection closed */
			assert_int_equal(t_raw_empty(&r, CC__REQUEST__BODY_BYE, &rep), 0);
			cc__reply__free_unpacked(rep, NULL);
		}
		t_raw_close(&r);
	}
	/* everything given back once the jobs are done */
	end = t_now() + 30 * t_scale();
	do {
		assert_int_equal(t_raw_status(&t_r, &rep), 0);
		regions1 = rep->status->regions;
		cc__reply__free_unpacked(rep, NULL);
		if (regions1 == regions0)
			break;
		t_msleep(20);
	} while (t_now() < end);
	if (regions1 != regions0)
		t_bad("regions: %llu before, %llu after the freed and abandoned ones", (unsigned long long)regions0,
		      (unsigned long long)regions1);
	munmap(map, msz);
	close(fd);
	t_finish();
}

/* A frame over max_message_bytes never gets a success; one under it is answered. */
static void test_oversized_frame(void **state)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__OpRequest op = CC__OP_REQUEST__INIT;
	Cc__TensorRef a, o, *in1[1] = {&a};
	struct t_raw r;
	float *params;
	uint8_t *buf;
	size_t len, np;
	char text[256];
	int code, round;

	(void)state;
	params = calloc(40000, sizeof(float));
	assert_non_null(params);
	t_tref(&a, 1, 0, 10);
	t_tref(&o, 1, 1024, 10);
	op.op = (char *)"relu";
	op.n_inputs = 1;
	op.inputs = in1;
	op.output = &o;
	op.params = params;
	req.body_case = CC__REQUEST__BODY_OP;
	req.op = &op;
	for (round = 0; round < 2; round++) {
		/* under the limit: parsed and refused for its params (so it did arrive) */
		np = (T_MAX_MSG - 200) / 4;
		op.n_params = np;
		req.id = 31;
		buf = t_pack(&req, &len);
		assert_true(len < T_MAX_MSG);
		assert_int_equal(t_raw_send_bytes(&t_r, buf, len, 0), 0);
		code = t_recv_code(&t_r, 5000, NULL, text, sizeof(text));
		t_expect("a frame just under max_message_bytes with too many params", code, -EINVAL, text, NULL);
		free(buf);

		/* over it: ZeroMQ drops it (and the connection), or ccd refuses it: never a success */
		assert_int_equal(t_raw_open(&r, t_d.endpoint), 0);
		assert_int_equal(t_raw_hello(&r, CC_PROTO_VERSION), 0);
		{
			Cc__Request pr = CC__REQUEST__INIT;
			Cc__Empty e = CC__EMPTY__INIT;
			uint8_t *big = calloc(1, T_MAX_MSG * 2);
			size_t plen;

			/* a ping padded with an unknown field: valid, but too big */
			pr.id = 32;
			pr.body_case = CC__REQUEST__BODY_PING;
			pr.ping = &e;
			plen = cc__request__get_packed_size(&pr);
			cc__request__pack(&pr, big);
			big[plen] = ((1000 << 3 | 2) & 0x7f) | 0x80; /* field 1000, length-delimited */
			big[plen + 1] = (1000 << 3 | 2) >> 7;
			big[plen + 2] = ((T_MAX_MSG + 100) & 0x7f) | 0x80;
			big[plen + 3] = (((T_MAX_MSG + 100) >> 7) & 0x7f) | 0x80;
			big[plen + 4] = (T_MAX_MSG + 100) >> 14;
			assert_int_equal(t_raw_send_bytes(&r, big, plen + 5 + T_MAX_MSG + 100, 0), 0);
			code = t_recv_code(&r, (int)(1000 / t_scale()), NULL, text, sizeof(text)); /* 1 s, unscaled */
			if (code == 0)
				t_bad("a %d-byte frame (max_message_bytes %d) was answered with success",
				      T_MAX_MSG + 105, T_MAX_MSG);
			free(big);
		}
		t_raw_close(&r);
	}
	free(params);
	t_finish();
}

/* Options ccd must refuse at start. */
static void test_bad_options(void **state)
{
	static const char *const bad[][3] = {{"-o", "no_such_limit=1", NULL},
	                                     {"-o", "max_clients=abc", NULL},
	                                     {"-o", "max_clients=0", NULL},
	                                     {"-o", "max_message_bytes=-5", NULL},
	                                     {"--no-such-option", NULL, NULL}};
	char out[4096];
	size_t i;
	int st;

	(void)state;
	for (i = 0; i < T_NELEM(bad); i++) {
		int err = t_ccd_run(bad[i], NULL, 10, &st, out, sizeof(out));

		if (err)
			t_bad("ccd %s %s: still running after 10 s", bad[i][0], bad[i][1] ? bad[i][1] : "");
		else if (!WIFEXITED(st) || WEXITSTATUS(st) == 0)
			t_bad("ccd %s %s: wait status 0x%x, expected a non-zero exit", bad[i][0],
			      bad[i][1] ? bad[i][1] : "", st);
		else if (!*out)
			t_bad("ccd %s %s: exit %d without a word", bad[i][0], bad[i][1] ? bad[i][1] : "",
			      WEXITSTATUS(st));
		else if (i < 2 && !strstr(out, i == 0 ? "no_such_limit" : "max_clients"))
			t_bad("ccd %s %s: the message does not name the option: %s", bad[i][0], bad[i][1], out);
	}
	t_finish();
}

/* ---- limits (a daemon of its own) ------------------------------------------------------------ */

static int t_is_limit_code(int code)
{
	return code == -ENOSPC || code == -EMFILE || code == -EBUSY;
}

static void t_expect_limit(const char *what, int code, const char *text, const char *limit)
{
	if (!t_is_limit_code(code))
		t_bad("%s: code %d (%s: %s), expected -ENOSPC, -EMFILE or -EBUSY", what, code,
		      code ? strerror(-code) : "success", text ? text : "");
	else if (!text || !strstr(text, limit))
		t_bad("%s: error text '%s' does not name the limit %s", what, text ? text : "", limit);
}

static void test_limits(void **state)
{
	static const char *const args[] = {
	    "-o", "max_regions_per_client=4",      "-o", "max_inflight_per_client=2", "-o", "max_clients=3",
	    "-o", "max_bytes_per_client=33554432", NULL};
	struct t_ccd d;
	struct t_raw r1, r3;
	cc_client *c1, *c2, *c4 = NULL;
	cc_tensor *t[6];
	char text[512];
	int code, i, fd, got[3];
	size_t side = t_matmul_side(0.3, 1200), msz;
	double end;
	float *map;

	(void)state;
	assert_int_equal(t_ccd_start(&d, args, NULL), 0);
	/* clients: 3 allowed */
	assert_int_equal(t_ccd_connect(&d, &c1), 0);
	assert_int_equal(t_raw_open(&r1, d.endpoint), 0);
	assert_int_equal(t_raw_hello(&r1, CC_PROTO_VERSION), 0);
	assert_int_equal(t_ccd_connect(&d, &c2), 0);
	assert_int_equal(t_raw_open(&r3, d.endpoint), 0);
	{
		Cc__Request req = CC__REQUEST__INIT;
		Cc__Hello h = CC__HELLO__INIT;
		Cc__Reply *rep;

		h.proto_version = CC_PROTO_VERSION;
		h.pid = (uint32_t)getpid();
		req.body_case = CC__REQUEST__BODY_HELLO;
		req.hello = &h;
		assert_int_equal(t_raw_call(&r3, &req, &rep), 0);
		t_expect_limit("a 4th client's hello", rep->code, rep->error, "max_clients");
		cc__reply__free_unpacked(rep, NULL);
	}
	t_raw_close(&r3);
	code = cc_connect(d.endpoint, &c4);
	if (code >= 0) {
		t_bad("cc_connect as a 4th client with max_clients=3 succeeded");
		cc_close(c4);
	}
	cc_close(c2);
	/* a place is free again (bye) */
	end = t_now() + 3 * t_scale();
	do {
		code = cc_connect(d.endpoint, &c2);
		if (code == 0)
			break;
		t_msleep(20);
	} while (t_now() < end);
	if (code)
		t_bad("no client can connect after one of 3 closed: %d %s", code, cc_strerror(code));
	else
		cc_close(c2);

	/* regions: 4 per client */
	for (i = 0; i < 4; i++) {
		code = cc_tensor_new(c1, CC_DTYPE_F32, 1000, &t[i]);
		if (code)
			t_bad("tensor %d of 4 (max_regions_per_client=4): %d %s", i + 1, code, cc_last_error(c1));
	}
	code = cc_tensor_new(c1, CC_DTYPE_F32, 1000, &t[4]);
	if (code == 0) {
		t_bad("a 5th region with max_regions_per_client=4 was accepted");
		cc_tensor_free(t[4]);
	} else {
		t_expect_limit("a 5th region", code, cc_last_error(c1), "max_regions_per_client");
	}
	cc_tensor_free(t[3]);
	code = cc_tensor_new(c1, CC_DTYPE_F32, 1000, &t[3]);
	if (code)
		t_bad("a 4th region after one was freed: %d %s", code, cc_last_error(c1));
	for (i = 0; i < 4; i++)
		cc_tensor_free(t[i]);
	/* bytes: 32 MiB per client */
	code = cc_tensor_new(c1, CC_DTYPE_F32, 9u << 20, &t[0]);
	if (code == 0) {
		t_bad("a 36 MiB tensor with max_bytes_per_client=32 MiB was accepted");
		cc_tensor_free(t[0]);
	} else {
		t_expect_limit("a 36 MiB tensor", code, cc_last_error(c1), "max_bytes_per_client");
	}
	assert_int_equal(cc_tensor_new(c1, CC_DTYPE_F32, 5u << 20, &t[0]), 0);
	code = cc_tensor_new(c1, CC_DTYPE_F32, 4u << 20, &t[1]);
	if (code == 0) {
		t_bad("20 + 16 MiB of tensors with max_bytes_per_client=32 MiB were accepted");
		cc_tensor_free(t[1]);
	} else {
		t_expect_limit("20 + 16 MiB of tensors", code, cc_last_error(c1), "max_bytes_per_client");
	}
	cc_tensor_free(t[0]);

	/* jobs in flight: 2 per client (raw, three long matmuls sent back to back) */
	msz = (5 * side * side * 4 + 4095) / 4096 * 4096;
	fd = t_memfd(msz, t_seals_all(), (void **)&map);
	assert_true(fd >= 0);
	assert_int_equal(t_raw_region_add(&r1, 1, fd, msz, text, sizeof(text)), 0);
	{
		Cc__TensorRef A, B, C[3], *in[2] = {&A, &B};
		Cc__OpRequest op = CC__OP_REQUEST__INIT;
		Cc__Request req = CC__REQUEST__INIT;
		Cc__Reply *rep;

		t_tref(&A, 1, 0, side * side);
		t_tref(&B, 1, side * side * 4, side * side);
		op.op = (char *)"matmul";
		op.n_inputs = 2;
		op.inputs = in;
		op.m = op.k = op.n = side;
		req.body_case = CC__REQUEST__BODY_OP;
		req.op = &op;
		for (i = 0; i < 3; i++) {
			t_tref(&C[i], 1, (2 + (uint64_t)i) * side * side * 4, side * side);
			op.output = &C[i];
			req.id = 500 + (uint64_t)i;
			assert_int_equal(t_raw_send(&r1, &req), 0);
		}
		got[0] = got[1] = got[2] = INT_MIN;
		for (i = 0; i < 3; i++) {
			if (t_raw_recv(&r1, 60000, &rep)) {
				t_bad("jobs in flight: reply %d of 3 missing", i + 1);
				break;
			}
			if (rep->id >= 500 && rep->id < 503) {
				got[rep->id - 500] = rep->code;
				if (rep->id == 502)
					t_expect_limit("a 3rd job in flight", rep->code, rep->error,
					               "max_inflight_per_client");
			} else {
				t_bad("jobs in flight: reply with unknown id %llu", (unsigned long long)rep->id);
			}
			cc__reply__free_unpacked(rep, NULL);
		}
		if (got[0] != 0 || got[1] != 0)
			t_bad("the first 2 jobs in flight: codes %d and %d, expected 0", got[0], got[1]);
		/* once they are done, a new one is accepted */
		op.output = &C[2];
		code = t_raw_call(&r1, &req, &rep);
		if (code == 0) {
			code = rep->code;
			snprintf(text, sizeof(text), "%s", rep->error ? rep->error : "");
			cc__reply__free_unpacked(rep, NULL);
		}
	}
	if (code)
		t_bad("a job after the in-flight ones finished: %d %s", code, text);
	assert_int_equal(t_raw_region_free(&r1, 1), 0);
	munmap(map, msz);
	close(fd);

	/* the same through libcc's async calls: the refusal names the limit */
	{
		cc_tensor *A, *B, *C[3];
		uint64_t job[3];
		int rc[3];

		assert_int_equal(cc_tensor_new(c1, CC_DTYPE_F32, side * side, &A), 0);
		assert_int_equal(cc_tensor_new(c1, CC_DTYPE_F32, side * side, &B), 0);
		for (i = 0; i < 2; i++)
			assert_int_equal(cc_tensor_new(c1, CC_DTYPE_F32, side * side, &C[i]), 0);
		assert_int_equal(cc_submit_matmul(c1, A, B, C[0], side, side, side, &job[0]), 0);
		assert_int_equal(cc_submit_matmul(c1, A, B, C[1], side, side, side, &job[1]), 0);
		/* the 4 regions are used up: the third job reads A (a reduction) */
		rc[2] = cc_submit_reduce(c1, "sum", A, NULL, &job[2]);
		if (rc[2] == 0)
			rc[2] = cc_wait(c1, job[2], (int)(60000 * t_scale()), NULL);
		t_expect_limit("a 3rd libcc job in flight", rc[2], cc_last_error(c1), "max_inflight_per_client");
		rc[0] = cc_wait(c1, job[0], (int)(60000 * t_scale()), NULL);
		rc[1] = cc_wait(c1, job[1], (int)(60000 * t_scale()), NULL);
		if (rc[0] || rc[1])
			t_bad("libcc jobs in flight: %d %d", rc[0], rc[1]);
		cc_tensor_free(A);
		cc_tensor_free(B);
		cc_tensor_free(C[0]);
		cc_tensor_free(C[1]);
	}
	t_raw_close(&r1);
	cc_close(c1);
	assert_int_equal(t_ccd_stop(&d), 0);
	t_finish();
}

#define T_TEST(f) cmocka_unit_test_setup(f, t_setup)

/* kernels_set: only after hello; a bad backend or an overlong device selection is refused and changes nothing. */
static void test_kernels_set_bad(void **state)
{
	static const char *const backends[] = {"gpu", "cpu ", "opencl;cpu", "auto\x01"};
	Cc__Request req = CC__REQUEST__INIT;
	Cc__KernelsSet ks = CC__KERNELS_SET__INIT;
	char longsel[300], backend[16];
	struct t_raw r;
	Cc__Reply *rep;
	size_t i;

	(void)state;
	req.body_case = CC__REQUEST__BODY_KERNELS_SET;
	req.kernels_set = &ks;
	assert_int_equal(t_raw_empty(&t_r, CC__REQUEST__BODY_KERNELS, &rep), 0);
	assert_int_equal(rep->code, 0);
	snprintf(backend, sizeof(backend), "%s", rep->kernels->backend);
	cc__reply__free_unpacked(rep, NULL);
	ks.backend = (char *)"cpu";
	assert_int_equal(t_raw_open(&r, t_d.endpoint), 0);
	assert_int_equal(t_raw_call(&r, &req, &rep), 0);
	t_expect("kernels_set before hello", rep->code, -EPROTO, rep->error, "hello", NULL);
	cc__reply__free_unpacked(rep, NULL);
	t_raw_close(&r);
	for (i = 0; i < T_NELEM(backends); i++) {
		ks.backend = (char *)backends[i];
		assert_int_equal(t_raw_call(&t_r, &req, &rep), 0);
		t_expect("kernels_set with a bad backend", rep->code, -EINVAL, rep->error, "backend",
		         "auto, cpu or opencl", NULL);
		cc__reply__free_unpacked(rep, NULL);
	}
	memset(longsel, 'x', sizeof(longsel) - 1);
	longsel[sizeof(longsel) - 1] = 0;
	ks.backend = (char *)"cpu";
	ks.device = longsel;
	assert_int_equal(t_raw_call(&t_r, &req, &rep), 0);
	t_expect("kernels_set with a 299-character device", rep->code, -EINVAL, rep->error, "at most 127", NULL);
	cc__reply__free_unpacked(rep, NULL);
	/* nothing changed: not even the valid backend of the refused request */
	assert_int_equal(t_raw_empty(&t_r, CC__REQUEST__BODY_KERNELS, &rep), 0);
	assert_int_equal(rep->code, 0);
	if (strcmp(rep->kernels->backend, backend))
		t_bad("the refused kernels_set requests changed the backend from %s to %s", backend,
		      rep->kernels->backend);
	cc__reply__free_unpacked(rep, NULL);
	t_finish();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T_TEST(test_garbage_frames),
	    T_TEST(test_multipart),
	    T_TEST(test_empty_frame),
	    T_TEST(test_truncated),
	    T_TEST(test_before_hello),
	    T_TEST(test_wrong_version),
	    T_TEST(test_unknown_op),
	    T_TEST(test_wrong_arity),
	    T_TEST(test_wrong_arity_libcc),
	    T_TEST(test_nan_params),
	    T_TEST(test_bounds),
	    T_TEST(test_foreign_region),
	    T_TEST(test_region_add_bad),
	    T_TEST(test_shrink_behind_back),
	    T_TEST(test_free_while_running),
	    T_TEST(test_oversized_frame),
	    T_TEST(test_bad_options),
	    T_TEST(test_limits),
	    T_TEST(test_kernels_set_bad),
	};
	double t0;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	t_ccd_path();
	if (access("/proc/self/fd", R_OK) != 0) {
		fprintf(stderr, "SKIP: no /proc: ccd needs /proc/<pid>/fd to map client regions\n");
		return T_EXIT_SKIP;
	}
	if (getenv("T_FILTER")) /* e.g. T_FILTER=test_kill9: run only the matching tests */
		cmocka_set_test_filter(getenv("T_FILTER"));
	t0 = t_now();
	rc = cmocka_run_group_tests(tests, t_group_setup, t_group_teardown);
	print_message("total time %.1f s\n", t_now() - t0);
	return rc;
}
