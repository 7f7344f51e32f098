/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nc_config: the configuration table, its strict value parsers and the YAML
 * loader (see nc_config.h for the contract).
 *
 * Loading a document takes four passes, and nothing changes before the last:
 *  1. scan: libyaml's event parser walks the document once to check its shape
 *     (two levels, known sections and keys, no duplicates, no anchors, aliases
 *     or tags, one document) and to note the line of every key it sets, since
 *     libcyaml reports no line for a value. Every structural error stops here
 *     with "FILE:LINE: ..." (syntax errors with a column too).
 *  2. load: libcyaml reads the document with a schema generated from the
 *     table (each section an optional mapping, each leaf a string or a
 *     sequence of strings). Its log goes to a private log_fn, never stderr.
 *  3. parse: every loaded text goes through the same strict parsers as
 *     nc_config_set() into a staging area; the first bad value is the error.
 *  4. apply and commit: the apply callbacks run, lock not held, for every key
 *     the file sets, in table order. If one refuses, the callbacks that had
 *     already accepted are called again with the value still stored (the old
 *     one), in reverse order, so that whatever they configured is put back;
 *     a failure during that rollback is only logged. Only when all accept are
 *     the values stored, all at once under the lock.
 *
 * Locks: op_lock serialises set/load/set_apply and is held across apply
 * callbacks (a callback calling nc_config_set or a load on the same config
 * gets -EDEADLK instead of a deadlock); val_lock guards the stored strings and
 * lists and is held only for short copies. Bools and ints are atomics.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#define NC_LOG_MODULE "config"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cyaml/cyaml.h>
#include <yaml.h>

#include "nc_config.h"
#include "nc_log.h"

/* Largest file nc_config_load_file() reads. */
#define CFG_FILE_MAX (16u << 20)
/* User text quoted in a message is cut after this many bytes. */
#define CFG_QUOTE_MAX 64
/* Names longer than this get no "did you mean" suggestion. */
#define CFG_SUGGEST_MAX 128

/* An owned value: a stored one, or one being staged. */
struct cfg_val {
	bool b;
	int64_t i;
	char *s;
	bool s_static; /* s is one of the enum's choices: never freed */
	char **items;  /* n entries then NULL */
	unsigned n;
};

struct cfg_key {
	const struct nc_cfg_def *def;
	const char *key; /* the part of def->name after the section */
	unsigned sec;    /* index in nc_config.secs */
	unsigned slot;   /* index in the section's libcyaml struct */
	_Atomic bool b;
	_Atomic int64_t i;
	char *s;       /* val_lock */
	bool s_static; /* val_lock */
	char **items;  /* val_lock */
	unsigned n;    /* val_lock */
	nc_cfg_apply_fn apply;
	void *apply_arg;
};

struct cfg_section {
	char *name;
	unsigned nkeys;
	cyaml_schema_field_t *fields; /* nkeys + terminator */
};

/* What libcyaml loads for one leaf: a string, or a sequence of strings. */
struct cfg_leaf {
	void *p; /* char * or char ** */
	uint32_t n;
};

struct nc_config {
	const struct nc_cfg_def *defs;
	size_t n;
	struct cfg_key *keys;
	struct cfg_section *secs;
	unsigned nsec;
	cyaml_schema_field_t *top_fields; /* nsec + terminator */
	cyaml_schema_value_t top;
	pthread_mutex_t op_lock;
	pthread_mutex_t val_lock;
};

/* The config whose apply callback this thread is running, if any. */
static _Thread_local const struct nc_config *tl_applying;

static const cyaml_schema_value_t item_schema = {
        .type = CYAML_STRING,
        .flags = CYAML_FLAG_POINTER,
        .data_size = sizeof(char),
        .string = {.min = 0, .max = CYAML_UNLIMITED},
};

/* ---- messages ---- */

static void __attribute__((format(printf, 3, 4)))
msg(char *err, size_t errlen, const char *fmt, ...)
{
	if (err == NULL || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	/* One line, whatever a callback or libyaml put in it. */
	for (char *p = err; *p; p++) {
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	}
}

struct qbuf {
	char s[CFG_QUOTE_MAX * 4 + 8];
};

/* @p s (@p len bytes) made printable on one line and cut if long. */
static const char *quote(struct qbuf *q, const char *s, size_t len)
{
	size_t o = 0;
	size_t i;

	for (i = 0; i < len && i < CFG_QUOTE_MAX; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n') {
			q->s[o++] = '\\';
			q->s[o++] = 'n';
		} else if (c == '\t') {
			q->s[o++] = '\\';
			q->s[o++] = 't';
		} else if (c < 0x20 || c == 0x7f) {
			static const char hex[] = "0123456789abcdef";
			q->s[o++] = '\\';
			q->s[o++] = 'x';
			q->s[o++] = hex[c >> 4];
			q->s[o++] = hex[c & 15];
		} else {
			q->s[o++] = (char)c;
		}
	}
	if (i < len) {
		memcpy(q->s + o, "...", 3);
		o += 3;
	}
	q->s[o] = '\0';
	return q->s;
}

static const char *quote_str(struct qbuf *q, const char *s)
{
	return quote(q, s, strlen(s));
}

static const char *errstr(int errnum, char *buf, size_t len)
{
	return strerror_r(errnum, buf, len);
}

/* ---- suggestions ---- */

/* Levenshtein distance of two short strings (both <= CFG_SUGGEST_MAX). */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t row[CFG_SUGGEST_MAX + 1];

	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

struct suggest {
	const char *best;
	size_t dist;
	size_t limit;
	const char *word;
	size_t len;
};

static void suggest_init(struct suggest *sg, const char *word, size_t len)
{
	sg->best = NULL;
	sg->word = word;
	sg->len = len;
	sg->limit = 1 + len / 4;
	if (sg->limit > 3)
		sg->limit = 3;
	sg->dist = sg->limit + 1;
}

static void suggest_try(struct suggest *sg, const char *cand)
{
	size_t lc = strlen(cand);

	if (sg->len > CFG_SUGGEST_MAX || lc > CFG_SUGGEST_MAX)
		return;
	/* The distance is at least the difference in length. */
	if ((lc > sg->len ? lc - sg->len : sg->len - lc) >= sg->dist)
		return;
	size_t d = edit_distance(sg->word, sg->len, cand, lc);
	if (d < sg->dist) {
		sg->dist = d;
		sg->best = cand;
	}
}

/* ", did you mean 'x'?" wrapped in parentheses, or "". */
static const char *suggest_text(const struct suggest *sg, char *buf, size_t len)
{
	if (sg->best == NULL)
		return "";
	snprintf(buf, len, " (did you mean '%s'?)", sg->best);
	return buf;
}

/* ---- lookup ---- */

static struct cfg_key *find_key(const struct nc_config *cfg, const char *name)
{
	if (cfg == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < cfg->n; i++) {
		if (strcmp(cfg->keys[i].def->name, name) == 0)
			return &cfg->keys[i];
	}
	return NULL;
}

static bool same(const char *s, const char *text, size_t len)
{
	return strlen(s) == len && memcmp(s, text, len) == 0;
}

static int find_section(const struct nc_config *cfg, const char *text, size_t len)
{
	for (unsigned s = 0; s < cfg->nsec; s++) {
		if (same(cfg->secs[s].name, text, len))
			return (int)s;
	}
	return -1;
}

static long find_in_section(const struct nc_config *cfg, unsigned sec, const char *text, size_t len)
{
	for (size_t i = 0; i < cfg->n; i++) {
		if (cfg->keys[i].sec == sec && same(cfg->keys[i].key, text, len))
			return (long)i;
	}
	return -1;
}

/* ---- values ---- */

static void val_free(struct cfg_val *v)
{
	if (!v->s_static)
		free(v->s);
	v->s = NULL;
	v->s_static = false;
	if (v->items != NULL) {
		for (unsigned j = 0; j < v->n; j++)
			free(v->items[j]);
		free(v->items);
	}
	v->items = NULL;
	v->n = 0;
}

/* Strict int64: optional '-', then decimal digits only. -ERANGE on overflow. */
static int parse_int64(const char *s, int64_t *out)
{
	const char *p = s;
	bool neg = false;
	bool overflow = false;
	uint64_t acc = 0;

	if (*p == '-') {
		neg = true;
		p++;
	}
	if (*p == '\0')
		return -EINVAL;
	const uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*p - '0');
		if (overflow || acc > (limit - d) / 10)
			overflow = true;
		else
			acc = acc * 10 + d;
	}
	if (overflow)
		return -ERANGE;
	if (neg)
		*out = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
	else
		*out = (int64_t)acc;
	return 0;
}

static int check_count(const char *what, int64_t min, int64_t max, size_t count, char *m, size_t ml)
{
	if ((uint64_t)count < (uint64_t)min) {
		if (max == 0)
			msg(m, ml, "%s %zu is below the minimum %" PRId64, what, count, min);
		else
			msg(m, ml, "%s %zu is out of range [%" PRId64 ", %" PRId64 "]", what, count,
			    min, max);
		return -EINVAL;
	}
	if (max != 0 && (uint64_t)count > (uint64_t)max) {
		msg(m, ml, "%s %zu is out of range [%" PRId64 ", %" PRId64 "]", what, count, min,
		    max);
		return -EINVAL;
	}
	return 0;
}

/* Copy and check list items; @p m gets the reason (without the key). */
static int build_list(const struct nc_cfg_def *def, char *const *items, size_t n,
                      struct cfg_val *out, char *m, size_t ml)
{
	int rc = check_count("item count", def->min, def->max, n, m, ml);
	if (rc != 0)
		return rc;
	for (size_t j = 0; j < n; j++) {
		const char *it = items[j] != NULL ? items[j] : "";
		if (*it == '\0') {
			msg(m, ml, "item %zu is empty", j + 1);
			return -EINVAL;
		}
		if (strchr(it, ';') != NULL) {
			struct qbuf q;
			msg(m, ml, "item %zu contains ';': '%s'", j + 1, quote_str(&q, it));
			return -EINVAL;
		}
	}
	out->items = calloc(n + 1, sizeof(*out->items));
	if (out->items == NULL)
		return -ENOMEM;
	for (size_t j = 0; j < n; j++) {
		out->items[j] = strdup(items[j]);
		if (out->items[j] == NULL) {
			out->n = (unsigned)j;
			val_free(out);
			return -ENOMEM;
		}
	}
	out->n = (unsigned)n;
	return 0;
}

/* Whether @p s is well-formed UTF-8 (no overlong forms, surrogates or code
 * points past U+10FFFF): values go out as JSON strings, which must be. */
static bool utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned c = *p++, n, min, cp;
		if (c < 0x80)
			continue;
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, min = 0x80, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, min = 0x800, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, min = 0x10000, cp = c & 0x07;
		else
			return false;
		for (unsigned i = 0; i < n; i++, p++) {
			if ((*p & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (*p & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
	}
	return true;
}

/* Parse @p text (list items separated by ';') for @p def into @p out. */
static int parse_text(const struct nc_cfg_def *def, const char *text, struct cfg_val *out, char *m,
                      size_t ml)
{
	struct qbuf q;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!utf8_ok(text)) {
		msg(m, ml, "not valid UTF-8 text");
		return -EINVAL;
	}
	switch (def->type) {
	case NC_CFG_BOOL:
		if (strcmp(text, "true") == 0) {
			out->b = true;
		} else if (strcmp(text, "false") == 0) {
			out->b = false;
		} else {
			msg(m, ml, "expected true or false, got '%s'", quote_str(&q, text));
			return -EINVAL;
		}
		return 0;
	case NC_CFG_INT:
		rc = parse_int64(text, &out->i);
		if (rc == -EINVAL) {
			msg(m, ml, "expected an integer, got '%s'", quote_str(&q, text));
			return -EINVAL;
		}
		if (rc == -ERANGE || out->i < def->min || out->i > def->max) {
			msg(m, ml, "%s is out of range [%" PRId64 ", %" PRId64 "]",
			    quote_str(&q, text), def->min, def->max);
			return -EINVAL;
		}
		return 0;
	case NC_CFG_STR:
		rc = check_count("length", def->min, def->max, strlen(text), m, ml);
		if (rc != 0)
			return rc;
		out->s = strdup(text);
		return out->s != NULL ? 0 : -ENOMEM;
	case NC_CFG_ENUM:
		for (const char *const *c = def->choices; *c != NULL; c++) {
			if (strcmp(*c, text) == 0) {
				/* The table's own string: a reader of the old value
				 * (nc_config_get_str hands out the pointer) never
				 * sees it freed by a set of another. */
				out->s = (char *)(uintptr_t)*c;
				out->s_static = true;
				return 0;
			}
		}
		{
			char list[256];
			size_t o = 0;
			list[0] = '\0';
			for (const char *const *c = def->choices; *c != NULL && o < sizeof(list);
			     c++) {
				int w = snprintf(list + o, sizeof(list) - o, "%s'%s'",
				                 c == def->choices ? "" : ", ", *c);
				if (w < 0)
					break;
				o += (size_t)w;
			}
			msg(m, ml, "expected one of %s, got '%s'", list, quote_str(&q, text));
		}
		return -EINVAL;
	case NC_CFG_STRLIST: {
		if (*text == '\0')
			return build_list(def, NULL, 0, out, m, ml);
		size_t n = 1;
		for (const char *p = text; *p; p++)
			n += *p == ';';
		char *copy = strdup(text);
		char **items = calloc(n, sizeof(*items));
		if (copy == NULL || items == NULL) {
			free(copy);
			free(items);
			return -ENOMEM;
		}
		char *p = copy;
		for (size_t j = 0; j < n; j++) {
			items[j] = p;
			p = strchr(p, ';');
			if (p != NULL)
				*p++ = '\0';
		}
		rc = build_list(def, items, n, out, m, ml);
		free(items);
		free(copy);
		return rc;
	}
	}
	msg(m, ml, "unknown type %d", (int)def->type);
	return -EINVAL;
}

/* The value @p v seen as the public view handed to callbacks. */
static void val_view(const struct nc_cfg_def *def, const struct cfg_val *v,
                     struct nc_cfg_value *out)
{
	memset(out, 0, sizeof(*out));
	out->type = def->type;
	switch (def->type) {
	case NC_CFG_BOOL:
		out->u.b = v->b;
		break;
	case NC_CFG_INT:
		out->u.i = v->i;
		break;
	case NC_CFG_STR:
	case NC_CFG_ENUM:
		out->u.s = v->s;
		break;
	case NC_CFG_STRLIST:
		out->u.list.items = (const char *const *)v->items;
		out->u.list.n = v->n;
		break;
	}
}

/* The stored value of @p k; the caller holds op_lock (no writer can run). */
static void stored_val(const struct cfg_key *k, struct cfg_val *out)
{
	out->b = atomic_load(&k->b);
	out->i = atomic_load(&k->i);
	out->s = k->s;
	out->s_static = k->s_static;
	out->items = k->items;
	out->n = k->n;
}

/*
 * Swap @p v into @p k; @p v gets the old value for the caller to free once
 * val_lock is released. Caller holds op_lock and val_lock.
 */
static void store_locked(struct cfg_key *k, struct cfg_val *v)
{
	struct cfg_val old;

	stored_val(k, &old);
	atomic_store(&k->b, v->b);
	atomic_store(&k->i, v->i);
	k->s = v->s;
	k->s_static = v->s_static;
	k->items = v->items;
	k->n = v->n;
	*v = old;
}

/* Run @p k's apply callback on @p v; caller holds op_lock, not val_lock. */
static int call_apply(const struct nc_config *cfg, const struct cfg_key *k, const struct cfg_val *v,
                      char *m, size_t ml)
{
	struct nc_cfg_value view;
	char cb[256] = "";

	if (k->apply == NULL)
		return 0;
	val_view(k->def, v, &view);
	tl_applying = cfg;
	int rc = k->apply(k->def, &view, k->apply_arg, cb, sizeof(cb));
	tl_applying = NULL;
	if (rc == 0)
		return 0;
	if (rc > 0) {
		NC_LOG(WARN, "%s: apply callback returned %d, not a negative errno", k->def->name,
		       rc);
		rc = -EINVAL;
	}
	cb[sizeof(cb) - 1] = '\0';
	if (cb[0] != '\0') {
		msg(m, ml, "%s", cb);
	} else {
		char eb[64];
		msg(m, ml, "refused: %s", errstr(-rc, eb, sizeof(eb)));
	}
	return rc;
}

/* ---- create / destroy ---- */

static int check_def(const struct nc_cfg_def *d, size_t idx)
{
	const char *name = d->name;

	if (name == NULL) {
		NC_LOG(ERR, "key #%zu has no name", idx);
		return -EINVAL;
	}
	const char *dot = strchr(name, '.');
	if (dot == NULL || dot == name || dot[1] == '\0' || strchr(dot + 1, '.') != NULL) {
		NC_LOG(ERR, "key '%s': name is not 'section.key'", name);
		return -EINVAL;
	}
	switch (d->type) {
	case NC_CFG_BOOL:
		break;
	case NC_CFG_INT:
		if (d->min > d->max) {
			NC_LOG(ERR, "key '%s': min %" PRId64 " > max %" PRId64, name, d->min,
			       d->max);
			return -EINVAL;
		}
		break;
	case NC_CFG_STR:
	case NC_CFG_STRLIST:
		if (d->min < 0 || d->max < 0 || (d->max != 0 && d->min > d->max) ||
		    (d->type == NC_CFG_STRLIST && (d->min > UINT_MAX || d->max > UINT_MAX))) {
			NC_LOG(ERR, "key '%s': bad bounds [%" PRId64 ", %" PRId64 "]", name, d->min,
			       d->max);
			return -EINVAL;
		}
		break;
	case NC_CFG_ENUM:
		if (d->choices == NULL || d->choices[0] == NULL) {
			NC_LOG(ERR, "key '%s': enum without choices", name);
			return -EINVAL;
		}
		break;
	default:
		NC_LOG(ERR, "key '%s': unknown type %d", name, (int)d->type);
		return -EINVAL;
	}
	return 0;
}

static int build_schema(struct nc_config *cfg)
{
	cfg->secs = calloc(cfg->n + 1, sizeof(*cfg->secs));
	if (cfg->secs == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n; i++) {
		struct cfg_key *k = &cfg->keys[i];
		const char *name = k->def->name;
		size_t slen = (size_t)(k->key - 1 - name);
		int s = find_section(cfg, name, slen);
		if (s < 0) {
			s = (int)cfg->nsec;
			cfg->secs[s].name = strndup(name, slen);
			if (cfg->secs[s].name == NULL)
				return -ENOMEM;
			cfg->nsec++;
		}
		k->sec = (unsigned)s;
		k->slot = cfg->secs[s].nkeys++;
	}

	cfg->top_fields = calloc(cfg->nsec + 1, sizeof(*cfg->top_fields));
	if (cfg->top_fields == NULL)
		return -ENOMEM;
	for (unsigned s = 0; s < cfg->nsec; s++) {
		struct cfg_section *sec = &cfg->secs[s];
		sec->fields = calloc(sec->nkeys + 1, sizeof(*sec->fields));
		if (sec->fields == NULL)
			return -ENOMEM;
		cyaml_schema_field_t *f = &cfg->top_fields[s];
		f->key = sec->name;
		f->data_offset = (uint32_t)(s * sizeof(void *));
		f->value.type = CYAML_MAPPING;
		/* An empty "section:" loads as NULL, like an absent one. */
		f->value.flags = (enum cyaml_flag)(CYAML_FLAG_POINTER_NULL | CYAML_FLAG_OPTIONAL);
		f->value.data_size = (uint32_t)(sec->nkeys * sizeof(struct cfg_leaf));
		f->value.mapping.fields = sec->fields;
	}
	for (size_t i = 0; i < cfg->n; i++) {
		const struct cfg_key *k = &cfg->keys[i];
		cyaml_schema_field_t *f = &cfg->secs[k->sec].fields[k->slot];
		size_t base = k->slot * sizeof(struct cfg_leaf);
		f->key = k->key;
		f->data_offset = (uint32_t)(base + offsetof(struct cfg_leaf, p));
		if (k->def->type == NC_CFG_STRLIST) {
			f->count_offset = (uint32_t)(base + offsetof(struct cfg_leaf, n));
			f->count_size = sizeof(uint32_t);
			f->value.type = CYAML_SEQUENCE;
			f->value.flags =
			        (enum cyaml_flag)(CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL);
			f->value.data_size = sizeof(char *);
			f->value.sequence.entry = &item_schema;
			f->value.sequence.min = 0;
			f->value.sequence.max = CYAML_UNLIMITED;
		} else {
			f->value.type = CYAML_STRING;
			f->value.flags =
			        (enum cyaml_flag)(CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL);
			f->value.data_size = sizeof(char);
			f->value.string.min = 0;
			f->value.string.max = CYAML_UNLIMITED;
		}
	}
	cfg->top.type = CYAML_MAPPING;
	cfg->top.flags = CYAML_FLAG_POINTER_NULL;
	cfg->top.data_size = (uint32_t)(cfg->nsec * sizeof(void *));
	cfg->top.mapping.fields = cfg->top_fields;
	return 0;
}

struct nc_config *nc_config_create(const struct nc_cfg_def *defs, size_t n)
{
	struct nc_config *cfg;
	int rc = 0;

	if ((defs == NULL && n != 0) || n > UINT_MAX / 2) {
		errno = EINVAL;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (check_def(&defs[i], i) != 0) {
			errno = EINVAL;
			return NULL;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(defs[i].name, defs[j].name) == 0) {
				NC_LOG(ERR, "key '%s' is defined twice", defs[i].name);
				errno = EINVAL;
				return NULL;
			}
		}
	}

	cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL)
		return NULL;
	cfg->defs = defs;
	cfg->n = n;
	pthread_mutex_init(&cfg->op_lock, NULL);
	pthread_mutex_init(&cfg->val_lock, NULL);
	cfg->keys = calloc(n + 1, sizeof(*cfg->keys));
	if (cfg->keys == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		cfg->keys[i].def = &defs[i];
		cfg->keys[i].key = strchr(defs[i].name, '.') + 1;
	}
	rc = build_schema(cfg);
	if (rc != 0)
		goto fail;

	for (size_t i = 0; i < n; i++) {
		struct cfg_key *k = &cfg->keys[i];
		struct cfg_val v;
		char m[256] = "";
		const char *text = k->def->defval != NULL ? k->def->defval : "";
		rc = parse_text(k->def, text, &v, m, sizeof(m));
		if (rc != 0) {
			if (rc == -EINVAL)
				NC_LOG(ERR, "key '%s': bad default: %s", k->def->name, m);
			goto fail;
		}
		store_locked(k, &v); /* no other thread can see cfg yet */
		val_free(&v);
	}
	return cfg;

fail:
	nc_config_destroy(cfg);
	errno = rc == -ENOMEM ? ENOMEM : EINVAL;
	return NULL;
}

void nc_config_destroy(struct nc_config *cfg)
{
	if (cfg == NULL)
		return;
	if (cfg->keys != NULL) {
		for (size_t i = 0; i < cfg->n; i++) {
			struct cfg_val v;
			stored_val(&cfg->keys[i], &v);
			val_free(&v);
		}
	}
	if (cfg->secs != NULL) {
		for (unsigned s = 0; s < cfg->nsec; s++) {
			free(cfg->secs[s].name);
			free(cfg->secs[s].fields);
		}
	}
	free(cfg->secs);
	free(cfg->top_fields);
	free(cfg->keys);
	pthread_mutex_destroy(&cfg->op_lock);
	pthread_mutex_destroy(&cfg->val_lock);
	free(cfg);
}

int nc_config_set_apply(struct nc_config *cfg, const char *name, nc_cfg_apply_fn fn, void *arg)
{
	struct cfg_key *k = find_key(cfg, name);

	if (k == NULL)
		return -ENOENT;
	if (tl_applying == cfg)
		return -EDEADLK;
	pthread_mutex_lock(&cfg->op_lock);
	k->apply = fn;
	k->apply_arg = arg;
	pthread_mutex_unlock(&cfg->op_lock);
	return 0;
}

/* ---- scan: the document's shape and the line of every key ---- */

enum scan_state {
	SC_STREAM,  /* expecting a document or the end of the stream */
	SC_ROOT,    /* expecting the document's root node */
	SC_TOP_KEY, /* in the root mapping: a section name or its end */
	SC_SEC_VAL, /* the value of a section */
	SC_KEY,     /* in a section: a key or the section's end */
	SC_VALUE,   /* the value of a key */
	SC_ITEM,    /* in a list value: an item or the list's end */
	SC_DOC_END, /* expecting the end of the document */
	SC_DONE,
};

struct scan {
	const struct nc_config *cfg;
	const char *name;
	const char *doc;
	size_t len;
	size_t *key_line; /* per key: line in the document, 0: not set */
	size_t *sec_line; /* per section */
	bool has_root_map;
	unsigned ndocs;
	enum scan_state st;
	int sec;  /* current section */
	long cur; /* current key */
	char *err;
	size_t errlen;
};

static size_t ev_line(const yaml_event_t *ev)
{
	return ev->start_mark.line + 1;
}

static const char *node_kind(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return "a scalar";
	case YAML_SEQUENCE_START_EVENT:
		return "a sequence";
	case YAML_MAPPING_START_EVENT:
		return "a mapping";
	default:
		return "something else";
	}
}

static int scan_syntax_error(struct scan *sc, const yaml_parser_t *p)
{
	const char *problem = p->problem != NULL ? p->problem : "unknown error";
	size_t line = p->problem_mark.line + 1;
	size_t col = p->problem_mark.column + 1;

	if (p->error == YAML_MEMORY_ERROR) {
		msg(sc->err, sc->errlen, "%s: out of memory while parsing", sc->name);
		return -ENOMEM;
	}
	if (p->error == YAML_READER_ERROR) {
		/* The reader reports a byte offset, not a mark. */
		size_t off = p->problem_offset < sc->len ? p->problem_offset : sc->len;
		line = 1;
		col = 1;
		for (size_t i = 0; i < off; i++) {
			if (sc->doc[i] == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
		}
		msg(sc->err, sc->errlen, "%s:%zu:%zu: cannot read YAML: %s", sc->name, line, col,
		    problem);
		return -EINVAL;
	}
	if (p->context != NULL)
		msg(sc->err, sc->errlen, "%s:%zu:%zu: YAML syntax error: %s (%s at line %zu)",
		    sc->name, line, col, problem, p->context, p->context_mark.line + 1);
	else
		msg(sc->err, sc->errlen, "%s:%zu:%zu: YAML syntax error: %s", sc->name, line, col,
		    problem);
	return -EINVAL;
}

/* Refuse aliases, anchors and tags: the loader does not need them. */
static int scan_node_props(struct scan *sc, const yaml_event_t *ev)
{
	const yaml_char_t *anchor = NULL;
	const yaml_char_t *tag = NULL;

	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		msg(sc->err, sc->errlen, "%s:%zu: aliases are not allowed", sc->name, ev_line(ev));
		return -EINVAL;
	case YAML_SCALAR_EVENT:
		anchor = ev->data.scalar.anchor;
		tag = ev->data.scalar.tag;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
		break;
	default:
		return 0;
	}
	if (anchor != NULL) {
		msg(sc->err, sc->errlen, "%s:%zu: anchors are not allowed", sc->name, ev_line(ev));
		return -EINVAL;
	}
	if (tag != NULL) {
		msg(sc->err, sc->errlen, "%s:%zu: tags are not allowed", sc->name, ev_line(ev));
		return -EINVAL;
	}
	return 0;
}

static bool is_empty_plain(const yaml_event_t *ev)
{
	return ev->type == YAML_SCALAR_EVENT && ev->data.scalar.length == 0 &&
	       ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static int scan_scalar_value(struct scan *sc, const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;

	if (memchr(v, '\0', ev->data.scalar.length) != NULL) {
		msg(sc->err, sc->errlen, "%s:%zu: %s: value contains a NUL byte", sc->name,
		    ev_line(ev), sc->cfg->keys[sc->cur].def->name);
		return -EINVAL;
	}
	return 0;
}

static int scan_section_name(struct scan *sc, const yaml_event_t *ev)
{
	const char *text = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	const struct nc_config *cfg = sc->cfg;
	struct qbuf q;
	char hint[CFG_SUGGEST_MAX + 32];

	sc->sec = find_section(cfg, text, len);
	if (sc->sec < 0) {
		struct suggest sg;
		suggest_init(&sg, text, len);
		for (unsigned s = 0; s < cfg->nsec; s++)
			suggest_try(&sg, cfg->secs[s].name);
		/* A key written without its section. */
		for (size_t i = 0; i < cfg->n; i++) {
			if (same(cfg->keys[i].key, text, len)) {
				sg.best = cfg->keys[i].def->name;
				break;
			}
		}
		msg(sc->err, sc->errlen, "%s:%zu: unknown section '%s'%s", sc->name, ev_line(ev),
		    quote(&q, text, len), suggest_text(&sg, hint, sizeof(hint)));
		return -EINVAL;
	}
	if (sc->sec_line[sc->sec] != 0) {
		msg(sc->err, sc->errlen, "%s:%zu: duplicate section '%s' (first at line %zu)",
		    sc->name, ev_line(ev), cfg->secs[sc->sec].name, sc->sec_line[sc->sec]);
		return -EINVAL;
	}
	sc->sec_line[sc->sec] = ev_line(ev);
	return 0;
}

static int scan_key_name(struct scan *sc, const yaml_event_t *ev)
{
	const char *text = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	const struct nc_config *cfg = sc->cfg;
	const char *sname = cfg->secs[sc->sec].name;
	struct qbuf q;
	char hint[CFG_SUGGEST_MAX + 32];

	sc->cur = find_in_section(cfg, (unsigned)sc->sec, text, len);
	if (sc->cur < 0) {
		struct suggest sg;
		char full[CFG_SUGGEST_MAX + 1];
		size_t slen = strlen(sname);
		if (slen + 1 + len <= CFG_SUGGEST_MAX) {
			memcpy(full, sname, slen);
			full[slen] = '.';
			memcpy(full + slen + 1, text, len);
			suggest_init(&sg, full, slen + 1 + len);
			for (size_t i = 0; i < cfg->n; i++)
				suggest_try(&sg, cfg->keys[i].def->name);
		} else {
			suggest_init(&sg, text, len);
		}
		/* The right key in the wrong section. */
		if (sg.best == NULL) {
			for (size_t i = 0; i < cfg->n; i++) {
				if (same(cfg->keys[i].key, text, len)) {
					sg.best = cfg->keys[i].def->name;
					break;
				}
			}
		}
		msg(sc->err, sc->errlen, "%s:%zu: unknown key '%s.%s'%s", sc->name, ev_line(ev),
		    sname, quote(&q, text, len), suggest_text(&sg, hint, sizeof(hint)));
		return -EINVAL;
	}
	if (sc->key_line[sc->cur] != 0) {
		msg(sc->err, sc->errlen, "%s:%zu: duplicate key '%s' (first at line %zu)", sc->name,
		    ev_line(ev), cfg->keys[sc->cur].def->name, sc->key_line[sc->cur]);
		return -EINVAL;
	}
	sc->key_line[sc->cur] = ev_line(ev);
	return 0;
}

static int scan_event(struct scan *sc, const yaml_event_t *ev)
{
	const struct nc_config *cfg = sc->cfg;
	int rc = scan_node_props(sc, ev);

	if (rc != 0)
		return rc;

	switch (sc->st) {
	case SC_STREAM:
		if (ev->type == YAML_STREAM_START_EVENT)
			return 0;
		if (ev->type == YAML_STREAM_END_EVENT) {
			sc->st = SC_DONE;
			return 0;
		}
		if (ev->type == YAML_DOCUMENT_START_EVENT) {
			if (sc->ndocs++ > 0) {
				msg(sc->err, sc->errlen, "%s:%zu: more than one YAML document",
				    sc->name, ev_line(ev));
				return -EINVAL;
			}
			sc->st = SC_ROOT;
			return 0;
		}
		break;
	case SC_ROOT:
		if (ev->type == YAML_MAPPING_START_EVENT) {
			sc->has_root_map = true;
			sc->st = SC_TOP_KEY;
			return 0;
		}
		if (is_empty_plain(ev)) {
			sc->st = SC_DOC_END; /* "---" and nothing else */
			return 0;
		}
		if (ev->type == YAML_SCALAR_EVENT || ev->type == YAML_SEQUENCE_START_EVENT) {
			msg(sc->err, sc->errlen, "%s:%zu: expected a mapping of sections, got %s",
			    sc->name, ev_line(ev), node_kind(ev));
			return -EINVAL;
		}
		break;
	case SC_TOP_KEY:
		if (ev->type == YAML_MAPPING_END_EVENT) {
			sc->st = SC_DOC_END;
			return 0;
		}
		if (ev->type == YAML_SCALAR_EVENT) {
			rc = scan_section_name(sc, ev);
			if (rc == 0)
				sc->st = SC_SEC_VAL;
			return rc;
		}
		if (ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT) {
			msg(sc->err, sc->errlen, "%s:%zu: a section name must be a scalar, got %s",
			    sc->name, ev_line(ev), node_kind(ev));
			return -EINVAL;
		}
		break;
	case SC_SEC_VAL:
		if (ev->type == YAML_MAPPING_START_EVENT) {
			sc->st = SC_KEY;
			return 0;
		}
		if (is_empty_plain(ev)) {
			sc->st = SC_TOP_KEY; /* "section:" with nothing under it */
			return 0;
		}
		if (ev->type == YAML_SCALAR_EVENT || ev->type == YAML_SEQUENCE_START_EVENT) {
			msg(sc->err, sc->errlen, "%s:%zu: %s: expected a mapping of keys, got %s",
			    sc->name, sc->sec_line[sc->sec], cfg->secs[sc->sec].name,
			    node_kind(ev));
			return -EINVAL;
		}
		break;
	case SC_KEY:
		if (ev->type == YAML_MAPPING_END_EVENT) {
			sc->st = SC_TOP_KEY;
			return 0;
		}
		if (ev->type == YAML_SCALAR_EVENT) {
			rc = scan_key_name(sc, ev);
			if (rc == 0)
				sc->st = SC_VALUE;
			return rc;
		}
		if (ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT) {
			msg(sc->err, sc->errlen, "%s:%zu: %s: a key must be a scalar, got %s",
			    sc->name, ev_line(ev), cfg->secs[sc->sec].name, node_kind(ev));
			return -EINVAL;
		}
		break;
	case SC_VALUE: {
		const struct nc_cfg_def *def = cfg->keys[sc->cur].def;
		size_t line = sc->key_line[sc->cur];
		if (def->type == NC_CFG_STRLIST) {
			if (ev->type == YAML_SEQUENCE_START_EVENT) {
				sc->st = SC_ITEM;
				return 0;
			}
			if (ev->type == YAML_SCALAR_EVENT || ev->type == YAML_MAPPING_START_EVENT) {
				msg(sc->err, sc->errlen, "%s:%zu: %s: expected a list, got %s",
				    sc->name, line, def->name, node_kind(ev));
				return -EINVAL;
			}
			break;
		}
		if (ev->type == YAML_SCALAR_EVENT) {
			sc->st = SC_KEY;
			return scan_scalar_value(sc, ev);
		}
		if (ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT) {
			msg(sc->err, sc->errlen, "%s:%zu: %s: expected a single value, got %s",
			    sc->name, line, def->name, node_kind(ev));
			return -EINVAL;
		}
		break;
	}
	case SC_ITEM:
		if (ev->type == YAML_SEQUENCE_END_EVENT) {
			sc->st = SC_KEY;
			return 0;
		}
		if (ev->type == YAML_SCALAR_EVENT)
			return scan_scalar_value(sc, ev);
		if (ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT) {
			msg(sc->err, sc->errlen, "%s:%zu: %s: list items must be strings, got %s",
			    sc->name, ev_line(ev), cfg->keys[sc->cur].def->name, node_kind(ev));
			return -EINVAL;
		}
		break;
	case SC_DOC_END:
		if (ev->type == YAML_DOCUMENT_END_EVENT) {
			sc->st = SC_STREAM;
			return 0;
		}
		break;
	case SC_DONE:
		break;
	}
	msg(sc->err, sc->errlen, "%s:%zu: unexpected YAML event %d", sc->name, ev_line(ev),
	    (int)ev->type);
	return -EINVAL;
}

static int scan_document(struct scan *sc)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	int rc = 0;

	if (!yaml_parser_initialize(&parser)) {
		msg(sc->err, sc->errlen, "%s: out of memory", sc->name);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)sc->doc, sc->len);
	sc->st = SC_STREAM;
	while (sc->st != SC_DONE) {
		if (!yaml_parser_parse(&parser, &ev)) {
			rc = scan_syntax_error(sc, &parser);
			break;
		}
		rc = scan_event(sc, &ev);
		yaml_event_delete(&ev);
		if (rc != 0)
			break;
	}
	yaml_parser_delete(&parser);
	return rc;
}

/* ---- load ---- */

struct cyaml_capture {
	char first[256]; /* first error libcyaml logged */
};

static void cyaml_capture_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
	struct cyaml_capture *cap = ctx;
	char line[256];

	vsnprintf(line, sizeof(line), fmt, args);
	line[strcspn(line, "\n")] = '\0';
	if (level >= CYAML_LOG_ERROR && cap->first[0] == '\0')
		snprintf(cap->first, sizeof(cap->first), "%s", line);
	NC_LOG(DEBUG, "libcyaml: %s", line);
}

/* Passes 2 and 3: libcyaml, then the strict parsers into @p stage. */
static int load_values(struct nc_config *cfg, const struct scan *sc, struct cfg_val *stage,
                       char *err, size_t errlen)
{
	struct cyaml_capture cap = {.first = ""};
	const cyaml_config_t ccfg = {
	        .log_fn = cyaml_capture_log,
	        .log_ctx = &cap,
	        .mem_fn = cyaml_mem,
	        .log_level = CYAML_LOG_WARNING,
	        .flags = CYAML_CFG_NO_ALIAS,
	};
	cyaml_data_t *data = NULL;
	int rc = 0;

	cyaml_err_t cerr =
	        cyaml_load_data((const uint8_t *)sc->doc, sc->len, &ccfg, &cfg->top, &data, NULL);
	if (cerr != CYAML_OK) {
		msg(err, errlen, "%s: cannot load: %s%s%s", sc->name, cyaml_strerror(cerr),
		    cap.first[0] ? ": " : "", cap.first);
		return cerr == CYAML_ERR_OOM ? -ENOMEM : -EINVAL;
	}

	void *const *secs = data;
	for (size_t i = 0; i < cfg->n && rc == 0; i++) {
		const struct cfg_key *k = &cfg->keys[i];
		size_t line = sc->key_line[i];
		char m[512] = "";
		if (line == 0)
			continue;
		const struct cfg_leaf *leafs = secs != NULL ? secs[k->sec] : NULL;
		const struct cfg_leaf *leaf = leafs != NULL ? &leafs[k->slot] : NULL;
		/* An empty sequence loads as NULL, 0. */
		if (leaf == NULL || (leaf->p == NULL && k->def->type != NC_CFG_STRLIST)) {
			msg(err, errlen, "%s:%zu: %s: libcyaml did not load this key", sc->name,
			    line, k->def->name);
			rc = -EINVAL;
			break;
		}
		if (k->def->type == NC_CFG_STRLIST) {
			memset(&stage[i], 0, sizeof(stage[i]));
			rc = build_list(k->def, leaf->p, leaf->n, &stage[i], m, sizeof(m));
		} else {
			rc = parse_text(k->def, leaf->p, &stage[i], m, sizeof(m));
		}
		if (rc == -EINVAL)
			msg(err, errlen, "%s:%zu: %s: %s", sc->name, line, k->def->name, m);
		else if (rc != 0)
			msg(err, errlen, "%s: out of memory", sc->name);
	}
	cyaml_free(&ccfg, &cfg->top, data, 0);
	return rc;
}

/* Pass 4: apply callbacks, rollback on refusal, else commit. */
static int apply_and_commit(struct nc_config *cfg, const struct scan *sc, struct cfg_val *stage,
                            char *err, size_t errlen)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < cfg->n; i++) {
		char m[256] = "";
		if (sc->key_line[i] == 0)
			continue;
		rc = call_apply(cfg, &cfg->keys[i], &stage[i], m, sizeof(m));
		if (rc != 0) {
			msg(err, errlen, "%s:%zu: %s: %s", sc->name, sc->key_line[i],
			    cfg->keys[i].def->name, m);
			break;
		}
	}
	if (rc != 0) {
		while (i-- > 0) {
			struct cfg_val old;
			char m[256] = "";
			if (sc->key_line[i] == 0 || cfg->keys[i].apply == NULL)
				continue;
			stored_val(&cfg->keys[i], &old);
			if (call_apply(cfg, &cfg->keys[i], &old, m, sizeof(m)) != 0)
				NC_LOG(ERR, "%s: rollback of %s failed: %s", sc->name,
				       cfg->keys[i].def->name, m);
		}
		return rc;
	}

	pthread_mutex_lock(&cfg->val_lock);
	for (i = 0; i < cfg->n; i++) {
		if (sc->key_line[i] != 0)
			store_locked(&cfg->keys[i], &stage[i]);
	}
	pthread_mutex_unlock(&cfg->val_lock);
	return 0;
}

int nc_config_load_string(struct nc_config *cfg, const char *yaml, size_t len, const char *name,
                          char *err, size_t errlen)
{
	struct scan sc = {
	        .cfg = cfg,
	        .name = name != NULL ? name : "<string>",
	        .doc = yaml != NULL ? yaml : "",
	        .len = len,
	        .err = err,
	        .errlen = errlen,
	        .sec = -1,
	        .cur = -1,
	};
	struct cfg_val *stage = NULL;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (cfg == NULL || (yaml == NULL && len != 0)) {
		msg(err, errlen, "%s: invalid argument", sc.name);
		return -EINVAL;
	}
	if (tl_applying == cfg) {
		msg(err, errlen, "%s: cannot load from an apply callback", sc.name);
		return -EDEADLK;
	}

	pthread_mutex_lock(&cfg->op_lock);
	sc.key_line = calloc(cfg->n + 1, sizeof(*sc.key_line));
	sc.sec_line = calloc(cfg->nsec + 1, sizeof(*sc.sec_line));
	stage = calloc(cfg->n + 1, sizeof(*stage));
	if (sc.key_line == NULL || sc.sec_line == NULL || stage == NULL) {
		msg(err, errlen, "%s: out of memory", sc.name);
		rc = -ENOMEM;
		goto out;
	}

	rc = scan_document(&sc);
	if (rc != 0)
		goto out;
	/* Nothing to load from an empty document: libcyaml is not needed. */
	if (!sc.has_root_map)
		goto out;
	rc = load_values(cfg, &sc, stage, err, errlen);
	if (rc != 0)
		goto out;
	rc = apply_and_commit(cfg, &sc, stage, err, errlen);

out:
	/* stage holds unused new values, or the old ones after a commit. */
	if (stage != NULL) {
		for (size_t i = 0; i < cfg->n; i++)
			val_free(&stage[i]);
	}
	pthread_mutex_unlock(&cfg->op_lock);
	free(stage);
	free(sc.key_line);
	free(sc.sec_line);
	return rc;
}

int nc_config_load_file(struct nc_config *cfg, const char *path, char *err, size_t errlen)
{
	char eb[128];
	char *buf = NULL;
	size_t len = 0;
	size_t cap = 0;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (cfg == NULL || path == NULL) {
		msg(err, errlen, "%s: invalid argument", path != NULL ? path : "(null)");
		return -EINVAL;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		msg(err, errlen, "%s: cannot open: %s", path, errstr(-rc, eb, sizeof(eb)));
		return rc;
	}
	for (;;) {
		if (len == cap) {
			if (cap >= CFG_FILE_MAX) {
				msg(err, errlen, "%s: cannot read: larger than %u bytes", path,
				    CFG_FILE_MAX);
				rc = -EFBIG;
				goto out;
			}
			size_t ncap = cap != 0 ? cap * 2 : 4096;
			char *nbuf = realloc(buf, ncap);
			if (nbuf == NULL) {
				msg(err, errlen, "%s: out of memory", path);
				rc = -ENOMEM;
				goto out;
			}
			buf = nbuf;
			cap = ncap;
		}
		ssize_t r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			msg(err, errlen, "%s: cannot read: %s", path, errstr(-rc, eb, sizeof(eb)));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	rc = nc_config_load_string(cfg, buf != NULL ? buf : "", len, path, err, errlen);
out:
	close(fd);
	free(buf);
	return rc;
}

/* ---- set / get ---- */

int nc_config_set(struct nc_config *cfg, const char *name, const char *text, bool running,
                  char *err, size_t errlen)
{
	struct qbuf q;
	struct cfg_val v;
	char m[512] = "";
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (cfg == NULL || name == NULL) {
		msg(err, errlen, "invalid argument");
		return -EINVAL;
	}
	struct cfg_key *k = find_key(cfg, name);
	if (k == NULL) {
		struct suggest sg;
		char hint[CFG_SUGGEST_MAX + 32];
		suggest_init(&sg, name, strlen(name));
		for (size_t i = 0; i < cfg->n; i++)
			suggest_try(&sg, cfg->keys[i].def->name);
		msg(err, errlen, "%s: unknown key%s", quote_str(&q, name),
		    suggest_text(&sg, hint, sizeof(hint)));
		return -ENOENT;
	}
	if (running && !k->def->runtime) {
		msg(err, errlen, "%s cannot change while running", name);
		return -EPERM;
	}
	if (text == NULL) {
		msg(err, errlen, "%s: no value", name);
		return -EINVAL;
	}
	if (tl_applying == cfg) {
		msg(err, errlen, "%s: cannot set from an apply callback", name);
		return -EDEADLK;
	}
	rc = parse_text(k->def, text, &v, m, sizeof(m));
	if (rc != 0) {
		if (rc == -EINVAL)
			msg(err, errlen, "%s: %s", name, m);
		else
			msg(err, errlen, "%s: out of memory", name);
		return rc;
	}

	pthread_mutex_lock(&cfg->op_lock);
	rc = call_apply(cfg, k, &v, m, sizeof(m));
	if (rc != 0) {
		msg(err, errlen, "%s: %s", name, m);
	} else {
		pthread_mutex_lock(&cfg->val_lock);
		store_locked(k, &v);
		pthread_mutex_unlock(&cfg->val_lock);
	}
	pthread_mutex_unlock(&cfg->op_lock);
	val_free(&v); /* the refused value, or the old one */
	return rc;
}

const struct nc_cfg_def *nc_config_find(const struct nc_config *cfg, const char *name)
{
	const struct cfg_key *k = find_key(cfg, name);

	return k != NULL ? k->def : NULL;
}

size_t nc_config_count(const struct nc_config *cfg)
{
	return cfg != NULL ? cfg->n : 0;
}

const struct nc_cfg_def *nc_config_def_at(const struct nc_config *cfg, size_t i)
{
	return cfg != NULL && i < cfg->n ? cfg->keys[i].def : NULL;
}

static const struct cfg_key *key_or_die(const struct nc_config *cfg, const char *name,
                                        enum nc_cfg_type t1, enum nc_cfg_type t2, const char *fn)
{
	const struct cfg_key *k = find_key(cfg, name);

	if (k == NULL) {
		NC_LOG(ERR, "%s: unknown key '%s'", fn, name != NULL ? name : "(null)");
		abort();
	}
	if (k->def->type != t1 && k->def->type != t2) {
		NC_LOG(ERR, "%s: key '%s' is a %s", fn, name, nc_cfg_type_name(k->def->type));
		abort();
	}
	return k;
}

bool nc_config_get_bool(const struct nc_config *cfg, const char *name)
{
	const struct cfg_key *k = key_or_die(cfg, name, NC_CFG_BOOL, NC_CFG_BOOL, __func__);

	return atomic_load_explicit(&k->b, memory_order_relaxed);
}

int64_t nc_config_get_int(const struct nc_config *cfg, const char *name)
{
	const struct cfg_key *k = key_or_die(cfg, name, NC_CFG_INT, NC_CFG_INT, __func__);

	return atomic_load_explicit(&k->i, memory_order_relaxed);
}

const char *nc_config_get_str(const struct nc_config *cfg, const char *name)
{
	const struct cfg_key *k = key_or_die(cfg, name, NC_CFG_STR, NC_CFG_ENUM, __func__);
	struct nc_config *c = (struct nc_config *)cfg;

	pthread_mutex_lock(&c->val_lock);
	const char *s = k->s;
	pthread_mutex_unlock(&c->val_lock);
	return s;
}

unsigned nc_config_get_list(const struct nc_config *cfg, const char *name,
                            const char *const **items)
{
	const struct cfg_key *k = key_or_die(cfg, name, NC_CFG_STRLIST, NC_CFG_STRLIST, __func__);
	struct nc_config *c = (struct nc_config *)cfg;

	pthread_mutex_lock(&c->val_lock);
	unsigned n = k->n;
	if (items != NULL)
		*items = (const char *const *)k->items;
	pthread_mutex_unlock(&c->val_lock);
	return n;
}

int nc_config_format(const struct nc_config *cfg, const char *name, char *buf, size_t len)
{
	const struct cfg_key *k = find_key(cfg, name);
	struct nc_config *c = (struct nc_config *)cfg;
	size_t need = 0;

	if (k == NULL)
		return -ENOENT;
	if (buf == NULL)
		len = 0;
	pthread_mutex_lock(&c->val_lock);
	switch (k->def->type) {
	case NC_CFG_BOOL:
		need = (size_t)snprintf(buf, len, "%s", atomic_load(&k->b) ? "true" : "false");
		break;
	case NC_CFG_INT:
		need = (size_t)snprintf(buf, len, "%" PRId64, atomic_load(&k->i));
		break;
	case NC_CFG_STR:
	case NC_CFG_ENUM:
		need = (size_t)snprintf(buf, len, "%s", k->s);
		break;
	case NC_CFG_STRLIST:
		if (len > 0)
			buf[0] = '\0';
		for (unsigned j = 0; j < k->n; j++) {
			const char *it = k->items[j];
			size_t il = strlen(it);
			if (j > 0) {
				if (need + 1 < len) {
					buf[need] = ';';
					buf[need + 1] = '\0';
				}
				need++;
			}
			if (need < len) {
				size_t room = len - 1 - need;
				size_t c_len = il < room ? il : room;
				memcpy(buf + need, it, c_len);
				buf[need + c_len] = '\0';
			}
			need += il;
		}
		break;
	}
	pthread_mutex_unlock(&c->val_lock);
	return need > INT_MAX ? -EOVERFLOW : (int)need;
}

const char *nc_cfg_type_name(enum nc_cfg_type type)
{
	switch (type) {
	case NC_CFG_BOOL:
		return "bool";
	case NC_CFG_INT:
		return "int";
	case NC_CFG_STR:
		return "string";
	case NC_CFG_ENUM:
		return "enum";
	case NC_CFG_STRLIST:
		return "list";
	}
	return "?";
}
