//! The storage contract of the audit log ([`AuditRepo`]): entries come back whole, newest first,
//! per organization, and a batch of rows is appended all or nothing.
//!
//! [`AuditRepo`]: rekomi_domain::audit::AuditRepo

use rekomi_domain::audit::{affiliate_snapshot, program_snapshot, AuditEntry};
use rekomi_domain::kernel::actor::AuditActor;
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::outbound::{Delivery, OutboxEvent};
use rekomi_domain::ports::store::{StoreError, UnitOfWork};
use time::Duration;
use uuid::Uuid;

use super::fixtures::*;
use super::{attempt, commit};

/// Audit entries come back whole, newest first, for their organization only, at most `limit`.
pub async fn audit_entries_come_back_newest_first_per_organization(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let p = program(&a, 100, "spring");
    let mut archived = p.clone();
    archived.archived_at = Some(T0 + Duration::hours(1));
    let created = audit(&a, 600, AuditActor::ApiKey(id::<Uuid>(700).to_string()), "program.created", &p);
    let mut updated = audit(&a, 601, AuditActor::User("user_owner".to_owned()), "program.deleted", &archived);
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
