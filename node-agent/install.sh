#!/bin/sh
# Installs (or upgrades) the failover node agent on an EC2 instance. Run as root:
#
#   sudo ./install.sh --bundle ./failover-agent.mjs [--cluster orders --node node1] \
#        [--table failover-state] [--region us-east-1] [--watchdog 8] [--node-bin PATH]
#
# It installs
#   /opt/failover-agent/failover-agent.mjs        the bundled agent (npm run build:agent)
#   /usr/local/bin/failover-agent                 `failover-agent ...` / `failover-agent guard ...`
#                                                 (the SSM exec path runs the guard through it)
#   /etc/systemd/system/failover-agent.service    the unit (Restart=always)
#   /etc/failover-agent/agent.env                 identity and options (kept if it exists)
#   /var/lib/failover-agent                       state shared by the agent and the guard (0700)
# and with --watchdog S loads the softdog module with soft_margin=S (persistently) and makes the
# agent feed /dev/watchdog; S should be at most lease - fenceMargin, in seconds.
#
# Node.js 22 LTS is preferred (node-22, node22, then node); 20 still runs, with a warning.
# Run again with the same bundle while the service runs, it changes nothing and says so.
#
# Then it enables and starts the service. On an upgrade (the service already runs) the agent is
# restarted with SIGKILL, not stopped: a stop (SIGTERM) would stop every group here and fail them
# over; a restarted agent keeps the groups it still owns (it checks the state table) and its
# predecessor's lease covers the second it takes to come back.
#
# Options for packaging tests: --prefix DIR installs under DIR, --no-systemd skips systemctl and
# modprobe.
set -eu

BUNDLE=""
CLUSTER=""
NODE_NAME=""
TABLE=""
REGION=""
WATCHDOG=""
PREFIX=""
SYSTEMD=1
NODE_BIN=""
HERE=$(cd "$(dirname "$0")" && pwd)

usage() {
  sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}
die() {
  echo "install.sh: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) BUNDLE=$2; shift 2 ;;
    --cluster) CLUSTER=$2; shift 2 ;;
    --node) NODE_NAME=$2; shift 2 ;;
    --table) TABLE=$2; shift 2 ;;
    --region) REGION=$2; shift 2 ;;
    --watchdog) WATCHDOG=$2; shift 2 ;;
    --node-bin) NODE_BIN=$2; shift 2 ;;
    --prefix) PREFIX=$2; shift 2 ;;
    --no-systemd) SYSTEMD=0; shift ;;
    -h|--help) usage ;;
    *) echo "install.sh: unknown option $1" >&2; usage ;;
  esac
done

if [ -z "$BUNDLE" ]; then
  for candidate in "$HERE/failover-agent.mjs" "$HERE/../dist/failover-agent.mjs"; do
    if [ -f "$candidate" ]; then BUNDLE=$candidate; break; fi
  done
fi
[ -n "$BUNDLE" ] && [ -f "$BUNDLE" ] || die "no bundle: build it with 'npm run build:agent' and pass --bundle dist/failover-agent.mjs"
UNIT_SRC="$HERE/failover-agent.service"
[ -f "$UNIT_SRC" ] || die "failover-agent.service not found next to install.sh ($HERE)"
if [ -n "$WATCHDOG" ]; then
  case "$WATCHDOG" in
    ''|*[!0-9]*) die "--watchdog takes whole seconds (softdog soft_margin), e.g. --watchdog 8; got \"$WATCHDOG\"" ;;
  esac
fi
if [ -n "$NODE_NAME" ] && [ -z "$CLUSTER" ]; then
  die "--node $NODE_NAME needs --cluster NAME (or give neither: the agent finds both from the instance id)"
fi
if [ -z "$PREFIX" ] && [ "$(id -u)" != 0 ]; then
  die "run as root (sudo $0 ...)"
fi

# Node.js 22 LTS first (Amazon Linux 2023's nodejs22 installs node-22), then whatever `node` is.
if [ -z "$NODE_BIN" ]; then
  for candidate in node-22 node22 /usr/bin/node-22 node; do
    NODE_BIN=$(command -v "$candidate" 2>/dev/null || true)
    [ -n "$NODE_BIN" ] && break
  done
fi
[ -n "$NODE_BIN" ] || die "node not found; install Node.js 22 LTS (Amazon Linux 2023: dnf install nodejs22) or pass --node-bin PATH"
NODE_MAJOR=$("$NODE_BIN" -p 'process.versions.node.split(".")[0]')
[ "$NODE_MAJOR" -ge 20 ] || die "$NODE_BIN is Node.js $NODE_MAJOR; the agent needs 20 or later (22 LTS recommended: dnf install nodejs22)"
if [ "$NODE_MAJOR" -lt 22 ]; then
  echo "install.sh: $NODE_BIN is Node.js $NODE_MAJOR, past its end of life; the agent runs on it, but install Node.js 22 LTS (dnf install nodejs22) and run install.sh again" >&2
fi

OPT="$PREFIX/opt/failover-agent"
ETC="$PREFIX/etc/failover-agent"
STATE="$PREFIX/var/lib/failover-agent"
UNIT="$PREFIX/etc/systemd/system/failover-agent.service"
BIN="$PREFIX/usr/local/bin/failover-agent"
mkdir -p "$OPT" "$ETC" "$(dirname "$UNIT")" "$(dirname "$BIN")"
mkdir -p -m 0700 "$STATE"

# The same bundle and unit already in place and running: nothing to do (a State Manager association
# runs this again and again; restarting the agent for nothing is not free).
SAME=0
if [ -f "$OPT/failover-agent.mjs" ] && cmp -s "$BUNDLE" "$OPT/failover-agent.mjs" && [ -f "$UNIT" ] \
  && sed "s#@NODE@#$NODE_BIN#" "$UNIT_SRC" | cmp -s - "$UNIT"; then
  SAME=1
fi
if [ "$SAME" = 1 ] && [ "$SYSTEMD" = 1 ] && systemctl is-active --quiet failover-agent; then
  echo "install.sh: failover-agent $("$NODE_BIN" "$OPT/failover-agent.mjs" --version 2>/dev/null) is installed and running; nothing to do"
  exit 0
fi

install -m 0644 "$BUNDLE" "$OPT/failover-agent.mjs.new"
mv -f "$OPT/failover-agent.mjs.new" "$OPT/failover-agent.mjs"
[ -f "$BUNDLE.map" ] && install -m 0644 "$BUNDLE.map" "$OPT/failover-agent.mjs.map"
[ -f "$HERE/README.md" ] && install -m 0644 "$HERE/README.md" "$OPT/README.md"

cat > "$BIN.new" <<EOF
#!/bin/sh
# failover-agent: the node agent (systemd runs it) and its guard (SSM runs "failover-agent guard ...").
exec $NODE_BIN $OPT/failover-agent.mjs "\$@"
EOF
chmod 0755 "$BIN.new"
mv -f "$BIN.new" "$BIN"

sed "s#@NODE@#$NODE_BIN#" "$UNIT_SRC" > "$UNIT.new"
chmod 0644 "$UNIT.new"
mv -f "$UNIT.new" "$UNIT"

ARGS=""
if [ -n "$WATCHDOG" ]; then
  ARGS="--watchdog-device /dev/watchdog --watchdog-timeout-sec $WATCHDOG"
fi
if [ -f "$ETC/agent.env" ]; then
  echo "install.sh: keeping $ETC/agent.env as it is:"
  sed 's/^/    /' "$ETC/agent.env"
else
  {
    echo "# failover-agent settings (read by the systemd unit)."
    echo "# Without FAILOVER_CLUSTER/FAILOVER_NODE the node is found from the instance id (IMDSv2)."
    [ -n "$REGION" ] && echo "AWS_REGION=$REGION" || echo "#AWS_REGION=us-east-1   (default: the instance's region, from IMDS)"
    [ -n "$TABLE" ] && echo "FAILOVER_TABLE=$TABLE" || echo "#FAILOVER_TABLE=failover-state"
    [ -n "$CLUSTER" ] && echo "FAILOVER_CLUSTER=$CLUSTER" || echo "#FAILOVER_CLUSTER=orders"
    [ -n "$NODE_NAME" ] && echo "FAILOVER_NODE=$NODE_NAME" || echo "#FAILOVER_NODE=node1"
    echo "FAILOVER_AGENT_ARGS=$ARGS"
    echo "#FAILOVER_AGENT_LOG_LEVEL=info"
  } > "$ETC/agent.env"
  chmod 0644 "$ETC/agent.env"
fi

if [ -n "$WATCHDOG" ]; then
  mkdir -p "$PREFIX/etc/modules-load.d" "$PREFIX/etc/modprobe.d"
  echo softdog > "$PREFIX/etc/modules-load.d/softdog.conf"
  echo "options softdog soft_margin=$WATCHDOG" > "$PREFIX/etc/modprobe.d/softdog.conf"
  if [ "$SYSTEMD" = 1 ]; then
    modprobe softdog "soft_margin=$WATCHDOG" || die "cannot load softdog (modprobe softdog soft_margin=$WATCHDOG)"
    CURRENT=$(cat /sys/module/softdog/parameters/soft_margin 2>/dev/null || echo "$WATCHDOG")
    if [ "$CURRENT" != "$WATCHDOG" ]; then
      echo "install.sh: softdog was already loaded with soft_margin=$CURRENT; reboot (or rmmod softdog while nothing uses it) to apply $WATCHDOG" >&2
    fi
  fi
fi

if [ "$SYSTEMD" = 0 ]; then
  echo "install.sh: installed under ${PREFIX:-/} (systemd untouched)"
  exit 0
fi

systemctl daemon-reload
if systemctl is-active --quiet failover-agent; then
  # Upgrade without a failover: see the header.
  systemctl kill --kill-whom=main --signal=SIGKILL failover-agent
  echo "install.sh: upgraded; the agent restarts with the new version and keeps the groups it owns"
else
  systemctl enable --now failover-agent
  echo "install.sh: failover-agent enabled and started; follow it with: journalctl -u failover-agent -f"
fi
