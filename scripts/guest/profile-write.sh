# SPDX-License-Identifier: GPL-2.0
# Guest side of scripts/profile-write, under a perf profile of the whole
# VM, then the symbols that took most CPU, in the thread that did the work
# and in all:
#   profile-write.sh qd1 RUNTIME
#       make bench's swarmlog QD1 test (4 KiB random O_DSYNC writes, psync,
#       iodepth 1, over the first 256 MiB) for RUNTIME seconds
#   profile-write.sh qd32 RUNTIME
#       make bench's swarmlog QD32x4 test (4 KiB random writes, libaio,
#       iodepth 32, 4 jobs, over the first 256 MiB) for RUNTIME seconds
#   profile-write.sh wc-qd1 RUNTIME
#       the QD1 test on dm-writecache over the same pmem and array
#   profile-write.sh cp
#       a CP of 200 MiB written sequentially (128 KiB writes, no timed CP;
#       less than half the log, which would start a CP): the one that
#       disabling the volume takes
. /guest/lib.sh
set -e
mode=$1 runtime=${2:-10}
tar -xzf /guest/perf.tgz -C /
echo 0 > /proc/sys/kernel/kptr_restrict
echo -1 > /proc/sys/kernel/perf_event_paranoid
insmod /lib/swarmlog/swarmlog.ko cp_interval_ms=$([ "$mode" = cp ] && echo 3600000 || echo 5000) \
	cache_max_mb=512 || fail "insmod"
make_array 0 /dev/vda /dev/vdb
# As make bench does: the blocks the test touches written once first, so
# that the host's allocating its image files is not profiled.
fio --name=pre --filename=/dev/md0 --rw=write --bs=1M --direct=1 --ioengine=libaio \
	--iodepth=8 --size=768M --output-format=terse > /dev/null || fail "preconditioning md0"
if [ "$mode" = wc-qd1 ]; then
	# The same QD1 test on dm-writecache (pmem mode, 4 KiB blocks, as make
	# bench sets it up), to set the two profiles side by side.
	wc_up wc /dev/md0
else
	volume v0
	v=$c/v0
	echo 1 > $v/format || fail "format"
	echo 1 > $v/enable || fail "enable"
	dev=/dev/$(cat $v/disk)
fi
fio --name=pre --filename="$dev" --rw=write --bs=$([ "$mode" = cp ] && echo 128k || echo 1M) \
	--direct=1 --ioengine=libaio --iodepth=8 --size=$([ "$mode" = cp ] && echo 200M || echo 256M) \
	--output-format=terse > /dev/null ||
	fail "writing 256 MiB"
# report COMM: the profile, for the thread COMM and for all.
report() {
	echo PERF-BEGIN
	echo "PERF: $1, time in each function"
	perf report -i /tmp/perf.data --stdio --no-children --comm "$1" --sort sym -g none --percent-limit 0.3 2>/dev/null | grep -v '^[#]*$'
	echo "PERF: $1, time in and under each function"
	perf report -i /tmp/perf.data --stdio --children --comm "$1" --sort sym -g none --percent-limit 1 2>/dev/null | grep -v '^[#]*$'
	echo "PERF: every thread"
	perf report -i /tmp/perf.data --stdio --no-children --sort comm -g none --percent-limit 1 2>/dev/null | grep -v '^[#]*$'
	echo PERF-END
}
# worker: the name of the volume's busiest worker thread in the profile.
worker() {
	perf report -i /tmp/perf.data --stdio --sort comm 2>/dev/null | grep -o 'kworker/[^ ]*+v0' | head -n 1
}
if [ "$mode" = cp ]; then
	cat > /tmp/disable.sh <<EOS
echo 0 > $v/enable
EOS
	cps=$(status v0 cp_count)
	t0=$(awk '{ printf "%d", $1 * 1000 }' /proc/uptime)
	perf record -q -a -g -e cpu-clock -F 2000 -o /tmp/perf.data sh /tmp/disable.sh
	echo "CP 200 MiB: cp_count before $cps, disable took $(($(awk '{ printf "%d", $1 * 1000 }' /proc/uptime) - t0)) ms (with perf)"
	report sh
	report "$(worker)"
	exit 0
fi
if [ "$mode" = qd32 ]; then
	perf record -q -a -g -e cpu-clock -F 2000 -o /tmp/perf.data \
		fio --name=qd32x4 --filename="$dev" --direct=1 --size=256M --runtime="$runtime" --time_based \
		--rw=randwrite --bs=4k --ioengine=libaio --iodepth=32 --numjobs=4 --group_reporting \
		--randseed=7 --output-format=terse --terse-version=3 > /tmp/fio || fail "fio"
	echo "QD32x4 $(awk -F';' '/^3;/ { printf "write IOPS %s, clat mean %s us", $49, $57 }' /tmp/fio)"
	echo "QD32x4 CPs $(status v0 cp_count), blocks $(status v0 cp_blocks), CP time $(status v0 cp_duration_us) us"
	report fio
	# The CP's worker too: it shares the two vCPUs with the writers.
	report "$(worker)"
	exit 0
fi
perf record -q -a -g -e cpu-clock -F 2000 -o /tmp/perf.data \
	fio --name=qd1 --filename="$dev" --direct=1 --size=256M --runtime="$runtime" --time_based \
	--rw=randwrite --bs=4k --ioengine=psync --sync=dsync --iodepth=1 --randseed=7 \
	--output-format=terse --terse-version=3 > /tmp/fio || fail "fio"
# terse v3: fields 49 and 57 are the write IOPS and completion latency mean (us).
echo "QD1 $(awk -F';' '/^3;/ { printf "write IOPS %s, clat mean %s us", $49, $57 }' /tmp/fio)"
report fio
# The CP loop's worker: it checksums logged blocks ahead while fio writes.
[ "$mode" = wc-qd1 ] || report "$(worker)"
