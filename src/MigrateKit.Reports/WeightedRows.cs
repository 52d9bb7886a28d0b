using System;
using System.Linq;
using ScottPlot;

namespace MigrateKit.Reports;

/// <summary>Stacks subplots top to bottom, each taking a share of the height in proportion to its weight.</summary>
internal sealed class WeightedRows : IMultiplotLayout
{
    private readonly double[] _weights;

    internal WeightedRows(params double[] weights)
    {
        if (weights.Length == 0 || weights.Any(w => !(w > 0)))
        {
            throw new ArgumentException("Every weight must be positive.", nameof(weights));
        }

        _weights = weights;
    }

    /// <summary>The rectangles of <paramref name="count"/> rows inside <paramref name="figure"/>.</summary>
    internal PixelRect[] Split(PixelRect figure, int count)
    {
        double total = Enumerable.Range(0, count).Sum(Weight);
        var rects = new PixelRect[count];
        double top = figure.Top;
        for (int i = 0; i < count; i++)
        {
            double bottom = i == count - 1 ? figure.Bottom : top + ((figure.Bottom - figure.Top) * Weight(i) / total);
            rects[i] = new PixelRect(figure.Left, figure.Right, (float)Math.Round(bottom), (float)Math.Round(top));
            top = bottom;
        }

        return rects;
    }

    /// <inheritdoc/>
    public PixelRect[] GetSubplotRectangles(SubplotCollection subplots, PixelRect figureRect) => Split(figureRect, subplots.Count);

    private double Weight(int index) => index < _weights.Length ? _weights[index] : 1;
}
