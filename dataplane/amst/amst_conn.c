/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * amst_conn: the AMST session state machines (see amst_conn.h and
 * docs/amst.md): handshake, streams with send and receive buffers, ACK
 * generation, loss detection and recovery, flow control, pacing.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amst_conn.h"
#include "amst_crypto.h"
#include "amst_range.h"
#include "amst_wire.h"

#define SENT_RING         32768u /* packets tracked in flight, power of two */
#define MAX_FR_PER_PKT    4
#define RX_PLACED_MAX     8
#define RX_PN_RANGES      256
#define STREAM_RANGES     2048
#define EVENT_RING        1024u
#define MAX_ACK_DELAY_NS  1000000ull /* 1 ms */
#define ACK_EVERY         4
#define PKT_THRESH        3
#define INIT_CWND_PKTS    32
#define HS_RTO_NS         250000000ull
#define CLOSE_COPIES      3           /* CLOSE goes this many times back to back */
#define CLOSE_ECHO_MAX    8           /* then at most this many more, answering the peer */
#define CLOSE_ECHO_GAP_NS 50000000ull /* at least this far apart (or 2 x srtt) */
#define MIN_PTO_NS        2000000ull
/* Receive windows (per stream): what a stream advertises at first, and the
 * least it shrinks to; see rwin_update(). */
#define RWIN_INIT (4u << 20)
#define RWIN_MIN  (256u * 1024)
/* The part of a stream's send buffer it uses at first; see stream_room(). */
#define SBUF_INIT (1u << 20)

const char *const amst_drop_names[AMST_DROP_COUNT] = {
#define AMST_DROP_NAME(sym, name) [AMST_DROP_##sym] = name,
        AMST_FOREACH_DROP(AMST_DROP_NAME)
#undef AMST_DROP_NAME
};

/* Flags of a sent packet. */
enum {
	SP_ACK_ELICITING = 0x01,
	SP_IN_FLIGHT = 0x02,
	SP_ACKED = 0x04,
	SP_LOST = 0x08,
	SP_MAX_DATA = 0x10, /* carried MAX_DATA: resend the current value if lost */
	SP_CLOSE = 0x20,
};

struct sent_frame {
	uint32_t id;
	uint32_t len;
	uint64_t off;
	uint8_t kind; /* 0 stream data, 1 MAX_STREAM_DATA, 2 RESET */
	uint8_t fin;
};

struct sent_pkt {
	uint64_t pn;
	uint64_t t_sent;
	uint64_t delivered;
	uint64_t delivered_time;
	uint64_t first_sent_time;
	uint32_t size;
	uint8_t flags;
	uint8_t app_limited;
	uint8_t n;
	struct sent_frame fr[MAX_FR_PER_PKT];
};

struct amst_stream {
	uint32_t id;
	bool used;
	/* sending */
	uint8_t *sbuf;
	uint32_t s_size;     /* of sbuf in use: a power of two, at most cfg.stream_buf */
	uint64_t s_base;     /* everything below is acknowledged and released */
	uint64_t s_end;      /* written by the application up to here */
	uint64_t s_next;     /* next byte never sent */
	uint64_t s_final;    /* after a reset: the bytes ever sent, the RESET's final size */
	uint64_t s_peer_max; /* peer's window: may send below this */
	struct amst_rangeset s_acked;
	struct amst_rangeset s_lost;
	bool fin_queued, fin_sent, fin_acked, fin_lost;
	bool reset_pending, reset_sent, reset_acked;
	uint32_t reset_code;
	bool want_writable;
	uint64_t retrans;
	/* receiving */
	uint8_t *rbuf;
	uint32_t r_size;             /* of rbuf in use, as s_size */
	uint64_t r_base;             /* read by the application up to here */
	uint64_t r_max;              /* highest offset received + 1 */
	uint64_t r_fin;              /* final size, UINT64_MAX until known */
	uint64_t r_adv;              /* window we last advertised */
	uint64_t r_win;              /* window size we advertise now (rwin_update) */
	uint64_t r_ep_ns, r_ep_base; /* the current epoch: its start and r_base then */
	double r_rate;               /* application's read rate, bytes/ns, decaying max */
	bool r_ep_behind;            /* every read this epoch left readable bytes behind */
	struct amst_rangeset r_have;
	bool msd_pending;
	bool readable_signalled;
	bool reset_recv;
	uint32_t reset_recv_code;
};

struct amst_conn {
	struct amst_conn_cfg cfg;
	uint8_t psk[AMST_PSK_MAX];
	enum amst_state state;
	uint32_t peer_cid;
	uint8_t my_random[AMST_RANDOM_LEN];
	uint8_t peer_random[AMST_RANDOM_LEN];
	/* The window each stream the peer opens starts with, as our INIT or
	 * ACCEPT said: fixed when the conn is made, whatever full_window becomes. */
	uint64_t told_stream_window;
	uint64_t init_pn; /* client: pn (random) of our INIT; server: of the peer's INIT */
	struct amst_hello peer_hello;
	struct amst_aead *hs; /* handshake key */
	struct amst_aead *tx; /* our direction */
	struct amst_aead *rx; /* peer's direction */
	uint64_t created_ns;

	/* handshake */
	uint64_t hs_next_ns; /* client: next INIT (re)send */
	uint64_t hs_rto_ns;
	uint32_t hs_inits;   /* client: INITs sent (all with one packet number) */
	bool accept_pending; /* server: send ACCEPT */
	uint64_t hs_sent_ns; /* client: when INIT was last sent */

	/* sending */
	uint64_t next_pn;
	/* The packet being built: stream bytes a sealed packet encrypts straight
	 * from the stream buffers (not copied into the packet first). */
	struct amst_span tx_span[AMST_MAX_SPANS];
	unsigned n_tx_span;
	bool tx_gather; /* amst_conn_output_spans(): unsealed bytes stay where they are too */
	/* The packet being opened: data of STREAM frames decrypted straight into
	 * their stream's receive ring (open_body), not to be copied again. */
	const uint8_t *rx_placed[RX_PLACED_MAX];
	unsigned n_rx_placed;
	uint64_t sent_lo; /* oldest pn not yet acked or lost */
	struct sent_pkt *sent;
	uint64_t bytes_in_flight;
	uint64_t largest_acked; /* UINT64_MAX: none */
	uint64_t last_ack_eliciting_ns;
	uint64_t last_tx_ns;
	uint64_t loss_time_ns; /* time-threshold loss timer, 0 = off */
	uint32_t pto_backoff;
	uint64_t srtt, rttvar, min_rtt, latest_rtt;
	bool have_rtt;
	/* Least round trip any of our ack-eliciting packets took (ACK delay
	 * included): a receiver sends few of them and its ACK-only packets are
	 * what peers' ACKs name as largest, so it seldom gets an srtt sample;
	 * its receive windows (rwin_update) time themselves by this. */
	uint64_t any_rtt;
	/* delivery-rate state */
	uint64_t delivered, delivered_time, first_sent_time;
	uint64_t app_limited_until;
	struct amst_cc cc;
	/* pacing: credit in bytes */
	double pace_credit;
	uint64_t pace_last_ns;
	bool pace_open;       /* a burst is being sent: go on while there is credit */
	uint64_t pace_due_ns; /* data waited for the pacer until then (0: it did not) */
	/* flow control, sending */
	uint64_t peer_max_data;
	uint64_t sent_data; /* sum of s_next over streams (new bytes ever sent) */

	/* receiving */
	struct amst_rangeset rx_pns;
	uint64_t rx_floor; /* packets below are replays */
	uint32_t ack_pending;
	uint64_t ack_deadline_ns; /* 0 = none */
	uint64_t largest_rx_ns;
	bool ack_now;
	uint64_t last_rx_ns;
	/* flow control, receiving */
	uint64_t rx_data;      /* sum of r_max over streams */
	uint64_t read_data;    /* sum of r_base over streams */
	uint64_t max_data_adv; /* MAX_DATA we advertised */
	bool max_data_pending;

	/* streams */
	struct amst_stream *streams[AMST_MAX_STREAMS];
	uint32_t next_local_stream; /* next id we open */
	uint32_t rr;                /* round robin cursor */
	uint32_t n_streams;
	uint32_t stream_hi; /* every stream id is below this */

	/* closing */
	bool close_pending;
	uint32_t close_code;
	char close_reason[AMST_MAX_REASON + 16];
	bool closed_by_peer;
	uint64_t drain_until_ns;
	uint32_t close_sends;
	/* After our CLOSE went out: packets the peer still sends are answered
	 * with it again (its copies may all have been lost), this often. */
	uint32_t close_echoes;
	uint64_t close_echo_ns;

	/* events */
	struct amst_event ev[EVENT_RING];
	uint32_t ev_head, ev_tail;

	struct amst_conn_stats st;
};

/* ---- helpers ---- */

static void push_event(struct amst_conn *c, enum amst_event_type type, uint32_t stream,
                       uint32_t code)
{
	if (c->ev_tail - c->ev_head == EVENT_RING)
		return; /* the application does not read its events: coalesced away */
	c->ev[c->ev_tail++ % EVENT_RING] = (struct amst_event){type, stream, code};
}

static struct sent_pkt *sent_at(const struct amst_conn *c, uint64_t pn)
{
	return &c->sent[pn & (SENT_RING - 1)];
}

static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* The window a stream advertises before it has measured its reader (also
 * the HELLO's per-stream window). */
static uint64_t rwin_initial(const struct amst_conn *c)
{
	return c->cfg.full_window ? c->cfg.stream_buf : min64(c->cfg.stream_buf, RWIN_INIT);
}

/* Unsent bytes a stream may hold: cfg.unsent_ns at the path's rate. Like
 * TCP_NOTSENT_LOWAT, this keeps the application's data in the application
 * (QEMU measures its own bandwidth from what we take; an HDE encoder running
 * far ahead of the wire only takes the worker from the network). */
static uint64_t unsent_limit(const struct amst_conn *c)
{
	/* At the path's rate, not the pacing rate: STARTUP paces at 2.89x, and an
	 * application-limited sender (a CPU-bound pipeline) never leaves it. */
	uint64_t rate = c->cc.btl_bw ? c->cc.btl_bw : c->cc.pacing_rate;
	uint64_t lim = (uint64_t)((double)rate * (double)c->cfg.unsent_ns / 1e9);
	/* On a fast path, time makes many megabytes: bytes that wait that long
	 * leave the caches, and the copies into and out of the stream miss. */
	if (c->cfg.unsent_max && lim > c->cfg.unsent_max)
		lim = c->cfg.unsent_max;
	return lim > AMST_UNSENT_MIN ? lim : AMST_UNSENT_MIN;
}

/* The least power of two >= @p n, at most @p cap (a power of two). */
static uint32_t pow2_at_least(uint64_t n, uint32_t cap)
{
	uint32_t p = 4096;
	while (p < n && p < cap)
		p *= 2;
	return p < cap ? p : cap;
}

/* Doubles a ring's size in use from @p size until it is at least @p want,
 * moving the bytes of stream offsets [lo, hi) (at most @p size of them) to
 * where the larger size puts them: an offset whose new high bit is set moves
 * up by the old size, into the upper half, which nothing used yet. A stream
 * uses only as much of its buffer as its path needs: its bytes cycle through
 * the part in use, which stays in the caches when it is small (on memif, a
 * 64 MiB ring ran at two thirds of the speed of a 4 MiB one), and the pages
 * above it are never touched, so never allocated. */
static uint32_t ring_grow(uint8_t *buf, uint32_t size, uint64_t want, uint64_t lo, uint64_t hi)
{
	for (; size < want; size *= 2)
		for (uint64_t a = lo; a < hi;) {
			uint64_t stop = min64(hi, (a | (size - 1)) + 1);
			if (a & size)
				memcpy(buf + (a & (size - 1)) + size, buf + (a & (size - 1)),
				       (size_t)(stop - a));
			a = stop;
		}
	return size;
}

/* What the writer may queue on s: the stream buffer, less what it holds, and
 * no more unsent bytes than the unsent limit allows. The part of the buffer
 * in use (s_size) grows to fit that first (ring_grow). */
static uint64_t stream_room(const struct amst_conn *c, struct amst_stream *s)
{
	uint64_t unsent = s->s_end - s->s_next, allow = UINT64_MAX;
	if (c->cfg.unsent_ns) {
		uint64_t lim = unsent_limit(c);
		allow = unsent < lim ? lim - unsent : 0;
	}
	uint64_t held = s->s_end - s->s_base;
	uint64_t need = allow < c->cfg.stream_buf ? min64(c->cfg.stream_buf, held + allow)
	                                          : c->cfg.stream_buf;
	if (need > s->s_size)
		s->s_size = ring_grow(s->sbuf, s->s_size, pow2_at_least(need, c->cfg.stream_buf),
		                      s->s_base, s->s_end);
	return min64(s->s_size - held, allow);
}

/* The receive ring holds all the peer may send: at least the window (@p win)
 * we are about to advertise from r_base. */
static void rbuf_fit(struct amst_stream *s, uint64_t win, uint32_t cap)
{
	if (s->r_size < win && s->r_size < cap)
		s->r_size =
		        ring_grow(s->rbuf, s->r_size, pow2_at_least(win, cap), s->r_base, s->r_max);
}

/* WRITABLE for a writer that found no room, once there is a useful amount. */
static void maybe_writable(struct amst_conn *c, struct amst_stream *s)
{
	if (!s->want_writable)
		return;
	uint64_t want = min64(64 * 1024, s->s_size / 2);
	if (c->cfg.unsent_ns)
		want = min64(want, unsent_limit(c) / 2);
	if (stream_room(c, s) >= want) {
		s->want_writable = false;
		push_event(c, AMST_EV_WRITABLE, s->id, 0);
	}
}

static void enter_closed(struct amst_conn *c, uint32_t code, const char *reason)
{
	if (c->state == AMST_CLOSED)
		return;
	if (c->close_reason[0] == '\0' || c->state != AMST_CLOSING) {
		c->close_code = code;
		snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason ? reason : "");
	}
	c->state = AMST_CLOSED;
	push_event(c, AMST_EV_CLOSED, 0, c->close_code);
}

static int derive(struct amst_aead **out, const uint8_t *psk, size_t psk_len, const uint8_t *salt,
                  size_t salt_len, const char *what)
{
	uint8_t km[AMST_KEY_LEN + AMST_IV_LEN];
	char info[64];
	snprintf(info, sizeof(info), "amst v1 %s", what);
	int rc = amst_hkdf(psk, psk_len, salt, salt_len, info, km, sizeof(km));
	if (rc)
		return rc;
	*out = amst_aead_create(km, km + AMST_KEY_LEN);
	memset(km, 0, sizeof(km));
	return *out ? 0 : -ENOMEM;
}

static int derive_session_keys(struct amst_conn *c)
{
	uint8_t salt[2 * AMST_RANDOM_LEN];
	const uint8_t *cr = c->cfg.client ? c->my_random : c->peer_random;
	const uint8_t *sr = c->cfg.client ? c->peer_random : c->my_random;
	memcpy(salt, cr, AMST_RANDOM_LEN);
	memcpy(salt + AMST_RANDOM_LEN, sr, AMST_RANDOM_LEN);
	int rc = derive(&c->tx, c->psk, c->cfg.psk_len, salt, sizeof(salt),
	                c->cfg.client ? "c2s" : "s2c");
	if (rc == 0)
		rc = derive(&c->rx, c->psk, c->cfg.psk_len, salt, sizeof(salt),
		            c->cfg.client ? "s2c" : "c2s");
	return rc;
}

static bool cfg_ok(const struct amst_conn_cfg *cfg)
{
	return cfg->local_cid != 0 && cfg->psk && cfg->psk_len >= 16 &&
	       cfg->psk_len <= AMST_PSK_MAX && cfg->max_payload >= 256 &&
	       cfg->max_payload <= 65000 && cfg->stream_buf >= 4096 &&
	       (cfg->stream_buf & (cfg->stream_buf - 1)) == 0 && cfg->max_streams >= 1 &&
	       cfg->max_streams <= AMST_MAX_STREAMS / 2 && cfg->session_window >= cfg->stream_buf;
}

static struct amst_conn *conn_new(const struct amst_conn_cfg *cfg, uint64_t now)
{
	if (!cfg_ok(cfg)) {
		errno = EINVAL;
		return NULL;
	}
	struct amst_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->cfg = *cfg;
	memcpy(c->psk, cfg->psk, cfg->psk_len);
	c->cfg.psk = c->psk;
	if (c->cfg.idle_timeout_ms == 0)
		c->cfg.idle_timeout_ms = 10000;
	if (c->cfg.handshake_timeout_ms == 0)
		c->cfg.handshake_timeout_ms = 5000;
	c->created_ns = now;
	c->last_rx_ns = now;
	c->largest_acked = UINT64_MAX;
	c->min_rtt = UINT64_MAX;
	c->sent = calloc(SENT_RING, sizeof(*c->sent));
	c->next_local_stream = cfg->client ? 0 : 1;
	c->max_data_adv = cfg->session_window;
	c->told_stream_window = rwin_initial(c);
	if (c->sent == NULL || amst_rangeset_init(&c->rx_pns, RX_PN_RANGES) != 0 ||
	    amst_random(c->my_random, sizeof(c->my_random)) != 0 ||
	    derive(&c->hs, c->psk, cfg->psk_len, NULL, 0, "handshake") != 0) {
		amst_conn_destroy(c);
		errno = ENOMEM;
		return NULL;
	}
	amst_cc_init(&c->cc, cfg->max_payload, INIT_CWND_PKTS, 0, now);
	c->cc.seed = (uint32_t)cfg->seed;
	if (cfg->rate_cap)
		amst_cc_set_cap(&c->cc, cfg->rate_cap);
	c->pace_last_ns = now;
	c->pace_credit = 2.0 * cfg->max_payload;
	return c;
}

static void stream_free(struct amst_stream *s)
{
	if (s == NULL)
		return;
	free(s->sbuf);
	free(s->rbuf);
	amst_rangeset_fini(&s->s_acked);
	amst_rangeset_fini(&s->s_lost);
	amst_rangeset_fini(&s->r_have);
	free(s);
}

void amst_conn_destroy(struct amst_conn *c)
{
	if (c == NULL)
		return;
	for (unsigned i = 0; i < AMST_MAX_STREAMS; i++)
		stream_free(c->streams[i]);
	amst_aead_destroy(c->hs);
	amst_aead_destroy(c->tx);
	amst_aead_destroy(c->rx);
	amst_rangeset_fini(&c->rx_pns);
	free(c->sent);
	memset(c->psk, 0, sizeof(c->psk));
	free(c);
}

/* Streams of our parity are ours (we opened them): a client's are even. */
static bool stream_ours(const struct amst_conn *c, uint32_t id)
{
	return (id & 1) == (c->cfg.client ? 0u : 1u);
}

static struct amst_stream *stream_new(struct amst_conn *c, uint32_t id)
{
	struct amst_stream *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->id = id;
	s->used = true;
	s->r_fin = UINT64_MAX;
	/* Whole, but touched only as far as s_size and r_size reach. */
	s->sbuf = malloc(c->cfg.stream_buf);
	s->rbuf = malloc(c->cfg.stream_buf);
	/* The peer may send up to the window the handshake told it; the one
	 * wanted now differs if full_window changed since (session.set): a larger
	 * one is advertised at once, a smaller one takes over as the reader is
	 * measured, and the buffer covers both. */
	s->r_adv = c->told_stream_window;
	s->r_win = rwin_initial(c);
	/* Not on a stream of ours yet: the peer ignores an update for a stream
	 * it has not seen, and the first read here sends one (stream_consumed). */
	bool ours = stream_ours(c, id);
	s->msd_pending = !ours && s->r_win > s->r_adv;
	s->s_size = (uint32_t)min64(SBUF_INIT, c->cfg.stream_buf);
	s->r_size = pow2_at_least(max64(s->r_win, s->r_adv), c->cfg.stream_buf);
	s->r_ep_ns = c->last_rx_ns;
	s->s_peer_max = c->peer_hello.max_stream_data;
	if (s->sbuf == NULL || s->rbuf == NULL ||
	    amst_rangeset_init(&s->s_acked, STREAM_RANGES) != 0 ||
	    amst_rangeset_init(&s->s_lost, STREAM_RANGES) != 0 ||
	    amst_rangeset_init(&s->r_have, STREAM_RANGES) != 0) {
		stream_free(s);
		return NULL;
	}
	c->streams[id] = s;
	c->n_streams++;
	if (id + 1 > c->stream_hi)
		c->stream_hi = id + 1;
	return s;
}

static struct amst_stream *stream_get(const struct amst_conn *c, uint32_t id)
{
	return id < AMST_MAX_STREAMS ? c->streams[id] : NULL;
}

/* ---- handshake ---- */

static void hello_fill(const struct amst_conn *c, struct amst_hello *h)
{
	h->src_cid = c->cfg.local_cid;
	memcpy(h->random, c->my_random, AMST_RANDOM_LEN);
	h->flags = (c->cfg.seal ? AMST_HELLO_SEALED : 0) |
	           ((uint32_t)c->cfg.app_flags << AMST_HELLO_APP_SHIFT);
	h->max_stream_data = c->told_stream_window;
	h->max_data = c->cfg.session_window;
	h->max_streams = c->cfg.max_streams;
	memset(h->name, 0, sizeof(h->name));
	h->time_ms = 0;
	if (c->cfg.client) {
		memcpy(h->name, c->cfg.name, strnlen(c->cfg.name, AMST_NAME_LEN - 1));
		h->time_ms = c->cfg.wall_ms;
	}
}

/* Build INIT or ACCEPT: header + sealed hello. */
static size_t build_hello(struct amst_conn *c, uint8_t type, uint64_t pn, uint8_t *buf, size_t cap)
{
	if (cap < AMST_HDR_LEN + AMST_HELLO_LEN + AMST_TAG_LEN)
		return 0;
	struct amst_hdr h = {
	        .type = type, .flags = AMST_F_SEALED, .dst_cid = c->peer_cid, .pn = pn};
	amst_hdr_encode(&h, buf, cap);
	struct amst_hello hello;
	hello_fill(c, &hello);
	amst_hello_encode(&hello, buf + AMST_HDR_LEN, AMST_HELLO_LEN);
	if (amst_aead_seal(c->hs, pn, buf, AMST_HDR_LEN, buf + AMST_HDR_LEN, AMST_HELLO_LEN,
	                   buf + AMST_HDR_LEN + AMST_HELLO_LEN) != 0)
		return 0;
	size_t n = AMST_HDR_LEN + AMST_HELLO_LEN + AMST_TAG_LEN;
	c->st.pkts_sent++;
	c->st.bytes_sent += n;
	return n;
}

/* Authenticate and parse a handshake packet with the PSK's handshake key. */
static int open_hello(struct amst_aead *hs, const uint8_t *pkt, size_t len, uint8_t type,
                      struct amst_hdr *h, struct amst_hello *hello)
{
	uint8_t tmp[AMST_HELLO_LEN];
	if (len != AMST_HDR_LEN + AMST_HELLO_LEN + AMST_TAG_LEN || amst_hdr_parse(pkt, len, h) ||
	    h->type != type || !(h->flags & AMST_F_SEALED))
		return -EBADMSG;
	memcpy(tmp, pkt + AMST_HDR_LEN, AMST_HELLO_LEN);
	if (amst_aead_open(hs, h->pn, pkt, AMST_HDR_LEN, tmp, AMST_HELLO_LEN,
	                   pkt + AMST_HDR_LEN + AMST_HELLO_LEN) != 0)
		return -EACCES;
	return amst_hello_parse(tmp, AMST_HELLO_LEN, hello);
}

static bool hello_fits(const struct amst_conn_cfg *cfg, const struct amst_hello *h)
{
	return (bool)(h->flags & AMST_HELLO_SEALED) == cfg->seal && h->max_stream_data >= 4096 &&
	       h->max_data >= h->max_stream_data && h->max_streams >= 1;
}

struct amst_aead *amst_handshake_key(const uint8_t *psk, size_t psk_len)
{
	struct amst_aead *k = NULL;
	return derive(&k, psk, psk_len, NULL, 0, "handshake") == 0 ? k : NULL;
}

struct amst_conn *amst_conn_client(const struct amst_conn_cfg *cfg, uint64_t now_ns)
{
	if (!cfg->client) {
		errno = EINVAL;
		return NULL;
	}
	struct amst_conn *c = conn_new(cfg, now_ns);
	if (c == NULL)
		return NULL;
	c->state = AMST_HANDSHAKE;
	uint8_t r[8];
	amst_random(r, sizeof(r));
	c->init_pn = amst_get64(r);
	c->hs_next_ns = now_ns;
	c->hs_rto_ns = HS_RTO_NS;
	return c;
}

struct amst_conn *amst_conn_accept(const struct amst_conn_cfg *cfg, const uint8_t *pkt, size_t len,
                                   uint64_t now_ns, enum amst_drop *drop)
{
	*drop = AMST_DROP_HANDSHAKE;
	if (cfg->client) {
		errno = EINVAL;
		return NULL;
	}
	/* Authenticated first: what does not open costs no conn, keys or rings. */
	struct amst_aead *hs =
	        cfg->hs_key ? cfg->hs_key : amst_handshake_key(cfg->psk, cfg->psk_len);
	if (hs == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	struct amst_hdr h;
	struct amst_hello hello;
	int rc = open_hello(hs, pkt, len, AMST_PKT_INIT, &h, &hello);
	if (hs != cfg->hs_key)
		amst_aead_destroy(hs);
	if (rc != 0 || h.dst_cid != 0 || !hello_fits(cfg, &hello)) {
		errno = EBADMSG;
		return NULL;
	}
	if (cfg->name[0] != '\0' && strncmp(cfg->name, hello.name, AMST_NAME_LEN) != 0) {
		errno = ENOENT;
		return NULL;
	}
	if (cfg->wall_ms != 0) {
		uint64_t t = hello.time_ms;
		uint64_t age = t > cfg->wall_ms ? t - cfg->wall_ms : cfg->wall_ms - t;
		if (age > AMST_INIT_MAX_AGE_MS) {
			errno = ESTALE;
			return NULL;
		}
	}
	struct amst_conn *c = conn_new(cfg, now_ns);
	if (c == NULL)
		return NULL;
	c->cfg.hs_key = NULL; /* the caller's; the conn has its own */
	c->peer_hello = hello;
	c->peer_cid = c->peer_hello.src_cid;
	c->init_pn = h.pn;
	memcpy(c->peer_random, c->peer_hello.random, AMST_RANDOM_LEN);
	if (derive_session_keys(c) != 0) {
		amst_conn_destroy(c);
		errno = ENOMEM;
		return NULL;
	}
	c->peer_max_data = c->peer_hello.max_data;
	c->state = AMST_ESTABLISHED;
	c->accept_pending = true;
	c->st.pkts_recv++;
	c->st.bytes_recv += len;
	push_event(c, AMST_EV_ESTABLISHED, 0, 0);
	return c;
}

bool amst_conn_is_same_init(const struct amst_conn *c, const uint8_t *pkt, size_t len)
{
	struct amst_hdr h;
	return !c->cfg.client && amst_hdr_parse(pkt, len, &h) == 0 && h.type == AMST_PKT_INIT &&
	       h.pn == c->init_pn;
}

uint8_t amst_conn_peer_app_flags(const struct amst_conn *c)
{
	return (uint8_t)((c->peer_hello.flags & AMST_HELLO_APP_MASK) >> AMST_HELLO_APP_SHIFT);
}

const char *amst_conn_name(const struct amst_conn *c)
{
	return c->cfg.client ? c->cfg.name : c->peer_hello.name;
}

int amst_init_cache_add(struct amst_init_cache *cache, const struct amst_conn *c, uint64_t now_ms)
{
	uint64_t pn = c->init_pn, t = c->peer_hello.time_ms ? c->peer_hello.time_ms : 1;
	for (unsigned i = 0; i < AMST_INIT_CACHE; i++)
		if (cache->e[i].time_ms != 0 && cache->e[i].pn == pn && cache->e[i].time_ms == t)
			return -EALREADY;
	unsigned k = cache->next % AMST_INIT_CACHE;
	/* The slot to reuse must hold an INIT too old to be accepted again. */
	if (cache->e[k].time_ms != 0 && cache->e[k].time_ms + AMST_INIT_MAX_AGE_MS >= now_ms)
		return -ENOSPC;
	cache->e[k].pn = pn;
	cache->e[k].time_ms = t;
	cache->next = k + 1;
	return 0;
}

uint32_t amst_conn_peer_cid(const struct amst_conn *c)
{
	return c->peer_cid;
}

uint32_t amst_conn_local_cid(const struct amst_conn *c)
{
	return c->cfg.local_cid;
}

enum amst_state amst_conn_state(const struct amst_conn *c)
{
	return c->state;
}

uint32_t amst_conn_error(const struct amst_conn *c, const char **reason)
{
	if (reason)
		*reason = c->close_reason;
	return c->close_code;
}

/* ---- receiving ---- */

static void update_rtt(struct amst_conn *c, uint64_t sample, uint64_t ack_delay)
{
	c->latest_rtt = sample;
	if (sample < c->min_rtt)
		c->min_rtt = sample;
	if (sample - ack_delay >= c->min_rtt && ack_delay < sample)
		sample -= ack_delay;
	if (!c->have_rtt) {
		c->srtt = sample;
		c->rttvar = sample / 2;
		c->have_rtt = true;
		return;
	}
	uint64_t d = c->srtt > sample ? c->srtt - sample : sample - c->srtt;
	c->rttvar = (3 * c->rttvar + d) / 4;
	c->srtt = (7 * c->srtt + sample) / 8;
}

static uint64_t loss_delay(const struct amst_conn *c)
{
	uint64_t base = max64(c->srtt, c->latest_rtt);
	uint64_t d = base + base / 8;
	return max64(d, 1000000ull); /* at least 1 ms */
}

static uint64_t pto_ns(const struct amst_conn *c)
{
	uint64_t srtt = c->have_rtt ? c->srtt : HS_RTO_NS;
	uint64_t p = srtt + max64(4 * c->rttvar, 1000000ull) + MAX_ACK_DELAY_NS;
	p = max64(p, MIN_PTO_NS);
	return p << (c->pto_backoff < 10 ? c->pto_backoff : 10);
}

static uint64_t keepalive_ns(const struct amst_conn *c)
{
	return (uint64_t)c->cfg.idle_timeout_ms * 1000000ull / 4;
}

static void on_stream_frame_lost(struct amst_conn *c, const struct sent_frame *f)
{
	struct amst_stream *s = stream_get(c, f->id);
	if (s == NULL)
		return;
	switch (f->kind) {
	case 0: {
		/* Only what is still unacknowledged needs sending again. */
		uint64_t lo = max64(f->off, s->s_base), hi = f->off + f->len;
		for (uint64_t a = lo; a < hi;) {
			if (amst_rangeset_contains(&s->s_acked, a)) {
				a = amst_rangeset_contiguous_end(&s->s_acked, a);
				continue;
			}
			uint64_t b = min64(amst_rangeset_next_lo(&s->s_acked, a), hi);
			/* Out of slots, send a little more again rather than less. */
			amst_rangeset_add_widen(&s->s_lost, a, b);
			a = b;
		}
		if (f->fin && !s->fin_acked)
			s->fin_lost = true;
		break;
	}
	case 1:
		s->msd_pending = true;
		break;
	case 2:
		if (!s->reset_acked)
			s->reset_pending = true;
		break;
	}
}

static void release_acked(struct amst_stream *s)
{
	uint64_t end = amst_rangeset_contiguous_end(&s->s_acked, s->s_base);
	if (end > s->s_base) {
		s->s_base = end;
		amst_rangeset_trim_below(&s->s_acked, end);
		amst_rangeset_trim_below(&s->s_lost, end);
	}
}

static void on_stream_frame_acked(struct amst_conn *c, const struct sent_frame *f)
{
	struct amst_stream *s = stream_get(c, f->id);
	if (s == NULL)
		return;
	switch (f->kind) {
	case 0:
		if (f->len && f->off + f->len > s->s_base) {
			uint64_t lo = max64(f->off, s->s_base);
			if (amst_rangeset_add(&s->s_acked, lo, f->off + f->len) == 0) {
				amst_rangeset_remove(&s->s_lost, lo, f->off + f->len);
				release_acked(s);
			} else {
				/* Too fragmented to remember this ACK: send the bytes again,
				 * their next ACK is recorded once the front moves. */
				amst_rangeset_add_widen(&s->s_lost, lo, f->off + f->len);
			}
		}
		if (f->fin) {
			s->fin_acked = true;
			s->fin_lost = false;
		}
		maybe_writable(c, s);
		break;
	case 2:
		s->reset_acked = true;
		s->reset_pending = false;
		break;
	}
}

static void pkt_lost(struct amst_conn *c, struct sent_pkt *p)
{
	p->flags |= SP_LOST;
	if (p->flags & SP_IN_FLIGHT)
		c->bytes_in_flight -= p->size;
	c->st.pkts_lost++;
	for (unsigned i = 0; i < p->n; i++)
		on_stream_frame_lost(c, &p->fr[i]);
	if (p->flags & SP_MAX_DATA)
		c->max_data_pending = true;
}

static void advance_sent_lo(struct amst_conn *c)
{
	while (c->sent_lo < c->next_pn && (sent_at(c, c->sent_lo)->flags & (SP_ACKED | SP_LOST)))
		c->sent_lo++;
}

/* Declare lost what the packet and time thresholds say; returns bytes lost. */
static uint64_t detect_losses(struct amst_conn *c, uint64_t now)
{
	c->loss_time_ns = 0;
	if (c->largest_acked == UINT64_MAX)
		return 0;
	uint64_t lost = 0, delay = loss_delay(c);
	for (uint64_t pn = c->sent_lo; pn < c->largest_acked; pn++) {
		struct sent_pkt *p = sent_at(c, pn);
		if (p->flags & (SP_ACKED | SP_LOST))
			continue;
		if (c->largest_acked - pn >= PKT_THRESH || p->t_sent + delay <= now) {
			lost += p->size;
			pkt_lost(c, p);
			continue;
		}
		/* Newer packets are newer still: arm the timer for this one and stop. */
		c->loss_time_ns = p->t_sent + delay;
		break;
	}
	advance_sent_lo(c);
	return lost;
}

static int on_ack(struct amst_conn *c, const struct amst_frame *f, uint64_t now)
{
	uint64_t largest = f->u.ack.largest;
	if (largest >= c->next_pn)
		return -EBADMSG; /* acknowledges a packet we never sent */
	struct amst_rate_sample rs = {0};
	uint64_t newly_acked = 0, prior_time = 0, send_elapsed = 0, ack_elapsed = 0;
	bool have_sample = false, largest_newly = false;
	uint64_t largest_sent_time = 0;
	for (uint32_t i = 0; i < f->u.ack.n; i++) {
		uint64_t lo = max64(f->u.ack.r[i].lo, c->sent_lo);
		for (uint64_t pn = lo; pn < f->u.ack.r[i].hi; pn++) {
			struct sent_pkt *p = sent_at(c, pn);
			if (p->pn != pn || (p->flags & SP_ACKED))
				continue;
			bool was_lost = p->flags & SP_LOST;
			p->flags |= SP_ACKED;
			if ((p->flags & SP_ACK_ELICITING) && !was_lost &&
			    (c->any_rtt == 0 || now - p->t_sent < c->any_rtt))
				c->any_rtt = max64(now - p->t_sent, 1);
			if (!was_lost && (p->flags & SP_IN_FLIGHT))
				c->bytes_in_flight -= p->size;
			if (pn == largest) {
				largest_newly = true;
				largest_sent_time = p->t_sent;
			}
			for (unsigned k = 0; k < p->n; k++)
				on_stream_frame_acked(c, &p->fr[k]);
			if (was_lost)
				continue; /* already counted lost; its data was resent */
			newly_acked += p->size;
			c->delivered += p->size;
			c->delivered_time = now;
			if (!have_sample || p->delivered >= rs.prior_delivered) {
				have_sample = true;
				rs.prior_delivered = p->delivered;
				prior_time = p->delivered_time;
				rs.app_limited = p->app_limited;
				send_elapsed = p->t_sent - p->first_sent_time;
				ack_elapsed = now - p->delivered_time;
				c->first_sent_time = p->t_sent;
			}
		}
	}
	if (c->largest_acked == UINT64_MAX || largest > c->largest_acked)
		c->largest_acked = largest;
	if (largest_newly) {
		uint64_t delay = (uint64_t)f->u.ack.delay_us * 1000;
		update_rtt(c, now - largest_sent_time, min64(delay, MAX_ACK_DELAY_NS));
		rs.rtt_ns = now - largest_sent_time;
	}
	if (newly_acked)
		c->pto_backoff = 0;
	uint64_t lost = detect_losses(c, now);
	advance_sent_lo(c);
	if (have_sample) {
		uint64_t interval = max64(send_elapsed, ack_elapsed);
		uint64_t dlv = c->delivered - rs.prior_delivered;
		(void)prior_time;
		if (interval >= 100000) /* at least 100 us */
			rs.delivery_rate = dlv * 1000000000ull / interval;
	}
	rs.newly_acked = newly_acked;
	rs.newly_lost = lost;
	if (newly_acked || lost)
		amst_cc_on_ack(&c->cc, &rs, c->bytes_in_flight, now);
	if (c->app_limited_until && c->delivered > c->app_limited_until)
		c->app_limited_until = 0;
	return 0;
}

static void signal_readable(struct amst_conn *c, struct amst_stream *s)
{
	if (!s->readable_signalled) {
		s->readable_signalled = true;
		push_event(c, AMST_EV_READABLE, s->id, 0);
	}
}

/* A stream we opened during the handshake that the peer's limit has no room
 * for: the peer would drop every packet with a frame of it, so it never goes
 * on the wire. Both directions end here, as after a reset by the peer. */
static void refuse_stream(struct amst_conn *c, struct amst_stream *s)
{
	amst_rangeset_clear(&s->s_lost);
	s->s_next = s->s_end;
	s->reset_pending = false; /* one the application asked for goes nowhere either */
	s->reset_sent = s->reset_acked = true;
	s->reset_recv = true;
	s->reset_recv_code = AMST_RESET_STREAM_LIMIT;
	push_event(c, AMST_EV_STREAM_RESET, s->id, AMST_RESET_STREAM_LIMIT);
}

static bool placed(const struct amst_conn *c, const uint8_t *data)
{
	for (unsigned i = 0; i < c->n_rx_placed; i++)
		if (c->rx_placed[i] == data)
			return true;
	return false;
}

/* Where stream id's bytes [off, off + len) go in its receive ring, if all of
 * them fall into one stretch of it that holds nothing yet (a hole inside the
 * window, not across the ring's end); else NULL. Bytes written there before
 * their packet authenticates are never read: nothing reads a hole, and the
 * true bytes overwrite them when they come. */
static uint8_t *ring_hole(const struct amst_conn *c, uint32_t id, uint64_t off, size_t len)
{
	const struct amst_stream *s = stream_get(c, id);
	if (s == NULL || s->reset_recv || len == 0 || len > s->r_size || off < s->r_base ||
	    off - s->r_base > s->r_size - len)
		return NULL;
	uint32_t pos = (uint32_t)(off & (s->r_size - 1));
	if (len > s->r_size - pos || amst_rangeset_contains(&s->r_have, off) ||
	    amst_rangeset_next_lo(&s->r_have, off) < off + len)
		return NULL;
	return s->rbuf + pos;
}

/* Decrypt and authenticate a DATA packet's body. The data of its leading
 * STREAM frames goes straight into the receive rings where it fits a hole
 * (ring_hole), saving a copy there after decryption; everything else is
 * decrypted in place. -EBADMSG if it does not authenticate. */
static int open_body(struct amst_conn *c, uint64_t pn, uint8_t *pkt, size_t body)
{
	uint8_t *p = pkt + AMST_HDR_LEN, *end = p + body;
	c->n_rx_placed = 0;
	if (amst_aead_open_begin(c->rx, pn, pkt, AMST_HDR_LEN) != 0)
		return -EIO;
	/* (a closed session only checks the packet: nothing is placed) */
	while (c->state != AMST_CLOSED && c->n_rx_placed < RX_PLACED_MAX &&
	       (size_t)(end - p) >= AMST_FR_STREAM_HDR) {
		if (amst_aead_open_update(c->rx, p, p, AMST_FR_STREAM_HDR) != 0)
			return -EIO;
		uint8_t *data = p + AMST_FR_STREAM_HDR;
		size_t len = amst_get16(p + 14);
		if (p[0] != AMST_FR_STREAM || len > (size_t)(end - data)) {
			p = data; /* another frame: the rest in place */
			break;
		}
		uint8_t *dst = ring_hole(c, amst_get32(p + 2), amst_get64(p + 6), len);
		if (amst_aead_open_update(c->rx, dst ? dst : data, data, len) != 0)
			return -EIO;
		if (dst)
			c->rx_placed[c->n_rx_placed++] = data;
		p = data + len;
	}
	if (amst_aead_open_update(c->rx, p, p, (size_t)(end - p)) != 0)
		return -EIO;
	int rc = amst_aead_open_end(c->rx, end);
	if (rc != 0)
		c->n_rx_placed = 0;
	return rc;
}

static int on_stream(struct amst_conn *c, const struct amst_frame *f, enum amst_drop *why)
{
	uint32_t id = f->u.stream.id;
	/* Our limit is on the streams the peer opens; ours are known or not. */
	bool ours = stream_ours(c, id);
	if (id >= AMST_MAX_STREAMS || (!ours && id / 2 >= c->cfg.max_streams)) {
		*why = AMST_DROP_STREAM_LIMIT;
		return -EBADMSG;
	}
	struct amst_stream *s = stream_get(c, id);
	if (s == NULL) {
		/* Only the peer opens streams of its parity. */
		if (ours) {
			*why = AMST_DROP_STATE;
			return -EBADMSG;
		}
		s = stream_new(c, id);
		if (s == NULL) {
			*why = AMST_DROP_STREAM_LIMIT;
			return -ENOMEM;
		}
		push_event(c, AMST_EV_STREAM_OPENED, id, 0);
	}
	if (s->reset_recv)
		return 0;
	uint64_t off = f->u.stream.off, end = off + f->u.stream.len;
	if (end > s->r_base + s->r_size) {
		*why = AMST_DROP_FLOW;
		return -EBADMSG;
	}
	if (f->u.stream.fin) {
		if ((s->r_fin != UINT64_MAX && s->r_fin != end) || end < s->r_max) {
			*why = AMST_DROP_MALFORMED;
			return -EBADMSG;
		}
		s->r_fin = end;
	}
	if (s->r_fin != UINT64_MAX && end > s->r_fin) {
		*why = AMST_DROP_MALFORMED;
		return -EBADMSG;
	}
	if (end > s->r_max) {
		uint64_t grow = end - s->r_max;
		if (c->rx_data + grow > c->max_data_adv) {
			*why = AMST_DROP_FLOW;
			return -EBADMSG;
		}
		c->rx_data += grow;
		s->r_max = end;
	}
	/* Copy the part we do not have yet into the ring (open_body may have
	 * decrypted all of it there already). */
	uint64_t lo = max64(off, s->r_base);
	if (lo < end && !amst_rangeset_covers(&s->r_have, lo, end)) {
		uint32_t mask = s->r_size - 1;
		/* Copy only the gaps: bytes we hold may already be read and replaced. */
		for (uint64_t a = placed(c, f->u.stream.data) ? end : lo; a < end;) {
			if (amst_rangeset_contains(&s->r_have, a)) {
				a = min64(amst_rangeset_contiguous_end(&s->r_have, a), end);
				continue;
			}
			uint64_t gap_end = min64(amst_rangeset_next_lo(&s->r_have, a), end);
			while (a < gap_end) {
				uint32_t pos = (uint32_t)(a & mask);
				uint64_t n = min64(gap_end - a, (uint64_t)s->r_size - pos);
				memcpy(s->rbuf + pos, f->u.stream.data + (a - off), n);
				a += n;
			}
		}
		if (amst_rangeset_add(&s->r_have, lo, end) != 0) {
			*why = AMST_DROP_FLOW; /* too fragmented to track: the sender resends */
			return -ENOSPC;
		}
	}
	if (amst_rangeset_contiguous_end(&s->r_have, s->r_base) > s->r_base ||
	    (s->r_fin != UINT64_MAX && s->r_base == s->r_fin))
		signal_readable(c, s);
	return 0;
}

static int process_frames(struct amst_conn *c, const uint8_t *p, size_t len, uint64_t now,
                          bool *ack_eliciting, enum amst_drop *why)
{
	struct amst_frame_iter it;
	struct amst_frame f;
	int rc;
	amst_frame_iter_init(&it, p, len);
	*ack_eliciting = false;
	while ((rc = amst_frame_next(&it, &f)) == 1) {
		if (f.type != AMST_FR_ACK && f.type != AMST_FR_PADDING)
			*ack_eliciting = true;
		switch (f.type) {
		case AMST_FR_PADDING:
		case AMST_FR_PING:
			break;
		case AMST_FR_ACK:
			if (on_ack(c, &f, now) != 0) {
				*why = AMST_DROP_MALFORMED;
				return -EBADMSG;
			}
			break;
		case AMST_FR_STREAM:
			rc = on_stream(c, &f, why);
			if (rc)
				return rc;
			break;
		case AMST_FR_MAX_DATA:
			if (f.u.max_data > c->peer_max_data)
				c->peer_max_data = f.u.max_data;
			break;
		case AMST_FR_MAX_STREAM_DATA: {
			struct amst_stream *s = stream_get(c, f.u.msd.id);
			if (s && f.u.msd.max > s->s_peer_max)
				s->s_peer_max = f.u.msd.max;
			break;
		}
		case AMST_FR_RESET_STREAM: {
			struct amst_stream *s = stream_get(c, f.u.reset.id);
			/* A stream reset before its first byte still opens (and ends) it,
			 * so the peer's application hears of it. */
			if (s == NULL && f.u.reset.id < AMST_MAX_STREAMS &&
			    f.u.reset.id / 2 < c->cfg.max_streams &&
			    !stream_ours(c, f.u.reset.id)) {
				s = stream_new(c, f.u.reset.id);
				if (s)
					push_event(c, AMST_EV_STREAM_OPENED, s->id, 0);
			}
			if (s && !s->reset_recv) {
				/* Its final size counts against the session window
				 * like data, and all of it is as good as read: the
				 * sender counted every byte it sent, so credit not
				 * given back here would be lost for good. */
				uint64_t fsz = f.u.reset.final_size;
				if (fsz < s->r_max || (s->r_fin != UINT64_MAX && fsz != s->r_fin)) {
					*why = AMST_DROP_MALFORMED;
					return -EBADMSG;
				}
				if (fsz - s->r_max > c->max_data_adv - c->rx_data) {
					*why = AMST_DROP_FLOW;
					return -EBADMSG;
				}
				c->rx_data += fsz - s->r_max;
				s->r_max = fsz;
				c->read_data += fsz - s->r_base;
				s->r_base = fsz;
				amst_rangeset_trim_below(&s->r_have, s->r_base);
				s->reset_recv = true;
				/* Codes from AMST_RESET_STREAM_LIMIT up are ours alone:
				 * a peer's reads as the highest application code. */
				s->reset_recv_code = (uint32_t)min64(f.u.reset.code,
				                                     AMST_RESET_STREAM_LIMIT - 1);
				push_event(c, AMST_EV_STREAM_RESET, s->id, s->reset_recv_code);
			}
			break;
		}
		case AMST_FR_CLOSE: {
			char reason[AMST_MAX_REASON + 1];
			/* The peer's words, printable only: they end up in logs. */
			for (uint16_t i = 0; i < f.u.close.len; i++) {
				uint8_t ch = f.u.close.reason[i];
				reason[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
			}
			reason[f.u.close.len] = '\0';
			c->closed_by_peer = true;
			c->close_code = f.u.close.code;
			snprintf(c->close_reason, sizeof(c->close_reason), "peer: %s", reason);
			c->state = AMST_CLOSING; /* so enter_closed keeps the peer's reason */
			enter_closed(c, f.u.close.code, NULL);
			return 0;
		}
		}
	}
	if (rc < 0) {
		*why = AMST_DROP_MALFORMED;
		return rc;
	}
	return 0;
}

static int drop(struct amst_conn *c, enum amst_drop why)
{
	c->st.drops[why]++;
	return -EBADMSG;
}

/* A DATA packet of this session is the peer's, whole and new: sealed or
 * not as the session is, long enough, not a replay, and it authenticates
 * (decrypted in place) or its CRC holds. 0 with its body's length, or the
 * drop reason. */
static int open_data(struct amst_conn *c, const struct amst_hdr *h, uint8_t *pkt, size_t len,
                     size_t *body, enum amst_drop *why)
{
	bool sealed = h->flags & AMST_F_SEALED;
	size_t trailer = sealed ? AMST_TAG_LEN : AMST_CRC_LEN;
	*why = AMST_DROP_COUNT;
	if (sealed != c->cfg.seal) {
		*why = AMST_DROP_UNSEALED;
	} else if (len < AMST_HDR_LEN + trailer) {
		*why = AMST_DROP_SHORT;
	} else if (h->pn < c->rx_floor || amst_rangeset_contains(&c->rx_pns, h->pn)) {
		*why = AMST_DROP_REPLAY; /* caught before spending a decryption on it */
	} else {
		*body = len - AMST_HDR_LEN - trailer;
		if (sealed && open_body(c, h->pn, pkt, *body) != 0)
			*why = AMST_DROP_AUTH;
		else if (!sealed && amst_get32(pkt + AMST_HDR_LEN + *body) !=
		                            amst_crc32c(pkt, AMST_HDR_LEN + *body))
			*why = AMST_DROP_CRC;
	}
	return *why == AMST_DROP_COUNT ? 0 : -EBADMSG;
}

/* Our CLOSE went out (all its copies, which are not retransmitted), yet the
 * peer still sends: they may all have been lost, and the peer would end on
 * its idle timeout with an error. Say it again, now and then, a few times. */
static bool close_echo_due(const struct amst_conn *c, uint64_t now)
{
	return !c->closed_by_peer && !c->close_pending && c->close_echoes < CLOSE_ECHO_MAX &&
	       now >= c->close_echo_ns;
}

static void close_echo(struct amst_conn *c, uint64_t now)
{
	if (!close_echo_due(c, now))
		return;
	c->close_pending = true;
	c->close_echoes++;
	c->close_echo_ns = now + max64(2 * c->srtt, CLOSE_ECHO_GAP_NS);
}

int amst_conn_input(struct amst_conn *c, uint8_t *pkt, size_t len, uint64_t now)
{
	struct amst_hdr h;
	if (len < AMST_HDR_LEN)
		return drop(c, AMST_DROP_SHORT);
	if (amst_hdr_parse(pkt, len, &h) != 0)
		return drop(c, AMST_DROP_BAD_HEADER);
	if (c->state == AMST_CLOSED) {
		/* (checked before the packet is: no decryption when not due) */
		size_t body;
		enum amst_drop why;
		if (c->close_sends > 0 && close_echo_due(c, now) && h.type == AMST_PKT_DATA &&
		    h.dst_cid == c->cfg.local_cid && c->rx != NULL &&
		    open_data(c, &h, pkt, len, &body, &why) == 0)
			close_echo(c, now);
		return drop(c, AMST_DROP_STATE);
	}
	if (h.type == AMST_PKT_INIT) {
		/* A retransmitted INIT: our ACCEPT was lost. */
		if (!c->cfg.client && h.pn == c->init_pn) {
			c->accept_pending = true;
			c->st.pkts_recv++;
			return 0;
		}
		return drop(c, AMST_DROP_STATE);
	}
	if (h.dst_cid != c->cfg.local_cid)
		return drop(c, AMST_DROP_UNKNOWN_SESSION);
	if (h.type == AMST_PKT_ACCEPT) {
		struct amst_hello hello;
		struct amst_hdr hh;
		if (!c->cfg.client)
			return drop(c, AMST_DROP_STATE);
		if (c->state != AMST_HANDSHAKE) {
			c->st.pkts_recv++; /* a duplicate ACCEPT: harmless */
			return 0;
		}
		if (open_hello(c->hs, pkt, len, AMST_PKT_ACCEPT, &hh, &hello) != 0 ||
		    !hello_fits(&c->cfg, &hello))
			return drop(c, AMST_DROP_HANDSHAKE);
		c->peer_hello = hello;
		c->peer_cid = hello.src_cid;
		memcpy(c->peer_random, hello.random, AMST_RANDOM_LEN);
		if (derive_session_keys(c) != 0)
			return drop(c, AMST_DROP_HANDSHAKE);
		c->peer_max_data = hello.max_data;
		for (unsigned i = 0; i < AMST_MAX_STREAMS; i++) {
			struct amst_stream *s = c->streams[i];
			if (s == NULL)
				continue;
			s->s_peer_max = hello.max_stream_data;
			if (s->id / 2 >= hello.max_streams)
				refuse_stream(c, s);
		}
		c->state = AMST_ESTABLISHED;
		/* The handshake's round trip is our first RTT sample, unless INIT
		 * went more than once: every copy has the same packet number, so
		 * which one this answers is not known, and a sample from the
		 * last would be short (and min_rtt never forgets). */
		if (c->hs_inits == 1)
			update_rtt(c, now - c->hs_sent_ns, 0);
		amst_cc_init(&c->cc, c->cfg.max_payload, INIT_CWND_PKTS, c->srtt, now);
		c->cc.seed = (uint32_t)c->cfg.seed;
		if (c->cfg.rate_cap)
			amst_cc_set_cap(&c->cc, c->cfg.rate_cap);
		c->last_rx_ns = now;
		c->st.pkts_recv++;
		c->st.bytes_recv += len;
		push_event(c, AMST_EV_ESTABLISHED, 0, 0);
		return 0;
	}
	/* DATA */
	if (c->rx == NULL)
		return drop(c, AMST_DROP_STATE); /* before ACCEPT: cannot open it yet */
	size_t body;
	enum amst_drop why;
	if (open_data(c, &h, pkt, len, &body, &why) != 0)
		return drop(c, why);
	bool eliciting;
	why = AMST_DROP_MALFORMED;
	if (process_frames(c, pkt + AMST_HDR_LEN, body, now, &eliciting, &why) != 0)
		return drop(c, why);
	if (c->state == AMST_CLOSING && c->close_sends >= CLOSE_COPIES)
		close_echo(c, now);
	/* Remember the packet number: the replay window and the ACK ranges. */
	bool in_order = amst_rangeset_empty(&c->rx_pns) || h.pn == amst_rangeset_max(&c->rx_pns);
	if (amst_rangeset_add(&c->rx_pns, h.pn, h.pn + 1) != 0) {
		/* Forget the oldest range; the floor only ever rises. */
		c->rx_floor = max64(c->rx_floor, c->rx_pns.r[0].hi);
		amst_rangeset_trim_below(&c->rx_pns, c->rx_floor);
		if (h.pn >= c->rx_floor)
			amst_rangeset_add(&c->rx_pns, h.pn, h.pn + 1);
	}
	c->st.pkts_recv++;
	c->st.bytes_recv += len;
	c->last_rx_ns = now;
	if (h.pn + 1 == amst_rangeset_max(&c->rx_pns))
		c->largest_rx_ns = now;
	if (eliciting) {
		c->ack_pending++;
		/* Out of order (a new gap, or a late packet): tell the sender at once. */
		if (!in_order || c->ack_pending >= ACK_EVERY)
			c->ack_now = true;
		else if (c->ack_deadline_ns == 0)
			c->ack_deadline_ns = now + MAX_ACK_DELAY_NS;
	}
	return 0;
}

/* ---- sending ---- */

/* A MAX_DATA is owed: asked for, or a quarter of the session window read
 * since the last one. */
static bool max_data_due(const struct amst_conn *c)
{
	return c->max_data_pending ||
	       c->read_data + c->cfg.session_window > c->max_data_adv + c->cfg.session_window / 4;
}

static bool stream_has_data(const struct amst_conn *c, const struct amst_stream *s)
{
	if (s->reset_pending)
		return true; /* first RESET, or one whose packet was lost */
	if (s->reset_sent)
		return s->msd_pending; /* our direction is over; the peer's may go on */
	if (!amst_rangeset_empty(&s->s_lost) || s->fin_lost || s->msd_pending || s->reset_pending)
		return true;
	if (s->fin_queued && !s->fin_sent && s->s_next == s->s_end)
		return true;
	return s->s_next < s->s_end && s->s_next < s->s_peer_max && c->sent_data < c->peer_max_data;
}

/* Does any stream have data to send? */
static bool conn_has_data(const struct amst_conn *c)
{
	for (unsigned i = 0; i < c->stream_hi; i++)
		if (c->streams[i] && stream_has_data(c, c->streams[i]))
			return true;
	return false;
}

/* Add stream frames to a packet being built; returns bytes used. */
static size_t fill_stream(struct amst_conn *c, struct amst_stream *s, uint8_t *p, size_t room,
                          struct sent_pkt *sp)
{
	size_t used = 0;
	if (s->reset_pending && sp->n < MAX_FR_PER_PKT) {
		size_t n = amst_fr_reset(p, room, s->id, s->reset_code, s->s_final);
		if (n) {
			used += n;
			s->reset_pending = false;
			s->reset_sent = true;
			sp->fr[sp->n++] = (struct sent_frame){.id = s->id, .kind = 2};
		}
		return used;
	}
	if (s->msd_pending && sp->n < MAX_FR_PER_PKT && room - used >= AMST_FR_MSD_LEN) {
		rbuf_fit(s, s->r_win, c->cfg.stream_buf);
		s->r_adv = max64(s->r_adv, s->r_base + s->r_win);
		used += amst_fr_max_stream_data(p + used, room - used, s->id, s->r_adv);
		s->msd_pending = false;
		sp->fr[sp->n++] = (struct sent_frame){.id = s->id, .kind = 1};
	}
	while (sp->n < MAX_FR_PER_PKT && room - used > AMST_FR_STREAM_HDR) {
		size_t max = room - used - AMST_FR_STREAM_HDR;
		uint64_t off, len;
		bool retrans = false, fin = false;
		if (!amst_rangeset_empty(&s->s_lost)) {
			off = s->s_lost.r[0].lo;
			len = min64(s->s_lost.r[0].hi - off, max);
			retrans = true;
		} else if (s->fin_lost && s->s_next == s->s_end) {
			off = s->s_end;
			len = 0;
			fin = true;
		} else {
			off = s->s_next;
			uint64_t limit = min64(s->s_end, s->s_peer_max);
			uint64_t credit = c->peer_max_data > c->sent_data
			                          ? c->peer_max_data - c->sent_data
			                          : 0;
			limit = min64(limit, s->s_next + credit);
			len = limit > off ? min64(limit - off, max) : 0;
			if (len == 0 && !(s->fin_queued && !s->fin_sent && s->s_next == s->s_end))
				break;
		}
		if (len > UINT16_MAX)
			len = UINT16_MAX;
		if (s->fin_queued && off + len == s->s_end)
			fin = true;
		uint8_t *f = p + used;
		f[0] = AMST_FR_STREAM;
		f[1] = fin ? AMST_STREAM_FIN : 0;
		amst_put32(f + 2, s->id);
		amst_put64(f + 6, off);
		amst_put16(f + 14, (uint16_t)len);
		/* s_size as it is now: maybe_writable() below may grow the ring
		 * between frames. Spans taken before that still read the right
		 * bytes: growing copies them, and nothing writes where they were
		 * before the packet is sealed. */
		for (uint64_t a = off; a < off + len;) {
			uint32_t pos = (uint32_t)(a & (s->s_size - 1));
			uint64_t n = min64(off + len - a, (uint64_t)s->s_size - pos);
			uint8_t *dst = f + AMST_FR_STREAM_HDR + (a - off);
			/* Sealed: encrypted from where it lies (a full span list, which
			 * the frame limit rules out, falls back to the copy). */
			if ((c->cfg.seal || c->tx_gather) && c->n_tx_span < AMST_MAX_SPANS)
				c->tx_span[c->n_tx_span++] = (struct amst_span){
				        .dst = dst, .src = s->sbuf + pos, .len = n};
			else
				memcpy(dst, s->sbuf + pos, n);
			a += n;
		}
		used += AMST_FR_STREAM_HDR + len;
		sp->fr[sp->n++] = (struct sent_frame){
		        .id = s->id, .len = (uint32_t)len, .off = off, .kind = 0, .fin = fin};
		if (retrans) {
			amst_rangeset_remove(&s->s_lost, off, off + len);
			c->st.retrans_bytes += len;
			s->retrans += len;
		} else if (fin && len == 0 && s->fin_lost) {
			s->fin_lost = false;
		} else {
			s->s_next = off + len;
			c->sent_data += len;
			c->st.stream_bytes_sent += len;
			if (c->cfg.unsent_ns)
				maybe_writable(c, s);
		}
		if (fin) {
			s->fin_sent = true;
			s->fin_lost = false;
		}
		if (len == 0)
			break;
	}
	return used;
}

/* The pacer sends in bursts of PACE_BURST_NS worth of the pacing rate (at
 * least two packets, at most 64 KiB): between bursts the worker can nap and
 * the port is kicked once per burst instead of once per packet, which on a
 * machine whose cores are shared with the hypervisor is what leaves QEMU its
 * CPU (docs/amst.md "Pacing"). */
#define PACE_BURST_NS 250000.0

static double pace_burst(const struct amst_conn *c)
{
	double b = (double)c->cc.pacing_rate * PACE_BURST_NS / 1e9;
	if (b < 2.0 * c->cfg.max_payload)
		b = 2.0 * c->cfg.max_payload;
	return b > 64.0 * 1024 ? 64.0 * 1024 : b;
}

/* Credit a worker that woke late may spend at once: 2 ms worth, so that naps
 * and a busy CPU do not lower the rate, at most 256 KiB in a burst. */
static double pace_quantum(const struct amst_conn *c)
{
	double quantum = (double)c->cc.pacing_rate / 500.0;
	if (quantum < 2.0 * c->cfg.max_payload)
		quantum = 2.0 * c->cfg.max_payload;
	return quantum > 256.0 * 1024 ? 256.0 * 1024 : quantum;
}

/* ns until the pacer has the credit to send: to go on with an open burst,
 * open_min bytes; to open a new one, a whole burst. */
static uint64_t pace_wait_ns(const struct amst_conn *c, double open_min)
{
	double need = (c->pace_open ? open_min : pace_burst(c)) - c->pace_credit;
	if (need <= 0)
		return 0;
	return (uint64_t)(need * 1e9 / (double)(c->cc.pacing_rate ? c->cc.pacing_rate : 1));
}

static void pace_refill(struct amst_conn *c, uint64_t now)
{
	double quantum = pace_quantum(c);
	if (now > c->pace_last_ns) {
		c->pace_credit += (double)(now - c->pace_last_ns) * (double)c->cc.pacing_rate / 1e9;
		c->pace_last_ns = now;
	}
	if (c->pace_credit > quantum)
		c->pace_credit = quantum;
}

/* Put the DATA header of packet pn in front of the body of len in buf, then
 * seal or checksum the packet. */
static size_t finish_packet(struct amst_conn *c, uint8_t *buf, size_t body, uint64_t pn)
{
	struct amst_hdr h = {.type = AMST_PKT_DATA,
	                     .flags = c->cfg.seal ? AMST_F_SEALED : 0,
	                     .dst_cid = c->peer_cid,
	                     .pn = pn};
	amst_hdr_encode(&h, buf, AMST_HDR_LEN);
	if (c->cfg.seal) {
		if (amst_aead_seal_spans(c->tx, pn, buf, AMST_HDR_LEN, buf + AMST_HDR_LEN, body,
		                         c->tx_span, c->n_tx_span, buf + AMST_HDR_LEN + body) != 0)
			return 0;
		return AMST_HDR_LEN + body + AMST_TAG_LEN;
	}
	/* The checksum of the packet as it will be: each span's bytes in place
	 * of its dst (spans come in packet order). */
	uint32_t crc = AMST_CRC32C_INIT;
	const uint8_t *at = buf;
	for (unsigned i = 0; i < c->n_tx_span; i++) {
		crc = amst_crc32c_add(crc, at, (size_t)(c->tx_span[i].dst - at));
		crc = amst_crc32c_add(crc, c->tx_span[i].src, c->tx_span[i].len);
		at = c->tx_span[i].dst + c->tx_span[i].len;
	}
	crc = amst_crc32c_add(crc, at, (size_t)(buf + AMST_HDR_LEN + body - at));
	amst_put32(buf + AMST_HDR_LEN + body, crc ^ AMST_CRC32C_INIT);
	return AMST_HDR_LEN + body + AMST_CRC_LEN;
}

size_t amst_conn_pack_frames(struct amst_conn *c, const uint8_t *frames, size_t len, uint8_t *out,
                             size_t cap)
{
	size_t tail = c->cfg.seal ? AMST_TAG_LEN : AMST_CRC_LEN;
	if (c->tx == NULL || cap < AMST_HDR_LEN + tail || len > cap - AMST_HDR_LEN - tail ||
	    c->next_pn - c->sent_lo >= SENT_RING - 1)
		return 0;
	uint64_t pn = c->next_pn;
	memcpy(out + AMST_HDR_LEN, frames, len);
	c->n_tx_span = 0;
	size_t n = finish_packet(c, out, len, pn);
	if (n == 0)
		return 0;
	/* Its number is used; its slot in the sent ring reads as acknowledged. */
	struct sent_pkt *sp = sent_at(c, pn);
	memset(sp, 0, sizeof(*sp));
	sp->pn = pn;
	sp->flags = SP_ACKED;
	c->next_pn++;
	advance_sent_lo(c);
	return n;
}

static size_t build_ack(struct amst_conn *c, uint8_t *p, size_t room, uint64_t now)
{
	if (amst_rangeset_empty(&c->rx_pns))
		return 0;
	struct amst_frame f;
	uint32_t n = 0;
	for (int i = (int)c->rx_pns.n - 1; i >= 0 && n < 32; i--, n++) {
		f.u.ack.r[n].lo = c->rx_pns.r[i].lo;
		f.u.ack.r[n].hi = c->rx_pns.r[i].hi;
	}
	f.u.ack.n = n;
	uint64_t delay = now > c->largest_rx_ns ? (now - c->largest_rx_ns) / 1000 : 0;
	f.u.ack.delay_us = (uint32_t)min64(delay, UINT32_MAX);
	size_t used = amst_fr_ack(p, room, &f);
	if (used) {
		c->ack_pending = 0;
		c->ack_now = false;
		c->ack_deadline_ns = 0;
		c->st.acks_sent++;
	}
	return used;
}

void amst_conn_tick(struct amst_conn *c, uint64_t now)
{
	if (c->state == AMST_CLOSED)
		return;
	if (c->state != AMST_HANDSHAKE &&
	    now - c->last_rx_ns > (uint64_t)c->cfg.idle_timeout_ms * 1000000ull) {
		char why[96];
		snprintf(why, sizeof(why), "peer silent for %u ms", c->cfg.idle_timeout_ms);
		enter_closed(c, AMST_CLOSE_IDLE, why);
	} else if (c->state == AMST_CLOSING && now >= c->drain_until_ns) {
		enter_closed(c, c->close_code, NULL);
	} else if (c->state == AMST_HANDSHAKE &&
	           now - c->created_ns > (uint64_t)c->cfg.handshake_timeout_ms * 1000000ull) {
		enter_closed(c, AMST_CLOSE_HANDSHAKE, "no answer to INIT from the peer");
	}
}

size_t amst_conn_output_spans(struct amst_conn *c, uint8_t *buf, size_t cap, uint64_t now,
                              const struct amst_span **spans, unsigned *n_spans)
{
	c->tx_gather = !c->cfg.seal;
	c->n_tx_span = 0; /* a handshake packet has none */
	size_t n = amst_conn_output(c, buf, cap, now);
	c->tx_gather = false;
	*spans = c->tx_span;
	*n_spans = n && !c->cfg.seal ? c->n_tx_span : 0;
	return n;
}

size_t amst_conn_output(struct amst_conn *c, uint8_t *buf, size_t cap, uint64_t now)
{
	if (cap > c->cfg.max_payload)
		cap = c->cfg.max_payload;
	/* Timers first: they may end the session. */
	amst_conn_tick(c, now);
	if (c->state == AMST_CLOSED && !c->close_pending) /* pending: close_echo */
		return 0;
	if (c->state == AMST_HANDSHAKE) {
		if (now < c->hs_next_ns)
			return 0;
		c->hs_sent_ns = now;
		c->hs_inits++;
		c->hs_next_ns = now + c->hs_rto_ns;
		c->hs_rto_ns *= 2;
		return build_hello(c, AMST_PKT_INIT, c->init_pn, buf, cap);
	}
	if (c->accept_pending) {
		c->accept_pending = false;
		uint8_t r[8];
		amst_random(r, sizeof(r));
		return build_hello(c, AMST_PKT_ACCEPT, amst_get64(r), buf, cap);
	}
	if (c->loss_time_ns && now >= c->loss_time_ns)
		detect_losses(c, now);
	bool pto = false;
	if (c->bytes_in_flight && now >= c->last_ack_eliciting_ns + pto_ns(c)) {
		/* Probe: treat the oldest packet in flight as lost and send again. */
		pto = true;
		c->pto_backoff++;
		c->st.pto_count++;
		for (uint64_t pn = c->sent_lo; pn < c->next_pn; pn++) {
			struct sent_pkt *p = sent_at(c, pn);
			if (!(p->flags & (SP_ACKED | SP_LOST)) && (p->flags & SP_IN_FLIGHT)) {
				pkt_lost(c, p);
				break;
			}
		}
		advance_sent_lo(c);
		c->last_ack_eliciting_ns = now; /* restart the timer from this probe */
	}
	if (c->next_pn - c->sent_lo >= SENT_RING - 1)
		return 0; /* too much unresolved: wait for ACKs */

	uint8_t *body = buf + AMST_HDR_LEN;
	size_t room = cap - AMST_HDR_LEN - (c->cfg.seal ? AMST_TAG_LEN : AMST_CRC_LEN);
	size_t used = 0;
	uint64_t pn = c->next_pn;
	struct sent_pkt *sp = sent_at(c, pn);
	memset(sp, 0, offsetof(struct sent_pkt, fr));
	c->n_tx_span = 0;

	bool want_ack = c->ack_now || (c->ack_deadline_ns && now >= c->ack_deadline_ns);
	if (c->close_pending) {
		used += amst_fr_close(body, room, c->close_code, c->close_reason);
		c->close_pending = false;
		sp->flags |= SP_CLOSE;
	} else {
		/* Data is allowed by the window and the pacer (probes go anyway). */
		pace_refill(c, now);
		bool window = c->bytes_in_flight + cap <= c->cc.cwnd || pto;
		if (!c->pace_open && c->pace_credit >= pace_burst(c))
			c->pace_open = true;
		else if (c->pace_open && c->pace_credit < (double)cap / 2)
			c->pace_open = false;
		bool paced = (c->pace_open && c->pace_credit >= (double)cap / 2) || pto;
		if (c->pace_due_ns) {
			/* Back at the pacer later than its credit covers (the worker was
			 * coding, or the CPU was busy elsewhere): the path was not the
			 * limit meanwhile, so what the next samples show is not the path
			 * either. Without this, an HDE encoder's stalls walked the
			 * bandwidth estimate down and the pacing rate with it. */
			double cover = pace_quantum(c) * 1e9 /
			               (double)(c->cc.pacing_rate ? c->cc.pacing_rate : 1);
			if ((double)now > (double)c->pace_due_ns + cover)
				c->app_limited_until = max64(c->delivered + c->bytes_in_flight, 1);
			c->pace_due_ns = 0;
		}
		if (want_ack || (window && paced && c->ack_pending))
			used += build_ack(c, body, room, now);
		if (window && paced && c->state == AMST_ESTABLISHED) {
			if (max_data_due(c)) {
				c->max_data_adv = c->read_data + c->cfg.session_window;
				size_t n =
				        amst_fr_max_data(body + used, room - used, c->max_data_adv);
				if (n) {
					used += n;
					c->max_data_pending = false;
					sp->flags |= SP_MAX_DATA;
				}
			}
			uint32_t start = c->rr;
			bool any = false;
			for (uint32_t k = 0; k < c->stream_hi && room - used > AMST_FR_STREAM_HDR;
			     k++) {
				uint32_t id = (start + k) % c->stream_hi;
				struct amst_stream *s = c->streams[id];
				if (s == NULL || !stream_has_data(c, s))
					continue;
				size_t n = fill_stream(c, s, body + used, room - used, sp);
				used += n;
				if (n) {
					any = true;
					c->rr = id + 1;
				}
				if (sp->n == MAX_FR_PER_PKT)
					break;
			}
			if (!any && pto && used == 0)
				used += amst_fr_ping(body + used, room - used);
			/* Quiet but alive (a stalled reader, an idle session): keep the
			 * peer's idle timer from firing. */
			if (!any && used == 0 && now - c->last_tx_ns >= keepalive_ns(c)) {
				used += amst_fr_ping(body + used, room - used);
				pto = true; /* ack-eliciting */
			}
			/* Nothing to send with room in the window: application-limited. */
			if (!any && !pto && c->bytes_in_flight < c->cc.cwnd)
				c->app_limited_until = max64(c->delivered + c->bytes_in_flight, 1);
		} else if (window && c->state == AMST_ESTABLISHED) {
			if (!conn_has_data(c)) {
				/* The same while the pacer waits for its next burst: a trickle
				 * of data (a multifd handshake) must not look like a full pipe. */
				if (!c->app_limited_until)
					c->app_limited_until =
					        max64(c->delivered + c->bytes_in_flight, 1);
			} else if (c->cc.pacing_rate) {
				/* Data waits for the pacer: when it is due. */
				c->pace_due_ns = now + pace_wait_ns(c, (double)cap / 2);
			}
		}
	}
	if (used == 0)
		return 0;
	bool eliciting = false;
	for (unsigned i = 0; i < sp->n; i++)
		eliciting = true;
	if (sp->flags & (SP_MAX_DATA | SP_CLOSE) || pto)
		eliciting = true;
	size_t len = finish_packet(c, buf, used, pn);
	if (len == 0)
		return 0;
	c->next_pn++;
	sp->pn = pn;
	sp->t_sent = now;
	sp->size = (uint32_t)len;
	if (eliciting) {
		sp->flags |= SP_ACK_ELICITING | SP_IN_FLIGHT;
		if (c->bytes_in_flight == 0) {
			c->first_sent_time = now;
			c->delivered_time = now;
		}
		sp->delivered = c->delivered;
		sp->delivered_time = c->delivered_time;
		sp->first_sent_time = c->first_sent_time;
		/* A packet with no stream data (a ping, a window update, a reset)
		 * says nothing of what the path carries. */
		bool data = false;
		for (unsigned k = 0; k < sp->n && !data; k++)
			data = sp->fr[k].kind == 0 && sp->fr[k].len > 0;
		sp->app_limited = c->app_limited_until != 0 || !data;
		c->bytes_in_flight += len;
		c->last_ack_eliciting_ns = now;
		c->pace_credit -= (double)len;
	} else {
		sp->flags |= SP_ACKED; /* ACK-only packets are not tracked */
		if (c->sent_lo == pn)
			c->sent_lo++;
	}
	c->st.pkts_sent++;
	c->st.bytes_sent += len;
	c->last_tx_ns = now;
	if ((sp->flags & SP_CLOSE) && ++c->close_sends < CLOSE_COPIES && c->state == AMST_CLOSING)
		c->close_pending = true; /* say it a few times: CLOSE is not retransmitted */
	return len;
}

uint64_t amst_conn_last_activity(const struct amst_conn *c)
{
	return max64(c->last_rx_ns, c->last_tx_ns);
}

uint64_t amst_conn_next_time(const struct amst_conn *c)
{
	if (c->state == AMST_CLOSED)
		return c->close_pending ? 0 : UINT64_MAX;
	if (c->state == AMST_HANDSHAKE)
		return min64(c->hs_next_ns,
		             c->created_ns + (uint64_t)c->cfg.handshake_timeout_ms * 1000000ull);
	uint64_t t = c->last_rx_ns + (uint64_t)c->cfg.idle_timeout_ms * 1000000ull;
	if (c->accept_pending || c->close_pending || c->ack_now)
		return 0;
	if (c->state == AMST_CLOSING)
		t = min64(t, c->drain_until_ns);
	if (c->ack_deadline_ns)
		t = min64(t, c->ack_deadline_ns);
	if (c->loss_time_ns)
		t = min64(t, c->loss_time_ns);
	if (c->bytes_in_flight)
		t = min64(t, c->last_ack_eliciting_ns + pto_ns(c));
	else if (c->state == AMST_ESTABLISHED)
		t = min64(t, c->last_tx_ns + keepalive_ns(c));
	/* Data waiting: when the pacer allows the next packet. */
	bool data = max_data_due(c) || conn_has_data(c);
	if (data && c->state == AMST_ESTABLISHED &&
	    c->bytes_in_flight + c->cfg.max_payload <= c->cc.cwnd) {
		t = min64(t, c->pace_last_ns + pace_wait_ns(c, (double)c->cfg.max_payload / 2));
	}
	return t;
}

int amst_conn_event(struct amst_conn *c, struct amst_event *ev)
{
	if (c->ev_head == c->ev_tail)
		return 0;
	*ev = c->ev[c->ev_head++ % EVENT_RING];
	if (ev->type == AMST_EV_READABLE) {
		struct amst_stream *s = stream_get(c, ev->stream);
		if (s)
			s->readable_signalled = false;
	}
	return 1;
}

/* ---- streams, application side ---- */

int amst_stream_open(struct amst_conn *c)
{
	if (c->state != AMST_ESTABLISHED && c->state != AMST_HANDSHAKE)
		return -ENOTCONN;
	uint32_t id = c->next_local_stream;
	if (id >= AMST_MAX_STREAMS ||
	    id / 2 >=
	            (c->state == AMST_ESTABLISHED ? c->peer_hello.max_streams : c->cfg.max_streams))
		return -ENOSPC;
	struct amst_stream *s = stream_new(c, id);
	if (s == NULL)
		return -ENOMEM;
	if (c->state == AMST_HANDSHAKE)
		s->s_peer_max = 0; /* known at ACCEPT */
	c->next_local_stream += 2;
	return (int)id;
}

/* Can the application queue bytes on s? 0, or why not. */
static int stream_writable(const struct amst_conn *c, const struct amst_stream *s)
{
	if (s->fin_queued || s->reset_sent || s->reset_pending)
		return -EPIPE;
	if (c->state == AMST_CLOSED || c->state == AMST_CLOSING)
		return -ENOTCONN;
	return 0;
}

long amst_stream_write(struct amst_conn *c, uint32_t id, const void *data, size_t len)
{
	struct amst_stream *s = stream_get(c, id);
	if (s == NULL)
		return -ENOENT;
	int rc = stream_writable(c, s);
	if (rc != 0)
		return rc;
	size_t n = (size_t)min64(stream_room(c, s), len);
	uint32_t mask = s->s_size - 1;
	for (size_t done = 0; done < n;) {
		uint32_t pos = (uint32_t)((s->s_end + done) & mask);
		size_t k = (size_t)min64(n - done, (uint64_t)s->s_size - pos);
		memcpy(s->sbuf + pos, (const uint8_t *)data + done, k);
		done += k;
	}
	s->s_end += n;
	if (n < len)
		s->want_writable = true;
	return (long)n;
}

/* The send buffer's free span that starts at s_end (it stops at the wrap). */
static uint64_t send_span(const struct amst_conn *c, struct amst_stream *s)
{
	uint32_t pos = (uint32_t)(s->s_end & (s->s_size - 1));
	return min64(stream_room(c, s), (uint64_t)s->s_size - pos);
}

long amst_stream_reserve(struct amst_conn *c, uint32_t id, uint8_t **data)
{
	struct amst_stream *s = stream_get(c, id);
	*data = NULL;
	if (s == NULL)
		return -ENOENT;
	int rc = stream_writable(c, s);
	if (rc != 0)
		return rc;
	uint64_t n = send_span(c, s);
	*data = s->sbuf + (s->s_end & (s->s_size - 1));
	if (n == 0)
		s->want_writable = true;
	return (long)n;
}

int amst_stream_commit(struct amst_conn *c, uint32_t id, size_t n)
{
	struct amst_stream *s = stream_get(c, id);
	if (s == NULL)
		return -ENOENT;
	int rc = stream_writable(c, s);
	if (rc != 0)
		return rc;
	if (n > send_span(c, s))
		return -EINVAL;
	s->s_end += n;
	return 0;
}

void amst_conn_set_unsent(struct amst_conn *c, uint64_t ns)
{
	c->cfg.unsent_ns = ns;
	for (uint32_t i = 0; i < c->stream_hi; i++)
		if (c->streams[i])
			maybe_writable(c, c->streams[i]);
}

void amst_conn_set_full_window(struct amst_conn *c, bool on)
{
	if (c->cfg.full_window == on)
		return;
	c->cfg.full_window = on;
	for (uint32_t i = 0; i < c->stream_hi; i++) {
		struct amst_stream *s = c->streams[i];
		if (s == NULL)
			continue;
		if (on) {
			s->r_win = c->cfg.stream_buf;
			if (s->r_fin == UINT64_MAX)
				s->msd_pending = true;
		} else {
			/* A round trip from now, rwin_update() takes the reader's rate. */
			s->r_ep_ns = c->last_rx_ns;
			s->r_ep_base = s->r_base;
			s->r_ep_behind = true;
		}
	}
}

size_t amst_stream_room(struct amst_conn *c, uint32_t id)
{
	struct amst_stream *s = stream_get(c, id);
	return s ? (size_t)stream_room(c, s) : 0;
}

int amst_stream_finish(struct amst_conn *c, uint32_t id)
{
	struct amst_stream *s = stream_get(c, id);
	if (s == NULL)
		return -ENOENT;
	s->fin_queued = true;
	return 0;
}

/*
 * The receive window follows the application, as Linux sizes a TCP receive
 * buffer, once per round trip. While the application keeps up (some read in
 * the round trip took all there was), the window only grows, to four times
 * what it read per round trip: ahead of a sender that doubles its rate, and
 * not shrunk by a round trip whose data waited behind a hole. When every read
 * left bytes behind, the application is the slower side (a destination QEMU
 * loading pages); the window becomes two round trips of its read rate (a
 * decaying maximum), at least RWIN_MIN, so the sender, and behind it the
 * source QEMU, wait instead of parking the stream here: bytes held here are
 * bytes the guest waits for once the source QEMU has stopped it. Time is the
 * last packet's arrival (the reader has no clock of its own).
 */
static void rwin_update(struct amst_conn *c, struct amst_stream *s, uint64_t left)
{
	if (c->cfg.full_window)
		return;
	if (left == 0)
		s->r_ep_behind = false;
	uint64_t rtt = c->any_rtt;
	if (c->have_rtt && c->min_rtt < rtt)
		rtt = c->min_rtt;
	if (rtt == 0)
		return; /* RWIN_INIT until a round trip was measured */
	rtt = max64(rtt, 1000000ull);
	uint64_t now = c->last_rx_ns;
	if (now < s->r_ep_ns + rtt)
		return;
	double rate = (double)(s->r_base - s->r_ep_base) / (double)(now - s->r_ep_ns);
	s->r_rate = rate > s->r_rate * 0.75 ? rate : s->r_rate * 0.75;
	/* Keeping up: room for the sender to double, and for what waits behind
	 * holes; behind: two round trips of the reader's rate. */
	double want = (s->r_ep_behind ? 2.0 : 4.0) * s->r_rate * (double)rtt;
	uint64_t w = want > (double)c->cfg.stream_buf ? c->cfg.stream_buf : (uint64_t)want;
	if (s->r_ep_behind)
		s->r_win = min64(max64(w, RWIN_MIN), c->cfg.stream_buf);
	else
		s->r_win = max64(s->r_win, w);
	s->r_ep_ns = now;
	s->r_ep_base = s->r_base;
	s->r_ep_behind = true;
}

long amst_stream_peek(const struct amst_conn *c, uint32_t id, const uint8_t **data, bool *fin)
{
	const struct amst_stream *s = stream_get(c, id);
	*fin = false;
	*data = NULL;
	if (s == NULL)
		return -ENOENT;
	if (s->reset_recv)
		return -ECONNRESET;
	uint64_t end = amst_rangeset_contiguous_end(&s->r_have, s->r_base);
	uint32_t pos = (uint32_t)(s->r_base & (s->r_size - 1));
	uint64_t n = min64(end - s->r_base, (uint64_t)s->r_size - pos);
	*data = s->rbuf + pos;
	if (s->r_fin != UINT64_MAX && s->r_base + n == s->r_fin)
		*fin = true;
	return (long)n;
}

/* The application took n in-order bytes (n no more than there are). */
static void stream_consumed(struct amst_conn *c, struct amst_stream *s, uint64_t end, uint64_t n)
{
	s->r_base += n;
	c->read_data += n;
	c->st.stream_bytes_recv += n;
	amst_rangeset_trim_below(&s->r_have, s->r_base);
	rwin_update(c, s, end - s->r_base);
	/* Open the window again once a quarter of it is used. */
	if (s->r_base + s->r_win > s->r_adv + s->r_win / 4 && s->r_fin == UINT64_MAX)
		s->msd_pending = true;
}

int amst_stream_consume(struct amst_conn *c, uint32_t id, size_t n)
{
	struct amst_stream *s = stream_get(c, id);
	if (s == NULL)
		return -ENOENT;
	if (s->reset_recv)
		return -ECONNRESET;
	uint64_t end = amst_rangeset_contiguous_end(&s->r_have, s->r_base);
	if (n > end - s->r_base)
		return -EINVAL;
	stream_consumed(c, s, end, n);
	return 0;
}

long amst_stream_read(struct amst_conn *c, uint32_t id, void *buf, size_t len, bool *fin)
{
	struct amst_stream *s = stream_get(c, id);
	*fin = false;
	if (s == NULL)
		return -ENOENT;
	if (s->reset_recv)
		return -ECONNRESET;
	uint64_t end = amst_rangeset_contiguous_end(&s->r_have, s->r_base);
	size_t n = (size_t)min64(end - s->r_base, len);
	uint32_t mask = s->r_size - 1;
	for (size_t done = 0; done < n;) {
		uint32_t pos = (uint32_t)((s->r_base + done) & mask);
		size_t k = (size_t)min64(n - done, (uint64_t)s->r_size - pos);
		memcpy((uint8_t *)buf + done, s->rbuf + pos, k);
		done += k;
	}
	stream_consumed(c, s, end, n);
	if (s->r_fin != UINT64_MAX && s->r_base == s->r_fin)
		*fin = true;
	return (long)n;
}

int amst_stream_reset(struct amst_conn *c, uint32_t id, uint32_t code)
{
	struct amst_stream *s = stream_get(c, id);
	if (s == NULL)
		return -ENOENT;
	if (s->reset_sent || s->reset_pending)
		return 0;
	if (code >= AMST_RESET_STREAM_LIMIT)
		return -EINVAL; /* AMST's own */
	s->reset_pending = true;
	s->reset_code = code;
	amst_rangeset_clear(&s->s_lost);
	/* The final size is what was ever sent: the peer counts it against
	 * the session window, as sent_data does here. */
	s->s_final = s->s_next;
	s->s_next = s->s_end;
	return 0;
}

uint64_t amst_stream_unacked(const struct amst_conn *c, uint32_t id)
{
	const struct amst_stream *s = stream_get(c, id);
	return s ? s->s_end - s->s_base : 0;
}

int amst_stream_info(const struct amst_conn *c, uint32_t id, struct amst_stream_info *info)
{
	const struct amst_stream *s = stream_get(c, id);
	if (s == NULL)
		return -ENOENT;
	*info = (struct amst_stream_info){
	        .written = s->s_end,
	        .acked = s->s_base,
	        .read = s->r_base,
	        .retrans = s->retrans,
	        .fin_queued = s->fin_queued,
	        .fin_acked = s->fin_acked,
	        .fin_received = s->r_fin != UINT64_MAX && s->r_base == s->r_fin,
	        .reset_sent = s->reset_sent || s->reset_pending,
	        .reset_received = s->reset_recv,
	        .reset_received_code = s->reset_recv ? s->reset_recv_code : 0,
	};
	return 0;
}

/* What the peer has not acknowledged of our stream @p s: its bytes, +1 for
 * a FIN; after a reset, 1 until the RESET is. */
static uint64_t stream_unacked(const struct amst_stream *s)
{
	if (s->reset_sent || s->reset_pending)
		return !s->reset_acked;
	return (s->s_end - s->s_base) + (s->fin_queued && !s->fin_acked);
}

bool amst_conn_all_acked(const struct amst_conn *c)
{
	for (unsigned i = 0; i < AMST_MAX_STREAMS; i++)
		if (c->streams[i] != NULL && stream_ours(c, i) && stream_unacked(c->streams[i]))
			return false;
	return true;
}

void amst_conn_close(struct amst_conn *c, uint32_t code, const char *reason, uint64_t now)
{
	if (c->state == AMST_CLOSED || c->state == AMST_CLOSING)
		return;
	if (c->state == AMST_HANDSHAKE) {
		enter_closed(c, code, reason);
		return;
	}
	c->close_code = code;
	snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason ? reason : "");
	c->state = AMST_CLOSING;
	c->close_pending = true;
	c->close_sends = 0;
	c->drain_until_ns = now + 3 * pto_ns(c);
}

void amst_conn_set_rate_cap(struct amst_conn *c, uint64_t bytes_per_s)
{
	c->cfg.rate_cap = bytes_per_s;
	amst_cc_set_cap(&c->cc, bytes_per_s);
}

void amst_conn_get_stats(const struct amst_conn *c, struct amst_conn_stats *st)
{
	*st = c->st;
	st->srtt_ns = c->srtt;
	st->rttvar_ns = c->rttvar;
	st->min_rtt_ns = c->min_rtt == UINT64_MAX ? 0 : c->min_rtt;
	st->latest_rtt_ns = c->latest_rtt;
	st->pacing_rate = c->cc.pacing_rate;
	st->btl_bw = c->cc.btl_bw;
	st->cwnd = c->cc.cwnd;
	st->bytes_in_flight = c->bytes_in_flight;
	st->buffer_bytes = 0;
	st->unacked_bytes = 0;
	for (uint32_t i = 0; i < c->stream_hi; i++) {
		const struct amst_stream *s = c->streams[i];
		if (s == NULL)
			continue;
		st->buffer_bytes += (uint64_t)s->s_size + s->r_size;
		if (stream_ours(c, i))
			st->unacked_bytes += stream_unacked(s);
	}
	st->cc_state = c->cc.state;
}
