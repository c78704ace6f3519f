//! `--plot FILE.svg`: durable commits per second against writer threads for got,
//! SQLite and redb, with the disk's fdatasync rate as a horizontal line.

use crate::report::CurvePoint;
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::Path;

pub fn commits_by_threads(path: &Path, curve: &[CurvePoint], limit: Option<f64>) -> Result<()> {
    let mut pts = curve.to_vec();
    pts.sort_by_key(|p| p.threads);
    anyhow::ensure!(
        !pts.is_empty(),
        "no thread measurements to plot (workloads 2 and 3)"
    );
    // Evenly spaced thread counts (1, 2, 4, 8, 16), labelled by count.
    let threads: Vec<usize> = pts.iter().map(|p| p.threads).collect();
    let x = |i: usize| i as f64;
    let max_y = pts
        .iter()
        .flat_map(|p| [p.got, p.sqlite, p.redb])
        .flatten()
        .chain(limit)
        .fold(0.0f64, f64::max)
        * 1.15;
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
    let last = (threads.len() - 1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Durable commits/s by writer threads (one process)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.2f64..last + 0.2, 0.0f64..max_y.max(1.0))
        .map_err(|e| anyhow!("{e:?}"))?;
    let label = |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < threads.len() {
            threads[i as usize].to_string()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_desc("writer threads")
        .y_desc("commits/s")
        .x_labels(threads.len() * 2 + 1)
        .x_label_formatter(&label)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .disable_x_mesh()
        .light_line_style(WHITE)
        .draw()
        .map_err(|e| anyhow!("{e:?}"))?;
    type Series = (&'static str, RGBColor, fn(&CurvePoint) -> Option<f64>);
    let series: [Series; 3] = [
        ("got", RGBColor(200, 30, 30), |p| p.got),
        (
            "SQLite (WAL, synchronous=FULL)",
            RGBColor(30, 80, 200),
            |p| p.sqlite,
        ),
        ("redb (Durability::Immediate)", RGBColor(30, 150, 60), |p| {
            p.redb
        }),
    ];
    for (name, color, get) in series {
        let data: Vec<(f64, f64)> = pts
            .iter()
            .enumerate()
            .filter_map(|(i, p)| get(p).map(|v| (x(i), v)))
            .collect();
        chart
            .draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))
            .map_err(|e| anyhow!("{e:?}"))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                data.into_iter()
                    .map(|(x, y)| Circle::new((x, y), 3, color.filled())),
            )
            .map_err(|e| anyhow!("{e:?}"))?;
    }
    if let Some(l) = limit {
        let grey = RGBColor(120, 120, 120);
        chart
            .draw_series(LineSeries::new(
                vec![(-0.2, l), (last + 0.2, l)],
                grey.stroke_width(1),
            ))
            .map_err(|e| anyhow!("{e:?}"))?
            .label("disk: fdatasync/s (1 thread)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| anyhow!("{e:?}"))?;
    root.present().map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}
