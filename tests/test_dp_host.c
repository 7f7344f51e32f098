/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_dp_host: the host-side ends of AMST sessions with real sockets. Two
 * dp_hosts (a sending and a receiving "appliance") are joined by two
 * amst_conns over an in-memory lossless link (each side's output goes
 * straight into the other's input, on the real monotonic clock). The test
 * plays both QEMUs with non-blocking sockets in a temporary directory (or
 * on 127.0.0.1): a source that connects to the sending side's listener and a
 * destination listener the receiving side connects to. Contents come from a
 * seeded generator and are checked byte by byte as they arrive.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include <xxhash.h>

#include "amst_conn.h"
#include "dp_host.h"

#define MAX_EP   8
#define MIB      (1024ull * 1024)
#define STEP_MAX (1u << 20) /* bytes an endpoint moves per step and direction */

static const uint8_t psk[32] = "0123456789abcdef0123456789abcdef";

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- contents: byte i of the stream with seed k can be recomputed anywhere ---- */

static uint64_t word(uint64_t seed, uint64_t w)
{
	uint64_t x = w * 0x9E3779B97F4A7C15ull + seed * 0xBF58476D1CE4E5B9ull;
	x ^= x >> 31;
	x *= 0x94D049BB133111EBull;
	x ^= x >> 29;
	return x;
}

static void content(uint64_t seed, uint64_t off, uint8_t *buf, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint64_t pos = off + i;
		uint64_t x = word(seed, pos / 8);
		for (unsigned b = (unsigned)(pos % 8); b < 8 && i < n; b++, i++)
			buf[i] = (uint8_t)(x >> (8 * b));
	}
}

/* ---- the two QEMUs' ends: non-blocking sockets driven step by step ---- */

struct ep {
	int fd;
	uint64_t seed; /* of what it sends */
	uint64_t to_send, sent;
	bool may_send;
	bool shut_when_sent, shut;
	bool blocked;   /* the last send found the socket full */
	uint64_t rseed; /* of what it expects */
	uint64_t received, mismatches;
	bool read_paused;
	bool eof;
	int err; /* first error of a read or a write */
};

static uint8_t sbuf[1 << 16], rbuf[1 << 16], xbuf[1 << 16];

static void ep_init(struct ep *e, int fd, uint64_t seed, uint64_t rseed)
{
	memset(e, 0, sizeof(*e));
	e->fd = fd;
	e->seed = seed;
	e->rseed = rseed;
	e->may_send = true;
	e->shut_when_sent = true;
}

static bool ep_step(struct ep *e)
{
	bool prog = false;
	if (e->fd < 0)
		return false;
	uint64_t moved = 0;
	while (e->may_send && !e->err && e->sent < e->to_send && moved < STEP_MAX) {
		size_t n = (size_t)(e->to_send - e->sent);
		if (n > sizeof(sbuf))
			n = sizeof(sbuf);
		content(e->seed, e->sent, sbuf, n);
		ssize_t w = send(e->fd, sbuf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				e->blocked = true;
			} else {
				e->err = errno;
				prog = true;
			}
			break;
		}
		e->blocked = false;
		e->sent += (uint64_t)w;
		moved += (uint64_t)w;
		prog = true;
	}
	if (e->may_send && !e->err && e->to_send && e->sent == e->to_send && e->shut_when_sent &&
	    !e->shut) {
		shutdown(e->fd, SHUT_WR);
		e->shut = true;
		prog = true;
	}
	moved = 0;
	while (!e->read_paused && !e->eof && !e->err && moved < STEP_MAX) {
		ssize_t r = recv(e->fd, rbuf, sizeof(rbuf), MSG_DONTWAIT);
		if (r < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				e->err = errno;
				prog = true;
			}
			break;
		}
		prog = true;
		if (r == 0) {
			e->eof = true;
			break;
		}
		content(e->rseed, e->received, xbuf, (size_t)r);
		if (memcmp(rbuf, xbuf, (size_t)r) != 0)
			e->mismatches++;
		e->received += (uint64_t)r;
		moved += (uint64_t)r;
	}
	return prog;
}

static bool ep_ended(const struct ep *e)
{
	return e->eof || e->err;
}

static void ep_close(struct ep *e)
{
	if (e->fd >= 0)
		close(e->fd);
	e->fd = -1;
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	assert_true(fl >= 0);
	assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* A blocking connect (loopback and UNIX complete without an accept), then non-blocking. */
static int connect_to(const struct dp_host_addr *a)
{
	int fd;
	if (a->family == DP_HOST_UNIX) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", a->path);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		assert_true(fd >= 0);
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
			int e = errno;
			close(fd);
			return -e;
		}
	} else {
		fd = socket(a->ip.sa.sa_family, SOCK_STREAM, 0);
		assert_true(fd >= 0);
		if (connect(fd, &a->ip.sa, a->ip_len) != 0) {
			int e = errno;
			close(fd);
			return -e;
		}
	}
	set_nonblock(fd);
	return fd;
}

static int listen_unix(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(fd, 16), 0);
	return fd;
}

/* Listen on 127.0.0.1, an ephemeral port; returns the fd and the address as text. */
static int listen_tcp(char *text, size_t len)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 16), 0);
	socklen_t sl = sizeof(sin);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	snprintf(text, len, "tcp:127.0.0.1:%u", ntohs(sin.sin_port));
	return fd;
}

/* ---- the rig: two appliances, one session, the QEMUs' ends ---- */

struct rig {
	char dir[64];
	char src_path[128], dst_path[128];
	struct amst_conn_cfg cfg_s, cfg_r;
	struct dp_host *hs, *hr; /* sending, receiving appliance */
	struct amst_conn *cs, *cr;
	struct dp_host_sess *ss, *sr;
	struct dp_host_addr src, dst;
	bool closed_s, closed_r;
	uint32_t code_s, code_r;
	int dst_lfd; /* the destination QEMU's listener; -1: nobody listens */
	struct ep cl[MAX_EP];
	unsigned ncl;
	struct ep de[MAX_EP];
	unsigned nde;
	uint64_t de_send; /* what each accepted destination connection sends back */
	bool de_may_send;
	bool check_bounds;
	bool digest;                         /* both sessions digest their streams */
	const struct dp_host_codec *codec_r; /* the receiving session's HDE (NULL: none) */
	uint64_t max_unacked, max_room, max_buffered;
	uint64_t steps;
};

/* Session parameters a test may change before rig_init (reset before every test). */
static uint32_t opt_stream_buf;
static uint16_t opt_max_streams;

/* The current test's temporary directory, removed even when the test fails. */
static char tmp_dir[64];

static void make_tmp_dir(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/dp_host_test.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(tmp_dir, sizeof(tmp_dir), "%s", dir);
}

static int reset_opts(void **state)
{
	(void)state;
	opt_stream_buf = 1u << 20;
	opt_max_streams = 8;
	tmp_dir[0] = '\0';
	return 0;
}

static int remove_tmp_dir(void **state)
{
	(void)state;
	static const char *const names[] = {"src.sock", "dst.sock", "mig.sock"};
	char path[128];
	if (tmp_dir[0] == '\0')
		return 0;
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmp_dir, names[i]);
		unlink(path);
	}
	rmdir(tmp_dir);
	tmp_dir[0] = '\0';
	return 0;
}

static struct amst_conn_cfg cfg(bool client)
{
	struct amst_conn_cfg c = {
	        .client = client,
	        .local_cid = client ? 0x1111 : 0x2222,
	        .psk = psk,
	        .psk_len = sizeof(psk),
	        .seal = true,
	        .max_payload = 1472,
	        .stream_buf = opt_stream_buf,
	        .session_window = 8u << 20,
	        .max_streams = opt_max_streams,
	        .idle_timeout_ms = 60000, /* real time: a slow sanitizer run must not end it */
	        .handshake_timeout_ms = 20000,
	        .seed = 7,
	};
	return c;
}

/* src/dst: "unix" (paths in the temp dir) or "tcp" (127.0.0.1, ephemeral ports);
 * !dst_listens: nobody listens at the destination address. */
static void rig_init(struct rig *r, const char *src_kind, const char *dst_kind, bool dst_listens)
{
	char err[256], text[160];
	memset(r, 0, sizeof(*r));
	make_tmp_dir(r->dir, sizeof(r->dir));
	snprintf(r->src_path, sizeof(r->src_path), "%s/src.sock", r->dir);
	snprintf(r->dst_path, sizeof(r->dst_path), "%s/dst.sock", r->dir);
	r->dst_lfd = -1;
	r->cfg_s = cfg(true);
	r->cfg_r = cfg(false);
	r->hs = dp_host_create();
	r->hr = dp_host_create();
	assert_non_null(r->hs);
	assert_non_null(r->hr);
	r->cs = amst_conn_client(&r->cfg_s, now_ns());
	assert_non_null(r->cs);

	if (strcmp(src_kind, "unix") == 0)
		snprintf(text, sizeof(text), "unix:%s", r->src_path);
	else if (strncmp(src_kind, "test:", 5) == 0)
		snprintf(text, sizeof(text), "%s", src_kind); /* test streams */
	else
		snprintf(text, sizeof(text), "tcp:127.0.0.1:0");
	assert_int_equal(dp_host_addr_parse(text, &r->src, err, sizeof(err)), 0);
	r->ss = dp_host_listen(r->hs, r->cs, &r->src, err, sizeof(err));
	if (r->ss == NULL)
		fail_msg("listen %s: %s", text, err);
	if (r->src.family != DP_HOST_TEST)
		assert_int_equal(dp_host_sess_local_addr(r->ss, &r->src), 0); /* the real port */

	if (strncmp(dst_kind, "test:", 5) == 0) {
		snprintf(text, sizeof(text), "%s", dst_kind);
	} else if (strcmp(dst_kind, "unix") == 0) {
		snprintf(text, sizeof(text), "unix:%s", r->dst_path);
		if (dst_listens)
			r->dst_lfd = listen_unix(r->dst_path);
	} else {
		int fd = listen_tcp(text, sizeof(text));
		if (dst_listens)
			r->dst_lfd = fd;
		else
			close(fd); /* a port nobody listens on now */
	}
	assert_int_equal(dp_host_addr_parse(text, &r->dst, err, sizeof(err)), 0);
}

static void rig_fini(struct rig *r)
{
	for (unsigned i = 0; i < r->ncl; i++)
		ep_close(&r->cl[i]);
	for (unsigned i = 0; i < r->nde; i++)
		ep_close(&r->de[i]);
	if (r->dst_lfd >= 0)
		close(r->dst_lfd);
	dp_host_sess_destroy(r->ss);
	dp_host_sess_destroy(r->sr);
	dp_host_destroy(r->hs);
	dp_host_destroy(r->hr);
	amst_conn_destroy(r->cs);
	amst_conn_destroy(r->cr);
	unlink(r->src_path);
	unlink(r->dst_path);
	assert_int_equal(rmdir(r->dir), 0); /* nothing left behind */
}

/* A source QEMU connection: connects now, sends @p bytes of content @p seed. The
 * destination's k-th accepted connection expects seed k + 1 (the k-th source's). */
static struct ep *rig_client(struct rig *r, uint64_t seed, uint64_t bytes)
{
	assert_true(r->ncl < MAX_EP);
	int fd = connect_to(&r->src);
	assert_true(fd >= 0);
	struct ep *e = &r->cl[r->ncl++];
	ep_init(e, fd, seed, 1000 + seed);
	e->to_send = bytes;
	return e;
}

static void feed_events(struct amst_conn *c, struct dp_host_sess *s, bool *closed, uint32_t *code)
{
	struct amst_event ev;
	while (amst_conn_event(c, &ev) == 1) {
		if (s)
			dp_host_event(s, &ev);
		if (ev.type == AMST_EV_CLOSED) {
			*closed = true;
			*code = ev.code;
		}
	}
}

static struct dp_host_stream_stats stream_of(struct dp_host_sess *s, uint32_t id, bool *found)
{
	struct dp_host_stream_stats st[AMST_MAX_STREAMS];
	struct dp_host_stream_stats none = {0};
	unsigned n = s ? dp_host_sess_streams(s, st, AMST_MAX_STREAMS) : 0;
	for (unsigned i = 0; i < n; i++) {
		if (st[i].stream == id) {
			*found = true;
			return st[i];
		}
	}
	*found = false;
	return none;
}

static void check_bounds(struct rig *r)
{
	struct dp_host_sess_stats st;
	for (uint32_t id = 0; id < 2 * r->ncl; id += 2) {
		uint64_t u = amst_stream_unacked(r->cs, id), room = amst_stream_room(r->cs, id);
		assert_true(u <= r->cfg_s.stream_buf);
		assert_true(room <= r->cfg_s.stream_buf);
		if (u > r->max_unacked)
			r->max_unacked = u;
	}
	struct dp_host_sess *ss[2] = {r->ss, r->sr};
	for (int i = 0; i < 2; i++) {
		if (ss[i] == NULL)
			continue;
		dp_host_sess_get_stats(ss[i], &st);
		assert_true(st.buffered_max <= DP_HOST_BOUNCE);
		assert_true(st.buffered <= (uint64_t)DP_HOST_BOUNCE * (r->ncl ? r->ncl : 1));
		if (st.buffered_max > r->max_buffered)
			r->max_buffered = st.buffered_max;
		struct dp_host_stream_stats sts[MAX_EP];
		unsigned n = dp_host_sess_streams(ss[i], sts, MAX_EP);
		for (unsigned k = 0; k < n; k++)
			assert_true(sts[k].buffered <= DP_HOST_BOUNCE);
	}
}

/* One turn of everything; returns whether anything happened. */
static bool rig_step(struct rig *r)
{
	static uint8_t pkt[2048];
	bool prog = false;
	long w = dp_host_poll(r->hs, 0);
	assert_true(w >= 0);
	prog |= w > 0;
	w = dp_host_poll(r->hr, 0);
	assert_true(w >= 0);
	prog |= w > 0;

	/* The lossless link, both ways. */
	uint64_t now = now_ns();
	size_t len;
	while ((len = amst_conn_output(r->cs, pkt, sizeof(pkt), now)) > 0) {
		prog = true;
		if (r->cr == NULL) {
			enum amst_drop why;
			r->cr = amst_conn_accept(&r->cfg_r, pkt, len, now, &why);
			assert_non_null(r->cr);
			r->sr = dp_host_connect_to(r->hr, r->cr, &r->dst);
			assert_non_null(r->sr);
			dp_host_sess_set_digest(r->sr, r->digest);
			if (r->codec_r)
				assert_int_equal(dp_host_sess_set_codec(r->sr, r->codec_r), 0);
		} else {
			amst_conn_input(r->cr, pkt, len, now);
		}
	}
	if (r->cr) {
		while ((len = amst_conn_output(r->cr, pkt, sizeof(pkt), now)) > 0) {
			prog = true;
			amst_conn_input(r->cs, pkt, len, now);
		}
	}
	feed_events(r->cs, r->ss, &r->closed_s, &r->code_s);
	if (r->cr)
		feed_events(r->cr, r->sr, &r->closed_r, &r->code_r);
	if (r->ss)
		prog |= dp_host_pump(r->ss) > 0;
	if (r->sr)
		prog |= dp_host_pump(r->sr) > 0;

	/* The QEMUs. */
	if (r->dst_lfd >= 0) {
		int fd;
		while (r->nde < MAX_EP && (fd = accept(r->dst_lfd, NULL, NULL)) >= 0) {
			set_nonblock(fd);
			struct ep *e = &r->de[r->nde];
			/* The k-th accepted connection must carry the k-th source's bytes. */
			ep_init(e, fd, 1000 + r->nde + 1, r->nde + 1);
			e->to_send = r->de_send;
			e->may_send = r->de_may_send;
			r->nde++;
			prog = true;
		}
	}
	for (unsigned i = 0; i < r->ncl; i++)
		prog |= ep_step(&r->cl[i]);
	for (unsigned i = 0; i < r->nde; i++)
		prog |= ep_step(&r->de[i]);
	if (r->check_bounds)
		check_bounds(r);
	r->steps++;
	if (!prog) {
		/* Idle: wait on the appliances' epoll fds and the QEMUs' sockets, as a
		 * worker would, for at most 1 ms (AMST's timers run on the clock). */
		struct pollfd p[2 + 2 * MAX_EP + 1];
		nfds_t n = 0;
		p[n++] = (struct pollfd){.fd = dp_host_fd(r->hs), .events = POLLIN};
		p[n++] = (struct pollfd){.fd = dp_host_fd(r->hr), .events = POLLIN};
		if (r->dst_lfd >= 0)
			p[n++] = (struct pollfd){.fd = r->dst_lfd, .events = POLLIN};
		for (unsigned i = 0; i < r->ncl; i++)
			if (r->cl[i].fd >= 0 && !r->cl[i].read_paused)
				p[n++] = (struct pollfd){.fd = r->cl[i].fd, .events = POLLIN};
		for (unsigned i = 0; i < r->nde; i++)
			if (r->de[i].fd >= 0 && !r->de[i].read_paused)
				p[n++] = (struct pollfd){.fd = r->de[i].fd, .events = POLLIN};
		(void)poll(p, n, 1);
	}
	return prog;
}

static void rig_dump(struct rig *r)
{
	struct dp_host_sess *ss[2] = {r->ss, r->sr};
	for (int i = 0; i < 2; i++) {
		if (ss[i] == NULL)
			continue;
		struct dp_host_sess_stats st;
		dp_host_sess_get_stats(ss[i], &st);
		print_message(
		        "%s: accepted %llu refused %llu connected %llu connect_failed %llu "
		        "host_errors %llu peer_resets %llu to_amst %llu from_amst %llu open "
		        "%u ended %d code %u\n",
		        i ? "recv" : "send", (unsigned long long)st.accepted,
		        (unsigned long long)st.refused, (unsigned long long)st.connected,
		        (unsigned long long)st.connect_failed, (unsigned long long)st.host_errors,
		        (unsigned long long)st.peer_resets, (unsigned long long)st.to_amst,
		        (unsigned long long)st.from_amst, st.streams_open, st.ended, st.end_code);
		struct dp_host_stream_stats sts[MAX_EP];
		unsigned n = dp_host_sess_streams(ss[i], sts, MAX_EP);
		for (unsigned k = 0; k < n; k++)
			print_message("  stream %u %s to %llu from %llu buf %u eof %d fin %d\n",
			              sts[k].stream, sts[k].state,
			              (unsigned long long)sts[k].to_amst,
			              (unsigned long long)sts[k].from_amst, sts[k].buffered,
			              sts[k].host_eof, sts[k].amst_fin);
	}
	for (unsigned i = 0; i < r->ncl; i++)
		print_message("client %u: sent %llu recv %llu eof %d err %d\n", i,
		              (unsigned long long)r->cl[i].sent,
		              (unsigned long long)r->cl[i].received, r->cl[i].eof, r->cl[i].err);
	for (unsigned i = 0; i < r->nde; i++)
		print_message("dest %u: sent %llu recv %llu eof %d err %d\n", i,
		              (unsigned long long)r->de[i].sent,
		              (unsigned long long)r->de[i].received, r->de[i].eof, r->de[i].err);
}

/* Step until cond holds; fail (with the rig's state) after secs of real time. */
#define RUN_UNTIL(r, cond, secs)                                                                   \
	do {                                                                                       \
		uint64_t dl_ = now_ns() + (uint64_t)(secs)*1000000000ull;                          \
		while (!(cond)) {                                                                  \
			if (now_ns() > dl_) {                                                      \
				rig_dump(r);                                                       \
				fail_msg("timed out waiting for: %s", #cond);                      \
			}                                                                          \
			rig_step(r);                                                               \
		}                                                                                  \
	} while (0)

static void run_for(struct rig *r, uint64_t ms)
{
	uint64_t end = now_ns() + ms * 1000000ull;
	while (now_ns() < end)
		rig_step(r);
}

static struct dp_host_sess_stats sess_stats(struct dp_host_sess *s)
{
	struct dp_host_sess_stats st;
	dp_host_sess_get_stats(s, &st);
	return st;
}

/* ---- tests ---- */

/* (1) and (7): 32 MiB one way through one stream, then 32 MiB back. */
static void both_ways(const char *kind)
{
	static struct rig r;
	const uint64_t n = 32 * MIB;
	rig_init(&r, kind, kind, true);
	r.de_send = n;
	r.de_may_send = false; /* the destination answers once it has everything */
	struct ep *c = rig_client(&r, 1, n);
	RUN_UNTIL(&r, r.nde == 1 && ep_ended(&r.de[0]), 60);
	struct ep *d = &r.de[0];
	assert_int_equal(d->err, 0);
	assert_true(d->eof);
	assert_int_equal(d->received, n);
	assert_int_equal(d->mismatches, 0);
	assert_false(ep_ended(c)); /* the way back is still open */

	d->may_send = true;
	RUN_UNTIL(&r, ep_ended(c), 60);
	assert_int_equal(c->err, 0);
	assert_int_equal(c->received, n);
	assert_int_equal(c->mismatches, 0);

	/* Both directions done: both appliances closed their sockets normally. */
	RUN_UNTIL(&r, sess_stats(r.ss).streams_open == 0 && sess_stats(r.sr).streams_open == 0, 10);
	bool found;
	struct dp_host_stream_stats s0 = stream_of(r.ss, 0, &found);
	assert_true(found);
	assert_string_equal(s0.state, "closed");
	assert_int_equal(s0.to_amst, n);
	assert_int_equal(s0.from_amst, n);
	assert_true(s0.host_eof && s0.amst_fin && !s0.reset);
	assert_false(s0.digest_done); /* digests were not asked for */
	struct dp_host_stream_stats s1 = stream_of(r.sr, 0, &found);
	assert_true(found);
	assert_string_equal(s1.state, "closed");
	assert_int_equal(s1.to_amst, n);
	assert_int_equal(s1.from_amst, n);
	struct dp_host_sess_stats st = sess_stats(r.ss);
	assert_int_equal(st.accepted, 1);
	assert_int_equal(st.host_errors + st.peer_resets + st.refused, 0);
	assert_int_equal(st.buffered, 0);
	assert_true(st.buffered_max <= DP_HOST_BOUNCE);
	st = sess_stats(r.sr);
	assert_int_equal(st.connected, 1);
	assert_int_equal(st.connect_failed + st.host_errors + st.peer_resets, 0);
	assert_true(st.buffered_max <= DP_HOST_BOUNCE);
	rig_fini(&r);
}

static void test_unix_both_ways(void **state)
{
	(void)state;
	both_ways("unix");
}

static void test_tcp_both_ways(void **state)
{
	(void)state;
	both_ways("tcp");
}

/* (2) Four connections like multifd: the destination accepts them in the order the
 * source made them, even when their first bytes reach the receiving side in another
 * order. */
static void test_multifd_order(void **state)
{
	(void)state;
	static struct rig r;
	const uint64_t n = 2 * MIB;
	rig_init(&r, "unix", "unix", true);
	for (unsigned k = 0; k < 4; k++)
		rig_client(&r, k + 1, n)->may_send = false;
	RUN_UNTIL(&r, sess_stats(r.ss).accepted == 4, 10);
	/* Nothing written yet: the peer knows of no stream, nobody connects. */
	run_for(&r, 50);
	assert_int_equal(r.nde, 0);

	bool found;
	r.cl[3].may_send = true; /* stream 6 speaks first */
	RUN_UNTIL(&r, (stream_of(r.sr, 6, &found), found), 10);
	r.cl[1].may_send = true; /* then stream 2 */
	RUN_UNTIL(&r, (stream_of(r.sr, 2, &found), found), 10);
	run_for(&r, 50);
	assert_int_equal(r.nde, 0); /* both wait for stream 0 */
	assert_string_equal(stream_of(r.sr, 6, &found).state, "waiting");
	assert_string_equal(stream_of(r.sr, 2, &found).state, "waiting");

	r.cl[0].may_send = true; /* stream 0: it and stream 2 connect, 6 waits for 4 */
	RUN_UNTIL(&r, r.nde == 2, 10);
	run_for(&r, 50);
	assert_int_equal(r.nde, 2);
	assert_string_equal(stream_of(r.sr, 6, &found).state, "waiting");

	r.cl[2].may_send = true;
	RUN_UNTIL(&r,
	          r.nde == 4 && ep_ended(&r.de[0]) && ep_ended(&r.de[1]) && ep_ended(&r.de[2]) &&
	                  ep_ended(&r.de[3]),
	          30);
	for (unsigned k = 0; k < 4; k++) {
		/* Accepted k-th, carries the k-th source connection's content. */
		assert_int_equal(r.de[k].err, 0);
		assert_int_equal(r.de[k].received, n);
		assert_int_equal(r.de[k].mismatches, 0);
	}
	assert_int_equal(sess_stats(r.sr).connected, 4);
	rig_fini(&r);
}

/* XXH3-128 of @p len bytes at @p p in canonical form, in one call: the
 * dataplane digests the same bytes in whatever pieces the sockets give. */
static void digest_of(const uint8_t *p, size_t len, uint8_t out[NC_DIGEST_LEN])
{
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits(p, len));
	memcpy(out, c.digest, NC_DIGEST_LEN);
}

/* The digest of @p n bytes of content @p seed. */
static void content_digest(uint64_t seed, uint64_t n, uint8_t out[NC_DIGEST_LEN])
{
	uint8_t *all = malloc(n ? n : 1);
	assert_non_null(all);
	content(seed, 0, all, (size_t)n);
	digest_of(all, (size_t)n, out);
	free(all);
}

/* Stream digests (what a migration compares at both appliances): the sending
 * side's covers what it read from each source connection, the receiving
 * side's what it wrote to each destination connection; both equal the
 * XXH3-128 of the content, per stream, once the stream is finished. */
static void test_digests(void **state)
{
	(void)state;
	static struct rig r;
	const uint64_t n[3] = {3 * MIB + 17, 1 * MIB, 5}; /* odd sizes: partial blocks */
	/* The canonical form is what xxh128sum prints (`printf abc | xxh128sum`). */
	const uint8_t abc[NC_DIGEST_LEN] = {0x06, 0xb0, 0x5a, 0xb6, 0x73, 0x3a, 0x61, 0x85,
	                                    0x78, 0xaf, 0x5f, 0x94, 0x89, 0x2f, 0x39, 0x50};
	uint8_t got[NC_DIGEST_LEN];
	digest_of((const uint8_t *)"abc", 3, got);
	assert_memory_equal(got, abc, NC_DIGEST_LEN);
	rig_init(&r, "unix", "unix", true);
	r.digest = true;
	dp_host_sess_set_digest(r.ss, true);
	for (unsigned k = 0; k < 3; k++)
		rig_client(&r, k + 1, n[k]);
	RUN_UNTIL(&r, r.nde == 3 && ep_ended(&r.de[0]) && ep_ended(&r.de[1]) && ep_ended(&r.de[2]),
	          30);
	bool found;
	for (unsigned k = 0; k < 3; k++) {
		uint8_t want[NC_DIGEST_LEN];
		content_digest(k + 1, n[k], want);
		RUN_UNTIL(&r, stream_of(r.sr, 2 * k, &found).digest_done, 10);
		struct dp_host_stream_stats a = stream_of(r.ss, 2 * k, &found);
		assert_true(found);
		struct dp_host_stream_stats b = stream_of(r.sr, 2 * k, &found);
		assert_true(found);
		assert_true(a.digest_done);
		assert_memory_equal(a.digest, want, NC_DIGEST_LEN);
		assert_memory_equal(b.digest, want, NC_DIGEST_LEN);
		assert_int_equal(r.de[k].mismatches, 0);
	}
	rig_fini(&r);
}

/* (2c) HDE between the host connections and AMST: byte-exact both ways of
 * the codec, digests of the raw bytes, counters, the cache within its bound. */
static void test_hde_codec(void **state)
{
	(void)state;
	static struct rig r;
	const uint64_t n[2] = {3 * MIB + 17, 1 * MIB + 4095};
	const struct dp_host_codec cs = {
	        .on = true, .p = {.mode = HDE_MODE_ADAPTIVE}, .cache_bytes = 8 * MIB, .streams = 2};
	const struct dp_host_codec cr = {.on = true, .cache_bytes = 8 * MIB};
	rig_init(&r, "unix", "unix", true);
	r.digest = true;
	r.codec_r = &cr;
	dp_host_sess_set_digest(r.ss, true);
	assert_int_equal(dp_host_sess_set_codec(r.ss, &cs), 0);
	for (unsigned k = 0; k < 2; k++)
		rig_client(&r, k + 1, n[k]);
	RUN_UNTIL(&r, r.nde == 2 && ep_ended(&r.de[0]) && ep_ended(&r.de[1]), 30);
	bool found;
	for (unsigned k = 0; k < 2; k++) {
		assert_int_equal(r.de[k].received, n[k]);
		assert_int_equal(r.de[k].mismatches, 0);
		uint8_t want[NC_DIGEST_LEN];
		content_digest(k + 1, n[k], want);
		RUN_UNTIL(&r, stream_of(r.sr, 2 * k, &found).digest_done, 10);
		assert_memory_equal(stream_of(r.ss, 2 * k, &found).digest, want, NC_DIGEST_LEN);
		assert_memory_equal(stream_of(r.sr, 2 * k, &found).digest, want, NC_DIGEST_LEN);
	}
	struct dp_host_codec_stats a, b;
	dp_host_sess_codec_stats(r.ss, &a);
	dp_host_sess_codec_stats(r.sr, &b);
	assert_int_equal(a.streams, 2);
	assert_int_equal(b.streams, 2);
	assert_int_equal(a.hde.bytes_in, n[0] + n[1]);  /* encoder: stream bytes in */
	assert_int_equal(b.hde.bytes_out, n[0] + n[1]); /* decoder: stream bytes out */
	assert_int_equal(a.hde.bytes_out, b.hde.bytes_in);
	assert_int_equal(a.errors + b.errors, 0);
	assert_true(a.cache_peak > 0 && a.cache_peak <= cs.cache_bytes);
	assert_true(b.cache_peak > 0 && b.cache_peak <= cr.cache_bytes);
	rig_fini(&r);
}

/* (2d) A stream whose encoder's cache exceeds the receiver's bound is reset,
 * counted, and nothing of it is delivered. */
static void test_hde_cache_refused(void **state)
{
	(void)state;
	static struct rig r;
	const struct dp_host_codec cs = {.on = true, .cache_bytes = 8 * MIB, .streams = 1};
	const struct dp_host_codec cr = {.on = true, .cache_bytes = 1 * MIB};
	rig_init(&r, "unix", "unix", true);
	r.codec_r = &cr;
	assert_int_equal(dp_host_sess_set_codec(r.ss, &cs), 0);
	struct ep *c = rig_client(&r, 1, 2 * MIB);
	bool found;
	RUN_UNTIL(&r, strcmp(stream_of(r.sr, 0, &found).state, "reset") == 0, 20);
	RUN_UNTIL(&r, c->err != 0 || c->eof, 20);
	struct dp_host_codec_stats b;
	dp_host_sess_codec_stats(r.sr, &b);
	assert_int_equal(b.errors, 1);
	for (unsigned k = 0; k < r.nde; k++)
		assert_int_equal(r.de[k].received, 0);
	rig_fini(&r);
}

/* (3) Backpressure: a destination that stops reading stalls the source's writes;
 * nothing buffers without bound on the way; then everything arrives. */
static void test_backpressure(void **state)
{
	(void)state;
	static struct rig r;
	const uint64_t n = 24 * MIB;
	rig_init(&r, "unix", "unix", true);
	r.check_bounds = true;
	struct ep *c = rig_client(&r, 1, n);
	RUN_UNTIL(&r, r.nde == 1, 10);
	struct ep *d = &r.de[0];
	d->read_paused = true;
	/* Stalled: the source's socket is full and nothing has moved for 300 ms. */
	uint64_t give_up = now_ns() + 30000000000ull;
	for (;;) {
		uint64_t s0 = c->sent;
		run_for(&r, 300);
		if (c->sent == s0 && c->blocked)
			break;
		if (now_ns() > give_up) {
			rig_dump(&r);
			fail_msg("the source never stalled");
		}
	}
	assert_true(c->sent < n);
	/* What is on the way is bounded: AMST's two stream buffers, one bounce buffer
	 * and the sockets' own buffers (a few hundred KiB each). */
	uint64_t on_way = c->sent - d->received;
	print_message("    stalled: source wrote %llu KiB, %llu KiB on the way, AMST unacked max "
	              "%llu KiB, bounce max %llu KiB\n",
	              (unsigned long long)(c->sent >> 10), (unsigned long long)(on_way >> 10),
	              (unsigned long long)(r.max_unacked >> 10),
	              (unsigned long long)(r.max_buffered >> 10));
	assert_true(on_way <= 2ull * r.cfg_s.stream_buf + DP_HOST_BOUNCE + 8 * MIB);
	assert_int_equal(amst_stream_room(r.cs, 0), 0);
	/* No busy loop: neither appliance has anything to do, its epoll fd is quiet. */
	struct epoll_event ev;
	assert_int_equal(dp_host_poll(r.hs, 0), 0);
	assert_int_equal(dp_host_poll(r.hr, 0), 0);
	assert_int_equal(epoll_wait(dp_host_fd(r.hs), &ev, 1, 0), 0);
	assert_int_equal(epoll_wait(dp_host_fd(r.hr), &ev, 1, 0), 0);

	d->read_paused = false;
	RUN_UNTIL(&r, ep_ended(d), 60);
	assert_int_equal(d->err, 0);
	assert_int_equal(d->received, n);
	assert_int_equal(d->mismatches, 0);
	assert_true(r.max_buffered <= DP_HOST_BOUNCE);
	rig_fini(&r);
}

/* (3b) The source writes everything and hangs up while its stream is full: its
 * socket, which reports the hang-up for as long as it lasts, must not keep the
 * sending side awake; its last bytes and its EOF still arrive. */
static void test_backpressure_hangup(void **state)
{
	(void)state;
	static struct rig r;
	const uint64_t n = 512 * 1024;
	opt_stream_buf = 64 * 1024; /* AMST holds little: most waits in the sockets */
	rig_init(&r, "unix", "unix", true);
	r.check_bounds = true;
	struct ep *c = rig_client(&r, 1, n);
	int big = 4 << 20; /* the source's socket must take it all */
	(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
	(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	RUN_UNTIL(&r, r.nde == 1, 10);
	struct ep *d = &r.de[0];
	d->read_paused = true;
	RUN_UNTIL(&r, c->sent == n || c->blocked, 10);
	if (c->sent < n) {
		print_message("    the source's socket takes only %llu KiB\n",
		              (unsigned long long)(c->sent >> 10));
		rig_fini(&r);
		skip();
	}
	ep_close(c); /* all written: hang up */
	run_for(&r, 300);
	bool found;
	struct dp_host_stream_stats s0 = stream_of(r.ss, 0, &found);
	assert_true(found);
	assert_true(s0.to_amst < n); /* bytes still wait in the socket */
	assert_false(s0.host_eof);
	assert_int_equal(amst_stream_room(r.cs, 0), 0);
	struct epoll_event ev;
	assert_int_equal(dp_host_poll(r.hs, 0), 0);
	assert_int_equal(dp_host_poll(r.hr, 0), 0);
	assert_int_equal(epoll_wait(dp_host_fd(r.hs), &ev, 1, 0), 0);
	assert_int_equal(epoll_wait(dp_host_fd(r.hr), &ev, 1, 0), 0);

	d->read_paused = false;
	RUN_UNTIL(&r, ep_ended(d), 30);
	assert_int_equal(d->err, 0);
	assert_int_equal(d->received, n);
	assert_int_equal(d->mismatches, 0);
	s0 = stream_of(r.ss, 0, &found);
	assert_true(s0.host_eof);
	rig_fini(&r);
}

/* (4) Nobody listens at the destination: the source's connection is closed. */
static void destination_refuses(const char *kind)
{
	static struct rig r;
	rig_init(&r, kind, kind, false);
	struct ep *c = rig_client(&r, 1, 256 * 1024);
	c->shut_when_sent = false;
	RUN_UNTIL(&r, ep_ended(c), 20);
	assert_true(c->eof || c->err == ECONNRESET || c->err == EPIPE);
	assert_int_equal(sess_stats(r.sr).connect_failed, 1);
	assert_int_equal(sess_stats(r.ss).peer_resets, 1);
	bool found;
	assert_string_equal(stream_of(r.ss, 0, &found).state, "reset");
	assert_string_equal(stream_of(r.sr, 0, &found).state, "reset");
	assert_int_equal(sess_stats(r.ss).streams_open, 0);
	assert_int_equal(sess_stats(r.sr).streams_open, 0);
	/* The session itself goes on: the next connection is another stream. */
	assert_false(sess_stats(r.ss).ended);
	assert_true(sess_stats(r.ss).listening);
	rig_fini(&r);
}

static void test_destination_refuses(void **state)
{
	(void)state;
	destination_refuses("unix"); /* no socket file: connect fails at once */
	destination_refuses("tcp");  /* a closed port: the connect fails later */
}

/* (5) The source connection is reset mid-stream: the destination sees an error,
 * never a clean end. */
static void test_source_reset(void **state)
{
	(void)state;
	static struct rig r;
	const uint64_t n = 32 * MIB;
	rig_init(&r, "tcp", "tcp", true);
	struct ep *c = rig_client(&r, 1, n);
	RUN_UNTIL(&r, r.nde == 1 && r.de[0].received >= 2 * MIB, 20);
	struct linger l = {.l_onoff = 1, .l_linger = 0};
	assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)), 0);
	ep_close(c); /* RST */
	struct ep *d = &r.de[0];
	RUN_UNTIL(&r, ep_ended(d), 20);
	print_message("    destination: %llu bytes, then %s\n", (unsigned long long)d->received,
	              d->err ? strerror(d->err) : "EOF");
	assert_true(d->received < n);
	assert_int_equal(d->err, ECONNRESET); /* our abortive close is a RST */
	assert_int_equal(d->mismatches, 0);
	assert_int_equal(sess_stats(r.ss).host_errors, 1);
	assert_int_equal(sess_stats(r.sr).peer_resets, 1);
	RUN_UNTIL(&r, sess_stats(r.sr).streams_open == 0, 5);
	rig_fini(&r);
}

/* (5b) The same the other way: the destination resets its connection mid-stream;
 * the source's connection fails too. */
static void test_destination_reset(void **state)
{
	(void)state;
	static struct rig r;
	const uint64_t n = 32 * MIB;
	rig_init(&r, "tcp", "tcp", true);
	struct ep *c = rig_client(&r, 1, n);
	RUN_UNTIL(&r, r.nde == 1 && r.de[0].received >= 2 * MIB, 20);
	struct ep *d = &r.de[0];
	struct linger l = {.l_onoff = 1, .l_linger = 0};
	assert_int_equal(setsockopt(d->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)), 0);
	ep_close(d); /* RST */
	RUN_UNTIL(&r, ep_ended(c), 20);
	print_message("    source: wrote %llu bytes, then %s\n", (unsigned long long)c->sent,
	              c->err ? strerror(c->err) : "EOF");
	assert_true(c->err == ECONNRESET || c->err == EPIPE);
	assert_true(c->sent < n);
	assert_int_equal(sess_stats(r.sr).host_errors, 1);
	assert_int_equal(sess_stats(r.ss).peer_resets, 1);
	RUN_UNTIL(&r, sess_stats(r.ss).streams_open == 0, 5);
	rig_fini(&r);
}

/* (6) The session ends with an error: every host socket on both sides is closed
 * and the sending side stops listening. */
static void test_session_error(void **state)
{
	(void)state;
	static struct rig r;
	const uint64_t n = 64 * MIB;
	rig_init(&r, "unix", "unix", true);
	struct ep *c0 = rig_client(&r, 1, n);
	struct ep *c1 = rig_client(&r, 2, n);
	RUN_UNTIL(&r, r.nde == 2 && r.de[0].received >= MIB && r.de[1].received >= MIB, 20);
	amst_conn_close(r.cs, AMST_CLOSE_APP, "operator cancelled", now_ns());
	RUN_UNTIL(&r,
	          ep_ended(c0) && ep_ended(c1) && ep_ended(&r.de[0]) && ep_ended(&r.de[1]) &&
	                  r.closed_r,
	          20);
	assert_int_equal(r.code_r, AMST_CLOSE_APP);
	for (unsigned i = 0; i < 2; i++)
		assert_true(r.de[i].received < n);
	struct dp_host_sess_stats st = sess_stats(r.ss);
	assert_true(st.ended);
	assert_int_equal(st.end_code, AMST_CLOSE_APP);
	assert_false(st.listening);
	assert_int_equal(st.streams_open, 0);
	st = sess_stats(r.sr);
	assert_true(st.ended);
	assert_int_equal(st.end_code, AMST_CLOSE_APP);
	assert_int_equal(st.streams_open, 0);
	bool found;
	for (uint32_t id = 0; id < 4; id += 2) {
		assert_string_equal(stream_of(r.ss, id, &found).state, "reset");
		assert_string_equal(stream_of(r.sr, id, &found).state, "reset");
	}
	/* Nobody listens on the source path any more (and the file is gone). */
	assert_true(connect_to(&r.src) < 0);
	assert_int_equal(access(r.src_path, F_OK), -1);
	rig_fini(&r);
}

/* (8) Addresses: strict, with messages that say what is wrong. */
static void test_addr_parse(void **state)
{
	(void)state;
	struct dp_host_addr a;
	char err[256], text[DP_HOST_ADDR_TEXT];
	static const struct {
		const char *in, *out;
	} good[] = {
	        {"unix:/run/novacron/mig.sock", "unix:/run/novacron/mig.sock"},
	        {"tcp:127.0.0.1:4444", "tcp:127.0.0.1:4444"},
	        {"tcp:0.0.0.0:0", "tcp:0.0.0.0:0"},
	        {"tcp:[::1]:4444", "tcp:[::1]:4444"},
	        {"tcp:[::]:65535", "tcp:[::]:65535"},
	        {"tcp:[fd00:0::0001]:1", "tcp:[fd00::1]:1"},
	        {"test:", "test:"},
	        {"test:4", "test:4"},
	        {"test:1:1", "test:1:1"},
	        {"test:16:2G", "test:16:2147483648"},
	        {"test:2:3K", "test:2:3072"},
	        {"test:2:1024T", "test:2:1125899906842624"},
	};
	for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(err, 0, sizeof(err));
		if (dp_host_addr_parse(good[i].in, &a, err, sizeof(err)) != 0)
			fail_msg("%s: %s", good[i].in, err);
		assert_true(dp_host_addr_format(&a, text, sizeof(text)) > 0);
		assert_string_equal(text, good[i].out);
	}
	assert_int_equal(dp_host_addr_parse("tcp:[::1]:4444", &a, err, sizeof(err)), 0);
	assert_int_equal(a.family, DP_HOST_TCP);
	assert_int_equal(a.ip.sa.sa_family, AF_INET6);
	assert_int_equal(ntohs(a.ip.in6.sin6_port), 4444);

	static const struct {
		const char *in, *says;
	} bad[] = {
	        {"", "empty"},
	        {"unix:", "absolute path"},
	        {"unix:relative/x.sock", "absolute path"},
	        {"UNIX:/x", "unknown kind"},
	        {"udp:1.2.3.4:5", "unknown kind"},
	        {"tcp:localhost:4444", "not resolved"},
	        {"tcp:example.com:4444", "not resolved"},
	        {"tcp:127.0.0.1", "expected tcp:HOST:PORT"},
	        {"tcp:127.0.0.1:", "port"},
	        {"tcp:127.0.0.1:65536", "port"},
	        {"tcp:127.0.0.1:-1", "port"},
	        {"tcp:127.0.0.1:44a", "port"},
	        {"tcp:127.0.0.1:4 ", "port"},
	        {"tcp:127.0.0.1:000001", "port"},
	        {"tcp: 127.0.0.1:4", "IPv4"},
	        {"tcp:1.2.3:4", "IPv4"},
	        {"tcp:256.1.1.1:4", "IPv4"},
	        {"tcp::4444", "no host"},
	        {"tcp:::1:4444", "brackets"},
	        {"tcp:[::1]4444", "':PORT'"},
	        {"tcp:[::1", "']'"},
	        {"tcp:[]:1", "IPv6"},
	        {"tcp:[1.2.3.4]:1", "IPv6"},
	        {"tcp:[fe80::1%eth0]:1", "IPv6"},
	        {"test", "unknown kind"},
	        {"test:0", "STREAMS 1-16"},
	        {"test:17", "STREAMS 1-16"},
	        {"test:-1", "STREAMS 1-16"},
	        {"test:4:", "not a number"},
	        {"test:4:0", "from 1"},
	        {"test:4:1025T", "from 1"},
	        {"test:4:99999999999999999999", "not a number"},
	        {"test:4:1k", "K, M, G or T"},
	        {"test:4:1KB", "K, M, G or T"},
	        {"test:4:1:", "K, M, G or T"},
	        {"test:4x", "STREAMS"},
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(err, 0, sizeof(err));
		a.family = DP_HOST_UNIX;
		if (dp_host_addr_parse(bad[i].in, &a, err, sizeof(err)) != -EINVAL)
			fail_msg("'%s' was taken", bad[i].in);
		if (strstr(err, bad[i].says) == NULL)
			fail_msg("'%s': message '%s' does not say '%s'", bad[i].in, err,
			         bad[i].says);
		assert_int_equal(a.family, DP_HOST_UNIX); /* untouched */
	}
	assert_int_equal(dp_host_addr_parse(NULL, &a, NULL, 0), -EINVAL);

	/* The longest path a UNIX socket takes, and one byte more. */
	char longp[DP_HOST_PATH_MAX + 16];
	memset(longp, 'a', sizeof(longp));
	memcpy(longp, "unix:/", 6);
	longp[5 + DP_HOST_PATH_MAX] = '\0';
	assert_int_equal(dp_host_addr_parse(longp, &a, err, sizeof(err)), 0);
	assert_int_equal(strlen(a.path), DP_HOST_PATH_MAX);
	longp[5 + DP_HOST_PATH_MAX] = 'a';
	longp[6 + DP_HOST_PATH_MAX] = '\0';
	assert_int_equal(dp_host_addr_parse(longp, &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "at most"));

	/* Connecting needs a port; listening may let the kernel choose one. */
	struct dp_host *h = dp_host_create();
	assert_non_null(h);
	struct amst_conn_cfg cc = cfg(false);
	cc.client = true;
	struct amst_conn *c = amst_conn_client(&cc, 1);
	assert_non_null(c);
	assert_int_equal(dp_host_addr_parse("tcp:127.0.0.1:0", &a, err, sizeof(err)), 0);
	errno = 0;
	assert_null(dp_host_connect_to(h, c, &a));
	assert_int_equal(errno, EINVAL);
	amst_conn_destroy(c);
	dp_host_destroy(h);
}

/* The pattern test streams carry: stream k's bytes from offset off. */
static void pattern_of(uint32_t k, uint64_t off, uint8_t *buf, size_t n)
{
	static uint8_t pat[2 * 65521];
	static bool made;
	if (!made) {
		dp_host_test_pattern(pat, sizeof(pat));
		made = true;
	}
	for (size_t i = 0; i < n; i++)
		buf[i] = pat[(off + i + (uint64_t)k * 4099) % 65521];
}

/* Test streams (test:STREAMS:BYTES to test:): made and checked inside the
 * appliances, no host connection; each stream ends cleanly both ways, and its
 * digests at both ends are those of the pattern computed here byte by byte. */
static void test_test_streams(void **state)
{
	(void)state;
	static struct rig r;
	const uint64_t n = 3 * MIB + 5;
	opt_stream_buf = 256u << 10; /* the spans wrap */
	rig_init(&r, "test:3:3145733", "test:", false);
	opt_stream_buf = 1u << 20;
	r.digest = true;
	dp_host_sess_set_digest(r.ss, true);
	bool found;
	for (uint32_t id = 0; id < 6; id += 2)
		RUN_UNTIL(&r,
		          strcmp(stream_of(r.sr, id, &found).state, "closed") == 0 &&
		                  strcmp(stream_of(r.ss, id, &found).state, "closed") == 0,
		          30);
	uint8_t want[NC_DIGEST_LEN];
	uint8_t *all = malloc(n);
	assert_non_null(all);
	for (uint32_t k = 0; k < 3; k++) {
		pattern_of(2 * k, 0, all, n);
		digest_of(all, n, want);
		struct dp_host_stream_stats a = stream_of(r.ss, 2 * k, &found);
		assert_true(found);
		struct dp_host_stream_stats b = stream_of(r.sr, 2 * k, &found);
		assert_true(found);
		assert_int_equal(a.to_amst, n);
		assert_int_equal(b.from_amst, n);
		assert_true(a.host_eof && a.amst_fin && b.host_eof && b.amst_fin);
		assert_false(a.reset || b.reset);
		assert_true(a.digest_done && b.digest_done);
		assert_memory_equal(a.digest, want, NC_DIGEST_LEN);
		assert_memory_equal(b.digest, want, NC_DIGEST_LEN);
	}
	free(all);
	assert_int_equal(sess_stats(r.ss).host_errors, 0);
	assert_int_equal(sess_stats(r.sr).host_errors, 0);
	assert_false(sess_stats(r.ss).listening);
	rig_fini(&r);
}

/* A test sink that gets anything but the pattern (here a real source
 * connection's bytes) resets the stream at once and counts a host error;
 * nothing hangs; a sending session of test streams takes no HDE, and
 * "test:" with no count cannot send. */
static void test_test_sink_refuses(void **state)
{
	(void)state;
	static struct rig r;
	rig_init(&r, "unix", "test:", false);
	struct ep *e = rig_client(&r, 1, 4 * MIB);
	RUN_UNTIL(&r, r.sr != NULL && sess_stats(r.sr).host_errors == 1, 10);
	bool found;
	struct dp_host_stream_stats b = stream_of(r.sr, 0, &found);
	assert_true(found && b.reset);
	assert_true(b.from_amst < 4 * MIB);
	RUN_UNTIL(&r, ep_ended(e), 10); /* the source's connection is closed */
	RUN_UNTIL(&r, stream_of(r.ss, 0, &found).reset, 10);
	rig_fini(&r);

	char err[256];
	struct dp_host_addr a;
	struct dp_host *h = dp_host_create();
	assert_non_null(h);
	struct amst_conn_cfg cc = cfg(true);
	struct amst_conn *c = amst_conn_client(&cc, 1);
	assert_non_null(c);
	assert_int_equal(dp_host_addr_parse("test:", &a, err, sizeof(err)), 0);
	errno = 0;
	assert_null(dp_host_listen(h, c, &a, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(err, "need a count"));
	/* More streams than the session takes: refused, nothing left open. */
	amst_conn_destroy(c);
	cc.max_streams = 2;
	c = amst_conn_client(&cc, 1);
	assert_int_equal(dp_host_addr_parse("test:3", &a, err, sizeof(err)), 0);
	assert_null(dp_host_listen(h, c, &a, err, sizeof(err)));
	assert_non_null(strstr(err, "test stream 3 of 3"));
	amst_conn_destroy(c); /* its stream ids are spent */
	c = amst_conn_client(&cc, 1);
	assert_int_equal(dp_host_addr_parse("test:2", &a, err, sizeof(err)), 0);
	struct dp_host_sess *s = dp_host_listen(h, c, &a, err, sizeof(err));
	assert_non_null(s);
	const struct dp_host_codec codec = {.on = true, .cache_bytes = MIB, .streams = 2};
	assert_int_equal(dp_host_sess_set_codec(s, &codec), -EINVAL);
	dp_host_sess_destroy(s);
	amst_conn_destroy(c);
	dp_host_destroy(h);
}

/* (9) A stale UNIX socket file is replaced; a live one, or a file that is not a
 * socket, is refused; our socket file goes when we stop. */
static void test_stale_socket(void **state)
{
	(void)state;
	char dir[64], path[128], text[160], err[256];
	make_tmp_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/mig.sock", dir);
	snprintf(text, sizeof(text), "unix:%s", path);
	struct dp_host_addr a;
	assert_int_equal(dp_host_addr_parse(text, &a, err, sizeof(err)), 0);
	struct dp_host *h = dp_host_create();
	assert_non_null(h);
	struct amst_conn_cfg cc = cfg(true);
	struct amst_conn *c = amst_conn_client(&cc, now_ns());
	assert_non_null(c);

	/* A socket file left by a listener that is gone. */
	int fd = listen_unix(path);
	close(fd);
	assert_int_equal(access(path, F_OK), 0);
	struct dp_host_sess *s = dp_host_listen(h, c, &a, err, sizeof(err));
	if (s == NULL)
		fail_msg("stale socket not replaced: %s", err);
	/* It is ours and live: a connection gets accepted. */
	int cfd = connect_to(&a);
	assert_true(cfd >= 0);
	uint64_t dl = now_ns() + 5000000000ull;
	while (sess_stats(s).accepted == 0 && now_ns() < dl)
		(void)dp_host_poll(h, 10);
	assert_int_equal(sess_stats(s).accepted, 1);

	/* A second listener on the live socket is refused. */
	struct dp_host_sess *s2 = dp_host_listen(h, c, &a, err, sizeof(err));
	assert_null(s2);
	assert_int_equal(errno, EADDRINUSE);
	assert_non_null(strstr(err, "somebody is listening"));
	dp_host_sess_destroy(s);
	close(cfd);
	assert_int_equal(access(path, F_OK), -1); /* removed with the session */

	/* A file that is not a socket is left alone. */
	int ffd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(ffd >= 0);
	close(ffd);
	assert_null(dp_host_listen(h, c, &a, err, sizeof(err)));
	assert_int_equal(errno, EEXIST);
	assert_non_null(strstr(err, "not a socket"));
	assert_int_equal(access(path, F_OK), 0);
	unlink(path);

	amst_conn_destroy(c);
	dp_host_destroy(h);
	assert_int_equal(rmdir(dir), 0);
}

/* A connection beyond the session's stream limit is refused (closed) and counted;
 * the others carry on. */
static void test_stream_limit(void **state)
{
	(void)state;
	static struct rig r;
	opt_max_streams = 2; /* each way */
	rig_init(&r, "unix", "unix", true);
	struct ep *c[3];
	for (unsigned k = 0; k < 3; k++)
		c[k] = rig_client(&r, k + 1, 128 * 1024);
	RUN_UNTIL(&r, ep_ended(c[2]), 10);
	assert_true(c[2]->eof || c[2]->err == ECONNRESET || c[2]->err == EPIPE);
	assert_int_equal(c[2]->received, 0);
	RUN_UNTIL(&r, r.nde == 2 && ep_ended(&r.de[0]) && ep_ended(&r.de[1]), 20);
	for (unsigned k = 0; k < 2; k++) {
		assert_int_equal(r.de[k].received, 128 * 1024);
		assert_int_equal(r.de[k].mismatches, 0);
	}
	struct dp_host_sess_stats st = sess_stats(r.ss);
	assert_int_equal(st.accepted, 3);
	assert_int_equal(st.refused, 1);
	rig_fini(&r);
}

/* Every byte reached the destination's TCP socket (the receiving digest is
 * final) and the session then closes cleanly: the destination still reads
 * all of it and an EOF, not an RST that drops what its socket held. */
static void test_clean_close_keeps_delivered(void **state)
{
	(void)state;
	static struct rig r;
	const uint64_t n = 16 * MIB;
	rig_init(&r, "tcp", "tcp", true);
	r.digest = true;
	dp_host_sess_set_digest(r.ss, true);
	struct ep *c = rig_client(&r, 1, n);
	c->shut_when_sent = true;
	RUN_UNTIL(&r, r.nde == 1, 10);
	struct ep *d = &r.de[0];
	d->read_paused = true;
	bool found;
	uint64_t dl = now_ns() + 30000000000ull;
	while (!stream_of(r.sr, 0, &found).digest_done && now_ns() < dl) {
		rig_step(&r);
		if (d->received < n - 1 * MIB) { /* read slowly until near the end */
			d->read_paused = false;
			ep_step(d);
			d->read_paused = true;
		}
	}
	assert_true(stream_of(r.sr, 0, &found).digest_done);
	assert_true(d->received < n); /* the rest waits in its socket */
	RUN_UNTIL(&r, amst_conn_all_acked(r.cs), 10);
	amst_conn_close(r.cs, AMST_CLOSE_OK, "migration completed", now_ns());
	RUN_UNTIL(&r, r.closed_r, 10);
	d->read_paused = false;
	RUN_UNTIL(&r, ep_ended(d), 10);
	assert_int_equal(d->err, 0);
	assert_int_equal(d->received, n);
	/* closed, not reset: its digest stands */
	struct dp_host_stream_stats b = stream_of(r.sr, 0, &found);
	assert_false(b.reset);
	assert_true(b.digest_done);
	rig_fini(&r);
}

/* The source (UNIX) writes @p n bytes and closes with a reply of @p reply
 * bytes it never read in its socket; the destination reads only after. */
static void source_closes_with_reply(uint64_t n, uint64_t reply)
{
	static struct rig r;
	rig_init(&r, "unix", "tcp", true);
	r.de_send = reply;
	r.de_may_send = true;
	struct ep *c = rig_client(&r, 1, n);
	c->read_paused = true; /* never reads the reply */
	int big = 64 << 20;
	(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
	RUN_UNTIL(&r, r.nde == 1, 10);
	struct ep *d = &r.de[0];
	d->read_paused = true;
	RUN_UNTIL(&r, c->sent == n, 20);
	run_for(&r, 100); /* the reply reaches the source's socket */
	ep_close(c);      /* all written, reply unread */
	run_for(&r, 200);
	d->read_paused = false;
	RUN_UNTIL(&r, ep_ended(d), 30);
	assert_int_equal(d->err, 0);
	assert_int_equal(d->received, n);
	assert_int_equal(d->mismatches, 0);
	assert_int_equal(sess_stats(r.ss).host_errors, 0);
	rig_fini(&r);
}

/* A read then says ECONNRESET, not EOF: its bytes all reach the destination
 * with an EOF; the reply is dropped. */
static void test_source_closes_reply_unread(void **state)
{
	(void)state;
	source_closes_with_reply(8 * MIB, 1000);
}

/* The reply fills the source's socket, so the stream waits to write to it
 * when it closes and the first to fail is a write (EPIPE): the same. */
static void test_source_closes_reply_blocked(void **state)
{
	(void)state;
	source_closes_with_reply(48 * MIB, 8 * MIB);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, reset_opts, remove_tmp_dir)
	        T(test_addr_parse),
	        T(test_test_streams),
	        T(test_test_sink_refuses),
	        T(test_stale_socket),
	        T(test_unix_both_ways),
	        T(test_multifd_order),
	        T(test_backpressure),
	        T(test_backpressure_hangup),
	        T(test_destination_refuses),
	        T(test_source_reset),
	        T(test_destination_reset),
	        T(test_session_error),
	        T(test_tcp_both_ways),
	        T(test_stream_limit),
	        T(test_digests),
	        T(test_hde_codec),
	        T(test_hde_cache_refused),
	        T(test_clean_close_keeps_delivered),
	        T(test_source_closes_reply_unread),
	        T(test_source_closes_reply_blocked),
#undef T
	};
	if (getenv("DP_HOST_TEST")) /* run one test: DP_HOST_TEST=test_backpressure */
		cmocka_set_test_filter(getenv("DP_HOST_TEST"));
	return cmocka_run_group_tests_name("dp_host", tests, NULL, NULL);
}
