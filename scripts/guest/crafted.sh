# SPDX-License-Identifier: GPL-2.0
# Crafted metadata at enable, guest side (scenarios/crafted-metadata). The
# log is on the VM's log device (lib.sh log_device): pmem0, or the log disk
# of a block log (scripts/vm --log-disk, SWARMLOG_LOG_DISK).
#   crafted.sh prepare   md raid1 over the two disks, format, enable, 8
#                        marker blocks written (in the log, no CP); the
#                        log's head (pmem: its first 192 bytes, header and
#                        both CP slots; a block log: its first 16 KiB, the
#                        header, slot and intent units of any logical block
#                        size) and the array's first 64 bytes (superblock)
#                        to the record port as hex (CRAFT-LOG, CRAFT-ARRAY);
#                        power cut
#   crafted.sh try       the hostile lines the host made from those
#                        (/guest/crafted: NN.line and cases, by
#                        swarmlog-craft), one at a time: written to its
#                        device, enable must fail with the case's errno,
#                        no disk, and neither device's metadata may change
#                        (the log's first 16 KiB, the array's first 12 KiB,
#                        compared byte for byte); the line put back. Then
#                        enable replays the log as it was and every marker
#                        is there.
# Every read and write of a device is direct, a whole 4 KiB block (the
# module writes past the page cache, which may hold older bytes): a line
# goes in as the block around it with the line replaced.
. /guest/lib.sh
set -e
v=$c/x
N=8
log=$(log_device)
rec() { echo "$*" > /dev/ttyS1; }
# hex DEV N: the first N bytes of DEV in hex (read as direct 4 KiB blocks).
hex() {
	dd if="$1" bs=4096 count=$((($2 + 4095) / 4096)) iflag=direct 2>/dev/null |
		od -An -tx1 -v | tr -d ' \n' | head -c $(($2 * 2))
}
# head_sum: the metadata of both devices (the log's header, CP slot and
# intent units, as lib.sh log_head reads them), read past any cache: one
# sum, three processes (each costs some 0.2 s under TCG and KASAN).
head_sum() {
	{
		dd if="$log" bs=4096 count=4 iflag=direct
		dd if=/dev/md0 bs=4096 count=3 iflag=direct
	} 2>/dev/null | md5sum
}
# get DEV OFFSET FILE: the 4 KiB block of DEV around OFFSET into FILE.
get() {
	dd if="$1" of="$3" bs=4096 skip=$(($2 / 4096)) count=1 iflag=direct 2>/dev/null &&
		[ "$(wc -c < "$3")" = 4096 ]
}
# put BLOCK_FILE DEV OFFSET: the 4 KiB block around OFFSET, durably.
put() {
	dd if="$1" of="$2" bs=4096 seek=$(($3 / 4096)) count=1 oflag=direct conv=notrunc,fsync 2>/dev/null
}
# with_line BLOCK_FILE LINE_FILE OFFSET NEW_FILE: BLOCK_FILE with the 64
# bytes at OFFSET (within its 4 KiB) replaced by LINE_FILE.
with_line() {
	cp "$1" "$4" &&
		dd if="$2" of="$4" bs=64 seek=$(($3 % 4096 / 64)) count=1 conv=notrunc 2>/dev/null
}

case "$1" in
prepare)
	fresh_volume x
	for i in $(seq 1 $N); do put_marker "$dev" $((i * 100)) || fail "marker $i"; done
	[ "$(status x cp_count)" = 0 ] || fail "a CP ran"
	# The serial port drains at 115200 baud (some 11 KiB/s): wait for it
	# before the cut, longer for a block log's 32 Ki hex digits.
	case $log in
	/dev/pmem*) bytes=192 drain=2 ;;
	*) bytes=16384 drain=6 ;;
	esac
	rec "CRAFT-LOG $(hex "$log" $bytes)"
	rec "CRAFT-ARRAY $(hex /dev/md0 64)"
	sleep $drain
	echo "CRAFT-READY"
	sleep 3600
	;;
try)
	# The array's members: the VM's first two disks (scripts/vm puts a
	# log disk after the data disks).
	case $log in /dev/vda | /dev/vdb) fail "the log disk is $log, an array member" ;; esac
	assemble_array /dev/vda /dev/vdb
	insmod /lib/swarmlog/swarmlog.ko || fail insmod
	volume x
	n=0
	while read -r num device offset errno what; do
		case $device in log) d=$log ;; array) d=/dev/md0 ;; *) fail "case $num: $device" ;; esac
		case $errno in
		EINVAL) msg="Invalid argument" ;;
		EUCLEAN) msg="Structure needs cleaning" ;;
		EMEDIUMTYPE) msg="Wrong medium type" ;;
		*) fail "case $num: errno $errno" ;;
		esac
		get $d "$offset" /tmp/orig || fail "reading before case $num"
		with_line /tmp/orig /guest/crafted/$num.line "$offset" /tmp/new || fail "case $num: its block"
		put /tmp/new $d "$offset" || fail "writing case $num"
		get $d "$offset" /tmp/now && cmp -s /tmp/now /tmp/new ||
			fail "case $num: the line did not reach $d"
		before=$(head_sum)
		dmesg -c > /dev/null
		if echo 1 > $v/enable 2>/tmp/err; then fail "case $num ($what): enable succeeded"; fi
		grep -q "$msg" /tmp/err || fail "case $num ($what): enable failed with $(cat /tmp/err), not $errno"
		[ -z "$(cat $v/disk)" ] || fail "case $num ($what): a disk appeared"
		[ "$(head_sum)" = "$before" ] || fail "case $num ($what): enable wrote to the metadata"
		echo "case $num: $device $what: $errno ($(dmesg | grep swarmlog | tail -1 | sed 's/^\[[^]]*\] //'))"
		put /tmp/orig $d "$offset" || fail "restoring after case $num"
		get $d "$offset" /tmp/now && cmp -s /tmp/now /tmp/orig || fail "case $num: $d not restored"
		n=$((n + 1))
	done < /guest/crafted/cases
	[ $n -gt 20 ] || fail "only $n cases"
	echo 1 > $v/enable || fail "enable of the volume as it was"
	[ "$(status x replay_state)" = done ] || fail "replay_state $(status x replay_state)"
	dev=/dev/$(cat $v/disk)
	for i in $(seq 1 $N); do marker_ok "$dev" $((i * 100)) || fail "marker $i lost"; done
	echo 0 > $v/enable
	echo "crafted metadata: $n lines refused at enable on $log, nothing written; the volume as it was replays, $N markers there"
	;;
esac
