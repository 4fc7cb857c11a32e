/* SPDX-License-Identifier: MIT */
/* jobs.h: what ccd computes: a request checked against the client's regions, split in parts, run by a worker. */
#ifndef CCD_JOBS_H
#define CCD_JOBS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cc.pb-c.h"

struct ccd_client;
struct ccd_region;
struct ccd_regions;
struct ccd_infer;

/*
 * Kinds of job. Workers only call ccd_job_run(); the front end owns
 * everything else. The inference engine adds its job types here (and
 * their case in ccd_job_run) when it lands.
 */
enum ccd_job_type {
	CCD_JOB_KERNEL = 0,   /* one libcck call (a whole op or a part of one) */
	CCD_JOB_MODEL_MATVEC, /* y = W x, W a tensor of a loaded model */
	CCD_JOB_INFER,        /* generate or logits with a model's engine (struct ccd_infer) */
	CCD_JOB_TYPE_COUNT
};

#define CCD_JOB_MAX_REGIONS 3

struct ccd_job {
	struct ccd_job *next;   /* worker-pool queue link */
	struct ccd_job *parent; /* a part of a split job: the job that answers */
	unsigned parts_left;    /* the parent of a split job: parts not finished */
	int type;               /* enum ccd_job_type */
	int node;               /* NUMA node whose workers run it */
	struct ccd_client *client;
	uint64_t req_id;
	/* Regions the job reads or writes; the parent holds references while queued or running. */
	struct ccd_region *regions[CCD_JOB_MAX_REGIONS];
	int nregions;

	/* CCD_JOB_KERNEL: arguments of the libcck call, checked by ccd_job_prepare() */
	int op, kind;
	const float *in[2];
	float *out;
	size_t len;       /* elements (unary, binary, reductions) */
	uint64_t m, k, n; /* matrix shapes (matvec: m rows, k cols) */
	float params[2];
	uint64_t work; /* elements, or multiply-adds for matrix ops: decides inline and splitting */
	size_t chunk;  /* split jobs: elements (or matrix rows) per part, set by ccd_job_plan() */

	/* CCD_JOB_MODEL_MATVEC: the model's tensor (m rows of k columns, type wtype, wstride bytes per row) */
	void *model; /* struct ccd_model *: a user until the job is finished */
	const void *w;
	int wtype;
	size_t wstride;
	_Atomic int *cancel;     /* set when the model is force-unloaded */
	struct ccd_infer *infer; /* CCD_JOB_INFER: the request and its results */

	/* result, set by ccd_job_run() */
	int code;
	double value;
};

/*
 * Check an OpRequest of a client against its regions and fill a kernel
 * job (op, kind, pointers into the mappings, lengths, params, work, and
 * the regions used, without taking references). Nothing touches the
 * client's memory here. Returns 0, or a negative errno with a one-line
 * reason in err: -ENOENT (unknown op, no such region), -EINVAL (arity,
 * lengths, shapes, params, dtype, alignment, overlapping output), -ERANGE
 * (a tensor past the end of its region).
 */
int ccd_job_prepare(struct ccd_job *job, const Cc__OpRequest *req, const struct ccd_regions *regions, char *err,
                    size_t errsize);

/*
 * Check a model_matvec request (inputs = [x] of cols elements, output y of
 * rows elements, no overlap) and fill the job with the weight matrix w
 * (rows x cols of type wtype). Same returns as ccd_job_prepare.
 */
int ccd_job_prepare_model(struct ccd_job *job, const Cc__OpRequest *req, const struct ccd_regions *regions,
                          const void *w, int wtype, uint64_t rows, uint64_t cols, char *err, size_t errsize);

/*
 * Check an output tensor of exactly len f32 elements in the client's regions
 * and add its region to the job's; *ret points at it. Same returns as
 * ccd_job_prepare.
 */
int ccd_job_out_tensor(struct ccd_job *job, const Cc__TensorRef *t, const struct ccd_regions *regions, uint64_t len,
                       float **ret, char *err, size_t errsize);

/*
 * How many parts to split job into for a node with `workers` workers:
 * element-wise ops in parts of at least min_elements, matmul/matvec by
 * rows in parts of at least min_madds multiply-adds; 1 means "do not
 * split". Splitting never changes a result: parts start at multiples of
 * the alignment libcck splits at itself, and element-wise results do not
 * depend on where an array starts; reductions and whole-vector ops are
 * never split. Sets job->chunk for ccd_job_part().
 */
unsigned ccd_job_plan(struct ccd_job *job, unsigned workers, uint64_t min_elements, uint64_t min_madds);

/* Fill part i of nparts (from ccd_job_plan) of parent; parts are not empty. */
void ccd_job_part(const struct ccd_job *parent, unsigned i, unsigned nparts, struct ccd_job *part);

/* Run the job: sets job->code (0 or -errno) and job->value. Thread-safe; touches only job and its tensors. */
void ccd_job_run(struct ccd_job *job);

/* A one-line reason for a failed job (job->code != 0) that passed ccd_job_prepare. */
void ccd_job_strerror(const struct ccd_job *job, char *buf, size_t size);

#endif /* CCD_JOBS_H */
