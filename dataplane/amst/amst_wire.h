/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * amst_wire: AMST's packet header and frames, encoded and parsed. The format
 * is specified in docs/amst.md. Everything here is bounds-checked against the
 * buffer it is given: a parser of packets from the network, fuzzed by
 * tests/fuzz/fuzz_amst_wire.c. All integers are big-endian on the wire.
 *
 * Return convention: encoders return the bytes written, or 0 when the buffer
 * is too small; parsers return 0 or -EBADMSG.
 */
#ifndef AMST_WIRE_H
#define AMST_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AMST_VERSION_BYTE   0xA1 /* "A", version 1 */
#define AMST_HDR_LEN        16
#define AMST_TAG_LEN        16 /* AES-GCM tag, sealed packets */
#define AMST_CRC_LEN        4  /* CRC32C trailer, unsealed packets */
#define AMST_RANDOM_LEN     32
#define AMST_MAX_ACK_RANGES 64
#define AMST_MAX_REASON     128

enum amst_pkt_type {
	AMST_PKT_INIT = 1,   /**< client -> server: open a session */
	AMST_PKT_ACCEPT = 2, /**< server -> client: session accepted */
	AMST_PKT_DATA = 3,   /**< frames of an established session */
};

#define AMST_F_SEALED 0x0001 /**< payload is AES-256-GCM ciphertext + tag */

struct amst_hdr {
	uint8_t type;
	uint16_t flags;
	uint32_t dst_cid; /**< receiver's connection id; 0 in INIT */
	uint64_t pn;      /**< packet number; random in handshake packets */
};

/** Handshake payload of INIT and ACCEPT (sealed with the PSK's handshake key). */
/** Longest session name in a hello, with its NUL. */
#define AMST_NAME_LEN 32

struct amst_hello {
	uint32_t src_cid;
	uint8_t random[AMST_RANDOM_LEN];
	uint32_t flags;           /**< AMST_HELLO_SEALED: data packets are sealed */
	uint32_t max_stream_data; /**< initial per-stream receive window */
	uint64_t max_data;        /**< initial session receive window */
	uint16_t max_streams;
	char name[AMST_NAME_LEN]; /**< the session's name, NUL-padded (INIT; empty in ACCEPT) */
	uint64_t time_ms; /**< sender's wall clock, ms since the epoch (INIT; 0 in ACCEPT) */
};
#define AMST_HELLO_LEN    (54 + AMST_NAME_LEN + 8)
#define AMST_HELLO_SEALED 0x1
/** Hello flags bits 8-15: the application's, carried as they are (amst_conn_cfg.app_flags). */
#define AMST_HELLO_APP_SHIFT 8
#define AMST_HELLO_APP_MASK  0xff00u

enum amst_frame_type {
	AMST_FR_PADDING = 0x00,
	AMST_FR_PING = 0x01,
	AMST_FR_ACK = 0x02,
	AMST_FR_STREAM = 0x03,
	AMST_FR_MAX_DATA = 0x04,
	AMST_FR_MAX_STREAM_DATA = 0x05,
	AMST_FR_RESET_STREAM = 0x06,
	AMST_FR_CLOSE = 0x07,
};

#define AMST_STREAM_FIN 0x01

/* Fixed sizes of frames, type byte included (STREAM without its data). */
#define AMST_FR_STREAM_HDR   16
#define AMST_FR_MAX_DATA_LEN 9
#define AMST_FR_MSD_LEN      13
#define AMST_FR_RESET_LEN    17
#define AMST_FR_ACK_MIN      18

struct amst_frame {
	uint8_t type;
	union {
		struct {
			uint64_t largest;
			uint32_t delay_us;
			uint32_t n; /**< ranges, descending */
			struct {
				uint64_t lo, hi;
			} r[AMST_MAX_ACK_RANGES]; /**< [lo, hi) of pns */
		} ack;
		struct {
			uint32_t id;
			bool fin;
			uint64_t off;
			uint16_t len;
			const uint8_t *data;
		} stream;
		uint64_t max_data;
		struct {
			uint32_t id;
			uint64_t max;
		} msd;
		struct {
			uint32_t id;
			uint32_t code;
			uint64_t final_size;
		} reset;
		struct {
			uint32_t code;
			uint16_t len;
			const uint8_t *reason;
		} close;
	} u;
};

/* Header. */
size_t amst_hdr_encode(const struct amst_hdr *h, uint8_t *buf, size_t cap);
int amst_hdr_parse(const uint8_t *buf, size_t len, struct amst_hdr *h);

/* Handshake payload. */
size_t amst_hello_encode(const struct amst_hello *h, uint8_t *buf, size_t cap);
int amst_hello_parse(const uint8_t *buf, size_t len, struct amst_hello *h);

/* Frames. Each returns bytes written or 0 if it does not fit. */
size_t amst_fr_ping(uint8_t *buf, size_t cap);
size_t amst_fr_padding(uint8_t *buf, size_t cap, size_t n);
/** ACK from ranges in descending order ([lo, hi) of packet numbers); as many as fit. */
size_t amst_fr_ack(uint8_t *buf, size_t cap, const struct amst_frame *ack);
size_t amst_fr_stream(uint8_t *buf, size_t cap, uint32_t id, uint64_t off, bool fin,
                      const uint8_t *data, uint16_t len);
size_t amst_fr_max_data(uint8_t *buf, size_t cap, uint64_t max);
size_t amst_fr_max_stream_data(uint8_t *buf, size_t cap, uint32_t id, uint64_t max);
size_t amst_fr_reset(uint8_t *buf, size_t cap, uint32_t id, uint32_t code, uint64_t final_size);
size_t amst_fr_close(uint8_t *buf, size_t cap, uint32_t code, const char *reason);

/** Iterates the frames of a decrypted DATA payload. */
struct amst_frame_iter {
	const uint8_t *p;
	const uint8_t *end;
};

static inline void amst_frame_iter_init(struct amst_frame_iter *it, const uint8_t *p, size_t len)
{
	it->p = p;
	it->end = p + len;
}

/** Next frame: 1 and *f filled, 0 at the end, -EBADMSG for a malformed frame. */
int amst_frame_next(struct amst_frame_iter *it, struct amst_frame *f);

/** CRC32C (Castagnoli) of @p len bytes, for unsealed packets. */
uint32_t amst_crc32c(const uint8_t *p, size_t len);

/** The CRC32C of pieces: start from AMST_CRC32C_INIT, add each piece in
 *  order, and the CRC is the result XOR AMST_CRC32C_INIT. */
#define AMST_CRC32C_INIT 0xffffffffu
uint32_t amst_crc32c_add(uint32_t crc, const uint8_t *p, size_t len);

/* Big-endian helpers. */
static inline void amst_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void amst_put32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}
static inline void amst_put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}
static inline uint16_t amst_get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t amst_get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t amst_get64(const uint8_t *p)
{
	return ((uint64_t)amst_get32(p) << 32) | amst_get32(p + 4);
}

#endif /* AMST_WIRE_H */
