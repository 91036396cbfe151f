//! Test data of the storage contract suite, shared by every capability's contract: entities
//! built with every optional field set (so round trips cover every column), fixed timestamps,
//! and ids from small integers (`Uuid::from_u128`), which sort as the integers do, so a larger
//! number is a newer row. [`Seed`] inserts a set of rows in dependency order.

use rekomi_domain::affiliates::{Affiliate, AffiliateLink, AffiliateSource, AffiliateStatus, Email, LinkFormat};
use rekomi_domain::audit::{program_snapshot, AuditAction, AuditEntry};
use rekomi_domain::conversions::{Conversion, ConversionStatus, ConversionType, LedgerEvent, LedgerKind};
use rekomi_domain::coupons::{AffiliateCoupon, CampaignCoupon, CodeRestrictions, CouponCode, CouponDuration, DiscountSpec};
use rekomi_domain::kernel::actor::AuditActor;
use rekomi_domain::kernel::money::{Currency, Money};
use rekomi_domain::kernel::plan::{PlanTier, SubscriptionStatus};
use rekomi_domain::orgs::{hash_api_key, ApiKey, ApiKeyScope, Handle, Organization};
use rekomi_domain::outbound::{Delivery, DeliveryStatus, EndpointStatus, EventType, OutboxEvent, WebhookEndpoint};
use rekomi_domain::ports::store::{transact, StoreError, Tx, UnitOfWork};
use rekomi_domain::programs::{
    AttributionModel, Commission, CommissionModel, CommissionType, Hundredths, NetworkVisibility, Program, ProgramSlug,
};
use rekomi_domain::stripe_inbox::{InboxEvent, InboxStatus};
use rekomi_domain::traffic::{Click, ClickId, DeviceClass};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The instant every fixture is created at (whole seconds: PostgreSQL keeps microseconds).
pub const T0: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

/// The id numbered `n`.
pub fn id<T: From<Uuid>>(n: u128) -> T {
    T::from(Uuid::from_u128(n))
}

/// A Stripe id of the type the call site needs (`stripe_id::<StripeInvoiceId>("in_1")`); the
/// test's own text, so it panics on a typo.
pub fn stripe_id<T: std::str::FromStr>(raw: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    raw.parse().unwrap_or_else(|e| panic!("{raw:?} is no such Stripe id: {e:?}"))
}

/// A supported currency.
pub fn currency(code: &str) -> Currency {
    Currency::parse(code).unwrap()
}

/// An organization numbered `n`.
pub fn org(n: u128, handle: &str) -> Organization {
    Organization {
        id: id(n),
        name: format!("{handle} Inc."),
        handle: Handle::parse(handle).unwrap(),
        billing_email: Some(format!("billing@{handle}.test")),
        timezone: "Europe/Paris".to_owned(),
        plan_tier: PlanTier::Growth,
        subscription_status: SubscriptionStatus::Trialing,
        trial_ends_at: Some(T0 + Duration::days(14)),
        home_currency: currency("EUR"),
        payout_grace_days: 14,
        minimum_payout_minor: 0,
        home_currency_changed_at: None,
        stripe_account_id: Some(stripe_id(&format!("acct_{n}"))),
        created_at: T0,
    }
}

/// An unrevoked read-write key of `org` whose secret is `secret`.
pub fn api_key(org: &Organization, n: u128, secret: &str) -> ApiKey {
    ApiKey {
        id: id(n),
        org_id: org.id,
        scope: ApiKeyScope::ReadWrite,
        prefix: secret.chars().take(12).collect(),
        hash: hash_api_key(secret),
        created_at: T0,
        revoked_at: None,
    }
}

/// An active program of `org`.
pub fn program(org: &Organization, n: u128, slug: &str) -> Program {
    Program {
        id: id(n),
        org_id: org.id,
        name: format!("Program {slug}"),
        slug: ProgramSlug::parse(slug).unwrap(),
        description: Some("Earn on every sale you refer.".to_owned()),
        terms_url: Some("https://brand.test/terms".to_owned()),
        is_active: true,
        default_commission: Commission::new(CommissionType::Percentage, Hundredths::new(20_50), "v").unwrap(),
        default_commission_model: CommissionModel::Cps,
        cookie_window_days: 30,
        recurring_months: Some(12),
        recurring_delay_invoices: 1,
        attribution_model: AttributionModel::LastTouch,
        auto_approve: false,
        custom_domain: None,
        custom_domain_verified: false,
        network_visibility: NetworkVisibility::Private,
        is_publicly_discoverable: true,
        created_at: T0,
        updated_at: T0,
        archived_at: None,
        landing_url: None,
    }
}

/// An approved, unlinked affiliate of `program`.
pub fn affiliate(program: &Program, n: u128, email: &str) -> Affiliate {
    Affiliate {
        id: id(n),
        org_id: program.org_id,
        program_id: program.id,
        email: Email::parse("email", email).unwrap(),
        full_name: Some("Jane Doe".to_owned()),
        status: AffiliateStatus::Approved,
        custom_commission: Some(Commission::new(CommissionType::Fixed, Hundredths::new(5_00), "v").unwrap()),
        tags: vec!["youtube".to_owned(), "vip".to_owned()],
        notes: Some("met at the summit".to_owned()),
        source: AffiliateSource::Invite,
        user_id: None,
        rejection_reason: None,
        applied_at: T0 - Duration::days(2),
        approved_at: Some(T0 - Duration::days(1)),
        created_at: T0,
        updated_at: T0,
    }
}

/// A link of `affiliate`.
pub fn link(affiliate: &Affiliate, n: u128, slug: &str, is_default: bool) -> AffiliateLink {
    AffiliateLink {
        id: id(n),
        org_id: affiliate.org_id,
        affiliate_id: affiliate.id,
        slug: slug.to_owned(),
        custom_alias: (!is_default).then(|| slug.to_owned()),
        is_default,
        format: LinkFormat::Query,
        created_at: T0,
    }
}

/// A 20 % campaign coupon of `program`; `stripe_coupon_id` `None` is a provisioning row.
pub fn campaign_coupon(program: &Program, n: u128, stripe_coupon_id: Option<&str>) -> CampaignCoupon {
    CampaignCoupon {
        id: id(n),
        org_id: program.org_id,
        program_id: program.id,
        name: format!("Spring {n}"),
        discount: DiscountSpec::PercentOff(20),
        duration: CouponDuration::Repeating(3),
        max_redemptions_per_code: Some(100),
        expires_at: Some(T0 + Duration::days(90)),
        allow_affiliate_self_mint: true,
        overrides_click_attribution: false,
        is_active: true,
        stripe_coupon_id: stripe_coupon_id.map(stripe_id),
        created_at: T0,
        updated_at: T0,
        archived_at: None,
    }
}

/// A code of `affiliate` under `coupon`; `promotion_code_id` `None` is a provisioning row.
pub fn affiliate_coupon(
    affiliate: &Affiliate,
    coupon: &CampaignCoupon,
    n: u128,
    code: &str,
    promotion_code_id: Option<&str>,
) -> AffiliateCoupon {
    AffiliateCoupon {
        id: id(n),
        org_id: affiliate.org_id,
        program_id: affiliate.program_id,
        affiliate_id: affiliate.id,
        campaign_coupon_id: coupon.id,
        code: CouponCode::parse(code).unwrap(),
        stripe_promotion_code_id: promotion_code_id.map(stripe_id),
        is_active: true,
        max_redemptions: Some(10),
        expires_at: Some(T0 + Duration::days(30)),
        restrictions: CodeRestrictions {
            first_time_order: true,
            minimum_amount: Some(Money::new(50_00, currency("USD"))),
            limit_to_customers: true,
            customer_id: Some(stripe_id("cus_123")),
            limit_to_affiliate: false,
        },
        times_redeemed: 0,
        last_redeemed_at: None,
        is_auto_generated: false,
        self_minted: false,
        created_at: T0,
        updated_at: T0,
        revoked_at: None,
    }
}

/// An audit entry of `org` recording `action` on `program`.
pub fn audit(org: &Organization, n: u128, actor: AuditActor, action: &str, program: &Program) -> AuditEntry {
    AuditEntry {
        id: id(n),
        org_id: org.id,
        actor,
        action: AuditAction::parse(action).unwrap_or_else(|| panic!("{action} is no audit action")),
        entity_type: "program",
        entity_id: program.id.to_string(),
        before: None,
        after: Some(program_snapshot(program)),
        created_at: T0,
    }
}

/// A pending recurring sale of `affiliate`, numbered `n`: customer `cus_{n}`, subscription
/// `sub_{n}`, first invoice `in_{n}`, email `buyer{n}@shop.test`, created at `T0`.
pub fn conversion(affiliate: &Affiliate, n: u128) -> Conversion {
    Conversion {
        id: id(n),
        org_id: affiliate.org_id,
        program_id: affiliate.program_id,
        affiliate_id: affiliate.id,
        kind: ConversionType::Recurring,
        status: ConversionStatus::Pending,
        amount_minor: 49_00,
        currency: currency("USD"),
        commission_minor: 9_80,
        attribution_method: Some("metadata_or_customer".to_owned()),
        coupon_code: None,
        affiliate_coupon_id: None,
        stripe_customer_id: Some(stripe_id(&format!("cus_{n}"))),
        stripe_subscription_id: Some(stripe_id(&format!("sub_{n}"))),
        external_event_id: Some(format!("in_{n}")),
        customer_email: Some(format!("buyer{n}@shop.test")),
        denial_reason: None,
        parent_conversion_id: None,
        click_id: None,
        attribution_trace: serde_json::json!({
            "signals": [{ "kind": "metadata", "affiliate": affiliate.id.to_string() }, { "kind": "customer", "value": null }],
            "decided_by": "metadata_or_customer",
            "cookie_age_days": 3,
            "nested": { "ok": true, "weight": 0.5 },
        }),
        paid_invoices: 1,
        approve_after: T0 + Duration::days(30),
        approved_at: None,
        refunded_at: None,
        created_at: T0,
        updated_at: T0,
    }
}

/// The override `recruiter` earned on `parent` (no amount, no customer data of its own).
pub fn override_of(parent: &Conversion, recruiter: &Affiliate, n: u128) -> Conversion {
    Conversion {
        id: id(n),
        affiliate_id: recruiter.id,
        program_id: recruiter.program_id,
        amount_minor: 0,
        commission_minor: 98,
        attribution_method: Some("sub_affiliate_override".to_owned()),
        parent_conversion_id: Some(parent.id),
        click_id: None,
        attribution_trace: serde_json::json!({ "override_of": parent.id.to_string() }),
        ..parent.clone()
    }
}

/// A ledger entry of `conversion` for `invoice`.
pub fn ledger_event(conversion: &Conversion, n: u128, kind: LedgerKind, invoice: Option<&str>, occurred_at: OffsetDateTime) -> LedgerEvent {
    let refund = kind == LedgerKind::Refund;
    LedgerEvent {
        id: id(n),
        org_id: conversion.org_id,
        conversion_id: conversion.id,
        affiliate_id: conversion.affiliate_id,
        currency: conversion.currency,
        kind,
        amount_minor: if refund { -20_00 } else { 49_00 },
        commission_minor: if refund { -4_00 } else { 9_80 },
        stripe_invoice_id: invoice.map(stripe_id),
        refunded_total: refund.then_some(20_00),
        occurred_at,
        payable_after: occurred_at + Duration::days(30),
        home_currency: conversion.currency,
        fx: Some((rekomi_domain::fx::FxRate::ONE, rekomi_domain::fx::FxSource::Identity)),
        created_at: occurred_at + Duration::seconds(5),
    }
}

/// A pending, due, unheld `invoice.paid` event `evt_{n}` of `org` (`None`: not resolved yet).
pub fn inbox_event(n: u128, org: Option<&Organization>, received_at: OffsetDateTime) -> InboxEvent {
    InboxEvent {
        id: stripe_id(&format!("evt_{n}")),
        org_id: org.map(|o| o.id),
        account: org.and_then(|o| o.stripe_account_id.clone()),
        event_type: "invoice.paid".to_owned(),
        payload: format!(r#"{{"id":"evt_{n}","type":"invoice.paid","data":{{"object":{{"id":"in_{n}"}}}}}}"#),
        status: InboxStatus::Pending,
        attempts: 0,
        next_attempt_at: received_at,
        locked_until: None,
        last_error: None,
        received_at,
        processed_at: None,
        waiting_for: None,
        replays: 0,
    }
}

/// An enabled endpoint of `org` subscribed to two event families.
pub fn endpoint(org: &Organization, n: u128) -> WebhookEndpoint {
    WebhookEndpoint {
        id: id(n),
        org_id: org.id,
        url: format!("https://hooks.{}.test/rekomi/{n}", org.handle.as_str()),
        description: Some("CRM sync".to_owned()),
        events: vec!["conversion.created".to_owned(), "affiliate_coupon.*".to_owned()],
        secret: format!("whsec_{n}"),
        status: EndpointStatus::Enabled,
        disabled_reason: None,
        consecutive_failures: 0,
        created_at: T0,
        updated_at: T0,
    }
}

/// An outbox event of `org`.
pub fn outbox_event(org: &Organization, n: u128) -> OutboxEvent {
    OutboxEvent {
        id: id(n),
        org_id: org.id,
        event_type: EventType::ConversionCreated,
        data: serde_json::json!({ "id": n.to_string(), "amount": 4900, "tags": ["a", "b"] }),
        created_at: T0,
    }
}

/// A pending, due, unheld delivery of `event` to `endpoint`, created at `created_at`.
pub fn delivery(endpoint: &WebhookEndpoint, event: &OutboxEvent, n: u128, created_at: OffsetDateTime) -> Delivery {
    Delivery {
        id: id(n),
        org_id: endpoint.org_id,
        endpoint_id: endpoint.id,
        event_id: event.id,
        event_type: event.event_type,
        body: format!(r#"{{"id":"{n}","type":"{}","data":{}}}"#, event.event_type, event.data),
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_at: created_at,
        locked_until: None,
        last_status: None,
        last_error: None,
        created_at,
        delivered_at: None,
    }
}

/// A unique mobile click on `link` at `clicked_at`, with every optional field set.
pub fn click(link: &AffiliateLink, program: &Program, n: u128, clicked_at: OffsetDateTime) -> Click {
    Click {
        id: ClickId::from_uuid(Uuid::from_u128(n)),
        org_id: link.org_id,
        program_id: program.id,
        affiliate_id: link.affiliate_id,
        link_id: link.id,
        clicked_at,
        landing_url: Some("https://brand.test/pricing?via=jane".to_owned()),
        referrer_host: "news.example".to_owned(),
        utm_source: Some("newsletter".to_owned()),
        utm_medium: Some("email".to_owned()),
        utm_campaign: Some("spring".to_owned()),
        sub_id: Some("post-42".to_owned()),
        country: Some("DE".to_owned()),
        device: DeviceClass::Mobile,
        visitor_hash: format!("{n:032x}"),
        is_unique: true,
        is_bot: false,
    }
}

/// Rows to insert, in dependency order.
#[derive(Clone, Default)]
pub struct Seed {
    /// Organizations.
    pub orgs: Vec<Organization>,
    /// API keys.
    pub api_keys: Vec<ApiKey>,
    /// Programs.
    pub programs: Vec<Program>,
    /// Affiliates.
    pub affiliates: Vec<Affiliate>,
    /// Links.
    pub links: Vec<AffiliateLink>,
    /// Campaign coupons.
    pub campaign_coupons: Vec<CampaignCoupon>,
    /// Affiliate coupons.
    pub affiliate_coupons: Vec<AffiliateCoupon>,
    /// Conversions (a parent before its overrides).
    pub conversions: Vec<Conversion>,
    /// Ledger entries.
    pub ledger: Vec<LedgerEvent>,
    /// Inbound events.
    pub inbox: Vec<InboxEvent>,
    /// Webhook endpoints.
    pub endpoints: Vec<WebhookEndpoint>,
    /// Outbox events.
    pub outbox: Vec<OutboxEvent>,
    /// Deliveries.
    pub deliveries: Vec<Delivery>,
    /// Audit entries.
    pub audit: Vec<AuditEntry>,
}

impl Seed {
    /// Inserts every row through `tx`.
    ///
    /// # Errors
    /// The first write the store refuses.
    pub fn insert(&self, tx: &mut dyn Tx) -> Result<(), StoreError> {
        self.orgs.iter().try_for_each(|r| tx.insert_org(r))?;
        self.api_keys.iter().try_for_each(|r| tx.insert_api_key(r))?;
        self.programs.iter().try_for_each(|r| tx.insert_program(r))?;
        self.affiliates.iter().try_for_each(|r| tx.insert_affiliate(r))?;
        self.links.iter().try_for_each(|r| tx.insert_link(r))?;
        self.campaign_coupons.iter().try_for_each(|r| tx.insert_campaign_coupon(r))?;
        self.affiliate_coupons.iter().try_for_each(|r| tx.insert_affiliate_coupon(r))?;
        self.conversions.iter().try_for_each(|r| tx.insert_conversion(r))?;
        self.ledger.iter().try_for_each(|r| tx.insert_ledger_event(r))?;
        for event in &self.inbox {
            if !tx.insert_inbox_event(event)? {
                panic!("seeding: inbox event {} was already stored", event.id);
            }
        }
        self.endpoints.iter().try_for_each(|r| tx.insert_endpoint(r))?;
        self.outbox.iter().try_for_each(|r| tx.insert_outbox_event(r))?;
        self.deliveries.iter().try_for_each(|r| tx.insert_delivery(r))?;
        self.audit.iter().try_for_each(|r| tx.append_audit(r))
    }
}

/// Inserts `seed` in one committed transaction.
pub async fn seed(store: &dyn UnitOfWork, seed: Seed) {
    let result = transact(store, move |tx| seed.insert(tx)).await;
    if let Err(e) = result {
        panic!("seeding failed: {e:?}");
    }
}
