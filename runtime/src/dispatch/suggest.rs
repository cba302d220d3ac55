//! Name suggestions for unknown operators: registered names that share the
//! last path segment, contain it, or are within two edits of it.

/// Up to three registered names close to `name`, sorted.
pub fn similar_names<'a>(name: &str, registered: impl Iterator<Item = &'a String>) -> Vec<String> {
    let base = name.rsplit("::").next().unwrap_or(name);
    let mut v: Vec<String> = registered
        .filter(|k| {
            let kb = k.rsplit("::").next().unwrap_or(k);
            kb == base || k.contains(base) || (base.len() > 2 && edit_distance(kb, base) <= 2)
        })
        .cloned()
        .collect();
    v.sort();
    v.truncate(3);
    v
}

/// The Levenshtein distance between `a` and `b`, in chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
