//! CSV cells for the exports (conversions, payouts): quoted when needed, formula-safe.

/// One CSV cell: quoted when needed, and defused when a spreadsheet would read it as a formula
/// (a leading `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'`).
pub fn csv_cell(raw: &str) -> String {
    let defused = if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{raw}") } else { raw.to_owned() };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn a_cell_a_spreadsheet_would_run_as_a_formula_is_defused_and_quoted_when_needed() {
        assert_eq!(csv_cell(r#"=HYPERLINK("http://evil.example/","click")"#), r#""'=HYPERLINK(""http://evil.example/"",""click"")""#);
        for (raw, exported) in [("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "\"'\rx\"")] {
            assert_eq!(csv_cell(raw), exported, "{raw:?}");
        }
        assert_eq!(csv_cell("in_1"), "in_1");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell(""), "");
    }
}
