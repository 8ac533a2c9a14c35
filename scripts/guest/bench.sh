# SPDX-License-Identifier: GPL-2.0
# make bench, guest side (see scripts/bench).
#   bench.sh DELAY_MS RUNTIME_S REGION_MB
# md raid0 over the VM's disks (each behind dm-delay, reads and writes
# delayed by DELAY_MS, when that is not 0); the same three fio tests, each
# RUNTIME_S seconds over the first REGION_MB MiB, on the raw array, on
# swarmlog over it and on dm-writecache (pmem mode) over it, one after the
# other; then one CP of half a log of sequential writes. Prints
#   FIO TARGET TEST TERSE    fio's terse (version 3) line of that test (on
#                            the raw array also seq1m_qd1: 1 MiB sequential
#                            writes at iodepth 1)
#   STATUS TARGET KEY=V...   counters after a target's tests
#   CP blocks=N duration_us=T wall_ms=T log_capacity_bytes=N
. /guest/lib.sh
set -e
delay=$1 runtime=$2 region=$3
v=$c/v0
uptime_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }

# fio_run TARGET TEST DEV FIO-ARGS...: one test, its terse line printed.
fio_run() {
	t=$1 n=$2 dev=$3
	shift 3
	echo "bench: $t: $n"
	fio --name="$n" --filename="$dev" --direct=1 --size="${region}M" --runtime="$runtime" \
		--time_based --randseed=7 --output-format=terse --terse-version=3 "$@" > /tmp/fio ||
		fail "fio $n on $t"
	echo "FIO $t $n $(grep '^3;' /tmp/fio | tail -n 1)"
}

# all_tests TARGET DEV: the three tests of the table.
all_tests() {
	fio_run "$1" qd1 "$2" --rw=randwrite --bs=4k --ioengine=psync --sync=dsync --iodepth=1
	fio_run "$1" qd32x4 "$2" --rw=randwrite --bs=4k --ioengine=libaio --iodepth=32 \
		--numjobs=4 --group_reporting --ramp_time=2
	fio_run "$1" seq128k "$2" --rw=write --bs=128k --ioengine=libaio --iodepth=8 --ramp_time=2
}

# counters TARGET KEY...: a STATUS line of the volume's counters.
counters() {
	t=$1
	shift
	line="STATUS $t"
	for k in "$@"; do line="$line $k=$(status v0 "$k")"; done
	echo "$line"
}

# swarmlog_volume: a freshly formatted, enabled volume v0; its disk.
swarmlog_volume() {
	volume v0
	echo 1 > $v/format || fail "format"
	echo 1 > $v/enable || fail "enable"
	echo "/dev/$(cat $v/disk)"
}

members=$(delayed_members "$delay" "$delay")
[ -n "$members" ] && [ -z "${members##/dev/*}" ] || fail "members: $members"
# shellcheck disable=SC2086
make_array 0 $members
echo "bench: members $(echo $members); reads and writes delayed by $delay ms"
echo "bench: $(nproc) CPUs, $(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo) MiB, pmem0 $(($(cat /sys/block/pmem0/size) / 2048)) MiB"
# Every block the tests and the CP touch written once first, so no target
# pays for the host allocating its image files.
echo "bench: preconditioning the first 768 MiB of md0"
fio --name=pre --filename=/dev/md0 --rw=write --bs=1M --direct=1 --ioengine=libaio \
	--iodepth=8 --size=768M --output-format=terse --terse-version=3 > /tmp/fio || fail "precondition"
# The pmem too: its first store to a page costs the host a page fault in the
# backing file, which would fall on whichever target comes first.
echo "bench: preconditioning pmem0"
dd if=/dev/zero of=/dev/pmem0 bs=1M count=$(($(cat /sys/block/pmem0/size) / 2048)) oflag=direct 2>/dev/null ||
	fail "precondition pmem0"

# 1. The raw array; also 1 MiB sequential writes one at a time, as a CP
# writes its runs.
all_tests md /dev/md0
fio_run md seq1m_qd1 /dev/md0 --rw=write --bs=1M --ioengine=psync --iodepth=1

# 2. swarmlog: default cp_interval_ms; a cache as large as half the log (a
# CP runs at half), so the log's room, as for dm-writecache, is the limit.
insmod /lib/swarmlog/swarmlog.ko cache_max_mb=512 || fail "insmod"
dev=$(swarmlog_volume)
echo "bench: swarmlog: $dev, log_capacity_bytes $(status v0 log_capacity_bytes), data_blocks $(status v0 data_blocks)"
all_tests swarmlog "$dev"
counters swarmlog writes cp_count cp_blocks cp_duration_us cp_free_us log_full_waits log_used_bytes cache_blocks
t0=$(uptime_ms)
echo 0 > $v/enable
echo "STATUS swarmlog-disable final_cp_and_disable_ms=$(($(uptime_ms) - t0))"
rmdir $v

# 3. dm-writecache in pmem mode, 4 KiB blocks, on the same pmem and array.
# It takes an all-zero superblock for a new cache; swarmlog's log is there.
dd if=/dev/zero of=/dev/pmem0 bs=1M count=4 oflag=direct 2>/dev/null || fail "wiping pmem0"
dmsetup create wc --table "0 $(cat /sys/block/md0/size) writecache p /dev/md0 /dev/pmem0 4096 0" ||
	fail "dm-writecache"
dmsetup mknodes wc
all_tests writecache /dev/mapper/wc
# shellcheck disable=SC2046
set -- $(dmsetup status wc)
echo "STATUS writecache errors=$4 blocks=$5 free_blocks=$6 writeback_blocks=$7"
dmsetup remove wc || fail "removing dm-writecache"

# 4. The CP bandwidth: no timed CP, room for half a log in the cache;
# sequential 128 KiB writes until the log is half full, which starts a CP of
# all of them; its cp_duration_us.
rmmod swarmlog
insmod /lib/swarmlog/swarmlog.ko cp_interval_ms=3600000 cache_max_mb=512 || fail "insmod"
dev=$(swarmlog_volume)
half=$(($(status v0 log_capacity_bytes) / 2))
echo "bench: CP: sequential 128 KiB writes to $dev until half of the log ($half bytes) is used"
first=$(((half - (8 << 20)) / 131072))
fio --name=fill --filename="$dev" --rw=write --bs=128k --direct=1 --ioengine=libaio --iodepth=8 \
	--size=$((first * 128))k --output-format=terse --terse-version=3 > /tmp/fio || fail "fio fill"
head -c 131072 /dev/urandom > /tmp/block
k=$first
while [ "$(status v0 cp_count)" = 0 ] && [ "$(status v0 log_used_bytes)" -le "$half" ]; do
	dd if=/tmp/block of="$dev" bs=128k seek=$k oflag=direct 2>/dev/null || fail "dd"
	k=$((k + 1))
done
t0=$(uptime_ms)
i=0
while [ "$(status v0 cp_count)" = 0 ]; do
	i=$((i + 1))
	[ $i -lt 6000 ] || fail "no CP within 10 minutes of the log being half full"
	sleep 0.1
done
t1=$(uptime_ms)
counters swarmlog-cp writes write_bytes cp_count cp_blocks cp_duration_us cp_free_us log_full_waits
[ "$(status v0 cp_count)" = 1 ] || fail "more than one CP"
echo "CP blocks=$(status v0 cp_blocks) duration_us=$(status v0 cp_duration_us) free_us=$(status v0 cp_free_us) wall_ms=$((t1 - t0)) log_capacity_bytes=$(status v0 log_capacity_bytes)"
echo 0 > $v/enable
rmdir $v
rmmod swarmlog
echo "bench: done"
