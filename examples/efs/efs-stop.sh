#!/bin/sh
# Stop of the ledger group (through the guard, or by the agent itself on a self-fence, a demotion or a
# planned shutdown): stop the application, then unmount. Idempotent; a failure exits non-zero, which
# the controller treats as "still running" (never as stopped).
set -eu
MNT=/mnt/ledger
if systemctl is-active --quiet ledger; then
  systemctl stop ledger
fi
if mountpoint -q "$MNT"; then
  # A busy mount means something still writes: that is a failed stop, not a stopped one.
  umount "$MNT"
fi
