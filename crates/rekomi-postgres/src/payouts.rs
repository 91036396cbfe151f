//! Payouts in PostgreSQL: [`PayoutRepo`] for [`PgTx`] over `payouts`, `payout_line_items`,
//! `payout_accounts` and the payable columns of `ledger_events`. An outbound adapter of the
//! hexagon, the `payouts` capability's side of the storage port.
//!
//! Whether an entry is open is one rule, written once ([`OPEN`]): no live (unreleased) line item
//! holds it. The partial unique index `payout_line_items_live_key` makes a second live claim
//! impossible, whatever the code does.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use rekomi_domain::affiliates::{AffiliateStatus, Email};
use rekomi_domain::kernel::ids::{AffiliateId, ConversionId, OrgId, PayoutId};
use rekomi_domain::kernel::money::Currency;
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::kernel::stripe_ids::{StripeAccountId, StripeTransferId};
use rekomi_domain::payouts::{
    EntryClaim, PayableEntry, PayableQuery, Payout, PayoutAccount, PayoutFilter, PayoutLineItem, PayoutMethod, PayoutRepo, PayoutStatus,
};
use rekomi_domain::ports::store::StoreError;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::columns::{api_enum, currency, stripe_id_opt, to_u32};
use crate::error::bad_row;
use crate::schema::{affiliates, organizations, payout_accounts, payout_line_items, payouts};
use crate::tx::{decode, get_by_org_and_id, keyset, PgTx};

/// Ids per `= any(…)` read.
const ID_CHUNK: usize = 5_000;
/// Line items per array insert.
const ARRAY_INSERT_CHUNK: usize = 50_000;
/// Payouts per insert: nineteen columns each.
const PAYOUT_CHUNK: usize = 1_000;

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = payouts, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
struct PayoutRow {
    id: Uuid,
    org_id: Uuid,
    affiliate_id: Uuid,
    amount_minor: i64,
    currency: String,
    method: String,
    status: String,
    destination: Option<String>,
    stripe_transfer_id: Option<String>,
    external_transaction_id: Option<String>,
    notes: Option<String>,
    failure_reason: Option<String>,
    attempt: i32,
    period_start: Option<Date>,
    period_end: Date,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    paid_at: Option<OffsetDateTime>,
    failed_at: Option<OffsetDateTime>,
}

impl PayoutRow {
    fn into_domain(self) -> Result<Payout, StoreError> {
        const T: &str = "payouts";
        Ok(Payout {
            id: self.id.into(),
            org_id: self.org_id.into(),
            affiliate_id: self.affiliate_id.into(),
            amount_minor: self.amount_minor,
            currency: currency(T, "currency", &self.currency)?,
            method: api_enum(T, "method", &self.method, PayoutMethod::parse)?,
            status: api_enum(T, "status", &self.status, PayoutStatus::parse)?,
            destination: self.destination,
            stripe_transfer_id: stripe_id_opt(T, "stripe_transfer_id", self.stripe_transfer_id.as_deref())?,
            external_transaction_id: self.external_transaction_id,
            notes: self.notes,
            failure_reason: self.failure_reason,
            attempt: to_u32(T, "attempt", i64::from(self.attempt))?,
            period_start: self.period_start,
            period_end: self.period_end,
            created_at: self.created_at,
            updated_at: self.updated_at,
            paid_at: self.paid_at,
            failed_at: self.failed_at,
        })
    }
}

impl From<&Payout> for PayoutRow {
    fn from(p: &Payout) -> Self {
        Self {
            id: p.id.as_uuid(),
            org_id: p.org_id.as_uuid(),
            affiliate_id: p.affiliate_id.as_uuid(),
            amount_minor: p.amount_minor,
            currency: p.currency.code().to_owned(),
            method: p.method.as_str().to_owned(),
            status: p.status.as_str().to_owned(),
            destination: p.destination.clone(),
            stripe_transfer_id: p.stripe_transfer_id.as_ref().map(|t| t.as_str().to_owned()),
            external_transaction_id: p.external_transaction_id.clone(),
            notes: p.notes.clone(),
            failure_reason: p.failure_reason.clone(),
            attempt: i32::try_from(p.attempt).unwrap_or(i32::MAX),
            period_start: p.period_start,
            period_end: p.period_end,
            created_at: p.created_at,
            updated_at: p.updated_at,
            paid_at: p.paid_at,
            failed_at: p.failed_at,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = payout_line_items, check_for_backend(diesel::pg::Pg))]
struct LineItemRow {
    id: Uuid,
    org_id: Uuid,
    payout_id: Uuid,
    ledger_event_id: Uuid,
    conversion_id: Uuid,
    amount_minor: i64,
}

impl LineItemRow {
    fn into_domain(self) -> Result<PayoutLineItem, StoreError> {
        Ok(PayoutLineItem {
            id: self.id.into(),
            org_id: self.org_id.into(),
            payout_id: self.payout_id.into(),
            ledger_event_id: self.ledger_event_id.into(),
            conversion_id: self.conversion_id.into(),
            amount_minor: self.amount_minor,
        })
    }
}

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = payout_accounts, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
struct PayoutAccountRow {
    org_id: Uuid,
    affiliate_id: Uuid,
    stripe_account_id: Option<String>,
    payouts_enabled: bool,
    details_submitted: bool,
    paypal_email: Option<String>,
    wise_email: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl PayoutAccountRow {
    fn into_domain(self) -> Result<PayoutAccount, StoreError> {
        const T: &str = "payout_accounts";
        let email = |column: &'static str, raw: Option<String>| {
            raw.map(|e| Email::parse(column, &e).map_err(|err| bad_row(T, column, err.message))).transpose()
        };
        Ok(PayoutAccount {
            org_id: self.org_id.into(),
            affiliate_id: self.affiliate_id.into(),
            stripe_account_id: stripe_id_opt(T, "stripe_account_id", self.stripe_account_id.as_deref())?,
            payouts_enabled: self.payouts_enabled,
            details_submitted: self.details_submitted,
            paypal_email: email("paypal_email", self.paypal_email)?,
            wise_email: email("wise_email", self.wise_email)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

impl From<&PayoutAccount> for PayoutAccountRow {
    fn from(a: &PayoutAccount) -> Self {
        Self {
            org_id: a.org_id.as_uuid(),
            affiliate_id: a.affiliate_id.as_uuid(),
            stripe_account_id: a.stripe_account_id.as_ref().map(|s| s.as_str().to_owned()),
            payouts_enabled: a.payouts_enabled,
            details_submitted: a.details_submitted,
            paypal_email: a.paypal_email.as_ref().map(|e| e.as_str().to_owned()),
            wise_email: a.wise_email.as_ref().map(|e| e.as_str().to_owned()),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

#[derive(QueryableByName)]
struct EntryRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    conversion_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    affiliate_id: Uuid,
    #[diesel(sql_type = BigInt)]
    commission_minor: i64,
    #[diesel(sql_type = Timestamptz)]
    payable_after: OffsetDateTime,
}

#[derive(QueryableByName)]
struct SumRow {
    #[diesel(sql_type = BigInt)]
    total: i64,
}

#[derive(QueryableByName)]
struct ClaimRow {
    #[diesel(sql_type = BigInt)]
    commission_minor: i64,
    #[diesel(sql_type = Text)]
    claim: String,
}

/// The live line item holding an entry, for `ledger_events e` in raw SQL.
const LIVE_ITEM_OF_ENTRY: &str = "select 1 from payout_line_items li where li.ledger_event_id = e.id and not li.released";

impl PayoutRepo for PgTx<'_> {
    fn lock_payout_runs(&mut self, org: OrgId) -> Result<(), StoreError> {
        // NO KEY UPDATE: the foreign keys of every insert into the organization's tables take a
        // KEY SHARE lock on this row, which this does not block.
        self.read(|c| {
            organizations::table
                .filter(organizations::id.eq(org.as_uuid()))
                .select(organizations::id)
                .for_no_key_update()
                .first::<Uuid>(c)
                .optional()
        })?;
        Ok(())
    }

    fn open_entries(
        &mut self,
        org: OrgId,
        query: &PayableQuery,
        after: Option<AffiliateId>,
        affiliates_per_page: usize,
    ) -> Result<Vec<PayableEntry>, StoreError> {
        // The page's affiliates come from walking the balance index in affiliate order, so a
        // page costs its own entries, not the whole ledger.
        let filters = format!(
            "e.org_id = $1 and e.currency = $2 and e.commission_minor <> 0 and e.payable_after <= $3 \
             and ($4::uuid is null or e.affiliate_id > $4) and ($5::uuid[] is null or e.affiliate_id = any($5)) \
             and not exists ({LIVE_ITEM_OF_ENTRY})"
        );
        let sql = format!(
            "with page as (select distinct e.affiliate_id from ledger_events e where {filters} order by e.affiliate_id limit $6) \
             select e.id, e.conversion_id, e.affiliate_id, e.commission_minor, e.payable_after \
             from ledger_events e join page p on p.affiliate_id = e.affiliate_id where {filters} order by e.affiliate_id, e.id"
        );
        let affiliates: Option<Vec<Uuid>> = query.affiliates.as_ref().map(|ids| ids.iter().map(AffiliateId::as_uuid).collect());
        let rows: Vec<EntryRow> = self.read(|c| {
            diesel::sql_query(sql)
                .bind::<SqlUuid, _>(org.as_uuid())
                .bind::<Text, _>(query.currency.code())
                .bind::<Timestamptz, _>(query.cutoff)
                .bind::<Nullable<SqlUuid>, _>(after.map(|a| a.as_uuid()))
                .bind::<Nullable<Array<SqlUuid>>, _>(affiliates)
                .bind::<BigInt, _>(i64::try_from(affiliates_per_page).unwrap_or(i64::MAX))
                .load(c)
        })?;
        Ok(rows
            .into_iter()
            .map(|r| PayableEntry {
                id: r.id.into(),
                conversion_id: r.conversion_id.into(),
                affiliate_id: r.affiliate_id.into(),
                commission_minor: r.commission_minor,
                payable_after: r.payable_after,
            })
            .collect())
    }

    fn affiliate_statuses(&mut self, org: OrgId, ids: &[AffiliateId]) -> Result<Vec<(AffiliateId, AffiliateStatus)>, StoreError> {
        let uuids: Vec<Uuid> = ids.iter().map(AffiliateId::as_uuid).collect();
        let mut out = Vec::with_capacity(ids.len());
        for chunk in uuids.chunks(ID_CHUNK) {
            let rows: Vec<(Uuid, String)> = self.read(|c| {
                affiliates::table
                    .filter(affiliates::org_id.eq(org.as_uuid()))
                    .filter(affiliates::id.eq_any(chunk))
                    .filter(affiliates::deleted_at.is_null())
                    .select((affiliates::id, affiliates::status))
                    .load(c)
            })?;
            for (id, status) in rows {
                out.push((id.into(), api_enum("affiliates", "status", &status, AffiliateStatus::parse)?));
            }
        }
        Ok(out)
    }

    fn insert_payouts(&mut self, payouts: &[Payout]) -> Result<(), StoreError> {
        for chunk in payouts.chunks(PAYOUT_CHUNK) {
            let rows: Vec<PayoutRow> = chunk.iter().map(PayoutRow::from).collect();
            self.write(|c| diesel::insert_into(payouts::table).values(&rows).execute(c))?;
        }
        Ok(())
    }

    fn insert_line_items(&mut self, items: &[PayoutLineItem]) -> Result<(), StoreError> {
        // One statement of column arrays per page: a run writes a line item per paid entry, a
        // million for a large one, and a VALUES list (or diesel's COPY) of that size costs
        // several times more in binding and per-row round trips.
        for chunk in items.chunks(ARRAY_INSERT_CHUNK) {
            let column = |f: fn(&PayoutLineItem) -> Uuid| chunk.iter().map(f).collect::<Vec<Uuid>>();
            let amounts: Vec<i64> = chunk.iter().map(|i| i.amount_minor).collect();
            self.write(|c| {
                diesel::sql_query(
                    "insert into payout_line_items (id, org_id, payout_id, ledger_event_id, conversion_id, amount_minor, released) \
                     select id, org_id, payout_id, ledger_event_id, conversion_id, amount_minor, false \
                     from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::bigint[]) \
                         as t(id, org_id, payout_id, ledger_event_id, conversion_id, amount_minor)",
                )
                .bind::<Array<SqlUuid>, _>(column(|i| i.id.as_uuid()))
                .bind::<Array<SqlUuid>, _>(column(|i| i.org_id.as_uuid()))
                .bind::<Array<SqlUuid>, _>(column(|i| i.payout_id.as_uuid()))
                .bind::<Array<SqlUuid>, _>(column(|i| i.ledger_event_id.as_uuid()))
                .bind::<Array<SqlUuid>, _>(column(|i| i.conversion_id.as_uuid()))
                .bind::<Array<BigInt>, _>(amounts)
                .execute(c)
            })?;
        }
        Ok(())
    }

    fn update_payout(&mut self, payout: &Payout) -> Result<(), StoreError> {
        let row = PayoutRow::from(payout);
        self.write(|c| {
            diesel::update(payouts::table.filter(payouts::org_id.eq(row.org_id)).filter(payouts::id.eq(row.id))).set(&row).execute(c)
        })?;
        Ok(())
    }

    get_by_org_and_id!(payout, payout_for_update, for_update, payouts, PayoutId, PayoutRow, ::rekomi_domain::payouts::Payout);

    fn payouts_by_ids(&mut self, org: OrgId, ids: &[PayoutId]) -> Result<Vec<Payout>, StoreError> {
        let uuids: Vec<Uuid> = ids.iter().map(PayoutId::as_uuid).collect();
        let mut out = Vec::with_capacity(ids.len());
        for chunk in uuids.chunks(ID_CHUNK) {
            let rows = self.read(|c| {
                payouts::table
                    .filter(payouts::org_id.eq(org.as_uuid()))
                    .filter(payouts::id.eq_any(chunk))
                    .order(payouts::id)
                    .select(PayoutRow::as_select())
                    .load(c)
            })?;
            out.extend(decode(rows, PayoutRow::into_domain)?);
        }
        Ok(out)
    }

    fn payout_of_transfer(&mut self, transfer: &StripeTransferId) -> Result<Option<Payout>, StoreError> {
        let row = self.read(|c| {
            payouts::table
                .filter(payouts::stripe_transfer_id.eq(transfer.as_str()))
                .select(PayoutRow::as_select())
                .for_update()
                .first(c)
                .optional()
        })?;
        row.map(PayoutRow::into_domain).transpose()
    }

    fn list_payouts(&mut self, org: OrgId, filter: &PayoutFilter, page: &PageRequest) -> Result<Vec<Payout>, StoreError> {
        let rows = self.read(|c| {
            let mut q = payouts::table.filter(payouts::org_id.eq(org.as_uuid())).into_boxed();
            if let Some(a) = filter.affiliate_id {
                q = q.filter(payouts::affiliate_id.eq(a.as_uuid()));
            }
            if let Some(s) = filter.status {
                q = q.filter(payouts::status.eq(s.as_str()));
            }
            if let Some(m) = filter.method {
                q = q.filter(payouts::method.eq(m.as_str()));
            }
            keyset!(q, payouts, page).select(PayoutRow::as_select()).load(c)
        })?;
        decode(rows, PayoutRow::into_domain)
    }

    fn line_items_of(&mut self, org: OrgId, ids: &[PayoutId]) -> Result<Vec<PayoutLineItem>, StoreError> {
        let uuids: Vec<Uuid> = ids.iter().map(PayoutId::as_uuid).collect();
        let mut out = Vec::new();
        for chunk in uuids.chunks(ID_CHUNK) {
            let rows = self.read(|c| {
                payout_line_items::table
                    .filter(payout_line_items::org_id.eq(org.as_uuid()))
                    .filter(payout_line_items::payout_id.eq_any(chunk))
                    .order((payout_line_items::payout_id, payout_line_items::ledger_event_id))
                    .select(LineItemRow::as_select())
                    .load(c)
            })?;
            out.extend(decode(rows, LineItemRow::into_domain)?);
        }
        Ok(out)
    }

    fn release_line_items(&mut self, org: OrgId, payout: PayoutId) -> Result<(), StoreError> {
        self.write(|c| {
            diesel::update(
                payout_line_items::table
                    .filter(payout_line_items::org_id.eq(org.as_uuid()))
                    .filter(payout_line_items::payout_id.eq(payout.as_uuid())),
            )
            .set(payout_line_items::released.eq(true))
            .execute(c)
        })?;
        Ok(())
    }

    fn reclaim_line_items(&mut self, org: OrgId, payout: PayoutId) -> Result<(), StoreError> {
        // A conflict here ends the use case, which rolls the transaction back: no savepoint.
        self.write(|c| {
            diesel::update(
                payout_line_items::table
                    .filter(payout_line_items::org_id.eq(org.as_uuid()))
                    .filter(payout_line_items::payout_id.eq(payout.as_uuid()))
                    .filter(payout_line_items::released.eq(true)),
            )
            .set(payout_line_items::released.eq(false))
            .execute(c)
        })?;
        Ok(())
    }

    fn mark_conversions_paid(&mut self, org: OrgId, payouts: &[PayoutId], now: OffsetDateTime) -> Result<usize, StoreError> {
        let sql = format!(
            "update conversions c set status = 'Paid', updated_at = $3 \
             where c.org_id = $1 and c.status in ('Pending', 'Approved') \
               and c.id in (select conversion_id from payout_line_items where org_id = $1 and payout_id = any($2) and not released) \
               and not exists (select 1 from ledger_events e where e.org_id = $1 and e.conversion_id = c.id and e.commission_minor > 0 \
                   and not exists ({LIVE_ITEM_OF_ENTRY} and exists (select 1 from payouts p where p.id = li.payout_id and p.status = 'Paid')))"
        );
        let ids: Vec<Uuid> = payouts.iter().map(PayoutId::as_uuid).collect();
        self.write(|c| {
            diesel::sql_query(sql).bind::<SqlUuid, _>(org.as_uuid()).bind::<Array<SqlUuid>, _>(ids).bind::<Timestamptz, _>(now).execute(c)
        })
    }

    fn unmark_conversions_paid(&mut self, org: OrgId, payout: PayoutId, now: OffsetDateTime) -> Result<Vec<ConversionId>, StoreError> {
        let rows: Vec<IdRow> = self.write(|c| {
            diesel::sql_query(
                "update conversions set status = 'Approved', updated_at = $3 \
                 where org_id = $1 and status = 'Paid' \
                   and id in (select conversion_id from payout_line_items where org_id = $1 and payout_id = $2) \
                 returning id",
            )
            .bind::<SqlUuid, _>(org.as_uuid())
            .bind::<SqlUuid, _>(payout.as_uuid())
            .bind::<Timestamptz, _>(now)
            .load(c)
        })?;
        Ok(rows.into_iter().map(|r| r.id.into()).collect())
    }

    fn processing_payouts(&mut self, before: OffsetDateTime, limit: i64) -> Result<Vec<Payout>, StoreError> {
        let rows = self.read(|c| {
            payouts::table
                .filter(payouts::status.eq(PayoutStatus::Processing.as_str()))
                .filter(payouts::updated_at.lt(before))
                .order((payouts::updated_at, payouts::id))
                .limit(limit)
                .select(PayoutRow::as_select())
                .load(c)
        })?;
        decode(rows, PayoutRow::into_domain)
    }

    fn entry_claims(&mut self, org: OrgId, affiliate: AffiliateId, currency: Currency) -> Result<Vec<(i64, EntryClaim)>, StoreError> {
        let rows: Vec<ClaimRow> = self.read(|c| {
            diesel::sql_query(
                "select e.commission_minor, \
                        case when li.id is null then 'open' when p.status = 'Paid' then 'paid' else 'in_flight' end as claim \
                 from ledger_events e \
                 left join payout_line_items li on li.ledger_event_id = e.id and not li.released \
                 left join payouts p on p.id = li.payout_id \
                 where e.org_id = $1 and e.affiliate_id = $2 and e.currency = $3 and e.commission_minor <> 0",
            )
            .bind::<SqlUuid, _>(org.as_uuid())
            .bind::<SqlUuid, _>(affiliate.as_uuid())
            .bind::<Text, _>(currency.code())
            .load(c)
        })?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let claim = match r.claim.as_str() {
                    "paid" => EntryClaim::Paid,
                    "in_flight" => EntryClaim::InFlight,
                    _ => EntryClaim::Open,
                };
                (r.commission_minor, claim)
            })
            .collect())
    }

    fn paid_out_since(&mut self, org: OrgId, currency: Currency, since: OffsetDateTime) -> Result<i64, StoreError> {
        let row: SumRow = self.read(|c| {
            diesel::sql_query(
                "select coalesce(sum(amount_minor), 0)::bigint as total from payouts \
                 where org_id = $1 and currency = $2 and status = 'Paid' and paid_at >= $3",
            )
            .bind::<SqlUuid, _>(org.as_uuid())
            .bind::<Text, _>(currency.code())
            .bind::<Timestamptz, _>(since)
            .get_result(c)
        })?;
        Ok(row.total)
    }

    fn payout_account(&mut self, org: OrgId, affiliate: AffiliateId) -> Result<Option<PayoutAccount>, StoreError> {
        let row = self.read(|c| {
            payout_accounts::table
                .filter(payout_accounts::org_id.eq(org.as_uuid()))
                .filter(payout_accounts::affiliate_id.eq(affiliate.as_uuid()))
                .select(PayoutAccountRow::as_select())
                .first(c)
                .optional()
        })?;
        row.map(PayoutAccountRow::into_domain).transpose()
    }

    fn payout_accounts_of(&mut self, org: OrgId, ids: &[AffiliateId]) -> Result<Vec<PayoutAccount>, StoreError> {
        let uuids: Vec<Uuid> = ids.iter().map(AffiliateId::as_uuid).collect();
        let mut out = Vec::new();
        for chunk in uuids.chunks(ID_CHUNK) {
            let rows = self.read(|c| {
                payout_accounts::table
                    .filter(payout_accounts::org_id.eq(org.as_uuid()))
                    .filter(payout_accounts::affiliate_id.eq_any(chunk))
                    .select(PayoutAccountRow::as_select())
                    .load(c)
            })?;
            out.extend(decode(rows, PayoutAccountRow::into_domain)?);
        }
        Ok(out)
    }

    fn save_payout_account(&mut self, account: &PayoutAccount) -> Result<(), StoreError> {
        let row = PayoutAccountRow::from(account);
        self.write(|c| {
            diesel::insert_into(payout_accounts::table)
                .values(&row)
                .on_conflict((payout_accounts::org_id, payout_accounts::affiliate_id))
                .do_update()
                .set(&row)
                .execute(c)
        })?;
        Ok(())
    }

    fn payout_accounts_by_stripe_account(&mut self, account: &StripeAccountId) -> Result<Vec<PayoutAccount>, StoreError> {
        let rows = self.read(|c| {
            payout_accounts::table
                .filter(payout_accounts::stripe_account_id.eq(account.as_str()))
                .order((payout_accounts::org_id, payout_accounts::affiliate_id))
                .select(PayoutAccountRow::as_select())
                .for_update()
                .load(c)
        })?;
        decode(rows, PayoutAccountRow::into_domain)
    }
}
