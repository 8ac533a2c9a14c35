# SPDX-License-Identifier: GPL-2.0
# A replay an operator can watch and stop, guest side
# (scenarios/replay-progress).
#   replay-progress.sh write   md raid1 over the two disks, format, enable;
#                              the blocks written whole and committed (a
#                              disable's CP); N writes of one sector, each
#                              to its own 4 KiB block (so each needs the
#                              block read at replay), acknowledged
#                              (O_DIRECT|O_SYNC) one after the other by
#                              one fio job; the power is cut with all of
#                              them in the log
#   replay-progress.sh replay  the members behind dm-delay. First the panic
#                              path (debugfs replay_fault, test kernels):
#                              enable fails with EIO, replay_state panic, a
#                              pr_emerg line, no disk, the log unchanged.
#                              Then reads delayed 20 ms and swarm_width 1:
#                              while enable replays, status answers at once
#                              (state replaying, replay_state running, the
#                              count of messages growing); enable 0 aborts
#                              it (the enable fails with ECANCELED,
#                              replay_state aborted, no disk, the log
#                              unchanged). Then without the delay enable
#                              replays all N and every write is there.
. /guest/lib.sh
set -e
v=$c/p
N=600
# The N writes: one fio job, one 512-byte sector then 4096 bytes skipped,
# so write I lands at sector 9 * I, in block I + I / 8 at sector I % 8 of
# it: no two writes share a block and each sits at its own place in its
# block. fio's verify header in each sector (its offset, a checksum) lets
# the same job with --verify_only check every write after the replay. (A
# dd per write, as before, took two minutes of the scenario under TCG.)
writes() {
	fio --name=progress --filename="$dev" --rw=write:4096 --bs=512 --size=$((N * 4608)) \
		--number_ios=$N --ioengine=psync --direct=1 --verify=crc32c --eta=never "$@" \
		--output=/tmp/fio.out || { cat /tmp/fio.out; return 1; }
}
# Blocks that hold the writes: 0 to the last one's.
BLOCKS=$(((N - 1) * 9 / 8 + 1))
st() { timeout 3 cat "$v/status" || fail "status did not answer within 3 s"; }
stv() { st | sed -n "s/^$1 //p"; }

case "$1" in
write)
	fresh_volume p
	# The blocks written whole first and committed by the CP of a disable,
	# so that replay must read each one (a block never written reads as
	# zeroes without a read).
	yes swarmlog | head -c $((BLOCKS * 4096)) |
		dd of="$dev" bs=1M oflag=direct iflag=fullblock 2>/dev/null || fail "filling the blocks"
	echo 0 > $v/enable
	echo 1 > $v/enable
	dev=/dev/$(cat $v/disk)
	writes --sync=1 --do_verify=0 || fail "the $N writes"
	[ "$(status p writes)" = $N ] && [ "$(status p cp_count)" = 0 ] || fail "not all $N writes in the log"
	echo "PROGRESS-WRITTEN"
	sleep 3600
	;;
replay)
	# shellcheck disable=SC2046
	assemble_array $(delayed_members 1)
	insmod /lib/swarmlog/swarmlog.ko cp_interval_ms=3600000 || fail insmod
	volume p
	before=$(log_head)
	knob=/sys/kernel/debug/swarmlog/p/replay_fault

	# 1. The panic state, which only an injected fault reaches.
	[ -w $knob ] || fail "no $knob (a test kernel has it)"
	echo 1 > $knob
	if echo 1 > $v/enable 2>/tmp/err; then fail "enable succeeded with the fault injected"; fi
	grep -q "Input/output error" /tmp/err || fail "enable in the panic state: $(cat /tmp/err), not EIO"
	[ "$(stv replay_state)" = panic ] || fail "replay_state $(stv replay_state), not panic"
	[ -n "$(stv replay_panic_seq)" ] || fail "no replay_panic_seq"
	dmesg | grep -q "replay PANIC" || fail "no kernel message for the panic state"
	[ -z "$(cat $v/disk)" ] || fail "a disk was exposed in the panic state"
	[ "$(log_head)" = "$before" ] || fail "the panic state changed the log"
	echo 0 > $knob
	echo "panic state: EIO, replay_state panic, message seq $(stv replay_panic_seq), no disk, log unchanged"

	# 2. A slow replay (reads delayed 20 ms, one LOAD at a time), watched
	# and stopped.
	set_delay 20
	echo 1 > $v/swarm_width
	(if echo 1 > $v/enable 2>/tmp/err; then echo 0; else echo 1; fi > /tmp/enable-rc) &
	i=0
	while [ "$(stv state)" != replaying ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "status never said replaying"
		sleep 0.1
	done
	sleep 1
	m1=$(stv replay_messages) t1=$(stv replay_duration_us)
	sleep 2
	st > /tmp/st
	m2=$(sed -n 's/^replay_messages //p' /tmp/st) t2=$(sed -n 's/^replay_duration_us //p' /tmp/st)
	scanned=$(sed -n 's/^replay_scanned //p' /tmp/st)
	grep -q "^replay_state running" /tmp/st || fail "replay_state during the replay: $(grep replay_state /tmp/st)"
	[ "$m2" -gt "$m1" ] || fail "replay_messages did not grow: $m1 then $m2"
	[ "$t2" -gt "$t1" ] || fail "replay_duration_us did not grow: $t1 then $t2"
	[ "$scanned" -ge "$m2" ] && [ "$m2" -lt $N ] || fail "scanned $scanned, messages $m2 of $N"
	if echo 1 > $v/format 2>/dev/null; then fail "format accepted during the replay"; fi
	if echo 1 > $v/discard_skipped 2>/dev/null; then fail "discard_skipped accepted during the replay"; fi
	echo "during the replay: status answers, $m1 then $m2 of $scanned scanned messages applied in 2 s"
	echo 0 > $v/enable || fail "enable 0 during the replay"
	wait
	[ "$(cat /tmp/enable-rc)" = 1 ] || fail "the aborted enable succeeded"
	grep -qi "canceled" /tmp/err || fail "the aborted enable failed with: $(cat /tmp/err)"
	[ "$(stv replay_state)" = aborted ] || fail "replay_state $(stv replay_state), not aborted"
	[ "$(stv state)" = configured ] || fail "state $(stv state) after the abort"
	[ -z "$(cat $v/disk)" ] || fail "a disk was exposed after the abort"
	[ "$(log_head)" = "$before" ] || fail "the aborted replay changed the log"
	dmesg | grep "replay aborted" | tail -1
	echo "aborted: ECANCELED, replay_state aborted after $(stv replay_messages) messages, no disk, log unchanged"

	# 3. The whole replay: every acknowledged write is there.
	set_delay 0
	echo 64 > $v/swarm_width
	echo 1 > $v/enable || fail "enable after the abort"
	[ "$(stv replay_state)" = done ] && [ "$(stv replay_messages)" = $N ] ||
		fail "replay: $(stv replay_state), $(stv replay_messages) messages"
	dev=/dev/$(cat $v/disk)
	writes --verify_only=1 || fail "acknowledged writes missing after the replay"
	grep -q "write:.*IOPS\|read:.*IOPS" /tmp/fio.out || fail "fio verified nothing: $(cat /tmp/fio.out)"
	echo "replayed all $N messages; every acknowledged write is there"
	echo 0 > $v/enable
	;;
esac
