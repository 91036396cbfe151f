//! Wiring: the only crate that knows every other one. Builds the adapters from
//! configuration, hands them to the use cases, starts the HTTP server and the background
//! reconciler. No business rules live here.

pub mod config;
pub mod metrics;
pub mod runner;
pub mod system;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rekomi_domain::outbound::WebhookDeliveries;
use rekomi_domain::payouts::PayoutRail;
use rekomi_domain::ports::gateway::PaymentGateway;
use rekomi_domain::services::Services;
use rekomi_domain::stripe_inbox::StripeInbox;
use rekomi_domain::traffic::{ClickTracker, TrackerConfig};
use rekomi_http::client_ip::ClientIpPolicy;
use rekomi_http::ratelimit::RateLimiter;
use rekomi_http::AppState;
use rekomi_postgres::{ClickFlusher, PgClickSink, PgStore, SinkConfig};
use rekomi_stripe::{OfflineGateway, OfflinePayoutRail, StripeConfig, StripeEventDecoder, StripeGateway, StripePayoutRail};
use rekomi_webhooks::HttpWebhookSender;

pub use config::Config;
use system::{OsEntropy, SystemClock};

/// The address `listener` is bound to, as a URL authority (`127.0.0.1:8080`).
fn listener_address(listener: &TcpListener) -> String {
    listener.local_addr().map_or_else(|_| "127.0.0.1:8080".to_owned(), |a| a.to_string())
}

/// The Stripe client configuration of `config`, when a secret key is set.
fn stripe_config(config: &Config) -> Option<StripeConfig> {
    config.stripe_secret_key.as_ref().map(|key| {
        let mut stripe = StripeConfig::new(key.clone());
        if let Some(base) = &config.stripe_api_base {
            stripe.api_base = base.clone();
        }
        stripe
    })
}

/// Builds the payment gateway: Stripe when a secret is configured, otherwise the offline
/// gateway of local mode.
///
/// # Errors
/// When the Stripe configuration is invalid.
pub fn gateway(config: &Config) -> anyhow::Result<Arc<dyn PaymentGateway>> {
    match stripe_config(config) {
        Some(stripe) => Ok(Arc::new(StripeGateway::new(stripe).map_err(|e| anyhow::anyhow!(e.to_string()))?)),
        None => {
            tracing::warn!(
                "LOCAL MODE: REKOMI_STRIPE_SECRET_KEY is not set. Coupons and promotion codes get offline \
                 Stripe-like ids and nothing is sent to Stripe. Set the secret to use a real Stripe account."
            );
            Ok(Arc::new(OfflineGateway::new()))
        }
    }
}

/// Builds the payout rail: Stripe Connect on the installation's own account when a secret is
/// configured, otherwise local mode's offline rail (accounts ready at once, transfers recorded
/// in memory, nothing sent).
///
/// # Errors
/// When the Stripe configuration is invalid.
pub fn payout_rail(config: &Config) -> anyhow::Result<Arc<dyn PayoutRail>> {
    match stripe_config(config) {
        Some(stripe) => Ok(Arc::new(StripePayoutRail::new(stripe).map_err(|e| anyhow::anyhow!(e.to_string()))?)),
        None => Ok(Arc::new(OfflinePayoutRail::new())),
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
    services_over(config, store(config)?)
}

/// The PostgreSQL store of `config`.
///
/// # Errors
/// When the pool cannot be built.
pub fn store(config: &Config) -> anyhow::Result<PgStore> {
    PgStore::connect(&config.database_url, config.db_pool_size).map_err(|e| anyhow::anyhow!("database: {e}"))
}

/// The use cases over `store` and the configured gateway.
///
/// # Errors
/// When the gateway or the webhook sender cannot be built.
pub fn services_over(config: &Config, store: PgStore) -> anyhow::Result<Services> {
    Ok(Services {
        store: Arc::new(store),
        gateway: gateway(config)?,
        payout_rail: payout_rail(config)?,
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
    store: PgStore,
    reconcile_interval: Option<Duration>,
    payout_reconcile_after: time::Duration,
    inbox_interval: Option<Duration>,
    inbox_workers: usize,
    delivery_interval: Option<Duration>,
    click_flusher: ClickFlusher,
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
        let store = store(config)?;
        let services = services_over(config, store.clone())?;
        let listener = TcpListener::bind(&config.bind).with_context(|| format!("binding {}", config.bind))?;
        let port = listener.local_addr()?.port();
        let mut state = AppState::new(services.clone(), config.jwt_secret.clone(), config.stripe_webhook_secrets.clone());
        // The Stripe key's mode decides which events count: a live key ignores test events.
        state.stripe_livemode = config.stripe_secret_key.as_deref().map(|k| k.starts_with("sk_live_") || k.starts_with("rk_live_"));
        state.auth.max_token_ttl = config.jwt_max_ttl_secs;
        state.client_ip = ClientIpPolicy { header: config.client_ip_header.clone(), trusted_proxies: config.trusted_proxies.clone() };
        state.tracking.country_header = config.country_header.clone();
        state.public_url = Arc::from(config.public_url.clone().unwrap_or_else(|| format!("http://{}", listener_address(&listener))));
        state.tracking.limiter = (config.tracking_limit_per_minute > 0).then(|| RateLimiter::per_minute(config.tracking_limit_per_minute));
        state.s2s_limiter = (config.s2s_limit_per_minute > 0).then(|| RateLimiter::per_minute(config.s2s_limit_per_minute));
        let sink_config = SinkConfig {
            capacity: config.click_buffer.max(1),
            interval: Duration::from_millis(config.click_flush_ms),
            ..SinkConfig::default()
        };
        let (sink, click_flusher) = PgClickSink::start(store.clone(), sink_config);
        state.clicks = Some(Arc::new(ClickTracker::new(services.clone(), sink, TrackerConfig::default())));
        let recorder = metrics::handle();
        state.metrics = Some(Arc::new(move || recorder.render()));
        state.metrics_token = config.metrics_token.clone().map(Arc::from);
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
            store,
            reconcile_interval,
            payout_reconcile_after: time::Duration::seconds(i64::try_from(config.payout_reconcile_after_secs).unwrap_or(i64::MAX)),
            inbox_interval,
            inbox_workers: config.inbox_workers.max(1),
            delivery_interval,
            click_flusher,
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
            let payouts_after = self.payout_reconcile_after;
            tokio::spawn(async move { reconcile_loop(services, every, payouts_after).await });
        }
        let inbox = Arc::new(StripeInbox(self.services.clone()));
        let deliveries = Arc::new(WebhookDeliveries(self.services.clone()));
        let probes = vec![
            metrics::queue_probe(Arc::clone(&inbox)),
            metrics::queue_probe(Arc::clone(&deliveries)),
            metrics::pool_probe(self.store.clone()),
        ];
        tokio::spawn(metrics::sample(probes, METRICS_SAMPLE_INTERVAL));
        if let Some(every) = self.inbox_interval {
            // Several workers per process: each waits on the database most of the time, and
            // claims (FOR UPDATE SKIP LOCKED) keep them from taking the same event.
            for _ in 0..self.inbox_workers {
                tokio::spawn(runner::run_queue(Arc::clone(&inbox), every));
            }
            tokio::spawn(housekeeping_loop(self.services.clone()));
        }
        if let Some(every) = self.delivery_interval {
            // Each worker sends its batch one delivery at a time, so several keep one slow
            // receiver from holding up everyone else's deliveries.
            for _ in 0..DELIVERY_WORKERS {
                tokio::spawn(runner::run_queue(Arc::clone(&deliveries), every));
            }
        }
        let served = self.server.await.context("http server");
        // The server has stopped taking requests (a graceful stop finishes those in flight
        // first): write every click still buffered.
        self.click_flusher.flush_and_stop().await;
        served
    }
}

/// Finishes Stripe provisioning that a crash or outage interrupted, and settles payouts whose
/// transfer outcome was not known once they are `payouts_after` old. Several server processes
/// may run it at once: each reservation and each transfer attempt is keyed by its own
/// idempotency key, so duplicates resolve to the same Stripe object and are recorded once.
async fn reconcile_loop(services: Services, every: Duration, payouts_after: time::Duration) {
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
        match services.reconcile_payouts(100, payouts_after).await {
            Ok(0) => {}
            Ok(looked_at) => tracing::info!(looked_at, "reconciled payouts left processing"),
            Err(e) => tracing::warn!(error.cause = %e, "payout reconciliation pass failed"),
        }
    }
}

/// How often queue depths (and pool use) are sampled for `/metrics`.
const METRICS_SAMPLE_INTERVAL: Duration = Duration::from_secs(10);

/// Delivery workers per process.
const DELIVERY_WORKERS: usize = 4;

/// Every minute: approves conversions whose grace period has passed, and makes waiting refunds
/// due for their recheck; once a day (UTC, from 00:15), pays the `Cpc` programs' clicks of the
/// day before.
/// Several processes may run it at once: all are idempotent (row updates, claimed rewards).
async fn housekeeping_loop(services: Services) {
    let mut ticker = tokio::time::interval(Duration::from_secs(60));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rewarded_on: Option<time::Date> = None;
    loop {
        ticker.tick().await;
        let today = time::OffsetDateTime::now_utc().date();
        if rewarded_on != Some(today) {
            match services.aggregate_yesterdays_click_rewards().await {
                Ok(None) => {}
                Ok(Some(recorded)) => {
                    rewarded_on = Some(today);
                    if recorded > 0 {
                        tracing::info!(recorded, "daily click rewards recorded");
                    }
                }
                Err(e) => tracing::warn!(error.cause = %e, "daily click rewards failed; retried next minute"),
            }
        }
        if let Err(e) = services.approve_due_conversions(500).await {
            tracing::warn!(error.cause = %e, "conversion approval pass failed");
        }
        match services.wake_due_stripe_events(500).await {
            Ok(0) => {}
            Ok(woken) => tracing::info!(woken, "waiting stripe events due for a recheck"),
            Err(e) => tracing::warn!(error.cause = %e, "waking waiting stripe events failed"),
        }
    }
}
