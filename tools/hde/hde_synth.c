/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hde_synth: synthetic QEMU 7.2 migration streams (see hde_synth.h). The
 * record layout follows QEMU 7.2 migration/savevm.c, ram.c and multifd.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hde_synth.h"

struct buf {
	uint8_t *p;
	size_t len, cap;
	int err;
};

static void put(struct buf *b, const void *p, size_t n)
{
	if (b->err)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 1 << 20;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *q = realloc(b->p, cap);
		if (!q) {
			b->err = -ENOMEM;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void u8(struct buf *b, uint8_t v)
{
	put(b, &v, 1);
}

static void be32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	put(b, x, 4);
}

static void be64(struct buf *b, uint64_t v)
{
	be32(b, (uint32_t)(v >> 32));
	be32(b, (uint32_t)v);
}

uint64_t hde_synth_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static const char *const words[] = {
        "the",  "migration", "page",   "memory",  "guest",   "kernel", "of",    "and",     "to",
        "a",    "in",        "is",     "that",    "for",     "it",     "with",  "as",      "was",
        "on",   "be",        "at",     "by",      "this",    "had",    "not",   "are",     "but",
        "from", "or",        "have",   "an",      "they",    "which",  "one",   "you",     "were",
        "her",  "all",       "she",    "there",   "would",   "their",  "we",    "him",     "been",
        "has",  "when",      "who",    "will",    "more",    "no",     "if",    "out",     "so",
        "said", "what",      "up",     "its",     "about",   "into",   "than",  "them",    "can",
        "only", "other",     "new",    "some",    "could",   "time",   "these", "two",     "may",
        "then", "do",        "first",  "any",     "my",      "now",    "such",  "like",    "our",
        "over", "man",       "me",     "even",    "most",    "made",   "after", "also",    "did",
        "many", "before",    "must",   "through", "back",    "years",  "where", "much",    "your",
        "way",  "well",      "down",   "should",  "because", "each",   "just",  "those",   "people",
        "how",  "too",       "little", "state",   "good",    "very",   "make",  "world",   "still",
        "own",  "see",       "men",    "work",    "long",    "get",    "here",  "between", "both",
        "life", "being",
};

void hde_synth_page(uint64_t *rng, int kind, uint8_t *page)
{
	if (kind == 0) {
		memset(page, 0, 4096);
		return;
	}
	if (kind == 1) {
		size_t o = 0;
		while (o < 4096) {
			uint64_t r = hde_synth_rand(rng);
			/* skewed choice: low indexes more often */
			unsigned i = (unsigned)((r & 0x7f) * ((r >> 7) & 0x7f) >> 7);
			const char *w = words[i];
			size_t n = strlen(w);
			for (size_t k = 0; k < n && o < 4096; k++)
				page[o++] = (uint8_t)w[k];
			if (o < 4096)
				page[o++] = ((r >> 20) & 15) == 0 ? '\n' : ' ';
		}
		return;
	}
	/* binary: structs of pointers, small counters, flags and some noise */
	uint64_t *w = (uint64_t *)(void *)page;
	uint64_t base = 0xffff888000000000ull | (hde_synth_rand(rng) & 0x3fffff000ull);
	for (size_t i = 0; i < 512; i += 8) {
		uint64_t r = hde_synth_rand(rng);
		w[i] = base + ((r & 0xffff) << 6);
		w[i + 1] = base + (((r >> 16) & 0xffff) << 6);
		w[i + 2] = (r >> 32) & 0xff;
		w[i + 3] = (r >> 40) & 0x3;
		w[i + 4] = 0;
		w[i + 5] = (r >> 48) & 1 ? hde_synth_rand(rng) : 0;
		w[i + 6] = 0xdead0000ull | ((r >> 50) & 0xff);
		w[i + 7] = i;
	}
}

struct block {
	const char *name;
	uint32_t pages;
};

static void rec_hdr(struct buf *b, const struct block *blk, const struct block **last, uint64_t off,
                    uint32_t flags)
{
	if (*last == blk) {
		be64(b, off | flags | 0x20);
		return;
	}
	be64(b, off | flags);
	u8(b, (uint8_t)strlen(blk->name));
	put(b, blk->name, strlen(blk->name));
	*last = blk;
}

static int page_kind(const struct hde_synth *s, uint32_t i)
{
	uint64_t r = s->seed ^ ((uint64_t)i * 0x9e3779b97f4a7c15ull);
	uint64_t v = hde_synth_rand(&r);
	if ((double)(v >> 11) / 9007199254740992.0 < s->zero_frac)
		return 0;
	return (v & 1) ? 1 : 2;
}

static void device_sections(struct buf *b, uint64_t *rng)
{
	static const char *const devs[] = {"timer",    "cpu_common",       "cpu",   "apic",
	                                   "kvmclock", "0000:00:02.0/vga", "serial"};
	for (uint32_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
		u8(b, 0x04); /* QEMU_VM_SECTION_FULL */
		be32(b, 10 + i);
		u8(b, (uint8_t)strlen(devs[i]));
		put(b, devs[i], strlen(devs[i]));
		be32(b, 0);
		be32(b, 1 + i);
		size_t n = 64 + (hde_synth_rand(rng) & 1023);
		for (size_t k = 0; k < n; k++)
			u8(b, (uint8_t)(hde_synth_rand(rng) & (k & 3 ? 0x0f : 0xff)));
		u8(b, 0x7e); /* footer */
		be32(b, 10 + i);
	}
	u8(b, 0x00); /* QEMU_VM_EOF */
}

static int build_precopy(const struct hde_synth *s, struct buf *b, uint8_t *ram)
{
	uint64_t rng = s->seed * 7 + 1;
	const uint32_t ram_id = 2;
	struct block blocks[3] = {{"pc.ram", s->ram_pages}, {"vga.vram", 64}, {"pc.bios", 16}};
	const struct block *last = NULL;
	_Alignas(8) uint8_t page[4096];

	put(b, "QEVM", 4);
	be32(b, 3);
	u8(b, 0x07); /* QEMU_VM_CONFIGURATION */
	be32(b, 13);
	put(b, "pc-i440fx-7.2", 13);
	for (int k = 0; k < 24; k++)
		u8(b, (uint8_t)k);
	/* ram START: header, MEM_SIZE list, EOS, footer */
	u8(b, 0x01);
	be32(b, ram_id);
	u8(b, 3);
	put(b, "ram", 3);
	be32(b, 0);
	be32(b, 4);
	uint64_t total = 0;
	for (int i = 0; i < 3; i++)
		total += (uint64_t)blocks[i].pages * 4096;
	be64(b, total | 0x04);
	for (int i = 0; i < 3; i++) {
		u8(b, (uint8_t)strlen(blocks[i].name));
		put(b, blocks[i].name, strlen(blocks[i].name));
		be64(b, (uint64_t)blocks[i].pages * 4096);
	}
	be64(b, 0x10);
	u8(b, 0x7e);
	be32(b, ram_id);

	/* first pass, sections of up to 256 records */
	uint32_t in_sec = 0;
	for (int bi = 0; bi < 3; bi++) {
		for (uint32_t i = 0; i < blocks[bi].pages; i++) {
			if (in_sec == 0) {
				u8(b, 0x02);
				be32(b, ram_id);
			}
			int kind = bi == 0 ? page_kind(s, i) : (i % 3 == 0 ? 0 : 2);
			uint8_t *p = bi == 0 ? ram + (size_t)i * 4096 : page;
			hde_synth_page(&rng, kind, p);
			if (kind == 0) {
				rec_hdr(b, &blocks[bi], &last, (uint64_t)i * 4096, 0x02);
				u8(b, 0);
			} else {
				rec_hdr(b, &blocks[bi], &last, (uint64_t)i * 4096, 0x08);
				put(b, p, 4096);
			}
			if (++in_sec == 256) {
				be64(b, 0x10);
				u8(b, 0x7e);
				be32(b, ram_id);
				in_sec = 0;
			}
		}
	}
	if (in_sec) {
		be64(b, 0x10);
		u8(b, 0x7e);
		be32(b, ram_id);
	}
	/* dirty passes: pages with a few bytes changed, re-sent */
	for (uint32_t pass = 0; pass < s->passes; pass++) {
		u8(b, pass + 1 == s->passes ? 0x03 : 0x02);
		be32(b, ram_id);
		last = NULL;
		for (uint32_t k = 0; k < s->dirty_pages; k++) {
			uint32_t i = (uint32_t)(hde_synth_rand(&rng) % s->ram_pages);
			uint8_t *p = ram + (size_t)i * 4096;
			for (uint32_t c = 0; c < s->changed; c++)
				p[hde_synth_rand(&rng) & 4095] = (uint8_t)hde_synth_rand(&rng);
			rec_hdr(b, &blocks[0], &last, (uint64_t)i * 4096, 0x08);
			put(b, p, 4096);
		}
		be64(b, 0x10);
		u8(b, 0x7e);
		be32(b, ram_id);
	}
	device_sections(b, &rng);
	return b->err;
}

static int build_multifd(const struct hde_synth *s, struct buf *b, uint8_t *ram)
{
	uint64_t rng = s->seed * 13 + 5;
	uint8_t zero[64] = {0};

	/* MultiFDInit_t */
	be32(b, 0x11223344);
	be32(b, 1);
	for (int k = 0; k < 16; k++)
		u8(b, (uint8_t)(0xa0 + k));
	u8(b, 1);
	put(b, zero, 7 + 32);
	uint64_t packet_num = 0;
	for (uint32_t pass = 0; pass <= s->passes; pass++) {
		uint32_t n = pass == 0 ? s->ram_pages : s->dirty_pages;
		uint32_t i = 0, idx[128];
		while (i < n) {
			uint32_t np = 0;
			while (np < 128 && i < n) {
				uint32_t pg =
				        pass == 0 ? i
				                  : (uint32_t)(hde_synth_rand(&rng) % s->ram_pages);
				i++;
				if (pass == 0) {
					hde_synth_page(&rng, page_kind(s, pg),
					               ram + (size_t)pg * 4096);
					if (page_kind(s, pg) == 0)
						continue; /* zero pages go on the main channel */
				} else {
					uint8_t *p = ram + (size_t)pg * 4096;
					for (uint32_t c = 0; c < s->changed; c++)
						p[hde_synth_rand(&rng) & 4095] =
						        (uint8_t)hde_synth_rand(&rng);
				}
				idx[np++] = pg;
			}
			be32(b, 0x11223344);
			be32(b, 1);
			be32(b, 0);   /* flags */
			be32(b, 128); /* pages_alloc */
			be32(b, np);
			be32(b, np * 4096);
			be64(b, packet_num++);
			put(b, zero, 32);
			char name[256] = "pc.ram";
			put(b, name, 256);
			for (uint32_t k = 0; k < 128; k++)
				be64(b, k < np ? (uint64_t)idx[k] * 4096 : 0);
			for (uint32_t k = 0; k < np; k++)
				put(b, ram + (size_t)idx[k] * 4096, 4096);
		}
		/* sync packet: no pages */
		be32(b, 0x11223344);
		be32(b, 1);
		be32(b, 1); /* MULTIFD_FLAG_SYNC */
		be32(b, 128);
		be32(b, 0);
		be32(b, 0);
		be64(b, packet_num++);
		put(b, zero, 32);
		char name[256] = "";
		put(b, name, 256);
		for (uint32_t k = 0; k < 128; k++)
			be64(b, 0);
	}
	return b->err;
}

int hde_synth_build(const struct hde_synth *s, uint8_t **out, size_t *len)
{
	struct buf b = {0};
	uint8_t *ram = calloc(s->ram_pages ? s->ram_pages : 1, 4096);
	if (!ram)
		return -ENOMEM;
	int rc = s->multifd ? build_multifd(s, &b, ram) : build_precopy(s, &b, ram);
	free(ram);
	if (rc) {
		free(b.p);
		return rc;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}
