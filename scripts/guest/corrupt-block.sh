# SPDX-License-Identifier: GPL-2.0
# A damaged block log, guest side (scenarios/block-log-faults): the log on
# the VM's log disk (scripts/vm --log-disk), 512-byte units, so that record
# k (from 1) of 4 KiB is a header unit and 8 data units at 4096 + (k - 1) *
# 4608. A block log's records carry a CRC-32C of their data, and several
# may be in flight at a power cut: an invalid record is corruption only
# when a valid later one begins at least the in-flight window (2 MiB)
# after it; closer to the end it is the log's torn end (format.rst, "The
# block log").
#   corrupt-block.sh write       raid1, format, enable, 600 writes of 4 KiB
#                                (block i: the numbers 512i to 512i+511 of
#                                `seq -w`), each one record; then waits for
#                                the power cut
#   corrupt-block.sh flip-header a bit of record 5's header flipped: enable
#                                refuses (EUCLEAN) naming it, exposes
#                                nothing, changes nothing; discard_corrupt
#                                then replays records 1-4
#   corrupt-block.sh flip-data   a bit of record 5's data flipped, the
#                                volume's check_every_record set: the data
#                                sum catches it: as flip-header
#   corrupt-block.sh flip-data-old the same without check_every_record:
#                                record 5 is more than a window before the
#                                end, complete, and its data is not checked
#                                (as on pmem): all 600 records replayed,
#                                block 4 as the log holds it
#   corrupt-block.sh flip-data-window a bit of record 597's data flipped,
#                                within the window before the end: its data
#                                is checked, and it is taken for the torn
#                                end: records 1-596 replayed
#   corrupt-block.sh torn-window a bit of record 595's header flipped, less
#                                than the window before the log's end:
#                                taken for the torn end, records 1-594
#                                replayed, the rest not
#   corrupt-block.sh torn        the last sector of record 600's data zeroed,
#                                as a power cut in its write leaves it:
#                                records 1-599 replayed
#   corrupt-block.sh bad-past    the log disk (through dm, as "bad") fails
#                                to read one sector past the log's end,
#                                inside the scan's last 1 MiB read: all 600
#                                records replayed (the scan reads the units
#                                it needs around a read error)
#   corrupt-block.sh bad-last    the log disk fails to read record 600's
#                                header unit: a read error is damage, not a
#                                torn end: enable refuses (EIO) naming
#                                record 600, changes nothing;
#                                discard_corrupt then replays records 1-599
. /guest/lib.sh
set -e
N=600
insmod /lib/swarmlog/swarmlog.ko cp_interval_ms=3600000
v=$c/x
log=$(log_device)
case "$log" in /dev/vd*) ;; *) fail "no log disk (scripts/vm --log-disk)" ;; esac
[ "$(cat "/sys/block/${log#/dev/}/queue/logical_block_size")" = 512 ] || fail "the log disk's unit is not 512"
rec() { echo $((4096 + ($1 - 1) * 4608)); }
seq -w 0 1279999 | head -c $((N * 4096)) > /tmp/long
# blocks_are FIRST COUNT: blocks FIRST.. of the volume hold what write wrote.
blocks_are() {
	dd if="$dev" bs=4096 skip="$1" count="$2" iflag=direct 2>/dev/null > /tmp/got
	dd if=/tmp/long bs=4096 skip="$1" count="$2" 2>/dev/null | cmp -s - /tmp/got
}
# zero_from FIRST: blocks FIRST..N-1 read as zeroes (never written).
zero_from() {
	dd if="$dev" bs=4096 skip="$1" count=$((N - $1)) iflag=direct 2>/dev/null > /tmp/got
	cmp -s -n $(((N - $1) * 4096)) /tmp/got /dev/zero
}
log_sum() { dd if="$log" bs=1M count=4 iflag=direct 2>/dev/null | md5sum; }
# flip_bit OFFSET: one bit of the log disk's byte at OFFSET flipped, its
# sector read and written back direct (no page cache between the two).
flip_bit() {
	s=$(($1 / 512)) o=$(($1 % 512))
	dd if="$log" of=/tmp/sector bs=512 skip=$s count=1 iflag=direct 2>/dev/null
	b=$(dd if=/tmp/sector bs=1 skip=$o count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
	printf "\\$(printf %03o $((b ^ 4)))" | dd of=/tmp/sector bs=1 seek=$o conv=notrunc 2>/dev/null
	dd if=/tmp/sector of="$log" bs=512 seek=$s count=1 oflag=direct,dsync 2>/dev/null
}
# enable_replays COUNT: enable succeeds, replays COUNT records, and the
# volume holds blocks 0..COUNT-1 as written and zeroes after them.
enable_replays() {
	echo 1 > $v/enable || fail "enable"
	dev=/dev/$(cat $v/disk)
	[ "$(status x replay_messages)" = "$1" ] || fail "replayed $(status x replay_messages) records, not $1"
	blocks_are 0 "$1" || fail "blocks 0-$(($1 - 1)) are not as written"
	zero_from "$1" || fail "a record after $1 was applied"
}
# refused SEQ: enable must fail with EUCLEAN naming record SEQ, expose
# nothing and leave the log unchanged; then discard_corrupt replays the
# records before it.
refused() {
	refused_corrupt "$1" "$(rec "$1")" log_sum
	echo 1 > $v/discard_corrupt
	enable_replays $(($1 - 1))
	echo "recovered: records 1-$(($1 - 1)) replayed, the rest dropped as asked"
	echo 0 > $v/enable
}

# bad_sector SECTOR: the volume's log becomes /dev/mapper/bad, the log
# disk with its sector SECTOR failing every read (dm-flakey error_reads;
# writes go through, as a disk remaps a bad sector when it is written).
bad_sector() {
	size=$(blockdev --getsz "$log")
	dmsetup create bad <<-EOF || fail "dm table for a bad sector at $1"
	0 $1 linear $log 0
	$1 1 flakey $log $1 0 3600 1 error_reads
	$(($1 + 1)) $((size - $1 - 1)) linear $log $(($1 + 1))
	EOF
	dmsetup mknodes bad
	[ -b /dev/mapper/bad ] || fail "no /dev/mapper/bad"
	dd if=/dev/mapper/bad bs=512 skip=$(($1 - 1)) count=1 iflag=direct of=/dev/null 2>/dev/null ||
		fail "sector $(($1 - 1)) of the log does not read"
	dd if=/dev/mapper/bad bs=512 skip="$1" count=1 iflag=direct of=/dev/null 2>/dev/null &&
		fail "sector $1 of the log reads"
	volume x
	echo /dev/mapper/bad > $v/log
}

case "$1" in
write)
	make_array 1
	volume x
	echo 1 > $v/format
	echo 1 > $v/enable
	[ "$(status x log_medium)" = block ] || fail "log_medium $(status x log_medium)"
	[ "$(status x log_unit_bytes)" = 512 ] || fail "log_unit_bytes $(status x log_unit_bytes)"
	dev=/dev/$(cat $v/disk)
	dd if=/tmp/long of="$dev" bs=4096 count=$N oflag=direct,dsync 2>/dev/null || fail "the writes"
	[ "$(status x writes)" = $N ] && [ "$(status x cp_count)" = 0 ] || fail "not $N records in the log"
	echo "CORRUPT-WRITTEN"
	sleep 3600
	;;
flip-header)
	assemble_array
	flip_bit $(($(rec 5) + 25))
	refused 5
	;;
flip-data)
	assemble_array
	flip_bit $(($(rec 5) + 512 + 1000))
	CHECK_ALL=1 refused 5
	;;
flip-data-old)
	assemble_array
	flip_bit $(($(rec 5) + 512 + 1000))
	volume x
	[ "$(cat $v/check_every_record)" = 0 ] || fail "check_every_record is not 0 by default"
	echo 1 > $v/enable || fail "enable"
	dev=/dev/$(cat $v/disk)
	[ "$(status x replay_messages)" = $N ] || fail "replayed $(status x replay_messages) records, not $N"
	blocks_are 0 4 && blocks_are 5 $((N - 5)) || fail "blocks other than 4 are not as written"
	blocks_are 4 1 && fail "block 4 is as written: the flipped bit is not in the log"
	echo "record 5's data damaged, a window before the end: not checked, all $N records replayed"
	echo 0 > $v/enable
	;;
flip-data-window)
	assemble_array
	flip_bit $(($(rec 597) + 512 + 1000))
	volume x
	enable_replays 596
	echo "record 597's data damaged within the window before the end: the torn end, records 1-596 replayed"
	;;
torn-window)
	assemble_array
	flip_bit $(($(rec 595) + 25))
	volume x
	enable_replays 594
	echo "record 595 bad within the window before the end: the torn end, records 1-594 replayed"
	;;
torn)
	assemble_array
	dd if=/dev/zero of="$log" bs=512 seek=$((($(rec N) + 4608) / 512 - 1)) count=1 oflag=direct,dsync 2>/dev/null
	volume x
	enable_replays $((N - 1))
	echo "the last record torn: records 1-$((N - 1)) replayed"
	;;
bad-past)
	assemble_array
	# 8 KiB past the end of record 600, the last record.
	bad_sector $((($(rec N) + 4608 + 8192) / 512))
	enable_replays $N
	echo "a bad sector past the log's end, in the scan's last read: all $N records replayed"
	echo 0 > $v/enable
	;;
bad-last)
	assemble_array
	bad_sector $(($(rec N) / 512))
	refused_damaged $N "$(rec N)" "a part of the log device that fails to read (its header)" log_sum
	echo 1 > $v/discard_corrupt
	enable_replays $((N - 1))
	echo "recovered: records 1-$((N - 1)) replayed, record $N dropped as asked"
	echo 0 > $v/enable
	;;
*)
	fail "usage: corrupt-block.sh write|flip-header|flip-data|flip-data-old|flip-data-window|torn-window|torn|bad-past|bad-last"
	;;
esac
