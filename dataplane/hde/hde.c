/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * HDE encoder, decoder, page cache and frame format (docs/hde.md).
 *
 * Encoder: input is appended to a buffer of batch_bytes + one page; the
 * recogniser reads each byte once as it arrives and reports page bodies.
 * When the buffer holds a batch (or on flush) one frame is built: literal
 * runs and pages as ops (zero / dup / delta / new, each naming the cache
 * slots to read and write), the data they need, then the whole body is coded
 * with the batch's setting. A page body cut by the batch end waits for the
 * next batch (kept < 4096 bytes), unless flushing, when it is sent literally.
 *
 * Cache: cache_slots pages. The encoder indexes them by page key (RAM block
 * and offset) and by content hash (verified with memcmp before use), evicts
 * with CLOCK, and names the slots in the ops, so the decoder just follows.
 */
#define ZSTD_STATIC_LINKING_ONLY
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#include <zstd.h>

#include "hde.h"
#include "hde_rec.h"

#define HDR_SIZE     24u
#define HELLO_SIZE   16u
#define FRAME_MAGIC0 'H'
#define FRAME_MAGIC1 'D'
#define FRAME_VER    1u
#define KIND_HELLO   0u
#define KIND_DATA    1u
#define NO_SLOT      UINT32_MAX
#define BATCH_MIN    (16u << 10)
#define BATCH_MAX    (4u << 20)
#define BATCH_DEF    (1u << 20)
#define DELTA_MAX    (HDE_PAGE_SIZE / 2) /* larger deltas are sent as new pages */

enum { OP_LIT = 0, OP_ZERO, OP_NEW, OP_DUP, OP_DELTA };

/* ---------------------------------------------------------------- memory */

struct hde_mem {
	void *(*alloc)(void *ctx, size_t size);
	void (*free)(void *ctx, void *ptr, size_t size);
	void *ctx;
	size_t bytes, peak;
};

/* Every block carries a 16-byte header: its total size, and how it was got. */
enum { MEM_HEAP = 0, MEM_MAP = 1 };
#define MEM_MAP_MIN (1u << 20) /* zeroed blocks from this size are mmap'ed */

static void *mem_account(struct hde_mem *m, uint8_t *p, size_t total, size_t kind)
{
	memcpy(p, &total, sizeof(total));
	memcpy(p + 8, &kind, sizeof(kind));
	m->bytes += total;
	if (m->bytes > m->peak)
		m->peak = m->bytes;
	return p + 16;
}

static void *mem_alloc(struct hde_mem *m, size_t size)
{
	size_t total = size + 16;
	uint8_t *p = m->alloc ? m->alloc(m->ctx, total) : malloc(total);
	if (!p)
		return NULL;
	return mem_account(m, p, total, MEM_HEAP);
}

/* Zeroed memory. With the default allocator, a large block is mapped from
 * the kernel: fresh zero pages, touched only when used, so a stream's cache
 * of hundreds of MiB costs nothing up front and nothing when freed (a
 * dataplane worker makes and drops encoders and decoders inline: zeroing or
 * poisoning 1 GiB there, as calloc and free do under MALLOC_PERTURB_,
 * stalled it for a second). Not huge pages: with MADV_HUGEPAGE each first
 * touch of 2 MiB cleared it inline, stalling the worker for milliseconds on
 * this VM; wan1g migrations took 1-2 s longer. */
static void *mem_zalloc(struct hde_mem *m, size_t size)
{
	size_t total = size + 16;
	if (m->alloc == NULL && total >= MEM_MAP_MIN) {
		void *p = mmap(NULL, total, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		return mem_account(m, p, total, MEM_MAP);
	}
	void *p = mem_alloc(m, size);
	if (p)
		memset(p, 0, size);
	return p;
}

static void mem_free(struct hde_mem *m, void *ptr)
{
	if (!ptr)
		return;
	uint8_t *p = (uint8_t *)ptr - 16;
	size_t total, kind;
	memcpy(&total, p, sizeof(total));
	memcpy(&kind, p + 8, sizeof(kind));
	m->bytes -= total;
	if (kind == MEM_MAP)
		munmap(p, total);
	else if (m->alloc)
		m->free(m->ctx, p, total);
	else
		free(p);
}

static void *zstd_alloc(void *opaque, size_t size)
{
	return mem_alloc(opaque, size);
}

static void zstd_free(void *opaque, void *addr)
{
	mem_free(opaque, addr);
}

static void mem_init(struct hde_mem *m, const struct hde_params *p)
{
	memset(m, 0, sizeof(*m));
	if (p && p->alloc && p->free) {
		m->alloc = p->alloc;
		m->free = p->free;
		m->ctx = p->alloc_ctx;
	}
}

/* ---------------------------------------------------------------- helpers */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static size_t put_varint(uint8_t *p, uint32_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* Reads a varint from [*p, end); returns 0 or -EBADMSG. */
static int get_varint(const uint8_t **p, const uint8_t *end, uint32_t *v)
{
	uint32_t r = 0;
	for (int shift = 0; shift < 35; shift += 7) {
		if (*p >= end)
			return -EBADMSG;
		uint8_t b = *(*p)++;
		if (shift == 28 && b > 0x0f)
			return -EBADMSG;
		r |= (uint32_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -EBADMSG;
}

static uint32_t crc32c(const uint8_t *p, size_t n, uint32_t crc)
{
	while (n > 0) {
		int k = n > (1u << 30) ? 1 << 30 : (int)n;
		crc = crc32_iscsi((unsigned char *)(uintptr_t)p, k, crc);
		p += k;
		n -= (size_t)k;
	}
	return crc;
}

static inline uint64_t ld64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v)); /* pages in the input buffer need not be aligned */
	return v;
}

static int page_is_zero(const uint8_t *p)
{
	for (size_t i = 0; i < HDE_PAGE_SIZE; i += 64) {
		if (ld64(p + i) | ld64(p + i + 8) | ld64(p + i + 16) | ld64(p + i + 24) |
		    ld64(p + i + 32) | ld64(p + i + 40) | ld64(p + i + 48) | ld64(p + i + 56))
			return 0;
	}
	return 1;
}

/* A fast 64-bit content fingerprint (not cryptographic: matches are always
 * verified with memcmp before use). */
static uint64_t page_hash(const uint8_t *p)
{
	const uint64_t k = 0x9e3779b97f4a7c15ull;
	uint64_t a = 1, b = 2, c = 3, d = 4;
	for (size_t i = 0; i < HDE_PAGE_SIZE; i += 32) {
		a = (a ^ ld64(p + i)) * k;
		b = (b ^ ld64(p + i + 8)) * k;
		c = (c ^ ld64(p + i + 16)) * k;
		d = (d ^ ld64(p + i + 24)) * k;
		a ^= a >> 29;
		b ^= b >> 31;
		c ^= c >> 27;
		d ^= d >> 33;
	}
	uint64_t h = a ^ (b * 3) ^ (c * 5) ^ (d * 7);
	h ^= h >> 32;
	h *= k;
	return h ^ (h >> 29);
}

const char *hde_setting_name(enum hde_setting s)
{
	static const char *const names[HDE_SET__COUNT] = {
	        "none", "zstd-fast", "zstd1", "igzip0", "igzip1", "zstd3", "zstd9", "zstd19",
	};
	return (unsigned)s < HDE_SET__COUNT ? names[s] : "?";
}

const char *hde_tier_name(enum hde_tier t)
{
	static const char *const names[HDE_TIER__COUNT] = {"zero", "dup", "delta", "new",
	                                                   "literal"};
	return (unsigned)t < HDE_TIER__COUNT ? names[t] : "?";
}

int hde_parse_setting(const char *s, enum hde_mode *mode, enum hde_setting *setting)
{
	if (!strcmp(s, "adaptive")) {
		*mode = HDE_MODE_ADAPTIVE;
		*setting = HDE_SET_ZSTD_FAST;
		return 0;
	}
	if (!strcmp(s, "fastest")) {
		*mode = HDE_MODE_FASTEST;
		*setting = HDE_SET_NONE;
		return 0;
	}
	if (!strcmp(s, "strongest")) {
		*mode = HDE_MODE_STRONGEST;
		*setting = HDE_SET_ZSTD19;
		return 0;
	}
	for (int i = 0; i < HDE_SET__COUNT; i++) {
		if (!strcmp(s, hde_setting_name((enum hde_setting)i))) {
			*mode = HDE_MODE_FIXED;
			*setting = (enum hde_setting)i;
			return 0;
		}
	}
	return -EINVAL;
}

static int setting_zstd_level(enum hde_setting s)
{
	switch (s) {
	case HDE_SET_ZSTD_FAST:
		return -8;
	case HDE_SET_ZSTD1:
		return 1;
	case HDE_SET_ZSTD3:
		return 3;
	case HDE_SET_ZSTD9:
		return 9;
	case HDE_SET_ZSTD19:
		return 19;
	default:
		return 0;
	}
}

static int setting_is_igzip(enum hde_setting s)
{
	return s == HDE_SET_IGZIP0 || s == HDE_SET_IGZIP1;
}

/* Bytes of body (u32 ops length, ops, data) for raw_max stream bytes. */
static size_t body_bound(size_t raw_max)
{
	return 4 + raw_max + (raw_max / HDE_PAGE_SIZE + 2) * 32;
}

/* Encoder: 1 MiB, 4 MiB for the strongest setting (zstd finds more in a
 * larger window); decoder: the largest an encoder may use. */
static size_t batch_of(const struct hde_params *p, int decoder)
{
	if (p && p->batch_bytes)
		return p->batch_bytes;
	if (decoder || (p && p->mode == HDE_MODE_STRONGEST))
		return BATCH_MAX;
	return BATCH_DEF;
}

size_t hde_frame_bound(size_t batch_bytes)
{
	if (!batch_bytes)
		batch_bytes = BATCH_DEF;
	return HDR_SIZE + body_bound(batch_bytes + HDE_PAGE_SIZE);
}

/* ---------------------------------------------------------------- hash map */

struct hent {
	uint64_t k;
	uint32_t v; /* NO_SLOT = empty */
	uint32_t pad;
};

struct hmap {
	struct hent *e;
	uint32_t mask;
};

static size_t hmap_cap(uint32_t n)
{
	size_t cap = 16;
	while (cap < (size_t)n * 2)
		cap <<= 1;
	return cap;
}

static int hmap_init(struct hmap *h, struct hde_mem *m, uint32_t n)
{
	size_t cap = hmap_cap(n);
	h->e = mem_alloc(m, cap * sizeof(*h->e));
	if (!h->e)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++)
		h->e[i].v = NO_SLOT;
	h->mask = (uint32_t)(cap - 1);
	return 0;
}

static uint32_t hmap_idx(const struct hmap *h, uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return (uint32_t)k & h->mask;
}

static uint32_t hmap_get(const struct hmap *h, uint64_t k)
{
	for (uint32_t i = hmap_idx(h, k);; i = (i + 1) & h->mask) {
		if (h->e[i].v == NO_SLOT)
			return NO_SLOT;
		if (h->e[i].k == k)
			return h->e[i].v;
	}
}

static void hmap_put(struct hmap *h, uint64_t k, uint32_t v)
{
	uint32_t i = hmap_idx(h, k);
	while (h->e[i].v != NO_SLOT && h->e[i].k != k)
		i = (i + 1) & h->mask;
	h->e[i].k = k;
	h->e[i].v = v;
}

/* Remove k if it maps to v (backward-shift deletion, linear probing). */
static void hmap_del(struct hmap *h, uint64_t k, uint32_t v)
{
	uint32_t i = hmap_idx(h, k);
	while (h->e[i].v != NO_SLOT && h->e[i].k != k)
		i = (i + 1) & h->mask;
	if (h->e[i].v == NO_SLOT || h->e[i].v != v)
		return;
	uint32_t j = i;
	for (;;) {
		h->e[i].v = NO_SLOT;
		for (;;) {
			j = (j + 1) & h->mask;
			if (h->e[j].v == NO_SLOT)
				return;
			uint32_t home = hmap_idx(h, h->e[j].k);
			/* can e[j] move to the hole at i? yes unless home lies in (i, j] */
			if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
				continue;
			break;
		}
		h->e[i] = h->e[j];
		i = j;
	}
}

/* ---------------------------------------------------------------- cache */

struct slot_meta {
	uint64_t key;
	uint64_t hash;
	uint8_t used, ref, keyed;
};

struct cache {
	uint8_t *pages;
	struct slot_meta *meta; /* encoder only */
	uint32_t *free_stack;   /* encoder only */
	struct hmap by_key, by_hash;
	uint32_t n, n_free, hand, used;
	size_t bytes;
};

static size_t enc_cache_size(uint32_t n)
{
	if (!n)
		return 0;
	return (size_t)n * HDE_PAGE_SIZE + (size_t)n * sizeof(struct slot_meta) +
	       (size_t)n * sizeof(uint32_t) + 2 * hmap_cap(n) * sizeof(struct hent) + 6 * 16;
}

/* Largest slot count whose encoder cache fits in limit. */
static uint32_t cache_slots_for(size_t limit)
{
	uint64_t n = limit / (HDE_PAGE_SIZE + sizeof(struct slot_meta) + 4 + 64);
	if (n > (1u << 24))
		n = 1u << 24;
	while (n > 0 && enc_cache_size((uint32_t)n) > limit)
		n--;
	return (uint32_t)n;
}

static int cache_init_enc(struct cache *c, struct hde_mem *m, uint32_t n)
{
	size_t before = m->bytes;
	memset(c, 0, sizeof(*c));
	c->n = n;
	if (!n)
		return 0;
	c->pages = mem_zalloc(m, (size_t)n * HDE_PAGE_SIZE);
	c->meta = mem_zalloc(m, (size_t)n * sizeof(*c->meta));
	c->free_stack = mem_alloc(m, (size_t)n * sizeof(uint32_t));
	if (!c->pages || !c->meta || !c->free_stack || hmap_init(&c->by_key, m, n) ||
	    hmap_init(&c->by_hash, m, n))
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		c->free_stack[i] = n - 1 - i;
	c->n_free = n;
	c->bytes = m->bytes - before;
	return 0;
}

static void cache_fini(struct cache *c, struct hde_mem *m)
{
	mem_free(m, c->pages);
	mem_free(m, c->meta);
	mem_free(m, c->free_stack);
	mem_free(m, c->by_key.e);
	mem_free(m, c->by_hash.e);
	memset(c, 0, sizeof(*c));
}

static void slot_release(struct cache *c, uint32_t s)
{
	struct slot_meta *sm = &c->meta[s];
	if (sm->keyed)
		hmap_del(&c->by_key, sm->key, s);
	hmap_del(&c->by_hash, sm->hash, s);
	sm->used = sm->ref = sm->keyed = 0;
	c->used--;
}

/* A slot for a new page: a free one, else the CLOCK victim. */
static uint32_t slot_alloc(struct cache *c)
{
	if (c->n_free) {
		uint32_t s = c->free_stack[--c->n_free];
		c->used++;
		c->meta[s].used = 1;
		return s;
	}
	for (;;) {
		uint32_t s = c->hand;
		c->hand = c->hand + 1 == c->n ? 0 : c->hand + 1;
		struct slot_meta *sm = &c->meta[s];
		if (sm->ref) {
			sm->ref = 0;
			continue;
		}
		slot_release(c, s);
		c->used++;
		sm->used = 1;
		return s;
	}
}

static void slot_free(struct cache *c, uint32_t s)
{
	slot_release(c, s);
	c->free_stack[c->n_free++] = s;
}

/* Slot s now holds content with hash h for key. */
static void slot_set(struct cache *c, uint32_t s, uint64_t key, uint64_t h, int new_key)
{
	struct slot_meta *sm = &c->meta[s];
	if (sm->hash != h || new_key)
		hmap_del(&c->by_hash, sm->hash, s);
	sm->hash = h;
	hmap_put(&c->by_hash, h, s);
	if (new_key) {
		sm->key = key;
		sm->keyed = 1;
		hmap_put(&c->by_key, key, s);
	}
}

/* ---------------------------------------------------------------- policy */

struct hde_policy {
	double rate;                  /* link bytes/s, 0 = unknown */
	double speed[HDE_SET__COUNT]; /* EWMA input bytes per ns */
	double ratio[HDE_SET__COUNT]; /* EWMA out/in */
	uint32_t seen[HDE_SET__COUNT];
	uint64_t batches;
	enum hde_setting cur;
	int explore_dir;
	uint64_t max_ns; /* longest a batch may take to code (0: no bound) */
	size_t batch;    /* input bytes of a batch, for max_ns */
};

/* Input bytes per ns a setting is assumed to code until measured (on mixed
 * guest memory, DESIGN.md; conservative): keeps a worker with a latency
 * bound from trying a setting that would stall it. */
static const double prior_speed[HDE_SET__COUNT] = {
        [HDE_SET_NONE] = 10.0,  [HDE_SET_ZSTD_FAST] = 0.8, [HDE_SET_ZSTD1] = 0.4,
        [HDE_SET_IGZIP0] = 0.4, [HDE_SET_IGZIP1] = 0.3,    [HDE_SET_ZSTD3] = 0.15,
        [HDE_SET_ZSTD9] = 0.03, [HDE_SET_ZSTD19] = 0.003,
};

/* May setting s code a batch within the latency bound, at @p speed? */
static bool speed_allowed(const struct hde_policy *p, int s, double speed)
{
	if (s == HDE_SET_NONE || p->max_ns == 0 || p->batch == 0)
		return true;
	return (double)p->batch / speed <= (double)p->max_ns;
}

static bool policy_allowed(const struct hde_policy *p, int s)
{
	return speed_allowed(p, s, p->seen[s] ? p->speed[s] : prior_speed[s]);
}

static void policy_init(struct hde_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->cur = HDE_SET_ZSTD_FAST;
	p->explore_dir = 1;
}

struct hde_policy *hde_policy_create(void)
{
	struct hde_policy *p = malloc(sizeof(*p));
	if (p)
		policy_init(p);
	return p;
}

void hde_policy_destroy(struct hde_policy *p)
{
	free(p);
}

void hde_policy_set_link_rate(struct hde_policy *p, double bytes_per_s)
{
	p->rate = bytes_per_s > 0 ? bytes_per_s : 0;
}

void hde_policy_record(struct hde_policy *p, enum hde_setting s, size_t in, size_t out, uint64_t ns)
{
	if ((unsigned)s >= HDE_SET__COUNT || in == 0)
		return;
	double speed = (double)in / (double)(ns ? ns : 1);
	double ratio = (double)out / (double)in;
	/* A frame counts by its size against a batch: a small one (a flush
	 * after 1 ms without input, a multifd header) is mostly fixed costs,
	 * and taken at full weight it once shut settings out for good (a
	 * 64-byte first frame; the rest of a 64 MiB stream then went raw). */
	double w = p->batch ? (double)in / (double)p->batch : 1.0;
	if (w > 1.0)
		w = 1.0;
	if (!p->seen[s]) {
		/* The first measure of a setting replaces its prior; one from a
		 * frame under a sixteenth of a batch tells nothing. */
		if (w < 1.0 / 16)
			return;
		p->speed[s] = speed;
		p->ratio[s] = ratio;
	} else { /* an EWMA, 0.2 a batch */
		p->speed[s] += (speed - p->speed[s]) * 0.2 * w;
		p->ratio[s] += (ratio - p->ratio[s]) * 0.2 * w;
	}
	p->seen[s]++;
}

/* Seconds per input byte with setting s on this link. */
static double policy_cost(const struct hde_policy *p, int s)
{
	double enc = 1e-9 / p->speed[s];
	if (p->rate <= 0)
		return enc;
	double wire = p->ratio[s] / p->rate;
	return enc > wire ? enc : wire;
}

enum hde_setting hde_policy_choose(struct hde_policy *p)
{
	p->batches++;
	if (p->rate <= 0)
		return p->cur = HDE_SET_ZSTD_FAST; /* unknown link: assume fast */
	for (int s = 0; s < HDE_SET__COUNT; s++) {
		if (!p->seen[s] && policy_allowed(p, s))
			return (enum hde_setting)s; /* measure every setting once */
	}
	int best = 0;
	for (int s = 1; s < HDE_SET__COUNT; s++) {
		if (p->seen[s] && policy_allowed(p, s) && policy_cost(p, s) < policy_cost(p, best))
			best = s;
	}
	p->cur = (enum hde_setting)best;
	if (p->batches % 64 == 0) {
		int n = best + p->explore_dir;
		p->explore_dir = -p->explore_dir;
		/* A neighbour shut out by a slow measure or two (a descheduled
		 * worker counts wall time) is tried again if its prior allows
		 * it; one measured slow more often stays out. */
		if (n >= 0 && n < HDE_SET__COUNT &&
		    (policy_allowed(p, n) ||
		     (p->seen[n] < 3 && speed_allowed(p, n, prior_speed[n]))))
			return (enum hde_setting)n;
	}
	return p->cur;
}

/* ---------------------------------------------------------------- codecs */

struct codec {
	ZSTD_CCtx *cctx[HDE_SET__COUNT];
	ZSTD_DCtx *dctx;
	struct isal_zstream *zs;
	uint8_t *lvl1_buf;
	struct inflate_state *inf;
};

/* Code body into dst (cap bytes); returns the coded size, or 0 if it did not
 * fit or did not shrink (the caller then stores the body raw). */
static size_t codec_encode(struct codec *c, enum hde_setting s, const uint8_t *body, size_t n,
                           uint8_t *dst, size_t cap)
{
	if (s == HDE_SET_NONE)
		return 0;
	if (setting_is_igzip(s)) {
		struct isal_zstream *zs = c->zs;
		isal_deflate_stateless_init(zs);
		zs->level = s == HDE_SET_IGZIP1 ? 1 : 0;
		zs->level_buf = s == HDE_SET_IGZIP1 ? c->lvl1_buf : NULL;
		zs->level_buf_size = s == HDE_SET_IGZIP1 ? ISAL_DEF_LVL1_DEFAULT : 0;
		zs->end_of_stream = 1;
		zs->flush = NO_FLUSH;
		zs->next_in = (uint8_t *)(uintptr_t)body;
		zs->avail_in = (uint32_t)n;
		zs->next_out = dst;
		zs->avail_out = (uint32_t)(cap < n ? cap : n);
		if (isal_deflate_stateless(zs) != COMP_OK)
			return 0;
		return zs->total_out < n ? zs->total_out : 0;
	}
	ZSTD_CCtx *cc = c->cctx[s];
	if (!cc)
		return 0;
	size_t r = ZSTD_compress2(cc, dst, cap < n ? cap : n, body, n);
	if (ZSTD_isError(r) || r >= n)
		return 0;
	return r;
}

/* Decode n coded bytes into body (exactly want bytes). 0 or -EBADMSG. */
static int codec_decode(struct codec *c, unsigned codec, const uint8_t *src, size_t n,
                        uint8_t *body, size_t want)
{
	if (setting_is_igzip((enum hde_setting)codec)) {
		struct inflate_state *st = c->inf;
		isal_inflate_init(st);
		st->next_in = (uint8_t *)(uintptr_t)src;
		st->avail_in = (uint32_t)n;
		st->next_out = body;
		st->avail_out = (uint32_t)want;
		if (isal_inflate_stateless(st) != ISAL_DECOMP_OK || st->total_out != want)
			return -EBADMSG;
		return 0;
	}
	if (codec >= HDE_SET__COUNT || setting_zstd_level((enum hde_setting)codec) == 0)
		return -EBADMSG;
	unsigned long long fsz = ZSTD_getFrameContentSize(src, n);
	if (fsz != want)
		return -EBADMSG;
	size_t r = ZSTD_decompressDCtx(c->dctx, body, want, src, n);
	if (ZSTD_isError(r) || r != want)
		return -EBADMSG;
	return 0;
}

/* ---------------------------------------------------------------- encoder */

struct hde_enc {
	struct hde_mem mem;
	struct hde_params p;
	size_t batch;
	struct cache cache;
	struct codec codec;
	struct hde_rec *rec;
	struct hde_policy policy;
	uint8_t *ib; /* input: stream bytes [base, base + fill) */
	size_t fill, ib_cap;
	uint64_t base;
	struct hde_rec_page *ev;
	size_t n_ev, ev_cap;
	uint8_t *ops;  /* this frame's ops */
	uint8_t *body; /* this frame's body: data | ops | u32 ops length */
	uint8_t *cbuf; /* the body coded */
	size_t ops_len, data_len, ops_cap, body_cap;
	/* the frame being read out: fhdr[0, hdr_len) then payload[0, pay_len) */
	uint8_t fhdr[HDR_SIZE + HELLO_SIZE];
	const uint8_t *payload;
	size_t hdr_len, pay_len, f_len, f_off;
	int hello_sent;
	int err;
	uint64_t tier_body[HDE_TIER__COUNT]; /* this frame's body bytes per tier */
	struct hde_stats st;
};

static int enc_alloc_codecs(struct hde_enc *e)
{
	ZSTD_customMem cm = {zstd_alloc, zstd_free, &e->mem};
	for (int s = 0; s < HDE_SET__COUNT; s++) {
		int lvl = setting_zstd_level((enum hde_setting)s);
		int want = e->p.mode == HDE_MODE_ADAPTIVE ||
		           (e->p.mode == HDE_MODE_FIXED && e->p.setting == (enum hde_setting)s) ||
		           (e->p.mode == HDE_MODE_STRONGEST && s == HDE_SET_ZSTD19);
		if (!lvl || !want)
			continue;
		e->codec.cctx[s] = ZSTD_createCCtx_advanced(cm);
		if (!e->codec.cctx[s])
			return -ENOMEM;
		ZSTD_CCtx_setParameter(e->codec.cctx[s], ZSTD_c_compressionLevel, lvl);
		ZSTD_CCtx_setParameter(e->codec.cctx[s], ZSTD_c_checksumFlag, 0);
		ZSTD_CCtx_setParameter(e->codec.cctx[s], ZSTD_c_contentSizeFlag, 1);
	}
	e->codec.zs = mem_alloc(&e->mem, sizeof(*e->codec.zs));
	e->codec.lvl1_buf = mem_alloc(&e->mem, ISAL_DEF_LVL1_DEFAULT);
	if (!e->codec.zs || !e->codec.lvl1_buf)
		return -ENOMEM;
	return 0;
}

static void codec_fini(struct codec *c, struct hde_mem *m)
{
	for (int s = 0; s < HDE_SET__COUNT; s++)
		ZSTD_freeCCtx(c->cctx[s]);
	ZSTD_freeDCtx(c->dctx);
	mem_free(m, c->zs);
	mem_free(m, c->lvl1_buf);
	mem_free(m, c->inf);
	memset(c, 0, sizeof(*c));
}

static int check_params(const struct hde_params *p)
{
	if (!p)
		return 0;
	if (p->batch_bytes && (p->batch_bytes < BATCH_MIN || p->batch_bytes > BATCH_MAX))
		return -EINVAL;
	if ((unsigned)p->mode > HDE_MODE_STRONGEST || (unsigned)p->setting >= HDE_SET__COUNT)
		return -EINVAL;
	if (!p->alloc != !p->free)
		return -EINVAL;
	return 0;
}

_Static_assert(offsetof(struct hde_enc, mem) == 0, "codec_obj: mem comes first");

/* The zeroed object of an encoder or decoder (its struct hde_mem first),
 * allocated through the params' allocator and accounted in its own mem.
 * NULL with errno EINVAL (bad params) or ENOMEM. */
static void *codec_obj(const struct hde_params *params, size_t size)
{
	struct hde_mem mem;
	int rc = check_params(params);
	if (rc) {
		errno = -rc;
		return NULL;
	}
	mem_init(&mem, params);
	struct hde_mem *obj = mem_zalloc(&mem, size);
	if (!obj) {
		errno = ENOMEM;
		return NULL;
	}
	*obj = mem;
	return obj;
}

struct hde_enc *hde_enc_create(const struct hde_params *params)
{
	struct hde_enc *e = codec_obj(params, sizeof(*e));
	if (!e)
		return NULL;
	if (params)
		e->p = *params;
	if (e->p.mode == HDE_MODE_FASTEST)
		e->p.setting = HDE_SET_NONE;
	else if (e->p.mode == HDE_MODE_STRONGEST)
		e->p.setting = HDE_SET_ZSTD19;
	e->batch = batch_of(params, 0);
	e->ib_cap = e->batch + HDE_PAGE_SIZE;
	e->ev_cap = e->ib_cap / HDE_PAGE_SIZE + 4;
	e->ops_cap = (e->ib_cap / HDE_PAGE_SIZE + 2) * 32;
	e->body_cap = body_bound(e->ib_cap);
	policy_init(&e->policy);
	e->policy.max_ns = e->p.max_batch_ns;
	e->policy.batch = e->batch;
	e->ib = mem_alloc(&e->mem, e->ib_cap);
	e->ev = mem_alloc(&e->mem, e->ev_cap * sizeof(*e->ev));
	e->rec = mem_alloc(&e->mem, sizeof(*e->rec));
	e->ops = mem_alloc(&e->mem, e->ops_cap);
	e->body = mem_alloc(&e->mem, e->body_cap);
	e->cbuf = mem_alloc(&e->mem, e->body_cap);
	if (!e->ib || !e->ev || !e->rec || !e->ops || !e->body || !e->cbuf ||
	    cache_init_enc(&e->cache, &e->mem, cache_slots_for(e->p.cache_bytes)) ||
	    enc_alloc_codecs(e)) {
		hde_enc_destroy(e);
		errno = ENOMEM;
		return NULL;
	}
	hde_rec_init(e->rec);
	return e;
}

void hde_enc_destroy(struct hde_enc *e)
{
	if (!e)
		return;
	struct hde_mem mem = e->mem;
	codec_fini(&e->codec, &e->mem);
	cache_fini(&e->cache, &e->mem);
	mem_free(&e->mem, e->ib);
	mem_free(&e->mem, e->ev);
	mem_free(&e->mem, e->rec);
	mem_free(&e->mem, e->ops);
	mem_free(&e->mem, e->body);
	mem_free(&e->mem, e->cbuf);
	mem = e->mem;
	mem_free(&mem, e);
}

void hde_enc_set_link_rate(struct hde_enc *e, double bytes_per_s)
{
	hde_policy_set_link_rate(&e->policy, bytes_per_s);
}

size_t hde_enc_pending(const struct hde_enc *e)
{
	return e->fill + (e->f_len - e->f_off) + (e->hello_sent ? 0 : HDR_SIZE + HELLO_SIZE);
}

static void enc_stats_fill(const struct hde_enc *e, struct hde_stats *st)
{
	*st = e->st;
	st->rec_pages = e->rec->pages;
	st->rec_resyncs = e->rec->resyncs;
	st->rec_lost = e->rec->lost;
	st->cache_bytes = e->cache.bytes;
	st->cache_limit = e->p.cache_bytes;
	st->cache_slots = e->cache.n;
	st->cache_used = e->cache.used;
	st->mem_bytes = e->mem.bytes;
	st->mem_peak = e->mem.peak;
}

void hde_enc_stats(const struct hde_enc *e, struct hde_stats *st)
{
	enc_stats_fill(e, st);
}

static void write_header(uint8_t *h, unsigned kind, unsigned codec, uint32_t payload, uint32_t body,
                         uint32_t raw)
{
	h[0] = FRAME_MAGIC0;
	h[1] = FRAME_MAGIC1;
	h[2] = FRAME_VER;
	h[3] = (uint8_t)kind;
	h[4] = (uint8_t)codec;
	h[5] = h[6] = h[7] = 0;
	put32(h + 8, payload);
	put32(h + 12, body);
	put32(h + 16, raw);
}

static void seal_frame(uint8_t *h, const uint8_t *payload, size_t n)
{
	uint32_t crc = crc32c(h, 20, 0);
	crc = crc32c(payload, n, crc);
	put32(h + 20, crc);
}

static void enc_hello(struct hde_enc *e)
{
	uint8_t *f = e->fhdr;
	write_header(f, KIND_HELLO, HDE_SET_NONE, HELLO_SIZE, HELLO_SIZE, 0);
	put32(f + HDR_SIZE, HDE_PAGE_SIZE);
	put32(f + HDR_SIZE + 4, e->cache.n);
	put32(f + HDR_SIZE + 8, (uint32_t)e->batch);
	put32(f + HDR_SIZE + 12, 0);
	seal_frame(f, f + HDR_SIZE, HELLO_SIZE);
	e->hdr_len = e->f_len = HDR_SIZE + HELLO_SIZE;
	e->pay_len = 0;
	e->payload = NULL;
	e->f_off = 0;
	e->hello_sent = 1;
	e->st.bytes_out += e->f_len;
}

static void emit_op(struct hde_enc *e, enum hde_tier t, uint8_t op, uint32_t a, uint32_t b,
                    int nargs)
{
	size_t n0 = e->ops_len;
	e->ops[e->ops_len++] = op;
	if (nargs > 0)
		e->ops_len += put_varint(e->ops + e->ops_len, a);
	if (nargs > 1)
		e->ops_len += put_varint(e->ops + e->ops_len, b);
	e->tier_body[t] += e->ops_len - n0;
}

static void emit_op3(struct hde_enc *e, enum hde_tier t, uint8_t op, uint32_t a, uint32_t b,
                     uint32_t c)
{
	emit_op(e, t, op, a, b, 2);
	size_t n = put_varint(e->ops + e->ops_len, c);
	e->ops_len += n;
	e->tier_body[t] += n;
}

/*
 * Sparse delta of page p against old: runs of (varint equal bytes, varint
 * changed bytes, the changed bytes' new values); a run of changed bytes ends
 * at 4 equal bytes. Returns its length, or 0 if it would exceed max.
 */
static size_t delta_encode(const uint8_t *p, const uint8_t *old, uint8_t *d, size_t max)
{
	size_t i = 0, last = 0, n = 0;
	while (i < HDE_PAGE_SIZE) {
		while (i < HDE_PAGE_SIZE && (i & 7) && p[i] == old[i])
			i++;
		while (i + 8 <= HDE_PAGE_SIZE) {
			if (ld64(p + i) != ld64(old + i))
				break;
			i += 8;
		}
		while (i < HDE_PAGE_SIZE && p[i] == old[i])
			i++;
		if (i == HDE_PAGE_SIZE)
			break;
		size_t start = i, eq = 0;
		while (i < HDE_PAGE_SIZE && eq < 4) {
			eq = p[i] == old[i] ? eq + 1 : 0;
			i++;
		}
		size_t end = i - eq;
		if (n + 10 + (end - start) > max)
			return 0;
		n += put_varint(d + n, (uint32_t)(start - last));
		n += put_varint(d + n, (uint32_t)(end - start));
		memcpy(d + n, p + start, end - start);
		n += end - start;
		last = end;
	}
	return n;
}

static void enc_literal(struct hde_enc *e, const uint8_t *p, size_t n)
{
	if (!n)
		return;
	emit_op(e, HDE_TIER_LITERAL, OP_LIT, (uint32_t)n, 0, 1);
	memcpy(e->body + e->data_len, p, n);
	e->data_len += n;
	e->tier_body[HDE_TIER_LITERAL] += n;
	e->st.tier[HDE_TIER_LITERAL].pages++;
	e->st.tier[HDE_TIER_LITERAL].bytes_in += n;
}

static void enc_page(struct hde_enc *e, const uint8_t *p, uint64_t key)
{
	struct cache *c = &e->cache;
	enum hde_tier t;

	if (page_is_zero(p)) {
		if (c->n) {
			uint32_t ks = hmap_get(&c->by_key, key);
			if (ks != NO_SLOT)
				slot_free(c, ks);
		}
		emit_op(e, HDE_TIER_ZERO, OP_ZERO, 0, 0, 0);
		t = HDE_TIER_ZERO;
		goto out;
	}
	if (!c->n) {
		emit_op(e, HDE_TIER_NEW, OP_NEW, 0, 0, 1);
		memcpy(e->body + e->data_len, p, HDE_PAGE_SIZE);
		e->data_len += HDE_PAGE_SIZE;
		e->tier_body[HDE_TIER_NEW] += HDE_PAGE_SIZE;
		t = HDE_TIER_NEW;
		goto out;
	}
	uint64_t h = page_hash(p);
	uint32_t ks = hmap_get(&c->by_key, key);
	if (ks != NO_SLOT && c->meta[ks].hash == h &&
	    !memcmp(c->pages + (size_t)ks * HDE_PAGE_SIZE, p, HDE_PAGE_SIZE)) {
		c->meta[ks].ref = 1;
		emit_op(e, HDE_TIER_DUP, OP_DUP, ks, 0, 2);
		t = HDE_TIER_DUP;
		goto out;
	}
	uint32_t cs = hmap_get(&c->by_hash, h);
	if (cs != NO_SLOT && !memcmp(c->pages + (size_t)cs * HDE_PAGE_SIZE, p, HDE_PAGE_SIZE)) {
		c->meta[cs].ref = 1;
		uint32_t dst = NO_SLOT;
		if (ks != NO_SLOT) {
			dst = ks;
			memcpy(c->pages + (size_t)ks * HDE_PAGE_SIZE, p, HDE_PAGE_SIZE);
			slot_set(c, ks, key, h, 0);
		}
		emit_op(e, HDE_TIER_DUP, OP_DUP, cs, dst + 1, 2);
		t = HDE_TIER_DUP;
		goto out;
	}
	uint8_t *d = e->body + e->data_len;
	if (ks != NO_SLOT) {
		uint8_t *old = c->pages + (size_t)ks * HDE_PAGE_SIZE;
		size_t dn = delta_encode(p, old, d, DELTA_MAX);
		memcpy(old, p, HDE_PAGE_SIZE);
		slot_set(c, ks, key, h, 0);
		c->meta[ks].ref = 1;
		if (dn) {
			emit_op3(e, HDE_TIER_DELTA, OP_DELTA, ks, ks + 1, (uint32_t)dn);
			e->data_len += dn;
			e->tier_body[HDE_TIER_DELTA] += dn;
			t = HDE_TIER_DELTA;
			goto out;
		}
		memcpy(d, p, HDE_PAGE_SIZE);
		emit_op(e, HDE_TIER_NEW, OP_NEW, ks + 1, 0, 1);
		t = HDE_TIER_NEW;
	} else {
		uint32_t s = slot_alloc(c);
		memcpy(c->pages + (size_t)s * HDE_PAGE_SIZE, p, HDE_PAGE_SIZE);
		slot_set(c, s, key, h, 1);
		memcpy(d, p, HDE_PAGE_SIZE);
		emit_op(e, HDE_TIER_NEW, OP_NEW, s + 1, 0, 1);
		t = HDE_TIER_NEW;
	}
	e->data_len += HDE_PAGE_SIZE;
	e->tier_body[t] += HDE_PAGE_SIZE;
out:
	e->st.tier[t].pages++;
	e->st.tier[t].bytes_in += HDE_PAGE_SIZE;
}

static enum hde_setting enc_choose(struct hde_enc *e)
{
	if (e->p.mode == HDE_MODE_ADAPTIVE)
		return hde_policy_choose(&e->policy);
	return e->p.setting;
}

/* Frame the buffered input; all of it if final, else up to the first page
 * body the buffer holds only in part. */
static int enc_frame(struct hde_enc *e, int final)
{
	uint64_t t0 = now_ns();
	size_t cut = e->fill, k = 0;

	if (!final && e->n_ev) {
		const struct hde_rec_page *last = &e->ev[e->n_ev - 1];
		if (last->pos + HDE_PAGE_SIZE > e->base + e->fill && last->pos > e->base)
			cut = (size_t)(last->pos - e->base);
	}
	e->ops_len = e->data_len = 0;
	memset(e->tier_body, 0, sizeof(e->tier_body));
	size_t lit = 0;
	for (k = 0; k < e->n_ev; k++) {
		const struct hde_rec_page *ev = &e->ev[k];
		if (ev->pos < e->base + lit)
			continue; /* cannot happen: bodies do not overlap */
		size_t off = (size_t)(ev->pos - e->base);
		if (off + HDE_PAGE_SIZE > cut)
			break;
		enc_literal(e, e->ib + lit, off - lit);
		enc_page(e, e->ib + off, ev->key);
		lit = off + HDE_PAGE_SIZE;
	}
	enc_literal(e, e->ib + lit, cut - lit);
	/* keep the reports of bodies not yet framed */
	size_t keep = 0;
	for (size_t j = k; j < e->n_ev; j++) {
		if (e->ev[j].pos >= e->base + cut)
			e->ev[keep++] = e->ev[j];
	}
	e->n_ev = keep;

	/* body = data | ops | u32 ops_len */
	memcpy(e->body + e->data_len, e->ops, e->ops_len);
	size_t body_len = e->data_len + e->ops_len + 4;
	put32(e->body + body_len - 4, (uint32_t)e->ops_len);

	enum hde_setting s = enc_choose(e);
	size_t payload = codec_encode(&e->codec, s, e->body, body_len, e->cbuf, e->body_cap);
	unsigned codec = (unsigned)s;
	e->payload = e->cbuf;
	if (!payload) {
		codec = HDE_SET_NONE;
		payload = body_len;
		e->payload = e->body;
	}
	write_header(e->fhdr, KIND_DATA, codec, (uint32_t)payload, (uint32_t)body_len,
	             (uint32_t)cut);
	seal_frame(e->fhdr, e->payload, payload);
	e->hdr_len = HDR_SIZE;
	e->pay_len = payload;
	e->f_len = HDR_SIZE + payload;
	e->f_off = 0;

	uint64_t ns = now_ns() - t0;
	if (e->p.mode == HDE_MODE_ADAPTIVE)
		hde_policy_record(&e->policy, s, cut, e->f_len, ns);
	e->st.ns_busy += ns;
	e->st.frames++;
	e->st.frames_by_setting[codec]++;
	e->st.bytes_out += e->f_len;
	for (int t = 0; t < HDE_TIER__COUNT; t++) {
		double share = (double)e->tier_body[t] / (double)body_len;
		e->st.tier[t].bytes_out += (uint64_t)(share * (double)payload + 0.5);
	}
	e->st.tier[HDE_TIER_LITERAL].bytes_out += HDR_SIZE;

	memmove(e->ib, e->ib + cut, e->fill - cut);
	e->fill -= cut;
	e->base += cut;
	return 0;
}

int hde_enc_process(struct hde_enc *e, const void *in, size_t in_len, size_t *in_used, void *out,
                    size_t out_cap, size_t *out_len, int flush)
{
	const uint8_t *src = in;
	uint8_t *dst = out;

	*in_used = 0;
	*out_len = 0;
	if (e->err)
		return e->err;
	if ((!in && in_len) || (!out && out_cap))
		return -EINVAL;
	if (!e->hello_sent)
		enc_hello(e);
	for (;;) {
		if (e->f_off < e->f_len) {
			size_t n = e->f_len - e->f_off;
			if (n > out_cap - *out_len)
				n = out_cap - *out_len;
			if (!n)
				break;
			if (e->f_off < e->hdr_len) {
				if (n > e->hdr_len - e->f_off)
					n = e->hdr_len - e->f_off;
				memcpy(dst + *out_len, e->fhdr + e->f_off, n);
			} else {
				memcpy(dst + *out_len, e->payload + (e->f_off - e->hdr_len), n);
			}
			*out_len += n;
			e->f_off += n;
			continue;
		}
		if (*in_used < in_len && e->fill < e->batch) {
			size_t n = in_len - *in_used;
			if (n > e->batch - e->fill)
				n = e->batch - e->fill;
			memcpy(e->ib + e->fill, src + *in_used, n);
			e->n_ev += hde_rec_scan(e->rec, e->ib + e->fill, n, e->ev + e->n_ev,
			                        e->ev_cap - e->n_ev);
			e->fill += n;
			*in_used += n;
			e->st.bytes_in += n;
			continue;
		}
		if (e->fill >= e->batch || (flush && e->fill && *in_used == in_len)) {
			int rc = enc_frame(e, flush && *in_used == in_len);
			if (rc) {
				e->err = rc;
				return rc;
			}
			continue;
		}
		break;
	}
	return 0;
}

/* ---------------------------------------------------------------- decoder */

struct hde_dec {
	struct hde_mem mem;
	size_t batch, raw_max, body_cap, payload_max;
	uint32_t max_slots, n_slots;
	uint8_t *pages;
	struct codec codec;
	uint8_t hdr[HDR_SIZE];
	size_t hdr_fill;
	uint8_t *pbuf;
	size_t p_need, p_fill;
	uint8_t *body;
	uint8_t *obuf;
	size_t o_len, o_off;
	int hello_seen;
	int err;
	size_t cache_limit, cache_bytes;
	struct hde_stats st;
};

_Static_assert(offsetof(struct hde_dec, mem) == 0, "codec_obj: mem comes first");

struct hde_dec *hde_dec_create(const struct hde_params *params)
{
	struct hde_dec *d = codec_obj(params, sizeof(*d));
	if (!d)
		return NULL;
	d->batch = batch_of(params, 1);
	d->raw_max = d->batch + HDE_PAGE_SIZE;
	d->body_cap = body_bound(d->raw_max);
	d->payload_max = d->body_cap;
	d->cache_limit = params ? params->cache_bytes : 0;
	d->max_slots = cache_slots_for(d->cache_limit);
	ZSTD_customMem cm = {zstd_alloc, zstd_free, &d->mem};
	size_t before = d->mem.bytes;
	if (d->max_slots)
		d->pages = mem_zalloc(&d->mem, (size_t)d->max_slots * HDE_PAGE_SIZE);
	d->cache_bytes = d->mem.bytes - before;
	d->pbuf = mem_alloc(&d->mem, d->payload_max);
	d->body = mem_alloc(&d->mem, d->body_cap);
	d->obuf = mem_alloc(&d->mem, d->raw_max);
	d->codec.dctx = ZSTD_createDCtx_advanced(cm);
	d->codec.inf = mem_alloc(&d->mem, sizeof(*d->codec.inf));
	if ((d->max_slots && !d->pages) || !d->pbuf || !d->body || !d->obuf || !d->codec.dctx ||
	    !d->codec.inf) {
		hde_dec_destroy(d);
		errno = ENOMEM;
		return NULL;
	}
	ZSTD_DCtx_setParameter(d->codec.dctx, ZSTD_d_windowLogMax, 23);
	return d;
}

void hde_dec_destroy(struct hde_dec *d)
{
	if (!d)
		return;
	codec_fini(&d->codec, &d->mem);
	mem_free(&d->mem, d->pages);
	mem_free(&d->mem, d->pbuf);
	mem_free(&d->mem, d->body);
	mem_free(&d->mem, d->obuf);
	struct hde_mem mem = d->mem;
	mem_free(&mem, d);
}

size_t hde_dec_pending(const struct hde_dec *d)
{
	return (d->o_len - d->o_off) + (d->hdr_fill || d->p_fill ? 1 : 0);
}

void hde_dec_stats(const struct hde_dec *d, struct hde_stats *st)
{
	*st = d->st;
	st->cache_bytes = d->cache_bytes;
	st->cache_limit = d->cache_limit;
	st->cache_slots = d->n_slots;
	st->mem_bytes = d->mem.bytes;
	st->mem_peak = d->mem.peak;
}

static int dec_slot(const struct hde_dec *d, uint32_t v, int optional, uint32_t *slot)
{
	if (optional) {
		if (v == 0) {
			*slot = NO_SLOT;
			return 0;
		}
		v--;
	}
	if (v >= d->n_slots)
		return -EBADMSG;
	*slot = v;
	return 0;
}

/* Apply a sparse delta (see delta_encode) of n bytes to page o. */
static int delta_apply(uint8_t *o, const uint8_t *d, size_t n)
{
	const uint8_t *end = d + n;
	size_t pos = 0;
	while (d < end) {
		uint32_t skip, len;
		if (get_varint(&d, end, &skip) || get_varint(&d, end, &len) || len == 0 ||
		    skip > HDE_PAGE_SIZE - pos || len > HDE_PAGE_SIZE - pos - skip ||
		    len > (size_t)(end - d))
			return -EBADMSG;
		pos += skip;
		memcpy(o + pos, d, len);
		pos += len;
		d += len;
	}
	return 0;
}

/* Run a frame's ops: body (body_len bytes) to obuf (exactly raw bytes). */
static int dec_run(struct hde_dec *d, const uint8_t *body, size_t body_len, size_t raw)
{
	if (body_len < 4)
		return -EBADMSG;
	size_t ops_len = get32(body + body_len - 4);
	if (ops_len > body_len - 4)
		return -EBADMSG;
	const uint8_t *dat = body, *dat_end = body + body_len - 4 - ops_len;
	const uint8_t *op = dat_end, *op_end = op + ops_len;
	uint8_t *o = d->obuf, *o_end = d->obuf + raw;

	while (op < op_end) {
		uint8_t code = *op++;
		uint32_t a = 0, b = 0, src = NO_SLOT, dst = NO_SLOT;
		enum hde_tier t;
		switch (code) {
		case OP_LIT:
			if (get_varint(&op, op_end, &a) || a == 0 || (size_t)(dat_end - dat) < a ||
			    (size_t)(o_end - o) < a)
				return -EBADMSG;
			memcpy(o, dat, a);
			o += a;
			dat += a;
			d->st.tier[HDE_TIER_LITERAL].pages++;
			d->st.tier[HDE_TIER_LITERAL].bytes_in += a;
			continue;
		case OP_ZERO:
			t = HDE_TIER_ZERO;
			if ((size_t)(o_end - o) < HDE_PAGE_SIZE)
				return -EBADMSG;
			memset(o, 0, HDE_PAGE_SIZE);
			break;
		case OP_NEW:
			t = HDE_TIER_NEW;
			if (get_varint(&op, op_end, &a) || dec_slot(d, a, 1, &dst) ||
			    (size_t)(o_end - o) < HDE_PAGE_SIZE ||
			    (size_t)(dat_end - dat) < HDE_PAGE_SIZE)
				return -EBADMSG;
			memcpy(o, dat, HDE_PAGE_SIZE);
			dat += HDE_PAGE_SIZE;
			break;
		case OP_DUP:
		case OP_DELTA:
			t = code == OP_DUP ? HDE_TIER_DUP : HDE_TIER_DELTA;
			if (get_varint(&op, op_end, &a) || get_varint(&op, op_end, &b) ||
			    dec_slot(d, a, 0, &src) || dec_slot(d, b, 1, &dst) ||
			    (size_t)(o_end - o) < HDE_PAGE_SIZE)
				return -EBADMSG;
			memcpy(o, d->pages + (size_t)src * HDE_PAGE_SIZE, HDE_PAGE_SIZE);
			if (code == OP_DELTA) {
				uint32_t n;
				if (get_varint(&op, op_end, &n) || n == 0 || n > DELTA_MAX ||
				    (size_t)(dat_end - dat) < n || delta_apply(o, dat, n))
					return -EBADMSG;
				dat += n;
			}
			break;
		default:
			return -EBADMSG;
		}
		if (dst != NO_SLOT)
			memcpy(d->pages + (size_t)dst * HDE_PAGE_SIZE, o, HDE_PAGE_SIZE);
		o += HDE_PAGE_SIZE;
		d->st.tier[t].pages++;
		d->st.tier[t].bytes_in += HDE_PAGE_SIZE;
	}
	if (o != o_end || dat != dat_end)
		return -EBADMSG;
	return 0;
}

/* A whole frame is in hdr + pbuf: check and decode it. */
static int dec_frame(struct hde_dec *d)
{
	const uint8_t *h = d->hdr;
	uint32_t payload = get32(h + 8), body_len = get32(h + 12), raw = get32(h + 16);
	uint32_t crc = crc32c(h, 20, 0);
	crc = crc32c(d->pbuf, payload, crc);
	if (crc != get32(h + 20))
		return -EBADMSG;
	d->st.frames++;
	if (h[3] == KIND_HELLO) {
		if (d->hello_seen || payload != HELLO_SIZE || body_len != HELLO_SIZE || raw != 0 ||
		    h[4] != HDE_SET_NONE)
			return -EBADMSG;
		if (get32(d->pbuf + 12) != 0) /* reserved: a later format may use it */
			return -EBADMSG;
		if (get32(d->pbuf) != HDE_PAGE_SIZE)
			return -EPROTO;
		uint32_t slots = get32(d->pbuf + 4), batch = get32(d->pbuf + 8);
		if (slots > d->max_slots || batch > d->batch)
			return -EPROTO;
		d->n_slots = slots;
		d->hello_seen = 1;
		return 0;
	}
	if (!d->hello_seen)
		return -EPROTO;
	if (body_len > d->body_cap || raw > d->raw_max)
		return -EBADMSG;
	uint64_t t0 = now_ns();
	int rc = 0;
	const uint8_t *body = d->pbuf;
	if (h[4] != HDE_SET_NONE) {
		rc = codec_decode(&d->codec, h[4], d->pbuf, payload, d->body, body_len);
		body = d->body;
	} else if (payload != body_len) {
		rc = -EBADMSG;
	}
	if (!rc)
		rc = dec_run(d, body, body_len, raw);
	if (rc)
		return rc;
	d->st.ns_busy += now_ns() - t0;
	d->st.frames_by_setting[h[4]]++;
	d->o_len = raw;
	d->o_off = 0;
	d->st.bytes_out += raw;
	return 0;
}

int hde_peek_hello(const void *buf, size_t len, size_t *cache_bytes, size_t *batch_bytes)
{
	const uint8_t *h = buf;
	if (len < HDR_SIZE + HELLO_SIZE)
		return -EAGAIN;
	if (h[0] != FRAME_MAGIC0 || h[1] != FRAME_MAGIC1 || h[2] != FRAME_VER ||
	    h[3] != KIND_HELLO || h[4] != HDE_SET_NONE || h[5] || h[6] || h[7] ||
	    get32(h + 8) != HELLO_SIZE || get32(h + 12) != HELLO_SIZE || get32(h + 16) != 0)
		return -EBADMSG;
	uint32_t crc = crc32c(h, 20, 0);
	crc = crc32c(h + HDR_SIZE, HELLO_SIZE, crc);
	if (crc != get32(h + 20))
		return -EBADMSG;
	const uint8_t *p = h + HDR_SIZE;
	uint32_t slots = get32(p + 4), batch = get32(p + 8);
	if (get32(p) != HDE_PAGE_SIZE || slots > (1u << 24) || get32(p + 12) != 0)
		return -EBADMSG;
	*cache_bytes = slots ? enc_cache_size(slots) : 0;
	*batch_bytes = batch;
	return 0;
}

int hde_dec_process(struct hde_dec *d, const void *in, size_t in_len, size_t *in_used, void *out,
                    size_t out_cap, size_t *out_len)
{
	const uint8_t *src = in;
	uint8_t *dst = out;

	*in_used = 0;
	*out_len = 0;
	if (d->err)
		return d->err;
	if ((!in && in_len) || (!out && out_cap))
		return -EINVAL;
	for (;;) {
		if (d->o_off < d->o_len) {
			size_t n = d->o_len - d->o_off;
			if (n > out_cap - *out_len)
				n = out_cap - *out_len;
			if (!n)
				break;
			memcpy(dst + *out_len, d->obuf + d->o_off, n);
			*out_len += n;
			d->o_off += n;
			continue;
		}
		if (*in_used == in_len)
			break;
		size_t avail = in_len - *in_used;
		if (d->hdr_fill < HDR_SIZE) {
			size_t n = HDR_SIZE - d->hdr_fill;
			if (n > avail)
				n = avail;
			memcpy(d->hdr + d->hdr_fill, src + *in_used, n);
			d->hdr_fill += n;
			*in_used += n;
			if (d->hdr_fill < HDR_SIZE)
				continue;
			const uint8_t *h = d->hdr;
			if (h[0] != FRAME_MAGIC0 || h[1] != FRAME_MAGIC1 || h[2] != FRAME_VER ||
			    h[3] > KIND_DATA || h[4] >= HDE_SET__COUNT || h[5] || h[6] || h[7] ||
			    get32(h + 8) > d->payload_max) {
				d->err = -EBADMSG;
				return d->err;
			}
			d->p_need = get32(h + 8);
			d->p_fill = 0;
		} else {
			size_t n = d->p_need - d->p_fill;
			if (n > avail)
				n = avail;
			memcpy(d->pbuf + d->p_fill, src + *in_used, n);
			d->p_fill += n;
			*in_used += n;
		}
		if (d->p_fill == d->p_need) {
			d->st.bytes_in += HDR_SIZE + d->p_need;
			int rc = dec_frame(d);
			d->hdr_fill = 0;
			d->p_fill = d->p_need = 0;
			if (rc) {
				d->err = rc;
				return rc;
			}
		}
	}
	return 0;
}
