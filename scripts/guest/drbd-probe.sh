# SPDX-License-Identifier: GPL-2.0
# An HA pair's first steps (issue 25, work in progress), run on both
# servers at once (scripts/vm --net LINK:1 and LINK:2, --log-disk, the
# array's disks --shared-disks): the log disk under DRBD (resource r0,
# protocol C) between node a (10.77.0.1) and node b (10.77.0.2); node a
# makes it primary, builds md over the shared disks, a swarmlog volume with
# its log on /dev/drbd0, writes, and checks that DRBD has the writes on
# both sides (UpToDate/UpToDate). Prints the times of each step.
. /guest/lib.sh
me=$(cut -d' ' -f2 /guest/net | cut -d. -f4 | head -1)
case "$me" in
1) name=a peer=b ;;
2) name=b peer=a ;;
*) fail "not machine 1 or 2 of the link" ;;
esac
hostname "$name"
# drbdadm runs drbdadm-84 (the in-kernel DRBD is 8.4), found by PATH.
export PATH=$PATH:/usr/lib/drbd
log=$(log_device)
mkdir -p /etc/drbd.d /var/lib/drbd /var/run/drbd /run/lock /var/lock
cat > /etc/drbd.conf <<EOF
global { usage-count no; }
resource r0 {
	protocol C;
	net {
		timeout 100;
		connect-int 2;
		ping-int 2;
		ping-timeout 50;
	}
	on a {
		device /dev/drbd0;
		disk $log;
		address 10.77.0.1:7789;
		meta-disk internal;
	}
	on b {
		device /dev/drbd0;
		disk $log;
		address 10.77.0.2:7789;
		meta-disk internal;
	}
}
EOF
t0=$(date +%s)
head -c 200 /proc/drbd
drbdadm -- --force create-md r0 > /tmp/md.out 2>&1 || { cat /tmp/md.out; fail "create-md"; }
drbdadm up r0 || fail "drbdadm up"
i=0
until grep -q "cs:Connected" /proc/drbd; do
	sleep 1
	i=$((i + 1))
	[ $i -lt 120 ] || { cat /proc/drbd; fail "not connected in 120 s"; }
done
echo "DRBD connected after $(($(date +%s) - t0)) s"
cat /proc/drbd
if [ "$name" = a ]; then
	# Both sides are new and empty: no initial sync.
	drbdadm -- --clear-bitmap new-current-uuid r0 || fail "new-current-uuid"
	drbdadm primary r0 || fail "primary"
	grep -q "ds:UpToDate/UpToDate" /proc/drbd || { cat /proc/drbd; fail "not UpToDate on both"; }
	load_module
	make_array 1
	mkdir -p "$c/v0"
	echo /dev/drbd0 > "$c/v0/log"
	echo /dev/md0 > "$c/v0/array"
	echo 1 > "$c/v0/format" || fail "format on drbd0"
	echo 1 > "$c/v0/enable" || fail "enable on drbd0"
	echo "log medium: $(status v0 log_medium)"
	dev=/dev/$(cat "$c/v0/disk")
	fio --name=qd1 --filename="$dev" --rw=randwrite --bs=4k --iodepth=1 --ioengine=psync \
		--direct=1 --sync=1 --size=16M --runtime=10 --time_based \
		> /tmp/fio.out 2>&1 || { cat /tmp/fio.out; fail "fio"; }
	echo "QD1 O_DSYNC 4 KiB through DRBD protocol C:"
	grep -E "IOPS=| clat \(|50.00th|99.00th" /tmp/fio.out
	cat /proc/drbd
	echo 0 > "$c/v0/enable"
	mdadm --stop /dev/md0
	drbdadm secondary r0 || fail "secondary"
	echo DRBD-PROBE-DONE > /dev/kmsg
else
	# Node a goes primary, writes, and goes secondary again.
	for want in ro:Secondary/Primary ro:Secondary/Secondary; do
		i=0
		until grep -q "$want" /proc/drbd; do
			sleep 1
			i=$((i + 1))
			[ $i -lt 900 ] || { cat /proc/drbd; fail "no $want in 900 s"; }
		done
		echo "node b: $want after $(($(date +%s) - t0)) s"
	done
	grep -q "ds:UpToDate/UpToDate" /proc/drbd || { cat /proc/drbd; fail "not UpToDate on both"; }
	cat /proc/drbd
fi
drbdadm down r0 || fail "down"
echo "drbd probe: node $name done after $(($(date +%s) - t0)) s"
