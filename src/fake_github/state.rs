//! The fake's data: repositories with git objects (blobs, flat trees, commits with parents),
//! branches, pull requests and issues, plus the request log and injected responses. Pure: no
//! I/O here, so every GitHub rule the connector depends on (fast-forward checks, "No commits
//! between", numbers shared by issues and pull requests) lives in one place.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// A tree: full path → blob sha (flat; the fake has no sub-tree objects).
pub(crate) type Tree = BTreeMap<String, String>;

#[derive(Default)]
pub(crate) struct State {
    /// Keyed by lower-case `owner/name` (GitHub names are case-insensitive).
    pub repos: BTreeMap<String, Repo>,
    pub requests: Vec<super::RequestRecord>,
    pub injections: VecDeque<Injection>,
    pub required_token: Option<String>,
    next_repo_id: u64,
}

/// A canned response for the next request with this method and path.
pub(crate) struct Injection {
    pub method: String,
    pub path: String,
    pub response: super::Injected,
}

pub(crate) struct Commit {
    pub message: String,
    pub tree: String,
    pub parents: Vec<String>,
    pub date: String,
}

pub(crate) struct Pull {
    pub number: u64,
    pub title: String,
    pub body: Option<String>,
    pub head: String,
    pub base: String,
    /// The head sha last seen (kept once the head branch is gone).
    pub head_sha: String,
    pub open: bool,
    pub merged: bool,
    pub merge_commit_sha: Option<String>,
    pub mergeable: bool,
    pub created_at: String,
    pub updated_at: String,
    pub closed_at: Option<String>,
    pub merged_at: Option<String>,
}

pub(crate) struct Issue {
    pub number: u64,
    pub title: String,
    pub body: Option<String>,
    pub open: bool,
    pub state_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub closed_at: Option<String>,
}

pub(crate) struct Repo {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub default_branch: String,
    pub branches: BTreeMap<String, String>,
    pub commits: HashMap<String, Commit>,
    pub trees: HashMap<String, Tree>,
    pub blobs: HashMap<String, String>,
    pub pulls: BTreeMap<u64, Pull>,
    pub issues: BTreeMap<u64, Issue>,
    /// Issues and pull requests share one sequence, as on GitHub.
    next_number: u64,
    commit_count: u64,
}

/// Hex SHA-256 cut to git's 40 characters: deterministic, content-derived object names.
fn object_sha(kind: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    for p in parts {
        h.update([0u8]);
        h.update(p.as_bytes());
    }
    let mut hex = hex::encode(h.finalize());
    hex.truncate(40);
    hex
}

/// Now, as GitHub writes timestamps.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl State {
    /// Adds `owner/name` with branch `main` holding one commit (a README); returns that
    /// commit's sha. An existing repo is left alone and its default branch's sha returned.
    pub fn add_repo(&mut self, full_name: &str) -> String {
        let key = full_name.to_ascii_lowercase();
        if let Some(repo) = self.repos.get(&key) {
            return repo
                .branches
                .get(&repo.default_branch)
                .cloned()
                .unwrap_or_default();
        }
        let (owner, name) = full_name.split_once('/').unwrap_or(("owner", full_name));
        self.next_repo_id += 1;
        let mut repo = Repo {
            id: self.next_repo_id,
            owner: owner.to_string(),
            name: name.to_string(),
            default_branch: "main".into(),
            branches: BTreeMap::new(),
            commits: HashMap::new(),
            trees: HashMap::new(),
            blobs: HashMap::new(),
            pulls: BTreeMap::new(),
            issues: BTreeMap::new(),
            next_number: 1,
            commit_count: 0,
        };
        let readme = repo.put_blob(&format!("# {name}\n"));
        let tree = repo.put_tree(BTreeMap::from([("README.md".to_string(), readme)]));
        let sha = repo.put_commit("Initial commit", &tree, Vec::new());
        repo.branches.insert("main".into(), sha.clone());
        self.repos.insert(key, repo);
        sha
    }

    pub fn repo(&self, full_name: &str) -> Option<&Repo> {
        self.repos.get(&full_name.to_ascii_lowercase())
    }

    pub fn repo_mut(&mut self, full_name: &str) -> Option<&mut Repo> {
        self.repos.get_mut(&full_name.to_ascii_lowercase())
    }

    /// Takes the first injected response for this method and path, if any.
    pub fn take_injection(&mut self, method: &str, path: &str) -> Option<super::Injected> {
        let i = self
            .injections
            .iter()
            .position(|i| i.method.eq_ignore_ascii_case(method) && i.path == path)?;
        self.injections.remove(i).map(|i| i.response)
    }
}

impl Repo {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    pub fn put_blob(&mut self, content: &str) -> String {
        let sha = object_sha("blob", &[content]);
        self.blobs.insert(sha.clone(), content.to_string());
        sha
    }

    pub fn put_tree(&mut self, tree: Tree) -> String {
        let flat: Vec<String> = tree.iter().map(|(p, s)| format!("{p}\u{1}{s}")).collect();
        let parts: Vec<&str> = flat.iter().map(String::as_str).collect();
        let sha = object_sha("tree", &parts);
        self.trees.insert(sha.clone(), tree);
        sha
    }

    /// A new commit; a counter makes two identical commits distinct, as timestamps do in git.
    pub fn put_commit(&mut self, message: &str, tree: &str, parents: Vec<String>) -> String {
        self.commit_count += 1;
        let count = self.commit_count.to_string();
        let joined = parents.join(",");
        let sha = object_sha("commit", &[message, tree, &joined, &count]);
        let commit = Commit {
            message: message.to_string(),
            tree: tree.to_string(),
            parents,
            date: now(),
        };
        self.commits.insert(sha.clone(), commit);
        sha
    }

    pub fn next_number(&mut self) -> u64 {
        let n = self.next_number;
        self.next_number += 1;
        n
    }

    /// Whether `ancestor` is `descendant` or reachable from it through parents.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> bool {
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([descendant.to_string()]);
        while let Some(sha) = queue.pop_front() {
            if sha == ancestor {
                return true;
            }
            if !seen.insert(sha.clone()) {
                continue;
            }
            if let Some(c) = self.commits.get(&sha) {
                queue.extend(c.parents.iter().cloned());
            }
        }
        false
    }

    /// The files (path → content) of a commit.
    pub fn files_at(&self, commit: &str) -> Option<BTreeMap<String, String>> {
        let tree = self.trees.get(&self.commits.get(commit)?.tree)?;
        Some(
            tree.iter()
                .map(|(p, b)| (p.clone(), self.blobs.get(b).cloned().unwrap_or_default()))
                .collect(),
        )
    }

    /// Commits `files` on top of `branch` (as another client pushing would); returns the sha.
    pub fn commit_files(
        &mut self,
        branch: &str,
        message: &str,
        files: &[(&str, &str)],
    ) -> Option<String> {
        let parent = self.branches.get(branch)?.clone();
        let mut tree = self.trees.get(&self.commits.get(&parent)?.tree)?.clone();
        for (path, content) in files {
            let blob = self.put_blob(content);
            tree.insert((*path).to_string(), blob);
        }
        let tree = self.put_tree(tree);
        let sha = self.put_commit(message, &tree, vec![parent]);
        self.branches.insert(branch.to_string(), sha.clone());
        Some(sha)
    }

    /// The current sha of a pull request's head (its branch if it still exists).
    pub fn pull_head_sha(&self, pull: &Pull) -> String {
        self.branches
            .get(&pull.head)
            .cloned()
            .unwrap_or_else(|| pull.head_sha.clone())
    }

    /// Merges a pull request's head into its base: a new commit on the base whose tree is
    /// the base's files overlaid with the head's. Returns the new commit's sha.
    pub fn merge(&mut self, number: u64, squash: bool, title: Option<&str>) -> Option<String> {
        let pull = self.pulls.get(&number)?;
        let head_sha = self.pull_head_sha(pull);
        let base_sha = self.branches.get(&pull.base)?.clone();
        let message = title.map_or_else(
            || {
                format!(
                    "Merge pull request #{number} from {}/{}",
                    self.owner, pull.head
                )
            },
            str::to_string,
        );
        let base_branch = pull.base.clone();
        let mut tree = self.trees.get(&self.commits.get(&base_sha)?.tree)?.clone();
        tree.extend(self.trees.get(&self.commits.get(&head_sha)?.tree)?.clone());
        let tree = self.put_tree(tree);
        let parents = if squash {
            vec![base_sha]
        } else {
            vec![base_sha, head_sha.clone()]
        };
        let sha = self.put_commit(&message, &tree, parents);
        self.branches.insert(base_branch, sha.clone());
        let at = now();
        if let Some(pull) = self.pulls.get_mut(&number) {
            pull.head_sha = head_sha;
            pull.open = false;
            pull.merged = true;
            pull.merge_commit_sha = Some(sha.clone());
            pull.closed_at = Some(at.clone());
            pull.merged_at = Some(at.clone());
            pull.updated_at = at;
        }
        Some(sha)
    }
}

/// GitHub's error body.
pub(crate) fn error_body(message: &str) -> Value {
    serde_json::json!({"message": message, "documentation_url": "https://docs.github.com/rest"})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestry_follows_parents() {
        let mut s = State::default();
        let root = s.add_repo("acme/app");
        let repo = s.repo_mut("ACME/App").unwrap();
        let next = repo.commit_files("main", "two", &[("a.txt", "A")]).unwrap();
        assert!(repo.is_ancestor(&root, &next));
        assert!(repo.is_ancestor(&next, &next));
        assert!(!repo.is_ancestor(&next, &root));
        assert_eq!(
            repo.files_at(&next)
                .unwrap()
                .get("a.txt")
                .map(String::as_str),
            Some("A")
        );
    }
}
