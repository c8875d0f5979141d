#!/usr/bin/env bash
# test-deb.sh builds the three edged packages and checks them as a user
# would meet them:
#   - the version sanitiser, package fields, contents, modes, conffiles,
#     md5sums and maintainer-script syntax, for every architecture;
#   - the binaries: static, pure Go, trimmed, GOARM=6 on armhf, arm64 < 20 MiB,
#     the same bytes when built twice;
#   - the unit's required directives, and `systemd-analyze verify`;
#   - `edged version` and `edged check` on the shipped config, natively
#     and under qemu-user-static for arm64 and armhf;
#   - as root: dpkg installs the amd64 package into a throwaway Debian
#     bookworm root (debootstrap, cached under $EDGED_TEST_CACHE): user,
#     group, dialout, no login, modes, the config readable as edged and not
#     by others, enable state; an upgrade keeps an edited config; remove
#     keeps config and user; purge removes state and user; all of it once
#     with adduser and once with the useradd fallback; the installed daemon
#     runs as edged with the shipped config and sends READY=1 and WATCHDOG=1;
#     with a (simulated) running systemd the scripts start, restart on
#     upgrade, stop on remove, and a failed start does not fail dpkg;
#   - booted, with EDGED_DEB_BOOT=1 (systemd as PID 1 under systemd-nspawn, private network): the
#     real unit starts the daemon as edged+dialout with no capabilities,
#     no_new_privs and seccomp; it pings the watchdog and logs to the journal;
#     an upgrade restarts it and remove stops it.
# Parts whose tools or privileges are missing are skipped with the reason;
# with EDGED_REQUIRE_PEERS=1 a skip counts as a failure.
#
# Needs: go, dpkg-deb (dpkg); for the rest: root, debootstrap, systemd
# (systemd-analyze), systemd-container (systemd-nspawn), qemu-user-static,
# python3, iproute2 (ip), util-linux (unshare, nsenter, findmnt).
# Checks pass their arguments to `bash -c '...' _ ARGS` on purpose, and some
# functions are only called through check:
# shellcheck disable=SC2016,SC2317
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
export LC_ALL=C
cache=${EDGED_TEST_CACHE:-/var/cache/edged-test}
started=$(date +%s)

passed=0 failed=0 skipped=0
ok() {
	passed=$((passed + 1))
	echo "ok   - $*"
}
not_ok() {
	failed=$((failed + 1))
	echo "FAIL - $*"
}
skip() {
	if [[ ${EDGED_REQUIRE_PEERS:-} == 1 ]]; then
		not_ok "$1 (required, but: $2)"
	else
		skipped=$((skipped + 1))
		echo "skip - $1: $2"
	fi
}
# check NAME CMD... runs CMD and counts it; its output is shown on failure.
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$name"
	else
		not_ok "$name"
		[[ -z $out ]] || printf '%s\n' "$out" | sed 's/^/       /' | head -n 40
	fi
}
# check_eq NAME WANT GOT
check_eq() {
	if [[ $2 == "$3" ]]; then
		ok "$1"
	else
		not_ok "$1: want '$2', got '$3'"
	fi
}
have() { command -v "$1" >/dev/null 2>&1; }
section() { echo "# $* (at $(($(date +%s) - started)) s)"; }

tmp=$(mktemp -d /var/tmp/edged-deb-test.XXXXXX)
chroot_dir=''
cleanup() {
	# Nothing is mounted in the test root; refuse to delete through a mount anyway.
	if [[ -n $chroot_dir ]] && findmnt -rn -o TARGET | grep -q "^$chroot_dir"; then
		echo "test-deb: something is mounted under $chroot_dir; leaving $tmp" >&2
		return
	fi
	rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

finish() {
	echo "test-deb: took $(($(date +%s) - started)) s"
	echo "deb-test: $passed passed, $failed failed, $skipped skipped"
	[[ $failed -eq 0 ]]
	exit
}

# ---------------------------------------------------------------- version
section "Debian version from git describe"
while read -r describe want; do
	check_eq "git describe '$describe' becomes Debian version '$want'" "$want" \
		"$(packaging/build-deb.sh --deb-version "$describe" 1795000000 2>&1)"
done <<'EOF'
v1.2.3 1.2.3
1.2.3 1.2.3
v1.2.3-4-gabc1234 1.2.3+4.gabc1234
v1.3.0-rc1 1.3.0~rc1
v1.3.0-rc1-2-gdeadbee 1.3.0~rc1+2.gdeadbee
abc1234 0.0.0~git20261118110640.abc1234
abc1234-dirty 0.0.0~git20261118110640.abc1234+dirty
v1.2.3-dirty 1.2.3+dirty
v1.2.3-4-gabc1234-dirty 1.2.3+4.gabc1234.dirty
dev 0.0.0~dev
EOF
if have dpkg; then
	while read -r lower higher; do
		check "version $lower sorts before $higher" dpkg --compare-versions "$lower" lt "$higher"
	done <<'EOF'
0.0.0~git20261118110640.abc1234 0.0.0~git20261118110641.0000000
0.0.0~git20261118110640.abc1234 0.1.0
1.3.0~rc1 1.3.0
1.3.0~rc1+2.gdeadbee 1.3.0
1.2.3 1.2.3+4.gabc1234
1.2.3+4.gabc1234 1.2.3+12.g0000000
1.2.3+4.gabc1234 1.2.3+4.gabc1234.dirty
EOF
fi

# ---------------------------------------------------------------- build
section "build"
for tool in go dpkg-deb; do
	if ! have "$tool"; then
		not_ok "$tool is needed to build the packages"
		finish
	fi
done
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
COMMIT=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
# Fixed once, so every build below agrees even if HEAD moves meanwhile.
DEB_VERSION=${DEB_VERSION:-$(packaging/build-deb.sh --deb-version "$VERSION" "$SOURCE_DATE_EPOCH")}
export VERSION COMMIT SOURCE_DATE_EPOCH DEB_VERSION
deb_version=$DEB_VERSION
build_start=$(date +%s)
if ! DIST=$tmp/dist packaging/build-deb.sh | tee "$tmp/build.log"; then
	not_ok "packaging/build-deb.sh builds arm64, armhf and amd64"
	finish
fi
ok "packaging/build-deb.sh builds arm64, armhf and amd64 in $(($(date +%s) - build_start)) s"
if DIST=$tmp/dist2 packaging/build-deb.sh amd64 >/dev/null; then
	# (Fails also when someone edits the tree between the two builds.)
	check "a second build of the same tree gives the same amd64 package bytes" \
		cmp "$tmp/dist/edged_${deb_version}_amd64.deb" "$tmp/dist2/edged_${deb_version}_amd64.deb"
else
	not_ok "a second amd64 build succeeds"
fi

# elf_check FILE MACHINE succeeds when FILE is an ELF executable for MACHINE
# with no program interpreter (no dynamic loader needed on the target), no
# symbol table (-s) and no DWARF sections (-w).
elf_check() {
	python3 - "$1" "$2" <<'EOF'
import struct, sys
b = open(sys.argv[1], "rb").read()
if b[:4] != b"\x7fELF":
    sys.exit("not an ELF file")
is64, e = b[4] == 2, "<" if b[5] == 1 else ">"
machine, = struct.unpack_from(e + "H", b, 0x12)
want = {"x86-64": 62, "aarch64": 183, "arm": 40}[sys.argv[2]]
if machine != want:
    sys.exit(f"e_machine is {machine}, want {want} ({sys.argv[2]})")
if is64:
    phoff, shoff = struct.unpack_from(e + "QQ", b, 0x20)
    phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(e + "HHHHH", b, 0x36)
else:
    phoff, shoff = struct.unpack_from(e + "II", b, 0x1C)
    phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(e + "HHHHH", b, 0x2A)
if any(struct.unpack_from(e + "I", b, phoff + i * phentsize)[0] == 3 for i in range(phnum)):
    sys.exit("has PT_INTERP: dynamically linked")
def section(i):
    o = shoff + i * shentsize
    if is64:
        name, typ, _, _, off, size = struct.unpack_from(e + "IIQQQQ", b, o)
    else:
        name, typ, _, _, off, size = struct.unpack_from(e + "IIIIII", b, o)
    return name, typ, off, size
_, _, stroff, _ = section(shstrndx)
for i in range(shnum):
    name, typ, _, _ = section(i)
    n = b[stroff + name : b.index(b"\0", stroff + name)].decode()
    if typ == 2:
        sys.exit(f"has a symbol table {n}: not stripped")
    if n.startswith((".debug", ".zdebug")):
        sys.exit(f"has DWARF section {n}")
EOF
}

# ---------------------------------------------------------------- per package
declare -A goarch=([amd64]=amd64 [arm64]=arm64 [armhf]=arm)
declare -A elf_machine=([amd64]=x86-64 [arm64]=aarch64 [armhf]=arm)
sizes=''
for arch in arm64 armhf amd64; do
	deb=$tmp/dist/edged_${deb_version}_$arch.deb
	echo "# $arch: $(basename "$deb")"
	if [[ ! -f $deb ]]; then
		not_ok "$arch package exists as $(basename "$deb")"
		continue
	fi
	check_eq "$arch package is named edged" edged "$(dpkg-deb -f "$deb" Package)"
	check_eq "$arch package has version $deb_version" "$deb_version" "$(dpkg-deb -f "$deb" Version)"
	check_eq "$arch package has Architecture $arch" "$arch" "$(dpkg-deb -f "$deb" Architecture)"
	check_eq "$arch package depends only on a way to add users" "adduser | passwd" "$(dpkg-deb -f "$deb" Depends)"
	check "$arch package has Maintainer, Description, Section and a numeric Installed-Size" \
		bash -c '[[ -n $(dpkg-deb -f "$1" Maintainer) && -n $(dpkg-deb -f "$1" Description) && -n $(dpkg-deb -f "$1" Section) && $(dpkg-deb -f "$1" Installed-Size) =~ ^[0-9]+$ ]]' _ "$deb"
	check_eq "$arch package lists only /etc/edged/edged.toml as conffile" /etc/edged/edged.toml \
		"$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)"

	listing=$(dpkg-deb -c "$deb" | awk '{ print $1, $2, $6 }')
	while read -r mode owner path; do
		check "$arch package holds $path as $mode $owner" grep -qxF -- "$mode $owner $path" <<<"$listing"
	done <<'EOF'
-rwxr-xr-x root/root ./usr/bin/edged
drwxr-x--- root/root ./etc/edged/
-rw-r----- root/root ./etc/edged/edged.toml
-rw-r--r-- root/root ./lib/systemd/system/edged.service
drwxr-xr-x root/root ./usr/share/edged/profiles/
-rw-r--r-- root/root ./usr/share/doc/edged/README.md
-rw-r--r-- root/root ./usr/share/doc/edged/copyright
-rw-r--r-- root/root ./usr/share/doc/edged/examples/edged.toml
EOF
	check "$arch package owns every file as root/root" bash -c '! grep -v " root/root " <<<"$1"' _ "$listing"
	for p in configs/profiles/*.toml; do
		[[ -e $p ]] || continue
		check "$arch package ships profile $(basename "$p")" grep -qxF -- "-rw-r--r-- root/root ./usr/share/edged/profiles/$(basename "$p")" <<<"$listing"
	done
	check "$arch package holds nothing outside /usr, /etc/edged and /lib/systemd/system" \
		bash -c '! awk "{print \$3}" <<<"$1" | grep -vE "^\./(\$|usr/|etc/\$|etc/edged/|lib/\$|lib/systemd/\$|lib/systemd/system/)"' _ "$listing"

	x=$tmp/x-$arch
	mkdir -p "$x/DEBIAN"
	dpkg-deb -x "$deb" "$x"
	dpkg-deb -e "$deb" "$x/DEBIAN"
	for s in postinst prerm postrm; do
		check "$arch $s is an executable POSIX sh script" bash -c '[[ -x $1 ]] && head -n1 "$1" | grep -qx "#!/bin/sh" && sh -n "$1"' _ "$x/DEBIAN/$s"
	done
	check "$arch md5sums match the unpacked files" bash -c 'cd "$1" && md5sum --quiet -c DEBIAN/md5sums' _ "$x"
	check_eq "$arch shipped config is configs/edged.toml" "$(md5sum <configs/edged.toml)" "$(md5sum <"$x/etc/edged/edged.toml")"
	check "$arch copyright names the Go standard library's licence" grep -q '^==== Go-standard-library' "$x/usr/share/doc/edged/copyright"

	bin=$x/usr/bin/edged
	buildinfo=$(go version -m "$bin" 2>&1)
	for want in "GOARCH=${goarch[$arch]}" "CGO_ENABLED=0" "-trimpath=true"; do
		check "$arch binary was built with $want" grep -qF -- "build	$want" <<<"$buildinfo"
	done
	[[ $arch == armhf ]] && check "armhf binary targets ARMv6 (GOARM=6) so it runs on every Pi" grep -qF "build	GOARM=6" <<<"$buildinfo"
	if have python3; then
		check "$arch binary is a statically linked ${elf_machine[$arch]} ELF without symbols or DWARF" \
			elf_check "$bin" "${elf_machine[$arch]}"
	else
		skip "$arch binary is a static, stripped ELF" "python3 not installed"
	fi
	check "$arch binary carries version $VERSION and commit $COMMIT (-X main.version, main.commit)" \
		bash -c 'grep -qaF -- "$2" "$1" && grep -qaF -- "$3" "$1"' _ "$bin" "$VERSION" "$COMMIT"
	bin_size=$(stat -c %s "$bin")
	deb_size=$(stat -c %s "$deb")
	sizes+=$(awk -v a="$arch" -v d="$deb_size" -v b="$bin_size" \
		'BEGIN { printf "\n  %-6s package %5.2f MiB   binary %5.2f MiB", a, d / 1048576, b / 1048576 }')
	[[ $arch == arm64 ]] && check "arm64 binary is under 20 MiB ($((bin_size / 1024)) KiB)" test "$bin_size" -lt $((20 * 1048576))
done

# ---------------------------------------------------------------- unit
section "systemd unit"
unit=packaging/edged.service
while read -r line; do
	check "unit says $line" grep -qxF "$line" "$unit"
done <<'EOF'
Type=notify
WatchdogSec=30
ExecStart=/usr/bin/edged run -c /etc/edged/edged.toml
Restart=on-failure
User=edged
Group=edged
SupplementaryGroups=dialout
StateDirectory=edged
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
NoNewPrivileges=yes
DevicePolicy=closed
DeviceAllow=char-ttyUSB rw
DeviceAllow=char-ttyACM rw
DeviceAllow=char-ttyAMA rw
DeviceAllow=char-ttyS rw
CapabilityBoundingSet=
AmbientCapabilities=
WantedBy=multi-user.target
EOF
check "unit grants no capability and no device beyond serial ports" \
	bash -c '! grep -E "^(CapabilityBoundingSet|AmbientCapabilities)=.+|^DeviceAllow=(/dev/|block-)|^PrivateDevices=yes" "$1"' _ "$unit"

# ---------------------------------------------------------------- run binaries
section "edged version / edged check on every architecture"
declare -A runner=([amd64]='' [arm64]=qemu-aarch64-static [armhf]=qemu-arm-static)
for arch in amd64 arm64 armhf; do
	bin=$tmp/x-$arch/usr/bin/edged
	[[ -x $bin ]] || continue
	r=${runner[$arch]}
	if [[ -n $r ]] && ! have "$r"; then
		skip "$arch binary runs under qemu-user-static" "$r not installed (apt-get install qemu-user-static)"
		continue
	fi
	if [[ -z $r && $(uname -m) != x86_64 ]]; then
		skip "amd64 binary runs natively" "this machine is $(uname -m)"
		continue
	fi
	label=$arch${r:+ (under $r)}
	if out=$(${r:+"$r"} "$bin" version 2>&1); then
		ok "$label: edged version exits 0 and prints: $(head -n1 <<<"$out")"
		check "$label: edged version names version $VERSION" grep -qF -- "$VERSION" <<<"$out"
	else
		not_ok "$label: edged version exits 0"
		printf '%s\n' "$out" | sed 's/^/       /' | head -n 20
	fi
	check "$label: edged check -c configs/edged.toml exits 0" ${r:+"$r"} "$bin" check -c configs/edged.toml
done

# ---------------------------------------------------------------- install
section "install into a Debian bookworm root"
if [[ $(id -u) -ne 0 ]]; then
	skip "install, upgrade, remove and purge in a Debian root" "needs root (debootstrap, chroot)"
	echo "sizes:$sizes"
	finish
fi
if ! have debootstrap; then
	skip "install, upgrade, remove and purge in a Debian root" "debootstrap not installed (apt-get install debootstrap)"
	echo "sizes:$sizes"
	finish
fi
if [[ $(uname -m) != x86_64 ]]; then
	skip "install, upgrade, remove and purge in a Debian root" "the root is amd64 and this machine is $(uname -m)"
	echo "sizes:$sizes"
	finish
fi

# The mirror: EDGED_DEBIAN_MIRROR, else the first Debian one apt uses here.
mirror=${EDGED_DEBIAN_MIRROR:-$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
	grep -E '^[[:space:]]*(deb|URIs:)[[:space:]]' | grep -oE 'https?://[^ ]+/debian/?' | head -n1)}
mirror=${mirror:-http://deb.debian.org/debian}
base=$cache/bookworm-minbase-systemd.tar.gz
mkdir -p "$cache"
if [[ ! -s $base || -n $(find "$base" -mtime +30 2>/dev/null) ]]; then
	echo "test-deb: bootstrapping Debian bookworm (minbase + systemd) from $mirror into the cache"
	boot=$tmp/bootstrap
	if debootstrap --variant=minbase --include=systemd bookworm "$boot" "$mirror" >"$tmp/debootstrap.log" 2>&1 &&
		tar -C "$boot" -czf "$base.tmp" . && mv "$base.tmp" "$base"; then
		ok "debootstrap makes a bookworm root"
	else
		not_ok "debootstrap makes a bookworm root (log below)"
		tail -n 20 "$tmp/debootstrap.log" | sed 's/^/       /'
		finish
	fi
	rm -rf --one-file-system "$boot"
fi
chroot_dir=$tmp/root
mkdir -p "$chroot_dir"
tar -C "$chroot_dir" -xzf "$base"
in_root() { chroot "$chroot_dir" "$@"; }
amd64_deb=$tmp/dist/edged_${deb_version}_amd64.deb
cp "$amd64_deb" "$chroot_dir/tmp/edged.deb"
# An upgrade: the same tree under a later version.
up_version=$deb_version+upgradetest
if DEB_VERSION=$up_version DIST=$tmp/dist-up packaging/build-deb.sh amd64 >/dev/null; then
	cp "$tmp/dist-up/edged_${up_version}_amd64.deb" "$chroot_dir/tmp/edged-up.deb"
else
	not_ok "a package for the upgrade test builds"
fi

# stat_is NAME PATH 'MODE OWNER GROUP' checks a path inside the root.
stat_is() {
	check_eq "$1" "$3" "$(in_root stat -c '%a %U %G' "$2" 2>&1)"
}

# installed_checks WHO runs every post-install check; WHO says which tool
# made the user.
installed_checks() {
	local who=$1
	check "[$who] group edged exists" in_root getent group edged
	check_eq "[$who] user edged is a system user with no home and no login" \
		"/nonexistent:/usr/sbin/nologin:system" \
		"$(in_root getent passwd edged | awk -F: '{ print $6 ":" $7 ":" ($3 < 1000 ? "system" : "uid " $3) }')"
	check_eq "[$who] user edged's primary group is edged" edged "$(in_root id -gn edged 2>&1)"
	check "[$who] user edged is in group dialout" bash -c 'chroot "$1" id -nG edged | tr " " "\n" | grep -qx dialout' _ "$chroot_dir"
	check "[$who] /nonexistent was not created" test ! -e "$chroot_dir/nonexistent"
	check "[$who] user edged has no password" bash -c '[[ $(chroot "$1" getent shadow edged | cut -d: -f2) =~ ^[!*] ]]' _ "$chroot_dir"
	stat_is "[$who] /usr/bin/edged is 755 root root" /usr/bin/edged "755 root root"
	stat_is "[$who] /etc/edged is 750 root edged" /etc/edged "750 root edged"
	stat_is "[$who] /etc/edged/edged.toml is 640 root edged" /etc/edged/edged.toml "640 root edged"
	stat_is "[$who] /var/lib/edged is 750 edged edged" /var/lib/edged "750 edged edged"
	stat_is "[$who] the unit is 644 root root" /lib/systemd/system/edged.service "644 root root"
	check "[$who] the service is enabled for multi-user.target" \
		test -L "$chroot_dir/etc/systemd/system/multi-user.target.wants/edged.service"
	check "[$who] dpkg knows /etc/edged/edged.toml as a conffile" \
		bash -c 'chroot "$1" dpkg-query -W -f="\${Conffiles}" edged | grep -q "/etc/edged/edged.toml "' _ "$chroot_dir"
	check "[$who] edged version runs in the root" in_root /usr/bin/edged version
	check "[$who] edged check -c /etc/edged/edged.toml passes in the root as user edged" \
		chroot --userspec=edged:edged "$chroot_dir" /usr/bin/edged check -c /etc/edged/edged.toml
	check "[$who] a certificate in /etc/edged (640 root:edged) is readable as user edged" bash -c '
		printf "cert\n" >"$1/etc/edged/client.pem" && chroot "$1" chown root:edged /etc/edged/client.pem &&
		chmod 640 "$1/etc/edged/client.pem" && chroot --userspec=edged:edged "$1" cat /etc/edged/client.pem >/dev/null' _ "$chroot_dir"
	rm -f "$chroot_dir/etc/edged/client.pem"
	check "[$who] the config is not readable by other users" \
		bash -c '! chroot --userspec=nobody:nogroup "$1" cat /etc/edged/edged.toml' _ "$chroot_dir"
	check "[$who] user edged can write its state directory" \
		chroot --userspec=edged:edged "$chroot_dir" sh -c 'echo x >/var/lib/edged/probe && rm /var/lib/edged/probe'
}

lifecycle() {
	local who=$1
	check "[$who] dpkg -i installs the amd64 package" in_root dpkg -i /tmp/edged.deb
	installed_checks "$who"
	check "[$who] installing the same package again succeeds" in_root dpkg -i /tmp/edged.deb

	if [[ -f $chroot_dir/tmp/edged-up.deb ]]; then
		echo '# edited by the test' >>"$chroot_dir/etc/edged/edged.toml"
		check "[$who] dpkg -i upgrades to $up_version" in_root dpkg -i --force-confdef --force-confold /tmp/edged-up.deb
		check_eq "[$who] the upgrade is installed" "$up_version" "$(in_root dpkg-query -W -f='${Version}' edged)"
		check "[$who] the upgrade keeps the edited config" grep -qx '# edited by the test' "$chroot_dir/etc/edged/edged.toml"
		check "[$who] the upgrade leaves no .dpkg-new or .dpkg-dist config" \
			bash -c '! ls "$1"/etc/edged/ | grep -q dpkg' _ "$chroot_dir"
		stat_is "[$who] after the upgrade /etc/edged/edged.toml is 640 root edged" /etc/edged/edged.toml "640 root edged"
	fi

	echo state >"$chroot_dir/var/lib/edged/buffer.db"
	check "[$who] dpkg -r removes the package" in_root dpkg -r edged
	check "[$who] remove deletes /usr/bin/edged" test ! -e "$chroot_dir/usr/bin/edged"
	check "[$who] remove keeps the config" test -f "$chroot_dir/etc/edged/edged.toml"
	check "[$who] remove keeps the buffer in /var/lib/edged" test -f "$chroot_dir/var/lib/edged/buffer.db"
	check "[$who] remove keeps user edged" in_root getent passwd edged
	# In one round an administrator's certificate stays behind in /etc/edged.
	[[ $who == adduser ]] && in_root install -m 0640 -g edged /dev/null /etc/edged/admin.pem
	check "[$who] dpkg -P purges the package" in_root dpkg -P edged
	check "[$who] purge deletes /var/lib/edged" test ! -e "$chroot_dir/var/lib/edged"
	if [[ $who == adduser ]]; then
		check_eq "[$who] purge keeps a certificate the administrator added, group root" "640 root root" \
			"$(in_root stat -c '%a %U %G' /etc/edged/admin.pem 2>&1)"
		check_eq "[$who] ...and /etc/edged is left to root" "750 root root" "$(in_root stat -c '%a %U %G' /etc/edged 2>&1)"
		rm -rf "$chroot_dir/etc/edged"
	else
		check "[$who] purge deletes /etc/edged" test ! -e "$chroot_dir/etc/edged"
	fi
	check "[$who] purge deletes user edged" bash -c '! chroot "$1" getent passwd edged' _ "$chroot_dir"
	check "[$who] purge deletes group edged" bash -c '! chroot "$1" getent group edged' _ "$chroot_dir"
	check "[$who] purge deletes the enable symlink" \
		test ! -L "$chroot_dir/etc/systemd/system/multi-user.target.wants/edged.service"
}

# bookworm's apt depends on adduser, so the root has it: the first round
# uses adduser/deluser; the second, with adduser gone (as on systems whose
# apt no longer needs it), the useradd/userdel fallback.
check "the bookworm root has adduser" in_root sh -c 'command -v adduser'
lifecycle adduser

# systemd-analyze verify wants the unit's world: the binary it starts and
# systemd's own units, so it runs against the root with edged installed.
# Any word from it (unknown keys, bad values) is a failure, not only its
# exit code.
in_root dpkg -i /tmp/edged.deb >/dev/null 2>&1
verify_quiet() {
	local out
	if out=$("$@" 2>&1) && [[ -z $out ]]; then
		return 0
	fi
	printf '%s\n' "$out"
	return 1
}
if have systemd-analyze; then
	check "systemd-analyze verify accepts the installed unit without a warning" \
		verify_quiet systemd-analyze verify --root="$chroot_dir" /lib/systemd/system/edged.service
else
	skip "systemd-analyze verify accepts the installed unit" "systemd-analyze not installed (apt-get install systemd)"
fi
if have systemd-analyze; then
	exposure=$(systemd-analyze security --offline=yes --root="$chroot_dir" /lib/systemd/system/edged.service 2>&1 |
		sed -n 's/.*Overall exposure level for edged.service: \([0-9.]*\).*/\1/p')
	check "systemd-analyze security rates the unit's exposure ${exposure:-?} (at most 2.0)" \
		systemd-analyze security --offline=yes --threshold=20 --root="$chroot_dir" /lib/systemd/system/edged.service
fi
check "bookworm's own systemd-analyze verify accepts the unit without a warning" \
	verify_quiet in_root systemd-analyze verify /lib/systemd/system/edged.service
# run_daemon starts the installed daemon the way the unit does (user edged,
# group dialout, the shipped config) in its own network namespace, with a
# notify socket and a 1 s watchdog, and checks it reports READY=1 and pings
# WATCHDOG=1 (what Type=notify and WatchdogSec= rely on), then stops on
# SIGTERM.
run_daemon() {
	local sock=/run/edged-test-notify.sock lpid dpid i
	if ! have python3 || ! have ip || ! unshare -n true 2>/dev/null; then
		skip "the installed daemon starts and speaks sd_notify" "needs python3, ip and unshare -n"
		return
	fi
	mkdir -p "$chroot_dir/run"
	python3 - "$chroot_dir$sock" >"$tmp/notify.log" 2>&1 <<'EOF' &
import os, socket, sys, time
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
print("listening", flush=True)
want, seen, deadline = {"READY=1", "WATCHDOG=1"}, set(), time.monotonic() + 30
while not want <= seen:
    left = deadline - time.monotonic()
    if left <= 0:
        sys.exit(f"timed out; saw {sorted(seen)}")
    s.settimeout(left)
    try:
        msg = s.recv(4096).decode()
    except socket.timeout:
        continue
    for line in msg.splitlines():
        print(line, flush=True)
        seen.add(line)
EOF
	lpid=$!
	for ((i = 0; i < 100; i++)); do
		[[ -S $chroot_dir$sock ]] && break
		sleep 0.1
	done
	unshare -n sh -c 'ip link set lo up && exec chroot --userspec=edged:edged --groups=dialout "$1" \
		env -i NOTIFY_SOCKET="$2" WATCHDOG_USEC=1000000 /usr/bin/edged run -c /etc/edged/edged.toml' \
		_ "$chroot_dir" "$sock" >"$tmp/daemon.log" 2>&1 &
	dpid=$!
	if wait "$lpid"; then
		ok "the installed daemon, as user edged with the shipped config, sends READY=1 and WATCHDOG=1"
	else
		not_ok "the installed daemon, as user edged with the shipped config, sends READY=1 and WATCHDOG=1"
		sed 's/^/       notify: /' "$tmp/notify.log" | tail -n 10
		sed 's/^/       daemon: /' "$tmp/daemon.log" | tail -n 20
	fi
	kill -TERM "$dpid" 2>/dev/null
	for ((i = 0; i < 150; i++)); do
		kill -0 "$dpid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$dpid" 2>/dev/null; then
		kill -KILL "$dpid"
		not_ok "the daemon stops within 15 s of SIGTERM"
	else
		wait "$dpid"
		check_eq "the daemon exits 0 on SIGTERM" 0 "$?"
		sed 's/^/       daemon: /' "$tmp/daemon.log" | head -n 8
	fi
	check "the daemon kept its state under /var/lib/edged, owned by edged" \
		bash -c '[[ -n $(chroot "$1" find /var/lib/edged -mindepth 1 -user edged) ]]' _ "$chroot_dir"
	rm -f "$chroot_dir$sock"
}
run_daemon

in_root dpkg -P edged >/dev/null 2>&1

# with_systemd_running plays a booted system: /run/systemd/system exists and
# systemctl is a stand-in that logs its arguments and fails `start` when
# /tmp/systemctl.fail exists, so the maintainer scripts take their "systemd
# runs" branches.
with_systemd_running() {
	local sc=$chroot_dir/usr/bin/systemctl log=$chroot_dir/tmp/systemctl.log calls
	mv "$sc" "$sc.real"
	cat >"$sc" <<'EOF'
#!/bin/sh
echo "$*" >>/tmp/systemctl.log
[ "$1" = start ] && [ -e /tmp/systemctl.fail ] && exit 1
exit 0
EOF
	chmod 0755 "$sc"
	mkdir -p "$chroot_dir/run/systemd/system"
	: >"$log"

	check "[systemd running] dpkg -i installs" in_root dpkg -i /tmp/edged.deb
	# deb-systemd-helper may first ask `systemctl preset` (the admin's policy).
	calls=$(tr '\n' ';' <"$log")
	check "[systemd running] first install reloads systemd and starts edged (calls: $calls)" \
		test "${calls#*preset edged.service;}" = "--system daemon-reload;start edged.service;"
	: >"$log"
	check "[systemd running] dpkg -i upgrades" in_root dpkg -i --force-confdef --force-confold /tmp/edged-up.deb
	check_eq "[systemd running] the upgrade leaves edged running, then restarts it" "--system daemon-reload;restart edged.service;" "$(tr '\n' ';' <"$log")"
	: >"$log"
	check "[systemd running] dpkg -r removes" in_root dpkg -r edged
	check_eq "[systemd running] remove stops edged, then reloads systemd" "stop edged.service;--system daemon-reload;" "$(tr '\n' ';' <"$log")"
	in_root dpkg -P edged >/dev/null 2>&1
	touch "$chroot_dir/tmp/systemctl.fail"
	: >"$log"
	check "[systemd running] a service that fails to start does not fail the install, and says where to look" \
		bash -c 'chroot "$1" dpkg -i /tmp/edged.deb 2>&1 | tee /dev/stderr | grep -qF "journalctl -u edged"' _ "$chroot_dir"
	check_eq "[systemd running] ...and the package is configured" "install ok installed" \
		"$(in_root dpkg-query -W -f='${Status}' edged)"
	in_root dpkg -P edged >/dev/null 2>&1

	rm -f "$chroot_dir/tmp/systemctl.fail" "$log"
	rmdir "$chroot_dir/run/systemd/system"
	mv "$sc.real" "$sc"
}
if [[ -f $chroot_dir/tmp/edged-up.deb ]]; then
	with_systemd_running
fi

if in_root dpkg --purge --force-depends adduser >"$tmp/adduser.log" 2>&1; then
	check "the root has no adduser any more" bash -c '! chroot "$1" sh -c "command -v adduser || command -v deluser"' _ "$chroot_dir"
	lifecycle useradd
else
	not_ok "adduser can be removed from the root for the useradd round"
	sed 's/^/       /' "$tmp/adduser.log" | tail -n 20
fi

# ---------------------------------------------------------------- boot
# boot_checks boots the root with systemd as PID 1 (systemd-nspawn, private
# network, so nothing reaches the host's ports), installs the package and
# checks the real service under the real unit: started by postinst, running
# as edged with dialout, no capabilities, seccomp on, watchdog pings
# accepted, logging to the journal; restarted by an upgrade; stopped by
# remove.
boot_checks() {
	local name=edged-test-$$ npid init='' i st
	if ! have systemd-nspawn || ! have nsenter; then
		skip "the service under a booted systemd" "systemd-nspawn not installed (apt-get install systemd-container)"
		return
	fi
	systemd-nspawn -q --register=no --keep-unit --private-network --console=passive \
		-D "$chroot_dir" -M "$name" --boot >"$tmp/nspawn.log" 2>&1 </dev/null &
	npid=$!
	for ((i = 0; i < 300; i++)); do
		init=$(pgrep -P "$npid" -x systemd) && break
		kill -0 "$npid" 2>/dev/null || break
		sleep 0.1
	done
	in_boot() { nsenter -t "$init" -a -- /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
	# Wait for the boot to finish; early on systemctl cannot reach systemd yet.
	st=''
	for ((i = 0; i < 900 && ${#init} > 0; i++)); do
		st=$(nsenter -t "$init" -a -- /usr/bin/systemctl is-system-running 2>&1)
		[[ $st == running || $st == degraded ]] && break
		kill -0 "$npid" 2>/dev/null || break
		sleep 0.1
	done
	if [[ $st != running && $st != degraded ]]; then
		if [[ -n $init ]] || grep -q . "$tmp/nspawn.log"; then
			not_ok "systemd boots the Debian root in a container (state: ${st:-no init})"
			sed 's/^/       /' "$tmp/nspawn.log" | tail -n 20
		else
			skip "the service under a booted systemd" "systemd-nspawn could not start here"
		fi
		kill "$npid" 2>/dev/null
		wait "$npid" 2>/dev/null
		return
	fi
	ok "systemd boots the Debian root in a container ($st)"

	# The container has its own /tmp; the packages go where it sees them.
	mkdir -p "$chroot_dir/srv/edged-test"
	cp "$chroot_dir"/tmp/edged*.deb "$chroot_dir/srv/edged-test/"
	check "[booted] dpkg -i installs" in_boot dpkg -i /srv/edged-test/edged.deb
	if [[ $(in_boot systemctl is-active edged) == active ]]; then
		ok "[booted] postinst started edged (Type=notify: active means READY=1 came)"
		boot_service_checks
	else
		not_ok "[booted] postinst started edged (Type=notify: active means READY=1 came)"
		in_boot journalctl -u edged --no-pager -n 30 2>&1 | sed 's/^/       /'
	fi
	check "[booted] dpkg -P purges" in_boot dpkg -P edged

	in_boot systemctl poweroff >/dev/null 2>&1
	for ((i = 0; i < 300; i++)); do
		kill -0 "$npid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$npid" 2>/dev/null; then
		kill "$npid"
		not_ok "the container powers off within 30 s"
	fi
	wait "$npid" 2>/dev/null
	rm -rf "$chroot_dir/srv/edged-test"
}

# boot_service_checks runs inside boot_checks, with edged installed and active.
boot_service_checks() {
	local i pid0 pid1 wd0 wd1 status ids
	check_eq "[booted] edged is enabled" enabled "$(in_boot systemctl is-enabled edged)"
	pid0=$(in_boot systemctl show -p MainPID --value edged)
	status=$(in_boot cat "/proc/$pid0/status" 2>&1)
	ids="$(in_boot id -u edged):$(in_boot id -g edged)"
	check_eq "[booted] edged runs as user and group edged ($ids)" "$ids" \
		"$(awk '/^Uid:/ { u = $2 } /^Gid:/ { g = $2 } END { print u ":" g }' <<<"$status")"
	check "[booted] edged runs with group dialout" \
		bash -c 'grep "^Groups:" <<<"$1" | grep -qw "$2"' _ "$status" "$(in_boot getent group dialout | cut -d: -f3)"
	for field in CapEff CapPrm CapBnd CapAmb; do
		check "[booted] edged has no capabilities ($field)" grep -qE "^$field:[[:space:]]+0+$" <<<"$status"
	done
	check "[booted] edged runs with no_new_privs" grep -qE '^NoNewPrivs:[[:space:]]+1$' <<<"$status"
	check "[booted] edged runs under a seccomp filter" grep -qE '^Seccomp:[[:space:]]+2$' <<<"$status"
	check "[booted] edged logs to the journal (journalctl -u edged)" \
		bash -c '[[ -n $(nsenter -t "$1" -a -- journalctl _SYSTEMD_UNIT=edged.service -o cat --no-pager) ]]' _ "$init"
	check "[booted] edged keeps state in /var/lib/edged, owned by edged" \
		bash -c '[[ -n $(nsenter -t "$1" -a -- find /var/lib/edged -mindepth 1 -user edged) ]]' _ "$init"

	# The watchdog: a drop-in shortens WatchdogSec to 2 s; the daemon must
	# ping (WatchdogTimestamp moves) and live on (same PID, no restart).
	in_boot mkdir -p /run/systemd/system/edged.service.d
	in_boot sh -c 'printf "[Service]\nWatchdogSec=2\n" >/run/systemd/system/edged.service.d/test-watchdog.conf'
	in_boot systemctl daemon-reload
	in_boot systemctl restart edged
	pid1=$(in_boot systemctl show -p MainPID --value edged)
	wd0=$(in_boot systemctl show -p WatchdogTimestampMonotonic --value edged)
	wd1=$wd0
	for ((i = 0; i < 60; i++)); do
		sleep 0.1
		wd1=$(in_boot systemctl show -p WatchdogTimestampMonotonic --value edged)
		[[ $wd1 != "$wd0" ]] && break
	done
	check "[booted] edged pings the watchdog (WatchdogTimestamp moves)" test "$wd1" != "$wd0"
	sleep 3 # two more watchdog periods: a missing ping would have killed it by now
	check_eq "[booted] with WatchdogSec=2, edged is still the same running process after 3 s" \
		"active $pid1 0" \
		"$(in_boot systemctl is-active edged) $(in_boot systemctl show -p MainPID --value edged) $(in_boot systemctl show -p NRestarts --value edged)"
	in_boot rm -rf /run/systemd/system/edged.service.d
	in_boot systemctl daemon-reload

	pid0=$(in_boot systemctl show -p MainPID --value edged)
	if [[ -f $chroot_dir/srv/edged-test/edged-up.deb ]]; then
		check "[booted] dpkg -i upgrades" in_boot dpkg -i --force-confdef --force-confold /srv/edged-test/edged-up.deb
		pid1=$(in_boot systemctl show -p MainPID --value edged)
		check "[booted] the upgrade restarted edged (PID $pid0 -> $pid1) and it is active" \
			test "$(in_boot systemctl is-active edged)" = active -a "$pid1" != "$pid0"
	fi
	check "[booted] dpkg -r removes" in_boot dpkg -r edged
	check_eq "[booted] remove stopped edged" inactive "$(in_boot systemctl is-active edged)"
}
# Booting a container depends on what the host allows (cgroups, namespaces),
# so it is opt-in: EDGED_DEB_BOOT=1 make deb-test.
if [[ ${EDGED_DEB_BOOT:-} == 1 ]]; then
	boot_checks
else
	skipped=$((skipped + 1))
	echo "skip - the service under a booted systemd: set EDGED_DEB_BOOT=1 to boot the Debian root with systemd-nspawn"
fi

echo "sizes:$sizes"
finish
