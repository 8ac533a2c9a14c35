# SPDX-License-Identifier: GPL-2.0
# The operator's tool in use, guest side (scenarios/operator-tools); the
# tool is the VM image's swarmctl, on PATH (scripts/vm installs it).
#   operator.sh write   raid1; swarmctl create --format, enable, status
#                       (human and --json), config-line; its refusals (a
#                       volume that exists, a missing one, a bad device);
#                       20000 random 4 KiB writes in the log (no CP);
#                       BEFORE: the sum of the written region; then waits
#                       for the power cut
#   operator.sh replay  the array assembled, then the volume from
#                       /guest/swarmlog.conf (the config-line of the first
#                       boot) by `swarmctl assemble --scan` while `swarmctl
#                       watch --wait --plain` follows the replay; AFTER:
#                       the region's sum; disable --all, remove
. /guest/lib.sh
set -e
sc=$(command -v swarmctl) || fail "no swarmctl on PATH"
insmod /lib/swarmlog/swarmlog.ko cp_interval_ms=3600000 || fail "insmod"
# run CMD...: CMD shown, run, and its output shown.
run() {
	echo "\$ swarmctl $*"
	"$sc" "$@"
}
# refuses CMD...: CMD must fail with a message on stderr.
refuses() {
	echo "\$ swarmctl $* (must fail)"
	if "$sc" "$@" 2>/tmp/err; then fail "swarmctl $* succeeded"; fi
	[ -s /tmp/err ] || fail "swarmctl $* failed without a message"
	cat /tmp/err
}
region() { dd if="$1" bs=1M count=80 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1; }

case "$1" in
write)
	make_array 1
	run create v0 --log /dev/pmem0 --array /dev/md0 --format || fail "create"
	run enable v0 || fail "enable"
	run status v0 || fail "status"
	run status --json v0 > /tmp/json || fail "status --json"
	cat /tmp/json
	for k in '"v0"' '"state": "enabled"' '"log_medium": "pmem"' '"cp_count": 0'; do
		grep -q "$k" /tmp/json || fail "status --json has no $k"
	done
	refuses create v0 --log /dev/pmem0 --array /dev/md0
	refuses enable nosuch
	refuses create v1 --log /dev/nosuch --array /dev/md0
	[ ! -e "$c/v1" ] || fail "a refused create left its directory"
	echo "\$ swarmctl config-line v0"
	"$sc" config-line v0 > /tmp/conf || fail "config-line"
	echo "CONF $(cat /tmp/conf)"
	dev=/dev/$(cat "$c/v0/disk")
	# One at a time: each write is one record (nothing merged). Half
	# blocks, so that replay LOADs the old blocks (a record of whole blocks
	# needs no LOAD) and watch sees the LOADs run.
	fio --name=w --filename="$dev" --rw=randwrite --bs=2k --direct=1 --ioengine=psync \
		--size=80m --number_ios=20000 --randseed=5 --output-format=terse >/dev/null || fail "fio"
	[ "$(status v0 writes)" = 20000 ] || fail "$(status v0 writes) writes, not 20000"
	[ "$(status v0 cp_count)" = 0 ] || fail "a CP ran: the writes are not all in the log"
	echo "BEFORE $(region "$dev")"
	echo "records: $(status v0 log_used_bytes) bytes of log in use"
	echo "OPERATOR-WRITTEN"
	sleep 3600
	;;
replay)
	assemble_array
	"$sc" watch v0 --wait --plain --interval-ms 100 > /tmp/watch 2>&1 &
	w=$!
	run --config /guest/swarmlog.conf assemble --scan || fail "assemble --scan"
	wait "$w" || { cat /tmp/watch; fail "watch ended with an error"; }
	cat /tmp/watch
	grep -q "replay done: 20000 messages" /tmp/watch ||
		fail "watch did not report the replay of the writes"
	[ "$(grep -c replaying /tmp/watch)" -ge 1 ] || fail "watch never saw the replay running"
	grep -q "replaying: [0-9]* of 20000 messages.*, about .* left" /tmp/watch ||
		fail "watch never showed the total and the time left"
	# The running count of LOADs never exceeds the final one (it once
	# counted LOADs that were not issued as LOADs too).
	most=$(sed -n 's/.* swarms, \([0-9]*\) loads,.*/\1/p' /tmp/watch | sort -n | tail -1)
	[ "$most" -le "$(status v0 replay_loads)" ] ||
		fail "watch showed $most LOADs running, the replay issued $(status v0 replay_loads)"
	run status v0 || fail "status"
	dev=/dev/$(cat "$c/v0/disk")
	echo "AFTER $(region "$dev")"
	run disable --all || fail "disable --all"
	[ "$(cat "$c/v0/enable")" = 0 ] || fail "disable --all left v0 enabled"
	run remove v0 || fail "remove"
	[ ! -e "$c/v0" ] || fail "remove left v0"
	;;
*)
	fail "usage: operator.sh write|replay"
	;;
esac
