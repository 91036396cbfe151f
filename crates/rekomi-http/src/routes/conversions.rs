//! `/api/v1/conversions` (list, detail with the ledger, attribution trace, CSV export), the
//! sub-affiliate endpoints, and the brand-side Stripe event inbox.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use futures_util::stream;
use rekomi_domain::conversion::{Conversion, ConversionStatus, LedgerEvent};
use rekomi_domain::ids::{AffiliateId, ConversionId, ProgramId};
use rekomi_domain::inbox::{InboxEvent, InboxStatus};
use rekomi_domain::ports::store::ConversionFilter;
use rekomi_domain::usecases::{BrandContext, EXPORT_MAX_ROWS};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Brand;
use crate::dto::{
    enum_field, page_request, parse_ts, ts, ts_opt, AffiliateStatusValue, ConversionStatusValue, ConversionTypeValue, CurrencyValue,
    Decimal, InboxStatusValue, LedgerKindValue, ListResponse,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, Json, Query};
use crate::AppState;

/// A conversion.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversionResponse {
    pub id: Uuid,
    pub affiliate_id: Uuid,
    pub program_id: Uuid,
    /// The first paid amount (0 for leads and overrides).
    pub amount_cents: i64,
    #[schema(value_type = CurrencyValue)]
    pub currency: &'static str,
    /// The net commission: every ledger entry, clawbacks included.
    pub commission_cents: i64,
    #[schema(value_type = ConversionStatusValue)]
    pub status: &'static str,
    #[serde(rename = "type")]
    #[schema(value_type = ConversionTypeValue)]
    pub kind: &'static str,
    pub stripe_subscription_id: Option<String>,
    pub stripe_customer_id: Option<String>,
    pub external_event_id: Option<String>,
    pub created_at: String,
    pub refunded_at: Option<String>,
    /// `coupon` | `coupon_with_metadata` | `metadata_or_customer` | `sub_affiliate_override`
    pub attribution_method: Option<String>,
    /// The redeemed code, only when a coupon decided.
    pub coupon_code: Option<String>,
    pub denial_reason: Option<String>,
    pub parent_affiliate_conversion_id: Option<Uuid>,
}

impl From<&Conversion> for ConversionResponse {
    fn from(c: &Conversion) -> Self {
        Self {
            id: c.id.as_uuid(),
            affiliate_id: c.affiliate_id.as_uuid(),
            program_id: c.program_id.as_uuid(),
            amount_cents: c.amount_minor,
            currency: c.currency.code(),
            commission_cents: c.commission_minor,
            status: c.status.as_str(),
            kind: c.kind.as_str(),
            stripe_subscription_id: c.stripe_subscription_id.clone(),
            stripe_customer_id: c.stripe_customer_id.clone(),
            external_event_id: c.external_event_id.clone(),
            created_at: ts(c.created_at),
            refunded_at: ts_opt(c.refunded_at),
            attribution_method: c.attribution_method.clone(),
            coupon_code: c.coupon_code.clone(),
            denial_reason: c.denial_reason.clone(),
            parent_affiliate_conversion_id: c.parent_conversion_id.map(|p| p.as_uuid()),
        }
    }
}

/// One ledger entry.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEventResponse {
    pub id: Uuid,
    #[schema(value_type = LedgerKindValue)]
    pub event_type: &'static str,
    pub amount_cents: i64,
    pub commission_cents: i64,
    /// The invoice (or payment) the entry is about.
    pub stripe_invoice_id: Option<String>,
    pub occurred_at: String,
}

impl From<&LedgerEvent> for LedgerEventResponse {
    fn from(e: &LedgerEvent) -> Self {
        Self {
            id: e.id.as_uuid(),
            event_type: e.kind.as_str(),
            amount_cents: e.amount_minor,
            commission_cents: e.commission_minor,
            stripe_invoice_id: e.stripe_invoice_id.clone(),
            occurred_at: ts(e.occurred_at),
        }
    }
}

/// A conversion with its event timeline.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversionDetailResponse {
    #[serde(flatten)]
    pub conversion: ConversionResponse,
    pub events: Vec<LedgerEventResponse>,
}

/// How a conversion was attributed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttributionResponse {
    pub conversion_id: Uuid,
    pub attribution_method: Option<String>,
    pub coupon_code: Option<String>,
    /// The signals seen (promotion codes, referral metadata, customer history) and the rule
    /// that decided.
    #[schema(value_type = Object)]
    pub trace: serde_json::Value,
}

/// `GET /api/v1/conversions` (and the export's) query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConversionQuery {
    /// Page size, 1-200 (default 50; not accepted by the export).
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub take: Option<i64>,
    /// The `nextCursor` of the previous page (not accepted by the export).
    pub cursor: Option<String>,
    pub affiliate_id: Option<Uuid>,
    pub program_id: Option<Uuid>,
    #[param(value_type = Option<ConversionStatusValue>, inline)]
    pub status: Option<String>,
    /// Created at or after (RFC 3339).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Created before (RFC 3339; export only).
    #[param(format = DateTime)]
    pub until: Option<String>,
}

impl ConversionQuery {
    fn filter(&self, allow_until: bool) -> Result<ConversionFilter, ApiError> {
        if self.until.is_some() && !allow_until {
            return Err(ApiError::invalid("until", "until is only accepted by the CSV export"));
        }
        Ok(ConversionFilter {
            affiliate_id: self.affiliate_id.map(AffiliateId::from_uuid),
            program_id: self.program_id.map(ProgramId::from_uuid),
            status: self
                .status
                .as_deref()
                .map(|s| enum_field("status", s, ConversionStatus::parse, ConversionStatus::ALL, ConversionStatus::as_str))
                .transpose()?,
            since: parse_ts("since", self.since.as_deref())?,
            until: parse_ts("until", self.until.as_deref())?,
        })
    }
}

/// List conversions.
#[utoipa::path(get, path = "/api/v1/conversions", tag = "Conversions", params(ConversionQuery),
    responses((status = 200, body = ListResponse<ConversionResponse>),
        (status = 400, description = "`validation_failed`: `until` (export only)"),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+")),
    security(("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, Brand(ctx): Brand, Query(q): Query<ConversionQuery>) -> ApiResult<HttpResponse> {
    let q = q?;
    let filter = q.filter(false)?;
    let page = page_request(q.take, q.cursor.as_deref())?;
    let conversions = state.services.list_conversions(&ctx, filter, page).await?;
    Ok(HttpResponse::Ok().json(ListResponse::from_page(conversions, |c| ConversionResponse::from(&c))))
}

/// One conversion with its event timeline.
#[utoipa::path(get, path = "/api/v1/conversions/{id}", tag = "Conversions", params(("id" = Uuid, Path, description = "The conversion id")),
    responses((status = 200, body = ConversionDetailResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`conversion_not_found`")),
    security(("bearer" = [])))]
pub async fn get(state: web::Data<AppState>, Brand(ctx): Brand, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id: ConversionId = parse_id(&path, "id")?;
    let (conversion, ledger) = state.services.get_conversion(&ctx, id).await?;
    Ok(HttpResponse::Ok().json(ConversionDetailResponse {
        conversion: (&conversion).into(),
        events: ledger.iter().map(LedgerEventResponse::from).collect(),
    }))
}

/// How a conversion was attributed.
#[utoipa::path(get, path = "/api/v1/conversions/{id}/attribution", tag = "Conversions",
    params(("id" = Uuid, Path, description = "The conversion id")),
    responses((status = 200, body = AttributionResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`conversion_not_found`")),
    security(("bearer" = [])))]
pub async fn attribution(state: web::Data<AppState>, Brand(ctx): Brand, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id: ConversionId = parse_id(&path, "id")?;
    let (c, _) = state.services.get_conversion(&ctx, id).await?;
    Ok(HttpResponse::Ok().json(AttributionResponse {
        conversion_id: c.id.as_uuid(),
        attribution_method: c.attribution_method.clone(),
        coupon_code: c.coupon_code.clone(),
        trace: c.attribution_trace.clone(),
    }))
}

/// The export's header row, exactly as the API reference gives it.
pub const CSV_HEADER: &str = "id,affiliate_id,program_id,amount_cents,currency,commission_cents,status,type,external_event_id,created_at,refunded_at,attribution_method,coupon_code\n";

/// One CSV cell: quoted when needed, and defused when a spreadsheet would read it as a formula
/// (a leading `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'`).
pub fn csv_cell(raw: &str) -> String {
    let defused = if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{raw}") } else { raw.to_owned() };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

fn csv_row(c: &Conversion) -> String {
    let cells = [
        c.id.to_string(),
        c.affiliate_id.to_string(),
        c.program_id.to_string(),
        c.amount_minor.to_string(),
        c.currency.code().to_owned(),
        c.commission_minor.to_string(),
        c.status.as_str().to_owned(),
        c.kind.as_str().to_owned(),
        c.external_event_id.clone().unwrap_or_default(),
        ts(c.created_at),
        ts_opt(c.refunded_at).unwrap_or_default(),
        c.attribution_method.clone().unwrap_or_default(),
        c.coupon_code.clone().unwrap_or_default(),
    ];
    // Numbers such as negative commissions are ours, not user text: only text cells are defused.
    let mut out: Vec<String> = Vec::with_capacity(cells.len());
    for (i, cell) in cells.iter().enumerate() {
        out.push(if matches!(i, 3 | 5) { cell.clone() } else { csv_cell(cell) });
    }
    out.join(",") + "\n"
}

struct ExportState {
    state: web::Data<AppState>,
    ctx: BrandContext,
    filter: ConversionFilter,
    after: Option<Uuid>,
    sent: usize,
    finished: bool,
}

/// CSV export, streamed page by page, at most 50,000 rows.
#[utoipa::path(get, path = "/api/v1/conversions/export.csv", tag = "Conversions", params(ConversionQuery),
    responses((status = 200, description = "The CSV, streamed", content_type = "text/csv", body = String),
        (status = 400, description = "`validation_failed`: `take` or `cursor` (the export is not paginated)"),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+")),
    security(("bearer" = [])))]
pub async fn export(state: web::Data<AppState>, Brand(ctx): Brand, Query(q): Query<ConversionQuery>) -> ApiResult<HttpResponse> {
    let q = q?;
    if q.take.is_some() || q.cursor.is_some() {
        return Err(ApiError::invalid(if q.take.is_some() { "take" } else { "cursor" }, "the export is not paginated"));
    }
    let filter = q.filter(true)?;
    // The first page is fetched (and the export audited) before answering, so errors are
    // still real HTTP errors rather than a truncated stream.
    let first = state.services.export_conversions_page(&ctx, filter.clone(), None).await?;
    let mut head = String::from(CSV_HEADER);
    for c in &first.items {
        head.push_str(&csv_row(c));
    }
    let sent = first.items.len();
    let start = ExportState { state, ctx, filter, after: first.next_after, sent, finished: first.next_after.is_none() };
    let body =
        stream::once(async move { Ok::<_, actix_web::Error>(web::Bytes::from(head)) }).chain(stream::unfold(start, |mut s| async move {
            if s.finished || s.sent >= EXPORT_MAX_ROWS {
                return None;
            }
            match s.state.services.export_conversions_page(&s.ctx, s.filter.clone(), s.after).await {
                Ok(page) => {
                    let mut chunk = String::new();
                    for c in page.items.iter().take(EXPORT_MAX_ROWS - s.sent) {
                        chunk.push_str(&csv_row(c));
                    }
                    s.sent += page.items.len();
                    s.after = page.next_after;
                    s.finished = page.next_after.is_none();
                    Some((Ok(web::Bytes::from(chunk)), s))
                }
                Err(e) => {
                    tracing::warn!(error.cause = %e, "conversion export stopped early");
                    s.finished = true;
                    Some((Err(actix_web::error::ErrorServiceUnavailable("export interrupted")), s))
                }
            }
        }));
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"conversions.csv\""))
        .streaming(body))
}

use futures_util::StreamExt as _;

/// The sub-affiliate setting of a program.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubAffiliateConfigBody {
    pub enabled: bool,
    /// The override percentage, 0-100 with at most two decimals.
    #[schema(value_type = f64, minimum = 0, maximum = 100)]
    pub percent: Decimal,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SubAffiliateConfigResponse {
    enabled: bool,
    percent: f64,
}

fn config_response(c: rekomi_domain::conversion::SubAffiliateConfig) -> SubAffiliateConfigResponse {
    SubAffiliateConfigResponse { enabled: c.enabled, percent: c.percent.get() as f64 / 100.0 }
}

/// A program's sub-affiliate setting.
#[utoipa::path(get, path = "/api/v1/programs/{id}/sub-affiliate-config", tag = "Sub-affiliates",
    params(("id" = Uuid, Path, description = "The program id")),
    responses((status = 200, body = SubAffiliateConfigBody),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`program_not_found`")),
    security(("bearer" = [])))]
pub async fn get_sub_config(state: web::Data<AppState>, Brand(ctx): Brand, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id: ProgramId = parse_id(&path, "id")?;
    Ok(HttpResponse::Ok().json(config_response(state.services.sub_affiliate_config(&ctx, id).await?)))
}

/// Set a program's sub-affiliate setting (Owner, Pro plan).
#[utoipa::path(put, path = "/api/v1/programs/{id}/sub-affiliate-config", tag = "Sub-affiliates", request_body = SubAffiliateConfigBody,
    params(("id" = Uuid, Path, description = "The program id")),
    responses((status = 200, body = SubAffiliateConfigBody),
        (status = 400, description = "`unsupported_value`: `percent` outside 0-100 or with more than two decimals"),
        (status = 402, description = "`plan_tier_required`: Pro, unless trialing (dashboard JWTs too)"),
        (status = 404, description = "`program_not_found`")),
    security(("bearer" = [])))]
pub async fn put_sub_config(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    path: web::Path<String>,
    Json(body): Json<SubAffiliateConfigBody>,
) -> ApiResult<HttpResponse> {
    let body = body?;
    let id: ProgramId = parse_id(&path, "id")?;
    let percent = body.percent.hundredths("percent").map_err(|_| {
        ApiError::new(actix_web::http::StatusCode::BAD_REQUEST, "unsupported_value", "percent must be between 0 and 100")
            .with_field("percent")
    })?;
    Ok(HttpResponse::Ok().json(config_response(state.services.put_sub_affiliate_config(&ctx, id, body.enabled, percent).await?)))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RecruitResponse {
    id: Uuid,
    email: String,
    full_name: Option<String>,
    #[schema(value_type = AffiliateStatusValue)]
    status: &'static str,
    total_commission_cents: i64,
    override_earned_cents: i64,
    #[schema(value_type = CurrencyValue)]
    currency: &'static str,
}

/// An affiliate's recruits (flat array).
#[utoipa::path(get, path = "/api/v1/affiliates/{id}/sub-affiliates", tag = "Sub-affiliates",
    params(("id" = Uuid, Path, description = "The recruiting affiliate's id")),
    responses((status = 200, body = Vec<RecruitResponse>),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`affiliate_not_found`")),
    security(("bearer" = [])))]
pub async fn sub_affiliates(state: web::Data<AppState>, Brand(ctx): Brand, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id: AffiliateId = parse_id(&path, "id")?;
    let recruits = state.services.sub_affiliates(&ctx, id).await?;
    let body: Vec<RecruitResponse> = recruits
        .into_iter()
        .map(|r| RecruitResponse {
            id: r.affiliate.id.as_uuid(),
            email: r.affiliate.email.as_str().to_owned(),
            full_name: r.affiliate.full_name.clone(),
            status: r.affiliate.status.as_str(),
            total_commission_cents: r.total_commission_minor,
            override_earned_cents: r.override_earned_minor,
            currency: r.currency.code(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

/// An inbound Stripe event as the inbox holds it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StripeEventResponse {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub account: Option<String>,
    #[schema(value_type = InboxStatusValue)]
    pub status: &'static str,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub received_at: String,
    pub processed_at: Option<String>,
    /// When a `Pending` event is next tried, or a `Waiting` one looked at again.
    pub next_attempt_at: Option<String>,
    /// While `Waiting`: the payment (invoice, payment intent or charge id) whose sale it waits for.
    pub waiting_for: Option<String>,
    /// How many of its 5 Owner replays were used.
    pub replays: u32,
}

fn event_response(e: &InboxEvent) -> StripeEventResponse {
    StripeEventResponse {
        id: e.id.clone(),
        event_type: e.event_type.clone(),
        account: e.account.clone(),
        status: e.status.as_str(),
        attempts: e.attempts,
        last_error: e.last_error.clone(),
        received_at: ts(e.received_at),
        processed_at: ts_opt(e.processed_at),
        next_attempt_at: matches!(e.status, InboxStatus::Pending | InboxStatus::Waiting).then(|| ts(e.next_attempt_at)),
        waiting_for: e.waiting_for.clone(),
        replays: e.replays,
    }
}

/// Inbox list query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StripeEventQuery {
    #[param(value_type = Option<InboxStatusValue>, inline)]
    pub status: Option<String>,
    /// Only events received before this instant (RFC 3339), for paging.
    #[param(format = DateTime)]
    pub before: Option<String>,
    /// 1-200 (default 50).
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub take: Option<i64>,
}

/// The organization's inbound Stripe events, newest first (Owner).
#[utoipa::path(get, path = "/api/v1/webhooks/stripe/events", tag = "Stripe events", params(StripeEventQuery),
    responses((status = 200, body = Vec<StripeEventResponse>),
        (status = 403, description = "`insufficient_role`: Owner only")),
    security(("bearer" = [])))]
pub async fn list_events(state: web::Data<AppState>, Brand(ctx): Brand, Query(q): Query<StripeEventQuery>) -> ApiResult<HttpResponse> {
    let q = q?;
    let status =
        q.status.as_deref().map(|s| enum_field("status", s, InboxStatus::parse, InboxStatus::ALL, InboxStatus::as_str)).transpose()?;
    let before: Option<OffsetDateTime> = parse_ts("before", q.before.as_deref())?;
    let take = match q.take {
        None => 50,
        Some(t @ 1..=200) => t,
        Some(_) => return Err(ApiError::invalid("take", "take must be between 1 and 200")),
    };
    let events = state.services.list_stripe_events(&ctx, status, before, take).await?;
    Ok(HttpResponse::Ok().json(events.iter().map(event_response).collect::<Vec<_>>()))
}

/// Queue one inbound event for processing again (Owner).
#[utoipa::path(post, path = "/api/v1/webhooks/stripe/events/{id}/replay", tag = "Stripe events",
    params(("id" = String, Path, description = "The Stripe event id (`evt_…`)", pattern = "^[A-Za-z0-9_]{1,255}$")),
    responses((status = 200, body = StripeEventResponse),
        (status = 404, description = "`stripe_event_not_found`"),
        (status = 409, description = "`stripe_event_in_progress`: a worker holds it; `replay_limit_reached`: replayed 5 times already")),
    security(("bearer" = [])))]
pub async fn replay_event(state: web::Data<AppState>, Brand(ctx): Brand, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    if id.is_empty() || id.len() > 255 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(ApiError::invalid("id", "id must be a Stripe event id (evt_…)"));
    }
    Ok(HttpResponse::Ok().json(event_response(&state.services.replay_stripe_event(&ctx, id).await?)))
}
