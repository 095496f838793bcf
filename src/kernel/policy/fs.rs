//! Filesystem policies (SPEC §4): `no_delete_file`, `restrict_paths`, `block_extensions`.
//!
//! Paths are judged lexically — `.`, `..` and repeated `/` resolved on the text, never on the
//! disk (the kernel does no I/O). That is enough here because the connector itself refuses
//! symlinks and anything outside its root (SPEC §7); these policies narrow what is allowed
//! inside it. Path comparisons are case-sensitive, which for an allowlist is the safe way
//! round: on a case-insensitive disk, `NOTES/a` is refused by `paths = ["notes"]` rather
//! than slipping through.

use super::Outcome;
use super::plan_view::{filesystem, join_unique, plain_list, quoted_list, unique};
use crate::kernel::action::ActionName;
use crate::kernel::context::Context;

const ALL_ACTIONS: &[ActionName] = &[
    ActionName::ReadFile,
    ActionName::WriteFile,
    ActionName::DeleteFile,
    ActionName::ListDir,
];
const NOTHING: &str = "No filesystem paths in this plan";

/// Blocks any planned `delete_file`.
pub fn no_delete_file(ctx: &Context<'_>) -> Result<Outcome, String> {
    let paths = step_paths(ctx, &[ActionName::DeleteFile])?;
    if paths.is_empty() {
        return Ok(Outcome::pass("No delete_file in this plan"));
    }
    Ok(Outcome::block(join_unique(
        paths
            .iter()
            .map(|(p, _)| format!("Deleting file '{p}' is blocked")),
    )))
}

/// Blocks a filesystem action whose path is outside every listed directory.
pub fn restrict_paths(paths: &[String], ctx: &Context<'_>) -> Result<Outcome, String> {
    let planned = step_paths(ctx, ALL_ACTIONS)?;
    if planned.is_empty() {
        return Ok(Outcome::pass(NOTHING));
    }
    let allowed: Vec<LexicalPath<'_>> = paths.iter().map(|p| LexicalPath::new(p)).collect();
    let mut outside = Vec::new();
    let mut inside_of = Vec::new();
    for (raw, path) in &planned {
        match paths
            .iter()
            .zip(&allowed)
            .find(|(_, dir)| path.is_inside(dir))
        {
            Some((dir, _)) => inside_of.push(dir.as_str()),
            None if paths.is_empty() => outside.push(format!(
                "Path '{raw}' is blocked: no paths are allowed (paths = [])"
            )),
            None => outside.push(format!(
                "Path '{raw}' is outside the allowed paths: {}",
                plain_list(paths)
            )),
        }
    }
    if !outside.is_empty() {
        return Ok(Outcome::block(join_unique(outside.into_iter())));
    }
    let raws = unique(planned.iter().map(|(raw, _)| *raw));
    Ok(Outcome::pass(
        match (raws.as_slice(), unique(inside_of).as_slice()) {
            ([raw], [dir]) => format!("Path '{raw}' is inside '{dir}'"),
            _ => format!("Paths {} are inside the allowed paths", quoted_list(&raws)),
        },
    ))
}

/// Blocks a filesystem path whose last extension (or dotfile name) is listed.
pub fn block_extensions(extensions: &[String], ctx: &Context<'_>) -> Result<Outcome, String> {
    let planned = step_paths(ctx, ALL_ACTIONS)?;
    if planned.is_empty() {
        return Ok(Outcome::pass(NOTHING));
    }
    let blocked: Vec<String> = planned
        .iter()
        .filter_map(|(raw, path)| {
            let name = path.file_name()?;
            let ext = extensions.iter().find(|ext| has_extension(name, ext))?;
            Some(format!("Path '{raw}' has the blocked extension '{ext}'"))
        })
        .collect();
    if !blocked.is_empty() {
        return Ok(Outcome::block(join_unique(blocked.into_iter())));
    }
    let raws: Vec<&str> = planned.iter().map(|(raw, _)| *raw).collect();
    Ok(Outcome::pass(format!(
        "No blocked extension ({}) in {}",
        plain_list(extensions),
        quoted_list(&raws)
    )))
}

/// Whether a file name has `ext` (with its dot) as its last extension, or is a dotfile named
/// `ext` or starting with `ext.` (`.env`, `.env.local`). Case-insensitive.
fn has_extension(name: &str, ext: &str) -> bool {
    let name = name.to_lowercase();
    let ext = ext.to_lowercase();
    let last = match name.rfind('.') {
        Some(0) | None => None,
        Some(dot) => Some(&name[dot..]),
    };
    let dotfile = name.starts_with('.') && (name == ext || name.starts_with(&format!("{ext}.")));
    last == Some(ext.as_str()) || dotfile
}

/// The `path` of each planned filesystem step among `actions`, as written and as resolved.
fn step_paths<'a>(
    ctx: &Context<'a>,
    actions: &'a [ActionName],
) -> Result<Vec<(&'a str, LexicalPath<'a>)>, String> {
    Ok(filesystem(ctx.plan, actions)
        .map(|(_, a)| {
            let raw = a.path().as_str();
            (raw, LexicalPath::new(raw))
        })
        .collect())
}

/// A path with `.`, `..` and empty components resolved on the text alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LexicalPath<'a> {
    /// Starts with `/`: never inside a root-relative directory.
    pub absolute: bool,
    /// How many `..` climb above the start (a relative path then leaves the root).
    pub parents: usize,
    pub components: Vec<&'a str>,
}

impl<'a> LexicalPath<'a> {
    pub fn new(path: &'a str) -> Self {
        let absolute = path.starts_with('/');
        let mut parents = 0;
        let mut components: Vec<&str> = Vec::new();
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    // `/..` is `/`; above a relative start, the path leaves the root.
                    if components.pop().is_none() && !absolute {
                        parents += 1;
                    }
                }
                name => components.push(name),
            }
        }
        LexicalPath {
            absolute,
            parents,
            components,
        }
    }

    /// Leaves the directory it is relative to.
    pub fn escapes(&self) -> bool {
        self.parents > 0
    }

    /// Whether this path is `dir` or below it (whole components: `notes` holds `notes/a`, not
    /// `notes2/a`). Anything absolute or escaping is inside nothing.
    pub fn is_inside(&self, dir: &LexicalPath<'_>) -> bool {
        let relative = |p: &LexicalPath<'_>| !p.absolute && !p.escapes();
        relative(self) && relative(dir) && self.components.starts_with(&dir.components)
    }

    /// The last component, if the path names one below its start.
    pub fn file_name(&self) -> Option<&'a str> {
        self.components.last().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::context::{Actor, Facts};
    use crate::kernel::plan::Step;
    use chrono::{TimeZone, Utc};
    use serde_json::{Map, Value, json};

    fn fs_step(action: &str, path: Value) -> Step {
        let mut args = Map::new();
        args.insert("path".into(), path);
        if action == "write_file" {
            args.insert("content".into(), json!(""));
        }
        crate::kernel::plan::test_steps::sample_step(
            "files",
            crate::kernel::action::SystemKind::Filesystem,
            action,
            &args,
        )
        .unwrap()
    }

    fn run(
        plan: &[Step],
        f: impl Fn(&Context<'_>) -> Result<Outcome, String>,
    ) -> Result<Outcome, String> {
        let actor = Actor {
            email: "a@b.c".into(),
            role: "engineer".into(),
        };
        let payload = Map::new();
        let facts = Facts::default();
        let now = Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).single().unwrap();
        f(&Context {
            workflow: "w",
            actor: &actor,
            payload: &payload,
            plan,
            now,
            facts: &facts,
        })
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lexical_paths_resolve_dots() {
        let p = LexicalPath::new("./notes//a/../b/.");
        assert_eq!(p.components, vec!["notes", "b"]);
        assert!(!p.escapes());
        assert!(LexicalPath::new("a/../../x").escapes());
        assert!(LexicalPath::new("..").escapes());
        let abs = LexicalPath::new("/../etc");
        assert!(abs.absolute && !abs.escapes());
        assert_eq!(abs.components, vec!["etc"]);
        assert_eq!(LexicalPath::new("").components, Vec::<&str>::new());
    }

    #[test]
    fn no_delete_file_blocks_any_delete() {
        let plan = vec![
            fs_step("write_file", json!("a.txt")),
            fs_step("delete_file", json!("old/b.txt")),
        ];
        assert_eq!(
            run(&plan, no_delete_file),
            Ok(Outcome::block("Deleting file 'old/b.txt' is blocked"))
        );
        assert_eq!(
            run(&plan[..1], no_delete_file),
            Ok(Outcome::pass("No delete_file in this plan"))
        );
    }

    #[test]
    fn restrict_paths_allows_only_inside_listed_directories() {
        let notes = strings(&["notes"]);
        let check = |path: &str, paths: &[String]| {
            let plan = vec![fs_step("write_file", json!(path))];
            run(&plan, |c| restrict_paths(paths, c))
        };
        assert_eq!(
            check("notes/a.txt", &notes),
            Ok(Outcome::pass("Path 'notes/a.txt' is inside 'notes'"))
        );
        assert_eq!(
            check("./notes//x/../a.txt", &notes),
            Ok(Outcome::pass(
                "Path './notes//x/../a.txt' is inside 'notes'"
            ))
        );
        assert_eq!(
            check("notes", &notes),
            Ok(Outcome::pass("Path 'notes' is inside 'notes'"))
        );
        for outside in [
            "notes2/a",
            "notes/../secret.txt",
            "../notes/a",
            "/notes/a",
            "/etc/passwd",
            ".",
        ] {
            assert_eq!(
                check(outside, &notes),
                Ok(Outcome::block(format!(
                    "Path '{outside}' is outside the allowed paths: notes"
                ))),
                "{outside}"
            );
        }
        // `.` and `""` allow the whole root, but still nothing above it.
        for whole in [".", ""] {
            let paths = strings(&[whole]);
            assert_eq!(
                check("a/b.txt", &paths),
                Ok(Outcome::pass(format!("Path 'a/b.txt' is inside '{whole}'")))
            );
            assert_eq!(
                check("a/../../b.txt", &paths),
                Ok(Outcome::block(format!(
                    "Path 'a/../../b.txt' is outside the allowed paths: {whole}"
                )))
            );
        }
        assert_eq!(
            check("notes/a", &[]),
            Ok(Outcome::block(
                "Path 'notes/a' is blocked: no paths are allowed (paths = [])"
            ))
        );
        // A listed directory is normalised too.
        assert_eq!(
            check("docs/x", &strings(&["./docs/"])),
            Ok(Outcome::pass("Path 'docs/x' is inside './docs/'"))
        );
    }

    #[test]
    fn restrict_paths_judges_every_step() {
        let plan = vec![
            fs_step("read_file", json!("notes/a")),
            fs_step("list_dir", json!("docs")),
            fs_step("write_file", json!("tmp/x")),
        ];
        let paths = strings(&["notes", "docs"]);
        assert_eq!(
            run(&plan, |c| restrict_paths(&paths, c)),
            Ok(Outcome::block(
                "Path 'tmp/x' is outside the allowed paths: notes, docs"
            ))
        );
        assert_eq!(
            run(&plan[..2], |c| restrict_paths(&paths, c)),
            Ok(Outcome::pass(
                "Paths 'notes/a', 'docs' are inside the allowed paths"
            ))
        );
        assert_eq!(
            run(&[], |c| restrict_paths(&paths, c)),
            Ok(Outcome::pass("No filesystem paths in this plan"))
        );
    }

    #[test]
    fn block_extensions_matches_last_extension_and_dotfiles() {
        let exts = strings(&[".env", ".key", ".pem"]);
        let check = |path: &str| {
            let plan = vec![fs_step("read_file", json!(path))];
            run(&plan, |c| block_extensions(&exts, c))
        };
        let blocked = [
            ("certs/server.pem", ".pem"),
            ("a.tar.PEM", ".pem"),
            (".env", ".env"),
            ("config/.ENV", ".env"),
            (".env.local", ".env"),
            (".ENV.prod", ".env"),
            ("x/.key", ".key"),
            ("x/../.env", ".env"),
            ("dir/.env/", ".env"),
        ];
        for (path, ext) in blocked {
            assert_eq!(
                check(path),
                Ok(Outcome::block(format!(
                    "Path '{path}' has the blocked extension '{ext}'"
                ))),
                "{path}"
            );
        }
        for path in [
            "notes/a.txt",
            "environment",
            "my.env.txt",
            ".envrc",
            "pem",
            "a.pem/..",
            "x.",
            ".",
        ] {
            assert_eq!(
                check(path),
                Ok(Outcome::pass(format!(
                    "No blocked extension (.env, .key, .pem) in '{path}'"
                ))),
                "{path}"
            );
        }
        assert_eq!(
            run(&[], |c| block_extensions(&exts, c)),
            Ok(Outcome::pass("No filesystem paths in this plan"))
        );
    }

    #[test]
    fn has_extension_is_case_insensitive_both_ways() {
        assert!(has_extension("ID_RSA.Key", ".KEY"));
        assert!(has_extension(".Env.Local", ".env"));
        assert!(!has_extension("key", ".key"));
    }
}
