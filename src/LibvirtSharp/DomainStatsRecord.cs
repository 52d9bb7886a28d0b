using System.Collections.Generic;

namespace LibvirtSharp;

/// <summary>One domain's statistics (<c>virDomainStatsRecord</c>).</summary>
/// <param name="DomainName">The domain the record describes.</param>
/// <param name="Parameters">
/// The statistics by libvirt name (<c>state.state</c>, <c>vcpu.0.time</c>, <c>dirtyrate.calc_status</c>…), boxed as
/// <see cref="int"/>, <see cref="uint"/>, <see cref="long"/>, <see cref="ulong"/>, <see cref="double"/>,
/// <see cref="bool"/> or <see cref="string"/> according to their libvirt type.
/// </param>
public sealed record DomainStatsRecord(string DomainName, IReadOnlyDictionary<string, object> Parameters);
