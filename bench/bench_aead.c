/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_aead: what OpenSSL's AES-256-GCM alone does on one core, with AMST's
 * own calls (amst_aead_seal / amst_aead_open: key set once, a nonce per
 * packet, a 16-byte header as AAD), on payloads of one size (8972 bytes: the
 * UDP payload of a 9000-byte IP MTU). The reference for AMST's sealed
 * goodput: bench_amst compares it with this figure measured in the same run.
 * Prints a table, then one line of JSON:
 * {"bench": "aead", "size", "seal_gbps", "seal_gbytes_s", "open_gbps", ...}.
 * Usage: bench_aead [--size BYTES] [--seconds S] [--cpu N]
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "amst_crypto.h"

#define AAD_LEN 16
#define TAG_LEN 16

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct result {
	uint64_t packets;
	double wall, cpu;
};

/* Seal (or seal then open, to measure open on authentic packets) for @p seconds. */
static int run(struct amst_aead *a, int open, uint8_t *buf, size_t size, double seconds,
               struct result *r)
{
	uint8_t aad[AAD_LEN], tag[TAG_LEN];
	memset(aad, 0xA1, sizeof(aad));
	uint64_t pn = 0;
	double t0 = now_s(), c0 = cpu_s(), t = t0;
	while (t - t0 < seconds) {
		for (int i = 0; i < 64; i++, pn++) {
			memcpy(aad + 8, &pn, sizeof(pn));
			if (open) {
				/* buf holds packet pn - 0 sealed just before: open it. */
				if (amst_aead_seal(a, pn, aad, AAD_LEN, buf, size, tag) != 0)
					return -EIO;
				if (amst_aead_open(a, pn, aad, AAD_LEN, buf, size, tag) != 0)
					return -EBADMSG;
			} else if (amst_aead_seal(a, pn, aad, AAD_LEN, buf, size, tag) != 0) {
				return -EIO;
			}
		}
		t = now_s();
	}
	r->packets = pn;
	r->wall = t - t0;
	r->cpu = cpu_s() - c0;
	return 0;
}

int main(int argc, char **argv)
{
	size_t size = 8972;
	double seconds = 2.0;
	int cpu = -1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
			size = (size_t)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--cpu") == 0 && i + 1 < argc)
			cpu = atoi(argv[++i]);
		else if (strcmp(argv[i], "--build") == 0 && i + 1 < argc)
			i++; /* tools/novacron bench passes it; nothing to start here */
		else {
			fprintf(stderr,
			        "usage: bench_aead [--size BYTES] [--seconds S] [--cpu N]\n");
			return 2;
		}
	}
	if (size < 1 || size > 65536 || seconds <= 0 || seconds > 600) {
		fprintf(stderr, "bench_aead: --size must be 1-65536 and --seconds 0-600\n");
		return 2;
	}
	if (cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) != 0)
			perror("bench_aead: sched_setaffinity");
	}
	uint8_t key[AMST_KEY_LEN], iv[AMST_IV_LEN];
	if (amst_random(key, sizeof(key)) != 0 || amst_random(iv, sizeof(iv)) != 0) {
		fprintf(stderr, "bench_aead: no random bytes\n");
		return 1;
	}
	struct amst_aead *a = amst_aead_create(key, iv);
	uint8_t *buf = malloc(size + TAG_LEN);
	if (a == NULL || buf == NULL) {
		fprintf(stderr, "bench_aead: cannot set up the cipher\n");
		return 1;
	}
	for (size_t i = 0; i < size; i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	struct result warm, seal, both;
	if (run(a, 0, buf, size, 0.2, &warm) != 0 || run(a, 0, buf, size, seconds, &seal) != 0 ||
	    run(a, 1, buf, size, seconds, &both) != 0) {
		fprintf(stderr, "bench_aead: a seal or open failed\n");
		return 1;
	}
	amst_aead_destroy(a);
	free(buf);
	double seal_Bps = (double)seal.packets * (double)size / seal.wall;
	/* Per packet, open = (seal + open) - seal. */
	double t_seal = seal.wall / (double)seal.packets;
	double t_both = both.wall / (double)both.packets;
	double open_Bps = t_both > t_seal ? (double)size / (t_both - t_seal) : 0;
	printf("aead: OpenSSL AES-256-GCM on one core, %zu-byte payloads, %d-byte AAD, key set "
	       "once, nonce per packet\n\n",
	       size, AAD_LEN);
	printf("  %-6s  %10s  %10s  %12s  %10s\n", "op", "GB/s", "Gbit/s", "packets/s", "CPU %");
	printf("  %-6s  %10.3f  %10.2f  %12.0f  %10.1f\n", "seal", seal_Bps / 1e9,
	       seal_Bps * 8 / 1e9, (double)seal.packets / seal.wall, 100 * seal.cpu / seal.wall);
	printf("  %-6s  %10.3f  %10.2f  %12.0f  %10s\n", "open", open_Bps / 1e9, open_Bps * 8 / 1e9,
	       open_Bps / (double)size, "(derived)");
	printf("\n{\"bench\": \"aead\", \"size\": %zu, \"aad\": %d, \"seconds\": %.3f, "
	       "\"seal_gbytes_s\": %.4f, \"seal_gbps\": %.3f, \"open_gbytes_s\": %.4f, "
	       "\"open_gbps\": %.3f, \"seal_cpu_pct\": %.1f}\n",
	       size, AAD_LEN, seal.wall, seal_Bps / 1e9, seal_Bps * 8 / 1e9, open_Bps / 1e9,
	       open_Bps * 8 / 1e9, 100 * seal.cpu / seal.wall);
	return 0;
}
