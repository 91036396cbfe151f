//! The fake store's slice for traffic: the domain's `TrafficRepo` over the `clicks` and
//! `visitor_salts` tables of `State`, the organizations' tracking settings, and links looked up
//! across organizations.

use rekomi_domain::kernel::ids::{OrgId, ProgramId};
use rekomi_domain::ports::store::StoreError;
use rekomi_domain::programs::CommissionModel;
use rekomi_domain::traffic::params::CustomParams;
use rekomi_domain::traffic::{Click, ClickId, CpcClicks, LinkTarget, PageScope, TrafficRepo, WebTrackingSettings};
use time::{Date, OffsetDateTime};

use super::State;

impl TrafficRepo for State {
    fn link_targets_by_slug(&mut self, slug: &str) -> Result<Vec<LinkTarget>, StoreError> {
        let slug = slug.to_lowercase();
        let mut links: Vec<_> = self.links.values().filter(|l| l.slug.to_lowercase() == slug).collect();
        links.sort_by_key(|l| (l.created_at, l.id));
        Ok(links
            .into_iter()
            .filter_map(|link| {
                let affiliate = self.affiliates.get(&link.affiliate_id)?.live()?;
                let program = self.programs.get(&affiliate.program_id)?;
                Some(LinkTarget {
                    org_id: link.org_id,
                    program_id: program.id,
                    affiliate_id: affiliate.id,
                    link_id: link.id,
                    slug: link.slug.clone(),
                    affiliate_status: affiliate.status,
                    program_live: program.is_active && !program.is_archived(),
                    landing_url: program.landing_url.clone(),
                    cookie_window_days: program.cookie_window_days,
                    attribution_model: program.attribution_model,
                    commission_model: program.default_commission_model,
                })
            })
            .collect())
    }

    fn insert_clicks(&mut self, clicks: &[Click]) -> Result<u64, StoreError> {
        let mut written = 0;
        for click in clicks {
            if let std::collections::btree_map::Entry::Vacant(slot) = self.clicks.entry(click.id) {
                slot.insert(click.clone());
                written += 1;
            }
        }
        Ok(written)
    }

    fn click(&mut self, org: OrgId, id: ClickId) -> Result<Option<Click>, StoreError> {
        Ok(self.clicks.get(&id).filter(|c| c.org_id == org).cloned())
    }

    fn visitor_salt(&mut self, day: Date, candidate: &str) -> Result<String, StoreError> {
        Ok(self.visitor_salts.entry(day).or_insert_with(|| candidate.to_owned()).clone())
    }

    fn forget_visitor_salts_before(&mut self, day: Date) -> Result<u64, StoreError> {
        let before = self.visitor_salts.len();
        self.visitor_salts.retain(|d, _| *d >= day);
        Ok((before - self.visitor_salts.len()) as u64)
    }

    fn cpc_click_counts(&mut self, day: Date) -> Result<Vec<CpcClicks>, StoreError> {
        let mut counts: Vec<CpcClicks> = Vec::new();
        let paid = self.clicks.values().filter(|c| {
            c.clicked_at.date() == day
                && c.is_unique
                && !c.is_bot
                && self
                    .programs
                    .get(&c.program_id)
                    .is_some_and(|p| p.org_id == c.org_id && p.default_commission_model == CommissionModel::Cpc)
        });
        for c in paid {
            match counts.iter_mut().find(|n| n.org_id == c.org_id && n.program_id == c.program_id && n.affiliate_id == c.affiliate_id) {
                Some(n) => n.clicks += 1,
                None => counts.push(CpcClicks { org_id: c.org_id, program_id: c.program_id, affiliate_id: c.affiliate_id, clicks: 1 }),
            }
        }
        counts.sort_by_key(|n| (n.org_id, n.affiliate_id));
        Ok(counts)
    }

    fn web_tracking_settings(&mut self, org: OrgId) -> Result<Option<WebTrackingSettings>, StoreError> {
        Ok(self.web_tracking_settings.get(&org).cloned())
    }

    fn set_attribution_params(&mut self, org: OrgId, custom: Option<&CustomParams>, now: OffsetDateTime) -> Result<(), StoreError> {
        let settings = self.settings_row(org, now)?;
        settings.custom_params = custom.cloned();
        settings.updated_at = now;
        Ok(())
    }

    fn claim_pixel_key(&mut self, org: OrgId, candidate: &str, now: OffsetDateTime) -> Result<String, StoreError> {
        let settings = self.settings_row(org, now)?;
        Ok(settings.pixel_public_key.get_or_insert_with(|| candidate.to_owned()).clone())
    }

    fn page_scope(&mut self, program: ProgramId) -> Result<Option<PageScope>, StoreError> {
        let Some(p) = self.programs.get(&program).filter(|p| !p.is_archived()) else { return Ok(None) };
        let custom_params = self.web_tracking_settings.get(&p.org_id).and_then(|s| s.custom_params.clone());
        Ok(Some(PageScope { org_id: p.org_id, custom_params }))
    }
}

impl State {
    /// `org`'s settings row, created with the defaults when it has none.
    fn settings_row(&mut self, org: OrgId, now: OffsetDateTime) -> Result<&mut WebTrackingSettings, StoreError> {
        if !self.orgs.contains_key(&org) {
            return Err(StoreError::Conflict { constraint: "org_web_tracking_settings_org_id_fkey".to_owned() });
        }
        Ok(self.web_tracking_settings.entry(org).or_insert_with(|| WebTrackingSettings::defaults(org, now)))
    }
}
