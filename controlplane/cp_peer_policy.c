/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cp_peer_policy: what a peer may ask of this host's session methods over
 * the peer link (see cp_peer.h). A peer is a migration's source: it opens
 * receiving sessions here that take its own INIT and deliver to the
 * destination QEMU, then reads, steers and closes those sessions. Without
 * these checks any one host of the cluster could make this host's
 * dataplane write the bytes it sends into a socket of its choice (this
 * control plane's own, a VM's monitor, a local TCP service) or end other
 * hosts' migrations.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/sha.h>

#include "cp_peer.h"

void cp_peer_session_prefix(const char *host, char out[CP_PEER_SESSION_PREFIX])
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)host, strlen(host), d);
	snprintf(out, CP_PEER_SESSION_PREFIX, "mig-%.*s.%02x%02x%02x-", CP_PEER_SESSION_HOST, host,
	         d[0], d[1], d[2]);
}

/* Is session @p name one of @p peer's (by its prefix)? */
static bool peers_session(const struct cp_peer_other *peer, const char *name)
{
	char pre[CP_PEER_SESSION_PREFIX];
	cp_peer_session_prefix(peer->name, pre);
	return name != NULL && strncmp(name, pre, strlen(pre)) == 0 && name[strlen(pre)] != '\0';
}

/* Is @p path (resolved) @p dir or below it? */
static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n == 1 && dir[0] == '/')
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* @p dir with its symbolic links resolved, or as written if it does not exist. */
static const char *resolved(const char *dir, char out[PATH_MAX])
{
	return realpath(dir, out) ? out : dir;
}

int cp_peer_dest_ok(const char *addr, const char *const *allowed, unsigned n_allowed,
                    const char *runtime_dir, char *err, size_t errlen)
{
	if (strncmp(addr, "tcp:", 4) == 0) {
		for (unsigned i = 0; i < n_allowed; i++) {
			size_t n = strlen(allowed[i]);
			if (strncmp(allowed[i], "tcp:", 4) == 0 &&
			    strncmp(addr, allowed[i], n) == 0 &&
			    (addr[n] == '\0' ||
			     (addr[n] == ':' && strchr(allowed[i] + 4, ':') == NULL)))
				return 0;
		}
		snprintf(err, errlen,
		         "destination %.100s: a peer may name a TCP destination only if "
		         "controlplane.peer_dests lists it",
		         addr);
		return -EPERM;
	}
	if (strncmp(addr, "unix:/", 6) != 0) {
		snprintf(err, errlen, "destination %.100s: must be unix:/PATH or tcp:IP:PORT",
		         addr);
		return -EINVAL;
	}
	const char *path = addr + 5;
	/* Its directory, symbolic links resolved: "..", "." and links cannot
	 * lead out of an allowed one. */
	char dir[PATH_MAX], real[PATH_MAX], tmp[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t dlen = (size_t)(slash - path);
	if (strlen(path) >= sizeof(dir) || slash[1] == '\0' || strcmp(slash + 1, ".") == 0 ||
	    strcmp(slash + 1, "..") == 0) {
		snprintf(err, errlen, "destination %.100s: not a socket's path", addr);
		return -EINVAL;
	}
	memcpy(dir, path, dlen);
	dir[dlen] = '\0';
	if (realpath(dlen ? dir : "/", real) == NULL) {
		snprintf(err, errlen, "destination %.100s: its directory: %s", addr,
		         strerror(errno));
		return -ENOENT;
	}
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
		snprintf(err, errlen, "destination %.100s: a symbolic link", addr);
		return -EPERM;
	}
	if (runtime_dir != NULL && runtime_dir[0] != '\0' &&
	    under(real, resolved(runtime_dir, tmp))) {
		snprintf(err, errlen,
		         "destination %.100s: in this host's runtime directory (its control "
		         "sockets)",
		         addr);
		return -EPERM;
	}
	for (unsigned i = 0; i < n_allowed; i++)
		if (allowed[i][0] == '/' && under(real, resolved(allowed[i], tmp)))
			return 0;
	snprintf(err, errlen,
	         "destination %.100s: a peer may name sockets only in this host's "
	         "controlplane.peer_dests directories or controlplane.libvirt_socket_dir",
	         addr);
	return -EPERM;
}

int cp_peer_request_ok(const struct cp_peer_other *peer, const char *method, const json_t *params,
                       const char *const *allowed, unsigned n_allowed, const char *runtime_dir,
                       char *err, size_t errlen)
{
	if (method == NULL)
		return 0; /* the registry answers that */
	const char *name = json_string_value(json_object_get(params, "name"));
	if (strcmp(method, "peer.check_dest") == 0) {
		const char *a = json_string_value(json_object_get(params, "address"));
		return a ? cp_peer_dest_ok(a, allowed, n_allowed, runtime_dir, err, errlen) : 0;
	}
	bool session = strcmp(method, "session.open") == 0 ||
	               strcmp(method, "session.stats") == 0 || strcmp(method, "session.set") == 0 ||
	               strcmp(method, "session.close") == 0;
	if (session && name != NULL && !peers_session(peer, name)) {
		char pre[CP_PEER_SESSION_PREFIX];
		cp_peer_session_prefix(peer->name, pre);
		snprintf(err, errlen, "session '%.64s' is not one of %s's (%s...)", name,
		         peer->name, pre);
		return -EPERM;
	}
	if (strcmp(method, "session.open") == 0) {
		const char *role = json_string_value(json_object_get(params, "role"));
		const char *from = json_string_value(json_object_get(params, "peer"));
		const char *to = json_string_value(json_object_get(params, "connect"));
		if (role == NULL || strcmp(role, "receive") != 0 ||
		    json_object_get(params, "listen") != NULL) {
			snprintf(err, errlen, "a peer may open receiving sessions only");
			return -EPERM;
		}
		if (from == NULL || strcmp(from, peer->amst_ip) != 0) {
			snprintf(err, errlen,
			         "a peer's session takes the INIT of its own AMST address (%s), "
			         "not %.20s",
			         peer->amst_ip, from ? from : "none");
			return -EPERM;
		}
		if (to == NULL) {
			snprintf(err, errlen,
			         "a peer's session must name its destination (connect)");
			return -EPERM;
		}
		return cp_peer_dest_ok(to, allowed, n_allowed, runtime_dir, err, errlen);
	}
	return 0;
}
