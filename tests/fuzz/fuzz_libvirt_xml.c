/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_libvirt_xml: libFuzzer target for cp_libvirt_tcg_loss_xml, which reads
 * a domain's XML as libvirtd gives it (outside input). Any input gives 1, 0
 * or -EINVAL, never a crash; an error and a risk always say why; a risk is
 * only ever a RAM size that is a multiple of 256 KiB on QEMU before 9.0.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "cp_libvirt.h"
#include "cp_tcg.h"

static void one(const uint8_t *data, size_t size, unsigned long version)
{
	char why[512];
	uint64_t ram = 1;
	int rc = cp_libvirt_tcg_loss_xml((const char *)data, size, version, &ram, why, sizeof(why));
	if (rc != 1 && rc != 0 && rc != -EINVAL)
		abort();
	if (rc != 0 && why[0] == '\0')
		abort(); /* every error and every risk says why */
	if (rc == -EINVAL && ram != 0)
		abort();
	if (rc == 1 && (version >= CP_TCG_QEMU_FIXED || ram == 0 || ram % (256 * 1024) != 0))
		abort();
	if (rc >= 0 && ram % (8 * 1024) != 0)
		abort(); /* QEMU's RAM is whole 8 KiB */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one(data, size, 7002000);
	one(data, size, CP_TCG_QEMU_FIXED);
	return 0;
}
