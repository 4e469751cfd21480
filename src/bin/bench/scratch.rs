//! A database made for one benchmark run and removed after it: a temporary SQLite file, or a new
//! database on a PostgreSQL or MySQL server.

use sea_orm::{ConnectionTrait, Database};

/// A scratch database.
pub struct Scratch {
    /// Its URL.
    pub url: String,
    server: Option<String>,
    name: String,
}

impl Scratch {
    /// Creates one on `server` (`sqlite` for a temporary file).
    pub async fn create(server: &str) -> Result<Self, String> {
        let name = format!("chronicle_bench_{}", uuid::Uuid::now_v7().simple());
        if server == "sqlite" || server.starts_with("sqlite:") {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            return Ok(Self {
                url: format!("sqlite://{}?mode=rwc", path.display()),
                server: None,
                name: path.display().to_string(),
            });
        }
        let admin = Database::connect(server)
            .await
            .map_err(|e| format!("{server}: {e}"))?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(|e| e.to_string())?;
        admin.close().await.ok();
        let base = server
            .rsplit_once('/')
            .map(|(base, _)| base)
            .ok_or("a server URL ends in /DATABASE")?;
        Ok(Self {
            url: format!("{base}/{name}"),
            server: Some(server.to_owned()),
            name,
        })
    }

    /// Removes it.
    pub async fn drop(self) {
        match self.server {
            None => {
                for suffix in ["", "-wal", "-shm"] {
                    std::fs::remove_file(format!("{}{suffix}", self.name)).ok();
                }
            }
            Some(server) => {
                if let Ok(admin) = Database::connect(&server).await {
                    admin
                        .execute_unprepared(&format!("DROP DATABASE {}", self.name))
                        .await
                        .ok();
                }
            }
        }
    }
}

/// `postgres`, `mysql` or `sqlite`.
pub fn backend_name(url: &str) -> &'static str {
    if url.starts_with("postgres") {
        "postgres"
    } else if url.starts_with("mysql") {
        "mysql"
    } else {
        "sqlite"
    }
}
