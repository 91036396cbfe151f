//! The diesel view of the tables in `migrations/`, written by hand so it documents exactly
//! the columns the adapter reads and writes. Keep it in step with the SQL: the integration
//! tests run the real migrations, so a drift shows up there as a query error.

diesel::table! {
    organizations (id) {
        id -> Uuid,
        name -> Text,
        handle -> Text,
        billing_email -> Nullable<Text>,
        timezone -> Text,
        plan_tier -> Text,
        subscription_status -> Text,
        trial_ends_at -> Nullable<Timestamptz>,
        home_currency -> Text,
        payout_grace_days -> Int4,
        stripe_account_id -> Nullable<Text>,
        minimum_payout_minor -> Int8,
        home_currency_changed_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        org_id -> Uuid,
        scope -> Text,
        prefix -> Text,
        hash -> Text,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    programs (id) {
        id -> Uuid,
        org_id -> Uuid,
        name -> Text,
        slug -> Text,
        description -> Nullable<Text>,
        terms_url -> Nullable<Text>,
        is_active -> Bool,
        default_commission_type -> Text,
        default_commission_value -> Int8,
        default_commission_model -> Text,
        cookie_window_days -> Int4,
        recurring_months -> Nullable<Int4>,
        recurring_delay_invoices -> Int4,
        attribution_model -> Text,
        auto_approve -> Bool,
        custom_domain -> Nullable<Text>,
        custom_domain_verified -> Bool,
        network_visibility -> Text,
        is_publicly_discoverable -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        archived_at -> Nullable<Timestamptz>,
        landing_url -> Nullable<Text>,
    }
}

diesel::table! {
    affiliates (id) {
        id -> Uuid,
        org_id -> Uuid,
        program_id -> Uuid,
        email -> Text,
        full_name -> Nullable<Text>,
        status -> Text,
        custom_commission_type -> Nullable<Text>,
        custom_commission_value -> Nullable<Int8>,
        tags -> Array<Text>,
        notes -> Nullable<Text>,
        source -> Text,
        user_id -> Nullable<Text>,
        rejection_reason -> Nullable<Text>,
        applied_at -> Timestamptz,
        approved_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    affiliate_links (id) {
        id -> Uuid,
        org_id -> Uuid,
        affiliate_id -> Uuid,
        slug -> Text,
        custom_alias -> Nullable<Text>,
        is_default -> Bool,
        format -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    campaign_coupons (id) {
        id -> Uuid,
        org_id -> Uuid,
        program_id -> Uuid,
        name -> Text,
        discount_type -> Text,
        discount_value -> Int8,
        discount_currency -> Nullable<Text>,
        duration -> Text,
        duration_in_months -> Nullable<Int4>,
        max_redemptions_per_code -> Nullable<Int8>,
        expires_at -> Nullable<Timestamptz>,
        allow_affiliate_self_mint -> Bool,
        overrides_click_attribution -> Bool,
        is_active -> Bool,
        stripe_coupon_id -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        archived_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    affiliate_coupons (id) {
        id -> Uuid,
        org_id -> Uuid,
        program_id -> Uuid,
        affiliate_id -> Uuid,
        campaign_coupon_id -> Uuid,
        code -> Text,
        stripe_promotion_code_id -> Nullable<Text>,
        is_active -> Bool,
        max_redemptions -> Nullable<Int8>,
        expires_at -> Nullable<Timestamptz>,
        first_time_order -> Bool,
        minimum_amount -> Nullable<Int8>,
        minimum_amount_currency -> Nullable<Text>,
        limit_to_customers -> Bool,
        customer_id -> Nullable<Text>,
        limit_to_affiliate -> Bool,
        times_redeemed -> Int8,
        last_redeemed_at -> Nullable<Timestamptz>,
        is_auto_generated -> Bool,
        self_minted -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Uuid,
        org_id -> Uuid,
        actor_type -> Text,
        actor_id -> Nullable<Text>,
        action -> Text,
        entity_type -> Text,
        entity_id -> Text,
        before -> Nullable<Jsonb>,
        after -> Nullable<Jsonb>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    processed_sources (org_id, source) {
        org_id -> Uuid,
        source -> Text,
        claimed_at -> Timestamptz,
    }
}

diesel::table! {
    program_sub_affiliate_configs (program_id) {
        org_id -> Uuid,
        program_id -> Uuid,
        enabled -> Bool,
        percent_hundredths -> Int8,
    }
}

diesel::table! {
    affiliate_recruitments (affiliate_id) {
        org_id -> Uuid,
        affiliate_id -> Uuid,
        recruiter_id -> Uuid,
    }
}

diesel::table! {
    conversions (id) {
        id -> Uuid,
        org_id -> Uuid,
        program_id -> Uuid,
        affiliate_id -> Uuid,
        kind -> Text,
        status -> Text,
        amount_minor -> Int8,
        currency -> Text,
        commission_minor -> Int8,
        attribution_method -> Nullable<Text>,
        coupon_code -> Nullable<Text>,
        affiliate_coupon_id -> Nullable<Uuid>,
        stripe_customer_id -> Nullable<Text>,
        stripe_subscription_id -> Nullable<Text>,
        external_event_id -> Nullable<Text>,
        customer_email -> Nullable<Text>,
        denial_reason -> Nullable<Text>,
        parent_conversion_id -> Nullable<Uuid>,
        attribution_trace -> Jsonb,
        paid_invoices -> Int8,
        approve_after -> Timestamptz,
        approved_at -> Nullable<Timestamptz>,
        refunded_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        click_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    ledger_events (id) {
        id -> Uuid,
        org_id -> Uuid,
        conversion_id -> Uuid,
        kind -> Text,
        amount_minor -> Int8,
        commission_minor -> Int8,
        stripe_invoice_id -> Nullable<Text>,
        refunded_total -> Nullable<Int8>,
        occurred_at -> Timestamptz,
        created_at -> Timestamptz,
        affiliate_id -> Uuid,
        currency -> Text,
        payable_after -> Timestamptz,
        home_currency -> Text,
        fx_rate -> Nullable<Text>,
        fx_source -> Nullable<Text>,
    }
}

diesel::table! {
    fx_reference_rates (currency, day) {
        currency -> Text,
        day -> Date,
        rate -> Text,
    }
}

diesel::table! {
    inbox_events (id) {
        id -> Text,
        org_id -> Nullable<Uuid>,
        account -> Nullable<Text>,
        event_type -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Int8,
        next_attempt_at -> Timestamptz,
        locked_until -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        received_at -> Timestamptz,
        processed_at -> Nullable<Timestamptz>,
        waiting_for -> Nullable<Text>,
        replays -> Int8,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Uuid,
        org_id -> Uuid,
        url -> Text,
        description -> Nullable<Text>,
        events -> Array<Text>,
        secret -> Text,
        status -> Text,
        disabled_reason -> Nullable<Text>,
        consecutive_failures -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    outbox_events (id) {
        id -> Uuid,
        org_id -> Uuid,
        event_type -> Text,
        data -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Uuid,
        org_id -> Uuid,
        endpoint_id -> Uuid,
        event_id -> Uuid,
        event_type -> Text,
        body -> Text,
        status -> Text,
        attempts -> Int8,
        next_attempt_at -> Timestamptz,
        locked_until -> Nullable<Timestamptz>,
        last_status -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    clicks (id) {
        id -> Uuid,
        org_id -> Uuid,
        program_id -> Uuid,
        affiliate_id -> Uuid,
        link_id -> Uuid,
        clicked_at -> Timestamptz,
        landing_url -> Nullable<Text>,
        referrer_host -> Text,
        utm_source -> Nullable<Text>,
        utm_medium -> Nullable<Text>,
        utm_campaign -> Nullable<Text>,
        sub_id -> Nullable<Text>,
        country -> Nullable<Text>,
        device -> Text,
        visitor_hash -> Text,
        is_unique -> Bool,
        is_bot -> Bool,
    }
}

diesel::table! {
    visitor_salts (day) {
        day -> Date,
        salt -> Text,
    }
}

diesel::table! {
    org_web_tracking_settings (org_id) {
        org_id -> Uuid,
        attribution_params -> Nullable<Text>,
        pixel_public_key -> Nullable<Text>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    tracking_secrets (id) {
        id -> Uuid,
        org_id -> Uuid,
        secret -> Text,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    payout_accounts (org_id, affiliate_id) {
        org_id -> Uuid,
        affiliate_id -> Uuid,
        stripe_account_id -> Nullable<Text>,
        payouts_enabled -> Bool,
        details_submitted -> Bool,
        paypal_email -> Nullable<Text>,
        wise_email -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    payouts (id) {
        id -> Uuid,
        org_id -> Uuid,
        affiliate_id -> Uuid,
        amount_minor -> Int8,
        currency -> Text,
        method -> Text,
        status -> Text,
        destination -> Nullable<Text>,
        stripe_transfer_id -> Nullable<Text>,
        external_transaction_id -> Nullable<Text>,
        notes -> Nullable<Text>,
        failure_reason -> Nullable<Text>,
        attempt -> Int4,
        period_start -> Nullable<Date>,
        period_end -> Date,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        paid_at -> Nullable<Timestamptz>,
        failed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    payout_line_items (id) {
        id -> Uuid,
        org_id -> Uuid,
        payout_id -> Uuid,
        ledger_event_id -> Uuid,
        conversion_id -> Uuid,
        amount_minor -> Int8,
        released -> Bool,
    }
}

diesel::table! {
    idempotency_records (org_id, key) {
        org_id -> Uuid,
        key -> Text,
        request_hash -> Text,
        status_code -> Nullable<Int4>,
        response_body -> Nullable<Text>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    organizations,
    api_keys,
    programs,
    affiliates,
    affiliate_links,
    campaign_coupons,
    affiliate_coupons,
    audit_log,
    processed_sources,
    program_sub_affiliate_configs,
    affiliate_recruitments,
    conversions,
    ledger_events,
    inbox_events,
    webhook_endpoints,
    outbox_events,
    webhook_deliveries,
    clicks,
    visitor_salts,
    org_web_tracking_settings,
    tracking_secrets,
    payout_accounts,
    payouts,
    payout_line_items,
    idempotency_records,
    fx_reference_rates,
);
