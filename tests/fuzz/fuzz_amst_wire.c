/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_amst_wire: libFuzzer target for AMST's packet parser and a session's
 * input path (outside input: UDP payloads from the network). The header and
 * frame parsers must accept or refuse any bytes without reading outside them;
 * a session fed the bytes as a packet (sealed, so they fail authentication,
 * and unsealed with a valid CRC, so the frames are parsed) must drop or take
 * them without crashing. The bytes after the first are also sealed as frames
 * by the session's peer (amst_conn_pack_frames), so they authenticate and
 * take the sealed receive path, which decrypts stream data straight into the
 * receive rings; the first byte's low bit flips a bit of that packet first,
 * so it fails its tag after decrypting.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "amst_conn.h"
#include "amst_wire.h"

static const uint8_t psk[32] = "fuzz-psk-fuzz-psk-fuzz-psk-fuzz";

/* A client session established with a server (kept in *peer if asked). */
static struct amst_conn *make(bool seal, struct amst_conn **peer)
{
	struct amst_conn_cfg cfg = {
	        .client = true,
	        .local_cid = 7,
	        .psk = psk,
	        .psk_len = sizeof(psk),
	        .seal = seal,
	        .max_payload = 1472,
	        .stream_buf = 1 << 16,
	        .session_window = 1 << 18,
	        .max_streams = 4,
	};
	struct amst_conn *c = amst_conn_client(&cfg, 0);
	if (c == NULL)
		return NULL;
	/* Complete a real handshake, so DATA packets reach the frame parser. */
	uint8_t buf[1500];
	size_t n = amst_conn_output(c, buf, sizeof(buf), 0);
	cfg.client = false;
	cfg.local_cid = 9;
	enum amst_drop why;
	struct amst_conn *srv = amst_conn_accept(&cfg, buf, n, 0, &why);
	if (srv == NULL)
		abort();
	n = amst_conn_output(srv, buf, sizeof(buf), 0);
	if (n == 0 || amst_conn_input(c, buf, n, 0) != 0 || amst_conn_state(c) != AMST_ESTABLISHED)
		abort();
	if (peer)
		*peer = srv;
	else
		amst_conn_destroy(srv);
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 9000)
		return 0;
	/* The parsers alone. */
	struct amst_hdr h;
	struct amst_hello hello;
	(void)amst_hdr_parse(data, size, &h);
	(void)amst_hello_parse(data, size, &hello);
	static struct amst_frame f;
	struct amst_frame_iter it;
	amst_frame_iter_init(&it, data, size);
	int rc, guard = 0;
	while ((rc = amst_frame_next(&it, &f)) == 1 && guard++ < 10000) {
		if (f.type == AMST_FR_STREAM && f.u.stream.len)
			(void)f.u.stream.data[f.u.stream.len - 1];
		if (f.type == AMST_FR_ACK && (f.u.ack.n == 0 || f.u.ack.n > AMST_MAX_ACK_RANGES))
			abort();
	}
	/* Sessions live across inputs (making one costs a key schedule and
	 * megabytes of tracking), so inputs build on what earlier ones left. */
	static struct amst_conn *sealed, *sealer, *plain;
	static uint64_t pn, now = 1;
	if (sealed == NULL || amst_conn_state(sealed) == AMST_CLOSED) {
		amst_conn_destroy(sealed);
		amst_conn_destroy(sealer);
		sealer = NULL;
		sealed = make(true, &sealer);
	}
	if (plain == NULL || amst_conn_state(plain) == AMST_CLOSED) {
		amst_conn_destroy(plain);
		plain = make(false, NULL);
		pn = 0;
	}
	if (sealed == NULL || sealer == NULL || plain == NULL)
		abort();
	now += 1000;

	uint8_t rd[4096], out[1472];
	bool fin;
	struct amst_event ev;

	/* As received from the network: sealed, so it must fail authentication. */
	uint8_t pkt[9100];
	memcpy(pkt, data, size);
	(void)amst_conn_input(sealed, pkt, size, now);

	/* Sealed by the peer: it authenticates, unless the first byte says to
	 * flip a bit of it. */
	if (size > 1) {
		size_t k = amst_conn_pack_frames(sealer, data + 1, size - 1, pkt, sizeof(pkt));
		if (k == 0)
			abort(); /* a packet the peer could send: it must pack */
		if (data[0] & 1)
			pkt[AMST_HDR_LEN + (data[0] >> 1) % (k - AMST_HDR_LEN)] ^= 0x01;
		(void)amst_conn_input(sealed, pkt, k, now);
		/* Its window updates, so frames further on still fit. */
		(void)amst_conn_output(sealed, out, sizeof(out), now);
		for (uint32_t id = 1; id < 8; id += 2)
			while (amst_stream_read(sealed, id, rd, sizeof(rd), &fin) > 0)
				;
		while (amst_conn_event(sealed, &ev) == 1)
			;
	}

	/* Unsealed with a valid CRC and a fresh packet number: the frames reach
	 * the state machine. */
	size_t n = AMST_HDR_LEN + size + AMST_CRC_LEN;
	struct amst_hdr dh = {.type = AMST_PKT_DATA, .flags = 0, .dst_cid = 7, .pn = pn++};
	amst_hdr_encode(&dh, pkt, sizeof(pkt));
	memcpy(pkt + AMST_HDR_LEN, data, size);
	amst_put32(pkt + AMST_HDR_LEN + size, amst_crc32c(pkt, AMST_HDR_LEN + size));
	(void)amst_conn_input(plain, pkt, n, now);
	for (int i = 0; i < 4; i++)
		(void)amst_conn_output(plain, out, sizeof(out), now + (uint64_t)i);
	for (uint32_t id = 1; id < 8; id += 2)
		(void)amst_stream_read(plain, id, rd, sizeof(rd), &fin);
	while (amst_conn_event(plain, &ev) == 1)
		;
	return 0;
}
