namespace MigrateKit.Transport;

/// <summary>How one page travels: the form <see cref="PageEncoder"/> chose for it, cheapest on the wire.</summary>
internal enum PageEncoding : byte
{
    /// <summary>The page's 4096 bytes as they are.</summary>
    Raw,

    /// <summary>Nothing: every byte is zero.</summary>
    Zero,

    /// <summary>A <see cref="PageDelta"/> against the copy last sent.</summary>
    Delta,

    /// <summary>The page compressed alone (<see cref="PageCompression"/>).</summary>
    Compressed,
}
