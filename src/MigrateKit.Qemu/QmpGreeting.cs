using System;
using System.Collections.Generic;

namespace MigrateKit.Qemu;

/// <summary>What QEMU says about itself in its QMP greeting.</summary>
internal sealed record QmpGreeting
{
    /// <summary>The QEMU version (0.0.0 when not given).</summary>
    internal Version Version { get; init; } = new(0, 0, 0);

    /// <summary>The package string (a distribution's build tag; often empty).</summary>
    internal string Package { get; init; } = string.Empty;

    /// <summary>The capabilities offered (such as <c>oob</c>).</summary>
    internal IReadOnlyList<string> Capabilities { get; init; } = [];
}
