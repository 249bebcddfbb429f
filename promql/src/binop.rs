//! Binary operators: scalar-scalar, vector-scalar and vector-vector with `on`/`ignoring`,
//! `group_left`/`group_right` and the set operators, as Prometheus's `VectorBinop` and
//! friends.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sightline_model::{Labels, METRIC_NAME_LABEL};

use crate::QueryError;
use crate::eval::{AddrPairMap, Assembler, Ev, Gather, H, Result, Sample, Series, notes};
use crate::histogram::{CounterResetHint, FloatHistogram};
use crate::labels::{Lbls, drop_metric_name, to_prom_string};
use crate::plan::{BinNode, BinOp, Card, Matching, VType};

/// Go's `math.Mod` semantics (sign of the dividend, NaN for x%0), which Rust's `%` shares.
fn go_mod(a: f64, b: f64) -> f64 {
    a % b
}

fn go_pow(a: f64, b: f64) -> f64 {
    // Go's math.Pow(1, NaN) and Pow(x, 0) are 1, as in Rust; Pow(-1, ±Inf) is 1 in both.
    a.powf(b)
}

fn arith(op: BinOp, l: f64, r: f64) -> f64 {
    match op {
        BinOp::Add => l + r,
        BinOp::Sub => l - r,
        BinOp::Mul => l * r,
        BinOp::Div => l / r,
        BinOp::Mod => go_mod(l, r),
        BinOp::Pow => go_pow(l, r),
        BinOp::Atan2 => l.atan2(r),
        _ => f64::NAN,
    }
}

fn compare(op: BinOp, l: f64, r: f64) -> bool {
    match op {
        BinOp::Eq => l == r,
        BinOp::Ne => l != r,
        BinOp::Gt => l > r,
        BinOp::Lt => l < r,
        BinOp::Ge => l >= r,
        BinOp::Le => l <= r,
        _ => false,
    }
}

/// The value of `l op r` between vector elements and whether to keep it (comparisons
/// filter, keeping the left value).
fn elem_binop(op: BinOp, l: f64, r: f64) -> (f64, bool) {
    if op.is_comparison() {
        (l, compare(op, l, r))
    } else {
        (arith(op, l, r), true)
    }
}

/// An annotation produced by an element operation.
enum ElemNote {
    Info(String),
    Warn(String),
}

/// `l op r` where either side may be a native histogram (Prometheus's `vectorElemBinop`):
/// the value, the histogram value, whether to keep the element, and the annotations.
/// `None` means the operation does not apply to these sample types (the element is
/// dropped).
fn elem_binop_h(
    op: BinOp,
    l: f64,
    r: f64,
    lh: Option<&H>,
    rh: Option<&H>,
    notes_out: &mut Vec<ElemNote>,
) -> Option<(f64, Option<H>, bool)> {
    let incompatible = |lt: &str, rt: &str, notes_out: &mut Vec<ElemNote>| {
        notes_out.push(ElemNote::Info(notes::incompatible_types(lt, op.text(), rt)));
        None
    };
    match (lh, rh) {
        (None, None) => {
            let (v, keep) = elem_binop(op, l, r);
            Some((v, None, keep))
        }
        (None, Some(h)) => match op {
            BinOp::Mul => {
                let mut x = (**h).clone();
                x.mul(l);
                Some((0.0, Some(Arc::new(x)), true))
            }
            _ => incompatible("float", "histogram", notes_out),
        },
        (Some(h), None) => match op {
            BinOp::Mul => {
                let mut x = (**h).clone();
                x.mul(r);
                Some((0.0, Some(Arc::new(x)), true))
            }
            BinOp::Div => {
                let mut x = (**h).clone();
                x.div(r);
                Some((0.0, Some(Arc::new(x)), true))
            }
            _ => incompatible("histogram", "float", notes_out),
        },
        (Some(a), Some(b)) => match op {
            BinOp::Add | BinOp::Sub => {
                let mut x: FloatHistogram = (**a).clone();
                let collision = matches!(
                    (a.counter_reset_hint, b.counter_reset_hint),
                    (
                        CounterResetHint::CounterReset,
                        CounterResetHint::NotCounterReset
                    ) | (
                        CounterResetHint::NotCounterReset,
                        CounterResetHint::CounterReset
                    )
                );
                let (res, what) = if op == BinOp::Add {
                    (x.add(b), "addition")
                } else {
                    (x.sub(b), "subtraction")
                };
                match res {
                    Err(_) => {
                        notes_out.push(ElemNote::Warn(notes::incompatible_layout(op.text())));
                        return None;
                    }
                    Ok(true) => notes_out.push(ElemNote::Info(notes::reconciled(what))),
                    Ok(false) => {}
                }
                if collision {
                    notes_out.push(ElemNote::Warn(notes::counter_reset_collision(what)));
                }
                if op == BinOp::Sub {
                    x.counter_reset_hint = CounterResetHint::Gauge;
                }
                Some((0.0, Some(Arc::new(x)), true))
            }
            BinOp::Eq => Some((0.0, Some(a.clone()), a.equals(b))),
            BinOp::Ne => Some((0.0, Some(a.clone()), !a.equals(b))),
            _ => incompatible("histogram", "histogram", notes_out),
        },
    }
}

fn scalar_binop(op: BinOp, l: f64, r: f64) -> f64 {
    if op.is_comparison() {
        if compare(op, l, r) { 1.0 } else { 0.0 }
    } else {
        arith(op, l, r)
    }
}

pub(crate) fn eval_binary(ev: &Ev, b: &BinNode) -> Result<Vec<Series>> {
    match (b.lhs_type, b.rhs_type) {
        (VType::Scalar, VType::Scalar) => {
            let l = ev.eval_matrix(&b.lhs)?;
            let r = ev.eval_matrix(&b.rhs)?;
            ev.range_eval(&[l, r], |t, v, out| {
                if let (Some(x), Some(y)) = (v[0].first(), v[1].first()) {
                    out.push(Sample {
                        labels: ev.cx.empty.clone(),
                        t,
                        f: scalar_binop(b.op, x.f, y.f),
                        h: None,
                        drop_name: false,
                    });
                }
                Ok(())
            })
        }
        (VType::Vector, VType::Scalar) | (VType::Scalar, VType::Vector) => {
            let swap = b.lhs_type == VType::Scalar;
            let l = ev.eval_matrix(&b.lhs)?;
            let r = ev.eval_matrix(&b.rhs)?;
            let (vi, si) = if swap { (1, 0) } else { (0, 1) };
            ev.range_eval(&[l, r], |_, v, out| {
                let Some(scalar) = v[si].first().map(|s| s.f) else {
                    return Ok(());
                };
                let mut elem_notes = Vec::new();
                for s in &v[vi] {
                    let (lf, rf) = if swap { (scalar, s.f) } else { (s.f, scalar) };
                    let (lh, rh) = if swap {
                        (None, s.h.as_ref())
                    } else {
                        (s.h.as_ref(), None)
                    };
                    let Some((mut value, mut hist, mut keep)) =
                        elem_binop_h(b.op, lf, rf, lh, rh, &mut elem_notes)
                    else {
                        continue;
                    };
                    // A comparison keeps the vector element's value, whichever side it is on.
                    if b.op.is_comparison() && swap {
                        value = rf;
                        hist = rh.cloned();
                    }
                    if b.return_bool {
                        value = if keep { 1.0 } else { 0.0 };
                        hist = None;
                        keep = true;
                    }
                    if keep {
                        out.push(Sample {
                            labels: s.labels.clone(),
                            t: s.t,
                            f: value,
                            h: hist,
                            drop_name: s.drop_name || b.op.changes_metric_schema() || b.return_bool,
                        });
                    }
                }
                report(ev, b, elem_notes);
                Ok(())
            })
        }
        (VType::Vector, VType::Vector) => vector_binop(ev, b),
        (l, r) => Err(QueryError::Execution(format!(
            "binary expression must contain only scalar and instant vector types, got {} and {}",
            l.documented(),
            r.documented()
        ))),
    }
}

fn report(ev: &Ev, b: &BinNode, elem_notes: Vec<ElemNote>) {
    for n in elem_notes {
        match n {
            ElemNote::Info(m) => ev.cx.info(m, b.pos),
            ElemNote::Warn(m) => ev.cx.warn(m, b.pos),
        }
    }
}

/// The labels two sides are matched on (`on`/`ignoring`), as a comparable key.
fn signature(l: &Labels, m: &Matching) -> Vec<u8> {
    let mut key = Vec::with_capacity(64);
    for (k, v) in l.iter() {
        let in_list = m.labels.iter().any(|n| n == k);
        let take = if m.on {
            in_list
        } else {
            !in_list && k != METRIC_NAME_LABEL
        };
        if take {
            key.extend_from_slice(k.as_bytes());
            key.push(0xff);
            key.extend_from_slice(v.as_bytes());
            key.push(0xff);
        }
    }
    key
}

/// The labels a matching group is identified by (Prometheus's `MatchLabels`).
fn match_labels(l: &Labels, m: &Matching) -> Labels {
    Labels::from_pairs(l.iter().filter(|(k, _)| {
        let in_list = m.labels.iter().any(|n| n == k);
        if m.on {
            in_list
        } else {
            !in_list && *k != METRIC_NAME_LABEL
        }
    }))
}

/// The labels of a binary operation's result (Prometheus's `resultMetric`).
fn result_metric(lhs: &Labels, rhs: &Labels, op: BinOp, m: &Matching) -> Labels {
    let base = if op.changes_metric_schema() {
        drop_metric_name(lhs)
    } else {
        lhs.clone()
    };
    let mut pairs: Vec<(String, String)> = base
        .into_pairs()
        .into_iter()
        .filter(|(k, _)| {
            if m.card != Card::OneToOne {
                return true;
            }
            let in_list = m.labels.iter().any(|n| n == k);
            if m.on { in_list } else { !in_list }
        })
        .collect();
    for name in &m.include {
        pairs.retain(|(k, _)| k != name);
        if let Some(v) = rhs.get(name) {
            pairs.push((name.clone(), v.to_string()));
        }
    }
    Labels::from_pairs(pairs)
}

fn vector_binop(ev: &Ev, b: &BinNode) -> Result<Vec<Series>> {
    let lhs = ev.eval_matrix(&b.lhs)?;
    let rhs = ev.eval_matrix(&b.rhs)?;
    let m = &b.matching;
    // Signatures are computed once per series, then referred to by ordinal at every step.
    let mut ordinals: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut sig_of = |s: &Series| {
        let key = signature(&s.labels, m);
        let n = ordinals.len();
        *ordinals.entry(key).or_insert(n)
    };
    let lsig: Vec<usize> = lhs.iter().map(&mut sig_of).collect();
    let rsig: Vec<usize> = rhs.iter().map(&mut sig_of).collect();
    let num_sigs = ordinals.len();
    let inputs = [lhs, rhs];
    let mut gather = Gather::new(&inputs);
    let mut asm = Assembler::default();
    let mut scratch = MatchScratch::new(num_sigs);
    let mut out = Vec::new();
    for t in ev.steps() {
        gather.at(t, &inputs);
        let (lv, rv) = (&gather.vectors[0], &gather.vectors[1]);
        let ls: Vec<usize> = gather.indexes[0].iter().map(|&i| lsig[i]).collect();
        let rs: Vec<usize> = gather.indexes[1].iter().map(|&i| rsig[i]).collect();
        out.clear();
        match b.op {
            BinOp::And => {
                if !lv.is_empty() && !rv.is_empty() {
                    let mut present = vec![false; num_sigs];
                    rs.iter().for_each(|&s| present[s] = true);
                    out.extend(
                        lv.iter()
                            .zip(&ls)
                            .filter(|(_, s)| present[**s])
                            .map(|(x, _)| x.clone()),
                    );
                }
            }
            BinOp::Or => {
                if lv.is_empty() {
                    out.extend(rv.iter().cloned());
                } else if rv.is_empty() {
                    out.extend(lv.iter().cloned());
                } else {
                    let mut present = vec![false; num_sigs];
                    ls.iter().for_each(|&s| present[s] = true);
                    out.extend(lv.iter().cloned());
                    out.extend(
                        rv.iter()
                            .zip(&rs)
                            .filter(|(_, s)| !present[**s])
                            .map(|(x, _)| x.clone()),
                    );
                }
            }
            BinOp::Unless => {
                if lv.is_empty() || rv.is_empty() {
                    out.extend(lv.iter().cloned());
                } else {
                    let mut present = vec![false; num_sigs];
                    rs.iter().for_each(|&s| present[s] = true);
                    out.extend(
                        lv.iter()
                            .zip(&ls)
                            .filter(|(_, s)| !present[**s])
                            .map(|(x, _)| x.clone()),
                    );
                }
            }
            _ => {
                let mut elem_notes = Vec::new();
                match_step(
                    b,
                    (lv, &ls),
                    (rv, &rs),
                    &mut scratch,
                    &mut out,
                    &mut elem_notes,
                )?;
                report(ev, b, elem_notes);
            }
        }
        if ev.is_instant() {
            return Ok(Assembler::instant(t, std::mem::take(&mut out)));
        }
        asm.add(t, &out, ev.cx)?;
    }
    Ok(asm.series)
}

/// Scratch space for vector matching, kept across steps and indexed by signature ordinal.
struct MatchScratch {
    /// For each signature, the index of its sample on the "one" side (`usize::MAX`: none).
    one_by_sig: Vec<usize>,
    /// Signatures matched at this step.
    matched: Vec<bool>,
    /// Result label sets (by content hash) per signature in many-to-one matching, to
    /// reject duplicates.
    groups: HashSet<(usize, u64), std::hash::BuildHasherDefault<crate::eval::AddrHasher>>,
    /// Signatures touched at this step, to reset.
    touched: Vec<usize>,
    /// Result labels (with their content hash) by the addresses of the two input label
    /// sets.
    cache: AddrPairMap<(Lbls, u64)>,
}

impl MatchScratch {
    fn new(num_sigs: usize) -> Self {
        Self {
            one_by_sig: vec![usize::MAX; num_sigs],
            matched: vec![false; num_sigs],
            groups: HashSet::default(),
            touched: Vec::new(),
            cache: AddrPairMap::default(),
        }
    }

    fn reset(&mut self) {
        for &s in &self.touched {
            self.one_by_sig[s] = usize::MAX;
            self.matched[s] = false;
        }
        self.touched.clear();
        self.groups.clear();
    }
}

/// One step of an arithmetic or comparison operator between two vectors.
fn match_step(
    b: &BinNode,
    (lhs, lsig): (&[Sample], &[usize]),
    (rhs, rsig): (&[Sample], &[usize]),
    scratch: &mut MatchScratch,
    out: &mut Vec<Sample>,
    elem_notes: &mut Vec<ElemNote>,
) -> Result<()> {
    let m = &b.matching;
    if (lhs.is_empty() && rhs.is_empty())
        || ((lhs.is_empty() || rhs.is_empty()) && m.fill_lhs.is_none() && m.fill_rhs.is_none())
    {
        return Ok(());
    }
    scratch.reset();
    // One-to-many is many-to-one with the sides swapped.
    let swapped = m.card == Card::OneToMany;
    let (many, one, many_sig, one_sig) = if swapped {
        (rhs, lhs, rsig, lsig)
    } else {
        (lhs, rhs, lsig, rsig)
    };
    // As in Prometheus, the fill values are not swapped with the sides: `fill_left` fills
    // the side evaluated as the left one after the swap (the "many" side).
    let (fill_many, fill_one) = (m.fill_lhs, m.fill_rhs);
    for (i, (s, &sig)) in one.iter().zip(one_sig).enumerate() {
        let prev = scratch.one_by_sig[sig];
        if prev != usize::MAX {
            let dup = &one[prev];
            let side = if swapped { "left" } else { "right" };
            let (a, c) = (to_prom_string(&s.labels), to_prom_string(&dup.labels));
            let (first, second) = if a <= c { (a, c) } else { (c, a) };
            return Err(QueryError::Execution(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation: [{first}, {second}];many-to-many matching not allowed: matching labels must be unique on one side",
                to_prom_string(&match_labels(&s.labels, m))
            )));
        }
        scratch.one_by_sig[sig] = i;
        scratch.touched.push(sig);
    }
    let mut op = Pairing {
        b,
        swapped,
        scratch,
        elem_notes,
    };
    for (ls, &sig) in many.iter().zip(many_sig) {
        match op.scratch.one_by_sig[sig] {
            usize::MAX => {
                if let Some(fill) = fill_one {
                    let rs = Sample {
                        labels: Arc::new(match_labels(&ls.labels, m)),
                        t: ls.t,
                        f: fill,
                        h: None,
                        drop_name: false,
                    };
                    op.scratch.touched.push(sig);
                    op.apply(ls, &rs, sig, out, true)?;
                }
            }
            i => op.apply(ls, &one[i], sig, out, false)?,
        }
    }
    if let Some(fill) = fill_many {
        let mut unmatched: Vec<(usize, usize)> = one_sig
            .iter()
            .enumerate()
            .filter(|(_, sig)| !op.scratch.matched[**sig])
            .map(|(i, sig)| (*sig, i))
            .collect();
        unmatched.sort_unstable();
        for (sig, i) in unmatched {
            let rs = &one[i];
            let ls = Sample {
                labels: Arc::new(match_labels(&rs.labels, m)),
                t: rs.t,
                f: fill,
                h: None,
                drop_name: false,
            };
            op.apply(&ls, rs, sig, out, true)?;
        }
    }
    Ok(())
}

/// Applies the operator to matched pairs, checking the match cardinality.
struct Pairing<'a> {
    b: &'a BinNode,
    swapped: bool,
    scratch: &'a mut MatchScratch,
    elem_notes: &'a mut Vec<ElemNote>,
}

impl Pairing<'_> {
    fn apply(
        &mut self,
        ls: &Sample,
        rs: &Sample,
        sig: usize,
        out: &mut Vec<Sample>,
        filled: bool,
    ) -> Result<()> {
        let (b, m) = (self.b, &self.b.matching);
        let (fl, fr) = if self.swapped {
            (rs.f, ls.f)
        } else {
            (ls.f, rs.f)
        };
        let (hl, hr) = if self.swapped {
            (rs.h.as_ref(), ls.h.as_ref())
        } else {
            (ls.h.as_ref(), rs.h.as_ref())
        };
        let Some((mut value, mut hist, keep)) = elem_binop_h(b.op, fl, fr, hl, hr, self.elem_notes)
        else {
            return Ok(());
        };
        if b.return_bool {
            value = if keep { 1.0 } else { 0.0 };
            hist = None;
        }
        // Input label sets live as long as the step loop, so their addresses identify them;
        // fill samples are built per step and are never cached.
        let make = || {
            let l = result_metric(&ls.labels, &rs.labels, b.op, m);
            let hash = {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                l.hash(&mut h);
                h.finish()
            };
            (Arc::new(l), hash)
        };
        let (metric, hash) = if filled {
            make()
        } else {
            let key = (
                Arc::as_ptr(&ls.labels) as usize,
                Arc::as_ptr(&rs.labels) as usize,
            );
            self.scratch.cache.entry(key).or_insert_with(make).clone()
        };
        match m.card {
            Card::OneToOne => {
                if std::mem::replace(&mut self.scratch.matched[sig], true) {
                    return Err(QueryError::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                    ));
                }
            }
            _ => {
                self.scratch.matched[sig] = true;
                if !self.scratch.groups.insert((sig, hash)) {
                    return Err(QueryError::Execution(
                        "multiple matches for labels: grouping labels must ensure unique matches"
                            .into(),
                    ));
                }
            }
        }
        if !keep && !b.return_bool {
            return Ok(());
        }
        out.push(Sample {
            labels: metric,
            t: ls.t,
            f: value,
            h: hist,
            drop_name: b.return_bool,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matching(on: bool, labels: &[&str], card: Card, include: &[&str]) -> Matching {
        Matching {
            card,
            on,
            labels: labels.iter().map(|s| s.to_string()).collect(),
            include: include.iter().map(|s| s.to_string()).collect(),
            fill_lhs: None,
            fill_rhs: None,
        }
    }

    #[test]
    fn result_labels_follow_matching() {
        let l = Labels::from_pairs([("__name__", "a"), ("job", "x"), ("instance", "1")]);
        let r = Labels::from_pairs([("__name__", "b"), ("job", "x"), ("owner", "team")]);
        let m = matching(true, &["job"], Card::OneToOne, &[]);
        assert_eq!(
            result_metric(&l, &r, BinOp::Add, &m),
            Labels::from_pairs([("job", "x")])
        );
        let m = matching(true, &["job"], Card::ManyToOne, &["owner"]);
        assert_eq!(
            result_metric(&l, &r, BinOp::Mul, &m),
            Labels::from_pairs([("job", "x"), ("instance", "1"), ("owner", "team")])
        );
        // Comparisons keep the name.
        let m = matching(false, &[], Card::OneToOne, &[]);
        assert_eq!(result_metric(&l, &r, BinOp::Gt, &m), l);
        assert_eq!(
            signature(&l, &m),
            signature(
                &Labels::from_pairs([("__name__", "z"), ("job", "x"), ("instance", "1")]),
                &m
            )
        );
    }

    #[test]
    fn scalar_ops() {
        assert_eq!(scalar_binop(BinOp::Gt, 2.0, 1.0), 1.0);
        assert!(scalar_binop(BinOp::Mod, 1.0, 0.0).is_nan());
        assert_eq!(scalar_binop(BinOp::Mod, -7.0, 2.0), -1.0);
    }
}
