//! Programs (campaigns) in PostgreSQL: the rows of `programs`, and [`ProgramRepo`] for
//! [`PgTx`], including each program's sub-affiliate setting (`program_sub_affiliate_configs`),
//! which the domain's program repository owns. An outbound adapter of the hexagon, the
//! `programs` capability's side of the storage port.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::upsert::excluded;
use rekomi_domain::conversions::SubAffiliateConfig;
use rekomi_domain::kernel::ids::{OrgId, ProgramId};
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::ports::store::StoreError;
use rekomi_domain::programs::{
    AttributionModel, CommissionModel, Hundredths, LandingUrl, NetworkVisibility, Program, ProgramRepo, ProgramSlug,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::columns::{api_enum, commission, to_u16};
use crate::error::bad_row;
use crate::schema::{program_sub_affiliate_configs, programs};
use crate::tx::{decode, get_by_org_and_id, keyset, PgTx};

// ---------------------------------------------------------------------------------------------
// programs
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = programs, check_for_backend(diesel::pg::Pg))]
struct ProgramRow {
    id: Uuid,
    org_id: Uuid,
    name: String,
    slug: String,
    description: Option<String>,
    terms_url: Option<String>,
    is_active: bool,
    default_commission_type: String,
    default_commission_value: i64,
    default_commission_model: String,
    cookie_window_days: i32,
    recurring_months: Option<i32>,
    recurring_delay_invoices: i32,
    attribution_model: String,
    auto_approve: bool,
    custom_domain: Option<String>,
    custom_domain_verified: bool,
    network_visibility: String,
    is_publicly_discoverable: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    archived_at: Option<OffsetDateTime>,
    landing_url: Option<String>,
}

impl ProgramRow {
    fn into_domain(self) -> Result<Program, StoreError> {
        const T: &str = "programs";
        Ok(Program {
            id: self.id.into(),
            org_id: self.org_id.into(),
            name: self.name,
            slug: ProgramSlug::parse(&self.slug).map_err(|e| bad_row(T, "slug", e))?,
            description: self.description,
            terms_url: self.terms_url,
            is_active: self.is_active,
            default_commission: commission(T, "default_commission_value", &self.default_commission_type, self.default_commission_value)?,
            default_commission_model: api_enum(T, "default_commission_model", &self.default_commission_model, CommissionModel::parse)?,
            cookie_window_days: to_u16(T, "cookie_window_days", self.cookie_window_days)?,
            recurring_months: self.recurring_months.map(|m| to_u16(T, "recurring_months", m)).transpose()?,
            recurring_delay_invoices: to_u16(T, "recurring_delay_invoices", self.recurring_delay_invoices)?,
            attribution_model: api_enum(T, "attribution_model", &self.attribution_model, AttributionModel::parse)?,
            auto_approve: self.auto_approve,
            custom_domain: self.custom_domain,
            custom_domain_verified: self.custom_domain_verified,
            network_visibility: api_enum(T, "network_visibility", &self.network_visibility, NetworkVisibility::parse)?,
            is_publicly_discoverable: self.is_publicly_discoverable,
            created_at: self.created_at,
            updated_at: self.updated_at,
            archived_at: self.archived_at,
            landing_url: self.landing_url.as_deref().map(LandingUrl::parse).transpose().map_err(|e| bad_row(T, "landing_url", e))?,
        })
    }
}

/// Used for both INSERT and the full-row UPDATE; `treat_none_as_null` makes an update clear a
/// field the entity cleared instead of silently keeping the old value.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = programs, treat_none_as_null = true)]
struct NewProgramRow<'a> {
    id: Uuid,
    org_id: Uuid,
    name: &'a str,
    slug: &'a str,
    description: Option<&'a str>,
    terms_url: Option<&'a str>,
    is_active: bool,
    default_commission_type: &'static str,
    default_commission_value: i64,
    default_commission_model: &'static str,
    cookie_window_days: i32,
    recurring_months: Option<i32>,
    recurring_delay_invoices: i32,
    attribution_model: &'static str,
    auto_approve: bool,
    custom_domain: Option<&'a str>,
    custom_domain_verified: bool,
    network_visibility: &'static str,
    is_publicly_discoverable: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    archived_at: Option<OffsetDateTime>,
    landing_url: Option<&'a str>,
}

impl<'a> From<&'a Program> for NewProgramRow<'a> {
    fn from(p: &'a Program) -> Self {
        Self {
            id: p.id.as_uuid(),
            org_id: p.org_id.as_uuid(),
            name: &p.name,
            slug: p.slug.as_str(),
            description: p.description.as_deref(),
            terms_url: p.terms_url.as_deref(),
            is_active: p.is_active,
            default_commission_type: p.default_commission.kind.as_str(),
            default_commission_value: p.default_commission.value.get(),
            default_commission_model: p.default_commission_model.as_str(),
            cookie_window_days: i32::from(p.cookie_window_days),
            recurring_months: p.recurring_months.map(i32::from),
            recurring_delay_invoices: i32::from(p.recurring_delay_invoices),
            attribution_model: p.attribution_model.as_str(),
            auto_approve: p.auto_approve,
            custom_domain: p.custom_domain.as_deref(),
            custom_domain_verified: p.custom_domain_verified,
            network_visibility: p.network_visibility.as_str(),
            is_publicly_discoverable: p.is_publicly_discoverable,
            created_at: p.created_at,
            updated_at: p.updated_at,
            archived_at: p.archived_at,
            landing_url: p.landing_url.as_ref().map(LandingUrl::as_str),
        }
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
