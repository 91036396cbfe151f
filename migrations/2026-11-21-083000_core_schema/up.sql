-- Rekomi's core schema: tenants, API keys, programs, affiliates and their links, campaign and
-- affiliate coupons, and the append-only audit log.
--
-- Conventions:
-- * Every constraint and index has an explicit name: the PostgreSQL adapter maps unique and
--   foreign-key violations to `StoreError::Conflict { constraint }` by that name, and use cases
--   branch on the names listed in `rekomi_domain::ports::store::constraints`.
-- * Ids are UUID v7 (time-ordered), so `order by id desc` is "newest first" and keyset
--   pagination needs no second column.
-- * Enums are text holding the domain's `as_str()` names, guarded by CHECK constraints.
-- * Numeric CHECKs guard what the domain types can represent (u16, u32, both-or-neither
--   pairs); business rules (ranges such as "1-365 days") stay in the domain, in one place.
-- * Tenant tables carry `org_id`, and references between tenant tables are composite
--   `(org_id, x_id)` foreign keys, so a row can never point into another organization.

create table organizations (
    id                  uuid        not null,
    name                text        not null,
    handle              text        not null,
    billing_email       text,
    timezone            text        not null,
    plan_tier           text        not null,
    subscription_status text        not null,
    trial_ends_at       timestamptz,
    home_currency       text        not null,
    payout_grace_days   integer     not null,
    stripe_account_id   text,
    created_at          timestamptz not null,
    constraint organizations_pkey primary key (id),
    constraint organizations_handle_key unique (handle),
    constraint organizations_plan_tier_check
        check (plan_tier in ('Trial', 'Starter', 'Growth', 'Pro')),
    constraint organizations_subscription_status_check
        check (subscription_status in ('None', 'Trialing', 'Active', 'PastDue', 'Canceled')),
    constraint organizations_home_currency_check check (home_currency ~ '^[A-Z]{3}$'),
    constraint organizations_payout_grace_days_check check (payout_grace_days between 0 and 65535)
);

create table api_keys (
    id         uuid        not null,
    org_id     uuid        not null,
    scope      text        not null,
    prefix     text        not null,
    hash       text        not null,
    created_at timestamptz not null,
    revoked_at timestamptz,
    constraint api_keys_pkey primary key (id),
    constraint api_keys_org_id_fkey foreign key (org_id) references organizations (id),
    -- Authentication looks keys up by hash; two secrets never share one.
    constraint api_keys_hash_key unique (hash),
    constraint api_keys_scope_check check (scope in ('read', 'read_write'))
);

create index api_keys_org_id_idx on api_keys (org_id, id desc);

create table programs (
    id                       uuid        not null,
    org_id                   uuid        not null,
    name                     text        not null,
    slug                     text        not null,
    description              text,
    terms_url                text,
    is_active                boolean     not null,
    default_commission_type  text        not null,
    -- Hundredths: a percentage or an amount in major units, times 100.
    default_commission_value bigint      not null,
    default_commission_model text        not null,
    cookie_window_days       integer     not null,
    -- NULL = lifetime, 0 = first invoice only, N = the first N renewals.
    recurring_months         integer,
    recurring_delay_invoices integer     not null,
    attribution_model        text        not null,
    auto_approve             boolean     not null,
    custom_domain            text,
    custom_domain_verified   boolean     not null,
    network_visibility       text        not null,
    is_publicly_discoverable boolean     not null,
    created_at               timestamptz not null,
    updated_at               timestamptz not null,
    archived_at              timestamptz,
    constraint programs_pkey primary key (id),
    constraint programs_org_id_fkey foreign key (org_id) references organizations (id),
    -- Archived programs keep their slug: links and landing pages may still name it.
    constraint programs_org_slug_key unique (org_id, slug),
    -- Target of the composite tenant foreign keys; also serves "org_id = $1 order by id desc".
    constraint programs_org_id_id_key unique (org_id, id),
    constraint programs_default_commission_type_check
        check (default_commission_type in ('Percentage', 'Fixed')),
    constraint programs_default_commission_value_check check (default_commission_value >= 0),
    constraint programs_default_commission_model_check
        check (default_commission_model in ('Cps', 'Cpc', 'Cpl', 'Cpa', 'RevShare', 'Hybrid')),
    constraint programs_cookie_window_days_check check (cookie_window_days between 0 and 65535),
    constraint programs_recurring_months_check check (recurring_months between 0 and 65535),
    constraint programs_recurring_delay_invoices_check
        check (recurring_delay_invoices between 0 and 65535),
    constraint programs_attribution_model_check
        check (attribution_model in ('FirstTouch', 'LastTouch')),
    constraint programs_network_visibility_check
        check (network_visibility in ('Private', 'Networked', 'InviteOnly'))
);

create table affiliates (
    id                      uuid        not null,
    org_id                  uuid        not null,
    program_id              uuid        not null,
    -- Normalized (trimmed, lower-case) by the domain before it gets here.
    email                   text        not null,
    full_name               text,
    status                  text        not null,
    custom_commission_type  text,
    custom_commission_value bigint,
    tags                    text[]      not null default '{}',
    notes                   text,
    source                  text        not null,
    -- The affiliate-side user (`sub` of the affiliate JWT) once linked.
    user_id                 text,
    rejection_reason        text,
    applied_at              timestamptz not null,
    approved_at             timestamptz,
    created_at              timestamptz not null,
    updated_at              timestamptz not null,
    -- Soft deletion: links, codes and conversions keep pointing at the row for history.
    deleted_at              timestamptz,
    constraint affiliates_pkey primary key (id),
    constraint affiliates_org_id_fkey foreign key (org_id) references organizations (id),
    constraint affiliates_program_fkey
        foreign key (org_id, program_id) references programs (org_id, id),
    constraint affiliates_org_id_id_key unique (org_id, id),
    constraint affiliates_status_check
        check (status in ('Pending', 'Approved', 'Rejected', 'Paused', 'Banned')),
    constraint affiliates_source_check check (source in ('Direct', 'Public', 'Invite', 'Network')),
    constraint affiliates_custom_commission_check check (
        (custom_commission_type is null and custom_commission_value is null)
        or (custom_commission_type in ('Percentage', 'Fixed') and custom_commission_value >= 0)
    )
);

-- An email joins a program once, but a deleted affiliate must not block adding the person
-- again, hence a partial unique index rather than a table constraint. PostgreSQL reports the
-- index name as the constraint name of the violation.
create unique index affiliates_program_email_key
    on affiliates (program_id, email) where deleted_at is null;
-- The affiliate list filtered by program.
create index affiliates_org_program_idx
    on affiliates (org_id, program_id, id desc) where deleted_at is null;
-- affiliates_of_user (any organization) and the coupon list by affiliate email (one org).
create index affiliates_email_idx on affiliates (email, org_id) where deleted_at is null;
create index affiliates_user_id_idx
    on affiliates (user_id) where deleted_at is null and user_id is not null;

create table affiliate_links (
    id           uuid        not null,
    org_id       uuid        not null,
    affiliate_id uuid        not null,
    slug         text        not null,
    custom_alias text,
    is_default   boolean     not null,
    format       text        not null,
    created_at   timestamptz not null,
    constraint affiliate_links_pkey primary key (id),
    constraint affiliate_links_org_id_fkey foreign key (org_id) references organizations (id),
    constraint affiliate_links_affiliate_fkey
        foreign key (org_id, affiliate_id) references affiliates (org_id, id),
    constraint affiliate_links_format_check check (format in ('Short', 'Query', 'Path', 'Hash'))
);

-- `?via={slug}` is matched without regard to case, so uniqueness ignores case too.
create unique index affiliate_links_org_slug_key on affiliate_links (org_id, lower(slug));
create index affiliate_links_affiliate_idx on affiliate_links (org_id, affiliate_id);

create table campaign_coupons (
    id                          uuid        not null,
    org_id                      uuid        not null,
    program_id                  uuid        not null,
    name                        text        not null,
    discount_type               text        not null,
    -- PercentOff: the whole percentage; AmountOff: minor units of discount_currency.
    discount_value              bigint      not null,
    discount_currency           text,
    duration                    text        not null,
    duration_in_months          integer,
    max_redemptions_per_code    bigint,
    expires_at                  timestamptz,
    allow_affiliate_self_mint   boolean     not null,
    overrides_click_attribution boolean     not null,
    is_active                   boolean     not null,
    -- NULL while provisioning: the row is reserved before Stripe is called.
    stripe_coupon_id            text,
    created_at                  timestamptz not null,
    updated_at                  timestamptz not null,
    archived_at                 timestamptz,
    constraint campaign_coupons_pkey primary key (id),
    constraint campaign_coupons_org_id_fkey foreign key (org_id) references organizations (id),
    constraint campaign_coupons_program_fkey
        foreign key (org_id, program_id) references programs (org_id, id),
    constraint campaign_coupons_org_id_id_key unique (org_id, id),
    constraint campaign_coupons_discount_check check (
        (discount_type = 'PercentOff' and discount_currency is null
            and discount_value between 0 and 255)
        or (discount_type = 'AmountOff' and discount_currency ~ '^[A-Z]{3}$')
    ),
    constraint campaign_coupons_duration_check check (
        (duration in ('Once', 'Forever') and duration_in_months is null)
        or (duration = 'Repeating' and duration_in_months between 0 and 255)
    ),
    constraint campaign_coupons_max_redemptions_per_code_check
        check (max_redemptions_per_code between 0 and 4294967295)
);

create index campaign_coupons_program_idx
    on campaign_coupons (org_id, program_id, id desc) where stripe_coupon_id is not null;
-- The reconciler's scan for reservations a crash left behind.
create index campaign_coupons_unprovisioned_idx
    on campaign_coupons (created_at) where stripe_coupon_id is null;

create table affiliate_coupons (
    id                       uuid        not null,
    org_id                   uuid        not null,
    program_id               uuid        not null,
    affiliate_id             uuid        not null,
    campaign_coupon_id       uuid        not null,
    code                     text        not null,
    -- NULL while provisioning: the code is reserved before Stripe is called.
    stripe_promotion_code_id text,
    is_active                boolean     not null,
    max_redemptions          bigint,
    expires_at               timestamptz,
    first_time_order         boolean     not null,
    minimum_amount           bigint,
    minimum_amount_currency  text,
    limit_to_customers       boolean     not null,
    customer_id              text,
    limit_to_affiliate       boolean     not null,
    times_redeemed           bigint      not null default 0,
    last_redeemed_at         timestamptz,
    is_auto_generated        boolean     not null,
    self_minted              boolean     not null,
    created_at               timestamptz not null,
    updated_at               timestamptz not null,
    revoked_at               timestamptz,
    constraint affiliate_coupons_pkey primary key (id),
    constraint affiliate_coupons_org_id_fkey foreign key (org_id) references organizations (id),
    constraint affiliate_coupons_program_fkey
        foreign key (org_id, program_id) references programs (org_id, id),
    constraint affiliate_coupons_affiliate_fkey
        foreign key (org_id, affiliate_id) references affiliates (org_id, id),
    -- Deleting a campaign coupon that still has codes is refused here as a last line of
    -- defence; the use case checks campaign_coupon_has_codes first.
    constraint affiliate_coupons_campaign_coupon_fkey
        foreign key (org_id, campaign_coupon_id) references campaign_coupons (org_id, id),
    constraint affiliate_coupons_minimum_amount_check check (
        (minimum_amount is null and minimum_amount_currency is null)
        or (minimum_amount is not null and minimum_amount_currency ~ '^[A-Z]{3}$')
    ),
    constraint affiliate_coupons_max_redemptions_check
        check (max_redemptions between 0 and 4294967295)
);

-- A code is redeemed by what a customer types, in any case: unique per organization
-- regardless of case.
create unique index affiliate_coupons_org_code_key on affiliate_coupons (org_id, upper(code));
create index affiliate_coupons_affiliate_idx
    on affiliate_coupons (org_id, affiliate_id, id desc);
create index affiliate_coupons_campaign_coupon_idx
    on affiliate_coupons (org_id, campaign_coupon_id, id desc);
create index affiliate_coupons_stripe_id_idx
    on affiliate_coupons (org_id, stripe_promotion_code_id)
    where stripe_promotion_code_id is not null;
create index affiliate_coupons_unprovisioned_idx
    on affiliate_coupons (created_at) where stripe_promotion_code_id is null;

create table audit_log (
    id          uuid        not null,
    org_id      uuid        not null,
    actor_type  text        not null,
    actor_id    text,
    action      text        not null,
    entity_type text        not null,
    entity_id   text        not null,
    -- NULL for creations (before) and deletions (after).
    before      jsonb,
    after       jsonb,
    created_at  timestamptz not null,
    constraint audit_log_pkey primary key (id),
    constraint audit_log_org_id_fkey foreign key (org_id) references organizations (id),
    constraint audit_log_actor_type_check
        check (actor_type in ('api_key', 'user', 'system', 'mcp', 'admin'))
);

create index audit_log_org_id_idx on audit_log (org_id, id desc);

-- The audit log is append-only: history that can be edited is not evidence. The trigger
-- refuses changes even from code paths that forget the rule; only a migration that drops it
-- can rewrite history, and that leaves its own trace.
create function audit_log_refuse_change() returns trigger
    language plpgsql as $$
begin
    raise exception 'audit_log is append-only: % refused', tg_op
        using errcode = 'restrict_violation';
end;
$$;

create trigger audit_log_append_only
    before update or delete on audit_log
    for each row execute function audit_log_refuse_change();

create trigger audit_log_no_truncate
    before truncate on audit_log
    for each statement execute function audit_log_refuse_change();
