//! Plan tiers and the gates that guard API families.
//!
//! The rule (documented in docs/api.md):
//! - An organization whose subscription is `None` or `Canceled` passes no gate.
//! - Dashboard (JWT) calls pass every gate on any live plan, trial included.
//! - API-key calls pass when the organization's tier ranks at or above the gate. A `Trial`
//!   organization that is trialing counts as `Starter` ("trialing orgs are always accepted"
//!   for Starter+ families), never as `Growth`.

use std::fmt;
use std::str::FromStr;

/// The plan an organization is on, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PlanTier {
    /// Free trial.
    Trial,
    /// Starter.
    Starter,
    /// Growth.
    Growth,
    /// Pro.
    Pro,
}

impl PlanTier {
    /// The name as the API shows it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Trial => "Trial",
            Self::Starter => "Starter",
            Self::Growth => "Growth",
            Self::Pro => "Pro",
        }
    }

    /// The most payout grace days the tier allows.
    pub fn payout_grace_days_max(&self) -> u16 {
        match self {
            Self::Trial | Self::Starter | Self::Growth => 30,
            Self::Pro => 90,
        }
    }
}

impl fmt::Display for PlanTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not a plan tier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown plan tier {0:?}")]
pub struct UnknownPlanTier(pub String);

impl FromStr for PlanTier {
    type Err = UnknownPlanTier;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "trial" => Ok(Self::Trial),
            "starter" => Ok(Self::Starter),
            "growth" => Ok(Self::Growth),
            "pro" => Ok(Self::Pro),
            _ => Err(UnknownPlanTier(s.to_owned())),
        }
    }
}

/// The state of the organization's own Rekomi subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubscriptionStatus {
    /// No subscription.
    None,
    /// In a free trial.
    Trialing,
    /// Paid and current.
    Active,
    /// A payment failed; access continues during dunning.
    PastDue,
    /// Ended.
    Canceled,
}

impl SubscriptionStatus {
    /// The name as the API shows it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Trialing => "Trialing",
            Self::Active => "Active",
            Self::PastDue => "PastDue",
            Self::Canceled => "Canceled",
        }
    }

    /// Parses the stored name.
    ///
    /// # Errors
    /// The unknown text, when it names no status.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "None" => Ok(Self::None),
            "Trialing" => Ok(Self::Trialing),
            "Active" => Ok(Self::Active),
            "PastDue" => Ok(Self::PastDue),
            "Canceled" => Ok(Self::Canceled),
            other => Err(other.to_owned()),
        }
    }

    fn is_live(&self) -> bool {
        matches!(self, Self::Trialing | Self::Active | Self::PastDue)
    }
}

/// How a request authenticated, which decides how plan gates apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// `rk_live_…` API key.
    ApiKey,
    /// Dashboard JWT.
    Dashboard,
}

/// A gate refused the call: answered as `402 plan_tier_required`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("this feature needs the {required} plan or higher (current plan: {current})")]
pub struct PlanRequired {
    /// The lowest tier that passes.
    pub required: PlanTier,
    /// The organization's tier.
    pub current: PlanTier,
    /// Whether the organization is in a trial.
    pub trialing: bool,
}

/// Checks a plan gate.
///
/// # Errors
/// [`PlanRequired`] when the organization's plan does not pass `required` on `channel`.
pub fn check_plan(tier: PlanTier, status: SubscriptionStatus, required: PlanTier, channel: Channel) -> Result<(), PlanRequired> {
    let trialing = status == SubscriptionStatus::Trialing;
    let refused = PlanRequired { required, current: tier, trialing };
    if !status.is_live() {
        return Err(refused);
    }
    let passes = match channel {
        Channel::Dashboard => true,
        Channel::ApiKey => {
            let effective = if tier == PlanTier::Trial && trialing { PlanTier::Starter } else { tier };
            effective >= required
        }
    };
    if passes {
        Ok(())
    } else {
        Err(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PlanTier::*;
    use SubscriptionStatus as S;

    #[test]
    fn plan_gate_table() {
        // (tier, status, required, channel, passes)
        let table = [
            (Growth, S::Active, Growth, Channel::ApiKey, true),
            (Pro, S::Active, Growth, Channel::ApiKey, true),
            (Starter, S::Active, Growth, Channel::ApiKey, false),
            (Starter, S::Active, Starter, Channel::ApiKey, true),
            (Trial, S::Trialing, Starter, Channel::ApiKey, true),
            (Trial, S::Trialing, Growth, Channel::ApiKey, false),
            (Trial, S::Canceled, Starter, Channel::ApiKey, false),
            (Growth, S::Trialing, Growth, Channel::ApiKey, true),
            (Growth, S::PastDue, Growth, Channel::ApiKey, true),
            (Pro, S::Canceled, Growth, Channel::ApiKey, false),
            (Pro, S::None, Starter, Channel::ApiKey, false),
            (Starter, S::Active, Growth, Channel::Dashboard, true),
            (Trial, S::Trialing, Pro, Channel::Dashboard, true),
            (Growth, S::Canceled, Growth, Channel::Dashboard, false),
            (Growth, S::None, Starter, Channel::Dashboard, false),
        ];
        for (tier, status, required, channel, passes) in table {
            assert_eq!(check_plan(tier, status, required, channel).is_ok(), passes, "{tier:?} {status:?} {required:?} {channel:?}");
        }
    }

    #[test]
    fn a_refusal_reports_the_required_and_current_tier_and_the_trial_flag() {
        let err = check_plan(Trial, S::Trialing, Growth, Channel::ApiKey).unwrap_err();
        assert_eq!(err, PlanRequired { required: Growth, current: Trial, trialing: true });
    }

    #[test]
    fn plan_tiers_parse_case_insensitively() {
        assert_eq!("growth".parse::<PlanTier>(), Ok(Growth));
        assert_eq!("Pro".parse::<PlanTier>(), Ok(Pro));
        assert!("enterprise".parse::<PlanTier>().is_err());
    }
}
