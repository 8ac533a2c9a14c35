# SPDX-License-Identifier: GPL-2.0
# The VM has what the product needs: a DAX-capable pmem, four virtio disks an
# md array can be built on, device-mapper, fio, and the module's configfs
# subsystem with its attributes and input checks.
set -e
fail() { echo "FAIL: $*"; exit 1; }
expect_fail() { if sh -c "$1" 2>/dev/null; then fail "accepted: $1"; fi; }

[ "$(cat /sys/block/pmem0/queue/dax)" = 1 ] || fail "pmem0 is not DAX-capable"
echo "pmem0: $(cat /sys/block/pmem0/size) sectors, dax=1"
for d in vda vdb vdc vdd; do [ -b /dev/$d ] || fail "/dev/$d missing"; done
mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --metadata=1.2 /dev/vda /dev/vdb
mdadm --create /dev/md1 --run --level=0 --raid-devices=2 --metadata=1.2 /dev/vdc /dev/vdd
cat /proc/mdstat
fio --name=smoke --filename=/dev/md1 --rw=randwrite --bs=4k --size=4M --direct=1 \
	--ioengine=libaio --iodepth=4 --verify=crc32c --output-format=terse >/dev/null ||
	fail "fio with verify on md1"
echo "fio write+verify on md1: ok"
dmsetup create lin --table "0 8192 linear /dev/md1 0"
dmsetup remove lin

insmod /lib/swarmlog/swarmlog.ko
c=/sys/kernel/config/swarmlog
[ -d $c ] || fail "no configfs subsystem swarmlog"
mkdir $c/vol0 $c/vol1
ls $c/vol0
echo /dev/pmem0 > $c/vol0/log
echo /dev/md0 > $c/vol0/array
[ "$(cat $c/vol0/log)" = /dev/pmem0 ] || fail "log reads back wrong"
grep -q "state configured" $c/vol0/status || fail "status: $(cat $c/vol0/status)"
grep -q "state unconfigured" $c/vol1/status || fail "vol1 status"
echo 8 > $c/vol0/swarm_width
[ "$(cat $c/vol0/swarm_width)" = 8 ] || fail "swarm_width"
expect_fail "echo 0 > $c/vol0/swarm_width"
expect_fail "echo 5000 > $c/vol0/swarm_width"
expect_fail "echo -1 > $c/vol0/swarm_width"
expect_fail "echo abc > $c/vol0/swarm_width"
expect_fail "printf '\\377\\376' > $c/vol0/swarm_width"
expect_fail "echo relative/path > $c/vol0/log"
[ "$(cat $c/vol0/swarm_width)" = 8 ] || fail "a refused value changed swarm_width"
rmdir $c/vol0 $c/vol1
rmmod swarmlog
echo "configfs subsystem: ok"
