# SPDX-License-Identifier: GPL-2.0
# make bench over NVMe/TCP, guest side (scripts/bench-nvme). Two VMs on a
# private link (scripts/vm --net).
#   bench-nvme.sh server RUNS REGION_MB
#       md raid0 over 2 disks (64 KiB chunks) and pmem0. RUNS rounds; in
#       each, every target in turn (the order rotated by one each round):
#         md         /dev/md0 itself
#         swarmlog   insmod swarmlog.ko cache_max_mb=512; a volume
#                    formatted and enabled on pmem0 and md0
#         writecache dm-writecache, pmem mode, 4 KiB blocks, on pmem0 and
#                    md0
#       made afresh, exported with nvmet as subsystem $NQN_BASE:TARGET-RUN
#       (namespace 1, TCP port 4420 on 10.77.0.1), until the client's done
#       marker (lib.sh put_marker: the block after the first REGION_MB MiB)
#       is in it; then
#       unexported and torn down.
#   bench-nvme.sh client RUNS RUNTIME_S REGION_MB
#       for each round and target, in the same order: connect to its
#       subsystem (retrying until the server exports it), run the tests,
#       write the done marker, disconnect. Tests (fio, direct, over the
#       first REGION_MB MiB of the namespace, RUNTIME_S each):
#         qd1          4 KiB random writes, O_DSYNC, psync, iodepth 1
#         qd32x4       4 KiB random writes, libaio, iodepth 32, 4 jobs
#         qd32x4_dsync the same with O_DSYNC
#       Prints "NVME RUN TARGET TEST TERSE" (fio's terse version 3 line).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. /guest/lib.sh
set -e
NQN_BASE=$NQN
targets="md swarmlog writecache"
v=$c/v0
# order RUN: the targets, rotated by RUN - 1.
order() {
	rr=$1
	# shellcheck disable=SC2086
	set -- $targets
	i=1
	while [ $i -lt $(((rr - 1) % 3 + 1)) ]; do
		first=$1
		shift
		set -- "$@" "$first"
		i=$((i + 1))
	done
	echo "$@"
}

case "$1" in
server)
	runs=$2 region=$3
	mark=$((region * 256))
	make_array 0 /dev/vda /dev/vdb
	# Every block the tests touch written once first, so no target pays
	# for the host allocating its image files (as make bench does).
	fio --name=pre --filename=/dev/md0 --rw=write --bs=1M --direct=1 --ioengine=libaio \
		--iodepth=8 --size=$((region + 1))M --output-format=terse > /dev/null || fail "precondition"
	dd if=/dev/zero of=/dev/pmem0 bs=1M count=$(($(cat /sys/block/pmem0/size) / 2048)) oflag=direct 2>/dev/null ||
		fail "precondition pmem0"
	r=1
	while [ $r -le "$runs" ]; do
		for t in $(order $r); do
			case "$t" in
			md) dev=/dev/md0 ;;
			swarmlog)
				insmod /lib/swarmlog/swarmlog.ko cache_max_mb=512 || fail "insmod"
				volume v0
				echo 1 > $v/format || fail "format"
				echo 1 > $v/enable || fail "enable"
				dev=/dev/$(cat $v/disk)
				;;
			writecache)
				wc_up wc /dev/md0
				;;
			esac
			# An earlier target's marker must not show through.
			dd if=/dev/zero of="$dev" bs=4096 seek=$mark count=1 oflag=direct,dsync 2>/dev/null ||
				fail "clearing the marker on $dev"
			NQN=$NQN_BASE:$t-$r
			nvmet_export "$dev"
			echo "bench-nvme: run $r: $t ($dev) exported as $NQN"
			i=0
			until marker_ok "$dev" $mark; do
				i=$((i + 1))
				[ $i -lt 3600 ] || fail "no done marker from the client in 30 minutes"
				sleep 0.5
			done
			nvmet_unexport
			case "$t" in
			swarmlog)
				echo "STATUS $r $t writes=$(status v0 writes) flushes=$(status v0 flushes) cp_count=$(status v0 cp_count)"
				echo 0 > $v/enable
				rmdir $v
				rmmod swarmlog
				;;
			writecache) dmsetup remove wc || fail "removing dm-writecache" ;;
			esac
		done
		r=$((r + 1))
	done
	echo "bench-nvme: server done"
	;;
client)
	runs=$2 runtime=$3 region=$4
	mark=$((region * 256))
	timed="size=${region}M runtime=$runtime time_based"
	# shellcheck disable=SC2086
	{
		printf '[global]\nfilename=%s\ndirect=1\nrandseed=7\ngroup_reporting\n' '${NDEV}'
		job qd1 $timed rw=randwrite bs=4k ioengine=psync sync=dsync iodepth=1
		job qd32x4 $timed rw=randwrite bs=4k ioengine=libaio iodepth=32 numjobs=4 ramp_time=1
		job qd32x4_dsync $timed rw=randwrite bs=4k ioengine=libaio sync=dsync iodepth=32 numjobs=4 ramp_time=1
	} > /tmp/jobs.fio
	# The link's round trip, for the table's conditions (the server is up
	# once its first subsystem accepts a connection).
	NQN=$NQN_BASE:$(order 1 | cut -d' ' -f1)-1
	nvme_attach 1800
	nvme disconnect -n "$NQN" > /dev/null || fail "nvme disconnect"
	while [ -e "$ndev" ]; do sleep 0.1; done
	echo "LINK $(ping -c 20 -i 0.2 -q 10.77.0.1 2>&1 | sed -n 's/.*min\/avg\/max[^=]*= *\([0-9./]*\).*/\1/p')"
	r=1
	while [ $r -le "$runs" ]; do
		for t in $(order $r); do
			NQN=$NQN_BASE:$t-$r
			nvme_attach 1800
			q=/sys/block/${ndev#/dev/}/queue
			echo "bench-nvme: run $r: $t as $ndev (fua $(cat $q/fua), write_cache $(cat $q/write_cache))"
			NDEV=$ndev fio --output-format=terse --terse-version=3 /tmp/jobs.fio > /tmp/fio ||
				fail "fio on $t over NVMe/TCP"
			grep '^3;' /tmp/fio | while IFS= read -r l; do
				n=${l#3;*;}
				echo "NVME $r $t ${n%%;*} $l"
			done
			put_marker "$ndev" $mark || fail "done marker"
			nvme disconnect -n "$NQN" > /dev/null || fail "nvme disconnect"
			# The namespace's device must be gone before the next
			# connect looks for the same UUID.
			while [ -e "$ndev" ]; do sleep 0.1; done
		done
		r=$((r + 1))
	done
	echo "bench-nvme: client done"
	;;
*)
	fail "bench-nvme.sh: unknown mode $1"
	;;
esac
