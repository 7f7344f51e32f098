/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * wanem_fifo: a byte ring of variable-length frames ordered by due time,
 * preallocated once (see wanem_fifo.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "wanem_fifo.h"

/* A header with this flag marks the skipped tail end of the ring. */
#define FIFO_WRAP 0x80000000u
#define HDR       sizeof(struct wanem_frame)

struct wanem_fifo {
	uint8_t *buf;
	size_t cap;
	size_t head;  /* offset of the oldest frame */
	size_t tail;  /* where the next frame goes */
	size_t last;  /* offset of the newest frame */
	size_t count; /* frames stored */
	size_t used;  /* bytes in use, skipped tail ends included */
};

struct wanem_fifo *wanem_fifo_create(size_t bytes)
{
	if (bytes == 0 || bytes > ((size_t)1 << 40)) {
		errno = EINVAL;
		return NULL;
	}
	struct wanem_fifo *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	f->cap = (bytes + 7) & ~(size_t)7;
	if (f->cap < HDR)
		f->cap = HDR;
	f->buf = mmap(NULL, f->cap, PROT_READ | PROT_WRITE,
	              MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (f->buf == MAP_FAILED) {
		free(f);
		errno = ENOMEM;
		return NULL;
	}
	return f;
}

void wanem_fifo_destroy(struct wanem_fifo *f)
{
	if (f == NULL)
		return;
	munmap(f->buf, f->cap);
	free(f);
}

static struct wanem_frame *at(const struct wanem_fifo *f, size_t off)
{
	return (struct wanem_frame *)(void *)(f->buf + off);
}

/* Offset of the frame stored at or after @p off, skipping a tail end. */
static size_t skip_end(const struct wanem_fifo *f, size_t off)
{
	if (f->cap - off < HDR || (at(f, off)->flags & FIFO_WRAP))
		return 0;
	return off;
}

struct wanem_frame *wanem_fifo_push(struct wanem_fifo *f, uint64_t due_ns, uint32_t len)
{
	size_t cost = WANEM_FIFO_COST(len);
	size_t off;

	if (f->count == 0)
		f->head = f->tail = f->used = 0;
	bool wrapped = f->count > 0 && f->tail <= f->head;
	if (!wrapped) {
		if (f->cap - f->tail >= cost) {
			off = f->tail;
		} else if (f->head >= cost) {
			/* Skip the tail end and start again at the front. */
			if (f->cap - f->tail >= HDR)
				at(f, f->tail)->flags = FIFO_WRAP;
			f->used += f->cap - f->tail;
			off = 0;
		} else {
			return NULL;
		}
	} else if (f->head - f->tail >= cost) {
		off = f->tail;
	} else {
		return NULL;
	}
	struct wanem_frame *fr = at(f, off);
	fr->due_ns = due_ns;
	fr->len = len;
	fr->flags = 0;
	f->tail = off + cost;
	f->last = off;
	f->count++;
	f->used += cost;
	return fr;
}

struct wanem_frame *wanem_fifo_first(struct wanem_fifo *f)
{
	return f->count ? at(f, f->head) : NULL;
}

struct wanem_frame *wanem_fifo_next(struct wanem_fifo *f, const struct wanem_frame *fr)
{
	size_t off = (size_t)((const uint8_t *)fr - f->buf);

	if (f->count == 0 || off == f->last)
		return NULL;
	return at(f, skip_end(f, off + WANEM_FIFO_COST(fr->len)));
}

void wanem_fifo_pop(struct wanem_fifo *f)
{
	if (f->count == 0)
		return;
	size_t cost = WANEM_FIFO_COST(at(f, f->head)->len);
	f->head += cost;
	f->used -= cost;
	if (--f->count == 0) {
		f->head = f->tail = f->used = 0;
		return;
	}
	size_t next = skip_end(f, f->head);
	if (next != f->head) {
		f->used -= f->cap - f->head;
		f->head = next;
	}
}

size_t wanem_fifo_count(const struct wanem_fifo *f)
{
	return f->count;
}

size_t wanem_fifo_used(const struct wanem_fifo *f)
{
	return f->used;
}

size_t wanem_fifo_capacity(const struct wanem_fifo *f)
{
	return f->cap;
}
