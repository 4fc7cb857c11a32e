/* SPDX-License-Identifier: MIT */
/* own_ccd.h: a ccd that ccbench starts for itself (ipc, serve) on a private socket, and stops. */
#ifndef CCBENCH_OWN_CCD_H
#define CCBENCH_OWN_CCD_H

#include <sys/types.h>

#include "cc.h"

struct own_ccd {
	pid_t pid;
	char dir[64];
	char sock[96];
	char endpoint[112];
	char log[96];
};

/* Settings own_ccd_start passes at most (more are ignored). */
#define OWN_CCD_MAX_OPTS 8
/*
 * Start `ccd --foreground --endpoint ipc://<private dir>/ccd.sock [-o opt]...` ($CCD, else the ccd next to ccbench)
 * and connect to it (*ret). opts: NULL, or "name=value" settings ending with NULL. Returns 0 or -errno after saying
 * why on stderr.
 */
int own_ccd_start(struct own_ccd *d, const char *const *opts, cc_client **ret);
/* SIGTERM it (SIGKILL if it lingers), show its log if it did not exit cleanly, remove the directory. */
void own_ccd_stop(struct own_ccd *d);

#endif /* CCBENCH_OWN_CCD_H */
