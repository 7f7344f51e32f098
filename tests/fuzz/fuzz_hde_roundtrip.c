/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_hde_roundtrip: libFuzzer target for HDE's recogniser and encoder
 * (outside input: whatever QEMU, or anything else, writes to the migration
 * socket). Byte 0 picks the setting (low 3 bits), the cache (bit 3: none or
 * 64 KiB, which evicts), input/output chunking (bits 5-7) and flushes at
 * chunk ends (bit 4, for chunks of 256 bytes or more); the rest is the stream. It must decode
 * back to exactly the same bytes: abort otherwise.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hde.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);      \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	const uint8_t *in = data + 1;
	size_t n = size - 1;
	struct hde_params p = {.cache_bytes = mode & 8 ? 64u << 10 : 0,
	                       .batch_bytes = 16u << 10,
	                       .mode = HDE_MODE_FIXED,
	                       .setting = (enum hde_setting)(mode & 7)};
	if ((mode & 7) == HDE_SET_ZSTD19 || (mode & 7) == HDE_SET_ZSTD9)
		p.setting = HDE_SET_ZSTD3;                  /* same format, far faster to fuzz */
	size_t step = (size_t)1 << (((mode >> 5) & 7) * 2); /* 1 .. 16384 */
	int flushes = (mode & 16) && step >= 256;           /* a frame per byte is merely slow */

	struct hde_enc *e = hde_enc_create(&p);
	CHECK(e);
	size_t cap = n + n / 2 + 4096 * 4 + 1024, flen = 0, off = 0;
	uint8_t *frames = malloc(cap);
	CHECK(frames);
	for (;;) {
		size_t k = n - off < step ? n - off : step, used, got;
		if (cap - flen < step) { /* flushing every byte: frames outgrow the input */
			cap = cap * 2 + step;
			frames = realloc(frames, cap);
			CHECK(frames);
		}
		size_t room = step;
		CHECK(hde_enc_process(e, in + off, k, &used, frames + flen, room, &got,
		                      off + k == n || flushes) == 0);
		off += used;
		flen += got;
		if (off == n && hde_enc_pending(e) == 0)
			break;
	}
	hde_enc_destroy(e);

	struct hde_dec *d = hde_dec_create(&p);
	CHECK(d);
	uint8_t *back = malloc(n + 1);
	size_t blen = 0;
	off = 0;
	for (;;) {
		size_t k = flen - off < step ? flen - off : step, used, got;
		size_t room = n + 1 - blen;
		CHECK(hde_dec_process(d, frames + off, k, &used, back + blen, room, &got) == 0);
		off += used;
		blen += got;
		CHECK(blen <= n);
		if (off == flen && got == 0)
			break;
	}
	CHECK(hde_dec_pending(d) == 0);
	CHECK(blen == n);
	CHECK(n == 0 || memcmp(back, in, n) == 0);
	hde_dec_destroy(d);
	free(back);
	free(frames);
	return 0;
}
