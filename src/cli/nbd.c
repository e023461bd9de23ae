/* xvm nbd: export one disk image over NBD (TCP or a Unix socket). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "block/block.h"
#include "cli/cli.h"
#include "lib/log.h"
#include "lib/util.h"
#include "nbd/proto.h"
#include "nbd/server.h"

static void usage(FILE *f)
{
	fprintf(f,
"usage: xvm nbd [options] IMAGE\n"
"\n"
"Serves IMAGE (raw or qcow2) to NBD clients (nbdinfo, nbdcopy, qemu-img,\n"
"nbd-client, the Linux nbd driver) with the fixed newstyle handshake,\n"
"structured replies and the base:allocation block-status context.\n"
"\n"
"options:\n"
"  -b, --bind ADDR         listen on ADDR (default 127.0.0.1)\n"
"  -p, --port N            TCP port (default %d)\n"
"  -k, --socket PATH       listen on a Unix socket instead of TCP\n"
"  -r, --read-only         export read-only (writes fail with EPERM)\n"
"  -x, --export-name NAME  the export's name (default \"\": the default export)\n"
"  -D, --description TEXT  description shown by NBD_OPT_LIST / NBD_OPT_INFO\n"
"  -f, --format FMT        image format: raw or qcow2 (default: probe)\n"
"  -e, --shared N          serve up to N clients at once (default 16)\n"
"  -t, --persistent        keep serving after the last client disconnects\n"
"                          (default: exit when it does, like qemu-nbd)\n"
"      --fork              go to the background once listening\n"
"      --pid-file PATH     write the server's process id to PATH\n"
"  -n, --nocache           open the image with O_DIRECT where possible\n"
"  -v, --verbose           log client connections and errors\n"
"  -h, --help              this help\n"
"\n"
"SIGTERM or SIGINT stops the server: it stops accepting, finishes the\n"
"requests in flight, flushes the image and exits 0.\n", NBD_DEFAULT_PORT);
}

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_err("socket path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_err("%s exists and is not a socket", path);
			return -1;
		}
		unlink(path); /* a stale socket from an earlier run */
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		log_err("cannot listen on %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int listen_tcp(const char *addr, const char *port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res;
	int e = getaddrinfo(addr, port, &hints, &res);
	if (e) {
		log_err("cannot resolve %s port %s: %s", addr, port, gai_strerror(e));
		return -1;
	}
	int fd = -1, err = 0;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
			err = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		log_err("cannot listen on %s port %s: %s", addr, port, strerror(err));
	return fd;
}

static int write_pid_file(const char *path, pid_t pid)
{
	FILE *f = fopen(path, "w");
	if (!f || fprintf(f, "%d\n", (int)pid) < 0 || fclose(f) != 0) {
		log_err("cannot write the pid file %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

enum { OPT_FORK = 256, OPT_PID_FILE };

int cmd_nbd(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "bind", required_argument, NULL, 'b' },
		{ "port", required_argument, NULL, 'p' },
		{ "socket", required_argument, NULL, 'k' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "export-name", required_argument, NULL, 'x' },
		{ "description", required_argument, NULL, 'D' },
		{ "format", required_argument, NULL, 'f' },
		{ "shared", required_argument, NULL, 'e' },
		{ "persistent", no_argument, NULL, 't' },
		{ "fork", no_argument, NULL, OPT_FORK },
		{ "pid-file", required_argument, NULL, OPT_PID_FILE },
		{ "nocache", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *bind_addr = "127.0.0.1", *socket_path = NULL, *format = NULL;
	const char *pid_file = NULL;
	char port[16];
	snprintf(port, sizeof(port), "%d", NBD_DEFAULT_PORT);
	struct nbd_export exp = { .name = "" };
	struct nbd_server_opts opts = { .max_clients = 16 };
	bool daemonize = false, direct = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:b:p:k:rx:D:f:e:tnvh", longopts, NULL)) != -1) {
		uint64_t v;
		switch (c) {
		case 'b': bind_addr = optarg; break;
		case 'p':
			if (!parse_u64(optarg, &v) || v == 0 || v > 65535) {
				log_err("invalid port '%s' (1-65535)", optarg);
				return 2;
			}
			snprintf(port, sizeof(port), "%u", (unsigned)v);
			break;
		case 'k': socket_path = optarg; break;
		case 'r': exp.readonly = true; break;
		case 'x':
			if (strlen(optarg) > NBD_MAX_STRING) {
				log_err("export name longer than %d bytes", NBD_MAX_STRING);
				return 2;
			}
			exp.name = optarg;
			break;
		case 'D':
			if (strlen(optarg) > NBD_MAX_STRING) {
				log_err("description longer than %d bytes", NBD_MAX_STRING);
				return 2;
			}
			exp.description = optarg;
			break;
		case 'f': format = optarg; break;
		case 'e':
			if (!parse_u64(optarg, &v) || v == 0 || v > 1024) {
				log_err("invalid --shared '%s' (1-1024)", optarg);
				return 2;
			}
			opts.max_clients = (unsigned)v;
			break;
		case 't': opts.persistent = true; break;
		case 'n': direct = true; break;
		case 'v': opts.verbose = true; break;
		case OPT_FORK: daemonize = true; break;
		case OPT_PID_FILE: pid_file = optarg; break;
		case 'h': usage(stdout); return 0;
		case ':':
			log_err("option %s needs a value (try 'xvm nbd --help')", argv[optind - 1]);
			return 2;
		default:
			if (optopt)
				log_err("unknown option -%c (try 'xvm nbd --help')", optopt);
			else
				log_err("unknown option '%s' (try 'xvm nbd --help')", argv[optind - 1]);
			return 2;
		}
	}
	if (optind != argc - 1) {
		log_err(optind >= argc ? "no image given (try 'xvm nbd --help')"
				       : "one image only (try 'xvm nbd --help')");
		return 2;
	}
	const char *image = argv[optind];

	char err[512];
	unsigned flags = (exp.readonly ? BLOCK_OPEN_RDONLY : 0) | (direct ? BLOCK_OPEN_DIRECT : 0);
	int ret = block_open(image, format, flags, &exp.bd, err, sizeof(err));
	if (ret < 0) {
		log_err("%s", err);
		return 1;
	}
	int lfd = socket_path ? listen_unix(socket_path) : listen_tcp(bind_addr, port);
	if (lfd < 0) {
		block_close(exp.bd);
		return 1;
	}

	/* Signals arrive through a signalfd the accept loop polls; every thread
	 * (created later) inherits the mask. A dead client must not kill us. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (daemonize) {
		pid_t pid = fork();
		if (pid < 0) {
			log_err("fork: %s", strerror(errno));
			return 1;
		}
		if (pid > 0) {
			/* Already listening: clients can connect the moment we return. */
			int rc = pid_file && write_pid_file(pid_file, pid) < 0 ? 1 : 0;
			_exit(rc);
		}
		setsid();
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			close(nul);
		}
	} else if (pid_file && write_pid_file(pid_file, getpid()) < 0) {
		close(lfd);
		block_close(exp.bd);
		return 1;
	}

	int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		log_err("signalfd: %s", strerror(errno));
		return 1;
	}
	ret = nbd_server_run(&exp, lfd, sfd, &opts);
	close(sfd);
	close(lfd);
	if (socket_path)
		unlink(socket_path);
	if (pid_file)
		unlink(pid_file);
	int cret = block_close(exp.bd);
	if (ret == 0)
		ret = cret;
	if (ret < 0) {
		log_err("flushing %s failed: %s", image, strerror(-ret));
		return 1;
	}
	return 0;
}
