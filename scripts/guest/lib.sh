# SPDX-License-Identifier: GPL-2.0
# Shared helpers of the guest scripts (sourced; the VM copies it to /guest).

c=/sys/kernel/config/swarmlog

# GNU dd: busybox's ignores oflag=direct (its writes go through the page
# cache), and its shell runs applets before PATH, so name it here.
dd() { /usr/bin/dd "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
expect_fail() { if sh -c "$1" 2>/dev/null; then fail "accepted: $1"; fi; }
status() { sed -n "s/^$2 //p" "$c/$1/status"; }

# make_array LEVEL: md0 over the VM's disks, no initial resync.
make_array() {
	case "$1" in
	1) mdadm --create /dev/md0 --run --assume-clean --level=1 --raid-devices=2 \
		--metadata=1.2 /dev/vda /dev/vdb >/dev/null 2>&1 ;;
	0) mdadm --create /dev/md0 --run --level=0 --raid-devices=4 --chunk=64 \
		--metadata=1.2 /dev/vda /dev/vdb /dev/vdc /dev/vdd >/dev/null 2>&1 ;;
	esac || fail "mdadm --create level $1"
	echo "md0: raid$1, $(($(cat /sys/block/md0/size) / 2048)) MiB"
}

# assemble_array: md0 again after a reboot.
assemble_array() {
	mdadm --assemble /dev/md0 /dev/vd[a-d] >/dev/null 2>&1 ||
		mdadm --assemble --scan >/dev/null 2>&1 || fail "mdadm --assemble"
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
