/* SPDX-License-Identifier: BSD-3-Clause */
/* nc_compiler: what the build needs to know about the compiler and its sanitizers. */
#ifndef NC_COMPILER_H
#define NC_COMPILER_H

/* NC_ASAN is 1 in an AddressSanitizer build (gcc or clang). */
#if defined(__SANITIZE_ADDRESS__)
#define NC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NC_ASAN 1
#endif
#endif
#ifndef NC_ASAN
#define NC_ASAN 0
#endif

/* DPDK's default base virtual address lies in ASan's shadow gap: a primary
 * built with ASan must map its memory elsewhere (../shared/DESIGN.md). */
#define NC_ASAN_BASE_VIRTADDR "--base-virtaddr=0x200000000000"

#endif /* NC_COMPILER_H */
