#!/usr/bin/env bash
# Builds Lua 5.4, libevent 2.1 (and lua-cjson) for 64-bit Windows from Debian's own source
# packages into DIR (default build-win/deps): DIR/apt is an APT configuration of this
# build's own (not the system's: deb-src lines for bookworm on the mirror the system's
# sources use), DIR/src the unpacked sources with Debian's patches applied (dpkg-source -x
# applies debian/patches in series order, the CVE fixes among them), DIR/prefix the static
# libevent and the patched Lua and lua-cjson sources that cmake/windows.cmake compiles.
# DIR/.done-* stamps make a rerun skip each step.
# Usage: bash cmake/win-deps.sh DIR
set -euo pipefail
dir=$(realpath -m "${1:-build-win/deps}")
host=x86_64-w64-mingw32
mkdir -p "$dir"
cd "$dir"

if [ ! -e .done-apt ]; then
  # The mirror the system already uses (deb822 or one-line sources), deb.debian.org if none.
  mirror=$(grep -hoE '(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list \
             /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
           grep -oE 'https?://[^ ]+' | head -n1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  mkdir -p apt/etc/apt.conf.d apt/etc/preferences.d apt/etc/sources.list.d \
           apt/state/lists/partial apt/cache/archives/partial
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror%/} bookworm main" \
    > apt/etc/sources.list
  : > apt/state/status
  echo "win-deps: source packages from ${mirror%/} (bookworm)"
  touch .done-apt
fi
aptopts=(-o Dir::Etc="$dir/apt/etc" -o Dir::Etc::SourceList="$dir/apt/etc/sources.list"
         -o Dir::Etc::SourceParts="$dir/apt/etc/sources.list.d"
         -o Dir::Etc::Parts="$dir/apt/etc/apt.conf.d"
         -o Dir::Etc::PreferencesParts="$dir/apt/etc/preferences.d"
         -o Dir::State="$dir/apt/state" -o Dir::State::Lists="$dir/apt/state/lists"
         -o Dir::State::status="$dir/apt/state/status" -o Dir::Cache="$dir/apt/cache"
         -o APT::Sandbox::User=root -qq)

if [ ! -e .done-source ]; then
  apt-get "${aptopts[@]}" update
  rm -rf src && mkdir src
  (cd src && apt-get "${aptopts[@]}" source --download-only lua5.4 libevent)
  (cd src && for dsc in *.dsc; do dpkg-source --no-check -x "$dsc" >/dev/null; done)
  touch .done-source
fi
if [ ! -e .done-source-cjson ]; then
  # lua-cjson: the shipped scripts' JSON encoder (a C module on Linux, compiled into the
  # Windows binary and preloaded: win/linit_win.c).
  (cd src && apt-get "${aptopts[@]}" source --download-only lua-cjson &&
   dpkg-source --no-check -x lua-cjson_*.dsc >/dev/null)
  touch .done-source-cjson
fi
luasrc=$(ls -d src/lua5.4-*/ | head -n1)
cjsonsrc=$(ls -d src/lua-cjson-*/ | head -n1)
evsrc=$(ls -d src/libevent-*/ | head -n1)

if [ ! -e .done-libevent ]; then
  rm -rf prefix/libevent build-libevent
  cp -a "$evsrc" build-libevent
  (cd build-libevent && autoreconf -fi >/dev/null 2>&1 &&
   ./configure -q --host=$host --prefix="$dir/prefix/libevent" --disable-openssl \
       --disable-shared --enable-static --disable-samples --disable-libevent-regress \
       --disable-debug-mode >/dev/null &&
   make -j"$(nproc)" >"$dir/libevent-build.log" 2>&1 &&
   make install >>"$dir/libevent-build.log" 2>&1) ||
    { echo "win-deps: libevent build failed, see $dir/libevent-build.log" >&2; exit 1; }
  rm -rf build-libevent
  touch .done-libevent
fi

if [ ! -e .done-lua ]; then
  # Lua's own sources, patched: cmake/windows.cmake compiles them (Debian's build-system
  # patch turns the Makefile into a libtool one for Linux, so `make mingw` is not used).
  rm -rf prefix/lua && mkdir -p prefix/lua
  cp -a "$luasrc/src" prefix/lua/src
  touch .done-lua
fi
if [ ! -e .done-cjson ]; then
  rm -rf prefix/cjson && mkdir -p prefix/cjson
  cp -a "$cjsonsrc"/*.c "$cjsonsrc"/*.h prefix/cjson/
  touch .done-cjson
fi
echo "win-deps: ready in $dir"
