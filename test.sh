#!/usr/bin/env bash
# Builds MigrateKit and runs every test project.
#
#   ./test.sh            build (Release) and run all tests
#
# Run as root on a fresh Debian machine, it first installs what the build needs with apt.
# Where /dev/kvm exists it sets MIGRATEKIT_REQUIRE_KVM=1, so KVM tests fail instead of skipping
# (likewise MIGRATEKIT_REQUIRE_QEMU=1 where qemu-system-x86_64 is installed);
# on Linux 6.9+ it sets MIGRATEKIT_REQUIRE_WP=1 for the userfaultfd write-protect tests, and
# MIGRATEKIT_REQUIRE_OBJDUMP=1 for the encoding tests checked against objdump (binutils).
# As root it also makes sure libvirt0 is installed and starts two libvirt hosts
# (tests/harness/libvirt-hosts.sh), exporting MIGRATEKIT_LIBVIRT_SOURCE_URI,
# MIGRATEKIT_LIBVIRT_DEST_URI and MIGRATEKIT_REQUIRE_LIBVIRT=1; hosts it started it stops again.
# After the test projects, `dotnet format --verify-no-changes` checks the house style (.editorconfig),
# and tests/consumer/run.sh packs the five packages into a local feed and
# installs them into a project of its own; each counts as one test.
# The last line is always "N passed, N failed, N skipped"; the exit code is non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")" || exit 1
root=$(pwd)
configuration=${CONFIGURATION:-Release}

log() { printf '==> %s\n' "$*"; }

# ---- dependencies ---------------------------------------------------------
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v nm >/dev/null 2>&1 && command -v objdump >/dev/null 2>&1 || missing+=(binutils)
[ -f /usr/include/linux/kvm.h ] || missing+=(linux-libc-dev)
# Report pictures draw their text with DejaVu Sans (SkiaSharp finds it under /usr/share/fonts).
[ -d /usr/share/fonts/truetype/dejavu ] || missing+=(fonts-dejavu-core)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null || { echo "apt-get install ${missing[*]} failed"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
  else
    echo "missing build tools: ${missing[*]} (run as root to install them with apt)"
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
  fi
fi
# binutils is installed above: the encoding tests that compare with objdump must run.
export MIGRATEKIT_REQUIRE_OBJDUMP=1
if ! command -v dotnet >/dev/null 2>&1; then
  echo "the .NET 10 SDK (dotnet) is not installed"
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
fi

# ---- libvirt: two hosts on this machine -----------------------------------
# libvirt tests skip, with the reason, when the hosts cannot be started.
if [ "$(id -u)" = 0 ]; then
  if ! ldconfig -p 2>/dev/null | grep -q 'libvirt\.so\.0 ' && command -v apt-get >/dev/null 2>&1; then
    log "installing libvirt0 (the libvirt bindings load libvirt.so.0)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq libvirt0 >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq libvirt0 >/dev/null; } ||
      log "apt-get install libvirt0 failed: libvirt tests will skip"
  fi
  harness=tests/harness/libvirt-hosts.sh
  harness_err=$(mktemp)
  if uris=$("$harness" status 2>/dev/null); then
    log "libvirt hosts already running: using them, leaving them running"
  elif uris=$("$harness" start 2>"$harness_err"); then
    # Silent, so the summary stays the last line; the normal path stops the hosts before it.
    trap '"$root/$harness" stop >/dev/null 2>&1' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    started_libvirt=1
    log "started two libvirt hosts"
  else
    log "the libvirt hosts did not start: libvirt tests will skip. $(tr '\n' ' ' <"$harness_err")"
    uris=
  fi
  rm -f "$harness_err"
  if [ -n "$uris" ]; then
    MIGRATEKIT_LIBVIRT_SOURCE_URI=$(printf '%s\n' "$uris" | sed -n 's/^SOURCE_URI=//p')
    MIGRATEKIT_LIBVIRT_DEST_URI=$(printf '%s\n' "$uris" | sed -n 's/^DEST_URI=//p')
    export MIGRATEKIT_LIBVIRT_SOURCE_URI MIGRATEKIT_LIBVIRT_DEST_URI MIGRATEKIT_REQUIRE_LIBVIRT=1
    log "libvirt tests are required (MIGRATEKIT_REQUIRE_LIBVIRT=1): $MIGRATEKIT_LIBVIRT_SOURCE_URI -> $MIGRATEKIT_LIBVIRT_DEST_URI"
  fi
else
  log "not root: no libvirt hosts are started, libvirt tests will skip"
fi

# QEMU comes with the libvirt hosts (or was installed before): then its tests must run.
if command -v qemu-system-x86_64 >/dev/null 2>&1; then
  export MIGRATEKIT_REQUIRE_QEMU=1
  log "qemu-system-x86_64 present: QEMU tests are required (MIGRATEKIT_REQUIRE_QEMU=1)"
else
  log "qemu-system-x86_64 absent: QEMU tests will be skipped"
fi

if [ -e /dev/kvm ]; then
  export MIGRATEKIT_REQUIRE_KVM=1
  log "/dev/kvm present: KVM tests are required (MIGRATEKIT_REQUIRE_KVM=1)"
else
  log "/dev/kvm absent: KVM tests will be skipped"
fi

# Asynchronous userfaultfd write-protection (HostVm, WriteProtectTracker) needs Linux 6.9+.
kernel=$(uname -r | sed -n 's/^\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
if [ -n "$kernel" ] && [ "$(echo "$kernel" | awk '{ print ($1 > 6 || ($1 == 6 && $2 >= 9)) ? 1 : 0 }')" = 1 ]; then
  export MIGRATEKIT_REQUIRE_WP=1
  log "Linux $(uname -r): write-protect tracking tests are required (MIGRATEKIT_REQUIRE_WP=1)"
else
  log "Linux $(uname -r) predates 6.9: write-protect tracking tests will be skipped"
fi

# ---- build ----------------------------------------------------------------
log "dotnet build ($configuration)"
if ! dotnet build MigrateKit.sln -c "$configuration" --disable-build-servers -nologo -v quiet; then
  echo "build failed"
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
fi

# ---- tests ----------------------------------------------------------------
projects=(
  tests/MigrateKit.Tests
  tests/MigrateKit.IntegrationTests
)
passed=0; failed=0; skipped=0
out=$(mktemp -d)
for project in "${projects[@]}"; do
  name=$(basename "$project")
  log "dotnet test $name"
  dotnet test --project "$project" -c "$configuration" --no-build 2>&1 | tee "$out/$name.log"
  rc=${PIPESTATUS[0]}
  summary=$(sed -n '/Test run summary/,$p' "$out/$name.log")
  total=$(printf '%s\n' "$summary" | sed -n 's/^ *total: *\([0-9]*\).*/\1/p' | tail -1)
  if [ -z "$total" ]; then
    echo "!! $name produced no test summary (crash or build problem)"
    failed=$((failed + 1))
    continue
  fi
  p=$(printf '%s\n' "$summary" | sed -n 's/^ *succeeded: *\([0-9]*\).*/\1/p' | tail -1)
  f=$(printf '%s\n' "$summary" | sed -n 's/^ *failed: *\([0-9]*\).*/\1/p' | tail -1)
  s=$(printf '%s\n' "$summary" | sed -n 's/^ *skipped: *\([0-9]*\).*/\1/p' | tail -1)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
  # A test host that crashes still prints a summary of the tests it finished, none failed:
  # its exit code is what says the run did not end.
  if [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then
    echo "!! $name: dotnet test exited with code $rc and no failed test (the test host crashed or stopped early)"
    failed=$((failed + 1))
  fi
done
rm -rf "$out"

# ---- style: the .editorconfig's layout and usings, as `dotnet format` applies them ----
log "dotnet format --verify-no-changes"
if dotnet format MigrateKit.sln --verify-no-changes --no-restore -v quiet; then
  passed=$((passed + 1))
else
  echo "!! dotnet format found code that does not follow .editorconfig (run: dotnet format MigrateKit.sln)"
  failed=$((failed + 1))
fi

# ---- consumer: the packages, installed the way an application installs them ----
log "tests/consumer/run.sh (pack, install from a local feed, run)"
if tests/consumer/run.sh --no-build; then
  passed=$((passed + 1))
else
  echo "!! the consumer test failed"
  failed=$((failed + 1))
fi

if [ -n "${started_libvirt:-}" ]; then
  log "stopping the libvirt hosts"
  "$harness" stop || log "tests/harness/libvirt-hosts.sh stop failed"
  trap - EXIT INT TERM
fi

echo "${passed} passed, ${failed} failed, ${skipped} skipped"
[ "$failed" -eq 0 ]
