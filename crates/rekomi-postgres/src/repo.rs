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
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::upsert::excluded;
use rekomi_domain::affiliate::{Affiliate, AffiliateLink, Email};
use rekomi_domain::audit::AuditEntry;
use rekomi_domain::conversion::{Conversion, ConversionStatus, ConversionType, LedgerEvent, LedgerKind, SubAffiliateConfig};
use rekomi_domain::coupon::{AffiliateCoupon, CampaignCoupon, CouponCode};
use rekomi_domain::ids::{AffiliateCouponId, AffiliateId, CampaignCouponId, ConversionId, DeliveryId, OrgId, ProgramId, WebhookEndpointId};
use rekomi_domain::inbox::{InboxEvent, InboxStatus};
use rekomi_domain::org::{ApiKey, OrgUsage, Organization};
use rekomi_domain::outbound::{Delivery, DeliveryStatus, EndpointStatus, OutboxEvent, WebhookEndpoint};
use rekomi_domain::page::PageRequest;
use rekomi_domain::ports::store::Savepoints;
use rekomi_domain::ports::store::{
    AffiliateFilter, AffiliateRepo, AuditRepo, ConversionFilter, ConversionRepo, CouponRepo, CouponSelector, InboxRepo, OrgRepo,
    OutboundRepo, ProgramRepo,
};
use rekomi_domain::ports::{StoreError, Tx};
use rekomi_domain::program::{Hundredths, Program};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{from_diesel, is_server_error};
use crate::models::{
    AffiliateCouponRow, AffiliateLinkRow, AffiliateRow, ApiKeyRow, AuditRow, CampaignCouponRow, ConversionRow, DeliveryRow,
    DeliveryStateChange, InboxEventRow, InboxStateChange, LedgerEventRow, NewAffiliateCouponRow, NewAffiliateLinkRow, NewAffiliateRow,
    NewApiKeyRow, NewAuditRow, NewCampaignCouponRow, NewConversionRow, NewDeliveryRow, NewInboxEventRow, NewLedgerEventRow,
    NewOrganizationRow, NewOutboxEventRow, NewProgramRow, NewWebhookEndpointRow, OrganizationRow, ProgramRow, WebhookEndpointRow,
};
use crate::schema::{
    affiliate_coupons, affiliate_links, affiliate_recruitments, affiliates, api_keys, audit_log, campaign_coupons, conversions,
    inbox_events, ledger_events, organizations, outbox_events, processed_sources, program_sub_affiliate_configs, programs,
    webhook_deliveries, webhook_endpoints,
};

diesel::define_sql_function!(
    /// SQL `lower(text)`, to hit the `lower(slug)` unique index.
    fn lower(x: Text) -> Text
);
diesel::define_sql_function!(
    /// SQL `upper(text)`, to hit the `upper(code)` unique index.
    fn upper(x: Text) -> Text
);
diesel::define_sql_function!(
    /// SQL `lower(text)` of a nullable column, to hit the `lower(customer_email)` index.
    #[sql_name = "lower"]
    fn lower_nullable(x: Nullable<Text>) -> Nullable<Text>
);
diesel::define_sql_function!(
    /// SQL `greatest(bigint, bigint)`.
    fn greatest(a: BigInt, b: BigInt) -> BigInt
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

    /// Runs a write that no constraint a use case handles can refuse: a failure is as fatal
    /// as a failed read, and the transaction will not commit.
    fn write<T>(&mut self, statement: impl FnOnce(&mut PgConnection) -> QueryResult<T>) -> Result<T, StoreError> {
        self.read(statement)
    }

    /// Runs a write a named constraint may refuse inside a savepoint. PostgreSQL aborts the
    /// whole transaction on any error; the savepoint confines a refused write to itself, so a
    /// use case may catch the `Conflict` (a taken code, say) and carry on in the same
    /// transaction, exactly as it can against the in-memory store. Savepoints cost two round
    /// trips, so only these writes take one.
    fn guarded_write<T>(&mut self, statement: impl FnOnce(&mut PgConnection) -> QueryResult<T>) -> Result<T, StoreError> {
        self.conn.transaction(statement).map_err(from_diesel)
    }
}

impl Savepoints for PgTx<'_> {
    fn savepoint(&mut self, work: &mut dyn FnMut(&mut dyn Tx) -> bool) -> Result<bool, StoreError> {
        if let Some(cause) = &self.aborted_by {
            return Err(StoreError::Unexpected(anyhow::anyhow!("a savepoint was asked for after a statement failed: {cause}")));
        }
        let mut kept = false;
        let result = self.conn.transaction::<(), UndoSavepoint, _>(|conn| {
            let mut inner = PgTx::new(conn);
            // A statement that failed inside (outside any savepoint of its own) aborted only
            // this savepoint: rolling back to it makes the outer transaction usable again.
            kept = work(&mut inner as &mut dyn Tx) && inner.aborted_by.is_none();
            if kept {
                Ok(())
            } else {
                Err(UndoSavepoint::Undo)
            }
        });
        match result {
            Ok(()) | Err(UndoSavepoint::Undo) => Ok(kept),
            Err(UndoSavepoint::Store(e)) => {
                self.aborted_by = Some(e.to_string());
                Err(e)
            }
        }
    }
}

/// Why a savepoint was not released.
enum UndoSavepoint {
    /// The work asked for it to be undone.
    Undo,
    /// Taking, releasing or rolling back the savepoint failed.
    Store(StoreError),
}

impl From<diesel::result::Error> for UndoSavepoint {
    fn from(e: diesel::result::Error) -> Self {
        Self::Store(from_diesel(e))
    }
}

/// Rows per multi-row insert: far below PostgreSQL's 65,535 bind parameters for the widest
/// row, and large enough that a batch of events takes one statement per table.
const INSERT_CHUNK: usize = 500;

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

/// One row of a tenant table by organization and id, and the same read holding the row
/// locked (`$lock`: `for_update` or `for_no_key_update`) for read-modify-write use cases. Both
/// come from one definition so the locked read can never drift from the plain one.
macro_rules! get_by_org_and_id {
    ($plain:ident, $locked:ident, $lock:ident, $table:ident, $id:ty, $row:ty, $out:ty $(, $extra:expr)?) => {
        fn $plain(&mut self, org: OrgId, id: $id) -> Result<Option<$out>, StoreError> {
            let row = self.read(|c| {
                $table::table
                    .filter($table::org_id.eq(org.as_uuid()))
                    .filter($table::id.eq(id.as_uuid()))
                    $(.filter($extra))?
                    .select(<$row>::as_select())
                    .first(c)
                    .optional()
            })?;
            row.map(<$row>::into_domain).transpose()
        }

        fn $locked(&mut self, org: OrgId, id: $id) -> Result<Option<$out>, StoreError> {
            let row = self.read(|c| {
                $table::table
                    .filter($table::org_id.eq(org.as_uuid()))
                    .filter($table::id.eq(id.as_uuid()))
                    $(.filter($extra))?
                    .select(<$row>::as_select())
                    .$lock()
                    .first(c)
                    .optional()
            })?;
            row.map(<$row>::into_domain).transpose()
        }
    };
}

impl OrgRepo for PgTx<'_> {
    fn insert_org(&mut self, org: &Organization) -> Result<(), StoreError> {
        let row = NewOrganizationRow::from(org);
        self.guarded_write(|c| diesel::insert_into(organizations::table).values(&row).execute(c))?;
        Ok(())
    }

    fn org(&mut self, id: OrgId) -> Result<Option<Organization>, StoreError> {
        let row = self.read(|c| organizations::table.find(id.as_uuid()).select(OrganizationRow::as_select()).first(c).optional())?;
        row.map(OrganizationRow::into_domain).transpose()
    }

    fn set_stripe_account(&mut self, id: OrgId, account: Option<&str>) -> Result<bool, StoreError> {
        let updated = self.guarded_write(|c| {
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

    fn org_by_stripe_account(&mut self, account: &str) -> Result<Option<Organization>, StoreError> {
        let row = self.read(|c| {
            organizations::table
                .filter(organizations::stripe_account_id.eq(account))
                // Nothing makes an account unique to one organization; should two ever share
                // one, the answer is the oldest link rather than an arbitrary row.
                .order((organizations::created_at.asc(), organizations::id.asc()))
                .select(OrganizationRow::as_select())
                .first(c)
                .optional()
        })?;
        row.map(OrganizationRow::into_domain).transpose()
    }

    fn some_orgs(&mut self, limit: i64) -> Result<Vec<Organization>, StoreError> {
        let rows = self.read(|c| {
            organizations::table
                .order((organizations::created_at.asc(), organizations::id.asc()))
                .limit(limit.max(0))
                .select(OrganizationRow::as_select())
                .load(c)
        })?;
        decode(rows, OrganizationRow::into_domain)
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
        self.guarded_write(|c| diesel::insert_into(programs::table).values(&row).execute(c))?;
        Ok(())
    }

    fn update_program(&mut self, program: &Program) -> Result<(), StoreError> {
        let row = NewProgramRow::from(program);
        let (id, org) = (program.id.as_uuid(), program.org_id.as_uuid());
        self.guarded_write(|c| {
            diesel::update(programs::table.filter(programs::id.eq(id)).filter(programs::org_id.eq(org))).set(&row).execute(c)
        })?;
        Ok(())
    }

    get_by_org_and_id!(program, program_for_update, for_update, programs, ProgramId, ProgramRow, Program);

    fn sub_affiliate_config(&mut self, org: OrgId, program: ProgramId) -> Result<SubAffiliateConfig, StoreError> {
        let row = self.read(|c| {
            program_sub_affiliate_configs::table
                .filter(program_sub_affiliate_configs::org_id.eq(org.as_uuid()))
                .filter(program_sub_affiliate_configs::program_id.eq(program.as_uuid()))
                .select((program_sub_affiliate_configs::enabled, program_sub_affiliate_configs::percent_hundredths))
                .first::<(bool, i64)>(c)
                .optional()
        })?;
        Ok(row.map(|(enabled, percent)| SubAffiliateConfig { enabled, percent: Hundredths::new(percent) }).unwrap_or_default())
    }

    fn put_sub_affiliate_config(&mut self, org: OrgId, program: ProgramId, config: &SubAffiliateConfig) -> Result<(), StoreError> {
        use program_sub_affiliate_configs as t;
        self.write(|c| {
            diesel::insert_into(t::table)
                .values((
                    t::org_id.eq(org.as_uuid()),
                    t::program_id.eq(program.as_uuid()),
                    t::enabled.eq(config.enabled),
                    t::percent_hundredths.eq(config.percent.get()),
                ))
                .on_conflict(t::program_id)
                .do_update()
                // `org_id` is set too: for another organization's program it changes, so the
                // composite foreign key is checked again and refuses, instead of the upsert
                // quietly rewriting that organization's setting.
                .set((
                    t::org_id.eq(excluded(t::org_id)),
                    t::enabled.eq(excluded(t::enabled)),
                    t::percent_hundredths.eq(excluded(t::percent_hundredths)),
                ))
                .execute(c)
        })?;
        Ok(())
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

    fn affiliate_coupon_by_stripe_id_any_org(&mut self, stripe_id: &str) -> Result<Option<AffiliateCoupon>, StoreError> {
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

    fn campaign_coupons_by_stripe_id(&mut self, stripe_id: &str) -> Result<Vec<CampaignCoupon>, StoreError> {
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

/// The conversion types of a sale (a lead, bonus or click reward is not one).
fn sale_types() -> [&'static str; 2] {
    [ConversionType::OneTime.as_str(), ConversionType::Recurring.as_str()]
}

/// The ledger entries that record a paid invoice or checkout session.
fn sale_entries() -> [&'static str; 2] {
    [LedgerKind::Initial.as_str(), LedgerKind::Renewal.as_str()]
}

impl ConversionRepo for PgTx<'_> {
    fn claim_source(&mut self, org: OrgId, source: &str, at: OffsetDateTime) -> Result<bool, StoreError> {
        // ON CONFLICT DO NOTHING: a source claimed before is an answer (false), not an error,
        // so the transaction carries on.
        let inserted = self.write(|c| {
            diesel::insert_into(processed_sources::table)
                .values((
                    processed_sources::org_id.eq(org.as_uuid()),
                    processed_sources::source.eq(source),
                    processed_sources::claimed_at.eq(at),
                ))
                .on_conflict((processed_sources::org_id, processed_sources::source))
                .do_nothing()
                .execute(c)
        })?;
        Ok(inserted == 1)
    }

    fn source_seen(&mut self, org: OrgId, source: &str) -> Result<bool, StoreError> {
        self.read(|c| {
            diesel::select(diesel::dsl::exists(
                processed_sources::table.filter(processed_sources::org_id.eq(org.as_uuid())).filter(processed_sources::source.eq(source)),
            ))
            .get_result(c)
        })
    }

    fn insert_conversion(&mut self, conversion: &Conversion) -> Result<(), StoreError> {
        let row = NewConversionRow::from(conversion);
        self.write(|c| diesel::insert_into(conversions::table).values(&row).execute(c))?;
        Ok(())
    }

    fn update_conversion(&mut self, conversion: &Conversion) -> Result<(), StoreError> {
        let row = NewConversionRow::from(conversion);
        let (id, org) = (conversion.id.as_uuid(), conversion.org_id.as_uuid());
        self.write(|c| {
            diesel::update(conversions::table.filter(conversions::id.eq(id)).filter(conversions::org_id.eq(org))).set(&row).execute(c)
        })?;
        Ok(())
    }

    get_by_org_and_id!(conversion, conversion_for_update, for_update, conversions, ConversionId, ConversionRow, Conversion);

    fn sale_conversion_of_subscription(&mut self, org: OrgId, subscription_id: &str) -> Result<Option<Conversion>, StoreError> {
        let row = self.read(|c| {
            conversions::table
                .filter(conversions::org_id.eq(org.as_uuid()))
                .filter(conversions::stripe_subscription_id.eq(subscription_id))
                .filter(conversions::kind.eq_any(sale_types()))
                .filter(conversions::parent_conversion_id.is_null())
                .order((conversions::created_at.desc(), conversions::id.desc()))
                .select(ConversionRow::as_select())
                .for_update()
                .first(c)
                .optional()
        })?;
        row.map(ConversionRow::into_domain).transpose()
    }

    fn conversion_of_invoice(&mut self, org: OrgId, invoice_id: &str) -> Result<Option<Conversion>, StoreError> {
        let org = org.as_uuid();
        let row = self.read(|c| {
            let by_ledger = ledger_events::table
                .filter(ledger_events::org_id.eq(org))
                .filter(ledger_events::stripe_invoice_id.eq(invoice_id))
                .filter(ledger_events::kind.eq_any(sale_entries()))
                .select(ledger_events::conversion_id);
            conversions::table
                .filter(conversions::org_id.eq(org))
                .filter(conversions::parent_conversion_id.is_null())
                .filter(conversions::id.eq_any(by_ledger).or(conversions::external_event_id.eq(invoice_id)))
                .order((conversions::created_at.desc(), conversions::id.desc()))
                .select(ConversionRow::as_select())
                .for_update()
                .first(c)
                .optional()
        })?;
        row.map(ConversionRow::into_domain).transpose()
    }

    fn overrides_of(&mut self, org: OrgId, parent: ConversionId) -> Result<Vec<Conversion>, StoreError> {
        let rows = self.read(|c| {
            conversions::table
                .filter(conversions::org_id.eq(org.as_uuid()))
                .filter(conversions::parent_conversion_id.eq(parent.as_uuid()))
                .order(conversions::id.asc())
                .select(ConversionRow::as_select())
                .load(c)
        })?;
        decode(rows, ConversionRow::into_domain)
    }

    fn affiliate_of_customer(
        &mut self,
        org: OrgId,
        customer_id: Option<&str>,
        email: Option<&str>,
    ) -> Result<Option<AffiliateId>, StoreError> {
        if customer_id.is_none() && email.is_none() {
            return Ok(None);
        }
        let found = self.read(|c| {
            let mut query = conversions::table
                .filter(conversions::org_id.eq(org.as_uuid()))
                .filter(conversions::parent_conversion_id.is_null())
                .filter(conversions::status.ne(ConversionStatus::Denied.as_str()))
                .order((conversions::created_at.desc(), conversions::id.desc()))
                .select(conversions::affiliate_id)
                .into_boxed::<Pg>();
            // The same expressions as the partial indexes, so each branch can use one.
            let by_email = |e: &str| lower_nullable(conversions::customer_email).eq(lower(e.to_owned()).nullable());
            query = match (customer_id, email) {
                (Some(customer), Some(e)) => query.filter(conversions::stripe_customer_id.eq(customer).or(by_email(e))),
                (Some(customer), None) => query.filter(conversions::stripe_customer_id.eq(customer)),
                (None, Some(e)) => query.filter(by_email(e)),
                (None, None) => return Ok(None),
            };
            query.first::<Uuid>(c).optional()
        })?;
        Ok(found.map(AffiliateId::from_uuid))
    }

    fn orgs_of_stripe_customer(&mut self, customer_id: &str) -> Result<Vec<OrgId>, StoreError> {
        let rows: Vec<(Uuid, time::OffsetDateTime)> = self.read(|c| {
            conversions::table
                .filter(conversions::stripe_customer_id.eq(customer_id))
                .group_by(conversions::org_id)
                .select((conversions::org_id, diesel::dsl::max(conversions::created_at).assume_not_null()))
                .order(diesel::dsl::max(conversions::created_at).desc())
                .limit(2)
                .load(c)
        })?;
        Ok(rows.into_iter().map(|(org, _)| OrgId::from_uuid(org)).collect())
    }

    fn orgs_of_payment(&mut self, payment: &str) -> Result<Vec<OrgId>, StoreError> {
        let rows: Vec<Uuid> = self.read(|c| {
            ledger_events::table
                .filter(ledger_events::stripe_invoice_id.eq(payment))
                .filter(ledger_events::kind.eq_any([LedgerKind::Initial.as_str(), LedgerKind::Renewal.as_str()]))
                .select(ledger_events::org_id)
                .distinct()
                .limit(2)
                .load(c)
        })?;
        Ok(rows.into_iter().map(OrgId::from_uuid).collect())
    }

    fn list_conversions(&mut self, org: OrgId, filter: &ConversionFilter, page: &PageRequest) -> Result<Vec<Conversion>, StoreError> {
        let rows = self.read(|c| {
            let mut query =
                conversions::table.filter(conversions::org_id.eq(org.as_uuid())).select(ConversionRow::as_select()).into_boxed::<Pg>();
            if let Some(affiliate) = filter.affiliate_id {
                query = query.filter(conversions::affiliate_id.eq(affiliate.as_uuid()));
            }
            if let Some(program) = filter.program_id {
                query = query.filter(conversions::program_id.eq(program.as_uuid()));
            }
            if let Some(status) = filter.status {
                query = query.filter(conversions::status.eq(status.as_str()));
            }
            if let Some(since) = filter.since {
                query = query.filter(conversions::created_at.ge(since));
            }
            if let Some(until) = filter.until {
                query = query.filter(conversions::created_at.lt(until));
            }
            keyset!(query, conversions, page).load(c)
        })?;
        decode(rows, ConversionRow::into_domain)
    }

    fn conversions_due_for_approval(&mut self, now: OffsetDateTime, limit: i64) -> Result<Vec<Conversion>, StoreError> {
        let rows = self.read(|c| {
            conversions::table
                .filter(conversions::status.eq(ConversionStatus::Pending.as_str()))
                .filter(conversions::approve_after.le(now))
                // Longest due first.
                .order((conversions::approve_after.asc(), conversions::id.asc()))
                .limit(limit.max(0))
                .select(ConversionRow::as_select())
                .load(c)
        })?;
        decode(rows, ConversionRow::into_domain)
    }

    fn insert_ledger_event(&mut self, event: &LedgerEvent) -> Result<(), StoreError> {
        let row = NewLedgerEventRow::from(event);
        self.write(|c| diesel::insert_into(ledger_events::table).values(&row).execute(c))?;
        Ok(())
    }

    fn ledger_of(&mut self, org: OrgId, conversion: ConversionId) -> Result<Vec<LedgerEvent>, StoreError> {
        let rows = self.read(|c| {
            ledger_events::table
                .filter(ledger_events::org_id.eq(org.as_uuid()))
                .filter(ledger_events::conversion_id.eq(conversion.as_uuid()))
                .order((ledger_events::occurred_at.asc(), ledger_events::id.asc()))
                .select(LedgerEventRow::as_select())
                .load(c)
        })?;
        decode(rows, LedgerEventRow::into_domain)
    }
}

impl InboxRepo for PgTx<'_> {
    fn insert_inbox_event(&mut self, event: &InboxEvent) -> Result<bool, StoreError> {
        let row = NewInboxEventRow::from(event);
        let inserted =
            self.write(|c| diesel::insert_into(inbox_events::table).values(&row).on_conflict(inbox_events::id).do_nothing().execute(c))?;
        Ok(inserted == 1)
    }

    fn claim_inbox_events(&mut self, now: OffsetDateTime, lease_until: OffsetDateTime, limit: i64) -> Result<Vec<InboxEvent>, StoreError> {
        // Lock the due rows no other worker holds (SKIP LOCKED passes over rows a concurrent
        // claim has locked but not yet committed), then lease them: the lease outlives this
        // transaction, the row lock keeps concurrent claims apart until it commits.
        let ids: Vec<String> = self.read(|c| {
            inbox_events::table
                .filter(inbox_events::status.eq(InboxStatus::Pending.as_str()))
                .filter(inbox_events::next_attempt_at.le(now))
                .filter(inbox_events::locked_until.is_null().or(inbox_events::locked_until.le(now)))
                .order((inbox_events::received_at.asc(), inbox_events::id.asc()))
                .limit(limit.max(0))
                .select(inbox_events::id)
                .for_update()
                .skip_locked()
                .load(c)
        })?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.write(|c| {
            diesel::update(inbox_events::table.filter(inbox_events::id.eq_any(&ids)))
                .set((inbox_events::locked_until.eq(lease_until), inbox_events::attempts.eq(inbox_events::attempts + 1)))
                .returning(InboxEventRow::as_returning())
                .get_results(c)
        })?;
        let mut events = decode(rows, InboxEventRow::into_domain)?;
        // RETURNING promises no order.
        events.sort_by(|a, b| (a.received_at, &a.id).cmp(&(b.received_at, &b.id)));
        Ok(events)
    }

    fn renew_inbox_leases(&mut self, ids: &[String], lease_until: OffsetDateTime) -> Result<usize, StoreError> {
        self.write(|c| {
            diesel::update(
                inbox_events::table
                    .filter(inbox_events::id.eq_any(ids))
                    .filter(inbox_events::status.eq(InboxStatus::Pending.as_str()))
                    .filter(inbox_events::locked_until.is_not_null()),
            )
            .set(inbox_events::locked_until.eq(lease_until))
            .execute(c)
        })
    }

    fn release_inbox_events(&mut self, ids: &[String]) -> Result<usize, StoreError> {
        self.write(|c| {
            diesel::update(
                inbox_events::table
                    .filter(inbox_events::id.eq_any(ids))
                    .filter(inbox_events::status.eq(InboxStatus::Pending.as_str()))
                    .filter(inbox_events::locked_until.is_not_null()),
            )
            .set(inbox_events::locked_until.eq(None::<OffsetDateTime>))
            .execute(c)
        })
    }

    fn wake_waiting_inbox_events(
        &mut self,
        account: Option<&str>,
        payments: &[String],
        org: OrgId,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        self.write(|c| {
            let waiting = inbox_events::table
                .filter(inbox_events::status.eq(InboxStatus::Waiting.as_str()))
                .filter(inbox_events::waiting_for.eq_any(payments))
                .into_boxed::<Pg>();
            let waiting = match account {
                Some(account) => waiting.filter(inbox_events::account.eq(account)),
                None => waiting.filter(inbox_events::account.is_null()),
            };
            diesel::update(inbox_events::table.filter(inbox_events::id.eq_any(waiting.select(inbox_events::id))))
                .set((
                    inbox_events::status.eq(InboxStatus::Pending.as_str()),
                    inbox_events::waiting_for.eq(None::<String>),
                    inbox_events::next_attempt_at.eq(now),
                    inbox_events::org_id.eq(diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Uuid>>("coalesce(org_id, ")
                        .bind::<diesel::sql_types::Uuid, _>(org.as_uuid())
                        .sql(")")),
                ))
                .execute(c)
        })
    }

    fn inbox_depth(&mut self, now: OffsetDateTime) -> Result<(u64, Option<OffsetDateTime>), StoreError> {
        let pending = inbox_events::table.filter(inbox_events::status.eq(InboxStatus::Pending.as_str()));
        let count: i64 = self.read(|c| pending.count().get_result(c))?;
        let oldest: Option<OffsetDateTime> = self.read(|c| {
            pending.filter(inbox_events::next_attempt_at.le(now)).select(diesel::dsl::min(inbox_events::next_attempt_at)).get_result(c)
        })?;
        Ok((u64::try_from(count).unwrap_or(0), oldest))
    }

    fn wake_due_inbox_events(&mut self, now: OffsetDateTime, limit: i64) -> Result<usize, StoreError> {
        let due: Vec<String> = self.read(|c| {
            inbox_events::table
                .filter(inbox_events::status.eq(InboxStatus::Waiting.as_str()))
                .filter(inbox_events::next_attempt_at.le(now))
                .order((inbox_events::next_attempt_at.asc(), inbox_events::id.asc()))
                .limit(limit.max(0))
                .select(inbox_events::id)
                .for_update()
                .skip_locked()
                .load(c)
        })?;
        if due.is_empty() {
            return Ok(0);
        }
        self.write(|c| {
            diesel::update(inbox_events::table.filter(inbox_events::id.eq_any(&due)))
                .set((inbox_events::status.eq(InboxStatus::Pending.as_str()), inbox_events::waiting_for.eq(None::<String>)))
                .execute(c)
        })
    }

    fn update_inbox_event(&mut self, event: &InboxEvent) -> Result<(), StoreError> {
        let change = InboxStateChange::from(event);
        self.write(|c| diesel::update(inbox_events::table.find(&event.id)).set(&change).execute(c))?;
        Ok(())
    }

    fn inbox_event(&mut self, id: &str) -> Result<Option<InboxEvent>, StoreError> {
        let row = self.read(|c| inbox_events::table.find(id).select(InboxEventRow::as_select()).first(c).optional())?;
        row.map(InboxEventRow::into_domain).transpose()
    }

    fn list_inbox_events(
        &mut self,
        org: Option<OrgId>,
        status: Option<InboxStatus>,
        before: Option<OffsetDateTime>,
        limit: i64,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        let rows = self.read(|c| {
            let mut query = inbox_events::table.select(InboxEventRow::as_select()).into_boxed::<Pg>();
            if let Some(org) = org {
                query = query.filter(inbox_events::org_id.eq(org.as_uuid()));
            }
            if let Some(status) = status {
                query = query.filter(inbox_events::status.eq(status.as_str()));
            }
            if let Some(before) = before {
                query = query.filter(inbox_events::received_at.lt(before));
            }
            query.order((inbox_events::received_at.desc(), inbox_events::id.desc())).limit(limit.max(0)).load(c)
        })?;
        decode(rows, InboxEventRow::into_domain)
    }
}

impl OutboundRepo for PgTx<'_> {
    fn insert_endpoint(&mut self, endpoint: &WebhookEndpoint) -> Result<(), StoreError> {
        let row = NewWebhookEndpointRow::from(endpoint);
        self.write(|c| diesel::insert_into(webhook_endpoints::table).values(&row).execute(c))?;
        Ok(())
    }

    fn update_endpoint(&mut self, endpoint: &WebhookEndpoint) -> Result<(), StoreError> {
        let row = NewWebhookEndpointRow::from(endpoint);
        let (id, org) = (endpoint.id.as_uuid(), endpoint.org_id.as_uuid());
        self.write(|c| {
            diesel::update(webhook_endpoints::table.filter(webhook_endpoints::id.eq(id)).filter(webhook_endpoints::org_id.eq(org)))
                .set(&row)
                .execute(c)
        })?;
        Ok(())
    }

    fn delete_endpoint(&mut self, org: OrgId, id: WebhookEndpointId) -> Result<bool, StoreError> {
        // Its deliveries go with it (ON DELETE CASCADE).
        let deleted = self.write(|c| {
            diesel::delete(
                webhook_endpoints::table.filter(webhook_endpoints::id.eq(id.as_uuid())).filter(webhook_endpoints::org_id.eq(org.as_uuid())),
            )
            .execute(c)
        })?;
        Ok(deleted > 0)
    }

    // FOR NO KEY UPDATE: the outbox inserts deliveries that reference the endpoint (taking
    // FOR KEY SHARE); they need not wait for a worker recording an outcome.
    get_by_org_and_id!(
        endpoint,
        endpoint_for_update,
        for_no_key_update,
        webhook_endpoints,
        WebhookEndpointId,
        WebhookEndpointRow,
        WebhookEndpoint
    );

    fn endpoints(&mut self, org: OrgId) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let rows = self.read(|c| {
            webhook_endpoints::table
                .filter(webhook_endpoints::org_id.eq(org.as_uuid()))
                .order(webhook_endpoints::id.desc())
                .select(WebhookEndpointRow::as_select())
                .load(c)
        })?;
        decode(rows, WebhookEndpointRow::into_domain)
    }

    fn insert_outbox_events(&mut self, events: &[OutboxEvent]) -> Result<(), StoreError> {
        for chunk in events.chunks(INSERT_CHUNK) {
            let rows: Vec<NewOutboxEventRow<'_>> = chunk.iter().map(NewOutboxEventRow::from).collect();
            self.write(|c| diesel::insert_into(outbox_events::table).values(&rows).execute(c))?;
        }
        Ok(())
    }

    fn insert_deliveries(&mut self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        for chunk in deliveries.chunks(INSERT_CHUNK) {
            let rows: Vec<NewDeliveryRow<'_>> = chunk.iter().map(NewDeliveryRow::from).collect();
            self.write(|c| diesel::insert_into(webhook_deliveries::table).values(&rows).execute(c))?;
        }
        Ok(())
    }

    fn update_delivery(&mut self, delivery: &Delivery) -> Result<(), StoreError> {
        let change = DeliveryStateChange::from(delivery);
        let (id, org) = (delivery.id.as_uuid(), delivery.org_id.as_uuid());
        self.write(|c| {
            diesel::update(webhook_deliveries::table.filter(webhook_deliveries::id.eq(id)).filter(webhook_deliveries::org_id.eq(org)))
                .set(&change)
                .execute(c)
        })?;
        Ok(())
    }

    get_by_org_and_id!(delivery, delivery_for_update, for_update, webhook_deliveries, DeliveryId, DeliveryRow, Delivery);

    fn deliveries_of(&mut self, org: OrgId, endpoint: WebhookEndpointId, page: &PageRequest) -> Result<Vec<Delivery>, StoreError> {
        let rows = self.read(|c| {
            let base = webhook_deliveries::table
                .filter(webhook_deliveries::org_id.eq(org.as_uuid()))
                .filter(webhook_deliveries::endpoint_id.eq(endpoint.as_uuid()))
                .select(DeliveryRow::as_select())
                .into_boxed::<Pg>();
            keyset!(base, webhook_deliveries, page).load(c)
        })?;
        decode(rows, DeliveryRow::into_domain)
    }

    fn claim_deliveries(&mut self, now: OffsetDateTime, lease_until: OffsetDateTime, limit: i64) -> Result<Vec<Delivery>, StoreError> {
        // As claim_inbox_events. The endpoint is a subquery rather than a join so that only
        // the deliveries are locked (the foreign key keeps endpoint and delivery in one
        // organization, so the endpoint id alone is enough).
        let enabled =
            webhook_endpoints::table.filter(webhook_endpoints::status.eq(EndpointStatus::Enabled.as_str())).select(webhook_endpoints::id);
        let ids: Vec<Uuid> = self.read(|c| {
            webhook_deliveries::table
                .filter(webhook_deliveries::status.eq(DeliveryStatus::Pending.as_str()))
                .filter(webhook_deliveries::next_attempt_at.le(now))
                .filter(webhook_deliveries::locked_until.is_null().or(webhook_deliveries::locked_until.le(now)))
                .filter(webhook_deliveries::endpoint_id.eq_any(enabled))
                .order((webhook_deliveries::created_at.asc(), webhook_deliveries::id.asc()))
                .limit(limit.max(0))
                .select(webhook_deliveries::id)
                .for_update()
                .skip_locked()
                .load(c)
        })?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.write(|c| {
            diesel::update(webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(&ids)))
                .set((webhook_deliveries::locked_until.eq(lease_until), webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1)))
                .returning(DeliveryRow::as_returning())
                .get_results(c)
        })?;
        let mut deliveries = decode(rows, DeliveryRow::into_domain)?;
        deliveries.sort_by_key(|d| (d.created_at, d.id));
        Ok(deliveries)
    }

    fn renew_delivery_leases(&mut self, ids: &[DeliveryId], lease_until: OffsetDateTime) -> Result<usize, StoreError> {
        let ids: Vec<Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
        self.write(|c| {
            diesel::update(
                webhook_deliveries::table
                    .filter(webhook_deliveries::id.eq_any(&ids))
                    .filter(webhook_deliveries::status.eq(DeliveryStatus::Pending.as_str()))
                    .filter(webhook_deliveries::locked_until.is_not_null()),
            )
            .set(webhook_deliveries::locked_until.eq(lease_until))
            .execute(c)
        })
    }

    fn delivery_depth(&mut self, now: OffsetDateTime) -> Result<(u64, Option<OffsetDateTime>), StoreError> {
        let enabled =
            webhook_endpoints::table.filter(webhook_endpoints::status.eq(EndpointStatus::Enabled.as_str())).select(webhook_endpoints::id);
        let pending = webhook_deliveries::table
            .filter(webhook_deliveries::status.eq(DeliveryStatus::Pending.as_str()))
            .filter(webhook_deliveries::endpoint_id.eq_any(enabled));
        let count: i64 = self.read(|c| pending.count().get_result(c))?;
        let oldest: Option<OffsetDateTime> = self.read(|c| {
            pending
                .filter(webhook_deliveries::next_attempt_at.le(now))
                .select(diesel::dsl::min(webhook_deliveries::next_attempt_at))
                .get_result(c)
        })?;
        Ok((u64::try_from(count).unwrap_or(0), oldest))
    }

    fn endpoint_any_org(&mut self, id: WebhookEndpointId) -> Result<Option<WebhookEndpoint>, StoreError> {
        let row = self.read(|c| webhook_endpoints::table.find(id.as_uuid()).select(WebhookEndpointRow::as_select()).first(c).optional())?;
        row.map(WebhookEndpointRow::into_domain).transpose()
    }
}

impl AuditRepo for PgTx<'_> {
    fn append_audits(&mut self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        for chunk in entries.chunks(INSERT_CHUNK) {
            let rows: Vec<NewAuditRow<'_>> = chunk.iter().map(NewAuditRow::from).collect();
            self.write(|c| diesel::insert_into(audit_log::table).values(&rows).execute(c))?;
        }
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
