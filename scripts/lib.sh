# SPDX-License-Identifier: GPL-2.0
# Shared settings for the swarmlog scripts. Sourced, not run.
#
# Everything big lives under $SWARMLOG_CACHE (default /var/cache/swarmlog),
# in folders named after a hash of their inputs, so a changed input rebuilds
# and an unchanged one is reused.

SWARMLOG_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SWARMLOG_CACHE=${SWARMLOG_CACHE:-/var/cache/swarmlog}

# Packages of the Debian trixie build root: toolchain, kernel source, and the
# guest userspace that goes into the VM's initramfs.
ROOT_PACKAGES=(
	build-essential bc bison flex libelf-dev libssl-dev cpio kmod xz-utils
	python3 clang lld llvm libclang-dev rustc rust-src rustfmt bindgen rust-clippy
	linux-source-7.3
	busybox-static mdadm dmsetup fio ndctl
)
ROOT_SUITES=("deb http://deb.debian.org/debian trixie main"
	"deb http://deb.debian.org/debian trixie-backports main")

# The test profile: make check runs every scenario's short fixed-seed
# profile; make check-full (SWARMLOG_PROFILE=full) their long ones.
# profile SHORT FULL: prints the value for the profile in force.
profile() {
	case "${SWARMLOG_PROFILE:-short}" in
	short) echo "$1" ;;
	full) echo "$2" ;;
	*) die "SWARMLOG_PROFILE is short or full, not '$SWARMLOG_PROFILE'" ;;
	esac
}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# What the host needs besides make and git, as COMMAND:DEBIAN-PACKAGE.
HOST_TOOLS=(mmdebstrap:mmdebstrap qemu-system-x86_64:qemu-system-x86 cpio:cpio
	python3:python3 pkill:procps gzip:gzip)
# host_tools: installs the host packages whose commands are missing (as
# root, with apt-get), so that the README's two commands are the whole
# set-up on a fresh Debian machine.
host_tools() {
	local need=() t
	for t in "${HOST_TOOLS[@]}"; do
		command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
	done
	[ ${#need[@]} = 0 ] && return 0
	[ "$(id -u)" = 0 ] || die "host packages missing: ${need[*]} (run as root, or apt-get install them)"
	log "installing host packages: ${need[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" ||
		die "apt-get install ${need[*]} failed"
}

# hash_of STRING... : short, stable key of its arguments.
hash_of() { printf '%s\n' "$@" | sha256sum | cut -c1-12; }

root_key() { hash_of "${ROOT_PACKAGES[@]}" "${ROOT_SUITES[@]}"; }
root_dir() { echo "$SWARMLOG_CACHE/root-$(root_key)"; }

# Which kernel: "test" (debugging options on: every test) or "bench"
# (kernel-bench.config turns them off: the benchmarks).
SWARMLOG_KERNEL=${SWARMLOG_KERNEL:-test}
case "$SWARMLOG_KERNEL" in
test|bench) ;;
*) die "SWARMLOG_KERNEL is test or bench, not $SWARMLOG_KERNEL" ;;
esac

# kernel_key: the build root, the kernel config fragments and the kernel
# build script.
kernel_key() {
	if [ "$SWARMLOG_KERNEL" = test ]; then
		hash_of "$(root_key)" "$(cat "$SWARMLOG_TOP/scripts/kernel.config" \
			"$SWARMLOG_TOP/scripts/kernel-required" "$SWARMLOG_TOP/scripts/build-kernel")"
	else
		hash_of "$(root_key)" bench "$(cat "$SWARMLOG_TOP/scripts/kernel.config" \
			"$SWARMLOG_TOP/scripts/kernel-bench.config" \
			"$SWARMLOG_TOP/scripts/kernel-required" "$SWARMLOG_TOP/scripts/build-kernel")"
	fi
}
kernel_dir() { echo "$SWARMLOG_CACHE/kernel-$(kernel_key)"; }

# module_ko: where scripts/build-module leaves swarmlog.ko for this kernel
# (the source tree for the test kernel, the kernel's build folder for the
# benchmark kernel, so the two never overwrite each other).
module_ko() {
	if [ "$SWARMLOG_KERNEL" = test ]; then
		echo "$SWARMLOG_TOP/swarmlog.ko"
	else
		echo "$(kernel_dir)/swarmlog-src/swarmlog.ko"
	fi
}

# inroot CMD... : run CMD inside the build root, in a private mount
# namespace so /proc, /dev, /sys and the bind mounts vanish with it.
# /kernel is the kernel build tree, /src the swarmlog source tree.
inroot() {
	local root kdir
	root=$(root_dir)
	kdir=$(kernel_dir)
	mkdir -p "$kdir" "$root/kernel" "$root/src"
	unshare --mount --propagation private -- /bin/sh -ec '
		r=$1; k=$2; s=$3; shift 3
		mount -t proc proc "$r/proc"
		mount --rbind /dev "$r/dev"
		mount -t sysfs sysfs "$r/sys"
		mount --bind "$k" "$r/kernel"
		mount --bind "$s" "$r/src"
		exec chroot "$r" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"
	' sh "$root" "$kdir" "$SWARMLOG_TOP" "$@"
}

# drop_pmem DIR: removes the file in host memory that DIR/pmem.img links to
# (scripts/vm --pmem-in-memory), if it is such a link.
drop_pmem() {
	if [ -L "$1/pmem.img" ]; then rm -f "$(readlink "$1/pmem.img")"; fi
}

# guest_started STATE PID: waits until the VM of scripts/vm --state STATE
# (run as PID) runs its guest script, or has ended; 1 after 30 minutes.
# Its scripts/vm has built the module and the initramfs by then: start a
# second VM of the same tree only after that (two builds of one tree at
# once clash).
guest_started() {
	local i=0
	until grep -aqs SWARMLOG-GUEST-START "$1/console.log"; do
		kill -0 "$2" 2>/dev/null || return 0
		i=$((i + 1))
		[ $i -lt 1800 ] || return 1
		sleep 1
	done
}

# journal_exit_panic RC CONSOLE: true if a VM that ended with RC (scripts/vm)
# ran its guest script to a clean end and then only failed to power off:
# md with its write journal in write-back mode keeps the guest from powering
# off, its init exits and the kernel panics (exit 201), after every
# measurement. That, and nothing else (no BUG, oops, warning or KASAN
# report in CONSOLE), is let pass.
journal_exit_panic() {
	[ "$1" = 201 ] && grep -aq "SWARMLOG-GUEST-EXIT=0" "$2" &&
		! grep -aqE "BUG:|Oops|WARNING:|KASAN:|blocked for" "$2"
}

# root_install FILE PACKAGE: Debian's PACKAGE installed in the build root on
# first use, unless the root has FILE already. Not in ROOT_PACKAGES: a change
# there makes a new build root and so a new kernel.
root_install() {
	"$SWARMLOG_TOP/scripts/buildroot" >/dev/null
	if [ ! -e "$(root_dir)$1" ]; then
		log "installing $2 in the build root"
		inroot sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1"' sh "$2" >/dev/null
	fi
}

# perf_tarball OUT: perf from the build root (Debian's linux-perf, installed
# there on first use) and every library it loads, as a tar.gz to unpack at
# the guest's / (scripts/profile-replay, scripts/profile-write).
perf_tarball() {
	"$SWARMLOG_TOP/scripts/buildroot" >/dev/null
	local root libs
	root=$(root_dir)
	root_install /usr/bin/perf linux-perf
	libs=$(inroot ldd /usr/bin/perf | grep -o '/[^ ]*' | sort -u)
	# shellcheck disable=SC2086
	tar -C "$root" -czhf "$1" usr/bin/perf $(sed 's,^/,,' <<<"$libs")
}

# root_cargo: Debian's cargo in the build root, installed there on first use,
# and the crates of tools/, for the userspace tests and tools of tools/
# (scripts/check, scenarios). Not in ROOT_PACKAGES:
# a change there makes a new build root and so a new kernel. cargo requires
# its own version of rustc; it is pinned to the rustc the root holds, so
# that installing it can never change the compiler the kernel was built
# with (trixie-backports has a newer pair).
root_cargo() {
	"$SWARMLOG_TOP/scripts/buildroot" >/dev/null
	if [ ! -x "$(root_dir)/usr/bin/cargo" ]; then
		log "installing cargo in the build root"
		inroot sh -ec '
			export DEBIAN_FRONTEND=noninteractive
			v=$(dpkg-query -W -f "\${Version}" rustc)
			apt-get update -q
			apt-get install -y -q "cargo=$v"
		' >/dev/null
	fi
	# The crates tools/Cargo.lock names (swarmctl's clap and serde_json),
	# from crates.io into the root's cargo home, where the offline builds
	# find them; once per Cargo.lock (a stamp keyed by its sum), so that
	# later calls need no network. TLS to crates.io is checked against the
	# host's certificate authorities (the host may sit behind a proxy of
	# its own that the root's bundle does not know).
	local stamp
	stamp="$(root_dir)/root/cargo-home/fetched-$(hash_of "$(cat "$SWARMLOG_TOP/tools/Cargo.lock")")"
	[ -e "$stamp" ] && return 0
	local ca=""
	if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
		cp /etc/ssl/certs/ca-certificates.crt "$(root_dir)/etc/swarmlog-host-ca.crt"
		ca=/etc/swarmlog-host-ca.crt
	else
		root_install /etc/ssl/certs/ca-certificates.crt ca-certificates
	fi
	inroot env CARGO_HOME=/root/cargo-home ${ca:+CARGO_HTTP_CAINFO=$ca} \
		cargo fetch --locked --manifest-path /src/tools/Cargo.toml >&2 &&
		touch "$stamp"
}
