//! [`ScriptedDecoder`]: the Stripe event decoder port for tests that state exactly what Stripe
//! said. An event's payload is its id; the decoder answers the envelope and the fact scripted
//! for that id (the envelope's type is `test`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rekomi_domain::kernel::stripe_ids::StripeAccountId;
use rekomi_domain::stripe_inbox::facts::{DecodeError, EventDecoder, EventEnvelope, StripeFact};

/// What an event id was scripted as: its connected account and its fact.
type Script = HashMap<String, (Option<StripeAccountId>, StripeFact)>;

/// Facts (and the connected account) by event id. Clones share the script.
#[derive(Clone, Default)]
pub struct ScriptedDecoder(Arc<Mutex<Script>>);

impl std::fmt::Debug for ScriptedDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedDecoder").finish_non_exhaustive()
    }
}

impl ScriptedDecoder {
    /// An empty script.
    pub fn new() -> Self {
        Self::default()
    }

    /// Scripts event `id` (also its payload) as `fact`, from `account` (`None`: the platform).
    pub fn script(&self, id: &str, account: Option<StripeAccountId>, fact: StripeFact) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(id.to_owned(), (account, fact));
    }

    fn entry(&self, payload: &[u8]) -> Result<(String, Option<StripeAccountId>, StripeFact), DecodeError> {
        let id = String::from_utf8_lossy(payload).to_string();
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (account, fact) = map.get(&id).cloned().ok_or_else(|| DecodeError(format!("no fact is scripted for {id}")))?;
        Ok((id, account, fact))
    }
}

impl EventDecoder for ScriptedDecoder {
    fn envelope(&self, payload: &[u8]) -> Result<EventEnvelope, DecodeError> {
        let (id, account, _) = self.entry(payload)?;
        let id = id.parse().map_err(|e| DecodeError(format!("{e}")))?;
        Ok(EventEnvelope { id, event_type: "test".into(), account, created: 0, livemode: false })
    }

    fn decode(&self, payload: &[u8]) -> Result<StripeFact, DecodeError> {
        self.entry(payload).map(|(_, _, fact)| fact)
    }
}
