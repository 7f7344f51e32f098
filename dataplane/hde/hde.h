/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * HDE, hierarchical delta encoding: a lossless stream codec for QEMU
 * migration streams (any byte stream round-trips; QEMU page records only
 * compress better). Pure C, no DPDK: the dataplane, the unit tests, the
 * fuzzers and the novacron-hde CLI link it. Frame format: docs/hde.md.
 *
 * One encoder per stream turns input bytes (any chunking) into
 * self-delimiting frames; one decoder per stream turns those frames (any
 * chunking) back into exactly the input. Per page the encoder picks a tier:
 * zero, duplicate of a cached page, XOR delta against the page's previous
 * version (per RAM block and offset), or new; the frame's data is then
 * entropy-coded (zstd at a level, ISA-L igzip, or none). The encoder tells
 * the decoder, per page, which cache slot to read and write, so the two
 * caches stay in lock step without the decoder repeating any decision.
 *
 * Conventions: constructors return a handle or NULL with errno set; other
 * calls return 0 or a negative errno. Handles are not thread-safe; use one
 * per stream per thread. All memory is allocated at create time (through the
 * optional allocator in struct hde_params; with the default one, cache pages
 * are mapped zero pages, touched when first used; a custom one gets them
 * cleared at create);
 * nothing is allocated per page. The one exception is zstd, which sizes a
 * setting's workspace on its first frame (and may resize it when frame sizes
 * change a lot): a few allocations per stream, counted in mem_bytes.
 */
#ifndef NC_HDE_H
#define NC_HDE_H

#include <stddef.h>
#include <stdint.h>

#define HDE_PAGE_SIZE 4096u

/* Codec settings, weakest to strongest. */
enum hde_setting {
	HDE_SET_NONE = 0,  /* tiers only, data stored raw */
	HDE_SET_ZSTD_FAST, /* tiers + zstd negative level (lz4 speed class) */
	HDE_SET_ZSTD1,     /* tiers + zstd -1 */
	HDE_SET_IGZIP0,    /* tiers + ISA-L igzip level 0 */
	HDE_SET_IGZIP1,    /* tiers + ISA-L igzip level 1 */
	HDE_SET_ZSTD3,     /* tiers + zstd -3 */
	HDE_SET_ZSTD9,     /* tiers + zstd -9 */
	HDE_SET_ZSTD19,    /* tiers + zstd -19 ("strongest") */
	HDE_SET__COUNT,
};

/* Named choices for hde_params.mode. */
enum hde_mode {
	HDE_MODE_ADAPTIVE = 0, /* hde_policy picks per batch from the link rate */
	HDE_MODE_FIXED,        /* always hde_params.setting */
	HDE_MODE_FASTEST,      /* HDE_SET_NONE: tiers and sparse deltas only */
	HDE_MODE_STRONGEST,    /* HDE_SET_ZSTD19 */
};

/* Tiers, for counters. LITERAL = bytes outside recognised pages. */
enum hde_tier {
	HDE_TIER_ZERO = 0,
	HDE_TIER_DUP,
	HDE_TIER_DELTA,
	HDE_TIER_NEW,
	HDE_TIER_LITERAL,
	HDE_TIER__COUNT,
};

struct hde_params {
	size_t cache_bytes; /* page cache bound (slots + indexes); 0 = no cache */
	/* Input bytes per frame, 16 KiB .. 4 MiB; 0 = 1 MiB (4 MiB for
	 * HDE_MODE_STRONGEST). A decoder refuses streams with larger batches;
	 * 0 = 4 MiB for a decoder. */
	size_t batch_bytes;
	enum hde_mode mode;
	enum hde_setting setting; /* for HDE_MODE_FIXED */
	/* HDE_MODE_ADAPTIVE: the longest one batch may take to code, ns (0: no
	 * bound). A poll-mode worker that codes inline sets it, so that the
	 * policy never tries a setting that would stall the worker (speeds are
	 * assumed from priors until measured). */
	uint64_t max_batch_ns;
	/* Optional allocator; NULL = malloc/free. Every byte HDE holds (caches,
	 * buffers, zstd and igzip state) goes through it. */
	void *(*alloc)(void *ctx, size_t size);
	void (*free)(void *ctx, void *ptr, size_t size);
	void *alloc_ctx;
};

struct hde_tier_stats {
	uint64_t pages;     /* pages (or, for LITERAL, runs) in this tier */
	uint64_t bytes_in;  /* stream bytes they covered */
	uint64_t bytes_out; /* frame bytes attributed to them (estimate for coded data) */
};

struct hde_stats {
	struct hde_tier_stats tier[HDE_TIER__COUNT];
	uint64_t frames;
	uint64_t bytes_in;  /* encoder: stream bytes in; decoder: frame bytes in */
	uint64_t bytes_out; /* encoder: frame bytes out; decoder: stream bytes out */
	uint64_t frames_by_setting[HDE_SET__COUNT];
	uint64_t ns_busy;     /* time spent coding frames (CLOCK_MONOTONIC) */
	uint64_t rec_pages;   /* page bodies the recogniser found */
	uint64_t rec_resyncs; /* times it found its way again */
	uint64_t rec_lost;    /* times it lost its way (fell back to opaque) */
	size_t cache_bytes;   /* bytes of cache held (constant after create) */
	size_t cache_limit;   /* the bound given at create time */
	uint32_t cache_slots; /* pages the cache holds */
	uint32_t cache_used;  /* slots in use now (encoder) */
	size_t mem_bytes;     /* everything held now, cache included */
	size_t mem_peak;      /* peak of mem_bytes */
};

/* ---- encoder ---- */
struct hde_enc;

/* Create an encoder. params may be NULL (defaults: no cache, 1 MiB batches,
 * adaptive). Errors: EINVAL (bad params), ENOMEM. */
struct hde_enc *hde_enc_create(const struct hde_params *params);
void hde_enc_destroy(struct hde_enc *e);

/*
 * Feed input and collect frames. Consumes up to in_len bytes of in (sets
 * *in_used) and writes up to out_cap bytes of frames to out (sets *out_len).
 * With flush != 0 all input taken so far is also framed. Call again (with
 * the rest of the input) until *in_used == in_len and, when flushing,
 * hde_enc_pending() == 0. Buffering is bounded: at most batch_bytes + one
 * page of input and one frame (hde_frame_bound()) of output are held.
 * Errors: EINVAL; EIO (a codec failed; the encoder is then unusable).
 */
int hde_enc_process(struct hde_enc *e, const void *in, size_t in_len, size_t *in_used, void *out,
                    size_t out_cap, size_t *out_len, int flush);
/* Bytes held: input not yet framed plus frame bytes not yet read out. */
size_t hde_enc_pending(const struct hde_enc *e);
/* Tell the adaptive policy the link's delivery rate in bytes/s (0 = unknown). */
void hde_enc_set_link_rate(struct hde_enc *e, double bytes_per_s);
void hde_enc_stats(const struct hde_enc *e, struct hde_stats *st);
/* Largest frame an encoder with these batch bytes emits. */
size_t hde_frame_bound(size_t batch_bytes);

/* ---- decoder ---- */
struct hde_dec;

/* Create a decoder. params->cache_bytes bounds the cache the stream may ask
 * for (the encoder's must not be larger); batch_bytes bounds frames likewise.
 * Errors: EINVAL, ENOMEM. */
struct hde_dec *hde_dec_create(const struct hde_params *params);
void hde_dec_destroy(struct hde_dec *d);

/*
 * Feed frames and collect the original bytes. Consumes up to in_len bytes
 * (sets *in_used), writes up to out_cap bytes (sets *out_len). Call again
 * until all input is used and hde_dec_pending() == 0.
 * Errors (the decoder is then unusable, every later call fails the same way):
 * EBADMSG (bad magic, version, length, checksum, or a frame whose contents do
 * not decode exactly), EPROTO (a frame before the stream header, or a cache
 * larger than this decoder's bound), EIO (a codec failed).
 */
int hde_dec_process(struct hde_dec *d, const void *in, size_t in_len, size_t *in_used, void *out,
                    size_t out_cap, size_t *out_len);
/* Decoded bytes not yet read out, plus 1 if a frame is partly received. */
size_t hde_dec_pending(const struct hde_dec *d);
void hde_dec_stats(const struct hde_dec *d, struct hde_stats *st);

/*
 * Read a stream's first frame (its HELLO) without a decoder, so that the
 * receiver can size the decoder to what this stream's encoder uses. buf
 * holds the stream's first len bytes. Returns 0 and sets *cache_bytes (pass
 * it as hde_params.cache_bytes: a decoder made with it has exactly the
 * encoder's slots) and *batch_bytes; -EAGAIN when len is too short to tell;
 * -EBADMSG when it is not a valid HELLO.
 */
int hde_peek_hello(const void *buf, size_t len, size_t *cache_bytes, size_t *batch_bytes);

/* ---- policy ---- */
/*
 * hde_policy: given the link's delivery rate and each setting's measured
 * encode speed and ratio on this core (EWMAs kept by the encoder), pick the
 * setting that delivers input fastest: minimise max(1/speed, ratio/rate) per
 * input byte. Unmeasured settings are tried once; every 64th batch re-tries a
 * neighbour of the current choice so the EWMAs follow the data (one left out
 * as too slow after fewer than 3 measures is re-tried if its prior speed
 * allows it). A frame under a sixteenth of a batch is no first measure, and
 * later ones count by frame size. Settings that would take longer than
 * hde_params.max_batch_ns per batch are left out.
 */
struct hde_policy;
struct hde_policy *hde_policy_create(void);
void hde_policy_destroy(struct hde_policy *p);
void hde_policy_set_link_rate(struct hde_policy *p, double bytes_per_s);
enum hde_setting hde_policy_choose(struct hde_policy *p);
/* Record one batch coded with s: in bytes in, out bytes out, ns nanoseconds. */
void hde_policy_record(struct hde_policy *p, enum hde_setting s, size_t in, size_t out,
                       uint64_t ns);

const char *hde_setting_name(enum hde_setting s);
const char *hde_tier_name(enum hde_tier t);
/* Parse "none", "zstd-fast", ..., or "fastest"/"strongest"/"adaptive" into
 * mode and setting. Returns 0 or -EINVAL. */
int hde_parse_setting(const char *s, enum hde_mode *mode, enum hde_setting *setting);

#endif
