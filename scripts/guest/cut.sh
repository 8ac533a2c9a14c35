# SPDX-License-Identifier: GPL-2.0
# Before replay exists: a log that holds records past its CP (left by a
# power cut) is refused by enable, with a message, and left untouched.
#   cut.sh write   write, then wait for the power cut
#   cut.sh check   enable must refuse, twice the same way
. /guest/lib.sh
set -e
load_module
if [ "$1" = write ]; then
	make_array 1
	volume v0
	echo 1 > $c/v0/format
	echo 1 > $c/v0/enable
	dd if=/dev/urandom of=/dev/swarmlog0 bs=4096 count=256 oflag=direct 2>/dev/null
	echo "written: $(status v0 writes) writes, log_used_bytes $(status v0 log_used_bytes); waiting for the cut"
	sleep 600
else
	assemble_array
	volume v0
	before=$(dd if=/dev/pmem0 bs=1M count=4 2>/dev/null | md5sum)
	expect_fail "echo 1 > $c/v0/enable"
	dmesg | grep -q "records .* past its last CP" || fail "no message about the records"
	expect_fail "echo 1 > $c/v0/enable"
	[ "$(status v0 state)" = configured ] || fail "state $(status v0 state)"
	after=$(dd if=/dev/pmem0 bs=1M count=4 2>/dev/null | md5sum)
	[ "$before" = "$after" ] || fail "the refused enable changed the log"
	dmesg | grep "past its last CP" | tail -1
	echo "refused, log untouched"
fi
