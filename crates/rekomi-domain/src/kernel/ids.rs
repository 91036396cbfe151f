//! Typed identifiers. Every entity id is a UUID (v7, time-ordered, so keyset pagination by id
//! follows creation order) wrapped in its own type so ids of different entities cannot be mixed.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! entity_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps an existing UUID (from storage or a parsed path segment).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }
    };
}

entity_id!(/// An organization (tenant).
    OrgId);
entity_id!(/// An API key record (never the secret).
    ApiKeyId);
entity_id!(/// An affiliate program (campaign).
    ProgramId);
entity_id!(/// An affiliate's membership in one program.
    AffiliateId);
entity_id!(/// A tracking link of an affiliate.
    LinkId);
entity_id!(/// A campaign coupon (maps to a Stripe coupon).
    CampaignCouponId);
entity_id!(/// An affiliate coupon (maps to a Stripe promotion code).
    AffiliateCouponId);
entity_id!(/// An audit-log entry.
    AuditId);
entity_id!(/// A conversion (a credited sale or lead).
    ConversionId);
entity_id!(/// A commission ledger entry of a conversion.
    LedgerEventId);
entity_id!(/// An outbound webhook endpoint.
    WebhookEndpointId);
entity_id!(/// An outbound event (outbox row).
    OutboxEventId);
entity_id!(/// One delivery of an outbound event to one endpoint.
    DeliveryId);
entity_id!(/// A server-to-server signing secret (never the secret itself).
    TrackingSecretId);
entity_id!(/// A payout: one payment to one affiliate in one currency.
    PayoutId);
entity_id!(/// A payout's line: the ledger entry it pays.
    PayoutLineItemId);
