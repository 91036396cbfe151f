//! [`ClickTracker`]: the use cases of traffic. A Short link is followed, or a brand's page
//! visited with a referral parameter, and a click recorded, without a transaction: the link
//! and the program's parameters are read from short-lived caches, the visitor's uniqueness from
//! an in-process window, the day's salt from a cache, and the click goes to the [`ClickSink`].
//! Only a cache miss touches the store.

use std::sync::{Arc, Mutex, PoisonError};

use time::{Date, Duration, OffsetDateTime};

use crate::kernel::error::DomainError;
use crate::kernel::ids::{OrgId, ProgramId};
use crate::kernel::ttl_cache::TtlCache;
use crate::programs::is_slug;
use crate::programs::AttributionModel;
use crate::services::Services;
use crate::traffic::links::{self, SUB_ID_PARAMS};
use crate::traffic::model::{Click, ClickId, DeviceClass, LinkTarget, PageScope, Visit};
use crate::traffic::params::{effective_order, referral_in, DEFAULT_PARAMS};
use crate::traffic::store::ClickSink;
use crate::traffic::visitors::{visitor_hash, UniqueWindow};

/// How long the tracker trusts what it read of a link, how many visitors its uniqueness window
/// remembers, and how many slugs it caches.
#[derive(Clone, Copy, Debug)]
pub struct TrackerConfig {
    /// A paused or banned affiliate's links stop being followed within this long.
    pub link_cache_ttl: Duration,
    /// Slugs cached (known and unknown ones), at most.
    pub link_cache_capacity: usize,
    /// Visitors remembered for the 30-minute uniqueness window, at most.
    pub unique_capacity: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self { link_cache_ttl: Duration::seconds(5), link_cache_capacity: 100_000, unique_capacity: 1_000_000 }
    }
}

/// Where to send the visitor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// The `Location`.
    pub location: String,
    /// The click recorded, unless the sink shed it.
    pub click: Option<ClickId>,
}

/// A click recorded from a page visit, and what the loader keeps of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageClick {
    /// The click, for `client_reference_id` or `metadata.rekomi_ref`.
    pub click: ClickId,
    /// The link's slug.
    pub slug: String,
    /// The link's program.
    pub program_id: ProgramId,
    /// How long the referral cookie lives.
    pub cookie_window_days: u16,
    /// Whether a later referral replaces the cookie (`LastTouch`) or not.
    pub attribution_model: AttributionModel,
}

fn page_click(click: ClickId, target: LinkTarget) -> PageClick {
    PageClick {
        click,
        slug: target.slug,
        program_id: target.program_id,
        cookie_window_days: target.cookie_window_days,
        attribution_model: target.attribution_model,
    }
}

/// Records clicks and follows links. One per process, shared by every request.
pub struct ClickTracker {
    services: Services,
    sink: Arc<dyn ClickSink>,
    config: TrackerConfig,
    links: TtlCache<String, Vec<LinkTarget>>,
    scopes: TtlCache<ProgramId, Option<PageScope>>,
    unique: Mutex<UniqueWindow>,
    salt: Mutex<Option<(Date, String)>>,
}

impl std::fmt::Debug for ClickTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickTracker").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Days a visitor salt is kept: today's and yesterday's (a click just after midnight may still
/// be compared with one just before).
const SALT_DAYS_KEPT: i64 = 2;

impl ClickTracker {
    /// A tracker writing through `sink`.
    pub fn new(services: Services, sink: Arc<dyn ClickSink>, config: TrackerConfig) -> Self {
        Self {
            services,
            sink,
            config,
            links: TtlCache::new(config.link_cache_ttl, config.link_cache_capacity),
            scopes: TtlCache::new(config.link_cache_ttl, config.link_cache_capacity),
            unique: Mutex::new(UniqueWindow::new(config.unique_capacity)),
            salt: Mutex::new(None),
        }
    }

    /// `GET /r/{slug}`: records a click on the link and says where to send the visitor: the
    /// program's landing URL with `via=<slug>` and `rk_click=<click id>` appended and the
    /// visitor's other parameters kept. When the sink sheds the click the visitor still goes
    /// there, with the slug alone (the referral survives; the click is counted as dropped).
    ///
    /// # Errors
    /// `NotFound("link_not_found")` for an unknown slug or one whose affiliate is not approved
    /// or whose program is paused or archived (nothing is recorded);
    /// `NotFound("landing_url_not_set")` when the program has no landing URL; store failures
    /// on a cache miss.
    pub async fn follow_short_link(&self, slug: &str, visit: Visit) -> Result<Redirect, DomainError> {
        // Slugs are compared without case; the cache is keyed by the lower-case form.
        let target = self.trackable_target(&slug.to_ascii_lowercase(), None).await?.ok_or(DomainError::NotFound("link_not_found"))?;
        let landing = target.landing_url.clone().ok_or(DomainError::NotFound("landing_url_not_set"))?;
        let now = self.services.now();
        let mut click = self.click(&target, &visit, now).await?;
        click.landing_url = Some(landing.as_str().to_owned());
        let id = click.id;
        let recorded = self.sink.submit(click).is_ok();
        let click = recorded.then_some(id);
        Ok(Redirect { location: links::redirect_url(&landing, &target.slug, click, &visit.params), click })
    }

    /// A visit to a brand's page (the loader's `POST /api/v1/r/click`, or the pixel): records
    /// a click when the page's query names a referral through an attribution parameter. With
    /// `program`, the program's organization's effective parameters are looked for and only its
    /// links count; without (the pixel with no program), the defaults, in any organization.
    /// `None` when there is nothing to record: no parameter, an unknown or untracked link, an
    /// unknown or archived program, or a full sink.
    ///
    /// # Errors
    /// Store failures on a cache miss.
    pub async fn record_page_visit(&self, program: Option<ProgramId>, visit: Visit) -> Result<Option<PageClick>, DomainError> {
        let (org, order) = match program {
            Some(id) => match self.scope(id).await? {
                Some(scope) => (Some(scope.org_id), effective_order(scope.custom_params.as_ref())),
                None => return Ok(None),
            },
            None => (None, DEFAULT_PARAMS.iter().map(|p| (*p).to_owned()).collect()),
        };
        if let Some(adopted) = self.short_link_click(org, &visit).await? {
            return Ok(Some(adopted));
        }
        let Some(slug) = referral_in(&order, &visit.params).map(str::to_ascii_lowercase) else { return Ok(None) };
        let Some(target) = self.trackable_target(&slug, org).await? else { return Ok(None) };
        let click = self.click(&target, &visit, self.services.now()).await?;
        let id = click.id;
        if self.sink.submit(click).is_err() {
            return Ok(None);
        }
        Ok(Some(page_click(id, target)))
    }

    /// The click a Short link already recorded for this visit: the landing page of a `302`
    /// carries `via=<slug>&rk_click=<id>`, and counting the visit again would make one click
    /// two. The click must be stored in `org` on the link of that slug; otherwise (a forged
    /// or stale id, a click still in the sink's buffer) the visit is judged like any other.
    /// Only `via`, which the redirect sets, names the link here, so a parameter the visitor
    /// added to the Short link cannot redirect the referral.
    async fn short_link_click(&self, org: Option<OrgId>, visit: &Visit) -> Result<Option<PageClick>, DomainError> {
        let value = |name: &str| visit.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim());
        let (Some(org), Some(id), Some(slug)) = (org, value(links::CLICK_PARAM).and_then(ClickId::parse), value(links::VIA)) else {
            return Ok(None);
        };
        let Some(target) = self.trackable_target(&slug.to_ascii_lowercase(), Some(org)).await? else { return Ok(None) };
        let stored = self.services.tx(move |tx| Ok(tx.click(org, id)?)).await?;
        Ok(stored.filter(|c| c.link_id == target.link_id).map(|c| page_click(c.id, target)))
    }

    /// The link of `slug` (in `org`, or the oldest anywhere) when clicks on it are recorded.
    async fn trackable_target(&self, slug: &str, org: Option<OrgId>) -> Result<Option<LinkTarget>, DomainError> {
        if !is_slug(slug, 1, 64) {
            return Ok(None);
        }
        let targets = self.targets(slug).await?;
        let target = match org {
            Some(org) => targets.into_iter().find(|t| t.org_id == org),
            None => targets.into_iter().next(),
        };
        Ok(target.filter(LinkTarget::is_trackable))
    }

    /// Every link of `slug`, from the cache when it was read less than the TTL ago.
    async fn targets(&self, slug: &str) -> Result<Vec<LinkTarget>, DomainError> {
        let now = self.services.now();
        if let Some(found) = self.links.get(&slug.to_owned(), now) {
            return Ok(found);
        }
        let owned = slug.to_owned();
        let found = self.services.tx(move |tx| Ok(tx.link_targets_by_slug(&owned)?)).await?;
        self.links.put(slug.to_owned(), found.clone(), now);
        Ok(found)
    }

    /// The organization and parameters of `program`, cached like links.
    async fn scope(&self, program: ProgramId) -> Result<Option<PageScope>, DomainError> {
        let now = self.services.now();
        if let Some(found) = self.scopes.get(&program, now) {
            return Ok(found);
        }
        let found = self.services.tx(move |tx| Ok(tx.page_scope(program)?)).await?;
        self.scopes.put(program, found.clone(), now);
        Ok(found)
    }

    /// A click on `target` from `visit` at `now`.
    async fn click(&self, target: &LinkTarget, visit: &Visit, now: OffsetDateTime) -> Result<Click, DomainError> {
        let salt = self.salt(now.date()).await?;
        let visitor = visitor_hash(&salt, visit.ip, &visit.user_agent);
        let is_unique = self.unique.lock().unwrap_or_else(PoisonError::into_inner).observe(&visitor, target.link_id, now);
        Ok(Click {
            id: ClickId::from_uuid(self.services.new_uuid(now)),
            org_id: target.org_id,
            program_id: target.program_id,
            affiliate_id: target.affiliate_id,
            link_id: target.link_id,
            clicked_at: now,
            landing_url: visit.page_url.clone(),
            referrer_host: links::referrer_host(visit.referrer.as_deref()),
            utm_source: links::param(&visit.params, &["utm_source"]),
            utm_medium: links::param(&visit.params, &["utm_medium"]),
            utm_campaign: links::param(&visit.params, &["utm_campaign"]),
            sub_id: links::param(&visit.params, SUB_ID_PARAMS),
            country: visit.country.clone(),
            device: visit.device,
            visitor_hash: visitor,
            is_unique,
            is_bot: visit.device == DeviceClass::Bot,
        })
    }

    /// The salt of `day`, agreed with every other process through the store; salts older than
    /// two days are deleted when a new day starts.
    async fn salt(&self, day: Date) -> Result<String, DomainError> {
        if let Some((d, salt)) = self.salt.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            if *d == day {
                return Ok(salt.clone());
            }
        }
        let mut bytes = [0u8; 16];
        self.services.entropy.fill(&mut bytes);
        let candidate = hex::encode(bytes);
        let salt = self
            .services
            .tx(move |tx| {
                let salt = tx.visitor_salt(day, &candidate)?;
                tx.forget_visitor_salts_before(day - Duration::days(SALT_DAYS_KEPT - 1))?;
                Ok(salt)
            })
            .await?;
        *self.salt.lock().unwrap_or_else(PoisonError::into_inner) = Some((day, salt.clone()));
        Ok(salt)
    }
}
