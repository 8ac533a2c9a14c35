# SPDX-License-Identifier: GPL-2.0
#
# Top-level targets of swarmlog. The module itself is built by Kbuild (the
# kernel reads Kbuild, not this file, when it builds the module).
#
#   make demo     the main job, end to end, for a person to watch
#   make check    every test; ends with "N passed, N failed" (each
#                 scenario's short fixed-seed profile, within CI's time)
#   make check-full  every test with the scenarios' long profiles (more
#                 power-cut cycles, larger workloads; hours under TCG)
#   make bench    swarmlog (with the benchmark's and the default module
#                 parameters) against the raw array, dm-writecache and
#                 dm-writecache over dm-integrity: QD1 latency, IOPS and
#                 MB/s plain and O_DSYNC, a region larger than the pmem, CP
#                 bandwidth, time to available after a power cut; medians
#                 and [min-max] of 5 interleaved rounds (a benchmark: prints
#                 and keeps a table, about 35 minutes;
#                 BENCH="--runs 3 --runtime 10 ..." to change it)
#   make bench-blocklog  the log on an SSD without volatile cache against
#                 dm-writecache in SSD mode, md's raid5 write journal and
#                 the raw raid5 array: QD1 O_DSYNC latency, QD32x4 IOPS;
#                 medians of 5 interleaved rounds (a benchmark; prints and
#                 keeps a table; BENCH_BLOCKLOG="--runs 3 ..." to change it)
#   make bench-ha  what the HA pair's mirrored log (DRBD protocol C)
#                 costs a QD1 O_DSYNC write against the single node's block
#                 log on the same SSD (a benchmark: prints and keeps a
#                 table; BENCH_HA="--rounds 3 ..." to change it)
#   make bench-replay   replay time against swarm_width and the physical
#                 limit (a benchmark: prints and keeps a table)
#   make bench-pace  QD1 O_DSYNC latency with the CP paced at several
#                 cp_share values against dm-writecache (a benchmark:
#                 prints and keeps a table; BENCH_PACE="--runtime 15
#                 --shares '100 50' ..." to change it)
#   make torture  power cuts at random moments, replay, every acknowledged
#                 write checked (TORTURE="--cycles 200 --seed 5 ..." to
#                 change the profile; see scripts/torture)
#   make nvme-torture  the appliance over NVMe/TCP: a client VM's writers
#                 through the server VM's power cuts and clean stops,
#                 every acknowledged write checked on the server and over
#                 the network (NVME_TORTURE="--cycles 20 --seed 5
#                 --clean-every 4 ..." to change the profile; see
#                 scripts/nvme-torture)
#   make ha       the HA pair: two server VMs (the log mirrored by DRBD
#                 protocol C, the array on shared disks) and a client
#                 over NVMe multipath; the active node killed at random,
#                 the standby takes over (replay), every acknowledged write
#                 checked, the roles alternating (HA="--cycles 10 --seed 5
#                 ..." to change the profile; see scripts/ha-torture)
#   make fuzz     the coverage-guided fuzz target of the format code
#                 (tools/fuzz, libFuzzer) for 10 minutes, its corpus kept
#                 (FUZZ="--time 3600" to change it; see scripts/fuzz)
#   make module   build swarmlog.ko against the test kernel (clippy, -Dwarnings)
#   make kernel   build the test kernel and the build root it needs
#   make vm SCRIPT=guest.sh   run a script in the test VM (see scripts/vm)
#   make clean    remove module build products (the cache stays)
#
# Big artefacts live in $(SWARMLOG_CACHE) (default /var/cache/swarmlog).

.PHONY: demo check check-full check-blocklog bench bench-blocklog bench-ha bench-replay bench-pace torture nvme-torture ha fuzz module kernel vm clean

demo:
	scripts/demo

check:
	scripts/check

check-full:
	SWARMLOG_PROFILE=full scripts/check

# The block-log scenarios alone, in their full profiles.
check-blocklog:
	SWARMLOG_PROFILE=full scripts/check block-log

bench:
	scripts/bench $(BENCH)

bench-blocklog:
	scripts/bench-blocklog $(BENCH_BLOCKLOG)

bench-ha:
	scripts/bench-ha $(BENCH_HA)

bench-replay:
	scripts/bench-replay

bench-pace:
	scripts/bench-pace $(BENCH_PACE)

torture:
	scripts/torture $(TORTURE)

nvme-torture:
	scripts/nvme-torture $(NVME_TORTURE)

ha:
	scripts/ha-torture $(HA)

fuzz:
	scripts/fuzz $(or $(FUZZ),--time 600 --keep-corpus)

module:
	scripts/build-module

kernel:
	scripts/build-kernel

vm:
	scripts/vm $(SCRIPT)

clean:
	rm -f swarmlog.ko *.o *.mod *.mod.c .*.cmd modules.order Module.symvers
	find rust \( -name "*.o" -o -name ".*.cmd" -o -name "*.d" \) -delete
