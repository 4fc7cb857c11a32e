/* SPDX-License-Identifier: MIT */
/* main.c: ccd's entry point: options and settings, claiming the socket, daemonizing, signals, startup, teardown. */
#define _GNU_SOURCE 1
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ccg.h"
#include "cck.h"
#include "conf.h"
#include "endpoint.h"
#include "log.h"
#include "numa.h"
#include "server.h"
#include "util.h"

#define EXIT_USAGE 2
#define PROBE_TIMEOUT_MS 1000
#define ENDPOINT_MAX 4096
#define SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

struct opts {
	const char *endpoint;
	const char *config;
	const char *threads;
	const char *pidfile;
	const char **settings; /* -o name=value, in order */
	int nsettings;
	const char **models; /* --model NAME=PATH[:mode], in order */
	int nmodels;
	int foreground;
	int log_level;
};

/* What main() must undo at exit: files it created and the endpoint lock. */
struct state {
	char endpoint[ENDPOINT_MAX];
	char sock_path[SUN_PATH_MAX]; /* the ipc:// socket file, "" for an abstract socket */
	char lock_path[SUN_PATH_MAX + 8];
	char pidfile[PATH_MAX];
	int lock_fd;
	int pidfile_written;
	int bound;
};

static void usage(FILE *f)
{
	fprintf(
	    f, "Usage: ccd [OPTION]...\n"
	       "Compute Core daemon: runs libcck vector ops for local clients (libcc) on tensors in shared\n"
	       "memory, with one worker pool per NUMA node.\n"
	       "\n"
	       "Options:\n"
	       "  -e, --endpoint URL     ZeroMQ endpoint to bind (ipc:// only); default: $CC_ENDPOINT, else\n"
	       "                         ipc://$XDG_RUNTIME_DIR/ccd.sock, else ipc:///tmp/cc-<uid>/ccd.sock\n"
	       "  -c, --config FILE      read settings from FILE: 'name = value' lines, '#' comments\n"
	       "  -t, --threads N        worker threads over all NUMA nodes (0: one per CPU); same as -o threads=N\n"
	       "  -f, --foreground       stay in the foreground and log to stderr (default: daemonize, log to syslog)\n"
	       "  -l, --log-level LEVEL  error, warn, info (default) or debug\n"
	       "  -p, --pidfile FILE     write the daemon's pid to FILE, removed at exit\n"
	       "  -o NAME=VALUE          set one setting (overrides --config; may be repeated)\n"
	       "  -m, --model NAME=PATH[:MODE]\n"
	       "                         load the GGUF model at PATH as NAME at start (may be repeated); MODE is\n"
	       "                         uring (default: io_uring reads into NUMA-interleaved memory) or mmap\n"
	       "  -h, --help             show this help and exit\n"
	       "  -V, --version          show the version and exit\n"
	       "\n"
	       "Settings (sizes take K/M/G/T suffixes):\n");
	ccd_conf_print_help(f);
	fprintf(f, "\n"
	           "Environment:\n"
	           "  CC_ENDPOINT            endpoint when --endpoint is not given (libcc and ccctl use it too)\n"
	           "  CC_FAKE_NUMA=N         split the CPUs into N fake NUMA nodes (tests: scheduling and\n"
	           "                         pinning run as on N nodes; no memory is placed)\n"
	           "  CCK_TIER=TIER          run libcck's kernels on this SIMD tier (scalar, sse2, avx2, avx512)\n"
	           "  CC_OPENCL_DEVICE=SEL   the OpenCL device while opencl_device is auto: none, an index\n"
	           "                         or a part of the name (`ccctl kernels` lists the devices)\n"
	           "  CC_BACKEND=BACKEND     auto, cpu or opencl when the backend setting is not given\n"
	           "\n"
	           "Stop it with SIGTERM or SIGINT or `ccctl shutdown`: queued jobs are cancelled, running\n"
	           "ones finish, then the socket (and pidfile) are removed. Exit status 0 on a clean stop.\n");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
	    {"endpoint", required_argument, NULL, 'e'},  {"config", required_argument, NULL, 'c'},
	    {"threads", required_argument, NULL, 't'},   {"foreground", no_argument, NULL, 'f'},
	    {"log-level", required_argument, NULL, 'l'}, {"pidfile", required_argument, NULL, 'p'},
	    {"model", required_argument, NULL, 'm'},     {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},         {NULL, 0, NULL, 0},
	};
	int c;

	o->log_level = CCD_LOG_INFO;
	o->settings = calloc((size_t)argc + 1, sizeof(*o->settings));
	o->models = calloc((size_t)argc + 1, sizeof(*o->models));
	if (!o->settings || !o->models) {
		fprintf(stderr, "ccd: out of memory\n");
		return -ENOMEM;
	}
	while ((c = getopt_long(argc, argv, "e:c:t:fl:p:o:m:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'e':
			o->endpoint = optarg;
			break;
		case 'c':
			o->config = optarg;
			break;
		case 't':
			o->threads = optarg;
			break;
		case 'f':
			o->foreground = 1;
			break;
		case 'l':
			o->log_level = ccd_log_parse_level(optarg);
			if (o->log_level < 0) {
				fprintf(stderr, "ccd: --log-level '%s': expected error, warn, info or debug\n", optarg);
				return -EINVAL;
			}
			break;
		case 'p':
			o->pidfile = optarg;
			break;
		case 'o':
			o->settings[o->nsettings++] = optarg;
			break;
		case 'm':
			o->models[o->nmodels++] = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("ccd (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
			exit(0);
		default:
			fprintf(stderr, "Try 'ccd --help' for more information.\n");
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ccd: unexpected argument '%s'\nTry 'ccd --help' for more information.\n",
		        argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* Settings: defaults, then the file, then -o and --threads in that order. */
static int load_settings(const struct opts *o, struct ccd_conf *conf)
{
	char err[512];
	int i, r;

	ccd_conf_defaults(conf);
	if (o->config) {
		r = ccd_conf_load(conf, o->config, err, sizeof(err));
		if (r < 0)
			goto out_err;
	}
	for (i = 0; i < o->nsettings; i++) {
		r = ccd_conf_set_option(conf, o->settings[i], err, sizeof(err));
		if (r < 0)
			goto out_err;
	}
	if (o->threads) {
		r = ccd_conf_set(conf, "threads", o->threads, err, sizeof(err));
		if (r < 0)
			goto out_err;
	}
	return 0;
out_err:
	ccd_error("%s", err);
	return r;
}

/* path made absolute against the current directory (ccd chdirs to / as a daemon). */
static int absolute(const char *path, char *buf, size_t size)
{
	char cwd[PATH_MAX];
	int n;

	if (path[0] == '/')
		n = snprintf(buf, size, "%s", path);
	else if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	else
		n = snprintf(buf, size, "%s/%s", cwd, path);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* A --model NAME=PATH[:MODE], checked and made absolute before ccd leaves its directory. */
struct preload {
	char name[128];
	char path[PATH_MAX];
	char mode[8];
};

/* Parse every --model; a file that cannot be read is an error at start. */
static int prepare_models(const struct opts *o, struct preload **ret)
{
	struct preload *pl = calloc((size_t)o->nmodels + 1, sizeof(*pl));
	char path[PATH_MAX];
	int i, r;

	if (!pl)
		return -ENOMEM;
	for (i = 0; i < o->nmodels; i++) {
		const char *arg = o->models[i], *eq = strchr(arg, '=');
		char *colon;

		if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof(pl[i].name) || !eq[1]) {
			ccd_error("--model '%s': expected NAME=PATH[:uring|:mmap]", arg);
			free(pl);
			return -EINVAL;
		}
		memcpy(pl[i].name, arg, (size_t)(eq - arg));
		snprintf(path, sizeof(path), "%s", eq + 1);
		colon = strrchr(path, ':');
		if (colon && (strcmp(colon, ":uring") == 0 || strcmp(colon, ":mmap") == 0)) {
			snprintf(pl[i].mode, sizeof(pl[i].mode), "%s", colon + 1);
			*colon = '\0';
		}
		r = absolute(path, pl[i].path, sizeof(pl[i].path));
		if (r == 0 && access(pl[i].path, R_OK) < 0)
			r = -errno;
		if (r < 0) {
			ccd_error("--model %s: cannot read %s: %s", pl[i].name, path, strerror(-r));
			free(pl);
			return r;
		}
	}
	*ret = pl;
	return 0;
}

/* Register the preloads: they load in the background while ccd serves. */
static int add_models(const struct preload *pl, int n, struct ccd_server *server)
{
	char err[512];
	int i, r;

	for (i = 0; i < n; i++) {
		r = ccd_server_add_model(server, pl[i].name, pl[i].path, pl[i].mode, err, sizeof(err));
		if (r < 0) {
			ccd_error("--model %s: %s", pl[i].name, err);
			return r;
		}
	}
	return 0;
}

static int resolve_endpoint(const struct opts *o, struct state *st)
{
	char path[PATH_MAX];
	const char *p;
	int r;

	if (o->endpoint)
		r = snprintf(st->endpoint, sizeof(st->endpoint), "%s", o->endpoint) >= (int)sizeof(st->endpoint)
		        ? -ENAMETOOLONG
		        : 0;
	else
		r = cc__endpoint_resolve(st->endpoint, sizeof(st->endpoint), 1);
	if (r < 0) {
		ccd_error("cannot find the endpoint: %s%s", strerror(-r),
		          r == -EPERM ? " (the socket directory must be ours, mode 0700, not a symlink)" : "");
		return r;
	}
	if (strncmp(st->endpoint, "ipc://", 6)) {
		ccd_error("endpoint %s: ccd serves ipc:// endpoints only (tcp:// needs CURVE, not there yet)",
		          st->endpoint);
		return -EPROTONOSUPPORT;
	}
	p = st->endpoint + 6;
	if (!*p) {
		ccd_error("endpoint %s: no socket path", st->endpoint);
		return -EINVAL;
	}
	if (p[0] == '@')
		return 0; /* abstract socket: no file */
	r = absolute(p, path, sizeof(path));
	if (r < 0 || strlen(path) >= SUN_PATH_MAX) {
		ccd_error("endpoint %s: socket path too long (at most %zu bytes)", st->endpoint, SUN_PATH_MAX - 1);
		return -ENAMETOOLONG;
	}
	memcpy(st->sock_path, path, strlen(path) + 1);
	snprintf(st->endpoint, sizeof(st->endpoint), "ipc://%s", path);
	return 0;
}

/* Whether anything accepts connections on the unix socket at path. */
static int someone_listens(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	int fd, r;

	if (len >= sizeof(sa.sun_path))
		return 0;
	memcpy(sa.sun_path, path, len + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return r;
}

/*
 * Make the endpoint ours: hold "<socket>.lock" (so two ccds started at once
 * cannot both bind; ZeroMQ would silently replace the other's socket file),
 * then refuse if a ccd answers there, or if something else listens, and
 * remove a stale socket file left by a ccd that was killed.
 */
static int claim_endpoint(struct state *st)
{
	struct stat sb;
	int r;

	if (!st->sock_path[0]) {
		r = ccd_server_probe(st->endpoint, PROBE_TIMEOUT_MS);
		if (r > 0) {
			ccd_error("ccd already running at %s", st->endpoint);
			return -EADDRINUSE;
		}
		return 0;
	}
	snprintf(st->lock_path, sizeof(st->lock_path), "%s.lock", st->sock_path);
	st->lock_fd = open(st->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (st->lock_fd < 0) {
		r = -errno;
		ccd_error("cannot use %s: %s", st->lock_path, strerror(-r));
		st->lock_path[0] = 0;
		return r;
	}
	if (flock(st->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		r = -errno;
		close(st->lock_fd);
		st->lock_fd = -1;
		st->lock_path[0] = 0;
		if (r == -EWOULDBLOCK) {
			ccd_error("ccd already running at %s", st->endpoint);
			return -EADDRINUSE;
		}
		ccd_error("cannot lock %s.lock: %s", st->sock_path, strerror(-r));
		return r;
	}
	if (lstat(st->sock_path, &sb) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(sb.st_mode)) {
		ccd_error("%s exists and is not a socket: not touching it", st->sock_path);
		return -EEXIST;
	}
	if (someone_listens(st->sock_path)) {
		if (ccd_server_probe(st->endpoint, PROBE_TIMEOUT_MS) > 0)
			ccd_error("ccd already running at %s", st->endpoint);
		else
			ccd_error("%s is in use by a program that is not ccd", st->sock_path);
		return -EADDRINUSE;
	}
	if (unlink(st->sock_path) < 0 && errno != ENOENT) {
		r = -errno;
		ccd_error("cannot remove the stale socket %s: %s", st->sock_path, strerror(-r));
		return r;
	}
	ccd_info("removed the stale socket %s", st->sock_path);
	return 0;
}

/* Close every descriptor from 3 up but keep_a and keep_b: a daemon must not hold its starter's pipes open. */
static void close_inherited(int keep_a, int keep_b)
{
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");
	int fd;

	if (!d)
		return;
	while ((de = readdir(d))) {
		fd = atoi(de->d_name);
		if (fd >= 3 && fd != keep_a && fd != keep_b && fd != dirfd(d))
			close(fd);
	}
	closedir(d);
}

/*
 * Fork; the parent waits until the child says it serves (a 0 byte on the
 * pipe: exit 0) or fails (EOF: exit 1), so `ccd && ccctl status` works.
 * The child starts a session, leaves the cwd, closes inherited descriptors
 * and drops stdin/stdout;
 * stderr stays until it is ready so startup errors reach the terminal.
 */
static int daemonize(int keep_fd, int *ret_notify)
{
	int p[2], fd;
	pid_t pid;
	char c;
	ssize_t n;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		while ((n = read(p[0], &c, 1)) < 0 && errno == EINTR)
			;
		_exit(n == 1 && c == 0 ? 0 : 1);
	}
	close(p[0]);
	close_inherited(keep_fd, p[1]);
	if (setsid() < 0 || chdir("/") < 0)
		return -errno;
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	close(fd);
	*ret_notify = p[1];
	return 0;
}

static void daemon_ready(int notify)
{
	char c = 0;
	int fd;

	if (notify < 0)
		return;
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		ccd_log_to_stderr(0);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	if (write(notify, &c, 1) != 1)
		ccd_warn("cannot tell the parent process that ccd is ready: %s", strerror(errno));
	close(notify);
}

static int write_pidfile(struct state *st)
{
	char buf[32];
	int fd, n, r = 0;

	fd = open(st->pidfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		r = -errno;
		ccd_error("cannot write the pidfile %s: %s", st->pidfile, strerror(-r));
		return r;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (write(fd, buf, (size_t)n) != n)
		r = -EIO;
	if (close(fd) < 0 && !r)
		r = -errno;
	st->pidfile_written = 1;
	if (r < 0)
		ccd_error("cannot write the pidfile %s: %s", st->pidfile, strerror(-r));
	return r;
}

/* Signals arrive on a signalfd read by the front end; every thread inherits the blocked mask. */
static int setup_signals(void)
{
	sigset_t mask;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0)
		return -EINVAL;
	fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/*
 * The OpenCL device (opencl_device, else CC_OPENCL_DEVICE, else the default rule) and the backend of the vector ops.
 * A device costs memory (a driver such as PoCL maps its compiler: about 70 MB of ccd's RSS) and, the first time on
 * a machine, seconds to build the kernels; so unless the settings ask for it now (gpu_layers, backend = opencl, a
 * named device) it is set up at its first use: an op big enough to be worth measuring, `ccctl kernels`, a model
 * offload. That happens in ccd's final process (a driver's threads do not survive daemonize's fork). No device, or
 * one that fails, only means every op runs on the CPU: ccd says why and goes on.
 */
static void opencl_log(int rc, const char *why)
{
	if (rc < 0)
		ccd_info("OpenCL: none: %s; ops run on the CPU", why);
	else
		ccd_info("OpenCL: %s; backend %s: %s", why, ccg_backend_name(ccg_get_backend()),
		         ccg_get_backend() == CCG_BACKEND_AUTO   ? "an op goes to the device from its measured crossover size"
		         : ccg_get_backend() == CCG_BACKEND_CPU ? "ops and model layers run on the CPU"
		                                                : "every op runs on the device");
}

static void opencl_setup(const struct ccd_conf *conf)
{
	const char *dev = ccd_conf_str(conf, CCD_CONF_OPENCL_DEVICE), *backend = ccd_conf_str(conf, CCD_CONF_BACKEND);
	double t0 = ccd_now_s();
	int r, now;

	if (strcmp(dev, "auto") != 0 && (r = ccg_select(dev)) < 0)
		ccd_warn("opencl_device = %s: %s", dev, strerror(-r));
	if (backend && (r = ccg_set_backend(ccg_backend_lookup(backend))) < 0)
		ccd_warn("backend = %s: %s", backend, strerror(-r));
#ifndef CC_HAVE_OPENCL
	ccd_info("OpenCL: none: %s; ops run on the CPU", ccg_why());
	return;
#endif
	if (ccg_get_backend() == CCG_BACKEND_CPU || !strcmp(dev, "none")) {
		ccd_info("OpenCL: none: %s; ops run on the CPU",
		         ccg_get_backend() == CCG_BACKEND_CPU ? "not used with backend = cpu" : "disabled by opencl_device = none");
		return;
	}
	now = ccg_get_backend() == CCG_BACKEND_OPENCL || strcmp(dev, "auto") != 0 || conf->v[CCD_CONF_GPU_LAYERS] != 0;
	ccg_on_init(opencl_log);
	if (!now) {
		ccd_info("OpenCL: set up at first use (an op of %d elements or more, ccctl kernels); backend %s", CCG_MIN_MEASURE,
		         ccg_backend_name(ccg_get_backend()));
		return;
	}
	ccg_init();
	ccd_debug("OpenCL set up in %.1f s", ccd_now_s() - t0);
}

static void cleanup_files(struct state *st)
{
	if (st->pidfile_written)
		unlink(st->pidfile);
	if (st->bound && st->sock_path[0])
		unlink(st->sock_path);
	if (st->lock_path[0])
		unlink(st->lock_path);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct state st = {.lock_fd = -1};
	struct ccd_conf conf;
	struct ccd_topo topo = {0};
	struct ccd_server *server = NULL;
	struct preload *preloads = NULL;
	char err[512];
	int notify = -1, sigfd = -1, status = 1, r;

	if (parse_args(argc, argv, &o) < 0) {
		free(o.settings);
		free(o.models);
		return EXIT_USAGE;
	}
	ccd_log_setup(o.log_level, 1, 0);
	if (load_settings(&o, &conf) < 0)
		goto out;
	ccd_conf_log(&conf);
	if (resolve_endpoint(&o, &st) < 0)
		goto out;
	if (o.pidfile && absolute(o.pidfile, st.pidfile, sizeof(st.pidfile)) < 0) {
		ccd_error("pidfile %s: path too long", o.pidfile);
		goto out;
	}
	if (prepare_models(&o, &preloads) < 0)
		goto out;
	/* The socket (and anything else ccd creates) is for our user only. */
	umask(077);
	if (ccd_topo_init(&topo, err, sizeof(err)) < 0) {
		ccd_error("%s", err);
		goto out;
	}
	if (claim_endpoint(&st) < 0)
		goto out_topo;

	if (!o.foreground) {
		r = daemonize(st.lock_fd, &notify);
		if (r < 0) {
			ccd_error("cannot daemonize: %s", strerror(-r));
			goto out_files;
		}
		/* After closing inherited descriptors: syslog keeps one of its own. */
		ccd_log_setup(o.log_level, 1, 1);
	}
	sigfd = setup_signals();
	if (sigfd < 0) {
		ccd_error("cannot set up signal handling: %s", strerror(-sigfd));
		goto out_files;
	}
	/*
	 * Kernel jobs get their parallelism from the worker pools: every libcck call of the front end and the
	 * workers runs on the thread that makes it (a per-thread cap of 1). Inference jobs lift the cap and use
	 * libcck's pool over engine_threads CPUs.
	 */
	if (cck_set_threads(0) < 0 || cck_set_local_threads(1) < 0)
		ccd_warn("cannot set libcck's threads");
	opencl_setup(&conf);

	r = ccd_server_new(st.endpoint, &conf, &topo, &server, err, sizeof(err));
	if (r < 0) {
		ccd_error("%s", err);
		goto out_sig;
	}
	st.bound = 1;
	if (st.pidfile[0] && write_pidfile(&st) < 0)
		goto out_server;
	if (add_models(preloads, o.nmodels, server) < 0) {
		status = 1;
		goto out_server;
	}
	ccd_info("ccd %s ready at %s: pid %ld, tier %s, %d NUMA node%s%s, %d CPUs", PACKAGE_VERSION, st.endpoint,
	         (long)getpid(), cck_tier(), topo.nnodes, topo.nnodes == 1 ? "" : "s",
	         topo.simulated ? " (simulated by CC_FAKE_NUMA)" : "", topo.ncpus);
	daemon_ready(notify);
	notify = -1;

	r = ccd_server_run(server, sigfd);
	status = r < 0 ? 1 : 0;
out_server:
	ccd_server_free(server);
	if (status == 0)
		ccd_info("stopped");
out_sig:
	if (sigfd >= 0)
		close(sigfd);
out_files:
	cleanup_files(&st);
	if (notify >= 0)
		close(notify);
out_topo:
	ccd_topo_fini(&topo);
out:
	free(o.settings);
	free(o.models);
	free(preloads);
	ccd_log_close();
	return status;
}
