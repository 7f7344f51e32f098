/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * amst_crypto: AES-256-GCM sealing of AMST packets and the key schedule, on
 * OpenSSL's EVP. A context holds a cipher with its key set once; each packet
 * only sets its nonce (the IV XOR the packet number), so nonces never repeat
 * as long as packet numbers do not. The header is authenticated as AAD.
 *
 * Return convention: 0 or a negative errno (-EBADMSG: authentication failed).
 */
#ifndef AMST_CRYPTO_H
#define AMST_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define AMST_KEY_LEN 32
#define AMST_IV_LEN  12

struct amst_aead;

/** A context for one direction and one key. NULL with errno. */
struct amst_aead *amst_aead_create(const uint8_t key[AMST_KEY_LEN], const uint8_t iv[AMST_IV_LEN]);
void amst_aead_destroy(struct amst_aead *a);

/** Encrypt @p len bytes of @p buf in place and write the 16-byte tag to @p tag. */
int amst_aead_seal(struct amst_aead *a, uint64_t pn, const uint8_t *aad, size_t aad_len,
                   uint8_t *buf, size_t len, uint8_t *tag);

/** A range of a buffer being sealed whose plaintext lies elsewhere. */
struct amst_span {
	uint8_t *dst;       /**< inside the buffer */
	const uint8_t *src; /**< the plaintext of dst's len bytes */
	size_t len;
};

/**
 * amst_aead_seal() of buf[0..len) where the plaintext of @p n ranges of buf
 * (in order, not overlapping) is read from elsewhere: the cipher text is
 * written straight into buf, saving a copy of the plaintext into it.
 */
int amst_aead_seal_spans(struct amst_aead *a, uint64_t pn, const uint8_t *aad, size_t aad_len,
                         uint8_t *buf, size_t len, const struct amst_span *span, unsigned n,
                         uint8_t *tag);

/** Check @p tag and decrypt in place. -EBADMSG if the packet is not authentic. */
int amst_aead_open(struct amst_aead *a, uint64_t pn, const uint8_t *aad, size_t aad_len,
                   uint8_t *buf, size_t len, const uint8_t *tag);

/**
 * amst_aead_open() in steps, for a receiver that decrypts parts of a packet
 * to different places: begin (nonce and AAD), update over the cipher text in
 * order (@p dst may be @p src, or anywhere else), end with the tag: 0, or
 * -EBADMSG when it does not authenticate (then every byte update wrote is
 * garbage, to be thrown away).
 */
int amst_aead_open_begin(struct amst_aead *a, uint64_t pn, const uint8_t *aad, size_t aad_len);
int amst_aead_open_update(struct amst_aead *a, uint8_t *dst, const uint8_t *src, size_t len);
int amst_aead_open_end(struct amst_aead *a, const uint8_t *tag);

/** HKDF-SHA256 (RFC 5869): extract with @p salt, expand with @p info into @p out. */
int amst_hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
              const char *info, uint8_t *out, size_t out_len);

/** @p n bytes from OpenSSL's CSPRNG. */
int amst_random(uint8_t *out, size_t n);

#endif /* AMST_CRYPTO_H */
