#!/bin/sh
# After the package's files went, on removal, purge and upgrade (deb:
# postrm; rpm: %postun): systemd forgets the units. The state and the
# exported files under /var/lib/pachca-export, the token and an edited
# configuration in /etc/pachca-export, and the user stay: they are the
# administrator's, and the audit log may be kept for years.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
exit 0
