using System;

namespace MigrateKit.Transport;

/// <summary>How one page travels: the form the sender chose for it, cheapest on the wire. The values are the wire's.</summary>
public enum PageEncoding : byte
{
    /// <summary>The page's 4096 bytes as they are.</summary>
    Raw = 0,

    /// <summary>Nothing: every byte is zero.</summary>
    Zero = 1,

    /// <summary>The bytes that changed since the copy last sent: runs of unchanged and changed bytes (XBZRLE-like).</summary>
    Delta = 2,

    /// <summary>The page compressed alone with LZ4.</summary>
    Compressed = 3,
}

/// <summary>Which encodings beyond raw and zero pages a sender may use.</summary>
[Flags]
public enum PageEncodings
{
    /// <summary>Pages go raw (or as zero runs) only.</summary>
    None = 0,

    /// <summary>A page sent before goes as a delta against the copy last sent, when that is smaller; needs a cache of sent pages.</summary>
    Delta = 1,

    /// <summary>A page goes compressed (LZ4) when that is smaller than raw and than its delta.</summary>
    Compression = 2,

    /// <summary>Both.</summary>
    All = Delta | Compression,
}
