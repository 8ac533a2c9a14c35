# SPDX-License-Identifier: GPL-2.0
# The log on a block device, guest side (scenarios/block-log; the VM has a
# log disk, scripts/vm --log-disk): format and enable a volume whose log is
# the log disk, then
#  - status says which medium and unit the log uses;
#  - random 4 KiB writes at queue depth 32 (fio, libaio, O_DIRECT) over
#    the first MIB MiB (the argument, 24 by default), three passes, then
#    writes of part of a block and discards among them, more than the log
#    holds (it wraps several times under CPs), every byte verified;
#  - the records of whole-block writes were in flight several at once
#    (log_in_flight_peak);
#  - after disable and enable (a replay of nothing: disable's CP) and after
#    a module reload, every byte verified again.
. /guest/lib.sh
set -e
log=$(log_device)
case "$log" in
/dev/vd*) ;;
*) fail "no log disk (scripts/vm --log-disk)" ;;
esac
mib=${1:-24}
load_module
make_array 1
volume v0
echo 1 > $c/v0/format || fail "format on the block log"
echo 1 > $c/v0/enable || fail "enable on the block log"
dev=/dev/$(cat $c/v0/disk)
[ "$(status v0 log_medium)" = block ] || fail "status log_medium: '$(status v0 log_medium)'"
unit=$(status v0 log_unit_bytes)
[ "$unit" = "$(cat /sys/block/${log#/dev/}/queue/logical_block_size)" ] ||
	fail "log_unit_bytes $unit is not the disk's logical block size"
echo "log on $log: medium block, unit $unit bytes, $(($(status v0 log_capacity_bytes) / 1048576)) MiB of records"

# fio JOB RW EXTRA...: 4 KiB at queue depth 32 over the first $mib MiB, a
# crc32c verify header in every block.
job() {
	name=$1 rw=$2
	shift 2
	fio --name="$name" --filename="$dev" --rw="$rw" --bs=4k --iodepth=32 --ioengine=libaio \
		--direct=1 --size=${mib}M --verify=crc32c --randseed=7 --output-format=terse \
		--minimal "$@" > /tmp/fio.out 2>&1 || { cat /tmp/fio.out; fail "fio $name"; }
}
# Three passes of random writes (24 MiB: 18432 records, 75 MiB through a
# 64 MiB log; 10 MiB: 31 MiB through a 24 MiB log).
cap=$(status v0 log_capacity_bytes)
[ $((3 * mib * 1048576)) -gt "$cap" ] || fail "3 x $mib MiB of writes would not wrap a log of $cap bytes"
for pass in 1 2 3; do job "write$pass" randwrite --do_verify=0; done
job verify randwrite --verify_only
echo "fio: 3 x $mib MiB of random 4 KiB writes at QD32, verified"
peak=$(status v0 log_in_flight_peak)
[ "$peak" -gt 1 ] || fail "log_in_flight_peak $peak: the records were written one at a time"
echo "records in flight at once: up to $peak"

# Writes of part of a block and discards (they wait for the records in
# flight and go alone), past the fio region.
base=$((mib * 2048))
i=0
while [ $i -lt 64 ]; do
	awk -v t="part-$i" 'BEGIN { printf "%-511s\n", t }' > /tmp/s
	dd if=/tmp/s of=$dev bs=512 seek=$((base + i * 9 + 3)) count=1 oflag=direct 2>/dev/null ||
		fail "partial write $i"
	i=$((i + 1))
done
blkdiscard -o $(((base + 8 * 9) * 512)) -l 4096 $dev 2>/dev/null ||
	dd if=/dev/zero of=$dev bs=4096 seek=$(((base + 8 * 9) / 8)) count=1 oflag=direct 2>/dev/null
check_parts() {
	i=0
	while [ $i -lt 64 ]; do
		s=$((base + i * 9 + 3))
		got=$(dd if=$dev bs=512 skip=$s count=1 iflag=direct 2>/dev/null | tr -d ' \n\000')
		want=part-$i
		# The 4 KiB discarded at sector base+72 held part 8 (sector 75).
		[ $s -ge $((base + 72)) ] && [ $s -lt $((base + 80)) ] && want=""
		[ "$got" = "$want" ] || fail "$1: sector $s holds '$got', expected '$want'"
		i=$((i + 1))
	done
}
check_parts "partial writes"
echo "64 partial writes and a discard among them: read back"

echo 0 > $c/v0/enable
echo 1 > $c/v0/enable || fail "enable again"
job verify2 randwrite --verify_only
check_parts "after disable and enable"
echo 0 > $c/v0/enable
rmdir $c/v0
rmmod swarmlog
load_module
volume v0
echo 1 > $c/v0/enable || fail "enable after reload"
dev=/dev/$(cat $c/v0/disk)
[ "$(status v0 log_medium)" = block ] || fail "log_medium after reload"
job verify3 randwrite --verify_only
check_parts "after a module reload"
echo 0 > $c/v0/enable
echo "block log: every byte verified after disable, enable and a module reload"
