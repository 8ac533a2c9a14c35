# SPDX-License-Identifier: GPL-2.0
# Table blocks do not pile up in memory: with cache_max_mb=4 a CP keeps at
# most 256 table blocks (a quarter of the cache) and drops clean ones past
# that (a timed CP too, after reads loaded them), which are read again
# when needed. Random 4 KiB writes over all of a 1 GiB raid0 (about 1000
# table blocks), verified after CPs dropped their tables, after reads and
# a timed CP, and after disable and enable.
. /guest/lib.sh
set -e
make_array 0
insmod /lib/swarmlog/swarmlog.ko cache_max_mb=4 cp_interval_ms=500 || fail "insmod"
volume v0
echo 1 > $c/v0/format
echo 1 > $c/v0/enable
dev=/dev/$(cat $c/v0/disk)
job="--name=tables --filename=$dev --direct=1 --ioengine=libaio --iodepth=8 --rw=randwrite
 --bs=4k --io_size=12M --verify=crc32c --verify_fatal=1 --randrepeat=1 --randseed=7 --eta=never"
fio $job --do_verify=0 --output=/tmp/fio || { cat /tmp/fio; fail "fio write"; }
most=0
for i in $(seq 1 20); do
	sleep 1
	t=$(status v0 table_blocks)
	[ "$t" -gt "$most" ] && most=$t
	[ "$(status v0 cache_blocks)" = 0 ] && break
done
# Read again: the CP that emptied the cache may have ended (and trimmed the
# tables) between the two reads above.
t=$(status v0 table_blocks)
echo "after the writes: $(status v0 cp_count) CPs, $(status v0 cache_blocks) cached blocks, $t table blocks (budget 256)"
[ "$(status v0 cp_count)" -ge 2 ] || fail "no CPs ran"
[ "$t" -le 256 ] || fail "$t table blocks cached after a CP, more than the budget of 256"
fio $job --verify_only --output=/tmp/fio || { cat /tmp/fio; fail "verify after the tables were dropped"; }
echo "verified with $(status v0 table_blocks) table blocks cached"
# The reads loaded table blocks again; the next timed CP trims them.
sleep 2
t=$(status v0 table_blocks)
echo "after a timed CP: $t table blocks"
[ "$t" -le 256 ] || fail "$t table blocks cached after reads and a timed CP"
echo 0 > $c/v0/enable
echo 1 > $c/v0/enable
fio $job --verify_only --output=/tmp/fio || { cat /tmp/fio; fail "verify after disable and enable"; }
echo "verified after disable and enable"
echo 0 > $c/v0/enable
