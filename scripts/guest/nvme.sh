# SPDX-License-Identifier: GPL-2.0
# The appliance over NVMe/TCP, guest side (scripts/nvme-torture). Two VMs on
# a private link (scripts/vm --net): the server (10.77.0.1) holds the volume
# and exports it with nvmet, the client (10.77.0.2) stays connected with
# nvme-tcp through the server's power cuts and reboots.
#
#   nvme.sh client WRITERS SEED [ADDR...]
#       connect (to 10.77.0.1, or by NVMe multipath to each ADDR: an HA
#       pair, scripts/ha-torture; FUA and a write-back cache must reach
#       the initiator), then
#       WRITERS concurrent writers of random 1 to 16 sector O_DIRECT|O_DSYNC
#       writes, each in its own region of REGION sectors, printing START and
#       ACK lines for the host to keep (as the torture's; on the record
#       port, /dev/ttyS1, where no kernel message cuts into them); a
#       writer's error is a WRITE-ERROR line: there must be none, the
#       server's cuts and reboots included (nvme-tcp keeps the I/O queued
#       and reconnects). Once the server's stop marker is in the volume the
#       writers stop, the region is read back over NVMe/TCP (dump_tags:
#       TAGS lines on the record port, for the host to check), the done
#       marker is written (with a flush) and the client disconnects.
#   nvme.sh server CYCLE MODE WRITERS [SECONDS]
#       cycle 1 creates raid1 and formats the volume; later cycles assemble
#       and enable it (the replay) and print what it holds before exporting
#       (dump_tags, label replayCYCLE). Then export and wait until the
#       client's writes arrive (SERVER-SEES-WRITES), and:
#       MODE cut    wait for the power cut (scripts/vm --cut-on);
#       MODE clean  after SECONDS, unexport and disable under the client's
#                   writes, and power off: a clean stop;
#       MODE final  the stop marker is written before the export; once the
#                   client's done marker is there: unexport, disable,
#                   enable again, print what the volume holds (label
#                   final), disable.
. /guest/lib.sh
set -e
v=$c/v0
REGION=8192

case "$1" in
client)
	writers=$2 seed=$3
	shift 3
	# The markers: the blocks after the writers' regions.
	stop=$((writers * REGION / 8)) done=$((writers * REGION / 8 + 1))
	nvme_attach 900 "$@"
	q=/sys/block/${ndev#/dev/}/queue
	echo "client: $ndev: fua $(cat $q/fua), write_cache $(cat $q/write_cache)"
	[ "$(cat $q/fua)" = 1 ] || fail "FUA does not reach the initiator"
	[ "$(cat $q/write_cache)" = "write back" ] || fail "the initiator sees no write-back cache"
	# The writers' lines go to the record port (scripts/vm: no kernel
	# message cut into them), one write each.
	exec 3> /dev/ttyS1
	echo "client: writing"
	for j in $(seq 0 $((writers - 1))); do
		torture_writer $j "$seed" 1 "$ndev" direct,dsync >&3 &
	done
	# The reads wait, as the writes do, while the server is down.
	until marker_ok "$ndev" $stop; do sleep 1; done
	touch /tmp/stop
	wait
	echo "client: stop marker seen, writers stopped"
	[ ! -e /tmp/error ] || fail "a writer saw an error"
	dump_tags "$ndev" $((writers * REGION)) client >&3
	put_marker "$ndev" $done fsync || fail "done marker"
	nvme disconnect -n "$NQN" > /dev/null || fail "nvme disconnect"
	echo "client: disconnected"
	;;
server)
	cycle=$2 mode=$3 writers=$4
	stop=$((writers * REGION / 8)) done=$((writers * REGION / 8 + 1))
	load_module
	if [ "$cycle" = 1 ]; then
		make_array 1
		volume v0
		echo 1 > $v/format
		echo 1 > $v/enable
	else
		assemble_array
		volume v0
		echo 1 > $v/enable || { dmesg | grep swarmlog | tail -5; fail "enable (replay)"; }
		echo "server: replayed $(status v0 replay_messages) records"
	fi
	dev=/dev/$(cat $v/disk)
	[ "$cycle" = 1 ] || dump_tags "$dev" $((writers * REGION)) "replay$cycle" > /dev/ttyS1
	[ "$mode" != final ] || put_marker "$dev" $stop || fail "stop marker"
	nvmet_export "$dev"
	echo "server: $dev exported as $NQN (namespace uuid $NS_UUID) on 10.77.0.1:4420"
	if [ "$mode" != final ]; then
		wait_writes v0
		echo "SERVER-SEES-WRITES"
	fi
	case "$mode" in
	cut)
		sleep 3600
		;;
	clean)
		sleep "$5"
		nvmet_unexport
		echo 0 > $v/enable || fail "disable"
		echo "server: clean stop under the client's writes (unexported, disabled)"
		;;
	final)
		wait_marker "$dev" $done "done marker from the client"
		echo "server: writes $(status v0 writes), flushes $(status v0 flushes)"
		[ "$(status v0 flushes)" -gt 0 ] || fail "the client's flush did not reach swarmlog"
		nvmet_unexport
		echo 0 > $v/enable
		echo 1 > $v/enable || fail "enable after the clean stop"
		dump_tags "$dev" $((writers * REGION)) final > /dev/ttyS1
		echo 0 > $v/enable
		;;
	esac
	;;
*)
	fail "nvme.sh: unknown mode $1"
	;;
esac
