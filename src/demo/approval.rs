//! The demo's approval act (SPEC §9): the agent asks to merge the pull request it opened;
//! Enact holds the call; a human approves exactly that call with `enact approvals approve`
//! (the demo runs the very command it prints); the agent resumes and the merge happens, with
//! the approver's name signed into the chain.

use serde_json::json;

use super::config::REPO;
use super::{CALL_TIMEOUT, Demo, expect};
use crate::fake_github::FakeGithub;
use crate::mcp::client::McpClient;

/// Who approves in the demo.
const APPROVER: &str = "lead@example.com";

impl Demo {
    pub(super) async fn act_approval(
        &self,
        client: &McpClient,
        fake: &FakeGithub,
    ) -> Result<(), String> {
        let s = &self.s;
        s.heading(
            "Act 3 — APPROVAL: the agent asks to merge its PR; a human approves exactly that call",
        );
        let pr = fake
            .pulls(REPO)
            .into_iter()
            .find(|p| p.state == "open")
            .ok_or("the demo expected the PR of act 2 to be open")?;
        let held = self
            .call(client, "merge_pr", json!({"pr_number": pr.number}))
            .await?;
        let id = held.structured["run_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        expect(
            held.is_error && held.structured["decision"] == "APPROVAL_REQUIRED",
            "the merge to wait for approval",
        )?;
        let unmerged = fake.pulls(REPO).iter().all(|p| !p.merged);
        expect(unmerged, "nothing merged while the call waits")?;
        println!(
            "  {} nothing ran; a PENDING receipt binds the exact plan",
            s.ok()
        );

        let config = self.folder.join("enact.toml");
        println!(
            "  {} the human reviews it and types:\n      {}",
            s.cyan("$"),
            s.bold(&format!(
                "enact approvals approve {id} --as {APPROVER} --reason \"reviewed\" --config {}",
                config.display()
            ))
        );
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find the enact binary: {e}"))?;
        let out = tokio::time::timeout(
            CALL_TIMEOUT,
            tokio::process::Command::new(exe)
                .args([
                    "approvals",
                    "approve",
                    &id,
                    "--as",
                    APPROVER,
                    "--reason",
                    "reviewed",
                ])
                .arg("--config")
                .arg(&config)
                .env_remove("ENACT_CONFIG")
                .env("RUST_LOG", "warn")
                .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .output(),
        )
        .await
        .map_err(|_| "`enact approvals approve` did not finish".to_string())?
        .map_err(|e| format!("cannot run `enact approvals approve`: {e}"))?;
        for line in String::from_utf8_lossy(&out.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
        {
            println!("      {}", s.dim(line));
        }
        expect(out.status.success(), "the approval to be recorded")?;

        let done = self
            .call(client, "enact_resume", json!({ "run_id": id }))
            .await?;
        expect(
            !done.is_error && done.structured["success"] == json!(true),
            "the approved merge to run",
        )?;
        let merged = fake
            .pulls(REPO)
            .into_iter()
            .find(|p| p.number == pr.number)
            .is_some_and(|p| p.merged);
        expect(merged, "the PR to be merged on GitHub")?;
        println!(
            "  {} PR #{} is merged; its receipt says it resumes {} and was approved by {} via {}",
            s.ok(),
            pr.number,
            s.cyan(&id),
            done.structured["approval"]["decided_by"]
                .as_str()
                .unwrap_or("?"),
            done.structured["approval"]["via"].as_str().unwrap_or("?"),
        );
        Ok(())
    }
}
