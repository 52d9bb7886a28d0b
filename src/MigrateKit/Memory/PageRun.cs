namespace MigrateKit.Memory;

/// <summary>A run of consecutive pages.</summary>
/// <param name="FirstPage">The first page of the run.</param>
/// <param name="Count">How many pages the run has (at least 1).</param>
public readonly record struct PageRun(ulong FirstPage, ulong Count)
{
    /// <summary>The page one past the run's end.</summary>
    public ulong End => FirstPage + Count;
}
