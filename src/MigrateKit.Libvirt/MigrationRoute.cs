namespace MigrateKit.Libvirt;

/// <summary>Which domain moves, and between which two hosts.</summary>
/// <param name="SourceUri">The libvirt URI of the host the domain runs on.</param>
/// <param name="Domain">The domain's name (the same on both hosts).</param>
/// <param name="DestinationUri">The libvirt URI of the host it moves to.</param>
internal sealed record MigrationRoute(string SourceUri, string Domain, string DestinationUri);
