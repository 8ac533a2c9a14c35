# SPDX-License-Identifier: GPL-2.0
# Array faults at replay, guest side (scenarios/replay-read-errors,
# scenarios/raid1-member-lost). 40 writes of 4 KiB, each acknowledged
# (O_DIRECT|O_DSYNC) before the next, to blocks 0, 1000, ..., 39000; the
# power is cut with all of them in the log.
#   faults.sh write LEVEL     md0 (raid0 over dm-linear members, or raid1
#                             over the disks), format, enable, write, cut
#   faults.sh error-member    raid0 whose second member then turns into a
#                             dm-error device (all I/O fails): enable
#                             replays every record from the log (whole
#                             blocks: nothing read from the array), every
#                             write reads back, the CP fails and keeps the
#                             log; then the member back: disable's CP
#                             writes them back, every write is there
#   faults.sh degraded        raid1 with one disk blank: assembled degraded,
#                             enable replays, every write is there
#   faults.sh write-partial   raid0 (16 MiB chunks) over dm-linear
#                             members, a region of 60
#                             MiB written whole and committed (a disable's
#                             CP), then PARTIAL random one-sector writes in
#                             it (fio, verify headers): records that replay
#                             holds in memory (partial blocks, each read
#                             from the array first); cut
#   faults.sh read-errors     the second member then fails every read (dm-
#                             flakey error_reads; writes go through):
#                             enable, with cache_max_mb=4 and swarm_width 4,
#                             skips the records whose reads fail and keeps
#                             them (EIO, skipped-kept, the log header as it
#                             was) while its memory stays bounded (mid-
#                             replay CPs write back and keep the CP marker
#                             at the first skipped record: replay_peak_bytes
#                             under 6 MiB; 16 of them named one by one in
#                             the kernel log, then one line); then reads
#                             work again: enable
#                             replays the rest, every write is there
. /guest/lib.sh
set -e
insmod /lib/swarmlog/swarmlog.ko cp_interval_ms=3600000
v=$c/f
N=40
block() { awk -v t="blk-$1" 'BEGIN { printf "%-4095s\n", t }'; }
verify_all() {
	dev=/dev/$(cat $v/disk)
	for i in $(seq 0 $((N - 1))); do
		b=$((i * 1000))
		[ "$(dd if=$dev bs=4096 skip=$b count=1 iflag=direct 2>/dev/null | md5sum)" = "$(block $b | md5sum)" ] ||
			fail "block $b: the acknowledged write is not there"
	done
	echo "all $N acknowledged writes verified"
}
# linear_members: each disk behind dm-linear, so that a member can be
# swapped for dm-error and back.
member_table() { echo "0 $(cat /sys/block/$1/size) $2"; }
linear_members() {
	for d in vda vdb; do
		dmsetup create "m_$d" --table "$(member_table $d "linear /dev/$d 0")" || fail "dm-linear $d"
		dmsetup mknodes "m_$d"
	done
}
# set_member TABLE: the second member's dm table now TABLE (its size
# first), as a member that fails, or comes back, under the array would.
set_member() {
	dmsetup suspend m_vdb
	dmsetup reload m_vdb --table "$(member_table vdb "$1")"
	dmsetup resume m_vdb
}
# member_back: the second member a plain dm-linear again; enable then
# replays with nothing skipped.
member_back() {
	set_member "linear /dev/vdb 0"
	echo 1 > $v/enable || fail "enable with the member back"
	[ "$(status f replay_state)" = done ] && [ "$(status f replay_skipped)" = 0 ] ||
		fail "second replay: $(status f replay_state), $(status f replay_skipped) skipped"
}
log_header() { dd if="$(log_device)" bs=4096 count=1 iflag=direct 2>/dev/null | head -c 64 | md5sum; }
PARTIAL=4000
# partial DEV FIO-OPTION: the partial writes; the same seed writes, and
# then verifies, the same sectors.
partial() {
	fio --name=partial --filename="$1" --offset=100m --size=60m --rw=randwrite --bs=512 \
		--number_ios=$PARTIAL --direct=1 --sync=dsync --ioengine=psync --randseed=9 \
		--verify=crc32c --verify_state_save=0 "$2" --output-format=terse > /tmp/fio ||
		fail "fio $2: $(tail -3 /tmp/fio)"
}

case "$1" in
write)
	if [ "$2" = 0 ]; then
		linear_members
		make_array 0 /dev/mapper/m_vda /dev/mapper/m_vdb
	else
		make_array 1
	fi
	volume f
	echo 1 > $v/format
	echo 1 > $v/enable
	dev=/dev/$(cat $v/disk)
	for i in $(seq 0 $((N - 1))); do
		block $((i * 1000)) > /tmp/b
		dd if=/tmp/b of=$dev bs=4096 seek=$((i * 1000)) count=1 oflag=direct,dsync 2>/dev/null ||
			fail "write $i"
	done
	[ "$(status f writes)" = $N ] && [ "$(status f cp_count)" = 0 ] || fail "not all $N writes in the log"
	echo "FAULTS-WRITTEN"
	sleep 3600
	;;
error-member)
	linear_members
	assemble_array /dev/mapper/m_vda /dev/mapper/m_vdb
	# Then the second member fails every I/O, as a member gone bad would
	# (before assembly, mdadm could not read its superblock).
	set_member error
	before=$(log_head)
	volume f
	# The records write whole blocks: replay reads nothing of the array
	# for them, so it applies them all and the volume appears; the CP it
	# asks for fails on the failed member's I/O (EIO) and keeps the log
	# (the next is tried at the next interval).
	echo 1 > $v/enable || fail "enable (whole-block records need no read of the array)"
	[ "$(status f replay_state)" = done ] && [ "$(status f replay_skipped)" = 0 ] ||
		fail "replay: $(status f replay_state), $(status f replay_skipped) skipped"
	[ "$(status f replay_loads)" = 0 ] || fail "replay_loads $(status f replay_loads)"
	verify_all
	t=0
	until [ "$(status f cp_errors)" -ge 1 ]; do
		t=$((t + 1))
		[ $t -le 100 ] || fail "no failed CP in 10 s (cp_errors $(status f cp_errors))"
		sleep 0.1
	done
	[ "$(status f cp_count)" = 0 ] || fail "a CP succeeded with a failed member"
	[ "$(log_head)" = "$before" ] || fail "the log's CP marker moved while the CP fails"
	dmesg | grep -q "consistency point failed" || fail "the kernel log does not say the CP failed"
	echo "member failed: all $N records replayed from the log, the CP fails and keeps the log"
	# The member back: disable's CP writes them back.
	set_member "linear /dev/vdb 0"
	echo 0 > $v/enable || fail "disable (its CP) with the member back"
	[ "$(log_head)" != "$before" ] || fail "the log's CP marker did not move"
	echo 1 > $v/enable || fail "enable after the CP"
	verify_all
	echo 0 > $v/enable
	;;
degraded)
	# vdb is blank now: md0 from vda alone.
	mdadm --assemble --run /dev/md0 /dev/vda >/dev/null 2>&1 || fail "mdadm --assemble --run"
	grep -A1 '^md0' /proc/mdstat | tr -s ' \n' ' '
	echo
	grep -q '\[2/1\]' /proc/mdstat || fail "md0 is not degraded"
	volume f
	echo 1 > $v/enable || fail "enable on the degraded array"
	[ "$(status f replay_messages)" -ge $N ] || fail "replayed $(status f replay_messages)"
	verify_all
	echo 0 > $v/enable
	;;
write-partial)
	linear_members
	# Chunks of 16 MiB: the table blocks (the array's first MiB) lie on
	# the first member, the region's blocks half on each.
	CHUNK_KB=16384 make_array 0 /dev/mapper/m_vda /dev/mapper/m_vdb
	volume f
	echo 1 > $v/format
	echo 1 > $v/enable
	dd if=/dev/urandom of=/dev/$(cat $v/disk) bs=1M seek=100 count=60 oflag=direct 2>/dev/null ||
		fail "filling the region"
	echo 0 > $v/enable
	echo 1 > $v/enable
	partial "/dev/$(cat $v/disk)" --do_verify=0
	[ "$(status f writes)" = $PARTIAL ] && [ "$(status f cp_count)" = 0 ] ||
		fail "not all $PARTIAL writes in the log"
	echo "FAULTS-WRITTEN"
	sleep 3600
	;;
read-errors)
	rmmod swarmlog
	insmod /lib/swarmlog/swarmlog.ko cp_interval_ms=3600000 cache_max_mb=4 || fail insmod
	linear_members
	assemble_array /dev/mapper/m_vda /dev/mapper/m_vdb
	set_member "flakey /dev/vdb 0 0 3600 1 error_reads"
	before=$(log_header)
	volume f
	echo 4 > $v/swarm_width
	if echo 1 > $v/enable 2>/dev/null; then fail "enable succeeded with reads failing"; fi
	dmesg | grep "skipped" | tail -1
	[ "$(status f replay_state)" = skipped-kept ] || fail "replay_state $(status f replay_state)"
	skipped=$(status f replay_skipped) peak=$(status f replay_peak_bytes)
	[ "$skipped" -gt 0 ] && [ "$skipped" -lt $PARTIAL ] || fail "replay_skipped $skipped"
	# On a small block log (SWARMLOG_LOG_DISK=16M) the writes may wrap the
	# ring (the 60 MiB fill leaves the head anywhere in it), and a wrap
	# record is a message too.
	m=$(status f replay_messages)
	[ "$m" = $PARTIAL ] || { [ "$(log_device)" != /dev/pmem0 ] && [ "$m" = $((PARTIAL + 1)) ]; } ||
		fail "replayed $m messages, not $PARTIAL"
	[ -z "$(cat $v/disk)" ] || fail "a disk was exposed"
	[ "$(log_header)" = "$before" ] || fail "the log header changed"
	[ "$peak" -lt $((6 << 20)) ] || fail "replay held $peak bytes with records skipped"
	# Named one by one up to 16, then one line (not 2000 on the console).
	listed=$(dmesg | grep -c "skipped: its part of the array")
	[ "$listed" = 16 ] && dmesg | grep -q "more records skipped" ||
		fail "$listed skipped records listed one by one in the kernel log"
	echo "reads failing: $skipped of $PARTIAL records skipped and kept, no disk, replay held at most $peak bytes"
	member_back
	partial "/dev/$(cat $v/disk)" --verify_only
	echo "all $PARTIAL partial writes verified"
	echo 0 > $v/enable
	;;
esac
