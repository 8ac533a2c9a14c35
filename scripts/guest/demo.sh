# SPDX-License-Identifier: GPL-2.0
# The demo, guest side: narrated for a person.
. /guest/lib.sh
set -e
say() { printf '\n\033[1m--- %s\033[0m\n' "$*"; }
say "kernel $(uname -r); persistent memory /dev/pmem0: $(($(cat /sys/block/pmem0/size) / 2048)) MiB, DAX=$(cat /sys/block/pmem0/queue/dax)"
for d in /sys/block/vd*; do echo "disk $(basename $d): $(($(cat $d/size) / 2048)) MiB"; done
say "an md raid1 over vda and vdb"
make_array 1
say "insmod swarmlog.ko; a volume in configfs"
load_module
volume demo
v=$c/demo
echo "echo /dev/pmem0 > $v/log; echo /dev/md0 > $v/array"
say "echo 1 > format; echo 1 > enable"
echo 1 > $v/format
echo 1 > $v/enable
dmesg | grep "swarmlog: " | tail -2
dev=/dev/$(cat $v/disk)
say "4 KiB O_DSYNC random writes through $dev (the pmem log acknowledges them)"
fio --name=w --filename=$dev --direct=1 --sync=1 --rw=randwrite --bs=4k --size=8M \
	--runtime=5 --time_based --ioengine=psync --output-format=terse --terse-version=3 >/tmp/fio
awk -F';' '{printf "%d IOPS, mean latency %.0f us\n", $49, $81}' /tmp/fio
say "the same on the raw array, for comparison"
fio --name=w --filename=/dev/md0 --direct=1 --sync=1 --rw=randwrite --bs=4k --size=8M --offset=128M \
	--runtime=5 --time_based --ioengine=psync --output-format=terse --terse-version=3 >/tmp/fio
awk -F';' '{printf "%d IOPS, mean latency %.0f us\n", $49, $81}' /tmp/fio
say "status"
cat $v/status | head -20
say "a known block at volume block 40000, then disable (final consistency point)"
dd if=/dev/urandom of=/tmp/blk bs=4096 count=1 2>/dev/null
dd if=/tmp/blk of=$dev bs=4096 seek=40000 oflag=direct 2>/dev/null
blocks=$(status demo data_blocks)
echo 0 > $v/enable
at=$((1 + 2 * ((blocks + 253) / 254) + 40000))
dd if=/dev/md0 of=/tmp/raw bs=4096 skip=$at count=1 iflag=direct 2>/dev/null
cmp /tmp/blk /tmp/raw && echo "found on the raw array at block $at, checksummed in the table"
rmdir $v
rmmod swarmlog
say "done"
