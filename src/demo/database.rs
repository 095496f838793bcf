//! The demo's database: `$DATABASE_URL` if set, else a throwaway PostgreSQL from the local
//! binaries. The demo seeds and inspects its table directly (set-up and proof, not agent
//! actions: those go through `enact serve` like everything else).

use serde_json::Value;
use tokio_postgres::{Client, NoTls};

use crate::sandbox::postgres::TempPostgres;

/// How many customers the demo seeds (and the agent wipes).
pub const ROWS: i64 = 25;

pub struct DemoDb {
    /// Holds the throwaway cluster alive; `None` when `$DATABASE_URL` was used.
    _server: Option<TempPostgres>,
    pub dsn: String,
    /// Where the DSN came from, for the output.
    pub origin: String,
    pub table: String,
    client: Client,
    /// The connection task (ends when the client is dropped).
    _conn: tokio::task::JoinHandle<()>,
}

impl DemoDb {
    /// Uses `$DATABASE_URL` or starts a throwaway cluster; connects; creates and seeds the table.
    pub async fn open() -> Result<DemoDb, String> {
        let (server, dsn, origin, table) = match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => {
                // Someone else's database: a table name nobody else uses, dropped afterwards.
                let suffix = uuid::Uuid::new_v4().simple().to_string();
                let table = format!("enact_demo_customers_{}", &suffix[..8]);
                (None, url, "$DATABASE_URL".to_string(), table)
            }
            _ => {
                let pg = tokio::task::spawn_blocking(TempPostgres::start)
                    .await
                    .map_err(|e| format!("the PostgreSQL start-up task failed: {e}"))??;
                let dsn = pg.dsn();
                let origin = format!("a throwaway PostgreSQL on 127.0.0.1:{}", pg.port());
                (Some(pg), dsn, origin, "customers".to_string())
            }
        };
        let (client, connection) = tokio_postgres::connect(&dsn, NoTls)
            .await
            .map_err(|e| format!("cannot connect to the demo database ({origin}): {e}"))?;
        let conn = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "demo database connection ended");
            }
        });
        let db = DemoDb {
            _server: server,
            dsn,
            origin,
            table,
            client,
            _conn: conn,
        };
        db.seed().await?;
        Ok(db)
    }

    async fn seed(&self) -> Result<(), String> {
        let t = &self.table;
        let sql = format!(
            "CREATE TABLE {t} (
                id         serial PRIMARY KEY,
                name       text NOT NULL,
                email      text NOT NULL UNIQUE,
                balance    numeric(14, 2) NOT NULL,
                signed_up  timestamptz NOT NULL,
                tags       jsonb NOT NULL,
                active     boolean NOT NULL DEFAULT true
            );
            INSERT INTO {t} (name, email, balance, signed_up, tags)
            SELECT 'Customer ' || i,
                   'customer' || i || '@example.com',
                   (i * 1234.56)::numeric(14, 2) + 0.07,
                   timestamptz '2026-01-01 09:30:00.123456+00' + i * interval '1 day 1 hour 1.000001 second',
                   jsonb_build_object('tier', CASE WHEN i % 3 = 0 THEN 'gold' ELSE 'standard' END, 'n', i)
            FROM generate_series(1, {ROWS}) AS i;"
        );
        self.client
            .batch_execute(&sql)
            .await
            .map_err(|e| format!("cannot seed the demo table `{t}`: {e}"))
    }

    /// Every row, in key order, as PostgreSQL's own JSON text: a byte-exact dump.
    pub async fn dump(&self) -> Result<Vec<String>, String> {
        let sql = format!(
            "SELECT to_jsonb(c)::text FROM {} AS c ORDER BY id",
            self.table
        );
        let rows = self
            .client
            .query(&sql, &[])
            .await
            .map_err(|e| format!("cannot read the demo table: {e}"))?;
        rows.iter()
            .map(|r| r.try_get::<_, String>(0).map_err(|e| e.to_string()))
            .collect()
    }

    /// One row of the dump, parsed (for showing a sample).
    pub fn sample(dump: &[String]) -> Option<Value> {
        dump.first().and_then(|s| serde_json::from_str(s).ok())
    }

    /// Drops the table (only needed on a database that outlives the demo).
    pub async fn clean_up(&self) {
        if self._server.is_none() {
            let sql = format!("DROP TABLE IF EXISTS {}", self.table);
            if let Err(e) = self.client.batch_execute(&sql).await {
                tracing::warn!(error = %e, "cannot drop the demo table");
            }
        }
    }
}
