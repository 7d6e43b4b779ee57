//! "Did you mean …?": the closest of a few known words to one a person typed.

/// The candidate nearest `typed` by edit distance, when it is near enough to be the word
/// meant (at most one edit in four characters, and never more than three); ties go to
/// the first candidate.
pub fn closest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed = typed.to_ascii_lowercase();
    let allowed = (typed.chars().count() / 4).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (distance(&typed, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, with a swap of two neighbouring characters counted as one edit.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j]; three rows are enough for swaps.
    let mut before = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let substitution = previous[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            let mut best = substitution.min(previous[j] + 1).min(current[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_known_word_is_suggested() {
        let ids = ["openai", "github", "weather"];
        assert_eq!(closest("opena", ids), Some("openai"));
        assert_eq!(closest("gihtub", ids), Some("github"), "a swap is one edit");
        assert_eq!(closest("OpenAI", ids), Some("openai"));
        assert_eq!(closest("slack", ids), None, "nothing near: no guess");
        assert_eq!(closest("egres", ["egress", "enabled"]), Some("egress"));
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
    }
}
