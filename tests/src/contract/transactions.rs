//! The contract of the unit of work itself ([`UnitOfWork`], [`Savepoints`]): a failed
//! transaction leaves nothing behind, a conflict rolls back the writes before it, a savepoint
//! undoes only its own writes, and the store answers pings.
//!
//! [`UnitOfWork`]: rekomi_domain::ports::store::UnitOfWork
//! [`Savepoints`]: rekomi_domain::ports::store::Savepoints

use rekomi_domain::affiliates::Email;
use rekomi_domain::conversions::{LedgerKind, SubAffiliateConfig};
use rekomi_domain::coupons::CouponCode;
use rekomi_domain::kernel::actor::AuditActor;
use rekomi_domain::orgs::hash_api_key;
use rekomi_domain::ports::store::{constraints, transact, StoreError, UnitOfWork};
use rekomi_domain::programs::Hundredths;
use time::Duration;

use super::fixtures::*;
use super::{assert_conflict, attempt, commit};

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
            ("inbox event", tx.inbox_event(&stripe_id("evt_1300"))?.is_some()),
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
