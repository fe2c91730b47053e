//! The arithmetic of a benchmark report: medians, percentiles, ratios and a least-squares line,
//! kept apart from the measuring so the numbers a report prints can be unit-tested.

/// The median of `values` (the mean of the middle two for an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

/// The `percent` percentile by the nearest-rank method (p99 of 100 samples is the 99th
/// smallest); 0 when empty.
pub fn percentile(values: &[f64], percent: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((percent / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `numerator / denominator`, or None when the denominator is not positive (a ratio to
/// nothing measured is no ratio).
pub fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0 && numerator.is_finite()).then(|| numerator / denominator)
}

/// A ratio for a report: `12.3x`, or `n/a`.
pub fn show_ratio(value: Option<f64>) -> String {
    match value {
        Some(value) if value >= 100.0 => format!("{value:.0}x"),
        Some(value) if value >= 10.0 => format!("{value:.1}x"),
        Some(value) => format!("{value:.2}x"),
        None => "n/a".to_string(),
    }
}

/// A least-squares line `y = intercept + slope * x` and how well it fits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearFit {
    pub slope: f64,
    pub intercept: f64,
    /// The coefficient of determination: 1 for points on the line, near 0 for no relation.
    pub r_squared: f64,
}

/// Fits a line through `points`; None with fewer than two distinct x values.
pub fn linear_fit(points: &[(f64, f64)]) -> Option<LinearFit> {
    let count = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / count;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / count;
    let spread_x: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if points.len() < 2 || spread_x <= 0.0 {
        return None;
    }
    let covariance: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let slope = covariance / spread_x;
    let intercept = mean_y - slope * mean_x;
    let total: f64 = points.iter().map(|p| (p.1 - mean_y).powi(2)).sum();
    let residual: f64 = points
        .iter()
        .map(|p| (p.1 - intercept - slope * p.0).powi(2))
        .sum();
    let r_squared = if total > 0.0 {
        1.0 - residual / total
    } else {
        1.0
    };
    Some(LinearFit {
        slope,
        intercept,
        r_squared,
    })
}

/// The coefficient of determination a growth must reach to count as linear. Real timings are
/// noisy; a quadratic cost over a tenfold range fits a line far worse than this.
pub const LINEAR_R_SQUARED_MIN: f64 = 0.9;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        // Proves the median picks the middle value, or the mean of the middle two.
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn p99_is_the_nearest_rank() {
        // Proves p99 of 1..=100 is 99 and of a single sample is that sample.
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&values, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
    }

    #[test]
    fn ratios_refuse_a_zero_denominator() {
        // Proves a ratio to nothing measured prints as n/a, not infinity.
        assert_eq!(ratio(10.0, 4.0), Some(2.5));
        assert_eq!(ratio(10.0, 0.0), None);
        assert_eq!(show_ratio(Some(250.0)), "250x");
        assert_eq!(show_ratio(Some(0.5)), "0.50x");
        assert_eq!(show_ratio(None), "n/a");
    }

    #[test]
    fn a_line_fits_itself_and_a_parabola_fits_worse() {
        // Proves the fit recovers slope and intercept exactly, and that a quadratic cost
        // falls below the linearity bar.
        let line: Vec<(f64, f64)> = (0..10).map(|x| (x as f64, 3.0 + 2.0 * x as f64)).collect();
        let fit = linear_fit(&line).unwrap();
        assert!((fit.slope - 2.0).abs() < 1e-9 && (fit.intercept - 3.0).abs() < 1e-9);
        assert!((fit.r_squared - 1.0).abs() < 1e-9);
        let curve: Vec<(f64, f64)> = (0..10)
            .map(|x| (x as f64, (x * x * x * x) as f64))
            .collect();
        assert!(linear_fit(&curve).unwrap().r_squared < LINEAR_R_SQUARED_MIN);
        assert!(linear_fit(&[(1.0, 1.0), (1.0, 2.0)]).is_none());
    }
}
