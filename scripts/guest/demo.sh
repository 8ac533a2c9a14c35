# SPDX-License-Identifier: GPL-2.0
# The demo, guest side, narrated for a person.
#   demo.sh write    array, format, enable, write; then wait for the cut
#   demo.sh replay   enable again: replay; verify
. /guest/lib.sh
set -e
say() { printf '\n\033[1m--- %s\033[0m\n' "$*"; }
# No timed CPs in the demo (only on log fill): the last writes stay in the
# log for the replay to show.
insmod /lib/swarmlog/swarmlog.ko cp_interval_ms=3600000
v=$c/demo
if [ "$1" = write ]; then
	say "kernel $(uname -r); persistent memory /dev/pmem0: $(($(cat /sys/block/pmem0/size) / 2048)) MiB, DAX=$(cat /sys/block/pmem0/queue/dax)"
	for d in /sys/block/vd*; do echo "disk $(basename $d): $(($(cat $d/size) / 2048)) MiB"; done
	say "an md raid1 over vda and vdb"
	make_array 1
	say "a swarmlog volume in configfs: log /dev/pmem0, array /dev/md0; format; enable"
	volume demo
	echo 1 > $v/format
	echo 1 > $v/enable
	dev=/dev/$(cat $v/disk)
	echo "exposed as $dev, $(($(cat /sys/block/$(cat $v/disk)/size) / 2048)) MiB"
	say "4 KiB O_DSYNC random writes, 5 s each: through $dev, then on the raw array"
	for t in $dev:0 /dev/md0:128M; do
		fio --name=w --filename=${t%%:*} --offset=${t##*:} --direct=1 --sync=1 --rw=randwrite \
			--bs=4k --size=8M --runtime=5 --time_based --ioengine=psync \
			--output-format=terse --terse-version=3 >/tmp/fio
		awk -F';' -v t="${t%%:*}" '{printf "%-15s %6d IOPS, mean latency %6.0f us\n", t, $49, $81}' /tmp/fio
	done
	say "a CP now (disable and enable again) commits those to the array"
	echo 0 > $v/enable
	echo 1 > $v/enable
	grep -E "^(log_used_bytes|cp_generation) " $v/status
	say "now 2000 random writes of 512 B to 8 KiB; they stay in the pmem log"
	i=0
	while [ $i -lt 2000 ]; do
		n=$((1 + RANDOM % 16)); s=$((65536 + RANDOM * 4))
		dd if=/dev/urandom of=$dev bs=512 seek=$s count=$n oflag=direct 2>/dev/null
		i=$((i + 1))
	done
	echo "checksum of the 64 MiB they landed in: $(dd if=$dev bs=1M skip=32 count=64 iflag=direct 2>/dev/null | md5sum)"
	grep -E "^(log_used_bytes|writes|cache_blocks) " $v/status
	say "cutting the power (QEMU is killed)"
	echo "DEMO-WRITTEN"
	sleep 600
else
	say "booted again; md0 assembled; enable replays the log"
	assemble_array
	volume demo
	echo 64 > $v/swarm_width
	echo 1 > $v/enable
	dmesg | grep -E "swarmlog: demo: (replay|enabled)" | sed 's/^\[[^]]*\] //'
	say "what the replay did (status)"
	grep -E "^replay_" $v/status
	say "verify: the same checksum as before the power cut"
	dev=/dev/$(cat $v/disk)
	echo "checksum now: $(dd if=$dev bs=1M skip=32 count=64 iflag=direct 2>/dev/null | md5sum)"
	echo 0 > $v/enable
	rmdir $v
fi
