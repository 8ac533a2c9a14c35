# SPDX-License-Identifier: GPL-2.0
# The swarmlog device on a real md array (raid LEVEL), with the pmem log:
# mixed-size writes with verify (sub-block and unaligned within a block),
# concurrent writers, discards, again after disable/enable, data on the raw
# array after a CP, and a block corrupted behind swarmlog's back.
#   device.sh LEVEL
. /guest/lib.sh
set -e
level=$1
make_array "$level"
load_module
volume v0
v=$c/v0
expect_fail "echo 1 > $v/enable"           # not formatted yet
expect_fail "echo 2 > $v/format"
echo 1 > $v/format
echo 1 > $v/enable
expect_fail "echo 1 > $v/enable"           # enable twice
expect_fail "echo 1 > $v/format"           # format while enabled
expect_fail "echo /dev/vdc > $v/log"       # change while enabled
dev=/dev/$(cat $v/disk)
[ -b "$dev" ] || fail "no $dev"
echo "$dev: $(($(cat /sys/block/$(cat $v/disk)/size) / 2048)) MiB"

job="--filename=$dev --direct=1 --ioengine=libaio --iodepth=16 --numjobs=4 --size=8M
 --offset_increment=8M --rw=randwrite --bssplit=512/10:1k/10:3584/10:4k/30:8k/20:64k/10:256k/10
 --ba=512 --verify=crc32c --verify_fatal=1 --randrepeat=1 --group_reporting"
fio --name=mixed $job --output=/tmp/fio1 || { cat /tmp/fio1; fail "fio write+verify"; }
grep -E "WRITE:|READ:" /tmp/fio1
echo "mixed-size writes verified through the cache"

# Many writers at once, overlapping blocks, no verify: must simply be safe.
fio --name=storm --filename=$dev --direct=1 --ioengine=libaio --iodepth=32 --numjobs=8 \
	--size=4M --offset=64M --rw=randwrite --bs=4k --bssplit=512/30:4k/40:16k/30 --ba=512 \
	--output=/tmp/fio2 || { cat /tmp/fio2; fail "fio storm"; }
echo "8 jobs x iodepth 32: ok"
expect_fail "rmmod swarmlog"               # busy while a volume exists
echo "status: $(cat $v/status | tr '\n' ' ')"
if [ "$level" = 0 ]; then
	# The 32 MiB log cannot hold 64 MiB of writes: CPs freed space.
	[ "$(status v0 cp_count)" -ge 2 ] || fail "expected CPs on log fill"
fi

# Discard reads back as zeroes.
dd if=/dev/urandom of=$dev bs=4096 seek=30000 count=4 oflag=direct 2>/dev/null
blkdiscard -o $((30000 * 4096)) -l 16384 $dev || fail "blkdiscard"
[ "$(dd if=$dev bs=4096 skip=30000 count=4 iflag=direct 2>/dev/null | od -An -v -tx1 | tr " " "\n" | sort -u | tr -d ' \n')" = 00 ] ||
	fail "discarded range does not read as zeroes"
echo "discard: reads back as zeroes"

# A known block (outside the fio areas), to find on the raw array after the CP.
dd if=/dev/urandom of=/tmp/blk bs=4096 count=1 2>/dev/null
dd if=/tmp/blk of=$dev bs=4096 seek=40000 count=1 oflag=direct 2>/dev/null
echo 0 > $v/enable
[ -z "$(cat $v/disk)" ] || fail "disk still named after disable"
echo 1 > $v/enable
[ "$(status v0 log_used_bytes)" = 0 ] || fail "log not empty after the final CP"
fio --name=mixed $job --verify_only --output=/tmp/fio3 || { cat /tmp/fio3; fail "verify after disable/enable"; }
echo "verified again after disable/enable (from the array)"
cat $v/status | tr '\n' ' '; echo

data_blocks=$(status v0 data_blocks)
table_blocks=$(( (data_blocks + 253) / 254 ))
at=$(( 1 + 2 * table_blocks + 40000 ))
echo 0 > $v/enable
dd if=/dev/md0 of=/tmp/raw bs=4096 skip=$at count=1 iflag=direct 2>/dev/null
cmp /tmp/blk /tmp/raw || fail "block 40000 is not at array block $at after the CP"
echo "block 40000 found on the raw array at block $at"

# Corrupt it behind swarmlog's back: reading it must fail, not return it.
dd if=/dev/urandom of=/dev/md0 bs=4096 seek=$at count=1 oflag=direct 2>/dev/null
echo 1 > $v/enable
if dd if=$dev of=/tmp/bad bs=4096 skip=40000 count=1 iflag=direct 2>/dev/null; then
	fail "a corrupt block was returned"
fi
[ "$(status v0 checksum_errors)" -ge 1 ] || fail "checksum_errors not counted"
dmesg | grep -q "checksum mismatch in block 40000 " || fail "no kernel log line for the bad block"
echo "corrupt block 40000: I/O error, counted, logged"
echo 0 > $v/enable
rmdir $v
rmmod swarmlog
echo "device raid$level: ok"
