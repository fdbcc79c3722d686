//! Printing: aligned text tables for people, `--json` for scripts.

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub(crate) use crate::stdout::outln;

/// Prints a value as pretty JSON on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?)
}

/// A timestamp as RFC 3339.
pub fn when(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// Prints rows under a header, columns padded to the widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    let widths = widths(header, rows);
    row(&widths, header)?;
    for cells in rows {
        row(
            &widths,
            &cells.iter().map(String::as_str).collect::<Vec<_>>(),
        )?;
    }
    Ok(())
}

/// The width of each column: its widest cell, header included.
pub fn widths(header: &[&str], rows: &[Vec<String>]) -> Vec<usize> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    widths
}

/// Prints one table line, each cell padded to its column's width (a wider cell pushes the
/// rest of its line, as a streamed table cannot know later rows).
pub fn row(widths: &[usize], cells: &[&str]) -> anyhow::Result<()> {
    let padded: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(cell, width)| format!("{cell:<width$}"))
        .collect();
    outln!("{}", padded.join("  ").trim_end())
}

/// `key: value` lines for one object, skipping empty values.
pub fn fields(pairs: &[(&str, String)]) -> anyhow::Result<()> {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    for (key, value) in pairs {
        if !value.is_empty() {
            outln!("{:<width$} {value}", format!("{key}:"))?;
        }
    }
    Ok(())
}

/// An optional value as text (`""` when absent).
pub fn opt(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}
