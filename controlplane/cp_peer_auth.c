/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cp_peer_auth: the peer link's handshake (see cp_peer.h): mutual
 * HMAC-SHA256 challenge-response over the shared key, nonces from
 * RAND_bytes, MACs compared in constant time. Pure protocol over a
 * cp_jsonl: no control plane needed, so it is unit-tested and fuzzed alone.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "cp_jsonl.h"
#include "cp_peer.h"

/* ---- the handshake ---- */

static void to_hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static int from_hex(const char *s, uint8_t *b, size_t n)
{
	if (s == NULL || strlen(s) != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		char t[3] = {s[2 * i], s[2 * i + 1], 0};
		char *end;
		v = (unsigned)strtoul(t, &end, 16);
		if (*end != '\0' || t[0] == '+' || t[0] == '-' || t[0] == ' ')
			return -EINVAL;
		b[i] = (uint8_t)v;
	}
	return 0;
}

/* One piece of what a MAC covers. */
struct part {
	const void *p;
	size_t n;
};

/* HMAC-SHA256 under @p key of @p parts, in order. 0 or -EIO. */
static int hmac(const void *key, size_t keylen, const struct part *parts, unsigned n,
                uint8_t out[CP_PEER_MAC_LEN])
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *mc = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM prm[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
	                    OSSL_PARAM_construct_end()};
	size_t len = 0;
	int ok = mc != NULL && EVP_MAC_init(mc, key, keylen, prm);
	for (unsigned i = 0; ok && i < n; i++)
		ok = EVP_MAC_update(mc, parts[i].p, parts[i].n);
	ok = ok && EVP_MAC_final(mc, out, &len, CP_PEER_MAC_LEN) && len == CP_PEER_MAC_LEN;
	EVP_MAC_CTX_free(mc);
	EVP_MAC_free(mac);
	return ok ? 0 : -EIO;
}

/* A string with its NUL, so that the parts' boundaries are in the MAC. */
#define STR(s)                                                                                     \
	{                                                                                          \
		(s), strlen(s) + 1                                                                 \
	}

int cp_peer_mac(const char *psk, const char *label, const uint8_t sn[CP_PEER_NONCE_LEN],
                const uint8_t cn[CP_PEER_NONCE_LEN], const char *client, const char *server,
                uint8_t out[CP_PEER_MAC_LEN])
{
	const struct part parts[] = {STR(CP_PEER_PROTO),      STR(label),  {sn, CP_PEER_NONCE_LEN},
	                             {cn, CP_PEER_NONCE_LEN}, STR(client), STR(server)};
	return hmac(psk, strlen(psk), parts, 6, out);
}

/* K of the link after a handshake (cp_peer.h). */
static int link_key(const char *psk, const uint8_t sn[CP_PEER_NONCE_LEN],
                    const uint8_t cn[CP_PEER_NONCE_LEN], const char *client, const char *server,
                    const char *client_ip, const char *server_ip, uint8_t out[CP_PEER_MAC_LEN])
{
	const struct part parts[] = {
	        STR(CP_PEER_PROTO), STR("link"), {sn, CP_PEER_NONCE_LEN}, {cn, CP_PEER_NONCE_LEN},
	        STR(client),        STR(server), STR(client_ip),          STR(server_ip)};
	return hmac(psk, strlen(psk), parts, 8, out);
}

bool cp_peer_name_ok(const char *s)
{
	if (s == NULL || s[0] == '\0' || strlen(s) > CP_PEER_NAME_MAX)
		return false;
	for (const char *c = s; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.'))
			return false;
	return true;
}

void cp_peer_copy_ip(char out[16], const char *ip)
{
	struct in_addr a;
	out[0] = '\0';
	if (ip != NULL && inet_pton(AF_INET, ip, &a) == 1)
		snprintf(out, 16, "%s", ip);
}

void cp_peer_printable(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x7f || (unsigned char)*s < 0x20)
			*s = '?';
}

static void send_error(struct cp_jsonl *io, const char *msg, int timeout_ms)
{
	json_t *m = json_pack("{s:s, s:s}", "type", "error", "message", msg);
	(void)cp_jsonl_send(io, m, timeout_ms);
	json_decref(m);
}

static int recv_msg(struct cp_jsonl *io, const char *want, json_t **out, int timeout_ms, char *err,
                    size_t errlen, const char *who)
{
	int rc = cp_jsonl_recv(io, out, timeout_ms);
	if (rc != 0) {
		snprintf(err, errlen, "%s: handshake: %s", who, cp_jsonl_strerror(rc));
		return rc;
	}
	const char *type = json_string_value(json_object_get(*out, "type"));
	if (type != NULL && strcmp(type, "error") == 0) {
		const char *m = json_string_value(json_object_get(*out, "message"));
		snprintf(err, errlen, "%s refused us: %.200s", who, m ? m : "(no reason)");
		cp_peer_printable(err);
		json_decref(*out);
		*out = NULL;
		return -EACCES;
	}
	if (type == NULL || strcmp(type, want) != 0) {
		snprintf(err, errlen,
		         "%s: handshake: expected a '%s' message (not a NovaCron peer?)", who,
		         want);
		json_decref(*out);
		*out = NULL;
		return -EPROTO;
	}
	return 0;
}

int cp_peer_handshake_client(struct cp_jsonl *io, const struct cp_peer_self *self,
                             const char *expect, struct cp_peer_other *other, int timeout_ms,
                             char *err, size_t errlen)
{
	char who[96];
	snprintf(who, sizeof(who), "peer %s", expect);
	json_t *hello = NULL;
	int rc = recv_msg(io, "hello", &hello, timeout_ms, err, errlen, who);
	if (rc != 0)
		return rc;
	const char *proto = json_string_value(json_object_get(hello, "proto"));
	const char *sname = json_string_value(json_object_get(hello, "name"));
	uint8_t sn[CP_PEER_NONCE_LEN], cn[CP_PEER_NONCE_LEN], mac[CP_PEER_MAC_LEN];
	if (proto == NULL || strcmp(proto, CP_PEER_PROTO) != 0 || !cp_peer_name_ok(sname) ||
	    from_hex(json_string_value(json_object_get(hello, "nonce")), sn, sizeof(sn)) != 0) {
		snprintf(err, errlen, "%s: handshake: a bad hello (protocol %.32s)", who,
		         proto ? proto : "?");
		json_decref(hello);
		return -EPROTO;
	}
	if (strcmp(sname, expect) != 0) {
		snprintf(err, errlen, "%s: the host there calls itself '%.64s'", who, sname);
		json_decref(hello);
		return -EACCES;
	}
	json_decref(hello);
	if (RAND_bytes(cn, sizeof(cn)) != 1 ||
	    cp_peer_mac(self->psk, "client", sn, cn, self->name, expect, mac) != 0) {
		snprintf(err, errlen, "%s: no randomness or HMAC", who);
		return -EIO;
	}
	char cnh[2 * CP_PEER_NONCE_LEN + 1], mach[2 * CP_PEER_MAC_LEN + 1];
	to_hex(cn, sizeof(cn), cnh);
	to_hex(mac, sizeof(mac), mach);
	json_t *auth =
	        json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "auth", "name", self->name, "nonce",
	                  cnh, "amst_ip", self->amst_ip ? self->amst_ip : "", "mac", mach);
	rc = cp_jsonl_send(io, auth, timeout_ms);
	json_decref(auth);
	if (rc != 0) {
		snprintf(err, errlen, "%s: handshake: %s", who, cp_jsonl_strerror(rc));
		return rc;
	}
	json_t *w = NULL;
	rc = recv_msg(io, "welcome", &w, timeout_ms, err, errlen, who);
	if (rc != 0)
		return rc;
	uint8_t got[CP_PEER_MAC_LEN];
	if (from_hex(json_string_value(json_object_get(w, "mac")), got, sizeof(got)) != 0 ||
	    cp_peer_mac(self->psk, "server", sn, cn, self->name, expect, mac) != 0 ||
	    CRYPTO_memcmp(got, mac, sizeof(mac)) != 0) {
		snprintf(err, errlen,
		         "%s failed authentication: its key differs from ours "
		         "(controlplane.peer_psk)",
		         who);
		json_decref(w);
		return -EACCES;
	}
	snprintf(other->name, sizeof(other->name), "%s", expect);
	cp_peer_copy_ip(other->amst_ip, json_string_value(json_object_get(w, "amst_ip")));
	json_decref(w);
	if (link_key(self->psk, sn, cn, self->name, expect, self->amst_ip ? self->amst_ip : "",
	             other->amst_ip, other->link_key) != 0) {
		snprintf(err, errlen, "%s: no HMAC", who);
		return -EIO;
	}
	return 0;
}

int cp_peer_handshake_server(struct cp_jsonl *io, const struct cp_peer_self *self,
                             bool (*known)(const char *name, void *arg), void *arg,
                             struct cp_peer_other *other, int timeout_ms, char *err, size_t errlen)
{
	uint8_t sn[CP_PEER_NONCE_LEN], cn[CP_PEER_NONCE_LEN], mac[CP_PEER_MAC_LEN];
	char snh[2 * CP_PEER_NONCE_LEN + 1];
	if (RAND_bytes(sn, sizeof(sn)) != 1) {
		snprintf(err, errlen, "no randomness");
		return -EIO;
	}
	to_hex(sn, sizeof(sn), snh);
	json_t *hello = json_pack("{s:s, s:s, s:s, s:s}", "type", "hello", "proto", CP_PEER_PROTO,
	                          "name", self->name, "nonce", snh);
	int rc = cp_jsonl_send(io, hello, timeout_ms);
	json_decref(hello);
	if (rc != 0) {
		snprintf(err, errlen, "handshake: %s", cp_jsonl_strerror(rc));
		return rc;
	}
	json_t *auth = NULL;
	rc = recv_msg(io, "auth", &auth, timeout_ms, err, errlen, "client");
	if (rc != 0) {
		if (rc == -EPROTO)
			send_error(io, "expected an 'auth' message", timeout_ms);
		return rc;
	}
	const char *cname = json_string_value(json_object_get(auth, "name"));
	uint8_t got[CP_PEER_MAC_LEN];
	const char *why = NULL;
	if (!cp_peer_name_ok(cname) ||
	    from_hex(json_string_value(json_object_get(auth, "nonce")), cn, sizeof(cn)) != 0 ||
	    from_hex(json_string_value(json_object_get(auth, "mac")), got, sizeof(got)) != 0) {
		why = "a malformed auth message";
		rc = -EPROTO;
	} else if (!known(cname, arg)) {
		why = "unknown peer name (not in controlplane.peers)";
		rc = -EACCES;
	} else if (CRYPTO_memcmp(cn, sn, sizeof(sn)) == 0) {
		why = "the client echoed our nonce";
		rc = -EACCES;
	} else if (cp_peer_mac(self->psk, "client", sn, cn, cname, self->name, mac) != 0 ||
	           CRYPTO_memcmp(got, mac, sizeof(mac)) != 0) {
		why = "authentication failed: wrong key (controlplane.peer_psk differs)";
		rc = -EACCES;
	}
	if (why != NULL) {
		snprintf(err, errlen, "peer '%.64s': %s", cp_peer_name_ok(cname) ? cname : "?",
		         why);
		send_error(io, why, timeout_ms);
		json_decref(auth);
		return rc;
	}
	snprintf(other->name, sizeof(other->name), "%s", cname);
	cp_peer_copy_ip(other->amst_ip, json_string_value(json_object_get(auth, "amst_ip")));
	json_decref(auth);
	char mach[2 * CP_PEER_MAC_LEN + 1];
	if (cp_peer_mac(self->psk, "server", sn, cn, other->name, self->name, mac) != 0 ||
	    link_key(self->psk, sn, cn, other->name, self->name, other->amst_ip,
	             self->amst_ip ? self->amst_ip : "", other->link_key) != 0) {
		snprintf(err, errlen, "no HMAC");
		return -EIO;
	}
	to_hex(mac, sizeof(mac), mach);
	json_t *w = json_pack("{s:s, s:s, s:s}", "type", "welcome", "amst_ip",
	                      self->amst_ip ? self->amst_ip : "", "mac", mach);
	rc = cp_jsonl_send(io, w, timeout_ms);
	json_decref(w);
	if (rc != 0)
		snprintf(err, errlen, "handshake: %s", cp_jsonl_strerror(rc));
	return rc;
}

/* ---- the link after the handshake ---- */

void cp_peer_link_init(struct cp_peer_link *l, const struct cp_peer_other *o, bool client)
{
	memcpy(l->key, o->link_key, sizeof(l->key));
	l->client = client;
	l->tx = l->rx = 0;
}

static int link_mac(const struct cp_peer_link *l, char side, uint64_t seq, const char *body,
                    size_t n, uint8_t out[CP_PEER_MAC_LEN])
{
	uint8_t head[9];
	head[0] = (uint8_t)side;
	for (int i = 0; i < 8; i++)
		head[1 + i] = (uint8_t)(seq >> (56 - 8 * i));
	const struct part parts[] = {{head, sizeof(head)}, {body, n}};
	return hmac(l->key, sizeof(l->key), parts, 2, out);
}

int cp_peer_link_send(struct cp_jsonl *io, struct cp_peer_link *l, const json_t *msg,
                      int timeout_ms)
{
	char *body = json_dumps(msg, JSON_COMPACT);
	if (body == NULL)
		return -ENOMEM;
	uint8_t mac[CP_PEER_MAC_LEN];
	char mach[2 * CP_PEER_MAC_LEN + 1];
	int rc = link_mac(l, l->client ? 'C' : 'S', l->tx, body, strlen(body), mac);
	if (rc != 0) {
		free(body);
		return rc;
	}
	to_hex(mac, sizeof(mac), mach);
	json_t *env =
	        json_pack("{s:I, s:s, s:s}", "seq", (json_int_t)l->tx, "body", body, "mac", mach);
	free(body);
	if (env == NULL)
		return -ENOMEM;
	rc = cp_jsonl_send(io, env, timeout_ms);
	json_decref(env);
	if (rc == 0)
		l->tx++;
	return rc;
}

int cp_peer_link_recv(struct cp_jsonl *io, struct cp_peer_link *l, json_t **msg, int timeout_ms)
{
	json_t *env = NULL;
	*msg = NULL;
	int rc = cp_jsonl_recv(io, &env, timeout_ms);
	if (rc == -EPROTO)
		return -EBADMSG;
	if (rc != 0)
		return rc;
	const json_t *js = json_object_get(env, "seq");
	const char *body = json_string_value(json_object_get(env, "body"));
	size_t n = json_string_length(json_object_get(env, "body"));
	uint8_t got[CP_PEER_MAC_LEN], want[CP_PEER_MAC_LEN];
	rc = -EBADMSG;
	if (json_object_size(env) == 3 && json_is_integer(js) && body != NULL &&
	    (uint64_t)json_integer_value(js) == l->rx && strlen(body) == n &&
	    from_hex(json_string_value(json_object_get(env, "mac")), got, sizeof(got)) == 0 &&
	    link_mac(l, l->client ? 'S' : 'C', l->rx, body, n, want) == 0 &&
	    CRYPTO_memcmp(got, want, sizeof(want)) == 0) {
		json_t *m = json_loadb(body, n, JSON_REJECT_DUPLICATES, NULL);
		if (json_is_object(m)) {
			*msg = m;
			l->rx++;
			rc = 0;
		} else {
			json_decref(m);
		}
	}
	json_decref(env);
	return rc;
}
