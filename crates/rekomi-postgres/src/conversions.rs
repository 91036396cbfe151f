//! Conversions, their ledger and the sources already processed, in PostgreSQL: the rows of
//! `conversions` and `ledger_events`, and [`ConversionRepo`] for [`PgTx`] (processed sources
//! are plain keys in `processed_sources`). An outbound adapter of the hexagon, the
//! `conversions` capability's side of the storage port.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use rekomi_domain::conversions::{Conversion, ConversionFilter, ConversionRepo, ConversionStatus, ConversionType, LedgerEvent, LedgerKind};
use rekomi_domain::kernel::ids::{AffiliateId, ConversionId, OrgId};
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::kernel::stripe_ids::{StripeCustomerId, StripePaymentRef, StripeSubscriptionId};
use rekomi_domain::ports::store::StoreError;
use rekomi_domain::traffic::ClickId;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::columns::{api_enum, currency, stripe_id_opt, to_u32};
use crate::error::bad_row;
use crate::schema::{conversions, ledger_events, processed_sources};
use crate::tx::{decode, get_by_org_and_id, keyset, lower, PgTx};
use rekomi_domain::fx::{FxRate, FxSource};

diesel::define_sql_function!(
    /// SQL `lower(text)` of a nullable column, to hit the `lower(customer_email)` index.
    #[sql_name = "lower"]
    fn lower_nullable(x: Nullable<Text>) -> Nullable<Text>
);

// ---------------------------------------------------------------------------------------------
// conversions
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = conversions, check_for_backend(diesel::pg::Pg))]
struct ConversionRow {
    id: Uuid,
    org_id: Uuid,
    program_id: Uuid,
    affiliate_id: Uuid,
    kind: String,
    status: String,
    amount_minor: i64,
    currency: String,
    commission_minor: i64,
    attribution_method: Option<String>,
    coupon_code: Option<String>,
    affiliate_coupon_id: Option<Uuid>,
    stripe_customer_id: Option<String>,
    stripe_subscription_id: Option<String>,
    external_event_id: Option<String>,
    customer_email: Option<String>,
    denial_reason: Option<String>,
    parent_conversion_id: Option<Uuid>,
    attribution_trace: Value,
    paid_invoices: i64,
    approve_after: OffsetDateTime,
    approved_at: Option<OffsetDateTime>,
    refunded_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    click_id: Option<Uuid>,
}

impl ConversionRow {
    fn into_domain(self) -> Result<Conversion, StoreError> {
        const T: &str = "conversions";
        Ok(Conversion {
            id: self.id.into(),
            org_id: self.org_id.into(),
            program_id: self.program_id.into(),
            affiliate_id: self.affiliate_id.into(),
            kind: api_enum(T, "kind", &self.kind, ConversionType::parse)?,
            status: api_enum(T, "status", &self.status, ConversionStatus::parse)?,
            amount_minor: self.amount_minor,
            currency: currency(T, "currency", &self.currency)?,
            commission_minor: self.commission_minor,
            attribution_method: self.attribution_method,
            coupon_code: self.coupon_code,
            affiliate_coupon_id: self.affiliate_coupon_id.map(Into::into),
            stripe_customer_id: stripe_id_opt(T, "stripe_customer_id", self.stripe_customer_id.as_deref())?,
            stripe_subscription_id: stripe_id_opt(T, "stripe_subscription_id", self.stripe_subscription_id.as_deref())?,
            external_event_id: self.external_event_id,
            customer_email: self.customer_email,
            denial_reason: self.denial_reason,
            parent_conversion_id: self.parent_conversion_id.map(Into::into),
            attribution_trace: self.attribution_trace,
            paid_invoices: to_u32(T, "paid_invoices", self.paid_invoices)?,
            approve_after: self.approve_after,
            approved_at: self.approved_at,
            refunded_at: self.refunded_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            click_id: self.click_id.map(ClickId::from_uuid),
        })
    }
}

/// INSERT and full-row UPDATE.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = conversions, treat_none_as_null = true, treat_none_as_default_value = false)]
struct NewConversionRow<'a> {
    id: Uuid,
    org_id: Uuid,
    program_id: Uuid,
    affiliate_id: Uuid,
    kind: &'static str,
    status: &'static str,
    amount_minor: i64,
    currency: &'static str,
    commission_minor: i64,
    attribution_method: Option<&'a str>,
    coupon_code: Option<&'a str>,
    affiliate_coupon_id: Option<Uuid>,
    stripe_customer_id: Option<&'a str>,
    stripe_subscription_id: Option<&'a str>,
    external_event_id: Option<&'a str>,
    customer_email: Option<&'a str>,
    denial_reason: Option<&'a str>,
    parent_conversion_id: Option<Uuid>,
    attribution_trace: &'a Value,
    paid_invoices: i64,
    approve_after: OffsetDateTime,
    approved_at: Option<OffsetDateTime>,
    refunded_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    click_id: Option<Uuid>,
}

impl<'a> From<&'a Conversion> for NewConversionRow<'a> {
    fn from(c: &'a Conversion) -> Self {
        Self {
            id: c.id.as_uuid(),
            org_id: c.org_id.as_uuid(),
            program_id: c.program_id.as_uuid(),
            affiliate_id: c.affiliate_id.as_uuid(),
            kind: c.kind.as_str(),
            status: c.status.as_str(),
            amount_minor: c.amount_minor,
            currency: c.currency.code(),
            commission_minor: c.commission_minor,
            attribution_method: c.attribution_method.as_deref(),
            coupon_code: c.coupon_code.as_deref(),
            affiliate_coupon_id: c.affiliate_coupon_id.map(|id| id.as_uuid()),
            stripe_customer_id: c.stripe_customer_id.as_ref().map(StripeCustomerId::as_str),
            stripe_subscription_id: c.stripe_subscription_id.as_ref().map(StripeSubscriptionId::as_str),
            external_event_id: c.external_event_id.as_deref(),
            customer_email: c.customer_email.as_deref(),
            denial_reason: c.denial_reason.as_deref(),
            parent_conversion_id: c.parent_conversion_id.map(|id| id.as_uuid()),
            attribution_trace: &c.attribution_trace,
            paid_invoices: i64::from(c.paid_invoices),
            approve_after: c.approve_after,
            approved_at: c.approved_at,
            refunded_at: c.refunded_at,
            created_at: c.created_at,
            updated_at: c.updated_at,
            click_id: c.click_id.map(|id| id.as_uuid()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ledger_events
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = ledger_events, check_for_backend(diesel::pg::Pg))]
struct LedgerEventRow {
    id: Uuid,
    org_id: Uuid,
    conversion_id: Uuid,
    affiliate_id: Uuid,
    currency: String,
    kind: String,
    amount_minor: i64,
    commission_minor: i64,
    stripe_invoice_id: Option<String>,
    refunded_total: Option<i64>,
    occurred_at: OffsetDateTime,
    payable_after: OffsetDateTime,
    home_currency: String,
    fx_rate: Option<String>,
    fx_source: Option<String>,
    created_at: OffsetDateTime,
}

impl LedgerEventRow {
    fn into_domain(self) -> Result<LedgerEvent, StoreError> {
        Ok(LedgerEvent {
            id: self.id.into(),
            org_id: self.org_id.into(),
            conversion_id: self.conversion_id.into(),
            affiliate_id: self.affiliate_id.into(),
            currency: currency("ledger_events", "currency", &self.currency)?,
            kind: api_enum("ledger_events", "kind", &self.kind, LedgerKind::parse)?,
            amount_minor: self.amount_minor,
            commission_minor: self.commission_minor,
            stripe_invoice_id: stripe_id_opt("ledger_events", "stripe_invoice_id", self.stripe_invoice_id.as_deref())?,
            refunded_total: self.refunded_total,
            occurred_at: self.occurred_at,
            payable_after: self.payable_after,
            home_currency: currency("ledger_events", "home_currency", &self.home_currency)?,
            fx: match (self.fx_rate, self.fx_source) {
                (Some(rate), Some(source)) => Some((
                    FxRate::parse(&rate).map_err(|e| bad_row("ledger_events", "fx_rate", e))?,
                    api_enum("ledger_events", "fx_source", &source, FxSource::parse)?,
                )),
                _ => None,
            },
            created_at: self.created_at,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = ledger_events, treat_none_as_default_value = false)]
struct NewLedgerEventRow<'a> {
    id: Uuid,
    org_id: Uuid,
    conversion_id: Uuid,
    affiliate_id: Uuid,
    currency: &'static str,
    kind: &'static str,
    amount_minor: i64,
    commission_minor: i64,
    stripe_invoice_id: Option<&'a str>,
    refunded_total: Option<i64>,
    occurred_at: OffsetDateTime,
    payable_after: OffsetDateTime,
    home_currency: &'static str,
    fx_rate: Option<String>,
    fx_source: Option<&'static str>,
    created_at: OffsetDateTime,
}

impl<'a> From<&'a LedgerEvent> for NewLedgerEventRow<'a> {
    fn from(e: &'a LedgerEvent) -> Self {
        Self {
            id: e.id.as_uuid(),
            org_id: e.org_id.as_uuid(),
            conversion_id: e.conversion_id.as_uuid(),
            affiliate_id: e.affiliate_id.as_uuid(),
            currency: e.currency.code(),
            kind: e.kind.as_str(),
            amount_minor: e.amount_minor,
            commission_minor: e.commission_minor,
            stripe_invoice_id: e.stripe_invoice_id.as_ref().map(StripePaymentRef::as_str),
            refunded_total: e.refunded_total,
            occurred_at: e.occurred_at,
            payable_after: e.payable_after,
            home_currency: e.home_currency.code(),
            fx_rate: e.fx.map(|(rate, _)| rate.to_string()),
            fx_source: e.fx.map(|(_, source)| source.as_str()),
            created_at: e.created_at,
        }
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

    fn sale_conversion_of_subscription(
        &mut self,
        org: OrgId,
        subscription_id: &StripeSubscriptionId,
    ) -> Result<Option<Conversion>, StoreError> {
        let subscription_id = subscription_id.as_str();
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

    fn conversion_of_invoice(&mut self, org: OrgId, payment: &StripePaymentRef) -> Result<Option<Conversion>, StoreError> {
        let org = org.as_uuid();
        let payment = payment.as_str();
        let row = self.read(|c| {
            let by_ledger = ledger_events::table
                .filter(ledger_events::org_id.eq(org))
                .filter(ledger_events::stripe_invoice_id.eq(payment))
                .filter(ledger_events::kind.eq_any(sale_entries()))
                .select(ledger_events::conversion_id);
            conversions::table
                .filter(conversions::org_id.eq(org))
                .filter(conversions::parent_conversion_id.is_null())
                .filter(conversions::id.eq_any(by_ledger).or(conversions::external_event_id.eq(payment)))
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
        customer_id: Option<&StripeCustomerId>,
        email: Option<&str>,
    ) -> Result<Option<AffiliateId>, StoreError> {
        let customer_id = customer_id.map(StripeCustomerId::as_str);
        if customer_id.is_none() && email.is_none() {
            return Ok(None);
        }
        let found = self.read(|c| {
            let mut query = conversions::table
                .filter(conversions::org_id.eq(org.as_uuid()))
                .filter(conversions::parent_conversion_id.is_null())
                .filter(conversions::status.ne(ConversionStatus::Denied.as_str()))
                // Identified signups count through lead_signup_by_email, inside their window.
                .filter(conversions::kind.ne(ConversionType::LeadReward.as_str()).or(conversions::stripe_customer_id.is_not_null()))
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

    fn lead_signup_by_email(&mut self, org: OrgId, email: &str) -> Result<Option<Conversion>, StoreError> {
        let row = self.read(|c| {
            conversions::table
                .filter(conversions::org_id.eq(org.as_uuid()))
                .filter(conversions::parent_conversion_id.is_null())
                .filter(conversions::status.ne(ConversionStatus::Denied.as_str()))
                .filter(conversions::kind.eq(ConversionType::LeadReward.as_str()))
                .filter(conversions::stripe_customer_id.is_null())
                // The same expression as the customer-email partial index.
                .filter(lower_nullable(conversions::customer_email).eq(lower(email.to_owned()).nullable()))
                .order((conversions::created_at.desc(), conversions::id.desc()))
                .select(ConversionRow::as_select())
                .first(c)
                .optional()
        })?;
        row.map(ConversionRow::into_domain).transpose()
    }

    fn orgs_of_stripe_customer(&mut self, customer_id: &StripeCustomerId) -> Result<Vec<OrgId>, StoreError> {
        let customer_id = customer_id.as_str();
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

    fn orgs_of_payment(&mut self, payment: &StripePaymentRef) -> Result<Vec<OrgId>, StoreError> {
        let payment = payment.as_str();
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
