//! The storage contract of payouts ([`PayoutRepo`]), idempotency records ([`IdempotencyRepo`])
//! and reference rates ([`FxRepo`]): open entries page by affiliate and leave out zero,
//! not-yet-payable, other-currency, other-organization and held entries; an entry is held by one
//! live line item at most, released on failure and claimed again on retry; conversions become
//! `Paid` only when every positive entry is held by a Paid payout; balances classify entries;
//! idempotency records conflict on a second first use; a reference rate is the latest of its
//! window.
//!
//! [`PayoutRepo`]: rekomi_domain::payouts::PayoutRepo
//! [`IdempotencyRepo`]: rekomi_domain::idempotency::IdempotencyRepo
//! [`FxRepo`]: rekomi_domain::fx::FxRepo

use rekomi_domain::conversions::{Conversion, ConversionStatus, LedgerEvent, LedgerKind};
use rekomi_domain::fx::{FxRate, ReferenceRate};
use rekomi_domain::idempotency::{IdempotencyRecord, StoredResponse};
use rekomi_domain::kernel::ids::{AffiliateId, PayoutId};
use rekomi_domain::kernel::money::Currency;
use rekomi_domain::payouts::{EntryClaim, PayableQuery, Payout, PayoutLineItem, PayoutMethod, PayoutStatus};
use rekomi_domain::ports::store::{constraints, UnitOfWork};
use time::macros::date;
use time::Duration;

use super::fixtures::*;
use super::{assert_conflict, attempt, commit};

fn entry(conversion: &Conversion, n: u128, commission: i64, payable_in: Duration) -> LedgerEvent {
    let mut e = ledger_event(conversion, n, if commission < 0 { LedgerKind::Refund } else { LedgerKind::Initial }, None, T0);
    e.commission_minor = commission;
    e.payable_after = T0 + payable_in;
    e
}

fn payout(org: &rekomi_domain::orgs::Organization, affiliate: AffiliateId, n: u128, amount: i64, status: PayoutStatus) -> Payout {
    Payout {
        id: id(n),
        org_id: org.id,
        affiliate_id: affiliate,
        amount_minor: amount,
        currency: Currency::USD,
        method: PayoutMethod::Manual,
        status,
        destination: None,
        stripe_transfer_id: None,
        external_transaction_id: None,
        notes: Some("run".to_owned()),
        failure_reason: None,
        attempt: 1,
        period_start: Some(date!(2026 - 05 - 01)),
        period_end: date!(2026 - 05 - 31),
        created_at: T0,
        updated_at: T0,
        paid_at: (status == PayoutStatus::Paid).then_some(T0),
        failed_at: None,
    }
}

fn item(payout: &Payout, n: u128, e: &LedgerEvent) -> PayoutLineItem {
    PayoutLineItem {
        id: id(n),
        org_id: payout.org_id,
        payout_id: payout.id,
        ledger_event_id: e.id,
        conversion_id: e.conversion_id,
        amount_minor: e.commission_minor,
    }
}

/// Open entries page through affiliates and skip what a run must not pay; a held entry is
/// claimed once; a failed payout releases it and a retry claims it again.
pub async fn open_entries_page_by_affiliate_and_an_entry_is_held_once(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (pa, pb) = (program(&a, 3, "main"), program(&b, 4, "main"));
    let (sarah, tom, other) = (affiliate(&pa, 10, "sarah@x.test"), affiliate(&pa, 11, "tom@x.test"), affiliate(&pb, 12, "o@x.test"));
    let (cs, ct, co) = (conversion(&sarah, 20), conversion(&tom, 21), conversion(&other, 22));
    let mut eur = conversion(&sarah, 23);
    eur.currency = Currency::parse("EUR").unwrap();
    let entries = vec![
        entry(&cs, 30, 1_000, Duration::days(-1)),
        entry(&cs, 31, -200, Duration::days(-1)),
        entry(&cs, 32, 500, Duration::days(5)),
        entry(&cs, 33, 0, Duration::days(-1)),
        entry(&ct, 34, 700, Duration::days(-2)),
        entry(&co, 35, 900, Duration::days(-2)),
        entry(&eur, 36, 800, Duration::days(-2)),
    ];
    seed(
        store,
        Seed {
            orgs: vec![a.clone(), b],
            programs: vec![pa, pb],
            affiliates: vec![sarah.clone(), tom.clone(), other],
            conversions: vec![cs, ct, co, eur],
            ledger: entries.clone(),
            ..Seed::default()
        },
    )
    .await;
    let org_id = a.id;
    let query = PayableQuery { currency: Currency::USD, cutoff: T0, affiliates: None };
    let q = query.clone();
    let (first, second, third, all) = commit(store, move |tx| {
        let first = tx.open_entries(org_id, &q, None, 1)?;
        let after = first.last().map(|e| e.affiliate_id);
        let second = tx.open_entries(org_id, &q, after, 1)?;
        let third = tx.open_entries(org_id, &q, second.last().map(|e| e.affiliate_id), 1)?;
        Ok((first, second, third, tx.open_entries(org_id, &q, None, 10)?))
    })
    .await;
    let ids = |v: &[rekomi_domain::payouts::PayableEntry]| v.iter().map(|e| e.id.as_uuid().as_u128()).collect::<Vec<_>>();
    assert_eq!(ids(&first), vec![30, 31], "Sarah's payable, non-zero USD entries, in ledger order");
    assert_eq!(ids(&second), vec![34], "then Tom's");
    assert!(third.is_empty());
    assert_eq!(ids(&all), vec![30, 31, 34]);
    let only_tom = PayableQuery { affiliates: Some(vec![tom.id]), ..query.clone() };
    assert_eq!(ids(&commit(store, move |tx| tx.open_entries(org_id, &only_tom, None, 10)).await), vec![34]);

    // A live line item holds an entry; a second claim is refused.
    let (p1, p2) = (payout(&a, sarah.id, 40, 800, PayoutStatus::Processing), payout(&a, sarah.id, 41, 800, PayoutStatus::Pending));
    let (i1, i2) = (item(&p1, 50, &entries[0]), item(&p1, 51, &entries[1]));
    let dup = item(&p2, 52, &entries[0]);
    let (p1c, p2c) = (p1.clone(), p2.clone());
    commit(store, move |tx| {
        tx.insert_payouts(&[p1c, p2c])?;
        tx.insert_line_items(&[i1, i2])
    })
    .await;
    assert_conflict(attempt(store, move |tx| tx.insert_line_items(&[dup])).await, constraints::PAYOUT_ENTRY_LIVE);
    let q = query.clone();
    assert_eq!(ids(&commit(store, move |tx| tx.open_entries(org_id, &q, None, 10)).await), vec![34], "held entries are not open");
    let (sid, p1id) = (sarah.id, p1.id);
    let claims = commit(store, move |tx| tx.entry_claims(org_id, sid, Currency::USD)).await;
    assert_eq!(claims.iter().filter(|(_, c)| *c == EntryClaim::InFlight).count(), 2);

    // Failing releases; a retry claims again unless another payout took an entry meanwhile.
    commit(store, move |tx| tx.release_line_items(org_id, p1id)).await;
    let q = query.clone();
    assert_eq!(ids(&commit(store, move |tx| tx.open_entries(org_id, &q, None, 10)).await), vec![30, 31, 34]);
    let retaken = item(&p2, 53, &entries[0]);
    commit(store, move |tx| tx.insert_line_items(&[retaken])).await;
    assert_conflict(attempt(store, move |tx| tx.reclaim_line_items(org_id, p1id)).await, constraints::PAYOUT_ENTRY_LIVE);
    let items = commit(store, move |tx| tx.line_items_of(org_id, &[p1id])).await;
    assert_eq!(items.len(), 2, "released line items stay as the payout's history");
}

/// Conversions become Paid only when every positive entry is held by a Paid payout, and a
/// reversal sets them back to Approved; balances classify entries by their payout's status.
pub async fn conversions_are_paid_only_when_every_positive_entry_is(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let pa = program(&a, 3, "main");
    let sarah = affiliate(&pa, 10, "sarah@x.test");
    let (mut c1, mut c2) = (conversion(&sarah, 20), conversion(&sarah, 21));
    c1.status = ConversionStatus::Approved;
    c2.status = ConversionStatus::Approved;
    let (e1, e2, e3) =
        (entry(&c1, 30, 1_000, Duration::days(-1)), entry(&c2, 31, 500, Duration::days(-1)), entry(&c2, 32, 300, Duration::days(-1)));
    seed(
        store,
        Seed {
            orgs: vec![a.clone()],
            programs: vec![pa],
            affiliates: vec![sarah.clone()],
            conversions: vec![c1.clone(), c2.clone()],
            ledger: vec![e1.clone(), e2.clone(), e3.clone()],
            ..Seed::default()
        },
    )
    .await;
    let org_id = a.id;
    let paid = payout(&a, sarah.id, 40, 1_500, PayoutStatus::Paid);
    let items = vec![item(&paid, 50, &e1), item(&paid, 51, &e2)];
    let pid = paid.id;
    let changed = commit(store, move |tx| {
        tx.insert_payouts(&[paid])?;
        tx.insert_line_items(&items)?;
        tx.mark_conversions_paid(org_id, &[pid], T0)
    })
    .await;
    assert_eq!(changed, 1, "c2 still has an unpaid entry");
    let (c1id, c2id, sid) = (c1.id, c2.id, sarah.id);
    let statuses =
        commit(store, move |tx| Ok((tx.conversion(org_id, c1id)?.unwrap().status, tx.conversion(org_id, c2id)?.unwrap().status))).await;
    assert_eq!(statuses, (ConversionStatus::Paid, ConversionStatus::Approved));
    let claims = commit(store, move |tx| tx.entry_claims(org_id, sid, Currency::USD)).await;
    let mut kinds: Vec<(i64, EntryClaim)> = claims;
    kinds.sort_by_key(|(c, _)| *c);
    assert_eq!(kinds, vec![(300, EntryClaim::Open), (500, EntryClaim::Paid), (1_000, EntryClaim::Paid)]);
    assert_eq!(commit(store, move |tx| tx.paid_out_since(org_id, Currency::USD, T0)).await, 1_500);
    assert_eq!(commit(store, move |tx| tx.paid_out_since(org_id, Currency::USD, T0 + Duration::seconds(1))).await, 0);
    let unmarked = commit(store, move |tx| tx.unmark_conversions_paid(org_id, pid, T0)).await;
    assert_eq!(unmarked.iter().map(|c| c.as_uuid().as_u128()).collect::<Vec<_>>(), vec![20]);
}

/// A payout round trips, is found by its transfer, lists by filter newest first, and Processing
/// payouts untouched since a time come back oldest first across organizations.
pub async fn a_payout_round_trips_and_processing_payouts_come_back_oldest_first(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (pa, pb) = (program(&a, 3, "main"), program(&b, 4, "main"));
    let (sarah, other) = (affiliate(&pa, 10, "sarah@x.test"), affiliate(&pb, 12, "o@x.test"));
    seed(
        store,
        Seed {
            orgs: vec![a.clone(), b.clone()],
            programs: vec![pa, pb],
            affiliates: vec![sarah.clone(), other.clone()],
            ..Seed::default()
        },
    )
    .await;
    let mut p1 = payout(&a, sarah.id, 40, 100, PayoutStatus::Processing);
    p1.method = PayoutMethod::StripeConnect;
    p1.updated_at = T0 - Duration::minutes(5);
    let mut p2 = payout(&b, other.id, 41, 200, PayoutStatus::Processing);
    p2.updated_at = T0 - Duration::minutes(10);
    let p3 = payout(&a, sarah.id, 42, 300, PayoutStatus::Paid);
    let rows = vec![p1.clone(), p2.clone(), p3.clone()];
    commit(store, move |tx| tx.insert_payouts(&rows)).await;
    let org_id = a.id;
    let (p1id, p2id) = (p1.id, p2.id);
    let due = commit(store, move |tx| tx.processing_payouts(T0 - Duration::minutes(1), 10)).await;
    assert_eq!(due.iter().map(|p| p.id).collect::<Vec<PayoutId>>(), vec![p2id, p1id]);
    let mut settled = p1.clone();
    settled.paid(Some("tr_1Settled".parse().unwrap()), T0);
    let s = settled.clone();
    commit(store, move |tx| tx.update_payout(&s)).await;
    let (found, by_transfer, foreign) = commit(store, move |tx| {
        Ok((tx.payout(org_id, p1id)?, tx.payout_of_transfer(&"tr_1Settled".parse().unwrap())?, tx.payout(org_id, p2id)?))
    })
    .await;
    assert_eq!(found.as_ref(), Some(&settled), "every field round trips");
    assert_eq!(by_transfer, Some(settled));
    assert_eq!(foreign, None, "another organization's payout reads as absent");
    let filter = rekomi_domain::payouts::PayoutFilter { method: Some(PayoutMethod::Manual), ..Default::default() };
    let listed = commit(store, move |tx| tx.list_payouts(org_id, &filter, &rekomi_domain::kernel::page::PageRequest::first())).await;
    assert_eq!(listed, vec![p3]);
}

/// An idempotency key is inserted once (a second first use conflicts), completed, replaced
/// when asked, forgotten; a reference rate is the latest in its window.
pub async fn idempotency_records_and_reference_rates_behave(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    seed(store, Seed { orgs: vec![a.clone()], ..Seed::default() }).await;
    let org_id = a.id;
    let record = IdempotencyRecord {
        org_id,
        key: "k1".into(),
        request_hash: "h".into(),
        response: None,
        created_at: T0,
        expires_at: T0 + Duration::hours(1),
    };
    let r = record.clone();
    commit(store, move |tx| tx.put_idempotency_record(&r, false)).await;
    let r = record.clone();
    assert_conflict(attempt(store, move |tx| tx.put_idempotency_record(&r, false)).await, constraints::IDEMPOTENCY_KEY);
    let answer = StoredResponse { status: 200, body: "[]".into() };
    let a2 = answer.clone();
    let stored = commit(store, move |tx| {
        tx.complete_idempotency_record(org_id, "k1", &a2)?;
        tx.idempotency_record(org_id, "k1")
    })
    .await;
    assert_eq!(stored.and_then(|r| r.response), Some(answer));
    let mut replaced = record.clone();
    replaced.request_hash = "other".into();
    let r = replaced.clone();
    let after = commit(store, move |tx| {
        tx.put_idempotency_record(&r, true)?;
        tx.idempotency_record(org_id, "k1")
    })
    .await;
    assert_eq!(after, Some(replaced));
    assert_eq!(
        commit(store, move |tx| tx.delete_idempotency_record(org_id, "k1").and_then(|()| tx.idempotency_record(org_id, "k1"))).await,
        None
    );

    let usd = Currency::USD;
    let rate = |day, r: &str| ReferenceRate { currency: usd, day, rate: FxRate::parse(r).unwrap() };
    let rates = vec![rate(date!(2026 - 05 - 28), "1.10"), rate(date!(2026 - 05 - 29), "1.11")];
    commit(store, move |tx| tx.upsert_reference_rates(&rates).map(|_| ())).await;
    let newer = vec![rate(date!(2026 - 05 - 29), "1.12")];
    commit(store, move |tx| tx.upsert_reference_rates(&newer).map(|_| ())).await;
    let (sunday, too_late, none) = commit(store, move |tx| {
        Ok((
            tx.reference_rate(usd, date!(2026 - 05 - 24), date!(2026 - 05 - 31))?,
            tx.reference_rate(usd, date!(2026 - 05 - 30), date!(2026 - 06 - 06))?,
            tx.reference_rate(Currency::parse("GBP").unwrap(), date!(2026 - 05 - 24), date!(2026 - 05 - 31))?,
        ))
    })
    .await;
    assert_eq!(sunday.map(|r| (r.day, r.rate.to_string())), Some((date!(2026 - 05 - 29), "1.12".to_owned())), "the latest, replaced");
    assert_eq!((too_late, none), (None, None));
}
