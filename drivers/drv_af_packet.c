/* SPDX-License-Identifier: BSD-3-Clause */
/* drv_af_packet: a kernel interface through AF_PACKET (net_af_packet). */
#include <stdint.h>

#include <rte_ethdev.h>

#include "drv_common.h"

static const char *const afp_keys[] = {"iface",    "qpairs",       "blocksz", "framesz",
                                       "framecnt", "qdisc_bypass", NULL};
static const char *const afp_required[] = {"iface", NULL};
/* The kernel's ring holds what arrives while the worker naps or codes: DPDK's
 * 512 frames are 6 ms at 1 Gbit/s, and a receiver that decoded an HDE batch
 * on a busy 2-core machine lost 1.4% of a migration's packets there (wanem
 * counted 0.1%). 4096 frames of 2 KiB: 8 MiB per ring. */
static const char *const afp_defaults[] = {"framecnt=4096", NULL};

static int afp_check(const struct nc_drv_port *p, char *err, size_t errlen)
{
	int rc = drv_check_uint(p, "qpairs", 1, 16, err, errlen);
	if (rc == 0)
		rc = drv_check_uint(p, "qdisc_bypass", 0, 1, err, errlen);
	if (rc == 0)
		rc = drv_check_uint(p, "framecnt", 1, 1u << 20, err, errlen);
	return rc;
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
        .defaults = afp_defaults,
        .check = afp_check,
        .prepare = drv_iface_exists,
        .setup = afp_setup,
};
NC_DRV_REGISTER(af_packet_drv)
