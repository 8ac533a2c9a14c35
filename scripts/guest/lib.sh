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
	0) mdadm --create /dev/md0 --run --level=0 --raid-devices=$# --chunk=64 \
		--metadata=1.2 "$@" >/dev/null 2>&1 ;;
	esac || fail "mdadm --create level $level"
	echo "md0: raid$level over $*, $(($(cat /sys/block/md0/size) / 2048)) MiB"
}

# assemble_array [MEMBER...]: md0 again after a reboot (default: the VM's
# disks).
assemble_array() {
	[ $# = 0 ] && set -- /dev/vd[a-d]
	mdadm --assemble /dev/md0 "$@" >/dev/null 2>&1 ||
		mdadm --assemble --scan >/dev/null 2>&1 || fail "mdadm --assemble"
}

# delayed_members MS [WRITE_MS]: each of the VM's disks behind dm-delay,
# reads delayed by MS milliseconds, writes by WRITE_MS (default 0); prints
# the new devices. MS 0 and no WRITE_MS: the disks themselves.
delayed_members() {
	for d in /dev/vd?; do
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

# volume NAME: a configured volume on pmem0 and md0.
volume() {
	mkdir -p "$c/$1"
	echo /dev/pmem0 > "$c/$1/log"
	echo /dev/md0 > "$c/$1/array"
}

load_module() {
	grep -q '^swarmlog ' /proc/modules || insmod /lib/swarmlog/swarmlog.ko || fail "insmod"
}
