//! Traffic in PostgreSQL: [`TrafficRepo`] for [`PgTx`] (links as clicks see them, the
//! `clicks` table, the daily `visitor_salts` and `org_web_tracking_settings`), and [`PgClickSink`], the batched writer that
//! clicks go through. An outbound adapter of the hexagon, the `traffic` capability's side of the
//! storage port.

mod sink;

pub use sink::{ClickFlusher, PgClickSink, SinkConfig};

use diesel::prelude::*;
use rekomi_domain::affiliates::AffiliateStatus;
use rekomi_domain::kernel::ids::{OrgId, ProgramId};
use rekomi_domain::ports::store::StoreError;
use rekomi_domain::programs::{AttributionModel, CommissionModel, LandingUrl};
use rekomi_domain::traffic::{
    Click, ClickId, CpcClicks, CustomParams, DeviceClass, LinkTarget, PageScope, TrafficRepo, WebTrackingSettings,
};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::columns::{api_enum, to_u16};
use crate::error::bad_row;
use crate::schema::{affiliate_links, affiliates, clicks, org_web_tracking_settings, programs, visitor_salts};
use crate::tx::{decode, lower, PgTx};

#[derive(Queryable)]
struct LinkTargetRow {
    org_id: Uuid,
    program_id: Uuid,
    affiliate_id: Uuid,
    link_id: Uuid,
    slug: String,
    affiliate_status: String,
    is_active: bool,
    archived_at: Option<OffsetDateTime>,
    landing_url: Option<String>,
    cookie_window_days: i32,
    attribution_model: String,
    commission_model: String,
}

impl LinkTargetRow {
    fn into_domain(self) -> Result<LinkTarget, StoreError> {
        const T: &str = "programs";
        Ok(LinkTarget {
            org_id: self.org_id.into(),
            program_id: self.program_id.into(),
            affiliate_id: self.affiliate_id.into(),
            link_id: self.link_id.into(),
            slug: self.slug,
            affiliate_status: api_enum("affiliates", "status", &self.affiliate_status, AffiliateStatus::parse)?,
            program_live: self.is_active && self.archived_at.is_none(),
            landing_url: self.landing_url.as_deref().map(LandingUrl::parse).transpose().map_err(|e| bad_row(T, "landing_url", e))?,
            cookie_window_days: to_u16(T, "cookie_window_days", self.cookie_window_days)?,
            attribution_model: api_enum(T, "attribution_model", &self.attribution_model, AttributionModel::parse)?,
            commission_model: api_enum(T, "default_commission_model", &self.commission_model, CommissionModel::parse)?,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = clicks, check_for_backend(diesel::pg::Pg))]
pub(crate) struct ClickRow {
    id: Uuid,
    org_id: Uuid,
    program_id: Uuid,
    affiliate_id: Uuid,
    link_id: Uuid,
    clicked_at: OffsetDateTime,
    landing_url: Option<String>,
    referrer_host: String,
    utm_source: Option<String>,
    utm_medium: Option<String>,
    utm_campaign: Option<String>,
    sub_id: Option<String>,
    country: Option<String>,
    device: String,
    visitor_hash: String,
    is_unique: bool,
    is_bot: bool,
}

impl From<&Click> for ClickRow {
    fn from(c: &Click) -> Self {
        Self {
            id: c.id.as_uuid(),
            org_id: c.org_id.as_uuid(),
            program_id: c.program_id.as_uuid(),
            affiliate_id: c.affiliate_id.as_uuid(),
            link_id: c.link_id.as_uuid(),
            clicked_at: c.clicked_at,
            landing_url: c.landing_url.clone(),
            referrer_host: c.referrer_host.clone(),
            utm_source: c.utm_source.clone(),
            utm_medium: c.utm_medium.clone(),
            utm_campaign: c.utm_campaign.clone(),
            sub_id: c.sub_id.clone(),
            country: c.country.clone(),
            device: c.device.as_str().to_owned(),
            visitor_hash: c.visitor_hash.clone(),
            is_unique: c.is_unique,
            is_bot: c.is_bot,
        }
    }
}

impl ClickRow {
    fn into_domain(self) -> Result<Click, StoreError> {
        Ok(Click {
            id: ClickId::from_uuid(self.id),
            org_id: self.org_id.into(),
            program_id: self.program_id.into(),
            affiliate_id: self.affiliate_id.into(),
            link_id: self.link_id.into(),
            clicked_at: self.clicked_at,
            landing_url: self.landing_url,
            referrer_host: self.referrer_host,
            utm_source: self.utm_source,
            utm_medium: self.utm_medium,
            utm_campaign: self.utm_campaign,
            sub_id: self.sub_id,
            country: self.country,
            device: api_enum("clicks", "device", &self.device, DeviceClass::parse)?,
            visitor_hash: self.visitor_hash,
            is_unique: self.is_unique,
            is_bot: self.is_bot,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = org_web_tracking_settings, check_for_backend(diesel::pg::Pg))]
struct WebTrackingSettingsRow {
    org_id: Uuid,
    attribution_params: Option<String>,
    pixel_public_key: Option<String>,
    updated_at: OffsetDateTime,
}

/// Stored lists were validated when saved; one that no longer parses is a bad row.
fn custom_params(raw: Option<&str>) -> Result<Option<CustomParams>, StoreError> {
    raw.map(CustomParams::parse).transpose().map(Option::flatten).map_err(|e| bad_row("org_web_tracking_settings", "attribution_params", e))
}

/// Inserts `rows` in one multi-row statement, skipping ids already stored (a retried batch).
pub(crate) fn insert_click_rows(conn: &mut PgConnection, rows: &[ClickRow]) -> QueryResult<usize> {
    diesel::insert_into(clicks::table).values(rows).on_conflict(clicks::id).do_nothing().execute(conn)
}

impl TrafficRepo for PgTx<'_> {
    fn link_targets_by_slug(&mut self, slug: &str) -> Result<Vec<LinkTarget>, StoreError> {
        let rows = self.read(|c| {
            affiliate_links::table
                .inner_join(
                    affiliates::table
                        .on(affiliates::org_id.eq(affiliate_links::org_id).and(affiliates::id.eq(affiliate_links::affiliate_id))),
                )
                .inner_join(programs::table.on(programs::org_id.eq(affiliates::org_id).and(programs::id.eq(affiliates::program_id))))
                // Same expression as affiliate_links_slug_idx.
                .filter(lower(affiliate_links::slug).eq(lower(slug)))
                .filter(affiliates::deleted_at.is_null())
                .order((affiliate_links::created_at.asc(), affiliate_links::id.asc()))
                .select((
                    affiliate_links::org_id,
                    affiliates::program_id,
                    affiliates::id,
                    affiliate_links::id,
                    affiliate_links::slug,
                    affiliates::status,
                    programs::is_active,
                    programs::archived_at,
                    programs::landing_url,
                    programs::cookie_window_days,
                    programs::attribution_model,
                    programs::default_commission_model,
                ))
                .load::<LinkTargetRow>(c)
        })?;
        decode(rows, LinkTargetRow::into_domain)
    }

    fn insert_clicks(&mut self, clicks: &[Click]) -> Result<u64, StoreError> {
        let rows: Vec<ClickRow> = clicks.iter().map(ClickRow::from).collect();
        let written = self.write(|c| insert_click_rows(c, &rows))?;
        Ok(written as u64)
    }

    fn click(&mut self, org: OrgId, id: ClickId) -> Result<Option<Click>, StoreError> {
        let row = self.read(|c| {
            clicks::table
                .filter(clicks::org_id.eq(org.as_uuid()))
                .filter(clicks::id.eq(id.as_uuid()))
                .select(ClickRow::as_select())
                .first(c)
                .optional()
        })?;
        row.map(ClickRow::into_domain).transpose()
    }

    fn visitor_salt(&mut self, day: Date, candidate: &str) -> Result<String, StoreError> {
        self.write(|c| {
            diesel::insert_into(visitor_salts::table)
                .values((visitor_salts::day.eq(day), visitor_salts::salt.eq(candidate)))
                .on_conflict(visitor_salts::day)
                .do_nothing()
                .execute(c)
        })?;
        self.read(|c| visitor_salts::table.find(day).select(visitor_salts::salt).first(c))
    }

    fn cpc_click_counts(&mut self, day: Date) -> Result<Vec<CpcClicks>, StoreError> {
        let start = day.midnight().assume_utc();
        let end = start + time::Duration::days(1);
        let rows: Vec<(Uuid, Uuid, Uuid, i64)> = self.read(|c| {
            clicks::table
                .inner_join(programs::table.on(programs::org_id.eq(clicks::org_id).and(programs::id.eq(clicks::program_id))))
                .filter(programs::default_commission_model.eq(CommissionModel::Cpc.as_str()))
                .filter(clicks::clicked_at.ge(start).and(clicks::clicked_at.lt(end)))
                .filter(clicks::is_unique.eq(true).and(clicks::is_bot.eq(false)))
                .group_by((clicks::org_id, clicks::program_id, clicks::affiliate_id))
                .select((clicks::org_id, clicks::program_id, clicks::affiliate_id, diesel::dsl::count_star()))
                .order((clicks::org_id, clicks::affiliate_id))
                .load(c)
        })?;
        Ok(rows
            .into_iter()
            .map(|(org, program, affiliate, clicks)| CpcClicks {
                org_id: org.into(),
                program_id: program.into(),
                affiliate_id: affiliate.into(),
                clicks,
            })
            .collect())
    }

    fn forget_visitor_salts_before(&mut self, day: Date) -> Result<u64, StoreError> {
        let deleted = self.write(|c| diesel::delete(visitor_salts::table.filter(visitor_salts::day.lt(day))).execute(c))?;
        Ok(deleted as u64)
    }

    fn web_tracking_settings(&mut self, org: OrgId) -> Result<Option<WebTrackingSettings>, StoreError> {
        let row = self.read(|c| {
            org_web_tracking_settings::table.find(org.as_uuid()).select(WebTrackingSettingsRow::as_select()).first(c).optional()
        })?;
        row.map(|r| {
            Ok(WebTrackingSettings {
                org_id: r.org_id.into(),
                custom_params: custom_params(r.attribution_params.as_deref())?,
                pixel_public_key: r.pixel_public_key,
                updated_at: r.updated_at,
            })
        })
        .transpose()
    }

    fn set_attribution_params(&mut self, org: OrgId, custom: Option<&CustomParams>, now: OffsetDateTime) -> Result<(), StoreError> {
        let csv = custom.map(CustomParams::to_csv);
        self.write(|c| {
            diesel::insert_into(org_web_tracking_settings::table)
                .values((
                    org_web_tracking_settings::org_id.eq(org.as_uuid()),
                    org_web_tracking_settings::attribution_params.eq(&csv),
                    org_web_tracking_settings::updated_at.eq(now),
                ))
                .on_conflict(org_web_tracking_settings::org_id)
                .do_update()
                .set((org_web_tracking_settings::attribution_params.eq(&csv), org_web_tracking_settings::updated_at.eq(now)))
                .execute(c)
        })?;
        Ok(())
    }

    fn claim_pixel_key(&mut self, org: OrgId, candidate: &str, now: OffsetDateTime) -> Result<String, StoreError> {
        // The row lock of ON CONFLICT DO UPDATE serializes concurrent claims: the second sees
        // the first's key and keeps it.
        let key: Option<String> = self.write(|c| {
            diesel::insert_into(org_web_tracking_settings::table)
                .values((
                    org_web_tracking_settings::org_id.eq(org.as_uuid()),
                    org_web_tracking_settings::pixel_public_key.eq(candidate),
                    org_web_tracking_settings::updated_at.eq(now),
                ))
                .on_conflict(org_web_tracking_settings::org_id)
                .do_update()
                .set(org_web_tracking_settings::pixel_public_key.eq(
                    diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Text>>(
                        "coalesce(org_web_tracking_settings.pixel_public_key, excluded.pixel_public_key)",
                    ),
                ))
                .returning(org_web_tracking_settings::pixel_public_key)
                .get_result(c)
        })?;
        key.ok_or_else(|| bad_row("org_web_tracking_settings", "pixel_public_key", "no key after claiming one"))
    }

    fn page_scope(&mut self, program: ProgramId) -> Result<Option<PageScope>, StoreError> {
        let row = self.read(|c| {
            programs::table
                .left_join(org_web_tracking_settings::table.on(org_web_tracking_settings::org_id.eq(programs::org_id)))
                .filter(programs::id.eq(program.as_uuid()))
                .filter(programs::archived_at.is_null())
                .select((programs::org_id, org_web_tracking_settings::attribution_params.nullable()))
                .first::<(Uuid, Option<String>)>(c)
                .optional()
        })?;
        row.map(|(org, raw)| Ok(PageScope { org_id: org.into(), custom_params: custom_params(raw.as_deref())? })).transpose()
    }
}
