//! Rekomi's domain: the centre of the hexagon. One folder per capability, each holding its
//! model, pure rules, use cases and the slice of the storage port it needs; `kernel` holds
//! what they share. No I/O crate is a dependency here: storage, Stripe, HTTP and the runtime
//! live in the adapters. See docs/architecture.md for the map.

pub mod kernel;

pub mod affiliates;
pub mod audit;
pub mod conversions;
pub mod coupons;
pub mod jobs;
pub mod orgs;
pub mod outbound;
pub mod ports;
pub mod programs;
pub mod services;
pub mod stripe_inbox;

// Paths of the layout before capability modules, kept while the adapters move to the new ones.
pub use affiliates as affiliate;
pub use conversions as conversion;
pub use conversions::attribution;
pub use conversions::commission;
pub use coupons as coupon;
pub use kernel::{actor, error, ids, money, page, plan, signature};
pub use orgs as org;
pub use stripe_inbox as inbox;
/// The old `program` path: the programs capability and the shared text rules.
pub mod program {
    pub use crate::kernel::text::*;
    pub use crate::programs::*;
}
/// The old `usecases` path.
pub mod usecases {
    pub use crate::affiliates::{AffiliatePatch, AffiliateView, BulkAction, BulkOutcome, NewAffiliate};
    pub use crate::conversions::{RecruitSummary, EXPORT_MAX_ROWS};
    pub use crate::coupons::{CodeView, PromoCodeQuery, PromoCodeResult, ReconcileReport};
    pub use crate::orgs::{BillingState, NewOrganization};
    pub use crate::outbound::outbox;
    pub use crate::outbound::{
        DeliveryReport, WebhookDeliveries, WebhookEndpointPatch, DELIVERY_BATCH, DELIVERY_LEASE, DELIVERY_LEASE_RENEWAL,
        MAX_WEBHOOK_URL_LEN, SEND_BUDGET_SECS,
    };
    pub use crate::services::{BrandContext, Services};
    pub use crate::stripe_inbox::{
        IngestOutcome, StripeInbox, INBOX_BATCH, INBOX_LEASE, INBOX_LEASE_RENEWAL, INBOX_MAX_ATTEMPTS, INBOX_RETRY,
    };
}
