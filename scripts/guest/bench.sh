# SPDX-License-Identifier: GPL-2.0
# make bench, guest side (see scripts/bench).
#   bench.sh DELAY_MS RUNTIME_S REGION_MB BIG_MB RUNS
# md raid0 over the VM's disks (each behind dm-delay, reads and writes
# delayed by DELAY_MS, when that is not 0). RUNS rounds; in each, every
# target in turn (the order rotated by one each round), each made afresh
# and its tests run (see all_tests), then torn down; then one CP of half a
# log of sequential writes through swarmlog. Targets:
#   md                 /dev/md0 itself
#   swarmlog           insmod swarmlog.ko cache_max_mb=512; a volume
#                      formatted and enabled on pmem0 and md0
#   swarmlog-defaults  insmod swarmlog.ko (the module's defaults)
#   writecache         dm-writecache, pmem mode, 4 KiB blocks, on pmem0
#                      and md0
#   writecache-integ   dm-writecache as above over dm-integrity (journal
#                      mode, internal_hash:crc32c, 4 KiB blocks) over a
#                      dm-linear of md0 from its middle, BIG_MB + 64 MiB
#                      long (formatted and zeroed through once, first)
# Prints
#   FIO RUN TARGET TEST TERSE   fio's terse (version 3) line of that test
#   STATUS RUN TARGET KEY=V...  counters after a target's tests (? for a
#                               status key the module does not have)
#   CP run=RUN blocks=N duration_us=T free_us=T wall_ms=T ...
#   INFO KEY=V...               how the devices were set up
# shellcheck source-path=SCRIPTDIR source=lib.sh
. /guest/lib.sh
set -e
delay=$1 runtime=$2 region=$3 big=$4 runs=$5
v=$c/v0
uptime_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
# st KEY: the volume's status value, ? if it has no such key.
st() {
	x=$(status v0 "$1")
	echo "${x:-?}"
}
isnum() { case "$1" in '' | *[!0-9]*) return 1 ;; esac; }

# all_tests RUN TARGET DEV [BIG]: the tests of the table, in this order,
# one fio run (one process start, not one a test); each test's terse line
# printed. With BIG 0, not those over BIG_MB but 1 MiB sequential writes
# at iodepth 1 (the raw array: it has nothing to write back).
all_tests() {
	r=$1 t=$2 dev=$3
	timed="size=${region}M runtime=$runtime time_based"
	q=$((big / 4))
	# shellcheck disable=SC2086
	{
		printf '[global]\nfilename=%s\ndirect=1\nrandseed=7\ngroup_reporting\n' "$dev"
		# QD1 as below, but only three quarters of the region written
		# (at most RUNTIME_S), first: writes that fit in both caches,
		# neither of which has anything to write back or checksum (less
		# than half the log; under dm-writecache's watermark).
		job qd1_fit size=${region}M io_size=$((region * 3 / 4))M runtime=$runtime rw=randwrite bs=4k \
			ioengine=psync sync=dsync iodepth=1
		job qd1 $timed rw=randwrite bs=4k ioengine=psync sync=dsync iodepth=1
		job qd32x4 $timed rw=randwrite bs=4k ioengine=libaio iodepth=32 numjobs=4 ramp_time=1
		job qd32x4_dsync $timed rw=randwrite bs=4k ioengine=libaio sync=dsync iodepth=32 numjobs=4 \
			ramp_time=1
		job seq128k $timed rw=write bs=128k ioengine=libaio iodepth=8 ramp_time=1
		job seq128k_dsync $timed rw=write bs=128k ioengine=libaio sync=dsync iodepth=8 ramp_time=1
		if [ "${4:-1}" = 1 ]; then
			# Larger than the pmem: BIG_MB written once, 4 KiB at
			# random, 4 jobs of iodepth 32 each on its own quarter (not
			# timed: every block is written, so both caches must write
			# back; at most 30 minutes), then QD1 over it while they
			# still do.
			job big_fill size=${q}M offset_increment=${q}M numjobs=4 rw=randwrite bs=4k \
				ioengine=libaio iodepth=32 runtime=1800
			job big_qd1 size=${big}M runtime=$runtime time_based rw=randwrite bs=4k \
				ioengine=psync sync=dsync iodepth=1
		else
			job seq1m_qd1 $timed rw=write bs=1M ioengine=psync iodepth=1
		fi
	} > /tmp/jobs.fio
	echo "bench: run $r: $t (at $(($(uptime_ms) / 1000)) s)"
	fio_terse "$r" "$t"
}

# swarmlog_volume: a freshly formatted, enabled volume v0; its disk in $dev.
swarmlog_volume() {
	volume v0
	echo 1 > "$v/format" || fail "format"
	echo 1 > "$v/enable" || fail "enable"
	dev=/dev/$(cat "$v/disk")
	[ -b "$dev" ] || fail "no disk: $dev"
	echo "INFO swarmlog $dev data_offset_bytes=$(st data_offset_bytes) data_blocks=$(st data_blocks) log_capacity_bytes=$(st log_capacity_bytes)"
}

# swarmlog_down RUN TARGET: counters, then disable (its final CP), rmmod.
swarmlog_down() {
	line="STATUS $1 $2"
	for k in writes write_bytes cp_count cp_blocks cp_duration_us cp_free_us log_full_waits \
		log_used_bytes log_capacity_bytes cache_blocks; do
		line="$line $k=$(st $k)"
	done
	t0=$(uptime_ms)
	echo 0 > "$v/enable"
	echo "$line final_cp_and_disable_ms=$(($(uptime_ms) - t0))"
	rmdir "$v"
	rmmod swarmlog
}

# wc_down RUN TARGET NAME: its counters, then removed (no writeback: the
# next run makes a new cache).
wc_down() {
	# shellcheck disable=SC2046
	set -- "$1" "$2" "$3" $(dmsetup status "$3")
	echo "STATUS $1 $2 errors=${7:-?} blocks=${8:-?} free_blocks=${9:-?} writeback_blocks=${10:-?} write_blocks=${13:-?} blocked_on_freelist=${18:-?} flushes=${19:-?}"
	dmsetup remove "$3" || fail "removing $3"
}

# The dm-integrity stack: integ_base, a dm-linear of md0 from its middle,
# and integ, dm-integrity over it with integ_sectors data sectors.
integ_start=0
integ_len=$(((big + 64) * 2048))
integ_opts="block_size:4096 internal_hash:crc32c fix_padding"
# The first load: 8 sectors (one 4 KiB block) over a zeroed superblock,
# which dm-integrity then formats.
integ_sectors=8
integ_up() {
	dmsetup create integ_base --table "0 $integ_len linear /dev/md0 $integ_start" ||
		fail "dm-linear for dm-integrity"
	dmsetup mknodes integ_base
	dmsetup create integ --table "0 $integ_sectors integrity /dev/mapper/integ_base 0 4 J 3 $integ_opts" ||
		fail "dm-integrity"
	dmsetup mknodes integ
}
integ_down() {
	dmsetup remove integ || fail "removing dm-integrity"
	dmsetup remove integ_base || fail "removing its dm-linear"
}

# run_target RUN TARGET: TARGET made, tested, torn down.
run_target() {
	r=$1 t=$2
	case "$t" in
	md)
		all_tests "$r" md /dev/md0 0
		;;
	swarmlog)
		insmod /lib/swarmlog/swarmlog.ko cache_max_mb=512 || fail "insmod"
		swarmlog_volume
		all_tests "$r" "$t" "$dev"
		swarmlog_down "$r" "$t"
		;;
	swarmlog-defaults)
		insmod /lib/swarmlog/swarmlog.ko || fail "insmod"
		swarmlog_volume
		all_tests "$r" "$t" "$dev"
		swarmlog_down "$r" "$t"
		;;
	writecache)
		wc_up wc /dev/md0
		all_tests "$r" "$t" "$dev"
		wc_down "$r" "$t" wc
		;;
	writecache-integ)
		integ_up
		wc_up wci /dev/mapper/integ
		all_tests "$r" "$t" "$dev"
		wc_down "$r" "$t" wci
		# shellcheck disable=SC2046
		set -- $(dmsetup status integ)
		echo "STATUS $r integ mismatches=${4:-?} provided_data_sectors=${5:-?}"
		integ_down
		;;
	esac
}

# cp_run RUN: the CP bandwidth. No timed CP, room for the log in the
# cache; sequential 128 KiB writes until the log asks for a CP: its slots
# three quarters in use (whole blocks go there), or without slots its ring
# three quarters full: the CP the writers get, of the log's oldest part
# (room.rs); its cp_blocks and cp_duration_us.
cp_run() {
	r=$1
	insmod /lib/swarmlog/swarmlog.ko cp_interval_ms=3600000 cache_max_mb=512 || fail "insmod"
	swarmlog_volume
	cap=$(st log_capacity_bytes)
	slots=$(st log_slots_total)
	if ! isnum "$cap" || ! isnum "$slots" || ! isnum "$(st cp_count)" || ! isnum "$(st log_used_bytes)"; then
		echo "CP run=$r blocks=? duration_us=? free_us=? wall_ms=? cp_count=? log_capacity_bytes=$cap"
		swarmlog_down "$r" swarmlog-cp
		return
	fi
	if [ "$slots" -gt 0 ]; then
		what="three quarters of the log's $slots slots"
		three=$((slots / 4 * 3 * 4096))
	else
		what="three quarters of the log's ring"
		three=$((cap / 4 * 3))
	fi
	echo "bench: run $r: CP: sequential 128 KiB writes to $dev until $what ($three bytes) are used"
	first=$(((three - (8 << 20)) / 131072))
	fio --name=fill --filename="$dev" --rw=write --bs=128k --direct=1 --ioengine=libaio --iodepth=8 \
		--size=$((first * 128))k --output-format=terse --terse-version=3 > /tmp/fio || fail "fio fill"
	head -c 131072 /dev/urandom > /tmp/block
	k=$first
	while [ "$(st cp_count)" = 0 ] && [ $((k - first)) -lt 2048 ]; do
		dd if=/tmp/block of="$dev" bs=128k seek=$k oflag=direct 2>/dev/null || fail "dd"
		k=$((k + 1))
	done
	t0=$(uptime_ms)
	i=0
	while [ "$(st cp_count)" = 0 ]; do
		i=$((i + 1))
		[ $i -lt 6000 ] || fail "no CP within 10 minutes of $what being used"
		sleep 0.1
	done
	t1=$(uptime_ms)
	# cp_free_us grows after the CP, when its blocks have been freed.
	i=0
	while [ "$(st cp_free_us)" = 0 ] && [ $i -lt 50 ]; do
		i=$((i + 1))
		sleep 0.1
	done
	echo "CP run=$r blocks=$(st cp_blocks) duration_us=$(st cp_duration_us) free_us=$(st cp_free_us) wall_ms=$((t1 - t0)) cp_count=$(st cp_count) log_capacity_bytes=$cap"
	swarmlog_down "$r" swarmlog-cp
}

members=$(delayed_members "$delay" "$delay")
case "$members" in /dev/*) ;; *) fail "members: $members" ;; esac
# shellcheck disable=SC2086
make_array 0 $members
# shellcheck disable=SC2086,SC2116
echo "bench: members $(echo $members); reads and writes delayed by $delay ms"
echo "bench: $(nproc) CPUs, $(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo) MiB, pmem0 $(($(cat /sys/block/pmem0/size) / 2048)) MiB"
md_sectors=$(blockdev --getsz /dev/md0)
integ_start=$((md_sectors / 2 / 2048 * 2048))
if [ $((big + 128)) -gt $((integ_start / 2048)) ] || [ $((integ_start + integ_len)) -gt "$md_sectors" ]; then
	fail "md0 ($((md_sectors / 2048)) MiB) too small for BIG_MB $big (wants twice $((big + 128)) MiB)"
fi
# Every block the tests and the CP touch written once first, so no target
# pays for the host allocating its image files.
pre=$((big + 128))
echo "bench: preconditioning the first $pre MiB of md0"
fio --name=pre --filename=/dev/md0 --rw=write --bs=1M --direct=1 --ioengine=libaio \
	--iodepth=8 --size=${pre}M --output-format=terse --terse-version=3 > /tmp/fio || fail "precondition"
# The pmem too: its first store to a page costs the host a page fault in the
# backing file, which would fall on whichever target comes first.
echo "bench: preconditioning pmem0"
dd if=/dev/zero of=/dev/pmem0 bs=1M count=$(($(cat /sys/block/pmem0/size) / 2048)) oflag=direct 2>/dev/null ||
	fail "precondition pmem0"

# dm-integrity, once: format (a first load of one 4 KiB block over a
# zeroed superblock), read provided_data_sectors, then every data block
# written once with zeros through it (journal mode) so that its tags are
# valid and the host has allocated its part of the images. Only if the
# kernel has dm-integrity (the test kernel has not).
integrity_setup() {
	echo "bench: dm-integrity over md0 sectors $integ_start to $((integ_start + integ_len))"
	dd if=/dev/zero of=/dev/md0 bs=1M seek=$((integ_start / 2048)) count=1 oflag=direct 2>/dev/null ||
		fail "zeroing the dm-integrity superblock"
	t0=$(uptime_ms)
	integ_up
	# shellcheck disable=SC2046
	set -- $(dmsetup status integ)
	integ_sectors=$5
	if ! isnum "$integ_sectors" || [ "$integ_sectors" -lt $((big * 2048)) ]; then
		fail "dm-integrity provides $integ_sectors sectors ($(dmsetup status integ))"
	fi
	integ_down
	integ_up
	t1=$(uptime_ms)
	mib=$((integ_sectors / 2048))
	dd if=/dev/zero of=/dev/mapper/integ bs=1M count=$mib oflag=direct conv=fsync 2>/dev/null ||
		fail "zeroing through dm-integrity"
	dd if=/dev/zero of=/dev/mapper/integ bs=4k seek=$((mib * 256)) count=$((integ_sectors % 2048 / 8)) \
		oflag=direct conv=fsync 2>/dev/null || fail "zeroing the end of dm-integrity"
	t2=$(uptime_ms)
	# shellcheck disable=SC2046
	set -- $(dmsetup status integ)
	echo "INFO integ start_sectors=$integ_start base_sectors=$integ_len provided_data_sectors=$integ_sectors format_ms=$((t1 - t0)) zero_ms=$((t2 - t1)) mismatches=$4 table=$(dmsetup table integ | tr ' ' ,)"
	integ_down
}

targets="md swarmlog swarmlog-defaults writecache writecache-integ"
if dmsetup targets | grep -q '^integrity[[:space:]]'; then
	integrity_setup
else
	echo "INFO integ unavailable: the kernel has no dm-integrity target; writecache-integ not run"
	targets="md swarmlog swarmlog-defaults writecache"
fi
ntargets=$(echo "$targets" | wc -w)
r=1
while [ $r -le "$runs" ]; do
	# The order rotated by one each round.
	# shellcheck disable=SC2086
	set -- $targets
	i=1
	while [ $i -lt $(((r - 1) % ntargets + 1)) ]; do
		first=$1
		shift
		set -- "$@" "$first"
		i=$((i + 1))
	done
	echo "bench: run $r of $runs: $* (at $(($(uptime_ms) / 1000)) s)"
	for t in "$@"; do run_target "$r" "$t"; done
	cp_run "$r"
	r=$((r + 1))
done
echo "bench: done (at $(($(uptime_ms) / 1000)) s)"
