#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# raid5-volume.sh NAME LOGDEV MEMBER...
#
# A swarmlog volume over a new md raid5 array: the array of MEMBERs
# (at least three disks) is created, a volume NAME with its log on LOGDEV
# (pmem with DAX, or any block device such as an NVMe SSD with power-loss
# protection) is made, formatted and enabled, and the two lines that
# bring both back at boot are printed (for /etc/mdadm/mdadm.conf and
# /etc/swarmlog.conf). Everything on LOGDEV and the MEMBERs is lost.
#
# Environment:
#   MD=/dev/md0          the array device to create
#   CHUNK_KB=64          raid5 chunk size
#   ASSUME_CLEAN=0       1: skip the initial resync; only correct when
#                        every member reads as zeros (new or discarded)
#   SWARMCTL=swarmctl    the swarmctl binary
set -eu
[ $# -ge 4 ] || {
	echo "usage: $0 NAME LOGDEV MEMBER MEMBER MEMBER..." >&2
	exit 2
}
name=$1 log=$2
shift 2
md=${MD:-/dev/md0}
swarmctl=${SWARMCTL:-swarmctl}

for d in "$log" "$@"; do
	[ -b "$d" ] || { echo "$0: $d is not a block device" >&2; exit 1; }
done

clean=""
[ "${ASSUME_CLEAN:-0}" = 1 ] && clean=--assume-clean
mdadm --create "$md" --run $clean --level=5 --raid-devices=$# \
	--chunk="${CHUNK_KB:-64}" --metadata=1.2 "$@"

modprobe swarmlog 2>/dev/null || [ -d /sys/kernel/config/swarmlog ] || {
	echo "$0: the swarmlog module is not loaded and modprobe cannot load it" >&2
	exit 1
}
# The volume: its log and array, a fresh log and metadata area, then
# enabled (its disk appears as /dev/swarmlogN).
"$swarmctl" create "$name" --log "$log" --array "$md" --format
"$swarmctl" enable "$name"
"$swarmctl" status "$name"

echo
echo "# /etc/mdadm/mdadm.conf:"
mdadm --detail --brief "$md"
echo "# /etc/swarmlog.conf:"
"$swarmctl" config-line "$name"
