//! Page cursors: the position of the last item of a page, `{ms}.{id}` (a time in
//! milliseconds and the item's id). Any well-formed position is a valid cursor (the
//! page after it, within the caller's own rows), so the document can give their exact
//! form and a client cannot make one that the API refuses.

/// `{ms}.{id}`.
pub fn encode(ms: i64, id: &str) -> String {
    format!("{ms}.{id}")
}

/// The time and id of a cursor; `None` unless it is exactly `{ms}.{id}` with 1 to
/// 18 digits and an id that `parse` takes as it is (no spaces around it).
pub fn decode<T: AsRef<str>, E>(raw: &str, parse: impl Fn(&str) -> Result<T, E>) -> Option<(i64, T)> {
    let (ms, id) = raw.split_once('.')?;
    if !(1..=18).contains(&ms.len()) || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let parsed = parse(id).ok()?;
    (parsed.as_ref() == id).then_some((ms.parse().ok()?, parsed))
}

#[cfg(test)]
mod tests {
    use agent_spec::AgentId;

    #[test]
    fn a_cursor_is_its_time_and_id_exactly() {
        let id = AgentId::generate();
        assert_eq!(super::decode(&super::encode(17, id.as_str()), AgentId::parse), Some((17, id.clone())));
        let id = id.as_str();
        for bad in [
            String::new(),
            "garbage".into(),
            format!(".{id}"),
            format!("-1.{id}"),
            format!("1234567890123456789.{id}"),
            format!("1. {id}"),
            format!("1.{id} "),
            format!("1.{id}.x"),
            "1.not-an-id".into(),
        ] {
            assert_eq!(super::decode(&bad, AgentId::parse), None, "{bad:?}");
        }
    }
}
