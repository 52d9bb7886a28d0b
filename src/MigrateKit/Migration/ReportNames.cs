using System;
using System.Text.Json;

namespace MigrateKit.Migration;

/// <summary>The one spelling of report enums outside JSON too (spans, logs): as the JSON writes them.</summary>
internal static class ReportNames
{
    /// <summary>The camelCase name of an enum value, e.g. <c>switchover</c>, <c>raiseLimit</c>, <c>converging</c>.</summary>
    internal static string Of<TEnum>(TEnum value)
        where TEnum : struct, Enum => JsonNamingPolicy.CamelCase.ConvertName(value.ToString());
}
