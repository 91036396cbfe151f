//! Campaign coupons and affiliates' promotion codes in PostgreSQL: the rows of
//! `campaign_coupons` and `affiliate_coupons`, and [`CouponRepo`] for [`PgTx`]. An outbound
//! adapter of the hexagon, the `coupons` capability's side of the storage port.

use diesel::dsl::exists;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use rekomi_domain::coupons::{
    AffiliateCoupon, CampaignCoupon, CodeRestrictions, CouponCode, CouponDuration, CouponRepo, CouponSelector, DiscountSpec,
};
use rekomi_domain::kernel::ids::{AffiliateCouponId, CampaignCouponId, OrgId, ProgramId};
use rekomi_domain::kernel::money::Money;
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::kernel::stripe_ids::{StripeCouponId, StripeCustomerId, StripePromotionCodeId};
use rekomi_domain::ports::store::StoreError;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::columns::{currency, stripe_id_opt, to_u32, to_u8};
use crate::error::bad_row;
use crate::schema::{affiliate_coupons, affiliates, campaign_coupons};
use crate::tx::{decode, get_by_org_and_id, keyset, PgTx};

diesel::define_sql_function!(
    /// SQL `upper(text)`, to hit the `upper(code)` unique index.
    fn upper(x: Text) -> Text
);
diesel::define_sql_function!(
    /// SQL `greatest(bigint, bigint)`.
    fn greatest(a: BigInt, b: BigInt) -> BigInt
);

// ---------------------------------------------------------------------------------------------
// campaign_coupons
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = campaign_coupons, check_for_backend(diesel::pg::Pg))]
struct CampaignCouponRow {
    id: Uuid,
    org_id: Uuid,
    program_id: Uuid,
    name: String,
    discount_type: String,
    discount_value: i64,
    discount_currency: Option<String>,
    duration: String,
    duration_in_months: Option<i32>,
    max_redemptions_per_code: Option<i64>,
    expires_at: Option<OffsetDateTime>,
    allow_affiliate_self_mint: bool,
    overrides_click_attribution: bool,
    is_active: bool,
    stripe_coupon_id: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    archived_at: Option<OffsetDateTime>,
}

impl CampaignCouponRow {
    fn into_domain(self) -> Result<CampaignCoupon, StoreError> {
        const T: &str = "campaign_coupons";
        let discount = match (self.discount_type.as_str(), self.discount_currency.as_deref()) {
            ("PercentOff", None) => DiscountSpec::PercentOff(to_u8(T, "discount_value", self.discount_value)?),
            ("AmountOff", Some(code)) => DiscountSpec::AmountOff(Money::new(self.discount_value, currency(T, "discount_currency", code)?)),
            (kind, _) => return Err(bad_row(T, "discount_type", format!("{kind:?} with an inconsistent discount_currency"))),
        };
        let duration = match (self.duration.as_str(), self.duration_in_months) {
            ("Once", None) => CouponDuration::Once,
            ("Forever", None) => CouponDuration::Forever,
            ("Repeating", Some(m)) => CouponDuration::Repeating(to_u8(T, "duration_in_months", i64::from(m))?),
            (kind, _) => return Err(bad_row(T, "duration", format!("{kind:?} with an inconsistent duration_in_months"))),
        };
        Ok(CampaignCoupon {
            id: self.id.into(),
            org_id: self.org_id.into(),
            program_id: self.program_id.into(),
            name: self.name,
            discount,
            duration,
            max_redemptions_per_code: self.max_redemptions_per_code.map(|n| to_u32(T, "max_redemptions_per_code", n)).transpose()?,
            expires_at: self.expires_at,
            allow_affiliate_self_mint: self.allow_affiliate_self_mint,
            overrides_click_attribution: self.overrides_click_attribution,
            is_active: self.is_active,
            stripe_coupon_id: stripe_id_opt(T, "stripe_coupon_id", self.stripe_coupon_id.as_deref())?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            archived_at: self.archived_at,
        })
    }
}

#[derive(Insertable, AsChangeset)]
#[diesel(table_name = campaign_coupons, treat_none_as_null = true)]
struct NewCampaignCouponRow<'a> {
    id: Uuid,
    org_id: Uuid,
    program_id: Uuid,
    name: &'a str,
    discount_type: &'static str,
    discount_value: i64,
    discount_currency: Option<&'static str>,
    duration: &'static str,
    duration_in_months: Option<i32>,
    max_redemptions_per_code: Option<i64>,
    expires_at: Option<OffsetDateTime>,
    allow_affiliate_self_mint: bool,
    overrides_click_attribution: bool,
    is_active: bool,
    stripe_coupon_id: Option<&'a str>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    archived_at: Option<OffsetDateTime>,
}

impl<'a> From<&'a CampaignCoupon> for NewCampaignCouponRow<'a> {
    fn from(c: &'a CampaignCoupon) -> Self {
        let (discount_type, discount_value, discount_currency) = match c.discount {
            DiscountSpec::PercentOff(p) => ("PercentOff", i64::from(p), None),
            DiscountSpec::AmountOff(m) => ("AmountOff", m.minor(), Some(m.currency().code())),
        };
        let (duration, duration_in_months) = match c.duration {
            CouponDuration::Once => ("Once", None),
            CouponDuration::Repeating(m) => ("Repeating", Some(i32::from(m))),
            CouponDuration::Forever => ("Forever", None),
        };
        Self {
            id: c.id.as_uuid(),
            org_id: c.org_id.as_uuid(),
            program_id: c.program_id.as_uuid(),
            name: &c.name,
            discount_type,
            discount_value,
            discount_currency,
            duration,
            duration_in_months,
            max_redemptions_per_code: c.max_redemptions_per_code.map(i64::from),
            expires_at: c.expires_at,
            allow_affiliate_self_mint: c.allow_affiliate_self_mint,
            overrides_click_attribution: c.overrides_click_attribution,
            is_active: c.is_active,
            stripe_coupon_id: c.stripe_coupon_id.as_ref().map(StripeCouponId::as_str),
            created_at: c.created_at,
            updated_at: c.updated_at,
            archived_at: c.archived_at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// affiliate_coupons
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = affiliate_coupons, check_for_backend(diesel::pg::Pg))]
struct AffiliateCouponRow {
    id: Uuid,
    org_id: Uuid,
    program_id: Uuid,
    affiliate_id: Uuid,
    campaign_coupon_id: Uuid,
    code: String,
    stripe_promotion_code_id: Option<String>,
    is_active: bool,
    max_redemptions: Option<i64>,
    expires_at: Option<OffsetDateTime>,
    first_time_order: bool,
    minimum_amount: Option<i64>,
    minimum_amount_currency: Option<String>,
    limit_to_customers: bool,
    customer_id: Option<String>,
    limit_to_affiliate: bool,
    times_redeemed: i64,
    last_redeemed_at: Option<OffsetDateTime>,
    is_auto_generated: bool,
    self_minted: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
}

impl AffiliateCouponRow {
    fn into_domain(self) -> Result<AffiliateCoupon, StoreError> {
        const T: &str = "affiliate_coupons";
        let minimum_amount = match (self.minimum_amount, self.minimum_amount_currency.as_deref()) {
            (None, None) => None,
            (Some(amount), Some(code)) => Some(Money::new(amount, currency(T, "minimum_amount_currency", code)?)),
            _ => return Err(bad_row(T, "minimum_amount", "amount and currency must be set together")),
        };
        Ok(AffiliateCoupon {
            id: self.id.into(),
            org_id: self.org_id.into(),
            program_id: self.program_id.into(),
            affiliate_id: self.affiliate_id.into(),
            campaign_coupon_id: self.campaign_coupon_id.into(),
            code: CouponCode::parse(&self.code).map_err(|e| bad_row(T, "code", e))?,
            stripe_promotion_code_id: stripe_id_opt(T, "stripe_promotion_code_id", self.stripe_promotion_code_id.as_deref())?,
            is_active: self.is_active,
            max_redemptions: self.max_redemptions.map(|n| to_u32(T, "max_redemptions", n)).transpose()?,
            expires_at: self.expires_at,
            restrictions: CodeRestrictions {
                first_time_order: self.first_time_order,
                minimum_amount,
                limit_to_customers: self.limit_to_customers,
                customer_id: stripe_id_opt(T, "customer_id", self.customer_id.as_deref())?,
                limit_to_affiliate: self.limit_to_affiliate,
            },
            times_redeemed: self.times_redeemed,
            last_redeemed_at: self.last_redeemed_at,
            is_auto_generated: self.is_auto_generated,
            self_minted: self.self_minted,
            created_at: self.created_at,
            updated_at: self.updated_at,
            revoked_at: self.revoked_at,
        })
    }
}

#[derive(Insertable, AsChangeset)]
#[diesel(table_name = affiliate_coupons, treat_none_as_null = true)]
struct NewAffiliateCouponRow<'a> {
    id: Uuid,
    org_id: Uuid,
    program_id: Uuid,
    affiliate_id: Uuid,
    campaign_coupon_id: Uuid,
    code: &'a str,
    stripe_promotion_code_id: Option<&'a str>,
    is_active: bool,
    max_redemptions: Option<i64>,
    expires_at: Option<OffsetDateTime>,
    first_time_order: bool,
    minimum_amount: Option<i64>,
    minimum_amount_currency: Option<&'static str>,
    limit_to_customers: bool,
    customer_id: Option<&'a str>,
    limit_to_affiliate: bool,
    times_redeemed: i64,
    last_redeemed_at: Option<OffsetDateTime>,
    is_auto_generated: bool,
    self_minted: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
}

impl<'a> From<&'a AffiliateCoupon> for NewAffiliateCouponRow<'a> {
    fn from(c: &'a AffiliateCoupon) -> Self {
        let r = &c.restrictions;
        Self {
            id: c.id.as_uuid(),
            org_id: c.org_id.as_uuid(),
            program_id: c.program_id.as_uuid(),
            affiliate_id: c.affiliate_id.as_uuid(),
            campaign_coupon_id: c.campaign_coupon_id.as_uuid(),
            code: c.code.as_str(),
            stripe_promotion_code_id: c.stripe_promotion_code_id.as_ref().map(StripePromotionCodeId::as_str),
            is_active: c.is_active,
            max_redemptions: c.max_redemptions.map(i64::from),
            expires_at: c.expires_at,
            first_time_order: r.first_time_order,
            minimum_amount: r.minimum_amount.map(|m| m.minor()),
            minimum_amount_currency: r.minimum_amount.map(|m| m.currency().code()),
            limit_to_customers: r.limit_to_customers,
            customer_id: r.customer_id.as_ref().map(StripeCustomerId::as_str),
            limit_to_affiliate: r.limit_to_affiliate,
            times_redeemed: c.times_redeemed,
            last_redeemed_at: c.last_redeemed_at,
            is_auto_generated: c.is_auto_generated,
            self_minted: c.self_minted,
            created_at: c.created_at,
            updated_at: c.updated_at,
            revoked_at: c.revoked_at,
        }
    }
}

impl CouponRepo for PgTx<'_> {
    fn insert_campaign_coupon(&mut self, coupon: &CampaignCoupon) -> Result<(), StoreError> {
        let row = NewCampaignCouponRow::from(coupon);
        self.write(|c| diesel::insert_into(campaign_coupons::table).values(&row).execute(c))?;
        Ok(())
    }

    fn update_campaign_coupon(&mut self, coupon: &CampaignCoupon) -> Result<(), StoreError> {
        let row = NewCampaignCouponRow::from(coupon);
        let (id, org) = (coupon.id.as_uuid(), coupon.org_id.as_uuid());
        self.write(|c| {
            diesel::update(campaign_coupons::table.filter(campaign_coupons::id.eq(id)).filter(campaign_coupons::org_id.eq(org)))
                .set(&row)
                .execute(c)
        })?;
        Ok(())
    }

    fn delete_campaign_coupon(&mut self, org: OrgId, id: CampaignCouponId) -> Result<(), StoreError> {
        self.guarded_write(|c| {
            diesel::delete(
                campaign_coupons::table.filter(campaign_coupons::id.eq(id.as_uuid())).filter(campaign_coupons::org_id.eq(org.as_uuid())),
            )
            .execute(c)
        })?;
        Ok(())
    }

    get_by_org_and_id!(
        campaign_coupon,
        campaign_coupon_for_update,
        for_update,
        campaign_coupons,
        CampaignCouponId,
        CampaignCouponRow,
        CampaignCoupon
    );

    fn list_campaign_coupons(&mut self, org: OrgId, program: ProgramId, page: &PageRequest) -> Result<Vec<CampaignCoupon>, StoreError> {
        let rows = self.read(|c| {
            let base = campaign_coupons::table
                .filter(campaign_coupons::org_id.eq(org.as_uuid()))
                .filter(campaign_coupons::program_id.eq(program.as_uuid()))
                .filter(campaign_coupons::stripe_coupon_id.is_not_null())
                .select(CampaignCouponRow::as_select())
                .into_boxed::<Pg>();
            keyset!(base, campaign_coupons, page).load(c)
        })?;
        decode(rows, CampaignCouponRow::into_domain)
    }

    fn unprovisioned_campaign_coupons(&mut self, before: OffsetDateTime, limit: i64) -> Result<Vec<CampaignCoupon>, StoreError> {
        let rows = self.read(|c| {
            campaign_coupons::table
                .filter(campaign_coupons::stripe_coupon_id.is_null())
                .filter(campaign_coupons::created_at.lt(before))
                // Oldest first: the reservation that has waited longest is finished first.
                .order((campaign_coupons::created_at.asc(), campaign_coupons::id.asc()))
                .limit(limit.max(0))
                .select(CampaignCouponRow::as_select())
                .load(c)
        })?;
        decode(rows, CampaignCouponRow::into_domain)
    }

    fn insert_affiliate_coupon(&mut self, coupon: &AffiliateCoupon) -> Result<(), StoreError> {
        let row = NewAffiliateCouponRow::from(coupon);
        self.guarded_write(|c| diesel::insert_into(affiliate_coupons::table).values(&row).execute(c))?;
        Ok(())
    }

    fn update_affiliate_coupon(&mut self, coupon: &AffiliateCoupon) -> Result<(), StoreError> {
        let row = NewAffiliateCouponRow::from(coupon);
        let (id, org) = (coupon.id.as_uuid(), coupon.org_id.as_uuid());
        self.guarded_write(|c| {
            diesel::update(affiliate_coupons::table.filter(affiliate_coupons::id.eq(id)).filter(affiliate_coupons::org_id.eq(org)))
                .set(&row)
                .execute(c)
        })?;
        Ok(())
    }

    fn delete_affiliate_coupon(&mut self, org: OrgId, id: AffiliateCouponId) -> Result<(), StoreError> {
        self.write(|c| {
            diesel::delete(
                affiliate_coupons::table.filter(affiliate_coupons::id.eq(id.as_uuid())).filter(affiliate_coupons::org_id.eq(org.as_uuid())),
            )
            .execute(c)
        })?;
        Ok(())
    }

    get_by_org_and_id!(
        affiliate_coupon,
        affiliate_coupon_for_update,
        for_update,
        affiliate_coupons,
        AffiliateCouponId,
        AffiliateCouponRow,
        AffiliateCoupon
    );

    fn affiliate_coupon_by_code(&mut self, org: OrgId, code: &CouponCode) -> Result<Option<AffiliateCoupon>, StoreError> {
        let row = self.read(|c| {
            affiliate_coupons::table
                .filter(affiliate_coupons::org_id.eq(org.as_uuid()))
                // Same expression as the unique index, so the lookup uses it.
                .filter(upper(affiliate_coupons::code).eq(upper(code.as_str())))
                .select(AffiliateCouponRow::as_select())
                .first(c)
                .optional()
        })?;
        row.map(AffiliateCouponRow::into_domain).transpose()
    }

    fn affiliate_coupon_by_stripe_id(
        &mut self,
        org: OrgId,
        stripe_id: &StripePromotionCodeId,
    ) -> Result<Option<AffiliateCoupon>, StoreError> {
        let stripe_id = stripe_id.as_str();
        let row = self.read(|c| {
            affiliate_coupons::table
                .filter(affiliate_coupons::org_id.eq(org.as_uuid()))
                .filter(affiliate_coupons::stripe_promotion_code_id.eq(stripe_id))
                .order(affiliate_coupons::id.desc())
                .select(AffiliateCouponRow::as_select())
                .first(c)
                .optional()
        })?;
        row.map(AffiliateCouponRow::into_domain).transpose()
    }

    fn affiliate_coupon_by_stripe_id_any_org(&mut self, stripe_id: &StripePromotionCodeId) -> Result<Option<AffiliateCoupon>, StoreError> {
        let stripe_id = stripe_id.as_str();
        let row = self.read(|c| {
            affiliate_coupons::table
                .filter(affiliate_coupons::stripe_promotion_code_id.eq(stripe_id))
                .order(affiliate_coupons::id.desc())
                .select(AffiliateCouponRow::as_select())
                .first(c)
                .optional()
        })?;
        row.map(AffiliateCouponRow::into_domain).transpose()
    }

    fn campaign_coupons_by_stripe_id(&mut self, stripe_id: &StripeCouponId) -> Result<Vec<CampaignCoupon>, StoreError> {
        let stripe_id = stripe_id.as_str();
        let rows = self.read(|c| {
            campaign_coupons::table
                .filter(campaign_coupons::stripe_coupon_id.eq(stripe_id))
                .order(campaign_coupons::id.desc())
                .select(CampaignCouponRow::as_select())
                .load(c)
        })?;
        decode(rows, CampaignCouponRow::into_domain)
    }

    fn add_redemption(&mut self, org: OrgId, id: AffiliateCouponId, delta: i64, at: OffsetDateTime) -> Result<(), StoreError> {
        // A targeted update computed by the database, so a concurrent change to the rest of
        // the row (or another redemption) is never overwritten.
        let target =
            affiliate_coupons::table.filter(affiliate_coupons::org_id.eq(org.as_uuid())).filter(affiliate_coupons::id.eq(id.as_uuid()));
        let count = greatest(affiliate_coupons::times_redeemed + delta, 0_i64);
        self.write(|c| {
            if delta > 0 {
                diesel::update(target)
                    .set((
                        affiliate_coupons::times_redeemed.eq(count),
                        affiliate_coupons::last_redeemed_at.eq(at),
                        affiliate_coupons::updated_at.eq(at),
                    ))
                    .execute(c)
            } else {
                diesel::update(target).set((affiliate_coupons::times_redeemed.eq(count), affiliate_coupons::updated_at.eq(at))).execute(c)
            }
        })?;
        Ok(())
    }

    fn list_affiliate_coupons(
        &mut self,
        org: OrgId,
        selector: &CouponSelector,
        page: &PageRequest,
    ) -> Result<Vec<AffiliateCoupon>, StoreError> {
        let org = org.as_uuid();
        let rows = self.read(|c| {
            let mut query = affiliate_coupons::table
                .filter(affiliate_coupons::org_id.eq(org))
                .filter(affiliate_coupons::stripe_promotion_code_id.is_not_null())
                .select(AffiliateCouponRow::as_select())
                .into_boxed::<Pg>();
            query = match selector {
                CouponSelector::Affiliate(id) => query.filter(affiliate_coupons::affiliate_id.eq(id.as_uuid())),
                CouponSelector::CampaignCoupon(id) => query.filter(affiliate_coupons::campaign_coupon_id.eq(id.as_uuid())),
                CouponSelector::AffiliateEmail(email) => query.filter(
                    affiliate_coupons::affiliate_id.eq_any(
                        affiliates::table
                            .filter(affiliates::org_id.eq(org))
                            .filter(affiliates::email.eq(email.as_str()))
                            .filter(affiliates::deleted_at.is_null())
                            .select(affiliates::id),
                    ),
                ),
            };
            keyset!(query, affiliate_coupons, page).load(c)
        })?;
        decode(rows, AffiliateCouponRow::into_domain)
    }

    fn campaign_coupon_has_codes(&mut self, org: OrgId, id: CampaignCouponId) -> Result<bool, StoreError> {
        self.read(|c| {
            diesel::select(exists(
                affiliate_coupons::table
                    .filter(affiliate_coupons::org_id.eq(org.as_uuid()))
                    .filter(affiliate_coupons::campaign_coupon_id.eq(id.as_uuid())),
            ))
            .get_result(c)
        })
    }

    fn org_has_stripe_objects(&mut self, org: OrgId) -> Result<bool, StoreError> {
        self.read(|c| {
            diesel::select(diesel::dsl::exists(
                campaign_coupons::table
                    .filter(campaign_coupons::org_id.eq(org.as_uuid()))
                    .filter(campaign_coupons::stripe_coupon_id.is_not_null()),
            ))
            .get_result(c)
        })
    }

    fn unprovisioned_affiliate_coupons(&mut self, before: OffsetDateTime, limit: i64) -> Result<Vec<AffiliateCoupon>, StoreError> {
        let rows = self.read(|c| {
            affiliate_coupons::table
                .filter(affiliate_coupons::stripe_promotion_code_id.is_null())
                .filter(affiliate_coupons::created_at.lt(before))
                .order((affiliate_coupons::created_at.asc(), affiliate_coupons::id.asc()))
                .limit(limit.max(0))
                .select(AffiliateCouponRow::as_select())
                .load(c)
        })?;
        decode(rows, AffiliateCouponRow::into_domain)
    }
}
