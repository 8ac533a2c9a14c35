# SPDX-License-Identifier: GPL-2.0
# The log filling up under sustained writes while the array is slow
# (scenarios/log-full-slow-array): a 32 MiB log, raid0 members behind
# dm-delay (5 ms reads, 20 ms writes), 4 fio writers of 4 to 64 KiB random
# writes of MIB MiB each (the argument; 48 by default: 192 MiB in all, six
# times the log; the short profile 24) with crc32c verification headers;
# writers must wait for CPs (log_full_waits), nothing may fail,
# and everything reads back right, then again after disable and enable.
. /guest/lib.sh
set -e
mib=${1:-48}
load_module
members=$(delayed_members 5 20)
# shellcheck disable=SC2086
make_array 0 $members
volume l
echo 1 > $c/l/format
echo 1 > $c/l/enable
dev=/dev/$(cat $c/l/disk)
echo "log: $(status l log_capacity_bytes) bytes; array members: 5 ms reads, 20 ms writes"
[ $((4 * mib * 1048576)) -ge $((2 * $(status l log_capacity_bytes))) ] ||
	fail "4 x $mib MiB of writes would not fill the log twice"
fio --name=fill --filename=$dev --rw=randwrite --bsrange=4k-64k --direct=1 --ioengine=libaio \
	--iodepth=8 --numjobs=4 --size=${mib}M --offset_increment=${mib}M --verify=crc32c --verify_fatal=1 \
	--do_verify=0 --randseed=3 --group_reporting --output-format=terse --terse-version=3 > /tmp/w ||
	fail "fio writes"
echo "wrote: $(awk -F';' '{ print $47 }' /tmp/w) KiB"
grep -E "^(log_full_waits|cp_count|cp_errors|io_errors|writes) " $c/l/status | tr '\n' ' '
echo
[ "$(status l log_full_waits)" -gt 0 ] || fail "no writer ever waited: the log did not fill"
# A write waits once, however often it is woken. (Writers once woke each
# other without end while they waited: 1949477 waits for 8082 writes.)
[ "$(status l log_full_waits)" -le "$(status l writes)" ] ||
	fail "log_full_waits $(status l log_full_waits) > writes $(status l writes): waiting writers spin"
[ "$(status l cp_errors)" = 0 ] && [ "$(status l io_errors)" = 0 ] || fail "errors"
verify() {
	fio --name=fill --filename=$dev --rw=randwrite --bsrange=4k-64k --direct=1 --ioengine=libaio \
		--iodepth=8 --numjobs=4 --size=${mib}M --offset_increment=${mib}M --verify=crc32c --verify_fatal=1 \
		--verify_only --randseed=3 --output-format=terse --terse-version=3 > /tmp/v ||
		fail "fio verify $1"
	echo "verified $1"
}
verify "through the cache"
echo 0 > $c/l/enable
echo 1 > $c/l/enable
dev=/dev/$(cat $c/l/disk)
verify "from the array after disable and enable"
echo 0 > $c/l/enable
