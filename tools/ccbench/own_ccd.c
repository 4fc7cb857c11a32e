/* SPDX-License-Identifier: MIT */
/* own_ccd.c: a ccd that ccbench starts for itself (see own_ccd.h). */
#define _GNU_SOURCE 1
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "own_ccd.h"

#define START_S 15.0 /* until the ccd we started answers */
#define STOP_S 10.0  /* SIGTERM to exit */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The ccd to start: $CCD, else one next to ccbench (installed, or in the build tree). */
static int find_ccd(char *buf, size_t size)
{
	static const char *const rel[] = {"ccd", "../sbin/ccd", "../../daemon/ccd", "../../../daemon/ccd"};
	const char *env = getenv("CCD");
	char self[PATH_MAX], *slash;
	ssize_t len;
	size_t i;

	if (env && *env) {
		snprintf(buf, size, "%s", env);
		return access(buf, X_OK) == 0 ? 0 : -ENOENT;
	}
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len <= 0)
		return -ENOENT;
	self[len] = 0;
	slash = strrchr(self, '/');
	if (!slash)
		return -ENOENT;
	*slash = 0;
	for (i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		if ((size_t)snprintf(buf, size, "%s/%s", self, rel[i]) >= size)
			continue;
		if (access(buf, X_OK) == 0)
			return 0;
	}
	return -ENOENT;
}

static void own_ccd_log(const struct own_ccd *d)
{
	char buf[2048];
	ssize_t got;
	int fd = open(d->log, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	got = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (got > 0) {
		buf[got] = 0;
		fprintf(stderr, "ccbench: ccd's output:\n%s\n", buf);
	}
}

void own_ccd_stop(struct own_ccd *d)
{
	double end = now_s() + STOP_S;
	int st = 0;

	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		while (waitpid(d->pid, &st, WNOHANG) == 0) {
			if (now_s() > end) {
				fprintf(stderr, "ccbench: ccd (pid %d) ignored SIGTERM for %.0f s: SIGKILL\n",
				        (int)d->pid, STOP_S);
				kill(d->pid, SIGKILL);
				waitpid(d->pid, &st, 0);
				break;
			}
			usleep(5000);
		}
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "ccbench: the ccd it started ended with wait status 0x%x\n", st);
			own_ccd_log(d);
		}
		d->pid = 0;
	}
	unlink(d->sock);
	unlink(d->log);
	rmdir(d->dir);
}

int own_ccd_start(struct own_ccd *d, const char *const *opts, cc_client **ret)
{
	char ccd[PATH_MAX];
	double end;
	int err, logfd;
	pid_t parent = getpid();

	memset(d, 0, sizeof(*d));
	err = find_ccd(ccd, sizeof(ccd));
	if (err) {
		fprintf(stderr, "ccbench: no ccd to start: set CCD=/path/to/ccd\n");
		return err;
	}
	snprintf(d->dir, sizeof(d->dir), "/tmp/ccbench.XXXXXX");
	if (!mkdtemp(d->dir))
		return -errno;
	snprintf(d->sock, sizeof(d->sock), "%s/ccd.sock", d->dir);
	snprintf(d->endpoint, sizeof(d->endpoint), "ipc://%s", d->sock);
	snprintf(d->log, sizeof(d->log), "%s/ccd.log", d->dir);
	logfd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (logfd < 0) {
		err = -errno;
		rmdir(d->dir);
		return err;
	}
	fflush(stdout);
	d->pid = fork();
	if (d->pid < 0) {
		err = -errno;
		close(logfd);
		own_ccd_stop(d);
		return err;
	}
	if (d->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		dup2(logfd, 1);
		dup2(logfd, 2);
		{
			const char *argv[4 + 2 * OWN_CCD_MAX_OPTS + 1] = {ccd, "--foreground", "--endpoint", d->endpoint};
			int n = 4;

			for (int i = 0; opts && opts[i] && i < OWN_CCD_MAX_OPTS; i++) {
				argv[n++] = "-o";
				argv[n++] = opts[i];
			}
			argv[n] = NULL;
			execv(ccd, (char *const *)(uintptr_t)argv);
		}
		fprintf(stderr, "exec %s: %s\n", ccd, strerror(errno));
		_exit(127);
	}
	close(logfd);
	fprintf(stderr, "ccbench: started %s (pid %d) on %s\n", ccd, (int)d->pid, d->endpoint);
	end = now_s() + START_S;
	for (;;) {
		int st;

		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			fprintf(stderr, "ccbench: ccd exited (wait status 0x%x)\n", st);
			own_ccd_log(d);
			d->pid = 0;
			own_ccd_stop(d);
			return -ECHILD;
		}
		if (access(d->sock, F_OK) == 0 && cc_connect(d->endpoint, ret) == 0)
			return 0;
		if (now_s() > end) {
			fprintf(stderr, "ccbench: ccd did not answer within %.0f s\n", START_S);
			own_ccd_log(d);
			own_ccd_stop(d);
			return -ETIMEDOUT;
		}
		usleep(10000);
	}
}
