#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# A database-style fsync workload on a file system on a swarmlog volume
# (or on anything else, to compare).
#
#   fsync-workload.sh run DIR [SECONDS]
#       fsync-db.fio for SECONDS (default 30) in DIR, and beside it a
#       commit log: DIR/commits gets one line "txn N" at a time, each
#       made durable (fsync) before "COMMITTED N" is printed, as a
#       database reports a commit to its client. The commit lines go to
#       $COMMITS_TO (default: standard output).
#   fsync-workload.sh check DIR [N]
#       after a crash and the volume's replay: DIR/commits must hold
#       txn 1, 2, ... in order, at least up to N (the last COMMITTED
#       the client saw); prints how many it holds.
#
# fsync-db.fio is looked for beside this script, or in $FIO_JOB.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
job=${FIO_JOB:-$here/fsync-db.fio}
die() { echo "$0: $*" >&2; exit 1; }

case "${1:-}" in
run)
	[ $# -ge 2 ] || die "usage: $0 run DIR [SECONDS]"
	dir=$2 secs=${3:-30}
	[ -d "$dir" ] || die "$dir is not a directory"
	[ -r "$job" ] || die "no fio job file $job"
	DBDIR=$dir RUNTIME=$secs fio --output-format=terse --terse-version=3 "$job" \
		> "$dir/fio.terse" &
	fio=$!
	# The commit log, until fio is done; its lines on descriptor 3 (a
	# file opened once: "> /dev/stdout" would truncate a redirected
	# standard output at every line).
	if [ -n "${COMMITS_TO:-}" ]; then
		exec 3> "$COMMITS_TO"
	else
		exec 3>&1
	fi
	n=0
	: > "$dir/commits"
	sync
	while kill -0 $fio 2>/dev/null; do
		n=$((n + 1))
		printf 'txn %d\n' $n |
			dd of="$dir/commits" oflag=append conv=notrunc,fsync status=none ||
			die "commit $n failed"
		echo "COMMITTED $n" >&3
	done
	wait $fio || die "fio failed"
	# Terse version 3 (fio(1), "TERSE OUTPUT"): field 3 the job's name,
	# 8 its read IOPS, 49 its write IOPS, 57 its mean write completion
	# latency in microseconds (the syncs are not in it).
	awk -F';' '{ printf "%-7s read %6d IOPS  write %6d IOPS  write clat mean %8.0f us\n",
		$3, $8, $49, $57 }' "$dir/fio.terse"
	echo "commits: $n, each fsync'd before it was reported"
	;;
check)
	[ $# -ge 2 ] || die "usage: $0 check DIR [N]"
	dir=$2 want=${3:-0}
	[ -r "$dir/commits" ] || die "no $dir/commits"
	# Line i must be "txn i"; the last line may be torn (never reported).
	held=$(awk '$0 != "txn " NR { exit } { n = NR } END { print n + 0 }' "$dir/commits")
	[ "$held" -ge "$want" ] || die "$dir/commits holds txn 1 to $held, but txn $want was reported committed"
	echo "commits: txn 1 to $held in order (reported committed: $want)"
	;;
*)
	die "usage: $0 run DIR [SECONDS] | check DIR [N]"
	;;
esac
