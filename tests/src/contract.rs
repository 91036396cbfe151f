//! The storage contract: one suite, written once against the storage port
//! ([`UnitOfWork`] + [`Tx`]), that every store implementation must pass — the in-memory fake
//! of `rekomi-fakes` and `PgStore` of `rekomi-postgres` alike (in the manner of arrow-rs'
//! object_store). `tests/store_contract.rs` turns each function listed in
//! [`storage_contract!`](crate::storage_contract) into one test per backend.
//!
//! Each function takes an empty store, seeds what it needs and asserts what the port's
//! documentation promises: ordering (newest first by id), keyset pages (`fetch_limit()` rows
//! with `id < after`), which reads see provisioning rows (Stripe id `None`) and deleted
//! affiliates, the named unique and foreign-key constraints, tenant isolation (another
//! organization's id reads as absent), and real rollback.
//!
//! Every constraint violation is provoked in a transaction of its own: after a violation
//! PostgreSQL aborts the transaction, so nothing else can run in it.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a failed test")]

use std::fmt::Debug;

use rekomi_domain::actor::AuditActor;
use rekomi_domain::affiliate::{AffiliateStatus, Email};
use rekomi_domain::audit::{affiliate_snapshot, program_snapshot, AuditEntry};
use rekomi_domain::conversion::{Conversion, ConversionStatus, ConversionType, LedgerKind, SubAffiliateConfig};
use rekomi_domain::coupon::{CodeRestrictions, CouponCode};
use rekomi_domain::ids::AffiliateId;
use rekomi_domain::inbox::{InboxEvent, InboxStatus};
use rekomi_domain::money::Money;
use rekomi_domain::org::{hash_api_key, ApiKeyScope, OrgUsage};
use rekomi_domain::outbound::{Delivery, DeliveryStatus, EndpointStatus, OutboxEvent};
use rekomi_domain::page::{Page, PageRequest};
use rekomi_domain::plan::{PlanTier, SubscriptionStatus};
use rekomi_domain::ports::store::{constraints, AffiliateFilter, ConversionFilter, CouponSelector};
use rekomi_domain::ports::{transact, CouponDuration, DiscountSpec, StoreError, Tx, UnitOfWork};
use rekomi_domain::program::{AttributionModel, Commission, CommissionModel, CommissionType, Hundredths, NetworkVisibility, ProgramSlug};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use self::fixtures::*;

/// Calls `$callback! { name, … }` with the name of every contract function, so the list lives
/// in one place and each backend's test file generates one test per name.
#[macro_export]
macro_rules! storage_contract {
    ($callback:ident) => {
        $callback! {
            an_organization_round_trips_by_id,
            an_organization_handle_is_unique,
            an_organization_links_and_unlinks_its_stripe_account,
            an_api_key_is_found_by_its_hash_until_revoked,
            org_usage_counts_live_affiliates_and_unarchived_programs,
            a_program_round_trips_and_every_field_updates,
            a_program_slug_is_unique_per_organization_even_once_archived,
            archived_programs_stay_readable_but_leave_the_list,
            program_pages_run_newest_first_without_skips_or_repeats,
            an_affiliate_round_trips_and_every_field_updates,
            a_deleted_affiliate_disappears_and_frees_its_email,
            an_email_joins_a_program_once,
            affiliate_lists_filter_by_program_status_and_text,
            affiliate_pages_run_newest_first_without_skips_or_repeats,
            an_affiliate_side_user_owns_its_linked_rows_and_the_unlinked_rows_with_its_email,
            links_come_back_default_first_for_the_affiliates_asked,
            a_link_slug_is_unique_per_organization_regardless_of_case,
            a_campaign_coupon_round_trips_updates_and_deletes,
            provisioning_campaign_coupons_are_readable_but_not_listed,
            unprovisioned_campaign_coupons_span_organizations_and_respect_the_cutoff,
            a_campaign_coupon_with_codes_cannot_be_deleted,
            an_affiliate_coupon_round_trips_updates_and_deletes,
            a_code_is_unique_per_organization_regardless_of_case,
            the_same_code_may_live_in_two_organizations,
            an_affiliate_coupon_is_found_by_code_in_any_case_and_by_stripe_id,
            affiliate_coupons_list_by_each_selector_newest_first,
            a_campaign_coupon_has_codes_once_any_code_exists,
            unprovisioned_affiliate_coupons_span_organizations_and_respect_the_cutoff,
            audit_entries_come_back_newest_first_per_organization,
            many_rows_are_appended_in_one_write_all_or_nothing,
            a_source_is_claimed_once_per_organization,
            a_conversion_round_trips_and_every_field_updates,
            the_sale_conversion_of_a_subscription_skips_leads_and_overrides,
            a_conversion_is_found_by_invoice_through_its_ledger_or_first_event,
            overrides_come_back_for_their_parent_oldest_first,
            the_affiliate_of_a_customer_is_the_latest_credited_by_id_or_email,
            the_organizations_of_a_stripe_customer_come_most_recent_first,
            a_subscription_has_one_sale_conversion_and_an_account_one_organization,
            conversion_lists_filter_and_page_newest_first,
            conversions_due_for_approval_span_organizations_longest_due_first,
            a_ledger_comes_back_oldest_first,
            an_inbox_event_is_stored_once_and_its_processing_state_updates,
            inbox_claims_lease_events_and_count_attempts,
            inbox_events_list_by_organization_status_and_arrival,
            inbox_leases_are_renewed_and_let_go_only_while_events_are_held,
            waiting_events_wake_for_their_payment_on_their_account_or_when_due,
            the_organizations_of_a_payment_are_those_whose_ledger_records_its_sale,
            a_webhook_endpoint_round_trips_updates_and_deletes_with_its_deliveries,
            a_delivery_round_trips_updates_and_pages_newest_first,
            delivery_claims_take_only_enabled_endpoints_and_lease_them,
            delivery_leases_are_renewed_only_while_held_and_queue_depths_count_pending_work,
            a_savepoint_keeps_or_undoes_only_its_own_writes,
            a_redemption_count_never_falls_below_zero,
            an_affiliate_is_found_by_link_slug_in_any_case_unless_deleted,
            recruiters_are_recorded_and_replaced_and_recruits_listed,
            a_sub_affiliate_config_defaults_to_disabled_and_upserts,
            an_organization_is_found_by_its_stripe_account,
            some_orgs_come_oldest_first,
            stripe_ids_resolve_coupons_in_any_organization,
            no_getter_reveals_another_organizations_rows,
            no_conversion_or_webhook_getter_reveals_another_organizations_rows,
            no_write_reaches_into_another_organization,
            no_conversion_or_webhook_write_reaches_into_another_organization,
            a_row_cannot_point_into_another_organization,
            conversion_and_webhook_rows_cannot_point_into_another_organization,
            self_references_are_refused,
            a_failed_transaction_leaves_nothing_behind,
            a_conflict_rolls_back_the_writes_before_it,
            the_store_answers_pings,
        }
    };
}

/// Foreign-key constraint names of the migrations. Use cases do not branch on them (so they
/// are not in [`constraints`]), but every store reports them the same way.
pub mod foreign_keys {
    /// An affiliate's program is in the affiliate's organization.
    pub const AFFILIATE_PROGRAM: &str = "affiliates_program_fkey";
    /// A link's affiliate is in the link's organization.
    pub const LINK_AFFILIATE: &str = "affiliate_links_affiliate_fkey";
    /// A campaign coupon's program is in the coupon's organization.
    pub const CAMPAIGN_COUPON_PROGRAM: &str = "campaign_coupons_program_fkey";
    /// An affiliate coupon's affiliate is in the coupon's organization.
    pub const AFFILIATE_COUPON_AFFILIATE: &str = "affiliate_coupons_affiliate_fkey";
    /// An affiliate coupon's campaign coupon is in the coupon's organization (and a campaign
    /// coupon with codes cannot be deleted).
    pub const AFFILIATE_COUPON_CAMPAIGN_COUPON: &str = "affiliate_coupons_campaign_coupon_fkey";
    /// A conversion's program is in the conversion's organization.
    pub const CONVERSION_PROGRAM: &str = "conversions_program_fkey";
    /// A conversion's affiliate is in the conversion's organization.
    pub const CONVERSION_AFFILIATE: &str = "conversions_affiliate_fkey";
    /// A conversion's affiliate coupon is in the conversion's organization.
    pub const CONVERSION_AFFILIATE_COUPON: &str = "conversions_affiliate_coupon_fkey";
    /// An override's parent conversion is in the override's organization.
    pub const CONVERSION_PARENT: &str = "conversions_parent_fkey";
    /// A ledger entry's conversion is in the entry's organization.
    pub const LEDGER_CONVERSION: &str = "ledger_events_conversion_fkey";
    /// A delivery's endpoint is in the delivery's organization.
    pub const DELIVERY_ENDPOINT: &str = "webhook_deliveries_endpoint_fkey";
    /// A delivery's outbox event is in the delivery's organization.
    pub const DELIVERY_EVENT: &str = "webhook_deliveries_event_fkey";
    /// A recruited affiliate is in the recruitment's organization.
    pub const RECRUITMENT_AFFILIATE: &str = "affiliate_recruitments_affiliate_fkey";
    /// A recruiter is in the recruitment's organization.
    pub const RECRUITMENT_RECRUITER: &str = "affiliate_recruitments_recruiter_fkey";
    /// A sub-affiliate setting's program is in the setting's organization.
    pub const SUB_AFFILIATE_CONFIG_PROGRAM: &str = "program_sub_affiliate_configs_program_fkey";
}

/// Test data: entities built with every optional field set (so round trips cover every
/// column), fixed timestamps, and ids from small integers (`Uuid::from_u128`), which sort as
/// the integers do, so a larger number is a newer row.
pub mod fixtures {
    use rekomi_domain::actor::AuditActor;
    use rekomi_domain::affiliate::{Affiliate, AffiliateLink, AffiliateSource, AffiliateStatus, Email, LinkFormat};
    use rekomi_domain::audit::AuditEntry;
    use rekomi_domain::conversion::{Conversion, ConversionStatus, ConversionType, LedgerEvent, LedgerKind};
    use rekomi_domain::coupon::{AffiliateCoupon, CampaignCoupon, CodeRestrictions, CouponCode};
    use rekomi_domain::inbox::{InboxEvent, InboxStatus};
    use rekomi_domain::money::{Currency, Money};
    use rekomi_domain::org::{hash_api_key, ApiKey, ApiKeyScope, Handle, Organization};
    use rekomi_domain::outbound::{Delivery, DeliveryStatus, EndpointStatus, OutboxEvent, WebhookEndpoint};
    use rekomi_domain::plan::{PlanTier, SubscriptionStatus};
    use rekomi_domain::ports::{transact, CouponDuration, DiscountSpec, StoreError, Tx, UnitOfWork};
    use rekomi_domain::program::{
        AttributionModel, Commission, CommissionModel, CommissionType, Hundredths, NetworkVisibility, Program, ProgramSlug,
    };
    use time::macros::datetime;
    use time::{Duration, OffsetDateTime};
    use uuid::Uuid;

    /// The instant every fixture is created at (whole seconds: PostgreSQL keeps microseconds).
    pub const T0: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    /// The id numbered `n`.
    pub fn id<T: From<Uuid>>(n: u128) -> T {
        T::from(Uuid::from_u128(n))
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
            stripe_account_id: Some(format!("acct_{n}")),
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
            stripe_coupon_id: stripe_coupon_id.map(str::to_owned),
            created_at: T0,
            updated_at: T0,
            archived_at: None,
        }
    }

    /// A code of `affiliate` under `coupon`; `stripe_id` `None` is a provisioning row.
    pub fn affiliate_coupon(
        affiliate: &Affiliate,
        coupon: &CampaignCoupon,
        n: u128,
        code: &str,
        stripe_id: Option<&str>,
    ) -> AffiliateCoupon {
        AffiliateCoupon {
            id: id(n),
            org_id: affiliate.org_id,
            program_id: affiliate.program_id,
            affiliate_id: affiliate.id,
            campaign_coupon_id: coupon.id,
            code: CouponCode::parse(code).unwrap(),
            stripe_promotion_code_id: stripe_id.map(str::to_owned),
            is_active: true,
            max_redemptions: Some(10),
            expires_at: Some(T0 + Duration::days(30)),
            restrictions: CodeRestrictions {
                first_time_order: true,
                minimum_amount: Some(Money::new(50_00, currency("USD"))),
                limit_to_customers: true,
                customer_id: Some("cus_123".to_owned()),
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
            action: action.to_owned(),
            entity_type: "program",
            entity_id: program.id.to_string(),
            before: None,
            after: Some(rekomi_domain::audit::program_snapshot(program)),
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
            stripe_customer_id: Some(format!("cus_{n}")),
            stripe_subscription_id: Some(format!("sub_{n}")),
            external_event_id: Some(format!("in_{n}")),
            customer_email: Some(format!("buyer{n}@shop.test")),
            denial_reason: None,
            parent_conversion_id: None,
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
            attribution_trace: serde_json::json!({ "override_of": parent.id.to_string() }),
            ..parent.clone()
        }
    }

    /// A ledger entry of `conversion` for `invoice`.
    pub fn ledger_event(
        conversion: &Conversion,
        n: u128,
        kind: LedgerKind,
        invoice: Option<&str>,
        occurred_at: OffsetDateTime,
    ) -> LedgerEvent {
        let refund = kind == LedgerKind::Refund;
        LedgerEvent {
            id: id(n),
            org_id: conversion.org_id,
            conversion_id: conversion.id,
            kind,
            amount_minor: if refund { -20_00 } else { 49_00 },
            commission_minor: if refund { -4_00 } else { 9_80 },
            stripe_invoice_id: invoice.map(str::to_owned),
            refunded_total: refund.then_some(20_00),
            occurred_at,
            created_at: occurred_at + Duration::seconds(5),
        }
    }

    /// A pending, due, unheld `invoice.paid` event `evt_{n}` of `org` (`None`: not resolved yet).
    pub fn inbox_event(n: u128, org: Option<&Organization>, received_at: OffsetDateTime) -> InboxEvent {
        InboxEvent {
            id: format!("evt_{n}"),
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
            event_type: "conversion.created".to_owned(),
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
            event_type: event.event_type.clone(),
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
}

/// Runs `f` in one transaction and returns its value, failing the test if the store refuses.
async fn commit<R, F>(store: &dyn UnitOfWork, f: F) -> R
where
    R: Send + 'static,
    F: FnOnce(&mut dyn Tx) -> Result<R, StoreError> + Send + 'static,
{
    match transact(store, f).await {
        Ok(value) => value,
        Err(e) => panic!("transaction failed: {e:?}"),
    }
}

/// Runs `f` in one transaction and returns what happened.
async fn attempt<R, F>(store: &dyn UnitOfWork, f: F) -> Result<R, StoreError>
where
    R: Send + 'static,
    F: FnOnce(&mut dyn Tx) -> Result<R, StoreError> + Send + 'static,
{
    transact(store, f).await
}

#[track_caller]
fn assert_conflict<T: Debug>(result: Result<T, StoreError>, constraint: &str) {
    match result {
        Err(e) if e.is_conflict_on(constraint) => {}
        other => panic!("expected a conflict on {constraint}, got {other:?}"),
    }
}

fn uuids<T>(rows: &[T], id_of: fn(&T) -> Uuid) -> Vec<Uuid> {
    rows.iter().map(id_of).collect()
}

fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids
}

fn nums(ns: &[u128]) -> Vec<Uuid> {
    ns.iter().map(|n| Uuid::from_u128(*n)).collect()
}

fn page(take: i64, after: Option<Uuid>) -> PageRequest {
    PageRequest::parse(Some(take), after).unwrap()
}

fn program_uuid(p: &rekomi_domain::program::Program) -> Uuid {
    p.id.as_uuid()
}

fn affiliate_uuid(a: &rekomi_domain::affiliate::Affiliate) -> Uuid {
    a.id.as_uuid()
}

fn campaign_coupon_uuid(c: &rekomi_domain::coupon::CampaignCoupon) -> Uuid {
    c.id.as_uuid()
}

fn affiliate_coupon_uuid(c: &rekomi_domain::coupon::AffiliateCoupon) -> Uuid {
    c.id.as_uuid()
}

/// Reads every page of a list `take` rows at a time, checking that no call returns more than
/// `fetch_limit()` rows and that every page but the last is full; returns the pages' ids.
async fn read_pages<T, F>(store: &dyn UnitOfWork, take: i64, id_of: fn(&T) -> Uuid, fetch: F) -> Vec<Vec<Uuid>>
where
    T: Send + 'static,
    F: Fn(&mut dyn Tx, &PageRequest) -> Result<Vec<T>, StoreError> + Clone + Send + 'static,
{
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let request = page(take, after);
        let f = fetch.clone();
        let rows = commit(store, move |tx| f(tx, &request)).await;
        assert!(rows.len() as i64 <= request.fetch_limit(), "a store returned more than fetch_limit() rows");
        let got = Page::from_rows(rows, &request, id_of);
        pages.push(got.items.iter().map(id_of).collect::<Vec<_>>());
        match got.next_after {
            Some(next) => {
                assert_eq!(got.items.len() as i64, take, "only the last page may be short");
                after = Some(next);
            }
            None => break,
        }
        assert!(pages.len() < 100, "the pages never end");
    }
    pages
}

// ---------------------------------------------------------------------------------------------
// Organizations and API keys
// ---------------------------------------------------------------------------------------------

/// Every field of an organization survives storage, optional ones set or not.
pub async fn an_organization_round_trips_by_id(store: &dyn UnitOfWork) {
    let full = org(1, "acme");
    let mut bare = org(2, "bare-co");
    bare.billing_email = None;
    bare.trial_ends_at = None;
    bare.stripe_account_id = None;
    bare.plan_tier = PlanTier::Pro;
    bare.subscription_status = SubscriptionStatus::None;
    bare.home_currency = currency("JPY");
    bare.payout_grace_days = 0;
    seed(store, Seed { orgs: vec![full.clone(), bare.clone()], ..Seed::default() }).await;

    let (got_full, got_bare, missing) = commit(store, |tx| Ok((tx.org(id(1))?, tx.org(id(2))?, tx.org(id(3))?))).await;
    assert_eq!(got_full, Some(full));
    assert_eq!(got_bare, Some(bare));
    assert_eq!(missing, None);
}

/// `set_stripe_account` links and unlinks one organization and reports a missing one.
pub async fn an_organization_links_and_unlinks_its_stripe_account(store: &dyn UnitOfWork) {
    let mut acme = org(1, "acme");
    acme.stripe_account_id = None;
    let other = org(2, "globex");
    seed(store, Seed { orgs: vec![acme, other.clone()], ..Seed::default() }).await;
    assert!(commit(store, |tx| tx.set_stripe_account(id(1), Some("acct_linked"))).await);
    assert_eq!(commit(store, |tx| tx.org(id(1))).await.and_then(|o| o.stripe_account_id).as_deref(), Some("acct_linked"));
    assert_eq!(commit(store, |tx| tx.org(id(2))).await, Some(other), "another organization is untouched");
    assert!(commit(store, |tx| tx.set_stripe_account(id(1), None)).await);
    assert_eq!(commit(store, |tx| tx.org(id(1))).await.and_then(|o| o.stripe_account_id), None);
    assert!(!commit(store, |tx| tx.set_stripe_account(id(9), Some("acct_x"))).await);
}

/// Two organizations cannot share a handle.
pub async fn an_organization_handle_is_unique(store: &dyn UnitOfWork) {
    seed(store, Seed { orgs: vec![org(1, "acme")], ..Seed::default() }).await;
    let result = attempt(store, |tx| tx.insert_org(&org(2, "acme"))).await;
    assert_conflict(result, constraints::ORG_HANDLE);
    assert_eq!(commit(store, |tx| tx.org(id(2))).await, None);
}

/// `api_key_by_hash` finds a key by the hash of its secret, in any organization, and never a
/// revoked one.
pub async fn an_api_key_is_found_by_its_hash_until_revoked(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let live = api_key(&a, 700, "rk_live_live_secret");
    let mut read_only = api_key(&b, 701, "rk_live_read_only");
    read_only.scope = ApiKeyScope::Read;
    let mut revoked = api_key(&a, 702, "rk_live_revoked_secret");
    revoked.revoked_at = Some(T0 + Duration::hours(1));
    seed(store, Seed { orgs: vec![a, b], api_keys: vec![live.clone(), read_only.clone(), revoked], ..Seed::default() }).await;

    let (got_live, got_read_only, got_revoked, unknown) = commit(store, |tx| {
        Ok((
            tx.api_key_by_hash(&hash_api_key("rk_live_live_secret"))?,
            tx.api_key_by_hash(&hash_api_key("rk_live_read_only"))?,
            tx.api_key_by_hash(&hash_api_key("rk_live_revoked_secret"))?,
            tx.api_key_by_hash(&hash_api_key("rk_live_never_issued"))?,
        ))
    })
    .await;
    assert_eq!(got_live, Some(live));
    assert_eq!(got_read_only, Some(read_only));
    assert_eq!(got_revoked, None, "a revoked key authenticates nothing");
    assert_eq!(unknown, None);
}

/// The billing snapshot counts the organization's live affiliates and unarchived programs.
pub async fn org_usage_counts_live_affiliates_and_unarchived_programs(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let live = program(&a, 100, "spring");
    let mut archived = program(&a, 101, "winter");
    archived.archived_at = Some(T0);
    let elsewhere = program(&b, 102, "spring");
    seed(
        store,
        Seed {
            orgs: vec![a.clone(), b.clone()],
            programs: vec![live.clone(), archived.clone(), elsewhere.clone()],
            affiliates: vec![
                affiliate(&live, 200, "jane@creator.test"),
                affiliate(&live, 201, "bob@creator.test"),
                affiliate(&archived, 202, "ann@creator.test"),
                affiliate(&elsewhere, 203, "jane@creator.test"),
            ],
            ..Seed::default()
        },
    )
    .await;
    commit(store, |tx| tx.delete_affiliate(id(1), id(201), T0).map(drop)).await;

    let (usage_a, usage_b, usage_none) = commit(store, |tx| Ok((tx.org_usage(id(1))?, tx.org_usage(id(2))?, tx.org_usage(id(3))?))).await;
    assert_eq!(usage_a, OrgUsage { affiliates: 2, campaigns: 1 });
    assert_eq!(usage_b, OrgUsage { affiliates: 1, campaigns: 1 });
    assert_eq!(usage_none, OrgUsage { affiliates: 0, campaigns: 0 });
}

// ---------------------------------------------------------------------------------------------
// Programs
// ---------------------------------------------------------------------------------------------

/// Every field of a program survives storage, and `update_program` replaces every field.
pub async fn a_program_round_trips_and_every_field_updates(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let original = program(&a, 100, "spring");
    seed(store, Seed { orgs: vec![a], programs: vec![original.clone()], ..Seed::default() }).await;
    assert_eq!(commit(store, |tx| tx.program(id(1), id(100))).await, Some(original.clone()));

    let mut changed = original;
    changed.name = "Spring 2026".to_owned();
    changed.slug = ProgramSlug::parse("spring-2026").unwrap();
    changed.description = None;
    changed.terms_url = None;
    changed.is_active = false;
    changed.default_commission = Commission::new(CommissionType::Fixed, Hundredths::new(12_50), "v").unwrap();
    changed.default_commission_model = CommissionModel::Cpl;
    changed.cookie_window_days = 365;
    changed.recurring_months = None;
    changed.recurring_delay_invoices = 0;
    changed.attribution_model = AttributionModel::FirstTouch;
    changed.auto_approve = true;
    changed.custom_domain = Some("go.acme.test".to_owned());
    changed.custom_domain_verified = true;
    changed.network_visibility = NetworkVisibility::InviteOnly;
    changed.is_publicly_discoverable = false;
    changed.updated_at = T0 + Duration::hours(1);
    let update = changed.clone();
    commit(store, move |tx| tx.update_program(&update)).await;
    assert_eq!(commit(store, |tx| tx.program(id(1), id(100))).await, Some(changed));
}

/// A slug names one program per organization, on insert and on update, archived programs
/// included; another organization may use it.
pub async fn a_program_slug_is_unique_per_organization_even_once_archived(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let spring = program(&a, 100, "spring");
    let summer = program(&a, 101, "summer");
    seed(store, Seed { orgs: vec![a.clone(), b.clone()], programs: vec![spring.clone(), summer.clone()], ..Seed::default() }).await;

    let dup = program(&a, 102, "spring");
    assert_conflict(attempt(store, move |tx| tx.insert_program(&dup)).await, constraints::PROGRAM_SLUG);

    let mut renamed = summer.clone();
    renamed.slug = ProgramSlug::parse("spring").unwrap();
    assert_conflict(attempt(store, move |tx| tx.update_program(&renamed)).await, constraints::PROGRAM_SLUG);
    assert_eq!(commit(store, |tx| tx.program(id(1), id(101))).await, Some(summer));

    let other_org = program(&b, 103, "spring");
    commit(store, move |tx| tx.insert_program(&other_org)).await;

    let mut archived = spring;
    archived.archived_at = Some(T0 + Duration::hours(1));
    commit(store, move |tx| tx.update_program(&archived)).await;
    let after_archive = program(&a, 104, "spring");
    assert_conflict(attempt(store, move |tx| tx.insert_program(&after_archive)).await, constraints::PROGRAM_SLUG);
}

/// An archived program is still read by id but no longer listed.
pub async fn archived_programs_stay_readable_but_leave_the_list(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let live = program(&a, 100, "spring");
    let mut archived = program(&a, 101, "winter");
    archived.archived_at = Some(T0 + Duration::hours(1));
    archived.is_active = false;
    seed(store, Seed { orgs: vec![a], programs: vec![live.clone(), archived.clone()], ..Seed::default() }).await;

    let (listed, got) = commit(store, |tx| Ok((tx.list_programs(id(1), &PageRequest::first())?, tx.program(id(1), id(101))?))).await;
    assert_eq!(listed, vec![live]);
    assert_eq!(got, Some(archived));
}

/// Program pages come newest first by id; following the cursor visits every program once even
/// when a program is created between two page reads.
pub async fn program_pages_run_newest_first_without_skips_or_repeats(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let mut programs: Vec<_> = (100..107).map(|n| program(&a, n, &format!("p{n}"))).collect();
    programs[3].archived_at = Some(T0); // 103
    programs.push(program(&b, 150, "p150"));
    seed(store, Seed { orgs: vec![a.clone(), b], programs, ..Seed::default() }).await;

    let first = commit(store, |tx| tx.list_programs(id(1), &page(2, None))).await;
    assert_eq!(first.len(), 3, "a store fetches take + 1 rows to tell whether more exist");
    let first = Page::from_rows(first, &page(2, None), program_uuid);
    assert_eq!(uuids(&first.items, program_uuid), nums(&[106, 105]));

    // A newer program appears between two page reads: later pages are unaffected.
    let newcomer = program(&a, 107, "p107");
    commit(store, move |tx| tx.insert_program(&newcomer)).await;

    let mut seen = uuids(&first.items, program_uuid);
    let mut after = first.next_after;
    while let Some(cursor) = after {
        let request = page(2, Some(cursor));
        let rows = commit(store, move |tx| tx.list_programs(id(1), &request)).await;
        let next = Page::from_rows(rows, &request, program_uuid);
        seen.extend(uuids(&next.items, program_uuid));
        after = next.next_after;
    }
    assert_eq!(seen, nums(&[106, 105, 104, 102, 101, 100]));

    let all = read_pages(store, 50, program_uuid, |tx, p| tx.list_programs(id(1), p)).await;
    assert_eq!(all, vec![nums(&[107, 106, 105, 104, 102, 101, 100])]);
}

// ---------------------------------------------------------------------------------------------
// Affiliates
// ---------------------------------------------------------------------------------------------

/// Every field of an affiliate survives storage, and `update_affiliate` replaces every field.
pub async fn an_affiliate_round_trips_and_every_field_updates(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let original = affiliate(&p, 200, "jane@creator.test");
    seed(store, Seed { orgs: vec![a], programs: vec![p], affiliates: vec![original.clone()], ..Seed::default() }).await;
    assert_eq!(commit(store, |tx| tx.affiliate(id(1), id(200))).await, Some(original.clone()));

    let mut changed = original;
    changed.email = Email::parse("email", "jane.doe@creator.test").unwrap();
    changed.full_name = None;
    changed.status = AffiliateStatus::Rejected;
    changed.custom_commission = None;
    changed.tags = Vec::new();
    changed.notes = None;
    changed.user_id = Some("user_jane".to_owned());
    changed.rejection_reason = Some("audience mismatch".to_owned());
    changed.approved_at = None;
    changed.updated_at = T0 + Duration::hours(1);
    let update = changed.clone();
    commit(store, move |tx| tx.update_affiliate(&update)).await;
    assert_eq!(commit(store, |tx| tx.affiliate(id(1), id(200))).await, Some(changed));
}

/// A deleted affiliate is gone from every read, is deleted once, and no longer holds its
/// email in the program.
pub async fn a_deleted_affiliate_disappears_and_frees_its_email(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let mut jane = affiliate(&p, 200, "jane@creator.test");
    jane.user_id = Some("user_jane".to_owned());
    seed(store, Seed { orgs: vec![a], programs: vec![p.clone()], affiliates: vec![jane], ..Seed::default() }).await;

    let (first, second) =
        commit(store, |tx| Ok((tx.delete_affiliate(id(1), id(200), T0)?, tx.delete_affiliate(id(1), id(200), T0)?))).await;
    assert!(first, "the first delete removes the affiliate");
    assert!(!second, "a deleted affiliate cannot be deleted again");

    let email = Email::parse("email", "jane@creator.test").unwrap();
    let (got, listed, owned) = commit(store, move |tx| {
        Ok((
            tx.affiliate(id(1), id(200))?,
            tx.list_affiliates(id(1), &AffiliateFilter::default(), &PageRequest::first())?,
            tx.affiliates_of_user("user_jane", &email)?,
        ))
    })
    .await;
    assert_eq!(got, None);
    assert!(listed.is_empty());
    assert!(owned.is_empty());

    let again = affiliate(&p, 201, "jane@creator.test");
    commit(store, move |tx| tx.insert_affiliate(&again)).await;
    assert!(commit(store, |tx| tx.affiliate(id(1), id(201))).await.is_some());
}

/// An email joins a program once; the same person may join another program.
pub async fn an_email_joins_a_program_once(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let (spring, summer) = (program(&a, 100, "spring"), program(&a, 101, "summer"));
    seed(
        store,
        Seed {
            orgs: vec![a],
            programs: vec![spring.clone(), summer.clone()],
            affiliates: vec![affiliate(&spring, 200, "jane@creator.test"), affiliate(&spring, 201, "bob@creator.test")],
            ..Seed::default()
        },
    )
    .await;

    let dup = affiliate(&spring, 202, "jane@creator.test");
    assert_conflict(attempt(store, move |tx| tx.insert_affiliate(&dup)).await, constraints::AFFILIATE_EMAIL);

    let mut bob = affiliate(&spring, 201, "bob@creator.test");
    bob.email = Email::parse("email", "jane@creator.test").unwrap();
    assert_conflict(attempt(store, move |tx| tx.update_affiliate(&bob)).await, constraints::AFFILIATE_EMAIL);

    let elsewhere = affiliate(&summer, 203, "jane@creator.test");
    commit(store, move |tx| tx.insert_affiliate(&elsewhere)).await;
}

/// The affiliate list filters by program, by status and by a case-insensitive piece of the
/// email or full name (taken literally), alone or together, newest first.
pub async fn affiliate_lists_filter_by_program_status_and_text(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (spring, summer, foreign) = (program(&a, 100, "spring"), program(&a, 101, "summer"), program(&b, 102, "spring"));
    let jane = affiliate(&spring, 200, "jane@creator.test");
    let mut bob = affiliate(&spring, 201, "bob@mail.test");
    bob.full_name = Some("Bob Stone".to_owned());
    bob.status = AffiliateStatus::Pending;
    let mut ann = affiliate(&spring, 202, "ann_jones@mail.test");
    ann.full_name = None;
    let mut janet = affiliate(&summer, 203, "j.smith@creator.test");
    janet.full_name = Some("Janet Smith".to_owned());
    let mut outsider = affiliate(&foreign, 204, "jane@creator.test");
    outsider.full_name = Some("Jane Elsewhere".to_owned());
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![spring, summer, foreign],
            affiliates: vec![jane, bob, ann, janet, outsider],
            ..Seed::default()
        },
    )
    .await;

    let cases: Vec<(AffiliateFilter, Vec<u128>)> = vec![
        (AffiliateFilter::default(), vec![203, 202, 201, 200]),
        (AffiliateFilter { program_id: Some(id(100)), ..AffiliateFilter::default() }, vec![202, 201, 200]),
        (AffiliateFilter { status: Some(AffiliateStatus::Approved), ..AffiliateFilter::default() }, vec![203, 202, 200]),
        (AffiliateFilter { q: Some("JAN".to_owned()), ..AffiliateFilter::default() }, vec![203, 200]),
        (AffiliateFilter { q: Some("Stone".to_owned()), ..AffiliateFilter::default() }, vec![201]),
        (AffiliateFilter { q: Some("@MAIL.test".to_owned()), ..AffiliateFilter::default() }, vec![202, 201]),
        (AffiliateFilter { q: Some("_".to_owned()), ..AffiliateFilter::default() }, vec![202]),
        (AffiliateFilter { q: Some("%".to_owned()), ..AffiliateFilter::default() }, vec![]),
        (AffiliateFilter { program_id: Some(id(100)), status: Some(AffiliateStatus::Approved), q: Some("jane".to_owned()) }, vec![200]),
        (AffiliateFilter { program_id: Some(id(102)), ..AffiliateFilter::default() }, vec![]),
    ];
    for (filter, want) in cases {
        let f = filter.clone();
        let got = commit(store, move |tx| tx.list_affiliates(id(1), &f, &PageRequest::first())).await;
        assert_eq!(uuids(&got, affiliate_uuid), nums(&want), "filter {filter:?}");
    }
}

/// Affiliate pages come newest first and following the cursor visits every row once.
pub async fn affiliate_pages_run_newest_first_without_skips_or_repeats(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let affiliates: Vec<_> = (200..205).map(|n| affiliate(&p, n, &format!("a{n}@creator.test"))).collect();
    seed(store, Seed { orgs: vec![a], programs: vec![p], affiliates, ..Seed::default() }).await;
    commit(store, |tx| tx.delete_affiliate(id(1), id(202), T0).map(drop)).await;

    let pages = read_pages(store, 2, affiliate_uuid, |tx, p| {
        tx.list_affiliates(id(1), &AffiliateFilter { program_id: Some(id(100)), ..AffiliateFilter::default() }, p)
    })
    .await;
    assert_eq!(pages, vec![nums(&[204, 203]), nums(&[201, 200])]);
}

/// An affiliate-side user owns, in every organization, the rows linked to its user id and the
/// unlinked rows with its email — not a row with its email linked to someone else, nor a
/// deleted row.
pub async fn an_affiliate_side_user_owns_its_linked_rows_and_the_unlinked_rows_with_its_email(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (spring, summer, foreign) = (program(&a, 100, "spring"), program(&a, 101, "summer"), program(&b, 102, "spring"));
    let mut linked = affiliate(&spring, 200, "jane.work@creator.test");
    linked.user_id = Some("user_jane".to_owned());
    let unlinked_elsewhere = affiliate(&foreign, 201, "jane@creator.test");
    let mut linked_to_other = affiliate(&summer, 202, "jane@creator.test");
    linked_to_other.user_id = Some("user_impostor".to_owned());
    let stranger = affiliate(&summer, 203, "bob@creator.test");
    let mut deleted = affiliate(&foreign, 204, "jane.old@creator.test");
    deleted.user_id = Some("user_jane".to_owned());
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![spring, summer, foreign],
            affiliates: vec![linked.clone(), unlinked_elsewhere.clone(), linked_to_other, stranger, deleted],
            ..Seed::default()
        },
    )
    .await;
    commit(store, |tx| tx.delete_affiliate(id(2), id(204), T0).map(drop)).await;

    let email = Email::parse("email", "jane@creator.test").unwrap();
    let mut owned = commit(store, move |tx| tx.affiliates_of_user("user_jane", &email)).await;
    owned.sort_by_key(|a| a.id);
    assert_eq!(owned, vec![linked, unlinked_elsewhere]);
}

// ---------------------------------------------------------------------------------------------
// Links
// ---------------------------------------------------------------------------------------------

/// `links_of` returns the links of the affiliates asked for, default links first.
pub async fn links_come_back_default_first_for_the_affiliates_asked(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let (jane, bob, ann) =
        (affiliate(&p, 200, "jane@creator.test"), affiliate(&p, 201, "bob@creator.test"), affiliate(&p, 202, "ann@creator.test"));
    let links = vec![
        link(&jane, 300, "jane-extra", false),
        link(&jane, 301, "jane-doe-k3m9p", true),
        link(&bob, 302, "bob-extra", false),
        link(&bob, 303, "bob-stone-x7q2r", true),
        link(&ann, 304, "ann-jones-p4t8w", true),
    ];
    seed(store, Seed { orgs: vec![a], programs: vec![p], affiliates: vec![jane, bob, ann], links: links.clone(), ..Seed::default() }).await;

    let janes = commit(store, |tx| tx.links_of(id(1), &[id(200)])).await;
    assert_eq!(janes, vec![links[1].clone(), links[0].clone()]);

    let both = commit(store, |tx| tx.links_of(id(1), &[id(200), id(201)])).await;
    assert_eq!(sorted(both.iter().map(|l| l.id.as_uuid()).collect()), nums(&[300, 301, 302, 303]));
    let defaults_first = both.windows(2).all(|w| w[0].is_default || !w[1].is_default);
    assert!(defaults_first, "default links come first: {both:?}");

    assert!(commit(store, |tx| tx.links_of(id(1), &[])).await.is_empty());
}

/// A link slug is taken once per organization, whatever its case; another organization may
/// use it.
pub async fn a_link_slug_is_unique_per_organization_regardless_of_case(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (p, q) = (program(&a, 100, "spring"), program(&b, 101, "spring"));
    let (jane, bob) = (affiliate(&p, 200, "jane@creator.test"), affiliate(&q, 201, "bob@creator.test"));
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p, q],
            affiliates: vec![jane.clone(), bob.clone()],
            links: vec![link(&jane, 300, "jane-doe", true)],
            ..Seed::default()
        },
    )
    .await;

    let (exact, other_case, other_slug, other_org) = commit(store, |tx| {
        Ok((
            tx.link_slug_taken(id(1), "jane-doe")?,
            tx.link_slug_taken(id(1), "Jane-DOE")?,
            tx.link_slug_taken(id(1), "jane-doe-2")?,
            tx.link_slug_taken(id(2), "jane-doe")?,
        ))
    })
    .await;
    assert!(exact && other_case);
    assert!(!other_slug && !other_org);

    let shouting = link(&jane, 301, "JANE-DOE", false);
    assert_conflict(attempt(store, move |tx| tx.insert_link(&shouting)).await, constraints::LINK_SLUG);

    let elsewhere = link(&bob, 302, "jane-doe", true);
    commit(store, move |tx| tx.insert_link(&elsewhere)).await;
}

// ---------------------------------------------------------------------------------------------
// Campaign coupons
// ---------------------------------------------------------------------------------------------

/// Every field of a campaign coupon survives storage; `update_campaign_coupon` replaces every
/// field (a reservation becomes provisioned this way); `delete_campaign_coupon` removes it.
pub async fn a_campaign_coupon_round_trips_updates_and_deletes(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let mut reserved = campaign_coupon(&p, 400, None);
    reserved.discount = DiscountSpec::AmountOff(Money::new(5_00, currency("USD")));
    let mut forever = campaign_coupon(&p, 401, Some("coupon_forever"));
    forever.duration = CouponDuration::Forever;
    forever.max_redemptions_per_code = None;
    forever.expires_at = None;
    seed(store, Seed { orgs: vec![a], programs: vec![p], campaign_coupons: vec![reserved.clone(), forever.clone()], ..Seed::default() })
        .await;
    let (got_reserved, got_forever) =
        commit(store, |tx| Ok((tx.campaign_coupon(id(1), id(400))?, tx.campaign_coupon(id(1), id(401))?))).await;
    assert_eq!(got_reserved, Some(reserved.clone()));
    assert_eq!(got_forever, Some(forever));

    let mut changed = reserved;
    changed.stripe_coupon_id = Some("coupon_abc".to_owned());
    changed.name = "Spring sale".to_owned();
    changed.allow_affiliate_self_mint = false;
    changed.overrides_click_attribution = true;
    changed.is_active = false;
    changed.archived_at = Some(T0 + Duration::hours(2));
    changed.updated_at = T0 + Duration::hours(2);
    let update = changed.clone();
    commit(store, move |tx| tx.update_campaign_coupon(&update)).await;
    assert_eq!(commit(store, |tx| tx.campaign_coupon(id(1), id(400))).await, Some(changed));

    commit(store, |tx| tx.delete_campaign_coupon(id(1), id(400))).await;
    assert_eq!(commit(store, |tx| tx.campaign_coupon(id(1), id(400))).await, None);
    assert!(commit(store, |tx| tx.campaign_coupon(id(1), id(401))).await.is_some());
}

/// A campaign coupon still provisioning (no Stripe id) is read by id but not listed; the list
/// holds the program's provisioned coupons, newest first, page by page.
pub async fn provisioning_campaign_coupons_are_readable_but_not_listed(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let (spring, summer) = (program(&a, 100, "spring"), program(&a, 101, "summer"));
    let coupons = vec![
        campaign_coupon(&spring, 400, Some("coupon_400")),
        campaign_coupon(&spring, 401, Some("coupon_401")),
        campaign_coupon(&spring, 402, None),
        campaign_coupon(&summer, 403, Some("coupon_403")),
        campaign_coupon(&spring, 404, Some("coupon_404")),
    ];
    seed(store, Seed { orgs: vec![a], programs: vec![spring, summer], campaign_coupons: coupons.clone(), ..Seed::default() }).await;

    assert_eq!(commit(store, |tx| tx.campaign_coupon(id(1), id(402))).await, Some(coupons[2].clone()));
    let pages = read_pages(store, 2, campaign_coupon_uuid, |tx, p| tx.list_campaign_coupons(id(1), id(100), p)).await;
    assert_eq!(pages, vec![nums(&[404, 401]), nums(&[400])]);
}

/// The reconciler's scan returns unprovisioned campaign coupons of every organization created
/// strictly before the cutoff, at most `limit` of them.
pub async fn unprovisioned_campaign_coupons_span_organizations_and_respect_the_cutoff(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (p, q) = (program(&a, 100, "spring"), program(&b, 101, "spring"));
    let at = |mut c: rekomi_domain::coupon::CampaignCoupon, hours_before: i64| {
        c.created_at = T0 - Duration::hours(hours_before);
        c
    };
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p.clone(), q.clone()],
            campaign_coupons: vec![
                at(campaign_coupon(&p, 400, None), 2),
                at(campaign_coupon(&q, 401, None), 1),
                at(campaign_coupon(&p, 402, None), 0),
                at(campaign_coupon(&p, 403, Some("coupon_403")), 3),
            ],
            ..Seed::default()
        },
    )
    .await;

    let (stale, one, none) = commit(store, |tx| {
        Ok((
            tx.unprovisioned_campaign_coupons(T0, 10)?,
            tx.unprovisioned_campaign_coupons(T0, 1)?,
            tx.unprovisioned_campaign_coupons(T0 - Duration::hours(5), 10)?,
        ))
    })
    .await;
    assert_eq!(sorted(uuids(&stale, campaign_coupon_uuid)), nums(&[400, 401]));
    assert_eq!(one.len(), 1);
    assert!(nums(&[400, 401]).contains(&one[0].id.as_uuid()));
    assert!(none.is_empty());
}

/// A campaign coupon that still has codes cannot be deleted (the codes' foreign key refuses).
pub async fn a_campaign_coupon_with_codes_cannot_be_deleted(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let jane = affiliate(&p, 200, "jane@creator.test");
    let cc = campaign_coupon(&p, 400, Some("coupon_400"));
    let code = affiliate_coupon(&jane, &cc, 500, "JANE20", Some("promo_500"));
    seed(
        store,
        Seed {
            orgs: vec![a],
            programs: vec![p],
            affiliates: vec![jane],
            campaign_coupons: vec![cc],
            affiliate_coupons: vec![code],
            ..Seed::default()
        },
    )
    .await;

    let refused = attempt(store, |tx| tx.delete_campaign_coupon(id(1), id(400))).await;
    assert_conflict(refused, foreign_keys::AFFILIATE_COUPON_CAMPAIGN_COUPON);
    assert!(commit(store, |tx| tx.campaign_coupon(id(1), id(400))).await.is_some());

    commit(store, |tx| {
        tx.delete_affiliate_coupon(id(1), id(500))?;
        tx.delete_campaign_coupon(id(1), id(400))
    })
    .await;
    assert_eq!(commit(store, |tx| tx.campaign_coupon(id(1), id(400))).await, None);
}

// ---------------------------------------------------------------------------------------------
// Affiliate coupons
// ---------------------------------------------------------------------------------------------

/// Every field of an affiliate coupon survives storage; `update_affiliate_coupon` replaces
/// every field; `delete_affiliate_coupon` removes the row and releases its code.
pub async fn an_affiliate_coupon_round_trips_updates_and_deletes(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let jane = affiliate(&p, 200, "jane@creator.test");
    let cc = campaign_coupon(&p, 400, Some("coupon_400"));
    let reserved = affiliate_coupon(&jane, &cc, 500, "JANE20", None);
    let mut plain = affiliate_coupon(&jane, &cc, 501, "JANE-PLAIN", Some("promo_501"));
    plain.max_redemptions = None;
    plain.expires_at = None;
    plain.restrictions = CodeRestrictions::default();
    seed(
        store,
        Seed {
            orgs: vec![a],
            programs: vec![p],
            affiliates: vec![jane.clone()],
            campaign_coupons: vec![cc.clone()],
            affiliate_coupons: vec![reserved.clone(), plain.clone()],
            ..Seed::default()
        },
    )
    .await;
    let (got_reserved, got_plain) =
        commit(store, |tx| Ok((tx.affiliate_coupon(id(1), id(500))?, tx.affiliate_coupon(id(1), id(501))?))).await;
    assert_eq!(got_reserved, Some(reserved.clone()));
    assert_eq!(got_plain, Some(plain));

    let mut changed = reserved;
    changed.stripe_promotion_code_id = Some("promo_500".to_owned());
    changed.code = CouponCode::parse("JANE-SPRING").unwrap();
    changed.max_redemptions = None;
    changed.expires_at = None;
    changed.restrictions = CodeRestrictions {
        first_time_order: false,
        minimum_amount: None,
        limit_to_customers: false,
        customer_id: Some("cus_999".to_owned()),
        limit_to_affiliate: true,
    };
    changed.times_redeemed = 3;
    changed.last_redeemed_at = Some(T0 + Duration::hours(5));
    changed.is_auto_generated = true;
    changed.self_minted = true;
    changed.revoke(T0 + Duration::hours(6));
    let update = changed.clone();
    commit(store, move |tx| tx.update_affiliate_coupon(&update)).await;
    assert_eq!(commit(store, |tx| tx.affiliate_coupon(id(1), id(500))).await, Some(changed));

    commit(store, |tx| tx.delete_affiliate_coupon(id(1), id(500))).await;
    assert_eq!(commit(store, |tx| tx.affiliate_coupon(id(1), id(500))).await, None);
    let reuse = affiliate_coupon(&jane, &cc, 502, "JANE-SPRING", None);
    commit(store, move |tx| tx.insert_affiliate_coupon(&reuse)).await;
}

/// A code is taken once per organization whatever its case (`sarah20` and `SARAH20` are one
/// code), whether the holder is provisioning, live or revoked.
pub async fn a_code_is_unique_per_organization_regardless_of_case(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let (spring, summer) = (program(&a, 100, "spring"), program(&a, 101, "summer"));
    let (sarah, bob) = (affiliate(&spring, 200, "sarah@creator.test"), affiliate(&summer, 201, "bob@creator.test"));
    let (cc_spring, cc_summer) = (campaign_coupon(&spring, 400, Some("coupon_400")), campaign_coupon(&summer, 401, Some("coupon_401")));
    let mut revoked = affiliate_coupon(&sarah, &cc_spring, 501, "OLD-CODE", Some("promo_501"));
    revoked.revoke(T0);
    seed(
        store,
        Seed {
            orgs: vec![a],
            programs: vec![spring, summer],
            affiliates: vec![sarah.clone(), bob.clone()],
            campaign_coupons: vec![cc_spring.clone(), cc_summer.clone()],
            affiliate_coupons: vec![affiliate_coupon(&sarah, &cc_spring, 500, "sarah20", Some("promo_500")), revoked],
            ..Seed::default()
        },
    )
    .await;

    // Another affiliate, another program, another campaign coupon: still the same organization.
    let shouting = affiliate_coupon(&bob, &cc_summer, 502, "SARAH20", None);
    assert_conflict(attempt(store, move |tx| tx.insert_affiliate_coupon(&shouting)).await, constraints::COUPON_CODE);
    let reusing_revoked = affiliate_coupon(&bob, &cc_summer, 503, "old-code", None);
    assert_conflict(attempt(store, move |tx| tx.insert_affiliate_coupon(&reusing_revoked)).await, constraints::COUPON_CODE);

    let bobs = affiliate_coupon(&bob, &cc_summer, 504, "BOB10", Some("promo_504"));
    commit(store, {
        let bobs = bobs.clone();
        move |tx| tx.insert_affiliate_coupon(&bobs)
    })
    .await;
    let mut renamed = bobs;
    renamed.code = CouponCode::parse("Sarah20").unwrap();
    assert_conflict(attempt(store, move |tx| tx.update_affiliate_coupon(&renamed)).await, constraints::COUPON_CODE);
}

/// Codes are unique per organization only: another organization may hold the same text.
pub async fn the_same_code_may_live_in_two_organizations(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (p, q) = (program(&a, 100, "spring"), program(&b, 101, "spring"));
    let (jane, bob) = (affiliate(&p, 200, "jane@creator.test"), affiliate(&q, 201, "bob@creator.test"));
    let (cp, cq) = (campaign_coupon(&p, 400, Some("coupon_400")), campaign_coupon(&q, 401, Some("coupon_401")));
    let (ours, theirs) =
        (affiliate_coupon(&jane, &cp, 500, "SPRING20", Some("promo_500")), affiliate_coupon(&bob, &cq, 501, "spring20", Some("promo_501")));
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p, q],
            affiliates: vec![jane, bob],
            campaign_coupons: vec![cp, cq],
            affiliate_coupons: vec![ours.clone(), theirs.clone()],
            ..Seed::default()
        },
    )
    .await;

    let code = CouponCode::parse("SPRING20").unwrap();
    let (got_ours, got_theirs) =
        commit(store, move |tx| Ok((tx.affiliate_coupon_by_code(id(1), &code)?, tx.affiliate_coupon_by_code(id(2), &code)?))).await;
    assert_eq!(got_ours, Some(ours));
    assert_eq!(got_theirs, Some(theirs));
}

/// `affiliate_coupon_by_code` ignores case and sees provisioning rows;
/// `affiliate_coupon_by_stripe_id` finds a code by its promotion code id.
pub async fn an_affiliate_coupon_is_found_by_code_in_any_case_and_by_stripe_id(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let sarah = affiliate(&p, 200, "sarah@creator.test");
    let cc = campaign_coupon(&p, 400, Some("coupon_400"));
    let live = affiliate_coupon(&sarah, &cc, 500, "SARAH20", Some("promo_500"));
    let reserved = affiliate_coupon(&sarah, &cc, 501, "SARAH-VIP", None);
    seed(
        store,
        Seed {
            orgs: vec![a],
            programs: vec![p],
            affiliates: vec![sarah],
            campaign_coupons: vec![cc],
            affiliate_coupons: vec![live.clone(), reserved.clone()],
            ..Seed::default()
        },
    )
    .await;

    let (by_lower, by_reserved, by_unknown, by_stripe, by_unknown_stripe) = commit(store, |tx| {
        Ok((
            tx.affiliate_coupon_by_code(id(1), &CouponCode::parse("sarah20").unwrap())?,
            tx.affiliate_coupon_by_code(id(1), &CouponCode::parse("Sarah-Vip").unwrap())?,
            tx.affiliate_coupon_by_code(id(1), &CouponCode::parse("SARAH").unwrap())?,
            tx.affiliate_coupon_by_stripe_id(id(1), "promo_500")?,
            tx.affiliate_coupon_by_stripe_id(id(1), "promo_nope")?,
        ))
    })
    .await;
    assert_eq!(by_lower, Some(live.clone()));
    assert_eq!(by_reserved, Some(reserved));
    assert_eq!(by_unknown, None, "a prefix is not the code");
    assert_eq!(by_stripe, Some(live));
    assert_eq!(by_unknown_stripe, None);
}

/// Each selector lists the provisioned codes it names, newest first, page by page: one
/// affiliate's, one campaign coupon's, and one person's across programs (by email).
pub async fn affiliate_coupons_list_by_each_selector_newest_first(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (spring, summer, foreign) = (program(&a, 100, "spring"), program(&a, 101, "summer"), program(&b, 102, "spring"));
    let jane_spring = affiliate(&spring, 200, "jane@creator.test");
    let bob = affiliate(&spring, 201, "bob@creator.test");
    let jane_summer = affiliate(&summer, 202, "jane@creator.test");
    let jane_foreign = affiliate(&foreign, 203, "jane@creator.test");
    let c1 = campaign_coupon(&spring, 400, Some("coupon_400"));
    let c2 = campaign_coupon(&spring, 401, Some("coupon_401"));
    let c3 = campaign_coupon(&summer, 402, Some("coupon_402"));
    let c4 = campaign_coupon(&foreign, 403, Some("coupon_403"));
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![spring, summer, foreign],
            affiliates: vec![jane_spring.clone(), bob.clone(), jane_summer.clone(), jane_foreign.clone()],
            campaign_coupons: vec![c1.clone(), c2.clone(), c3.clone(), c4.clone()],
            affiliate_coupons: vec![
                affiliate_coupon(&jane_spring, &c1, 500, "JANE-ONE", Some("promo_500")),
                affiliate_coupon(&jane_spring, &c2, 501, "JANE-TWO", Some("promo_501")),
                affiliate_coupon(&bob, &c1, 502, "BOB-ONE", Some("promo_502")),
                affiliate_coupon(&jane_spring, &c1, 503, "JANE-RESERVED", None),
                affiliate_coupon(&jane_summer, &c3, 504, "JANE-SUMMER", Some("promo_504")),
                affiliate_coupon(&jane_foreign, &c4, 505, "JANE-FOREIGN", Some("promo_505")),
            ],
            ..Seed::default()
        },
    )
    .await;

    let jane = Email::parse("email", "jane@creator.test").unwrap();
    let cases: Vec<(CouponSelector, Vec<Vec<u128>>)> = vec![
        (CouponSelector::Affiliate(id(200)), vec![vec![501, 500]]),
        (CouponSelector::CampaignCoupon(id(400)), vec![vec![502, 500]]),
        (CouponSelector::AffiliateEmail(jane.clone()), vec![vec![504, 501], vec![500]]),
        (CouponSelector::Affiliate(id(203)), vec![vec![]]),
    ];
    for (selector, want) in cases {
        let s = selector.clone();
        let pages = read_pages(store, 2, affiliate_coupon_uuid, move |tx, p| tx.list_affiliate_coupons(id(1), &s, p)).await;
        let want: Vec<Vec<Uuid>> = want.iter().map(|p| nums(p)).collect();
        assert_eq!(pages, want, "selector {selector:?}");
    }
}

/// `campaign_coupon_has_codes` holds once any code exists under the coupon, provisioning or
/// revoked ones included.
pub async fn a_campaign_coupon_has_codes_once_any_code_exists(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let jane = affiliate(&p, 200, "jane@creator.test");
    let (with_reserved, with_revoked, bare) = (
        campaign_coupon(&p, 400, Some("coupon_400")),
        campaign_coupon(&p, 401, Some("coupon_401")),
        campaign_coupon(&p, 402, Some("coupon_402")),
    );
    let mut revoked = affiliate_coupon(&jane, &with_revoked, 501, "JANE-OLD", Some("promo_501"));
    revoked.revoke(T0);
    seed(
        store,
        Seed {
            orgs: vec![a],
            programs: vec![p],
            affiliates: vec![jane.clone()],
            campaign_coupons: vec![with_reserved.clone(), with_revoked, bare],
            affiliate_coupons: vec![affiliate_coupon(&jane, &with_reserved, 500, "JANE20", None), revoked],
            ..Seed::default()
        },
    )
    .await;

    let got = commit(store, |tx| {
        Ok((
            tx.campaign_coupon_has_codes(id(1), id(400))?,
            tx.campaign_coupon_has_codes(id(1), id(401))?,
            tx.campaign_coupon_has_codes(id(1), id(402))?,
        ))
    })
    .await;
    assert_eq!(got, (true, true, false));
}

/// The reconciler's scan returns unprovisioned affiliate coupons of every organization created
/// strictly before the cutoff, at most `limit` of them.
pub async fn unprovisioned_affiliate_coupons_span_organizations_and_respect_the_cutoff(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (p, q) = (program(&a, 100, "spring"), program(&b, 101, "spring"));
    let (jane, bob) = (affiliate(&p, 200, "jane@creator.test"), affiliate(&q, 201, "bob@creator.test"));
    let (cp, cq) = (campaign_coupon(&p, 400, Some("coupon_400")), campaign_coupon(&q, 401, Some("coupon_401")));
    let at = |mut c: rekomi_domain::coupon::AffiliateCoupon, hours_before: i64| {
        c.created_at = T0 - Duration::hours(hours_before);
        c
    };
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p, q],
            affiliates: vec![jane.clone(), bob.clone()],
            campaign_coupons: vec![cp.clone(), cq.clone()],
            affiliate_coupons: vec![
                at(affiliate_coupon(&jane, &cp, 500, "JANE-A", None), 2),
                at(affiliate_coupon(&bob, &cq, 501, "BOB-A", None), 1),
                at(affiliate_coupon(&jane, &cp, 502, "JANE-B", None), 0),
                at(affiliate_coupon(&jane, &cp, 503, "JANE-C", Some("promo_503")), 3),
            ],
            ..Seed::default()
        },
    )
    .await;

    let (stale, one, none) = commit(store, |tx| {
        Ok((
            tx.unprovisioned_affiliate_coupons(T0, 10)?,
            tx.unprovisioned_affiliate_coupons(T0, 1)?,
            tx.unprovisioned_affiliate_coupons(T0 - Duration::hours(5), 10)?,
        ))
    })
    .await;
    assert_eq!(sorted(uuids(&stale, affiliate_coupon_uuid)), nums(&[500, 501]));
    assert_eq!(one.len(), 1);
    assert!(nums(&[500, 501]).contains(&one[0].id.as_uuid()));
    assert!(none.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Audit log
// ---------------------------------------------------------------------------------------------

/// Audit entries come back whole, newest first, for their organization only, at most `limit`.
/// `append_audits`, `insert_outbox_events` and `insert_deliveries` store every row of a
/// slice, or none when one is refused.
pub async fn many_rows_are_appended_in_one_write_all_or_nothing(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let ep = endpoint(&a, 1000);
    seed(store, Seed { orgs: vec![a.clone()], endpoints: vec![ep.clone()], ..Seed::default() }).await;
    let entries: Vec<AuditEntry> = (600..603).map(|n| audit(&a, n, AuditActor::System, "program.created", &p)).collect();
    let events: Vec<OutboxEvent> = (1100..1103).map(|n| outbox_event(&a, n)).collect();
    let deliveries: Vec<Delivery> = events.iter().zip(1200..).map(|(e, n)| delivery(&ep, e, n, T0)).collect();
    let (e, o, d) = (entries.clone(), events.clone(), deliveries.clone());
    commit(store, move |tx| {
        tx.append_audits(&e)?;
        tx.insert_outbox_events(&o)?;
        tx.insert_deliveries(&d)
    })
    .await;
    assert_eq!(commit(store, |tx| tx.audit_entries(id(1), 10)).await.len(), 3);
    assert_eq!(commit(store, move |tx| tx.deliveries_of(id(1), id(1000), &PageRequest::first())).await.len(), 3);

    // A second batch whose last row repeats an id: nothing of it is stored.
    let mut again: Vec<AuditEntry> = (604..606).map(|n| audit(&a, n, AuditActor::System, "program.created", &p)).collect();
    again.push(entries[0].clone());
    let refused = attempt(store, move |tx| tx.append_audits(&again)).await;
    assert!(matches!(refused, Err(StoreError::Conflict { .. })), "{refused:?}");
    assert_eq!(commit(store, |tx| tx.audit_entries(id(1), 10)).await.len(), 3);
    commit(store, |tx| tx.append_audits(&[])).await;
}

pub async fn audit_entries_come_back_newest_first_per_organization(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let p = program(&a, 100, "spring");
    let mut archived = p.clone();
    archived.archived_at = Some(T0 + Duration::hours(1));
    let created = audit(&a, 600, AuditActor::ApiKey(id::<Uuid>(700).to_string()), "program.created", &p);
    let mut updated = audit(&a, 601, AuditActor::User("user_owner".to_owned()), "program.archived", &archived);
    updated.before = Some(program_snapshot(&p));
    updated.created_at = T0 + Duration::hours(1);
    let jane = affiliate(&p, 200, "jane@creator.test");
    let mut deleted = audit(&a, 602, AuditActor::System, "affiliate.deleted", &p);
    deleted.entity_type = "affiliate";
    deleted.entity_id = jane.id.to_string();
    deleted.before = Some(affiliate_snapshot(&jane));
    deleted.after = None;
    let theirs = audit(&b, 603, AuditActor::System, "program.created", &program(&b, 101, "spring"));
    seed(
        store,
        Seed { orgs: vec![a, b], audit: vec![created.clone(), updated.clone(), deleted.clone(), theirs.clone()], ..Seed::default() },
    )
    .await;

    let (all, two, other, none) = commit(store, |tx| {
        Ok((tx.audit_entries(id(1), 10)?, tx.audit_entries(id(1), 2)?, tx.audit_entries(id(2), 10)?, tx.audit_entries(id(3), 10)?))
    })
    .await;
    assert_eq!(all, vec![deleted.clone(), updated.clone(), created]);
    assert_eq!(two, vec![deleted, updated]);
    assert_eq!(other, vec![theirs]);
    assert!(none.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Processed sources
// ---------------------------------------------------------------------------------------------

/// A source is claimed once per organization: a second claim answers false without failing the
/// transaction (later writes in it still land), another organization claims the same source
/// for itself, and a claim that is rolled back is released.
pub async fn a_source_is_claimed_once_per_organization(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    seed(store, Seed { orgs: vec![a.clone(), b], ..Seed::default() }).await;

    let p = program(&a, 100, "spring");
    let (first, again, seen) = commit(store, move |tx| {
        let first = tx.claim_source(id(1), "invoice:in_1", T0)?;
        let again = tx.claim_source(id(1), "invoice:in_1", T0 + Duration::seconds(1))?;
        tx.insert_program(&p)?;
        Ok((first, again, tx.program(id(1), id(100))?.is_some()))
    })
    .await;
    assert!(first, "the first claim wins");
    assert!(!again, "the same source is claimed once");
    assert!(seen);
    assert!(commit(store, |tx| tx.program(id(1), id(100))).await.is_some(), "a refused claim does not abort the transaction");

    let (later, other_org, other_source) = commit(store, |tx| {
        Ok((
            tx.claim_source(id(1), "invoice:in_1", T0 + Duration::days(1))?,
            tx.claim_source(id(2), "invoice:in_1", T0)?,
            tx.claim_source(id(1), "checkout:cs_1", T0)?,
        ))
    })
    .await;
    assert!(!later, "a claim holds in later transactions");
    assert!(other_org, "another organization claims the same source for itself");
    assert!(other_source);
    assert!(!commit(store, |tx| tx.claim_source(id(2), "invoice:in_1", T0)).await);

    let abandoned: Result<(), StoreError> = attempt(store, |tx| {
        assert!(tx.claim_source(id(1), "lead:sub_1", T0)?);
        Err(StoreError::Unavailable("abandoned".to_owned()))
    })
    .await;
    assert!(abandoned.is_err());
    assert!(commit(store, |tx| tx.claim_source(id(1), "lead:sub_1", T0)).await, "a rolled-back claim is released");
}

// ---------------------------------------------------------------------------------------------
// Conversions and their ledger
// ---------------------------------------------------------------------------------------------

fn conversion_uuid(c: &Conversion) -> Uuid {
    c.id.as_uuid()
}

/// `c` with its kind, status and creation time set.
fn shaped(mut c: Conversion, kind: ConversionType, status: ConversionStatus, created_at: OffsetDateTime) -> Conversion {
    c.kind = kind;
    c.status = status;
    c.created_at = created_at;
    c.updated_at = created_at;
    c
}

/// Every field of a conversion survives storage (the attribution trace as JSON, every optional
/// field set or not, the full `u32` range), the locking read sees the same row, and
/// `update_conversion` replaces every field.
pub async fn a_conversion_round_trips_and_every_field_updates(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let (jane, bob) = (affiliate(&p, 200, "jane@creator.test"), affiliate(&p, 201, "bob@creator.test"));
    let cc = campaign_coupon(&p, 400, Some("coupon_400"));
    let code = affiliate_coupon(&jane, &cc, 500, "JANE20", Some("promo_500"));

    let mut sale = shaped(conversion(&jane, 800), ConversionType::OneTime, ConversionStatus::Refunded, T0);
    sale.attribution_method = Some("coupon".to_owned());
    sale.coupon_code = Some("JANE20".to_owned());
    sale.affiliate_coupon_id = Some(code.id);
    sale.denial_reason = Some("kept for the record".to_owned());
    sale.paid_invoices = u32::MAX;
    sale.approved_at = Some(T0 + Duration::days(30));
    sale.refunded_at = Some(T0 + Duration::days(40));
    let mut bare = shaped(conversion(&bob, 801), ConversionType::LeadReward, ConversionStatus::Denied, T0);
    bare.amount_minor = 0;
    bare.commission_minor = 0;
    bare.currency = currency("JPY");
    bare.attribution_method = None;
    bare.stripe_customer_id = None;
    bare.stripe_subscription_id = None;
    bare.external_event_id = None;
    bare.customer_email = None;
    bare.denial_reason = Some("self_referral".to_owned());
    bare.attribution_trace = serde_json::Value::Null;
    bare.paid_invoices = 0;
    let over = override_of(&sale, &bob, 802);
    seed(
        store,
        Seed {
            orgs: vec![a],
            programs: vec![p],
            affiliates: vec![jane, bob.clone()],
            campaign_coupons: vec![cc],
            affiliate_coupons: vec![code],
            conversions: vec![sale.clone(), bare.clone(), over.clone()],
            ..Seed::default()
        },
    )
    .await;

    let got = commit(store, |tx| {
        Ok((tx.conversion(id(1), id(800))?, tx.conversion(id(1), id(801))?, tx.conversion(id(1), id(802))?, tx.conversion(id(1), id(899))?))
    })
    .await;
    assert_eq!(got, (Some(sale.clone()), Some(bare), Some(over), None));
    assert_eq!(commit(store, |tx| tx.conversion_for_update(id(1), id(800))).await, Some(sale.clone()));

    let mut changed = sale;
    changed.affiliate_id = bob.id;
    changed.kind = ConversionType::Recurring;
    changed.status = ConversionStatus::Approved;
    changed.amount_minor = 99_00;
    changed.currency = currency("EUR");
    changed.commission_minor = 19_80;
    changed.attribution_method = None;
    changed.coupon_code = None;
    changed.affiliate_coupon_id = None;
    changed.stripe_customer_id = Some("cus_changed".to_owned());
    changed.stripe_subscription_id = None;
    changed.external_event_id = Some("cs_changed".to_owned());
    changed.customer_email = None;
    changed.denial_reason = None;
    changed.attribution_trace = serde_json::json!(["reordered", { "b": 2, "a": 1 }]);
    changed.paid_invoices = 2;
    changed.approve_after = T0 + Duration::days(1);
    changed.approved_at = None;
    changed.refunded_at = None;
    changed.updated_at = T0 + Duration::hours(5);
    let update = changed.clone();
    commit(store, move |tx| tx.update_conversion(&update)).await;
    assert_eq!(commit(store, |tx| tx.conversion(id(1), id(800))).await, Some(changed.clone()));

    let ghost = Conversion { id: id(899), ..changed };
    let _ = attempt(store, move |tx| tx.update_conversion(&ghost)).await;
    assert_eq!(commit(store, |tx| tx.conversion(id(1), id(899))).await, None, "an update creates nothing");
}

/// A subscription's sale conversion is its most recent one-time or recurring conversion that
/// is not an override: leads, bonuses and overrides carrying the subscription are passed over.
pub async fn the_sale_conversion_of_a_subscription_skips_leads_and_overrides(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (p, q) = (program(&a, 100, "spring"), program(&b, 101, "spring"));
    let (jane, bob, theirs) =
        (affiliate(&p, 200, "jane@creator.test"), affiliate(&p, 201, "bob@creator.test"), affiliate(&q, 202, "eve@creator.test"));
    let on_sub = |c: Conversion, sub: &str| Conversion { stripe_subscription_id: Some(sub.to_owned()), ..c };
    let sale =
        on_sub(shaped(conversion(&jane, 800), ConversionType::Recurring, ConversionStatus::Approved, T0 - Duration::days(2)), "sub_X");
    let lead =
        on_sub(shaped(conversion(&jane, 801), ConversionType::LeadReward, ConversionStatus::Pending, T0 - Duration::days(1)), "sub_X");
    let over = shaped(override_of(&sale, &bob, 802), ConversionType::Recurring, ConversionStatus::Pending, T0);
    let bonus = on_sub(shaped(conversion(&jane, 803), ConversionType::Bonus, ConversionStatus::Pending, T0), "sub_X");
    let one_time = on_sub(shaped(conversion(&jane, 804), ConversionType::OneTime, ConversionStatus::Pending, T0), "sub_Y");
    let elsewhere =
        on_sub(shaped(conversion(&theirs, 805), ConversionType::Recurring, ConversionStatus::Pending, T0 + Duration::days(1)), "sub_X");
    assert_eq!(over.stripe_subscription_id.as_deref(), Some("sub_X"));
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p, q],
            affiliates: vec![jane.clone(), bob, theirs],
            conversions: vec![sale.clone(), lead, over, bonus, one_time.clone(), elsewhere.clone()],
            ..Seed::default()
        },
    )
    .await;

    let got = commit(store, |tx| {
        Ok((
            tx.sale_conversion_of_subscription(id(1), "sub_X")?,
            tx.sale_conversion_of_subscription(id(1), "sub_Y")?,
            tx.sale_conversion_of_subscription(id(1), "sub_Z")?,
            tx.sale_conversion_of_subscription(id(2), "sub_X")?,
            tx.sale_conversion_of_subscription(id(2), "sub_Y")?,
        ))
    })
    .await;
    assert_eq!(got, (Some(sale), Some(one_time), None, Some(elsewhere), None));

    // A subscription has one sale conversion (a_subscription_has_one_sale_conversion_…), so a
    // second one cannot appear beside it.
    let newer =
        on_sub(shaped(conversion(&jane, 806), ConversionType::Recurring, ConversionStatus::Pending, T0 - Duration::hours(1)), "sub_X");
    assert_conflict(attempt(store, move |tx| tx.insert_conversion(&newer)).await, constraints::SUBSCRIPTION_SALE);
}

/// An invoice or checkout session leads to the non-override conversion whose ledger records it
/// as a sale (initial or renewal), or whose first event it was.
pub async fn a_conversion_is_found_by_invoice_through_its_ledger_or_first_event(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (p, q) = (program(&a, 100, "spring"), program(&b, 101, "spring"));
    let (jane, bob, theirs) =
        (affiliate(&p, 200, "jane@creator.test"), affiliate(&p, 201, "bob@creator.test"), affiliate(&q, 202, "eve@creator.test"));
    let first_event = |c: Conversion, event: &str| Conversion { external_event_id: Some(event.to_owned()), ..c };
    let sale = first_event(conversion(&jane, 800), "in_first");
    let over = override_of(&sale, &bob, 801);
    let mut checkout = first_event(conversion(&jane, 802), "cs_checkout");
    checkout.kind = ConversionType::OneTime;
    let elsewhere = first_event(conversion(&theirs, 803), "in_first");
    let day = Duration::days(1);
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p, q],
            affiliates: vec![jane, bob, theirs],
            conversions: vec![sale.clone(), over.clone(), checkout.clone(), elsewhere.clone()],
            ledger: vec![
                ledger_event(&sale, 900, LedgerKind::Initial, Some("in_first"), T0),
                ledger_event(&sale, 901, LedgerKind::Renewal, Some("in_second"), T0 + 30 * day),
                ledger_event(&sale, 902, LedgerKind::Refund, Some("in_second"), T0 + 31 * day),
                ledger_event(&sale, 903, LedgerKind::Adjustment, Some("in_adjusted"), T0 + 32 * day),
                ledger_event(&over, 904, LedgerKind::Renewal, Some("in_third"), T0 + 60 * day),
                ledger_event(&checkout, 905, LedgerKind::Refund, Some("in_refund_only"), T0 + day),
            ],
            ..Seed::default()
        },
    )
    .await;

    let got = commit(store, |tx| {
        Ok(vec![
            tx.conversion_of_invoice(id(1), "in_first")?,
            tx.conversion_of_invoice(id(1), "in_second")?,
            tx.conversion_of_invoice(id(1), "cs_checkout")?,
            tx.conversion_of_invoice(id(1), "in_third")?,
            tx.conversion_of_invoice(id(1), "in_adjusted")?,
            tx.conversion_of_invoice(id(1), "in_refund_only")?,
            tx.conversion_of_invoice(id(1), "in_unknown")?,
            tx.conversion_of_invoice(id(2), "in_first")?,
            tx.conversion_of_invoice(id(2), "in_second")?,
        ])
    })
    .await;
    let ids: Vec<Option<Uuid>> = got.iter().map(|c| c.as_ref().map(conversion_uuid)).collect();
    let n = |v: u128| Some(Uuid::from_u128(v));
    assert_eq!(ids, vec![n(800), n(800), n(802), None, None, None, None, n(803), None]);
    assert_eq!(got[0], Some(sale), "the whole row comes back");
}

/// The overrides earned on a conversion come back oldest first, and only those.
pub async fn overrides_come_back_for_their_parent_oldest_first(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let (jane, bob, ann) =
        (affiliate(&p, 200, "jane@creator.test"), affiliate(&p, 201, "bob@creator.test"), affiliate(&p, 202, "ann@creator.test"));
    let (first, second) = (conversion(&jane, 800), conversion(&jane, 801));
    let overrides = vec![override_of(&first, &bob, 802), override_of(&second, &bob, 803), override_of(&first, &ann, 804)];
    let mut rows = vec![first, second];
    rows.extend(overrides.clone());
    seed(
        store,
        Seed { orgs: vec![a, org(2, "globex")], programs: vec![p], affiliates: vec![jane, bob, ann], conversions: rows, ..Seed::default() },
    )
    .await;

    let (of_first, of_second, of_override, elsewhere) = commit(store, |tx| {
        Ok((
            tx.overrides_of(id(1), id(800))?,
            tx.overrides_of(id(1), id(801))?,
            tx.overrides_of(id(1), id(802))?,
            tx.overrides_of(id(2), id(800))?,
        ))
    })
    .await;
    assert_eq!(of_first, vec![overrides[0].clone(), overrides[2].clone()]);
    assert_eq!(of_second, vec![overrides[1].clone()]);
    assert!(of_override.is_empty());
    assert!(elsewhere.is_empty());
}

/// The affiliate of a customer is the one of the most recent conversion (by creation, then
/// id) matching the Stripe customer or the email in any case, leads included, denied
/// conversions and overrides excluded.
/// A second sale conversion of one subscription, and a second organization on one Stripe
/// account, are refused under their constraint names; leads and overrides are not sales.
pub async fn a_subscription_has_one_sale_conversion_and_an_account_one_organization(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let p = program(&a, 100, "spring");
    let (jane, bob) = (affiliate(&p, 200, "jane@a.test"), affiliate(&p, 201, "bob@a.test"));
    let on_sub = |c: Conversion| Conversion { stripe_subscription_id: Some("sub_1".to_owned()), ..c };
    let first = on_sub(shaped(conversion(&jane, 800), ConversionType::Recurring, ConversionStatus::Pending, T0));
    let lead = on_sub(shaped(conversion(&bob, 801), ConversionType::LeadReward, ConversionStatus::Pending, T0));
    let over = on_sub(override_of(&first, &bob, 802));
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p],
            affiliates: vec![jane.clone(), bob],
            conversions: vec![first, lead, over],
            ..Seed::default()
        },
    )
    .await;
    let second = on_sub(shaped(conversion(&jane, 803), ConversionType::OneTime, ConversionStatus::Pending, T0));
    assert_conflict(attempt(store, move |tx| tx.insert_conversion(&second)).await, constraints::SUBSCRIPTION_SALE);
    assert!(commit(store, |tx| tx.set_stripe_account(id(1), Some("acct_shared"))).await);
    assert_conflict(
        attempt(store, |tx| tx.set_stripe_account(id(2), Some("acct_shared")).map(|_| ())).await,
        constraints::ORG_STRIPE_ACCOUNT,
    );
}

/// `orgs_of_stripe_customer` names every organization holding a conversion of the customer,
/// most recent first, at most two.
pub async fn the_organizations_of_a_stripe_customer_come_most_recent_first(store: &dyn UnitOfWork) {
    let (a, b, c) = (org(1, "acme"), org(2, "globex"), org(3, "initech"));
    let (pa, pb, pc) = (program(&a, 100, "spring"), program(&b, 101, "spring"), program(&c, 102, "spring"));
    let (ja, jb, jc) = (affiliate(&pa, 200, "j@a.test"), affiliate(&pb, 201, "j@b.test"), affiliate(&pc, 202, "j@c.test"));
    let of = |conversion: Conversion, customer: &str, at| Conversion {
        stripe_customer_id: Some(customer.to_owned()),
        created_at: at,
        ..conversion
    };
    let day = Duration::days(1);
    seed(
        store,
        Seed {
            orgs: vec![a, b, c],
            programs: vec![pa, pb, pc],
            affiliates: vec![ja.clone(), jb.clone(), jc.clone()],
            conversions: vec![
                of(conversion(&ja, 800), "cus_shared", T0 - 2 * day),
                of(conversion(&jb, 801), "cus_shared", T0 - day),
                of(conversion(&jc, 802), "cus_shared", T0 - 3 * day),
                of(conversion(&ja, 803), "cus_only_a", T0),
            ],
            ..Seed::default()
        },
    )
    .await;
    let got = commit(store, |tx| {
        Ok((tx.orgs_of_stripe_customer("cus_shared")?, tx.orgs_of_stripe_customer("cus_only_a")?, tx.orgs_of_stripe_customer("cus_none")?))
    })
    .await;
    assert_eq!(got, (vec![id(2), id(1)], vec![id(1)], vec![]));
}

pub async fn the_affiliate_of_a_customer_is_the_latest_credited_by_id_or_email(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let p = program(&a, 100, "spring");
    let (jane, bob, eve, ann) = (
        affiliate(&p, 200, "jane@creator.test"),
        affiliate(&p, 201, "bob@creator.test"),
        affiliate(&p, 202, "eve@creator.test"),
        affiliate(&p, 203, "ann@creator.test"),
    );
    let buyer = |c: Conversion, customer: Option<&str>, email: Option<&str>| Conversion {
        stripe_customer_id: customer.map(str::to_owned),
        customer_email: email.map(str::to_owned),
        ..c
    };
    let day = Duration::days(1);
    let jane_sale = buyer(
        shaped(conversion(&jane, 800), ConversionType::Recurring, ConversionStatus::Approved, T0 - 3 * day),
        Some("cus_A"),
        Some("Buyer@Shop.test"),
    );
    let bob_denied = buyer(
        shaped(conversion(&bob, 801), ConversionType::OneTime, ConversionStatus::Denied, T0 - day),
        Some("cus_A"),
        Some("buyer@shop.test"),
    );
    let eve_override = buyer(
        shaped(override_of(&jane_sale, &eve, 802), ConversionType::Recurring, ConversionStatus::Pending, T0),
        Some("cus_A"),
        Some("buyer@shop.test"),
    );
    let ann_by_email = buyer(
        shaped(conversion(&ann, 803), ConversionType::OneTime, ConversionStatus::Refunded, T0 - 2 * day),
        None,
        Some("BUYER@shop.test"),
    );
    let bob_lead = buyer(
        shaped(conversion(&bob, 804), ConversionType::LeadReward, ConversionStatus::Pending, T0 - Duration::hours(1)),
        Some("cus_B"),
        None,
    );
    // Two conversions created at the same instant: the larger id breaks the tie.
    let tie_jane = buyer(shaped(conversion(&jane, 805), ConversionType::OneTime, ConversionStatus::Pending, T0), Some("cus_C"), None);
    let tie_eve = buyer(shaped(conversion(&eve, 806), ConversionType::OneTime, ConversionStatus::Pending, T0), Some("cus_C"), None);
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p],
            affiliates: vec![jane, bob, eve, ann],
            conversions: vec![jane_sale, bob_denied, eve_override, ann_by_email, bob_lead, tie_jane, tie_eve],
            ..Seed::default()
        },
    )
    .await;

    let got = commit(store, |tx| {
        Ok(vec![
            ("customer only", tx.affiliate_of_customer(id(1), Some("cus_A"), None)?),
            ("email only, any case", tx.affiliate_of_customer(id(1), None, Some("bUYER@SHOP.test"))?),
            ("either matches", tx.affiliate_of_customer(id(1), Some("cus_A"), Some("buyer@shop.test"))?),
            ("unknown customer, known email", tx.affiliate_of_customer(id(1), Some("cus_unknown"), Some("buyer@shop.test"))?),
            ("a lead counts", tx.affiliate_of_customer(id(1), Some("cus_B"), None)?),
            ("tie on creation", tx.affiliate_of_customer(id(1), Some("cus_C"), None)?),
            ("unknown", tx.affiliate_of_customer(id(1), Some("cus_unknown"), Some("nobody@shop.test"))?),
            ("nothing asked", tx.affiliate_of_customer(id(1), None, None)?),
            ("another organization", tx.affiliate_of_customer(id(2), Some("cus_A"), Some("buyer@shop.test"))?),
        ])
    })
    .await;
    let want: Vec<Option<AffiliateId>> =
        vec![Some(id(200)), Some(id(203)), Some(id(203)), Some(id(203)), Some(id(201)), Some(id(202)), None, None, None];
    for ((case, got), want) in got.into_iter().zip(want) {
        assert_eq!(got, want, "{case}");
    }
}

/// The conversion list filters by affiliate, program, status and creation window (`since`
/// inclusive, `until` exclusive) and pages newest first by id.
pub async fn conversion_lists_filter_and_page_newest_first(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (spring, summer, q) = (program(&a, 100, "spring"), program(&a, 101, "summer"), program(&b, 102, "spring"));
    let (jane, bob, ann, theirs) = (
        affiliate(&spring, 200, "jane@creator.test"),
        affiliate(&spring, 201, "bob@creator.test"),
        affiliate(&summer, 202, "ann@creator.test"),
        affiliate(&q, 203, "eve@creator.test"),
    );
    let day = Duration::days(1);
    let (pending, approved, denied, one) =
        (ConversionStatus::Pending, ConversionStatus::Approved, ConversionStatus::Denied, ConversionType::OneTime);
    let rows = vec![
        shaped(conversion(&jane, 800), one, pending, T0 - 3 * day),
        shaped(conversion(&bob, 801), one, approved, T0 - 2 * day),
        shaped(conversion(&ann, 802), one, pending, T0 - day),
        shaped(conversion(&jane, 803), one, denied, T0),
        shaped(conversion(&jane, 804), one, pending, T0 + Duration::hours(1)),
        shaped(conversion(&bob, 805), one, pending, T0 + day),
        shaped(conversion(&ann, 806), one, approved, T0 + 2 * day),
        shaped(conversion(&jane, 807), one, approved, T0 + 3 * day),
        shaped(conversion(&theirs, 808), one, pending, T0),
    ];
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![spring, summer, q],
            affiliates: vec![jane, bob, ann, theirs],
            conversions: rows,
            ..Seed::default()
        },
    )
    .await;

    let list = |filter: ConversionFilter| async move {
        let rows = commit(store, move |tx| tx.list_conversions(id(1), &filter, &PageRequest::first())).await;
        uuids(&rows, conversion_uuid)
    };
    let all = ConversionFilter::default();
    assert_eq!(list(all.clone()).await, nums(&[807, 806, 805, 804, 803, 802, 801, 800]));
    assert_eq!(list(ConversionFilter { affiliate_id: Some(id(200)), ..all.clone() }).await, nums(&[807, 804, 803, 800]));
    assert_eq!(list(ConversionFilter { program_id: Some(id(101)), ..all.clone() }).await, nums(&[806, 802]));
    assert_eq!(list(ConversionFilter { status: Some(pending), ..all.clone() }).await, nums(&[805, 804, 802, 800]));
    assert_eq!(list(ConversionFilter { since: Some(T0), ..all.clone() }).await, nums(&[807, 806, 805, 804, 803]));
    assert_eq!(list(ConversionFilter { until: Some(T0), ..all.clone() }).await, nums(&[802, 801, 800]));
    assert_eq!(
        list(ConversionFilter { since: Some(T0 - 2 * day), until: Some(T0 + day), ..all.clone() }).await,
        nums(&[804, 803, 802, 801])
    );
    assert_eq!(
        list(ConversionFilter { affiliate_id: Some(id(200)), status: Some(approved), since: Some(T0), ..all.clone() }).await,
        nums(&[807])
    );
    assert_eq!(list(ConversionFilter { affiliate_id: Some(id(203)), ..all.clone() }).await, nums(&[]), "another organization's affiliate");

    let pages = read_pages(store, 3, conversion_uuid, |tx, p| tx.list_conversions(id(1), &ConversionFilter::default(), p)).await;
    assert_eq!(pages, vec![nums(&[807, 806, 805]), nums(&[804, 803, 802]), nums(&[801, 800])]);
    let janes = ConversionFilter { affiliate_id: Some(id(200)), ..ConversionFilter::default() };
    let pages = read_pages(store, 2, conversion_uuid, move |tx, p| tx.list_conversions(id(1), &janes, p)).await;
    assert_eq!(pages, vec![nums(&[807, 804]), nums(&[803, 800])]);
}

/// Pending conversions whose `approve_after` has passed (inclusive), of every organization,
/// longest due first, at most `limit`.
pub async fn conversions_due_for_approval_span_organizations_longest_due_first(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (p, q) = (program(&a, 100, "spring"), program(&b, 101, "spring"));
    let (jane, theirs) = (affiliate(&p, 200, "jane@creator.test"), affiliate(&q, 201, "eve@creator.test"));
    let due = |c: Conversion, status: ConversionStatus, approve_after: OffsetDateTime| Conversion { status, approve_after, ..c };
    let (pending, day) = (ConversionStatus::Pending, Duration::days(1));
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p, q],
            affiliates: vec![jane.clone(), theirs.clone()],
            conversions: vec![
                due(conversion(&jane, 800), pending, T0 - day),
                due(conversion(&jane, 801), pending, T0),
                due(conversion(&jane, 802), pending, T0 + Duration::seconds(1)),
                due(conversion(&jane, 803), ConversionStatus::Approved, T0 - 5 * day),
                due(conversion(&jane, 804), ConversionStatus::Denied, T0 - 5 * day),
                due(conversion(&theirs, 805), pending, T0 - 2 * day),
                due(conversion(&jane, 806), pending, T0 - day),
            ],
            ..Seed::default()
        },
    )
    .await;

    let (all, two, none) = commit(store, move |tx| {
        Ok((
            tx.conversions_due_for_approval(T0, 10)?,
            tx.conversions_due_for_approval(T0, 2)?,
            tx.conversions_due_for_approval(T0 - 3 * day, 10)?,
        ))
    })
    .await;
    assert_eq!(uuids(&all, conversion_uuid), nums(&[805, 800, 806, 801]));
    assert_eq!(uuids(&two, conversion_uuid), nums(&[805, 800]));
    assert!(none.is_empty());
}

/// A conversion's ledger comes back whole and oldest first (by occurrence, then id), only its
/// own entries.
pub async fn a_ledger_comes_back_oldest_first(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let jane = affiliate(&p, 200, "jane@creator.test");
    let (sale, other) = (conversion(&jane, 800), conversion(&jane, 801));
    let hour = Duration::hours(1);
    let mut manual = ledger_event(&sale, 903, LedgerKind::Adjustment, None, T0 + hour);
    manual.amount_minor = 0;
    manual.commission_minor = -1;
    let entries = vec![
        ledger_event(&sale, 900, LedgerKind::Renewal, Some("in_2"), T0 + 2 * hour),
        ledger_event(&sale, 901, LedgerKind::Initial, Some("in_1"), T0),
        ledger_event(&sale, 902, LedgerKind::Refund, Some("in_1"), T0 + hour),
        manual,
        ledger_event(&other, 904, LedgerKind::Initial, Some("in_9"), T0 - hour),
    ];
    seed(
        store,
        Seed {
            orgs: vec![a, org(2, "globex")],
            programs: vec![p],
            affiliates: vec![jane],
            conversions: vec![sale, other],
            ledger: entries.clone(),
            ..Seed::default()
        },
    )
    .await;

    let (ledger, elsewhere, none) =
        commit(store, |tx| Ok((tx.ledger_of(id(1), id(800))?, tx.ledger_of(id(2), id(800))?, tx.ledger_of(id(1), id(899))?))).await;
    assert_eq!(ledger, vec![entries[1].clone(), entries[2].clone(), entries[3].clone(), entries[0].clone()]);
    assert!(elsewhere.is_empty());
    assert!(none.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Inbox
// ---------------------------------------------------------------------------------------------

fn inbox_ids(events: &[InboxEvent]) -> Vec<String> {
    events.iter().map(|e| e.id.clone()).collect()
}

fn evts(ns: &[u128]) -> Vec<String> {
    ns.iter().map(|n| format!("evt_{n}")).collect()
}

/// An inbound event is stored whole once: a redelivery answers false and changes nothing, and
/// `update_inbox_event` replaces the processing state (status, organization, attempts, next
/// attempt, lock, error, processed time) but never what arrived.
pub async fn an_inbox_event_is_stored_once_and_its_processing_state_updates(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    seed(store, Seed { orgs: vec![a.clone()], ..Seed::default() }).await;

    let unresolved = inbox_event(1300, None, T0);
    let mut full = inbox_event(1301, Some(&a), T0 + Duration::seconds(1));
    full.status = InboxStatus::Failed;
    full.attempts = u32::MAX;
    full.next_attempt_at = T0 + Duration::hours(1);
    full.locked_until = Some(T0 + Duration::minutes(5));
    full.last_error = Some("no organization for account acct_9".to_owned());
    full.processed_at = Some(T0 + Duration::minutes(1));
    full.replays = 5;
    let (u, f) = (unresolved.clone(), full.clone());
    let stored = commit(store, move |tx| Ok((tx.insert_inbox_event(&u)?, tx.insert_inbox_event(&f)?))).await;
    assert_eq!(stored, (true, true));

    let mut redelivery = unresolved.clone();
    redelivery.payload = r#"{"id":"evt_1300","changed":true}"#.to_owned();
    redelivery.received_at = T0 + Duration::hours(2);
    let again = commit(store, move |tx| tx.insert_inbox_event(&redelivery)).await;
    assert!(!again, "a redelivery is not stored again");
    let got = commit(store, |tx| Ok((tx.inbox_event("evt_1300")?, tx.inbox_event("evt_1301")?, tx.inbox_event("evt_unknown")?))).await;
    assert_eq!(got, (Some(unresolved.clone()), Some(full), None));

    let mut processed = unresolved.clone();
    processed.org_id = Some(a.id);
    processed.status = InboxStatus::Done;
    processed.attempts = 3;
    processed.next_attempt_at = T0 + Duration::minutes(10);
    processed.locked_until = None;
    processed.last_error = Some("retried twice".to_owned());
    processed.processed_at = Some(T0 + Duration::minutes(11));
    processed.replays = 2;
    let mut sent = processed.clone();
    sent.payload = "tampered".to_owned();
    sent.event_type = "tampered".to_owned();
    commit(store, move |tx| tx.update_inbox_event(&sent)).await;
    assert_eq!(commit(store, |tx| tx.inbox_event("evt_1300")).await, Some(processed), "the processing state changed, the arrival did not");
}

/// A claim takes due, pending, unheld events oldest arrival first, holds them until the lease
/// ends and counts an attempt; a claim before the lease ends passes over them, one after takes
/// them again. Done events and events not due yet are never taken.
pub async fn inbox_claims_lease_events_and_count_attempts(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let minute = Duration::minutes(1);
    let mut events = vec![
        inbox_event(1301, Some(&a), T0 - 180 * minute),
        inbox_event(1302, None, T0 - 120 * minute),
        inbox_event(1303, Some(&a), T0 - 60 * minute),
        inbox_event(1304, Some(&a), T0 - 240 * minute),
        inbox_event(1305, Some(&a), T0 - 30 * minute),
        inbox_event(1306, Some(&a), T0 - 20 * minute),
    ];
    events[2].next_attempt_at = T0 + 60 * minute; // not due yet
    events[3].status = InboxStatus::Done;
    events[4].locked_until = Some(T0 + 5 * minute); // held by another worker
    events[5].locked_until = Some(T0 - minute); // a lease that ran out
    events[5].attempts = 4;
    seed(store, Seed { orgs: vec![a], inbox: events, ..Seed::default() }).await;

    let lease = T0 + 5 * minute;
    let first = commit(store, move |tx| tx.claim_inbox_events(T0, lease, 2)).await;
    assert_eq!(inbox_ids(&first), evts(&[1301, 1302]));
    assert!(first.iter().all(|e| e.locked_until == Some(lease) && e.attempts == 1), "{first:?}");
    assert_eq!(commit(store, |tx| tx.inbox_event("evt_1301")).await, Some(first[0].clone()), "the claim is stored");

    let rest = commit(store, move |tx| tx.claim_inbox_events(T0, lease, 10)).await;
    assert_eq!(inbox_ids(&rest), evts(&[1306]), "held, undue and done events are passed over");
    assert_eq!(rest[0].attempts, 5);

    let during = commit(store, move |tx| tx.claim_inbox_events(T0 + 4 * minute, T0 + 9 * minute, 10)).await;
    assert!(during.is_empty(), "a claim before the lease ends gets nothing: {during:?}");

    let later = T0 + 10 * minute;
    let after = commit(store, move |tx| tx.claim_inbox_events(lease, later, 10)).await;
    assert_eq!(inbox_ids(&after), evts(&[1301, 1302, 1305, 1306]), "a lease that ran out frees the event");
    let attempts: Vec<u32> = after.iter().map(|e| e.attempts).collect();
    assert_eq!(attempts, vec![2, 2, 1, 6]);
    assert!(after.iter().all(|e| e.locked_until == Some(later)));

    let mut done = after[0].clone();
    done.status = InboxStatus::Done;
    done.locked_until = None;
    done.processed_at = Some(later);
    commit(store, move |tx| tx.update_inbox_event(&done)).await;
    let hour_later = commit(store, |tx| tx.claim_inbox_events(T0 + Duration::hours(2), T0 + Duration::hours(3), 10)).await;
    assert_eq!(inbox_ids(&hour_later), evts(&[1302, 1303, 1305, 1306]), "done events are never claimed; due ones join");
}

/// A renewal moves the lease of the given events that are still `Pending` and held, and a
/// release lets them go; finished, unheld and unnamed events are left alone.
pub async fn inbox_leases_are_renewed_and_let_go_only_while_events_are_held(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let second = Duration::seconds(1);
    let mut events: Vec<InboxEvent> = (1301..=1305).map(|n| inbox_event(n, Some(&a), T0)).collect();
    events[2].status = InboxStatus::Done; // finished by its worker
    seed(store, Seed { orgs: vec![a], inbox: events, ..Seed::default() }).await;
    let lease = T0 + 15 * second;
    let claimed = commit(store, move |tx| tx.claim_inbox_events(T0, lease, 2)).await;
    assert_eq!(inbox_ids(&claimed), evts(&[1301, 1302]));

    let asked = evts(&[1301, 1302, 1303, 1304]);
    let renewed_until = T0 + 25 * second;
    let renewed = commit(store, move |tx| tx.renew_inbox_leases(&asked, renewed_until)).await;
    assert_eq!(renewed, 2, "only the held events are renewed");
    let got = commit(store, |tx| Ok((tx.inbox_event("evt_1301")?, tx.inbox_event("evt_1303")?, tx.inbox_event("evt_1304")?))).await;
    assert_eq!(got.0.and_then(|e| e.locked_until), Some(renewed_until));
    assert_eq!(got.1.and_then(|e| e.locked_until), None, "a done event gets no lease");
    assert_eq!(got.2.and_then(|e| e.locked_until), None, "an unheld event gets no lease");

    let asked = evts(&[1302, 1304]);
    assert_eq!(commit(store, move |tx| tx.release_inbox_events(&asked)).await, 1);
    let free = commit(store, move |tx| tx.claim_inbox_events(T0 + second, T0 + 16 * second, 10)).await;
    assert_eq!(inbox_ids(&free), evts(&[1302, 1304, 1305]), "the released event is taken at once, the renewed one is not");
    assert_eq!(free[0].attempts, 2);
}

/// `Waiting` events wake (become `Pending` and due now, no longer waiting, with the sale's
/// organization when they had none) for a payment they wait for on the same Stripe account;
/// others keep waiting. Due ones wake by themselves, oldest recheck first, at most `limit`.
pub async fn waiting_events_wake_for_their_payment_on_their_account_or_when_due(store: &dyn UnitOfWork) {
    let (mut a, b) = (org(1, "acme"), org(2, "globex"));
    a.stripe_account_id = None;
    let hour = Duration::hours(1);
    let waiting =
        |n: u128, org: Option<&rekomi_domain::org::Organization>, account: Option<&str>, payment: &str, recheck: OffsetDateTime| {
            InboxEvent {
                status: InboxStatus::Waiting,
                account: account.map(str::to_owned),
                waiting_for: Some(payment.to_owned()),
                next_attempt_at: recheck,
                last_error: Some(format!("waiting for the sale of payment {payment}")),
                ..inbox_event(n, org, T0)
            }
        };
    seed(
        store,
        Seed {
            orgs: vec![a.clone(), b.clone()],
            inbox: vec![
                waiting(1301, None, None, "in_x", T0 + 6 * hour),
                waiting(1302, Some(&b), None, "in_x", T0 + 6 * hour),
                waiting(1303, None, Some("acct_other"), "in_x", T0 + 6 * hour),
                waiting(1304, None, None, "in_y", T0 + 2 * hour),
                waiting(1305, None, None, "pi_y", T0 + 3 * hour),
                inbox_event(1306, None, T0),
            ],
            ..Seed::default()
        },
    )
    .await;
    let payments = vec!["in_x".to_owned(), "pi_x".to_owned()];
    let woken = commit(store, move |tx| tx.wake_waiting_inbox_events(None, &payments, id(1), T0 + hour)).await;
    assert_eq!(woken, 2, "the platform account's refunds of in_x");
    let got = commit(store, |tx| Ok((tx.inbox_event("evt_1301")?, tx.inbox_event("evt_1302")?, tx.inbox_event("evt_1303")?))).await;
    let (first, second, other_account) = (got.0.unwrap(), got.1.unwrap(), got.2.unwrap());
    assert_eq!((first.status, first.waiting_for.as_deref(), first.next_attempt_at), (InboxStatus::Pending, None, T0 + hour));
    assert_eq!(first.org_id, Some(id(1)), "an event without an organization takes the sale's");
    assert_eq!((second.status, second.org_id), (InboxStatus::Pending, Some(id(2))), "an organization already known stays");
    assert_eq!(other_account.status, InboxStatus::Waiting, "ids are unique per Stripe account only");
    let connected = vec!["in_x".to_owned()];
    assert_eq!(commit(store, move |tx| tx.wake_waiting_inbox_events(Some("acct_other"), &connected, id(2), T0 + hour)).await, 1);

    assert_eq!(commit(store, move |tx| tx.wake_due_inbox_events(T0 + hour, 10)).await, 0, "nothing is due yet");
    assert_eq!(commit(store, move |tx| tx.wake_due_inbox_events(T0 + 4 * hour, 1)).await, 1);
    let got = commit(store, |tx| Ok((tx.inbox_event("evt_1304")?, tx.inbox_event("evt_1305")?))).await;
    assert_eq!(got.0.map(|e| (e.status, e.waiting_for)), Some((InboxStatus::Pending, None)), "the oldest recheck first");
    assert_eq!(got.1.map(|e| e.status), Some(InboxStatus::Waiting));
    assert_eq!(commit(store, move |tx| tx.wake_due_inbox_events(T0 + 4 * hour, 10)).await, 1);
    let claimed = commit(store, move |tx| tx.claim_inbox_events(T0 + 4 * hour, T0 + 5 * hour, 10)).await;
    assert_eq!(inbox_ids(&claimed), evts(&[1301, 1302, 1303, 1304, 1305, 1306]));
}

/// `orgs_of_payment` names the organizations whose ledger records a sale (initial or renewal
/// entry) of the payment, at most two; a refund entry alone names nobody.
pub async fn the_organizations_of_a_payment_are_those_whose_ledger_records_its_sale(store: &dyn UnitOfWork) {
    let (a, b, c) = (org(1, "acme"), org(2, "globex"), org(3, "initech"));
    let (pa, pb, pc) = (program(&a, 100, "spring"), program(&b, 101, "spring"), program(&c, 102, "spring"));
    let (ja, jb, jc) = (affiliate(&pa, 200, "j@a.test"), affiliate(&pb, 201, "j@b.test"), affiliate(&pc, 202, "j@c.test"));
    let (ca, cb, cc) = (conversion(&ja, 800), conversion(&jb, 801), conversion(&jc, 802));
    seed(
        store,
        Seed {
            orgs: vec![a, b, c],
            programs: vec![pa, pb, pc],
            affiliates: vec![ja, jb, jc],
            ledger: vec![
                ledger_event(&ca, 900, LedgerKind::Initial, Some("in_only_a"), T0),
                ledger_event(&ca, 901, LedgerKind::Renewal, Some("in_shared"), T0),
                ledger_event(&cb, 902, LedgerKind::Initial, Some("in_shared"), T0),
                ledger_event(&cc, 903, LedgerKind::Refund, Some("in_shared"), T0),
                ledger_event(&cc, 904, LedgerKind::Refund, Some("in_refund_only"), T0),
            ],
            conversions: vec![ca, cb, cc],
            ..Seed::default()
        },
    )
    .await;
    let (mut shared, only_a, refund_only, unknown) = commit(store, |tx| {
        Ok((
            tx.orgs_of_payment("in_shared")?,
            tx.orgs_of_payment("in_only_a")?,
            tx.orgs_of_payment("in_refund_only")?,
            tx.orgs_of_payment("in_unknown")?,
        ))
    })
    .await;
    shared.sort();
    assert_eq!((shared, only_a, refund_only, unknown), (vec![id(1), id(2)], vec![id(1)], vec![], vec![]));
}

/// The inbox list is newest arrival first, of one organization or (`None`) of all, optionally
/// of one status, strictly before a time, at most `limit`.
pub async fn inbox_events_list_by_organization_status_and_arrival(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let minute = Duration::minutes(1);
    let mut events = vec![
        inbox_event(1301, Some(&a), T0),
        inbox_event(1302, Some(&b), T0 + minute),
        inbox_event(1303, None, T0 + 2 * minute),
        inbox_event(1304, Some(&a), T0 + 3 * minute),
        inbox_event(1305, Some(&a), T0 + 4 * minute),
    ];
    events[3].status = InboxStatus::Failed;
    events[1].status = InboxStatus::Failed;
    seed(store, Seed { orgs: vec![a, b], inbox: events, ..Seed::default() }).await;

    let got = commit(store, move |tx| {
        Ok(vec![
            ("of acme", tx.list_inbox_events(Some(id(1)), None, None, 10)?),
            ("of everyone", tx.list_inbox_events(None, None, None, 10)?),
            ("failed", tx.list_inbox_events(None, Some(InboxStatus::Failed), None, 10)?),
            ("failed of acme", tx.list_inbox_events(Some(id(1)), Some(InboxStatus::Failed), None, 10)?),
            ("before, exclusive", tx.list_inbox_events(None, None, Some(T0 + 3 * minute), 10)?),
            ("limit", tx.list_inbox_events(None, None, None, 2)?),
            ("of globex before", tx.list_inbox_events(Some(id(2)), None, Some(T0 + minute), 10)?),
            ("of nobody", tx.list_inbox_events(Some(id(3)), None, None, 10)?),
            ("done", tx.list_inbox_events(None, Some(InboxStatus::Done), None, 10)?),
        ])
    })
    .await;
    let want = [
        evts(&[1305, 1304, 1301]),
        evts(&[1305, 1304, 1303, 1302, 1301]),
        evts(&[1304, 1302]),
        evts(&[1304]),
        evts(&[1303, 1302, 1301]),
        evts(&[1305, 1304]),
        evts(&[]),
        evts(&[]),
        evts(&[]),
    ];
    for ((case, events), want) in got.into_iter().zip(want) {
        assert_eq!(inbox_ids(&events), want, "{case}");
    }
}

// ---------------------------------------------------------------------------------------------
// Outbound webhooks
// ---------------------------------------------------------------------------------------------

fn delivery_uuid(d: &Delivery) -> Uuid {
    d.id.as_uuid()
}

/// Every field of an endpoint survives storage (its event filters as a list, empty or not),
/// `update_endpoint` replaces every field, the organization's endpoints come newest first,
/// and deleting an endpoint deletes its deliveries (once).
pub async fn a_webhook_endpoint_round_trips_updates_and_deletes_with_its_deliveries(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let hook = endpoint(&a, 1000);
    let mut every_event = endpoint(&a, 1001);
    every_event.events = Vec::new();
    every_event.description = None;
    every_event.status = EndpointStatus::Disabled;
    every_event.disabled_reason = Some("5 deliveries failed in a row".to_owned());
    every_event.consecutive_failures = u32::MAX;
    let theirs = endpoint(&b, 1002);
    let event = outbox_event(&a, 1100);
    let deliveries = vec![delivery(&hook, &event, 1200, T0), delivery(&every_event, &event, 1201, T0), delivery(&hook, &event, 1202, T0)];
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            endpoints: vec![hook.clone(), every_event.clone(), theirs.clone()],
            outbox: vec![event],
            deliveries: deliveries.clone(),
            ..Seed::default()
        },
    )
    .await;

    let got = commit(store, |tx| {
        Ok((
            tx.endpoint(id(1), id(1000))?,
            tx.endpoint(id(1), id(1001))?,
            tx.endpoints(id(1))?,
            tx.endpoint_any_org(id(1002))?,
            tx.endpoint_any_org(id(1099))?,
        ))
    })
    .await;
    assert_eq!(got, (Some(hook.clone()), Some(every_event.clone()), vec![every_event.clone(), hook.clone()], Some(theirs), None));

    let mut changed = hook.clone();
    changed.url = "https://hooks.acme.test/v2".to_owned();
    changed.description = None;
    changed.events = vec!["conversion.*".to_owned(), "affiliate.created".to_owned(), "payout.paid".to_owned()];
    changed.secret = "whsec_rotated".to_owned();
    changed.status = EndpointStatus::Disabled;
    changed.disabled_reason = Some("disabled by the brand".to_owned());
    changed.consecutive_failures = 3;
    changed.updated_at = T0 + Duration::hours(1);
    let update = changed.clone();
    commit(store, move |tx| tx.update_endpoint(&update)).await;
    assert_eq!(commit(store, |tx| tx.endpoint(id(1), id(1000))).await, Some(changed));

    let (deleted, again) = commit(store, |tx| Ok((tx.delete_endpoint(id(1), id(1000))?, tx.delete_endpoint(id(1), id(1000))?))).await;
    assert!(deleted);
    assert!(!again, "an endpoint is deleted once");
    let after = commit(store, |tx| {
        Ok((
            tx.endpoint(id(1), id(1000))?,
            tx.delivery(id(1), id(1200))?,
            tx.delivery(id(1), id(1202))?,
            tx.deliveries_of(id(1), id(1000), &PageRequest::first())?,
            tx.delivery(id(1), id(1201))?,
            tx.endpoints(id(1))?.len(),
        ))
    })
    .await;
    assert_eq!(
        after,
        (None, None, None, Vec::new(), Some(deliveries[1].clone()), 1),
        "the deliveries went with their endpoint, and only those"
    );
}

/// Every field of a delivery survives storage, `update_delivery` replaces its retry state, and
/// an endpoint's deliveries page newest first.
pub async fn a_delivery_round_trips_updates_and_pages_newest_first(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let (hook, other) = (endpoint(&a, 1000), endpoint(&a, 1001));
    let event = outbox_event(&a, 1100);
    let mut full = delivery(&hook, &event, 1200, T0);
    full.status = DeliveryStatus::Failed;
    full.attempts = u32::MAX;
    full.locked_until = Some(T0 + Duration::minutes(1));
    full.last_status = Some(u16::MAX);
    full.last_error = Some("connection refused".to_owned());
    full.delivered_at = Some(T0 + Duration::seconds(3));
    let mut rows = vec![full.clone()];
    rows.extend((1201..1206).map(|n| delivery(&hook, &event, n, T0)));
    rows.push(delivery(&other, &event, 1206, T0));
    seed(store, Seed { orgs: vec![a], endpoints: vec![hook, other], outbox: vec![event], deliveries: rows.clone(), ..Seed::default() })
        .await;

    assert_eq!(commit(store, |tx| tx.delivery(id(1), id(1200))).await, Some(full));
    let pages = read_pages(store, 2, delivery_uuid, |tx, p| tx.deliveries_of(id(1), id(1000), p)).await;
    assert_eq!(pages, vec![nums(&[1205, 1204]), nums(&[1203, 1202]), nums(&[1201, 1200])]);

    let mut sent = rows[1].clone();
    sent.status = DeliveryStatus::Succeeded;
    sent.attempts = 2;
    sent.next_attempt_at = T0 + Duration::seconds(10);
    sent.locked_until = None;
    sent.last_status = Some(204);
    sent.last_error = Some("timed out once".to_owned());
    sent.delivered_at = Some(T0 + Duration::seconds(12));
    let update = sent.clone();
    commit(store, move |tx| tx.update_delivery(&update)).await;
    assert_eq!(commit(store, |tx| tx.delivery(id(1), id(1201))).await, Some(sent));
}

/// A delivery claim takes due, pending, unheld deliveries of enabled endpoints only, oldest
/// first, holds them until the lease ends and counts an attempt.
pub async fn delivery_claims_take_only_enabled_endpoints_and_lease_them(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (on, mut off, theirs) = (endpoint(&a, 1000), endpoint(&a, 1001), endpoint(&b, 1002));
    off.status = EndpointStatus::Disabled;
    let (event, their_event) = (outbox_event(&a, 1100), outbox_event(&b, 1101));
    let minute = Duration::minutes(1);
    let mut rows = vec![
        delivery(&on, &event, 1200, T0 - 20 * minute),
        delivery(&off, &event, 1201, T0 - 30 * minute),
        delivery(&on, &event, 1202, T0 - 40 * minute),
        delivery(&on, &event, 1203, T0 - 50 * minute),
        delivery(&theirs, &their_event, 1204, T0 - 10 * minute),
        delivery(&on, &event, 1205, T0 - 60 * minute),
    ];
    rows[2].status = DeliveryStatus::Succeeded;
    rows[3].next_attempt_at = T0 + 60 * minute; // a retry not due yet
    rows[5].locked_until = Some(T0 + minute); // held by another worker
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            endpoints: vec![on, off.clone(), theirs],
            outbox: vec![event, their_event],
            deliveries: rows,
            ..Seed::default()
        },
    )
    .await;

    let lease = T0 + minute;
    let claimed = commit(store, move |tx| tx.claim_deliveries(T0, lease, 10)).await;
    assert_eq!(uuids(&claimed, delivery_uuid), nums(&[1200, 1204]), "oldest first, of every organization, enabled endpoints only");
    assert!(claimed.iter().all(|d| d.attempts == 1 && d.locked_until == Some(lease)), "{claimed:?}");
    assert_eq!(commit(store, |tx| tx.delivery(id(1), id(1200))).await, Some(claimed[0].clone()));

    assert!(commit(store, move |tx| tx.claim_deliveries(T0, lease, 10)).await.is_empty(), "held until the lease ends");
    let one = commit(store, move |tx| tx.claim_deliveries(lease, T0 + 2 * minute, 1)).await;
    assert_eq!(uuids(&one, delivery_uuid), nums(&[1205]), "at most limit, oldest first");

    let mut enabled = off;
    enabled.status = EndpointStatus::Enabled;
    enabled.disabled_reason = None;
    commit(store, move |tx| tx.update_endpoint(&enabled)).await;
    let again = commit(store, move |tx| tx.claim_deliveries(T0 + 2 * minute, T0 + 3 * minute, 10)).await;
    assert_eq!(uuids(&again, delivery_uuid), nums(&[1205, 1201, 1200, 1204]));
    let attempts: Vec<u32> = again.iter().map(|d| d.attempts).collect();
    assert_eq!(attempts, vec![2, 1, 2, 2]);
}

/// A renewal moves the lease of the named deliveries still pending and held; the queue
/// depths count pending work (deliveries of enabled endpoints only) and name the oldest due
/// time.
pub async fn delivery_leases_are_renewed_only_while_held_and_queue_depths_count_pending_work(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let (on, mut off) = (endpoint(&a, 1000), endpoint(&a, 1001));
    off.status = EndpointStatus::Disabled;
    let event = outbox_event(&a, 1100);
    let minute = Duration::minutes(1);
    let mut rows = vec![
        delivery(&on, &event, 1200, T0 - 20 * minute),
        delivery(&on, &event, 1201, T0 - 10 * minute),
        delivery(&on, &event, 1202, T0 - 5 * minute),
        delivery(&off, &event, 1203, T0 - 30 * minute),
    ];
    rows[0].next_attempt_at = T0 - 20 * minute;
    rows[1].next_attempt_at = T0 - 10 * minute;
    rows[2].next_attempt_at = T0 + 30 * minute; // not due yet
    rows[3].next_attempt_at = T0 - 30 * minute; // of a disabled endpoint
    let mut inbox: Vec<InboxEvent> = (1301..=1303).map(|n| inbox_event(n, Some(&a), T0 - Duration::minutes(40 - n as i64 % 10))).collect();
    inbox[0].next_attempt_at = T0 - 7 * minute;
    inbox[1].next_attempt_at = T0 + minute;
    inbox[2].status = InboxStatus::Done;
    seed(store, Seed { orgs: vec![a], endpoints: vec![on, off], outbox: vec![event], deliveries: rows, inbox, ..Seed::default() }).await;

    let depths = commit(store, |tx| Ok((tx.delivery_depth(T0)?, tx.inbox_depth(T0)?))).await;
    assert_eq!(depths, ((3, Some(T0 - 20 * minute)), (2, Some(T0 - 7 * minute))));
    let nothing_due = commit(store, move |tx| tx.inbox_depth(T0 - Duration::hours(1))).await;
    assert_eq!(nothing_due, (2, None));

    let claimed = commit(store, move |tx| tx.claim_deliveries(T0, T0 + minute, 1)).await;
    assert_eq!(uuids(&claimed, delivery_uuid), nums(&[1200]));
    let asked: Vec<rekomi_domain::ids::DeliveryId> = vec![id(1200), id(1201), id(1203)];
    let renewed = commit(store, move |tx| tx.renew_delivery_leases(&asked, T0 + 2 * minute)).await;
    assert_eq!(renewed, 1, "only the held delivery");
    let got = commit(store, |tx| Ok((tx.delivery(id(1), id(1200))?, tx.delivery(id(1), id(1201))?))).await;
    assert_eq!(got.0.and_then(|d| d.locked_until), Some(T0 + 2 * minute));
    assert_eq!(got.1.and_then(|d| d.locked_until), None);
}

/// A savepoint keeps its writes when its work says so and undoes them when it does not (as
/// work must once a statement inside failed), and the outer transaction goes on either way.
pub async fn a_savepoint_keeps_or_undoes_only_its_own_writes(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    seed(store, Seed { orgs: vec![a.clone()], ..Seed::default() }).await;
    let (kept, undone, refused, after) =
        (program(&a, 101, "kept"), program(&a, 102, "undone"), program(&a, 103, "refused"), program(&a, 104, "after"));
    let orphan = {
        let p = program(&a, 105, "never");
        let j = affiliate(&p, 200, "j@a.test");
        ledger_event(&conversion(&j, 800), 900, LedgerKind::Initial, Some("in_1"), T0)
    };
    let results = commit(store, move |tx| {
        let first = tx.savepoint(&mut |tx| tx.insert_program(&kept).is_ok())?;
        let second = tx.savepoint(&mut |tx| {
            let _ = tx.insert_program(&undone);
            false
        })?;
        // A write that works, then one the store refuses (its conversion does not exist): the
        // work gives up, and both are undone.
        let third = tx.savepoint(&mut |tx| {
            let _ = tx.insert_program(&refused);
            tx.insert_ledger_event(&orphan).is_ok()
        })?;
        tx.insert_program(&after)?;
        Ok((first, second, third))
    })
    .await;
    assert_eq!(results, (true, false, false));
    let programs = commit(store, |tx| {
        Ok((tx.program(id(1), id(101))?, tx.program(id(1), id(102))?, tx.program(id(1), id(103))?, tx.program(id(1), id(104))?))
    })
    .await;
    assert!(programs.0.is_some() && programs.3.is_some(), "kept, and the outer transaction went on: {programs:?}");
    assert!(programs.1.is_none() && programs.2.is_none(), "undone: {programs:?}");
}

// ---------------------------------------------------------------------------------------------
// Redemptions, link slugs, recruitment, sub-affiliate settings, organization lookups
// ---------------------------------------------------------------------------------------------

/// `add_redemption` moves the count by `delta` but never below zero, stamps
/// `last_redeemed_at` only when adding, always stamps `updated_at`, and touches nothing else.
pub async fn a_redemption_count_never_falls_below_zero(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let jane = affiliate(&p, 200, "jane@creator.test");
    let cc = campaign_coupon(&p, 400, Some("coupon_400"));
    let code = affiliate_coupon(&jane, &cc, 500, "JANE20", Some("promo_500"));
    let untouched = affiliate_coupon(&jane, &cc, 501, "JANE21", Some("promo_501"));
    seed(
        store,
        Seed {
            orgs: vec![a, org(2, "globex")],
            programs: vec![p],
            affiliates: vec![jane],
            campaign_coupons: vec![cc],
            affiliate_coupons: vec![code.clone(), untouched.clone()],
            ..Seed::default()
        },
    )
    .await;

    let at = |minutes: i64| T0 + Duration::minutes(minutes);
    let read = || async { commit(store, |tx| tx.affiliate_coupon(id(1), id(500))).await.unwrap() };
    let expect = |times: i64, last: Option<OffsetDateTime>, updated: OffsetDateTime| {
        let mut c = code.clone();
        c.times_redeemed = times;
        c.last_redeemed_at = last;
        c.updated_at = updated;
        c
    };

    commit(store, move |tx| tx.add_redemption(id(1), id(500), -1, at(1))).await;
    assert_eq!(read().await, expect(0, None, at(1)), "never below zero");
    commit(store, move |tx| tx.add_redemption(id(1), id(500), 1, at(2))).await;
    commit(store, move |tx| tx.add_redemption(id(1), id(500), 1, at(3))).await;
    assert_eq!(read().await, expect(2, Some(at(3)), at(3)));
    commit(store, move |tx| tx.add_redemption(id(1), id(500), -1, at(4))).await;
    assert_eq!(read().await, expect(1, Some(at(3)), at(4)), "a refund keeps the last redemption time");
    commit(store, move |tx| {
        tx.add_redemption(id(1), id(500), -1, at(5))?;
        tx.add_redemption(id(1), id(500), -1, at(6))
    })
    .await;
    assert_eq!(read().await, expect(0, Some(at(3)), at(6)));

    commit(store, move |tx| tx.add_redemption(id(2), id(500), 1, at(7))).await;
    assert_eq!(read().await, expect(0, Some(at(3)), at(6)), "another organization cannot count a redemption");
    commit(store, move |tx| tx.add_redemption(id(1), id(599), 1, at(7))).await;
    assert_eq!(commit(store, |tx| tx.affiliate_coupon(id(1), id(501))).await, Some(untouched));
}

/// A link slug names its (not deleted) affiliate, whatever the case it is typed in.
pub async fn an_affiliate_is_found_by_link_slug_in_any_case_unless_deleted(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let (jane, bob) = (affiliate(&p, 200, "jane@creator.test"), affiliate(&p, 201, "bob@creator.test"));
    seed(
        store,
        Seed {
            orgs: vec![a, org(2, "globex")],
            programs: vec![p],
            links: vec![link(&jane, 300, "Jane-Doe", true), link(&jane, 301, "jane-yt", false), link(&bob, 302, "bob", true)],
            affiliates: vec![jane.clone(), bob],
            ..Seed::default()
        },
    )
    .await;
    commit(store, |tx| tx.delete_affiliate(id(1), id(201), T0).map(drop)).await;

    let got = commit(store, |tx| {
        Ok(vec![
            tx.affiliate_by_link_slug(id(1), "jane-doe")?,
            tx.affiliate_by_link_slug(id(1), "JANE-DOE")?,
            tx.affiliate_by_link_slug(id(1), "Jane-YT")?,
            tx.affiliate_by_link_slug(id(1), "bob")?,
            tx.affiliate_by_link_slug(id(1), "nobody")?,
            tx.affiliate_by_link_slug(id(2), "jane-doe")?,
        ])
    })
    .await;
    assert_eq!(got, vec![Some(jane.clone()), Some(jane.clone()), Some(jane), None, None, None]);
}

/// Recruitment: one recruiter per affiliate (set again, it is replaced), and a recruiter's
/// recruits oldest first, deleted ones left out.
pub async fn recruiters_are_recorded_and_replaced_and_recruits_listed(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let (jane, bob, eve, ann) = (
        affiliate(&p, 200, "jane@creator.test"),
        affiliate(&p, 201, "bob@creator.test"),
        affiliate(&p, 202, "eve@creator.test"),
        affiliate(&p, 203, "ann@creator.test"),
    );
    seed(
        store,
        Seed { orgs: vec![a], programs: vec![p], affiliates: vec![jane, bob.clone(), eve.clone(), ann.clone()], ..Seed::default() },
    )
    .await;

    commit(store, |tx| {
        tx.set_recruiter(id(1), id(203), id(200))?;
        tx.set_recruiter(id(1), id(201), id(200))?;
        tx.set_recruiter(id(1), id(202), id(201))
    })
    .await;
    let (of_bob, of_jane, janes, bobs) = commit(store, |tx| {
        Ok((
            tx.recruiter_of(id(1), id(201))?,
            tx.recruiter_of(id(1), id(200))?,
            tx.recruits_of(id(1), id(200))?,
            tx.recruits_of(id(1), id(201))?,
        ))
    })
    .await;
    assert_eq!(of_bob, Some(id(200)));
    assert_eq!(of_jane, None);
    assert_eq!(janes, vec![bob.clone(), ann.clone()], "oldest first");
    assert_eq!(bobs, vec![eve.clone()]);

    commit(store, |tx| tx.set_recruiter(id(1), id(203), id(201))).await;
    let (of_ann, janes, bobs) =
        commit(store, |tx| Ok((tx.recruiter_of(id(1), id(203))?, tx.recruits_of(id(1), id(200))?, tx.recruits_of(id(1), id(201))?))).await;
    assert_eq!(of_ann, Some(id(201)), "a second record replaces the first");
    assert_eq!(janes, vec![bob]);
    assert_eq!(bobs, vec![eve, ann.clone()]);

    commit(store, |tx| tx.delete_affiliate(id(1), id(202), T0).map(drop)).await;
    assert_eq!(commit(store, |tx| tx.recruits_of(id(1), id(201))).await, vec![ann], "deleted recruits are left out");
}

/// A program's sub-affiliate setting is the default (disabled) until stored, and storing it
/// again replaces it.
pub async fn a_sub_affiliate_config_defaults_to_disabled_and_upserts(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let (spring, summer) = (program(&a, 100, "spring"), program(&a, 101, "summer"));
    seed(store, Seed { orgs: vec![a], programs: vec![spring, summer], ..Seed::default() }).await;

    let unset = commit(store, |tx| tx.sub_affiliate_config(id(1), id(100))).await;
    assert_eq!(unset, SubAffiliateConfig::default());
    assert!(!unset.enabled);

    let on = SubAffiliateConfig { enabled: true, percent: Hundredths::new(10_50) };
    commit(store, move |tx| tx.put_sub_affiliate_config(id(1), id(100), &on)).await;
    assert_eq!(commit(store, |tx| tx.sub_affiliate_config(id(1), id(100))).await, on);
    let off = SubAffiliateConfig { enabled: false, percent: Hundredths::new(5_00) };
    commit(store, move |tx| tx.put_sub_affiliate_config(id(1), id(100), &off)).await;
    let (spring, summer) =
        commit(store, |tx| Ok((tx.sub_affiliate_config(id(1), id(100))?, tx.sub_affiliate_config(id(1), id(101))?))).await;
    assert_eq!(spring, off, "a second put replaces the first");
    assert_eq!(summer, SubAffiliateConfig::default(), "another program keeps the default");
}

/// An organization is found by the exact Stripe account it is linked to, and no longer once
/// unlinked.
pub async fn an_organization_is_found_by_its_stripe_account(store: &dyn UnitOfWork) {
    let mut unlinked = org(3, "initech");
    unlinked.stripe_account_id = None;
    seed(store, Seed { orgs: vec![org(1, "acme"), org(2, "globex"), unlinked], ..Seed::default() }).await;

    let got = commit(store, |tx| {
        Ok((tx.org_by_stripe_account("acct_2")?, tx.org_by_stripe_account("ACCT_2")?, tx.org_by_stripe_account("acct_9")?))
    })
    .await;
    assert_eq!(got, (Some(org(2, "globex")), None, None));
    commit(store, |tx| tx.set_stripe_account(id(2), None).map(drop)).await;
    assert_eq!(commit(store, |tx| tx.org_by_stripe_account("acct_2")).await, None);
}

/// `some_orgs` returns up to `limit` organizations, oldest first (then by id).
pub async fn some_orgs_come_oldest_first(store: &dyn UnitOfWork) {
    let at = |mut o: rekomi_domain::org::Organization, created_at: OffsetDateTime| {
        o.created_at = created_at;
        o
    };
    let day = Duration::days(1);
    seed(
        store,
        Seed {
            orgs: vec![
                at(org(1, "acme"), T0 - day),
                at(org(2, "globex"), T0),
                at(org(3, "initech"), T0 - 2 * day),
                at(org(4, "umbrella"), T0),
            ],
            ..Seed::default()
        },
    )
    .await;

    let ids_of = |orgs: Vec<rekomi_domain::org::Organization>| orgs.iter().map(|o| o.id.as_uuid()).collect::<Vec<_>>();
    let (all, two, none) = commit(store, |tx| Ok((tx.some_orgs(10)?, tx.some_orgs(2)?, tx.some_orgs(0)?))).await;
    assert_eq!(ids_of(all), nums(&[3, 1, 2, 4]));
    assert_eq!(ids_of(two), nums(&[3, 1]));
    assert!(none.is_empty());
}

/// Stripe ids resolve coupons in whichever organization holds them: a promotion code to its
/// affiliate coupon, a coupon id to every campaign coupon using it (newest first).
pub async fn stripe_ids_resolve_coupons_in_any_organization(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (p, q) = (program(&a, 100, "spring"), program(&b, 101, "spring"));
    let (jane, theirs) = (affiliate(&p, 200, "jane@creator.test"), affiliate(&q, 201, "eve@creator.test"));
    let coupons = vec![
        campaign_coupon(&p, 400, Some("coupon_shared")),
        campaign_coupon(&q, 401, Some("coupon_shared")),
        campaign_coupon(&p, 402, Some("coupon_own")),
        campaign_coupon(&q, 403, None),
    ];
    let codes = vec![
        affiliate_coupon(&jane, &coupons[0], 500, "JANE20", Some("promo_a")),
        affiliate_coupon(&theirs, &coupons[1], 501, "EVE20", Some("promo_b")),
        affiliate_coupon(&theirs, &coupons[1], 502, "EVE21", None),
    ];
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p, q],
            affiliates: vec![jane, theirs],
            campaign_coupons: coupons.clone(),
            affiliate_coupons: codes.clone(),
            ..Seed::default()
        },
    )
    .await;

    let got = commit(store, |tx| {
        Ok((
            tx.affiliate_coupon_by_stripe_id_any_org("promo_a")?,
            tx.affiliate_coupon_by_stripe_id_any_org("promo_b")?,
            tx.affiliate_coupon_by_stripe_id_any_org("promo_unknown")?,
            tx.campaign_coupons_by_stripe_id("coupon_shared")?,
            tx.campaign_coupons_by_stripe_id("coupon_own")?,
            tx.campaign_coupons_by_stripe_id("coupon_unknown")?,
        ))
    })
    .await;
    assert_eq!(got.0, Some(codes[0].clone()));
    assert_eq!(got.1, Some(codes[1].clone()));
    assert_eq!(got.2, None);
    assert_eq!(got.3, vec![coupons[1].clone(), coupons[0].clone()]);
    assert_eq!(got.4, vec![coupons[2].clone()]);
    assert!(got.5.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Tenant isolation
// ---------------------------------------------------------------------------------------------

/// Every read scoped to an organization treats another organization's ids, codes, slugs and
/// Stripe ids as absent (so ids cannot be probed), while the owner still sees them.
pub async fn no_getter_reveals_another_organizations_rows(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let p = program(&a, 100, "spring");
    let jane = affiliate(&p, 200, "jane@creator.test");
    let cc = campaign_coupon(&p, 400, Some("coupon_400"));
    seed(
        store,
        Seed {
            orgs: vec![a.clone(), b],
            programs: vec![p.clone()],
            affiliates: vec![jane.clone()],
            links: vec![link(&jane, 300, "jane-doe", true)],
            campaign_coupons: vec![cc.clone()],
            affiliate_coupons: vec![affiliate_coupon(&jane, &cc, 500, "JANE20", Some("promo_500"))],
            audit: vec![audit(&a, 600, AuditActor::System, "program.created", &p)],
            ..Seed::default()
        },
    )
    .await;

    // Reads every org-scoped getter as `org` and reports what each saw.
    let read_as = |org: u128| {
        move |tx: &mut dyn Tx| -> Result<Vec<(&'static str, bool)>, StoreError> {
            let o = id(org);
            let code = CouponCode::parse("jane20").unwrap();
            let jane = Email::parse("email", "jane@creator.test").unwrap();
            let first = PageRequest::first();
            let program_filter = AffiliateFilter { program_id: Some(id(100)), ..AffiliateFilter::default() };
            Ok(vec![
                ("program", tx.program(o, id(100))?.is_some()),
                ("list_programs", !tx.list_programs(o, &first)?.is_empty()),
                ("affiliate", tx.affiliate(o, id(200))?.is_some()),
                ("list_affiliates", !tx.list_affiliates(o, &AffiliateFilter::default(), &first)?.is_empty()),
                ("list_affiliates by program", !tx.list_affiliates(o, &program_filter, &first)?.is_empty()),
                ("links_of", !tx.links_of(o, &[id(200)])?.is_empty()),
                ("link_slug_taken", tx.link_slug_taken(o, "jane-doe")?),
                ("campaign_coupon", tx.campaign_coupon(o, id(400))?.is_some()),
                ("list_campaign_coupons", !tx.list_campaign_coupons(o, id(100), &first)?.is_empty()),
                ("campaign_coupon_has_codes", tx.campaign_coupon_has_codes(o, id(400))?),
                ("affiliate_coupon", tx.affiliate_coupon(o, id(500))?.is_some()),
                ("affiliate_coupon_by_code", tx.affiliate_coupon_by_code(o, &code)?.is_some()),
                ("affiliate_coupon_by_stripe_id", tx.affiliate_coupon_by_stripe_id(o, "promo_500")?.is_some()),
                ("list by affiliate", !tx.list_affiliate_coupons(o, &CouponSelector::Affiliate(id(200)), &first)?.is_empty()),
                ("list by campaign coupon", !tx.list_affiliate_coupons(o, &CouponSelector::CampaignCoupon(id(400)), &first)?.is_empty()),
                ("list by email", !tx.list_affiliate_coupons(o, &CouponSelector::AffiliateEmail(jane), &first)?.is_empty()),
                ("audit_entries", !tx.audit_entries(o, 10)?.is_empty()),
                ("org_usage", tx.org_usage(o)? != OrgUsage::default()),
            ])
        }
    };
    let owner = commit(store, read_as(1)).await;
    let stranger = commit(store, read_as(2)).await;
    for ((getter, owner_saw), (_, stranger_saw)) in owner.into_iter().zip(stranger) {
        assert!(owner_saw, "{getter}: the owner must see its row (the check would be vacuous otherwise)");
        assert!(!stranger_saw, "{getter}: another organization must not see the row");
    }

    let deleted = commit(store, |tx| tx.delete_affiliate(id(2), id(200), T0)).await;
    assert!(!deleted, "another organization cannot delete the affiliate");
    assert!(commit(store, |tx| tx.affiliate(id(1), id(200))).await.is_some());
}

/// Updates and deletes naming another organization change nothing, whatever ids they carry.
pub async fn no_write_reaches_into_another_organization(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let p = program(&a, 100, "spring");
    let jane = affiliate(&p, 200, "jane@creator.test");
    let (cc, spare) = (campaign_coupon(&p, 400, Some("coupon_400")), campaign_coupon(&p, 401, Some("coupon_401")));
    let code = affiliate_coupon(&jane, &cc, 500, "JANE20", Some("promo_500"));
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p.clone()],
            affiliates: vec![jane.clone()],
            campaign_coupons: vec![cc.clone(), spare.clone()],
            affiliate_coupons: vec![code.clone()],
            ..Seed::default()
        },
    )
    .await;

    let mut forged_program = p.clone();
    forged_program.org_id = id(2);
    forged_program.name = "Hijacked".to_owned();
    let mut forged_affiliate = jane.clone();
    forged_affiliate.org_id = id(2);
    forged_affiliate.status = AffiliateStatus::Banned;
    let mut forged_coupon = cc.clone();
    forged_coupon.org_id = id(2);
    forged_coupon.name = "Hijacked".to_owned();
    let mut forged_code = code.clone();
    forged_code.org_id = id(2);
    forged_code.is_active = false;
    // Whether a store reports these as errors or as no-ops is its choice; none may land.
    let _ = attempt(store, move |tx| tx.update_program(&forged_program)).await;
    let _ = attempt(store, move |tx| tx.update_affiliate(&forged_affiliate)).await;
    let _ = attempt(store, move |tx| tx.update_campaign_coupon(&forged_coupon)).await;
    let _ = attempt(store, move |tx| tx.update_affiliate_coupon(&forged_code)).await;
    let _ = attempt(store, |tx| tx.delete_affiliate(id(2), id(200), T0)).await;
    let _ = attempt(store, |tx| tx.delete_affiliate_coupon(id(2), id(500))).await;
    let _ = attempt(store, |tx| tx.delete_campaign_coupon(id(2), id(401))).await;

    let now = commit(store, |tx| {
        Ok((
            tx.program(id(1), id(100))?,
            tx.affiliate(id(1), id(200))?,
            tx.campaign_coupon(id(1), id(400))?,
            tx.campaign_coupon(id(1), id(401))?,
            tx.affiliate_coupon(id(1), id(500))?,
            tx.program(id(2), id(100))?,
        ))
    })
    .await;
    assert_eq!(now, (Some(p), Some(jane), Some(cc), Some(spare), Some(code), None));
}

/// References between tenant rows stay inside one organization: the composite foreign keys
/// refuse a row of one organization that points at another's.
pub async fn a_row_cannot_point_into_another_organization(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (pa, pb) = (program(&a, 100, "spring"), program(&b, 101, "spring"));
    let (ja, jb) = (affiliate(&pa, 200, "jane@creator.test"), affiliate(&pb, 201, "bob@creator.test"));
    let (ca, cb) = (campaign_coupon(&pa, 400, Some("coupon_400")), campaign_coupon(&pb, 401, Some("coupon_401")));
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![pa.clone(), pb.clone()],
            affiliates: vec![ja.clone(), jb.clone()],
            campaign_coupons: vec![ca.clone(), cb.clone()],
            ..Seed::default()
        },
    )
    .await;

    let mut affiliate_into_a = affiliate(&pb, 202, "eve@creator.test");
    affiliate_into_a.program_id = pa.id;
    assert_conflict(attempt(store, move |tx| tx.insert_affiliate(&affiliate_into_a)).await, foreign_keys::AFFILIATE_PROGRAM);

    let mut link_into_a = link(&jb, 300, "eve", true);
    link_into_a.affiliate_id = ja.id;
    assert_conflict(attempt(store, move |tx| tx.insert_link(&link_into_a)).await, foreign_keys::LINK_AFFILIATE);

    let mut coupon_into_a = campaign_coupon(&pb, 402, None);
    coupon_into_a.program_id = pa.id;
    assert_conflict(attempt(store, move |tx| tx.insert_campaign_coupon(&coupon_into_a)).await, foreign_keys::CAMPAIGN_COUPON_PROGRAM);

    let mut code_of_a_affiliate = affiliate_coupon(&jb, &cb, 500, "EVE20", None);
    code_of_a_affiliate.affiliate_id = ja.id;
    assert_conflict(
        attempt(store, move |tx| tx.insert_affiliate_coupon(&code_of_a_affiliate)).await,
        foreign_keys::AFFILIATE_COUPON_AFFILIATE,
    );

    let mut code_of_a_coupon = affiliate_coupon(&jb, &cb, 501, "EVE21", None);
    code_of_a_coupon.campaign_coupon_id = ca.id;
    assert_conflict(
        attempt(store, move |tx| tx.insert_affiliate_coupon(&code_of_a_coupon)).await,
        foreign_keys::AFFILIATE_COUPON_CAMPAIGN_COUPON,
    );
}

/// One organization's conversion, ledger, recruitment, sub-affiliate setting, webhook rows and
/// inbox event, for the isolation tests.
fn tenant_rows() -> Seed {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let p = program(&a, 100, "spring");
    let (jane, bob) = (affiliate(&p, 200, "jane@creator.test"), affiliate(&p, 201, "bob@creator.test"));
    let cc = campaign_coupon(&p, 400, Some("coupon_400"));
    let code = affiliate_coupon(&jane, &cc, 500, "JANE20", Some("promo_500"));
    let mut sale = conversion(&jane, 800);
    sale.affiliate_coupon_id = Some(code.id);
    let over = override_of(&sale, &bob, 801);
    let (hook, event) = (endpoint(&a, 1000), outbox_event(&a, 1100));
    Seed {
        orgs: vec![a.clone(), b],
        programs: vec![p],
        affiliates: vec![jane.clone(), bob],
        links: vec![link(&jane, 300, "jane-doe", true)],
        campaign_coupons: vec![cc],
        affiliate_coupons: vec![code],
        ledger: vec![ledger_event(&sale, 900, LedgerKind::Initial, Some("in_paid"), T0)],
        conversions: vec![sale, over],
        inbox: vec![inbox_event(1300, Some(&a), T0)],
        endpoints: vec![hook.clone()],
        outbox: vec![event.clone()],
        deliveries: vec![delivery(&hook, &event, 1200, T0)],
        ..Seed::default()
    }
}

/// The getters added for conversions, recruitment, sub-affiliate settings, link slugs, webhooks
/// and the inbox treat another organization's ids, slugs and Stripe ids as absent.
pub async fn no_conversion_or_webhook_getter_reveals_another_organizations_rows(store: &dyn UnitOfWork) {
    seed(store, tenant_rows()).await;
    commit(store, |tx| {
        tx.set_recruiter(id(1), id(201), id(200))?;
        tx.put_sub_affiliate_config(id(1), id(100), &SubAffiliateConfig { enabled: true, percent: Hundredths::new(10_00) })
    })
    .await;

    let read_as = |org: u128| {
        move |tx: &mut dyn Tx| -> Result<Vec<(&'static str, bool)>, StoreError> {
            let o = id(org);
            let first = PageRequest::first();
            Ok(vec![
                ("conversion", tx.conversion(o, id(800))?.is_some()),
                ("conversion_for_update", tx.conversion_for_update(o, id(800))?.is_some()),
                ("sale_conversion_of_subscription", tx.sale_conversion_of_subscription(o, "sub_800")?.is_some()),
                ("conversion_of_invoice by ledger", tx.conversion_of_invoice(o, "in_paid")?.is_some()),
                ("conversion_of_invoice by first event", tx.conversion_of_invoice(o, "in_800")?.is_some()),
                ("overrides_of", !tx.overrides_of(o, id(800))?.is_empty()),
                ("affiliate_of_customer", tx.affiliate_of_customer(o, Some("cus_800"), Some("buyer800@shop.test"))?.is_some()),
                ("list_conversions", !tx.list_conversions(o, &ConversionFilter::default(), &first)?.is_empty()),
                (
                    "list_conversions by affiliate",
                    !tx.list_conversions(o, &ConversionFilter { affiliate_id: Some(id(200)), ..ConversionFilter::default() }, &first)?
                        .is_empty(),
                ),
                ("ledger_of", !tx.ledger_of(o, id(800))?.is_empty()),
                ("affiliate_by_link_slug", tx.affiliate_by_link_slug(o, "jane-doe")?.is_some()),
                ("recruiter_of", tx.recruiter_of(o, id(201))?.is_some()),
                ("recruits_of", !tx.recruits_of(o, id(200))?.is_empty()),
                ("sub_affiliate_config", tx.sub_affiliate_config(o, id(100))? != SubAffiliateConfig::default()),
                ("endpoint", tx.endpoint(o, id(1000))?.is_some()),
                ("endpoints", !tx.endpoints(o)?.is_empty()),
                ("delivery", tx.delivery(o, id(1200))?.is_some()),
                ("deliveries_of", !tx.deliveries_of(o, id(1000), &first)?.is_empty()),
                ("list_inbox_events", !tx.list_inbox_events(Some(o), None, None, 10)?.is_empty()),
            ])
        }
    };
    let owner = commit(store, read_as(1)).await;
    let stranger = commit(store, read_as(2)).await;
    for ((getter, owner_saw), (_, stranger_saw)) in owner.into_iter().zip(stranger) {
        assert!(owner_saw, "{getter}: the owner must see its row (the check would be vacuous otherwise)");
        assert!(!stranger_saw, "{getter}: another organization must not see the row");
    }
}

/// Updates and deletes of conversions, webhooks, redemptions, recruitment and sub-affiliate
/// settings naming another organization change nothing.
pub async fn no_conversion_or_webhook_write_reaches_into_another_organization(store: &dyn UnitOfWork) {
    seed(store, tenant_rows()).await;
    commit(store, |tx| {
        tx.set_recruiter(id(1), id(201), id(200))?;
        // Stored, so a forged put meets the row (the upsert's update path) rather than nothing.
        tx.put_sub_affiliate_config(id(1), id(100), &SubAffiliateConfig { enabled: false, percent: Hundredths::new(7_00) })
    })
    .await;
    let before = commit(store, |tx| {
        Ok((
            tx.conversion(id(1), id(800))?,
            tx.endpoint(id(1), id(1000))?,
            tx.delivery(id(1), id(1200))?,
            tx.affiliate_coupon(id(1), id(500))?,
            tx.recruiter_of(id(1), id(201))?,
            tx.sub_affiliate_config(id(1), id(100))?,
        ))
    })
    .await;

    let mut forged_conversion = before.0.clone().unwrap();
    forged_conversion.org_id = id(2);
    forged_conversion.status = ConversionStatus::Paid;
    let mut forged_endpoint = before.1.clone().unwrap();
    forged_endpoint.org_id = id(2);
    forged_endpoint.url = "https://evil.test".to_owned();
    let mut forged_delivery = before.2.clone().unwrap();
    forged_delivery.org_id = id(2);
    forged_delivery.status = DeliveryStatus::Succeeded;
    // Whether a store reports these as errors or as no-ops is its choice; none may land.
    let _ = attempt(store, move |tx| tx.update_conversion(&forged_conversion)).await;
    let _ = attempt(store, move |tx| tx.update_endpoint(&forged_endpoint)).await;
    let _ = attempt(store, move |tx| tx.update_delivery(&forged_delivery)).await;
    let _ = attempt(store, |tx| tx.add_redemption(id(2), id(500), 1, T0)).await;
    let _ = attempt(store, |tx| tx.set_recruiter(id(2), id(201), id(200))).await;
    let on = SubAffiliateConfig { enabled: true, percent: Hundredths::new(50_00) };
    let _ = attempt(store, move |tx| tx.put_sub_affiliate_config(id(2), id(100), &on)).await;
    let deleted = commit(store, |tx| tx.delete_endpoint(id(2), id(1000))).await;
    assert!(!deleted, "another organization cannot delete the endpoint");

    let after = commit(store, |tx| {
        Ok((
            tx.conversion(id(1), id(800))?,
            tx.endpoint(id(1), id(1000))?,
            tx.delivery(id(1), id(1200))?,
            tx.affiliate_coupon(id(1), id(500))?,
            tx.recruiter_of(id(1), id(201))?,
            tx.sub_affiliate_config(id(1), id(100))?,
        ))
    })
    .await;
    assert_eq!(after, before);
    let theirs = commit(store, |tx| {
        Ok((tx.conversion(id(2), id(800))?, tx.sub_affiliate_config(id(2), id(100))?, tx.recruiter_of(id(2), id(201))?))
    })
    .await;
    assert_eq!(theirs, (None, SubAffiliateConfig::default(), None));
}

/// The composite foreign keys of the new tables refuse a row of one organization that points
/// at another's program, affiliate, code, conversion, endpoint or outbox event.
pub async fn conversion_and_webhook_rows_cannot_point_into_another_organization(store: &dyn UnitOfWork) {
    let mut rows = tenant_rows();
    let b = rows.orgs[1].clone();
    let q = program(&b, 101, "spring");
    let theirs = affiliate(&q, 202, "eve@creator.test");
    let their_coupon = campaign_coupon(&q, 401, Some("coupon_401"));
    let (their_hook, their_event) = (endpoint(&b, 1001), outbox_event(&b, 1101));
    rows.programs.push(q.clone());
    rows.affiliates.push(theirs.clone());
    rows.campaign_coupons.push(their_coupon);
    rows.endpoints.push(their_hook.clone());
    rows.outbox.push(their_event.clone());
    seed(store, rows).await;

    let refused = |c: Conversion, constraint: &'static str| async move {
        assert_conflict(attempt(store, move |tx| tx.insert_conversion(&c)).await, constraint);
    };
    refused(Conversion { program_id: id(100), ..conversion(&theirs, 810) }, foreign_keys::CONVERSION_PROGRAM).await;
    refused(Conversion { affiliate_id: id(200), ..conversion(&theirs, 811) }, foreign_keys::CONVERSION_AFFILIATE).await;
    refused(Conversion { affiliate_coupon_id: Some(id(500)), ..conversion(&theirs, 812) }, foreign_keys::CONVERSION_AFFILIATE_COUPON).await;
    refused(Conversion { parent_conversion_id: Some(id(800)), ..conversion(&theirs, 813) }, foreign_keys::CONVERSION_PARENT).await;

    let their_sale = conversion(&theirs, 814);
    let insert = their_sale.clone();
    commit(store, move |tx| tx.insert_conversion(&insert)).await;
    let mut forged = their_sale.clone();
    forged.affiliate_id = id(200);
    assert_conflict(attempt(store, move |tx| tx.update_conversion(&forged)).await, foreign_keys::CONVERSION_AFFILIATE);
    let mut entry = ledger_event(&their_sale, 910, LedgerKind::Initial, None, T0);
    entry.conversion_id = id(800);
    assert_conflict(attempt(store, move |tx| tx.insert_ledger_event(&entry)).await, foreign_keys::LEDGER_CONVERSION);

    let mut to_their_hook = delivery(&their_hook, &their_event, 1210, T0);
    to_their_hook.endpoint_id = id(1000);
    assert_conflict(attempt(store, move |tx| tx.insert_delivery(&to_their_hook)).await, foreign_keys::DELIVERY_ENDPOINT);
    let mut of_their_event = delivery(&their_hook, &their_event, 1211, T0);
    of_their_event.event_id = id(1100);
    assert_conflict(attempt(store, move |tx| tx.insert_delivery(&of_their_event)).await, foreign_keys::DELIVERY_EVENT);

    assert_conflict(attempt(store, |tx| tx.set_recruiter(id(2), id(202), id(200))).await, foreign_keys::RECRUITMENT_RECRUITER);
    assert_conflict(attempt(store, |tx| tx.set_recruiter(id(2), id(200), id(202))).await, foreign_keys::RECRUITMENT_AFFILIATE);
    let on = SubAffiliateConfig { enabled: true, percent: Hundredths::new(10_00) };
    assert_conflict(
        attempt(store, move |tx| tx.put_sub_affiliate_config(id(2), id(100), &on)).await,
        foreign_keys::SUB_AFFILIATE_CONFIG_PROGRAM,
    );
}

/// An affiliate cannot recruit itself and a conversion cannot be its own parent: the store
/// refuses (as an unexpected error: it is a bug in the caller, not a conflict to handle).
pub async fn self_references_are_refused(store: &dyn UnitOfWork) {
    seed(store, tenant_rows()).await;
    let own_recruiter = attempt(store, |tx| tx.set_recruiter(id(1), id(200), id(200))).await;
    assert!(matches!(own_recruiter, Err(StoreError::Unexpected(_))), "{own_recruiter:?}");
    let mut own_parent = commit(store, |tx| tx.conversion(id(1), id(801))).await.unwrap();
    own_parent.parent_conversion_id = Some(own_parent.id);
    let update = own_parent.clone();
    let refused = attempt(store, move |tx| tx.update_conversion(&update)).await;
    assert!(matches!(refused, Err(StoreError::Unexpected(_))), "{refused:?}");
    own_parent.id = id(815);
    own_parent.parent_conversion_id = Some(id(815));
    let refused = attempt(store, move |tx| tx.insert_conversion(&own_parent)).await;
    assert!(matches!(refused, Err(StoreError::Unexpected(_))), "{refused:?}");
    assert_eq!(commit(store, |tx| tx.recruiter_of(id(1), id(200))).await, None);
    assert_eq!(commit(store, |tx| tx.conversion(id(1), id(801))).await.and_then(|c| c.parent_conversion_id), Some(id(800)));
}

// ---------------------------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------------------------

/// The work's own error, distinct from the store's.
#[derive(Debug)]
enum WorkError {
    Store(StoreError),
    GaveUp,
}

impl From<StoreError> for WorkError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

fn everything() -> Seed {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let jane = affiliate(&p, 200, "jane@creator.test");
    let cc = campaign_coupon(&p, 400, None);
    let sale = conversion(&jane, 800);
    let (hook, event) = (endpoint(&a, 1000), outbox_event(&a, 1100));
    Seed {
        orgs: vec![a.clone()],
        api_keys: vec![api_key(&a, 700, "rk_live_secret")],
        programs: vec![p.clone()],
        affiliates: vec![jane.clone()],
        links: vec![link(&jane, 300, "jane-doe", true)],
        campaign_coupons: vec![cc.clone()],
        affiliate_coupons: vec![affiliate_coupon(&jane, &cc, 500, "JANE20", None)],
        conversions: vec![sale.clone()],
        ledger: vec![ledger_event(&sale, 900, LedgerKind::Initial, Some("in_800"), T0)],
        inbox: vec![inbox_event(1300, Some(&a), T0)],
        endpoints: vec![hook.clone()],
        outbox: vec![event.clone()],
        deliveries: vec![delivery(&hook, &event, 1200, T0)],
        audit: vec![audit(&a, 600, AuditActor::System, "program.created", &p)],
    }
}

/// A transaction whose work fails leaves no trace of anything it wrote (while it ran, it saw
/// its own writes), and the uniqueness it claimed is released.
pub async fn a_failed_transaction_leaves_nothing_behind(store: &dyn UnitOfWork) {
    let rows = everything();
    let result: Result<(), WorkError> = transact(store, move |tx| {
        rows.insert(tx)?;
        assert!(tx.claim_source(id(1), "invoice:in_800", T0)?);
        tx.put_sub_affiliate_config(id(1), id(100), &SubAffiliateConfig { enabled: true, percent: Hundredths::new(10_00) })?;
        assert!(tx.program(id(1), id(100))?.is_some(), "a transaction reads its own writes");
        Err(WorkError::GaveUp)
    })
    .await;
    match result {
        Err(WorkError::GaveUp) => {}
        Err(WorkError::Store(e)) => panic!("the store failed instead of the work: {e:?}"),
        Ok(()) => panic!("the work was meant to fail"),
    }

    let traces = commit(store, |tx| {
        let jane = Email::parse("email", "jane@creator.test").unwrap();
        Ok(vec![
            ("org", tx.org(id(1))?.is_some()),
            ("api key", tx.api_key_by_hash(&hash_api_key("rk_live_secret"))?.is_some()),
            ("program", tx.program(id(1), id(100))?.is_some()),
            ("affiliate", tx.affiliate(id(1), id(200))?.is_some()),
            ("affiliates_of_user", !tx.affiliates_of_user("user_x", &jane)?.is_empty()),
            ("link", tx.link_slug_taken(id(1), "jane-doe")?),
            ("campaign coupon", tx.campaign_coupon(id(1), id(400))?.is_some()),
            ("unprovisioned campaign coupons", !tx.unprovisioned_campaign_coupons(T0 + Duration::days(1), 10)?.is_empty()),
            ("affiliate coupon", tx.affiliate_coupon(id(1), id(500))?.is_some()),
            ("code", tx.affiliate_coupon_by_code(id(1), &CouponCode::parse("JANE20").unwrap())?.is_some()),
            ("unprovisioned codes", !tx.unprovisioned_affiliate_coupons(T0 + Duration::days(1), 10)?.is_empty()),
            ("conversion", tx.conversion(id(1), id(800))?.is_some()),
            ("due conversions", !tx.conversions_due_for_approval(T0 + Duration::days(60), 10)?.is_empty()),
            ("ledger", !tx.ledger_of(id(1), id(800))?.is_empty()),
            ("inbox event", tx.inbox_event("evt_1300")?.is_some()),
            ("inbox list", !tx.list_inbox_events(None, None, None, 10)?.is_empty()),
            ("endpoint", tx.endpoint_any_org(id(1000))?.is_some()),
            ("delivery", tx.delivery(id(1), id(1200))?.is_some()),
            ("sub-affiliate config", tx.sub_affiliate_config(id(1), id(100))? != SubAffiliateConfig::default()),
            ("audit", !tx.audit_entries(id(1), 10)?.is_empty()),
        ])
    })
    .await;
    for (what, left) in traces {
        assert!(!left, "the rolled-back {what} is still there");
    }

    seed(store, everything()).await;
    assert!(commit(store, |tx| tx.program(id(1), id(100))).await.is_some());
    assert!(commit(store, |tx| tx.claim_source(id(1), "invoice:in_800", T0)).await, "the rolled-back claim was released");
}

/// A write refused by a constraint fails the transaction, and the writes before it in the same
/// transaction are rolled back with it.
pub async fn a_conflict_rolls_back_the_writes_before_it(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let spring = program(&a, 100, "spring");
    seed(store, Seed { orgs: vec![a.clone()], programs: vec![spring], ..Seed::default() }).await;

    let (summer, dup) = (program(&a, 101, "summer"), program(&a, 102, "spring"));
    let result = attempt(store, move |tx| {
        tx.insert_program(&summer)?;
        tx.insert_program(&dup)
    })
    .await;
    assert_conflict(result, constraints::PROGRAM_SLUG);
    assert_eq!(commit(store, |tx| tx.program(id(1), id(101))).await, None);
}

/// A reachable store answers `ping`.
pub async fn the_store_answers_pings(store: &dyn UnitOfWork) {
    if let Err(e) = store.ping().await {
        panic!("ping failed: {e:?}");
    }
}
