/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * amst_conn: one AMST session, the sender's and the receiver's state machines
 * with no I/O and no clock of their own: the caller hands in received UDP
 * payloads and the current time, takes out packets to send, and is told when
 * to call again. So the same code runs in the dataplane's workers and under
 * the deterministic simulated network of the unit tests.
 *
 * A session carries many ordered, reliable byte streams in both directions.
 * Packet numbers are never reused; ACK frames carry ranges; loss is detected
 * by packet and time thresholds, with a probe timeout behind them; lost data
 * is sent again in new packets. Per-stream and per-session flow control bound
 * what the receiver must hold; sending is paced by the model-based congestion
 * controller (amst_cc.h). Every DATA packet is sealed with AES-256-GCM (or,
 * with sealing off, protected by a CRC32C); the packet-number set doubles as
 * the replay window. The wire format is in docs/amst.md.
 *
 * Memory: everything is allocated at create (and stream buffers at stream
 * open); input and output allocate nothing.
 *
 * Return convention: constructors return a pointer or NULL with errno; other
 * calls return 0 / a count, or a negative errno.
 */
#ifndef AMST_CONN_H
#define AMST_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amst_cc.h"
#include "amst_wire.h"

struct amst_span; /* amst_crypto.h */

/** The most spans amst_conn_output_spans() gives for one packet. */
#define AMST_MAX_SPANS 8

#define AMST_MAX_STREAMS 256
#define AMST_PSK_MAX     64

/* Why a received packet was dropped: enum and names from one list. */
#define AMST_FOREACH_DROP(X)                                                                       \
	X(SHORT, "short")                     /* shorter than a header and its tag */              \
	X(BAD_HEADER, "bad_header")           /* wrong version, type or flags */                   \
	X(UNKNOWN_SESSION, "unknown_session") /* connection id we do not know */                   \
	X(AUTH, "auth_failed")          /* AES-GCM tag did not verify: forged or corrupted */      \
	X(CRC, "bad_crc")               /* unsealed packet with a bad CRC32C: corrupted */         \
	X(UNSEALED, "unsealed")         /* sealing mismatch with the session */                    \
	X(REPLAY, "replay")             /* packet number already seen, or too old */               \
	X(MALFORMED, "malformed")       /* authentic but its frames do not parse */                \
	X(FLOW, "flow_control")         /* data beyond the windows we gave */                      \
	X(STREAM_LIMIT, "stream_limit") /* a stream id beyond the agreed number */                 \
	X(HANDSHAKE, "bad_handshake")   /* INIT/ACCEPT that does not authenticate or fit */        \
	X(STATE, "wrong_state")         /* a packet the session cannot take now */

enum amst_drop {
#define AMST_DROP_ENUM(sym, name) AMST_DROP_##sym,
	AMST_FOREACH_DROP(AMST_DROP_ENUM)
#undef AMST_DROP_ENUM
	        AMST_DROP_COUNT,
};

extern const char *const amst_drop_names[AMST_DROP_COUNT];

enum amst_state {
	AMST_HANDSHAKE, /**< client: INIT sent, waiting for ACCEPT */
	AMST_ESTABLISHED,
	AMST_CLOSING, /**< we sent CLOSE; draining */
	AMST_CLOSED,  /**< done; see amst_conn_error() */
};

struct amst_conn_cfg {
	bool client;        /**< true: sends INIT; false: made by amst_conn_accept */
	uint32_t local_cid; /**< our connection id, non-zero */
	const uint8_t *psk; /**< pre-shared key (copied), 16-64 bytes */
	size_t psk_len;
	bool seal;               /**< AES-256-GCM on data packets (both ends must agree) */
	uint32_t max_payload;    /**< UDP payload bytes per packet (MTU - 28) */
	uint32_t stream_buf;     /**< per stream and direction, bytes, power of two */
	uint64_t session_window; /**< unread bytes we accept across all streams */
	/** Unsent bytes a stream takes from the application, as time at the path's
	 *  estimated rate (at least AMST_UNSENT_MIN bytes); 0: only stream_buf bounds them. */
	uint64_t unsent_ns;
	/** The most the unsent limit comes to, bytes (0: no cap). */
	uint64_t unsent_max;
	/** Advertise each stream's whole buffer instead of windows that follow
	 *  the reader (see docs/amst.md, "Receive windows"). */
	bool full_window;
	uint16_t max_streams;     /**< streams the peer may open */
	uint64_t rate_cap;        /**< bytes/s, 0 = none */
	uint32_t idle_timeout_ms; /**< silence from the peer that ends the session */
	uint32_t handshake_timeout_ms;
	uint64_t seed; /**< for the congestion controller's randomness */
	/** The session's name. A client sends it in INIT; a server accepts only an
	 *  INIT that carries the same name (empty: any name). */
	char name[AMST_NAME_LEN];
	/** Wall clock (ms since the epoch) when the session is made. A client
	 *  stamps its INIT with it; a server (when non-zero) refuses an INIT
	 *  stamped more than AMST_INIT_MAX_AGE_MS away from it. */
	uint64_t wall_ms;
	/** The application's flags, sent in the hello (e.g. how stream bytes are coded). */
	uint8_t app_flags;
	/** Optional, servers: the PSK's handshake key, made once by the caller
	 *  (amst_handshake_key()) and used by one thread at a time. An INIT is
	 *  opened with it before anything is allocated for it; NULL: the key is
	 *  derived for each INIT. */
	struct amst_aead *hs_key;
};

struct amst_conn;

/** How far an INIT's time stamp may be from the receiver's clock. */
#define AMST_INIT_MAX_AGE_MS 30000u

/** The least a stream's unsent limit is (amst_conn_cfg.unsent_ns). */
#define AMST_UNSENT_MIN (256u * 1024)

/**
 * The INITs a server accepted lately, to refuse a replayed one (an attacker
 * who recorded an INIT could otherwise occupy a waiting receive session).
 * An entry is kept until its INIT's time stamp is too old to be accepted
 * anyway. Fixed size: no allocation.
 */
#define AMST_INIT_CACHE 64
struct amst_init_cache {
	struct {
		uint64_t pn;
		uint64_t time_ms;
	} e[AMST_INIT_CACHE];
	unsigned next;
};

/**
 * Remember the INIT that made @p c (a server session just accepted) at
 * @p now_ms. @return 0; -EALREADY if that INIT was accepted before (a
 * replay: destroy @p c); -ENOSPC if AMST_INIT_CACHE INITs were accepted
 * within the age window (refuse, rather than forget one).
 */
int amst_init_cache_add(struct amst_init_cache *cache, const struct amst_conn *c, uint64_t now_ms);

enum amst_event_type {
	AMST_EV_ESTABLISHED = 1,
	AMST_EV_STREAM_OPENED, /**< the peer opened stream id */
	AMST_EV_READABLE,      /**< stream id has bytes (or its end) to read */
	AMST_EV_WRITABLE,      /**< stream id has room again */
	AMST_EV_STREAM_RESET,  /**< the peer reset stream id with code (or AMST did:
	                        *   AMST_RESET_STREAM_LIMIT) */
	AMST_EV_CLOSED,        /**< the session ended; code 0 = clean */
};

/** The code of AMST_EV_STREAM_RESET for a stream the application opened
 * during the handshake beyond the number the peer's ACCEPT allows: nothing of
 * it was sent. Application codes stay below it. */
#define AMST_RESET_STREAM_LIMIT 0x10000u

struct amst_event {
	enum amst_event_type type;
	uint32_t stream;
	uint32_t code;
};

struct amst_conn_stats {
	uint64_t pkts_sent, pkts_recv, bytes_sent, bytes_recv;
	uint64_t stream_bytes_sent; /**< new stream bytes (first transmissions) */
	uint64_t stream_bytes_recv; /**< new stream bytes delivered in order */
	uint64_t retrans_bytes, pkts_lost, pto_count, acks_sent;
	uint64_t drops[AMST_DROP_COUNT];
	uint64_t srtt_ns, rttvar_ns, min_rtt_ns, latest_rtt_ns;
	uint64_t pacing_rate, btl_bw, cwnd, bytes_in_flight;
	uint64_t buffer_bytes; /**< of the streams' buffers in use, both directions */
	/** of our streams: bytes written and not yet acknowledged, plus 1 for
	 * each FIN or RESET not yet acknowledged (0: the peer has it all) */
	uint64_t unacked_bytes;
	enum amst_cc_state cc_state;
};

struct amst_conn;

/** The handshake key of @p psk (for amst_conn_cfg.hs_key; amst_aead_destroy()
 *  frees it), or NULL. */
struct amst_aead *amst_handshake_key(const uint8_t *psk, size_t psk_len);

/** A client session; its first output is INIT. NULL with errno (EINVAL, ENOMEM). */
struct amst_conn *amst_conn_client(const struct amst_conn_cfg *cfg, uint64_t now_ns);

/**
 * A server session from a received INIT packet (the whole UDP payload). NULL
 * with errno: EBADMSG if the INIT does not authenticate with our PSK or its
 * parameters do not fit ours (*drop then says why for the counters); ENOENT
 * if it names another session than cfg->name; ESTALE if its time stamp is
 * too far from cfg->wall_ms; ENOMEM.
 */
struct amst_conn *amst_conn_accept(const struct amst_conn_cfg *cfg, const uint8_t *pkt, size_t len,
                                   uint64_t now_ns, enum amst_drop *drop);

void amst_conn_destroy(struct amst_conn *c);

/**
 * Is this INIT a retransmission of the one that made @p c? (The endpoint
 * routes it to the session, which answers ACCEPT again.)
 */
bool amst_conn_is_same_init(const struct amst_conn *c, const uint8_t *pkt, size_t len);

/** The application flags the peer's hello carried (amst_conn_cfg.app_flags); 0 until known. */
uint8_t amst_conn_peer_app_flags(const struct amst_conn *c);

/** The session name the peer's INIT carried (servers) or ours (clients). */
const char *amst_conn_name(const struct amst_conn *c);

/** Peer's connection id (0 until known), ours, the state, the error. */
uint32_t amst_conn_peer_cid(const struct amst_conn *c);
uint32_t amst_conn_local_cid(const struct amst_conn *c);
enum amst_state amst_conn_state(const struct amst_conn *c);
/** Close code and reason once closed (code 0: clean). */
uint32_t amst_conn_error(const struct amst_conn *c, const char **reason);

/**
 * Take one received UDP payload. Returns 0, or -EBADMSG/-EPROTO... when the
 * packet was dropped (it is counted in the stats by reason). The buffer is
 * decrypted in place.
 */
int amst_conn_input(struct amst_conn *c, uint8_t *pkt, size_t len, uint64_t now_ns);

/**
 * Build the next packet to send into @p buf (at least max_payload bytes).
 * Returns its length, or 0 when nothing may be sent now (nothing to send,
 * window full or pacing); then amst_conn_next_time() says when to try again.
 */
size_t amst_conn_output(struct amst_conn *c, uint8_t *buf, size_t cap, uint64_t now_ns);

/**
 * amst_conn_output(), but an unsealed session does not copy the stream bytes
 * into @p buf: *spans (*n_spans of them, in packet order) say where each run
 * of them lies in a stream buffer (src) and where in the packet it belongs
 * (dst, inside buf, not written). The packet is buf with every span's bytes
 * in place of its dst; its checksum already covers them. The spans' bytes
 * stay as they are until the application next writes to a stream of @p c
 * (amst_stream_write, amst_stream_commit), so the caller sends or copies
 * them before that. A sealed session encrypts them into buf: no spans.
 */
size_t amst_conn_output_spans(struct amst_conn *c, uint8_t *buf, size_t cap, uint64_t now_ns,
                              const struct amst_span **spans, unsigned *n_spans);

/**
 * Run the session's timers (idle, handshake, close) without sending: for a
 * caller that cannot send now (peer unresolved, transmit queue full) but must
 * not let a dead session linger. amst_conn_output() runs them too.
 */
void amst_conn_tick(struct amst_conn *c, uint64_t now_ns);

/** When the session last sent or received a packet (the caller's clock). */
uint64_t amst_conn_last_activity(const struct amst_conn *c);

/** When the session next needs output() or a timer run, ns; UINT64_MAX if idle. */
uint64_t amst_conn_next_time(const struct amst_conn *c);

/** Next event, 1 if one was returned, 0 if none. */
int amst_conn_event(struct amst_conn *c, struct amst_event *ev);

/** Open a stream (ids: client even, server odd). Returns the id or -EAGAIN/-ENOSPC. */
int amst_stream_open(struct amst_conn *c);

/** Queue bytes on a stream; returns how many were taken (may be 0: full) or -errno. */
long amst_stream_write(struct amst_conn *c, uint32_t id, const void *data, size_t len);

/**
 * Zero-copy write: the room of stream @p id's send buffer as one contiguous
 * span, *data and its length (the span stops where the ring wraps; call
 * again after amst_stream_commit() for the rest). 0: no room now, and
 * AMST_EV_WRITABLE follows when there is some, as after a short
 * amst_stream_write(). The application writes into the span, then commits
 * what it wrote; nothing else may be called on @p c in between.
 * @return the span's length, or -ENOENT / -EPIPE (finished or reset) /
 *         -ENOTCONN (the session is closing).
 */
long amst_stream_reserve(struct amst_conn *c, uint32_t id, uint8_t **data);

/** Queue the first @p n bytes of the span amst_stream_reserve() gave. 0, -EINVAL (n too long), or
 * as reserve. */
int amst_stream_commit(struct amst_conn *c, uint32_t id, size_t n);

/**
 * Change the unsent limit (amst_conn_cfg.unsent_ns; 0: none) while the
 * session runs: a migration keeps its buffers open for the bulk and closes
 * them before QEMU's switchover. A larger limit may wake writers at once.
 */
void amst_conn_set_unsent(struct amst_conn *c, uint64_t ns);

/**
 * Advertise each stream's whole buffer (true) or windows that follow the
 * reader (false; amst_conn_cfg.full_window) from now on: a migration's
 * receiver keeps its buffers open for the bulk, so a destination QEMU that
 * stalls does not stall the stages before it, and follows the reader before
 * QEMU's switchover. Opening advertises the larger windows at once; closing
 * starts measuring the reader, and the windows shrink to it as it falls
 * behind (the bytes already admitted are delivered).
 */
void amst_conn_set_full_window(struct amst_conn *c, bool on);

/** What the application may queue on the stream now: the send buffer's room,
 *  within the unsent limit. Not const: the part of the buffer in use grows to
 *  that first (see docs/amst.md, "In the dataplane"). */
size_t amst_stream_room(struct amst_conn *c, uint32_t id);

/** No more bytes on this stream from us (FIN after what is queued). */
int amst_stream_finish(struct amst_conn *c, uint32_t id);

/**
 * Read in-order bytes. Returns bytes read (0: nothing now), sets *fin once
 * every byte up to the peer's FIN has been read. -ECONNRESET after a reset.
 */
long amst_stream_read(struct amst_conn *c, uint32_t id, void *buf, size_t len, bool *fin);

/**
 * Zero-copy read: the in-order bytes of stream @p id that can be read now,
 * as one contiguous span of its receive buffer, *data and its length (the
 * span stops where the ring wraps: 0 means nothing now). *fin: the span ends
 * at the peer's FIN (with length 0: every byte was read). The span stays
 * valid until amst_stream_consume() or any other call on @p c.
 * @return the span's length, -ECONNRESET after a reset, -ENOENT.
 */
long amst_stream_peek(const struct amst_conn *c, uint32_t id, const uint8_t **data, bool *fin);

/** Mark the first @p n bytes of the span amst_stream_peek() gave as read. 0, -EINVAL, or as peek.
 */
int amst_stream_consume(struct amst_conn *c, uint32_t id, size_t n);

/**
 * Abort our direction of a stream with @p code (below AMST_RESET_STREAM_LIMIT,
 * else -EINVAL): queued bytes are dropped and
 * the peer sees AMST_EV_STREAM_RESET. The peer's direction ends when it
 * resets too (dp_host answers a reset with one).
 */
int amst_stream_reset(struct amst_conn *c, uint32_t id, uint32_t code);

/** Bytes queued on the stream and not yet acknowledged by the peer. */
uint64_t amst_stream_unacked(const struct amst_conn *c, uint32_t id);

struct amst_stream_info {
	uint64_t written; /**< bytes the application queued */
	uint64_t acked;   /**< of those, acknowledged by the peer */
	uint64_t read;    /**< bytes the application read */
	uint64_t retrans; /**< bytes sent again */
	bool fin_queued, fin_acked, fin_received, reset_sent, reset_received;
	uint32_t reset_received_code; /**< the peer's code, when reset_received */
};

/** Counters of one stream. 0 or -ENOENT. */
int amst_stream_info(const struct amst_conn *c, uint32_t id, struct amst_stream_info *info);

/**
 * For tests and fuzzing: a DATA packet carrying @p frames (raw frame bytes,
 * not checked) as this session's next packet, sealed or checksummed as its
 * own are, in @p out. The session does not track it (no resend, no loss
 * detection): it lets a test hand the peer frames that authenticate. The
 * packet's length, or 0 if it does not fit @p cap or the session has no keys.
 */
size_t amst_conn_pack_frames(struct amst_conn *c, const uint8_t *frames, size_t len, uint8_t *out,
                             size_t cap);

/** Have all our streams' bytes and FINs been acknowledged? */
bool amst_conn_all_acked(const struct amst_conn *c);

/** Close the session with @p code (0: clean) and a reason for the peer. */
void amst_conn_close(struct amst_conn *c, uint32_t code, const char *reason, uint64_t now_ns);

/** Change the rate cap (bytes/s, 0 = none) while running. */
void amst_conn_set_rate_cap(struct amst_conn *c, uint64_t bytes_per_s);

void amst_conn_get_stats(const struct amst_conn *c, struct amst_conn_stats *st);

/** Close codes. */
#define AMST_CLOSE_OK        0
#define AMST_CLOSE_IDLE      1 /* peer silent longer than the idle timeout */
#define AMST_CLOSE_HANDSHAKE 2 /* no valid answer to INIT in time */
#define AMST_CLOSE_PROTOCOL  3
#define AMST_CLOSE_APP       4 /* closed by the application with an error */

#endif /* AMST_CONN_H */
