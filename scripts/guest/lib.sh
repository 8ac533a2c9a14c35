# SPDX-License-Identifier: GPL-2.0
# Shared helpers of the guest scripts (sourced; the VM copies it to /guest).

c=/sys/kernel/config/swarmlog

# GNU dd: busybox's ignores oflag=direct (its writes go through the page
# cache), and its shell runs applets before PATH, so name it here.
dd() { /usr/bin/dd "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
expect_fail() { if sh -c "$1" 2>/dev/null; then fail "accepted: $1"; fi; }
status() { sed -n "s/^$2 //p" "$c/$1/status"; }

# make_array LEVEL [MEMBER...]: md0 over the members (default: vda and vdb
# for raid1, vda to vdd for raid0), no initial resync.
make_array() {
	# CHUNK_KB in the environment: raid0's and raid5's chunk size (default
	# 64); JOURNAL: raid5's write journal device (none if unset).
	level=$1
	shift
	if [ $# = 0 ]; then
		case "$level" in
		1) set -- /dev/vda /dev/vdb ;;
		*) set -- /dev/vda /dev/vdb /dev/vdc /dev/vdd ;;
		esac
	fi
	case "$level" in
	1) mdadm --create /dev/md0 --run --assume-clean --level=1 --raid-devices=$# \
		--metadata=1.2 "$@" >/dev/null 2>&1 ;;
	0) mdadm --create /dev/md0 --run --level=0 --raid-devices=$# --chunk="${CHUNK_KB:-64}" \
		--metadata=1.2 "$@" >/dev/null 2>&1 ;;
	# No initial resync: the members start zeroed, as parity over zeros.
	5) mdadm --create /dev/md0 --run --assume-clean --level=5 --raid-devices=$# \
		--chunk="${CHUNK_KB:-64}" --metadata=1.2 ${JOURNAL:+--write-journal "$JOURNAL"} \
		"$@" >/dev/null 2>&1 ;;
	*) false ;;
	esac || fail "mdadm --create level $level"
	echo "md0: raid$level over $*, $(($(cat /sys/block/md0/size) / 2048)) MiB"
}

# assemble_array [MEMBER...]: md0 again after a reboot (default: the VM's
# disks).
assemble_array() {
	if [ $# = 0 ]; then
		for d in /dev/vd[a-d]; do [ "$d" = "$(log_device)" ] || set -- "$@" "$d"; done
	fi
	mdadm --assemble /dev/md0 "$@" >/dev/null 2>&1 ||
		mdadm --assemble --scan >/dev/null 2>&1 || fail "mdadm --assemble"
}

# delayed_members MS [WRITE_MS]: each of the VM's disks (but a log disk) behind dm-delay,
# reads delayed by MS milliseconds, writes by WRITE_MS (default 0); prints
# the new devices. MS 0 and no WRITE_MS: the disks themselves.
delayed_members() {
	for d in /dev/vd?; do
		[ "$d" != "$(log_device)" ] || continue
		if [ "$1" = 0 ] && [ "${2:-0}" = 0 ]; then
			echo "$d"
			continue
		fi
		n=delay_${d#/dev/}
		dmsetup create "$n" --table "0 $(cat /sys/block/${d#/dev/}/size) delay $d 0 $1 $d 0 ${2:-0}" ||
			fail "dm-delay on $d"
		# No udev here: make the /dev/mapper node.
		dmsetup mknodes "$n"
		echo "/dev/mapper/$n"
	done
}

# set_delay MS: change the read delay of every dm-delay member.
set_delay() {
	for n in $(dmsetup ls 2>/dev/null | awk '/^delay_/ { print $1 }'); do
		d=/dev/${n#delay_}
		dmsetup suspend "$n" &&
			dmsetup reload "$n" --table "0 $(cat /sys/block/${d#/dev/}/size) delay $d 0 $1 $d 0 0" &&
			dmsetup resume "$n" || fail "dm-delay reload of $n"
	done
}

# log_device: the VM's log device: its log disk (scripts/vm --log-disk, the
# virtio disk with serial swlog) if it has one, else pmem0.
# (The serial read with the shell's read: no process, many calls.)
log_device() {
	local s serial
	for s in /sys/block/vd*/serial; do
		serial=""
		read -r serial <"$s" 2>/dev/null || true
		[ "$serial" = swlog ] || continue
		s=${s%/serial}
		echo "/dev/${s##*/}"
		return
	done
	echo /dev/pmem0
}

# log_head: the log's header, CP slots and intent (the first 16 KiB of
# the log device covers them on either medium), as a sum.
log_head() { dd if="$(log_device)" bs=4096 count=4 iflag=direct 2>/dev/null | md5sum; }

# perf_begin: with /guest/perf.tgz (the host's lib.sh perf_tarball), perf
# unpacked and recording the whole VM (cpu-clock, call graphs) into
# /tmp/perf.data, its pid in $perf; nothing without it. perf_end stops it.
perf_begin() {
	perf=""
	[ -e /guest/perf.tgz ] || return 0
	tar -xzf /guest/perf.tgz -C /
	echo 0 > /proc/sys/kernel/kptr_restrict
	echo -1 > /proc/sys/kernel/perf_event_paranoid
	perf record -q -a -g -e cpu-clock -F 2000 -o /tmp/perf.data &
	perf=$!
	sleep 2
}
perf_end() {
	[ -n "${perf:-}" ] || return 0
	kill -INT "$perf"
	wait "$perf" || true
}

# refused_with ERROR MESSAGE SEQ SUMCMD: enable of the configured volume x
# must fail with ERROR (strerror's text), the kernel log saying MESSAGE,
# replay_state corrupt naming record SEQ, no disk exposed, and the log as
# SUMCMD summed it before.
refused_with() {
	before=$($4)
	if echo 1 > $c/x/enable 2>/tmp/err; then fail "enable accepted a log it must refuse ($2)"; fi
	grep -q "$1" /tmp/err || fail "enable failed, but not with '$1': $(cat /tmp/err)"
	dmesg | grep -F "${2%%:*}" | tail -1
	dmesg | grep -qF "$2" || fail "the kernel log does not say: $2"
	[ "$(status x replay_state)" = corrupt ] || fail "replay_state $(status x replay_state)"
	[ "$(status x replay_corrupt_seq)" = "$3" ] || fail "replay_corrupt_seq $(status x replay_corrupt_seq)"
	[ -z "$(cat $c/x/disk)" ] && [ ! -e /sys/block/swarmlog0 ] || fail "a disk was exposed"
	[ "$($4)" = "$before" ] || fail "the log changed"
}

# refused_corrupt SEQ OFFSET SUMCMD: enable of a volume x on the log
# device must be refused as corrupt (EUCLEAN) naming record SEQ at log
# offset OFFSET, with no disk exposed and the log as SUMCMD summed it
# before (WIDTH in the environment: its swarm_width).
refused_corrupt() {
	volume x
	[ -z "${WIDTH:-}" ] || echo "$WIDTH" > $c/x/swarm_width
	[ -z "${CHECK_ALL:-}" ] || echo 1 > $c/x/check_every_record
	refused_with "Structure needs cleaning" "log corrupt: the record at log offset $2 (seq $1)" "$1" "$3"
	echo "refused: EUCLEAN, record $1 named, no disk, log unchanged"
}

# refused_damaged SEQ OFFSET WHERE SUMCMD: enable of the configured volume
# x must fail with EIO, the kernel log saying "log damaged" for record SEQ
# at log offset OFFSET that "lies on WHERE", with no disk exposed and the
# log as SUMCMD summed it before.
refused_damaged() {
	refused_with "Input/output error" "log damaged: the record at log offset $2 (seq $1) lies on $3" "$1" "$4"
	echo "refused: EIO, record $1 named, on $3, no disk, log unchanged"
}

# volume NAME: a configured volume on the log device (log_device) and md0.
volume() {
	mkdir -p "$c/$1"
	log_device > "$c/$1/log"
	echo /dev/md0 > "$c/$1/array"
}

# fresh_volume NAME: md raid1 over the first two disks, the module loaded
# without timed CPs (the records stay in the log until a CP is asked for),
# volume NAME formatted and enabled; its disk in $dev.
fresh_volume() {
	make_array 1
	insmod /lib/swarmlog/swarmlog.ko cp_interval_ms=3600000 || fail insmod
	volume "$1"
	echo 1 > "$c/$1/format" || fail format
	echo 1 > "$c/$1/enable" || fail enable
	dev=/dev/$(cat "$c/$1/disk")
}

# dump_tags DEV SECTORS LABEL: what each of the first SECTORS sectors of
# DEV holds, for the host to check against the acknowledged writes
# (scripts/crash-check): a torture write fills each of its sectors with its
# tag (c1w0i7) padded with spaces; "TAGS LABEL FIRST COUNT TAG" for each
# run of sectors with one tag (ZERO: never written), then "TAGS-END LABEL
# SECTORS".
dump_tags() {
	dd if="$1" bs=1M count=$(($2 / 2048)) iflag=direct 2>/dev/null | tr '\000\n' '. ' | fold -w 512 |
		awk -v l="$3" '
			{ t = ($1 ~ /^\.+$/) ? "ZERO" : $1
			  if (NR == 1) { first = 0; last = t }
			  else if (t != last) { print "TAGS " l " " first " " NR - 1 - first " " last; first = NR - 1; last = t } }
			END { if (NR) print "TAGS " l " " first " " NR - first " " last; print "TAGS-END " l " " NR + 0 }'
}

# job NAME OPTION...: a section of a fio job file; each section waits for
# the ones before it (stonewall): the tests run one after the other.
job() {
	printf '[%s]\nstonewall\n' "$1"
	shift
	printf '%s\n' "$@"
}

# fio_terse RUN TARGET: the jobs of /tmp/jobs.fio run (one fio process),
# each test's terse (version 3) line printed as "FIO RUN TARGET TEST LINE".
fio_terse() {
	fio --output-format=terse --terse-version=3 /tmp/jobs.fio > /tmp/fio || fail "fio on $2"
	grep '^3;' /tmp/fio | while IFS= read -r l; do
		n=${l#3;*;}
		echo "FIO $1 $2 ${n%%;*} $l"
	done
}

# rotated RUN WORD...: the words, rotated left by RUN - 1 (the benchmarks'
# targets, their order changed each round).
rotated() {
	k=$((($1 - 1) % ($# - 1)))
	shift
	while [ "$k" -gt 0 ]; do
		x=$1
		shift
		set -- "$@" "$x"
		k=$((k - 1))
	done
	echo "$@"
}

# Marker blocks: marker I is "block I" repeated over 4 KiB.
marker() { yes "block $1" | head -c 4096; }
# marker_ok DEV I: block I of DEV holds marker I.
marker_ok() {
	[ "$(dd if="$1" bs=4096 skip="$2" count=1 iflag=direct 2>/dev/null | md5sum)" = \
		"$(marker "$2" | md5sum)" ]
}
# put_marker DEV I [DD-CONV]: marker I into block I of DEV, durably.
put_marker() {
	marker "$2" > /tmp/b
	dd if=/tmp/b of="$1" bs=4096 seek="$2" count=1 oflag=direct,dsync ${3:+conv=$3} 2>/dev/null
}

# wc_up NAME ORIGIN: dm-writecache (pmem mode, 4 KiB blocks, default
# watermarks) on pmem0 over ORIGIN; its device in $dev. It takes an
# all-zero superblock for a new cache: the start of the pmem is zeroed.
wc_up() {
	dd if=/dev/zero of=/dev/pmem0 bs=1M count=4 oflag=direct 2>/dev/null || fail "wiping pmem0"
	dmsetup create "$1" --table "0 $(blockdev --getsz "$2") writecache p $2 /dev/pmem0 4096 0" ||
		fail "dm-writecache on $2"
	dmsetup mknodes "$1"
	dev=/dev/mapper/$1
}

# torture_writer J SEED CYCLE DEV OFLAG: writer J of a torture, until
# /tmp/stop exists: random writes of 1 to 16 sectors (dd oflag=OFLAG) in
# its own region of DEV (REGION sectors from J * REGION), each sector
# filled with the write's tag cCYCLEwJiN padded with spaces; prints
# "START SECTOR COUNT TAG" before and "ACK SECTOR COUNT TAG" after each
# write, "WRITE-ERROR TAG: ..." (and creates /tmp/error) when one fails.
torture_writer() {
	j=$1 i=0 base=$(($1 * REGION))
	RANDOM=$(($2 + j))
	while [ ! -e /tmp/stop ]; do
		i=$((i + 1))
		n=$((1 + RANDOM % 16))
		s=$((base + RANDOM % (REGION - 16)))
		tag="c${3}w${j}i${i}"
		awk -v t="$tag" -v n=$n 'BEGIN { for (i = 0; i < n; i++) printf "%-511s\n", t }' > /tmp/p$j
		echo "START $s $n $tag"
		if dd if=/tmp/p$j of="$4" bs=512 seek=$s count=$n oflag="$5" conv=notrunc 2>/tmp/e$j; then
			echo "ACK $s $n $tag"
		else
			echo "WRITE-ERROR $tag: $(head -c 200 /tmp/e$j)"
			touch /tmp/error
		fi
	done
}

load_module() {
	grep -q '^swarmlog ' /proc/modules || insmod /lib/swarmlog/swarmlog.ko || fail "insmod"
}

# NVMe/TCP (scripts/vm --net: the server is 10.77.0.1, the client
# 10.77.0.2). The subsystem's NQN and serial number and the namespace's
# UUID and NGUID are fixed, so that an initiator reconnecting after the
# server's reboot finds the same subsystem and namespace.
NQN=nqn.2026-11.org.swarmlog:v0
NS_UUID=5a4d1c3e-7b2f-4e1a-9c6d-2b8f0e4a7d13
NS_NGUID=5a4d1c3e7b2f4e1a9c6d2b8f0e4a7d13
SERIAL=swarmlog-v0
# The client's host ID: nvme-fabrics refuses a second controller of the
# same host NQN with another host ID (nvme connect makes a new one each
# time otherwise), as with NVMe multipath's second path.
HOSTID=0f2c6a1e-3d4b-4c5a-8e7f-9a1b2c3d4e5f
NVMET=/sys/kernel/config/nvmet

# nvmet_export DEV [ADDR]: DEV as namespace 1 of subsystem $NQN (any host),
# on NVMe/TCP port 4420 at ADDR (default 10.77.0.1). Export after enable
# (the replay is over when enable returns).
nvmet_export() {
	s=$NVMET/subsystems/$NQN
	mkdir "$s" || fail "nvmet subsystem"
	echo 1 > "$s/attr_allow_any_host"
	echo "$SERIAL" > "$s/attr_serial"
	mkdir "$s/namespaces/1"
	printf '%s' "$1" > "$s/namespaces/1/device_path"
	echo "$NS_UUID" > "$s/namespaces/1/device_uuid"
	echo "$NS_NGUID" > "$s/namespaces/1/device_nguid"
	echo 1 > "$s/namespaces/1/enable" || fail "nvmet namespace on $1"
	p=$NVMET/ports/1
	mkdir "$p"
	echo tcp > "$p/addr_trtype"
	echo ipv4 > "$p/addr_adrfam"
	echo "${2:-10.77.0.1}" > "$p/addr_traddr"
	echo 4420 > "$p/addr_trsvcid"
	ln -s "$s" "$p/subsystems/$NQN" || fail "nvmet port"
}

# nvmet_unexport: the reverse, before disable.
nvmet_unexport() {
	rm -f "$NVMET/ports/1/subsystems/$NQN"
	rmdir "$NVMET/ports/1"
	echo 0 > "$NVMET/subsystems/$NQN/namespaces/1/enable"
	rmdir "$NVMET/subsystems/$NQN/namespaces/1" "$NVMET/subsystems/$NQN"
}

# nvme_attach [SECONDS [ADDR...]]: connects to $NQN on port 4420 at
# 10.77.0.1, trying for up to SECONDS (default 300: the server may still be
# booting or replaying); the namespace's block device in $ndev. With
# several ADDRs (an HA pair: only the active node exports), a keeper per
# address (nvme_path) connects to it whenever it has no controller there,
# each controller reconnecting for ever, until /tmp/stop exists: the
# paths of NVMe multipath, whose I/O waits while one of them reconnects.
nvme_attach() {
	attach_s=${1:-300}
	[ $# = 0 ] || shift
	if [ $# -le 1 ]; then
		i=0
		until nvme connect -t tcp -a "${1:-10.77.0.1}" -s 4420 -n "$NQN" \
			--hostnqn=nqn.2026-11.org.swarmlog:client --hostid="$HOSTID" --reconnect-delay=1 \
			--ctrl-loss-tmo=600 > /tmp/connect.out 2>&1; do
			i=$((i + 1))
			[ $i -lt "$attach_s" ] || fail "nvme connect: $(cat /tmp/connect.out)"
			sleep 1
		done
	else
		for a in "$@"; do nvme_path "$a" & done
	fi
	ndev=""
	i=0
	while [ -z "$ndev" ]; do
		# The namespace head (nvme0n1), not its hidden paths (nvme0c0n1).
		for d in /sys/block/nvme*n*; do
			case "${d##*/}" in *c*) continue ;; esac
			grep -qs "$NS_UUID" "$d/uuid" && ndev=/dev/${d##*/}
		done
		i=$((i + 1))
		[ -n "$ndev" ] || [ $i -lt $((attach_s * 10)) ] || fail "no namespace with uuid $NS_UUID: $(ls /sys/block)"
		[ -n "$ndev" ] || sleep 0.1
	done
}

# nvme_path ADDR: nvme_attach's keeper of the path to ADDR (a failed
# connect is tried again a second later, under set -e too).
nvme_path() {
	while [ ! -e /tmp/stop ]; do
		grep -qs "traddr=$1," /sys/class/nvme/nvme*/address ||
			nvme connect -t tcp -a "$1" -s 4420 -n "$NQN" \
				--hostnqn=nqn.2026-11.org.swarmlog:client --hostid="$HOSTID" --reconnect-delay=1 \
				--ctrl-loss-tmo=-1 > /dev/null 2>&1 || true
		sleep 1
	done
}

# drbd_conf DISK: DRBD resource r0 (/dev/drbd0, protocol C, internal
# metadata) over DISK between node a (10.77.0.1, scripts/vm --net
# LINK:1) and node b (10.77.0.2), for the in-kernel DRBD 8.4 with
# Debian's drbd-utils (drbdadm runs /usr/lib/drbd/drbdadm-84, found by
# PATH; drbdmeta locks in /var/lock). Timeouts for TCG, where a busy guest
# may not answer for a second or two: a peer is declared lost after
# ping-timeout (5 s) without an answer to a ping (every 2 s), or a request
# unanswered for 'timeout' (10 s).
drbd_conf() {
	export PATH=$PATH:/usr/lib/drbd
	mkdir -p /etc/drbd.d /var/lib/drbd /var/run/drbd /run/lock /var/lock
	cat > /etc/drbd.conf <<EOF
global { usage-count no; }
resource r0 {
	protocol C;
	net {
		timeout 100;
		connect-int 2;
		ping-int 2;
		ping-timeout 50;
	}
	on a {
		device /dev/drbd0;
		disk $1;
		address 10.77.0.1:7789;
		meta-disk internal;
	}
	on b {
		device /dev/drbd0;
		disk $1;
		address 10.77.0.2:7789;
		meta-disk internal;
	}
}
EOF
}

# wait_drbd WHAT SECONDS: until /proc/drbd shows WHAT (cs:Connected,
# ds:UpToDate/UpToDate, ...).
wait_drbd() {
	i=0
	until grep -q "$1" /proc/drbd; do
		i=$((i + 1))
		[ $i -lt $(($2 * 5)) ] || { cat /proc/drbd; fail "DRBD: no $1 in $2 s"; }
		sleep 0.2
	done
}

# wait_writes NAME: until volume NAME counts more writes than now (a
# client's writes arrive), for up to 10 minutes.
wait_writes() {
	w=$(status "$1" writes) i=0
	until [ "$(status "$1" writes)" -gt "$w" ]; do
		i=$((i + 1))
		[ $i -lt 6000 ] || fail "no write from the client in 10 minutes"
		sleep 0.1
	done
}

# wait_marker DEV I WHAT: until block I of DEV holds marker I (WHAT, the
# marker's name in the failure), for up to 10 minutes.
wait_marker() {
	i=0
	until marker_ok "$1" "$2"; do
		i=$((i + 1))
		[ $i -lt 3000 ] || fail "no $3 in 10 minutes"
		sleep 0.2
	done
}
