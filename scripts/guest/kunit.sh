# SPDX-License-Identifier: GPL-2.0
# Guest side of the KUnit run: load the module (its suites run at load) with
# markers around it in the kernel log, so the host can cut out exactly the
# module's KTAP and not the kernel's built-in suites.
echo "SWARMLOG-KUNIT-BEGIN" > /dev/kmsg
insmod /lib/swarmlog/swarmlog.ko || exit 1
echo "SWARMLOG-KUNIT-END" > /dev/kmsg
rmmod swarmlog || exit 1
