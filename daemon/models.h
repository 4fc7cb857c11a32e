/* SPDX-License-Identifier: MIT */
/* models.h: the model registry: GGUF models loaded once (in a loader thread) and shared by every client. */
#ifndef CCD_MODELS_H
#define CCD_MODELS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "gguf.h"
#include "load.h"

struct ccd_sched;

#define CCD_MODEL_NAME_MAX 64
#define CCD_IDENT_MAX_W 256

enum ccd_model_state {
	CCD_MODEL_LOADING = 0,
	CCD_MODEL_READY,
	CCD_MODEL_FAILED,    /* a preloaded model that could not load: kept so `ccctl models` says why */
	CCD_MODEL_UNLOADING, /* waiting for its users to finish; refuses new ones */
};

/* A request whose reply waits for a model event (load done, unload done). */
struct ccd_waiter {
	struct ccd_waiter *next;
	uint64_t req_id;
	size_t identlen;
	unsigned char ident[CCD_IDENT_MAX_W];
};

struct ccd_model {
	struct ccd_model *next;
	char name[CCD_MODEL_NAME_MAX];
	char *path;
	enum ccd_model_state state; /* front-end thread only */
	enum ccm_mode req_mode;
	struct ccm_place place;
	unsigned users;          /* jobs using the model now (front-end thread only) */
	_Atomic int cancel_jobs; /* set by a forced unload or shutdown: jobs using the model stop early */

	/* Written by the loader thread before it sets `done`; read by the front end after. */
	struct ccm_gguf *gguf;
	struct ccm_region region;
	int have_region;
	int code;      /* 0 or -errno of the load */
	char err[512]; /* why the load failed */
	char arch[64];
	uint64_t params, file_bytes;
	uint32_t ntensors;
	double seconds;
	struct cce_vocab *vocab;  /* NULL: no (usable) tokenizer */
	struct cce_model *engine; /* NULL: inference cannot run on this model (engine_note says why) */
	char engine_note[256];    /* "llama, gpt2 tokenizer", or why not */
	uint64_t gpu_layers_req;  /* layers to offload to the OpenCL device at the load (UINT64_MAX: all) */
	int pack_req;             /* pack the weights at the load (the pack_weights setting) */
	uint32_t gpu_layers;      /* layers offloaded (written by the loader thread) */
	uint64_t device_bytes;    /* their weights' bytes on the device */
	struct ccd_sched *sched;  /* runs the model's sessions (sched.c); started at the first one */

	/* Shared with the loader thread while it runs. */
	struct ccm_progress prog;
	_Atomic uint64_t total; /* tensor bytes, known once the header is parsed (0 before) */
	_Atomic int done;       /* the loader thread has finished (join it) */
	double t0;
	pthread_t thread;
	int thread_live;
	int evfd; /* the registry's eventfd, written when done */

	struct ccd_waiter *load_waiters;
	struct ccd_waiter *unload_waiters;
};

struct ccd_models {
	struct ccd_model *all;
	int evfd;            /* readable when a loader thread has finished */
	unsigned count;      /* entries in all */
	unsigned ready;      /* of which ready */
	uint64_t bytes;      /* tensor bytes of the ready models */
	uint64_t gpu_layers; /* the gpu_layers setting: layers each new load offloads (UINT64_MAX: all) */
	int pack;            /* the pack_weights setting: each new load packs its weights */
};

int ccd_models_init(struct ccd_models *ms);
/* Cancel running loads, wait for the loader threads, free every model. */
void ccd_models_fini(struct ccd_models *ms);

/* Valid model name: [A-Za-z0-9._-]{1,63}, not starting with '.' or '-'. */
int ccd_model_name_ok(const char *name);

/*
 * Register name and start loading path in a loader thread. Returns 0 (the
 * model is in state LOADING), -EEXIST if the name is taken, -EINVAL for a
 * bad name, -EMFILE past max_models, -errno when the thread cannot start;
 * err says why.
 */
int ccd_model_start(struct ccd_models *ms, const char *name, const char *path, enum ccm_mode mode,
                    const struct ccm_place *place, unsigned max_models, struct ccd_model **ret, char *err,
                    size_t errsize);

struct ccd_model *ccd_model_find(struct ccd_models *ms, const char *name);

/*
 * Collect loader threads that have finished (call when evfd is readable):
 * join each, set its state (READY, or FAILED with err), then call fn(arg, m),
 * which may free m. Returns how many finished.
 */
int ccd_models_collect(struct ccd_models *ms, void (*fn)(void *arg, struct ccd_model *m), void *arg);

/* Remove m from the registry and free it (no users, no loader thread). */
void ccd_model_free(struct ccd_models *ms, struct ccd_model *m);

/* Bytes loaded so far and in all (0 before the header is parsed). */
void ccd_model_progress(const struct ccd_model *m, uint64_t *done, uint64_t *total);

const char *ccd_model_state_name(enum ccd_model_state s);

/* Append a waiter for a deferred reply; -ENOMEM. */
int ccd_waiter_add(struct ccd_waiter **list, const void *ident, size_t identlen, uint64_t req_id);
/* Free a list of waiters (once answered). */
void ccd_waiters_free(struct ccd_waiter *w);

#endif /* CCD_MODELS_H */
