/* SPDX-License-Identifier: BSD-3-Clause */
/* amst_crypto: AES-256-GCM per packet and HKDF-SHA256 through OpenSSL 3's EVP. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "amst_crypto.h"

struct amst_aead {
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
	uint8_t iv[AMST_IV_LEN];
};

struct amst_aead *amst_aead_create(const uint8_t key[AMST_KEY_LEN], const uint8_t iv[AMST_IV_LEN])
{
	struct amst_aead *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	memcpy(a->iv, iv, AMST_IV_LEN);
	a->enc = EVP_CIPHER_CTX_new();
	a->dec = EVP_CIPHER_CTX_new();
	if (a->enc == NULL || a->dec == NULL ||
	    EVP_EncryptInit_ex(a->enc, EVP_aes_256_gcm(), NULL, key, NULL) != 1 ||
	    EVP_DecryptInit_ex(a->dec, EVP_aes_256_gcm(), NULL, key, NULL) != 1) {
		amst_aead_destroy(a);
		errno = EINVAL;
		return NULL;
	}
	return a;
}

void amst_aead_destroy(struct amst_aead *a)
{
	if (a == NULL)
		return;
	EVP_CIPHER_CTX_free(a->enc);
	EVP_CIPHER_CTX_free(a->dec);
	free(a);
}

static void nonce(const struct amst_aead *a, uint64_t pn, uint8_t out[AMST_IV_LEN])
{
	memcpy(out, a->iv, AMST_IV_LEN);
	for (int i = 0; i < 8; i++)
		out[AMST_IV_LEN - 1 - i] ^= (uint8_t)(pn >> (8 * i));
}

/* Either direction: EVP_Cipher* follow the context's own. */
static int begin(EVP_CIPHER_CTX *ctx, const struct amst_aead *a, uint64_t pn, const uint8_t *aad,
                 size_t aad_len)
{
	uint8_t iv[AMST_IV_LEN];
	int out;
	nonce(a, pn, iv);
	if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, -1) != 1 ||
	    EVP_CipherUpdate(ctx, NULL, &out, aad, (int)aad_len) != 1)
		return -EIO;
	return 0;
}

static int update(EVP_CIPHER_CTX *ctx, uint8_t *dst, const uint8_t *src, size_t len)
{
	int out;
	return len == 0 || EVP_CipherUpdate(ctx, dst, &out, src, (int)len) == 1 ? 0 : -EIO;
}

int amst_aead_seal_spans(struct amst_aead *a, uint64_t pn, const uint8_t *aad, size_t aad_len,
                         uint8_t *buf, size_t len, const struct amst_span *span, unsigned n,
                         uint8_t *tag)
{
	int out;
	if (begin(a->enc, a, pn, aad, aad_len) != 0)
		return -EIO;
	uint8_t *p = buf, *end = buf + len;
	for (unsigned i = 0; i < n; i++) {
		if (span[i].dst < p || span[i].dst > end ||
		    span[i].len > (size_t)(end - span[i].dst))
			return -EINVAL;
		if (update(a->enc, p, p, (size_t)(span[i].dst - p)) != 0 ||
		    update(a->enc, span[i].dst, span[i].src, span[i].len) != 0)
			return -EIO;
		p = span[i].dst + span[i].len;
	}
	if (update(a->enc, p, p, (size_t)(end - p)) != 0 ||
	    EVP_EncryptFinal_ex(a->enc, end, &out) != 1 ||
	    EVP_CIPHER_CTX_ctrl(a->enc, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
		return -EIO;
	return 0;
}

int amst_aead_seal(struct amst_aead *a, uint64_t pn, const uint8_t *aad, size_t aad_len,
                   uint8_t *buf, size_t len, uint8_t *tag)
{
	return amst_aead_seal_spans(a, pn, aad, aad_len, buf, len, NULL, 0, tag);
}

int amst_aead_open_begin(struct amst_aead *a, uint64_t pn, const uint8_t *aad, size_t aad_len)
{
	return begin(a->dec, a, pn, aad, aad_len);
}

int amst_aead_open_update(struct amst_aead *a, uint8_t *dst, const uint8_t *src, size_t len)
{
	return update(a->dec, dst, src, len);
}

int amst_aead_open_end(struct amst_aead *a, const uint8_t *tag)
{
	uint8_t none[16];
	int out;
	if (EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag) != 1)
		return -EIO;
	return EVP_DecryptFinal_ex(a->dec, none, &out) == 1 ? 0 : -EBADMSG;
}

int amst_aead_open(struct amst_aead *a, uint64_t pn, const uint8_t *aad, size_t aad_len,
                   uint8_t *buf, size_t len, const uint8_t *tag)
{
	int rc = amst_aead_open_begin(a, pn, aad, aad_len);
	if (rc == 0)
		rc = amst_aead_open_update(a, buf, buf, len);
	return rc == 0 ? amst_aead_open_end(a, tag) : rc;
}

int amst_hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
              const char *info, uint8_t *out, size_t out_len)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (kdf == NULL)
		return -ENOTSUP;
	EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (ctx == NULL)
		return -ENOMEM;
	OSSL_PARAM params[5], *p = params;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
	if (salt_len) /* without one, HKDF uses a block of zeros */
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
		                                         salt_len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
	*p = OSSL_PARAM_construct_end();
	int rc = EVP_KDF_derive(ctx, out, out_len, params) == 1 ? 0 : -EIO;
	EVP_KDF_CTX_free(ctx);
	return rc;
}

int amst_random(uint8_t *out, size_t n)
{
	return RAND_bytes(out, (int)n) == 1 ? 0 : -EIO;
}
