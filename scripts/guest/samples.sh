# SPDX-License-Identifier: GPL-2.0
# The samples (samples/*) run as an administrator would run them, guest
# side (scenarios/samples); swarmctl and the samples' files are in /guest.
#   samples.sh write   raid5-volume.sh: md raid5 over vda..vdd and volume
#                      v0 with its log on pmem0 (CONF: its swarmlog.conf
#                      line); nvme-export.sh exports it on the loopback
#                      and connects to it; ext4 on the NVMe namespace;
#                      fsync-workload.sh run for 10 s and check; then
#                      SAMPLES-RUNNING and a run that the power cut ends,
#                      its COMMITTED lines on the record port
#   samples.sh replay N   md assembled, v0 by swarmctl assemble --scan
#                      (the replay), exported and connected again; the
#                      file system mounted (its journal recovered),
#                      fsync-workload.sh check up to commit N; e2fsck
#                      finds it clean; disconnect, unexport, disable
. /guest/lib.sh
set -e
export SWARMCTL=/guest/swarmctl
NQN=nqn.2026-12.org.swarmlog:samples
insmod /lib/swarmlog/swarmlog.ko || fail "insmod"
ip link set lo up
mkdir -p /mnt

# attach: nvme-export.sh export and connect; the namespace in $ndev.
attach() {
	sh /guest/nvme-export.sh export "/dev/$(cat $c/v0/disk)" $NQN 127.0.0.1 || fail "nvme-export.sh export"
	ndev=$(sh /guest/nvme-export.sh connect $NQN 127.0.0.1) || fail "nvme-export.sh connect"
	echo "connected: $ndev"
	q=/sys/block/${ndev#/dev/}/queue
	[ "$(cat $q/fua)" = 1 ] && [ "$(cat $q/write_cache)" = "write back" ] ||
		fail "FUA or the write-back cache does not reach the initiator"
}

case "$1" in
write)
	ASSUME_CLEAN=1 sh /guest/raid5-volume.sh v0 /dev/pmem0 /dev/vda /dev/vdb /dev/vdc /dev/vdd \
		> /tmp/out 2>&1 || { cat /tmp/out; fail "raid5-volume.sh"; }
	cat /tmp/out
	grep -q "^ARRAY /dev/md0 " /tmp/out || fail "raid5-volume.sh printed no ARRAY line"
	echo "CONF $(grep "^VOLUME v0 " /tmp/out)"
	attach
	/sbin/mke2fs -t ext4 -q -E nodiscard "$ndev" || fail "mke2fs"
	mount -t ext4 "$ndev" /mnt || fail "mount"
	sh /guest/fsync-workload.sh run /mnt 10 > /tmp/run || { cat /tmp/run; fail "fsync-workload.sh run"; }
	grep -v '^COMMITTED' /tmp/run
	n=$(grep -c '^COMMITTED' /tmp/run) || fail "no commit reported"
	sh /guest/fsync-workload.sh check /mnt "$n" || fail "check"
	echo "SAMPLES-RUNNING"
	COMMITS_TO=/dev/ttyS1 sh /guest/fsync-workload.sh run /mnt 600 || fail "fsync-workload.sh run"
	fail "the workload ended before the power cut"
	;;
replay)
	assemble_array
	/guest/swarmctl --config /guest/swarmlog.conf assemble --scan || fail "swarmctl assemble --scan"
	[ "$(status v0 replay_messages)" -gt 0 ] || fail "nothing replayed"
	echo "replayed $(status v0 replay_messages) records"
	attach
	mount -t ext4 "$ndev" /mnt || fail "mount after the replay"
	sh /guest/fsync-workload.sh check /mnt "$2" || fail "committed transactions lost"
	umount /mnt
	/sbin/e2fsck -fn "$ndev" > /tmp/fsck 2>&1 || { cat /tmp/fsck; fail "e2fsck after the replay"; }
	tail -1 /tmp/fsck
	sh /guest/nvme-export.sh disconnect $NQN > /dev/null || fail "disconnect"
	sh /guest/nvme-export.sh unexport $NQN || fail "unexport"
	/guest/swarmctl disable v0 || fail "disable"
	echo "SAMPLES-OK"
	;;
*)
	fail "samples.sh write|replay N"
	;;
esac
