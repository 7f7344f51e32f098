/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cp_tcg: would QEMU lose the pages a guest dirties while it migrates it?
 * QEMU before 9.0 running a guest under TCG syncs the dirty bitmap of a RAM
 * block whose size is a multiple of 256 KiB (64 pages: one word of the
 * bitmap) on a fast path that leaves TCG's TLB treating those pages as
 * already dirty, so the guest's next stores to them are not tracked and the
 * destination keeps stale pages (fixed by QEMU commit 03bfc2188f, in 9.0).
 * KVM tracks dirty pages itself and is not affected. Both migration back
 * ends ask this before they start (controlplane.tcg_guard).
 */
#ifndef CP_TCG_H
#define CP_TCG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** QEMU 9.0.0 as QEMU and libvirt count versions (major * 1000000 + minor * 1000 + micro). */
#define CP_TCG_QEMU_FIXED 9000000ul

/**
 * Whether a guest under TCG (@p tcg) on QEMU @p version (as above) with
 * @p ram_bytes of RAM loses dirty pages in a live migration: true, with the
 * reason in @p why (its RAM described as "N KiB of RAM" plus @p ram_note,
 * which may be ""), or false and @p why "".
 */
bool cp_tcg_loses_pages(bool tcg, unsigned long version, uint64_t ram_bytes, const char *ram_note,
                        char *why, size_t whylen);

/**
 * What controlplane.tcg_guard says of a VM (@p what, e.g. "domain 'vm1'")
 * for which @p risk is 1 (at risk: @p why from cp_tcg_loses_pages), 0, or a
 * negative errno (could not tell: @p why or "" says why). refuse (the
 * default): -ENOTSUP and the reason in @p err when at risk; warn: logged, 0;
 * off: 0. A VM that could not be looked at is not refused (a notice). A NULL
 * @p cfg is the default. Ask cp_tcg_guard_on first: off needs no look.
 */
struct nc_config;
int cp_tcg_guard(const struct nc_config *cfg, const char *what, int risk, const char *why,
                 char *err, size_t errlen);

/** Whether controlplane.tcg_guard is refuse or warn (NULL @p cfg: refuse). */
bool cp_tcg_guard_on(const struct nc_config *cfg);

#endif
