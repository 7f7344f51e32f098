/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_hde_delta: which delta coding for a page re-sent with a few bytes
 * changed (issue 4: "XOR+zstd or zstd with the old page as prefix: measure
 * which"). On 4096 guest-like pages (tools/hde's text-like and binary
 * generators), changed three ways (16 scattered bytes, 5% = 205 scattered
 * bytes, 300 random bytes in one run), it codes every new page against its old one with:
 *   sparse       HDE's sparse runs (skip, len, bytes), no entropy coding
 *   sparse+z1    the same, then zstd -1 over 256 deltas at a time (a frame)
 *   xor+z1       old XOR new (4096 bytes), zstd -1 over 256 at a time
 *   xor+z1/page  old XOR new, zstd -1 per page
 *   prefix+z1    zstd -1 per page with the old page as prefix
 * and prints bytes per page and MB/s of page input per core, then one JSON
 * line.
 */
#define ZSTD_STATIC_LINKING_ONLY
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zstd.h>

#include "hde_synth.h"

#define N     4096
#define BATCH 256
#define PG    4096

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t varint(uint8_t *p, uint32_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* The same coding as hde.c's delta_encode (kept separate: a bench of the idea). */
static size_t sparse(const uint8_t *p, const uint8_t *old, uint8_t *d)
{
	size_t i = 0, last = 0, n = 0;
	while (i < PG) {
		while (i < PG && p[i] == old[i])
			i++;
		if (i == PG)
			break;
		size_t start = i, eq = 0;
		while (i < PG && eq < 4) {
			eq = p[i] == old[i] ? eq + 1 : 0;
			i++;
		}
		size_t end = i - eq;
		n += varint(d + n, (uint32_t)(start - last));
		n += varint(d + n, (uint32_t)(end - start));
		memcpy(d + n, p + start, end - start);
		n += end - start;
		last = end;
	}
	return n;
}

int main(void)
{
	uint8_t *old = malloc((size_t)N * PG), *cur = malloc((size_t)N * PG);
	uint8_t *buf = malloc((size_t)BATCH * PG * 2),
	        *z = malloc(ZSTD_compressBound((size_t)BATCH * PG * 2));
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	static const char *const how[] = {"16 bytes", "5% scattered", "300-byte run"};
	static const char *const codings[] = {"sparse", "sparse+z1", "xor+z1", "xor+z1/page",
	                                      "prefix+z1"};
	double bytes[3][5], mbps[3][5];
	uint64_t rng = 11;

	if (!old || !cur || !buf || !z || !cc)
		return 1;
	for (size_t i = 0; i < N; i++)
		hde_synth_page(&rng, 1 + (int)(i & 1), old + i * PG);
	for (int h = 0; h < 3; h++) {
		memcpy(cur, old, (size_t)N * PG);
		for (size_t i = 0; i < N; i++) {
			uint8_t *p = cur + i * PG;
			if (h == 0 || h == 1)
				for (int k = 0; k < (h ? 205 : 16); k++)
					p[hde_synth_rand(&rng) & 4095] ^=
					        (uint8_t)(1 + hde_synth_rand(&rng) % 255);
			else {
				size_t at = hde_synth_rand(&rng) % (PG - 300);
				for (int k = 0; k < 300; k++)
					p[at + k] = (uint8_t)hde_synth_rand(&rng);
			}
		}
		for (int c = 0; c < 5; c++) {
			size_t total = 0;
			double t0 = cpu_s();
			for (size_t b = 0; b < N; b += BATCH) {
				size_t n = 0;
				for (size_t i = b; i < b + BATCH; i++) {
					const uint8_t *p = cur + i * PG, *o = old + i * PG;
					if (c <= 1) {
						n += sparse(p, o, buf + n);
					} else if (c == 2 || c == 3) {
						uint8_t *x = buf + (c == 2 ? n : 0);
						for (size_t k = 0; k < PG; k++)
							x[k] = p[k] ^ o[k];
						if (c == 2)
							n += PG;
						else
							total += ZSTD_compressCCtx(
							        cc, z, ZSTD_compressBound(PG), x,
							        PG, 1);
					} else {
						ZSTD_CCtx_reset(cc, ZSTD_reset_session_only);
						ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel,
						                       1);
						ZSTD_CCtx_refPrefix(cc, o, PG);
						total += ZSTD_compress2(
						        cc, z, ZSTD_compressBound(PG), p, PG);
					}
				}
				if (c == 0)
					total += n;
				else if (c == 1 || c == 2)
					total += ZSTD_compressCCtx(cc, z, ZSTD_compressBound(n),
					                           buf, n, 1);
			}
			double t = cpu_s() - t0;
			bytes[h][c] = (double)total / N;
			mbps[h][c] = (double)N * PG / t / 1e6;
		}
	}
	printf("%-14s", "change");
	for (int c = 0; c < 5; c++)
		printf(" %20s", codings[c]);
	printf("\n");
	for (int h = 0; h < 3; h++) {
		printf("%-14s", how[h]);
		for (int c = 0; c < 5; c++)
			printf(" %8.1f B %6.0f MB/s", bytes[h][c], mbps[h][c]);
		printf("\n");
	}
	printf("{\"bench\": \"hde_delta\", \"pages\": %d, \"results\": [", N);
	for (int h = 0; h < 3; h++)
		for (int c = 0; c < 5; c++)
			printf("%s{\"change\": \"%s\", \"coding\": \"%s\", \"bytes_per_page\": "
			       "%.1f, "
			       "\"mbps\": %.0f}",
			       h || c ? ", " : "", how[h], codings[c], bytes[h][c], mbps[h][c]);
	printf("]}\n");
	ZSTD_freeCCtx(cc);
	free(old);
	free(cur);
	free(buf);
	free(z);
	return 0;
}
