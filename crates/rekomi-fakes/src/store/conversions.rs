//! The fake store's slice for conversions and their ledger: the domain's `ConversionRepo` over
//! the `processed_sources`, `conversions` and `ledger` tables of `State`, with the key that
//! allows one sale per subscription, the not-own-parent check and the foreign keys.

use rekomi_domain::conversions::{Conversion, ConversionFilter, ConversionRepo, ConversionStatus, ConversionType, LedgerEvent, LedgerKind};
use rekomi_domain::kernel::ids::{AffiliateId, ConversionId, OrgId};
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::kernel::stripe_ids::{StripeCustomerId, StripePaymentRef, StripeSubscriptionId};
use rekomi_domain::ports::store::{constraints, StoreError};
use time::OffsetDateTime;

use super::{check_violation, conflict, limit_of, page_of, references, State};

/// Foreign-key names of these tables in the migrations.
mod foreign_keys {
    pub const PROCESSED_SOURCE_ORG: &str = "processed_sources_org_id_fkey";
    pub const CONVERSION_ORG: &str = "conversions_org_id_fkey";
    pub const CONVERSION_PROGRAM: &str = "conversions_program_fkey";
    pub const CONVERSION_AFFILIATE: &str = "conversions_affiliate_fkey";
    pub const CONVERSION_AFFILIATE_COUPON: &str = "conversions_affiliate_coupon_fkey";
    pub const CONVERSION_PARENT: &str = "conversions_parent_fkey";
    pub const LEDGER_ORG: &str = "ledger_events_org_id_fkey";
    pub const LEDGER_CONVERSION: &str = "ledger_events_conversion_fkey";
}

/// CHECK constraint names of the migrations that the domain types cannot rule out.
mod checks {
    pub const CONVERSION_NOT_OWN_PARENT: &str = "conversions_not_own_parent_check";
}

impl State {
    fn has_conversion(&self, org: OrgId, id: ConversionId) -> bool {
        self.conversions.get(&id).is_some_and(|c| c.org_id == org)
    }

    /// The checks and foreign keys of a conversion row, in the order PostgreSQL applies them
    /// (CHECK constraints before the foreign-key triggers).
    fn check_conversion(&self, c: &Conversion) -> Result<(), StoreError> {
        if c.parent_conversion_id == Some(c.id) {
            return Err(check_violation(checks::CONVERSION_NOT_OWN_PARENT));
        }
        references(&[
            (self.has_org(c.org_id), foreign_keys::CONVERSION_ORG),
            (self.has_program(c.org_id, c.program_id), foreign_keys::CONVERSION_PROGRAM),
            (self.has_affiliate(c.org_id, c.affiliate_id), foreign_keys::CONVERSION_AFFILIATE),
            (c.affiliate_coupon_id.is_none_or(|id| self.has_affiliate_coupon(c.org_id, id)), foreign_keys::CONVERSION_AFFILIATE_COUPON),
            (c.parent_conversion_id.is_none_or(|id| self.has_conversion(c.org_id, id)), foreign_keys::CONVERSION_PARENT),
        ])
    }

    /// Non-override conversions of the organization, the most recent (by creation, then id)
    /// of those `keep` accepts.
    fn latest_conversion(&self, org: OrgId, keep: impl Fn(&Conversion) -> bool) -> Option<&Conversion> {
        self.conversions
            .values()
            .filter(|c| c.org_id == org && c.parent_conversion_id.is_none() && keep(c))
            .max_by_key(|c| (c.created_at, c.id))
    }
}

impl ConversionRepo for State {
    fn claim_source(&mut self, org: OrgId, source: &str, at: OffsetDateTime) -> Result<bool, StoreError> {
        let key = (org, source.to_owned());
        if self.processed_sources.contains_key(&key) {
            return Ok(false);
        }
        references(&[(self.has_org(org), foreign_keys::PROCESSED_SOURCE_ORG)])?;
        self.processed_sources.insert(key, at);
        Ok(true)
    }

    fn source_seen(&mut self, org: OrgId, source: &str) -> Result<bool, StoreError> {
        Ok(self.processed_sources.contains_key(&(org, source.to_owned())))
    }

    fn insert_conversion(&mut self, conversion: &Conversion) -> Result<(), StoreError> {
        // PostgreSQL checks CHECK constraints before the primary key, and both before the
        // foreign keys (check_conversion repeats the check harmlessly).
        if conversion.parent_conversion_id == Some(conversion.id) {
            return Err(check_violation(checks::CONVERSION_NOT_OWN_PARENT));
        }
        if self.conversions.contains_key(&conversion.id) {
            return Err(conflict("conversions_pkey"));
        }
        self.check_conversion(conversion)?;
        let is_sale =
            |c: &Conversion| c.parent_conversion_id.is_none() && matches!(c.kind, ConversionType::OneTime | ConversionType::Recurring);
        if is_sale(conversion) && conversion.stripe_subscription_id.is_some() {
            let taken = self
                .conversions
                .values()
                .any(|c| c.org_id == conversion.org_id && is_sale(c) && c.stripe_subscription_id == conversion.stripe_subscription_id);
            if taken {
                return Err(conflict(constraints::SUBSCRIPTION_SALE));
            }
        }
        self.conversions.insert(conversion.id, conversion.clone());
        Ok(())
    }

    fn update_conversion(&mut self, conversion: &Conversion) -> Result<(), StoreError> {
        if !self.has_conversion(conversion.org_id, conversion.id) {
            return Ok(());
        }
        self.check_conversion(conversion)?;
        self.conversions.insert(conversion.id, conversion.clone());
        Ok(())
    }

    fn conversion(&mut self, org: OrgId, id: ConversionId) -> Result<Option<Conversion>, StoreError> {
        Ok(self.conversions.get(&id).filter(|c| c.org_id == org).cloned())
    }

    fn sale_conversion_of_subscription(
        &mut self,
        org: OrgId,
        subscription_id: &StripeSubscriptionId,
    ) -> Result<Option<Conversion>, StoreError> {
        Ok(self
            .latest_conversion(org, |c| {
                matches!(c.kind, ConversionType::OneTime | ConversionType::Recurring)
                    && c.stripe_subscription_id.as_ref() == Some(subscription_id)
            })
            .cloned())
    }

    fn conversion_of_invoice(&mut self, org: OrgId, payment: &StripePaymentRef) -> Result<Option<Conversion>, StoreError> {
        let by_ledger: Vec<ConversionId> = self
            .ledger
            .values()
            .filter(|e| {
                e.org_id == org
                    && matches!(e.kind, LedgerKind::Initial | LedgerKind::Renewal)
                    && e.stripe_invoice_id.as_ref() == Some(payment)
            })
            .map(|e| e.conversion_id)
            .collect();
        Ok(self.latest_conversion(org, |c| by_ledger.contains(&c.id) || c.external_event_id.as_deref() == Some(payment.as_str())).cloned())
    }

    fn overrides_of(&mut self, org: OrgId, parent: ConversionId) -> Result<Vec<Conversion>, StoreError> {
        Ok(self.conversions.values().filter(|c| c.org_id == org && c.parent_conversion_id == Some(parent)).cloned().collect())
    }

    fn affiliate_of_customer(
        &mut self,
        org: OrgId,
        customer_id: Option<&StripeCustomerId>,
        email: Option<&str>,
    ) -> Result<Option<AffiliateId>, StoreError> {
        let email = email.map(str::to_lowercase);
        Ok(self
            .latest_conversion(org, |c| {
                c.status != ConversionStatus::Denied
                    && !is_lead_signup(c)
                    && (customer_id.is_some_and(|id| c.stripe_customer_id.as_ref() == Some(id))
                        || email.as_deref().is_some_and(|e| c.customer_email.as_deref().is_some_and(|mine| mine.to_lowercase() == e)))
            })
            .map(|c| c.affiliate_id))
    }

    fn lead_signup_by_email(&mut self, org: OrgId, email: &str) -> Result<Option<Conversion>, StoreError> {
        let email = email.to_lowercase();
        Ok(self
            .latest_conversion(org, |c| {
                c.status != ConversionStatus::Denied
                    && is_lead_signup(c)
                    && c.customer_email.as_deref().is_some_and(|e| e.to_lowercase() == email)
            })
            .cloned())
    }

    fn orgs_of_stripe_customer(&mut self, customer_id: &StripeCustomerId) -> Result<Vec<OrgId>, StoreError> {
        let mut latest: Vec<(OrgId, time::OffsetDateTime)> = Vec::new();
        for c in self.conversions.values().filter(|c| c.stripe_customer_id.as_ref() == Some(customer_id)) {
            match latest.iter_mut().find(|(org, _)| *org == c.org_id) {
                Some((_, at)) => *at = (*at).max(c.created_at),
                None => latest.push((c.org_id, c.created_at)),
            }
        }
        latest.sort_by_key(|entry| std::cmp::Reverse(entry.1));
        Ok(latest.into_iter().take(2).map(|(org, _)| org).collect())
    }

    fn orgs_of_payment(&mut self, payment: &StripePaymentRef) -> Result<Vec<OrgId>, StoreError> {
        let mut orgs: Vec<OrgId> = Vec::new();
        for e in self.ledger.values() {
            let sale = matches!(e.kind, LedgerKind::Initial | LedgerKind::Renewal);
            if sale && e.stripe_invoice_id.as_ref() == Some(payment) && !orgs.contains(&e.org_id) {
                orgs.push(e.org_id);
            }
        }
        orgs.truncate(2);
        Ok(orgs)
    }

    fn list_conversions(&mut self, org: OrgId, filter: &ConversionFilter, page: &PageRequest) -> Result<Vec<Conversion>, StoreError> {
        Ok(page_of(&self.conversions, page, ConversionId::as_uuid, |c| {
            let matches = c.org_id == org
                && filter.affiliate_id.is_none_or(|a| c.affiliate_id == a)
                && filter.program_id.is_none_or(|p| c.program_id == p)
                && filter.status.is_none_or(|s| c.status == s)
                && filter.since.is_none_or(|since| c.created_at >= since)
                && filter.until.is_none_or(|until| c.created_at < until);
            matches.then(|| c.clone())
        }))
    }

    fn conversions_due_for_approval(&mut self, now: OffsetDateTime, limit: i64) -> Result<Vec<Conversion>, StoreError> {
        let mut due: Vec<Conversion> =
            self.conversions.values().filter(|c| c.status == ConversionStatus::Pending && c.approve_after <= now).cloned().collect();
        due.sort_by_key(|c| (c.approve_after, c.id));
        due.truncate(limit_of(limit));
        Ok(due)
    }

    fn insert_ledger_event(&mut self, event: &LedgerEvent) -> Result<(), StoreError> {
        if self.ledger.contains_key(&event.id) {
            return Err(conflict("ledger_events_pkey"));
        }
        references(&[
            (self.has_org(event.org_id), foreign_keys::LEDGER_ORG),
            (self.has_conversion(event.org_id, event.conversion_id), foreign_keys::LEDGER_CONVERSION),
        ])?;
        self.ledger.insert(event.id, event.clone());
        Ok(())
    }

    fn ledger_of(&mut self, org: OrgId, conversion: ConversionId) -> Result<Vec<LedgerEvent>, StoreError> {
        let mut entries: Vec<LedgerEvent> =
            self.ledger.values().filter(|e| e.org_id == org && e.conversion_id == conversion).cloned().collect();
        entries.sort_by_key(|e| (e.occurred_at, e.id));
        Ok(entries)
    }
}

/// A lead recorded by the loader or a brand's server: no Stripe customer.
fn is_lead_signup(c: &Conversion) -> bool {
    c.kind == ConversionType::LeadReward && c.stripe_customer_id.is_none()
}
