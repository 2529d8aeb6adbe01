//! "Did you mean …?" suggestions for misspelt names.

/// The known name closest to `name`, if it is close enough to be a likely typo.
pub fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), k))
        .filter(|(d, k)| *d <= (k.chars().count() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn suggests_only_close_names() {
        let known = ["page", "short", "siren"];
        assert_eq!(closest("pgae", known), Some("page"));
        assert_eq!(closest("shrot", known), Some("short"));
        assert_eq!(closest("bridge", known), None);
    }
}
