# SPDX-License-Identifier: GPL-2.0
# A CP cut short by the power, and a damaged block, guest side
# (scenarios/cp-cut-short). md over two disks, a 16 MiB log.
#   cp-cut.sh write [LEVEL]  md raid LEVEL (default 1); region A (volume blocks 0-255) filled and committed;
#                       then, with the CPs set to stall (debugfs
#                       replay_fault 3, test kernels), one-sector writes all
#                       over A (fio, verify headers), whole blocks B (4 MiB
#                       on, 1 MiB) and C (8 MiB on, 10.5 MiB: the log
#                       three quarters full asks for a CP, which writes its
#                       table blocks and then stalls after 64 data blocks,
#                       those of A; a CP of the whole log: the blocks A
#                       changed in part hold changes older than any mark),
#                       and, while it stalls, D (20 MiB on, 1 MiB): records
#                       after the CP's target; the power is cut then
#   cp-cut.sh write-part  region A filled and committed as above; then one
#                       sector of block 6 written and block 6 written whole
#                       again (no block held in memory), B and C (whole
#                       MiB, as many as pass three quarters of the log):
#                       the CP asked for frees only the log's oldest part
#                       (cp_partial 1), up to a mark after B and the first
#                       MiB of C; it writes block 6 and B, and stalls; D
#                       (40 MiB on, 1 MiB) while it stalls; the power is cut
#   cp-cut.sh replay-part  enable replays: block 6, read by the LOAD of the
#                       one-sector record, is proved by the cut CP's pending
#                       table copy (replay_pending_verified > 0), no
#                       checksum error; blocks 6, B, C and D are as written
#   cp-cut.sh replay    enable replays: the blocks of A the CP rewrote are
#                       proved by its pending table copies
#                       (replay_pending_verified > 0), no checksum error,
#                       the CP redone at its target; every write of A-D is
#                       there; then a one-sector write into block 1030 (in
#                       B, on the array) and the power is cut
#   cp-cut.sh replay lost   the same after a write boot whose cut went
#                       through the disks' volatile caches (scripts/vm
#                       --lost-cache): any of the CP's data writes may be
#                       gone, so no count of proved blocks is asked for;
#                       every write must be there; no sector write, no cut
#   cp-cut.sh write-slots  a log with slots, timed CPs every 300 ms:
#                       blocks 0-255 committed; with CPs set to stall,
#                       whole blocks B (1024-1279, in slots) and one sector
#                       of block 1030 (in the ring); a timed CP takes them
#                       and stalls after 64 blocks; then 1024-1151 written
#                       whole again (new slots; the committing versions
#                       keep theirs) and 2048-2303; the power is cut
#   cp-cut.sh replay-slots  enable replays: every block as last written
#                       (1024-1151 their second version, 1030 included),
#                       no checksum error, every slot free after the CP
#   cp-cut.sh damaged   a byte of block 1030 changed on the array (not in
#                       the sector the log changes): enable refuses (EIO),
#                       names the block, skips and keeps the record; with
#                       discard_skipped, enable drops it and the block reads
#                       as an I/O error: never given a fresh checksum
. /guest/lib.sh
v=$c/x
# gen FIRST END: whole blocks FIRST to END-1, each "blk-N" padded to 4 KiB.
gen() { awk -v s="$1" -v e="$2" 'BEGIN { for (b = s; b < e; b++) printf "%-4095s\n", "blk-" b }'; }
# put FIRST END: those blocks written, 1 MiB a write, acknowledged.
put() {
	gen "$1" "$2" > /tmp/r
	dd if=/tmp/r of="$dev" bs=1M seek=$(($1 / 256)) oflag=direct,dsync 2>/dev/null ||
		fail "writing blocks $1-$(($2 - 1))"
}
# same FIRST END [GEN]: the volume holds those blocks (as GEN makes them,
# gen by default).
same() {
	n=$(($2 - $1))
	[ "$(dd if="$dev" bs=4096 skip="$1" count=$n iflag=direct 2>/dev/null | md5sum)" = \
		"$(${3:-gen} "$1" "$2" | md5sum)" ] || fail "blocks $1-$(($2 - 1)) are not as written"
}
# gen2 FIRST END: the blocks' second version, "again-N" padded to 4 KiB.
gen2() { awk -v s="$1" -v e="$2" 'BEGIN { for (b = s; b < e; b++) printf "%-4095s\n", "again-" b }'; }
partial() {
	fio --name=partial --filename="$dev" --offset=0 --size=1m --rw=randwrite --bs=512 \
		--number_ios=600 --direct=1 --sync=dsync --ioengine=psync --randseed=11 \
		--verify=crc32c --verify_state_save=0 "$1" --output-format=terse > /tmp/fio ||
		fail "fio $1: $(tail -3 /tmp/fio)"
}
# array_offset BLOCK: byte offset on md0 of volume block BLOCK (the layout
# of rust/format/array.rs: superblock, two copies of each table block of
# 254 entries, then the data blocks).
array_offset() {
	awk -v n=$(($(cat /sys/block/md0/size) / 8)) -v b="$1" 'BEGIN {
		avail = n - 1; d = int(avail * 254 / 256)
		while (d + 2 * int((d + 253) / 254) > avail) d--
		printf "%d\n", (1 + 2 * int((d + 253) / 254) + b) * 4096 }'
}
st() { status x "$1"; }
# c_end: the block after region C of write-part: C is whole MiB, enough for
# B and C to pass three quarters of the log (pmem or log disk) and leave
# room for D.
c_end() { echo $((2048 + ($(st log_capacity_bytes) / 4 * 3 / 1048576 + 1) * 256)); }
# stalling_volume LEVEL: an md array of LEVEL, volume x formatted, region
# A (its first MiB) written, then enabled again with the test fault that
# stalls CPs (replay_fault 3); its disk in $dev.
stalling_volume() {
	make_array "$1" /dev/vda /dev/vdb
	insmod /lib/swarmlog/swarmlog.ko cp_interval_ms=3600000 || fail insmod
	volume x
	# A ring only: whole-block writes would go to slots and not fill it.
	echo 0 > $v/log_slots
	echo 1 > $v/format || fail format
	echo 1 > $v/enable || fail enable
	dev=/dev/$(cat $v/disk)
	dd if=/dev/urandom of="$dev" bs=1M count=1 oflag=direct 2>/dev/null || fail "filling A"
	echo 0 > $v/enable
	knob=/sys/kernel/debug/swarmlog/x/replay_fault
	[ -w $knob ] || fail "no $knob (a test kernel has it)"
	echo 3 > $knob
	echo 1 > $v/enable || fail "enable with stalling CPs"
	dev=/dev/$(cat $v/disk)
}
# wait_stall: until the kernel log says a CP stalled (10 s at most).
wait_stall() {
	for i in $(seq 50); do
		dmesg | grep -q "cp_stall: CP stalled" && break
		sleep 0.2
	done
	dmesg | grep "cp_stall" || fail "the CP did not stall"
}
# again: md0 and the module after a power cut, volume x configured.
again() {
	assemble_array /dev/vda /dev/vdb
	insmod /lib/swarmlog/swarmlog.ko cp_interval_ms=3600000 || fail insmod
	volume x
}

case "$1" in
write)
	stalling_volume "${2:-1}"
	partial --do_verify=0
	put 1024 1280
	put 2048 4736
	wait_stall
	put 5120 5376
	echo "writes: $(st writes), CPs ended: $(st cp_count)"
	echo "CP-CUT-WRITTEN"
	sleep 3600
	;;
write-part)
	stalling_volume 1
	head -c 512 /dev/zero | tr '\0' 'z' > /tmp/s
	dd if=/tmp/s of="$dev" bs=512 seek=$((6 * 8 + 3)) count=1 oflag=direct,dsync 2>/dev/null ||
		fail "the one-sector write"
	gen 6 7 > /tmp/r
	dd if=/tmp/r of="$dev" bs=4096 seek=6 oflag=direct,dsync 2>/dev/null || fail "writing block 6"
	put 1024 1280
	put 2048 "$(c_end)"
	wait_stall
	[ "$(st cp_partial)" = 1 ] || fail "cp_partial $(st cp_partial): the CP was not of the log's oldest part"
	put 10240 10496
	echo "writes: $(st writes), CPs ended: $(st cp_count), of the oldest part: $(st cp_partial)"
	echo "CP-CUT-WRITTEN"
	sleep 3600
	;;
write-slots)
	# Timed CPs every 300 ms, the log with slots (the default).
	make_array 1 /dev/vda /dev/vdb
	insmod /lib/swarmlog/swarmlog.ko cp_interval_ms=300 || fail insmod
	volume x
	echo 1 > $v/format || fail format
	echo 1 > $v/enable || fail enable
	dev=/dev/$(cat $v/disk)
	put 0 256
	echo 0 > $v/enable
	echo 3 > /sys/kernel/debug/swarmlog/x/replay_fault || fail "no replay_fault (a test kernel has it)"
	echo 1 > $v/enable || fail "enable with stalling CPs"
	dev=/dev/$(cat $v/disk)
	put 1024 1280
	head -c 512 /dev/zero | tr '\0' 'z' > /tmp/s
	dd if=/tmp/s of="$dev" bs=512 seek=$((1030 * 8 + 3)) count=1 oflag=direct,dsync 2>/dev/null ||
		fail "the one-sector write"
	inuse=$(($(st log_slots_total) - $(st log_slots_free)))
	[ "$inuse" = 256 ] || fail "$inuse slots in use after B, not 256"
	# A timed CP takes B (written two intervals before it) and stalls.
	sleep 1
	wait_stall
	gen2 1024 1152 > /tmp/r
	dd if=/tmp/r of="$dev" bs=1M seek=4 oflag=direct,dsync 2>/dev/null || fail "writing B again"
	put 2048 2304
	inuse=$(($(st log_slots_total) - $(st log_slots_free)))
	# B's committing blocks keep their slots until their CP ends.
	[ "$inuse" = 640 ] || fail "$inuse slots in use while the CP stalls, not 640"
	echo "writes: $(st writes), slots in use: $inuse, log bytes used: $(st log_used_bytes)"
	echo "CP-CUT-WRITTEN"
	sleep 3600
	;;
replay-slots)
	again
	echo 1 > $v/enable || fail "enable after the cut CP: $(dmesg | tail -3)"
	dev=/dev/$(cat $v/disk)
	echo "replayed $(st replay_messages) records"
	[ "$(st replay_state)" = done ] || fail "replay_state $(st replay_state)"
	[ "$(st checksum_errors)" = 0 ] || fail "checksum errors: $(st checksum_errors)"
	dmesg | grep -q "checksum mismatch" && fail "a checksum mismatch: $(dmesg | grep 'checksum mismatch' | head -1)"
	same 0 256
	same 1024 1152 gen2
	same 1152 1280
	same 2048 2304
	[ "$(st log_slots_free)" = "$(st log_slots_total)" ] ||
		fail "$(st log_slots_free) of $(st log_slots_total) slots free after replay's CP"
	echo "every acknowledged write verified: blocks 0-255, 1024-1279 (1024-1151 written twice), 2048-2303; every slot free again"
	echo 0 > $v/enable || fail disable
	;;
replay-part)
	again
	echo 1 > $v/enable || fail "enable after the cut CP: $(dmesg | tail -3)"
	dev=/dev/$(cat $v/disk)
	proved=$(st replay_pending_verified)
	echo "replayed $(st replay_messages) records; $proved blocks read were the cut CP's, proved by its pending table copies"
	[ "$(st replay_state)" = done ] || fail "replay_state $(st replay_state)"
	[ "$proved" -gt 0 ] || fail "no block proved by a pending table copy"
	[ "$(st checksum_errors)" = 0 ] || fail "checksum errors: $(st checksum_errors)"
	dmesg | grep -q "checksum mismatch" && fail "a checksum mismatch: $(dmesg | grep 'checksum mismatch' | head -1)"
	same 6 7
	same 1024 1280
	same 2048 "$(c_end)"
	same 10240 10496
	echo "every acknowledged write verified: blocks 6, 1024-1279, 2048-$(($(c_end) - 1)) and 10240-10495"
	echo 0 > $v/enable || fail disable
	;;
replay)
	again
	echo 1 > $v/enable || fail "enable after the cut CP: $(dmesg | tail -3)"
	dev=/dev/$(cat $v/disk)
	proved=$(st replay_pending_verified)
	echo "replayed $(st replay_messages) records; $proved blocks read were the cut CP's, proved by its pending table copies"
	[ "$(st replay_state)" = done ] || fail "replay_state $(st replay_state)"
	[ "$proved" -gt 0 ] || [ "${2-}" = lost ] || fail "no block proved by a pending table copy"
	[ "$(st checksum_errors)" = 0 ] || fail "checksum errors: $(st checksum_errors)"
	dmesg | grep -q "checksum mismatch" && fail "a checksum mismatch: $(dmesg | grep 'checksum mismatch' | head -1)"
	partial --verify_only
	same 1024 1280
	same 2048 4096
	same 5120 5376
	echo "every acknowledged write verified: 600 one-sector writes and 3200 blocks"
	[ "${2-}" != lost ] || exit 0
	# Everything committed, then one sector of block 1030 in the log only.
	echo 0 > $v/enable
	echo 1 > $v/enable || fail "enable again"
	dev=/dev/$(cat $v/disk)
	head -c 512 /dev/zero | tr '\0' 'z' > /tmp/s
	dd if=/tmp/s of="$dev" bs=512 seek=$((1030 * 8 + 3)) count=1 oflag=direct,dsync 2>/dev/null ||
		fail "the one-sector write"
	echo "CP-CUT-SECTOR-WRITTEN"
	sleep 3600
	;;
damaged)
	again
	at=$(array_offset 1030)
	[ "$(dd if=/dev/md0 bs=4096 skip=$((at / 4096)) count=1 iflag=direct 2>/dev/null | head -c 8)" = "blk-1030" ] ||
		fail "block 1030 is not at array offset $at"
	# Byte 100 of the block's first sector (the log changes its fourth).
	printf 'X' | dd of=/dev/md0 bs=1 seek=$((at + 100)) conv=notrunc 2>/dev/null || fail "damaging block 1030"
	sync
	echo 3 > /proc/sys/vm/drop_caches
	if echo 1 > $v/enable 2>/tmp/err; then
		fail "enable replayed over a damaged block (replay_state $(st replay_state))"
	fi
	grep -q "Input/output error" /tmp/err || fail "enable: $(cat /tmp/err), not EIO"
	dmesg | grep "checksum mismatch in block 1030" || fail "the kernel log does not name block 1030"
	[ "$(st replay_state)" = skipped-kept ] || fail "replay_state $(st replay_state)"
	[ "$(st replay_skipped)" = 1 ] || fail "replay_skipped $(st replay_skipped)"
	[ -z "$(cat $v/disk)" ] || fail "a disk was exposed"
	echo "damaged block 1030: refused (EIO), named, its record skipped and kept"
	echo 1 > $v/discard_skipped
	echo 1 > $v/enable || fail "enable with discard_skipped"
	dev=/dev/$(cat $v/disk)
	if dd if="$dev" of=/dev/null bs=4096 skip=1030 count=1 iflag=direct 2>/dev/null; then
		fail "block 1030 read back: the damage was given a fresh checksum"
	fi
	same 1024 1030
	same 1031 1280
	echo "with discard_skipped: the record dropped, block 1030 an I/O error (not laundered), its neighbours intact"
	echo 0 > $v/enable
	;;
esac
