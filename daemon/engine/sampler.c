/* SPDX-License-Identifier: MIT */
/* sampler.c: token sampling (greedy, repetition penalty, top-k, top-p, min-p, temperature) with a seeded PRNG. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cck.h"
#include "engine.h"

/* The order is llama.cpp's common sampler chain: penalties, top-k, top-p, min-p, temperature, then a draw. */

#define MAX_TEMP 1000.0f
#define MAX_REPEAT_PENALTY 1000.0f
#define MAX_REPEAT_LAST_N (1 << 20)

struct cand {
	float logit;
	int32_t id;
};

struct cce_sampler {
	struct cce_sampling p;
	uint32_t n_vocab;
	uint64_t rng[4]; /* xoshiro256** */
	int32_t *hist;   /* the last repeat_last_n accepted tokens (a ring) */
	size_t hist_n, hist_next;
	uint32_t *seen; /* per token: the stamp of the last penalty pass that saw it */
	uint32_t stamp;
	struct cand *cand; /* n_vocab */
};

void cce_sampling_defaults(struct cce_sampling *s)
{
	if (!s)
		return;
	s->temp = 0.8f;
	s->top_k = 40;
	s->top_p = 0.95f;
	s->min_p = 0.05f;
	s->repeat_penalty = 1.0f;
	s->repeat_last_n = 64;
	s->seed = 0;
}

static int bad(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
	return -EINVAL;
}

int cce_sampling_check(const struct cce_sampling *s, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	if (!s)
		return bad(err, errlen, "no sampling parameters");
	if (!(s->temp >= 0.0f && s->temp <= MAX_TEMP))
		return bad(err, errlen, "temperature must be a number in [0, 1000] (0: greedy)");
	if (s->top_k < 0)
		return bad(err, errlen, "top_k must be >= 0 (0: off)");
	if (!(s->top_p >= 0.0f && s->top_p <= 1.0f))
		return bad(err, errlen, "top_p must be a number in [0, 1] (1: off)");
	if (!(s->min_p >= 0.0f && s->min_p <= 1.0f))
		return bad(err, errlen, "min_p must be a number in [0, 1] (0: off)");
	if (!(s->repeat_penalty > 0.0f && s->repeat_penalty <= MAX_REPEAT_PENALTY))
		return bad(err, errlen, "repeat_penalty must be a number in (0, 1000] (1: off)");
	if (s->repeat_last_n < 0 || s->repeat_last_n > MAX_REPEAT_LAST_N)
		return bad(err, errlen, "repeat_last_n must be in [0, 1048576] (0: off)");
	return 0;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(uint64_t *s)
{
	const uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

/* Uniform in [0, 1). */
static double rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) * 0x1p-53;
}

int cce_sampler_new(const struct cce_sampling *s, uint32_t n_vocab, struct cce_sampler **ret)
{
	struct cce_sampler *sm;
	uint64_t x;

	if (!ret)
		return -EINVAL;
	*ret = NULL;
	if (n_vocab == 0 || cce_sampling_check(s, NULL, 0))
		return -EINVAL;
	sm = calloc(1, sizeof(*sm));
	if (!sm)
		return -ENOMEM;
	sm->p = *s;
	sm->n_vocab = n_vocab;
	x = s->seed;
	for (int i = 0; i < 4; i++)
		sm->rng[i] = splitmix64(&x);
	sm->cand = malloc((size_t)n_vocab * sizeof(*sm->cand));
	sm->seen = calloc(n_vocab, sizeof(*sm->seen));
	if (s->repeat_last_n > 0)
		sm->hist = malloc((size_t)s->repeat_last_n * sizeof(*sm->hist));
	if (!sm->cand || !sm->seen || (s->repeat_last_n > 0 && !sm->hist)) {
		cce_sampler_free(sm);
		return -ENOMEM;
	}
	*ret = sm;
	return 0;
}

void cce_sampler_free(struct cce_sampler *s)
{
	if (!s)
		return;
	free(s->hist);
	free(s->seen);
	free(s->cand);
	free(s);
}

void cce_sampler_accept(struct cce_sampler *s, int32_t id)
{
	if (!s || s->p.repeat_last_n <= 0 || id < 0 || (uint32_t)id >= s->n_vocab)
		return;
	s->hist[s->hist_next] = id;
	s->hist_next = (s->hist_next + 1) % (size_t)s->p.repeat_last_n;
	if (s->hist_n < (size_t)s->p.repeat_last_n)
		s->hist_n++;
}

/* llama.cpp's repetition penalty: once per distinct recent token, logit / penalty if > 0, else logit * penalty. */
static void penalize(struct cce_sampler *s, float *logits)
{
	const float pen = s->p.repeat_penalty;

	if (pen == 1.0f || s->hist_n == 0)
		return;
	if (++s->stamp == 0) { /* wrapped: clear the stamps */
		memset(s->seen, 0, (size_t)s->n_vocab * sizeof(*s->seen));
		s->stamp = 1;
	}
	for (size_t i = 0; i < s->hist_n; i++) {
		const int32_t id = s->hist[i];

		if (s->seen[id] == s->stamp)
			continue;
		s->seen[id] = s->stamp;
		logits[id] = logits[id] <= 0.0f ? logits[id] * pen : logits[id] / pen;
	}
}

/* Larger logit first; equal logits by id, so that the order never depends on the sort's stability. */
static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->logit != y->logit)
		return x->logit > y->logit ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

/* The k best candidates, sorted, in c[0..k): a bounded insertion for small k, a full sort otherwise. */
static size_t top_k(struct cand *c, size_t n, size_t k)
{
	if (k == 0 || k >= n || k > 256) {
		qsort(c, n, sizeof(*c), cand_cmp);
		return k == 0 || k > n ? n : k;
	}
	/* keep c[0..m) sorted best first: each later candidate that beats c[m - 1] is inserted */
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		struct cand x = c[i];
		size_t j;

		if (m == k && cand_cmp(&x, &c[k - 1]) >= 0)
			continue;
		j = m < k ? m++ : k - 1;
		while (j > 0 && cand_cmp(&x, &c[j - 1]) < 0) {
			c[j] = c[j - 1];
			j--;
		}
		c[j] = x;
	}
	return m;
}

int32_t cce_sampler_sample(struct cce_sampler *s, float *logits)
{
	struct cand *c;
	size_t n;
	double sum, acc, u;
	float max, temp;

	if (!s || !logits)
		return -EINVAL;
	penalize(s, logits);
	if (s->p.temp <= 0.0f) {
		/* the first largest logit: libcck's SIMD argmax, unless it stopped at a NaN (which this skips) */
		double at;
		int32_t best = -1;

		if (cck_reduce_f32(CCK_OP_ARGMAX, logits, s->n_vocab, &at) == 0 && !isnan(logits[(size_t)at]))
			return (int32_t)at;
		for (uint32_t i = 0; i < s->n_vocab; i++)
			if (!isnan(logits[i]) && (best < 0 || logits[i] > logits[best]))
				best = (int32_t)i;
		return best < 0 ? 0 : best;
	}
	c = s->cand;
	for (uint32_t i = 0; i < s->n_vocab; i++) {
		c[i].logit = logits[i];
		c[i].id = (int32_t)i;
	}
	n = top_k(c, s->n_vocab, s->p.top_k > 0 ? (size_t)s->p.top_k : 0);
	/* c[0..n) is sorted from here on */
	if (s->p.top_p < 1.0f && n > 1) {
		max = c[0].logit;
		sum = 0.0;
		for (size_t i = 0; i < n; i++)
			sum += expf(c[i].logit - max);
		acc = 0.0;
		for (size_t i = 0; i < n; i++) {
			acc += expf(c[i].logit - max) / sum;
			if (acc >= s->p.top_p) {
				n = i + 1;
				break;
			}
		}
	}
	if (s->p.min_p > 0.0f && n > 1) {
		const float thr = c[0].logit + logf(s->p.min_p);
		size_t keep = 1;

		while (keep < n && c[keep].logit >= thr)
			keep++;
		n = keep;
	}
	if (n == 1)
		return c[0].id;
	temp = s->p.temp;
	max = c[0].logit / temp;
	sum = 0.0;
	for (size_t i = 0; i < n; i++) {
		c[i].logit = expf(c[i].logit / temp - max);
		sum += c[i].logit;
	}
	u = rng_unit(s->rng) * sum;
	acc = 0.0;
	for (size_t i = 0; i < n; i++) {
		acc += c[i].logit;
		if (u < acc)
			return c[i].id;
	}
	return c[n - 1].id;
}
