/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_ctl: libFuzzer target for the control socket's request parser and
 * dispatcher (outside input: a request line). Every line gets a reply object
 * with "ok"; an error reply has a code and a message.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nc_ctl.h"

static int echo(const json_t *params, json_t **result, void *arg, char *err, size_t errlen)
{
	(void)arg, (void)err, (void)errlen;
	*result = json_deep_copy(params);
	return 0;
}

static const struct nc_ctl_param params[] = {
        {"s", NC_CTL_STRING, true, ""},  {"i", NC_CTL_INT, false, ""},
        {"b", NC_CTL_BOOL, false, ""},   {"n", NC_CTL_NUMBER, false, ""},
        {"o", NC_CTL_OBJECT, false, ""}, {"a", NC_CTL_ANY, false, ""},
        {NULL, 0, false, NULL},
};

static const struct nc_ctl_method methods[] = {
        {"t.echo", "echo", params, echo},
        {NULL, NULL, NULL, NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct nc_ctl *ctl;
	if (ctl == NULL) {
		ctl = nc_ctl_create("/tmp/nc-fuzz-ctl-unused.sock");
		if (ctl == NULL || nc_ctl_register_all(ctl, methods, NULL) != 0)
			abort();
	}
	json_t *r = nc_ctl_handle_line(ctl, (const char *)data, size);
	if (r == NULL || !json_is_boolean(json_object_get(r, "ok")))
		abort();
	if (json_is_false(json_object_get(r, "ok"))) {
		json_t *e = json_object_get(r, "error");
		if (!json_is_string(json_object_get(e, "code")) ||
		    !json_is_string(json_object_get(e, "message")))
			abort();
	}
	json_decref(r);
	return 0;
}
