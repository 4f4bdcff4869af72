//! [`StoreKind`]: which record store a server uses (`server.store` in the deployment,
//! `--store`), parsed and printed the way the config spells it.

use serde::{Deserialize, Serialize};

/// Which record store the server uses: `sqlite`, `memory` or a `postgres://` URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(try_from = "String", into = "String")]
pub enum StoreKind {
    /// SQLite file in `dataDir` (WAL, `synchronous=FULL`).
    #[default]
    Sqlite,
    /// In memory (the engine's reference `MemoryStore`).
    Memory,
    /// PostgreSQL at this URL (`postgres://USER[:PASSWORD]@HOST:PORT/DB`): records the
    /// nodes of a cluster share.
    Postgres(String),
}

impl std::str::FromStr for StoreKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sqlite" => Ok(StoreKind::Sqlite),
            "memory" => Ok(StoreKind::Memory),
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                super::postgres::parse_url(url)?;
                Ok(StoreKind::Postgres(url.to_string()))
            }
            other => Err(format!(
                "`{}` is not a store: sqlite, memory or postgres://USER@HOST:PORT/DB",
                super::postgres::redact(other)
            )),
        }
    }
}

impl TryFrom<String> for StoreKind {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<StoreKind> for String {
    fn from(k: StoreKind) -> String {
        match k {
            StoreKind::Sqlite => "sqlite".into(),
            StoreKind::Memory => "memory".into(),
            StoreKind::Postgres(url) => url,
        }
    }
}
