//! `GET /api/v1/conversions/export.csv`: the conversions as CSV, streamed page by page, with
//! the cells a spreadsheet would run as formulas defused.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use futures_util::stream;
use futures_util::StreamExt as _;
use rekomi_domain::conversions::{Conversion, ConversionFilter, EXPORT_MAX_ROWS};
use rekomi_domain::services::BrandContext;
use uuid::Uuid;

use super::dto::ConversionQuery;
use crate::auth::Brand;
use crate::csv::csv_cell;
use crate::dto::{ts, ts_opt};
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::AppState;

/// The export's header row, exactly as the API reference gives it.
pub const CSV_HEADER: &str = "id,affiliate_id,program_id,amount_cents,currency,commission_cents,status,type,external_event_id,created_at,refunded_at,attribution_method,coupon_code\n";

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
