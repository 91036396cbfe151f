//! Affiliates, their links and who recruited whom in PostgreSQL: the rows of `affiliates`
//! and `affiliate_links`, and [`AffiliateRepo`] for [`PgTx`] (recruitments are plain pairs in
//! `affiliate_recruitments`). An outbound adapter of the hexagon, the `affiliates`
//! capability's side of the storage port.

use diesel::dsl::exists;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::upsert::excluded;
use rekomi_domain::affiliates::{
    Affiliate, AffiliateFilter, AffiliateLink, AffiliateRepo, AffiliateSource, AffiliateStatus, Email, LinkFormat,
};
use rekomi_domain::kernel::ids::{AffiliateId, OrgId};
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::ports::store::StoreError;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::columns::{api_enum, commission};
use crate::error::bad_row;
use crate::schema::{affiliate_links, affiliate_recruitments, affiliates};
use crate::tx::{decode, get_by_org_and_id, keyset, lower, PgTx};

// ---------------------------------------------------------------------------------------------
// affiliates
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = affiliates, check_for_backend(diesel::pg::Pg))]
struct AffiliateRow {
    id: Uuid,
    org_id: Uuid,
    program_id: Uuid,
    email: String,
    full_name: Option<String>,
    status: String,
    custom_commission_type: Option<String>,
    custom_commission_value: Option<i64>,
    tags: Vec<String>,
    notes: Option<String>,
    source: String,
    user_id: Option<String>,
    rejection_reason: Option<String>,
    applied_at: OffsetDateTime,
    approved_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl AffiliateRow {
    fn into_domain(self) -> Result<Affiliate, StoreError> {
        const T: &str = "affiliates";
        let custom_commission = match (self.custom_commission_type.as_deref(), self.custom_commission_value) {
            (None, None) => None,
            (Some(kind), Some(value)) => Some(commission(T, "custom_commission_value", kind, value)?),
            _ => return Err(bad_row(T, "custom_commission_type", "type and value must be set together")),
        };
        Ok(Affiliate {
            id: self.id.into(),
            org_id: self.org_id.into(),
            program_id: self.program_id.into(),
            email: Email::parse("email", &self.email).map_err(|e| bad_row(T, "email", e))?,
            full_name: self.full_name,
            status: api_enum(T, "status", &self.status, AffiliateStatus::parse)?,
            custom_commission,
            tags: self.tags,
            notes: self.notes,
            source: api_enum(T, "source", &self.source, AffiliateSource::parse)?,
            user_id: self.user_id,
            rejection_reason: self.rejection_reason,
            applied_at: self.applied_at,
            approved_at: self.approved_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// INSERT and full-row UPDATE. `deleted_at` is deliberately absent: only
/// `delete_affiliate` sets it, and an update never resurrects a deleted row.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = affiliates, treat_none_as_null = true)]
struct NewAffiliateRow<'a> {
    id: Uuid,
    org_id: Uuid,
    program_id: Uuid,
    email: &'a str,
    full_name: Option<&'a str>,
    status: &'static str,
    custom_commission_type: Option<&'static str>,
    custom_commission_value: Option<i64>,
    tags: &'a [String],
    notes: Option<&'a str>,
    source: &'static str,
    user_id: Option<&'a str>,
    rejection_reason: Option<&'a str>,
    applied_at: OffsetDateTime,
    approved_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl<'a> From<&'a Affiliate> for NewAffiliateRow<'a> {
    fn from(a: &'a Affiliate) -> Self {
        Self {
            id: a.id.as_uuid(),
            org_id: a.org_id.as_uuid(),
            program_id: a.program_id.as_uuid(),
            email: a.email.as_str(),
            full_name: a.full_name.as_deref(),
            status: a.status.as_str(),
            custom_commission_type: a.custom_commission.map(|c| c.kind.as_str()),
            custom_commission_value: a.custom_commission.map(|c| c.value.get()),
            tags: &a.tags,
            notes: a.notes.as_deref(),
            source: a.source.as_str(),
            user_id: a.user_id.as_deref(),
            rejection_reason: a.rejection_reason.as_deref(),
            applied_at: a.applied_at,
            approved_at: a.approved_at,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// affiliate_links
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = affiliate_links, check_for_backend(diesel::pg::Pg))]
struct AffiliateLinkRow {
    id: Uuid,
    org_id: Uuid,
    affiliate_id: Uuid,
    slug: String,
    custom_alias: Option<String>,
    is_default: bool,
    format: String,
    created_at: OffsetDateTime,
}

impl AffiliateLinkRow {
    fn into_domain(self) -> Result<AffiliateLink, StoreError> {
        Ok(AffiliateLink {
            id: self.id.into(),
            org_id: self.org_id.into(),
            affiliate_id: self.affiliate_id.into(),
            slug: self.slug,
            custom_alias: self.custom_alias,
            is_default: self.is_default,
            format: api_enum("affiliate_links", "format", &self.format, LinkFormat::parse)?,
            created_at: self.created_at,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = affiliate_links)]
struct NewAffiliateLinkRow<'a> {
    id: Uuid,
    org_id: Uuid,
    affiliate_id: Uuid,
    slug: &'a str,
    custom_alias: Option<&'a str>,
    is_default: bool,
    format: &'static str,
    created_at: OffsetDateTime,
}

impl<'a> From<&'a AffiliateLink> for NewAffiliateLinkRow<'a> {
    fn from(l: &'a AffiliateLink) -> Self {
        Self {
            id: l.id.as_uuid(),
            org_id: l.org_id.as_uuid(),
            affiliate_id: l.affiliate_id.as_uuid(),
            slug: &l.slug,
            custom_alias: l.custom_alias.as_deref(),
            is_default: l.is_default,
            format: l.format.as_str(),
            created_at: l.created_at,
        }
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
        self.guarded_write(|c| diesel::insert_into(affiliates::table).values(&row).execute(c))?;
        Ok(())
    }

    fn update_affiliate(&mut self, affiliate: &Affiliate) -> Result<(), StoreError> {
        let row = NewAffiliateRow::from(affiliate);
        let (id, org) = (affiliate.id.as_uuid(), affiliate.org_id.as_uuid());
        self.guarded_write(|c| {
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

    get_by_org_and_id!(
        affiliate,
        affiliate_for_update,
        for_update,
        affiliates,
        AffiliateId,
        AffiliateRow,
        Affiliate,
        affiliates::deleted_at.is_null()
    );

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
        self.guarded_write(|c| diesel::insert_into(affiliate_links::table).values(&row).execute(c))?;
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

    fn affiliate_by_link_slug(&mut self, org: OrgId, slug: &str) -> Result<Option<Affiliate>, StoreError> {
        let row = self.read(|c| {
            affiliate_links::table
                .inner_join(
                    affiliates::table
                        .on(affiliates::org_id.eq(affiliate_links::org_id).and(affiliates::id.eq(affiliate_links::affiliate_id))),
                )
                .filter(affiliate_links::org_id.eq(org.as_uuid()))
                // Same expression as the unique index, so the lookup uses it.
                .filter(lower(affiliate_links::slug).eq(lower(slug)))
                .filter(affiliates::deleted_at.is_null())
                .select(AffiliateRow::as_select())
                .first(c)
                .optional()
        })?;
        row.map(AffiliateRow::into_domain).transpose()
    }

    fn recruiter_of(&mut self, org: OrgId, affiliate: AffiliateId) -> Result<Option<AffiliateId>, StoreError> {
        let recruiter = self.read(|c| {
            affiliate_recruitments::table
                .filter(affiliate_recruitments::org_id.eq(org.as_uuid()))
                .filter(affiliate_recruitments::affiliate_id.eq(affiliate.as_uuid()))
                .select(affiliate_recruitments::recruiter_id)
                .first::<Uuid>(c)
                .optional()
        })?;
        Ok(recruiter.map(AffiliateId::from_uuid))
    }

    fn set_recruiter(&mut self, org: OrgId, affiliate: AffiliateId, recruiter: AffiliateId) -> Result<(), StoreError> {
        use affiliate_recruitments as t;
        self.write(|c| {
            diesel::insert_into(t::table)
                .values((t::org_id.eq(org.as_uuid()), t::affiliate_id.eq(affiliate.as_uuid()), t::recruiter_id.eq(recruiter.as_uuid())))
                .on_conflict(t::affiliate_id)
                .do_update()
                // `org_id` too, so the foreign keys are checked again (see
                // `put_sub_affiliate_config`).
                .set((t::org_id.eq(excluded(t::org_id)), t::recruiter_id.eq(excluded(t::recruiter_id))))
                .execute(c)
        })?;
        Ok(())
    }

    fn recruits_of(&mut self, org: OrgId, recruiter: AffiliateId) -> Result<Vec<Affiliate>, StoreError> {
        let rows =
            self.read(|c| {
                affiliate_recruitments::table
                    .inner_join(affiliates::table.on(
                        affiliates::org_id.eq(affiliate_recruitments::org_id).and(affiliates::id.eq(affiliate_recruitments::affiliate_id)),
                    ))
                    .filter(affiliate_recruitments::org_id.eq(org.as_uuid()))
                    .filter(affiliate_recruitments::recruiter_id.eq(recruiter.as_uuid()))
                    .filter(affiliates::deleted_at.is_null())
                    // Oldest first (ids are time-ordered).
                    .order(affiliates::id.asc())
                    .select(AffiliateRow::as_select())
                    .load(c)
            })?;
        decode(rows, AffiliateRow::into_domain)
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

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn search_patterns_take_like_wildcards_literally() {
        assert_eq!(contains_pattern("jane"), "%jane%");
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
