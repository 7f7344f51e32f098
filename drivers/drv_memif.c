/* SPDX-License-Identifier: BSD-3-Clause */
/* drv_memif: shared-memory packet interface between two DPDK processes (net_memif). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "drv_common.h"

/* The keys DPDK 22.11's net_memif knows (its PMD_INFO_STRING). */
static const char *const memif_keys[] = {
        "id",  "role",   "bsize",     "rsize", "socket", "socket-abstract",
        "mac", "secret", "zero-copy", NULL};
/* The PMD's own default is an abstract socket, which any process in the
 * network namespace may connect to whatever the directory's mode says: a
 * socket file, unless the config asks otherwise. */
static const char *const memif_defaults[] = {"socket-abstract=no", NULL};

/* The PMD keeps the secret in a 24-byte field and cuts a longer one short:
 * two secrets that differ only after that would match. */
#define MEMIF_SECRET_MAX 23

static bool is_mac(const char *s)
{
	for (int i = 0; i < 6; i++, s += 3) {
		if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]))
			return false;
		if (s[2] != (i < 5 ? ':' : '\0'))
			return false;
	}
	return true;
}

static int memif_check(const struct nc_drv_port *p, char *err, size_t errlen)
{
	static const char *const roles[] = {"server", "client", NULL};
	static const char *const yesno[] = {"yes", "no", NULL};
	int rc = drv_check_choice(p, "role", roles, err, errlen);
	if (rc == 0)
		rc = drv_check_choice(p, "zero-copy", yesno, err, errlen);
	if (rc == 0)
		rc = drv_check_choice(p, "socket-abstract", yesno, err, errlen);
	if (rc == 0)
		rc = drv_check_uint(p, "id", 0, UINT32_MAX, err, errlen);
	if (rc == 0)
		rc = drv_check_uint(p, "bsize", 64, 65535, err, errlen);
	if (rc == 0)
		rc = drv_check_uint(p, "rsize", 1, 14, err, errlen);
	const char *sock = nc_drv_arg(p, "socket");
	if (rc == 0 && sock && sock[0] != '/') {
		snprintf(err, errlen, "memif: socket '%s' must be an absolute path", sock);
		rc = -EINVAL;
	}
	if (rc == 0 && sock && strlen(sock) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(err, errlen, "memif: socket path is %zu bytes, at most %zu fit",
		         strlen(sock), sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		rc = -EINVAL;
	}
	const char *secret = nc_drv_arg(p, "secret");
	if (rc == 0 && secret && strlen(secret) > MEMIF_SECRET_MAX) {
		snprintf(
		        err, errlen,
		        "memif: secret is %zu characters, at most %d count (the PMD cuts it short)",
		        strlen(secret), MEMIF_SECRET_MAX);
		rc = -EINVAL;
	}
	const char *mac = nc_drv_arg(p, "mac");
	if (rc == 0 && mac && !is_mac(mac)) {
		snprintf(err, errlen, "memif: mac '%s' is not xx:xx:xx:xx:xx:xx", mac);
		rc = -EINVAL;
	}
	return rc;
}

/* A server's socket file left by a process that died: EAL's bind would fail
 * with "Address already in use". Removed if nothing listens on it; a live
 * one, or a path that is not a socket, is an error. */
static int memif_clear_stale(const char *sock, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(sock, &st) != 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "memif: %s exists and is not a socket", sock);
		return -EEXIST;
	}
	/* Non-blocking: a live server that stalled with a full backlog answers
	 * EAGAIN rather than hold the dataplane's start. */
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "memif: socket: %s", strerror(e));
		return -e;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, sock, strlen(sock));
	int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	close(fd);
	if (rc == 0 || e == EAGAIN || e == EINPROGRESS) {
		snprintf(err, errlen, "memif: another process is listening on %s", sock);
		return -EADDRINUSE;
	}
	if (e != ECONNREFUSED) {
		snprintf(err, errlen, "memif: cannot check %s: %s", sock, strerror(e));
		return -e;
	}
	if (unlink(sock) != 0 && errno != ENOENT) {
		e = errno;
		snprintf(err, errlen, "memif: cannot remove the stale %s: %s", sock, strerror(e));
		return -e;
	}
	return 0;
}

/* The PMD creates the socket but not its directory. */
static int memif_prepare(const struct nc_drv_port *p, char *err, size_t errlen)
{
	const char *sock = nc_drv_arg(p, "socket");
	const char *abstract = nc_drv_arg(p, "socket-abstract");
	if (abstract && strcmp(abstract, "yes") == 0)
		return 0;
	if (sock == NULL)
		sock = "/run/memif.sock"; /* the PMD's default */
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", sock);
	char *slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	int rc = drv_mkdir_p(dir, err, errlen);
	const char *role = nc_drv_arg(p, "role");
	if (rc == 0 && role != NULL && strcmp(role, "server") == 0) /* the PMD's default: client */
		rc = memif_clear_stale(sock, err, errlen);
	return rc;
}

static const struct nc_drv memif_drv = {
        .name = "memif",
        .pmd = "net_memif",
        .help = "shared-memory interface to another process (role=server|client, socket=PATH)",
        .keys = memif_keys,
        .defaults = memif_defaults,
        .check = memif_check,
        .prepare = memif_prepare,
        .frames_by_device = true,
};
NC_DRV_REGISTER(memif_drv)
