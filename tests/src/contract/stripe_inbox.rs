//! The storage contract of the Stripe inbox ([`InboxRepo`]): an event is stored once and only
//! its processing state changes, claims lease due events oldest first, leases are renewed and
//! released only while held, waiting events wake for their payment, and the Owner's list.
//!
//! [`InboxRepo`]: rekomi_domain::stripe_inbox::InboxRepo

use rekomi_domain::kernel::stripe_ids::{StripeEventId, StripePaymentRef};
use rekomi_domain::orgs::Organization;
use rekomi_domain::ports::store::UnitOfWork;
use rekomi_domain::stripe_inbox::{InboxEvent, InboxStatus};
use time::{Duration, OffsetDateTime};

use super::commit;
use super::fixtures::*;

fn inbox_ids(events: &[InboxEvent]) -> Vec<StripeEventId> {
    events.iter().map(|e| e.id.clone()).collect()
}

fn evts(ns: &[u128]) -> Vec<StripeEventId> {
    ns.iter().map(|n| stripe_id(&format!("evt_{n}"))).collect()
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
    let got = commit(store, |tx| {
        Ok((tx.inbox_event(&stripe_id("evt_1300"))?, tx.inbox_event(&stripe_id("evt_1301"))?, tx.inbox_event(&stripe_id("evt_unknown"))?))
    })
    .await;
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
    assert_eq!(
        commit(store, |tx| tx.inbox_event(&stripe_id("evt_1300"))).await,
        Some(processed),
        "the processing state changed, the arrival did not"
    );
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
    assert_eq!(commit(store, |tx| tx.inbox_event(&stripe_id("evt_1301"))).await, Some(first[0].clone()), "the claim is stored");

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
    let got = commit(store, |tx| {
        Ok((tx.inbox_event(&stripe_id("evt_1301"))?, tx.inbox_event(&stripe_id("evt_1303"))?, tx.inbox_event(&stripe_id("evt_1304"))?))
    })
    .await;
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
    let waiting = |n: u128, org: Option<&Organization>, account: Option<&str>, payment: &str, recheck: OffsetDateTime| InboxEvent {
        status: InboxStatus::Waiting,
        account: account.map(stripe_id),
        waiting_for: Some(stripe_id(payment)),
        next_attempt_at: recheck,
        last_error: Some(format!("waiting for the sale of payment {payment}")),
        ..inbox_event(n, org, T0)
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
    let payments: Vec<StripePaymentRef> = vec![stripe_id("in_x"), stripe_id("pi_x")];
    let woken = commit(store, move |tx| tx.wake_waiting_inbox_events(None, &payments, id(1), T0 + hour)).await;
    assert_eq!(woken, 2, "the platform account's refunds of in_x");
    let got = commit(store, |tx| {
        Ok((tx.inbox_event(&stripe_id("evt_1301"))?, tx.inbox_event(&stripe_id("evt_1302"))?, tx.inbox_event(&stripe_id("evt_1303"))?))
    })
    .await;
    let (first, second, other_account) = (got.0.unwrap(), got.1.unwrap(), got.2.unwrap());
    assert_eq!(
        (first.status, first.waiting_for.as_ref().map(|id| id.as_str()), first.next_attempt_at),
        (InboxStatus::Pending, None, T0 + hour)
    );
    assert_eq!(first.org_id, Some(id(1)), "an event without an organization takes the sale's");
    assert_eq!((second.status, second.org_id), (InboxStatus::Pending, Some(id(2))), "an organization already known stays");
    assert_eq!(other_account.status, InboxStatus::Waiting, "ids are unique per Stripe account only");
    let connected: Vec<StripePaymentRef> = vec![stripe_id("in_x")];
    assert_eq!(
        commit(store, move |tx| tx.wake_waiting_inbox_events(Some(&stripe_id("acct_other")), &connected, id(2), T0 + hour)).await,
        1
    );

    assert_eq!(commit(store, move |tx| tx.wake_due_inbox_events(T0 + hour, 10)).await, 0, "nothing is due yet");
    assert_eq!(commit(store, move |tx| tx.wake_due_inbox_events(T0 + 4 * hour, 1)).await, 1);
    let got = commit(store, |tx| Ok((tx.inbox_event(&stripe_id("evt_1304"))?, tx.inbox_event(&stripe_id("evt_1305"))?))).await;
    assert_eq!(got.0.map(|e| (e.status, e.waiting_for)), Some((InboxStatus::Pending, None)), "the oldest recheck first");
    assert_eq!(got.1.map(|e| e.status), Some(InboxStatus::Waiting));
    assert_eq!(commit(store, move |tx| tx.wake_due_inbox_events(T0 + 4 * hour, 10)).await, 1);
    let claimed = commit(store, move |tx| tx.claim_inbox_events(T0 + 4 * hour, T0 + 5 * hour, 10)).await;
    assert_eq!(inbox_ids(&claimed), evts(&[1301, 1302, 1303, 1304, 1305, 1306]));
}
