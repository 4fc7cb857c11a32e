/* SPDX-License-Identifier: MIT */
/* tensor.c: tensors in sealed memfds, mapped by the client and registered with ccd as regions. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* memfd_create, F_ADD_SEALS */
#endif
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libcc-internal.h"

#define PAGE 4096u

/*
 * Why a memfd: it has no name in any filesystem, so another user cannot
 * open it (ccd reaches it through /proc/<pid>/fd, which needs ptrace rights
 * over us), and its seals forbid shrinking it, so the daemon's mapping can
 * never fault (no SIGBUS) whatever this process does afterwards.
 */
static int region_create(size_t bytes, int *ret_fd, void **ret_map)
{
	void *map;
	int fd, r;

	fd = memfd_create("cc-tensor", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)bytes) < 0) {
		r = -errno;
		goto err_fd;
	}
	map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		r = -errno;
		goto err_fd;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		r = -errno;
		goto err_map;
	}
	*ret_fd = fd;
	*ret_map = map;
	return 0;

err_map:
	munmap(map, bytes);
err_fd:
	close(fd);
	return r;
}

static void link_tensor(cc_client *c, cc_tensor *t)
{
	t->c = c;
	t->prev = NULL;
	t->next = c->tensors;
	if (c->tensors)
		c->tensors->prev = t;
	c->tensors = t;
}

void cc__tensor_drop(cc_tensor *t)
{
	cc_client *c = t->c;

	if (t->prev)
		t->prev->next = t->next;
	else
		c->tensors = t->next;
	if (t->next)
		t->next->prev = t->prev;
	munmap(t->data, t->map_size);
	close(t->fd);
	free(t);
}

int cc_tensor_new(cc_client *c, int dtype, size_t n, cc_tensor **ret)
{
	Cc__Request req = CC__REQUEST__INIT;
	Cc__RegionAdd add = CC__REGION_ADD__INIT;
	cc_tensor *t;
	size_t bytes;
	int r;

	if (!c || !ret || dtype != CC_DTYPE_F32)
		return -EINVAL;
	if (c->dead)
		return -ECONNRESET;
	/* at least one page, whole pages: even n == 0 gives ccd something to map */
	if (n > (SIZE_MAX - PAGE) / sizeof(float) || n * sizeof(float) > (size_t)INT64_MAX - PAGE)
		return -EOVERFLOW;
	bytes = (n * sizeof(float) + PAGE - 1) / PAGE * PAGE;
	if (bytes == 0)
		bytes = PAGE;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->n = n;
	t->map_size = bytes;
	r = region_create(bytes, &t->fd, &t->data);
	if (r < 0)
		goto err_free;
	t->region_id = ++c->next_region;

	add.region_id = t->region_id;
	add.fd = t->fd;
	add.size = bytes;
	req.body_case = CC__REQUEST__BODY_REGION_ADD;
	req.region_add = &add;
	r = cc__call(c, &req, c->control_timeout_ms, NULL);
	if (r < 0)
		goto err_region;
	link_tensor(c, t);
	*ret = t;
	return 0;

err_region:
	munmap(t->data, t->map_size);
	close(t->fd);
err_free:
	free(t);
	return r;
}

void *cc_tensor_data(cc_tensor *t)
{
	return t ? t->data : NULL;
}

size_t cc_tensor_len(const cc_tensor *t)
{
	return t ? t->n : 0;
}

void cc_tensor_free(cc_tensor *t)
{
	cc_client *c;

	if (!t)
		return;
	c = t->c;
	if (!c->dead) {
		Cc__Request req = CC__REQUEST__INIT;
		Cc__RegionFree rf = CC__REGION_FREE__INIT;

		rf.region_id = t->region_id;
		req.body_case = CC__REQUEST__BODY_REGION_FREE;
		req.region_free = &rf;
		/* nothing to do on failure: ccd frees the region at bye or when we die anyway */
		(void)cc__call(c, &req, c->control_timeout_ms, NULL);
	}
	cc__tensor_drop(t);
}
