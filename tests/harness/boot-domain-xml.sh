#!/usr/bin/env bash
# Prints libvirt domain XML that boots a BootSector image (docs: README, "Running the guest
# programs under QEMU"), the shape tests/harness/libvirt-hosts.sh migrations were verified with.
#
#   tests/harness/boot-domain-xml.sh NAME IMAGE SERIAL_FILE [MEMORY_MIB]
#
# IMAGE and SERIAL_FILE must be absolute paths outside the directories libvirt-hosts.sh
# bind-mounts (e.g. under /var/lib/migratekit-harness/images), so that both hosts see the same
# files. The type is 'kvm' where /dev/kvm exists and 'qemu' (TCG) otherwise. The serial file is
# opened with append='on': without it, the destination of a migration deletes and recreates the
# file when its QEMU starts, and the source's output is lost.
set -euo pipefail

if [ $# -lt 3 ] || [ $# -gt 4 ]; then
  echo "usage: $0 NAME IMAGE SERIAL_FILE [MEMORY_MIB]" >&2
  exit 2
fi
name=$1 image=$2 serial=$3 memory=${4:-256}
case "$image$serial" in *"'"*|*"<"*|*"&"*) echo "$0: paths must not contain ', < or &" >&2; exit 2 ;; esac
[[ "$image" = /* && "$serial" = /* ]] || { echo "$0: IMAGE and SERIAL_FILE must be absolute paths" >&2; exit 2; }
[[ "$name" =~ ^[A-Za-z0-9_.+-]+$ ]] || { echo "$0: NAME may hold letters, digits and _ . + - only" >&2; exit 2; }
[[ "$memory" =~ ^[0-9]+$ ]] || { echo "$0: MEMORY_MIB must be a number" >&2; exit 2; }
type=qemu
[ -e /dev/kvm ] && type=kvm

cat <<EOF
<domain type='$type'>
  <name>$name</name>
  <memory unit='MiB'>$memory</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$image'/>
      <target dev='hda' bus='ide'/>
    </disk>
    <serial type='file'>
      <source path='$serial' append='on'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
