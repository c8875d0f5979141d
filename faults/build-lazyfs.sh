#!/bin/sh
# Builds LazyFS for `make powercut` into OUT, once: an OUT that holds a
# lazyfs binary is used as it is. Where it cannot be built it says why and
# exits 0, so that the suite then skips with its own reason — or 1 under
# EDGED_REQUIRE_PEERS=1 (CI).
# usage: build-lazyfs.sh SRC OUT   (SRC: ../shared/tools/lazyfs)
set -eu
src=$1
out=$2
[ -x "$out/lazyfs" ] && exit 0

deps="cmake g++ libfuse3-dev fuse3 libspdlog-dev libtoml11-dev"
cannot() {
	echo "powercut: cannot build LazyFS: $*" >&2
	if [ "${EDGED_REQUIRE_PEERS:-}" = 1 ]; then
		exit 1
	fi
	echo "powercut: the suite will skip (EDGED_REQUIRE_PEERS=1 fails instead)" >&2
	exit 0
}
[ -x "$src/build.sh" ] || cannot "no sources at $src (the repository is cloned with ../shared beside it)"
for tool in cmake g++; do
	command -v "$tool" >/dev/null || cannot "$tool is missing: apt-get install $deps"
done
echo "powercut: building LazyFS from $src into $out (about a minute)" >&2
rm -rf "$out.partial"
mkdir -p "$(dirname "$out")"
if ! "$src/build.sh" "$out.partial" >"$out.build.log" 2>&1; then
	tail -n 30 "$out.build.log" >&2
	cannot "the build failed, see $out.build.log (are the headers installed? apt-get install $deps)"
fi
rm -rf "$out"
mv "$out.partial" "$out"
