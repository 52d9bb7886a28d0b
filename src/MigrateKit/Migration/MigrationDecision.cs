namespace MigrateKit.Migration;

/// <summary>A decision taken about a running migration, with its reason: the strategy at the start, then each change while it runs.</summary>
/// <param name="AtMs">When, in milliseconds since the migration started (0 for the start).</param>
/// <param name="Round">The round or iteration it was taken in (0 for the start).</param>
/// <param name="Action">What was decided, in a word or two (<c>strategy</c>, <c>raise-limit</c>, <c>postcopy</c>, <c>xbzrle-cache</c>, <c>abort</c>).</param>
/// <param name="Reason">Why, in words.</param>
public sealed record MigrationDecision(double AtMs, int Round, string Action, string Reason);
