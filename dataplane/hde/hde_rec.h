/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hde_rec: the recogniser of QEMU 7.2 migration streams inside HDE's encoder
 * (internal). It reads the stream once, in order, in chunks of any size, and
 * reports where 4096-byte page bodies lie and which (RAM block, offset) they
 * belong to. It only steers the encoder's choices: a wrong report costs
 * compression, never correctness, since the encoder always codes the bytes
 * that are really there. State is a few hundred bytes plus the offsets of one
 * multifd packet.
 */
#ifndef NC_HDE_REC_H
#define NC_HDE_REC_H

#include <stddef.h>
#include <stdint.h>

/* QEMU 7.2 migration/ram.c RAM_SAVE_FLAG_* */
#define QRAM_FLAG_ZERO     0x02u
#define QRAM_FLAG_MEM_SIZE 0x04u
#define QRAM_FLAG_PAGE     0x08u
#define QRAM_FLAG_EOS      0x10u
#define QRAM_FLAG_CONTINUE 0x20u
#define QRAM_FLAG_XBZRLE   0x40u
#define QRAM_FLAG_HOOK     0x80u
#define QRAM_FLAG_COMPRESS 0x100u
/* migration/savevm.c */
#define QVM_FILE_MAGIC    0x5145564du /* "QEVM" */
#define QVM_SECTION_START 0x01u
#define QVM_SECTION_PART  0x02u
#define QVM_SECTION_END   0x03u
/* migration/multifd.c, multifd.h */
#define QMF_MAGIC     0x11223344u
#define QMF_VERSION   1u
#define QMF_INIT_SIZE 64u  /* MultiFDInit_t */
#define QMF_HDR_SIZE  320u /* MultiFDPacket_t without offset[] */
#define QMF_MAX_PAGES 1024u

struct hde_rec_page {
	uint64_t pos; /* stream position of the page body */
	uint64_t key; /* RAM block name hash and page index */
};

struct hde_rec {
	uint64_t pos; /* stream bytes read so far */
	uint32_t state;
	uint32_t fpos;     /* position inside the current fixed-size field */
	uint64_t skip;     /* bytes to pass over before the next field */
	uint64_t win[2];   /* last 16 bytes read in opaque mode */
	uint64_t hdr;      /* the record header being read */
	uint8_t acc[24];   /* fixed fields being read */
	uint32_t name_len; /* block name bytes still to read */
	uint64_t name_hash;
	uint64_t blk_hash; /* current RAM block (CONTINUE refers to it) */
	int have_blk;
	uint32_t ram_id; /* section id of "ram", once seen */
	int have_ram_id;
	uint64_t mem_total, mem_sum; /* MEM_SIZE list */
	uint32_t flags, pages_alloc, normal_pages, next_size, page_i;
	uint64_t lost, resyncs, pages;
	uint64_t key[QMF_MAX_PAGES]; /* multifd packet's page keys */
};

void hde_rec_init(struct hde_rec *r);
/* Read len stream bytes; append at most ev_cap page reports to ev (a body
 * starts at most every 4096 bytes, so len / 4096 + 1 always suffices).
 * Returns the number of reports. */
size_t hde_rec_scan(struct hde_rec *r, const uint8_t *buf, size_t len, struct hde_rec_page *ev,
                    size_t ev_cap);

#endif
