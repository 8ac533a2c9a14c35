# SPDX-License-Identifier: GPL-2.0
# The samples (samples/*) run as an administrator would run them, guest
# side (scenarios/samples); the samples' files are in /guest, swarmctl
# on PATH (the VM image's).
#   samples.sh write   raid5-volume.sh: md raid5 over vda..vdd and volume
#                      v0 with its log on pmem0 (CONF: its swarmlog.conf
#                      line); nvme-export.sh exports it on the loopback
#                      and connects to it; ext4 on the NVMe namespace;
#                      fsync-workload.sh run for 10 s and check; then
#                      SAMPLES-RUNNING and a run that the power cut ends,
#                      its COMMITTED lines on the record port
#   samples.sh replay N   md assembled; samples/boot installed as a
#                      distribution would (/etc/swarmlog.conf, the config
#                      line of the first boot; the udev rule; swarmctl as
#                      /usr/sbin/swarmctl; the module where modprobe finds
#                      it), systemd-udevd running; the service unit's own
#                      ExecStartPre and ExecStart lines run as written
#                      (modprobe, swarmctl assemble --scan: the replay);
#                      the udev rule's /dev/disk/by-swarmlog/v0 names the
#                      volume's disk; exported by that name and connected
#                      again; the file system mounted (its journal
#                      recovered), fsync-workload.sh check up to commit
#                      N; e2fsck finds it clean; disconnect, unexport,
#                      the unit's ExecStop (swarmctl disable --all), and
#                      the link goes with the disk
. /guest/lib.sh
set -e
command -v swarmctl >/dev/null || fail "no swarmctl on PATH"
NQN=nqn.2026-12.org.swarmlog:samples
ip link set lo up
mkdir -p /mnt

# attach DEV: nvme-export.sh export and connect; the namespace in $ndev.
attach() {
	sh /guest/nvme-export.sh export "$1" $NQN 127.0.0.1 || fail "nvme-export.sh export"
	ndev=$(sh /guest/nvme-export.sh connect $NQN 127.0.0.1) || fail "nvme-export.sh connect"
	echo "connected: $ndev"
	q=/sys/block/${ndev#/dev/}/queue
	[ "$(cat $q/fua)" = 1 ] && [ "$(cat $q/write_cache)" = "write back" ] ||
		fail "FUA or the write-back cache does not reach the initiator"
}

# install_boot_sample: samples/boot where a distribution puts it, and
# systemd-udevd running (the initramfs has no systemd: the unit's
# commands are run by unit_run).
install_boot_sample() {
	mkdir -p /usr/sbin /usr/lib/udev/rules.d /run/udev "/lib/modules/$(uname -r)/extra"
	ln -sf /usr/local/bin/swarmctl /usr/sbin/swarmctl
	cp /guest/60-swarmlog.rules /usr/lib/udev/rules.d/
	cp /guest/swarmlog.conf /etc/swarmlog.conf
	cp /lib/swarmlog/swarmlog.ko "/lib/modules/$(uname -r)/extra/"
	depmod || fail "depmod"
	[ -e /sbin/modprobe ] || ln -s /bin/busybox /sbin/modprobe
	/usr/lib/systemd/systemd-udevd --daemon || fail "systemd-udevd"
	udevadm settle -t 60 || fail "udevadm settle"
}

# unit_run KEY: the command lines KEY= of swarmlog-assemble.service, as
# written, one after the other (each must succeed, as systemd requires).
unit_run() {
	cmds=$(sed -n "s/^$1=//p" /guest/swarmlog-assemble.service)
	[ -n "$cmds" ] || fail "no $1= line in swarmlog-assemble.service"
	echo "$cmds" | while read -r cmd; do
		echo "$1: $cmd"
		# shellcheck disable=SC2086
		$cmd || exit 1
	done || fail "the unit's $1 failed"
}

case "$1" in
write)
	insmod /lib/swarmlog/swarmlog.ko || fail "insmod"
	ASSUME_CLEAN=1 sh /guest/raid5-volume.sh v0 /dev/pmem0 /dev/vda /dev/vdb /dev/vdc /dev/vdd \
		> /tmp/out 2>&1 || { cat /tmp/out; fail "raid5-volume.sh"; }
	cat /tmp/out
	grep -q "^ARRAY /dev/md0 " /tmp/out || fail "raid5-volume.sh printed no ARRAY line"
	echo "CONF $(grep "^VOLUME v0 " /tmp/out)"
	attach "/dev/$(cat $c/v0/disk)"
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
	install_boot_sample
	unit_run ExecStartPre
	unit_run ExecStart
	[ "$(status v0 replay_messages)" -gt 0 ] || fail "nothing replayed"
	echo "replayed $(status v0 replay_messages) records"
	udevadm settle -t 60 || fail "udevadm settle"
	link=/dev/disk/by-swarmlog/v0
	[ "$(readlink -f $link)" = "/dev/$(cat $c/v0/disk)" ] ||
		fail "$link is '$(readlink -f $link)', not /dev/$(cat $c/v0/disk)"
	echo "udev: $link -> $(readlink $link)"
	attach $link
	mount -t ext4 "$ndev" /mnt || fail "mount after the replay"
	sh /guest/fsync-workload.sh check /mnt "$2" || fail "committed transactions lost"
	umount /mnt
	/sbin/e2fsck -fn "$ndev" > /tmp/fsck 2>&1 || { cat /tmp/fsck; fail "e2fsck after the replay"; }
	tail -1 /tmp/fsck
	sh /guest/nvme-export.sh disconnect $NQN > /dev/null || fail "disconnect"
	sh /guest/nvme-export.sh unexport $NQN || fail "unexport"
	unit_run ExecStop
	[ "$(cat $c/v0/enable)" = 0 ] || fail "v0 still enabled after the unit's ExecStop"
	udevadm settle -t 60 || fail "udevadm settle"
	[ ! -e $link ] || fail "$link left after the volume was disabled"
	echo "ExecStop disabled v0; $link went with its disk"
	echo "SAMPLES-OK"
	;;
*)
	fail "samples.sh write|replay N"
	;;
esac
