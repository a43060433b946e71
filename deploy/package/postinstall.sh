#!/bin/sh
# After the package's files are in place, on install and on upgrade (deb:
# postinst configure; rpm: %post). It creates the user the units run as
# and has systemd read the units again; it enables and starts nothing (see
# the README, "Packages"): a timer started before the token and the
# configuration are written would only fail.
set -e

# The user, as /usr/lib/sysusers.d/pachca-export.conf says; without
# systemd-sysusers (a container, an old system), with useradd.
if command -v systemd-sysusers >/dev/null 2>&1; then
	systemd-sysusers pachca-export.conf
elif ! getent passwd pachca-export >/dev/null 2>&1; then
	nologin=/usr/sbin/nologin
	[ -x "$nologin" ] || nologin=/sbin/nologin
	useradd --system --user-group --no-create-home --home-dir /var/lib/pachca-export \
		--shell "$nologin" --comment "Pachca audit-log export" pachca-export
fi

# Only where systemd runs (not in a container's build or a chroot).
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
exit 0
