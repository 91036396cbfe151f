//! The release `rekomi-server` as a child process on 127.0.0.1, in local mode (no Stripe
//! secret: the offline gateway), with the Stripe webhook secret set and `RUST_LOG=warn`.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Which background work runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workers {
    /// Only the HTTP server: the inbox, delivery and reconcile workers are off.
    Off,
    /// The Stripe event worker at its default interval (delivery and reconcile stay off, so
    /// the inbox worker is measured alone).
    InboxOnly,
}

/// How to start the server.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    pub binary: PathBuf,
    pub database_url: String,
    pub webhook_secret: String,
    /// `REKOMI_HTTP_WORKERS`; `None` keeps the server's default (the number of cores).
    pub http_workers: Option<usize>,
    /// `REKOMI_DB_POOL_SIZE`; `None` keeps the default (16).
    pub db_pool_size: Option<u32>,
    /// Where the server's stderr goes.
    pub log_dir: PathBuf,
}

/// A running server; stopped (SIGTERM, then SIGKILL) on [`Server::stop`] or drop.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub pid: u32,
    pub log: PathBuf,
}

impl Server {
    /// Starts the server and waits until `/readyz` answers 200.
    ///
    /// # Errors
    /// When it cannot start or does not become ready within 30 seconds.
    pub async fn start(spec: &ServerSpec, workers: Workers, tag: &str) -> anyhow::Result<Self> {
        let port = free_port()?;
        std::fs::create_dir_all(&spec.log_dir).with_context(|| format!("creating {}", spec.log_dir.display()))?;
        let log = spec.log_dir.join(format!("server-{tag}.log"));
        let stderr = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new(&spec.binary);
        command
            .arg("serve")
            .env("DATABASE_URL", &spec.database_url)
            .env("REKOMI_BIND", format!("127.0.0.1:{port}"))
            .env("REKOMI_STRIPE_WEBHOOK_SECRET", &spec.webhook_secret)
            .env("RUST_LOG", "warn")
            .env("REKOMI_RECONCILE_INTERVAL_SECS", "0")
            .env("REKOMI_DELIVERY_INTERVAL_MS", "0")
            // Every request comes from 127.0.0.1: the per-address tracking limit would cap the
            // click phase at 1,200 a minute.
            .env("REKOMI_TRACKING_LIMIT_PER_MINUTE", "0")
            .env_remove("REKOMI_STRIPE_SECRET_KEY")
            .env_remove("REKOMI_STRIPE_API_BASE")
            .env_remove("REKOMI_MIGRATE_ON_START")
            .env_remove("REKOMI_LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        match workers {
            Workers::Off => command.env("REKOMI_INBOX_INTERVAL_MS", "0"),
            Workers::InboxOnly => command.env_remove("REKOMI_INBOX_INTERVAL_MS"),
        };
        match spec.http_workers {
            Some(n) => command.env("REKOMI_HTTP_WORKERS", n.to_string()),
            None => command.env_remove("REKOMI_HTTP_WORKERS"),
        };
        match spec.db_pool_size {
            Some(n) => command.env("REKOMI_DB_POOL_SIZE", n.to_string()),
            None => command.env_remove("REKOMI_DB_POOL_SIZE"),
        };
        let child = command.spawn().with_context(|| format!("starting {}", spec.binary.display()))?;
        let pid = child.id();
        let mut server = Server { child: Some(child), base: format!("http://127.0.0.1:{port}"), pid, log };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(2)).build()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("{}/readyz", self.base);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("the server exited at start ({status}); see {}", self.log.display());
                }
            }
            if let Ok(response) = client.get(&url).send().await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the server did not become ready within 30 s; see {}", self.log.display())
    }

    /// SIGTERM (actix-web stops gracefully), then SIGKILL after 15 seconds.
    /// The statements the server sent to PostgreSQL so far (`rekomi_db_statements_total` on
    /// its `/metrics`), if it says.
    pub async fn statements(&self) -> Option<u64> {
        let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().ok()?;
        let page = client.get(format!("{}/metrics", self.base)).send().await.ok()?.text().await.ok()?;
        page.lines()
            .find_map(|line| line.strip_prefix("rekomi_db_statements_total "))
            .and_then(|n| n.trim().parse::<f64>().ok())
            .map(|n| n as u64)
    }

    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port that was free a moment ago (the OS picks it; the server binds it right after).
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Where the servers' logs go (`target/bench/`).
pub fn log_dir(root: &Path) -> PathBuf {
    root.join("target").join("bench")
}
