using System;

namespace MigrateKit.Vmm;

/// <summary>What a vCPU's guest program has reported so far.</summary>
/// <param name="VcpuId">The vCPU.</param>
/// <param name="Passes">The last pass number written to the status port.</param>
/// <param name="Failures">Self-check failures reported.</param>
/// <param name="FirstFailedPage">The page index of the first failure, or -1.</param>
/// <param name="PagesWritten">Pace-port writes: pages the program has written.</param>
/// <param name="Halted">Whether the vCPU executed <c>hlt</c>.</param>
/// <param name="Fault">Why the vCPU stopped for good (shutdown, entry failure, MMIO), or null.</param>
/// <param name="Held">How long its thread was held so far by the pace limit or the throttle: over a window where neither a
/// throttle nor a pause applied, the share of the time the guest ran is 1 minus this part of it.</param>
public readonly record struct VcpuStatus(uint VcpuId, uint Passes, long Failures, long FirstFailedPage, long PagesWritten, bool Halted, string? Fault, TimeSpan Held = default);
