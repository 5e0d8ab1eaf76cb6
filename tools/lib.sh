# SPDX-License-Identifier: GPL-3.0-or-later
# Shared by tools/test, tools/demo and bench/*: package installation and the build.
# Sourced, not executed.

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Everything a fresh Debian 12 machine needs to build, test and demo pool-managerd. libcurl in its
# GnuTLS flavour: libmicrohttpd brings GnuTLS anyway, while the OpenSSL flavour adds libssl and
# initialises OpenSSL in curl_global_init(), about 2 MiB of the daemon's RSS (pool-managerd(8),
# MEMORY). It conflicts with libcurl4-openssl-dev, which apt-get removes when it installs it.
PACKAGES=(
        gcc libc6-dev meson ninja-build pkg-config
        libsystemd-dev libjson-c-dev libcurl4-gnutls-dev libmicrohttpd-dev libinih-dev
        libdbus-1-dev scdoc bash-completion
        systemd dbus dbus-user-session util-linux
        curl python3 python3-dbus python3-behave chromium
        etcd-server etcd-client openssl prometheus
)

# What building the Debian package (dpkg-buildpackage -b, debian/) needs besides PACKAGES, and
# lintian to check it; installed by the commands that build it (tools/boot-test).
DEB_PACKAGES=(build-essential debhelper dpkg-dev fakeroot lintian)

# What tools/boot-test needs on the host to make and boot a Debian 12 system instance.
BOOT_PACKAGES=(debootstrap systemd-container)

# Installs the packages of "$@" that are missing (apt-get, non-interactive, only when needed);
# sets PACKAGES_INSTALLED=1 when it installed any (see build_dir).
ensure_packages() {
        local missing=() p sudo=

        for p in "$@"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
        done
        [ ${#missing[@]} -eq 0 ] && return 0

        if [ "$(id -u)" -ne 0 ]; then
                command -v sudo >/dev/null || { echo "Missing packages ${missing[*]} and no sudo to install them." >&2; return 1; }
                sudo=sudo
        fi
        echo "Installing missing packages: ${missing[*]}" >&2
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
                { $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 &&
                  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; } ||
                return 1
        PACKAGES_INSTALLED=1
}

# Configures (once) and builds a build directory: build_dir DIR [MESON OPTIONS...]
build_dir() {
        local dir=$1; shift
        if [ ! -f "$TOP/$dir/build.ninja" ]; then
                meson setup "$TOP/$dir" "$TOP" "$@" >&2 || return 1
        elif [ -n "${PACKAGES_INSTALLED-}" ]; then
                # What ensure_packages just installed may have replaced what an existing build links
                # (libcurl4-gnutls-dev for libcurl4-openssl-dev: the same libcurl.so, now of the other
                # flavour), and neither meson (it caches what pkg-config said) nor ninja (packaged
                # files keep their old mtimes) would see it: wipe, keeping the options, and rebuild.
                echo "Packages were installed: rebuilding $dir from scratch." >&2
                meson setup --wipe "$TOP/$dir" "$TOP" >&2 || return 1
        fi
        ninja -C "$TOP/$dir" >&2
}
