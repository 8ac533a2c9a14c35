# SPDX-License-Identifier: GPL-2.0
# The appliance over NVMe/TCP, guest side (scenarios/nvme-appliance). Two
# VMs on a private link (scripts/vm --net): the server (10.77.0.1) holds the
# volume and exports it with nvmet, the client (10.77.0.2) writes and reads
# it with nvme-tcp. Block i of a test is "block i" repeated (4 KiB); the
# client's end is told to the server by a marker block it writes.
#   nvme.sh server N        raid1, format, enable, export; once the client's
#                           marker (block 1000) is there, print the write and
#                           flush counts and SERVER-GOT-ALL, then wait for the
#                           power cut
#   nvme.sh client-write N  connect (FUA and a write-back cache must reach
#                           the initiator), write blocks 0..N-1 with
#                           O_DIRECT|O_DSYNC, one ACK line each as dd returns,
#                           then the marker
#   nvme.sh server-verify "ACKED..."  after the cut: assemble, enable (the
#                           replay), every acknowledged block checked on the
#                           server, export again; once the client's second
#                           marker (block 1001) is there, unexport, disable,
#                           enable again and check the blocks once more
#   nvme.sh client-verify "ACKED..."  connect, every acknowledged block read
#                           back over NVMe/TCP and checked, then the marker
. /guest/lib.sh
set -e
v=$c/v0
pattern() { yes "block $1" | head -c 4096; }
# block_ok DEV I: block I of DEV holds pattern I.
block_ok() {
	[ "$(dd if="$1" bs=4096 skip="$2" count=1 iflag=direct 2>/dev/null | md5sum)" = \
		"$(pattern "$2" | md5sum)" ]
}
# all_ok DEV "BLOCK..." WHERE: every listed block of DEV holds its pattern;
# their number in $n.
all_ok() {
	n=0
	for i in $2; do
		block_ok "$1" "$i" || fail "acknowledged block $i lost, $3"
		n=$((n + 1))
	done
}
# wait_marker DEV I: until block I of DEV holds pattern I.
wait_marker() {
	i=0
	until block_ok "$1" "$2"; do
		i=$((i + 1))
		[ $i -lt 3000 ] || fail "no marker in block $2 after 10 minutes"
		sleep 0.2
	done
}
server_up() {
	dev=/dev/$(cat $v/disk)
	nvmet_export "$dev"
	echo "server: $dev exported as $NQN (namespace uuid $NS_UUID) on 10.77.0.1:4420"
}

case "$1" in
server)
	insmod /lib/swarmlog/swarmlog.ko cp_interval_ms=3600000 || fail insmod
	make_array 1
	volume v0
	echo 1 > $v/format
	echo 1 > $v/enable
	server_up
	wait_marker "$dev" 1000
	echo "server: writes $(status v0 writes), flushes $(status v0 flushes), cp_count $(status v0 cp_count)"
	[ "$(status v0 flushes)" -gt 0 ] || fail "no flush reached swarmlog from the initiator"
	echo "SERVER-GOT-ALL"
	sleep 3600
	;;
client-write)
	nvme_attach
	q=/sys/block/${ndev#/dev/}/queue
	echo "client: $ndev: fua $(cat $q/fua), write_cache $(cat $q/write_cache)"
	[ "$(cat $q/fua)" = 1 ] || fail "FUA does not reach the initiator"
	[ "$(cat $q/write_cache)" = "write back" ] || fail "the initiator sees no write-back cache"
	for i in $(seq 0 $(($2 - 1))); do
		pattern "$i" > /tmp/b
		dd if=/tmp/b of="$ndev" bs=4096 seek="$i" count=1 oflag=direct,dsync 2>/dev/null ||
			fail "write of block $i"
		echo "ACK $i"
	done
	pattern 1000 > /tmp/b
	# The server is cut once it has the marker: its reply may never come.
	timeout 60 /usr/bin/dd if=/tmp/b of="$ndev" bs=4096 seek=1000 count=1 oflag=direct,dsync 2>/dev/null || true
	echo "client: $2 writes acknowledged"
	;;
server-verify)
	insmod /lib/swarmlog/swarmlog.ko || fail insmod
	assemble_array
	volume v0
	echo 1 > $v/enable || fail "enable (replay)"
	echo "server: replayed $(status v0 replay_messages) records"
	dev=/dev/$(cat $v/disk)
	all_ok "$dev" "$2" "on the server after the power cut"
	echo "server: $n acknowledged blocks checked after the power cut"
	server_up
	wait_marker "$dev" 1001
	nvmet_unexport
	echo 0 > $v/enable
	echo 1 > $v/enable || fail "enable after the clean stop"
	dev=/dev/$(cat $v/disk)
	all_ok "$dev" "$2" "after the clean stop"
	echo "server: $n blocks checked again after unexport, disable, enable"
	echo 0 > $v/enable
	;;
client-verify)
	nvme_attach
	all_ok "$ndev" "$2" "read over NVMe/TCP"
	echo "client: $n acknowledged blocks checked over NVMe/TCP"
	pattern 1001 > /tmp/b
	dd if=/tmp/b of="$ndev" bs=4096 seek=1001 count=1 oflag=direct,dsync 2>/dev/null || fail "marker"
	nvme disconnect -n "$NQN" > /dev/null || fail "nvme disconnect"
	;;
esac
