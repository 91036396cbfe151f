//! The storage contract of outbound webhooks ([`OutboundRepo`]): endpoints and deliveries round
//! trip, an endpoint takes its deliveries with it, claims take only enabled endpoints' due
//! deliveries, leases are renewed only while held, and the queue depths.
//!
//! [`OutboundRepo`]: rekomi_domain::outbound::OutboundRepo

use rekomi_domain::kernel::ids::DeliveryId;
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::outbound::{Delivery, DeliveryStatus, EndpointStatus};
use rekomi_domain::ports::store::UnitOfWork;
use rekomi_domain::stripe_inbox::{InboxEvent, InboxStatus};
use time::Duration;
use uuid::Uuid;

use super::fixtures::*;
use super::{commit, nums, read_pages, uuids};

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
    let asked: Vec<DeliveryId> = vec![id(1200), id(1201), id(1203)];
    let renewed = commit(store, move |tx| tx.renew_delivery_leases(&asked, T0 + 2 * minute)).await;
    assert_eq!(renewed, 1, "only the held delivery");
    let got = commit(store, |tx| Ok((tx.delivery(id(1), id(1200))?, tx.delivery(id(1), id(1201))?))).await;
    assert_eq!(got.0.and_then(|d| d.locked_until), Some(T0 + 2 * minute));
    assert_eq!(got.1.and_then(|d| d.locked_until), None);
}
