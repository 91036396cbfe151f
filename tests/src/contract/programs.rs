//! The storage contract of programs ([`ProgramRepo`]): round trips, the slug unique per
//! organization, archived programs out of the list, keyset pages, and the program's
//! sub-affiliate setting, which the program slice owns.
//!
//! [`ProgramRepo`]: rekomi_domain::programs::ProgramRepo

use rekomi_domain::conversions::SubAffiliateConfig;
use rekomi_domain::kernel::page::{Page, PageRequest};
use rekomi_domain::ports::store::{constraints, UnitOfWork};
use rekomi_domain::programs::{
    AttributionModel, Commission, CommissionModel, CommissionType, Hundredths, NetworkVisibility, Program, ProgramSlug,
};
use time::Duration;
use uuid::Uuid;

use super::fixtures::*;
use super::{assert_conflict, attempt, commit, nums, page, read_pages, uuids};

fn program_uuid(p: &Program) -> Uuid {
    p.id.as_uuid()
}

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
