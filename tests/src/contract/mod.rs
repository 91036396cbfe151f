//! The storage contract: one suite, written once against the storage port
//! ([`UnitOfWork`] + [`Tx`]), that every store implementation must pass — the in-memory fake
//! of `rekomi-fakes` and `PgStore` of `rekomi-postgres` alike (in the manner of arrow-rs'
//! object_store). `tests/store_contract.rs` turns each function listed in
//! [`storage_contract!`](crate::storage_contract) into one test per backend.
//!
//! Laid out by capability like every side of the hexagon (docs/adr/0005): one module per
//! repository slice ([`orgs`], [`programs`], [`affiliates`], [`coupons`], [`conversions`],
//! [`stripe_inbox`], [`outbound`], [`audit`], [`traffic`], [`tracking`], [`payouts`]), plus [`isolation`] for what crosses tenants and
//! [`transactions`] for the unit of work itself. This module keeps what they share: the one
//! list of contract functions, the foreign-key names and the transaction helpers; the test
//! data is in [`fixtures`].
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

use rekomi_domain::kernel::page::{Page, PageRequest};
use rekomi_domain::ports::store::{transact, StoreError, Tx, UnitOfWork};
use uuid::Uuid;

pub mod fixtures;

pub mod affiliates;
pub mod audit;
pub mod conversions;
pub mod coupons;
pub mod isolation;
pub mod orgs;
pub mod outbound;
pub mod payouts;
pub mod programs;
pub mod stripe_inbox;
pub mod tracking;
pub mod traffic;
pub mod transactions;

/// Calls `$callback! { module::name, … }` with the path (below this module) of every contract
/// function, so the list lives in one place and each backend's test file generates one test
/// per name.
#[macro_export]
macro_rules! storage_contract {
    ($callback:ident) => {
        $callback! {
            orgs::an_organization_round_trips_by_id,
            orgs::an_organization_handle_is_unique,
            orgs::an_organization_links_and_unlinks_its_stripe_account,
            orgs::an_api_key_is_found_by_its_hash_until_revoked,
            orgs::org_usage_counts_live_affiliates_and_unarchived_programs,
            orgs::an_organization_is_found_by_its_stripe_account,
            orgs::some_orgs_come_oldest_first,
            programs::a_program_round_trips_and_every_field_updates,
            programs::a_program_slug_is_unique_per_organization_even_once_archived,
            programs::archived_programs_stay_readable_but_leave_the_list,
            programs::program_pages_run_newest_first_without_skips_or_repeats,
            programs::a_sub_affiliate_config_defaults_to_disabled_and_upserts,
            affiliates::an_affiliate_round_trips_and_every_field_updates,
            affiliates::a_deleted_affiliate_disappears_and_frees_its_email,
            affiliates::an_email_joins_a_program_once,
            affiliates::affiliate_lists_filter_by_program_status_and_text,
            affiliates::affiliate_pages_run_newest_first_without_skips_or_repeats,
            affiliates::an_affiliate_side_user_owns_its_linked_rows_and_the_unlinked_rows_with_its_email,
            affiliates::links_come_back_default_first_for_the_affiliates_asked,
            affiliates::a_link_slug_is_unique_per_organization_regardless_of_case,
            affiliates::an_affiliate_is_found_by_link_slug_in_any_case_unless_deleted,
            affiliates::recruiters_are_recorded_and_replaced_and_recruits_listed,
            coupons::a_campaign_coupon_round_trips_updates_and_deletes,
            coupons::provisioning_campaign_coupons_are_readable_but_not_listed,
            coupons::unprovisioned_campaign_coupons_span_organizations_and_respect_the_cutoff,
            coupons::a_campaign_coupon_with_codes_cannot_be_deleted,
            coupons::an_affiliate_coupon_round_trips_updates_and_deletes,
            coupons::a_code_is_unique_per_organization_regardless_of_case,
            coupons::the_same_code_may_live_in_two_organizations,
            coupons::an_affiliate_coupon_is_found_by_code_in_any_case_and_by_stripe_id,
            coupons::affiliate_coupons_list_by_each_selector_newest_first,
            coupons::a_campaign_coupon_has_codes_once_any_code_exists,
            coupons::unprovisioned_affiliate_coupons_span_organizations_and_respect_the_cutoff,
            coupons::a_redemption_count_never_falls_below_zero,
            coupons::stripe_ids_resolve_coupons_in_any_organization,
            conversions::a_source_is_claimed_once_per_organization,
            conversions::a_conversion_round_trips_and_every_field_updates,
            conversions::the_sale_conversion_of_a_subscription_skips_leads_and_overrides,
            conversions::a_conversion_is_found_by_invoice_through_its_ledger_or_first_event,
            conversions::overrides_come_back_for_their_parent_oldest_first,
            conversions::a_subscription_has_one_sale_conversion_and_an_account_one_organization,
            conversions::the_organizations_of_a_stripe_customer_come_most_recent_first,
            conversions::the_affiliate_of_a_customer_is_the_latest_credited_by_id_or_email,
            conversions::conversion_lists_filter_and_page_newest_first,
            conversions::conversions_due_for_approval_span_organizations_longest_due_first,
            conversions::a_ledger_comes_back_oldest_first,
            conversions::the_organizations_of_a_payment_are_those_whose_ledger_records_its_sale,
            stripe_inbox::an_inbox_event_is_stored_once_and_its_processing_state_updates,
            stripe_inbox::inbox_claims_lease_events_and_count_attempts,
            stripe_inbox::inbox_events_list_by_organization_status_and_arrival,
            stripe_inbox::inbox_leases_are_renewed_and_let_go_only_while_events_are_held,
            stripe_inbox::waiting_events_wake_for_their_payment_on_their_account_or_when_due,
            outbound::a_webhook_endpoint_round_trips_updates_and_deletes_with_its_deliveries,
            outbound::a_delivery_round_trips_updates_and_pages_newest_first,
            outbound::delivery_claims_take_only_enabled_endpoints_and_lease_them,
            outbound::delivery_leases_are_renewed_only_while_held_and_queue_depths_count_pending_work,
            traffic::a_link_target_is_found_by_slug_in_any_case_across_organizations_oldest_first,
            traffic::clicks_are_written_once_and_read_back_only_in_their_organization,
            traffic::a_day_keeps_its_first_visitor_salt_until_forgotten,
            traffic::cpc_counts_take_a_days_unique_human_clicks_on_cpc_programs,
            traffic::a_pixel_key_is_claimed_once_and_settings_change_column_by_column,
            tracking::live_signing_secrets_come_back_newest_first_and_expire_on_rotation,
            tracking::an_organization_has_one_current_signing_secret,
            payouts::open_entries_page_by_affiliate_and_an_entry_is_held_once,
            payouts::conversions_are_paid_only_when_every_positive_entry_is,
            payouts::a_payout_round_trips_and_processing_payouts_come_back_oldest_first,
            payouts::idempotency_records_and_reference_rates_behave,
            audit::audit_entries_come_back_newest_first_per_organization,
            audit::many_rows_are_appended_in_one_write_all_or_nothing,
            isolation::no_getter_reveals_another_organizations_rows,
            isolation::no_write_reaches_into_another_organization,
            isolation::a_row_cannot_point_into_another_organization,
            isolation::no_conversion_or_webhook_getter_reveals_another_organizations_rows,
            isolation::no_conversion_or_webhook_write_reaches_into_another_organization,
            isolation::conversion_and_webhook_rows_cannot_point_into_another_organization,
            isolation::self_references_are_refused,
            transactions::a_savepoint_keeps_or_undoes_only_its_own_writes,
            transactions::a_failed_transaction_leaves_nothing_behind,
            transactions::a_conflict_rolls_back_the_writes_before_it,
            transactions::the_store_answers_pings,
        }
    };
}

/// Foreign-key constraint names of the migrations. Use cases do not branch on them (so they
/// are not in [`constraints`](rekomi_domain::ports::store::constraints)), but every store reports them the same way.
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
    /// A signing secret's organization exists.
    pub const TRACKING_SECRET_ORG: &str = "tracking_secrets_org_id_fkey";
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
