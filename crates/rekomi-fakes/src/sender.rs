//! [`FakeWebhookSender`]: the outbound webhook transport in memory. It records every request,
//! answers from a script (then `Delivered { status: 200 }`), and refuses targets on demand.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use rekomi_domain::outbound::{OutboundRequest, SendOutcome, WebhookSender};

#[derive(Debug, Default)]
struct Inner {
    requests: Vec<OutboundRequest>,
    script: VecDeque<SendOutcome>,
    refuse: bool,
    checked: Vec<String>,
}

/// A recording webhook transport. Clones share their state, so a test keeps one handle and
/// gives another to the code under test.
#[derive(Clone, Debug, Default)]
pub struct FakeWebhookSender(Arc<Mutex<Inner>>);

impl FakeWebhookSender {
    /// A sender that delivers everything with a 200.
    pub fn new() -> Self {
        Self::default()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues the outcome of the next unscripted send (first queued, first answered).
    pub fn push_outcome(&self, outcome: SendOutcome) {
        self.inner().script.push_back(outcome);
    }

    /// Queues `n` failures answered with `status`.
    pub fn fail_next(&self, n: usize, status: u16) {
        for _ in 0..n {
            self.push_outcome(SendOutcome::Failed { status: Some(status), error: format!("HTTP {status}") });
        }
    }

    /// Refuses every target (as the real transport refuses private addresses) or stops doing so.
    pub fn refuse_targets(&self, refuse: bool) {
        self.inner().refuse = refuse;
    }

    /// Every request sent so far, oldest first.
    pub fn requests(&self) -> Vec<OutboundRequest> {
        self.inner().requests.clone()
    }

    /// Every URL passed to `check_target`, oldest first.
    pub fn checked_targets(&self) -> Vec<String> {
        self.inner().checked.clone()
    }

    /// Forgets the recorded requests (the script stays).
    pub fn clear(&self) {
        self.inner().requests.clear();
    }
}

const REFUSED: &str = "the target resolves to a private, loopback or link-local address";

#[async_trait]
impl WebhookSender for FakeWebhookSender {
    async fn send(&self, request: &OutboundRequest) -> SendOutcome {
        let mut inner = self.inner();
        if inner.refuse {
            return SendOutcome::Failed { status: None, error: REFUSED.to_owned() };
        }
        inner.requests.push(request.clone());
        inner.script.pop_front().unwrap_or(SendOutcome::Delivered { status: 200 })
    }

    async fn check_target(&self, url: &str) -> Result<(), String> {
        let mut inner = self.inner();
        inner.checked.push(url.to_owned());
        if inner.refuse {
            Err(REFUSED.to_owned())
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block_on;

    fn request() -> OutboundRequest {
        OutboundRequest { url: "https://hooks.example.com".into(), body: "{}".into(), headers: Vec::new() }
    }

    #[test]
    fn scripted_outcomes_come_first_then_200s_and_every_request_is_recorded() {
        let sender = FakeWebhookSender::new();
        sender.fail_next(1, 500);
        assert_eq!(block_on(sender.send(&request())), SendOutcome::Failed { status: Some(500), error: "HTTP 500".into() });
        assert_eq!(block_on(sender.send(&request())), SendOutcome::Delivered { status: 200 });
        assert_eq!(sender.requests().len(), 2);
    }

    #[test]
    fn refused_targets_fail_the_check_and_are_never_sent() {
        let sender = FakeWebhookSender::new();
        sender.refuse_targets(true);
        assert!(block_on(sender.check_target("http://127.0.0.1/")).is_err());
        assert!(matches!(block_on(sender.send(&request())), SendOutcome::Failed { status: None, .. }));
        assert!(sender.requests().is_empty());
        sender.refuse_targets(false);
        assert_eq!(block_on(sender.check_target("https://hooks.example.com")), Ok(()));
    }
}
