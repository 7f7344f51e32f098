/* SPDX-License-Identifier: BSD-3-Clause */
/* nc_config_table: the appliance's configuration keys (see nc_config_table.h). */
#include "nc_config_table.h"

static const char *const log_levels[] = {"err", "warn", "notice", "info", "debug", NULL};
static const char *const poll_modes[] = {"adaptive", "busy", NULL};
static const char *const tcg_guards[] = {"refuse", "warn", "off", NULL};
static const char *const hde_modes[] = {"adaptive",  "fastest", "strongest", "none",
                                        "zstd-fast", "zstd1",   "igzip0",    "igzip1",
                                        "zstd3",     "zstd9",   "zstd19",    NULL};

const struct nc_cfg_def nc_config_table[] = {
        /* name, type, min, max, default, choices, runtime, help */
        {"runtime.dir", NC_CFG_STR, 1, 80, "/run/novacron", NULL, false,
         "directory of the control sockets and other run-time files", false},
        {"log.level", NC_CFG_ENUM, 0, 0, "notice", log_levels, true,
         "log messages up to this level", false},
        {"dataplane.lcores", NC_CFG_STR, 1, 64, "0-1", NULL, false,
         "EAL --lcores: lcore 0 is the main one, the others poll (\"0-1\", or \"0@1,1@0\" to place "
         "them)",
         false},
        {"dataplane.file_prefix", NC_CFG_STR, 1, 32, "novacron", NULL, false,
         "EAL --file-prefix; the control plane attaches to the dataplane with it", false},
        {"dataplane.hugepages", NC_CFG_BOOL, 0, 0, "true", NULL, false,
         "use hugepages; without them the control plane cannot attach", false},
        {"dataplane.memory_mb", NC_CFG_INT, 0, 65536, "0", NULL, false,
         "memory to reserve at start in MiB (0: grow on demand; without hugepages 256)", false},
        {"dataplane.ports", NC_CFG_STRLIST, 0, 8, "", NULL, false,
         "ports as DRIVER:ARGS (memif, af_xdp, af_packet, ring, null)", false},
        {"dataplane.mbufs", NC_CFG_INT, 1023, 1048575, "8191", NULL, false,
         "packet buffers in the dataplane's pool", false},
        {"dataplane.rx_burst", NC_CFG_INT, 1, 512, "32", NULL, false,
         "packets taken from a queue per poll", false},
        {"dataplane.poll_mode", NC_CFG_ENUM, 0, 0, "adaptive", poll_modes, true,
         "adaptive: poll while busy, sleep with backoff when idle; busy: always poll", false},
        {"dataplane.idle_polls", NC_CFG_INT, 1, 10000000, "2000", NULL, true,
         "empty polls in a row before an adaptive worker starts to sleep", false},
        {"dataplane.sleep_max_us", NC_CFG_INT, 1, 100000, "2000", NULL, true,
         "longest sleep of an idle adaptive worker, microseconds", false},
        {"dataplane.telemetry", NC_CFG_BOOL, 0, 0, "true", NULL, false,
         "register NovaCron's commands with DPDK telemetry", false},
        {"amst.ip", NC_CFG_STR, 0, 18, "", NULL, false,
         "this appliance's address on the migration network, CIDR (10.77.0.11/24); empty: no AMST",
         false},
        {"amst.gateway", NC_CFG_STR, 0, 15, "", NULL, false,
         "next hop for peers outside the subnet; empty: peers must be on the subnet", false},
        {"amst.udp_port", NC_CFG_INT, 1024, 65535, "7471", NULL, false, "AMST's UDP port", false},
        {"amst.psk", NC_CFG_STR, 0, 64, "", NULL, false,
         "pre-shared key of the sessions, 16-64 characters, the same on both appliances", true},
        {"amst.seal", NC_CFG_BOOL, 0, 0, "true", NULL, false,
         "AES-256-GCM on every packet; false only on an isolated migration network", false},
        {"amst.mtu", NC_CFG_INT, 576, 9000, "1500", NULL, false, "IP MTU of the migration link",
         false},
        {"amst.dscp", NC_CFG_INT, 0, 63, "0", NULL, false, "DSCP of AMST packets", false},
        {"amst.session_memory_mb", NC_CFG_INT, 4, 8192, "512", NULL, false,
         "memory bound of one session's stream buffers, MiB", false},
        {"amst.max_streams", NC_CFG_INT, 1, 16, "16", NULL, false,
         "streams (host connections) one session carries", false},
        {"amst.idle_timeout_ms", NC_CFG_INT, 500, 600000, "5000", NULL, false,
         "a session whose peer is silent this long ends with an error", false},
        {"amst.closed_linger_s", NC_CFG_INT, 0, 86400, "120", NULL, false,
         "a closed session keeps its slot and last stats this long unless session.close "
         "removes it first (0: until then)",
         false},
        {"amst.unused_close_s", NC_CFG_INT, 0, 86400, "600", NULL, false,
         "a sending session with no host connection open and nothing unacknowledged this long "
         "is ended with an error on both sides (one a dead control plane left behind); a "
         "receiving session that got no INIT this long is removed (0: never)",
         false},
        {"amst.unsent_ms", NC_CFG_INT, 0, 10000, "20", NULL, false,
         "unsent bytes a stream takes from its host, as ms at the path's estimated rate (at least "
         "256 KiB; 0: the stream buffer's size): keeps QEMU's bandwidth estimate and "
         "downtime honest",
         false},
        {"amst.unsent_max_kb", NC_CFG_INT, 256, 1048576, "4096", NULL, false,
         "the most the unsent limit (amst.unsent_ms) comes to on a fast path, KiB: a writer "
         "refills a stream in microseconds, and what waits unsent past the caches costs "
         "the copies into and out of the stream a cache miss per line",
         false},
        {"amst.bulk_unsent_ms", NC_CFG_INT, 0, 10000, "0", NULL, false,
         "a migration's sending session: the unsent limit while QEMU sends the first half of the "
         "guest's RAM (0: none), then amst.unsent_ms",
         false},
        {"amst.follow_reader", NC_CFG_BOOL, 0, 0, "true", NULL, false,
         "receive windows follow what the host connection reads (false: a stream's whole "
         "buffer): a slow reader, a destination QEMU, then holds the sender back instead of "
         "the guest waiting for parked bytes after switchover",
         false},
        {"amst.bulk_whole_window", NC_CFG_BOOL, 0, 0, "true", NULL, false,
         "a migration's receiving session advertises whole buffers while the sending one has "
         "its bulk limit (amst.bulk_unsent_ms), then follows the reader as amst.follow_reader "
         "says: a destination QEMU that stalls then does not stall the stages before it",
         false},
        {"hde.mode", NC_CFG_ENUM, 0, 0, "adaptive", hde_modes, false,
         "HDE coding of sessions opened with it: adaptive (by link rate and CPU), fastest, "
         "strongest, or one setting",
         false},
        {"hde.cache_mb", NC_CFG_INT, 0, 65536, "1024", NULL, false,
         "bound of one session's HDE page caches, all streams, MiB (both ends)", false},
        {"hde.batch_kb", NC_CFG_INT, 0, 4096, "0", NULL, false,
         "stream bytes per HDE frame, KiB, 16-4096 (0: 1024, 4096 for strongest)", false},
        {"hde.max_stall_us", NC_CFG_INT, 0, 1000000, "10000", NULL, false,
         "adaptive: leave out settings that would code a batch slower than this, us (0: none)",
         false},
        {"controlplane.dp_timeout_ms", NC_CFG_INT, 10, 60000, "1000", NULL, true,
         "how long the control plane waits for the dataplane to answer a command", false},
        {"controlplane.attach_retries", NC_CFG_INT, 0, 100, "10", NULL, false,
         "times the control plane retries attaching to the dataplane's rings", false},
        {"controlplane.reattach", NC_CFG_BOOL, 0, 0, "true", NULL, false,
         "when its dataplane goes away, the control plane restarts itself (same pid, once no "
         "migration runs) and waits for the next one; false: it stays, reporting it gone",
         false},
        {"controlplane.host_name", NC_CFG_STR, 0, 63, "", NULL, false,
         "this host's name among its peers (letters, digits, - _ .); empty: the system's", false},
        {"controlplane.peer_listen", NC_CFG_STR, 0, 21, "", NULL, false,
         "IPv4:PORT where this control plane listens for its peers; empty: it does not", false},
        {"controlplane.peers", NC_CFG_STRLIST, 0, 32, "", NULL, false,
         "the peer hosts as NAME=IPv4:PORT (their peer_listen)", false},
        {"controlplane.peer_dests", NC_CFG_STRLIST, 0, 16, "", NULL, false,
         "where a peer's migrations may deliver on this host, besides libvirt_socket_dir: "
         "directories of destination sockets (/DIR) and TCP destinations (tcp:IP for any "
         "port, tcp:IP:PORT)",
         false},
        {"controlplane.peer_psk", NC_CFG_STR, 0, 64, "", NULL, false,
         "key the peers authenticate each other with, 16-64 characters, the same on all", true},
        {"controlplane.peer_timeout_ms", NC_CFG_INT, 100, 600000, "5000", NULL, true,
         "how long to wait for a peer to connect or answer a call", false},
        {"controlplane.libvirt_uri", NC_CFG_STR, 0, 255, "qemu:///system", NULL, false,
         "this host's libvirtd, as the control plane connects to it (migrate libvirt:DOMAIN)",
         false},
        {"controlplane.libvirt_dest_uri", NC_CFG_STR, 0, 255, "", NULL, false,
         "where other hosts' libvirtd reach this host's, for migrations to it (told to the "
         "peers); empty: libvirt_uri",
         false},
        {"controlplane.libvirt_keepalive_s", NC_CFG_INT, 0, 600, "5", NULL, true,
         "libvirt keepalive: probe libvirtd after this many s without a word from it; 0: "
         "no probes (a libvirtd that stops answering then holds its migration for good)",
         false},
        {"controlplane.libvirt_keepalive_count", NC_CFG_INT, 1, 100, "5", NULL, true,
         "unanswered keepalive probes in a row after which libvirtd is taken for gone: its "
         "calls fail, its migrations fail (libvirt_keepalive_s x (count + 1) s; a connect "
         "gets as long)",
         false},
        {"controlplane.libvirt_socket_dir", NC_CFG_STR, 1, 64, "/run/novacron-migrate", NULL, false,
         "directory of the migration sockets of libvirt migrations, the same path on every host",
         false},
        {"controlplane.tcg_guard", NC_CFG_ENUM, 0, 0, "refuse", tcg_guards, true,
         "a TCG guest on QEMU before 9.0 with RAM a multiple of 256 KiB loses pages it dirties "
         "while it migrates (a QEMU bug): refuse to migrate it, warn and migrate, or off",
         false},
};

const size_t nc_config_table_len = sizeof(nc_config_table) / sizeof(nc_config_table[0]);
