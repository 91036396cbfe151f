//! Who is calling: the authenticated principal a use case acts for, and dashboard roles.

use std::str::FromStr;

use crate::kernel::ids::{ApiKeyId, OrgId};
use crate::kernel::plan::Channel;

/// A dashboard role, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Read-only.
    Viewer,
    /// Manages programs and affiliates.
    Manager,
    /// Owns the organization.
    Owner,
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Owner" => Ok(Self::Owner),
            "Manager" => Ok(Self::Manager),
            "Viewer" => Ok(Self::Viewer),
            other => Err(other.to_owned()),
        }
    }
}

/// A brand-side caller, always scoped to one organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrandActor {
    /// An `rk_live_…` API key. API keys are Owner-equivalent for role checks.
    ApiKey {
        /// The key's organization.
        org: OrgId,
        /// The key record.
        key: ApiKeyId,
    },
    /// A dashboard user (JWT).
    User {
        /// The user's organization (`org_id` claim).
        org: OrgId,
        /// The user id (`sub` claim).
        user_id: String,
        /// The user's role.
        role: Role,
    },
}

impl BrandActor {
    /// The organization every query of this caller is scoped to.
    pub fn org(&self) -> OrgId {
        match self {
            Self::ApiKey { org, .. } | Self::User { org, .. } => *org,
        }
    }

    /// How the caller authenticated (plan gates depend on it).
    pub fn channel(&self) -> Channel {
        match self {
            Self::ApiKey { .. } => Channel::ApiKey,
            Self::User { .. } => Channel::Dashboard,
        }
    }

    /// Whether the caller has at least `role`. API keys pass every role check.
    pub fn has_role(&self, role: Role) -> bool {
        match self {
            Self::ApiKey { .. } => true,
            Self::User { role: own, .. } => *own >= role,
        }
    }

    /// The audit-log actor of this caller.
    pub fn audit_actor(&self) -> AuditActor {
        match self {
            Self::ApiKey { key, .. } => AuditActor::ApiKey(key.to_string()),
            Self::User { user_id, .. } => AuditActor::User(user_id.clone()),
        }
    }
}

/// An affiliate-side caller (affiliate JWT): no organization; owns the affiliate rows linked
/// to its user id (or, while unlinked, those with its email).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AffiliateActor {
    /// The affiliate's user id (`sub`).
    pub user_id: String,
    /// The affiliate's email (`email`), lower-cased.
    pub email: String,
}

/// Who performed a mutation, as the audit log records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditActor {
    /// `api_key`, with the key id.
    ApiKey(String),
    /// `user`, with the user id (a brand operator or, for self-minted codes, an affiliate).
    User(String),
    /// `system`: background work and admin commands.
    System,
}

impl AuditActor {
    /// The `actorType` value.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ApiKey(_) => "api_key",
            Self::User(_) => "user",
            Self::System => "system",
        }
    }

    /// The actor's id, when it has one.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::ApiKey(id) | Self::User(id) => Some(id),
            Self::System => None,
        }
    }
}
