# SPDX-License-Identifier: GPL-2.0
# The demo, guest side: narrated for a person.
set -e
say() { printf '\n\033[1m--- %s\033[0m\n' "$*"; }
say "kernel: $(uname -r)"
say "persistent memory (the log device): /dev/pmem0, DAX=$(cat /sys/block/pmem0/queue/dax)"
echo "size: $(($(cat /sys/block/pmem0/size) / 2048)) MiB"
say "disks for the array"
for d in /sys/block/vd*; do echo "$(basename $d): $(($(cat $d/size) / 2048)) MiB"; done
say "an md raid1 over vda and vdb"
mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --metadata=1.2 /dev/vda /dev/vdb 2>&1
cat /proc/mdstat
say "insmod swarmlog.ko"
insmod /lib/swarmlog/swarmlog.ko
dmesg | grep swarmlog | tail -1
say "configfs: /sys/kernel/config/swarmlog/demo"
mkdir /sys/kernel/config/swarmlog/demo
cd /sys/kernel/config/swarmlog/demo
echo /dev/pmem0 > log
echo /dev/md0 > array
for f in *; do printf '%-12s %s\n' "$f" "$(cat $f 2>/dev/null | tr '\n' ' ')"; done
cd /
rmdir /sys/kernel/config/swarmlog/demo
rmmod swarmlog
say "done"
