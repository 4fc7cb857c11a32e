/* SPDX-License-Identifier: MIT */
/* endpoint.h: the per-user default ccd endpoint, shared by ccd and libcc. */
#ifndef CC_IPC_ENDPOINT_H
#define CC_IPC_ENDPOINT_H

#include <stddef.h>

/*
 * Write the default endpoint for the calling user into buf (size bytes):
 * "ipc://$XDG_RUNTIME_DIR/ccd.sock" when XDG_RUNTIME_DIR is an absolute path
 * to a directory owned by us with no group/other access, else
 * "ipc:///tmp/cc-<uid>/ccd.sock". The fallback directory is created 0700
 * when create is set; either way it must be a real directory (not a
 * symlink) owned by us with mode 0700, or -EPERM is returned, so another
 * user cannot pre-create it and intercept the socket. Returns 0 or -errno
 * (-ENAMETOOLONG when buf is too small).
 */
int cc__endpoint_default(char *buf, size_t size, int create);

/* CC_ENDPOINT if set and non-empty, else the default. Same returns. */
int cc__endpoint_resolve(char *buf, size_t size, int create);

#endif /* CC_IPC_ENDPOINT_H */
