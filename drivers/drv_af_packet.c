/* SPDX-License-Identifier: BSD-3-Clause */
/* drv_af_packet: a kernel interface through AF_PACKET (net_af_packet). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <rte_ethdev.h>

#include "drv_common.h"

/* All of a port's kernel rings together. */
#define AFP_MAX_RINGS_BYTES (2ull << 30)

static const char *const afp_keys[] = {"iface",    "qpairs",       "blocksz", "framesz",
                                       "framecnt", "qdisc_bypass", NULL};
static const char *const afp_required[] = {"iface", NULL};

/*
 * The PMD's kernel rings (TPACKET_V2; DPDK 22.11's net_af_packet) hold
 * framecnt slots of framesz bytes each way, and the PMD finds slot i at
 * i x framesz: a block (blocksz, a whole number of pages) must hold a whole
 * number of slots with no bytes left over, or every slot after the first
 * block is misread (sessions then see nothing, with no error anywhere), and
 * framecnt must fill whole blocks. The kernel writes a received frame 66
 * bytes into its slot (its header, aligned) and cuts what does not fit; the
 * PMD copies a slot into one packet buffer, which must have framesz - 32
 * bytes of room. So a link MTU decides the slot size, the slot size the
 * buffers' room, and nc_drv_fit_mtu fills in what the config leaves out.
 */
#define AFP_PAGE      4096u
#define AFP_FRAME_AT  66u   /* where a received frame starts in its slot */
#define AFP_HDR_BYTES 32u   /* of a slot, what the PMD's buffer need not hold */
#define AFP_FRAMESZ   2048u /* DPDK's default slot: IP MTU up to 1968 */
#define AFP_MAX_BLOCK (4u << 20)
#define AFP_MAX_FRAME 32768u /* a packet buffer's room is 16 bits, headroom included */
/* The kernel's ring holds what arrives while the worker naps or codes: DPDK's
 * 512 frames are 6 ms at 1 Gbit/s, and a receiver that decoded an HDE batch
 * on a busy 2-core machine lost 1.4% of a migration's packets there (wanem
 * counted 0.1%). When framecnt is not given: 8 MiB per ring (4096 slots of
 * 2 KiB, 912 of 9 KiB). */
#define AFP_RING_BYTES (8u << 20)

static unsigned afp_uint(const struct nc_drv_port *p, const char *key, unsigned dflt)
{
	const char *v = nc_drv_arg(p, key);
	return v ? (unsigned)strtoul(v, NULL, 10) : dflt;
}

static unsigned gcd(unsigned a, unsigned b)
{
	while (b) {
		unsigned t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* The smallest block of whole frames of fs bytes and whole pages. */
static unsigned block_for(unsigned fs)
{
	return fs / gcd(fs, AFP_PAGE) * AFP_PAGE;
}

/* Say how to fix a blocksz that does not hold whole frames of fs bytes. */
static int bad_block(unsigned bs, unsigned fs, char *err, size_t errlen)
{
	unsigned fit = block_for(fs);
	if (fit <= AFP_MAX_BLOCK)
		snprintf(err, errlen,
		         "af_packet: blocksz %u is not a whole number of %u-byte frames (framesz): "
		         "the PMD reads frames end to end; give blocksz=%u or leave it out",
		         bs, fs, fit);
	else
		snprintf(
		        err, errlen,
		        "af_packet: blocksz %u is not a whole number of %u-byte frames (framesz), "
		        "and no block of at most %u bytes is: give a framesz that is a multiple of "
		        "1024",
		        bs, fs, AFP_MAX_BLOCK);
	return -EINVAL;
}

static int afp_check(const struct nc_drv_port *p, char *err, size_t errlen)
{
	int rc = drv_check_uint(p, "qpairs", 1, 16, err, errlen);
	if (rc == 0)
		rc = drv_check_uint(p, "qdisc_bypass", 0, 1, err, errlen);
	if (rc == 0)
		rc = drv_check_uint(p, "framecnt", 1, 1u << 20, err, errlen);
	if (rc == 0)
		rc = drv_check_uint(p, "framesz", 256, AFP_MAX_FRAME, err, errlen);
	if (rc == 0)
		rc = drv_check_uint(p, "blocksz", AFP_PAGE, AFP_MAX_BLOCK, err, errlen);
	if (rc)
		return rc;
	unsigned fs = afp_uint(p, "framesz", AFP_FRAMESZ), bs = afp_uint(p, "blocksz", 0);
	if (fs % 16) {
		snprintf(err, errlen, "af_packet: framesz must be a multiple of 16, got %u", fs);
		return -EINVAL;
	}
	if (bs % AFP_PAGE) {
		snprintf(err, errlen,
		         "af_packet: blocksz must be a multiple of %u (a page), got %u", AFP_PAGE,
		         bs);
		return -EINVAL;
	}
	if (bs && bs % fs)
		return bad_block(bs, fs, err, errlen);
	return 0;
}

static int afp_fit_mtu(struct nc_drv_port *p, unsigned mtu, unsigned *room, char *err,
                       size_t errlen)
{
	unsigned have = drv_iface_mtu(p);
	if (have && have < mtu) {
		snprintf(err, errlen,
		         "af_packet: interface %s has MTU %u, below amst.mtu %u: the kernel would "
		         "drop every larger packet; raise it (ip link set %s mtu %u) or lower "
		         "amst.mtu",
		         nc_drv_arg(p, "iface"), have, mtu, nc_drv_arg(p, "iface"), mtu);
		return -EINVAL;
	}
	unsigned need = (mtu + 14 + AFP_FRAME_AT + 15) / 16 * 16;
	unsigned dflt = need <= AFP_FRAMESZ ? AFP_FRAMESZ : (need + 1023) / 1024 * 1024;
	unsigned fs = afp_uint(p, "framesz", dflt);
	if (fs < need) {
		snprintf(
		        err, errlen,
		        "af_packet: framesz %u cannot hold a frame of amst.mtu %u (the kernel puts "
		        "it %u bytes into a %u-byte slot): give framesz=%u or leave framesz out",
		        fs, mtu, AFP_FRAME_AT, need, dflt);
		return -EINVAL;
	}
	unsigned bs = afp_uint(p, "blocksz", block_for(fs));
	if (bs > AFP_MAX_BLOCK || bs % fs)
		return bad_block(bs, fs, err, errlen);
	unsigned per = bs / fs, fc = AFP_RING_BYTES / fs;
	fc = afp_uint(p, "framecnt", (fc < per ? per : fc + per - 1) / per * per);
	if (fc % per) {
		snprintf(err, errlen,
		         "af_packet: framecnt %u does not fill whole blocks of %u frames "
		         "(blocksz / framesz): give framecnt=%u",
		         fc, per, (fc + per - 1) / per * per);
		return -EINVAL;
	}
	/* Two rings (rx, tx) per queue pair, in kernel memory: a clear error
	 * here rather than a failed probe. */
	unsigned qp = afp_uint(p, "qpairs", 1);
	uint64_t total = (uint64_t)fc * fs * 2 * qp;
	if (total > AFP_MAX_RINGS_BYTES) {
		snprintf(err, errlen,
		         "af_packet: %u queue pairs of two rings of %u x %u bytes take %llu MiB, "
		         "more than %llu MiB: lower framecnt or qpairs",
		         qp, fc, fs, (unsigned long long)(total >> 20),
		         (unsigned long long)(AFP_MAX_RINGS_BYTES >> 20));
		return -EINVAL;
	}
	char v[3][16];
	snprintf(v[0], sizeof(v[0]), "%u", fs);
	snprintf(v[1], sizeof(v[1]), "%u", bs);
	snprintf(v[2], sizeof(v[2]), "%u", fc);
	if (nc_drv_set_arg(p, "framesz", v[0]) || nc_drv_set_arg(p, "blocksz", v[1]) ||
	    nc_drv_set_arg(p, "framecnt", v[2])) {
		snprintf(err, errlen, "af_packet: too many arguments");
		return -EINVAL;
	}
	if (*room < fs - AFP_HDR_BYTES)
		*room = fs - AFP_HDR_BYTES;
	return 0;
}

static int afp_setup(const struct nc_drv_port *p, uint16_t port_id, char *err, size_t errlen)
{
	(void)p, (void)err, (void)errlen;
	/* Frames for our own MAC only would do, but veth peers and bridges in
	 * tests use other MACs; a migration NIC carries nothing else. */
	rte_eth_promiscuous_enable(port_id);
	return 0;
}

static const struct nc_drv af_packet_drv = {
        .name = "af_packet",
        .pmd = "net_af_packet",
        .help = "kernel interface through AF_PACKET (iface=NAME)",
        .keys = afp_keys,
        .required = afp_required,
        .check = afp_check,
        .prepare = drv_iface_exists,
        .setup = afp_setup,
        .fit_mtu = afp_fit_mtu,
        .frames_by_device = true,
};
NC_DRV_REGISTER(af_packet_drv)
