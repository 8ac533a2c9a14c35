# SPDX-License-Identifier: GPL-2.0
# A damaged log, guest side (scenarios/log-corrupt).
#   corrupt.sh write   raid1, format (log_slots 0: a ring only), enable, 20 writes of 4 KiB (block i
#                      filled with letter i: A, B, ...), each one record;
#                      then wait
#                      for the power cut
#   corrupt.sh flip    flip a bit in record 5's header line (the middle of
#                      the log; since format version 2 the log checksums
#                      record headers, not data: a flip in the data is not
#                      seen): enable must refuse (EUCLEAN), name the record,
#                      expose nothing and leave the log as it was; then the
#                      documented recovery: discard_corrupt, enable: blocks
#                      0-3 replayed, the rest dropped
#   corrupt.sh torn    tear the last record (the last 8 bytes of its header
#                      line zeroed, as a power cut in the store of the
#                      line, the record's commit point, leaves it): enable replays
#                      records 1-19
#   corrupt.sh poison  record 5's data on a bad line of the pmem (an entry
#                      in /sys/block/pmem0/badblocks, as the platform's
#                      poison list makes one): enable must fail (EIO), name
#                      the record and the bad line, expose nothing, leave
#                      the log as it was, never crash; discard_corrupt then
#                      replays records 1-4
#   corrupt.sh write-slots   as write, on a log with slots (the default):
#                      each record in a slot
#   corrupt.sh flip-slot    a bit flipped in block 4's slot line: taken as
#                      a torn slot, its record absent, the others replayed
#   corrupt.sh poison-slot  block 19's slot data on a bad pmem line: EIO
#                      naming the slot; discard_corrupt drops that record
#   corrupt.sh write-long   2500 writes of 4 KiB (blocks 0-2499, block i
#                      holding the numbers 512i to 512i+511 of `seq -w`),
#                      each one record: more than two swarms
#   corrupt.sh flip-long    a bit flipped in record 2000's header (the second swarm
#                      at swarm_width 16, swarms of 1024, after a whole
#                      one): as flip, then discard_corrupt replays blocks
#                      0-1998
. /guest/lib.sh
set -e
insmod /lib/swarmlog/swarmlog.ko cp_interval_ms=3600000
v=$c/x
# Record k (from 1) of 4 KiB: 64-byte header + 4096 bytes, from offset 4096.
rec() { echo $((4096 + ($1 - 1) * 4160)); }
# Block i is written full of the letter number i (A, B, ...).
fill() { awk -v c="$1" 'BEGIN { s = sprintf("%c", 65 + c); for (i = 0; i < 4096; i++) printf "%s", s }'; }
block_is() { # block_is BLOCK N|zero: block BLOCK of the volume holds fill N, or zeroes
	if [ "$2" = zero ]; then
		want=$(dd if=/dev/zero bs=4096 count=1 2>/dev/null | md5sum)
	else
		want=$(fill "$2" | md5sum)
	fi
	got=$(dd if=$dev bs=4096 skip="$1" count=1 iflag=direct 2>/dev/null | md5sum)
	[ "$want" = "$got" ]
}
pmem_sum() { dd if=/dev/pmem0 bs=1M count=1 2>/dev/null | md5sum; }
# The contents of write-long: 2500 blocks of `seq -w` numbers (8 bytes each).
long_data() { seq -w 0 1279999; }
# flip_bit OFFSET: flips a bit of the pmem byte at OFFSET.
flip_bit() {
	b=$(dd if=/dev/pmem0 bs=1 skip=$1 count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
	printf "\\$(printf %03o $((b ^ 4)))" | dd of=/dev/pmem0 bs=1 seek=$1 conv=notrunc 2>/dev/null
}
# slot_of BLOCK: "SLOT LINE DATA": the slot holding block BLOCK's record
# (write-slots), the pmem offsets of its header line and of its block
# (format.rst, "Slots": from the end of the log back, the blocks, then the
# table). Fails if no slot's line names the block.
le() { od -An -tu8 -j "$1" -N 8 /dev/pmem0 | tr -d ' '; }
slot_of() {
	size=$(le 40)
	n=$(($(le 56) & 0xffffffff))
	blocks=$(((size & ~4095) - n * 4096))
	table=$((blocks - n * 64))
	for i in $(seq 0 $((n - 1))); do
		if [ "$(le $((table + i * 64 + 24)))" = $(($1 * 8)) ]; then
			echo "$i $((table + i * 64)) $((blocks + i * 4096))"
			return 0
		fi
	done
	fail "no slot holds block $1"
}
slots_sum() { dd if=/dev/pmem0 bs=1M 2>/dev/null | md5sum; }
# refused SEQ: enable must fail with EUCLEAN naming record SEQ, expose
# nothing and leave the log unchanged.
refused() { refused_corrupt "$1" "$(rec "$1")" pmem_sum; }

case "$1" in
write | write-slots)
	make_array 1
	volume x
	# The ring cases keep a ring only: whole-block writes go to slots else.
	[ "$1" = write-slots ] || echo 0 > $v/log_slots
	echo 1 > $v/format
	echo 1 > $v/enable
	dev=/dev/$(cat $v/disk)
	for i in $(seq 0 19); do
		fill $i > /tmp/b
		dd if=/tmp/b of=$dev bs=4096 seek=$i count=1 oflag=direct,dsync 2>/dev/null || fail "write $i"
	done
	[ "$(status x writes)" = 20 ] && [ "$(status x cp_count)" = 0 ] || fail "not 20 records in the log"
	free=$(($(status x log_slots_total) - $(status x log_slots_free)))
	if [ "$1" = write-slots ]; then
		[ "$free" = 20 ] || fail "$free slots in use, not 20"
	else
		[ "$(status x log_slots_total)" = 0 ] || fail "a ring-only log has slots"
	fi
	echo "CORRUPT-WRITTEN"
	sleep 3600
	;;
flip)
	assemble_array
	# One bit of record 5's header line (of its sector number).
	flip_bit $(($(rec 5) + 25))
	refused 5
	echo 1 > $v/discard_corrupt
	echo 1 > $v/enable || fail "enable with discard_corrupt"
	dev=/dev/$(cat $v/disk)
	for i in 0 1 2 3; do block_is $i $i || fail "block $i lost"; done
	for i in 4 5 19; do block_is $i zero || fail "block $i: a dropped record was applied"; done
	[ "$(status x replay_corrupt_dropped)" = 1 ] || fail "replay_corrupt_dropped"
	echo "recovered: records 1-4 replayed, 5-20 dropped as asked"
	echo 0 > $v/enable
	;;
torn)
	assemble_array
	dd if=/dev/zero of=/dev/pmem0 bs=8 seek=$((($(rec 20) + 56) / 8)) count=1 conv=notrunc 2>/dev/null
	volume x
	echo 1 > $v/enable || fail "enable after a torn last record"
	dev=/dev/$(cat $v/disk)
	[ "$(status x replay_messages)" = 19 ] || fail "replayed $(status x replay_messages) records, not 19"
	for i in $(seq 0 18); do block_is $i $i || fail "block $i lost"; done
	block_is 19 zero || fail "the torn record was applied"
	echo "torn last record: records 1-19 replayed, the torn one not"
	echo 0 > $v/enable
	;;
poison)
	assemble_array
	# Record 5's data starts 64 bytes into it; the sector after the one
	# holding its header line is data only.
	bad=$((($(rec 5) + 64) / 512 + 1))
	[ $((bad * 512)) -ge $(($(rec 5) + 64)) ] && [ $((bad * 512 + 512)) -le $(($(rec 5) + 4160)) ] ||
		fail "sector $bad is not inside record 5's data"
	# The log's first MiB as the pmem driver gives it, but the bad sector
	# (a read of it fails): sector by sector, direct (a buffered read
	# would read the bad sector's whole page).
	pmem_around() {
		{
			dd if=/dev/pmem0 bs=512 count=$bad iflag=direct 2>/dev/null ||
				echo "read error before sector $bad"
			dd if=/dev/pmem0 bs=512 skip=$((bad + 1)) count=$((2047 - bad)) iflag=direct 2>/dev/null ||
				echo "read error after sector $bad"
		} | md5sum
	}
	echo "$bad 1" > /sys/block/pmem0/badblocks || fail "adding a bad block to pmem0"
	grep -q "^$bad 1" /sys/block/pmem0/badblocks || fail "pmem0 badblocks: $(cat /sys/block/pmem0/badblocks)"
	dd if=/dev/pmem0 bs=512 skip=$bad count=1 iflag=direct of=/dev/null 2>/dev/null &&
		fail "pmem0 reads its bad sector $bad"
	volume x
	refused_damaged 5 "$(rec 5)" "a bad line of the pmem (its data)" pmem_around
	echo 1 > $v/discard_corrupt
	echo 1 > $v/enable || fail "enable with discard_corrupt"
	dev=/dev/$(cat $v/disk)
	for i in 0 1 2 3; do block_is $i $i || fail "block $i lost"; done
	for i in 4 5 19; do block_is $i zero || fail "block $i: a dropped record was applied"; done
	echo "recovered: records 1-4 replayed, 5-20 dropped as asked"
	echo 0 > $v/enable
	;;
flip-slot)
	# A bit of the header line of block 4's slot (its sector number): the
	# line no longer checks, as one a power cut tore while the slot was
	# written; replay cannot tell the two apart and takes the slot as
	# empty (admin-guide, "Corrupt records"): block 4 reads as before that
	# write, every other block as written.
	assemble_array
	set -- $(slot_of 4)
	echo "block 4 is in slot $1 (line at $2, block at $3)"
	flip_bit $(($2 + 25))
	volume x
	echo 1 > $v/enable || fail "enable after a damaged slot line: $(dmesg | tail -2)"
	dev=/dev/$(cat $v/disk)
	[ "$(status x replay_messages)" = 19 ] || fail "replayed $(status x replay_messages) records, not 19"
	for i in 0 1 2 3 $(seq 5 19); do block_is $i $i || fail "block $i lost"; done
	block_is 4 zero || fail "block 4: the damaged slot's record was applied"
	echo "damaged slot line: its record taken as absent (block 4 as before it), the 19 others replayed"
	echo 0 > $v/enable
	;;
poison-slot)
	# Block 19's slot's data (the newest record) on a bad line of the
	# pmem: enable must fail (EIO) naming the slot and its record, expose
	# nothing and change nothing; with discard_corrupt the record is
	# dropped, the others replayed, and the log's head goes past it (the
	# CP after replay is numbered past 20: no later replay takes it).
	assemble_array
	set -- $(slot_of 19)
	bad=$(($3 / 512 + 3))
	echo "$bad 1" > /sys/block/pmem0/badblocks || fail "adding a bad block to pmem0"
	volume x
	# The log up to the bad sector, in 1 MiB reads (512-byte ones took
	# some 55 s of the 66 MiB under TCG).
	before=$(dd if=/dev/pmem0 bs=1M count=$((bad * 512)) iflag=direct,count_bytes 2>/dev/null | md5sum)
	if echo 1 > $v/enable 2>/tmp/err; then fail "enable took a slot on a bad line"; fi
	grep -q "Input/output error" /tmp/err || fail "enable failed, but not with EIO: $(cat /tmp/err)"
	msg="log slot $1 (record seq 20) holds data the media reports bad; not replayed"
	dmesg | grep -qF "$msg" || fail "the kernel log does not say: $msg"
	[ -z "$(cat $v/disk)" ] && [ ! -e /sys/block/swarmlog0 ] || fail "a disk was exposed"
	[ "$(dd if=/dev/pmem0 bs=1M count=$((bad * 512)) iflag=direct,count_bytes 2>/dev/null | md5sum)" = "$before" ] ||
		fail "the log changed"
	echo "refused: EIO, slot $1 (record 20) named, no disk, log unchanged"
	echo 1 > $v/discard_corrupt
	echo 1 > $v/enable || fail "enable with discard_corrupt: $(dmesg | tail -2)"
	dev=/dev/$(cat $v/disk)
	dmesg | grep -qF "log slot $1 (record seq 20) holds data the media reports bad; dropped" ||
		fail "the kernel log does not say the slot was dropped"
	for i in $(seq 0 18); do block_is $i $i || fail "block $i lost"; done
	block_is 19 zero || fail "block 4: the dropped record was applied"
	seq=$(status x last_cp_seq)
	[ "$seq" -ge 20 ] || fail "last_cp_seq $seq: the log's head did not pass the dropped record 20"
	echo "recovered: slot $1's record dropped as asked, the 19 others replayed"
	echo 0 > $v/enable
	;;
write-long)
	make_array 1
	volume x
	echo 0 > $v/log_slots
	echo 1 > $v/format
	echo 1 > $v/enable
	dev=/dev/$(cat $v/disk)
	long_data > /tmp/long
	dd if=/tmp/long of=$dev bs=4096 count=2500 oflag=direct 2>/dev/null || fail "write"
	[ "$(status x writes)" = 2500 ] && [ "$(status x cp_count)" = 0 ] || fail "not 2500 records in the log"
	echo "CORRUPT-WRITTEN"
	sleep 3600
	;;
flip-long)
	assemble_array
	flip_bit $(($(rec 2000) + 25))
	WIDTH=16 refused 2000
	# The first swarm (records 1-256: at width 16, a sixteenth of the
	# others' 4096) ran; the one holding the corrupt record was held back.
	[ "$(status x replay_swarms)/$(status x replay_messages)" = 1/256 ] ||
		fail "swarms/messages replayed before the refusal: $(status x replay_swarms)/$(status x replay_messages), not 1/256"
	echo 1 > $v/discard_corrupt
	echo 1 > $v/enable || fail "enable with discard_corrupt"
	dev=/dev/$(cat $v/disk)
	[ "$(status x replay_messages)" = 1999 ] || fail "replayed $(status x replay_messages) records, not 1999"
	long_data | head -c $((1999 * 4096)) | md5sum > /tmp/want
	dd if=$dev bs=4096 count=1999 iflag=direct 2>/dev/null | md5sum > /tmp/got
	cmp -s /tmp/want /tmp/got || fail "blocks 0-1998 are not what was written"
	dd if=$dev bs=4096 skip=1999 count=501 iflag=direct 2>/dev/null | tr -d '\000' | head -c 1 > /tmp/nz
	[ ! -s /tmp/nz ] || fail "a dropped record (2000-2500) was applied"
	echo "recovered: records 1-1999 replayed over $(status x replay_swarms) swarms, 2000-2500 dropped as asked"
	echo 0 > $v/enable
	;;
esac
