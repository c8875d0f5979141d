#!/usr/bin/env bash
# build-deb.sh builds dist/edged_<version>_<arch>.deb for arm64, armhf and
# amd64 on any Linux machine, without root and without a cross toolchain:
# the binaries are static pure-Go builds and dpkg-deb assembles the
# packages (--root-owner-group, so no fakeroot either).
#
# Usage: packaging/build-deb.sh [ARCH...]      (default: arm64 armhf amd64)
#        packaging/build-deb.sh --deb-version DESCRIBE [EPOCH]
#
# Environment:
#   VERSION      version stamped into the binary (default: git describe --tags --always --dirty)
#   COMMIT       commit stamped into the binary (default: git rev-parse --short HEAD)
#   DEB_VERSION  package version (default: VERSION made into a Debian version)
#   DIST         output directory (default: dist)
#   MAINTAINER   the Maintainer field
set -euo pipefail

# deb_version DESCRIBE EPOCH turns `git describe --tags --always --dirty`
# output into a Debian version that starts with a digit and sorts right:
#   v1.2.3            -> 1.2.3
#   v1.2.3-4-gabc1234 -> 1.2.3+4.gabc1234      (after the tag)
#   v1.3.0-rc1        -> 1.3.0~rc1             (before 1.3.0)
#   abc1234 (no tag)  -> 0.0.0~git<UTC yyyymmddhhmmss of EPOCH>.abc1234
#   ...-dirty         -> ...+dirty (or .dirty after a +)
deb_version() {
	local d=$1 epoch=${2:-0} dirty='' base n sha
	if [[ $d == *-dirty ]]; then
		dirty=1
		d=${d%-dirty}
	fi
	if [[ $d =~ ^(.+)-([0-9]+)-g([0-9a-f]+)$ ]]; then
		base=${BASH_REMATCH[1]} n=${BASH_REMATCH[2]} sha=${BASH_REMATCH[3]}
		base="$(clean_tag "$base")+$n.g$sha"
	elif [[ $d =~ ^[0-9a-f]{7,40}$ ]]; then
		base="0.0.0~git$(date -u -d "@$epoch" +%Y%m%d%H%M%S).$d"
	else
		base=$(clean_tag "$d")
	fi
	if [[ -n $dirty ]]; then
		if [[ $base == *+* ]]; then base+=.dirty; else base+=+dirty; fi
	fi
	if ! [[ $base =~ ^[0-9][A-Za-z0-9.+~]*$ ]]; then
		echo "build-deb: cannot make a Debian version of '$1' (got '$base')" >&2
		return 1
	fi
	printf '%s\n' "$base"
}

# clean_tag makes a tag name the upstream part of a native Debian version:
# no leading v, '-' and '_' become '~' (pre-release), other characters
# outside [A-Za-z0-9.+~] become '.', and it must start with a digit.
clean_tag() {
	local t=$1
	t=${t#[vV]}
	t=${t//[-_]/\~}
	t=$(printf '%s' "$t" | LC_ALL=C sed -E 's/[^A-Za-z0-9.+~]/./g')
	if ! [[ $t =~ ^[0-9] ]]; then
		t="0.0.0~${t#\~}"
	fi
	printf '%s' "$t"
}

if [[ ${1:-} == --deb-version ]]; then
	deb_version "${2:?--deb-version needs a git describe string}" "${3:-0}"
	exit
fi

cd "$(dirname "$0")/.."
root=$PWD
export PATH="$PATH:/usr/local/go/bin"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false}"

for tool in go dpkg-deb; do
	command -v "$tool" >/dev/null || {
		echo "build-deb: $tool not found (dpkg-deb is in Debian's dpkg package)" >&2
		exit 1
	}
done
for f in configs/edged.toml packaging/edged.service packaging/control.in packaging/copyright; do
	[[ -f $f ]] || {
		echo "build-deb: missing $root/$f" >&2
		exit 1
	}
done

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
COMMIT=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
# Timestamps in the packages come from the commit, so a rebuild of the same
# commit gives the same bytes.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH
DEB_VERSION=${DEB_VERSION:-$(deb_version "$VERSION" "$SOURCE_DATE_EPOCH")}
DIST=${DIST:-dist}
MAINTAINER=${MAINTAINER:-edged maintainers <maintainers@edged.invalid>}
arches=("$@")
[[ ${#arches[@]} -gt 0 ]] || arches=(arm64 armhf amd64)

work=$(mktemp -d "${TMPDIR:-/tmp}/edged-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$DIST"

# licence_name names the licence in a LICENSE file by its well-known words.
licence_name() {
	if grep -q 'Permission is hereby granted, free of charge' "$1"; then
		echo MIT
	elif grep -q 'Redistribution and use in source and binary forms' "$1"; then
		if grep -qi 'Neither the name' "$1"; then echo BSD-3-Clause; else echo BSD-2-Clause; fi
	elif grep -q 'Apache License' "$1"; then
		echo Apache-2.0
	elif grep -q 'Mozilla Public License' "$1"; then
		echo MPL-2.0
	elif grep -q 'Eclipse Public License' "$1"; then
		echo EPL-2.0
	else
		echo "see text"
	fi
}

# write_copyright writes edged's licence and those of the Go standard library
# and every module linked into the binary (their notices must travel with it).
write_copyright() {
	local out=$1 name='not yet chosen (the source tree has no LICENSE file)'
	[[ -f LICENSE ]] && name=$(licence_name LICENSE)
	sed "s|@LICENSE_NAME@|$name|" packaging/copyright >"$out"
	[[ -f LICENSE ]] && { echo; cat LICENSE; } >>"$out"
	local mods mod ver dir lic
	mods=$(go list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' ./cmd/edged | LC_ALL=C sort -u)
	while read -r mod ver dir; do
		lic=$(find "$dir" -maxdepth 1 -type f \( -iname 'LICENSE*' -o -iname 'LICENCE*' -o -iname 'COPYING*' \) | LC_ALL=C sort | head -n1)
		if [[ -z $lic ]]; then
			echo "build-deb: no licence file in $mod $ver ($dir)" >&2
			return 1
		fi
		printf '\n==== %s %s: %s\n\n' "$mod" "$ver" "$(licence_name "$lic")"
		cat "$lic"
	done >>"$out" < <(
		printf 'Go-standard-library %s %s\n' "$(go env GOVERSION)" "$(go env GOROOT)"
		[[ -z $mods ]] || printf '%s\n' "$mods"
	)
}

build_one() {
	local arch=$1 goarch goarm=''
	case $arch in
	amd64) goarch=amd64 ;;
	arm64) goarch=arm64 ;;
	armhf) goarch=arm goarm=6 ;; # ARMv6 + VFP: every Raspberry Pi, incl. Zero and 1
	*)
		echo "build-deb: unknown architecture $arch (want amd64, arm64 or armhf)" >&2
		return 1
		;;
	esac

	local stage=$work/$arch
	install -d -m 0755 "$stage/usr/bin" "$stage/usr/share/edged/profiles" \
		"$stage/lib/systemd/system" "$stage/usr/share/doc/edged/examples" "$stage/DEBIAN"
	install -d -m 0750 "$stage/etc/edged"

	GOOS=linux GOARCH=$goarch GOARM=$goarm go build -trimpath \
		-ldflags "-s -w -X main.version=$VERSION -X main.commit=$COMMIT" \
		-o "$stage/usr/bin/edged" ./cmd/edged
	chmod 0755 "$stage/usr/bin/edged"

	install -m 0640 configs/edged.toml "$stage/etc/edged/edged.toml"
	install -m 0644 packaging/edged.service "$stage/lib/systemd/system/edged.service"
	local f
	for f in configs/profiles/*.toml; do
		[[ -e $f ]] && install -m 0644 "$f" "$stage/usr/share/edged/profiles/"
	done
	for f in configs/*.toml; do
		[[ -e $f ]] && install -m 0644 "$f" "$stage/usr/share/doc/edged/examples/"
	done
	install -m 0644 README.md "$stage/usr/share/doc/edged/README.md"
	write_copyright "$stage/usr/share/doc/edged/copyright"
	chmod 0644 "$stage/usr/share/doc/edged/copyright"

	install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$stage/DEBIAN/"
	install -m 0644 packaging/debian/conffiles "$stage/DEBIAN/conffiles"
	(cd "$stage" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' |
		LC_ALL=C sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
	chmod 0644 "$stage/DEBIAN/md5sums"

	local size
	size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
	sed -e "s|@VERSION@|$DEB_VERSION|" -e "s|@ARCH@|$arch|" \
		-e "s|@MAINTAINER@|$MAINTAINER|" -e "s|@INSTALLED_SIZE@|$size|" \
		packaging/control.in >"$stage/DEBIAN/control"
	chmod 0644 "$stage/DEBIAN/control"

	find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
	local deb=$DIST/edged_${DEB_VERSION}_$arch.deb
	# xz, not zstd: dpkg on Raspberry Pi OS bullseye cannot read zstd.
	dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
	printf '%-40s package %6s KiB  binary %6s KiB\n' "$deb" \
		"$(($(stat -c %s "$deb") / 1024))" "$(($(stat -c %s "$stage/usr/bin/edged") / 1024))"
}

echo "build-deb: edged $VERSION ($COMMIT) as Debian version $DEB_VERSION"
for arch in "${arches[@]}"; do
	build_one "$arch"
done
