//! Output the way Nomad prints it: `key = value` blocks aligned on ` = `, tables aligned
//! with two spaces, `<none>` for empty cells, RFC 3339 times.

pub use crate::clock::rfc3339 as time;

/// Align a block of key/value lines on ` = `.
pub fn kv(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| format!("{k:<width$} = {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Align rows into columns separated by two spaces; the first row is the header.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| cell(s).chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let line: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    if i + 1 == row.len() {
                        cell(s).to_string()
                    } else {
                        format!("{:<w$}", cell(s), w = widths[i])
                    }
                })
                .collect();
            line.join("  ").trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn cell(s: &str) -> &str {
    if s.is_empty() {
        "<none>"
    } else {
        s
    }
}

/// The current time, as Nomad's monitor prints it.
pub fn now() -> String {
    time(crate::clock::Clock::system().now_ns())
}

/// IDs are shown as their first 8 characters unless `-verbose`.
pub fn short_id(id: &str, verbose: bool) -> &str {
    if verbose || id.len() <= 8 {
        id
    } else {
        &id[..8]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_aligns_on_equals() {
        assert_eq!(
            kv(&[("ID", "a".into()), ("Submit Date", "b".into())]),
            "ID          = a\nSubmit Date = b"
        );
    }

    #[test]
    fn table_aligns_columns_and_fills_empty_cells() {
        let rows = vec![
            vec!["ID".into(), "Status".into()],
            vec!["transcode/dispatch-1-abcdef01".into(), "pending".into()],
            vec!["x".into(), "".into()],
        ];
        assert_eq!(
            table(&rows),
            "ID                             Status\ntranscode/dispatch-1-abcdef01  pending\nx                              <none>"
        );
    }
}
