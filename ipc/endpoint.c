/* SPDX-License-Identifier: MIT */
/* endpoint.c: find (and make safe) the per-user directory of the ccd socket. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "endpoint.h"

/* A directory only we can enter: ours, a real directory, no group/other bits. */
static int private_dir(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))
		return -EPERM;
	return 0;
}

static int fmt(char *buf, size_t size, const char *dir)
{
	int n = snprintf(buf, size, "ipc://%s/ccd.sock", dir);

	if (n < 0)
		return -EINVAL;
	/* sun_path holds 108 bytes: a longer socket path cannot be bound */
	if ((size_t)n >= size || strlen(dir) + sizeof("/ccd.sock") > 108)
		return -ENAMETOOLONG;
	return 0;
}

int cc__endpoint_default(char *buf, size_t size, int create)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char dir[64];
	int r;

	if (!buf || size == 0)
		return -EINVAL;
	if (xdg && xdg[0] == '/' && private_dir(xdg) == 0)
		return fmt(buf, size, xdg);
	snprintf(dir, sizeof(dir), "/tmp/cc-%u", (unsigned)geteuid());
	if (create && mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	r = private_dir(dir);
	if (r < 0)
		return r;
	return fmt(buf, size, dir);
}

int cc__endpoint_resolve(char *buf, size_t size, int create)
{
	const char *env = getenv("CC_ENDPOINT");
	int n;

	if (!buf || size == 0)
		return -EINVAL;
	if (!env || !*env)
		return cc__endpoint_default(buf, size, create);
	n = snprintf(buf, size, "%s", env);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return 0;
}
