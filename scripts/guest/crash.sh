# SPDX-License-Identifier: GPL-2.0
# One torture cycle, guest side (scripts/torture): replay what the previous
# cycle left (with swarm_width WIDTH), verify every write acknowledged so
# far, then start WRITERS concurrent random writes of 1 to 16 sectors
# (crossing block boundaries) and print START/ACK lines for the host to
# keep, until the power is cut (MODE cut); or stop them after 12 s and
# disable the volume (MODE clean); or only replay and verify (MODE final).
#   crash.sh CYCLE WIDTH LEVEL SEED MODE WRITERS [expect-file]
# The expect file (made by the host from all earlier START/ACK lines) has a
# line "SECTOR TAG..." per sector: the tags it may hold (ZERO: unwritten).
# A file /guest/cp-fault (scripts/torture --cp-fault) holds a value for the
# test kernel's debugfs replay_fault, set before each enable.
. /guest/lib.sh
set -e
cycle=$1 width=$2 level=$3 seed=$4 mode=$5 WRITERS=$6 expect=$7
REGION=8192
RANDOM=$seed
load_module
cp_fault() { [ ! -r /guest/cp-fault ] || cat /guest/cp-fault > /sys/kernel/debug/swarmlog/v0/replay_fault; }
if [ "$cycle" = 1 ]; then
	make_array "$level"
	volume v0
	cp_fault
	echo 1 > $c/v0/format
	echo 1 > $c/v0/enable
else
	assemble_array
	volume v0
	cp_fault
	echo "$width" > $c/v0/swarm_width
	if ! echo 1 > $c/v0/enable; then
		dmesg | grep swarmlog | tail -5
		# A replay that found a block not matching its checksum (skipped,
		# enable EIO) lost what the block held: say so as a loss.
		! dmesg | grep -q "checksum mismatch" ||
			fail "acknowledged writes unreadable: $(dmesg | grep -m 3 'checksum mismatch' | tr '\n' ' ')"
		fail "enable (replay)"
	fi
	echo "replay: $(grep replay_ $c/v0/status | tr '\n' ' ')"
fi
dev=/dev/$(cat $c/v0/disk)
if [ -n "$expect" ]; then
	# A block whose checksum does not match reads as an I/O error: lost too.
	dd if=$dev of=/tmp/img bs=1M count=$((WRITERS * REGION / 2048)) iflag=direct 2>/dev/null ||
		fail "acknowledged writes unreadable: $(dmesg | grep -m 3 'checksum mismatch' | tr '\n' ' ')"
	tr '\000\n' '. ' < /tmp/img | fold -w 512 > /tmp/sectors
	awk -v ef="/guest/$expect" '
		BEGIN { while ((getline l < ef) > 0) { n = split(l, f, " "); want[f[1]] = l } }
		{ s = NR - 1; tag = ($1 ~ /^\.+$/) ? "ZERO" : $1
		  if (!(s in want)) next
		  checked++
		  n = split(want[s], f, " "); ok = 0
		  for (i = 2; i <= n; i++) if (f[i] == tag) ok = 1
		  if (!ok) { bad++; if (bad < 10) print "LOST: sector " s " holds " tag ", expected one of: " want[s] } }
		END { print "verified " checked + 0 " sectors, " bad + 0 " wrong"; exit bad > 0 || checked == 0 }
	' /tmp/sectors || fail "acknowledged writes lost"
fi
if [ "$mode" = final ]; then
	echo 0 > $c/v0/enable
	exit 0
fi
echo "cycle $cycle: writing ($mode)"
for j in $(seq 0 $((WRITERS - 1))); do torture_writer $j "$seed" "$cycle" "$dev" direct & done
if [ "$mode" = clean ]; then
	sleep 12
	touch /tmp/stop
	wait
	echo 0 > $c/v0/enable || fail "disable"
	echo "clean: writers stopped, volume disabled"
	exit 0
fi
wait
