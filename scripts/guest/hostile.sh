# SPDX-License-Identifier: GPL-2.0
# Hostile input on the configfs interface (md raid1 on 2 disks; the log on
# the VM's log device, log_device: pmem0, or a log disk on a block log):
# bad values of every writable attribute (empty, oversized, negative,
# non-numeric, not UTF-8, NUL bytes, bad paths, random bytes), refused with
# the old value kept; paths that parse but name no usable device, refused
# at format and enable; enable/disable toggled from several processes while
# others write to the disk and read status; rmdir of an enabled volume (with
# a writer on its disk); two volumes on the same devices; rmmod while busy;
# rmmod and insmod again. The kernel must report nothing (scripts/vm checks).
# The argument: rounds of random bytes (default 25).
rounds=${1:-25}
. /guest/lib.sh
make_array 1
L=$(log_device)
# Leaks reported from before the test (boot) are not the module's: scan and
# clear them, so the final scan reports only what the test left.
if [ -w /sys/kernel/debug/kmemleak ]; then
	echo scan > /sys/kernel/debug/kmemleak
	echo clear > /sys/kernel/debug/kmemleak
fi
load_module
refused=0 accepted=0 random_refused=0 random_accepted=0

# refuse ATTR FILE: writing FILE's bytes (one write) to ATTR must fail.
refuse() {
	if dd if="$2" of="$1" bs=8192 count=1 conv=notrunc 2>/dev/null; then
		fail "accepted by $1: $(head -c 40 "$2" | od -An -c | head -2 | tr -s ' \n' ' ')"
	fi
	refused=$((refused + 1))
}
# accept ATTR VALUE: writing VALUE (echo) to ATTR must succeed.
accept() {
	echo "$2" > "$1" || fail "refused by $1: $2"
	accepted=$((accepted + 1))
}
# same ATTR VALUE: ATTR reads VALUE.
same() { [ "$(cat "$1")" = "$2" ] || fail "$1 is '$(cat "$1")', not '$2'"; }

# The hostile values, each a file written by one write.
h=/tmp/h
mkdir -p $h
: > $h/empty
printf '\n' > $h/nl
head -c 5000 /dev/zero | tr '\0' 7 > $h/huge5000
head -c 4096 /dev/zero | tr '\0' 1 > $h/huge4096
{ printf /; head -c 4999 /dev/zero | tr '\0' a; } > $h/path5000
{ printf /; head -c 4095 /dev/zero | tr '\0' a; } > $h/path4096
{ printf /; head -c 256 /dev/zero | tr '\0' a; } > $h/path257
printf -- '-1\n' > $h/neg1
printf -- '-4096\n' > $h/neg4096
printf -- '-0\n' > $h/neg0
printf '1e3\n' > $h/exp
printf '0x10\n' > $h/hex
printf ' 1\n' > $h/lead
printf '1 2\n' > $h/two
printf '1\n\n' > $h/twonl
printf 'abc\n' > $h/abc
printf '01\n' > $h/zeroone
printf '0 1\n' > $h/zerospace
printf 'off\n' > $h/off
printf '+1\n' > $h/plus1
printf '4097\n' > $h/over
printf '99999999999999999999\n' > $h/u64
printf '\377\376' > $h/bin
printf '/dev/\377\376' > $h/binpath
{ printf 1; head -c 1 /dev/zero; } > $h/nul1
{ head -c 1 /dev/zero; printf 1; } > $h/nul0
{ printf %s "$L"; head -c 1 /dev/zero; printf /x; } > $h/nulpath
printf '%s\n' "${L#/}" > $h/rel
printf './%s\n' "${L##*/}" > $h/dotrel
printf '/dev/pm em0\n' > $h/space
[ "$(wc -c < $h/huge5000)" = 5000 ] && [ "$(wc -c < $h/nul1)" = 2 ] &&
	[ "$(wc -c < $h/bin)" = 2 ] && [ "$(wc -c < $h/path257)" = 257 ] ||
	fail "hostile value files have the wrong sizes"

mkdir $c/v
v=$c/v
same $v/swarm_width 64
same $v/enable 0
same $v/discard_skipped 0
[ -z "$(cat $v/log)" ] && [ -z "$(cat $v/array)" ] || fail "new volume has paths"

# Numbers: swarm_width keeps its value through every refused write.
accept $v/swarm_width 17
for f in nl huge5000 huge4096 neg1 neg4096 neg0 exp hex lead two twonl abc over u64 bin \
	nul1 nul0 rel; do
	refuse $v/swarm_width $h/$f
	same $v/swarm_width 17
done
printf 0 > $h/zero
refuse $v/swarm_width $h/zero
: > $v/swarm_width # an open without a write changes nothing
same $v/swarm_width 17
accept $v/swarm_width 4096
accept $v/swarm_width 1
printf 64 > $v/swarm_width || fail "swarm_width without a newline"
same $v/swarm_width 64

# Booleans: enable and discard_skipped take 0 or 1 and nothing else.
printf 2 > $h/two1
for a in enable discard_skipped; do
	for f in nl huge5000 huge4096 neg1 neg0 exp hex lead two twonl abc bin nul1 nul0 \
		rel two1; do
		refuse $v/$a $h/$f
		same $v/$a 0
	done
done
accept $v/discard_skipped 1
for f in hex neg0 nul0 abc; do
	refuse $v/discard_skipped $h/$f
	same $v/discard_skipped 1
done
accept $v/discard_skipped 0
echo 1 > $h/one
refuse $v/enable $h/one # a valid 1, but no log and array yet
same $v/enable 0

# format: "1" only, and only with both paths set.
for f in empty nl huge5000 neg1 exp hex lead two abc bin nul1 zero two1; do
	[ -s $h/$f ] || continue
	refuse $v/format $h/$f
done
refuse $v/format $h/one
[ -z "$(cat $v/format)" ] || fail "format reads back '$(cat $v/format)'"

# Paths: refused when they are not one absolute path of at most 256 bytes.
for a in log array; do
	accept $v/$a "$L"
	for f in nl huge5000 huge4096 path5000 path4096 path257 neg1 abc bin binpath nul1 \
		nulpath rel dotrel space lead twonl; do
		refuse $v/$a $h/$f
		same $v/$a "$L"
	done
	: > $v/$a
	same $v/$a "$L"
done
accept $v/log "/$(head -c 255 /dev/zero | tr '\0' a)" # 256 bytes: parses
[ "$(cat $v/log | wc -c)" = 257 ] || fail "256-byte path reads back wrong"

# Paths that parse but name no usable device: format and enable refuse them.
echo data > /tmp/regular
mkdir -p /tmp/dir
accept $v/array /dev/md0
for p in /dev/null /proc/self/mem /tmp/regular /tmp/dir /dev/nonexistent /dev/md0 \
	/dev/vda "/$(head -c 255 /dev/zero | tr '\0' a)" "$L/x" /dev/../dev/null; do
	accept $v/log "$p"
	refuse $v/format $h/one
	refuse $v/enable $h/one
	same $v/enable 0
done
accept $v/log "$L"
for p in /dev/null /proc/self/mem /tmp/regular /tmp/dir /dev/nonexistent "$L" /dev/vdb; do
	accept $v/array "$p"
	refuse $v/format $h/one
	refuse $v/enable $h/one
done
accept $v/log /dev/md0 # swapped: a log may be on any block device, but pmem is never the array
accept $v/array /dev/pmem0
refuse $v/format $h/one
refuse $v/enable $h/one
dmesg | grep -q "the array device /dev/pmem0 is pmem (DAX): are the log and the array swapped" ||
	fail "swapped log and array not reported"
dmesg | grep -q "cannot open log device /dev/nonexistent" || fail "no kernel log line for a missing log"
dmesg | grep -q "the log and the array are the same device" || fail "log = array not reported"
# A log device too small for a log of its medium (1 MiB of the log device
# through dm-linear): format refuses it, saying so, and writes nothing.
dmsetup create tiny --table "0 2048 linear $L 0" && dmsetup mknodes tiny ||
	fail "dm-linear of 1 MiB over $L"
tiny=$(log_head)
accept $v/log /dev/mapper/tiny
accept $v/array /dev/md0
refuse $v/format $h/one
refuse $v/enable $h/one
dmesg | tail -5 | grep -q "the log device is too small" || fail "a 1 MiB log not reported as too small"
[ "$(log_head)" = "$tiny" ] || fail "the refused format of a 1 MiB log wrote to $L"
dmsetup remove tiny || fail "dmsetup remove tiny"

# None of those refusals left a device held: the right pair formats, enables.
# format takes exactly 1: not "01" or "+1" (a number parse's 1).
accept $v/log "$L"
accept $v/array /dev/md0
for f in plus1 zeroone hex exp two twonl lead nul1; do
	refuse $v/format $h/$f
done
accept $v/format 1
accept $v/enable 1
same $v/enable 1
grep -q "^state enabled" $v/status || fail "status: $(cat $v/status)"
accept $v/swarm_width 8 # not a device setting: allowed while enabled
for f in huge5000 neg1 bin; do refuse $v/swarm_width $h/$f; done
same $v/swarm_width 8
# Nothing but 0 or 1 turns it off or on: "0x10" or "01" must not disable.
for f in hex zeroone zerospace neg0 nul0 off exp two twonl lead abc bin huge4096; do
	refuse $v/enable $h/$f
	same $v/enable 1
done
for a in log array; do
	printf '%s\n' "$L" > $h/good
	refuse $v/$a $h/good # EBUSY while enabled
done
same $v/log "$L"
same $v/array /dev/md0
accept $v/enable 0

# Random bytes (1 to 64, and about 4000) at every writable attribute of an
# unconfigured volume, in $rounds rounds: whatever is accepted must leave
# sane values.
mkdir $c/r
for i in $(seq 1 "$rounds"); do
	for a in log array swarm_width format enable discard_skipped; do
		n=$(( $(od -An -tu2 -N2 /dev/urandom) % 64 + 1 ))
		[ $((i % 8)) = 0 ] && n=$((n + 4000))
		head -c $n /dev/urandom > $h/rand
		if dd if=$h/rand of=$c/r/$a bs=8192 count=1 conv=notrunc 2>/dev/null; then
			random_accepted=$((random_accepted + 1))
		else
			random_refused=$((random_refused + 1))
		fi
	done
	w=$(cat $c/r/swarm_width)
	[ "$w" -ge 1 ] && [ "$w" -le 4096 ] || fail "random input left swarm_width $w"
	same $c/r/enable 0
done
cat $c/r/status > /dev/null
rmdir $c/r
echo "random bytes: $random_refused refused, $random_accepted accepted"

# Two volumes on the same devices: the second cannot format or enable while
# the first is enabled.
accept $v/enable 1
dev=/dev/$(cat $v/disk)
dd if=/dev/urandom of=/tmp/pat bs=4096 count=16 2>/dev/null
dd if=/tmp/pat of=$dev bs=4096 seek=100 count=16 oflag=direct conv=nocreat 2>/dev/null ||
	fail "write to $dev"
volume w
refuse $c/w/format $h/one
refuse $c/w/enable $h/one
same $c/w/enable 0
dmesg | tail -20 | grep -Eq "cannot open log device $L: (EBUSY|Error\(16\))" ||
	fail "no EBUSY line for the second volume"
expect_fail "rmmod swarmlog"
accept $v/enable 0
accept $c/w/enable 1 # the same devices, now free: the same log
dd if=/dev/$(cat $c/w/disk) bs=4096 skip=100 count=16 iflag=direct 2>/dev/null | cmp -s /tmp/pat - ||
	fail "the second volume does not see the first one's data"
refuse $v/enable $h/one
accept $c/w/enable 0
rmdir $c/w

# Concurrency: togglers, writers and status readers on one volume for 25 s.
# The togglers start 5 s after the writers, on an enabled volume, so some
# writes get through however loaded the machine is.
enables=$(dmesg | grep -c 'v enabled as')
doubles=$(dmesg | grep -c 'v: already enabled')
accept $v/enable 1
enables=$((enables + 1))
end=$(( $(date +%s) + 25 ))
for t in 1 2 3; do
	( sleep 5; while [ $(date +%s) -lt $end ]; do
		echo 1 > $v/enable && sleep 1
		echo 0 > $v/enable
	done 2>/dev/null; exit 0 ) &
done
# Each writer keeps the disk open and writes until the disk goes away.
for t in 1 2; do
	( while [ $(date +%s) -lt $end ]; do
		d=$(cat $v/disk 2>/dev/null)
		[ -n "$d" ] || { sleep 1; continue; }
		dd if=/dev/urandom of=/dev/$d bs=4096 seek=$((1000 + t * 4096)) count=2048 \
			oflag=direct conv=nocreat,notrunc 2>/tmp/dd.$t || echo >> /tmp/storm-cut.$t
		sed -n 's/^\([0-9]*\)+[0-9]* records out$/\1/p' /tmp/dd.$t >> /tmp/storm.$t
	done; exit 0 ) &
done
( while [ $(date +%s) -lt $end ]; do
	cat $v/status $v/disk $v/enable $v/swarm_width > /dev/null
done; exit 0 ) &
( while [ $(date +%s) -lt $end ]; do
	echo $(( $(date +%s) % 64 + 1 )) > $v/swarm_width
	printf '\377' > $v/swarm_width
	echo "$L" > $v/log; echo /dev/md0 > $v/array
done 2>/dev/null; exit 0 ) &
wait
blocks=$(cat /tmp/storm.* 2>/dev/null | awk '{ n += $1 } END { print n + 0 }')
[ "$blocks" -ge 1 ] || fail "no write reached the disk during the storm"
ls /dev/swarmlog* 2>/dev/null | grep -v "^$dev$" && fail "stray device nodes"
echo "concurrent storm: $(($(dmesg | grep -c 'v enabled as') - enables)) enables, $(($(dmesg | grep -c 'v: already enabled') - doubles)) refused double enables, $blocks blocks of 4 KiB written, $(cat /tmp/storm-cut.* 2>/dev/null | wc -l) writers cut off by a disable"
[ "$(cat $v/enable)" = 1 ] || accept $v/enable 1
same $v/log "$L"
same $v/array /dev/md0
dev=/dev/$(cat $v/disk)
dd if=/tmp/pat of=$dev bs=4096 seek=100 count=16 oflag=direct 2>/dev/null || fail "write after the storm"
accept $v/enable 0
accept $v/enable 1
dd if=/dev/$(cat $v/disk) bs=4096 skip=100 count=16 iflag=direct 2>/dev/null | cmp -s /tmp/pat - ||
	fail "pattern lost after the storm and disable/enable"
echo "after the storm: pattern verified through disable/enable"

# rmdir of an enabled volume with a writer on its disk: disabled first.
dev=/dev/$(cat $v/disk)
( for i in $(seq 1 200); do
	dd if=/dev/urandom of=$dev bs=4096 seek=$((3000 + i)) count=4 oflag=direct \
		conv=nocreat,notrunc 2>/dev/null || break
	echo >> /tmp/rmdir.w
done; exit 0 ) &
sleep 2
expect_fail "rmmod swarmlog"
rmdir $v || fail "rmdir of an enabled volume"
wait
w=$(cat /tmp/rmdir.w 2>/dev/null | wc -l)
[ "$w" -ge 1 ] && [ "$w" -lt 200 ] || fail "the writer did $w of 200 writes: not cut off by the rmdir"
echo "rmdir of an enabled volume: its writer did $w writes, then got errors"
[ ! -e /sys/block/${dev#/dev/} ] || fail "$dev still there after rmdir"
[ ! -e /sys/kernel/debug/swarmlog/v ] || fail "debugfs directory left after rmdir"

# The devices are free again, and the data survived the rmdir's final CP.
volume v
accept $v/enable 1
dd if=/dev/$(cat $v/disk) bs=4096 skip=100 count=16 iflag=direct 2>/dev/null | cmp -s /tmp/pat - ||
	fail "pattern lost after rmdir of the enabled volume"
expect_fail "rmmod swarmlog"
rmdir $v
[ -z "$(ls $c)" ] || fail "directories left: $(ls $c)"
rmmod swarmlog || fail "rmmod with no volume"
[ ! -e /sys/kernel/debug/swarmlog ] || fail "debugfs swarmlog left after rmmod"
insmod /lib/swarmlog/swarmlog.ko || fail "insmod again"
volume v
accept $v/enable 1
dd if=/dev/$(cat $v/disk) bs=4096 skip=100 count=16 iflag=direct 2>/dev/null | cmp -s /tmp/pat - ||
	fail "pattern lost after rmmod and insmod"
accept $v/enable 0
rmdir $v
rmmod swarmlog || fail "final rmmod"

if [ -w /sys/kernel/debug/kmemleak ]; then
	echo scan > /sys/kernel/debug/kmemleak
	sleep 5
	echo scan > /sys/kernel/debug/kmemleak
	if grep -q unreferenced /sys/kernel/debug/kmemleak; then
		head -40 /sys/kernel/debug/kmemleak
		fail "kmemleak found leaks"
	fi
	echo "kmemleak: no leaks"
else
	echo "note: no kmemleak in this kernel (CONFIG_DEBUG_KMEMLEAK off): leak check skipped"
fi
echo "hostile input: $refused hostile writes refused, $accepted writes accepted as expected, random bytes $random_refused refused and $random_accepted accepted; ok"
