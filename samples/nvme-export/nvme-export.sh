#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Export a swarmlog volume over NVMe/TCP with the kernel's target (nvmet),
# and attach it on a client with nvme-tcp (nvme-cli).
#
#   nvme-export.sh export DEV NQN ADDR [PORT]   on the appliance
#   nvme-export.sh unexport NQN                 on the appliance
#   nvme-export.sh connect NQN ADDR [PORT]      on a client: prints the
#                                               namespace's block device
#   nvme-export.sh disconnect NQN               on a client
#
# DEV is the volume's disk (/dev/swarmlogN, or `swarmctl status NAME`).
# The subsystem's serial number and the namespace's UUID and NGUID are
# made from the NQN, so that they are the same after a reboot (or on
# another node exporting the same volume) and a client reconnecting finds
# the same namespace; nvmet makes up new ones otherwise. PORT defaults to
# 4420. Export after `swarmctl enable` (it returns once the log is
# replayed); unexport before `swarmctl disable`.
#
# Environment: HOSTNQN=NQN allows only that host (default: any host);
# HOSTNQN on a client is the host NQN it connects with.
set -eu
nvmet=/sys/kernel/config/nvmet

usage() {
	sed -n 's/^#   //p' "$0" >&2
	exit 2
}
die() { echo "$0: $*" >&2; exit 1; }

# ids NQN: $serial, $uuid and $nguid made from NQN (its MD5).
ids() {
	h=$(printf %s "$1" | md5sum | cut -c1-32)
	nguid=$h
	uuid=$(echo "$h" | sed 's/^\(.\{8\}\)\(.\{4\}\)\(.\{4\}\)\(.\{4\}\)/\1-\2-\3-\4-/')
	serial=$(echo "$h" | cut -c1-20)
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
export)
	[ $# -ge 3 ] || usage
	dev=$1 nqn=$2 addr=$3 port=${4:-4420}
	[ -b "$dev" ] || die "$dev is not a block device"
	[ -d $nvmet ] || modprobe nvmet-tcp 2>/dev/null || true
	[ -d $nvmet ] || die "no $nvmet: load nvmet-tcp and mount configfs"
	s=$nvmet/subsystems/$nqn
	[ ! -e "$s" ] || die "$nqn is exported already"
	ids "$nqn"
	mkdir "$s"
	if [ -n "${HOSTNQN:-}" ]; then
		mkdir -p "$nvmet/hosts/$HOSTNQN"
		ln -s "$nvmet/hosts/$HOSTNQN" "$s/allowed_hosts/"
	else
		echo 1 > "$s/attr_allow_any_host"
	fi
	echo "$serial" > "$s/attr_serial"
	mkdir "$s/namespaces/1"
	printf %s "$dev" > "$s/namespaces/1/device_path"
	echo "$uuid" > "$s/namespaces/1/device_uuid"
	echo "$nguid" > "$s/namespaces/1/device_nguid"
	echo 1 > "$s/namespaces/1/enable"
	# A port at ADDR:PORT: the one there already, or a new one.
	p=""
	for q in "$nvmet"/ports/*; do
		[ -d "$q" ] || continue
		[ "$(cat "$q/addr_traddr")" = "$addr" ] && [ "$(cat "$q/addr_trsvcid")" = "$port" ] && p=$q
	done
	if [ -z "$p" ]; then
		n=1
		while [ -e "$nvmet/ports/$n" ]; do n=$((n + 1)); done
		p=$nvmet/ports/$n
		mkdir "$p"
		echo tcp > "$p/addr_trtype"
		case "$addr" in
		*:*) echo ipv6 > "$p/addr_adrfam" ;;
		*) echo ipv4 > "$p/addr_adrfam" ;;
		esac
		echo "$addr" > "$p/addr_traddr"
		echo "$port" > "$p/addr_trsvcid"
	fi
	ln -s "$s" "$p/subsystems/$nqn"
	echo "exported $dev as $nqn namespace 1 (uuid $uuid) on tcp $addr:$port"
	;;
unexport)
	[ $# -ge 1 ] || usage
	nqn=$1 s=$nvmet/subsystems/$1
	[ -d "$s" ] || die "$nqn is not exported"
	for p in "$nvmet"/ports/*; do
		[ -L "$p/subsystems/$nqn" ] || continue
		rm "$p/subsystems/$nqn"
		# A port no subsystem uses any more goes too.
		[ -n "$(ls "$p/subsystems")" ] || rmdir "$p"
	done
	echo 0 > "$s/namespaces/1/enable"
	rmdir "$s/namespaces/1"
	for h in "$s"/allowed_hosts/*; do
		[ -L "$h" ] && rm "$h"
	done
	rmdir "$s"
	echo "unexported $nqn"
	;;
connect)
	[ $# -ge 2 ] || usage
	nqn=$1 addr=$2 port=${3:-4420}
	ids "$nqn"
	# Reconnect every second for 10 minutes while the appliance reboots
	# and replays, the I/O held meanwhile (not failed).
	nvme connect -t tcp -a "$addr" -s "$port" -n "$nqn" \
		${HOSTNQN:+--hostnqn="$HOSTNQN"} --reconnect-delay=1 --ctrl-loss-tmo=600 > /dev/null
	i=0
	while :; do
		for d in /sys/block/nvme*n*; do
			# With NVMe multipath (CONFIG_NVME_MULTIPATH) the namespace
			# is the head, nvmeXnY; nvmeXcZnY are its hidden paths,
			# with no device node.
			case "${d##*/}" in *c*) continue ;; esac
			[ "$(cat "$d/uuid" 2>/dev/null)" = "$uuid" ] && { echo "/dev/${d##*/}"; exit 0; }
		done
		i=$((i + 1))
		[ $i -lt 100 ] || die "connected, but no namespace with uuid $uuid appeared"
		sleep 0.1
	done
	;;
disconnect)
	[ $# -ge 1 ] || usage
	nvme disconnect -n "$1"
	;;
*)
	usage
	;;
esac
