#!/usr/bin/env bash
# Start an IRC benchmark peer on 127.0.0.1:PORT with the committed config.
#
#   bench/peers/start.sh ngircd   PORT [--detach]
#   bench/peers/start.sh inspircd PORT [--detach]
#
# * Installs the Debian package if the binary is missing (needs root + apt).
# * Raises `ulimit -n` to the hard limit (the server inherits it).
# * Copies the config template into a fresh temp dir, substituting the port.
# * Prints "listening on 127.0.0.1:PORT" once the port accepts TCP
#   connections (deadline: PEER_START_TIMEOUT seconds, default 30), then
#   "pid <server pid>", "log <log file>" and "rundir <temp dir>".
# * Default: stays in the foreground until killed (SIGTERM/SIGINT/SIGHUP);
#   the server is stopped and the temp dir removed when this script exits.
#   With --detach: exits right after printing, leaving the server running;
#   stop it with `kill <pid>` (the temp dir is then left behind).
# * Server console output goes to $RUNDIR/NAME.log, or to $PEER_LOG if set
#   (e.g. PEER_LOG=/dev/null: ngIRCd logs several lines per connection).
# Exit status != 0 if installation or start-up fails.
set -euo pipefail

usage() { echo "usage: $0 ngircd|inspircd PORT [--detach]" >&2; exit 2; }
[[ $# -ge 2 && $# -le 3 ]] || usage
NAME=$1
PORT=$2
DETACH=0
if [[ $# -eq 3 ]]; then
    [[ $3 == --detach ]] || usage
    DETACH=1
fi
[[ $PORT =~ ^[0-9]+$ ]] && (( PORT > 0 && PORT < 65536 )) || { echo "bad port: $PORT" >&2; exit 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEADLINE_S=${PEER_START_TIMEOUT:-30}

case $NAME in
    ngircd)   PKG=ngircd;   BIN=/usr/sbin/ngircd ;;
    inspircd) PKG=inspircd; BIN=/usr/sbin/inspircd ;;
    *) usage ;;
esac

log() { echo "[start.sh $NAME] $*" >&2; }

port_open() {
    # true if something accepts TCP connections on 127.0.0.1:$PORT
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

install_pkg() {
    if [[ $(id -u) -ne 0 ]]; then
        log "$BIN missing and not root: run 'apt-get install -y $PKG' as root"
        exit 1
    fi
    log "installing Debian package $PKG ..."
    # Keep the package's own init script/systemd unit from starting a
    # system-wide instance during installation (only if no policy exists).
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; created_policy=1
    fi
    local rc=0
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || rc=$?
    if [[ $rc -eq 0 ]]; then
        apt-get install -y -qq --no-install-recommends "$PKG" >&2 || rc=$?
    fi
    (( created_policy )) && rm -f "$policy"
    if [[ $rc -ne 0 || ! -x $BIN ]]; then
        log "installing $PKG failed (rc=$rc)"
        exit 1
    fi
}

[[ -x $BIN ]] || install_pkg

# Raise the fd limit as far as allowed; the server inherits it.
HARD=$(ulimit -Hn)
if [[ $HARD == unlimited ]]; then HARD=1048576; fi
ulimit -n "$HARD" 2>/dev/null || log "could not raise ulimit -n to $HARD"
log "ulimit -n = $(ulimit -n)"

if port_open; then
    log "something is already listening on 127.0.0.1:$PORT"
    exit 1
fi

RUNDIR=$(mktemp -d "/tmp/benchpeer-$NAME-$PORT.XXXXXX")
chmod 755 "$RUNDIR"           # ngircd drops to user 'irc' and must read its config
CONF=$RUNDIR/$NAME.conf
LOG=${PEER_LOG:-$RUNDIR/$NAME.log}   # PEER_LOG=/dev/null discards server output
sed -e "s/@PORT@/$PORT/g" -e "s#@RUNDIR@#$RUNDIR#g" "$HERE/$NAME.conf" > "$CONF"
chmod 644 "$CONF"

case $NAME in
    ngircd)
        mkdir -p "$RUNDIR/conf.d"
        if [[ $(id -u) -ne 0 ]]; then
            # cannot switch user when not root: run as the invoking user
            sed -i -e '/^\s*ServerUID/d' -e '/^\s*ServerGID/d' "$CONF"
        fi
        CMD=("$BIN" --nodaemon --config "$CONF")
        ;;
    inspircd)
        CMD=("$BIN" --nofork --nopid "--config=$CONF")
        if [[ $(id -u) -eq 0 ]]; then
            CMD+=(--runasroot)   # it still drops to <security:runasuser> = irc
        else
            sed -i -e '/^\s*runasuser=/d' -e '/^\s*runasgroup=/d' "$CONF"
        fi
        ;;
esac

log "starting: ${CMD[*]}"
if (( DETACH )); then
    setsid "${CMD[@]}" </dev/null >"$LOG" 2>&1 &
else
    "${CMD[@]}" </dev/null >"$LOG" 2>&1 &
fi
CHILD=$!

cleanup() {
    trap - EXIT INT TERM HUP
    if kill -0 "$CHILD" 2>/dev/null; then
        kill -TERM "$CHILD" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$CHILD" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$CHILD" 2>/dev/null || true
    fi
    wait "$CHILD" 2>/dev/null || true
    rm -rf "$RUNDIR"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

deadline=$(( $(date +%s) + DEADLINE_S ))
until port_open; do
    if ! kill -0 "$CHILD" 2>/dev/null; then
        log "server exited during start-up; log follows"
        cat "$LOG" >&2 || true
        cat "$RUNDIR"/*-events.log >&2 2>/dev/null || true
        exit 1
    fi
    if (( $(date +%s) >= deadline )); then
        log "port 127.0.0.1:$PORT not accepting after ${DEADLINE_S}s; log follows"
        cat "$LOG" >&2 || true
        exit 1
    fi
    sleep 0.1
done

echo "listening on 127.0.0.1:$PORT"
echo "pid $CHILD"
echo "log $LOG"
echo "rundir $RUNDIR"

if (( DETACH )); then
    trap - EXIT INT TERM HUP
    exit 0
fi

# Foreground: run until the server dies or we are killed.
set +e
wait "$CHILD"
rc=$?
log "server exited with status $rc"
exit "$rc"
