/* SPDX-License-Identifier: MIT */
/* models.c: the model registry: each load runs in its own thread (parse, then stream the weights), the front end
 * owns every state change. */
#define _GNU_SOURCE 1
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ccg.h"
#include "cck.h"
#include "log.h"
#include "models.h"
#include "sched.h"
#include "util.h"

const char *ccd_model_state_name(enum ccd_model_state s)
{
	switch (s) {
	case CCD_MODEL_LOADING:
		return "loading";
	case CCD_MODEL_READY:
		return "ready";
	case CCD_MODEL_FAILED:
		return "failed";
	case CCD_MODEL_UNLOADING:
		return "unloading";
	}
	return "?";
}

int ccd_model_name_ok(const char *name)
{
	size_t i, n = name ? strlen(name) : 0;

	if (n == 0 || n >= CCD_MODEL_NAME_MAX || name[0] == '.' || name[0] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int ccd_models_init(struct ccd_models *ms)
{
	memset(ms, 0, sizeof(*ms));
	ms->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return ms->evfd < 0 ? -errno : 0;
}

struct ccd_model *ccd_model_find(struct ccd_models *ms, const char *name)
{
	struct ccd_model *m;

	for (m = ms->all; m; m = m->next)
		if (strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

void ccd_model_progress(const struct ccd_model *m, uint64_t *done, uint64_t *total)
{
	uint64_t t = atomic_load(&m->total), d = atomic_load_explicit(&m->prog.done, memory_order_relaxed);

	*total = t;
	*done = d > t ? t : d;
}

int ccd_waiter_add(struct ccd_waiter **list, const void *ident, size_t identlen, uint64_t req_id)
{
	struct ccd_waiter *w;

	if (identlen > sizeof(w->ident))
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	memcpy(w->ident, ident, identlen);
	w->identlen = identlen;
	w->req_id = req_id;
	while (*list)
		list = &(*list)->next;
	*list = w;
	return 0;
}

void ccd_waiters_free(struct ccd_waiter *w)
{
	while (w) {
		struct ccd_waiter *next = w->next;

		free(w);
		w = next;
	}
}

/*
 * Put the weights of gpu_layers layers (the last ones, as llama.cpp's -ngl) on the OpenCL device: the gpu_layers
 * setting. Never fails the load: without a device, with the cpu backend, or when the upload fails, the model runs on
 * the CPU and its engine note says why.
 */
static void offload(struct ccd_model *m)
{
	uint32_t n_layer = cce_model_hparams(m->engine)->n_layer;
	size_t len = strlen(m->engine_note);
	char why[200] = "";
	int want, r;

	if (!m->gpu_layers_req)
		return;
	/* all (-1): every layer and the output matrix, as llama.cpp's -ngl 99 */
	want = m->gpu_layers_req >= INT_MAX ? -1 : (int)m->gpu_layers_req;
	if (ccg_get_backend() == CCG_BACKEND_CPU) {
		r = -ECANCELED;
		snprintf(why, sizeof(why), "the backend is cpu");
	} else if (!ccg_available()) {
		r = -ENODEV;
		snprintf(why, sizeof(why), "no OpenCL device: %s", ccg_why());
	} else {
		r = cce_model_offload(m->engine, want, why, sizeof(why));
	}
	if (r < 0) {
		ccd_warn("model %s: gpu_layers %d: nothing offloaded: %s", m->name, want, why[0] ? why : strerror(-r));
		snprintf(m->engine_note + len, sizeof(m->engine_note) - len, "; no layer on OpenCL: %s",
		         why[0] ? why : strerror(-r));
		return;
	}
	if (r == 0) {
		ccd_info("model %s: gpu_layers: no layer offloaded: no weight type of it runs on the device", m->name);
		snprintf(m->engine_note + len, sizeof(m->engine_note) - len,
		         "; no layer on OpenCL: no weight type of it runs there");
		return;
	}
	m->gpu_layers = (uint32_t)cce_model_offloaded(m->engine);
	m->device_bytes = cce_model_device_bytes(m->engine);
	ccd_info("model %s: %u of %u layers on the OpenCL device (%.1f MiB)", m->name, m->gpu_layers, n_layer,
	         (double)m->device_bytes / (1 << 20));
	snprintf(m->engine_note + len, sizeof(m->engine_note) - len, "; %u/%u layers on OpenCL", m->gpu_layers,
	         n_layer);
}

/* Tokenizer and forward pass over the loaded weights; a model the engine cannot run still loads (matvec, show). */
static void bind_engine(struct ccd_model *m)
{
	char verr[200] = "", merr[200] = "";
	int rv, rm;

	rv = cce_vocab_load(m->gguf, &m->vocab, verr, sizeof(verr));
	rm = cce_model_init(m->gguf, m->region.data, &m->engine, merr, sizeof(merr));
	if (rm == 0 && rv == 0)
		snprintf(m->engine_note, sizeof(m->engine_note), "%s, %s tokenizer", cce_model_hparams(m->engine)->arch,
		         cce_vocab_kind(m->vocab));
	else if (rm == 0)
		snprintf(m->engine_note, sizeof(m->engine_note), "%s, no tokenizer: %s",
		         cce_model_hparams(m->engine)->arch, verr[0] ? verr : strerror(-rv));
	else
		snprintf(m->engine_note, sizeof(m->engine_note), "no inference: %s", merr[0] ? merr : strerror(-rm));
	if (rm == 0 && m->pack_req) {
		size_t len = strlen(m->engine_note);
		int np = 0;

		/* only our own memory (uring, read) is rewritten, never the file's pages (mmap) */
		if (m->region.mode != CCM_MODE_MMAP)
			np = cce_model_pack(m->engine);
		if (np < 0)
			ccd_warn("model %s: packing the weights: %s (the rest run row-major)", m->name, strerror(-np));
		snprintf(m->engine_note + len, sizeof(m->engine_note) - len, "; %d matrices packed%s", np > 0 ? np : 0,
		         m->region.mode == CCM_MODE_MMAP ? " (mmap mode: the file's pages stay as they are)"
		         : np == 0 ? " (no q4_1 or q8_0 matrix, or no AVX512-VNNI)" : "");
	}
	if (rm == 0)
		offload(m);
}

/* The loader thread: parse the header, then bring the tensor data into memory. */
static void *load_main(void *arg)
{
	struct ccd_model *m = arg;
	struct stat st;
	char why[400];
	uint64_t one = 1;
	size_t i, n;
	int fd, r;

	/* O_NONBLOCK: opening a FIFO must not block the loader (and shutdown) forever */
	fd = open(m->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		snprintf(m->err, sizeof(m->err), "cannot open %s: %s", m->path, strerror(-r));
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = -EINVAL;
		snprintf(m->err, sizeof(m->err), "%s is not a regular file", m->path);
		goto out_close;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	why[0] = '\0';
	r = ccm_gguf_open_fd(fd, &m->gguf, why, sizeof(why));
	if (r < 0) {
		snprintf(m->err, sizeof(m->err), "%s: %s", m->path, why[0] ? why : strerror(-r));
		goto out_close;
	}
	{
		struct ccm_str arch;

		if (ccm_gguf_get_str(m->gguf, "general.architecture", &arch) == 0)
			ccd_sanitize(m->arch, sizeof(m->arch), arch.s);
	}
	n = ccm_gguf_tensor_count(m->gguf);
	m->ntensors = (uint32_t)n;
	for (i = 0; i < n; i++) {
		const struct ccm_tensor *t = ccm_gguf_tensor(m->gguf, i);
		uint64_t e = 1;
		uint32_t d;

		for (d = 0; d < t->n_dims; d++)
			e *= t->ne[d]; /* the parser checked the product for overflow */
		m->params += e;
	}
	m->file_bytes = ccm_gguf_file_size(m->gguf);
	atomic_store(&m->total, ccm_gguf_data_size(m->gguf));
	why[0] = '\0';
	r = ccm_load_fd(fd, ccm_gguf_data_offset(m->gguf), ccm_gguf_data_size(m->gguf), m->req_mode, &m->place,
	                &m->prog, &m->region, why, sizeof(why));
	if (r < 0) {
		if (r == -ECANCELED)
			snprintf(m->err, sizeof(m->err), "load of %s cancelled", m->path);
		else
			snprintf(m->err, sizeof(m->err), "%s: %s", m->path, why[0] ? why : strerror(-r));
		goto out_close;
	}
	m->have_region = 1;
	bind_engine(m);
out_close:
	close(fd);
out:
	m->code = r < 0 ? r : 0;
	m->seconds = ccd_now_s() - m->t0;
	atomic_store(&m->done, 1);
	if (write(m->evfd, &one, sizeof(one)) < 0) {
		/* the counter cannot overflow in practice; the front end also polls done at each reap */
	}
	return NULL;
}

int ccd_model_start(struct ccd_models *ms, const char *name, const char *path, enum ccm_mode mode,
                    const struct ccm_place *place, unsigned max_models, struct ccd_model **ret, char *err,
                    size_t errsize)
{
	struct ccd_model *m, **tail;
	int r;

	if (!ccd_model_name_ok(name)) {
		snprintf(err, errsize, "bad model name: use 1-63 of [A-Za-z0-9._-], not starting with '.' or '-'");
		return -EINVAL;
	}
	if (!path || path[0] != '/') {
		snprintf(err, errsize, "model path must be absolute");
		return -EINVAL;
	}
	m = ccd_model_find(ms, name);
	if (m) {
		snprintf(err, errsize, "a model named '%s' is already %s (from %s): unload it first", name,
		         m->state == CCD_MODEL_READY ? "loaded" : ccd_model_state_name(m->state), m->path);
		return -EEXIST;
	}
	if (ms->count >= max_models) {
		snprintf(err, errsize, "max_models (%u) reached: unload one first", max_models);
		return -EMFILE;
	}
	m = calloc(1, sizeof(*m));
	if (!m || !(m->path = strdup(path))) {
		free(m);
		snprintf(err, errsize, "out of memory");
		return -ENOMEM;
	}
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->req_mode = mode;
	m->place = *place;
	m->gpu_layers_req = ms->gpu_layers;
	m->pack_req = ms->pack;
	m->state = CCD_MODEL_LOADING;
	m->evfd = ms->evfd;
	m->t0 = ccd_now_s();
	r = pthread_create(&m->thread, NULL, load_main, m);
	if (r) {
		free(m->path);
		free(m);
		snprintf(err, errsize, "cannot start a loader thread: %s", strerror(r));
		return -r;
	}
	m->thread_live = 1;
	for (tail = &ms->all; *tail; tail = &(*tail)->next)
		;
	*tail = m;
	ms->count++;
	*ret = m;
	return 0;
}

int ccd_models_collect(struct ccd_models *ms, void (*fn)(void *arg, struct ccd_model *m), void *arg)
{
	struct ccd_model *m, *next;
	uint64_t cnt;
	int n = 0;

	if (read(ms->evfd, &cnt, sizeof(cnt)) < 0) {
		/* EAGAIN: nothing signalled; the done flags below are the truth */
	}
	for (m = ms->all; m; m = next) {
		next = m->next;
		if (!m->thread_live || !atomic_load(&m->done))
			continue;
		pthread_join(m->thread, NULL);
		m->thread_live = 0;
		if (m->code == 0) {
			m->state = CCD_MODEL_READY;
			ms->ready++;
			ms->bytes += m->region.len;
		} else {
			m->state = CCD_MODEL_FAILED;
		}
		n++;
		fn(arg, m);
	}
	return n;
}

void ccd_model_free(struct ccd_models *ms, struct ccd_model *m)
{
	struct ccd_model **pp;

	CCD_ASSERT(!m->thread_live && m->users == 0);
	for (pp = &ms->all; *pp && *pp != m; pp = &(*pp)->next)
		;
	CCD_ASSERT(*pp == m);
	*pp = m->next;
	ms->count--;
	if (m->have_region) {
		ms->ready--;
		ms->bytes -= m->region.len;
		ccm_region_free(&m->region);
	}
	ccd_sched_free(m->sched); /* its sessions: the front end dropped them, no turn runs */
	cce_model_free(m->engine);
	cce_vocab_free(m->vocab);
	ccm_gguf_free(m->gguf);
	ccd_waiters_free(m->load_waiters);
	ccd_waiters_free(m->unload_waiters);
	free(m->path);
	free(m);
}

void ccd_models_fini(struct ccd_models *ms)
{
	struct ccd_model *m;

	for (m = ms->all; m; m = m->next)
		if (m->thread_live)
			atomic_store(&m->prog.cancel, 1);
	for (m = ms->all; m; m = m->next) {
		if (m->thread_live) {
			pthread_join(m->thread, NULL);
			m->thread_live = 0;
			if (m->code == 0)
				ms->ready++, ms->bytes += m->region.len;
		}
		m->users = 0; /* the workers are stopped before the registry goes */
	}
	while (ms->all)
		ccd_model_free(ms, ms->all);
	if (ms->evfd >= 0)
		close(ms->evfd);
	ms->evfd = -1;
}
