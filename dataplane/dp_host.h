/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp_host: the host-side ends of AMST sessions, where QEMU's migration
 * connections (UNIX or TCP sockets on this host) meet AMST streams.
 *
 * On the sending host a session listens on an address; every connection it
 * accepts becomes a new AMST stream. On the receiving host every stream the
 * peer opens becomes a connection to the destination address, made in
 * stream-id order (stream k's connect starts once stream k-1's has
 * completed), so the destination QEMU accepts its connections in the order
 * the source QEMU made them (its first one is the main channel).
 *
 * Bytes move both ways with backpressure end to end: a socket is read only
 * as far as its stream has room (a socket whose stream is full leaves the
 * epoll interest set), a stream is read only as far as its socket takes it.
 * Beyond AMST's own stream buffers (sized by the config), each stream holds
 * at most DP_HOST_BOUNCE bytes: those read from AMST and not yet taken by its
 * socket. Host EOF becomes the stream's FIN; the peer's FIN becomes
 * shutdown(SHUT_WR); a socket error resets the stream; a reset from the peer,
 * or a session that ends, closes the socket abortively (RST for TCP).
 *
 * Threading: one dp_host and its sessions belong to one thread (a worker's
 * poll loop). Everything is non-blocking. Memory: allocated when a dp_host,
 * session or stream is created, never per byte or packet. Nothing logs per
 * packet; slow paths log rate-limited (module "host").
 *
 * Return convention: constructors return a pointer or NULL with errno; other
 * calls return 0 / a count, or a negative errno; what cannot fail is void.
 */
#ifndef DP_HOST_H
#define DP_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include "amst_conn.h"
#include "hde.h"
#include "nc_abi.h"

/** Bytes a stream may hold that AMST delivered and its socket has not taken yet. */
#define DP_HOST_BOUNCE (64u * 1024)

/** Longest UNIX socket path (sun_path without its NUL). */
#define DP_HOST_PATH_MAX 107

/** Longest text dp_host_addr_format() writes, with its NUL. */
#define DP_HOST_ADDR_TEXT 128

/** Stream reset codes dp_host sends (amst_stream_reset); the peer's appear in its logs. */
#define DP_HOST_RESET_HOST       1 /* the host connection failed (reset, broken pipe, ...) */
#define DP_HOST_RESET_CONNECT    2 /* the receiving side could not connect to its address */
#define DP_HOST_RESET_UNEXPECTED 3 /* a stream opened by the wrong side of the session */
#define DP_HOST_RESET_NOMEM      4 /* no memory for the stream's state */
#define DP_HOST_RESET_GONE       5 /* the session's host side was destroyed mid-stream */
#define DP_HOST_RESET_CODEC      6 /* an HDE frame did not decode, or HDE could not be set up */
#define DP_HOST_RESET_VERIFY     7 /* a test stream carried bytes that are not the test pattern */

/** Most test streams one sending session opens (test:STREAMS): a session's most streams. */
#define DP_HOST_TEST_STREAMS_MAX 16

enum dp_host_family {
	DP_HOST_UNIX = 1,
	DP_HOST_TCP,
	DP_HOST_TEST, /**< test streams: made and checked inside the dataplane */
};

/**
 * A host address: "unix:/abs/path" or "tcp:IPv4:PORT" / "tcp:[IPv6]:PORT",
 * or test streams, "test:[STREAMS[:BYTES]]": no host connections, the
 * dataplane makes and checks the bytes itself, to measure what the path and
 * AMST carry with no host I/O in the way (an operator's link check, and
 * bench amst). A sending session opens STREAMS streams at once and writes
 * dp_host_test_pattern() on each (stream k starting k * 4099 bytes into it),
 * BYTES per stream and then FIN, or until the session closes; a receiving
 * session checks every byte against the pattern where it lies in AMST's
 * buffer and drops it; a byte that differs resets its stream
 * (DP_HOST_RESET_VERIFY) and counts as a host error. HDE is refused on test
 * streams.
 */
struct dp_host_addr {
	enum dp_host_family family;
	char path[DP_HOST_PATH_MAX + 1]; /**< DP_HOST_UNIX: absolute path */
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} ip;                  /**< DP_HOST_TCP: address and port (network order) */
	socklen_t ip_len;      /**< DP_HOST_TCP: sizeof the sockaddr in use */
	uint32_t test_streams; /**< DP_HOST_TEST: streams a sending session opens (0: none) */
	uint64_t test_bytes;   /**< DP_HOST_TEST: bytes per stream (0: until the session closes) */
};

/**
 * Parse a host address, strictly: "unix:" and an absolute path of at most
 * DP_HOST_PATH_MAX bytes; "tcp:" and a numeric IPv4 address or a bracketed
 * IPv6 address, a colon, and a decimal port 0-65535 (0 only makes sense for
 * dp_host_listen: an ephemeral port). Host names are refused, not resolved:
 * resolving would block the worker. "test:" alone (a receiving session), or
 * with STREAMS 1-DP_HOST_TEST_STREAMS_MAX and BYTES 1-2^50 in decimal with an
 * optional K, M, G or T (powers of 1024).
 *
 * @param text  the address (not kept)
 * @param out   filled on success, untouched on error
 * @param err   on error, a message naming the address and what is wrong
 *              (may be NULL when @p errlen is 0)
 * @return 0, or -EINVAL.
 */
int dp_host_addr_parse(const char *text, struct dp_host_addr *out, char *err, size_t errlen);

/**
 * Write @p a back as text in dp_host_addr_parse()'s syntax (for logs and
 * messages); @p buf of DP_HOST_ADDR_TEXT bytes always suffices.
 * @return the length written, or -EINVAL (bad address) / -ENOSPC (truncated).
 */
int dp_host_addr_format(const struct dp_host_addr *a, char *buf, size_t len);

/** Fill @p buf with the test pattern: one period of 65521 bytes, repeated. */
void dp_host_test_pattern(uint8_t *buf, size_t len);

/** All host-side sessions of one worker, behind one epoll fd. */
struct dp_host;

/** The host side of one AMST session. */
struct dp_host_sess;

/** A new dp_host with its epoll fd. NULL with errno (ENOMEM, EMFILE, ...). */
struct dp_host *dp_host_create(void);

/** Destroy @p h and every session still on it (as dp_host_sess_destroy). NULL is a no-op. */
void dp_host_destroy(struct dp_host *h);

/**
 * The epoll fd of @p h: it becomes readable when dp_host_poll() has socket
 * work. An idle worker waits on it (with its own timeout) instead of
 * sleeping. Owned by @p h: do not close it or change its interest set.
 */
int dp_host_fd(const struct dp_host *h);

/**
 * CLOCK_MONOTONIC of the next thing dp_host_poll() does on its own clock,
 * with no event to wake the worker: an HDE encoder framing what it holds
 * after 1 ms without input, a connect or accept tried again. UINT64_MAX:
 * none.
 */
uint64_t dp_host_next_ns(const struct dp_host *h);

/**
 * Sending side: listen on @p addr; every connection accepted there opens a
 * stream on @p c (amst_stream_open). A connection that gets no stream (the
 * stream limit, or the session is closing) is closed at once and counted
 * (refused). A UNIX socket file nobody listens on is replaced; one somebody
 * listens on, or a path that is not a socket, is an error; the socket file
 * is removed at dp_host_sess_destroy if it is still ours. TCP listens with
 * SO_REUSEADDR; port 0 picks an ephemeral port (dp_host_sess_local_addr).
 *
 * @p c is the caller's and must outlive the session; the caller feeds the
 * session c's events (dp_host_event) and calls dp_host_pump() after
 * amst_conn_input(). @p addr is copied.
 *
 * @return the session, or NULL with errno (EADDRINUSE, EACCES, EINVAL,
 *         ENOMEM, ...) and a message in @p err.
 */
struct dp_host_sess *dp_host_listen(struct dp_host *h, struct amst_conn *c,
                                    const struct dp_host_addr *addr, char *err, size_t errlen);

/**
 * Receiving side: every stream the peer opens on @p c becomes a connection
 * to @p addr, in stream-id order. A connect that fails resets its stream
 * (DP_HOST_RESET_CONNECT); the next stream then gets its turn. Nothing is
 * connected until a stream opens. Ownership as dp_host_listen().
 *
 * @return the session, or NULL with errno EINVAL (bad address, TCP port 0)
 *         or ENOMEM.
 */
struct dp_host_sess *dp_host_connect_to(struct dp_host *h, struct amst_conn *c,
                                        const struct dp_host_addr *addr);

/**
 * Hand the session one event the caller took from its amst_conn with
 * amst_conn_event() (every event, in order: STREAM_OPENED, READABLE,
 * WRITABLE, STREAM_RESET, CLOSED; others are ignored). READABLE and WRITABLE
 * only mark the stream: the bytes move in the next dp_host_pump() or
 * dp_host_poll(). STREAM_OPENED on the receiving side may start a connect.
 * A STREAM_RESET closes that stream's socket abortively and resets our
 * direction too; CLOSED (any code: streams still open are half-done) closes
 * every socket abortively and stops listening.
 */
void dp_host_event(struct dp_host_sess *s, const struct amst_event *ev);

/**
 * Wait up to @p timeout_ms (0: do not wait, -1: forever) for socket
 * readiness, then accept, connect and move bytes for every session of @p h
 * as far as sockets and streams allow (a bounded amount per stream per call,
 * so no stream starves the others).
 *
 * @return work done (bytes moved plus connections handled; 0: nothing to
 *         do), or a negative errno if epoll_wait() failed (EINTR counts as 0).
 */
long dp_host_poll(struct dp_host *h, int timeout_ms);

/**
 * Move bytes for @p s now, without waiting on sockets: the streams AMST made
 * readable or gave room since the last call, and notice a session that is
 * closing. Cheap when there is nothing to do (no system call). Call it after
 * amst_conn_input() and the events it produced.
 *
 * @return bytes moved (0: none).
 */
long dp_host_pump(struct dp_host_sess *s);

/**
 * Stop listening, close every connection still open (abortively when its
 * stream was not finished both ways, resetting the stream on a session
 * that still runs) and free @p s. The amst_conn is left alone. NULL is a
 * no-op.
 */
void dp_host_sess_destroy(struct dp_host_sess *s);

/**
 * The address @p s listens on, with the port the kernel chose for TCP port 0.
 * @return 0, -ENOTCONN (not a listening session, or it stopped listening).
 */
int dp_host_sess_local_addr(const struct dp_host_sess *s, struct dp_host_addr *out);

/** One stream's host side, for stats and tests. */
struct dp_host_stream_stats {
	uint32_t stream;    /**< AMST stream id */
	uint64_t to_amst;   /**< bytes read from the socket into the stream */
	uint64_t from_amst; /**< bytes written to the socket from the stream */
	uint32_t buffered;  /**< of those read from AMST, bytes not yet taken by the socket */
	bool host_eof;      /**< the socket said EOF; the stream has its FIN */
	bool amst_fin; /**< the peer's FIN was read; the socket is (or will be) shut for writing */
	bool reset;    /**< ended abortively (either side) */
	bool digest_done; /**< digest is the XXH3-128 of the finished stream's host bytes */
	uint8_t digest[NC_DIGEST_LEN]; /**< canonical form; see dp_host_sess_set_digest() */
	char state[16];                /**< "waiting", "connecting", "open", "closed", "reset" */
};

/**
 * Fill up to @p max entries of @p out with the session's streams, in stream-id
 * order, finished ones included. @return the number filled.
 */
unsigned dp_host_sess_streams(const struct dp_host_sess *s, struct dp_host_stream_stats *out,
                              unsigned max);

/**
 * Digest every stream of @p s (XXH3-128, incremental, no allocation per
 * byte; a check against our own faults, not an adversary: AMST
 * authenticates the bytes on the wire): the bytes read from the host connection on the sending
 * side, the bytes written to it on the receiving side. The digest of a stream is final once the
 * stream is finished that way (host EOF on the sending side; the peer's FIN and every byte before
 * it delivered on the receiving side) and is reported by dp_host_sess_streams(); a reset stream has
 * none. Call it before the first stream opens (right after dp_host_listen/connect_to; test streams,
 * which open with their session, are covered until the first dp_host_pump() or dp_host_poll()).
 */
void dp_host_sess_set_digest(struct dp_host_sess *s, bool on);

/** HDE on a session's streams (docs/hde.md). */
struct dp_host_codec {
	bool on;             /**< sending side: encode; receiving side: decode */
	struct hde_params p; /**< sending side: mode, setting, batch (cache_bytes unused) */
	size_t cache_bytes;  /**< the session's bound on HDE caches, all streams */
	unsigned streams;    /**< sending side: streams expected (the cache is split evenly) */
};

/**
 * Code the session's streams with HDE: the sending side encodes what its
 * host connections write, the receiving side decodes before delivering. Both
 * ends must agree (AMST's hello tells the receiver). Call it before the first
 * stream opens. Each sending stream gets cache_bytes / streams of cache
 * (streams beyond the expected count get what is left, possibly none); each
 * receiving stream gets what its encoder says it uses, refused (the stream is
 * reset) beyond what is left of cache_bytes. @return 0 or -EINVAL.
 */
int dp_host_sess_set_codec(struct dp_host_sess *s, const struct dp_host_codec *codec);

/** HDE's counters of a session (live streams and finished ones). */
struct dp_host_codec_stats {
	struct hde_stats hde; /**< summed over the streams (mem_peak: the largest) */
	uint64_t cache_bytes; /**< held by live streams now */
	uint64_t cache_peak;  /**< the most held at once */
	uint64_t cache_limit; /**< the session's bound */
	uint64_t errors;      /**< streams reset because a frame did not decode */
	uint64_t streams;     /**< streams that had a codec, live and finished */
};

void dp_host_sess_codec_stats(const struct dp_host_sess *s, struct dp_host_codec_stats *st);

/** Tell the session's encoders the link's delivery rate (bytes/s) for their adaptive choice. */
void dp_host_sess_set_link_rate(struct dp_host_sess *s, double bytes_per_s);

/** Counters of one session. */
struct dp_host_sess_stats {
	uint64_t accepted;       /**< connections accepted (sending side) */
	uint64_t refused;        /**< accepted connections closed for want of a stream */
	uint64_t connected;      /**< connections made (receiving side) */
	uint64_t connect_failed; /**< connects that failed; their streams were reset */
	uint64_t host_errors;    /**< streams reset because their socket failed */
	uint64_t peer_resets;    /**< streams the peer reset; their sockets closed abortively */
	uint64_t unexpected;     /**< streams opened by the wrong side, reset */
	uint64_t to_amst;        /**< bytes, all streams */
	uint64_t from_amst;      /**< bytes, all streams */
	/** sending side: bytes the peer sent for a connection that had closed
	 * with bytes of ours unread (its own bytes all went on), dropped */
	uint64_t dropped;
	uint64_t buffered;     /**< bytes in bounce buffers now */
	uint64_t buffered_max; /**< the most one stream's bounce buffer ever held */
	uint32_t streams_open; /**< streams with a socket open or connecting now */
	bool listening;        /**< a listening socket is open */
	bool ended;            /**< the session closed (or is closing): no more traffic */
	uint32_t end_code;     /**< its close code when ended (0: clean) */
};

void dp_host_sess_get_stats(const struct dp_host_sess *s, struct dp_host_sess_stats *st);

#endif /* DP_HOST_H */
