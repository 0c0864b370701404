//! Output the way Nomad prints it: `key = value` blocks aligned on ` = `, tables aligned
//! with two spaces, `<none>` for empty cells, RFC 3339 times.

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

/// Unix nanoseconds as RFC 3339 (UTC).
pub fn time(unix_nanos: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(unix_nanos as i128)
        .ok()
        .and_then(|t| {
            t.replace_nanosecond(0)
                .ok()?
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix_nanos.to_string())
}

/// The current time, as Nomad's monitor prints it.
pub fn now() -> String {
    time(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or_default(),
    )
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

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(time(1_766_410_000_000_000_000), "2025-12-22T13:26:40Z");
    }
}
