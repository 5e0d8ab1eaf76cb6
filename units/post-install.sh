#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Run by `meson install` (meson.add_install_script, skip_if_destdir) after the files are in
# place: what a package's maintainer scripts would do. Without it a from-source install has no
# pool-managerd group and no pool-engine user until the next boot, systemd does not know the new
# units, and the bus may have read the policy before the group existed (dbus-daemon drops a
# <policy group=…> whose group is unknown, and it re-reads system.d on its own as soon as the
# file appears), so the bus is told to reload last.
#
#   post-install.sh SYSUSERS_CONF TMPFILES_CONF
#
# Only into the live system: never under DESTDIR (a staged or packaged install), only as root,
# and each step only where its tool and its manager exist.
set -euo pipefail

sysusers_conf=$1 tmpfiles_conf=$2

if [ -n "${DESTDIR:-}" ]; then
        exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
        echo "pool-managerd: not root, so not setting up the system; as root run:" >&2
        echo "  systemd-sysusers $sysusers_conf && systemd-tmpfiles --create $tmpfiles_conf &&" \
             "systemctl daemon-reload" >&2
        exit 0
fi

if command -v systemd-sysusers >/dev/null; then
        echo "pool-managerd: creating the pool-managerd group and the pool-engine user (systemd-sysusers)"
        systemd-sysusers "$sysusers_conf"
else
        echo "pool-managerd: no systemd-sysusers; create group pool-managerd and user pool-engine yourself" >&2
fi
if command -v systemd-tmpfiles >/dev/null; then
        systemd-tmpfiles --create "$tmpfiles_conf"
fi

# The running managers, if any: skipped in a chroot or a container image being built.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        echo "pool-managerd: reloading systemd"
        systemctl daemon-reload
fi
if [ -S /run/dbus/system_bus_socket ] && command -v busctl >/dev/null; then
        echo "pool-managerd: reloading the system bus configuration"
        busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig
fi
