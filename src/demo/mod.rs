//! `enact demo`: a BLOCK, a PASS, an APPROVAL and a ROLLBACK, driven through the real MCP server,
//! then a Slack post and its rollback (act 5) and a CRM act on HubSpot (act 6).
//!
//! The demo starts the in-process fake GitHub, fake Slack and fake HubSpot, a database (`$DATABASE_URL` or a throwaway
//! PostgreSQL; without one, act 4 runs on files), writes a config into a temp folder, then
//! starts `enact serve` as a child process and talks to it over stdio with an MCP client —
//! the path an agent's client takes. It checks its own story (the BLOCK changed nothing on
//! GitHub, the rollback restored every row) and exits 1 if anything went otherwise.

mod approval;
mod config;
mod crm;
mod database;
mod slack;
mod style;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::exit::{EXIT_FAILED, EXIT_OK};
use crate::fake_github::FakeGithub;
use crate::fake_hubspot::FakeHubspot;
use crate::mcp::client::{McpClient, Reply};
use config::{DSN_ENV, REPO, TOKEN_ENV, demo_config};
use database::DemoDb;
use style::Style;

/// How long one tool call may take before the demo gives up.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the demo; returns the exit code.
pub async fn run(keep: bool, no_postgres: bool) -> u8 {
    let style = Style::detect();
    let folder = match make_folder() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    let mut demo = Demo::new(style, folder.clone());
    let outcome = demo.run(no_postgres).await;
    let code = match outcome {
        Ok(()) => EXIT_OK,
        Err(e) => {
            println!("\n{} {e}", style.fail());
            println!(
                "  the server log is in {}",
                folder.join("server.log").display()
            );
            EXIT_FAILED
        }
    };
    if keep || code != EXIT_OK {
        println!(
            "\nKept the demo folder: {} (config, receipts, workspace, server.log)",
            folder.display()
        );
        if code == EXIT_OK {
            println!(
                "  try: {} receipts list --config {}",
                exe_name(),
                folder.join("enact.toml").display()
            );
        }
    } else if let Err(e) = std::fs::remove_dir_all(&folder) {
        eprintln!("warning: cannot remove {}: {e}", folder.display());
    }
    code
}

fn exe_name() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "enact".into())
}

/// A fresh temp folder with a random signing secret (as `enact init` writes it) and a
/// workspace.
fn make_folder() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("enact-demo-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("workspace/notes"))
        .map_err(|e| format!("cannot create the demo folder {}: {e}", dir.display()))?;
    crate::init::write_secret(&dir)?;
    Ok(dir)
}

struct Demo {
    s: Style,
    folder: PathBuf,
    /// The credentials the config names, for `enact serve`.
    env: Vec<(String, String)>,
}

/// The demo's own expectation failed: the story did not go as it must.
fn expect(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(format!("the demo expected {what}"))
    }
}

impl Demo {
    fn new(s: Style, folder: PathBuf) -> Demo {
        Demo {
            s,
            folder,
            env: Vec::new(),
        }
    }

    async fn run(&mut self, no_postgres: bool) -> Result<(), String> {
        let s = &self.s;
        println!(
            "{} — an AI agent's tool calls, through the action firewall",
            s.bold("Enact demo")
        );
        println!(
            "{}",
            s.dim("  Everything runs on this machine: a fake GitHub and a fake Slack on 127.0.0.1, a local PostgreSQL, a temp folder.")
        );

        s.heading("Setting up");
        let fake = FakeGithub::start()
            .await
            .map_err(|e| format!("cannot start the fake GitHub: {e}"))?;
        let token = format!("demo-{}", uuid::Uuid::new_v4().simple());
        fake.require_token(&token);
        let main_sha = fake.add_repo(REPO);
        println!(
            "  {} fake GitHub at {} with {REPO} (main at {})",
            s.ok(),
            fake.base_url(),
            short(&main_sha)
        );

        let db = if no_postgres {
            println!(
                "  {} no database (--no-postgres): act 4 runs on files",
                s.yellow("!")
            );
            None
        } else {
            match s
                .progress(
                    "starting PostgreSQL and seeding a customers table",
                    DemoDb::open(),
                )
                .await
            {
                Ok(db) => {
                    println!(
                        "  {} {} with `{}` ({} rows)",
                        s.ok(),
                        db.origin,
                        db.table,
                        database::ROWS
                    );
                    Some(db)
                }
                Err(e) => {
                    println!("  {} no PostgreSQL: {e}", s.yellow("!"));
                    println!(
                        "    act 4 runs the same story on files instead (install PostgreSQL with `apt-get install -y postgresql`, or set DATABASE_URL)"
                    );
                    None
                }
            }
        };

        let hubspot = FakeHubspot::start()
            .await
            .map_err(|e| format!("cannot start the fake HubSpot: {e}"))?;
        let hubspot_token = format!("demo-{}", uuid::Uuid::new_v4().simple());
        hubspot.require_token(&hubspot_token);
        hubspot.add_contact(crm::SEEDED_EMAIL, &[("firstname", "Grace")]);
        println!(
            "  {} fake HubSpot at {} with contact {}",
            s.ok(),
            hubspot.base_url(),
            crm::SEEDED_EMAIL
        );
        let slack_token = format!("xoxb-demo-{}", uuid::Uuid::new_v4().simple());
        let fake_slack = slack::start(&slack_token).await?;
        println!(
            "  {} fake Slack at {} with #deploys ({})",
            s.ok(),
            fake_slack.base_url(),
            slack::CHANNEL
        );
        let mut config = demo_config(fake.base_url(), db.as_ref().map(|d| d.table.as_str()));
        config.push_str(&slack::config(fake_slack.base_url()));
        config.push_str(&crm::crm_config(hubspot.base_url()));
        let config_path = self.folder.join("enact.toml");
        std::fs::write(&config_path, config)
            .map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;
        if db.is_none() {
            self.seed_notes()?;
        }
        println!(
            "  {} demo folder {} (enact.toml, workspace/, receipts/)",
            s.ok(),
            self.folder.display()
        );

        self.env.push((TOKEN_ENV.into(), token.clone()));
        self.env
            .push((crm::HUBSPOT_TOKEN_ENV.into(), hubspot_token.clone()));
        self.env.push((slack::SLACK_TOKEN_ENV.into(), slack_token));
        if let Some(db) = &db {
            self.env.push((DSN_ENV.into(), db.dsn.clone()));
        }
        let client = s
            .progress(
                "starting `enact serve` as an MCP server over stdio",
                self.start_server(),
            )
            .await?;
        let tools = client.tool_names().await?;
        println!(
            "  {} connected to {} as an MCP client; tools: {}",
            s.ok(),
            client.server(),
            tools.join(", ")
        );

        let result = async {
            self.act_block(&client, &fake, &main_sha).await?;
            self.act_pass(&client, &fake).await?;
            self.act_approval(&client, &fake).await?;
            match &db {
                Some(db) => self.act_rollback_rows(&client, db).await?,
                None => self.act_rollback_files(&client).await?,
            }
            self.act_slack(&client, &fake_slack).await?;
            self.act_crm(&client, &hubspot).await
        }
        .await;
        client.close().await;
        if let Some(db) = &db {
            db.clean_up().await;
        }
        result?;
        self.verify_receipts().await
    }

    async fn start_server(&self) -> Result<McpClient, String> {
        let log_path = self.folder.join("server.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find the enact binary: {e}"))?;
        let mut cmd = tokio::process::Command::new(exe);
        cmd.arg("serve")
            .arg("--config")
            .arg(self.folder.join("enact.toml"))
            .env_remove("ENACT_CONFIG")
            .env_remove("ENACT_ACTOR_EMAIL")
            .env_remove("ENACT_ACTOR_ROLE")
            .env("RUST_LOG", "info")
            .kill_on_drop(true);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        McpClient::spawn(cmd, log).await
    }

    /// Calls a tool and prints the call and what came back.
    async fn call(&self, client: &McpClient, tool: &str, args: Value) -> Result<Reply, String> {
        let s = &self.s;
        println!(
            "  {} {} {}",
            s.cyan("→"),
            s.bold(tool),
            s.dim(&compact(&args))
        );
        let reply = tokio::time::timeout(CALL_TIMEOUT, client.call(tool, &args))
            .await
            .map_err(|_| format!("`{tool}` did not answer within {CALL_TIMEOUT:?}"))??;
        self.show(&reply);
        Ok(reply)
    }

    fn show(&self, reply: &Reply) {
        let s = &self.s;
        let r = &reply.structured;
        let summary = reply.texts.first().map(String::as_str).unwrap_or("");
        // The summary starts with its decision word ("BLOCK: …"): show that word in colour.
        match summary.split_once(": ") {
            Some((word, rest)) => println!("  {} {rest}", s.decision(word)),
            None => println!("  {summary}"),
        }
        for p in r["policy_results"].as_array().into_iter().flatten() {
            let mark = if p["passed"] == json!(true) {
                s.ok()
            } else if p["approval"] == json!(true) {
                // Held for a human, not blocked.
                s.yellow("?")
            } else {
                s.fail()
            };
            println!(
                "      {mark} {:<24} {}",
                p["policy"].as_str().unwrap_or("?"),
                s.dim(p["reason"].as_str().unwrap_or(""))
            );
        }
        for a in r["actions"].as_array().into_iter().flatten() {
            let mark = if a["success"] == json!(true) {
                s.ok()
            } else {
                s.fail()
            };
            println!(
                "      {mark} {:<24} {}",
                format!(
                    "{}.{}",
                    a["system"].as_str().unwrap_or("?"),
                    a["action"].as_str().unwrap_or("?")
                ),
                s.dim(&compact(&a["output"]))
            );
        }
        if let Some(id) = r["run_id"].as_str() {
            println!("      receipt {}", s.cyan(id));
        }
    }

    async fn act_block(
        &self,
        client: &McpClient,
        fake: &FakeGithub,
        main_sha: &str,
    ) -> Result<(), String> {
        let s = &self.s;
        s.heading("Act 1 — BLOCK: the agent tries to push straight to main");
        let writes_before = write_requests(fake);
        let reply = self
            .call(
                client,
                "open_pr",
                json!({"repo": REPO, "branch": "main", "title": "Hotfix the README",
                       "files": {"README.md": "# app\n\nhotfixed straight on main\n"}}),
            )
            .await?;
        expect(
            reply.is_error && reply.structured["decision"] == "BLOCK",
            "act 1 to be blocked",
        )?;
        let writes = write_requests(fake) - writes_before;
        let still = fake.branch_sha(REPO, "main").unwrap_or_default();
        expect(writes == 0 && still == main_sha, "GitHub to be untouched")?;
        println!(
            "  {} GitHub received {writes} write requests; main is still at {}",
            s.ok(),
            short(&still)
        );
        Ok(())
    }

    async fn act_pass(&self, client: &McpClient, fake: &FakeGithub) -> Result<(), String> {
        let s = &self.s;
        s.heading("Act 2 — PASS: the agent opens a pull request from an agent/ branch");
        let reply = self
            .call(
                client,
                "open_pr",
                json!({"repo": REPO, "branch": "agent/fix-readme-typo",
                       "title": "Fix a typo in the README",
                       "body": "Spotted by the agent.",
                       "files": {"README.md": "# app\n\nA small demo repository.\n"}}),
            )
            .await?;
        expect(
            !reply.is_error && reply.structured["success"] == json!(true),
            "act 2 to pass",
        )?;
        let pr = fake.pulls(REPO).into_iter().last();
        let branch = fake.branch_sha(REPO, "agent/fix-readme-typo");
        expect(
            pr.is_some() && branch.is_some(),
            "a branch and a PR on GitHub",
        )?;
        if let (Some(pr), Some(branch)) = (pr, branch) {
            println!(
                "  {} GitHub now has branch agent/fix-readme-typo at {} and PR #{} \"{}\" ({} → {})",
                s.ok(),
                short(&branch),
                pr.number,
                pr.title,
                pr.head,
                pr.base
            );
        }
        Ok(())
    }

    async fn rollback(&self, client: &McpClient, run_id: &str) -> Result<Reply, String> {
        let reply = self
            .call(client, "enact_rollback", json!({ "run_id": run_id }))
            .await?;
        expect(
            !reply.is_error && reply.structured["decision"] == "PASS",
            "the rollback to pass",
        )?;
        Ok(reply)
    }

    async fn act_rollback_rows(&self, client: &McpClient, db: &DemoDb) -> Result<(), String> {
        let s = &self.s;
        s.heading("Act 4 — ROLLBACK: the agent wipes the customers table; one call restores it");
        let before = db.dump().await?;
        if let Some(row) = DemoDb::sample(&before) {
            println!(
                "  {} `{}` has {} rows, e.g. {}",
                s.dim("·"),
                db.table,
                before.len(),
                s.dim(&compact(&row))
            );
        }
        let reply = self
            .call(client, "wipe_customers", json!({"where": {"active": true}}))
            .await?;
        expect(
            !reply.is_error,
            "the wipe to run (it is the agent's mistake)",
        )?;
        let during = db.dump().await?;
        println!(
            "  {} `{}` now has {} rows",
            s.red("!"),
            db.table,
            during.len()
        );
        let run_id = reply.structured["run_id"].as_str().unwrap_or_default();
        self.rollback(client, run_id).await?;
        let after = db.dump().await?;
        expect(
            after == before,
            "the table to be identical to before the wipe",
        )?;
        println!(
            "  {} `{}` has {} rows again: a full dump (ids, numerics, timestamps, jsonb) is byte-identical to before",
            s.ok(),
            db.table,
            after.len()
        );
        Ok(())
    }

    fn notes(&self) -> Vec<(PathBuf, String)> {
        let dir = self.folder.join("workspace/notes");
        ["plan.md", "todo.md", "ideas.md"]
            .iter()
            .map(|n| {
                (
                    dir.join(n),
                    format!("# {n}\n\nWritten before the agent arrived.\n"),
                )
            })
            .collect()
    }

    fn seed_notes(&self) -> Result<(), String> {
        for (path, text) in self.notes() {
            std::fs::write(&path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(())
    }

    async fn act_rollback_files(&self, client: &McpClient) -> Result<(), String> {
        let s = &self.s;
        s.heading("Act 4 — ROLLBACK: the agent deletes the notes; one call restores them");
        let reply = self.call(client, "clear_notes", json!({})).await?;
        expect(
            !reply.is_error,
            "the deletion to run (it is the agent's mistake)",
        )?;
        let left = self.notes().iter().filter(|(p, _)| p.exists()).count();
        println!(
            "  {} workspace/notes now holds {left} of 3 notes",
            s.red("!")
        );
        let run_id = reply.structured["run_id"].as_str().unwrap_or_default();
        self.rollback(client, run_id).await?;
        let restored = self
            .notes()
            .iter()
            .all(|(p, text)| std::fs::read_to_string(p).ok().as_deref() == Some(text.as_str()));
        expect(restored, "every note to be restored exactly")?;
        println!("  {} all 3 notes are back, byte for byte", s.ok());
        Ok(())
    }

    async fn verify_receipts(&self) -> Result<(), String> {
        let s = &self.s;
        s.heading("Receipts — enact receipts verify");
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find the enact binary: {e}"))?;
        // Reading receipts needs no system credential: the operator's audit path.
        let out = tokio::process::Command::new(exe)
            .args(["receipts", "verify", "--config"])
            .arg(self.folder.join("enact.toml"))
            .env_remove("ENACT_CONFIG")
            .output()
            .await
            .map_err(|e| format!("cannot run `enact receipts verify`: {e}"))?;
        for line in String::from_utf8_lossy(&out.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
        {
            println!("  {line}");
        }
        expect(out.status.success(), "every receipt to verify")?;
        println!(
            "  {} every call above, blocked or not, left an HMAC-signed receipt in one hash chain",
            s.ok()
        );
        Ok(())
    }
}

/// Write requests (anything but GET) the fake GitHub has answered.
fn write_requests(fake: &FakeGithub) -> usize {
    fake.requests().iter().filter(|r| r.method != "GET").count()
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// One-line JSON, cut to a readable length.
fn compact(v: &Value) -> String {
    let text = v.to_string();
    const MAX: usize = 110;
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        text
    }
}
