# SPDX-License-Identifier: GPL-2.0
# Replay of copies of the same crashed images, guest side (see
# scripts/replay-copies).
#   replay-copy.sh write LEVEL DELAY_MS WRITES BS [REGION_MB]
#       md0 over the disks (behind dm-delay when DELAY_MS > 0), format,
#       enable, WRITES random writes with fio (BS: a block size such as 4k,
#       or "mixed" for 512 B to 64 KiB at any sector), then wait for the
#       cut; with REGION_MB, the first REGION_MB MiB are written whole and
#       committed first and the random writes stay in them (so that a
#       LOAD of a block changed in part has old contents to read: a block
#       never written reads as zeroes without a read)
#   replay-copy.sh replay LEVEL DELAY_MS WIDTH SUM
#       enable with swarm_width WIDTH (the replay); print a RESULT line;
#       with SUM 1, disable and print the MD5 of the array's data area
#   replay-copy.sh limit LEVEL DELAY_MS IOS DEPTH...
#       the physical limit at each iodepth DEPTH (one LIMIT line each):
#       fio random reads of IOS distinct 8 KiB blocks
#       (a LOAD reads both copies of a table block: 8 KiB) at iodepth 64
. /guest/lib.sh
set -e
mode=$1 level=$2 delay=$3
# No timed CPs (the writes must stay in the log) and room for all of them.
insmod /lib/swarmlog/swarmlog.ko cp_interval_ms=3600000 cache_max_mb=512
members=$(delayed_members "$delay")
[ -n "$members" ] && [ -z "${members##/dev/*}" ] || fail "members: $members"
v=$c/r
uptime_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
# cpu_snapshot: "TID COMM TICKS" (user + system clock ticks) of every
# thread, digits in COMM made "N" (kworker/u9:2 -> kworker/uN:N).
cpu_snapshot() {
	for f in /proc/[0-9]*/task/[0-9]*/stat; do cat "$f" 2>/dev/null; done |
		awk '{ tid = $1; c = $0; sub(/^[0-9]+ \(/, "", c); comm = c; sub(/\) .*/, "", comm)
		       sub(/.*\) /, "", c); split(c, f, " "); gsub(/[0-9]+/, "N", comm); gsub(/ /, "_", comm)
		       print tid, comm, f[12] + f[13] }'
}
# cpu_top: the threads that used most CPU between the snapshots /tmp/cpu0
# and /tmp/cpu1, on one line "cpu: COMM MS, ..." (clock ticks of 10 ms).
cpu_top() {
	awk 'NR == FNR { t[$1] = $3; next } { u[$2] += $3 - t[$1] }
		END { for (c in u) if (u[c] > 0) print u[c] * 10, c }' /tmp/cpu0 /tmp/cpu1 |
		sort -rn | head -6 |
		awk '{ printf "%s%s %d ms", (NR > 1 ? ", " : "cpu: "), $2, $1 } END { print "" }'
}

case "$mode" in
write)
	writes=$4 bs=$5 region=${6:-}
	# shellcheck disable=SC2086
	make_array "$level" $members
	volume r
	echo 1 > $v/format
	echo 1 > $v/enable
	dev=/dev/$(cat $v/disk)
	span=""
	if [ -n "$region" ]; then
		dd if=/dev/urandom of="$dev" bs=1M count="$region" oflag=direct 2>/dev/null ||
			fail "filling the first $region MiB"
		# Committed by disable's CP; enabled again, the volume counts its
		# writes and CPs afresh.
		echo 0 > $v/enable
		echo 1 > $v/enable
		span="--size=${region}M"
		echo "region: the first $region MiB written whole and committed"
	fi
	echo "volume: $(($(cat /sys/block/$(cat $v/disk)/size) / 2048)) MiB; reads delayed by $delay ms"
	if [ "$bs" = mixed ]; then
		size="--bssplit=512/20:1k/10:2k/10:3584/10:4k/30:8k/10:64k/10 --blockalign=512 --norandommap"
	else
		size="--bs=$bs"
	fi
	t0=$(uptime_ms)
	# shellcheck disable=SC2086
	fio --name=w --filename="$dev" --rw=randwrite $size $span --direct=1 --ioengine=libaio \
		--iodepth=16 --number_ios="$writes" --randseed=7 --output-format=terse \
		--terse-version=3 > /tmp/fio || fail "fio"
	t1=$(uptime_ms)
	echo "wrote: $(awk -F';' '{ print $47 + 0 }' /tmp/fio) KiB in $writes writes, $((t1 - t0)) ms"
	grep -E "^(writes|log_used_bytes|cache_blocks|cp_count) " $v/status | tr '\n' ' '
	echo
	[ "$(status r cp_count)" = 0 ] || fail "a CP ran: not every write is in the log"
	[ "$(status r writes)" -ge "$writes" ] || fail "fewer writes than asked"
	echo "REPLAY-COPY-WRITTEN"
	sleep 3600
	;;
replay)
	width=$4 sum=$5
	# shellcheck disable=SC2086
	assemble_array $members
	volume r
	echo "$width" > $v/swarm_width
	cpu_snapshot > /tmp/cpu0
	# With /guest/perf.tgz (scripts/profile-replay), a perf profile of the
	# whole VM during the enable.
	perf_begin
	t0=$(uptime_ms)
	echo 1 > $v/enable || { dmesg | grep swarmlog | tail -5; fail "enable (replay)"; }
	t1=$(uptime_ms)
	cpu_snapshot > /tmp/cpu1
	cpu_top
	if [ -n "$perf" ]; then
		perf_end
		echo PERF-BEGIN
		perf report -i /tmp/perf.data --stdio --no-children --sort comm -g none --percent-limit 1 2>/dev/null | grep -v '^[#]*$'
		perf report -i /tmp/perf.data --stdio --no-children --sort comm,sym -g none --percent-limit 0.4 2>/dev/null | grep -v '^[#]*$'
		echo "PERF: the enabling thread (MODIFY, then the CP), time in each function"
		perf report -i /tmp/perf.data --stdio --no-children --comm sh --sort sym -g none --percent-limit 0.1 2>/dev/null | grep -v '^[#]*$'
		echo "PERF: the enabling thread (MODIFY, then the CP), time in and under each function"
		perf report -i /tmp/perf.data --stdio --children --comm sh --sort sym -g none --percent-limit 0.5 2>/dev/null | grep -v '^[#]*$'
		# The replay thread alone (samples with replay() on their stack, the
		# CPs excluded): ms in each function, and in and under each.
		perf script -i /tmp/perf.data -F comm,ip,sym 2>/dev/null | awk -v hz=2000 '
			function flush() {
				if (n > 0 && swarm && !cp) {
					self[leaf]++; total++
					for (s in seen) under[s]++
				}
				n = 0; swarm = 0; cp = 0; delete seen
			}
			!/^\t/ { flush(); next }
			NF >= 2 { s = $2; sub(/\+0x.*/, "", s); gsub(/_R[A-Za-z0-9_]*8swarmlog/, "swarmlog::", s)
				if (n == 0) leaf = s
				n++; seen[s] = 1; if (s ~ /6replay6replay/) swarm = 1; if (s ~ /checkpoint/) cp = 1 }
			END { flush()
				printf "replay thread: %d ms on CPU\n", total * 1000 / hz
				for (s in self) if (self[s] * 1000 / hz >= 3) printf "  self %6d ms  %s\n", self[s] * 1000 / hz, s
				for (s in under) if (under[s] * 1000 / hz >= 5) printf "  total %5d ms  %s\n", under[s] * 1000 / hz, s }' |
			sort -k3 -rn -s
		echo PERF-END
	fi
	events=$(sed -n 's/^# swarmlog replay trace: \([0-9]*\) events.*/\1/p' /sys/kernel/debug/swarmlog/r/replay_trace)
	[ "${events:-0}" -gt 0 ] || fail "the replay trace is empty"
	sed -n '3,$p' /sys/kernel/debug/swarmlog/r/replay_trace | awk '
		{ n[$4]++ } END { printf "trace:"; for (s in n) printf " %s=%d", s, n[s]; print "" }'
	# Per swarm, from the whole trace: when its messages were made (NEW),
	# its LOADs ran, and its MODIFYs ran (ms from the trace's start).
	sed -n '3,$p' /sys/kernel/debug/swarmlog/r/replay_trace | awk '
		{ k = $2 SUBSEP $4; t = $1 / 1e6; if (!(k in f)) f[k] = t; l[k] = t; if ($4 == "LOADING") n[$2]++
		  if ($2 > m) m = $2 }
		END { for (s = 1; s <= m; s++)
			printf "swarm %d: new %.0f-%.0f, %d loads %.0f-%.0f, modified %.0f-%.0f\n", s,
				f[s, "NEW"], l[s, "NEW"], n[s], f[s, "LOADING"], l[s, "LOADED"],
				f[s, "MODIFIED"], l[s, "MODIFIED"] }'
	# The events of the first 400 messages, for a timeline (the console is
	# slow; a swarm's NEW events alone can be 4096 lines).
	echo "TRACE-BEGIN"
	awk 'NR <= 2 { print; next }
		!($3 in seen) { if (n >= 400) next; seen[$3] = 1; n++ }
		{ print }' /sys/kernel/debug/swarmlog/r/replay_trace
	echo "TRACE-END"
	line="RESULT width=$width"
	for k in messages swarms loads cache_hits suspended retransferred skipped peak_in_flight duration_us peak_bytes load_wait_us load_us modify_slept_us tail_us; do
		line="$line $k=$(status r replay_$k)"
	done
	line="$line enable_ms=$((t1 - t0))"
	[ "$(status r replay_state)" = done ] || fail "replay_state $(status r replay_state)"
	if [ "$sum" = 1 ]; then
		off=$(status r data_offset_bytes)
		echo 0 > $v/enable
		[ "$delay" = 0 ] || set_delay 0
		md5=$(dd if=/dev/md0 bs=1M iflag=skip_bytes skip="$off" 2>/dev/null | md5sum | cut -c1-32)
		line="$line md5=$md5"
	fi
	echo "$line"
	;;
limit)
	ios=$4
	shift 4
	# shellcheck disable=SC2086
	assemble_array $members
	cpu_snapshot > /tmp/cpu0
	for depth in "$@"; do
		fio --name=limit --filename=/dev/md0 --rw=randread --bs=8k --direct=1 --ioengine=libaio \
			--iodepth="$depth" --number_ios="$ios" --randseed=11 --output-format=terse \
			--terse-version=3 > /tmp/fio || fail "fio"
		echo "LIMIT depth=$depth ios=$(awk -F';' '{ print $6 / 8 }' /tmp/fio) ms=$(awk -F';' '{ print $9 }' /tmp/fio)"
	done
	cpu_snapshot > /tmp/cpu1
	cpu_top
	;;
*)
	fail "usage: replay-copy.sh write|replay|limit ..."
	;;
esac
