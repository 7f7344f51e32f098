/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * workload: the NovaCron test guest's memory workload, run by the guest's init.
 *
 * Reads its parameters from the kernel command line (/proc/cmdline):
 *   nc.fill_mb=N      MiB of memory to fill (default 64); the rest of RAM stays zero
 *   nc.dirty_mbps=R   MB/s (10^6 bytes) of pages to rewrite after the fill (default 0)
 *   nc.seed=S         seed of every random choice (default 1)
 *   nc.verify_pps=V   pages per second checked against their checksums (default 2048)
 *
 * The fill mixes page kinds found in real VM memory: log-like text, structured
 * binary records, random (incompressible) bytes, duplicates of earlier pages and
 * sparse pages (mostly zero). Then it rewrites random pages at the set rate, a few
 * bytes per page, paced in small steps on CLOCK_MONOTONIC. A pause or a clock jump
 * (live migration) does not cause a burst: the missed budget is dropped.
 *
 * Every filled page has a checksum kept in a table, updated with each rewrite and
 * checked in a sweep: a page that came back different from what the guest wrote
 * (a migration that lost a dirty page) prints "corrupt page P" on the console.
 *
 * Console output (the serial console of the guest):
 *   "nc: ..."  informational lines
 *   "ready"    once the fill is done
 *   "hb N"     every second, N = 1, 2, 3, ...
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE       4096u
#define PAGE_WORDS (PAGE / 8u)

struct wl_params {
	unsigned long fill_mb;
	double dirty_mbps;
	uint64_t seed;
	double verify_pps;
};

static uint64_t rng_state;

/* xorshift64*: fast, fine for picking pages and making data. */
static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static uint64_t rng_below(uint64_t n)
{
	return n ? rng() % n : 0;
}

static void say(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	for (const char *p = buf; n > 0;) {
		ssize_t w = write(1, p, (size_t)n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (int)w;
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void nap(long ns)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = ns};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Parameters: defaults, then nc.KEY=VALUE words of /proc/cmdline. */
static int params_read(struct wl_params *p)
{
	char line[4096];
	ssize_t n;
	int fd;

	p->fill_mb = 64;
	p->dirty_mbps = 0;
	p->seed = 1;
	p->verify_pps = 2048;
	fd = open("/proc/cmdline", O_RDONLY);
	if (fd < 0) {
		say("nc: cannot open /proc/cmdline: %s\n", strerror(errno));
		return -errno;
	}
	n = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	line[n] = '\0';
	for (char *save = NULL, *w = strtok_r(line, " \n", &save); w;
	     w = strtok_r(NULL, " \n", &save)) {
		char *end = NULL;

		if (strncmp(w, "nc.", 3) != 0)
			continue;
		char *eq = strchr(w, '=');
		if (!eq) {
			say("nc: ignoring %s: no value\n", w);
			continue;
		}
		*eq++ = '\0';
		errno = 0;
		if (!strcmp(w, "nc.fill_mb"))
			p->fill_mb = strtoul(eq, &end, 10);
		else if (!strcmp(w, "nc.dirty_mbps"))
			p->dirty_mbps = strtod(eq, &end);
		else if (!strcmp(w, "nc.seed"))
			p->seed = strtoull(eq, &end, 10);
		else if (!strcmp(w, "nc.verify_pps"))
			p->verify_pps = strtod(eq, &end);
		else {
			say("nc: ignoring unknown parameter %s\n", w);
			continue;
		}
		if (errno || !end || *end || end == eq) {
			say("nc: bad value for %s: '%s'\n", w, eq);
			return -EINVAL;
		}
	}
	if (p->dirty_mbps < 0 || p->verify_pps < 0 || p->fill_mb > (1ul << 20)) {
		say("nc: parameter out of range\n");
		return -ERANGE;
	}
	return 0;
}

/* ---- page checksums: sum over the page's words of mix(word ^ key[index]) ---- */

static uint64_t csum_key[PAGE_WORDS];

static inline uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ULL;
	x ^= x >> 27;
	return x;
}

static inline uint64_t word_term(unsigned i, uint64_t w)
{
	return mix(w ^ csum_key[i]);
}

static uint64_t page_csum(const uint64_t *w)
{
	uint64_t h = 0;

	for (unsigned i = 0; i < PAGE_WORDS; i++)
		h += word_term(i, w[i]);
	return h;
}

/* ---- fill ---- */

static const char *const words[] = {
        "GET",     "POST",    "PUT",      "DELETE",  "user",    "session",  "cache",    "miss",
        "hit",     "timeout", "retry",    "connect", "backend", "request",  "response", "error",
        "warning", "info",    "debug",    "worker",  "queue",   "flush",    "commit",   "rollback",
        "index",   "shard",   "replica",  "leader",  "vote",    "term",     "append",   "snapshot",
        "disk",    "latency", "p99",      "bytes",   "items",   "orders",   "invoice",  "payment",
        "kernel",  "nginx",   "postgres", "redis",   "kafka",   "consumer", "offset",   "lag",
        "ok",      "failed",  "started",  "stopped", "healthy", "degraded", "node",     "zone",
        "eu-west", "us-east", "api",      "v1",      "v2",      "items",    "metrics",  "trace",
};
#define N_WORDS (sizeof(words) / sizeof(words[0]))

static char *put_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

static char *put_uint(char *p, uint64_t v, int width)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n < width)
		tmp[n++] = '0';
	while (n)
		*p++ = tmp[--n];
	return p;
}

static uint64_t log_clock = 1795000000000ull; /* ms, advances per line */

/* Log-like text: timestamped lines of words and numbers. */
static void fill_text(char *page)
{
	char line[200];
	unsigned off = 0;

	while (off < PAGE) {
		char *p = line;

		log_clock += rng_below(50);
		p = put_uint(p, log_clock / 1000, 10);
		*p++ = '.';
		p = put_uint(p, log_clock % 1000, 3);
		p = put_str(p, " host-");
		p = put_uint(p, rng_below(32), 2);
		*p++ = ' ';
		p = put_str(p, words[rng_below(N_WORDS)]);
		*p++ = '[';
		p = put_uint(p, 1000 + rng_below(30000), 1);
		p = put_str(p, "]: ");
		for (unsigned k = 3 + rng_below(8); k; k--) {
			p = put_str(p, words[rng_below(N_WORDS)]);
			*p++ = rng_below(4) ? ' ' : '/';
		}
		p = put_uint(p, rng_below(100000), 1);
		p = put_str(p, " 200 ");
		p = put_uint(p, rng_below(5000), 1);
		*p++ = '\n';
		unsigned len = (unsigned)(p - line);
		if (len > PAGE - off)
			len = PAGE - off;
		memcpy(page + off, line, len);
		off += len;
	}
}

/* Structured binary records: ids, timestamps, small enums, doubles, names, padding. */
struct wl_record {
	uint64_t id;
	uint32_t ts;
	uint16_t type;
	uint16_t flags;
	double value;
	char name[16];
	uint32_t refs[2];
	uint8_t pad[16];
};
_Static_assert(sizeof(struct wl_record) == 64, "record is 64 bytes");

static uint64_t record_id = 100000;

static void fill_records(char *page)
{
	struct wl_record r;

	for (unsigned off = 0; off < PAGE; off += sizeof(r)) {
		memset(&r, 0, sizeof(r));
		r.id = record_id++;
		r.ts = (uint32_t)(log_clock / 1000 + rng_below(3600));
		r.type = (uint16_t)rng_below(12);
		r.flags = (uint16_t)(rng_below(4) << 4);
		r.value = (double)rng_below(1000000) / 100.0;
		const char *w = words[rng_below(N_WORDS)];
		memcpy(r.name, w, strlen(w) < sizeof(r.name) ? strlen(w) : sizeof(r.name));
		r.refs[0] = (uint32_t)rng_below(1u << 20);
		r.refs[1] = rng_below(3) ? 0 : (uint32_t)rng();
		memcpy(page + off, &r, sizeof(r));
	}
}

static void fill_random(char *page)
{
	uint64_t *w = (uint64_t *)page;

	for (unsigned i = 0; i < PAGE_WORDS; i++)
		w[i] = rng();
}

/* Mostly zero: a few scattered values, like a sparse heap or page table page. */
static void fill_sparse(char *page)
{
	uint64_t *w = (uint64_t *)page;

	for (unsigned k = 1 + rng_below(24); k; k--)
		w[rng_below(PAGE_WORDS)] = rng() >> rng_below(48);
}

enum { K_TEXT, K_RECORDS, K_RANDOM, K_DUP, K_SPARSE };

static unsigned pick_kind(void)
{
	unsigned r = (unsigned)rng_below(100);

	if (r < 35)
		return K_TEXT;
	if (r < 65)
		return K_RECORDS;
	if (r < 80)
		return K_RANDOM;
	if (r < 90)
		return K_DUP;
	return K_SPARSE;
}

static void fill(char *mem, size_t npages, uint64_t *csum)
{
	size_t i = 0;

	while (i < npages) {
		unsigned kind = pick_kind();
		size_t run = 1 + rng_below(16);

		if (kind == K_DUP && i == 0)
			kind = K_TEXT;
		for (; run && i < npages; run--, i++) {
			char *page = mem + i * PAGE;

			switch (kind) {
			case K_TEXT:
				fill_text(page);
				break;
			case K_RECORDS:
				fill_records(page);
				break;
			case K_RANDOM:
				fill_random(page);
				break;
			case K_DUP:
				memcpy(page, mem + rng_below(i) * PAGE, PAGE);
				break;
			default:
				fill_sparse(page);
				break;
			}
			csum[i] = page_csum((const uint64_t *)page);
		}
	}
}

/* Rewrite a few bytes of one page, keeping its checksum current. */
static void dirty_page(char *mem, uint64_t *csum, size_t p)
{
	uint64_t *w = (uint64_t *)(mem + p * PAGE);

	for (unsigned k = 1 + rng_below(4); k; k--) {
		unsigned i = (unsigned)rng_below(PAGE_WORDS);
		unsigned shift = 8 * (unsigned)rng_below(8);
		uint64_t old = w[i];
		uint64_t neu = old ^ ((1 + rng_below(255)) << shift);

		w[i] = neu;
		csum[p] += word_term(i, neu) - word_term(i, old);
	}
}

int main(void)
{
	struct wl_params prm;
	uint64_t *csum;
	size_t npages;
	char *mem;
	int rc;

	rc = params_read(&prm);
	if (rc)
		return 1;
	rng_state = prm.seed * 0x9E3779B97F4A7C15ULL + 0x1234567;
	if (!rng_state)
		rng_state = 1;
	for (unsigned i = 0; i < PAGE_WORDS; i++)
		csum_key[i] = rng();
	npages = (size_t)prm.fill_mb * (1024 * 1024 / PAGE);
	say("nc: workload fill_mb=%lu dirty_mbps=%.1f seed=%llu verify_pps=%.0f\n", prm.fill_mb,
	    prm.dirty_mbps, (unsigned long long)prm.seed, prm.verify_pps);

	mem = mmap(NULL, npages ? npages * PAGE : PAGE, PROT_READ | PROT_WRITE,
	           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	csum = calloc(npages ? npages : 1, sizeof(*csum));
	if (mem == MAP_FAILED || !csum) {
		say("nc: cannot allocate %lu MiB: %s\n", prm.fill_mb, strerror(errno));
		return 1;
	}
	double t0 = now_s();
	fill(mem, npages, csum);
	double t1 = now_s();
	say("nc: filled %lu MiB in %.2f s\n", prm.fill_mb, t1 - t0);
	say("ready\n");

	double pages_per_s = prm.dirty_mbps * 1e6 / PAGE;
	double dirty_credit = 0, verify_credit = 0;
	double last = t1, next_hb = t1 + 1.0;
	unsigned long long hb = 0, dirtied = 0, corrupt = 0;
	size_t verify_next = 0;

	for (;;) {
		double now = now_s();
		double dt = now - last;

		last = now;
		/* A pause (migration downtime, a stalled host) drops the missed budget. */
		if (dt < 0 || dt > 0.25)
			dt = 0.01;
		dirty_credit += dt * pages_per_s;
		verify_credit += dt * prm.verify_pps;
		if (npages) {
			while (dirty_credit >= 1.0) {
				dirty_page(mem, csum, rng_below(npages));
				dirty_credit -= 1.0;
				dirtied++;
			}
			while (verify_credit >= 1.0) {
				size_t p = verify_next;

				if (page_csum((const uint64_t *)(mem + p * PAGE)) != csum[p]) {
					corrupt++;
					if (corrupt <= 20)
						say("corrupt page %zu\n", p);
				}
				verify_next = (p + 1) % npages;
				verify_credit -= 1.0;
			}
		}
		if (now >= next_hb) {
			say("hb %llu\n", ++hb);
			if (hb % 10 == 0)
				say("nc: dirtied %llu pages, corrupt %llu\n", dirtied, corrupt);
			next_hb += 1.0;
			if (next_hb < now)
				next_hb = now + 1.0;
		}
		nap(2000000);
	}
}
