/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nc_abi: the shared-memory interface between novacron-dp (DPDK primary) and
 * novacron-cp (DPDK secondary). Everything the two processes exchange is
 * declared here, with fixed-width types, cache-line alignment and sizes
 * checked at compile time. Bump NC_ABI_VERSION on any change of layout or
 * meaning; the control plane refuses to attach to a dataplane of another
 * version.
 *
 *  - NC_RING_CMD: control plane -> dataplane, elements are struct nc_msg
 *    (by value, rte_ring_create_elem), multi-producer, single-consumer.
 *  - NC_RING_EVT: dataplane -> control plane, struct nc_msg, replies to
 *    commands (same seq) and unsolicited events; single-producer, single-consumer.
 *  - NC_MZ_STATS: struct nc_stats_shm, written by the dataplane only.
 */
#ifndef NC_ABI_H
#define NC_ABI_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define NC_ABI_VERSION 12u
#define NC_ABI_MAGIC   0x4942414e4f524e43ull /* "NCRONABI" little-endian */

#define NC_RING_CMD   "nc_cmd"
#define NC_RING_EVT   "nc_evt"
#define NC_MZ_STATS   "nc_stats"
#define NC_RING_SLOTS 1024u

#define NC_ABI_CACHE_LINE 64
#define NC_ABI_ALIGNED    __attribute__((aligned(NC_ABI_CACHE_LINE)))

#define NC_MAX_WORKERS 16
#define NC_MAX_PORTS   8

enum nc_msg_type {
	NC_MSG_PING = 1,          /**< cmd: t_send_ns set; answered by NC_MSG_PONG */
	NC_MSG_PONG = 2,          /**< evt: t_send_ns echoed, t_dp_ns = dataplane's time */
	NC_MSG_CONFIG_SET = 3,    /**< cmd: u.kv; answered by NC_MSG_CONFIG_DONE */
	NC_MSG_CONFIG_DONE = 4,   /**< evt: status 0 or -errno, u.text the error */
	NC_MSG_ERROR = 5,         /**< evt: a command was refused; status -errno, u.text why */
	NC_MSG_SESSION_OPEN = 6,  /**< cmd: u.sess; answered by NC_MSG_SESSION_DONE */
	NC_MSG_SESSION_SET = 7,   /**< cmd: u.sess (name, rate_cap); NC_MSG_SESSION_DONE */
	NC_MSG_SESSION_CLOSE = 8, /**< cmd: u.sess (name); NC_MSG_SESSION_DONE */
	NC_MSG_SESSION_DONE = 9,  /**< evt: status 0 or -errno, u.text the error */
};

#define NC_SESSION_NAME_LEN 32
#define NC_SESSION_ADDR_LEN 128

enum nc_session_role {
	NC_ROLE_SEND = 1,    /**< listens for host connections, opens the AMST session */
	NC_ROLE_RECEIVE = 2, /**< accepts the AMST session, connects to the destination */
};

/** Parameters of the session commands. */
struct nc_session_req {
	char name[NC_SESSION_NAME_LEN];
	char addr[NC_SESSION_ADDR_LEN]; /**< send: listen address; receive: destination */
	uint32_t peer_ip;               /**< host byte order */
	uint16_t peer_port;             /**< 0: the configured AMST port */
	uint8_t role;                   /**< enum nc_session_role */
	uint8_t flags;                  /**< NC_SESS_REQ_* */
	uint64_t rate_cap;              /**< bytes/s, 0 = none */
	uint8_t streams;                /**< send with NC_SESS_REQ_HDE: streams expected (0: 1) */
	uint8_t whole_window; /**< with NC_SESS_REQ_WINDOW (receive): 1 advertise whole buffers,
	                        0 windows that follow the reader */
	uint16_t unsent_ms; /**< with NC_SESS_REQ_UNSENT: the sending side's unsent limit (0: none)
	                     */
	uint8_t pad1[4];
};
_Static_assert(sizeof(struct nc_session_req) == 184, "session request layout");

/** nc_session_req.flags: XXH3-128 of every stream's host bytes (see nc_stream_shm.digest). */
#define NC_SESS_REQ_DIGEST 0x1
/** nc_session_req.flags (send): code the streams with HDE (the receiver follows the sender). */
#define NC_SESS_REQ_HDE 0x2
/** nc_session_req.flags (send; open or set): unsent_ms replaces amst.unsent_ms for the session. */
#define NC_SESS_REQ_UNSENT 0x4
/** nc_session_req.flags (set): rate_cap is the new cap (a set without UNSENT or WINDOW
 *  always sets it). */
#define NC_SESS_REQ_RATE 0x8
/** nc_session_req.flags (receive; open or set): whole_window replaces amst.follow_reader. */
#define NC_SESS_REQ_WINDOW 0x10
/** nc_session_req.flags (close): only while the session waits for its INIT (else -EBUSY). */
#define NC_SESS_REQ_IF_WAITING 0x20
/** nc_session_shm.flags (receive): the session advertises whole buffers now. */
#define NC_SESS_F_WHOLE_WINDOW 0x100

#define NC_MSG_KEY_LEN  64
#define NC_MSG_VAL_LEN  160
#define NC_MSG_TEXT_LEN 224

/** One ring element. */
struct nc_msg {
	uint32_t type;      /**< enum nc_msg_type */
	int32_t status;     /**< replies: 0 or a negative errno */
	uint64_t seq;       /**< set by the sender of a command, echoed in its reply */
	uint64_t t_send_ns; /**< CLOCK_MONOTONIC of the sender */
	union {
		/** Replies: CLOCK_MONOTONIC when the dataplane handled it. */
		uint64_t t_dp_ns;
		/** Commands: CLOCK_MONOTONIC after which the sender no longer waits
		 * for the reply; the dataplane then refuses the command
		 * (-ETIMEDOUT) instead of doing it behind the sender's back.
		 * 0: none. */
		uint64_t deadline_ns;
	};
	union {
		struct {
			char key[NC_MSG_KEY_LEN];
			char value[NC_MSG_VAL_LEN];
		} kv;
		char text[NC_MSG_TEXT_LEN];
		struct nc_session_req sess;
	} u;
};
_Static_assert(sizeof(struct nc_msg) == 256, "nc_msg is 256 bytes");
_Static_assert(sizeof(struct nc_msg) % 4 == 0, "rte_ring elements are multiples of 4 bytes");

enum nc_dp_state {
	NC_DP_BOOTING = 0,
	NC_DP_READY = 1,
	NC_DP_STOPPING = 2,
};

enum nc_poll_mode {
	NC_POLL_ADAPTIVE = 0,
	NC_POLL_BUSY = 1,
};

/** Per worker lcore, written only by that worker. */
struct nc_worker_stats {
	uint64_t loops;      /**< poll loop iterations */
	uint64_t busy_loops; /**< iterations that found work */
	uint64_t sleeps;     /**< times the worker slept when idle */
	uint64_t sleep_ns;   /**< total time asked to sleep */
	uint64_t rx_pkts;
	uint64_t tx_pkts;
	uint64_t drops; /**< packets dropped, all reasons */
	uint32_t lcore_id;
	uint32_t cur_sleep_us; /**< current backoff step; 0 while busy */
} NC_ABI_ALIGNED;
_Static_assert(sizeof(struct nc_worker_stats) == 64, "one cache line per worker");

/** Per port, written by the dataplane's stats refresh. */
struct nc_port_stats {
	char name[32];   /**< ethdev name, "net_memif0" */
	char driver[16]; /**< NovaCron driver, "memif" */
	uint16_t port_id;
	uint8_t link_up;
	uint8_t pad0;
	uint32_t link_speed_mbps;
	uint64_t pad1;
	uint64_t ipackets;
	uint64_t opackets;
	uint64_t ibytes;
	uint64_t obytes;
	uint64_t imissed;
	uint64_t ierrors;
	uint64_t oerrors;
	uint64_t pad2[1];
} NC_ABI_ALIGNED;
_Static_assert(sizeof(struct nc_port_stats) == 128, "two cache lines per port");

#define NC_MAX_SESSIONS         8
#define NC_MAX_SESSION_STREAMS  16
#define NC_SESSION_DROP_REASONS 16

enum nc_session_state {
	NC_SESS_FREE = 0,
	NC_SESS_RESOLVING = 1, /**< waiting for the peer's (or gateway's) MAC */
	NC_SESS_HANDSHAKE = 2,
	NC_SESS_LISTENING = 3, /**< receive side: waiting for the peer's INIT */
	NC_SESS_ESTABLISHED = 4,
	NC_SESS_CLOSING = 5,
	NC_SESS_CLOSED = 6, /**< ended; error says why (empty: clean) */
};

/** Bytes of a stream digest (XXH3-128). */
#define NC_DIGEST_LEN 16

struct nc_stream_shm {
	uint32_t id;
	uint32_t flags;     /**< NC_STREAM_F_* */
	uint64_t to_peer;   /**< bytes read from the host connection into AMST */
	uint64_t from_peer; /**< bytes written from AMST to the host connection */
	uint64_t retrans;   /**< bytes sent again */
	/** With NC_STREAM_F_DIGEST: XXH3-128 of the stream's bytes on the host side (read from
	 * the host connection on the sending side, written to it on the receiving side),
	 * complete once the stream finished that way (host EOF / peer FIN delivered), in
	 * canonical (big-endian) form: what xxh128sum prints for the same bytes. */
	uint8_t digest[NC_DIGEST_LEN];
	uint8_t pad[32 - NC_DIGEST_LEN];
};
_Static_assert(sizeof(struct nc_stream_shm) == 64, "stream stats layout");

#define NC_STREAM_F_OPEN     0x1
#define NC_STREAM_F_HOST_EOF 0x2
#define NC_STREAM_F_PEER_FIN 0x4
#define NC_STREAM_F_RESET    0x8
#define NC_STREAM_F_DIGEST   0x10 /**< digest holds the finished stream's XXH3-128 */

#define NC_HDE_TIERS    5 /**< zero, dup, delta, new, literal (enum hde_tier) */
#define NC_HDE_SETTINGS 8 /**< enum hde_setting */

/** HDE's counters of a session (encoder on the sending side, decoder on the receiving). */
struct nc_hde_shm {
	uint64_t stream_bytes; /**< host stream bytes coded (in: sender; out: receiver) */
	uint64_t frame_bytes;  /**< HDE frame bytes (out: sender; in: receiver) */
	uint64_t frames;
	uint64_t ns_busy; /**< time spent coding */
	uint64_t tier_pages[NC_HDE_TIERS];
	uint64_t tier_bytes[NC_HDE_TIERS]; /**< stream bytes per tier */
	uint64_t frames_by_setting[NC_HDE_SETTINGS];
	uint64_t cache_bytes; /**< cache held now, all streams */
	uint64_t cache_peak;  /**< the most held at once */
	uint64_t cache_limit; /**< the session's bound (hde.cache_mb) */
	uint64_t mem_peak;    /**< the most one stream's codec held, cache included */
	uint64_t rec_pages;   /**< page bodies the recogniser found */
	uint64_t rec_lost;    /**< times the recogniser lost its way (fell back to opaque) */
	uint64_t errors;      /**< streams reset because a frame did not decode */
	uint64_t streams;     /**< streams that had a codec, live and finished */
};
_Static_assert(sizeof(struct nc_hde_shm) == 240, "HDE stats layout");

/**
 * One AMST session, written by the dataplane once per stats period. A slot is
 * some 2.4 KB: a reader in another process could see it half rewritten (one
 * stream's digest new and the next one's old, a session's state with another
 * session's name), so the dataplane writes it inside a sequence count (seq is
 * odd while it writes) and readers take a copy with nc_session_shm_read().
 */
struct nc_session_shm {
	uint32_t seq; /**< odd while the dataplane rewrites the slot */
	uint32_t pad_seq;
	char name[NC_SESSION_NAME_LEN];
	char addr[NC_SESSION_ADDR_LEN];
	char error[64];
	uint32_t state; /**< enum nc_session_state */
	uint32_t role;  /**< enum nc_session_role */
	uint32_t peer_ip;
	uint32_t n_streams;
	uint64_t opened_ns; /**< CLOCK_REALTIME */
	uint64_t pkts_sent, pkts_recv, bytes_sent, bytes_recv;
	uint64_t stream_bytes_sent, stream_bytes_recv, retrans_bytes, pkts_lost;
	uint64_t srtt_ns, min_rtt_ns, pacing_rate, btl_bw, cwnd, bytes_in_flight, rate_cap;
	uint64_t buffer_bytes; /**< of its stream buffers in use (both directions) */
	/** of its streams: bytes the peer has not acknowledged, +1 per FIN or RESET */
	uint64_t unacked_bytes;
	uint64_t drops[NC_SESSION_DROP_REASONS];
	uint64_t connect_failed; /**< receiving side: connects to the destination that failed */
	uint64_t host_errors;    /**< streams reset because their host connection failed */
	uint64_t host_dropped;   /**< send: bytes for connections that had closed, dropped */
	uint32_t flags; /**< NC_SESS_REQ_* it was opened with (receive: + HDE if the peer codes),
	                   NC_SESS_F_* */
	uint32_t unsent_ms; /**< send: the unsent limit now (session.set may change it; 0: none) */
	struct nc_hde_shm hde;
	struct nc_stream_shm streams[NC_MAX_SESSION_STREAMS];
} NC_ABI_ALIGNED;
_Static_assert(sizeof(struct nc_session_shm) % NC_ABI_CACHE_LINE == 0, "session stats aligned");

/** The stats memzone. */
struct nc_stats_shm {
	uint64_t magic;       /**< NC_ABI_MAGIC */
	uint32_t abi_version; /**< NC_ABI_VERSION */
	uint32_t size;        /**< sizeof(struct nc_stats_shm) */
	uint32_t dp_pid;
	uint32_t state;        /**< enum nc_dp_state */
	uint64_t start_ns;     /**< CLOCK_REALTIME when the dataplane started */
	uint64_t heartbeat;    /**< incremented by the dataplane's service loop */
	uint64_t heartbeat_ns; /**< CLOCK_MONOTONIC of the last heartbeat */
	uint32_t n_workers;
	uint32_t n_ports;
	uint32_t poll_mode; /**< enum nc_poll_mode */
	uint32_t pad0;
	uint64_t cmds;       /**< commands handled */
	uint64_t cmd_errors; /**< commands refused (unknown type, bad args) */
	struct nc_worker_stats workers[NC_MAX_WORKERS] NC_ABI_ALIGNED;
	struct nc_port_stats ports[NC_MAX_PORTS];
	struct nc_session_shm sessions[NC_MAX_SESSIONS];
} NC_ABI_ALIGNED;
_Static_assert(offsetof(struct nc_stats_shm, workers) == 128, "header is two cache lines");
_Static_assert(offsetof(struct nc_stats_shm, sessions) ==
                       128 + 64 * NC_MAX_WORKERS + 128 * NC_MAX_PORTS,
               "stats memzone layout");

/**
 * How long ago the dataplane's service loop last beat, in ns, as seen from
 * any thread or process. The beat is read before the clock: a beat written
 * in between (the reader preempted after reading its clock, common on a
 * loaded machine) would otherwise be newer than "now", and an unsigned
 * now - beat would wrap to centuries, making a living dataplane look dead.
 * A beat newer than the clock counts as age 0.
 */
static inline uint64_t nc_heartbeat_age_ns(const struct nc_stats_shm *s)
{
	uint64_t hb = __atomic_load_n(&s->heartbeat_ns, __ATOMIC_ACQUIRE);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	return now > hb ? now - hb : 0;
}

/* The writer's side (the dataplane's service loop, the only writer). */
static inline void nc_session_shm_write_begin(struct nc_session_shm *o)
{
	__atomic_store_n(&o->seq, o->seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE); /* odd before any field changes */
}

static inline void nc_session_shm_write_end(struct nc_session_shm *o)
{
	__atomic_store_n(&o->seq, o->seq + 1, __ATOMIC_RELEASE); /* fields before even */
}

/** How long a reader keeps looking at a slot being written before it gives up. */
#define NC_SESSION_SHM_WAIT_NS 200000000ull

/**
 * Copy the slot @p s into @p out as the dataplane last wrote it whole. Returns
 * false if the slot stayed half written for NC_SESSION_SHM_WAIT_NS: a
 * dataplane that died in the middle of a write leaves seq odd forever, and a
 * reader must not spin on it. The bound is in time, not looks: a writer
 * preempted mid-copy on a busy machine (two cores, many threads) is back
 * within a few scheduler ticks, and a few thousand quick looks can all fall
 * inside one. The reader yields, then naps, meanwhile.
 */
static inline bool nc_session_shm_read(const struct nc_session_shm *s, struct nc_session_shm *out)
{
	uint64_t deadline = 0;
	for (unsigned i = 0;; i++) {
		uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
		if ((seq & 1) == 0) {
			memcpy(out, s, sizeof(*out));
			__atomic_thread_fence(__ATOMIC_ACQUIRE); /* the copy before the check */
			if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) == seq)
				return true;
		}
		if (i < 16)
			continue;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		if (deadline == 0)
			deadline = now + NC_SESSION_SHM_WAIT_NS;
		else if (now >= deadline)
			return false;
		if (i < 1024) {
			sched_yield();
		} else {
			struct timespec nap = {0, 50000};
			nanosleep(&nap, NULL);
		}
	}
}

#endif /* NC_ABI_H */
