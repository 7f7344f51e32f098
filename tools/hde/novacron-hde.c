/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * novacron-hde: HDE over files, for people and for bench/bench_hde.sh.
 *
 *   novacron-hde encode [OPTIONS] IN OUT   stream file -> HDE frames
 *   novacron-hde decode [OPTIONS] IN OUT   HDE frames -> stream file
 *   novacron-hde stats  [OPTIONS] IN       encode + decode in memory, check
 *                                          byte-exact, print JSON stats
 *   novacron-hde synth  [OPTIONS] OUT      write a synthetic QEMU stream
 *   novacron-hde zstd   [--level N] IN     bytes of zstd -N over the whole file
 *
 * OPTIONS: --setting S (adaptive, fastest, strongest, none, zstd-fast, zstd1,
 * igzip0, igzip1, zstd3, zstd9, zstd19), --cache-mb N (or --cache-kb N;
 * default 256 MiB), --batch-kb N (default 1024),
 * --link-mbps N (adaptive: link rate in Mbit/s), --chunk N (bytes per call);
 * synth: --kind idle|dirty|multifd|mixed, --ram-mb N, --seed N.
 * MB/s figures are per core: bytes over the thread's CPU time.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zstd.h>

#include "hde.h"
#include "hde_synth.h"

struct opts {
	struct hde_params p;
	double link_mbps;
	size_t chunk;
	const char *kind;
	uint32_t ram_mb;
	uint64_t seed;
	int level;
};

static void usage(void)
{
	fprintf(stderr, "usage: novacron-hde encode|decode [OPTIONS] IN OUT\n"
	                "       novacron-hde stats [OPTIONS] IN\n"
	                "       novacron-hde synth [--kind idle|dirty|multifd|mixed] [--ram-mb N] "
	                "[--seed N] OUT\n"
	                "       novacron-hde zstd [--level N] IN\n"
	                "options: --setting S --cache-mb N|--cache-kb N --batch-kb N --link-mbps N "
	                "--chunk N\n");
	exit(2);
}

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint8_t *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "novacron-hde: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	*len = (size_t)st.st_size;
	uint8_t *p = malloc(*len ? *len : 1);
	size_t got = 0;
	while (p && got < *len) {
		ssize_t n = read(fd, p + got, *len - got);
		if (n <= 0) {
			fprintf(stderr, "novacron-hde: %s: short read\n", path);
			exit(1);
		}
		got += (size_t)n;
	}
	close(fd);
	if (!p) {
		fprintf(stderr, "novacron-hde: out of memory\n");
		exit(1);
	}
	return p;
}

static void write_file(const char *path, const uint8_t *p, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "novacron-hde: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

struct obuf {
	uint8_t *p;
	size_t len, cap;
};

static uint8_t *ob_room(struct obuf *o, size_t n)
{
	if (o->len + n > o->cap) {
		size_t cap = o->cap ? o->cap : 1 << 20;
		while (cap < o->len + n)
			cap *= 2;
		o->p = realloc(o->p, cap);
		if (!o->p) {
			fprintf(stderr, "novacron-hde: out of memory\n");
			exit(1);
		}
		o->cap = cap;
	}
	return o->p + o->len;
}

/* Size and touch the output buffer before the clock starts. */
static void ob_prepare(struct obuf *o, size_t n)
{
	memset(ob_room(o, n), 0, n);
}

static int encode(const struct opts *o, const uint8_t *in, size_t len, struct obuf *out,
                  struct hde_stats *st, double *secs)
{
	ob_prepare(out, len + len / 8 + (4 << 20));
	struct hde_enc *e = hde_enc_create(&o->p);
	if (!e) {
		fprintf(stderr, "novacron-hde: encoder: %s%s\n", strerror(errno),
		        errno == EINVAL ? " (--batch-kb must be 16 .. 4096)" : "");
		return -errno;
	}
	if (o->link_mbps > 0)
		hde_enc_set_link_rate(e, o->link_mbps * 1e6 / 8);
	size_t off = 0, room = 1 << 20;
	double t0 = cpu_s();
	int rc = 0;
	for (;;) {
		size_t n = len - off < o->chunk ? len - off : o->chunk;
		int flush = off + n == len;
		size_t used, got;
		rc = hde_enc_process(e, in + off, n, &used, ob_room(out, room), room, &got, flush);
		if (rc)
			break;
		off += used;
		out->len += got;
		if (off == len && hde_enc_pending(e) == 0)
			break;
	}
	*secs = cpu_s() - t0;
	hde_enc_stats(e, st);
	hde_enc_destroy(e);
	if (rc)
		fprintf(stderr, "novacron-hde: encode: %s\n", strerror(-rc));
	return rc;
}

static int decode(const struct opts *o, const uint8_t *in, size_t len, struct obuf *out,
                  struct hde_stats *st, double *secs, size_t expect)
{
	ob_prepare(out, expect + (4 << 20));
	struct hde_dec *d = hde_dec_create(&o->p);
	if (!d) {
		fprintf(stderr, "novacron-hde: decoder: %s%s\n", strerror(errno),
		        errno == EINVAL ? " (--batch-kb must be 16 .. 4096)" : "");
		return -errno;
	}
	size_t off = 0, room = 1 << 20;
	double t0 = cpu_s();
	int rc = 0;
	for (;;) {
		size_t n = len - off < o->chunk ? len - off : o->chunk;
		size_t used, got;
		rc = hde_dec_process(d, in + off, n, &used, ob_room(out, room), room, &got);
		if (rc)
			break;
		off += used;
		out->len += got;
		if (off == len && got == 0)
			break;
	}
	*secs = cpu_s() - t0;
	if (!rc && hde_dec_pending(d)) {
		fprintf(stderr, "novacron-hde: decode: input ends inside a frame\n");
		rc = -EBADMSG;
	} else if (rc == -EBADMSG) {
		fprintf(stderr,
		        "novacron-hde: decode: corrupt frame, or not an HDE stream, near byte "
		        "%zu\n",
		        off);
	} else if (rc == -EPROTO) {
		fprintf(stderr, "novacron-hde: decode: the stream has no header, or needs a larger "
		                "cache or "
		                "batch than this decoder allows (--cache-mb, --batch-kb)\n");
	} else if (rc) {
		fprintf(stderr, "novacron-hde: decode: %s\n", strerror(-rc));
	}
	hde_dec_stats(d, st);
	hde_dec_destroy(d);
	return rc;
}

static void print_stats(const char *setting, size_t in_len, size_t out_len,
                        const struct hde_stats *es, double enc_s, const struct hde_stats *ds,
                        double dec_s, int exact)
{
	printf("{\"setting\": \"%s\", \"input_bytes\": %zu, \"output_bytes\": %zu, "
	       "\"ratio\": %.4f, \"roundtrip_exact\": %s,\n",
	       setting, in_len, out_len, in_len ? (double)out_len / (double)in_len : 0.0,
	       exact ? "true" : "false");
	printf(" \"encode_mbps\": %.1f, \"decode_mbps\": %.1f,\n",
	       enc_s > 0 ? (double)in_len / enc_s / 1e6 : 0.0,
	       dec_s > 0 ? (double)in_len / dec_s / 1e6 : 0.0);
	printf(" \"tiers\": {");
	for (int t = 0; t < HDE_TIER__COUNT; t++)
		printf("%s\"%s\": {\"pages\": %llu, \"bytes_in\": %llu, \"bytes_out\": %llu}",
		       t ? ", " : "", hde_tier_name((enum hde_tier)t),
		       (unsigned long long)es->tier[t].pages,
		       (unsigned long long)es->tier[t].bytes_in,
		       (unsigned long long)es->tier[t].bytes_out);
	printf("},\n \"frames\": %llu, \"frames_by_setting\": {", (unsigned long long)es->frames);
	int first = 1;
	for (int s = 0; s < HDE_SET__COUNT; s++) {
		if (!es->frames_by_setting[s])
			continue;
		printf("%s\"%s\": %llu", first ? "" : ", ", hde_setting_name((enum hde_setting)s),
		       (unsigned long long)es->frames_by_setting[s]);
		first = 0;
	}
	printf("},\n \"recogniser\": {\"pages\": %llu, \"resyncs\": %llu, \"lost\": %llu},\n",
	       (unsigned long long)es->rec_pages, (unsigned long long)es->rec_resyncs,
	       (unsigned long long)es->rec_lost);
	printf(" \"cache\": {\"limit\": %zu, \"encoder_bytes\": %zu, \"slots\": %u, "
	       "\"slots_used\": %u, \"decoder_bytes\": %zu, \"within_bound\": %s},\n",
	       es->cache_limit, es->cache_bytes, es->cache_slots, es->cache_used,
	       ds ? ds->cache_bytes : 0,
	       es->cache_bytes <= es->cache_limit && (!ds || ds->cache_bytes <= ds->cache_limit)
	               ? "true"
	               : "false");
	printf(" \"memory\": {\"encoder_peak\": %zu, \"decoder_peak\": %zu}}\n", es->mem_peak,
	       ds ? ds->mem_peak : 0);
}

int main(int argc, char **argv)
{
	struct opts o = {.p = {.cache_bytes = 256u << 20, .mode = HDE_MODE_ADAPTIVE},
	                 .chunk = 64 << 10,
	                 .kind = "idle",
	                 .ram_mb = 256,
	                 .seed = 1,
	                 .level = 1};
	const char *setting = "adaptive";
	static const struct option lo[] = {
	        {"setting", required_argument, 0, 's'},
	        {"cache-mb", required_argument, 0, 'c'},
	        {"batch-kb", required_argument, 0, 'b'},
	        {"link-mbps", required_argument, 0, 'l'},
	        {"chunk", required_argument, 0, 'k'},
	        {"kind", required_argument, 0, 'K'},
	        {"ram-mb", required_argument, 0, 'r'},
	        {"seed", required_argument, 0, 'S'},
	        {"level", required_argument, 0, 'L'},
	        {"cache-kb", required_argument, 0, 'C'},
	        {0, 0, 0, 0},
	};
	if (argc < 2)
		usage();
	const char *cmd = argv[1];
	optind = 2;
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		char *end = NULL;
		switch (c) {
		case 's':
			setting = optarg;
			if (hde_parse_setting(optarg, &o.p.mode, &o.p.setting)) {
				fprintf(stderr, "novacron-hde: unknown setting '%s'\n", optarg);
				return 2;
			}
			break;
		case 'c':
			o.p.cache_bytes = (size_t)strtoull(optarg, &end, 10) << 20;
			break;
		case 'C':
			o.p.cache_bytes = (size_t)strtoull(optarg, &end, 10) << 10;
			break;
		case 'b':
			o.p.batch_bytes = (size_t)strtoull(optarg, &end, 10) << 10;
			break;
		case 'l':
			o.link_mbps = strtod(optarg, &end);
			break;
		case 'k':
			o.chunk = (size_t)strtoull(optarg, &end, 10);
			break;
		case 'K':
			o.kind = optarg;
			break;
		case 'r':
			o.ram_mb = (uint32_t)strtoul(optarg, &end, 10);
			break;
		case 'S':
			o.seed = strtoull(optarg, &end, 10);
			break;
		case 'L':
			o.level = (int)strtol(optarg, &end, 10);
			break;
		default:
			usage();
		}
		if (end && *end) {
			fprintf(stderr, "novacron-hde: bad number '%s'\n", optarg);
			return 2;
		}
	}
	if (o.chunk == 0)
		o.chunk = 1;
	int nargs = argc - optind;
	struct hde_stats es, ds;
	double es_s, ds_s;
	struct obuf out = {0};
	size_t len;

	if (!strcmp(cmd, "encode") || !strcmp(cmd, "decode")) {
		if (nargs != 2)
			usage();
		uint8_t *in = read_file(argv[optind], &len);
		int rc = cmd[0] == 'e' ? encode(&o, in, len, &out, &es, &es_s)
		                       : decode(&o, in, len, &out, &ds, &ds_s, len * 4);
		if (rc) {
			free(in);
			free(out.p);
			return 1;
		}
		write_file(argv[optind + 1], out.p, out.len);
		free(in);
		free(out.p);
		return 0;
	}
	if (!strcmp(cmd, "stats")) {
		if (nargs != 1)
			usage();
		uint8_t *in = read_file(argv[optind], &len);
		struct obuf back = {0};
		if (encode(&o, in, len, &out, &es, &es_s) ||
		    decode(&o, out.p, out.len, &back, &ds, &ds_s, len)) {
			free(in);
			free(out.p);
			free(back.p);
			return 1;
		}
		int exact = back.len == len && !memcmp(back.p, in, len);
		print_stats(setting, len, out.len, &es, es_s, &ds, ds_s, exact);
		free(in);
		free(out.p);
		free(back.p);
		return exact ? 0 : 1;
	}
	if (!strcmp(cmd, "synth")) {
		if (nargs != 1)
			usage();
		struct hde_synth s = {
		        .seed = o.seed, .ram_pages = o.ram_mb * 256u, .zero_frac = 0.65};
		if (!strcmp(o.kind, "dirty")) {
			s.passes = 4;
			s.dirty_pages = s.ram_pages / 8;
			s.changed = 16;
		} else if (!strcmp(o.kind, "multifd")) {
			s.multifd = 1;
			s.passes = 2;
			s.dirty_pages = s.ram_pages / 8;
			s.changed = 16;
		} else if (!strcmp(o.kind, "mixed")) {
			s.passes = 1;
			s.dirty_pages = s.ram_pages / 16;
			s.changed = 64;
		} else if (strcmp(o.kind, "idle")) {
			fprintf(stderr, "novacron-hde: unknown kind '%s'\n", o.kind);
			return 2;
		}
		uint8_t *p;
		if (hde_synth_build(&s, &p, &len)) {
			fprintf(stderr, "novacron-hde: out of memory\n");
			return 1;
		}
		write_file(argv[optind], p, len);
		free(p);
		return 0;
	}
	if (!strcmp(cmd, "zstd")) {
		if (nargs != 1)
			usage();
		uint8_t *in = read_file(argv[optind], &len);
		size_t cap = ZSTD_compressBound(len);
		uint8_t *z = malloc(cap);
		double t0 = cpu_s();
		size_t r = z ? ZSTD_compress(z, cap, in, len, o.level) : 0;
		double t = cpu_s() - t0;
		if (!z || ZSTD_isError(r)) {
			fprintf(stderr, "novacron-hde: zstd failed\n");
			return 1;
		}
		printf("{\"level\": %d, \"input_bytes\": %zu, \"output_bytes\": %zu, "
		       "\"mbps\": %.1f}\n",
		       o.level, len, r, t > 0 ? (double)len / t / 1e6 : 0.0);
		free(z);
		free(in);
		return 0;
	}
	usage();
}
