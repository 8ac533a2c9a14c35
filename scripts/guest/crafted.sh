# SPDX-License-Identifier: GPL-2.0
# Crafted metadata at enable, guest side (scenarios/crafted-metadata).
#   crafted.sh prepare   md raid1 over the two disks, format, enable, 8
#                        marker blocks written (in the log, no CP); the
#                        log's first 192 bytes (header, both CP slots) and
#                        the array's first 64 (superblock) to the record
#                        port as hex (CRAFT-LOG, CRAFT-ARRAY); power cut
#   crafted.sh try       the hostile lines the host made from those
#                        (/guest/crafted: NN.line and cases, by
#                        swarmlog-craft), one at a time: written to its
#                        device, enable must fail with the case's errno,
#                        no disk, and neither device's metadata may change
#                        (the log's first 4 KiB, the array's first 12 KiB,
#                        compared byte for byte); the line put back. Then
#                        enable replays the log as it was and every marker
#                        is there.
. /guest/lib.sh
set -e
v=$c/x
N=8
rec() { echo "$*" > /dev/ttyS1; }
# hex DEV N: the first N bytes of DEV in hex (read as one direct 4 KiB).
hex() { dd if="$1" bs=4096 count=1 iflag=direct 2>/dev/null | od -An -tx1 -v | tr -d ' \n' | head -c $(($2 * 2)); }
# head_sum: the metadata of both devices, read past any cache.
head_sum() {
	{
		dd if=/dev/pmem0 bs=4096 count=1 iflag=direct 2>/dev/null
		dd if=/dev/md0 bs=4096 count=3 iflag=direct 2>/dev/null
	} | md5sum
}
# put LINE_FILE DEV OFFSET: 64 bytes at OFFSET of DEV, durably.
put() { dd if="$1" of="$2" bs=64 seek=$(($3 / 64)) count=1 conv=notrunc,fsync 2>/dev/null; }

case "$1" in
prepare)
	fresh_volume x
	for i in $(seq 1 $N); do put_marker "$dev" $((i * 100)) || fail "marker $i"; done
	[ "$(status x cp_count)" = 0 ] || fail "a CP ran"
	rec "CRAFT-LOG $(hex /dev/pmem0 192)"
	rec "CRAFT-ARRAY $(hex /dev/md0 64)"
	# The serial port drains at 115200 baud: wait for it before the cut.
	sleep 2
	echo "CRAFT-READY"
	sleep 3600
	;;
try)
	assemble_array /dev/vda /dev/vdb
	insmod /lib/swarmlog/swarmlog.ko || fail insmod
	volume x
	n=0
	while read -r num device offset errno what; do
		case $device in log) d=/dev/pmem0 ;; array) d=/dev/md0 ;; *) fail "case $num: $device" ;; esac
		case $errno in
		EINVAL) msg="Invalid argument" ;;
		EUCLEAN) msg="Structure needs cleaning" ;;
		*) fail "case $num: errno $errno" ;;
		esac
		dd if=$d of=/tmp/orig bs=64 skip=$((offset / 64)) count=1 iflag=direct 2>/dev/null ||
			dd if=$d of=/tmp/orig bs=64 skip=$((offset / 64)) count=1 2>/dev/null
		put /guest/crafted/$num.line $d "$offset" || fail "writing case $num"
		before=$(head_sum)
		dmesg -c > /dev/null
		if echo 1 > $v/enable 2>/tmp/err; then fail "case $num ($what): enable succeeded"; fi
		grep -q "$msg" /tmp/err || fail "case $num ($what): enable failed with $(cat /tmp/err), not $errno"
		[ -z "$(cat $v/disk)" ] || fail "case $num ($what): a disk appeared"
		[ "$(head_sum)" = "$before" ] || fail "case $num ($what): enable wrote to the metadata"
		echo "case $num: $device $what: $errno ($(dmesg | grep swarmlog | tail -1 | sed 's/^\[[^]]*\] //'))"
		put /tmp/orig $d "$offset" || fail "restoring after case $num"
		n=$((n + 1))
	done < /guest/crafted/cases
	[ $n -gt 20 ] || fail "only $n cases"
	echo 1 > $v/enable || fail "enable of the volume as it was"
	[ "$(status x replay_state)" = done ] || fail "replay_state $(status x replay_state)"
	dev=/dev/$(cat $v/disk)
	for i in $(seq 1 $N); do marker_ok "$dev" $((i * 100)) || fail "marker $i lost"; done
	echo 0 > $v/enable
	echo "crafted metadata: $n lines refused at enable, nothing written; the volume as it was replays, $N markers there"
	;;
esac
