//! `receipts verify` on the database journal: every record's signature, and the chain —
//! `seq` from 0 without gaps or duplicates, each `prev_hash` the chain hash of the receipt
//! before it. (There is no head record: rows are only ever inserted, in transactions.)

use std::collections::HashSet;

use serde_json::Value;

use super::super::{Audit, Problem, Store, StoreError, problem_kind, strict};
use super::PgJournal;
use crate::kernel::receipt::{self, GENESIS_HASH};

fn problem(subject: &str, kind: &str, message: String) -> Problem {
    Problem {
        subject: subject.into(),
        kind: kind.into(),
        message,
    }
}

impl Store {
    pub(in crate::store) fn pg_verify_all(&self, pg: &PgJournal) -> Result<Audit, StoreError> {
        let key = self.key.clone();
        let mut audit = Audit {
            head_hash: GENESIS_HASH.into(),
            ..Audit::default()
        };
        let mut expected_seq = 0u64;
        let mut prev_hash = GENESIS_HASH.to_string();
        let mut seen_runs: HashSet<(String, String)> = HashSet::new();
        for (pos, body) in pg.rows_from(0)? {
            let value: Value = match strict::parse(body.as_bytes()) {
                Ok(v) => v,
                Err(e) => {
                    audit.problems.push(problem(
                        &format!("journal row {pos}"),
                        problem_kind::INVALID,
                        format!("journal row {pos} is not a valid record: {e}"),
                    ));
                    continue;
                }
            };
            let run_id = value
                .get("run_id")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            let kind = value
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("receipt")
                .to_string();
            let (verified, hash) = receipt::verify_and_hash(&value, &key);
            if !verified {
                audit.problems.push(problem(
                    &run_id,
                    problem_kind::BAD_SIGNATURE,
                    format!("{kind} record of run {run_id}: the signature does not verify"),
                ));
            }
            if kind == "step" {
                continue;
            }
            if !seen_runs.insert((kind.clone(), run_id.clone())) {
                audit.problems.push(problem(
                    &run_id,
                    problem_kind::INVALID,
                    format!("run {run_id} has more than one {kind} record"),
                ));
            }
            if kind != "receipt" {
                continue;
            }
            audit.receipts += 1;
            let seq = value.get("seq").and_then(Value::as_u64);
            match seq {
                Some(s) if s == expected_seq => {}
                Some(s) if s > expected_seq => audit.problems.push(problem(
                    &run_id,
                    problem_kind::GAP,
                    format!(
                        "receipts with seq {expected_seq}..{} are missing before run {run_id}",
                        s - 1
                    ),
                )),
                Some(s) => audit.problems.push(problem(
                    &run_id,
                    problem_kind::REORDERED,
                    format!("run {run_id} has seq {s}, expected {expected_seq}"),
                )),
                None => audit.problems.push(problem(
                    &run_id,
                    problem_kind::INVALID,
                    format!("receipt of run {run_id} has no seq"),
                )),
            }
            if value.get("prev_hash").and_then(Value::as_str) != Some(prev_hash.as_str()) {
                audit.problems.push(problem(
                    &run_id,
                    problem_kind::REORDERED,
                    format!("run {run_id}: prev_hash does not link to the receipt before it"),
                ));
            }
            expected_seq = seq.map_or(expected_seq + 1, |s| s + 1);
            prev_hash = hash.clone();
            audit.hashes.insert(hash.clone());
            audit.head_hash = hash;
        }
        Ok(audit)
    }
}
