# SPDX-License-Identifier: GPL-2.0
# What DRBD protocol C costs a write (scripts/bench-ha), a node's side.
# Node a (machine 1 of the link) and node b (machine 2) each split their
# log SSD (scripts/vm --log-disk, no volatile cache) in two halves with
# dm-linear: ssd0 under DRBD resource r0 (drbd_conf), ssd1 a plain log
# disk. Node b is the secondary and waits for its power to be cut when
# node a is done. Node a, with md raid1 over its two disks, runs ROUNDS
# rounds of the three targets, their order rotated each round:
#   local       swarmlog's log on ssd1: the single node's block log (DRBD
#               connected and idle meanwhile, as for drbd-c);
#   drbd-c      its log on /dev/drbd0, connected, protocol C (a write
#               completes once both nodes have it);
#   standalone  its log on /dev/drbd0 disconnected (DRBD's own layer
#               without the network; reconnected and resynchronised
#               after).
# Each: the volume formatted anew, then fio 4 KiB O_DSYNC random writes at
# QD1 for SECONDS over 32 MiB (lib.sh fio_terse lines).
#
#   bench-ha.sh NODE ROUNDS SECONDS
. /guest/lib.sh
node=$1 rounds=$2 runtime=$3
hostname "$node"
ssd=$(log_device)
half=$(($(blockdev --getsz "$ssd") / 2))
dmsetup create ssd0 --table "0 $half linear $ssd 0" || fail "dm-linear ssd0"
dmsetup create ssd1 --table "0 $half linear $ssd $half" || fail "dm-linear ssd1"
dmsetup mknodes
drbd_conf /dev/mapper/ssd0
drbdadm -- --force create-md r0 > /tmp/md.out 2>&1 || { cat /tmp/md.out; fail "create-md"; }
drbdadm up r0 || fail "drbdadm up"
wait_drbd cs:Connected 900
if [ "$node" = b ]; then
	echo "bench: node b secondary"
	sleep 7200
	exit 0
fi
drbdadm -- --clear-bitmap new-current-uuid r0 || fail "new-current-uuid"
drbdadm primary r0 || fail "primary"
make_array 1 > /dev/null
load_module
echo "bench: node a primary, DRBD $(grep -o 'cs:[A-Za-z]* ro:[A-Za-z/]* ds:[A-Za-z/]*' /proc/drbd)"
v=$c/v0
run() { # run ROUND TARGET
	# DRBD connected and idle (resynchronised) but for standalone.
	case "$2" in
	local | drbd-c | drbd-c-nocork)
		if grep -q cs:StandAlone /proc/drbd; then
			drbdadm connect r0 || fail "drbdadm connect"
		fi
		wait_drbd ds:UpToDate/UpToDate 600
		cork=yes
		[ "$2" != drbd-c-nocork ] || cork=no
		drbdadm -- --tcp-cork=$cork net-options r0 || fail "drbdadm net-options --tcp-cork=$cork"
		;;
	standalone)
		drbdadm disconnect r0 || fail "drbdadm disconnect"
		wait_drbd cs:StandAlone 60
		;;
	esac
	log=/dev/drbd0
	[ "$2" != local ] || log=/dev/mapper/ssd1
	mkdir "$v"
	echo "$log" > "$v/log"
	echo /dev/md0 > "$v/array"
	echo 1 > "$v/format" || fail "format $2"
	echo 1 > "$v/enable" || fail "enable $2"
	dev=/dev/$(cat "$v/disk")
	# shellcheck disable=SC2086
	{
		printf '[global]\nfilename=%s\ndirect=1\nrandseed=7\n' "$dev"
		job qd1 size=32M runtime="$runtime" time_based rw=randwrite bs=4k ioengine=psync \
			sync=dsync iodepth=1
	} > /tmp/jobs.fio
	echo "bench: round $1: $2 (log $log, $(grep -o 'cs:[A-Za-z]*' /proc/drbd))"
	fio_terse "$1" "$2"
	echo 0 > "$v/enable"
	rmdir "$v"
}
set -- local drbd-c drbd-c-nocork standalone
for r in $(seq 1 "$rounds"); do
	for t in "$@"; do run "$r" "$t"; done
	# Rotate the order for the next round.
	first=$1
	shift
	set -- "$@" "$first"
done
grep -q cs:StandAlone /proc/drbd && drbdadm connect r0
echo "bench: done"
