//! What a regular expression costs to compile before it is compiled, so that user input
//! cannot buy seconds of CPU with a few bytes.
//!
//! The `regex` crate's compile time is linear in the pattern except in one place found by
//! fuzzing: under `(?i)`, a bracketed class is case folded by walking **every code point**
//! of its ranges (`regex-syntax`'s `case_fold_simple`), and a class that mixes a wide set
//! with anything else is folded again at each level: `(?i)[a[^b]]` (11 bytes) walks the
//! 1.1 M code points of Unicode, ~8 ms in release; `(?i)\p{Any}` the same. 400 of them in
//! a 2.8 KB PromQL selector took 1.7 s to parse and 3.6 s more for the series API. Go's RE2
//! (Prometheus, Loki) folds without that walk. [`case_fold_work`] counts the code points
//! the walk will visit by replaying the translator's class handling on the syntax tree,
//! with interval arithmetic and no folding (microseconds); [`FoldBudget`] refuses a query
//! whose regexes together would walk more than two full Unicode folds plus a little per
//! byte of the query.

use regex_syntax::ast::{self, Ast, ClassSetItem, Visitor};
use regex_syntax::hir::{ClassUnicode, ClassUnicodeRange};

/// Code points: one full fold walks this many (surrogates included, skipped at ~1 ns each;
/// ~7 ns each otherwise in release, ~8 ms in all).
pub const UNICODE_CODE_POINTS: u64 = 0x11_0000;
/// Case-folding work any query (or any one regex) may cost whatever its length: two classes
/// spanning all of Unicode, such as `(?i)[\s\S]` (a JavaScript habit) twice, ~16 ms.
pub const FOLD_WORK_BASE: u64 = 2 * UNICODE_CODE_POINTS;
/// Case-folding work each further byte of query buys: 64 code points, ~0.5 µs, well under
/// what parsing the byte costs otherwise, so that the whole compile stays linear.
pub const FOLD_WORK_PER_BYTE: u64 = 64;

/// The case-folding work (code points walked) a query or regex of `len` bytes may cost.
pub fn fold_budget(len: usize) -> u64 {
    FOLD_WORK_BASE.saturating_add(FOLD_WORK_PER_BYTE.saturating_mul(len as u64))
}

/// Case-folding work of the regexes of one query, charged as the parser meets them.
#[derive(Debug, Clone)]
pub struct FoldBudget {
    limit: u64,
    spent: u64,
}

impl FoldBudget {
    /// The budget of a query of `query_len` bytes.
    pub fn for_query(query_len: usize) -> FoldBudget {
        FoldBudget {
            limit: fold_budget(query_len),
            spent: 0,
        }
    }

    /// Charges one regex (as compiled, unanchored); refuses it, naming the limit, when the
    /// query's regexes together would go over. A regex that does not parse costs nothing
    /// here: the compiler says why it is invalid.
    pub fn charge(&mut self, re: &str) -> Result<(), String> {
        let work = case_fold_work(re).unwrap_or(0);
        self.spent = self.spent.saturating_add(work);
        if self.spent > self.limit {
            return Err(over_budget(self.spent, self.limit));
        }
        Ok(())
    }
}

/// Refuses one regex on its own (where no query holds it: a matcher built directly, a
/// configuration's relabel rule) when its case folding would cost more than
/// [`fold_budget`] of its length.
pub fn check_fold_work(re: &str) -> Result<(), String> {
    FoldBudget::for_query(re.len()).charge(re)
}

fn over_budget(work: u64, limit: u64) -> String {
    format!(
        "case-insensitive character classes too large: folding them would walk {work} code points, \
         at most {limit} for this query ({FOLD_WORK_BASE} + {FOLD_WORK_PER_BYTE} a byte); \
         fold fewer wide classes, e.g. write (?s:.) for [\\s\\S]"
    )
}

/// Code points `regex-syntax` walks to case fold `re`'s classes when translating it, or
/// `None` if `re` does not parse. It is read as the callers compile it, inside a group
/// (`^(?s:re)$`: `a)(?i:[\s\S]` is valid there and nowhere else, found by fuzzing), and
/// also with RE2's literal braces escaped, as [`crate::largest_repeat`] reads it.
pub fn case_fold_work(re: &str) -> Option<u64> {
    // Cheap exit: no folding without the flag.
    if !re.contains('i') || !re.contains("(?") {
        return Some(0);
    }
    let parse = |re: &str| ast::parse::Parser::new().parse(&format!("(?:{re})")).ok();
    let ast = parse(re).or_else(|| parse(&crate::matcher::escape_literal_braces(re)))?;
    ast::visit(&ast, FoldWork::default()).ok()
}

/// Translator flags that matter here.
#[derive(Debug, Clone, Copy)]
struct Flags {
    case_insensitive: bool,
    unicode: bool,
}

impl Default for Flags {
    fn default() -> Flags {
        Flags {
            case_insensitive: false,
            unicode: true,
        }
    }
}

impl Flags {
    fn apply(&mut self, flags: &ast::Flags) {
        let mut negate = false;
        for item in &flags.items {
            match item.kind {
                ast::FlagsItemKind::Negation => negate = true,
                ast::FlagsItemKind::Flag(ast::Flag::CaseInsensitive) => {
                    self.case_insensitive = !negate
                }
                ast::FlagsItemKind::Flag(ast::Flag::Unicode) => self.unicode = !negate,
                ast::FlagsItemKind::Flag(_) => {}
            }
        }
    }

    /// Whether classes are folded by walking code points (byte classes fold ASCII only).
    fn walks(self) -> bool {
        self.case_insensitive && self.unicode
    }
}

/// A class under construction, as the translator's frame holds it, with its `folded` flag
/// (regex-syntax's `IntervalSet::folded`: set once folded, kept by set operations between
/// folded sets, lost by adding a range or a set not known to be folded).
#[derive(Debug, Clone)]
struct Frame {
    set: ClassUnicode,
    folded: bool,
}

impl Frame {
    fn empty() -> Frame {
        Frame {
            set: ClassUnicode::empty(),
            folded: true,
        }
    }

    fn push(&mut self, start: char, end: char) {
        self.set.push(ClassUnicodeRange::new(start, end));
        self.folded = false;
    }

    fn union(&mut self, other: &Frame) {
        if other.set.ranges().is_empty() || self.set.ranges() == other.set.ranges() {
            return;
        }
        self.set.union(&other.set);
        self.folded = self.folded && other.folded;
    }
}

fn span(set: &ClassUnicode) -> u64 {
    set.ranges()
        .iter()
        .map(|r| u64::from(r.end()) - u64::from(r.start()) + 1)
        .sum()
}

/// Replays `regex-syntax`'s `TranslatorI` (hir/translate.rs) on classes: the frames it
/// pushes and pops, where it folds, and the flags in force.
#[derive(Default)]
struct FoldWork {
    flags: Flags,
    /// Flags to restore at the end of each open group.
    groups: Vec<Flags>,
    frames: Vec<Frame>,
    work: u64,
}

impl FoldWork {
    /// `unicode_fold_and_negate`: folds (walking the set unless it is known to be folded),
    /// then negates.
    fn fold_and_negate(&mut self, frame: &mut Frame, negated: bool) {
        if self.flags.walks() {
            self.fold(frame);
        }
        if negated {
            frame.set.negate();
        }
    }

    fn fold(&mut self, frame: &mut Frame) {
        if !frame.folded {
            self.work = self.work.saturating_add(span(&frame.set));
            frame.folded = true;
        }
    }

    /// A class the translator builds whole (`\pL`, `[:alpha:]`, `\w`), not yet folded:
    /// its set read by translating it alone, case-sensitively, then un-negated (folding
    /// comes before negation).
    fn leaf(item: &ClassSetItem) -> Frame {
        let text = ast::print::Printer::new().print_class_set_item(item);
        let set = regex_syntax::ParserBuilder::new()
            .utf8(false)
            .build()
            .parse(&format!("[{text}]"))
            .ok()
            .and_then(|hir| match hir.into_kind() {
                regex_syntax::hir::HirKind::Class(regex_syntax::hir::Class::Unicode(c)) => Some(c),
                _ => None,
            })
            .unwrap_or_else(ClassUnicode::empty);
        Frame { set, folded: false }
    }
}

trait PrintItem {
    fn print_class_set_item(&mut self, item: &ClassSetItem) -> String;
}

impl PrintItem for ast::print::Printer {
    fn print_class_set_item(&mut self, item: &ClassSetItem) -> String {
        // The printer takes whole trees: print the item as the only one of a class.
        let class = Ast::class_bracketed(ast::ClassBracketed {
            span: *item.span(),
            negated: false,
            kind: ast::ClassSet::Item(item.clone()),
        });
        let mut out = String::new();
        if self.print(&class, &mut out).is_err() {
            return String::new();
        }
        // `[item]` → `item`
        out[1..out.len() - 1].to_string()
    }
}

impl FoldWork {
    /// The un-negated set of a leaf class (`\P{L}`, `[:^alpha:]`, `\W` read as `\p{L}`, …)
    /// and whether it was negated.
    fn leaf_unnegated(item: &ClassSetItem) -> (Frame, bool) {
        let negated = match item {
            ClassSetItem::Unicode(u) => u.is_negated(),
            ClassSetItem::Ascii(a) => a.negated,
            ClassSetItem::Perl(p) => p.negated,
            _ => false,
        };
        let mut frame = FoldWork::leaf(item);
        if negated {
            frame.set.negate();
        }
        (frame, negated)
    }
}

impl Visitor for FoldWork {
    type Output = u64;
    type Err = ();

    fn finish(self) -> Result<u64, ()> {
        Ok(self.work)
    }

    fn visit_pre(&mut self, ast: &Ast) -> Result<(), ()> {
        match ast {
            Ast::ClassBracketed(_) => self.frames.push(Frame::empty()),
            Ast::Group(g) => {
                self.groups.push(self.flags);
                if let Some(flags) = g.flags() {
                    self.flags.apply(flags);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn visit_post(&mut self, ast: &Ast) -> Result<(), ()> {
        match ast {
            Ast::Flags(f) => self.flags.apply(&f.flags),
            Ast::Group(_) => self.flags = self.groups.pop().unwrap_or_default(),
            Ast::ClassUnicode(u) if self.flags.walks() => {
                let item = ClassSetItem::Unicode((**u).clone());
                let (mut frame, _) = FoldWork::leaf_unnegated(&item);
                self.fold(&mut frame);
            }
            Ast::ClassBracketed(b) => {
                let mut frame = self.frames.pop().unwrap_or_else(Frame::empty);
                self.fold_and_negate(&mut frame, b.negated);
            }
            _ => {}
        }
        Ok(())
    }

    fn visit_class_set_item_pre(&mut self, item: &ClassSetItem) -> Result<(), ()> {
        if let ClassSetItem::Bracketed(_) = item {
            self.frames.push(Frame::empty());
        }
        Ok(())
    }

    fn visit_class_set_item_post(&mut self, item: &ClassSetItem) -> Result<(), ()> {
        let added = match item {
            ClassSetItem::Empty(_) | ClassSetItem::Union(_) => return Ok(()),
            ClassSetItem::Literal(l) => {
                if let Some(top) = self.frames.last_mut() {
                    top.push(l.c, l.c);
                }
                return Ok(());
            }
            ClassSetItem::Range(r) => {
                if let Some(top) = self.frames.last_mut() {
                    top.push(r.start.c, r.end.c);
                }
                return Ok(());
            }
            // Perl classes are not folded (closed under folding already), but neither are
            // they marked folded: the class they join is folded whole.
            ClassSetItem::Perl(_) => FoldWork::leaf(item),
            ClassSetItem::Unicode(_) | ClassSetItem::Ascii(_) => {
                let (mut frame, negated) = FoldWork::leaf_unnegated(item);
                self.fold_and_negate(&mut frame, negated);
                frame
            }
            ClassSetItem::Bracketed(b) => {
                let mut frame = self.frames.pop().unwrap_or_else(Frame::empty);
                self.fold_and_negate(&mut frame, b.negated);
                frame
            }
        };
        if let Some(top) = self.frames.last_mut() {
            top.union(&added);
        }
        Ok(())
    }

    fn visit_class_set_binary_op_pre(&mut self, _: &ast::ClassSetBinaryOp) -> Result<(), ()> {
        self.frames.push(Frame::empty());
        Ok(())
    }

    fn visit_class_set_binary_op_in(&mut self, _: &ast::ClassSetBinaryOp) -> Result<(), ()> {
        self.frames.push(Frame::empty());
        Ok(())
    }

    fn visit_class_set_binary_op_post(&mut self, op: &ast::ClassSetBinaryOp) -> Result<(), ()> {
        let mut rhs = self.frames.pop().unwrap_or_else(Frame::empty);
        let mut lhs = self.frames.pop().unwrap_or_else(Frame::empty);
        if self.flags.walks() {
            self.fold(&mut rhs);
            self.fold(&mut lhs);
        }
        match op.kind {
            ast::ClassSetBinaryOpKind::Intersection => lhs.set.intersect(&rhs.set),
            ast::ClassSetBinaryOpKind::Difference => lhs.set.difference(&rhs.set),
            ast::ClassSetBinaryOpKind::SymmetricDifference => {
                lhs.set.symmetric_difference(&rhs.set)
            }
        }
        lhs.folded = lhs.folded && rhs.folded;
        if let Some(top) = self.frames.last_mut() {
            top.union(&lhs);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(re: &str) -> u64 {
        case_fold_work(re).unwrap()
    }

    #[test]
    fn wide_classes_under_case_insensitivity_cost_a_full_fold() {
        // Found by fuzzing: each costs ~8 ms to compile in release.
        for re in [
            r"(?i)[a[^b]]",
            r"(?i)[\s\S]",
            r"(?i)[\w\W]",
            r"(?i)\p{Any}",
            r"(?i)[a-\x{10FFFF}]",
            r"(?i)[[:^alpha:]a]",
            r"(?i:[x[^\x00]])",
        ] {
            let w = work(re);
            assert!(
                w > UNICODE_CODE_POINTS * 9 / 10 && w < UNICODE_CODE_POINTS * 3,
                "{re}: {w}"
            );
        }
        // Repeated, they add up.
        assert!(work(&format!("(?i){}", "[a[^b]]".repeat(10))) > 10 * UNICODE_CODE_POINTS * 9 / 10);
        // Nested mixes fold at each level.
        assert!(work(r"(?i:[[i[^\x00]]\x00][i[^\x00]])") > 2 * UNICODE_CODE_POINTS);
    }

    #[test]
    fn what_the_translator_never_walks_costs_nothing() {
        for re in [
            r"[a[^b]]",       // not case-insensitive
            r"(?i)[^ab]",     // folded before negation: two code points
            r"(?i)[[^a]]",    // a folded set joins an empty one: still folded
            r"(?i)\W",        // Perl classes alone are not folded
            r"(?i).",         // nor is the dot
            r"(?i)[a&&[^b]]", // the intersection is folded, so is the class
            r"(?i)[[^b]--c]", //
            r"(?i:a)[\s\S]",  // the flag's group ended
            r"(?i)(?-i:[\s\S])",
            r"(?i)(?-u:[\x00-\xFF])", // byte classes fold ASCII only
            "error_(?i:[a-z]+)",
        ] {
            assert!(work(re) < 1000, "{re}: {}", work(re));
        }
        assert_eq!(case_fold_work("(?i)[unclosed"), None);
        // Read as compiled, inside a group (found by fuzzing).
        assert!(work(r"x)(?i:[a[^b]]") > UNICODE_CODE_POINTS * 9 / 10);
    }

    #[test]
    fn a_query_has_one_budget_for_all_its_regexes() {
        let mut b = FoldBudget::for_query(40);
        assert!(b.charge(r"(?i)[\s\S]").is_ok());
        assert!(b.charge(r"(?i)[\s\S]").is_ok());
        let e = b.charge(r"(?i)[\s\S]").unwrap_err();
        assert!(
            e.starts_with("case-insensitive character classes too large"),
            "{e}"
        );
        // A long query buys more.
        let mut b = FoldBudget::for_query(40_000);
        for _ in 0..4 {
            assert!(b.charge(r"(?i)[\s\S]").is_ok());
        }
        assert!(check_fold_work(&format!("(?i){}", "[a[^b]]".repeat(3))).is_err());
        assert!(check_fold_work(r"(?i)[\w.-]+@[\w.-]+").is_ok());
    }
}
