# SPDX-License-Identifier: GPL-2.0
# make bench-blocklog, guest side (see scripts/bench-blocklog).
#   bench-blocklog.sh RUNTIME_S REGION_MB RUNS
# md raid5 over the VM's four disks, and a fifth, the log disk (an SSD with
# power-loss protection: scripts/vm --log-disk SIZE:plp). RUNS rounds; in
# each, every target in turn (the order rotated by one each round), made
# afresh, its tests run, torn down; then RUNS rounds of raid5-journal on
# one array (see the end). Targets:
#   md             the raid5 array itself
#   swarmlog       swarmlog, its log on the log disk, over the array
#   writecache     dm-writecache in SSD mode (writecache s), its cache on
#                  the log disk, over the array
#   raid5-journal  the raid5 array made with the log disk as its write
#                  journal (mdadm --write-journal), in write-back mode
# Tests (fio, 4 KiB random writes over REGION_MB, RUNTIME_S each):
#   qd1     O_DSYNC, psync, one at a time
#   qd32x4  O_DSYNC, libaio, 4 jobs of iodepth 32
# Prints
#   FIO RUN TARGET TEST TERSE   fio's terse (version 3) line of that test
#   INFO KEY=V...               how the devices were set up
# shellcheck source-path=SCRIPTDIR source=lib.sh
. /guest/lib.sh
set -e
runtime=$1 region=$2 runs=$3
log=$(log_device)
case "$log" in /dev/vd*) ;; *) fail "no log disk (scripts/vm --log-disk)" ;; esac
set --
for d in /dev/vd[a-e]; do [ "$d" = "$log" ] || set -- "$@" "$d"; done
members="$*"
[ $# = 4 ] || fail "raid5 wants 4 disks besides the log disk, not: $members"

# array JOURNAL: md0, raid5 over the members, with the log disk as its
# write journal in write-back mode if JOURNAL is 1. No initial resync.
array() {
	mdadm --stop /dev/md0 >/dev/null 2>&1 || true
	# shellcheck disable=SC2086
	mdadm --zero-superblock $members "$log" >/dev/null 2>&1 || true
	if [ "$1" = 1 ]; then
		# shellcheck disable=SC2086
		JOURNAL=$log make_array 5 $members >/dev/null
		echo write-back > /sys/block/md0/md/journal_mode || fail "journal_mode write-back"
	else
		# shellcheck disable=SC2086
		make_array 5 $members >/dev/null
	fi
	# Room for the stripe cache a journal in write-back mode works in.
	echo 4096 > /sys/block/md0/md/stripe_cache_size
}

# tests RUN TARGET DEV: the tests, one fio run; each test's terse line.
tests() {
	r=$1 t=$2 dev=$3
	timed="size=${region}M runtime=$runtime time_based"
	# shellcheck disable=SC2086
	{
		printf '[global]\nfilename=%s\ndirect=1\nrandseed=7\ngroup_reporting\n' "$dev"
		job qd1 $timed rw=randwrite bs=4k ioengine=psync sync=dsync iodepth=1
		job qd32x4 $timed rw=randwrite bs=4k ioengine=libaio sync=dsync iodepth=32 numjobs=4 \
			ramp_time=1
	} > /tmp/jobs.fio
	echo "bench: run $r: $t"
	fio_terse "$r" "$t"
}

# zero_log: the first 8 MiB of the log disk zeroed (no old cache or log
# found there by the next target).
zero_log() {
	dd if=/dev/zero of="$log" bs=1M count=8 oflag=direct 2>/dev/null || fail "zeroing $log"
}

run_target() {
	r=$1 t=$2
	case "$t" in
	md)
		array 0
		tests "$r" md /dev/md0
		;;
	swarmlog)
		array 0
		zero_log
		insmod /lib/swarmlog/swarmlog.ko cache_max_mb=512 || fail "insmod"
		volume v0
		echo 1 > $c/v0/format || fail "format"
		echo 1 > $c/v0/enable || fail "enable"
		[ "$(status v0 log_medium)" = block ] || fail "the log is not on the block device"
		tests "$r" swarmlog "/dev/$(cat $c/v0/disk)"
		echo "INFO swarmlog run=$r log_in_flight_peak=$(status v0 log_in_flight_peak) cp_count=$(status v0 cp_count)"
		echo 0 > $c/v0/enable
		rmdir $c/v0
		rmmod swarmlog
		;;
	writecache)
		array 0
		zero_log
		dmsetup create wcs --table "0 $(blockdev --getsz /dev/md0) writecache s /dev/md0 $log 4096 0" ||
			fail "dm-writecache s"
		dmsetup mknodes wcs
		tests "$r" writecache /dev/mapper/wcs
		dmsetup remove wcs || fail "removing dm-writecache"
		;;
	esac
	mdadm --stop /dev/md0 >/dev/null 2>&1 || fail "mdadm --stop"
}

echo "INFO members=$(echo $members | tr ' ' ,) log=$log log_write_cache=$(cat /sys/block/${log#/dev/}/queue/write_cache) log_mib=$(($(cat /sys/block/${log#/dev/}/size) / 2048))"
targets="md swarmlog writecache"
r=1
while [ $r -le "$runs" ]; do
	# shellcheck disable=SC2086
	set -- $targets
	i=1
	while [ $i -lt $(((r - 1) % 3 + 1)) ]; do
		first=$1
		shift
		set -- "$@" "$first"
		i=$((i + 1))
	done
	echo "bench: run $r of $runs: $*"
	for t in "$@"; do run_target "$r" "$t"; done
	r=$((r + 1))
done
# md's write journal last, its RUNS rounds on one array that is never
# stopped: stopping a raid5 array whose journal is in write-back mode hit
# a BUG in md on the 7.3 kernel (drivers/md/raid5-cache.c:453,
# r5c_make_stripe_write_out, from raid5_quiesce in do_md_stop).
array 1
r=1
while [ $r -le "$runs" ]; do
	tests "$r" raid5-journal /dev/md0
	r=$((r + 1))
done
echo "bench: done"
