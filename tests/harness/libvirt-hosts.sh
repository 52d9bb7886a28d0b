#!/usr/bin/env bash
# Two libvirt hosts on one machine, for migration tests (see the README, "Two libvirt hosts on one machine").
#
#   tests/harness/libvirt-hosts.sh start    start both hosts (a no-op for a host that is up)
#   tests/harness/libvirt-hosts.sh status   exit 0 only when both hosts answer
#   tests/harness/libvirt-hosts.sh stop     stop both hosts and every QEMU they started
#   tests/harness/libvirt-hosts.sh restart-source
#                                           restart host 1's libvirtd only (its QEMUs keep running),
#                                           as an operator or a package upgrade would
#
# start and status print exactly two lines on stdout:
#   SOURCE_URI=qemu:///system
#   DEST_URI=qemu:///system?socket=/var/lib/migratekit-harness/host2/run/libvirt-sock
# Everything else (progress, errors with their reason) goes to stderr.
#
# Host 1 is the machine's own libvirtd and virtlogd, started with pid files under
# $MIGRATEKIT_HARNESS_DIR/host1 (default /var/lib/migratekit-harness). A libvirtd that already
# answers on qemu:///system serves as host 1 as it is, and stop leaves it alone. Host 2 runs in a private mount and UTS namespace
# (unshare -m -u --propagation private) in which private directories are bind-mounted over
# /var/run/libvirt, /var/lib/libvirt, /etc/libvirt and /var/log/libvirt; it has its own
# hostname and host_uuid, because libvirt refuses to migrate to a host with the source's UUID
# or hostname. The namespace lives as long as host 2's processes: stop has nothing to unmount.
# Guest disk images belong in $MIGRATEKIT_HARNESS_DIR/images, which both hosts see.
#
# Migrate with a client that holds both connections (virsh migrate without --p2p,
# virDomainMigrate3), in either direction. Peer-to-peer migration (--p2p, VIR_MIGRATE_PEER2PEER)
# is refused: libvirt 9.0 wants a destination URI naming a server other than localhost, and a
# unix-socket URI cannot name one.
#
# Needs root. Missing packages are installed with apt; no systemd is needed (nor used).
set -euo pipefail

base=${MIGRATEKIT_HARNESS_DIR:-/var/lib/migratekit-harness}
timeout_s=${MIGRATEKIT_HARNESS_TIMEOUT:-30}
host1=$base/host1
host2=$base/host2
host2_name=migratekit-host2
source_uri='qemu:///system'
dest_uri="qemu:///system?socket=$host2/run/libvirt-sock"
packages=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 openssl)

log() { printf 'libvirt-hosts: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- helpers ----------------------------------------------------------------

# Prints the pid in FILE when that process is alive and runs COMM (guards against reused pids).
live_pid() {
  local file=$1 comm=$2 pid
  [ -r "$file" ] || return 1
  pid=$(tr -dc '0-9' <"$file")
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
  echo "$pid"
}

answers() { virsh -q -c "$1" uri >/dev/null 2>&1; }

# Waits until URI answers or the daemon behind PIDFILE dies.
wait_for() {
  local uri=$1 pidfile=$2 what=$3 deadline=$((SECONDS + timeout_s))
  until answers "$uri"; do
    if ! live_pid "$pidfile" libvirtd >/dev/null; then
      die "$what: libvirtd exited during start-up (see $(dirname "$pidfile")/libvirtd.log)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      die "$what: $uri did not answer within ${timeout_s}s (see $(dirname "$pidfile")/libvirtd.log)"
    fi
    sleep 0.1
  done
}

# Sends TERM, waits up to 10 s, then KILL.
terminate() {
  local pid
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 100); do
    local alive=0
    for pid in "$@"; do [ -d "/proc/$pid" ] && alive=1; done
    [ "$alive" = 0 ] && return 0
    sleep 0.1
  done
  for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
}

print_uris() {
  echo "SOURCE_URI=$source_uri"
  echo "DEST_URI=$dest_uri"
}

# ---- one-time machine set-up -------------------------------------------------------

require_root() {
  [ "$(id -u)" = 0 ] || die "must run as root (libvirtd's system instance, mounts and namespaces need it)"
}

install_packages() {
  if command -v libvirtd >/dev/null && command -v virtlogd >/dev/null && command -v virsh >/dev/null &&
     command -v qemu-system-x86_64 >/dev/null && command -v openssl >/dev/null &&
     compgen -G '/usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so' >/dev/null; then
    return 0
  fi
  command -v apt-get >/dev/null || die "libvirt or QEMU is missing and apt-get is not available to install ${packages[*]}"
  log "installing ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The package lists are refreshed only when an install from the current lists fails.
  if ! apt-get install -y -qq --no-install-recommends "${packages[@]}" >&2; then
    { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${packages[@]}" >&2; } ||
      die "apt-get install ${packages[*]} failed"
  fi
}

# The qemu driver resolves its compiled-in default user and group (both libvirt-qemu on
# Debian) before it reads qemu.conf, and fails to start without them. libvirt-daemon-system
# would create them, but that package wants systemd.
ensure_user() {
  getent group kvm >/dev/null || groupadd --system kvm
  getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
  id libvirt-qemu >/dev/null 2>&1 ||
    useradd --system --gid kvm --groups libvirt-qemu --home-dir /var/lib/libvirt --no-create-home \
            --shell /usr/sbin/nologin libvirt-qemu
}

# Sets, in /etc/libvirt/qemu.conf, a marked block: QEMU as root without security labels (both
# hosts use the same image files), migration TLS certificates from $base/tls (see make_tls_certs)
# and no cgroups. Without cgroups QEMU stays in the cgroup of
# the daemon that started it; with them, both hosts would put a domain with the same ID and name
# into the same /machine/qemu-ID-NAME.libvirt-qemu group (a tuning or throttle on one would hit
# the other, and the source could not remove the group after a migration). Other active
# assignments of these keys are commented out. Re-running changes nothing.
configure_qemu() {
  local conf=/etc/libvirt/qemu.conf tmp
  mkdir -p /etc/libvirt
  [ -e "$conf" ] || : >"$conf"
  tmp=$(mktemp)
  sed -E -e '/^# BEGIN migratekit-harness/,/^# END migratekit-harness/d' \
         -e 's/^[[:space:]]*(user|group|security_driver|cgroup_controllers|migrate_tls_x509_cert_dir)[[:space:]]*=/# (migratekit-harness) &/' "$conf" >"$tmp"
  cat >>"$tmp" <<EOF
# BEGIN migratekit-harness
# Written by tests/harness/libvirt-hosts.sh: two libvirt hosts on one machine.
user = "root"
group = "root"
security_driver = "none"
cgroup_controllers = [ ]
migrate_tls_x509_cert_dir = "$base/tls"
# END migratekit-harness
EOF
  if cmp -s "$tmp" "$conf"; then rm -f "$tmp"; else cat "$tmp" >"$conf"; rm -f "$tmp"; fi
}

# virtlogd writes both hosts' domain logs and the domains' file-backed serial ports. It rotates a
# file when it reaches max_size (2 MiB by default), cutting a line in half and moving the start to
# FILE.0; a guest printing its passes on COM1 reaches that in minutes. 1 GiB keeps a test's
# serial output in one file.
write_virtlogd_conf() {
  cat >"$1/virtlogd.conf" <<'EOF'
# Written by tests/harness/libvirt-hosts.sh.
max_size = 1073741824
max_backups = 1
EOF
}

# Certificates for migrations with VIR_MIGRATE_TLS, in the file names QEMU's x509 credentials
# read: a CA, a server certificate valid for host 2's name, localhost and 127.0.0.1 (the
# migration URI the tests use), and a client certificate (libvirt asks QEMU to verify the peer).
# Both hosts share the directory, so either can be the source. Made once; kept afterwards.
make_tls_certs() {
  local dir=$base/tls f missing=0 work
  for f in ca-cert.pem server-cert.pem server-key.pem client-cert.pem client-key.pem; do
    [ -s "$dir/$f" ] || missing=1
  done
  [ "$missing" = 1 ] || return 0
  log "creating migration TLS certificates in $dir"
  mkdir -p "$dir"
  work=$(mktemp -d)
  # RSA with digitalSignature and keyEncipherment: the key usages QEMU's certificate checks expect.
  { openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=migratekit-harness CA" \
      -keyout "$work/ca-key.pem" -out "$work/ca-cert.pem" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$host2_name" \
      -CA "$work/ca-cert.pem" -CAkey "$work/ca-key.pem" -keyout "$work/server-key.pem" -out "$work/server-cert.pem" \
      -addext "basicConstraints=critical,CA:FALSE" -addext "keyUsage=critical,digitalSignature,keyEncipherment" \
      -addext "extendedKeyUsage=serverAuth" -addext "subjectAltName=DNS:$host2_name,DNS:localhost,IP:127.0.0.1" &&
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=migratekit-host1" \
      -CA "$work/ca-cert.pem" -CAkey "$work/ca-key.pem" -keyout "$work/client-key.pem" -out "$work/client-cert.pem" \
      -addext "basicConstraints=critical,CA:FALSE" -addext "keyUsage=critical,digitalSignature,keyEncipherment" \
      -addext "extendedKeyUsage=clientAuth"; } >/dev/null 2>"$work/openssl.err" ||
    { log "$(cat "$work/openssl.err")"; rm -rf "$work"; die "openssl could not create the migration TLS certificates"; }
  # The CA's key is not needed again: the set is complete or made anew.
  chmod 600 "$work"/*-key.pem
  mv -f "$work"/{ca-cert,server-cert,server-key,client-cert,client-key}.pem "$dir/"
  rm -rf "$work"
}

prepare() {
  require_root
  install_packages
  ensure_user
  configure_qemu
  make_tls_certs
  mkdir -p /var/log/libvirt /var/run/libvirt /var/lib/libvirt "$host1" "$base/images" \
           "$host2"/{run,lib,etc,log} 2>/dev/null || die "cannot create the harness directories under $base"
  write_virtlogd_conf "$host1"
  write_virtlogd_conf "$host2"
}

# ---- host 1 -------------------------------------------------------------------------

start_host1() {
  if answers "$source_uri"; then
    return 0
  fi
  # Our own daemons that no longer answer are stopped first.
  stop_hosts host1
  log "starting host 1 (libvirtd)"
  virtlogd -d -f "$host1/virtlogd.conf" -p "$host1/virtlogd.pid" || die "host 1: virtlogd failed to start"
  LIBVIRT_LOG_OUTPUTS="3:file:$host1/libvirtd.log" libvirtd -d -p "$host1/libvirtd.pid" ||
    die "host 1: libvirtd failed to start (see $host1/libvirtd.log)"
  wait_for "$source_uri" "$host1/libvirtd.pid" "host 1"
}

# ---- host 2 -------------------------------------------------------------------------

# Runs inside the new namespace: bind mounts, hostname, then both daemons. The daemons fork
# into the background; they keep the namespace alive after this script exits.
host2_script() {
  cat <<EOF
set -e
mount --bind "$host2/run" /var/run/libvirt
mount --bind "$host2/lib" /var/lib/libvirt
mount --bind "$host2/etc" /etc/libvirt
mount --bind "$host2/log" /var/log/libvirt
hostname "$host2_name"
virtlogd -d -f "$host2/virtlogd.conf" -p "$host2/virtlogd.pid"
LIBVIRT_LOG_OUTPUTS="3:file:$host2/libvirtd.log" libvirtd -d -p "$host2/libvirtd.pid"
EOF
}

start_host2() {
  if answers "$dest_uri"; then
    return 0
  fi
  # Half a host (one daemon left, or a daemon that no longer answers) is stopped first.
  stop_hosts host2
  log "starting host 2 (libvirtd in a private mount and UTS namespace, hostname $host2_name)"
  # Fresh copies of the top-level configuration files (qemu.conf included); host 2 keeps its
  # own domain definitions under etc/qemu, and gets a stable UUID of its own.
  cp -f /etc/libvirt/*.conf "$host2/etc/"
  [ -s "$host2/host-uuid" ] || cat /proc/sys/kernel/random/uuid >"$host2/host-uuid"
  sed -i -E '/^[[:space:]]*host_uuid[[:space:]]*=/d' "$host2/etc/libvirtd.conf" 2>/dev/null || true
  echo "host_uuid = \"$(cat "$host2/host-uuid")\"" >>"$host2/etc/libvirtd.conf"
  rm -f "$host2/run/libvirt-sock" "$host2/run/libvirt-sock-ro"
  unshare -m -u --propagation private bash -c "$(host2_script)" ||
    die "host 2: namespace set-up or daemon start failed (see $host2/libvirtd.log)"
  wait_for "$dest_uri" "$host2/libvirtd.pid" "host 2"
}

# ---- stop ---------------------------------------------------------------------------

# Destroys a host's running domains through libvirt (so it cleans up after them), then adds
# its daemons and any QEMU it did not reap (pid files under RUN/qemu) to stop_pids.
stop_pids=()
collect_host() {
  local dir=$1 uri=$2 run=$3 pid name f
  if pid=$(live_pid "$dir/libvirtd.pid" libvirtd); then
    if answers "$uri"; then
      while read -r name; do
        [ -z "$name" ] || virsh -q -c "$uri" destroy "$name" >/dev/null 2>&1 || true
      done < <(virsh -q -c "$uri" list --name 2>/dev/null || true)
    fi
    stop_pids+=("$pid")
  fi
  if pid=$(live_pid "$dir/virtlogd.pid" virtlogd); then stop_pids+=("$pid"); fi
  for f in "$run"/qemu/*.pid; do
    if pid=$(live_pid "$f" qemu-system-x86); then stop_pids+=("$pid"); fi
  done
}

# Host 1 is only ours to stop when our pid files exist: a daemon someone else started, and its
# domains, are left alone. Everything under host 2's directory is ours. The daemons take a
# second or two to exit, so both hosts are stopped together.
stop_hosts() {
  local which=$1
  stop_pids=()
  if [ "$which" != host1 ]; then
    collect_host "$host2" "$dest_uri" "$host2/run"
  fi
  if [ "$which" != host2 ] && { [ -e "$host1/libvirtd.pid" ] || [ -e "$host1/virtlogd.pid" ]; }; then
    collect_host "$host1" "$source_uri" /var/run/libvirt
  fi
  [ ${#stop_pids[@]} -eq 0 ] || terminate "${stop_pids[@]}"
  [ "$which" = host1 ] || rm -f "$host2/libvirtd.pid" "$host2/virtlogd.pid"
  [ "$which" = host2 ] || rm -f "$host1/libvirtd.pid" "$host1/virtlogd.pid"
}

# ---- commands -----------------------------------------------------------------------

cmd=${1:-}
case "$cmd" in
  start)
    prepare
    start_host1
    start_host2
    print_uris
    ;;
  status)
    up=1
    answers "$source_uri" || { log "host 1 ($source_uri) does not answer"; up=0; }
    answers "$dest_uri" || { log "host 2 ($dest_uri) does not answer"; up=0; }
    print_uris
    [ "$up" = 1 ]
    ;;
  stop)
    require_root
    stop_hosts both
    ;;
  restart-source)
    require_root
    # Host 1's libvirtd is the one in this mount namespace (host 2's lives in its own).
    own_ns=$(readlink /proc/self/ns/mnt)
    pids=()
    for pid in $(pidof libvirtd 2>/dev/null || true); do
      [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "$own_ns" ] && pids+=("$pid")
    done
    [ ${#pids[@]} -gt 0 ] || die "host 1's libvirtd is not running"
    log "restarting host 1's libvirtd (pid ${pids[*]})"
    terminate "${pids[@]}"
    LIBVIRT_LOG_OUTPUTS="3:file:$host1/libvirtd.log" libvirtd -d -p "$host1/libvirtd.pid" ||
      die "host 1: libvirtd failed to restart (see $host1/libvirtd.log)"
    wait_for "$source_uri" "$host1/libvirtd.pid" "host 1"
    ;;
  *)
    echo "usage: $0 start|stop|status|restart-source" >&2
    exit 2
    ;;
esac
