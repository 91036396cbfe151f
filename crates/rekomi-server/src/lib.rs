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
use rekomi_stripe::{OfflineGateway, StripeConfig, StripeEventDecoder, StripeGateway};
use rekomi_webhooks::HttpWebhookSender;

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

/// Builds the outbound webhook transport (private targets refused unless configured).
///
/// # Errors
/// When the HTTP client cannot be built.
pub fn webhook_sender(config: &Config) -> anyhow::Result<Arc<HttpWebhookSender>> {
    if config.webhook_allow_private_targets {
        tracing::warn!(
            "REKOMI_WEBHOOK_ALLOW_PRIVATE_TARGETS is on: webhook endpoints may point at private, loopback and \
             link-local addresses. Use it for development and tests only."
        );
    }
    let sender = HttpWebhookSender::new(config.webhook_allow_private_targets).context("building the webhook HTTP client")?;
    Ok(Arc::new(sender))
}

/// Builds the use cases over PostgreSQL and the configured gateway.
///
/// # Errors
/// When the pool or gateway cannot be built.
pub fn services(config: &Config) -> anyhow::Result<Services> {
    let store = PgStore::connect(&config.database_url, config.db_pool_size).map_err(|e| anyhow::anyhow!("database: {e}"))?;
    Ok(Services {
        store: Arc::new(store),
        gateway: gateway(config)?,
        clock: Arc::new(SystemClock),
        entropy: Arc::new(OsEntropy),
        events: Arc::new(StripeEventDecoder),
        webhooks: webhook_sender(config)?,
    })
}

/// A running application: the HTTP server on its bound port, plus background work.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    services: Services,
    reconcile_interval: Option<Duration>,
    inbox_interval: Option<Duration>,
    inbox_workers: usize,
    delivery_interval: Option<Duration>,
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
        let mut state = AppState::new(services.clone(), config.jwt_secret.clone(), config.stripe_webhook_secrets.clone());
        // The Stripe key's mode decides which events count: a live key ignores test events.
        state.stripe_livemode = config.stripe_secret_key.as_deref().map(|k| k.starts_with("sk_live_") || k.starts_with("rk_live_"));
        state.auth.max_token_ttl = config.jwt_max_ttl_secs;
        state.auth.client_ip_header = config.client_ip_header.clone();
        if config.stripe_webhook_secrets.is_empty() {
            tracing::warn!("REKOMI_STRIPE_WEBHOOK_SECRET is not set: POST /api/webhooks/stripe refuses every event");
        }
        if config.jwt_secret.is_none() {
            tracing::warn!("REKOMI_JWT_SECRET is not set: dashboard and affiliate JWTs are refused; API keys work");
        }
        let server = rekomi_http::build_server(listener, state, config.http_workers)?;
        let reconcile_interval = (config.reconcile_interval_secs > 0).then(|| Duration::from_secs(config.reconcile_interval_secs));
        let inbox_interval = (config.inbox_interval_ms > 0).then(|| Duration::from_millis(config.inbox_interval_ms));
        let delivery_interval = (config.delivery_interval_ms > 0).then(|| Duration::from_millis(config.delivery_interval_ms));
        Ok(Self {
            port,
            server,
            services,
            reconcile_interval,
            inbox_interval,
            inbox_workers: config.inbox_workers.max(1),
            delivery_interval,
        })
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
        if let Some(every) = self.inbox_interval {
            // Several workers per process: each waits on the database most of the time, and
            // claims (FOR UPDATE SKIP LOCKED) keep them from taking the same event.
            for worker in 0..self.inbox_workers {
                let services = self.services.clone();
                tokio::spawn(async move { inbox_loop(services, every, worker == 0).await });
            }
        }
        if let Some(every) = self.delivery_interval {
            for _ in 0..DELIVERY_WORKERS {
                let services = self.services.clone();
                tokio::spawn(async move { delivery_loop(services, every).await });
            }
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

/// Events claimed per worker pass.
const INBOX_BATCH: i64 = 50;

/// Processes the Stripe event inbox, and approves conversions whose grace period has passed.
/// Several server processes may run it at once: events are claimed with `FOR UPDATE SKIP
/// LOCKED`, so none is processed twice. A full batch is followed at once by the next one.
/// While a batch is processed, its lease is renewed every few seconds, so it can stay short:
/// the events of a worker that dies are taken by another within seconds.
async fn inbox_loop(services: Services, every: Duration, housekeeping: bool) {
    let mut housekeeping_due = tokio::time::Instant::now();
    loop {
        let busy = match services.claim_stripe_events(INBOX_BATCH).await {
            Ok(batch) if batch.is_empty() => false,
            Ok(batch) => {
                let full = batch.len() as i64 == INBOX_BATCH;
                let renewal = tokio::spawn(renew_lease(services.clone(), batch.lease()));
                let report = services.process_stripe_batch(batch).await;
                renewal.abort();
                tracing::debug!(
                    claimed = report.claimed,
                    done = report.done,
                    retried = report.retried,
                    failed = report.failed,
                    skipped = report.skipped,
                    waiting = report.waiting,
                    errors = report.errors,
                    released = report.released,
                    "processed stripe events"
                );
                full && report.errors == 0
            }
            Err(e) => {
                tracing::warn!(error.cause = %e, "claiming stripe events failed");
                false
            }
        };
        if housekeeping && tokio::time::Instant::now() >= housekeeping_due {
            if let Err(e) = services.approve_due_conversions(500).await {
                tracing::warn!(error.cause = %e, "conversion approval pass failed");
            }
            match services.wake_due_stripe_events(500).await {
                Ok(0) => {}
                Ok(woken) => tracing::info!(woken, "waiting stripe events due for a recheck"),
                Err(e) => tracing::warn!(error.cause = %e, "waking waiting stripe events failed"),
            }
            housekeeping_due = tokio::time::Instant::now() + Duration::from_secs(60);
        }
        if !busy {
            tokio::time::sleep(every).await;
        }
    }
}

/// Renews the lease of a batch's unfinished events until aborted.
async fn renew_lease(services: Services, lease: rekomi_domain::usecases::InboxLease) {
    let every = Duration::try_from(rekomi_domain::usecases::INBOX_LEASE_RENEWAL).unwrap_or(Duration::from_secs(5));
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = services.renew_stripe_lease(&lease).await {
            tracing::warn!(error.cause = %e, "renewing the lease of stripe events failed");
        }
    }
}

/// Outbound webhook deliveries claimed per worker pass.
const DELIVERY_BATCH: usize = 20;
/// Delivery workers per process: each sends its batch one delivery at a time, so several keep
/// one slow receiver from holding up everyone else's deliveries.
const DELIVERY_WORKERS: usize = 4;

/// Sends due outbound webhook deliveries. Several workers and server processes may run it at
/// once: deliveries are claimed under a lease with `FOR UPDATE SKIP LOCKED`, so none is sent
/// by two of them at the same time. A full batch is followed at once by the next one.
async fn delivery_loop(services: Services, every: Duration) {
    loop {
        let busy = match services.deliver_due_webhooks(DELIVERY_BATCH).await {
            Ok(report) => {
                if report.claimed > 0 {
                    tracing::debug!(
                        claimed = report.claimed,
                        delivered = report.delivered,
                        retrying = report.retrying,
                        failed = report.failed,
                        skipped = report.skipped,
                        "sent webhook deliveries"
                    );
                }
                if report.endpoints_disabled > 0 {
                    tracing::warn!(endpoints = report.endpoints_disabled, "disabled webhook endpoints after persistent failure");
                }
                report.claimed == DELIVERY_BATCH
            }
            Err(e) => {
                tracing::warn!(error.cause = %e, "webhook delivery pass failed");
                false
            }
        };
        if !busy {
            tokio::time::sleep(every).await;
        }
    }
}
