//! A throwaway PostgreSQL cluster for `enact demo` and the tests: `initdb` into a fresh temp
//! folder, `pg_ctl start` on a free loopback port, removed again on drop.
//!
//! - **Binaries**: Debian keeps them off `PATH`, in `/usr/lib/postgresql/<version>/bin`; the
//!   highest version found is used (`$ENACT_PG_BIN` names another folder).
//! - **Root**: `initdb` and `postgres` refuse to run as root, so when the effective uid is 0
//!   every server command runs as the `postgres` user through `runuser`, and the temp folder is
//!   handed to that user.
//! - **Access**: only TCP on 127.0.0.1 (unix sockets live in the temp folder, never in
//!   `/var/run`), one superuser `enact` with a random password and `scram-sha-256`, so the
//!   connector is exercised with real password authentication.
//! - **TLS**: when the machine has Debian's snakeoil certificate and key (the `ssl-cert`
//!   package, a dependency of `postgresql`) and we may read the key, the server also accepts
//!   TLS, so `sslmode=require` can be exercised; [`TempPostgres::tls`] says whether it does.
//! - **Cleanup**: `Drop` stops the server (`pg_ctl stop -m immediate`) and removes the folder.
//!   A static's `Drop` never runs at process exit (the shared test server is one), and a
//!   crashed or killed process drops nothing, so each cluster also gets a guardian: a tiny
//!   `sh` loop in its own process group that polls this process's pid and, once it is gone,
//!   does the same stop and removal.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// How long `pg_ctl start` may take before the start is reported as failed.
const START_TIMEOUT_SECS: u32 = 60;
/// The superuser the cluster is created with.
const USER: &str = "enact";
/// A self-signed certificate and key most Debian machines have (package `ssl-cert`).
const SNAKEOIL: (&str, &str) = (
    "/etc/ssl/certs/ssl-cert-snakeoil.pem",
    "/etc/ssl/private/ssl-cert-snakeoil.key",
);

/// A running throwaway cluster. Stopped and deleted when dropped.
pub struct TempPostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    password: String,
    as_postgres: bool,
    tls: bool,
    guardian: Option<Child>,
}

impl TempPostgres {
    /// Creates and starts a cluster; returns once it accepts connections. Blocks for a few
    /// seconds (call it through `spawn_blocking` from async code).
    pub fn start() -> Result<TempPostgres, String> {
        let bin = find_bin_dir()?;
        let as_postgres = rustix::process::geteuid().is_root();
        if as_postgres && run(Command::new("id").args(["-u", "postgres"])).is_err() {
            return Err(
                "running as root, the throwaway PostgreSQL must run as the `postgres` \
                        user, which does not exist (`apt-get install -y postgresql` creates it)"
                    .into(),
            );
        }
        let password = random_hex(16)?;
        let dir = std::env::temp_dir().join(format!("enact-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&dir)
            .map_err(|e| format!("cannot create the folder {}: {e}", dir.display()))?;
        let mut pg = TempPostgres {
            dir,
            bin,
            port: 0,
            password,
            as_postgres,
            tls: false,
            guardian: None,
        };
        // From here on `pg` is dropped on every error path, which removes the folder.
        pg.init()?;
        pg.guardian = Some(pg.spawn_guardian()?);
        pg.start_server()?;
        Ok(pg)
    }

    /// Like [`TempPostgres::start`], on tokio's blocking pool.
    pub async fn start_async() -> Result<TempPostgres, String> {
        tokio::task::spawn_blocking(TempPostgres::start)
            .await
            .map_err(|e| format!("the throwaway PostgreSQL start did not complete: {e}"))?
    }

    /// Whether the server also accepts TLS connections (see the module docs).
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// A tokio-postgres key=value connection string (superuser, password included).
    pub fn dsn(&self) -> String {
        self.dsn_for("postgres")
    }

    /// Like [`TempPostgres::dsn`], for another database of this cluster.
    pub fn dsn_for(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={USER} password={} dbname={dbname} sslmode=disable",
            self.port, self.password
        )
    }

    /// The same as a `postgresql://` URL.
    pub fn url(&self) -> String {
        format!(
            "postgresql://{USER}:{}@127.0.0.1:{}/postgres?sslmode=disable",
            self.password, self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's password (tests check it never leaks).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The server log (`<temp>/server.log`), for error messages and `--keep`.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn init(&mut self) -> Result<(), String> {
        let pwfile = self.dir.join("pwfile");
        std::fs::write(&pwfile, &self.password)
            .map_err(|e| format!("cannot write {}: {e}", pwfile.display()))?;
        self.tls = self.copy_snakeoil();
        if self.as_postgres {
            run(Command::new("chown")
                .arg("-R")
                .arg("postgres:")
                .arg(&self.dir))?;
        }
        let data = self.data_dir();
        let mut cmd = self.server_command("initdb");
        cmd.arg("-D").arg(&data).arg("-U").arg(USER);
        cmd.arg("--auth=scram-sha-256").arg("--pwfile").arg(&pwfile);
        // No fsync and a C locale: a throwaway cluster needs neither durability nor collation.
        cmd.args(["-E", "UTF8", "--locale=C", "--no-sync"]);
        run(&mut cmd)?;
        std::fs::remove_file(&pwfile).map_err(|e| format!("cannot remove the password file: {e}"))
    }

    /// Copies the snakeoil pair in as `server.crt` / `server.key` (mode 0600, as the server
    /// demands); `false`, and no TLS, if either cannot be read.
    fn copy_snakeoil(&self) -> bool {
        use std::os::unix::fs::PermissionsExt;
        let (cert, key) = SNAKEOIL;
        let copied = std::fs::copy(cert, self.dir.join("server.crt"))
            .and_then(|_| std::fs::copy(key, self.dir.join("server.key")))
            .and_then(|_| {
                std::fs::set_permissions(
                    self.dir.join("server.key"),
                    std::fs::Permissions::from_mode(0o600),
                )
            });
        copied.is_ok()
    }

    fn start_server(&mut self) -> Result<(), String> {
        // Binding port 0 finds a free port; another process may take it before the server
        // does, so a start that fails is retried on a new port.
        let mut last = String::new();
        for _ in 0..3 {
            self.port = free_port()?;
            let mut options = format!(
                "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={} \
                 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                self.port,
                self.dir.display()
            );
            if self.tls {
                let dir = self.dir.display();
                options.push_str(&format!(
                    " -c ssl=on -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key"
                ));
            }
            let mut cmd = self.server_command("pg_ctl");
            cmd.arg("start").arg("-D").arg(self.data_dir());
            cmd.arg("-l").arg(self.log_path()).arg("-o").arg(options);
            cmd.args(["-w", "-t", &START_TIMEOUT_SECS.to_string()]);
            match run(&mut cmd) {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
        }
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        Err(format!(
            "the throwaway PostgreSQL did not start within {START_TIMEOUT_SECS}s: {last}\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ))
    }

    /// A shell loop that outlives this process by at most a second, then stops the server
    /// and removes the folder. It runs as the current user (as `postgres` it could not see a
    /// root-owned pid with `kill -0`) in its own process group, so a Ctrl-C to the test run
    /// does not kill it before it has cleaned up.
    fn spawn_guardian(&self) -> Result<Child, String> {
        use std::os::unix::process::CommandExt;
        let stop = shell_words(&self.server_argv("pg_ctl"));
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {stop} stop -D '{data}' -m immediate >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            data = self.data_dir().display(),
            dir = self.dir.display(),
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the cleanup guardian (sh): {e}"))
    }

    /// The argv prefix that runs a server binary, through `runuser` when we are root.
    fn server_argv(&self, program: &str) -> Vec<String> {
        let path = self.bin.join(program).display().to_string();
        if self.as_postgres {
            vec![
                "runuser".into(),
                "-u".into(),
                "postgres".into(),
                "--".into(),
                path,
            ]
        } else {
            vec![path]
        }
    }

    fn server_command(&self, program: &str) -> Command {
        let argv = self.server_argv(program);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        // The server's own working folder: the postgres user may not be able to enter ours.
        cmd.current_dir(&self.dir);
        cmd
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        if self.data_dir().join("postmaster.pid").exists() {
            let mut cmd = self.server_command("pg_ctl");
            cmd.arg("stop").arg("-D").arg(self.data_dir());
            cmd.args(["-m", "immediate"]);
            if let Err(e) = run(&mut cmd) {
                tracing::warn!(error = %e, "could not stop the throwaway PostgreSQL");
            }
        }
        if let Some(mut guardian) = self.guardian.take() {
            let _ = guardian.kill();
            let _ = guardian.wait();
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(error = %e, dir = %self.dir.display(), "could not remove the throwaway PostgreSQL folder");
        }
    }
}

/// `$ENACT_PG_BIN`, else the highest `/usr/lib/postgresql/<version>/bin` that has `initdb`.
fn find_bin_dir() -> Result<PathBuf, String> {
    bin_dir_in(
        std::env::var_os("ENACT_PG_BIN").map(PathBuf::from),
        Path::new("/usr/lib/postgresql"),
    )
}

fn bin_dir_in(given: Option<PathBuf>, root: &Path) -> Result<PathBuf, String> {
    if let Some(dir) = given {
        return if has_server_binaries(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "ENACT_PG_BIN={} holds no initdb and pg_ctl",
                dir.display()
            ))
        };
    }
    let missing = || {
        format!(
            "PostgreSQL server binaries not found (no {}/<version>/bin/initdb): install them \
             with `apt-get install -y postgresql`, or set ENACT_PG_BIN to the folder holding \
             initdb and pg_ctl",
            root.display()
        )
    };
    let entries = std::fs::read_dir(root).map_err(|_| missing())?;
    let mut versions: Vec<(Vec<u32>, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let version: Option<Vec<u32>> = name.split('.').map(|p| p.parse().ok()).collect();
            let bin = e.path().join("bin");
            version
                .filter(|_| has_server_binaries(&bin))
                .map(|v| (v, bin))
        })
        .collect();
    // Numeric order: 9.6 < 15 < 16.
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(missing)
}

fn has_server_binaries(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free loopback port: {e}"))
}

fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| format!("no randomness for the password: {e}"))?;
    Ok(hex::encode(buf))
}

/// Runs a command to completion; a failure names the program and carries its stderr.
fn run(cmd: &mut Command) -> Result<(), String> {
    let program = cmd.get_program().to_string_lossy().to_string();
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().to_string())
        .collect();
    // `runuser -u postgres -- /…/initdb`: name the server binary, not runuser.
    let name = args
        .iter()
        .find(|a| a.starts_with('/'))
        .filter(|_| program == "runuser")
        .cloned()
        .unwrap_or(program);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{name}`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{name}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Single-quotes each word for `sh` (paths here never hold a quote, but be safe).
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_version(root: &Path, version: &str) {
        let bin = root.join(version).join("bin");
        std::fs::create_dir_all(&bin).unwrap_or_default();
        for program in ["initdb", "pg_ctl"] {
            std::fs::write(bin.join(program), "").unwrap_or_default();
        }
    }

    #[test]
    fn the_highest_version_with_binaries_is_used() {
        let Ok(tmp) = tempfile::tempdir() else { return };
        for v in ["9.6", "15", "13"] {
            fake_version(tmp.path(), v);
        }
        std::fs::create_dir_all(tmp.path().join("17/bin")).unwrap_or_default();
        assert_eq!(bin_dir_in(None, tmp.path()), Ok(tmp.path().join("15/bin")));
    }

    #[test]
    fn missing_binaries_say_what_to_install() {
        let err = bin_dir_in(None, Path::new("/nonexistent/postgresql"))
            .err()
            .unwrap_or_default();
        assert_eq!(
            err,
            "PostgreSQL server binaries not found (no /nonexistent/postgresql/<version>/bin/initdb): \
             install them with `apt-get install -y postgresql`, or set ENACT_PG_BIN to the folder \
             holding initdb and pg_ctl"
        );
        let err = bin_dir_in(Some("/nonexistent/bin".into()), Path::new("/"))
            .err()
            .unwrap_or_default();
        assert_eq!(
            err,
            "ENACT_PG_BIN=/nonexistent/bin holds no initdb and pg_ctl"
        );
    }
}
