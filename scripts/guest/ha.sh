# SPDX-License-Identifier: GPL-2.0
# The HA pair, a server's side (scripts/ha-torture; the client runs
# nvme.sh client with both servers' addresses). Node a is machine 1, node
# b machine 2 of the replication link (eth0: 10.77.0.1 and 10.77.0.2, DRBD
# resource r0 over each node's log disk, protocol C); each has a link of
# its own to the client (eth1: a 10.77.1.1, b 10.77.2.2); the array's two
# disks are the same images on both (scripts/vm --shared-disks).
#
#   ha.sh server NODE BOOT K CYCLES WRITERS
#       NODE a or b. BOOT new: the node's first boot (DRBD metadata
#       created), again: a failed node back (it resynchronises from the
#       active one). K 0: node a's first boot, which makes the pair's first
#       volume (DRBD primary, md raid1, format) and activates it with
#       swarmlog-takeover; K >= 1: a standby, which waits until DRBD loses
#       its peer (the active node's QEMU killed: "detect"), then takes over
#       (swarmlog-takeover: promote, assemble, replay, export), having
#       printed what the replayed volume holds (dump_tags, label replayK)
#       before the export. Before that, once UpToDate, the standby checks
#       that swarmlog-takeover refuses while the active node is Primary,
#       and while it is alive but disconnected (drbdadm disconnect here,
#       then connect and resynchronise), and then tells the active node it
#       is ready (a connection to its port 7790). Then, if K < CYCLES, the
#       node waits until the failed node is back as a ready standby and the
#       client's writes reach it (ACTIVE-SEES-WRITES: the host's cue for
#       the next power cut); if K = CYCLES it is the last: the stop marker
#       is written before the export, and once the client's done marker is
#       there it unexports, disables, enables and prints what the volume
#       holds (label final).
. /guest/lib.sh
set -e
v=$c/v0
REGION=8192
[ "$1" = server ] || fail "ha.sh: unknown mode $1"
node=$2 boot=$3 k=$4 cycles=$5 writers=$6
stop=$((writers * REGION / 8)) done=$((writers * REGION / 8 + 1))
case "$node" in
a) peer=10.77.0.2 addr=10.77.1.1 cntlid=1-999 ;;
b) peer=10.77.0.1 addr=10.77.2.2 cntlid=1001-1999 ;;
*) fail "ha.sh: node a or b, not '$node'" ;;
esac
hostname "$node"
ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
log=$(log_device)
drbd_conf "$log"
if [ "$boot" = new ]; then
	drbdadm -- --force create-md r0 > /tmp/md.out 2>&1 || { cat /tmp/md.out; fail "create-md"; }
fi
drbdadm up r0 || fail "drbdadm up"
load_module
takeover() { # takeover [--before-export CMD]
	sh /guest/swarmlog-takeover --resource r0 --peer "$peer" --members "/dev/vda /dev/vdb" \
		--nqn "$NQN" --ns-uuid "$NS_UUID" --ns-nguid "$NS_NGUID" --serial "$SERIAL" \
		--addr "$addr" --cntlid "$cntlid" "$@"
}
# The checks before the export (--before-export): what the replay gave,
# and on the last takeover the stop marker.
cat > /tmp/before-export <<EOF
. /guest/lib.sh
dump_tags "\$SWARMLOG_DEV" $((writers * REGION)) replay$k > /dev/ttyS1
[ "$k" != "$cycles" ] || put_marker "\$SWARMLOG_DEV" $stop || fail "stop marker"
EOF
if [ "$k" = 0 ]; then
	wait_drbd cs:Connected 900
	# Both copies are new and empty: no initial sync.
	drbdadm -- --clear-bitmap new-current-uuid r0 || fail "new-current-uuid"
	drbdadm primary r0 || fail "primary"
	make_array 1
	mkdir -p "$v"
	echo /dev/drbd0 > "$v/log"
	echo /dev/md0 > "$v/array"
	echo 1 > "$v/format" || fail "format on /dev/drbd0"
	takeover || fail "swarmlog-takeover"
	echo "server: node a active, log medium $(status v0 log_medium)"
else
	wait_drbd cs:Connected 900
	t=$(ms)
	wait_drbd ds:UpToDate/UpToDate 900
	echo "server: node $node standby, DRBD UpToDate/UpToDate (resync $(($(ms) - t)) ms)"
	# The takeover must refuse while the active node lives: connected and
	# Primary; and cut off from DRBD (disconnected here) but answering on
	# the link. Nothing may have changed after a refusal.
	refused() { # refused WHY
		if takeover > /tmp/refusal 2>&1; then cat /tmp/refusal; fail "takeover ran: $1"; fi
		grep -q "refused" /tmp/refusal || { cat /tmp/refusal; fail "takeover failed, not refused: $1"; }
		grep -q "ro:Secondary" /proc/drbd || fail "DRBD promoted after the refusal ($1)"
		! grep -q "^md0 :" /proc/mdstat || fail "md0 assembled after the refusal ($1)"
		[ ! -d "$v" ] || fail "volume made after the refusal ($1)"
		echo "server: takeover refused ($1): $(sed -n 's/^swarmlog-takeover: refused: //p' /tmp/refusal)"
	}
	# (Once the peer is Primary: UpToDate comes first on node a's first
	# activation.)
	wait_drbd ro:Secondary/Primary 900
	refused "the peer is Primary"
	drbdadm disconnect r0 || fail "drbdadm disconnect"
	wait_drbd cs:StandAlone 60
	refused "disconnected, the peer alive"
	drbdadm connect r0 || fail "drbdadm connect"
	wait_drbd ds:UpToDate/UpToDate 900
	# Tell the active node that its standby is ready (it waits for this
	# before the host may cut it): one connection on port 7790.
	nc -l -p 7790 < /dev/null > /dev/null &
	echo "STANDBY-READY $k"
	# Detection: DRBD loses the peer (its QEMU killed). A loss the
	# takeover refuses (the peer still answers: a connection that timed
	# out under load) sends the node back to waiting, once connected
	# and UpToDate again; a takeover that fails otherwise fails the run.
	tries=0
	while :; do
		while grep -q cs:Connected /proc/drbd; do sleep 0.1; done
		echo "takeover: detect $(grep -o 'cs:[A-Za-z]*' /proc/drbd)"
		rc=0
		takeover --before-export "sh /tmp/before-export" || rc=$?
		[ "$rc" = 1 ] || break
		tries=$((tries + 1))
		[ $tries -lt 5 ] || fail "takeover refused 5 times"
		echo "server: takeover refused, back to standby"
		wait_drbd ds:UpToDate/UpToDate 900
	done
	[ "$rc" = 0 ] || fail "swarmlog-takeover failed ($rc)"
	echo "server: node $node active after takeover $k"
fi
dev=/dev/$(cat "$v/disk")
if [ "$k" != "$cycles" ]; then
	t=$(ms)
	i=0
	until nc -w 2 "$peer" 7790 < /dev/null > /dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 1800 ] || fail "no ready standby in 30 minutes"
		sleep 1
	done
	grep -q ds:UpToDate/UpToDate /proc/drbd || { cat /proc/drbd; fail "standby ready, but not UpToDate"; }
	echo "server: the standby is back, UpToDate and ready after $(($(ms) - t)) ms"
	wait_writes v0
	echo "ACTIVE-SEES-WRITES $k"
	sleep 3600
fi
wait_marker "$dev" $done "done marker from the client"
echo "server: writes $(status v0 writes), flushes $(status v0 flushes)"
nvmet_unexport
echo 0 > "$v/enable"
echo 1 > "$v/enable" || fail "enable after the clean stop"
dump_tags "$dev" $((writers * REGION)) final > /dev/ttyS1
echo 0 > "$v/enable"
mdadm --stop /dev/md0 > /dev/null
drbdadm secondary r0
echo "server: node $node stopped cleanly"
