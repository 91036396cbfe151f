//! The error catalogue: every `error` code the API answers, with its HTTP status and what it
//! means. The domain names its codes (`DomainError`, `FieldError`); this adapter decides their
//! statuses, so the list lives here, once. Every [`ApiError`](crate::error::ApiError) is checked
//! against it as it is built (a debug assertion: a code missing here, or with another status,
//! fails the test that reaches it), and `docs/api.md`'s error table is checked against it by a
//! unit test. A new capability adds rows here and there, not new conventions.

/// One error the API can answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorCode {
    /// The envelope's `error`.
    pub code: &'static str,
    /// The HTTP status it is answered with.
    pub status: u16,
    /// What it means, for the docs.
    pub meaning: &'static str,
}

const fn row(code: &'static str, status: u16, meaning: &'static str) -> ErrorCode {
    ErrorCode { code, status, meaning }
}

/// Every error code, grouped by status.
pub const CATALOGUE: &[ErrorCode] = &[
    row("invalid_json", 400, "the body is not JSON, is truncated, or is missing"),
    row("invalid_body", 400, "the body cannot be read (bad encoding or transfer)"),
    row("validation_failed", 400, "a field or parameter is of the wrong type, missing, unknown, or out of its bounds (`field` names it)"),
    row("unsupported_currency", 400, "a currency outside the supported list (`field` names it)"),
    row("unsupported_value", 400, "a value the endpoint does not take, e.g. a sub-affiliate percent outside 0–100"),
    row("attribution_params_too_long", 400, "the custom attribution parameter list exceeds 256 characters"),
    row("too_many_attribution_params", 400, "more than 10 custom attribution parameters"),
    row("invalid_attribution_param", 400, "custom attribution parameters not matching `[a-z0-9_-]{2,32}` (listed in `invalid`)"),
    row("invalid_signature", 400, "the Stripe webhook's `Stripe-Signature` is missing, forged or stale"),
    row("invalid_payload", 400, "a correctly signed Stripe webhook body that is not a Stripe event"),
    row("unauthorized", 401, "no or a malformed `Authorization` header"),
    row("invalid_api_key", 401, "an unknown or revoked API key"),
    row("invalid_token", 401, "an invalid, expired, not yet valid or too long-lived JWT, or one of the wrong kind"),
    row("signature_missing", 401, "a server-to-server request without `X-Rekomi-Signature`"),
    row("signature_malformed", 401, "an `X-Rekomi-Signature` that is not `t=<unix>,sig=<64 hex digits>`"),
    row("signature_mismatch", 401, "no current signing secret of the organization signs this body and timestamp"),
    row("signature_expired", 401, "a genuine `X-Rekomi-Signature` whose `t` is more than 300 seconds from the server's clock"),
    row("tracking_secret_not_set", 401, "the organization has no signing secret for server-to-server requests yet"),
    row("plan_tier_required", 402, "the organization's plan does not include this (with `required`, `current`, `trialing`)"),
    row("insufficient_scope", 403, "a `read` API key on a writing method"),
    row("insufficient_role", 403, "the dashboard role is too low"),
    row("jwt_required", 403, "only a dashboard user (JWT) may do this; API keys cannot"),
    row("affiliate_not_approved", 403, "the affiliate is not Approved"),
    row("self_mint_not_allowed", 403, "the campaign coupon does not let affiliates mint their own codes"),
    row("invalid_affiliate_token", 403, "the affiliate token names no affiliate of the program"),
    row("not_found", 404, "no such endpoint, or (`/metrics`) no metrics rendered"),
    row("program_not_found", 404, "no such program in the caller's organization"),
    row("affiliate_not_found", 404, "no such affiliate in the caller's organization"),
    row("campaign_coupon_not_found", 404, "no such campaign coupon in the program"),
    row("promotional_code_not_found", 404, "no such code in the caller's organization"),
    row("conversion_not_found", 404, "no such conversion in the caller's organization"),
    row("payout_not_found", 404, "no such payout in the caller's organization"),
    row("payout_account_not_found", 404, "no payout account is recorded for the membership"),
    row("organization_not_found", 404, "the caller's organization no longer exists"),
    row("webhook_endpoint_not_found", 404, "no such webhook endpoint in the caller's organization"),
    row("delivery_not_found", 404, "no such delivery of the endpoint"),
    row("stripe_event_not_found", 404, "no such Stripe event of the caller's organization"),
    row("link_not_found", 404, "no such link slug, or its affiliate is not approved or its program is paused or archived"),
    row("landing_url_not_set", 404, "the link's program has no `landingUrl` for Short links to redirect to"),
    row("no_program_found", 404, "no such active program in the caller's organization (or none is active)"),
    row("method_not_allowed", 405, "the path does not take the method (`Allow` lists the ones it takes)"),
    row("pixel_not_provisioned", 409, "`withPixel=true` but the organization has no pixel key (`POST /api/v1/settings/pixel-key`)"),
    row("affiliate_already_exists", 409, "an affiliate with this email is already in the program"),
    row("alias_already_taken", 409, "the link alias is used by another link of the organization"),
    row("slug_already_taken", 409, "another program of the organization uses the slug"),
    row("slug_generation_failed", 409, "no free link slug could be found; retry"),
    row("code_generation_failed", 409, "no free code could be generated; retry"),
    row("program_archived", 409, "the program is archived"),
    row("campaign_coupon_inactive", 409, "the campaign coupon is archived, expired or not yet provisioned"),
    row("coupon_has_codes", 409, "a campaign coupon with codes cannot be deleted (archive it)"),
    row("affiliate_not_eligible", 409, "the affiliate cannot hold codes (rejected, paused or banned)"),
    row("invalid_status_transition", 409, "the affiliate's status cannot change that way"),
    row("webhook_endpoint_disabled", 409, "enable the endpoint before redelivering to it"),
    row("stripe_event_in_progress", 409, "a worker is processing the event; replay it once it is done"),
    row("secret_rotation_conflict", 409, "the signing secret was rotated by another request at the same moment; retry"),
    row("replay_limit_reached", 409, "an Owner replayed the event 5 times already; an operator can replay it further"),
    row("confirm_total_mismatch", 409, "`confirmTotalCents` is not the server's payout total now; preview again"),
    row("payout_run_conflict", 409, "another payout took some of the selected entries meanwhile; preview again"),
    row("payout_not_failed", 409, "only a Failed payout can be retried"),
    row("payout_entries_taken", 409, "another payout paid some of the failed payout's entries since it failed"),
    row("payout_not_payable", 409, "the payout cannot be marked paid (Failed, or paid by Stripe Connect)"),
    row("no_stripe_connect", 409, "the affiliate has no Stripe account to transfer to"),
    row("payouts_not_enabled", 409, "the affiliate's Stripe account cannot receive payouts yet"),
    row("idempotency_key_in_use", 409, "a request with the same `Idempotency-Key` is still running"),
    row("idempotency_key_reused", 409, "the `Idempotency-Key` was used with another request body within 60 minutes"),
    row("payload_too_large", 413, "the body is over the endpoint's limit (64 KiB, 512 KiB for Stripe webhooks)"),
    row("unsupported_media_type", 415, "a body without `Content-Type: application/json`"),
    row("code_already_taken", 422, "the code is taken in the organization (or active at Stripe)"),
    row("program_mismatch", 422, "the campaign coupon belongs to another program than the affiliate"),
    row("recruiter_not_approved", 422, "the recruiting affiliate is not Approved"),
    row("stripe_account_not_found", 422, "Stripe knows no such account connected to the platform"),
    row("payment_provider_rejected", 422, "Stripe refused the request (the API field is named when one maps)"),
    row("rate_limited", 429, "over 600 requests a minute for the key (180,000 for the signed `/api/tracking/*` endpoints), too many failed authentications or anonymous tracking requests from the address (`Retry-After`)"),
    row("internal_error", 500, "an unexpected failure; the body says nothing more, the cause is logged"),
    row("stripe_request_failed", 502, "Stripe does not know an object Rekomi referenced"),
    row("service_unavailable", 503, "the database does not answer; retry shortly"),
    row("stripe_unavailable", 503, "Stripe did not answer after retries; Rekomi finishes the record once it does"),
];

/// The catalogue's entry for `code`.
pub fn entry(code: &str) -> Option<&'static ErrorCode> {
    CATALOGUE.iter().find(|e| e.code == code)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn codes_are_unique_and_statuses_are_errors() {
        let codes: BTreeSet<&str> = CATALOGUE.iter().map(|e| e.code).collect();
        assert_eq!(codes.len(), CATALOGUE.len(), "a code appears twice");
        assert!(CATALOGUE.iter().all(|e| (400..600).contains(&e.status) && !e.meaning.is_empty()));
    }

    /// `docs/api.md` has one table row per code, `| `code` | status | meaning |`, no more.
    #[test]
    fn the_docs_error_table_is_the_catalogue() {
        let docs = include_str!("../../../docs/api.md");
        let rows: Vec<(String, u16, String)> = docs
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
                let code = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
                let status = cells.get(1)?.parse().ok()?;
                (cells.len() == 3 && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
                    .then(|| (code.to_owned(), status, cells[2].to_owned()))
            })
            .collect();
        let want: Vec<(String, u16, String)> = CATALOGUE.iter().map(|e| (e.code.to_owned(), e.status, e.meaning.to_owned())).collect();
        assert_eq!(rows, want, "docs/api.md's error table differs from the catalogue");
    }
}
