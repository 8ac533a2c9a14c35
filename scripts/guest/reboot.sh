# SPDX-License-Identifier: GPL-2.0
# Data survives a clean shutdown and a reboot of the VM.
#   reboot.sh write|verify
. /guest/lib.sh
set -e
job="--name=rb --filename=/dev/swarmlog0 --direct=1 --ioengine=libaio --iodepth=8 --numjobs=2
 --size=8M --offset_increment=8M --rw=randwrite --bssplit=512/20:4k/50:64k/30 --ba=512
 --verify=crc32c --verify_fatal=1 --randrepeat=1"
load_module
if [ "$1" = write ]; then
	make_array 1
	volume v0
	echo 1 > $c/v0/format
	echo 1 > $c/v0/enable
	fio $job --output=/tmp/fio || { cat /tmp/fio; fail "fio write"; }
	echo 0 > $c/v0/enable
	mdadm --stop /dev/md0 >/dev/null
	echo "written and disabled; shutting down"
else
	assemble_array
	volume v0
	echo 1 > $c/v0/enable
	fio $job --verify_only --output=/tmp/fio || { cat /tmp/fio; fail "fio verify after reboot"; }
	echo "verified after reboot"
fi
