//! `GET /api/v1/payouts/export.csv?method=PayPal`: the Pending and Processing PayPal payouts in
//! PayPal's Payouts bulk-upload format, to pay them at PayPal and then mark them paid here.
//! Cells are formula-safe.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use rekomi_domain::payouts::{Payout, PayoutMethod};

use super::dto::ExportQuery;
use crate::auth::Brand;
use crate::csv::csv_cell;
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::AppState;

/// The header row of PayPal's bulk-upload template.
pub const PAYPAL_HEADER: &str = "Email/Phone,Amount,Currency code,Reference ID,Note to recipient,Recipient wallet\n";

/// An amount in minor units as PayPal wants it: major units with the currency's decimals.
fn major_units(minor: i64, exponent: u32) -> String {
    if exponent == 0 {
        return minor.to_string();
    }
    let scale = 10i64.pow(exponent);
    format!("{}.{:0width$}", minor / scale, minor % scale, width = exponent as usize)
}

fn paypal_row(p: &Payout) -> String {
    let note = p.notes.clone().unwrap_or_else(|| "Affiliate commission".to_owned());
    let cells = [
        p.destination.clone().unwrap_or_default(),
        major_units(p.amount_minor, p.currency.exponent()),
        p.currency.code().to_owned(),
        p.id.to_string(),
        note,
        "PAYPAL".to_owned(),
    ];
    let mut row = cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(",");
    row.push('\n');
    row
}

/// The PayPal bulk-upload CSV of the Pending and Processing PayPal payouts. Audit-logged.
#[utoipa::path(get, path = "/api/v1/payouts/export.csv", tag = "Payouts", params(ExportQuery),
    responses((status = 200, description = "PayPal Payouts bulk-upload CSV", content_type = "text/csv", body = String),
        (status = 400, description = "`validation_failed`: only `method=PayPal` is exported"),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+")),
    security(("bearer" = [])))]
pub async fn export(state: web::Data<AppState>, Brand(ctx): Brand, Query(q): Query<ExportQuery>) -> ApiResult<HttpResponse> {
    let q = q?;
    if PayoutMethod::parse(&q.method) != Some(PayoutMethod::PayPal) {
        return Err(ApiError::invalid("method", "only method=PayPal has a bulk-upload format"));
    }
    let payouts = state.services.paypal_payouts_to_export(&ctx).await?;
    let mut body = String::from(PAYPAL_HEADER);
    for p in &payouts {
        body.push_str(&paypal_row(p));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"paypal-payouts.csv\""))
        .body(body))
}

#[cfg(test)]
mod tests {
    use super::major_units;

    #[test]
    fn amounts_are_written_in_major_units_with_the_currency_decimals() {
        assert_eq!(major_units(1980, 2), "19.80");
        assert_eq!(major_units(5, 2), "0.05");
        assert_eq!(major_units(1980, 0), "1980");
        assert_eq!(major_units(10_000_000_000, 2), "100000000.00");
    }
}
