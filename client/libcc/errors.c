/* SPDX-License-Identifier: MIT */
/* errors.c: cc_strerror, the text of every error code libcc and ccd return, in this library's words. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* the GNU strerror_r */
#endif
#include "config.h"

#include <errno.h>
#include <string.h>

#include "libcc-internal.h"

/* Fallback text for codes outside the table: per thread, so cc_strerror stays thread-safe. */
static _Thread_local char other[128];

const char *cc_strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:
		return "success";
	case ECONNREFUSED:
		return "cannot reach ccd: is it running? start it with `ccd` (or set CC_ENDPOINT)";
	case ECONNRESET:
		return "lost ccd: the daemon exited or shut down";
	case EPROTO:
		return "protocol version mismatch with ccd";
	case ETIMEDOUT:
		return "ccd did not answer in time";
	case ENOENT:
		return "unknown op or region";
	case ESRCH:
		return "no such job (unknown id, or already collected)";
	case EINVAL:
		return "invalid argument (op arguments, tensor lengths or parameters)";
	case ERANGE:
		return "tensor out of bounds";
	case ENOSPC:
		return "a daemon limit was reached";
	case EMFILE:
		return "too many regions for this client (a daemon limit)";
	case EBUSY:
		return "busy: too many jobs in flight (a daemon limit), or the session is already generating";
	case ECANCELED:
		return "cancelled";
	case EUSERS:
		return "too many clients (a daemon limit)";
	case EMSGSIZE:
		return "message too large for ccd";
	case EBADMSG:
		return "malformed message";
	case ENOMEM:
		return "out of memory";
	case EOVERFLOW:
		return "tensor size overflows";
	case EPERM:
		return "permission denied (region not sealed, or the endpoint directory is not private)";
	case EACCES:
		return "permission denied";
	case EAGAIN:
		return "job still running";
	case ENAMETOOLONG:
		return "endpoint too long";
	case EPROTONOSUPPORT:
		return "unsupported endpoint transport (use ipc://PATH)";
	case ENOTSUP:
		return "not supported by this ccd";
	case ESHUTDOWN:
		return "ccd is shutting down";
	case EFAULT:
		return "bad address";
	case EIO:
		return "input/output error in ccd";
	default:
		break;
	}
	/* the GNU strerror_r returns a static string for a code it knows, and fills other only for the rest */
	return strerror_r(err, other, sizeof(other));
}
