using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.PublicApi;

/// <summary>
/// The public API of the packages, recorded in <c>PublicApi/*.txt</c> next to this file: any change
/// shows up as a failing test with the difference, and is accepted by regenerating the files with
/// <c>MIGRATEKIT_UPDATE_PUBLIC_API=1</c>. Also checks the API's habits: no raw handles or pointers,
/// and a cancellation token on every asynchronous method.
/// </summary>
[TestClass]
public sealed class PublicApiTests
{
    public static IEnumerable<object[]> Packages =>
    [
        [typeof(MigrateKit.Units).Assembly],
        [typeof(MigrateKit.Guests.GuestPrograms).Assembly],
        [typeof(MigrateKit.Vmm.MicroVm).Assembly],
        [typeof(global::LibvirtSharp.LibvirtConnection).Assembly],
        [typeof(MigrateKit.Libvirt.LibvirtMigrator).Assembly],
    ];

    [TestMethod]
    [DynamicData(nameof(Packages))]
    public void PublicApi_MatchesTheRecordedSnapshot(Assembly assembly)
    {
        string name = assembly.GetName().Name!;
        string file = Path.Combine(SourceDirectory(), name + ".txt");
        string actual = string.Join('\n', Describe(assembly)) + "\n";
        if (Environment.GetEnvironmentVariable("MIGRATEKIT_UPDATE_PUBLIC_API") == "1")
        {
            File.WriteAllText(file, actual);
            return;
        }

        Assert.IsTrue(File.Exists(file), $"No recorded public API for {name}: run the tests with MIGRATEKIT_UPDATE_PUBLIC_API=1 to record {file}.");
        string[] expected = File.ReadAllText(file).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string[] now = actual.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string[] added = now.Except(expected).ToArray();
        string[] removed = expected.Except(now).ToArray();
        Assert.IsTrue(added.Length == 0 && removed.Length == 0,
            $"The public API of {name} changed (record it with MIGRATEKIT_UPDATE_PUBLIC_API=1 if intended).\nAdded:\n  {string.Join("\n  ", added)}\nRemoved:\n  {string.Join("\n  ", removed)}");
    }

    [TestMethod]
    [DynamicData(nameof(Packages))]
    public void PublicApi_ExposesNoRawHandlesOrPointers(Assembly assembly)
    {
        var offenders = new List<string>();
        foreach (MemberInfo member in PublicMembers(assembly))
        {
            foreach (Type t in SignatureTypes(member))
            {
                Type e = t.IsByRef || t.IsArray || t.IsPointer ? t.GetElementType()! : t;
                if (t.IsPointer || e == typeof(IntPtr) || e == typeof(UIntPtr) || typeof(SafeHandle).IsAssignableFrom(e))
                {
                    offenders.Add($"{member.DeclaringType}.{member.Name}: {t}");
                }
            }
        }

        Assert.IsEmpty(offenders, string.Join("\n", offenders));
    }

    [TestMethod]
    [DynamicData(nameof(Packages))]
    public void EveryPublicAsyncMethod_TakesACancellationToken(Assembly assembly)
    {
        string[] missing = PublicMembers(assembly).OfType<MethodInfo>()
            .Where(m => IsAsync(m.ReturnType) && m.Name != nameof(IAsyncDisposable.DisposeAsync) && !m.GetParameters().Any(p => p.ParameterType == typeof(CancellationToken)))
            .Select(m => $"{m.DeclaringType}.{m.Name}")
            .ToArray();

        Assert.IsEmpty(missing, string.Join("\n", missing));
    }

    private static bool IsAsync(Type t) =>
        t == typeof(Task) || t == typeof(ValueTask) ||
        (t.IsGenericType && t.GetGenericTypeDefinition() is var g && (g == typeof(Task<>) || g == typeof(ValueTask<>) || g == typeof(IAsyncEnumerable<>)));

    private static IEnumerable<Type> SignatureTypes(MemberInfo member) => member switch
    {
        MethodInfo m => m.GetParameters().Select(p => p.ParameterType).Append(m.ReturnType),
        ConstructorInfo c => c.GetParameters().Select(p => p.ParameterType),
        PropertyInfo p => [p.PropertyType],
        FieldInfo f => [f.FieldType],
        EventInfo e => [e.EventHandlerType!],
        _ => [],
    };

    private static IEnumerable<Type> PublicTypes(Assembly assembly) =>
        assembly.GetExportedTypes().Where(t => t.GetCustomAttribute<CompilerGeneratedAttribute>() is null).OrderBy(t => t.FullName, StringComparer.Ordinal);

    private static IEnumerable<MemberInfo> PublicMembers(Assembly assembly) =>
        PublicTypes(assembly).SelectMany(t => t.GetMembers(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
            .Where(m => m is not MethodInfo { IsSpecialName: true } || m.Name.StartsWith("op_", StringComparison.Ordinal));

    private static IEnumerable<string> Describe(Assembly assembly)
    {
        foreach (Type type in PublicTypes(assembly))
        {
            string kind = type.IsEnum ? "enum" : type.IsInterface ? "interface" : type.IsValueType ? "struct" : type.IsAbstract && type.IsSealed ? "static class" : "class";
            yield return $"{kind} {Name(type)}{Bases(type)}";
            var lines = new List<string>();
            foreach (MemberInfo m in type.GetMembers(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
            {
                string? line = m switch
                {
                    FieldInfo f when type.IsEnum && f.IsStatic => $"  {f.Name} = {Convert.ToUInt64(f.GetRawConstantValue() is { } v && Convert.ToInt64(v) < 0 ? 0 : f.GetRawConstantValue())}",
                    FieldInfo f when !type.IsEnum => $"  field {(f.IsStatic ? "static " : "")}{Name(f.FieldType)} {f.Name}",
                    PropertyInfo p => $"  property {(p.GetMethod?.IsStatic == true ? "static " : "")}{Name(p.PropertyType)} {p.Name} {{{(p.GetMethod?.IsPublic == true ? " get;" : "")}{(p.SetMethod?.IsPublic == true ? (p.SetMethod.ReturnParameter.GetRequiredCustomModifiers().Any(x => x.Name == "IsExternalInit") ? " init;" : " set;") : "")} }}",
                    EventInfo e => $"  event {Name(e.EventHandlerType!)} {e.Name}",
                    ConstructorInfo c => $"  ctor({Parameters(c.GetParameters())})",
                    MethodInfo mi when !mi.IsSpecialName || mi.Name.StartsWith("op_", StringComparison.Ordinal) =>
                        $"  method {(mi.IsStatic ? "static " : "")}{Name(mi.ReturnType)} {mi.Name}{(mi.IsGenericMethod ? "<" + string.Join(", ", mi.GetGenericArguments().Select(Name)) + ">" : "")}({Parameters(mi.GetParameters())})",
                    _ => null,
                };
                if (line is not null)
                {
                    lines.Add(line);
                }
            }

            lines.Sort(StringComparer.Ordinal);
            foreach (string line in lines)
            {
                yield return line;
            }
        }
    }

    /// <summary>
    /// " : " with the base class (unless implicit) and the public interfaces the type adds to its
    /// base's, sorted; those of the base are its own line's, or the runtime's (an enum's, an
    /// exception's), which change with .NET versions, not with this API.
    /// </summary>
    private static string Bases(Type type)
    {
        var names = new List<string>();
        if (type.BaseType is { } b && b != typeof(object) && b != typeof(ValueType) && b != typeof(Enum))
        {
            names.Add(Name(b));
        }

        Type[] inherited = type.BaseType?.GetInterfaces() ?? [];
        names.AddRange(type.GetInterfaces().Where(i => i.IsVisible && !inherited.Contains(i)).Select(Name).Order(StringComparer.Ordinal));
        return names.Count == 0 ? "" : " : " + string.Join(", ", names);
    }

    private static string Parameters(ParameterInfo[] parameters) =>
        string.Join(", ", parameters.Select(p => $"{Name(p.ParameterType)} {p.Name}{(p.HasDefaultValue ? " = " + (p.DefaultValue?.ToString() ?? "null") : "")}"));

    private static string Name(Type t)
    {
        if (t.IsGenericParameter)
        {
            return t.Name;
        }

        if (t.IsByRef)
        {
            return Name(t.GetElementType()!) + "&";
        }

        if (t.IsArray)
        {
            return Name(t.GetElementType()!) + "[]";
        }

        string name = t.IsNested ? Name(t.DeclaringType!) + "." + t.Name : (t.Namespace is { } ns ? ns + "." : "") + t.Name;
        if (t.IsGenericType)
        {
            name = name[..name.IndexOf('`', StringComparison.Ordinal)] + "<" + string.Join(", ", t.GetGenericArguments().Select(Name)) + ">";
        }

        return name;
    }

    private static string SourceDirectory() => RepositoryRoot.Combine("tests", "MigrateKit.Tests", "PublicApi");
}
