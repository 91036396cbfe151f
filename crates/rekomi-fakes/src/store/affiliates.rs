//! The fake store's slice for affiliates, their links and recruitment: the domain's
//! `AffiliateRepo` over the `affiliates`, `links` and `recruitments` tables of `State`, with
//! the row types those tables need beyond the domain entities (the soft-deletion time, the
//! recruiter).

use rekomi_domain::affiliates::{Affiliate, AffiliateFilter, AffiliateLink, AffiliateRepo, Email};
use rekomi_domain::kernel::ids::{AffiliateId, OrgId};
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::ports::store::{constraints, StoreError};
use time::OffsetDateTime;

use super::{check_violation, conflict, page_of, references, State};

/// Foreign-key names of these tables in the migrations.
mod foreign_keys {
    pub const AFFILIATE_ORG: &str = "affiliates_org_id_fkey";
    pub const AFFILIATE_PROGRAM: &str = "affiliates_program_fkey";
    pub const LINK_ORG: &str = "affiliate_links_org_id_fkey";
    pub const LINK_AFFILIATE: &str = "affiliate_links_affiliate_fkey";
    pub const RECRUITMENT_ORG: &str = "affiliate_recruitments_org_id_fkey";
    pub const RECRUITMENT_AFFILIATE: &str = "affiliate_recruitments_affiliate_fkey";
    pub const RECRUITMENT_RECRUITER: &str = "affiliate_recruitments_recruiter_fkey";
}

/// CHECK constraint names of the migrations that the domain types cannot rule out.
mod checks {
    pub const RECRUITMENT_NOT_SELF: &str = "affiliate_recruitments_not_self_check";
}

/// Who recruited an affiliate.
#[derive(Clone, Copy)]
pub(super) struct Recruitment {
    org_id: OrgId,
    recruiter_id: AffiliateId,
}

/// An affiliate and its soft-deletion time (the domain entity does not carry it).
#[derive(Clone)]
pub(super) struct AffiliateRow {
    affiliate: Affiliate,
    deleted_at: Option<OffsetDateTime>,
}

impl AffiliateRow {
    pub(super) fn live(&self) -> Option<&Affiliate> {
        self.deleted_at.is_none().then_some(&self.affiliate)
    }
}

impl State {
    /// Soft-deleted affiliates still exist for foreign keys.
    pub(super) fn has_affiliate(&self, org: OrgId, id: AffiliateId) -> bool {
        self.affiliates.get(&id).is_some_and(|a| a.affiliate.org_id == org)
    }

    fn check_affiliate_refs(&self, a: &Affiliate) -> Result<(), StoreError> {
        references(&[
            (self.has_org(a.org_id), foreign_keys::AFFILIATE_ORG),
            (self.has_program(a.org_id, a.program_id), foreign_keys::AFFILIATE_PROGRAM),
        ])
    }

    fn affiliate_email_taken(&self, affiliate: &Affiliate) -> bool {
        self.affiliates
            .values()
            .filter_map(AffiliateRow::live)
            .any(|a| a.id != affiliate.id && a.program_id == affiliate.program_id && a.email == affiliate.email)
    }
}

impl AffiliateRepo for State {
    fn insert_affiliate(&mut self, affiliate: &Affiliate) -> Result<(), StoreError> {
        if self.affiliates.contains_key(&affiliate.id) {
            return Err(conflict("affiliates_pkey"));
        }
        if self.affiliate_email_taken(affiliate) {
            return Err(conflict(constraints::AFFILIATE_EMAIL));
        }
        self.check_affiliate_refs(affiliate)?;
        self.affiliates.insert(affiliate.id, AffiliateRow { affiliate: affiliate.clone(), deleted_at: None });
        Ok(())
    }

    fn update_affiliate(&mut self, affiliate: &Affiliate) -> Result<(), StoreError> {
        let updatable = self.affiliates.get(&affiliate.id).and_then(AffiliateRow::live).is_some_and(|a| a.org_id == affiliate.org_id);
        if !updatable {
            return Ok(());
        }
        if self.affiliate_email_taken(affiliate) {
            return Err(conflict(constraints::AFFILIATE_EMAIL));
        }
        self.check_affiliate_refs(affiliate)?;
        if let Some(row) = self.affiliates.get_mut(&affiliate.id) {
            row.affiliate = affiliate.clone();
        }
        Ok(())
    }

    fn delete_affiliate(&mut self, org: OrgId, id: AffiliateId, now: OffsetDateTime) -> Result<bool, StoreError> {
        match self.affiliates.get_mut(&id) {
            Some(row) if row.affiliate.org_id == org && row.deleted_at.is_none() => {
                row.deleted_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn affiliate(&mut self, org: OrgId, id: AffiliateId) -> Result<Option<Affiliate>, StoreError> {
        Ok(self.affiliates.get(&id).and_then(AffiliateRow::live).filter(|a| a.org_id == org).cloned())
    }

    fn list_affiliates(&mut self, org: OrgId, filter: &AffiliateFilter, page: &PageRequest) -> Result<Vec<Affiliate>, StoreError> {
        let needle = filter.q.as_deref().map(str::to_lowercase);
        Ok(page_of(&self.affiliates, page, AffiliateId::as_uuid, |row| {
            let a = row.live()?;
            let matches = a.org_id == org
                && filter.program_id.is_none_or(|p| a.program_id == p)
                && filter.status.is_none_or(|s| a.status == s)
                && needle.as_deref().is_none_or(|q| {
                    a.email.as_str().to_lowercase().contains(q) || a.full_name.as_deref().is_some_and(|n| n.to_lowercase().contains(q))
                });
            matches.then(|| a.clone())
        }))
    }

    fn affiliates_of_user(&mut self, user_id: &str, email: &Email) -> Result<Vec<Affiliate>, StoreError> {
        Ok(self
            .affiliates
            .values()
            .rev()
            .filter_map(AffiliateRow::live)
            .filter(|a| match &a.user_id {
                Some(linked) => linked == user_id,
                None => a.email == *email,
            })
            .cloned()
            .collect())
    }

    fn insert_link(&mut self, link: &AffiliateLink) -> Result<(), StoreError> {
        if self.links.contains_key(&link.id) {
            return Err(conflict("affiliate_links_pkey"));
        }
        if self.link_slug_taken(link.org_id, &link.slug)? {
            return Err(conflict(constraints::LINK_SLUG));
        }
        references(&[
            (self.has_org(link.org_id), foreign_keys::LINK_ORG),
            (self.has_affiliate(link.org_id, link.affiliate_id), foreign_keys::LINK_AFFILIATE),
        ])?;
        self.links.insert(link.id, link.clone());
        Ok(())
    }

    fn links_of(&mut self, org: OrgId, affiliates: &[AffiliateId]) -> Result<Vec<AffiliateLink>, StoreError> {
        let mut links: Vec<AffiliateLink> =
            self.links.values().filter(|l| l.org_id == org && affiliates.contains(&l.affiliate_id)).cloned().collect();
        // Default links first, then oldest first (the map iterates by id, which sorts by
        // creation time); the sort is stable.
        links.sort_by_key(|l| !l.is_default);
        Ok(links)
    }

    fn affiliate_by_link_slug(&mut self, org: OrgId, slug: &str) -> Result<Option<Affiliate>, StoreError> {
        let slug = slug.to_lowercase();
        let link = self.links.values().find(|l| l.org_id == org && l.slug.to_lowercase() == slug);
        Ok(link.and_then(|l| self.affiliates.get(&l.affiliate_id)).and_then(AffiliateRow::live).filter(|a| a.org_id == org).cloned())
    }

    fn recruiter_of(&mut self, org: OrgId, affiliate: AffiliateId) -> Result<Option<AffiliateId>, StoreError> {
        Ok(self.recruitments.get(&affiliate).filter(|r| r.org_id == org).map(|r| r.recruiter_id))
    }

    fn set_recruiter(&mut self, org: OrgId, affiliate: AffiliateId, recruiter: AffiliateId) -> Result<(), StoreError> {
        if affiliate == recruiter {
            return Err(check_violation(checks::RECRUITMENT_NOT_SELF));
        }
        references(&[
            (self.has_org(org), foreign_keys::RECRUITMENT_ORG),
            (self.has_affiliate(org, affiliate), foreign_keys::RECRUITMENT_AFFILIATE),
            (self.has_affiliate(org, recruiter), foreign_keys::RECRUITMENT_RECRUITER),
        ])?;
        self.recruitments.insert(affiliate, Recruitment { org_id: org, recruiter_id: recruiter });
        Ok(())
    }

    fn recruits_of(&mut self, org: OrgId, recruiter: AffiliateId) -> Result<Vec<Affiliate>, StoreError> {
        // Keyed by the recruit's id, so oldest first.
        Ok(self
            .recruitments
            .iter()
            .filter(|(_, r)| r.org_id == org && r.recruiter_id == recruiter)
            .filter_map(|(id, _)| self.affiliates.get(id).and_then(AffiliateRow::live))
            .cloned()
            .collect())
    }

    fn link_slug_taken(&mut self, org: OrgId, slug: &str) -> Result<bool, StoreError> {
        Ok(self.links.values().any(|l| l.org_id == org && l.slug.to_lowercase() == slug.to_lowercase()))
    }
}
