//! GA, PA, FGA and FTA, and the template correction rules, exactly as
//! `../shared/datasets/loghub/METRICS.md` defines them.
//!
//! Labels: the ground-truth group of a line is its `EventTemplate` string for the corrected
//! files (the Loghub-2.0 convention, §0) and its `EventId` for the original files (the
//! `logparser` convention). The parser group of a line is the parser's *pattern id*, the
//! label a product exposes; two patterns that print the same template are not merged.
//! Template text (PA, FTA) compares the parser's template with the ground-truth template;
//! against corrected labels the parser's template first goes through [`correct_template`]
//! (§5), against original labels the raw strings are compared.

use std::collections::HashMap;

/// One scored line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoredLine<'a> {
    /// The ground-truth group label (template string or event id).
    pub truth_group: &'a str,
    /// The ground-truth template text.
    pub truth_template: &'a str,
    /// The parser's group label (pattern id); `None` when the parser gave the line no
    /// label, which makes the line and its ground-truth group wrong.
    pub parser_group: Option<&'a str>,
    /// The parser's template text, already normalised if it should be.
    pub parser_template: &'a str,
}

/// The four accuracy figures of one system, with the counts behind them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Accuracy {
    /// Grouping accuracy (message level).
    pub ga: f64,
    /// Parsing accuracy (message level, template text).
    pub pa: f64,
    /// F1 of grouping accuracy (template level).
    pub fga: f64,
    /// F1 of template accuracy (template level).
    pub fta: f64,
    /// Lines scored (rows with an empty ground-truth template are dropped first).
    pub lines: usize,
    /// Distinct ground-truth groups.
    pub truth_groups: usize,
    /// Distinct parser groups.
    pub parser_groups: usize,
}

fn f1(correct: usize, parser_groups: usize, truth_groups: usize) -> f64 {
    if correct == 0 || parser_groups == 0 || truth_groups == 0 {
        return 0.0;
    }
    let precision = correct as f64 / parser_groups as f64;
    let recall = correct as f64 / truth_groups as f64;
    2.0 * precision * recall / (precision + recall)
}

/// Computes GA, PA, FGA and FTA over `lines` (METRICS.md §0–§4).
pub fn accuracy(lines: &[ScoredLine<'_>]) -> Accuracy {
    // §0: rows whose ground-truth template is empty are dropped.
    let lines: Vec<&ScoredLine<'_>> = lines
        .iter()
        .filter(|l| !l.truth_template.trim().is_empty())
        .collect();
    let n = lines.len();
    if n == 0 {
        return Accuracy::default();
    }
    let mut truth: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut parser: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, line) in lines.iter().enumerate() {
        truth.entry(line.truth_group).or_default().push(i);
        if let Some(label) = line.parser_group {
            parser.entry(label).or_default().push(i);
        }
    }

    // §1, §3: a ground-truth group is correct when one parser group has exactly its members.
    let mut correctly_grouped = 0;
    let mut ga_lines = 0;
    for members in truth.values() {
        let Some(label) = lines[members[0]].parser_group else {
            continue;
        };
        let one_label = members
            .iter()
            .all(|&i| lines[i].parser_group == Some(label));
        if one_label && parser[label].len() == members.len() {
            correctly_grouped += 1;
            ga_lines += members.len();
        }
    }

    // §2: whole-template string equality per line.
    let pa_lines = lines
        .iter()
        .filter(|l| l.parser_group.is_some() && l.parser_template == l.truth_template)
        .count();

    // §4: a parser group is correct when all its lines share one ground-truth template and
    // its template string equals it.
    let mut correct_templates = 0;
    for members in parser.values() {
        let first = lines[members[0]];
        let same_truth = members
            .iter()
            .all(|&i| lines[i].truth_template == first.truth_template);
        if same_truth && first.parser_template == first.truth_template {
            correct_templates += 1;
        }
    }

    Accuracy {
        ga: ga_lines as f64 / n as f64,
        pa: pa_lines as f64 / n as f64,
        fga: f1(correctly_grouped, parser.len(), truth.len()),
        fta: f1(correct_templates, parser.len(), truth.len()),
        lines: n,
        truth_groups: truth.len(),
        parser_groups: parser.len(),
    }
}

const PATH_DELIMITERS: &[char] = &[
    ' ', '\t', '\n', '\r', ',', '!', ';', ':', '=', '|', '"', '\'', '[', ']', '(', ')', '{', '}',
];
const EXTRA_TOKEN_DELIMITERS: &[char] = &['.', '-', '+', '@', '#', '$', '%', '&'];

/// Splits `text` at single delimiter characters, keeping the delimiters as their own pieces
/// (Python's `re.split('(d1|d2|…)', text)`).
fn split_keep(text: &str, is_delimiter: impl Fn(char) -> bool) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if is_delimiter(c) {
            pieces.push(&text[start..i]);
            pieces.push(&text[i..i + c.len_utf8()]);
            start = i + c.len_utf8();
        }
    }
    pieces.push(&text[start..]);
    pieces
}

/// `^(\/[^\/]+)+$`: one or more `/segment` parts.
fn is_path(token: &str) -> bool {
    token.starts_with('/') && token.split('/').skip(1).all(|part| !part.is_empty())
}

/// Applies Khan et al.'s correction rules to one template, in the order of METRICS.md §5
/// (`correct_single_template` in Loghub-2.0): DS, PS, then per token BL/US, DG, WV, then
/// DV and finally CV.
pub fn correct_template(template: &str) -> String {
    // DS: trim and collapse whitespace runs (Python `\s+`).
    let spaced = template.split_whitespace().collect::<Vec<_>>().join(" ");

    // PS: path-like tokens between path delimiters.
    let path_masked: String = split_keep(&spaced, |c| PATH_DELIMITERS.contains(&c))
        .into_iter()
        .map(|piece| if is_path(piece) { "<*>" } else { piece })
        .collect();

    // BL, US, DG, WV on the finer tokens.
    let is_token_delimiter =
        |c: char| PATH_DELIMITERS.contains(&c) || EXTRA_TOKEN_DELIMITERS.contains(&c);
    let mut masked = String::with_capacity(path_masked.len());
    for piece in split_keep(&path_masked, is_token_delimiter) {
        let mut token = piece;
        let lower = token.to_ascii_lowercase();
        if matches!(lower.as_str(), "true" | "false" | "null" | "root" | "admin") {
            token = "<*>";
        }
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            token = "<*>";
        }
        // WV: `^[^\s\/]*<\*>[^\s\/]*$`, except `<*>/<*>` (which holds a `/` anyway).
        if token.contains("<*>")
            && !token.contains(|c: char| c.is_whitespace() || c == '/')
            && token != "<*>/<*>"
        {
            token = "<*>";
        }
        masked.push_str(token);
    }

    // DV, then CV last.
    let mut text = masked;
    while text.contains("<*>.<*>") {
        text = text.replace("<*>.<*>", "<*>");
    }
    while text.contains("<*><*>") {
        text = text.replace("<*><*>", "<*>");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(truth: &'a str, parser: &'a str) -> ScoredLine<'a> {
        ScoredLine {
            truth_group: truth,
            truth_template: truth,
            parser_group: Some(parser),
            parser_template: parser,
        }
    }

    #[test]
    fn perfect_parse_scores_one() {
        let lines = [
            line("a <*>", "a <*>"),
            line("a <*>", "a <*>"),
            line("b", "b"),
        ];
        let acc = accuracy(&lines);
        assert_eq!((acc.ga, acc.pa, acc.fga, acc.fta), (1.0, 1.0, 1.0, 1.0));
        assert_eq!((acc.truth_groups, acc.parser_groups, acc.lines), (2, 2, 3));
    }

    #[test]
    fn one_wrong_line_spoils_both_groups() {
        // Truth: A×3, B×1. The parser puts one A line into B's group.
        let lines = [
            line("A", "p1"),
            line("A", "p1"),
            line("A", "p2"),
            line("B", "p2"),
            line("C", "p3"),
        ];
        let acc = accuracy(&lines);
        // Only C is grouped exactly: 1 of 5 lines, 1 of 3 groups on both sides.
        assert!((acc.ga - 0.2).abs() < 1e-12);
        assert!((acc.fga - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn split_group_counts_against_precision() {
        // Truth: A×2, B×2. The parser splits A into two groups and gets B right.
        let lines = [
            line("A", "p1"),
            line("A", "p2"),
            line("B", "p3"),
            line("B", "p3"),
        ];
        let acc = accuracy(&lines);
        assert!((acc.ga - 0.5).abs() < 1e-12);
        // PGA = 1/3, RGA = 1/2, F1 = 2·(1/6)/(5/6) = 0.4.
        assert!((acc.fga - 0.4).abs() < 1e-12);
    }

    #[test]
    fn pa_and_fta_look_at_text_ga_does_not() {
        let lines = [
            ScoredLine {
                truth_group: "E1",
                truth_template: "open <*>",
                parser_group: Some("7"),
                parser_template: "open <*>",
            },
            ScoredLine {
                truth_group: "E2",
                truth_template: "close <*>",
                parser_group: Some("8"),
                parser_template: "close x",
            },
            ScoredLine {
                truth_group: "E2",
                truth_template: "close <*>",
                parser_group: Some("8"),
                parser_template: "close x",
            },
        ];
        let acc = accuracy(&lines);
        assert_eq!(acc.ga, 1.0);
        assert!((acc.pa - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(acc.fga, 1.0);
        // One of two parser templates is right: PTA = RTA = 1/2.
        assert!((acc.fta - 0.5).abs() < 1e-12);
    }

    #[test]
    fn fta_needs_a_pure_group() {
        // The parser group prints A's template but also holds a B line.
        let lines = [
            ScoredLine {
                truth_group: "A",
                truth_template: "x <*>",
                parser_group: Some("1"),
                parser_template: "x <*>",
            },
            ScoredLine {
                truth_group: "B",
                truth_template: "x y",
                parser_group: Some("1"),
                parser_template: "x <*>",
            },
        ];
        let acc = accuracy(&lines);
        assert_eq!((acc.ga, acc.fga, acc.fta), (0.0, 0.0, 0.0));
        assert!((acc.pa - 0.5).abs() < 1e-12);
    }

    #[test]
    fn unlabelled_lines_are_never_right() {
        let mut lines = vec![line("A", "A"), line("B", "B")];
        lines[1].parser_group = None;
        let acc = accuracy(&lines);
        assert_eq!((acc.ga, acc.pa), (0.5, 0.5));
        assert_eq!(acc.parser_groups, 1);
    }

    #[test]
    fn empty_truth_templates_are_dropped() {
        let lines = [line("A", "p1"), line("", "p1")];
        let acc = accuracy(&lines);
        assert_eq!(acc.lines, 1);
        assert_eq!(acc.ga, 1.0);
        assert_eq!(accuracy(&[]).lines, 0);
    }

    #[test]
    fn correction_rules() {
        // DS
        assert_eq!(correct_template("  a   b \t c "), "a b c");
        // PS
        assert_eq!(
            correct_template("open /var/log/x failed"),
            "open <*> failed"
        );
        assert_eq!(correct_template("path=/a/b,"), "path=<*>,");
        // BL, US
        assert_eq!(correct_template("flag=True user root"), "flag=<*> user <*>");
        // DG
        assert_eq!(correct_template("port 22 ok"), "port <*> ok");
        // WV
        assert_eq!(correct_template("blk_<*> took <*>ms"), "<*> took <*>");
        assert_eq!(correct_template("<*>/<*> kept"), "<*>/<*> kept");
        // DV then CV
        assert_eq!(correct_template("ip <*>.<*>.<*>.<*> end"), "ip <*> end");
        assert_eq!(correct_template("v<*>-<*>"), "<*>-<*>");
        assert_eq!(correct_template("<*><*> x"), "<*> x");
        // Non-ASCII text passes through.
        assert_eq!(correct_template("héllo wörld"), "héllo wörld");
    }
}
