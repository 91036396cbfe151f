//! The storage contract of tracking ([`TrackingRepo`]): signing secrets round trip with their
//! key intact, only the live ones (no expiry, or one still ahead) come back, newest first and
//! only in their organization; expiring the current secret returns it as it was and leaves none
//! current; an organization has one current secret and must exist.
//!
//! [`TrackingRepo`]: rekomi_domain::tracking::TrackingRepo

use rekomi_domain::kernel::ids::TrackingSecretId;
use rekomi_domain::ports::store::{constraints, UnitOfWork};
use rekomi_domain::tracking::{SigningSecret, TrackingSecret};
use time::Duration;

use super::fixtures::*;
use super::{assert_conflict, attempt, commit, foreign_keys};

/// A secret of `org` numbered `n`, created at `T0` plus `n` seconds.
fn secret(org: &rekomi_domain::orgs::Organization, n: u128, expires_in: Option<Duration>) -> TrackingSecret {
    let key = format!("rks_{n:0>40}");
    TrackingSecret {
        id: id(n),
        org_id: org.id,
        secret: SigningSecret::parse(&key).unwrap(),
        created_at: T0 + Duration::seconds(n as i64),
        expires_at: expires_in.map(|d| T0 + d),
    }
}

/// Live secrets come back newest first, with their key, expired ones and other organizations'
/// never; expiring the current one hands it back as it was, once.
pub async fn live_signing_secrets_come_back_newest_first_and_expire_on_rotation(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    seed(store, Seed { orgs: vec![a.clone(), b.clone()], ..Seed::default() }).await;
    let old = secret(&a, 10, Some(Duration::hours(-1)));
    let overlapping = secret(&a, 11, Some(Duration::hours(23)));
    let current = secret(&a, 12, None);
    let others = secret(&b, 13, None);
    let rows = [old.clone(), overlapping.clone(), current.clone(), others.clone()];
    commit(store, move |tx| {
        for row in &rows {
            tx.insert_tracking_secret(row)?;
        }
        Ok(())
    })
    .await;
    let (a_id, b_id) = (a.id, b.id);
    let live = commit(store, move |tx| tx.live_tracking_secrets(a_id, T0)).await;
    assert_eq!(live, [current.clone(), overlapping.clone()], "newest first, the expired one left out");
    assert_eq!(live[0].secret.expose(), current.secret.expose(), "the key survives the round trip");
    let later = commit(store, move |tx| tx.live_tracking_secrets(a_id, T0 + Duration::hours(23))).await;
    assert_eq!(later, std::slice::from_ref(&current), "an expiry that has come is no longer live");
    assert_eq!(commit(store, move |tx| tx.live_tracking_secrets(b_id, T0)).await, std::slice::from_ref(&others));

    let end = T0 + Duration::hours(24);
    let (expired, again, after) = commit(store, move |tx| {
        let expired = tx.expire_current_tracking_secret(a_id, end)?;
        let again = tx.expire_current_tracking_secret(a_id, end)?;
        Ok((expired, again, tx.live_tracking_secrets(a_id, T0)?))
    })
    .await;
    assert_eq!(expired, Some(current.clone()), "the current secret as it was before");
    assert_eq!(again, None, "no current secret is left");
    let rotated = TrackingSecret { expires_at: Some(end), ..current.clone() };
    assert_eq!(after, [rotated, overlapping], "the rotated secret is still live until its expiry");
    assert_eq!(commit(store, move |tx| tx.live_tracking_secrets(b_id, T0)).await, [others], "other organizations are untouched");
    let none = commit(store, |tx| tx.expire_current_tracking_secret(id(99), T0)).await;
    assert_eq!(none, None);
}

/// A second current secret is refused under the named constraint (a concurrent rotation), an
/// expiring one is not; a secret needs its organization.
pub async fn an_organization_has_one_current_signing_secret(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    seed(store, Seed { orgs: vec![a.clone()], ..Seed::default() }).await;
    let first = secret(&a, 10, None);
    commit(store, move |tx| tx.insert_tracking_secret(&first)).await;
    let second = secret(&a, 11, None);
    assert_conflict(attempt(store, move |tx| tx.insert_tracking_secret(&second)).await, constraints::TRACKING_SECRET_CURRENT);
    let expiring = secret(&a, 12, Some(Duration::hours(24)));
    commit(store, move |tx| tx.insert_tracking_secret(&expiring)).await;
    let stranger = TrackingSecret { org_id: id(77), ..secret(&a, 13, None) };
    assert_conflict(attempt(store, move |tx| tx.insert_tracking_secret(&stranger)).await, foreign_keys::TRACKING_SECRET_ORG);
    let a_id = a.id;
    let live = commit(store, move |tx| tx.live_tracking_secrets(a_id, T0)).await;
    let ids: Vec<TrackingSecretId> = live.iter().map(|s| s.id).collect();
    assert_eq!(ids, [id(12), id(10)], "only the refused rows are missing");
}
