# SPDX-License-Identifier: GPL-2.0
# A replay an operator can watch and stop, guest side
# (scenarios/replay-progress).
#   replay-progress.sh write   md raid1 over the two disks, format, enable;
#                              the blocks written whole and committed (a
#                              disable's CP); N writes of one sector, each
#                              to its own 4 KiB block (so each needs the
#                              block read at replay), acknowledged
#                              (O_DIRECT|O_DSYNC) one
#                              after the other; the power is cut with all
#                              of them in the log
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
# The block of write I: blocks 7 apart; its sector within the block is
# drawn from I (sector (I * 7 + 3) * 8 + I % 8), so no two writes share a
# block.
blk() { echo $(($1 * 7 + 3)); }
# content I FILE: write I's sector into FILE (printf, a shell builtin: the
# loop over N writes took minutes under TCG with an awk each).
content() { printf '%-511s\n' "w$1" > "$2"; }
st() { timeout 3 cat "$v/status" || fail "status did not answer within 3 s"; }
stv() { st | sed -n "s/^$1 //p"; }

case "$1" in
write)
	fresh_volume p
	# The blocks written whole first and committed by the CP of a disable,
	# so that replay must read each one (a block never written reads as
	# zeroes without a read).
	yes swarmlog | head -c $((($(blk $N) + 1) * 4096)) |
		dd of="$dev" bs=1M oflag=direct iflag=fullblock 2>/dev/null || fail "filling the blocks"
	echo 0 > $v/enable
	echo 1 > $v/enable
	dev=/dev/$(cat $v/disk)
	i=0
	while [ $i -lt $N ]; do
		content "$i" /tmp/s
		dd if=/tmp/s of="$dev" bs=512 seek=$(((i * 7 + 3) * 8 + i % 8)) count=1 oflag=direct,dsync \
			2>/dev/null || fail "write $i"
		i=$((i + 1))
	done
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
	# One read of the written blocks, one sector a line (a NUL as '.', a
	# newline as ' '), and one awk for the N sectors: a dd and a cmp per
	# write took two minutes under TCG.
	dd if="$dev" of=/tmp/img bs=4096 count=$(($(blk $N) + 1)) iflag=direct 2>/dev/null ||
		fail "reading the written blocks"
	tr '\000\n' '. ' < /tmp/img | fold -w 512 | awk -v n=$N '
		BEGIN { for (i = 0; i < n; i++) want[(i * 7 + 3) * 8 + i % 8] = i }
		(NR - 1) in want {
			i = want[NR - 1]; seen++
			if ($0 != sprintf("%-512s", "w" i)) {
				bad++
				if (bad <= 5) print "write " i " is not there: sector " NR - 1 " holds " substr($0, 1, 16)
			}
		}
		END { if (seen != n) print "read " seen " of the " n " sectors"; exit bad > 0 || seen != n }
	' || fail "acknowledged writes missing after the replay"
	echo "replayed all $N messages; every acknowledged write is there"
	echo 0 > $v/enable
	;;
esac
