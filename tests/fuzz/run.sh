#!/usr/bin/env bash
# Bounded afl++ run of the SharpFuzz harnesses: tests/fuzz/run.sh SECONDS [TARGET]
# Runs each target (page-stream, vcpu-state, host-device-state, page-delta, compressed-page;
# or only TARGET) for SECONDS, starting from tests/fuzz/corpus/TARGET, and prints execs,
# corpus size, crashes and hangs.
# Findings land in tests/fuzz/findings/TARGET (not checked in).
set -euo pipefail

if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
    echo "usage: $0 SECONDS [page-stream|vcpu-state|host-device-state|page-delta|compressed-page]" >&2
    exit 2
fi
seconds=$1
here=$(cd "$(dirname "$0")" && pwd)
targets=(${2:-page-stream vcpu-state host-device-state page-delta compressed-page})
export PATH="$PATH:$HOME/.dotnet/tools"

if ! command -v afl-fuzz >/dev/null; then
    [[ $(id -u) -eq 0 ]] || { echo "afl-fuzz is missing; install the Debian package afl++" >&2; exit 1; }
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++ >/dev/null
fi
if ! command -v sharpfuzz >/dev/null; then
    dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0 >/dev/null
fi

# A separate output folder: instrumentation rewrites the assemblies in place.
out="$here/bin"
rm -rf "$out"
dotnet build "$here/MigrateKit.Fuzz" -c Release -nologo -v quiet -o "$out" >/dev/null
for assembly in MigrateKit.dll MigrateKit.Vmm.dll MigrateKit.Guests.dll K4os.Compression.LZ4.dll; do
    sharpfuzz "$out/$assembly" >/dev/null
done

# A shared machine: no CPU binding, no core_pattern or governor changes, no interactive screen.
export AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_SKIP_BIN_CHECK=1

for target in "${targets[@]}"; do
    findings="$here/findings/$target"
    rm -rf "$findings"
    mkdir -p "$findings"
    afl-fuzz -i "$here/corpus/$target" -o "$findings" -V "$seconds" -t 5000 -m none \
        -- dotnet "$out/MigrateKit.Fuzz.dll" "$target" >"$findings/afl.log" 2>&1 || {
        echo "$target: afl-fuzz failed, see $findings/afl.log" >&2
        tail -20 "$findings/afl.log" >&2
        continue
    }
    stats="$findings/default/fuzzer_stats"
    field() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
    echo "$target: $(field run_time) s, $(field execs_done) execs ($(field execs_per_sec)/s), corpus $(field corpus_count), crashes $(field saved_crashes), hangs $(field saved_hangs)"
done
