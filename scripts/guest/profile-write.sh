# SPDX-License-Identifier: GPL-2.0
# Guest side of scripts/profile-write: make bench's swarmlog QD1 test (4 KiB
# random O_DSYNC writes, psync, iodepth 1, over the first 256 MiB) for
# RUNTIME seconds under a perf profile of the whole VM, then the symbols
# that took most CPU, in the writer (fio) and in all.
#   profile-write.sh RUNTIME
. /guest/lib.sh
set -e
runtime=$1
tar -xzf /guest/perf.tgz -C /
echo 0 > /proc/sys/kernel/kptr_restrict
echo -1 > /proc/sys/kernel/perf_event_paranoid
insmod /lib/swarmlog/swarmlog.ko cache_max_mb=512 || fail "insmod"
make_array 0 /dev/vda /dev/vdb
volume v0
v=$c/v0
echo 1 > $v/format || fail "format"
echo 1 > $v/enable || fail "enable"
dev=/dev/$(cat $v/disk)
fio --name=pre --filename="$dev" --rw=write --bs=1M --direct=1 --size=256M \
	--output-format=terse > /dev/null || fail "precondition"
perf record -q -a -g -e cpu-clock -F 2000 -o /tmp/perf.data \
	fio --name=qd1 --filename="$dev" --direct=1 --size=256M --runtime="$runtime" --time_based \
	--rw=randwrite --bs=4k --ioengine=psync --sync=dsync --iodepth=1 --randseed=7 \
	--output-format=terse --terse-version=3 > /tmp/fio || fail "fio"
# terse v3: fields 49 and 57 are the write IOPS and completion latency mean (us).
echo "QD1 $(awk -F';' '/^3;/ { printf "write IOPS %s, clat mean %s us", $49, $57 }' /tmp/fio)"
echo PERF-BEGIN
echo "PERF: the writer (fio), time in each function"
perf report -i /tmp/perf.data --stdio --no-children --comm fio --sort sym -g none --percent-limit 0.3 2>/dev/null | grep -v '^[#]*$'
echo "PERF: the writer (fio), time in and under each function"
perf report -i /tmp/perf.data --stdio --children --comm fio --sort sym -g none --percent-limit 1 2>/dev/null | grep -v '^[#]*$'
echo "PERF: every thread"
perf report -i /tmp/perf.data --stdio --no-children --sort comm -g none --percent-limit 1 2>/dev/null | grep -v '^[#]*$'
echo PERF-END
