# SPDX-License-Identifier: GPL-2.0
# Time to available after a power cut, guest side (see scripts/bench-tta).
#   bench-tta.sh write TARGET DELAY_MS LEVEL WRITES
#       md0, raid LEVEL (0 or 5) over the disks (behind
#       dm-delay, reads and writes delayed by DELAY_MS, when that is not
#       0); TARGET (swarmlog or writecache) made on pmem0 (or the log disk,
#       if the VM has one: dm-writecache in SSD mode then) and md0; or
#       TARGET journal: md0 a raid5 with the log disk as its write journal,
#       in write-back mode; WRITES random 4 KiB writes over the first half of
#       its device, an fsync, one more 4 KiB write (a known pattern) at
#       offset 0 with O_DSYNC; its state printed (every write must still be
#       in the log or the cache: no CP, no writeback; md's journal
#       writes back as it likes: what it still holds is printed); then
#       BENCH-TTA-WRITTEN, and it waits for the power cut
#   bench-tta.sh open TARGET DELAY_MS LEVEL
#       the same devices assembled again, and timed: for swarmlog, from
#       `echo 1 > enable` (the module loaded and the volume's log and array
#       set before) to the first successful O_DIRECT 4 KiB read of its
#       disk; for writecache, from `dmsetup create` to the same on its
#       device; for journal, from `mdadm --assemble` (md recovers its
#       journal there) to the same on md0. Prints
#   TTA target=T ms=MS open_ms=MS read_tries=N pattern=ok|BAD ...
# shellcheck source-path=SCRIPTDIR source=lib.sh
. /guest/lib.sh
set -e
mode=$1 target=$2 delay=$3 level=$4
v=$c/v0
# mark NAME: a line in the kernel log (a shell builtin, no process
# started), whose timestamp stamp_us NAME reads later: the clock, to the
# microsecond, at almost no cost to what it times.
mark() { echo "BENCH-TTA-$1" > /dev/kmsg; }
stamp_us() { dmesg | grep "BENCH-TTA-$1\$" | tail -n 1 | tr -d '[]' | awk '{ printf "%.0f", $1 * 1e6 }'; }
# ms FROM TO: the time between two marks, in ms with one decimal.
ms() { echo $((($(stamp_us "$2") - $(stamp_us "$1")) / 1000)).$((($(stamp_us "$2") - $(stamp_us "$1")) % 1000 / 100)); }
st() {
	x=$(status v0 "$1")
	echo "${x:-?}"
}
pattern() { yes swarmlog-bench-tta | head -c 4096; }
# replay_reads: the bytes of the log a replay reads: the ring's used
# bytes, and with slots the slot table (a 64-byte line a slot; a slot's
# block is not read, the cache points to it).
replay_reads() { echo $(($(st log_used_bytes) + $(st log_slots_total) * 64)); }
# read_floor USED: what reading the log's first USED bytes costs the log
# device alone, once the replay's CP has written the records back (so that
# nothing else uses the devices): fio, sequential O_DIRECT reads of 1 MiB,
# two in flight, as the scan of a block log keeps its next piece in flight.
# No replay that reads every record can be faster. Prints
# read_floor_mib=N read_floor_ms=MS.
read_floor() {
	mib=$((($1 + 1048575) / 1048576))
	n=0
	until [ "$(st cp_count)" != 0 ] && [ "$(st cp_count)" != "?" ]; do
		n=$((n + 1))
		[ $n -le 600 ] || fail "the replay's CP did not end in 5 minutes"
		sleep 0.5
	done
	fio --name=floor --filename="$cache" --rw=read --bs=1M --iodepth=2 --direct=1 --ioengine=libaio \
		--size="${mib}M" --output-format=terse --terse-version=3 > /tmp/floor || fail "fio read floor"
	echo "read_floor_mib=$mib read_floor_ms=$(awk -F';' '{ print $9 }' /tmp/floor)"
}
# The same table on both boots: pmem mode, 4 KiB blocks, and watermarks
# that start no writeback for the pending writes (at most 80 % of the
# cache; checked before the cut).
# With a log disk (scripts/bench-tta --log-disk), SSD mode on it instead.
cache=$(log_device) wc_mode=p
[ "$cache" = /dev/pmem0 ] || wc_mode=s
wc_table() { echo "0 $(blockdev --getsz /dev/md0) writecache $wc_mode /dev/md0 $cache 4096 4 high_watermark 90 low_watermark 80"; }
# The module's parameters on both boots: no timed CP, room for the writes.
swarmlog_insmod() {
	insmod /lib/swarmlog/swarmlog.ko cp_interval_ms=3600000 cache_max_mb=512 || fail "insmod"
}

members=$(delayed_members "$delay" "$delay")
case "$members" in /dev/*) ;; *) fail "members: $members" ;; esac
case "$target:$level" in
journal:5) [ "$wc_mode" = s ] || fail "journal: no log disk (scripts/vm --log-disk)" ;;
journal:*) fail "journal: raid5 only" ;;
*:0 | *:5) ;;
*) fail "level: 0 or 5" ;;
esac
# The pending writes (and a journal's stripes) in md's stripe cache.
stripes() { [ "$level" != 5 ] || echo 4096 > /sys/block/md0/md/stripe_cache_size; }

case "$mode" in
write)
	writes=$5
	if [ "$target" = journal ]; then
		# shellcheck disable=SC2086
		JOURNAL=$cache make_array 5 $members
		echo write-back > /sys/block/md0/md/journal_mode || fail "journal_mode write-back"
	else
		# shellcheck disable=SC2086
		make_array "$level" $members
	fi
	stripes
	case "$target" in
	swarmlog)
		swarmlog_insmod
		volume v0
		echo 1 > "$v/format" || fail "format"
		echo 1 > "$v/enable" || fail "enable"
		dev=/dev/$(cat "$v/disk")
		;;
	writecache)
		dd if=/dev/zero of="$cache" bs=1M count=4 oflag=direct 2>/dev/null || fail "wiping $cache"
		dmsetup create wc --table "$(wc_table)" || fail "dm-writecache"
		dmsetup mknodes wc
		dev=/dev/mapper/wc
		;;
	journal) dev=/dev/md0 ;;
	*) fail "target: swarmlog, writecache or journal" ;;
	esac
	half=$(($(blockdev --getsz /dev/md0) / 2 / 2048))
	mark W0
	fio --name=tta --filename="$dev" --rw=randwrite --bs=4k --direct=1 --ioengine=libaio \
		--iodepth=16 --size="${half}M" --number_ios="$writes" --randseed=7 --end_fsync=1 \
		--output-format=terse --terse-version=3 > /tmp/fio || fail "fio"
	mark W1
	pattern > /tmp/pattern
	dd if=/tmp/pattern of="$dev" bs=4k count=1 oflag=direct,dsync 2>/dev/null || fail "the pattern"
	sync
	echo "wrote: $(awk -F';' '{ print $47 + 0 }' /tmp/fio) KiB in $writes writes over the first $half MiB of $dev, $(ms W0 W1) ms, then the pattern at 0"
	case "$target" in
	swarmlog)
		line="TTA-STATE target=$target"
		for k in writes write_bytes log_used_bytes log_capacity_bytes cache_blocks cp_count cp_blocks; do
			line="$line $k=$(st $k)"
		done
		echo "$line"
		[ "$(st cp_count)" = 0 ] || [ "$(st cp_count)" = "?" ] || fail "a CP ran: not every write is in the log"
		;;
	writecache)
		# shellcheck disable=SC2046
		set -- $(dmsetup status wc)
		echo "TTA-STATE target=$target errors=$4 blocks=$5 free_blocks=$6 writeback_blocks=$7 used_blocks=$(($5 - $6))"
		[ "$7" = 0 ] || fail "dm-writecache is writing back"
		[ $(($5 - $6)) -ge "$writes" ] || fail "dm-writecache holds $(($5 - $6)) blocks, fewer than $writes"
		;;
	journal)
		echo "TTA-STATE target=$target journal_mode=$(tr ' ' , < /sys/block/md0/md/journal_mode)" \
			"stripe_cache_active=$(cat /sys/block/md0/md/stripe_cache_active)"
		;;
	esac
	echo "BENCH-TTA-WRITTEN"
	sleep 3600
	;;
open)
	pattern > /tmp/pattern
	if [ "$target" = journal ]; then
		mark T0
		# shellcheck disable=SC2086
		assemble_array $members "$cache"
		mark T1
	else
		# shellcheck disable=SC2086
		assemble_array $members
	fi
	stripes
	case "$target" in
	swarmlog)
		swarmlog_insmod
		volume v0
		# With /guest/perf.tgz (scripts/bench-tta --perf), a profile of
		# the whole VM during the enable.
		perf_begin
		mark T0
		echo 1 > "$v/enable" || fail "enable"
		mark T1
		used=""
		if [ -n "$perf" ]; then
			# The log's used bytes for the read floor, before the
			# replay's CP (kicked at the enable) frees them: the
			# report takes seconds. (Without a profile they are read
			# after the timed read, not inside it.)
			used=$(replay_reads)
			perf_end
			echo PERF-BEGIN
			# By thread and function (the replay is a small part of the
			# profiled seconds: most samples are idle), then the
			# enabling shell's functions with what they call.
			perf report -i /tmp/perf.data --stdio --no-children --sort comm,sym -g none --percent-limit 0.05 2>/dev/null | grep -v "^[#]*$" | head -100
			perf report -i /tmp/perf.data --stdio --children --comm sh --sort sym -g none --percent-limit 0.2 2>/dev/null | grep -v "^[#]*$" | head -60
			echo PERF-END
		fi
		# The shell's own read: a command substitution would fork and
		# exec inside the timed span (milliseconds under TCG), which
		# dm-writecache's fixed name does not.
		read -r disk < "$v/disk"
		dev=/dev/$disk
		;;
	writecache)
		table=$(wc_table)
		mark T0
		dmsetup create wc --table "$table" || fail "dm-writecache"
		dmsetup mknodes wc
		mark T1
		dev=/dev/mapper/wc
		;;
	journal) dev=/dev/md0 ;;
	*) fail "target: swarmlog, writecache or journal" ;;
	esac
	n=1
	until dd if="$dev" of=/tmp/read bs=4k count=1 iflag=direct 2>/dev/null && [ "$(wc -c < /tmp/read)" = 4096 ]; do
		n=$((n + 1))
		[ $n -le 100000 ] || fail "$dev never readable"
	done
	mark T2
	if cmp -s /tmp/read /tmp/pattern; then ok=ok; else ok=BAD; fi
	line="TTA target=$target ms=$(ms T0 T2) open_ms=$(ms T0 T1) read_tries=$n pattern=$ok"
	case "$target" in
	swarmlog)
		[ -n "${used:-}" ] || used=$(replay_reads)
		for k in replay_state replay_messages replay_loads replay_duration_us cp_count cp_blocks; do
			line="$line $k=$(st $k)"
		done
		line="$line replay_reads_bytes=$used $(read_floor "$used")"
		;;
	writecache)
		# shellcheck disable=SC2046
		set -- $(dmsetup status wc)
		line="$line errors=$4 blocks=$5 free_blocks=$6 used_blocks=$(($5 - $6))"
		;;
	journal) line="$line stripe_cache_active=$(cat /sys/block/md0/md/stripe_cache_active)" ;;
	esac
	echo "$line"
	[ "$ok" = ok ] || fail "block 0 is not the pattern written last before the cut"
	;;
*)
	fail "usage: bench-tta.sh write|open TARGET DELAY_MS [WRITES]"
	;;
esac
