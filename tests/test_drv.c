/* SPDX-License-Identifier: BSD-3-Clause */
/* test_drv: port specs ("DRIVER:ARGS") checked by the drivers before EAL sees them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "nc_drv.h"

static char err[512];

static int parse(const char *spec, struct nc_drv_port *p)
{
	err[0] = '\0';
	return nc_drv_parse(spec, 0, p, err, sizeof(err));
}

static void test_registry(void **state)
{
	(void)state;
	const char *want[] = {"af_packet", "af_xdp", "memif", "null", "ring"};
	assert_int_equal(nc_drv_count(), 5);
	for (unsigned i = 0; i < 5; i++) {
		assert_string_equal(nc_drv_at(i)->name, want[i]);
		assert_ptr_equal(nc_drv_find(want[i]), nc_drv_at(i));
		assert_non_null(nc_drv_at(i)->pmd);
		assert_non_null(nc_drv_at(i)->help);
	}
	assert_null(nc_drv_find("e1000"));
}

static void test_good_specs(void **state)
{
	(void)state;
	struct nc_drv_port p;
	assert_int_equal(parse("memif:role=server,socket=/run/x/m.sock,id=3", &p), 0);
	assert_string_equal(p.drv->name, "memif");
	assert_string_equal(p.devname, "net_memif0");
	/* A socket file, not the PMD's default abstract name. */
	assert_string_equal(p.devargs,
	                    "net_memif0,role=server,socket=/run/x/m.sock,id=3,socket-abstract=no");
	assert_string_equal(nc_drv_arg(&p, "role"), "server");
	assert_null(nc_drv_arg(&p, "secret"));
	assert_int_equal(parse("memif:socket-abstract=yes,secret=s3cr3t,mac=02:aB:00:00:00:01", &p),
	                 0);
	assert_string_equal(p.devargs,
	                    "net_memif0,socket-abstract=yes,secret=s3cr3t,mac=02:aB:00:00:00:01");
	/* Shown (logs, status) without the secret. */
	char shown[512];
	assert_int_equal(nc_drv_devargs_shown(&p, shown, sizeof(shown)), 0);
	assert_string_equal(shown,
	                    "net_memif0,socket-abstract=yes,secret=(set),mac=02:aB:00:00:00:01");
	assert_int_equal(nc_drv_devargs_shown(&p, shown, 20), -E2BIG);
	assert_int_equal(nc_drv_parse("null:", 2, &p, err, sizeof(err)), 0);
	assert_string_equal(p.devargs, "net_null2");
	assert_int_equal(parse("ring", &p), 0);
	assert_string_equal(p.devargs, "net_ring0");
	assert_int_equal(parse("af_packet:iface=veth0,qpairs=2", &p), 0);
	assert_string_equal(p.devargs, "net_af_packet0,iface=veth0,qpairs=2");
	assert_int_equal(parse("af_packet:framecnt=256,iface=veth0", &p), 0);
	assert_string_equal(p.devargs, "net_af_packet0,framecnt=256,iface=veth0");
	assert_int_equal(parse("af_xdp:iface=veth1,start_queue=0,queue_count=1", &p), 0);
	assert_string_equal(p.devname, "net_af_xdp0");
}

/* fit an af_packet spec to an MTU: the devargs it gets, the buffer room, or -EINVAL */
static int fit(const char *spec, unsigned mtu, struct nc_drv_port *p, unsigned *room)
{
	assert_int_equal(parse(spec, p), 0);
	*room = mtu + 18 > 2048 ? mtu + 18 : 2048;
	err[0] = '\0';
	return nc_drv_fit_mtu(p, mtu, room, err, sizeof(err));
}

/* af_packet's kernel slots follow the link MTU: a 1500-byte link keeps DPDK's
 * 2 KiB slots (8 MiB rings), a 9000-byte one gets 9 KiB slots in blocks of four
 * and buffers to hold them; values that cannot work are refused with one that
 * does. ("nc-no-such-if0" does not exist: its MTU is not checked.) */
static void test_af_packet_fits_mtu(void **state)
{
	(void)state;
	struct nc_drv_port p;
	unsigned room;
	assert_int_equal(fit("af_packet:iface=nc-no-such-if0", 1500, &p, &room), 0);
	assert_string_equal(p.devargs, "net_af_packet0,iface=nc-no-such-if0,framesz=2048,"
	                               "blocksz=4096,framecnt=4096");
	assert_int_equal(room, 2048);
	assert_int_equal(fit("af_packet:iface=nc-no-such-if0", 9000, &p, &room), 0);
	assert_string_equal(p.devargs, "net_af_packet0,iface=nc-no-such-if0,framesz=9216,"
	                               "blocksz=36864,framecnt=912");
	assert_int_equal(room, 9216 - 32); /* the PMD copies a whole slot but its header */
	/* given values are kept when they work */
	assert_int_equal(fit("af_packet:iface=x0,framesz=16384,framecnt=600", 9000, &p, &room), 0);
	assert_string_equal(p.devargs,
	                    "net_af_packet0,iface=x0,framesz=16384,framecnt=600,blocksz=16384");
	assert_int_equal(room, 16384 - 32);
	/* a slot too small for the MTU: 9000 + 14 bytes 66 bytes in */
	assert_int_equal(fit("af_packet:iface=x0,framesz=9072", 9000, &p, &room), -EINVAL);
	assert_non_null(strstr(err, "framesz=9216"));
	assert_int_equal(fit("af_packet:iface=x0", 1969, &p, &room), 0);
	assert_non_null(strstr(p.devargs, "framesz=3072"));
	/* blocks of whole slots, framecnt of whole blocks */
	assert_int_equal(parse("af_packet:iface=x0,framesz=9104,blocksz=36864", &p), -EINVAL);
	assert_non_null(strstr(err, "blocksz="));
	assert_int_equal(parse("af_packet:iface=x0,framesz=9000", &p), -EINVAL); /* not x16 */
	assert_int_equal(parse("af_packet:iface=x0,blocksz=6000", &p), -EINVAL); /* not pages */
	assert_int_equal(fit("af_packet:iface=x0,blocksz=8192", 9000, &p, &room), -EINVAL);
	assert_int_equal(fit("af_packet:iface=x0,framecnt=1001", 9000, &p, &room), -EINVAL);
	assert_non_null(strstr(err, "framecnt=1004"));
	/* kernel rings beyond 2 GiB a port: 16 pairs x 2 x 65536 x 9216 B = 18 GiB */
	assert_int_equal(fit("af_packet:iface=x0,qpairs=16,framecnt=65536", 9000, &p, &room),
	                 -EINVAL);
	assert_non_null(strstr(err, "18432 MiB"));
	assert_int_equal(fit("af_packet:iface=x0,qpairs=16", 9000, &p, &room), 0); /* 8 MiB rings */
	/* a buffer's room is 16 bits; an odd slot size needs a block no PMD ring takes */
	assert_int_equal(parse("af_packet:iface=x0,framesz=65536", &p), -EINVAL);
	assert_int_equal(fit("af_packet:iface=x0,framesz=32752", 9000, &p, &room), -EINVAL);
	assert_non_null(strstr(err, "multiple of 1024"));
	/* an argument too long for its slot is refused and adds nothing */
	assert_int_equal(parse("af_packet:iface=x0", &p), 0);
	unsigned n_args = p.n_args;
	char big[200];
	memset(big, '7', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(nc_drv_set_arg(&p, "framecnt", big), -E2BIG);
	assert_int_equal(p.n_args, n_args);
	assert_int_equal(nc_drv_set_arg(&p, "framecnt", "64"), 0);
	assert_int_equal(nc_drv_set_arg(&p, "framecnt", "128"), 0); /* replaced, not added */
	assert_int_equal(p.n_args, n_args + 1);
	assert_string_equal(nc_drv_arg(&p, "framecnt"), "128");
	/* other drivers have nothing to fit */
	assert_int_equal(parse("ring", &p), 0);
	room = 9018;
	assert_int_equal(nc_drv_fit_mtu(&p, 9000, &room, err, sizeof(err)), 0);
	assert_int_equal(room, 9018);
	assert_string_equal(p.devargs, "net_ring0");
}

static void test_bad_specs(void **state)
{
	(void)state;
	struct nc_drv_port p;
	assert_int_equal(parse("e1000:x=1", &p), -EINVAL);
	assert_non_null(strstr(err, "unknown driver 'e1000'"));
	assert_non_null(strstr(err, "memif"));
	assert_int_equal(parse(":role=server", &p), -EINVAL);
	assert_int_equal(parse("memif:rol=server", &p), -EINVAL);
	assert_non_null(strstr(err, "unknown argument 'rol'"));
	assert_non_null(strstr(err, "role"));
	assert_int_equal(parse("memif:role=master", &p), -EINVAL);
	assert_non_null(strstr(err, "role must be one of server client"));
	assert_int_equal(parse("memif:role=server,role=client", &p), -EINVAL);
	assert_non_null(strstr(err, "given twice"));
	assert_int_equal(parse("memif:role", &p), -EINVAL);
	assert_non_null(strstr(err, "not KEY=VALUE"));
	assert_int_equal(parse("memif:role=", &p), -EINVAL);
	assert_non_null(strstr(err, "no value"));
	assert_int_equal(parse("memif:role=server,", &p), -EINVAL);
	assert_int_equal(parse("memif:role=server,,id=1", &p), -EINVAL);
	assert_int_equal(parse("memif:socket=relative.sock", &p), -EINVAL);
	assert_non_null(strstr(err, "absolute"));
	assert_int_equal(parse("memif:id=4x", &p), -EINVAL);
	assert_non_null(strstr(err, "id must be an integer"));
	assert_int_equal(parse("af_packet:qpairs=2", &p), -EINVAL);
	assert_non_null(strstr(err, "'iface' is required"));
	assert_int_equal(parse("af_packet:iface=veth0,qpairs=0", &p), -EINVAL);
	assert_int_equal(parse("af_xdp:iface=v,busy_budget=-1", &p), -EINVAL);
	assert_int_equal(parse("null:size=99999", &p), -EINVAL);
	char longspec[1024];
	snprintf(longspec, sizeof(longspec), "memif:secret=%0200d", 1);
	assert_int_equal(parse(longspec, &p), -EINVAL);
	/* What EAL would read as another pair or a list. */
	assert_int_equal(parse("memif:role=server,socket=/run/a=b/m.sock", &p), -EINVAL);
	assert_non_null(strstr(err, "'socket'"));
	assert_int_equal(parse("memif:secret=[abc,socket=/x]", &p), -EINVAL);
	assert_int_equal(parse("af_packet:iface=v]", &p), -EINVAL);
	/* Keys this DPDK's memif does not know. */
	assert_int_equal(parse("memif:owner-uid=1", &p), -EINVAL);
	assert_non_null(strstr(err, "owner-uid"));
	/* The PMD counts 23 characters of a secret. */
	assert_int_equal(parse("memif:secret=abcdefghijklmnopqrstuvw", &p), 0);
	assert_int_equal(parse("memif:secret=abcdefghijklmnopqrstuvwx", &p), -EINVAL);
	assert_non_null(strstr(err, "secret is 24 characters"));
	assert_null(strstr(err, "abcdefgh")); /* not echoed */
	/* A socket path longer than sun_path. */
	snprintf(longspec, sizeof(longspec), "memif:socket=/%0110d", 1);
	assert_int_equal(parse(longspec, &p), -EINVAL);
	assert_non_null(strstr(err, "at most 107 fit"));
	assert_int_equal(parse("memif:mac=zz", &p), -EINVAL);
	assert_int_equal(parse("memif:mac=02:00:00:00:00:1", &p), -EINVAL);
	assert_int_equal(parse("memif:mac=02:00:00:00:00:011", &p), -EINVAL);
	assert_int_equal(parse("memif:mac=02-00-00-00-00-01", &p), -EINVAL);
}

static void test_prepare_hooks(void **state)
{
	(void)state;
	struct nc_drv_port p;
	assert_int_equal(parse("af_packet:iface=nc-no-such-if0", &p), 0);
	assert_int_equal(p.drv->prepare(&p, err, sizeof(err)), -ENODEV);
	assert_non_null(strstr(err, "nc-no-such-if0"));
	assert_int_equal(parse("af_xdp:iface=lo", &p), 0);
	assert_int_equal(p.drv->prepare(&p, err, sizeof(err)), 0);
	/* memif makes its socket's directory. */
	char dir[] = "/tmp/nc_test_drv.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char spec[256], sub[200];
	snprintf(sub, sizeof(sub), "%s/a/b", dir);
	snprintf(spec, sizeof(spec), "memif:role=server,socket=%s/m.sock", sub);
	assert_int_equal(parse(spec, &p), 0);
	assert_int_equal(p.drv->prepare(&p, err, sizeof(err)), 0);
	FILE *f = fopen(sub, "r");
	assert_non_null(f); /* the directory exists */
	fclose(f);
	/* A server's stale socket file (its process died) is removed; a live
	 * one is refused, and so is a path that is no socket. */
	char path[256];
	snprintf(path, sizeof(path), "%s/m.sock", sub);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(p.drv->prepare(&p, err, sizeof(err)), -EADDRINUSE);
	assert_non_null(strstr(err, "another process is listening"));
	close(fd); /* the file stays: stale */
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(p.drv->prepare(&p, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), -1);
	/* a client leaves the server's socket alone */
	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	snprintf(spec, sizeof(spec), "memif:role=client,socket=%s/m.sock", sub);
	assert_int_equal(parse(spec, &p), 0);
	assert_int_equal(p.drv->prepare(&p, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(unlink(path), 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(spec, sizeof(spec), "memif:role=server,socket=%s/m.sock", sub);
	assert_int_equal(parse(spec, &p), 0);
	assert_int_equal(p.drv->prepare(&p, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "not a socket"));
	/* a file where the socket's directory should be */
	snprintf(spec, sizeof(spec), "memif:role=server,socket=%s/m.sock/x.sock", sub);
	assert_int_equal(parse(spec, &p), 0);
	assert_int_equal(p.drv->prepare(&p, err, sizeof(err)), -ENOTDIR);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_registry),      cmocka_unit_test(test_good_specs),
	        cmocka_unit_test(test_bad_specs),     cmocka_unit_test(test_af_packet_fits_mtu),
	        cmocka_unit_test(test_prepare_hooks),
	};
	return cmocka_run_group_tests_name("drv", tests, NULL, NULL);
}
