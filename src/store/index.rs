//! The in-memory index of the journal (SPEC §5.6): built once when the store is opened, then
//! kept current by reading the journal's tail (this process's appends and other processes'
//! alike). Only records whose signature verified when they were read enter it, so listings,
//! rate counts and rollback look-ups never trust anything unsigned and never re-read old
//! records.
//!
//! Rate counts are answered from sorted timestamp series per (actor, workflow), and per
//! argument value, so counting costs a few binary searches whatever the history.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::DateTime;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::segment::{Pos, Span};
use crate::kernel::jcs::canonicalize;
use crate::kernel::receipt::GENESIS_HASH;

/// A receipt as the index knows it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub run_id: String,
    pub seq: u64,
    pub workflow: Arc<str>,
    pub actor_email: Arc<str>,
    pub decision: Arc<str>,
    pub timestamp: Box<str>,
    pub rollback_of: Option<String>,
    pub span: Span,
    /// Whether its signature verified. Unverified receipts are found by run id (so `show`
    /// and rollback can say the signature fails) and keep the chain's position, but never
    /// count, list or stop a rollback.
    pub verified: bool,
}

/// A run with an intent and no receipt yet.
#[derive(Debug, Clone)]
pub(crate) struct Open {
    pub owner: String,
    pub intent: Span,
    pub steps: Vec<Span>,
    pub actor_email: Arc<str>,
    pub workflow: Arc<str>,
    pub micros: i64,
    pub args: Vec<(Arc<str>, [u8; 32])>,
    pub counts: bool,
    /// The contact email of each planned `create_task` (`limit_tasks_per_contact`).
    pub tasks: Vec<Arc<str>>,
}

/// Timestamps (µs since the epoch), sorted.
#[derive(Debug, Default)]
struct Series(Vec<i64>);

impl Series {
    fn insert(&mut self, t: i64) {
        let at = self.0.partition_point(|x| *x <= t);
        self.0.insert(at, t);
    }
    /// How many are strictly after `from`.
    fn after(&self, from: i64) -> u64 {
        (self.0.len() - self.0.partition_point(|x| *x <= from)) as u64
    }
}

#[derive(Debug, Default)]
struct Rates {
    all: Series,
    per: HashMap<(Arc<str>, [u8; 32]), Series>,
    /// Runs that have the argument at all (any value): the runs without it count as `null`.
    present: HashMap<Arc<str>, Series>,
}

/// Task timestamps per contact email (`limit_tasks_per_contact`).
type TasksByEmail = HashMap<Arc<str>, Series>;

/// The index.
#[derive(Debug, Default)]
pub(crate) struct Index {
    pub entries: Vec<Entry>,
    by_run: HashMap<String, usize>,
    rollbacks: HashMap<String, Vec<usize>>,
    pub open: HashMap<String, Open>,
    rates: HashMap<(Arc<str>, Arc<str>), Rates>,
    /// Tasks created (`create_task` with `already_done: false`) per (actor, workflow), then per
    /// contact email: the run's timestamps.
    tasks: HashMap<(Arc<str>, Arc<str>), TasksByEmail>,
    strings: HashSet<Arc<str>>,
    /// How far the journal has been read.
    pub tail: Pos,
    /// The receipt with the highest seq: (seq, chain hash).
    pub newest: Option<(u64, String)>,
    /// Receipts whose signature does not verify (rate counts then fail closed).
    pub unverified_receipts: usize,
    /// Set under the lock before an append: the head's hash when it disagrees with the
    /// newest receipt at the same seq.
    pub link_override: Option<String>,
    /// Records that could not be indexed (bad line, bad signature, duplicate): where and why.
    pub skipped: Vec<(Span, String)>,
    /// The last complete line read (or appended) and the SHA-256 of its bytes, so a journal
    /// cut or rewritten under a running store is noticed at the next read of the tail.
    pub last: Option<(Span, [u8; 32])>,
    /// Approval requests, answers, uses and grants (SPEC §9).
    pub approvals: super::approvals::Approvals,
    /// How many times the index was rebuilt from the start (positions of an earlier
    /// generation say nothing about the journal as it is now).
    pub generation: u64,
}

/// The digest an argument value is compared by (JCS, so `5` equals `5.0`).
pub(crate) fn value_digest(v: &Value) -> [u8; 32] {
    Sha256::digest(canonicalize(v)).into()
}

fn micros(timestamp: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(timestamp)
        .ok()
        .map(|t| t.timestamp_micros())
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

impl Index {
    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(found) = self.strings.get(s) {
            return found.clone();
        }
        let arc: Arc<str> = Arc::from(s);
        self.strings.insert(arc.clone());
        arc
    }

    /// The arguments a run is counted by for `per` (its inputs after defaults, else payload).
    fn args_of(&mut self, v: &Value) -> Vec<(Arc<str>, [u8; 32])> {
        let source = v
            .get("inputs")
            .filter(|i| i.is_object())
            .or(v.get("payload"));
        let Some(Value::Object(map)) = source else {
            return Vec::new();
        };
        let pairs: Vec<(String, [u8; 32])> = map
            .iter()
            .map(|(k, x)| (k.clone(), value_digest(x)))
            .collect();
        pairs
            .into_iter()
            .map(|(k, d)| (self.intern(&k), d))
            .collect()
    }

    /// The contact emails of an intent's planned `create_task` steps.
    fn planned_tasks(&mut self, v: &Value) -> Vec<Arc<str>> {
        let emails: Vec<String> = v
            .get("plan")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|s| s.get("action").and_then(Value::as_str) == Some("create_task"))
            .filter_map(|s| s.pointer("/args/contact_email").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        emails.iter().map(|e| self.intern(e)).collect()
    }

    /// The contact emails of a receipt's tasks that were created (succeeded, `already_done:
    /// false`), keyed by `output.contact_email`.
    fn created_tasks(&mut self, v: &Value) -> Vec<Arc<str>> {
        let emails: Vec<String> = v
            .get("actions_taken")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|a| {
                a.get("action").and_then(Value::as_str) == Some("create_task")
                    && a.get("success").and_then(Value::as_bool) == Some(true)
                    && a.pointer("/output/already_done") == Some(&Value::Bool(false))
            })
            .filter_map(|a| a.pointer("/output/contact_email").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        emails.iter().map(|e| self.intern(e)).collect()
    }

    /// Tasks `actor` created for `email` in `workflows` (all when `None`) in runs stamped after
    /// `from` (µs): from PASS receipts (rollbacks excluded; a run rolled back later still
    /// counts) and the planned tasks of open intents.
    pub fn count_tasks(
        &self,
        actor: &str,
        workflows: Option<&[String]>,
        email: &str,
        from: i64,
    ) -> u64 {
        let in_scope = |w: &str| workflows.is_none_or(|ws| ws.iter().any(|x| x == w));
        let mut n = 0;
        for ((a, w), per_email) in &self.tasks {
            if &**a == actor && in_scope(w) {
                n += per_email.get(email).map_or(0, |s| s.after(from));
            }
        }
        for open in self.open.values() {
            if open.counts
                && &*open.actor_email == actor
                && in_scope(&open.workflow)
                && open.micros > from
            {
                n += open.tasks.iter().filter(|e| &***e == email).count() as u64;
            }
        }
        n
    }

    /// Adds one record. `hash` is its chain hash (receipts only). An unverified intent or
    /// step is not indexed; an unverified receipt only as described on [`Entry::verified`].
    pub fn apply(&mut self, span: Span, v: &Value, hash: String, verified: bool) {
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or("receipt");
        let run_id = str_field(v, "run_id").to_owned();
        if !verified && kind != "receipt" {
            self.skipped.push((
                span,
                format!("{kind} record of run `{run_id}` whose signature does not verify"),
            ));
            return;
        }
        match kind {
            "intent" => {
                if self.by_run.contains_key(&run_id) || self.open.contains_key(&run_id) {
                    self.skipped.push((
                        span,
                        format!("intent for run `{run_id}` is not its first record"),
                    ));
                    return;
                }
                let actor_email = self.intern(str_field(v, "actor_email"));
                let workflow = self.intern(str_field(v, "workflow"));
                let args = self.args_of(v);
                let counts = v.get("rollback_of").is_none_or(Value::is_null);
                let tasks = self.planned_tasks(v);
                self.approvals.apply(&run_id, v);
                self.open.insert(
                    run_id,
                    Open {
                        owner: str_field(v, "owner").to_owned(),
                        intent: span,
                        steps: Vec::new(),
                        actor_email,
                        workflow,
                        micros: micros(str_field(v, "timestamp")).unwrap_or(i64::MAX),
                        args,
                        counts,
                        tasks,
                    },
                );
            }
            "step" => match self.open.get_mut(&run_id) {
                Some(open) => open.steps.push(span),
                None => self.skipped.push((
                    span,
                    format!("step of run `{run_id}` without an open intent"),
                )),
            },
            _ => self.apply_receipt(span, v, run_id, hash, verified),
        }
    }

    fn apply_receipt(
        &mut self,
        span: Span,
        v: &Value,
        run_id: String,
        hash: String,
        verified: bool,
    ) {
        if self.by_run.contains_key(&run_id) {
            self.skipped
                .push((span, format!("a second receipt for run `{run_id}`")));
            return;
        }
        let Some(seq) = v.get("seq").and_then(Value::as_u64) else {
            self.skipped
                .push((span, format!("receipt `{run_id}` has no seq")));
            return;
        };
        if verified {
            self.open.remove(&run_id);
            self.approvals.apply(&run_id, v);
        } else {
            self.unverified_receipts += 1;
        }
        let decision = self.intern(str_field(v, "decision"));
        let workflow = self.intern(str_field(v, "workflow"));
        let actor_email = self.intern(str_field(v, "actor_email"));
        let rollback_of = v
            .get("rollback_of")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let timestamp = str_field(v, "timestamp");
        if verified && &*decision == "PASS" && rollback_of.is_none() {
            let args = self.args_of(v);
            if let Some(t) = micros(timestamp) {
                let rates = self
                    .rates
                    .entry((actor_email.clone(), workflow.clone()))
                    .or_default();
                rates.all.insert(t);
                for (name, digest) in args {
                    rates.present.entry(name.clone()).or_default().insert(t);
                    rates.per.entry((name, digest)).or_default().insert(t);
                }
            }
        }
        if verified
            && &*decision == "PASS"
            && rollback_of.is_none()
            && let Some(t) = micros(timestamp)
        {
            for email in self.created_tasks(v) {
                self.tasks
                    .entry((actor_email.clone(), workflow.clone()))
                    .or_default()
                    .entry(email)
                    .or_default()
                    .insert(t);
            }
        }
        if self.newest.as_ref().is_none_or(|(s, _)| seq > *s) {
            self.newest = Some((seq, hash.clone()));
        }
        let at = self.entries.len();
        if verified && let Some(original) = &rollback_of {
            self.rollbacks.entry(original.clone()).or_default().push(at);
        }
        self.by_run.insert(run_id.clone(), at);
        self.entries.push(Entry {
            run_id,
            seq,
            workflow,
            actor_email,
            decision,
            timestamp: timestamp.into(),
            rollback_of,
            span,
            verified,
        });
    }

    pub fn get(&self, run_id: &str) -> Option<&Entry> {
        self.by_run.get(run_id).and_then(|i| self.entries.get(*i))
    }

    pub fn has_run(&self, run_id: &str) -> bool {
        self.by_run.contains_key(run_id) || self.open.contains_key(run_id)
    }

    pub fn rollbacks_of(&self, original: &str) -> Vec<&Entry> {
        self.rollbacks
            .get(original)
            .map(|ix| ix.iter().filter_map(|i| self.entries.get(*i)).collect())
            .unwrap_or_default()
    }

    /// The seq and prev_hash the next receipt gets. When the head record names the newest
    /// receipt with another hash (the receipt was edited in place), the chain continues from
    /// the head's hash, so the edit stays visible to `verify` as a broken link.
    pub fn next_link(&self) -> (u64, String) {
        match &self.newest {
            Some((seq, hash)) => (
                seq + 1,
                self.link_override.clone().unwrap_or_else(|| hash.clone()),
            ),
            None => (0, GENESIS_HASH.to_owned()),
        }
    }

    /// PASS runs (receipts and open intents, rollbacks excluded) of `actor` in `workflows`
    /// (all when `None`) stamped after `from` (µs), only those whose argument `per.0` has the
    /// digest `per.1` when given. A run without the argument counts as holding `null` (the
    /// value the gate compares a missing argument by).
    pub fn count(
        &self,
        actor: &str,
        workflows: Option<&[String]>,
        per: Option<(&str, [u8; 32])>,
        from: i64,
    ) -> u64 {
        let in_scope = |w: &str| workflows.is_none_or(|ws| ws.iter().any(|x| x == w));
        let null = value_digest(&Value::Null);
        let mut n = 0;
        for ((a, w), rates) in &self.rates {
            if &**a != actor || !in_scope(w) {
                continue;
            }
            n += match per {
                None => rates.all.after(from),
                Some((arg, digest)) => {
                    let arg: Arc<str> = Arc::from(arg);
                    let equal = rates
                        .per
                        .get(&(arg.clone(), digest))
                        .map_or(0, |s| s.after(from));
                    let absent = if digest == null {
                        let with = rates.present.get(&arg).map_or(0, |s| s.after(from));
                        rates.all.after(from).saturating_sub(with)
                    } else {
                        0
                    };
                    equal + absent
                }
            };
        }
        for open in self.open.values() {
            if !open.counts || &*open.actor_email != actor || !in_scope(&open.workflow) {
                continue;
            }
            if open.micros <= from {
                continue;
            }
            let matches =
                per.is_none_or(
                    |(arg, digest)| match open.args.iter().find(|(k, _)| &**k == arg) {
                        Some((_, d)) => *d == digest,
                        None => digest == null,
                    },
                );
            if matches {
                n += 1;
            }
        }
        n
    }
}
