//! Integration tests: the Postgres connector against a real server, through the library
//! Engine (SPEC §6, §7 postgres, §8 `db_safe_insert`).
//!
//! One throwaway cluster serves the whole test binary ([`test_dsn`]), or the server named by
//! `ENACT_TEST_DATABASE_URL`. Each test works in its own uniquely named schema, so tests run
//! in parallel.

use std::sync::OnceLock;

use enact::sandbox::TempPostgres;

/// The shared server: started on first use, stopped by its guardian when the test process
/// exits (a static is never dropped).
static SERVER: OnceLock<Result<TempPostgres, String>> = OnceLock::new();

/// The DSN of the test server: `$ENACT_TEST_DATABASE_URL`, else the shared throwaway cluster.
pub fn test_dsn() -> String {
    if let Ok(url) = std::env::var("ENACT_TEST_DATABASE_URL") {
        return url;
    }
    match SERVER.get_or_init(TempPostgres::start) {
        Ok(pg) => pg.dsn(),
        Err(e) => panic!("cannot start the throwaway PostgreSQL: {e}"),
    }
}

/// A plain client for setting up and inspecting test data.
pub async fn client() -> tokio_postgres::Client {
    let dsn = test_dsn();
    let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test database: {e}"));
    tokio::spawn(conn);
    client
}

#[tokio::test]
async fn sandbox_server_accepts_password_logins() {
    let c = client().await;
    let row = c.query_one("SELECT current_user::text", &[]).await.unwrap();
    let user: String = row.get(0);
    assert!(!user.is_empty());
}
