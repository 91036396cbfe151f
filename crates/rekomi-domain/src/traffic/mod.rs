//! Traffic: referral links and the clicks on them. A click is recorded when a visitor follows a
//! Short link (`/r/{slug}`) or lands on a brand's page carrying an attribution parameter; its id
//! (`rkc_…`) travels to Stripe as `client_reference_id` or `metadata.rekomi_ref`, and a later sale
//! naming it is credited to the click's affiliate.
//!
//! Clicks arrive far faster than sales, so they are not written in a use-case transaction:
//! [`ClickTracker`] builds each one from a cached view of its link ([`LinkTarget`]) and hands it
//! to a [`ClickSink`], which the storage adapter writes in batches.

pub mod links;
pub mod model;
pub mod params;
pub mod settings;
pub mod store;
pub mod tracker;
pub mod visitors;

pub use model::{Click, ClickId, DeviceClass, LinkTarget, PageScope, Visit, WebTrackingSettings};
pub use params::{CustomParams, ParamsError};
pub use store::{ClickSink, CpcClicks, SinkFull, TrafficRepo};
pub use tracker::{ClickTracker, PageClick, Redirect, TrackerConfig};
