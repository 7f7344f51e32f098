/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_hde_dec: libFuzzer target for HDE's decoder (outside input: frames
 * from the peer; AMST authenticates them, but the decoder trusts nothing).
 * Byte 0 picks how the rest is fed: bit 0 set = make every frame's CRC32C
 * valid first (so the fuzzer gets past the checksum to the codecs and ops);
 * bits 1-3 = chunk size for input and output. Checked: no crash or read
 * outside the bytes (ASan), calls never report more than they were given
 * room for, output is bounded by what frames may hold, and an error is
 * sticky.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/crc.h>

#include "hde.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);      \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void fix_crcs(uint8_t *p, size_t n)
{
	size_t off = 0;
	while (n - off >= 24) {
		uint8_t *h = p + off;
		size_t pay = get32(h + 8);
		if (pay > n - off - 24)
			pay = n - off - 24;
		uint32_t crc = crc32_iscsi(h, 20, 0);
		crc = crc32_iscsi(h + 24, (int)pay, crc);
		h[20] = (uint8_t)crc;
		h[21] = (uint8_t)(crc >> 8);
		h[22] = (uint8_t)(crc >> 16);
		h[23] = (uint8_t)(crc >> 24);
		off += 24 + pay;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	size_t n = size - 1;
	uint8_t *in = malloc(n ? n : 1);
	memcpy(in, data + 1, n);
	if (mode & 1)
		fix_crcs(in, n);
	size_t step = (size_t)1 << (((mode >> 1) & 7) * 2); /* 1 .. 16384 */

	const struct hde_params p = {.cache_bytes = 64u << 10, .batch_bytes = 16u << 10};
	struct hde_dec *d = hde_dec_create(&p);
	CHECK(d);
	uint8_t *out = malloc(step);
	size_t off = 0, total = 0;
	int rc = 0;
	for (int guard = 0; guard < 1 << 22; guard++) {
		size_t k = n - off < step ? n - off : step, used, got;
		rc = hde_dec_process(d, in + off, k, &used, out, step, &got);
		if (rc) {
			CHECK(rc == -EBADMSG || rc == -EPROTO || rc == -EIO);
			size_t u2, g2;
			CHECK(hde_dec_process(d, in, n, &u2, out, step, &g2) == rc);
			break;
		}
		CHECK(used <= k && got <= step);
		off += used;
		total += got;
		if (off == n && got == 0)
			break;
	}
	/* each frame holds at most batch + one page of stream per 24 bytes in */
	CHECK(total <= (n / 24 + 1) * ((16u << 10) + 4096));
	hde_dec_destroy(d);
	free(out);
	free(in);
	return 0;
}
