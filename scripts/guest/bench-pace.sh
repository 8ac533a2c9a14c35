# SPDX-License-Identifier: GPL-2.0
# make bench-pace, guest side (see scripts/bench-pace).
#   bench-pace.sh RUNTIME_S REGION_MB RUNS CACHE_MB SHARE...
# md raid0 over the VM's disks, the pmem as the log or the cache. RUNS
# rounds; in each, every target in turn (the order rotated by one each
# round), made afresh, fio's QD1 test (4 KiB random writes, O_DSYNC,
# psync, iodepth 1, RUNTIME_S seconds over the first REGION_MB MiB), torn
# down. Targets: swarmlog loaded with cp_share=SHARE (one target a SHARE;
# cache_max_mb=CACHE_MB, 0 for the module's default) and dm-writecache
# (pmem mode, 4 KiB blocks). Prints
#   FIO RUN TARGET qd1 TERSE   fio's terse (version 3) line
#   STATUS RUN TARGET KEY=V... swarmlog's counters after the test
# shellcheck source-path=SCRIPTDIR source=lib.sh
. /guest/lib.sh
set -e
runtime=$1 region=$2 runs=$3 cache=$4
shift 4
v=$c/v0
make_array 0 /dev/vda /dev/vdb
targets="$* wc"
for r in $(seq 1 "$runs"); do
	# shellcheck disable=SC2086
	for t in $(rotated "$r" $targets); do
		if [ "$t" = wc ]; then
			wc_up wc /dev/md0
		else
			args="cp_share=$t"
			[ "$cache" = 0 ] || args="$args cache_max_mb=$cache"
			# shellcheck disable=SC2086
			insmod /lib/swarmlog/swarmlog.ko $args || fail "insmod"
			volume v0
			echo 1 > "$v/format" || fail "format"
			echo 1 > "$v/enable" || fail "enable"
			dev=/dev/$(cat "$v/disk")
		fi
		printf '[global]\nfilename=%s\ndirect=1\nrandseed=7\n' "$dev" > /tmp/jobs.fio
		job qd1 size="${region}M" runtime="$runtime" time_based rw=randwrite bs=4k \
			ioengine=psync sync=dsync iodepth=1 >> /tmp/jobs.fio
		echo "bench-pace: run $r: $t"
		fio_terse "$r" "$t"
		if [ "$t" = wc ]; then
			dmsetup remove wc || fail "removing wc"
		else
			line="STATUS $r $t"
			for key in writes cp_count cp_blocks cp_duration_us cp_paced_us log_full_waits \
				checksums_ahead; do
				line="$line $key=$(status v0 "$key")"
			done
			echo "$line"
			echo 0 > "$v/enable"
			rmdir "$v"
			rmmod swarmlog
		fi
	done
done
echo "bench-pace: done"
