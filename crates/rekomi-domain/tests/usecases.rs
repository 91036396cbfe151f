//! Use cases over the fakes: the in-memory store (with real rollback), the fake gateway, a
//! fixed clock and seeded entropy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use rekomi_domain::affiliates::{AffiliateFilter, AffiliateStatus, BulkAction, Email, NewAffiliate};
use rekomi_domain::coupons::{
    AffiliateCouponInput, CampaignCouponInput, CampaignCouponPatch, CouponCode, CouponSelector, PromoCodeQuery, PromoCodeResult,
    GENERATED_CODE_ALPHABET,
};
use rekomi_domain::kernel::actor::{AffiliateActor, BrandActor, Role};
use rekomi_domain::kernel::error::DomainError;
use rekomi_domain::kernel::ids::{AffiliateId, ApiKeyId, CampaignCouponId, OrgId, ProgramId};
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::kernel::plan::PlanTier;
use rekomi_domain::kernel::stripe_ids::StripeAccountId;
use rekomi_domain::orgs::{Handle, NewOrganization};
use rekomi_domain::ports::gateway::GatewayError;
use rekomi_domain::services::{BrandContext, Services};
use rekomi_fakes::{FakeGateway, FixedClock, InMemoryStore, SeededEntropy};
use support::{block_on, new_program, stripe_id, summer_coupon};
use time::macros::datetime;
use time::Duration;

struct World {
    services: Services,
    store: InMemoryStore,
    gateway: FakeGateway,
    clock: FixedClock,
}

fn world() -> World {
    let store = InMemoryStore::new();
    let gateway = FakeGateway::new();
    let clock = FixedClock::new(datetime!(2026-06-01 12:00 UTC));
    let services = Services {
        store: Arc::new(store.clone()),
        gateway: Arc::new(gateway.clone()),
        payout_rail: Arc::new(rekomi_fakes::FakePayoutRail::new()),
        clock: Arc::new(clock.clone()),
        entropy: Arc::new(SeededEntropy::new(7)),
        events: Arc::new(support::NoEvents),
        webhooks: Arc::new(rekomi_fakes::FakeWebhookSender::new()),
    };
    World { services, store, gateway, clock }
}

impl World {
    fn org(&self, handle: &str, plan: PlanTier) -> BrandContext {
        let (org, _key) = block_on(self.services.create_organization(NewOrganization {
            name: handle.to_owned(),
            handle: Handle::parse(handle).unwrap(),
            plan,
        }))
        .unwrap();
        BrandContext {
            actor: BrandActor::ApiKey { org: org.id, key: ApiKeyId::from_uuid(uuid::Uuid::nil()) },
            org,
            now: datetime!(2026-06-01 12:00 UTC),
        }
    }

    fn program(&self, ctx: &BrandContext, name: &str) -> ProgramId {
        block_on(self.services.create_program(ctx, new_program(name))).unwrap().id
    }

    /// An org on Growth with one program, one approved affiliate and one campaign coupon.
    fn standard(&self) -> Standard {
        let ctx = self.org("acme", PlanTier::Growth);
        let program = self.program(&ctx, "Default");
        let affiliate = self.affiliate(&ctx, program, "sarah@creator.com", AffiliateStatus::Approved);
        let coupon = self.campaign(&ctx, program, false);
        Standard { ctx, program, affiliate, coupon }
    }

    fn affiliate(&self, ctx: &BrandContext, program: ProgramId, email: &str, status: AffiliateStatus) -> AffiliateId {
        let new = NewAffiliate {
            program_id: program,
            email: Email::parse("email", email).unwrap(),
            full_name: Some("Sarah Smith".into()),
            status: Some(status),
            custom_commission: None,
            custom_alias: None,
            recruited_by: None,
        };
        block_on(self.services.create_affiliate(ctx, new)).unwrap().affiliate.id
    }

    fn campaign(&self, ctx: &BrandContext, program: ProgramId, self_mint: bool) -> CampaignCouponId {
        block_on(self.services.create_campaign_coupon(ctx, program, coupon_input(self_mint))).unwrap().id
    }

    fn code(
        &self,
        ctx: &BrandContext,
        affiliate: AffiliateId,
        campaign: CampaignCouponId,
        code: Option<&str>,
    ) -> Result<rekomi_domain::coupons::CodeView, DomainError> {
        let input = AffiliateCouponInput { code: code.map(str::to_owned), ..Default::default() };
        block_on(self.services.create_affiliate_coupon(ctx, affiliate, campaign, input))
    }

    fn audit_actions(&self, org: OrgId) -> Vec<String> {
        self.store.read(|tx| tx.audit_entries(org, 1000).unwrap()).into_iter().map(|e| e.action.as_str().to_owned()).collect()
    }
}

struct Standard {
    ctx: BrandContext,
    program: ProgramId,
    affiliate: AffiliateId,
    coupon: CampaignCouponId,
}

fn coupon_input(self_mint: bool) -> CampaignCouponInput {
    summer_coupon(self_mint)
}

fn code_of(err: DomainError) -> String {
    match err {
        DomainError::NotFound(c) => c.to_owned(),
        DomainError::Conflict { code, .. } | DomainError::Unprocessable { code, .. } | DomainError::Forbidden { code, .. } => {
            code.to_owned()
        }
        DomainError::Validation(f) => format!("validation:{}", f.field),
        DomainError::PlanRequired(p) => format!("plan:{}", p.required),
        other => format!("{other:?}"),
    }
}

#[test]
fn a_campaign_coupon_becomes_a_stripe_coupon_keyed_by_its_own_id() {
    let w = world();
    let ctx = w.org("acme", PlanTier::Growth);
    let program = w.program(&ctx, "Default");
    let id = w.campaign(&ctx, program, false);
    let created = w.gateway.created_coupons();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].idempotency_key, format!("rekomi-campaign-coupon-{id}"));
    assert!(created[0].metadata.contains(&("rekomi_id".to_owned(), id.to_string())));
    let stored = block_on(w.services.get_campaign_coupon(&ctx, program, id)).unwrap();
    assert_eq!(stored.stripe_coupon_id.as_ref(), Some(&w.gateway.coupons()[0].id));
    assert!(w.audit_actions(ctx.org_id()).contains(&"campaign_coupon.created".to_owned()));
}

#[test]
fn a_vanity_code_is_upper_cased_and_taken_regardless_of_case() {
    let w = world();
    let ctx = w.org("acme", PlanTier::Growth);
    let program = w.program(&ctx, "Default");
    let sarah = w.affiliate(&ctx, program, "sarah@creator.com", AffiliateStatus::Approved);
    let coupon = w.campaign(&ctx, program, false);
    let view = w.code(&ctx, sarah, coupon, Some("sarah20")).unwrap();
    assert_eq!(view.coupon.code.as_str(), "SARAH20");
    assert!(!view.coupon.is_auto_generated);
    assert_eq!(view.coupon.max_redemptions, Some(100), "inherits maxRedemptionsPerCode");
    assert_eq!(code_of(w.code(&ctx, sarah, coupon, Some("Sarah20")).unwrap_err()), "code_already_taken");
    assert_eq!(w.gateway.created_promotion_codes().len(), 1, "the duplicate never reached Stripe");
}

#[test]
fn the_same_code_may_exist_in_another_organization_on_its_own_stripe_account() {
    let w = world();
    for handle in ["acme", "globex"] {
        let mut ctx = w.org(handle, PlanTier::Growth);
        ctx.org.stripe_account_id = Some(stripe_id(&format!("acct_{handle}")));
        let program = w.program(&ctx, "Default");
        let a = w.affiliate(&ctx, program, "sarah@creator.com", AffiliateStatus::Approved);
        let c = w.campaign(&ctx, program, false);
        assert!(w.code(&ctx, a, c, Some("SARAH20")).is_ok(), "{handle}");
    }
}

#[test]
fn a_generated_code_is_eight_characters_of_the_unambiguous_alphabet() {
    let w = world();
    let Standard { ctx, program: _, affiliate: a, coupon: c } = w.standard();
    let view = w.code(&ctx, a, c, None).unwrap();
    assert_eq!(view.coupon.code.as_str().len(), 8);
    assert!(view.coupon.code.as_str().bytes().all(|b| GENERATED_CODE_ALPHABET.contains(&b)));
    assert!(view.coupon.is_auto_generated);
}

#[test]
fn a_campaign_coupon_of_another_program_is_refused() {
    let w = world();
    let ctx = w.org("acme", PlanTier::Growth);
    let p1 = w.program(&ctx, "One");
    let p2 = w.program(&ctx, "Two");
    let a = w.affiliate(&ctx, p1, "sarah@creator.com", AffiliateStatus::Approved);
    let c = w.campaign(&ctx, p2, false);
    assert_eq!(code_of(w.code(&ctx, a, c, Some("SARAH20")).unwrap_err()), "program_mismatch");
}

#[test]
fn stripe_refusing_a_code_releases_the_reservation() {
    let w = world();
    let Standard { ctx, program: _, affiliate: a, coupon: c } = w.standard();
    w.gateway.fail_next(GatewayError::Rejected {
        code: Some("parameter_invalid".into()),
        param: Some("customer".into()),
        message: "No such customer".into(),
    });
    assert!(matches!(w.code(&ctx, a, c, Some("SARAH20")), Err(DomainError::Gateway(GatewayError::Rejected { .. }))));
    let left = w.store.read(|tx| tx.affiliate_coupon_by_code(ctx.org_id(), &CouponCode::parse("SARAH20").unwrap()).unwrap());
    assert!(left.is_none(), "the reservation is gone");
    assert!(w.code(&ctx, a, c, Some("SARAH20")).is_ok(), "the code can be used again");
}

#[test]
fn a_code_already_active_at_stripe_is_code_already_taken() {
    let w = world();
    let Standard { ctx, program: _, affiliate: a, coupon: c } = w.standard();
    let coupon_stripe_id = w.gateway.coupons()[0].id.clone();
    w.gateway.seed_promotion_code(&Default::default(), &stripe_id("promo_outside"), &coupon_stripe_id, "SARAH20");
    assert_eq!(code_of(w.code(&ctx, a, c, Some("SARAH20")).unwrap_err()), "code_already_taken");
}

#[test]
fn stripe_unavailable_keeps_the_reservation_for_the_reconciler_which_reuses_the_key() {
    let w = world();
    let Standard { ctx, program: _, affiliate: a, coupon: c } = w.standard();
    w.gateway.fail_next(GatewayError::Unavailable("timeout".into()));
    assert!(matches!(w.code(&ctx, a, c, Some("SARAH20")), Err(DomainError::Gateway(GatewayError::Unavailable(_)))));
    // Invisible while provisioning.
    let listed = block_on(w.services.list_affiliate_coupons(&ctx, a, PageRequest::first())).unwrap();
    assert!(listed.items.is_empty());
    // Too young for the reconciler.
    assert_eq!(block_on(w.services.reconcile_provisioning()).unwrap().provisioned, 0);
    w.clock.advance(Duration::minutes(5) + Duration::seconds(1));
    let report = block_on(w.services.reconcile_provisioning()).unwrap();
    assert_eq!(report.provisioned, 1);
    let keys: Vec<String> =
        w.gateway.calls().iter().filter(|c| c.method() == "create_promotion_code").map(|c| c.idempotency_key().to_owned()).collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1], "the retry reuses the idempotency key");
    let listed = block_on(w.services.list_affiliate_coupons(&ctx, a, PageRequest::first())).unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(listed.items[0].coupon.stripe_promotion_code_id.is_some());
}

#[test]
fn a_client_retry_of_the_same_vanity_code_resumes_its_reservation() {
    let w = world();
    let Standard { ctx, program: _, affiliate: a, coupon: c } = w.standard();
    w.gateway.fail_next(GatewayError::Unavailable("timeout".into()));
    let _ = w.code(&ctx, a, c, Some("SARAH20"));
    let view = w.code(&ctx, a, c, Some("SARAH20")).unwrap();
    let keys: Vec<String> =
        w.gateway.calls().iter().filter(|c| c.method() == "create_promotion_code").map(|c| c.idempotency_key().to_owned()).collect();
    assert_eq!(keys, vec![format!("rekomi-affiliate-coupon-{}", view.coupon.id); 2]);
}

#[test]
fn archiving_deactivates_every_active_code_at_stripe_and_revokes_them() {
    let w = world();
    let Standard { ctx, program, affiliate: a, coupon: c } = w.standard();
    let one = w.code(&ctx, a, c, Some("SARAH20")).unwrap();
    let two = w.code(&ctx, a, c, Some("SARAHSUMMER")).unwrap();
    let archived = block_on(w.services.archive_campaign_coupon(&ctx, program, c)).unwrap();
    assert!(!archived.is_active);
    let mut deactivated = w.gateway.deactivated();
    deactivated.sort();
    let mut expected = vec![one.coupon.stripe_promotion_code_id.unwrap(), two.coupon.stripe_promotion_code_id.unwrap()];
    expected.sort();
    assert_eq!(deactivated, expected);
    let codes =
        w.store.read(|tx| tx.list_affiliate_coupons(ctx.org_id(), &CouponSelector::CampaignCoupon(c), &PageRequest::first()).unwrap());
    assert!(codes.iter().all(|c| !c.is_active && c.revoked_at.is_some()));
    assert_eq!(code_of(w.code(&ctx, a, c, Some("LATE")).unwrap_err()), "campaign_coupon_inactive");
}

#[test]
fn an_archive_interrupted_by_stripe_is_finished_by_archiving_again() {
    let w = world();
    let Standard { ctx, program, affiliate: a, coupon: c } = w.standard();
    w.code(&ctx, a, c, Some("SARAH20")).unwrap();
    w.code(&ctx, a, c, Some("SARAHSUMMER")).unwrap();
    w.gateway.fail_when(|call| (call.method() == "deactivate_promotion_code").then(|| GatewayError::Unavailable("down".into())));
    assert!(block_on(w.services.archive_campaign_coupon(&ctx, program, c)).is_err());
    w.gateway.clear_failures();
    block_on(w.services.archive_campaign_coupon(&ctx, program, c)).unwrap();
    assert!(w.gateway.active_codes().is_empty());
    let codes =
        w.store.read(|tx| tx.list_affiliate_coupons(ctx.org_id(), &CouponSelector::CampaignCoupon(c), &PageRequest::first()).unwrap());
    assert!(codes.iter().all(|c| !c.is_active));
}

#[test]
fn a_campaign_coupon_with_codes_cannot_be_deleted_but_one_without_can() {
    let w = world();
    let ctx = w.org("acme", PlanTier::Growth);
    let program = w.program(&ctx, "Default");
    let a = w.affiliate(&ctx, program, "sarah@creator.com", AffiliateStatus::Approved);
    let with_codes = w.campaign(&ctx, program, false);
    let view = w.code(&ctx, a, with_codes, Some("SARAH20")).unwrap();
    block_on(w.services.revoke_affiliate_coupon(&ctx, a, view.coupon.id)).unwrap();
    assert_eq!(code_of(block_on(w.services.delete_campaign_coupon(&ctx, program, with_codes)).unwrap_err()), "coupon_has_codes");
    let empty = w.campaign(&ctx, program, false);
    block_on(w.services.delete_campaign_coupon(&ctx, program, empty)).unwrap();
    assert_eq!(w.gateway.deleted_coupons().len(), 1);
    assert_eq!(code_of(block_on(w.services.get_campaign_coupon(&ctx, program, empty)).unwrap_err()), "campaign_coupon_not_found");
}

#[test]
fn revoking_twice_deactivates_at_stripe_once() {
    let w = world();
    let Standard { ctx, program: _, affiliate: a, coupon: c } = w.standard();
    let view = w.code(&ctx, a, c, Some("SARAH20")).unwrap();
    block_on(w.services.revoke_affiliate_coupon(&ctx, a, view.coupon.id)).unwrap();
    block_on(w.services.revoke_affiliate_coupon(&ctx, a, view.coupon.id)).unwrap();
    assert_eq!(w.gateway.deactivated().len(), 1);
}

#[test]
fn only_the_discount_free_fields_of_a_campaign_coupon_change() {
    let w = world();
    let ctx = w.org("acme", PlanTier::Growth);
    let program = w.program(&ctx, "Default");
    let c = w.campaign(&ctx, program, false);
    let patch = CampaignCouponPatch {
        name: Some("Renamed".into()),
        allow_affiliate_self_mint: Some(true),
        overrides_click_attribution: Some(false),
    };
    let updated = block_on(w.services.update_campaign_coupon(&ctx, program, c, patch)).unwrap();
    assert_eq!((updated.name.as_str(), updated.allow_affiliate_self_mint, updated.overrides_click_attribution), ("Renamed", true, false));
}

#[test]
fn api_keys_below_growth_get_plan_tier_required_for_coupons_but_dashboard_users_pass() {
    let w = world();
    let starter = w.org("acme", PlanTier::Starter);
    let program = w.program(&starter, "Default");
    let err = block_on(w.services.create_campaign_coupon(&starter, program, coupon_input(false))).unwrap_err();
    match err {
        DomainError::PlanRequired(p) => assert_eq!((p.required, p.current, p.trialing), (PlanTier::Growth, PlanTier::Starter, false)),
        other => panic!("expected 402, got {other:?}"),
    }
    let user = BrandContext {
        actor: BrandActor::User { org: starter.org_id(), user_id: "u1".into(), role: Role::Manager },
        org: starter.org.clone(),
        now: datetime!(2026-06-01 12:00 UTC),
    };
    assert!(block_on(w.services.create_campaign_coupon(&user, program, coupon_input(false))).is_ok());
}

#[test]
fn a_viewer_cannot_write_and_a_manager_cannot_delete_programs() {
    let w = world();
    let ctx = w.org("acme", PlanTier::Growth);
    let program = w.program(&ctx, "Default");
    let as_role = |role| BrandContext {
        actor: BrandActor::User { org: ctx.org_id(), user_id: "u".into(), role },
        org: ctx.org.clone(),
        now: datetime!(2026-06-01 12:00 UTC),
    };
    let patch = rekomi_domain::programs::ProgramPatch { name: Some("x".into()), ..Default::default() };
    assert_eq!(code_of(block_on(w.services.update_program(&as_role(Role::Viewer), program, patch)).unwrap_err()), "insufficient_role");
    assert_eq!(code_of(block_on(w.services.archive_program(&as_role(Role::Manager), program)).unwrap_err()), "insufficient_role");
    assert!(block_on(w.services.get_program(&as_role(Role::Viewer), program)).is_ok());
    block_on(w.services.archive_program(&as_role(Role::Owner), program)).unwrap();
}

#[test]
fn another_organizations_records_are_not_found() {
    let w = world();
    let acme = w.org("acme", PlanTier::Growth);
    let globex = w.org("globex", PlanTier::Growth);
    let program = w.program(&acme, "Default");
    let a = w.affiliate(&acme, program, "sarah@creator.com", AffiliateStatus::Approved);
    let c = w.campaign(&acme, program, false);
    let view = w.code(&acme, a, c, Some("SARAH20")).unwrap();
    assert_eq!(code_of(block_on(w.services.get_program(&globex, program)).unwrap_err()), "program_not_found");
    assert_eq!(code_of(block_on(w.services.get_affiliate(&globex, a)).unwrap_err()), "affiliate_not_found");
    assert_eq!(code_of(block_on(w.services.get_campaign_coupon(&globex, program, c)).unwrap_err()), "campaign_coupon_not_found");
    assert_eq!(code_of(block_on(w.services.list_affiliate_coupons(&globex, a, PageRequest::first())).unwrap_err()), "affiliate_not_found");
    assert_eq!(
        code_of(block_on(w.services.revoke_affiliate_coupon(&globex, a, view.coupon.id)).unwrap_err()),
        "promotional_code_not_found"
    );
    assert_eq!(
        code_of(block_on(w.services.lookup_promotional_codes(&globex, PromoCodeQuery::Id(view.coupon.id))).unwrap_err()),
        "promotional_code_not_found"
    );
    let by_email = block_on(
        w.services.lookup_promotional_codes(&globex, PromoCodeQuery::AffiliateEmail(Email::parse("e", "sarah@creator.com").unwrap())),
    )
    .unwrap();
    assert_eq!(by_email, PromoCodeResult::Many(vec![]));
    let bulk = block_on(w.services.bulk_affiliate_action(&globex, vec![a], BulkAction::Delete)).unwrap();
    assert_eq!((bulk.affected, bulk.total), (0, 1));
    assert!(block_on(w.services.get_affiliate(&acme, a)).is_ok(), "untouched");
}

#[test]
fn self_mint_needs_an_approved_member_and_a_coupon_that_allows_it_and_links_the_user() {
    let w = world();
    let ctx = w.org("acme", PlanTier::Growth);
    let program = w.program(&ctx, "Default");
    let a = w.affiliate(&ctx, program, "sarah@creator.com", AffiliateStatus::Approved);
    let allowed = w.campaign(&ctx, program, true);
    let closed = w.campaign(&ctx, program, false);
    let caller = AffiliateActor { user_id: "user_sarah".into(), email: "sarah@creator.com".into() };
    let code = |s: &str| CouponCode::parse(s).unwrap();

    assert_eq!(code_of(block_on(w.services.self_mint_coupon(&caller, closed, code("SARAH-X"))).unwrap_err()), "self_mint_not_allowed");
    let view = block_on(w.services.self_mint_coupon(&caller, allowed, code("sarah-spring"))).unwrap();
    assert_eq!(view.coupon.code.as_str(), "SARAH-SPRING");
    assert!(view.coupon.self_minted);
    let linked = block_on(w.services.get_affiliate(&ctx, a)).unwrap();
    assert_eq!(linked.affiliate.user_id.as_deref(), Some("user_sarah"));

    // Once linked, the email alone no longer grants access.
    let impostor = AffiliateActor { user_id: "someone_else".into(), email: "sarah@creator.com".into() };
    assert_eq!(
        code_of(block_on(w.services.self_mint_coupon(&impostor, allowed, code("SARAH-Y"))).unwrap_err()),
        "campaign_coupon_not_found"
    );

    let stranger = AffiliateActor { user_id: "u2".into(), email: "other@creator.com".into() };
    assert_eq!(
        code_of(block_on(w.services.self_mint_coupon(&stranger, allowed, code("OTHER1"))).unwrap_err()),
        "campaign_coupon_not_found"
    );

    w.affiliate(&ctx, program, "pending@creator.com", AffiliateStatus::Pending);
    let pending = AffiliateActor { user_id: "u3".into(), email: "pending@creator.com".into() };
    assert_eq!(code_of(block_on(w.services.self_mint_coupon(&pending, allowed, code("PEND1"))).unwrap_err()), "affiliate_not_approved");
}

#[test]
fn bulk_actions_count_only_rows_meeting_the_precondition() {
    let w = world();
    let ctx = w.org("acme", PlanTier::Growth);
    let program = w.program(&ctx, "Default");
    let p1 = w.affiliate(&ctx, program, "a@x.com", AffiliateStatus::Pending);
    let p2 = w.affiliate(&ctx, program, "b@x.com", AffiliateStatus::Pending);
    let ok = w.affiliate(&ctx, program, "c@x.com", AffiliateStatus::Approved);
    let out = block_on(w.services.bulk_affiliate_action(&ctx, vec![p1, p2, ok, p1], BulkAction::Approve)).unwrap();
    assert_eq!((out.affected, out.total), (2, 3));
    let pending = block_on(w.services.list_affiliates(
        &ctx,
        AffiliateFilter { status: Some(AffiliateStatus::Pending), ..Default::default() },
        PageRequest::first(),
    ))
    .unwrap();
    assert!(pending.items.is_empty());
    let too_many = (0..201).map(|i| AffiliateId::from_uuid(uuid::Uuid::from_u128(i))).collect();
    assert_eq!(
        code_of(block_on(w.services.bulk_affiliate_action(&ctx, too_many, BulkAction::Pause)).unwrap_err()),
        "validation:affiliateIds"
    );
}

#[test]
fn every_mutation_is_audited_in_its_transaction() {
    let w = world();
    let ctx = w.org("acme", PlanTier::Growth);
    let program = w.program(&ctx, "Default");
    let a = w.affiliate(&ctx, program, "sarah@creator.com", AffiliateStatus::Pending);
    block_on(w.services.approve_affiliate(&ctx, a)).unwrap();
    let c = w.campaign(&ctx, program, false);
    w.code(&ctx, a, c, Some("SARAH20")).unwrap();
    let entries = w.store.read(|tx| tx.audit_entries(ctx.org_id(), 100).unwrap());
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    for expected in [
        "organization.created",
        "program.created",
        "affiliate.created",
        "affiliate.approved",
        "campaign_coupon.created",
        "affiliate_coupon.created",
    ] {
        assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
    }
    assert!(entries
        .iter()
        .filter(|e| e.action.as_str() != "organization.created" && e.action.as_str() != "api_key.created")
        .all(|e| e.actor.kind() == "api_key"));
}

#[test]
fn a_failed_use_case_leaves_nothing_behind() {
    let w = world();
    let ctx = w.org("acme", PlanTier::Growth);
    let program = w.program(&ctx, "Default");
    w.affiliate(&ctx, program, "sarah@creator.com", AffiliateStatus::Approved);
    let before = w.audit_actions(ctx.org_id()).len();
    let dup = NewAffiliate {
        program_id: program,
        email: Email::parse("e", "SARAH@creator.com").unwrap(),
        full_name: None,
        status: Some(AffiliateStatus::Approved),
        custom_commission: None,
        custom_alias: None,
        recruited_by: None,
    };
    assert_eq!(code_of(block_on(w.services.create_affiliate(&ctx, dup)).unwrap_err()), "affiliate_already_exists");
    assert_eq!(w.audit_actions(ctx.org_id()).len(), before);
}

#[test]
fn an_expired_trial_passes_no_gate() {
    let w = world();
    let mut ctx = w.org("acme", PlanTier::Trial);
    assert!(block_on(w.services.list_programs(&ctx, PageRequest::first())).is_ok(), "a running trial counts as Starter");
    ctx.now = ctx.org.trial_ends_at.unwrap() + Duration::seconds(1);
    assert_eq!(code_of(block_on(w.services.list_programs(&ctx, PageRequest::first())).unwrap_err()), "plan:Starter");
}

#[test]
fn banning_or_deleting_an_affiliate_deactivates_its_codes_at_stripe() {
    let w = world();
    let Standard { ctx, program, affiliate: a, coupon: c } = w.standard();
    w.code(&ctx, a, c, Some("SARAH20")).unwrap();
    let patch = rekomi_domain::affiliates::AffiliatePatch { status: Some(AffiliateStatus::Banned), ..Default::default() };
    block_on(w.services.update_affiliate(&ctx, a, patch)).unwrap();
    assert!(w.gateway.active_codes().is_empty());
    let b = w.affiliate(&ctx, program, "bob@creator.com", AffiliateStatus::Approved);
    w.code(&ctx, b, c, Some("BOB20")).unwrap();
    block_on(w.services.bulk_affiliate_action(&ctx, vec![b], BulkAction::Delete)).unwrap();
    assert!(w.gateway.active_codes().is_empty());
    assert_eq!(code_of(w.code(&ctx, a, c, Some("BANNED")).unwrap_err()), "affiliate_not_eligible");
}

#[test]
fn archiving_a_program_closes_its_coupons_and_refuses_changes() {
    let w = world();
    let Standard { ctx, program, affiliate: a, coupon: c } = w.standard();
    w.code(&ctx, a, c, Some("SARAH20")).unwrap();
    block_on(w.services.archive_program(&ctx, program)).unwrap();
    assert!(w.gateway.active_codes().is_empty());
    assert!(!block_on(w.services.get_campaign_coupon(&ctx, program, c)).unwrap().is_active);
    let patch = rekomi_domain::programs::ProgramPatch { is_active: Some(true), ..Default::default() };
    assert_eq!(code_of(block_on(w.services.update_program(&ctx, program, patch)).unwrap_err()), "program_archived");
}

#[test]
fn a_derived_slug_that_is_taken_gets_a_suffix_but_a_chosen_one_conflicts() {
    let w = world();
    let ctx = w.org("acme", PlanTier::Growth);
    w.program(&ctx, "Holiday Promo");
    let second = block_on(w.services.create_program(&ctx, new_program("Holiday Promo"))).unwrap();
    assert!(second.slug.as_str().starts_with("holiday-promo-"), "{}", second.slug.as_str());
    let mut chosen = new_program("Other");
    chosen.slug = Some(rekomi_domain::programs::ProgramSlug::parse("holiday-promo").unwrap());
    assert_eq!(code_of(block_on(w.services.create_program(&ctx, chosen)).unwrap_err()), "slug_already_taken");
}

#[test]
fn an_organization_with_stripe_objects_cannot_move_to_another_account() {
    let w = world();
    let Standard { ctx, .. } = w.standard();
    assert_eq!(
        code_of(block_on(w.services.link_stripe_account(ctx.org_id(), Some(stripe_id("acct_other")))).unwrap_err()),
        "stripe_objects_exist"
    );
    let fresh = w.org("fresh", PlanTier::Growth);
    block_on(w.services.link_stripe_account(fresh.org_id(), Some(stripe_id("acct_fresh")))).unwrap();
    // An id that is no account id cannot even be passed: the command line parses it first.
    assert!(StripeAccountId::parse("bogus").is_err());
}

#[test]
fn a_retry_with_other_settings_does_not_resume_the_reservation() {
    let w = world();
    let Standard { ctx, affiliate: a, coupon: c, .. } = w.standard();
    w.gateway.fail_next(GatewayError::Unavailable("timeout".into()));
    let _ = w.code(&ctx, a, c, Some("SARAH20"));
    let other = AffiliateCouponInput { code: Some("SARAH20".into()), max_redemptions: Some(5), ..Default::default() };
    assert_eq!(code_of(block_on(w.services.create_affiliate_coupon(&ctx, a, c, other)).unwrap_err()), "code_already_taken");
}
