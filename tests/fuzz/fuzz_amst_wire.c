/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_amst_wire: libFuzzer target for AMST's packet parser and a session's
 * input path (outside input: UDP payloads from the network). The header and
 * frame parsers must accept or refuse any bytes without reading outside them;
 * a session fed the bytes as a packet (sealed, so they fail authentication,
 * and unsealed with a valid CRC, so the frames are parsed) must drop or take
 * them without crashing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "amst_conn.h"
#include "amst_wire.h"

static const uint8_t psk[32] = "fuzz-psk-fuzz-psk-fuzz-psk-fuzz";

static struct amst_conn *make(bool seal)
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
	return amst_conn_client(&cfg, 0);
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
	/* A session taking the bytes as a packet, as received. */
	uint8_t pkt[9100];
	struct amst_conn *c = make(true);
	if (c == NULL)
		abort();
	memcpy(pkt, data, size);
	(void)amst_conn_input(c, pkt, size, 1);
	amst_conn_destroy(c);

	/* Unsealed with a valid CRC: the frames reach the state machine. */
	c = make(false);
	if (c == NULL)
		abort();
	size_t n = AMST_HDR_LEN + size + AMST_CRC_LEN;
	struct amst_hdr dh = {.type = AMST_PKT_DATA, .flags = 0, .dst_cid = 7, .pn = 1};
	amst_hdr_encode(&dh, pkt, sizeof(pkt));
	memcpy(pkt + AMST_HDR_LEN, data, size);
	amst_put32(pkt + AMST_HDR_LEN + size, amst_crc32c(pkt, AMST_HDR_LEN + size));
	(void)amst_conn_input(c, pkt, n, 2);
	uint8_t out[1472];
	for (int i = 0; i < 4; i++)
		(void)amst_conn_output(c, out, sizeof(out), 3 + (uint64_t)i);
	amst_conn_destroy(c);
	return 0;
}
