/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cp_libvirt_tcg: does a libvirt domain run where QEMU loses the pages its
 * guest dirties during a live migration (cp_tcg.h)? libvirt gives QEMU the
 * domain's memory rounded up to whole MiB, always a multiple of 256 KiB,
 * unless the domain passes QEMU a -m of its own (qemu:commandline). Read
 * from the domain's XML with libxml2; see cp_libvirt.h.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "cp_libvirt.h"
#include "cp_tcg.h"

#define QEMU_NS      "http://libvirt.org/schemas/domain/qemu/1.0"
#define KIB          1024ull
#define MIB          (1024ull * KIB)
#define QEMU_RAM_MIN (8ull * KIB) /* QEMU rounds -m up to this */

/* libxml2 2.9 wants xmlInitParser once, before threads parse. */
static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
	xmlInitParser();
}

static void quiet(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

static bool is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static bool in_ns(const xmlNode *n, const char *href)
{
	return n->ns != NULL && n->ns->href != NULL && strcmp((const char *)n->ns->href, href) == 0;
}

/* The decimal digits at s (no sign, no space) as *v, *end past them: 0, or
 * -1 (no digit, too big). */
static int parse_u64(const char *s, const char **end, uint64_t *v)
{
	if (*s < '0' || *s > '9')
		return -1;
	uint64_t x = 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (x > (UINT64_MAX - 9) / 10)
			return -1;
		x = x * 10 + (uint64_t)(*s - '0');
	}
	*v = x;
	*end = s;
	return 0;
}

/* A unit of libvirt's <memory unit='...'> (docs: formatdomain), in bytes; 0: unknown. */
static uint64_t libvirt_unit(const char *u)
{
	static const struct {
		const char *name;
		uint64_t bytes;
	} units[] = {
	        {"b", 1},
	        {"bytes", 1},
	        {"KB", 1000ull},
	        {"k", KIB},
	        {"KiB", KIB},
	        {"MB", 1000000ull},
	        {"M", MIB},
	        {"MiB", MIB},
	        {"GB", 1000000000ull},
	        {"G", 1024ull * MIB},
	        {"GiB", 1024ull * MIB},
	        {"TB", 1000000000000ull},
	        {"T", 1024ull * 1024 * MIB},
	        {"TiB", 1024ull * 1024 * MIB},
	};
	if (u == NULL)
		return KIB; /* libvirt's default */
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(u, units[i].name) == 0)
			return units[i].bytes;
	return 0;
}

/* QEMU's -m argument: "N[suffix]" or "size=N[suffix][,...]", a bare number in
 * MiB, suffixes binary (B K M G T, either case). 0, or -1 if unreadable. */
static int qemu_m(const char *arg, uint64_t *bytes)
{
	const char *s = arg;
	/* The size is the value of "size=" or the implied first one. */
	for (const char *p = arg; p != NULL && *p != '\0';) {
		if (strncmp(p, "size=", 5) == 0) {
			s = p + 5;
			break;
		}
		p = strchr(p, ',');
		p = p ? p + 1 : NULL;
	}
	uint64_t v, scale = MIB;
	const char *end;
	if (parse_u64(s, &end, &v) != 0)
		return -1;
	static const char suffixes[] = "bkmgt"; /* 1024^0 .. 1024^4 */
	const char *u = *end != '\0' ? strchr(suffixes, tolower((unsigned char)*end)) : NULL;
	if (u != NULL) {
		scale = 1ull << (10 * (u - suffixes));
		end++;
	}
	if (*end != '\0' && *end != ',')
		return -1;
	return __builtin_mul_overflow(v, scale, bytes) ? -1 : 0;
}

/* The last "-m VALUE" of the domain's qemu:commandline in *value (NULL: none). */
static void last_m(const xmlNode *root, xmlChar **value)
{
	*value = NULL;
	for (const xmlNode *c = root->children; c != NULL; c = c->next) {
		if (!is(c, "commandline") || !in_ns(c, QEMU_NS))
			continue;
		bool next_is_m = false;
		for (const xmlNode *a = c->children; a != NULL; a = a->next) {
			if (!is(a, "arg") || !in_ns(a, QEMU_NS))
				continue;
			xmlChar *v = xmlGetProp(a, (const xmlChar *)"value");
			if (v == NULL)
				continue;
			if (next_is_m) {
				xmlFree(*value);
				*value = v;
				next_is_m = false;
				continue;
			}
			next_is_m = strcmp((const char *)v, "-m") == 0;
			xmlFree(v);
		}
	}
}

/* The domain's <memory> in bytes as libvirt gives it to QEMU (whole MiB). */
static int libvirt_memory(const xmlNode *root, uint64_t *bytes, char *why, size_t whylen)
{
	for (const xmlNode *c = root->children; c != NULL; c = c->next) {
		if (!is(c, "memory") || c->ns != NULL)
			continue;
		xmlChar *unit = xmlGetProp(c, (const xmlChar *)"unit");
		xmlChar *text = xmlNodeGetContent(c);
		uint64_t scale = libvirt_unit((const char *)unit), v = 0;
		const char *end = "";
		int rc = 0;
		if (scale == 0 || text == NULL || parse_u64((const char *)text, &end, &v) != 0 ||
		    *end != '\0' || __builtin_mul_overflow(v, scale, bytes) ||
		    *bytes > UINT64_MAX - MIB) {
			snprintf(why, whylen, "its <memory> (%s %s) cannot be read",
			         text ? (const char *)text : "", unit ? (const char *)unit : "KiB");
			rc = -EINVAL;
		} else {
			*bytes = (*bytes + MIB - 1) / MIB * MIB;
		}
		xmlFree(unit);
		xmlFree(text);
		return rc;
	}
	snprintf(why, whylen, "it has no <memory>");
	return -EINVAL;
}

int cp_libvirt_tcg_loss_xml(const char *xml, size_t len, unsigned long qemu_version,
                            uint64_t *ram_bytes, char *why, size_t whylen)
{
	if (whylen > 0)
		why[0] = '\0';
	*ram_bytes = 0;
	if (xml == NULL || len == 0 || len > INT32_MAX) {
		snprintf(why, whylen, "no domain XML");
		return -EINVAL;
	}
	pthread_once(&xml_once, xml_init);
	/* No network, no entities substituted, no DTD loaded, no messages on
	 * stderr (libxml2 reports bad encodings through its generic handler,
	 * which is per thread: quiet for this parse only). */
	xmlGenericErrorFunc old = xmlGenericError;
	void *old_ctx = xmlGenericErrorContext;
	xmlSetGenericErrorFunc(NULL, quiet);
	xmlDocPtr doc = xmlReadMemory(xml, (int)len, "domain.xml", NULL,
	                              XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	xmlSetGenericErrorFunc(old_ctx, old);
	if (doc == NULL) {
		snprintf(why, whylen, "the domain's XML is not well-formed");
		return -EINVAL;
	}
	int rc = 0;
	const xmlNode *root = xmlDocGetRootElement(doc);
	xmlChar *type = root ? xmlGetProp(root, (const xmlChar *)"type") : NULL;
	xmlChar *m = NULL;
	if (root == NULL || !is(root, "domain") || root->ns != NULL || type == NULL) {
		snprintf(why, whylen, "not a libvirt domain's XML");
		rc = -EINVAL;
		goto out;
	}
	uint64_t ram = 0;
	last_m(root, &m);
	if (m != NULL) {
		if (qemu_m((const char *)m, &ram) != 0) {
			snprintf(why, whylen, "its qemu:commandline -m '%s' cannot be read",
			         (const char *)m);
			rc = -EINVAL;
			goto out;
		}
		if (ram > UINT64_MAX - QEMU_RAM_MIN) {
			snprintf(why, whylen, "its qemu:commandline -m '%s' is too large",
			         (const char *)m);
			rc = -EINVAL;
			goto out;
		}
		ram = (ram + QEMU_RAM_MIN - 1) / QEMU_RAM_MIN * QEMU_RAM_MIN;
	} else if ((rc = libvirt_memory(root, &ram, why, whylen)) != 0) {
		goto out;
	}
	if (ram == 0) {
		snprintf(why, whylen, "it has no RAM");
		rc = -EINVAL;
		goto out;
	}
	*ram_bytes = ram;
	/* type='qemu' is TCG; 'kvm' (and the others) do not take that path. */
	rc = cp_tcg_loses_pages(strcmp((const char *)type, "qemu") == 0, qemu_version, ram,
	                        m ? " (its qemu:commandline -m)" : "", why, whylen);
out:
	xmlFree(m);
	xmlFree(type);
	xmlFreeDoc(doc);
	return rc;
}
