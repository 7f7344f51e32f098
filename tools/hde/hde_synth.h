/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hde_synth: synthetic QEMU 7.2 migration streams for HDE's tests and bench
 * (deterministic from a seed): a plain precopy stream (QEVM header,
 * configuration, "ram" START/PART/END sections with MEM_SIZE, ZERO and PAGE
 * records, CONTINUE flags, several RAM blocks, device sections, EOF) of a
 * guest whose memory is zero, text-like and binary pages, optionally dirtying
 * (later passes re-send pages with a few bytes changed); or a multifd channel
 * stream (MultiFDInit_t, packets of page offsets and pages, sync packets).
 */
#ifndef NC_HDE_SYNTH_H
#define NC_HDE_SYNTH_H

#include <stddef.h>
#include <stdint.h>

struct hde_synth {
	uint64_t seed;
	uint32_t ram_pages;   /* pages of "pc.ram" */
	double zero_frac;     /* share of zero pages, 0..1 */
	uint32_t passes;      /* dirty passes after the first full pass */
	uint32_t dirty_pages; /* pages re-sent per dirty pass */
	uint32_t changed;     /* bytes changed per re-sent page */
	int multifd;          /* 1: a multifd channel stream instead */
};

/* Build the stream into a malloc'd buffer (*out, *len). 0 or -ENOMEM. */
int hde_synth_build(const struct hde_synth *s, uint8_t **out, size_t *len);
/* Fill one page of guest-like memory: kind 0 zero, 1 text-like, 2 binary. */
void hde_synth_page(uint64_t *rng, int kind, uint8_t *page);
uint64_t hde_synth_rand(uint64_t *rng);

#endif
