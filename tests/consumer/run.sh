#!/usr/bin/env bash
# Installs MigrateKit the way a consumer does, and uses it.
#
#   tests/consumer/run.sh [--no-build]
#
# Packs MigrateKit, MigrateKit.Guests, MigrateKit.Vmm, LibvirtSharp and MigrateKit.Libvirt (Release) with a
# version of their own (0.1.0-ci.<UTC time>.<pid>) into a local feed in a temporary directory,
# then creates a console project in another temporary directory, outside the repository, whose
# nuget.config lists only that feed (for those five packages) and the repository's NuGet source
# (for everything else). It references the packages by that version, builds, checks that restore
# took them from the feed, and runs tests/consumer/Program.cs: dirty pages of a MicroVm (a HostVm
# where /dev/kvm is absent) through the packaged libmigratekit.so, then the domains of libvirt's
# test:///default. Further runs check the error for a missing MIGRATEKIT_NATIVE_LIBRARY, the error
# for a missing MigrateKitNative.LibraryPath, and loading the shim from a copy that option names.
# Last, every complete C# example of README.md (a block starting with a using directive) is built
# as the Program.cs of a console project with implicit usings on the same packages. Then the CLI
# is packed as a linux-x64 tool into the same feed, installed with `dotnet tool install`, and runs
# `migratekit version` and a short demo.
#
# --no-build packs what an earlier `dotnet build -c Release` left (./test.sh passes it).
# Packages restored for the consumer go to a temporary folder; the machine's NuGet cache serves
# as a read-only fallback, so third-party packages are not downloaded again.
# The last line is "PASS consumer: ..." or "FAIL consumer: ..."; the exit code says the same.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
configuration=${CONFIGURATION:-Release}
build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build= ;;
    *) echo "usage: $0 [--no-build]"; echo "FAIL consumer: bad arguments"; exit 2 ;;
  esac
done

log() { printf '==> consumer: %s\n' "$*"; }
fail() { echo "FAIL consumer: $*"; exit 1; }

export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
work=$(mktemp -d "${TMPDIR:-/tmp}/migratekit-consumer.XXXXXX") || fail "mktemp failed"
trap 'rm -rf "$work"' EXIT
case "$work/" in
  "$root"/*) fail "the temporary directory $work is inside the repository" ;;
esac
feed=$work/feed app=$work/app
mkdir -p "$feed" "$app"
version=0.1.0-ci.$(date -u +%Y%m%d%H%M%S).$$
packages=(src/MigrateKit/MigrateKit.csproj src/MigrateKit.Guests/MigrateKit.Guests.csproj src/MigrateKit.Vmm/MigrateKit.Vmm.csproj
          src/LibvirtSharp/LibvirtSharp.csproj src/MigrateKit.Libvirt/MigrateKit.Libvirt.csproj)

# ---- pack -------------------------------------------------------------------
# One solution filter, so the five are packed by one MSBuild run.
{
  printf '{ "solution": { "path": "%s", "projects": [' "$root/MigrateKit.sln"
  sep=
  for p in "${packages[@]}"; do printf '%s "%s"' "$sep" "$p"; sep=,; done
  printf ' ] } }\n'
} >"$work/packages.slnf"
if [ -n "$build" ]; then
  log "dotnet build ($configuration) of the packaged projects"
  dotnet build "$work/packages.slnf" -c "$configuration" --disable-build-servers -nologo -v quiet >"$work/build.log" 2>&1 ||
    { cat "$work/build.log"; fail "building the packaged projects failed"; }
fi
log "dotnet pack $version"
dotnet pack "$work/packages.slnf" -c "$configuration" --no-build --disable-build-servers -nologo -v quiet \
  -p:PackageVersion="$version" -o "$feed" >"$work/pack.log" 2>&1 ||
  { cat "$work/pack.log"; fail "dotnet pack failed"; }
for id in MigrateKit MigrateKit.Guests MigrateKit.Vmm LibvirtSharp MigrateKit.Libvirt; do
  [ -f "$feed/$id.$version.nupkg" ] || fail "pack produced no $id.$version.nupkg (feed: $(ls "$feed" | tr '\n' ' '))"
  [ -f "$feed/$id.$version.snupkg" ] || fail "pack produced no $id.$version.snupkg"
done

# ---- a project of its own ---------------------------------------------------
# The repository's NuGet source(s), for third-party packages.
mapfile -t sources < <(dotnet nuget list source --configfile "$root/nuget.config" --format short 2>/dev/null | sed -n 's/^E[A-Z]* \(.*\)$/\1/p')
[ ${#sources[@]} -gt 0 ] || fail "no enabled package source in $root/nuget.config"
{
  echo '<?xml version="1.0" encoding="utf-8"?>'
  echo '<configuration>'
  echo '  <packageSources>'
  echo '    <clear />'
  echo "    <add key=\"local\" value=\"$feed\" />"
  i=0; for s in "${sources[@]}"; do echo "    <add key=\"upstream$i\" value=\"$s\" />"; i=$((i + 1)); done
  echo '  </packageSources>'
  echo '  <packageSourceMapping>'
  echo '    <packageSource key="local">'
  echo '      <package pattern="MigrateKit" />'
  echo '      <package pattern="MigrateKit.*" />'
  echo '      <package pattern="LibvirtSharp" />'
  echo '    </packageSource>'
  i=0; for s in "${sources[@]}"; do echo "    <packageSource key=\"upstream$i\"><package pattern=\"*\" /></packageSource>"; i=$((i + 1)); done
  echo '  </packageSourceMapping>'
  fallback=$(dotnet nuget locals global-packages --list 2>/dev/null | sed -n 's/^global-packages: *//p')
  if [ -n "$fallback" ] && [ -d "$fallback" ]; then
    echo '  <fallbackPackageFolders>'
    echo "    <add key=\"machine\" value=\"$fallback\" />"
    echo '  </fallbackPackageFolders>'
  fi
  echo '</configuration>'
} >"$app/nuget.config"
# Nothing above the app may add properties or central package versions.
for f in Directory.Build.props Directory.Build.targets Directory.Packages.props; do echo '<Project />' >"$app/$f"; done
cat >"$app/Consumer.csproj" <<EOF
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>disable</ImplicitUsings>
    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="MigrateKit" Version="[$version]" />
    <PackageReference Include="MigrateKit.Guests" Version="[$version]" />
    <PackageReference Include="MigrateKit.Vmm" Version="[$version]" />
    <PackageReference Include="LibvirtSharp" Version="[$version]" />
    <PackageReference Include="MigrateKit.Libvirt" Version="[$version]" />
  </ItemGroup>
</Project>
EOF
cp "$root/tests/consumer/Program.cs" "$app/Program.cs"

log "dotnet build of a console project in $app"
export NUGET_PACKAGES=$work/packages
(cd "$app" && dotnet build -c Release --disable-build-servers -nologo -v quiet) >"$work/app.log" 2>&1 ||
  { cat "$work/app.log"; fail "the consumer project did not build"; }

# Restore must have taken the five from the feed, as packages, at this version.
assets=$app/obj/project.assets.json
for id in MigrateKit MigrateKit.Guests MigrateKit.Vmm LibvirtSharp MigrateKit.Libvirt; do
  grep -q "\"$id/$version\": {" "$assets" || fail "$id $version is not in the consumer's project.assets.json"
  lower=$(printf '%s' "$id" | tr '[:upper:]' '[:lower:]')
  pkg=$NUGET_PACKAGES/$lower/$version
  [ -f "$pkg/$lower.$version.nupkg" ] || fail "$id $version was not restored from the local feed into $NUGET_PACKAGES"
  [ -f "$pkg/README.md" ] || fail "$id $version has no README.md"
  [ -f "$pkg/lib/net10.0/$id.xml" ] || fail "$id $version has no XML documentation"
  grep -q '<license type="expression">MIT</license>' "$pkg/$lower.nuspec" || fail "$id $version has no MIT license expression"
  grep -q '<repository type="git" url="https://github.com/migratekit/migratekit"' "$pkg/$lower.nuspec" || fail "$id $version names no repository"
done
[ -f "$NUGET_PACKAGES/migratekit/$version/runtimes/linux-x64/native/libmigratekit.so" ] || fail "the MigrateKit package carries no runtimes/linux-x64/native/libmigratekit.so"
out=$app/bin/Release/net10.0
[ -f "$out/runtimes/linux-x64/native/libmigratekit.so" ] || fail "the consumer's output has no runtimes/linux-x64/native/libmigratekit.so"
[ ! -e "$out/libmigratekit.so" ] || fail "the consumer's output has a libmigratekit.so of unknown origin next to MigrateKit.dll"

log "running it"
if ! (cd "$work" && env -u MIGRATEKIT_NATIVE_LIBRARY dotnet "$out/Consumer.dll"); then
  fail "the consumer program failed (above)"
fi
missing=$work/nowhere/libmigratekit.so
if ! (cd "$work" && MIGRATEKIT_NATIVE_LIBRARY=$missing dotnet "$out/Consumer.dll" --expect-missing); then
  fail "MIGRATEKIT_NATIVE_LIBRARY=$missing was not reported as missing (above)"
fi
# MigrateKitNative.LibraryPath, one run each (the shim is resolved once per process). The variable
# names the other file each time, so the option is seen to take precedence over it.
packaged=$out/runtimes/linux-x64/native/libmigratekit.so
if ! (cd "$work" && MIGRATEKIT_NATIVE_LIBRARY=$packaged dotnet "$out/Consumer.dll" --library-path "$missing"); then
  fail "MigrateKitNative.LibraryPath=$missing was not reported as missing (above)"
fi
elsewhere=$work/elsewhere/libmigratekit.so
mkdir -p "$(dirname "$elsewhere")" && cp "$packaged" "$elsewhere" || fail "could not copy the packaged shim to $elsewhere"
if ! (cd "$work" && MIGRATEKIT_NATIVE_LIBRARY=$missing dotnet "$out/Consumer.dll" --library-path "$elsewhere"); then
  fail "the shim was not loaded from MigrateKitNative.LibraryPath=$elsewhere (above)"
fi
# The README's complete C# examples (the blocks that start with a using directive) compile as a
# newcomer would paste them: into a `dotnet new console` project (implicit usings) on the packages.
log "compiling the README's C# examples against the packages"
mkdir -p "$work/readme"
awk -v dir="$work/readme" '
  /^```csharp/ { inblock = 1; n++; first = 1; next }
  /^```/ { inblock = 0; next }
  inblock { if (first) { keep[n] = ($0 ~ /^using /); first = 0 } text[n] = text[n] $0 "\n" }
  END { for (i = 1; i <= n; i++) if (keep[i]) { f = dir "/example" i ".cs"; printf "%s", text[i] > f; close(f) } }
' "$root/README.md"
examples=("$work"/readme/example*.cs)
# Tracking, migrating a MicroVm, orchestrating libvirt: fewer means an example stopped being found.
[ ${#examples[@]} -ge 3 ] && [ -f "${examples[0]}" ] || fail "found ${#examples[@]} complete C# examples in README.md, expected at least 3"
for example in "${examples[@]}"; do
  dir=${example%.cs}
  mkdir -p "$dir" && mv "$example" "$dir/Program.cs" || fail "could not set up $dir"
  program=$dir/Program.cs
  cp "$app/nuget.config" "$app/Directory.Build.props" "$app/Directory.Build.targets" "$app/Directory.Packages.props" "$dir/"
  sed -e 's|<ImplicitUsings>disable</ImplicitUsings>|<ImplicitUsings>enable</ImplicitUsings>|' "$app/Consumer.csproj" >"$dir/Example.csproj"
  (cd "$dir" && dotnet build -c Release --disable-build-servers -nologo -v quiet) >"$dir/build.log" 2>&1 ||
    { cat "$dir/build.log"; cat -n "$program"; fail "a README example ($(basename "$dir")) does not compile against the packages"; }
done
# The CLI as a .NET tool from the same feed: its linux-x64 package (always built, as the per-RID
# build is not one `dotnet build` leaves), installed into a tool path of its own rather than -g,
# runs `migratekit version` and a short demo.
log "installing the CLI as a tool from the feed"
dotnet pack "$root/samples/MigrateKit.Cli/MigrateKit.Cli.csproj" -c "$configuration" --disable-build-servers -nologo -v quiet \
  -p:Version="$version" -o "$feed" >"$work/tool-pack.log" 2>&1 ||
  { cat "$work/tool-pack.log"; fail "dotnet pack of the CLI failed"; }
tool_package=$feed/MigrateKit.Cli.linux-x64.$version.nupkg
[ -f "$tool_package" ] || fail "pack produced no MigrateKit.Cli.linux-x64.$version.nupkg (feed: $(ls "$feed" | tr '\n' ' '))"
tool_mib=$(( $(stat -c %s "$tool_package") >> 20 ))
[ "$tool_mib" -lt 20 ] || fail "the CLI's tool package is $tool_mib MiB: other platforms' native assets are back in it"
(cd "$work" && dotnet tool install --tool-path "$work/tools" --add-source "$feed" MigrateKit.Cli --version "$version") >"$work/tool-install.log" 2>&1 ||
  { cat "$work/tool-install.log"; fail "dotnet tool install MigrateKit.Cli $version from the feed failed"; }
"$work/tools/migratekit" version >"$work/tool-version.log" 2>&1 && grep -q "^migratekit $version" "$work/tool-version.log" ||
  { cat "$work/tool-version.log"; fail "the installed migratekit does not say its version $version"; }
"$work/tools/migratekit" demo --memory 16MiB --hot 4MiB >"$work/tool-demo.log" 2>&1 && grep -q "^verified: yes" "$work/tool-demo.log" ||
  { cat "$work/tool-demo.log"; fail "the installed migratekit's demo did not complete verified"; }
echo "PASS consumer: $version installed from a local feed, the shim loaded from the package and from MigrateKitNative.LibraryPath, libvirt's test driver listed, ${#examples[@]} README examples compiled, the CLI installed as a tool ($tool_mib MiB package) ran version and demo"
