using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Migration;

namespace MigrateKit.Cli;

/// <summary>Goes through a bench matrix: every cell once, then every cell again, <see cref="ForecastMatrix.Runs"/> times.</summary>
internal static class MatrixRuns
{
    /// <summary>
    /// Runs each cell with <paramref name="run"/>; a cell that throws what ends a command (or a
    /// <see cref="MigrationException"/>) becomes the row <paramref name="failed"/> makes, and the
    /// bench goes on. <paramref name="ended"/> sees each row as it ends (index from 1, and the total).
    /// </summary>
    internal static async Task<IReadOnlyList<T>> RunAsync<T>(ForecastMatrix matrix, Func<ForecastCell, int, Task<T>> run, Func<ForecastCell, int, Exception, T> failed, Action<T, int, int> ended, CancellationToken ct)
    {
        IReadOnlyList<ForecastCell> cells = matrix.Cells();
        int total = cells.Count * matrix.Runs;
        var rows = new List<T>(total);
        for (int repeat = 1; repeat <= matrix.Runs; repeat++)
        {
            foreach (ForecastCell cell in cells)
            {
                ct.ThrowIfCancellationRequested();
                T row;
                try
                {
                    row = await run(cell, repeat).ConfigureAwait(false);
                }
                catch (Exception ex) when (CliInput.EndsACommand(ex) || ex is MigrationException)
                {
                    // One cell that cannot run (a VM too large for this host, a tracker KVM refuses) is a result, not the end of the bench.
                    row = failed(cell, repeat, ex);
                }

                rows.Add(row);
                ended(row, rows.Count, total);
            }
        }

        return rows;
    }
}
