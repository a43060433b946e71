#!/bin/sh
# Before the package's files go, on removal only (deb: prerm remove; rpm:
# %preun with 0 installed after it), not on upgrade: the units the
# administrator enabled are stopped and disabled, so that no timer is left
# to start a binary that is gone. An upgrade leaves them as they are (a
# running follow keeps the old binary until it is restarted).
set -e
case "$1" in
remove | 0) ;;
*) exit 0 ;;
esac
if [ -d /run/systemd/system ]; then
	systemctl disable --now pachca-export.timer pachca-export.service pachca-export-follow.service >/dev/null 2>&1 || true
	# Instances of the template units (one a workspace): stopped; each
	# enabled one is disabled by name (systemctl disable --now pachca-export@acme.timer).
	systemctl stop 'pachca-export@*.timer' 'pachca-export@*.service' 'pachca-export-follow@*.service' >/dev/null 2>&1 || true
fi
exit 0
