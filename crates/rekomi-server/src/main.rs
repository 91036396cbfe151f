//! `rekomi-server serve | migrate | admin …`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use rekomi_domain::kernel::actor::Role;
use rekomi_domain::kernel::ids::OrgId;
use rekomi_domain::kernel::plan::PlanTier;
use rekomi_domain::kernel::stripe_ids::{StripeAccountId, StripeEventId};
use rekomi_domain::orgs::NewOrganization;
use rekomi_domain::orgs::{ApiKeyScope, Handle};
use rekomi_server::{Application, Config};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "rekomi-server", version, about = "Rekomi: open-source affiliate-program backend")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (and background work).
    Serve {
        /// Apply pending migrations first (same as REKOMI_MIGRATE_ON_START=true).
        #[arg(long)]
        migrate: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document the server serves at /api/v1/openapi.json (no database
    /// needed); CI compares it with docs/openapi.json.
    Openapi,
    /// Administrative commands; they print JSON on stdout.
    Admin {
        #[command(subcommand)]
        command: Admin,
    },
}

#[derive(Subcommand)]
enum Admin {
    /// Create an organization with a read_write API key.
    CreateOrg {
        #[arg(long)]
        name: String,
        #[arg(long)]
        handle: String,
        /// trial | starter | growth | pro
        #[arg(long)]
        plan: String,
    },
    /// Create an API key for an organization.
    CreateApiKey {
        #[arg(long)]
        org: String,
        /// read | read_write
        #[arg(long)]
        scope: String,
    },
    /// Issue (or rotate) an organization's rks_ signing secret for server-to-server tracking and
    /// print it, once. A secret it replaces keeps verifying for 24 hours.
    CreateTrackingSecret {
        #[arg(long)]
        org: String,
    },
    /// Link an organization to its Stripe Connect account (Stripe calls then carry
    /// `Stripe-Account`), or unlink it with --unlink.
    LinkStripeAccount {
        #[arg(long)]
        org: String,
        /// acct_…
        #[arg(long, required_unless_present = "unlink")]
        account: Option<String>,
        #[arg(long)]
        unlink: bool,
    },
    /// List inbound Stripe events of every organization (newest first).
    StripeEvents {
        /// Pending | Done | Failed | Skipped | Waiting
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Queue one inbound Stripe event for processing again.
    ReplayStripeEvent {
        /// evt_…
        #[arg(long)]
        id: String,
    },
    /// Sign a dashboard JWT with REKOMI_JWT_SECRET (local development and operations).
    DashboardToken {
        #[arg(long)]
        org: String,
        /// The user id (`sub`).
        #[arg(long)]
        sub: String,
        /// Owner | Manager | Viewer
        #[arg(long, default_value = "Owner")]
        role: String,
        #[arg(long, default_value_t = 3600)]
        ttl_secs: i64,
    },
    /// Exchange rates: `admin fx import FILE` loads an ECB euro reference-rate CSV.
    Fx {
        #[command(subcommand)]
        command: FxCommand,
    },
    /// Settle payouts left Processing (transfers whose outcome was not known) now, instead of
    /// waiting for the server's reconciler.
    ReconcilePayouts {
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Only payouts untouched for this long (a run may still be recording the others).
        #[arg(long, default_value_t = 60)]
        older_than_secs: i64,
    },
    /// Sign an affiliate JWT (`aud` = affiliate) with REKOMI_JWT_SECRET.
    AffiliateToken {
        /// The affiliate's user id (`sub`).
        #[arg(long)]
        sub: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value_t = 3600)]
        ttl_secs: i64,
    },
}

#[derive(Subcommand)]
enum FxCommand {
    /// Load an ECB reference-rate CSV (`eurofxref-hist.csv` or the daily `eurofxref.csv`);
    /// rates already stored for the same currency and day are replaced.
    Import {
        /// The CSV file.
        file: std::path::PathBuf,
    },
}

fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("REKOMI_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Openapi = cli.command {
        let document: serde_json::Value = serde_json::from_str(&rekomi_http::openapi::document())?;
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(());
    }
    init_tracing();
    if let Command::Admin { command } = cli.command {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        return runtime.block_on(admin(command));
    }
    let mut config = Config::from_env()?;
    tracing::debug!(?config, "configuration");
    match cli.command {
        Command::Migrate => {
            let applied = rekomi_postgres::run_migrations(&config.database_url)?;
            println!("{}", serde_json::json!({ "applied": applied }));
            Ok(())
        }
        Command::Serve { migrate } => {
            config.migrate_on_start |= migrate;
            actix_web::rt::System::new().block_on(async move {
                let app = Application::build(&config)?;
                tracing::info!(bind = %config.bind, port = app.port(), "rekomi-server listening");
                app.run_until_stopped().await
            })
        }
        Command::Admin { .. } | Command::Openapi => Ok(()),
    }
}

/// Token commands need only the signing secret, not a database.
fn jwt_secret() -> anyhow::Result<String> {
    std::env::var("REKOMI_JWT_SECRET")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .context("REKOMI_JWT_SECRET is not set: tokens are signed with it")
}

/// Refuses a lifetime the server would refuse (`REKOMI_JWT_MAX_TTL`).
fn checked_ttl(ttl_secs: i64) -> anyhow::Result<i64> {
    let max = rekomi_server::config::jwt_max_ttl()?;
    anyhow::ensure!(ttl_secs > 0 && ttl_secs <= max, "--ttl-secs must be from 1 to {max} (REKOMI_JWT_MAX_TTL)");
    Ok(ttl_secs)
}

/// A Stripe id given on the command line: the id type's rules, in Stripe's own alphabet
/// (letters, digits, `_`), as every id Stripe makes is.
fn stripe_id<T: std::str::FromStr<Err = rekomi_domain::kernel::stripe_ids::InvalidStripeId> + ToString>(raw: &str) -> anyhow::Result<T> {
    let id: T = raw.parse()?;
    anyhow::ensure!(id.to_string().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "only letters, digits and `_` are allowed");
    Ok(id)
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn admin(command: Admin) -> anyhow::Result<()> {
    let output = match command {
        Admin::CreateOrg { name, handle, plan } => {
            let plan: PlanTier = plan.parse().map_err(|_| anyhow::anyhow!("--plan must be trial, starter, growth or pro"))?;
            let handle = Handle::parse(&handle).map_err(|e| anyhow::anyhow!("--handle: {}", e.message))?;
            let services = rekomi_server::services(&Config::from_env()?)?;
            let (org, key) =
                services.create_organization(NewOrganization { name, handle, plan }).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            serde_json::json!({ "organizationId": org.id.to_string(), "apiKey": key.expose() })
        }
        Admin::CreateApiKey { org, scope } => {
            let org: OrgId = org.parse().context("--org must be an organization id (UUID)")?;
            let scope = ApiKeyScope::parse(&scope).map_err(|_| anyhow::anyhow!("--scope must be read or read_write"))?;
            let services = rekomi_server::services(&Config::from_env()?)?;
            let key = services.create_api_key(org, scope).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            serde_json::json!({ "apiKey": key.expose() })
        }
        Admin::CreateTrackingSecret { org } => {
            let org: OrgId = org.parse().context("--org must be an organization id (UUID)")?;
            let services = rekomi_server::services(&Config::from_env()?)?;
            let issued = services.create_tracking_secret(org).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            serde_json::json!({
                "trackingSecret": issued.record.secret.expose(),
                "prefix": issued.record.secret.display_prefix(),
                "previousExpiresAt": issued.previous.and_then(|p| p.expires_at).map(|t| t.unix_timestamp()),
            })
        }
        Admin::LinkStripeAccount { org, account, unlink } => {
            let org: OrgId = org.parse().context("--org must be an organization id (UUID)")?;
            let account = if unlink { None } else { account };
            let account = account
                .map(|a| {
                    stripe_id::<StripeAccountId>(&a).map_err(|e| anyhow::anyhow!("--account must be a Stripe account id (acct_…): {e}"))
                })
                .transpose()?;
            let services = rekomi_server::services(&Config::from_env()?)?;
            services.link_stripe_account(org, account.clone()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            serde_json::json!({ "organizationId": org.to_string(), "stripeAccountId": account.as_ref().map(StripeAccountId::as_str) })
        }
        Admin::StripeEvents { status, limit } => {
            let status = status
                .map(|s| {
                    rekomi_domain::stripe_inbox::InboxStatus::parse(&s)
                        .ok_or_else(|| anyhow::anyhow!("--status must be Pending, Done, Failed or Skipped"))
                })
                .transpose()?;
            let services = rekomi_server::services(&Config::from_env()?)?;
            let events = services.list_all_stripe_events(status, limit.clamp(1, 1000)).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            serde_json::Value::Array(
                events
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "id": e.id.as_str(), "type": e.event_type, "account": e.account.as_ref().map(StripeAccountId::as_str),
                            "organizationId": e.org_id.map(|o| o.to_string()),
                            "status": e.status.as_str(), "attempts": e.attempts, "lastError": e.last_error,
                            "receivedAt": e.received_at.unix_timestamp(),
                        })
                    })
                    .collect(),
            )
        }
        Admin::ReplayStripeEvent { id } => {
            let id = stripe_id::<StripeEventId>(&id).map_err(|e| anyhow::anyhow!("--id must be a Stripe event id (evt_…): {e}"))?;
            let services = rekomi_server::services(&Config::from_env()?)?;
            let event = services.replay_any_stripe_event(id).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            serde_json::json!({ "id": event.id.as_str(), "status": event.status.as_str() })
        }
        Admin::DashboardToken { org, sub, role, ttl_secs } => {
            let org: OrgId = org.parse().context("--org must be an organization id (UUID)")?;
            let role: Role = role.parse().map_err(|_| anyhow::anyhow!("--role must be Owner, Manager or Viewer"))?;
            let token = rekomi_http::auth::issue_dashboard_token(&jwt_secret()?, org, &sub, role, now_unix(), checked_ttl(ttl_secs)?)?;
            serde_json::json!({ "token": token })
        }
        Admin::Fx { command: FxCommand::Import { file } } => {
            let csv = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let services = rekomi_server::services(&Config::from_env()?)?;
            let import = services.import_fx_rates(&csv).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            serde_json::json!({
                "rates": import.rates,
                "firstDay": import.days.map(|(first, _)| first.to_string()),
                "lastDay": import.days.map(|(_, last)| last.to_string()),
            })
        }
        Admin::ReconcilePayouts { limit, older_than_secs } => {
            let services = rekomi_server::services(&Config::from_env()?)?;
            let after = time::Duration::seconds(older_than_secs.max(0));
            let looked_at = services.reconcile_payouts(limit.clamp(1, 10_000), after).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            serde_json::json!({ "lookedAt": looked_at })
        }
        Admin::AffiliateToken { sub, email, ttl_secs } => {
            let email = email.trim().to_lowercase();
            let token = rekomi_http::auth::issue_affiliate_token(&jwt_secret()?, &sub, &email, now_unix(), checked_ttl(ttl_secs)?)?;
            serde_json::json!({ "token": token })
        }
    };
    println!("{output}");
    Ok(())
}
