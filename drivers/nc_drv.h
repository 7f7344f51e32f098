/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nc_drv: the port drivers the dataplane can bring up, each a vtable over a
 * DPDK virtual device (memif, af_xdp, af_packet, ring, null). A port is
 * configured as "DRIVER:ARGS", e.g. "memif:role=server,socket=/run/x.sock";
 * the driver checks ARGS against the keys its PMD knows before EAL sees them,
 * so a typo is a config error that names the key, not an EAL probe failure.
 *
 * Optional hooks may be NULL:
 *  - check:   validate values beyond the key names (enums, numbers).
 *  - prepare: make the host ready before EAL probes the device (a socket
 *             directory, an interface that must exist).
 *  - setup:   adjust the started ethdev (promiscuous mode, ...).
 *  - fit_mtu: size the device for the link's MTU (nc_drv_fit_mtu): add the
 *             arguments the MTU implies, refuse given ones that cannot carry
 *             it, and raise the packet buffers' data room to what the PMD
 *             needs.
 * Each driver file registers itself with NC_DRV_REGISTER.
 */
#ifndef NC_DRV_H
#define NC_DRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NC_DRV_MAX_ARGS 16

struct nc_drv_arg {
	char key[32];
	char value[128];
};

/** A parsed port spec. */
struct nc_drv_port {
	const struct nc_drv *drv;
	char devname[32];  /**< vdev name, "net_memif0" */
	char devargs[512]; /**< "net_memif0,role=server,socket=..." for --vdev */
	struct nc_drv_arg args[NC_DRV_MAX_ARGS];
	unsigned n_args;
};

struct nc_drv {
	const char *name;            /**< "memif" */
	const char *pmd;             /**< DPDK vdev driver, "net_memif" */
	const char *help;            /**< one line */
	const char *const *keys;     /**< accepted argument keys, NULL-terminated */
	const char *const *required; /**< keys that must be given, NULL-terminated or NULL */
	const char *const *defaults; /**< "KEY=VALUE" added when KEY is not given, or NULL */
	int (*check)(const struct nc_drv_port *p, char *err, size_t errlen);
	int (*prepare)(const struct nc_drv_port *p, char *err, size_t errlen);
	int (*setup)(const struct nc_drv_port *p, uint16_t port_id, char *err, size_t errlen);
	int (*fit_mtu)(struct nc_drv_port *p, unsigned mtu, unsigned *room, char *err,
	               size_t errlen);
	/** Frames longer than the PMD's ethdev MTU still pass: the device's own settings
	 *  decide (memif chains buffers; af_packet's slots and interface are fitted). */
	bool frames_by_device;
};

/** Add a driver to the registry (from a constructor). */
void nc_drv_register(const struct nc_drv *drv);

#define NC_DRV_REGISTER(d)                                                                         \
	__attribute__((constructor)) static void nc_drv_register_##d(void)                         \
	{                                                                                          \
		nc_drv_register(&(d));                                                             \
	}

/** The driver called @p name, or NULL. */
const struct nc_drv *nc_drv_find(const char *name);

/** Number of drivers and the i-th one (sorted by name). */
unsigned nc_drv_count(void);
const struct nc_drv *nc_drv_at(unsigned i);

/**
 * Parse "DRIVER:ARGS" into @p out; @p index numbers the device of that driver
 * ("net_memif<index>"). Checks the driver exists, every key is known, required
 * keys are there, no key repeats, and runs the driver's check hook.
 * Returns 0 or -EINVAL with a message naming the driver and the key.
 */
int nc_drv_parse(const char *spec, unsigned index, struct nc_drv_port *out, char *err,
                 size_t errlen);

/** The value of @p key in @p p, or NULL. */
const char *nc_drv_arg(const struct nc_drv_port *p, const char *key);

/** devargs as they may be shown (logs, status): a "secret" value reads
 *  "(set)". 0, or -E2BIG if @p len is too short (@p buf is cut). */
int nc_drv_devargs_shown(const struct nc_drv_port *p, char *buf, size_t len);
/** Give @p key the value @p value (added, or replacing the one there); devargs
 *  follow at the next nc_drv_fit_mtu. 0 or -E2BIG. */
int nc_drv_set_arg(struct nc_drv_port *p, const char *key, const char *value);

/**
 * Fit a parsed port to the link's IP MTU @p mtu (before EAL probes it): runs
 * the driver's fit_mtu hook, which may add arguments and raise @p room (the
 * data room, in bytes, that the port's packet buffers need; the caller starts
 * it at what one frame of the MTU takes), and rebuilds devargs. Returns 0 or
 * -EINVAL with a message naming the argument and a value that works.
 */
int nc_drv_fit_mtu(struct nc_drv_port *p, unsigned mtu, unsigned *room, char *err, size_t errlen);

#endif /* NC_DRV_H */
