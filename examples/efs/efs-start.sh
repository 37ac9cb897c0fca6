#!/bin/sh
# Start of the ledger group (run by the node agent's guard, as root, only when the state table names
# this node owner at the current epoch): mount the EFS file system, check it, start the application.
# Idempotent: a second run with everything up changes nothing.
set -eu
FS=${LEDGER_EFS:-fs-0123456789abcdef0}   # the file system (amazon-efs-utils resolves the mount target of this zone)
MNT=/mnt/ledger
mkdir -p "$MNT"
if ! mountpoint -q "$MNT"; then
  # TLS and IAM authorization: the instance profile needs elasticfilesystem:ClientMount/ClientWrite.
  mount -t efs -o tls,iam "$FS":/ "$MNT"
fi
# A mount that does not answer must fail the start (the controller then tries the other node).
timeout 10 touch "$MNT/.failover-probe"
if ! systemctl is-active --quiet ledger; then
  systemctl start ledger
fi
systemctl is-active --quiet ledger
