# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
# lib_libvirt: libvirt "hosts" on one machine for tests, benches and the demo.
# Sourced, not run. Each host is one libvirtd in a network namespace (made by
# tools/wan) AND a private mount namespace of its own, so that /etc/libvirt,
# /run/libvirt, /var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt and
# the migration socket directory ($LV_MIGDIR) are per-host directories under
# the caller's work dir. A long-lived holder process keeps each mount
# namespace; commands run inside a host with libvirt_exec (nsenter -m -n).
# See docs/libvirt.md and ../shared/DESIGN.md "QEMU migration streams".
#
# The caller sets: work (a directory of its own; each host uses $work/lv-NAME).
# Optional: LV_MIGDIR (default /run/novacron-migrate: the SAME path on every
# host, so libvirt's unix:// migration URI names one socket on each).
#
#   libvirt_host_start NAME NETNS   start host NAME; its URI: libvirt_uri NAME
#   libvirt_uri NAME                qemu+unix:///system?socket=DIR/libvirt-sock
#   libvirt_exec NAME CMD...        run CMD in NAME's mount + network namespaces
#   libvirt_spawn NAME CMD...       the same in the background; its pid in
#                                   lv_spawned (the caller stops it; host_stop
#                                   also ends whatever is left in the host)
#   libvirt_virsh NAME ARGS...      virsh connected to NAME's libvirtd
#   libvirt_domain_xml DOM [KERNEL INITRD [CMDLINE]]   a TCG domain (stdout)
#   libvirt_ram_ok NAME DOM         DOM's QEMU on NAME has its RAM as that made it
#   libvirt_host_stop [NAME...]     stop hosts (all when no NAME), leave nothing

LV_MIGDIR=${LV_MIGDIR:-/run/novacron-migrate}
# Not a multiple of 256 KiB (QEMU 7.2's TCG dirty-page loss, DESIGN.md).
# libvirt rounds a domain's memory up to whole MiB (a multiple of 256 KiB),
# so libvirt_domain_xml gives QEMU this exact size itself (see there).
LV_MEM_KIB=${LV_MEM_KIB:-262136}
# 0: leave the RAM size to libvirt (whole MiB), to test what refuses that.
LV_OWN_RAM=${LV_OWN_RAM:-1}
LV_QEMU=${LV_QEMU:-/usr/bin/qemu-system-x86_64}
# The host paths each host gets its own copy of (bind mounts).
LV_BINDS=(/etc/libvirt /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt)
# Shared by every run on this machine: which mount points runs created, which
# runs use them (so the last run out removes what the first one made).
LV_REG=/run/novacron-libvirt
declare -gA lv_holder=() lv_daemon=() lv_dir=()

lv_say() { printf '# lib_libvirt: %s\n' "$*" >&2; }

# lv_locked CMD...: run CMD holding the machine-wide lock (flock on /run).
lv_locked() {
	local fd rc
	exec {fd}</run
	flock "$fd"
	"$@"
	rc=$?
	exec {fd}<&-
	return $rc
}

# Create the mount points this machine lacks (libvirt-daemon-system is not
# installed, so /var/lib/libvirt and friends may not exist) and register the
# run (script pid $1) as a user of them.
lv_reg_add() {
	local d
	mkdir -p "$LV_REG/runs"
	for d in "${LV_BINDS[@]}" "$LV_MIGDIR"; do
		if [ ! -d "$d" ]; then
			mkdir -p "$d" && echo "$d" >>"$LV_REG/created"
		fi
	done
	: >"$LV_REG/runs/$1"
}

# Unregister run $1; with no live run left, remove the mount points
# that were created and the registry. (A run still alive keeps them: since
# Linux 3.18 removing a directory that is a mount point in another mount
# namespace detaches those mounts, i.e. another run's hosts would lose
# /run/libvirt and the migration directory under their feet.)
lv_reg_del() {
	local f p d
	rm -f "$LV_REG/runs/$1"
	for f in "$LV_REG"/runs/*; do
		[ -e "$f" ] || continue
		p=${f##*/}
		if kill -0 "$p" 2>/dev/null; then return 0; fi
		rm -f "$f"
	done
	if [ -f "$LV_REG/created" ]; then
		tac "$LV_REG/created" | while read -r d; do rmdir "$d" 2>/dev/null; done
	fi
	rm -rf "$LV_REG"
}

lv_stop_pid() { # lv_stop_pid PID [SECONDS]: TERM, then KILL
	local pid=$1 n=$((${2:-5} * 10))
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq "$n"); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	for _ in $(seq 30); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
}

libvirt_uri() { echo "qemu+unix:///system?socket=${lv_dir[$1]}/sock/libvirt-sock"; }

libvirt_exec() {
	local n=$1
	shift
	[ -n "${lv_holder[$n]:-}" ] || { lv_say "no libvirt host '$n'"; return 1; }
	nsenter -t "${lv_holder[$n]}" -m -n -- "$@"
}

# Not "libvirt_exec ... &": that would background a subshell, and $! would
# name the subshell rather than CMD. nsenter execs CMD (no fork without a
# pid namespace), so here $! is CMD's pid.
libvirt_spawn() {
	local n=$1
	shift
	lv_spawned=
	[ -n "${lv_holder[$n]:-}" ] || { lv_say "no libvirt host '$n'"; return 1; }
	nsenter -t "${lv_holder[$n]}" -m -n -- "$@" &
	lv_spawned=$!
}

libvirt_virsh() {
	local n=$1
	shift
	virsh -q -c "$(libvirt_uri "$n")" "$@"
}

libvirt_host_start() {
	local n=$1 ns=$2 hd b uuid pid
	if [ -z "${work:-}" ] || [ ! -d "$work" ]; then
		lv_say "set work to a directory first"
		return 1
	fi
	[ -e "/run/netns/$ns" ] || { lv_say "no network namespace $ns (tools/wan up)"; return 1; }
	[ -z "${lv_holder[$n]:-}" ] || { lv_say "host $n is already up"; return 1; }
	hd=$work/lv-$n
	mkdir -p "$hd/sock" "$hd/mig"
	for b in "${LV_BINDS[@]}"; do mkdir -p "$hd/root$b"; done
	mkdir -p "$hd/root/var/log/libvirt/qemu"
	uuid=$(cat /proc/sys/kernel/random/uuid)
	# libvirtd.conf: its own sockets (outside the bind mounts, so every host
	# and the control plane can reach them), no auth on them, its own UUID.
	cat >"$hd/root/etc/libvirt/libvirtd.conf" <<EOF
unix_sock_dir = "$hd/sock"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
host_uuid = "$uuid"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
EOF
	# qemu.conf: no virtlogd, no security labels, no cgroups (no systemd
	# here), no per-VM mount namespace, QEMU runs as root.
	cat >"$hd/root/etc/libvirt/qemu.conf" <<EOF
stdio_handler = "file"
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
EOF
	echo "$uuid" >"$hd/uuid"
	# libvirt's QEMU driver resolves its built-in user libvirt-qemu before it
	# reads qemu.conf; libvirt-daemon-system (not installed) would create it.
	# The host gets its own /etc/passwd and /etc/group that have it.
	cp /etc/passwd "$hd/passwd"
	cp /etc/group "$hd/group"
	getent passwd libvirt-qemu >/dev/null ||
		echo "libvirt-qemu:x:64055:64055:libvirt QEMU:/var/lib/libvirt:/usr/sbin/nologin" >>"$hd/passwd"
	getent group libvirt-qemu >/dev/null || echo "libvirt-qemu:x:64055:" >>"$hd/group"
	lv_locked lv_reg_add "$$" || return 1
	# The holder: a private mount namespace inside NETNS with the bind
	# mounts, then sleep. Its pid names the namespaces for nsenter.
	local mounts=""
	for b in "${LV_BINDS[@]}"; do mounts+="mount --bind '$hd/root$b' '$b' && "; done
	mounts+="mount --bind '$hd/mig' '$LV_MIGDIR' && "
	mounts+="mount --bind '$hd/passwd' /etc/passwd && mount --bind '$hd/group' /etc/group && "
	ip netns exec "$ns" unshare -m --propagation private -- \
		sh -c "$mounts echo ready >'$hd/holder.ready' && exec sleep infinity" \
		</dev/null >"$hd/holder.log" 2>&1 &
	pid=$!
	lv_holder[$n]=$pid
	lv_dir[$n]=$hd
	for _ in $(seq 100); do
		[ -f "$hd/holder.ready" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if [ ! -f "$hd/holder.ready" ]; then
		lv_say "host $n: the mount namespace did not come up:"
		sed 's/^/#   /' "$hd/holder.log" >&2
		libvirt_host_stop "$n"
		return 1
	fi
	libvirt_spawn "$n" libvirtd --config /etc/libvirt/libvirtd.conf \
		--pid-file /run/libvirt/libvirtd.pid </dev/null >"$hd/libvirtd.out" 2>&1
	lv_daemon[$n]=$lv_spawned
	# Ready when it answers (its first start probes QEMU's capabilities).
	for _ in $(seq 600); do
		libvirt_virsh "$n" uri >/dev/null 2>&1 && return 0
		kill -0 "${lv_daemon[$n]}" 2>/dev/null || break
		sleep 0.1
	done
	lv_say "host $n: libvirtd did not come up:"
	sed 's/^/#   /' "$hd/libvirtd.out" "$hd/root/var/log/libvirt/libvirtd.log" >&2 2>/dev/null
	libvirt_host_stop "$n"
	return 1
}

# The pids of every process in the mount namespace of NAME's holder.
lv_ns_pids() {
	local h=$1 mnt p
	mnt=$(readlink "/proc/$h/ns/mnt" 2>/dev/null) || return 0
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[ "$p" = "$h" ] && continue
		[ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" = "$mnt" ] && echo "$p"
	done
}

libvirt_host_stop() {
	local n names=("$@") d p h
	[ ${#names[@]} -gt 0 ] || names=("${!lv_holder[@]}")
	for n in "${names[@]}"; do
		h=${lv_holder[$n]:-}
		[ -n "$h" ] || continue
		# Domains first (libvirtd leaves its QEMUs running when it stops).
		if [ -n "${lv_daemon[$n]:-}" ] && kill -0 "${lv_daemon[$n]}" 2>/dev/null; then
			for d in $(libvirt_virsh "$n" list --all --name 2>/dev/null); do
				timeout 20 virsh -q -c "$(libvirt_uri "$n")" destroy "$d" >/dev/null 2>&1
				timeout 20 virsh -q -c "$(libvirt_uri "$n")" undefine "$d" >/dev/null 2>&1
			done
			lv_stop_pid "${lv_daemon[$n]}" 10
		fi
		# Anything else still in the host (QEMUs, relays) goes too.
		for p in $(lv_ns_pids "$h"); do lv_stop_pid "$p" 3; done
		lv_stop_pid "$h" 3
		wait "$h" 2>/dev/null
		[ -z "${lv_daemon[$n]:-}" ] || wait "${lv_daemon[$n]}" 2>/dev/null
		rm -rf "${lv_dir[$n]:?}"
		unset "lv_holder[$n]" "lv_daemon[$n]" "lv_dir[$n]"
	done
	[ ${#lv_holder[@]} -gt 0 ] || lv_locked lv_reg_del "$$"
	return 0
}

# libvirt_domain_xml DOM [KERNEL INITRD [CMDLINE]]: a small TCG domain
# (type='qemu'), $LV_MEM_KIB of RAM, one vCPU, no disks, no network, its
# serial console written to /var/log/libvirt/qemu/DOM.serial (a per-host
# file). With KERNEL and INITRD it boots them directly (console=ttyS0).
# libvirt would start QEMU with -m rounded up to whole MiB and a pc.ram
# backend of that size, a multiple of 256 KiB, which QEMU 7.2 under TCG
# migrates losing dirty pages (DESIGN.md). So the domain carries QEMU
# arguments of its own (<qemu:commandline>, appended after libvirt's; QEMU
# takes the last -m and machine property): a RAM backend nc.ram of exactly
# $LV_MEM_KIB and the machine's memory on it. libvirt's own pc.ram backend
# is then created but never mapped nor migrated. The domain's XML, and with
# it these arguments, goes to the destination with the migration.
# LV_OWN_RAM=0 leaves them out.
libvirt_domain_xml() {
	local dom=$1 kernel=${2:-} initrd=${3:-} cmdline=${4:-console=ttyS0 panic=-1}
	local boot="    <boot dev='hd'/>" own=""
	if ((LV_MEM_KIB % 256 == 0 || LV_MEM_KIB % 8 != 0)); then
		lv_say "LV_MEM_KIB=$LV_MEM_KIB: must be a multiple of 8 KiB and not of 256 KiB (e.g. 262136)"
		return 1
	fi
	[ "$LV_OWN_RAM" = 0 ] || own="  <qemu:commandline>
    <qemu:arg value='-m'/>
    <qemu:arg value='${LV_MEM_KIB}k'/>
    <qemu:arg value='-object'/>
    <qemu:arg value='memory-backend-ram,id=nc.ram,size=$((LV_MEM_KIB * 1024))'/>
    <qemu:arg value='-machine'/>
    <qemu:arg value='memory-backend=nc.ram'/>
  </qemu:commandline>"
	if [ -n "$kernel" ]; then
		boot="    <kernel>$kernel</kernel>"
		[ -z "$initrd" ] || boot+=$'\n'"    <initrd>$initrd</initrd>"
		boot+=$'\n'"    <cmdline>$cmdline</cmdline>"
	fi
	cat <<EOF
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>$dom</name>
  <memory unit='KiB'>$LV_MEM_KIB</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
$boot
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$LV_QEMU</emulator>
    <serial type='file'>
      <source path='/var/log/libvirt/qemu/$dom.serial'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
$own
</domain>
EOF
}

# libvirt_ram_ok NAME DOM: the QEMU of DOM on host NAME keeps the guest's RAM
# in nc.ram, $LV_MEM_KIB KiB (libvirt_domain_xml), not in libvirt's pc.ram.
libvirt_ram_ok() {
	libvirt_virsh "$1" qemu-monitor-command "$2" --hmp 'info ramblock' 2>/dev/null |
		awk -v want="$(printf '0x%016x' $((LV_MEM_KIB * 1024)))" \
			'$1 == "nc.ram" && tolower($5) == want { f = 1 } END { exit !f }'
}
