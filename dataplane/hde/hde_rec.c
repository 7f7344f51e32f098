/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hde_rec: finds page bodies in QEMU 7.2 migration streams (see hde_rec.h).
 *
 * Plain precopy ("QEVM" stream, and a multifd session's main channel): inside
 * the "ram" section's START/PART/END records it follows the page records
 * (big-endian u64 offset|flags, a length-prefixed block name unless CONTINUE,
 * then the body: ZERO 1 byte, PAGE 4096 bytes, XBZRLE u8 + be16 length +
 * data, COMPRESS be32 length + data; MEM_SIZE lists the blocks; EOS ends the
 * section's data). Everything else (configuration, device sections) is
 * opaque: it is scanned for the next "ram" section header.
 *
 * multifd channel: MultiFDInit_t (64 bytes, magic 0x11223344, version 1),
 * then packets: a 320-byte MultiFDPacket_t header (magic, version, flags,
 * pages_alloc, normal_pages, next_packet_size, packet_num, 4 x u64 unused,
 * ramblock[256]), pages_alloc big-endian u64 offsets, then (as QEMU 7.2's
 * receiver reads them) nothing if normal_pages is 0 (SYNC packets carry a
 * stale next_packet_size), normal_pages pages if no compression flag is set,
 * else next_packet_size bytes of compressed data.
 *
 * Anything unexpected sends it to opaque mode, where it waits for a pattern
 * that starts a ram section or a multifd packet.
 */
#include <string.h>

#include "hde_rec.h"

enum {
	R_START,
	R_OPAQUE,
	R_MF_INIT,
	R_MF_HDR,
	R_MF_OFFS,
	R_MF_PAGES,
	R_P_REC,
	R_P_NAME_LEN,
	R_P_NAME,
	R_P_XBZ,
	R_P_CMP,
	R_P_MS_LEN,
	R_P_MS_SIZE,
	R_P_BODY,
	R_MF_NAME,
	R_MF_HDRDONE,
};

#define FNV_OFF   0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static uint64_t page_key(uint64_t blk, uint64_t offset)
{
	return (blk * 0x9e3779b97f4a7c15ull) ^ (offset >> 12);
}

void hde_rec_init(struct hde_rec *r)
{
	memset(r, 0, offsetof(struct hde_rec, key));
	r->state = R_START;
}

static void lose(struct hde_rec *r)
{
	r->lost++;
	r->state = R_OPAQUE;
	r->win[0] = r->win[1] = 0;
	r->skip = 0;
	r->have_blk = 0;
}

static void to_opaque(struct hde_rec *r)
{
	r->state = R_OPAQUE;
	r->win[0] = r->win[1] = 0;
}

/* A page record's header is complete: decide what follows it. */
static void rec_header(struct hde_rec *r)
{
	uint64_t flags = r->hdr & 0xfffu;
	uint64_t type = flags & ~(uint64_t)QRAM_FLAG_CONTINUE;

	if (type == QRAM_FLAG_EOS && flags == type && (r->hdr >> 12) == 0) {
		to_opaque(r); /* section footer and the next section follow */
		return;
	}
	if (type == QRAM_FLAG_MEM_SIZE && flags == type) {
		r->mem_total = r->hdr & ~0xfffull;
		r->mem_sum = 0;
		r->state = R_P_MS_LEN;
		return;
	}
	if (type != QRAM_FLAG_ZERO && type != QRAM_FLAG_PAGE && type != QRAM_FLAG_XBZRLE &&
	    type != QRAM_FLAG_COMPRESS) {
		lose(r);
		return;
	}
	if (!(flags & QRAM_FLAG_CONTINUE)) {
		r->state = R_P_NAME_LEN;
		return;
	}
	if (!r->have_blk) {
		lose(r);
		return;
	}
	r->state = R_P_BODY;
}

/* The block name is known: the body starts at r->pos. */
static void rec_body(struct hde_rec *r, struct hde_rec_page *ev, size_t ev_cap, size_t *n)
{
	uint64_t type = r->hdr & 0xfffu & ~(uint64_t)QRAM_FLAG_CONTINUE;

	r->fpos = 0;
	switch (type) {
	case QRAM_FLAG_ZERO:
		r->skip = 1;
		r->state = R_P_REC;
		return;
	case QRAM_FLAG_PAGE:
		if (*n < ev_cap) {
			ev[*n].pos = r->pos;
			ev[*n].key = page_key(r->blk_hash, r->hdr & ~0xfffull);
			(*n)++;
		}
		r->pages++;
		r->skip = 4096;
		r->state = R_P_REC;
		return;
	case QRAM_FLAG_XBZRLE:
		r->state = R_P_XBZ;
		return;
	default:
		r->state = R_P_CMP;
		return;
	}
}

static void opaque_byte(struct hde_rec *r, uint8_t b)
{
	r->win[1] = r->win[1] << 8 | r->win[0] >> 56;
	r->win[0] = r->win[0] << 8 | b;
	if (b == 0x01 && r->win[0] == ((uint64_t)QMF_MAGIC << 32 | QMF_VERSION)) {
		for (int i = 0; i < 8; i++)
			r->acc[i] = (uint8_t)(r->win[0] >> (56 - 8 * i));
		r->fpos = 8;
		r->state = R_MF_HDR;
		r->resyncs++;
		return;
	}
	if (b == 'm' && (r->win[0] & 0xffffffffu) == 0x0372616du && (r->win[1] & 0xff) == 0x01) {
		r->ram_id = (uint32_t)(r->win[0] >> 32);
		r->have_ram_id = 1;
		r->have_blk = 0;
		r->skip = 8; /* instance id, version id */
		r->state = R_P_REC;
		r->fpos = 0;
		r->resyncs++;
		return;
	}
	if (r->have_ram_id && (r->win[0] & 0xffffffffu) == r->ram_id) {
		uint8_t t = (uint8_t)(r->win[0] >> 32);
		if (t == QVM_SECTION_PART || t == QVM_SECTION_END) {
			r->state = R_P_REC;
			r->fpos = 0;
			r->resyncs++;
		}
	}
}

size_t hde_rec_scan(struct hde_rec *r, const uint8_t *buf, size_t len, struct hde_rec_page *ev,
                    size_t ev_cap)
{
	size_t n = 0, i = 0;

	for (;;) {
		if (r->skip) {
			if (i == len)
				break;
			size_t k = len - i < r->skip ? len - i : (size_t)r->skip;
			r->skip -= k;
			r->pos += k;
			i += k;
			continue;
		}
		/* actions taken at a byte boundary, reading nothing */
		if (r->state == R_P_BODY) {
			rec_body(r, ev, ev_cap, &n);
			continue;
		}
		if (r->state == R_MF_HDRDONE) {
			r->fpos = 0;
			r->page_i = 0;
			if (r->pages_alloc) {
				r->state = R_MF_OFFS;
			} else {
				r->skip = r->next_size;
				r->state = R_MF_HDR;
			}
			continue;
		}
		if (r->state == R_MF_PAGES) {
			if (r->page_i == r->normal_pages) {
				r->state = R_MF_HDR;
				r->fpos = 0;
				continue;
			}
			if (n < ev_cap) {
				ev[n].pos = r->pos;
				ev[n].key = r->key[r->page_i];
				n++;
			}
			r->pages++;
			r->page_i++;
			r->skip = 4096;
			continue;
		}
		if (i == len)
			break;
		uint8_t b = buf[i++];
		r->pos++;
		switch (r->state) {
		case R_START:
			r->acc[r->fpos++] = b;
			if (r->fpos < 4)
				break;
			r->fpos = 0;
			if (be32(r->acc) == QVM_FILE_MAGIC) {
				to_opaque(r);
				r->skip = 4; /* file version */
			} else if (be32(r->acc) == QMF_MAGIC) {
				r->state = R_MF_HDR;
				r->skip = QMF_INIT_SIZE - 4;
			} else {
				to_opaque(r);
				for (int k = 0; k < 4 && r->state == R_OPAQUE; k++)
					opaque_byte(r, r->acc[k]);
			}
			break;
		case R_OPAQUE:
			opaque_byte(r, b);
			break;
		case R_MF_HDR:
			r->acc[r->fpos++] = b;
			if (r->fpos < 24)
				break;
			r->flags = be32(r->acc + 8);
			r->pages_alloc = be32(r->acc + 12);
			r->normal_pages = be32(r->acc + 16);
			r->next_size = be32(r->acc + 20);
			if (be32(r->acc) != QMF_MAGIC || be32(r->acc + 4) != QMF_VERSION ||
			    r->pages_alloc > QMF_MAX_PAGES || r->normal_pages > r->pages_alloc) {
				lose(r);
				break;
			}
			/* What follows the offsets is what QEMU 7.2's receiver reads:
			 * nothing without pages (a SYNC packet keeps a stale
			 * next_packet_size), normal_pages pages uncompressed, else
			 * next_packet_size bytes. */
			if (r->normal_pages == 0)
				r->next_size = 0;
			else if (((r->flags >> 1) & 0xf) == 0)
				r->next_size = r->normal_pages * 4096;
			r->name_hash = FNV_OFF;
			r->skip = 64 - 24; /* packet_num, unused[4] */
			r->fpos = 64;
			r->state = R_MF_NAME;
			break;
		case R_MF_NAME:
			r->fpos++;
			if (b != 0)
				r->name_hash = (r->name_hash ^ b) * FNV_PRIME;
			if (b == 0 || r->fpos == QMF_HDR_SIZE) {
				r->blk_hash = r->name_hash;
				r->skip = QMF_HDR_SIZE - r->fpos;
				r->state = R_MF_HDRDONE;
			}
			break;
		case R_MF_OFFS:
			r->acc[r->fpos++] = b;
			if (r->fpos < 8)
				break;
			r->fpos = 0;
			if (r->page_i < r->normal_pages)
				r->key[r->page_i] = page_key(r->blk_hash, be64(r->acc));
			if (++r->page_i < r->pages_alloc)
				break;
			r->page_i = 0;
			if (((r->flags >> 1) & 0xf) != 0) {
				r->skip = r->next_size; /* compressed by QEMU: opaque */
				r->state = R_MF_HDR;
			} else {
				r->state = R_MF_PAGES;
			}
			break;
		case R_P_REC:
			r->acc[r->fpos++] = b;
			if (r->fpos < 8)
				break;
			r->fpos = 0;
			r->hdr = be64(r->acc);
			rec_header(r);
			break;
		case R_P_NAME_LEN:
			if (b == 0) {
				lose(r);
				break;
			}
			r->name_len = b;
			r->name_hash = FNV_OFF;
			r->state = R_P_NAME;
			break;
		case R_P_NAME:
			r->name_hash = (r->name_hash ^ b) * FNV_PRIME;
			if (--r->name_len == 0) {
				r->blk_hash = r->name_hash;
				r->have_blk = 1;
				r->state = R_P_BODY;
			}
			break;
		case R_P_XBZ:
			r->acc[r->fpos++] = b;
			if (r->fpos < 3)
				break;
			r->fpos = 0;
			if (r->acc[0] != 0x01 ||
			    ((uint32_t)r->acc[1] << 8 | r->acc[2]) > 4096 + 64) {
				lose(r);
				break;
			}
			r->skip = (uint32_t)r->acc[1] << 8 | r->acc[2];
			r->state = R_P_REC;
			break;
		case R_P_CMP:
			r->acc[r->fpos++] = b;
			if (r->fpos < 4)
				break;
			r->fpos = 0;
			if (be32(r->acc) > 2 * 4096 + 64) {
				lose(r);
				break;
			}
			r->skip = be32(r->acc);
			r->state = R_P_REC;
			break;
		case R_P_MS_LEN:
			if (b == 0) {
				lose(r);
				break;
			}
			r->skip = b;
			r->state = R_P_MS_SIZE;
			break;
		case R_P_MS_SIZE:
			r->acc[r->fpos++] = b;
			if (r->fpos < 8)
				break;
			r->fpos = 0;
			r->mem_sum += be64(r->acc);
			if (r->mem_sum == r->mem_total)
				r->state = R_P_REC;
			else if (r->mem_sum > r->mem_total)
				lose(r);
			else
				r->state = R_P_MS_LEN;
			break;
		default:
			lose(r);
			break;
		}
	}
	return n;
}
