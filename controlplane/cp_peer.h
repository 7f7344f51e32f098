/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cp_peer: the link between the control planes of two hosts.
 *
 * A control plane listens on TCP (controlplane.peer_listen) for its peers and
 * knows them from the config (controlplane.peers, "NAME=IP:PORT"). A
 * connection starts with a mutual HMAC-SHA256 challenge-response over the
 * shared key controlplane.peer_psk, then carries JSON lines in the control
 * socket's format ({"id", "method", "params"} -> {"id", "ok", "result" |
 * "error"}), for a short list of methods (session.open/stats/close,
 * peer.info, peer.check_dest).
 *
 * Handshake (S the listening side, C the connecting one, nonces 16 random
 * bytes in hex, MAC = HMAC-SHA256(psk, label || 0 || sn || cn || C || 0 || S)):
 *   S -> C {"type": "hello", "proto": "novacron-peer/2", "name": S, "nonce": sn}
 *   C -> S {"type": "auth", "name": C, "nonce": cn, "amst_ip": ..., "mac": MAC("client")}
 *   S -> C {"type": "welcome", "amst_ip": ..., "mac": MAC("server")}
 *        or {"type": "error", "message": "..."} and S closes
 * S refuses an unknown name, its own nonce echoed as C's and a wrong MAC
 * (sn is fresh per connection, so an old MAC never fits); C refuses a server
 * of another name or with a wrong MAC. Neither learns the key.
 *
 * After it, every line is {"seq": N, "body": "JSON TEXT", "mac": HEX} with
 * MAC = HMAC-SHA256(K, 'C' or 'S' (the sender's side) || N as 8 bytes
 * big-endian || body), N counting each way's messages from 0 and K =
 * HMAC-SHA256(psk, proto || 0 || "link" || 0 || sn || cn || C || 0 || S || 0
 * || C's amst_ip || 0 || S's amst_ip || 0): a message changed, replayed,
 * reordered or injected on the way, or an AMST address changed in the
 * handshake, ends the connection. Bodies are not encrypted: the link
 * carries control, no secrets.
 *
 * Return convention: constructors return a pointer or NULL with errno (and a
 * message in err); others 0 or a negative errno with a message in err.
 */
#ifndef CP_PEER_H
#define CP_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "nc_abi.h"

#define CP_PEER_PROTO     "novacron-peer/2"
#define CP_PEER_NONCE_LEN 16
#define CP_PEER_MAC_LEN   32
#define CP_PEER_NAME_MAX  63

struct cp;
struct cp_jsonl;

/* ---- the handshake, on any connected socket (unit-tested without a control plane) ---- */

/** One side's identity for the handshake. */
struct cp_peer_self {
	const char *name;    /**< our host name */
	const char *psk;     /**< the shared key */
	const char *amst_ip; /**< our AMST address ("" if none), told to the peer */
};

/** What a handshake learnt about the other side. */
struct cp_peer_other {
	char name[CP_PEER_NAME_MAX + 1];
	char amst_ip[16];
	uint8_t link_key[CP_PEER_MAC_LEN]; /**< K, for the messages after the handshake */
};

/** One side of an authenticated link (after a handshake). */
struct cp_peer_link {
	uint8_t key[CP_PEER_MAC_LEN];
	bool client;     /**< we connected: we send 'C' messages and take 'S' ones */
	uint64_t tx, rx; /**< sequence numbers of the next message out and in */
};

void cp_peer_link_init(struct cp_peer_link *l, const struct cp_peer_other *o, bool client);
/** Send @p msg wrapped. 0 or cp_jsonl's errors. */
int cp_peer_link_send(struct cp_jsonl *io, struct cp_peer_link *l, const json_t *msg,
                      int timeout_ms);
/** Receive and check one message: 0 and *@p msg, -EBADMSG (a bad envelope,
 *  MAC, sequence number or body: end the connection), or cp_jsonl's errors. */
int cp_peer_link_recv(struct cp_jsonl *io, struct cp_peer_link *l, json_t **msg, int timeout_ms);

/** A peer name: 1-63 letters, digits, '-', '_', '.'. */
bool cp_peer_name_ok(const char *s);

/** Copy @p ip to @p out if it is a dotted IPv4 address, else make @p out "". */
void cp_peer_copy_ip(char out[16], const char *ip);
/** Every byte of @p s outside printable ASCII made '?': for text that quotes
 *  a peer (a line break would forge a log line; a cut inside a UTF-8
 *  character makes a string jansson refuses). */
void cp_peer_printable(char *s);

/* ---- what a peer may ask (cp_peer_policy.c; unit-tested without a control plane) ---- */

/* A migration's sessions are named "mig-HOST.HASH-SEQ-PID" after the source
 * host: HOST its name cut to CP_PEER_SESSION_HOST characters, HASH the first
 * 6 hex digits of SHA-256 of the whole name (names fit NC_SESSION_NAME_LEN,
 * and hosts whose names share a beginning differ). What a peer may open,
 * read, steer and close here are the names of its prefix. */
#define CP_PEER_SESSION_HOST   8
#define CP_PEER_SESSION_PREFIX (4 + CP_PEER_SESSION_HOST + 1 + 6 + 1 + 1)

/** The session-name prefix of host @p host's migrations: "mig-HOST.HASH-". */
void cp_peer_session_prefix(const char *host, char out[CP_PEER_SESSION_PREFIX]);

/**
 * May a peer name @p addr as a receiving session's destination (or ask
 * peer.check_dest about it)? A UNIX socket whose directory, links
 * resolved, is one of @p allowed ("/DIR" entries) and not @p runtime_dir,
 * the socket itself not a link; a TCP address @p allowed lists ("tcp:IP"
 * for any port, or "tcp:IP:PORT"). 0, or -EPERM/-EINVAL/-ENOENT saying why.
 */
int cp_peer_dest_ok(const char *addr, const char *const *allowed, unsigned n_allowed,
                    const char *runtime_dir, char *err, size_t errlen);

/**
 * May @p peer call @p method with @p params over the peer link? session.open
 * only of a receiving session named with the peer's prefix
 * (cp_peer_session_prefix), that takes the peer's own INIT and delivers where
 * cp_peer_dest_ok allows; session.stats/set/close only of names with its
 * prefix; peer.check_dest as cp_peer_dest_ok. 0 or -EPERM (or
 * cp_peer_dest_ok's error) with the reason.
 */
int cp_peer_request_ok(const struct cp_peer_other *peer, const char *method, const json_t *params,
                       const char *const *allowed, unsigned n_allowed, const char *runtime_dir,
                       char *err, size_t errlen);

/** MAC of a handshake: @p label "client" or "server". 0 or -EIO. */
int cp_peer_mac(const char *psk, const char *label, const uint8_t sn[CP_PEER_NONCE_LEN],
                const uint8_t cn[CP_PEER_NONCE_LEN], const char *client, const char *server,
                uint8_t out[CP_PEER_MAC_LEN]);

/**
 * Connecting side: run the handshake on @p io expecting a server named
 * @p expect. -EACCES: authentication failed either way (message says which);
 * -EPROTO: not our protocol; transport errors as cp_jsonl.
 */
int cp_peer_handshake_client(struct cp_jsonl *io, const struct cp_peer_self *self,
                             const char *expect, struct cp_peer_other *other, int timeout_ms,
                             char *err, size_t errlen);

/**
 * Listening side: run the handshake on @p io; @p known says whether a
 * client name is one of our peers. Errors as for the client; the client is
 * told why before we return.
 */
int cp_peer_handshake_server(struct cp_jsonl *io, const struct cp_peer_self *self,
                             bool (*known)(const char *name, void *arg), void *arg,
                             struct cp_peer_other *other, int timeout_ms, char *err, size_t errlen);

/* ---- the control plane's peer link ---- */

/** Declare the "peers" component (reads the config, listens if peer_listen is set). */
int cp_peer_component(struct cp *cp);
/** Check the peer link's settings (names, peers, peer_dests, key,
 *  peer_listen) without starting anything: 0, or -EINVAL and why. */
int cp_peer_check_config(struct cp *cp, char *err, size_t errlen);

/** An authenticated connection to a peer. */
struct cp_peer_conn;

/** Is @p name one of our configured peers? */
bool cp_peer_known(const struct cp *cp, const char *name);

/** Our own host name among the peers. */
const char *cp_peer_self_name(const struct cp *cp);

/**
 * Connect to peer @p name and authenticate, within controlplane.peer_timeout_ms.
 * NULL with errno: ENOENT (not a configured peer), ECONNREFUSED, ETIMEDOUT,
 * EACCES (authentication), EPROTO; message in err.
 */
struct cp_peer_conn *cp_peer_connect(struct cp *cp, const char *name, char *err, size_t errlen);

/**
 * Call @p method with @p params (borrowed) on the peer, within the peer
 * time-out. On success *result is a new reference. -EREMOTEIO: the peer
 * answered an error (its message in err); transport errors mean the peer is
 * gone (the connection is useless afterwards).
 */
int cp_peer_call(struct cp_peer_conn *c, const char *method, json_t *params, json_t **result,
                 char *err, size_t errlen);

/** The peer's name and AMST address as it told us. */
const struct cp_peer_other *cp_peer_conn_other(const struct cp_peer_conn *c);

void cp_peer_conn_close(struct cp_peer_conn *c);
/** Is @p c (not NULL) still usable? A link that failed a check or a send,
 *  or lost a reply other than by a time-out, is not: calls on it fail at
 *  once, and it takes a new connection. */
bool cp_peer_conn_ok(const struct cp_peer_conn *c);

#endif /* CP_PEER_H */
