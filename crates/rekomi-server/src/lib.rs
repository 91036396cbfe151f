//! Wiring: the only crate that knows every other one. Builds the adapters from
//! configuration, hands them to the use cases, starts the HTTP server and the background
//! reconciler. No business rules live here.

pub mod config;
pub mod system;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rekomi_domain::ports::PaymentGateway;
use rekomi_domain::usecases::Services;
use rekomi_http::AppState;
use rekomi_postgres::PgStore;
use rekomi_stripe::{OfflineGateway, StripeConfig, StripeGateway};

pub use config::Config;
use system::{OsEntropy, SystemClock};

/// Builds the payment gateway: Stripe when a secret is configured, otherwise the offline
/// gateway of local mode.
///
/// # Errors
/// When the Stripe configuration is invalid.
pub fn gateway(config: &Config) -> anyhow::Result<Arc<dyn PaymentGateway>> {
    match &config.stripe_secret_key {
        Some(key) => {
            let mut stripe = StripeConfig::new(key.clone());
            if let Some(base) = &config.stripe_api_base {
                stripe.api_base = base.clone();
            }
            Ok(Arc::new(StripeGateway::new(stripe).map_err(|e| anyhow::anyhow!(e.to_string()))?))
        }
        None => {
            tracing::warn!(
                "LOCAL MODE: REKOMI_STRIPE_SECRET_KEY is not set. Coupons and promotion codes get offline \
                 Stripe-like ids and nothing is sent to Stripe. Set the secret to use a real Stripe account."
            );
            Ok(Arc::new(OfflineGateway::new()))
        }
    }
}

/// Builds the use cases over PostgreSQL and the configured gateway.
///
/// # Errors
/// When the pool or gateway cannot be built.
pub fn services(config: &Config) -> anyhow::Result<Services> {
    let store = PgStore::connect(&config.database_url, config.db_pool_size).map_err(|e| anyhow::anyhow!("database: {e}"))?;
    Ok(Services { store: Arc::new(store), gateway: gateway(config)?, clock: Arc::new(SystemClock), entropy: Arc::new(OsEntropy) })
}

/// A running application: the HTTP server on its bound port, plus background work.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    services: Services,
    reconcile_interval: Option<Duration>,
}

impl Application {
    /// Binds `config.bind` (port 0 picks a free port), applies migrations when configured,
    /// and builds the server without starting it.
    ///
    /// # Errors
    /// Bind, migration or wiring failures.
    pub fn build(config: &Config) -> anyhow::Result<Self> {
        if config.migrate_on_start {
            let applied = rekomi_postgres::run_migrations(&config.database_url).context("applying migrations")?;
            tracing::info!(migrations.applied = applied, "migrations applied");
        }
        let services = services(config)?;
        let listener = TcpListener::bind(&config.bind).with_context(|| format!("binding {}", config.bind))?;
        let port = listener.local_addr()?.port();
        let state = AppState::new(services.clone(), config.jwt_secret.clone());
        if config.jwt_secret.is_none() {
            tracing::warn!("REKOMI_JWT_SECRET is not set: dashboard and affiliate JWTs are refused; API keys work");
        }
        let server = rekomi_http::build_server(listener, state, config.http_workers)?;
        let reconcile_interval = (config.reconcile_interval_secs > 0).then(|| Duration::from_secs(config.reconcile_interval_secs));
        Ok(Self { port, server, services, reconcile_interval })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the server stops, running the reconciler beside it.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        if let Some(every) = self.reconcile_interval {
            let services = self.services.clone();
            tokio::spawn(async move { reconcile_loop(services, every).await });
        }
        self.server.await.context("http server")
    }
}

/// Finishes Stripe provisioning that a crash or outage interrupted. Several server processes
/// may run it at once: each reservation is keyed by its own idempotency key, so duplicates
/// resolve to the same Stripe object and the finalizing transaction records it once.
async fn reconcile_loop(services: Services, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match services.reconcile_provisioning().await {
            Ok(report) if report.provisioned + report.released + report.pending > 0 => {
                tracing::info!(
                    provisioned = report.provisioned,
                    released = report.released,
                    pending = report.pending,
                    "reconciled stripe provisioning"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error.cause = %e, "reconciler pass failed"),
        }
    }
}
