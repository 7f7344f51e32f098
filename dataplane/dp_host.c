/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp_host: QEMU's migration connections on this host, carried by AMST
 * streams (see dp_host.h). One level-triggered epoll fd per dp_host; a
 * socket is in it only with the events it can act on: EPOLLIN while its
 * stream has room and the host has not said EOF, EPOLLOUT while bytes wait
 * for it (or it is connecting), nothing otherwise (then only errors wake us,
 * and a socket that hangs up while it waits leaves the set altogether), so a
 * full stream or a slow socket never turns the loop into a busy one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#define NC_LOG_MODULE "host"
#include "dp_host.h"
#include "nc_log.h"

#define STREAM_BUDGET     (256u * 1024) /* bytes per direction, stream and call */
#define ACCEPT_BURST      16            /* connections accepted per listener and call */
#define EVENTS_MAX        64
#define LISTEN_BACKLOG    128
#define CONNECT_RETRY_NS  10000000ull  /* a UNIX listener's full backlog: try again */
#define ACCEPT_RETRY_NS   100000000ull /* out of fds: listen again after this */
#define HDE_FLUSH_NS      1000000ull   /* HDE frames what it holds after 1 ms without input */
#define TEST_PERIOD       65521u /* test streams: the pattern repeats (a prime: no page lines up) */
#define TEST_STREAM_SHIFT 4099u  /* stream k's pattern starts k * this into it */

/* What an epoll event's data points at: the first member of both. */
enum ep_kind {
	EP_LISTEN = 1,
	EP_STREAM,
};

enum hs_state {
	HS_FREE = 0,
	HS_WAITING,    /* receiving side: its turn to connect has not come */
	HS_CONNECTING, /* receiving side: non-blocking connect in progress */
	HS_OPEN,
	HS_CLOSED, /* finished both ways, socket closed */
	HS_RESET,  /* ended abortively */
};

static const char *const hs_names[] = {
        [HS_FREE] = "free", [HS_WAITING] = "waiting", [HS_CONNECTING] = "connecting",
        [HS_OPEN] = "open", [HS_CLOSED] = "closed",   [HS_RESET] = "reset",
};

struct hstream {
	enum ep_kind kind; /* EP_STREAM; first member */
	struct dp_host_sess *s;
	uint32_t id;
	enum hs_state state;
	int fd;
	uint32_t mask;   /* events registered with epoll */
	bool registered; /* in the epoll set (possibly with no events: errors only) */
	bool parked;     /* hung up while waiting: stays out of the set while it waits */
	uint8_t *bounce; /* read from AMST, not yet taken by the socket */
	uint32_t b_off, b_len;
	bool host_eof;      /* the socket said EOF; the stream has its FIN */
	bool amst_fin;      /* every byte to the peer's FIN was read from AMST */
	bool wr_shut;       /* shutdown(SHUT_WR) done */
	bool host_gone;     /* sending side: closed with our bytes unread; peer's are dropped */
	bool amst_readable; /* AMST may have bytes for us */
	bool room_blocked;  /* the stream had no room: out of EPOLLIN until it has */
	bool out_more;      /* stopped by the budget with bytes still in AMST */
	bool sock_full;     /* the socket took less than AMST had: wait for EPOLLOUT */
	bool reset;
	uint64_t to_amst, from_amst;
	/* HDE (dp_host_sess_set_codec): the codec and its input not yet taken. */
	struct hde_enc *enc; /* sending side: host bytes -> frames */
	struct hde_dec *dec; /* receiving side: frames -> host bytes */
	uint8_t *cin;        /* enc: host bytes; dec: AMST bytes; not yet taken by the codec */
	uint32_t cin_off, cin_len;
	uint64_t cin_ns;  /* enc: when host bytes last came (flush after HDE_FLUSH_NS) */
	size_t cache;     /* cache bytes this stream's codec holds (of the session's) */
	bool codec_more;  /* the codec holds bytes that need no event to move on */
	bool amst_eof;    /* dec: AMST's FIN was read; the decoder may still hold bytes */
	bool enc_done;    /* enc: host EOF, everything framed and written, FIN sent */
	XXH3_state_t *md; /* digest of the host bytes, while the stream runs */
	bool digest_done; /* digest holds the finished stream's XXH3-128 */
	uint8_t digest[NC_DIGEST_LEN];
};

struct dp_host_sess {
	enum ep_kind kind; /* EP_LISTEN (the listening socket's epoll data); first member */
	struct dp_host *h;
	struct dp_host_sess *prev, *next;
	struct amst_conn *c;
	bool sending; /* listens; otherwise connects */
	bool digest;  /* XXH3-128 of every stream's host bytes */
	struct dp_host_codec codec;
	size_t cache_used;              /* HDE cache held by live streams */
	struct dp_host_codec_stats cst; /* finished streams' HDE counters, and cache peak */
	struct dp_host_addr addr;
	char addr_text[DP_HOST_ADDR_TEXT];
	int lfd;
	bool l_registered;
	bool l_unlink; /* our socket file: remove it when we stop */
	dev_t l_dev;
	ino_t l_ino;
	uint64_t accept_retry_ns;  /* listening paused (out of fds) until then; 0: not */
	uint32_t next_connect;     /* receiving side: next stream id to connect */
	uint64_t connect_retry_ns; /* receiving side: connect again then; 0: not waiting */
	bool ended;
	uint32_t end_code;
	uint32_t st_hi; /* every stream id in use is below */
	struct dp_host_sess_stats stats;
	struct hstream st[AMST_MAX_STREAMS];
};

struct dp_host {
	int epfd;
	uint8_t *scratch; /* HDE: frames the encoder writes, before the stream takes them */
	uint8_t *pattern; /* test streams: 2 * TEST_PERIOD bytes, any offset's next TEST_PERIOD */
	struct dp_host_sess *sessions;
};

/* ---- helpers ---- */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void __attribute__((format(printf, 3, 4)))
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (err == NULL || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool is_test(const struct dp_host_sess *s)
{
	return s->addr.family == DP_HOST_TEST;
}

static bool is_unix(const struct dp_host_sess *s)
{
	return s->addr.family == DP_HOST_UNIX;
}

static socklen_t unix_sockaddr(const struct dp_host_addr *a, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, a->path, strlen(a->path) + 1);
	return (socklen_t)sizeof(*sun);
}

static int sock_error(int fd)
{
	int e = 0;
	socklen_t len = sizeof(e);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
		return errno;
	return e;
}

static void tcp_nodelay(int fd)
{
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ---- addresses ---- */

static int parse_port(const char *p, uint16_t *port)
{
	uint32_t v = 0;
	size_t n = 0;
	for (; p[n] != '\0'; n++) {
		if (p[n] < '0' || p[n] > '9' || n >= 5)
			return -1;
		v = v * 10 + (uint32_t)(p[n] - '0');
	}
	if (n == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* Digits of at most 19 places (no overflow of 64 bits); the rest after them in *end. */
static int parse_u64(const char *p, uint64_t *v, const char **end)
{
	uint64_t x = 0;
	size_t n = 0;
	for (; p[n] >= '0' && p[n] <= '9'; n++) {
		if (n == 19)
			return -1;
		x = x * 10 + (uint64_t)(p[n] - '0');
	}
	if (n == 0)
		return -1;
	*v = x;
	*end = p + n;
	return 0;
}

/* "test:", "test:STREAMS" or "test:STREAMS:BYTES" (BYTES with K, M, G or T: powers of 1024). */
static int test_addr_parse(const char *text, struct dp_host_addr *out, char *err, size_t errlen)
{
	struct dp_host_addr a;
	memset(&a, 0, sizeof(a));
	a.family = DP_HOST_TEST;
	const char *p = text + 5, *end;
	if (*p == '\0') {
		*out = a;
		return 0;
	}
	uint64_t n;
	if (parse_u64(p, &n, &end) != 0 || n < 1 || n > DP_HOST_TEST_STREAMS_MAX ||
	    (*end != '\0' && *end != ':')) {
		set_err(err, errlen,
		        "host address '%s': test streams are test:[STREAMS[:BYTES]], STREAMS "
		        "1-%d",
		        text, DP_HOST_TEST_STREAMS_MAX);
		return -EINVAL;
	}
	a.test_streams = (uint32_t)n;
	if (*end == ':') {
		uint64_t b;
		const char *q = end + 1;
		if (parse_u64(q, &b, &end) != 0) {
			set_err(err, errlen, "host address '%s': BYTES is not a number", text);
			return -EINVAL;
		}
		unsigned shift = 0;
		switch (*end) {
		case 'K':
			shift = 10;
			end++;
			break;
		case 'M':
			shift = 20;
			end++;
			break;
		case 'G':
			shift = 30;
			end++;
			break;
		case 'T':
			shift = 40;
			end++;
			break;
		default:
			break;
		}
		if (*end != '\0' || b == 0 || b > (1ull << 50) >> shift) {
			set_err(err, errlen,
			        "host address '%s': BYTES must be from 1 to 2^50 (1024T), with "
			        "K, M, G or T (powers of 1024) or nothing after it",
			        text);
			return -EINVAL;
		}
		a.test_bytes = b << shift;
	}
	*out = a;
	return 0;
}

int dp_host_addr_parse(const char *text, struct dp_host_addr *out, char *err, size_t errlen)
{
	struct dp_host_addr a;
	memset(&a, 0, sizeof(a));
	if (text == NULL || text[0] == '\0') {
		set_err(err, errlen, "empty host address: expected unix:/PATH or tcp:HOST:PORT");
		return -EINVAL;
	}
	if (strncmp(text, "unix:", 5) == 0) {
		const char *p = text + 5;
		size_t n = strlen(p);
		if (p[0] != '/') {
			set_err(err, errlen,
			        "host address '%s': a UNIX socket needs an absolute path "
			        "(unix:/PATH)",
			        text);
			return -EINVAL;
		}
		if (n > DP_HOST_PATH_MAX) {
			set_err(err, errlen,
			        "host address 'unix:%.32s...': the path is %zu bytes, a UNIX "
			        "socket "
			        "takes at most %d",
			        p, n, DP_HOST_PATH_MAX);
			return -EINVAL;
		}
		a.family = DP_HOST_UNIX;
		memcpy(a.path, p, n + 1);
		*out = a;
		return 0;
	}
	if (strncmp(text, "test:", 5) == 0)
		return test_addr_parse(text, out, err, errlen);
	if (strncmp(text, "tcp:", 4) != 0) {
		set_err(err, errlen,
		        "host address '%s': unknown kind, expected unix:/PATH, tcp:HOST:PORT or "
		        "test:[STREAMS[:BYTES]]",
		        text);
		return -EINVAL;
	}
	const char *p = text + 4;
	char host[INET6_ADDRSTRLEN + 1];
	const char *port;
	if (p[0] == '[') {
		const char *close = strchr(p, ']');
		if (close == NULL) {
			set_err(err, errlen, "host address '%s': no ']' after the IPv6 address",
			        text);
			return -EINVAL;
		}
		size_t hl = (size_t)(close - (p + 1));
		if (hl == 0 || hl >= sizeof(host)) {
			set_err(err, errlen, "host address '%s': bad IPv6 address", text);
			return -EINVAL;
		}
		memcpy(host, p + 1, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET6, host, &a.ip.in6.sin6_addr) != 1) {
			set_err(err, errlen, "host address '%s': '%s' is not an IPv6 address", text,
			        host);
			return -EINVAL;
		}
		if (close[1] != ':') {
			set_err(err, errlen, "host address '%s': expected ':PORT' after ']'", text);
			return -EINVAL;
		}
		port = close + 2;
		a.ip.in6.sin6_family = AF_INET6;
		a.ip_len = sizeof(a.ip.in6);
	} else {
		const char *colon = strrchr(p, ':');
		if (colon == NULL) {
			set_err(err, errlen, "host address '%s': expected tcp:HOST:PORT", text);
			return -EINVAL;
		}
		size_t hl = (size_t)(colon - p);
		if (memchr(p, ':', hl) != NULL) {
			set_err(err, errlen,
			        "host address '%s': an IPv6 address goes in brackets: "
			        "tcp:[ADDR]:PORT",
			        text);
			return -EINVAL;
		}
		if (hl == 0) {
			set_err(err, errlen, "host address '%s': no host before the port", text);
			return -EINVAL;
		}
		if (hl >= sizeof(host)) {
			set_err(err, errlen,
			        "host address '%s': the host is not a numeric IPv4 address (host "
			        "names are not resolved)",
			        text);
			return -EINVAL;
		}
		memcpy(host, p, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET, host, &a.ip.in4.sin_addr) != 1) {
			set_err(err, errlen,
			        "host address '%s': '%s' is not a numeric IPv4 address (host names "
			        "are not resolved: write e.g. tcp:127.0.0.1:PORT or "
			        "tcp:[::1]:PORT)",
			        text, host);
			return -EINVAL;
		}
		port = colon + 1;
		a.ip.in4.sin_family = AF_INET;
		a.ip_len = sizeof(a.ip.in4);
	}
	uint16_t pt;
	if (parse_port(port, &pt) != 0) {
		set_err(err, errlen, "host address '%s': port '%s' is not a number from 0 to 65535",
		        text, port);
		return -EINVAL;
	}
	if (a.ip.sa.sa_family == AF_INET6)
		a.ip.in6.sin6_port = htons(pt);
	else
		a.ip.in4.sin_port = htons(pt);
	a.family = DP_HOST_TCP;
	*out = a;
	return 0;
}

int dp_host_addr_format(const struct dp_host_addr *a, char *buf, size_t len)
{
	int n;
	char ip[INET6_ADDRSTRLEN];
	if (a->family == DP_HOST_UNIX) {
		n = snprintf(buf, len, "unix:%s", a->path);
	} else if (a->family == DP_HOST_TEST) {
		if (a->test_streams == 0)
			n = snprintf(buf, len, "test:");
		else if (a->test_bytes == 0)
			n = snprintf(buf, len, "test:%u", a->test_streams);
		else
			n = snprintf(buf, len, "test:%u:%llu", a->test_streams,
			             (unsigned long long)a->test_bytes);
	} else if (a->family == DP_HOST_TCP && a->ip.sa.sa_family == AF_INET) {
		if (inet_ntop(AF_INET, &a->ip.in4.sin_addr, ip, sizeof(ip)) == NULL)
			return -EINVAL;
		n = snprintf(buf, len, "tcp:%s:%u", ip, ntohs(a->ip.in4.sin_port));
	} else if (a->family == DP_HOST_TCP && a->ip.sa.sa_family == AF_INET6) {
		if (inet_ntop(AF_INET6, &a->ip.in6.sin6_addr, ip, sizeof(ip)) == NULL)
			return -EINVAL;
		n = snprintf(buf, len, "tcp:[%s]:%u", ip, ntohs(a->ip.in6.sin6_port));
	} else {
		return -EINVAL;
	}
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= len)
		return -ENOSPC;
	return n;
}

static bool addr_ok(const struct dp_host_addr *a)
{
	if (a == NULL)
		return false;
	if (a->family == DP_HOST_UNIX)
		return a->path[0] == '/' && memchr(a->path, '\0', sizeof(a->path)) != NULL;
	if (a->family == DP_HOST_TEST)
		return a->test_streams <= DP_HOST_TEST_STREAMS_MAX;
	if (a->family == DP_HOST_TCP)
		return (a->ip.sa.sa_family == AF_INET && a->ip_len == sizeof(a->ip.in4)) ||
		       (a->ip.sa.sa_family == AF_INET6 && a->ip_len == sizeof(a->ip.in6));
	return false;
}

/* ---- one stream's socket ---- */

static void st_update_interest(struct hstream *t);

static void st_codec_free(struct hstream *t);

static void st_free_bounce(struct hstream *t)
{
	st_codec_free(t);
	t->s->stats.buffered -= t->b_len;
	t->b_len = t->b_off = 0;
	free(t->bounce);
	t->bounce = NULL;
	XXH3_freeState(t->md);
	t->md = NULL;
}

/* A digest of the host bytes from their start, or NULL (no memory). */
static XXH3_state_t *digest_new(void)
{
	XXH3_state_t *md = XXH3_createState();
	if (md != NULL && XXH3_128bits_reset(md) != XXH_OK) {
		XXH3_freeState(md);
		md = NULL;
	}
	return md;
}

/* The stream is finished in the direction the digest covers: seal it. The
 * bytes are XXH3-128's canonical (big-endian) form, what xxh128sum prints. */
static void st_digest_final(struct hstream *t)
{
	if (t->md == NULL || t->digest_done)
		return;
	_Static_assert(sizeof(XXH128_canonical_t) == sizeof(t->digest), "digest size");
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(t->md));
	memcpy(t->digest, c.digest, sizeof(t->digest));
	t->digest_done = true;
	XXH3_freeState(t->md);
	t->md = NULL;
}

/* Close the socket; abortively: RST for TCP (SO_LINGER 0), a plain close for UNIX. */
static void st_close_fd(struct hstream *t, bool abortive)
{
	struct dp_host_sess *s = t->s;
	if (t->fd >= 0) {
		if (t->registered)
			(void)epoll_ctl(s->h->epfd, EPOLL_CTL_DEL, t->fd, NULL);
		if (abortive && !is_unix(s)) {
			struct linger l = {.l_onoff = 1, .l_linger = 0};
			(void)setsockopt(t->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		}
		close(t->fd);
		t->fd = -1;
		s->stats.streams_open--;
	}
	t->registered = false;
	t->mask = 0;
	st_free_bounce(t);
}

/* End the stream abortively; reset it on AMST with @p code unless 0. A
 * stream ended so has no digest: what it had may not be what the other end
 * got (st_end closes a finished one gracefully instead). */
static void st_abort(struct hstream *t, uint32_t code)
{
	struct dp_host_sess *s = t->s;
	if (code != 0 && !s->ended)
		(void)amst_stream_reset(s->c, t->id, code);
	st_close_fd(t, true);
	t->state = HS_RESET;
	t->reset = true;
	t->digest_done = false;
	if (t->md != NULL) {
		XXH3_freeState(t->md);
		t->md = NULL;
	}
}

/* The session ends under an open stream. One that handed the host every byte
 * to the peer's FIN, and shut its write side, is closed gracefully: an RST
 * (a TCP abortive close) would drop what the host's socket still holds for
 * the host. What the host still sends is read and dropped first (a close
 * with bytes unread is an RST too). Any other is ended abortively. */
static void st_end(struct hstream *t, uint32_t code)
{
	if (t->state == HS_OPEN && t->wr_shut && t->b_len == 0 && t->fd >= 0 &&
	    t->s->end_code == 0) {
		char sink[4096];
		for (int i = 0; i < 64 && recv(t->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
			;
		st_close_fd(t, false);
		t->state = HS_CLOSED;
		return;
	}
	st_abort(t, code);
}

/* Whether error @p e on a sending-side host connection says only that the
 * host closed it with bytes of ours unread: on a UNIX socket a read says
 * ECONNRESET (after every byte it sent), a write EPIPE or ECONNRESET. Not on
 * TCP: there the same close is an RST, which cannot be told from an abort,
 * and an abort is passed on as one (the stream is reset). */
static bool host_closed_error(const struct hstream *t, int e)
{
	return t->s->sending && is_unix(t->s) && (e == ECONNRESET || e == EPIPE);
}

/* Sending side: the host closed its connection with bytes of ours unread
 * (host_closed_error). Its direction is complete once what it sent is read:
 * its bytes go on to the peer, to the FIN. What the peer still sends it
 * cannot be delivered and is dropped, as the host's close dropped what it had
 * not read. */
static void st_host_closed(struct hstream *t)
{
	if (t->host_gone)
		return;
	t->host_gone = true;
	NC_LOG_RL(NOTICE,
	          "%s stream %u: the connection closed with bytes for it unread; its own bytes "
	          "go on, what comes back for it is dropped",
	          t->s->addr_text, t->id);
}

static void st_host_error(struct hstream *t, int err, const char *what)
{
	t->s->stats.host_errors++;
	NC_LOG_RL(WARN, "%s stream %u: %s failed: %s; resetting the stream", t->s->addr_text, t->id,
	          what, strerror(err));
	st_abort(t, DP_HOST_RESET_HOST);
}

/* The peer reset the stream: close abortively, and stop our direction too. */
static void st_peer_reset(struct hstream *t, uint32_t code)
{
	if (t->state == HS_CLOSED || t->state == HS_RESET || t->state == HS_FREE)
		return;
	t->s->stats.peer_resets++;
	if (code == AMST_RESET_STREAM_LIMIT)
		NC_LOG_RL(ERR,
		          "%s stream %u: the peer allows fewer streams than this session opened; "
		          "closing its connection",
		          t->s->addr_text, t->id);
	else
		NC_LOG_RL(NOTICE,
		          "%s stream %u: reset by the peer (code %u); closing its connection",
		          t->s->addr_text, t->id, code);
	st_abort(t, code ? code : DP_HOST_RESET_HOST);
}

static void sess_end(struct dp_host_sess *s, uint32_t code);

/* AMST refused our bytes (@p rc): the session is going away, or the stream
 * was reset under us; they cannot be carried. */
static void st_stream_gone(struct hstream *t, long rc)
{
	struct dp_host_sess *s = t->s;
	enum amst_state as = amst_conn_state(s->c);
	if (as == AMST_CLOSING || as == AMST_CLOSED) {
		sess_end(s, amst_conn_error(s->c, NULL));
	} else {
		NC_LOG_RL(ERR, "%s stream %u: AMST refused bytes: %s", s->addr_text, t->id,
		          strerror(rc < 0 ? (int)-rc : EIO));
		st_abort(t, DP_HOST_RESET_HOST);
	}
}

/* ---- HDE on a stream ---- */

static void hde_stats_add(struct hde_stats *a, const struct hde_stats *b)
{
	for (unsigned i = 0; i < HDE_TIER__COUNT; i++) {
		a->tier[i].pages += b->tier[i].pages;
		a->tier[i].bytes_in += b->tier[i].bytes_in;
		a->tier[i].bytes_out += b->tier[i].bytes_out;
	}
	for (unsigned i = 0; i < HDE_SET__COUNT; i++)
		a->frames_by_setting[i] += b->frames_by_setting[i];
	a->frames += b->frames;
	a->bytes_in += b->bytes_in;
	a->bytes_out += b->bytes_out;
	a->ns_busy += b->ns_busy;
	a->rec_pages += b->rec_pages;
	a->rec_resyncs += b->rec_resyncs;
	a->rec_lost += b->rec_lost;
	a->cache_bytes += b->cache_bytes;
	a->cache_limit += b->cache_limit;
	a->cache_slots += b->cache_slots;
	a->cache_used += b->cache_used;
	a->mem_bytes += b->mem_bytes;
	if (b->mem_peak > a->mem_peak)
		a->mem_peak = b->mem_peak;
}

static void st_codec_stats(const struct hstream *t, struct hde_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (t->enc)
		hde_enc_stats(t->enc, st);
	else if (t->dec)
		hde_dec_stats(t->dec, st);
}

/* The stream's codec goes: its counters stay with the session, its cache is freed. */
static void st_codec_free(struct hstream *t)
{
	struct dp_host_sess *s = t->s;
	if (t->enc || t->dec) {
		struct hde_stats st;
		st_codec_stats(t, &st);
		st.cache_bytes = st.cache_limit = st.cache_slots = st.cache_used = 0;
		st.mem_bytes = 0;
		hde_stats_add(&s->cst.hde, &st);
		s->cst.streams++;
	}
	hde_enc_destroy(t->enc);
	hde_dec_destroy(t->dec);
	t->enc = NULL;
	t->dec = NULL;
	s->cache_used -= t->cache;
	t->cache = 0;
	free(t->cin);
	t->cin = NULL;
	t->cin_len = t->cin_off = 0;
	t->codec_more = false;
}

static void st_cache_take(struct hstream *t, size_t bytes)
{
	struct dp_host_sess *s = t->s;
	t->cache = bytes;
	s->cache_used += bytes;
	if (s->cache_used > s->cst.cache_peak)
		s->cst.cache_peak = s->cache_used;
}

/* Sending side: an encoder with this stream's share of the session's cache. */
static int st_codec_init(struct hstream *t)
{
	struct dp_host_sess *s = t->s;
	t->cin = malloc(DP_HOST_BOUNCE);
	if (t->cin == NULL)
		return -ENOMEM;
	if (!s->sending)
		return 0; /* the decoder is made when the stream's HELLO frame says its size */
	struct hde_params p = s->codec.p;
	size_t share = s->codec.cache_bytes / (s->codec.streams ? s->codec.streams : 1);
	size_t left = s->codec.cache_bytes - s->cache_used;
	p.cache_bytes = share < left ? share : left;
	t->enc = hde_enc_create(&p);
	if (t->enc == NULL)
		return -errno;
	struct hde_stats st;
	hde_enc_stats(t->enc, &st);
	st_cache_take(t, st.cache_bytes);
	t->cin_ns = now_ns();
	return 0;
}

static void st_codec_error(struct hstream *t, int rc, const char *what)
{
	struct dp_host_sess *s = t->s;
	s->cst.errors++;
	NC_LOG_RL(ERR, "%s stream %u: HDE %s: %s; resetting the stream", s->addr_text, t->id, what,
	          rc == -EBADMSG  ? "a frame is corrupt or truncated"
	          : rc == -EPROTO ? "the stream's HDE header does not fit this side's bounds"
	                          : strerror(-rc));
	st_abort(t, DP_HOST_RESET_CODEC);
}

/* Read up to cap bytes of the stream from AMST. Short of cap, the stream is
 * drained: AMST_EV_READABLE says when there is more. @return bytes read (*fin:
 * the peer's FIN came with them), or -1 if the stream failed and was closed. */
/* Reading the stream from AMST failed with @p rc: close it. */
static void st_amst_failed(struct hstream *t, long rc)
{
	struct amst_stream_info info = {0};
	/* The peer's RESET was taken in before its event: its code, not 0. */
	if (rc == -ECONNRESET && amst_stream_info(t->s->c, t->id, &info) == 0)
		st_peer_reset(t, info.reset_received ? info.reset_received_code : 0);
	else if (rc == -ECONNRESET)
		st_peer_reset(t, 0);
	else
		st_abort(t, DP_HOST_RESET_HOST);
}

static long st_amst_read(struct hstream *t, uint8_t *buf, size_t cap, bool *fin)
{
	*fin = false;
	long r = amst_stream_read(t->s->c, t->id, buf, cap, fin);
	if (r < 0) {
		st_amst_failed(t, r);
		return -1;
	}
	if ((size_t)r < cap)
		t->amst_readable = false;
	return r;
}

/* Receiving side: refill the empty bounce buffer with decoded bytes from AMST.
 * @return bytes placed (0: nothing now), or -1 if the stream was aborted. */
static long st_decode(struct hstream *t)
{
	struct dp_host_sess *s = t->s;
	t->codec_more = false;
	for (;;) {
		if (t->cin_len == 0 && t->amst_readable && !t->amst_eof) {
			bool fin;
			long r = st_amst_read(t, t->cin, DP_HOST_BOUNCE, &fin);
			if (r < 0)
				return -1;
			if (fin)
				t->amst_eof = true;
			t->cin_off = 0;
			t->cin_len = (uint32_t)r;
		}
		if (t->dec == NULL) {
			/* The first frame says how much cache the encoder uses. Its 40 bytes
			 * may come in pieces: gather them at the start of cin. */
			size_t cb = 0, bb = 0;
			int rc = hde_peek_hello(t->cin + t->cin_off, t->cin_len, &cb, &bb);
			if (rc == -EAGAIN) {
				if (t->amst_eof && t->cin_len == 0) {
					t->amst_fin = true; /* an empty stream */
					return 0;
				}
				if (t->amst_eof) {
					st_codec_error(t, -EBADMSG, "stream header");
					return -1;
				}
				if (t->cin_off > 0 && t->amst_readable) {
					memmove(t->cin, t->cin + t->cin_off, t->cin_len);
					t->cin_off = 0;
				}
				if (!t->amst_readable || t->cin_len == DP_HOST_BOUNCE)
					return 0;
				bool fin;
				long r = st_amst_read(t, t->cin + t->cin_len,
				                      DP_HOST_BOUNCE - t->cin_len, &fin);
				if (r < 0)
					return -1;
				if (fin)
					t->amst_eof = true;
				t->cin_len += (uint32_t)r;
				continue;
			}
			if (rc != 0) {
				st_codec_error(t, rc, "stream header");
				return -1;
			}
			if (cb > s->codec.cache_bytes - s->cache_used) {
				st_codec_error(t, -EPROTO, "cache");
				return -1;
			}
			struct hde_params p = {.cache_bytes = cb, .batch_bytes = bb};
			t->dec = hde_dec_create(&p);
			if (t->dec == NULL) {
				st_codec_error(t, -errno, "decoder");
				return -1;
			}
			struct hde_stats st;
			hde_dec_stats(t->dec, &st);
			st_cache_take(t, st.cache_bytes);
		}
		size_t used = 0, out = 0;
		int rc = hde_dec_process(t->dec, t->cin + t->cin_off, t->cin_len, &used, t->bounce,
		                         DP_HOST_BOUNCE, &out);
		if (rc < 0) {
			st_codec_error(t, rc, "decode");
			return -1;
		}
		t->cin_off += (uint32_t)used;
		t->cin_len -= (uint32_t)used;
		if (out > 0) {
			t->codec_more = t->cin_len > 0 || hde_dec_pending(t->dec) > 0;
			return (long)out;
		}
		if (t->cin_len > 0 && used > 0)
			continue;
		if (t->cin_len == 0 && t->amst_readable && !t->amst_eof)
			continue;
		if (t->amst_eof && t->cin_len == 0) {
			if (hde_dec_pending(t->dec) != 0) {
				st_codec_error(t, -EBADMSG, "end of stream");
				return -1;
			}
			t->amst_fin = true; /* every decoded byte is out */
		}
		return 0;
	}
}

/* Sending side with HDE: host bytes -> encoder -> frames -> AMST. */
static long st_pull_hde(struct hstream *t)
{
	struct dp_host_sess *s = t->s;
	uint8_t *out = s->h->scratch;
	long moved = 0;
	t->room_blocked = false;
	t->codec_more = false;
	while (!t->enc_done) {
		if (moved >= (long)STREAM_BUDGET) {
			t->codec_more = true;
			break;
		}
		size_t room = amst_stream_room(s->c, t->id);
		if (room == 0) {
			(void)amst_stream_write(s->c, t->id, out, 1);
			t->room_blocked = true;
			break;
		}
		bool idle = false;
		if (t->cin_len == 0 && !t->host_eof) {
			ssize_t n = recv(t->fd, t->cin, DP_HOST_BOUNCE, MSG_DONTWAIT);
			if (n < 0 && host_closed_error(t, errno)) {
				st_host_closed(t);
				n = 0;
			}
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN && errno != EWOULDBLOCK) {
					st_host_error(t, errno, "read");
					return moved;
				}
				idle = true;
			} else if (n == 0) {
				t->host_eof = true;
				st_digest_final(t);
			} else {
				if (t->md != NULL)
					(void)XXH3_128bits_update(t->md, t->cin, (size_t)n);
				t->cin_off = 0;
				t->cin_len = (uint32_t)n;
				t->cin_ns = now_ns();
				t->to_amst += (uint64_t)n;
				s->stats.to_amst += (uint64_t)n;
				moved += (long)n;
			}
		}
		bool flush = t->host_eof || (idle && now_ns() - t->cin_ns >= HDE_FLUSH_NS);
		size_t used = 0, olen = 0, cap = room < DP_HOST_BOUNCE ? room : DP_HOST_BOUNCE;
		int rc = hde_enc_process(t->enc, t->cin + t->cin_off, t->cin_len, &used, out, cap,
		                         &olen, flush);
		if (rc < 0) {
			st_codec_error(t, rc, "encode");
			return moved;
		}
		t->cin_off += (uint32_t)used;
		t->cin_len -= (uint32_t)used;
		if (olen > 0) {
			long w = amst_stream_write(s->c, t->id, out, olen);
			if (w != (long)olen) {
				st_stream_gone(t, w < 0 ? w : -ENOBUFS);
				return moved;
			}
			moved += (long)olen;
		}
		if (t->host_eof && t->cin_len == 0 && hde_enc_pending(t->enc) == 0) {
			(void)amst_stream_finish(s->c, t->id);
			t->enc_done = true;
			break;
		}
		if (used == 0 && olen == 0) {
			/* Waiting for input: come back to frame what is held after
			 * HDE_FLUSH_NS, even if no more comes. */
			t->codec_more = idle && hde_enc_pending(t->enc) > 0;
			break;
		}
	}
	return moved;
}

/* The next span of the stream's in-order bytes (after @p moved bytes this
 * call): its length (*fin: it ends at the peer's FIN); 0 with none now
 * (amst_readable cleared), at the FIN (amst_fin set) or at the budget
 * (out_more set); -1 if the stream failed and was closed. */
static long st_peek(struct hstream *t, long moved, const uint8_t **p, bool *fin)
{
	*fin = false;
	if (!t->amst_readable || t->amst_fin)
		return 0;
	if (moved >= (long)STREAM_BUDGET) {
		t->out_more = true;
		return 0;
	}
	long n = amst_stream_peek(t->s->c, t->id, p, fin);
	if (n < 0) {
		st_amst_failed(t, n);
		return -1;
	}
	if (n == 0 && *fin)
		t->amst_fin = true;
	else if (n == 0)
		t->amst_readable = false;
	return n;
}

/* Where byte @p at of test stream t is in the pattern: the next TEST_PERIOD
 * bytes from there are the stream's. */
static const uint8_t *test_pattern_at(const struct hstream *t, uint64_t at)
{
	return t->s->h->pattern + (at + t->id * TEST_STREAM_SHIFT) % TEST_PERIOD;
}

/* The first @p n bytes of the span st_peek() gave were delivered: digest,
 * consume and count them. */
static void st_consumed(struct hstream *t, const uint8_t *p, size_t n)
{
	struct dp_host_sess *s = t->s;
	if (t->md != NULL && !s->sending)
		(void)XXH3_128bits_update(t->md, p, n);
	(void)amst_stream_consume(s->c, t->id, n);
	t->from_amst += n;
	s->stats.from_amst += n;
}

/* AMST -> nowhere, for a host that is gone (st_host_closed). */
static long st_drop(struct hstream *t)
{
	long moved = 0, n;
	const uint8_t *p;
	bool fin;
	while ((n = st_peek(t, moved, &p, &fin)) > 0) {
		(void)amst_stream_consume(t->s->c, t->id, (size_t)n);
		t->s->stats.dropped += (uint64_t)n;
		moved += n;
		if (fin)
			t->amst_fin = true;
	}
	if (t->amst_fin)
		t->wr_shut = true; /* nothing to shut: the connection is closed */
	return moved;
}

/* Test streams (DP_HOST_TEST): what AMST delivers must be the pattern at its
 * offset; it is checked where it lies and dropped. */
static long st_sink(struct hstream *t)
{
	struct dp_host_sess *s = t->s;
	long moved = 0, n;
	const uint8_t *p;
	bool fin;
	while ((n = st_peek(t, moved, &p, &fin)) > 0) {
		for (long done = 0; done < n;) {
			uint64_t at = t->from_amst + (uint64_t)done;
			const uint8_t *want = test_pattern_at(t, at);
			long len = n - done < TEST_PERIOD ? n - done : TEST_PERIOD;
			if (memcmp(p + done, want, (size_t)len) != 0) {
				long i = 0;
				while (p[done + i] == want[i])
					i++;
				s->stats.host_errors++;
				NC_LOG_RL(ERR,
				          "%s stream %u: byte %llu is not the test pattern; "
				          "resetting the stream",
				          s->addr_text, t->id,
				          (unsigned long long)(at + (uint64_t)i));
				st_abort(t, DP_HOST_RESET_VERIFY);
				return moved;
			}
			done += len;
		}
		st_consumed(t, p, (size_t)n);
		moved += n;
		if (fin)
			t->amst_fin = true;
	}
	if (n < 0)
		return moved;
	if (t->amst_fin && !t->wr_shut) {
		if (!s->sending)
			st_digest_final(t);
		t->wr_shut = true;
		if (!t->host_eof) {
			/* Our direction carries nothing: finish it. */
			(void)amst_stream_finish(s->c, t->id);
			t->host_eof = true;
		}
	}
	return moved;
}

/* AMST -> socket, straight from the stream's receive buffer. */
static long st_push_plain(struct hstream *t)
{
	long moved = 0, n;
	const uint8_t *p;
	bool fin;
	while ((n = st_peek(t, moved, &p, &fin)) > 0) {
		ssize_t w = send(t->fd, p, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				t->sock_full = true;
				break;
			}
			if (host_closed_error(t, errno)) {
				/* its bytes still come in: pull them (st_work) */
				st_host_closed(t);
				return moved + st_drop(t);
			}
			st_host_error(t, errno, "write");
			return moved;
		}
		st_consumed(t, p, (size_t)w);
		moved += (long)w;
		if (w < n) {
			t->sock_full = true; /* the socket took what it could */
			break;
		}
		if (fin)
			t->amst_fin = true;
	}
	return moved;
}

/* AMST -> socket: decoded bytes through the bounce buffer, or plain ones
 * straight from the stream. */
static long st_push(struct hstream *t)
{
	struct dp_host_sess *s = t->s;
	long moved = 0;
	t->out_more = false;
	t->sock_full = false;
	if (is_test(s))
		return st_sink(t);
	if (t->host_gone)
		return st_drop(t);
	if (!s->codec.on || s->sending) {
		moved = st_push_plain(t);
		if (t->state != HS_OPEN)
			return moved;
	} else {
		for (;;) {
			if (t->b_len == 0) {
				if (t->amst_fin)
					break;
				if (moved >= (long)STREAM_BUDGET) {
					t->out_more = true;
					break;
				}
				long r = st_decode(t);
				if (r < 0)
					return moved;
				if (r == 0)
					break;
				t->b_off = 0;
				t->b_len = (uint32_t)r;
				s->stats.buffered += (uint64_t)r;
				if ((uint64_t)r > s->stats.buffered_max)
					s->stats.buffered_max = (uint64_t)r;
			}
			ssize_t w = send(t->fd, t->bounce + t->b_off, t->b_len,
			                 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					break;
				st_host_error(t, errno, "write");
				return moved;
			}
			if (t->md != NULL)
				(void)XXH3_128bits_update(t->md, t->bounce + t->b_off, (size_t)w);
			t->b_off += (uint32_t)w;
			t->b_len -= (uint32_t)w;
			s->stats.buffered -= (uint64_t)w;
			t->from_amst += (uint64_t)w;
			s->stats.from_amst += (uint64_t)w;
			moved += (long)w;
		}
	}
	if (t->b_len == 0 && t->amst_fin && !s->sending)
		st_digest_final(t);
	if (t->b_len == 0 && t->amst_fin && !t->wr_shut) {
		if (shutdown(t->fd, SHUT_WR) != 0 && errno != ENOTCONN) {
			st_host_error(t, errno, "shutdown");
			return moved;
		}
		t->wr_shut = true;
	}
	return moved;
}

/* Test streams, sending side: the pattern, straight into the stream. */
static long st_generate(struct hstream *t)
{
	struct dp_host_sess *s = t->s;
	long moved = 0;
	t->room_blocked = false;
	while (!t->host_eof && moved < (long)STREAM_BUDGET) {
		/* Never 0 here: the commit of the last byte finishes the stream. */
		uint64_t left = s->addr.test_bytes ? s->addr.test_bytes - t->to_amst : UINT64_MAX;
		uint8_t *p;
		long room = amst_stream_reserve(s->c, t->id, &p);
		if (room < 0) {
			st_stream_gone(t, room);
			return moved;
		}
		if (room == 0) {
			t->room_blocked = true;
			break;
		}
		uint64_t n = (uint64_t)room < left ? (uint64_t)room : left;
		if (n > STREAM_BUDGET - (uint64_t)moved)
			n = STREAM_BUDGET - (uint64_t)moved;
		for (uint64_t done = 0; done < n;) {
			uint64_t len = n - done < TEST_PERIOD ? n - done : TEST_PERIOD;
			memcpy(p + done, test_pattern_at(t, t->to_amst + done), (size_t)len);
			done += len;
		}
		if (t->md != NULL)
			(void)XXH3_128bits_update(t->md, p, (size_t)n);
		(void)amst_stream_commit(s->c, t->id, (size_t)n);
		t->to_amst += n;
		s->stats.to_amst += n;
		moved += (long)n;
		if (n == left) {
			/* The last byte: FIN now, not once the buffer has room again. */
			(void)amst_stream_finish(s->c, t->id);
			t->host_eof = true;
			st_digest_final(t);
		}
	}
	return moved;
}

/* Socket -> AMST: read straight into the stream's send buffer, only as far as
 * it has room. */
static long st_pull(struct hstream *t)
{
	struct dp_host_sess *s = t->s;
	long moved = 0;
	if (t->enc != NULL)
		return st_pull_hde(t);
	if (is_test(s))
		return s->sending ? st_generate(t) : 0; /* a sink sends nothing back */
	t->room_blocked = false;
	while (!t->host_eof && moved < (long)STREAM_BUDGET) {
		uint8_t *p;
		long room = amst_stream_reserve(s->c, t->id, &p);
		if (room < 0) {
			st_stream_gone(t, room);
			return moved;
		}
		if (room == 0) {
			/* AMST says WRITABLE when it has room again. */
			t->room_blocked = true;
			break;
		}
		size_t want = (size_t)room < STREAM_BUDGET ? (size_t)room : STREAM_BUDGET;
		ssize_t n = recv(t->fd, p, want, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (!host_closed_error(t, errno)) {
				st_host_error(t, errno, "read");
				return moved;
			}
			st_host_closed(t);
			n = 0;
		}
		if (n == 0) {
			(void)amst_stream_finish(s->c, t->id);
			t->host_eof = true;
			if (s->sending)
				st_digest_final(t);
			break;
		}
		if (t->md != NULL && s->sending)
			(void)XXH3_128bits_update(t->md, p, (size_t)n);
		(void)amst_stream_commit(s->c, t->id, (size_t)n);
		t->to_amst += (uint64_t)n;
		s->stats.to_amst += (uint64_t)n;
		moved += (long)n;
		if ((size_t)n < want)
			break; /* drained for now; epoll says when there is more */
	}
	return moved;
}

static void st_update_interest(struct hstream *t)
{
	struct dp_host_sess *s = t->s;
	if (t->fd < 0)
		return;
	uint32_t want = 0;
	if (t->state == HS_CONNECTING) {
		want = EPOLLOUT;
	} else if (t->state == HS_OPEN) {
		if (!t->host_eof && !t->room_blocked)
			want |= EPOLLIN;
		if (t->b_len > 0 || t->out_more || t->sock_full)
			want |= EPOLLOUT;
	}
	/* With nothing to wait for, stay in the set for errors only, unless the socket
	 * hung up: that is reported for as long as it lasts. */
	bool reg = want != 0 || !t->parked;
	if (reg == t->registered && (!reg || want == t->mask))
		return;
	struct epoll_event ev = {.events = want, .data.ptr = t};
	int op = !reg ? EPOLL_CTL_DEL : t->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(s->h->epfd, op, t->fd, &ev) != 0) {
		int e = errno;
		NC_LOG_RL(ERR, "%s stream %u: epoll_ctl: %s", s->addr_text, t->id, strerror(e));
		s->stats.host_errors++;
		st_abort(t, DP_HOST_RESET_NOMEM);
		return;
	}
	t->registered = reg;
	t->mask = reg ? want : 0;
}

/* After moving bytes: close a stream finished both ways, or fix its interest. */
static void st_settle(struct hstream *t)
{
	if (t->state != HS_OPEN)
		return;
	if (t->host_eof && t->wr_shut && (t->enc == NULL || t->enc_done)) {
		st_close_fd(t, false);
		t->state = HS_CLOSED;
		return;
	}
	st_update_interest(t);
}

enum { W_PULL = 1, W_PUSH = 2 };

static long st_work(struct hstream *t, unsigned what)
{
	long moved = 0;
	if (t->state != HS_OPEN)
		return 0;
	if (what & W_PUSH)
		moved += st_push(t);
	if ((what & W_PULL) && t->state == HS_OPEN)
		moved += st_pull(t);
	st_settle(t);
	return moved;
}

/* ---- receiving side: connect streams in id order ---- */

static void st_connect_failed(struct hstream *t, int err)
{
	struct dp_host_sess *s = t->s;
	s->stats.connect_failed++;
	NC_LOG_RL(WARN, "stream %u: cannot connect to %s: %s; resetting the stream", t->id,
	          s->addr_text, strerror(err));
	st_abort(t, DP_HOST_RESET_CONNECT);
}

static long st_connected(struct hstream *t)
{
	struct dp_host_sess *s = t->s;
	t->state = HS_OPEN;
	t->amst_readable = true; /* bytes may have arrived while we waited */
	s->stats.connected++;
	if (!is_unix(s))
		tcp_nodelay(t->fd);
	return 1 + st_work(t, W_PUSH | W_PULL);
}

/*
 * A non-blocking stream socket for the session's address, and that address
 * as a sockaddr (in @p sun for UNIX). Returns the fd, or -1 with errno.
 */
static int sess_socket(const struct dp_host_sess *s, struct sockaddr_un *sun,
                       const struct sockaddr **sa, socklen_t *salen)
{
	int domain;
	if (is_unix(s)) {
		*salen = unix_sockaddr(&s->addr, sun);
		*sa = (const struct sockaddr *)sun;
		domain = AF_UNIX;
	} else {
		*sa = &s->addr.ip.sa;
		*salen = s->addr.ip_len;
		domain = s->addr.ip.sa.sa_family;
	}
	return socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

/* Is @p s's destination a socket one of its host's own sessions listens
 * on? Then a peer would have this dataplane feed its bytes into a stream of
 * its own, going elsewhere (cp_peer_policy.c keeps peers to their
 * directories; this catches a name taken there, whenever it was). */
static bool connects_to_own_listener(const struct dp_host_sess *s)
{
	struct stat st;
	if (!is_unix(s) || stat(s->addr.path, &st) != 0)
		return false;
	for (const struct dp_host_sess *o = s->h->sessions; o != NULL; o = o->next)
		if (o->sending && o->lfd >= 0 && o->l_unlink && o->l_dev == st.st_dev &&
		    o->l_ino == st.st_ino)
			return true;
	return false;
}

/* Start stream t's connect. Returns true when it completed (either way). */
static bool st_connect(struct hstream *t, long *work)
{
	struct dp_host_sess *s = t->s;
	struct sockaddr_un sun;
	const struct sockaddr *sa;
	socklen_t salen;
	if (connects_to_own_listener(s)) {
		NC_LOG_RL(WARN, "stream %u: %s is where this dataplane listens for a session",
		          t->id, s->addr_text);
		st_connect_failed(t, ELOOP);
		return true;
	}
	int fd = sess_socket(s, &sun, &sa, &salen);
	if (fd < 0) {
		st_connect_failed(t, errno);
		return true;
	}
	if (connect(fd, sa, salen) == 0) {
		t->fd = fd;
		s->stats.streams_open++;
		*work += st_connected(t);
		return true;
	}
	int e = errno;
	if (e == EINPROGRESS || e == EINTR) {
		t->fd = fd;
		s->stats.streams_open++;
		t->state = HS_CONNECTING;
		st_update_interest(t);
		return t->state != HS_CONNECTING; /* epoll_ctl may have failed */
	}
	close(fd);
	if (e == EAGAIN && is_unix(s)) {
		/* The listener's backlog is full: its turn again shortly. */
		NC_LOG_RL(NOTICE, "stream %u: %s has a full backlog; connecting again shortly",
		          t->id, s->addr_text);
		s->connect_retry_ns = now_ns() + CONNECT_RETRY_NS;
		return false;
	}
	st_connect_failed(t, e);
	return true;
}

static long connect_next(struct dp_host_sess *s)
{
	long work = 0;
	if (s->sending || s->ended || s->connect_retry_ns != 0)
		return 0;
	while (s->next_connect < AMST_MAX_STREAMS) {
		struct hstream *t = &s->st[s->next_connect];
		if (t->state == HS_FREE || t->state == HS_CONNECTING)
			return work; /* not opened yet, or its connect is under way */
		if (t->state == HS_WAITING && !st_connect(t, &work))
			return work;
		s->next_connect += 2;
	}
	return work;
}

static void st_finish_connect(struct hstream *t, long *work)
{
	int e = sock_error(t->fd);
	if (e != 0) {
		st_connect_failed(t, e);
		return;
	}
	*work += st_connected(t);
}

/* ---- streams ---- */

static struct hstream *st_get(struct dp_host_sess *s, uint32_t id)
{
	if (id >= AMST_MAX_STREAMS || s->st[id].state == HS_FREE)
		return NULL;
	return &s->st[id];
}

/* Claim the slot of stream id with its bounce buffer; false: no memory (slot is reset). */
static bool st_init(struct dp_host_sess *s, uint32_t id, enum hs_state state)
{
	struct hstream *t = &s->st[id];
	memset(t, 0, sizeof(*t));
	t->kind = EP_STREAM;
	t->s = s;
	t->id = id;
	t->fd = -1;
	t->state = state;
	if (id + 1 > s->st_hi)
		s->st_hi = id + 1;
	t->bounce = malloc(DP_HOST_BOUNCE);
	if (s->digest && t->bounce != NULL) {
		t->md = digest_new();
		if (t->md == NULL) {
			free(t->bounce);
			t->bounce = NULL;
		}
	}
	if (t->bounce != NULL && s->codec.on) {
		int rc = st_codec_init(t);
		if (rc != 0) {
			NC_LOG_RL(ERR, "%s stream %u: cannot set up HDE: %s", s->addr_text, id,
			          strerror(-rc));
			free(t->bounce);
			t->bounce = NULL;
			XXH3_freeState(t->md);
			t->md = NULL;
			st_codec_free(t);
			st_abort(t, DP_HOST_RESET_CODEC);
			return false;
		}
	}
	if (t->bounce == NULL) {
		NC_LOG_RL(ERR, "%s stream %u: no memory for its buffer", s->addr_text, id);
		st_abort(t, DP_HOST_RESET_NOMEM);
		return false;
	}
	return true;
}

static void on_stream_opened(struct dp_host_sess *s, uint32_t id)
{
	if (id >= AMST_MAX_STREAMS || s->st[id].state != HS_FREE)
		return;
	if (s->next_connect == UINT32_MAX)
		s->next_connect = id & 1; /* the peer's ids: 0, 2, 4... or 1, 3, 5... */
	if (s->sending || (id & 1) != (s->next_connect & 1)) {
		s->stats.unexpected++;
		NC_LOG_RL(WARN, "%s: the peer opened stream %u, which this side does not take",
		          s->addr_text, id);
		(void)amst_stream_reset(s->c, id, DP_HOST_RESET_UNEXPECTED);
		return;
	}
	if (is_test(s)) {
		/* A test sink: nothing to connect; check what comes. */
		if (st_init(s, id, HS_OPEN)) {
			s->st[id].amst_readable = true;
			st_work(&s->st[id], W_PUSH);
		}
		return;
	}
	st_init(s, id, HS_WAITING);
	connect_next(s);
}

/* ---- listening ---- */

static void listen_stop(struct dp_host_sess *s)
{
	if (s->lfd < 0)
		return;
	close(s->lfd); /* leaves the epoll set with it */
	s->lfd = -1;
	s->l_registered = false;
	s->stats.listening = false;
	if (s->l_unlink) {
		struct stat st;
		if (lstat(s->addr.path, &st) == 0 && st.st_dev == s->l_dev && st.st_ino == s->l_ino)
			(void)unlink(s->addr.path);
		s->l_unlink = false;
	}
}

static int listen_arm(struct dp_host_sess *s, bool on)
{
	if (s->lfd < 0 || s->l_registered == on)
		return 0;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
	if (epoll_ctl(s->h->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, s->lfd, &ev) != 0)
		return -errno;
	s->l_registered = on;
	return 0;
}

static long sess_accept(struct dp_host_sess *s)
{
	long work = 0;
	for (unsigned i = 0; i < ACCEPT_BURST && s->lfd >= 0; i++) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			if (e == EAGAIN || e == EWOULDBLOCK)
				break;
			if (e == EINTR || e == ECONNABORTED || e == EPROTO)
				continue;
			/* Out of fds or memory: the listener would stay readable, so leave
			 * the set for a while instead of spinning on it. */
			NC_LOG_RL(WARN, "%s: accept: %s; listening again in %llu ms", s->addr_text,
			          strerror(e), ACCEPT_RETRY_NS / 1000000);
			(void)listen_arm(s, false);
			s->accept_retry_ns = now_ns() + ACCEPT_RETRY_NS;
			break;
		}
		work++;
		s->stats.accepted++;
		int id = s->ended ? -ENOTCONN : amst_stream_open(s->c);
		if (id < 0 || id >= AMST_MAX_STREAMS) {
			s->stats.refused++;
			NC_LOG_RL(WARN, "%s: refusing a connection: no stream for it (%s)",
			          s->addr_text, strerror(-id));
			close(fd);
			continue;
		}
		if (!st_init(s, (uint32_t)id, HS_OPEN)) {
			s->stats.refused++;
			close(fd);
			continue;
		}
		struct hstream *t = &s->st[id];
		t->fd = fd;
		s->stats.streams_open++;
		if (!is_unix(s))
			tcp_nodelay(fd);
		work += st_work(t, W_PULL); /* it may have written already */
	}
	return work;
}

/* Is somebody listening on the UNIX socket file at path? Remove it if not. */
static int unix_replace_stale(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0; /* gone meanwhile: bind again */
		int e = errno;
		set_err(err, errlen, "cannot listen on unix:%s: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISSOCK(st.st_mode)) {
		set_err(err, errlen, "cannot listen on unix:%s: it exists and is not a socket",
		        path);
		return -EEXIST;
	}
	struct sockaddr_un sun;
	struct dp_host_addr a = {.family = DP_HOST_UNIX};
	memcpy(a.path, path, strlen(path) + 1);
	socklen_t len = unix_sockaddr(&a, &sun);
	int p = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p < 0) {
		int e = errno;
		set_err(err, errlen, "cannot listen on unix:%s: %s", path, strerror(e));
		return -e;
	}
	int rc = connect(p, (const struct sockaddr *)&sun, len);
	int e = rc == 0 ? 0 : errno;
	close(p);
	if (rc == 0 || e == EAGAIN || e == EINPROGRESS) {
		set_err(err, errlen, "cannot listen on unix:%s: somebody is listening there", path);
		return -EADDRINUSE;
	}
	if (e == ENOENT)
		return 0;
	if (e != ECONNREFUSED) {
		set_err(err, errlen, "cannot listen on unix:%s: probing it: %s", path, strerror(e));
		return -e;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		e = errno;
		set_err(err, errlen, "cannot listen on unix:%s: removing the stale socket: %s",
		        path, strerror(e));
		return -e;
	}
	NC_LOG(NOTICE, "replaced the stale socket unix:%s", path);
	return 0;
}

static int listen_open(struct dp_host_sess *s, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	const struct sockaddr *sa;
	socklen_t salen;
	int e;
	int fd = sess_socket(s, &sun, &sa, &salen);
	if (fd < 0) {
		e = errno;
		set_err(err, errlen, "cannot listen on %s: socket: %s", s->addr_text, strerror(e));
		return -e;
	}
	if (!is_unix(s)) {
		int one = 1;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	}
	int rc = bind(fd, sa, salen);
	if (rc != 0 && errno == EADDRINUSE && is_unix(s)) {
		rc = unix_replace_stale(s->addr.path, err, errlen);
		if (rc != 0) {
			close(fd);
			return rc;
		}
		rc = bind(fd, sa, salen);
	}
	if (rc != 0) {
		e = errno;
		set_err(err, errlen, "cannot listen on %s: bind: %s", s->addr_text, strerror(e));
		close(fd);
		return -e;
	}
	if (is_unix(s)) {
		struct stat st;
		if (lstat(s->addr.path, &st) == 0) {
			s->l_dev = st.st_dev;
			s->l_ino = st.st_ino;
			s->l_unlink = true;
		}
	}
	s->lfd = fd;
	s->stats.listening = true;
	rc = listen(fd, LISTEN_BACKLOG) != 0 ? -errno : listen_arm(s, true);
	if (rc != 0) {
		set_err(err, errlen, "cannot listen on %s: %s", s->addr_text, strerror(-rc));
		listen_stop(s);
		return rc;
	}
	return 0;
}

/* ---- sessions ---- */

/* The session is over (closing or closed): nothing more can be carried. */
static void sess_end(struct dp_host_sess *s, uint32_t code)
{
	if (s->ended)
		return;
	s->ended = true;
	s->end_code = code;
	s->connect_retry_ns = 0;
	s->accept_retry_ns = 0;
	listen_stop(s);
	unsigned aborted = 0;
	for (uint32_t id = 0; id < s->st_hi; id++) {
		struct hstream *t = &s->st[id];
		if (t->state == HS_WAITING || t->state == HS_CONNECTING || t->state == HS_OPEN) {
			st_end(t, 0);
			aborted += t->state == HS_RESET;
		}
	}
	if (code != 0 || aborted != 0)
		NC_LOG_RL(WARN, "%s: session ended (code %u): %u connection(s) closed abortively",
		          s->addr_text, code, aborted);
}

static struct dp_host_sess *sess_new(struct dp_host *h, struct amst_conn *c,
                                     const struct dp_host_addr *addr, bool sending)
{
	struct dp_host_sess *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->kind = EP_LISTEN;
	s->h = h;
	s->c = c;
	s->sending = sending;
	s->addr = *addr;
	if (dp_host_addr_format(addr, s->addr_text, sizeof(s->addr_text)) < 0)
		snprintf(s->addr_text, sizeof(s->addr_text), "?");
	s->lfd = -1;
	s->next_connect = UINT32_MAX;
	s->next = h->sessions;
	if (h->sessions)
		h->sessions->prev = s;
	h->sessions = s;
	return s;
}

static void sess_unlink(struct dp_host_sess *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		s->h->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
}

/* A sending session of test streams: open them all now; the first
 * dp_host_pump() starts the pattern on them (AMST holds it until the
 * handshake is done). */
static struct dp_host_sess *test_open(struct dp_host_sess *s, char *err, size_t errlen)
{
	for (uint32_t i = 0; i < s->addr.test_streams; i++) {
		int id = amst_stream_open(s->c);
		if (id < 0 || id >= AMST_MAX_STREAMS || !st_init(s, (uint32_t)id, HS_OPEN)) {
			set_err(err, errlen, "test stream %u of %u: %s", i + 1,
			        s->addr.test_streams, id < 0 ? strerror(-id) : "no memory");
			dp_host_sess_destroy(s);
			errno = id < 0 ? -id : ENOMEM;
			return NULL;
		}
	}
	NC_LOG(INFO, "test source: %s", s->addr_text);
	return s;
}

struct dp_host_sess *dp_host_listen(struct dp_host *h, struct amst_conn *c,
                                    const struct dp_host_addr *addr, char *err, size_t errlen)
{
	if (h == NULL || c == NULL || !addr_ok(addr)) {
		set_err(err, errlen, "bad arguments to listen on");
		errno = EINVAL;
		return NULL;
	}
	if (addr->family == DP_HOST_TEST && addr->test_streams == 0) {
		set_err(err, errlen,
		        "a sending session's test streams need a count: test:STREAMS[:BYTES]");
		errno = EINVAL;
		return NULL;
	}
	struct dp_host_sess *s = sess_new(h, c, addr, true);
	if (s == NULL) {
		set_err(err, errlen, "no memory for a host session");
		errno = ENOMEM;
		return NULL;
	}
	if (addr->family == DP_HOST_TEST)
		return test_open(s, err, errlen);
	int rc = listen_open(s, err, errlen);
	if (rc != 0) {
		sess_unlink(s);
		free(s);
		errno = -rc;
		return NULL;
	}
	/* Name it by where it really listens (the kernel's port for TCP port 0). */
	struct dp_host_addr la;
	if (dp_host_sess_local_addr(s, &la) == 0)
		(void)dp_host_addr_format(&la, s->addr_text, sizeof(s->addr_text));
	NC_LOG(INFO, "listening on %s", s->addr_text);
	return s;
}

struct dp_host_sess *dp_host_connect_to(struct dp_host *h, struct amst_conn *c,
                                        const struct dp_host_addr *addr)
{
	if (h == NULL || c == NULL || !addr_ok(addr) ||
	    (addr->family == DP_HOST_TCP &&
	     (addr->ip.sa.sa_family == AF_INET ? addr->ip.in4.sin_port : addr->ip.in6.sin6_port) ==
	             0)) {
		errno = EINVAL;
		return NULL;
	}
	struct dp_host_sess *s = sess_new(h, c, addr, false);
	if (s == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	return s;
}

void dp_host_event(struct dp_host_sess *s, const struct amst_event *ev)
{
	struct hstream *t;
	if (s == NULL || ev == NULL || (s->ended && ev->type != AMST_EV_CLOSED))
		return;
	switch (ev->type) {
	case AMST_EV_STREAM_OPENED:
		on_stream_opened(s, ev->stream);
		break;
	case AMST_EV_READABLE:
		t = st_get(s, ev->stream);
		if (t)
			t->amst_readable = true;
		break;
	case AMST_EV_WRITABLE:
		break; /* dp_host_pump() looks at the room of every blocked stream */
	case AMST_EV_STREAM_RESET:
		t = st_get(s, ev->stream);
		if (t) {
			st_peer_reset(t, ev->code);
			connect_next(s);
		}
		break;
	case AMST_EV_CLOSED:
		sess_end(s, ev->code);
		break;
	default:
		break;
	}
}

long dp_host_pump(struct dp_host_sess *s)
{
	if (s == NULL || s->ended)
		return 0;
	enum amst_state as = amst_conn_state(s->c);
	if (as == AMST_CLOSING || as == AMST_CLOSED) {
		sess_end(s, amst_conn_error(s->c, NULL));
		return 0;
	}
	long moved = 0;
	for (uint32_t id = 0; id < s->st_hi && !s->ended; id++) {
		struct hstream *t = &s->st[id];
		if (t->state != HS_OPEN)
			continue;
		unsigned what = 0;
		/* Only what needs no waiting: a bounce buffer with bytes, or a socket
		 * that took less than it was given, waits for EPOLLOUT. */
		if (t->amst_readable && t->b_len == 0 && !t->amst_fin && !t->sock_full)
			what |= W_PUSH;
		if (is_test(s) && s->sending && !t->host_eof && amst_stream_room(s->c, id) > 0)
			what |= W_PULL;
		if (t->room_blocked && amst_stream_room(s->c, id) > 0)
			what |= W_PULL;
		/* (A receiving stream with bytes in its bounce buffer waits for
		 * EPOLLOUT: the socket took less than it had.) */
		if (t->codec_more && (s->sending || t->b_len == 0))
			what |= s->sending ? W_PULL : W_PUSH;
		if (what)
			moved += st_work(t, what);
	}
	return moved;
}

static long st_on_epoll(struct hstream *t, uint32_t events)
{
	long work = 0;
	if (t->fd < 0)
		return 0; /* closed earlier in this batch */
	if (t->state == HS_CONNECTING) {
		st_finish_connect(t, &work);
		return 1 + work + connect_next(t->s);
	}
	if (t->state != HS_OPEN)
		return 0;
	unsigned what = 0;
	if (events & EPOLLIN)
		what |= W_PULL;
	if (events & EPOLLOUT)
		what |= W_PUSH;
	if (events & (EPOLLERR | EPOLLHUP)) {
		if (t->mask & EPOLLIN)
			what |= W_PULL;
		if (t->mask & EPOLLOUT)
			what |= W_PUSH;
		if (what == 0) {
			/* Waiting for nothing: an error ends the stream now; a hang-up
			 * waits until the stream can take its bytes or has some for it. */
			int e = sock_error(t->fd);
			if (host_closed_error(t, e)) {
				/* what it sent before it closed is still to be read */
				st_host_closed(t);
				return 1 + st_work(t, W_PUSH | W_PULL);
			} else if (e != 0) {
				st_host_error(t, e, "connection");
			} else {
				t->parked = true;
				st_update_interest(t);
			}
			return 1;
		}
	}
	return st_work(t, what);
}

long dp_host_poll(struct dp_host *h, int timeout_ms)
{
	struct epoll_event evs[EVENTS_MAX];
	long work = 0;
	int n = epoll_wait(h->epfd, evs, EVENTS_MAX, timeout_ms);
	if (n < 0) {
		if (errno != EINTR)
			return -errno;
		n = 0;
	}
	for (int i = 0; i < n; i++) {
		const enum ep_kind *k = evs[i].data.ptr;
		if (*k == EP_LISTEN)
			work += sess_accept((struct dp_host_sess *)evs[i].data.ptr);
		else
			work += st_on_epoll((struct hstream *)evs[i].data.ptr, evs[i].events);
	}
	uint64_t now = 0;
	for (struct dp_host_sess *s = h->sessions; s != NULL; s = s->next) {
		if (s->accept_retry_ns || s->connect_retry_ns) {
			if (now == 0)
				now = now_ns();
			if (s->accept_retry_ns && now >= s->accept_retry_ns) {
				s->accept_retry_ns = 0;
				if (listen_arm(s, true) != 0)
					s->accept_retry_ns = now + ACCEPT_RETRY_NS;
			}
			if (s->connect_retry_ns && now >= s->connect_retry_ns) {
				s->connect_retry_ns = 0;
				work += connect_next(s);
			}
		}
		work += dp_host_pump(s);
	}
	return work;
}

void dp_host_sess_destroy(struct dp_host_sess *s)
{
	if (s == NULL)
		return;
	listen_stop(s);
	enum amst_state as = amst_conn_state(s->c);
	bool live = !s->ended && (as == AMST_HANDSHAKE || as == AMST_ESTABLISHED);
	for (uint32_t id = 0; id < s->st_hi; id++) {
		struct hstream *t = &s->st[id];
		if (t->state == HS_FREE)
			continue;
		if (t->state == HS_WAITING || t->state == HS_CONNECTING || t->state == HS_OPEN)
			st_end(t, live ? DP_HOST_RESET_GONE : 0);
		st_free_bounce(t);
	}
	sess_unlink(s);
	free(s);
}

int dp_host_sess_local_addr(const struct dp_host_sess *s, struct dp_host_addr *out)
{
	if (!s->sending || s->lfd < 0)
		return -ENOTCONN;
	*out = s->addr;
	if (!is_unix(s)) {
		socklen_t len = sizeof(out->ip);
		if (getsockname(s->lfd, &out->ip.sa, &len) != 0)
			return -errno;
		out->ip_len = len;
	}
	return 0;
}

unsigned dp_host_sess_streams(const struct dp_host_sess *s, struct dp_host_stream_stats *out,
                              unsigned max)
{
	unsigned n = 0;
	for (uint32_t id = 0; id < s->st_hi && n < max; id++) {
		const struct hstream *t = &s->st[id];
		if (t->state == HS_FREE)
			continue;
		struct dp_host_stream_stats *o = &out[n++];
		memset(o, 0, sizeof(*o));
		o->stream = id;
		o->to_amst = t->to_amst;
		o->from_amst = t->from_amst;
		o->buffered = t->b_len;
		o->host_eof = t->host_eof;
		o->amst_fin = t->amst_fin;
		o->reset = t->reset;
		o->digest_done = t->digest_done;
		if (t->digest_done)
			memcpy(o->digest, t->digest, sizeof(o->digest));
		snprintf(o->state, sizeof(o->state), "%s", hs_names[t->state]);
	}
	return n;
}

int dp_host_sess_set_codec(struct dp_host_sess *s, const struct dp_host_codec *codec)
{
	if (s == NULL || codec == NULL || s->st_hi != 0 || (codec->on && is_test(s)))
		return -EINVAL;
	s->codec = *codec;
	s->cst.cache_limit = codec->on ? codec->cache_bytes : 0;
	return 0;
}

void dp_host_sess_set_link_rate(struct dp_host_sess *s, double bytes_per_s)
{
	for (uint32_t id = 0; s != NULL && id < s->st_hi; id++)
		if (s->st[id].enc != NULL)
			hde_enc_set_link_rate(s->st[id].enc, bytes_per_s);
}

void dp_host_sess_codec_stats(const struct dp_host_sess *s, struct dp_host_codec_stats *st)
{
	*st = s->cst;
	for (uint32_t id = 0; id < s->st_hi; id++) {
		const struct hstream *t = &s->st[id];
		if (t->enc == NULL && t->dec == NULL)
			continue;
		struct hde_stats h;
		st_codec_stats(t, &h);
		hde_stats_add(&st->hde, &h);
		st->streams++;
	}
	st->cache_bytes = s->cache_used;
}

void dp_host_sess_set_digest(struct dp_host_sess *s, bool on)
{
	s->digest = on;
	/* Test streams open with their session: digest those that moved nothing yet. */
	for (uint32_t id = 0; on && id < s->st_hi; id++) {
		struct hstream *t = &s->st[id];
		if (t->state != HS_OPEN || t->md != NULL || t->to_amst || t->from_amst)
			continue;
		t->md = digest_new();
	}
}

void dp_host_sess_get_stats(const struct dp_host_sess *s, struct dp_host_sess_stats *st)
{
	*st = s->stats;
	st->listening = s->lfd >= 0;
	st->ended = s->ended;
	st->end_code = s->end_code;
}

/* ---- the host ---- */

void dp_host_test_pattern(uint8_t *buf, size_t len)
{
	/* Byte i of the period: xorshift64* from a fixed seed, one byte per step. */
	uint64_t x = 0x4E6F766143726F6Eull; /* "NovaCron" */
	for (size_t i = 0; i < len; i++) {
		if (i % TEST_PERIOD == 0)
			x = 0x4E6F766143726F6Eull;
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		buf[i] = (uint8_t)((x * 0x2545F4914F6CDD1Dull) >> 56);
	}
}

struct dp_host *dp_host_create(void)
{
	struct dp_host *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	h->scratch = malloc(DP_HOST_BOUNCE);
	h->pattern = malloc(2 * TEST_PERIOD);
	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (h->scratch == NULL || h->pattern == NULL || h->epfd < 0) {
		int e = h->epfd < 0 ? errno : ENOMEM;
		if (h->epfd >= 0)
			close(h->epfd);
		free(h->scratch);
		free(h->pattern);
		free(h);
		errno = e;
		return NULL;
	}
	dp_host_test_pattern(h->pattern, 2 * TEST_PERIOD);
	return h;
}

void dp_host_destroy(struct dp_host *h)
{
	if (h == NULL)
		return;
	while (h->sessions)
		dp_host_sess_destroy(h->sessions);
	close(h->epfd);
	free(h->scratch);
	free(h->pattern);
	free(h);
}

uint64_t dp_host_next_ns(const struct dp_host *h)
{
	uint64_t t = UINT64_MAX;
	for (const struct dp_host_sess *s = h->sessions; s != NULL; s = s->next) {
		if (s->accept_retry_ns && s->accept_retry_ns < t)
			t = s->accept_retry_ns;
		if (s->connect_retry_ns && s->connect_retry_ns < t)
			t = s->connect_retry_ns;
		if (s->ended || !s->sending || !s->codec.on)
			continue;
		for (uint32_t id = 0; id < s->st_hi; id++) {
			const struct hstream *st = &s->st[id];
			if (st->state == HS_OPEN && st->enc != NULL && st->codec_more &&
			    st->cin_ns + HDE_FLUSH_NS < t)
				t = st->cin_ns + HDE_FLUSH_NS;
		}
	}
	return t;
}

int dp_host_fd(const struct dp_host *h)
{
	return h->epfd;
}
