/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * wanem_fifo: the delay line of wanem. A bounded, preallocated first-in
 * first-out store of variable-length frames, each with the time it is due;
 * frames are pushed in due order (the link guarantees it per fifo), so the
 * oldest is always the next due. No allocation after creation.
 *
 * Frames are stored back to back in one byte ring (16 bytes of header, data
 * rounded up to 8 bytes); a frame never wraps, the ring skips the tail end
 * instead. A pointer returned by push, first or next stays valid until that
 * frame is popped.
 */
#ifndef WANEM_FIFO_H
#define WANEM_FIFO_H

#include <stddef.h>
#include <stdint.h>

/** One stored frame. */
struct wanem_frame {
	uint64_t due_ns; /**< when it is due at the far side */
	uint32_t len;    /**< bytes of data */
	uint32_t flags;  /**< free for the caller, except bit 31 */
	uint8_t data[];
};

/** Bytes a frame of @p len bytes takes in the ring. */
#define WANEM_FIFO_COST(len) ((sizeof(struct wanem_frame) + (size_t)(len) + 7) & ~(size_t)7)

struct wanem_fifo;

/** Create a fifo of @p bytes (rounded up to 8; at least one header).
 * @return the fifo, or NULL with errno (EINVAL, ENOMEM). Its memory is
 * touched at creation so the fast path takes no page faults. */
struct wanem_fifo *wanem_fifo_create(size_t bytes);
/** Free @p f (NULL is fine). */
void wanem_fifo_destroy(struct wanem_fifo *f);

/** Append a frame of @p len bytes due at @p due_ns; the caller fills data.
 * @return the frame, or NULL if the ring has no room for it. */
struct wanem_frame *wanem_fifo_push(struct wanem_fifo *f, uint64_t due_ns, uint32_t len);
/** The oldest frame, or NULL if empty. */
struct wanem_frame *wanem_fifo_first(struct wanem_fifo *f);
/** The frame after @p fr (which must be stored), or NULL after the newest. */
struct wanem_frame *wanem_fifo_next(struct wanem_fifo *f, const struct wanem_frame *fr);
/** Remove the oldest frame (no-op if empty). */
void wanem_fifo_pop(struct wanem_fifo *f);

/** Frames stored. */
size_t wanem_fifo_count(const struct wanem_fifo *f);
/** Bytes in use, skipped tail ends included. */
size_t wanem_fifo_used(const struct wanem_fifo *f);
/** Capacity in bytes. */
size_t wanem_fifo_capacity(const struct wanem_fifo *f);

#endif /* WANEM_FIFO_H */
