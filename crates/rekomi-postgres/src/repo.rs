//! The repositories of one transaction: [`PgTx`] wraps the connection that
//! [`crate::PgStore`] checked out and opened a transaction on, and implements every
//! repository trait of the storage port (and so the port's `Tx`) with diesel queries.
//!
//! Every query names the organization it is scoped to; lists are keyset-paginated on the
//! time-ordered id (`id < $after ORDER BY id DESC LIMIT $fetch_limit`), never OFFSET.

use diesel::dsl::{count_star, exists};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel::sql_types::Text;
use rekomi_domain::affiliate::{Affiliate, AffiliateLink, Email};
use rekomi_domain::audit::AuditEntry;
use rekomi_domain::coupon::{AffiliateCoupon, CampaignCoupon, CouponCode};
use rekomi_domain::ids::{AffiliateCouponId, AffiliateId, CampaignCouponId, OrgId, ProgramId};
use rekomi_domain::org::{ApiKey, OrgUsage, Organization};
use rekomi_domain::page::PageRequest;
use rekomi_domain::ports::store::{AffiliateFilter, AffiliateRepo, AuditRepo, CouponRepo, CouponSelector, OrgRepo, ProgramRepo};
use rekomi_domain::ports::StoreError;
use rekomi_domain::program::Program;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{from_diesel, is_server_error};
use crate::models::{
    AffiliateCouponRow, AffiliateLinkRow, AffiliateRow, ApiKeyRow, AuditRow, CampaignCouponRow, NewAffiliateCouponRow, NewAffiliateLinkRow,
    NewAffiliateRow, NewApiKeyRow, NewAuditRow, NewCampaignCouponRow, NewOrganizationRow, NewProgramRow, OrganizationRow, ProgramRow,
};
use crate::schema::{affiliate_coupons, affiliate_links, affiliates, api_keys, audit_log, campaign_coupons, organizations, programs};

diesel::define_sql_function!(
    /// SQL `lower(text)`, to hit the `lower(slug)` unique index.
    fn lower(x: Text) -> Text
);
diesel::define_sql_function!(
    /// SQL `upper(text)`, to hit the `upper(code)` unique index.
    fn upper(x: Text) -> Text
);

/// One connection inside one open transaction.
pub(crate) struct PgTx<'c> {
    conn: &'c mut PgConnection,
    /// The first statement PostgreSQL refused outside a savepoint. After it the server has
    /// aborted the transaction and would silently turn a `COMMIT` into a rollback, so
    /// [`crate::PgStore`] must not report a commit.
    aborted_by: Option<String>,
}

impl<'c> PgTx<'c> {
    pub(crate) fn new(conn: &'c mut PgConnection) -> Self {
        Self { conn, aborted_by: None }
    }

    /// Why the transaction can no longer commit, if it cannot.
    pub(crate) fn aborted_by(&self) -> Option<&str> {
        self.aborted_by.as_deref()
    }

    /// Runs a read. A server-side failure aborts the transaction; it is remembered so a work
    /// that swallows the error cannot be reported as committed.
    fn read<T>(&mut self, query: impl FnOnce(&mut PgConnection) -> QueryResult<T>) -> Result<T, StoreError> {
        query(self.conn).map_err(|e| {
            if is_server_error(&e) && self.aborted_by.is_none() {
                self.aborted_by = Some(e.to_string());
            }
            from_diesel(e)
        })
    }

    /// Runs a write inside a savepoint. PostgreSQL aborts the whole transaction on any
    /// error; the savepoint confines a refused write to itself, so a use case may catch a
    /// `Conflict` (a taken code, say) and carry on in the same transaction, exactly as it can
    /// against the in-memory store.
    fn write<T>(&mut self, statement: impl FnOnce(&mut PgConnection) -> QueryResult<T>) -> Result<T, StoreError> {
        self.conn.transaction(statement).map_err(from_diesel)
    }
}

/// Decodes rows through the domain's parsers.
fn decode<R, T>(rows: Vec<R>, into_domain: fn(R) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
    rows.into_iter().map(into_domain).collect()
}

/// Keyset pagination on `id`: rows strictly older than the cursor, newest first.
macro_rules! keyset {
    ($query:expr, $table:ident, $page:expr) => {{
        let mut query = $query;
        if let Some(after) = $page.after() {
            query = query.filter($table::id.lt(after));
        }
        query.order($table::id.desc()).limit($page.fetch_limit())
    }};
}

impl OrgRepo for PgTx<'_> {
    fn insert_org(&mut self, org: &Organization) -> Result<(), StoreError> {
        let row = NewOrganizationRow::from(org);
        self.write(|c| diesel::insert_into(organizations::table).values(&row).execute(c))?;
        Ok(())
    }

    fn org(&mut self, id: OrgId) -> Result<Option<Organization>, StoreError> {
        let row = self.read(|c| organizations::table.find(id.as_uuid()).select(OrganizationRow::as_select()).first(c).optional())?;
        row.map(OrganizationRow::into_domain).transpose()
    }

    fn set_stripe_account(&mut self, id: OrgId, account: Option<&str>) -> Result<bool, StoreError> {
        let updated = self.write(|c| {
            diesel::update(organizations::table.find(id.as_uuid())).set(organizations::stripe_account_id.eq(account)).execute(c)
        })?;
        Ok(updated == 1)
    }

    fn insert_api_key(&mut self, key: &ApiKey) -> Result<(), StoreError> {
        let row = NewApiKeyRow::from(key);
        self.write(|c| diesel::insert_into(api_keys::table).values(&row).execute(c))?;
        Ok(())
    }

    fn api_key_by_hash(&mut self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = self.read(|c| {
            api_keys::table
                .filter(api_keys::hash.eq(hash))
                .filter(api_keys::revoked_at.is_null())
                .select(ApiKeyRow::as_select())
                .first(c)
                .optional()
        })?;
        row.map(ApiKeyRow::into_domain).transpose()
    }

    fn org_usage(&mut self, org: OrgId) -> Result<OrgUsage, StoreError> {
        let org = org.as_uuid();
        let affiliates = self.read(|c| {
            affiliates::table
                .filter(affiliates::org_id.eq(org))
                .filter(affiliates::deleted_at.is_null())
                .select(count_star())
                .get_result::<i64>(c)
        })?;
        let campaigns = self.read(|c| {
            programs::table
                .filter(programs::org_id.eq(org))
                .filter(programs::archived_at.is_null())
                .select(count_star())
                .get_result::<i64>(c)
        })?;
        Ok(OrgUsage { affiliates, campaigns })
    }
}

impl ProgramRepo for PgTx<'_> {
    fn insert_program(&mut self, program: &Program) -> Result<(), StoreError> {
        let row = NewProgramRow::from(program);
        self.write(|c| diesel::insert_into(programs::table).values(&row).execute(c))?;
        Ok(())
    }

    fn update_program(&mut self, program: &Program) -> Result<(), StoreError> {
        let row = NewProgramRow::from(program);
        let (id, org) = (program.id.as_uuid(), program.org_id.as_uuid());
        self.write(|c| diesel::update(programs::table.filter(programs::id.eq(id)).filter(programs::org_id.eq(org))).set(&row).execute(c))?;
        Ok(())
    }

    fn program(&mut self, org: OrgId, id: ProgramId) -> Result<Option<Program>, StoreError> {
        let row = self.read(|c| {
            programs::table
                .filter(programs::org_id.eq(org.as_uuid()))
                .filter(programs::id.eq(id.as_uuid()))
                .select(ProgramRow::as_select())
                .first(c)
                .optional()
        })?;
        row.map(ProgramRow::into_domain).transpose()
    }

    fn program_for_update(&mut self, org: OrgId, id: ProgramId) -> Result<Option<Program>, StoreError> {
        let row = self.read(|c| {
            programs::table
                .filter(programs::org_id.eq(org.as_uuid()))
                .filter(programs::id.eq(id.as_uuid()))
                .select(ProgramRow::as_select())
                .for_update()
                .first(c)
                .optional()
        })?;
        row.map(ProgramRow::into_domain).transpose()
    }

    fn list_programs(&mut self, org: OrgId, page: &PageRequest) -> Result<Vec<Program>, StoreError> {
        let rows = self.read(|c| {
            let base = programs::table
                .filter(programs::org_id.eq(org.as_uuid()))
                .filter(programs::archived_at.is_null())
                .select(ProgramRow::as_select())
                .into_boxed::<Pg>();
            keyset!(base, programs, page).load(c)
        })?;
        decode(rows, ProgramRow::into_domain)
    }
}

/// `ILIKE` pattern matching `q` anywhere, with the pattern characters in `q` taken literally
/// (backslash is PostgreSQL's default `LIKE` escape).
fn contains_pattern(q: &str) -> String {
    let mut pattern = String::with_capacity(q.len() + 2);
    pattern.push('%');
    for ch in q.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern.push('%');
    pattern
}

impl AffiliateRepo for PgTx<'_> {
    fn insert_affiliate(&mut self, affiliate: &Affiliate) -> Result<(), StoreError> {
        let row = NewAffiliateRow::from(affiliate);
        self.write(|c| diesel::insert_into(affiliates::table).values(&row).execute(c))?;
        Ok(())
    }

    fn update_affiliate(&mut self, affiliate: &Affiliate) -> Result<(), StoreError> {
        let row = NewAffiliateRow::from(affiliate);
        let (id, org) = (affiliate.id.as_uuid(), affiliate.org_id.as_uuid());
        self.write(|c| {
            diesel::update(
                affiliates::table.filter(affiliates::id.eq(id)).filter(affiliates::org_id.eq(org)).filter(affiliates::deleted_at.is_null()),
            )
            .set(&row)
            .execute(c)
        })?;
        Ok(())
    }

    fn delete_affiliate(&mut self, org: OrgId, id: AffiliateId, now: OffsetDateTime) -> Result<bool, StoreError> {
        // Soft delete: links, codes and (later) conversions keep referencing the row, and the
        // partial unique index on (program_id, email) lets the person be added again.
        let changed = self.write(|c| {
            diesel::update(
                affiliates::table
                    .filter(affiliates::id.eq(id.as_uuid()))
                    .filter(affiliates::org_id.eq(org.as_uuid()))
                    .filter(affiliates::deleted_at.is_null()),
            )
            .set((affiliates::deleted_at.eq(now), affiliates::updated_at.eq(now)))
            .execute(c)
        })?;
        Ok(changed > 0)
    }

    fn affiliate(&mut self, org: OrgId, id: AffiliateId) -> Result<Option<Affiliate>, StoreError> {
        let row = self.read(|c| {
            affiliates::table
                .filter(affiliates::org_id.eq(org.as_uuid()))
                .filter(affiliates::id.eq(id.as_uuid()))
                .filter(affiliates::deleted_at.is_null())
                .select(AffiliateRow::as_select())
                .first(c)
                .optional()
        })?;
        row.map(AffiliateRow::into_domain).transpose()
    }

    fn affiliate_for_update(&mut self, org: OrgId, id: AffiliateId) -> Result<Option<Affiliate>, StoreError> {
        let row = self.read(|c| {
            affiliates::table
                .filter(affiliates::org_id.eq(org.as_uuid()))
                .filter(affiliates::id.eq(id.as_uuid()))
                .filter(affiliates::deleted_at.is_null())
                .select(AffiliateRow::as_select())
                .for_update()
                .first(c)
                .optional()
        })?;
        row.map(AffiliateRow::into_domain).transpose()
    }

    fn list_affiliates(&mut self, org: OrgId, filter: &AffiliateFilter, page: &PageRequest) -> Result<Vec<Affiliate>, StoreError> {
        let pattern = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(contains_pattern);
        let rows = self.read(|c| {
            let mut query = affiliates::table
                .filter(affiliates::org_id.eq(org.as_uuid()))
                .filter(affiliates::deleted_at.is_null())
                .select(AffiliateRow::as_select())
                .into_boxed::<Pg>();
            if let Some(program) = filter.program_id {
                query = query.filter(affiliates::program_id.eq(program.as_uuid()));
            }
            if let Some(status) = filter.status {
                query = query.filter(affiliates::status.eq(status.as_str()));
            }
            if let Some(pattern) = &pattern {
                // A NULL full name makes its ILIKE NULL, and `false OR NULL` filters the
                // row out, which is what "no match" should do.
                query = query.filter(affiliates::email.ilike(pattern.as_str()).or(affiliates::full_name.ilike(pattern.as_str())));
            }
            keyset!(query, affiliates, page).load(c)
        })?;
        decode(rows, AffiliateRow::into_domain)
    }

    fn affiliates_of_user(&mut self, user_id: &str, email: &Email) -> Result<Vec<Affiliate>, StoreError> {
        let rows = self.read(|c| {
            affiliates::table
                .filter(affiliates::deleted_at.is_null())
                .filter(affiliates::user_id.eq(user_id).or(affiliates::user_id.is_null().and(affiliates::email.eq(email.as_str()))))
                .order(affiliates::id.desc())
                .select(AffiliateRow::as_select())
                .load(c)
        })?;
        decode(rows, AffiliateRow::into_domain)
    }

    fn insert_link(&mut self, link: &AffiliateLink) -> Result<(), StoreError> {
        let row = NewAffiliateLinkRow::from(link);
        self.write(|c| diesel::insert_into(affiliate_links::table).values(&row).execute(c))?;
        Ok(())
    }

    fn links_of(&mut self, org: OrgId, affiliates: &[AffiliateId]) -> Result<Vec<AffiliateLink>, StoreError> {
        if affiliates.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = affiliates.iter().map(AffiliateId::as_uuid).collect();
        let rows = self.read(|c| {
            affiliate_links::table
                .filter(affiliate_links::org_id.eq(org.as_uuid()))
                .filter(affiliate_links::affiliate_id.eq_any(&ids))
                // Default first, then in creation order (ids are time-ordered).
                .order((affiliate_links::is_default.desc(), affiliate_links::id.asc()))
                .select(AffiliateLinkRow::as_select())
                .load(c)
        })?;
        decode(rows, AffiliateLinkRow::into_domain)
    }

    fn link_slug_taken(&mut self, org: OrgId, slug: &str) -> Result<bool, StoreError> {
        self.read(|c| {
            diesel::select(exists(
                affiliate_links::table
                    .filter(affiliate_links::org_id.eq(org.as_uuid()))
                    .filter(lower(affiliate_links::slug).eq(lower(slug))),
            ))
            .get_result(c)
        })
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
        self.write(|c| {
            diesel::delete(
                campaign_coupons::table.filter(campaign_coupons::id.eq(id.as_uuid())).filter(campaign_coupons::org_id.eq(org.as_uuid())),
            )
            .execute(c)
        })?;
        Ok(())
    }

    fn campaign_coupon(&mut self, org: OrgId, id: CampaignCouponId) -> Result<Option<CampaignCoupon>, StoreError> {
        let row = self.read(|c| {
            campaign_coupons::table
                .filter(campaign_coupons::org_id.eq(org.as_uuid()))
                .filter(campaign_coupons::id.eq(id.as_uuid()))
                .select(CampaignCouponRow::as_select())
                .first(c)
                .optional()
        })?;
        row.map(CampaignCouponRow::into_domain).transpose()
    }

    fn campaign_coupon_for_update(&mut self, org: OrgId, id: CampaignCouponId) -> Result<Option<CampaignCoupon>, StoreError> {
        let row = self.read(|c| {
            campaign_coupons::table
                .filter(campaign_coupons::org_id.eq(org.as_uuid()))
                .filter(campaign_coupons::id.eq(id.as_uuid()))
                .select(CampaignCouponRow::as_select())
                .for_update()
                .first(c)
                .optional()
        })?;
        row.map(CampaignCouponRow::into_domain).transpose()
    }

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
        self.write(|c| diesel::insert_into(affiliate_coupons::table).values(&row).execute(c))?;
        Ok(())
    }

    fn update_affiliate_coupon(&mut self, coupon: &AffiliateCoupon) -> Result<(), StoreError> {
        let row = NewAffiliateCouponRow::from(coupon);
        let (id, org) = (coupon.id.as_uuid(), coupon.org_id.as_uuid());
        self.write(|c| {
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

    fn affiliate_coupon(&mut self, org: OrgId, id: AffiliateCouponId) -> Result<Option<AffiliateCoupon>, StoreError> {
        let row = self.read(|c| {
            affiliate_coupons::table
                .filter(affiliate_coupons::org_id.eq(org.as_uuid()))
                .filter(affiliate_coupons::id.eq(id.as_uuid()))
                .select(AffiliateCouponRow::as_select())
                .first(c)
                .optional()
        })?;
        row.map(AffiliateCouponRow::into_domain).transpose()
    }

    fn affiliate_coupon_for_update(&mut self, org: OrgId, id: AffiliateCouponId) -> Result<Option<AffiliateCoupon>, StoreError> {
        let row = self.read(|c| {
            affiliate_coupons::table
                .filter(affiliate_coupons::org_id.eq(org.as_uuid()))
                .filter(affiliate_coupons::id.eq(id.as_uuid()))
                .select(AffiliateCouponRow::as_select())
                .for_update()
                .first(c)
                .optional()
        })?;
        row.map(AffiliateCouponRow::into_domain).transpose()
    }

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

    fn affiliate_coupon_by_stripe_id(&mut self, org: OrgId, stripe_id: &str) -> Result<Option<AffiliateCoupon>, StoreError> {
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

impl AuditRepo for PgTx<'_> {
    fn append_audit(&mut self, entry: &AuditEntry) -> Result<(), StoreError> {
        let row = NewAuditRow::from(entry);
        self.write(|c| diesel::insert_into(audit_log::table).values(&row).execute(c))?;
        Ok(())
    }

    fn audit_entries(&mut self, org: OrgId, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = self.read(|c| {
            audit_log::table
                .filter(audit_log::org_id.eq(org.as_uuid()))
                .order(audit_log::id.desc())
                .limit(limit.max(0))
                .select(AuditRow::as_select())
                .load(c)
        })?;
        decode(rows, AuditRow::into_domain)
    }
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn search_patterns_take_like_wildcards_literally() {
        assert_eq!(contains_pattern("jane"), "%jane%");
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
