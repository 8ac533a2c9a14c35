# SPDX-License-Identifier: GPL-2.0
# Devices that do not match, guest side (scenarios/device-mismatch): a log
# bound to another array, a log device too small or without DAX, an array
# shrunk or grown since format. Each is refused with a clear error, or
# handled, and nothing is lost.
. /guest/lib.sh
set -e
load_module
v=$c/a
sectors() { cat /sys/block/$1/size; }
linear() { # linear NAME DEV SECTORS: dm-linear over the first SECTORS of DEV
	dmsetup create "$1" --table "0 $3 linear $2 0" && dmsetup mknodes "$1"
}
refused() { # refused WHAT ERRNO-TEXT: the last enable/format failed so
	grep -q "$2" /tmp/err || fail "$1: refused, but not with '$2': $(cat /tmp/err)"
	echo "refused as it must be: $1 ($2; kernel log: $(dmesg | grep swarmlog | tail -1 | sed 's/^\[[^]]*\] //'))"
}
pattern() { awk -v t="pattern-$1" 'BEGIN { printf "%-4095s\n", t }'; }

make_array 1
mdadm --create /dev/md1 --run --assume-clean --level=1 --raid-devices=2 --metadata=1.2 \
	/dev/vdc /dev/vdd >/dev/null 2>&1 || fail "md1"
half=$(($(sectors md0) / 2))
linear md0half /dev/md0 $half

# md1 formatted with pmem0 first (volume b), so that it has swarmlog
# metadata of its own; formatting volume a then binds pmem0 to md0half.
volume b
echo /dev/md1 > $c/b/array
echo 1 > $c/b/format
rmdir $c/b

# Volume a: log pmem0 on half of md0 (so that md0 itself is the same array
# grown); a known block written and committed.
volume a
echo /dev/mapper/md0half > $v/array
echo 1 > $v/format
echo 1 > $v/enable
pattern 7 > /tmp/p
dd if=/tmp/p of=/dev/$(cat $v/disk) bs=4096 seek=7 count=1 oflag=direct,dsync 2>/dev/null
echo 0 > $v/enable
pmem=$(dd if=/dev/pmem0 bs=1M count=1 2>/dev/null | md5sum)

# The log bound to another array.
echo /dev/md1 > $v/array
if echo 1 > $v/enable 2>/tmp/err; then fail "enable with the log of another array"; fi
refused "log of another array" "Invalid argument"
dmesg | grep -q "belongs to another array" || fail "the kernel log does not say why"

# The array shrunk: a quarter of md0 instead of half.
linear md0quarter /dev/md0 $((half / 2))
echo /dev/mapper/md0quarter > $v/array
if echo 1 > $v/enable 2>/tmp/err; then fail "enable on a shrunk array"; fi
refused "array shrunk since format" "Invalid argument"
dmesg | grep -q "smaller than when it was formatted" || fail "the kernel log does not say why"

# A log device without DAX (vdc, free once md1 is stopped): a block log
# could live there, but nothing of swarmlog's is on it.
mdadm --stop /dev/md1 >/dev/null 2>&1 || fail "mdadm --stop md1"
echo /dev/vdc > $v/log
echo /dev/mapper/md0half > $v/array
if echo 1 > $v/enable 2>/tmp/err; then fail "enable with an unformatted block log"; fi
refused "block log device never formatted" "Invalid argument"
# The pmem log copied onto it: a log of the other medium, refused by name.
dd if=/dev/pmem0 of=/dev/vdc bs=1M count=1 oflag=direct 2>/dev/null || fail "copying the log"
if echo 1 > $v/enable 2>/tmp/err; then fail "enable with a pmem log on a block device"; fi
refused "pmem log on a block device" "Wrong medium type"
dmesg | grep -q "holds a log written for pmem" || fail "the kernel log does not say why"

# A log device too small: 8 KiB of pmem0 (dm-linear keeps DAX).
linear tiny /dev/pmem0 16
echo /dev/mapper/tiny > $v/log
if echo 1 > $v/format 2>/tmp/err; then fail "format on an 8 KiB log"; fi
refused "log device too small" "No space left\|not supported\|Invalid argument"
dmsetup remove tiny

# Nothing of the above changed the log or the data.
[ "$(dd if=/dev/pmem0 bs=1M count=1 2>/dev/null | md5sum)" = "$pmem" ] || fail "the log changed"
echo /dev/pmem0 > $v/log
echo 1 > $v/enable
[ "$(dd if=/dev/$(cat $v/disk) bs=4096 skip=7 count=1 iflag=direct 2>/dev/null | md5sum)" = "$(pattern 7 | md5sum)" ] ||
	fail "block 7 lost"
echo 0 > $v/enable
echo "log and data unchanged after the refusals"

# The array grown: all of md0 (the first half is the formatted array),
# once the dm devices over it are gone (they hold it open).
dmsetup remove md0quarter
dmsetup remove md0half
echo /dev/md0 > $v/array
echo 1 > $v/enable || fail "enable on the grown array"
[ "$(dd if=/dev/$(cat $v/disk) bs=4096 skip=7 count=1 iflag=direct 2>/dev/null | md5sum)" = "$(pattern 7 | md5sum)" ] ||
	fail "block 7 lost on the grown array"
echo "grown array: enabled with its formatted size ($(($(sectors $(cat $v/disk)) / 2048)) MiB of $(($(sectors md0) / 2048)) MiB), data intact"
echo 0 > $v/enable
rmdir $v
